/* iscsi.h — the iSCSI engine (RFC 7143, ERL 0, one connection per session).
 *
 * The engine runs connections, logins, sessions and tasks on top of a
 * transport (net/transport.h) and the SCSI layer (scsi/scsi.h). Each
 * connection (and so each session, MaxConnections=1) lives on one reactor;
 * nothing on the I/O path locks. What is process-wide — the target registry
 * and the session table (initiator name, ISID, target) used for session
 * reinstatement and TSIH lookups — is guarded by one mutex taken at login,
 * logout, reload and session end only.
 *
 * Task management that reaches other sessions (LU and target resets, CLEAR
 * TASK SET, PREEMPT AND ABORT) goes to every reactor as messages, and the
 * response waits for their answers (src/iscsi/sweep.c).
 *
 * Setup (lichd):
 *   iscsi_init(opts)                      before reactors run
 *   iscsi_target_add(...)                 per target (any thread)
 *   iscsi_reactor_start(r)                on every reactor, from its start_fn
 *   ... reactors_run ...                  connections arrive from the transport
 *   iscsi_fini()                          after reactors_run returned
 * At shutdown each reactor's stop hook (registered by iscsi_reactor_start)
 * asks its full-feature sessions to log out (Async Message, see
 * iscsi_session_request_logout), waits up to opts.shutdown_timeout seconds for
 * them, drops what is left, waits for their tasks' I/O, then frees the
 * reactor's caches and bdev queue pair.
 */
#ifndef LICH_ISCSI_ISCSI_H
#define LICH_ISCSI_ISCSI_H

#include <stdbool.h>
#include <stdint.h>
#include "iscsi/params.h"
#include "ctl/stats.h"

#define XPORT_ADDR_TEXT_MAX 80             /* "[v6 address]:port" */

struct reactor;
struct iscsi_conn;
struct iscsi_pdu;
struct xport_conn;
struct scsi_target;
struct conf_target;
struct config;

struct iscsi_opts {
	struct iscsi_target_limits limits;  /* what we offer / accept in login */
	unsigned queue_depth;        /* CmdSN window per session (default 128) */
	unsigned login_timeout;      /* seconds until a half-open login is dropped (15) */
	unsigned nop_interval;       /* seconds idle before a NOP-In ping; 0 = off */
	unsigned nop_timeout;        /* seconds to wait for the ping's answer */
	unsigned bdev_depth;         /* per reactor bdev queue pair depth (256) */
	unsigned shutdown_timeout;   /* seconds sessions get to log out at shutdown
	                              * (5); 0 = drop them at once */
};

/* Fills o with lich's defaults (limits: MaxRecvDataSegmentLength 256 KiB,
 * MaxBurstLength 1 MiB, FirstBurstLength 64 KiB, MaxOutstandingR2T 1..4,
 * ImmediateData Yes, InitialR2T No, digests allowed). */
void iscsi_opts_default(struct iscsi_opts *o);
int iscsi_init(const struct iscsi_opts *o);
/* Destroys what is left (targets, reactor contexts); reactors must be gone. */
void iscsi_fini(void);
/* NOP settings, shutdown-timeout and whether discovery needs authentication,
 * copied from a (re)loaded config (nothing of c is kept). */
void iscsi_set_config(const struct config *c);

/* ---- targets (any thread) ----
 * iscsi_target_add takes ownership of st: it is destroyed (scsi_target_destroy)
 * when the target was removed and its last session ended, and then
 * release(arg) runs (on whatever thread ended that session) so the caller can
 * close the target's backing stores. conf points into the caller's config
 * (ACL, accounts) and is read only under the registry lock. */
int iscsi_target_add(struct scsi_target *st, const struct conf_target *conf,
		     void (*release)(void *arg), void *arg);
/* Points an existing target at its entry in a newly loaded config. */
int iscsi_target_update_conf(const char *name, const struct conf_target *conf);
/* Unregisters: new logins fail with TGT_NOT_FOUND, and its sessions are
 * dropped (on their reactors). -ENOENT if unknown. */
int iscsi_target_remove(const char *name);
struct scsi_target *iscsi_target_scsi(const char *name);   /* NULL if unknown */
/* The registry lock (conf_target pointers are read under it), for callers
 * that swap the config the targets point into. */
void iscsi_config_lock(void);
void iscsi_config_unlock(void);
unsigned iscsi_session_count(void);
/* Asks one session (session_id: the engine's id of its connection, as in the
 * session table) to log out: its reactor sends an Async Message, AsyncEvent 1
 * "target requests logout", Parameter3 = time_to_logout seconds (RFC 7143
 * §11.9.1), and drops the connection if the initiator has not logged out
 * 2 s after that. Discovery sessions are dropped at once. Any thread; the
 * work runs on the session's reactor. -ENOENT if no such session. */
int iscsi_session_request_logout(uint64_t session_id, unsigned time_to_logout);

/* ---- per reactor (on that reactor's thread) ---- */
int iscsi_reactor_start(struct reactor *r);

/* ---- introspection for lichctl (src/iscsi/info.c) ----
 * Sessions are listed by asking each reactor (a message to it), which fills
 * iscsi_session_info entries for the sessions it owns; nothing here reads
 * another reactor's connections. */
struct iscsi_session_info {
	uint64_t id;                       /* session id (= its connection's id) */
	unsigned reactor;
	bool discovery;
	bool logging_out;                  /* logout asked for or in progress */
	char initiator[ISCSI_NAME_MAX + 1];
	char target[ISCSI_NAME_MAX + 1];   /* "" for discovery */
	uint8_t isid[6];
	uint16_t tsih;
	uint16_t cid;
	char peer[XPORT_ADDR_TEXT_MAX];    /* "addr:port" / "[v6]:port" */
	char local[XPORT_ADDR_TEXT_MAX];
	struct iscsi_params_info {
		bool header_digest, data_digest;
		uint32_t max_recv_dsl;         /* ours: what the initiator may send */
		uint32_t max_xmit_dsl;         /* the initiator's MaxRecvDataSegmentLength */
		uint32_t max_burst, first_burst;
		uint32_t max_outstanding_r2t;
		bool immediate_data, initial_r2t;
		uint8_t erl;
	} params;
	struct ctl_io_ctr io;              /* finished commands on this connection */
};
/* On a reactor thread: its sessions in full feature phase (or logging out).
 * Fills up to max entries; returns how many there are. */
unsigned iscsi_sessions_here(struct iscsi_session_info *out, unsigned max);
/* Asks session id on reactor rid to log out within secs seconds (Async
 * Message, see iscsi_session_request_logout), or drops it at once (now). */
void iscsi_session_logout_on(unsigned rid, uint64_t id, bool now, unsigned secs);

/* ---- transport → engine (see net/transport.h) ---- */
/* A new connection on xc->reactor (or the reactor set up for tests); NULL if
 * the engine refuses it (stopping, no memory): the transport then closes. */
struct iscsi_conn *iscsi_conn_new(struct xport_conn *xc);
/* rx PDUs come from the engine's per-reactor cache. data buffers are
 * mem_alloc()ed from xc->pool with data_owned set; ahs too. */
struct iscsi_pdu *iscsi_pdu_alloc(struct iscsi_conn *c);
void iscsi_pdu_free(struct iscsi_conn *c, struct iscsi_pdu *pdu);
/* Zero-copy receive (optional for a transport; see net/transport.h): pdu has
 * its checked BHS and data_len (> 0), no data yet. For a Data-Out the engine
 * would accept as it stands (known ITT and TTT, next DataSN, next offset, all
 * inside the command's transfer and buffer) returns n in 1..max: the data
 * segment's data_len bytes go, in order, into iov[0..n) — task buffer memory —
 * and pdu->rx_placed is set, pinning the task until the PDU is freed (delivered
 * or dropped). Padding and digest stay the transport's. Returns 0 for anything
 * else: the transport reads the data into a pdu->data buffer of its own. */
struct iovec;
int iscsi_conn_data_dest(struct iscsi_conn *c, struct iscsi_pdu *pdu, struct iovec *iov,
			 int max);
/* A whole received PDU (the engine owns it from here). rx_status is 0, or a
 * Reject reason (header check reason, ISCSI_REJECT_DATA_DIGEST). */
void iscsi_conn_recv(struct iscsi_conn *c, struct iscsi_pdu *pdu, int rx_status);
/* A queued PDU was written (or dropped at close). */
void iscsi_conn_tx_done(struct iscsi_conn *c, struct iscsi_pdu *pdu);
/* RDMA transports: a put_data / get_data (net/transport.h) finished; cookie
 * is the one given, err 0 or -errno (flushed at close, remote error). */
void iscsi_rdma_put_done(void *cookie, int err);
void iscsi_rdma_get_done(void *cookie, int err);
/* The connection broke (EOF, reset, framing or header digest error). */
void iscsi_conn_xport_failed(struct iscsi_conn *c, int err);

#endif
