/* test_pool.c — memory pool: growth and limit, mem_alloc size classes,
 * addr -> chunk lookups, registration hooks, hugepages or their fallback, the
 * page magazine in front of the buddies. */
#include <errno.h>
#include <numa.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mem/buddy.h"
#include "mem/pool.h"
#include "mem/slab.h"

#define MiB ((size_t)1 << 20)
#define CHUNK ((size_t)BUDDY_CHUNK_SIZE)

static struct mem_pool *new_pool(size_t limit, size_t prealloc)
{
	struct mem_pool_opts o = {
		.name = "test", .limit = limit, .prealloc = prealloc,
		.numa_node = -1, .no_hugepages = true,
	};
	struct mem_pool *p = mem_pool_create(&o);

	assert_non_null(p);
	return p;
}

static struct mem_pool_stats stats(const struct mem_pool *p)
{
	struct mem_pool_stats s;

	mem_pool_get_stats(p, &s);
	return s;
}

static void fill(void *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)p)[i] = (uint8_t)(seed * 31 + i);
}

static bool filled(const void *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (((const uint8_t *)p)[i] != (uint8_t)(seed * 31 + i))
			return false;
	return true;
}

static void test_create_limits(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(3 * MiB, 0);

	assert_int_equal(stats(p).limit, 2 * MiB);    /* rounded down */
	assert_int_equal(stats(p).chunks, 0);
	assert_string_equal(mem_pool_name(p), "test");
	mem_pool_destroy(p);

	p = new_pool(0, 0);
	assert_int_equal(stats(p).limit, 2 * MiB);    /* minimum one chunk */
	mem_pool_destroy(p);

	p = new_pool(16 * MiB, 5 * MiB);              /* prealloc rounds up */
	assert_int_equal(stats(p).chunks, 3);
	assert_int_equal(stats(p).mapped_bytes, 6 * MiB);
	mem_pool_destroy(p);

	p = new_pool(4 * MiB, 64 * MiB);              /* prealloc capped by limit */
	assert_int_equal(stats(p).chunks, 2);
	mem_pool_destroy(p);
	mem_pool_destroy(NULL);
}

static void test_growth_and_limit(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(8 * MiB, 0);
	void *big[4];

	for (unsigned i = 0; i < 4; i++) {
		big[i] = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER);
		assert_non_null(big[i]);
		assert_int_equal((uintptr_t)big[i] % CHUNK, 0);
		fill(big[i], CHUNK, i);
		assert_int_equal(stats(p).chunks, i + 1);
	}
	for (unsigned i = 0; i < 4; i++)
		assert_true(filled(big[i], CHUNK, i));
	assert_int_equal(stats(p).mapped_bytes, 8 * MiB);
	assert_int_equal(stats(p).page_bytes_in_use, 8 * MiB);

	/* At the limit: refused and counted, never aborts. */
	assert_null(mem_pool_alloc_pages(p, BUDDY_MAX_ORDER));
	assert_null(mem_pool_alloc_pages(p, 0));
	assert_null(mem_alloc(p, 100));
	assert_int_equal(stats(p).failed_allocs, 3);
	assert_int_equal(stats(p).chunks, 4);

	/* A free makes room again. */
	mem_pool_free_pages(p, big[2]);
	void *pg = mem_pool_alloc_pages(p, 0);

	assert_non_null(pg);
	assert_true((uint8_t *)pg >= (uint8_t *)big[2] &&
		    (uint8_t *)pg < (uint8_t *)big[2] + CHUNK);
	assert_non_null(mem_pool_alloc_pages(p, 3));
	assert_int_equal(stats(p).failed_allocs, 3);
	assert_int_equal(stats(p).page_allocs, 6);
	assert_int_equal(stats(p).page_high_water, 8 * MiB);
	mem_pool_destroy(p);
}

static void test_small_pages_fill_chunks(void **state)
{
	(void)state;
	size_t n = 3 * BUDDY_PAGES;
	struct mem_pool *p = new_pool(6 * MiB, 0);
	void **pg = calloc(n, sizeof(*pg));

	assert_non_null(pg);
	for (size_t i = 0; i < n; i++) {
		pg[i] = mem_pool_alloc_pages(p, 0);
		assert_non_null(pg[i]);
		*(uint32_t *)pg[i] = (uint32_t)i;
	}
	assert_int_equal(stats(p).chunks, 3);
	assert_null(mem_pool_alloc_pages(p, 0));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(*(uint32_t *)pg[i], i);
	/* Free everything: chunks stay mapped until trimmed; one spare stays. */
	for (size_t i = 0; i < n; i++)
		mem_pool_free_pages(p, pg[i]);
	assert_int_equal(stats(p).page_bytes_in_use, 0);
	assert_int_equal(stats(p).chunks, 3);
	assert_int_equal(mem_pool_check(p), 0);
	assert_int_equal(mem_pool_trim(p), 2 * CHUNK);
	assert_int_equal(stats(p).page_cached_bytes, 0);
	assert_int_equal(stats(p).chunks, 1);
	assert_int_equal(mem_pool_trim(p), 0);
	assert_non_null(mem_pool_alloc_pages(p, BUDDY_MAX_ORDER));
	free(pg);
	mem_pool_destroy(p);
}

static void test_prealloc_kept(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(16 * MiB, 4 * MiB);
	void *a = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER);
	void *b = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER);
	void *c = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER);

	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_int_equal(stats(p).chunks, 3);
	mem_pool_free_pages(p, a);
	mem_pool_free_pages(p, b);
	mem_pool_free_pages(p, c);
	/* Trim never shrinks below the preallocation. */
	assert_int_equal(mem_pool_trim(p), CHUNK);
	assert_int_equal(stats(p).chunks, 2);
	mem_pool_destroy(p);
}

static const size_t sizes[] = {
	1, 2, 15, 16, 17, 63, 64, 65, 100, 128, 129, 255, 256, 257, 511, 512, 513,
	1000, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097, 8192, 10000, 65536,
	65537, 300000, 1048576, 1048577, 2097152,
};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static size_t expected_usable(size_t n)
{
	size_t u = 64;

	while (u < n)
		u *= 2;
	return u < 4096 ? u : (size_t)BUDDY_PAGE_SIZE << buddy_order_for(n);
}

static void test_mem_alloc_sizes(void **state)
{
	(void)state;
	enum { REPS = 5 };
	struct mem_pool *p = new_pool(64 * MiB, 0);
	void *a[NSIZES][REPS];

	for (unsigned r = 0; r < REPS; r++) {
		for (unsigned i = 0; i < NSIZES; i++) {
			a[i][r] = mem_alloc(p, sizes[i]);
			assert_non_null(a[i][r]);
			assert_true(mem_pool_owns(p, a[i][r]));
			assert_int_equal(mem_usable_size(p, a[i][r]), expected_usable(sizes[i]));
			assert_int_equal((uintptr_t)a[i][r] % 64, 0);
			fill(a[i][r], sizes[i], i * REPS + r);
		}
	}
	for (unsigned r = 0; r < REPS; r++)
		for (unsigned i = 0; i < NSIZES; i++)
			assert_true(filled(a[i][r], sizes[i], i * REPS + r));
	/* Free in a different order from allocation. */
	for (unsigned i = 0; i < NSIZES; i++)
		for (unsigned r = 0; r < REPS; r++)
			mem_free(p, a[NSIZES - 1 - i][r]);

	assert_null(mem_alloc(p, 2 * MiB + 1));
	assert_null(mem_alloc(p, SIZE_MAX));
	void *z = mem_zalloc(p, 3000);

	assert_non_null(z);
	for (unsigned i = 0; i < 3000; i++)
		assert_int_equal(((uint8_t *)z)[i], 0);
	mem_free(p, z);
	mem_free(p, NULL);

	/* Only the spare empty slab of each size class remains. */
	size_t slab_bytes = 0;

	for (struct slab_cache *c = slab_cache_next(p, NULL); c; c = slab_cache_next(p, c)) {
		struct slab_stats cs;

		slab_get_stats(c, &cs);
		assert_int_equal(cs.in_use, 0);
		assert_true(cs.slabs <= 1);
		slab_bytes += cs.slab_bytes;
	}
	assert_int_equal(stats(p).page_bytes_in_use, slab_bytes);
	mem_pool_destroy(p);
}

static void test_usable_size_and_owns(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(8 * MiB, 0);
	struct mem_pool *q = new_pool(8 * MiB, 0);
	int local;
	void *heap = malloc(16);
	uint8_t *big = mem_alloc(p, 5000);
	void *small = mem_alloc(p, 1);
	void *other = mem_alloc(q, 1);

	assert_int_equal(mem_usable_size(p, small), 64);
	assert_int_equal(mem_usable_size(p, big), 8192);
	assert_int_equal(mem_usable_size(p, big + 4096), 0);   /* not a block start */
	assert_int_equal(mem_usable_size(p, NULL), 0);
	assert_int_equal(mem_usable_size(p, &local), 0);
	assert_true(mem_pool_owns(p, big));
	assert_true(mem_pool_owns(p, big + 8191));
	assert_true(mem_pool_owns(p, small));
	assert_false(mem_pool_owns(p, other));
	assert_false(mem_pool_owns(p, &local));
	assert_false(mem_pool_owns(p, heap));
	assert_false(mem_pool_owns(p, NULL));

	/* Bad frees are logged and ignored: nothing changes. */
	struct mem_pool_stats before = stats(p);

	mem_free(p, &local);
	mem_free(p, heap);
	mem_free(p, other);
	mem_free(p, big + 4096);
	mem_pool_free_pages(p, small);          /* slab memory via the page API */
	mem_pool_free_pages(p, &local);
	struct mem_pool_stats after = stats(p);

	assert_memory_equal(&before, &after, sizeof(before));
	mem_free(p, big);
	mem_free(p, big);                       /* double free: ignored */
	assert_int_equal(stats(p).page_bytes_in_use, before.page_bytes_in_use - 8192);

	free(heap);
	mem_pool_destroy(q);
	mem_pool_destroy(p);
}

/* ---------- registration hook ---------- */

#define MAX_REG 256

struct reg_ctx {
	unsigned regs, unregs, fail_after;   /* fail_after: refuse once regs reaches it */
	void *addr[MAX_REG];
	bool live[MAX_REG];
};

static int fake_reg(void *ctx, void *addr, size_t len, void **handle)
{
	struct reg_ctx *r = ctx;

	if (len != CHUNK || (uintptr_t)addr % CHUNK || r->regs >= MAX_REG)
		return -EINVAL;
	if (r->regs >= r->fail_after)
		return -ENOMEM;
	r->addr[r->regs] = addr;
	r->live[r->regs] = true;
	/* Handle 1-based so NULL never means "registered". */
	*handle = (void *)(uintptr_t)(++r->regs);
	return 0;
}

static void fake_unreg(void *ctx, void *handle)
{
	struct reg_ctx *r = ctx;
	uintptr_t i = (uintptr_t)handle - 1;

	assert_true(i < r->regs);
	assert_true(r->live[i]);               /* unregistered once only */
	r->live[i] = false;
	r->unregs++;
}

/* Handle of blk's chunk from reg_ctx rc: the address it registered. */
static void assert_handle_of(struct mem_pool *p, unsigned id, const struct reg_ctx *rc,
			     uint8_t *blk)
{
	void *h = mem_pool_reg_handle_id(p, id, blk + 12345);
	uintptr_t k = (uintptr_t)h - 1;

	assert_non_null(h);
	assert_true(k < rc->regs);
	assert_true(rc->live[k]);
	assert_ptr_equal(rc->addr[k], blk);     /* the handle of that chunk */
	assert_ptr_equal(mem_pool_reg_handle_id(p, id, blk), h);
}

static void test_reg_hook(void **state)
{
	(void)state;
	struct reg_ctx rc = { .fail_after = MAX_REG };
	struct mem_reg_ops ops = { fake_reg, fake_unreg, &rc };
	struct mem_pool *p = new_pool(16 * MiB, 4 * MiB);
	uint8_t *blk[6];
	unsigned id = 99;

	assert_int_equal(mem_pool_add_reg(p, &ops, &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(rc.regs, 2);          /* the preallocated chunks, now */
	assert_int_equal(mem_pool_add_reg(p, NULL, &id), -EINVAL);
	assert_int_equal(mem_pool_add_reg(p, &ops, NULL), -EINVAL);
	struct mem_reg_ops half = { fake_reg, NULL, &rc };

	assert_int_equal(mem_pool_add_reg(p, &half, &id), -EINVAL);
	assert_int_equal(rc.regs, 2);
	for (unsigned i = 0; i < 6; i++) {
		blk[i] = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER);
		assert_non_null(blk[i]);
	}
	assert_int_equal(rc.regs, 6);          /* once per chunk */
	assert_int_equal(stats(p).chunks, 6);
	for (unsigned i = 0; i < 6; i++)
		assert_handle_of(p, 0, &rc, blk[i]);
	int local;

	assert_null(mem_pool_reg_handle_id(p, 0, &local));
	assert_null(mem_pool_reg_handle_id(p, 1, blk[0]));          /* no such hook */
	assert_null(mem_pool_reg_handle_id(p, MEM_POOL_MAX_REGS, blk[0]));
	mem_pool_destroy(p);
	assert_int_equal(rc.unregs, 6);
}

/* Several hooks at once: ids, every chunk with every hook, chunks mapped
 * later with all of them, del_reg of one leaving the others, trim and destroy
 * unregistering from each. */
static void test_reg_several(void **state)
{
	(void)state;
	struct reg_ctx rc[MEM_POOL_MAX_REGS + 1];
	struct mem_reg_ops ops[MEM_POOL_MAX_REGS + 1];
	unsigned id[MEM_POOL_MAX_REGS + 1];
	struct mem_pool *p = new_pool(16 * MiB, 2 * MiB);
	uint8_t *blk[4];

	for (unsigned k = 0; k <= MEM_POOL_MAX_REGS; k++) {
		rc[k] = (struct reg_ctx){ .fail_after = MAX_REG };
		ops[k] = (struct mem_reg_ops){ fake_reg, fake_unreg, &rc[k] };
	}
	blk[0] = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER);     /* the preallocated chunk */
	for (unsigned k = 0; k < MEM_POOL_MAX_REGS; k++) {
		assert_int_equal(mem_pool_add_reg(p, &ops[k], &id[k]), 0);
		assert_int_equal(id[k], k);
		assert_int_equal(rc[k].regs, 1);
	}
	assert_int_equal(mem_pool_add_reg(p, &ops[MEM_POOL_MAX_REGS], &id[MEM_POOL_MAX_REGS]),
			 -EBUSY);
	assert_int_equal(rc[MEM_POOL_MAX_REGS].regs, 0);
	for (unsigned i = 1; i < 4; i++)
		blk[i] = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER);
	for (unsigned k = 0; k < MEM_POOL_MAX_REGS; k++) {
		assert_int_equal(rc[k].regs, 4);                 /* new chunks: every hook */
		for (unsigned i = 0; i < 4; i++)
			assert_handle_of(p, id[k], &rc[k], blk[i]);
	}

	/* Remove hook 1: its chunks are unregistered, the others keep theirs, and
	 * its id is the next one handed out. */
	assert_int_equal(mem_pool_del_reg(p, id[1]), 0);
	assert_int_equal(rc[1].unregs, 4);
	assert_int_equal(mem_pool_del_reg(p, id[1]), -ENOENT);
	assert_int_equal(mem_pool_del_reg(p, MEM_POOL_MAX_REGS), -ENOENT);
	assert_null(mem_pool_reg_handle_id(p, id[1], blk[2]));
	for (unsigned k = 0; k < MEM_POOL_MAX_REGS; k++)
		if (k != 1)
			for (unsigned i = 0; i < 4; i++)
				assert_handle_of(p, id[k], &rc[k], blk[i]);
	unsigned again;

	assert_int_equal(mem_pool_add_reg(p, &ops[MEM_POOL_MAX_REGS], &again), 0);
	assert_int_equal(again, id[1]);
	assert_int_equal(rc[MEM_POOL_MAX_REGS].regs, 4);
	for (unsigned i = 0; i < 4; i++)
		assert_handle_of(p, again, &rc[MEM_POOL_MAX_REGS], blk[i]);

	/* A chunk given back by trim leaves every hook. */
	mem_pool_free_pages(p, blk[3]);
	mem_pool_free_pages(p, blk[2]);
	assert_int_equal(mem_pool_trim(p), CHUNK);         /* one spare stays */
	for (unsigned k = 0; k <= MEM_POOL_MAX_REGS; k++)
		if (k != 1)
			assert_int_equal(rc[k].unregs, 1);
	assert_int_equal(rc[1].unregs, 4);
	mem_pool_destroy(p);
	for (unsigned k = 0; k <= MEM_POOL_MAX_REGS; k++) {
		assert_int_equal(rc[k].unregs, rc[k].regs);
		for (unsigned i = 0; i < rc[k].regs; i++)
			assert_false(rc[k].live[i]);
	}
}

static void test_reg_failure(void **state)
{
	(void)state;
	struct reg_ctx rc = { .fail_after = 2 };
	struct reg_ctx ok = { .fail_after = MAX_REG };
	struct mem_reg_ops ops = { fake_reg, fake_unreg, &rc };
	struct mem_reg_ops ops_ok = { fake_reg, fake_unreg, &ok };
	struct mem_pool *p = new_pool(16 * MiB, 0);
	unsigned id, id_ok;

	/* The hook that works is installed first, so it has registered the
	 * third chunk by the time the other refuses it. */
	assert_int_equal(mem_pool_add_reg(p, &ops_ok, &id_ok), 0);
	assert_int_equal(mem_pool_add_reg(p, &ops, &id), 0);
	assert_non_null(mem_pool_alloc_pages(p, BUDDY_MAX_ORDER));
	assert_non_null(mem_pool_alloc_pages(p, BUDDY_MAX_ORDER));
	/* The third chunk's registration fails: no chunk kept, allocation fails,
	 * and the hook that had accepted it has it back. */
	assert_null(mem_pool_alloc_pages(p, BUDDY_MAX_ORDER));
	assert_int_equal(stats(p).chunks, 2);
	assert_int_equal(stats(p).failed_allocs, 1);
	assert_int_equal(ok.regs, 3);
	assert_int_equal(ok.unregs, 1);
	assert_false(ok.live[2]);
	rc.fail_after = MAX_REG;
	assert_non_null(mem_pool_alloc_pages(p, BUDDY_MAX_ORDER));
	assert_int_equal(stats(p).chunks, 3);
	mem_pool_destroy(p);
	assert_int_equal(rc.unregs, 3);
	assert_int_equal(ok.unregs, ok.regs);

	/* add_reg failing midway undoes what it registered, and only that. */
	struct reg_ctx rc2 = { .fail_after = 1 };
	struct mem_reg_ops ops2 = { fake_reg, fake_unreg, &rc2 };

	ok = (struct reg_ctx){ .fail_after = MAX_REG };
	p = new_pool(16 * MiB, 6 * MiB);
	assert_int_equal(mem_pool_add_reg(p, &ops_ok, &id_ok), 0);
	id = 77;
	assert_int_equal(mem_pool_add_reg(p, &ops2, &id), -ENOMEM);
	assert_int_equal(id, 77);                  /* untouched on failure */
	assert_int_equal(rc2.regs, 1);
	assert_int_equal(rc2.unregs, 1);
	assert_int_equal(ok.regs, 3);
	assert_int_equal(ok.unregs, 0);
	void *a = mem_pool_alloc_pages(p, 0);

	assert_null(mem_pool_reg_handle_id(p, id_ok + 1, a));
	assert_non_null(mem_pool_reg_handle_id(p, id_ok, a));
	/* The failed hook's id is free again. */
	rc2 = (struct reg_ctx){ .fail_after = MAX_REG };
	assert_int_equal(mem_pool_add_reg(p, &ops2, &id), 0);
	assert_int_equal(id, id_ok + 1);
	mem_pool_destroy(p);
	assert_int_equal(rc2.unregs, 3);
	assert_int_equal(ok.unregs, 3);
}

/* ---------- chunk table ---------- */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Many chunks mapped and unmapped in random order: the table grows and
 * deletes, and every lookup stays exact. */
static void test_many_chunks(void **state)
{
	(void)state;
	enum { N = 48 };
	struct mem_pool *p = new_pool(N * CHUNK, 0);
	struct reg_ctx rc = { .fail_after = MAX_REG };
	struct mem_reg_ops ops = { fake_reg, fake_unreg, &rc };
	uint8_t *blk[N];
	unsigned id;

	assert_int_equal(mem_pool_add_reg(p, &ops, &id), 0);
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < N; i++) {
			blk[i] = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER);
			assert_non_null(blk[i]);
		}
		assert_null(mem_pool_alloc_pages(p, 0));
		for (unsigned i = 0; i < N; i++) {
			assert_true(mem_pool_owns(p, blk[i] + (rng() % CHUNK)));
			assert_non_null(mem_pool_reg_handle_id(p, id, blk[i]));
		}
		/* Free in random order; check lookups of the rest each time. */
		for (unsigned left = N; left > 0; left--) {
			unsigned k = (unsigned)(rng() % left);
			uint8_t *gone = blk[k];

			mem_pool_free_pages(p, gone);
			assert_true(mem_pool_owns(p, gone));   /* kept until trimmed */
			mem_pool_trim(p);
			blk[k] = blk[left - 1];
			for (unsigned i = 0; i + 1 < left; i++)
				assert_true(mem_pool_owns(p, blk[i]));
			if (left < N)   /* the first freed chunk stays as the spare */
				assert_false(mem_pool_owns(p, gone));
		}
		assert_int_equal(stats(p).chunks, 1);
	}
	mem_pool_destroy(p);
	assert_int_equal(rc.unregs, rc.regs);
}

/* Pattern over the first and last 512 bytes of a block (all of a small one):
 * catches overlaps without making big blocks slow under ASan. */
static void fill_ends(uint8_t *b, size_t n, unsigned seed)
{
	if (n <= 1024) {
		fill(b, n, seed);
		return;
	}
	fill(b, 512, seed);
	fill(b + n - 512, 512, seed + 1);
}

static bool ends_filled(const uint8_t *b, size_t n, unsigned seed)
{
	if (n <= 1024)
		return filled(b, n, seed);
	return filled(b, 512, seed) && filled(b + n - 512, 512, seed + 1);
}

/* Random mix of sizes through mem_alloc/mem_free; every block carries a
 * pattern that must be intact when it is freed. */
static void test_mem_alloc_random(void **state)
{
	(void)state;
	enum { SLOTS = 512, OPS = 40000 };
	struct mem_pool *p = new_pool(32 * MiB, 0);
	static struct { uint8_t *p; size_t n; unsigned seed; } live[SLOTS];
	unsigned refused = 0;

	memset(live, 0, sizeof(live));
	for (unsigned op = 0; op < OPS; op++) {
		unsigned k = (unsigned)(rng() % SLOTS);

		if (live[k].p) {
			assert_true(ends_filled(live[k].p, live[k].n, live[k].seed));
			mem_free(p, live[k].p);
			live[k].p = NULL;
			continue;
		}
		/* Mostly small objects, some pages, a few large blocks. */
		size_t n = rng() % 8 ? 1 + rng() % 2048 :
			   rng() % 8 ? 2049 + rng() % 60000 : 1 + rng() % (2 * MiB);
		uint64_t failed = stats(p).failed_allocs;
		uint8_t *b = mem_alloc(p, n);

		if (!b) {
			assert_int_equal(stats(p).failed_allocs, failed + 1);
			refused++;
			continue;
		}
		assert_true(mem_usable_size(p, b) >= n);
		live[k].p = b;
		live[k].n = n;
		live[k].seed = op;
		fill_ends(b, n, op);
		if (op % 4096 == 0)
			assert_int_equal(mem_pool_check(p), 0);
	}
	(void)refused;   /* may be 0 or not: the limit is not the point here */
	for (unsigned k = 0; k < SLOTS; k++)
		if (live[k].p) {
			assert_true(ends_filled(live[k].p, live[k].n, live[k].seed));
			mem_free(p, live[k].p);
		}
	/* Nothing is in use; what the size classes still hold are slabs pinned by
	 * their magazines and spares. After a flush only the spares are left;
	 * after a trim nothing, and one spare chunk stays mapped. */
	size_t slab_bytes = 0;

	for (struct slab_cache *c = slab_cache_next(p, NULL); c; c = slab_cache_next(p, c)) {
		struct slab_stats cs;

		slab_get_stats(c, &cs);
		assert_int_equal(cs.in_use, 0);
		assert_true(cs.cached <= cs.cached_max);
		slab_bytes += cs.slab_bytes;
	}
	assert_int_equal(stats(p).page_bytes_in_use, slab_bytes);
	slab_bytes = 0;
	for (struct slab_cache *c = slab_cache_next(p, NULL); c; c = slab_cache_next(p, c)) {
		struct slab_stats cs;

		slab_cache_flush(c);
		slab_get_stats(c, &cs);
		assert_int_equal(cs.cached, 0);
		assert_true(cs.slabs <= 1);
		slab_bytes += cs.slab_bytes;
	}
	assert_int_equal(stats(p).page_bytes_in_use, slab_bytes);
	assert_int_equal(mem_pool_check(p), 0);
	mem_pool_trim(p);
	assert_int_equal(mem_pool_check(p), 0);
	assert_int_equal(stats(p).page_bytes_in_use, 0);
	assert_int_equal(stats(p).page_cached_bytes, 0);
	assert_int_equal(stats(p).chunks, 1);
	mem_pool_destroy(p);
}

/* ---------- page magazine ---------- */

/* Small blocks freed are parked, still allocated in their buddy, and handed
 * out again first; they count as cached, not in use; a second free of one is
 * caught; the buddies stay consistent throughout. */
static void test_page_magazine(void **state)
{
	(void)state;
	enum { N = 72 };
	struct mem_pool *p = new_pool(16 * MiB, 0);
	uint8_t *pg[N];

	uint8_t *a = mem_pool_alloc_pages(p, 0);

	assert_non_null(a);
	assert_int_equal(stats(p).page_bytes_in_use, 4096);
	mem_pool_free_pages(p, a);
	assert_int_equal(stats(p).page_bytes_in_use, 0);
	assert_int_equal(stats(p).page_cached_bytes, 4096);
	assert_int_equal(mem_pool_check(p), 0);
	/* A second free of the parked block: logged, nothing changes. */
	struct mem_pool_stats before = stats(p);

	mem_pool_free_pages(p, a);
	mem_free(p, a);
	assert_int_equal(mem_usable_size(p, a), 0);       /* free, not a live block */
	struct mem_pool_stats after = stats(p);

	assert_memory_equal(&before, &after, sizeof(before));
	/* LIFO reuse: an alloc/free cycle keeps getting the same block. */
	for (unsigned i = 0; i < 100; i++) {
		uint8_t *b = mem_alloc(p, 4096);

		assert_ptr_equal(b, a);
		assert_int_equal(mem_usable_size(p, b), 4096);
		assert_int_equal(stats(p).page_cached_bytes, 0);
		b[0] = (uint8_t)i;
		mem_free(p, b);
	}
	assert_int_equal(stats(p).page_allocs, 101);
	assert_int_equal(mem_pool_check(p), 0);

	/* Capacity per order: 64 blocks of 4 KiB, 4 of 64 KiB, none of 128 KiB. */
	static const struct { unsigned order, cap; } caps[] = { { 0, 64 }, { 4, 4 }, { 5, 0 } };

	for (unsigned k = 0; k < 3; k++) {
		size_t bytes = (size_t)BUDDY_PAGE_SIZE << caps[k].order;

		mem_pool_trim(p);
		assert_int_equal(stats(p).page_cached_bytes, 0);
		for (unsigned i = 0; i < N; i++) {
			pg[i] = mem_pool_alloc_pages(p, caps[k].order);
			assert_non_null(pg[i]);
			fill(pg[i], 64, i);
		}
		for (unsigned i = 0; i < N; i++) {
			assert_true(filled(pg[i], 64, i));
			mem_pool_free_pages(p, pg[i]);
		}
		assert_int_equal(stats(p).page_cached_bytes, caps[k].cap * bytes);
		assert_int_equal(stats(p).page_bytes_in_use, 0);
		assert_int_equal(mem_pool_check(p), 0);
	}
	/* Slab blocks pass through it too, owners cleared while parked. */
	struct slab_cache *c = slab_cache_create(p, "pm", 64, 0);
	void *o = slab_alloc(c);

	assert_non_null(o);
	slab_cache_destroy(c);                             /* its slab is parked */
	assert_int_equal(mem_pool_check(p), 0);
	assert_null(mem_pool_page_owner(p, o));
	assert_int_equal(mem_usable_size(p, o), 0);
	mem_pool_destroy(p);
}

/* The 4 KiB fast paths (pop and push of the order-0 magazine) check what the
 * general path checks: every bad free below falls through to it and is
 * rejected, and the fast and general paths agree on the accounting. */
static void test_page_fast_path(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(16 * MiB, 0);
	struct slab_cache *c = slab_cache_create(p, "fp", 64, 0);
	uint8_t *pg = mem_pool_alloc_pages(p, 0);       /* general: magazine empty */
	uint8_t *blk = mem_pool_alloc_pages(p, 1);      /* 8 KiB */
	uint8_t *small = mem_alloc(p, 2048);            /* slab object */
	void *obj = slab_alloc(c);                      /* 64 B slab: one page */
	int local;

	assert_non_null(pg);
	assert_non_null(blk);
	assert_non_null(small);
	assert_non_null(obj);
	assert_int_equal(mem_pool_check(p), 0);
	struct mem_pool_stats before = stats(p);

	/* Not live raw pages: interior pointers, the second page of an 8 KiB
	 * block, slab memory through the page API, foreign memory. */
	mem_free(p, pg + 64);
	mem_pool_free_pages(p, pg + 4095);
	mem_free(p, blk + 4096);
	mem_pool_free_pages(p, blk + 4096);
	mem_pool_free_pages(p, small);
	mem_pool_free_pages(p, obj);
	mem_pool_free_pages(p, (uint8_t *)obj - ((uintptr_t)obj & 4095));
	mem_free(p, &local);
	mem_free(p, NULL);
	mem_pool_free_pages(p, NULL);
	struct mem_pool_stats after = stats(p);

	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(mem_pool_check(p), 0);

	/* Fast push, then a second free of the parked page: rejected. */
	mem_free(p, pg);
	assert_int_equal(stats(p).page_bytes_in_use, before.page_bytes_in_use - 4096);
	assert_int_equal(stats(p).page_cached_bytes, 4096);
	mem_pool_free_pages(p, pg);
	mem_free(p, pg);
	assert_int_equal(stats(p).page_bytes_in_use, before.page_bytes_in_use - 4096);
	assert_int_equal(mem_pool_check(p), 0);

	/* Fast pop: the same page, live again, freeable once more. */
	uint8_t *again = mem_pool_alloc_pages(p, 0);

	assert_ptr_equal(again, pg);
	assert_int_equal(mem_usable_size(p, again), 4096);
	assert_int_equal(stats(p).page_bytes_in_use, before.page_bytes_in_use);
	assert_int_equal(stats(p).page_allocs, before.page_allocs + 1);
	assert_int_equal(mem_pool_check(p), 0);
	mem_pool_free_pages(p, again);

	/* Blocks that are not order 0 take the general path and still park. */
	mem_free(p, blk);
	assert_int_equal(stats(p).page_cached_bytes, 4096 + 8192);
	assert_int_equal(mem_pool_check(p), 0);

	/* The high water follows the fast pops too. */
	mem_pool_trim(p);
	size_t base = stats(p).page_bytes_in_use, hw = stats(p).page_high_water;
	enum { N = 80 };                                /* > the magazine's 64 */
	uint8_t *pages[N];

	for (unsigned round = 0; round < 2; round++) {  /* general, then fast */
		for (unsigned i = 0; i < N; i++) {
			pages[i] = mem_alloc(p, 4096);
			assert_non_null(pages[i]);
			assert_int_equal(mem_usable_size(p, pages[i]), 4096);
		}
		assert_int_equal(stats(p).page_bytes_in_use, base + N * 4096);
		assert_int_equal(stats(p).page_high_water,
				 (hw > base + N * 4096 ? hw : base + N * 4096));
		assert_int_equal(mem_pool_check(p), 0);
		for (unsigned i = 0; i < N; i++)
			mem_free(p, pages[i]);
		assert_int_equal(stats(p).page_bytes_in_use, base);
		assert_int_equal(stats(p).page_cached_bytes, 64 * 4096);
		assert_int_equal(mem_pool_check(p), 0);
	}
	slab_free(c, obj);
	mem_free(p, small);
	slab_cache_destroy(c);
	mem_pool_trim(p);
	assert_int_equal(stats(p).page_bytes_in_use, 0);
	assert_int_equal(mem_pool_check(p), 0);
	mem_pool_destroy(p);
}

/* Parked blocks never make an allocation fail or the pool grow: before it
 * maps a chunk or gives up, the pool returns them to their buddies. */
static void test_page_magazine_under_pressure(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(2 * MiB, 0);        /* one chunk, no growth */
	void **pg = calloc(2 * BUDDY_PAGES, sizeof(*pg));   /* pages, then objects */

	assert_non_null(pg);
	for (unsigned i = 0; i < BUDDY_PAGES; i++) {
		pg[i] = mem_pool_alloc_pages(p, 0);
		assert_non_null(pg[i]);
	}
	assert_null(mem_pool_alloc_pages(p, 0));
	assert_int_equal(stats(p).failed_allocs, 1);
	for (unsigned i = 0; i < BUDDY_PAGES; i++)
		mem_pool_free_pages(p, pg[i]);
	assert_true(stats(p).page_cached_bytes > 0);
	/* The whole chunk, although some of its pages are parked. */
	void *all = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER);

	assert_non_null(all);
	assert_int_equal(stats(p).page_cached_bytes, 0);
	assert_int_equal(stats(p).failed_allocs, 1);
	assert_int_equal(stats(p).chunks, 1);
	assert_int_equal(mem_pool_check(p), 0);
	mem_pool_free_pages(p, all);
	/* Same with slab pages: 64 KiB slabs of 2 KiB objects fill the chunk,
	 * then raw pages want it back. */
	struct slab_cache *c = slab_cache_create(p, "big", 2048, 0);
	size_t n = 0;

	while (n < 2 * BUDDY_PAGES && (pg[n] = slab_alloc(c)) != NULL)
		n++;
	assert_true(n > 900 && n < 2 * BUDDY_PAGES);
	while (n)
		slab_free(c, pg[--n]);
	slab_cache_trim(c);
	assert_int_equal(stats(p).page_bytes_in_use, 0);
	assert_non_null(all = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER));
	assert_int_equal(mem_pool_check(p), 0);
	mem_pool_free_pages(p, all);
	slab_cache_destroy(c);
	free(pg);
	mem_pool_destroy(p);
}

/* ---------- hugepages, NUMA, stats ---------- */

static void test_hugepages_or_fallback(void **state)
{
	(void)state;
	struct mem_pool_opts o = { .name = "huge", .limit = 8 * MiB, .numa_node = -1 };
	struct mem_pool *p = mem_pool_create(&o);
	bool huge = mem_hugepages_available();

	assert_non_null(p);
	assert_true(mem_hugepages_available() == huge);   /* cached, stable */
	uint8_t *a = mem_pool_alloc_pages(p, BUDDY_MAX_ORDER);
	uint8_t *b = mem_alloc(p, 200);

	assert_non_null(a);
	assert_non_null(b);
	fill(a, CHUNK, 7);
	fill(b, 200, 8);
	assert_true(filled(a, CHUNK, 7));
	assert_true(filled(b, 200, 8));
	struct mem_pool_stats s = stats(p);

	assert_int_equal(s.chunks, 2);
	if (huge)
		assert_true(s.hugepage_chunks > 0);
	else
		assert_int_equal(s.hugepage_chunks, 0);   /* fallback path taken */
	mem_free(p, b);
	mem_pool_free_pages(p, a);
	mem_pool_destroy(p);
}

static void test_numa_node(void **state)
{
	(void)state;
	struct mem_pool_opts o = { .name = "numa", .limit = 4 * MiB, .numa_node = 0,
				   .no_hugepages = true };
	struct mem_pool *p = mem_pool_create(&o);

	assert_non_null(p);
	uint8_t *a = mem_pool_alloc_pages(p, 4);

	assert_non_null(a);
	fill(a, 65536, 3);
	assert_true(filled(a, 65536, 3));
	mem_pool_destroy(p);

	if (numa_available() >= 0) {
		o.numa_node = numa_max_node() + 1;
		assert_null(mem_pool_create(&o));
	}
	assert_null(mem_pool_create(NULL));
}

static void test_dump_stats(void **state)
{
	(void)state;
	struct mem_pool *p = new_pool(8 * MiB, 0);
	char buf[2048], tiny[24];
	void *a = mem_alloc(p, 50), *b = mem_alloc(p, 1500), *c = mem_alloc(p, 9000);

	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	mem_pool_dump_stats(p, buf, sizeof(buf));
	assert_non_null(strstr(buf, "pool test"));
	assert_non_null(strstr(buf, "size-64: obj 64 B, 1 in use"));
	assert_non_null(strstr(buf, "size-2048"));
	assert_null(strstr(buf, "size-128"));       /* created lazily */
	memset(tiny, 'x', sizeof(tiny));
	mem_pool_dump_stats(p, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	mem_free(p, a);
	mem_free(p, b);
	mem_free(p, c);
	mem_pool_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_limits),
		cmocka_unit_test(test_growth_and_limit),
		cmocka_unit_test(test_small_pages_fill_chunks),
		cmocka_unit_test(test_prealloc_kept),
		cmocka_unit_test(test_mem_alloc_sizes),
		cmocka_unit_test(test_usable_size_and_owns),
		cmocka_unit_test(test_reg_hook),
		cmocka_unit_test(test_reg_several),
		cmocka_unit_test(test_reg_failure),
		cmocka_unit_test(test_many_chunks),
		cmocka_unit_test(test_mem_alloc_random),
		cmocka_unit_test(test_page_magazine),
		cmocka_unit_test(test_page_fast_path),
		cmocka_unit_test(test_page_magazine_under_pressure),
		cmocka_unit_test(test_hugepages_or_fallback),
		cmocka_unit_test(test_numa_node),
		cmocka_unit_test(test_dump_stats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
