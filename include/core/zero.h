/* zero.h — clearing small blocks on the I/O path.
 *
 * gcc inlines a memset() of a constant size up to 64 bytes as a few vector
 * stores, and a larger one as `rep stosq`, whose start-up alone costs tens of
 * cycles (and which valgrind counts once per word). zero_small() clears a
 * block of constant size in pieces of at most 64 bytes, which compile to
 * straight vector stores; use it for the per-command structures that are
 * cleared on every I/O. For large or variable sizes, plain memset() is right.
 */
#ifndef LICH_CORE_ZERO_H
#define LICH_CORE_ZERO_H

#include <stddef.h>
#include <string.h>

static inline __attribute__((always_inline)) void zero_small(void *p, size_t n)
{
	char *z = p;

	while (n > 64) {
		memset(z, 0, 64);
		z += 64;
		n -= 64;
	}
	memset(z, 0, n);
}

#endif
