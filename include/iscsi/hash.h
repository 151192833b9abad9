/* hash.h — the message digests CHAP needs: MD5 (RFC 1321), SHA-256 (FIPS 180-4)
 * and SHA3-256 (FIPS 202), so the target has no crypto library dependency.
 *
 * Contract: init / update (any number of times, any lengths) / final, which
 * writes hash_len(alg) bytes and leaves the context wiped. Login-time only:
 * plain portable C, no attempt at speed. MD5 is here because RFC 7143 makes
 * CHAP with MD5 mandatory to implement, not because it is strong.
 */
#ifndef LICH_ISCSI_HASH_H
#define LICH_ISCSI_HASH_H

#include <stddef.h>
#include <stdint.h>

enum hash_alg { HASH_MD5 = 0, HASH_SHA256, HASH_SHA3_256 };

#define HASH_MAX_LEN 32

struct hash_ctx {
	enum hash_alg alg;
	uint64_t total;               /* bytes hashed (MD5, SHA-256) */
	uint32_t buffered;            /* bytes waiting in buf / position in the sponge */
	union {
		uint32_t h32[8];      /* MD5 (4 words), SHA-256 (8 words) */
		uint64_t keccak[25];  /* SHA3-256 state */
	} s;
	uint8_t buf[64];              /* MD5 / SHA-256 block being filled */
};

/* Digest length in bytes: 16 for MD5, 32 for the others. */
size_t hash_len(enum hash_alg alg);
void hash_init(struct hash_ctx *h, enum hash_alg alg);
void hash_update(struct hash_ctx *h, const void *data, size_t len);
void hash_final(struct hash_ctx *h, uint8_t *out);

#endif
