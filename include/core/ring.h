/* ring.h — lock-free single-producer/single-consumer message ring.
 *
 * Contract: exactly one thread pushes and exactly one thread pops a given ring.
 * Capacity is a power of two fixed at creation. push fails with -EAGAIN when the
 * ring is full (the caller decides: retry, queue locally, or drop); pop returns
 * 0 when empty. Head and tail live on separate cache lines; the producer and the
 * consumer each cache the other side's index to avoid sharing lines per message.
 * Memory order: a message's fields are visible to the consumer before the
 * producer's tail store (release/acquire).
 */
#ifndef LICH_CORE_RING_H
#define LICH_CORE_RING_H

#include <stddef.h>

typedef void (*ring_fn)(void *a, void *b);

struct ring_msg {
	ring_fn fn;
	void *a;
	void *b;
};

struct spsc_ring;

/* capacity: power of two >= 2; returns NULL on bad capacity or no memory. */
struct spsc_ring *spsc_ring_create(unsigned capacity);
void spsc_ring_destroy(struct spsc_ring *r);
/* 0 on success, -EAGAIN when full. Producer side only. */
int spsc_ring_push(struct spsc_ring *r, const struct ring_msg *m);
/* 1 when a message was copied to *m, 0 when empty. Consumer side only. */
int spsc_ring_pop(struct spsc_ring *r, struct ring_msg *m);
/* Pops up to max messages into out[]; returns the count. Consumer side only. */
unsigned spsc_ring_pop_burst(struct spsc_ring *r, struct ring_msg *out, unsigned max);
/* Approximate count; exact when called by either side with the other idle. */
unsigned spsc_ring_count(const struct spsc_ring *r);
unsigned spsc_ring_capacity(const struct spsc_ring *r);

#endif
