/* params.c — iSCSI text keys: parsing, names, and login/text negotiation
 * (RFC 7143 §6 text mode negotiation, §13 operational keys).
 *
 * The target is always the acceptor of the initiator's offers: each known key
 * has a kind (declarative, Boolean AND/OR, numeric min/max, list) and flags
 * saying where it is allowed; iscsi_negotiate() walks the request in order and
 * appends one answer per key that needs one. The policy choices RFC 7143 leaves
 * open are listed in params.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/hex.h"
#include "iscsi/params.h"
#include "iscsi/pdu.h"

/* ---- text buffer -------------------------------------------------------- */

int iscsi_textbuf_init(struct iscsi_textbuf *tb, uint32_t max)
{
	memset(tb, 0, sizeof(*tb));
	if (max == 0)
		return -EINVAL;
	tb->max = max;
	return 0;
}

void iscsi_textbuf_free(struct iscsi_textbuf *tb)
{
	free(tb->buf);
	tb->buf = NULL;
	tb->len = tb->cap = 0;
}

static int textbuf_reserve(struct iscsi_textbuf *tb, uint64_t need)
{
	if (tb->len + need > tb->max)
		return -E2BIG;
	if (tb->len + need <= tb->cap)
		return 0;
	uint64_t cap = tb->cap ? tb->cap : 256;
	while (cap < tb->len + need)
		cap *= 2;
	if (cap > tb->max)
		cap = tb->max;
	char *nb = realloc(tb->buf, cap);
	if (!nb)
		return -ENOMEM;
	tb->buf = nb;
	tb->cap = (uint32_t)cap;
	return 0;
}

int iscsi_textbuf_add(struct iscsi_textbuf *tb, const char *key, const char *value)
{
	size_t kl = strlen(key), vl = strlen(value);
	int rc = textbuf_reserve(tb, (uint64_t)kl + vl + 2);

	if (rc)
		return rc;
	memcpy(tb->buf + tb->len, key, kl);
	tb->buf[tb->len + kl] = '=';
	memcpy(tb->buf + tb->len + kl + 1, value, vl);
	tb->buf[tb->len + kl + 1 + vl] = '\0';
	tb->len += (uint32_t)(kl + vl + 2);
	return 0;
}

int iscsi_textbuf_addf(struct iscsi_textbuf *tb, const char *key, const char *fmt, ...)
{
	char small[ISCSI_VALUE_MAX + 1], *v = small;
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(small)) {       /* long value (CHAP_C...) */
		v = malloc((size_t)n + 1);
		if (!v)
			return -ENOMEM;
		va_start(ap, fmt);
		vsnprintf(v, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	int rc = iscsi_textbuf_add(tb, key, v);
	if (v != small)
		free(v);
	return rc;
}

/* ---- parsing ------------------------------------------------------------ */

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static bool is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }
static bool is_hex(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

static bool key_char_ok(unsigned char c)
{
	return is_alnum(c) || c == '.' || c == '-' || c == '+' || c == '@' || c == '_';
}

static uint32_t value_max_for(const char *key)
{
	return strcmp(key, "CHAP_C") == 0 || strcmp(key, "CHAP_R") == 0 ?
	       ISCSI_VALUE_LONG_MAX : ISCSI_VALUE_MAX;
}

int iscsi_text_parse(char *data, uint32_t len, struct iscsi_kv *kv, unsigned max)
{
	unsigned n = 0;
	char *p = data, *end = data + len;

	if (len == 0)
		return 0;
	if (data[len - 1] != '\0')
		return -EINVAL;
	while (p < end) {
		char *nul = memchr(p, '\0', (size_t)(end - p));  /* found: end[-1] is NUL */
		if (nul == p) {
			/* empty pair: only allowed as trailing padding */
			while (p < end && *p == '\0')
				p++;
			if (p != end)
				return -EINVAL;
			break;
		}
		char *eq = memchr(p, '=', (size_t)(nul - p));
		if (!eq)
			return -EINVAL;
		size_t klen = (size_t)(eq - p);
		if (klen == 0 || klen > ISCSI_KEY_MAX)
			return -EINVAL;
		for (size_t i = 0; i < klen; i++) {
			unsigned char c = (unsigned char)p[i];
			if (!key_char_ok(c) && !(i == 1 && c == '#' && p[0] == 'X'))
				return -EINVAL;
		}
		*eq = '\0';
		if ((size_t)(nul - eq - 1) > value_max_for(p))
			return -EINVAL;
		if (n == max)
			return -E2BIG;
		kv[n].key = p;
		kv[n].value = eq + 1;
		n++;
		p = nul + 1;
	}
	return (int)n;
}

/* numerical-value (RFC 7143 §6.1): decimal-constant (no leading zeros) or
 * hex-constant (0x/0X + hex digits), < 2^64. base64 is only for binary
 * values, never for numbers. */
static bool parse_num(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		if (!*s)
			return false;
		for (; *s; s++) {
			int d = hex_digit(*s);

			if (d < 0 || v >> 60)
				return false;
			v = v << 4 | (unsigned)d;
		}
	} else {
		if (!is_digit((unsigned char)s[0]) || (s[0] == '0' && s[1]))
			return false;
		for (; *s; s++) {
			if (!is_digit((unsigned char)*s))
				return false;
			unsigned d = (unsigned)(*s - '0');
			if (v > (UINT64_MAX - d) / 10)
				return false;
			v = v * 10 + d;
		}
	}
	*out = v;
	return true;
}

/* Iterates a comma-separated list: copies the next item to item (truncated
 * items cannot match anything we support anyway). */
static const char *list_next(const char *s, char *item, size_t cap)
{
	size_t n = 0;

	while (*s && *s != ',') {
		if (n + 1 < cap)
			item[n++] = *s;
		s++;
	}
	item[n] = '\0';
	return *s == ',' ? s + 1 : NULL;
}

static bool list_has(const char *list, const char *want)
{
	char item[32];

	for (const char *s = list; s; ) {
		s = list_next(s, item, sizeof(item));
		if (strcmp(item, want) == 0)
			return true;
	}
	return false;
}

/* ---- names -------------------------------------------------------------- */

bool iscsi_name_valid(const char *name)
{
	if (!name)
		return false;
	size_t len = strnlen(name, ISCSI_NAME_MAX + 1);
	if (len == 0 || len > ISCSI_NAME_MAX)
		return false;

	if (strncasecmp(name, "eui.", 4) == 0 || strncasecmp(name, "naa.", 4) == 0) {
		size_t hex = len - 4;
		bool naa = (name[0] | 0x20) == 'n';
		if (!(hex == 16 || (naa && hex == 32)))
			return false;
		for (size_t i = 4; i < len; i++)
			if (!is_hex((unsigned char)name[i]))
				return false;
		return true;
	}
	if (strncasecmp(name, "iqn.", 4) != 0)
		return false;

	/* iqn.yyyy-mm.reversed.domain[:string] */
	const char *s = name + 4;
	if (len < 4 + 8 + 1)
		return false;
	for (int i = 0; i < 4; i++)
		if (!is_digit((unsigned char)s[i]))
			return false;
	if (s[4] != '-' || !is_digit((unsigned char)s[5]) || !is_digit((unsigned char)s[6]) ||
	    s[7] != '.')
		return false;
	int month = (s[5] - '0') * 10 + (s[6] - '0');
	if (month < 1 || month > 12)
		return false;
	s += 8;
	if (!is_alnum((unsigned char)*s))        /* the naming authority starts here */
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!(is_alnum(c) || c == '-' || c == '.' || c == ':' || c >= 0x80))
			return false;
	}
	return true;
}

/* ---- key table ---------------------------------------------------------- */

enum key_id {
	K_HEADER_DIGEST, K_DATA_DIGEST, K_MAX_CONNECTIONS, K_SEND_TARGETS,
	K_TARGET_NAME, K_INITIATOR_NAME, K_TARGET_ALIAS, K_INITIATOR_ALIAS,
	K_TARGET_ADDRESS, K_TPGT, K_INITIAL_R2T, K_IMMEDIATE_DATA, K_MAX_RECV_DSL,
	K_MAX_BURST, K_FIRST_BURST, K_TIME2WAIT, K_TIME2RETAIN, K_MAX_R2T,
	K_DATA_PDU_IN_ORDER, K_DATA_SEQ_IN_ORDER, K_ERL, K_SESSION_TYPE,
	K_AUTH_METHOD, K_OF_MARKER, K_IF_MARKER, K_OF_MARK_INT, K_IF_MARK_INT,
	K_TASK_REPORTING, K_PROTOCOL_LEVEL, K_RDMA_EXT,
	K_INIT_RDSL, K_TGT_RDSL, K_MAX_UNEXP,
	K_COUNT
};
_Static_assert(K_COUNT <= 40, "value_crc[] holds 40 keys");

enum key_kind { KIND_DECL, KIND_AND, KIND_OR, KIND_MIN, KIND_MAX, KIND_LIST, KIND_REJECT };

#define F_ANY_STAGE 0x01   /* also allowed in the security stage */
#define F_SECURITY  0x02   /* only in the security stage */
#define F_LO        0x04   /* leading connection only */
#define F_NODISC    0x08   /* Irrelevant when SessionType=Discovery */
#define F_TARGET    0x10   /* only the target sends it */
#define F_FFP       0x20   /* may be sent in full feature phase text */
#define F_FFP_ONLY  0x40   /* SendTargets */

struct key_def {
	const char *name;
	uint8_t id;
	uint8_t kind;
	uint8_t flags;
	uint32_t min, max;
};

#define MAX_DSL ((1u << 24) - 1)

static const struct key_def keys[K_COUNT] = {
	{ "HeaderDigest",             K_HEADER_DIGEST,     KIND_LIST, 0, 0, 0 },
	{ "DataDigest",               K_DATA_DIGEST,       KIND_LIST, 0, 0, 0 },
	{ "MaxConnections",           K_MAX_CONNECTIONS,   KIND_MIN,  F_LO | F_NODISC, 1, 65535 },
	{ "SendTargets",              K_SEND_TARGETS,      KIND_DECL, F_FFP_ONLY, 0, 0 },
	{ "TargetName",               K_TARGET_NAME,       KIND_DECL, F_ANY_STAGE, 0, 0 },
	{ "InitiatorName",            K_INITIATOR_NAME,    KIND_DECL, F_ANY_STAGE, 0, 0 },
	{ "TargetAlias",              K_TARGET_ALIAS,      KIND_DECL, F_ANY_STAGE | F_TARGET | F_FFP, 0, 0 },
	{ "InitiatorAlias",           K_INITIATOR_ALIAS,   KIND_DECL, F_ANY_STAGE | F_FFP, 0, 0 },
	{ "TargetAddress",            K_TARGET_ADDRESS,    KIND_DECL, F_ANY_STAGE | F_TARGET | F_FFP, 0, 0 },
	{ "TargetPortalGroupTag",     K_TPGT,              KIND_DECL, F_ANY_STAGE | F_TARGET, 0, 0 },
	{ "InitialR2T",               K_INITIAL_R2T,       KIND_OR,   F_LO | F_NODISC, 0, 0 },
	{ "ImmediateData",            K_IMMEDIATE_DATA,    KIND_AND,  F_LO | F_NODISC, 0, 0 },
	{ "MaxRecvDataSegmentLength", K_MAX_RECV_DSL,      KIND_DECL, F_FFP, 512, MAX_DSL },
	{ "MaxBurstLength",           K_MAX_BURST,         KIND_MIN,  F_LO | F_NODISC, 512, MAX_DSL },
	{ "FirstBurstLength",         K_FIRST_BURST,       KIND_MIN,  F_LO | F_NODISC, 512, MAX_DSL },
	{ "DefaultTime2Wait",         K_TIME2WAIT,         KIND_MAX,  F_LO, 0, 3600 },
	{ "DefaultTime2Retain",       K_TIME2RETAIN,       KIND_MIN,  F_LO, 0, 3600 },
	{ "MaxOutstandingR2T",        K_MAX_R2T,           KIND_MIN,  F_LO | F_NODISC, 1, 65535 },
	{ "DataPDUInOrder",           K_DATA_PDU_IN_ORDER, KIND_OR,   F_LO | F_NODISC, 0, 0 },
	{ "DataSequenceInOrder",      K_DATA_SEQ_IN_ORDER, KIND_OR,   F_LO | F_NODISC, 0, 0 },
	{ "ErrorRecoveryLevel",       K_ERL,               KIND_MIN,  F_LO, 0, 2 },
	{ "SessionType",              K_SESSION_TYPE,      KIND_DECL, F_ANY_STAGE | F_LO, 0, 0 },
	{ "AuthMethod",               K_AUTH_METHOD,       KIND_LIST, F_SECURITY, 0, 0 },
	{ "OFMarker",                 K_OF_MARKER,         KIND_AND,  0, 0, 0 },
	{ "IFMarker",                 K_IF_MARKER,         KIND_AND,  0, 0, 0 },
	{ "OFMarkInt",                K_OF_MARK_INT,       KIND_REJECT, 0, 0, 0 },
	{ "IFMarkInt",                K_IF_MARK_INT,       KIND_REJECT, 0, 0, 0 },
	{ "TaskReporting",            K_TASK_REPORTING,    KIND_LIST, F_LO | F_NODISC, 0, 0 },
	{ "iSCSIProtocolLevel",       K_PROTOCOL_LEVEL,    KIND_MIN,  F_LO | F_NODISC, 0, 31 },
	{ "RDMAExtensions",           K_RDMA_EXT,          KIND_AND,  F_LO | F_NODISC, 0, 0 },
	/* iSER (RFC 7145 §6.3): see neg_decl */
	{ "InitiatorRecvDataSegmentLength", K_INIT_RDSL,   KIND_DECL, 0, 512, MAX_DSL },
	{ "TargetRecvDataSegmentLength",    K_TGT_RDSL,    KIND_DECL, 0, 512, MAX_DSL },
	{ "MaxOutstandingUnexpectedPDUs",   K_MAX_UNEXP,   KIND_DECL, F_LO, 0, 0xffffffffu },
};

static const struct key_def *key_lookup(const char *name)
{
	for (unsigned i = 0; i < K_COUNT; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

#define BIT(id) (1ull << (id))

/* RFC 7143 defaults (§13) and what lich asks for where no limit field says. */
#define DEF_MAX_BURST      262144u
#define DEF_FIRST_BURST    65536u
#define DEF_MAX_RECV_DSL   8192u
#define DEF_TIME2WAIT      2u
#define DEF_TIME2RETAIN    20u
#define OUR_PROTOCOL_LEVEL 1u

static uint32_t clamp32(uint64_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

/* Our side of each numeric negotiation, bounded by the key's legal range so a
 * mis-set limit can never make us answer an illegal value. */
static uint32_t lim_max_burst(const struct iscsi_target_limits *lim)
{ return clamp32(lim->max_burst, 512, MAX_DSL); }
static uint32_t lim_first_burst(const struct iscsi_target_limits *lim)
{
	uint32_t fb = clamp32(lim->first_burst, 512, MAX_DSL);
	return fb < lim_max_burst(lim) ? fb : lim_max_burst(lim);
}

void iscsi_params_init(struct iscsi_params *p, const struct iscsi_target_limits *lim)
{
	memset(p, 0, sizeof(*p));
	p->session_type = ISCSI_SESSION_NONE;
	p->max_recv_dsl = clamp32(lim->max_recv_dsl, 512, MAX_DSL);
	p->max_xmit_dsl = DEF_MAX_RECV_DSL;
	p->max_burst = DEF_MAX_BURST;
	p->first_burst = DEF_FIRST_BURST;
	p->max_outstanding_r2t = 1;
	p->max_connections = 1;
	p->default_time2wait = DEF_TIME2WAIT;
	p->default_time2retain = DEF_TIME2RETAIN;
	p->erl = 0;
	p->initial_r2t = true;
	p->immediate_data = true;
	p->data_pdu_in_order = true;
	p->data_sequence_in_order = true;
	p->header_digest = false;
	p->data_digest = false;
	p->protocol_level = OUR_PROTOCOL_LEVEL;
	p->rdma_extensions = false;
}

/* ---- one negotiation ---------------------------------------------------- */

struct neg {
	struct iscsi_params *p;
	const struct iscsi_target_limits *lim;
	struct iscsi_textbuf *resp;
	const char *auth_methods;
	int stage;
	bool leading;
	bool resp_full;
	bool auth_failed;
	uint32_t pending_max_burst;   /* MaxBurstLength result from this request, 0 if none */
};

static void answer(struct neg *n, const char *key, const char *value)
{
	if (iscsi_textbuf_add(n->resp, key, value))
		n->resp_full = true;
}

static void answer_num(struct neg *n, const char *key, uint64_t v)
{
	if (iscsi_textbuf_addf(n->resp, key, "%llu", (unsigned long long)v))
		n->resp_full = true;
}

static int parse_bool(const char *v)
{
	if (strcmp(v, "Yes") == 0)
		return 1;
	if (strcmp(v, "No") == 0)
		return 0;
	return -1;
}

static bool is_reserved_answer(const char *v)
{
	return strcmp(v, "Reject") == 0 || strcmp(v, "Irrelevant") == 0 ||
	       strcmp(v, "NotUnderstood") == 0;
}

static bool *bool_field(struct iscsi_params *p, unsigned id)
{
	switch (id) {
	case K_INITIAL_R2T:       return &p->initial_r2t;
	case K_IMMEDIATE_DATA:    return &p->immediate_data;
	case K_DATA_PDU_IN_ORDER: return &p->data_pdu_in_order;
	case K_DATA_SEQ_IN_ORDER: return &p->data_sequence_in_order;
	case K_RDMA_EXT:          return &p->rdma_extensions;
	default:                  return NULL;   /* markers: nothing to keep */
	}
}

/* What the target would choose on its own for a Boolean key. */
static bool our_bool(const struct neg *n, unsigned id)
{
	switch (id) {
	case K_INITIAL_R2T:       return n->lim->initial_r2t;
	case K_IMMEDIATE_DATA:    return n->lim->immediate_data;
	case K_DATA_PDU_IN_ORDER: return true;   /* in-order only: simpler, what everyone does */
	case K_DATA_SEQ_IN_ORDER: return true;
	case K_RDMA_EXT:          return n->lim->rdma_extensions;
	default:                  return false;  /* OFMarker/IFMarker: no markers */
	}
}

static void neg_bool(struct neg *n, const struct key_def *k, const char *v)
{
	int offer = parse_bool(v);
	if (offer < 0) {
		answer(n, k->name, "Reject");
		return;
	}
	bool ours = our_bool(n, k->id);
	bool res = k->kind == KIND_AND ? (offer && ours) : (offer || ours);
	bool *f = bool_field(n->p, k->id);
	if (f)
		*f = res;
	answer(n, k->name, res ? "Yes" : "No");
}

static uint32_t our_num(const struct neg *n, unsigned id)
{
	const struct iscsi_target_limits *lim = n->lim;

	switch (id) {
	case K_MAX_CONNECTIONS: return clamp32(lim->max_connections, 1, 65535);
	case K_MAX_BURST:       return lim_max_burst(lim);
	case K_FIRST_BURST: {
		/* FirstBurstLength MUST NOT exceed MaxBurstLength (§13.14): answer
		 * at most the MaxBurstLength result known so far (from earlier
		 * requests, or this one, whatever the key order). */
		uint32_t mb = (n->p->seen & BIT(K_MAX_BURST)) ? n->p->max_burst :
			      n->pending_max_burst ? n->pending_max_burst : lim_max_burst(lim);
		uint32_t fb = lim_first_burst(lim);
		return fb < mb ? fb : mb;
	}
	case K_TIME2WAIT:       return DEF_TIME2WAIT;
	case K_TIME2RETAIN:     return DEF_TIME2RETAIN;
	case K_MAX_R2T:         return clamp32(lim->max_outstanding_r2t, 1, 65535);
	case K_ERL:             return lim->max_erl > 2 ? 2 : lim->max_erl;
	case K_PROTOCOL_LEVEL:  return OUR_PROTOCOL_LEVEL;
	default:                return 0;
	}
}

static void store_num(struct iscsi_params *p, unsigned id, uint32_t v)
{
	switch (id) {
	case K_MAX_CONNECTIONS: p->max_connections = v; break;
	case K_MAX_BURST:       p->max_burst = v; break;
	case K_FIRST_BURST:     p->first_burst = v; break;
	case K_TIME2WAIT:       p->default_time2wait = (uint16_t)v; break;
	case K_TIME2RETAIN:     p->default_time2retain = (uint16_t)v; break;
	case K_MAX_R2T:         p->max_outstanding_r2t = v; break;
	case K_ERL:             p->erl = (uint8_t)v; break;
	case K_PROTOCOL_LEVEL:  p->protocol_level = (uint8_t)v; break;
	default: break;
	}
}

static bool num_in_range(const struct key_def *k, const char *v, uint32_t *out)
{
	uint64_t x;
	if (!parse_num(v, &x) || x < k->min || x > k->max)
		return false;
	*out = (uint32_t)x;
	return true;
}

static void neg_num(struct neg *n, const struct key_def *k, const char *v)
{
	uint32_t offer;

	if (!num_in_range(k, v, &offer)) {
		answer(n, k->name, "Reject");
		return;
	}
	uint32_t ours = our_num(n, k->id);
	uint32_t res = k->kind == KIND_MIN ? (offer < ours ? offer : ours) :
					     (offer > ours ? offer : ours);
	store_num(n->p, k->id, res);
	answer_num(n, k->name, res);
}

/* List keys: the first of the initiator's values that we support; values we
 * do not know are skipped (§6.2.1); nothing acceptable -> Reject. */
static bool list_value_ok(const struct neg *n, unsigned id, const char *item)
{
	switch (id) {
	case K_HEADER_DIGEST:
	case K_DATA_DIGEST:
		return strcmp(item, "None") == 0 ||
		       (strcmp(item, "CRC32C") == 0 && n->lim->allow_digests);
	case K_AUTH_METHOD:
		/* "None" is a valid choice only if explicitly offered, which is
		 * the case here since item comes from the offer. */
		return item[0] && strlen(item) < sizeof(n->p->auth_method) &&
		       list_has(n->auth_methods ? n->auth_methods : "None", item);
	case K_TASK_REPORTING:
		return strcmp(item, "RFC3720") == 0;
	default:
		return false;
	}
}

static void neg_list(struct neg *n, const struct key_def *k, const char *v)
{
	char item[ISCSI_VALUE_MAX + 1];
	const char *pick = NULL;

	for (const char *s = v; s && !pick; ) {
		s = list_next(s, item, sizeof(item));
		if (list_value_ok(n, k->id, item))
			pick = item;
	}
	if (!pick) {
		answer(n, k->name, "Reject");
		if (k->id == K_AUTH_METHOD)
			n->auth_failed = true;
		return;
	}
	switch (k->id) {
	case K_HEADER_DIGEST: n->p->header_digest = strcmp(pick, "CRC32C") == 0; break;
	case K_DATA_DIGEST:   n->p->data_digest = strcmp(pick, "CRC32C") == 0; break;
	case K_AUTH_METHOD:
		memcpy(n->p->auth_method, pick, strlen(pick) + 1);  /* fits: list_value_ok */
		break;
	default: break;
	}
	answer(n, k->name, pick);
}

/* Declaratives: recorded, not answered, except that our own
 * MaxRecvDataSegmentLength goes out in return for the initiator's. */
static int neg_decl(struct neg *n, const struct key_def *k, const char *v)
{
	struct iscsi_params *p = n->p;
	size_t len = strlen(v);

	switch (k->id) {
	case K_INITIATOR_NAME:
		if (len > ISCSI_NAME_MAX || !iscsi_name_valid(v))
			return ISCSI_LOGIN_STATUS_INIT_ERR;
		memcpy(p->initiator_name, v, len + 1);
		return 0;
	case K_TARGET_NAME:
		if (len > ISCSI_NAME_MAX)
			return ISCSI_LOGIN_STATUS_INIT_ERR;
		memcpy(p->target_name, v, len + 1);
		return 0;
	case K_INITIATOR_ALIAS:
		snprintf(p->initiator_alias, sizeof(p->initiator_alias), "%s", v);
		return 0;
	case K_SESSION_TYPE:
		return 0;       /* applied before the walk (see session_type_first) */
	case K_INIT_RDSL:
	case K_TGT_RDSL:
	case K_MAX_UNEXP: {
		uint32_t x;
		if (!n->lim->rdma_extensions) {
			/* Not an iSER connection: these keys do not exist on TCP. */
			answer(n, k->name, "NotUnderstood");
			return 0;
		}
		if (!num_in_range(k, v, &x)) {
			answer(n, k->name, "Reject");
			return 0;
		}
		if (k->id == K_INIT_RDSL) {
			p->max_xmit_dsl = x;     /* what the initiator can receive */
			return 0;
		}
		if (k->id == K_TGT_RDSL)
			answer_num(n, k->name, p->max_recv_dsl);
		else
			answer_num(n, k->name, n->lim->max_unexpected_pdus);
		return 0;
	}
	case K_MAX_RECV_DSL: {
		uint32_t x;
		if (!num_in_range(k, v, &x)) {
			answer(n, k->name, "Reject");
			return 0;
		}
		p->max_xmit_dsl = x;
		if (!(p->answered & BIT(K_MAX_RECV_DSL))) {
			answer_num(n, k->name, p->max_recv_dsl);
			p->answered |= BIT(K_MAX_RECV_DSL);
		}
		return 0;
	}
	default:
		return 0;
	}
}

/* The initiator's answer to one of our offers (iscsi_params_offer). Our offer
 * was stored in p; the answer must respect the key's result function. */
static int take_answer(struct neg *n, const struct key_def *k, const char *v)
{
	struct iscsi_params *p = n->p;

	p->offered &= ~BIT(k->id);
	if (is_reserved_answer(v)) {
		/* Not accepted: the RFC default stays in force. */
		if (k->id == K_IMMEDIATE_DATA)
			p->immediate_data = true;
		else if (k->id == K_MAX_BURST)
			p->max_burst = DEF_MAX_BURST;
		else if (k->id == K_FIRST_BURST)
			p->first_burst = DEF_FIRST_BURST;
		return 0;
	}
	switch (k->id) {
	case K_IMMEDIATE_DATA:      /* we offered No; AND leaves only No */
		return parse_bool(v) == 0 ? 0 : ISCSI_LOGIN_STATUS_INIT_ERR;
	case K_MAX_BURST:
	case K_FIRST_BURST: {
		uint32_t x, offered = k->id == K_MAX_BURST ? p->max_burst : p->first_burst;
		if (!num_in_range(k, v, &x) || x > offered)
			return ISCSI_LOGIN_STATUS_INIT_ERR;
		store_num(p, k->id, x);
		return 0;
	}
	default:
		return ISCSI_LOGIN_STATUS_INIT_ERR;
	}
}

static bool is_chap_key(const char *key)
{
	return strncmp(key, "CHAP_", 5) == 0;
}

static int negotiate_one(struct neg *n, const struct iscsi_kv *kv, uint64_t *batch)
{
	struct iscsi_params *p = n->p;
	const struct key_def *k = key_lookup(kv->key);
	const char *v = kv->value;

	if (!k) {
		if (is_chap_key(kv->key))
			/* Security keys belong to the security stage only. */
			return n->stage == ISCSI_STAGE_SECURITY ? 0 : ISCSI_LOGIN_STATUS_INIT_ERR;
		answer(n, kv->key, "NotUnderstood");   /* X-, X#, unknown */
		return 0;
	}

	uint64_t bit = BIT(k->id);
	if (*batch & bit)
		return ISCSI_LOGIN_STATUS_INIT_ERR;    /* twice in one request */
	*batch |= bit;

	if (p->offered & bit) {
		p->seen |= bit;
		p->value_crc[k->id] = crc32c(0, v, strlen(v));
		return take_answer(n, k, v);
	}
	uint32_t crc = crc32c(0, v, strlen(v));
	if ((p->seen & bit) && k->id != K_MAX_RECV_DSL && p->value_crc[k->id] != crc)
		return ISCSI_LOGIN_STATUS_INIT_ERR;    /* renegotiation in one login */
	p->seen |= bit;
	p->value_crc[k->id] = crc;

	if (k->flags & F_FFP_ONLY)
		return ISCSI_LOGIN_STATUS_INIT_ERR;
	if (n->stage == ISCSI_STAGE_SECURITY && !(k->flags & (F_ANY_STAGE | F_SECURITY)))
		return ISCSI_LOGIN_STATUS_INIT_ERR;
	if (n->stage != ISCSI_STAGE_SECURITY && (k->flags & F_SECURITY))
		return ISCSI_LOGIN_STATUS_INIT_ERR;
	if (k->flags & F_TARGET)
		return 0;
	if (k->kind == KIND_DECL)
		return neg_decl(n, k, v);

	if ((k->flags & F_NODISC) && p->session_type == ISCSI_SESSION_DISCOVERY) {
		answer(n, k->name, "Irrelevant");
		return 0;
	}
	if ((k->flags & F_LO) && !n->leading) {
		answer(n, k->name, "Irrelevant");
		return 0;
	}
	if (!v[0]) {
		answer(n, k->name, "Reject");
		if (k->id == K_AUTH_METHOD)
			n->auth_failed = true;
		return 0;
	}
	switch (k->kind) {
	case KIND_AND:
	case KIND_OR:
		neg_bool(n, k, v);
		break;
	case KIND_MIN:
	case KIND_MAX:
		neg_num(n, k, v);
		break;
	case KIND_LIST:
		neg_list(n, k, v);
		break;
	case KIND_REJECT:
		/* RFC 7143 §13.25: OFMarkInt/IFMarkInt MUST be answered Reject. */
		answer(n, k->name, "Reject");
		break;
	}
	return 0;
}

/* SessionType decides which keys are relevant, so it is applied before the
 * other keys of the request, wherever it stands in it. */
static int session_type_first(struct iscsi_params *p, const struct iscsi_kv *kv, unsigned cnt)
{
	for (unsigned i = 0; i < cnt; i++) {
		if (strcmp(kv[i].key, "SessionType") != 0)
			continue;
		enum iscsi_session_type t;
		if (strcmp(kv[i].value, "Normal") == 0)
			t = ISCSI_SESSION_NORMAL;
		else if (strcmp(kv[i].value, "Discovery") == 0)
			t = ISCSI_SESSION_DISCOVERY;
		else
			return ISCSI_LOGIN_STATUS_SESSION_TYPE;
		if (p->session_type != ISCSI_SESSION_NONE && p->session_type != t)
			return ISCSI_LOGIN_STATUS_INIT_ERR;
		p->session_type = t;
		return 0;
	}
	return 0;
}

/* The MaxBurstLength result of this request, so FirstBurstLength can be
 * bounded by it even when it comes first. 0: not in this request. */
static uint32_t max_burst_in_request(const struct neg *n, const struct iscsi_kv *kv, unsigned cnt)
{
	const struct key_def *k = &keys[K_MAX_BURST];

	if (n->p->offered & BIT(K_MAX_BURST))
		return 0;
	for (unsigned i = 0; i < cnt; i++) {
		uint32_t x;
		if (strcmp(kv[i].key, k->name) == 0 && num_in_range(k, kv[i].value, &x)) {
			uint32_t ours = lim_max_burst(n->lim);
			return x < ours ? x : ours;
		}
	}
	return 0;
}

int iscsi_negotiate(struct iscsi_params *p, const struct iscsi_target_limits *lim,
		    int stage, bool leading, const char *auth_methods,
		    const struct iscsi_kv *kv, unsigned cnt, struct iscsi_textbuf *resp)
{
	struct neg n = {
		.p = p, .lim = lim, .resp = resp, .auth_methods = auth_methods,
		.stage = stage, .leading = leading,
	};
	uint64_t batch = 0;

	if (stage != ISCSI_STAGE_SECURITY && stage != ISCSI_STAGE_OPERATIONAL)
		return ISCSI_LOGIN_STATUS_INIT_ERR;
	int rc = session_type_first(p, kv, cnt);
	if (rc)
		return rc;
	n.pending_max_burst = max_burst_in_request(&n, kv, cnt);

	for (unsigned i = 0; i < cnt; i++) {
		rc = negotiate_one(&n, &kv[i], &batch);
		if (rc)
			return rc;
	}
	if (n.resp_full)
		return ISCSI_LOGIN_STATUS_NO_RESOURCES;
	/* The first Login Request carries the names (§6.3.1); SessionType
	 * defaults to Normal when it did not say. */
	if (p->session_type == ISCSI_SESSION_NONE)
		p->session_type = ISCSI_SESSION_NORMAL;
	if (!p->initiator_name[0])
		return ISCSI_LOGIN_STATUS_MISSING_PARAM;
	if (p->session_type == ISCSI_SESSION_NORMAL && !p->target_name[0])
		return ISCSI_LOGIN_STATUS_MISSING_PARAM;
	if (n.auth_failed)
		return ISCSI_LOGIN_STATUS_AUTH_FAILED;
	return 0;
}

/* ---- target offers and the end of login --------------------------------- */

static int declare_mrdsl(struct iscsi_params *p, struct iscsi_textbuf *resp)
{
	if (p->answered & BIT(K_MAX_RECV_DSL))
		return 0;
	int rc = iscsi_textbuf_addf(resp, keys[K_MAX_RECV_DSL].name, "%u", p->max_recv_dsl);
	if (rc)
		return rc;
	p->answered |= BIT(K_MAX_RECV_DSL);
	return 0;
}

int iscsi_params_offer(struct iscsi_params *p, const struct iscsi_target_limits *lim,
		       bool leading, struct iscsi_textbuf *resp)
{
	int offers = 0, rc;
	uint64_t untouched = ~(p->seen | p->offered);

	rc = declare_mrdsl(p, resp);
	if (rc)
		return rc;
	if (p->session_type == ISCSI_SESSION_DISCOVERY || !leading)
		return 0;

	if ((untouched & BIT(K_IMMEDIATE_DATA)) && p->immediate_data && !lim->immediate_data) {
		rc = iscsi_textbuf_add(resp, keys[K_IMMEDIATE_DATA].name, "No");
		if (rc)
			return rc;
		p->immediate_data = false;
		p->offered |= BIT(K_IMMEDIATE_DATA);
		offers++;
	}
	if ((untouched & BIT(K_MAX_BURST)) && p->max_burst > lim_max_burst(lim)) {
		rc = iscsi_textbuf_addf(resp, keys[K_MAX_BURST].name, "%u", lim_max_burst(lim));
		if (rc)
			return rc;
		p->max_burst = lim_max_burst(lim);
		p->offered |= BIT(K_MAX_BURST);
		offers++;
	}
	/* FirstBurstLength only matters when unsolicited data is possible
	 * (§13.14: irrelevant when InitialR2T=Yes and ImmediateData=No). */
	uint32_t fb = lim_first_burst(lim);
	if (fb > p->max_burst)
		fb = p->max_burst;
	bool unsolicited = !p->initial_r2t || p->immediate_data;
	if ((untouched & BIT(K_FIRST_BURST)) && unsolicited && p->first_burst > fb) {
		rc = iscsi_textbuf_addf(resp, keys[K_FIRST_BURST].name, "%u", fb);
		if (rc)
			return rc;
		p->first_burst = fb;
		p->offered |= BIT(K_FIRST_BURST);
		offers++;
	}
	return offers;
}

int iscsi_params_finish(struct iscsi_params *p, const struct iscsi_target_limits *lim,
			struct iscsi_textbuf *resp)
{
	(void)lim;
	if (p->session_type == ISCSI_SESSION_NONE)
		p->session_type = ISCSI_SESSION_NORMAL;
	/* An offer left unanswered: RFC 7143 wants an answer, but open-iscsi and
	 * libiscsi apply values a target states in a Login Response without
	 * echoing them, so the value we offered is what the initiator uses. */
	p->offered = 0;
	if (p->session_type == ISCSI_SESSION_NORMAL && p->first_burst > p->max_burst)
		return ISCSI_LOGIN_STATUS_INIT_ERR;
	if (declare_mrdsl(p, resp))
		return ISCSI_LOGIN_STATUS_NO_RESOURCES;
	return 0;
}

/* ---- full feature phase text -------------------------------------------- */

int iscsi_negotiate_text(struct iscsi_params *p, const struct iscsi_target_limits *lim,
			 const struct iscsi_kv *kv, unsigned cnt, struct iscsi_textbuf *resp)
{
	struct neg n = { .p = p, .lim = lim, .resp = resp, .leading = true,
			 .stage = ISCSI_STAGE_FULL };
	uint64_t batch = 0;

	for (unsigned i = 0; i < cnt; i++) {
		const char *key = kv[i].key, *v = kv[i].value;
		const struct key_def *k = key_lookup(key);

		if (k && k->id == K_SEND_TARGETS)
			continue;                 /* the caller's */
		if (!k) {
			answer(&n, key, "NotUnderstood");
			continue;
		}
		if (batch & BIT(k->id))
			return -EPROTO;
		batch |= BIT(k->id);
		if (k->flags & F_TARGET)
			continue;
		if (!(k->flags & F_FFP) || !v[0]) {
			/* login-only keys cannot change once the session runs */
			answer(&n, key, "Reject");
			continue;
		}
		if (k->id == K_MAX_RECV_DSL) {
			uint32_t x;
			if (!num_in_range(k, v, &x)) {
				answer(&n, key, "Reject");
				continue;
			}
			p->max_xmit_dsl = x;
			answer_num(&n, key, p->max_recv_dsl);
		} else if (k->id == K_INITIATOR_ALIAS) {
			snprintf(p->initiator_alias, sizeof(p->initiator_alias), "%s", v);
		}
	}
	return n.resp_full ? -E2BIG : 0;
}
