/* test_slab.c — slab caches: distinct aligned objects, stats, empty-slab
 * hysteresis, exhaustion and recovery, rejected bad frees, mem_free routing,
 * and the magazine in front of the slabs: refill and flush boundaries, stats
 * with objects in it, double frees caught in it, trim giving pages back.
 *
 * Built with -DLICH_DEBUG (make check-asan), slab_free() validates every call;
 * without it, slab_free() trusts its caller and only a magazine flush looks at
 * the objects. The tests of bad slab_free() calls are split accordingly. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mem/buddy.h"
#include "mem/pool.h"
#include "mem/slab.h"

#define MiB ((size_t)1 << 20)

static struct mem_pool *new_pool(size_t limit)
{
	struct mem_pool_opts o = { .name = "slabtest", .limit = limit, .numa_node = -1,
				   .no_hugepages = true };
	struct mem_pool *p = mem_pool_create(&o);

	assert_non_null(p);
	return p;
}

static struct slab_stats cstats(const struct slab_cache *c)
{
	struct slab_stats s;

	slab_get_stats(c, &s);
	return s;
}

static size_t pool_pages(const struct mem_pool *p)
{
	struct mem_pool_stats s;

	mem_pool_get_stats(p, &s);
	return s.page_bytes_in_use;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void shuffle(void **a, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rng() % i;
		void *t = a[i - 1];

		a[i - 1] = a[j];
		a[j] = t;
	}
}

static int cmp_ptr(const void *x, const void *y)
{
	uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;

	return a < b ? -1 : a > b;
}

/* Objects are pairwise disjoint: sorted, each starts past the previous end. */
static void assert_disjoint(void **objs, size_t n, size_t size)
{
	void **s = malloc(n * sizeof(*s));

	assert_non_null(s);
	memcpy(s, objs, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_ptr);
	for (size_t i = 1; i < n; i++)
		assert_true((uintptr_t)s[i] >= (uintptr_t)s[i - 1] + size);
	free(s);
}

static void test_objects(void **state)
{
	(void)state;
	enum { N = 3000 };
	struct mem_pool *p = new_pool(32 * MiB);
	struct slab_cache *c = slab_cache_create(p, "obj", 100, 0);
	void **o = calloc(N, sizeof(*o));

	assert_non_null(c);
	assert_non_null(o);
	assert_int_equal(slab_obj_size(c), 112);   /* rounded up to 16 */
	for (size_t i = 0; i < N; i++) {
		o[i] = slab_alloc(c);
		assert_non_null(o[i]);
		assert_int_equal((uintptr_t)o[i] % 16, 0);
		assert_true(mem_pool_owns(p, o[i]));
		memset(o[i], (int)(i & 0xff), 112);
	}
	assert_disjoint(o, N, 112);
	for (size_t i = 0; i < N; i++)
		for (size_t k = 0; k < 112; k++)
			assert_int_equal(((uint8_t *)o[i])[k], i & 0xff);

	struct slab_stats s = cstats(c);

	assert_int_equal(s.in_use, N);
	assert_int_equal(s.bytes_in_use, N * 112);
	assert_int_equal(s.high_water, N);
	assert_int_equal(s.allocs, N);
	assert_int_equal(s.failed, 0);
	assert_true(s.slabs > 0);
	assert_int_equal(s.slab_bytes % BUDDY_PAGE_SIZE, 0);
	assert_true(s.slab_bytes >= N * 112);
	assert_string_equal(s.name, "obj");

	shuffle(o, N);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(slab_free_checked(c, o[i]), 0);
	s = cstats(c);
	assert_int_equal(s.in_use, 0);
	assert_int_equal(s.high_water, N);
	assert_int_equal(s.allocs, N);
	assert_true(s.cached > 0 && s.cached <= s.cached_max);
	/* Objects parked in the magazine keep slabs; a flush returns them, and of
	 * the slabs it empties only the spare stays. */
	slab_cache_flush(c);
	s = cstats(c);
	assert_int_equal(s.cached, 0);
	assert_int_equal(s.in_use, 0);
	assert_int_equal(s.slabs, 1);
	assert_int_equal(pool_pages(p), s.slab_bytes);
	free(o);
	slab_cache_destroy(c);
	assert_int_equal(pool_pages(p), 0);
	mem_pool_destroy(p);
}

/* Any interleaving of allocs and frees keeps the live set disjoint, and a
 * freed object is reused. */
static void test_order_independence(void **state)
{
	(void)state;
	enum { N = 1000, OPS = 50000 };
	struct mem_pool *p = new_pool(16 * MiB);
	struct slab_cache *c = slab_cache_create(p, "mix", 48, 0);
	void *live[N];
	size_t n = 0, peak = 0;

	for (unsigned op = 0; op < OPS; op++) {
		if (n < N && (n == 0 || rng() % 2)) {
			live[n] = slab_alloc(c);
			assert_non_null(live[n]);
			*(uint64_t *)live[n] = (uintptr_t)live[n];   /* writable */
			n++;
			peak = n > peak ? n : peak;
		} else {
			size_t k = rng() % n;

			assert_int_equal(*(uint64_t *)live[k], (uintptr_t)live[k]);
			assert_int_equal(slab_free_checked(c, live[k]), 0);
			live[k] = live[--n];
		}
		assert_int_equal(cstats(c).in_use, n);
	}
	assert_disjoint(live, n, 48);
	assert_int_equal(cstats(c).high_water, peak);

	/* LIFO reuse: the object just freed comes back first. */
	void *x = slab_alloc(c);

	slab_free(c, x);
	assert_ptr_equal(slab_alloc(c), x);
	slab_free(c, x);
	while (n)
		slab_free(c, live[--n]);
	slab_cache_destroy(c);
	mem_pool_destroy(p);
}

/* Fills slabs one at a time; returns how many objects one slab holds. */
static size_t objs_per_slab(struct slab_cache *c)
{
	void *first = slab_alloc(c);
	size_t n = 1;
	void **more = malloc(4096 * sizeof(*more));

	assert_non_null(more);
	while (cstats(c).slabs == 1) {
		more[n - 1] = slab_alloc(c);
		n++;
	}
	/* The last alloc opened a second slab. */
	for (size_t i = 0; i < n - 1; i++)
		slab_free(c, more[i]);
	slab_free(c, first);
	free(more);
	return n - 1;
}

/* Slab-level hysteresis. Frees land in the magazine first, so each step
 * flushes it to push the objects down to their slabs. */
static void test_empty_slab_hysteresis(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(16 * MiB);
	struct slab_cache *c = slab_cache_create(p, "hyst", 64, 64);
	size_t per = objs_per_slab(c);
	size_t slab_bytes = cstats(c).slab_bytes / cstats(c).slabs;

	assert_true(per >= 64);          /* small objects get roomy slabs */
	assert_true(slab_bytes <= 65536);
	slab_cache_destroy(c);
	c = slab_cache_create(p, "hyst", 64, 64);

	void **o = malloc(3 * per * sizeof(*o));

	assert_non_null(o);
	for (size_t i = 0; i < 3 * per; i++)
		o[i] = slab_alloc(c);
	assert_int_equal(cstats(c).slabs, 3);
	assert_int_equal(pool_pages(p), 3 * slab_bytes);

	/* A refill takes from one slab until it is used up, so objects are handed
	 * out slab by slab: o[2*per..] is the third slab. Emptying it keeps it as
	 * the spare. */
	for (size_t i = 2 * per; i < 3 * per; i++)
		slab_free(c, o[i]);
	slab_cache_flush(c);
	assert_int_equal(cstats(c).slabs, 3);
	assert_int_equal(pool_pages(p), 3 * slab_bytes);

	/* Churn at the boundary: no page traffic (magazine, then spare). */
	struct mem_pool_stats before, after;

	mem_pool_get_stats(p, &before);
	for (unsigned i = 0; i < 1000; i++) {
		void *x = slab_alloc(c);

		slab_free(c, x);
		if (i % 100 == 0)
			slab_cache_flush(c);
	}
	mem_pool_get_stats(p, &after);
	assert_int_equal(after.page_allocs, before.page_allocs);

	/* A second empty slab goes back to the pool. */
	for (size_t i = per; i < 2 * per; i++)
		slab_free(c, o[i]);
	slab_cache_flush(c);
	assert_int_equal(cstats(c).slabs, 2);
	assert_int_equal(pool_pages(p), 2 * slab_bytes);
	for (size_t i = 0; i < per; i++)
		slab_free(c, o[i]);
	slab_cache_flush(c);
	assert_int_equal(cstats(c).slabs, 1);
	assert_int_equal(pool_pages(p), slab_bytes);
	/* Trimming gives the spare back as well. */
	slab_cache_trim(c);
	assert_int_equal(cstats(c).slabs, 0);
	assert_int_equal(pool_pages(p), 0);
	assert_non_null(o[0] = slab_alloc(c));   /* and the cache still works */
	assert_int_equal(cstats(c).slabs, 1);
	slab_free(c, o[0]);
	free(o);
	slab_cache_destroy(c);
	assert_int_equal(pool_pages(p), 0);
	mem_pool_destroy(p);
}

static void test_exhaustion_and_recovery(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(2 * MiB);   /* one chunk */
	struct slab_cache *c = slab_cache_create(p, "big", 2048, 0);
	void **o = malloc(2048 * sizeof(*o));
	size_t n = 0;

	assert_non_null(o);
	while ((o[n] = slab_alloc(c)) != NULL) {
		memset(o[n], 0x5a, 2048);
		n++;
		assert_true(n < 2048);
	}
	assert_true(n > 800);   /* most of 2 MiB is usable */
	assert_int_equal(cstats(c).failed, 1);
	assert_null(slab_alloc(c));
	assert_int_equal(cstats(c).failed, 2);
	struct mem_pool_stats ps;

	mem_pool_get_stats(p, &ps);
	assert_int_equal(ps.failed_allocs, 2);
	assert_int_equal(ps.chunks, 1);

	slab_free(c, o[n / 2]);
	void *again = slab_alloc(c);

	assert_ptr_equal(again, o[n / 2]);
	assert_int_equal(cstats(c).in_use, n);
	while (n)
		slab_free(c, o[--n]);
	assert_int_equal(cstats(c).in_use, 0);
	slab_cache_flush(c);
	assert_int_equal(cstats(c).slabs, 1);
	free(o);
	slab_cache_destroy(c);
	mem_pool_destroy(p);
}

/* slab_free_checked() rejects every kind of bad pointer and changes nothing. */
static void test_bad_frees(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(8 * MiB);
	struct mem_pool *q = new_pool(8 * MiB);
	struct slab_cache *a = slab_cache_create(p, "a", 64, 0);
	struct slab_cache *b = slab_cache_create(p, "b", 64, 0);
	struct slab_cache *qa = slab_cache_create(q, "qa", 64, 0);
	uint8_t *x = slab_alloc(a), *y = slab_alloc(a), *z = slab_alloc(qa);
	uint8_t *pg = mem_pool_alloc_pages(p, 0);
	int local;

	assert_non_null(x);
	assert_non_null(y);
	assert_non_null(pg);
	/* The first refill took more objects than it handed out: the rest wait
	 * in the magazine, free, and must be rejected like any free object. */
	assert_int_equal(cstats(a).cached, cstats(a).mag_cap / 2 - 2);
	void *waiting = slab_alloc(a);

	assert_int_equal(slab_free_checked(a, waiting), 0);     /* in the magazine */
	assert_int_equal(slab_free_checked(b, x), -EINVAL);       /* wrong cache */
	assert_int_equal(slab_free_checked(a, z), -EINVAL);       /* other pool */
	assert_int_equal(slab_free_checked(a, x + 1), -EINVAL);   /* interior */
	assert_int_equal(slab_free_checked(a, x + 16), -EINVAL);
	assert_int_equal(slab_free_checked(a, waiting), -EINVAL); /* free, in the magazine */
	assert_int_equal(slab_free_checked(a, (void *)((uintptr_t)x & ~(uintptr_t)4095)),
			 -EINVAL);                                  /* slab header */
	assert_int_equal(slab_free_checked(a, pg), -EINVAL);      /* raw page block */
	assert_int_equal(slab_free_checked(a, &local), -EINVAL);  /* not pool memory */
	assert_int_equal(slab_free_checked(a, NULL), -EINVAL);
	assert_int_equal(cstats(a).in_use, 2);

	/* Never handed out and still in its slab: the first refill took objects
	 * 0 .. mag_cap / 2 - 1 in address order, x was the last of them. */
	uint8_t *top = x > y ? x : y;

	assert_int_equal(slab_free_checked(a, top + slab_obj_size(a)), -EINVAL);
	assert_int_equal(cstats(a).in_use, 2);

	assert_int_equal(slab_free_checked(a, x), 0);
	assert_int_equal(slab_free_checked(a, x), -EINVAL);       /* double free */
	slab_free(a, NULL);                                       /* no-op */
	assert_int_equal(cstats(a).in_use, 1);
	assert_int_equal(cstats(b).in_use, 0);

	/* The state is intact: y frees fine, and the next two allocs are distinct. */
	assert_int_equal(slab_free_checked(a, y), 0);
	assert_int_equal(slab_free_checked(a, y), -EINVAL);
	assert_int_equal(cstats(a).in_use, 0);
	/* Flushed back into its slab, a double free is still caught (the bitmap). */
	slab_cache_flush(a);
	assert_int_equal(cstats(a).cached, 0);
	assert_int_equal(slab_free_checked(a, y), -EINVAL);
	assert_int_equal(slab_free_checked(a, x), -EINVAL);
	void *u = slab_alloc(a), *v = slab_alloc(a);

	assert_ptr_not_equal(u, v);
	assert_int_equal(slab_free_checked(a, u), 0);
	assert_int_equal(slab_free_checked(a, v), 0);
	assert_int_equal(slab_free_checked(qa, z), 0);
	mem_pool_free_pages(p, pg);
	slab_cache_destroy(a);
	slab_cache_destroy(b);
	slab_cache_destroy(qa);
	mem_pool_destroy(q);
	mem_pool_destroy(p);
}

#ifdef LICH_DEBUG
/* Debug builds: every slab_free() gets slab_free_checked()'s checks; a bad one
 * is logged and ignored, whether the first free sits in the magazine or not. */
static void test_slab_free_bad_debug(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(8 * MiB);
	struct slab_cache *a = slab_cache_create(p, "a", 64, 0);
	struct slab_cache *b = slab_cache_create(p, "b", 64, 0);
	uint8_t *x = slab_alloc(a), *y = slab_alloc(a);
	int local;

	slab_free(a, x);
	size_t cached = cstats(a).cached;

	slab_free(a, x);                /* double free, first one in the magazine */
	slab_free(b, y);                /* wrong cache */
	slab_free(a, y + 8);            /* interior */
	slab_free(a, &local);           /* not pool memory */
	assert_int_equal(cstats(a).cached, cached);
	assert_int_equal(cstats(a).in_use, 1);
	assert_int_equal(cstats(b).cached, 0);
	slab_cache_flush(a);
	slab_free(a, x);                /* double free, first one back in its slab */
	assert_int_equal(cstats(a).cached, 0);
	assert_int_equal(cstats(a).in_use, 1);
	slab_free(a, y);
	assert_int_equal(cstats(a).in_use, 0);
	/* Nothing was handed out twice. */
	void *u = slab_alloc(a), *v = slab_alloc(a);

	assert_ptr_not_equal(u, v);
	slab_free(a, u);
	slab_free(a, v);
	slab_cache_destroy(a);
	slab_cache_destroy(b);
	mem_pool_destroy(p);
}
#else
/* Release builds: slab_free() trusts its caller (see slab.h), so a bad free
 * is not caught when it happens. What is promised is the safety net: when the
 * magazine is flushed, an object that is not a live object of the cache is
 * logged and dropped, the slabs stay consistent and the counters recover. */
static void test_slab_free_bad_release(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(8 * MiB);
	struct slab_cache *a = slab_cache_create(p, "a", 64, 0);
	struct slab_cache *b = slab_cache_create(p, "b", 64, 0);
	uint8_t *x = slab_alloc(a), *y = slab_alloc(a), *w = slab_alloc(b);

	assert_int_equal(cstats(a).in_use, 2);
	slab_free(a, x);
	slab_free(a, x);                /* double free: both copies go in */
	slab_free(a, w);                /* b's object into a */
	slab_free(a, y + 8);            /* interior pointer */
	size_t cached = cstats(a).cached;

	slab_cache_flush(a);            /* x back once; the other three dropped */
	assert_int_equal(cstats(a).cached, 0);
	assert_int_equal(cstats(a).in_use, 1);          /* y */
	assert_int_equal(cstats(b).in_use, 1);          /* w: leaked, not corrupted */
	assert_true(cached >= 4);
	assert_int_equal(slab_free_checked(a, x), -EINVAL);
	assert_int_equal(slab_free_checked(a, y), 0);
	assert_int_equal(slab_free_checked(b, w), 0);
	slab_cache_flush(a);
	slab_cache_flush(b);
	assert_int_equal(cstats(a).slabs, 1);
	assert_int_equal(cstats(b).slabs, 1);
	/* Every object of a is handed out once: fill a whole slab's worth and
	 * check no two are the same. */
	void *o[300];
	size_t n = 0;

	while (cstats(a).slabs == 1 && n < 300)
		o[n++] = slab_alloc(a);
	assert_true(n > 64);
	assert_disjoint(o, n, 64);
	while (n)
		slab_free(a, o[--n]);

	/* The same net for a double free that went on into the depot. */
	size_t k = 3 * cstats(a).mag_cap;
	void **d = malloc(k * sizeof(*d));

	assert_non_null(d);
	for (size_t i = 0; i < k; i++)
		d[i] = slab_alloc(a);
	slab_free(a, d[0]);
	slab_free(a, d[0]);
	for (size_t i = 1; i < k; i++)
		slab_free(a, d[i]);
	assert_true(cstats(a).depot >= 1);
	slab_cache_flush(a);
	assert_int_equal(cstats(a).cached, 0);
	assert_int_equal(cstats(a).depot, 0);
	assert_int_equal(cstats(a).in_use, 0);
	assert_int_equal(slab_free_checked(a, d[0]), -EINVAL);
	for (size_t i = 0; i < k; i++)
		d[i] = slab_alloc(a);
	assert_disjoint(d, k, 64);
	for (size_t i = 0; i < k; i++)
		assert_int_equal(slab_free_checked(a, d[i]), 0);
	free(d);
	slab_cache_destroy(a);
	slab_cache_destroy(b);
	mem_pool_destroy(p);
}
#endif

/* Interior-pointer checks for sizes that are not powers of two exercise the
 * reciprocal used instead of a division. */
static void test_odd_sizes(void **state)
{
	(void)state;
	static const size_t odd[] = { 24, 40, 72, 200, 1000, 3000, 12345, 40000, 200000 };
	struct mem_pool *p = new_pool(64 * MiB);

	for (unsigned k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
		struct slab_cache *c = slab_cache_create(p, "odd", odd[k], 8);
		size_t sz = slab_obj_size(c);
		void *o[64];

		assert_non_null(c);
		assert_true(sz >= odd[k] && sz % 8 == 0);
		for (unsigned i = 0; i < 64; i++) {
			o[i] = slab_alloc(c);
			assert_non_null(o[i]);
			memset(o[i], 0xab, sz);
		}
		assert_disjoint(o, 64, sz);
		for (unsigned i = 0; i < 64; i++) {
			assert_int_equal(slab_free_checked(c, (uint8_t *)o[i] + 8), -EINVAL);
			assert_int_equal(slab_free_checked(c, (uint8_t *)o[i] + sz - 8), -EINVAL);
			assert_int_equal(mem_usable_size(p, o[i]), sz);
			assert_int_equal(slab_free_checked(c, o[i]), 0);
		}
		slab_cache_destroy(c);
	}
	assert_int_equal(pool_pages(p), 0);
	mem_pool_destroy(p);
}

static void test_alignment_and_limits(void **state)
{
	(void)state;
	static const size_t aligns[] = { 8, 16, 64, 256, 4096 };
	struct mem_pool *p = new_pool(32 * MiB);

	for (unsigned k = 0; k < sizeof(aligns) / sizeof(aligns[0]); k++) {
		struct slab_cache *c = slab_cache_create(p, "al", 100, aligns[k]);
		void *o[20];

		assert_non_null(c);
		assert_int_equal(slab_obj_size(c) % aligns[k], 0);
		for (unsigned i = 0; i < 20; i++) {
			o[i] = slab_alloc(c);
			assert_non_null(o[i]);
			assert_int_equal((uintptr_t)o[i] % aligns[k], 0);
		}
		for (unsigned i = 0; i < 20; i++)
			slab_free(c, o[i]);
		slab_cache_destroy(c);
	}
	struct slab_cache *tiny = slab_cache_create(p, "tiny", 1, 1);

	assert_non_null(tiny);
	assert_int_equal(slab_obj_size(tiny), SLAB_MIN_OBJ);
	slab_cache_destroy(tiny);
	assert_null(slab_cache_create(p, "bad", 64, 3));            /* not a power of 2 */
	assert_null(slab_cache_create(p, "bad", 64, 8192));         /* above a page */
	assert_null(slab_cache_create(p, "bad", 0, 0));
	assert_null(slab_cache_create(p, "bad", 300 * 1024, 0));   /* < 8 per 2 MiB */
	assert_null(slab_cache_create(NULL, "bad", 64, 0));
	mem_pool_destroy(p);
}

static void test_mem_free_finds_cache(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(8 * MiB);
	struct slab_cache *c = slab_cache_create(p, "task", 320, 64);
	void *o[100];

	for (unsigned i = 0; i < 100; i++) {
		o[i] = slab_alloc(c);
		assert_non_null(o[i]);
		assert_int_equal(mem_usable_size(p, o[i]), 320);
	}
	for (unsigned i = 0; i < 100; i += 2)
		mem_free(p, o[i]);
	assert_int_equal(cstats(c).in_use, 50);
	mem_free(p, o[0]);                          /* double free via mem_free: ignored */
	assert_int_equal(cstats(c).in_use, 50);
	for (unsigned i = 1; i < 100; i += 2)
		mem_free(p, o[i]);
	assert_int_equal(cstats(c).in_use, 0);

	/* mem_alloc small objects come from the size-class caches. */
	void *s = mem_alloc(p, 100);
	struct slab_cache *cls = NULL;

	for (struct slab_cache *it = slab_cache_next(p, NULL); it; it = slab_cache_next(p, it))
		if (strcmp(cstats(it).name, "size-128") == 0)
			cls = it;
	assert_non_null(cls);
	assert_int_equal(cstats(cls).in_use, 1);
	assert_int_equal(slab_free_checked(c, s), -EINVAL);   /* not this cache's */
	mem_free(p, s);
	assert_int_equal(cstats(cls).in_use, 0);
	slab_cache_destroy(c);
	mem_pool_destroy(p);
}

/* ---------- the magazine ---------- */

/* The loaded magazine: refills of half a magazine from the slabs when neither
 * the previous magazine nor the depot has a full one; frees beyond it go to the
 * previous magazine and the depot by swapping whole magazines, never through a
 * slab; LIFO across all of them. */
static void test_magazine_boundaries(void **state)
{
	(void)state;
	enum { N = 300 };
	struct mem_pool *p = new_pool(16 * MiB);
	struct slab_cache *c = slab_cache_create(p, "mag", 64, 0);
	void *o[N];
	struct slab_stats s = cstats(c);
	size_t cap = s.mag_cap, half = cap / 2;

	assert_int_equal(cap, SLAB_MAG_MAX);    /* 64 B: the full size */
	assert_int_equal(s.cached_max, (2 + SLAB_DEPOT_MAX) * cap);
	assert_int_equal(s.cached, 0);
	assert_int_equal(s.depot, 0);
	assert_int_equal(s.slabs, 0);           /* nothing taken before the first alloc */

	/* First alloc: refill of half, one handed out. */
	o[0] = slab_alloc(c);
	s = cstats(c);
	assert_int_equal(s.cached, half - 1);
	assert_int_equal(s.in_use, 1);
	assert_int_equal(s.slabs, 1);
	/* The rest of that half comes without another refill... */
	for (size_t i = 1; i < half; i++)
		o[i] = slab_alloc(c);
	assert_int_equal(cstats(c).cached, 0);
	/* ...and the next alloc refills again. */
	o[half] = slab_alloc(c);
	assert_int_equal(cstats(c).cached, half - 1);
	size_t n = half + 1;

	while (n < N)
		o[n++] = slab_alloc(c);
	assert_disjoint(o, N, 64);
	s = cstats(c);
	assert_int_equal(s.in_use, N);
	assert_int_equal(s.allocs, N);
	assert_int_equal(s.high_water, N);
	size_t slabs = s.slabs, cached0 = s.cached;

	/* Frees fill the loaded magazine up to cap... */
	for (size_t i = 0; i < cap - cached0; i++)
		slab_free(c, o[--n]);
	assert_int_equal(cstats(c).cached, cap);
	assert_int_equal(cstats(c).depot, 0);
	/* ...the next free swaps it with the empty previous magazine... */
	slab_free(c, o[--n]);
	s = cstats(c);
	assert_int_equal(s.cached, cap + 1);
	assert_int_equal(s.depot, 0);
	assert_int_equal(s.in_use, n);
	/* ...and at the boundary alloc/free swap back and forth, touching no
	 * slab (the previous magazine is full, then empty, then full). */
	for (unsigned k = 0; k < 5; k++) {
		void *x = slab_alloc(c), *y = slab_alloc(c);

		assert_ptr_equal(x, o[n]);       /* LIFO across the swap */
		assert_ptr_equal(y, o[n + 1]);
		assert_int_equal(cstats(c).cached, cap - 1);
		slab_free(c, y);
		slab_free(c, x);
		assert_int_equal(cstats(c).cached, cap + 1);
		assert_int_equal(cstats(c).depot, 0);
	}
	/* Loaded and previous full: the next free pushes previous to the depot. */
	for (size_t i = 0; i < cap - 1; i++)
		slab_free(c, o[--n]);
	assert_int_equal(cstats(c).cached, 2 * cap);
	assert_int_equal(cstats(c).depot, 0);
	slab_free(c, o[--n]);
	s = cstats(c);
	assert_int_equal(s.cached, 2 * cap + 1);
	assert_int_equal(s.depot, 1);
	/* Everything freed: all of it in magazines, not one object flushed. */
	while (n)
		slab_free(c, o[--n]);
	s = cstats(c);
	assert_int_equal(s.in_use, 0);
	assert_int_equal(s.cached, cached0 + N);
	/* the loaded magazine is pushed only by the free after it fills */
	assert_int_equal(s.depot, (cached0 + N + cap - 1) / cap - 2);
	assert_int_equal(s.slabs, slabs);
	/* Double frees are caught wherever they sit: loaded, previous or depot,
	 * and change nothing. */
	for (size_t i = 0; i < N; i++)
		assert_int_equal(slab_free_checked(c, o[i]), -EINVAL);
	assert_int_equal(cstats(c).cached, cached0 + N);
	/* LIFO over every magazine: the objects come back in reverse free order,
	 * popped from the depot without a refill. */
	for (size_t i = 0; i < N; i++)
		assert_ptr_equal(slab_alloc(c), o[i]);
	s = cstats(c);
	assert_int_equal(s.cached, cached0);
	assert_int_equal(s.depot, 0);
	assert_int_equal(s.in_use, N);
	assert_int_equal(s.high_water, N);   /* reuse is not a new peak */
	assert_int_equal(s.allocs, N + N + 10);
	assert_int_equal(s.slabs, slabs);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(slab_free_checked(c, o[i]), 0);
	assert_int_equal(cstats(c).in_use, 0);
	assert_int_equal(cstats(c).failed, 0);
	slab_cache_destroy(c);
	assert_int_equal(pool_pages(p), 0);
	mem_pool_destroy(p);
}

/* The depot is bounded: with it full, frees flush half the loaded magazine
 * to the slabs; allocs empty the depot before refilling from the slabs; flush
 * and trim give everything back. */
static void test_depot_bounds(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(32 * MiB);
	struct slab_cache *c = slab_cache_create(p, "depot", 64, 0);
	struct slab_stats s = cstats(c);
	size_t cap = s.mag_cap, max = s.cached_max, m = max + 3 * cap;
	void **o = malloc(m * sizeof(*o));

	assert_non_null(o);
	for (size_t i = 0; i < m; i++)
		assert_non_null(o[i] = slab_alloc(c));
	assert_disjoint(o, m, 64);
	shuffle(o, m);
	size_t cached0 = cstats(c).cached;

	for (size_t i = 0; i < m; i++) {
		slab_free(c, o[i]);
		s = cstats(c);
		assert_true(s.cached <= max);
		assert_true(s.depot <= SLAB_DEPOT_MAX);
		assert_int_equal(s.in_use, m - i - 1);
		if (cached0 + i + 1 <= max)            /* room left: nothing flushed */
			assert_int_equal(s.cached, cached0 + i + 1);
	}
	s = cstats(c);
	assert_int_equal(s.depot, SLAB_DEPOT_MAX);
	/* Full depot: each flush returns half a magazine, so the loaded one holds
	 * more than half. */
	assert_true(s.cached > max - cap / 2 && s.cached <= max);
	/* Double frees of objects deep in the depot and of flushed ones: caught. */
	for (size_t i = 0; i < m; i += 7)
		assert_int_equal(slab_free_checked(c, o[i]), -EINVAL);
	assert_int_equal(cstats(c).cached, s.cached);

	/* Allocs drain the magazines first: no new slab, no refill... */
	size_t cached = s.cached, slabs = s.slabs;

	for (size_t i = 0; i < cached; i++)
		assert_non_null(o[i] = slab_alloc(c));
	s = cstats(c);
	assert_int_equal(s.cached, 0);
	assert_int_equal(s.depot, 0);
	assert_int_equal(s.slabs, slabs);
	/* ...then refill half a magazine from the slabs. */
	assert_non_null(o[cached] = slab_alloc(c));
	assert_int_equal(cstats(c).cached, cap / 2 - 1);
	assert_disjoint(o, cached + 1, 64);
	for (size_t i = 0; i <= cached; i++)
		slab_free(c, o[i]);
	assert_int_equal(cstats(c).in_use, 0);
	assert_true(cstats(c).depot > 0);

	/* Flush: every magazine back to the slabs, all but a spare slab freed. */
	slab_cache_flush(c);
	s = cstats(c);
	assert_int_equal(s.cached, 0);
	assert_int_equal(s.depot, 0);
	assert_int_equal(s.slabs, 1);
	assert_int_equal(pool_pages(p), s.slab_bytes);
	/* The magazines work as before after a flush. */
	void *x = slab_alloc(c);

	assert_non_null(x);
	assert_int_equal(slab_free_checked(c, x), 0);
	assert_int_equal(slab_free_checked(c, x), -EINVAL);
	/* Trim (mem_pool_trim()): not even the spare stays. */
	mem_pool_trim(p);
	s = cstats(c);
	assert_int_equal(s.cached, 0);
	assert_int_equal(s.slabs, 0);
	assert_int_equal(pool_pages(p), 0);
	assert_int_equal(s.failed, 0);
	free(o);
	slab_cache_destroy(c);
	mem_pool_destroy(p);
}

/* What the magazines of a cache may hold is bounded by bytes: 256 KiB, or
 * the loaded and previous magazines if those alone are more. */
static void test_magazine_limits(void **state)
{
	(void)state;
	static const size_t sizes[] = { 16, 64, 200, 512, 1024, 2048, 8192, 100000 };
	struct mem_pool *p = new_pool(16 * MiB);

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct slab_cache *c = slab_cache_create(p, "lim", sizes[k], 0);
		struct slab_stats s;

		assert_non_null(c);
		s = cstats(c);
		assert_true(s.mag_cap >= 4 && s.mag_cap <= SLAB_MAG_MAX && s.mag_cap % 2 == 0);
		assert_int_equal(s.cached_max % s.mag_cap, 0);
		size_t mags = s.cached_max / s.mag_cap;

		assert_true(mags >= 2 && mags <= 2 + SLAB_DEPOT_MAX);
		assert_true(mags == 2 || s.cached_max * s.obj_size <= 256 * 1024);
		if (s.obj_size <= 64)
			assert_int_equal(mags, 2 + SLAB_DEPOT_MAX);
		if (s.obj_size == 512)
			assert_int_equal(mags, 8);
		if (s.obj_size >= 2048)
			assert_int_equal(mags, 2);
		/* Filling past the bound keeps it. */
		size_t m = s.cached_max + 2 * s.mag_cap;
		void **o = malloc(m * sizeof(*o));

		assert_non_null(o);
		for (size_t i = 0; i < m; i++)
			assert_non_null(o[i] = slab_alloc(c));
		for (size_t i = 0; i < m; i++)
			slab_free(c, o[i]);
		s = cstats(c);
		assert_true(s.cached <= s.cached_max);
		assert_true(s.cached * s.obj_size <= 256 * 1024 || s.cached <= 2 * s.mag_cap);
		assert_int_equal(s.in_use, 0);
		free(o);
		slab_cache_destroy(c);
	}
	assert_int_equal(pool_pages(p), 0);
	mem_pool_destroy(p);
}

/* Objects in the magazine are free to the statistics but still hold their
 * slab's pages; the dump shows them. */
static void test_magazine_stats(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(16 * MiB);
	struct slab_cache *c = slab_cache_create(p, "st", 200, 8);
	void *o[10];
	char buf[1024];

	for (unsigned i = 0; i < 10; i++)
		o[i] = slab_alloc(c);
	for (unsigned i = 0; i < 4; i++)
		slab_free(c, o[i]);
	struct slab_stats s = cstats(c);

	assert_int_equal(s.in_use, 6);
	assert_int_equal(s.bytes_in_use, 6 * 200);
	assert_int_equal(s.high_water, 10);
	assert_int_equal(s.allocs, 10);
	assert_int_equal(s.cached, s.mag_cap / 2 - 10 + 4);
	assert_int_equal(s.slabs, 1);
	size_t pages = pool_pages(p);

	assert_int_equal(pages, s.slab_bytes);
	mem_pool_dump_stats(p, buf, sizeof(buf));
	char want[64];

	snprintf(want, sizeof(want), "6 in use (1200 B), high water 10, %zu cached", s.cached);
	assert_non_null(strstr(buf, want));

	/* All free: in_use 0 while the slab stays, until a trim. */
	for (unsigned i = 4; i < 10; i++)
		slab_free(c, o[i]);
	s = cstats(c);
	assert_int_equal(s.in_use, 0);
	assert_int_equal(s.bytes_in_use, 0);
	assert_int_equal(s.slabs, 1);
	assert_int_equal(pool_pages(p), pages);
	slab_cache_trim(c);
	s = cstats(c);
	assert_int_equal(s.cached, 0);
	assert_int_equal(s.slabs, 0);
	assert_int_equal(pool_pages(p), 0);
	assert_int_equal(s.high_water, 10);
	assert_int_equal(s.allocs, 10);
	slab_cache_destroy(c);
	mem_pool_destroy(p);
}

/* mem_pool_trim() flushes every cache's magazine, gives back empty slabs
 * (spares too) and then the chunks that became free. */
static void test_trim_flushes_magazines(void **state)
{
	(void)state;
	enum { N = 9000 };
	struct mem_pool *p = new_pool(64 * MiB);
	struct slab_cache *a = slab_cache_create(p, "a", 512, 0);
	struct slab_cache *b = slab_cache_create(p, "b", 64, 0);
	void **oa = malloc(N * sizeof(*oa)), **ob = malloc(N * sizeof(*ob));
	struct mem_pool_stats ps;

	assert_non_null(oa);
	assert_non_null(ob);
	for (size_t i = 0; i < N; i++) {
		oa[i] = slab_alloc(a);
		ob[i] = slab_alloc(b);
		assert_non_null(oa[i]);
		assert_non_null(ob[i]);
	}
	mem_pool_get_stats(p, &ps);
	size_t chunks = ps.chunks;

	assert_true(chunks >= 3);               /* 4.5 MiB of 512 B objects and more */
	shuffle(oa, N);
	shuffle(ob, N);
	void *keep = oa[0];                     /* one object of a stays in use */

	for (size_t i = 0; i < N; i++) {
		if (i > 0)
			slab_free(a, oa[i]);
		slab_free(b, ob[i]);
	}
	assert_true(cstats(a).cached > 0);
	assert_true(cstats(b).cached > 0);
	assert_int_equal(cstats(a).in_use, 1);
	assert_int_equal(cstats(b).in_use, 0);

	size_t freed = mem_pool_trim(p);

	assert_int_equal(cstats(a).cached, 0);
	assert_int_equal(cstats(b).cached, 0);
	assert_int_equal(cstats(a).slabs, 1);   /* the one holding keep */
	assert_int_equal(cstats(b).slabs, 0);
	mem_pool_get_stats(p, &ps);
	assert_int_equal(ps.page_bytes_in_use, cstats(a).slab_bytes);
	assert_int_equal(ps.page_cached_bytes, 0);
	assert_true(ps.chunks <= 2);            /* keep's chunk and one spare */
	assert_int_equal(freed, (chunks - ps.chunks) * BUDDY_CHUNK_SIZE);
	assert_int_equal(slab_free_checked(a, keep), 0);
	mem_pool_trim(p);
	mem_pool_get_stats(p, &ps);
	assert_int_equal(ps.page_bytes_in_use, 0);
	assert_int_equal(ps.chunks, 1);
	/* Both caches still work after being trimmed to nothing. */
	void *x = slab_alloc(a), *y = slab_alloc(b);

	assert_non_null(x);
	assert_non_null(y);
	slab_free(a, x);
	slab_free(b, y);
	free(oa);
	free(ob);
	slab_cache_destroy(a);
	slab_cache_destroy(b);
	mem_pool_destroy(p);
}

static void test_cache_list(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(8 * MiB);
	struct slab_cache *a = slab_cache_create(p, "a", 32, 0);
	struct slab_cache *b = slab_cache_create(p, "b", 32, 0);
	unsigned n = 0;
	bool seen_a = false, seen_b = false;

	for (struct slab_cache *it = slab_cache_next(p, NULL); it; it = slab_cache_next(p, it)) {
		seen_a |= it == a;
		seen_b |= it == b;
		n++;
	}
	assert_int_equal(n, 2);
	assert_true(seen_a && seen_b);
	slab_cache_destroy(a);
	assert_ptr_equal(slab_cache_next(p, NULL), b);
	assert_null(slab_cache_next(p, b));

	/* A cache outliving its pool is orphaned: safe to use and destroy. */
	void *o = slab_alloc(b);

	assert_non_null(o);
	mem_pool_destroy(p);
	assert_null(slab_alloc(b));
	assert_int_equal(slab_free_checked(b, o), -EINVAL);
	slab_cache_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_objects),
		cmocka_unit_test(test_order_independence),
		cmocka_unit_test(test_empty_slab_hysteresis),
		cmocka_unit_test(test_exhaustion_and_recovery),
		cmocka_unit_test(test_bad_frees),
#ifdef LICH_DEBUG
		cmocka_unit_test(test_slab_free_bad_debug),
#else
		cmocka_unit_test(test_slab_free_bad_release),
#endif
		cmocka_unit_test(test_odd_sizes),
		cmocka_unit_test(test_alignment_and_limits),
		cmocka_unit_test(test_mem_free_finds_cache),
		cmocka_unit_test(test_cache_list),
		cmocka_unit_test(test_magazine_boundaries),
		cmocka_unit_test(test_depot_bounds),
		cmocka_unit_test(test_magazine_limits),
		cmocka_unit_test(test_magazine_stats),
		cmocka_unit_test(test_trim_flushes_magazines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
