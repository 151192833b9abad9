/* test_timer.c — timer heap with a fake clock, checked against a reference model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/timer.h"

/* ---- a log of fired callbacks ---- */

#define LOG_MAX 4096

static int fired_log[LOG_MAX];
static unsigned fired_n;

static void log_reset(void) { fired_n = 0; }

static void record(void *arg)
{
	assert_true(fired_n < LOG_MAX);
	fired_log[fired_n++] = (int)(intptr_t)arg;
}

static void expect_log(const int *want, unsigned n)
{
	assert_int_equal(fired_n, n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(fired_log[i], want[i]);
}

static struct timer *add(struct timer_set *ts, uint64_t now, uint64_t delay,
			 uint64_t period, int id)
{
	struct timer *t = timer_add(ts, now, delay, period, record, (void *)(intptr_t)id);

	assert_non_null(t);
	return t;
}

/* ---- fixed scenarios ---- */

static void test_order_and_ties(void **state)
{
	struct timer_set *ts = timer_set_create();

	(void)state;
	log_reset();
	assert_int_equal(timer_set_next(ts), UINT64_MAX);
	assert_int_equal(timer_set_run(ts, 1000), 0);
	add(ts, 0, 30, 0, 3);
	add(ts, 0, 10, 0, 1);
	add(ts, 0, 20, 0, 20);
	add(ts, 5, 15, 0, 21);	/* same deadline 20, added later */
	add(ts, 0, 20, 0, 22);
	add(ts, 0, 50, 0, 5);
	assert_int_equal(timer_set_count(ts), 6);
	assert_int_equal(timer_set_next(ts), 10);

	assert_int_equal(timer_set_run(ts, 9), 0);
	assert_int_equal(timer_set_run(ts, 10), 1);
	assert_int_equal(timer_set_next(ts), 20);
	assert_int_equal(timer_set_run(ts, 35), 4);
	expect_log((int[]){ 1, 20, 21, 22, 3 }, 5);
	assert_int_equal(timer_set_count(ts), 1);
	assert_int_equal(timer_set_next(ts), 50);
	assert_int_equal(timer_set_run(ts, 1000), 1);
	assert_int_equal(timer_set_count(ts), 0);
	assert_int_equal(timer_set_next(ts), UINT64_MAX);
	timer_set_destroy(ts);
}

static void test_periodic_skips_missed(void **state)
{
	struct timer_set *ts = timer_set_create();

	(void)state;
	log_reset();
	add(ts, 0, 10, 10, 7);
	assert_int_equal(timer_set_run(ts, 10), 1);
	assert_int_equal(timer_set_next(ts), 20);
	/* Three periods late: fires once, next deadline stays on the grid. */
	assert_int_equal(timer_set_run(ts, 45), 1);
	assert_int_equal(timer_set_next(ts), 50);
	assert_int_equal(timer_set_run(ts, 49), 0);
	assert_int_equal(timer_set_run(ts, 50), 1);
	assert_int_equal(timer_set_next(ts), 60);
	assert_int_equal(timer_set_run(ts, 50), 0);
	assert_int_equal(fired_n, 3);
	assert_int_equal(timer_set_count(ts), 1);
	/* Destroy frees a pending periodic without firing it (ASan checks leaks). */
	timer_set_destroy(ts);
	assert_int_equal(fired_n, 3);
}

static void test_cancel_before_fire(void **state)
{
	struct timer_set *ts = timer_set_create();
	struct timer *t[8];

	(void)state;
	log_reset();
	for (int i = 0; i < 8; i++)
		t[i] = add(ts, 0, 10 * (uint64_t)(i + 1), 0, i);
	timer_cancel(ts, t[0]);	/* the root */
	timer_cancel(ts, t[7]);	/* the last slot */
	timer_cancel(ts, t[3]);	/* an inner node */
	timer_cancel(ts, NULL);
	assert_int_equal(timer_set_count(ts), 5);
	assert_int_equal(timer_set_next(ts), 20);
	assert_int_equal(timer_set_run(ts, 1000), 5);
	expect_log((int[]){ 1, 2, 4, 5, 6 }, 5);
	timer_set_destroy(ts);
}

/* ---- callbacks that touch the set ---- */

struct ctx {
	struct timer_set *ts;
	struct timer *victim;
	struct timer *self;
	uint64_t now;
	unsigned calls;
	unsigned limit;
};

static void cancel_victim(void *arg)
{
	struct ctx *c = arg;

	record((void *)(intptr_t)100);
	timer_cancel(c->ts, c->victim);
	c->victim = NULL;
}

static void test_cancel_from_callback(void **state)
{
	struct timer_set *ts = timer_set_create();
	struct ctx c = { .ts = ts };

	(void)state;
	log_reset();
	timer_add(ts, 0, 10, 0, cancel_victim, &c);
	c.victim = add(ts, 0, 10, 0, 1);	/* same deadline, due in the same run */
	add(ts, 0, 10, 0, 2);
	assert_int_equal(timer_set_run(ts, 10), 2);
	expect_log((int[]){ 100, 2 }, 2);
	assert_int_equal(timer_set_count(ts), 0);
	timer_set_destroy(ts);
}

static void self_cancel(void *arg)
{
	struct ctx *c = arg;

	c->calls++;
	if (c->calls == c->limit)
		timer_cancel(c->ts, c->self);
}

static void test_self_cancel(void **state)
{
	struct timer_set *ts = timer_set_create();
	struct ctx per = { .ts = ts, .limit = 3 }, once = { .ts = ts, .limit = 1 };

	(void)state;
	per.self = timer_add(ts, 0, 5, 5, self_cancel, &per);
	once.self = timer_add(ts, 0, 7, 0, self_cancel, &once);
	for (uint64_t now = 0; now <= 100; now++)
		timer_set_run(ts, now);
	assert_int_equal(per.calls, 3);
	assert_int_equal(once.calls, 1);
	assert_int_equal(timer_set_count(ts), 0);
	assert_int_equal(timer_set_next(ts), UINT64_MAX);
	timer_set_destroy(ts);
}

static void add_more(void *arg)
{
	struct ctx *c = arg;

	c->calls++;
	record((void *)(intptr_t)200);
	add(c->ts, c->now, 0, 0, 201);	/* due now, but only on the next run */
	add(c->ts, c->now, 5, 0, 202);
	if (c->calls < c->limit)
		assert_non_null(timer_add(c->ts, c->now, 0, 0, add_more, c));
}

static void test_add_from_callback(void **state)
{
	struct timer_set *ts = timer_set_create();
	struct ctx c = { .ts = ts, .limit = 3 };

	(void)state;
	log_reset();
	timer_add(ts, 0, 10, 0, add_more, &c);
	c.now = 10;
	assert_int_equal(timer_set_run(ts, 10), 1);
	expect_log((int[]){ 200 }, 1);
	assert_int_equal(timer_set_next(ts), 10);
	/* A re-adding callback advances one step per run, never spins. */
	assert_int_equal(timer_set_run(ts, 10), 2);
	assert_int_equal(timer_set_run(ts, 10), 2);
	assert_int_equal(timer_set_run(ts, 10), 1);
	assert_int_equal(timer_set_run(ts, 10), 0);
	expect_log((int[]){ 200, 201, 200, 201, 200, 201 }, 6);
	assert_int_equal(c.calls, 3);
	assert_int_equal(timer_set_next(ts), 15);
	assert_int_equal(timer_set_run(ts, 15), 3);
	assert_int_equal(fired_n, 9);
	assert_int_equal(timer_set_count(ts), 0);
	timer_set_destroy(ts);
}

static void test_next_tracks_changes(void **state)
{
	struct timer_set *ts = timer_set_create();
	struct timer *a, *b;

	(void)state;
	log_reset();
	a = add(ts, 100, 50, 0, 1);
	assert_int_equal(timer_set_next(ts), 150);
	b = add(ts, 100, 20, 0, 2);
	assert_int_equal(timer_set_next(ts), 120);
	timer_cancel(ts, b);
	assert_int_equal(timer_set_next(ts), 150);
	timer_cancel(ts, a);
	assert_int_equal(timer_set_next(ts), UINT64_MAX);
	assert_int_equal(timer_set_count(ts), 0);
	timer_set_destroy(ts);
}

static void test_clock(void **state)
{
	uint64_t a = clock_now_us(), b = clock_now_us();

	(void)state;
	assert_true(a > 0);
	assert_true(b >= a);
}

/* ---- randomized, against an array-scan reference model ----
 *
 * Each slot is one timer in both worlds. Firing a slot may cancel another one
 * (its victim) or add a new one, so the model also covers callbacks that
 * change the set. The real callback and the model make the same decisions
 * from the slot's data, so any divergence shows up in the logs. */

#define SLOTS 3000

enum action { ACT_NONE, ACT_CANCEL, ACT_ADD };

struct slot {
	/* model */
	bool m_alive;
	uint64_t m_deadline, m_period, m_seq;
	/* real */
	struct timer *h;
	bool r_alive;
	/* shared */
	uint64_t period;
	enum action act;
	unsigned victim;
};

static struct slot slots[SLOTS];
static unsigned nslots;
static uint64_t m_seq;
static struct timer_set *rts;
static uint64_t r_now;
static unsigned m_log[LOG_MAX], m_log_n, r_log[LOG_MAX], r_log_n;

static unsigned rnd(unsigned n)
{
	return (unsigned)(random() % n);
}

static void real_fire(void *arg);

/* A timer added from the test body: registered in both worlds at once. */
static unsigned new_slot(uint64_t now, uint64_t delay, uint64_t period)
{
	unsigned id = nslots++;
	struct slot *s = &slots[id];

	assert_true(id < SLOTS);
	*s = (struct slot){ .m_alive = true, .m_deadline = now + delay, .m_period = period,
			    .m_seq = m_seq++, .r_alive = true };
	s->act = (enum action[]){ ACT_NONE, ACT_NONE, ACT_CANCEL, ACT_ADD }[rnd(4)];
	s->period = period;
	s->victim = rnd(id + 1);		/* may be itself */
	s->h = timer_add(rts, now, delay, period, real_fire, (void *)(uintptr_t)id);
	assert_non_null(s->h);
	return id;
}

/* Parameters of a timer added from a callback: derived from the slot, since
 * the model must add the same one. */
static uint64_t child_delay(unsigned id) { return id % 7; }
static uint64_t child_period(unsigned id) { return id % 5 == 0 ? 3 + id % 11 : 0; }

static void real_fire(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct slot *s = &slots[id];

	assert_true(s->r_alive);
	r_log[r_log_n++] = id;
	if (s->act == ACT_CANCEL && slots[s->victim].r_alive) {
		timer_cancel(rts, slots[s->victim].h);
		slots[s->victim].r_alive = false;
	} else if (s->act == ACT_ADD && nslots < SLOTS - 1) {
		/* The model mirrors this add in model_run(). */
		unsigned c = nslots++;
		struct slot *k = &slots[c];

		*k = (struct slot){ .r_alive = true, .period = child_period(id), .act = ACT_NONE,
				    .victim = c };
		k->h = timer_add(rts, r_now, child_delay(id), child_period(id), real_fire,
				 (void *)(uintptr_t)c);
		assert_non_null(k->h);
	}
	if (s->r_alive && s->period == 0)
		s->r_alive = false;	/* a fired one-shot is gone */
}

/* Returns the index after the last child slot it added. */
static unsigned model_run(uint64_t now, unsigned first_child)
{
	uint64_t run_seq = m_seq;
	unsigned child = first_child;

	for (;;) {
		struct slot *best = NULL;

		for (unsigned i = 0; i < nslots; i++) {
			struct slot *s = &slots[i];

			if (!s->m_alive || s->m_deadline > now || s->m_seq >= run_seq)
				continue;
			if (!best || s->m_deadline < best->m_deadline ||
			    (s->m_deadline == best->m_deadline && s->m_seq < best->m_seq))
				best = s;
		}
		if (!best)
			return child;
		m_log[m_log_n++] = (unsigned)(best - slots);
		if (best->m_period)
			best->m_deadline += ((now - best->m_deadline) / best->m_period + 1) *
					    best->m_period;
		else
			best->m_alive = false;
		if (best->act == ACT_CANCEL) {
			slots[best->victim].m_alive = false;
		} else if (best->act == ACT_ADD && child < nslots) {
			/* The real run already created this slot, in the same order. */
			unsigned id = (unsigned)(best - slots);
			struct slot *k = &slots[child++];

			k->m_alive = true;
			k->m_deadline = now + child_delay(id);
			k->m_period = child_period(id);
			k->m_seq = m_seq++;
		}
	}
}

static void check_worlds_agree(void)
{
	unsigned alive = 0;
	uint64_t next = UINT64_MAX;

	assert_int_equal(r_log_n, m_log_n);
	for (unsigned i = 0; i < r_log_n; i++)
		assert_int_equal(r_log[i], m_log[i]);
	for (unsigned i = 0; i < nslots; i++) {
		assert_int_equal(slots[i].m_alive, slots[i].r_alive);
		if (slots[i].m_alive) {
			alive++;
			if (slots[i].m_deadline < next)
				next = slots[i].m_deadline;
		}
	}
	assert_int_equal(timer_set_count(rts), alive);
	assert_int_equal(timer_set_next(rts), next);
}

static void test_random_vs_model(void **state)
{
	uint64_t now = 1000;
	unsigned first_child;

	(void)state;
	srandom(12345);
	rts = timer_set_create();
	nslots = 0;
	m_seq = 0;
	for (unsigned step = 0; step < 3000 && nslots < SLOTS - 64; step++) {
		unsigned op = rnd(10);

		if (op < 5) {
			/* Small delays so that ties are common. */
			uint64_t period = rnd(3) == 0 ? 1 + rnd(40) : 0;

			new_slot(now, rnd(60), period);
		} else if (op < 7 && nslots) {
			struct slot *s = &slots[rnd(nslots)];

			if (s->r_alive) {
				timer_cancel(rts, s->h);
				s->r_alive = false;
				s->m_alive = false;
			}
		} else {
			unsigned fired;

			first_child = nslots;

			now += rnd(4) == 0 ? rnd(200) : rnd(15);
			r_log_n = m_log_n = 0;
			r_now = now;
			fired = timer_set_run(rts, now);
			assert_int_equal(fired, r_log_n);
			/* Every timer the real callbacks added, the model added too. */
			assert_int_equal(model_run(now, first_child), nslots);
			check_worlds_agree();
		}
	}
	/* One far run: fires everything once (periodic timers re-arm). */
	r_log_n = m_log_n = 0;
	r_now = now + 10000;
	first_child = nslots;
	timer_set_run(rts, r_now);
	assert_int_equal(model_run(r_now, first_child), nslots);
	check_worlds_agree();
	assert_true(nslots > 1000);
	timer_set_destroy(rts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_ties),
		cmocka_unit_test(test_periodic_skips_missed),
		cmocka_unit_test(test_cancel_before_fire),
		cmocka_unit_test(test_cancel_from_callback),
		cmocka_unit_test(test_self_cancel),
		cmocka_unit_test(test_add_from_callback),
		cmocka_unit_test(test_next_tracks_changes),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_random_vs_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
