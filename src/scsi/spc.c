/* spc.c — primary commands (SPC-4): INQUIRY and its VPD pages, MODE SENSE and
 * MODE SELECT, REPORT LUNS, REQUEST SENSE, REPORT SUPPORTED OPERATION CODES,
 * TEST UNIT READY, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, and the
 * reservation commands (handed to pr.c).
 *
 * Everything here is answered from memory in prepare, except MODE SELECT and
 * PERSISTENT RESERVE OUT (they need their parameter list first) and START STOP
 * UNIT with START=0 (it flushes the cache).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "scsi/pr.h"
#include "scsi_internal.h"

/* ---- TEST UNIT READY ---- */

int spc_test_unit_ready(struct scsi_task *t)
{
	/* The generic checks already reported a stopped unit (CMD_MEDIA). */
	(void)t;
	return SCSI_TASK_DONE;
}

/* ---- INQUIRY ---- */

#define VERSION_SAM5    0x00a0
#define VERSION_ISCSI   0x0960
#define VERSION_SPC4    0x0460
#define VERSION_SBC3    0x04c0

static void put_ascii(uint8_t *dst, const char *s, size_t width)
{
	size_t n = strlen(s);
	memset(dst, ' ', width);
	memcpy(dst, s, n < width ? n : width);
}

static unsigned inquiry_standard(const struct scsi_lu *lu, uint8_t *p)
{
	memset(p, 0, 96);
	/* No LU at this LUN: peripheral qualifier 011b, device type 1Fh. */
	p[0] = lu ? 0x00 : 0x7f;
	p[1] = 0;                         /* RMB=0: not removable */
	p[2] = 0x06;                      /* SPC-4 */
	p[3] = 0x10 | 0x02;               /* HISUP, response data format 2 */
	p[4] = 96 - 5;
	p[7] = 0x02;                      /* CMDQUE */
	put_ascii(p + 8, lu ? lu->vendor : "LICH", 8);
	put_ascii(p + 16, lu ? lu->product : "VIRTUAL-DISK", 16);
	put_ascii(p + 32, lu ? lu->revision : "0001", 4);
	put_be16(p + 58, VERSION_SAM5);
	put_be16(p + 60, VERSION_ISCSI);
	put_be16(p + 62, VERSION_SPC4);
	put_be16(p + 64, VERSION_SBC3);
	return 96;
}

static const uint8_t supported_vpd[] = { 0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2 };

/* Appends one designation descriptor. */
static unsigned put_designator(uint8_t *p, uint8_t proto_codeset, uint8_t piv_assoc_type,
			       const void *data, unsigned len)
{
	p[0] = proto_codeset;
	p[1] = piv_assoc_type;
	p[2] = 0;
	p[3] = (uint8_t)len;
	memcpy(p + 4, data, len);
	return 4 + len;
}

static unsigned vpd_device_id(const struct scsi_task *t, const struct scsi_lu *lu, uint8_t *p)
{
	const struct scsi_target *tg = lu->target;
	unsigned n = 4;
	uint8_t buf[256];

	/* NAA 6 (binary, LU association). */
	n += put_designator(p + n, 0x01, 0x03, lu->naa, sizeof(lu->naa));

	/* T10 vendor ID (ASCII, LU association): vendor + device id or serial. */
	const char *vs = lu->device_id[0] ? lu->device_id : lu->serial;
	size_t vl = strlen(vs);
	put_ascii(buf, lu->vendor, 8);
	memcpy(buf + 8, vs, vl);
	n += put_designator(p + n, 0x02, 0x01, buf, (unsigned)(8 + vl));

	/* Relative target port (binary, PIV, iSCSI, target port association). */
	uint16_t rel = t->nexus && t->nexus->rel_port_id ? t->nexus->rel_port_id : 1;
	memset(buf, 0, 4);
	put_be16(buf + 2, rel);
	n += put_designator(p + n, 0x51, 0x80 | 0x10 | 0x04, buf, 4);

	/* SCSI name strings (UTF-8, PIV, iSCSI): the target port, then the target
	 * device. NUL terminated and padded to a multiple of 4. */
	memset(buf, 0, sizeof(buf));
	int l = snprintf((char *)buf, sizeof(buf) - 4, "%s,t,0x%04x", tg->name, tg->tpgt);
	unsigned sl = ((unsigned)l + 1 + 3) & ~3u;
	n += put_designator(p + n, 0x53, 0x80 | 0x10 | 0x08, buf, sl);
	memset(buf, 0, sizeof(buf));
	l = snprintf((char *)buf, sizeof(buf) - 4, "%s", tg->name);
	sl = ((unsigned)l + 1 + 3) & ~3u;
	n += put_designator(p + n, 0x53, 0x80 | 0x20 | 0x08, buf, sl);

	put_be16(p + 2, (uint16_t)(n - 4));
	return n;
}

static unsigned vpd_block_limits(const struct scsi_lu *lu, uint8_t *p)
{
	uint32_t bs = lu->block_size;
	uint32_t gran = SCSI_PHYS_BLOCK / bs ? SCSI_PHYS_BLOCK / bs : 1;

	put_be16(p + 2, 0x3c);
	p[4] = 0;                                       /* WSNZ=0: 0 blocks = to the end */
	p[5] = SCSI_MAX_CAW_BLOCKS;
	put_be16(p + 6, (uint16_t)gran);               /* optimal transfer granularity */
	put_be32(p + 8, SCSI_MAX_XFER / bs);           /* maximum transfer length */
	put_be32(p + 12, 0);                            /* optimal transfer length: none */
	put_be32(p + 16, 0);                            /* no prefetch cache */
	if (lu->thin) {
		put_be32(p + 20, SCSI_MAX_UNMAP_BLOCKS);
		put_be32(p + 24, SCSI_MAX_UNMAP_DESC);
		put_be32(p + 28, gran);                 /* optimal unmap granularity */
		p[32] = 0x80;                           /* UGAVALID, alignment 0 */
	}
	put_be64(p + 36, SCSI_MAX_WS_BLOCKS);
	/* 44..63: atomic writes are not supported. */
	return 64;
}

/* Largest VPD page we build: Device Identification with a 223-byte target
 * name (NAA 20, T10 76, relative port 8, two name strings 240 + 228). */
#define VPD_MAX 1024

static unsigned inquiry_vpd(const struct scsi_task *t, const struct scsi_lu *lu, uint8_t page,
			    uint8_t *p)
{
	unsigned n;

	memset(p, 0, VPD_MAX);
	p[0] = 0x00;                      /* PQ 0, direct access block device */
	p[1] = page;
	switch (page) {
	case 0x00:
		memcpy(p + 4, supported_vpd, sizeof(supported_vpd));
		put_be16(p + 2, sizeof(supported_vpd));
		return 4 + sizeof(supported_vpd);
	case 0x80:
		n = (unsigned)strlen(lu->serial);
		memcpy(p + 4, lu->serial, n);
		put_be16(p + 2, (uint16_t)n);
		return 4 + n;
	case 0x83:
		return vpd_device_id(t, lu, p);
	case 0x86:                        /* Extended INQUIRY Data */
		put_be16(p + 2, 0x3c);
		p[5] = 0x01;              /* SIMPSUP */
		p[6] = 0x01;              /* V_SUP: volatile write cache */
		p[7] = 0x01;              /* LUICLR */
		return 64;
	case 0xb0:
		return vpd_block_limits(lu, p);
	case 0xb1:                        /* Block Device Characteristics */
		put_be16(p + 2, 0x3c);
		put_be16(p + 4, 0x0001);  /* non-rotating medium */
		return 64;
	case 0xb2:                        /* Logical Block Provisioning */
		put_be16(p + 2, 4);
		if (lu->thin) {
			/* LBPU, LBPWS, LBPWS10, LBPRZ; thin provisioned */
			p[5] = 0x80 | 0x40 | 0x20 | 0x04;
			p[6] = 0x02;
		}
		return 8;
	}
	return 0;
}

int spc_inquiry(struct scsi_task *t)
{
	uint8_t buf[VPD_MAX];
	unsigned n;
	bool evpd = t->cdb[1] & 0x01;
	uint8_t page = t->cdb[2];

	if (!evpd && page)
		return fail_invalid_cdb(t, 2, -1);
	t->aux = get_be16(&t->cdb[3]);
	if (!evpd) {
		n = inquiry_standard(t->lu, buf);
	} else if (!t->lu) {
		scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_LU_NOT_SUPPORTED);
		return SCSI_TASK_DONE;
	} else {
		n = inquiry_vpd(t, t->lu, page, buf);
		if (!n)
			return fail_invalid_cdb(t, 2, -1);
	}
	int rc = scsi_task_copy_in(t, buf, n);
	return rc < 0 ? rc : SCSI_TASK_DONE;
}

/* ---- REQUEST SENSE ---- */

int spc_request_sense(struct scsi_task *t)
{
	uint8_t buf[64];
	uint8_t asc, ascq;
	bool desc = t->cdb[1] & 0x01;
	unsigned n;

	t->aux = t->cdb[4];
	if (!t->lu) {
		n = sense_build(buf, desc, SK_ILLEGAL_REQUEST, ASC_LU_NOT_SUPPORTED);
	} else if (lu_ua_take(t->lu, t->nexus, &asc, &ascq)) {
		/* Returned as data, the unit attention is cleared (SPC-4 6.39). */
		n = sense_build(buf, desc, SK_UNIT_ATTENTION, asc, ascq);
		if (asc == 0x3f && ascq == 0x0e && t->nexus)
			target_ua_clear(t->target, t->nexus, 0x3f, 0x0e);
	} else if (atomic_load(&t->lu->stopped)) {
		n = sense_build(buf, desc, SK_NOT_READY, ASC_NOT_READY_INIT_REQ);
	} else {
		n = sense_build(buf, desc, SK_NO_SENSE, ASC_NO_SENSE);
	}
	int rc = scsi_task_copy_in(t, buf, n);
	return rc < 0 ? rc : SCSI_TASK_DONE;
}

/* ---- REPORT LUNS ---- */

int spc_report_luns(struct scsi_task *t)
{
	struct scsi_target *tg = t->target;
	uint8_t select = t->cdb[2];
	uint32_t alloc = get_be32(&t->cdb[6]);

	if (alloc < 16)
		return fail_invalid_cdb(t, 6, -1);
	if (select > 0x02)
		return fail_invalid_cdb(t, 2, -1);
	t->aux = alloc;
	if (!tg)
		select = 0x01;            /* no target: nothing to list */

	/* 01h asks for well known LUs only: we have none. */
	unsigned hwm = select == 0x01 ? 0 : __atomic_load_n(&tg->lun_hwm, __ATOMIC_ACQUIRE);
	uint32_t max = 8 + 8 * (uint32_t)(hwm ? hwm : 1);
	uint8_t *buf = calloc(1, max);
	if (!buf)
		return -ENOMEM;
	uint32_t n = 8;
	for (unsigned lun = 0; lun < hwm; lun++) {
		if (!scsi_target_find_lu(tg, lun))
			continue;
		if (lun < 256) {
			buf[n + 1] = (uint8_t)lun;                    /* peripheral */
		} else {
			buf[n] = (uint8_t)(0x40 | (lun >> 8));         /* flat space */
			buf[n + 1] = (uint8_t)lun;
		}
		n += 8;
	}
	put_be32(buf, n - 8);
	int rc = scsi_task_copy_in(t, buf, n);
	free(buf);
	if (rc < 0)
		return rc;
	/* The inventory was reported: REPORTED LUNS DATA HAS CHANGED is cleared
	 * on every LU for this nexus (SPC-4 6.33). */
	if (t->nexus && select != 0x01)
		target_ua_clear(tg, t->nexus, 0x3f, 0x0e);
	return SCSI_TASK_DONE;
}

/* ---- mode pages ---- */

enum { PC_CURRENT = 0, PC_CHANGEABLE = 1, PC_DEFAULT = 2, PC_SAVED = 3 };

struct mode_page {
	uint8_t code;
	uint8_t len;                  /* whole page, header included */
	void (*fill)(const struct scsi_lu *lu, int pc, uint8_t *p, bool wce, bool swp);
};

static void page_caching(const struct scsi_lu *lu, int pc, uint8_t *p, bool wce, bool swp)
{
	(void)swp;
	if (pc == PC_CHANGEABLE)
		p[2] = 0x04;                            /* WCE */
	else if ((pc == PC_DEFAULT ? lu->default_wce : wce))
		p[2] = 0x04;
}

static void page_control(const struct scsi_lu *lu, int pc, uint8_t *p, bool wce, bool swp)
{
	(void)lu;
	(void)wce;
	if (pc == PC_CHANGEABLE) {
		p[4] = 0x08;                            /* SWP */
		return;
	}
	/* TST 000b (one task set), D_SENSE 0 (fixed sense), QUEUE ALGORITHM
	 * MODIFIER 1 (simple tasks may be reordered: they are, by the backend),
	 * QErr 00b, TAS 0 (tasks aborted by another nexus: UA, no status). */
	p[3] = 0x10;
	if (pc == PC_CURRENT && swp)
		p[4] = 0x08;
}

static void page_iec(const struct scsi_lu *lu, int pc, uint8_t *p, bool wce, bool swp)
{
	(void)lu;
	(void)wce;
	(void)swp;
	if (pc != PC_CHANGEABLE)
		p[2] = 0x08;                            /* DEXCPT: nothing to report */
}

static const struct mode_page mode_pages[] = {
	{ 0x08, 20, page_caching },
	{ 0x0a, 12, page_control },
	{ 0x1c, 12, page_iec },
};

#define NPAGES (sizeof(mode_pages) / sizeof(mode_pages[0]))

static const struct mode_page *mode_page_find(uint8_t code)
{
	for (unsigned i = 0; i < NPAGES; i++)
		if (mode_pages[i].code == code)
			return &mode_pages[i];
	return NULL;
}

static unsigned mode_page_build(const struct scsi_lu *lu, const struct mode_page *mp, int pc,
				uint8_t *p, bool wce, bool swp)
{
	memset(p, 0, mp->len);
	p[0] = mp->code;
	p[1] = mp->len - 2;
	mp->fill(lu, pc, p, wce, swp);
	return mp->len;
}

static uint8_t device_specific(const struct scsi_lu *lu)
{
	uint8_t dsp = 0x10;                             /* DPOFUA */
	if (lu->readonly || atomic_load(&lu->swp))
		dsp |= 0x80;                            /* WP */
	return dsp;
}

int spc_mode_sense(struct scsi_task *t)
{
	const struct scsi_lu *lu = t->lu;
	bool ten = t->cdb[0] == 0x5a;
	bool dbd = t->cdb[1] & 0x08;
	bool llbaa = ten && (t->cdb[1] & 0x10);
	int pc = t->cdb[2] >> 6;
	uint8_t page = t->cdb[2] & 0x3f;
	uint8_t sub = t->cdb[3];
	uint8_t buf[256];
	unsigned hdr = ten ? 8 : 4, n = hdr;
	bool wce = atomic_load(&lu->wce), swp = atomic_load(&lu->swp);

	if (pc == PC_SAVED) {
		scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPP);
		sense_set_field(t, true, 2, 7);
		return SCSI_TASK_DONE;
	}
	/* We have no subpages: subpage 00h, or FFh ("all subpages"). */
	if (sub != 0x00 && sub != 0xff)
		return fail_invalid_cdb(t, 3, -1);
	const struct mode_page *one = NULL;
	if (page != 0x3f) {
		one = mode_page_find(page);
		if (!one)
			return fail_invalid_cdb(t, 2, 5);
	}
	t->aux = ten ? get_be16(&t->cdb[7]) : t->cdb[4];

	memset(buf, 0, hdr);
	if (!dbd) {
		uint8_t *bd = buf + hdr;
		if (llbaa) {
			memset(bd, 0, 16);
			put_be64(bd, lu->nblocks);
			put_be32(bd + 12, lu->block_size);
			n += 16;
		} else {
			memset(bd, 0, 8);
			put_be32(bd, lu->nblocks > 0xffffffffull ? 0xffffffffu : (uint32_t)lu->nblocks);
			put_be24(bd + 5, lu->block_size);
			n += 8;
		}
	}
	for (unsigned i = 0; i < NPAGES; i++)
		if (!one || &mode_pages[i] == one)
			n += mode_page_build(lu, &mode_pages[i], pc, buf + n, wce, swp);

	if (ten) {
		put_be16(buf, (uint16_t)(n - 2));
		buf[3] = device_specific(lu);
		buf[4] = llbaa && !dbd ? 0x01 : 0x00;   /* LONGLBA */
		put_be16(buf + 6, dbd ? 0 : (llbaa ? 16 : 8));
	} else {
		buf[0] = (uint8_t)(n - 1);
		buf[2] = device_specific(lu);
		buf[3] = dbd ? 0 : 8;
	}
	int rc = scsi_task_copy_in(t, buf, n);
	return rc < 0 ? rc : SCSI_TASK_DONE;
}

/* ---- MODE SELECT ---- */

int spc_mode_select_prepare(struct scsi_task *t)
{
	bool ten = t->cdb[0] == 0x55;
	uint32_t len = ten ? get_be16(&t->cdb[7]) : t->cdb[4];

	if (len == 0)                     /* no parameter list: not an error */
		return SCSI_TASK_DONE;
	int rc = task_buf_alloc(t, len, false);
	if (rc < 0)
		return rc;
	t->data_out_len = len;
	return SCSI_TASK_EXEC;
}

/* Validates the parameter list against the current pages and applies it.
 * Returns SCSI_TASK_EXEC on success (sense untouched), DONE with sense set. */
static int mode_select_apply(struct scsi_task *t, const uint8_t *p, uint32_t len, bool *changed)
{
	struct scsi_lu *lu = t->lu;
	bool ten = t->cdb[0] == 0x55;
	bool pf = t->cdb[1] & 0x10;
	uint32_t hdr = ten ? 8 : 4;
	bool wce = atomic_load(&lu->wce), swp = atomic_load(&lu->swp);
	bool new_wce = wce, new_swp = swp;

	if (len < hdr)
		return fail_param_len(t);
	/* MODE DATA LENGTH is reserved in MODE SELECT; medium type is 00h for
	 * SBC; the device-specific byte (WP, DPOFUA) is ignored by SBC-3. */
	if (ten ? get_be16(p) : p[0])
		return fail_invalid_param(t, 0, -1);
	if (p[1] && !ten)
		return fail_invalid_param(t, 1, -1);
	if (ten && p[2])
		return fail_invalid_param(t, 2, -1);
	bool longlba = ten && (p[4] & 0x01);
	if (ten && (p[4] & 0xfe))
		return fail_invalid_param(t, 4, -1);
	if (ten && p[5])
		return fail_invalid_param(t, 5, -1);
	uint32_t bdlen = ten ? get_be16(p + 6) : p[3];
	if (bdlen != 0 && bdlen != (longlba ? 16u : 8u))
		return fail_invalid_param(t, ten ? 6 : 3, -1);
	if (hdr + bdlen > len)
		return fail_param_len(t);
	if (bdlen) {
		/* The block descriptor may restate the capacity and block size
		 * (or give 0 blocks: "unchanged"); it can not change them. */
		const uint8_t *bd = p + hdr;
		uint64_t nb = longlba ? get_be64(bd) : get_be32(bd);
		uint64_t cur = longlba || lu->nblocks <= 0xffffffffull ? lu->nblocks : 0xffffffffull;
		uint32_t blen = longlba ? get_be32(bd + 12) : get_be24(bd + 5);
		if (nb && nb != cur)
			return fail_invalid_param(t, (uint16_t)hdr, -1);
		if (longlba ? get_be32(bd + 8) != 0 : bd[4] != 0)
			return fail_invalid_param(t, (uint16_t)(hdr + (longlba ? 8 : 4)), -1);
		if (blen != lu->block_size)
			return fail_invalid_param(t, (uint16_t)(hdr + (longlba ? 12 : 5)), -1);
	}
	uint32_t off = hdr + bdlen;
	if (off < len && !pf)             /* pages in vendor-specific format */
		return fail_invalid_cdb(t, 1, 4);
	while (off < len) {
		uint8_t cur[32], chg[32];
		if (len - off < 2)
			return fail_param_len(t);
		if (p[off] & 0x80)               /* PS is reserved in MODE SELECT */
			return fail_invalid_param(t, (uint16_t)off, 7);
		if (p[off] & 0x40)               /* SPF: we have no subpages */
			return fail_invalid_param(t, (uint16_t)off, 6);
		const struct mode_page *mp = mode_page_find(p[off] & 0x3f);
		if (!mp)
			return fail_invalid_param(t, (uint16_t)off, 5);
		if (p[off + 1] != mp->len - 2)
			return fail_invalid_param(t, (uint16_t)(off + 1), -1);
		if (len - off < mp->len)
			return fail_param_len(t);
		mode_page_build(lu, mp, PC_CURRENT, cur, wce, swp);
		mode_page_build(lu, mp, PC_CHANGEABLE, chg, wce, swp);
		for (unsigned i = 2; i < mp->len; i++) {
			uint8_t bad = (uint8_t)((p[off + i] ^ cur[i]) & ~chg[i]);
			if (bad) {
				int bit = 7;
				while (!(bad & (1u << bit)))
					bit--;
				return fail_invalid_param(t, (uint16_t)(off + i), bit);
			}
		}
		if (mp->code == 0x08)
			new_wce = p[off + 2] & 0x04;
		else if (mp->code == 0x0a)
			new_swp = p[off + 4] & 0x08;
		off += mp->len;
	}
	*changed = new_wce != wce || new_swp != swp;
	atomic_store(&lu->wce, new_wce);
	atomic_store(&lu->swp, new_swp);
	return SCSI_TASK_EXEC;
}

/* The owner could not be reached (no memory for the message): BUSY. */
static void owner_unreachable(struct scsi_task *t)
{
	t->status = SAM_STAT_BUSY;
	t->sense_len = 0;
	task_finish(t);
}

/* On the LU's owner, the only writer of the mode parameters: one MODE
 * SELECT at a time, without a lock. owner_rc = 1: flush the write cache. */
static void mode_select_at_owner(struct scsi_task *t)
{
	struct scsi_lu *lu = t->lu;
	uint8_t *p = t->owner_data;
	bool changed = false;

	t->owner_data = NULL;
	t->owner_rc = 0;
	bool had_wce = atomic_load(&lu->wce);
	int rc = mode_select_apply(t, p, t->data_out_len, &changed);
	free(p);
	if (rc == SCSI_TASK_EXEC && changed) {
		/* MODE PARAMETERS CHANGED for every other I_T nexus (SPC-4 5.?). */
		lu_ua_add(lu, NULL, t->nexus, 0x2a, 0x01);
		log_info("scsi: %s LUN %u: mode parameters changed (WCE=%d SWP=%d)",
			 lu->target->name, lu->lun, atomic_load(&lu->wce), atomic_load(&lu->swp));
		/* Write cache turned off: what it holds goes to the medium now,
		 * since from here on GOOD means "on the medium". */
		t->owner_rc = had_wce && !atomic_load(&lu->wce);
		t->owner_fanout = true;   /* the UA is everywhere before GOOD */
	}
}

static void mode_select_home(struct scsi_task *t)
{
	owner_fanout_done(t);
	if (t->owner_rc)
		sbc_flush_then_finish(t);
	else
		task_finish(t);
}

void spc_mode_select_exec(struct scsi_task *t)
{
	uint32_t len = t->data_out_len;

	if (t->data_out_got < len) {
		fail_param_len(t);
		task_finish(t);
		return;
	}
	uint8_t *p = malloc(len);
	if (!p) {
		scsi_task_set_sense(t, SK_HARDWARE_ERROR, ASC_INTERNAL_FAILURE);
		task_finish(t);
		return;
	}
	task_buf_read(t, 0, p, len);
	t->owner_data = p;
	if (owner_call(t, mode_select_at_owner, mode_select_home)) {
		t->owner_data = NULL;
		free(p);
		owner_unreachable(t);
	}
}

/* ---- REPORT SUPPORTED OPERATION CODES ---- */

static unsigned put_timeouts(uint8_t *p, const struct scsi_cmd *c)
{
	memset(p, 0, 12);
	put_be16(p, 0x0a);
	put_be32(p + 4, c->nominal_timeout);
	put_be32(p + 8, c->recommended_timeout);
	return 12;
}

/* The first entry of op supported on lu, or NULL if the opcode is unknown. */
static const struct scsi_cmd *opcode_entry(const struct scsi_lu *lu, const struct scsi_cmd *tab,
					   unsigned n, uint8_t op)
{
	for (unsigned i = 0; i < n; i++)
		if (tab[i].opcode == op && scsi_cmd_supported(lu, &tab[i]))
			return &tab[i];
	return NULL;
}

int spc_report_opcodes(struct scsi_task *t)
{
	unsigned ncmd;
	const struct scsi_cmd *tab = scsi_cmd_table(&ncmd);
	bool rctd = t->cdb[2] & 0x80;
	uint8_t opt = t->cdb[2] & 0x07;
	uint8_t req_op = t->cdb[3];
	uint16_t req_sa = get_be16(&t->cdb[4]);
	uint8_t buf[4096];
	unsigned n;

	t->aux = get_be32(&t->cdb[6]);
	if (opt == 0) {
		n = 4;
		for (unsigned i = 0; i < ncmd; i++) {
			const struct scsi_cmd *c = &tab[i];
			if (!scsi_cmd_supported(t->lu, c))
				continue;
			uint8_t *d = buf + n;
			memset(d, 0, 8);
			d[0] = c->opcode;
			if (c->flags & CMD_SA)
				put_be16(d + 2, c->sa);
			d[5] = (uint8_t)((rctd ? 0x02 : 0) | (c->flags & CMD_SA ? 0x01 : 0));
			put_be16(d + 6, c->cdb_len);
			n += 8;
			if (rctd)
				n += put_timeouts(buf + n, c);
		}
		put_be32(buf, n - 4);
	} else if (opt == 1 || opt == 2) {
		const struct scsi_cmd *c = opcode_entry(t->lu, tab, ncmd, req_op);
		bool has_sa = c && (c->flags & CMD_SA);
		/* 001b asks about an opcode without service actions, 010b about an
		 * (opcode, service action) pair. */
		if (opt == 1 && has_sa)
			return fail_invalid_cdb(t, 2, 2);
		if (opt == 2 && c && !has_sa)
			return fail_invalid_cdb(t, 2, 2);
		if (c && opt == 2) {
			bool known;
			c = req_sa <= 0x1f ? scsi_cmd_find(t->lu, req_op, (uint8_t)req_sa, &known) : NULL;
		}
		memset(buf, 0, 4);
		if (!c) {
			buf[1] = 0x01;            /* not supported */
			n = 4;
		} else {
			buf[1] = (uint8_t)((rctd ? 0x80 : 0) | 0x03);   /* supported per standard */
			put_be16(buf + 2, c->cdb_len);
			scsi_cmd_usage(t->lu, c, buf + 4);
			n = 4 + c->cdb_len;
			if (rctd)
				n += put_timeouts(buf + n, c);
		}
	} else {
		return fail_invalid_cdb(t, 2, 2);
	}
	int rc = scsi_task_copy_in(t, buf, n);
	return rc < 0 ? rc : SCSI_TASK_DONE;
}

/* ---- START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL ---- */

/* Our disks are not removable: LOEJ (load/eject) is refused, power conditions
 * are not supported (the usage mask refuses them). START=1 readies a stopped
 * unit; START=0 flushes the write cache (unless NO_FLUSH) and stops it: medium
 * access then gets NOT READY, INITIALIZING COMMAND REQUIRED until a START. */
int spc_start_stop(struct scsi_task *t)
{
	uint8_t b4 = t->cdb[4];

	if (b4 & 0x02)
		return fail_invalid_cdb(t, 4, 1);
	if (b4 & 0x01) {
		atomic_store(&t->lu->stopped, false);
		return SCSI_TASK_DONE;
	}
	if (b4 & 0x04) {                  /* NO_FLUSH */
		atomic_store(&t->lu->stopped, true);
		return SCSI_TASK_DONE;
	}
	return SCSI_TASK_EXEC;
}

void spc_start_stop_exec(struct scsi_task *t)
{
	atomic_store(&t->lu->stopped, true);
	sbc_flush_then_finish(t);
}

int spc_prevent_allow(struct scsi_task *t)
{
	/* PREVENT 00b/01b: nothing can remove a non-removable medium, so both are
	 * trivially honoured. The medium changer values (1xb) are refused by the
	 * usage mask. */
	(void)t;
	return SCSI_TASK_DONE;
}

/* ---- reservations: parsing and state are pr.c's ---- */

/* The reservation state lives on the LU's owner reactor (owner.c): every
 * command below makes a trip there in exec and finishes back home. */

int spc_pr_in(struct scsi_task *t)
{
	t->aux = get_be16(&t->cdb[7]);
	return SCSI_TASK_EXEC;
}

/* The data is built on the owner (malloc) and copied into the task's buffer
 * at home, from the home reactor's pool. */
static void pr_in_at_owner(struct scsi_task *t)
{
	size_t len;
	t->owner_data = pr_in_build(t->lu->pr, t, &len);
	t->owner_rc = (int)len;
}

static void pr_in_home(struct scsi_task *t)
{
	uint8_t *data = t->owner_data;
	t->owner_data = NULL;
	pr_in_copy(t, data, (size_t)t->owner_rc);
	task_finish(t);
}

void spc_pr_in_exec(struct scsi_task *t)
{
	if (owner_call(t, pr_in_at_owner, pr_in_home))
		owner_unreachable(t);
}

int spc_pr_out_prepare(struct scsi_task *t)
{
	uint32_t len = get_be32(&t->cdb[5]);

	if (len > SCSI_MAX_PARAM_LIST)
		return fail_invalid_cdb(t, 5, -1);
	if (len == 0)
		return SCSI_TASK_EXEC;    /* pr_out decides what an empty list means */
	int rc = task_buf_alloc(t, len, false);
	if (rc < 0)
		return rc;
	t->data_out_len = len;
	return SCSI_TASK_EXEC;
}

/* The UAs it queued reach every reactor, and PREEMPT AND ABORT's nexuses are
 * found on each, before the command completes: owner_fanout (ua.c). */
static void pr_out_at_owner(struct scsi_task *t)
{
	pr_out(t->lu->pr, t);
	t->owner_data = t->lu->abort_ports;
	t->lu->abort_ports = NULL;
	t->owner_fanout = true;
}

static void pr_out_home(struct scsi_task *t)
{
	owner_fanout_done(t);         /* PREEMPT AND ABORT: the transport's aborts */
	task_finish(t);
}

void spc_pr_out_exec(struct scsi_task *t)
{
	if (t->data_out_got < t->data_out_len) {
		fail_param_len(t);
		task_finish(t);
		return;
	}
	if (owner_call(t, pr_out_at_owner, pr_out_home))
		owner_unreachable(t);
}

int spc_reserve_prepare(struct scsi_task *t)
{
	(void)t;
	return SCSI_TASK_EXEC;
}

static void reserve_at_owner(struct scsi_task *t)
{
	pr_reserve(t->lu->pr, t);
}

static void release_at_owner(struct scsi_task *t)
{
	pr_release(t->lu->pr, t);
}

void spc_reserve_exec(struct scsi_task *t)
{
	if (owner_call(t, reserve_at_owner, task_finish))
		owner_unreachable(t);
}

void spc_release_exec(struct scsi_task *t)
{
	if (owner_call(t, release_at_owner, task_finish))
		owner_unreachable(t);
}
