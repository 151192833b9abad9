/* slab.h — fixed-size object caches on top of a mem_pool.
 *
 * Contract: a cache hands out objects of one size (rounded up to its alignment,
 * min 16 B). Slabs are buddy blocks from the pool (order chosen so a slab holds
 * 64 objects if that takes at most 64 KiB, else at least 8); each slab keeps a
 * bitmap of its free objects, and the cache keeps partial slabs first so that
 * taking objects from slabs is O(1). A slab that becomes entirely free is
 * returned to the pool once the cache already holds one other empty slab
 * (hysteresis, so alloc/free at a boundary does not churn pages). The slab's
 * page descriptor in the pool records its cache, so mem_free() can find it.
 * Not thread safe (owning reactor only). Objects are not zeroed.
 *
 * Magazines (Bonwick & Adams, "Magazines and Vmem", 2001): in front of the
 * slabs every cache keeps LIFO arrays of recently freed objects (like the
 * kernel's per-CPU slab caches, SPDK's per-core mempool caches or glibc's
 * tcache). slab_alloc() pops from the "loaded" magazine and slab_free() pushes
 * onto it, inline, without touching any slab. When it runs empty (full), an
 * out-of-line call first swaps it with the "previous" magazine if that one is
 * full (empty); otherwise it exchanges it with a full (empty) magazine of the
 * cache's depot; only when the depot has none (no room) does it move half a
 * magazine from (to) the slabs in one batch. So a working set that grows and
 * shrinks by up to the depot's size never touches a slab bitmap.
 * Objects in magazines are free as far as the statistics go (in_use counts
 * objects handed out, cached those in magazines), but they keep their slabs
 * non-empty, so their pages go back to the pool only once the magazines are
 * flushed: slab_cache_flush(), or slab_cache_trim(), which mem_pool_trim()
 * calls for every cache of its pool.
 * Bounds: a magazine holds at most SLAB_MAG_MAX objects and about 128 KiB of
 * them (at least 4); the depot at most SLAB_DEPOT_MAX full magazines, fewer
 * so that all magazines together (loaded + previous + depot) hold at most
 * 256 KiB of objects — or two magazines, if those alone are larger. For 64 B
 * objects that is 18 x 64 objects (72 KiB); for 512 B, 8 x 64 (256 KiB); for
 * 2 KiB, 2 x 64 and no depot. stats.cached_max is this bound. Magazine arrays
 * are malloc'd once at cache creation; the paths allocate nothing.
 *
 * Checking — the trade-off, stated plainly:
 *   - slab_free_checked() always validates fully and returns -EINVAL (changing
 *     nothing) for a pointer that is not pool memory, belongs to another cache
 *     or another pool, is not the start of an object, was never handed out, or
 *     is already free — including an object still sitting in a magazine:
 *     it scans the loaded one and tests a per-magazine Bloom filter (built on
 *     first use, kept while the magazine is unchanged) of the previous one and
 *     each in the depot, scanning those only where the filter says maybe.
 *   - slab_free() in a build with -DLICH_DEBUG does the same checks on every
 *     call and logs and ignores a bad free.
 *   - slab_free() in a release build TRUSTS ITS CALLER: obj must be a live object
 *     of c, handed out by slab_alloc(c). It is pushed onto the magazine without
 *     looking at it. A double free or a free into the wrong cache is then not
 *     detected at the free: the object may be handed out twice. When a magazine
 *     is flushed to the slabs, each object is checked against its slab header (right cache,
 *     object start, not already free) and a bad one is logged and dropped, but
 *     that is a safety net, not a guarantee — an object is usually reused from
 *     the magazine before it is ever flushed. A pointer that is not memory of
 *     c's pool is undefined behaviour (the flush reads its would-be slab header).
 * Use slab_free_checked() where the pointer comes from somewhere that may be
 * wrong, and run the tests with LICH_DEBUG (make check-asan does).
 */
#ifndef LICH_MEM_SLAB_H
#define LICH_MEM_SLAB_H

#include <stddef.h>
#include <stdint.h>

struct mem_pool;
struct slab_cache;

#define SLAB_MIN_OBJ 16
#define SLAB_MAX_OBJ 2048
/* Largest magazine; a cache of big objects gets a smaller one (see slab.c). */
#define SLAB_MAG_MAX 64
/* Most full magazines a cache's depot holds (see "Bounds" above). */
#define SLAB_DEPOT_MAX 16

struct slab_stats {
	const char *name;
	size_t obj_size;
	size_t in_use;          /* objects handed out (not those in magazines) */
	size_t bytes_in_use;    /* in_use * obj_size */
	size_t high_water;      /* max in_use ever */
	size_t slabs;           /* slabs held */
	size_t slab_bytes;
	uint64_t allocs;
	uint64_t failed;        /* allocations that found no memory */
	size_t cached;          /* free objects in magazines: loaded + previous
				 * + depot (added with the magazine) */
	size_t cached_max;      /* most objects the magazines together hold */
	size_t mag_cap;         /* one magazine's capacity (added with the depot) */
	size_t depot;           /* full magazines in the depot (added with it) */
};

struct slab_cache *slab_cache_create(struct mem_pool *p, const char *name,
				     size_t obj_size, size_t align);
/* Returns all slabs to the pool (objects still out become invalid). */
void slab_cache_destroy(struct slab_cache *c);
static inline void *slab_alloc(struct slab_cache *c);
/* obj may be NULL (no-op). See "Checking" above for what is verified. */
static inline void slab_free(struct slab_cache *c, void *obj);
int slab_free_checked(struct slab_cache *c, void *obj);
/* Returns every magazine's objects (loaded, previous, depot) to their slabs;
 * the slabs that empties go to the pool as usual (all but one spare). */
void slab_cache_flush(struct slab_cache *c);
/* slab_cache_flush(), then gives the spare empty slab back too: the cache holds
 * only slabs with objects in use. For idle time (mem_pool_trim()). */
void slab_cache_trim(struct slab_cache *c);
void slab_get_stats(const struct slab_cache *c, struct slab_stats *out);
size_t slab_obj_size(const struct slab_cache *c);

/* Iterates the pool's caches (for stats dumps). */
struct slab_cache *slab_cache_next(struct mem_pool *p, struct slab_cache *prev);

/* Internal to src/mem: mem_pool_destroy() calls this for a cache its owner has
 * not destroyed. The cache forgets its slabs and pool (allocations then fail,
 * frees are rejected) so a later slab_cache_destroy() is still safe. */
void slab_cache_orphan(struct slab_cache *c);

/* ---------- inline fast paths; the rest of this file is internal ----------
 *
 * struct slab_mag (the loaded magazine) is the first member of struct
 * slab_cache (slab.c), so the fast paths reach it through the opaque cache
 * pointer. Only slab.c and the two functions below may touch it. */
struct slab_mag {
	uint32_t n;             /* objects in obj[]; obj[n - 1] was freed last */
	uint32_t cap;           /* a magazine's capacity; 0 once orphaned, so
				 * every call takes the slow path */
	void **obj;             /* the loaded magazine's array (cap slots) */
	size_t out;             /* objects handed out + in obj[]: in_use = out - n
				 * (the previous and depot magazines are not in
				 * it, so swaps adjust it by cap) */
	size_t high_water;      /* max of out - n */
	uint64_t allocs;
};

/* Out of line: swap with the previous magazine, exchange with the depot, or
 * refill from the slabs (or fail); likewise for a full magazine, flushing half
 * of it to the slabs only when the depot is full. Call the wrappers instead. */
void *slab_alloc_slow(struct slab_cache *c);
void slab_free_slow(struct slab_cache *c, void *obj);
/* slab_free_checked(), logging and ignoring a bad free: slab_free() in
 * LICH_DEBUG builds, and mem_free() always. */
void slab_free_logged(struct slab_cache *c, void *obj);

static inline struct slab_mag *slab_mag_of(struct slab_cache *c)
{
	return (struct slab_mag *)(void *)c;
}

static inline void *slab_alloc(struct slab_cache *c)
{
	struct slab_mag *m = slab_mag_of(c);
	uint32_t n = m->n;

	if (__builtin_expect(n == 0, 0))
		return slab_alloc_slow(c);
	m->n = --n;
	m->allocs++;
	/* in_use only grows here and in the slow path; out is fixed between
	 * slow paths, so this is the whole high-water bookkeeping. */
	if (m->out - n > m->high_water)
		m->high_water = m->out - n;
	return m->obj[n];
}

static inline void slab_free(struct slab_cache *c, void *obj)
{
#ifdef LICH_DEBUG
	slab_free_logged(c, obj);
#else
	struct slab_mag *m = slab_mag_of(c);
	uint32_t n = m->n;

	if (__builtin_expect(n < m->cap && obj != NULL, 1)) {
		m->obj[n] = obj;
		m->n = n + 1;
		return;
	}
	slab_free_slow(c, obj);
#endif
}

#endif
