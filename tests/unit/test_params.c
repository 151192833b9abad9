/* test_params.c — text buffers, text parsing, iSCSI names and RFC 7143 key
 * negotiation (login and full feature phase). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iscsi/params.h"
#include "iscsi/pdu.h"

#define SEC ISCSI_STAGE_SECURITY
#define OPS ISCSI_STAGE_OPERATIONAL
#define IQN_I "iqn.2005-03.org.open-iscsi:0123456789ab"
#define IQN_T "iqn.2003-01.org.example:disk1"

/* ---- helpers ---- */

/* A request built from "key=value" strings, parsed like the engine would. */
struct req {
	char text[16384];
	uint32_t len;
	struct iscsi_kv kv[128];
	int n;
};

static void req_build(struct req *r, const char *const *pairs)
{
	r->len = 0;
	for (; *pairs; pairs++) {
		size_t l = strlen(*pairs) + 1;
		assert_true(r->len + l <= sizeof(r->text));
		memcpy(r->text + r->len, *pairs, l);
		r->len += (uint32_t)l;
	}
	r->n = iscsi_text_parse(r->text, r->len, r->kv, 128);
	assert_true(r->n >= 0);
}

/* The answers in a response buffer, checked for well-formedness on the way. */
static int resp_count(const struct iscsi_textbuf *tb)
{
	int n = 0;
	for (uint32_t off = 0; off < tb->len; ) {
		const char *s = tb->buf + off;
		assert_non_null(memchr(s, '\0', tb->len - off));
		assert_non_null(strchr(s, '='));
		off += (uint32_t)strlen(s) + 1;
		n++;
	}
	return n;
}

/* Value of key in the response, NULL if absent; fails if it appears twice. */
static const char *resp_get(const struct iscsi_textbuf *tb, const char *key)
{
	const char *found = NULL;
	size_t kl = strlen(key);
	for (uint32_t off = 0; off < tb->len; ) {
		const char *s = tb->buf + off;
		if (strncmp(s, key, kl) == 0 && s[kl] == '=') {
			assert_null(found);
			found = s + kl + 1;
		}
		off += (uint32_t)strlen(s) + 1;
	}
	return found;
}

static void assert_answer(const struct iscsi_textbuf *tb, const char *key, const char *want)
{
	const char *v = resp_get(tb, key);
	if (!v)
		fail_msg("no answer for %s (want %s)", key, want);
	if (strcmp(v, want) != 0)
		fail_msg("%s=%s, want %s", key, v, want);
}

static struct iscsi_target_limits default_limits(void)
{
	return (struct iscsi_target_limits){
		.max_recv_dsl = 262144,
		.max_burst = 1048576,
		.first_burst = 262144,
		.max_outstanding_r2t = 16,
		.max_connections = 1,
		.max_erl = 0,
		.allow_digests = true,
		.immediate_data = true,
		.initial_r2t = false,
		.rdma_extensions = false,
	};
}

/* Per-test state: limits, params, response buffer. */
struct fx {
	struct iscsi_target_limits lim;
	struct iscsi_params p;
	struct iscsi_textbuf tb;
};

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->lim = default_limits();
	iscsi_params_init(&f->p, &f->lim);
	assert_int_equal(iscsi_textbuf_init(&f->tb, 65536), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	iscsi_textbuf_free(&f->tb);
	free(f);
}

static void fx_reset_resp(struct fx *f)
{
	f->tb.len = 0;
}

static int neg(struct fx *f, int stage, bool leading, const char *auth, const char *const *pairs)
{
	struct req r;
	req_build(&r, pairs);
	return iscsi_negotiate(&f->p, &f->lim, stage, leading, auth, r.kv, (unsigned)r.n, &f->tb);
}

/* Operational-stage negotiation of a normal session: names first. */
static int neg_normal(struct fx *f, const char *const *pairs)
{
	const char *names[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T,
				"SessionType=Normal", NULL };
	assert_int_equal(neg(f, SEC, true, "None", names), 0);
	fx_reset_resp(f);
	return neg(f, OPS, true, "None", pairs);
}

static int neg_discovery(struct fx *f, const char *const *pairs)
{
	const char *names[] = { "InitiatorName=" IQN_I, "SessionType=Discovery", NULL };
	assert_int_equal(neg(f, SEC, true, "None", names), 0);
	fx_reset_resp(f);
	return neg(f, OPS, true, "None", pairs);
}

/* ---- text buffer ---- */

static void test_textbuf(void **state)
{
	struct iscsi_textbuf tb;

	(void)state;
	assert_int_equal(iscsi_textbuf_init(&tb, 0), -EINVAL);
	assert_int_equal(iscsi_textbuf_init(&tb, 20), 0);
	/* "Key=Value\0" = 10 bytes; two fit exactly. */
	assert_int_equal(iscsi_textbuf_add(&tb, "Key", "Value"), 0);
	assert_int_equal(tb.len, 10);
	assert_int_equal(iscsi_textbuf_add(&tb, "Abc", "12345"), 0);
	assert_int_equal(tb.len, 20);
	assert_memory_equal(tb.buf, "Key=Value\0Abc=12345\0", 20);
	/* Past max: refused, nothing appended, still usable. */
	assert_int_equal(iscsi_textbuf_add(&tb, "A", ""), -E2BIG);
	assert_int_equal(tb.len, 20);
	assert_true(tb.cap <= tb.max);
	iscsi_textbuf_free(&tb);
	assert_null(tb.buf);

	/* Growth over many appends keeps every byte. */
	assert_int_equal(iscsi_textbuf_init(&tb, 100000), 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(iscsi_textbuf_addf(&tb, "K", "%d", i), 0);
	uint32_t off = 0;
	for (int i = 0; i < 2000; i++) {
		char want[16];
		snprintf(want, sizeof(want), "K=%d", i);
		assert_string_equal(tb.buf + off, want);
		off += (uint32_t)strlen(want) + 1;
	}
	assert_int_equal(off, tb.len);
	/* A formatted value longer than a simple value (CHAP_C). */
	char hex[2049];
	memset(hex, 'a', 2048);
	hex[2048] = '\0';
	tb.len = 0;
	assert_int_equal(iscsi_textbuf_addf(&tb, "CHAP_C", "0x%s", hex), 0);
	assert_int_equal(tb.len, 7 + 2 + 2048 + 1);
	assert_int_equal(strlen(tb.buf), 7 + 2 + 2048);
	iscsi_textbuf_free(&tb);

	/* addf past max. */
	assert_int_equal(iscsi_textbuf_init(&tb, 8), 0);
	assert_int_equal(iscsi_textbuf_addf(&tb, "A", "%u", 123456u), -E2BIG);
	assert_int_equal(tb.len, 0);
	assert_int_equal(iscsi_textbuf_addf(&tb, "A", "%u", 12345u), 0);  /* "A=12345\0" */
	assert_int_equal(tb.len, 8);
	iscsi_textbuf_free(&tb);
}

/* ---- parsing ---- */

static int parse_raw(const char *data, uint32_t len, struct iscsi_kv *kv, unsigned max)
{
	static char buf[8192];
	assert_true(len <= sizeof(buf));
	memcpy(buf, data, len);
	return iscsi_text_parse(buf, len, kv, max);
}

static void test_text_parse_good(void **state)
{
	struct iscsi_kv kv[8];
	char text[] = "HeaderDigest=CRC32C,None\0X-com.a=b=c\0Empty=\0X#abc=1\0";

	(void)state;
	assert_int_equal(iscsi_text_parse(text, sizeof(text) - 1, kv, 8), 4);
	assert_string_equal(kv[0].key, "HeaderDigest");
	assert_string_equal(kv[0].value, "CRC32C,None");
	assert_string_equal(kv[1].key, "X-com.a");
	assert_string_equal(kv[1].value, "b=c");      /* first '=' splits */
	assert_string_equal(kv[2].key, "Empty");
	assert_string_equal(kv[2].value, "");
	assert_string_equal(kv[3].key, "X#abc");
	/* pointers point into the caller's buffer */
	assert_ptr_equal(kv[0].key, text);

	assert_int_equal(parse_raw("", 0, kv, 8), 0);
	/* trailing NUL padding inside the segment */
	assert_int_equal(parse_raw("A=1\0\0\0\0", 7, kv, 8), 1);
	/* all key characters */
	assert_int_equal(parse_raw("aZ09.-+@_=x\0", 12, kv, 8), 1);
	/* iSCSIProtocolLevel starts with a small letter */
	assert_int_equal(parse_raw("iSCSIProtocolLevel=1\0", 21, kv, 8), 1);
}

static void test_text_parse_bad(void **state)
{
	struct iscsi_kv kv[4];
	char big[4096];

	(void)state;
	assert_int_equal(parse_raw("A=1", 3, kv, 4), -EINVAL);          /* no final NUL */
	assert_int_equal(parse_raw("A=1\0B", 5, kv, 4), -EINVAL);
	assert_int_equal(parse_raw("A1\0", 3, kv, 4), -EINVAL);         /* no '=' */
	assert_int_equal(parse_raw("=1\0", 3, kv, 4), -EINVAL);         /* empty key */
	assert_int_equal(parse_raw("A=1\0\0B=2\0", 9, kv, 4), -EINVAL); /* empty pair inside */
	assert_int_equal(parse_raw("\0A=1\0", 5, kv, 4), -EINVAL);
	assert_int_equal(parse_raw("A B=1\0", 6, kv, 4), -EINVAL);      /* bad key char */
	assert_int_equal(parse_raw("A#B=1\0", 6, kv, 4), -EINVAL);      /* '#' only in X# */
	assert_int_equal(parse_raw("A\x80=1\0", 5, kv, 4), -EINVAL);
	/* four pairs into room for three */
	assert_int_equal(parse_raw("A=1\0B=2\0C=3\0D=4\0", 16, kv, 3), -E2BIG);
	assert_int_equal(parse_raw("A=1\0B=2\0C=3\0D=4\0", 16, kv, 4), 4);

	/* key length 63 ok, 64 not */
	memset(big, 'K', 63);
	memcpy(big + 63, "=v", 3);
	assert_int_equal(parse_raw(big, 66, kv, 4), 1);
	memset(big, 'K', 64);
	memcpy(big + 64, "=v", 3);
	assert_int_equal(parse_raw(big, 67, kv, 4), -EINVAL);

	/* value length 255 ok, 256 not */
	memcpy(big, "V=", 2);
	memset(big + 2, 'x', 255);
	big[257] = '\0';
	assert_int_equal(parse_raw(big, 258, kv, 4), 1);
	memset(big + 2, 'x', 256);
	big[258] = '\0';
	assert_int_equal(parse_raw(big, 259, kv, 4), -EINVAL);

	/* CHAP_C / CHAP_R may carry up to ISCSI_VALUE_LONG_MAX */
	memcpy(big, "CHAP_C=", 7);
	memset(big + 7, 'a', ISCSI_VALUE_LONG_MAX);
	big[7 + ISCSI_VALUE_LONG_MAX] = '\0';
	assert_int_equal(parse_raw(big, 8 + ISCSI_VALUE_LONG_MAX, kv, 4), 1);
	memset(big + 7, 'a', ISCSI_VALUE_LONG_MAX + 1);
	big[8 + ISCSI_VALUE_LONG_MAX] = '\0';
	assert_int_equal(parse_raw(big, 9 + ISCSI_VALUE_LONG_MAX, kv, 4), -EINVAL);
	/* ... but not CHAP_N */
	memcpy(big, "CHAP_N=", 7);
	memset(big + 7, 'a', 300);
	big[307] = '\0';
	assert_int_equal(parse_raw(big, 308, kv, 4), -EINVAL);
}

/* ---- names ---- */

static void test_name_valid(void **state)
{
	(void)state;
	assert_true(iscsi_name_valid(IQN_I));
	assert_true(iscsi_name_valid(IQN_T));
	assert_true(iscsi_name_valid("iqn.2001-04.com.example"));
	assert_true(iscsi_name_valid("iqn.2001-04.com.example:storage:diskarrays-sn-a8675309"));
	assert_true(iscsi_name_valid("iqn.1991-05.com.microsoft:host.corp.example"));
	assert_true(iscsi_name_valid("iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test"));
	assert_true(iscsi_name_valid("IQN.2001-04.COM.EXAMPLE:Disk"));      /* case folds */
	assert_true(iscsi_name_valid("iqn.2001-04.com.example:d\xc3\xa9j\xc3\xa0")); /* UTF-8 */
	assert_true(iscsi_name_valid("eui.02004567A425678D"));
	assert_true(iscsi_name_valid("eui.02004567a425678d"));
	assert_true(iscsi_name_valid("naa.52004567BA64678D"));
	assert_true(iscsi_name_valid("naa.62004567BA64678D0123456789ABCDEF"));

	assert_false(iscsi_name_valid(NULL));
	assert_false(iscsi_name_valid(""));
	assert_false(iscsi_name_valid("iqn."));
	assert_false(iscsi_name_valid("iqn.2001-04"));
	assert_false(iscsi_name_valid("iqn.2001-04."));
	assert_false(iscsi_name_valid("iqn.2001-13.com.example"));         /* month */
	assert_false(iscsi_name_valid("iqn.2001-00.com.example"));
	assert_false(iscsi_name_valid("iqn.01-04.com.example"));
	assert_false(iscsi_name_valid("iqn.2001-4.com.example"));
	assert_false(iscsi_name_valid("iqn.2001-04.:x"));                  /* no authority */
	assert_false(iscsi_name_valid("iqn.2001-04.com.example:my disk")); /* space */
	assert_false(iscsi_name_valid("iqn.2001-04.com.example:a_b"));     /* '_' (RFC 3722) */
	assert_false(iscsi_name_valid("iqn.2001-04.com.example:a/b"));
	assert_false(iscsi_name_valid("iqn.2001-04.com.example:a,b"));
	assert_false(iscsi_name_valid("eui.02004567A425678"));              /* 15 digits */
	assert_false(iscsi_name_valid("eui.02004567A425678DD"));
	assert_false(iscsi_name_valid("eui.02004567A425678G"));
	assert_false(iscsi_name_valid("eui.62004567BA64678D0123456789ABCDEF")); /* 32: naa only */
	assert_false(iscsi_name_valid("naa.5200456"));
	assert_false(iscsi_name_valid("foo.2001-04.com.example"));
	assert_false(iscsi_name_valid("host.example.com"));

	/* 223 bytes ok, 224 not */
	char n[300];
	strcpy(n, "iqn.2001-04.com.example:");
	size_t l = strlen(n);
	memset(n + l, 'x', 223 - l);
	n[223] = '\0';
	assert_true(iscsi_name_valid(n));
	n[223] = 'x';
	n[224] = '\0';
	assert_false(iscsi_name_valid(n));
}

/* ---- defaults ---- */

static void test_params_init(void **state)
{
	struct iscsi_target_limits lim = default_limits();
	struct iscsi_params p;

	(void)state;
	memset(&p, 0xa5, sizeof(p));
	iscsi_params_init(&p, &lim);
	assert_int_equal(p.session_type, ISCSI_SESSION_NONE);
	assert_int_equal(p.max_recv_dsl, 262144);
	assert_int_equal(p.max_xmit_dsl, 8192);
	assert_int_equal(p.max_burst, 262144);
	assert_int_equal(p.first_burst, 65536);
	assert_int_equal(p.max_outstanding_r2t, 1);
	assert_int_equal(p.max_connections, 1);
	assert_int_equal(p.default_time2wait, 2);
	assert_int_equal(p.default_time2retain, 20);
	assert_int_equal(p.erl, 0);
	assert_true(p.initial_r2t);
	assert_true(p.immediate_data);
	assert_true(p.data_pdu_in_order);
	assert_true(p.data_sequence_in_order);
	assert_false(p.header_digest);
	assert_false(p.data_digest);
	assert_string_equal(p.auth_method, "");
	assert_string_equal(p.initiator_name, "");
	assert_int_equal(p.seen, 0);
	assert_int_equal(p.offered, 0);
	/* a limit outside the legal range is clamped */
	lim.max_recv_dsl = 100;
	iscsi_params_init(&p, &lim);
	assert_int_equal(p.max_recv_dsl, 512);
	lim.max_recv_dsl = 1u << 30;
	iscsi_params_init(&p, &lim);
	assert_int_equal(p.max_recv_dsl, (1u << 24) - 1);
}

/* ---- Boolean keys ---- */

static void test_bool_and_or(void **state)
{
	(void)state;
	/* target: InitialR2T=No wanted (OR), ImmediateData accepted (AND) */
	struct fx *f = fx_new();
	const char *a[] = { "InitialR2T=No", "ImmediateData=Yes", "DataPDUInOrder=No",
			    "DataSequenceInOrder=Yes", NULL };
	assert_int_equal(neg_normal(f, a), 0);
	assert_answer(&f->tb, "InitialR2T", "No");
	assert_answer(&f->tb, "ImmediateData", "Yes");
	assert_answer(&f->tb, "DataPDUInOrder", "Yes");   /* OR with our Yes */
	assert_answer(&f->tb, "DataSequenceInOrder", "Yes");
	assert_false(f->p.initial_r2t);
	assert_true(f->p.immediate_data);
	assert_true(f->p.data_pdu_in_order);
	fx_free(f);

	/* target wants InitialR2T=Yes and refuses immediate data */
	f = fx_new();
	f->lim.initial_r2t = true;
	f->lim.immediate_data = false;
	const char *b[] = { "InitialR2T=No", "ImmediateData=Yes", NULL };
	assert_int_equal(neg_normal(f, b), 0);
	assert_answer(&f->tb, "InitialR2T", "Yes");
	assert_answer(&f->tb, "ImmediateData", "No");
	assert_true(f->p.initial_r2t);
	assert_false(f->p.immediate_data);
	fx_free(f);

	/* the initiator's Yes (OR) / No (AND) decide alone */
	f = fx_new();
	const char *c[] = { "InitialR2T=Yes", "ImmediateData=No", NULL };
	assert_int_equal(neg_normal(f, c), 0);
	assert_answer(&f->tb, "InitialR2T", "Yes");
	assert_answer(&f->tb, "ImmediateData", "No");
	assert_true(f->p.initial_r2t);
	assert_false(f->p.immediate_data);
	fx_free(f);

	/* not a Boolean: Reject, value unchanged */
	f = fx_new();
	const char *d[] = { "InitialR2T=yes", "ImmediateData=1", "DataPDUInOrder=", NULL };
	assert_int_equal(neg_normal(f, d), 0);
	assert_answer(&f->tb, "InitialR2T", "Reject");
	assert_answer(&f->tb, "ImmediateData", "Reject");
	assert_answer(&f->tb, "DataPDUInOrder", "Reject");
	assert_true(f->p.initial_r2t);
	assert_true(f->p.immediate_data);
	fx_free(f);
}

/* ---- numeric keys ---- */

static void test_numbers(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	f->lim.max_connections = 4;
	f->lim.max_erl = 0;
	const char *a[] = {
		"MaxBurstLength=16776192",      /* > our 1 MiB -> ours */
		"FirstBurstLength=0x10000",     /* hex, < ours -> offer */
		"DefaultTime2Wait=0",           /* max(0, 2) */
		"DefaultTime2Retain=0",         /* min(0, 20) */
		"MaxOutstandingR2T=64",         /* min(64, 16) */
		"MaxConnections=8",             /* min(8, 4) */
		"ErrorRecoveryLevel=2",         /* min(2, 0) */
		"iSCSIProtocolLevel=2",         /* min(2, 1) */
		NULL };
	assert_int_equal(neg_normal(f, a), 0);
	assert_answer(&f->tb, "MaxBurstLength", "1048576");
	assert_answer(&f->tb, "FirstBurstLength", "65536");
	assert_answer(&f->tb, "DefaultTime2Wait", "2");
	assert_answer(&f->tb, "DefaultTime2Retain", "0");
	assert_answer(&f->tb, "MaxOutstandingR2T", "16");
	assert_answer(&f->tb, "MaxConnections", "4");
	assert_answer(&f->tb, "ErrorRecoveryLevel", "0");
	assert_answer(&f->tb, "iSCSIProtocolLevel", "1");
	assert_int_equal(f->p.max_burst, 1048576);
	assert_int_equal(f->p.first_burst, 65536);
	assert_int_equal(f->p.default_time2wait, 2);
	assert_int_equal(f->p.default_time2retain, 0);
	assert_int_equal(f->p.max_outstanding_r2t, 16);
	assert_int_equal(f->p.max_connections, 4);
	assert_int_equal(f->p.erl, 0);
	assert_int_equal(f->p.protocol_level, 1);
	fx_free(f);

	/* Maximum function picks the larger offer. */
	f = fx_new();
	const char *b[] = { "DefaultTime2Wait=3600", "MaxBurstLength=512", "ErrorRecoveryLevel=0",
			    "iSCSIProtocolLevel=0", NULL };
	assert_int_equal(neg_normal(f, b), 0);
	assert_answer(&f->tb, "DefaultTime2Wait", "3600");
	assert_answer(&f->tb, "MaxBurstLength", "512");
	assert_answer(&f->tb, "iSCSIProtocolLevel", "0");
	assert_int_equal(f->p.default_time2wait, 3600);
	fx_free(f);

	/* ERL 2 supported by the limits: min(1, 2) */
	f = fx_new();
	f->lim.max_erl = 2;
	const char *e[] = { "ErrorRecoveryLevel=1", NULL };
	assert_int_equal(neg_normal(f, e), 0);
	assert_answer(&f->tb, "ErrorRecoveryLevel", "1");
	assert_int_equal(f->p.erl, 1);
	fx_free(f);
}

static void test_number_range_violations(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *a[] = {
		"MaxBurstLength=511",
		"FirstBurstLength=16777216",
		"DefaultTime2Wait=3601",
		"DefaultTime2Retain=0512",              /* leading zero: not a decimal-constant */
		"MaxOutstandingR2T=0",
		"MaxConnections=65536",
		"ErrorRecoveryLevel=3",
		"iSCSIProtocolLevel=32",
		NULL };
	assert_int_equal(neg_normal(f, a), 0);
	for (int i = 0; a[i]; i++) {
		char key[64];
		const char *eq = strchr(a[i], '=');
		memcpy(key, a[i], (size_t)(eq - a[i]));
		key[eq - a[i]] = '\0';
		assert_answer(&f->tb, key, "Reject");
	}
	/* nothing changed */
	assert_int_equal(f->p.max_burst, 262144);
	assert_int_equal(f->p.first_burst, 65536);
	assert_int_equal(f->p.default_time2wait, 2);
	assert_int_equal(f->p.default_time2retain, 20);
	assert_int_equal(f->p.max_outstanding_r2t, 1);
	assert_int_equal(f->p.max_connections, 1);
	fx_free(f);

	/* malformed numbers */
	f = fx_new();
	const char *b[] = {
		"MaxBurstLength=0x",
		"FirstBurstLength=18446744073709551616",   /* 2^64 */
		"DefaultTime2Wait=-1",
		"DefaultTime2Retain=+5",
		"MaxOutstandingR2T=1.5",
		"MaxConnections=0x10000000000000000",
		"ErrorRecoveryLevel=0b0",                  /* base64 is not for numbers */
		"iSCSIProtocolLevel= 1",
		NULL };
	assert_int_equal(neg_normal(f, b), 0);
	for (int i = 0; b[i]; i++) {
		char key[64];
		const char *eq = strchr(b[i], '=');
		memcpy(key, b[i], (size_t)(eq - b[i]));
		key[eq - b[i]] = '\0';
		assert_answer(&f->tb, key, "Reject");
	}
	fx_free(f);

	/* boundaries are legal; hex with capitals and leading zeros */
	f = fx_new();
	f->lim.max_burst = (1u << 24) - 1;
	f->lim.first_burst = (1u << 24) - 1;
	const char *c[] = { "MaxBurstLength=0XFFFFFF", "FirstBurstLength=0x0000200",
			    "DefaultTime2Retain=3600", "MaxOutstandingR2T=65535", NULL };
	assert_int_equal(neg_normal(f, c), 0);
	assert_answer(&f->tb, "MaxBurstLength", "16777215");
	assert_answer(&f->tb, "FirstBurstLength", "512");
	assert_answer(&f->tb, "DefaultTime2Retain", "20");
	assert_answer(&f->tb, "MaxOutstandingR2T", "16");
	fx_free(f);
}

static void test_first_burst_vs_max_burst(void **state)
{
	(void)state;
	/* FirstBurstLength before MaxBurstLength in one request: bounded by the
	 * MaxBurstLength result all the same. */
	struct fx *f = fx_new();
	const char *a[] = { "FirstBurstLength=262144", "MaxBurstLength=65536", NULL };
	assert_int_equal(neg_normal(f, a), 0);
	assert_answer(&f->tb, "MaxBurstLength", "65536");
	assert_answer(&f->tb, "FirstBurstLength", "65536");
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);
	assert_true(f->p.first_burst <= f->p.max_burst);
	fx_free(f);

	/* Our own limits inconsistent (first > max): never answer first > max. */
	f = fx_new();
	f->lim.max_burst = 8192;
	f->lim.first_burst = 65536;
	const char *b[] = { "MaxBurstLength=262144", "FirstBurstLength=262144", NULL };
	assert_int_equal(neg_normal(f, b), 0);
	assert_answer(&f->tb, "MaxBurstLength", "8192");
	assert_answer(&f->tb, "FirstBurstLength", "8192");
	fx_free(f);

	/* Only FirstBurstLength sent: bounded by our MaxBurst limit. */
	f = fx_new();
	f->lim.max_burst = 16384;
	f->lim.first_burst = 65536;
	const char *c[] = { "FirstBurstLength=65536", NULL };
	assert_int_equal(neg_normal(f, c), 0);
	assert_answer(&f->tb, "FirstBurstLength", "16384");
	fx_free(f);

	/* Spread over two requests, the second lowering MaxBurstLength below the
	 * FirstBurstLength already agreed: inconsistent, the login fails. */
	f = fx_new();
	const char *d1[] = { "FirstBurstLength=131072", NULL };
	const char *d2[] = { "MaxBurstLength=65536", NULL };
	assert_int_equal(neg_normal(f, d1), 0);
	assert_answer(&f->tb, "FirstBurstLength", "131072");
	assert_int_equal(neg(f, OPS, true, "None", d2), 0);
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
}

/* ---- list keys ---- */

static void test_digest_lists(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *a[] = { "HeaderDigest=CRC32C,None", "DataDigest=None,CRC32C", NULL };
	assert_int_equal(neg_normal(f, a), 0);
	assert_answer(&f->tb, "HeaderDigest", "CRC32C");
	assert_answer(&f->tb, "DataDigest", "None");
	assert_true(f->p.header_digest);
	assert_false(f->p.data_digest);
	fx_free(f);

	/* digests not allowed: None when offered, Reject when not */
	f = fx_new();
	f->lim.allow_digests = false;
	const char *b[] = { "HeaderDigest=CRC32C,None", "DataDigest=CRC32C", NULL };
	assert_int_equal(neg_normal(f, b), 0);
	assert_answer(&f->tb, "HeaderDigest", "None");
	assert_answer(&f->tb, "DataDigest", "Reject");
	assert_false(f->p.header_digest);
	assert_false(f->p.data_digest);
	fx_free(f);

	/* unknown values in a list are skipped; empty items too */
	f = fx_new();
	const char *c[] = { "HeaderDigest=X-com.example.md5,,CRC32C", "DataDigest=md5", NULL };
	assert_int_equal(neg_normal(f, c), 0);
	assert_answer(&f->tb, "HeaderDigest", "CRC32C");
	assert_answer(&f->tb, "DataDigest", "Reject");
	fx_free(f);

	/* TaskReporting: only RFC3720 */
	f = fx_new();
	const char *d[] = { "TaskReporting=FastAbort,ResponseFence,RFC3720", NULL };
	assert_int_equal(neg_normal(f, d), 0);
	assert_answer(&f->tb, "TaskReporting", "RFC3720");
	fx_free(f);
	f = fx_new();
	const char *e[] = { "TaskReporting=FastAbort", NULL };
	assert_int_equal(neg_normal(f, e), 0);
	assert_answer(&f->tb, "TaskReporting", "Reject");
	fx_free(f);
}

static void test_auth_method(void **state)
{
	(void)state;
	const char *n[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, "SessionType=Normal",
			    "AuthMethod=CHAP,None", NULL };

	struct fx *f = fx_new();
	assert_int_equal(neg(f, SEC, true, "None", n), 0);
	assert_answer(&f->tb, "AuthMethod", "None");
	assert_string_equal(f->p.auth_method, "None");
	fx_free(f);

	f = fx_new();
	assert_int_equal(neg(f, SEC, true, "CHAP,None", n), 0);
	assert_answer(&f->tb, "AuthMethod", "CHAP");
	assert_string_equal(f->p.auth_method, "CHAP");
	fx_free(f);

	/* NULL auth_methods means "None" */
	f = fx_new();
	assert_int_equal(neg(f, SEC, true, NULL, n), 0);
	assert_answer(&f->tb, "AuthMethod", "None");
	fx_free(f);

	/* the initiator's order of preference wins */
	f = fx_new();
	const char *n2[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T,
			     "AuthMethod=KRB5,None,CHAP", NULL };
	assert_int_equal(neg(f, SEC, true, "CHAP,None", n2), 0);
	assert_answer(&f->tb, "AuthMethod", "None");
	fx_free(f);

	/* nothing acceptable: Reject and authentication failure */
	f = fx_new();
	const char *n3[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T,
			     "AuthMethod=KRB5,SRP", NULL };
	assert_int_equal(neg(f, SEC, true, "CHAP", n3), ISCSI_LOGIN_STATUS_AUTH_FAILED);
	assert_answer(&f->tb, "AuthMethod", "Reject");
	assert_string_equal(f->p.auth_method, "");
	fx_free(f);

	/* None required but the initiator only does CHAP */
	f = fx_new();
	const char *n4[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, "AuthMethod=CHAP", NULL };
	assert_int_equal(neg(f, SEC, true, "None", n4), ISCSI_LOGIN_STATUS_AUTH_FAILED);
	fx_free(f);

	/* CHAP keys are left to the caller in the security stage */
	f = fx_new();
	const char *n5[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, "AuthMethod=CHAP",
			     "CHAP_A=5", NULL };
	assert_int_equal(neg(f, SEC, true, "CHAP", n5), 0);
	assert_null(resp_get(&f->tb, "CHAP_A"));
	assert_int_equal(resp_count(&f->tb), 1);
	fx_reset_resp(f);
	const char *n6[] = { "CHAP_N=user", "CHAP_R=0x0123456789abcdef0123456789abcdef", NULL };
	assert_int_equal(neg(f, SEC, true, "CHAP", n6), 0);
	assert_int_equal(resp_count(&f->tb), 0);
	fx_free(f);
}

/* ---- declaratives and names ---- */

static void test_declaratives(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *a[] = { "InitiatorName=" IQN_I, "InitiatorAlias=host1 (rack 4)",
			    "TargetName=" IQN_T, "SessionType=Normal", NULL };
	assert_int_equal(neg(f, SEC, true, "None", a), 0);
	assert_int_equal(resp_count(&f->tb), 0);          /* declaratives: no answers */
	assert_string_equal(f->p.initiator_name, IQN_I);
	assert_string_equal(f->p.initiator_alias, "host1 (rack 4)");
	assert_string_equal(f->p.target_name, IQN_T);
	assert_int_equal(f->p.session_type, ISCSI_SESSION_NORMAL);

	/* MaxRecvDataSegmentLength: recorded as our send limit, ours declared
	 * once in return */
	const char *b[] = { "MaxRecvDataSegmentLength=65536", NULL };
	assert_int_equal(neg(f, OPS, true, "None", b), 0);
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "262144");
	assert_int_equal(f->p.max_xmit_dsl, 65536);
	assert_int_equal(f->p.max_recv_dsl, 262144);
	/* finish does not declare it a second time */
	fx_reset_resp(f);
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);
	assert_null(resp_get(&f->tb, "MaxRecvDataSegmentLength"));
	fx_free(f);

	/* out of range: Reject, the default 8192 stays */
	f = fx_new();
	const char *c[] = { "MaxRecvDataSegmentLength=511", NULL };
	assert_int_equal(neg_normal(f, c), 0);
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "Reject");
	assert_int_equal(f->p.max_xmit_dsl, 8192);
	/* not declared yet: finish declares it */
	fx_reset_resp(f);
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "262144");
	fx_free(f);

	f = fx_new();
	const char *c2[] = { "MaxRecvDataSegmentLength=16777216", NULL };
	assert_int_equal(neg_normal(f, c2), 0);
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "Reject");
	fx_free(f);
}

static void test_names_required_and_checked(void **state)
{
	(void)state;
	/* no InitiatorName in the first request */
	struct fx *f = fx_new();
	const char *a[] = { "TargetName=" IQN_T, "AuthMethod=None", NULL };
	assert_int_equal(neg(f, SEC, true, "None", a), ISCSI_LOGIN_STATUS_MISSING_PARAM);
	fx_free(f);

	/* normal session without TargetName */
	f = fx_new();
	const char *b[] = { "InitiatorName=" IQN_I, "SessionType=Normal", NULL };
	assert_int_equal(neg(f, SEC, true, "None", b), ISCSI_LOGIN_STATUS_MISSING_PARAM);
	fx_free(f);
	/* same, SessionType defaulted */
	f = fx_new();
	const char *b2[] = { "InitiatorName=" IQN_I, NULL };
	assert_int_equal(neg(f, SEC, true, "None", b2), ISCSI_LOGIN_STATUS_MISSING_PARAM);
	assert_int_equal(f->p.session_type, ISCSI_SESSION_NORMAL);
	fx_free(f);

	/* discovery needs no TargetName */
	f = fx_new();
	const char *c[] = { "InitiatorName=" IQN_I, "SessionType=Discovery", NULL };
	assert_int_equal(neg(f, SEC, true, "None", c), 0);
	assert_int_equal(f->p.session_type, ISCSI_SESSION_DISCOVERY);
	fx_free(f);

	/* invalid initiator name */
	f = fx_new();
	const char *d[] = { "InitiatorName=my initiator", "TargetName=" IQN_T, NULL };
	assert_int_equal(neg(f, SEC, true, "None", d), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
	f = fx_new();
	const char *d2[] = { "InitiatorName=", "TargetName=" IQN_T, NULL };
	assert_int_equal(neg(f, SEC, true, "None", d2), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);

	/* name length: 223 ok, 224 is an error (for both names) */
	char iname[300], tname[300];
	strcpy(iname, "InitiatorName=iqn.2001-04.com.example:");
	size_t l = strlen(iname);
	memset(iname + l, 'i', 14 + 223 - l);
	iname[14 + 223] = '\0';
	strcpy(tname, "TargetName=iqn.2001-04.com.example:");
	l = strlen(tname);
	memset(tname + l, 't', 11 + 223 - l);
	tname[11 + 223] = '\0';
	f = fx_new();
	const char *e[] = { iname, tname, NULL };
	assert_int_equal(neg(f, SEC, true, "None", e), 0);
	assert_int_equal(strlen(f->p.initiator_name), 223);
	assert_int_equal(strlen(f->p.target_name), 223);
	fx_free(f);
	iname[14 + 223] = 'i';
	iname[14 + 224] = '\0';
	f = fx_new();
	assert_int_equal(neg(f, SEC, true, "None", e), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
	iname[14 + 223] = '\0';
	tname[11 + 223] = 't';
	tname[11 + 224] = '\0';
	f = fx_new();
	assert_int_equal(neg(f, SEC, true, "None", e), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
}

static void test_session_type(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *a[] = { "InitiatorName=" IQN_I, "SessionType=discovery", NULL };
	assert_int_equal(neg(f, SEC, true, "None", a), ISCSI_LOGIN_STATUS_SESSION_TYPE);
	fx_free(f);

	/* SessionType at the end still governs the keys before it */
	f = fx_new();
	const char *b[] = { "InitiatorName=" IQN_I, "MaxBurstLength=65536",
			    "SessionType=Discovery", NULL };
	assert_int_equal(neg(f, OPS, true, "None", b), 0);
	assert_answer(&f->tb, "MaxBurstLength", "Irrelevant");
	assert_int_equal(f->p.max_burst, 262144);
	fx_free(f);

	/* defaulted to Normal by the first request, then Discovery: error */
	f = fx_new();
	const char *c1[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, NULL };
	const char *c2[] = { "SessionType=Discovery", NULL };
	assert_int_equal(neg(f, SEC, true, "None", c1), 0);
	assert_int_equal(neg(f, OPS, true, "None", c2), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
}

/* ---- unknown keys, irrelevance, stages ---- */

static void test_not_understood(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *a[] = { "X-com.cisco.PingTimeout=5", "X#org.example.key=1", "FooBar=Yes",
			    "headerdigest=None", "InitiatorRecvDataSegmentLength=8192", NULL };
	assert_int_equal(neg_normal(f, a), 0);
	assert_answer(&f->tb, "X-com.cisco.PingTimeout", "NotUnderstood");
	assert_answer(&f->tb, "X#org.example.key", "NotUnderstood");
	assert_answer(&f->tb, "FooBar", "NotUnderstood");
	assert_answer(&f->tb, "headerdigest", "NotUnderstood");    /* keys are case sensitive */
	assert_answer(&f->tb, "InitiatorRecvDataSegmentLength", "NotUnderstood");
	assert_int_equal(resp_count(&f->tb), 5);
	fx_free(f);

	/* also in the security stage */
	f = fx_new();
	const char *b[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, "X-vendor=1",
			    "AuthMethod=None", NULL };
	assert_int_equal(neg(f, SEC, true, "None", b), 0);
	assert_answer(&f->tb, "X-vendor", "NotUnderstood");
	fx_free(f);
}

static void test_discovery_irrelevant(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *a[] = {
		"MaxConnections=1", "InitialR2T=Yes", "ImmediateData=No", "MaxBurstLength=262144",
		"FirstBurstLength=65536", "MaxOutstandingR2T=1", "DataPDUInOrder=Yes",
		"DataSequenceInOrder=Yes", "TaskReporting=RFC3720", "iSCSIProtocolLevel=1",
		"RDMAExtensions=Yes",
		/* relevant in discovery: */
		"HeaderDigest=CRC32C,None", "DataDigest=None", "DefaultTime2Wait=5",
		"DefaultTime2Retain=0", "ErrorRecoveryLevel=0", "MaxRecvDataSegmentLength=32768",
		NULL };
	assert_int_equal(neg_discovery(f, a), 0);
	for (int i = 0; i < 11; i++) {
		char key[64];
		const char *eq = strchr(a[i], '=');
		memcpy(key, a[i], (size_t)(eq - a[i]));
		key[eq - a[i]] = '\0';
		assert_answer(&f->tb, key, "Irrelevant");
	}
	assert_answer(&f->tb, "HeaderDigest", "CRC32C");
	assert_answer(&f->tb, "DataDigest", "None");
	assert_answer(&f->tb, "DefaultTime2Wait", "5");
	assert_answer(&f->tb, "DefaultTime2Retain", "0");
	assert_answer(&f->tb, "ErrorRecoveryLevel", "0");
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "262144");
	assert_int_equal(f->p.max_xmit_dsl, 32768);
	assert_true(f->p.immediate_data);            /* untouched */
	/* no offers in a discovery session */
	fx_reset_resp(f);
	f->lim.immediate_data = false;
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 0);
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);
	fx_free(f);
}

static void test_stage_rules(void **state)
{
	(void)state;
	const char *names[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, NULL };

	/* operational key in the security stage: protocol error */
	struct fx *f = fx_new();
	const char *a[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, "AuthMethod=None",
			    "MaxRecvDataSegmentLength=8192", NULL };
	assert_int_equal(neg(f, SEC, true, "None", a), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
	f = fx_new();
	const char *a2[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, "HeaderDigest=None", NULL };
	assert_int_equal(neg(f, SEC, true, "None", a2), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);

	/* AuthMethod / CHAP keys in the operational stage */
	f = fx_new();
	assert_int_equal(neg(f, SEC, true, "None", names), 0);
	const char *b[] = { "AuthMethod=None", NULL };
	assert_int_equal(neg(f, OPS, true, "None", b), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
	f = fx_new();
	assert_int_equal(neg(f, SEC, true, "None", names), 0);
	const char *c[] = { "CHAP_A=5", NULL };
	assert_int_equal(neg(f, OPS, true, "None", c), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);

	/* SendTargets belongs to full feature phase */
	f = fx_new();
	assert_int_equal(neg(f, SEC, true, "None", names), 0);
	const char *d[] = { "SendTargets=All", NULL };
	assert_int_equal(neg(f, OPS, true, "None", d), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);

	/* Any-Stage keys are fine in both stages; target-only keys ignored */
	f = fx_new();
	const char *e[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, "TargetAlias=x",
			    "TargetPortalGroupTag=1", "TargetAddress=10.0.0.1:3260,1", NULL };
	assert_int_equal(neg(f, OPS, true, "None", e), 0);
	assert_int_equal(resp_count(&f->tb), 0);
	fx_free(f);

	/* bad stage number */
	f = fx_new();
	assert_int_equal(neg(f, ISCSI_STAGE_FULL, true, "None", names), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
}

static void test_non_leading_connection(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *a[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, "SessionType=Normal",
			    "HeaderDigest=CRC32C", "MaxRecvDataSegmentLength=16384",
			    "MaxConnections=2", "MaxBurstLength=65536", "ErrorRecoveryLevel=0",
			    "OFMarker=No", NULL };
	assert_int_equal(neg(f, OPS, false, "None", a), 0);
	assert_answer(&f->tb, "HeaderDigest", "CRC32C");          /* per connection */
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "262144");
	assert_answer(&f->tb, "MaxConnections", "Irrelevant");    /* leading only */
	assert_answer(&f->tb, "MaxBurstLength", "Irrelevant");
	assert_answer(&f->tb, "ErrorRecoveryLevel", "Irrelevant");
	assert_answer(&f->tb, "OFMarker", "No");
	assert_int_equal(f->p.max_burst, 262144);
	assert_int_equal(f->p.max_xmit_dsl, 16384);
	/* no offers on a non-leading connection */
	fx_reset_resp(f);
	f->lim.immediate_data = false;
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, false, &f->tb), 0);
	assert_int_equal(resp_count(&f->tb), 0);
	fx_free(f);
}

static void test_obsolete_and_extension_keys(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *a[] = { "OFMarker=Yes", "IFMarker=No", "OFMarkInt=2048~8192",
			    "IFMarkInt=2048", "RDMAExtensions=Yes", "OFMarker2=1", NULL };
	assert_int_equal(neg_normal(f, a), 0);
	assert_answer(&f->tb, "OFMarker", "No");
	assert_answer(&f->tb, "IFMarker", "No");
	assert_answer(&f->tb, "OFMarkInt", "Reject");
	assert_answer(&f->tb, "IFMarkInt", "Reject");
	assert_answer(&f->tb, "RDMAExtensions", "No");
	assert_false(f->p.rdma_extensions);
	fx_free(f);

	/* an iSER portal answers Yes */
	f = fx_new();
	f->lim.rdma_extensions = true;
	const char *b[] = { "RDMAExtensions=Yes", NULL };
	assert_int_equal(neg_normal(f, b), 0);
	assert_answer(&f->tb, "RDMAExtensions", "Yes");
	assert_true(f->p.rdma_extensions);
	fx_free(f);
}

static void test_empty_values(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *a[] = { "HeaderDigest=", "MaxBurstLength=", "InitialR2T=", "TaskReporting=",
			    "MaxRecvDataSegmentLength=", NULL };
	assert_int_equal(neg_normal(f, a), 0);
	assert_answer(&f->tb, "HeaderDigest", "Reject");
	assert_answer(&f->tb, "MaxBurstLength", "Reject");
	assert_answer(&f->tb, "InitialR2T", "Reject");
	assert_answer(&f->tb, "TaskReporting", "Reject");
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "Reject");
	fx_free(f);

	f = fx_new();
	const char *b[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, "AuthMethod=", NULL };
	assert_int_equal(neg(f, SEC, true, "None", b), ISCSI_LOGIN_STATUS_AUTH_FAILED);
	assert_answer(&f->tb, "AuthMethod", "Reject");
	fx_free(f);
}

/* ---- repeats ---- */

static void test_duplicates(void **state)
{
	(void)state;
	/* twice in one request */
	struct fx *f = fx_new();
	const char *a[] = { "MaxBurstLength=65536", "MaxBurstLength=65536", NULL };
	assert_int_equal(neg_normal(f, a), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
	f = fx_new();
	const char *a2[] = { "InitiatorName=" IQN_I, "InitiatorName=" IQN_I, NULL };
	assert_int_equal(neg(f, SEC, true, "None", a2), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
	f = fx_new();
	const char *a3[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, "SessionType=Normal",
			     "SessionType=Normal", NULL };
	assert_int_equal(neg(f, SEC, true, "None", a3), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);

	/* renegotiation with another value in a later request of the login */
	f = fx_new();
	const char *b1[] = { "MaxBurstLength=65536", NULL };
	const char *b2[] = { "MaxBurstLength=131072", NULL };
	assert_int_equal(neg_normal(f, b1), 0);
	assert_int_equal(neg(f, OPS, true, "None", b2), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
	f = fx_new();
	const char *c1[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, NULL };
	const char *c2[] = { "InitiatorName=iqn.2001-04.com.other:x", NULL };
	assert_int_equal(neg(f, SEC, true, "None", c1), 0);
	assert_int_equal(neg(f, OPS, true, "None", c2), ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);

	/* the same value again (libiscsi re-sends after CHAP / after T=0) is
	 * answered again, identically */
	f = fx_new();
	const char *d[] = { "MaxBurstLength=65536", "HeaderDigest=None", NULL };
	assert_int_equal(neg_normal(f, d), 0);
	assert_answer(&f->tb, "MaxBurstLength", "65536");
	fx_reset_resp(f);
	assert_int_equal(neg(f, OPS, true, "None", d), 0);
	assert_answer(&f->tb, "MaxBurstLength", "65536");
	assert_answer(&f->tb, "HeaderDigest", "None");
	fx_free(f);

	/* MaxRecvDataSegmentLength may be re-declared with a new value */
	f = fx_new();
	const char *e1[] = { "MaxRecvDataSegmentLength=8192", NULL };
	const char *e2[] = { "MaxRecvDataSegmentLength=65536", NULL };
	assert_int_equal(neg_normal(f, e1), 0);
	assert_int_equal(f->p.max_xmit_dsl, 8192);
	fx_reset_resp(f);
	assert_int_equal(neg(f, OPS, true, "None", e2), 0);
	assert_int_equal(f->p.max_xmit_dsl, 65536);
	assert_null(resp_get(&f->tb, "MaxRecvDataSegmentLength"));   /* declared once */
	fx_free(f);
}

/* ---- complete logins as real initiators send them ---- */

/* open-iscsi (iscsid), no CHAP: the first PDU is in the security stage with
 * the names and AuthMethod=None, the second carries every operational key
 * with iscsid's default node settings. */
static void test_open_iscsi_login(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	f->lim.max_recv_dsl = 262144;
	iscsi_params_init(&f->p, &f->lim);

	const char *sec[] = { "InitiatorName=iqn.1993-08.org.debian:01:5d7bc3d2c5a1",
			      "InitiatorAlias=client", "TargetName=" IQN_T,
			      "SessionType=Normal", "AuthMethod=None", NULL };
	assert_int_equal(neg(f, SEC, true, "None", sec), 0);
	assert_answer(&f->tb, "AuthMethod", "None");
	assert_int_equal(resp_count(&f->tb), 1);

	fx_reset_resp(f);
	const char *ops[] = {
		"HeaderDigest=None", "DataDigest=None", "DefaultTime2Wait=2",
		"DefaultTime2Retain=0", "IFMarker=No", "OFMarker=No", "ErrorRecoveryLevel=0",
		"InitialR2T=No", "ImmediateData=Yes", "MaxBurstLength=16776192",
		"FirstBurstLength=262144", "MaxOutstandingR2T=1", "MaxConnections=1",
		"DataPDUInOrder=Yes", "DataSequenceInOrder=Yes",
		"MaxRecvDataSegmentLength=262144", NULL };
	assert_int_equal(neg(f, OPS, true, "None", ops), 0);
	assert_answer(&f->tb, "HeaderDigest", "None");
	assert_answer(&f->tb, "DataDigest", "None");
	assert_answer(&f->tb, "DefaultTime2Wait", "2");
	assert_answer(&f->tb, "DefaultTime2Retain", "0");
	assert_answer(&f->tb, "IFMarker", "No");
	assert_answer(&f->tb, "OFMarker", "No");
	assert_answer(&f->tb, "ErrorRecoveryLevel", "0");
	assert_answer(&f->tb, "InitialR2T", "No");
	assert_answer(&f->tb, "ImmediateData", "Yes");
	assert_answer(&f->tb, "MaxBurstLength", "1048576");
	assert_answer(&f->tb, "FirstBurstLength", "262144");
	assert_answer(&f->tb, "MaxOutstandingR2T", "1");      /* open-iscsi insists on 1 */
	assert_answer(&f->tb, "MaxConnections", "1");
	assert_answer(&f->tb, "DataPDUInOrder", "Yes");
	assert_answer(&f->tb, "DataSequenceInOrder", "Yes");
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "262144");
	assert_int_equal(resp_count(&f->tb), 16);

	/* the initiator asks for full feature phase: nothing to offer */
	uint32_t before = f->tb.len;
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 0);
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);
	assert_int_equal(f->tb.len, before);

	const struct iscsi_params *p = &f->p;
	assert_int_equal(p->session_type, ISCSI_SESSION_NORMAL);
	assert_string_equal(p->initiator_alias, "client");
	assert_string_equal(p->auth_method, "None");
	assert_int_equal(p->max_xmit_dsl, 262144);
	assert_int_equal(p->max_recv_dsl, 262144);
	assert_int_equal(p->max_burst, 1048576);
	assert_int_equal(p->first_burst, 262144);
	assert_false(p->initial_r2t);
	assert_true(p->immediate_data);
	assert_false(p->header_digest);
	assert_false(p->data_digest);
	assert_int_equal(p->default_time2wait, 2);
	assert_int_equal(p->default_time2retain, 0);
	fx_free(f);
}

/* open-iscsi discovery (iscsiadm -m discovery -t st): names in the security
 * stage, then the few keys it sends for discovery, then SendTargets in a Text
 * request. */
static void test_open_iscsi_discovery(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *sec[] = { "InitiatorName=iqn.1993-08.org.debian:01:5d7bc3d2c5a1",
			      "InitiatorAlias=client", "SessionType=Discovery",
			      "AuthMethod=None", NULL };
	assert_int_equal(neg(f, SEC, true, "None", sec), 0);
	assert_answer(&f->tb, "AuthMethod", "None");
	fx_reset_resp(f);
	const char *ops[] = { "HeaderDigest=None", "DataDigest=None", "DefaultTime2Wait=2",
			      "DefaultTime2Retain=0", "IFMarker=No", "OFMarker=No",
			      "ErrorRecoveryLevel=0", "MaxRecvDataSegmentLength=32768", NULL };
	assert_int_equal(neg(f, OPS, true, "None", ops), 0);
	assert_int_equal(resp_count(&f->tb), 8);
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "262144");
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);

	/* full feature phase Text request */
	fx_reset_resp(f);
	struct req r;
	const char *txt[] = { "SendTargets=All", NULL };
	req_build(&r, txt);
	assert_int_equal(iscsi_negotiate_text(&f->p, &f->lim, r.kv, (unsigned)r.n, &f->tb), 0);
	assert_int_equal(f->tb.len, 0);                  /* left to the caller */
	fx_free(f);
}

/* libiscsi without CHAP: starts in the operational stage with the names and
 * every key in one PDU (T=1, NSG=3); if answered with T=0 it sends them all
 * again unchanged. */
static void test_libiscsi_login(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *ops[] = {
		"InitiatorName=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test",
		"TargetName=" IQN_T, "SessionType=Normal", "HeaderDigest=None,CRC32C",
		"DataDigest=None", "InitialR2T=Yes", "ImmediateData=Yes",
		"MaxBurstLength=262144", "FirstBurstLength=262144", "DefaultTime2Wait=2",
		"DefaultTime2Retain=0", "MaxOutstandingR2T=1", "ErrorRecoveryLevel=0",
		"IFMarker=No", "OFMarker=No", "MaxConnections=1",
		"MaxRecvDataSegmentLength=262144", "DataPDUInOrder=Yes",
		"DataSequenceInOrder=Yes", NULL };
	assert_int_equal(neg(f, OPS, true, "None", ops), 0);
	assert_answer(&f->tb, "HeaderDigest", "None");
	assert_answer(&f->tb, "MaxBurstLength", "262144");
	assert_answer(&f->tb, "FirstBurstLength", "262144");
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "262144");
	int first = resp_count(&f->tb);
	assert_int_equal(first, 16);
	fx_reset_resp(f);
	assert_int_equal(neg(f, OPS, true, "None", ops), 0);   /* the re-send */
	assert_int_equal(resp_count(&f->tb), first - 1);      /* MRDSL declared once */
	assert_answer(&f->tb, "FirstBurstLength", "262144");
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);
	fx_free(f);

	/* with CHAP: names in the security stage, again in the operational one */
	f = fx_new();
	const char *sec1[] = {
		"InitiatorName=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test",
		"TargetName=" IQN_T, "SessionType=Normal", "AuthMethod=CHAP,None", NULL };
	assert_int_equal(neg(f, SEC, true, "CHAP", sec1), 0);
	assert_answer(&f->tb, "AuthMethod", "CHAP");
	const char *sec2[] = { "CHAP_A=5", NULL };
	assert_int_equal(neg(f, SEC, true, "CHAP", sec2), 0);
	fx_reset_resp(f);
	assert_int_equal(neg(f, OPS, true, "CHAP", ops), 0);
	assert_answer(&f->tb, "InitialR2T", "Yes");
	fx_free(f);
}

/* ---- target offers ---- */

static void test_offers(void **state)
{
	(void)state;
	/* We refuse immediate data and the initiator did not negotiate it: the
	 * default Yes must be turned down by an offer before FFP. */
	struct fx *f = fx_new();
	f->lim.immediate_data = false;
	f->lim.max_burst = 131072;
	f->lim.first_burst = 16384;
	const char *a[] = { "HeaderDigest=None", "MaxRecvDataSegmentLength=8192",
			    "InitialR2T=No", NULL };
	assert_int_equal(neg_normal(f, a), 0);
	fx_reset_resp(f);
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 3);
	assert_answer(&f->tb, "ImmediateData", "No");
	assert_answer(&f->tb, "MaxBurstLength", "131072");
	assert_answer(&f->tb, "FirstBurstLength", "16384");
	assert_null(resp_get(&f->tb, "MaxRecvDataSegmentLength"));   /* already declared */
	/* the answers; a smaller burst is fine (Minimum) */
	fx_reset_resp(f);
	const char *b[] = { "ImmediateData=No", "MaxBurstLength=65536", "FirstBurstLength=8192", NULL };
	assert_int_equal(neg(f, OPS, true, "None", b), 0);
	assert_int_equal(resp_count(&f->tb), 0);                     /* answers are not answered */
	assert_false(f->p.immediate_data);
	assert_int_equal(f->p.max_burst, 65536);
	assert_int_equal(f->p.first_burst, 8192);
	assert_int_equal(f->p.offered, 0);
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);
	/* nothing left to offer */
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 0);
	fx_free(f);

	/* InitialR2T=Yes (default) and ImmediateData=No leave no unsolicited
	 * data: FirstBurstLength is irrelevant and not offered. */
	f = fx_new();
	f->lim.immediate_data = false;
	f->lim.first_burst = 16384;
	assert_int_equal(neg_normal(f, (const char *[]){ "HeaderDigest=None", NULL }), 0);
	fx_reset_resp(f);
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 1);
	assert_answer(&f->tb, "ImmediateData", "No");
	assert_null(resp_get(&f->tb, "FirstBurstLength"));
	fx_free(f);

	/* answers violating the result functions */
	f = fx_new();
	f->lim.immediate_data = false;
	assert_int_equal(neg_normal(f, (const char *[]){ "HeaderDigest=None", NULL }), 0);
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 1);
	assert_int_equal(neg(f, OPS, true, "None", (const char *[]){ "ImmediateData=Yes", NULL }),
			 ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);
	f = fx_new();
	f->lim.max_burst = 131072;
	assert_int_equal(neg_normal(f, (const char *[]){ "HeaderDigest=None", NULL }), 0);
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 1);
	assert_int_equal(neg(f, OPS, true, "None",
			     (const char *[]){ "MaxBurstLength=262144", NULL }),
			 ISCSI_LOGIN_STATUS_INIT_ERR);
	fx_free(f);

	/* never answered: the offered values stand */
	f = fx_new();
	f->lim.immediate_data = false;
	f->lim.max_burst = 131072;
	assert_int_equal(neg_normal(f, (const char *[]){ "HeaderDigest=None", NULL }), 0);
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 2);
	assert_int_equal(neg(f, OPS, true, "None", (const char *[]){ "DataDigest=None", NULL }), 0);
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 0);  /* not twice */
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);
	assert_false(f->p.immediate_data);
	assert_int_equal(f->p.max_burst, 131072);
	assert_int_equal(f->p.offered, 0);
	fx_free(f);

	/* Reject keeps the RFC default */
	f = fx_new();
	f->lim.immediate_data = false;
	assert_int_equal(neg_normal(f, (const char *[]){ "HeaderDigest=None", NULL }), 0);
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 1);
	assert_false(f->p.immediate_data);
	assert_int_equal(neg(f, OPS, true, "None", (const char *[]){ "ImmediateData=Reject", NULL }), 0);
	assert_true(f->p.immediate_data);
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);
	fx_free(f);

	/* the MRDSL declaration goes out with the offers when not done yet */
	f = fx_new();
	assert_int_equal(neg_normal(f, (const char *[]){ "HeaderDigest=None", NULL }), 0);
	fx_reset_resp(f);
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), 0);
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "262144");
	fx_reset_resp(f);
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), 0);
	assert_int_equal(f->tb.len, 0);
	fx_free(f);
}

/* ---- full feature phase text ---- */

static void test_negotiate_text(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	struct req r;
	const char *a[] = { "MaxRecvDataSegmentLength=131072", "X-com.example.foo=1",
			    "SendTargets=All", "InitiatorAlias=renamed", "MaxBurstLength=4096",
			    "TargetAlias=x", "HeaderDigest=CRC32C", NULL };
	req_build(&r, a);
	assert_int_equal(iscsi_negotiate_text(&f->p, &f->lim, r.kv, (unsigned)r.n, &f->tb), 0);
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "262144");
	assert_answer(&f->tb, "X-com.example.foo", "NotUnderstood");
	assert_answer(&f->tb, "MaxBurstLength", "Reject");
	assert_answer(&f->tb, "HeaderDigest", "Reject");
	assert_null(resp_get(&f->tb, "SendTargets"));
	assert_null(resp_get(&f->tb, "TargetAlias"));
	assert_null(resp_get(&f->tb, "InitiatorAlias"));
	assert_int_equal(resp_count(&f->tb), 4);
	assert_int_equal(f->p.max_xmit_dsl, 131072);
	assert_int_equal(f->p.max_burst, 262144);
	assert_string_equal(f->p.initiator_alias, "renamed");

	/* invalid declaration */
	fx_reset_resp(f);
	const char *b[] = { "MaxRecvDataSegmentLength=100", NULL };
	req_build(&r, b);
	assert_int_equal(iscsi_negotiate_text(&f->p, &f->lim, r.kv, (unsigned)r.n, &f->tb), 0);
	assert_answer(&f->tb, "MaxRecvDataSegmentLength", "Reject");
	assert_int_equal(f->p.max_xmit_dsl, 131072);

	/* repeated key in one request */
	fx_reset_resp(f);
	const char *c[] = { "MaxRecvDataSegmentLength=8192", "MaxRecvDataSegmentLength=8192", NULL };
	req_build(&r, c);
	assert_int_equal(iscsi_negotiate_text(&f->p, &f->lim, r.kv, (unsigned)r.n, &f->tb), -EPROTO);
	fx_free(f);
}

/* ---- robustness: random text never crashes parse or negotiation ---- */

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t rnd32(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}

static void test_random_text(void **state)
{
	/* Structured random requests: real keys and values, mixed with junk,
	 * missing separators and flipped bytes, so that both the parser's error
	 * paths and the negotiation behind it get exercised. */
	static const char *const keys_[] = {
		"HeaderDigest", "DataDigest", "MaxConnections", "SendTargets", "TargetName",
		"InitiatorName", "TargetAlias", "InitiatorAlias", "TargetAddress",
		"TargetPortalGroupTag", "InitialR2T", "ImmediateData",
		"MaxRecvDataSegmentLength", "MaxBurstLength", "FirstBurstLength",
		"DefaultTime2Wait", "DefaultTime2Retain", "MaxOutstandingR2T", "DataPDUInOrder",
		"DataSequenceInOrder", "ErrorRecoveryLevel", "SessionType", "AuthMethod",
		"OFMarker", "IFMarker", "OFMarkInt", "IFMarkInt", "TaskReporting",
		"iSCSIProtocolLevel", "RDMAExtensions", "CHAP_A", "X-x", "Junk", "",
	};
	static const char *const vals[] = {
		"Yes", "No", "None", "CRC32C", "CHAP", "Reject", "Irrelevant", "0", "1", "512",
		"65536", "16777215", "16777216", "0x1000", "0x", "Normal", "Discovery",
		"iqn.2001-04.com.x:y", "RFC3720", "", "=", "-1",
	};
	const unsigned nk = sizeof(keys_) / sizeof(keys_[0]), nv = sizeof(vals) / sizeof(vals[0]);
	char buf[2048];
	struct iscsi_kv kv[64];
	unsigned parsed = 0, accepted = 0;

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		int len = 0;
		if (rnd32() & 1)
			len += snprintf(buf, sizeof(buf), "InitiatorName=" IQN_I "%cTargetName=" IQN_T "%c",
					0, 0);
		int pairs = (int)(rnd32() % 10);
		for (int i = 0; i < pairs && len < 1500; i++) {
			len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%s%s%s",
					keys_[rnd32() % nk], (rnd32() % 16) ? "=" : "",
					vals[rnd32() % nv]);
			if (rnd32() % 3 == 0)
				len += snprintf(buf + len, sizeof(buf) - (size_t)len, ",%s",
						vals[rnd32() % nv]);
			if (rnd32() % 16)
				buf[len++] = '\0';
		}
		if (len && rnd32() % 4 == 0)
			buf[rnd32() % (unsigned)len] = (char)rnd32();
		uint32_t ulen = (uint32_t)len;

		int n = iscsi_text_parse(buf, ulen, kv, 64);
		if (n < 0) {
			assert_true(n == -EINVAL || n == -E2BIG);
			continue;
		}
		parsed++;
		for (int i = 0; i < n; i++) {
			assert_true(kv[i].key >= buf && kv[i].key < buf + ulen);
			assert_true(kv[i].value > kv[i].key && kv[i].value <= buf + ulen);
			assert_true(strlen(kv[i].key) >= 1 && strlen(kv[i].key) <= ISCSI_KEY_MAX);
			assert_true(kv[i].value + strlen(kv[i].value) < buf + ulen);
		}
		struct fx *f = fx_new();
		int rc = iscsi_negotiate(&f->p, &f->lim, (rnd32() & 1) ? SEC : OPS, rnd32() & 1,
					 "CHAP,None", kv, (unsigned)n, &f->tb);
		assert_true(rc == 0 || (rc >= 0x0200 && rc <= 0x0302));
		accepted += rc == 0;
		(void)resp_count(&f->tb);          /* well-formed answers */
		assert_true(iscsi_params_offer(&f->p, &f->lim, true, &f->tb) >= 0);
		(void)iscsi_params_finish(&f->p, &f->lim, &f->tb);
		assert_true(f->p.max_burst >= 512 && f->p.max_burst < (1u << 24));
		assert_true(f->p.max_recv_dsl == 262144);
		assert_true(strlen(f->p.initiator_name) <= ISCSI_NAME_MAX);
		f->tb.len = 0;
		rc = iscsi_negotiate_text(&f->p, &f->lim, kv, (unsigned)n, &f->tb);
		assert_true(rc == 0 || rc == -EPROTO);
		fx_free(f);
	}
	/* the generator must reach the interesting paths, not only errors */
	assert_true(parsed > 5000);
	assert_true(accepted > 1000);
}

/* ---- response buffer limits ---- */

static void test_response_full(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	const char *names[] = { "InitiatorName=" IQN_I, "TargetName=" IQN_T, NULL };
	assert_int_equal(neg(f, SEC, true, "None", names), 0);
	iscsi_textbuf_free(&f->tb);
	assert_int_equal(iscsi_textbuf_init(&f->tb, 64), 0);
	/* each answer "X-kNN=NotUnderstood\0" is 20 bytes: 4 do not fit in 64 */
	const char *a[] = { "X-k01=1", "X-k02=1", "X-k03=1", "X-k04=1", NULL };
	assert_int_equal(neg(f, OPS, true, "None", a), ISCSI_LOGIN_STATUS_NO_RESOURCES);
	assert_true(f->tb.len <= 64);

	struct req r;
	f->tb.len = 0;
	req_build(&r, a);
	assert_int_equal(iscsi_negotiate_text(&f->p, &f->lim, r.kv, (unsigned)r.n, &f->tb), -E2BIG);

	/* offer/finish with a buffer that cannot take the declaration */
	iscsi_textbuf_free(&f->tb);
	assert_int_equal(iscsi_textbuf_init(&f->tb, 10), 0);
	assert_int_equal(iscsi_params_offer(&f->p, &f->lim, true, &f->tb), -E2BIG);
	assert_int_equal(iscsi_params_finish(&f->p, &f->lim, &f->tb), ISCSI_LOGIN_STATUS_NO_RESOURCES);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_textbuf),
		cmocka_unit_test(test_text_parse_good),
		cmocka_unit_test(test_text_parse_bad),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_params_init),
		cmocka_unit_test(test_bool_and_or),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_number_range_violations),
		cmocka_unit_test(test_first_burst_vs_max_burst),
		cmocka_unit_test(test_digest_lists),
		cmocka_unit_test(test_auth_method),
		cmocka_unit_test(test_declaratives),
		cmocka_unit_test(test_names_required_and_checked),
		cmocka_unit_test(test_session_type),
		cmocka_unit_test(test_not_understood),
		cmocka_unit_test(test_discovery_irrelevant),
		cmocka_unit_test(test_stage_rules),
		cmocka_unit_test(test_non_leading_connection),
		cmocka_unit_test(test_obsolete_and_extension_keys),
		cmocka_unit_test(test_empty_values),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_open_iscsi_login),
		cmocka_unit_test(test_open_iscsi_discovery),
		cmocka_unit_test(test_libiscsi_login),
		cmocka_unit_test(test_offers),
		cmocka_unit_test(test_negotiate_text),
		cmocka_unit_test(test_response_full),
		cmocka_unit_test(test_random_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
