/* timer.h — one-shot and periodic timers on a binary min-heap.
 *
 * Contract: a timer_set belongs to one thread (its reactor); nothing here locks.
 * Times are microseconds on a monotonic clock supplied by the caller, so the
 * module is testable with a fake clock. timer_set_run() fires every timer whose
 * deadline is <= now, in deadline order (ties in insertion order); a periodic
 * timer is re-armed at deadline + period (skipping missed periods, never
 * firing more than once per run). A callback may add or cancel timers,
 * including itself; a timer added by a callback fires on a later run even if
 * already due, so a callback re-adding itself with delay 0 cannot hold the
 * loop. Cancelling frees the timer; a fired one-shot timer is freed after its
 * callback returns, so its handle must not be used after that.
 */
#ifndef LICH_CORE_TIMER_H
#define LICH_CORE_TIMER_H

#include <stdint.h>

typedef void (*timer_fn)(void *arg);

struct timer;
struct timer_set;

struct timer_set *timer_set_create(void);
/* Frees every pending timer without firing it. */
void timer_set_destroy(struct timer_set *ts);
/* Fires at now_us + delay_us; repeats every period_us if period_us > 0.
 * Returns NULL on allocation failure. */
struct timer *timer_add(struct timer_set *ts, uint64_t now_us, uint64_t delay_us,
			uint64_t period_us, timer_fn fn, void *arg);
void timer_cancel(struct timer_set *ts, struct timer *t);
/* Fires due timers; returns how many fired. */
unsigned timer_set_run(struct timer_set *ts, uint64_t now_us);
/* Deadline of the earliest timer, or UINT64_MAX when none. */
uint64_t timer_set_next(const struct timer_set *ts);
unsigned timer_set_count(const struct timer_set *ts);

/* Monotonic clock in microseconds. */
uint64_t clock_now_us(void);

#endif
