/* test_buddy.c — buddy allocator: exhaustion, split/merge invariants, bad frees,
 * fragmentation, and a long random workload checked against a page bitmap. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "mem/buddy.h"

/* The managed chunk is mapped PROT_NONE: any read or write of managed memory by
 * the allocator would fault, which proves the metadata is out of band. */
struct fixture {
	void *map;
	uint8_t *base;
	struct buddy b;
};

static int setup(void **state)
{
	static struct fixture f;
	size_t len = 2 * BUDDY_CHUNK_SIZE;

	f.map = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (f.map == MAP_FAILED)
		return -1;
	f.base = (uint8_t *)(((uintptr_t)f.map + BUDDY_CHUNK_SIZE - 1) &
			     ~(uintptr_t)(BUDDY_CHUNK_SIZE - 1));
	buddy_init(&f.b, f.base);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	munmap(f->map, 2 * BUDDY_CHUNK_SIZE);
	return 0;
}

static unsigned page_no(const struct fixture *f, const void *p)
{
	return (unsigned)(((const uint8_t *)p - f->base) >> BUDDY_PAGE_SHIFT);
}

static void test_initial_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(buddy_check(&f->b), 0);
	assert_int_equal(buddy_max_free_order(&f->b), BUDDY_MAX_ORDER);
	assert_int_equal(buddy_free_bytes(&f->b), BUDDY_CHUNK_SIZE);
	assert_null(buddy_alloc(&f->b, BUDDY_MAX_ORDER + 1));
}

static void test_order_for(void **state)
{
	(void)state;
	assert_int_equal(buddy_order_for(0), 0);
	assert_int_equal(buddy_order_for(1), 0);
	assert_int_equal(buddy_order_for(4096), 0);
	assert_int_equal(buddy_order_for(4097), 1);
	assert_int_equal(buddy_order_for(8192), 1);
	assert_int_equal(buddy_order_for(65536), 4);
	assert_int_equal(buddy_order_for(65537), 5);
	assert_int_equal(buddy_order_for(BUDDY_CHUNK_SIZE), BUDDY_MAX_ORDER);
	assert_int_equal(buddy_order_for(BUDDY_CHUNK_SIZE + 1), -EINVAL);
}

static void test_alloc_all_pages(void **state)
{
	struct fixture *f = *state;
	static void *pages[BUDDY_PAGES];
	static uint8_t seen[BUDDY_PAGES];

	memset(seen, 0, sizeof(seen));
	for (unsigned i = 0; i < BUDDY_PAGES; i++) {
		pages[i] = buddy_alloc(&f->b, 0);
		assert_non_null(pages[i]);
		assert_true((uint8_t *)pages[i] >= f->base);
		assert_true((uint8_t *)pages[i] < f->base + BUDDY_CHUNK_SIZE);
		assert_int_equal((uintptr_t)pages[i] % BUDDY_PAGE_SIZE, 0);
		assert_int_equal(seen[page_no(f, pages[i])], 0);
		seen[page_no(f, pages[i])] = 1;
		assert_int_equal(buddy_block_order(&f->b, pages[i]), 0);
		assert_int_equal(buddy_check(&f->b), 0);
	}
	assert_null(buddy_alloc(&f->b, 0));
	assert_null(buddy_alloc(&f->b, 3));
	assert_int_equal(buddy_max_free_order(&f->b), -1);
	assert_int_equal(buddy_free_bytes(&f->b), 0);

	for (unsigned i = 0; i < BUDDY_PAGES; i++) {
		assert_int_equal(buddy_free(&f->b, pages[i]), 0);
		assert_int_equal(buddy_check(&f->b), 0);
	}
	assert_int_equal(buddy_max_free_order(&f->b), BUDDY_MAX_ORDER);
	assert_ptr_equal(buddy_alloc(&f->b, BUDDY_MAX_ORDER), f->base);
}

static void test_split_merge(void **state)
{
	struct fixture *f = *state;

	/* One order-0 page from a whole chunk leaves one free block per order 0..8. */
	void *p0 = buddy_alloc(&f->b, 0);

	assert_ptr_equal(p0, f->base);
	assert_int_equal(buddy_check(&f->b), 0);
	for (unsigned o = 0; o < BUDDY_MAX_ORDER; o++)
		assert_int_not_equal(f->b.head[o], BUDDY_NONE);
	assert_int_equal(f->b.head[BUDDY_MAX_ORDER], BUDDY_NONE);
	assert_int_equal(buddy_max_free_order(&f->b), BUDDY_MAX_ORDER - 1);

	/* Mixed orders; each block aligned to its own size. */
	unsigned orders[] = { 3, 1, 0, 8, 2, 5, 0, 4 };
	void *blk[8];

	for (unsigned i = 0; i < 8; i++) {
		blk[i] = buddy_alloc(&f->b, orders[i]);
		assert_non_null(blk[i]);
		assert_int_equal(((uint8_t *)blk[i] - f->base) %
				 ((size_t)BUDDY_PAGE_SIZE << orders[i]), 0);
		assert_int_equal(buddy_block_order(&f->b, blk[i]), orders[i]);
		assert_int_equal(buddy_check(&f->b), 0);
	}
	/* Free in a different order; merging must restore everything. */
	unsigned perm[] = { 4, 0, 7, 2, 5, 1, 6, 3 };

	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(buddy_free(&f->b, blk[perm[i]]), 0);
		assert_int_equal(buddy_check(&f->b), 0);
	}
	assert_int_equal(buddy_free(&f->b, p0), 0);
	assert_int_equal(buddy_check(&f->b), 0);
	assert_int_equal(buddy_max_free_order(&f->b), BUDDY_MAX_ORDER);
	assert_int_equal(buddy_free_bytes(&f->b), BUDDY_CHUNK_SIZE);
}

static void assert_bad_free(struct fixture *f, void *p)
{
	static struct buddy before;

	memcpy(&before, &f->b, sizeof(before));
	assert_int_equal(buddy_free(&f->b, p), -EINVAL);
	assert_memory_equal(&before, &f->b, sizeof(before));
	assert_int_equal(buddy_check(&f->b), 0);
}

static void test_bad_frees(void **state)
{
	struct fixture *f = *state;
	uint8_t *a = buddy_alloc(&f->b, 2);   /* 4 pages */
	uint8_t *c = buddy_alloc(&f->b, 0);

	assert_non_null(a);
	assert_non_null(c);
	assert_bad_free(f, a + BUDDY_PAGE_SIZE);          /* interior page */
	assert_bad_free(f, a + 1);                        /* not page aligned */
	assert_bad_free(f, a + 3 * BUDDY_PAGE_SIZE + 8);
	assert_bad_free(f, f->base - BUDDY_PAGE_SIZE);    /* foreign: below */
	assert_bad_free(f, f->base + BUDDY_CHUNK_SIZE);   /* foreign: above */
	assert_bad_free(f, (void *)&state);               /* foreign: stack */
	assert_bad_free(f, NULL);
	assert_bad_free(f, f->base + BUDDY_CHUNK_SIZE - BUDDY_PAGE_SIZE); /* free page */
	assert_int_equal(buddy_block_order(&f->b, a + BUDDY_PAGE_SIZE), -EINVAL);

	assert_int_equal(buddy_free(&f->b, c), 0);
	assert_bad_free(f, c);                            /* double free */
	assert_int_equal(buddy_free(&f->b, a), 0);
	assert_bad_free(f, a);                            /* double free after merge */
	assert_int_equal(buddy_block_order(&f->b, a), -EINVAL);
	assert_int_equal(buddy_max_free_order(&f->b), BUDDY_MAX_ORDER);
}

static void test_fragmentation(void **state)
{
	struct fixture *f = *state;
	static void *pages[BUDDY_PAGES];

	for (unsigned i = 0; i < BUDDY_PAGES; i++) {
		pages[i] = buddy_alloc(&f->b, 0);
		assert_non_null(pages[i]);
	}
	/* Free every other page (by address): no two free pages are buddies. */
	for (unsigned i = 0; i < BUDDY_PAGES; i++)
		if (page_no(f, pages[i]) % 2 == 0)
			assert_int_equal(buddy_free(&f->b, pages[i]), 0);
	assert_int_equal(buddy_check(&f->b), 0);
	assert_int_equal(buddy_free_bytes(&f->b), BUDDY_CHUNK_SIZE / 2);
	assert_int_equal(buddy_max_free_order(&f->b), 0);
	assert_null(buddy_alloc(&f->b, 1));

	for (unsigned i = 0; i < BUDDY_PAGES; i++)
		if (page_no(f, pages[i]) % 2 == 1)
			assert_int_equal(buddy_free(&f->b, pages[i]), 0);
	assert_int_equal(buddy_check(&f->b), 0);
	assert_int_equal(buddy_max_free_order(&f->b), BUDDY_MAX_ORDER);
	assert_non_null(buddy_alloc(&f->b, BUDDY_MAX_ORDER));
}

/* ---------- random workload against a reference model ---------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic for a given seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

struct live_block { uint8_t *p; unsigned order; };

struct model {
	uint8_t used[BUDDY_PAGES];
	unsigned used_pages;
	struct live_block live[BUDDY_PAGES];
	unsigned nlive;
	unsigned refused, peak_pages;   /* to show the workload reached exhaustion */
};

/* True if some aligned run of 2^order pages is entirely free in the model. */
static bool model_has_room(const struct model *m, unsigned order)
{
	unsigned n = 1u << order;

	for (unsigned i = 0; i < BUDDY_PAGES; i += n) {
		unsigned j = 0;

		while (j < n && !m->used[i + j])
			j++;
		if (j == n)
			return true;
	}
	return false;
}

static unsigned random_order(void)
{
	/* Mostly small blocks, sometimes large ones. */
	unsigned o = 0;

	while (o < BUDDY_MAX_ORDER && rng() % 3 == 0)
		o++;
	return o;
}

static void model_alloc(struct fixture *f, struct model *m)
{
	unsigned order = random_order(), n = 1u << order;
	uint8_t *p = buddy_alloc(&f->b, order);

	if (!p) {
		assert_false(model_has_room(m, order));
		m->refused++;
		return;
	}
	unsigned first = page_no(f, p);

	assert_true(p >= f->base && first + n <= BUDDY_PAGES);
	assert_int_equal(first % n, 0);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(m->used[first + i], 0);   /* no overlap */
		m->used[first + i] = 1;
	}
	m->used_pages += n;
	if (m->used_pages > m->peak_pages)
		m->peak_pages = m->used_pages;
	m->live[m->nlive++] = (struct live_block){ p, order };
}

static void model_free(struct fixture *f, struct model *m)
{
	unsigned k = (unsigned)(rng() % m->nlive);
	struct live_block blk = m->live[k];
	unsigned first = page_no(f, blk.p);

	assert_int_equal(buddy_block_order(&f->b, blk.p), blk.order);
	assert_int_equal(buddy_free(&f->b, blk.p), 0);
	for (unsigned i = 0; i < (1u << blk.order); i++)
		m->used[first + i] = 0;
	m->used_pages -= 1u << blk.order;
	m->live[k] = m->live[--m->nlive];
}

static void test_random_workload(void **state)
{
	struct fixture *f = *state;
	static struct model m;

	memset(&m, 0, sizeof(m));
	rng_state = 0x1234abcd5678ef01ull;
	for (unsigned op = 0; op < 200000; op++) {
		/* Drift between nearly empty and nearly full over time. */
		unsigned bias = (op / 5000) % 2 ? 60 : 40;

		if (m.nlive == 0 || (rng() % 100) < bias)
			model_alloc(f, &m);
		else
			model_free(f, &m);
		assert_int_equal(buddy_free_bytes(&f->b),
				 (size_t)(BUDDY_PAGES - m.used_pages) * BUDDY_PAGE_SIZE);
		if (op % 16 == 0)
			assert_int_equal(buddy_check(&f->b), 0);
	}
	/* The workload must have exercised the full and refused states. */
	assert_true(m.refused > 100);
	assert_true(m.peak_pages > BUDDY_PAGES * 9 / 10);
	while (m.nlive)
		model_free(f, &m);
	assert_int_equal(buddy_check(&f->b), 0);
	assert_int_equal(buddy_max_free_order(&f->b), BUDDY_MAX_ORDER);
}

static void test_check_detects_corruption(void **state)
{
	struct fixture *f = *state;
	void *p = buddy_alloc(&f->b, 0);

	assert_non_null(p);
	assert_int_equal(buddy_check(&f->b), 0);
	f->b.free_pages++;                    /* accounting off by one */
	assert_int_equal(buddy_check(&f->b), -EFAULT);
	f->b.free_pages--;
	f->b.is_free[0] = 1;                  /* allocated page flagged free, unlisted */
	assert_int_equal(buddy_check(&f->b), -EFAULT);
	f->b.is_free[0] = 0;
	assert_int_equal(buddy_check(&f->b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_initial_state, setup, teardown),
		cmocka_unit_test(test_order_for),
		cmocka_unit_test_setup_teardown(test_alloc_all_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_frees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fragmentation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_workload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_detects_corruption, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
