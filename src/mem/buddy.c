/* buddy.c — buddy allocator over one 2 MiB chunk; see include/mem/buddy.h.
 *
 * Page i is a block head when order[i] holds the block's order; every other page
 * (the interior of a larger block) holds NOT_HEAD. is_free[i] marks free heads,
 * which are also linked on head[order[i]]. The managed memory itself is never
 * read or written here.
 */
#include <errno.h>
#include <string.h>

#include "mem/buddy.h"

/* order[] value of a page that does not start a block. */
#define NOT_HEAD 0xffu

static unsigned block_pages(unsigned order) { return 1u << order; }

static void *page_addr(const struct buddy *b, unsigned i)
{
	return b->base + ((size_t)i << BUDDY_PAGE_SHIFT);
}

/* Links free block i of the given order at the front of its list. */
static void free_push(struct buddy *b, unsigned order, unsigned i)
{
	uint16_t first = b->head[order];

	b->next[i] = first;
	b->prev[i] = BUDDY_NONE;
	if (first != BUDDY_NONE)
		b->prev[first] = (uint16_t)i;
	b->head[order] = (uint16_t)i;
	b->order[i] = (uint8_t)order;
	b->is_free[i] = 1;
}

/* Unlinks free block i from its list; it stays a head of the same order. */
static void free_unlink(struct buddy *b, unsigned i)
{
	uint16_t n = b->next[i], pv = b->prev[i];

	if (pv != BUDDY_NONE)
		b->next[pv] = n;
	else
		b->head[b->order[i]] = n;
	if (n != BUDDY_NONE)
		b->prev[n] = pv;
	b->is_free[i] = 0;
}

void buddy_init(struct buddy *b, void *base)
{
	b->base = base;
	memset(b->order, NOT_HEAD, sizeof(b->order));
	memset(b->is_free, 0, sizeof(b->is_free));
	/* BUDDY_NONE is 0xffff, so filling the link arrays with 0xff bytes clears them. */
	memset(b->next, 0xff, sizeof(b->next));
	memset(b->prev, 0xff, sizeof(b->prev));
	memset(b->head, 0xff, sizeof(b->head));
	free_push(b, BUDDY_MAX_ORDER, 0);
	b->free_pages = BUDDY_PAGES;
}

void *buddy_alloc(struct buddy *b, unsigned order)
{
	unsigned o = order;

	if (order > BUDDY_MAX_ORDER)
		return NULL;
	while (o <= BUDDY_MAX_ORDER && b->head[o] == BUDDY_NONE)
		o++;
	if (o > BUDDY_MAX_ORDER)
		return NULL;

	unsigned i = b->head[o];

	free_unlink(b, i);
	/* Split: keep the lower half, free the upper half, until the size fits. */
	while (o > order) {
		o--;
		free_push(b, o, i + block_pages(o));
	}
	b->order[i] = (uint8_t)order;
	b->free_pages -= block_pages(order);
	return page_addr(b, i);
}

/* Page index of the allocated block starting at p, or -EINVAL. Works on the
 * integer value so a pointer outside the chunk is rejected without UB. */
static int live_head(const struct buddy *b, const void *p)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)b->base;

	if (off >= BUDDY_CHUNK_SIZE || (off & (BUDDY_PAGE_SIZE - 1)))
		return -EINVAL;
	unsigned i = (unsigned)(off >> BUDDY_PAGE_SHIFT);

	if (b->order[i] == NOT_HEAD || b->is_free[i])
		return -EINVAL;
	return (int)i;
}

int buddy_free(struct buddy *b, void *p)
{
	int head = live_head(b, p);

	if (head < 0)
		return head;
	unsigned i = (unsigned)head, o = b->order[i];

	b->free_pages += block_pages(o);
	/* Merge while the buddy is a free block of the same order. */
	while (o < BUDDY_MAX_ORDER) {
		unsigned bud = i ^ block_pages(o);

		if (!b->is_free[bud] || b->order[bud] != o)
			break;
		free_unlink(b, bud);
		b->order[i > bud ? i : bud] = NOT_HEAD;
		i &= bud;
		o++;
	}
	free_push(b, o, i);
	return 0;
}

int buddy_block_order(const struct buddy *b, const void *p)
{
	int head = live_head(b, p);

	return head < 0 ? head : b->order[head];
}

int buddy_max_free_order(const struct buddy *b)
{
	for (int o = BUDDY_MAX_ORDER; o >= 0; o--)
		if (b->head[o] != BUDDY_NONE)
			return o;
	return -1;
}

size_t buddy_free_bytes(const struct buddy *b)
{
	return (size_t)b->free_pages << BUDDY_PAGE_SHIFT;
}

int buddy_order_for(size_t bytes)
{
	int o = 0;

	if (bytes > BUDDY_CHUNK_SIZE)
		return -EINVAL;
	while (((size_t)BUDDY_PAGE_SIZE << o) < bytes)
		o++;
	return o;
}

/* Walks one free list; adds its blocks and pages to the totals. */
static int check_list(const struct buddy *b, unsigned o, unsigned *blocks,
		      unsigned *pages)
{
	unsigned steps = 0;
	uint16_t prev = BUDDY_NONE;

	for (uint16_t i = b->head[o]; i != BUDDY_NONE; prev = i, i = b->next[i]) {
		if (i >= BUDDY_PAGES || ++steps > BUDDY_PAGES)
			return -EFAULT;   /* out of range or a cycle */
		if (!b->is_free[i] || b->order[i] != o || (i & (block_pages(o) - 1)))
			return -EFAULT;
		if (b->prev[i] != prev)
			return -EFAULT;
		(*blocks)++;
		*pages += block_pages(o);
	}
	return 0;
}

/* Checks one block starting at page i: aligned, inside the chunk, interior
 * pages unmarked, and, if free, not mergeable with its buddy. */
static int check_block(const struct buddy *b, unsigned i)
{
	unsigned o = b->order[i];

	if (o > BUDDY_MAX_ORDER || b->is_free[i] > 1)
		return -EFAULT;
	if ((i & (block_pages(o) - 1)) || i + block_pages(o) > BUDDY_PAGES)
		return -EFAULT;
	for (unsigned j = i + 1; j < i + block_pages(o); j++)
		if (b->order[j] != NOT_HEAD || b->is_free[j])
			return -EFAULT;
	if (b->is_free[i] && o < BUDDY_MAX_ORDER) {
		unsigned bud = i ^ block_pages(o);

		if (b->is_free[bud] && b->order[bud] == o)
			return -EFAULT;
	}
	return 0;
}

int buddy_check(const struct buddy *b)
{
	unsigned listed = 0, listed_pages = 0, heads = 0, free_pages = 0;

	for (unsigned o = 0; o <= BUDDY_MAX_ORDER; o++)
		if (check_list(b, o, &listed, &listed_pages) < 0)
			return -EFAULT;
	/* The blocks must tile the chunk exactly. */
	for (unsigned i = 0; i < BUDDY_PAGES; i += block_pages(b->order[i])) {
		if (check_block(b, i) < 0)
			return -EFAULT;
		if (b->is_free[i]) {
			heads++;
			free_pages += block_pages(b->order[i]);
		}
	}
	if (heads != listed || free_pages != listed_pages || free_pages != b->free_pages)
		return -EFAULT;
	return 0;
}
