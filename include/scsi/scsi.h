/* scsi.h — SCSI targets, logical units and task execution (SPC-4 / SBC-3).
 *
 * The iSCSI layer hands this layer a task (CDB, LUN, I_T nexus, expected length)
 * and gets back status, sense and data. Nothing here knows about PDUs.
 *
 * Task life:
 *   1. transport fills the "in" fields and calls scsi_task_prepare(). It decodes
 *      and validates the CDB, resolves the LU, checks unit attentions and
 *      reservations, and sizes the data phase:
 *        returns SCSI_TASK_DONE   status/sense/data are already final (errors,
 *                                 and commands answered from memory such as
 *                                 INQUIRY may finish here); do not call exec;
 *        returns SCSI_TASK_EXEC   call scsi_task_exec(). If data_out_len > 0, the
 *                                 task's buffer (iov[], data_out_len bytes) is
 *                                 allocated and the transport must fill it with
 *                                 the initiator's data first;
 *        returns -ENOMEM          no buffer memory now: answer TASK SET FULL/BUSY.
 *   2. scsi_task_exec() runs the command; done(t) is called exactly once when the
 *      result is final — possibly before scsi_task_exec returns (commands that
 *      need no I/O), otherwise later from the bdev completion on this reactor.
 *   3. the transport sends data_in_len bytes from iov[] (Data-In) and the status,
 *      then calls scsi_task_release() to free the buffer. iov[] stays valid
 *      until then, also when it is the backend's memory (data_in_any_mem):
 *      the task holds its LU, and so the bdev, until release.
 * Residuals are the transport's: it compares exp_xfer_len with the bytes moved.
 * If the initiator sent less data than data_out_len (its EDTL was smaller than
 * the CDB asked for), the transport sets data_out_got and exec fails the command
 * with the right sense rather than writing garbage.
 *
 * Threads: a task runs on one reactor (its pool and qp). LUs and targets are
 * shared by reactors. Each LU has an owner reactor; the LU's shared state
 * (reservations, COMPARE AND WRITE ranges, mode page changes) is changed only
 * there: a command that needs it travels to the owner by message and comes
 * back (done() is still called on the task's own reactor). A nexus' unit
 * attentions belong to the reactor that attached it: call scsi_nexus_attach,
 * scsi_nexus_detach, scsi_nexus_reset and run its tasks on that reactor. The
 * common read/write path sends no message and takes no lock. Without
 * reactors (unit tests, reactor_self() == NULL) everything is "here" and
 * calls are direct.
 */
#ifndef LICH_SCSI_SCSI_H
#define LICH_SCSI_SCSI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct bdev;
struct bdev_qp;
struct mem_pool;

#define SCSI_CDB_MAX     32
#define SCSI_SENSE_MAX   32
#define SCSI_MAX_IOV     64     /* buffer segments per task */
#define SCSI_MAX_XFER    (8u << 20)  /* largest data transfer of one command */

/* SAM status codes */
#define SAM_STAT_GOOD                 0x00
#define SAM_STAT_CHECK_CONDITION      0x02
#define SAM_STAT_CONDITION_MET        0x04
#define SAM_STAT_BUSY                 0x08
#define SAM_STAT_RESERVATION_CONFLICT 0x18
#define SAM_STAT_TASK_SET_FULL        0x28
#define SAM_STAT_ACA_ACTIVE           0x30
#define SAM_STAT_TASK_ABORTED         0x40

enum scsi_task_attr {
	SCSI_ATTR_UNTAGGED = 0, SCSI_ATTR_SIMPLE = 1, SCSI_ATTR_ORDERED = 2,
	SCSI_ATTR_HEAD_OF_QUEUE = 3, SCSI_ATTR_ACA = 4,
};

enum { SCSI_TASK_EXEC = 0, SCSI_TASK_DONE = 1 };

struct scsi_lu;
struct scsi_target;
struct ctl_lu_stats;
struct scsi_task;

struct scsi_lu_opts {
	unsigned lun;
	struct bdev *bdev;
	const char *vendor;        /* up to 8 chars */
	const char *product;       /* up to 16 */
	const char *revision;      /* up to 4 */
	const char *serial;        /* unit serial (VPD 80h); NULL/"" = derived */
	const char *device_id;     /* extra T10 vendor designator text; may be NULL */
	bool write_cache;          /* WCE; when false every write is FUA */
	bool readonly;
	const char *pr_file;       /* persistent reservation state file; NULL = none */
	struct ctl_lu_stats *stats; /* lichctl counters (ctl/stats.h); NULL = none */
};

/* An I_T nexus: one per iSCSI session. The transport owns the memory; it must
 * stay valid from scsi_nexus_attach to scsi_nexus_detach. */
struct scsi_nexus {
	char initiator_port[300];  /* "iqn...,i,0x<isid 12 hex>" */
	char initiator_name[224];
	uint64_t id;               /* unique per process, set by scsi_nexus_attach */
	uint16_t rel_port_id;      /* relative target port id (1) */
	uint16_t tpgt;
	void *scsi_priv;
};

struct scsi_target *scsi_target_create(const char *name, uint16_t tpgt);
void scsi_target_destroy(struct scsi_target *t);   /* destroys its LUs */
const char *scsi_target_name(const struct scsi_target *t);
/* Creates an LU and adds it to the target; -EEXIST, -EINVAL, -ENOMEM. */
int scsi_target_add_lu(struct scsi_target *t, const struct scsi_lu_opts *o);
/* Removes (and destroys) an LU; sessions see REPORTED LUNS DATA HAS CHANGED. */
int scsi_target_del_lu(struct scsi_target *t, unsigned lun);
struct scsi_lu *scsi_target_find_lu(struct scsi_target *t, uint64_t lun);
unsigned scsi_target_lu_count(const struct scsi_target *t);

/* Attaches a nexus (session login): it gets the POWER ON/RESET unit attention on
 * every LU. Detach on session end. */
int scsi_nexus_attach(struct scsi_target *t, struct scsi_nexus *n);
void scsi_nexus_detach(struct scsi_target *t, struct scsi_nexus *n);

/* Task management, results as SAM TMF response codes are the transport's:
 * these return 0 or -errno. They establish the unit attentions SAM requires. */
int scsi_lu_reset(struct scsi_target *t, uint64_t lun, struct scsi_nexus *by);
int scsi_target_reset(struct scsi_target *t, struct scsi_nexus *by);
int scsi_nexus_reset(struct scsi_target *t, struct scsi_nexus *n);  /* I_T NEXUS RESET */
/* CLEAR TASK SET / ABORT TASK SET by another nexus: "COMMANDS CLEARED BY
 * ANOTHER INITIATOR" for others (when TAS=0 the transport just drops). */
void scsi_lu_tasks_cleared(struct scsi_target *t, uint64_t lun, struct scsi_nexus *by);

/* Added: PREEMPT AND ABORT (SPC-4 5.13.11.2.6) must abort the tasks the
 * preempted I_T nexuses have on the LU, and only the transport knows its
 * tasks. fn is called on the thread running `by` (the PERSISTENT RESERVE OUT),
 * before by's done(), once per attached nexus that was preempted (by's own
 * included when its key was), with that nexus' id. The transport aborts
 * their tasks on by->lun except `by` itself (TAS=0: without status) and holds
 * by's status until they are gone. Without a hook those tasks run on. */
typedef void (*scsi_preempt_abort_fn)(void *ctx, const struct scsi_task *by, uint64_t nexus_id);
void scsi_target_set_preempt_abort(struct scsi_target *t, scsi_preempt_abort_fn fn, void *ctx);

struct scsi_task {
	/* in: set by the transport before prepare */
	struct scsi_target *target;
	struct scsi_nexus *nexus;
	uint64_t lun;              /* LUN number decoded from the 8-byte LUN field */
	uint8_t cdb[SCSI_CDB_MAX];
	uint8_t cdb_len;           /* 6..16 (or up to 32 with an extended CDB) */
	uint8_t attr;              /* enum scsi_task_attr */
	bool exp_read, exp_write;  /* the initiator's R and W bits */
	uint32_t exp_xfer_len;     /* Expected Data Transfer Length */
	struct mem_pool *pool;     /* the reactor's pool, for data buffers */
	struct bdev_qp *qp;        /* the reactor's bdev queue pair */
	void (*done)(struct scsi_task *t);
	void *priv;                /* the transport's */
	/* The transport can send Data-In from any readable memory, not only the
	 * pool's (TCP: yes; iSER: no, its RDMA needs the pool's registration).
	 * Then READs of a LU whose bdev can_map get iov[] pointing into the
	 * backend's memory (bdev_read_map): no buffer, no copy. */
	bool data_in_any_mem;

	/* data buffer: owned by the task between prepare and release (or, with
	 * data_in_any_mem, a READ's view of the backend's memory: read only) */
	struct iovec iov[SCSI_MAX_IOV];
	int iovcnt;
	uint32_t buf_len;

	/* out of prepare */
	uint32_t data_out_len;     /* bytes to receive from the initiator (0 = none) */
	uint32_t data_out_got;     /* set by the transport: bytes actually received */

	/* results */
	uint8_t status;
	uint8_t sense_len;
	uint8_t sense[SCSI_SENSE_MAX];
	uint32_t data_in_len;      /* bytes of Data-In in iov[] */

	/* internal to the scsi layer */
	struct scsi_lu *lu;
	int state;
	bool aborted;
	uint64_t lba;
	uint32_t nblocks;
	uint32_t aux;
	void *scsi_priv;
	const struct scsi_cmd *cmd;    /* prepare's table entry, for exec */
	struct scsi_task *wait_next;   /* CAW / ordering queues */
	/* a trip to the LU's owner reactor (owner.c): what runs there, what
	 * runs back home after, the home reactor, and results carried back */
	void (*owner_fn)(struct scsi_task *t);
	void (*owner_then)(struct scsi_task *t);
	void *owner_data;
	int owner_rc;
	uint16_t home;
	bool owner_fanout;             /* pass every reactor before coming home (ua.c) */
	bool range_pass;               /* the owner saw no COMPARE AND WRITE range in the way */
	bool iov_mapped;               /* iov[] is bdev_read_map's, not pool memory */
	struct {
		/* storage for the bdev request(s) of this task */
		char opaque[256] __attribute__((aligned(16)));
	} io;
};

/* Resets the task to a clean state (call before filling "in" fields). */
void scsi_task_init(struct scsi_task *t);
int scsi_task_prepare(struct scsi_task *t);
void scsi_task_exec(struct scsi_task *t);
void scsi_task_release(struct scsi_task *t);
/* The statistics block of the task's LU (scsi_lu_opts.stats), or NULL when
 * prepare found no LU. Valid until scsi_task_release(). */
struct ctl_lu_stats *scsi_task_lu_stats(const struct scsi_task *t);
/* Marks a task aborted: if its I/O is in flight, done() still comes (the
 * transport then discards the response); data it would have written after
 * this point is not written. */
void scsi_task_abort(struct scsi_task *t);

/* Sense helpers (fixed format, response code 70h). */
void scsi_task_set_sense(struct scsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq);
/* Data for an INQUIRY-like buffer copy: copies up to len bytes into iov[]
 * (allocating the buffer if needed) and sets data_in_len. -ENOMEM. */
int scsi_task_copy_in(struct scsi_task *t, const void *data, uint32_t len);

/* Sense keys */
#define SK_NO_SENSE        0x0
#define SK_RECOVERED_ERROR 0x1
#define SK_NOT_READY       0x2
#define SK_MEDIUM_ERROR    0x3
#define SK_HARDWARE_ERROR  0x4
#define SK_ILLEGAL_REQUEST 0x5
#define SK_UNIT_ATTENTION  0x6
#define SK_DATA_PROTECT    0x7
#define SK_BLANK_CHECK     0x8
#define SK_ABORTED_COMMAND 0xb
#define SK_MISCOMPARE      0xe

#endif
