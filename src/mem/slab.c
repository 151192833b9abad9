/* slab.c — fixed-size object caches over pool pages; see include/mem/slab.h.
 *
 * Two layers:
 *   - the magazine (struct slab_mag, first in struct slab_cache): a LIFO array
 *     of free objects that slab_alloc()/slab_free() pop and push inline;
 *   - the slabs: one buddy block each, its header (struct slab) at the start
 *     of the block. Slab blocks are aligned to their size, so an object's slab
 *     is its address masked down. Slab objects are protocol objects, not RDMA
 *     buffers, so the block may carry our bookkeeping.
 * Objects move between the two in batches of half a magazine: a refill when
 * the magazine is empty, a flush of its oldest half when it is full.
 *
 * A slab's free objects are a bitmap (bit set = free in the slab), not a list
 * threaded through the objects: a refill takes many objects with a count-
 * trailing-zeros each and never reads object memory, a new slab costs only its
 * header, and a clear bit means "out of the slab" (handed out or in the
 * magazine), which is what the double-free checks need.
 *
 * Counting: mag.taken counts objects out of their slabs; in_use (objects handed
 * out) is taken minus the magazine's count, so the inline paths maintain no
 * in_use counter of their own.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "mem/buddy.h"
#include "mem/pool.h"
#include "mem/slab.h"

#define SLAB_MAX_OBJS  256   /* bitmap size; 4 KiB / 16 B objects fit */
#define MAP_WORDS      (SLAB_MAX_OBJS / 64)
#define MIN_OBJS       8     /* a slab holds at least this many objects */
#define GOOD_OBJS      64    /* and this many if that takes no more than */
#define GOOD_ORDER     4     /* 64 KiB; see cache_geometry() */
#define RECIP_SHIFT    40    /* see obj_index() */
#define DEFAULT_ALIGN  16
#define MAX_ALIGN      BUDDY_PAGE_SIZE
/* A magazine holds at most this many bytes of objects (and at least MAG_MIN
 * objects), so a cache of big objects does not pin many slabs through it. */
#define MAG_BYTES      (128u << 10)
#define MAG_MIN        4

struct slab {
	struct slab_cache *cache;
	struct slab *next, *prev;        /* on cache->partial or cache->full */
	uint32_t in_use;                 /* objects out of this slab */
	uint64_t free_map[MAP_WORDS];    /* bit i set: object i is free in the slab */
};

/* Fixed at creation. The batch loops copy it into a local first: their stores
 * into slab headers could alias the cache, forcing a reload per object. */
struct slab_geo {
	uintptr_t slab_mask;             /* ~(slab bytes - 1) */
	uint64_t recip;                  /* 2^RECIP_SHIFT / obj_size, rounded up */
	uint32_t obj_size;
	uint32_t first_off;              /* offset of object 0 in the slab */
	uint32_t nobj;                   /* objects per slab */
};

struct slab_cache {
	struct slab_mag mag;             /* first: slab.h's inline paths use it */
	struct slab *partial;            /* slabs with free objects (incl. the spare) */
	struct slab *full;               /* slabs with every object out */
	struct slab *spare;              /* the one empty slab kept; it stays on partial */
	const struct mem_chunk_table *tab;   /* the pool's, for the owner lookup */
	struct mem_pool *pool;
	struct slab_geo geo;
	uint64_t failed;
	size_t slabs;
	unsigned order;
	struct slab_cache *next_in_pool;
	char name[32];
};
_Static_assert(offsetof(struct slab_cache, mag) == 0, "slab_mag_of() casts");

/* ---------- slab lists ---------- */

static void slab_list_add(struct slab **head, struct slab *s)
{
	s->prev = NULL;
	s->next = *head;
	if (s->next)
		s->next->prev = s;
	*head = s;
}

static void slab_list_del(struct slab **head, struct slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

/* ---------- geometry ---------- */

static size_t round_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

static struct slab *slab_of(const struct slab_geo *g, const void *obj)
{
	return (struct slab *)((uintptr_t)obj & g->slab_mask);
}

/* Object index of byte offset off (from object 0) by multiplying with the
 * rounded-up reciprocal instead of dividing. Exact for off < 2^21 (one chunk)
 * and obj_size < 2^19: the error off * (recip - 2^40 / size) / 2^40 stays below
 * 2^-19 < 1 / obj_size, too small to carry into the next integer. */
static unsigned obj_index(const struct slab_geo *g, uintptr_t off)
{
	return (unsigned)((off * g->recip) >> RECIP_SHIFT);
}

/* Picks the smallest slab order holding GOOD_OBJS objects, or, if that would
 * take more than GOOD_ORDER, the smallest holding MIN_OBJS; -EINVAL if none
 * can. Few, larger slabs for small objects: every slab header sits at the same
 * offset in its page, so headers compete for the same L1 cache set (8 ways),
 * and each slab costs list moves and page allocations as it fills and empties;
 * with 4 KiB slabs, 1000 objects of 64 B were 16 headers, thrashing that set
 * on every magazine refill and flush. The price is memory granularity: an
 * idle cache holds up to 64 KiB (two with the spare). */
static int cache_geometry(struct slab_cache *c, size_t obj_size, size_t align)
{
	c->geo.obj_size = (uint32_t)obj_size;
	c->geo.first_off = (uint32_t)round_up(sizeof(struct slab), align);
	for (unsigned o = 0; o <= BUDDY_MAX_ORDER; o++) {
		size_t bytes = (size_t)BUDDY_PAGE_SIZE << o;
		size_t n = (bytes - c->geo.first_off) / obj_size;

		if (n >= GOOD_OBJS || (n >= MIN_OBJS && o >= GOOD_ORDER)) {
			c->order = o;
			c->geo.nobj = (uint32_t)(n < SLAB_MAX_OBJS ? n : SLAB_MAX_OBJS);
			c->geo.slab_mask = ~(uintptr_t)(bytes - 1);
			c->geo.recip = ((uint64_t)1 << RECIP_SHIFT) / obj_size + 1;
			return 0;
		}
	}
	return -EINVAL;
}

/* Even, so that refills and flushes move exactly half. */
static uint32_t mag_capacity(size_t obj_size)
{
	size_t cap = MAG_BYTES / obj_size;

	if (cap > SLAB_MAG_MAX)
		cap = SLAB_MAG_MAX;
	if (cap < MAG_MIN)
		cap = MAG_MIN;
	return (uint32_t)cap & ~1u;
}

/* ---------- cache ---------- */

struct slab_cache *slab_cache_create(struct mem_pool *p, const char *name,
				     size_t obj_size, size_t align)
{
	struct slab_cache *c;
	void *mem;

	if (align == 0)
		align = DEFAULT_ALIGN;
	if (align & (align - 1) || align > MAX_ALIGN || !p || obj_size == 0)
		goto invalid;
	obj_size = round_up(obj_size < SLAB_MIN_OBJ ? SLAB_MIN_OBJ : obj_size, align);
	if (obj_size > BUDDY_CHUNK_SIZE)
		goto invalid;
	/* Cache-line aligned: the magazine's hot words share the first line. */
	if (posix_memalign(&mem, 64, sizeof(*c)) != 0)
		return NULL;
	c = memset(mem, 0, sizeof(*c));
	if (cache_geometry(c, obj_size, align) < 0) {
		free(c);
		goto invalid;
	}
	c->mag.cap = mag_capacity(obj_size);
	c->pool = p;
	c->tab = mem_pool_chunk_table(p);
	snprintf(c->name, sizeof(c->name), "%s", name ? name : "slab");
	struct slab_cache **head = mem_pool_cache_list(p);

	c->next_in_pool = *head;
	*head = c;
	return c;

invalid:
	log_err("slab cache %s: invalid size %zu / alignment %zu", name ? name : "?",
		obj_size, align);
	errno = EINVAL;
	return NULL;
}

static void unlink_from_pool(struct slab_cache *c)
{
	struct slab_cache **pp = mem_pool_cache_list(c->pool);

	while (*pp && *pp != c)
		pp = &(*pp)->next_in_pool;
	if (*pp)
		*pp = c->next_in_pool;
}

static void slab_release(struct slab_cache *c, struct slab *s)
{
	c->slabs--;
	mem_pool_free_slab(c->pool, s);
}

static void release_list(struct slab_cache *c, struct slab **head)
{
	while (*head) {
		struct slab *s = *head;

		*head = s->next;
		slab_release(c, s);
	}
}

/* The magazine's objects live in the slabs released here: no flush needed. */
void slab_cache_destroy(struct slab_cache *c)
{
	if (!c)
		return;
	if (c->pool) {
		release_list(c, &c->partial);
		release_list(c, &c->full);
		unlink_from_pool(c);
	}
	free(c);
}

void slab_cache_orphan(struct slab_cache *c)
{
	unlink_from_pool(c);
	c->pool = NULL;
	c->partial = c->full = c->spare = NULL;
	c->slabs = 0;
	c->mag.n = 0;
	c->mag.cap = 0;     /* every alloc and free now takes the slow path */
	c->mag.taken = 0;
}

size_t slab_obj_size(const struct slab_cache *c) { return c->geo.obj_size; }

struct slab_cache *slab_cache_next(struct mem_pool *p, struct slab_cache *prev)
{
	return prev ? prev->next_in_pool : *mem_pool_cache_list(p);
}

void slab_get_stats(const struct slab_cache *c, struct slab_stats *out)
{
	size_t in_use = c->mag.taken - c->mag.n;

	out->name = c->name;
	out->obj_size = c->geo.obj_size;
	out->in_use = in_use;
	out->bytes_in_use = in_use * c->geo.obj_size;
	out->high_water = c->mag.high_water;
	out->slabs = c->slabs;
	out->slab_bytes = c->slabs * ((size_t)BUDDY_PAGE_SIZE << c->order);
	out->allocs = c->mag.allocs;
	out->failed = c->failed;
	out->cached = c->mag.n;
	out->cached_max = c->mag.cap;
}

/* ---------- slabs: taking objects out, putting them back ---------- */

static struct slab *slab_new(struct slab_cache *c)
{
	struct slab *s = mem_pool_alloc_slab(c->pool, c->order, c);

	if (!s)
		return NULL;
	s->cache = c;
	s->in_use = 0;
	for (unsigned w = 0; w < MAP_WORDS; w++) {
		unsigned lo = w * 64;
		unsigned n = c->geo.nobj > lo ? c->geo.nobj - lo : 0;

		s->free_map[w] = n >= 64 ? ~0ull : (1ull << n) - 1;
	}
	c->slabs++;
	slab_list_add(&c->partial, s);
	return s;
}

/* Moves up to want free objects of partial slab s to out[]; returns how many. */
static unsigned slab_take(struct slab_cache *c, struct slab *s, void **out, unsigned want)
{
	const size_t size = c->geo.obj_size;
	uint8_t *obj0 = (uint8_t *)s + c->geo.first_off;
	unsigned got = 0;

	for (unsigned w = 0; w < MAP_WORDS && got < want; w++) {
		uint64_t map = s->free_map[w];
		uint8_t *base = obj0 + (size_t)w * 64 * size;

		for (; map && got < want; got++) {
			out[got] = base + (size_t)__builtin_ctzll(map) * size;
			map &= map - 1;
		}
		s->free_map[w] = map;
	}
	if (s == c->spare)
		c->spare = NULL;         /* no longer empty */
	s->in_use += got;
	if (s->in_use == c->geo.nobj) {
		slab_list_del(&c->partial, s);
		slab_list_add(&c->full, s);
	}
	return got;
}

/* s just lost its last object: keep it as the spare, or give it back if a
 * spare exists already (hysteresis against churn at a slab boundary). The
 * spare stays on the partial list. */
static void slab_emptied(struct slab_cache *c, struct slab *s)
{
	if (!c->spare) {
		c->spare = s;
		return;
	}
	slab_list_del(&c->partial, s);
	slab_release(c, s);
}

/* Slab and index of obj if it is an object start of c that is out of its slab
 * (handed out or in the magazine); -EINVAL otherwise. Reads the would-be slab
 * header, so obj must at least be memory of c's pool. */
static inline __attribute__((always_inline)) int
obj_locate(const struct slab_cache *c, const struct slab_geo *g, const void *obj,
	   struct slab **sp, unsigned *idxp)
{
	struct slab *s = slab_of(g, obj);
	/* Below object 0 (inside the header) the subtraction wraps: rejected too. */
	uintptr_t off = (uintptr_t)obj - (uintptr_t)s - g->first_off;
	unsigned idx = obj_index(g, off);

	if (s->cache != c || idx >= g->nobj || (uintptr_t)idx * g->obj_size != off)
		return -EINVAL;             /* not an object start of this cache */
	if (s->free_map[idx / 64] & (1ull << (idx % 64)))
		return -EINVAL;             /* free in its slab: never out, or freed */
	*sp = s;
	*idxp = idx;
	return 0;
}

/* Returns obj, which is out of its slab, to the slab. The caller adjusts
 * mag.taken (once per batch). */
static inline __attribute__((always_inline)) int
slab_put(struct slab_cache *c, const struct slab_geo *g, void *obj)
{
	struct slab *s;
	unsigned idx;

	if (obj_locate(c, g, obj, &s, &idx) < 0)
		return -EINVAL;
	s->free_map[idx / 64] |= 1ull << (idx % 64);
	if (s->in_use-- == g->nobj) {
		slab_list_del(&c->full, s);
		slab_list_add(&c->partial, s);
	}
	if (s->in_use == 0)
		slab_emptied(c, s);
	return 0;
}

/* ---------- magazine refill and flush ---------- */

static void __attribute__((noinline, cold)) bad_free(struct slab_cache *c, void *obj,
						     const char *when)
{
	log_err("slab cache %s: bad free of %p%s (double free, wrong cache or "
		"not an object); ignored", c->name, obj, when);
}

/* Returns the count oldest magazine objects (the bottom of the stack, the
 * coldest) to their slabs. An object that fails the header checks was freed
 * wrongly with slab_free() in a release build: logged and dropped. */
static void mag_flush(struct slab_cache *c, uint32_t count)
{
	struct slab_mag *m = &c->mag;
	const struct slab_geo g = c->geo;
	uint32_t back = 0;

	for (uint32_t i = 0; i < count; i++) {
		if (slab_put(c, &g, m->obj[i]) == 0)
			back++;
		else
			bad_free(c, m->obj[i], " found in the magazine");
	}
	m->taken -= back;
	m->n -= count;
	memmove(m->obj, m->obj + count, m->n * sizeof(m->obj[0]));
}

/* The magazine is empty: take half a magazine from the partial slabs, or from
 * a new slab if there are none, then pop. A refill never takes a new slab just
 * to fill up: partial slabs are used up first and keep the footprint small. */
void *slab_alloc_slow(struct slab_cache *c)
{
	struct slab_mag *m = &c->mag;
	uint32_t want = m->cap / 2, got = 0;

	if (m->n > 0)
		return slab_alloc(c);
	while (got < want && c->partial)
		got += slab_take(c, c->partial, m->obj + got, want - got);
	if (got == 0) {
		struct slab *s = c->pool ? slab_new(c) : NULL;

		if (!s) {
			c->failed++;
			return NULL;
		}
		got = slab_take(c, s, m->obj, want);
	}
	m->n = got;
	m->taken += got;
	return slab_alloc(c);
}

/* Pushes obj, known good; flushes half the magazine first if it is full. */
static void mag_push(struct slab_cache *c, void *obj)
{
	struct slab_mag *m = &c->mag;

	if (m->n == m->cap)
		mag_flush(c, m->cap / 2);
	m->obj[m->n++] = obj;
}

/* The inline slab_free() found the magazine full (or obj NULL, or the cache
 * orphaned). */
void slab_free_slow(struct slab_cache *c, void *obj)
{
	if (!obj)
		return;
	if (!c->pool) {
		bad_free(c, obj, " (cache outlived its pool)");
		return;
	}
	mag_push(c, obj);
}

void slab_cache_flush(struct slab_cache *c)
{
	if (c->pool)
		mag_flush(c, c->mag.n);
}

void slab_cache_trim(struct slab_cache *c)
{
	slab_cache_flush(c);
	if (c->spare) {
		slab_list_del(&c->partial, c->spare);
		slab_release(c, c->spare);
		c->spare = NULL;
	}
}

/* ---------- checked free ---------- */

/* The scan is what a checked free costs beyond the lookups, so it is a vector
 * prefilter (GCC/Clang vector extensions, plain SSE2 on x86-64) over 32-bit
 * words, eight pointers per step, no early exit: lanes holding a pointer's
 * first word are compared with obj's first word, lanes holding the second word
 * with the complement of obj's second word, which obj itself can never match.
 * So obj being in the magazine always hits (its first word matches), and a
 * hit from anything else — another pointer sharing a word — only costs the
 * exact rescan below. Byte order does not matter. */
typedef uint32_t u32x4 __attribute__((vector_size(16)));
_Static_assert(sizeof(void *) == 8, "in_magazine() packs two pointers in 16 bytes");

static bool in_magazine(const struct slab_mag *m, const void *obj)
{
	uint32_t w[2];
	u32x4 hit = { 0, 0, 0, 0 };
	uint32_t i = 0;

	memcpy(w, &obj, sizeof(w));
	const u32x4 key = { w[0], ~w[1], w[0], ~w[1] };

	for (; i + 8 <= m->n; i += 8) {
		u32x4 v[4];

		memcpy(v, &m->obj[i], sizeof(v));
		hit |= (u32x4)(v[0] == key) | (u32x4)(v[1] == key) |
		       (u32x4)(v[2] == key) | (u32x4)(v[3] == key);
	}
	bool maybe = (hit[0] | hit[1] | hit[2] | hit[3]) != 0;

	for (; i < m->n; i++)
		maybe |= m->obj[i] == obj;
	if (!maybe)
		return false;
	for (i = 0; i < m->n; i++)
		if (m->obj[i] == obj)
			return true;
	return false;
}

int slab_free_checked(struct slab_cache *c, void *obj)
{
	struct slab *s;
	unsigned idx;

	/* The page owner check comes first: it also proves obj is pool memory, so
	 * reading the slab header in obj_locate() cannot fault. */
	if (!obj || !c->pool || mem_chunk_page_owner(c->tab, obj) != c)
		return -EINVAL;
	if (obj_locate(c, &c->geo, obj, &s, &idx) < 0)
		return -EINVAL;             /* not an object, or back in its slab */
	if (in_magazine(&c->mag, obj))
		return -EINVAL;             /* freed already, not yet reused */
	mag_push(c, obj);
	return 0;
}

void slab_free_logged(struct slab_cache *c, void *obj)
{
	if (obj && slab_free_checked(c, obj) < 0)
		bad_free(c, obj, "");
}
