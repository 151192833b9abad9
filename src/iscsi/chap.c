/* chap.c — the target side of iSCSI CHAP: algorithm choice, challenge,
 * verification of the initiator's response and, when asked, the target's own
 * response (mutual CHAP). The contract and the rules are in iscsi/chap.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "conf/conf.h"
#include "core/hex.h"
#include "iscsi/chap.h"
#include "iscsi/pdu.h"

int chap_alg_of(unsigned id, enum hash_alg *alg)
{
	switch (id) {
	case CHAP_ALG_MD5: *alg = HASH_MD5; return 0;
	case CHAP_ALG_SHA256: *alg = HASH_SHA256; return 0;
	case CHAP_ALG_SHA3_256: *alg = HASH_SHA3_256; return 0;
	default: return -ENOTSUP;
	}
}

void chap_response(enum hash_alg alg, uint8_t id, const void *secret, size_t secret_len,
		   const uint8_t *challenge, size_t challenge_len, uint8_t *out)
{
	struct hash_ctx h;

	hash_init(&h, alg);
	hash_update(&h, &id, 1);
	hash_update(&h, secret, secret_len);
	hash_update(&h, challenge, challenge_len);
	hash_final(&h, out);          /* wipes h */
}

bool chap_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

static int b64_sextet(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

static int decode_hex(const char *s, size_t n, uint8_t *out, size_t max, size_t *len)
{
	size_t bytes = (n + 1) / 2, o = 0, i = 0;

	if (bytes > max)
		return -E2BIG;
	if (n % 2) {                  /* odd count: the first digit is a low nibble */
		int lo = hex_digit(s[0]);

		if (lo < 0)
			return -EINVAL;
		out[o++] = (uint8_t)lo;
		i = 1;
	}
	for (; i < n; i += 2) {
		int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[o++] = (uint8_t)(hi << 4 | lo);
	}
	*len = o;
	return 0;
}

static int decode_b64(const char *s, size_t n, uint8_t *out, size_t max, size_t *len)
{
	size_t pad = 0, o = 0;

	if (n % 4)
		return -EINVAL;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	if (n / 4 * 3 - pad > max)
		return -E2BIG;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		bool last = i + 4 == n;

		for (size_t j = 0; j < 4; j++) {
			int x = b64_sextet(s[i + j]);

			if (x < 0) {
				/* '=' only as the trailing padding */
				if (!last || s[i + j] != '=' || j < 4 - pad)
					return -EINVAL;
				x = 0;
			}
			v = v << 6 | (uint32_t)x;
		}
		out[o++] = (uint8_t)(v >> 16);
		if (!last || pad < 2)
			out[o++] = (uint8_t)(v >> 8);
		if (!last || pad < 1)
			out[o++] = (uint8_t)v;
	}
	*len = o;
	return 0;
}

int chap_decode(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s);

	if (n < 3 || s[0] != '0')
		return -EINVAL;
	if (s[1] == 'x' || s[1] == 'X')
		return decode_hex(s + 2, n - 2, out, max, len);
	if (s[1] == 'b' || s[1] == 'B')
		return decode_b64(s + 2, n - 2, out, max, len);
	return -EINVAL;
}

bool chap_keys_present(const struct iscsi_kv *kv, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (strncmp(kv[i].key, "CHAP_", 5) == 0)
			return true;
	return false;
}

/* ---- one request ---- */

struct chap_keys {
	const char *a, *i, *c, *n, *r;
};

/* Picks the CHAP keys out of the request; a repeated or unknown CHAP_ key
 * fails. */
static int collect(const struct iscsi_kv *kv, unsigned n, struct chap_keys *k)
{
	memset(k, 0, sizeof(*k));
	for (unsigned x = 0; x < n; x++) {
		const char **slot;

		if (strncmp(kv[x].key, "CHAP_", 5) != 0)
			continue;
		if (strcmp(kv[x].key, "CHAP_A") == 0)
			slot = &k->a;
		else if (strcmp(kv[x].key, "CHAP_I") == 0)
			slot = &k->i;
		else if (strcmp(kv[x].key, "CHAP_C") == 0)
			slot = &k->c;
		else if (strcmp(kv[x].key, "CHAP_N") == 0)
			slot = &k->n;
		else if (strcmp(kv[x].key, "CHAP_R") == 0)
			slot = &k->r;
		else
			return -EINVAL;
		if (*slot)
			return -EINVAL;
		*slot = kv[x].value;
	}
	return 0;
}

/* A numeric value 0..255 (decimal or 0x hex, RFC 7143 §6.1). */
static int parse_byte(const char *s, unsigned *out)
{
	unsigned v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 6)
		return -EINVAL;
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (size_t i = 2; i < n; i++) {
			int x = hex_digit(s[i]);

			if (x < 0)
				return -EINVAL;
			v = v << 4 | (unsigned)x;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
			v = v * 10 + (unsigned)(s[i] - '0');
		}
	}
	if (v > 255)
		return -ERANGE;
	*out = v;
	return 0;
}

static int add_hex(struct iscsi_textbuf *tb, const char *key, const uint8_t *b, size_t n)
{
	char s[2 + 2 * HASH_MAX_LEN + 1 > 2 + 2 * CHAP_CHALLENGE_LEN + 1 ?
	       2 + 2 * HASH_MAX_LEN + 1 : 2 + 2 * CHAP_CHALLENGE_LEN + 1];
	static const char digits[] = "0123456789abcdef";

	if (2 + 2 * n + 1 > sizeof(s))
		return -E2BIG;
	s[0] = '0';
	s[1] = 'x';
	for (size_t i = 0; i < n; i++) {
		s[2 + 2 * i] = digits[b[i] >> 4];
		s[3 + 2 * i] = digits[b[i] & 15];
	}
	s[2 + 2 * n] = 0;
	return iscsi_textbuf_add(tb, key, s);
}

static int fail(const char **why, const char *reason)
{
	*why = reason;
	return ISCSI_LOGIN_STATUS_AUTH_FAILED;
}

/* CHAP_A=<list>: choose, then send our identifier and challenge. */
static int send_challenge(struct chap_state *cs, const char *list, struct iscsi_textbuf *tb,
			  const char **why)
{
	char item[16];
	unsigned pick = 0;
	uint8_t rnd[1 + CHAP_CHALLENGE_LEN];

	for (const char *s = list; *s && !pick; ) {
		const char *e = strchr(s, ',');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		unsigned v;
		enum hash_alg alg;

		if (l < sizeof(item)) {
			memcpy(item, s, l);
			item[l] = 0;
			if (parse_byte(item, &v) == 0 && chap_alg_of(v, &alg) == 0) {
				pick = v;
				cs->alg = alg;
			}
		}
		s += l + (e ? 1 : 0);
	}
	if (!pick)
		return fail(why, "no acceptable CHAP algorithm in CHAP_A");
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		*why = "getrandom failed";
		return ISCSI_LOGIN_STATUS_TARGET_ERROR;
	}
	cs->alg_id = (uint8_t)pick;
	cs->id = rnd[0];
	memcpy(cs->challenge, rnd + 1, CHAP_CHALLENGE_LEN);
	if (iscsi_textbuf_addf(tb, "CHAP_A", "%u", pick) ||
	    iscsi_textbuf_addf(tb, "CHAP_I", "%u", cs->id) ||
	    add_hex(tb, "CHAP_C", cs->challenge, CHAP_CHALLENGE_LEN))
		return ISCSI_LOGIN_STATUS_NO_RESOURCES;
	cs->phase = CHAP_WAIT_RESPONSE;
	return 0;
}

/* CHAP_N/CHAP_R against every account of that name. */
static int check_response(struct chap_state *cs, const struct chap_accounts *acc,
			  const struct chap_keys *k, const char **why)
{
	uint8_t r[CHAP_BINARY_MAX], want[HASH_MAX_LEN];
	size_t rlen, hl = hash_len(cs->alg);
	bool ok = false;

	if (!k->n || !k->r)
		return fail(why, "CHAP_N or CHAP_R missing");
	if (chap_decode(k->r, r, sizeof(r), &rlen) || rlen != hl)
		return fail(why, "malformed CHAP_R");
	for (unsigned i = 0; i < acc->n_incoming; i++) {
		const struct conf_account *a = &acc->incoming[i];

		if (!a->user || !a->secret || strcmp(a->user, k->n) != 0)
			continue;
		chap_response(cs->alg, cs->id, a->secret, strlen(a->secret), cs->challenge,
			      CHAP_CHALLENGE_LEN, want);
		ok |= chap_ct_equal(r, want, hl);
	}
	explicit_bzero(want, sizeof(want));
	if (!ok)
		return fail(why, "wrong CHAP response or unknown user");
	snprintf(cs->user, sizeof(cs->user), "%s", k->n);
	return 0;
}

/* The initiator's challenge to us (mutual CHAP). */
static int answer_challenge(struct chap_state *cs, const struct chap_accounts *acc,
			    const struct chap_keys *k, struct iscsi_textbuf *tb, const char **why)
{
	uint8_t c[CHAP_BINARY_MAX], r[HASH_MAX_LEN];
	size_t clen;
	unsigned id;
	int rc;

	if (!k->i || !k->c)
		return fail(why, "mutual CHAP needs both CHAP_I and CHAP_C");
	if (!acc->outgoing || !acc->outgoing->user || !acc->outgoing->secret)
		return fail(why, "mutual CHAP asked but no outgoing account is configured");
	if (parse_byte(k->i, &id))
		return fail(why, "malformed CHAP_I");
	rc = chap_decode(k->c, c, sizeof(c), &clen);
	if (rc == -E2BIG)
		return fail(why, "CHAP_C longer than 1024 bytes");
	if (rc)
		return fail(why, "malformed CHAP_C");
	if (clen < CHAP_PEER_CHALLENGE_MIN)
		return fail(why, "CHAP_C too short");
	if (clen == CHAP_CHALLENGE_LEN && chap_ct_equal(c, cs->challenge, clen))
		return fail(why, "initiator reflected our CHAP challenge");
	chap_response(cs->alg, (uint8_t)id, acc->outgoing->secret, strlen(acc->outgoing->secret),
		      c, clen, r);
	rc = iscsi_textbuf_add(tb, "CHAP_N", acc->outgoing->user);
	if (!rc)
		rc = add_hex(tb, "CHAP_R", r, hash_len(cs->alg));
	explicit_bzero(r, sizeof(r));
	if (rc)
		return ISCSI_LOGIN_STATUS_NO_RESOURCES;
	cs->mutual = true;
	return 0;
}

int chap_step(struct chap_state *cs, const struct chap_accounts *acc,
	      const struct iscsi_kv *kv, unsigned n, struct iscsi_textbuf *resp,
	      const char **why)
{
	struct chap_keys k;
	int rc;

	*why = NULL;
	if (collect(kv, n, &k))
		return fail(why, "unknown or repeated CHAP key");
	switch (cs->phase) {
	case CHAP_START:
	case CHAP_WAIT_ALG:
		if (k.i || k.c || k.n || k.r)
			return fail(why, "CHAP response before the challenge");
		if (!k.a) {
			if (cs->phase == CHAP_WAIT_ALG)
				return fail(why, "CHAP_A expected");
			cs->phase = CHAP_WAIT_ALG;
			return 0;
		}
		return send_challenge(cs, k.a, resp, why);
	case CHAP_WAIT_RESPONSE:
		if (k.a)
			return fail(why, "CHAP_A sent twice");
		rc = check_response(cs, acc, &k, why);
		if (rc)
			return rc;
		if (k.i || k.c) {
			rc = answer_challenge(cs, acc, &k, resp, why);
			if (rc)
				return rc;
		}
		cs->phase = CHAP_DONE;
		return 0;
	case CHAP_DONE:
	default:
		if (k.a || k.i || k.c || k.n || k.r)
			return fail(why, "CHAP key after authentication");
		return 0;
	}
}
