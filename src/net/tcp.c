/* tcp.c — iSCSI over TCP: PDU framing on a non-blocking socket.
 *
 * Receive: a small state machine reads BHS → (check header) → AHS → header
 * digest → data + padding → data digest into the PDU, through a 64 KiB staging
 * buffer so that many small PDUs cost one recv(); a large data segment is read
 * straight into its PDU buffer with readv([rest of the segment, staging]). A
 * header that lies whole in the staging buffer is checked there and copied
 * once, into its PDU; only one that came in pieces is assembled in tc->bhs. A
 * read shorter than asked means the socket is empty: no second read just to
 * hear EAGAIN. The staging buffer is the reactor thread's one spare, lent for
 * one readiness event only (see rx_spare), so an idle connection costs its
 * tcp_conn and the engine's conn, nothing more.
 * Zero copy: once a header is checked, the engine is asked where the data goes
 * (iscsi_conn_data_dest); a Data-Out it takes as it is is read into the task
 * buffer's segments, one piece each, then its padding, and the data digest is
 * computed over those segments. Only what the staging buffer already held is
 * copied (bytes that came with the header in one recv).
 * Each readiness event reads at most RX_BUDGET bytes so one busy connection
 * cannot starve the others (epoll is level triggered: the rest comes next turn).
 *
 * Send: PDUs queue on the connection; a flush lays as many as fit straight
 * into one writev's iovecs (BHS, AHS, digest, data segments, padding, digest
 * per PDU), noting each PDU's wire length for handing back what was written,
 * and resumes a partly written PDU at its byte offset. PDUs queued while a
 * flush hands written ones back (tx_done) go out with that same flush. Flushes happen at the end of a
 * receive event (answers to what was just read go out together) or once per
 * reactor turn (reactor_defer) for PDUs queued from elsewhere (bdev
 * completions). EPOLLOUT is asked for only while something is left unwritten,
 * so a stalled peer costs nothing but its queue.
 *
 * Closing: the engine's close() may come from inside an upcall (recv, tx_done);
 * the object is only marked and freed from a deferred call, after the current
 * event and any deferred flush already queued for it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core/log.h"
#include "core/reactor.h"
#include "iscsi/iscsi.h"
#include "iscsi/pdu.h"
#include "mem/pool.h"
#include "net/transport.h"

#define RBUF_SIZE      (64u << 10)
#define RX_BUDGET      (4u << 20)
#define RX_DIRECT_MIN  4096u          /* read pieces this big straight in */
#define TX_IOV_MAX     128
#define PDU_IOV_MAX    9              /* BHS, AHS, digest, 4 data, pad, digest */
#define TX_BATCH_BYTES (1u << 20)

#define RX_IOV_MAX     8              /* task buffer pieces per data segment */

enum rx_state { RX_BHS = 0, RX_AHS, RX_HDIG, RX_DATA, RX_PAD, RX_DDIG };

struct tcp_conn {
	struct xport_conn xc;              /* first: the engine sees this */
	struct reactor_event ev;
	int fd;
	uint32_t events;
	bool closed;                       /* engine called close(); free pending */
	bool failed;                       /* we reported a failure upward */
	bool flush_queued;                 /* a deferred flush is pending */
	bool in_rx;                        /* inside the receive loop */
	bool in_flush;                     /* inside flush() (tx_done may send) */

	/* receive */
	uint8_t *rbuf;
	uint32_t rpos, rlen;
	enum rx_state rs;
	uint8_t *dst;                      /* where the current piece goes */
	uint32_t need, got;
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t dig[ISCSI_DIGEST_LEN];
	struct iscsi_pdu *pdu;
	int rx_status;
	/* a data segment placed in a task buffer (pdu->rx_placed) */
	struct iovec rx_iov[RX_IOV_MAX];
	int rx_iovcnt, rx_iov_idx;
	uint8_t pad[4];

	/* send */
	struct iscsi_pdu *tx_head, *tx_tail;
	size_t tx_off;                     /* bytes of tx_head already written */
};

static const uint8_t zero_pad[4];

static int tcp_send(struct xport_conn *xc, struct iscsi_pdu *pdu);
static void tcp_close(struct xport_conn *xc);
static void rx_conn_gone(struct tcp_conn *tc);

static const struct xport_ops tcp_ops = {
	.name = "tcp",
	.send = tcp_send,
	.close = tcp_close,
};

/* ---- helpers ---- */

static void set_events(struct tcp_conn *tc, uint32_t events)
{
	if (tc->events == events || tc->fd < 0)
		return;
	if (reactor_event_mod(tc->xc.reactor, &tc->ev, events) == 0)
		tc->events = events;
}

static void free_conn(void *a, void *b)
{
	struct tcp_conn *tc = a;

	(void)b;
	rx_conn_gone(tc);
	mem_free(tc->xc.pool, tc);
}

/* Something went wrong below the engine: stop I/O, tell the engine once. The
 * engine answers with close(). */
static void fail(struct tcp_conn *tc, int err)
{
	if (tc->failed || tc->closed)
		return;
	tc->failed = true;
	set_events(tc, 0);
	if (tc->xc.conn)
		iscsi_conn_xport_failed(tc->xc.conn, err);
}

/* ---- send ---- */

/* Digests are computed when a PDU starts going out: the engine only flips
 * the digest flags while the queue is empty (see transport.h). */
static void tx_prepare(struct tcp_conn *tc, struct iscsi_pdu *p)
{
	uint32_t crc;

	if (tc->xc.header_digest) {
		crc = crc32c(0, p->bhs, ISCSI_BHS_LEN);
		if (p->ahs_len)
			crc = crc32c(crc, p->ahs, p->ahs_len);
		iscsi_put_digest((uint8_t *)&p->hdr_digest, crc);
	}
	if (tc->xc.data_digest && p->data_len) {
		uint32_t pad = ISCSI_PAD(p->data_len) - p->data_len;

		if (p->data_iovcnt > 0)
			crc = crc32c_iov(p->data_iov, p->data_iovcnt);
		else
			crc = crc32c(0, p->data, p->data_len);
		if (pad)
			crc = crc32c(crc, zero_pad, pad);
		iscsi_put_digest((uint8_t *)&p->data_digest, crc);
	}
}

/* Wire layout of p as iovecs, written straight into iov (room for
 * PDU_IOV_MAX); returns the count and the PDU's length on the wire. The
 * common PDU (no AHS, no digests) takes the first branch. */
static inline int pdu_iov(const struct tcp_conn *tc, struct iscsi_pdu *p,
			  struct iovec *iov, uint32_t *wire_len)
{
	uint32_t pad = ISCSI_PAD(p->data_len) - p->data_len;
	uint32_t total = ISCSI_BHS_LEN;
	int n = 1;

	iov[0].iov_base = p->bhs;
	iov[0].iov_len = ISCSI_BHS_LEN;
	if (__builtin_expect(p->ahs_len || tc->xc.header_digest, 0)) {
		if (p->ahs_len) {
			iov[n].iov_base = p->ahs;
			iov[n++].iov_len = p->ahs_len;
			total += p->ahs_len;
		}
		if (tc->xc.header_digest) {
			iov[n].iov_base = &p->hdr_digest;
			iov[n++].iov_len = ISCSI_DIGEST_LEN;
			total += ISCSI_DIGEST_LEN;
		}
	}
	if (p->data_len) {
		if (p->data_iovcnt > 0) {
			for (int i = 0; i < p->data_iovcnt && i < 4; i++) {
				iov[n] = p->data_iov[i];
				total += (uint32_t)iov[n++].iov_len;
			}
		} else {
			iov[n].iov_base = p->data;
			iov[n++].iov_len = p->data_len;
			total += p->data_len;
		}
		if (pad) {
			iov[n].iov_base = (void *)zero_pad;
			iov[n++].iov_len = pad;
			total += pad;
		}
		if (tc->xc.data_digest) {
			iov[n].iov_base = &p->data_digest;
			iov[n++].iov_len = ISCSI_DIGEST_LEN;
			total += ISCSI_DIGEST_LEN;
		}
	}
	*wire_len = total;
	return n;
}

/* The PDU at the head is written: hand it back to the engine. */
static void tx_pop(struct tcp_conn *tc)
{
	struct iscsi_pdu *p = tc->tx_head;

	tc->tx_head = p->next;
	if (!tc->tx_head)
		tc->tx_tail = NULL;
	p->next = NULL;
	if (tc->xc.conn)
		iscsi_conn_tx_done(tc->xc.conn, p);
}

/* What one writev carries: the iovecs, and the wire length of each PDU in
 * it (so that what was written is handed back without laying it out again). */
struct tx_batch {
	struct iovec iov[TX_IOV_MAX];
	uint32_t len[TX_IOV_MAX];
	int cnt, npdu;
	size_t bytes;
};

/* The head PDU, partly written: laid out aside, then cut at tx_off. */
static void tx_gather_rest(struct tcp_conn *tc, struct tx_batch *b)
{
	struct iovec piov[PDU_IOV_MAX];
	size_t skip = tc->tx_off;
	int k = pdu_iov(tc, tc->tx_head, piov, &b->len[0]);

	for (int i = 0; i < k; i++) {
		if (skip >= piov[i].iov_len) {
			skip -= piov[i].iov_len;
			continue;
		}
		b->iov[b->cnt].iov_base = (uint8_t *)piov[i].iov_base + skip;
		b->iov[b->cnt].iov_len = piov[i].iov_len - skip;
		b->bytes += b->iov[b->cnt++].iov_len;
		skip = 0;
	}
	b->npdu = 1;
}

/* Lays queued PDUs out into b from the current write position. */
static void tx_gather(struct tcp_conn *tc, struct tx_batch *b)
{
	struct iscsi_pdu *p = tc->tx_head;
	bool digests = tc->xc.header_digest || tc->xc.data_digest;

	b->cnt = b->npdu = 0;
	b->bytes = 0;
	if (tc->tx_off) {
		/* Its digests were computed when it started going out. */
		tx_gather_rest(tc, b);
		if (bhs_opcode(p->bhs) == ISCSI_OP_LOGIN_RSP)
			return;
		p = p->next;
	}
	for (; p && b->bytes < TX_BATCH_BYTES && b->cnt <= TX_IOV_MAX - PDU_IOV_MAX;
	     p = p->next) {
		uint32_t len;

		if (digests)
			tx_prepare(tc, p);
		b->cnt += pdu_iov(tc, p, b->iov + b->cnt, &len);
		b->len[b->npdu++] = len;
		b->bytes += len;
		/* Digests may switch once a Login Response is out: the PDUs
		 * behind it are laid out in a later batch. */
		if (bhs_opcode(p->bhs) == ISCSI_OP_LOGIN_RSP)
			break;
	}
}

/* An empty queue means EPOLLOUT is off already: only a flush that empties
 * the queue turns it off, and it does so before it returns. */
static void flush(struct tcp_conn *tc)
{
	if (!tc->tx_head || tc->in_flush)
		return;         /* a flush below us goes on with what was queued */
	tc->in_flush = true;
	while (tc->tx_head && !tc->closed && !tc->failed) {
		struct tx_batch b;
		size_t done;
		ssize_t n;

		tx_gather(tc, &b);
		n = writev(tc->fd, b.iov, b.cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				set_events(tc, EPOLLIN | EPOLLOUT);
			else
				fail(tc, -errno);
			tc->in_flush = false;
			return;
		}
		/* Hand back what is complete; remember where the rest starts.
		 * tx_done may queue more (appended behind the batch) or close. */
		done = (size_t)n + tc->tx_off;
		tc->tx_off = 0;
		for (int i = 0; i < b.npdu && !tc->closed; i++) {
			if (done < b.len[i]) {
				tc->tx_off = done;
				break;
			}
			done -= b.len[i];
			tx_pop(tc);
		}
		if ((size_t)n < b.bytes && tc->tx_head) {
			set_events(tc, EPOLLIN | EPOLLOUT);
			tc->in_flush = false;
			return;
		}
	}
	tc->in_flush = false;
	if (!tc->tx_head && !tc->closed && !tc->failed)
		set_events(tc, EPOLLIN);
}

static void deferred_flush(void *a, void *b)
{
	struct tcp_conn *tc = a;

	(void)b;
	tc->flush_queued = false;
	if (!tc->closed)
		flush(tc);
}

static int tcp_send(struct xport_conn *xc, struct iscsi_pdu *pdu)
{
	struct tcp_conn *tc = (struct tcp_conn *)xc;

	if (tc->closed || tc->failed)
		return -EPIPE;
	pdu->next = NULL;
	if (tc->tx_tail)
		tc->tx_tail->next = pdu;
	else
		tc->tx_head = pdu;
	tc->tx_tail = pdu;
	/* Flushed at the end of the receive loop, by the flush running now, or
	 * once this turn's other work is done. */
	if (tc->in_rx || tc->in_flush || tc->flush_queued)
		return 0;
	tc->flush_queued = true;
	if (reactor_defer(deferred_flush, tc, NULL)) {
		tc->flush_queued = false;
		flush(tc);
	}
	return 0;
}

/* ---- close ---- */

static void tcp_close(struct xport_conn *xc)
{
	struct tcp_conn *tc = (struct tcp_conn *)xc;
	struct iscsi_conn *conn = tc->xc.conn;

	if (tc->closed)
		return;
	tc->closed = true;
	/* Last words (a Logout or Login Response) were written before the engine
	 * closes; whatever is still queued is dropped, handed back first. */
	while (tc->tx_head) {
		struct iscsi_pdu *p = tc->tx_head;

		tc->tx_head = p->next;
		p->next = NULL;
		if (conn)
			iscsi_conn_tx_done(conn, p);
	}
	tc->tx_tail = NULL;
	if (tc->pdu && conn)
		iscsi_pdu_free(conn, tc->pdu);
	tc->pdu = NULL;
	tc->xc.conn = NULL;
	if (tc->fd >= 0) {
		reactor_event_del(tc->xc.reactor, &tc->ev);
		close(tc->fd);
		tc->fd = -1;
	}
	/* After the current event and any flush already deferred for it. */
	if (reactor_defer(free_conn, tc, NULL))
		log_err("tcp: cannot defer freeing a connection (leaked)");
}

/* ---- receive ---- */

/* The staging buffer of a reactor thread: lent to the connection that is
 * reading, taken back when that connection leaves it empty (always, unless its
 * read budget ran out mid-buffer). So a busy reactor does not allocate one per
 * readiness event, and idle connections hold none. Freed with the thread's
 * last connection. */
static __thread struct {
	uint8_t *buf;                      /* NULL while lent out or never made */
	struct mem_pool *pool;
	unsigned conns;                    /* tcp_conns alive on this thread */
} rx_spare;

static uint8_t *rbuf_take(struct tcp_conn *tc)
{
	uint8_t *b = rx_spare.buf;

	if (b && rx_spare.pool == tc->xc.pool) {
		rx_spare.buf = NULL;
		return b;
	}
	return mem_alloc(tc->xc.pool, RBUF_SIZE);
}

static void rbuf_give_back(struct tcp_conn *tc)
{
	if (!rx_spare.buf && rx_spare.conns) {
		rx_spare.buf = tc->rbuf;
		rx_spare.pool = tc->xc.pool;
	} else {
		mem_free(tc->xc.pool, tc->rbuf);
	}
	tc->rbuf = NULL;
}

static void rx_conn_gone(struct tcp_conn *tc)
{
	if (tc->rbuf)
		rbuf_give_back(tc);
	if (--rx_spare.conns == 0 && rx_spare.buf) {
		mem_free(rx_spare.pool, rx_spare.buf);
		rx_spare.buf = NULL;
	}
}

static void rx_expect(struct tcp_conn *tc, enum rx_state rs, void *dst, uint32_t need)
{
	tc->rs = rs;
	tc->dst = dst;
	tc->need = need;
	tc->got = 0;
}

static void rx_deliver(struct tcp_conn *tc)
{
	struct iscsi_pdu *p = tc->pdu;
	int status = tc->rx_status;

	tc->pdu = NULL;
	rx_expect(tc, RX_BHS, tc->bhs, ISCSI_BHS_LEN);
	iscsi_conn_recv(tc->xc.conn, p, status);
}

static void rx_after_header(struct tcp_conn *tc)
{
	struct iscsi_pdu *p = tc->pdu;

	/* Data the engine takes as it is (Data-Out) lands in the task buffer:
	 * no copy, and no receive buffer to allocate. */
	if (tc->rx_status == 0) {
		tc->rx_iovcnt = iscsi_conn_data_dest(tc->xc.conn, p, tc->rx_iov, RX_IOV_MAX);
		if (tc->rx_iovcnt > 0) {
			tc->rx_iov_idx = 0;
			rx_expect(tc, RX_DATA, tc->rx_iov[0].iov_base,
				  (uint32_t)tc->rx_iov[0].iov_len);
			return;
		}
	}
	p->data = mem_alloc(tc->xc.pool, ISCSI_PAD(p->data_len));
	if (!p->data) {
		fail(tc, -ENOMEM);
		return;
	}
	p->data_owned = true;
	rx_expect(tc, RX_DATA, p->data, ISCSI_PAD(p->data_len));
}

static void rx_after_ahs(struct tcp_conn *tc)
{
	if (tc->xc.header_digest)
		rx_expect(tc, RX_HDIG, tc->dig, ISCSI_DIGEST_LEN);
	else if (tc->pdu->data_len)
		rx_after_header(tc);
	else
		rx_deliver(tc);
}

/* A whole BHS at bhs (the staging buffer, or tc->bhs when it came in
 * pieces): check it, make its PDU, decide what comes next. A header without
 * AHS, digest or data (a READ command) is delivered right here. */
static void rx_header(struct tcp_conn *tc, const uint8_t *bhs)
{
	struct iscsi_pdu *p;
	int rc;

	/* Nothing in the header is trusted before this check; the data length
	 * is bounded by what we declared, never by the header. */
	rc = iscsi_pdu_check_header(bhs, tc->xc.max_recv_dsl);
	if (rc < 0) {
		log_info("tcp: %s: malformed PDU header (opcode 0x%02x, data length "
			 "%u): closing", tc->xc.peer_addr, bhs_opcode(bhs), bhs_data_len(bhs));
		fail(tc, -EPROTO);
		return;
	}
	p = tc->pdu = iscsi_pdu_alloc(tc->xc.conn);
	if (!p) {
		fail(tc, -ENOMEM);
		return;
	}
	memcpy(p->bhs, bhs, ISCSI_BHS_LEN);
	p->data_len = bhs_data_len(bhs);
	p->ahs_len = bhs_ahs_len(bhs);
	tc->rx_status = rc;
	if (__builtin_expect(p->ahs_len == 0, 1)) {
		rx_after_ahs(tc);
		return;
	}
	p->ahs = mem_alloc(tc->xc.pool, p->ahs_len);
	if (!p->ahs) {
		fail(tc, -ENOMEM);
		return;
	}
	rx_expect(tc, RX_AHS, p->ahs, p->ahs_len);
}

/* A piece is complete: decide what comes next. */
static void rx_piece_done(struct tcp_conn *tc)
{
	struct iscsi_pdu *p = tc->pdu;
	uint32_t crc;

	switch (tc->rs) {
	case RX_BHS:
		rx_header(tc, tc->bhs);
		return;
	case RX_AHS:
		rx_after_ahs(tc);
		return;
	case RX_HDIG:
		crc = crc32c(0, p->bhs, ISCSI_BHS_LEN);
		if (p->ahs_len)
			crc = crc32c(crc, p->ahs, p->ahs_len);
		if (crc != iscsi_get_digest(tc->dig)) {
			/* ERL 0: the header cannot be trusted, nor the framing. */
			log_info("tcp: %s: header digest error: closing", tc->xc.peer_addr);
			fail(tc, -EBADMSG);
			return;
		}
		if (p->data_len)
			rx_after_header(tc);
		else
			rx_deliver(tc);
		return;
	case RX_DATA:
		if (p->rx_placed) {
			uint32_t pad = ISCSI_PAD(p->data_len) - p->data_len;

			if (++tc->rx_iov_idx < tc->rx_iovcnt) {
				const struct iovec *v = &tc->rx_iov[tc->rx_iov_idx];

				rx_expect(tc, RX_DATA, v->iov_base, (uint32_t)v->iov_len);
				return;
			}
			if (pad) {
				rx_expect(tc, RX_PAD, tc->pad, pad);
				return;
			}
		}
		/* fall through */
	case RX_PAD:
		if (tc->xc.data_digest) {
			rx_expect(tc, RX_DDIG, tc->dig, ISCSI_DIGEST_LEN);
			return;
		}
		rx_deliver(tc);
		return;
	case RX_DDIG:
		if (p->rx_placed) {
			crc = crc32c_iov(tc->rx_iov, tc->rx_iovcnt);
			if (ISCSI_PAD(p->data_len) != p->data_len)
				crc = crc32c(crc, tc->pad, ISCSI_PAD(p->data_len) - p->data_len);
		} else {
			crc = crc32c(0, p->data, ISCSI_PAD(p->data_len));
		}
		if (crc != iscsi_get_digest(tc->dig) && tc->rx_status == 0)
			tc->rx_status = ISCSI_REJECT_DATA_DIGEST;
		rx_deliver(tc);
		return;
	}
}

static bool rx_alive(const struct tcp_conn *tc)
{
	return !tc->closed && !tc->failed;
}

/* Consumes what the staging buffer holds. A BHS that is there whole is
 * parsed where it lies; anything else is copied piece by piece. */
static void rx_consume(struct tcp_conn *tc)
{
	while (tc->rpos < tc->rlen && rx_alive(tc)) {
		uint32_t avail = tc->rlen - tc->rpos;
		uint32_t n = tc->need - tc->got;

		if (tc->rs == RX_BHS && tc->got == 0 && avail >= ISCSI_BHS_LEN) {
			tc->rpos += ISCSI_BHS_LEN;
			rx_header(tc, tc->rbuf + tc->rpos - ISCSI_BHS_LEN);
			continue;
		}
		if (n > avail)
			n = avail;
		memcpy(tc->dst + tc->got, tc->rbuf + tc->rpos, n);
		tc->rpos += n;
		tc->got += n;
		if (tc->got == tc->need)
			rx_piece_done(tc);
	}
}

static void rx(struct tcp_conn *tc)
{
	uint32_t budget = RX_BUDGET;

	/* The staging buffer is only held while reading (see rx_spare). The
	 * loop below leaves it empty when it stops (everything read is consumed
	 * before the next read), so it goes back at the end. */
	if (!tc->rbuf) {
		tc->rbuf = rbuf_take(tc);
		if (!tc->rbuf) {
			fail(tc, -ENOMEM);
			return;
		}
	}
	tc->in_rx = true;
	while (rx_alive(tc)) {
		rx_consume(tc);
		if (!rx_alive(tc) || budget == 0)
			break;
		tc->rpos = tc->rlen = 0;

		struct iovec iov[2];
		uint32_t direct = tc->need - tc->got;
		size_t want = RBUF_SIZE;
		int cnt = 0;
		ssize_t n;

		if (direct >= RX_DIRECT_MIN) {
			iov[cnt].iov_base = tc->dst + tc->got;
			iov[cnt++].iov_len = direct;
			want += direct;
		} else {
			direct = 0;
		}
		iov[cnt].iov_base = tc->rbuf;
		iov[cnt++].iov_len = RBUF_SIZE;
		n = readv(tc->fd, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fail(tc, -errno);
			break;
		}
		if (n == 0) {
			fail(tc, 0);
			break;
		}
		budget = (uint32_t)n >= budget ? 0 : budget - (uint32_t)n;
		if (direct) {
			uint32_t d = (uint32_t)n < direct ? (uint32_t)n : direct;

			tc->got += d;
			tc->rlen = (uint32_t)n - d;
			if (tc->got == tc->need)
				rx_piece_done(tc);
		} else {
			tc->rlen = (uint32_t)n;
		}
		/* A short read emptied the socket: no second read just to hear
		 * EAGAIN (epoll is level triggered, more data is a new event). */
		if ((size_t)n < want) {
			rx_consume(tc);
			break;
		}
	}
	tc->in_rx = false;
	if (tc->rpos == tc->rlen || !rx_alive(tc)) {
		tc->rpos = tc->rlen = 0;
		rbuf_give_back(tc);
	}
	if (!tc->closed)
		flush(tc);
}

static void on_event(void *arg, uint32_t events)
{
	struct tcp_conn *tc = arg;

	if (tc->closed)
		return;
	if (events & EPOLLOUT)
		flush(tc);
	if (tc->closed || tc->failed)
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		rx(tc);
}

/* ---- setup ---- */

static void fill_addr(const struct sockaddr_storage *ss, char *addr, size_t len,
		      uint16_t *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, (socklen_t)len);
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, addr, (socklen_t)len);
		*port = ntohs(s4->sin_port);
	}
}

int tcp_conn_adopt(struct reactor *r, int fd)
{
	struct mem_pool *pool = reactor_pool(r);
	struct sockaddr_storage ss;
	socklen_t sl;
	struct tcp_conn *tc;
	int one = 1, rc;

	tc = mem_zalloc(pool, sizeof(*tc));
	if (!tc) {
		close(fd);
		return -ENOMEM;
	}
	tc->fd = fd;
	tc->xc.ops = &tcp_ops;
	tc->xc.reactor = r;
	tc->xc.pool = pool;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		tc->xc.family = ss.ss_family;
		fill_addr(&ss, tc->xc.local_addr, sizeof(tc->xc.local_addr), &tc->xc.local_port);
	}
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		fill_addr(&ss, tc->xc.peer_addr, sizeof(tc->xc.peer_addr), &tc->xc.peer_port);
	rx_expect(tc, RX_BHS, tc->bhs, ISCSI_BHS_LEN);
	tc->ev = (struct reactor_event){ fd, on_event, tc };
	if (!iscsi_conn_new(&tc->xc)) {
		rc = -ENOMEM;
		goto fail;
	}
	rx_spare.conns++;           /* from here on it goes through free_conn */
	rc = reactor_event_add(r, &tc->ev, EPOLLIN);
	if (rc) {
		/* The engine owns a conn now: let it tear down through close(). */
		tc->events = 0;
		fail(tc, rc);
		return rc;
	}
	tc->events = EPOLLIN;
	return 0;
fail:
	mem_free(pool, tc);
	close(fd);
	return rc;
}
