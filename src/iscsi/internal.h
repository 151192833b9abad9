/* internal.h — the engine's private structures (src/iscsi only, and its tests).
 *
 * Ownership in one picture:
 *   iscsi_reactor (one per reactor)   pool, slab caches, bdev qp, its connections
 *     iscsi_conn                      transport handle, login state, StatSN,
 *       iscsi_session (embedded)      ISID/TSIH, I_T nexus, CmdSN window
 *       iscsi_task ...                one per command, hashed by ITT
 *   registry (process wide, mutex)    targets, session table
 *
 * A connection is freed only when it is dead, no task is left (every task's
 * bdev I/O has completed and every PDU pointing into its buffer was written or
 * dropped) and no engine frame is using it (refs).
 */
#ifndef LICH_ISCSI_INTERNAL_H
#define LICH_ISCSI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iscsi/chap.h"
#include "iscsi/iscsi.h"
#include "iscsi/params.h"
#include "iscsi/pdu.h"
#include "net/transport.h"
#include "scsi/scsi.h"
#include "ctl/stats.h"

#define ITT_RESERVED      0xffffffffu
#define TTT_NONE          0xffffffffu
#define TASK_HASH_SIZE    256
#define TASK_MAX_R2T      8       /* ceiling of MaxOutstandingR2T we accept */
#define LOGIN_TEXT_MAX    (32u << 10)   /* text of one login phase (C bit) */
#define LOGIN_PDU_MAX     8192          /* data segment per login PDU */
#define TEXT_REQ_MAX      (32u << 10)   /* text request with C bit */
#define TEXT_RSP_MAX      (256u << 10)  /* SendTargets answer */
#define TMF_RECEIVED_MAX   8      /* CmdSNs an ABORT TASK declared received */

struct abort_waiter;
struct sweep;

struct iscsi_reactor {
	struct reactor *r;            /* NULL-free: tests use reactors_init */
	unsigned id;
	struct mem_pool *pool;
	struct slab_cache *pdu_cache;
	struct slab_cache *task_cache;
	struct bdev_qp *qp;
	struct iscsi_conn *conns;     /* doubly linked */
	unsigned nconns;
	struct timer *tick;
	bool stopping;
	bool stop_forced;             /* shutdown: what did not log out was dropped */
	uint64_t stop_deadline_us;    /* ... at this time */
	bool stopped;                 /* caches and qp gone */
	/* task management (sweep.c) */
	uint64_t rx_seq;              /* commands received here, in order */
	uint64_t abort_seq;           /* last number given to an aborted task in flight */
	struct iscsi_task *aborting, *aborting_tail;  /* those tasks, by number */
	struct abort_waiter *waiters, *waiters_tail;  /* sweeps waiting for them */
	unsigned sweeps_out;          /* sweeps started here, replies pending */
};

struct iscsi_tgt {
	struct iscsi_tgt *next;
	char name[ISCSI_NAME_MAX + 1];
	struct scsi_target *st;
	const struct conf_target *conf;   /* under the registry lock */
	unsigned refs;                    /* registry + sessions */
	bool removed;
	void (*release)(void *arg);
	void *release_arg;
};

enum conn_state {
	CONN_LOGIN = 0,
	CONN_LOGIN_WAIT,     /* final login response waits for a reinstatement */
	CONN_FULL,
	CONN_LOGOUT,         /* logout accepted: waiting for earlier tasks */
	CONN_CLOSING,        /* last PDU queued; close when written */
	CONN_DEAD,
};

struct iscsi_session {
	/* registry table (under the lock) */
	struct iscsi_session *g_next, *g_prev;
	bool in_table;
	bool dying;
	bool has_waiter;
	unsigned waiter_rid;
	uint64_t waiter_conn;
	/* immutable once in the table */
	uint64_t id;                  /* == its connection's id */
	unsigned rid;
	uint8_t isid[6];
	uint16_t tsih;
	enum iscsi_session_type type;
	char initiator_name[ISCSI_NAME_MAX + 1];
	struct iscsi_tgt *tgt;        /* normal sessions; holds a ref */
	/* reactor local */
	struct scsi_nexus nexus;
	bool nexus_attached;
	uint32_t exp_cmd_sn;
	uint32_t max_cmd_sn;
	struct iscsi_task *held;      /* commands waiting for a CmdSN gap, sorted */
	unsigned nheld;
	struct iscsi_task *parked;    /* immediate TMFs waiting for that gap (tmf.c) */
	uint32_t tmf_received[TMF_RECEIVED_MAX];  /* CmdSNs an ABORT TASK consumed */
	unsigned ntmf_received;
};

struct iscsi_conn {
	struct iscsi_conn *next, *prev;   /* reactor list */
	struct iscsi_reactor *ir;
	struct xport_conn *xc;
	bool rdma;                        /* full feature phase on an RDMA transport (put_data) */
	uint64_t id;
	enum conn_state state;
	unsigned refs;                    /* engine frames using the conn */
	unsigned ntasks;
	unsigned tx_ctl;                  /* PDUs other than Data-In handed to the
					   * transport and not yet written */
	bool freed;                       /* (debug) */

	uint16_t cid;
	uint32_t stat_sn;                 /* next StatSN to assign */
	uint32_t exp_stat_sn;
	struct iscsi_params params;

	/* login */
	int login_stage;                  /* current stage (CSG expected next) */
	bool login_started;
	bool login_checked;               /* session checks done (first request) */
	uint32_t login_itt;
	uint32_t login_cmd_sn;
	uint8_t login_isid[6];
	uint16_t login_tsih;
	char *login_text;                 /* accumulated with the C bit */
	uint32_t login_text_len;
	uint64_t login_start_us;
	struct iscsi_tgt *login_tgt;      /* ref held until the session takes it */
	struct iscsi_pdu *login_final;    /* final response parked during reinstatement */

	struct iscsi_session sess;        /* valid once in full feature phase */

	/* tasks */
	struct iscsi_task *tasks;         /* all live tasks, doubly linked */
	struct iscsi_task *hash[TASK_HASH_SIZE];
	uint32_t next_ttt;

	/* text requests / responses (full feature and discovery) */
	char *text_req;
	uint32_t text_req_len;
	uint32_t text_req_itt;
	struct iscsi_textbuf text_rsp;
	bool text_rsp_active;
	uint32_t text_rsp_off;
	uint32_t text_rsp_ttt;
	uint32_t text_rsp_itt;

	/* logout */
	bool logout_pending;
	uint32_t logout_itt;
	uint8_t logout_response;
	bool logout_requested;            /* we sent AsyncEvent 1 (logout please) */
	uint64_t logout_deadline_us;      /* ... and drop the connection after this */

	/* NOP */
	uint64_t last_rx_us;
	bool ping_out;
	uint32_t ping_ttt;
	uint64_t ping_sent_us;

	char peer[XPORT_ADDR_MAX + 8];    /* "addr:port" / "[v6]:port", for logs */
	struct ctl_io_ctr io_stats;       /* finished commands (info.c, for lichctl) */

	/* login authentication (login.c, chap.c) */
	struct chap_state chap;
	bool login_delaying;              /* failed: the answer waits (auth failure delay) */
	uint16_t login_fail_status;
	uint8_t login_fail_bhs[ISCSI_BHS_LEN];  /* the request being answered */
};

enum task_kind { TASK_SCSI = 0, TASK_PDU, TASK_TMF };

struct iscsi_r2t {
	uint32_t ttt;
	uint32_t off;
	uint32_t len;
	uint32_t got;
	uint32_t datasn;
	bool active;
};

struct iscsi_task {
	struct scsi_task st;              /* first: scsi done() gets &st */

	/* Cleared by task_alloc: every command pays for this block, keep it short. */
	struct iscsi_task *held_next;     /* sess.held */
	struct iscsi_pdu *pdu;            /* TASK_PDU: the held command */
	bool hashed;
	bool held;
	bool ordered;                     /* its CmdSN turn came (or immediate) */
	bool prepared;                    /* scsi_task_prepare returned EXEC */
	bool early_status;                /* prepare finished it (or an error) */
	bool exec_called;
	bool scsi_done;                   /* done() ran */
	bool rsp_queued;                  /* the final PDU went to the transport */
	bool aborted;
	bool data_failed;                 /* bad Data-Out: failed, rest discarded */
	bool pdu_inline_busy;             /* pdu_inline is queued or being filled */
	bool sweep_mark;                  /* (sweep.c, while it walks a session) */
	bool parked;                      /* TMF: on sess.parked */
	unsigned tx_refs;                 /* queued PDUs pointing into the buffer */
	unsigned rx_pins;                 /* received PDUs being read into the buffer */
	/* data out */
	bool wants_data;                  /* W bit with EDTL > 0 */
	bool unsol_pending;               /* waiting for the unsolicited F bit */
	uint8_t r2t_used;                 /* r2ts[] slots ever used: the rest are not */
	uint32_t xfer_len;                /* bytes kept: min(EDTL, data_out_len) */
	uint32_t data_got;                /* bytes received (in order) */
	uint32_t unsol_limit;             /* end offset of unsolicited data */
	uint32_t unsol_datasn;
	uint32_t r2t_next_off;            /* next offset to solicit */
	uint32_t r2t_sn;
	unsigned r2t_out;
	/* data in */
	uint32_t datasn;                  /* next DataSN (Data-In), = ExpDataSN */
	uint64_t abort_seq;               /* != 0: aborted with I/O in flight, on ir->aborting */
	struct sweep *sweep;              /* TMF / PERSISTENT RESERVE OUT: what it waits for */

	/* Set by task_alloc and by whoever allocated the task (a SCSI command
	 * sets all of these in scsi_cmd_recv; other kinds get them cleared). */
	struct iscsi_conn *conn;
	struct iscsi_task *next, *prev;   /* conn->tasks */
	struct iscsi_task *hnext;         /* conn->hash (read only while hashed) */
	enum task_kind kind;
	uint32_t itt;
	uint32_t cmd_sn;
	uint32_t edtl;
	uint32_t lun_raw_hi, lun_raw_lo;  /* the LUN field as received */
	uint64_t rx_seq;                  /* arrival order on its reactor */
	uint64_t rx_us;                   /* arrival time (the reactor's turn clock) */
	/* iSER (RFC 7145): initiator buffers from the command's iSER header */
	struct iscsi_rdma_ref rdma_in, rdma_out;
	uint32_t rdma_out_base;           /* task offset rdma_out.va stands for */

	/* Only valid where their owner says so: not cleared. */
	struct iscsi_r2t r2ts[TASK_MAX_R2T];   /* below r2t_used, where active */
	struct iscsi_task *ab_next, *ab_prev;  /* while abort_seq != 0 */
	struct iscsi_task *park_next;     /* while parked */
	/* TMF requests (tmf.c sets them all before use) */
	uint8_t tmf_function;
	uint8_t tmf_response;
	uint32_t tmf_rtt;                 /* Referenced Task Tag */
	uint32_t tmf_ref_sn;              /* RefCmdSN */
	uint64_t tmf_lun;                 /* decoded; UINT64_MAX if malformed */

	/* The first Data-In or the SCSI Response of this task goes out in this
	 * PDU: no allocation for the common one-PDU answer (pdu_in_task). */
	struct iscsi_pdu pdu_inline;
};

static inline struct iscsi_task *task_of_inline_pdu(struct iscsi_pdu *p)
{
	return (struct iscsi_task *)((char *)p - offsetof(struct iscsi_task, pdu_inline));
}

/* ---- process-wide state (target.c) ---- */
extern struct iscsi_opts iscsi_opts_cur;
struct iscsi_reactor *iscsi_reactor_of(unsigned id);
/* Runs fn(a, b) on reactor rid: reactor_send from a reactor thread, a direct
 * call from a thread that is not a reactor (unit tests, single threaded). */
void iscsi_post(unsigned rid, void (*fn)(void *a, void *b), void *a, void *b);
uint64_t iscsi_next_id(void);
void iscsi_reactor_register(struct iscsi_reactor *ir);
/* Frees a reactor's caches and qp (its connections must be gone). */
void iscsi_reactor_teardown(struct iscsi_reactor *ir);
/* Message: drop the session whose id is (uintptr_t)a; b is a reason string. */
void iscsi_session_kill_msg(void *a, void *b);
/* Message: ask the session whose id is (uintptr_t)a to log out within
 * (uintptr_t)b seconds (conn_request_logout). */
void iscsi_session_logout_msg(void *a, void *b);
unsigned iscsi_nop_interval(void);
unsigned iscsi_nop_timeout(void);
unsigned iscsi_shutdown_timeout(void);    /* opts, then each (re)loaded config */

/* Registry: the calls below take the lock themselves. */
struct iscsi_tgt *reg_target_get(const char *name);      /* +ref, NULL if none */
void reg_target_put(struct iscsi_tgt *t);
bool reg_target_allows(struct iscsi_tgt *t, const char *iname, const char *addr);
bool reg_target_needs_auth(struct iscsi_tgt *t);
bool reg_discovery_needs_auth(void);
/* SendTargets: "All" (discovery), a name, or "" (the session's target). */
int reg_sendtargets(struct iscsi_conn *c, const char *which, struct iscsi_textbuf *tb);
/* Session table. enter: 0 = entered, no old session; 1 = entered, an old
 * session with the same (initiator, ISID, target) is being closed and this
 * connection will get iscsi_login_resume() when it is gone; or a login status
 * (>1) to fail with. */
int reg_session_enter(struct iscsi_conn *c);
/* TSIH != 0 login: true if that session exists for this initiator/ISID. */
bool reg_session_exists(const char *iname, const uint8_t isid[6], uint16_t tsih);
void reg_session_leave(struct iscsi_session *s);
/* Drops every session of t (after t was removed). */
void reg_kill_target_sessions(struct iscsi_tgt *t);

/* ---- conn.c ---- */
void conn_get(struct iscsi_conn *c);
void conn_put(struct iscsi_conn *c);
void conn_drop(struct iscsi_conn *c, const char *why);
/* A task of c was freed (may free a dead connection). */
void conn_task_gone(struct iscsi_conn *c);
/* The connection with this id on the calling reactor, or NULL. */
struct iscsi_conn *conn_find_here(uint64_t id);
struct iscsi_pdu *conn_pdu_new(struct iscsi_conn *c, uint8_t opcode);
struct iscsi_pdu *task_pdu_new(struct iscsi_task *t, uint8_t opcode);
/* The reactor's turn clock (one clock read per turn, not per command). */
uint64_t iscsi_now_us(const struct iscsi_reactor *ir);
/* Allocates a data segment of len bytes (owned by the pdu). -ENOMEM. */
int conn_pdu_data(struct iscsi_conn *c, struct iscsi_pdu *p, uint32_t len);
/* Fills StatSN (advancing it when adv), ExpCmdSN and MaxCmdSN, then queues. */
void conn_send(struct iscsi_conn *c, struct iscsi_pdu *p, bool adv_statsn);
void conn_send_reject(struct iscsi_conn *c, const uint8_t *bhs, uint8_t reason);
/* Queues p and closes the connection once it is written. */
void conn_send_and_close(struct iscsi_conn *c, struct iscsi_pdu *p, bool adv);
struct iscsi_conn *conn_find(struct iscsi_reactor *ir, uint64_t id);
void conn_tick(struct iscsi_conn *c, uint64_t now_us);
void conn_logout_check(struct iscsi_conn *c);
const char *conn_target_name(const struct iscsi_conn *c);

/* ---- login.c ---- */
void login_recv(struct iscsi_conn *c, struct iscsi_pdu *p, int rx_status);
void iscsi_login_resume(void *conn_id, void *rid);   /* message handler */

/* ---- task.c, cmdsn.c ---- */
struct iscsi_task *task_alloc(struct iscsi_conn *c, enum task_kind kind);
void task_free(struct iscsi_task *t);
struct iscsi_task *task_find(struct iscsi_conn *c, uint32_t itt);
void task_hash_add(struct iscsi_task *t);
void task_maybe_release(struct iscsi_task *t);
/* Aborts t: no response will be sent for it. A SCSI task whose I/O is in
 * flight is tracked (sweep.c) until done() lets it go. */
void task_abort(struct iscsi_task *t);
/* True if st is one of the engine's tasks (its priv is the iscsi_task). */
bool task_is_iscsi(const struct scsi_task *st);
void task_tx_done(struct iscsi_task *t);
void scsi_cmd_recv(struct iscsi_conn *c, struct iscsi_pdu *p);
void data_out_recv(struct iscsi_conn *c, struct iscsi_pdu *p, int rx_status);
/* CmdSN: 0 = run now (and ExpCmdSN advanced if not immediate), 1 = out of
 * window (dropped silently), 2 = held (gap before it). */
int cmdsn_check(struct iscsi_conn *c, const uint8_t *bhs);
void cmdsn_advance(struct iscsi_conn *c);
/* Moves MaxCmdSN on as far as the open tasks allow (after a task ended). */
void cmdsn_window_update(struct iscsi_conn *c);
int held_insert(struct iscsi_conn *c, struct iscsi_task *t);
void held_clear(struct iscsi_conn *c);
void held_drain(struct iscsi_conn *c);
/* Target resets "plug" the CmdSN gap below sn (RFC 7143 §4.2.3.3): ExpCmdSN
 * jumps to sn, commands held below it are aborted (or dropped). */
void cmdsn_plug(struct iscsi_conn *c, uint32_t sn);
void conn_dispatch_cmd(struct iscsi_conn *c, struct iscsi_pdu *p);
void task_scsi_resume(struct iscsi_task *t);
/* Sends Data-In and status (or the early status) and lets the task go. */
void task_complete(struct iscsi_task *t);
void task_put_lun(struct iscsi_pdu *p, const struct iscsi_task *t);

/* ---- info.c: counters and introspection for lichctl ---- */
/* Counts a finished SCSI command in its connection's and its LU's counters. */
void task_account(struct iscsi_task *t);

/* ---- dataout.c ---- */
/* Received data into the task buffer at off (what lies past the command's
 * length is discarded). */
void take_data(struct iscsi_task *t, uint32_t off, const uint8_t *src, uint32_t len);
void r2t_fill(struct iscsi_task *t);
/* Write side of a new command from its PDU: 0 or a Reject reason. */
int setup_write(struct iscsi_task *t, const struct iscsi_pdu *p);

/* ---- tmf.c, text.c ---- */
void tmf_recv(struct iscsi_conn *c, struct iscsi_pdu *p);
/* Runs the parked TMFs whose CmdSN gap has filled (called as ExpCmdSN moves). */
void tmf_run_parked(struct iscsi_conn *c);
void tmf_unpark_all(struct iscsi_conn *c);
void nop_out_recv(struct iscsi_conn *c, struct iscsi_pdu *p);
void text_recv(struct iscsi_conn *c, struct iscsi_pdu *p);
void logout_recv(struct iscsi_conn *c, struct iscsi_pdu *p);
/* Sends an Async Message "target requests logout" (Parameter3 = secs) to a
 * full-feature session; conn_tick drops it if it is still there a grace
 * period after secs. Discovery sessions are dropped at once. */
void conn_request_logout(struct iscsi_conn *c, unsigned secs);
void conn_send_ping(struct iscsi_conn *c);

/* ---- sweep.c: aborting tasks across sessions and reactors ----
 * A sweep aborts the tasks a task management function (or PREEMPT AND ABORT)
 * affects, on every reactor, and calls its owner back on the origin reactor
 * once they are all gone (their I/O completed). */
enum sweep_scope {
	SWEEP_SESSION,      /* the issuing session only */
	SWEEP_TARGET,       /* every session of the issuing session's target */
	SWEEP_NEXUSES,      /* the sessions whose nexus id is listed */
};

struct sweep {
	/* immutable once started (read by every reactor) */
	enum sweep_scope scope;
	unsigned origin_rid;
	struct iscsi_tgt *tgt;        /* holds a registry ref */
	bool all_luns;
	uint64_t lun;
	uint64_t issuer_conn;         /* connection (= session) id of the requester */
	uint64_t issuer_rx_seq;       /* its commands received after the request are spared */
	uint32_t issuer_cmd_sn;       /* ... and its held commands at or after this CmdSN */
	bool one_task;                /* ABORT TASK: only the issuer's task itt */
	uint32_t itt;
	bool spare;                   /* PREEMPT AND ABORT: the issuer's task spare_itt lives */
	uint32_t spare_itt;
	bool drop_others;             /* TARGET COLD RESET: close the other sessions too */
	uint64_t origin_rx_seq;       /* other sessions: commands received after the start */
	uint64_t start_us;            /* ... (on other reactors, by clock) */
	uint64_t *nexus_ids;          /* SWEEP_NEXUSES */
	unsigned n_nexus, cap_nexus;
	/* origin reactor only */
	bool started;
	unsigned pending;             /* reactors that have not replied */
	struct iscsi_task *owner;     /* NULL once the owner went away */
	void (*done)(struct iscsi_task *owner);
};

/* A sweep of tasks affected by a request of c's session (arrived now). */
struct sweep *sweep_new(struct iscsi_conn *c, enum sweep_scope scope);
int sweep_add_nexus(struct sweep *s, uint64_t nexus_id);
/* Sends the sweep on its way. This reactor's part runs now if local_now (a
 * TMF being processed: its own session's tasks must be aborted before its
 * next PDU), else from a deferred call; other reactors' parts from messages.
 * done(owner) runs on this reactor, from a deferred call or a message, once
 * every affected task is gone, unless the owner was freed first (owner may
 * be NULL). */
void sweep_start(struct sweep *s, struct iscsi_task *owner,
		 void (*done)(struct iscsi_task *owner), bool local_now);
/* The task owning (or collecting) a sweep is being freed. */
void sweep_owner_gone(struct iscsi_task *t);
/* A task aborted with its I/O in flight / that task going away. */
void abort_track(struct iscsi_task *t);
void abort_untrack(struct iscsi_task *t);
/* Frees what a torn down reactor still holds (waiters). */
void sweep_reactor_teardown(struct iscsi_reactor *ir);
/* scsi layer hook (scsi_target_set_preempt_abort). */
void iscsi_preempt_abort(void *ctx, const struct scsi_task *by, uint64_t nexus_id);
/* Calls fn(a, b) later on this reactor (next turn). Outside reactor threads
 * (unit tests) the call is queued until iscsi_run_deferred(). */
void iscsi_defer(void (*fn)(void *a, void *b), void *a, void *b);
/* Runs queued deferred calls (non-reactor threads); returns how many ran. */
unsigned iscsi_run_deferred(void);
/* Registry ref on t (the sweep's); released with reg_target_put. */
void reg_target_hold(struct iscsi_tgt *t);

/* ---- CHAP accounts (target.c, for login.c) ----
 * Runs fn(acc, arg) under the registry lock with the accounts a login is
 * checked against: t's incominguser/outgoinguser, or (t NULL) the discovery
 * accounts. Nothing is copied: the secrets stay in the config. Returns fn's
 * result, or ISCSI_LOGIN_STATUS_TGT_REMOVED when t was removed meanwhile. */
int reg_with_accounts(struct iscsi_tgt *t,
		      int (*fn)(const struct chap_accounts *acc, void *arg), void *arg);
/* (iscsi_set_config / iscsi_fini) keep / drop a copy of the discovery accounts. */
int reg_discovery_accounts_set(const struct config *c);
void reg_discovery_accounts_clear(void);

#endif
