/* fake_xport.h — an in-memory iSCSI transport for driving the engine without
 * sockets: the part shared by the unit tests (iscsi_fake.h) and the fuzzer
 * (tests/fuzz/fuzz_iscsi.c). No test framework: failures are returned.
 *
 * The includer defines, before including this file:
 *   struct fake { struct xport_conn xc;  (first: the engine sees it)
 *                 struct iscsi_conn *conn; bool closed;
 *                 struct iscsi_pdu *q[FAKE_MAXQ]; unsigned nq;
 *                 unsigned placed; ...its own... };
 *   static void fake_written(struct fake *f, struct iscsi_pdu *p);
 *     called for each PDU the engine sent, in order, when it is "written"
 *     (before it is handed back with iscsi_conn_tx_done).
 * Like TCP, the fake transport writes on flush, not inside send, and what is
 * queued when the engine closes is written first, then the connection drops. */
#ifndef TEST_FAKE_XPORT_H
#define TEST_FAKE_XPORT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "bdev/bdev.h"
#include "core/reactor.h"
#include "iscsi/iscsi.h"
#include "iscsi/pdu.h"
#include "mem/pool.h"
#include "net/transport.h"
#include "../../src/iscsi/internal.h"

static int fake_send(struct xport_conn *xc, struct iscsi_pdu *p)
{
	struct fake *f = (struct fake *)xc;

	if (f->closed || f->nq == FAKE_MAXQ)
		return -EPIPE;
	f->q[f->nq++] = p;
	return 0;
}

/* "Writes" what is queued, oldest first, and hands it back to the engine. */
static void fake_flush(struct fake *f)
{
	while (f->nq && !f->closed) {
		struct iscsi_pdu *p = f->q[0];

		memmove(f->q, f->q + 1, (f->nq - 1) * sizeof(f->q[0]));
		f->nq--;
		fake_written(f, p);
		iscsi_conn_tx_done(f->conn, p);
	}
}

static void fake_close(struct xport_conn *xc)
{
	struct fake *f = (struct fake *)xc;

	fake_flush(f);
	f->closed = true;
	while (f->nq) {
		struct iscsi_pdu *p = f->q[--f->nq];

		iscsi_conn_tx_done(f->conn, p);
	}
}

static const struct xport_ops fake_ops = { .name = "fake", .send = fake_send, .close = fake_close };

/* A connection arriving on reactor rid (its engine context started); f is
 * zeroed by the caller. Returns -ENOMEM when the engine refuses it. */
static int fake_connect(struct fake *f, unsigned rid)
{
	f->xc.ops = &fake_ops;
	f->xc.reactor = reactor_get(rid);
	f->xc.pool = reactor_pool(reactor_get(rid));
	f->xc.family = AF_INET;
	strcpy(f->xc.local_addr, "192.0.2.1");
	f->xc.local_port = 3260;
	strcpy(f->xc.peer_addr, "192.0.2.9");
	f->xc.peer_port = 40000;
	f->conn = iscsi_conn_new(&f->xc);
	return f->conn ? 0 : -ENOMEM;
}

/* Hands one PDU to the engine as the TCP transport would: header check
 * first (a framing error fails the connection), then AHS (when ahs is given);
 * data the engine takes as it is (iscsi_conn_data_dest) goes straight into the
 * task buffer (counted in f->placed), the rest into a buffer of our own with
 * zeroed padding. A data digest error (known only after the data was read) is
 * delivered as a Reject reason. Returns 0; -ENOMEM when no PDU or buffer
 * could be had, -EPROTO when the engine placed data inconsistently (the
 * caller decides). */
static int fake_recv(struct fake *f, const uint8_t *bhs, const uint8_t *ahs,
		     const void *data, uint32_t len, bool data_digest_error)
{
	struct iscsi_pdu *p;
	int rc;

	rc = iscsi_pdu_check_header(bhs, f->xc.max_recv_dsl);
	if (rc < 0) {
		iscsi_conn_xport_failed(f->conn, -EPROTO);
		return 0;
	}
	p = iscsi_pdu_alloc(f->conn);
	if (!p)
		return -ENOMEM;
	memcpy(p->bhs, bhs, ISCSI_BHS_LEN);
	if (ahs && bhs_ahs_len(bhs)) {
		p->ahs_len = bhs_ahs_len(bhs);
		p->ahs = mem_alloc(f->xc.pool, p->ahs_len);
		if (!p->ahs) {
			iscsi_pdu_free(f->conn, p);
			return -ENOMEM;
		}
		memcpy(p->ahs, ahs, p->ahs_len);
	}
	p->data_len = len;
	if (len && rc == 0) {
		struct iovec iov[8];
		int n = iscsi_conn_data_dest(f->conn, p, iov, 8);
		const uint8_t *src = data;

		for (int i = 0; i < n; i++) {
			memcpy(iov[i].iov_base, src, iov[i].iov_len);
			src += iov[i].iov_len;
		}
		if (n > 0) {
			if (!p->rx_placed || (uint32_t)(src - (const uint8_t *)data) != len) {
				iscsi_pdu_free(f->conn, p);
				return -EPROTO;
			}
			f->placed++;
			len = 0;
		}
	}
	if (len) {
		p->data = mem_alloc(f->xc.pool, ISCSI_PAD(len));
		if (!p->data) {
			iscsi_pdu_free(f->conn, p);
			return -ENOMEM;
		}
		p->data_owned = true;
		memcpy(p->data, data, len);
		memset(p->data + len, 0, ISCSI_PAD(len) - len);
	}
	if (data_digest_error && p->data_len && rc == 0)
		rc = ISCSI_REJECT_DATA_DIGEST;
	iscsi_conn_recv(f->conn, p, rc);
	return 0;
}

/* Completes bdev I/O on every reactor's queue pair; returns how many. */
static __attribute__((unused)) int fake_poll_bdev(unsigned *inflight)
{
	int n = 0;

	*inflight = 0;
	for (unsigned rid = 0; rid < REACTOR_MAX; rid++) {
		struct iscsi_reactor *ir = iscsi_reactor_of(rid);

		if (!ir || !ir->qp)
			continue;
		n += bdev_qp_poll(ir->qp);
		*inflight += bdev_qp_inflight(ir->qp);
	}
	return n;
}

/* One turn of what the reactors would do: bdev completions, the engine's
 * deferred calls and messages, writing out queued PDUs (f may be NULL).
 * Returns false once nothing moved and nothing is in flight. */
static __attribute__((unused)) bool fake_pump_once(struct fake *f)
{
	unsigned inflight;
	int n = fake_poll_bdev(&inflight);

	n += (int)iscsi_run_deferred();
	if (f)
		fake_flush(f);
	return !(n == 0 && inflight == 0 && (!f || f->nq == 0));
}

#endif
