/* sweep.c — aborting the tasks a task management function (or PREEMPT AND
 * ABORT) affects, across sessions and reactors, and knowing when they are gone.
 *
 * Gone means: a task aborted while its bdev I/O is in flight lives on until
 * done(). Each reactor numbers such tasks in the order they were aborted and
 * keeps them on a list (ir->aborting). A waiter registered right after a batch
 * of aborts, with the reactor's current number, is released once no task
 * numbered up to it remains: numbers only grow, so that is a look at the list
 * head. Tasks aborted earlier for other reasons (a dropped connection) are
 * waited for too, which only errs on the safe side.
 *
 * A sweep is the cross-reactor part. The reactor that received the request
 * (the origin) runs it on its own sessions (at once for a TMF, which needs
 * its session's tasks aborted before anything else of it is processed; as a
 * deferred call otherwise) and sends it to every other reactor. Each aborts the
 * matching tasks of its sessions, registers a waiter and, when it is released,
 * replies to the origin. Once every reactor replied, the origin calls the
 * owner back (the TMF sends its response, the PERSISTENT RESERVE OUT its
 * status). Nothing is shared but the sweep itself, read-only after it started:
 * sessions are matched by target, LUN, connection id and nexus id; the owner
 * pointer is only used on the origin and cleared when the owner is freed
 * first (its connection dropped).
 *
 * Tasks of other sessions are affected only if they arrived before the sweep
 * started (by arrival number on the origin reactor, by monotonic clock on the
 * others): a command that reached another reactor after the reset is a new
 * task, and it saw the reset's unit attention.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/reactor.h"
#include "core/timer.h"
#include "internal.h"

struct abort_waiter {
	struct abort_waiter *next;
	uint64_t seq;                 /* released when no task numbered <= seq is left */
	struct sweep *s;
};

/* ---- deferred calls ---- */

struct deferred {
	struct deferred *next;
	void (*fn)(void *a, void *b);
	void *a, *b;
};

/* Only for threads that are not reactors (unit tests): single threaded. */
static struct deferred *dq_head, **dq_tail = &dq_head;

void iscsi_defer(void (*fn)(void *a, void *b), void *a, void *b)
{
	struct deferred *d;

	if (reactor_self()) {
		if (reactor_defer(fn, a, b) != 0)
			log_err("iscsi: cannot defer a call: out of memory");
		return;
	}
	d = malloc(sizeof(*d));
	if (!d) {
		log_err("iscsi: cannot defer a call: out of memory");
		return;
	}
	*d = (struct deferred){ NULL, fn, a, b };
	*dq_tail = d;
	dq_tail = &d->next;
}

unsigned iscsi_run_deferred(void)
{
	unsigned n = 0;
	struct deferred *d;

	while ((d = dq_head)) {
		dq_head = d->next;
		if (!dq_head)
			dq_tail = &dq_head;
		d->fn(d->a, d->b);
		free(d);
		n++;
	}
	return n;
}

/* fn(a, b) on reactor rid: a message, or a deferred call when rid is this
 * reactor (or there is no reactor thread). -errno if it could not be sent. */
static int post(unsigned rid, void (*fn)(void *a, void *b), void *a, void *b)
{
	struct reactor *self = reactor_self();

	if (!self || reactor_id(self) == rid) {
		iscsi_defer(fn, a, b);
		return 0;
	}
	return reactor_send(rid, fn, a, b);
}

/* ---- aborted tasks in flight ---- */

static void waiters_check(struct iscsi_reactor *ir);

void abort_track(struct iscsi_task *t)
{
	struct iscsi_reactor *ir = t->conn->ir;

	t->abort_seq = ++ir->abort_seq;
	t->ab_next = NULL;
	t->ab_prev = ir->aborting_tail;
	if (ir->aborting_tail)
		ir->aborting_tail->ab_next = t;
	else
		ir->aborting = t;
	ir->aborting_tail = t;
}

void abort_untrack(struct iscsi_task *t)
{
	struct iscsi_reactor *ir = t->conn->ir;

	if (t->ab_prev)
		t->ab_prev->ab_next = t->ab_next;
	else
		ir->aborting = t->ab_next;
	if (t->ab_next)
		t->ab_next->ab_prev = t->ab_prev;
	else
		ir->aborting_tail = t->ab_prev;
	t->abort_seq = 0;
	t->ab_next = t->ab_prev = NULL;
	waiters_check(ir);
}

static bool gone_upto(const struct iscsi_reactor *ir, uint64_t seq)
{
	return !ir->aborting || ir->aborting->abort_seq > seq;
}

static void sweep_reply_msg(void *a, void *b);

static void reply(struct sweep *s)
{
	int rc = post(s->origin_rid, sweep_reply_msg, s, NULL);

	/* Only a failed allocation gets here; the requester will time out. */
	if (rc)
		log_err("iscsi: cannot answer a task management sweep: %s", strerror(-rc));
}

static void waiters_check(struct iscsi_reactor *ir)
{
	struct abort_waiter *w;

	while ((w = ir->waiters) && gone_upto(ir, w->seq)) {
		ir->waiters = w->next;
		if (!ir->waiters)
			ir->waiters_tail = NULL;
		reply(w->s);
		free(w);
	}
}

void sweep_reactor_teardown(struct iscsi_reactor *ir)
{
	struct abort_waiter *w;

	/* Connections are gone, so nothing is in flight: answer the rest. */
	while ((w = ir->waiters)) {
		ir->waiters = w->next;
		reply(w->s);
		free(w);
	}
	ir->waiters_tail = NULL;
}

/* ---- one reactor's part ---- */

static bool nexus_listed(const struct sweep *s, uint64_t id)
{
	for (unsigned i = 0; i < s->n_nexus; i++)
		if (s->nexus_ids[i] == id)
			return true;
	return false;
}

static bool session_matches(const struct sweep *s, const struct iscsi_conn *c)
{
	const struct iscsi_session *ss = &c->sess;

	if (c->state == CONN_DEAD || c->state == CONN_LOGIN || c->state == CONN_LOGIN_WAIT ||
	    ss->type != ISCSI_SESSION_NORMAL || ss->tgt != s->tgt)
		return false;
	switch (s->scope) {
	case SWEEP_SESSION:
		return c->id == s->issuer_conn;
	case SWEEP_TARGET:
		return true;
	case SWEEP_NEXUSES:
		return ss->nexus_attached && nexus_listed(s, ss->nexus.id);
	}
	return false;
}

static bool task_affected(const struct sweep *s, const struct iscsi_conn *c,
			  const struct iscsi_task *t)
{
	if (t->kind != TASK_SCSI || t->aborted || t->rsp_queued)
		return false;
	if (!s->all_luns && t->st.lun != s->lun)
		return false;
	if (c->id == s->issuer_conn) {
		if (s->one_task && t->itt != s->itt)
			return false;
		if (s->spare && t->itt == s->spare_itt)
			return false;
		/* Sent after the request: not one of the tasks it is about. */
		if (t->rx_seq > s->issuer_rx_seq)
			return false;
		return !(t->held && !sn_lt(t->cmd_sn, s->issuer_cmd_sn));
	}
	if (s->one_task)
		return false;
	if (c->ir->id == s->origin_rid)
		return t->rx_seq <= s->origin_rx_seq;
	return t->rx_us <= s->start_us;
}

/* Aborting a task may free it and, through a logout response or a failed
 * send, other tasks of c: mark first, then abort one marked task at a time
 * from the head of the list. */
static void sweep_conn(const struct sweep *s, struct iscsi_conn *c)
{
	struct iscsi_task *t;
	unsigned n = 0;

	for (t = c->tasks; t; t = t->next) {
		t->sweep_mark = task_affected(s, c, t);
		n += t->sweep_mark;
	}
	while (n) {
		for (t = c->tasks; t && !t->sweep_mark; t = t->next)
			;
		if (!t)
			break;
		t->sweep_mark = false;
		n--;
		task_abort(t);
	}
	if (n)
		for (t = c->tasks; t; t = t->next)
			t->sweep_mark = false;
	if (s->drop_others && c->id != s->issuer_conn)
		conn_drop(c, "target cold reset");
}

/* Message: the sweep a on reactor (uintptr_t)b. */
static void sweep_run_msg(void *a, void *b)
{
	struct sweep *s = a;
	struct iscsi_reactor *ir = iscsi_reactor_of((unsigned)(uintptr_t)b);
	struct iscsi_conn *c, *next;
	struct abort_waiter *w;

	if (!ir) {
		reply(s);
		return;
	}
	for (c = ir->conns; c; c = next) {
		conn_get(c);
		if (session_matches(s, c))
			sweep_conn(s, c);
		next = c->next;
		conn_put(c);
	}
	if (gone_upto(ir, ir->abort_seq)) {
		reply(s);
		return;
	}
	w = malloc(sizeof(*w));
	if (!w) {
		/* Answering early beats never answering. */
		log_err("iscsi: no memory to wait for aborted tasks; answering now");
		reply(s);
		return;
	}
	*w = (struct abort_waiter){ NULL, ir->abort_seq, s };
	if (ir->waiters_tail)
		ir->waiters_tail->next = w;
	else
		ir->waiters = w;
	ir->waiters_tail = w;
}

/* ---- the origin ---- */

static void sweep_free(struct sweep *s)
{
	reg_target_put(s->tgt);
	free(s->nexus_ids);
	free(s);
}

static void sweep_reply_msg(void *a, void *b)
{
	struct sweep *s = a;
	struct iscsi_reactor *ir = iscsi_reactor_of(s->origin_rid);
	struct iscsi_task *owner = s->owner;

	(void)b;
	if (--s->pending)
		return;
	if (ir)
		ir->sweeps_out--;
	if (owner) {
		struct iscsi_conn *c = owner->conn;

		owner->sweep = NULL;
		s->owner = NULL;
		conn_get(c);
		s->done(owner);
		conn_put(c);
	}
	sweep_free(s);
}

struct sweep *sweep_new(struct iscsi_conn *c, enum sweep_scope scope)
{
	struct sweep *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->scope = scope;
	s->origin_rid = c->ir->id;
	s->tgt = c->sess.tgt;
	reg_target_hold(s->tgt);
	s->all_luns = true;
	s->issuer_conn = c->id;
	s->issuer_rx_seq = c->ir->rx_seq;
	s->issuer_cmd_sn = c->sess.exp_cmd_sn;
	return s;
}

int sweep_add_nexus(struct sweep *s, uint64_t nexus_id)
{
	if (nexus_listed(s, nexus_id))
		return 0;
	if (s->n_nexus == s->cap_nexus) {
		unsigned cap = s->cap_nexus ? s->cap_nexus * 2 : 4;
		uint64_t *v = realloc(s->nexus_ids, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->nexus_ids = v;
		s->cap_nexus = cap;
	}
	s->nexus_ids[s->n_nexus++] = nexus_id;
	return 0;
}

void sweep_start(struct sweep *s, struct iscsi_task *owner,
		 void (*done)(struct iscsi_task *owner), bool local_now)
{
	struct iscsi_reactor *ir = iscsi_reactor_of(s->origin_rid);

	s->started = true;
	s->owner = owner;
	s->done = done;
	if (owner)
		owner->sweep = s;
	s->origin_rx_seq = ir->rx_seq;
	s->start_us = clock_now_us();
	ir->sweeps_out++;
	s->pending = 1;
	if (s->scope != SWEEP_SESSION) {
		for (unsigned rid = 0; rid < REACTOR_MAX; rid++) {
			int rc;

			if (rid == s->origin_rid || !iscsi_reactor_of(rid))
				continue;
			s->pending++;
			rc = post(rid, sweep_run_msg, s, (void *)(uintptr_t)rid);
			if (rc) {
				log_err("iscsi: cannot send a task management sweep to reactor %u: %s",
					rid, strerror(-rc));
				s->pending--;
			}
		}
	}
	if (local_now)
		sweep_run_msg(s, (void *)(uintptr_t)s->origin_rid);
	else
		iscsi_defer(sweep_run_msg, s, (void *)(uintptr_t)s->origin_rid);
}

void sweep_owner_gone(struct iscsi_task *t)
{
	struct sweep *s = t->sweep;

	t->sweep = NULL;
	if (!s)
		return;
	if (s->started)
		s->owner = NULL;
	else
		/* PREEMPT AND ABORT collected nexuses, then its task went away
		 * before completing: the reservation changed, so abort anyway. */
		sweep_start(s, NULL, NULL, false);
}

/* ---- PREEMPT AND ABORT ---- */

/* The scsi layer calls this during the PERSISTENT RESERVE OUT `by`, once per
 * preempted nexus; the nexuses are collected on by's task and swept when
 * by completes (task.c holds its status until the sweep is done). */
void iscsi_preempt_abort(void *ctx, const struct scsi_task *by, uint64_t nexus_id)
{
	struct iscsi_task *t;
	struct sweep *s;

	(void)ctx;
	if (!task_is_iscsi(by))
		return;
	t = by->priv;
	s = t->sweep;
	if (!s) {
		s = sweep_new(t->conn, SWEEP_NEXUSES);
		if (!s) {
			log_err("iscsi: no memory for PREEMPT AND ABORT: tasks not aborted");
			return;
		}
		s->all_luns = false;
		s->lun = by->lun;
		s->spare = true;
		s->spare_itt = t->itt;
		s->issuer_cmd_sn = t->cmd_sn;
		t->sweep = s;
	}
	if (sweep_add_nexus(s, nexus_id))
		log_err("iscsi: no memory for PREEMPT AND ABORT: some tasks not aborted");
}
