/* test_reactor.c — reactors on real threads: messages, timers, events, shutdown.
 *
 * cmocka's assertions longjmp, so they are only used on the test thread after
 * reactors_run() returned; reactor code records what it saw in globals. Every
 * run arms a safety timer that stops the reactors, and alarm() kills the binary
 * if even that does not help, so a bug shows as a failure, never as a hang. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/reactor.h"

#define SAFETY_US	(5 * 1000 * 1000)

static atomic_bool timed_out;
static pthread_t test_thread;

static struct reactor_opts opts_for(enum poll_mode mode, unsigned n, unsigned ring_size)
{
	struct reactor_opts o = {
		.ncores = n, .mode = mode, .mem_limit = 16u << 20,
		.no_hugepages = true, .ring_size = ring_size,
	};

	for (unsigned i = 0; i < REACTOR_MAX; i++)
		o.cores[i] = -1;
	return o;
}

static void safety_fire(void *arg)
{
	(void)arg;
	atomic_store(&timed_out, true);
	reactors_stop();
}

static void arm_safety(struct reactor *r)
{
	reactor_timer_add(r, SAFETY_US, 0, safety_fire, NULL);
}

static void stop_cb(void *arg)
{
	(void)arg;
	reactors_stop();
}

static void init_ok(const struct reactor_opts *o)
{
	assert_int_equal(reactors_init(o), 0);
	atomic_store(&timed_out, false);
}

static int run(void (*start)(struct reactor *r, void *arg), void *arg)
{
	int rc;

	alarm(20);
	rc = reactors_run(start, arg);
	alarm(0);
	return rc;
}

static bool on(unsigned id)
{
	return reactor_self() == reactor_get(id) && reactor_self() != NULL;
}

/* ---- setup, parsing, errors ---- */

static void stop_now(struct reactor *r, void *arg)
{
	(void)r;
	atomic_fetch_add((atomic_uint *)arg, 1);
	reactors_stop();
}

static void test_init_errors_and_accessors(void **state)
{
	struct reactor_opts o = opts_for(POLL_SLEEP, 2, 0);
	enum poll_mode m;
	atomic_uint starts = 0;

	(void)state;
	assert_int_equal(poll_mode_parse("busy", &m), 0);
	assert_int_equal(m, POLL_BUSY);
	assert_int_equal(poll_mode_parse("adaptive", &m), 0);
	assert_int_equal(m, POLL_ADAPTIVE);
	assert_int_equal(poll_mode_parse("sleep", &m), 0);
	assert_int_equal(m, POLL_SLEEP);
	assert_int_equal(poll_mode_parse("spin", &m), -EINVAL);

	assert_int_equal(reactors_run(NULL, NULL), -EINVAL);
	o.ring_size = 6;
	assert_int_equal(reactors_init(&o), -EINVAL);
	o.ring_size = 0;
	o.ncores = REACTOR_MAX + 1;
	assert_int_equal(reactors_init(&o), -EINVAL);
	o.ncores = 2;
	o.cores[1] = -2;
	assert_int_equal(reactors_init(&o), -EINVAL);
	o.cores[1] = -1;

	init_ok(&o);
	assert_int_equal(reactors_init(&o), -EBUSY);
	assert_int_equal(reactor_count(), 2);
	assert_null(reactor_get(2));
	assert_int_equal(reactor_id(reactor_get(1)), 1);
	assert_int_equal(reactor_core(reactor_get(1)), -1);
	assert_non_null(reactor_pool(reactor_get(0)));
	assert_ptr_not_equal(reactor_pool(reactor_get(0)), reactor_pool(reactor_get(1)));
	assert_int_equal(reactor_poll_mode(), POLL_SLEEP);
	assert_null(reactor_self());
	/* Not on a reactor: the reactor-only calls refuse. */
	assert_int_equal(reactor_send(1, NULL, NULL, NULL), -EPERM);
	assert_int_equal(reactor_defer(NULL, NULL, NULL), -EPERM);
	assert_int_equal(reactor_send_ext(2, NULL, NULL, NULL), -EINVAL);
	reactors_fini();
	assert_int_equal(reactor_count(), 0);

	/* ncores 0 means one reactor, on this thread. */
	o = opts_for(POLL_BUSY, 0, 0);
	init_ok(&o);
	assert_int_equal(reactor_count(), 1);
	assert_int_equal(run(stop_now, &starts), 0);
	assert_int_equal(starts, 1);
	assert_int_equal(reactor_count(), 0);
}

/* ---- cross-reactor ping-pong ---- */

#define PINGS  20000


static struct {
	uintptr_t window;	/* pings in flight */
	unsigned pings, pongs, bad;
	pthread_t thread[2];
	bool started[2];
	struct reactor_stats st[2];
} pp;

static void pong(void *a, void *b);

static void ping(void *a, void *b)
{
	uintptr_t i = (uintptr_t)a;

	(void)b;
	if (!on(1) || i != pp.pings)
		pp.bad++;
	pp.pings++;
	if (reactor_send(0, pong, a, NULL))
		pp.bad++;
	/* Stopping here leaves pongs in flight: reactor 0 must still get them. */
	if (pp.pings == PINGS)
		reactors_stop();
}

static void pong(void *a, void *b)
{
	uintptr_t i = (uintptr_t)a;

	(void)b;
	if (!on(0) || i != pp.pongs)
		pp.bad++;
	pp.pongs++;
	if (i + pp.window < PINGS && reactor_send(1, ping, (void *)(i + pp.window), NULL))
		pp.bad++;
}

static bool pp_stats_hook(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;

	reactor_get_stats(reactor_self(), &pp.st[id]);
	return true;
}

static void pp_start(struct reactor *r, void *arg)
{
	unsigned id = reactor_id(r);

	(void)arg;
	pp.thread[id] = pthread_self();
	pp.started[id] = reactor_self() == r;
	reactor_stop_hook_add(r, pp_stats_hook, (void *)(uintptr_t)id);
	if (id != 0)
		return;
	arm_safety(r);
	for (uintptr_t i = 0; i < pp.window; i++)
		reactor_send(1, ping, (void *)i, NULL);
}

static void ping_pong(enum poll_mode mode, uintptr_t window)
{
	struct reactor_opts o = opts_for(mode, 2, 0);

	memset(&pp, 0, sizeof(pp));
	pp.window = window;
	init_ok(&o);
	assert_int_equal(run(pp_start, NULL), 0);
	assert_false(atomic_load(&timed_out));
	assert_true(reactors_stopping());
	assert_int_equal(pp.bad, 0);
	assert_int_equal(pp.pings, PINGS);
	assert_int_equal(pp.pongs, PINGS);
	/* Reactor 0 is the caller's thread, reactor 1 another one. */
	assert_true(pp.started[0] && pp.started[1]);
	assert_true(pthread_equal(pp.thread[0], test_thread));
	assert_false(pthread_equal(pp.thread[1], test_thread));
	assert_true(pp.st[1].msgs >= PINGS);
	assert_true(pp.st[0].turns > 0 && pp.st[1].turns > 0);
	assert_true(pp.st[1].busy_turns > 0 && pp.st[1].busy_turns <= pp.st[1].turns);
	if (mode == POLL_BUSY)
		assert_int_equal(pp.st[0].sleeps + pp.st[1].sleeps, 0);
}

/* A wide window keeps busy mode quick even when both threads share one CPU
 * and only swap once per time slice. */
static void test_ping_pong_sleep(void **state) { (void)state; ping_pong(POLL_SLEEP, 256); }
static void test_ping_pong_adaptive(void **state) { (void)state; ping_pong(POLL_ADAPTIVE, 256); }
static void test_ping_pong_busy(void **state) { (void)state; ping_pong(POLL_BUSY, 256); }
/* One message at a time: each one races the receiver going to sleep, so a
 * lost wakeup would stall the exchange (until the safety timer fails it). */
static void test_ping_pong_sleep_one(void **state) { (void)state; ping_pong(POLL_SLEEP, 1); }

/* ---- reactor_defer ---- */

static struct {
	unsigned order[8], norder;
	uint64_t turn_a, turn_d;
	unsigned spins;
	bool timer_fired, bad;
} df;

static uint64_t turns_now(void)
{
	struct reactor_stats st;

	reactor_get_stats(reactor_self(), &st);
	return st.turns;
}

/* Re-defers itself until a timer fires: deferred work must not starve timers. */
static void df_spin(void *a, void *b)
{
	(void)a;
	(void)b;
	df.spins++;
	if (df.timer_fired)
		reactors_stop();
	else if (reactor_defer(df_spin, NULL, NULL))
		df.bad = true;
}

static void df_d(void *a, void *b)
{
	(void)a;
	(void)b;
	df.turn_d = turns_now();
	df.order[df.norder++] = 4;
	reactor_defer(df_spin, NULL, NULL);
}

static void df_step(void *a, void *b)
{
	unsigned v = (unsigned)(uintptr_t)a;

	(void)b;
	if (!on(0))
		df.bad = true;
	df.order[df.norder++] = v;
	if (v == 1) {
		df.turn_a = turns_now();
		reactor_defer(df_d, NULL, NULL);
	}
}

static void df_timer(void *arg)
{
	(void)arg;
	df.timer_fired = true;
}

static void df_start(struct reactor *r, void *arg)
{
	(void)arg;
	if (reactor_id(r) != 0)
		return;
	arm_safety(r);
	reactor_timer_add(r, 2000, 0, df_timer, NULL);
	for (uintptr_t v = 1; v <= 3; v++)
		reactor_defer(df_step, (void *)v, NULL);
}

static void test_defer(void **state)
{
	struct reactor_opts o = opts_for(POLL_SLEEP, 2, 0);

	(void)state;
	memset(&df, 0, sizeof(df));
	init_ok(&o);
	assert_int_equal(run(df_start, NULL), 0);
	assert_false(atomic_load(&timed_out));
	assert_false(df.bad);
	assert_int_equal(df.norder, 4);
	assert_int_equal(df.order[0], 1);
	assert_int_equal(df.order[1], 2);
	assert_int_equal(df.order[2], 3);
	assert_int_equal(df.order[3], 4);
	/* Deferred from a deferred call: ran on a later turn. */
	assert_true(df.turn_d > df.turn_a);
	assert_true(df.timer_fired);
	assert_true(df.spins > 1);
}

/* ---- timers on a reactor ---- */

static struct {
	uint64_t start, oneshot_at, last_tick;
	unsigned oneshot, ticks;
	struct timer *periodic;
	bool bad;
	struct reactor_stats st;
} tm;

static void tm_oneshot(void *arg)
{
	(void)arg;
	tm.oneshot++;
	tm.oneshot_at = reactor_now_us(reactor_self());
}

static void tm_tick(void *arg)
{
	struct reactor *r = arg;
	uint64_t now = reactor_now_us(r);

	/* On the 5 ms grid: tick k never comes before start + k * 5 ms. */
	if (!on(1) || now < tm.start + 5000 * (tm.ticks + 1))
		tm.bad = true;
	tm.last_tick = now;
	if (++tm.ticks == 10) {
		reactor_timer_cancel(r, tm.periodic);
		reactor_get_stats(r, &tm.st);
		reactors_stop();
	}
}

static void tm_start(struct reactor *r, void *arg)
{
	(void)arg;
	if (reactor_id(r) == 0) {
		arm_safety(r);
		return;
	}
	tm.start = reactor_now_us(r);
	reactor_timer_add(r, 20000, 0, tm_oneshot, NULL);
	tm.periodic = reactor_timer_add(r, 5000, 5000, tm_tick, r);
}

static void reactor_timers(enum poll_mode mode)
{
	struct reactor_opts o = opts_for(mode, 2, 0);

	memset(&tm, 0, sizeof(tm));
	init_ok(&o);
	assert_int_equal(run(tm_start, NULL), 0);
	assert_false(atomic_load(&timed_out));
	assert_false(tm.bad);
	assert_int_equal(tm.ticks, 10);
	assert_int_equal(tm.oneshot, 1);
	assert_true(tm.oneshot_at >= tm.start + 20000);
	assert_true(tm.last_tick >= tm.start + 50000);
	/* Sleep and adaptive modes sleep between ticks (not before every one: a
	 * thread preempted past the next deadline fires it without sleeping);
	 * busy never sleeps. */
	if (mode == POLL_BUSY)
		assert_int_equal(tm.st.sleeps, 0);
	else
		assert_true(tm.st.sleeps >= 5);
	if (mode == POLL_SLEEP)
		assert_true(tm.st.turns < 2000);
}

static void test_timers_sleep(void **state) { (void)state; reactor_timers(POLL_SLEEP); }
static void test_timers_adaptive(void **state) { (void)state; reactor_timers(POLL_ADAPTIVE); }
static void test_timers_busy(void **state) { (void)state; reactor_timers(POLL_BUSY); }

/* ---- fd events ---- */

static struct {
	struct reactor_event ev, a, b;
	unsigned calls, ab_calls;
	uint32_t seen[4];
	bool bad;
} fe;

static void fe_cb(void *arg, uint32_t events)
{
	struct reactor *r = arg;

	if (!on(1) || fe.calls >= 4) {
		fe.bad = true;
		return;
	}
	fe.seen[fe.calls++] = events;
	if (fe.calls == 1) {
		uint64_t v;

		if (read(fe.ev.fd, &v, sizeof(v)) != sizeof(v) || v != 7)
			fe.bad = true;
		/* An eventfd is always writable: the next turn reports EPOLLOUT. */
		if (reactor_event_mod(r, &fe.ev, EPOLLOUT))
			fe.bad = true;
	} else {
		/* Deleted while still writable: no further calls. */
		if (reactor_event_del(r, &fe.ev))
			fe.bad = true;
		reactor_timer_add(r, 10000, 0, stop_cb, NULL);
	}
}

static void fe_kick(void *arg)
{
	uint64_t v = 7;

	(void)arg;
	if (write(fe.ev.fd, &v, sizeof(v)) != sizeof(v))
		fe.bad = true;
}

/* On reactor 0: the fd is written from another thread than the one watching
 * it, a little later, so that reactor 1 is asleep by then. */
static void fe_arm(void *a, void *b)
{
	(void)a;
	(void)b;
	reactor_timer_add(reactor_self(), 2000, 0, fe_kick, NULL);
}

static void fe_start(struct reactor *r, void *arg)
{
	(void)arg;
	if (reactor_id(r) == 0) {
		arm_safety(r);
		return;
	}
	fe.ev = (struct reactor_event){ eventfd(0, EFD_NONBLOCK), fe_cb, r };
	if (fe.ev.fd < 0 || reactor_event_add(r, &fe.ev, EPOLLIN) ||
	    reactor_send(0, fe_arm, NULL, NULL))
		fe.bad = true;
}

static void test_fd_event(void **state)
{
	struct reactor_opts o = opts_for(POLL_SLEEP, 2, 0);

	(void)state;
	memset(&fe, 0, sizeof(fe));
	init_ok(&o);
	assert_int_equal(run(fe_start, NULL), 0);
	assert_false(atomic_load(&timed_out));
	assert_false(fe.bad);
	assert_int_equal(fe.calls, 2);
	assert_true(fe.seen[0] & EPOLLIN);
	assert_true(fe.seen[1] & EPOLLOUT);
	assert_false(fe.seen[1] & EPOLLIN);
	close(fe.ev.fd);
}

/* Two fds ready in the same epoll_wait; whichever callback runs first deletes
 * both: the other one must not be called although epoll already reported it. */
static void fe_ab_cb(void *arg, uint32_t events)
{
	struct reactor *r = reactor_self();

	(void)arg;
	(void)events;
	fe.ab_calls++;
	if (reactor_event_del(r, &fe.a) || reactor_event_del(r, &fe.b))
		fe.bad = true;
	reactors_stop();
}

static void fe_ab_start(struct reactor *r, void *arg)
{
	uint64_t one = 1;

	(void)arg;
	arm_safety(r);
	fe.a = (struct reactor_event){ eventfd(0, EFD_NONBLOCK), fe_ab_cb, NULL };
	fe.b = (struct reactor_event){ eventfd(0, EFD_NONBLOCK), fe_ab_cb, NULL };
	if (write(fe.a.fd, &one, sizeof(one)) != sizeof(one) ||
	    write(fe.b.fd, &one, sizeof(one)) != sizeof(one) ||
	    reactor_event_add(r, &fe.a, EPOLLIN) || reactor_event_add(r, &fe.b, EPOLLIN))
		fe.bad = true;
}

static void test_event_del_in_batch(void **state)
{
	struct reactor_opts o = opts_for(POLL_SLEEP, 1, 0);

	(void)state;
	memset(&fe, 0, sizeof(fe));
	init_ok(&o);
	assert_int_equal(run(fe_ab_start, NULL), 0);
	assert_false(atomic_load(&timed_out));
	assert_false(fe.bad);
	assert_int_equal(fe.ab_calls, 1);
	close(fe.a.fd);
	close(fe.b.fd);
}

/* ---- pollers ---- */

static struct {
	struct poller *p;
	unsigned calls, other_calls;
	bool bad;
} pl;

static int pl_self_del(void *arg)
{
	struct reactor *r = arg;

	if (++pl.calls == 100) {
		reactor_poller_del(r, pl.p);
		reactors_stop();
	}
	return 1;
}

static int pl_other(void *arg)
{
	(void)arg;
	pl.other_calls++;
	return 0;
}

static void pl_start(struct reactor *r, void *arg)
{
	(void)arg;
	if (reactor_id(r) != 1) {
		arm_safety(r);
		return;
	}
	pl.p = reactor_poller_add(r, pl_self_del, r);
	if (!pl.p || !reactor_poller_add(r, pl_other, NULL))
		pl.bad = true;
}

static void test_pollers(void **state)
{
	struct reactor_opts o = opts_for(POLL_BUSY, 2, 0);

	(void)state;
	memset(&pl, 0, sizeof(pl));
	init_ok(&o);
	assert_int_equal(run(pl_start, NULL), 0);
	assert_false(atomic_load(&timed_out));
	assert_false(pl.bad);
	assert_int_equal(pl.calls, 100);	/* never called after its deletion */
	assert_true(pl.other_calls > 100);	/* the other one kept running */
}

/* ---- stop hooks ---- */

static struct {
	atomic_uint a_calls[2], b_calls, c_calls, delivered, wrong_thread;
} sh;

static void sh_msg(void *a, void *b)
{
	(void)a;
	(void)b;
	if (!on(1))
		atomic_fetch_add(&sh.wrong_thread, 1);
	atomic_fetch_add(&sh.delivered, 1);
}

/* Done on its 4th call; on reactor 0 it also sends work while shutting down. */
static bool sh_a(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	unsigned n = atomic_fetch_add(&sh.a_calls[id], 1) + 1;

	if (!on(id))
		atomic_fetch_add(&sh.wrong_thread, 1);
	if (id == 0 && n == 1)
		reactor_send(1, sh_msg, NULL, NULL);
	return n >= 4;
}

static bool sh_b(void *arg)
{
	(void)arg;
	atomic_fetch_add(&sh.b_calls, 1);
	return true;
}

/* Removes itself without ever saying done: must not hold up the shutdown. */
static bool sh_c(void *arg)
{
	atomic_fetch_add(&sh.c_calls, 1);
	reactor_stop_hook_del(reactor_self(), sh_c, arg);
	return false;
}

static void sh_start(struct reactor *r, void *arg)
{
	uintptr_t id = reactor_id(r);

	(void)arg;
	reactor_stop_hook_add(r, sh_b, (void *)id);
	reactor_stop_hook_add(r, sh_a, (void *)id);
	reactor_stop_hook_add(r, sh_c, (void *)id);
	reactor_stop_hook_del(r, sh_b, (void *)id);
	if (id == 0)
		arm_safety(r);
	else	/* stopped from reactor 1, not from the thread that runs reactors_run */
		reactor_timer_add(r, 3000, 0, stop_cb, NULL);
}

static void test_stop_hooks(void **state)
{
	struct reactor_opts o = opts_for(POLL_SLEEP, 2, 0);

	(void)state;
	memset(&sh, 0, sizeof(sh));
	init_ok(&o);
	assert_int_equal(run(sh_start, NULL), 0);
	assert_false(atomic_load(&timed_out));
	assert_int_equal(sh.a_calls[0], 4);
	assert_int_equal(sh.a_calls[1], 4);
	assert_int_equal(sh.b_calls, 0);
	assert_int_equal(sh.c_calls, 2);
	assert_int_equal(sh.delivered, 1);
	assert_int_equal(sh.wrong_thread, 0);
}

/* ---- signals ---- */

static struct {
	atomic_uint hooks, reloads, wrong_thread;
	int signo;
} sg;

static bool sg_hook(void *arg)
{
	(void)arg;
	atomic_fetch_add(&sg.hooks, 1);
	return true;
}

static void sg_send(void *arg)
{
	(void)arg;
	kill(getpid(), sg.signo);
}

static void sg_reload(void *arg)
{
	if (arg != &sg || !on(0))
		atomic_fetch_add(&sg.wrong_thread, 1);
	atomic_fetch_add(&sg.reloads, 1);
	reactors_stop();
}

static void sg_start(struct reactor *r, void *arg)
{
	(void)arg;
	reactor_stop_hook_add(r, sg_hook, NULL);
	if (reactor_id(r) == 0)
		arm_safety(r);
	else
		reactor_timer_add(r, 2000, 0, sg_send, NULL);
}

static void run_signal(int signo)
{
	struct reactor_opts o = opts_for(POLL_SLEEP, 2, 0);

	memset(&sg, 0, sizeof(sg));
	sg.signo = signo;
	reactors_set_reload_hook(sg_reload, &sg);
	init_ok(&o);
	assert_int_equal(run(sg_start, NULL), 0);
	reactors_set_reload_hook(NULL, NULL);
	assert_false(atomic_load(&timed_out));
	assert_int_equal(sg.hooks, 2);
	assert_int_equal(sg.wrong_thread, 0);
	assert_int_equal(sg.reloads, signo == SIGHUP ? 1 : 0);
}

static void test_sigterm(void **state) { (void)state; run_signal(SIGTERM); }
static void test_sigint(void **state) { (void)state; run_signal(SIGINT); }
static void test_sighup_reload(void **state) { (void)state; run_signal(SIGHUP); }

/* ---- overflow: far more messages than a ring holds ---- */

#define OVF_MSGS 6000
#define OVF_FIRST 1000	/* sent at once; the rest a few per turn while 1 drains */
#define OVF_EXT  100
#define OVF_SELF 500

static struct {
	unsigned got, ext_got[2], self_got;
	uintptr_t sent;
	bool bad;
} ov;

static void ov_maybe_stop(void)
{
	if (ov.got == OVF_MSGS && ov.ext_got[1] == OVF_EXT)
		reactors_stop();
}

static void ov_msg(void *a, void *b)
{
	(void)b;
	if (!on(1) || (uintptr_t)a != ov.got)
		ov.bad = true;
	ov.got++;
	ov_maybe_stop();
}

static void ov_ext(void *a, void *b)
{
	unsigned id = (unsigned)(uintptr_t)b;

	if (!on(id) || (uintptr_t)a != ov.ext_got[id])
		ov.bad = true;
	ov.ext_got[id]++;
	if (id == 1)
		ov_maybe_stop();
}

static void ov_self(void *a, void *b)
{
	(void)b;
	if (!on(0) || (uintptr_t)a != ov.self_got)
		ov.bad = true;
	ov.self_got++;
}

static void ov_send_upto(uintptr_t n)
{
	for (; ov.sent < n; ov.sent++)
		if (reactor_send(1, ov_msg, (void *)ov.sent, NULL))
			ov.bad = true;
}

static void ov_more(void *a, void *b)
{
	(void)a;
	(void)b;
	ov_send_upto(ov.sent + 7 < OVF_MSGS ? ov.sent + 7 : OVF_MSGS);
	if (ov.sent < OVF_MSGS && reactor_defer(ov_more, NULL, NULL))
		ov.bad = true;
}

static void ov_start(struct reactor *r, void *arg)
{
	(void)arg;
	if (reactor_id(r) == 1) {
		/* Not draining while reactor 0 floods: 8 fit, the rest overflow. */
		usleep(20000);
		return;
	}
	arm_safety(r);
	ov_send_upto(OVF_FIRST);
	/* Meanwhile reactor 1 wakes up and empties the ring: these must still
	 * queue behind the overflow, not jump into the free ring. */
	usleep(40000);
	ov_send_upto(OVF_FIRST + 7);
	if (reactor_defer(ov_more, NULL, NULL))
		ov.bad = true;
	for (uintptr_t i = 0; i < OVF_SELF; i++)
		if (reactor_defer(ov_self, (void *)i, NULL))
			ov.bad = true;
}

static void test_overflow(void **state)
{
	struct reactor_opts o = opts_for(POLL_SLEEP, 2, 8);

	(void)state;
	memset(&ov, 0, sizeof(ov));
	init_ok(&o);
	/* Nobody drains before run: the ext rings overflow too. */
	for (uintptr_t i = 0; i < OVF_EXT; i++) {
		assert_int_equal(reactor_send_ext(1, ov_ext, (void *)i, (void *)1), 0);
		assert_int_equal(reactor_send_ext(0, ov_ext, (void *)i, (void *)0), 0);
	}
	assert_int_equal(run(ov_start, NULL), 0);
	assert_false(atomic_load(&timed_out));
	assert_false(ov.bad);
	assert_int_equal(ov.got, OVF_MSGS);
	assert_int_equal(ov.ext_got[0], OVF_EXT);
	assert_int_equal(ov.ext_got[1], OVF_EXT);
	assert_int_equal(ov.self_got, OVF_SELF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_errors_and_accessors),
		cmocka_unit_test(test_ping_pong_sleep),
		cmocka_unit_test(test_ping_pong_adaptive),
		cmocka_unit_test(test_ping_pong_busy),
		cmocka_unit_test(test_ping_pong_sleep_one),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_timers_sleep),
		cmocka_unit_test(test_timers_adaptive),
		cmocka_unit_test(test_timers_busy),
		cmocka_unit_test(test_fd_event),
		cmocka_unit_test(test_event_del_in_batch),
		cmocka_unit_test(test_pollers),
		cmocka_unit_test(test_stop_hooks),
		cmocka_unit_test(test_sigterm),
		cmocka_unit_test(test_sigint),
		cmocka_unit_test(test_sighup_reload),
		cmocka_unit_test(test_overflow),
	};

	test_thread = pthread_self();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
