/* test_bdev.c — block backends: ram, files (O_DIRECT on the real file system,
 * tmpfs, a ramfs that refuses O_DIRECT) and a loop block device, driven through
 * a queue pair without a reactor (bdev_qp_poll by hand, always with a timeout);
 * pool memory as io_uring registered buffers; a qp on a real reactor. */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sched.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "bdev/bdev.h"
#include "core/log.h"
#include "core/reactor.h"
#include "mem/buddy.h"
#include "mem/pool.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)

static char g_dir[64];                /* temp dir on the real file system */

/* ---- helpers ---- */

static void *abuf(size_t len)
{
	void *p = NULL;
	assert_int_equal(posix_memalign(&p, 4096, len), 0);
	memset(p, 0xee, len);
	return p;
}

static void pattern(void *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static bool all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct tally {
	int n, errors, last_status;
	bool in_submit;           /* a callback must never run inside bdev_submit */
	bool cb_in_submit;
};

static void on_done(struct bdev_io *io)
{
	struct tally *t = io->ctx;
	if (t->in_submit)
		t->cb_in_submit = true;
	t->n++;
	t->last_status = io->status;
	if (io->status)
		t->errors++;
}

/* Polls until *count reaches want; false after 5 s. */
static bool poll_until(struct bdev_qp *qp, const int *count, int want)
{
	uint64_t deadline = now_ms() + 5000;
	while (*count < want) {
		if (bdev_qp_poll(qp) == 0)
			usleep(20);
		if (now_ms() > deadline)
			return false;
	}
	return true;
}

static void io_init(struct bdev_io *io, struct bdev *b, enum bdev_io_type type,
		    uint64_t off, uint64_t len, struct iovec *iov, int iovcnt, struct tally *t)
{
	memset(io, 0, sizeof(*io));
	io->bdev = b;
	io->type = type;
	io->offset = off;
	io->len = len;
	io->iov = iov;
	io->iovcnt = iovcnt;
	io->cb = on_done;
	io->ctx = t;
}

/* Submits one I/O and waits for it: returns the submit error or io->status. */
static int io_sync(struct bdev_qp *qp, struct bdev *b, enum bdev_io_type type, bool fua,
		   uint64_t off, uint64_t len, struct iovec *iov, int iovcnt)
{
	struct tally t = { 0 };
	struct bdev_io io;
	io_init(&io, b, type, off, len, iov, iovcnt, &t);
	io.fua = fua;
	t.in_submit = true;
	int rc = bdev_submit(qp, &io);
	t.in_submit = false;
	if (rc)
		return rc;
	assert_true(poll_until(qp, &t.n, 1));
	assert_false(t.cb_in_submit);
	assert_int_equal(t.n, 1);
	return io.status;
}

static int rw(struct bdev_qp *qp, struct bdev *b, enum bdev_io_type type, uint64_t off,
	      void *buf, size_t len)
{
	struct iovec v = { buf, len };
	return io_sync(qp, b, type, false, off, len, &v, 1);
}

static char *make_file(const char *dir, const char *name, off_t size)
{
	static char path[3][128];
	static int k;
	char *p = path[k++ % 3];
	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
	return p;
}

static struct bdev *open_file(const char *path, uint64_t size, uint32_t bs, bool ro)
{
	struct bdev_opts o = { .type = BDEV_TYPE_URING, .path = path, .size = size,
			       .block_size = bs, .readonly = ro };
	struct bdev *b = NULL;
	assert_int_equal(bdev_open(&o, &b), 0);
	assert_non_null(b);
	return b;
}

static struct bdev *open_ram(uint64_t size, uint32_t bs, bool ro)
{
	struct bdev_opts o = { .type = BDEV_TYPE_RAM, .path = "ram0", .size = size,
			       .block_size = bs, .readonly = ro };
	struct bdev *b = NULL;
	assert_int_equal(bdev_open(&o, &b), 0);
	return b;
}

static uint64_t st_blocks(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks;
}

/* ---- shared scenarios (run on every backend) ---- */

/* Writes a pattern through 3 unequal iovecs, reads it back through 4 others. */
static void check_multi_iov(struct bdev_qp *qp, struct bdev *b, uint64_t off)
{
	const size_t len = 64 * KiB;
	uint8_t *src = abuf(len), *dst = abuf(len);
	pattern(src, len, (uint32_t)off + 7);
	struct iovec wv[3] = { { src, 4 * KiB }, { src + 4 * KiB, 48 * KiB },
			       { src + 52 * KiB, 12 * KiB } };
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE, false, off, len, wv, 3), 0);
	struct iovec rv[4] = { { dst, 16 * KiB }, { dst + 16 * KiB, 512 },
			       { dst + 16 * KiB + 512, 512 }, { dst + 17 * KiB, 47 * KiB } };
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, off, len, rv, 4), 0);
	assert_memory_equal(src, dst, len);
	free(src);
	free(dst);
}

/* Malformed requests: refused by bdev_submit, nothing queued. */
static void check_rejects(struct bdev_qp *qp, struct bdev *b)
{
	uint8_t *buf = abuf(8 * KiB);
	struct iovec v = { buf, 4 * KiB };
	struct iovec many[BDEV_IO_MAX_IOV + 1];
	for (int i = 0; i <= BDEV_IO_MAX_IOV; i++)
		many[i] = (struct iovec){ buf, 512 };
	struct tally t = { 0 };
	struct bdev_io io;
	uint64_t bs = b->block_size;

	io_init(&io, b, BDEV_IO_READ, b->size, 4 * KiB, &v, 1, &t);   /* past the end */
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	struct iovec v8 = { buf, 8 * KiB };
	io_init(&io, b, BDEV_IO_READ, b->size - 4 * KiB, 8 * KiB, &v8, 1, &t); /* crosses it */
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	io_init(&io, b, BDEV_IO_READ, UINT64_MAX - bs + 1, 4 * KiB, &v, 1, &t); /* wraps */
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	io_init(&io, b, BDEV_IO_READ, bs / 2, 4 * KiB, &v, 1, &t);   /* misaligned offset */
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	struct iovec odd = { buf, 4 * KiB + bs / 2 };
	io_init(&io, b, BDEV_IO_WRITE, 0, odd.iov_len, &odd, 1, &t); /* misaligned length */
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	io_init(&io, b, BDEV_IO_READ, 0, 0, &v, 1, &t);              /* empty */
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	io_init(&io, b, BDEV_IO_READ, 0, 8 * KiB, &v, 1, &t);        /* iov sum != len */
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	io_init(&io, b, BDEV_IO_READ, 0, 4 * KiB, &v, 0, &t);        /* no iovec */
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	io_init(&io, b, BDEV_IO_READ, 0, 512ull * (BDEV_IO_MAX_IOV + 1), many,
		BDEV_IO_MAX_IOV + 1, &t);                              /* too many */
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	io_init(&io, b, BDEV_IO_WRITE_ZEROES, bs, bs + 1, NULL, 0, &t);
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	io_init(&io, b, BDEV_IO_READ, 0, 4 * KiB, &v, 1, &t);
	io.cb = NULL;                                                 /* no callback */
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	io_init(&io, b, BDEV_IO_READ, 0, 4 * KiB, &v, 1, &t);
	io.type = (enum bdev_io_type)99;
	assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	if (b->direct) {                        /* O_DIRECT needs 512 B-aligned memory */
		struct iovec mis = { buf + 8, 4 * KiB };
		io_init(&io, b, BDEV_IO_READ, 0, 4 * KiB, &mis, 1, &t);
		assert_int_equal(bdev_submit(qp, &io), -EINVAL);
	}
	assert_int_equal(bdev_qp_inflight(qp), 0);
	assert_int_equal(bdev_qp_poll(qp), 0);
	assert_int_equal(t.n, 0);
	uint64_t len;
	bool mapped;
	assert_int_equal(bdev_lba_status(b, b->size, &len, &mapped), -EINVAL);
	free(buf);
}

/* Pattern, then zero a range with op (UNMAP or WRITE_ZEROES) that starts and
 * ends inside pages (block size 512): the range reads back as zeroes, the rest
 * keeps its data. */
static void check_zeroing(struct bdev_qp *qp, struct bdev *b, enum bdev_io_type op,
			  uint64_t base)
{
	const size_t len = 256 * KiB;
	uint8_t *src = abuf(len), *dst = abuf(len);
	pattern(src, len, (uint32_t)op + 99);
	assert_int_equal(rw(qp, b, BDEV_IO_WRITE, base, src, len), 0);
	uint64_t zoff = b->block_size == 512 ? 3 * 512 : 4 * KiB;
	uint64_t zlen = 200 * KiB + (b->block_size == 512 ? 512 : 0);
	assert_int_equal(io_sync(qp, b, op, false, base + zoff, zlen, NULL, 0), 0);
	assert_int_equal(rw(qp, b, BDEV_IO_READ, base, dst, len), 0);
	assert_memory_equal(dst, src, zoff);
	assert_true(all_zero(dst + zoff, zlen));
	assert_memory_equal(dst + zoff + zlen, src + zoff + zlen, len - zoff - zlen);
	free(src);
	free(dst);
}

/* 256 random distinct 4 KiB writes, depth 32, all in flight at once; then
 * verify every block. */
static void check_batch(struct bdev *b, uint64_t region)
{
	enum { N = 256, BS = 4096 };
	struct bdev_qp *qp = bdev_qp_create(NULL, 32);
	assert_non_null(qp);
	uint32_t nblk = (uint32_t)(region / BS);
	assert_true(nblk >= N);
	uint32_t *perm = malloc(nblk * sizeof(*perm));
	for (uint32_t i = 0; i < nblk; i++)
		perm[i] = i;
	srand(12345);
	for (uint32_t i = nblk - 1; i > 0; i--) {
		uint32_t j = (uint32_t)rand() % (i + 1), tmp = perm[i];
		perm[i] = perm[j];
		perm[j] = tmp;
	}
	uint8_t *bufs = abuf((size_t)N * BS);
	struct iovec *iov = calloc(N, sizeof(*iov));
	struct bdev_io *ios = calloc(N, sizeof(*ios));
	struct tally t = { 0 };
	for (int i = 0; i < N; i++) {
		pattern(bufs + (size_t)i * BS, BS, perm[i] + 1000);
		iov[i] = (struct iovec){ bufs + (size_t)i * BS, BS };
		io_init(&ios[i], b, BDEV_IO_WRITE, (uint64_t)perm[i] * BS, BS, &iov[i], 1, &t);
		assert_int_equal(bdev_submit(qp, &ios[i]), 0);
	}
	assert_int_equal(bdev_qp_inflight(qp), N);
	assert_true(poll_until(qp, &t.n, N));
	assert_int_equal(t.errors, 0);
	assert_int_equal(bdev_qp_inflight(qp), 0);

	struct bdev_qp_stats st;
	bdev_qp_get_stats(qp, &st);
	assert_int_equal(st.submitted, N);
	assert_int_equal(st.completed, N);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.queued_peak, N);
	assert_true(st.batches >= N / 32);     /* never more than depth at once */

	uint8_t *rd = abuf(BS), *want = abuf(BS);
	for (int i = 0; i < N; i++) {
		assert_int_equal(rw(qp, b, BDEV_IO_READ, (uint64_t)perm[i] * BS, rd, BS), 0);
		pattern(want, BS, perm[i] + 1000);
		assert_memory_equal(rd, want, BS);
	}
	bdev_qp_destroy(qp);
	free(rd);
	free(want);
	free(ios);
	free(iov);
	free(bufs);
	free(perm);
}

/* ---- open ---- */

static void test_open_rejects(void **state)
{
	(void)state;
	struct bdev *b = (struct bdev *)1;
	struct bdev_opts o = { .type = BDEV_TYPE_RAM, .path = "r", .size = MiB, .block_size = 1000 };
	assert_int_equal(bdev_open(&o, &b), -EINVAL);
	assert_null(b);
	o.block_size = 256;
	assert_int_equal(bdev_open(&o, &b), -EINVAL);
	o.block_size = 8192;
	assert_int_equal(bdev_open(&o, &b), -EINVAL);
	o.block_size = 512;
	o.size = 100;                                       /* less than a block */
	assert_int_equal(bdev_open(&o, &b), -EINVAL);
	o.size = 4 * KiB + 100;                             /* rounded down */
	assert_int_equal(bdev_open(&o, &b), 0);
	assert_int_equal(b->size, 4 * KiB);
	assert_string_equal(b->name, "r");
	bdev_close(b);
	o.path = NULL;
	assert_int_equal(bdev_open(&o, &b), -EINVAL);
	o.type = BDEV_TYPE_NVME;                   /* no such namespace device */
	o.path = "0000:01:00.0";
	assert_int_equal(bdev_open(&o, &b), -ENOENT);

	char path[128];
	o.type = BDEV_TYPE_URING;
	o.size = 0;
	snprintf(path, sizeof(path), "%s/missing", g_dir);
	o.path = path;
	assert_int_equal(bdev_open(&o, &b), -ENOENT);
	o.path = make_file(g_dir, "empty", 0);               /* size 0: nothing to export */
	assert_int_equal(bdev_open(&o, &b), -EINVAL);
	o.path = make_file(g_dir, "odd", 8 * KiB + 100);     /* rounded down */
	assert_int_equal(bdev_open(&o, &b), 0);
	assert_int_equal(b->size, 8 * KiB);
	bdev_close(b);
	o.path = make_file(g_dir, "small", 8 * KiB);         /* grown to the asked size */
	o.size = MiB;
	assert_int_equal(bdev_open(&o, &b), 0);
	assert_int_equal(b->size, MiB);
	bdev_close(b);
	struct stat st;
	assert_int_equal(stat(o.path, &st), 0);
	assert_int_equal(st.st_size, MiB);
	o.path = make_file(g_dir, "small", 8 * KiB);         /* ...but not when read-only */
	o.readonly = true;
	assert_int_equal(bdev_open(&o, &b), -EINVAL);
	o.path = "/dev/null";                                /* not a file or disk */
	o.readonly = false;
	o.size = 0;
	assert_int_equal(bdev_open(&o, &b), -EINVAL);
	o.path = g_dir;                                      /* a directory */
	assert_true(bdev_open(&o, &b) < 0);
}

/* ---- ram ---- */

static void test_ram_rw(void **state)
{
	(void)state;
	struct bdev *b = open_ram(16 * MiB, 512, false);
	assert_true(b->can_unmap);
	assert_false(b->direct);
	struct bdev_qp *qp = bdev_qp_create(NULL, 16);
	assert_non_null(qp);
	check_multi_iov(qp, b, 0);
	check_multi_iov(qp, b, 1 * MiB + 512);
	check_multi_iov(qp, b, b->size - 64 * KiB);          /* the last blocks */
	uint8_t *buf = abuf(4 * KiB);
	struct iovec v = { buf, 4 * KiB };
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE, true, 8 * MiB, 4 * KiB, &v, 1), 0);
	assert_int_equal(io_sync(qp, b, BDEV_IO_FLUSH, false, 0, 0, NULL, 0), 0);
	check_rejects(qp, b);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(buf);
}

static void test_ram_provisioning(void **state)
{
	(void)state;
	struct bdev *b = open_ram(64 * MiB, 512, false);
	struct bdev_qp *qp = bdev_qp_create(NULL, 4);
	uint64_t len;
	bool mapped;
	uint8_t *buf = abuf(64 * KiB);

	/* Nothing written: all unmapped, and reading must not change that. */
	assert_int_equal(bdev_lba_status(b, 0, &len, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(len, 64 * MiB);
	assert_int_equal(rw(qp, b, BDEV_IO_READ, 0, buf, 64 * KiB), 0);
	assert_true(all_zero(buf, 64 * KiB));
	assert_int_equal(bdev_lba_status(b, 0, &len, &mapped), 0);
	assert_false(mapped);

	/* 8 KiB written at 1 MiB: mapped there, unmapped on both sides. */
	pattern(buf, 8 * KiB, 5);
	assert_int_equal(rw(qp, b, BDEV_IO_WRITE, MiB, buf, 8 * KiB), 0);
	assert_int_equal(bdev_lba_status(b, 0, &len, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(len, MiB);
	assert_int_equal(bdev_lba_status(b, MiB + 512, &len, &mapped), 0);
	assert_true(mapped);
	assert_int_equal(len, 8 * KiB - 512);
	assert_int_equal(bdev_lba_status(b, MiB + 8 * KiB, &len, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(len, 63 * MiB - 8 * KiB);

	/* Unmap 1 MiB - 512 B .. interior pages released, the data gone. */
	check_zeroing(qp, b, BDEV_IO_UNMAP, 4 * MiB);
	assert_int_equal(bdev_lba_status(b, 4 * MiB + 4 * KiB, &len, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(len, 196 * KiB);                    /* up to the partial last page */
	assert_int_equal(bdev_lba_status(b, 4 * MiB, &len, &mapped), 0);
	assert_true(mapped);                                 /* head page kept (partly data) */
	assert_int_equal(len, 4 * KiB);
	check_zeroing(qp, b, BDEV_IO_WRITE_ZEROES, 8 * MiB);
	assert_int_equal(bdev_lba_status(b, 8 * MiB + 4 * KiB, &len, &mapped), 0);
	assert_false(mapped);

	/* Unmapping never-written memory must not allocate it (edges included). */
	assert_int_equal(io_sync(qp, b, BDEV_IO_UNMAP, false, 32 * MiB + 512, 3 * 512, NULL, 0), 0);
	assert_int_equal(bdev_lba_status(b, 32 * MiB, &len, &mapped), 0);
	assert_false(mapped);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(buf);
}

static void test_ram_readonly(void **state)
{
	(void)state;
	struct bdev *b = open_ram(MiB, 4096, true);
	struct bdev_qp *qp = bdev_qp_create(NULL, 4);
	uint8_t *buf = abuf(8 * KiB);
	assert_false(b->can_unmap);
	assert_int_equal(rw(qp, b, BDEV_IO_WRITE, 0, buf, 8 * KiB), -EROFS);
	assert_int_equal(io_sync(qp, b, BDEV_IO_UNMAP, false, 0, 4 * KiB, NULL, 0), -EROFS);
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE_ZEROES, false, 0, 4 * KiB, NULL, 0), -EROFS);
	assert_int_equal(rw(qp, b, BDEV_IO_READ, 0, buf, 8 * KiB), 0);
	assert_true(all_zero(buf, 8 * KiB));
	assert_int_equal(io_sync(qp, b, BDEV_IO_FLUSH, false, 0, 0, NULL, 0), 0);
	/* 4 KiB blocks: 512 B alignment is not enough. */
	assert_int_equal(rw(qp, b, BDEV_IO_READ, 512, buf, 4 * KiB), -EINVAL);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(buf);
}

static void test_ram_batch(void **state)
{
	(void)state;
	struct bdev *b = open_ram(8 * MiB, 4096, false);
	check_batch(b, 8 * MiB);
	bdev_close(b);
}

/* depth bounds the work one poll does; callbacks may submit again, and those
 * I/O go in a later poll. */
static struct bdev_qp *g_chain_qp;
static int g_chain_left;

static void chain_cb(struct bdev_io *io)
{
	struct tally *t = io->ctx;
	t->n++;
	if (io->status)
		t->errors++;
	if (g_chain_left-- > 0)
		assert_int_equal(bdev_submit(g_chain_qp, io), 0);
}

static void test_ram_depth_and_resubmit(void **state)
{
	(void)state;
	struct bdev *b = open_ram(MiB, 512, false);
	struct bdev_qp *qp = bdev_qp_create(NULL, 10);
	uint8_t *buf = abuf(100 * 512);
	struct bdev_io ios[100];
	struct iovec iov[100];
	struct tally t = { 0 };
	for (int i = 0; i < 100; i++) {
		iov[i] = (struct iovec){ buf + i * 512, 512 };
		io_init(&ios[i], b, BDEV_IO_WRITE, (uint64_t)i * 512, 512, &iov[i], 1, &t);
		assert_int_equal(bdev_submit(qp, &ios[i]), 0);
	}
	assert_int_equal(t.n, 0);                     /* nothing completes in submit */
	for (int turn = 1; turn <= 10; turn++) {
		assert_int_equal(bdev_qp_poll(qp), 10);
		assert_int_equal(t.n, turn * 10);
		assert_int_equal(bdev_qp_inflight(qp), 100 - turn * 10);
	}
	assert_int_equal(bdev_qp_poll(qp), 0);
	struct bdev_qp_stats st;
	bdev_qp_get_stats(qp, &st);
	assert_int_equal(st.batches, 10);
	assert_int_equal(st.completed, 100);

	/* One I/O resubmitted from its own callback 5 times. */
	g_chain_qp = qp;
	g_chain_left = 5;
	t = (struct tally){ 0 };
	struct bdev_io io;
	io_init(&io, b, BDEV_IO_READ, 0, 512, &iov[0], 1, &t);
	io.cb = chain_cb;
	assert_int_equal(bdev_submit(qp, &io), 0);
	for (int turn = 1; turn <= 6; turn++) {
		assert_int_equal(bdev_qp_poll(qp), 1);
		assert_int_equal(t.n, turn);
	}
	assert_int_equal(bdev_qp_poll(qp), 0);
	assert_int_equal(t.errors, 0);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(buf);
}

static void test_ram_destroy_cancels(void **state)
{
	(void)state;
	struct bdev *b = open_ram(MiB, 512, false);
	struct bdev_qp *qp = bdev_qp_create(NULL, 4);
	uint8_t *buf = abuf(512);
	struct iovec v = { buf, 512 };
	struct bdev_io ios[8];
	struct tally t = { 0 };
	for (int i = 0; i < 8; i++) {
		io_init(&ios[i], b, BDEV_IO_READ, 0, 512, &v, 1, &t);
		assert_int_equal(bdev_submit(qp, &ios[i]), 0);
	}
	bdev_qp_destroy(qp);
	assert_int_equal(t.n, 8);
	assert_int_equal(t.errors, 8);
	assert_int_equal(t.last_status, -ECANCELED);
	bdev_close(b);
	free(buf);
}

/* ---- files on the real file system (O_DIRECT) ---- */

static void test_file_rw(void **state)
{
	(void)state;
	char *path = make_file(g_dir, "rw", 16 * MiB);
	struct bdev *b = open_file(path, 0, 512, false);
	assert_false(b->is_blockdev);
	assert_int_equal(b->size, 16 * MiB);
	assert_true(b->direct);                 /* ext4/xfs take O_DIRECT */
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	check_multi_iov(qp, b, 0);
	check_multi_iov(qp, b, 5 * MiB + 512);
	check_multi_iov(qp, b, b->size - 64 * KiB);

	/* FUA write, flush; then the data is in the file (seen without the bdev). */
	uint8_t *buf = abuf(32 * KiB), *chk = malloc(32 * KiB);
	pattern(buf, 32 * KiB, 77);
	struct iovec v = { buf, 32 * KiB };
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE, true, 2 * MiB, 32 * KiB, &v, 1), 0);
	assert_int_equal(io_sync(qp, b, BDEV_IO_FLUSH, false, 0, 0, NULL, 0), 0);
	int fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, chk, 32 * KiB, 2 * MiB), 32 * KiB);
	close(fd);
	assert_memory_equal(buf, chk, 32 * KiB);

	check_rejects(qp, b);
	struct bdev_qp_stats st;
	bdev_qp_get_stats(qp, &st);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.submitted, st.completed);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(buf);
	free(chk);
}

static void test_file_unmap_and_status(void **state)
{
	(void)state;
	char *path = make_file(g_dir, "unmap", 8 * MiB);
	struct bdev *b = open_file(path, 0, 4096, false);
	assert_true(b->can_unmap);
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	uint64_t len;
	bool mapped;

	assert_int_equal(bdev_lba_status(b, 0, &len, &mapped), 0);   /* sparse file */
	assert_false(mapped);
	assert_int_equal(len, 8 * MiB);

	uint8_t *buf = abuf(MiB), *rd = abuf(MiB);
	pattern(buf, MiB, 3);
	assert_int_equal(rw(qp, b, BDEV_IO_WRITE, MiB, buf, MiB), 0);
	assert_int_equal(io_sync(qp, b, BDEV_IO_FLUSH, false, 0, 0, NULL, 0), 0);
	uint64_t blocks_before = st_blocks(path);
	assert_true(blocks_before >= MiB / 512);
	assert_int_equal(bdev_lba_status(b, 0, &len, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(len, MiB);
	assert_int_equal(bdev_lba_status(b, MiB, &len, &mapped), 0);
	assert_true(mapped);
	assert_int_equal(len, MiB);

	/* Punch 512 KiB out of the middle of the data. */
	assert_int_equal(io_sync(qp, b, BDEV_IO_UNMAP, false, MiB + 256 * KiB, 512 * KiB,
				 NULL, 0), 0);
	assert_true(st_blocks(path) <= blocks_before - 512 * KiB / 512);
	assert_int_equal(rw(qp, b, BDEV_IO_READ, MiB, rd, MiB), 0);
	assert_memory_equal(rd, buf, 256 * KiB);
	assert_true(all_zero(rd + 256 * KiB, 512 * KiB));
	assert_memory_equal(rd + 768 * KiB, buf + 768 * KiB, 256 * KiB);
	assert_int_equal(bdev_lba_status(b, MiB, &len, &mapped), 0);
	assert_true(mapped);
	assert_int_equal(len, 256 * KiB);
	assert_int_equal(bdev_lba_status(b, MiB + 256 * KiB, &len, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(len, 512 * KiB);
	assert_int_equal(bdev_lba_status(b, 8 * MiB - 4096, &len, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(len, 4096);

	check_zeroing(qp, b, BDEV_IO_WRITE_ZEROES, 4 * MiB);        /* ZERO_RANGE */
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(buf);
	free(rd);
}

static void test_file_unaligned_zeroing(void **state)
{
	(void)state;
	char *path = make_file(g_dir, "zero512", 4 * MiB);
	struct bdev *b = open_file(path, 0, 512, false);
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	check_zeroing(qp, b, BDEV_IO_UNMAP, 0);                    /* partial fs blocks */
	check_zeroing(qp, b, BDEV_IO_WRITE_ZEROES, MiB);
	bdev_qp_destroy(qp);
	bdev_close(b);
}

static void test_file_readonly(void **state)
{
	(void)state;
	char *path = make_file(g_dir, "ro", MiB);
	int fd = open(path, O_WRONLY);
	uint8_t *buf = abuf(8 * KiB);
	pattern(buf, 8 * KiB, 11);
	assert_int_equal(pwrite(fd, buf, 8 * KiB, 64 * KiB), 8 * KiB);
	close(fd);
	assert_int_equal(chmod(path, 0400), 0);
	struct bdev *b = open_file(path, 0, 512, true);
	assert_true(b->readonly);
	assert_false(b->can_unmap);
	struct bdev_qp *qp = bdev_qp_create(NULL, 4);
	uint8_t *rd = abuf(8 * KiB);
	assert_int_equal(rw(qp, b, BDEV_IO_READ, 64 * KiB, rd, 8 * KiB), 0);
	assert_memory_equal(rd, buf, 8 * KiB);
	assert_int_equal(rw(qp, b, BDEV_IO_WRITE, 0, rd, 8 * KiB), -EROFS);
	assert_int_equal(io_sync(qp, b, BDEV_IO_UNMAP, false, 0, 4 * KiB, NULL, 0), -EROFS);
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE_ZEROES, false, 0, 4 * KiB, NULL, 0), -EROFS);
	assert_int_equal(io_sync(qp, b, BDEV_IO_FLUSH, false, 0, 0, NULL, 0), 0);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(buf);
	free(rd);
}

static void test_file_batch(void **state)
{
	(void)state;
	char *path = make_file(g_dir, "batch", 4 * MiB);
	struct bdev *b = open_file(path, 0, 4096, false);
	check_batch(b, 4 * MiB);
	bdev_close(b);
}

/* A read the kernel cuts short: the file shrinks under the bdev, so the read
 * stops at EOF inside an iovec. The rest waits in the queue; the file grows
 * back before the next poll, and the retry (the rest of that iovec, then the
 * remaining iovecs) completes the read. Then the same at EOF for good: -EIO. */
static void test_file_short_read(void **state)
{
	(void)state;
	char *path = make_file(g_dir, "short", 64 * KiB);
	uint8_t *data = abuf(16 * KiB), *rd = abuf(16 * KiB);
	pattern(data, 16 * KiB, 21);
	int fd = open(path, O_RDWR);
	assert_int_equal(pwrite(fd, data, 16 * KiB, 0), 16 * KiB);
	struct bdev *b = open_file(path, 0, 512, false);
	struct bdev_qp *qp = bdev_qp_create(NULL, 4);
	assert_int_equal(ftruncate(fd, 6 * KiB), 0);

	struct iovec v[4];
	for (int i = 0; i < 4; i++)
		v[i] = (struct iovec){ rd + i * 4 * KiB, 4 * KiB };
	struct tally t = { 0 };
	struct bdev_io io;
	io_init(&io, b, BDEV_IO_READ, 0, 16 * KiB, v, 4, &t);
	assert_int_equal(bdev_submit(qp, &io), 0);
	uint64_t deadline = now_ms() + 5000;
	while (io.done_bytes == 0 && t.n == 0 && now_ms() < deadline)
		if (bdev_qp_poll(qp) == 0)
			usleep(20);
	assert_int_equal(t.n, 0);
	assert_int_equal(io.done_bytes, 6 * KiB);           /* progress kept */
	assert_int_equal(io.iov_idx, 1);
	assert_int_equal(io.iov_off, 2 * KiB);
	assert_int_equal(bdev_qp_inflight(qp), 1);          /* queued for the rest */
	assert_int_equal(pwrite(fd, data + 6 * KiB, 10 * KiB, 6 * KiB), 10 * KiB);
	assert_true(poll_until(qp, &t.n, 1));
	assert_int_equal(io.status, 0);
	assert_memory_equal(rd, data, 16 * KiB);

	/* EOF inside the device: what could be read is there, the I/O fails. */
	assert_int_equal(ftruncate(fd, 6 * KiB), 0);
	memset(rd, 0xee, 16 * KiB);
	t = (struct tally){ 0 };
	io_init(&io, b, BDEV_IO_READ, 0, 16 * KiB, v, 4, &t);
	assert_int_equal(bdev_submit(qp, &io), 0);
	assert_true(poll_until(qp, &t.n, 1));
	assert_int_equal(io.status, -EIO);
	assert_int_equal(io.done_bytes, 6 * KiB);
	assert_memory_equal(rd, data, 6 * KiB);
	close(fd);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(data);
	free(rd);
}

/* A qp destroyed with I/O in the kernel and more queued: every callback runs
 * once (kernel I/O with its result, queued ones -ECANCELED), nothing leaks. */
static void test_file_destroy_inflight(void **state)
{
	(void)state;
	enum { N = 64 };
	char *path = make_file(g_dir, "destroy", 4 * MiB);
	struct bdev *b = open_file(path, 0, 4096, false);
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	uint8_t *buf = abuf(N * 64 * KiB);
	struct iovec v[N];
	struct bdev_io ios[N];
	struct tally t = { 0 };
	for (int i = 0; i < N; i++) {
		v[i] = (struct iovec){ buf + (size_t)i * 64 * KiB, 64 * KiB };
		io_init(&ios[i], b, BDEV_IO_WRITE, (uint64_t)i * 64 * KiB, 64 * KiB, &v[i], 1, &t);
		ios[i].fua = true;
		assert_int_equal(bdev_submit(qp, &ios[i]), 0);
	}
	bdev_qp_poll(qp);                        /* 8 into the kernel */
	int early = t.n;
	assert_true(early <= 8);
	bdev_qp_destroy(qp);
	assert_int_equal(t.n, N);
	int canceled = 0;
	for (int i = 0; i < N; i++) {
		assert_true(ios[i].status == 0 || ios[i].status == -ECANCELED);
		canceled += ios[i].status == -ECANCELED;
	}
	assert_true(canceled >= N - 8);
	bdev_close(b);
	free(buf);
}

/* Fixed-file slots are reused after close: I/O must reach the new file. */
static void test_file_slot_reuse(void **state)
{
	(void)state;
	struct bdev_qp *qp = bdev_qp_create(NULL, 4);
	uint8_t *a = abuf(4 * KiB), *c = abuf(4 * KiB), *rd = malloc(4 * KiB);
	pattern(a, 4 * KiB, 1);
	pattern(c, 4 * KiB, 2);
	char *pa = make_file(g_dir, "slot_a", MiB);
	char *pc = make_file(g_dir, "slot_c", MiB);
	struct bdev *ba = open_file(pa, 0, 512, false);
	assert_int_equal(rw(qp, ba, BDEV_IO_WRITE, 0, a, 4 * KiB), 0);
	bdev_close(ba);
	struct bdev *bc = open_file(pc, 0, 512, false);       /* likely ba's slot */
	struct bdev *bd = open_file(pa, 0, 512, false);
	assert_int_equal(rw(qp, bc, BDEV_IO_WRITE, 0, c, 4 * KiB), 0);
	assert_int_equal(rw(qp, bd, BDEV_IO_READ, 0, c, 4 * KiB), 0);
	assert_memory_equal(c, a, 4 * KiB);                   /* bd reads file a */
	pattern(c, 4 * KiB, 2);
	int fd = open(pc, O_RDONLY);
	assert_int_equal(pread(fd, rd, 4 * KiB, 0), 4 * KiB);
	close(fd);
	assert_memory_equal(rd, c, 4 * KiB);                  /* bc wrote file c */
	fd = open(pa, O_RDONLY);
	assert_int_equal(pread(fd, rd, 4 * KiB, 0), 4 * KiB);
	close(fd);
	assert_memory_equal(rd, a, 4 * KiB);
	bdev_qp_destroy(qp);
	bdev_close(bc);
	bdev_close(bd);
	free(a);
	free(c);
	free(rd);
}

/* One qp drives two file bdevs and a ram bdev in the same batch. */
static void test_mixed_backends(void **state)
{
	(void)state;
	enum { N = 48 };
	struct bdev *bs[3] = {
		open_file(make_file(g_dir, "mix1", MiB), 0, 4096, false),
		open_file(make_file(g_dir, "mix2", MiB), 0, 4096, false),
		open_ram(MiB, 4096, false),
	};
	struct bdev_qp *qp = bdev_qp_create(NULL, 16);
	uint8_t *buf = abuf(N * 4 * KiB), *rd = abuf(4 * KiB), *want = abuf(4 * KiB);
	struct iovec v[N];
	struct bdev_io ios[N];
	struct tally t = { 0 };
	for (int i = 0; i < N; i++) {
		pattern(buf + i * 4 * KiB, 4 * KiB, (uint32_t)i);
		v[i] = (struct iovec){ buf + i * 4 * KiB, 4 * KiB };
		io_init(&ios[i], bs[i % 3], BDEV_IO_WRITE, (uint64_t)(i / 3) * 4 * KiB, 4 * KiB,
			&v[i], 1, &t);
		assert_int_equal(bdev_submit(qp, &ios[i]), 0);
	}
	assert_true(poll_until(qp, &t.n, N));
	assert_int_equal(t.errors, 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(rw(qp, bs[i % 3], BDEV_IO_READ, (uint64_t)(i / 3) * 4 * KiB, rd,
				    4 * KiB), 0);
		pattern(want, 4 * KiB, (uint32_t)i);
		assert_memory_equal(rd, want, 4 * KiB);
	}
	bdev_qp_destroy(qp);
	for (int i = 0; i < 3; i++)
		bdev_close(bs[i]);
	free(buf);
	free(rd);
	free(want);
}

/* ---- tmpfs (/dev/shm): ZERO_RANGE refused, so WRITE_ZEROES writes zeroes ---- */

static void test_tmpfs(void **state)
{
	(void)state;
	char dir[64] = "/dev/shm/lich-bdev-XXXXXX";
	if (access("/dev/shm", W_OK) != 0 || !mkdtemp(dir))
		skip();
	char *path = make_file(dir, "t", 8 * MiB);
	int probe = open(path, O_RDWR | O_DIRECT);          /* tmpfs O_DIRECT: kernel >= 6.6 */
	bool can_direct = probe >= 0;
	if (probe >= 0)
		close(probe);
	struct bdev *b = open_file(path, 0, 512, false);
	assert_int_equal(b->direct, can_direct);
	assert_true(b->can_unmap);                          /* tmpfs punches holes */
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	check_multi_iov(qp, b, 0);
	check_zeroing(qp, b, BDEV_IO_WRITE_ZEROES, MiB);    /* small: the tail write */
	check_zeroing(qp, b, BDEV_IO_UNMAP, 2 * MiB);
	/* A zeroing larger than the zero buffer times BDEV_IO_MAX_IOV. */
	const size_t big = 6 * MiB;
	uint8_t *buf = abuf(big);
	pattern(buf, big, 8);
	assert_int_equal(rw(qp, b, BDEV_IO_WRITE, 2 * MiB, buf, big), 0);
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE_ZEROES, false, 2 * MiB + 512,
				 big - 1024, NULL, 0), 0);
	assert_int_equal(rw(qp, b, BDEV_IO_READ, 2 * MiB, buf + 0, big), 0);
	uint8_t *want = abuf(512);
	pattern(want, 512, 8);
	assert_memory_equal(buf, want, 512);
	assert_true(all_zero(buf + 512, big - 1024));
	uint64_t len;
	bool mapped;
	assert_int_equal(io_sync(qp, b, BDEV_IO_UNMAP, false, 4 * MiB, MiB, NULL, 0), 0);
	assert_int_equal(bdev_lba_status(b, 4 * MiB, &len, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(len, MiB);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(buf);
	free(want);
	unlink(path);
	rmdir(dir);
}

/* ---- ramfs: O_DIRECT refused -> buffered; no hole punching ---- */

static void test_ramfs_buffered(void **state)
{
	(void)state;
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/ramfs", g_dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	/* A private mount namespace: the mount vanishes with this process. */
	if (unshare(CLONE_NEWNS) != 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("lich-test", dir, "ramfs", 0, "mode=0700") != 0) {
		rmdir(dir);
		skip();
	}
	char *path = make_file(dir, "f", 2 * MiB);
	struct bdev *b = open_file(path, 0, 512, false);
	assert_false(b->direct);
	assert_false(b->can_unmap);
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	check_multi_iov(qp, b, 512);
	uint8_t *buf = abuf(4 * KiB);
	assert_int_equal(io_sync(qp, b, BDEV_IO_UNMAP, false, 0, 4 * KiB, NULL, 0), -EOPNOTSUPP);
	check_zeroing(qp, b, BDEV_IO_WRITE_ZEROES, MiB);
	/* Buffered: unaligned memory is fine. */
	struct iovec v = { buf + 8, 512 };
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE, true, 0, 512, &v, 1), 0);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(buf);
	/* Lazy: the kernel drops the ring's file references asynchronously. */
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
	rmdir(dir);
}

/* ---- a loop block device over a file ---- */

static int loop_attach(const char *file, char *dev, size_t devlen)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -1;
	int bfd = open(file, O_RDWR | O_CLOEXEC);
	int lfd = -1;
	for (int tries = 0; tries < 8 && lfd < 0; tries++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			break;
		snprintf(dev, devlen, "/dev/loop%d", n);
		lfd = open(dev, O_RDWR | O_CLOEXEC);
		if (lfd < 0)
			break;
		struct loop_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (uint32_t)bfd;
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		if (ioctl(lfd, LOOP_CONFIGURE, &cfg) != 0) {   /* raced for it: again */
			close(lfd);
			lfd = -1;
		}
	}
	close(bfd);
	close(ctl);
	return lfd;
}

static void test_blockdev(void **state)
{
	(void)state;
	char *file = make_file(g_dir, "loop", 8 * MiB);
	char dev[32];
	int lfd = loop_attach(file, dev, sizeof(dev));
	if (lfd < 0)
		skip();
	struct bdev_opts o = { .type = BDEV_TYPE_URING, .path = dev, .block_size = 4096 };
	struct bdev *b = NULL;
	o.size = 16 * MiB;                                   /* larger than the device */
	assert_int_equal(bdev_open(&o, &b), -EINVAL);
	o.size = 0;
	assert_int_equal(bdev_open(&o, &b), 0);
	close(lfd);                                          /* the bdev holds it now */
	assert_true(b->is_blockdev);
	assert_true(b->direct);
	assert_int_equal(b->size, 8 * MiB);
	assert_true(b->can_unmap);                           /* loop over ext4 discards */
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	check_multi_iov(qp, b, 0);
	check_batch(b, 4 * MiB);
	check_zeroing(qp, b, BDEV_IO_UNMAP, 4 * MiB);        /* BLKDISCARD */
	check_zeroing(qp, b, BDEV_IO_WRITE_ZEROES, 6 * MiB); /* BLKZEROOUT */
	uint64_t len;
	bool mapped;
	assert_int_equal(bdev_lba_status(b, 4 * MiB, &len, &mapped), 0);
	assert_true(mapped);
	assert_int_equal(len, 4 * MiB);
	assert_int_equal(io_sync(qp, b, BDEV_IO_FLUSH, false, 0, 0, NULL, 0), 0);
	check_rejects(qp, b);
	bdev_qp_destroy(qp);
	bdev_close(b);
}

/* ---- registered buffers (pool chunks in the ring's buffer table) ---- */

#define CHUNK ((size_t)BUDDY_CHUNK_SIZE)

static struct mem_pool *new_pool(size_t limit, size_t prealloc)
{
	struct mem_pool_opts o = { .name = "bdev-test", .limit = limit, .prealloc = prealloc,
				   .numa_node = -1, .no_hugepages = true };
	struct mem_pool *p = mem_pool_create(&o);
	assert_non_null(p);
	return p;
}

static struct bdev_qp_stats qstats(const struct bdev_qp *qp)
{
	struct bdev_qp_stats st;
	bdev_qp_get_stats(qp, &st);
	return st;
}

/* One-segment write of src then read into dst, each one SQE (fixed or not,
 * as the counters tell); the data must round-trip. */
static void round_trip(struct bdev_qp *qp, struct bdev *b, uint64_t off, uint8_t *src,
		       uint8_t *dst, size_t len, uint32_t seed)
{
	pattern(src, len, seed);
	memset(dst, 0xee, len);
	assert_int_equal(rw(qp, b, BDEV_IO_WRITE, off, src, len), 0);
	assert_int_equal(rw(qp, b, BDEV_IO_READ, off, dst, len), 0);
	assert_memory_equal(src, dst, len);
}

/* Counters moved by exactly (fixed, plain) since *st; *st is updated. */
static void assert_path(struct bdev_qp *qp, struct bdev_qp_stats *st, uint64_t fixed,
			uint64_t plain)
{
	struct bdev_qp_stats now = qstats(qp);
	assert_int_equal(now.rw_fixed - st->rw_fixed, fixed);
	assert_int_equal(now.rw_plain - st->rw_plain, plain);
	*st = now;
}

/* Memory right after chunk (2 MiB at c) that is mapped and writable: the next
 * chunk of the pool if it happens to follow, else a mapping of ours there.
 * *ours = 1 if we mapped it (unmap 64 KiB afterwards); NULL if neither. */
static uint8_t *after_chunk(struct mem_pool *pool, uint8_t *c, bool *ours)
{
	uint8_t *end = c + CHUNK;
	*ours = false;
	if (mem_pool_owns(pool, end))
		return end;
	void *m = mmap(end, 64 * KiB, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (m != end) {                    /* pre-4.17 kernels ignore NOREPLACE */
		munmap(m, 64 * KiB);
		return NULL;
	}
	*ours = true;
	return end;
}

/* Pool buffers on an O_DIRECT file: I/O from any chunk goes through
 * READ_FIXED/WRITE_FIXED: chunks mapped before the ring exists (installed when
 * the first I/O makes it) and after (installed when mapped); FUA on the fixed
 * path; a short read resumed inside a registered buffer; several segments, one
 * fixed SQE each (more in test_bdev_uring). Memory outside the pool and a
 * segment running past its chunk go the plain way. A chunk the pool unmaps leaves the table; destroying the qp removes the
 * pool hook. */
static void test_fixed_bufs(void **state)
{
	(void)state;
	char *path = make_file(g_dir, "fixed", 16 * MiB);
	struct bdev *b = open_file(path, 0, 512, false);
	assert_true(b->direct);
	struct mem_pool *pool = new_pool(16 * MiB, 2 * MiB);
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	assert_non_null(qp);
	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);
	struct bdev_qp_stats st = qstats(qp);
	assert_int_equal(st.fixed_bufs, 0);              /* no ring yet */

	/* Two chunks before the ring: the preallocated one and one mapped now. */
	uint8_t *ca = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	uint8_t *cb = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	assert_non_null(ca);
	assert_non_null(cb);
	round_trip(qp, b, 0, ca, cb + 64 * KiB, 256 * KiB, 1);
	assert_path(qp, &st, 2, 0);
	assert_int_equal(st.fixed_bufs, 2);
	/* The end of a chunk, up to its last byte. */
	round_trip(qp, b, MiB, cb + CHUNK - 512 * KiB, ca + CHUNK - 4 * KiB, 4 * KiB, 2);
	assert_path(qp, &st, 2, 0);

	/* A chunk mapped after the ring: installed at once, used fixed. */
	uint8_t *cc = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	assert_non_null(cc);
	assert_int_equal(qstats(qp).fixed_bufs, 3);
	round_trip(qp, b, 2 * MiB, cc + 128 * KiB, ca + 128 * KiB, CHUNK - 128 * KiB, 3);
	assert_path(qp, &st, 2, 0);

	/* FUA on the fixed path: the data is in the file, seen without the bdev. */
	pattern(cc, 32 * KiB, 4);
	struct iovec v = { cc, 32 * KiB };
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE, true, 6 * MiB, 32 * KiB, &v, 1), 0);
	assert_path(qp, &st, 1, 0);
	uint8_t *chk = malloc(32 * KiB);
	int fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, chk, 32 * KiB, 6 * MiB), 32 * KiB);
	close(fd);
	assert_memory_equal(chk, cc, 32 * KiB);
	free(chk);

	/* Several segments, in one chunk or several: one fixed SQE each. */
	pattern(ca, 64 * KiB, 5);
	struct iovec wv[2] = { { ca, 16 * KiB }, { ca + 16 * KiB, 48 * KiB } };
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE, false, 8 * MiB, 64 * KiB, wv, 2), 0);
	struct iovec rv[3] = { { cb, 4 * KiB }, { cc, 4 * KiB }, { cb + 8 * KiB, 56 * KiB } };
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, 8 * MiB, 64 * KiB, rv, 3), 0);
	assert_path(qp, &st, 2 + 3, 0);
	assert_memory_equal(cb, ca, 4 * KiB);
	assert_memory_equal(cc, ca + 4 * KiB, 4 * KiB);
	assert_memory_equal(cb + 8 * KiB, ca + 8 * KiB, 56 * KiB);

	/* Memory not from the pool. */
	uint8_t *heap = abuf(64 * KiB), *heap2 = abuf(64 * KiB);
	round_trip(qp, b, 9 * MiB, heap, heap2, 64 * KiB, 6);
	assert_path(qp, &st, 0, 2);

	/* One segment starting in a chunk and running past its end (into the
	 * next chunk when it happens to follow, else into a mapping of ours). */
	uint8_t *chunks[3] = { ca, cb, cc }, *span = NULL;
	bool ours = false;
	for (int i = 0; i < 3 && !span; i++)
		if (after_chunk(pool, chunks[i], &ours))
			span = chunks[i] + CHUNK - 32 * KiB;
	assert_non_null(span);
	round_trip(qp, b, 10 * MiB, span, heap, 64 * KiB, 7);
	assert_path(qp, &st, 0, 2);                  /* (the read into heap: plain too) */
	if (ours)
		munmap(span + 32 * KiB, 64 * KiB);

	/* A short read stopping inside a registered buffer: the rest of it is
	 * resubmitted, fixed again. */
	pattern(heap, 16 * KiB, 8);
	fd = open(path, O_RDWR);
	assert_int_equal(pwrite(fd, heap, 16 * KiB, 0), 16 * KiB);
	assert_int_equal(ftruncate(fd, 6 * KiB), 0);
	memset(cb, 0, 16 * KiB);
	struct tally t = { 0 };
	struct bdev_io io;
	struct iovec one = { cb, 16 * KiB };
	io_init(&io, b, BDEV_IO_READ, 0, 16 * KiB, &one, 1, &t);
	assert_int_equal(bdev_submit(qp, &io), 0);
	uint64_t deadline = now_ms() + 5000;
	while (io.done_bytes == 0 && t.n == 0 && now_ms() < deadline)
		if (bdev_qp_poll(qp) == 0)
			usleep(20);
	assert_int_equal(t.n, 0);
	assert_int_equal(io.iov_off, 6 * KiB);
	assert_int_equal(pwrite(fd, heap + 6 * KiB, 10 * KiB, 6 * KiB), 10 * KiB);
	close(fd);
	assert_true(poll_until(qp, &t.n, 1));
	assert_int_equal(io.status, 0);
	assert_memory_equal(cb, heap, 16 * KiB);
	assert_path(qp, &st, 2, 0);

	/* Chunks given back by the pool leave the table; a new one comes in. */
	mem_pool_free_pages(pool, cb);
	mem_pool_free_pages(pool, cc);
	assert_int_equal(mem_pool_trim(pool), CHUNK);     /* one spare stays */
	assert_int_equal(qstats(qp).fixed_bufs, 2);
	uint8_t *big = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	uint8_t *cd = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	assert_non_null(big);
	assert_non_null(cd);
	assert_int_equal(qstats(qp).fixed_bufs, 3);
	round_trip(qp, b, 12 * MiB, cd, big, CHUNK, 9);
	assert_path(qp, &st, 2, 0);

	struct bdev_qp_stats fin = qstats(qp);
	assert_int_equal(fin.errors, 0);
	assert_int_equal(fin.submitted, fin.completed);
	bdev_qp_destroy(qp);

	/* The hook is gone: its id is free again, and mapping a chunk no longer
	 * calls it (ASan would catch a use after free). */
	mem_pool_free_pages(pool, ca);
	mem_pool_free_pages(pool, big);
	mem_pool_free_pages(pool, cd);
	void *more[4];
	for (int i = 0; i < 4; i++)
		assert_non_null(more[i] = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER));
	struct bdev_qp *qp2 = bdev_qp_create(NULL, 4);
	assert_int_equal(bdev_qp_set_pool(qp2, pool), 0);
	bdev_qp_destroy(qp2);
	mem_pool_destroy(pool);
	bdev_close(b);
	free(heap);
	free(heap2);
}

/* Attaching a pool to a qp whose ring already exists installs its chunks at
 * once; detaching (NULL) empties the table and I/O goes plain; re-attaching
 * works; a pool without a free registration id is refused. */
static void test_fixed_bufs_attach_late(void **state)
{
	(void)state;
	char *path = make_file(g_dir, "fixed-late", 4 * MiB);
	struct bdev *b = open_file(path, 0, 4096, false);
	struct mem_pool *pool = new_pool(8 * MiB, 4 * MiB);
	uint8_t *c0 = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	uint8_t *c1 = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	struct bdev_qp *qp = bdev_qp_create(NULL, 4);

	round_trip(qp, b, 0, c0, c1, 64 * KiB, 11);           /* makes the ring */
	struct bdev_qp_stats st = qstats(qp);
	assert_int_equal(st.rw_plain, 2);
	assert_int_equal(st.rw_fixed, 0);
	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);
	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);      /* same pool: no-op */
	assert_int_equal(qstats(qp).fixed_bufs, 2);
	round_trip(qp, b, MiB, c1 + MiB, c0 + 4 * KiB, 64 * KiB, 12);
	assert_path(qp, &st, 2, 0);

	assert_int_equal(bdev_qp_set_pool(qp, NULL), 0);
	assert_int_equal(qstats(qp).fixed_bufs, 0);
	round_trip(qp, b, MiB, c0, c1, 64 * KiB, 13);
	assert_path(qp, &st, 0, 2);
	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);
	assert_int_equal(qstats(qp).fixed_bufs, 2);
	round_trip(qp, b, 2 * MiB, c0, c1, 64 * KiB, 14);
	assert_path(qp, &st, 2, 0);
	bdev_qp_destroy(qp);

	/* Every registration id taken (by other qps): refused, I/O still works. */
	struct bdev_qp *full[MEM_POOL_MAX_REGS];
	for (int i = 0; i < MEM_POOL_MAX_REGS; i++) {
		full[i] = bdev_qp_create(NULL, 4);
		assert_int_equal(bdev_qp_set_pool(full[i], pool), 0);
	}
	qp = bdev_qp_create(NULL, 4);
	assert_int_equal(bdev_qp_set_pool(qp, pool), -EBUSY);
	round_trip(qp, b, 0, c0, c1, 64 * KiB, 15);
	assert_int_equal(qstats(qp).rw_plain, 2);
	bdev_qp_destroy(qp);
	for (int i = 0; i < MEM_POOL_MAX_REGS; i++)
		bdev_qp_destroy(full[i]);
	mem_pool_destroy(pool);
	bdev_close(b);
}

/* ---- on a real reactor ---- */

/* The qp's poller and eventfd on a reactor in sleep mode: the reactor sleeps in
 * epoll_wait while O_DIRECT FUA writes are in the kernel, and completions come
 * back through the poller and the ring's eventfd (the only epoll events in this
 * run: without it the count stays 0 — on recent kernels the task-work wakeup
 * alone would also end the sleep). Interleaved ram I/O shares the qp. A quarter
 * of the file writes come from the reactor's pool, which bdev_qp_create
 * attached: those go as WRITE_FIXED. The qp
 * is destroyed from a deferred call (never from inside its own poll). cmocka
 * asserts only on the test thread; a safety timer and alarm() prevent hangs. */
enum { RT_N = 64 };
static struct {
	struct bdev *file, *ram;
	struct bdev_qp *qp;
	struct bdev_io ios[RT_N];
	struct iovec iov[RT_N];
	uint8_t *buf;
	uint8_t *pool_buf;        /* RT_N / 4 x 16 KiB from the reactor's pool */
	int n, errors;
	bool timed_out, destroyed, create_failed;
	struct bdev_qp_stats st;
	uint64_t sleeps, events;
} rt;

static void rt_safety(void *arg)
{
	(void)arg;
	rt.timed_out = true;
	reactors_stop();
}

static void rt_finish(void *a, void *b)
{
	(void)a;
	(void)b;
	struct reactor_stats rs;
	bdev_qp_get_stats(rt.qp, &rt.st);
	bdev_qp_destroy(rt.qp);
	mem_free(reactor_pool(reactor_self()), rt.pool_buf);
	rt.destroyed = true;
	reactor_get_stats(reactor_self(), &rs);
	rt.sleeps = rs.sleeps;
	rt.events = rs.events;
	reactors_stop();
}

static void rt_cb(struct bdev_io *io)
{
	rt.n++;
	if (io->status)
		rt.errors++;
	if (rt.n == RT_N && reactor_defer(rt_finish, NULL, NULL) != 0)
		reactors_stop();
}

static void rt_start(struct reactor *r, void *arg)
{
	(void)arg;
	reactor_timer_add(r, 5 * 1000 * 1000, 0, rt_safety, NULL);
	rt.qp = bdev_qp_create(r, 8);
	rt.pool_buf = mem_alloc(reactor_pool(r), RT_N / 4 * 16 * KiB);
	if (!rt.qp || !rt.pool_buf) {
		rt.create_failed = true;
		reactors_stop();
		return;
	}
	for (int i = 0; i < RT_N; i++) {
		struct bdev *b = i % 4 == 3 ? rt.ram : rt.file;
		uint8_t *data = rt.buf + (size_t)i * 16 * KiB;
		if (i % 4 == 1) {
			uint8_t *p = rt.pool_buf + (size_t)(i / 4) * 16 * KiB;
			memcpy(p, data, 16 * KiB);
			data = p;
		}
		rt.iov[i] = (struct iovec){ data, 16 * KiB };
		rt.ios[i] = (struct bdev_io){ .bdev = b, .type = BDEV_IO_WRITE, .fua = true,
					      .offset = (uint64_t)i * 16 * KiB, .len = 16 * KiB,
					      .iov = &rt.iov[i], .iovcnt = 1, .cb = rt_cb };
		if (bdev_submit(rt.qp, &rt.ios[i]) != 0)
			rt.errors++;
	}
}

static void test_on_reactor(void **state)
{
	(void)state;
	struct reactor_opts o = { .ncores = 1, .mode = POLL_SLEEP, .mem_limit = 16u << 20,
				  .no_hugepages = true };
	for (unsigned i = 0; i < REACTOR_MAX; i++)
		o.cores[i] = -1;
	memset(&rt, 0, sizeof(rt));
	rt.file = open_file(make_file(g_dir, "reactor", 2 * MiB), 0, 4096, false);
	rt.ram = open_ram(2 * MiB, 4096, false);
	rt.buf = abuf(RT_N * 16 * KiB);
	pattern(rt.buf, RT_N * 16 * KiB, 31);
	assert_int_equal(reactors_init(&o), 0);
	alarm(20);
	int rc = reactors_run(rt_start, NULL);
	alarm(0);
	assert_int_equal(rc, 0);
	assert_false(rt.create_failed);
	assert_false(rt.timed_out);
	assert_true(rt.destroyed);
	assert_int_equal(rt.n, RT_N);
	assert_int_equal(rt.errors, 0);
	assert_int_equal(rt.st.completed, RT_N);
	assert_true(rt.st.batches >= RT_N / 8);
	/* (Short writes, resubmitted, would add SQEs: at least, not exactly.) */
	assert_true(rt.st.rw_fixed >= RT_N / 4);
	assert_true(rt.st.rw_plain >= RT_N / 2);
	assert_true(rt.sleeps > 0);               /* it slept... */
	assert_true(rt.events > 0);               /* ...and the ring's eventfd fired */

	/* Everything landed where it should. */
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	uint8_t *rd = abuf(16 * KiB);
	for (int i = 0; i < RT_N; i++) {
		struct bdev *b = i % 4 == 3 ? rt.ram : rt.file;
		assert_int_equal(rw(qp, b, BDEV_IO_READ, (uint64_t)i * 16 * KiB, rd, 16 * KiB), 0);
		assert_memory_equal(rd, rt.buf + (size_t)i * 16 * KiB, 16 * KiB);
	}
	bdev_qp_destroy(qp);
	bdev_close(rt.file);
	bdev_close(rt.ram);
	free(rd);
	free(rt.buf);
}

/* ---- fixture ---- */

static void rm_tree(const char *dir)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static int setup(void **state)
{
	(void)state;
	log_init(LOG_LVL_WARN, 0);
	/* Not tmpfs: O_DIRECT and real hole punching are what these test. */
	snprintf(g_dir, sizeof(g_dir), "/var/tmp/lich-test-bdev-XXXXXX");
	return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rm_tree(g_dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_rejects),
		cmocka_unit_test(test_ram_rw),
		cmocka_unit_test(test_ram_provisioning),
		cmocka_unit_test(test_ram_readonly),
		cmocka_unit_test(test_ram_batch),
		cmocka_unit_test(test_ram_depth_and_resubmit),
		cmocka_unit_test(test_ram_destroy_cancels),
		cmocka_unit_test(test_file_rw),
		cmocka_unit_test(test_file_unmap_and_status),
		cmocka_unit_test(test_file_unaligned_zeroing),
		cmocka_unit_test(test_file_readonly),
		cmocka_unit_test(test_file_batch),
		cmocka_unit_test(test_file_short_read),
		cmocka_unit_test(test_file_destroy_inflight),
		cmocka_unit_test(test_file_slot_reuse),
		cmocka_unit_test(test_fixed_bufs),
		cmocka_unit_test(test_fixed_bufs_attach_late),
		cmocka_unit_test(test_mixed_backends),
		cmocka_unit_test(test_tmpfs),
		cmocka_unit_test(test_blockdev),
		cmocka_unit_test(test_on_reactor),
		cmocka_unit_test(test_ramfs_buffered),          /* last: unshares the mount ns */
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
