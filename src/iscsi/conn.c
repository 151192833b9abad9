/* conn.c — connections: creation, PDU dispatch, sending, teardown, timers, and
 * the per-reactor context (caches, bdev queue pair, stop hook).
 *
 * Lifetime: conn_drop() makes a connection dead at once (transport closed,
 * tasks aborted); the memory goes when the last task finished its I/O and no
 * engine frame holds a ref (every entry point — PDU received, PDU written,
 * SCSI done, timer, message — holds one while it runs).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bdev/bdev.h"
#include "core/log.h"
#include "core/reactor.h"
#include "core/zero.h"
#include "internal.h"
#include "mem/pool.h"
#include "mem/slab.h"

#define TICK_US 1000000ull

uint64_t iscsi_now_us(const struct iscsi_reactor *ir)
{
	return ir->r ? reactor_now_us(ir->r) : clock_now_us();
}

/* The context of the reactor running this code (reactor 0 outside reactors,
 * i.e. in unit tests). */
static struct iscsi_reactor *ir_here(void)
{
	struct reactor *r = reactor_self();

	return iscsi_reactor_of(r ? reactor_id(r) : 0);
}

/* ---- per reactor ---- */

static void reactor_tick(void *arg)
{
	struct iscsi_reactor *ir = arg;
	uint64_t now = iscsi_now_us(ir);
	struct iscsi_conn *c, *next;

	for (c = ir->conns; c; c = next) {
		conn_get(c);
		conn_tick(c, now);
		next = c->next;
		conn_put(c);
	}
}

void iscsi_reactor_teardown(struct iscsi_reactor *ir)
{
	if (ir->stopped)
		return;
	if (ir->tick && ir->r)
		reactor_timer_cancel(ir->r, ir->tick);
	ir->tick = NULL;
	sweep_reactor_teardown(ir);
	if (ir->qp)
		bdev_qp_destroy(ir->qp);
	ir->qp = NULL;
	if (ir->pdu_cache)
		slab_cache_destroy(ir->pdu_cache);
	if (ir->task_cache)
		slab_cache_destroy(ir->task_cache);
	ir->pdu_cache = ir->task_cache = NULL;
	ir->stopped = true;
}

/* Asks full-feature sessions to log out and drops the other connections;
 * drops what is left once they are gone or the shutdown timeout passed, then
 * reports done once their tasks' I/O finished. */
static bool reactor_stop_hook(void *arg)
{
	struct iscsi_reactor *ir = arg;
	unsigned secs = iscsi_shutdown_timeout();
	struct iscsi_conn *c, *next;
	uint64_t now = iscsi_now_us(ir);

	if (!ir->stopping) {
		ir->stopping = true;
		ir->stop_deadline_us = now + secs * 1000000ull;
		for (c = ir->conns; c; c = next) {
			conn_get(c);
			if (secs && c->state == CONN_FULL)
				conn_request_logout(c, secs);
			else if (c->state != CONN_LOGOUT && c->state != CONN_CLOSING)
				conn_drop(c, "shutting down");
			next = c->next;
			conn_put(c);
		}
	}
	if (!ir->stop_forced && (ir->nconns == 0 || now >= ir->stop_deadline_us)) {
		ir->stop_forced = true;
		for (c = ir->conns; c; c = next) {
			conn_get(c);
			conn_drop(c, "shutting down (did not log out in time)");
			next = c->next;
			conn_put(c);
		}
	}
	/* Sweeps started here wait for other reactors' answers; those come
	 * while every reactor still runs its hooks. */
	if (ir->nconns || ir->sweeps_out)
		return false;
	iscsi_reactor_teardown(ir);
	return true;
}

int iscsi_reactor_start(struct reactor *r)
{
	struct iscsi_reactor *ir = calloc(1, sizeof(*ir));
	int rc;

	if (!ir)
		return -ENOMEM;
	ir->r = r;
	ir->id = reactor_id(r);
	ir->pool = reactor_pool(r);
	ir->pdu_cache = slab_cache_create(ir->pool, "iscsi_pdu", sizeof(struct iscsi_pdu), 64);
	ir->task_cache = slab_cache_create(ir->pool, "iscsi_task", sizeof(struct iscsi_task), 64);
	ir->qp = bdev_qp_create(r, iscsi_opts_cur.bdev_depth);
	if (!ir->pdu_cache || !ir->task_cache || !ir->qp) {
		rc = -ENOMEM;
		goto fail;
	}
	ir->tick = reactor_timer_add(r, TICK_US, TICK_US, reactor_tick, ir);
	if (!ir->tick) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = reactor_stop_hook_add(r, reactor_stop_hook, ir);
	if (rc)
		goto fail;
	iscsi_reactor_register(ir);
	return 0;
fail:
	log_err("iscsi: reactor %u: cannot set up: %s", ir->id, strerror(-rc));
	iscsi_reactor_teardown(ir);
	free(ir);
	return rc;
}

/* ---- connections ---- */

struct iscsi_conn *iscsi_conn_new(struct xport_conn *xc)
{
	struct iscsi_reactor *ir = iscsi_reactor_of(xc->reactor ? reactor_id(xc->reactor) : 0);
	struct iscsi_conn *c;

	if (!ir || ir->stopping || ir->stopped)
		return NULL;
	c = mem_zalloc(ir->pool, sizeof(*c));
	if (!c) {
		log_warn("iscsi: no memory for a new connection from %s", xc->peer_addr);
		return NULL;
	}
	c->ir = ir;
	c->xc = xc;
	c->id = iscsi_next_id();
	c->state = CONN_LOGIN;
	c->login_stage = -1;
	c->login_start_us = c->last_rx_us = iscsi_now_us(ir);
	c->next_ttt = 1;
	iscsi_params_init(&c->params, &iscsi_opts_cur.limits);
	if (xc->family == AF_INET6)
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", xc->peer_addr, xc->peer_port);
	else
		snprintf(c->peer, sizeof(c->peer), "%s:%u", xc->peer_addr, xc->peer_port);
	xc->conn = c;
	xc->max_recv_dsl = LOGIN_PDU_MAX;
	xc->header_digest = xc->data_digest = false;
	c->next = ir->conns;
	if (ir->conns)
		ir->conns->prev = c;
	ir->conns = c;
	ir->nconns++;
	log_debug("iscsi: connection from %s", c->peer);
	return c;
}

struct iscsi_conn *conn_find(struct iscsi_reactor *ir, uint64_t id)
{
	for (struct iscsi_conn *c = ir ? ir->conns : NULL; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

const char *conn_target_name(const struct iscsi_conn *c)
{
	if (c->sess.tgt)
		return c->sess.tgt->name;
	if (c->login_tgt)
		return c->login_tgt->name;
	return c->params.session_type == ISCSI_SESSION_DISCOVERY ? "(discovery)" : "(none)";
}

static void conn_free(struct iscsi_conn *c)
{
	struct iscsi_reactor *ir = c->ir;
	struct iscsi_session *s = &c->sess;

	if (s->nexus_attached && s->tgt)
		scsi_nexus_detach(s->tgt->st, &s->nexus);
	s->nexus_attached = false;
	if (s->tsih && s->type != ISCSI_SESSION_NONE)
		log_info("logout: initiator %s at %s, target %s, tsih %u",
			 s->initiator_name, c->peer,
			 s->tgt ? s->tgt->name : "(discovery)", s->tsih);
	reg_session_leave(s);
	reg_target_put(s->tgt);
	s->tgt = NULL;
	reg_target_put(c->login_tgt);
	c->login_tgt = NULL;
	if (c->login_final)
		iscsi_pdu_free(c, c->login_final);
	free(c->login_text);
	free(c->text_req);
	iscsi_textbuf_free(&c->text_rsp);
	if (c->prev)
		c->prev->next = c->next;
	else
		ir->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ir->nconns--;
	c->freed = true;
	mem_free(ir->pool, c);
}

void conn_get(struct iscsi_conn *c)
{
	c->refs++;
}

static void conn_maybe_free(struct iscsi_conn *c)
{
	if (c->refs == 0 && c->state == CONN_DEAD && c->ntasks == 0)
		conn_free(c);
}

void conn_put(struct iscsi_conn *c)
{
	c->refs--;
	conn_maybe_free(c);
}

void conn_task_gone(struct iscsi_conn *c)
{
	c->ntasks--;
	if (c->state != CONN_DEAD)
		cmdsn_window_update(c);
	conn_maybe_free(c);
}

void conn_drop(struct iscsi_conn *c, const char *why)
{
	struct xport_conn *xc = c->xc;
	struct iscsi_task *t, *next;

	if (c->state == CONN_DEAD)
		return;
	conn_get(c);
	if (why)
		log_info("iscsi: closing connection %s (%s, target %s): %s", c->peer,
			 c->params.initiator_name[0] ? c->params.initiator_name : "?",
			 conn_target_name(c), why);
	c->state = CONN_DEAD;
	c->xc = NULL;
	if (xc)
		xc->ops->close(xc);   /* hands queued PDUs back, then forgets c */
	/* Held commands and parked TMFs never ran; everything is aborted (no
	 * response). TMFs and sweeps of this session forget it (sweep.c). */
	held_clear(c);
	tmf_unpark_all(c);
	for (t = c->tasks; t; t = next) {
		next = t->next;
		task_abort(t);
	}
	conn_put(c);
}

/* ---- PDUs ---- */

/* Clears what every new PDU must start with; data_iov[] is only read below
 * data_iovcnt and is left as it is. */
static void pdu_clear(struct iscsi_pdu *p)
{
	zero_small(p, offsetof(struct iscsi_pdu, data_iov));
	zero_small(&p->data_iovcnt, sizeof(*p) - offsetof(struct iscsi_pdu, data_iovcnt));
}

struct iscsi_pdu *iscsi_pdu_alloc(struct iscsi_conn *c)
{
	struct iscsi_pdu *p;

	if (!c->ir->pdu_cache)
		return NULL;
	p = slab_alloc(c->ir->pdu_cache);
	if (p)
		pdu_clear(p);
	return p;
}

void iscsi_pdu_free(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	if (!p)
		return;
	if (p->rx_placed && p->task) {
		/* The transport is done writing into the task's buffer. */
		struct iscsi_task *t = p->task;

		p->task = NULL;
		t->rx_pins--;
		task_maybe_release(t);
	}
	if (p->data_owned)
		mem_free(c->ir->pool, p->data);
	if (p->ahs)
		mem_free(c->ir->pool, p->ahs);
	if (p->in_task)
		task_of_inline_pdu(p)->pdu_inline_busy = false;
	else
		slab_free(c->ir->pdu_cache, p);
}

struct iscsi_pdu *conn_pdu_new(struct iscsi_conn *c, uint8_t opcode)
{
	struct iscsi_pdu *p = iscsi_pdu_alloc(c);

	if (p)
		p->bhs[0] = opcode;
	return p;
}

/* A PDU about task t that keeps t alive until it is written (tx_refs): the
 * task's own inline PDU when it is free — a 4 KiB read's Data-In, a write's
 * SCSI Response — else one from the cache. */
struct iscsi_pdu *task_pdu_new(struct iscsi_task *t, uint8_t opcode)
{
	struct iscsi_pdu *p;

	if (!t->pdu_inline_busy) {
		p = &t->pdu_inline;
		pdu_clear(p);
		p->in_task = true;
		t->pdu_inline_busy = true;
	} else if (!(p = iscsi_pdu_alloc(t->conn))) {
		return NULL;
	}
	p->bhs[0] = opcode;
	p->task = t;
	t->tx_refs++;
	return p;
}

int conn_pdu_data(struct iscsi_conn *c, struct iscsi_pdu *p, uint32_t len)
{
	if (len == 0)
		return 0;
	p->data = mem_alloc(c->ir->pool, ISCSI_PAD(len));
	if (!p->data)
		return -ENOMEM;
	p->data_owned = true;
	p->data_len = len;
	put_be24(p->bhs + BHS_DLEN, len);
	/* Padding goes out as zeroes (the transport may send it from here). */
	memset(p->data + len, 0, ISCSI_PAD(len) - len);
	return 0;
}

static void pdu_done(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	struct iscsi_task *t = p->task;

	if (p->sent) {
		p->sent(p);
	} else if (p->in_task) {
		/* Freed first: the task (and the PDU in it) may go with tx_done. */
		iscsi_pdu_free(c, p);
		task_tx_done(t);
		return;
	} else if (t) {
		task_tx_done(t);
	}
	iscsi_pdu_free(c, p);
}

void iscsi_conn_tx_done(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	conn_get(c);
	if (bhs_opcode(p->bhs) != ISCSI_OP_DATA_IN && c->tx_ctl)
		c->tx_ctl--;
	pdu_done(c, p);
	conn_put(c);
}

void conn_send(struct iscsi_conn *c, struct iscsi_pdu *p, bool adv_statsn)
{
	uint8_t op = bhs_opcode(p->bhs);

	/* Data-In without status carries no StatSN (reserved). */
	if (op != ISCSI_OP_DATA_IN || (p->bhs[1] & ISCSI_DATAIN_STATUS))
		put_be32(p->bhs + BHS_STATSN, adv_statsn ? c->stat_sn++ : c->stat_sn);
	put_be32(p->bhs + BHS_EXPCMDSN, c->sess.exp_cmd_sn);
	put_be32(p->bhs + BHS_MAXCMDSN, c->sess.max_cmd_sn);
	put_be24(p->bhs + BHS_DLEN, p->data_len);
	if (c->state == CONN_DEAD || !c->xc || c->xc->ops->send(c->xc, p) != 0)
		pdu_done(c, p);
	else if (op != ISCSI_OP_DATA_IN)
		c->tx_ctl++;
}

static void sent_then_close(struct iscsi_pdu *p)
{
	struct iscsi_conn *c = p->task;

	conn_drop(c, NULL);
}

void conn_send_and_close(struct iscsi_conn *c, struct iscsi_pdu *p, bool adv)
{
	p->sent = sent_then_close;
	p->task = c;
	if (c->state != CONN_DEAD)
		c->state = CONN_CLOSING;
	conn_send(c, p, adv);
}

/* RFC 7143 §11.17: the rejected header goes back as the data segment. */
void conn_send_reject(struct iscsi_conn *c, const uint8_t *bhs, uint8_t reason)
{
	struct iscsi_pdu *p = conn_pdu_new(c, ISCSI_OP_REJECT);

	log_debug("iscsi: %s: reject opcode 0x%02x itt 0x%08x reason 0x%02x", c->peer,
		  bhs_opcode(bhs), bhs_itt(bhs), reason);
	if (!p || conn_pdu_data(c, p, ISCSI_BHS_LEN)) {
		if (p)
			iscsi_pdu_free(c, p);
		conn_drop(c, "no memory for a Reject");
		return;
	}
	p->bhs[1] = ISCSI_FLAG_FINAL;
	p->bhs[2] = reason;
	put_be32(p->bhs + BHS_ITT, ITT_RESERVED);
	memcpy(p->data, bhs, ISCSI_BHS_LEN);
	conn_send(c, p, true);
}

/* ---- receive ---- */

/* Responses, R2Ts and NOP-Ins a reading initiator can have unwritten at
 * once: one status and up to TASK_MAX_R2T R2Ts per task of its window, and
 * some slack. Beyond that it sends without reading (immediate commands and
 * pings take no CmdSN), and what piles up for it would only grow. */
static bool peer_not_reading(const struct iscsi_conn *c)
{
	return c->tx_ctl > iscsi_opts_cur.queue_depth * (TASK_MAX_R2T + 2) + 64;
}

static void ffp_recv(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	uint8_t op = bhs_opcode(p->bhs);
	bool discovery = c->sess.type == ISCSI_SESSION_DISCOVERY;

	if (peer_not_reading(c)) {
		iscsi_pdu_free(c, p);
		conn_drop(c, "the initiator does not read what it asked for");
		return;
	}

	if (discovery && op != ISCSI_OP_TEXT_REQ && op != ISCSI_OP_LOGOUT_REQ) {
		/* RFC 7143 §4.3: discovery sessions carry Text and Logout only. */
		conn_send_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
		iscsi_pdu_free(c, p);
		return;
	}
	switch (op) {
	case ISCSI_OP_SCSI_CMD:
		scsi_cmd_recv(c, p);
		return;
	case ISCSI_OP_DATA_OUT:
		data_out_recv(c, p, 0);
		return;
	case ISCSI_OP_NOP_OUT:
		if (bhs_itt(p->bhs) == ITT_RESERVED) {
			/* No response wanted: must be immediate, takes no CmdSN. */
			nop_out_recv(c, p);
			return;
		}
		conn_dispatch_cmd(c, p);
		return;
	case ISCSI_OP_TMF_REQ:
	case ISCSI_OP_TEXT_REQ:
	case ISCSI_OP_LOGOUT_REQ:
		conn_dispatch_cmd(c, p);
		return;
	case ISCSI_OP_SNACK:
		/* ERL 0: no SNACK support (RFC 7143 §11.16). */
		conn_send_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
		break;
	case ISCSI_OP_LOGIN_REQ:
		conn_send_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
		break;
	default:
		conn_send_reject(c, p->bhs, ISCSI_REJECT_CMD_NOT_SUPPORTED);
		break;
	}
	iscsi_pdu_free(c, p);
}

void iscsi_conn_recv(struct iscsi_conn *c, struct iscsi_pdu *p, int rx_status)
{
	uint8_t op = bhs_opcode(p->bhs);

	conn_get(c);
	c->last_rx_us = iscsi_now_us(c->ir);
	if (c->state == CONN_DEAD || c->state == CONN_CLOSING) {
		iscsi_pdu_free(c, p);
		goto out;
	}
	if (c->state == CONN_LOGIN || c->state == CONN_LOGIN_WAIT) {
		login_recv(c, p, rx_status);
		goto out;
	}
	if (op != ISCSI_OP_SNACK && sn_gt(get_be32(p->bhs + BHS_EXPSTATSN), c->exp_stat_sn))
		c->exp_stat_sn = get_be32(p->bhs + BHS_EXPSTATSN);
	if (rx_status == ISCSI_REJECT_DATA_DIGEST && op == ISCSI_OP_DATA_OUT) {
		/* ERL 0 cannot ask for the data again (RFC 7143 §7.8). */
		iscsi_pdu_free(c, p);
		conn_drop(c, "data digest error in Data-Out");
		goto out;
	}
	if (rx_status > 0) {
		conn_send_reject(c, p->bhs, (uint8_t)rx_status);
		iscsi_pdu_free(c, p);
		goto out;
	}
	ffp_recv(c, p);
out:
	conn_put(c);
}

void iscsi_conn_xport_failed(struct iscsi_conn *c, int err)
{
	char why[96];

	conn_get(c);
	if (err == 0)
		snprintf(why, sizeof(why), "connection closed by peer");
	else
		snprintf(why, sizeof(why), "transport error: %s", strerror(err < 0 ? -err : err));
	/* A peer closing after its logout response is the normal end. */
	conn_drop(c, c->state == CONN_CLOSING ? NULL : why);
	conn_put(c);
}

/* ---- timers and messages ---- */

void conn_tick(struct iscsi_conn *c, uint64_t now)
{
	uint64_t interval = (uint64_t)iscsi_nop_interval() * 1000000u;
	uint64_t timeout = (uint64_t)iscsi_nop_timeout() * 1000000u;

	switch (c->state) {
	case CONN_LOGIN:
	case CONN_LOGIN_WAIT:
		if (now - c->login_start_us >= (uint64_t)iscsi_opts_cur.login_timeout * 1000000u)
			conn_drop(c, "login timed out");
		return;
	case CONN_FULL:
		if (c->logout_requested && now >= c->logout_deadline_us) {
			conn_drop(c, "did not log out when asked to");
			return;
		}
		break;
	case CONN_LOGOUT:
		break;
	default:
		return;
	}
	if (c->sess.type != ISCSI_SESSION_NORMAL || interval == 0)
		return;
	if (c->ping_out) {
		if (timeout && now - c->ping_sent_us >= timeout)
			conn_drop(c, "no answer to NOP-In ping");
		return;
	}
	if (now - c->last_rx_us >= interval) {
		c->ping_sent_us = now;
		conn_send_ping(c);
	}
}

void iscsi_session_kill_msg(void *a, void *b)
{
	struct iscsi_conn *c = conn_find(ir_here(), (uint64_t)(uintptr_t)a);

	if (c)
		conn_drop(c, b);
}

void iscsi_session_logout_msg(void *a, void *b)
{
	struct iscsi_conn *c = conn_find(ir_here(), (uint64_t)(uintptr_t)a);

	if (c) {
		conn_get(c);
		conn_request_logout(c, (unsigned)(uintptr_t)b);
		conn_put(c);
	}
}

struct iscsi_conn *conn_find_here(uint64_t id)
{
	return conn_find(ir_here(), id);
}
