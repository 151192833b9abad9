/* scsi_internal.h — what the files of src/scsi share (not a contract for others).
 *
 *   lu.c     targets, LUs, resets
 *   ua.c     I_T nexuses and their unit attentions (kept by each nexus' home)
 *   owner.c  the LU's owner reactor and the trips tasks make to it
 *   range.c  COMPARE AND WRITE range locks (kept by the owner)
 *   task.c   task life (prepare / exec / release / abort), data buffers, the
 *            command table and the generic CDB checks driven by it
 *   sense.c  sense data (fixed 70h, and descriptor 72h for REQUEST SENSE DESC=1)
 *   spc.c    primary commands: INQUIRY, MODE SENSE/SELECT, REPORT LUNS, REQUEST
 *            SENSE, REPORT SUPPORTED OPERATION CODES, START STOP, ...
 *   sbc.c    block commands and the bdev I/O state machines
 *
 * Ownership (the common path takes no lock and sends no message):
 *   LU owner reactor     (owner.c) the reservation state (lu->pr), the held
 *                        COMPARE AND WRITE ranges and their waiters, MODE
 *                        SELECT: changed there only; lu->caw_active, the pr
 *                        view, wce/swp are what other reactors read.
 *   nexus home reactor   (ua.c) the nexus' unit-attention queues; each reactor
 *                        lists the nexuses it is home to
 *                        (target->nexus_slots[reactor]).
 * The one lock left: target->lu_lock serializes LU table writes (add/del, at
 * (re)configuration); readers use atomic loads.
 */
#ifndef LICH_SCSI_INTERNAL_H
#define LICH_SCSI_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bdev/bdev.h"
#include "core/reactor.h"
#include "scsi/scsi.h"

struct scsi_pr;
struct reactor;

/* LUNs 0..16383: peripheral (0..255) and flat space (256..16383) addressing. */
#define SCSI_MAX_LUNS          16384u
#define SCSI_UA_QUEUE_MAX      8       /* pending UAs per (LU, nexus) */

/* Limits advertised in the Block Limits VPD page and enforced by the commands. */
#define SCSI_SEG_BYTES         (1u << 20)   /* buffer segment (order-8 buddy block) */
#define SCSI_CHUNK_BYTES       (1u << 20)   /* bounce buffer of multi-step commands */
/* MAXIMUM WRITE SAME LENGTH: below 65536, because libiscsi then writes that
 * many blocks with one WRITE(16), more than SCSI_MAX_XFER allows. */
#define SCSI_MAX_WS_BLOCKS     32768u
#define SCSI_MAX_UNMAP_BLOCKS  (1u << 20)   /* MAXIMUM UNMAP LBA COUNT */
#define SCSI_MAX_UNMAP_DESC    256u         /* MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT */
#define SCSI_MAX_CAW_BLOCKS    255u         /* MAXIMUM COMPARE AND WRITE LENGTH */
#define SCSI_MAX_PARAM_LIST    65536u       /* largest parameter list we accept */
#define SCSI_PHYS_BLOCK        4096u        /* backends allocate/punch in pages */

/* Task states (t->state). */
enum scsi_task_state {
	SCSI_TS_INIT = 0,     /* scsi_task_init done */
	SCSI_TS_PREPARED,     /* prepare returned EXEC, exec not called yet */
	SCSI_TS_RUNNING,      /* exec: command logic, no I/O in flight */
	SCSI_TS_WAITING,      /* queued behind a COMPARE AND WRITE range */
	SCSI_TS_IO,           /* a bdev I/O of this task is in flight */
	SCSI_TS_DONE,         /* final: done() was called (or prepare returned DONE) */
	SCSI_TS_RELEASED,
};

/* Per attached nexus (scsi_nexus.scsi_priv), touched by its home reactor only
 * (ua.c): its unit-attention queues, one per LU, and how many UAs they hold. */
struct ua_q;
struct nexus_state {
	unsigned home;               /* reactor id (0 without reactors) */
	unsigned pending;            /* UAs queued over all LUs */
	uint64_t lu_mask;            /* bit lun % 64 set: that LU may have a queue */
	struct ua_q *queues;
};

/* The nexuses whose home is one reactor; only that reactor touches it. */
struct nexus_slot {
	struct scsi_nexus **v;
	unsigned n, cap;
};

/* An LBA range held by a COMPARE AND WRITE (or ORWRITE) while it reads, compares
 * and writes; commands touching it wait on its list. Lives in the holder's aux. */
struct caw_range {
	struct caw_range *next;
	uint64_t lba, nblocks;
	bool held;                   /* registered on the LU (set by the owner) */
	struct scsi_task *wait_head, *wait_tail;
};

struct scsi_lu {
	struct scsi_target *target;
	unsigned lun;
	struct bdev *bdev;
	uint32_t block_size;
	uint64_t nblocks;            /* capacity in logical blocks */
	uint8_t lbppbe;              /* logical blocks per physical block exponent */
	bool readonly;               /* configured (or the bdev is) */
	bool thin;                   /* bdev can unmap: LBPME, UNMAP, WRITE SAME UNMAP */
	bool map_reads;              /* bdev can_map: READs without a buffer (sbc.c) */
	bool default_wce;

	char vendor[9], product[17], revision[5];
	char serial[65];
	char device_id[65];
	uint8_t naa[16];             /* NAA 6 designator, stable hash of target + LUN */

	/* Mode parameters (current values); MODE SELECT writes them on the owner. */
	atomic_bool wce;
	atomic_bool swp;

	atomic_bool stopped;         /* START STOP UNIT with START=0 */
	atomic_uint refs;            /* tasks and walkers using the LU */
	atomic_bool removed;

	struct scsi_pr *pr;

	atomic_uint caw_active;      /* ranges in caw_ranges (written by the owner) */
	struct caw_range *caw_ranges;   /* the owner's */
	/* PREEMPT AND ABORT: ports collected on the owner during pr_out */
	struct owner_ports *abort_ports;

	struct scsi_lu *retired_next;
	struct ctl_lu_stats *stats;  /* lichctl counters, owned by the caller */
};

/* A nexus' LU mask bit for lu (nexus_state.lu_mask). */
static inline uint64_t ua_lu_bit(const struct scsi_lu *lu)
{
	return 1ull << (lu->lun & 63);
}


struct scsi_target {
	char name[224];
	uint16_t tpgt;

	pthread_mutex_t lu_lock;
	_Atomic(struct scsi_lu *) *lus;   /* SCSI_MAX_LUNS slots */
	unsigned lun_hwm;                 /* highest LUN ever added + 1 */
	unsigned lu_count;
	struct scsi_lu *retired;          /* deleted LUs, freed with the target */

	struct nexus_slot nexus_slots[REACTOR_MAX];   /* by home reactor (ua.c) */
	scsi_preempt_abort_fn preempt_abort;   /* the transport's, set at setup */
	void *preempt_abort_ctx;
};

/* ---- the command table (task.c) ---- */

/* Flags of a command descriptor. */
#define CMD_NO_LU        (1u << 0)  /* valid on a LUN with no LU (INQUIRY, ...) */
#define CMD_NO_UA        (1u << 1)  /* does not report nor clear unit attentions */
#define CMD_MEDIA        (1u << 2)  /* NOT READY while the LU is stopped */
#define CMD_WRITE        (1u << 3)  /* modifies the medium: write protection applies */
#define CMD_THIN         (1u << 4)  /* exists only on thin provisioned LUs */
#define CMD_WS_UNMAP     (1u << 5)  /* byte 1 bit 3 (UNMAP) only on thin LUs */
#define CMD_SA           (1u << 6)  /* has a service action in byte 1 bits 4-0 */

struct scsi_cmd {
	uint8_t opcode;
	uint8_t sa;
	uint8_t cdb_len;
	uint32_t flags;
	uint8_t usage[16];          /* CDB usage data: bits the command accepts */
	const char *name;
	/* Validates the CDB (beyond the usage mask), sizes and allocates the data
	 * phase; returns SCSI_TASK_EXEC, SCSI_TASK_DONE or -ENOMEM. */
	int (*prepare)(struct scsi_task *t);
	/* Runs the command; ends with task_finish() (NULL: prepare finishes it). */
	void (*exec)(struct scsi_task *t);
	uint32_t nominal_timeout;   /* seconds, REPORT SUPPORTED OPERATION CODES */
	uint32_t recommended_timeout;
};

const struct scsi_cmd *scsi_cmd_table(unsigned *n);
/* The descriptor for (opcode, sa), or NULL. *opcode_known tells whether the
 * opcode exists at all (then a NULL result means a bad service action). */
const struct scsi_cmd *scsi_cmd_find(const struct scsi_lu *lu, uint8_t opcode, uint8_t sa,
				     bool *opcode_known);
bool scsi_cmd_supported(const struct scsi_lu *lu, const struct scsi_cmd *c);
/* Usage mask of c on lu (UNMAP bit removed on fully provisioned LUs). */
void scsi_cmd_usage(const struct scsi_lu *lu, const struct scsi_cmd *c, uint8_t out[16]);

/* ---- task helpers (task.c) ---- */

/* Allocates len bytes of task buffer (segments <= SCSI_SEG_BYTES; io: every
 * segment page aligned for O_DIRECT). Sets iov, iovcnt, buf_len. -ENOMEM. */
int task_buf_alloc(struct scsi_task *t, uint32_t len, bool io);
void task_buf_free(struct scsi_task *t);
/* Copies between a flat buffer and the task's iov at byte offset off. */
void task_buf_read(const struct scsi_task *t, uint32_t off, void *dst, uint32_t len);
void task_buf_write(struct scsi_task *t, uint32_t off, const void *src, uint32_t len);
/* Final status: calls done() exactly once (state DONE). */
void task_finish(struct scsi_task *t);
/* The largest Data-In the command may return (its allocation length). */
static inline uint32_t task_alloc_len(const struct scsi_task *t) { return t->aux; }

/* Big-endian field access. */
static inline uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get_be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get_be64(const uint8_t *p) { return (uint64_t)get_be32(p) << 32 | get_be32(p + 4); }
static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static inline void put_be24(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 16); p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)v; }
static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }

/* ---- sense (sense.c) ---- */

/* Field pointer of ILLEGAL REQUEST sense: cd = in the CDB (else the parameter
 * list), byte index, bit (0..7) or -1 for "whole byte". */
void sense_set_field(struct scsi_task *t, bool cd, uint16_t byte, int bit);
/* INFORMATION field (VALID=1). */
void sense_set_info(struct scsi_task *t, uint32_t info);
/* Shorthands: set the sense and return SCSI_TASK_DONE. */
int fail_invalid_cdb(struct scsi_task *t, uint16_t byte, int bit);
int fail_invalid_param(struct scsi_task *t, uint16_t byte, int bit);
int fail_param_len(struct scsi_task *t);
int fail_lba_range(struct scsi_task *t);
/* Builds sense bytes for REQUEST SENSE data: fixed (18 bytes) or descriptor. */
unsigned sense_build(uint8_t *buf, bool desc, uint8_t key, uint8_t asc, uint8_t ascq);
/* Converts the fixed sense in t->sense to descriptor format into buf. */
unsigned sense_fixed_to_desc(const uint8_t *fixed, unsigned len, uint8_t *buf);

/* ASC/ASCQ pairs used in several files. */
#define ASC_NO_SENSE            0x00, 0x00
#define ASC_INVALID_OPCODE      0x20, 0x00
#define ASC_LBA_OUT_OF_RANGE    0x21, 0x00
#define ASC_INVALID_FIELD_CDB   0x24, 0x00
#define ASC_LU_NOT_SUPPORTED    0x25, 0x00
#define ASC_INVALID_FIELD_PARAM 0x26, 0x00
#define ASC_PARAM_LIST_LENGTH   0x1a, 0x00
#define ASC_WRITE_PROTECTED     0x27, 0x00
#define ASC_SW_WRITE_PROTECTED  0x27, 0x02
#define ASC_SPACE_ALLOC_FAILED  0x27, 0x07
#define ASC_MISCOMPARE_VERIFY   0x1d, 0x00
#define ASC_SAVING_NOT_SUPP     0x39, 0x00
#define ASC_NOT_READY_INIT_REQ  0x04, 0x02
#define ASC_READ_ERROR          0x11, 0x00
#define ASC_WRITE_ERROR         0x0c, 0x00
#define ASC_INTERNAL_FAILURE    0x44, 0x00
#define ASC_INVALID_FIELD_IU    0x0e, 0x03
#define ASC_INVALID_MESSAGE     0x49, 0x00
#define ASC_MEDIUM_REMOVAL_PREV 0x53, 0x02

/* ---- LUs, unit attentions, ranges (lu.c) ---- */

/* The LU of lun with a reference taken, or NULL. Inline: once per command. */
static inline struct scsi_lu *lu_get(struct scsi_target *t, uint64_t lun)
{
	if (!t || lun >= SCSI_MAX_LUNS)
		return NULL;
	struct scsi_lu *lu = atomic_load_explicit(&t->lus[lun], memory_order_acquire);
	if (!lu)
		return NULL;
	atomic_fetch_add_explicit(&lu->refs, 1, memory_order_acq_rel);
	if (atomic_load_explicit(&t->lus[lun], memory_order_acquire) != lu) {
		/* deleted meanwhile */
		atomic_fetch_sub_explicit(&lu->refs, 1, memory_order_acq_rel);
		return NULL;
	}
	return lu;
}

static inline void lu_put(struct scsi_lu *lu)
{
	if (lu)
		atomic_fetch_sub_explicit(&lu->refs, 1, memory_order_acq_rel);
}
/* Calls fn for every LU of t, holding a reference on it meanwhile. */
void target_lu_walk(struct scsi_target *t, void (*fn)(struct scsi_lu *lu, void *arg), void *arg);
/* A nexus detached (arg): its SPC-2 reservation on lu ends (on the owner). */
void lu_nexus_gone(struct scsi_lu *lu, void *arg);

/* ---- nexuses and unit attentions (ua.c) ---- */

/* This thread's reactor id, 0 when it is not a reactor. */
unsigned here_slot(void);
/* Queues a UA on lu: for one nexus (only != NULL), or for every attached
 * nexus except `except` (NULL = none). At once for nexuses whose home is
 * here, by message for the others. */
void lu_ua_add(struct scsi_lu *lu, struct scsi_nexus *only, const struct scsi_nexus *except,
	       uint8_t asc, uint8_t ascq);
/* Takes the oldest UA of nexus n on lu; false if none. On n's home; one
 * plain load when nothing is queued for n. */
bool lu_ua_take(struct scsi_lu *lu, struct scsi_nexus *n, uint8_t *asc, uint8_t *ascq);
/* Drops every queued (asc, ascq) of n on all LUs of t (on n's home). */
void target_ua_clear(struct scsi_target *t, struct scsi_nexus *n, uint8_t asc, uint8_t ascq);
/* A deleted LU: every nexus forgets what was queued for it. */
void lu_ua_drop_all(struct scsi_lu *lu);
/* The reservation code's hooks (pr_ua_fn, pr_abort_fn), ctx = the LU. */
void lu_pr_ua(void *ctx, const char *initiator_port, uint16_t rel_port_id,
	      uint8_t asc, uint8_t ascq);
void lu_pr_abort(void *ctx, const struct scsi_task *by, const char *initiator_port,
		 uint16_t rel_port_id);
/* Target destruction: frees what nexuses still attached hold. */
void target_nexus_free_all(struct scsi_target *t);
/* On the owner, after an owner_fn that set t->owner_fanout: every other
 * reactor handles a marker behind the events the owner sent it (so the UAs
 * are queued everywhere), collecting PREEMPT AND ABORT's nexus ids (ports in
 * t->owner_data), then the task goes home (owner_return). */
void owner_fanout(struct scsi_task *t);
/* Back home: hands the collected ids to the transport's abort hook and frees
 * the round (t->owner_data). */
void owner_fanout_done(struct scsi_task *t);
/* Mode parameters back to their defaults (LU reset). */
void lu_mode_defaults(struct scsi_lu *lu);

/* ---- the LU owner (owner.c) ---- */

/* Nexus ids a PREEMPT AND ABORT found, carried home in t->owner_data. */
struct owner_ids {
	unsigned n, cap;
	uint64_t id[];
};

unsigned lu_owner(const struct scsi_lu *lu);
/* True on the owner reactor, or on a thread that is not a reactor. */
bool lu_owner_here(const struct scsi_lu *lu);
/* Runs fn(t) on lu's owner, then then(t) back on the calling reactor: at once
 * (before returning) when the owner is here. A failed send (-ENOMEM) is
 * returned and neither runs: the caller ends the task. */
int owner_call(struct scsi_task *t, void (*fn)(struct scsi_task *t),
	       void (*then)(struct scsi_task *t));
/* Continues a task that made a trip: t->owner_then on its home reactor. */
void owner_return(struct scsi_task *t);
/* Runs fn(a, b) on lu's owner without waiting (direct when here). */
int owner_post(const struct scsi_lu *lu, void (*fn)(void *a, void *b), void *a, void *b);
/* pr_retire_fn: frees a superseded reservation view after every reactor
 * passed a turn boundary. */
void owner_view_retire(void *ctx, void *view);

/* COMPARE AND WRITE ranges (range.c, see there: trips to the owner).
 * range_hold: registers r for t unless it overlaps
 * another range, in which case t is queued there and false is returned (t is
 * resumed with sbc_resume() later). range_wait_if_busy: the same check for a
 * command that does not hold a range. range_release: removes r; the first
 * waiter that wants a range of its own gets it right away (r->held set, FIFO,
 * no thundering herd), waiters overlapping that one move behind it, the others
 * are resumed. */
bool range_hold(struct scsi_lu *lu, struct caw_range *r, struct scsi_task *t);
bool range_wait_if_busy(struct scsi_lu *lu, uint64_t lba, uint64_t nblocks, struct scsi_task *t);
void range_release(struct scsi_lu *lu, struct caw_range *r);      /* on the owner */
/* Releases r on the owner, then task_finish(t) back on t's reactor. */
void range_release_then_finish(struct scsi_task *t, struct caw_range *r);
/* sbc.c: resumes a queued task on its home reactor; the range a waiting task
 * wants to hold (NULL: none); the blocks a waiting task touches (false:
 * several ranges, e.g. UNMAP). */
void sbc_resume(struct scsi_task *t);
struct caw_range *sbc_task_range(struct scsi_task *t);
bool sbc_task_extent(const struct scsi_task *t, uint64_t *lba, uint64_t *nblocks);

/* ---- command families ---- */

/* spc.c */
int spc_test_unit_ready(struct scsi_task *t);
int spc_inquiry(struct scsi_task *t);
int spc_request_sense(struct scsi_task *t);
int spc_report_luns(struct scsi_task *t);
int spc_mode_sense(struct scsi_task *t);
int spc_mode_select_prepare(struct scsi_task *t);
void spc_mode_select_exec(struct scsi_task *t);
int spc_report_opcodes(struct scsi_task *t);
int spc_start_stop(struct scsi_task *t);
void spc_start_stop_exec(struct scsi_task *t);
int spc_prevent_allow(struct scsi_task *t);
int spc_pr_in(struct scsi_task *t);
void spc_pr_in_exec(struct scsi_task *t);
int spc_pr_out_prepare(struct scsi_task *t);
void spc_pr_out_exec(struct scsi_task *t);
int spc_reserve_prepare(struct scsi_task *t);   /* of RESERVE and RELEASE */
void spc_reserve_exec(struct scsi_task *t);
void spc_release_exec(struct scsi_task *t);

/* sbc.c */
int sbc_read_capacity10(struct scsi_task *t);
int sbc_read_capacity16(struct scsi_task *t);
int sbc_get_lba_status(struct scsi_task *t);
int sbc_read_defect_data(struct scsi_task *t);
int sbc_rw_prepare(struct scsi_task *t);          /* READ/WRITE 6/10/12/16 */
int sbc_verify_prepare(struct scsi_task *t);      /* VERIFY 10/12/16 */
int sbc_write_verify_prepare(struct scsi_task *t);
int sbc_write_same_prepare(struct scsi_task *t);
int sbc_unmap_prepare(struct scsi_task *t);
int sbc_sync_cache_prepare(struct scsi_task *t);
int sbc_prefetch_prepare(struct scsi_task *t);
int sbc_caw_prepare(struct scsi_task *t);
int sbc_orwrite_prepare(struct scsi_task *t);
void sbc_exec(struct scsi_task *t);                /* exec of every block command */
void sbc_aux_free(struct scsi_task *t);            /* release: the command's scratch state */
/* Flush for START STOP UNIT (ends the task). */
void sbc_flush_then_finish(struct scsi_task *t);

#endif
