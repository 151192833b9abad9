/* test_scsi_spc.c — primary commands, unit attentions and the generic CDB
 * checks of src/scsi, driven through prepare/exec against ram bdevs. */
#include "test_scsi_harness.h"

/* ---- INQUIRY ---- */

static void test_inquiry_standard(void **state)
{
	(void)state;
	struct result r = CMD(0, 0x12, 0, 0, 0, 255, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.len, 96);
	assert_int_equal(r.data[0], 0x00);               /* PQ 0, disk */
	assert_int_equal(r.data[1] & 0x80, 0);           /* not removable */
	assert_int_equal(r.data[2], 0x06);               /* SPC-4 */
	assert_int_equal(r.data[3] & 0x0f, 2);
	assert_true(r.data[3] & 0x10);                   /* HiSup */
	assert_int_equal(r.data[4], r.len - 5);
	assert_true(r.data[7] & 0x02);                   /* CmdQue */
	assert_memory_equal(r.data + 8, "LICHTEST", 8);
	assert_memory_equal(r.data + 16, "UNIT DISK       ", 16);
	assert_memory_equal(r.data + 32, "0.1 ", 4);
	bool spc4 = false, sbc3 = false;
	for (int i = 0; i < 8; i++) {
		uint16_t v = be16(r.data + 58 + 2 * i);
		spc4 |= v == 0x0460;
		sbc3 |= v == 0x04c0;
	}
	assert_true(spc4 && sbc3);
	free_result(&r);
}

static void test_inquiry_alloc_len(void **state)
{
	(void)state;
	struct result r = CMD(0, 0x12, 0, 0, 0, 0, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.len, 0);
	free_result(&r);
	r = CMD(0, 0x12, 0, 0, 0, 5, 0);
	assert_int_equal(r.len, 5);
	assert_int_equal(r.data[4], 91);                 /* full length, truncated data */
	free_result(&r);
	r = CMD(0, 0x12, 0, 0, 0x01, 0x2c, 0);           /* 16-bit allocation length 300 */
	assert_int_equal(r.len, 96);
	free_result(&r);
	r = CMD(0, 0x12, 1, 0x83, 0, 10, 0);
	assert_int_equal(r.len, 10);
	free_result(&r);
}

static void test_inquiry_errors(void **state)
{
	(void)state;
	struct result r = CMD(0, 0x12, 0, 0x80, 0, 255, 0);   /* EVPD=0, page != 0 */
	assert_int_equal(field_pointer(&r), 2);
	assert_invalid_cdb(r);
	assert_invalid_cdb(CMD(0, 0x12, 1, 0x99, 0, 255, 0)); /* unsupported VPD */
	r = CMD(0, 0x12, 0x02, 0, 0, 255, 0);                 /* CmdDt */
	assert_int_equal(field_pointer(&r), 1);
	assert_int_equal(r.sense[15] & 0x4f, 0x40 | 0x08 | 1);/* C/D, BPV, bit 1 */
	assert_invalid_cdb(r);
	r = CMD(0, 0x12, 0, 0, 0, 255, 0x04);                 /* NACA=1 */
	assert_int_equal(field_pointer(&r), 5);
	assert_invalid_cdb(r);
}

static void test_inquiry_missing_lun(void **state)
{
	(void)state;
	struct result r = CMD(7, 0x12, 0, 0, 0, 255, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.data[0], 0x7f);                    /* PQ 011b, type 1Fh */
	free_result(&r);
	assert_sense(CMD(7, 0x12, 1, 0x00, 0, 255, 0), SK_ILLEGAL_REQUEST, 0x25, 0x00);
	assert_sense(CMD(7, 0x00, 0, 0, 0, 0, 0), SK_ILLEGAL_REQUEST, 0x25, 0x00);
	assert_sense(CMD(7, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0), SK_ILLEGAL_REQUEST, 0x25, 0x00);
	assert_sense(CMD(7, 0xc0, 0, 0, 0, 0, 0), SK_ILLEGAL_REQUEST, 0x25, 0x00);
}

static void test_vpd_pages(void **state)
{
	(void)state;
	struct result r = CMD(0, 0x12, 1, 0x00, 0, 255, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	const uint8_t want[] = { 0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2 };
	assert_int_equal(be16(r.data + 2), sizeof(want));
	assert_memory_equal(r.data + 4, want, sizeof(want));
	for (unsigned i = 0; i < sizeof(want); i++) {
		struct result p = CMD(0, 0x12, 1, want[i], 0x01, 0x00, 0);
		assert_int_equal(p.status, SAM_STAT_GOOD);
		assert_int_equal(p.data[1], want[i]);
		assert_int_equal(be16(p.data + 2) + 4, p.len);
		free_result(&p);
	}
	free_result(&r);
}

static void test_vpd_serial(void **state)
{
	(void)state;
	struct result r = CMD(1, 0x12, 1, 0x80, 0, 255, 0);
	assert_int_equal(r.len, 4 + 10);
	assert_memory_equal(r.data + 4, "SERIAL-ONE", 10);
	free_result(&r);
	r = CMD(0, 0x12, 1, 0x80, 0, 255, 0);             /* derived: 16 hex digits */
	assert_int_equal(r.len, 4 + 16);
	for (int i = 0; i < 16; i++)
		assert_non_null(strchr("0123456789abcdef", r.data[4 + i]));
	free_result(&r);
}

struct desig {
	uint8_t proto_cs, piv_assoc_type, len;
	const uint8_t *data;
};

static int find_designators(const struct result *r, struct desig *d, int max)
{
	int n = 0;
	unsigned off = 4, end = 4 + be16(r->data + 2);
	assert_int_equal(end, r->len);
	while (off + 4 <= end && n < max) {
		d[n].proto_cs = r->data[off];
		d[n].piv_assoc_type = r->data[off + 1];
		d[n].len = r->data[off + 3];
		d[n].data = r->data + off + 4;
		off += 4 + d[n].len;
		n++;
	}
	assert_int_equal(off, end);
	return n;
}

static void naa_of(uint64_t lun, struct scsi_target *tgt, uint8_t out[16])
{
	struct scsi_target *saved = E.tgt;
	E.tgt = tgt;
	struct result r = CMD(lun, 0x12, 1, 0x83, 0, 255, 0);
	E.tgt = saved;
	assert_int_equal(r.status, SAM_STAT_GOOD);
	struct desig d[8];
	int n = find_designators(&r, d, 8);
	bool found = false;
	for (int i = 0; i < n; i++) {
		if ((d[i].piv_assoc_type & 0x3f) == 0x03) {    /* LU assoc, NAA */
			assert_int_equal(d[i].proto_cs & 0x0f, 1);  /* binary */
			assert_int_equal(d[i].len, 16);
			assert_int_equal(d[i].data[0] >> 4, 6);     /* NAA 6 */
			memcpy(out, d[i].data, 16);
			found = true;
		}
	}
	assert_true(found);
	free_result(&r);
}

static void test_vpd_device_id(void **state)
{
	(void)state;
	struct result r = CMD(0, 0x12, 1, 0x83, 0, 255, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	struct desig d[8];
	int n = find_designators(&r, d, 8);
	bool t10 = false, port_name = false, rel = false;
	for (int i = 0; i < n; i++) {
		uint8_t type = d[i].piv_assoc_type & 0x0f, assoc = (d[i].piv_assoc_type >> 4) & 3;
		if (type == 1) {
			assert_int_equal(d[i].proto_cs & 0x0f, 2);     /* ASCII */
			assert_memory_equal(d[i].data, "LICHTEST", 8);
			t10 = true;
		}
		if (type == 8 && assoc == 1) {
			assert_int_equal(d[i].proto_cs, 0x53);        /* iSCSI, UTF-8 */
			assert_true(d[i].piv_assoc_type & 0x80);
			assert_int_equal(d[i].len % 4, 0);
			assert_string_equal((const char *)d[i].data, TGT_NAME ",t,0x0001");
			port_name = true;
		}
		if (type == 4) {
			assert_int_equal(assoc, 1);
			assert_int_equal(be16(d[i].data + 2), 1);
			rel = true;
		}
	}
	assert_true(t10 && port_name && rel);
	free_result(&r);

	/* NAA: per LU, and stable: the same name and LUN give the same id. */
	uint8_t a[16], b[16], c[16];
	naa_of(0, E.tgt, a);
	naa_of(1, E.tgt, b);
	assert_memory_not_equal(a, b, 16);
	struct scsi_target *again = scsi_target_create(TGT_NAME, 1);
	struct scsi_lu_opts o = lu_opts(0, E.bdev[0]);
	assert_int_equal(scsi_target_add_lu(again, &o), 0);
	naa_of(0, again, c);
	assert_memory_equal(a, c, 16);
	scsi_target_destroy(again);
}

static void test_long_target_name(void **state)
{
	(void)state;
	char name[224];
	memset(name, 'x', 223);
	memcpy(name, "iqn.2026-11.org.lich:", 21);
	name[223] = 0;
	assert_null(scsi_target_create("", 1));
	struct scsi_target *big = scsi_target_create(name, 0xbeef);
	assert_non_null(big);
	assert_string_equal(scsi_target_name(big), name);
	struct scsi_lu_opts o = lu_opts(5, E.bdev[0]);
	o.serial = "S";
	o.device_id = "0123456789012345678901234567890123456789012345678901234567890123";
	assert_int_equal(scsi_target_add_lu(big, &o), 0);
	assert_non_null(scsi_target_find_lu(big, 5));
	assert_null(scsi_target_find_lu(big, 4));
	struct scsi_target *saved = E.tgt;
	E.tgt = big;
	struct result r = CMD(5, 0x12, 1, 0x83, 0x04, 0x00, 0);
	E.tgt = saved;
	assert_int_equal(r.status, SAM_STAT_GOOD);
	struct desig d[8];
	int n = find_designators(&r, d, 8);
	assert_int_equal(n, 5);
	char want[240];
	snprintf(want, sizeof(want), "%s,t,0x%04x", name, 0xbeef);
	bool port = false, dev = false;
	for (int i = 0; i < n; i++) {
		if ((d[i].piv_assoc_type & 0x3f) == 0x18) {
			assert_string_equal((const char *)d[i].data, want);
			port = true;
		}
		if ((d[i].piv_assoc_type & 0x3f) == 0x28) {
			assert_string_equal((const char *)d[i].data, name);
			dev = true;
		}
		if ((d[i].piv_assoc_type & 0x0f) == 1)        /* vendor + device id */
			assert_memory_equal(d[i].data + 8, o.device_id, 64);
	}
	assert_true(port && dev);
	free_result(&r);
	scsi_target_destroy(big);
}

static void test_vpd_limits(void **state)
{
	(void)state;
	struct result r = CMD(0, 0x12, 1, 0xb0, 0, 255, 0);
	assert_int_equal(r.len, 64);
	assert_int_equal(be16(r.data + 2), 0x3c);
	assert_int_equal(r.data[5], 255);                           /* CAW */
	assert_int_equal(be32(r.data + 8), SCSI_MAX_XFER / 512);
	assert_int_equal(be32(r.data + 20), 1u << 20);              /* unmap LBAs */
	assert_int_equal(be32(r.data + 24), 256);
	assert_int_equal(be64(r.data + 36), 32768);                 /* write same */
	free_result(&r);
	r = CMD(1, 0x12, 1, 0xb0, 0, 255, 0);
	assert_int_equal(be32(r.data + 8), SCSI_MAX_XFER / 4096);
	free_result(&r);

	r = CMD(0, 0x12, 1, 0xb2, 0, 255, 0);
	assert_int_equal(r.len, 8);
	assert_int_equal(r.data[5], 0x80 | 0x40 | 0x20 | 0x04);     /* LBPU LBPWS LBPWS10 LBPRZ */
	assert_int_equal(r.data[6] & 0x07, 2);                      /* thin */
	free_result(&r);
	r = CMD(0, 0x12, 1, 0xb1, 0, 255, 0);
	assert_int_equal(be16(r.data + 4), 1);                      /* non-rotating */
	free_result(&r);
	r = CMD(0, 0x12, 1, 0x86, 0, 255, 0);
	assert_int_equal(r.len, 64);
	assert_true(r.data[7] & 0x01);                              /* LUICLR */
	free_result(&r);
}

/* ---- REPORT LUNS, REQUEST SENSE ---- */

static void test_report_luns(void **state)
{
	(void)state;
	struct result r = CMD(0, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(be32(r.data), 16);
	assert_int_equal(r.len, 24);
	const uint8_t l0[8] = { 0 }, l1[8] = { 0, 1 };
	assert_memory_equal(r.data + 8, l0, 8);
	assert_memory_equal(r.data + 16, l1, 8);
	free_result(&r);
	r = CMD(0, 0xa0, 0, 2, 0, 0, 0, 0, 0, 0, 255, 0, 0);
	assert_int_equal(be32(r.data), 16);
	free_result(&r);
	r = CMD(0, 0xa0, 0, 1, 0, 0, 0, 0, 0, 0, 255, 0, 0);       /* well known only */
	assert_int_equal(be32(r.data), 0);
	free_result(&r);
	r = CMD(0, 0xa0, 0, 3, 0, 0, 0, 0, 0, 0, 255, 0, 0);
	assert_int_equal(field_pointer(&r), 2);
	assert_invalid_cdb(r);
	assert_invalid_cdb(CMD(0, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0));
	r = CMD(9, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0);        /* any LUN, truncated */
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.len, 16);
	assert_int_equal(be32(r.data), 16);
	free_result(&r);
}

static void test_lu_inventory_changes(void **state)
{
	(void)state;
	struct scsi_lu_opts o = lu_opts(300, E.bdev[0]);
	assert_int_equal(scsi_target_add_lu(E.tgt, &o), 0);
	assert_int_equal(scsi_target_add_lu(E.tgt, &o), -EEXIST);
	assert_int_equal(scsi_target_lu_count(E.tgt), 3);
	/* n1 sees REPORTED LUNS DATA HAS CHANGED once (LUICLR), on any LU. */
	assert_sense(CMD(0, 0x00, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x3f, 0x0e);
	assert_good(CMD(1, 0x00, 0, 0, 0, 0, 0));
	assert_good(CMD(0, 0x00, 0, 0, 0, 0, 0));
	/* the new LU powered on for n1 */
	assert_sense(CMD(300, 0x00, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x29, 0x00);
	assert_good(CMD(300, 0x00, 0, 0, 0, 0, 0));
	/* n2: REPORT LUNS clears it; LUN 300 is flat-space addressed */
	struct result r = CMD_N(&E.n2, 1, 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0);
	assert_int_equal(be32(r.data), 24);
	const uint8_t l300[8] = { 0x41, 0x2c };
	assert_memory_equal(r.data + 24, l300, 8);
	free_result(&r);
	assert_good(CMD_N(&E.n2, 0, 0x00, 0, 0, 0, 0, 0));
	clear_ua(&E.n2, 300);

	assert_int_equal(scsi_target_del_lu(E.tgt, 300), 0);
	assert_int_equal(scsi_target_del_lu(E.tgt, 300), -ENOENT);
	assert_int_equal(scsi_target_lu_count(E.tgt), 2);
	assert_sense(CMD(300, 0x00, 0, 0, 0, 0, 0), SK_ILLEGAL_REQUEST, 0x25, 0x00);
	/* REQUEST SENSE returns and clears the UA */
	r = CMD(1, 0x03, 0, 0, 0, 252, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.data[0], 0x70);
	assert_int_equal(r.data[2], SK_UNIT_ATTENTION);
	assert_int_equal(r.data[12], 0x3f);
	assert_int_equal(r.data[13], 0x0e);
	free_result(&r);
	assert_good(CMD(0, 0x00, 0, 0, 0, 0, 0));
	clear_ua(&E.n2, 0);
	clear_ua(&E.n2, 1);

	/* bad options */
	struct scsi_lu_opts bad = lu_opts(4, E.bdev[0]);
	bad.vendor = "TOO-LONG-VENDOR";
	assert_int_equal(scsi_target_add_lu(E.tgt, &bad), -EINVAL);
	bad = lu_opts(4, E.bdev[0]);
	bad.product = "tab\there";
	assert_int_equal(scsi_target_add_lu(E.tgt, &bad), -EINVAL);
	bad = lu_opts(SCSI_MAX_XFER, E.bdev[0]);
	assert_int_equal(scsi_target_add_lu(E.tgt, &bad), -EINVAL);
	assert_int_equal(scsi_target_lu_count(E.tgt), 2);
}

static void test_request_sense(void **state)
{
	(void)state;
	struct result r = CMD(0, 0x03, 0, 0, 0, 18, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.len, 18);
	assert_int_equal(r.data[0], 0x70);
	assert_int_equal(r.data[2], SK_NO_SENSE);
	free_result(&r);
	r = CMD(0, 0x03, 1, 0, 0, 252, 0);                   /* descriptor format */
	assert_int_equal(r.data[0], 0x72);
	assert_int_equal(r.data[1], SK_NO_SENSE);
	free_result(&r);
	r = CMD(5, 0x03, 0, 0, 0, 252, 0);                   /* no LU there */
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.data[2], SK_ILLEGAL_REQUEST);
	assert_int_equal(r.data[12], 0x25);
	free_result(&r);

	/* LU reset: every nexus, the one that asked too, gets 29h/03h. */
	assert_int_equal(scsi_lu_reset(E.tgt, 0, &E.n1), 0);
	assert_int_equal(scsi_lu_reset(E.tgt, 42, &E.n1), -ENOENT);
	r = CMD(0, 0x03, 1, 0, 0, 252, 0);
	assert_int_equal(r.data[0], 0x72);
	assert_int_equal(r.data[1], SK_UNIT_ATTENTION);
	assert_int_equal(r.data[2], 0x29);
	assert_int_equal(r.data[3], 0x03);
	free_result(&r);
	assert_good(CMD(0, 0x00, 0, 0, 0, 0, 0));
	/* INQUIRY neither reports nor clears a UA */
	assert_good(CMD_N(&E.n2, 0, 0x12, 0, 0, 0, 36, 0));
	assert_sense(CMD_N(&E.n2, 0, 0x00, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x29, 0x03);
	assert_good(CMD_N(&E.n2, 0, 0x00, 0, 0, 0, 0, 0));
}

static void test_unit_attentions(void **state)
{
	(void)state;
	struct scsi_nexus n3;
	nexus_init(&n3, "iqn.2026-11.org.lich:init3", "023d00000003");
	assert_int_equal(scsi_nexus_attach(E.tgt, &n3), 0);
	assert_true(n3.id && n3.id != E.n1.id && n3.id != E.n2.id);
	/* an unknown opcode does not hide a UA */
	assert_sense(CMD_N(&n3, 1, 0xc0, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x29, 0x00);
	assert_sense(CMD_N(&n3, 1, 0xc0, 0, 0, 0, 0, 0), SK_ILLEGAL_REQUEST, 0x20, 0x00);
	clear_ua(&n3, 0);

	scsi_lu_tasks_cleared(E.tgt, 0, &E.n1);
	assert_good(CMD(0, 0x00, 0, 0, 0, 0, 0));
	assert_sense(CMD_N(&E.n2, 0, 0x00, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x2f, 0x00);
	assert_sense(CMD_N(&n3, 0, 0x00, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x2f, 0x00);

	assert_int_equal(scsi_nexus_reset(E.tgt, &n3), 0);
	assert_sense(CMD_N(&n3, 0, 0x00, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x29, 0x07);
	assert_sense(CMD_N(&n3, 1, 0x00, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x29, 0x07);
	assert_good(CMD(1, 0x00, 0, 0, 0, 0, 0));

	/* a reset supersedes queued UAs; duplicates are not queued twice */
	scsi_lu_tasks_cleared(E.tgt, 1, &E.n1);
	scsi_lu_tasks_cleared(E.tgt, 1, &E.n1);
	assert_int_equal(scsi_target_reset(E.tgt, &E.n1), 0);
	assert_sense(CMD_N(&n3, 1, 0x00, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x29, 0x00);
	assert_good(CMD_N(&n3, 1, 0x00, 0, 0, 0, 0, 0));
	scsi_nexus_detach(E.tgt, &n3);
	clear_ua(&E.n1, 0);
	clear_ua(&E.n1, 1);
	clear_ua(&E.n2, 0);
	clear_ua(&E.n2, 1);
}

/* ---- MODE SENSE / MODE SELECT ---- */

/* Finds page code in MODE SENSE data; returns its offset or -1. */
static int find_page(const struct result *r, bool ten, uint8_t code)
{
	unsigned hdr = ten ? 8 : 4;
	unsigned bd = ten ? be16(r->data + 6) : r->data[3];
	unsigned total = ten ? be16(r->data) + 2u : r->data[0] + 1u;
	for (unsigned off = hdr + bd; off + 2 <= total && off + 2 <= r->len;
	     off += 2 + r->data[off + 1])
		if ((r->data[off] & 0x3f) == code)
			return (int)off;
	return -1;
}

static void test_mode_sense(void **state)
{
	(void)state;
	struct result r = CMD(0, 0x1a, 0, 0x3f, 0, 255, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.data[0], r.len - 1);
	assert_int_equal(r.data[1], 0);
	assert_int_equal(r.data[2], 0x10);                 /* DPOFUA, no WP */
	assert_int_equal(r.data[3], 8);
	assert_int_equal(be32(r.data + 4), 16384);        /* 8 MiB of 512 B */
	assert_int_equal(be32(r.data + 8) & 0xffffff, 512);
	int c = find_page(&r, false, 0x08), k = find_page(&r, false, 0x0a), i = find_page(&r, false, 0x1c);
	assert_true(c > 0 && k > c && i > k);
	assert_int_equal(r.data[c + 1], 0x12);
	assert_true(r.data[c + 2] & 0x04);                 /* WCE */
	assert_int_equal(r.data[k + 1], 0x0a);
	assert_int_equal(r.data[k + 2] & 0x04, 0);         /* D_SENSE 0 */
	free_result(&r);

	r = CMD(0, 0x1a, 0x08, 0x40 | 0x3f, 0xff, 255, 0); /* DBD, changeable, all subpages */
	assert_int_equal(r.data[3], 0);
	c = find_page(&r, false, 0x08);
	k = find_page(&r, false, 0x0a);
	assert_int_equal(r.data[c + 2], 0x04);
	assert_int_equal(r.data[k + 4], 0x08);
	free_result(&r);
	r = CMD(0, 0x1a, 0x08, 0x80 | 0x0a, 0, 255, 0);    /* default control page */
	assert_int_equal(r.len, 4 + 12);
	free_result(&r);
	r = CMD(0, 0x1a, 0, 0x0a, 0, 4, 0);                /* allocation length */
	assert_int_equal(r.len, 4);
	assert_int_equal(r.data[0], 4 + 8 + 12 - 1);
	free_result(&r);

	assert_sense(CMD(0, 0x1a, 0, 0xc0 | 0x08, 0, 255, 0), SK_ILLEGAL_REQUEST, 0x39, 0x00);
	r = CMD(0, 0x1a, 0, 0x05, 0, 255, 0);
	assert_int_equal(field_pointer(&r), 2);
	assert_invalid_cdb(r);
	assert_invalid_cdb(CMD(0, 0x1a, 0, 0x08, 0x01, 255, 0));

	/* MODE SENSE(10) with long LBA descriptor */
	r = CMD(0, 0x5a, 0x10, 0x08, 0, 0, 0, 0, 0, 255, 0);
	assert_int_equal(be16(r.data), r.len - 2);
	assert_int_equal(r.data[4] & 1, 1);
	assert_int_equal(be16(r.data + 6), 16);
	assert_int_equal(be64(r.data + 8), 16384);
	assert_int_equal(be32(r.data + 20), 512);
	assert_int_equal(r.data[24], 0x08);
	free_result(&r);
}

static struct result mode_select6(struct scsi_nexus *n, const uint8_t *p, uint8_t len, uint8_t b1)
{
	const uint8_t cdb[6] = { 0x15, b1, 0, 0, len, 0 };
	return cmdn(n, 0, cdb, 6, p, len);
}

static bool current_wce(void)
{
	struct result r = CMD(0, 0x1a, 0x08, 0x08, 0, 255, 0);
	bool wce = r.data[4 + 2] & 0x04;
	free_result(&r);
	return wce;
}

static void caching_param(uint8_t *p, bool wce)
{
	struct result r = CMD(0, 0x1a, 0x08, 0x08, 0, 255, 0);
	assert_int_equal(r.len, 24);
	memcpy(p, r.data, 24);
	free_result(&r);
	p[0] = 0;                                          /* mode data length: reserved */
	p[2] = 0;
	p[4 + 2] = (uint8_t)((p[4 + 2] & ~0x04) | (wce ? 0x04 : 0));
}

static void test_mode_select_wce(void **state)
{
	(void)state;
	uint8_t p[64];
	assert_true(current_wce());
	caching_param(p, false);
	assert_good(mode_select6(&E.n1, p, 24, 0x10));
	assert_false(current_wce());
	/* the other nexus learns of it; the one that changed it does not */
	assert_sense(CMD_N(&E.n2, 0, 0x00, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x2a, 0x01);
	assert_good(CMD_N(&E.n2, 0, 0x00, 0, 0, 0, 0, 0));
	assert_good(CMD(0, 0x00, 0, 0, 0, 0, 0));
	/* writes still work with the cache off (each one FUA) */
	uint8_t blk[512];
	memset(blk, 0x3c, sizeof(blk));
	assert_good(CMD_OUT(0, blk, 512, 0x2a, 0, 0, 0, 0, 9, 0, 0, 1, 0));
	/* same values again: no change, no UA */
	assert_good(mode_select6(&E.n1, p, 24, 0x10));
	assert_good(CMD_N(&E.n2, 0, 0x00, 0, 0, 0, 0, 0));

	/* MODE SELECT(10) with a block descriptor that restates the geometry */
	uint8_t q[8 + 8 + 20] = { 0 };
	q[7] = 8;
	q[8 + 0] = 0; q[8 + 1] = 0; q[8 + 2] = 0x40; q[8 + 3] = 0;   /* 16384 blocks */
	q[8 + 6] = 0x02;                                             /* 512 bytes */
	memcpy(q + 16, p + 4, 20);
	q[16 + 2] |= 0x04;
	const uint8_t cdb[10] = { 0x55, 0x10, 0, 0, 0, 0, 0, 0, sizeof(q), 0 };
	assert_good(cmdn(&E.n1, 0, cdb, 10, q, sizeof(q)));
	assert_true(current_wce());
	clear_ua(&E.n2, 0);
	/* empty parameter list: nothing, not an error */
	assert_good(mode_select6(&E.n1, p, 0, 0x10));
}

static void test_mode_select_errors(void **state)
{
	(void)state;
	uint8_t p[64], q[64];
	caching_param(p, false);

	memcpy(q, p, 24);
	q[4 + 2] |= 0x01;                                  /* RCD is not changeable */
	struct result r = mode_select6(&E.n1, q, 24, 0x10);
	assert_int_equal(field_pointer(&r), 4 + 2);
	assert_int_equal(r.sense[15] & 0x4f, 0x08 | 0);    /* C/D=0, BPV, bit 0 */
	assert_sense(r, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	memcpy(q, p, 24);
	q[4 + 1] = 0x10;                                   /* wrong page length */
	assert_sense(mode_select6(&E.n1, q, 24, 0x10), SK_ILLEGAL_REQUEST, 0x26, 0x00);
	memcpy(q, p, 24);
	q[4] = 0x05;                                       /* unsupported page */
	assert_sense(mode_select6(&E.n1, q, 24, 0x10), SK_ILLEGAL_REQUEST, 0x26, 0x00);
	memcpy(q, p, 24);
	q[4] |= 0x80;                                      /* PS */
	assert_sense(mode_select6(&E.n1, q, 24, 0x10), SK_ILLEGAL_REQUEST, 0x26, 0x00);
	memcpy(q, p, 24);
	q[0] = 23;                                         /* mode data length reserved */
	assert_sense(mode_select6(&E.n1, q, 24, 0x10), SK_ILLEGAL_REQUEST, 0x26, 0x00);
	memcpy(q, p, 24);
	q[3] = 4;                                          /* bad block descriptor length */
	assert_sense(mode_select6(&E.n1, q, 24, 0x10), SK_ILLEGAL_REQUEST, 0x26, 0x00);
	assert_sense(mode_select6(&E.n1, p, 2, 0x10), SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	assert_sense(mode_select6(&E.n1, p, 20, 0x10), SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	assert_invalid_cdb(mode_select6(&E.n1, p, 24, 0x11));   /* SP */
	assert_invalid_cdb(mode_select6(&E.n1, p, 24, 0x00));   /* PF=0 with a page */
	/* the initiator sent less than the parameter list length */
	const uint8_t cdb[6] = { 0x15, 0x10, 0, 0, 24, 0 };
	assert_sense(cmdn(&E.n1, 0, cdb, 6, p, 10), SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	/* block descriptor with another block size */
	uint8_t b[4 + 8 + 20];
	memset(b, 0, sizeof(b));
	b[3] = 8;
	b[4 + 6] = 0x10;                                   /* 4096 */
	memcpy(b + 12, p + 4, 20);
	assert_sense(mode_select6(&E.n1, b, sizeof(b), 0x10), SK_ILLEGAL_REQUEST, 0x26, 0x00);
	/* nothing was applied */
	assert_true(current_wce());
	assert_good(CMD_N(&E.n2, 0, 0x00, 0, 0, 0, 0, 0));
}

static void test_mode_select_swp(void **state)
{
	(void)state;
	struct result r = CMD(0, 0x1a, 0x08, 0x0a, 0, 255, 0);
	uint8_t p[16];
	assert_int_equal(r.len, 16);
	memcpy(p, r.data, 16);
	free_result(&r);
	p[0] = 0;
	p[2] = 0;
	p[4 + 4] |= 0x08;                                  /* SWP */
	assert_good(mode_select6(&E.n1, p, 16, 0x10));
	r = CMD(0, 0x1a, 0x08, 0x0a, 0, 255, 0);
	assert_int_equal(r.data[2] & 0x80, 0x80);          /* WP */
	assert_int_equal(r.data[4 + 4] & 0x08, 0x08);
	free_result(&r);
	uint8_t blk[512] = { 0 };
	assert_sense(CMD_OUT(0, blk, 512, 0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0),
		     SK_DATA_PROTECT, 0x27, 0x02);
	assert_good(CMD(0, 0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0));
	/* LU reset: mode parameters back to their defaults */
	assert_int_equal(scsi_lu_reset(E.tgt, 0, &E.n1), 0);
	clear_ua(&E.n1, 0);
	clear_ua(&E.n2, 0);
	assert_good(CMD_OUT(0, blk, 512, 0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0));
}

/* ---- REPORT SUPPORTED OPERATION CODES ---- */

struct opdesc {
	uint8_t op;
	uint16_t sa;
	bool servactv;
	uint16_t cdb_len;
};

static int all_opcodes(uint64_t lun, struct opdesc *d, int max, bool rctd)
{
	struct result r = CMD(lun, 0xa3, 0x0c, rctd ? 0x80 : 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	unsigned len = be32(r.data) + 4, off = 4;
	int n = 0;
	assert_int_equal(len, r.len);
	while (off < len && n < max) {
		d[n].op = r.data[off];
		d[n].sa = be16(r.data + off + 2);
		d[n].servactv = r.data[off + 5] & 0x01;
		d[n].cdb_len = be16(r.data + off + 6);
		bool ctdp = r.data[off + 5] & 0x02;
		assert_int_equal(ctdp, rctd);
		off += 8;
		if (ctdp) {
			assert_int_equal(be16(r.data + off), 0x0a);
			off += 12;
		}
		if (!d[n].servactv)
			assert_int_equal(d[n].sa, 0);
		n++;
	}
	assert_int_equal(off, len);
	free_result(&r);
	return n;
}

static bool has_op(const struct opdesc *d, int n, uint8_t op, int sa)
{
	for (int i = 0; i < n; i++)
		if (d[i].op == op && (sa < 0 || d[i].sa == sa))
			return true;
	return false;
}

static void test_rsoc_all(void **state)
{
	(void)state;
	struct opdesc d[128];
	int n = all_opcodes(0, d, 128, false);
	assert_true(n > 40);
	assert_true(has_op(d, n, 0x28, -1));
	assert_true(has_op(d, n, 0x42, -1));               /* UNMAP: thin LU */
	assert_true(has_op(d, n, 0x9e, 0x10) && has_op(d, n, 0x9e, 0x12));
	assert_true(has_op(d, n, 0x5f, 0x07));
	assert_int_equal(all_opcodes(0, d, 128, true), n);

	/* a fully provisioned LU has no UNMAP and no WRITE SAME UNMAP bit */
	struct bdev_opts bo = { .type = BDEV_TYPE_RAM, .path = "ro2", .size = 1u << 20,
				.block_size = 512, .readonly = true };
	assert_int_equal(bdev_open(&bo, &E.bdev[3]), 0);
	struct scsi_lu_opts o = lu_opts(3, E.bdev[3]);
	assert_int_equal(scsi_target_add_lu(E.tgt, &o), 0);
	clear_ua(&E.n1, 3);
	clear_ua(&E.n1, 0);
	clear_ua(&E.n2, 0);
	clear_ua(&E.n2, 3);
	n = all_opcodes(3, d, 128, false);
	assert_false(has_op(d, n, 0x42, -1));
	assert_sense(CMD(3, 0x42, 0, 0, 0, 0, 0, 0, 0, 8, 0), SK_ILLEGAL_REQUEST, 0x20, 0x00);
	struct result r = CMD(3, 0xa3, 0x0c, 0x01, 0x41, 0, 0, 0, 0, 1, 0, 0, 0);
	assert_int_equal(r.data[4 + 1], 0x00);             /* WRITE SAME(10) byte 1 */
	free_result(&r);
	r = CMD(3, 0x12, 1, 0xb2, 0, 255, 0);
	assert_int_equal(r.data[5], 0);
	free_result(&r);
	r = CMD(3, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0);
	assert_int_equal(r.data[14], 0);                   /* LBPME 0 */
	free_result(&r);
	uint8_t blk[512] = { 0 };
	assert_sense(CMD_OUT(3, blk, 512, 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0), SK_DATA_PROTECT, 0x27, 0x00);
	assert_int_equal(scsi_target_del_lu(E.tgt, 3), 0);
	clear_ua(&E.n1, 0);
	clear_ua(&E.n2, 0);
	clear_ua(&E.n1, 1);
	clear_ua(&E.n2, 1);
}

static void test_rsoc_one(void **state)
{
	(void)state;
	struct result r = CMD(0, 0xa3, 0x0c, 0x01, 0x28, 0, 0, 0, 0, 1, 0, 0, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.data[1] & 0x07, 0x03);
	assert_int_equal(be16(r.data + 2), 10);
	assert_int_equal(r.len, 14);
	assert_int_equal(r.data[4], 0x28);
	assert_int_equal(r.data[5], 0x1a);                 /* DPO FUA FUA_NV, no RDPROTECT */
	assert_int_equal(r.data[13], 0x00);                /* control byte: NACA refused */
	free_result(&r);
	r = CMD(0, 0xa3, 0x0c, 0x81, 0x2a, 0, 0, 0, 0, 1, 0, 0, 0);   /* RCTD */
	assert_int_equal(r.data[1], 0x83);
	assert_int_equal(r.len, 4 + 10 + 12);
	assert_int_equal(be16(r.data + 14), 0x0a);
	free_result(&r);
	r = CMD(0, 0xa3, 0x0c, 0x01, 0xc0, 0, 0, 0, 0, 1, 0, 0, 0);   /* unknown */
	assert_int_equal(r.data[1] & 0x07, 0x01);
	free_result(&r);
	r = CMD(0, 0xa3, 0x0c, 0x01, 0x9e, 0, 0x10, 0, 0, 1, 0, 0, 0);  /* has SAs */
	assert_int_equal(field_pointer(&r), 2);
	assert_invalid_cdb(r);
	r = CMD(0, 0xa3, 0x0c, 0x02, 0x9e, 0, 0x10, 0, 0, 1, 0, 0, 0);
	assert_int_equal(r.data[1] & 0x07, 0x03);
	assert_int_equal(be16(r.data + 2), 16);
	assert_int_equal(r.data[4], 0x9e);
	free_result(&r);
	r = CMD(0, 0xa3, 0x0c, 0x02, 0x9e, 0, 0x11, 0, 0, 1, 0, 0, 0);  /* unknown SA */
	assert_int_equal(r.data[1] & 0x07, 0x01);
	free_result(&r);
	assert_invalid_cdb(CMD(0, 0xa3, 0x0c, 0x02, 0x28, 0, 0, 0, 0, 1, 0, 0, 0));
	assert_invalid_cdb(CMD(0, 0xa3, 0x0c, 0x03, 0x28, 0, 0, 0, 0, 1, 0, 0, 0));
}

/* The usage data is what prepare enforces: every bit reported as unused is
 * refused with INVALID FIELD IN CDB pointing exactly at it. */
static void test_rsoc_usage_is_enforced(void **state)
{
	(void)state;
	struct opdesc d[128];
	int n = all_opcodes(0, d, 128, false);
	int checked = 0;
	for (int i = 0; i < n; i++) {
		struct result u = CMD(0, 0xa3, 0x0c, d[i].servactv ? 0x02 : 0x01, d[i].op,
				      (uint8_t)(d[i].sa >> 8), (uint8_t)d[i].sa, 0, 0, 1, 0, 0, 0);
		assert_int_equal(u.status, SAM_STAT_GOOD);
		assert_int_equal(be16(u.data + 2), d[i].cdb_len);
		const uint8_t *usage = u.data + 4;
		assert_int_equal(usage[0], d[i].op);
		for (unsigned byte = 1; byte < d[i].cdb_len; byte++) {
			for (int bit = 0; bit < 8; bit++) {
				if (usage[byte] & (1u << bit))
					continue;
				uint8_t cdb[16] = { d[i].op };
				if (d[i].servactv)
					cdb[1] = (uint8_t)d[i].sa;
				cdb[byte] |= (uint8_t)(1u << bit);
				struct result r = cmdn(&E.n1, 0, cdb, d[i].cdb_len, NULL, 0);
				if (r.status != SAM_STAT_CHECK_CONDITION || r.asc != 0x24 ||
				    field_pointer(&r) != (int)byte || (r.sense[15] & 0x0f) != (0x08 | bit))
					fail_msg("opcode %02x/%02x byte %u bit %d: status %02x %x/%02x fp %d",
						 d[i].op, d[i].sa, byte, bit, r.status, r.key, r.asc,
						 field_pointer(&r));
				free_result(&r);
				checked++;
			}
		}
		free_result(&u);
	}
	assert_true(checked > 100);
}

/* ---- other primary commands and generic checks ---- */

static void test_generic_checks(void **state)
{
	(void)state;
	assert_sense(CMD(0, 0xc0, 0, 0, 0, 0, 0), SK_ILLEGAL_REQUEST, 0x20, 0x00);
	assert_sense(CMD(0, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0), SK_ILLEGAL_REQUEST, 0x20, 0x00);
	struct result r = CMD(0, 0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0);
	assert_int_equal(field_pointer(&r), 1);            /* unknown service action */
	assert_invalid_cdb(r);
	assert_invalid_cdb(CMD(0, 0xa3, 0x00, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0));
	assert_invalid_cdb(CMD(0, 0x00, 0, 0, 0, 0, 0x01));    /* LINK */
	assert_invalid_cdb(CMD(0, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x04));   /* NACA */

	struct scsi_task *t = calloc(1, sizeof(*t));           /* ACA attribute */
	const uint8_t tur[6] = { 0 };
	run_cmd(t, &E.n1, 0, tur, 6, NULL, 0);
	scsi_task_release(t);
	scsi_task_init(t);
	t->target = E.tgt;
	t->nexus = &E.n1;
	t->attr = SCSI_ATTR_ACA;
	t->pool = E.pool;
	t->qp = E.qp;
	assert_int_equal(scsi_task_prepare(t), SCSI_TASK_DONE);
	assert_int_equal(t->sense[12], 0x49);
	scsi_task_release(t);
	free(t);

	/* START STOP UNIT: stop, medium access NOT READY, start again */
	assert_good(CMD(0, 0x1b, 0, 0, 0, 0x00, 0));
	assert_sense(CMD(0, 0x00, 0, 0, 0, 0, 0), SK_NOT_READY, 0x04, 0x02);
	assert_sense(CMD(0, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0), SK_NOT_READY, 0x04, 0x02);
	assert_good(CMD(0, 0x12, 0, 0, 0, 36, 0));
	r = CMD(0, 0x03, 0, 0, 0, 18, 0);
	assert_int_equal(r.data[2], SK_NOT_READY);
	free_result(&r);
	assert_good(CMD(1, 0x00, 0, 0, 0, 0, 0));              /* other LU unaffected */
	assert_good(CMD(0, 0x1b, 0, 0, 0, 0x01, 0));
	assert_good(CMD(0, 0x00, 0, 0, 0, 0, 0));
	assert_good(CMD(0, 0x1b, 1, 0, 0, 0x04, 0));           /* IMMED, NO_FLUSH */
	assert_sense(CMD(0, 0x00, 0, 0, 0, 0, 0), SK_NOT_READY, 0x04, 0x02);
	assert_good(CMD(0, 0x1b, 1, 0, 0, 0x01, 0));
	r = CMD(0, 0x1b, 0, 0, 0, 0x02, 0);                    /* LOEJ: not removable */
	assert_int_equal(field_pointer(&r), 4);
	assert_invalid_cdb(r);
	assert_invalid_cdb(CMD(0, 0x1b, 0, 0, 0, 0x11, 0));    /* power condition */
	assert_invalid_cdb(CMD(0, 0x1b, 0, 0, 0x01, 0x01, 0)); /* power condition modifier */
	assert_good(CMD(0, 0x00, 0, 0, 0, 0, 0));

	assert_good(CMD(0, 0x1e, 0, 0, 0, 1, 0));
	assert_good(CMD(0, 0x1e, 0, 0, 0, 0, 0));
	assert_invalid_cdb(CMD(0, 0x1e, 0, 0, 0, 2, 0));
}

static void test_reservations(void **state)
{
	(void)state;
	/* SPC-2 RESERVE by n1: n2's medium access conflicts until RELEASE. */
	assert_good(CMD(0, 0x16, 0, 0, 0, 0, 0));
	struct result r = CMD_N(&E.n2, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0);
	assert_int_equal(r.status, SAM_STAT_RESERVATION_CONFLICT);
	free_result(&r);
	assert_good(CMD(0, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0));
	assert_good(CMD(0, 0x17, 0, 0, 0, 0, 0));
	assert_good(CMD_N(&E.n2, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0));
	assert_invalid_cdb(CMD(0, 0x16, 0x01, 0, 0, 0, 0));    /* extents: not supported */

	/* PERSISTENT RESERVE OUT REGISTER, IN READ KEYS, unregister */
	uint8_t p[24] = { 0 };
	p[15] = 0x42;                                          /* service action key */
	assert_good(CMD_OUT(0, p, 24, 0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0));
	r = CMD(0, 0x5e, 0x00, 0, 0, 0, 0, 0, 0x01, 0x00, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(be32(r.data + 4), 8);                 /* one key */
	assert_int_equal(be64(r.data + 8), 0x42);
	free_result(&r);
	r = CMD(0, 0x5e, 0x00, 0, 0, 0, 0, 0, 0, 4, 0);        /* allocation length */
	assert_int_equal(r.len, 4);
	free_result(&r);
	/* short parameter list data */
	assert_sense(CMD_OUT(0, p, 10, 0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0),
		     SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	r = CMD(0, 0x5f, 0x08, 0, 0, 0, 0, 0, 0, 24, 0);       /* no such service action */
	assert_int_equal(field_pointer(&r), 1);
	assert_invalid_cdb(r);
	memset(p, 0, sizeof(p));
	p[7] = 0x42;                                           /* reservation key */
	assert_good(CMD_OUT(0, p, 24, 0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0));
	r = CMD(0, 0x5e, 0x00, 0, 0, 0, 0, 0, 0x01, 0x00, 0);
	assert_int_equal(be32(r.data + 4), 0);
	free_result(&r);

	/* PR events reach the other nexus as unit attentions (pr_ua_fn): n2
	 * registers, n1 registers and CLEARs -> n2 gets RESERVATIONS PREEMPTED. */
	memset(p, 0, sizeof(p));
	p[15] = 0x43;
	const uint8_t reg[10] = { 0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0 };
	assert_good(cmdn(&E.n2, 0, reg, 10, p, 24));
	p[15] = 0x42;
	assert_good(CMD_OUT(0, p, 24, 0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0));
	memset(p, 0, sizeof(p));
	p[7] = 0x42;
	assert_good(CMD_OUT(0, p, 24, 0x5f, 0x03, 0, 0, 0, 0, 0, 0, 24, 0));   /* CLEAR */
	assert_sense(CMD_N(&E.n2, 0, 0x00, 0, 0, 0, 0, 0), SK_UNIT_ATTENTION, 0x2a, 0x03);
	assert_good(CMD(0, 0x00, 0, 0, 0, 0, 0));
	r = CMD(0, 0x5e, 0x00, 0, 0, 0, 0, 0, 0x01, 0x00, 0);
	assert_int_equal(be32(r.data + 4), 0);
	free_result(&r);
	clear_ua(&E.n2, 0);
	clear_ua(&E.n1, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inquiry_standard),
		cmocka_unit_test(test_inquiry_alloc_len),
		cmocka_unit_test(test_inquiry_errors),
		cmocka_unit_test(test_inquiry_missing_lun),
		cmocka_unit_test(test_vpd_pages),
		cmocka_unit_test(test_vpd_serial),
		cmocka_unit_test(test_vpd_device_id),
		cmocka_unit_test(test_long_target_name),
		cmocka_unit_test(test_vpd_limits),
		cmocka_unit_test(test_report_luns),
		cmocka_unit_test(test_lu_inventory_changes),
		cmocka_unit_test(test_request_sense),
		cmocka_unit_test(test_unit_attentions),
		cmocka_unit_test(test_mode_sense),
		cmocka_unit_test(test_mode_select_wce),
		cmocka_unit_test(test_mode_select_errors),
		cmocka_unit_test(test_mode_select_swp),
		cmocka_unit_test(test_rsoc_all),
		cmocka_unit_test(test_rsoc_one),
		cmocka_unit_test(test_rsoc_usage_is_enforced),
		cmocka_unit_test(test_generic_checks),
		cmocka_unit_test(test_reservations),
	};
	return cmocka_run_group_tests(tests, env_setup, env_teardown);
}
