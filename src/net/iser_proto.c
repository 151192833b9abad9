/* iser_proto.c — iSER header, Hello/HelloReply and CM private data codecs
 * (see include/net/iser_proto.h for layouts and the error contract). */
#include <errno.h>
#include <string.h>

#include "net/iser_proto.h"

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)(v >> 32));
	wr32(p + 4, (uint32_t)v);
}

int iser_msg_opcode(const void *buf, size_t len)
{
	if (!buf || len < 1)
		return -EMSGSIZE;
	return ((const uint8_t *)buf)[0] >> 4;
}

int iser_hdr_parse(const void *buf, size_t len, struct iser_hdr *out)
{
	const uint8_t *p = buf;

	if (!buf || len < ISER_HDR_LEN)
		return -EMSGSIZE;
	if (p[0] >> 4 != ISER_OP_CTRL)
		return -EPROTO;
	out->has_write = p[0] & ISER_FLAG_W;
	out->has_read = p[0] & ISER_FLAG_R;
	out->write_stag = rd32(p + 4);
	out->write_va = rd64(p + 8);
	out->read_stag = rd32(p + 16);
	out->read_va = rd64(p + 20);
	return 0;
}

int iser_hdr_build(void *buf, size_t len, const struct iser_hdr *h)
{
	uint8_t *p = buf;

	if (!buf || len < ISER_HDR_LEN)
		return -EMSGSIZE;
	memset(p, 0, ISER_HDR_LEN);
	p[0] = ISER_OP_CTRL << 4;
	if (h->has_write) {
		p[0] |= ISER_FLAG_W;
		wr32(p + 4, h->write_stag);
		wr64(p + 8, h->write_va);
	}
	if (h->has_read) {
		p[0] |= ISER_FLAG_R;
		wr32(p + 16, h->read_stag);
		wr64(p + 20, h->read_va);
	}
	return (int)ISER_HDR_LEN;
}

int iser_hello_parse(const void *buf, size_t len, struct iser_hello *out)
{
	const uint8_t *p = buf;
	uint8_t max_ver, min_ver;

	if (!buf || len < ISER_HELLO_LEN)
		return -EMSGSIZE;
	if (p[0] >> 4 != ISER_OP_HELLO)
		return -EPROTO;
	max_ver = p[1] >> 4;
	min_ver = p[1] & 0x0f;
	if (min_ver > max_ver)
		return -EPROTO;
	out->max_ver = max_ver;
	out->min_ver = min_ver;
	out->ird = (uint16_t)(p[2] << 8 | p[3]);
	return 0;
}

int iser_hello_build(void *buf, size_t len, const struct iser_hello *h)
{
	uint8_t *p = buf;

	if (!buf || len < ISER_HELLO_LEN)
		return -EMSGSIZE;
	memset(p, 0, ISER_HELLO_LEN);
	p[0] = ISER_OP_HELLO << 4;
	p[1] = (uint8_t)((h->max_ver & 0x0f) << 4 | (h->min_ver & 0x0f));
	p[2] = (uint8_t)(h->ird >> 8);
	p[3] = (uint8_t)h->ird;
	return (int)ISER_HELLO_LEN;
}

int iser_hello_reply_parse(const void *buf, size_t len, struct iser_hello_reply *out)
{
	const uint8_t *p = buf;

	if (!buf || len < ISER_HELLO_LEN)
		return -EMSGSIZE;
	if (p[0] >> 4 != ISER_OP_HELLO_REPLY)
		return -EPROTO;
	out->reject = p[0] & ISER_HELLO_REJ;
	out->max_ver = p[1] >> 4;
	out->cur_ver = p[1] & 0x0f;
	/* An accepting reply names a version within what the target supports. */
	if (!out->reject && out->cur_ver > out->max_ver)
		return -EPROTO;
	out->ord = (uint16_t)(p[2] << 8 | p[3]);
	return 0;
}

int iser_hello_reply_build(void *buf, size_t len, const struct iser_hello_reply *h)
{
	uint8_t *p = buf;

	if (!buf || len < ISER_HELLO_LEN)
		return -EMSGSIZE;
	memset(p, 0, ISER_HELLO_LEN);
	p[0] = (uint8_t)(ISER_OP_HELLO_REPLY << 4 | (h->reject ? ISER_HELLO_REJ : 0));
	p[1] = (uint8_t)((h->max_ver & 0x0f) << 4 | (h->cur_ver & 0x0f));
	p[2] = (uint8_t)(h->ord >> 8);
	p[3] = (uint8_t)h->ord;
	return (int)ISER_HELLO_LEN;
}

void iser_hello_answer(const struct iser_hello *hello, uint16_t max_ord,
		       struct iser_hello_reply *out)
{
	memset(out, 0, sizeof(*out));
	out->max_ver = ISER_VERSION;
	if (hello->min_ver > ISER_VERSION || hello->max_ver < ISER_VERSION) {
		/* RFC 7145 §5.1.3: reject, naming the version we do support. */
		out->reject = true;
		out->cur_ver = 0;
		return;
	}
	out->cur_ver = ISER_VERSION;
	out->ord = hello->ird < max_ord ? hello->ird : max_ord;
}

int iser_cm_hdr_parse(const void *buf, size_t len, struct iser_cm_hdr *out)
{
	if (!buf || len < ISER_CM_HDR_LEN)
		return -EMSGSIZE;
	out->flags = ((const uint8_t *)buf)[0];
	return 0;
}

int iser_cm_hdr_build(void *buf, size_t len, const struct iser_cm_hdr *h)
{
	uint8_t *p = buf;

	if (!buf || len < ISER_CM_HDR_LEN)
		return -EMSGSIZE;
	memset(p, 0, ISER_CM_HDR_LEN);
	p[0] = h->flags;
	return (int)ISER_CM_HDR_LEN;
}
