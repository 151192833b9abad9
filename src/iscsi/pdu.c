/* pdu.c — LUN field coding (SAM-5 §4.6) and the first check of a received BHS
 * (RFC 7143 §11).
 *
 * iscsi_pdu_check_header() runs before anything in the PDU is trusted. It only
 * looks at the 48 header bytes, so it cannot validate AHS contents (the caller
 * does that once the AHS is read), nor session state (CmdSN windows, negotiated
 * ImmediateData/FirstBurstLength, ERL): those are the engine's.
 */
#include <errno.h>
#include <stdint.h>

#include "iscsi/pdu.h"

#define ITT_RESERVED 0xffffffffu

/* ---- LUN ---------------------------------------------------------------- */

/* Single-level LUNs only: the first level addresses the unit, the other three
 * levels (bytes 2..7) must be zero or the LUN names something behind a bridge
 * that lich does not have. */
uint64_t iscsi_lun_decode(const uint8_t lun[8])
{
	if (get_be16(lun + 2) | get_be32(lun + 4))   /* bytes 2..7, two loads */
		return UINT64_MAX;
	switch (lun[0] >> 6) {
	case 0:  /* peripheral device addressing: byte 0 low 6 bits = bus id */
		if (lun[0] & 0x3f)
			return UINT64_MAX;
		return lun[1];
	case 1:  /* flat space addressing: 14-bit LUN */
		return (uint64_t)(lun[0] & 0x3f) << 8 | lun[1];
	default: /* logical unit (10b) / extended (11b, incl. well-known LUNs) */
		return UINT64_MAX;
	}
}

/* Peripheral addressing below 256 (what Linux and Windows expect for small
 * LUNs), flat space up to 16383. Larger numbers cannot be expressed with the
 * two methods lich serves: they are written as all ones (extended addressing,
 * reserved length), which iscsi_lun_decode() maps to UINT64_MAX, so such a LUN
 * can never alias a real one. The config limits LUNs to < 16384. */
void iscsi_lun_encode(uint64_t lun, uint8_t out[8])
{
	memset(out, 0, 8);
	if (lun < 256) {
		out[1] = (uint8_t)lun;
	} else if (lun < 16384) {
		out[0] = (uint8_t)(0x40 | (lun >> 8));
		out[1] = (uint8_t)lun;
	} else {
		memset(out, 0xff, 8);
	}
}

/* ---- BHS check ---------------------------------------------------------- */

static bool opcode_has_no_data(uint8_t op)
{
	/* RFC 7143 §11.5 (TMF), §11.14 (Logout), §11.16 (SNACK): no data
	 * segment is defined for these requests. */
	return op == ISCSI_OP_TMF_REQ || op == ISCSI_OP_LOGOUT_REQ ||
	       op == ISCSI_OP_SNACK;
}

static int check_login(const uint8_t *bhs)
{
	uint8_t f = bhs[BHS_FLAGS];

	/* RFC 7143 §11.12.2: C=1 requires T=0; stage 2 is reserved. */
	if ((f & ISCSI_LOGIN_TRANSIT) && (f & ISCSI_LOGIN_CONTINUE))
		return ISCSI_REJECT_INVALID_PDU_FIELD;
	if (ISCSI_LOGIN_CSG(f) == 2 || ISCSI_LOGIN_CSG(f) == ISCSI_STAGE_FULL)
		return ISCSI_REJECT_INVALID_PDU_FIELD;
	if ((f & ISCSI_LOGIN_TRANSIT) && ISCSI_LOGIN_NSG(f) == 2)
		return ISCSI_REJECT_INVALID_PDU_FIELD;
	return 0;
}

/* The ITT field is all ones: no byte order needed to compare. */
static bool itt_reserved(const uint8_t *bhs)
{
	uint32_t v;

	memcpy(&v, bhs + BHS_ITT, sizeof(v));
	return v == ITT_RESERVED;
}

/* SCSI Command: the whole check, in straight lines (the I/O path). */
static int check_scsi_cmd(const uint8_t *bhs, uint32_t dlen)
{
	uint8_t flags = bhs[BHS_FLAGS];

	if (itt_reserved(bhs))
		return ISCSI_REJECT_INVALID_PDU_FIELD;
	/* Immediate data, or unsolicited Data-Out announced by F=0, only make
	 * sense for a command that writes (RFC 7143 §11.3.1, §4.2.5.2). */
	if (!(flags & ISCSI_CMD_WRITE))
		return dlen || !(flags & ISCSI_FLAG_FINAL) ? ISCSI_REJECT_INVALID_PDU_FIELD : 0;
	/* Immediate data is part of the expected transfer, never beyond it. */
	return dlen > get_be32(bhs + BHS_EDTL) ? ISCSI_REJECT_INVALID_PDU_FIELD : 0;
}

int iscsi_pdu_check_header(const uint8_t *bhs, uint32_t max_data)
{
	uint8_t op = bhs_opcode(bhs);
	uint32_t dlen = bhs_data_len(bhs);
	uint32_t itt;

	/* Framing: a data segment beyond what we declared we can receive is a
	 * protocol error (RFC 7143 §13.12); whatever follows cannot be trusted to
	 * be a PDU boundary, so the connection goes. */
	if (dlen > max_data)
		return -EPROTO;
	/* The two opcodes of the I/O path first, each checked whole. */
	if (op == ISCSI_OP_SCSI_CMD)
		return check_scsi_cmd(bhs, dlen);
	if (op == ISCSI_OP_DATA_OUT)    /* no AHS; a real ITT */
		return bhs[BHS_AHSLEN] || itt_reserved(bhs) ? ISCSI_REJECT_INVALID_PDU_FIELD : 0;
	itt = bhs_itt(bhs);

	switch (op) {
	case ISCSI_OP_NOP_OUT:
	case ISCSI_OP_TMF_REQ:
	case ISCSI_OP_LOGIN_REQ:
	case ISCSI_OP_TEXT_REQ:
	case ISCSI_OP_LOGOUT_REQ:
	case ISCSI_OP_SNACK:
		break;
	case 0x1c: case 0x1d: case 0x1e:
		/* initiator vendor-specific opcodes */
		return ISCSI_REJECT_CMD_NOT_SUPPORTED;
	default:
		if (op >= 0x20)     /* a target opcode sent by an initiator */
			return ISCSI_REJECT_PROTOCOL_ERROR;
		return ISCSI_REJECT_CMD_NOT_SUPPORTED;  /* reserved opcode */
	}

	/* Only the SCSI Command defines AHS (extended CDB, bidi read length). */
	if (bhs[BHS_AHSLEN])
		return ISCSI_REJECT_INVALID_PDU_FIELD;
	if (dlen && opcode_has_no_data(op))
		return ISCSI_REJECT_INVALID_PDU_FIELD;

	/* 0xffffffff is the reserved tag (RFC 7143 §11.2.1.8): only NOP-Out and
	 * (status/DataACK) SNACK may carry it. A task keyed by it would collide
	 * with "no task". */
	if (itt == ITT_RESERVED && op != ISCSI_OP_NOP_OUT && op != ISCSI_OP_SNACK)
		return ISCSI_REJECT_INVALID_PDU_FIELD;

	switch (op) {
	case ISCSI_OP_LOGIN_REQ:
		return check_login(bhs);
	case ISCSI_OP_TEXT_REQ:
		/* RFC 7143 §11.10.2: C=1 requires F=0. */
		if ((bhs[BHS_FLAGS] & ISCSI_FLAG_FINAL) &&
		    (bhs[BHS_FLAGS] & ISCSI_TEXT_CONTINUE))
			return ISCSI_REJECT_INVALID_PDU_FIELD;
		return 0;
	case ISCSI_OP_LOGOUT_REQ:
		/* Reason codes 0 (session), 1 (connection), 2 (recovery). */
		if ((bhs[BHS_FLAGS] & 0x7f) > 2)
			return ISCSI_REJECT_INVALID_PDU_FIELD;
		return 0;
	case ISCSI_OP_SNACK:
		/* Types 0 Data/R2T, 1 Status, 2 DataACK, 3 R-Data. */
		if ((bhs[BHS_FLAGS] & 0x0f) > 3)
			return ISCSI_REJECT_INVALID_PDU_FIELD;
		return 0;
	default:
		return 0;
	}
}
