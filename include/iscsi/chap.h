/* chap.h — the target side of iSCSI CHAP (RFC 7143 §12.1.3, RFC 1994).
 *
 * One struct chap_state per login, driven by login.c in the security stage
 * once AuthMethod=CHAP was negotiated; chap_step() gets every request's keys
 * (the CHAP_* keys iscsi_negotiate() skipped) and appends its answers:
 *
 *   I→T  AuthMethod=CHAP,None           T→I  AuthMethod=CHAP   (login.c/params.c)
 *   I→T  CHAP_A=<A1,A2,...>             T→I  CHAP_A=<A> CHAP_I=<I> CHAP_C=<C>
 *   I→T  CHAP_N=<N> CHAP_R=<R>          T→I  (nothing more: authenticated)
 *        [CHAP_I=<I'> CHAP_C=<C'>]           [CHAP_N=<outgoing user> CHAP_R=<R'>]
 *
 * Rules (every violation is 0x0201 authentication failure unless noted):
 *   - CHAP_A: the first of the initiator's algorithms we support: 5 (MD5),
 *     7 (SHA-256), 8 (SHA3-256); 6 (SHA-1) is not offered. Unknown or
 *     malformed entries are skipped; none acceptable -> failure (a failed
 *     login answers with its status only). CHAP_A may come with the request that negotiated AuthMethod or
 *     in the next one; any other request without it fails.
 *   - CHAP_I: one random byte; CHAP_C: CHAP_CHALLENGE_LEN random bytes from
 *     getrandom(2), sent as "0x" + lower-case hex (what every initiator parses).
 *   - CHAP_N must name one of the accounts (incominguser of the target,
 *     incomingdiscoveryuser for discovery); CHAP_R must decode (hex "0x" or
 *     base64 "0b", RFC 7143 §6.1) to exactly the digest length and equal
 *     H(I || secret || C) for an account with that name, compared in
 *     constant time. Missing CHAP_N or CHAP_R, malformed or wrong-length
 *     values, unknown user and wrong response all fail the same way.
 *   - Mutual CHAP: the initiator sent CHAP_I and CHAP_C with its response
 *     (one without the other fails). Refused when there is no outgoing
 *     account, when CHAP_I is not a number 0..255, when CHAP_C decodes to
 *     fewer than CHAP_PEER_CHALLENGE_MIN or more than CHAP_BINARY_MAX bytes,
 *     or when it equals the challenge we sent (reflection attack). Otherwise
 *     we answer CHAP_N=<outgoing user> CHAP_R=0x<H(I' || outgoing secret || C')>.
 *     The initiator is authenticated before the target answers anything.
 *   - A CHAP key in a request where it does not belong (CHAP_N before our
 *     challenge, CHAP_A twice, anything after success, a key repeated in one
 *     request) fails.
 *   - The response buffer full: 0x0302; getrandom failing: 0x0300.
 * Secrets are never logged or copied: the accounts are read where they live
 * (login.c holds the registry lock around chap_step), and the hash contexts
 * are wiped. `why` receives a static reason for the log, free of secrets.
 *
 * The login may leave the security stage only once cs->phase == CHAP_DONE
 * (login.c answers T=0 until then, and fails a login that asks for the
 * operational stage with CHAP pending and nothing left to do).
 */
#ifndef LICH_ISCSI_CHAP_H
#define LICH_ISCSI_CHAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iscsi/hash.h"
#include "iscsi/params.h"

struct conf_account;

#define CHAP_ALG_MD5       5
#define CHAP_ALG_SHA1      6        /* known, not accepted */
#define CHAP_ALG_SHA256    7
#define CHAP_ALG_SHA3_256  8
#define CHAP_CHALLENGE_LEN 32       /* bytes in the challenge we send */
#define CHAP_PEER_CHALLENGE_MIN 16  /* shortest initiator challenge we answer */
#define CHAP_BINARY_MAX    1024     /* RFC 7143 §12.1.3: C and R at most 1024 bytes */

enum chap_phase {
	CHAP_START = 0,       /* AuthMethod=CHAP being negotiated in this request */
	CHAP_WAIT_ALG,        /* the next request must carry CHAP_A */
	CHAP_WAIT_RESPONSE,   /* challenge sent; waiting for CHAP_N/CHAP_R */
	CHAP_DONE,            /* initiator authenticated (and target, if asked) */
};

struct chap_state {
	enum chap_phase phase;
	bool required;                 /* (login.c) the target/discovery has accounts */
	bool mutual;                   /* we answered the initiator's challenge */
	uint8_t alg_id;                /* CHAP_A value chosen */
	enum hash_alg alg;
	uint8_t id;                    /* CHAP_I we sent */
	uint8_t challenge[CHAP_CHALLENGE_LEN];
	char user[ISCSI_VALUE_MAX + 1];   /* CHAP_N that authenticated (for logs) */
};

/* The accounts a login is checked against; pointers into the config. */
struct chap_accounts {
	const struct conf_account *incoming;
	unsigned n_incoming;
	const struct conf_account *outgoing;   /* NULL: mutual CHAP is refused */
};

/* One request's CHAP keys (kv: the whole parsed request). Returns 0 (the
 * answers are in resp; see cs->phase) or a login status (pdu.h) to fail with;
 * *why then says why (static string). */
int chap_step(struct chap_state *cs, const struct chap_accounts *acc,
	      const struct iscsi_kv *kv, unsigned n, struct iscsi_textbuf *resp,
	      const char **why);

/* True if kv holds any CHAP_* key. */
bool chap_keys_present(const struct iscsi_kv *kv, unsigned n);

/* ---- building blocks (exposed for tests) ---- */

/* Maps a CHAP_A number to a digest: 0, or -ENOTSUP for anything else. */
int chap_alg_of(unsigned id, enum hash_alg *alg);
/* H(id || secret || challenge) into out (hash_len(alg) bytes). */
void chap_response(enum hash_alg alg, uint8_t id, const void *secret, size_t secret_len,
		   const uint8_t *challenge, size_t challenge_len, uint8_t *out);
/* Decodes an RFC 7143 §6.1 binary value: "0x"/"0X" + hex digits (an odd count
 * means a leading zero nibble) or "0b"/"0B" + base64 (padded, length a
 * multiple of 4). 0 and *len, -EINVAL when malformed or empty, -E2BIG when it
 * decodes to more than max bytes. */
int chap_decode(const char *s, uint8_t *out, size_t max, size_t *len);
/* Constant-time equality of two n-byte buffers (time depends on n only). */
bool chap_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
