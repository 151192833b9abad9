/* info.c — what lichctl sees of the engine: per-command counters (for each
 * connection and, through the scsi layer, each LU) and the list of the
 * sessions a reactor owns. Everything here runs on the reactor that owns the
 * connections it touches. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/reactor.h"
#include "ctl/stats.h"
#include "internal.h"

void task_account(struct iscsi_task *t)
{
	const struct scsi_task *st = &t->st;
	enum ctl_io_kind kind = ctl_cdb_kind(st->cdb[0]);
	bool error = st->status != SAM_STAT_GOOD && st->status != SAM_STAT_CONDITION_MET;
	uint32_t bytes = kind == CTL_IO_READ ? st->data_in_len :
			 kind == CTL_IO_WRITE ? st->data_out_got : 0;
	struct ctl_lu_stats *ls;

	if (t->kind != TASK_SCSI)
		return;
	ctl_io_count(&t->conn->io_stats, kind, bytes, error);
	ls = scsi_task_lu_stats(st);
	if (ls) {
		uint64_t now = iscsi_now_us(t->conn->ir);

		ctl_lu_count(ls, t->conn->ir->id, kind, bytes, error,
			     now > t->rx_us ? now - t->rx_us : 0);
	}
}

static void addr_text(char *out, size_t n, int family, const char *addr, uint16_t port)
{
	if (family == AF_INET6)
		snprintf(out, n, "[%s]:%u", addr, port);
	else
		snprintf(out, n, "%s:%u", addr, port);
}

static void fill(struct iscsi_session_info *o, const struct iscsi_conn *c)
{
	const struct iscsi_session *s = &c->sess;
	const struct iscsi_params *p = &c->params;

	memset(o, 0, sizeof(*o));
	o->id = s->id;
	o->reactor = c->ir->id;
	o->discovery = s->type != ISCSI_SESSION_NORMAL;
	o->logging_out = c->state != CONN_FULL || c->logout_requested;
	snprintf(o->initiator, sizeof(o->initiator), "%s", s->initiator_name);
	if (s->tgt)
		snprintf(o->target, sizeof(o->target), "%s", s->tgt->name);
	memcpy(o->isid, s->isid, sizeof(o->isid));
	o->tsih = s->tsih;
	o->cid = c->cid;
	if (c->xc) {
		addr_text(o->peer, sizeof(o->peer), c->xc->family, c->xc->peer_addr,
			  c->xc->peer_port);
		addr_text(o->local, sizeof(o->local), c->xc->family, c->xc->local_addr,
			  c->xc->local_port);
	} else {
		snprintf(o->peer, sizeof(o->peer), "%s", c->peer);
	}
	o->params.header_digest = p->header_digest;
	o->params.data_digest = p->data_digest;
	o->params.max_recv_dsl = p->max_recv_dsl;
	o->params.max_xmit_dsl = p->max_xmit_dsl;
	o->params.max_burst = p->max_burst;
	o->params.first_burst = p->first_burst;
	o->params.max_outstanding_r2t = p->max_outstanding_r2t;
	o->params.immediate_data = p->immediate_data;
	o->params.initial_r2t = p->initial_r2t;
	o->params.erl = p->erl;
	o->io = c->io_stats;
}

unsigned iscsi_sessions_here(struct iscsi_session_info *out, unsigned max)
{
	struct reactor *r = reactor_self();
	struct iscsi_reactor *ir = iscsi_reactor_of(r ? reactor_id(r) : 0);
	unsigned n = 0;

	if (!ir)
		return 0;
	for (const struct iscsi_conn *c = ir->conns; c; c = c->next) {
		if (c->state != CONN_FULL && c->state != CONN_LOGOUT)
			continue;
		if (n < max)
			fill(&out[n], c);
		n++;
	}
	return n;
}

void iscsi_session_logout_on(unsigned rid, uint64_t id, bool now, unsigned secs)
{
	if (now)
		iscsi_post(rid, iscsi_session_kill_msg, (void *)(uintptr_t)id,
			   (void *)"lichctl logout --now");
	else
		iscsi_post(rid, iscsi_session_logout_msg, (void *)(uintptr_t)id,
			   (void *)(uintptr_t)secs);
}
