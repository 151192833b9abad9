/* test_crc32c.c — CRC32C: RFC 3720 B.4 vectors, wire byte order, SSE4.2 vs
 * table path on random data, chaining and iovec digests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iscsi/pdu.h"

/* RFC 3720 Appendix B.4: a 48-byte SCSI READ(10) command PDU. */
static const uint8_t rfc_read_pdu[48] = {
	0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
	0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
	0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn f)
{
	uint8_t buf[32];

	memset(buf, 0, sizeof(buf));
	assert_int_equal(f(0, buf, 32), 0x8a9136aa);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(f(0, buf, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(f(0, buf, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(f(0, buf, 32), 0x113fdb5c);
	assert_int_equal(f(0, rfc_read_pdu, 48), 0xd9963a56);
	/* The catalogue check value of CRC-32C. */
	assert_int_equal(f(0, "123456789", 9), 0xe3069283);
	/* Empty input leaves the value alone (also when chaining). */
	assert_int_equal(f(0, buf, 0), 0);
	assert_int_equal(f(0x12345678, buf, 0), 0x12345678);
}

static void test_rfc_vectors(void **state)
{
	(void)state;
	check_vectors(crc32c);
	check_vectors(crc32c_sw);
}

/* The RFC prints digests in transmission order: 32 zeros -> aa 36 91 8a. The
 * helper must produce exactly those bytes, and read them back. */
static void test_wire_byte_order(void **state)
{
	uint8_t zeros[32] = { 0 }, wire[4];
	static const uint8_t expect_zero[4] = { 0xaa, 0x36, 0x91, 0x8a };
	static const uint8_t expect_pdu[4] = { 0x56, 0x3a, 0x96, 0xd9 };

	(void)state;
	iscsi_put_digest(wire, crc32c(0, zeros, sizeof(zeros)));
	assert_memory_equal(wire, expect_zero, 4);
	assert_int_equal(iscsi_get_digest(wire), 0x8a9136aa);
	iscsi_put_digest(wire, crc32c(0, rfc_read_pdu, 48));
	assert_memory_equal(wire, expect_pdu, 4);
	assert_int_equal(iscsi_get_digest(expect_pdu), 0xd9963a56);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Reference: bit-at-a-time, independent of both table and instruction. */
static uint32_t crc_bitwise(const uint8_t *p, size_t len)
{
	uint32_t c = ~0u;
	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

static void test_hw_sw_random(void **state)
{
	enum { MAX = 70000 };
	uint8_t *buf = malloc(MAX + 16);

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < MAX + 16; i++)
		buf[i] = (uint8_t)rnd();
	for (int iter = 0; iter < 3000; iter++) {
		size_t off = rnd() % 16;
		/* Mostly short lengths (every head/tail combination), some long. */
		size_t len = (iter % 10 == 0) ? rnd() % MAX : rnd() % 200;
		uint32_t seed = (iter & 1) ? rnd() : 0;
		uint32_t a = crc32c(seed, buf + off, len);
		uint32_t b = crc32c_sw(seed, buf + off, len);
		assert_int_equal(a, b);
		if (seed == 0 && len < 4096)
			assert_int_equal(a, crc_bitwise(buf + off, len));
	}
	free(buf);
}

static void test_chaining(void **state)
{
	uint8_t buf[1000];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	uint32_t whole = crc32c(0, buf, sizeof(buf));
	for (size_t cut = 0; cut <= sizeof(buf); cut += 37) {
		uint32_t c = crc32c(0, buf, cut);
		assert_int_equal(crc32c(c, buf + cut, sizeof(buf) - cut), whole);
		c = crc32c_sw(0, buf, cut);
		assert_int_equal(crc32c_sw(c, buf + cut, sizeof(buf) - cut), whole);
		/* Mixed paths chain too: same register convention. */
		c = crc32c_sw(0, buf, cut);
		assert_int_equal(crc32c(c, buf + cut, sizeof(buf) - cut), whole);
	}
	/* Three-way split of the RFC PDU. */
	uint32_t c = crc32c(0, rfc_read_pdu, 11);
	c = crc32c(c, rfc_read_pdu + 11, 13);
	c = crc32c(c, rfc_read_pdu + 24, 24);
	assert_int_equal(c, 0xd9963a56);
}

static void test_iov(void **state)
{
	uint8_t zeros[32] = { 0 };
	struct iovec iov[5] = {
		{ (void *)rfc_read_pdu, 5 },
		{ (void *)(rfc_read_pdu + 5), 0 },      /* empty segment */
		{ (void *)(rfc_read_pdu + 5), 30 },
		{ (void *)(rfc_read_pdu + 35), 13 },
		{ zeros, 0 },
	};

	(void)state;
	assert_int_equal(crc32c_iov(iov, 5), 0xd9963a56);
	assert_int_equal(crc32c_iov(iov, 0), 0);          /* nothing covered */
	struct iovec one = { zeros, 32 };
	assert_int_equal(crc32c_iov(&one, 1), 0x8a9136aa);

	/* Data digest covers the pad bytes: a 3-byte segment digests as 4 bytes
	 * with one zero pad. */
	uint8_t data[4] = { 'a', 'b', 'c', 0 };
	struct iovec seg[2] = { { data, 3 }, { zeros, ISCSI_PAD(3) - 3 } };
	assert_int_equal(crc32c_iov(seg, 2), crc32c(0, data, 4));
}

static void test_hw_detection(void **state)
{
	(void)state;
#if defined(__x86_64__)
	__builtin_cpu_init();
	assert_int_equal(crc32c_hw(), __builtin_cpu_supports("sse4.2") != 0);
#else
	assert_false(crc32c_hw());
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_vectors),
		cmocka_unit_test(test_wire_byte_order),
		cmocka_unit_test(test_hw_sw_random),
		cmocka_unit_test(test_chaining),
		cmocka_unit_test(test_iov),
		cmocka_unit_test(test_hw_detection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
