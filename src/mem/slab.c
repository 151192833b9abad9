/* slab.c — fixed-size object caches over pool pages; see include/mem/slab.h.
 *
 * Three layers:
 *   - the loaded magazine (struct slab_mag, first in struct slab_cache): a LIFO
 *     array of free objects that slab_alloc()/slab_free() pop and push inline;
 *   - the previous magazine and the depot: whole magazines, each either full or
 *     empty, that the slow paths exchange with the loaded one by pointer;
 *   - the slabs: one buddy block each, its header (struct slab) at the start
 *     of the block. Slab blocks are aligned to their size, so an object's slab
 *     is its address masked down. Slab objects are protocol objects, not RDMA
 *     buffers, so the block may carry our bookkeeping.
 * Objects move between magazines and slabs in batches of half a magazine: a
 * refill when the loaded magazine is empty and neither the previous magazine
 * nor the depot has a full one, a flush of its oldest half when it is full
 * and the previous magazine and the depot are full too. Why two layers of
 * magazines: a batch of frees larger than one magazine (a burst of completions)
 * otherwise sends every other object through the slab bitmaps; with the depot
 * it costs one pointer exchange per magazine.
 *
 * A slab's free objects are a bitmap (bit set = free in the slab), not a list
 * threaded through the objects: a refill takes many objects with a count-
 * trailing-zeros each and never reads object memory, a new slab costs only its
 * header, and a clear bit means "out of the slab" (handed out or in the
 * magazine), which is what the double-free checks need.
 *
 * Counting: mag.out counts objects handed out or in the loaded magazine;
 * in_use is out minus the loaded count, so the inline paths maintain no in_use
 * counter of their own. The previous magazine holds 0 or cap objects and each
 * depot magazine cap, so cached is n + prev_n + depot_n * cap.
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
/* All magazines of a cache together hold at most this many bytes (but always
 * the loaded and previous ones): bounds what an idle cache keeps from the pool. */
#define CACHE_MAG_BYTES (256u << 10)

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

/* A Bloom filter over a full magazine that is not loaded (previous or depot),
 * built by the first slab_free_checked() that needs it: its contents cannot
 * change until it is loaded again, which invalidates it. The checked free then
 * tests 2 bits per magazine instead of scanning up to 18 x 64 pointers, which
 * mem_free() (always checked) could not afford; the unchecked paths pay one
 * store per magazine exchange. 16 words of 64 bits, both of an object's bits
 * in one word (a blocked filter: one load per test); with 64 objects about 2%
 * false positives, each costing one exact scan. Each magazine array is
 * preceded by its filter, so no lookup is needed. */
#define FILTER_WORDS 16
struct mag_filter {
	uint64_t valid;
	uint64_t word[FILTER_WORDS];
};
#define MAG_STRIDE(cap) (sizeof(struct mag_filter) / sizeof(void *) + (cap))

struct slab_cache {
	struct slab_mag mag;             /* first: slab.h's inline paths use it */
	void **prev;                     /* the previous magazine's array */
	uint32_t prev_n;                 /* 0 or mag.cap */
	uint32_t depot_n;                /* full magazines: depot[0 .. depot_n) */
	uint32_t depot_max;              /* empty ones: depot[depot_n .. depot_max) */
	void **depot[SLAB_DEPOT_MAX];
	void **mag_mem;                  /* every magazine (filter + array), one
					  * allocation */
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

/* Depot magazines beside loaded and previous, within CACHE_MAG_BYTES. */
static uint32_t depot_capacity(size_t obj_size, uint32_t cap)
{
	size_t mags = CACHE_MAG_BYTES / (obj_size * cap);

	if (mags <= 2)
		return 0;
	return mags - 2 > SLAB_DEPOT_MAX ? SLAB_DEPOT_MAX : (uint32_t)(mags - 2);
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
	c->depot_max = depot_capacity(obj_size, c->mag.cap);
	const size_t stride = MAG_STRIDE(c->mag.cap);

	c->mag_mem = calloc(stride * (2 + c->depot_max), sizeof(void *));
	if (!c->mag_mem) {
		free(c);
		return NULL;
	}
	c->mag.obj = c->mag_mem + stride - c->mag.cap;
	c->prev = c->mag.obj + stride;
	for (uint32_t i = 0; i < c->depot_max; i++)
		c->depot[i] = c->prev + stride * (1 + i);
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

/* The magazines' objects live in the slabs released here: no flush needed. */
void slab_cache_destroy(struct slab_cache *c)
{
	if (!c)
		return;
	if (c->pool) {
		release_list(c, &c->partial);
		release_list(c, &c->full);
		unlink_from_pool(c);
	}
	free(c->mag_mem);
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
	c->mag.out = 0;
	c->prev_n = 0;
	c->depot_n = 0;
}

size_t slab_obj_size(const struct slab_cache *c) { return c->geo.obj_size; }

struct slab_cache *slab_cache_next(struct mem_pool *p, struct slab_cache *prev)
{
	return prev ? prev->next_in_pool : *mem_pool_cache_list(p);
}

void slab_get_stats(const struct slab_cache *c, struct slab_stats *out)
{
	size_t in_use = c->mag.out - c->mag.n;

	out->name = c->name;
	out->obj_size = c->geo.obj_size;
	out->in_use = in_use;
	out->bytes_in_use = in_use * c->geo.obj_size;
	out->high_water = c->mag.high_water;
	out->slabs = c->slabs;
	out->slab_bytes = c->slabs * ((size_t)BUDDY_PAGE_SIZE << c->order);
	out->allocs = c->mag.allocs;
	out->failed = c->failed;
	out->cached = c->mag.n + c->prev_n + (size_t)c->depot_n * c->mag.cap;
	out->cached_max = (size_t)c->mag.cap * (2 + c->depot_max);
	out->mag_cap = c->mag.cap;
	out->depot = c->depot_n;
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
 * mag.out (once per batch) if obj was in the loaded magazine. */
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

/* Returns objs[0 .. count) to their slabs; returns how many went back. An
 * object that fails the header checks was freed wrongly with slab_free() in a
 * release build: logged and dropped. */
static uint32_t objs_to_slabs(struct slab_cache *c, void **objs, uint32_t count)
{
	const struct slab_geo g = c->geo;
	uint32_t back = 0;

	for (uint32_t i = 0; i < count; i++) {
		if (slab_put(c, &g, objs[i]) == 0)
			back++;
		else
			bad_free(c, objs[i], " found in a magazine");
	}
	return back;
}

/* Returns the count oldest objects of the loaded magazine (the bottom of the
 * stack, the coldest) to their slabs. */
static void mag_flush(struct slab_cache *c, uint32_t count)
{
	struct slab_mag *m = &c->mag;

	m->out -= objs_to_slabs(c, m->obj, count);
	m->n -= count;
	memmove(m->obj, m->obj + count, m->n * sizeof(m->obj[0]));
}

static struct mag_filter *filter_of(void *const *mag)
{
	return (struct mag_filter *)(uintptr_t)mag - 1;
}

/* The loaded magazine is empty: load a full one instead — the previous, else
 * one from the depot (the empty one takes its place there). False if there is
 * none. */
static bool mag_load_full(struct slab_cache *c)
{
	struct slab_mag *m = &c->mag;
	void **empty = m->obj;

	if (c->prev_n) {
		m->obj = c->prev;
		c->prev = empty;
		c->prev_n = 0;
	} else if (c->depot_n) {
		c->depot_n--;
		m->obj = c->depot[c->depot_n];
		c->depot[c->depot_n] = empty;
	} else {
		return false;
	}
	filter_of(m->obj)->valid = 0;    /* its contents will change */
	m->n = m->cap;
	m->out += m->cap;
	return true;
}

/* The loaded magazine is full: load an empty one instead — the previous, else
 * the previous (full) goes to the depot, the loaded one becomes previous and an
 * empty one from the depot is loaded. False if the depot is full. */
static bool mag_load_empty(struct slab_cache *c)
{
	struct slab_mag *m = &c->mag;
	void **full = m->obj;

	if (c->prev_n == 0) {
		m->obj = c->prev;
	} else if (c->depot_n < c->depot_max) {
		m->obj = c->depot[c->depot_n];
		c->depot[c->depot_n++] = c->prev;
	} else {
		return false;
	}
	filter_of(m->obj)->valid = 0;
	c->prev = full;
	c->prev_n = m->cap;
	m->n = 0;
	m->out -= m->cap;
	return true;
}

/* The loaded magazine is empty: load a full one, or else take half a magazine
 * from the partial slabs, or from a new slab if there are none, then pop. A
 * refill never takes a new slab just to fill up: partial slabs are used up
 * first and keep the footprint small. */
void *slab_alloc_slow(struct slab_cache *c)
{
	struct slab_mag *m = &c->mag;
	uint32_t want = m->cap / 2, got = 0;

	if (m->n > 0 || (m->cap && mag_load_full(c)))
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
	m->out += got;
	return slab_alloc(c);
}

/* Pushes obj, known good. If the loaded magazine is full, loads an empty one
 * first, or when the depot is full too flushes half of it to the slabs. */
static void mag_push(struct slab_cache *c, void *obj)
{
	struct slab_mag *m = &c->mag;

	if (m->n == m->cap && !mag_load_empty(c))
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

/* Every magazine back to the slabs; their arrays stay, empty, for reuse. */
void slab_cache_flush(struct slab_cache *c)
{
	if (!c->pool)
		return;
	mag_flush(c, c->mag.n);
	/* mag.out left these out when they were swapped away; an object dropped
	 * as a bad free counts as in use again, as in mag_flush(). */
	c->mag.out += c->prev_n - objs_to_slabs(c, c->prev, c->prev_n);
	c->prev_n = 0;
	for (; c->depot_n > 0; c->depot_n--)
		c->mag.out += c->mag.cap -
			      objs_to_slabs(c, c->depot[c->depot_n - 1], c->mag.cap);
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
_Static_assert(sizeof(void *) == 8, "in_array() packs two pointers in 16 bytes");

static bool in_array(void *const *objs, uint32_t n, const void *obj)
{
	uint32_t w[2];
	u32x4 hit = { 0, 0, 0, 0 };
	uint32_t i = 0;

	memcpy(w, &obj, sizeof(w));
	const u32x4 key = { w[0], ~w[1], w[0], ~w[1] };

	for (; i + 8 <= n; i += 8) {
		u32x4 v[4];

		memcpy(v, &objs[i], sizeof(v));
		hit |= (u32x4)(v[0] == key) | (u32x4)(v[1] == key) |
		       (u32x4)(v[2] == key) | (u32x4)(v[3] == key);
	}
	bool maybe = (hit[0] | hit[1] | hit[2] | hit[3]) != 0;

	for (; i < n; i++)
		maybe |= objs[i] == obj;
	if (!maybe)
		return false;
	for (i = 0; i < n; i++)
		if (objs[i] == obj)
			return true;
	return false;
}

/* obj's word (top 4 bits of a multiplicative hash) and its two bits there
 * (the next 6 and 6). */
static unsigned filter_hash(const void *obj, uint64_t *bits)
{
	uint64_t h = (uint64_t)(uintptr_t)obj * 0x9e3779b97f4a7c15ull;

	*bits = 1ull << (h >> 54 & 63) | 1ull << (h >> 48 & 63);
	return (unsigned)(h >> 60);
}

/* Builds the filter of full magazine mag if it has none; returns it. */
static const struct mag_filter *filter_get(const struct slab_cache *c, void *const *mag)
{
	struct mag_filter *f = filter_of(mag);

	if (__builtin_expect(!f->valid, 0)) {
		memset(f->word, 0, sizeof(f->word));
		for (uint32_t i = 0; i < c->mag.cap; i++) {
			uint64_t bits;
			unsigned w = filter_hash(mag[i], &bits);

			f->word[w] |= bits;
		}
		f->valid = 1;
	}
	return f;
}

/* obj is in one of the magazines: loaded (scanned), previous or depot (their
 * filters, and a scan where a filter says maybe). */
static bool in_magazine(const struct slab_cache *c, const void *obj)
{
	uint64_t bits;
	unsigned w = filter_hash(obj, &bits);

	if (in_array(c->mag.obj, c->mag.n, obj))
		return true;
	if (c->prev_n && (filter_get(c, c->prev)->word[w] & bits) == bits &&
	    in_array(c->prev, c->mag.cap, obj))
		return true;
	for (uint32_t i = 0; i < c->depot_n; i++) {
		void *const *mag = c->depot[i];

		if ((filter_get(c, mag)->word[w] & bits) == bits &&
		    in_array(mag, c->mag.cap, obj))
			return true;
	}
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
	if (in_magazine(c, obj))
		return -EINVAL;             /* freed already, not yet reused */
	mag_push(c, obj);
	return 0;
}

void slab_free_logged(struct slab_cache *c, void *obj)
{
	if (obj && slab_free_checked(c, obj) < 0)
		bad_free(c, obj, "");
}
