/* tmf.c — Task Management Function requests (RFC 7143 §4.2.3, §11.5, §11.6;
 * RFC 7144 for the SAM-5 functions 9-12 and response 7; SAM-5 §7).
 *
 * Which tasks a function affects (RFC 7143 §4.2.3.2):
 *   ABORT TASK            one task of this session
 *   ABORT TASK SET        this session's tasks on the LU
 *   CLEAR TASK SET        every session's tasks on the LU (one task set: TST 0)
 *   LOGICAL UNIT RESET    every session's tasks on the LU
 *   TARGET WARM/COLD      every session's tasks on every LU of the target
 *   I_T NEXUS RESET       this session's tasks on every LU
 * They are aborted without a response (TAS=0 in our Control mode page: the
 * other initiators learn from the unit attention the scsi layer establishes)
 * by a sweep over every reactor (sweep.c). The TMF Response goes out only
 * once every affected task is gone — its bdev I/O completed — so responses of
 * affected tasks that were already on their way precede it, and no aborted
 * write lands after it (the Response Fence of §4.2.3.3).
 *
 * CmdSN (§4.2.3.3 b): an immediate ABORT TASK SET, CLEAR TASK SET or LU RESET
 * waits (parked) until every command below its CmdSN has arrived, since those
 * are affected too; a target reset instead "plugs" the gap. Commands of the
 * issuing session ordered after the TMF are not affected.
 *
 * After the response, TARGET COLD RESET closes every session of the target
 * (§11.5.1), I_T NEXUS RESET the issuing session: for iSCSI the I_T nexus is
 * the session, which the initiator logs in again.
 *
 * Not done: waiting for the issuing initiator's Data-Out answering R2Ts of
 * aborted tasks (§4.2.3.3 a). Linux stops sending it once it sends the TMF
 * (FastAbort behaviour even when not negotiated), so waiting would hang the
 * TMF; the data is discarded as it arrives instead.
 */
#include "core/log.h"
#include "internal.h"

#define TMF_ABORT_TASK       1
#define TMF_ABORT_TASK_SET   2
#define TMF_CLEAR_ACA        3
#define TMF_CLEAR_TASK_SET   4
#define TMF_LU_RESET         5
#define TMF_TARGET_WARM      6
#define TMF_TARGET_COLD      7
#define TMF_TASK_REASSIGN    8
#define TMF_QUERY_TASK       9    /* RFC 7144 */
#define TMF_QUERY_TASK_SET   10
#define TMF_IT_NEXUS_RESET   11
#define TMF_QUERY_ASYNC      12

#define TMF_RSP_COMPLETE        0
#define TMF_RSP_NO_TASK         1
#define TMF_RSP_NO_LUN          2
#define TMF_RSP_REASSIGN_NOTSUP 4
#define TMF_RSP_NOT_SUPPORTED   5
#define TMF_RSP_SUCCEEDED       7    /* RFC 7144: QUERY functions, "yes" */
#define TMF_RSP_REJECTED        255

static bool closes_session(uint8_t func)
{
	return func == TMF_TARGET_COLD || func == TMF_IT_NEXUS_RESET;
}

static void tmf_respond(struct iscsi_task *tmf)
{
	struct iscsi_conn *c = tmf->conn;
	struct iscsi_pdu *p;

	if (c->state != CONN_DEAD) {
		p = conn_pdu_new(c, ISCSI_OP_TMF_RSP);
		if (!p) {
			conn_drop(c, "no memory for a TMF Response");
		} else {
			p->bhs[1] = ISCSI_FLAG_FINAL;
			p->bhs[2] = tmf->tmf_response;
			put_be32(p->bhs + BHS_ITT, tmf->itt);
			log_debug("iscsi: %s: TMF function %u itt 0x%08x: response %u", c->peer,
				  tmf->tmf_function, tmf->itt, tmf->tmf_response);
			if (closes_session(tmf->tmf_function) &&
			    tmf->tmf_response == TMF_RSP_COMPLETE)
				conn_send_and_close(c, p, true);
			else
				conn_send(c, p, true);
		}
	}
	tmf->rsp_queued = true;
	task_maybe_release(tmf);
}

/* Aborts what the sweep of kind scope (on lun unless all_luns) affects, then
 * answers "Function complete". */
static void tmf_sweep(struct iscsi_task *tmf, enum sweep_scope scope, bool all_luns)
{
	struct iscsi_conn *c = tmf->conn;
	struct sweep *s = sweep_new(c, scope);

	if (!s) {
		tmf->tmf_response = TMF_RSP_REJECTED;
		tmf_respond(tmf);
		return;
	}
	s->all_luns = all_luns;
	s->lun = tmf->tmf_lun;
	s->issuer_cmd_sn = tmf->cmd_sn;
	s->drop_others = tmf->tmf_function == TMF_TARGET_COLD;
	if (tmf->tmf_function == TMF_ABORT_TASK) {
		s->one_task = true;
		s->itt = tmf->tmf_rtt;
	}
	tmf->tmf_response = TMF_RSP_COMPLETE;
	sweep_start(s, tmf, tmf_respond, true);
}

/* The task the request refers to, if it is a live SCSI task. */
static struct iscsi_task *ref_task(struct iscsi_conn *c, const struct iscsi_task *tmf)
{
	struct iscsi_task *t = task_find(c, tmf->tmf_rtt);

	return t && t->kind == TASK_SCSI && !t->rsp_queued ? t : NULL;
}

/* RFC 7143 §11.6.1: an existing task is aborted ("Function complete" once it
 * is gone, even if it was already being aborted). An unknown task whose
 * RefCmdSN lies in the CmdSN window and below the TMF's own CmdSN has not
 * arrived yet: it is considered received (it will be dropped when it comes)
 * and the answer is "Function complete"; otherwise "Task does not exist" (its
 * response went out already, or it never existed). */
static void abort_task(struct iscsi_conn *c, struct iscsi_task *tmf)
{
	struct iscsi_session *s = &c->sess;
	uint32_t ref = tmf->tmf_ref_sn;

	if (ref_task(c, tmf)) {
		tmf_sweep(tmf, SWEEP_SESSION, true);
		return;
	}
	tmf->tmf_response = TMF_RSP_NO_TASK;
	if (!task_find(c, tmf->tmf_rtt) && sn_le(s->exp_cmd_sn, ref) &&
	    sn_le(ref, s->max_cmd_sn) && sn_lt(ref, tmf->cmd_sn)) {
		if (ref == s->exp_cmd_sn)
			cmdsn_advance(c);    /* the caller drains what was held behind it */
		else if (s->ntmf_received < TMF_RECEIVED_MAX)
			s->tmf_received[s->ntmf_received++] = ref;
		tmf->tmf_response = TMF_RSP_COMPLETE;
	}
	tmf_respond(tmf);
}

static bool query_task_set(struct iscsi_conn *c, uint64_t lun)
{
	for (struct iscsi_task *t = c->tasks; t; t = t->next)
		if (t->kind == TASK_SCSI && !t->aborted && !t->rsp_queued && t->st.lun == lun)
			return true;
	return false;
}

static void tmf_execute(struct iscsi_task *tmf)
{
	struct iscsi_conn *c = tmf->conn;
	struct iscsi_session *s = &c->sess;
	struct scsi_target *st = s->tgt->st;
	uint64_t lun = tmf->tmf_lun;
	bool lun_ok = lun != UINT64_MAX && scsi_target_find_lu(st, lun) != NULL;
	uint8_t func = tmf->tmf_function;

	log_debug("iscsi: %s: TMF function %u lun %llu itt 0x%08x rtt 0x%08x", c->peer, func,
		  (unsigned long long)lun, tmf->itt, tmf->tmf_rtt);
	switch (func) {
	case TMF_ABORT_TASK:
		abort_task(c, tmf);
		return;
	case TMF_ABORT_TASK_SET:
	case TMF_CLEAR_TASK_SET:
	case TMF_LU_RESET:
		if (!lun_ok)
			break;
		if (func == TMF_ABORT_TASK_SET) {
			tmf_sweep(tmf, SWEEP_SESSION, false);
			return;
		}
		if (func == TMF_LU_RESET && scsi_lu_reset(st, lun, &s->nexus) != 0)
			break;
		if (func == TMF_CLEAR_TASK_SET)
			scsi_lu_tasks_cleared(st, lun, &s->nexus);
		tmf_sweep(tmf, SWEEP_TARGET, false);
		return;
	case TMF_TARGET_WARM:
	case TMF_TARGET_COLD:
		if (scsi_target_reset(st, &s->nexus) != 0)
			break;
		tmf_sweep(tmf, SWEEP_TARGET, true);
		return;
	case TMF_IT_NEXUS_RESET:
		if (scsi_nexus_reset(st, &s->nexus) != 0)
			break;
		tmf_sweep(tmf, SWEEP_SESSION, true);
		return;
	case TMF_QUERY_TASK: {
		const struct iscsi_task *t = ref_task(c, tmf);

		tmf->tmf_response = t && !t->aborted ? TMF_RSP_SUCCEEDED : TMF_RSP_COMPLETE;
		tmf_respond(tmf);
		return;
	}
	case TMF_QUERY_TASK_SET:
		if (!lun_ok)
			break;
		tmf->tmf_response = query_task_set(c, lun) ? TMF_RSP_SUCCEEDED : TMF_RSP_COMPLETE;
		tmf_respond(tmf);
		return;
	case TMF_TASK_REASSIGN:
		/* Connection allegiance only moves at ErrorRecoveryLevel 2. */
		tmf->tmf_response = TMF_RSP_REASSIGN_NOTSUP;
		tmf_respond(tmf);
		return;
	case TMF_CLEAR_ACA:               /* NACA is not supported: no ACA */
	case TMF_QUERY_ASYNC:
	default:
		tmf->tmf_response = TMF_RSP_NOT_SUPPORTED;
		tmf_respond(tmf);
		return;
	}
	/* An LU function on a LUN with no LU, or a reset the scsi layer refused. */
	tmf->tmf_response = lun_ok ? TMF_RSP_REJECTED : TMF_RSP_NO_LUN;
	tmf_respond(tmf);
}

/* Functions whose affected tasks include commands not received yet. */
static bool waits_for_gap(uint8_t func)
{
	return func == TMF_ABORT_TASK_SET || func == TMF_CLEAR_TASK_SET || func == TMF_LU_RESET;
}

static bool plugs_gap(uint8_t func)
{
	return func == TMF_TARGET_WARM || func == TMF_TARGET_COLD || func == TMF_IT_NEXUS_RESET;
}

void tmf_recv(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	struct iscsi_session *s = &c->sess;
	struct iscsi_task *tmf = task_alloc(c, TASK_TMF), **pp;
	bool immediate = bhs_immediate(p->bhs);

	if (!tmf) {
		iscsi_pdu_free(c, p);
		conn_drop(c, "no memory for a TMF");
		return;
	}
	tmf->itt = bhs_itt(p->bhs);
	tmf->cmd_sn = get_be32(p->bhs + BHS_CMDSN);
	tmf->tmf_function = p->bhs[BHS_FLAGS] & 0x7f;
	tmf->tmf_rtt = get_be32(p->bhs + BHS_TTT);
	tmf->tmf_ref_sn = get_be32(p->bhs + BHS_REFCMDSN);
	tmf->tmf_lun = iscsi_lun_decode(p->bhs + BHS_LUN);
	iscsi_pdu_free(c, p);
	if (immediate && sn_gt(tmf->cmd_sn, s->exp_cmd_sn) &&
	    sn_le(tmf->cmd_sn, s->max_cmd_sn + 1)) {
		if (waits_for_gap(tmf->tmf_function)) {
			log_debug("iscsi: %s: TMF itt 0x%08x waits for CmdSN %u..%u", c->peer,
				  tmf->itt, s->exp_cmd_sn, tmf->cmd_sn - 1);
			tmf->parked = true;
			tmf->park_next = NULL;
			for (pp = &s->parked; *pp;)
				pp = &(*pp)->park_next;
			*pp = tmf;
			return;
		}
		if (plugs_gap(tmf->tmf_function))
			cmdsn_plug(c, tmf->cmd_sn);
	}
	tmf_execute(tmf);
}

void tmf_run_parked(struct iscsi_conn *c)
{
	struct iscsi_session *s = &c->sess;
	struct iscsi_task **pp = &s->parked, *t;

	while (c->state != CONN_DEAD && (t = *pp)) {
		if (!sn_le(t->cmd_sn, s->exp_cmd_sn)) {
			pp = &t->park_next;
			continue;
		}
		*pp = t->park_next;
		t->parked = false;
		t->park_next = NULL;
		tmf_execute(t);
		pp = &s->parked;         /* it may have changed the list */
	}
}

/* The connection is going away: parked TMFs are aborted with everything. */
void tmf_unpark_all(struct iscsi_conn *c)
{
	struct iscsi_task *t;

	while ((t = c->sess.parked)) {
		c->sess.parked = t->park_next;
		t->parked = false;
		t->park_next = NULL;
	}
}
