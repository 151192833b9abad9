/* ua.c — I_T nexuses and their unit attentions, kept by each nexus' home
 * reactor: no lock.
 *
 * A nexus (an iSCSI session) lives on one reactor, its home: the one that
 * attached it. Its unit-attention queues (one small queue per LU, SAM-5 5.14:
 * reported one at a time, oldest first; a reset-class UA, ASC 29h, supersedes
 * what was queued; duplicates are not queued twice) are touched only there, so
 * reporting a UA — on the command path, in scsi_task_prepare — is local: a
 * nexus with nothing pending costs one plain load. Each reactor also keeps the
 * list of the nexuses it is home to (target->nexus_slots[reactor]).
 *
 * Establishing a UA elsewhere is a message: an event ("every nexus but X",
 * "this nexus", "every nexus of this initiator port", "drop this LU's") goes
 * to every reactor, and each applies it to its own nexuses. Commands that
 * establish UAs for others on the LU's owner (PERSISTENT RESERVE OUT, MODE
 * SELECT) then make one more round (owner_fanout): the owner sends a marker
 * to every other reactor behind its events and the command completes at home
 * only after every reactor handled it — so the UAs exist before the status is
 * sent. The same round collects, for PREEMPT AND ABORT, the ids of each
 * reactor's nexuses that the preempted registrations designate, which the
 * transport's abort hook wants at home.
 *
 * Without reactors (unit tests) everything is slot 0 and direct.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/reactor.h"
#include "scsi/pr.h"
#include "scsi_internal.h"

/* Unit attention queue of one nexus on one LU. */
struct ua_q {
	struct ua_q *next;
	const struct scsi_lu *lu;     /* identity only: LU memory outlives its use */
	unsigned n;
	uint8_t asc[SCSI_UA_QUEUE_MAX];
	uint8_t ascq[SCSI_UA_QUEUE_MAX];
};

enum ua_kind { UA_ALL, UA_ONLY, UA_PORT, UA_DROP_LU };

/* One event, shared read-only by the reactors it is sent to. */
struct ua_event {
	atomic_uint refs;
	enum ua_kind kind;
	struct scsi_lu *lu;
	uint64_t nexus_id;            /* ONLY: that nexus; ALL: all but it (0 = none) */
	uint16_t rel_port_id;         /* PORT: 0 = every target port */
	uint8_t asc, ascq;
	char port[sizeof(((struct scsi_nexus *)0)->initiator_port)];
};

/* A PREEMPT AND ABORT registration: which nexuses to abort. */
struct abort_port {
	char port[sizeof(((struct scsi_nexus *)0)->initiator_port)];
	uint16_t rel_port_id;
};

struct owner_ports {
	unsigned n, cap;
	struct abort_port p[];
};

/* The round behind an owner command's events (see the top). */
struct fanout {
	atomic_uint left;
	struct scsi_task *t;
	struct owner_ports *ports;
	struct owner_ids *ids[REACTOR_MAX];   /* each reactor writes its own */
};

static _Atomic uint64_t next_nexus_id;

unsigned here_slot(void)
{
	struct reactor *r = reactor_self();
	return r ? reactor_id(r) : 0;
}

static struct nexus_state *nstate(const struct scsi_nexus *n)
{
	return n ? n->scsi_priv : NULL;
}

/* ---- queues (on the nexus' home) ---- */

static struct ua_q *q_find(struct nexus_state *st, const struct scsi_lu *lu, bool create)
{
	for (struct ua_q *q = st->queues; q; q = q->next)
		if (q->lu == lu)
			return q;
	if (!create)
		return NULL;
	struct ua_q *q = calloc(1, sizeof(*q));
	if (!q) {
		log_err("scsi: no memory for a unit attention queue");
		return NULL;
	}
	q->lu = lu;
	q->next = st->queues;
	st->queues = q;
	st->lu_mask |= ua_lu_bit(lu);
	return q;
}

static void q_drop(struct nexus_state *st, struct ua_q *q)
{
	for (struct ua_q **pp = &st->queues; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			st->pending -= q->n;
			free(q);
			/* The bit stays only for another LU sharing it. */
			st->lu_mask = 0;
			for (struct ua_q *o = st->queues; o; o = o->next)
				st->lu_mask |= ua_lu_bit(o->lu);
			return;
		}
	}
}

static void ua_push(struct nexus_state *st, const struct scsi_lu *lu, uint8_t asc, uint8_t ascq)
{
	struct ua_q *q = q_find(st, lu, true);
	if (!q)
		return;
	if (asc == 0x29 && q->n) {            /* a reset supersedes older UAs */
		st->pending -= q->n;
		q->n = 0;
	}
	for (unsigned i = 0; i < q->n; i++)
		if (q->asc[i] == asc && q->ascq[i] == ascq)
			return;
	if (q->n == SCSI_UA_QUEUE_MAX) {
		log_warn("scsi: unit attention queue full on LUN %u, %02x/%02x dropped",
			 lu->lun, asc, ascq);
		return;
	}
	q->asc[q->n] = asc;
	q->ascq[q->n] = ascq;
	q->n++;
	st->pending++;
}

bool lu_ua_take(struct scsi_lu *lu, struct scsi_nexus *n, uint8_t *asc, uint8_t *ascq)
{
	struct nexus_state *st = nstate(n);

	if (!st || st->pending == 0)
		return false;
	struct ua_q *q = q_find(st, lu, false);
	if (!q)
		return false;
	bool got = q->n > 0;
	if (got) {
		*asc = q->asc[0];
		*ascq = q->ascq[0];
		memmove(q->asc, q->asc + 1, q->n - 1);
		memmove(q->ascq, q->ascq + 1, q->n - 1);
		q->n--;
		st->pending--;
	}
	if (q->n == 0)
		q_drop(st, q);
	return got;
}

void target_ua_clear(struct scsi_target *t, struct scsi_nexus *n, uint8_t asc, uint8_t ascq)
{
	struct nexus_state *st = nstate(n);
	(void)t;

	if (!st || st->pending == 0)
		return;
	struct ua_q *q = st->queues;
	while (q) {
		struct ua_q *next = q->next;
		unsigned j = 0;
		for (unsigned i = 0; i < q->n; i++) {
			if (q->asc[i] == asc && q->ascq[i] == ascq)
				continue;
			q->asc[j] = q->asc[i];
			q->ascq[j] = q->ascq[i];
			j++;
		}
		st->pending -= q->n - j;
		q->n = j;
		if (q->n == 0)
			q_drop(st, q);
		q = next;
	}
}

/* ---- events ---- */

static bool ev_matches(const struct ua_event *e, const struct scsi_nexus *n)
{
	switch (e->kind) {
	case UA_ALL:
		return n->id != e->nexus_id;
	case UA_ONLY:
		return n->id == e->nexus_id;
	case UA_PORT:
		return (e->rel_port_id == 0 || n->rel_port_id == e->rel_port_id) &&
		       pr_initiator_port_match(e->port, n->initiator_port);
	default:
		return true;
	}
}

/* Applies e to the nexuses whose home is `slot` (this thread). */
static void ev_apply(const struct ua_event *e, unsigned slot)
{
	struct nexus_slot *ns = &e->lu->target->nexus_slots[slot];

	for (unsigned i = 0; i < ns->n; i++) {
		struct scsi_nexus *n = ns->v[i];
		struct nexus_state *st = nstate(n);
		if (!st || !ev_matches(e, n))
			continue;
		if (e->kind == UA_DROP_LU) {
			struct ua_q *q = q_find(st, e->lu, false);
			if (q)
				q_drop(st, q);
		} else {
			ua_push(st, e->lu, e->asc, e->ascq);
		}
	}
}

static void ev_put(struct ua_event *e)
{
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
		free(e);
}

static void ev_msg(void *a, void *b)
{
	(void)b;
	ev_apply(a, here_slot());
	ev_put(a);
}

/* Applies e here at once and sends it to every other reactor. */
static void ev_broadcast(struct ua_event *e)
{
	unsigned n = reactor_count(), self = here_slot();

	if (!reactor_self() || n <= 1) {
		ev_apply(e, self);
		free(e);
		return;
	}
	atomic_init(&e->refs, n);
	for (unsigned i = 0; i < n; i++) {
		if (i == self)
			continue;
		int rc = reactor_send(i, ev_msg, e, NULL);
		if (rc) {
			log_err("scsi: unit attention %02x/%02x not delivered to reactor %u: %s",
				e->asc, e->ascq, i, strerror(-rc));
			ev_put(e);
		}
	}
	ev_apply(e, self);
	ev_put(e);
}

static struct ua_event *ev_new(enum ua_kind kind, struct scsi_lu *lu, uint8_t asc, uint8_t ascq)
{
	struct ua_event *e = calloc(1, sizeof(*e));
	if (!e) {
		log_err("scsi: no memory for unit attention %02x/%02x on LUN %u: lost", asc, ascq,
			lu->lun);
		return NULL;
	}
	e->kind = kind;
	e->lu = lu;
	e->asc = asc;
	e->ascq = ascq;
	return e;
}

void lu_ua_add(struct scsi_lu *lu, struct scsi_nexus *only, const struct scsi_nexus *except,
	       uint8_t asc, uint8_t ascq)
{
	struct nexus_state *st = nstate(only);

	if (only && st && st->home == here_slot()) {
		ua_push(st, lu, asc, ascq);        /* the common case: our own nexus */
		return;
	}
	if (only && !st)
		return;
	struct ua_event *e = ev_new(only ? UA_ONLY : UA_ALL, lu, asc, ascq);
	if (!e)
		return;
	e->nexus_id = only ? only->id : except ? except->id : 0;
	ev_broadcast(e);
}

void lu_ua_drop_all(struct scsi_lu *lu)
{
	struct ua_event *e = ev_new(UA_DROP_LU, lu, 0, 0);
	if (e)
		ev_broadcast(e);
}

/* pr_ua_fn, on the LU's owner: every nexus of that initiator port. */
void lu_pr_ua(void *ctx, const char *initiator_port, uint16_t rel_port_id,
	      uint8_t asc, uint8_t ascq)
{
	struct ua_event *e = ev_new(UA_PORT, ctx, asc, ascq);
	if (!e)
		return;
	snprintf(e->port, sizeof(e->port), "%s", initiator_port);
	e->rel_port_id = rel_port_id;
	ev_broadcast(e);
}

/* pr_abort_fn, on the LU's owner during pr_out: remembers the port; its
 * nexuses are found by the fan-out round that follows. */
void lu_pr_abort(void *ctx, const struct scsi_task *by, const char *initiator_port,
		 uint16_t rel_port_id)
{
	struct scsi_lu *lu = ctx;
	struct owner_ports *p = lu->abort_ports;
	(void)by;

	if (!lu->target->preempt_abort)
		return;
	if (!p || p->n == p->cap) {
		unsigned cap = p ? p->cap * 2 : 4;
		struct owner_ports *g = realloc(p, sizeof(*g) + cap * sizeof(g->p[0]));
		if (!g) {
			log_err("scsi: no memory for PREEMPT AND ABORT on LUN %u: some tasks not aborted",
				lu->lun);
			return;
		}
		if (!p)
			g->n = 0;
		g->cap = cap;
		lu->abort_ports = p = g;
	}
	snprintf(p->p[p->n].port, sizeof(p->p[p->n].port), "%s", initiator_port);
	p->p[p->n].rel_port_id = rel_port_id;
	p->n++;
}

/* ---- the fan-out round of an owner command ---- */

static void fan_collect(struct fanout *f, unsigned slot)
{
	struct nexus_slot *ns = &f->t->target->nexus_slots[slot];
	struct owner_ids *ids = NULL;

	for (unsigned k = 0; f->ports && k < f->ports->n; k++) {
		const struct abort_port *ap = &f->ports->p[k];
		for (unsigned i = 0; i < ns->n; i++) {
			const struct scsi_nexus *n = ns->v[i];
			if (!((ap->rel_port_id == 0 || n->rel_port_id == ap->rel_port_id) &&
			      pr_initiator_port_match(ap->port, n->initiator_port)))
				continue;
			if (!ids || ids->n == ids->cap) {
				unsigned cap = ids ? ids->cap * 2 : 8;
				struct owner_ids *g = realloc(ids, sizeof(*g) + cap * sizeof(g->id[0]));
				if (!g) {
					log_err("scsi: no memory for PREEMPT AND ABORT: some tasks not aborted");
					f->ids[slot] = ids;
					return;
				}
				if (!ids)
					g->n = 0;
				g->cap = cap;
				ids = g;
			}
			ids->id[ids->n++] = n->id;
		}
	}
	f->ids[slot] = ids;
}

static void fan_msg(void *a, void *b)
{
	struct fanout *f = a;
	(void)b;
	fan_collect(f, here_slot());
	if (atomic_fetch_sub_explicit(&f->left, 1, memory_order_acq_rel) == 1)
		owner_return(f->t);
}

void owner_fanout(struct scsi_task *t)
{
	struct fanout *f = calloc(1, sizeof(*f));
	unsigned n = reactor_count(), self = here_slot();

	t->owner_fanout = false;
	if (!f) {
		/* The events are on their way all the same; only the wait and
		 * PREEMPT AND ABORT's collection are lost. */
		log_err("scsi: no memory to wait for unit attentions on LUN %u", t->lu->lun);
		free(t->owner_data);
		t->owner_data = NULL;
		owner_return(t);
		return;
	}
	f->t = t;
	f->ports = t->owner_data;
	t->owner_data = f;
	fan_collect(f, self);
	if (!reactor_self() || n <= 1) {
		owner_return(t);
		return;
	}
	atomic_init(&f->left, n - 1);
	for (unsigned i = 0; i < n; i++) {
		if (i == self)
			continue;
		int rc = reactor_send(i, fan_msg, f, NULL);
		if (rc) {
			log_err("scsi: reactor %u not reached by a fan-out: %s", i, strerror(-rc));
			if (atomic_fetch_sub_explicit(&f->left, 1, memory_order_acq_rel) == 1)
				owner_return(t);
		}
	}
}

void owner_fanout_done(struct scsi_task *t)
{
	struct fanout *f = t->owner_data;
	scsi_preempt_abort_fn fn = t->target->preempt_abort;

	t->owner_data = NULL;
	if (!f)
		return;
	for (unsigned r = 0; r < REACTOR_MAX; r++) {
		struct owner_ids *ids = f->ids[r];
		for (unsigned i = 0; fn && ids && i < ids->n; i++)
			fn(t->target->preempt_abort_ctx, t, ids->id[i]);
		free(ids);
	}
	free(f->ports);
	free(f);
}

/* ---- nexuses ---- */

static void nexus_power_on(struct scsi_lu *lu, void *arg)
{
	ua_push(arg, lu, 0x29, 0x00);
}

int scsi_nexus_attach(struct scsi_target *t, struct scsi_nexus *n)
{
	if (!t || !n)
		return -EINVAL;
	struct nexus_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->home = here_slot();
	struct nexus_slot *ns = &t->nexus_slots[st->home];
	if (ns->n == ns->cap) {
		unsigned cap = ns->cap ? ns->cap * 2 : 8;
		struct scsi_nexus **v = realloc(ns->v, cap * sizeof(*v));
		if (!v) {
			free(st);
			return -ENOMEM;
		}
		ns->v = v;
		ns->cap = cap;
	}
	n->id = atomic_fetch_add(&next_nexus_id, 1) + 1;
	n->scsi_priv = st;
	ns->v[ns->n++] = n;
	target_lu_walk(t, nexus_power_on, st);
	return 0;
}

static void nexus_state_free(struct nexus_state *st)
{
	while (st->queues) {
		struct ua_q *next = st->queues->next;
		free(st->queues);
		st->queues = next;
	}
	free(st);
}

void scsi_nexus_detach(struct scsi_target *t, struct scsi_nexus *n)
{
	struct nexus_state *st = nstate(n);
	if (!t || !st)
		return;
	struct nexus_slot *ns = &t->nexus_slots[st->home];
	bool found = false;
	for (unsigned i = 0; i < ns->n; i++) {
		if (ns->v[i] == n) {
			ns->v[i] = ns->v[--ns->n];
			found = true;
			break;
		}
	}
	if (!found)
		return;
	/* No UA can be queued for n any more (it left the list). */
	target_lu_walk(t, lu_nexus_gone, n);
	nexus_state_free(st);
	n->scsi_priv = NULL;
}

void target_nexus_free_all(struct scsi_target *t)
{
	for (unsigned r = 0; r < REACTOR_MAX; r++) {
		struct nexus_slot *ns = &t->nexus_slots[r];
		for (unsigned i = 0; i < ns->n; i++) {     /* still attached */
			nexus_state_free(ns->v[i]->scsi_priv);
			ns->v[i]->scsi_priv = NULL;
		}
		free(ns->v);
		ns->v = NULL;
		ns->n = ns->cap = 0;
	}
}

void scsi_target_set_preempt_abort(struct scsi_target *t, scsi_preempt_abort_fn fn, void *ctx)
{
	/* At setup, before sessions exist; read without a lock afterwards. */
	t->preempt_abort = fn;
	t->preempt_abort_ctx = ctx;
}
