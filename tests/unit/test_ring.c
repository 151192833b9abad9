/* test_ring.c — SPSC ring: single-thread behaviour and a two-thread stress. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/ring.h"

#ifdef __SANITIZE_ADDRESS__
#define STRESS_MSGS 1000000u
#else
#define STRESS_MSGS 5000000u
#endif
#define STRESS_K    0x9e3779b97f4a7c15ull
#define STRESS_SALT 0x5a5a1234abcd0000ull

static void fn_a(void *a, void *b) { (void)a; (void)b; }
static void fn_b(void *a, void *b) { (void)a; (void)b; }

static struct ring_msg msg(uintptr_t i)
{
	return (struct ring_msg){ (i & 1) ? fn_b : fn_a, (void *)i, (void *)(i * 3 + 1) };
}

static void check_msg(const struct ring_msg *m, uintptr_t i)
{
	assert_ptr_equal(m->fn, (i & 1) ? fn_b : fn_a);
	assert_int_equal((uintptr_t)m->a, i);
	assert_int_equal((uintptr_t)m->b, i * 3 + 1);
}

static void test_bad_capacity(void **state)
{
	(void)state;
	assert_null(spsc_ring_create(0));
	assert_null(spsc_ring_create(1));
	assert_null(spsc_ring_create(3));
	assert_null(spsc_ring_create(100));
	assert_null(spsc_ring_create(0x80000001u));

	struct spsc_ring *r = spsc_ring_create(2);
	assert_non_null(r);
	assert_int_equal(spsc_ring_capacity(r), 2);
	spsc_ring_destroy(r);
}

static void test_order_full_empty(void **state)
{
	struct spsc_ring *r = spsc_ring_create(8);
	struct ring_msg m;

	(void)state;
	assert_non_null(r);
	assert_int_equal(spsc_ring_capacity(r), 8);
	assert_int_equal(spsc_ring_count(r), 0);
	assert_int_equal(spsc_ring_pop(r, &m), 0);

	for (uintptr_t i = 0; i < 8; i++) {
		m = msg(i);
		assert_int_equal(spsc_ring_push(r, &m), 0);
		assert_int_equal(spsc_ring_count(r), i + 1);
	}
	m = msg(99);
	assert_int_equal(spsc_ring_push(r, &m), -EAGAIN);
	assert_int_equal(spsc_ring_count(r), 8);

	for (uintptr_t i = 0; i < 8; i++) {
		assert_int_equal(spsc_ring_pop(r, &m), 1);
		check_msg(&m, i);
	}
	assert_int_equal(spsc_ring_pop(r, &m), 0);
	assert_int_equal(spsc_ring_count(r), 0);
	/* Room again after draining. */
	m = msg(5);
	assert_int_equal(spsc_ring_push(r, &m), 0);
	assert_int_equal(spsc_ring_pop(r, &m), 1);
	check_msg(&m, 5);
	spsc_ring_destroy(r);
}

/* Many laps with varying fill levels; also crosses the 32-bit index wrap. */
static void test_wraparound(void **state)
{
	struct spsc_ring *r = spsc_ring_create(4);
	uintptr_t in = 0, out = 0;
	struct ring_msg m;

	(void)state;
	for (unsigned lap = 0; lap < 20000; lap++) {
		unsigned push = 1 + lap % 4, pop = 1 + (lap * 7) % 4;

		for (unsigned k = 0; k < push; k++) {
			m = msg(in);
			if (spsc_ring_push(r, &m) == 0)
				in++;
			else
				assert_int_equal(in - out, 4);
		}
		for (unsigned k = 0; k < pop; k++) {
			if (spsc_ring_pop(r, &m)) {
				check_msg(&m, out);
				out++;
			} else {
				assert_int_equal(in, out);
			}
		}
		assert_int_equal(spsc_ring_count(r), in - out);
	}
	assert_true(in > 20000);
	spsc_ring_destroy(r);
}

static void test_pop_burst(void **state)
{
	struct spsc_ring *r = spsc_ring_create(16);
	struct ring_msg out[16], m;
	uintptr_t next = 0;

	(void)state;
	assert_int_equal(spsc_ring_pop_burst(r, out, 16), 0);
	for (uintptr_t i = 0; i < 10; i++) {
		m = msg(i);
		assert_int_equal(spsc_ring_push(r, &m), 0);
	}
	assert_int_equal(spsc_ring_pop_burst(r, out, 4), 4);
	for (unsigned i = 0; i < 4; i++)
		check_msg(&out[i], next++);
	assert_int_equal(spsc_ring_pop_burst(r, out, 0), 0);
	/* Asks for more than is there: gets what is there. */
	assert_int_equal(spsc_ring_pop_burst(r, out, 16), 6);
	for (unsigned i = 0; i < 6; i++)
		check_msg(&out[i], next++);
	/* A burst spanning the end of the slot array. */
	for (uintptr_t i = 10; i < 24; i++) {
		m = msg(i);
		assert_int_equal(spsc_ring_push(r, &m), 0);
	}
	assert_int_equal(spsc_ring_pop_burst(r, out, 16), 14);
	for (unsigned i = 0; i < 14; i++)
		check_msg(&out[i], next++);
	assert_int_equal(spsc_ring_count(r), 0);
	spsc_ring_destroy(r);
}

struct stress {
	struct spsc_ring *r;
	uint64_t count;
};

static void *producer(void *arg)
{
	struct stress *s = arg;

	for (uint64_t seq = 0; seq < s->count; seq++) {
		struct ring_msg m = { fn_a, (void *)(uintptr_t)seq,
				      (void *)(uintptr_t)(seq * STRESS_K ^ STRESS_SALT) };

		while (spsc_ring_push(s->r, &m) == -EAGAIN)
			sched_yield();
	}
	return NULL;
}

static void test_two_thread_stress(void **state)
{
	struct stress s = { spsc_ring_create(1024), STRESS_MSGS };
	struct ring_msg batch[37];
	uint64_t expect = 0, sum = 0, want_sum = 0, bad = 0;
	pthread_t t;

	(void)state;
	assert_non_null(s.r);
	assert_int_equal(pthread_create(&t, NULL, producer, &s), 0);
	while (expect < s.count) {
		/* Alternate single pops and bursts so both paths see concurrency. */
		unsigned n = (expect & 4096) ? spsc_ring_pop_burst(s.r, batch, 37)
					     : (unsigned)spsc_ring_pop(s.r, batch);

		if (n == 0) {
			sched_yield();
			continue;
		}
		for (unsigned i = 0; i < n; i++, expect++) {
			uint64_t a = (uintptr_t)batch[i].a, b = (uintptr_t)batch[i].b;

			bad += a != expect || b != (expect * STRESS_K ^ STRESS_SALT) ||
			       batch[i].fn != fn_a;
			sum += b;
		}
	}
	pthread_join(t, NULL);
	for (uint64_t seq = 0; seq < s.count; seq++)
		want_sum += seq * STRESS_K ^ STRESS_SALT;
	assert_int_equal(bad, 0);
	assert_int_equal(expect, s.count);
	assert_int_equal(sum, want_sum);
	assert_int_equal(spsc_ring_count(s.r), 0);
	spsc_ring_destroy(s.r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_capacity),
		cmocka_unit_test(test_order_full_empty),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_pop_burst),
		cmocka_unit_test(test_two_thread_stress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
