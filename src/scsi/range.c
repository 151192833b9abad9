/* range.c — COMPARE AND WRITE / ORWRITE range locks, kept by the LU's owner
 * reactor (owner.c), so there is no lock.
 *
 * A COMPARE AND WRITE holds its LBA range from its read to the end of its
 * write; a command touching a held range waits behind it. The list of held
 * ranges and every waiter queue are the owner's: a task on another reactor
 * sends itself there (range_hold, range_wait_if_busy) and is resumed on its
 * own reactor (sbc_resume) once it may go on; releasing is a trip too
 * (range_release_then_finish), and the task completes back home after it.
 *
 * The common path pays one acquire load: lu->caw_active, the number of held
 * ranges, written by the owner only. While it is 0 no command leaves its
 * reactor. A command that asked the owner and was found clear gets
 * t->range_pass, so coming back home it does not ask again.
 *
 * Limitations: as before, a command already past its check when a COMPARE AND
 * WRITE takes an overlapping range is not waited for (plain writes are not
 * tracked, that would cost every write a trip); and the owner does not look
 * at UNMAP's descriptors one by one, it queues UNMAP behind any held range.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "core/reactor.h"
#include "scsi_internal.h"

static bool overlaps(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
	return a < b + bn && b < a + an;
}

static void range_enqueue(struct caw_range *r, struct scsi_task *t)
{
	t->wait_next = NULL;
	t->state = SCSI_TS_WAITING;
	if (r->wait_tail)
		r->wait_tail->wait_next = t;
	else
		r->wait_head = t;
	r->wait_tail = t;
}

static struct caw_range *range_find(struct scsi_lu *lu, uint64_t lba, uint64_t n)
{
	for (struct caw_range *x = lu->caw_ranges; x; x = x->next)
		if (overlaps(lba, n, x->lba, x->nblocks))
			return x;
	return NULL;
}

static void range_link(struct scsi_lu *lu, struct caw_range *r)
{
	r->wait_head = r->wait_tail = NULL;
	r->held = true;
	r->next = lu->caw_ranges;
	lu->caw_ranges = r;
	atomic_fetch_add_explicit(&lu->caw_active, 1, memory_order_release);
}

/* A task could not reach the owner (no memory for the message): BUSY. */
static void unreachable(struct scsi_task *t, int rc)
{
	log_err("scsi: cannot reach the owner of LUN %u: %s", t->lu->lun, strerror(-rc));
	t->state = SCSI_TS_RUNNING;
	t->status = SAM_STAT_BUSY;
	t->sense_len = 0;
	task_finish(t);
}

/* ---- hold ---- */

static bool hold_here(struct scsi_lu *lu, struct caw_range *r, struct scsi_task *t)
{
	struct caw_range *x = range_find(lu, r->lba, r->nblocks);
	if (x) {
		range_enqueue(x, t);
		return false;
	}
	range_link(lu, r);
	return true;
}

static void hold_at_owner(void *a, void *b)
{
	struct scsi_task *t = a;
	if (hold_here(t->lu, b, t))
		sbc_resume(t);            /* r->held is set: it goes on at home */
}

bool range_hold(struct scsi_lu *lu, struct caw_range *r, struct scsi_task *t)
{
	if (lu_owner_here(lu))
		return hold_here(lu, r, t);
	t->state = SCSI_TS_WAITING;
	int rc = reactor_send(lu_owner(lu), hold_at_owner, t, r);
	if (rc)
		unreachable(t, rc);
	return false;
}

/* ---- wait ---- */

static void check_at_owner(void *a, void *b)
{
	struct scsi_task *t = a;
	struct scsi_lu *lu = t->lu;
	struct caw_range *x;
	uint64_t lba, n;
	(void)b;

	if (sbc_task_extent(t, &lba, &n))
		x = n ? range_find(lu, lba, n) : NULL;
	else
		x = lu->caw_ranges;       /* several extents: behind any held range */
	if (x) {
		range_enqueue(x, t);
		return;
	}
	t->range_pass = true;
	sbc_resume(t);
}

bool range_wait_if_busy(struct scsi_lu *lu, uint64_t lba, uint64_t nblocks, struct scsi_task *t)
{
	if (t->range_pass || nblocks == 0 ||
	    atomic_load_explicit(&lu->caw_active, memory_order_acquire) == 0)
		return false;
	if (lu_owner_here(lu)) {
		struct caw_range *x = range_find(lu, lba, nblocks);
		if (x)
			range_enqueue(x, t);
		return x != NULL;
	}
	t->state = SCSI_TS_WAITING;
	int rc = reactor_send(lu_owner(lu), check_at_owner, t, NULL);
	if (rc)
		unreachable(t, rc);
	return true;
}

/* ---- release ---- */

/* On the owner: removes r; the first waiter that wants a range of its own
 * gets it right away (r->held set, FIFO, no thundering herd), waiters
 * overlapping that one move behind it, the others are resumed. */
static void release_here(struct scsi_lu *lu, struct caw_range *r)
{
	struct scsi_task *wake_head = NULL, **wake_tail = &wake_head;
	struct caw_range *granted = NULL;

	for (struct caw_range **pp = &lu->caw_ranges; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			atomic_fetch_sub_explicit(&lu->caw_active, 1, memory_order_release);
			break;
		}
	}
	r->held = false;
	struct scsi_task *w = r->wait_head;
	r->wait_head = r->wait_tail = NULL;
	while (w) {
		struct scsi_task *next = w->wait_next;
		struct caw_range *wr = sbc_task_range(w);
		uint64_t lba, n;
		w->wait_next = NULL;
		if (wr && !granted && !range_find(lu, wr->lba, wr->nblocks)) {
			range_link(lu, wr);               /* handed over */
			granted = wr;
		} else if (granted && sbc_task_extent(w, &lba, &n) &&
			   overlaps(lba, n, granted->lba, granted->nblocks)) {
			range_enqueue(granted, w);        /* keeps waiting, in order */
			w = next;
			continue;
		}
		*wake_tail = w;
		wake_tail = &w->wait_next;
		w = next;
	}

	while (wake_head) {
		struct scsi_task *next = wake_head->wait_next;
		wake_head->wait_next = NULL;
		sbc_resume(wake_head);
		wake_head = next;
	}
}

void range_release(struct scsi_lu *lu, struct caw_range *r)
{
	if (!lu_owner_here(lu)) {
		/* Only sbc_aux_free could get here, and it does not. */
		log_err("scsi: range of LUN %u released away from its owner: ignored", lu->lun);
		return;
	}
	release_here(lu, r);
}

static void release_at_owner(struct scsi_task *t)
{
	release_here(t->lu, t->owner_data);
}

void range_release_then_finish(struct scsi_task *t, struct caw_range *r)
{
	t->owner_data = r;
	if (owner_call(t, release_at_owner, task_finish)) {
		/* The range stays held: its waiters wait for good. Loud. */
		log_err("scsi: COMPARE AND WRITE range of LUN %u not released", t->lu->lun);
		t->owner_data = NULL;
		task_finish(t);
	}
}
