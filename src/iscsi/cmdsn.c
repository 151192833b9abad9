/* cmdsn.c — command ordering (RFC 7143 §3.2.2): the CmdSN window
 * [ExpCmdSN, MaxCmdSN], commands arriving ahead of a gap held in CmdSN order
 * until it fills, and immediate commands that take no CmdSN.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "internal.h"

int cmdsn_check(struct iscsi_conn *c, const uint8_t *bhs)
{
	struct iscsi_session *s = &c->sess;
	uint32_t sn = get_be32(bhs + BHS_CMDSN);

	if (bhs_immediate(bhs))
		return 0;
	/* RFC 7143 §3.2.2.1: outside [ExpCmdSN, MaxCmdSN] is dropped silently;
	 * the window is empty (MaxCmdSN = ExpCmdSN - 1) while queue_depth tasks
	 * are open (cmdsn_window_update). */
	if (sn == s->exp_cmd_sn && sn_le(sn, s->max_cmd_sn))
		return 0;
	if (sn_gt(sn, s->exp_cmd_sn) && sn_le(sn, s->max_cmd_sn))
		return 2;
	log_debug("iscsi: %s: CmdSN %u outside window [%u, %u], dropped", c->peer, sn,
		  s->exp_cmd_sn, s->max_cmd_sn);
	return 1;
}

static bool tmf_received_take(struct iscsi_session *s, uint32_t sn)
{
	for (unsigned i = 0; i < s->ntmf_received; i++) {
		if (s->tmf_received[i] == sn) {
			s->tmf_received[i] = s->tmf_received[--s->ntmf_received];
			return true;
		}
	}
	return false;
}

/* MaxCmdSN is queue_depth past ExpCmdSN less the tasks still open on the
 * connection, so the window moves on as tasks end, not as commands arrive:
 * an initiator that stops reading its socket (and so never sees the Data-In
 * and status of what it sent) cannot make lichd hold more than queue_depth
 * commands' buffers, and what it sends past the window is dropped
 * (RFC 7143 §3.2.2.1). MaxCmdSN never goes back. */
void cmdsn_window_update(struct iscsi_conn *c)
{
	struct iscsi_session *s = &c->sess;
	uint32_t depth = iscsi_opts_cur.queue_depth;
	uint32_t open = c->ntasks < depth ? c->ntasks : depth;
	uint32_t max = s->exp_cmd_sn + depth - 1 - open;

	if (sn_gt(max, s->max_cmd_sn))
		s->max_cmd_sn = max;
}

void cmdsn_advance(struct iscsi_conn *c)
{
	struct iscsi_session *s = &c->sess;

	do {
		s->exp_cmd_sn++;
	} while (s->ntmf_received && tmf_received_take(s, s->exp_cmd_sn));
	cmdsn_window_update(c);
}

/* Sorted by CmdSN; a duplicate CmdSN is refused (-EEXIST). */
static int held_insert_sorted(struct iscsi_conn *c, struct iscsi_task *t)
{
	struct iscsi_task **pp = &c->sess.held;

	while (*pp && sn_lt((*pp)->cmd_sn, t->cmd_sn))
		pp = &(*pp)->held_next;
	if (*pp && (*pp)->cmd_sn == t->cmd_sn)
		return -EEXIST;
	t->held_next = *pp;
	*pp = t;
	t->held = true;
	c->sess.nheld++;
	return 0;
}

/* 0, or -EEXIST after freeing t (a second command with the same CmdSN). */
int held_insert(struct iscsi_conn *c, struct iscsi_task *t)
{
	if (held_insert_sorted(c, t) == 0)
		return 0;
	log_debug("iscsi: %s: duplicate CmdSN %u dropped", c->peer, t->cmd_sn);
	t->aborted = true;
	task_maybe_release(t);
	return -EEXIST;
}

static void run_cmd_pdu(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	switch (bhs_opcode(p->bhs)) {
	case ISCSI_OP_NOP_OUT:
		nop_out_recv(c, p);
		break;
	case ISCSI_OP_TMF_REQ:
		tmf_recv(c, p);
		break;
	case ISCSI_OP_TEXT_REQ:
		text_recv(c, p);
		break;
	case ISCSI_OP_LOGOUT_REQ:
		logout_recv(c, p);
		break;
	default:
		iscsi_pdu_free(c, p);
		break;
	}
}

void held_drain(struct iscsi_conn *c)
{
	struct iscsi_session *s = &c->sess;
	struct iscsi_task *t;

	/* A parked TMF goes before the command that carries its CmdSN. */
	tmf_run_parked(c);
	while (c->state != CONN_DEAD && (t = s->held) && t->cmd_sn == s->exp_cmd_sn) {
		s->held = t->held_next;
		s->nheld--;
		t->held = false;
		cmdsn_advance(c);
		if (t->aborted) {
			task_maybe_release(t);
		} else if (t->kind == TASK_PDU) {
			struct iscsi_pdu *p = t->pdu;

			t->pdu = NULL;
			task_free(t);
			run_cmd_pdu(c, p);
		} else {
			t->ordered = true;
			task_scsi_resume(t);
		}
		tmf_run_parked(c);
	}
}

void cmdsn_plug(struct iscsi_conn *c, uint32_t sn)
{
	struct iscsi_session *s = &c->sess;
	struct iscsi_task *t;

	if (!sn_lt(s->exp_cmd_sn, sn) || sn_gt(sn, s->max_cmd_sn + 1))
		return;
	log_debug("iscsi: %s: CmdSN gap [%u, %u) plugged by a target reset", c->peer,
		  s->exp_cmd_sn, sn);
	while ((t = s->held) && sn_lt(t->cmd_sn, sn)) {
		s->held = t->held_next;
		s->nheld--;
		t->held = false;
		if (t->kind == TASK_PDU) {
			task_free(t);            /* a held NOP-Out, Text, ... never runs */
		} else {
			t->aborted = true;       /* never executed: freed at once */
			task_maybe_release(t);
		}
	}
	for (unsigned i = 0; i < s->ntmf_received;) {
		if (sn_lt(s->tmf_received[i], sn))
			s->tmf_received[i] = s->tmf_received[--s->ntmf_received];
		else
			i++;
	}
	s->exp_cmd_sn = sn - 1;
	cmdsn_advance(c);
}

/* Drops every held command (connection going away). */
void held_clear(struct iscsi_conn *c)
{
	struct iscsi_task *t;

	while ((t = c->sess.held)) {
		c->sess.held = t->held_next;
		t->held = false;
		/* An ABORT TASK already marked it; only the hold kept it alive,
		 * and task_abort() will not look at it again. */
		if (t->aborted)
			task_maybe_release(t);
	}
	c->sess.nheld = 0;
}

void conn_dispatch_cmd(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	struct iscsi_task *t;
	int rc = cmdsn_check(c, p->bhs);

	if (rc == 1) {
		iscsi_pdu_free(c, p);
		return;
	}
	if (rc == 2) {
		t = task_alloc(c, TASK_PDU);
		if (!t) {
			iscsi_pdu_free(c, p);
			conn_drop(c, "no memory to hold an out-of-order command");
			return;
		}
		t->pdu = p;
		t->cmd_sn = get_be32(p->bhs + BHS_CMDSN);
		held_insert(c, t);   /* frees t (and the PDU) on a duplicate */
		return;
	}
	if (!bhs_immediate(p->bhs))
		cmdsn_advance(c);
	run_cmd_pdu(c, p);
	held_drain(c);
}

