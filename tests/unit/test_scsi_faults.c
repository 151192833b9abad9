/* test_scsi_faults.c — backend errors become the right status and sense.
 *
 * A ram bdev whose backend is wrapped: I/O of the chosen type that touches a
 * chosen byte range fails with a chosen -errno (as io_uring would report it),
 * everything else goes to the ram backend. tests/integration/60-faults.sh
 * sees ENOSPC (full tmpfs) and read EIO (loop device) for real; write EIO,
 * a failing flush and the other errno values are only reachable here.
 * Expected sense (SPC-4 / SBC-3, and what Linux's sd maps back to errno):
 *   read  -EIO, -ENODATA, -EBADMSG  MEDIUM ERROR / UNRECOVERED READ ERROR 03/11/00
 *   write -EIO (write, flush)       MEDIUM ERROR / WRITE ERROR 03/0C/00
 *   -ENOSPC                         DATA PROTECT / SPACE ALLOCATION FAILED
 *                                   WRITE PROTECT 07/27/07 (Linux: -ENOSPC)
 *   -EROFS                          DATA PROTECT / WRITE PROTECTED 07/27/00
 *   anything else                   HARDWARE ERROR / INTERNAL TARGET FAILURE 04/44/00
 */
/* The harness has helpers this file does not need. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_scsi_harness.h"

#include "../../src/bdev/bdev_internal.h"

static struct {
	bool on;
	enum bdev_io_type type;
	uint64_t bad_off, bad_len;   /* bytes; FLUSH fails whatever its range */
	int err;
	unsigned failed;
} inj;

static int faulty_start(struct bdev_qp *qp, void *state, struct bdev_io *io)
{
	bool hit = inj.on && io->type == inj.type &&
		   (io->type == BDEV_IO_FLUSH ||
		    (io->offset < inj.bad_off + inj.bad_len && inj.bad_off < io->offset + io->len));

	if (hit) {
		inj.failed++;
		bdev_io_done_later(qp, io, inj.err);
		return 0;
	}
	return bdev_ram_backend.start(qp, state, io);
}

static struct bdev_backend faulty_backend;

#define FLUN 2
#define FBS  512

static void inject(enum bdev_io_type type, uint64_t lba, uint64_t nblocks, int err)
{
	inj.on = true;
	inj.type = type;
	inj.bad_off = lba * FBS;
	inj.bad_len = nblocks * FBS;
	inj.err = err;
	inj.failed = 0;
}

static int faults_setup(void **state)
{
	env_setup(state);
	faulty_backend = bdev_ram_backend;
	faulty_backend.name = "faulty-ram";
	faulty_backend.start = faulty_start;
	E.bdev[2] = ram_bdev("faulty", 4u << 20, FBS);
	E.bdev[2]->backend = &faulty_backend;
	struct scsi_lu_opts o = lu_opts(FLUN, E.bdev[2]);
	assert_int_equal(scsi_target_add_lu(E.tgt, &o), 0);
	clear_ua(&E.n1, FLUN);
	return 0;
}

static void reset_inj(void)
{
	memset(&inj, 0, sizeof(inj));
}

static struct result rw10(uint8_t op, uint32_t lba, uint16_t n, bool fua)
{
	static uint8_t buf[64 * FBS];
	const uint8_t cdb[10] = { op, fua ? 0x08 : 0, lba >> 24, lba >> 16, lba >> 8, lba,
				  0, n >> 8, n, 0 };

	memset(buf, 0x6b, sizeof(buf));
	return cmdn(&E.n1, FLUN, cdb, sizeof(cdb), op == 0x2a ? buf : NULL,
		    op == 0x2a ? n * FBS : n * FBS);
}

static void test_read_eio(void **state)
{
	(void)state;
	int errs[] = { -EIO, -ENODATA, -EBADMSG };

	/* The second round as a TCP transport would (data_in_any_mem): the
	 * wrapped backend is not ram's, bdev_read_map refuses, and READs fall
	 * back to a buffer read through the qp, errors included. */
	for (int any_mem = 0; any_mem < 2; any_mem++) {
		E.any_mem = any_mem;
		for (unsigned i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
			inject(BDEV_IO_READ, 100, 1, errs[i]);
			assert_sense(rw10(0x28, 96, 8, false), SK_MEDIUM_ERROR, 0x11, 0x00);
			assert_int_equal(inj.failed, 1);
			/* other LBAs still read */
			struct result r = rw10(0x28, 200, 8, false);
			assert_false(r.mapped);
			assert_good(r);
		}
		reset_inj();
		assert_good(rw10(0x28, 96, 8, false));
	}
	E.any_mem = false;
}

static void test_write_eio(void **state)
{
	(void)state;
	inject(BDEV_IO_WRITE, 300, 4, -EIO);
	assert_sense(rw10(0x2a, 300, 8, false), SK_MEDIUM_ERROR, 0x0c, 0x00);
	assert_sense(rw10(0x2a, 296, 8, true), SK_MEDIUM_ERROR, 0x0c, 0x00);
	assert_int_equal(inj.failed, 2);
	assert_good(rw10(0x2a, 400, 8, true));
	assert_good(rw10(0x28, 300, 8, false));      /* reads of that range still work */
	/* WRITE SAME(10) of the range fails the same way (a block that is not
	 * all zeroes: zeroes may go as WRITE_ZEROES) */
	uint8_t blk[FBS];
	memset(blk, 0x5a, sizeof(blk));
	const uint8_t ws[10] = { 0x41, 0, 0, 0, 0x01, 0x2c, 0, 0, 16, 0 };   /* LBA 300 */
	assert_sense(cmdn(&E.n1, FLUN, ws, sizeof(ws), blk, FBS), SK_MEDIUM_ERROR, 0x0c, 0x00);
	/* ... and so does one of zeroes done as WRITE_ZEROES */
	memset(blk, 0, sizeof(blk));
	inject(BDEV_IO_WRITE_ZEROES, 300, 4, -EIO);
	assert_sense(cmdn(&E.n1, FLUN, ws, sizeof(ws), blk, FBS), SK_MEDIUM_ERROR, 0x0c, 0x00);
	reset_inj();
	assert_good(rw10(0x2a, 300, 8, false));
}

static void test_enospc_erofs_other(void **state)
{
	(void)state;
	inject(BDEV_IO_WRITE, 500, 8, -ENOSPC);
	assert_sense(rw10(0x2a, 500, 8, false), SK_DATA_PROTECT, 0x27, 0x07);
	inject(BDEV_IO_WRITE, 500, 8, -EROFS);
	assert_sense(rw10(0x2a, 500, 8, false), SK_DATA_PROTECT, 0x27, 0x00);
	inject(BDEV_IO_WRITE, 500, 8, -EINVAL);
	assert_sense(rw10(0x2a, 500, 8, false), SK_HARDWARE_ERROR, 0x44, 0x00);
	inject(BDEV_IO_READ, 500, 8, -ENOMEM);
	assert_sense(rw10(0x28, 500, 8, false), SK_HARDWARE_ERROR, 0x44, 0x00);
	reset_inj();
	assert_good(rw10(0x2a, 500, 8, false));
}

static void test_flush_eio(void **state)
{
	(void)state;
	const uint8_t sync10[10] = { 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

	inject(BDEV_IO_FLUSH, 0, 0, -EIO);
	assert_sense(cmdn(&E.n1, FLUN, sync10, sizeof(sync10), NULL, 0),
		     SK_MEDIUM_ERROR, 0x0c, 0x00);
	assert_int_equal(inj.failed, 1);
	reset_inj();
	assert_good(cmdn(&E.n1, FLUN, sync10, sizeof(sync10), NULL, 0));
}

/* Failed commands give their buffers back. */
static void test_no_leak_on_errors(void **state)
{
	(void)state;
	struct mem_pool_stats a, b;

	assert_good(rw10(0x28, 0, 64, false));
	mem_pool_get_stats(E.pool, &a);
	for (int i = 0; i < 50; i++) {
		inject(i % 2 ? BDEV_IO_WRITE : BDEV_IO_READ, 0, 1, -EIO);
		struct result r = rw10(i % 2 ? 0x2a : 0x28, 0, 64, false);
		assert_int_equal(r.status, SAM_STAT_CHECK_CONDITION);
		free_result(&r);
	}
	reset_inj();
	mem_pool_get_stats(E.pool, &b);
	assert_int_equal(a.page_bytes_in_use, b.page_bytes_in_use);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_eio),
		cmocka_unit_test(test_write_eio),
		cmocka_unit_test(test_enospc_erofs_other),
		cmocka_unit_test(test_flush_eio),
		cmocka_unit_test(test_no_leak_on_errors),
	};
	return cmocka_run_group_tests(tests, faults_setup, env_teardown);
}
