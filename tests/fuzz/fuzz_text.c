/* fuzz_text.c — iscsi_text_parse() and the negotiation on top of it.
 * Input: 2 control bytes then text data, split on 0xff bytes into up to 4
 * requests of one login (or of full feature phase), each parsed and
 * negotiated on the same params as a real login would:
 *   ctl[0] bit 0-1: first stage (0 security, else operational), bit 2: leading,
 *          bit 3-4: auth methods offered (None / CHAP,None / CHAP / NULL),
 *          bit 5: full-feature Text requests after login, bit 6-7: limits variant
 *   ctl[1]: kv array size (1..64).
 * Checks: parse results point inside the buffer, the response stays within
 * its max and is NUL-separated. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi/params.h"
#include "iscsi/pdu.h"

static void check_resp(const struct iscsi_textbuf *tb)
{
	if (tb->len > tb->max || tb->len > tb->cap)
		abort();
	if (tb->len && tb->buf[tb->len - 1] != '\0')
		abort();
}

static void one_request(struct iscsi_params *p, const struct iscsi_target_limits *lim,
			int *stage, bool leading, const char *auth, bool ffp,
			const uint8_t *d, size_t len, unsigned kvmax)
{
	char *buf = malloc(len ? len : 1);
	struct iscsi_kv kv[64];
	struct iscsi_textbuf tb;
	int n;

	memcpy(buf, d, len);
	n = iscsi_text_parse(buf, (uint32_t)len, kv, kvmax);
	if (n > (int)kvmax)
		abort();
	if (iscsi_textbuf_init(&tb, 8192) != 0)
		abort();
	if (n >= 0) {
		for (int i = 0; i < n; i++) {
			if (kv[i].key < buf || kv[i].key >= buf + len ||
			    kv[i].value < buf || kv[i].value >= buf + len)
				abort();
			(void)strlen(kv[i].key);
			(void)strlen(kv[i].value);
		}
		if (ffp) {
			iscsi_negotiate_text(p, lim, kv, (unsigned)n, &tb);
		} else {
			int st = iscsi_negotiate(p, lim, *stage, leading, auth, kv, (unsigned)n, &tb);

			if (st == 0 && *stage == ISCSI_STAGE_SECURITY) {
				*stage = ISCSI_STAGE_OPERATIONAL;
			} else if (st == 0) {
				if (iscsi_params_offer(p, lim, leading, &tb) == 0)
					iscsi_params_finish(p, lim, &tb);
			}
		}
		check_resp(&tb);
	}
	iscsi_textbuf_free(&tb);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const auths[] = { "None", "CHAP,None", "CHAP", NULL };
	struct iscsi_target_limits lim = {
		.max_recv_dsl = 262144, .max_burst = 1048576, .first_burst = 65536,
		.max_outstanding_r2t = 4, .max_connections = 1, .max_erl = 0,
		.allow_digests = true, .immediate_data = true, .initial_r2t = false,
	};
	struct iscsi_params p;

	if (size < 2)
		return 0;
	uint8_t c0 = data[0], c1 = data[1];
	int stage = (c0 & 3) ? ISCSI_STAGE_OPERATIONAL : ISCSI_STAGE_SECURITY;
	bool leading = c0 & 4;
	const char *auth = auths[(c0 >> 3) & 3];
	bool ffp_after = c0 & 0x20;
	unsigned kvmax = (c1 % 64) + 1;

	switch (c0 >> 6) {
	case 1: lim.max_recv_dsl = 8192; lim.max_burst = 16384; lim.first_burst = 65536; break;
	case 2: lim.allow_digests = false; lim.immediate_data = false; lim.initial_r2t = true; break;
	case 3: lim.rdma_extensions = true; lim.max_outstanding_r2t = 1; break;
	}
	iscsi_params_init(&p, &lim);
	data += 2;
	size -= 2;

	/* up to 4 login requests, then (optionally) Text requests */
	for (int req = 0; size > 0 && req < 8; req++) {
		const uint8_t *sep = memchr(data, 0xff, size);
		size_t len = sep ? (size_t)(sep - data) : size;

		one_request(&p, &lim, &stage, leading, auth, ffp_after && req >= 4, data, len, kvmax);
		if (!sep)
			break;
		data += len + 1;
		size -= len + 1;
	}
	return 0;
}
