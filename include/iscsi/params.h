/* params.h — iSCSI text keys and their negotiation (RFC 7143 §6, §13).
 *
 * Text data is a sequence of "key=value\0" pairs. iscsi_text_parse() splits it
 * with bounds checks (key 1..63 chars of [A-Za-z0-9.-+@_], value up to 255
 * bytes except values RFC 7143 allows longer; a pair without '=' or a missing
 * final NUL is -EINVAL).
 *
 * iscsi_negotiate() applies the initiator's offers to a struct iscsi_params
 * and appends the target's answers to a response buffer, key by key:
 *   - known keys get the negotiated value: booleans AND/OR, numbers min/max
 *     within the legal range, lists: first of the initiator's values the target
 *     supports ("None" when nothing matches, or Reject);
 *   - declarative keys (InitiatorName, InitiatorAlias, TargetName, SessionType,
 *     MaxRecvDataSegmentLength...) are recorded and not answered (except where
 *     RFC 7143 says the target declares its own, e.g. our
 *     MaxRecvDataSegmentLength, TargetAlias);
 *   - keys not allowed in the current stage → login error; keys irrelevant for
 *     the session type or connection → "Irrelevant" (details below);
 *   - unknown keys → key=NotUnderstood (X- and X# keys too);
 *   - values out of range or malformed → key=Reject;
 *   - a key offered twice in one negotiation → protocol error (login fails with
 *     initiator error 0x0200).
 * Before leaving the operational stage, iscsi_params_offer() makes the
 * target's own offers for keys the initiator did not send but the target needs
 * to settle (they need an answer, so they cannot ride on the final T=1
 * response); iscsi_params_finish() then declares MaxRecvDataSegmentLength if
 * not yet done and checks consistency (FirstBurstLength <= MaxBurstLength).
 *
 * Decisions taken where RFC 7143 leaves room (implemented in params.c):
 *   - Stages (§6.3: "It is considered to be a protocol error to send a key that
 *     is not allowed in the current stage"): in the security stage only
 *     AuthMethod, CHAP_* and the Any-Stage declaratives (InitiatorName,
 *     TargetName, InitiatorAlias, SessionType, Target{Alias,Address,
 *     PortalGroupTag}) are allowed; any other known key there, AuthMethod in
 *     the operational stage, CHAP_* in the operational stage and SendTargets in
 *     login all fail the login with 0x0200. Unknown keys are NotUnderstood in
 *     every stage.
 *   - CHAP_* keys are skipped in the security stage: the caller runs CHAP on
 *     the same kv array (it sees AuthMethod's result in p->auth_method).
 *   - Repeats (§6.3): a key twice in one iscsi_negotiate() call -> 0x0200. A key
 *     sent again in a later PDU of the same login with the SAME value is
 *     accepted and answered again (libiscsi re-sends InitiatorName/TargetName/
 *     SessionType after CHAP and all its keys after a T=0 response); with a
 *     different value it is a renegotiation -> 0x0200. MaxRecvDataSegmentLength
 *     may be re-declared with a new value (UNH/Calsoft interpretation).
 *   - Keys only the target sends (TargetAlias, TargetAddress,
 *     TargetPortalGroupTag) are ignored when an initiator sends them.
 *   - Leading-only keys on a non-leading connection -> Irrelevant (the session
 *     values stay); keys irrelevant in discovery sessions -> Irrelevant.
 *   - FirstBurstLength is always answered with a number in normal sessions,
 *     even when InitialR2T=Yes and ImmediateData=No make it irrelevant:
 *     open-iscsi and libiscsi parse the answer with strtoul().
 *   - OFMarker/IFMarker -> No (RFC 7143 §13.25 allows No instead of Reject, and
 *     No is what RFC 3720 initiators expect); OFMarkInt/IFMarkInt -> Reject.
 *   - TaskReporting: only RFC3720 semantics are supported. iSCSIProtocolLevel:
 *     Minimum with our level 1. RDMAExtensions: AND with limits.rdma_extensions.
 *   - iSER keys (RFC 7145 §6.3), relevant only on an RDMA transport
 *     (limits.rdma_extensions; NotUnderstood on TCP): InitiatorRecvDataSegmentLength
 *     (the initiator's declaration) sets max_xmit_dsl; TargetRecvDataSegmentLength
 *     is answered with ours (max_recv_dsl, the receive buffers' capacity);
 *     MaxOutstandingUnexpectedPDUs is answered with limits.max_unexpected_pdus
 *     (what our posted receive buffers allow) and the initiator's recorded.
 *   - InitiatorName must pass iscsi_name_valid() (else 0x0200); TargetName is
 *     only length-checked (an unknown name is the caller's 0x0203).
 * The target's own declarations TargetPortalGroupTag (RFC 7143 §13.9: the
 * target MUST send it in its first Login Response) and TargetAlias are the
 * caller's to add (iscsi_textbuf_addf), as only it knows the portal group.
 */
#ifndef LICH_ISCSI_PARAMS_H
#define LICH_ISCSI_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISCSI_KEY_MAX   63
#define ISCSI_NAME_MAX  223
#define ISCSI_VALUE_MAX 255          /* RFC 7143 §6.1 simple-value limit */
/* Added: CHAP_C/CHAP_R carry binary values up to 1024 bytes, hex-encoded as
 * "0x" + 2048 digits (RFC 7143 §12.1.3). */
#define ISCSI_VALUE_LONG_MAX 2050

struct iscsi_kv {
	const char *key;      /* points into the caller's (NUL-separated) buffer */
	const char *value;
};

/* A growable text response buffer (key=value\0...). Heap memory (login-time
 * only, never on the I/O path). An append that would pass max fails with -E2BIG
 * and appends nothing; allocation failure is -ENOMEM. init: 0 or -EINVAL
 * (max 0). */
struct iscsi_textbuf {
	char *buf;
	uint32_t len;
	uint32_t cap;
	uint32_t max;         /* hard limit; appends past it fail with -E2BIG */
};
int iscsi_textbuf_init(struct iscsi_textbuf *tb, uint32_t max);
void iscsi_textbuf_free(struct iscsi_textbuf *tb);
int iscsi_textbuf_add(struct iscsi_textbuf *tb, const char *key, const char *value);
int iscsi_textbuf_addf(struct iscsi_textbuf *tb, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parses len bytes of text data in place (NULs already separate pairs; '=' is
 * replaced by NUL). Returns the number of pairs (<= max) or -EINVAL / -E2BIG.
 * len is the DataSegmentLength (no pad bytes); data[len-1] must be NUL. A run
 * of NULs at the very end is tolerated (some initiators pad inside the
 * segment), an empty pair elsewhere is -EINVAL. Keys: 1..63 of
 * [A-Za-z0-9.-+@_] ("X#" public extension prefix allowed). Values: up to
 * ISCSI_VALUE_MAX bytes, CHAP_C/CHAP_R up to ISCSI_VALUE_LONG_MAX; may be empty
 * (negotiation answers "key=" with Reject). More than max pairs: -E2BIG. */
int iscsi_text_parse(char *data, uint32_t len, struct iscsi_kv *kv, unsigned max);

enum iscsi_session_type { ISCSI_SESSION_NONE = 0, ISCSI_SESSION_DISCOVERY, ISCSI_SESSION_NORMAL };

/* The target's limits and defaults it offers (from config / build). */
struct iscsi_target_limits {
	uint32_t max_recv_dsl;        /* we declare this: largest data segment we accept */
	uint32_t max_burst;           /* upper bound we accept for MaxBurstLength */
	uint32_t first_burst;
	uint32_t max_outstanding_r2t;
	uint16_t max_connections;     /* 1 */
	uint8_t max_erl;              /* 0 */
	bool allow_digests;           /* accept CRC32C */
	bool immediate_data;          /* what we accept (AND) */
	bool initial_r2t;             /* what we want (OR) */
	bool rdma_extensions;         /* added: RDMAExtensions answer (iSER); false on TCP */
	uint32_t max_unexpected_pdus; /* added, iSER: MaxOutstandingUnexpectedPDUs we declare */
};

struct iscsi_params {
	enum iscsi_session_type session_type;
	char initiator_name[ISCSI_NAME_MAX + 1];
	char initiator_alias[256];
	char target_name[ISCSI_NAME_MAX + 1];
	uint32_t max_recv_dsl;        /* what we accept */
	uint32_t max_xmit_dsl;        /* initiator's MaxRecvDataSegmentLength: our send limit */
	uint32_t max_burst;
	uint32_t first_burst;
	uint32_t max_outstanding_r2t;
	uint32_t max_connections;
	uint16_t default_time2wait;
	uint16_t default_time2retain;
	uint8_t erl;
	bool initial_r2t;
	bool immediate_data;
	bool data_pdu_in_order;
	bool data_sequence_in_order;
	bool header_digest;
	bool data_digest;
	char auth_method[16];         /* "None" or "CHAP" once negotiated */
	uint8_t protocol_level;       /* added: iSCSIProtocolLevel result (RFC 7143 §13.24) */
	bool rdma_extensions;         /* added: RDMAExtensions result */
	/* bookkeeping: which keys were seen (to detect repeats, and for finish()) */
	uint64_t seen;
	uint64_t answered;
	uint64_t offered;             /* added: target offers awaiting the initiator's answer */
	uint32_t value_crc[40];       /* added: CRC32C of each key's first value (repeat check) */
};

/* RFC 7143 defaults; max_recv_dsl from limits. */
void iscsi_params_init(struct iscsi_params *p, const struct iscsi_target_limits *lim);

/* stage: ISCSI_STAGE_SECURITY or ISCSI_STAGE_OPERATIONAL (pdu.h); leading:
 * true for the first connection of a session. Security-stage keys: AuthMethod
 * (we accept what auth_methods lists, e.g. "None" or "CHAP,None"; NULL means
 * "None") and the declarative names; CHAP_* keys are skipped (the caller runs
 * CHAP over the same kv array). kv must hold the whole request: for a Login
 * sent in several PDUs (C bit) the caller parses the concatenated text once.
 * Returns 0 or a login status code (pdu.h ISCSI_LOGIN_STATUS_*) telling why the
 * login must fail, notably: 0x0201 when no offered AuthMethod is acceptable,
 * 0x0207 when InitiatorName (or TargetName of a normal session) is still
 * unknown after the call, 0x0209 for a SessionType other than Discovery/Normal,
 * 0x0302 when resp reached its max. */
int iscsi_negotiate(struct iscsi_params *p, const struct iscsi_target_limits *lim,
		    int stage, bool leading, const char *auth_methods,
		    const struct iscsi_kv *kv, unsigned n, struct iscsi_textbuf *resp);

/* Added. RFC 7143 §6.3: "Targets MUST NOT submit parameters that require an
 * additional initiator Login Request in a Login Response with the T bit set to
 * 1". So target offers cannot wait for finish(): when the initiator asks to
 * leave the operational stage (T=1), call this after iscsi_negotiate(). It
 * offers what the target needs and the initiator has not negotiated (normal
 * session, leading connection: ImmediateData=No when limits forbid it,
 * MaxBurstLength/FirstBurstLength when the RFC defaults exceed our limits) and
 * declares our MaxRecvDataSegmentLength if not yet done. Returns the number of
 * offers made (>0: answer with T=0; the initiator's next request carries the
 * answers, which iscsi_negotiate() checks against the offer), 0, or
 * -E2BIG/-ENOMEM when resp is full. */
int iscsi_params_offer(struct iscsi_params *p, const struct iscsi_target_limits *lim,
		       bool leading, struct iscsi_textbuf *resp);

/* Called when the login moves to full feature phase (before the final Login
 * Response is built): declares MaxRecvDataSegmentLength if we have not sent it
 * (a declaration needs no answer, so it is allowed with T=1), and validates:
 * FirstBurstLength > MaxBurstLength -> 0x0200. An offer the initiator never
 * answered stays in force as offered (open-iscsi and libiscsi apply stated
 * values without echoing them). 0 or status. */
int iscsi_params_finish(struct iscsi_params *p, const struct iscsi_target_limits *lim,
			struct iscsi_textbuf *resp);

/* Text requests in full feature phase (not SendTargets): negotiation of keys
 * allowed there (MaxRecvDataSegmentLength declarations, X- keys → NotUnderstood).
 * SendTargets is skipped (the caller answers it from its target list); keys
 * that are login-only (IO/LO) are answered Reject; target-only keys ignored.
 * Returns 0, -EPROTO for a key repeated in the request (answer with a Reject
 * PDU, reason protocol error), or -E2BIG/-ENOMEM when resp is full. */
int iscsi_negotiate_text(struct iscsi_params *p, const struct iscsi_target_limits *lim,
			 const struct iscsi_kv *kv, unsigned n, struct iscsi_textbuf *resp);

/* Name checks (RFC 7143 §4.2.7): iqn.yyyy-mm.<reversed domain>[:<anything>]
 * with the characters RFC 3722 leaves after stringprep (a-z 0-9 - . : and
 * non-ASCII UTF-8; ASCII capitals are accepted since names compare
 * case-insensitively), eui. + 16 hex digits, naa. + 16 or 32 hex digits;
 * 1..223 bytes. */
bool iscsi_name_valid(const char *name);

#endif
