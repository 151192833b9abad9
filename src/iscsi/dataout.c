/* dataout.c — write data of SCSI commands (RFC 7143 §4.2.5, §11.7, §11.8):
 * immediate data, unsolicited Data-Out up to FirstBurstLength, and R2Ts with
 * their solicited Data-Out, each validated (TTT, DataSN, offset, length, F).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "core/log.h"
#include "internal.h"

/* A Data-Out that breaks the rules (RFC 7143 §4.2.5.2, §11.7): the framing
 * is intact, so only the command fails — CHECK CONDITION, ABORTED COMMAND with
 * the SPC-4 data phase ASC — and its remaining Data-Out is discarded. The
 * connection and the session's other commands carry on. */
static void data_out_error(struct iscsi_task *t, uint8_t ascq, const char *what)
{
	struct iscsi_conn *c = t->conn;

	log_info("iscsi: %s: Data-Out error for ITT 0x%08x: %s", c->peer, t->itt, what);
	t->data_failed = true;
	t->unsol_pending = false;
	t->r2t_out = 0;
	for (unsigned i = 0; i < t->r2t_used; i++)
		t->r2ts[i].active = false;
	scsi_task_set_sense(&t->st, SK_ABORTED_COMMAND, 0x4b, ascq);
	t->st.status = SAM_STAT_CHECK_CONDITION;
	t->st.data_in_len = 0;
	task_scsi_resume(t);
}

/* Copies received data into the task buffer at its offset. Data past what
 * the command needs (EDTL larger than the CDB's length) is discarded. Only
 * for data a transport read into a buffer of its own: immediate data (its
 * task does not exist while the command PDU is read), Data-Out the engine
 * does not take as it is, and transports without zero-copy receive;
 * iscsi_conn_data_dest places the rest straight into the task buffer. */
void take_data(struct iscsi_task *t, uint32_t off, const uint8_t *src, uint32_t len)
{
	const struct scsi_task *st = &t->st;
	uint32_t end = off + len;

	t->data_got = end;
	if (!t->prepared || off >= t->xfer_len)
		return;
	if (end > t->xfer_len)
		len = t->xfer_len - off;
	for (int i = 0; i < st->iovcnt && len; i++) {
		uint32_t seg = (uint32_t)st->iov[i].iov_len;

		if (off >= seg) {
			off -= seg;
			continue;
		}
		uint32_t n = seg - off < len ? seg - off : len;

		memcpy((uint8_t *)st->iov[i].iov_base + off, src, n);
		src += n;
		len -= n;
		off = 0;
	}
}

static uint32_t new_ttt(struct iscsi_conn *c)
{
	uint32_t ttt = c->next_ttt++;

	if (ttt == TTT_NONE || ttt == 0)
		ttt = c->next_ttt++ == 0 ? c->next_ttt++ : 1;
	return ttt;
}

/* R2Ts for what is still missing, MaxBurstLength each. */
void r2t_fill(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	uint32_t max_out = c->params.max_outstanding_r2t ? c->params.max_outstanding_r2t : 1;
	uint32_t burst = c->params.max_burst ? c->params.max_burst : 262144;

	if (max_out > TASK_MAX_R2T)
		max_out = TASK_MAX_R2T;
	while (t->r2t_out < max_out && t->r2t_next_off < t->xfer_len && c->state != CONN_DEAD) {
		struct iscsi_r2t *r = NULL;
		struct iscsi_pdu *p;
		uint32_t len = t->xfer_len - t->r2t_next_off;

		for (unsigned i = 0; i < TASK_MAX_R2T && !r; i++) {
			if (i >= t->r2t_used) {
				t->r2t_used = (uint8_t)(i + 1);
				r = &t->r2ts[i];
			} else if (!t->r2ts[i].active) {
				r = &t->r2ts[i];
			}
		}
		if (!r)
			return;
		if (len > burst)
			len = burst;
		p = conn_pdu_new(c, ISCSI_OP_R2T);
		if (!p) {
			conn_drop(c, "no memory for an R2T");
			return;
		}
		*r = (struct iscsi_r2t){ .ttt = new_ttt(c), .off = t->r2t_next_off, .len = len,
					 .active = true };
		p->bhs[1] = ISCSI_FLAG_FINAL;
		task_put_lun(p, t);
		put_be32(p->bhs + BHS_ITT, t->itt);
		put_be32(p->bhs + BHS_TTT, r->ttt);
		put_be32(p->bhs + BHS_DATASN, t->r2t_sn++);
		put_be32(p->bhs + BHS_BUFOFF, r->off);
		put_be32(p->bhs + BHS_RESID, len);
		t->r2t_next_off += len;
		t->r2t_out++;
		conn_send(c, p, false);
	}
}

/* Where a Data-Out stands against its task (RFC 7143 §11.7): NULL if the
 * engine takes it as it is, else what is wrong and the ASCQ to fail the
 * command with. *rp is the R2T it answers (NULL: unsolicited). Reads state
 * only: the transport asks this at header time (iscsi_conn_data_dest) and the
 * engine again when the whole PDU arrives. */
static const char *data_out_check(struct iscsi_task *t, const uint8_t *bhs, uint32_t len,
				  struct iscsi_r2t **rp, uint8_t *ascq)
{
	uint32_t ttt = get_be32(bhs + BHS_TTT);
	uint32_t datasn = get_be32(bhs + BHS_DATASN);
	uint32_t off = get_be32(bhs + BHS_BUFOFF);
	bool final = bhs[BHS_FLAGS] & ISCSI_FLAG_FINAL;
	struct iscsi_r2t *r = NULL;
	const char *bad;

	*rp = NULL;
	*ascq = 0x00;
	if (ttt == TTT_NONE) {
		bad = !t->unsol_pending ? "unsolicited data not expected" :
			datasn != t->unsol_datasn ? "DataSN out of order" :
			off != t->data_got ? "buffer offset out of order" :
			(uint64_t)off + len > t->unsol_limit ? "beyond FirstBurstLength" :
			(!final && off + len == t->unsol_limit) ? "F bit missing" : NULL;
		if (bad)
			*ascq = off != t->data_got ? 0x05 :
				(uint64_t)off + len > t->unsol_limit ? 0x02 : 0x00;
		return bad;
	}
	for (unsigned i = 0; i < t->r2t_used && !r; i++)
		if (t->r2ts[i].active && t->r2ts[i].ttt == ttt)
			r = &t->r2ts[i];
	bad = !r ? "unknown Target Transfer Tag" :
		datasn != r->datasn ? "DataSN out of order" :
		off != r->off + r->got ? "buffer offset out of order" :
		len > r->len - r->got ? "more data than the R2T asked for" :
		final != (r->got + len == r->len) ? "F bit misplaced" : NULL;
	if (bad)
		*ascq = !r ? 0x01 : off != r->off + r->got ? 0x05 :
			len > r->len - r->got ? 0x02 : 0x00;
	*rp = r;
	return bad;
}

/* A task that takes no more data: gone, aborted, failed or already running. */
static bool task_takes_data(const struct iscsi_task *t)
{
	return t && t->kind == TASK_SCSI && !t->aborted && !t->data_failed &&
	       !t->exec_called && !t->rsp_queued;
}

int iscsi_conn_data_dest(struct iscsi_conn *c, struct iscsi_pdu *p, struct iovec *iov, int max)
{
	const uint8_t *bhs = p->bhs;
	struct iscsi_task *t;
	struct iscsi_r2t *r;
	uint32_t off = get_be32(bhs + BHS_BUFOFF), len = p->data_len, covered = 0;
	uint8_t ascq;
	int n = 0;

	if (bhs_opcode(bhs) != ISCSI_OP_DATA_OUT || len == 0 || p->rx_placed ||
	    (c->state != CONN_FULL && c->state != CONN_LOGOUT) ||
	    c->sess.type != ISCSI_SESSION_NORMAL)
		return 0;
	t = task_find(c, bhs_itt(bhs));
	/* Only data the engine will keep as it is lands in the buffer: anything
	 * it would discard or fail the command for goes the copying way, so a
	 * bad PDU never writes into a buffer (least of all one being written to
	 * the disk). Data past xfer_len (EDTL above the CDB's length) too. */
	if (!task_takes_data(t) || !t->wants_data || !t->prepared ||
	    data_out_check(t, bhs, len, &r, &ascq) ||
	    (uint64_t)off + len > t->xfer_len || t->xfer_len > t->st.buf_len)
		return 0;
	for (int i = 0; i < t->st.iovcnt && covered < len; i++) {
		uint32_t seg = (uint32_t)t->st.iov[i].iov_len;

		if (off >= seg) {
			off -= seg;
			continue;
		}
		if (n == max)
			return 0;
		seg -= off;
		if (seg > len - covered)
			seg = len - covered;
		iov[n].iov_base = (uint8_t *)t->st.iov[i].iov_base + off;
		iov[n].iov_len = seg;
		n++;
		covered += seg;
		off = 0;
	}
	if (covered != len)
		return 0;
	p->rx_placed = true;
	p->task = t;
	t->rx_pins++;
	return n;
}

void data_out_recv(struct iscsi_conn *c, struct iscsi_pdu *p, int rx_status)
{
	const uint8_t *bhs = p->bhs;
	struct iscsi_task *t = task_find(c, bhs_itt(bhs));
	uint32_t off = get_be32(bhs + BHS_BUFOFF);
	uint32_t len = p->data_len;
	bool final = bhs[BHS_FLAGS] & ISCSI_FLAG_FINAL;
	struct iscsi_r2t *r;
	const char *bad;
	uint8_t ascq;

	(void)rx_status;
	if (!t || t->kind != TASK_SCSI || t->aborted) {
		/* An aborted task's data still in flight, or a stale tag: the
		 * data is discarded (RFC 7143 §4.2.3.3). */
		log_debug("iscsi: %s: Data-Out for unknown ITT 0x%08x dropped", c->peer,
			  bhs_itt(bhs));
		iscsi_pdu_free(c, p);
		return;
	}
	if (!task_takes_data(t)) {
		/* The command already failed (or no longer takes data). */
		iscsi_pdu_free(c, p);
		return;
	}
	if (!t->wants_data) {
		iscsi_pdu_free(c, p);
		data_out_error(t, 0x00, "Data-Out for a command without write data");
		return;
	}
	bad = data_out_check(t, bhs, len, &r, &ascq);
	if (bad) {
		iscsi_pdu_free(c, p);
		data_out_error(t, ascq, bad);
		return;
	}
	/* Placed data is in the buffer already (the same checks passed when its
	 * header came, and nothing on this connection ran in between). */
	if (p->rx_placed)
		t->data_got = off + len;
	else
		take_data(t, off, p->data, len);
	if (!r) {
		t->unsol_datasn++;
		if (final) {
			t->unsol_pending = false;
			t->r2t_next_off = t->data_got;
		}
	} else {
		r->got += len;
		r->datasn++;
		if (final) {
			r->active = false;
			t->r2t_out--;
		}
	}
	iscsi_pdu_free(c, p);
	task_scsi_resume(t);
}

/* Sets up the write side from the command PDU; 0 or a Reject reason. */
int setup_write(struct iscsi_task *t, const struct iscsi_pdu *p)
{
	struct iscsi_conn *c = t->conn;
	const struct iscsi_params *pr = &c->params;
	bool final = p->bhs[BHS_FLAGS] & ISCSI_FLAG_FINAL;
	uint32_t first = pr->first_burst ? pr->first_burst : 65536;

	if (t->prepared)
		t->xfer_len = t->st.data_out_len < t->edtl ? t->st.data_out_len : t->edtl;
	if (p->data_len) {
		if (!pr->immediate_data || p->data_len > first)
			return ISCSI_REJECT_PROTOCOL_ERROR;
		take_data(t, 0, p->data, p->data_len);
	}
	if (!final) {
		if (pr->initial_r2t)
			return ISCSI_REJECT_PROTOCOL_ERROR;
		t->unsol_limit = t->edtl < first ? t->edtl : first;
		if (t->data_got >= t->unsol_limit)
			return ISCSI_REJECT_PROTOCOL_ERROR;
		t->unsol_pending = true;
	}
	t->r2t_next_off = t->data_got;
	return 0;
}

