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
 *   placing  (optional, zero copy) once the header (and header digest) is
 *            good and the header check returned 0, a transport that reads the
 *            data segment itself may ask iscsi_conn_data_dest() where it goes.
 *            n > 0: read data_len bytes into those n task-buffer iovecs (then
 *            padding and digest into its own scratch), verify the data digest
 *            over them (crc32c_iov, then the pad bytes), and deliver the PDU
 *            with data NULL and rx_placed set; a digest error is delivered with
 *            ISCSI_REJECT_DATA_DIGEST as above (the engine drops the connection
 *            for a Data-Out, so the bytes written are never used). 0: read the
 *            data into a pdu->data buffer as usual. The engine answers n > 0
 *            only for a Data-Out it would accept as it stands, and pins the task
 *            until the PDU is freed: the transport may go on writing into the
 *            iovecs over any number of reactor turns, and must free the PDU with
 *            iscsi_pdu_free() (delivery or close()) before forgetting it, never
 *            keep writing after. A transport that places data another way (iSER:
 *            RDMA Read of solicited data into the task buffer) need not call it;
 *            unplaced PDUs keep working as they always did (the engine copies).
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
struct iscsi_rdma_ref;
struct iovec;

#define XPORT_ADDR_MAX 64   /* numeric v4/v6 address text, no brackets */

struct xport_conn;

struct xport_ops {
	const char *name;                 /* "tcp", "iser" */
	/* Queues pdu; 0 (the transport owns it until tx_done), or -EPIPE when
	 * the connection is going away (the caller keeps the PDU). */
	int (*send)(struct xport_conn *xc, struct iscsi_pdu *pdu);
	/* See above; xc must not be used after this returns. */
	void (*close)(struct xport_conn *xc);
	/* Optional, RDMA transports (iSER, RFC 7145 §7.3): the engine moves a
	 * task's data with these instead of Data-In and R2T/Data-Out PDUs.
	 * put_data writes len bytes of iov (task buffer) to the initiator's
	 * buffer ref (RDMA Write); a PDU queued with send() after it reaches the
	 * initiator after the data (the SCSI Response follows its Data-In).
	 * get_data reads len bytes from ref into iov (RDMA Read). Both return 0
	 * and later call iscsi_rdma_put_done / iscsi_rdma_get_done(cookie, err)
	 * exactly once, when the device no longer uses iov — also after close()
	 * (flushed work, err < 0): the engine keeps the task, and so its
	 * connection, until then. Or -errno: nothing posted, no upcall. */
	int (*put_data)(struct xport_conn *xc, const struct iscsi_rdma_ref *ref,
			const struct iovec *iov, int iovcnt, uint32_t len, void *cookie);
	int (*get_data)(struct xport_conn *xc, const struct iscsi_rdma_ref *ref,
			const struct iovec *iov, int iovcnt, uint32_t len, void *cookie);
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
	uint32_t rdma_max_dsl;            /* RDMA: data a receive buffer holds; 0 on TCP */
	uint32_t rdma_max_unexpected;     /* RDMA: PDUs the posted receives absorb */
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

/* ---- iSER (RFC 7145; src/net/iser*.c) ----
 * Same life cycle as the TCP portals: open (rdma_cm ids bound and listening,
 * any thread, before the reactors run; -errno if a portal's address has no
 * RDMA device or rdma_cm is missing), start on reactor 0 (connection requests
 * are handed round robin to the reactors), close after reactors_run returned
 * (also frees the protection domains). Connections negotiate
 * RDMAExtensions=Yes and move data by RDMA Write/Read (put_data/get_data). */
struct iser_portals;
int iser_portals_open(const struct conf_portal *portals, unsigned n,
		      struct iser_portals **out);
int iser_portals_start(struct iser_portals *ps);
void iser_portals_close(struct iser_portals *ps);
/* Memory registrations (ibv_reg_mr) made so far: one per pool chunk and
 * protection domain, never one per I/O. */
unsigned long iser_mr_registrations(void);

#endif
