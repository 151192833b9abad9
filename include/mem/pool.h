/* pool.h — a reactor's memory: 2 MiB chunks, a buddy per chunk, grown on demand.
 *
 * Contract: a pool belongs to one reactor thread; nothing locks. Chunks are 2 MiB
 * hugepages (mmap MAP_HUGETLB) bound to the pool's NUMA node, or, when hugepages
 * cannot be had (none reserved, or opts.no_hugepages), ordinary pages mapped 2 MiB
 * aligned; the first fallback logs one line saying so. The pool maps chunks as
 * allocations need them, until limit bytes are mapped; past that an allocation
 * returns NULL and counts a failure — it never aborts.
 *
 * Chunks that become entirely free stay mapped (and registered): unmapping on
 * free would put munmap/deregistration, and later mmap/registration again, on
 * the data path. mem_pool_trim() returns them, keeping one spare and the
 * preallocation; the owner calls it when it sees fit (e.g. an idle timer).
 *
 * Page magazine: a few freed blocks of each small order (4 KiB .. 64 KiB, about
 * 256 KiB per order) are kept aside, still allocated in their buddy, and handed
 * out again first, so an alloc/free cycle does not split and re-merge a chunk.
 * They count as free (page_cached_bytes, not page_bytes_in_use); a double free
 * of one is still detected. They go back to their buddies when the pool would
 * otherwise have to map a chunk or fail, and in mem_pool_trim(). A 4 KiB block
 * (every 4 KiB I/O buffer) has fast paths: mem_pool_alloc_pages(p, 0) pops the
 * magazine, and mem_free()/mem_pool_free_pages() of a live raw 4 KiB block push
 * it, checked by one per-page state byte found through the chunk of the last
 * such free (else the table); anything else takes the general path.
 *
 * Addresses map to their chunk in O(1) (chunks are 2 MiB aligned; a small open
 * addressed table keyed by addr >> 21), so free needs no size and the
 * registration handle (RDMA memory region, io_uring fixed buffer) of any byte
 * of pool memory is one lookup (inline: mem_pool_reg_handle_id()).
 *
 * Registrations: up to MEM_POOL_MAX_REGS hooks per pool (e.g. the reactor's
 * io_uring fixed-buffer table and an RDMA protection domain), each with its own
 * id. mem_pool_add_reg() registers every mapped chunk with the new hook now and
 * every chunk mapped later with every hook, once each; a chunk is unregistered
 * from each hook (newest first) when it is unmapped (mem_pool_trim), when its
 * hook is removed (mem_pool_del_reg) and when the pool is destroyed. A chunk
 * that any hook refuses is unmapped and the allocation that wanted it fails; a
 * hook for which registration is only an optimisation (io_uring) should
 * therefore succeed with a NULL handle rather than fail. Hooks run on the
 * pool's thread and must not allocate from or change the pool.
 *
 * General allocations: mem_alloc() serves sizes up to SLAB_MAX_OBJ from the
 * pool's size-classed slab caches (64 B .. 2 KiB, powers of two) and larger ones
 * as buddy blocks (rounded up to a power-of-two number of pages, up to 2 MiB).
 * mem_free() finds which from the page descriptor.
 */
#ifndef LICH_MEM_POOL_H
#define LICH_MEM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mem_pool;

struct mem_pool_opts {
	const char *name;      /* for logs and stats */
	size_t limit;          /* max bytes mapped; rounded down to 2 MiB, min 2 MiB */
	size_t prealloc;       /* bytes mapped at creation (0 = none) */
	int numa_node;         /* -1: no binding */
	bool no_hugepages;     /* use ordinary pages even if hugepages exist */
};

struct mem_reg_ops {
	/* Registers one chunk (addr 2 MiB aligned, len 2 MiB). Returns 0 and sets
	 * *handle, or -errno. A NULL handle is allowed but reads back as "not
	 * registered" from mem_pool_reg_handle_id(). */
	int (*reg)(void *ctx, void *addr, size_t len, void **handle);
	void (*unreg)(void *ctx, void *handle);
	void *ctx;
};

#define MEM_POOL_MAX_REGS 4   /* registration hooks per pool */

struct mem_pool_stats {
	size_t chunks;              /* chunks mapped now */
	size_t hugepage_chunks;     /* of which backed by hugepages */
	size_t mapped_bytes;
	size_t limit;
	size_t page_bytes_in_use;   /* bytes in buddy blocks handed out (incl. slabs) */
	size_t page_high_water;
	uint64_t page_allocs;
	uint64_t failed_allocs;     /* page allocations refused (limit or mmap) */
	size_t page_cached_bytes;   /* free blocks held in the page magazines (added) */
};

struct mem_pool *mem_pool_create(const struct mem_pool_opts *opts);
/* Frees every chunk (after unregistering), even if blocks are still out. */
void mem_pool_destroy(struct mem_pool *p);

/* A block of 2^order 4 KiB pages, order 0..9, aligned to its size; NULL if none. */
void *mem_pool_alloc_pages(struct mem_pool *p, unsigned order);
void mem_pool_free_pages(struct mem_pool *p, void *addr);

/* Flushes every slab cache's magazine and empty slabs (slab_cache_trim())
 * and the page magazines, then unmaps entirely free chunks beyond one spare
 * (never below opts.prealloc); returns the bytes unmapped. Added beyond the
 * original contract: see above. */
size_t mem_pool_trim(struct mem_pool *p);

/* Size-classed allocation from this pool; NULL on failure or bytes > 2 MiB. */
void *mem_alloc(struct mem_pool *p, size_t bytes);
void *mem_zalloc(struct mem_pool *p, size_t bytes);
/* addr may be NULL. Freeing a pointer the pool did not hand out is a bug: it is
 * detected (chunk lookup fails) and logged, never silently corrupts. So is a
 * double free or an interior pointer: slab objects get slab_free_checked()'s
 * full checks here (unlike slab_free() in release builds, see slab.h), page
 * blocks the buddy's and the page magazine's. */
void mem_free(struct mem_pool *p, void *addr);
/* Usable size of a mem_alloc block. */
size_t mem_usable_size(struct mem_pool *p, const void *addr);

/* True if addr lies in one of this pool's chunks. */
bool mem_pool_owns(const struct mem_pool *p, const void *addr);
/* Installs a registration hook (ops is copied) and registers every mapped
 * chunk with it; sets *id (0 .. MEM_POOL_MAX_REGS - 1, the lowest free). All or
 * nothing: if a chunk's registration fails, those done are unregistered and
 * its error returned. -EINVAL: ops or a callback missing; -EBUSY: every id in
 * use. (Replaces mem_pool_set_reg(), which allowed one hook.) */
int mem_pool_add_reg(struct mem_pool *p, const struct mem_reg_ops *ops, unsigned *id);
/* Unregisters every chunk from hook id and frees the id; -ENOENT if not in use. */
int mem_pool_del_reg(struct mem_pool *p, unsigned id);
/* Handle from hook id of the chunk holding addr: NULL if addr is not pool
 * memory or that chunk is not registered with id. O(1), inline (one probe of
 * the chunk table, below); for the data path. */
static inline void *mem_pool_reg_handle_id(const struct mem_pool *p, unsigned id,
					   const void *addr);

void mem_pool_get_stats(const struct mem_pool *p, struct mem_pool_stats *out);
/* Writes a human readable multi-line report (pool + every slab cache). */
void mem_pool_dump_stats(const struct mem_pool *p, char *buf, size_t len);
const char *mem_pool_name(const struct mem_pool *p);

/* True if this process could map at least one hugepage (probed once). */
bool mem_hugepages_available(void);

/* --- Internal to src/mem (slab.c and pool.c); other layers must not use these. ---
 * Slabs are buddy blocks whose page descriptors name their cache, so mem_free()
 * and slab_free() can tell a slab object from a raw page block by address. */
struct slab_cache;
/* Like mem_pool_alloc_pages, and records `owner` for every page of the block. */
void *mem_pool_alloc_slab(struct mem_pool *p, unsigned order, struct slab_cache *owner);
/* Returns a block from mem_pool_alloc_slab and clears its page owners. */
void mem_pool_free_slab(struct mem_pool *p, void *block);
/* Cache owning the page holding addr; NULL for raw page blocks, free pages and
 * addresses outside the pool. O(1). */
struct slab_cache *mem_pool_page_owner(const struct mem_pool *p, const void *addr);

/* The addr -> chunk table itself, so slab_free_checked() can inline the lookup
 * above (it is on the path of every checked free). Open addressing with linear
 * probing, key addr >> 21, Fibonacci hashing; a slot with owner == NULL is
 * empty. The table struct lives as long as its pool; its slots move when it
 * grows. */
struct mem_chunk_slot {
	uintptr_t key;
	struct slab_cache **owner;      /* the chunk's per-page owner array */
};
struct mem_chunk_table {
	struct mem_chunk_slot *slots;
	unsigned bits;                  /* 2^bits slots */
	unsigned shift;                 /* 64 - bits, for mem_chunk_home() */
};
const struct mem_chunk_table *mem_pool_chunk_table(const struct mem_pool *p);

static inline size_t mem_chunk_home(const struct mem_chunk_table *t, uintptr_t key)
{
	return (size_t)(((uint64_t)key * 0x9e3779b97f4a7c15ull) >> t->shift);
}

/* Per-page owner array of the chunk holding addr, or NULL. The home slot
 * decides nearly always (the load factor is at most 1/2), so it is tested
 * before the probe loop sets up. A slot's key is only meaningful while its
 * owner is set, but an empty slot ends the probe anyway: either way the
 * answer is that slot's owner. */
static inline struct slab_cache **mem_chunk_owners(const struct mem_chunk_table *t,
						   const void *addr)
{
	uintptr_t key = (uintptr_t)addr >> 21;
	size_t i = mem_chunk_home(t, key);
	const struct mem_chunk_slot *s = &t->slots[i];

	if (__builtin_expect(s->key == key || !s->owner, 1))
		return s->owner;
	for (size_t mask = ((size_t)1 << t->bits) - 1;;) {
		i = (i + 1) & mask;
		s = &t->slots[i];
		if (!s->owner || s->key == key)
			return s->owner;
	}
}

static inline struct slab_cache *mem_chunk_page_owner(const struct mem_chunk_table *t,
						      const void *addr)
{
	struct slab_cache **owner = mem_chunk_owners(t, addr);

	return owner ? owner[((uintptr_t)addr >> 12) & 511] : NULL;
}
/* The start of a chunk's descriptor, which the table slots point at: the
 * per-page owners, then each registration's handle (NULL while the chunk is not
 * registered with that id), so the handle lookup inlines too. */
struct mem_chunk_head {
	struct slab_cache *owner[512];
	void *reg_handle[MEM_POOL_MAX_REGS];
};

/* struct mem_pool starts with its chunk table (asserted in pool.c). */
static inline const struct mem_chunk_table *mem_pool_table_of(const struct mem_pool *p)
{
	return (const struct mem_chunk_table *)(const void *)p;
}

static inline void *mem_pool_reg_handle_id(const struct mem_pool *p, unsigned id,
					   const void *addr)
{
	struct slab_cache **owner = mem_chunk_owners(mem_pool_table_of(p), addr);

	if (!owner || id >= MEM_POOL_MAX_REGS)
		return NULL;
	return ((const struct mem_chunk_head *)(const void *)owner)->reg_handle[id];
}

/* Head of the pool's list of slab caches (linked by slab.c). */
struct slab_cache **mem_pool_cache_list(struct mem_pool *p);
/* For tests: every chunk's buddy passes buddy_check(), the page magazines
 * agree with their chunks, and free + cached + in-use pages add up to what is
 * mapped. 0 or -EFAULT. O(chunks). */
int mem_pool_check(const struct mem_pool *p);

#endif
