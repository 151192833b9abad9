/* hash.c — MD5 (RFC 1321), SHA-256 (FIPS 180-4), SHA3-256 (FIPS 202).
 *
 * MD5 and SHA-256 share the Merkle–Damgård framing (64-byte blocks, a
 * length-terminated padding; MD5 little-endian, SHA-256 big-endian). SHA3-256
 * is a Keccak-f[1600] sponge with a 136-byte rate and the 0x06 domain pad.
 */
#include <string.h>

#include "iscsi/hash.h"

#define ROL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define ROL64(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

size_t hash_len(enum hash_alg alg)
{
	return alg == HASH_MD5 ? 16 : 32;
}

/* ---- MD5 ---- */

static const uint32_t md5_k[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const uint8_t md5_r[64] = {
	7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
	5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
	4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
	6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static void md5_block(uint32_t *h, const uint8_t *p)
{
	uint32_t m[16], a = h[0], b = h[1], c = h[2], d = h[3];

	for (int i = 0; i < 16; i++)
		m[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
		       (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
	for (int i = 0; i < 64; i++) {
		uint32_t f, t;
		int g;

		if (i < 16) {
			f = (b & c) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & c);
			g = (5 * i + 1) % 16;
		} else if (i < 48) {
			f = b ^ c ^ d;
			g = (3 * i + 5) % 16;
		} else {
			f = c ^ (b | ~d);
			g = (7 * i) % 16;
		}
		t = d;
		d = c;
		c = b;
		b = b + ROL32(a + f + md5_k[i] + m[g], md5_r[i]);
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
}

/* ---- SHA-256 ---- */

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static void sha256_block(uint32_t *h, const uint8_t *p)
{
	uint32_t w[64], v[8];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(v, h, sizeof(v));
	for (int i = 0; i < 64; i++) {
		uint32_t S1 = ROR32(v[4], 6) ^ ROR32(v[4], 11) ^ ROR32(v[4], 25);
		uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
		uint32_t t1 = v[7] + S1 + ch + sha256_k[i] + w[i];
		uint32_t S0 = ROR32(v[0], 2) ^ ROR32(v[0], 13) ^ ROR32(v[0], 22);
		uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);

		memmove(v + 1, v, 7 * sizeof(v[0]));
		v[4] += t1;
		v[0] = t1 + S0 + maj;
	}
	for (int i = 0; i < 8; i++)
		h[i] += v[i];
}

/* ---- SHA3-256 (Keccak-f[1600]) ---- */

#define SHA3_256_RATE 136

static const uint64_t keccak_rc[24] = {
	0x0000000000000001ull, 0x0000000000008082ull, 0x800000000000808aull, 0x8000000080008000ull,
	0x000000000000808bull, 0x0000000080000001ull, 0x8000000080008081ull, 0x8000000000008009ull,
	0x000000000000008aull, 0x0000000000000088ull, 0x0000000080008009ull, 0x000000008000000aull,
	0x000000008000808bull, 0x800000000000008bull, 0x8000000000008089ull, 0x8000000000008003ull,
	0x8000000000008002ull, 0x8000000000000080ull, 0x000000000000800aull, 0x800000008000000aull,
	0x8000000080008081ull, 0x8000000000008080ull, 0x0000000080000001ull, 0x8000000080008008ull,
};
/* rho offsets and pi lane order, walked along the pi permutation's cycle */
static const uint8_t keccak_rot[24] = {
	1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44,
};
static const uint8_t keccak_pi[24] = {
	10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1,
};

static void keccak_f(uint64_t *st)
{
	for (int r = 0; r < 24; r++) {
		uint64_t bc[5], t;

		for (int i = 0; i < 5; i++)                         /* theta */
			bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
		for (int i = 0; i < 5; i++) {
			t = bc[(i + 4) % 5] ^ ROL64(bc[(i + 1) % 5], 1);
			for (int j = 0; j < 25; j += 5)
				st[j + i] ^= t;
		}
		t = st[1];                                          /* rho and pi */
		for (int i = 0; i < 24; i++) {
			int j = keccak_pi[i];
			uint64_t x = st[j];

			st[j] = ROL64(t, keccak_rot[i]);
			t = x;
		}
		for (int j = 0; j < 25; j += 5) {                   /* chi */
			for (int i = 0; i < 5; i++)
				bc[i] = st[j + i];
			for (int i = 0; i < 5; i++)
				st[j + i] ^= ~bc[(i + 1) % 5] & bc[(i + 2) % 5];
		}
		st[0] ^= keccak_rc[r];                              /* iota */
	}
}

/* XORs one byte into the sponge at byte position pos (lanes are little-endian). */
static void keccak_xor_byte(uint64_t *st, unsigned pos, uint8_t b)
{
	st[pos / 8] ^= (uint64_t)b << (8 * (pos % 8));
}

/* ---- the common interface ---- */

void hash_init(struct hash_ctx *h, enum hash_alg alg)
{
	static const uint32_t md5_iv[4] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 };
	static const uint32_t sha256_iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memset(h, 0, sizeof(*h));
	h->alg = alg;
	if (alg == HASH_MD5)
		memcpy(h->s.h32, md5_iv, sizeof(md5_iv));
	else if (alg == HASH_SHA256)
		memcpy(h->s.h32, sha256_iv, sizeof(sha256_iv));
}

static void md_block(struct hash_ctx *h, const uint8_t *p)
{
	if (h->alg == HASH_MD5)
		md5_block(h->s.h32, p);
	else
		sha256_block(h->s.h32, p);
}

void hash_update(struct hash_ctx *h, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (h->alg == HASH_SHA3_256) {
		for (size_t i = 0; i < len; i++) {
			keccak_xor_byte(h->s.keccak, h->buffered, p[i]);
			if (++h->buffered == SHA3_256_RATE) {
				keccak_f(h->s.keccak);
				h->buffered = 0;
			}
		}
		return;
	}
	h->total += len;
	while (len) {
		size_t n = 64 - h->buffered;

		if (n > len)
			n = len;
		memcpy(h->buf + h->buffered, p, n);
		h->buffered += (uint32_t)n;
		p += n;
		len -= n;
		if (h->buffered == 64) {
			md_block(h, h->buf);
			h->buffered = 0;
		}
	}
}

void hash_final(struct hash_ctx *h, uint8_t *out)
{
	if (h->alg == HASH_SHA3_256) {
		keccak_xor_byte(h->s.keccak, h->buffered, 0x06);
		keccak_xor_byte(h->s.keccak, SHA3_256_RATE - 1, 0x80);
		keccak_f(h->s.keccak);
		for (unsigned i = 0; i < 32; i++)
			out[i] = (uint8_t)(h->s.keccak[i / 8] >> (8 * (i % 8)));
	} else {
		uint64_t bits = h->total * 8;
		uint8_t pad = 0x80, len8[8];

		hash_update(h, &pad, 1);
		pad = 0;
		while (h->buffered != 56)
			hash_update(h, &pad, 1);
		for (int i = 0; i < 8; i++)   /* MD5 little-endian, SHA-256 big-endian */
			len8[i] = (uint8_t)(bits >> (h->alg == HASH_MD5 ? 8 * i : 56 - 8 * i));
		hash_update(h, len8, 8);
		for (unsigned i = 0; i < hash_len(h->alg) / 4; i++) {
			uint32_t w = h->s.h32[i];

			for (int b = 0; b < 4; b++)
				out[4 * i + b] = (uint8_t)(h->alg == HASH_MD5 ? w >> (8 * b) :
							   w >> (24 - 8 * b));
		}
	}
	/* The state was derived from a secret: wipe it. */
	explicit_bzero(h, sizeof(*h));
}
