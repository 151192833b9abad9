/* pdu.h — iSCSI PDU layout (RFC 7143 §11) and the in-memory PDU.
 *
 * The wire header (BHS) is kept as its 48 raw bytes; fields are read and written
 * with the accessors below at the offsets of RFC 7143, so no struct packing or
 * byte-order surprises. A received PDU is validated by iscsi_pdu_check_header()
 * before any field is trusted: lengths are bounded by what was negotiated, never
 * by what the header claims.
 *
 * Memory: struct iscsi_pdu comes from the reactor's slab cache; its data segment
 * is either a pool buffer owned by the PDU (data_owned) or points into a task's
 * buffer (Data-In sent straight from the backend's buffer: zero copy).
 */
#ifndef LICH_ISCSI_PDU_H
#define LICH_ISCSI_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#define ISCSI_BHS_LEN       48
#define ISCSI_DIGEST_LEN    4
#define ISCSI_MAX_AHS_LEN   (255 * 4)
#define ISCSI_PAD(n)        (((n) + 3u) & ~3u)

/* Initiator opcodes */
#define ISCSI_OP_NOP_OUT     0x00
#define ISCSI_OP_SCSI_CMD    0x01
#define ISCSI_OP_TMF_REQ     0x02
#define ISCSI_OP_LOGIN_REQ   0x03
#define ISCSI_OP_TEXT_REQ    0x04
#define ISCSI_OP_DATA_OUT    0x05
#define ISCSI_OP_LOGOUT_REQ  0x06
#define ISCSI_OP_SNACK       0x10
/* Target opcodes */
#define ISCSI_OP_NOP_IN      0x20
#define ISCSI_OP_SCSI_RSP    0x21
#define ISCSI_OP_TMF_RSP     0x22
#define ISCSI_OP_LOGIN_RSP   0x23
#define ISCSI_OP_TEXT_RSP    0x24
#define ISCSI_OP_DATA_IN     0x25
#define ISCSI_OP_LOGOUT_RSP  0x26
#define ISCSI_OP_R2T         0x31
#define ISCSI_OP_ASYNC       0x32
#define ISCSI_OP_REJECT      0x3f

#define ISCSI_FLAG_FINAL     0x80
#define ISCSI_FLAG_IMMEDIATE 0x40   /* in byte 0 */
/* SCSI Command byte 1 */
#define ISCSI_CMD_READ       0x40
#define ISCSI_CMD_WRITE      0x20
#define ISCSI_CMD_ATTR_MASK  0x07
/* SCSI Response / Data-In byte 1 */
#define ISCSI_RSP_BIDI_OVERFLOW  0x10
#define ISCSI_RSP_BIDI_UNDERFLOW 0x08
#define ISCSI_RSP_OVERFLOW       0x04
#define ISCSI_RSP_UNDERFLOW      0x02
#define ISCSI_DATAIN_ACK         0x40
#define ISCSI_DATAIN_STATUS      0x01
/* Login byte 1 */
#define ISCSI_LOGIN_TRANSIT  0x80
#define ISCSI_LOGIN_CONTINUE 0x40
#define ISCSI_LOGIN_CSG(b1)  (((b1) >> 2) & 3)
#define ISCSI_LOGIN_NSG(b1)  ((b1) & 3)
#define ISCSI_STAGE_SECURITY    0
#define ISCSI_STAGE_OPERATIONAL 1
#define ISCSI_STAGE_FULL        3
/* Text byte 1 */
#define ISCSI_TEXT_CONTINUE  0x40

/* Field offsets in the BHS */
#define BHS_OPCODE     0
#define BHS_FLAGS      1
#define BHS_AHSLEN     4
#define BHS_DLEN       5     /* 3 bytes */
#define BHS_LUN        8     /* 8 bytes */
#define BHS_ISID       8     /* login: 6 bytes */
#define BHS_TSIH       14    /* login: 2 bytes */
#define BHS_ITT        16
#define BHS_TTT        20    /* also EDTL (cmd), RTT (tmf), CID (login/logout, 2 bytes) */
#define BHS_EDTL       20
#define BHS_CMDSN      24    /* requests */
#define BHS_STATSN     24    /* responses */
#define BHS_EXPSTATSN  28    /* requests */
#define BHS_EXPCMDSN   28    /* responses */
#define BHS_MAXCMDSN   32
#define BHS_CDB        32    /* 16 bytes */
#define BHS_REFCMDSN   32    /* tmf */
#define BHS_DATASN     36    /* also R2TSN, ExpDataSN */
#define BHS_BUFOFF     40
#define BHS_RESID      44    /* residual count; R2T: desired data transfer length */
#define BHS_BIDI_RESID 40

static inline uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get_be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static inline uint32_t get_be32(const uint8_t *p)
{ return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline uint64_t get_be64(const uint8_t *p) { return (uint64_t)get_be32(p) << 32 | get_be32(p + 4); }
static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put_be24(uint8_t *p, uint32_t v)
{ p[0] = (uint8_t)(v >> 16); p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)v; }
/* One byte swap and one store (gcc does not merge the byte-wise form here). */
static inline void put_be32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap32(v);
	memcpy(p, &v, 4);
#else
	memcpy(p, &v, 4);
#endif
}
static inline void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }

static inline uint8_t bhs_opcode(const uint8_t *bhs) { return bhs[0] & 0x3f; }
static inline bool bhs_immediate(const uint8_t *bhs) { return bhs[0] & ISCSI_FLAG_IMMEDIATE; }
static inline uint32_t bhs_ahs_len(const uint8_t *bhs) { return (uint32_t)bhs[BHS_AHSLEN] * 4; }
static inline uint32_t bhs_data_len(const uint8_t *bhs) { return get_be24(bhs + BHS_DLEN); }
static inline uint32_t bhs_itt(const uint8_t *bhs) { return get_be32(bhs + BHS_ITT); }

/* Serial number arithmetic (RFC 1982, 32 bit) for CmdSN/StatSN/DataSN. */
static inline bool sn_lt(uint32_t a, uint32_t b) { return a != b && (int32_t)(a - b) < 0; }
static inline bool sn_le(uint32_t a, uint32_t b) { return a == b || (int32_t)(a - b) < 0; }
static inline bool sn_gt(uint32_t a, uint32_t b) { return sn_lt(b, a); }

/* LUN field (SAM-5 §4.6): peripheral (00b) and flat (01b) addressing. Returns
 * the LUN number, or UINT64_MAX for an addressing method lich does not serve. */
uint64_t iscsi_lun_decode(const uint8_t lun[8]);
void iscsi_lun_encode(uint64_t lun, uint8_t out[8]);

/* An initiator buffer reachable by RDMA: steering tag and virtual address. */
struct iscsi_rdma_ref {
	uint64_t va;
	uint32_t stag;
	bool valid;
};

struct iscsi_pdu {
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t *ahs;              /* NULL or ahs_len bytes */
	uint32_t ahs_len;
	uint8_t *data;             /* data segment (rx: contiguous; tx: see iov) */
	uint32_t data_len;         /* DataSegmentLength */
	bool data_owned;           /* data is a pool buffer freed with the PDU */
	/* rx: the data segment was read straight into task's buffer (placed by
	 * iscsi_conn_data_dest; data is NULL). The PDU pins that task until it is
	 * freed, so its buffer cannot go while the transport still writes to it. */
	bool rx_placed;
	/* tx: the PDU lives inside its task (iscsi_task.pdu_inline), not in the
	 * PDU cache; freeing it only makes it available to the task again. */
	bool in_task;
	/* rx, RDMA transports (iSER, RFC 7145 §9.2): the initiator's buffers the
	 * iSER header of a SCSI Command named; not valid on TCP. */
	struct iscsi_rdma_ref rdma_in;     /* Read STag/VA: Data-In is written there */
	struct iscsi_rdma_ref rdma_out;    /* Write STag/VA: Data-Out is read from there */
	/* tx: the data segment may be a list of segments of a task buffer */
	struct iovec data_iov[4];
	int data_iovcnt;
	uint32_t hdr_digest, data_digest;
	struct iscsi_pdu *next;    /* tx/rx queues */
	void *task;                /* the task this PDU belongs to, if any */
	void (*sent)(struct iscsi_pdu *pdu);   /* called once written out, may be NULL */
};

/* Reason codes for Reject (RFC 7143 §11.17.1) */
#define ISCSI_REJECT_DATA_DIGEST       0x02
#define ISCSI_REJECT_SNACK             0x03
#define ISCSI_REJECT_PROTOCOL_ERROR    0x04
#define ISCSI_REJECT_CMD_NOT_SUPPORTED 0x05
#define ISCSI_REJECT_IMM_CMD_REJECT    0x06
#define ISCSI_REJECT_TASK_IN_PROGRESS  0x07
#define ISCSI_REJECT_INVALID_DATA_ACK  0x08
#define ISCSI_REJECT_INVALID_PDU_FIELD 0x09
#define ISCSI_REJECT_LONG_OP           0x0a
#define ISCSI_REJECT_WAITING_FOR_LOGOUT 0x0c

/* Login status class/detail (RFC 7143 §11.13.5) */
#define ISCSI_LOGIN_STATUS_SUCCESS        0x0000
#define ISCSI_LOGIN_STATUS_TGT_MOVED_TEMP 0x0101
#define ISCSI_LOGIN_STATUS_INIT_ERR       0x0200
#define ISCSI_LOGIN_STATUS_AUTH_FAILED    0x0201
#define ISCSI_LOGIN_STATUS_TGT_FORBIDDEN  0x0202
#define ISCSI_LOGIN_STATUS_TGT_NOT_FOUND  0x0203
#define ISCSI_LOGIN_STATUS_TGT_REMOVED    0x0204
#define ISCSI_LOGIN_STATUS_NO_VERSION     0x0205
#define ISCSI_LOGIN_STATUS_TOO_MANY_CONN  0x0206
#define ISCSI_LOGIN_STATUS_MISSING_PARAM  0x0207
#define ISCSI_LOGIN_STATUS_CONN_ADD_FAIL  0x0208
#define ISCSI_LOGIN_STATUS_SESSION_TYPE   0x0209
#define ISCSI_LOGIN_STATUS_NO_SESSION     0x020a
#define ISCSI_LOGIN_STATUS_INVALID_REQ    0x020b
#define ISCSI_LOGIN_STATUS_TARGET_ERROR   0x0300
#define ISCSI_LOGIN_STATUS_SVC_UNAVAIL    0x0301
#define ISCSI_LOGIN_STATUS_NO_RESOURCES   0x0302

/* Checks a received BHS before anything else is read from it: opcode known for
 * an initiator, reserved bits/fields RFC 7143 requires to be zero where a
 * violation would be dangerous, AHS length and data length within limits
 * (max_data: our MaxRecvDataSegmentLength, or 8192 during login). Returns 0, or
 * a Reject reason code (>0), or -EPROTO when the connection must be dropped
 * (framing can no longer be trusted).
 *
 * What is checked (header bytes only; AHS contents and session state such as
 * CmdSN, ImmediateData or FirstBurstLength are the caller's):
 *   - DataSegmentLength > max_data                          -> -EPROTO
 *   - target opcode (0x20..) from an initiator              -> PROTOCOL_ERROR
 *   - reserved or vendor-specific initiator opcode           -> CMD_NOT_SUPPORTED
 *   - TotalAHSLength != 0 on anything but SCSI Command       -> INVALID_PDU_FIELD
 *   - a data segment on TMF request, Logout request, SNACK   -> INVALID_PDU_FIELD
 *   - ITT 0xffffffff on anything but NOP-Out and SNACK       -> INVALID_PDU_FIELD
 *   - SCSI Command: data or F=0 without W; data > EDTL       -> INVALID_PDU_FIELD
 *   - Login: T and C both set, CSG 2 or 3, T with NSG 2      -> INVALID_PDU_FIELD
 *   - Text: F and C both set                                 -> INVALID_PDU_FIELD
 *   - Logout reason code > 2, SNACK type > 3                 -> INVALID_PDU_FIELD
 * A positive result still leaves the framing intact: the caller reads and drops
 * AHS + data (+ digests) and answers with a Reject PDU — except for a Login
 * request, where a protocol error is answered with a Login Response carrying
 * status 0x0200 (initiator error) and the connection is closed. */
int iscsi_pdu_check_header(const uint8_t *bhs, uint32_t max_data);

/* CRC32C (Castagnoli), with SSE4.2 when the CPU has it. crc32c(0, ...) starts a
 * digest; chain by passing the previous value.
 *
 * Wire format (checked against RFC 3720 Appendix B.4, whose vectors list the
 * digest bytes in transmission order, e.g. 32 zero bytes -> "aa 36 91 8a" =
 * 0x8a9136aa, and against libiscsi, which stores crc & 0xff first): the digest
 * is the final (complemented) CRC stored LITTLE-endian in the 4 bytes after what
 * it covers. HeaderDigest covers BHS + AHS only; the
 * DataDigest covers the data segment INCLUDING its 0..3 pad bytes. Use
 * iscsi_put_digest()/iscsi_get_digest() so nobody hand-rolls the byte order. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_iov(const struct iovec *iov, int cnt);
bool crc32c_hw(void);
/* Added: the table-driven path regardless of CPU (tests compare it with the
 * SSE4.2 path; same chaining convention as crc32c()). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* Added: digest byte order on the wire (little-endian, see above). */
static inline void iscsi_put_digest(uint8_t *p, uint32_t crc)
{ p[0] = (uint8_t)crc; p[1] = (uint8_t)(crc >> 8); p[2] = (uint8_t)(crc >> 16); p[3] = (uint8_t)(crc >> 24); }
static inline uint32_t iscsi_get_digest(const uint8_t *p)
{ return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

#endif
