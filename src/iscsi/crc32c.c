/* crc32c.c — CRC32C (Castagnoli) for iSCSI header and data digests.
 *
 * Polynomial 0x1EDC6F41, reflected 0x82F63B78, initial value ~0, final XOR ~0
 * (RFC 7143 §13.1, RFC 3720 Appendix B.4). The public functions take and return
 * the finished value, so crc32c(crc32c(0, a), b) == crc32c(0, a || b): the
 * complement is undone on entry and redone on exit.
 *
 * Two paths compute the same thing:
 *   - SSE4.2's crc32 instruction (8 bytes per instruction), chosen at start-up
 *     when the CPU has it;
 *   - slicing-by-8 tables (8 KiB, built once at start-up) otherwise.
 * The choice is made in a constructor so the I/O path pays one indirect call
 * and no check.
 */
#include <stdint.h>
#include <string.h>

#include "iscsi/pdu.h"

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc_table[8][256];

static void crc32c_build_tables(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
		crc_table[0][i] = c;
	}
	/* crc_table[k][i]: the CRC of byte i followed by k zero bytes. */
	for (uint32_t i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^
					  crc_table[0][crc_table[k - 1][i] & 0xff];
}

/* Raw update: crc is the running register (already complemented). */
static uint32_t crc32c_sw_update(uint32_t crc, const uint8_t *p, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);   /* unaligned-safe; compiles to one load */
		w ^= crc;
		crc = crc_table[7][w & 0xff] ^
		      crc_table[6][(w >> 8) & 0xff] ^
		      crc_table[5][(w >> 16) & 0xff] ^
		      crc_table[4][(w >> 24) & 0xff] ^
		      crc_table[3][(w >> 32) & 0xff] ^
		      crc_table[2][(w >> 40) & 0xff] ^
		      crc_table[1][(w >> 48) & 0xff] ^
		      crc_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
#endif
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw_update(uint32_t crc, const uint8_t *p, size_t len)
{
	/* Byte steps up to 8-byte alignment, so the wide loads never straddle a
	 * cache line needlessly; then 8 bytes per instruction; then the tail. */
	while (len && ((uintptr_t)p & 7)) {
		crc = _mm_crc32_u8(crc, *p++);
		len--;
	}
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)c;
	while (len--)
		crc = _mm_crc32_u8(crc, *p++);
	return crc;
}
#endif

static uint32_t (*crc32c_update)(uint32_t, const uint8_t *, size_t) = crc32c_sw_update;
static bool crc32c_have_hw;

__attribute__((constructor))
static void crc32c_init(void)
{
	crc32c_build_tables();
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2")) {
		crc32c_update = crc32c_hw_update;
		crc32c_have_hw = true;
	}
#endif
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	return ~crc32c_update(~crc, buf, len);
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	return ~crc32c_sw_update(~crc, buf, len);
}

uint32_t crc32c_iov(const struct iovec *iov, int cnt)
{
	uint32_t reg = ~0u;
	for (int i = 0; i < cnt; i++)
		reg = crc32c_update(reg, iov[i].iov_base, iov[i].iov_len);
	return ~reg;
}

bool crc32c_hw(void)
{
	return crc32c_have_hw;
}
