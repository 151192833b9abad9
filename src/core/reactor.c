/* reactor.c — one event loop per core; see include/core/reactor.h.
 *
 * Messages between reactors go through an n x n matrix of SPSC rings, so the hot
 * path takes no lock. A ring that is full spills into the sender's own overflow
 * list, flushed at the start of each of its turns. A reactor about to block in
 * epoll_wait first announces it (sleeping = true) and then looks at its rings
 * once more; a sender looks at that flag after pushing and writes the eventfd
 * only if it is set. One of the two always sees the other (Dekker pattern with
 * a full fence on each side), so no wakeup is lost and none is paid for while
 * the receiver is awake. A reactor's calls to itself (reactor_defer) skip the
 * rings: a plain array FIFO that only its own thread touches.
 *
 * Per turn, what costs nothing when idle stays off the path: the timer set is
 * looked at only once its cached earliest deadline is due, and the ring from
 * non-reactor threads (setup only) only when a sender flagged it.
 */
#include <errno.h>
#include <limits.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/reactor.h"
#include "mem/pool.h"

#define MAX_EVENTS		64
#define RING_BURST		64	/* per ring per turn: one busy sender cannot starve the rest */
#define ADAPTIVE_SPIN_US	100
#define STOP_POLL_MS		1	/* how often a pending stop hook is asked again */
#define DEFAULT_RING_SIZE	4096
#define DEFAULT_MEM_LIMIT	((size_t)1 << 30)

struct poller {
	poller_fn fn;		/* NULL once deleted; freed by the next sweep */
	void *arg;
	struct poller *next;
};

struct stop_hook {
	stop_fn fn;		/* NULL once deleted; freed by the next sweep */
	void *arg;
	bool done;
	struct stop_hook *next;
};

struct ovf_node {
	struct ovf_node *next;
	struct ring_msg m;
};

/* Messages that did not fit in a ring, oldest first. Only the sender touches the
 * list; `pending` is for the receiver, which must not leave its loop while
 * something still waits for it here. */
struct outq {
	struct ovf_node *head, *tail;
	_Atomic bool pending;
};

struct reactor {
	unsigned id;
	int core;
	char name[20];
	pthread_t thread;
	bool thread_started;
	int epfd, wakefd, sigfd;
	struct reactor_event wake_ev, sig_ev;
	struct timer_set *timers;
	struct mem_pool *pool;
	struct poller *pollers;
	bool pollers_dirty;
	struct stop_hook *hooks;
	bool hooks_dirty;
	bool hooks_done;
	struct outq *out;	/* [to]: overflow of ring [id][to] */
	/* Calls to this reactor from itself (reactor_defer, reactor_send to
	 * self): only this thread touches them, so a plain array FIFO instead of
	 * the self ring's atomics. Overflow goes to out[id] like any ring's. */
	struct ring_msg *dq;
	uint32_t dq_head, dq_tail, dq_mask;
	struct spsc_ring **in;	/* rings [from][id] of the other reactors */
	unsigned nin;
	unsigned out_busy;	/* non-empty lists in out[] */
	struct spsc_ring *ext;	/* from non-reactor threads; producers hold ext_lock */
	struct outq ext_q;	/* overflow of ext, also under ext_lock */
	_Atomic bool ext_sent;	/* something was sent to ext or ext_q since the last look */
	pthread_mutex_t ext_lock;
	uint64_t now;
	uint64_t last_work;
	/* No timer is due before this (the earliest deadline, or earlier when a
	 * timer was cancelled since): the turn skips the timer set until then. */
	uint64_t timer_next;
	struct epoll_event evs[MAX_EVENTS];
	int nevs, ev_pos;	/* batch being dispatched, for reactor_event_del */
	struct {
		_Atomic uint64_t turns, busy_turns, sleeps, msgs, events;
	} st;
	/* Senders write this one: keep it off the lines the owner writes per turn. */
	alignas(64) _Atomic bool sleeping;
} __attribute__((aligned(64)));

static struct {
	bool inited, running;
	unsigned n;
	unsigned nsetup;		/* reactors whose setup began (teardown undoes them) */
	enum poll_mode mode;
	struct reactor *r;
	struct spsc_ring **rings;	/* [from * n + to]; [i * n + i] NULL (a reactor's dq) */
	_Atomic bool stopping;
	_Atomic unsigned hooks_done;	/* reactors whose stop hooks all returned true */
	void (*reload_fn)(void *arg);
	void *reload_arg;
	void (*start_fn)(struct reactor *r, void *arg);
	void *start_arg;
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
	int gate;			/* 0 wait, 1 run, -1 give up */
} g = {
	.gate_lock = PTHREAD_MUTEX_INITIALIZER,
	.gate_cond = PTHREAD_COND_INITIALIZER,
};

static __thread struct reactor *tls_self;

static struct spsc_ring *ring_of(unsigned from, unsigned to)
{
	return g.rings[from * g.n + to];
}

static bool dq_full(const struct reactor *r)
{
	return r->dq_tail - r->dq_head > r->dq_mask;
}

/* Only the owner writes its counters (others may read them): a plain load and
 * store is enough and avoids a locked instruction per turn. */
static void stat_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static void kick(struct reactor *t)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is already huge: t has a wakeup pending anyway. */
	ssize_t n = write(t->wakefd, &one, sizeof(one));

	(void)n;
}

/* After a push to t. Pairs with the fence in pick_timeout(). */
static void wake(struct reactor *t)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&t->sleeping, memory_order_relaxed) &&
	    atomic_exchange_explicit(&t->sleeping, false, memory_order_relaxed))
		kick(t);
}

static void wake_all(void)
{
	for (unsigned i = 0; i < g.nsetup; i++)
		kick(&g.r[i]);
}

/* ---- overflow lists ---- */

static int outq_append(struct outq *q, const struct ring_msg *m)
{
	struct ovf_node *node = malloc(sizeof(*node));

	if (!node)
		return -ENOMEM;
	node->next = NULL;
	node->m = *m;
	if (q->tail) {
		q->tail->next = node;
	} else {
		q->head = node;
		atomic_store(&q->pending, true);
	}
	q->tail = node;
	return 0;
}

/* Moves what fits into ring — or, with ring NULL, into self's own FIFO (its
 * overflow to itself) — oldest first; returns how many moved. */
static unsigned outq_flush_into(struct outq *q, struct spsc_ring *ring, struct reactor *self)
{
	unsigned n = 0;

	while (q->head) {
		struct ovf_node *node = q->head;

		if (ring ? spsc_ring_push(ring, &node->m) != 0 : dq_full(self))
			break;
		if (!ring)
			self->dq[self->dq_tail++ & self->dq_mask] = node->m;
		q->head = node->next;
		free(node);
		n++;
	}
	if (!q->head) {
		q->tail = NULL;
		/* After the pushes: a receiver that sees false also sees them. */
		atomic_store(&q->pending, false);
	}
	return n;
}

static unsigned outq_flush(struct outq *q, struct spsc_ring *ring)
{
	return outq_flush_into(q, ring, NULL);
}

static unsigned outq_free(struct outq *q)
{
	unsigned n = 0;

	while (q->head) {
		struct ovf_node *node = q->head;

		q->head = node->next;
		free(node);
		n++;
	}
	q->tail = NULL;
	return n;
}

/* ---- messages ---- */

static int send_from(struct reactor *self, unsigned to, const struct ring_msg *m)
{
	struct outq *q = &self->out[to];
	bool was_empty = !q->head;
	int rc;

	/* Behind a non-empty overflow list a direct push would overtake it. */
	if (was_empty) {
		if (to == self->id) {
			if (!dq_full(self)) {
				self->dq[self->dq_tail++ & self->dq_mask] = *m;
				return 0;
			}
		} else if (spsc_ring_push(ring_of(self->id, to), m) == 0) {
			wake(&g.r[to]);
			return 0;
		}
	}
	rc = outq_append(q, m);
	if (rc == 0 && was_empty)
		self->out_busy++;
	return rc;
}

int reactor_send(unsigned to, ring_fn fn, void *a, void *b)
{
	struct ring_msg m = { fn, a, b };

	if (!tls_self)
		return -EPERM;
	if (to >= g.n)
		return -EINVAL;
	return send_from(tls_self, to, &m);
}

int reactor_defer(ring_fn fn, void *a, void *b)
{
	struct ring_msg m = { fn, a, b };

	if (!tls_self)
		return -EPERM;
	return send_from(tls_self, tls_self->id, &m);
}

int reactor_send_ext(unsigned to, ring_fn fn, void *a, void *b)
{
	struct ring_msg m = { fn, a, b };
	struct reactor *t;
	int rc = 0;

	if (!g.inited || to >= g.n)
		return -EINVAL;
	t = &g.r[to];
	pthread_mutex_lock(&t->ext_lock);
	outq_flush(&t->ext_q, t->ext);
	if (t->ext_q.head || spsc_ring_push(t->ext, &m) != 0)
		rc = outq_append(&t->ext_q, &m);
	pthread_mutex_unlock(&t->ext_lock);
	if (rc == 0) {
		/* After the push: a receiver that sees the flag sees the message. */
		atomic_store(&t->ext_sent, true);
		wake(t);
	}
	return rc;
}

static unsigned flush_out(struct reactor *r)
{
	unsigned moved = 0;

	for (unsigned to = 0; r->out_busy && to < g.n; to++) {
		struct outq *q = &r->out[to];
		unsigned k;

		if (!q->head)
			continue;
		if (to == r->id) {
			k = outq_flush_into(q, NULL, r);
		} else {
			k = outq_flush(q, ring_of(r->id, to));
			if (k)
				wake(&g.r[to]);
		}
		if (!q->head)
			r->out_busy--;
		moved += k;
	}
	return moved;
}

static unsigned drain_ring(struct spsc_ring *ring)
{
	struct ring_msg batch[RING_BURST];
	unsigned n = spsc_ring_pop_burst(ring, batch, RING_BURST);

	/* Popped first, run after: what these calls send to this same ring waits
	 * for the next turn, so a message re-sending itself cannot hold the loop. */
	for (unsigned i = 0; i < n; i++)
		batch[i].fn(batch[i].a, batch[i].b);
	return n;
}

/* Like drain_ring: what was queued when it starts (RING_BURST at most), so a
 * call deferring itself waits for the next turn. */
static unsigned drain_self(struct reactor *r)
{
	uint32_t end = r->dq_tail;
	unsigned n;

	if (end - r->dq_head > RING_BURST)
		end = r->dq_head + RING_BURST;
	n = end - r->dq_head;
	while (r->dq_head != end) {
		struct ring_msg m = r->dq[r->dq_head & r->dq_mask];

		r->dq_head++;
		m.fn(m.a, m.b);
	}
	return n;
}

static unsigned drain(struct reactor *r)
{
	unsigned n = drain_self(r);

	for (unsigned i = 0; i < r->nin; i++)
		n += drain_ring(r->in[i]);
	/* The ext ring is for setup: looked at only when flagged, so a turn on
	 * the I/O path does not pay for it. */
	if (atomic_load_explicit(&r->ext_sent, memory_order_relaxed) &&
	    atomic_exchange(&r->ext_sent, false)) {
		n += drain_ring(r->ext);
		/* An ext sender may never send again to flush its overflow, so
		 * the receiver moves it; holding the lock makes it the ring's one
		 * producer. What is left is looked at again next turn. */
		if (atomic_load(&r->ext_q.pending)) {
			pthread_mutex_lock(&r->ext_lock);
			outq_flush(&r->ext_q, r->ext);
			pthread_mutex_unlock(&r->ext_lock);
		}
		if (spsc_ring_count(r->ext) || atomic_load(&r->ext_q.pending))
			atomic_store(&r->ext_sent, true);
	}
	if (n)
		stat_add(&r->st.msgs, n);
	return n;
}

/* Overflow flags before rings: outq_flush clears a flag after its pushes. */
static bool has_input(struct reactor *r)
{
	if (r->dq_tail != r->dq_head || atomic_load(&r->ext_sent))
		return true;
	for (unsigned i = 0; i < r->nin; i++)
		if (spsc_ring_count(r->in[i]))
			return true;
	return false;
}

/* Nothing left to run here, nor to deliver from here. */
static bool quiet(struct reactor *r)
{
	if (r->out_busy)
		return false;
	for (unsigned from = 0; from < g.n; from++)
		if (atomic_load(&g.r[from].out[r->id].pending))
			return false;
	return !has_input(r);
}

/* ---- pollers, stop hooks ---- */

struct poller *reactor_poller_add(struct reactor *r, poller_fn fn, void *arg)
{
	struct poller *p = malloc(sizeof(*p)), **pp;

	if (!p)
		return NULL;
	*p = (struct poller){ fn, arg, NULL };
	for (pp = &r->pollers; *pp; pp = &(*pp)->next)
		;
	*pp = p;
	return p;
}

/* Marked only: the poller list may be being walked (a poller deleting itself). */
void reactor_poller_del(struct reactor *r, struct poller *p)
{
	if (!p)
		return;
	p->fn = NULL;
	r->pollers_dirty = true;
}

static unsigned run_pollers(struct reactor *r)
{
	unsigned work = 0;

	for (struct poller *p = r->pollers; p; p = p->next)
		if (p->fn && p->fn(p->arg) > 0)
			work++;
	if (r->pollers_dirty) {
		struct poller **pp = &r->pollers;

		while (*pp) {
			struct poller *p = *pp;

			if (p->fn) {
				pp = &p->next;
			} else {
				*pp = p->next;
				free(p);
			}
		}
		r->pollers_dirty = false;
	}
	return work;
}

int reactor_stop_hook_add(struct reactor *r, stop_fn fn, void *arg)
{
	struct stop_hook *h = malloc(sizeof(*h)), **hp;

	if (!h)
		return -ENOMEM;
	*h = (struct stop_hook){ fn, arg, false, NULL };
	for (hp = &r->hooks; *hp; hp = &(*hp)->next)
		;
	*hp = h;
	return 0;
}

void reactor_stop_hook_del(struct reactor *r, stop_fn fn, void *arg)
{
	for (struct stop_hook *h = r->hooks; h; h = h->next) {
		if (h->fn == fn && h->arg == arg) {
			h->fn = NULL;
			r->hooks_dirty = true;
			return;
		}
	}
}

static bool run_stop_hooks(struct reactor *r)
{
	bool all = true;

	for (struct stop_hook *h = r->hooks; h; h = h->next) {
		if (!h->fn || h->done)
			continue;
		h->done = h->fn(h->arg);
		all = all && (h->done || !h->fn);
	}
	if (r->hooks_dirty) {
		struct stop_hook **hp = &r->hooks;

		while (*hp) {
			struct stop_hook *h = *hp;

			if (h->fn) {
				hp = &h->next;
			} else {
				*hp = h->next;
				free(h);
			}
		}
		r->hooks_dirty = false;
	}
	return all;
}

/* ---- events ---- */

int reactor_event_add(struct reactor *r, struct reactor_event *ev, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	return epoll_ctl(r->epfd, EPOLL_CTL_ADD, ev->fd, &e) ? -errno : 0;
}

int reactor_event_mod(struct reactor *r, struct reactor_event *ev, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	return epoll_ctl(r->epfd, EPOLL_CTL_MOD, ev->fd, &e) ? -errno : 0;
}

int reactor_event_del(struct reactor *r, struct reactor_event *ev)
{
	/* The batch being dispatched may still hold ev (a callback closing another
	 * connection): its owner has given up on it, so it must not be called. Done
	 * even if epoll_ctl fails, e.g. because the fd was closed first. */
	for (int i = r->ev_pos + 1; i < r->nevs; i++)
		if (r->evs[i].data.ptr == ev)
			r->evs[i].data.ptr = NULL;
	return epoll_ctl(r->epfd, EPOLL_CTL_DEL, ev->fd, NULL) ? -errno : 0;
}

static void on_wake(void *arg, uint32_t events)
{
	struct reactor *r = arg;
	uint64_t v;
	ssize_t n = read(r->wakefd, &v, sizeof(v));

	(void)events;
	(void)n;
}

static void on_signal(void *arg, uint32_t events)
{
	struct reactor *r = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(r->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("SIGHUP: %s", g.reload_fn ? "reloading" : "no reload hook, ignored");
			if (g.reload_fn)
				g.reload_fn(g.reload_arg);
		} else {
			log_info("signal %u: shutting down", si.ssi_signo);
			reactors_stop();
		}
	}
}

/* ---- the loop ---- */

static int pick_timeout(struct reactor *r, bool worked)
{
	uint64_t next;
	int ms;

	if (g.mode == POLL_BUSY || worked || r->out_busy)
		return 0;
	if (g.mode == POLL_ADAPTIVE && r->now - r->last_work < ADAPTIVE_SPIN_US)
		return 0;
	next = r->timer_next;
	if (next <= r->now)
		return 0;
	if (next == UINT64_MAX)
		ms = -1;
	else	/* rounded up: waking before the deadline would only spin */
		ms = next - r->now >= (uint64_t)INT_MAX * 1000 ? INT_MAX :
		     (int)((next - r->now + 999) / 1000);
	/* Stop hooks that said "not yet" may wait on something with no fd. */
	if (atomic_load_explicit(&g.stopping, memory_order_relaxed) &&
	    (ms < 0 || ms > STOP_POLL_MS))
		ms = STOP_POLL_MS;

	atomic_store_explicit(&r->sleeping, true, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);	/* pairs with wake() */
	if (has_input(r)) {
		atomic_store_explicit(&r->sleeping, false, memory_order_relaxed);
		return 0;
	}
	return ms;
}

static void dispatch(struct reactor *r, int n)
{
	r->nevs = n;
	for (r->ev_pos = 0; r->ev_pos < n; r->ev_pos++) {
		struct reactor_event *ev = r->evs[r->ev_pos].data.ptr;

		if (ev)
			ev->fn(ev->arg, r->evs[r->ev_pos].events);
	}
	r->nevs = 0;
	stat_add(&r->st.events, (uint64_t)n);
}

static void turn(struct reactor *r)
{
	unsigned work;
	int timeout, n;

	/* r->now was read after the last wait (one clock read per turn): what
	 * runs before the next wait sees time stand still for at most the event
	 * callbacks in between, so a timer fires late by at most that, never
	 * early. */
	work = flush_out(r);
	work += run_pollers(r);
	work += drain(r);
	if (r->now >= r->timer_next) {
		work += timer_set_run(r->timers, r->now);
		r->timer_next = timer_set_next(r->timers);
	}

	timeout = pick_timeout(r, work > 0);
	n = epoll_wait(r->epfd, r->evs, MAX_EVENTS, timeout);
	if (n < 0) {
		if (errno != EINTR)
			log_err("reactor %u: epoll_wait: %s", r->id, strerror(errno));
		n = 0;
	}
	if (timeout != 0) {
		atomic_store_explicit(&r->sleeping, false, memory_order_relaxed);
		stat_add(&r->st.sleeps, 1);
	}
	/* The wait may have been long; callbacks below start timers from now. */
	r->now = clock_now_us();
	dispatch(r, n);

	if (work || n) {
		r->last_work = r->now;
		stat_add(&r->st.busy_turns, 1);
	}
	stat_add(&r->st.turns, 1);
}

/* Leaves only when every reactor's hooks are done (until then anyone may still
 * send here) and nothing is left to run or to deliver. */
static void reactor_loop(struct reactor *r)
{
	for (;;) {
		turn(r);
		if (!atomic_load(&g.stopping))
			continue;
		if (!r->hooks_done) {
			if (run_stop_hooks(r)) {
				r->hooks_done = true;
				if (atomic_fetch_add(&g.hooks_done, 1) + 1 == g.n)
					wake_all();
			}
		} else if (atomic_load(&g.hooks_done) == g.n && quiet(r)) {
			return;
		}
	}
}

static void pin(struct reactor *r)
{
	cpu_set_t set;
	int err;

	if (r->core < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(r->core, &set);
	err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (err)
		log_warn("reactor %u: cannot pin to core %d (%s), running unpinned",
			 r->id, r->core, strerror(err));
}

static void run_reactor(struct reactor *r)
{
	pin(r);
	tls_self = r;
	r->now = clock_now_us();
	log_debug("reactor %u running on core %d", r->id, r->core);
	if (g.start_fn)
		g.start_fn(r, g.start_arg);
	reactor_loop(r);
	tls_self = NULL;
}

static void open_gate(int state)
{
	pthread_mutex_lock(&g.gate_lock);
	g.gate = state;
	pthread_cond_broadcast(&g.gate_cond);
	pthread_mutex_unlock(&g.gate_lock);
}

/* Threads wait here until all exist, so a failed pthread_create never leaves
 * some reactors running start_fn while the others are missing. */
static void *reactor_thread(void *arg)
{
	struct reactor *r = arg;
	int gate;

	pthread_setname_np(pthread_self(), r->name);
	pthread_mutex_lock(&g.gate_lock);
	while (g.gate == 0)
		pthread_cond_wait(&g.gate_cond, &g.gate_lock);
	gate = g.gate;
	pthread_mutex_unlock(&g.gate_lock);
	if (gate > 0)
		run_reactor(r);
	return NULL;
}

/* ---- setup and teardown ---- */

static void control_signals(sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGINT);
	sigaddset(s, SIGTERM);
	sigaddset(s, SIGHUP);
}

static int numa_node_for(int core)
{
	int node;

	if (core < 0 || numa_available() < 0)
		return -1;
	node = numa_node_of_cpu(core);
	return node < 0 ? -1 : node;
}

static int reactor_setup(struct reactor *r, unsigned id, const struct reactor_opts *opts,
			 unsigned ring_size)
{
	struct mem_pool_opts po;
	sigset_t sigs;
	int rc;

	r->id = id;
	r->core = opts->cores[id];
	r->epfd = r->wakefd = r->sigfd = -1;
	snprintf(r->name, sizeof(r->name), "reactor%u", id);
	pthread_mutex_init(&r->ext_lock, NULL);
	g.nsetup++;

	r->timers = timer_set_create();
	r->out = calloc(g.n, sizeof(*r->out));
	r->ext = spsc_ring_create(ring_size);
	r->dq = calloc(ring_size, sizeof(*r->dq));
	r->dq_mask = ring_size - 1;
	r->in = calloc(g.n, sizeof(*r->in));
	if (!r->timers || !r->out || !r->ext || !r->dq || !r->in)
		return -ENOMEM;
	for (unsigned from = 0; from < g.n; from++)
		if (from != id)
			r->in[r->nin++] = ring_of(from, id);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		return -errno;
	r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->wakefd < 0)
		return -errno;
	r->wake_ev = (struct reactor_event){ r->wakefd, on_wake, r };
	if ((rc = reactor_event_add(r, &r->wake_ev, EPOLLIN)))
		return rc;
	if (id == 0) {
		control_signals(&sigs);
		r->sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
		if (r->sigfd < 0)
			return -errno;
		r->sig_ev = (struct reactor_event){ r->sigfd, on_signal, r };
		if ((rc = reactor_event_add(r, &r->sig_ev, EPOLLIN)))
			return rc;
	}
	po = (struct mem_pool_opts){
		.name = r->name,
		.limit = opts->mem_limit ? opts->mem_limit : DEFAULT_MEM_LIMIT,
		.prealloc = opts->mem_prealloc,
		.numa_node = numa_node_for(r->core),
		.no_hugepages = opts->no_hugepages,
	};
	r->pool = mem_pool_create(&po);
	if (!r->pool)
		return -ENOMEM;
	r->now = clock_now_us();
	return 0;
}

static void teardown(void)
{
	unsigned lost = 0;

	for (unsigned i = 0; i < g.nsetup; i++) {
		struct reactor *r = &g.r[i];

		if (r->out)
			for (unsigned to = 0; to < g.n; to++)
				lost += outq_free(&r->out[to]);
		free(r->out);
		lost += r->dq_tail - r->dq_head;
		free(r->dq);
		free(r->in);
		lost += outq_free(&r->ext_q);
		if (r->ext)
			lost += spsc_ring_count(r->ext);
		spsc_ring_destroy(r->ext);
		timer_set_destroy(r->timers);
		while (r->pollers) {
			struct poller *p = r->pollers;

			r->pollers = p->next;
			free(p);
		}
		while (r->hooks) {
			struct stop_hook *h = r->hooks;

			r->hooks = h->next;
			free(h);
		}
		if (r->sigfd >= 0)
			close(r->sigfd);
		if (r->wakefd >= 0)
			close(r->wakefd);
		if (r->epfd >= 0)
			close(r->epfd);
		if (r->pool)
			mem_pool_destroy(r->pool);
		pthread_mutex_destroy(&r->ext_lock);
	}
	for (unsigned i = 0; g.rings && i < g.n * g.n; i++) {
		if (g.rings[i]) {
			lost += spsc_ring_count(g.rings[i]);
			spsc_ring_destroy(g.rings[i]);
		}
	}
	/* Only messages sent after every stop hook reported done can be here. */
	if (lost)
		log_warn("reactors: %u messages sent during shutdown were dropped", lost);
	free(g.rings);
	free(g.r);
	g.rings = NULL;
	g.r = NULL;
	g.n = g.nsetup = 0;
	g.start_fn = NULL;
	g.start_arg = NULL;
	g.inited = false;
}

int reactors_init(const struct reactor_opts *opts)
{
	unsigned n = opts->ncores ? opts->ncores : 1;
	unsigned ring_size = opts->ring_size ? opts->ring_size : DEFAULT_RING_SIZE;
	sigset_t sigs;
	int rc = -ENOMEM;

	if (g.inited)
		return -EBUSY;
	if (n > REACTOR_MAX || ring_size < 2 || (ring_size & (ring_size - 1)) ||
	    opts->mode > POLL_BUSY)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (opts->cores[i] < -1 || opts->cores[i] >= CPU_SETSIZE)
			return -EINVAL;

	/* Before any thread exists, so that all inherit the mask: these signals
	 * are only ever read from reactor 0's signalfd. */
	control_signals(&sigs);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	g.n = n;
	g.mode = opts->mode;
	atomic_store(&g.stopping, false);
	atomic_store(&g.hooks_done, 0);
	g.gate = 0;
	g.r = aligned_alloc(alignof(struct reactor), n * sizeof(struct reactor));
	g.rings = calloc((size_t)n * n, sizeof(*g.rings));
	if (!g.r || !g.rings)
		goto fail;
	memset(g.r, 0, n * sizeof(struct reactor));
	for (unsigned i = 0; i < n * n; i++)   /* [i * n + i] stays NULL: a reactor's dq */
		if (i / n != i % n && !(g.rings[i] = spsc_ring_create(ring_size)))
			goto fail;
	for (unsigned i = 0; i < n; i++) {
		rc = reactor_setup(&g.r[i], i, opts, ring_size);
		if (rc) {
			log_err("reactor %u: setup failed: %s", i, strerror(-rc));
			goto fail;
		}
	}
	g.inited = true;
	return 0;
fail:
	teardown();
	return rc;
}

void reactors_fini(void)
{
	if (g.inited)
		teardown();
}

int reactors_run(void (*start_fn)(struct reactor *r, void *arg), void *arg)
{
	int rc = 0;

	if (!g.inited || g.running)
		return -EINVAL;
	g.running = true;
	g.start_fn = start_fn;
	g.start_arg = arg;
	/* Threads first: they inherit this thread's affinity, and an unpinned
	 * reactor must not inherit reactor 0's pin. */
	for (unsigned i = 1; i < g.n; i++) {
		rc = -pthread_create(&g.r[i].thread, NULL, reactor_thread, &g.r[i]);
		if (rc) {
			log_err("reactor %u: cannot start thread: %s", i, strerror(-rc));
			break;
		}
		g.r[i].thread_started = true;
	}
	open_gate(rc ? -1 : 1);
	if (rc == 0)
		run_reactor(&g.r[0]);
	for (unsigned i = 1; i < g.n; i++)
		if (g.r[i].thread_started)
			pthread_join(g.r[i].thread, NULL);
	teardown();
	g.running = false;
	return rc;
}

void reactors_stop(void)
{
	atomic_store(&g.stopping, true);
	wake_all();
}

bool reactors_stopping(void)
{
	return atomic_load(&g.stopping);
}

void reactors_set_reload_hook(void (*fn)(void *arg), void *arg)
{
	g.reload_fn = fn;
	g.reload_arg = arg;
}

/* ---- accessors ---- */

struct reactor *reactor_self(void) { return tls_self; }
struct reactor *reactor_get(unsigned id) { return id < g.n ? &g.r[id] : NULL; }
unsigned reactor_count(void) { return g.n; }
unsigned reactor_id(const struct reactor *r) { return r->id; }
int reactor_core(const struct reactor *r) { return r->core; }
struct mem_pool *reactor_pool(struct reactor *r) { return r->pool; }
enum poll_mode reactor_poll_mode(void) { return g.mode; }
uint64_t reactor_now_us(const struct reactor *r) { return r->now; }

int poll_mode_parse(const char *s, enum poll_mode *out)
{
	static const char *const names[] = {
		[POLL_SLEEP] = "sleep", [POLL_ADAPTIVE] = "adaptive", [POLL_BUSY] = "busy",
	};

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum poll_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

struct timer *reactor_timer_add(struct reactor *r, uint64_t delay_us,
				uint64_t period_us, timer_fn fn, void *arg)
{
	struct timer *t = timer_add(r->timers, r->now, delay_us, period_us, fn, arg);

	r->timer_next = timer_set_next(r->timers);
	return t;
}

/* timer_next stays as it is: at worst one turn looks at the timer set early. */
void reactor_timer_cancel(struct reactor *r, struct timer *t)
{
	timer_cancel(r->timers, t);
}

void reactor_get_stats(const struct reactor *r, struct reactor_stats *out)
{
	out->turns = atomic_load_explicit(&r->st.turns, memory_order_relaxed);
	out->busy_turns = atomic_load_explicit(&r->st.busy_turns, memory_order_relaxed);
	out->sleeps = atomic_load_explicit(&r->st.sleeps, memory_order_relaxed);
	out->msgs = atomic_load_explicit(&r->st.msgs, memory_order_relaxed);
	out->events = atomic_load_explicit(&r->st.events, memory_order_relaxed);
}
