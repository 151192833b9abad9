/* tmf.c — Task Management Function requests (RFC 7143 §11.5, §11.6; SAM-5).
 *
 * Affected tasks are aborted without a response; the TMF Response goes out
 * only after every one of them has finished (its bdev I/O completed and no PDU
 * of it is still queued), so the initiator never sees a late answer for a
 * task it was told is gone.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "internal.h"

#define TMF_ABORT_TASK      1
#define TMF_ABORT_TASK_SET  2
#define TMF_CLEAR_ACA       3
#define TMF_CLEAR_TASK_SET  4
#define TMF_LU_RESET        5
#define TMF_TARGET_WARM     6
#define TMF_TARGET_COLD     7
#define TMF_TASK_REASSIGN   8

#define TMF_RSP_COMPLETE        0
#define TMF_RSP_NO_TASK         1
#define TMF_RSP_NO_LUN          2
#define TMF_RSP_REASSIGN_NOTSUP 4
#define TMF_RSP_NOT_SUPPORTED   5
#define TMF_RSP_REJECTED        255

void tmf_task_finished(struct iscsi_task *tmf)
{
	struct iscsi_conn *c = tmf->conn;
	struct iscsi_pdu *p;
	bool drop = tmf->tmf_drop_after;

	if (c->state != CONN_DEAD) {
		p = conn_pdu_new(c, ISCSI_OP_TMF_RSP);
		if (!p) {
			conn_drop(c, "no memory for a TMF Response");
		} else {
			p->bhs[1] = ISCSI_FLAG_FINAL;
			p->bhs[2] = tmf->tmf_response;
			put_be32(p->bhs + BHS_ITT, tmf->itt);
			if (drop)
				conn_send_and_close(c, p, true);
			else
				conn_send(c, p, true);
		}
	}
	tmf->rsp_queued = true;
	task_maybe_release(tmf);
}

/* Aborts this session's tasks on lun (all LUNs when all_luns). */
static void abort_tasks(struct iscsi_conn *c, struct iscsi_task *tmf, bool all_luns,
			uint64_t lun)
{
	struct iscsi_task *t, *next;

	for (t = c->tasks; t; t = next) {
		next = t->next;
		if (t->kind != TASK_SCSI || t->rsp_queued || t->aborted)
			continue;
		if (!all_luns && t->st.lun != lun)
			continue;
		task_abort(t, tmf);
	}
}

static uint8_t abort_task(struct iscsi_conn *c, struct iscsi_task *tmf, const uint8_t *bhs)
{
	struct iscsi_session *s = &c->sess;
	uint32_t rtt = get_be32(bhs + BHS_TTT);
	uint32_t ref = get_be32(bhs + BHS_REFCMDSN);
	struct iscsi_task *t = task_find(c, rtt);

	if (t && t->kind == TASK_SCSI && !t->rsp_queued && !t->aborted) {
		task_abort(t, tmf);
		return TMF_RSP_COMPLETE;
	}
	/* RFC 7143 §11.5.1: the task is unknown but its CmdSN lies in the window
	 * (it has not arrived): consider it received, and say complete. */
	if (!t && sn_le(s->exp_cmd_sn, ref) && sn_le(ref, s->max_cmd_sn)) {
		if (ref == s->exp_cmd_sn) {
			cmdsn_advance(c);
			held_drain(c);
		} else if (s->ntmf_received < TMF_RECEIVED_MAX) {
			s->tmf_received[s->ntmf_received++] = ref;
		}
		return TMF_RSP_COMPLETE;
	}
	return TMF_RSP_NO_TASK;
}

void tmf_recv(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	struct iscsi_session *s = &c->sess;
	struct scsi_target *st = s->tgt->st;
	uint8_t func = p->bhs[BHS_FLAGS] & 0x7f;
	uint64_t lun = iscsi_lun_decode(p->bhs + BHS_LUN);
	bool lun_ok = lun != UINT64_MAX && scsi_target_find_lu(st, lun) != NULL;
	struct iscsi_task *tmf = task_alloc(c, TASK_TMF);
	int rc;

	if (!tmf) {
		iscsi_pdu_free(c, p);
		conn_drop(c, "no memory for a TMF");
		return;
	}
	tmf->itt = bhs_itt(p->bhs);
	tmf->tmf_function = func;
	/* Held until the response is queued: aborted tasks' waits count here. */
	tmf->tmf_wait = 1;
	log_debug("iscsi: %s: TMF function %u lun %llu", c->peer, func,
		  (unsigned long long)lun);
	switch (func) {
	case TMF_ABORT_TASK:
		tmf->tmf_response = abort_task(c, tmf, p->bhs);
		break;
	case TMF_ABORT_TASK_SET:
	case TMF_CLEAR_TASK_SET:
		if (!lun_ok) {
			tmf->tmf_response = TMF_RSP_NO_LUN;
			break;
		}
		abort_tasks(c, tmf, false, lun);
		if (func == TMF_CLEAR_TASK_SET)
			scsi_lu_tasks_cleared(st, lun, &s->nexus);
		tmf->tmf_response = TMF_RSP_COMPLETE;
		break;
	case TMF_LU_RESET:
		if (!lun_ok) {
			tmf->tmf_response = TMF_RSP_NO_LUN;
			break;
		}
		abort_tasks(c, tmf, false, lun);
		rc = scsi_lu_reset(st, lun, &s->nexus);
		tmf->tmf_response = rc ? TMF_RSP_REJECTED : TMF_RSP_COMPLETE;
		break;
	case TMF_TARGET_COLD:
		/* Treated as a warm reset followed by dropping the connection. */
		tmf->tmf_drop_after = true;
		/* fall through */
	case TMF_TARGET_WARM:
		abort_tasks(c, tmf, true, 0);
		rc = scsi_target_reset(st, &s->nexus);
		tmf->tmf_response = rc ? TMF_RSP_REJECTED : TMF_RSP_COMPLETE;
		break;
	case TMF_TASK_REASSIGN:
		tmf->tmf_response = TMF_RSP_REASSIGN_NOTSUP;
		break;
	case TMF_CLEAR_ACA:
	default:
		tmf->tmf_response = TMF_RSP_NOT_SUPPORTED;
		break;
	}
	iscsi_pdu_free(c, p);
	if (--tmf->tmf_wait == 0)
		tmf_task_finished(tmf);
}
