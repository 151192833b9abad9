/* ring.c — lock-free SPSC ring; see include/core/ring.h. */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/ring.h"

#define CACHE_LINE 64

/* Indexes run freely and wrap at 2^32; slot = index & mask. Each side's line
 * holds the index it writes plus its stale copy of the other side's index, so
 * the other side's line is only pulled over when the copy says full/empty. */
struct spsc_ring {
	alignas(CACHE_LINE) _Atomic uint32_t head;	/* consumer writes */
	uint32_t tail_cache;				/* consumer's view of tail */

	alignas(CACHE_LINE) _Atomic uint32_t tail;	/* producer writes */
	uint32_t head_cache;				/* producer's view of head */

	alignas(CACHE_LINE) uint32_t mask;
	struct ring_msg slot[];
};

/* Start just below the 32-bit wrap so every ring crosses it after a few
 * thousand messages: the modular arithmetic is exercised by ordinary tests
 * instead of only after four billion messages in production. */
#define RING_START_INDEX ((uint32_t)-4096)

struct spsc_ring *spsc_ring_create(unsigned capacity)
{
	struct spsc_ring *r;
	size_t bytes;

	if (capacity < 2 || (capacity & (capacity - 1)) != 0)
		return NULL;
	bytes = sizeof(*r) + (size_t)capacity * sizeof(struct ring_msg);
	bytes = (bytes + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1);
	r = aligned_alloc(CACHE_LINE, bytes);
	if (!r)
		return NULL;
	atomic_init(&r->head, RING_START_INDEX);
	atomic_init(&r->tail, RING_START_INDEX);
	r->tail_cache = RING_START_INDEX;
	r->head_cache = RING_START_INDEX;
	r->mask = capacity - 1;
	return r;
}

void spsc_ring_destroy(struct spsc_ring *r)
{
	free(r);
}

int spsc_ring_push(struct spsc_ring *r, const struct ring_msg *m)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (tail - r->head_cache > r->mask) {
		/* acquire: the consumer must be done reading a slot before we reuse it */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (tail - r->head_cache > r->mask)
			return -EAGAIN;
	}
	r->slot[tail & r->mask] = *m;
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return 0;
}

unsigned spsc_ring_pop_burst(struct spsc_ring *r, struct ring_msg *out, unsigned max)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t avail = r->tail_cache - head;
	unsigned n;

	if (avail < max) {
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		avail = r->tail_cache - head;
	}
	n = avail < max ? avail : max;
	for (unsigned i = 0; i < n; i++)
		out[i] = r->slot[(head + i) & r->mask];
	if (n)
		atomic_store_explicit(&r->head, head + n, memory_order_release);
	return n;
}

int spsc_ring_pop(struct spsc_ring *r, struct ring_msg *m)
{
	return (int)spsc_ring_pop_burst(r, m, 1);
}

unsigned spsc_ring_count(const struct spsc_ring *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint32_t n = tail - head;

	/* Read by a third party the two loads can straddle a pop; clamp the noise. */
	return n > r->mask + 1 ? r->mask + 1 : n;
}

unsigned spsc_ring_capacity(const struct spsc_ring *r)
{
	return r->mask + 1;
}
