/* reactor.h — one event loop per core, shared nothing.
 *
 * Each reactor is a thread pinned to one configured core. It owns: an epoll set
 * (readiness of sockets, eventfds of io_uring/RDMA channels, its signalfd if it is
 * reactor 0), a list of pollers (function + arg, called every turn, returning >0
 * when they did work), a timer set, a memory pool, and one incoming SPSC ring from
 * every other reactor (its deferred calls to itself wait in a local FIFO) plus
 * one from non-reactor threads (the main thread before start, used only at
 * setup).
 *
 * A turn: run pollers, drain rings, run due timers, then epoll_wait with a timeout
 * that depends on the poll mode:
 *   busy      never sleeps (timeout 0);
 *   adaptive  spins while any poller/ring/timer did work and for a short while
 *             after, then sleeps until the next timer or an event;
 *   sleep     sleeps whenever a turn did no work.
 * A reactor that sleeps is woken by its eventfd when a message is pushed to it.
 * So, in adaptive and sleep modes, anything a poller watches must also have an fd
 * in the epoll set (io_uring: io_uring_register_eventfd; RDMA: completion channel).
 *
 * Shutdown: SIGINT/SIGTERM (blocked in all threads, read from a signalfd on
 * reactor 0) or reactors_stop() runs every stop hook on every reactor (on that
 * reactor's thread: stop accepting, abort or finish in-flight work); a reactor
 * leaves its loop once its hooks reported done and its rings are empty; then
 * reactors_run() joins the threads, frees everything and returns the exit code.
 * SIGHUP calls the registered reload hook on reactor 0.
 *
 * Every function except reactors_init/run/fini and reactor_send_ext must be called
 * on a reactor thread, about that reactor (reactor_self()).
 */
#ifndef LICH_CORE_REACTOR_H
#define LICH_CORE_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/ring.h"
#include "core/timer.h"

#define REACTOR_MAX 64

enum poll_mode { POLL_SLEEP = 0, POLL_ADAPTIVE, POLL_BUSY };

struct reactor;
struct mem_pool;
struct poller;

typedef int (*poller_fn)(void *arg);
typedef void (*event_fn)(void *arg, uint32_t events);
/* Stop hook: called repeatedly on its reactor during shutdown until it returns
 * true ("all my in-flight work is done or aborted"). */
typedef bool (*stop_fn)(void *arg);

/* Embedded by callers in their own objects (a connection, a listener...). The
 * reactor stores a pointer to it in epoll's data; it must stay valid until
 * reactor_event_del() returned AND the current turn ended (free it from a
 * reactor_defer()ed call). */
struct reactor_event {
	int fd;
	event_fn fn;
	void *arg;
};

struct reactor_opts {
	unsigned ncores;               /* 0 means 1 */
	int cores[REACTOR_MAX];        /* CPU ids; -1 = do not pin */
	enum poll_mode mode;
	size_t mem_limit;              /* per reactor pool limit in bytes */
	size_t mem_prealloc;           /* bytes each pool maps at start */
	bool no_hugepages;             /* force ordinary pages */
	unsigned ring_size;            /* per ring capacity, power of two; 0 = 4096 */
};

int reactors_init(const struct reactor_opts *opts);
/* Runs reactor 0 on the calling thread, others on new pinned threads. start_fn
 * (if not NULL) runs first on every reactor thread with its reactor. Returns 0
 * after a clean shutdown, or -errno if threads could not start. */
int reactors_run(void (*start_fn)(struct reactor *r, void *arg), void *arg);
/* Frees what reactors_init made if reactors_run was never called. */
void reactors_fini(void);
/* Asks every reactor to shut down (safe from any thread, and from a reactor). */
void reactors_stop(void);
bool reactors_stopping(void);
void reactors_set_reload_hook(void (*fn)(void *arg), void *arg);

struct reactor *reactor_self(void);
struct reactor *reactor_get(unsigned id);
unsigned reactor_count(void);
unsigned reactor_id(const struct reactor *r);
int reactor_core(const struct reactor *r);
struct mem_pool *reactor_pool(struct reactor *r);
enum poll_mode reactor_poll_mode(void);
/* Parses "busy|adaptive|sleep". */
int poll_mode_parse(const char *s, enum poll_mode *out);

struct poller *reactor_poller_add(struct reactor *r, poller_fn fn, void *arg);
void reactor_poller_del(struct reactor *r, struct poller *p);

/* events: EPOLLIN/EPOLLOUT/... (level triggered unless EPOLLET is given). */
int reactor_event_add(struct reactor *r, struct reactor_event *ev, uint32_t events);
int reactor_event_mod(struct reactor *r, struct reactor_event *ev, uint32_t events);
/* Also drops ev's events still pending in the batch being dispatched, so no
 * callback runs for it after this returns. */
int reactor_event_del(struct reactor *r, struct reactor_event *ev);

/* Sends fn(a, b) to reactor `to`, from the calling reactor's ring to it (in
 * order per sender/receiver pair). If that ring is full the message waits in the
 * sender's local overflow list and is pushed on a later turn: it is never lost
 * and never reordered. Returns -ENOMEM if even that failed, -EINVAL for a bad
 * `to`, -EPERM when not called on a reactor thread. Messages sent after every
 * reactor's stop hooks reported done may be dropped (logged at exit). */
int reactor_send(unsigned to, ring_fn fn, void *a, void *b);
/* Same, from a thread that is not a reactor (setup only). Serialized with a
 * mutex: never use it on the I/O path. */
int reactor_send_ext(unsigned to, ring_fn fn, void *a, void *b);
/* Runs fn(a, b) on this reactor at its next turn, after current events. */
int reactor_defer(ring_fn fn, void *a, void *b);

struct timer *reactor_timer_add(struct reactor *r, uint64_t delay_us,
				uint64_t period_us, timer_fn fn, void *arg);
void reactor_timer_cancel(struct reactor *r, struct timer *t);
/* Cached once per turn, right after the wait for events: fresh for event
 * callbacks, behind by at most those callbacks for what runs before the next
 * wait (pollers, messages, timers). */
uint64_t reactor_now_us(const struct reactor *r);

int reactor_stop_hook_add(struct reactor *r, stop_fn fn, void *arg);
void reactor_stop_hook_del(struct reactor *r, stop_fn fn, void *arg);

struct reactor_stats {
	uint64_t turns;
	uint64_t busy_turns;
	uint64_t sleeps;
	uint64_t msgs;
	uint64_t events;
};
void reactor_get_stats(const struct reactor *r, struct reactor_stats *out);

#endif
