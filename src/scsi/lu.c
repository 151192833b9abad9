/* lu.c — targets, logical units, I_T nexuses, unit attentions, resets and the
 * COMPARE AND WRITE range locks: the state reactors share.
 *
 * LU lookup on the I/O path is an atomic load of the LUN's slot plus a
 * reference count (so scsi_target_del_lu can wait for tasks to drain). A
 * deleted LU's memory is kept until the target is destroyed, so a reactor that
 * loaded the slot just before the delete can still touch the refcount safely
 * (it re-checks the slot after taking its reference and backs off).
 *
 * Unit attentions (SAM-5 5.14, SPC-4 5.?): one small queue per (LU, nexus),
 * reported one at a time, oldest first. A reset-class UA (ASC 29h) supersedes
 * what was queued before it; duplicates are not queued twice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "scsi/pr.h"
#include "scsi_internal.h"

/* IEEE company ID used in our NAA 6 designators: the locally administered bit of
 * the first octet is set, so it can not collide with an assigned OUI. */
#define LICH_NAA_COMPANY_ID 0x0A5C51u

#define DEL_DRAIN_WAIT_US   (30u * 1000 * 1000)

static _Atomic uint64_t next_nexus_id;

/* ---- small helpers ---- */

static uint64_t fnv1a64(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Two independent 64-bit hashes of (target name, LUN): stable across restarts. */
static void lu_identity_hash(const char *target, unsigned lun, uint64_t *h1, uint64_t *h2)
{
	char lunbuf[16];
	int n = snprintf(lunbuf, sizeof(lunbuf), "/%u", lun);

	*h1 = fnv1a64(0xcbf29ce484222325ull, target, strlen(target));
	*h1 = fnv1a64(*h1, lunbuf, (size_t)n);
	*h2 = fnv1a64(0x84222325cbf29ce4ull, lunbuf, (size_t)n);
	*h2 = fnv1a64(*h2, target, strlen(target));
}

static void make_naa(struct scsi_lu *lu, uint64_t h1, uint64_t h2)
{
	uint32_t cid = LICH_NAA_COMPANY_ID;
	uint64_t vsi = h1 & 0xfffffffffull;              /* 36 bits */
	uint8_t *p = lu->naa;

	p[0] = (uint8_t)(0x60 | ((cid >> 20) & 0x0f));
	p[1] = (uint8_t)(cid >> 12);
	p[2] = (uint8_t)(cid >> 4);
	p[3] = (uint8_t)(((cid & 0x0f) << 4) | ((vsi >> 32) & 0x0f));
	put_be32(p + 4, (uint32_t)vsi);
	put_be64(p + 8, h2);                             /* identifier extension */
}

/* Copies a configured ASCII string (printable, at most max chars). */
static int copy_ascii(char *dst, size_t dstsz, const char *src, const char *dflt, size_t max)
{
	if (!src || !*src)
		src = dflt;
	size_t n = strlen(src);
	if (n > max || n >= dstsz)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (src[i] < 0x20 || src[i] > 0x7e)
			return -EINVAL;
	memcpy(dst, src, n + 1);
	return 0;
}

/* ---- targets ---- */

struct scsi_target *scsi_target_create(const char *name, uint16_t tpgt)
{
	if (!name || !*name || strlen(name) >= sizeof(((struct scsi_target *)0)->name))
		return NULL;
	struct scsi_target *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->lus = calloc(SCSI_MAX_LUNS, sizeof(*t->lus));
	if (!t->lus) {
		free(t);
		return NULL;
	}
	strcpy(t->name, name);
	t->tpgt = tpgt;
	pthread_mutex_init(&t->lu_lock, NULL);
	pthread_mutex_init(&t->nexus_lock, NULL);
	return t;
}

const char *scsi_target_name(const struct scsi_target *t)
{
	return t->name;
}

static void lu_free_resources(struct scsi_lu *lu)
{
	if (lu->pr) {
		pr_destroy(lu->pr);
		lu->pr = NULL;
	}
	struct lu_ua_queue *q = lu->ua_queues;
	while (q) {
		struct lu_ua_queue *next = q->next;
		free(q);
		q = next;
	}
	lu->ua_queues = NULL;
	pthread_mutex_destroy(&lu->ua_lock);
	pthread_mutex_destroy(&lu->caw_lock);
	pthread_mutex_destroy(&lu->mode_lock);
}

void scsi_target_destroy(struct scsi_target *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < SCSI_MAX_LUNS; i++) {
		struct scsi_lu *lu = atomic_load(&t->lus[i]);
		if (lu) {
			lu_free_resources(lu);
			free(lu);
		}
	}
	struct scsi_lu *r = t->retired;
	while (r) {
		struct scsi_lu *next = r->retired_next;
		if (r->pr)      /* never drained: resources still held */
			lu_free_resources(r);
		free(r);
		r = next;
	}
	for (unsigned i = 0; i < t->nnexus; i++) {      /* still attached */
		free(t->nexus[i]->scsi_priv);
		t->nexus[i]->scsi_priv = NULL;
	}
	free(t->lus);
	free(t->nexus);
	pthread_mutex_destroy(&t->lu_lock);
	pthread_mutex_destroy(&t->nexus_lock);
	free(t);
}

struct scsi_lu *scsi_target_find_lu(struct scsi_target *t, uint64_t lun)
{
	if (!t || lun >= SCSI_MAX_LUNS)
		return NULL;
	return atomic_load_explicit(&t->lus[lun], memory_order_acquire);
}

unsigned scsi_target_lu_count(const struct scsi_target *t)
{
	return t->lu_count;
}

struct scsi_lu *lu_get(struct scsi_target *t, uint64_t lun)
{
	if (!t || lun >= SCSI_MAX_LUNS)
		return NULL;
	struct scsi_lu *lu = atomic_load_explicit(&t->lus[lun], memory_order_acquire);
	if (!lu)
		return NULL;
	atomic_fetch_add_explicit(&lu->refs, 1, memory_order_acq_rel);
	if (atomic_load_explicit(&t->lus[lun], memory_order_acquire) != lu) {
		lu_put(lu);          /* deleted meanwhile */
		return NULL;
	}
	return lu;
}

void lu_put(struct scsi_lu *lu)
{
	if (lu)
		atomic_fetch_sub_explicit(&lu->refs, 1, memory_order_acq_rel);
}

/* Calls fn for every LU of t, holding a reference on it meanwhile. */
static void lu_walk(struct scsi_target *t, void (*fn)(struct scsi_lu *lu, void *arg), void *arg)
{
	unsigned hwm = __atomic_load_n(&t->lun_hwm, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < hwm; i++) {
		struct scsi_lu *lu = lu_get(t, i);
		if (!lu)
			continue;
		fn(lu, arg);
		lu_put(lu);
	}
}

/* ---- unit attentions ---- */

static atomic_uint *nexus_pending(const struct scsi_nexus *n)
{
	struct nexus_state *st = n ? n->scsi_priv : NULL;
	return st ? &st->ua_pending : NULL;
}

/* Keeps both counters (LU and nexus) in step with q->n. */
static void ua_count(struct scsi_lu *lu, struct lu_ua_queue *q, int delta)
{
	atomic_uint *np = nexus_pending(q->nexus);
	if (delta > 0) {
		atomic_fetch_add(&lu->ua_pending, (unsigned)delta);
		if (np)
			atomic_fetch_add(np, (unsigned)delta);
	} else if (delta < 0) {
		atomic_fetch_sub(&lu->ua_pending, (unsigned)-delta);
		if (np)
			atomic_fetch_sub(np, (unsigned)-delta);
	}
}

static struct lu_ua_queue *ua_queue_find(struct scsi_lu *lu, struct scsi_nexus *n, bool create)
{
	for (struct lu_ua_queue *q = lu->ua_queues; q; q = q->next)
		if (q->nexus == n)
			return q;
	if (!create)
		return NULL;
	struct lu_ua_queue *q = calloc(1, sizeof(*q));
	if (!q) {
		log_err("scsi: no memory for a unit attention queue");
		return NULL;
	}
	q->nexus = n;
	q->next = lu->ua_queues;
	lu->ua_queues = q;
	return q;
}

static void ua_queue_drop(struct scsi_lu *lu, struct lu_ua_queue *q)
{
	for (struct lu_ua_queue **pp = &lu->ua_queues; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			ua_count(lu, q, -(int)q->n);
			free(q);
			return;
		}
	}
}

/* Caller holds lu->ua_lock. */
static void ua_push_locked(struct scsi_lu *lu, struct scsi_nexus *n, uint8_t asc, uint8_t ascq)
{
	struct lu_ua_queue *q = ua_queue_find(lu, n, true);
	if (!q)
		return;
	if (asc == 0x29 && q->n) {            /* a reset supersedes older UAs */
		ua_count(lu, q, -(int)q->n);
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
	ua_count(lu, q, 1);
}

void lu_ua_add(struct scsi_lu *lu, struct scsi_nexus *only, const struct scsi_nexus *except,
	       uint8_t asc, uint8_t ascq)
{
	struct scsi_target *t = lu->target;

	if (only) {
		pthread_mutex_lock(&lu->ua_lock);
		ua_push_locked(lu, only, asc, ascq);
		pthread_mutex_unlock(&lu->ua_lock);
		return;
	}
	pthread_mutex_lock(&t->nexus_lock);
	pthread_mutex_lock(&lu->ua_lock);
	for (unsigned i = 0; i < t->nnexus; i++)
		if (t->nexus[i] != except)
			ua_push_locked(lu, t->nexus[i], asc, ascq);
	pthread_mutex_unlock(&lu->ua_lock);
	pthread_mutex_unlock(&t->nexus_lock);
}

bool lu_ua_take(struct scsi_lu *lu, struct scsi_nexus *n, uint8_t *asc, uint8_t *ascq)
{
	atomic_uint *np = nexus_pending(n);
	bool got = false;

	if (np && atomic_load_explicit(np, memory_order_acquire) == 0)
		return false;
	if (atomic_load_explicit(&lu->ua_pending, memory_order_acquire) == 0)
		return false;
	pthread_mutex_lock(&lu->ua_lock);
	struct lu_ua_queue *q = ua_queue_find(lu, n, false);
	if (q && q->n) {
		*asc = q->asc[0];
		*ascq = q->ascq[0];
		memmove(q->asc, q->asc + 1, q->n - 1);
		memmove(q->ascq, q->ascq + 1, q->n - 1);
		q->n--;
		ua_count(lu, q, -1);
		got = true;
	}
	if (q && q->n == 0)
		ua_queue_drop(lu, q);
	pthread_mutex_unlock(&lu->ua_lock);
	return got;
}

struct ua_clear_arg {
	struct scsi_nexus *n;
	uint8_t asc, ascq;
	bool all;            /* drop the whole queue of the nexus */
};

static void ua_clear_one(struct scsi_lu *lu, void *arg)
{
	const struct ua_clear_arg *a = arg;

	pthread_mutex_lock(&lu->ua_lock);
	struct lu_ua_queue *q = ua_queue_find(lu, a->n, false);
	if (q && !a->all) {
		unsigned j = 0;
		for (unsigned i = 0; i < q->n; i++) {
			if (q->asc[i] == a->asc && q->ascq[i] == a->ascq)
				continue;
			q->asc[j] = q->asc[i];
			q->ascq[j] = q->ascq[i];
			j++;
		}
		ua_count(lu, q, -(int)(q->n - j));
		q->n = j;
	}
	if (q && (a->all || q->n == 0))
		ua_queue_drop(lu, q);
	pthread_mutex_unlock(&lu->ua_lock);
}

void target_ua_clear(struct scsi_target *t, struct scsi_nexus *n, uint8_t asc, uint8_t ascq)
{
	atomic_uint *np = nexus_pending(n);
	if (!n || (np && atomic_load(np) == 0))
		return;
	struct ua_clear_arg a = { n, asc, ascq, false };
	lu_walk(t, ua_clear_one, &a);
}

/* Persistent reservation events: UA for every nexus of that initiator port
 * (a bare iSCSI name designates all its ports; relative port 0 all target
 * ports — see pr.h). */
static void lu_pr_ua(void *ctx, const char *initiator_port, uint16_t rel_port_id,
		     uint8_t asc, uint8_t ascq)
{
	struct scsi_lu *lu = ctx;
	struct scsi_target *t = lu->target;

	pthread_mutex_lock(&t->nexus_lock);
	pthread_mutex_lock(&lu->ua_lock);
	for (unsigned i = 0; i < t->nnexus; i++) {
		struct scsi_nexus *n = t->nexus[i];
		if ((rel_port_id == 0 || n->rel_port_id == rel_port_id) &&
		    pr_initiator_port_match(initiator_port, n->initiator_port))
			ua_push_locked(lu, n, asc, ascq);
	}
	pthread_mutex_unlock(&lu->ua_lock);
	pthread_mutex_unlock(&t->nexus_lock);
}

/* PREEMPT AND ABORT: the transport aborts the tasks of every attached nexus
 * the preempted registration designates (see pr.h for the naming). The ids
 * are collected under the lock, the hook is called without it. */
static void lu_pr_abort(void *ctx, const struct scsi_task *by, const char *initiator_port,
			uint16_t rel_port_id)
{
	struct scsi_lu *lu = ctx;
	struct scsi_target *t = lu->target;
	scsi_preempt_abort_fn fn;
	void *fn_ctx;
	uint64_t *ids = NULL;
	unsigned n = 0;
	bool nomem = false;

	pthread_mutex_lock(&t->nexus_lock);
	fn = t->preempt_abort;
	fn_ctx = t->preempt_abort_ctx;
	if (fn && t->nnexus) {
		ids = malloc(t->nnexus * sizeof(*ids));
		nomem = !ids;
	}
	for (unsigned i = 0; ids && i < t->nnexus; i++) {
		const struct scsi_nexus *nx = t->nexus[i];
		if ((rel_port_id == 0 || nx->rel_port_id == rel_port_id) &&
		    pr_initiator_port_match(initiator_port, nx->initiator_port))
			ids[n++] = nx->id;
	}
	pthread_mutex_unlock(&t->nexus_lock);
	if (nomem)
		log_err("scsi: no memory for PREEMPT AND ABORT on LUN %u: tasks not aborted",
			lu->lun);
	for (unsigned i = 0; i < n; i++)
		fn(fn_ctx, by, ids[i]);
	free(ids);
}

void scsi_target_set_preempt_abort(struct scsi_target *t, scsi_preempt_abort_fn fn, void *ctx)
{
	pthread_mutex_lock(&t->nexus_lock);
	t->preempt_abort = fn;
	t->preempt_abort_ctx = ctx;
	pthread_mutex_unlock(&t->nexus_lock);
}

struct ua_add_arg {
	struct scsi_nexus *only;
	const struct scsi_nexus *except;
	uint8_t asc, ascq;
	const struct scsi_lu *skip;
};

static void ua_add_one(struct scsi_lu *lu, void *arg)
{
	const struct ua_add_arg *a = arg;
	if (lu != a->skip)
		lu_ua_add(lu, a->only, a->except, a->asc, a->ascq);
}

/* ---- logical units ---- */

void lu_mode_defaults(struct scsi_lu *lu)
{
	atomic_store(&lu->wce, lu->default_wce);
	atomic_store(&lu->swp, false);
}

int scsi_target_add_lu(struct scsi_target *t, const struct scsi_lu_opts *o)
{
	if (!t || !o || !o->bdev || o->lun >= SCSI_MAX_LUNS)
		return -EINVAL;
	struct bdev *b = o->bdev;
	if (b->block_size < 512 || b->block_size > 4096 || (b->block_size & (b->block_size - 1)) ||
	    b->size < b->block_size)
		return -EINVAL;
	if (atomic_load(&t->lus[o->lun]))
		return -EEXIST;

	struct scsi_lu *lu = calloc(1, sizeof(*lu));
	if (!lu)
		return -ENOMEM;
	int rc = copy_ascii(lu->vendor, sizeof(lu->vendor), o->vendor, "LICH", 8);
	if (!rc)
		rc = copy_ascii(lu->product, sizeof(lu->product), o->product, "VIRTUAL-DISK", 16);
	if (!rc)
		rc = copy_ascii(lu->revision, sizeof(lu->revision), o->revision, "0001", 4);
	uint64_t h1, h2;
	lu_identity_hash(t->name, o->lun, &h1, &h2);
	char derived[17];
	snprintf(derived, sizeof(derived), "%016llx", (unsigned long long)h1);
	if (!rc)
		rc = copy_ascii(lu->serial, sizeof(lu->serial), o->serial, derived, 64);
	if (!rc && o->device_id && *o->device_id)
		rc = copy_ascii(lu->device_id, sizeof(lu->device_id), o->device_id, "", 64);
	if (rc) {
		log_err("scsi: LUN %u: vendor/product/revision/serial/device id must be short printable ASCII",
			o->lun);
		free(lu);
		return rc;
	}

	lu->target = t;
	lu->lun = o->lun;
	lu->bdev = b;
	lu->block_size = b->block_size;
	lu->nblocks = b->size / b->block_size;
	/* One logical block per physical block, although backends allocate and
	 * punch whole pages: libiscsi's GET LBA STATUS test (UnmapSingle) can not
	 * be passed with LBPPB > 1. The page size is advertised instead as the
	 * optimal transfer and unmap granularities (Block Limits VPD). */
	lu->lbppbe = 0;
	lu->readonly = o->readonly || b->readonly;
	lu->thin = b->can_unmap;
	lu->default_wce = o->write_cache;
	make_naa(lu, h1, h2);
	lu_mode_defaults(lu);
	pthread_mutex_init(&lu->mode_lock, NULL);
	pthread_mutex_init(&lu->ua_lock, NULL);
	pthread_mutex_init(&lu->caw_lock, NULL);

	rc = pr_create(o->pr_file, lu_pr_ua, lu, &lu->pr);
	if (rc < 0) {
		log_err("scsi: LUN %u: persistent reservation state %s: %s", o->lun,
			o->pr_file ? o->pr_file : "(none)", strerror(-rc));
		lu->pr = NULL;
		lu_free_resources(lu);
		free(lu);
		return rc;
	}
	pr_set_abort_fn(lu->pr, lu_pr_abort, lu);

	pthread_mutex_lock(&t->lu_lock);
	if (atomic_load(&t->lus[o->lun])) {
		pthread_mutex_unlock(&t->lu_lock);
		lu_free_resources(lu);
		free(lu);
		return -EEXIST;
	}
	/* Sessions already logged in see the new LU "powered on" ... */
	pthread_mutex_lock(&t->nexus_lock);
	pthread_mutex_lock(&lu->ua_lock);
	for (unsigned i = 0; i < t->nnexus; i++)
		ua_push_locked(lu, t->nexus[i], 0x29, 0x00);
	pthread_mutex_unlock(&lu->ua_lock);
	pthread_mutex_unlock(&t->nexus_lock);
	atomic_store_explicit(&t->lus[o->lun], lu, memory_order_release);
	if (o->lun + 1 > t->lun_hwm)
		__atomic_store_n(&t->lun_hwm, o->lun + 1, __ATOMIC_RELEASE);
	t->lu_count++;
	pthread_mutex_unlock(&t->lu_lock);

	/* ... and the inventory change on the other LUs (SPC-4 REPORT LUNS). */
	struct ua_add_arg a = { NULL, NULL, 0x3f, 0x0e, lu };
	lu_walk(t, ua_add_one, &a);
	log_info("scsi: %s LUN %u added (%llu blocks of %u bytes%s%s)", t->name, o->lun,
		 (unsigned long long)lu->nblocks, lu->block_size, lu->thin ? ", thin" : "",
		 lu->readonly ? ", read-only" : "");
	return 0;
}

int scsi_target_del_lu(struct scsi_target *t, unsigned lun)
{
	if (!t || lun >= SCSI_MAX_LUNS)
		return -EINVAL;
	pthread_mutex_lock(&t->lu_lock);
	struct scsi_lu *lu = atomic_load(&t->lus[lun]);
	if (!lu) {
		pthread_mutex_unlock(&t->lu_lock);
		return -ENOENT;
	}
	atomic_store_explicit(&t->lus[lun], NULL, memory_order_release);
	atomic_store(&lu->removed, true);
	t->lu_count--;
	lu->retired_next = t->retired;
	t->retired = lu;
	pthread_mutex_unlock(&t->lu_lock);

	struct ua_add_arg a = { NULL, NULL, 0x3f, 0x0e, NULL };
	lu_walk(t, ua_add_one, &a);

	/* Tasks still running on the LU hold references: wait for them, since the
	 * caller may close the bdev as soon as we return. */
	unsigned waited = 0;
	while (atomic_load(&lu->refs) && waited < DEL_DRAIN_WAIT_US) {
		usleep(1000);
		waited += 1000;
	}
	if (atomic_load(&lu->refs)) {
		log_err("scsi: %s LUN %u removed but %u tasks still use it", t->name, lun,
			atomic_load(&lu->refs));
		return -EBUSY;
	}
	lu_free_resources(lu);
	log_info("scsi: %s LUN %u removed", t->name, lun);
	return 0;
}

/* ---- nexuses ---- */

static void nexus_power_on(struct scsi_lu *lu, void *arg)
{
	lu_ua_add(lu, arg, NULL, 0x29, 0x00);
}

int scsi_nexus_attach(struct scsi_target *t, struct scsi_nexus *n)
{
	if (!t || !n)
		return -EINVAL;
	struct nexus_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	n->id = atomic_fetch_add(&next_nexus_id, 1) + 1;
	n->scsi_priv = st;
	pthread_mutex_lock(&t->nexus_lock);
	if (t->nnexus == t->nexus_cap) {
		unsigned cap = t->nexus_cap ? t->nexus_cap * 2 : 8;
		struct scsi_nexus **a = realloc(t->nexus, cap * sizeof(*a));
		if (!a) {
			pthread_mutex_unlock(&t->nexus_lock);
			n->scsi_priv = NULL;
			free(st);
			return -ENOMEM;
		}
		t->nexus = a;
		t->nexus_cap = cap;
	}
	t->nexus[t->nnexus++] = n;
	pthread_mutex_unlock(&t->nexus_lock);
	lu_walk(t, nexus_power_on, n);
	return 0;
}

static void nexus_gone(struct scsi_lu *lu, void *arg)
{
	struct scsi_nexus *n = arg;
	struct ua_clear_arg a = { n, 0, 0, true };
	ua_clear_one(lu, &a);
	pr_nexus_lost(lu->pr, n);
}

void scsi_nexus_detach(struct scsi_target *t, struct scsi_nexus *n)
{
	if (!t || !n)
		return;
	bool found = false;
	pthread_mutex_lock(&t->nexus_lock);
	for (unsigned i = 0; i < t->nnexus; i++) {
		if (t->nexus[i] == n) {
			t->nexus[i] = t->nexus[--t->nnexus];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&t->nexus_lock);
	if (!found)
		return;
	/* No UA can be queued for n any more (it left the list): drop what is. */
	lu_walk(t, nexus_gone, n);
	free(n->scsi_priv);
	n->scsi_priv = NULL;
}

/* ---- task management ---- */

struct reset_arg {
	uint8_t ascq;
};

static void lu_reset_one(struct scsi_lu *lu, void *arg)
{
	const struct reset_arg *a = arg;

	/* SAM-5 logical unit reset: SPC-2 reservations released, mode parameters
	 * back to their defaults (nothing is saved), the unit ready again, and a
	 * unit attention for every I_T nexus — the one that asked included, as
	 * initiators sharing the LU over several paths all need to learn of it. */
	pr_lu_reset(lu->pr);
	lu_mode_defaults(lu);
	atomic_store(&lu->stopped, false);
	lu_ua_add(lu, NULL, NULL, 0x29, a->ascq);
}

int scsi_lu_reset(struct scsi_target *t, uint64_t lun, struct scsi_nexus *by)
{
	(void)by;
	struct scsi_lu *lu = lu_get(t, lun);
	if (!lu)
		return -ENOENT;
	struct reset_arg a = { 0x03 };       /* BUS DEVICE RESET FUNCTION OCCURRED */
	lu_reset_one(lu, &a);
	lu_put(lu);
	return 0;
}

int scsi_target_reset(struct scsi_target *t, struct scsi_nexus *by)
{
	(void)by;
	if (!t)
		return -EINVAL;
	struct reset_arg a = { 0x00 };       /* POWER ON, RESET, OR BUS DEVICE RESET */
	lu_walk(t, lu_reset_one, &a);
	return 0;
}

static void nexus_reset_one(struct scsi_lu *lu, void *arg)
{
	struct scsi_nexus *n = arg;
	pr_nexus_lost(lu->pr, n);
	lu_ua_add(lu, n, NULL, 0x29, 0x07);     /* I_T NEXUS LOSS OCCURRED */
}

int scsi_nexus_reset(struct scsi_target *t, struct scsi_nexus *n)
{
	if (!t || !n)
		return -EINVAL;
	lu_walk(t, nexus_reset_one, n);
	return 0;
}

void scsi_lu_tasks_cleared(struct scsi_target *t, uint64_t lun, struct scsi_nexus *by)
{
	struct scsi_lu *lu = lu_get(t, lun);
	if (!lu)
		return;
	/* COMMANDS CLEARED BY ANOTHER INITIATOR (TAS is 0 in our Control page). */
	lu_ua_add(lu, NULL, by, 0x2f, 0x00);
	lu_put(lu);
}

/* ---- COMPARE AND WRITE ranges ---- */

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

/* Caller holds caw_lock. */
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
	atomic_fetch_add(&lu->caw_active, 1);
}

bool range_hold(struct scsi_lu *lu, struct caw_range *r, struct scsi_task *t)
{
	pthread_mutex_lock(&lu->caw_lock);
	struct caw_range *x = range_find(lu, r->lba, r->nblocks);
	if (x) {
		range_enqueue(x, t);
		pthread_mutex_unlock(&lu->caw_lock);
		return false;
	}
	range_link(lu, r);
	pthread_mutex_unlock(&lu->caw_lock);
	return true;
}

bool range_wait_if_busy(struct scsi_lu *lu, uint64_t lba, uint64_t nblocks, struct scsi_task *t)
{
	if (atomic_load_explicit(&lu->caw_active, memory_order_acquire) == 0 || nblocks == 0)
		return false;
	pthread_mutex_lock(&lu->caw_lock);
	struct caw_range *x = range_find(lu, lba, nblocks);
	if (x)
		range_enqueue(x, t);
	pthread_mutex_unlock(&lu->caw_lock);
	return x != NULL;
}

void range_release(struct scsi_lu *lu, struct caw_range *r)
{
	struct scsi_task *wake_head = NULL, **wake_tail = &wake_head;
	struct caw_range *granted = NULL;

	pthread_mutex_lock(&lu->caw_lock);
	for (struct caw_range **pp = &lu->caw_ranges; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			atomic_fetch_sub(&lu->caw_active, 1);
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
	pthread_mutex_unlock(&lu->caw_lock);

	while (wake_head) {
		struct scsi_task *next = wake_head->wait_next;
		wake_head->wait_next = NULL;
		sbc_resume(wake_head);
		wake_head = next;
	}
}
