/* transport.h — how the iSCSI engine talks to a connection, without sockets.
 *
 * A transport (TCP now, iSER later) frames PDUs and moves them; the engine
 * (src/iscsi) never makes a socket call. The contract is PDU oriented:
 *
 *   receive  the transport reads a BHS, validates it with
 *            iscsi_pdu_check_header() against xc->max_recv_dsl before anything
 *            is allocated, reads AHS, header digest, data + padding and data
 *            digest (verifying the digests the engine enabled), and hands the
 *            whole PDU up with iscsi_conn_recv(). A header digest error or a
 *            framing error (-EPROTO from the header check) is fatal: the
 *            transport stops reading and calls iscsi_conn_xport_failed(). A data
 *            digest error is not: the PDU is delivered with status
 *            ISCSI_REJECT_DATA_DIGEST, and a header the check rejected with a
 *            reason (>0) is delivered with that reason, so the engine can
 *            answer with a Reject.
 *   send     ops->send() queues a PDU (BHS, AHS, data from pdu->data or from
 *            pdu->data_iov when data_iovcnt > 0, padding, digests). The transport
 *            batches queued PDUs into few syscalls. Once a PDU is written — or
 *            dropped because the connection is closing — the transport hands it
 *            back with iscsi_conn_tx_done(); it never frees a PDU itself.
 *   close    ops->close() is the engine's last word on a connection: the
 *            transport drops what is still queued (tx_done for each, before
 *            close returns), closes the socket and frees itself later (never
 *            inside the call). After close() it calls nothing more about that
 *            connection. The engine calls close() exactly once, also after
 *            iscsi_conn_xport_failed().
 *
 * Digests and limits: the engine writes max_recv_dsl (8192 during login) and
 * the digest flags in struct xport_conn. The transport reads them when it starts
 * parsing a PDU and when it starts writing one, so the engine switches them
 * only when nothing is queued (RFC 7143: digests start with the first PDU after
 * the final Login Response; the engine flips them when that response has been
 * written).
 *
 * Threads: a connection lives on one reactor for life; every call above happens
 * on that reactor. Upcalls may re-enter the transport (send, close) — the
 * transport must cope with close() from inside iscsi_conn_recv().
 */
#ifndef LICH_NET_TRANSPORT_H
#define LICH_NET_TRANSPORT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

struct iscsi_pdu;
struct iscsi_conn;
struct reactor;
struct mem_pool;
struct conf_portal;

#define XPORT_ADDR_MAX 64   /* numeric v4/v6 address text, no brackets */

struct xport_conn;

struct xport_ops {
	const char *name;                 /* "tcp", "iser" */
	/* Queues pdu; 0 (the transport owns it until tx_done), or -EPIPE when
	 * the connection is going away (the caller keeps the PDU). */
	int (*send)(struct xport_conn *xc, struct iscsi_pdu *pdu);
	/* See above; xc must not be used after this returns. */
	void (*close)(struct xport_conn *xc);
};

/* Embedded first in each transport's connection object. */
struct xport_conn {
	const struct xport_ops *ops;
	struct iscsi_conn *conn;          /* engine side, set by iscsi_conn_new */
	struct reactor *reactor;          /* may be NULL in unit tests */
	struct mem_pool *pool;
	/* written by the engine */
	uint32_t max_recv_dsl;            /* data segment limit for received PDUs */
	bool header_digest;
	bool data_digest;
	/* written by the transport when the connection is set up */
	int family;                       /* AF_INET / AF_INET6 */
	char local_addr[XPORT_ADDR_MAX];  /* the address the initiator reached */
	uint16_t local_port;
	char peer_addr[XPORT_ADDR_MAX];
	uint16_t peer_port;
};

/* ---- TCP ---- */

struct tcp_portals;

/* Creates, binds and listens on a socket per portal (IPv6 with IPV6_V6ONLY,
 * SO_REUSEADDR, non-blocking). Any thread; nothing is polled yet. Logs and
 * returns -errno on the first portal that fails (the others are closed). */
int tcp_portals_open(const struct conf_portal *portals, unsigned n,
		     struct tcp_portals **out);
/* On reactor 0: starts accepting. Each accepted connection is handed round
 * robin to a reactor (reactor_send) and lives there for life. Registers a stop
 * hook that stops accepting at shutdown. */
int tcp_portals_start(struct tcp_portals *ps);
/* Closes the listening sockets (any thread once reactors are stopped, or
 * before they run) and frees ps. */
void tcp_portals_close(struct tcp_portals *ps);

/* Adopts an already connected socket on the calling reactor (used by the
 * listener; exposed for tests). Returns 0 or -errno (fd closed on error). */
int tcp_conn_adopt(struct reactor *r, int fd);

#endif
