/* login.c — the login phase (RFC 7143 §6, §11.12, §11.13).
 *
 * One Login Request at a time: the initiator waits for each response. Text
 * split over several PDUs (C bit) is collected first, then negotiated at once.
 * Stages go security (0) → operational (1) → full feature (3), forward only,
 * the T bit asking to move to NSG; the target agrees by echoing T with NSG.
 *
 * The first complete request decides the session: InitiatorName required,
 * SessionType (default Normal), TargetName for normal sessions (exists, ACL
 * allows this initiator name and address). TSIH != 0 would add a connection
 * to a session: lich has MaxConnections=1.
 *
 * Authentication (iscsi/chap.h): a target with incominguser accounts (or
 * discovery with incomingdiscoveryuser) accepts AuthMethod=CHAP only, others
 * AuthMethod=None only. The CHAP exchange runs in the security stage with the
 * accounts read under the registry lock; until it is done the target answers
 * T=0, and a login that reaches the operational stage (or asks for it with
 * nothing left to negotiate) without it fails with 0x0201. An authentication
 * failure is answered after AUTH_FAIL_DELAY_US (a reactor timer), to slow down
 * guessing; requests arriving meanwhile are ignored.
 *
 * The transition to full feature phase enters the session table; a session
 * with the same (InitiatorName, ISID, target) is reinstated — closed, tasks
 * aborted, on whatever reactor it lives — before the final Login Response
 * goes out (the response is parked until then).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/reactor.h"
#include "internal.h"

#define LOGIN_KV_MAX 256
#define AUTH_FAIL_DELAY_US 1000000ull

static const char *status_text(uint16_t st)
{
	switch (st) {
	case ISCSI_LOGIN_STATUS_INIT_ERR: return "initiator error";
	case ISCSI_LOGIN_STATUS_AUTH_FAILED: return "authentication failed";
	case ISCSI_LOGIN_STATUS_TGT_FORBIDDEN: return "access to the target forbidden";
	case ISCSI_LOGIN_STATUS_TGT_NOT_FOUND: return "target not found";
	case ISCSI_LOGIN_STATUS_TGT_REMOVED: return "target removed";
	case ISCSI_LOGIN_STATUS_NO_VERSION: return "unsupported version";
	case ISCSI_LOGIN_STATUS_TOO_MANY_CONN: return "too many connections";
	case ISCSI_LOGIN_STATUS_MISSING_PARAM: return "missing parameter";
	case ISCSI_LOGIN_STATUS_CONN_ADD_FAIL: return "cannot add connection";
	case ISCSI_LOGIN_STATUS_SESSION_TYPE: return "unsupported session type";
	case ISCSI_LOGIN_STATUS_NO_SESSION: return "session does not exist";
	case ISCSI_LOGIN_STATUS_INVALID_REQ: return "invalid request during login";
	case ISCSI_LOGIN_STATUS_TARGET_ERROR: return "target error";
	case ISCSI_LOGIN_STATUS_SVC_UNAVAIL: return "service unavailable";
	case ISCSI_LOGIN_STATUS_NO_RESOURCES: return "out of resources";
	default: return "error";
	}
}

static struct iscsi_pdu *login_rsp_new(struct iscsi_conn *c, const uint8_t *req)
{
	struct iscsi_pdu *p = conn_pdu_new(c, ISCSI_OP_LOGIN_RSP);

	if (!p)
		return NULL;
	/* Version-max and Version-active: 0 (RFC 7143 §11.13.2). */
	p->bhs[2] = 0;
	p->bhs[3] = 0;
	memcpy(p->bhs + BHS_ISID, req + BHS_ISID, 6);
	put_be16(p->bhs + BHS_TSIH, c->login_tsih);
	put_be32(p->bhs + BHS_ITT, bhs_itt(req));
	return p;
}

/* The failure response to the request whose header is bhs; then close. */
static void login_fail_send(struct iscsi_conn *c, const uint8_t *bhs, uint16_t status)
{
	struct iscsi_pdu *p = login_rsp_new(c, bhs);
	uint8_t csg = ISCSI_LOGIN_CSG(bhs[BHS_FLAGS]);

	if (!p) {
		conn_drop(c, "no memory for a login response");
		return;
	}
	p->bhs[1] = (uint8_t)(csg << 2);
	p->bhs[36] = (uint8_t)(status >> 8);
	p->bhs[37] = (uint8_t)status;
	conn_send_and_close(c, p, true);
}

/* Timer: the delayed answer to a failed authentication. */
static void login_fail_fire(void *arg)
{
	struct iscsi_conn *c = conn_find_here((uint64_t)(uintptr_t)arg);

	if (!c || !c->login_delaying || c->state != CONN_LOGIN)
		return;
	conn_get(c);
	c->login_delaying = false;
	login_fail_send(c, c->login_fail_bhs, c->login_fail_status);
	conn_put(c);
}

/* Fails the login: response with the status, then the connection closes.
 * Authentication failures are answered late (on a reactor; unit tests, which
 * run no reactor, get the answer at once). */
static void login_fail(struct iscsi_conn *c, struct iscsi_pdu *req, uint16_t status,
		       const char *detail)
{
	struct reactor *r = reactor_self();

	log_info("login failed: initiator %s at %s, target %s: %s%s%s",
		 c->params.initiator_name[0] ? c->params.initiator_name : "?", c->peer,
		 c->params.target_name[0] ? c->params.target_name :
		 (c->params.session_type == ISCSI_SESSION_DISCOVERY ? "(discovery)" : "?"),
		 status_text(status), detail ? ": " : "", detail ? detail : "");
	memcpy(c->login_fail_bhs, req->bhs, ISCSI_BHS_LEN);
	iscsi_pdu_free(c, req);
	if (status == ISCSI_LOGIN_STATUS_AUTH_FAILED && r) {
		c->login_fail_status = status;
		c->login_delaying = true;
		if (reactor_timer_add(r, AUTH_FAIL_DELAY_US, 0, login_fail_fire,
				      (void *)(uintptr_t)c->id))
			return;
		c->login_delaying = false;
	}
	login_fail_send(c, c->login_fail_bhs, status);
}

/* Digests and the negotiated receive limit start with the first PDU after the
 * final Login Response: switched once that response is on the wire. */
static void final_rsp_sent(struct iscsi_pdu *p)
{
	struct iscsi_conn *c = p->task;

	if (c->state == CONN_DEAD || !c->xc)
		return;
	c->xc->header_digest = c->params.header_digest;
	c->xc->data_digest = c->params.data_digest;
	c->xc->max_recv_dsl = c->params.max_recv_dsl;
}

static void nexus_name(struct iscsi_conn *c)
{
	struct iscsi_session *s = &c->sess;
	struct scsi_nexus *n = &s->nexus;

	snprintf(n->initiator_port, sizeof(n->initiator_port),
		 "%s,i,0x%02x%02x%02x%02x%02x%02x", s->initiator_name, s->isid[0],
		 s->isid[1], s->isid[2], s->isid[3], s->isid[4], s->isid[5]);
	snprintf(n->initiator_name, sizeof(n->initiator_name), "%s", s->initiator_name);
	n->rel_port_id = 1;
	n->tpgt = 1;
}

static void login_finish(struct iscsi_conn *c, struct iscsi_pdu *rsp)
{
	struct iscsi_session *s = &c->sess;
	int rc;

	put_be16(rsp->bhs + BHS_TSIH, s->tsih);
	if (s->type == ISCSI_SESSION_NORMAL) {
		nexus_name(c);
		rc = scsi_nexus_attach(s->tgt->st, &s->nexus);
		if (rc) {
			log_err("iscsi: %s: cannot attach the I_T nexus: %s", c->peer,
				strerror(-rc));
			rsp->bhs[1] &= (uint8_t)~ISCSI_LOGIN_TRANSIT;
			rsp->bhs[36] = ISCSI_LOGIN_STATUS_NO_RESOURCES >> 8;
			rsp->bhs[37] = ISCSI_LOGIN_STATUS_NO_RESOURCES & 0xff;
			put_be24(rsp->bhs + BHS_DLEN, 0);
			rsp->data_len = 0;
			conn_send_and_close(c, rsp, true);
			return;
		}
		s->nexus_attached = true;
	}
	c->state = CONN_FULL;
	c->rdma = c->xc && c->xc->ops->put_data;   /* data moves by RDMA from here on */
	rsp->sent = final_rsp_sent;
	rsp->task = c;
	conn_send(c, rsp, true);
	log_info("login: initiator %s at %s, target %s, tsih %u, reactor %u%s%s",
		 s->initiator_name, c->peer, s->tgt ? s->tgt->name : "(discovery)", s->tsih,
		 c->ir ? c->ir->id : 0,
		 c->params.header_digest ? ", header digest" : "",
		 c->params.data_digest ? ", data digest" : "");
}

void iscsi_login_resume(void *a, void *b)
{
	struct iscsi_conn *c = conn_find_here((uint64_t)(uintptr_t)a);
	struct iscsi_pdu *rsp;

	(void)b;
	if (!c || c->state != CONN_LOGIN_WAIT || !c->login_final)
		return;
	conn_get(c);
	rsp = c->login_final;
	c->login_final = NULL;
	login_finish(c, rsp);
	conn_put(c);
}

/* First complete request: who is this, and may it have what it asks for? */
static uint16_t login_session_checks(struct iscsi_conn *c, struct iscsi_textbuf *tb,
				     const char **detail)
{
	struct iscsi_params *p = &c->params;
	bool discovery = p->session_type == ISCSI_SESSION_DISCOVERY;

	if (!p->initiator_name[0]) {
		*detail = "no InitiatorName";
		return ISCSI_LOGIN_STATUS_MISSING_PARAM;
	}
	if (!discovery) {
		if (!p->target_name[0]) {
			*detail = "no TargetName";
			return ISCSI_LOGIN_STATUS_MISSING_PARAM;
		}
		if (c->login_tgt && strcmp(c->login_tgt->name, p->target_name) != 0) {
			reg_target_put(c->login_tgt);
			c->login_tgt = NULL;
		}
		if (!c->login_tgt)
			c->login_tgt = reg_target_get(p->target_name);
		if (!c->login_tgt)
			return ISCSI_LOGIN_STATUS_TGT_NOT_FOUND;
		if (!reg_target_allows(c->login_tgt, p->initiator_name,
				       c->xc ? c->xc->peer_addr : ""))
			return ISCSI_LOGIN_STATUS_TGT_FORBIDDEN;
	}
	if (c->login_tsih != 0) {
		/* Adding a connection to a session: MaxConnections=1. */
		if (reg_session_exists(p->initiator_name, c->login_isid, c->login_tsih))
			return ISCSI_LOGIN_STATUS_TOO_MANY_CONN;
		return ISCSI_LOGIN_STATUS_NO_SESSION;
	}
	/* RFC 7143 §13.9: in the first Login Response of a normal session. */
	if (!discovery && iscsi_textbuf_add(tb, "TargetPortalGroupTag", "1"))
		return ISCSI_LOGIN_STATUS_TARGET_ERROR;
	return 0;
}

/* Starts the session: its identity, then the table (maybe reinstating). */
static void login_to_ffp(struct iscsi_conn *c, struct iscsi_pdu *rsp)
{
	struct iscsi_session *s = &c->sess;
	int rc;

	s->id = c->id;
	s->rid = c->ir->id;
	memcpy(s->isid, c->login_isid, 6);
	s->type = c->params.session_type == ISCSI_SESSION_DISCOVERY ?
		  ISCSI_SESSION_DISCOVERY : ISCSI_SESSION_NORMAL;
	snprintf(s->initiator_name, sizeof(s->initiator_name), "%s", c->params.initiator_name);
	s->tgt = c->login_tgt;
	c->login_tgt = NULL;
	/* Parked before entering the table: the old session's end may resume
	 * this login at once (same reactor, or a direct call in tests). */
	c->login_final = rsp;
	c->state = CONN_LOGIN_WAIT;
	rc = reg_session_enter(c);
	if (rc == 1)
		return;
	c->login_final = NULL;
	c->state = CONN_LOGIN;
	if (rc > 1) {
		rsp->bhs[1] &= (uint8_t)~ISCSI_LOGIN_TRANSIT;
		rsp->bhs[36] = (uint8_t)(rc >> 8);
		rsp->bhs[37] = (uint8_t)rc;
		rsp->data_len = 0;
		s->tsih = 0;
		log_info("login failed: initiator %s at %s: %s", s->initiator_name, c->peer,
			 status_text((uint16_t)rc));
		conn_send_and_close(c, rsp, true);
		return;
	}
	login_finish(c, rsp);
}

static int login_collect(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	char *t;

	if (p->data_len == 0)
		return 0;
	if (c->login_text_len + p->data_len > LOGIN_TEXT_MAX)
		return -E2BIG;
	t = realloc(c->login_text, c->login_text_len + p->data_len);
	if (!t)
		return -ENOMEM;
	memcpy(t + c->login_text_len, p->data, p->data_len);
	c->login_text = t;
	c->login_text_len += p->data_len;
	return 0;
}

/* Checks of the header against the login so far; 0 or a status. */
static uint16_t login_header_checks(struct iscsi_conn *c, const uint8_t *bhs)
{
	uint8_t f = bhs[BHS_FLAGS];
	int csg = ISCSI_LOGIN_CSG(f), nsg = ISCSI_LOGIN_NSG(f);

	if (!c->login_started) {
		/* We speak version 0 only (RFC 7143 §11.12.4). */
		if (bhs[3] > 0)
			return ISCSI_LOGIN_STATUS_NO_VERSION;
		c->login_started = true;
		memcpy(c->login_isid, bhs + BHS_ISID, 6);
		c->login_tsih = get_be16(bhs + BHS_TSIH);
		c->login_itt = bhs_itt(bhs);
		c->login_cmd_sn = get_be32(bhs + BHS_CMDSN);
		c->cid = get_be16(bhs + BHS_TTT);
		c->stat_sn = get_be32(bhs + BHS_EXPSTATSN);
		c->sess.exp_cmd_sn = c->login_cmd_sn;
		c->sess.max_cmd_sn = c->login_cmd_sn + iscsi_opts_cur.queue_depth - 1;
		c->login_stage = csg;
	} else if (memcmp(c->login_isid, bhs + BHS_ISID, 6) ||
		   c->login_tsih != get_be16(bhs + BHS_TSIH)) {
		return ISCSI_LOGIN_STATUS_INIT_ERR;
	}
	if (csg != c->login_stage || csg > ISCSI_STAGE_OPERATIONAL)
		return ISCSI_LOGIN_STATUS_INIT_ERR;
	if ((f & ISCSI_LOGIN_TRANSIT) && (nsg <= csg || nsg == 2))
		return ISCSI_LOGIN_STATUS_INIT_ERR;
	return 0;
}

static const char *kv_find(const struct iscsi_kv *kv, unsigned n, const char *key)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].value;
	return NULL;
}

/* First request: does the session it asks for need CHAP? Decided before
 * negotiation, since it sets which AuthMethod we accept. The target found here
 * is kept for the session checks. */
static void login_auth_required(struct iscsi_conn *c, const struct iscsi_kv *kv, unsigned n)
{
	const char *type = kv_find(kv, n, "SessionType");
	const char *name = kv_find(kv, n, "TargetName");

	if (type && strcmp(type, "Discovery") == 0) {
		c->chap.required = reg_discovery_needs_auth();
		return;
	}
	if (!name)
		return;      /* negotiation fails: no TargetName */
	if (!c->login_tgt)
		c->login_tgt = reg_target_get(name);
	if (c->login_tgt)
		c->chap.required = reg_target_needs_auth(c->login_tgt);
}

struct chap_call {
	struct iscsi_conn *c;
	const struct iscsi_kv *kv;
	unsigned n;
	struct iscsi_textbuf *tb;
	const char *why;
};

static int chap_call(const struct chap_accounts *acc, void *arg)
{
	struct chap_call *a = arg;

	return chap_step(&a->c->chap, acc, a->kv, a->n, a->tb, &a->why);
}

/* Security-stage authentication of one request; 0 or a login status. */
static uint16_t login_auth(struct iscsi_conn *c, int csg, bool *transit,
			   const struct iscsi_kv *kv, unsigned n, struct iscsi_textbuf *tb,
			   const char **detail)
{
	bool chap = strcmp(c->params.auth_method, "CHAP") == 0;
	struct chap_call a = { .c = c, .kv = kv, .n = n, .tb = tb };
	int st;

	if (csg != ISCSI_STAGE_SECURITY) {
		if (c->chap.required && c->chap.phase != CHAP_DONE) {
			*detail = "authentication required";
			return ISCSI_LOGIN_STATUS_AUTH_FAILED;
		}
		return 0;
	}
	if (!chap) {
		if (chap_keys_present(kv, n)) {
			*detail = "CHAP keys without AuthMethod=CHAP";
			return ISCSI_LOGIN_STATUS_INIT_ERR;
		}
		if (c->chap.required && *transit) {
			*detail = "authentication required";
			return ISCSI_LOGIN_STATUS_AUTH_FAILED;
		}
		return 0;
	}
	st = reg_with_accounts(c->params.session_type == ISCSI_SESSION_DISCOVERY ? NULL :
			       c->login_tgt, chap_call, &a);
	if (st) {
		*detail = a.why;
		return (uint16_t)st;
	}
	if (c->chap.phase != CHAP_DONE) {
		*transit = false;        /* not before authentication (§6.3, §12.1.3) */
	} else if (c->chap.user[0]) {
		log_info("login: initiator %s at %s authenticated by CHAP as %s%s",
			 c->params.initiator_name, c->peer, c->chap.user,
			 c->chap.mutual ? " (mutual)" : "");
		c->chap.user[0] = 0;     /* logged once */
	}
	return 0;
}

/* What this connection offers: the configured limits, except on an RDMA
 * transport (iSER, RFC 7145 §6.3): RDMAExtensions=Yes, no digests (the RCaP
 * has its own CRC), InitialR2T=Yes (solicited data is fetched by RDMA Read
 * from the Write Base Offset, which names the first byte after the
 * immediate data), and received PDUs bounded by the receive buffers. */
static void conn_limits(struct iscsi_conn *c, struct iscsi_target_limits *lim)
{
	*lim = iscsi_opts_cur.limits;
	if (!c->xc || !c->xc->rdma_max_dsl)
		return;
	lim->rdma_extensions = true;
	lim->allow_digests = false;
	lim->initial_r2t = true;
	lim->max_unexpected_pdus = c->xc->rdma_max_unexpected;
	if (lim->max_recv_dsl > c->xc->rdma_max_dsl)
		lim->max_recv_dsl = c->xc->rdma_max_dsl;
	c->params.max_recv_dsl = lim->max_recv_dsl;
	if (lim->first_burst > lim->max_recv_dsl)
		lim->first_burst = lim->max_recv_dsl;
}

static void login_process(struct iscsi_conn *c, struct iscsi_pdu *req)
{
	struct iscsi_target_limits lim;
	uint8_t f = req->bhs[BHS_FLAGS];
	int csg = ISCSI_LOGIN_CSG(f), nsg = ISCSI_LOGIN_NSG(f);
	bool transit = f & ISCSI_LOGIN_TRANSIT;
	struct iscsi_kv kv[LOGIN_KV_MAX];
	struct iscsi_textbuf tb;
	const char *detail = NULL;
	struct iscsi_pdu *rsp;
	uint16_t st = 0;
	int n;

	if (iscsi_textbuf_init(&tb, LOGIN_PDU_MAX)) {
		login_fail(c, req, ISCSI_LOGIN_STATUS_NO_RESOURCES, NULL);
		return;
	}
	n = c->login_text_len ? iscsi_text_parse(c->login_text, c->login_text_len, kv,
						 LOGIN_KV_MAX) : 0;
	if (n < 0) {
		st = ISCSI_LOGIN_STATUS_INIT_ERR;
		detail = "malformed text";
		goto fail;
	}
	if (!c->login_checked)
		login_auth_required(c, kv, (unsigned)n);
	conn_limits(c, &lim);
	st = (uint16_t)iscsi_negotiate(&c->params, &lim, csg, true,
				       c->chap.required ? "CHAP" : "None", kv, (unsigned)n, &tb);
	if (st)
		goto fail;
	if (!c->login_checked) {
		/* login_checked doubles as "session checks done" */
		st = login_session_checks(c, &tb, &detail);
		if (st)
			goto fail;
		c->login_checked = true;
	}
	st = login_auth(c, csg, &transit, kv, (unsigned)n, &tb, &detail);
	if (st)
		goto fail;
	if (transit && csg == ISCSI_STAGE_OPERATIONAL) {
		/* Our own offers must be answered before we may transit (§6.3). */
		int offers = iscsi_params_offer(&c->params, &lim, true, &tb);

		if (offers < 0) {
			st = ISCSI_LOGIN_STATUS_NO_RESOURCES;
			goto fail;
		}
		if (offers > 0)
			transit = false;
	}
	if (transit && csg == ISCSI_STAGE_SECURITY && nsg == ISCSI_STAGE_FULL)
		/* Skipping the operational stage would leave no room for our
		 * offers: the target chooses the operational stage next. */
		nsg = ISCSI_STAGE_OPERATIONAL;
	if (transit && nsg == ISCSI_STAGE_FULL) {
		st = (uint16_t)iscsi_params_finish(&c->params, &lim, &tb);
		if (st)
			goto fail;
	}
	free(c->login_text);
	c->login_text = NULL;
	c->login_text_len = 0;

	rsp = login_rsp_new(c, req->bhs);
	if (!rsp || conn_pdu_data(c, rsp, tb.len)) {
		iscsi_pdu_free(c, rsp);
		iscsi_textbuf_free(&tb);
		iscsi_pdu_free(c, req);
		conn_drop(c, "no memory for a login response");
		return;
	}
	if (tb.len)        /* an empty answer (one-way CHAP done) has no buffer */
		memcpy(rsp->data, tb.buf, tb.len);
	iscsi_textbuf_free(&tb);
	iscsi_pdu_free(c, req);
	rsp->bhs[1] = (uint8_t)(csg << 2);
	if (transit) {
		rsp->bhs[1] |= (uint8_t)(ISCSI_LOGIN_TRANSIT | nsg);
		c->login_stage = nsg;
		if (nsg == ISCSI_STAGE_FULL) {
			login_to_ffp(c, rsp);
			return;
		}
	}
	conn_send(c, rsp, true);
	return;
fail:
	iscsi_textbuf_free(&tb);
	login_fail(c, req, st, detail);
}

void login_recv(struct iscsi_conn *c, struct iscsi_pdu *p, int rx_status)
{
	uint16_t st;
	int rc;

	if (bhs_opcode(p->bhs) != ISCSI_OP_LOGIN_REQ) {
		/* RFC 7143 §6.1: only Login Requests until full feature phase. */
		iscsi_pdu_free(c, p);
		conn_drop(c, "non-login PDU during login");
		return;
	}
	if (c->state == CONN_LOGIN_WAIT) {
		iscsi_pdu_free(c, p);
		conn_drop(c, "login request while the previous one is pending");
		return;
	}
	if (c->login_delaying) {
		/* Failed; its answer is on the way. */
		iscsi_pdu_free(c, p);
		return;
	}
	if (rx_status) {
		login_fail(c, p, ISCSI_LOGIN_STATUS_INIT_ERR, "malformed login request");
		return;
	}
	st = login_header_checks(c, p->bhs);
	if (st) {
		login_fail(c, p, st, NULL);
		return;
	}
	rc = login_collect(c, p);
	if (rc) {
		login_fail(c, p, ISCSI_LOGIN_STATUS_INIT_ERR, "login text too long");
		return;
	}
	if (p->bhs[BHS_FLAGS] & ISCSI_LOGIN_CONTINUE) {
		/* More text follows: an empty response asks for it (§6.4). */
		struct iscsi_pdu *rsp = login_rsp_new(c, p->bhs);

		if (!rsp) {
			iscsi_pdu_free(c, p);
			conn_drop(c, "no memory for a login response");
			return;
		}
		rsp->bhs[1] = (uint8_t)(ISCSI_LOGIN_CSG(p->bhs[BHS_FLAGS]) << 2);
		iscsi_pdu_free(c, p);
		conn_send(c, rsp, true);
		return;
	}
	login_process(c, p);
}
