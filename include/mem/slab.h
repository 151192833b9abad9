/* slab.h — fixed-size object caches on top of a mem_pool.
 *
 * Contract: a cache hands out objects of one size (rounded up to its alignment,
 * min 16 B). Slabs are buddy blocks from the pool (order chosen so a slab holds
 * at least 8 objects, at most 64 KiB for small objects); each slab keeps its own
 * free list, and the cache keeps partial slabs first so allocation and free are
 * O(1). A slab that becomes entirely free is returned to the pool once the cache
 * already holds one other empty slab (hysteresis, so alloc/free at a boundary
 * does not churn pages). The slab's page descriptor in the pool records its cache,
 * so mem_free() can find it. Not thread safe (owning reactor only).
 *
 * Objects are not zeroed. Freeing an object twice or into the wrong cache is
 * detected when cheaply possible (-EINVAL from slab_free_checked), never ignored.
 */
#ifndef LICH_MEM_SLAB_H
#define LICH_MEM_SLAB_H

#include <stddef.h>
#include <stdint.h>

struct mem_pool;
struct slab_cache;

#define SLAB_MIN_OBJ 16
#define SLAB_MAX_OBJ 2048

struct slab_stats {
	const char *name;
	size_t obj_size;
	size_t in_use;          /* objects handed out */
	size_t bytes_in_use;    /* in_use * obj_size */
	size_t high_water;      /* max in_use ever */
	size_t slabs;           /* slabs held */
	size_t slab_bytes;
	uint64_t allocs;
	uint64_t failed;        /* allocations that found no memory */
};

struct slab_cache *slab_cache_create(struct mem_pool *p, const char *name,
				     size_t obj_size, size_t align);
/* Returns all slabs to the pool (objects still out become invalid). */
void slab_cache_destroy(struct slab_cache *c);
void *slab_alloc(struct slab_cache *c);
void slab_free(struct slab_cache *c, void *obj);
int slab_free_checked(struct slab_cache *c, void *obj);
void slab_get_stats(const struct slab_cache *c, struct slab_stats *out);
size_t slab_obj_size(const struct slab_cache *c);

/* Iterates the pool's caches (for stats dumps). */
struct slab_cache *slab_cache_next(struct mem_pool *p, struct slab_cache *prev);

/* Internal to src/mem: mem_pool_destroy() calls this for a cache its owner has
 * not destroyed. The cache forgets its slabs and pool (allocations then fail,
 * frees are rejected) so a later slab_cache_destroy() is still safe. */
void slab_cache_orphan(struct slab_cache *c);

#endif
