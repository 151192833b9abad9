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
 *   - keys not allowed in the current stage/session type → "Irrelevant" or a
 *     login error per RFC 7143 §13 (e.g. an operational key in security stage is
 *     allowed only... follow the RFC);
 *   - unknown keys → key=NotUnderstood (X- and X# keys too);
 *   - values out of range or malformed → key=Reject;
 *   - a key offered twice in one negotiation → protocol error (login fails with
 *     initiator error 0x0200).
 * After the operational stage, iscsi_params_finish() adds the target's own
 * offers for keys the initiator did not send but the target needs to settle
 * (RFC 7143: the target may offer, e.g. MaxRecvDataSegmentLength is always
 * declared by the target) and checks consistency (FirstBurstLength <=
 * MaxBurstLength).
 */
#ifndef LICH_ISCSI_PARAMS_H
#define LICH_ISCSI_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISCSI_KEY_MAX   63
#define ISCSI_NAME_MAX  223

struct iscsi_kv {
	const char *key;      /* points into the caller's (NUL-separated) buffer */
	const char *value;
};

/* A growable text response buffer (key=value\0...). */
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
 * replaced by NUL). Returns the number of pairs (<= max) or -EINVAL / -E2BIG. */
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
	/* bookkeeping: which keys were seen (to detect repeats, and for finish()) */
	uint64_t seen;
	uint64_t answered;
};

/* RFC 7143 defaults; max_recv_dsl from limits. */
void iscsi_params_init(struct iscsi_params *p, const struct iscsi_target_limits *lim);

/* stage: ISCSI_STAGE_SECURITY or ISCSI_STAGE_OPERATIONAL (pdu.h); leading:
 * true for the first connection of a session. Security-stage keys: AuthMethod
 * (we offer what auth_methods lists, e.g. "None" or "CHAP,None") and the
 * declarative names; CHAP_* keys are not handled here (returned via *chap so the
 * login layer can run CHAP). Returns 0 or a login status code (pdu.h
 * ISCSI_LOGIN_STATUS_*) telling why the login must fail. */
int iscsi_negotiate(struct iscsi_params *p, const struct iscsi_target_limits *lim,
		    int stage, bool leading, const char *auth_methods,
		    const struct iscsi_kv *kv, unsigned n, struct iscsi_textbuf *resp);

/* Called when the login moves to full feature phase: adds target offers for
 * keys not yet negotiated that must be (e.g. MaxRecvDataSegmentLength
 * declaration if we have not sent it), validates consistency. 0 or status. */
int iscsi_params_finish(struct iscsi_params *p, const struct iscsi_target_limits *lim,
			struct iscsi_textbuf *resp);

/* Text requests in full feature phase (not SendTargets): negotiation of keys
 * allowed there (MaxRecvDataSegmentLength declarations, X- keys → NotUnderstood). */
int iscsi_negotiate_text(struct iscsi_params *p, const struct iscsi_target_limits *lim,
			 const struct iscsi_kv *kv, unsigned n, struct iscsi_textbuf *resp);

/* Name checks (RFC 7143 §4.2.7): iqn., eui., naa. forms. */
bool iscsi_name_valid(const char *name);

#endif
