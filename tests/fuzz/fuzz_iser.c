/* fuzz_iser.c — the iSER wire codecs (src/net/iser_proto.c): the iSER header
 * in front of every iSCSI PDU on an RDMA Send, Hello / HelloReply, and the CM
 * private data, fed whatever a peer could send.
 *
 * Input: byte 0 is the target's max ORD for iser_hello_answer (and picks
 * nothing else); the rest is one received message, handed to every parser,
 * each at its full length and one byte short of what it needs.
 * Checks, per parser: it reads nothing past the length (the message is copied
 * into a buffer of exactly that size, so ASan sees any overread); it fails with
 * -EMSGSIZE below its header length and only -EMSGSIZE / -EPROTO otherwise;
 * it succeeds exactly when the opcode (and version rule) of the header says it
 * must; what it parsed builds back into bytes that parse to the same struct,
 * and those bytes equal the input's header with reserved bits cleared;
 * a build into a buffer one byte short fails and writes nothing; and the Hello
 * answer agrees with RFC 7145 §5.1.3 (reject exactly when version 1 is outside
 * [MinVer, MaxVer]; else CurVer 1 and ORD = min(IRD, max ORD)). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/iser_proto.h"

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_iser: %s:%d: check failed: %s\n", \
			__FILE__, __LINE__, #x); abort(); } } while (0)

/* A failed build must leave the buffer alone. */
#define SENTINEL 0xa5

#define CHECK_SHORT_BUILD(build, h, need) do {                                  \
	uint8_t sb_[64];                                                        \
									        \
	memset(sb_, SENTINEL, sizeof(sb_));                                     \
	CHECK(build(sb_, (need) - 1, (h)) == -EMSGSIZE);                        \
	for (size_t i_ = 0; i_ < sizeof(sb_); i_++)                             \
		CHECK(sb_[i_] == SENTINEL);                                     \
	CHECK(build(NULL, (need), (h)) == -EMSGSIZE);                           \
} while (0)

static void fuzz_hdr(const uint8_t *m, size_t len)
{
	struct iser_hdr h, h2;
	uint8_t out[ISER_HDR_LEN], want[ISER_HDR_LEN];
	int rc = iser_hdr_parse(m, len, &h);

	if (len < ISER_HDR_LEN) {
		CHECK(rc == -EMSGSIZE);
		return;
	}
	CHECK(rc == ((m[0] >> 4) == ISER_OP_CTRL ? 0 : -EPROTO));
	CHECK(iser_hdr_parse(m, ISER_HDR_LEN - 1, &h2) == -EMSGSIZE);
	if (rc)
		return;
	CHECK(h.has_write == !!(m[0] & ISER_FLAG_W));
	CHECK(h.has_read == !!(m[0] & ISER_FLAG_R));
	CHECK(iser_hdr_build(out, sizeof(out), &h) == (int)ISER_HDR_LEN);
	/* the input with reserved bits, and the fields of an absent
	 * direction, cleared */
	memcpy(want, m, ISER_HDR_LEN);
	want[0] &= 0xf0 | ISER_FLAG_W | ISER_FLAG_R;
	memset(want + 1, 0, 3);
	if (!h.has_write)
		memset(want + 4, 0, 12);
	if (!h.has_read)
		memset(want + 16, 0, 12);
	CHECK(memcmp(out, want, ISER_HDR_LEN) == 0);
	CHECK(iser_hdr_parse(out, sizeof(out), &h2) == 0);
	CHECK(h2.has_write == h.has_write && h2.has_read == h.has_read);
	CHECK(!h.has_write || (h2.write_stag == h.write_stag && h2.write_va == h.write_va));
	CHECK(!h.has_read || (h2.read_stag == h.read_stag && h2.read_va == h.read_va));
	CHECK_SHORT_BUILD(iser_hdr_build, &h, ISER_HDR_LEN);
}

static void fuzz_hello(const uint8_t *m, size_t len, uint16_t max_ord)
{
	struct iser_hello h, h2;
	struct iser_hello_reply r, r2;
	uint8_t out[ISER_HELLO_LEN];
	int rc = iser_hello_parse(m, len, &h);

	if (len < ISER_HELLO_LEN) {
		CHECK(rc == -EMSGSIZE);
		return;
	}
	CHECK(iser_hello_parse(m, ISER_HELLO_LEN - 1, &h2) == -EMSGSIZE);
	if ((m[0] >> 4) != ISER_OP_HELLO || (m[1] & 0x0f) > (m[1] >> 4)) {
		CHECK(rc == -EPROTO);
		return;
	}
	CHECK(rc == 0);
	CHECK(h.max_ver == m[1] >> 4 && h.min_ver == (m[1] & 0x0f));
	CHECK(h.ird == (uint16_t)(m[2] << 8 | m[3]));
	CHECK(iser_hello_build(out, sizeof(out), &h) == (int)ISER_HELLO_LEN);
	CHECK(out[0] == ISER_OP_HELLO << 4 && out[1] == m[1] && out[2] == m[2] && out[3] == m[3]);
	for (unsigned i = 4; i < ISER_HELLO_LEN; i++)
		CHECK(out[i] == 0);
	CHECK(iser_hello_parse(out, sizeof(out), &h2) == 0);
	CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
	CHECK_SHORT_BUILD(iser_hello_build, &h, ISER_HELLO_LEN);

	/* the target's answer, and the answer on the wire as the initiator
	 * reads it */
	iser_hello_answer(&h, max_ord, &r);
	if (h.min_ver > ISER_VERSION || h.max_ver < ISER_VERSION) {
		CHECK(r.reject && r.max_ver == ISER_VERSION);
	} else {
		CHECK(!r.reject && r.cur_ver == ISER_VERSION && r.max_ver == ISER_VERSION);
		CHECK(r.ord == (h.ird < max_ord ? h.ird : max_ord));
	}
	CHECK(iser_hello_reply_build(out, sizeof(out), &r) == (int)ISER_HELLO_LEN);
	CHECK(iser_hello_reply_parse(out, sizeof(out), &r2) == 0);
	CHECK(r2.reject == r.reject && r2.max_ver == r.max_ver && r2.cur_ver == r.cur_ver &&
	      r2.ord == r.ord);
}

static void fuzz_hello_reply(const uint8_t *m, size_t len)
{
	struct iser_hello_reply r, r2;
	uint8_t out[ISER_HELLO_LEN];
	int rc = iser_hello_reply_parse(m, len, &r);
	bool rej, bad;

	if (len < ISER_HELLO_LEN) {
		CHECK(rc == -EMSGSIZE);
		return;
	}
	CHECK(iser_hello_reply_parse(m, ISER_HELLO_LEN - 1, &r2) == -EMSGSIZE);
	rej = m[0] & ISER_HELLO_REJ;
	bad = (m[0] >> 4) != ISER_OP_HELLO_REPLY || (!rej && (m[1] & 0x0f) > (m[1] >> 4));
	CHECK(rc == (bad ? -EPROTO : 0));
	if (rc)
		return;
	CHECK(r.reject == rej && r.max_ver == m[1] >> 4 && r.cur_ver == (m[1] & 0x0f));
	CHECK(r.ord == (uint16_t)(m[2] << 8 | m[3]));
	CHECK(iser_hello_reply_build(out, sizeof(out), &r) == (int)ISER_HELLO_LEN);
	CHECK(out[0] == (uint8_t)(ISER_OP_HELLO_REPLY << 4 | (rej ? ISER_HELLO_REJ : 0)));
	CHECK(out[1] == m[1] && out[2] == m[2] && out[3] == m[3]);
	for (unsigned i = 4; i < ISER_HELLO_LEN; i++)
		CHECK(out[i] == 0);
	CHECK(iser_hello_reply_parse(out, sizeof(out), &r2) == 0);
	CHECK(r2.reject == r.reject && r2.max_ver == r.max_ver && r2.cur_ver == r.cur_ver &&
	      r2.ord == r.ord);
	CHECK_SHORT_BUILD(iser_hello_reply_build, &r, ISER_HELLO_LEN);
}

static void fuzz_cm(const uint8_t *m, size_t len)
{
	struct iser_cm_hdr c, c2;
	uint8_t out[ISER_CM_HDR_LEN];
	int rc = iser_cm_hdr_parse(m, len, &c);

	if (len < ISER_CM_HDR_LEN) {
		CHECK(rc == -EMSGSIZE);
		return;
	}
	CHECK(rc == 0 && c.flags == m[0]);
	CHECK(iser_cm_hdr_parse(m, ISER_CM_HDR_LEN - 1, &c2) == -EMSGSIZE);
	CHECK(iser_cm_hdr_build(out, sizeof(out), &c) == (int)ISER_CM_HDR_LEN);
	CHECK(out[0] == m[0] && out[1] == 0 && out[2] == 0 && out[3] == 0);
	CHECK(iser_cm_hdr_parse(out, sizeof(out), &c2) == 0 && c2.flags == c.flags);
	CHECK_SHORT_BUILD(iser_cm_hdr_build, &c, ISER_CM_HDR_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t max_ord;
	uint8_t *m;
	size_t len;
	int op;

	if (size < 1)
		return 0;
	max_ord = data[0];
	len = size - 1;
	/* exactly len bytes on the heap: any overread is ASan's */
	m = malloc(len ? len : 1);
	CHECK(m);
	memcpy(m, data + 1, len);

	op = iser_msg_opcode(len ? m : NULL, len);
	CHECK(len ? op == m[0] >> 4 : op == -EMSGSIZE);
	fuzz_hdr(m, len);
	fuzz_hello(m, len, max_ord);
	fuzz_hello_reply(m, len);
	fuzz_cm(m, len);
	free(m);
	return 0;
}
