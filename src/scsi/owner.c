/* owner.c — the owner reactor of a logical unit, and the trips to it.
 *
 * Every LU has one owner reactor, picked from its LUN. What the reactors
 * share about an LU and what commands change — the reservation state (pr*.c),
 * the COMPARE AND WRITE ranges (range.c), MODE SELECT (spc.c) — is changed on
 * the owner only, so none of it needs a lock. A task on another reactor that
 * needs that state makes a trip: owner_call() sends the task to the owner
 * (reactor_send), runs t->owner_fn there, and sends it back to its home
 * reactor, where t->owner_then continues it (with its own pool and qp); a
 * command that queued unit attentions for others first makes the round of
 * every reactor (ua.c: owner_fanout), so they exist before it completes. While
 * it travels the home reactor does not touch the task; the two messages order
 * every write of one side before the reads of the other.
 *
 * Other reactors read that state without a trip where the common path needs
 * it: pr_conflict reads an immutable view the owner publishes (NULL while
 * nothing is reserved), the block commands read the count of held ranges
 * (lu->caw_active), the I/O path reads WCE/SWP. Each is one acquire load.
 *
 * Superseded reservation views are freed after a grace period made of
 * messages: the owner sends one to every other reactor, and a reactor handles
 * messages between turns, never inside pr_conflict, so once each has seen it
 * none can still hold the old view.
 *
 * Without reactors (unit tests; also the main thread before reactors_run),
 * the owner is "here" and every call is direct.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/reactor.h"
#include "scsi/pr.h"
#include "scsi_internal.h"

unsigned lu_owner(const struct scsi_lu *lu)
{
	unsigned n = reactor_count();
	return n ? lu->lun % n : 0;
}

bool lu_owner_here(const struct scsi_lu *lu)
{
	struct reactor *self = reactor_self();
	return !self || reactor_id(self) == lu_owner(lu);
}

/* ---- a task's trip ---- */

static void call_back_home(void *a, void *b)
{
	struct scsi_task *t = a;
	(void)b;
	t->owner_then(t);
}

void owner_return(struct scsi_task *t)
{
	if (!reactor_self() || here_slot() == t->home) {
		t->owner_then(t);
		return;
	}
	int rc = reactor_send(t->home, call_back_home, t, NULL);
	if (rc)   /* only -ENOMEM: the ring overflow list could not grow */
		log_err("scsi: task %02x stranded away from its reactor: %s", t->cdb[0],
			strerror(-rc));
}

/* After the owner's part: home, or first round every reactor (ua.c). */
static void owner_part(struct scsi_task *t)
{
	t->owner_fn(t);
	if (t->owner_fanout)
		owner_fanout(t);
	else
		owner_return(t);
}

static void call_at_owner(void *a, void *b)
{
	(void)b;
	owner_part(a);
}

int owner_call(struct scsi_task *t, void (*fn)(struct scsi_task *t),
	       void (*then)(struct scsi_task *t))
{
	t->owner_fn = fn;
	t->owner_then = then;
	t->home = (uint16_t)here_slot();
	if (lu_owner_here(t->lu)) {
		owner_part(t);
		return 0;
	}
	int rc = reactor_send(lu_owner(t->lu), call_at_owner, t, NULL);
	if (rc)
		log_err("scsi: cannot reach the owner of LUN %u: %s", t->lu->lun, strerror(-rc));
	return rc;
}

int owner_post(const struct scsi_lu *lu, void (*fn)(void *a, void *b), void *a, void *b)
{
	if (lu_owner_here(lu)) {
		fn(a, b);
		return 0;
	}
	int rc = reactor_send(lu_owner(lu), fn, a, b);   /* on a reactor: see lu_owner_here */
	if (rc)
		log_err("scsi: cannot reach the owner of LUN %u: %s", lu->lun, strerror(-rc));
	return rc;
}

/* ---- grace period for reservation views ---- */

struct view_grace {
	void *view;
	atomic_uint left;            /* reactors that have not seen it yet */
};

static void grace_seen(void *a, void *b)
{
	struct view_grace *g = a;
	(void)b;
	if (atomic_fetch_sub_explicit(&g->left, 1, memory_order_acq_rel) == 1) {
		pr_view_free(g->view);
		free(g);
	}
}

void owner_view_retire(void *ctx, void *view)
{
	struct reactor *self = reactor_self();
	unsigned n = reactor_count();
	(void)ctx;

	if (!self || n <= 1) {       /* no other thread reads views */
		pr_view_free(view);
		return;
	}
	struct view_grace *g = malloc(sizeof(*g));
	if (!g) {
		/* Better a leak than a view freed under a reader. */
		log_err("scsi: no memory to retire a reservation view: leaked");
		return;
	}
	g->view = view;
	atomic_init(&g->left, n - 1);
	for (unsigned i = 0; i < n; i++) {
		if (i == reactor_id(self))
			continue;
		if (reactor_send(i, grace_seen, g, NULL))
			log_err("scsi: reactor %u not told of a retired view: leaked", i);
	}
}
