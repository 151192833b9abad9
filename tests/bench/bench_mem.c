/* bench_mem.c — single-thread alloc/free throughput: lich's pool vs glibc malloc.
 *
 * For 64 B and 512 B objects the pool side is a slab cache (slab_alloc /
 * slab_free), and once more with every free validated (slab_free_checked, row
 * "slab-chk": what the checks cost); for 4 KiB and 64 KiB it is mem_alloc /
 * mem_free, i.e. buddy page blocks behind the pool's page magazine. Built
 * without LICH_DEBUG, as `make bench` does, slab_free() trusts its caller (see
 * include/mem/slab.h). Two patterns:
 *   immediate  alloc, touch, free, repeat;
 *   batch      alloc BATCH objects (touching each), free them in a fixed random
 *              order, repeat.
 * One op is one alloc plus its free. Every object gets one byte written and its
 * pointer escapes to an empty asm statement, so the compiler cannot elide the
 * malloc/free pair. Each case runs for about --seconds (default 0.3) per side,
 * as the best of TRIALS runs alternating between pool and malloc (the machine
 * may be shared; the best run is the least disturbed one, for both sides).
 *
 * Usage: bench_mem [--no-hugepages] [--seconds S]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "mem/pool.h"
#include "mem/slab.h"

#define BATCH  1000
#define TRIALS 5

enum side { SLAB, SLAB_CHECKED, BUDDY, LIBC };

/* Direct calls, no function pointers: the loops below are instantiated per
 * allocator through these two inline switches, which the compiler folds since
 * `side` is a constant in each instantiated loop. */
static inline __attribute__((always_inline)) void *
do_alloc(enum side side, void *ctx, size_t size)
{
	switch (side) {
	case SLAB:
	case SLAB_CHECKED: return slab_alloc(ctx);
	case BUDDY: return mem_alloc(ctx, size);
	default:    return malloc(size);
	}
}

static inline __attribute__((always_inline)) void
do_free(enum side side, void *ctx, void *p)
{
	switch (side) {
	case SLAB:  slab_free(ctx, p); break;
	case SLAB_CHECKED:
		if (slab_free_checked(ctx, p) < 0)
			abort();   /* the benchmark never frees wrongly */
		break;
	case BUDDY: mem_free(ctx, p); break;
	default:    free(p); break;
	}
}

static inline void touch(void *p)
{
	*(volatile char *)p = 1;
	__asm__ volatile("" : : "r"(p) : "memory");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned perm[BATCH];

static void make_perm(void)
{
	uint64_t x = 0x2545f4914f6cdd1dull;

	for (unsigned i = 0; i < BATCH; i++)
		perm[i] = i;
	for (unsigned i = BATCH; i > 1; i--) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned j = (unsigned)(x % i), t = perm[i - 1];

		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

/* Returns ops per second, or 0 if an allocation failed. */
static inline __attribute__((always_inline)) double
run_immediate(enum side side, void *ctx, size_t size, double secs)
{
	uint64_t ops = 0;
	double t0 = now(), t;

	do {
		for (unsigned i = 0; i < 4096; i++) {
			void *p = do_alloc(side, ctx, size);

			if (!p)
				return 0;
			touch(p);
			do_free(side, ctx, p);
		}
		ops += 4096;
		t = now() - t0;
	} while (t < secs);
	return (double)ops / t;
}

static inline __attribute__((always_inline)) double
run_batch(enum side side, void *ctx, size_t size, double secs)
{
	static void *obj[BATCH];
	uint64_t ops = 0;
	double t0 = now(), t;

	do {
		for (unsigned i = 0; i < BATCH; i++) {
			obj[i] = do_alloc(side, ctx, size);
			if (!obj[i])
				return 0;
			touch(obj[i]);
		}
		for (unsigned i = 0; i < BATCH; i++)
			do_free(side, ctx, obj[perm[i]]);
		ops += BATCH;
		t = now() - t0;
	} while (t < secs);
	return (double)ops / t;
}

/* One out-of-line instance per allocator and pattern. */
#define INSTANCE(name, side, fn) \
	static __attribute__((noinline)) double name(void *ctx, size_t size, double secs) \
	{ return fn(side, ctx, size, secs); }
INSTANCE(slab_immediate, SLAB, run_immediate)
INSTANCE(slab_batch, SLAB, run_batch)
INSTANCE(checked_immediate, SLAB_CHECKED, run_immediate)
INSTANCE(checked_batch, SLAB_CHECKED, run_batch)
INSTANCE(buddy_immediate, BUDDY, run_immediate)
INSTANCE(buddy_batch, BUDDY, run_batch)
INSTANCE(libc_immediate, LIBC, run_immediate)
INSTANCE(libc_batch, LIBC, run_batch)

static void row(const char *kind, size_t size, const char *pattern,
		double pool, double libc)
{
	char sz[32];

	if (size >= 1024)
		snprintf(sz, sizeof(sz), "%zu KiB", size >> 10);
	else
		snprintf(sz, sizeof(sz), "%zu B", size);
	printf("%-8s %-8s %-10s %14.2f %14.2f %8.2fx\n", sz, kind, pattern,
	       pool / 1e6, libc / 1e6, libc > 0 ? pool / libc : 0.0);
}

static double best(double a, double b) { return a > b ? a : b; }

typedef double (*run_fn)(void *ctx, size_t size, double secs);

struct variant {
	const char *kind;
	run_fn immediate, batch;
	bool slab;                      /* ctx is a slab cache, else the pool */
};

static const struct variant slab_plain = { "slab", slab_immediate, slab_batch, true };
static const struct variant slab_checked = { "slab-chk", checked_immediate, checked_batch, true };
static const struct variant buddy = { "buddy", buddy_immediate, buddy_batch, false };

static int bench_case(struct mem_pool *p, size_t size, double secs, const struct variant *v)
{
	struct slab_cache *c = NULL;
	void *ctx = p;

	if (v->slab) {
		char name[32];

		snprintf(name, sizeof(name), "bench-%zu", size);
		c = slab_cache_create(p, name, size, 0);
		if (!c)
			return -1;
		ctx = c;
	}
	/* Warm up both sides once (first slabs, first chunks, malloc arenas). */
	v->batch(ctx, size, 0.02);
	libc_batch(NULL, size, 0.02);

	/* Best of TRIALS short runs, pool and malloc alternating, so both sides
	 * see the same machine noise and a preempted run does not decide. */
	double pi = 0, li = 0, pb = 0, lb = 0, slice = secs / TRIALS;

	for (unsigned t = 0; t < TRIALS; t++) {
		pi = best(pi, v->immediate(ctx, size, slice));
		li = best(li, libc_immediate(NULL, size, slice));
	}
	for (unsigned t = 0; t < TRIALS; t++) {
		pb = best(pb, v->batch(ctx, size, slice));
		lb = best(lb, libc_batch(NULL, size, slice));
	}
	slab_cache_destroy(c);
	if (pi == 0 || pb == 0) {
		fprintf(stderr, "bench_mem: pool allocation failed at %zu B\n", size);
		return -1;
	}
	row(v->kind, size, "immediate", pi, li);
	row(v->kind, size, "batch", pb, lb);
	return 0;
}

static int bench_size(struct mem_pool *p, size_t size, double secs)
{
	if (size > SLAB_MAX_OBJ)
		return bench_case(p, size, secs, &buddy);
	if (bench_case(p, size, secs, &slab_plain) < 0)
		return -1;
	return bench_case(p, size, secs, &slab_checked);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 64, 512, 4096, 65536 };
	bool no_huge = false;
	double secs = 0.3;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-hugepages") == 0)
			no_huge = true;
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--no-hugepages] [--seconds S]\n", argv[0]);
			return 2;
		}
	}
	log_init(LOG_LVL_WARN, 0);
	make_perm();
	/* A batch of 1000 x 64 KiB needs 64 MiB; leave room. */
	struct mem_pool_opts o = { .name = "bench", .limit = (size_t)256 << 20,
				   .numa_node = -1, .no_hugepages = no_huge };
	struct mem_pool *p = mem_pool_create(&o);

	if (!p) {
		fprintf(stderr, "bench_mem: cannot create pool\n");
		return 1;
	}
	printf("%-8s %-8s %-10s %14s %14s %9s\n", "size", "pool", "pattern",
	       "pool Mops/s", "malloc Mops/s", "ratio");
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (bench_size(p, sizes[i], secs) < 0) {
			mem_pool_destroy(p);
			return 1;
		}
	struct mem_pool_stats s;

	mem_pool_get_stats(p, &s);
	printf("(one op = alloc + touch + free; pool chunks: %zu, hugepage-backed: %zu)\n",
	       s.chunks, s.hugepage_chunks);
	mem_pool_destroy(p);
	return 0;
}
