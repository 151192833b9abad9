/* test_scsi_sbc.c — block commands of src/scsi against ram bdevs: data round
 * trips, range/limit/protection errors, VERIFY and COMPARE AND WRITE
 * miscompares, WRITE SAME, UNMAP and GET LBA STATUS, COMPARE AND WRITE range
 * locking, aborts. */
#include "test_scsi_harness.h"

#define BS 512u
#define NBLK 16384u                      /* LUN 0: 8 MiB */

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 7;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static struct result write10(uint64_t lun, uint32_t lba, uint16_t n, const void *data, uint32_t dlen)
{
	const uint8_t c[10] = { 0x2a, 0, (uint8_t)(lba >> 24), (uint8_t)(lba >> 16), (uint8_t)(lba >> 8),
				(uint8_t)lba, 0, (uint8_t)(n >> 8), (uint8_t)n, 0 };
	return cmdn(&E.n1, lun, c, 10, data, dlen);
}

static struct result read10(uint64_t lun, uint32_t lba, uint16_t n)
{
	const uint8_t c[10] = { 0x28, 0, (uint8_t)(lba >> 24), (uint8_t)(lba >> 16), (uint8_t)(lba >> 8),
				(uint8_t)lba, 0, (uint8_t)(n >> 8), (uint8_t)n, 0 };
	return cmdn(&E.n1, lun, c, 10, NULL, 0);
}

static void cdb16(uint8_t *c, uint8_t op, uint8_t b1, uint64_t lba, uint32_t n)
{
	memset(c, 0, 16);
	c[0] = op;
	c[1] = b1;
	for (int i = 0; i < 8; i++)
		c[2 + i] = (uint8_t)(lba >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		c[10 + i] = (uint8_t)(n >> (24 - 8 * i));
}

static void expect_data(uint64_t lun, uint32_t lba, uint16_t n, const uint8_t *want)
{
	struct result r = read10(lun, lba, n);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.len, (uint32_t)n * BS);
	assert_memory_equal(r.data, want, (size_t)n * BS);
	free_result(&r);
}

/* ---- capacity ---- */

static void test_read_capacity(void **state)
{
	(void)state;
	struct result r = CMD(0, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.len, 8);
	assert_int_equal(be32(r.data), NBLK - 1);
	assert_int_equal(be32(r.data + 4), BS);
	free_result(&r);
	r = CMD(0, 0x25, 0, 0, 0, 0, 5, 0, 0, 0, 0);          /* LBA without PMI */
	assert_int_equal(field_pointer(&r), 2);
	assert_invalid_cdb(r);
	assert_good(CMD(0, 0x25, 0, 0, 0, 0, 5, 0, 0, 1, 0));

	uint8_t c[16];
	cdb16(c, 0x9e, 0x10, 0, 32);
	r = cmdn(&E.n1, 0, c, 16, NULL, 0);
	assert_int_equal(r.len, 32);
	assert_int_equal(be64(r.data), NBLK - 1);
	assert_int_equal(be32(r.data + 8), BS);
	assert_int_equal(r.data[12], 0);                       /* no protection */
	assert_int_equal(r.data[13] & 0x0f, 0);                /* LBPPBE 0 */
	assert_int_equal(r.data[14] & 0xc0, 0xc0);             /* LBPME, LBPRZ */
	free_result(&r);
	for (uint32_t a = 0; a < 16; a++) {                    /* short allocation: fine */
		cdb16(c, 0x9e, 0x10, 0, a);
		r = cmdn(&E.n1, 0, c, 16, NULL, 0);
		assert_int_equal(r.status, SAM_STAT_GOOD);
		assert_int_equal(r.len, a);
		free_result(&r);
	}
	cdb16(c, 0x9e, 0x10, 0, 32);
	r = cmdn(&E.n1, 1, c, 16, NULL, 0);                    /* 4 KiB blocks */
	assert_int_equal(be64(r.data), 1023);
	assert_int_equal(be32(r.data + 8), 4096);
	assert_int_equal(r.data[13] & 0x0f, 0);
	free_result(&r);
}

/* ---- READ / WRITE ---- */

static void test_rw_roundtrip(void **state)
{
	(void)state;
	size_t big = 6u << 20;                                  /* several buffer segments */
	uint8_t *w = malloc(big);
	fill(w, big, 1);
	assert_good(write10(0, 100, 8, w, 8 * BS));
	expect_data(0, 100, 8, w);

	/* the other sizes: WRITE(16) / READ(12) / WRITE(6) / READ(16) */
	uint8_t c[16];
	fill(w, 32 * BS, 2);
	cdb16(c, 0x8a, 0x08, 2000, 32);                         /* FUA */
	assert_good(cmdn(&E.n1, 0, c, 16, w, 32 * BS));
	const uint8_t r12[12] = { 0xa8, 0x10, 0, 0, 0x07, 0xd0, 0, 0, 0, 32, 0, 0 };
	struct result r = cmdn(&E.n1, 0, r12, 12, NULL, 0);
	assert_int_equal(r.len, 32 * BS);
	assert_memory_equal(r.data, w, 32 * BS);
	free_result(&r);
	fill(w, 256 * BS, 3);
	const uint8_t w6[6] = { 0x0a, 0, 0x10, 0, 0, 0 };        /* 0 means 256 blocks */
	assert_good(cmdn(&E.n1, 0, w6, 6, w, 256 * BS));
	cdb16(c, 0x88, 0, 0x1000, 256);
	r = cmdn(&E.n1, 0, c, 16, NULL, 0);
	assert_int_equal(r.len, 256 * BS);
	assert_memory_equal(r.data, w, 256 * BS);
	free_result(&r);

	/* 6 MiB in one command */
	fill(w, big, 4);
	cdb16(c, 0x8a, 0, 4096, (uint32_t)(big / BS));
	assert_good(cmdn(&E.n1, 0, c, 16, w, (uint32_t)big));
	cdb16(c, 0x88, 0x10, 4096, (uint32_t)(big / BS));       /* DPO */
	r = cmdn(&E.n1, 0, c, 16, NULL, 0);
	assert_int_equal(r.len, big);
	assert_memory_equal(r.data, w, big);
	free_result(&r);

	/* 4 KiB blocks on LUN 1 */
	fill(w, 3 * 4096, 5);
	const uint8_t w10[10] = { 0x2a, 0, 0, 0, 0x03, 0xfd, 0, 0, 3, 0 };
	assert_good(cmdn(&E.n1, 1, w10, 10, w, 3 * 4096));
	const uint8_t rd[10] = { 0x28, 0, 0, 0, 0x03, 0xfd, 0, 0, 3, 0 };
	r = cmdn(&E.n1, 1, rd, 10, NULL, 0);
	assert_memory_equal(r.data, w, 3 * 4096);
	free_result(&r);
	free(w);
}

static void test_rw_errors(void **state)
{
	(void)state;
	uint8_t c[16];
	uint8_t *w = calloc(1, 256 * BS);

	for (uint16_t n = 1; n <= 256; n += 51)
		assert_lba_oob(write10(0, NBLK + 1 - n, n, w, n * BS));
	assert_lba_oob(read10(0, NBLK - 1, 2));
	assert_lba_oob(read10(0, 0xffffffffu, 1));
	cdb16(c, 0x88, 0, 0xffffffffffffffffull, 1);            /* wraps around */
	assert_lba_oob(cmdn(&E.n1, 0, c, 16, NULL, 0));
	cdb16(c, 0x88, 0, 0x8000000000000000ull, 1);
	assert_lba_oob(cmdn(&E.n1, 0, c, 16, NULL, 0));
	const uint8_t r6[6] = { 0x08, 0x1f, 0xff, 0xff, 1, 0 };
	assert_lba_oob(cmdn(&E.n1, 0, r6, 6, NULL, 0));

	/* zero length: GOOD without data, but the LBA is still checked */
	struct result r = read10(0, 0, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.len, 0);
	free_result(&r);
	assert_good(write10(0, NBLK, 0, NULL, 0));
	assert_lba_oob(read10(0, NBLK + 1, 0));
	assert_lba_oob(write10(0, 0x80000000u, 0, NULL, 0));

	/* protection information fields: we have none */
	for (uint8_t p = 1; p < 8; p++) {
		const uint8_t rp[10] = { 0x28, (uint8_t)(p << 5), 0, 0, 0, 0, 0, 0, 1, 0 };
		r = cmdn(&E.n1, 0, rp, 10, NULL, 0);
		assert_int_equal(field_pointer(&r), 1);
		assert_invalid_cdb(r);
		const uint8_t wp[10] = { 0x2a, (uint8_t)(p << 5), 0, 0, 0, 0, 0, 0, 1, 0 };
		assert_invalid_cdb(cmdn(&E.n1, 0, wp, 10, w, BS));
	}
	free(w);
}

/* Limits that need a LU larger than them: a sparse 1 GiB ram disk. */
static void test_limits_big_lu(void **state)
{
	(void)state;
	uint8_t c[16], blk[BS] = { 0 }, p[24] = { 0 };
	E.bdev[2] = ram_bdev("big", 1ull << 30, BS);
	struct scsi_lu_opts o = lu_opts(4, E.bdev[2]);
	assert_int_equal(scsi_target_add_lu(E.tgt, &o), 0);
	clear_ua(&E.n1, 4);

	/* MAXIMUM TRANSFER LENGTH */
	cdb16(c, 0x88, 0, 0, SCSI_MAX_XFER / BS + 1);
	struct result r = cmdn(&E.n1, 4, c, 16, NULL, 0);
	assert_int_equal(field_pointer(&r), 10);
	assert_invalid_cdb(r);
	cdb16(c, 0x88, 0, 0, SCSI_MAX_XFER / BS);
	r = cmdn(&E.n1, 4, c, 16, NULL, 0);
	assert_int_equal(r.len, SCSI_MAX_XFER);
	free_result(&r);
	/* MAXIMUM WRITE SAME LENGTH, also when 0 means "to the end" */
	cdb16(c, 0x93, 0, 0, 32769);
	r = cmdn(&E.n1, 4, c, 16, blk, BS);
	assert_int_equal(field_pointer(&r), 10);
	assert_invalid_cdb(r);
	cdb16(c, 0x93, 0, 0, 0);
	assert_invalid_cdb(cmdn(&E.n1, 4, c, 16, blk, BS));
	cdb16(c, 0x93, 0x08, (1ull << 21) - 32768, 0);         /* exactly the limit, UNMAP */
	assert_good(cmdn(&E.n1, 4, c, 16, blk, BS));
	/* MAXIMUM UNMAP LBA COUNT */
	p[1] = 22;
	p[3] = 16;
	p[8 + 8 + 1] = 0x10;                                   /* 0x100001 blocks */
	p[8 + 8 + 3] = 0x01;
	const uint8_t um[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0 };
	r = cmdn(&E.n1, 4, um, 10, p, 24);
	assert_int_equal(field_pointer(&r), 16);
	assert_sense(r, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	p[8 + 8 + 3] = 0x00;                                   /* 0x100000: fine */
	assert_good(cmdn(&E.n1, 4, um, 10, p, 24));
	assert_int_equal(scsi_target_del_lu(E.tgt, 4), 0);
	clear_ua(&E.n1, 0);
	clear_ua(&E.n1, 1);
	clear_ua(&E.n2, 0);
	clear_ua(&E.n2, 1);
}

static void test_write_short_data_out(void **state)
{
	(void)state;
	uint8_t a[2 * BS], b[2 * BS];
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	assert_good(write10(0, 50, 2, a, sizeof(a)));
	/* iSCSI EDTL of one block for a 2-block WRITE: the block that came is
	 * written, the other is left alone. */
	assert_good(write10(0, 50, 2, b, BS));
	uint8_t want[2 * BS];
	memcpy(want, b, BS);
	memcpy(want + BS, a, BS);
	expect_data(0, 50, 2, want);
	/* no data at all: nothing written, GOOD */
	assert_good(write10(0, 50, 2, b, 0));
	expect_data(0, 50, 2, want);
	/* a partial block: refused, nothing written */
	assert_sense(write10(0, 50, 1, a, 200), SK_ILLEGAL_REQUEST, 0x0e, 0x03);
	expect_data(0, 50, 2, want);
}

static void test_readonly_lu(void **state)
{
	(void)state;
	struct scsi_lu_opts o = lu_opts(2, E.bdev[0]);
	o.readonly = true;
	assert_int_equal(scsi_target_add_lu(E.tgt, &o), 0);
	clear_ua(&E.n1, 2);
	clear_ua(&E.n1, 0);
	clear_ua(&E.n1, 1);
	uint8_t blk[BS] = { 1 }, c[16];
	assert_sense(write10(2, 0, 1, blk, BS), SK_DATA_PROTECT, 0x27, 0x00);
	assert_good(read10(2, 0, 1));
	const uint8_t ws[10] = { 0x41, 0x08, 0, 0, 0, 0, 0, 0, 1, 0 };
	assert_sense(cmdn(&E.n1, 2, ws, 10, blk, BS), SK_DATA_PROTECT, 0x27, 0x00);
	const uint8_t um[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0 };
	assert_sense(cmdn(&E.n1, 2, um, 10, blk, 24), SK_DATA_PROTECT, 0x27, 0x00);
	cdb16(c, 0x89, 0, 0, 0);
	c[13] = 1;
	assert_sense(cmdn(&E.n1, 2, c, 16, blk, BS), SK_DATA_PROTECT, 0x27, 0x00);
	const uint8_t wv[10] = { 0x2e, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	assert_sense(cmdn(&E.n1, 2, wv, 10, blk, BS), SK_DATA_PROTECT, 0x27, 0x00);
	struct result r = CMD(2, 0x1a, 0, 0x3f, 0, 255, 0);
	assert_int_equal(r.data[2] & 0x80, 0x80);               /* WP */
	free_result(&r);
	assert_good(CMD(2, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0));     /* SYNCHRONIZE CACHE is fine */
	assert_int_equal(scsi_target_del_lu(E.tgt, 2), 0);
	clear_ua(&E.n1, 0);
	clear_ua(&E.n1, 1);
	clear_ua(&E.n2, 0);
	clear_ua(&E.n2, 1);
}

/* ---- VERIFY, WRITE AND VERIFY ---- */

static void test_verify(void **state)
{
	(void)state;
	uint8_t w[8 * BS], c[16];
	fill(w, sizeof(w), 9);
	assert_good(write10(0, 300, 8, w, sizeof(w)));

	assert_good(CMD(0, 0x2f, 0, 0, 0, 0x01, 0x2c, 0, 0, 8, 0));           /* BYTCHK 0 */
	assert_good(CMD_OUT(0, w, sizeof(w), 0x2f, 0x02, 0, 0, 0x01, 0x2c, 0, 0, 8, 0));
	uint8_t bad[8 * BS];
	memcpy(bad, w, sizeof(bad));
	bad[3 * BS + 77] ^= 0x5a;
	struct result r = CMD_OUT(0, bad, sizeof(bad), 0x2f, 0x02, 0, 0, 0x01, 0x2c, 0, 0, 8, 0);
	assert_int_equal(r.sense[0] & 0x80, 0x80);                             /* VALID */
	assert_int_equal(be32(r.sense + 3), 3 * BS + 77);                      /* INFORMATION */
	assert_sense(r, SK_MISCOMPARE, 0x1d, 0x00);
	/* VERIFY(16) BYTCHK 11b: one block compared with every block */
	uint8_t same[4 * BS];
	for (int i = 0; i < 4; i++)
		memcpy(same + i * BS, w, BS);
	assert_good(write10(0, 400, 4, same, sizeof(same)));
	cdb16(c, 0x8f, 0x06, 400, 4);
	assert_good(cmdn(&E.n1, 0, c, 16, w, BS));
	cdb16(c, 0x8f, 0x06, 399, 4);
	r = cmdn(&E.n1, 0, c, 16, w, BS);
	assert_sense(r, SK_MISCOMPARE, 0x1d, 0x00);
	/* VERIFY(12) */
	const uint8_t v12[12] = { 0xaf, 0x02, 0, 0, 0x01, 0x2c, 0, 0, 0, 8, 0, 0 };
	assert_good(cmdn(&E.n1, 0, v12, 12, w, sizeof(w)));

	assert_invalid_cdb(CMD(0, 0x2f, 0x04, 0, 0, 0, 0, 0, 0, 1, 0));       /* BYTCHK 10b */
	assert_invalid_cdb(CMD(0, 0x2f, 0x20, 0, 0, 0, 0, 0, 0, 1, 0));       /* VRPROTECT */
	assert_lba_oob(CMD(0, 0x2f, 0, 0, 0, 0x3f, 0xff, 0, 0, 2, 0));
	assert_good(CMD(0, 0x2f, 0, 0, 0, 0, 0, 0, 0, 0, 0));                 /* 0 blocks */
	assert_good(CMD(0, 0x2f, 0x10, 0, 0, 0, 0, 0, 0, 1, 0));              /* DPO */

	/* WRITE AND VERIFY */
	fill(w, sizeof(w), 10);
	assert_good(CMD_OUT(0, w, sizeof(w), 0x2e, 0x02, 0, 0, 0x02, 0x00, 0, 0, 8, 0));
	expect_data(0, 512, 8, w);
	cdb16(c, 0x8e, 0, 600, 8);
	assert_good(cmdn(&E.n1, 0, c, 16, w, sizeof(w)));
	expect_data(0, 600, 8, w);
	cdb16(c, 0x8e, 0, NBLK - 4, 8);
	assert_lba_oob(cmdn(&E.n1, 0, c, 16, w, sizeof(w)));
	assert_invalid_cdb(CMD_OUT(0, w, BS, 0x2e, 0x04, 0, 0, 0, 0, 0, 0, 1, 0));
}

/* ---- WRITE SAME, UNMAP, GET LBA STATUS ---- */

static bool lba_mapped(uint64_t lun, uint64_t lba, uint32_t *nblocks)
{
	uint8_t c[16];
	cdb16(c, 0x9e, 0x12, lba, 24);
	struct result r = cmdn(&E.n1, lun, c, 16, NULL, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.len, 24);
	assert_int_equal(be64(r.data + 8), lba);
	*nblocks = be32(r.data + 16);
	bool mapped = (r.data[20] & 0x0f) == 0;
	free_result(&r);
	return mapped;
}

static void test_write_same(void **state)
{
	(void)state;
	uint8_t blk[BS], c[16];
	memset(blk, 0xa5, sizeof(blk));
	uint8_t *want = malloc(300 * BS);
	memset(want, 0xa5, 300 * BS);

	assert_good(CMD_OUT(0, blk, BS, 0x41, 0, 0, 0, 0x20, 0, 0, 0x01, 0x2c, 0));  /* 300 at 8192 */
	expect_data(0, 8192, 255, want);
	expect_data(0, 8192 + 255, 45, want);
	/* WRITE SAME(16) with NDOB: zeroes, no data-out */
	memset(want, 0, 300 * BS);
	cdb16(c, 0x93, 0x01, 8192, 100);
	assert_good(cmdn(&E.n1, 0, c, 16, NULL, 0));
	expect_data(0, 8192, 100, want);
	/* 0 blocks: to the end of the medium */
	memset(blk, 0x77, sizeof(blk));
	memset(want, 0x77, 300 * BS);
	assert_good(CMD_OUT(0, blk, BS, 0x41, 0, 0, 0, 0x3f, 0xf0, 0, 0, 0, 0));
	expect_data(0, NBLK - 16, 16, want);
	/* all-zero block */
	memset(blk, 0, sizeof(blk));
	memset(want, 0, 300 * BS);
	assert_good(CMD_OUT(0, blk, BS, 0x41, 0, 0, 0, 0x3f, 0xf0, 0, 0, 8, 0));
	expect_data(0, NBLK - 16, 8, want);

	/* UNMAP bit: deallocated, reads back zeroes even with a non-zero block */
	uint8_t *d = malloc(64 * BS);
	fill(d, 64 * BS, 11);
	assert_good(write10(0, 1024, 64, d, 64 * BS));
	uint32_t n;
	assert_true(lba_mapped(0, 1024, &n));
	memset(blk, 0xff, sizeof(blk));
	assert_good(CMD_OUT(0, blk, BS, 0x41, 0x08, 0, 0, 0x04, 0, 0, 0, 64, 0));
	expect_data(0, 1024, 64, want);
	assert_false(lba_mapped(0, 1024, &n));
	assert_true(n >= 64);

	/* errors */
	struct result r = CMD_OUT(0, blk, BS, 0x41, 0x10, 0, 0, 0, 0, 0, 0, 1, 0);   /* ANCHOR */
	assert_int_equal(field_pointer(&r), 1);
	assert_invalid_cdb(r);
	assert_invalid_cdb(CMD_OUT(0, blk, BS, 0x41, 0x20, 0, 0, 0, 0, 0, 0, 1, 0));  /* WRPROTECT */
	assert_invalid_cdb(CMD_OUT(0, blk, BS, 0x41, 0x02, 0, 0, 0, 0, 0, 0, 1, 0));  /* LBDATA */
	assert_lba_oob(CMD_OUT(0, blk, BS, 0x41, 0, 0, 0, 0x3f, 0xff, 0, 0, 2, 0));
	assert_lba_oob(CMD_OUT(0, blk, BS, 0x41, 0, 0, 0, 0x40, 0x01, 0, 0, 0, 0));
	assert_invalid_cdb(CMD_OUT(0, blk, 100, 0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0));   /* short data */
	assert_invalid_cdb(CMD_OUT(0, d, 2 * BS, 0x41, 0x08, 0, 0, 0, 0, 0, 0, 1, 0));/* too much */
	free(d);
	free(want);
}

static struct result unmap(uint64_t lun, const uint8_t *list, uint16_t len, uint8_t b1)
{
	const uint8_t c[10] = { 0x42, b1, 0, 0, 0, 0, 0, (uint8_t)(len >> 8), (uint8_t)len, 0 };
	return cmdn(&E.n1, lun, c, 10, list, len);
}

static uint16_t unmap_list(uint8_t *p, const uint64_t *lba, const uint32_t *n, unsigned cnt)
{
	memset(p, 0, 8 + 16 * cnt);
	p[0] = (uint8_t)((6 + 16 * cnt) >> 8);
	p[1] = (uint8_t)(6 + 16 * cnt);
	p[2] = (uint8_t)((16 * cnt) >> 8);
	p[3] = (uint8_t)(16 * cnt);
	for (unsigned i = 0; i < cnt; i++) {
		uint8_t *d = p + 8 + 16 * i;
		for (int b = 0; b < 8; b++)
			d[b] = (uint8_t)(lba[i] >> (56 - 8 * b));
		for (int b = 0; b < 4; b++)
			d[8 + b] = (uint8_t)(n[i] >> (24 - 8 * b));
	}
	return (uint16_t)(8 + 16 * cnt);
}

static void test_unmap(void **state)
{
	(void)state;
	uint8_t p[8 + 16 * 300];
	uint8_t *d = malloc(256 * BS), *z = calloc(1, 256 * BS);
	fill(d, 256 * BS, 12);
	assert_good(write10(0, 2048, 256, d, 256 * BS));

	uint64_t lba[3] = { 2048, 2048 + 128, 2048 + 200 };
	uint32_t cnt[3] = { 64, 8, 0 };
	uint16_t len = unmap_list(p, lba, cnt, 3);
	assert_good(unmap(0, p, len, 0));
	expect_data(0, 2048, 64, z);
	expect_data(0, 2048 + 128, 8, z);
	expect_data(0, 2048 + 64, 64, d + 64 * BS);             /* untouched */
	uint32_t n;
	assert_false(lba_mapped(0, 2048, &n));
	assert_int_equal(n, 64);
	assert_true(lba_mapped(0, 2048 + 64, &n));
	assert_int_equal(n, 64);

	/* empty list, zero-length descriptors, 0 blocks at the end */
	assert_good(unmap(0, p, 0, 0));
	assert_good(unmap(0, p, unmap_list(p, lba, cnt, 0), 0));
	uint64_t end = NBLK;
	uint32_t zero = 0;
	assert_good(unmap(0, p, unmap_list(p, &end, &zero, 1), 0));

	/* errors: nothing is unmapped when any descriptor is bad */
	uint64_t l2[2] = { 3000, NBLK - 1 };
	uint32_t n2[2] = { 8, 2 };
	assert_good(write10(0, 3000, 8, d, 8 * BS));
	assert_lba_oob(unmap(0, p, unmap_list(p, l2, n2, 2), 0));
	expect_data(0, 3000, 8, d);
	assert_sense(unmap(0, p, 4, 0), SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	len = unmap_list(p, l2, n2, 1);
	p[1] = 0x40;                                            /* data length beyond the list */
	assert_sense(unmap(0, p, len, 0), SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	uint64_t many_l[257];
	uint32_t many_n[257];
	for (int i = 0; i < 257; i++) {
		many_l[i] = (uint64_t)i;
		many_n[i] = 1;
	}
	struct result r = unmap(0, p, unmap_list(p, many_l, many_n, 257), 0);
	assert_int_equal(field_pointer(&r), 2);
	assert_sense(r, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	assert_invalid_cdb(unmap(0, p, unmap_list(p, l2, n2, 1), 0x01));   /* ANCHOR */
	/* the initiator sent less than the parameter list length */
	len = unmap_list(p, l2, n2, 1);
	const uint8_t c[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, (uint8_t)len, 0 };
	assert_sense(cmdn(&E.n1, 0, c, 10, p, 8), SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	/* an incomplete last descriptor is ignored */
	len = unmap_list(p, l2, n2, 1);
	p[3] = 16 + 8;
	p[1] = 6 + 16 + 8;
	uint8_t q[8 + 24];
	memcpy(q, p, sizeof(q));
	assert_good(unmap(0, q, sizeof(q), 0));
	expect_data(0, 3000, 8, z);

	/* GET LBA STATUS limits */
	uint8_t g[16];
	cdb16(g, 0x9e, 0x12, NBLK, 24);
	assert_lba_oob(cmdn(&E.n1, 0, g, 16, NULL, 0));
	cdb16(g, 0x9e, 0x12, ~0ull, 24);
	assert_lba_oob(cmdn(&E.n1, 0, g, 16, NULL, 0));
	cdb16(g, 0x9e, 0x12, 2048, 1024);
	r = cmdn(&E.n1, 0, g, 16, NULL, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	unsigned nd = (be32(r.data) - 4) / 16;
	assert_true(nd >= 3);
	assert_int_equal(r.len, 8 + 16 * nd);
	uint64_t next = 2048;
	for (unsigned i = 0; i < nd; i++) {                    /* contiguous */
		assert_int_equal(be64(r.data + 8 + 16 * i), next);
		next += be32(r.data + 8 + 16 * i + 8);
	}
	free_result(&r);
	free(d);
	free(z);
}

/* ---- COMPARE AND WRITE, ORWRITE ---- */

static struct result caw(uint64_t lun, uint64_t lba, uint8_t n, const void *data, uint32_t dlen, uint8_t b1)
{
	uint8_t c[16];
	cdb16(c, 0x89, b1, lba, 0);
	c[10] = c[11] = c[12] = 0;
	c[13] = n;
	return cmdn(&E.n1, lun, c, 16, data, dlen);
}

static void test_compare_and_write(void **state)
{
	(void)state;
	uint8_t *buf = malloc(2 * 255 * BS);
	memset(buf, 'A', 4 * BS);
	assert_good(write10(0, 700, 4, buf, 4 * BS));
	memset(buf + 4 * BS, 'B', 4 * BS);
	assert_good(caw(0, 700, 4, buf, 8 * BS, 0));
	expect_data(0, 700, 4, buf + 4 * BS);

	/* miscompare: nothing written, INFORMATION = offset of the first difference */
	memset(buf, 'B', 4 * BS);
	buf[4 * BS - 27] = 'C';
	memset(buf + 4 * BS, 'D', 4 * BS);
	struct result r = caw(0, 700, 4, buf, 8 * BS, 0);
	assert_int_equal(r.sense[0], 0xf0);
	assert_int_equal(be32(r.sense + 3), 4 * BS - 27);
	assert_sense(r, SK_MISCOMPARE, 0x1d, 0x00);
	memset(buf, 'B', 4 * BS);
	expect_data(0, 700, 4, buf);

	/* the largest one, DPO/FUA, 0 blocks, errors */
	memset(buf, 'B', 255 * BS);
	assert_good(write10(0, 800, 255, buf, 255 * BS));
	memset(buf + 255 * BS, 'E', 255 * BS);
	assert_good(caw(0, 800, 255, buf, 2 * 255 * BS, 0x18));
	expect_data(0, 800, 255, buf + 255 * BS);
	assert_good(caw(0, 0, 0, buf, BS, 0x18));
	assert_invalid_cdb(caw(0, 0, 0, buf, 2 * 256 * BS, 0));    /* 256 wrapped to 0 */
	assert_lba_oob(caw(0, NBLK - 1, 2, buf, 4 * BS, 0));
	assert_invalid_cdb(caw(0, 0, 1, buf, 2 * BS, 0x20));   /* WRPROTECT */
	assert_invalid_cdb(caw(0, 700, 2, buf, 3 * BS, 0));    /* short data-out */
	free(buf);
}

struct pending {
	struct scsi_task t;
	int done;
};

static int start_cmd(struct pending *p, const uint8_t *cdb, unsigned len, const void *dout, uint32_t dlen)
{
	struct scsi_task *t = &p->t;
	scsi_task_init(t);
	t->target = E.tgt;
	t->nexus = &E.n2;
	t->lun = 0;
	memcpy(t->cdb, cdb, len);
	t->cdb_len = 16;
	t->pool = E.pool;
	t->qp = E.qp;
	t->done = on_done;
	p->done = 0;
	t->priv = &p->done;
	t->exp_xfer_len = dlen;
	int rc = scsi_task_prepare(t);
	if (rc != SCSI_TASK_EXEC)
		return rc;
	uint32_t off = 0;
	for (int i = 0; i < t->iovcnt && off < dlen; i++) {
		memcpy(t->iov[i].iov_base, (const uint8_t *)dout + off, t->iov[i].iov_len);
		off += (uint32_t)t->iov[i].iov_len;
	}
	scsi_task_exec(t);
	return rc;
}

static void poll_until(int *a, int *b)
{
	for (int i = 0; i < 100000 && (*a == 0 || *b == 0); i++)
		bdev_qp_poll(E.qp);
	assert_int_equal(*a, 1);
	assert_int_equal(*b, 1);
}

static void test_caw_holds_its_range(void **state)
{
	(void)state;
	uint8_t a[BS], cw[2 * BS], w[2 * BS], c[16];
	memset(a, 'a', BS);
	assert_good(write10(0, 900, 1, a, BS));
	memcpy(cw, a, BS);
	memset(cw + BS, 'c', BS);
	memset(w, 'w', sizeof(w));
	struct pending *p1 = calloc(1, sizeof(*p1)), *p2 = calloc(1, sizeof(*p2)), *p3 = calloc(1, sizeof(*p3));

	/* CAW takes LBA 900; an overlapping WRITE (899..900) waits for it and
	 * lands after it; a READ elsewhere does not wait. */
	cdb16(c, 0x89, 0, 900, 0);
	c[13] = 1;
	assert_int_equal(start_cmd(p1, c, 16, cw, sizeof(cw)), SCSI_TASK_EXEC);
	unsigned busy = bdev_qp_inflight(E.qp);
	const uint8_t wr[10] = { 0x2a, 0, 0, 0, 0x03, 0x83, 0, 0, 2, 0 };
	assert_int_equal(start_cmd(p2, wr, 10, w, sizeof(w)), SCSI_TASK_EXEC);
	assert_int_equal(bdev_qp_inflight(E.qp), busy);         /* not submitted */
	const uint8_t rd[10] = { 0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0 };
	assert_int_equal(start_cmd(p3, rd, 10, NULL, 0), SCSI_TASK_EXEC);
	assert_int_equal(bdev_qp_inflight(E.qp), busy + 1);
	poll_until(&p1->done, &p2->done);
	poll_until(&p3->done, &p3->done);
	assert_int_equal(p1->t.status, SAM_STAT_GOOD);
	assert_int_equal(p2->t.status, SAM_STAT_GOOD);
	scsi_task_release(&p1->t);
	scsi_task_release(&p2->t);
	scsi_task_release(&p3->t);
	expect_data(0, 899, 2, w);

	/* a waiting task that is aborted ends with TASK ABORTED, writes nothing */
	memcpy(cw, w, BS);
	assert_int_equal(start_cmd(p1, c, 16, cw, sizeof(cw)), SCSI_TASK_EXEC);
	memset(a, 'x', BS);
	const uint8_t wr1[10] = { 0x2a, 0, 0, 0, 0x03, 0x84, 0, 0, 1, 0 };
	assert_int_equal(start_cmd(p2, wr1, 10, a, BS), SCSI_TASK_EXEC);
	scsi_task_abort(&p2->t);
	poll_until(&p1->done, &p2->done);
	assert_int_equal(p1->t.status, SAM_STAT_GOOD);
	assert_int_equal(p2->t.status, SAM_STAT_TASK_ABORTED);
	scsi_task_release(&p1->t);
	scsi_task_release(&p2->t);
	expect_data(0, 900, 1, cw + BS);

	/* Queued COMPARE AND WRITEs get the range in arrival order (each release
	 * hands it to the next one): A->B, B->C, C->D all succeed. */
	struct pending *q[3];
	uint8_t bufs[3][2 * BS];
	for (int i = 0; i < 3; i++) {
		memset(bufs[i], 'A' + i, BS);
		memset(bufs[i] + BS, 'B' + i, BS);
		q[i] = calloc(1, sizeof(*q[i]));
	}
	memset(a, 'A', BS);
	assert_good(write10(0, 900, 1, a, BS));
	for (int i = 0; i < 3; i++)
		assert_int_equal(start_cmd(q[i], c, 16, bufs[i], sizeof(bufs[i])), SCSI_TASK_EXEC);
	poll_until(&q[0]->done, &q[1]->done);
	poll_until(&q[2]->done, &q[2]->done);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(q[i]->t.status, SAM_STAT_GOOD);
		scsi_task_release(&q[i]->t);
		free(q[i]);
	}
	memset(a, 'D', BS);
	expect_data(0, 900, 1, a);
	free(p1);
	free(p2);
	free(p3);
}

static void test_abort(void **state)
{
	(void)state;
	struct pending *p = calloc(1, sizeof(*p));
	uint8_t blk[BS];
	memset(blk, 'q', BS);
	const uint8_t wr[10] = { 0x2a, 0, 0, 0, 0x05, 0, 0, 0, 1, 0 };
	/* aborted between prepare and exec: no I/O at all */
	scsi_task_init(&p->t);
	p->t.target = E.tgt;
	p->t.nexus = &E.n1;
	memcpy(p->t.cdb, wr, 10);
	p->t.pool = E.pool;
	p->t.qp = E.qp;
	p->t.done = on_done;
	p->t.priv = &p->done;
	assert_int_equal(scsi_task_prepare(&p->t), SCSI_TASK_EXEC);
	scsi_task_abort(&p->t);
	scsi_task_exec(&p->t);
	assert_int_equal(p->done, 1);
	assert_int_equal(p->t.status, SAM_STAT_TASK_ABORTED);
	assert_int_equal(bdev_qp_inflight(E.qp), 0);
	scsi_task_release(&p->t);
	/* aborted with its I/O in flight: done() still comes, once */
	p->done = 0;
	assert_int_equal(start_cmd(p, wr, 10, blk, BS), SCSI_TASK_EXEC);
	scsi_task_abort(&p->t);
	poll_until(&p->done, &p->done);
	assert_int_equal(p->t.status, SAM_STAT_TASK_ABORTED);
	scsi_task_release(&p->t);
	free(p);
}

static void test_orwrite(void **state)
{
	(void)state;
	const uint32_t n = 3000;                                 /* two bounce chunks */
	uint8_t *b = malloc(n * BS), c[16];
	memset(b, 0, n * BS);
	cdb16(c, 0x8a, 0, 5000, n);
	assert_good(cmdn(&E.n1, 0, c, 16, b, n * BS));
	memset(b, 0xa5, n * BS);
	cdb16(c, 0x8b, 0, 5000, n);
	assert_good(cmdn(&E.n1, 0, c, 16, b, n * BS));
	cdb16(c, 0x88, 0, 5000, n);
	struct result r = cmdn(&E.n1, 0, c, 16, NULL, 0);
	assert_memory_equal(r.data, b, n * BS);
	free_result(&r);
	memset(b, 0x5a, n * BS);
	cdb16(c, 0x8b, 0x08, 5000, n);
	assert_good(cmdn(&E.n1, 0, c, 16, b, n * BS));
	memset(b, 0xff, n * BS);
	cdb16(c, 0x88, 0, 5000, n);
	r = cmdn(&E.n1, 0, c, 16, NULL, 0);
	assert_memory_equal(r.data, b, n * BS);
	free_result(&r);
	cdb16(c, 0x8b, 0, NBLK - 1, 2);
	assert_lba_oob(cmdn(&E.n1, 0, c, 16, b, 2 * BS));
	cdb16(c, 0x8b, 0x20, 0, 1);                              /* ORPROTECT */
	assert_invalid_cdb(cmdn(&E.n1, 0, c, 16, b, BS));
	cdb16(c, 0x8b, 0, 0, 0);
	assert_good(cmdn(&E.n1, 0, c, 16, NULL, 0));
	free(b);
}

/* ---- cache, prefetch, defects ---- */

static void test_misc_block_commands(void **state)
{
	(void)state;
	uint8_t c[16];
	assert_good(CMD(0, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	assert_good(CMD(0, 0x35, 0x02, 0, 0, 0x10, 0, 0, 0, 8, 0));        /* IMMED */
	assert_lba_oob(CMD(0, 0x35, 0, 0, 0, 0x40, 0x01, 0, 0, 0, 0));
	cdb16(c, 0x91, 0, NBLK - 1, 2);
	assert_lba_oob(cmdn(&E.n1, 0, c, 16, NULL, 0));
	cdb16(c, 0x91, 0, 0, 0);
	assert_good(cmdn(&E.n1, 0, c, 16, NULL, 0));

	assert_good(CMD(0, 0x34, 0, 0, 0, 0, 0, 0, 0, 1, 0));               /* PRE-FETCH */
	assert_good(CMD(0, 0x34, 0x02, 0, 0, 0, 0, 3, 0, 255, 0));
	assert_lba_oob(CMD(0, 0x34, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0));
	cdb16(c, 0x90, 0, NBLK - 256, 256);
	assert_good(cmdn(&E.n1, 0, c, 16, NULL, 0));
	cdb16(c, 0x90, 0, NBLK - 255, 256);
	assert_lba_oob(cmdn(&E.n1, 0, c, 16, NULL, 0));

	struct result r = CMD(0, 0x37, 0, 0x18 | 0x05, 0, 0, 0, 0, 0, 32, 0);   /* READ DEFECT DATA */
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(r.len, 4);
	assert_int_equal(r.data[1], 0x1d);
	assert_int_equal(be16(r.data + 2), 0);
	free_result(&r);
	r = CMD(0, 0xb7, 0x08, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0);
	assert_int_equal(r.len, 8);
	assert_int_equal(be32(r.data + 4), 0);
	free_result(&r);
}

/* Every task buffer goes back to the pool. */
static void test_no_buffer_leak(void **state)
{
	(void)state;
	uint8_t *b = malloc(64 * BS);
	memset(b, 1, 64 * BS);
	struct mem_pool_stats s1, s2;
	for (int round = 0; round < 2; round++) {
		assert_good(write10(0, 10, 64, b, 64 * BS));
		assert_good(read10(0, 10, 64));
		assert_good(caw(0, 10, 2, b, 4 * BS, 0));
		assert_good(CMD_OUT(0, b, BS, 0x41, 0, 0, 0, 0, 10, 0, 0, 64, 0));
		assert_good(CMD(0, 0x12, 1, 0x83, 0, 255, 0));
		assert_sense(read10(0, NBLK, 1), SK_ILLEGAL_REQUEST, 0x21, 0x00);
		mem_pool_get_stats(E.pool, round ? &s2 : &s1);
	}
	assert_int_equal(s1.page_bytes_in_use, s2.page_bytes_in_use);
	free(b);
}

/* READs with data_in_any_mem on a ram LU: iov[] is the bdev's memory
 * (written pages in place, never-written ones as zeroes that stay
 * unallocated), no pool buffer; a read too fragmented for iov[] falls back to
 * a buffer and a read through the qp. LUN 0: 512-byte blocks. */
static void test_read_mapped(void **state)
{
	(void)state;
	enum { PGB = 4096 / BS };                       /* blocks per page */
	uint8_t *d = malloc(2100 * BS), *want = calloc(1, 2100 * BS);
	struct mem_pool_stats s1, s2;
	struct result r;

	/* start from deallocated ranges (earlier tests wrote LUN 0) */
	uint8_t p[8 + 16 * 3];
	uint64_t lbas[3] = { 0, 4000, 6000 };
	uint32_t ns[3] = { 32, 64, 2048 };
	assert_good(unmap(0, p, unmap_list(p, lbas, ns, 3), 0));
	E.any_mem = true;
	/* unaligned mix: blocks 8..15 (page 1) written, read 5..28 */
	fill(d, 8 * BS, 77);
	assert_good(write10(0, 8, 8, d, 8 * BS));
	mem_pool_get_stats(E.pool, &s1);
	r = read10(0, 5, 24);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_true(r.mapped);
	memcpy(want + 3 * BS, d, 8 * BS);
	assert_memory_equal(r.data, want, 24 * BS);
	free_result(&r);
	mem_pool_get_stats(E.pool, &s2);
	assert_int_equal(s1.page_bytes_in_use, s2.page_bytes_in_use);

	/* never written: zeroes, still unallocated (GET LBA STATUS) */
	r = read10(0, 4000, 64);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_true(r.mapped);
	memset(want, 0, 64 * BS);
	assert_memory_equal(r.data, want, 64 * BS);
	free_result(&r);
	uint8_t c[16];
	cdb16(c, 0x9e, 0x12, 4000, 24);
	r = cmdn(&E.n1, 0, c, 16, NULL, 0);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_int_equal(be64(r.data + 8), 4000);
	assert_true(be32(r.data + 16) >= 64);
	assert_int_equal(r.data[8 + 12] & 0x0f, 1);     /* deallocated */
	free_result(&r);

	/* every other page of 2048 blocks written: 256 segments, more than
	 * iov[] holds: the copying read */
	memset(want, 0, 2048 * BS);
	for (unsigned pg = 0; pg < 2048 / PGB; pg += 2) {
		fill(d, PGB * BS, pg + 1);
		assert_good(write10(0, 6000 + pg * PGB, PGB, d, PGB * BS));
		memcpy(want + pg * PGB * BS, d, PGB * BS);
	}
	r = read10(0, 6000, 2048);
	assert_int_equal(r.status, SAM_STAT_GOOD);
	assert_false(r.mapped);
	assert_memory_equal(r.data, want, 2048 * BS);
	free_result(&r);
	/* 64 segments of it still map */
	r = read10(0, 6000, 64 * PGB);
	assert_true(r.mapped);
	assert_memory_equal(r.data, want, 64 * PGB * BS);
	free_result(&r);

	/* after UNMAP of page 1: zeroes there */
	uint64_t lba = 8;
	uint32_t n = 8;
	assert_good(unmap(0, p, unmap_list(p, &lba, &n, 1), 0));
	r = read10(0, 5, 24);
	assert_true(r.mapped);
	memset(want, 0, 24 * BS);
	assert_memory_equal(r.data, want, 24 * BS);
	free_result(&r);

	/* without data_in_any_mem: a pool buffer as before */
	E.any_mem = false;
	r = read10(0, 6000, 8);
	assert_false(r.mapped);
	free_result(&r);
	free(d);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_capacity),
		cmocka_unit_test(test_rw_roundtrip),
		cmocka_unit_test(test_rw_errors),
		cmocka_unit_test(test_limits_big_lu),
		cmocka_unit_test(test_write_short_data_out),
		cmocka_unit_test(test_readonly_lu),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_write_same),
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_compare_and_write),
		cmocka_unit_test(test_caw_holds_its_range),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_orwrite),
		cmocka_unit_test(test_misc_block_commands),
		cmocka_unit_test(test_no_buffer_leak),
		cmocka_unit_test(test_read_mapped),
	};
	return cmocka_run_group_tests(tests, env_setup, env_teardown);
}
