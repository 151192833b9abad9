/* test_iscsi_tmf.c — task management across sessions and reactors, over the
 * fake transport with a RAM LUN: two engine reactors driven by hand (messages
 * between them run as deferred calls), bdev completions held back to keep
 * I/O in flight while a TMF is processed.
 *
 * Session A lives on reactor 0, session B on reactor 1, both logged in to
 * FX_TARGET (different ISIDs: two I_T nexuses). */
#include <unistd.h>

#include "iscsi_fake.h"

#define LUN1 1

static const char *const keys[] = { "InitialR2T=No", "ImmediateData=Yes",
				    "MaxRecvDataSegmentLength=262144",
				    "FirstBurstLength=65536", "MaxBurstLength=262144", NULL };

/* ---- helpers ---- */

static void cmd_bhs(struct fake *f, uint8_t *bhs, uint8_t flags, const uint8_t *cdb,
		    uint32_t edtl, uint32_t dlen, uint32_t cmdsn)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_SCSI_CMD;
	bhs[1] = flags | 1;                    /* SIMPLE */
	put_be24(bhs + BHS_DLEN, dlen);
	iscsi_lun_encode(LUN1, bhs + BHS_LUN);
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_EDTL, edtl);
	put_be32(bhs + BHS_CMDSN, cmdsn);
	put_be32(bhs + BHS_EXPSTATSN, f->expstatsn);
	memcpy(bhs + BHS_CDB, cdb, 16);
}

/* READ(10) of 64 blocks at CmdSN sn; returns its ITT. The I/O stays in
 * flight until the bdev queue pairs are polled. */
static uint32_t send_read_sn(struct fake *f, uint32_t sn)
{
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16] = { 0x28 };

	put_be32(cdb + 2, 0);
	put_be16(cdb + 7, 64);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, cdb, 64 * 512, 0, sn);
	fx_recv(f, bhs, NULL, 0);
	return f->itt;
}

static uint32_t send_read(struct fake *f)
{
	return send_read_sn(f, f->cmdsn++);
}

/* WRITE(10) of 16 blocks with 4 KiB of immediate data and the rest still
 * to come as unsolicited Data-Out: the task waits for data. */
static uint32_t send_write_waiting(struct fake *f)
{
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16] = { 0x2a }, data[4096];

	memset(data, 0x5a, sizeof(data));
	put_be32(cdb + 2, 100);
	put_be16(cdb + 7, 16);
	cmd_bhs(f, bhs, ISCSI_CMD_WRITE, cdb, 16 * 512, sizeof(data), f->cmdsn++);
	fx_recv(f, bhs, data, sizeof(data));
	return f->itt;
}

static uint32_t send_cdb_sn(struct fake *f, const uint8_t *cdb, const void *out,
			    uint32_t out_len, uint32_t sn)
{
	uint8_t bhs[ISCSI_BHS_LEN];

	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | (out_len ? ISCSI_CMD_WRITE : 0), cdb, out_len,
		out_len, sn);
	fx_recv(f, bhs, out, out_len);
	return f->itt;
}

static uint32_t send_tur_sn(struct fake *f, uint32_t sn)
{
	uint8_t cdb[16] = { 0 };

	return send_cdb_sn(f, cdb, NULL, 0, sn);
}

static uint32_t send_tmf(struct fake *f, uint8_t func, uint64_t lun, uint32_t rtt,
			 uint32_t ref, uint32_t cmdsn)
{
	uint8_t bhs[ISCSI_BHS_LEN];

	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_TMF_REQ | ISCSI_FLAG_IMMEDIATE;
	bhs[1] = ISCSI_FLAG_FINAL | func;
	iscsi_lun_encode(lun, bhs + BHS_LUN);
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_TTT, rtt);
	put_be32(bhs + BHS_CMDSN, cmdsn);
	put_be32(bhs + BHS_EXPSTATSN, f->expstatsn);
	put_be32(bhs + BHS_REFCMDSN, ref);
	fx_recv(f, bhs, NULL, 0);
	return f->itt;
}

/* What the reactors do on their next turns, but with every bdev I/O still
 * in flight: messages and deferred calls run, queued PDUs are written. */
static void turn(struct fake *a, struct fake *b)
{
	do {
		fake_flush(a);
		if (b)
			fake_flush(b);
	} while (iscsi_run_deferred());
}

/* Everything completes. */
static void settle(struct fake *a, struct fake *b)
{
	for (int i = 0; i < 1000; i++) {
		unsigned inflight;
		int n = fx_poll_bdev(&inflight);

		n += (int)iscsi_run_deferred();
		fake_flush(a);
		if (b)
			fake_flush(b);
		if (n == 0 && inflight == 0 && a->nq == 0 && (!b || b->nq == 0))
			break;
	}
}

static const struct cap *find_itt(const struct fake *f, uint8_t op, uint32_t itt)
{
	for (unsigned i = 0; i < f->ncap; i++)
		if (bhs_opcode(f->cap[i].bhs) == op && get_be32(f->cap[i].bhs + BHS_ITT) == itt)
			return &f->cap[i];
	return NULL;
}

/* Nothing at all was sent for the task. */
static bool silent(const struct fake *f, uint32_t itt)
{
	return !find_itt(f, ISCSI_OP_SCSI_RSP, itt) && !find_itt(f, ISCSI_OP_DATA_IN, itt) &&
	       !find_itt(f, ISCSI_OP_R2T, itt);
}

static int tmf_response(const struct fake *f, uint32_t itt)
{
	const struct cap *c = find_itt(f, ISCSI_OP_TMF_RSP, itt);

	return c ? c->bhs[2] : -1;
}

/* The status of a command; the sense key/ASC/ASCQ packed as 0xKKAAQQ in
 * *sense (0 when there is none). -1 if no response yet. */
static int status_of(const struct fake *f, uint32_t itt, unsigned *sense)
{
	const struct cap *c = find_itt(f, ISCSI_OP_SCSI_RSP, itt);

	*sense = 0;
	if (!c) {
		c = find_itt(f, ISCSI_OP_DATA_IN, itt);
		for (unsigned i = 0; i < f->ncap; i++) {
			const struct cap *d = &f->cap[i];

			if (bhs_opcode(d->bhs) == ISCSI_OP_DATA_IN &&
			    get_be32(d->bhs + BHS_ITT) == itt && (d->bhs[1] & ISCSI_DATAIN_STATUS))
				return d->bhs[3];
		}
		return -1;
	}
	if (c->len >= 2 + 14) {
		const uint8_t *s = c->data + 2;

		*sense = (unsigned)(s[2] & 0x0f) << 16 | (unsigned)s[12] << 8 | s[13];
	}
	return c->bhs[3];
}

/* Logs in on reactor rid and clears the POWER ON unit attention. */
static struct fake *session(unsigned rid, uint8_t isid)
{
	struct fake *f = fx_login_normal_on(rid, isid, keys);
	unsigned sense;
	uint32_t itt = send_tur_sn(f, f->cmdsn++);

	fx_pump(f);
	assert_int_equal(status_of(f, itt, &sense), SAM_STAT_CHECK_CONDITION);
	assert_int_equal(sense, 0x062900);
	fx_free_caps(f);
	return f;
}

/* TEST UNIT READY now; returns its status, sense in *sense. */
static int tur(struct fake *f, struct fake *other, unsigned *sense)
{
	uint32_t itt = send_tur_sn(f, f->cmdsn++);

	settle(f, other);
	return status_of(f, itt, sense);
}

static void bye(struct fake *f)
{
	if (!f->closed)
		iscsi_conn_xport_failed(f->conn, 0);
	fx_pump(f);
	assert_true(f->closed);
	fx_free_caps(f);
	free(f);
}

/* Everything is gone: connections, aborted tasks, waiters, sweeps. */
static void no_connections_left(void)
{
	for (unsigned rid = 0; rid < 2; rid++) {
		struct iscsi_reactor *ir = iscsi_reactor_of(rid);

		assert_int_equal(ir->nconns, 0);
		assert_null(ir->aborting);
		assert_null(ir->waiters);
		assert_int_equal(ir->sweeps_out, 0);
	}
}

/* ---- tests ---- */

/* LU RESET from A aborts B's tasks on the other reactor: B hears nothing of
 * them and gets 29h/03h next; A's response waits for B's I/O. */
static void test_lu_reset_across_reactors(void **state)
{
	struct fake *a = session(0, 1), *b = session(1, 2);
	uint32_t b_read, b_write, a_read, tmf, itt;
	unsigned sense;

	(void)state;
	b_read = send_read(b);
	b_write = send_write_waiting(b);
	a_read = send_read(a);
	tmf = send_tmf(a, 5, LUN1, TTT_NONE, 0, a->cmdsn);
	turn(a, b);
	/* Every affected task is aborted, the reads' I/O still runs: no answer yet. */
	assert_int_equal(tmf_response(a, tmf), -1);
	assert_int_equal(iscsi_reactor_of(1)->aborting != NULL, true);
	assert_null(task_find(b->conn, b_write));
	settle(a, b);
	assert_int_equal(tmf_response(a, tmf), 0);
	assert_true(silent(a, a_read));
	assert_true(silent(b, b_read));
	assert_true(silent(b, b_write));
	/* Late data of the aborted write is dropped without a word. */
	{
		uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_DATA_OUT }, data[4096] = { 0 };

		bhs[1] = ISCSI_FLAG_FINAL;
		put_be24(bhs + BHS_DLEN, sizeof(data));
		put_be32(bhs + BHS_ITT, b_write);
		put_be32(bhs + BHS_TTT, TTT_NONE);
		put_be32(bhs + BHS_DATASN, 0);
		put_be32(bhs + BHS_BUFOFF, 4096);
		fx_recv(b, bhs, data, sizeof(data));
		settle(a, b);
		assert_false(b->closed);
	}
	/* Both nexuses see the reset; then the LU works again. */
	assert_int_equal(tur(b, a, &sense), SAM_STAT_CHECK_CONDITION);
	assert_int_equal(sense, 0x062903);
	assert_int_equal(tur(a, b, &sense), SAM_STAT_CHECK_CONDITION);
	assert_int_equal(sense, 0x062903);
	itt = send_read(b);
	settle(a, b);
	assert_int_equal(status_of(b, itt, &sense), SAM_STAT_GOOD);
	bye(a);
	bye(b);
	no_connections_left();
}

/* Commands B sends after the reset was processed are new tasks, even if
 * the sweep reaches B's reactor after them. */
static void test_lu_reset_spares_later_commands(void **state)
{
	struct fake *a = session(0, 1), *b = session(1, 2);
	uint32_t tmf, t, r;
	unsigned sense;

	(void)state;
	tmf = send_tmf(a, 5, LUN1, TTT_NONE, 0, a->cmdsn);
	usleep(20);        /* arrival times are compared in microseconds */
	/* The sweep message has not reached reactor 1 yet. */
	t = send_tur_sn(b, b->cmdsn++);
	r = send_read(b);
	settle(a, b);
	assert_int_equal(tmf_response(a, tmf), 0);
	/* The first one saw the reset's unit attention, the next one ran. */
	assert_int_equal(status_of(b, t, &sense), SAM_STAT_CHECK_CONDITION);
	assert_int_equal(sense, 0x062903);
	assert_int_equal(status_of(b, r, &sense), SAM_STAT_GOOD);
	bye(a);
	bye(b);
	no_connections_left();
}

/* ABORT TASK SET and ABORT TASK stay within the issuing session. */
static void test_abort_task_set_is_per_session(void **state)
{
	struct fake *a = session(0, 1), *b = session(1, 2);
	uint32_t a1, a2, b1, tmf;
	unsigned sense;

	(void)state;
	a1 = send_read(a);
	a2 = send_read(a);
	b1 = send_read(b);
	tmf = send_tmf(a, 1, LUN1, a1, 0, a->cmdsn);      /* ABORT TASK a1 */
	turn(a, b);
	assert_int_equal(tmf_response(a, tmf), -1);    /* a1's I/O runs */
	settle(a, b);
	assert_int_equal(tmf_response(a, tmf), 0);
	assert_true(silent(a, a1));
	assert_int_equal(status_of(a, a2, &sense), SAM_STAT_GOOD);
	assert_int_equal(status_of(b, b1, &sense), SAM_STAT_GOOD);

	a1 = send_read(a);
	b1 = send_read(b);
	tmf = send_tmf(a, 2, LUN1, TTT_NONE, 0, a->cmdsn); /* ABORT TASK SET */
	turn(a, b);
	settle(a, b);
	assert_int_equal(tmf_response(a, tmf), 0);
	assert_true(silent(a, a1));
	assert_int_equal(status_of(b, b1, &sense), SAM_STAT_GOOD);
	/* No unit attention for anyone. */
	assert_int_equal(tur(b, a, &sense), SAM_STAT_GOOD);
	assert_int_equal(tur(a, b, &sense), SAM_STAT_GOOD);
	bye(a);
	bye(b);
	no_connections_left();
}

/* CLEAR TASK SET clears every session's tasks on the LU; the others get
 * COMMANDS CLEARED BY ANOTHER INITIATOR. */
static void test_clear_task_set(void **state)
{
	struct fake *a = session(0, 1), *b = session(1, 2);
	uint32_t a1, b1, tmf;
	unsigned sense;

	(void)state;
	a1 = send_read(a);
	b1 = send_read(b);
	tmf = send_tmf(a, 4, LUN1, TTT_NONE, 0, a->cmdsn);
	turn(a, b);
	settle(a, b);
	assert_int_equal(tmf_response(a, tmf), 0);
	assert_true(silent(a, a1));
	assert_true(silent(b, b1));
	assert_int_equal(tur(b, a, &sense), SAM_STAT_CHECK_CONDITION);
	assert_int_equal(sense, 0x062f00);
	assert_int_equal(tur(a, b, &sense), SAM_STAT_GOOD);
	bye(a);
	bye(b);
	no_connections_left();
}

/* An immediate ABORT TASK SET waits for the commands below its CmdSN; the
 * command ordered after it is not affected. */
static void test_tmf_waits_for_cmdsn_gap(void **state)
{
	struct fake *a = session(0, 1);
	uint32_t n = a->cmdsn, r1, r0, after, tmf;
	unsigned sense;

	(void)state;
	r1 = send_read_sn(a, n + 1);            /* held: CmdSN n is missing */
	after = send_read_sn(a, n + 3);         /* held, after the TMF */
	tmf = send_tmf(a, 2, LUN1, TTT_NONE, 0, n + 2);
	turn(a, NULL);
	settle(a, NULL);
	assert_int_equal(tmf_response(a, tmf), -1);     /* parked */
	assert_int_equal(a->conn->sess.exp_cmd_sn, n);
	r0 = send_read_sn(a, n);                /* the gap fills */
	turn(a, NULL);
	assert_int_equal(tmf_response(a, tmf), -1);     /* the reads' I/O runs */
	settle(a, NULL);
	assert_int_equal(tmf_response(a, tmf), 0);
	assert_true(silent(a, r0));
	assert_true(silent(a, r1));
	/* CmdSN n+2 still belongs to a command of the initiator. */
	assert_int_equal(status_of(a, after, &sense), -1);
	send_tur_sn(a, n + 2);
	settle(a, NULL);
	assert_int_equal(status_of(a, after, &sense), SAM_STAT_GOOD);
	a->cmdsn = n + 4;
	assert_int_equal(tur(a, NULL, &sense), SAM_STAT_GOOD);
	bye(a);
	no_connections_left();
}

/* RFC 7143 §11.6.1 b: a task not received yet, RefCmdSN in the window and
 * below the TMF's CmdSN, is considered received; when it comes it is dropped. */
static void test_abort_task_not_arrived(void **state)
{
	struct fake *a = session(0, 1);
	uint32_t n = a->cmdsn, tmf, t0, t1, t2;
	unsigned sense;

	(void)state;
	tmf = send_tmf(a, 1, LUN1, 0x7777, n + 1, n + 2);
	turn(a, NULL);
	settle(a, NULL);
	assert_int_equal(tmf_response(a, tmf), 0);
	t0 = send_tur_sn(a, n);
	t1 = send_tur_sn(a, n + 1);
	t2 = send_tur_sn(a, n + 2);
	settle(a, NULL);
	assert_int_equal(status_of(a, t0, &sense), SAM_STAT_GOOD);
	assert_true(silent(a, t1));
	assert_int_equal(status_of(a, t2, &sense), SAM_STAT_GOOD);
	assert_int_equal(a->conn->sess.exp_cmd_sn, n + 3);
	/* Outside the window: the task does not exist. */
	tmf = send_tmf(a, 1, LUN1, 0x7778, n - 5, n + 3);
	turn(a, NULL);
	settle(a, NULL);
	assert_int_equal(tmf_response(a, tmf), 1);
	bye(a);
	no_connections_left();
}

/* A target reset plugs the gap: held commands below it are aborted and the
 * missing ones dropped when they come; every session gets 29h/00h. */
static void test_warm_reset_plugs_gap(void **state)
{
	struct fake *a = session(0, 1), *b = session(1, 2);
	uint32_t n = a->cmdsn, held, late, tmf, b1;
	unsigned sense;

	(void)state;
	held = send_read_sn(a, n + 1);
	b1 = send_read(b);
	tmf = send_tmf(a, 6, 0, TTT_NONE, 0, n + 2);
	turn(a, b);
	settle(a, b);
	assert_int_equal(tmf_response(a, tmf), 0);
	assert_int_equal(get_be32(find_itt(a, ISCSI_OP_TMF_RSP, tmf)->bhs + BHS_EXPCMDSN), n + 2);
	assert_true(silent(a, held));
	assert_true(silent(b, b1));
	late = send_tur_sn(a, n);
	settle(a, b);
	assert_true(silent(a, late));
	a->cmdsn = n + 2;
	assert_int_equal(tur(a, b, &sense), SAM_STAT_CHECK_CONDITION);
	assert_int_equal(sense, 0x062900);
	assert_int_equal(tur(b, a, &sense), SAM_STAT_CHECK_CONDITION);
	assert_int_equal(sense, 0x062900);
	bye(a);
	bye(b);
	no_connections_left();
}

/* TARGET COLD RESET: answered, then every session of the target is closed. */
static void test_cold_reset_closes_sessions(void **state)
{
	struct fake *a = session(0, 1), *b = session(1, 2);
	uint32_t tmf, b1;

	(void)state;
	b1 = send_read(b);
	tmf = send_tmf(a, 7, 0, TTT_NONE, 0, a->cmdsn);
	turn(a, b);
	settle(a, b);
	assert_int_equal(tmf_response(a, tmf), 0);
	assert_true(a->closed);
	assert_true(b->closed);
	assert_true(silent(b, b1));
	bye(a);
	bye(b);
	no_connections_left();
}

/* I_T NEXUS RESET: this session's tasks on every LU are aborted, the
 * response waits for them, then the session closes; B is untouched. */
static void test_it_nexus_reset(void **state)
{
	struct fake *a = session(0, 1), *b = session(1, 2);
	uint32_t a1, b1, tmf;
	unsigned sense;

	(void)state;
	a1 = send_read(a);
	b1 = send_read(b);
	tmf = send_tmf(a, 11, 0, TTT_NONE, 0, a->cmdsn);
	turn(a, b);
	assert_int_equal(tmf_response(a, tmf), -1);
	assert_false(a->closed);
	settle(a, b);
	assert_int_equal(tmf_response(a, tmf), 0);
	assert_true(a->closed);
	assert_true(silent(a, a1));
	assert_int_equal(status_of(b, b1, &sense), SAM_STAT_GOOD);
	assert_int_equal(tur(b, a, &sense), SAM_STAT_GOOD);
	bye(a);
	bye(b);
	no_connections_left();
}

static void test_query_and_unsupported(void **state)
{
	struct fake *a = session(0, 1);
	uint32_t r, q1, q2, q3, q4, t;

	(void)state;
	r = send_read(a);
	q1 = send_tmf(a, 9, LUN1, r, 0, a->cmdsn);        /* QUERY TASK: there */
	q2 = send_tmf(a, 10, LUN1, TTT_NONE, 0, a->cmdsn); /* QUERY TASK SET: busy */
	turn(a, NULL);
	assert_int_equal(tmf_response(a, q1), 7);
	assert_int_equal(tmf_response(a, q2), 7);
	settle(a, NULL);
	q3 = send_tmf(a, 9, LUN1, r, 0, a->cmdsn);        /* done: gone */
	q4 = send_tmf(a, 10, LUN1, TTT_NONE, 0, a->cmdsn);
	turn(a, NULL);
	settle(a, NULL);
	assert_int_equal(tmf_response(a, q3), 0);
	assert_int_equal(tmf_response(a, q4), 0);
	t = send_tmf(a, 3, LUN1, TTT_NONE, 0, a->cmdsn);  /* CLEAR ACA */
	turn(a, NULL);
	settle(a, NULL);
	assert_int_equal(tmf_response(a, t), 5);
	t = send_tmf(a, 12, LUN1, TTT_NONE, 0, a->cmdsn); /* QUERY ASYNC EVENT */
	turn(a, NULL);
	settle(a, NULL);
	assert_int_equal(tmf_response(a, t), 5);
	t = send_tmf(a, 42, LUN1, TTT_NONE, 0, a->cmdsn);
	turn(a, NULL);
	settle(a, NULL);
	assert_int_equal(tmf_response(a, t), 5);
	t = send_tmf(a, 8, LUN1, r, 0, a->cmdsn);         /* TASK REASSIGN at ERL 0 */
	turn(a, NULL);
	settle(a, NULL);
	assert_int_equal(tmf_response(a, t), 4);
	t = send_tmf(a, 5, 9, TTT_NONE, 0, a->cmdsn);     /* LU RESET, no such LU */
	turn(a, NULL);
	settle(a, NULL);
	assert_int_equal(tmf_response(a, t), 2);
	t = send_tmf(a, 4, 9, TTT_NONE, 0, a->cmdsn);
	turn(a, NULL);
	settle(a, NULL);
	assert_int_equal(tmf_response(a, t), 2);
	assert_false(a->closed);
	bye(a);
	no_connections_left();
}

/* The issuing connection drops while its TMF waits for another reactor's
 * I/O; the other session's connection drops while its aborted I/O runs. */
static void test_connections_drop_during_sweep(void **state)
{
	struct fake *a = session(0, 1), *b = session(1, 2), *c;
	uint32_t b1, tmf;

	(void)state;
	b1 = send_read(b);
	tmf = send_tmf(a, 5, LUN1, TTT_NONE, 0, a->cmdsn);
	turn(a, b);
	iscsi_conn_xport_failed(a->conn, -ECONNRESET);
	iscsi_conn_xport_failed(b->conn, -ECONNRESET);
	settle(a, b);
	assert_int_equal(tmf_response(a, tmf), -1);
	assert_true(silent(b, b1));
	bye(a);
	bye(b);
	no_connections_left();

	/* And the engine keeps working. */
	c = session(1, 3);
	b1 = send_read(c);
	tmf = send_tmf(c, 5, LUN1, TTT_NONE, 0, c->cmdsn);
	turn(c, NULL);
	settle(c, NULL);
	assert_int_equal(tmf_response(c, tmf), 0);
	assert_true(silent(c, b1));
	bye(c);
	no_connections_left();
}

/* PERSISTENT RESERVE OUT helpers (SPC-4 6.16): 24-byte parameter list. */
static uint32_t prout(struct fake *f, uint8_t sa, uint8_t type, uint64_t key, uint64_t sakey)
{
	uint8_t cdb[16] = { 0x5f }, param[24] = { 0 };

	cdb[1] = sa;
	cdb[2] = type;
	put_be32(cdb + 5, sizeof(param));
	put_be64(param, key);
	put_be64(param + 8, sakey);
	return send_cdb_sn(f, cdb, param, sizeof(param), f->cmdsn++);
}

/* PREEMPT AND ABORT: B's tasks on the LU are aborted; A's PERSISTENT RESERVE
 * OUT completes only after they are gone. */
static void test_preempt_and_abort(void **state)
{
	struct fake *a = session(0, 1), *b = session(1, 2);
	uint32_t itt, b1, b2, a1, pr;
	unsigned sense;

	(void)state;
	itt = prout(a, 0, 0, 0, 0xaaaa);               /* REGISTER */
	settle(a, b);
	assert_int_equal(status_of(a, itt, &sense), SAM_STAT_GOOD);
	itt = prout(b, 0, 0, 0, 0xbbbb);
	settle(a, b);
	assert_int_equal(status_of(b, itt, &sense), SAM_STAT_GOOD);
	itt = prout(b, 1, 1, 0xbbbb, 0);               /* RESERVE, WRITE EXCLUSIVE */
	settle(a, b);
	assert_int_equal(status_of(b, itt, &sense), SAM_STAT_GOOD);
	fx_free_caps(a);
	fx_free_caps(b);

	b1 = send_read(b);
	b2 = send_write_waiting(b);
	a1 = send_read(a);                              /* A's own task is not preempted */
	pr = prout(a, 5, 1, 0xaaaa, 0xbbbb);           /* PREEMPT AND ABORT */
	turn(a, b);
	assert_int_equal(status_of(a, pr, &sense), -1);  /* B's read still runs */
	settle(a, b);
	assert_int_equal(status_of(a, pr, &sense), SAM_STAT_GOOD);
	assert_true(silent(b, b1));
	assert_true(silent(b, b2));
	assert_int_equal(status_of(a, a1, &sense), SAM_STAT_GOOD);
	assert_int_equal(tur(b, a, &sense), SAM_STAT_CHECK_CONDITION);
	assert_int_equal(sense >> 8, 0x062a);          /* REGISTRATIONS / RESERVATIONS PREEMPTED */
	itt = prout(a, 2, 1, 0xaaaa, 0);                /* RELEASE */
	settle(a, b);
	assert_int_equal(status_of(a, itt, &sense), SAM_STAT_GOOD);
	itt = prout(a, 0, 0, 0xaaaa, 0);                /* unregister */
	settle(a, b);
	assert_int_equal(status_of(a, itt, &sense), SAM_STAT_GOOD);
	bye(a);
	bye(b);
	no_connections_left();
}

static int setup(void **state)
{
	(void)state;
	fx_copy_reads = true;      /* the tests abort reads whose I/O is in flight */
	return fx_setup_n(2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lu_reset_across_reactors),
		cmocka_unit_test(test_lu_reset_spares_later_commands),
		cmocka_unit_test(test_abort_task_set_is_per_session),
		cmocka_unit_test(test_clear_task_set),
		cmocka_unit_test(test_tmf_waits_for_cmdsn_gap),
		cmocka_unit_test(test_abort_task_not_arrived),
		cmocka_unit_test(test_warm_reset_plugs_gap),
		cmocka_unit_test(test_cold_reset_closes_sessions),
		cmocka_unit_test(test_it_nexus_reset),
		cmocka_unit_test(test_query_and_unsupported),
		cmocka_unit_test(test_connections_drop_during_sweep),
		cmocka_unit_test(test_preempt_and_abort),
	};

	return cmocka_run_group_tests(tests, setup, fx_teardown);
}
