/* iser_proto.h — iSER wire formats (RFC 7145 §9), pure codecs.
 *
 * No state, no allocation, no RDMA: these functions turn bytes into structs and
 * back, so they can be unit tested and fuzzed alone. Every parse function takes
 * (const void *buf, size_t len, struct ... *out), reads nothing beyond len and
 * returns 0 or a negative errno:
 *   -EMSGSIZE  len is shorter than the header;
 *   -EPROTO    the opcode is not the one the function parses, or a field has a
 *              value RFC 7145 forbids (e.g. a Hello whose MinVer > MaxVer).
 * out is written only on success. Reserved bits are ignored on receive and
 * zero on send (RFC 7145 §9: "reserved fields MUST be set to zero and ignored
 * upon receipt"). Build functions write exactly ISER_*_LEN bytes and return
 * that length, or -EMSGSIZE when len is too small.
 *
 * Layouts (all big-endian):
 *   iSCSI control-type PDU header, 28 bytes, in front of every iSCSI PDU
 *   carried by an RDMA Send:
 *     0  opcode (4 bits) 0001 | W | R | reserved (2 bits); reserved (3 bytes)
 *     4  Write STag      (valid when W: initiator buffer the target reads)
 *     8  Write Base Offset (64 bits)
 *     16 Read STag       (valid when R: initiator buffer the target writes)
 *     20 Read Base Offset (64 bits)
 *   Hello (initiator → target), 12 bytes:
 *     0  opcode 0010 | reserved; MaxVer (4) | MinVer (4); iSER-IRD (16)
 *     4  reserved (8 bytes)
 *   HelloReply (target → initiator), 12 bytes:
 *     0  opcode 0011 | reserved (3) | Rej; MaxVer (4) | CurVer (4); iSER-ORD (16)
 *     4  reserved (8 bytes)
 *   iSER CM REQ/REP private data (Linux ib_iser/isert, 4 bytes; RFC 7145 leaves
 *   the connection-setup private data to the RCaP): flags, reserved (3 bytes);
 *   flag 0x80: the peer does not support zero-based virtual addresses (its
 *   Base Offsets are virtual addresses), 0x40: no Send with Invalidate.
 */
#ifndef LICH_NET_ISER_PROTO_H
#define LICH_NET_ISER_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define ISER_HDR_LEN        28u
#define ISER_HELLO_LEN      12u
#define ISER_CM_HDR_LEN     4u

#define ISER_OP_CTRL        0x1u   /* iSCSI control-type PDU */
#define ISER_OP_HELLO       0x2u
#define ISER_OP_HELLO_REPLY 0x3u

#define ISER_FLAG_W         0x08u  /* Write STag / Base Offset valid */
#define ISER_FLAG_R         0x04u  /* Read STag / Base Offset valid */
#define ISER_HELLO_REJ      0x01u  /* HelloReply: version not supported */

#define ISER_VERSION        1u     /* the one version RFC 7145 defines */

#define ISER_CM_ZBVA_NOT_SUP      0x80u
#define ISER_CM_SEND_W_INV_NOT_SUP 0x40u

/* Opcode of any iSER message (first 4 bits); -EMSGSIZE if len == 0. */
int iser_msg_opcode(const void *buf, size_t len);

struct iser_hdr {
	bool has_write;         /* W: write_stag/write_va are valid */
	bool has_read;          /* R: read_stag/read_va are valid */
	uint32_t write_stag;
	uint64_t write_va;
	uint32_t read_stag;
	uint64_t read_va;
};

int iser_hdr_parse(const void *buf, size_t len, struct iser_hdr *out);
/* STag/VA of a direction whose flag is false are written as zero. */
int iser_hdr_build(void *buf, size_t len, const struct iser_hdr *h);

struct iser_hello {
	uint8_t max_ver, min_ver;   /* 0..15 */
	uint16_t ird;               /* initiator's inbound RDMA Read depth */
};

int iser_hello_parse(const void *buf, size_t len, struct iser_hello *out);
int iser_hello_build(void *buf, size_t len, const struct iser_hello *h);

struct iser_hello_reply {
	bool reject;
	uint8_t max_ver, cur_ver;   /* 0..15 */
	uint16_t ord;               /* target's outbound RDMA Read depth */
};

int iser_hello_reply_parse(const void *buf, size_t len, struct iser_hello_reply *out);
int iser_hello_reply_build(void *buf, size_t len, const struct iser_hello_reply *h);

/* The answer a target gives to hello when it can issue at most max_ord RDMA
 * Reads at a time: CurVer ISER_VERSION and ord = min(ird, max_ord), or a
 * rejection (MaxVer ISER_VERSION) if the initiator's range excludes it. */
void iser_hello_answer(const struct iser_hello *hello, uint16_t max_ord,
		       struct iser_hello_reply *out);

struct iser_cm_hdr {
	uint8_t flags;              /* ISER_CM_* */
};

int iser_cm_hdr_parse(const void *buf, size_t len, struct iser_cm_hdr *out);
int iser_cm_hdr_build(void *buf, size_t len, const struct iser_cm_hdr *h);

#endif
