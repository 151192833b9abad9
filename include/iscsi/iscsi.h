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
 * drops its connections, waits for their tasks' I/O, then frees the reactor's
 * caches and bdev queue pair.
 */
#ifndef LICH_ISCSI_ISCSI_H
#define LICH_ISCSI_ISCSI_H

#include <stdbool.h>
#include <stdint.h>
#include "iscsi/params.h"

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
};

/* Fills o with lich's defaults (limits: MaxRecvDataSegmentLength 256 KiB,
 * MaxBurstLength 1 MiB, FirstBurstLength 64 KiB, MaxOutstandingR2T 1..4,
 * ImmediateData Yes, InitialR2T No, digests allowed). */
void iscsi_opts_default(struct iscsi_opts *o);
int iscsi_init(const struct iscsi_opts *o);
/* Destroys what is left (targets, reactor contexts); reactors must be gone. */
void iscsi_fini(void);
/* NOP settings and whether discovery needs authentication, copied from a
 * (re)loaded config (nothing of c is kept). */
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

/* ---- per reactor (on that reactor's thread) ---- */
int iscsi_reactor_start(struct reactor *r);

/* ---- transport → engine (see net/transport.h) ---- */
/* A new connection on xc->reactor (or the reactor set up for tests); NULL if
 * the engine refuses it (stopping, no memory): the transport then closes. */
struct iscsi_conn *iscsi_conn_new(struct xport_conn *xc);
/* rx PDUs come from the engine's per-reactor cache. data buffers are
 * mem_alloc()ed from xc->pool with data_owned set; ahs too. */
struct iscsi_pdu *iscsi_pdu_alloc(struct iscsi_conn *c);
void iscsi_pdu_free(struct iscsi_conn *c, struct iscsi_pdu *pdu);
/* A whole received PDU (the engine owns it from here). rx_status is 0, or a
 * Reject reason (header check reason, ISCSI_REJECT_DATA_DIGEST). */
void iscsi_conn_recv(struct iscsi_conn *c, struct iscsi_pdu *pdu, int rx_status);
/* A queued PDU was written (or dropped at close). */
void iscsi_conn_tx_done(struct iscsi_conn *c, struct iscsi_pdu *pdu);
/* The connection broke (EOF, reset, framing or header digest error). */
void iscsi_conn_xport_failed(struct iscsi_conn *c, int err);

#endif
