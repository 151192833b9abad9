/* pr.h — reservations of one logical unit: SPC-4 persistent reservations
 * (PERSISTENT RESERVE IN/OUT, all service actions and types) and SPC-2
 * RESERVE/RELEASE (6 and 10). Internal to src/scsi.
 *
 * Registrations are keyed by I_T nexus: the initiator port name
 * ("iqn...,i,0x<isid>") plus the relative target port id. State that SPC-4 says
 * persists (registrations, the reservation, APTPL) is written to the state
 * file atomically (write temp, fsync, rename, fsync dir) before the PR OUT
 * command completes, when APTPL is set; and reloaded by pr_create. Without a
 * state file, APTPL=1 gets INVALID FIELD IN PARAMETER LIST.
 *
 * Threads: no lock. Every entry point except pr_conflict must be called on
 * one thread, the LU's owner reactor (src/scsi/owner.c routes commands
 * there). pr_conflict may be called on any thread: it reads an immutable
 * view of the reservation state the owner publishes with a release store
 * whenever it changes; with no reservation of any kind the view is NULL, so
 * the common case costs one acquire load. A superseded view is handed to the
 * retire hook, which frees it (pr_view_free) once no thread can still be
 * reading it; without a hook superseded views are kept until pr_destroy
 * (single-threaded unit tests).
 */
#ifndef LICH_SCSI_PR_H
#define LICH_SCSI_PR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct scsi_task;
struct scsi_nexus;
struct scsi_pr;

/* Establishes a unit attention for every attached nexus whose initiator port
 * name is `initiator_port` (ASC/ASCQ given), e.g. RESERVATIONS PREEMPTED.
 * initiator_port is canonical ("name,i,0x<12 lowercase hex>") or a bare iSCSI
 * name (a registration made from a format 00b TransportID: every port of that
 * initiator); compare with pr_initiator_port_match(). rel_port_id 0 means
 * every target port (an ALL_TG_PT registration). Called on the owner once the
 * new state is final, before the PERSISTENT RESERVE OUT that caused it completes. */
typedef void (*pr_ua_fn)(void *ctx, const char *initiator_port, uint16_t rel_port_id,
			 uint8_t asc, uint8_t ascq);

/* PREEMPT AND ABORT: called once per preempted I_T nexus (same naming as
 * pr_ua_fn); the callee aborts every task of this LU from the matching
 * nexuses except `by`, the PERSISTENT RESERVE OUT itself (SPC-4 5.13.11.2.6;
 * TAS/UA handling is the caller's). Called on the owner once the new state is
 * final, before pr_out returns. Optional: without it preempted tasks simply
 * run on. */
typedef void (*pr_abort_fn)(void *ctx, const struct scsi_task *by,
			    const char *initiator_port, uint16_t rel_port_id);
void pr_set_abort_fn(struct scsi_pr *pr, pr_abort_fn fn, void *ctx);

typedef void (*pr_retire_fn)(void *ctx, void *view);
void pr_set_retire_fn(struct scsi_pr *pr, pr_retire_fn fn, void *ctx);
void pr_view_free(void *view);

/* True if the nexus initiator port `port` ("iqn...,i,0x<isid>") is designated
 * by `registered` (as passed to pr_ua_fn / pr_abort_fn): same iSCSI name
 * (case-insensitive) and the same ISID (as a number), or registered has no
 * ISID part. */
bool pr_initiator_port_match(const char *registered, const char *port);

/* state_file may be NULL. Loads it if it exists; a corrupt file is -EINVAL
 * (the LU refuses to start rather than lose reservations silently). */
int pr_create(const char *state_file, pr_ua_fn ua, void *ua_ctx, struct scsi_pr **out);
void pr_destroy(struct scsi_pr *pr);

/* True if the command in t (t->cdb, t->nexus) must get RESERVATION CONFLICT
 * (SPC-4 table 67-ish "commands allowed in the presence of reservations", SBC-3
 * table for block commands, plus the SPC-2 RESERVE rules). */
bool pr_conflict(struct scsi_pr *pr, const struct scsi_task *t);
/* False when pr_conflict would be false without looking further: no
 * reservation exists. Inline, for the per-command fast path: the published
 * view is struct scsi_pr's first member (pr.c asserts it), NULL while nobody
 * reserves. */
static inline bool pr_may_conflict(struct scsi_pr *pr)
{
	return atomic_load_explicit((_Atomic(void *) *)(void *)pr, memory_order_acquire) != NULL;
}

/* Execute PERSISTENT RESERVE IN / OUT, RESERVE(6/10), RELEASE(6/10) for t:
 * sets t->status/sense and, for IN, the data (scsi_task_copy_in). The parameter
 * list of OUT is in t->iov (t->data_out_len bytes). Synchronous. */
void pr_in(struct scsi_pr *pr, struct scsi_task *t);
/* pr_in in two halves, for when the state lives on another thread than the
 * task's buffer pool: pr_in_build (on the owner) sets t->status/sense on
 * errors and returns the whole parameter data (malloc'ed, *len bytes) or NULL;
 * pr_in_copy (on the task's thread) copies it within the allocation length,
 * sets GOOD and frees it. */
uint8_t *pr_in_build(struct scsi_pr *pr, struct scsi_task *t, size_t *len);
void pr_in_copy(struct scsi_task *t, uint8_t *data, size_t len);
void pr_out(struct scsi_pr *pr, struct scsi_task *t);
void pr_reserve(struct scsi_pr *pr, struct scsi_task *t);
void pr_release(struct scsi_pr *pr, struct scsi_task *t);

/* Events that end SPC-2 reservations (logical unit reset, I_T nexus loss). PR
 * state is not affected by these (SPC-4 §5.13). */
void pr_nexus_lost(struct scsi_pr *pr, const struct scsi_nexus *n);
void pr_lu_reset(struct scsi_pr *pr);

/* For tests and stats. */
unsigned pr_registration_count(struct scsi_pr *pr);
uint32_t pr_generation(struct scsi_pr *pr);

#endif
