/* test_pdu.c — BHS accessors, LUN coding and iscsi_pdu_check_header(). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iscsi/pdu.h"

#define MAXD 8192u

/* A well-formed request of the given opcode: valid ITT, no AHS, no data,
 * F bit set where the opcode has one. */
static void make(uint8_t *bhs, uint8_t op)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = op;
	bhs[1] = ISCSI_FLAG_FINAL;
	put_be32(bhs + BHS_ITT, 0x1234);
	switch (op) {
	case ISCSI_OP_LOGIN_REQ:
		bhs[0] |= ISCSI_FLAG_IMMEDIATE;
		bhs[1] = ISCSI_LOGIN_TRANSIT | ISCSI_STAGE_SECURITY << 2 | ISCSI_STAGE_OPERATIONAL;
		break;
	case ISCSI_OP_LOGOUT_REQ:
		bhs[1] = 0x80 | 0;   /* close session */
		break;
	case ISCSI_OP_SNACK:
		bhs[1] = 0x80 | 1;   /* status SNACK */
		put_be32(bhs + BHS_ITT, 0xffffffff);
		break;
	case ISCSI_OP_TMF_REQ:
		bhs[1] = 0x80 | 1;   /* ABORT TASK */
		break;
	default:
		break;
	}
}

static void set_dlen(uint8_t *bhs, uint32_t n) { put_be24(bhs + BHS_DLEN, n); }

static void test_accessors(void **state)
{
	uint8_t b[ISCSI_BHS_LEN] = { 0 };

	(void)state;
	b[0] = 0x40 | ISCSI_OP_SCSI_CMD | 0x80;
	assert_int_equal(bhs_opcode(b), ISCSI_OP_SCSI_CMD);
	assert_true(bhs_immediate(b));
	b[BHS_AHSLEN] = 5;
	assert_int_equal(bhs_ahs_len(b), 20);
	put_be24(b + BHS_DLEN, 0xabcdef);
	assert_int_equal(b[5], 0xab);
	assert_int_equal(b[7], 0xef);
	assert_int_equal(bhs_data_len(b), 0xabcdef);
	put_be32(b + BHS_ITT, 0xdeadbeef);
	assert_int_equal(b[16], 0xde);
	assert_int_equal(bhs_itt(b), 0xdeadbeef);
	put_be64(b + BHS_LUN, 0x0102030405060708ull);
	assert_int_equal(get_be64(b + BHS_LUN), 0x0102030405060708ull);
	put_be16(b + BHS_TSIH, 0xbeef);
	assert_int_equal(get_be16(b + BHS_TSIH), 0xbeef);
	assert_int_equal(ISCSI_PAD(0), 0);
	assert_int_equal(ISCSI_PAD(1), 4);
	assert_int_equal(ISCSI_PAD(4), 4);
	assert_int_equal(ISCSI_PAD(8190), 8192);
	/* serial numbers wrap */
	assert_true(sn_lt(0xfffffff0u, 5));
	assert_true(sn_gt(5, 0xfffffff0u));
	assert_true(sn_le(7, 7));
	assert_false(sn_lt(7, 7));
}

static void test_lun_roundtrip(void **state)
{
	uint8_t l[8];

	(void)state;
	for (uint64_t lun = 0; lun < 16384; lun++) {
		iscsi_lun_encode(lun, l);
		assert_int_equal(iscsi_lun_decode(l), lun);
		for (int i = 2; i < 8; i++)
			assert_int_equal(l[i], 0);
		if (lun < 256) {
			assert_int_equal(l[0], 0);     /* peripheral device */
			assert_int_equal(l[1], lun);
		} else {
			assert_int_equal(l[0] >> 6, 1); /* flat space */
		}
	}
	/* Flat space encoding of 256 and 16383 exactly. */
	iscsi_lun_encode(256, l);
	assert_int_equal(l[0], 0x41);
	assert_int_equal(l[1], 0x00);
	iscsi_lun_encode(16383, l);
	assert_int_equal(l[0], 0x7f);
	assert_int_equal(l[1], 0xff);
	/* Not expressible: never decodes to a real LUN. */
	iscsi_lun_encode(16384, l);
	assert_int_equal(iscsi_lun_decode(l), UINT64_MAX);
	iscsi_lun_encode(UINT64_MAX - 1, l);
	assert_int_equal(iscsi_lun_decode(l), UINT64_MAX);
}

static void test_lun_decode_forms(void **state)
{
	(void)state;
	/* Flat space can also express small LUNs (some initiators do). */
	const uint8_t flat5[8] = { 0x40, 0x05 };
	assert_int_equal(iscsi_lun_decode(flat5), 5);
	/* Peripheral addressing with a bus identifier: not ours. */
	const uint8_t bus[8] = { 0x01, 0x05 };
	assert_int_equal(iscsi_lun_decode(bus), UINT64_MAX);
	/* Second level present: multi-level LUN. */
	const uint8_t two_level[8] = { 0x00, 0x01, 0x00, 0x02 };
	assert_int_equal(iscsi_lun_decode(two_level), UINT64_MAX);
	const uint8_t tail[8] = { 0x00, 0x01, 0, 0, 0, 0, 0, 1 };
	assert_int_equal(iscsi_lun_decode(tail), UINT64_MAX);
	/* Logical unit addressing (10b). */
	const uint8_t lu[8] = { 0x80, 0x01 };
	assert_int_equal(iscsi_lun_decode(lu), UINT64_MAX);
	/* REPORT LUNS well-known LUN (extended addressing, 11b). */
	const uint8_t wlun[8] = { 0xc1, 0x01 };
	assert_int_equal(iscsi_lun_decode(wlun), UINT64_MAX);
	const uint8_t zero[8] = { 0 };
	assert_int_equal(iscsi_lun_decode(zero), 0);
}

static const uint8_t initiator_ops[] = {
	ISCSI_OP_NOP_OUT, ISCSI_OP_SCSI_CMD, ISCSI_OP_TMF_REQ, ISCSI_OP_LOGIN_REQ,
	ISCSI_OP_TEXT_REQ, ISCSI_OP_DATA_OUT, ISCSI_OP_LOGOUT_REQ, ISCSI_OP_SNACK,
};

static void test_good_headers(void **state)
{
	uint8_t b[ISCSI_BHS_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(initiator_ops); i++) {
		make(b, initiator_ops[i]);
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
		/* the immediate bit changes nothing */
		b[0] |= ISCSI_FLAG_IMMEDIATE;
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	}
	/* Data-carrying opcodes at exactly max_data. */
	make(b, ISCSI_OP_NOP_OUT);
	set_dlen(b, MAXD);
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	make(b, ISCSI_OP_DATA_OUT);
	set_dlen(b, MAXD);
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	make(b, ISCSI_OP_TEXT_REQ);
	set_dlen(b, 1);
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	make(b, ISCSI_OP_LOGIN_REQ);
	set_dlen(b, 8192);
	assert_int_equal(iscsi_pdu_check_header(b, 8192), 0);
	/* A write with immediate data within EDTL, and with an AHS. */
	make(b, ISCSI_OP_SCSI_CMD);
	b[1] = ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE;
	put_be32(b + BHS_EDTL, 4096);
	set_dlen(b, 4096);
	b[BHS_AHSLEN] = 5;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	/* A write announcing unsolicited Data-Out (F=0). */
	b[1] = ISCSI_CMD_WRITE;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	/* A NOP-Out answering a target ping has ITT 0xffffffff. */
	make(b, ISCSI_OP_NOP_OUT);
	b[0] |= ISCSI_FLAG_IMMEDIATE;
	put_be32(b + BHS_ITT, 0xffffffff);
	put_be32(b + BHS_TTT, 7);
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	/* Text with C=1, F=0 (a continued text sequence). */
	make(b, ISCSI_OP_TEXT_REQ);
	b[1] = ISCSI_TEXT_CONTINUE;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	/* Login: C=1 without T, all valid stage combinations. */
	make(b, ISCSI_OP_LOGIN_REQ);
	b[1] = ISCSI_LOGIN_CONTINUE | ISCSI_STAGE_OPERATIONAL << 2;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	b[1] = ISCSI_LOGIN_TRANSIT | ISCSI_STAGE_OPERATIONAL << 2 | ISCSI_STAGE_FULL;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	b[1] = ISCSI_LOGIN_TRANSIT | ISCSI_STAGE_SECURITY << 2 | ISCSI_STAGE_FULL;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	/* Logout reasons 0..2, SNACK types 0..3. */
	for (uint8_t r = 0; r <= 2; r++) {
		make(b, ISCSI_OP_LOGOUT_REQ);
		b[1] = 0x80 | r;
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	}
	for (uint8_t t = 0; t <= 3; t++) {
		make(b, ISCSI_OP_SNACK);
		b[1] = 0x80 | t;
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	}
}

static void test_data_too_long(void **state)
{
	uint8_t b[ISCSI_BHS_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(initiator_ops); i++) {
		make(b, initiator_ops[i]);
		set_dlen(b, MAXD + 1);
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), -EPROTO);
		set_dlen(b, 0xffffff);
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), -EPROTO);
	}
	/* Framing is judged first, even for an opcode we would reject. */
	make(b, 0x3f);
	set_dlen(b, MAXD + 4);
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), -EPROTO);
	/* max_data 0: any data at all is too much. */
	make(b, ISCSI_OP_NOP_OUT);
	set_dlen(b, 1);
	assert_int_equal(iscsi_pdu_check_header(b, 0), -EPROTO);
}

static void test_bad_opcodes(void **state)
{
	uint8_t b[ISCSI_BHS_LEN];

	(void)state;
	for (unsigned op = 0; op < 64; op++) {
		bool init = false;
		for (size_t i = 0; i < sizeof(initiator_ops); i++)
			init |= initiator_ops[i] == op;
		make(b, (uint8_t)op);
		int rc = iscsi_pdu_check_header(b, MAXD);
		if (init)
			assert_int_equal(rc, 0);
		else if (op >= 0x20)
			assert_int_equal(rc, ISCSI_REJECT_PROTOCOL_ERROR);
		else
			assert_int_equal(rc, ISCSI_REJECT_CMD_NOT_SUPPORTED);
	}
}

static void test_ahs_only_on_command(void **state)
{
	uint8_t b[ISCSI_BHS_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(initiator_ops); i++) {
		make(b, initiator_ops[i]);
		b[BHS_AHSLEN] = 1;
		int want = initiator_ops[i] == ISCSI_OP_SCSI_CMD ? 0 : ISCSI_REJECT_INVALID_PDU_FIELD;
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), want);
		b[BHS_AHSLEN] = 255;
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), want);
	}
}

static void test_data_on_dataless_opcodes(void **state)
{
	uint8_t b[ISCSI_BHS_LEN];
	const uint8_t dataless[] = { ISCSI_OP_TMF_REQ, ISCSI_OP_LOGOUT_REQ, ISCSI_OP_SNACK };

	(void)state;
	for (size_t i = 0; i < sizeof(dataless); i++) {
		make(b, dataless[i]);
		set_dlen(b, 4);
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);
		set_dlen(b, 1);
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);
	}
}

static void test_reserved_itt(void **state)
{
	uint8_t b[ISCSI_BHS_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(initiator_ops); i++) {
		uint8_t op = initiator_ops[i];
		make(b, op);
		put_be32(b + BHS_ITT, 0xffffffff);
		int want = (op == ISCSI_OP_NOP_OUT || op == ISCSI_OP_SNACK) ? 0 :
			   ISCSI_REJECT_INVALID_PDU_FIELD;
		assert_int_equal(iscsi_pdu_check_header(b, MAXD), want);
	}
}

static void test_scsi_cmd_fields(void **state)
{
	uint8_t b[ISCSI_BHS_LEN];

	(void)state;
	/* Immediate data on a read. */
	make(b, ISCSI_OP_SCSI_CMD);
	b[1] = ISCSI_FLAG_FINAL | ISCSI_CMD_READ;
	put_be32(b + BHS_EDTL, 512);
	set_dlen(b, 512);
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);
	/* Unsolicited data announced (F=0) on a read. */
	set_dlen(b, 0);
	b[1] = ISCSI_CMD_READ;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);
	/* Immediate data beyond the expected transfer length. */
	b[1] = ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE;
	put_be32(b + BHS_EDTL, 512);
	set_dlen(b, 516);
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);
	set_dlen(b, 512);
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	/* Bidirectional with immediate data is fine. */
	b[1] = ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE | ISCSI_CMD_READ;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
	/* No-data command (TEST UNIT READY). */
	make(b, ISCSI_OP_SCSI_CMD);
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);
}

static void test_login_text_flags(void **state)
{
	uint8_t b[ISCSI_BHS_LEN];

	(void)state;
	make(b, ISCSI_OP_LOGIN_REQ);
	b[1] = ISCSI_LOGIN_TRANSIT | ISCSI_LOGIN_CONTINUE | ISCSI_STAGE_OPERATIONAL;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);
	b[1] = 2 << 2;                       /* CSG reserved */
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);
	b[1] = ISCSI_STAGE_FULL << 2;        /* CSG full feature: not a login stage */
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);
	b[1] = ISCSI_LOGIN_TRANSIT | 2;      /* NSG reserved with T */
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);
	b[1] = 2;                            /* NSG ignored without T */
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), 0);

	make(b, ISCSI_OP_TEXT_REQ);
	b[1] = ISCSI_FLAG_FINAL | ISCSI_TEXT_CONTINUE;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);

	make(b, ISCSI_OP_LOGOUT_REQ);
	b[1] = 0x80 | 3;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);

	make(b, ISCSI_OP_SNACK);
	b[1] = 0x80 | 4;
	assert_int_equal(iscsi_pdu_check_header(b, MAXD), ISCSI_REJECT_INVALID_PDU_FIELD);
}

/* Random headers: the result is always one of the documented ones, and the
 * framing rule holds whatever else is wrong. */
static void test_random_headers(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	uint8_t b[ISCSI_BHS_LEN];
	unsigned ok = 0;

	(void)state;
	for (int iter = 0; iter < 200000; iter++) {
		for (int i = 0; i < ISCSI_BHS_LEN; i++) {
			x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
			b[i] = (uint8_t)((x * 0x2545f4914f6cdd1dull) >> 56);
		}
		/* keep lengths small half of the time so other checks are reached */
		if (iter & 1) {
			b[BHS_DLEN] = 0;
			b[BHS_DLEN + 1] &= 0x1f;
			b[BHS_AHSLEN] &= (iter & 2) ? 0 : 0xff;
			b[0] &= (iter & 4) ? 0x07 : 0xff;   /* mostly initiator opcodes */
		}
		uint32_t max = (iter & 8) ? 8192 : 262144;
		int rc = iscsi_pdu_check_header(b, max);
		if (bhs_data_len(b) > max) {
			assert_int_equal(rc, -EPROTO);
			continue;
		}
		switch (rc) {
		case 0:
			ok++;
			/* accepted: the hard rules hold */
			assert_true(bhs_opcode(b) <= ISCSI_OP_SNACK);
			assert_true(b[BHS_AHSLEN] == 0 || bhs_opcode(b) == ISCSI_OP_SCSI_CMD);
			break;
		case ISCSI_REJECT_PROTOCOL_ERROR:
		case ISCSI_REJECT_CMD_NOT_SUPPORTED:
		case ISCSI_REJECT_INVALID_PDU_FIELD:
			break;
		default:
			fail_msg("unexpected result %d", rc);
		}
	}
	assert_true(ok > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_lun_roundtrip),
		cmocka_unit_test(test_lun_decode_forms),
		cmocka_unit_test(test_good_headers),
		cmocka_unit_test(test_data_too_long),
		cmocka_unit_test(test_bad_opcodes),
		cmocka_unit_test(test_ahs_only_on_command),
		cmocka_unit_test(test_data_on_dataless_opcodes),
		cmocka_unit_test(test_reserved_itt),
		cmocka_unit_test(test_scsi_cmd_fields),
		cmocka_unit_test(test_login_text_flags),
		cmocka_unit_test(test_random_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
