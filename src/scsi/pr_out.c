/* pr_out.c — PERSISTENT RESERVE OUT (SPC-4 §6.16, semantics §5.13).
 *
 * pr_out decodes the CDB and the parameter list (parse_out, all length and
 * format checks against the trusted PARAMETER LIST LENGTH), runs one
 * function per service action on the LU's state (on the LU's owner reactor,
 * so without a lock), then commits:
 * when APTPL is (or was) active the new state is written to the state file
 * before the command completes, and a failed write puts the old state back
 * and fails the command. Handlers check everything before changing anything,
 * so a failing handler leaves the state untouched. Unit attentions and
 * PREEMPT AND ABORT requests are collected on the way and delivered once the
 * state is final (and its view published).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "pr_int.h"
#include "scsi/pr.h"
#include "scsi/scsi.h"

#define PR_OUT_BASIC_LEN 24u

/* A unit attention or an abort request, delivered once the state is final. */
struct pr_event {
	bool abort;
	uint8_t ascq;
	uint16_t rel_port_id;       /* 0: every target port */
	struct pr_port port;
};

struct pr_events {
	unsigned n, cap;
	struct pr_event *ev;
	/* the callbacks */
	pr_ua_fn ua;
	void *ua_ctx;
	pr_abort_fn abort_fn;
	void *abort_ctx;
};

/* Could two registrations name one I_T nexus? Such pairs are never stored. */
static bool regs_clash(const struct pr_port *a, uint16_t arel, bool aall,
		       const struct pr_port *b, uint16_t brel, bool ball)
{
	return pr_port_overlap(a, b) && (aall || ball || arel == brel);
}

static void reg_remove(struct scsi_pr *pr, struct pr_reg *r)
{
	unsigned i = (unsigned)(r - pr->st.regs);

	memmove(r, r + 1, (pr->st.nregs - i - 1) * sizeof(*r));
	pr->st.nregs--;
}

static void event_add(struct pr_events *e, const struct pr_reg *r, bool abort, uint8_t ascq)
{
	if (e->n == e->cap)         /* sized for the worst case up front */
		return;
	struct pr_event *ev = &e->ev[e->n++];
	ev->abort = abort;
	ev->ascq = ascq;
	ev->rel_port_id = r->all_tg_pt ? 0 : r->rel_port_id;
	ev->port = r->port;
}

static void events_deliver(const struct pr_events *e, const struct scsi_task *by)
{
	for (unsigned i = 0; i < e->n; i++) {
		const struct pr_event *ev = &e->ev[i];
		char port[PR_PORT_STR];
		pr_port_format(&ev->port, port);
		if (ev->abort) {
			if (e->abort_fn)
				e->abort_fn(e->abort_ctx, by, port, ev->rel_port_id);
		} else if (e->ua) {
			e->ua(e->ua_ctx, port, ev->rel_port_id, ASC_PR_CHANGED, ev->ascq);
		}
	}
}

static void set_invalid_param(struct scsi_task *t, unsigned byte, int bit)
{
	pr_set_check(t, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM, 0, PR_FP_PARAM, byte, bit);
}

static void set_param_len_error(struct scsi_task *t)
{
	pr_set_check(t, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH, 0, PR_FP_NONE, 0, -1);
}

static void set_no_resources(struct scsi_task *t)
{
	pr_set_check(t, SK_ILLEGAL_REQUEST, ASC_INSUFFICIENT_RES, ASCQ_INSUFFICIENT_REG,
		     PR_FP_NONE, 0, -1);
}

struct pr_out {
	struct scsi_pr *pr;
	struct scsi_task *t;
	struct pr_itn itn;
	struct pr_reg *self;        /* the sender's registration, if any */
	/* from the CDB */
	unsigned sa, scope, type;
	/* from the parameter list */
	uint8_t *plist;
	uint32_t plen;
	uint64_t res_key, sa_key;
	bool spec_i_pt, all_tg_pt, aptpl, unreg;
	uint16_t rtpi;              /* REGISTER AND MOVE destination target port */
	uint32_t tid_off, tid_len;  /* TransportIDs within plist */
	/* results */
	struct pr_events ev;
	bool dirty;                 /* state changed: persist if APTPL */
	bool bump;                  /* increment PRgeneration */
};

/* Copies the parameter list out of the task's buffer. */
static int gather_plist(struct pr_out *op)
{
	struct scsi_task *t = op->t;
	uint32_t len = op->plen, off = 0;

	op->plist = malloc(len ? len : 1);
	if (!op->plist)
		return -ENOMEM;
	for (int i = 0; i < t->iovcnt && off < len; i++) {
		uint32_t n = t->iov[i].iov_len < len - off ? (uint32_t)t->iov[i].iov_len : len - off;
		memcpy(op->plist + off, t->iov[i].iov_base, n);
		off += n;
	}
	return off == len ? 0 : -EINVAL;
}

/* Decodes CDB and parameter list. Sets the task result and returns -1 on
 * errors that do not depend on the reservation state. */
static int parse_out(struct pr_out *op)
{
	struct scsi_task *t = op->t;
	const uint8_t *cdb = t->cdb;

	op->sa = cdb[1] & 0x1f;
	op->scope = cdb[2] >> 4;
	op->type = cdb[2] & 0x0f;
	if (op->sa > PRO_REGISTER_AND_MOVE) {
		pr_set_invalid_cdb(t, 1, 4);
		return -1;
	}
	op->plen = pr_get_be32(cdb + 5);
	if (op->plen < PR_OUT_BASIC_LEN || op->plen > t->data_out_len) {
		set_param_len_error(t);
		return -1;
	}
	int rc = gather_plist(op);
	if (rc < 0) {
		if (rc == -ENOMEM)
			t->status = SAM_STAT_BUSY;
		else
			set_param_len_error(t);
		return -1;
	}
	const uint8_t *p = op->plist;
	unsigned aptpl_byte;
	op->res_key = pr_get_be64(p);
	op->sa_key = pr_get_be64(p + 8);
	if (op->sa != PRO_REGISTER_AND_MOVE) {
		aptpl_byte = 20;
		op->spec_i_pt = p[20] & 0x08;
		op->all_tg_pt = p[20] & 0x04;
		op->aptpl = p[20] & 0x01;
		if (op->spec_i_pt && op->sa != PRO_REGISTER) {
			set_invalid_param(t, 20, 3);
			return -1;
		}
		if (!op->spec_i_pt) {
			if (op->plen != PR_OUT_BASIC_LEN) {
				set_param_len_error(t);
				return -1;
			}
		} else {
			if (op->plen < PR_OUT_BASIC_LEN + 4 ||
			    (uint64_t)PR_OUT_BASIC_LEN + 4 + pr_get_be32(p + 24) != op->plen) {
				set_param_len_error(t);
				return -1;
			}
			op->tid_off = PR_OUT_BASIC_LEN + 4;
			op->tid_len = pr_get_be32(p + 24);
		}
	} else {
		aptpl_byte = 17;
		op->unreg = p[17] & 0x02;
		op->aptpl = p[17] & 0x01;
		op->rtpi = pr_get_be16(p + 18);
		op->tid_off = PR_OUT_BASIC_LEN;
		op->tid_len = pr_get_be32(p + 20);
		if ((uint64_t)PR_OUT_BASIC_LEN + op->tid_len > op->plen) {
			set_param_len_error(t);
			return -1;
		}
	}
	/* APTPL is only meaningful (and only checked) for the register kinds. */
	if (op->sa != PRO_REGISTER && op->sa != PRO_REGISTER_AND_IGNORE &&
	    op->sa != PRO_REGISTER_AND_MOVE)
		op->aptpl = false;
	else if (op->aptpl && !op->pr->state_file) {
		set_invalid_param(t, aptpl_byte, 0);
		return -1;
	}
	return 0;
}

static int out_conflict(struct pr_out *op)
{
	pr_set_conflict(op->t);
	return -1;
}

/* The SCOPE/TYPE of a reservation being created (RESERVE, PREEMPT). */
static int check_scope_type(struct pr_out *op)
{
	if (op->scope != 0) {
		pr_set_invalid_cdb(op->t, 2, 7);
		return -1;
	}
	if (!pr_type_valid(op->type)) {
		pr_set_invalid_cdb(op->t, 2, 3);
		return -1;
	}
	return 0;
}

/* Removes the sender's registration (SPC-4 5.13.11.3 "Unregistering"). */
static void unregister_self(struct pr_out *op)
{
	struct scsi_pr *pr = op->pr;
	unsigned type = pr->st.type;
	bool holder = pr_reg_is_holder(pr, op->self);

	reg_remove(pr, op->self);
	op->self = NULL;
	if (!holder)
		return;
	if (pr_type_all_regs(type)) {
		if (pr->st.nregs == 0)      /* the last registrant takes it along */
			pr->st.type = PR_TYPE_NONE;
		return;
	}
	pr->st.type = PR_TYPE_NONE;
	if (pr_type_regs_only(type))
		for (unsigned i = 0; i < pr->st.nregs; i++)
			event_add(&op->ev, &pr->st.regs[i], false, ASCQ_RES_RELEASED);
}

/* Registers the sender and, with SPEC_I_PT, every TransportID: all or none. */
static int register_new(struct pr_out *op)
{
	struct scsi_pr *pr = op->pr;
	struct pr_reg *add = NULL;
	unsigned nadd = 0;
	int rc = -1;

	if (!op->itn.valid) {
		log_warn("pr: cannot register unparsable initiator port");
		set_no_resources(op->t);
		return -1;
	}
	add = calloc(PR_MAX_REGS + 1, sizeof(*add));
	if (!add) {
		op->t->status = SAM_STAT_BUSY;
		return -1;
	}
	add[nadd++] = (struct pr_reg){ .key = op->sa_key, .port = op->itn.port,
				       .rel_port_id = op->itn.rel_port_id,
				       .all_tg_pt = op->all_tg_pt };
	for (unsigned i = 0; i < pr->st.nregs; i++) {
		const struct pr_reg *r = &pr->st.regs[i];
		if (regs_clash(&r->port, r->rel_port_id, r->all_tg_pt,
			       &add[0].port, add[0].rel_port_id, add[0].all_tg_pt)) {
			set_invalid_param(op->t, 20, 2);  /* ALL_TG_PT over another port's registration */
			goto out;
		}
	}
	for (uint32_t off = 0; off < op->tid_len;) {
		struct pr_port port;
		size_t used, bad;
		uint32_t at = op->tid_off + off;
		if (pr_tid_parse(op->plist + at, op->tid_len - off, &port, &used, &bad) < 0) {
			set_invalid_param(op->t, at + (unsigned)bad, -1);
			goto out;
		}
		off += (uint32_t)used;
		if (pr_port_equal(&port, &op->itn.port))
			continue;               /* the sender, registered anyway */
		if (nadd > PR_MAX_REGS) {
			set_no_resources(op->t);
			goto out;
		}
		struct pr_reg *n = &add[nadd];
		*n = (struct pr_reg){ .key = op->sa_key, .port = port,
				      .rel_port_id = op->itn.rel_port_id,
				      .all_tg_pt = op->all_tg_pt };
		bool clash = false;
		for (unsigned i = 0; i < pr->st.nregs && !clash; i++)
			clash = regs_clash(&pr->st.regs[i].port, pr->st.regs[i].rel_port_id,
					   pr->st.regs[i].all_tg_pt, &n->port, n->rel_port_id,
					   n->all_tg_pt);
		for (unsigned i = 0; i < nadd && !clash; i++)
			clash = regs_clash(&add[i].port, add[i].rel_port_id, add[i].all_tg_pt,
					   &n->port, n->rel_port_id, n->all_tg_pt);
		if (clash) {                /* already registered, or listed twice */
			set_invalid_param(op->t, at, -1);
			goto out;
		}
		nadd++;
	}
	if (pr->st.nregs + nadd > PR_MAX_REGS) {
		set_no_resources(op->t);
		goto out;
	}
	memcpy(&pr->st.regs[pr->st.nregs], add, nadd * sizeof(*add));
	pr->st.nregs += nadd;
	rc = 0;
out:
	free(add);
	return rc;
}

/* REGISTER and REGISTER AND IGNORE EXISTING KEY (SPC-4 5.13.7). */
static int do_register(struct pr_out *op)
{
	bool ignore = op->sa == PRO_REGISTER_AND_IGNORE;

	if (!op->self) {
		if (!ignore && op->res_key != 0)
			return out_conflict(op);
		if (op->sa_key == 0)
			return 0;               /* nothing to unregister: GOOD, no change */
		if (register_new(op) < 0)
			return -1;
	} else {
		if (!ignore && op->res_key != op->self->key)
			return out_conflict(op);
		if (op->spec_i_pt) {
			set_invalid_param(op->t, 20, 3);
			return -1;
		}
		if (op->sa_key != 0)
			op->self->key = op->sa_key;
		else
			unregister_self(op);
	}
	op->pr->st.aptpl = op->aptpl;
	op->dirty = op->bump = true;
	return 0;
}

/* RESERVE (SPC-4 5.13.9). PRgeneration does not change. */
static int do_reserve(struct pr_out *op)
{
	struct scsi_pr *pr = op->pr;

	if (!op->self || op->res_key != op->self->key)
		return out_conflict(op);
	if (check_scope_type(op) < 0)
		return -1;
	if (pr->st.type != PR_TYPE_NONE) {
		/* Only the holder may repeat it, with the same type. */
		if (!pr_reg_is_holder(pr, op->self) || pr->st.type != op->type)
			return out_conflict(op);
		return 0;
	}
	pr->st.type = (uint8_t)op->type;
	op->self->holder = !pr_type_all_regs(op->type);
	op->dirty = true;
	return 0;
}

static void release_reservation(struct scsi_pr *pr)
{
	for (unsigned i = 0; i < pr->st.nregs; i++)
		pr->st.regs[i].holder = false;
	pr->st.type = PR_TYPE_NONE;
}

/* RELEASE (SPC-4 5.13.11.2). PRgeneration does not change. */
static int do_release(struct pr_out *op)
{
	struct scsi_pr *pr = op->pr;
	unsigned type = pr->st.type;

	if (!op->self || op->res_key != op->self->key)
		return out_conflict(op);
	if (!pr_reg_is_holder(pr, op->self))
		return 0;                   /* no reservation, or someone else's: GOOD */
	if (op->scope != 0 || op->type != type) {
		pr_set_check(op->t, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM,
			     ASCQ_INVALID_RELEASE, PR_FP_NONE, 0, -1);
		return -1;
	}
	release_reservation(pr);
	if (pr_type_regs_only(type) || pr_type_all_regs(type))
		for (unsigned i = 0; i < pr->st.nregs; i++)
			if (&pr->st.regs[i] != op->self)
				event_add(&op->ev, &pr->st.regs[i], false, ASCQ_RES_RELEASED);
	op->dirty = true;
	return 0;
}

/* CLEAR (SPC-4 5.13.11.2.2): everything goes, others hear RESERVATIONS PREEMPTED. */
static int do_clear(struct pr_out *op)
{
	struct scsi_pr *pr = op->pr;

	if (!op->self || op->res_key != op->self->key)
		return out_conflict(op);
	for (unsigned i = 0; i < pr->st.nregs; i++)
		if (&pr->st.regs[i] != op->self)
			event_add(&op->ev, &pr->st.regs[i], false, ASCQ_RES_PREEMPTED);
	pr->st.nregs = 0;
	pr->st.type = PR_TYPE_NONE;
	op->self = NULL;
	op->dirty = op->bump = true;
	return 0;
}

/* Removes every registration with reservation key `key` (every one when
 * any_key), except the sender's when keep_self; records REGISTRATIONS
 * PREEMPTED for the others and, for PREEMPT AND ABORT, an abort request for
 * every matching nexus, the sender included. Returns how many matched. Keeps
 * op->self pointing at the sender's registration (NULL once removed). */
static unsigned preempt_regs(struct pr_out *op, uint64_t key, bool any_key, bool keep_self)
{
	struct scsi_pr *pr = op->pr;
	bool abort = op->sa == PRO_PREEMPT_AND_ABORT;
	unsigned matched = 0, i = 0;

	while (i < pr->st.nregs) {
		struct pr_reg *r = &pr->st.regs[i];
		bool is_self = r == op->self;
		if (!any_key && r->key != key) {
			i++;
			continue;
		}
		matched++;
		if (abort)              /* the sender's other tasks too (5.13.11.2.6) */
			event_add(&op->ev, r, true, 0);
		if (is_self && keep_self) {
			i++;
			continue;
		}
		if (!is_self)
			event_add(&op->ev, r, false, ASCQ_REGS_PREEMPTED);
		reg_remove(pr, r);      /* the next entry slides into slot i */
		if (is_self)
			op->self = NULL;
		else if (op->self && op->self > r)
			op->self--;
	}
	return matched;
}

/* PREEMPT and PREEMPT AND ABORT (SPC-4 5.13.11.4). */
static int do_preempt(struct pr_out *op)
{
	struct scsi_pr *pr = op->pr;
	unsigned type = pr->st.type;
	const struct pr_reg *holder = NULL;

	if (!op->self || op->res_key != op->self->key)
		return out_conflict(op);
	for (unsigned i = 0; i < pr->st.nregs; i++)
		if (pr->st.regs[i].holder)
			holder = &pr->st.regs[i];

	if ((pr_type_all_regs(type) && op->sa_key == 0) ||
	    (holder && holder->key == op->sa_key)) {
		/* Preempting the reservation: drop the preempted registrations,
		 * make the sender the holder with the new type. */
		if (check_scope_type(op) < 0)
			return -1;
		preempt_regs(op, op->sa_key, op->sa_key == 0, true);
		release_reservation(pr);
		pr->st.type = (uint8_t)op->type;
		op->self->holder = !pr_type_all_regs(op->type);
		if (op->type != type)
			for (unsigned i = 0; i < pr->st.nregs; i++)
				if (&pr->st.regs[i] != op->self)
					event_add(&op->ev, &pr->st.regs[i], false, ASCQ_RES_RELEASED);
	} else {
		/* Only registrations go; SCOPE and TYPE are ignored. */
		if (op->sa_key == 0) {
			set_invalid_param(op->t, 8, -1);
			return -1;
		}
		if (preempt_regs(op, op->sa_key, false, false) == 0)
			return out_conflict(op);
		if (pr_type_all_regs(type) && pr->st.nregs == 0)
			pr->st.type = PR_TYPE_NONE;
	}
	op->dirty = op->bump = true;
	return 0;
}

/* REGISTER AND MOVE (SPC-4 5.13.8): the holder hands its reservation to
 * another I_T nexus, registering it with SERVICE ACTION RESERVATION KEY. */
static int do_register_and_move(struct pr_out *op)
{
	struct scsi_pr *pr = op->pr;
	struct pr_port dest;
	struct pr_reg *d = NULL;
	size_t used, bad;

	if (!op->self || op->res_key != op->self->key)
		return out_conflict(op);
	if (op->sa_key == 0) {
		set_invalid_param(op->t, 8, -1);
		return -1;
	}
	if (pr_tid_parse(op->plist + op->tid_off, op->tid_len, &dest, &used, &bad) < 0) {
		set_invalid_param(op->t, op->tid_off + (unsigned)bad, -1);
		return -1;
	}
	if (op->rtpi == 0) {
		set_invalid_param(op->t, 18, -1);
		return -1;
	}
	if (pr_port_overlap(&dest, &op->itn.port)) {   /* moving to itself */
		set_invalid_param(op->t, op->tid_off, -1);
		return -1;
	}
	if (pr->st.type == PR_TYPE_NONE) {
		pr_set_invalid_cdb(op->t, 1, 4);
		return -1;
	}
	if (!pr_reg_is_holder(pr, op->self) || pr_type_all_regs(pr->st.type))
		return out_conflict(op);
	for (unsigned i = 0; i < pr->st.nregs && !d; i++) {
		struct pr_reg *r = &pr->st.regs[i];
		if (pr_port_equal(&r->port, &dest) && (r->all_tg_pt || r->rel_port_id == op->rtpi)) {
			d = r;
		} else if (regs_clash(&r->port, r->rel_port_id, r->all_tg_pt, &dest, op->rtpi, false)) {
			set_invalid_param(op->t, op->tid_off, -1);
			return -1;
		}
	}
	if (!d) {
		if (pr->st.nregs == PR_MAX_REGS) {
			set_no_resources(op->t);
			return -1;
		}
		d = &pr->st.regs[pr->st.nregs++];
		*d = (struct pr_reg){ .port = dest, .rel_port_id = op->rtpi };
	}
	d->key = op->sa_key;
	op->self->holder = false;
	d->holder = true;               /* same type and scope as before */
	if (op->unreg) {
		reg_remove(pr, op->self);   /* no longer the holder: nothing is released */
		op->self = NULL;
	}
	pr->st.aptpl = op->aptpl;
	op->dirty = op->bump = true;
	return 0;
}

/* Makes the APTPL state durable; on failure restores the pre-command state. */
static int commit(struct pr_out *op, uint32_t gen_before)
{
	struct scsi_pr *pr = op->pr;
	int rc = 0;

	if (!op->dirty || !pr->state_file || (!pr->st.aptpl && !pr->undo->aptpl))
		return 0;
	rc = pr->st.aptpl ? pr_file_save(pr->state_file, &pr->st)
			  : pr_file_remove(pr->state_file);
	if (rc == 0)
		return 0;
	log_err("pr: cannot persist reservation state to %s: %s", pr->state_file,
		strerror(-rc));
	memcpy(&pr->st, pr->undo,
	       offsetof(struct pr_state, regs) + pr->undo->nregs * sizeof(struct pr_reg));
	pr->generation = gen_before;
	op->ev.n = 0;
	pr_set_check(op->t, SK_HARDWARE_ERROR, ASC_INTERNAL_FAILURE, 0, PR_FP_NONE, 0, -1);
	return -1;
}

void pr_out(struct scsi_pr *pr, struct scsi_task *t)
{
	struct pr_out op = { .pr = pr, .t = t };
	int rc;

	if (pr->spc2.held) {            /* SPC-4 5.13.3: whoever sends it */
		pr_set_conflict(t);
		goto out;
	}
	if (parse_out(&op) < 0)
		goto out;
	op.ev.cap = 2 * pr->st.nregs + 2;
	op.ev.ev = calloc(op.ev.cap, sizeof(*op.ev.ev));
	if (!op.ev.ev) {
		t->status = SAM_STAT_BUSY;
		goto out;
	}
	op.ev.ua = pr->ua;
	op.ev.ua_ctx = pr->ua_ctx;
	op.ev.abort_fn = pr->abort_fn;
	op.ev.abort_ctx = pr->abort_ctx;
	pr_itn_of(t->nexus, &op.itn);
	op.self = pr_reg_find(pr, &op.itn);
	uint32_t gen_before = pr->generation;
	if (pr->state_file)
		memcpy(pr->undo, &pr->st,
		       offsetof(struct pr_state, regs) + pr->st.nregs * sizeof(struct pr_reg));

	switch (op.sa) {
	case PRO_REGISTER:
	case PRO_REGISTER_AND_IGNORE:
		rc = do_register(&op);
		break;
	case PRO_RESERVE:
		rc = do_reserve(&op);
		break;
	case PRO_RELEASE:
		rc = do_release(&op);
		break;
	case PRO_CLEAR:
		rc = do_clear(&op);
		break;
	case PRO_PREEMPT:
	case PRO_PREEMPT_AND_ABORT:
		rc = do_preempt(&op);
		break;
	default:
		rc = do_register_and_move(&op);
		break;
	}
	if (rc == 0) {
		if (op.bump)
			pr->generation++;
		rc = commit(&op, gen_before);
	}
	if (rc == 0)
		pr_set_good(t);
	else
		op.ev.n = 0;                /* handlers fail before changing anything */
	pr_update_flag(pr);
out:
	events_deliver(&op.ev, t);
	free(op.ev.ev);
	free(op.plist);
}
