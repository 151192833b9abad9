/* test_bdev_uring.c — the io_uring backend's fast paths, on an O_DIRECT file
 * in /var/tmp (which supports it) with pool memory, and a RAM bdev beside it:
 *   - I/O over several pool segments: one READ_FIXED/WRITE_FIXED per segment,
 *     the io done when all are (data, FUA), a short segment resumed from the
 *     right place, EOF as -EIO;
 *   - one io_uring_enter per poll that starts I/O, none to reap completions
 *     (counted with the syscall tracepoint through perf_event_open; skipped
 *     where the kernel gives no such counter);
 *   - SQPOLL rings: a kernel poller thread exists, I/O works, and submitting
 *     needs no io_uring_enter while it is awake. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "bdev/bdev.h"
#include "core/log.h"
#include "mem/buddy.h"
#include "mem/pool.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define CHUNK BUDDY_CHUNK_SIZE

static char g_dir[64];

/* ---- helpers ---- */

static void pattern(void *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_done(struct bdev_io *io)
{
	(*(int *)io->ctx)++;
}

static void io_init(struct bdev_io *io, struct bdev *b, enum bdev_io_type type, uint64_t off,
		    uint64_t len, struct iovec *iov, int iovcnt, int *count)
{
	memset(io, 0, sizeof(*io));
	io->bdev = b;
	io->type = type;
	io->offset = off;
	io->len = len;
	io->iov = iov;
	io->iovcnt = iovcnt;
	io->cb = on_done;
	io->ctx = count;
}

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

static int io_sync(struct bdev_qp *qp, struct bdev *b, enum bdev_io_type type, bool fua,
		   uint64_t off, uint64_t len, struct iovec *iov, int iovcnt)
{
	struct bdev_io io;
	int n = 0;

	io_init(&io, b, type, off, len, iov, iovcnt, &n);
	io.fua = fua;
	int rc = bdev_submit(qp, &io);
	if (rc)
		return rc;
	assert_true(poll_until(qp, &n, 1));
	return io.status;
}

static char *make_file(const char *name, off_t size)
{
	static char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
	return path;
}

static struct bdev *open_bdev(enum bdev_type type, const char *path, uint64_t size)
{
	struct bdev_opts o = { .type = type, .path = path, .size = size, .block_size = 512 };
	struct bdev *b = NULL;

	assert_int_equal(bdev_open(&o, &b), 0);
	return b;
}

static struct mem_pool *new_pool(size_t limit)
{
	struct mem_pool_opts o = { .name = "uring-test", .limit = limit, .prealloc = CHUNK,
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

/* The file's bytes at off, without the bdev. */
static void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* ---- several segments, fixed ---- */

/* 2 MiB in two 1 MiB segments from two chunks (the SCSI layer's buffer of a
 * 2 MiB command), FUA; read back into three segments of three chunks. Every
 * segment is one fixed SQE; nothing goes readv/writev. A RAM bdev on the same
 * qp takes the same iovecs. */
static void test_split_fixed(void **state)
{
	(void)state;
	char *path = make_file("split", 16 * MiB);
	struct bdev *b = open_bdev(BDEV_TYPE_URING, path, 0);
	struct bdev *ram = open_bdev(BDEV_TYPE_RAM, "ram-split", 8 * MiB);
	struct mem_pool *pool = new_pool(32 * MiB);
	struct bdev_qp *qp = bdev_qp_create(NULL, 64);
	uint8_t *c[4];

	assert_true(b->direct);
	assert_non_null(qp);
	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);
	for (int i = 0; i < 4; i++)
		assert_non_null(c[i] = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER));
	pattern(c[0], MiB, 1);
	pattern(c[1] + MiB, MiB, 2);
	struct iovec wv[2] = { { c[0], MiB }, { c[1] + MiB, MiB } };
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE, true, 4 * MiB, 2 * MiB, wv, 2), 0);
	struct bdev_qp_stats st = qstats(qp);
	assert_int_equal(st.rw_fixed, 2);
	assert_int_equal(st.rw_plain, 0);
	/* FUA: in the file, seen without the bdev. */
	uint8_t *chk = malloc(2 * MiB);
	file_read(path, 4 * MiB, chk, 2 * MiB);
	assert_memory_equal(chk, c[0], MiB);
	assert_memory_equal(chk + MiB, c[1] + MiB, MiB);

	memset(c[2], 0xee, CHUNK);
	memset(c[3], 0xee, CHUNK);
	struct iovec rv[3] = { { c[2], 512 * KiB }, { c[3] + 4 * KiB, MiB },
			       { c[2] + MiB, 512 * KiB } };
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, 4 * MiB, 2 * MiB, rv, 3), 0);
	st = qstats(qp);
	assert_int_equal(st.rw_fixed, 2 + 3);
	assert_int_equal(st.rw_plain, 0);
	assert_memory_equal(c[2], chk, 512 * KiB);
	assert_memory_equal(c[3] + 4 * KiB, chk + 512 * KiB, MiB);
	assert_memory_equal(c[2] + MiB, chk + 512 * KiB + MiB, 512 * KiB);

	/* The same iovecs on a RAM bdev (no SQEs at all). */
	assert_int_equal(io_sync(qp, ram, BDEV_IO_WRITE, false, 0, 2 * MiB, wv, 2), 0);
	memset(c[2], 0, CHUNK);
	memset(c[3], 0, CHUNK);
	assert_int_equal(io_sync(qp, ram, BDEV_IO_READ, false, 0, 2 * MiB, rv, 3), 0);
	assert_memory_equal(c[3] + 4 * KiB, chk + 512 * KiB, MiB);
	assert_int_equal(qstats(qp).rw_fixed, 5);

	/* Many at once: each split takes a tracker; more than there are fall
	 * back to readv (still correct), and the trackers come back. */
	enum { N = 40 };
	struct bdev_io ios[N];
	struct iovec v[N][2];
	int done = 0;
	for (int i = 0; i < N; i++) {
		v[i][0] = (struct iovec){ c[i % 4] + (size_t)(i / 4) * 8 * KiB, 4 * KiB };
		v[i][1] = (struct iovec){ c[(i + 1) % 4] + CHUNK - 4 * KiB, 4 * KiB };
		io_init(&ios[i], b, BDEV_IO_READ, (uint64_t)i * 8 * KiB, 8 * KiB, v[i], 2, &done);
		assert_int_equal(bdev_submit(qp, &ios[i]), 0);
	}
	assert_true(poll_until(qp, &done, N));
	for (int i = 0; i < N; i++)
		assert_int_equal(ios[i].status, 0);
	st = qstats(qp);
	assert_int_equal(st.errors, 0);
	assert_true(st.rw_fixed >= 5 + 2 * 32);
	assert_int_equal(st.rw_fixed - 5 + 2 * st.rw_plain, 2 * N);
	/* All trackers free again: a split goes fixed. */
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, 0, 2 * MiB, rv, 3), 0);
	assert_int_equal(qstats(qp).rw_fixed, st.rw_fixed + 3);

	free(chk);
	bdev_qp_destroy(qp);
	for (int i = 0; i < 4; i++)
		mem_pool_free_pages(pool, c[i]);
	mem_pool_destroy(pool);
	bdev_close(ram);
	bdev_close(b);
}

/* A split read whose second segment comes up short (the file is shorter than
 * the bdev): the io goes on from the first missing byte, inside that segment,
 * once the data is there; a split read wholly past the end is -EIO. */
static void test_split_short(void **state)
{
	(void)state;
	char *path = make_file("short", 8 * MiB);
	struct bdev *b = open_bdev(BDEV_TYPE_URING, path, 0);
	struct mem_pool *pool = new_pool(16 * MiB);
	struct bdev_qp *qp = bdev_qp_create(NULL, 16);
	uint8_t *c0 = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	uint8_t *c1 = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	uint8_t *src = malloc(2 * MiB);
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);
	pattern(src, 2 * MiB, 7);
	assert_int_equal(pwrite(fd, src, 2 * MiB, 2 * MiB), (ssize_t)(2 * MiB));
	/* The file ends 512 KiB into the second segment. */
	assert_int_equal(ftruncate(fd, 3 * MiB + 512 * KiB), 0);
	memset(c0, 0, CHUNK);
	memset(c1, 0, CHUNK);
	struct iovec v[2] = { { c0, MiB }, { c1, MiB } };
	struct bdev_io io;
	int n = 0;
	io_init(&io, b, BDEV_IO_READ, 2 * MiB, 2 * MiB, v, 2, &n);
	assert_int_equal(bdev_submit(qp, &io), 0);
	uint64_t deadline = now_ms() + 5000;
	while (io.done_bytes == 0 && n == 0 && now_ms() < deadline)
		if (bdev_qp_poll(qp) == 0)
			usleep(20);
	assert_int_equal(n, 0);
	assert_int_equal(io.done_bytes, MiB + 512 * KiB);
	assert_int_equal(io.iov_idx, 1);
	assert_int_equal(io.iov_off, 512 * KiB);
	/* The rest appears: the resubmitted part (inside a segment: one SQE) reads it. */
	assert_int_equal(pwrite(fd, src + MiB + 512 * KiB, 512 * KiB, 3 * MiB + 512 * KiB),
			 (ssize_t)(512 * KiB));
	assert_true(poll_until(qp, &n, 1));
	assert_int_equal(io.status, 0);
	assert_memory_equal(c0, src, MiB);
	assert_memory_equal(c1, src + MiB, MiB);
	struct bdev_qp_stats st = qstats(qp);
	assert_int_equal(st.rw_fixed, 3);
	assert_int_equal(st.rw_plain, 0);

	/* Past the end of the file: nothing moves, -EIO. */
	assert_int_equal(ftruncate(fd, 2 * MiB), 0);
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, 4 * MiB, 2 * MiB, v, 2), -EIO);
	/* Only the second segment past the end: the first is read, then -EIO. */
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, MiB, 2 * MiB, v, 2), -EIO);
	close(fd);
	free(src);
	bdev_qp_destroy(qp);
	mem_pool_free_pages(pool, c0);
	mem_pool_free_pages(pool, c1);
	mem_pool_destroy(pool);
	bdev_close(b);
}

/* ---- one segment, started in bdev_submit ---- */

/* Once the qp's ring exists, a one-segment READ/WRITE submitted with nothing
 * queued and room below depth gets its SQE in bdev_submit (fixed buffer from
 * pool memory, plain from other memory); beyond depth, or behind queued I/O,
 * it waits in the queue as before. Every one completes with the right data,
 * never inside bdev_submit. */
static void test_submit_direct(void **state)
{
	(void)state;
	enum { N = 6, DEPTH = 4 };
	char *path = make_file("direct", 8 * MiB);
	struct bdev *b = open_bdev(BDEV_TYPE_URING, path, 0);
	struct mem_pool *pool = new_pool(16 * MiB);
	struct bdev_qp *qp = bdev_qp_create(NULL, DEPTH);
	uint8_t *c = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	uint8_t *plain = aligned_alloc(4096, 4 * KiB);
	uint8_t *want = malloc(N * 4 * KiB);

	assert_non_null(c);
	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);
	/* No ring yet: the first I/O is queued, and makes the ring. */
	pattern(c, N * 4 * KiB, 11);
	memcpy(want, c, N * 4 * KiB);
	struct iovec wv = { c, N * 4 * KiB };
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE, true, 0, N * 4 * KiB, &wv, 1), 0);
	struct bdev_qp_stats st = qstats(qp);
	assert_int_equal(st.queued_peak, 1);
	assert_int_equal(st.rw_fixed, 1);

	/* N reads at depth 4: the first four get SQEs in bdev_submit, two wait. */
	memset(c, 0, CHUNK);
	struct bdev_io ios[N];
	struct iovec v[N];
	int done = 0;
	for (int i = 0; i < N; i++) {
		v[i] = (struct iovec){ c + CHUNK - (size_t)(i + 1) * 4 * KiB, 4 * KiB };
		io_init(&ios[i], b, BDEV_IO_READ, (uint64_t)i * 4 * KiB, 4 * KiB, &v[i], 1, &done);
		assert_int_equal(bdev_submit(qp, &ios[i]), 0);
	}
	assert_int_equal(done, 0);
	assert_int_equal(bdev_qp_inflight(qp), N);
	st = qstats(qp);
	assert_int_equal(st.rw_fixed, 1 + DEPTH);
	assert_int_equal(st.queued_peak, N - DEPTH);
	assert_true(poll_until(qp, &done, N));
	for (int i = 0; i < N; i++) {
		assert_int_equal(ios[i].status, 0);
		assert_memory_equal(v[i].iov_base, want + (size_t)i * 4 * KiB, 4 * KiB);
	}
	assert_int_equal(qstats(qp).rw_fixed, 1 + N);

	/* Memory outside the pool: started in submit too, as a plain read. */
	struct iovec pv = { plain, 4 * KiB };
	int n = 0;
	io_init(&ios[0], b, BDEV_IO_READ, 4 * KiB, 4 * KiB, &pv, 1, &n);
	assert_int_equal(bdev_submit(qp, &ios[0]), 0);
	assert_int_equal(qstats(qp).rw_plain, 1);
	assert_true(poll_until(qp, &n, 1));
	assert_int_equal(ios[0].status, 0);
	assert_memory_equal(plain, want + 4 * KiB, 4 * KiB);

	/* Past the end of the file (but inside the bdev): -EIO, as ever. */
	assert_int_equal(truncate(path, 4 * MiB), 0);
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, 6 * MiB, 4 * KiB, &pv, 1), -EIO);

	bdev_qp_destroy(qp);
	free(plain);
	free(want);
	mem_pool_free_pages(pool, c);
	mem_pool_destroy(pool);
	bdev_close(b);
}

/* ---- system calls ---- */

static const char *tracefs_dir(char *mounted, size_t len)
{
	static const char *const dirs[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	struct stat st;

	mounted[0] = 0;
	for (unsigned i = 0; i < 2; i++) {
		char p[160];

		snprintf(p, sizeof(p), "%s/events/syscalls", dirs[i]);
		if (stat(p, &st) == 0)
			return dirs[i];
	}
	/* Not mounted: mount one of our own for the test (root only). */
	snprintf(mounted, len, "%s/tracefs", g_dir);
	if (mkdir(mounted, 0700) == 0 && mount("nodev", mounted, "tracefs", 0, NULL) == 0)
		return mounted;
	rmdir(mounted);
	mounted[0] = 0;
	return NULL;
}

/* A counter of this thread's io_uring_enter calls; -1 where the kernel has
 * none to give (no tracefs, no perf events in this sandbox). */
static int enter_counter(void)
{
	char mounted[128], p[200];
	const char *dir = tracefs_dir(mounted, sizeof(mounted));
	unsigned long long id = 0;
	FILE *f;
	int fd = -1;

	if (!dir)
		return -1;
	snprintf(p, sizeof(p), "%s/events/syscalls/sys_enter_io_uring_enter/id", dir);
	f = fopen(p, "re");
	if (f) {
		if (fscanf(f, "%llu", &id) != 1)
			id = 0;
		fclose(f);
	}
	if (id) {
		struct perf_event_attr a = { .type = PERF_TYPE_TRACEPOINT, .size = sizeof(a),
					     .config = id, .sample_period = 0 };

		fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	}
	if (mounted[0]) {
		umount(mounted);
		rmdir(mounted);
	}
	return fd;
}

static uint64_t enters(int fd)
{
	uint64_t v = 0;

	assert_int_equal(read(fd, &v, sizeof(v)), sizeof(v));
	return v;
}

/* 16 reads queued, one poll: one io_uring_enter for all of them; once the
 * kernel is done, reaping the 16 completions takes none. */
static void test_syscalls_per_poll(void **state)
{
	(void)state;
	int cfd = enter_counter();

	if (cfd < 0) {
		fprintf(stderr, "no io_uring_enter counter here (tracefs/perf): skipped\n");
		skip();
	}
	char *path = make_file("sys", 4 * MiB);
	struct bdev *b = open_bdev(BDEV_TYPE_URING, path, 0);
	struct mem_pool *pool = new_pool(8 * MiB);
	struct bdev_qp *qp = bdev_qp_create(NULL, 64);
	uint8_t *c = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	struct bdev_io ios[16];
	struct iovec v[16];
	int done = 0;

	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);
	/* The ring is made (and its tables registered) by a first I/O. */
	v[0] = (struct iovec){ c, 4 * KiB };
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, 0, 4 * KiB, v, 1), 0);

	uint64_t before = enters(cfd);
	for (int i = 0; i < 16; i++) {
		v[i] = (struct iovec){ c + (size_t)i * 64 * KiB, 64 * KiB };
		io_init(&ios[i], b, BDEV_IO_READ, (uint64_t)i * 64 * KiB, 64 * KiB, &v[i], 1, &done);
		assert_int_equal(bdev_submit(qp, &ios[i]), 0);
	}
	assert_int_equal(enters(cfd) - before, 0);      /* queued: nothing yet */
	bdev_qp_poll(qp);
	assert_int_equal(enters(cfd) - before, 1);      /* one submit for 16 */
	/* Wait for the kernel without asking it (sleeps, not syscalls on the
	 * ring), then reap. */
	uint64_t deadline = now_ms() + 5000;
	while (done < 16 && now_ms() < deadline) {
		usleep(2000);
		bdev_qp_poll(qp);
	}
	assert_int_equal(done, 16);
	assert_int_equal(enters(cfd) - before, 1);      /* reaped from the CQ ring */
	for (int i = 0; i < 16; i++)
		assert_int_equal(ios[i].status, 0);
	close(cfd);
	bdev_qp_destroy(qp);
	mem_pool_free_pages(pool, c);
	mem_pool_destroy(pool);
	bdev_close(b);
}

/* ---- SQPOLL ---- */

static unsigned sqpoll_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char p[300], comm[64] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(p, "re");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && strncmp(comm, "iou-sqp", 7) == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* uring-sqpoll on: the ring gets its kernel poller, fixed and plain I/O work
 * through it (split too), and while the poller is awake submitting takes no
 * io_uring_enter. Off again: rings made later have none. */
static void test_sqpoll(void **state)
{
	(void)state;
	char *path = make_file("sqpoll", 8 * MiB);
	struct bdev *b = open_bdev(BDEV_TYPE_URING, path, 0);
	struct mem_pool *pool = new_pool(16 * MiB);
	unsigned threads = sqpoll_threads();

	bdev_uring_set_sqpoll(true);
	struct bdev_qp *qp = bdev_qp_create(NULL, 32);
	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);
	uint8_t *c0 = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	uint8_t *c1 = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	uint8_t *heap = aligned_alloc(4096, 256 * KiB);

	pattern(c0, CHUNK, 11);
	struct iovec wv[2] = { { c0, MiB }, { c0 + MiB, MiB } };
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE, false, 0, 2 * MiB, wv, 2), 0);
	struct bdev_qp_stats st = qstats(qp);
	if (!st.sqpoll) {
		/* The kernel refused (logged): the fallback must still work. */
		fprintf(stderr, "SQPOLL refused by this kernel: fallback checked only\n");
	} else {
		assert_int_equal(sqpoll_threads(), threads + 1);
	}
	assert_int_equal(st.rw_fixed, 2);
	struct iovec rv = { c1, 2 * MiB };
	memset(c1, 0, CHUNK);
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, 0, 2 * MiB, &rv, 1), 0);
	assert_memory_equal(c1, c0, 2 * MiB);
	struct iovec hv = { heap, 256 * KiB };
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, 64 * KiB, 256 * KiB, &hv, 1), 0);
	assert_memory_equal(heap, c0 + 64 * KiB, 256 * KiB);
	assert_int_equal(qstats(qp).rw_plain, 1);

	int cfd = st.sqpoll ? enter_counter() : -1;
	if (cfd >= 0) {
		/* Awake (it just worked): 8 more I/Os, no system call on the ring. */
		struct bdev_io ios[8];
		struct iovec v[8];
		int done = 0;
		uint64_t before = enters(cfd);

		for (int i = 0; i < 8; i++) {
			v[i] = (struct iovec){ c1 + (size_t)i * 64 * KiB, 64 * KiB };
			io_init(&ios[i], b, BDEV_IO_READ, (uint64_t)i * 64 * KiB, 64 * KiB, &v[i], 1,
				&done);
			assert_int_equal(bdev_submit(qp, &ios[i]), 0);
		}
		uint64_t deadline = now_ms() + 5000;
		while (done < 8 && now_ms() < deadline)
			if (bdev_qp_poll(qp) == 0)
				usleep(20);
		assert_int_equal(done, 8);
		assert_int_equal(enters(cfd) - before, 0);
		close(cfd);
	}
	bdev_qp_destroy(qp);
	bdev_uring_set_sqpoll(false);

	struct bdev_qp *qp2 = bdev_qp_create(NULL, 8);
	assert_int_equal(io_sync(qp2, b, BDEV_IO_READ, false, 0, 256 * KiB, &hv, 1), 0);
	assert_int_equal(qstats(qp2).sqpoll, 0);
	bdev_qp_destroy(qp2);
	free(heap);
	mem_pool_free_pages(pool, c0);
	mem_pool_free_pages(pool, c1);
	mem_pool_destroy(pool);
	bdev_close(b);
}

static int setup(void **state)
{
	(void)state;
	log_init(LOG_LVL_WARN, 0);
	snprintf(g_dir, sizeof(g_dir), "/var/tmp/lich-test-uring-XXXXXX");
	return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_fixed),
		cmocka_unit_test(test_split_short),
		cmocka_unit_test(test_submit_direct),
		cmocka_unit_test(test_syscalls_per_poll),
		cmocka_unit_test(test_sqpoll),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
