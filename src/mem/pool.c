/* pool.c — a reactor's memory: 2 MiB chunks with a buddy each; see
 * include/mem/pool.h.
 *
 * Layout:
 *   - every chunk has an out-of-band descriptor (struct chunk): its buddy, its
 *     handle for each registration (reg_mask says which are set), whether it is
 *     hugepage backed, and a per-page owner
 *     (the slab cache that owns the page, NULL for raw page blocks);
 *   - a table keyed by addr >> 21 finds a chunk from any address in O(1);
 *   - chunks sit on one of NR_LISTS lists by their largest free order, and a
 *     bitmask says which lists are non-empty, so finding a chunk that can serve
 *     an order is a mask and a count-trailing-zeros, never a scan;
 *   - a page magazine per small order (4 KiB .. 64 KiB) keeps a few freed
 *     blocks, still allocated in their buddy, for the next allocation of that
 *     order: an alloc/free cycle of a page would otherwise split an empty chunk
 *     nine levels down and merge it back up every time. A block in the page
 *     magazine is marked PS_CACHED in its chunk's per-page state, so a second
 *     free of it is still detected; the buddy itself is unchanged (buddy_check
 *     holds);
 *   - the same per-page state marks a raw 4 KiB page that is handed out
 *     (PS_PAGE). That one byte proves everything a free of it must check (a
 *     live block head, order 0, no slab owner, not parked), so the common
 *     4 KiB free is a chunk lookup (mostly a compare with the last one's), a
 *     byte compare and a magazine push, and the alloc a pop; both are fast
 *     paths at the top of mem_pool_alloc_pages() and mem_free() /
 *     mem_pool_free_pages(), which fall back to the general code.
 * Not thread safe: one reactor owns a pool.
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"
#include "mem/buddy.h"
#include "mem/pool.h"
#include "mem/slab.h"

#define CHUNK_SHIFT 21
#define CHUNK_SIZE  ((size_t)BUDDY_CHUNK_SIZE)
_Static_assert(CHUNK_SIZE == (size_t)1 << CHUNK_SHIFT, "chunk is 2 MiB");

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* List index: 0 = full chunks, o + 1 = largest free block has order o. The last
 * list therefore holds the entirely free chunks. */
#define NR_LISTS   (BUDDY_MAX_ORDER + 2)
#define FREE_LIST  (NR_LISTS - 1)

/* Size classes 64 B .. 2 KiB. */
#define CLASS_MIN_SHIFT 6
#define NR_CLASSES      6
_Static_assert(SLAB_MAX_OBJ == 1 << (CLASS_MIN_SHIFT + NR_CLASSES - 1), "classes");

#define TAB_MIN_BITS 4

/* Page magazine: orders below PMAG_ORDERS, at most PMAG_MAX blocks and about
 * PMAG_BYTES per order (so 64 x 4 KiB, ..., 4 x 64 KiB): 64 covers a queue
 * depth of 64 one-page data buffers without going back to the buddy. */
#define PMAG_ORDERS  5
#define PMAG_MAX     64
#define PMAG_BYTES   ((size_t)256 << 10)
#define MAX_NODES    1024   /* highest node number we bind to, exclusive */

/* Per-page state (struct chunk's pstate[]), of the block starting at a page. */
enum {
	PS_OTHER = 0,     /* none of the below: free, interior, slab, larger block */
	PS_CACHED,        /* parked in a page magazine */
	PS_PAGE,          /* a raw order-0 block (no slab owner) handed out */
};

struct chunk {
	/* first, as struct mem_chunk_head: the table points here */
	struct slab_cache *owner[BUDDY_PAGES];
	void *reg_handle[MEM_POOL_MAX_REGS];   /* NULL unless reg_mask has the id */
	struct buddy buddy;
	/* PS_*. Bytes, not bits: plain stores, no read-modify-write chaining
	 * alloc to free. */
	uint8_t pstate[BUDDY_PAGES];
	struct chunk *next, *prev;       /* on pool->lists[list] */
	unsigned list;
	bool hugepage;
	uint8_t reg_mask;                /* bit id: registered with regs[id] */
};
_Static_assert(offsetof(struct chunk, owner) == offsetof(struct mem_chunk_head, owner) &&
	       offsetof(struct chunk, reg_handle) == offsetof(struct mem_chunk_head, reg_handle),
	       "table slots point at a struct mem_chunk_head");
_Static_assert(BUDDY_PAGE_SHIFT == 12 && BUDDY_PAGES == 512, "inline lookup in pool.h");

/* Entry k is a block and its page state byte in its chunk (pstate[] of its
 * first page): the 4 KiB pop marks it PS_PAGE with one store, and the chunk is
 * found back from it when the slow paths need it (chunk_of_state()). */
struct page_mag {
	unsigned n, cap;
	void *addr[PMAG_MAX];
	uint8_t *state[PMAG_MAX];
};

struct mem_pool {
	struct mem_chunk_table tab;      /* first (mem_pool_table_of()): addr >> 21 ->
					  * chunk (via its owner array) */
	size_t tab_used;

	struct chunk *lists[NR_LISTS];
	size_t list_len[NR_LISTS];
	uint32_t list_mask;              /* bit i: lists[i] non-empty */

	size_t chunks, hugepage_chunks, min_chunks;
	size_t limit;
	int numa_node;                   /* -1: not bound */
	bool no_hugepages;

	uint8_t reg_used;                /* bit id: regs[id] is installed */
	struct mem_reg_ops regs[MEM_POOL_MAX_REGS];

	struct slab_cache *classes[NR_CLASSES];
	struct slab_cache *caches;       /* every cache of this pool, linked by slab.c */

	struct page_mag pmag[PMAG_ORDERS];
	/* The chunk the last 4 KiB free found (key addr >> 21; ~0 if none): it
	 * spares the table probe while frees keep hitting the same chunk. */
	uintptr_t hot_key;
	struct chunk *hot_chunk;

	size_t page_bytes_in_use, page_high_water;
	uint64_t page_allocs, failed_allocs;
	char name[32];
};

_Static_assert(offsetof(struct mem_pool, tab) == 0, "mem_pool_table_of() casts");

/* ---------- mapping chunks ---------- */

/* Binds [addr, addr + CHUNK_SIZE) to the pool's node; must precede the first
 * touch, since pages are placed when faulted. */
static int bind_chunk(const struct mem_pool *p, void *addr)
{
	const unsigned word_bits = 8 * sizeof(long);
	unsigned long mask[MAX_NODES / (8 * sizeof(long))];
	unsigned node = (unsigned)p->numa_node;

	if (p->numa_node < 0)
		return 0;
	memset(mask, 0, sizeof(mask));
	mask[node / word_bits] |= 1ul << (node % word_bits);
	/* The kernel reads maxnode - 1 bits, hence the + 1. */
	if (mbind(addr, CHUNK_SIZE, MPOL_BIND, mask, MAX_NODES + 1, 0) < 0)
		return -errno;
	return 0;
}

/* Faults every page in now. For hugetlb memory this is what makes a shortage
 * (e.g. no free hugepage on the bound node) an error code here instead of a
 * SIGBUS on first touch in the data path; MAP_POPULATE would not do, as it
 * ignores failures. Kernels before 5.14 lack the advice (EINVAL): then the
 * hugetlb reservation taken at mmap time is all the guarantee we get. */
static int populate_chunk(void *addr)
{
	if (madvise(addr, CHUNK_SIZE, MADV_POPULATE_WRITE) == 0 || errno == EINVAL)
		return 0;
	return -errno;
}

static void *map_hugepage_chunk(const struct mem_pool *p, int *err)
{
	/* MAP_HUGE_2MB: the default hugepage size could be 1 GiB. A 2 MiB hugetlb
	 * mapping is 2 MiB aligned by construction. */
	void *a = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);

	if (a == MAP_FAILED) {
		*err = errno;
		return NULL;
	}
	int r = bind_chunk(p, a);

	if (r == 0)
		r = populate_chunk(a);
	if (r < 0) {
		munmap(a, CHUNK_SIZE);
		*err = -r;
		return NULL;
	}
	return a;
}

/* Ordinary pages, 2 MiB aligned: map twice the size and trim both ends. They
 * are prefaulted like hugepages: pool memory gets registered (pinned) anyway,
 * and page faults do not belong on the data path. */
static void *map_plain_chunk(const struct mem_pool *p)
{
	size_t len = 2 * CHUNK_SIZE;
	uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (raw == MAP_FAILED)
		return NULL;
	uintptr_t a = ((uintptr_t)raw + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1);
	size_t head = a - (uintptr_t)raw, tail = len - head - CHUNK_SIZE;

	if (head)
		munmap(raw, head);
	if (tail)
		munmap((void *)(a + CHUNK_SIZE), tail);
	/* Transparent hugepages, if the kernel allows them: fewer TLB misses. */
	(void)madvise((void *)a, CHUNK_SIZE, MADV_HUGEPAGE);
	int r = bind_chunk(p, (void *)a);

	if (r < 0)
		log_warn("mem pool %s: cannot bind chunk to node %d: %s",
			 p->name, p->numa_node, strerror(-r));
	if (populate_chunk((void *)a) < 0) {
		munmap((void *)a, CHUNK_SIZE);
		return NULL;
	}
	return (void *)a;
}

static void warn_fallback_once(int err)
{
	static bool warned;

	if (warned)
		return;
	warned = true;
	log_warn("hugepages unavailable (%s): falling back to 4 KiB pages; see nr_hugepages",
		 strerror(err));
}

/* Hugepages are tried for every new chunk (growth is rare, and pages reserved
 * later are then picked up); the fallback is logged once per process. */
static void *map_chunk(const struct mem_pool *p, bool *hugepage)
{
	int err = 0;
	void *a = NULL;

	if (!p->no_hugepages) {
		a = map_hugepage_chunk(p, &err);
		if (!a)
			warn_fallback_once(err);
	}
	*hugepage = a != NULL;
	return a ? a : map_plain_chunk(p);
}

bool mem_hugepages_available(void)
{
	static int probed = -1;

	if (probed < 0) {
		void *a = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB,
			       -1, 0);

		probed = a != MAP_FAILED;
		if (probed)
			munmap(a, CHUNK_SIZE);
	}
	return probed;
}

/* ---------- address -> chunk table (open addressing, linear probing) ---------- */

static uintptr_t key_of(const void *addr) { return (uintptr_t)addr >> CHUNK_SHIFT; }

static size_t tab_mask(const struct mem_pool *p) { return ((size_t)1 << p->tab.bits) - 1; }

static struct chunk *slot_chunk(const struct mem_chunk_slot *s)
{
	return (struct chunk *)(void *)s->owner;   /* owner[] is at offset 0 */
}

static struct chunk *chunk_of(const struct mem_pool *p, const void *addr)
{
	return (struct chunk *)(void *)mem_chunk_owners(&p->tab, addr);
}

static void tab_place(struct mem_pool *p, struct chunk *c)
{
	uintptr_t key = key_of(c->buddy.base);
	size_t mask = tab_mask(p), i = mem_chunk_home(&p->tab, key);

	while (p->tab.slots[i].owner)
		i = (i + 1) & mask;
	p->tab.slots[i].key = key;
	p->tab.slots[i].owner = c->owner;
}

static int tab_resize(struct mem_pool *p, unsigned bits)
{
	struct mem_chunk_slot *old = p->tab.slots;
	struct mem_chunk_slot *slots = calloc((size_t)1 << bits, sizeof(*slots));
	size_t old_size = old ? tab_mask(p) + 1 : 0;

	if (!slots)
		return -ENOMEM;
	p->tab.slots = slots;
	p->tab.bits = bits;
	p->tab.shift = 64 - bits;
	for (size_t i = 0; i < old_size; i++)
		if (old[i].owner)
			tab_place(p, slot_chunk(&old[i]));
	free(old);
	return 0;
}

static int tab_insert(struct mem_pool *p, struct chunk *c)
{
	/* Keep the load factor at or below 1/2 so probes stay short. */
	if (2 * (p->tab_used + 1) > tab_mask(p) + 1 &&
	    tab_resize(p, p->tab.bits + 1) < 0)
		return -ENOMEM;
	tab_place(p, c);
	p->tab_used++;
	return 0;
}

/* True if slot j's entry, whose home is h, may not move back to hole i: that is
 * when h lies cyclically in (i, j]. */
static bool tab_stays(size_t i, size_t j, size_t h)
{
	return i <= j ? (h > i && h <= j) : (h > i || h <= j);
}

/* Backward-shift deletion: no tombstones, lookups stay exact. */
static void tab_remove(struct mem_pool *p, const struct chunk *c)
{
	struct mem_chunk_slot *t = p->tab.slots;
	size_t mask = tab_mask(p), i = mem_chunk_home(&p->tab, key_of(c->buddy.base));

	while (t[i].owner != c->owner)
		i = (i + 1) & mask;
	for (size_t j = i;;) {
		t[i].owner = NULL;
		do {
			j = (j + 1) & mask;
			if (!t[j].owner) {
				p->tab_used--;
				return;
			}
		} while (tab_stays(i, j, mem_chunk_home(&p->tab, t[j].key)));
		t[i] = t[j];
		i = j;
	}
}

/* ---------- chunk lists by largest free order ---------- */

static unsigned list_for(const struct chunk *c)
{
	return (unsigned)(buddy_max_free_order(&c->buddy) + 1);
}

static void list_add(struct mem_pool *p, struct chunk *c, unsigned l)
{
	c->list = l;
	c->prev = NULL;
	c->next = p->lists[l];
	if (c->next)
		c->next->prev = c;
	p->lists[l] = c;
	p->list_len[l]++;
	p->list_mask |= 1u << l;
}

static void list_del(struct mem_pool *p, struct chunk *c)
{
	unsigned l = c->list;

	if (c->prev)
		c->prev->next = c->next;
	else
		p->lists[l] = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (--p->list_len[l] == 0)
		p->list_mask &= ~(1u << l);
}

/* Moves c to the list matching its buddy's state after an alloc or free. */
static void chunk_relist(struct mem_pool *p, struct chunk *c)
{
	unsigned l = list_for(c);

	if (l != c->list) {
		list_del(p, c);
		list_add(p, c, l);
	}
}

/* The fullest chunk that still has a free block of at least `order`, or NULL.
 * Best fit leaves whole chunks free for large blocks and for mem_pool_trim(). */
static struct chunk *chunk_for_order(const struct mem_pool *p, unsigned order)
{
	uint32_t usable = p->list_mask & ~((1u << (order + 1)) - 1);

	return usable ? p->lists[__builtin_ctz(usable)] : NULL;
}

/* ---------- chunk life cycle ---------- */

_Static_assert(MEM_POOL_MAX_REGS <= 8, "reg_mask is 8 bits");

static int chunk_register(struct mem_pool *p, struct chunk *c, unsigned id)
{
	const struct mem_reg_ops *ops = &p->regs[id];
	void *h = NULL;
	int r = ops->reg(ops->ctx, c->buddy.base, CHUNK_SIZE, &h);

	if (r < 0)
		return r;
	c->reg_handle[id] = h;
	c->reg_mask |= (uint8_t)(1u << id);
	return 0;
}

static void chunk_unregister(struct mem_pool *p, struct chunk *c, unsigned id)
{
	const struct mem_reg_ops *ops = &p->regs[id];

	if (!(c->reg_mask & (1u << id)))
		return;
	c->reg_mask &= (uint8_t)~(1u << id);
	ops->unreg(ops->ctx, c->reg_handle[id]);
	c->reg_handle[id] = NULL;
}

/* Newest registration first: the reverse of chunk_register_all. */
static void chunk_unregister_all(struct mem_pool *p, struct chunk *c)
{
	for (unsigned id = MEM_POOL_MAX_REGS; id-- > 0;)
		chunk_unregister(p, c, id);
}

/* With every installed registration, or (on failure) with none. */
static int chunk_register_all(struct mem_pool *p, struct chunk *c)
{
	for (unsigned id = 0; id < MEM_POOL_MAX_REGS; id++) {
		int r = p->reg_used & (1u << id) ? chunk_register(p, c, id) : 0;

		if (r < 0) {
			chunk_unregister_all(p, c);
			return r;
		}
	}
	return 0;
}

/* Maps, registers and lists one more chunk; NULL if the limit, mmap, or the
 * registration hook refuses. */
static struct chunk *chunk_new(struct mem_pool *p)
{
	if ((p->chunks + 1) * CHUNK_SIZE > p->limit)
		return NULL;
	struct chunk *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	void *base = map_chunk(p, &c->hugepage);

	if (!base)
		goto fail_free;
	buddy_init(&c->buddy, base);
	if (tab_insert(p, c) < 0)
		goto fail_unmap;
	int r = chunk_register_all(p, c);

	if (r < 0) {
		log_warn("mem pool %s: registering new chunk failed: %s", p->name, strerror(-r));
		tab_remove(p, c);
		goto fail_unmap;
	}
	list_add(p, c, FREE_LIST);
	p->chunks++;
	p->hugepage_chunks += c->hugepage;
	return c;

fail_unmap:
	munmap(base, CHUNK_SIZE);
fail_free:
	free(c);
	return NULL;
}

static void chunk_release(struct mem_pool *p, struct chunk *c)
{
	if (p->hot_chunk == c) {
		p->hot_key = ~(uintptr_t)0;
		p->hot_chunk = NULL;
	}
	list_del(p, c);
	tab_remove(p, c);
	chunk_unregister_all(p, c);
	munmap(c->buddy.base, CHUNK_SIZE);
	p->chunks--;
	p->hugepage_chunks -= c->hugepage;
	free(c);
}

/* Entirely free chunks are not unmapped on free: that would put munmap and a
 * deregistration (and later mmap, populate and registration again) on the data
 * path whenever usage swings around a chunk boundary. mem_pool_trim() gives
 * them back when the owner decides to, e.g. from an idle timer. */
static void pmag_flush_all(struct mem_pool *p);

size_t mem_pool_trim(struct mem_pool *p)
{
	size_t freed = 0;

	/* Objects in slab magazines keep their slabs, and blocks in the page
	 * magazines their chunks, from being free: give them back first, and the
	 * caches' spare empty slabs. Slab trims free slab blocks into the page
	 * magazines, hence this order. */
	for (struct slab_cache *c = p->caches; c; c = slab_cache_next(p, c))
		slab_cache_trim(c);
	pmag_flush_all(p);
	/* Keep one spare, and never go below the preallocation. */
	while (p->list_len[FREE_LIST] > 1 && p->chunks > p->min_chunks) {
		chunk_release(p, p->lists[FREE_LIST]);
		freed += CHUNK_SIZE;
	}
	return freed;
}

/* ---------- pool ---------- */

static int check_node(int node)
{
	if (node < 0)
		return 0;
	if (numa_available() < 0) {
		log_warn("NUMA unavailable: memory not bound to node %d", node);
		return -ENOSYS;
	}
	return node <= numa_max_node() && node < MAX_NODES ? 0 : -EINVAL;
}

struct mem_pool *mem_pool_create(const struct mem_pool_opts *opts)
{
	struct mem_pool *p = calloc(1, sizeof(*p));

	if (!p || !opts || tab_resize(p, TAB_MIN_BITS) < 0)
		goto fail;
	p->hot_key = ~(uintptr_t)0;      /* above any addr >> 21 */
	snprintf(p->name, sizeof(p->name), "%s", opts->name ? opts->name : "pool");
	p->limit = opts->limit & ~(CHUNK_SIZE - 1);
	if (p->limit < CHUNK_SIZE)
		p->limit = CHUNK_SIZE;
	p->no_hugepages = opts->no_hugepages;
	p->numa_node = opts->numa_node;
	int r = check_node(opts->numa_node);

	if (r == -EINVAL) {
		log_err("mem pool %s: no NUMA node %d", p->name, opts->numa_node);
		goto fail;
	}
	if (r < 0)
		p->numa_node = -1;   /* no NUMA support: nothing to bind to */
	size_t want = (opts->prealloc + CHUNK_SIZE - 1) / CHUNK_SIZE;

	if (want > p->limit / CHUNK_SIZE)
		want = p->limit / CHUNK_SIZE;
	while (p->chunks < want) {
		if (!chunk_new(p)) {
			log_err("mem pool %s: cannot map %zu preallocated bytes", p->name,
				opts->prealloc);
			goto fail;
		}
	}
	p->min_chunks = want;
	for (unsigned o = 0; o < PMAG_ORDERS; o++) {
		size_t cap = PMAG_BYTES >> (BUDDY_PAGE_SHIFT + o);

		p->pmag[o].cap = (unsigned)(cap < PMAG_MAX ? cap : PMAG_MAX);
	}
	return p;

fail:
	if (p)
		mem_pool_destroy(p);
	return NULL;
}

void mem_pool_destroy(struct mem_pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < NR_CLASSES; i++)
		slab_cache_destroy(p->classes[i]);
	/* Caches created by users and not destroyed: detach, do not free. */
	while (p->caches) {
		log_warn("mem pool %s: a slab cache outlives its pool", p->name);
		slab_cache_orphan(p->caches);   /* unlinks it */
	}
	for (unsigned l = 0; l < NR_LISTS; l++)
		while (p->lists[l])
			chunk_release(p, p->lists[l]);
	free(p->tab.slots);
	free(p);
}

const char *mem_pool_name(const struct mem_pool *p) { return p->name; }

bool mem_pool_owns(const struct mem_pool *p, const void *addr)
{
	return chunk_of(p, addr) != NULL;
}

/* ---------- registrations ---------- */

/* The chunk in table slot i, or NULL. */
static struct chunk *chunk_at(const struct mem_pool *p, size_t i)
{
	return p->tab.slots[i].owner ? slot_chunk(&p->tab.slots[i]) : NULL;
}

static void unregister_id(struct mem_pool *p, unsigned id)
{
	for (size_t i = 0; i <= tab_mask(p); i++) {
		struct chunk *c = chunk_at(p, i);

		if (c)
			chunk_unregister(p, c, id);
	}
}

int mem_pool_add_reg(struct mem_pool *p, const struct mem_reg_ops *ops, unsigned *id)
{
	unsigned free_ids = ~(unsigned)p->reg_used & ((1u << MEM_POOL_MAX_REGS) - 1);

	if (!ops || !ops->reg || !ops->unreg || !id)
		return -EINVAL;
	if (!free_ids)
		return -EBUSY;
	unsigned k = (unsigned)__builtin_ctz(free_ids);

	p->regs[k] = *ops;
	p->reg_used |= (uint8_t)(1u << k);
	for (size_t i = 0; i <= tab_mask(p); i++) {
		struct chunk *c = chunk_at(p, i);
		int r = c ? chunk_register(p, c, k) : 0;

		if (r < 0) {
			/* All or nothing: undo the chunks registered so far. */
			unregister_id(p, k);
			p->reg_used &= (uint8_t)~(1u << k);
			memset(&p->regs[k], 0, sizeof(p->regs[k]));
			return r;
		}
	}
	*id = k;
	return 0;
}

int mem_pool_del_reg(struct mem_pool *p, unsigned id)
{
	if (id >= MEM_POOL_MAX_REGS || !(p->reg_used & (1u << id)))
		return -ENOENT;
	unregister_id(p, id);
	p->reg_used &= (uint8_t)~(1u << id);
	memset(&p->regs[id], 0, sizeof(p->regs[id]));
	return 0;
}

/* ---------- pages ---------- */

/* Chunks are CHUNK_SIZE aligned, so the address alone gives the page. */
static size_t page_index(const void *addr)
{
	return ((uintptr_t)addr >> BUDDY_PAGE_SHIFT) & (BUDDY_PAGES - 1);
}

/* Bytes parked in the page magazines (not counted on the hot paths). */
static size_t pmag_bytes(const struct mem_pool *p)
{
	size_t bytes = 0;

	for (unsigned o = 0; o < PMAG_ORDERS; o++)
		bytes += (size_t)p->pmag[o].n * BUDDY_PAGE_SIZE << o;
	return bytes;
}

static bool is_cached(const struct chunk *c, size_t page)
{
	return c->pstate[page] == PS_CACHED;
}

/* The chunk whose pstate[] holds state, the state of the block at addr. */
static struct chunk *chunk_of_state(const uint8_t *state, const void *addr)
{
	return (struct chunk *)(void *)(state - page_index(addr) -
					offsetof(struct chunk, pstate));
}

static void pmag_put(struct page_mag *m, struct chunk *c, void *addr)
{
	uint8_t *state = &c->pstate[page_index(addr)];

	*state = PS_CACHED;
	m->addr[m->n] = addr;
	m->state[m->n] = state;
	m->n++;
}

/* Gives a block back to its buddy for real, merging. */
static void buddy_return(struct mem_pool *p, struct chunk *c, void *addr)
{
	buddy_free(&c->buddy, addr);
	chunk_relist(p, c);
}

/* Returns every page magazine block to its buddy. */
static void pmag_flush_all(struct mem_pool *p)
{
	for (unsigned o = 0; o < PMAG_ORDERS; o++) {
		struct page_mag *m = &p->pmag[o];

		while (m->n > 0) {
			void *addr = m->addr[--m->n];
			uint8_t *state = m->state[m->n];

			*state = PS_OTHER;
			buddy_return(p, chunk_of_state(state, addr), addr);
		}
	}
}

/* A free block of `order` from the buddies, mapping a chunk if none has one;
 * sets *chunk. Before the pool grows, blocks parked in the page magazines go
 * back to their buddies, in case merging them makes room. */
static uint8_t *buddy_take(struct mem_pool *p, unsigned order, struct chunk **chunk)
{
	struct chunk *c = chunk_for_order(p, order);

	if (!c && pmag_bytes(p)) {
		pmag_flush_all(p);
		c = chunk_for_order(p, order);
	}
	if (!c)
		c = chunk_new(p);
	if (!c)
		return NULL;
	uint8_t *blk = buddy_alloc(&c->buddy, order);

	chunk_relist(p, c);
	*chunk = c;
	return blk;
}

static void *pages_alloc(struct mem_pool *p, unsigned order, struct slab_cache *owner)
{
	struct page_mag *m = order < PMAG_ORDERS ? &p->pmag[order] : NULL;
	size_t bytes = (size_t)BUDDY_PAGE_SIZE << order;
	struct chunk *c;
	uint8_t *blk;

	if (m && m->n > 0) {
		m->n--;
		blk = m->addr[m->n];
		c = chunk_of_state(m->state[m->n], blk);
	} else {
		blk = buddy_take(p, order, &c);
		if (!blk) {
			p->failed_allocs++;
			return NULL;
		}
	}
	size_t first = page_index(blk);

	c->pstate[first] = order == 0 && !owner ? PS_PAGE : PS_OTHER;
	if (owner)
		for (size_t i = 0; i < ((size_t)1 << order); i++)
			c->owner[first + i] = owner;
	p->page_allocs++;
	p->page_bytes_in_use += bytes;
	if (p->page_bytes_in_use > p->page_high_water)
		p->page_high_water = p->page_bytes_in_use;
	return blk;
}

/* Frees the block at addr in chunk c; -EINVAL if addr is not a live block
 * (including one already parked in a page magazine). */
static int pages_free(struct mem_pool *p, struct chunk *c, void *addr)
{
	int order = buddy_block_order(&c->buddy, addr);

	if (order < 0)
		return order;
	size_t first = page_index(addr), bytes = (size_t)BUDDY_PAGE_SIZE << order;

	if (is_cached(c, first))
		return -EINVAL;
	if (c->owner[first])
		for (size_t i = 0; i < ((size_t)1 << order); i++)
			c->owner[first + i] = NULL;
	p->page_bytes_in_use -= bytes;

	struct page_mag *m = order < PMAG_ORDERS ? &p->pmag[order] : NULL;

	if (m && m->n < m->cap) {
		pmag_put(m, c, addr);
	} else {
		c->pstate[first] = PS_OTHER;
		buddy_return(p, c, addr);
	}
	return 0;
}

/* ---------- 4 KiB fast paths ----------
 * A raw page is what every 4 KiB I/O buffer is: its alloc pops the order-0
 * magazine, its free pushes it, and neither looks at the buddy. The free still
 * checks all that pages_free() does, through the page's PS_PAGE state (which
 * only a live raw order-0 block head has); the accounting is the same as in
 * pages_alloc()/pages_free(). Anything else takes the general path. */

static inline __attribute__((always_inline)) void *page_pop(struct mem_pool *p)
{
	struct page_mag *m = &p->pmag[0];
	unsigned n = m->n - 1;

	m->n = n;
	*m->state[n] = PS_PAGE;
	p->page_allocs++;
	p->page_bytes_in_use += BUDDY_PAGE_SIZE;
	if (p->page_bytes_in_use > p->page_high_water)
		p->page_high_water = p->page_bytes_in_use;
	return m->addr[n];
}

/* True (and done) if addr is a live raw 4 KiB page of p and the order-0
 * magazine has room; false leaves everything to the general path. */
static inline __attribute__((always_inline)) bool page_push(struct mem_pool *p, void *addr)
{
	struct page_mag *m = &p->pmag[0];
	uintptr_t key = key_of(addr);
	struct chunk *c = p->hot_chunk;
	unsigned n = m->n;

	if (__builtin_expect(key != p->hot_key, 0)) {
		c = chunk_of(p, addr);
		if (!c)
			return false;
		p->hot_key = key;
		p->hot_chunk = c;
	}
	uint8_t *state = &c->pstate[page_index(addr)];

	if (((uintptr_t)addr & (BUDDY_PAGE_SIZE - 1)) || *state != PS_PAGE || n >= m->cap)
		return false;
	*state = PS_CACHED;
	m->addr[n] = addr;
	m->state[n] = state;
	m->n = n + 1;
	p->page_bytes_in_use -= BUDDY_PAGE_SIZE;
	return true;
}

void *mem_pool_alloc_pages(struct mem_pool *p, unsigned order)
{
	if (__builtin_expect(order == 0 && p->pmag[0].n > 0, 1))
		return page_pop(p);
	return order <= BUDDY_MAX_ORDER ? pages_alloc(p, order, NULL) : NULL;
}

static void __attribute__((noinline)) free_pages_slow(struct mem_pool *p, void *addr)
{
	struct chunk *c;

	if (!addr)
		return;
	c = chunk_of(p, addr);
	if (!c) {
		log_err("mem pool %s: free of %p, not pool memory; ignored", p->name, addr);
		return;
	}
	if (c->owner[page_index(addr)]) {
		log_err("mem pool %s: free_pages of slab memory %p; ignored", p->name, addr);
		return;
	}
	if (pages_free(p, c, addr) < 0)
		log_err("mem pool %s: free of %p, not a live block; ignored", p->name, addr);
}

void mem_pool_free_pages(struct mem_pool *p, void *addr)
{
	if (!page_push(p, addr))
		free_pages_slow(p, addr);
}

void *mem_pool_alloc_slab(struct mem_pool *p, unsigned order, struct slab_cache *owner)
{
	return order <= BUDDY_MAX_ORDER ? pages_alloc(p, order, owner) : NULL;
}

void mem_pool_free_slab(struct mem_pool *p, void *block)
{
	struct chunk *c = chunk_of(p, block);

	if (!c || pages_free(p, c, block) < 0)
		log_err("mem pool %s: bad slab block %p; ignored", p->name, block);
}

struct slab_cache *mem_pool_page_owner(const struct mem_pool *p, const void *addr)
{
	return mem_chunk_page_owner(&p->tab, addr);
}

const struct mem_chunk_table *mem_pool_chunk_table(const struct mem_pool *p)
{
	return &p->tab;
}

struct slab_cache **mem_pool_cache_list(struct mem_pool *p) { return &p->caches; }

/* ---------- general allocation ---------- */

/* Size class index of bytes (<= SLAB_MAX_OBJ): 0 for 64 B .. 5 for 2 KiB. */
static unsigned class_of(size_t bytes)
{
	if (bytes <= (1u << CLASS_MIN_SHIFT))
		return 0;
	return (unsigned)(64 - __builtin_clzll(bytes - 1)) - CLASS_MIN_SHIFT;
}

/* Size-class caches are created on first use: a pool that never serves small
 * allocations holds no slabs for them. */
static struct slab_cache *class_cache(struct mem_pool *p, unsigned cls)
{
	if (!p->classes[cls]) {
		size_t size = (size_t)1 << (cls + CLASS_MIN_SHIFT);
		char name[16];

		snprintf(name, sizeof(name), "size-%zu", size);
		/* Cache-line alignment: these hold protocol objects. */
		p->classes[cls] = slab_cache_create(p, name, size, 64);
	}
	return p->classes[cls];
}

void *mem_alloc(struct mem_pool *p, size_t bytes)
{
	if (bytes <= SLAB_MAX_OBJ) {
		struct slab_cache *c = class_cache(p, class_of(bytes));

		return c ? slab_alloc(c) : NULL;
	}
	if (bytes > CHUNK_SIZE)
		return NULL;
	return mem_pool_alloc_pages(p, (unsigned)buddy_order_for(bytes));
}

void *mem_zalloc(struct mem_pool *p, size_t bytes)
{
	void *a = mem_alloc(p, bytes);

	if (a)
		memset(a, 0, bytes);
	return a;
}

static void __attribute__((noinline)) mem_free_slow(struct mem_pool *p, void *addr)
{
	struct chunk *c;

	if (!addr)
		return;
	c = chunk_of(p, addr);
	if (!c) {
		log_err("mem pool %s: mem_free of %p, not pool memory; ignored", p->name, addr);
		return;
	}
	struct slab_cache *owner = c->owner[page_index(addr)];

	if (owner)
		slab_free_logged(owner, addr);   /* full checks: see mem_free() in pool.h */
	else if (pages_free(p, c, addr) < 0)
		log_err("mem pool %s: mem_free of %p, not a live block; ignored", p->name, addr);
}

void mem_free(struct mem_pool *p, void *addr)
{
	if (!page_push(p, addr))
		mem_free_slow(p, addr);
}

size_t mem_usable_size(struct mem_pool *p, const void *addr)
{
	const struct chunk *c = addr ? chunk_of(p, addr) : NULL;

	if (!c)
		return 0;
	const struct slab_cache *owner = c->owner[page_index(addr)];

	if (owner)
		return slab_obj_size(owner);
	int order = buddy_block_order(&c->buddy, addr);

	if (order < 0 || is_cached(c, page_index(addr)))
		return 0;
	return (size_t)BUDDY_PAGE_SIZE << order;
}

/* ---------- consistency check (tests) ---------- */

/* Every chunk's buddy passes buddy_check(); every page magazine entry is a
 * live buddy block of its order, in its chunk, marked cached, with no owner;
 * the cached marks are exactly the magazine entries; the PS_PAGE marks exactly
 * the raw order-0 blocks handed out; and the page accounting
 * adds up: free in the buddies + cached + in use = mapped. */
int mem_pool_check(const struct mem_pool *p)
{
	size_t free_bytes = 0, cached_bytes = 0, marks = 0, entries = 0;

	for (size_t i = 0; i <= tab_mask(p); i++) {
		const struct chunk *c = p->tab.slots[i].owner ? slot_chunk(&p->tab.slots[i]) : NULL;

		if (!c)
			continue;
		if (buddy_check(&c->buddy) < 0)
			return -EFAULT;
		free_bytes += buddy_free_bytes(&c->buddy);
		for (unsigned i = 0; i < BUDDY_PAGES; i++) {
			const void *addr = c->buddy.base + ((size_t)i << BUDDY_PAGE_SHIFT);
			bool raw_page = buddy_block_order(&c->buddy, addr) == 0 &&
					!c->owner[i] && c->pstate[i] != PS_CACHED;

			marks += c->pstate[i] == PS_CACHED;
			/* PS_PAGE: a live raw order-0 block out of the magazine,
			 * and only that. */
			if ((c->pstate[i] == PS_PAGE) != raw_page)
				return -EFAULT;
		}
	}
	for (unsigned o = 0; o < PMAG_ORDERS; o++) {
		const struct page_mag *m = &p->pmag[o];

		if (m->n > m->cap)
			return -EFAULT;
		for (unsigned k = 0; k < m->n; k++) {
			const struct chunk *c = chunk_of(p, m->addr[k]);
			size_t page = page_index(m->addr[k]);

			if (!c || m->state[k] != &c->pstate[page] ||
			    buddy_block_order(&c->buddy, m->addr[k]) != (int)o ||
			    !is_cached(c, page) || c->owner[page])
				return -EFAULT;
			cached_bytes += (size_t)BUDDY_PAGE_SIZE << o;
			entries++;
		}
	}
	if (marks != entries || cached_bytes != pmag_bytes(p))
		return -EFAULT;
	if (free_bytes + cached_bytes + p->page_bytes_in_use != p->chunks * CHUNK_SIZE)
		return -EFAULT;
	return 0;
}

/* ---------- statistics ---------- */

void mem_pool_get_stats(const struct mem_pool *p, struct mem_pool_stats *out)
{
	out->chunks = p->chunks;
	out->hugepage_chunks = p->hugepage_chunks;
	out->mapped_bytes = p->chunks * CHUNK_SIZE;
	out->limit = p->limit;
	out->page_bytes_in_use = p->page_bytes_in_use;
	out->page_high_water = p->page_high_water;
	out->page_allocs = p->page_allocs;
	out->failed_allocs = p->failed_allocs;
	out->page_cached_bytes = pmag_bytes(p);
}

/* Appends to buf at *off, never past len; *off stops at len - 1 on truncation. */
__attribute__((format(printf, 4, 5)))
static void append(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off = *off + (size_t)n < len ? *off + (size_t)n : len - 1;
}

void mem_pool_dump_stats(const struct mem_pool *p, char *buf, size_t len)
{
	struct mem_pool_stats s;
	size_t off = 0;

	if (!buf || len == 0)
		return;
	buf[0] = '\0';
	mem_pool_get_stats(p, &s);
	append(buf, len, &off,
	       "pool %s: %zu chunks (%zu hugepage), %zu KiB mapped of %zu KiB limit\n",
	       p->name, s.chunks, s.hugepage_chunks, s.mapped_bytes >> 10, s.limit >> 10);
	append(buf, len, &off,
	       "  pages: %zu KiB in use, %zu KiB high water, %zu KiB cached, "
	       "%llu allocs, %llu failed\n",
	       s.page_bytes_in_use >> 10, s.page_high_water >> 10, s.page_cached_bytes >> 10,
	       (unsigned long long)s.page_allocs, (unsigned long long)s.failed_allocs);
	for (struct slab_cache *c = p->caches; c; c = slab_cache_next((struct mem_pool *)p, c)) {
		struct slab_stats cs;

		slab_get_stats(c, &cs);
		append(buf, len, &off,
		       "  cache %s: obj %zu B, %zu in use (%zu B), high water %zu, "
		       "%zu cached, %zu slabs (%zu KiB), %llu allocs, %llu failed\n",
		       cs.name, cs.obj_size, cs.in_use, cs.bytes_in_use, cs.high_water,
		       cs.cached, cs.slabs, cs.slab_bytes >> 10,
		       (unsigned long long)cs.allocs, (unsigned long long)cs.failed);
	}
}
