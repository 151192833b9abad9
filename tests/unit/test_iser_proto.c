/* test_iser_proto.c — iSER header, Hello/HelloReply and CM header codecs
 * against hand-written wire bytes (RFC 7145 §9), truncation at every length,
 * and build/parse round trips. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/iser_proto.h"

/* A Linux ib_iser READ command header: R set, read STag 0x1234abcd, VA of a
 * kernel buffer. */
static const uint8_t read_hdr[ISER_HDR_LEN] = {
	0x14, 0, 0, 0,
	0, 0, 0, 0,  0, 0, 0, 0, 0, 0, 0, 0,
	0x12, 0x34, 0xab, 0xcd,  0xff, 0xff, 0x88, 0x81, 0x02, 0x03, 0x40, 0x00,
};

static void test_hdr_parse_known(void **state)
{
	struct iser_hdr h;

	(void)state;
	assert_int_equal(iser_msg_opcode(read_hdr, sizeof(read_hdr)), ISER_OP_CTRL);
	assert_int_equal(iser_hdr_parse(read_hdr, sizeof(read_hdr), &h), 0);
	assert_true(h.has_read);
	assert_false(h.has_write);
	assert_int_equal(h.read_stag, 0x1234abcd);
	assert_true(h.read_va == 0xffff888102034000ull);

	uint8_t w[ISER_HDR_LEN] = { 0x18, 0xff, 0xff, 0xff, 0xde, 0xad, 0xbe, 0xef,
				    1, 2, 3, 4, 5, 6, 7, 8 };
	assert_int_equal(iser_hdr_parse(w, sizeof(w), &h), 0);
	assert_true(h.has_write);
	assert_false(h.has_read);
	assert_int_equal(h.write_stag, 0xdeadbeef);
	assert_true(h.write_va == 0x0102030405060708ull);
}

static void test_hdr_truncated_and_wrong_opcode(void **state)
{
	struct iser_hdr h, keep;
	uint8_t b[ISER_HDR_LEN];

	(void)state;
	memset(&keep, 0x5a, sizeof(keep));
	for (size_t len = 0; len < ISER_HDR_LEN; len++) {
		h = keep;
		assert_int_equal(iser_hdr_parse(read_hdr, len, &h), -EMSGSIZE);
		assert_memory_equal(&h, &keep, sizeof(h));   /* out untouched */
	}
	assert_int_equal(iser_hdr_parse(NULL, 100, &h), -EMSGSIZE);
	assert_int_equal(iser_msg_opcode(read_hdr, 0), -EMSGSIZE);
	memcpy(b, read_hdr, sizeof(b));
	for (unsigned op = 0; op < 16; op++) {
		b[0] = (uint8_t)(op << 4 | 0x0c);
		if (op == ISER_OP_CTRL)
			assert_int_equal(iser_hdr_parse(b, sizeof(b), &h), 0);
		else
			assert_int_equal(iser_hdr_parse(b, sizeof(b), &h), -EPROTO);
	}
	/* Longer buffers are fine: the PDU follows the header. */
	uint8_t big[ISER_HDR_LEN + 48] = { 0 };
	memcpy(big, read_hdr, ISER_HDR_LEN);
	assert_int_equal(iser_hdr_parse(big, sizeof(big), &h), 0);
}

static void test_hdr_build(void **state)
{
	struct iser_hdr h = { .has_read = true, .read_stag = 0x1234abcd,
			      .read_va = 0xffff888102034000ull,
			      /* not flagged: must not reach the wire */
			      .write_stag = 0x99, .write_va = 0x77 };
	uint8_t b[ISER_HDR_LEN + 4], small[ISER_HDR_LEN - 1];
	struct iser_hdr back;

	(void)state;
	memset(b, 0xee, sizeof(b));
	assert_int_equal(iser_hdr_build(b, sizeof(b), &h), (int)ISER_HDR_LEN);
	assert_memory_equal(b, read_hdr, ISER_HDR_LEN);
	assert_int_equal(b[ISER_HDR_LEN], 0xee);      /* nothing written beyond */
	assert_int_equal(iser_hdr_build(small, sizeof(small), &h), -EMSGSIZE);

	h.has_write = true;
	h.write_stag = 0x01020304;
	h.write_va = 0x1122334455667788ull;
	assert_int_equal(iser_hdr_build(b, sizeof(b), &h), (int)ISER_HDR_LEN);
	assert_int_equal(b[0], 0x1c);
	assert_int_equal(iser_hdr_parse(b, ISER_HDR_LEN, &back), 0);
	assert_true(back.has_read && back.has_write);
	assert_int_equal(back.write_stag, h.write_stag);
	assert_true(back.write_va == h.write_va);
	assert_int_equal(back.read_stag, h.read_stag);
	assert_true(back.read_va == h.read_va);
	/* A plain control PDU (e.g. NOP-In, SCSI Response): just the opcode. */
	memset(&h, 0, sizeof(h));
	assert_int_equal(iser_hdr_build(b, sizeof(b), &h), (int)ISER_HDR_LEN);
	assert_int_equal(b[0], 0x10);
	for (unsigned i = 1; i < ISER_HDR_LEN; i++)
		assert_int_equal(b[i], 0);
}

static void test_hello(void **state)
{
	/* MaxVer 1, MinVer 1, IRD 16; reserved bytes non-zero are ignored. */
	const uint8_t wire[ISER_HELLO_LEN] = { 0x2f, 0x11, 0x00, 0x10, 9, 9, 9, 9, 9, 9, 9, 9 };
	struct iser_hello h, keep;
	uint8_t b[ISER_HELLO_LEN];

	(void)state;
	assert_int_equal(iser_msg_opcode(wire, sizeof(wire)), ISER_OP_HELLO);
	assert_int_equal(iser_hello_parse(wire, sizeof(wire), &h), 0);
	assert_int_equal(h.max_ver, 1);
	assert_int_equal(h.min_ver, 1);
	assert_int_equal(h.ird, 16);
	memset(&keep, 0x5a, sizeof(keep));
	for (size_t len = 0; len < ISER_HELLO_LEN; len++) {
		h = keep;
		assert_int_equal(iser_hello_parse(wire, len, &h), -EMSGSIZE);
		assert_memory_equal(&h, &keep, sizeof(h));
	}
	/* MinVer above MaxVer is malformed. */
	memcpy(b, wire, sizeof(b));
	b[1] = 0x12;
	assert_int_equal(iser_hello_parse(b, sizeof(b), &h), -EPROTO);
	/* A HelloReply is not a Hello. */
	b[0] = 0x30;
	b[1] = 0x11;
	assert_int_equal(iser_hello_parse(b, sizeof(b), &h), -EPROTO);

	h = (struct iser_hello){ .max_ver = 1, .min_ver = 1, .ird = 16 };
	assert_int_equal(iser_hello_build(b, sizeof(b), &h), (int)ISER_HELLO_LEN);
	assert_memory_equal(b, ((uint8_t[]){ 0x20, 0x11, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0, 0 }),
			    ISER_HELLO_LEN);
	assert_int_equal(iser_hello_build(b, ISER_HELLO_LEN - 1, &h), -EMSGSIZE);
}

static void test_hello_reply(void **state)
{
	struct iser_hello_reply r, back;
	uint8_t b[ISER_HELLO_LEN];

	(void)state;
	r = (struct iser_hello_reply){ .max_ver = 1, .cur_ver = 1, .ord = 0x0102 };
	assert_int_equal(iser_hello_reply_build(b, sizeof(b), &r), (int)ISER_HELLO_LEN);
	assert_memory_equal(b, ((uint8_t[]){ 0x30, 0x11, 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 0 }),
			    ISER_HELLO_LEN);
	assert_int_equal(iser_hello_reply_parse(b, sizeof(b), &back), 0);
	assert_false(back.reject);
	assert_int_equal(back.cur_ver, 1);
	assert_int_equal(back.ord, 0x0102);

	r = (struct iser_hello_reply){ .reject = true, .max_ver = 1 };
	assert_int_equal(iser_hello_reply_build(b, sizeof(b), &r), (int)ISER_HELLO_LEN);
	assert_int_equal(b[0], 0x31);
	assert_int_equal(b[1], 0x10);
	assert_int_equal(iser_hello_reply_parse(b, sizeof(b), &back), 0);
	assert_true(back.reject);
	/* Accepting a version above its own maximum is malformed. */
	b[0] = 0x30;
	b[1] = 0x12;
	assert_int_equal(iser_hello_reply_parse(b, sizeof(b), &back), -EPROTO);
	for (size_t len = 0; len < ISER_HELLO_LEN; len++)
		assert_int_equal(iser_hello_reply_parse(b, len, &back), -EMSGSIZE);
	b[0] = 0x20;
	b[1] = 0x11;
	assert_int_equal(iser_hello_reply_parse(b, sizeof(b), &back), -EPROTO);
}

static void test_hello_answer(void **state)
{
	struct iser_hello h = { .max_ver = 1, .min_ver = 1, .ird = 64 };
	struct iser_hello_reply r;

	(void)state;
	iser_hello_answer(&h, 16, &r);
	assert_false(r.reject);
	assert_int_equal(r.cur_ver, ISER_VERSION);
	assert_int_equal(r.ord, 16);            /* our limit */
	h.ird = 4;
	iser_hello_answer(&h, 16, &r);
	assert_int_equal(r.ord, 4);             /* the initiator's */
	h = (struct iser_hello){ .max_ver = 3, .min_ver = 2, .ird = 4 };
	iser_hello_answer(&h, 16, &r);
	assert_true(r.reject);
	assert_int_equal(r.max_ver, ISER_VERSION);
	h = (struct iser_hello){ .max_ver = 0, .min_ver = 0, .ird = 4 };
	iser_hello_answer(&h, 16, &r);
	assert_true(r.reject);
	h = (struct iser_hello){ .max_ver = 15, .min_ver = 0, .ird = 4 };
	iser_hello_answer(&h, 16, &r);
	assert_false(r.reject);
	assert_int_equal(r.cur_ver, ISER_VERSION);
}

static void test_cm_hdr(void **state)
{
	/* What Linux ib_iser sends in its CM REQ: ZBVA not supported. */
	const uint8_t req[] = { 0x80, 0, 0, 0 };
	struct iser_cm_hdr h;
	uint8_t b[ISER_CM_HDR_LEN];

	(void)state;
	assert_int_equal(iser_cm_hdr_parse(req, sizeof(req), &h), 0);
	assert_int_equal(h.flags, ISER_CM_ZBVA_NOT_SUP);
	assert_int_equal(iser_cm_hdr_parse(req, 3, &h), -EMSGSIZE);
	assert_int_equal(iser_cm_hdr_parse(NULL, 0, &h), -EMSGSIZE);
	h.flags = ISER_CM_ZBVA_NOT_SUP | ISER_CM_SEND_W_INV_NOT_SUP;
	assert_int_equal(iser_cm_hdr_build(b, sizeof(b), &h), (int)ISER_CM_HDR_LEN);
	assert_memory_equal(b, ((uint8_t[]){ 0xc0, 0, 0, 0 }), 4);
	assert_int_equal(iser_cm_hdr_build(b, 2, &h), -EMSGSIZE);
}

/* Random bytes at random lengths: never a crash, never a read past len (ASan
 * sees a heap buffer of exactly len bytes), results only 0 / -EMSGSIZE / -EPROTO. */
static void test_random(void **state)
{
	(void)state;
	srand(7145);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)rand() % 40;
		uint8_t *b = malloc(len ? len : 1);
		struct iser_hdr h;
		struct iser_hello he;
		struct iser_hello_reply hr;
		struct iser_cm_hdr cm;
		int rc;

		for (size_t k = 0; k < len; k++)
			b[k] = (uint8_t)rand();
		rc = iser_hdr_parse(b, len, &h);
		assert_true(rc == 0 || rc == -EMSGSIZE || rc == -EPROTO);
		rc = iser_hello_parse(b, len, &he);
		assert_true(rc == 0 || rc == -EMSGSIZE || rc == -EPROTO);
		rc = iser_hello_reply_parse(b, len, &hr);
		assert_true(rc == 0 || rc == -EMSGSIZE || rc == -EPROTO);
		rc = iser_cm_hdr_parse(b, len, &cm);
		assert_true(rc == 0 || rc == -EMSGSIZE);
		free(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_parse_known),
		cmocka_unit_test(test_hdr_truncated_and_wrong_opcode),
		cmocka_unit_test(test_hdr_build),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_hello_reply),
		cmocka_unit_test(test_hello_answer),
		cmocka_unit_test(test_cm_hdr),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
