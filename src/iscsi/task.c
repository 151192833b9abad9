/* task.c — SCSI commands over iSCSI: task life, Data-In and status
 * (RFC 7143 §11.3, §11.4, §11.7).
 *
 * A SCSI task moves forward through task_scsi_resume(), called whenever
 * something it waits for arrives:
 *   unsolicited data pending?   wait for the Data-Out with F (dataout.c)
 *   solicited data missing?     send R2Ts (MaxBurstLength each, at most
 *                               MaxOutstandingR2T outstanding), wait
 *   not its CmdSN turn yet?     wait (held behind a gap, cmdsn.c)
 *   early status (error)?       send the response
 *   otherwise                   scsi_task_exec(); done() sends Data-In and status
 * The task is freed when its final PDU was queued and every PDU pointing into
 * its buffer was written (zero-copy Data-In), or, if aborted, when its I/O
 * finished.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/zero.h"
#include "core/timer.h"
#include "internal.h"
#include "mem/slab.h"

#define AHS_EXT_CDB   1
#define AHS_BIDI_LEN  2

/* ---- allocation, lookup ---- */

struct iscsi_task *task_alloc(struct iscsi_conn *c, enum task_kind kind)
{
	struct iscsi_task *t;

	if (!c->ir->task_cache)
		return NULL;
	t = slab_alloc(c->ir->task_cache);
	if (!t)
		return NULL;
	/* A SCSI command sets the fields behind `conn` itself (scsi_cmd_recv):
	 * only the short block before them is cleared for every command. */
	if (kind == TASK_SCSI)
		zero_small(&t->held_next, offsetof(struct iscsi_task, conn) -
					  offsetof(struct iscsi_task, held_next));
	else
		memset(&t->held_next, 0, offsetof(struct iscsi_task, r2ts) -
					 offsetof(struct iscsi_task, held_next));
	scsi_task_init(&t->st);
	t->conn = c;
	t->kind = kind;
	t->prev = NULL;
	t->next = c->tasks;
	if (c->tasks)
		c->tasks->prev = t;
	c->tasks = t;
	c->ntasks++;
	return t;
}

static unsigned hash_of(uint32_t itt)
{
	return (itt ^ (itt >> 8) ^ (itt >> 16)) & (TASK_HASH_SIZE - 1);
}

void task_hash_add(struct iscsi_task *t)
{
	struct iscsi_task **b = &t->conn->hash[hash_of(t->itt)];

	t->hnext = *b;
	*b = t;
	t->hashed = true;
}

static void task_hash_del(struct iscsi_task *t)
{
	struct iscsi_task **pp = &t->conn->hash[hash_of(t->itt)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == t) {
			*pp = t->hnext;
			break;
		}
	}
	t->hashed = false;
}

struct iscsi_task *task_find(struct iscsi_conn *c, uint32_t itt)
{
	for (struct iscsi_task *t = c->hash[hash_of(itt)]; t; t = t->hnext)
		if (t->itt == itt)
			return t;
	return NULL;
}

void task_free(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;

	if (t->hashed)
		task_hash_del(t);
	if (t->prev)
		t->prev->next = t->next;
	else
		c->tasks = t->next;
	if (t->next)
		t->next->prev = t->prev;
	if (t->abort_seq)
		abort_untrack(t);
	if (t->sweep)
		sweep_owner_gone(t);
	if (t->parked)
		log_err("iscsi: %s: freeing a parked TMF", c->peer);
	if (t->kind == TASK_SCSI)
		scsi_task_release(&t->st);
	if (t->pdu)
		iscsi_pdu_free(c, t->pdu);
	slab_free(c->ir->task_cache, t);
	if (c->logout_pending)
		conn_logout_check(c);
	conn_task_gone(c);
}

void task_maybe_release(struct iscsi_task *t)
{
	if (t->tx_refs || t->rx_pins || t->held)
		return;
	if (t->aborted) {
		if (t->exec_called && !t->scsi_done)
			return;     /* done() still comes */
		task_free(t);
		return;
	}
	if (t->rsp_queued)
		task_free(t);
}

void task_tx_done(struct iscsi_task *t)
{
	t->tx_refs--;
	task_maybe_release(t);
}

/* Aborted tasks get no response (TAS=0 in our Control mode page; RFC 7143
 * §4.2.3.3). A task whose I/O is in flight lives on until done(), tracked so
 * that task management can wait for it (sweep.c). */
void task_abort(struct iscsi_task *t)
{
	if (t->aborted)
		return;
	t->aborted = true;
	if (t->kind == TASK_SCSI && t->exec_called && !t->scsi_done) {
		scsi_task_abort(&t->st);
		abort_track(t);
	}
	task_maybe_release(t);
}

/* ---- status ---- */

static void residual(const struct iscsi_task *t, uint8_t *flags, uint32_t *count)
{
	const struct scsi_task *st = &t->st;
	uint32_t have;

	*flags = 0;
	*count = 0;
	/* Writes compare what the CDB needs with EDTL, reads what was produced. */
	have = (st->data_out_len || (st->exp_write && !st->exp_read)) ? st->data_out_len :
	       st->data_in_len;
	if (have > t->edtl) {
		*flags = ISCSI_RSP_OVERFLOW;
		*count = have - t->edtl;
	} else if (have < t->edtl) {
		*flags = ISCSI_RSP_UNDERFLOW;
		*count = t->edtl - have;
	}
}

void task_put_lun(struct iscsi_pdu *p, const struct iscsi_task *t)
{
	put_be32(p->bhs + BHS_LUN, t->lun_raw_hi);
	put_be32(p->bhs + BHS_LUN + 4, t->lun_raw_lo);
}

/* SCSI Response (RFC 7143 §11.4), with sense data behind a 2-byte length. */
static int send_scsi_rsp(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	const struct scsi_task *st = &t->st;
	struct iscsi_pdu *p = task_pdu_new(t, ISCSI_OP_SCSI_RSP);
	uint32_t resid;
	uint8_t flags;

	if (!p)
		return -ENOMEM;
	if (st->sense_len) {
		if (conn_pdu_data(c, p, 2u + st->sense_len)) {
			iscsi_pdu_free(c, p);
			return -ENOMEM;
		}
		put_be16(p->data, st->sense_len);
		memcpy(p->data + 2, st->sense, st->sense_len);
	}
	residual(t, &flags, &resid);
	p->bhs[1] = ISCSI_FLAG_FINAL | flags;
	p->bhs[2] = 0;                   /* command completed at target */
	p->bhs[3] = st->status;
	put_be32(p->bhs + BHS_ITT, t->itt);
	put_be32(p->bhs + BHS_DATASN, t->datasn + t->r2t_sn);   /* ExpDataSN */
	put_be32(p->bhs + BHS_RESID, resid);
	conn_send(c, p, true);
	return 0;
}

/* Up to 4 segments of the task buffer from off, at most len bytes; returns
 * the bytes covered. */
static uint32_t iov_slice(const struct scsi_task *st, uint32_t off, uint32_t len,
			  struct iovec *out, int *cnt)
{
	uint32_t covered = 0;
	int i = 0, n = 0;

	/* Common case: inside the first segment (a read of up to 1 MiB). */
	if (st->iovcnt > 0 && off < st->iov[0].iov_len && len <= st->iov[0].iov_len - off) {
		out[0].iov_base = (uint8_t *)st->iov[0].iov_base + off;
		out[0].iov_len = len;
		*cnt = 1;
		return len;
	}
	while (i < st->iovcnt && off >= st->iov[i].iov_len) {
		off -= (uint32_t)st->iov[i].iov_len;
		i++;
	}
	for (; i < st->iovcnt && n < 4 && covered < len; i++, off = 0) {
		uint32_t seg = (uint32_t)st->iov[i].iov_len - off;

		if (seg > len - covered)
			seg = len - covered;
		out[n].iov_base = (uint8_t *)st->iov[i].iov_base + off;
		out[n].iov_len = seg;
		n++;
		covered += seg;
	}
	*cnt = n;
	return covered;
}

/* Data-In straight from the task's buffer (zero copy), in PDUs of at most the
 * initiator's MaxRecvDataSegmentLength, F at the end of every MaxBurstLength
 * sequence; status rides in the last PDU when it is GOOD without sense. */
static void send_data_in(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct scsi_task *st = &t->st;
	uint32_t total = st->data_in_len < t->edtl ? st->data_in_len : t->edtl;
	uint32_t max_pdu = c->params.max_xmit_dsl ? c->params.max_xmit_dsl : 8192;
	uint32_t burst = c->params.max_burst ? c->params.max_burst : 262144;
	bool collapse = st->status == SAM_STAT_GOOD && st->sense_len == 0;
	uint32_t off = 0, resid;
	uint8_t rflags;

	residual(t, &rflags, &resid);
	while (off < total && c->state != CONN_DEAD) {
		uint32_t burst_end = total <= burst ? total : (off / burst + 1) * burst;
		uint32_t len = total - off;
		struct iscsi_pdu *p;
		bool last;

		if (burst_end > total)
			burst_end = total;
		if (len > burst_end - off)
			len = burst_end - off;
		if (len > max_pdu)
			len = max_pdu;
		p = task_pdu_new(t, ISCSI_OP_DATA_IN);
		if (!p) {
			conn_drop(c, "no memory for Data-In");
			return;
		}
		len = iov_slice(st, off, len, p->data_iov, &p->data_iovcnt);
		if (len == 0) {
			conn_drop(c, "Data-In beyond the task buffer");
			conn_send(c, p, false);     /* the connection is dead: handed back */
			return;
		}
		last = off + len == total;
		if (off + len == burst_end)
			p->bhs[1] |= ISCSI_FLAG_FINAL;
		if (last && collapse) {
			p->bhs[1] |= ISCSI_FLAG_FINAL | ISCSI_DATAIN_STATUS | rflags;
			p->bhs[3] = st->status;
			put_be32(p->bhs + BHS_RESID, resid);
		}
		task_put_lun(p, t);
		put_be32(p->bhs + BHS_ITT, t->itt);
		put_be32(p->bhs + BHS_TTT, TTT_NONE);
		put_be32(p->bhs + BHS_DATASN, t->datasn++);
		put_be32(p->bhs + BHS_BUFOFF, off);
		p->data_len = len;
		conn_send(c, p, last && collapse);
		off += len;
	}
	if (off == total && total > 0 && collapse)
		t->rsp_queued = true;
}

/* ---- iSER: data by RDMA instead of Data-In / R2T (RFC 7145 §7.3) ---- */

/* Only asked while the connection is alive (its xc is set). */
static bool conn_rdma(const struct iscsi_conn *c)
{
	return c->rdma;
}

/* The task buffer from off, len bytes, as iovecs (up to max). */
static int iov_range(const struct scsi_task *st, uint32_t off, uint32_t len,
		     struct iovec *out, int max)
{
	int n = 0;

	for (int i = 0; i < st->iovcnt && len && n < max; i++) {
		uint32_t seg = (uint32_t)st->iov[i].iov_len;

		if (off >= seg) {
			off -= seg;
			continue;
		}
		seg -= off;
		if (seg > len)
			seg = len;
		out[n].iov_base = (uint8_t *)st->iov[i].iov_base + off;
		out[n++].iov_len = seg;
		len -= seg;
		off = 0;
	}
	return len ? -EFAULT : n;
}

/* Data-In as one RDMA Write to the initiator's Read STag; the SCSI Response
 * queued next goes out behind it. The write pins the buffer (tx_refs). */
static void put_data_rdma(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct scsi_task *st = &t->st;
	uint32_t total = st->data_in_len < t->edtl ? st->data_in_len : t->edtl;
	struct iovec iov[SCSI_MAX_IOV];
	int n;

	if (total == 0)
		return;
	if (!t->rdma_in.valid) {
		conn_drop(c, "iSER: Data-In for a command without a Read STag");
		return;
	}
	n = iov_range(st, 0, total, iov, SCSI_MAX_IOV);
	if (n <= 0) {
		conn_drop(c, "iSER: Data-In beyond the task buffer");
		return;
	}
	t->tx_refs++;
	if (c->xc->ops->put_data(c->xc, &t->rdma_in, iov, n, total, t)) {
		t->tx_refs--;
		conn_drop(c, "iSER: cannot post an RDMA Write");
	}
}

void iscsi_rdma_put_done(void *cookie, int err)
{
	(void)err;   /* a failed write fails the connection: the transport says so */
	task_tx_done(cookie);
}

/* Solicited write data in one RDMA Read from the initiator's Write STag
 * (what the command carried as immediate data is already in). r2t_out marks
 * the read outstanding; rx_pins keeps the buffer. */
static void get_data_rdma(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	uint32_t len = t->xfer_len - t->data_got;
	struct iscsi_rdma_ref ref = t->rdma_out;
	struct iovec iov[SCSI_MAX_IOV];
	int n;

	if (t->r2t_out)
		return;
	if (!ref.valid) {
		conn_drop(c, "iSER: write data missing and no Write STag");
		return;
	}
	n = iov_range(&t->st, t->data_got, len, iov, SCSI_MAX_IOV);
	if (n <= 0) {
		conn_drop(c, "iSER: write beyond the task buffer");
		return;
	}
	ref.va += t->data_got - t->rdma_out_base;
	t->r2t_out = 1;
	t->rx_pins++;
	if (c->xc->ops->get_data(c->xc, &ref, iov, n, len, t)) {
		t->r2t_out = 0;
		t->rx_pins--;
		conn_drop(c, "iSER: cannot post an RDMA Read");
	}
}

void iscsi_rdma_get_done(void *cookie, int err)
{
	struct iscsi_task *t = cookie;
	struct iscsi_conn *c = t->conn;

	t->rx_pins--;
	t->r2t_out = 0;
	if (err || t->aborted || c->state == CONN_DEAD) {
		task_maybe_release(t);
		return;
	}
	t->data_got = t->xfer_len;
	conn_get(c);
	task_scsi_resume(t);
	conn_put(c);
}

static void task_sweep_done(struct iscsi_task *t)
{
	if (t->aborted || t->conn->state == CONN_DEAD) {
		t->aborted = true;
		task_maybe_release(t);
		return;
	}
	task_complete(t);
}

/* A PERSISTENT RESERVE OUT that preempted and aborted (sweep.c collected the
 * nexuses while it ran): its status waits until their tasks are gone. */
static bool task_wait_for_sweep(struct iscsi_task *t)
{
	if (!t->sweep)
		return false;
	if (t->sweep->started)
		return true;                /* already waiting */
	if (t->aborted || t->conn->state == CONN_DEAD) {
		sweep_owner_gone(t);        /* starts it without an owner */
		return false;
	}
	sweep_start(t->sweep, t, task_sweep_done, false);
	return true;
}

/* Final step of every SCSI task that was not aborted. */
void task_complete(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;

	if (task_wait_for_sweep(t))
		return;
	task_account(t);
	if (c->state != CONN_DEAD) {
		if (conn_rdma(c))
			put_data_rdma(t);
		else
			send_data_in(t);
		if (!t->rsp_queued && c->state != CONN_DEAD && send_scsi_rsp(t))
			conn_drop(c, "no memory for a SCSI Response");
	}
	t->rsp_queued = true;
	task_maybe_release(t);
}

static void task_scsi_done(struct scsi_task *st)
{
	struct iscsi_task *t = st->priv;
	struct iscsi_conn *c = t->conn;

	conn_get(c);
	t->scsi_done = true;
	if (t->aborted || c->state == CONN_DEAD) {
		t->aborted = true;
		task_wait_for_sweep(t);
		task_maybe_release(t);
	} else {
		task_complete(t);
	}
	conn_put(c);
}

bool task_is_iscsi(const struct scsi_task *st)
{
	return st->done == task_scsi_done && st->priv;
}

void task_scsi_resume(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;

	if (t->aborted || t->exec_called || t->rsp_queued || c->state == CONN_DEAD)
		return;
	if (t->unsol_pending)
		return;
	if (t->data_failed) {
		if (t->ordered)
			task_complete(t);
		return;
	}
	if (t->prepared && t->data_got < t->xfer_len) {
		if (conn_rdma(c))
			get_data_rdma(t);
		else
			r2t_fill(t);
		return;
	}
	if (t->r2t_out || !t->ordered)
		return;
	if (!t->prepared) {
		task_complete(t);
		return;
	}
	t->exec_called = true;
	if (t->st.data_out_len)
		t->st.data_out_got = t->data_got < t->st.data_out_len ? t->data_got :
				     t->st.data_out_len;
	if (t->st.data_out_got > t->xfer_len)
		t->st.data_out_got = t->xfer_len;
	scsi_task_exec(&t->st);
}

/* ---- SCSI Command ---- */

/* Extended CDB AHS (RFC 7143 §11.3.5): CDB bytes 16.. follow one reserved
 * byte. Returns the CDB length, or -EINVAL. */
static int parse_ahs(struct iscsi_task *t, const struct iscsi_pdu *p)
{
	uint32_t pos = 0;

	while (pos + 4 <= p->ahs_len) {
		uint32_t alen = get_be16(p->ahs + pos);
		uint8_t type = p->ahs[pos + 2];

		if (pos + 3 + alen > p->ahs_len)
			return -EINVAL;
		if (type == AHS_EXT_CDB) {
			if (alen < 2 || 16 + alen - 1 > SCSI_CDB_MAX)
				return -EINVAL;
			memcpy(t->st.cdb + 16, p->ahs + pos + 4, alen - 1);
			t->st.cdb_len = (uint8_t)(16 + alen - 1);
		} else if (type != AHS_BIDI_LEN) {
			return -EINVAL;
		}
		pos += ISCSI_PAD(3 + alen);
	}
	return 0;
}

/* No task could be had: answer TASK SET FULL from the header alone. */
static void send_busy(struct iscsi_conn *c, const struct iscsi_pdu *req)
{
	struct iscsi_pdu *p = conn_pdu_new(c, ISCSI_OP_SCSI_RSP);

	if (!p) {
		conn_drop(c, "out of memory");
		return;
	}
	p->bhs[1] = ISCSI_FLAG_FINAL | ISCSI_RSP_UNDERFLOW;
	p->bhs[3] = SAM_STAT_TASK_SET_FULL;
	put_be32(p->bhs + BHS_ITT, bhs_itt(req->bhs));
	put_be32(p->bhs + BHS_RESID, get_be32(req->bhs + BHS_EDTL));
	conn_send(c, p, true);
}

static void scsi_cmd_setup(struct iscsi_task *t, const struct iscsi_pdu *p)
{
	struct iscsi_conn *c = t->conn;
	struct scsi_task *st = &t->st;
	uint8_t f = p->bhs[BHS_FLAGS];
	int rc;

	st->target = c->sess.tgt->st;
	st->nexus = &c->sess.nexus;
	st->lun = iscsi_lun_decode(p->bhs + BHS_LUN);
	memcpy(st->cdb, p->bhs + BHS_CDB, 16);
	st->cdb_len = 16;
	st->attr = f & ISCSI_CMD_ATTR_MASK;
	st->exp_read = f & ISCSI_CMD_READ;
	st->exp_write = f & ISCSI_CMD_WRITE;
	st->exp_xfer_len = t->edtl;
	st->pool = c->ir->pool;
	st->qp = c->ir->qp;
	st->done = task_scsi_done;
	st->priv = t;
	/* Data-In may come straight from a RAM LUN's memory over TCP; iSER can
	 * only RDMA from registered pool memory. */
	st->data_in_any_mem = !conn_rdma(c);

	if (p->ahs_len && parse_ahs(t, p)) {
		scsi_task_set_sense(st, SK_ILLEGAL_REQUEST, 0x24, 0x00);
		st->status = SAM_STAT_CHECK_CONDITION;
		return;
	}
	if (st->exp_read && st->exp_write) {
		/* Bidirectional commands are not supported: INVALID FIELD IN CDB. */
		scsi_task_set_sense(st, SK_ILLEGAL_REQUEST, 0x24, 0x00);
		st->status = SAM_STAT_CHECK_CONDITION;
		return;
	}
	rc = scsi_task_prepare(st);
	if (rc == SCSI_TASK_EXEC) {
		t->prepared = true;
	} else if (rc < 0) {
		st->status = SAM_STAT_TASK_SET_FULL;
		st->sense_len = 0;
		st->data_in_len = 0;
	}
}

void scsi_cmd_recv(struct iscsi_conn *c, struct iscsi_pdu *p)
{
	const uint8_t *bhs = p->bhs;
	struct iscsi_task *t;
	int order = cmdsn_check(c, bhs);
	bool imm = bhs_immediate(bhs);
	int reason;

	log_debug("iscsi: %s: cmd itt 0x%08x cmdsn %u op 0x%02x edtl %u%s (order %d)", c->peer,
		  bhs_itt(bhs), get_be32(bhs + BHS_CMDSN), bhs[BHS_CDB],
		  get_be32(bhs + BHS_EDTL), imm ? " imm" : "", order);

	if (order == 1) {
		iscsi_pdu_free(c, p);
		return;
	}
	if (task_find(c, bhs_itt(bhs))) {
		if (order == 0 && !imm)
			cmdsn_advance(c);
		conn_send_reject(c, bhs, ISCSI_REJECT_TASK_IN_PROGRESS);
		iscsi_pdu_free(c, p);
		return;
	}
	/* Immediate commands take no CmdSN, so the window does not bound them:
	 * past queue_depth open tasks they get TASK SET FULL, no buffer. */
	t = imm && c->ntasks >= iscsi_opts_cur.queue_depth ? NULL : task_alloc(c, TASK_SCSI);
	if (!t) {
		if (order == 0 && !imm)
			cmdsn_advance(c);
		send_busy(c, p);
		iscsi_pdu_free(c, p);
		return;
	}
	t->itt = bhs_itt(bhs);
	t->cmd_sn = get_be32(bhs + BHS_CMDSN);
	t->rx_seq = ++c->ir->rx_seq;
	t->rx_us = iscsi_now_us(c->ir);
	t->edtl = get_be32(bhs + BHS_EDTL);
	t->lun_raw_hi = get_be32(bhs + BHS_LUN);
	t->lun_raw_lo = get_be32(bhs + BHS_LUN + 4);
	task_hash_add(t);
	scsi_cmd_setup(t, p);
	t->rdma_in = p->rdma_in;
	t->rdma_out = p->rdma_out;
	t->rdma_out_base = 0;
	t->wants_data = (bhs[BHS_FLAGS] & ISCSI_CMD_WRITE) && t->edtl > 0;
	if (t->wants_data) {
		reason = setup_write(t, p);
		if (reason) {
			if (order == 0 && !imm)
				cmdsn_advance(c);
			conn_send_reject(c, bhs, (uint8_t)reason);
			t->aborted = true;
			iscsi_pdu_free(c, p);
			task_maybe_release(t);
			return;
		}
		/* iSER: the Write Base Offset names the first byte not sent
		 * with the command (RFC 7145 §7.3.1, InitialR2T=Yes). */
		t->rdma_out_base = t->data_got;
	}
	iscsi_pdu_free(c, p);
	if (order == 2) {
		if (held_insert(c, t) == 0)
			/* R2Ts may go before its turn; execution waits for it. */
			task_scsi_resume(t);
		return;
	}
	t->ordered = true;
	if (!imm)
		cmdsn_advance(c);
	task_scsi_resume(t);
	if (c->sess.held || c->sess.parked)
		held_drain(c);
}
