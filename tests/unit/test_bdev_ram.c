/* test_bdev_ram.c — zero-copy reads of the ram backend (bdev_read_map):
 * resident pages are given in place, missing ones as the shared zero region
 * (and stay missing), merging of neighbours, the segment limit (-E2BIG),
 * unaligned ranges with 512-byte blocks, reads after UNMAP, argument checks,
 * and that a map reads the same bytes as a READ through the qp. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "bdev/bdev.h"
#include "core/log.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define PG  4096ull

static struct bdev *open_ram(uint64_t size, uint32_t bs)
{
	struct bdev_opts o = { .type = BDEV_TYPE_RAM, .path = "ram-map", .size = size,
			       .block_size = bs };
	struct bdev *b = NULL;
	assert_int_equal(bdev_open(&o, &b), 0);
	assert_true(b->can_map);
	return b;
}

struct waiter {
	int n, status;
};

static void on_done(struct bdev_io *io)
{
	struct waiter *w = io->ctx;
	w->n++;
	w->status = io->status;
}

/* One I/O through a qp, polled by hand. */
static int run_io(struct bdev_qp *qp, struct bdev *b, enum bdev_io_type type, uint64_t off,
		  uint64_t len, void *buf)
{
	struct waiter w = { 0, 0 };
	struct iovec v = { buf, len };
	struct bdev_io io = { .bdev = b, .type = type, .offset = off, .len = len,
			      .iov = buf ? &v : NULL, .iovcnt = buf ? 1 : 0,
			      .cb = on_done, .ctx = &w };
	assert_int_equal(bdev_submit(qp, &io), 0);
	for (int i = 0; i < 1000000 && w.n == 0; i++)
		bdev_qp_poll(qp);
	assert_int_equal(w.n, 1);
	return w.status;
}

static void fill(struct bdev_qp *qp, struct bdev *b, uint64_t off, uint64_t len, uint8_t v)
{
	uint8_t *buf = malloc(len);
	memset(buf, v, len);
	assert_int_equal(run_io(qp, b, BDEV_IO_WRITE, off, len, buf), 0);
	free(buf);
}

static bool mapped_status(struct bdev *b, uint64_t off)
{
	uint64_t len;
	bool mapped;
	assert_int_equal(bdev_lba_status(b, off, &len, &mapped), 0);
	return mapped;
}

/* Flattens a map into buf. */
static void gather(const struct iovec *iov, int n, uint8_t *buf, uint64_t len)
{
	uint64_t off = 0;
	for (int i = 0; i < n; i++) {
		memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	assert_int_equal(off, len);
}

/* The map shows what a READ through the qp returns. */
static void check_same_as_read(struct bdev_qp *qp, struct bdev *b, uint64_t off, uint64_t len)
{
	struct iovec iov[64];
	uint8_t *a = malloc(len), *r = malloc(len);
	int n = bdev_read_map(b, off, len, iov, 64);
	assert_true(n > 0);
	gather(iov, n, a, len);
	assert_int_equal(run_io(qp, b, BDEV_IO_READ, off, len, r), 0);
	assert_memory_equal(a, r, len);
	free(a);
	free(r);
}

static void test_map_resident(void **state)
{
	(void)state;
	struct bdev *b = open_ram(4 * MiB, 4096);
	struct bdev_qp *qp = bdev_qp_create(NULL, 64);
	struct iovec iov[4];

	fill(qp, b, 8 * PG, 4 * PG, 0x5a);
	int n = bdev_read_map(b, 8 * PG, 4 * PG, iov, 4);
	assert_int_equal(n, 1);                    /* contiguous pages: one segment */
	assert_int_equal(iov[0].iov_len, 4 * PG);
	for (size_t i = 0; i < 4 * PG; i++)
		assert_int_equal(((uint8_t *)iov[0].iov_base)[i], 0x5a);
	/* in place: a later write shows through the same segment */
	fill(qp, b, 9 * PG, PG, 0x33);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[PG], 0x33);
	check_same_as_read(qp, b, 8 * PG, 4 * PG);
	bdev_qp_destroy(qp);
	bdev_close(b);
}

static void test_map_missing(void **state)
{
	(void)state;
	struct bdev *b = open_ram(16 * MiB, 4096);
	struct iovec iov[64];

	int n = bdev_read_map(b, 0, 8 * MiB, iov, 64);
	assert_true(n > 1 && n <= 64);             /* 8 MiB of nothing: a few zero runs */
	for (int i = 0; i < n; i++) {
		assert_ptr_equal(iov[i].iov_base, iov[0].iov_base);   /* all the zero region */
		const uint8_t *p = iov[i].iov_base;
		assert_int_equal(p[0], 0);
		assert_memory_equal(p, p + 1, iov[i].iov_len - 1);
	}
	/* never touched: still unmapped for GET LBA STATUS */
	assert_false(mapped_status(b, 0));
	assert_false(mapped_status(b, 4 * MiB));
	bdev_close(b);
}

static void test_map_mixed(void **state)
{
	(void)state;
	struct bdev *b = open_ram(4 * MiB, 4096);
	struct bdev_qp *qp = bdev_qp_create(NULL, 64);
	struct iovec iov[8];

	/* pages 0-1 written, 2-3 missing, 4 written, 5 missing */
	fill(qp, b, 0, 2 * PG, 0x11);
	fill(qp, b, 4 * PG, PG, 0x44);
	int n = bdev_read_map(b, 0, 6 * PG, iov, 8);
	assert_int_equal(n, 4);
	assert_int_equal(iov[0].iov_len, 2 * PG);
	assert_int_equal(iov[1].iov_len, 2 * PG);
	assert_int_equal(iov[2].iov_len, PG);
	assert_int_equal(iov[3].iov_len, PG);
	assert_ptr_equal(iov[1].iov_base, iov[3].iov_base);   /* the zero region */
	assert_int_equal(((uint8_t *)iov[2].iov_base)[0], 0x44);
	check_same_as_read(qp, b, 0, 6 * PG);
	/* the missing pages stayed missing */
	uint64_t len;
	bool mapped;
	assert_int_equal(bdev_lba_status(b, 2 * PG, &len, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(len, 2 * PG);
	assert_false(mapped_status(b, 5 * PG));
	bdev_qp_destroy(qp);
	bdev_close(b);
}

static void test_map_fragmented(void **state)
{
	(void)state;
	struct bdev *b = open_ram(4 * MiB, 4096);
	struct bdev_qp *qp = bdev_qp_create(NULL, 64);
	struct iovec iov[64];

	/* every other page written: 128 pages need 128 segments */
	for (unsigned i = 0; i < 128; i += 2)
		fill(qp, b, i * PG, PG, (uint8_t)(i + 1));
	assert_int_equal(bdev_read_map(b, 0, 128 * PG, iov, 64), -E2BIG);
	assert_int_equal(bdev_read_map(b, 0, 64 * PG, iov, 64), 64);
	assert_int_equal(bdev_read_map(b, 0, 64 * PG, iov, 63), -E2BIG);
	check_same_as_read(qp, b, 0, 64 * PG);
	bdev_qp_destroy(qp);
	bdev_close(b);
}

/* 512-byte blocks: ranges that start and end inside pages. */
static void test_map_unaligned_512(void **state)
{
	(void)state;
	struct bdev *b = open_ram(MiB, 512);
	struct bdev_qp *qp = bdev_qp_create(NULL, 64);
	struct iovec iov[8];

	fill(qp, b, PG + 1024, 512, 0x77);         /* page 1 resident */
	/* blocks 3..20: the end of page 0 (missing), page 1, the start of page 2 */
	int n = bdev_read_map(b, 3 * 512, 18 * 512, iov, 8);
	assert_int_equal(n, 3);
	assert_int_equal(iov[0].iov_len, PG - 3 * 512);
	assert_int_equal(iov[1].iov_len, PG);
	assert_int_equal(iov[2].iov_len, 21 * 512 - 2 * PG);
	assert_int_equal(((uint8_t *)iov[1].iov_base)[1024], 0x77);
	check_same_as_read(qp, b, 3 * 512, 18 * 512);
	/* one block inside a resident page */
	n = bdev_read_map(b, PG + 1024, 512, iov, 1);
	assert_int_equal(n, 1);
	assert_int_equal(iov[0].iov_len, 512);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[511], 0x77);
	assert_false(mapped_status(b, 0));
	assert_false(mapped_status(b, 2 * PG));
	bdev_qp_destroy(qp);
	bdev_close(b);
}

static void test_map_after_unmap(void **state)
{
	(void)state;
	struct bdev *b = open_ram(4 * MiB, 4096);
	struct bdev_qp *qp = bdev_qp_create(NULL, 64);
	struct iovec iov[4];

	fill(qp, b, 0, 4 * PG, 0xcc);
	assert_int_equal(run_io(qp, b, BDEV_IO_UNMAP, PG, 2 * PG, NULL), 0);
	int n = bdev_read_map(b, 0, 4 * PG, iov, 4);
	assert_int_equal(n, 3);                    /* data, zero region, data */
	assert_int_equal(iov[1].iov_len, 2 * PG);
	const uint8_t *z = iov[1].iov_base;
	assert_int_equal(z[0], 0);
	assert_memory_equal(z, z + 1, 2 * PG - 1);
	assert_false(mapped_status(b, PG));        /* the map did not bring it back */
	check_same_as_read(qp, b, 0, 4 * PG);
	bdev_qp_destroy(qp);
	bdev_close(b);
}

static void test_map_args(void **state)
{
	(void)state;
	struct bdev *b = open_ram(MiB, 512);
	struct iovec iov[2];

	assert_int_equal(bdev_read_map(b, 0, 0, iov, 2), -EINVAL);
	assert_int_equal(bdev_read_map(b, 100, 512, iov, 2), -EINVAL);
	assert_int_equal(bdev_read_map(b, 0, 100, iov, 2), -EINVAL);
	assert_int_equal(bdev_read_map(b, MiB - 512, 1024, iov, 2), -EINVAL);
	assert_int_equal(bdev_read_map(b, MiB, 512, iov, 2), -EINVAL);
	assert_int_equal(bdev_read_map(b, 0, 512, iov, 0), -EINVAL);
	assert_int_equal(bdev_read_map(b, MiB - 512, 512, iov, 2), 1);
	bdev_close(b);
}

int main(void)
{
	log_init(LOG_LVL_WARN, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_resident),
		cmocka_unit_test(test_map_missing),
		cmocka_unit_test(test_map_mixed),
		cmocka_unit_test(test_map_fragmented),
		cmocka_unit_test(test_map_unaligned_512),
		cmocka_unit_test(test_map_after_unmap),
		cmocka_unit_test(test_map_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
