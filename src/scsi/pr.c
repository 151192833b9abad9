/* pr.c — reservations of one logical unit.
 *
 * SPC-4 persistent reservations (§5.13, PERSISTENT RESERVE IN §6.15 and OUT
 * §6.16) and SPC-2 RESERVE/RELEASE, with the SPC-4 §5.13.3 exceptions that
 * make the two coexist (REPORT CAPABILITIES reports CRH=1):
 *   - while any PR registration exists, RESERVE and RELEASE conflict, except
 *     that they complete with GOOD and no effect when sent by a reservation
 *     holder, or by a registrant under a registrants only / all registrants
 *     reservation;
 *   - while an SPC-2 reservation exists, every PERSISTENT RESERVE IN/OUT
 *     conflicts, whoever sends it.
 *
 * Layout: helpers shared with pr_out.c (PERSISTENT RESERVE OUT), life cycle,
 * pr_conflict (the access tables), PERSISTENT RESERVE IN, then RESERVE/RELEASE
 * and the events that end SPC-2 reservations.
 *
 * Threads: the state is the LU owner reactor's alone (pr.h), so there is no
 * lock. Unit attentions and PREEMPT AND ABORT requests are collected while the
 * state changes and delivered after. pr_conflict, which runs on every
 * reactor, reads the published view (struct pr_view): NULL while nobody
 * reserves, so that costs one load. Registrations alone never make a command
 * conflict (only RESERVE/RELEASE, which pr_reserve/pr_release decide
 * themselves), so a view exists only while a reservation does.
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "pr_int.h"
#include "scsi/pr.h"
#include "scsi/scsi.h"

/* Operation codes the access tables look at (SPC-4, SBC-3). */
enum {
	OP_TEST_UNIT_READY = 0x00, OP_REQUEST_SENSE = 0x03,
	OP_READ_6 = 0x08, OP_INQUIRY = 0x12, OP_RESERVE_6 = 0x16, OP_RELEASE_6 = 0x17,
	OP_MODE_SENSE_6 = 0x1a, OP_START_STOP = 0x1b, OP_RECEIVE_DIAG = 0x1c,
	OP_PREVENT_ALLOW = 0x1e, OP_READ_CAPACITY_10 = 0x25, OP_READ_10 = 0x28,
	OP_VERIFY_10 = 0x2f, OP_PRE_FETCH_10 = 0x34, OP_READ_DEFECT_10 = 0x37,
	OP_READ_BUFFER_10 = 0x3c, OP_LOG_SENSE = 0x4d, OP_RESERVE_10 = 0x56,
	OP_RELEASE_10 = 0x57, OP_MODE_SENSE_10 = 0x5a, OP_PR_IN = 0x5e, OP_PR_OUT = 0x5f,
	OP_VARIABLE = 0x7f, OP_THIRD_PARTY_COPY_OUT = 0x83, OP_THIRD_PARTY_COPY_IN = 0x84,
	OP_ACCESS_CONTROL_IN = 0x86, OP_ACCESS_CONTROL_OUT = 0x87, OP_READ_16 = 0x88,
	OP_READ_ATTRIBUTE = 0x8c, OP_VERIFY_16 = 0x8f, OP_PRE_FETCH_16 = 0x90,
	OP_READ_BUFFER_16 = 0x9b, OP_SERVICE_ACTION_IN_16 = 0x9e, OP_REPORT_LUNS = 0xa0,
	OP_SECURITY_PROTOCOL_IN = 0xa2, OP_MAINTENANCE_IN = 0xa3, OP_READ_12 = 0xa8,
	OP_SERVICE_ACTION_IN_12 = 0xab, OP_VERIFY_12 = 0xaf, OP_READ_DEFECT_12 = 0xb7,
};

/* pr_may_conflict (pr.h) reads the view as the first member. */
static_assert(offsetof(struct scsi_pr, view) == 0 &&
	      sizeof(((struct scsi_pr *)0)->view) == sizeof(_Atomic(void *)),
	      "pr_may_conflict reads struct scsi_pr's view");

/* ---- small helpers ---- */

void pr_itn_of(const struct scsi_nexus *n, struct pr_itn *out)
{
	memset(out, 0, sizeof(*out));
	if (!n)
		return;
	out->rel_port_id = n->rel_port_id;
	out->valid = pr_port_parse(n->initiator_port,
				   strnlen(n->initiator_port, sizeof(n->initiator_port)),
				   &out->port) == 0 && out->port.has_isid;
}

static void view_retire(struct scsi_pr *pr, struct pr_view *v)
{
	if (!v)
		return;
	if (pr->retire) {
		pr->retire(pr->retire_ctx, v);
		return;
	}
	v->retired_next = pr->retired;
	pr->retired = v;
}

void pr_view_free(void *view)
{
	free(view);
}

void pr_update_flag(struct scsi_pr *pr)
{
	struct pr_view *v = NULL, *old;

	if (pr->st.type != PR_TYPE_NONE || pr->spc2.held) {
		unsigned n = pr->st.type != PR_TYPE_NONE ? pr->st.nregs : 0;
		v = malloc(sizeof(*v) + n * sizeof(v->regs[0]));
		if (!v) {
			/* Keep the previous view rather than none: with no view
			 * every command would pass a reservation. */
			log_err("pr: no memory to publish the reservation state");
			return;
		}
		v->retired_next = NULL;
		v->type = pr->st.type;
		v->spc2_held = pr->spc2.held;
		v->spc2_port = pr->spc2.port;
		v->spc2_rel_port_id = pr->spc2.rel_port_id;
		v->nregs = n;
		memcpy(v->regs, pr->st.regs, n * sizeof(v->regs[0]));
	} else if (!atomic_load_explicit(&pr->view, memory_order_relaxed)) {
		return;                 /* nothing reserved before nor now */
	}
	old = atomic_exchange_explicit(&pr->view, v, memory_order_acq_rel);
	view_retire(pr, old);
}

/* Does registration r apply to initiator port p on target port rel? (A bare
 * name covers every ISID of that name.) */
static bool reg_covers(const struct pr_reg *r, const struct pr_port *p, uint16_t rel);

static const struct pr_reg *regs_find(const struct pr_reg *regs, unsigned n,
				      const struct pr_itn *itn)
{
	if (!itn->valid)
		return NULL;
	for (unsigned i = 0; i < n; i++)
		if (reg_covers(&regs[i], &itn->port, itn->rel_port_id))
			return &regs[i];
	return NULL;
}

static bool reg_covers(const struct pr_reg *r, const struct pr_port *p, uint16_t rel)
{
	if (!r->all_tg_pt && r->rel_port_id != rel)
		return false;
	return pr_port_overlap(&r->port, p) && (!r->port.has_isid || p->has_isid);
}

struct pr_reg *pr_reg_find(struct scsi_pr *pr, const struct pr_itn *itn)
{
	if (!itn->valid)
		return NULL;
	for (unsigned i = 0; i < pr->st.nregs; i++)
		if (reg_covers(&pr->st.regs[i], &itn->port, itn->rel_port_id))
			return &pr->st.regs[i];
	return NULL;
}

bool pr_reg_is_holder(const struct scsi_pr *pr, const struct pr_reg *r)
{
	return r && pr->st.type != PR_TYPE_NONE && (pr_type_all_regs(pr->st.type) || r->holder);
}

/* ---- task results ---- */

void pr_set_good(struct scsi_task *t)
{
	t->status = SAM_STAT_GOOD;
}

void pr_set_conflict(struct scsi_task *t)
{
	t->status = SAM_STAT_RESERVATION_CONFLICT;
	t->sense_len = 0;
}

void pr_set_check(struct scsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq,
		  enum pr_fp fp, unsigned byte, int bit)
{
	scsi_task_set_sense(t, key, asc, ascq);
	t->status = SAM_STAT_CHECK_CONDITION;
	if (fp == PR_FP_NONE || t->sense_len < 18 || (t->sense[0] & 0x7f) != 0x70)
		return;
	t->sense[15] = (uint8_t)(0x80 | (fp == PR_FP_CDB ? 0x40 : 0) |
				 (bit >= 0 ? 0x08 | (bit & 7) : 0));
	t->sense[16] = (uint8_t)(byte >> 8);
	t->sense[17] = (uint8_t)byte;
}

void pr_set_invalid_cdb(struct scsi_task *t, unsigned byte, int bit)
{
	pr_set_check(t, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB, 0, PR_FP_CDB, byte, bit);
}

/* ---- life cycle ---- */

int pr_create(const char *state_file, pr_ua_fn ua, void *ua_ctx, struct scsi_pr **out)
{
	struct scsi_pr *pr = calloc(1, sizeof(*pr));
	int rc;

	if (!pr)
		return -ENOMEM;
	pr->ua = ua;
	pr->ua_ctx = ua_ctx;
	if (state_file) {
		pr->state_file = strdup(state_file);
		pr->undo = malloc(sizeof(*pr->undo));
		if (!pr->state_file || !pr->undo) {
			rc = -ENOMEM;
			goto fail;
		}
		rc = pr_file_load(state_file, &pr->st);
		if (rc == -ENOENT) {
			memset(&pr->st, 0, offsetof(struct pr_state, regs));
		} else if (rc < 0) {
			log_err("pr: cannot load reservation state %s: %s", state_file,
				rc == -EINVAL ? "corrupt file" : strerror(-rc));
			goto fail;
		} else {
			log_info("pr: restored %u registration(s)%s from %s", pr->st.nregs,
				 pr->st.type ? " and a reservation" : "", state_file);
		}
	}
	pr_update_flag(pr);
	*out = pr;
	return 0;
fail:
	pr_destroy(pr);
	return rc;
}

void pr_destroy(struct scsi_pr *pr)
{
	if (!pr)
		return;
	view_retire(pr, atomic_exchange(&pr->view, NULL));
	while (pr->retired) {
		struct pr_view *next = pr->retired->retired_next;
		free(pr->retired);
		pr->retired = next;
	}
	free(pr->state_file);
	free(pr->undo);
	free(pr);
}

void pr_set_abort_fn(struct scsi_pr *pr, pr_abort_fn fn, void *ctx)
{
	pr->abort_fn = fn;
	pr->abort_ctx = ctx;
}

/* Set before the LU is used; the current view (if any) is kept. */
void pr_set_retire_fn(struct scsi_pr *pr, pr_retire_fn fn, void *ctx)
{
	pr->retire = fn;
	pr->retire_ctx = ctx;
}

unsigned pr_registration_count(struct scsi_pr *pr)
{
	return pr->st.nregs;
}

uint32_t pr_generation(struct scsi_pr *pr)
{
	return pr->generation;
}

/* ---- access checks ---- */

/* How a command fares against a persistent reservation held by someone else
 * (the SPC-4 table "SPC commands that are allowed in the presence of various
 * reservations" and its SBC-3 twin for block commands). The tables have two
 * restrictive columns that matter: Write Exclusive (reads pass) and
 * Exclusive Access (nothing passes); the registrants only / all registrants
 * types apply the same columns to unregistered I_T nexuses only. */
enum access {
	ACC_ANY,    /* allowed through every reservation */
	ACC_READ,   /* allowed through Write Exclusive types only */
	ACC_WRITE,  /* holder (and registrants of RO/AR types) only */
	ACC_OWN,    /* PR OUT, RESERVE, RELEASE: the command applies the rules */
};

static enum access cmd_access(const uint8_t *cdb)
{
	unsigned sa5 = cdb[1] & 0x1f;

	switch (cdb[0]) {
	case OP_TEST_UNIT_READY:
	case OP_REQUEST_SENSE:
	case OP_INQUIRY:
	case OP_LOG_SENSE:
	case OP_REPORT_LUNS:
	case OP_READ_CAPACITY_10:
	case OP_PR_IN:
	case OP_ACCESS_CONTROL_IN:
	case OP_ACCESS_CONTROL_OUT:
		return ACC_ANY;
	case OP_PR_OUT:
	case OP_RESERVE_6:
	case OP_RESERVE_10:
	case OP_RELEASE_6:
	case OP_RELEASE_10:
		return ACC_OWN;
	case OP_READ_6: case OP_READ_10: case OP_READ_12: case OP_READ_16:
	case OP_VERIFY_10: case OP_VERIFY_12: case OP_VERIFY_16:
	case OP_PRE_FETCH_10: case OP_PRE_FETCH_16:
	case OP_READ_DEFECT_10: case OP_READ_DEFECT_12:
	case OP_MODE_SENSE_6: case OP_MODE_SENSE_10:
	case OP_READ_BUFFER_10: case OP_READ_BUFFER_16:
	case OP_RECEIVE_DIAG:
	case OP_READ_ATTRIBUTE:
	case OP_SECURITY_PROTOCOL_IN:
	case OP_THIRD_PARTY_COPY_IN:          /* RECEIVE COPY RESULTS & co. */
		return ACC_READ;
	case OP_PREVENT_ALLOW:                /* PREVENT = 0 only lifts a prevention */
		return (cdb[4] & 0x03) == 0 ? ACC_ANY : ACC_WRITE;
	case OP_START_STOP:                   /* START=1, POWER CONDITION=0 */
		return (cdb[4] & 0x01) && !(cdb[4] & 0xf0) ? ACC_ANY : ACC_WRITE;
	case OP_MAINTENANCE_IN:
		switch (sa5) {
		case 0x05:  /* REPORT IDENTIFYING INFORMATION */
		case 0x0a:  /* REPORT TARGET PORT GROUPS */
		case 0x0b:  /* REPORT ALIASES */
		case 0x0e:  /* REPORT PRIORITY */
		case 0x0f:  /* REPORT TIMESTAMP */
			return ACC_ANY;
		case 0x0c:  /* REPORT SUPPORTED OPERATION CODES */
		case 0x0d:  /* REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS */
		case 0x10:  /* MANAGEMENT PROTOCOL IN */
			return ACC_READ;
		default:
			return ACC_WRITE;
		}
	case OP_SERVICE_ACTION_IN_12:
		return sa5 == 0x01 ? ACC_ANY : ACC_WRITE;  /* READ MEDIA SERIAL NUMBER */
	case OP_SERVICE_ACTION_IN_16:
		if (sa5 == 0x10)                          /* READ CAPACITY(16) */
			return ACC_ANY;
		if (sa5 == 0x12 || sa5 == 0x13)           /* GET LBA STATUS, REPORT REFERRALS */
			return ACC_READ;
		return ACC_WRITE;                         /* READ LONG(16) among others */
	case OP_THIRD_PARTY_COPY_OUT:
		return sa5 == 0x10 ? ACC_READ : ACC_WRITE; /* POPULATE TOKEN reads */
	case OP_VARIABLE: {
		uint16_t sa = pr_get_be16(cdb + 8);
		return sa == 0x0009 || sa == 0x000a ? ACC_READ : ACC_WRITE; /* READ/VERIFY(32) */
	}
	default:
		/* Writes, cache/format/sanitize/unmap and anything unknown:
		 * only the holder (or a registrant of RO/AR types) may. */
		return ACC_WRITE;
	}
}

/* Commands another I_T nexus may send while an SPC-2 reservation is held
 * (SPC-2 annex B column "logical unit is reserved by another initiator"). */
static bool spc2_allowed(const uint8_t *cdb)
{
	unsigned sa5 = cdb[1] & 0x1f;

	switch (cdb[0]) {
	case OP_INQUIRY:
	case OP_REQUEST_SENSE:
	case OP_REPORT_LUNS:
	case OP_LOG_SENSE:
	case OP_READ_CAPACITY_10:
		return true;
	case OP_PREVENT_ALLOW:
		return (cdb[4] & 0x03) == 0;
	case OP_START_STOP:
		return (cdb[4] & 0x01) && !(cdb[4] & 0xf0);
	case OP_SERVICE_ACTION_IN_16:
		return sa5 == 0x10;
	case OP_SERVICE_ACTION_IN_12:
		return sa5 == 0x01;
	case OP_MAINTENANCE_IN:
		return sa5 == 0x0a;
	default:
		return false;
	}
}

static bool spc2_is_holder(const struct scsi_pr *pr, const struct pr_itn *itn)
{
	return pr->spc2.held && itn->valid && pr->spc2.rel_port_id == itn->rel_port_id &&
	       pr_port_equal(&pr->spc2.port, &itn->port);
}

static bool view_spc2_is_holder(const struct pr_view *v, const struct pr_itn *itn)
{
	return v->spc2_held && itn->valid && v->spc2_rel_port_id == itn->rel_port_id &&
	       pr_port_equal(&v->spc2_port, &itn->port);
}

static bool pr_access_conflict(const struct pr_view *v, const struct pr_itn *itn, enum access acc)
{
	unsigned type = v->type;
	const struct pr_reg *r = regs_find(v->regs, v->nregs, itn);

	if (r && (r->holder || pr_type_regs_only(type) || pr_type_all_regs(type)))
		return false;
	if (acc == ACC_READ && (type == PR_TYPE_WE || type == PR_TYPE_WE_RO || type == PR_TYPE_WE_AR))
		return false;
	return true;
}

bool pr_conflict(struct scsi_pr *pr, const struct scsi_task *t)
{
	/* Valid until this reactor's next turn (see the retire hook). */
	const struct pr_view *v = atomic_load_explicit(&pr->view, memory_order_acquire);
	if (!v)
		return false;

	const uint8_t *cdb = t->cdb;
	enum access acc = cmd_access(cdb);
	struct pr_itn itn;
	bool conflict = false;

	pr_itn_of(t->nexus, &itn);
	if (v->spc2_held) {
		if (cdb[0] == OP_PR_IN || cdb[0] == OP_PR_OUT)
			conflict = true;            /* whoever sends them (SPC-4 5.13.3) */
		else if (acc != ACC_OWN)
			conflict = !view_spc2_is_holder(v, &itn) && !spc2_allowed(cdb);
	} else if (v->type != PR_TYPE_NONE && (acc == ACC_READ || acc == ACC_WRITE)) {
		conflict = pr_access_conflict(v, &itn, acc);
	}
	return conflict;
}

/* ---- PERSISTENT RESERVE IN ---- */

static uint8_t *build_read_keys(struct scsi_pr *pr, size_t *len)
{
	*len = 8 + 8 * (size_t)pr->st.nregs;
	uint8_t *b = calloc(1, *len);
	if (!b)
		return NULL;
	pr_put_be32(b, pr->generation);
	pr_put_be32(b + 4, 8 * pr->st.nregs);
	for (unsigned i = 0; i < pr->st.nregs; i++)
		pr_put_be64(b + 8 + 8 * i, pr->st.regs[i].key);
	return b;
}

static uint8_t *build_read_reservation(struct scsi_pr *pr, size_t *len)
{
	const struct pr_reg *holder = NULL;

	*len = pr->st.type != PR_TYPE_NONE ? 24 : 8;
	uint8_t *b = calloc(1, *len);
	if (!b)
		return NULL;
	pr_put_be32(b, pr->generation);
	if (pr->st.type == PR_TYPE_NONE)
		return b;
	pr_put_be32(b + 4, 16);
	for (unsigned i = 0; i < pr->st.nregs; i++)
		if (pr->st.regs[i].holder)
			holder = &pr->st.regs[i];
	/* All registrants types report key 0 (SPC-4 5.13.10). */
	pr_put_be64(b + 8, holder && !pr_type_all_regs(pr->st.type) ? holder->key : 0);
	b[21] = pr->st.type;            /* SCOPE 0h (LU_SCOPE) in bits 7:4 */
	return b;
}

static uint8_t *build_report_capabilities(struct scsi_pr *pr, size_t *len)
{
	*len = 8;
	uint8_t *b = calloc(1, *len);
	if (!b)
		return NULL;
	pr_put_be16(b, 8);
	/* CRH: 5.13.3 exceptions; SIP_C, ATP_C: SPEC_I_PT and ALL_TG_PT work;
	 * PTPL_C: only with somewhere to persist to. */
	b[2] = 0x10 | 0x08 | 0x04 | (pr->state_file ? 0x01 : 0);
	/* TMV; ALLOW COMMANDS 011b: TEST UNIT READY passes WE and EA, MODE
	 * SENSE & co. pass WE (cmd_access); PTPL_A. */
	b[3] = 0x80 | 0x30 | (pr->st.aptpl ? 0x01 : 0);
	/* Type mask: WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX | EX_AC_AR. */
	b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;
	b[5] = 0x01;
	return b;
}

static uint8_t *build_read_full_status(struct scsi_pr *pr, size_t *len)
{
	size_t size = 8;

	for (unsigned i = 0; i < pr->st.nregs; i++)
		size += 24 + pr_tid_size(&pr->st.regs[i].port);
	uint8_t *b = calloc(1, size);
	if (!b)
		return NULL;
	pr_put_be32(b, pr->generation);
	pr_put_be32(b + 4, (uint32_t)(size - 8));
	size_t off = 8;
	for (unsigned i = 0; i < pr->st.nregs; i++) {
		const struct pr_reg *r = &pr->st.regs[i];
		uint8_t *d = b + off;
		size_t tid = pr_tid_size(&r->port);
		bool holder = pr_reg_is_holder(pr, r);
		pr_put_be64(d, r->key);
		d[12] = (uint8_t)((r->all_tg_pt ? 0x02 : 0) | (holder ? 0x01 : 0));
		d[13] = holder ? pr->st.type : 0;     /* SCOPE 0h | TYPE */
		pr_put_be16(d + 18, r->rel_port_id);
		pr_put_be32(d + 20, (uint32_t)tid);
		pr_tid_write(&r->port, d + 24);
		off += 24 + tid;
	}
	*len = size;
	return b;
}

uint8_t *pr_in_build(struct scsi_pr *pr, struct scsi_task *t, size_t *len_out)
{
	unsigned sa = t->cdb[1] & 0x1f;
	uint8_t *data = NULL;
	size_t len = 0;

	*len_out = 0;
	if (sa > PRI_READ_FULL_STATUS) {
		pr_set_invalid_cdb(t, 1, 4);
		return NULL;
	}
	if (pr->spc2.held) {
		pr_set_conflict(t);
		return NULL;
	}
	switch (sa) {
	case PRI_READ_KEYS:
		data = build_read_keys(pr, &len);
		break;
	case PRI_READ_RESERVATION:
		data = build_read_reservation(pr, &len);
		break;
	case PRI_REPORT_CAPABILITIES:
		data = build_report_capabilities(pr, &len);
		break;
	default:
		data = build_read_full_status(pr, &len);
		break;
	}
	if (!data)
		t->status = SAM_STAT_BUSY;
	*len_out = len;
	return data;
}

void pr_in_copy(struct scsi_task *t, uint8_t *data, size_t len)
{
	uint32_t alloc = pr_get_be16(t->cdb + 7);

	if (!data)
		return;
	/* Truncation to the allocation length is not an error; the length
	 * fields keep describing the whole list. */
	uint32_t n = len < alloc ? (uint32_t)len : alloc;
	if (n == 0)
		t->data_in_len = 0;
	else if (scsi_task_copy_in(t, data, n) < 0) {
		free(data);
		t->status = SAM_STAT_BUSY;
		return;
	}
	free(data);
	pr_set_good(t);
}

void pr_in(struct scsi_pr *pr, struct scsi_task *t)
{
	size_t len;
	uint8_t *data = pr_in_build(pr, t, &len);

	pr_in_copy(t, data, len);
}

/* ---- SPC-2 RESERVE / RELEASE ---- */

/* SPC-4 5.13.3: RESERVE/RELEASE complete with GOOD and do nothing when sent
 * by a PR holder, or by a registrant under an RO or AR reservation. */
static bool crh_exempt(struct scsi_pr *pr, const struct pr_itn *itn)
{
	struct pr_reg *r = pr_reg_find(pr, itn);

	return r && pr->st.type != PR_TYPE_NONE &&
	       (r->holder || pr_type_regs_only(pr->st.type) || pr_type_all_regs(pr->st.type));
}

/* RESERVE(10)/RELEASE(10): third-party reservations are not supported. */
static bool check_10_byte(struct scsi_task *t)
{
	uint8_t op = t->cdb[0];

	if (op != OP_RESERVE_10 && op != OP_RELEASE_10)
		return true;
	if (t->cdb[1] & 0x10) {             /* 3RDPTY */
		pr_set_invalid_cdb(t, 1, 4);
		return false;
	}
	if (t->cdb[1] & 0x02) {             /* LONGID */
		pr_set_invalid_cdb(t, 1, 1);
		return false;
	}
	return true;
}

void pr_reserve(struct scsi_pr *pr, struct scsi_task *t)
{
	struct pr_itn itn;

	if (!check_10_byte(t))
		return;
	pr_itn_of(t->nexus, &itn);
	if (pr->st.nregs > 0) {
		if (crh_exempt(pr, &itn))
			pr_set_good(t);
		else
			pr_set_conflict(t);
	} else if (!itn.valid || (pr->spc2.held && !spc2_is_holder(pr, &itn))) {
		pr_set_conflict(t);
	} else {
		pr->spc2.held = true;
		pr->spc2.port = itn.port;
		pr->spc2.rel_port_id = itn.rel_port_id;
		pr_update_flag(pr);
		pr_set_good(t);
	}
}

void pr_release(struct scsi_pr *pr, struct scsi_task *t)
{
	struct pr_itn itn;

	if (!check_10_byte(t))
		return;
	pr_itn_of(t->nexus, &itn);
	if (pr->st.nregs > 0 && !crh_exempt(pr, &itn)) {
		pr_set_conflict(t);
	} else {
		/* From a non-holder it is a no-op with GOOD (SPC-2 7.17). */
		if (spc2_is_holder(pr, &itn)) {
			pr->spc2.held = false;
			pr_update_flag(pr);
		}
		pr_set_good(t);
	}
}

void pr_nexus_lost(struct scsi_pr *pr, const struct scsi_nexus *n)
{
	struct pr_itn itn;

	pr_itn_of(n, &itn);
	if (spc2_is_holder(pr, &itn)) {
		pr->spc2.held = false;
		pr_update_flag(pr);
	}
}

void pr_lu_reset(struct scsi_pr *pr)
{
	pr->spc2.held = false;
	pr_update_flag(pr);
}
