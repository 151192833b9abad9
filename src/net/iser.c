/* iser.c — iSCSI over RDMA (iSER, RFC 7145): connections and the data path.
 *
 * Every iSCSI PDU travels as one RDMA Send/Receive message: a 28-byte iSER
 * header, the BHS, the AHS and the data segment (no padding, no digests: the
 * RCaP has its own CRC). Data-In never goes as PDUs: the engine hands the task
 * buffer to put_data(), posted as RDMA Write(s) to the initiator's Read STag,
 * and the SCSI Response Send queued behind it on the same send queue (an RC
 * send queue executes in order, so the initiator sees the data before the
 * status). Solicited Data-Out is an RDMA Read from the initiator's Write STag
 * (get_data()); no R2T goes on the wire. Immediate data arrives in the
 * command's receive buffer and is copied out with the PDU.
 *
 * Resources: per device a protection domain (iser_int.h); per reactor and
 * device one completion queue, shared by that reactor's connections on the
 * device and polled by a reactor poller, with its completion channel in the
 * epoll set (armed only when a poll found nothing) so sleeping poll modes
 * wake up; per reactor one rdma_cm event channel for its connections (the
 * listener migrates each new id there). Every buffer the device touches is
 * pool memory: each pool chunk is registered once per PD by the pool's
 * registration hook, and the lkey of any address is one O(1) lookup
 * (mem_pool_reg_handle_id). ibv_reg_mr never runs on the I/O path;
 * iser_mr_registrations() counts the registrations so tests can check it.
 *
 * Receive: ISER_RX_BUFS buffers (one buddy block) stay posted; a message is
 * parsed with bounds checks (iSER header, BHS through iscsi_pdu_check_header,
 * lengths against what arrived), copied into a PDU, the buffer reposted at
 * once, then the PDU handed to the engine. iSER Hello gets a HelloReply.
 *
 * Send queue flow control: work requests are posted while the send queue has
 * room; the rest waits in a FIFO (in order, so a response never overtakes its
 * RDMA Write) and is posted as completions free room. Whatever is waiting goes
 * in one ibv_post_send; an RDMA Write (Data-In) waits for the SCSI Response
 * Send the engine queues right behind it, so a read costs one doorbell (a
 * deferred flush posts the Write alone if no Send follows). Sends are copies (the
 * PDU is handed back when the Send completes, or at close); RDMA ops pin the
 * task buffer until their completion upcall.
 *
 * Closing: close() hands back queued PDUs, disconnects (QP to error: every
 * posted work request completes, flushed) and the connection is freed once
 * all its work requests completed — RDMA ops report to the engine then, so
 * no task buffer is released while the device may still use it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/log.h"
#include "core/reactor.h"
#include "iscsi/iscsi.h"
#include "iscsi/pdu.h"
#include "mem/pool.h"
#include "net/iser_proto.h"
#include "net/transport.h"
#include "scsi/scsi.h"
#include "iser_int.h"

#define ISER_RX_BUFS      144u          /* CmdSN window (128) + immediate PDUs */
#define ISER_MAX_DSL      8192u         /* data segment a receive holds (TargetRecvDSL) */
#define ISER_RX_AHS_ROOM  256u
#define ISER_RX_STRIDE    ((ISER_HDR_LEN + ISCSI_BHS_LEN + ISER_RX_AHS_ROOM + ISER_MAX_DSL + 63u) & ~63u)
#define ISER_SQ_DEPTH     512
#define ISER_CQ_SIZE      8192
#define ISER_MAX_SGE      16
#define ISER_POLL_BATCH   32
#define ISER_DRAIN_WARN_US 5000000u
#define CHUNK_MASK        (~(uintptr_t)((2u << 20) - 1))

enum wr_kind { WR_RECV = 1, WR_SEND, WR_WRITE, WR_READ };

struct iser_conn;

struct iser_rx {
	uint8_t kind;                      /* WR_RECV; first, like iser_op */
	struct iser_conn *ic;
	uint8_t *buf;
};

struct iser_op {
	uint8_t kind;                      /* WR_SEND / WR_WRITE / WR_READ */
	struct iser_conn *ic;
	struct iser_op *next, *prev;       /* ic->ops: every live op */
	struct iser_op *qnext;             /* ic->pend FIFO, not yet posted */
	int nwr, left;                     /* work requests / not yet completed */
	int err;
	void *cookie;                      /* RDMA: the engine's */
	struct iscsi_pdu *pdu;             /* SEND: handed back on completion */
	uint8_t *buf;                      /* SEND: the message */
	uint64_t raddr;
	uint32_t rkey;
	bool fail_after;                   /* SEND: HelloReply reject, then fail */
	int nsge;
	struct ibv_sge sge[];
};

struct iser_rctx {                     /* per reactor */
	bool ready;
	struct rdma_event_channel *ech;
	struct reactor_event ev;
	unsigned nconns;
	uint64_t stop_start_us;
};

struct iser_conn {
	struct xport_conn xc;              /* first: the engine sees this */
	struct rdma_cm_id *id;
	struct ibv_qp *qp;
	struct iser_dev *dev;
	struct iser_rdev *rd;
	struct iser_rctx *rx_ctx;
	bool closed, failed, established, accepted, destroy_queued;
	bool flush_queued;                 /* held_flush() deferred, not run yet */
	int cq_reserved;
	/* receive */
	uint8_t *rx_block;
	struct iser_rx *rx;
	unsigned nrx, rq_posted;
	uint32_t rx_lkey;
	/* send queue */
	int sq_depth, sq_used, max_sge;
	struct iser_op *ops;
	struct iser_op *pend, *pend_tail;
	struct timer *drain_timer;
};

static struct iser_rctx rctxs[REACTOR_MAX];
static atomic_ulong mr_count;

static int iser_send(struct xport_conn *xc, struct iscsi_pdu *pdu);
static void iser_close(struct xport_conn *xc);
static int iser_put_data(struct xport_conn *xc, const struct iscsi_rdma_ref *ref,
			 const struct iovec *iov, int iovcnt, uint32_t len, void *cookie);
static int iser_get_data(struct xport_conn *xc, const struct iscsi_rdma_ref *ref,
			 const struct iovec *iov, int iovcnt, uint32_t len, void *cookie);

static const struct xport_ops iser_ops = {
	.name = "iser",
	.send = iser_send,
	.close = iser_close,
	.put_data = iser_put_data,
	.get_data = iser_get_data,
};

unsigned long iser_mr_registrations(void)
{
	return atomic_load(&mr_count);
}

/* ---- memory registration (the pool's hook) ---- */

static int mr_reg(void *ctx, void *addr, size_t len, void **handle)
{
	struct iser_dev *d = ctx;
	struct ibv_mr *mr = ibv_reg_mr(d->pd, addr, len, IBV_ACCESS_LOCAL_WRITE);

	if (!mr)
		return errno ? -errno : -ENOMEM;
	atomic_fetch_add(&mr_count, 1);
	*handle = mr;
	return 0;
}

static void mr_unreg(void *ctx, void *handle)
{
	(void)ctx;
	if (handle)
		ibv_dereg_mr(handle);
}

/* lkey of [addr, addr + len): one chunk, registered; 0 and -EFAULT if not. */
static int lkey_of(const struct iser_conn *ic, const void *addr, size_t len, uint32_t *lkey)
{
	const struct ibv_mr *mr;

	if (len && ((uintptr_t)addr & CHUNK_MASK) != (((uintptr_t)addr + len - 1) & CHUNK_MASK))
		return -EFAULT;
	mr = mem_pool_reg_handle_id(ic->xc.pool, ic->rd->reg_id, addr);
	if (!mr)
		return -EFAULT;
	*lkey = mr->lkey;
	return 0;
}

/* ---- per reactor / device setup (on the reactor's thread) ---- */

static void cq_dispatch(struct ibv_wc *wc);

static int cq_poll(void *arg)
{
	struct iser_rdev *rd = arg;
	struct ibv_wc wc[ISER_POLL_BATCH];
	int n, total = 0;

	if (!rd->cq)
		return 0;
	while (total < 8 * ISER_POLL_BATCH && (n = ibv_poll_cq(rd->cq, ISER_POLL_BATCH, wc)) > 0) {
		for (int i = 0; i < n; i++)
			cq_dispatch(&wc[i]);
		total += n;
	}
	if (total == 0 && !rd->armed) {
		/* Idle: ask for an event so a sleeping reactor wakes up, then
		 * look once more for what raced with the request. */
		if (ibv_req_notify_cq(rd->cq, 0) == 0)
			rd->armed = true;
		while ((n = ibv_poll_cq(rd->cq, ISER_POLL_BATCH, wc)) > 0) {
			for (int i = 0; i < n; i++)
				cq_dispatch(&wc[i]);
			total += n;
		}
	}
	return total;
}

static void cq_event(void *arg, uint32_t events)
{
	struct iser_rdev *rd = arg;
	struct ibv_cq *cq;
	void *ctx;

	(void)events;
	while (ibv_get_cq_event(rd->ch, &cq, &ctx) == 0) {
		ibv_ack_cq_events(cq, 1);
		rd->armed = false;
	}
	cq_poll(rd);
}

static int rdev_setup(struct iser_dev *d, struct reactor *r)
{
	struct iser_rdev *rd = &d->r[reactor_id(r)];
	struct mem_reg_ops ops = { .reg = mr_reg, .unreg = mr_unreg, .ctx = d };
	int rc;

	if (rd->ready)
		return 0;
	rd->ch = ibv_create_comp_channel(d->ctx);
	if (!rd->ch)
		return -errno;
	fcntl(rd->ch->fd, F_SETFL, fcntl(rd->ch->fd, F_GETFL) | O_NONBLOCK);
	rd->cq_size = d->attr.max_cqe < ISER_CQ_SIZE ? d->attr.max_cqe : ISER_CQ_SIZE;
	rd->cq = ibv_create_cq(d->ctx, rd->cq_size, rd, rd->ch, 0);
	if (!rd->cq) {
		rc = -errno;
		goto fail;
	}
	rd->cq_size = rd->cq->cqe;
	rc = mem_pool_add_reg(reactor_pool(r), &ops, &rd->reg_id);
	if (rc)
		goto fail;
	rd->reg_added = true;
	rd->ev = (struct reactor_event){ rd->ch->fd, cq_event, rd };
	rc = reactor_event_add(r, &rd->ev, EPOLLIN);
	if (rc)
		goto fail;
	rd->poller = reactor_poller_add(r, cq_poll, rd);
	if (!rd->poller) {
		reactor_event_del(r, &rd->ev);
		rc = -ENOMEM;
		goto fail;
	}
	if (ibv_req_notify_cq(rd->cq, 0) == 0)
		rd->armed = true;
	rd->ready = true;
	log_info("iser: reactor %u: device %s: completion queue of %d entries, pool registered",
		 reactor_id(r), ibv_get_device_name(d->ctx->device), rd->cq_size);
	return 0;
fail:
	if (rd->reg_added)
		mem_pool_del_reg(reactor_pool(r), rd->reg_id);
	rd->reg_added = false;
	if (rd->cq)
		ibv_destroy_cq(rd->cq);
	rd->cq = NULL;
	if (rd->ch)
		ibv_destroy_comp_channel(rd->ch);
	rd->ch = NULL;
	return rc ? rc : -EIO;
}

static void rdev_teardown(struct iser_dev *d, struct reactor *r)
{
	struct iser_rdev *rd = &d->r[reactor_id(r)];

	if (!rd->ready)
		return;
	rd->ready = false;
	reactor_poller_del(r, rd->poller);
	reactor_event_del(r, &rd->ev);
	if (rd->reg_added)
		mem_pool_del_reg(reactor_pool(r), rd->reg_id);
	rd->reg_added = false;
	ibv_destroy_cq(rd->cq);
	rd->cq = NULL;
	ibv_destroy_comp_channel(rd->ch);
	rd->ch = NULL;
}

static void cm_event(void *arg, uint32_t events);
static bool rctx_stop(void *arg);

static int rctx_setup(struct reactor *r)
{
	struct iser_rctx *x = &rctxs[reactor_id(r)];
	int rc;

	if (x->ready)
		return 0;
	x->ech = rdma_create_event_channel();
	if (!x->ech)
		return -errno;
	fcntl(x->ech->fd, F_SETFL, fcntl(x->ech->fd, F_GETFL) | O_NONBLOCK);
	x->ev = (struct reactor_event){ x->ech->fd, cm_event, x };
	rc = reactor_event_add(r, &x->ev, EPOLLIN);
	if (rc == 0)
		rc = reactor_stop_hook_add(r, rctx_stop, x);
	if (rc) {
		reactor_event_del(r, &x->ev);
		rdma_destroy_event_channel(x->ech);
		x->ech = NULL;
		return rc;
	}
	x->ready = true;
	return 0;
}

/* Shutdown: the engine's own stop hook closes our connections; once they
 * are all flushed and freed, the reactor's device resources go. */
static bool rctx_stop(void *arg)
{
	struct iser_rctx *x = arg;
	struct reactor *r = reactor_self();

	if (!x->stop_start_us)
		x->stop_start_us = reactor_now_us(r);
	if (x->nconns) {
		if (reactor_now_us(r) - x->stop_start_us < 10000000u)
			return false;
		log_err("iser: reactor %u: %u connections did not flush: leaving them",
			reactor_id(r), x->nconns);
		return true;
	}
	for (struct iser_dev *d = iser_dev_list; d; d = d->next)
		rdev_teardown(d, r);
	reactor_event_del(r, &x->ev);
	rdma_destroy_event_channel(x->ech);
	x->ech = NULL;
	x->ready = false;
	return true;
}

/* ---- connection helpers ---- */

static void fail(struct iser_conn *ic, int err)
{
	if (ic->failed || ic->closed)
		return;
	ic->failed = true;
	if (ic->xc.conn)
		iscsi_conn_xport_failed(ic->xc.conn, err);
}

static struct iser_op *op_new(struct iser_conn *ic, uint8_t kind, int nsge)
{
	struct iser_op *op = mem_zalloc(ic->xc.pool, sizeof(*op) + (size_t)nsge * sizeof(op->sge[0]));

	if (!op)
		return NULL;
	op->kind = kind;
	op->ic = ic;
	op->nsge = nsge;
	op->nwr = kind == WR_SEND ? 1 : (nsge + ic->max_sge - 1) / ic->max_sge;
	op->next = ic->ops;
	if (ic->ops)
		ic->ops->prev = op;
	ic->ops = op;
	return op;
}

static void op_free(struct iser_op *op)
{
	struct iser_conn *ic = op->ic;

	if (op->prev)
		op->prev->next = op->next;
	else
		ic->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	if (op->buf)
		mem_free(ic->xc.pool, op->buf);
	mem_free(ic->xc.pool, op);
}

/* The op is over (completed, flushed or never posted): tell whom it concerns. */
static void op_finish(struct iser_op *op)
{
	struct iser_conn *ic = op->ic;

	switch (op->kind) {
	case WR_SEND: {
		struct iscsi_pdu *p = op->pdu;

		/* Cleared first: tx_done may close the connection (a Logout
		 * Response), and close() hands back every PDU still held. */
		op->pdu = NULL;
		if (p && ic->xc.conn)
			iscsi_conn_tx_done(ic->xc.conn, p);
		if (op->fail_after && !op->err)
			fail(ic, -EPROTO);
		break;
	}
	case WR_WRITE:
		iscsi_rdma_put_done(op->cookie, op->err);
		break;
	case WR_READ:
		iscsi_rdma_get_done(op->cookie, op->err);
		break;
	}
	op_free(op);
}

/* Work requests of op appended at wr (room checked by the caller). */
static int build_wrs(struct iser_conn *ic, struct iser_op *op, struct ibv_send_wr *wr)
{
	uint64_t raddr = op->raddr;
	int s = 0;

	memset(wr, 0, sizeof(wr[0]) * (size_t)op->nwr);
	for (int i = 0; i < op->nwr; i++) {
		int n = op->nsge - s < ic->max_sge ? op->nsge - s : ic->max_sge;

		wr[i].wr_id = (uintptr_t)op;
		wr[i].sg_list = &op->sge[s];
		wr[i].num_sge = n;
		wr[i].send_flags = IBV_SEND_SIGNALED;
		wr[i].next = &wr[i + 1];
		if (op->kind == WR_SEND) {
			wr[i].opcode = IBV_WR_SEND;
		} else {
			wr[i].opcode = op->kind == WR_WRITE ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
			wr[i].wr.rdma.remote_addr = raddr;
			wr[i].wr.rdma.rkey = op->rkey;
			for (int k = 0; k < n; k++)
				raddr += op->sge[s + k].length;
		}
		s += n;
	}
	return op->nwr;
}

/* Posts the first nops ops of the FIFO (already unlinked, in order) as one
 * chain: one doorbell for an RDMA Write and the response Send behind it.
 * On a failure the ops the device took complete normally (flushed, as the
 * connection fails); the rest are over at once. */
static int post_ops(struct iser_conn *ic, struct iser_op **ops, int nops, int nwr)
{
	struct ibv_send_wr wr[SCSI_MAX_IOV], *bad = NULL;
	int w = 0, rc, posted;

	for (int i = 0; i < nops; i++)
		w += build_wrs(ic, ops[i], &wr[w]);
	wr[nwr - 1].next = NULL;
	rc = ibv_post_send(ic->qp, wr, &bad);
	posted = !rc ? nwr : bad >= wr && bad < wr + nwr ? (int)(bad - wr) : 0;
	for (int i = 0, at = 0; i < nops; i++) {
		struct iser_op *op = ops[i];
		int took = posted - at < 0 ? 0 : posted - at > op->nwr ? op->nwr : posted - at;

		at += op->nwr;     /* before op_finish() frees it */
		if (took < op->nwr)
			op->err = -rc;
		if (took) {
			op->left = took;
			ic->sq_used += took;
		} else {
			op_finish(op);
		}
	}
	return -rc;
}

/* Posts waiting ops, in order, while the send queue has room: as many as fit
 * go in one ibv_post_send. */
static void pend_drain(struct iser_conn *ic)
{
	while (ic->pend && !ic->closed && !ic->failed &&
	       ic->sq_used + ic->pend->nwr <= ic->sq_depth) {
		struct iser_op *batch[SCSI_MAX_IOV];
		int nops = 0, nwr = 0, rc;

		while (ic->pend && nops < SCSI_MAX_IOV && nwr + ic->pend->nwr <= SCSI_MAX_IOV &&
		       ic->sq_used + nwr + ic->pend->nwr <= ic->sq_depth) {
			struct iser_op *op = ic->pend;

			ic->pend = op->qnext;
			if (!ic->pend)
				ic->pend_tail = NULL;
			op->qnext = NULL;
			nwr += op->nwr;
			batch[nops++] = op;
		}
		rc = post_ops(ic, batch, nops, nwr);
		if (rc) {
			log_warn("iser: %s: ibv_post_send: %s", ic->xc.peer_addr, strerror(-rc));
			fail(ic, rc);
			return;
		}
	}
}

static void queue_op(struct iser_conn *ic, struct iser_op *op)
{
	op->qnext = NULL;
	if (ic->pend_tail)
		ic->pend_tail->qnext = op;
	else
		ic->pend = op;
	ic->pend_tail = op;
}

static void submit(struct iser_conn *ic, struct iser_op *op)
{
	queue_op(ic, op);
	pend_drain(ic);
}

static void maybe_destroy(struct iser_conn *ic);

static void held_flush(void *a, void *b)
{
	struct iser_conn *ic = a;

	(void)b;
	ic->flush_queued = false;
	pend_drain(ic);
	maybe_destroy(ic);
}

/* An RDMA Write waits for the SCSI Response the engine queues right after
 * it, so both go out with one doorbell (on rxe one system call and one run
 * of the requester less per read); a flush at the next turn posts it if no
 * Send comes. */
static int submit_held(struct iser_conn *ic, struct iser_op *op)
{
	if (!ic->flush_queued) {
		if (reactor_defer(held_flush, ic, NULL)) {
			submit(ic, op);
			return 0;
		}
		ic->flush_queued = true;
	}
	queue_op(ic, op);
	return 0;
}

static int rx_post(struct iser_conn *ic, struct iser_rx *rx)
{
	struct ibv_sge sge = { (uintptr_t)rx->buf, ISER_RX_STRIDE, ic->rx_lkey };
	struct ibv_recv_wr wr = { .wr_id = (uintptr_t)rx, .sg_list = &sge, .num_sge = 1 }, *bad;
	int rc = ibv_post_recv(ic->qp, &wr, &bad);

	if (rc)
		return -rc;
	ic->rq_posted++;
	return 0;
}

static void destroy(void *a, void *b);

static void maybe_destroy(struct iser_conn *ic)
{
	if (!ic->closed || ic->destroy_queued || ic->flush_queued || ic->sq_used || ic->rq_posted)
		return;
	ic->destroy_queued = true;
	if (reactor_defer(destroy, ic, NULL))
		log_err("iser: cannot defer freeing a connection (leaked)");
}

/* ---- send ---- */

/* Builds the Send message: iSER header (no STags: a target's control PDU),
 * BHS, AHS, data. Copied, so the PDU's memory is free again at once. */
static int build_send(struct iser_conn *ic, struct iscsi_pdu *p, struct iser_op *op)
{
	struct iser_hdr h = { 0 };
	uint32_t len = ISER_HDR_LEN + ISCSI_BHS_LEN + p->ahs_len + p->data_len;
	uint8_t *b = mem_alloc(ic->xc.pool, len), *w;

	if (!b)
		return -ENOMEM;
	op->buf = b;
	iser_hdr_build(b, len, &h);
	w = b + ISER_HDR_LEN;
	memcpy(w, p->bhs, ISCSI_BHS_LEN);
	w += ISCSI_BHS_LEN;
	if (p->ahs_len) {
		memcpy(w, p->ahs, p->ahs_len);
		w += p->ahs_len;
	}
	if (p->data_len && p->data_iovcnt > 0) {
		uint32_t left = p->data_len;

		for (int i = 0; i < p->data_iovcnt && i < 4 && left; i++) {
			uint32_t n = p->data_iov[i].iov_len < left ? (uint32_t)p->data_iov[i].iov_len : left;

			memcpy(w, p->data_iov[i].iov_base, n);
			w += n;
			left -= n;
		}
		if (left)
			return -EINVAL;
	} else if (p->data_len) {
		memcpy(w, p->data, p->data_len);
	}
	op->sge[0].addr = (uintptr_t)b;
	op->sge[0].length = len;
	return lkey_of(ic, b, len, &op->sge[0].lkey);
}

static int iser_send(struct xport_conn *xc, struct iscsi_pdu *pdu)
{
	struct iser_conn *ic = (struct iser_conn *)xc;
	struct iser_op *op;
	int rc;

	if (ic->closed || ic->failed)
		return -EPIPE;
	op = op_new(ic, WR_SEND, 1);
	if (!op) {
		fail(ic, -ENOMEM);
		return -EPIPE;
	}
	rc = build_send(ic, pdu, op);
	if (rc) {
		log_warn("iser: %s: cannot send a PDU (opcode 0x%02x): %s", xc->peer_addr,
			 bhs_opcode(pdu->bhs), strerror(-rc));
		op_free(op);
		fail(ic, rc);
		return -EPIPE;
	}
	op->pdu = pdu;
	submit(ic, op);
	return 0;
}

/* ---- RDMA Write / Read ---- */

static int rdma_op(struct iser_conn *ic, uint8_t kind, const struct iscsi_rdma_ref *ref,
		   const struct iovec *iov, int iovcnt, uint32_t len, void *cookie)
{
	struct iser_op *op;
	uint32_t left = len;
	int n = 0, rc;

	if (ic->closed || ic->failed)
		return -EPIPE;
	if (!ref->valid || iovcnt <= 0 || iovcnt > SCSI_MAX_IOV || len == 0)
		return -EINVAL;
	op = op_new(ic, kind, iovcnt);
	if (!op)
		return -ENOMEM;
	for (int i = 0; i < iovcnt && left; i++) {
		uint32_t l = iov[i].iov_len < left ? (uint32_t)iov[i].iov_len : left;

		op->sge[n].addr = (uintptr_t)iov[i].iov_base;
		op->sge[n].length = l;
		rc = lkey_of(ic, iov[i].iov_base, l, &op->sge[n].lkey);
		if (rc) {
			log_err("iser: %s: task buffer %p is not registered pool memory",
				ic->xc.peer_addr, iov[i].iov_base);
			op_free(op);
			return rc;
		}
		n++;
		left -= l;
	}
	if (left) {
		op_free(op);
		return -EINVAL;
	}
	op->nsge = n;
	op->nwr = (n + ic->max_sge - 1) / ic->max_sge;
	op->raddr = ref->va;
	op->rkey = ref->stag;
	op->cookie = cookie;
	if (kind == WR_WRITE)
		return submit_held(ic, op);
	submit(ic, op);
	return 0;
}

static int iser_put_data(struct xport_conn *xc, const struct iscsi_rdma_ref *ref,
			 const struct iovec *iov, int iovcnt, uint32_t len, void *cookie)
{
	return rdma_op((struct iser_conn *)xc, WR_WRITE, ref, iov, iovcnt, len, cookie);
}

static int iser_get_data(struct xport_conn *xc, const struct iscsi_rdma_ref *ref,
			 const struct iovec *iov, int iovcnt, uint32_t len, void *cookie)
{
	return rdma_op((struct iser_conn *)xc, WR_READ, ref, iov, iovcnt, len, cookie);
}

/* ---- receive ---- */

static void send_hello_reply(struct iser_conn *ic, const uint8_t *msg, uint32_t len)
{
	struct iser_hello h;
	struct iser_hello_reply r;
	struct iser_op *op;
	uint8_t *b;

	if (iser_hello_parse(msg, len, &h)) {
		log_info("iser: %s: malformed Hello: closing", ic->xc.peer_addr);
		fail(ic, -EPROTO);
		return;
	}
	iser_hello_answer(&h, (uint16_t)ic->dev->attr.max_qp_init_rd_atom, &r);
	op = op_new(ic, WR_SEND, 1);
	b = op ? mem_alloc(ic->xc.pool, ISER_HELLO_LEN) : NULL;
	if (!b) {
		if (op)
			op_free(op);
		fail(ic, -ENOMEM);
		return;
	}
	op->buf = b;
	iser_hello_reply_build(b, ISER_HELLO_LEN, &r);
	op->sge[0].addr = (uintptr_t)b;
	op->sge[0].length = ISER_HELLO_LEN;
	op->fail_after = r.reject;
	if (lkey_of(ic, b, ISER_HELLO_LEN, &op->sge[0].lkey)) {
		op_free(op);
		fail(ic, -EFAULT);
		return;
	}
	if (r.reject)
		log_info("iser: %s: Hello for iSER versions %u..%u: rejected", ic->xc.peer_addr,
			 h.min_ver, h.max_ver);
	submit(ic, op);
}

/* One received message: parsed, copied into a PDU, the buffer reposted, the
 * PDU handed up. */
static void on_message(struct iser_conn *ic, struct iser_rx *rx, uint32_t got)
{
	const uint8_t *m = rx->buf;
	struct iser_hdr h;
	struct iscsi_pdu *p;
	const uint8_t *bhs;
	uint32_t ahs_len, data_len;
	int op = iser_msg_opcode(m, got), st, rc;

	if (op == ISER_OP_HELLO) {
		send_hello_reply(ic, m, got);
		if (!ic->closed && !ic->failed && (rc = rx_post(ic, rx)))
			fail(ic, rc);
		return;
	}
	if (iser_hdr_parse(m, got, &h) || got < ISER_HDR_LEN + ISCSI_BHS_LEN) {
		log_info("iser: %s: malformed message (%u bytes, opcode %d): closing",
			 ic->xc.peer_addr, got, op);
		fail(ic, -EPROTO);
		return;
	}
	bhs = m + ISER_HDR_LEN;
	/* Nothing in the BHS is trusted before this check. */
	st = iscsi_pdu_check_header(bhs, ic->xc.max_recv_dsl);
	ahs_len = bhs_ahs_len(bhs);
	data_len = bhs_data_len(bhs);
	if (st < 0 || (uint64_t)ISER_HDR_LEN + ISCSI_BHS_LEN + ahs_len + data_len > got) {
		log_info("iser: %s: malformed PDU (opcode 0x%02x, %u bytes, data length %u): closing",
			 ic->xc.peer_addr, bhs_opcode(bhs), got, data_len);
		fail(ic, -EPROTO);
		return;
	}
	p = iscsi_pdu_alloc(ic->xc.conn);
	if (!p) {
		fail(ic, -ENOMEM);
		return;
	}
	memcpy(p->bhs, bhs, ISCSI_BHS_LEN);
	p->ahs_len = ahs_len;
	p->data_len = data_len;
	if (ahs_len) {
		p->ahs = mem_alloc(ic->xc.pool, ahs_len);
		if (!p->ahs)
			goto nomem;
		memcpy(p->ahs, bhs + ISCSI_BHS_LEN, ahs_len);
	}
	if (data_len) {
		uint32_t padded = ISCSI_PAD(data_len);

		p->data = mem_alloc(ic->xc.pool, padded);
		if (!p->data)
			goto nomem;
		p->data_owned = true;
		memcpy(p->data, bhs + ISCSI_BHS_LEN + ahs_len, data_len);
		memset(p->data + data_len, 0, padded - data_len);
	}
	if (bhs_opcode(bhs) == ISCSI_OP_SCSI_CMD) {
		p->rdma_in = (struct iscsi_rdma_ref){ h.read_va, h.read_stag, h.has_read };
		p->rdma_out = (struct iscsi_rdma_ref){ h.write_va, h.write_stag, h.has_write };
	}
	rc = rx_post(ic, rx);
	if (rc) {
		iscsi_pdu_free(ic->xc.conn, p);
		fail(ic, rc);
		return;
	}
	iscsi_conn_recv(ic->xc.conn, p, st);
	return;
nomem:
	iscsi_pdu_free(ic->xc.conn, p);
	fail(ic, -ENOMEM);
}

/* ---- completions ---- */

static void on_recv_wc(struct iser_rx *rx, const struct ibv_wc *wc)
{
	struct iser_conn *ic = rx->ic;

	ic->rq_posted--;
	if (wc->status != IBV_WC_SUCCESS) {
		if (wc->status != IBV_WC_WR_FLUSH_ERR)
			log_info("iser: %s: receive failed: %s", ic->xc.peer_addr,
				 ibv_wc_status_str(wc->status));
		fail(ic, -EIO);
	} else if (!ic->closed && !ic->failed && ic->xc.conn) {
		on_message(ic, rx, wc->byte_len);
	}
	maybe_destroy(ic);
}

static void on_send_wc(struct iser_op *op, const struct ibv_wc *wc)
{
	struct iser_conn *ic = op->ic;

	ic->sq_used--;
	if (wc->status != IBV_WC_SUCCESS) {
		if (!op->err)
			op->err = wc->status == IBV_WC_WR_FLUSH_ERR ? -ECANCELED : -EIO;
		if (wc->status != IBV_WC_WR_FLUSH_ERR)
			log_info("iser: %s: %s failed: %s", ic->xc.peer_addr,
				 op->kind == WR_SEND ? "Send" : op->kind == WR_WRITE ?
				 "RDMA Write" : "RDMA Read", ibv_wc_status_str(wc->status));
		fail(ic, -EIO);
	}
	if (--op->left == 0)
		op_finish(op);
	pend_drain(ic);
	maybe_destroy(ic);
}

static void cq_dispatch(struct ibv_wc *wc)
{
	uint8_t kind = *(const uint8_t *)(uintptr_t)wc->wr_id;

	if (kind == WR_RECV)
		on_recv_wc((struct iser_rx *)(uintptr_t)wc->wr_id, wc);
	else
		on_send_wc((struct iser_op *)(uintptr_t)wc->wr_id, wc);
}

/* ---- close and teardown ---- */

static void drain_warn(void *arg)
{
	struct iser_conn *ic = arg;

	ic->drain_timer = NULL;
	log_warn("iser: %s: %d sends and %u receives not flushed %u s after close",
		 ic->xc.peer_addr, ic->sq_used, ic->rq_posted, ISER_DRAIN_WARN_US / 1000000u);
}

static void iser_close(struct xport_conn *xc)
{
	struct iser_conn *ic = (struct iser_conn *)xc;

	if (ic->closed)
		return;
	ic->closed = true;
	/* PDUs still on their way are handed back now (their bytes were
	 * copied); RDMA ops report when flushed. */
	for (struct iser_op *op = ic->ops; op; op = op->next) {
		if (op->kind == WR_SEND && op->pdu) {
			iscsi_conn_tx_done(ic->xc.conn, op->pdu);
			op->pdu = NULL;
		}
	}
	ic->xc.conn = NULL;
	/* QP to error: every posted work request completes (flushed). */
	if (ic->accepted)
		rdma_disconnect(ic->id);   /* DREQ, or the DREP to the initiator's */
	if (ic->qp) {
		struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };

		ibv_modify_qp(ic->qp, &a, IBV_QP_STATE);
	}
	if (ic->sq_used || ic->rq_posted)
		ic->drain_timer = reactor_timer_add(ic->xc.reactor, ISER_DRAIN_WARN_US, 0,
						    drain_warn, ic);
	maybe_destroy(ic);
}

static void destroy(void *a, void *b)
{
	struct iser_conn *ic = a;
	struct mem_pool *pool = ic->xc.pool;

	(void)b;
	if (ic->drain_timer)
		reactor_timer_cancel(ic->xc.reactor, ic->drain_timer);
	/* Never posted: over now (RDMA ops tell the engine). */
	while (ic->pend) {
		struct iser_op *op = ic->pend;

		ic->pend = op->qnext;
		op->err = -ECANCELED;
		op_finish(op);
	}
	while (ic->ops)        /* cannot happen: every op is posted or pending */
		op_free(ic->ops);
	if (ic->qp)
		rdma_destroy_qp(ic->id);
	rdma_destroy_id(ic->id);
	ic->rd->cq_used -= ic->cq_reserved;
	ic->rd->nconns--;
	ic->rx_ctx->nconns--;
	if (ic->rx_block)
		mem_pool_free_pages(pool, ic->rx_block);
	mem_free(pool, ic->rx);
	log_info("iser: %s:%u: connection closed, every buffer back (memory registrations "
		 "so far: %lu)", ic->xc.peer_addr, ic->xc.peer_port, iser_mr_registrations());
	mem_free(pool, ic);
}

/* ---- rdma_cm events of established connections ---- */

static void cm_event(void *arg, uint32_t events)
{
	struct iser_rctx *x = arg;
	struct rdma_cm_event *ev;

	(void)events;
	while (x->ech && rdma_get_cm_event(x->ech, &ev) == 0) {
		struct iser_conn *ic = ev->id->context;
		enum rdma_cm_event_type type = ev->event;
		int status = ev->status;

		rdma_ack_cm_event(ev);
		if (!ic)
			continue;
		switch (type) {
		case RDMA_CM_EVENT_ESTABLISHED:
			ic->established = true;
			log_debug("iser: %s: established", ic->xc.peer_addr);
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
			log_debug("iser: %s: disconnected", ic->xc.peer_addr);
			ic->established = false;
			fail(ic, 0);
			break;
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
			log_warn("iser: %s: RDMA device removed: closing", ic->xc.peer_addr);
			fail(ic, -ENODEV);
			break;
		case RDMA_CM_EVENT_REJECTED:
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
			log_info("iser: %s: %s (status %d)", ic->xc.peer_addr, rdma_event_str(type),
				 status);
			fail(ic, -ECONNABORTED);
			break;
		default:
			break;
		}
	}
}

/* ---- accepting (on the reactor that will own the connection) ---- */

static void fill_addr(const struct sockaddr *sa, char *addr, size_t len, uint16_t *port, int *family)
{
	if (!sa)
		return;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, (socklen_t)len);
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, addr, (socklen_t)len);
		*port = ntohs(s4->sin_port);
	}
	if (family)
		*family = sa->sa_family;
}

static int conn_setup(struct iser_conn *ic, struct iser_conn_req *req, struct reactor *r)
{
	struct iser_dev *d = req->dev;
	struct ibv_qp_init_attr qa;
	unsigned order = 0;
	int rc;

	ic->sq_depth = d->attr.max_qp_wr < ISER_SQ_DEPTH ? d->attr.max_qp_wr : ISER_SQ_DEPTH;
	ic->nrx = (unsigned)d->attr.max_qp_wr < ISER_RX_BUFS ? (unsigned)d->attr.max_qp_wr : ISER_RX_BUFS;
	ic->max_sge = d->attr.max_sge < ISER_MAX_SGE ? d->attr.max_sge : ISER_MAX_SGE;
	ic->cq_reserved = ic->sq_depth + (int)ic->nrx;
	if (ic->rd->cq_used + ic->cq_reserved > ic->rd->cq_size) {
		log_warn("iser: reactor %u: completion queue full: refusing %s", reactor_id(r),
			 ic->xc.peer_addr);
		ic->cq_reserved = 0;
		return -ENOSPC;
	}
	ic->rd->cq_used += ic->cq_reserved;
	memset(&qa, 0, sizeof(qa));
	qa.send_cq = qa.recv_cq = ic->rd->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = (uint32_t)ic->sq_depth;
	qa.cap.max_recv_wr = ic->nrx;
	qa.cap.max_send_sge = (uint32_t)ic->max_sge;
	qa.cap.max_recv_sge = 1;
	rc = rdma_create_qp(ic->id, d->pd, &qa);
	if (rc)
		return -errno;
	ic->qp = ic->id->qp;
	/* Receive buffers: one buddy block, so one chunk and one lkey. */
	while (((size_t)4096 << order) < (size_t)ic->nrx * ISER_RX_STRIDE)
		order++;
	if (order > 9) {
		ic->nrx = (2u << 20) / ISER_RX_STRIDE;
		order = 9;
	}
	ic->rx_block = mem_pool_alloc_pages(ic->xc.pool, order);
	ic->rx = mem_zalloc(ic->xc.pool, ic->nrx * sizeof(*ic->rx));
	if (!ic->rx_block || !ic->rx)
		return -ENOMEM;
	rc = lkey_of(ic, ic->rx_block, (size_t)ic->nrx * ISER_RX_STRIDE, &ic->rx_lkey);
	if (rc)
		return rc;
	for (unsigned i = 0; i < ic->nrx; i++) {
		ic->rx[i] = (struct iser_rx){ WR_RECV, ic, ic->rx_block + (size_t)i * ISER_RX_STRIDE };
		rc = rx_post(ic, &ic->rx[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static void reject_req(struct iser_conn_req *req, const char *why, int rc)
{
	log_warn("iser: connection request refused: %s: %s", why, strerror(rc < 0 ? -rc : rc));
	rdma_reject(req->id, NULL, 0);
	rdma_destroy_id(req->id);
	free(req);
}

void iser_accept_msg(void *a, void *b)
{
	struct iser_conn_req *req = a;
	struct reactor *r = reactor_self();
	struct mem_pool *pool;
	struct iser_conn *ic;
	struct rdma_conn_param cp;
	struct iser_cm_hdr hdr = { ISER_CM_ZBVA_NOT_SUP | ISER_CM_SEND_W_INV_NOT_SUP };
	uint8_t priv[ISER_CM_HDR_LEN];
	int rc;

	(void)b;
	if (!r || reactors_stopping()) {
		reject_req(req, "shutting down", -ESHUTDOWN);
		return;
	}
	rc = rctx_setup(r);
	if (rc) {
		reject_req(req, "event channel", rc);
		return;
	}
	rc = rdev_setup(req->dev, r);
	if (rc) {
		reject_req(req, "completion queue / memory registration", rc);
		return;
	}
	if (rdma_migrate_id(req->id, rctxs[reactor_id(r)].ech)) {
		reject_req(req, "rdma_migrate_id", -errno);
		return;
	}
	pool = reactor_pool(r);
	ic = mem_zalloc(pool, sizeof(*ic));
	if (!ic) {
		reject_req(req, "no memory", -ENOMEM);
		return;
	}
	ic->xc.ops = &iser_ops;
	ic->xc.reactor = r;
	ic->xc.pool = pool;
	ic->xc.rdma_max_dsl = ISER_MAX_DSL;
	ic->id = req->id;
	ic->dev = req->dev;
	ic->rd = &req->dev->r[reactor_id(r)];
	ic->rx_ctx = &rctxs[reactor_id(r)];
	fill_addr(rdma_get_local_addr(ic->id), ic->xc.local_addr, sizeof(ic->xc.local_addr),
		  &ic->xc.local_port, &ic->xc.family);
	fill_addr(rdma_get_peer_addr(ic->id), ic->xc.peer_addr, sizeof(ic->xc.peer_addr),
		  &ic->xc.peer_port, NULL);
	rc = conn_setup(ic, req, r);
	ic->xc.rdma_max_unexpected = ic->nrx;
	if (rc == 0 && !iscsi_conn_new(&ic->xc))
		rc = -ENOMEM;
	if (rc) {
		log_warn("iser: %s: cannot set up the connection: %s", ic->xc.peer_addr,
			 strerror(-rc));
		rdma_reject(ic->id, NULL, 0);
		goto undo;
	}
	ic->id->context = ic;
	ic->rd->nconns++;
	ic->rx_ctx->nconns++;
	memset(&cp, 0, sizeof(cp));
	iser_cm_hdr_build(priv, sizeof(priv), &hdr);
	cp.private_data = priv;
	cp.private_data_len = sizeof(priv);
	/* The request's values are already from our side's point of view (the
	 * CM swaps them): initiator_depth is how many RDMA Reads we may have
	 * outstanding (the initiator's responder resources). */
	cp.responder_resources = req->responder_resources < ic->dev->attr.max_qp_rd_atom ?
				 req->responder_resources : (uint8_t)ic->dev->attr.max_qp_rd_atom;
	cp.initiator_depth = req->initiator_depth < ic->dev->attr.max_qp_init_rd_atom ?
			     req->initiator_depth : (uint8_t)ic->dev->attr.max_qp_init_rd_atom;
	cp.rnr_retry_count = 7;
	if (cp.initiator_depth == 0)
		log_warn("iser: %s: the initiator allows no RDMA Read: writes will fail",
			 ic->xc.peer_addr);
	log_info("iser: connection from %s:%u on %s:%u (send queue %d, %u receives, "
		 "RDMA Read depth %u)", ic->xc.peer_addr, ic->xc.peer_port, ic->xc.local_addr,
		 ic->xc.local_port, ic->sq_depth, ic->nrx, cp.initiator_depth);
	free(req);
	ic->accepted = true;
	if (rdma_accept(ic->id, &cp)) {
		log_warn("iser: %s: rdma_accept: %s", ic->xc.peer_addr, strerror(errno));
		fail(ic, -ECONNABORTED);
	}
	return;
undo:
	/* No engine connection: free everything here. Posted receives are
	 * flushed by destroying the QP before their buffers go. */
	if (ic->qp)
		rdma_destroy_qp(ic->id);
	rdma_destroy_id(ic->id);
	ic->rd->cq_used -= ic->cq_reserved;
	if (ic->rx_block)
		mem_pool_free_pages(pool, ic->rx_block);
	mem_free(pool, ic->rx);
	mem_free(pool, ic);
	free(req);
}
