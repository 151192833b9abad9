/* text.c — Text (RFC 7143 §11.10/§11.11, SendTargets §12.3 / Appendix C),
 * NOP-Out/NOP-In (§11.18/§11.19), Logout (§11.14/§11.15) and the target's
 * request for one (Async Message, AsyncEvent 1, §11.9).
 *
 * Text: a request split with the C bit is collected (each part acknowledged
 * by an empty response with F=0 and a TTT); a response longer than the
 * initiator's MaxRecvDataSegmentLength goes out in parts with the C bit and a
 * TTT, the initiator asking for each next part with an empty request echoing
 * that TTT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/reactor.h"
#include "internal.h"

#define TEXT_KV_MAX 64

static uint32_t text_ttt(struct iscsi_conn *c)
{
	uint32_t ttt = c->next_ttt++;

	if (ttt == TTT_NONE || ttt == 0)
		ttt = c->next_ttt++ == 0 ? c->next_ttt++ : 1;
	return ttt;
}

static struct iscsi_pdu *text_rsp_new(struct iscsi_conn *c, uint32_t itt)
{
	struct iscsi_pdu *p = conn_pdu_new(c, ISCSI_OP_TEXT_RSP);

	if (p) {
		put_be32(p->bhs + BHS_ITT, itt);
		put_be32(p->bhs + BHS_TTT, TTT_NONE);
	}
	return p;
}

static void text_rsp_reset(struct iscsi_conn *c)
{
	iscsi_textbuf_free(&c->text_rsp);
	c->text_rsp_active = false;
	c->text_rsp_off = 0;
}

/* Sends the next part of the pending response. */
static void text_send_part(struct iscsi_conn *c)
{
	uint32_t max = c->params.max_xmit_dsl ? c->params.max_xmit_dsl : 8192;
	uint32_t left = c->text_rsp.len - c->text_rsp_off;
	uint32_t len = left < max ? left : max;
	struct iscsi_pdu *p = text_rsp_new(c, c->text_rsp_itt);

	if (!p || conn_pdu_data(c, p, len)) {
		iscsi_pdu_free(c, p);
		text_rsp_reset(c);
		conn_drop(c, "no memory for a Text Response");
		return;
	}
	if (len)
		memcpy(p->data, c->text_rsp.buf + c->text_rsp_off, len);
	c->text_rsp_off += len;
	if (c->text_rsp_off < c->text_rsp.len) {
		p->bhs[1] = ISCSI_TEXT_CONTINUE;
		c->text_rsp_ttt = text_ttt(c);
		put_be32(p->bhs + BHS_TTT, c->text_rsp_ttt);
	} else {
		p->bhs[1] = ISCSI_FLAG_FINAL;
		text_rsp_reset(c);
	}
	conn_send(c, p, true);
}

static int sendtargets(struct iscsi_conn *c, const char *value, struct iscsi_textbuf *tb)
{
	if (c->sess.type == ISCSI_SESSION_NORMAL) {
		/* In a normal session: the session's own target ("" or All). */
		if (!value[0] || strcmp(value, "All") == 0)
			value = c->sess.tgt ? c->sess.tgt->name : "";
	} else if (!value[0]) {
		return 0;
	}
	return reg_sendtargets(c, value, tb);
}

static void text_answer(struct iscsi_conn *c, const uint8_t *req_bhs)
{
	uint32_t itt = bhs_itt(req_bhs);
	struct iscsi_kv kv[TEXT_KV_MAX];
	struct iscsi_kv rest[TEXT_KV_MAX];
	unsigned nrest = 0;
	int n, rc = 0;

	text_rsp_reset(c);
	if (iscsi_textbuf_init(&c->text_rsp, TEXT_RSP_MAX)) {
		conn_drop(c, "no memory for a Text Response");
		return;
	}
	n = c->text_req_len ? iscsi_text_parse(c->text_req, c->text_req_len, kv, TEXT_KV_MAX) : 0;
	if (n < 0) {
		log_debug("iscsi: %s: malformed text request", c->peer);
		n = 0;
	}
	for (int i = 0; i < n && rc == 0; i++) {
		if (strcmp(kv[i].key, "SendTargets") == 0)
			rc = sendtargets(c, kv[i].value, &c->text_rsp);
		else
			rest[nrest++] = kv[i];
	}
	if (rc == 0 && nrest)
		rc = iscsi_negotiate_text(&c->params, &iscsi_opts_cur.limits, rest, nrest,
					  &c->text_rsp);
	free(c->text_req);
	c->text_req = NULL;
	c->text_req_len = 0;
	if (rc == -EPROTO) {
		/* A key repeated in one request (RFC 7143 §6.1). */
		text_rsp_reset(c);
		conn_send_reject(c, req_bhs, ISCSI_REJECT_PROTOCOL_ERROR);
		return;
	}
	if (rc == -E2BIG)
		log_warn("iscsi: %s: text response truncated at %u bytes", c->peer,
			 TEXT_RSP_MAX);
	c->text_rsp_active = true;
	c->text_rsp_itt = itt;
	c->text_rsp_off = 0;
	text_send_part(c);
}

void text_recv(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	uint32_t itt = bhs_itt(p->bhs);
	uint32_t ttt = get_be32(p->bhs + BHS_TTT);
	bool cont = p->bhs[BHS_FLAGS] & ISCSI_TEXT_CONTINUE;

	if (ttt != TTT_NONE && c->text_rsp_active && ttt == c->text_rsp_ttt &&
	    !c->text_req_len) {
		/* The initiator asks for the next part of our response. */
		iscsi_pdu_free(c, p);
		text_send_part(c);
		return;
	}
	if (ttt != TTT_NONE && !c->text_req_len) {
		text_rsp_reset(c);
		conn_send_reject(c, p->bhs, ISCSI_REJECT_INVALID_PDU_FIELD);
		iscsi_pdu_free(c, p);
		return;
	}
	/* A new request abandons a response still in parts (§11.10.4). */
	text_rsp_reset(c);
	if (p->data_len) {
		char *t;

		if (c->text_req_len + p->data_len > TEXT_REQ_MAX) {
			iscsi_pdu_free(c, p);
			conn_drop(c, "text request too long");
			return;
		}
		t = realloc(c->text_req, c->text_req_len + p->data_len);
		if (!t) {
			iscsi_pdu_free(c, p);
			conn_drop(c, "no memory for a text request");
			return;
		}
		memcpy(t + c->text_req_len, p->data, p->data_len);
		c->text_req = t;
		c->text_req_len += p->data_len;
	}
	if (cont) {
		struct iscsi_pdu *r = text_rsp_new(c, itt);

		iscsi_pdu_free(c, p);
		if (!r) {
			conn_drop(c, "no memory for a Text Response");
			return;
		}
		put_be32(r->bhs + BHS_TTT, text_ttt(c));
		conn_send(c, r, true);
		return;
	}
	text_answer(c, p->bhs);
	iscsi_pdu_free(c, p);
}

/* ---- NOP ---- */

void nop_out_recv(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	uint32_t itt = bhs_itt(p->bhs);
	uint32_t ttt = get_be32(p->bhs + BHS_TTT);
	struct iscsi_pdu *r;
	uint32_t len;

	if (itt == ITT_RESERVED) {
		/* An answer to our ping, or a bare keep-alive: no response. */
		if (ttt != TTT_NONE && c->ping_out && ttt == c->ping_ttt)
			c->ping_out = false;
		iscsi_pdu_free(c, p);
		return;
	}
	/* A ping: NOP-In echoes its data (up to what the initiator accepts). */
	len = p->data_len;
	if (c->params.max_xmit_dsl && len > c->params.max_xmit_dsl)
		len = c->params.max_xmit_dsl;
	r = conn_pdu_new(c, ISCSI_OP_NOP_IN);
	if (!r || conn_pdu_data(c, r, len)) {
		iscsi_pdu_free(c, r);
		iscsi_pdu_free(c, p);
		conn_drop(c, "no memory for a NOP-In");
		return;
	}
	if (len)
		memcpy(r->data, p->data, len);
	r->bhs[1] = ISCSI_FLAG_FINAL;
	memcpy(r->bhs + BHS_LUN, p->bhs + BHS_LUN, 8);
	put_be32(r->bhs + BHS_ITT, itt);
	put_be32(r->bhs + BHS_TTT, TTT_NONE);
	iscsi_pdu_free(c, p);
	conn_send(c, r, true);
}

void conn_send_ping(struct iscsi_conn *c)
{
	struct iscsi_pdu *p = conn_pdu_new(c, ISCSI_OP_NOP_IN);

	if (!p)
		return;   /* try again next tick */
	c->ping_ttt = text_ttt(c);
	c->ping_out = true;
	p->bhs[1] = ISCSI_FLAG_FINAL;
	put_be32(p->bhs + BHS_ITT, ITT_RESERVED);
	put_be32(p->bhs + BHS_TTT, c->ping_ttt);
	conn_send(c, p, false);   /* StatSN not advanced (§11.19.1) */
}

/* ---- Logout ---- */

#define LOGOUT_CLOSE_SESSION 0
#define LOGOUT_CLOSE_CONN    1
#define LOGOUT_RECOVERY      2

#define LOGOUT_RSP_OK            0
#define LOGOUT_RSP_CID_NOT_FOUND 1
#define LOGOUT_RSP_NO_RECOVERY   2

static void send_logout_rsp(struct iscsi_conn *c, uint32_t itt, uint8_t response, bool close)
{
	struct iscsi_pdu *p = conn_pdu_new(c, ISCSI_OP_LOGOUT_RSP);

	if (!p) {
		conn_drop(c, "no memory for a Logout Response");
		return;
	}
	p->bhs[1] = ISCSI_FLAG_FINAL;
	p->bhs[2] = response;
	put_be32(p->bhs + BHS_ITT, itt);
	/* Time2Wait / Time2Retain: 0 (ERL 0 keeps nothing to reconnect to). */
	if (close)
		conn_send_and_close(c, p, true);
	else
		conn_send(c, p, true);
}

/* The response goes once every earlier command has finished (§11.14). */
void conn_logout_check(struct iscsi_conn *c)
{
	for (struct iscsi_task *t = c->tasks; t; t = t->next)
		if (t->kind != TASK_PDU)
			return;
	c->logout_pending = false;
	if (c->state == CONN_DEAD)
		return;
	send_logout_rsp(c, c->logout_itt, c->logout_response, true);
}

void logout_recv(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	uint8_t reason = p->bhs[BHS_FLAGS] & 0x7f;
	uint32_t itt = bhs_itt(p->bhs);
	uint16_t cid = get_be16(p->bhs + BHS_TTT);

	switch (reason) {
	case LOGOUT_CLOSE_SESSION:
	case LOGOUT_CLOSE_CONN:
		if (reason == LOGOUT_CLOSE_CONN && cid != c->cid) {
			send_logout_rsp(c, itt, LOGOUT_RSP_CID_NOT_FOUND, false);
			break;
		}
		log_debug("iscsi: %s: logout (%s)", c->peer,
			  reason ? "close connection" : "close session");
		c->state = CONN_LOGOUT;
		c->logout_pending = true;
		c->logout_itt = itt;
		c->logout_response = LOGOUT_RSP_OK;
		conn_logout_check(c);
		break;
	case LOGOUT_RECOVERY:
		/* ERL 0: no connection recovery. */
		send_logout_rsp(c, itt, LOGOUT_RSP_NO_RECOVERY, false);
		break;
	default:
		conn_send_reject(c, p->bhs, ISCSI_REJECT_INVALID_PDU_FIELD);
		break;
	}
	iscsi_pdu_free(c, p);
}

/* ---- Async Message: "target requests logout" (§11.9.1) ---- */

#define ASYNC_EVENT_LOGOUT_REQUEST 1
#define BHS_ASYNC_EVENT            36
#define BHS_ASYNC_PARAM3           42
/* After Parameter3 runs out: the initiator's logout may be in flight. */
#define LOGOUT_REQUEST_GRACE_US    2000000ull

void conn_request_logout(struct iscsi_conn *c, unsigned secs)
{
	struct iscsi_pdu *p;
	uint64_t now;

	if (c->state != CONN_FULL || c->logout_requested)
		return;   /* logging in, logging out already, or closing */
	if (c->sess.type != ISCSI_SESSION_NORMAL) {
		conn_drop(c, "logout requested (discovery session)");
		return;
	}
	p = conn_pdu_new(c, ISCSI_OP_ASYNC);
	if (!p) {
		conn_drop(c, "logout requested; no memory for the Async Message");
		return;
	}
	if (secs > 0xffff)
		secs = 0xffff;
	p->bhs[1] = ISCSI_FLAG_FINAL;
	put_be32(p->bhs + BHS_ITT, ITT_RESERVED);
	p->bhs[BHS_ASYNC_EVENT] = ASYNC_EVENT_LOGOUT_REQUEST;
	put_be16(p->bhs + BHS_ASYNC_PARAM3, (uint16_t)secs);
	now = c->ir->r ? reactor_now_us(c->ir->r) : clock_now_us();
	c->logout_requested = true;
	c->logout_deadline_us = now + secs * 1000000ull + LOGOUT_REQUEST_GRACE_US;
	log_info("iscsi: asking %s (%s, target %s) to log out within %u s", c->peer,
		 c->sess.initiator_name, conn_target_name(c), secs);
	conn_send(c, p, true);   /* an Async Message carries a StatSN of its own */
}
