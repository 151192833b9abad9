/* timer.c — timers on a binary min-heap; see include/core/timer.h. */
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "core/timer.h"

/* idx value of the one-shot timer whose callback is running (it has left the
 * heap but is not freed yet). */
#define IDX_FIRING UINT32_MAX

struct timer {
	uint64_t deadline;
	uint64_t period;
	uint64_t seq;		/* insertion order, breaks deadline ties */
	timer_fn fn;
	void *arg;
	uint32_t idx;		/* position in heap[], or IDX_FIRING */
};

struct timer_set {
	struct timer **heap;
	uint32_t n, cap;
	uint64_t next_seq;
	/* During timer_set_run(): timers with seq >= run_seq were added by a
	 * callback of this run and wait for the next one, so a callback re-adding
	 * itself with delay 0 cannot spin the loop forever. */
	bool running;
	uint64_t run_now, run_seq;
	struct timer *firing;	/* one-shot in its callback; NULL once cancelled */
};

static bool before(const struct timer *a, const struct timer *b)
{
	return a->deadline < b->deadline ||
	       (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(struct timer_set *ts, uint32_t i, struct timer *t)
{
	ts->heap[i] = t;
	t->idx = i;
}

static void sift_up(struct timer_set *ts, uint32_t i)
{
	struct timer *t = ts->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!before(t, ts->heap[parent]))
			break;
		place(ts, i, ts->heap[parent]);
		i = parent;
	}
	place(ts, i, t);
}

static void sift_down(struct timer_set *ts, uint32_t i)
{
	struct timer *t = ts->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= ts->n)
			break;
		if (c + 1 < ts->n && before(ts->heap[c + 1], ts->heap[c]))
			c++;
		if (!before(ts->heap[c], t))
			break;
		place(ts, i, ts->heap[c]);
		i = c;
	}
	place(ts, i, t);
}

/* Takes heap[i] out, filling the hole with the last element. */
static void heap_remove(struct timer_set *ts, uint32_t i)
{
	struct timer *last = ts->heap[--ts->n];

	if (i == ts->n)
		return;
	place(ts, i, last);
	if (i > 0 && before(last, ts->heap[(i - 1) / 2]))
		sift_up(ts, i);
	else
		sift_down(ts, i);
}

struct timer_set *timer_set_create(void)
{
	return calloc(1, sizeof(struct timer_set));
}

void timer_set_destroy(struct timer_set *ts)
{
	if (!ts)
		return;
	for (uint32_t i = 0; i < ts->n; i++)
		free(ts->heap[i]);
	free(ts->heap);
	free(ts);
}

struct timer *timer_add(struct timer_set *ts, uint64_t now_us, uint64_t delay_us,
			uint64_t period_us, timer_fn fn, void *arg)
{
	struct timer *t;

	if (ts->n == ts->cap) {
		uint32_t cap = ts->cap ? ts->cap * 2 : 16;
		struct timer **heap = realloc(ts->heap, cap * sizeof(*heap));

		if (!heap)
			return NULL;
		ts->heap = heap;
		ts->cap = cap;
	}
	t = malloc(sizeof(*t));
	if (!t)
		return NULL;
	t->deadline = now_us + delay_us;
	/* A deadline before the running batch's clock is due either way; lifting
	 * it to that clock keeps every new timer behind the batch's older ones in
	 * heap order, which is what lets the run stop at the first new timer. */
	if (ts->running && t->deadline < ts->run_now)
		t->deadline = ts->run_now;
	t->period = period_us;
	t->seq = ts->next_seq++;
	t->fn = fn;
	t->arg = arg;
	ts->heap[ts->n] = t;
	sift_up(ts, ts->n++);
	return t;
}

void timer_cancel(struct timer_set *ts, struct timer *t)
{
	if (!t)
		return;
	if (t->idx == IDX_FIRING)
		ts->firing = NULL;	/* tells timer_set_run it is already freed */
	else
		heap_remove(ts, t->idx);
	free(t);
}

unsigned timer_set_run(struct timer_set *ts, uint64_t now_us)
{
	unsigned fired = 0;

	if (ts->running)
		return 0;
	ts->running = true;
	ts->run_now = now_us;
	ts->run_seq = ts->next_seq;
	while (ts->n > 0) {
		struct timer *t = ts->heap[0];

		if (t->deadline > now_us || t->seq >= ts->run_seq)
			break;
		fired++;
		if (t->period) {
			/* Re-armed before the callback so that it sees itself pending
			 * and can cancel itself like any other timer. */
			uint64_t missed = (now_us - t->deadline) / t->period;

			t->deadline += (missed + 1) * t->period;
			sift_down(ts, 0);
			t->fn(t->arg);
			continue;
		}
		heap_remove(ts, 0);
		t->idx = IDX_FIRING;
		ts->firing = t;
		t->fn(t->arg);
		if (ts->firing == t)
			free(t);
		ts->firing = NULL;
	}
	ts->running = false;
	return fired;
}

uint64_t timer_set_next(const struct timer_set *ts)
{
	return ts->n ? ts->heap[0]->deadline : UINT64_MAX;
}

unsigned timer_set_count(const struct timer_set *ts)
{
	return ts->n;
}

uint64_t clock_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
