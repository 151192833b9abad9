/* lu.c — targets, logical units and resets.
 *
 * LU lookup on the I/O path is an atomic load of the LUN's slot plus a
 * reference count (so scsi_target_del_lu can wait for tasks to drain). A
 * deleted LU's memory is kept until the target is destroyed, so a reactor that
 * loaded the slot just before the delete can still touch the refcount safely
 * (it re-checks the slot after taking its reference and backs off).
 *
 * Unit attentions and nexuses are ua.c's (kept by each nexus' home reactor);
 * reservations, COMPARE AND WRITE ranges and mode changes are the LU owner's
 * (owner.c, range.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
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
	free(lu->abort_ports);
	lu->abort_ports = NULL;
}

/* LUs of a destroyed target that a message still holds — the last session's
 * "nexus lost" travels to the LU's owner reactor while the session's drop
 * destroys the target — wait here until their last reference is gone. Swept
 * by later destroys and at exit. Configuration path only, hence the lock. */
static pthread_mutex_t grave_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scsi_lu *grave;

static void grave_sweep(bool everything)
{
	struct scsi_lu **pp = &grave;

	while (*pp) {
		struct scsi_lu *lu = *pp;
		if (!everything && atomic_load_explicit(&lu->refs, memory_order_acquire)) {
			pp = &lu->retired_next;
			continue;
		}
		*pp = lu->retired_next;
		lu_free_resources(lu);
		free(lu);
	}
}

/* At exit the reactors are gone: whatever a message held is freed too. */
__attribute__((destructor)) static void grave_fini(void)
{
	pthread_mutex_lock(&grave_lock);
	grave_sweep(true);
	pthread_mutex_unlock(&grave_lock);
}

static void lu_free_or_bury(struct scsi_lu *lu)
{
	if (atomic_load_explicit(&lu->refs, memory_order_acquire)) {
		lu->retired_next = grave;
		grave = lu;
		return;
	}
	lu_free_resources(lu);      /* no-op for a retired LU that was drained */
	free(lu);
}

void scsi_target_destroy(struct scsi_target *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&grave_lock);
	grave_sweep(false);
	/* no LU was ever added at or above the high-water mark */
	for (unsigned i = 0; i < t->lun_hwm; i++) {
		struct scsi_lu *lu = atomic_load(&t->lus[i]);
		if (lu)
			lu_free_or_bury(lu);
	}
	struct scsi_lu *r = t->retired;
	while (r) {
		struct scsi_lu *next = r->retired_next;
		lu_free_or_bury(r);
		r = next;
	}
	pthread_mutex_unlock(&grave_lock);
	target_nexus_free_all(t);
	free(t->lus);
	pthread_mutex_destroy(&t->lu_lock);
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

/* Calls fn for every LU of t, holding a reference on it meanwhile. */
void target_lu_walk(struct scsi_target *t, void (*fn)(struct scsi_lu *lu, void *arg), void *arg)
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
	lu->map_reads = b->can_map;
	lu->default_wce = o->write_cache;
	lu->stats = o->stats;
	make_naa(lu, h1, h2);
	lu_mode_defaults(lu);

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
	pr_set_retire_fn(lu->pr, owner_view_retire, lu);

	pthread_mutex_lock(&t->lu_lock);
	if (atomic_load(&t->lus[o->lun])) {
		pthread_mutex_unlock(&t->lu_lock);
		lu_free_resources(lu);
		free(lu);
		return -EEXIST;
	}
	/* Sessions already logged in see the new LU "powered on" (their home
	 * reactors queue it as the event reaches them) ... */
	lu_ua_add(lu, NULL, NULL, 0x29, 0x00);
	atomic_store_explicit(&t->lus[o->lun], lu, memory_order_release);
	if (o->lun + 1 > t->lun_hwm)
		__atomic_store_n(&t->lun_hwm, o->lun + 1, __ATOMIC_RELEASE);
	t->lu_count++;
	pthread_mutex_unlock(&t->lu_lock);

	/* ... and the inventory change on the other LUs (SPC-4 REPORT LUNS). */
	struct ua_add_arg a = { NULL, NULL, 0x3f, 0x0e, lu };
	target_lu_walk(t, ua_add_one, &a);
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
	target_lu_walk(t, ua_add_one, &a);
	lu_ua_drop_all(lu);         /* what the nexuses still had queued for it */

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

/* The reservation state is the owner's: SPC-2 reservations end there. The
 * nexus may be gone by then, so its names travel as a copy, and the LU is
 * held until the message ran. */
static void nexus_lost_at_owner(void *a, void *b)
{
	struct scsi_lu *lu = a;
	pr_nexus_lost(lu->pr, b);
	free(b);
	lu_put(lu);
}

static void lu_pr_nexus_lost(struct scsi_lu *lu, const struct scsi_nexus *n)
{
	struct scsi_nexus *copy = malloc(sizeof(*copy));
	if (!copy) {
		log_err("scsi: no memory to end the SPC-2 reservation of a lost nexus on LUN %u",
			lu->lun);
		return;
	}
	memcpy(copy, n, sizeof(*copy));
	atomic_fetch_add(&lu->refs, 1);
	if (owner_post(lu, nexus_lost_at_owner, lu, copy)) {
		free(copy);
		lu_put(lu);
	}
}

/* Detach (ua.c): the nexus' UA queues go with it; its SPC-2 reservation ends. */
void lu_nexus_gone(struct scsi_lu *lu, void *arg)
{
	lu_pr_nexus_lost(lu, arg);
}

/* ---- task management ---- */

struct reset_arg {
	uint8_t ascq;
};

static void lu_reset_at_owner(void *a, void *b)
{
	struct scsi_lu *lu = a;
	(void)b;
	pr_lu_reset(lu->pr);
	lu_mode_defaults(lu);
	lu_put(lu);
}

static void lu_reset_one(struct scsi_lu *lu, void *arg)
{
	const struct reset_arg *a = arg;

	/* SAM-5 logical unit reset: SPC-2 reservations released, mode parameters
	 * back to their defaults (nothing is saved) — both on the LU's owner —,
	 * the unit ready again, and a unit attention for every I_T nexus — the
	 * one that asked included, as initiators sharing the LU over several
	 * paths all need to learn of it. */
	atomic_fetch_add(&lu->refs, 1);
	if (owner_post(lu, lu_reset_at_owner, lu, NULL))
		lu_put(lu);
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
	target_lu_walk(t, lu_reset_one, &a);
	return 0;
}

static void nexus_reset_one(struct scsi_lu *lu, void *arg)
{
	struct scsi_nexus *n = arg;
	lu_pr_nexus_lost(lu, n);
	lu_ua_add(lu, n, NULL, 0x29, 0x07);     /* I_T NEXUS LOSS OCCURRED */
}

int scsi_nexus_reset(struct scsi_target *t, struct scsi_nexus *n)
{
	if (!t || !n)
		return -EINVAL;
	target_lu_walk(t, nexus_reset_one, n);
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
