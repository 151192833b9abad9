/* buddy.h — buddy allocator over one 2 MiB chunk, metadata out of band.
 *
 * Contract: manages BUDDY_PAGES (512) pages of 4 KiB starting at `base` (which
 * the caller owns and aligned to 2 MiB). Blocks are 2^order pages, order 0 (4 KiB)
 * to BUDDY_MAX_ORDER (9, the whole 2 MiB). All bookkeeping lives in struct buddy,
 * never in the managed memory: free memory is never written, so it can be
 * registered with an RNIC or handed to a device as is. alloc splits the smallest
 * free block that fits; free merges with the buddy while the buddy is free and of
 * the same order. Every operation is O(BUDDY_MAX_ORDER).
 * Not thread safe.
 */
#ifndef LICH_MEM_BUDDY_H
#define LICH_MEM_BUDDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUDDY_PAGE_SHIFT 12
#define BUDDY_PAGE_SIZE  (1u << BUDDY_PAGE_SHIFT)
#define BUDDY_MAX_ORDER  9
#define BUDDY_PAGES      (1u << BUDDY_MAX_ORDER)
#define BUDDY_CHUNK_SIZE (BUDDY_PAGES * BUDDY_PAGE_SIZE)
#define BUDDY_NONE       0xffffu

struct buddy {
	uint8_t *base;
	/* per page: order of the block starting here (if it is a block head) */
	uint8_t order[BUDDY_PAGES];
	/* per page: 1 if a free block starts here */
	uint8_t is_free[BUDDY_PAGES];
	/* doubly linked free lists per order, by page index */
	uint16_t next[BUDDY_PAGES];
	uint16_t prev[BUDDY_PAGES];
	uint16_t head[BUDDY_MAX_ORDER + 1];
	uint32_t free_pages;
};

void buddy_init(struct buddy *b, void *base);
/* Returns the block address, or NULL if no free block of that order exists
 * (or order > BUDDY_MAX_ORDER). */
void *buddy_alloc(struct buddy *b, unsigned order);
/* p must be a block returned by buddy_alloc on this buddy; returns -EINVAL
 * (and changes nothing) for a pointer that is not a live block head. */
int buddy_free(struct buddy *b, void *p);
/* Order of the live allocated block at p, or -EINVAL. */
int buddy_block_order(const struct buddy *b, const void *p);
/* Largest order with a free block, or -1 if full. */
int buddy_max_free_order(const struct buddy *b);
size_t buddy_free_bytes(const struct buddy *b);
/* Checks every invariant (lists consistent with flags, no two free buddies of
 * the same order left unmerged, page accounting); 0 or -EFAULT. For tests. */
int buddy_check(const struct buddy *b);
/* Smallest order whose block holds `bytes` (bytes <= 2 MiB), or -EINVAL. */
int buddy_order_for(size_t bytes);

#endif
