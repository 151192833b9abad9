/* test_chap.c — digests (standard test vectors) and the CHAP state machine
 * (include/iscsi/chap.h) on its own: algorithm choice, known-challenge
 * responses computed by an independent implementation (Python hashlib),
 * mutual CHAP, and every refusal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "iscsi/chap.h"
#include "iscsi/hash.h"
#include "iscsi/pdu.h"

static void hex_of(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static void check_digest(enum hash_alg alg, const void *msg, size_t len, const char *want)
{
	struct hash_ctx h;
	uint8_t d[HASH_MAX_LEN];
	char s[2 * HASH_MAX_LEN + 1];

	hash_init(&h, alg);
	hash_update(&h, msg, len);
	hash_final(&h, d);
	hex_of(d, hash_len(alg), s);
	assert_string_equal(s, want);
}

static void check_str(enum hash_alg alg, const char *msg, const char *want)
{
	check_digest(alg, msg, strlen(msg), want);
}

static void test_md5_vectors(void **state)
{
	(void)state;
	/* RFC 1321 appendix A.5 */
	check_str(HASH_MD5, "", "d41d8cd98f00b204e9800998ecf8427e");
	check_str(HASH_MD5, "a", "0cc175b9c0f1b6a831c399e269772661");
	check_str(HASH_MD5, "abc", "900150983cd24fb0d6963f7d28e17f72");
	check_str(HASH_MD5, "message digest", "f96b697d7cb7938d525a2f31aaf161d0");
	check_str(HASH_MD5, "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b");
	check_str(HASH_MD5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		  "d174ab98d277d9f5a5611c2c9f419d9f");
	check_str(HASH_MD5, "1234567890123456789012345678901234567890123456789012345678901234"
		  "5678901234567890", "57edf4a22be3c955ac49da2e2107b67a");
	assert_int_equal(hash_len(HASH_MD5), 16);
}

static void test_sha256_vectors(void **state)
{
	(void)state;
	/* FIPS 180-4 examples (NIST CSRC) */
	check_str(HASH_SHA256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_str(HASH_SHA256, "abc",
		  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_str(HASH_SHA256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_int_equal(hash_len(HASH_SHA256), 32);
}

static void test_sha3_vectors(void **state)
{
	(void)state;
	/* FIPS 202 examples (NIST CSRC) */
	check_str(HASH_SHA3_256, "",
		  "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
	check_str(HASH_SHA3_256, "abc",
		  "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
	check_str(HASH_SHA3_256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "41c0dba2a9d6240849100376a8235e2c82e1b9998a999e21db32dd97496d3376");
	assert_int_equal(hash_len(HASH_SHA3_256), 32);
}

/* One million 'a', fed in uneven pieces: block and rate boundaries. */
static void test_million_a(void **state)
{
	static const struct { enum hash_alg alg; const char *want; } v[] = {
		{ HASH_MD5, "7707d6ae4e027c70eea2a935c2296f21" },
		{ HASH_SHA256, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
		{ HASH_SHA3_256, "5c8875ae474a3634ba4fd55ec85bffd661f32aca75c6d699d0cdcb6c115891c1" },
	};
	char *buf = malloc(1000000);

	(void)state;
	memset(buf, 'a', 1000000);
	for (unsigned i = 0; i < 3; i++) {
		struct hash_ctx h;
		uint8_t d[HASH_MAX_LEN];
		char s[2 * HASH_MAX_LEN + 1];
		size_t off = 0, step = 1;

		check_digest(v[i].alg, buf, 1000000, v[i].want);
		hash_init(&h, v[i].alg);
		while (off < 1000000) {
			size_t n = step < 1000000 - off ? step : 1000000 - off;

			hash_update(&h, buf + off, n);
			off += n;
			step = step * 7 % 1999 + 1;
		}
		hash_final(&h, d);
		hex_of(d, hash_len(v[i].alg), s);
		assert_string_equal(s, v[i].want);
	}
	free(buf);
}

static void test_ct_equal(void **state)
{
	uint8_t a[32], b[32];

	(void)state;
	for (int i = 0; i < 32; i++)
		a[i] = b[i] = (uint8_t)(i * 37);
	assert_true(chap_ct_equal(a, b, 32));
	assert_true(chap_ct_equal(a, b, 0));
	b[0] ^= 1;
	assert_false(chap_ct_equal(a, b, 32));
	assert_true(chap_ct_equal(a + 1, b + 1, 31));
	b[0] ^= 1;
	b[31] ^= 0x80;
	assert_false(chap_ct_equal(a, b, 32));
	assert_true(chap_ct_equal(a, b, 31));
}

static void test_decode(void **state)
{
	uint8_t out[2048];
	size_t len = 0;
	char big[2 + 1400 + 1];

	(void)state;
	assert_int_equal(chap_decode("0x0aFf10", out, sizeof(out), &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "\x0a\xff\x10", 3);
	assert_int_equal(chap_decode("0XabC", out, sizeof(out), &len), 0);   /* odd: 0x0abc */
	assert_int_equal(len, 2);
	assert_memory_equal(out, "\x0a\xbc", 2);
	assert_int_equal(chap_decode("0bAQID", out, sizeof(out), &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "\x01\x02\x03", 3);
	assert_int_equal(chap_decode("0Bq83vAQ==", out, sizeof(out), &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(out, "\xab\xcd\xef\x01", 4);
	assert_int_equal(chap_decode("0bq83vAa8=", out, sizeof(out), &len), 0);
	assert_int_equal(len, 5);
	/* malformed */
	assert_int_equal(chap_decode("", out, sizeof(out), &len), -EINVAL);
	assert_int_equal(chap_decode("0x", out, sizeof(out), &len), -EINVAL);
	assert_int_equal(chap_decode("abcd", out, sizeof(out), &len), -EINVAL);
	assert_int_equal(chap_decode("1x00", out, sizeof(out), &len), -EINVAL);
	assert_int_equal(chap_decode("0x12g4", out, sizeof(out), &len), -EINVAL);
	assert_int_equal(chap_decode("0x12 4", out, sizeof(out), &len), -EINVAL);
	assert_int_equal(chap_decode("0bAQI", out, sizeof(out), &len), -EINVAL);
	assert_int_equal(chap_decode("0bA=ID", out, sizeof(out), &len), -EINVAL);
	assert_int_equal(chap_decode("0b====", out, sizeof(out), &len), -EINVAL);
	assert_int_equal(chap_decode("0bAQ==AQID", out, sizeof(out), &len), -EINVAL);
	assert_int_equal(chap_decode("0bAQ*D", out, sizeof(out), &len), -EINVAL);
	/* limits */
	assert_int_equal(chap_decode("0x010203", out, 3, &len), 0);
	assert_int_equal(chap_decode("0x01020304", out, 3, &len), -E2BIG);
	assert_int_equal(chap_decode("0bAQIDBA==", out, 3, &len), -E2BIG);
	big[0] = '0';
	big[1] = 'b';
	memset(big + 2, 'A', 1368);       /* 1026 bytes */
	big[2 + 1368] = 0;
	assert_int_equal(chap_decode(big, out, CHAP_BINARY_MAX, &len), -E2BIG);
	big[2 + 1364] = 0;                /* 1023 bytes */
	assert_int_equal(chap_decode(big, out, CHAP_BINARY_MAX, &len), 0);
	assert_int_equal(len, 1023);
}

static void test_alg_map(void **state)
{
	enum hash_alg a;

	(void)state;
	assert_int_equal(chap_alg_of(5, &a), 0);
	assert_int_equal(a, HASH_MD5);
	assert_int_equal(chap_alg_of(7, &a), 0);
	assert_int_equal(a, HASH_SHA256);
	assert_int_equal(chap_alg_of(8, &a), 0);
	assert_int_equal(a, HASH_SHA3_256);
	assert_int_equal(chap_alg_of(6, &a), -ENOTSUP);   /* SHA-1: not accepted */
	assert_int_equal(chap_alg_of(0, &a), -ENOTSUP);
	assert_int_equal(chap_alg_of(4, &a), -ENOTSUP);
}

/* ---- the state machine ---- */

#define IN_SECRET  "Alice-Secret-4711"
#define OUT_SECRET "Target-Secret-0815"

static struct conf_account accounts[] = {
	{ "bob", "Bob-Secret-000001" },
	{ "alice", IN_SECRET },
	{ "alice", "Alice-Other-Secret" },
};
static struct conf_account outgoing = { "lich-target", OUT_SECRET };

struct ex {
	struct chap_state cs;
	struct chap_accounts acc;
	struct iscsi_textbuf tb;
	char text[4096];
	struct iscsi_kv kv[16];
	unsigned n;
	const char *why;
};

static void ex_init(struct ex *e, bool with_out)
{
	memset(e, 0, sizeof(*e));
	e->acc.incoming = accounts;
	e->acc.n_incoming = 3;
	e->acc.outgoing = with_out ? &outgoing : NULL;
	assert_int_equal(iscsi_textbuf_init(&e->tb, 8192), 0);
}

static void ex_fini(struct ex *e)
{
	iscsi_textbuf_free(&e->tb);
}

/* Runs one request of "key=value" strings (NULL-terminated); returns status. */
static int ex_step(struct ex *e, ...)
{
	va_list ap;
	const char *s;
	size_t off = 0;

	e->n = 0;
	e->tb.len = 0;
	va_start(ap, e);
	while ((s = va_arg(ap, const char *))) {
		size_t l = strlen(s) + 1;
		char *eq;

		assert_true(off + l <= sizeof(e->text) && e->n < 16);
		memcpy(e->text + off, s, l);
		eq = strchr(e->text + off, '=');
		assert_non_null(eq);
		*eq = 0;
		e->kv[e->n].key = e->text + off;
		e->kv[e->n].value = eq + 1;
		e->n++;
		off += l;
	}
	va_end(ap);
	return chap_step(&e->cs, &e->acc, e->kv, e->n, &e->tb, &e->why);
}

static const char *ex_answer(const struct ex *e, const char *key)
{
	size_t kl = strlen(key);

	for (uint32_t off = 0; off < e->tb.len;) {
		const char *kv = e->tb.buf + off;

		if (strncmp(kv, key, kl) == 0 && kv[kl] == '=')
			return kv + kl + 1;
		off += (uint32_t)strlen(kv) + 1;
	}
	return NULL;
}

/* Puts e at "challenge sent" with a fixed identifier and challenge, as if
 * CHAP_A=alg had been answered. */
static void ex_fixed_challenge(struct ex *e, unsigned alg)
{
	assert_int_equal(chap_alg_of(alg, &e->cs.alg), 0);
	e->cs.alg_id = (uint8_t)alg;
	e->cs.phase = CHAP_WAIT_RESPONSE;
	e->cs.id = 0x2a;
	for (int i = 0; i < CHAP_CHALLENGE_LEN; i++)
		e->cs.challenge[i] = (uint8_t)(0x10 + i);
}

static void test_challenge(void **state)
{
	struct ex e;
	const char *c;
	uint8_t bin[64], first[CHAP_CHALLENGE_LEN];
	size_t len;
	unsigned id;

	(void)state;
	ex_init(&e, false);
	/* The request that negotiated AuthMethod=CHAP may come without CHAP_A. */
	assert_int_equal(ex_step(&e, "InitiatorName=iqn.2024-01.x:y", NULL), 0);
	assert_int_equal(e.cs.phase, CHAP_WAIT_ALG);
	assert_int_equal(e.tb.len, 0);
	/* SHA-1 and unknown values are skipped: SHA-256 is the first we take. */
	assert_int_equal(ex_step(&e, "CHAP_A=6,99,junk,7,5", NULL), 0);
	assert_int_equal(e.cs.phase, CHAP_WAIT_RESPONSE);
	assert_string_equal(ex_answer(&e, "CHAP_A"), "7");
	assert_int_equal(e.cs.alg, HASH_SHA256);
	assert_int_equal(sscanf(ex_answer(&e, "CHAP_I"), "%u", &id), 1);
	assert_int_equal(id, e.cs.id);
	c = ex_answer(&e, "CHAP_C");
	assert_non_null(c);
	assert_int_equal(strncmp(c, "0x", 2), 0);
	assert_int_equal(strlen(c), 2 + 2 * CHAP_CHALLENGE_LEN);
	assert_int_equal(chap_decode(c, bin, sizeof(bin), &len), 0);
	assert_int_equal(len, CHAP_CHALLENGE_LEN);
	assert_memory_equal(bin, e.cs.challenge, CHAP_CHALLENGE_LEN);
	memcpy(first, e.cs.challenge, sizeof(first));
	ex_fini(&e);

	/* A fresh challenge each login. */
	ex_init(&e, false);
	assert_int_equal(ex_step(&e, "CHAP_A=5", NULL), 0);
	assert_string_equal(ex_answer(&e, "CHAP_A"), "5");
	assert_memory_not_equal(first, e.cs.challenge, CHAP_CHALLENGE_LEN);
	ex_fini(&e);

	/* Nothing acceptable: failure. */
	ex_init(&e, false);
	assert_int_equal(ex_step(&e, "CHAP_A=6,1,2", NULL), ISCSI_LOGIN_STATUS_AUTH_FAILED);
	assert_non_null(e.why);
	ex_fini(&e);

	/* In the request after AuthMethod, CHAP_A must come. */
	ex_init(&e, false);
	assert_int_equal(ex_step(&e, "AuthMethod=CHAP", NULL), 0);
	assert_int_equal(ex_step(&e, "InitiatorName=iqn.2024-01.x:y", NULL),
			 ISCSI_LOGIN_STATUS_AUTH_FAILED);
	ex_fini(&e);
}

/* The response to a known challenge, as computed by Python's hashlib. */
static void test_known_response(void **state)
{
	static const struct { unsigned alg; const char *r; } v[] = {
		{ 5, "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce6" },
		{ 7, "CHAP_R=0x3cde51d8096c6fe8aaa6aa9eefcc6fcc366c4d9f280a43fae03c76ff2e367435" },
		{ 8, "CHAP_R=0XFCBC643EDA9B3516DBE7392B900D8795F11E2C1A55EC521CE0028225923EE344" },
	};
	struct ex e;

	(void)state;
	for (unsigned i = 0; i < 3; i++) {
		ex_init(&e, false);
		ex_fixed_challenge(&e, v[i].alg);
		assert_int_equal(ex_step(&e, "CHAP_N=alice", v[i].r, NULL), 0);
		assert_int_equal(e.cs.phase, CHAP_DONE);
		assert_false(e.cs.mutual);
		assert_string_equal(e.cs.user, "alice");
		assert_int_equal(e.tb.len, 0);       /* one-way: nothing to answer */
		/* Anything CHAP after success fails; other keys are fine. */
		assert_int_equal(ex_step(&e, "InitiatorName=iqn.2024-01.x:y", NULL), 0);
		assert_int_equal(ex_step(&e, "CHAP_N=alice", NULL), ISCSI_LOGIN_STATUS_AUTH_FAILED);
		ex_fini(&e);
	}
	/* The same in base64 (RFC 7143 §6.1): 0xdb82aa25... */
	ex_init(&e, false);
	ex_fixed_challenge(&e, 5);
	assert_int_equal(ex_step(&e, "CHAP_N=alice", "CHAP_R=0b24KqJYzpLqrWuSjE0d4M5g==", NULL), 0);
	ex_fini(&e);
	/* A second account with the same name and another secret also works. */
	ex_init(&e, false);
	ex_fixed_challenge(&e, 5);
	{
		uint8_t r[16];
		char s[48] = "CHAP_R=0x";

		chap_response(HASH_MD5, 0x2a, "Alice-Other-Secret", 18, e.cs.challenge,
			      CHAP_CHALLENGE_LEN, r);
		hex_of(r, 16, s + 9);
		assert_int_equal(ex_step(&e, "CHAP_N=alice", s, NULL), 0);
		assert_int_equal(e.cs.phase, CHAP_DONE);
	}
	ex_fini(&e);
}

static void test_refusals(void **state)
{
	static const char *const bad[][4] = {
		/* wrong secret (bob's response under alice's name) */
		{ "CHAP_N=bob", "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce6", NULL },
		{ "CHAP_N=mallory", "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce6", NULL },
		{ "CHAP_N=alice", NULL },                                           /* no R */
		{ "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce6", NULL },              /* no N */
		{ "CHAP_N=alice", "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0c", NULL },  /* short */
		{ "CHAP_N=alice", "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce600", NULL },
		{ "CHAP_N=alice", "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0cez", NULL },
		{ "CHAP_N=alice", "CHAP_R=db82aa258ce92eaad6b928c4d1de0ce6", NULL },
		{ "CHAP_N=alice", "CHAP_R=", NULL },
		{ "CHAP_N=alice", "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce6", "CHAP_A=5" },
		{ "CHAP_N=alice", "CHAP_N=alice", "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce6" },
		{ "CHAP_N=alice", "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce6", "CHAP_X=1" },
	};
	struct ex e;

	(void)state;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ex_init(&e, true);
		ex_fixed_challenge(&e, 5);
		assert_int_equal(ex_step(&e, bad[i][0], bad[i][1], bad[i][2], NULL),
				 ISCSI_LOGIN_STATUS_AUTH_FAILED);
		assert_non_null(e.why);
		assert_int_not_equal(e.cs.phase, CHAP_DONE);
		ex_fini(&e);
	}
	/* A response before any challenge. */
	ex_init(&e, true);
	assert_int_equal(ex_step(&e, "CHAP_N=alice", "CHAP_R=0x00", NULL),
			 ISCSI_LOGIN_STATUS_AUTH_FAILED);
	ex_fini(&e);
	ex_init(&e, true);
	assert_int_equal(ex_step(&e, "CHAP_A=5", "CHAP_C=0x0011223344556677889900112233445566", NULL),
			 ISCSI_LOGIN_STATUS_AUTH_FAILED);
	ex_fini(&e);
	/* No accounts at all: nobody gets in. */
	ex_init(&e, true);
	e.acc.n_incoming = 0;
	ex_fixed_challenge(&e, 5);
	assert_int_equal(ex_step(&e, "CHAP_N=alice", "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce6", NULL),
			 ISCSI_LOGIN_STATUS_AUTH_FAILED);
	ex_fini(&e);
}

#define GOOD_R "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce6"

static void test_mutual(void **state)
{
	struct ex e;
	char c[2 + 2 * 1100 + 16], reflect[2 + 2 * CHAP_CHALLENGE_LEN + 16];

	(void)state;
	/* The initiator's challenge, answered with the outgoing account
	 * (expected value from Python's hashlib). */
	ex_init(&e, true);
	ex_fixed_challenge(&e, 5);
	assert_int_equal(ex_step(&e, "CHAP_N=alice", GOOD_R, "CHAP_I=200",
				 "CHAP_C=0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7", NULL), 0);
	assert_int_equal(e.cs.phase, CHAP_DONE);
	assert_true(e.cs.mutual);
	assert_string_equal(ex_answer(&e, "CHAP_N"), "lich-target");
	assert_string_equal(ex_answer(&e, "CHAP_R"), "0x996f2c07578492c21a1e8d03b907afd6");
	ex_fini(&e);
	/* CHAP_I in hex works too. */
	ex_init(&e, true);
	ex_fixed_challenge(&e, 5);
	assert_int_equal(ex_step(&e, "CHAP_N=alice", GOOD_R, "CHAP_I=0xc8",
				 "CHAP_C=0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7", NULL), 0);
	assert_string_equal(ex_answer(&e, "CHAP_R"), "0x996f2c07578492c21a1e8d03b907afd6");
	ex_fini(&e);

	/* Our own challenge reflected back: refused (and nothing answered). */
	ex_init(&e, true);
	ex_fixed_challenge(&e, 5);
	strcpy(reflect, "CHAP_C=0x");
	hex_of(e.cs.challenge, CHAP_CHALLENGE_LEN, reflect + 9);
	assert_int_equal(ex_step(&e, "CHAP_N=alice", GOOD_R, "CHAP_I=42", reflect, NULL),
			 ISCSI_LOGIN_STATUS_AUTH_FAILED);
	assert_null(ex_answer(&e, "CHAP_R"));
	assert_non_null(strstr(e.why, "reflect"));
	ex_fini(&e);

	/* No outgoing account: mutual CHAP cannot be honoured. */
	ex_init(&e, false);
	ex_fixed_challenge(&e, 5);
	assert_int_equal(ex_step(&e, "CHAP_N=alice", GOOD_R, "CHAP_I=1",
				 "CHAP_C=0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7", NULL),
			 ISCSI_LOGIN_STATUS_AUTH_FAILED);
	ex_fini(&e);

	/* Too short (15 bytes), too long (1025 bytes, base64), malformed, half. */
	{
		const char *bad[][2] = {
			{ "CHAP_I=1", "CHAP_C=0xa0a1a2a3a4a5a6a7a8a9aaabacadae" },
			{ "CHAP_I=1", "CHAP_C=0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafzz" },
			{ "CHAP_I=256", "CHAP_C=0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0" },
			{ "CHAP_I=x", "CHAP_C=0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0" },
			{ "CHAP_I=1", "CHAP_I=2" },
			{ "CHAP_I=1", "InitiatorAlias=x" },
			{ "CHAP_C=0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0", "InitiatorAlias=x" },
			{ "CHAP_I=1", c },
		};
		strcpy(c, "CHAP_C=0b");
		memset(c + 9, 'A', 1368);     /* 1026 bytes */
		c[9 + 1368] = 0;
		for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			ex_init(&e, true);
			ex_fixed_challenge(&e, 5);
			assert_int_equal(ex_step(&e, "CHAP_N=alice", GOOD_R, bad[i][0], bad[i][1], NULL),
					 ISCSI_LOGIN_STATUS_AUTH_FAILED);
			assert_null(ex_answer(&e, "CHAP_R"));
			ex_fini(&e);
		}
	}
	/* 16 bytes is long enough; and a wrong initiator response never gets
	 * an answer to its challenge. */
	ex_init(&e, true);
	ex_fixed_challenge(&e, 5);
	assert_int_equal(ex_step(&e, "CHAP_N=alice", GOOD_R, "CHAP_I=1",
				 "CHAP_C=0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0", NULL), 0);
	assert_non_null(ex_answer(&e, "CHAP_R"));
	ex_fini(&e);
	ex_init(&e, true);
	ex_fixed_challenge(&e, 5);
	assert_int_equal(ex_step(&e, "CHAP_N=alice", "CHAP_R=0xdb82aa258ce92eaad6b928c4d1de0ce7",
				 "CHAP_I=1", "CHAP_C=0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0", NULL),
			 ISCSI_LOGIN_STATUS_AUTH_FAILED);
	assert_null(ex_answer(&e, "CHAP_R"));
	ex_fini(&e);
}

static void test_full_exchange(void **state)
{
	struct ex e;
	uint8_t c[64], r[HASH_MAX_LEN];
	size_t clen;
	unsigned id;
	char s[80] = "CHAP_R=0x";

	(void)state;
	ex_init(&e, true);
	assert_int_equal(ex_step(&e, "CHAP_A=8,5", NULL), 0);
	assert_string_equal(ex_answer(&e, "CHAP_A"), "8");
	assert_int_equal(sscanf(ex_answer(&e, "CHAP_I"), "%u", &id), 1);
	assert_int_equal(chap_decode(ex_answer(&e, "CHAP_C"), c, sizeof(c), &clen), 0);
	chap_response(HASH_SHA3_256, (uint8_t)id, IN_SECRET, strlen(IN_SECRET), c, clen, r);
	hex_of(r, 32, s + 9);
	assert_int_equal(ex_step(&e, "CHAP_N=alice", s, NULL), 0);
	assert_int_equal(e.cs.phase, CHAP_DONE);
	ex_fini(&e);
}

static void test_keys_present(void **state)
{
	struct iscsi_kv kv[2] = { { "AuthMethod", "CHAP" }, { "CHAP_A", "5" } };

	(void)state;
	assert_true(chap_keys_present(kv, 2));
	assert_false(chap_keys_present(kv, 1));
	assert_false(chap_keys_present(kv, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_md5_vectors),
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_sha3_vectors),
		cmocka_unit_test(test_million_a),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_alg_map),
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_known_response),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_mutual),
		cmocka_unit_test(test_full_exchange),
		cmocka_unit_test(test_keys_present),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
