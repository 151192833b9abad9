/* test_iscsi_ffp.c — full feature phase over a fake transport with a RAM LUN:
 * READ/WRITE with immediate data, unsolicited Data-Out, R2T sequences, the
 * CmdSN window, NOP, residuals, TMF ABORT TASK, logout, protocol errors. */
#include "iscsi_fake.h"

#define LUN1 1

static void cmd_bhs(struct fake *f, uint8_t *bhs, uint8_t flags, const uint8_t *cdb,
		    uint32_t edtl, uint32_t dlen)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_SCSI_CMD;
	bhs[1] = flags | 1;                    /* SIMPLE */
	put_be24(bhs + BHS_DLEN, dlen);
	iscsi_lun_encode(LUN1, bhs + BHS_LUN);
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_EDTL, edtl);
	put_be32(bhs + BHS_CMDSN, f->cmdsn++);
	put_be32(bhs + BHS_EXPSTATSN, f->expstatsn);
	memcpy(bhs + BHS_CDB, cdb, 16);
}

static void rw10(uint8_t *cdb, uint8_t op, uint32_t lba, uint16_t blocks)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	put_be32(cdb + 2, lba);
	put_be16(cdb + 7, blocks);
}

static void data_out(struct fake *f, uint32_t itt, uint32_t ttt, uint32_t datasn,
		     uint32_t off, const uint8_t *data, uint32_t len, bool final)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_DATA_OUT };

	bhs[1] = final ? ISCSI_FLAG_FINAL : 0;
	put_be24(bhs + BHS_DLEN, len);
	iscsi_lun_encode(LUN1, bhs + BHS_LUN);
	put_be32(bhs + BHS_ITT, itt);
	put_be32(bhs + BHS_TTT, ttt);
	put_be32(bhs + BHS_EXPSTATSN, f->expstatsn);
	put_be32(bhs + BHS_DATASN, datasn);
	put_be32(bhs + BHS_BUFOFF, off);
	fx_recv(f, bhs, data, len);
}

/* Last captured PDU with this opcode. */
static const struct cap *last_op(struct fake *f, uint8_t op)
{
	for (unsigned i = f->ncap; i-- > 0;)
		if (bhs_opcode(f->cap[i].bhs) == op)
			return &f->cap[i];
	return NULL;
}

static unsigned count_op(struct fake *f, uint8_t op)
{
	unsigned n = 0;

	for (unsigned i = 0; i < f->ncap; i++)
		n += bhs_opcode(f->cap[i].bhs) == op;
	return n;
}

static void pattern(uint8_t *buf, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

/* READ(10) and returns the reassembled Data-In (checks DataSN and offsets). */
static uint32_t read_blocks(struct fake *f, uint32_t lba, uint16_t blocks, uint8_t *out,
			    uint32_t edtl, uint8_t *status)
{
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16];
	uint32_t got = 0, datasn = 0, itt;

	fx_free_caps(f);
	rw10(cdb, 0x28, lba, blocks);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, cdb, edtl, 0);
	itt = f->itt;
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	*status = 0xff;
	for (unsigned i = 0; i < f->ncap; i++) {
		const struct cap *c = &f->cap[i];

		assert_int_equal(get_be32(c->bhs + BHS_ITT), itt);
		if (bhs_opcode(c->bhs) == ISCSI_OP_DATA_IN) {
			assert_int_equal(get_be32(c->bhs + BHS_DATASN), datasn++);
			assert_int_equal(get_be32(c->bhs + BHS_BUFOFF), got);
			memcpy(out + got, c->data, c->len);
			got += c->len;
			if (c->bhs[1] & ISCSI_DATAIN_STATUS)
				*status = c->bhs[3];
		} else if (bhs_opcode(c->bhs) == ISCSI_OP_SCSI_RSP) {
			*status = c->bhs[3];
		}
	}
	return got;
}

/* Logs in and clears the POWER ON unit attention with a TEST UNIT READY. */
static struct fake *login_ready(const char *const *keys)
{
	struct fake *f = fx_login_normal(keys);
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16] = { 0 };

	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL, cdb, 0, 0);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->ncap, 1);
	fx_free_caps(f);
	return f;
}

static const char *const fast_keys[] = { "InitialR2T=No", "ImmediateData=Yes",
					 "MaxRecvDataSegmentLength=8192",
					 "FirstBurstLength=65536", "MaxBurstLength=262144", NULL };

static void test_write_read_immediate(void **state)
{
	struct fake *f = login_ready(fast_keys);
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16], buf[4096], back[8192], st;
	const struct cap *c;
	uint32_t got;

	(void)state;
	/* The first command sees the POWER ON unit attention: clear it. */
	memset(cdb, 0, 16);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL, cdb, 0, 0);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	fx_free_caps(f);

	pattern(buf, sizeof(buf), 1);
	rw10(cdb, 0x2a, 8, 8);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, cdb, 4096, 4096);
	fx_recv(f, bhs, buf, 4096);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_SCSI_RSP);
	assert_non_null(c);
	assert_int_equal(c->bhs[3], SAM_STAT_GOOD);
	assert_int_equal(c->bhs[1] & (ISCSI_RSP_OVERFLOW | ISCSI_RSP_UNDERFLOW), 0);
	assert_int_equal(count_op(f, ISCSI_OP_R2T), 0);

	/* 4 KiB in 8 KiB PDUs... and 8 KiB read back in two PDUs. */
	got = read_blocks(f, 8, 8, back, 4096, &st);
	assert_int_equal(got, 4096);
	assert_int_equal(st, SAM_STAT_GOOD);
	assert_memory_equal(back, buf, 4096);
	/* Phase collapse: status in the last Data-In, no SCSI Response. */
	assert_int_equal(count_op(f, ISCSI_OP_SCSI_RSP), 0);

	got = read_blocks(f, 0, 16, back, 8192, &st);
	assert_int_equal(got, 8192);
	assert_int_equal(count_op(f, ISCSI_OP_DATA_IN), 1);
	assert_memory_equal(back + 4096, buf, 4096);
	fx_disconnect(f);
}

static void test_unsolicited_and_r2t(void **state)
{
	const char *keys[] = { "InitialR2T=No", "ImmediateData=Yes",
			       "MaxRecvDataSegmentLength=8192", "FirstBurstLength=8192",
			       "MaxBurstLength=8192", "MaxOutstandingR2T=1", NULL };
	struct fake *f = login_ready(keys);
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16], st;
	static uint8_t buf[32768], back[32768];
	uint32_t itt, next = 0;
	const struct cap *c;

	(void)state;
	memset(cdb, 0, 16);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL, cdb, 0, 0);    /* eat the UA */
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	fx_free_caps(f);

	pattern(buf, sizeof(buf), 3);
	/* 32 KiB: 2 KiB immediate + 6 KiB unsolicited, then 3 R2Ts of 8 KiB. */
	rw10(cdb, 0x2a, 100, 64);
	cmd_bhs(f, bhs, ISCSI_CMD_WRITE, cdb, 32768, 2048);   /* F=0: Data-Out follows */
	itt = f->itt;
	fx_recv(f, bhs, buf, 2048);
	data_out(f, itt, TTT_NONE, 0, 2048, buf + 2048, 4096, false);
	data_out(f, itt, TTT_NONE, 1, 6144, buf + 6144, 2048, true);
	fx_pump(f);
	next = 8192;
	for (int r = 0; r < 3; r++) {
		c = last_op(f, ISCSI_OP_R2T);
		assert_non_null(c);
		assert_int_equal(count_op(f, ISCSI_OP_R2T), 1);    /* MaxOutstandingR2T=1 */
		assert_int_equal(get_be32(c->bhs + BHS_DATASN), (uint32_t)r);  /* R2TSN */
		assert_int_equal(get_be32(c->bhs + BHS_BUFOFF), next);
		assert_int_equal(get_be32(c->bhs + BHS_RESID), 8192);
		uint32_t ttt = get_be32(c->bhs + BHS_TTT);

		fx_free_caps(f);
		data_out(f, itt, ttt, 0, next, buf + next, 4096, false);
		data_out(f, itt, ttt, 1, next + 4096, buf + next + 4096, 4096, true);
		fx_pump(f);
		next += 8192;
	}
	c = last_op(f, ISCSI_OP_SCSI_RSP);
	assert_non_null(c);
	assert_int_equal(c->bhs[3], SAM_STAT_GOOD);
	assert_int_equal(get_be32(c->bhs + BHS_DATASN), 3);       /* ExpDataSN: 3 R2Ts */
	assert_int_equal(read_blocks(f, 100, 64, back, 32768, &st), 32768);
	assert_int_equal(st, SAM_STAT_GOOD);
	assert_memory_equal(back, buf, 32768);
	/* MaxBurstLength 8 KiB: Data-In has F at each 8 KiB boundary. */
	unsigned finals = 0;

	for (unsigned i = 0; i < f->ncap; i++)
		finals += bhs_opcode(f->cap[i].bhs) == ISCSI_OP_DATA_IN &&
			  (f->cap[i].bhs[1] & ISCSI_FLAG_FINAL);
	assert_int_equal(finals, 4);
	fx_disconnect(f);
}

static void test_bad_data_out(void **state)
{
	const char *keys[] = { "InitialR2T=Yes", "ImmediateData=No",
			       "MaxRecvDataSegmentLength=8192", NULL };
	struct fake *f = login_ready(keys);
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16], buf[4096] = { 0 };
	const struct cap *c;

	(void)state;
	rw10(cdb, 0x2a, 0, 8);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, cdb, 4096, 0);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_R2T);
	assert_non_null(c);
	/* DataSN 27 instead of 0: the command fails (ABORTED COMMAND, DATA PHASE
	 * ERROR), the connection stays. */
	uint32_t itt = f->itt, ttt = get_be32(c->bhs + BHS_TTT);

	fx_free_caps(f);
	data_out(f, itt, ttt, 27, 0, buf, 4096, true);
	fx_pump(f);
	assert_false(f->closed);
	c = last_op(f, ISCSI_OP_SCSI_RSP);
	assert_non_null(c);
	assert_int_equal(get_be32(c->bhs + BHS_ITT), itt);
	assert_int_equal(c->bhs[3], SAM_STAT_CHECK_CONDITION);
	assert_int_equal(c->data[2 + 2] & 0x0f, SK_ABORTED_COMMAND);
	assert_int_equal(c->data[2 + 12], 0x4b);
	/* A late Data-Out for it is discarded; the session goes on. */
	data_out(f, itt, ttt, 0, 0, buf, 4096, true);
	fx_pump(f);
	assert_false(f->closed);
	assert_null(task_find(f->conn, itt));

	/* Data beyond what the R2T asked for: TOO MUCH WRITE DATA. */
	fx_free_caps(f);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, cdb, 4096, 0);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_R2T);
	assert_non_null(c);
	ttt = get_be32(c->bhs + BHS_TTT);
	data_out(f, f->itt, ttt, 0, 0, buf, 4096, false);
	data_out(f, f->itt, ttt, 1, 4096, buf, 512, true);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_SCSI_RSP);
	assert_non_null(c);
	assert_int_equal(c->bhs[3], SAM_STAT_CHECK_CONDITION);
	assert_false(f->closed);
	fx_disconnect(f);
}

static void test_residuals(void **state)
{
	struct fake *f = login_ready(fast_keys);
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16], back[8192], st;
	const struct cap *c;

	(void)state;
	memset(cdb, 0, 16);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL, cdb, 0, 0);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);

	/* One block read, EDTL 200: 200 bytes sent, overflow 312. */
	assert_int_equal(read_blocks(f, 0, 1, back, 200, &st), 200);
	c = last_op(f, ISCSI_OP_DATA_IN);
	assert_true(c->bhs[1] & ISCSI_DATAIN_STATUS);
	assert_true(c->bhs[1] & ISCSI_RSP_OVERFLOW);
	assert_int_equal(get_be32(c->bhs + BHS_RESID), 312);

	/* One block read, EDTL 10000: underflow 10000 - 512. */
	assert_int_equal(read_blocks(f, 0, 1, back, 10000, &st), 512);
	c = last_op(f, ISCSI_OP_DATA_IN);
	assert_true(c->bhs[1] & ISCSI_RSP_UNDERFLOW);
	assert_int_equal(get_be32(c->bhs + BHS_RESID), 10000 - 512);

	/* EDTL 0: no data at all, a SCSI Response with overflow 512. */
	assert_int_equal(read_blocks(f, 0, 1, back, 0, &st), 0);
	c = last_op(f, ISCSI_OP_SCSI_RSP);
	assert_non_null(c);
	assert_true(c->bhs[1] & ISCSI_RSP_OVERFLOW);
	assert_int_equal(get_be32(c->bhs + BHS_RESID), 512);
	fx_disconnect(f);
}

static void test_cmdsn_window(void **state)
{
	struct fake *f = login_ready(fast_keys);
	uint8_t bhs1[ISCSI_BHS_LEN], bhs2[ISCSI_BHS_LEN], cdb[16] = { 0 };
	uint32_t exp = f->cmdsn;

	(void)state;
	/* Beyond MaxCmdSN: dropped silently. */
	f->cmdsn = exp + 1000;
	cmd_bhs(f, bhs1, ISCSI_FLAG_FINAL, cdb, 0, 0);
	fx_recv(f, bhs1, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->ncap, 0);
	/* Below ExpCmdSN (a duplicate): dropped too. */
	f->cmdsn = exp - 1;
	cmd_bhs(f, bhs1, ISCSI_FLAG_FINAL, cdb, 0, 0);
	fx_recv(f, bhs1, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->ncap, 0);

	/* exp+1 arrives first and waits for exp; then both run, in order. */
	f->cmdsn = exp;
	cmd_bhs(f, bhs1, ISCSI_FLAG_FINAL, cdb, 0, 0);
	cmd_bhs(f, bhs2, ISCSI_FLAG_FINAL, cdb, 0, 0);
	fx_recv(f, bhs2, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->ncap, 0);
	assert_int_equal(f->conn->sess.nheld, 1);
	fx_recv(f, bhs1, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->ncap, 2);
	assert_int_equal(get_be32(f->cap[0].bhs + BHS_ITT), get_be32(bhs1 + BHS_ITT));
	assert_int_equal(get_be32(f->cap[1].bhs + BHS_ITT), get_be32(bhs2 + BHS_ITT));
	assert_int_equal(get_be32(f->cap[1].bhs + BHS_EXPCMDSN), exp + 2);
	/* The window moves on as tasks end: both tasks answered here are still
	 * open (each is freed once its response is written), so two less. */
	assert_int_equal(get_be32(f->cap[1].bhs + BHS_MAXCMDSN),
			 exp + 2 + iscsi_opts_cur.queue_depth - 1 - 2);
	/* StatSN advances by one per response. */
	assert_int_equal(get_be32(f->cap[1].bhs + BHS_STATSN),
			 get_be32(f->cap[0].bhs + BHS_STATSN) + 1);
	fx_disconnect(f);
}

/* An initiator that stops reading: its responses stay queued, its tasks stay
 * open, and once queue_depth of them are open the window is closed — even a
 * command at ExpCmdSN is dropped, so lichd holds no more buffers for it. When
 * the responses are written the window opens again. */
static void test_cmdsn_window_closes(void **state)
{
	struct fake *f = login_ready(fast_keys);
	uint32_t depth = iscsi_opts_cur.queue_depth;
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16];
	unsigned inflight;

	(void)state;
	f->hdr_only = true;
	rw10(cdb, 0x28, 0, 1);
	for (uint32_t i = 0; i < depth; i++) {
		cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, cdb, 512, 0);
		fx_recv(f, bhs, NULL, 0);
	}
	/* the reactor's turns, but nothing written */
	for (int i = 0; i < 100; i++) {
		int moved = fx_poll_bdev(&inflight) + (int)iscsi_run_deferred();

		if (!moved && !inflight)
			break;
	}
	assert_int_equal(f->conn->ntasks, depth);
	assert_true(sn_lt(f->conn->sess.max_cmd_sn, f->conn->sess.exp_cmd_sn));
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, cdb, 512, 0);
	fx_recv(f, bhs, NULL, 0);
	assert_int_equal(f->conn->ntasks, depth);      /* dropped: no task */
	fx_pump(f);                                     /* the responses go out */
	assert_int_equal(f->ncap, depth);
	assert_int_equal(f->conn->ntasks, 0);
	assert_int_equal(f->conn->sess.max_cmd_sn, f->conn->sess.exp_cmd_sn + depth - 1);
	/* the dropped CmdSN is the one expected now: sent again, it runs */
	f->cmdsn--;
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, cdb, 512, 0);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->ncap, depth + 1);
	assert_int_equal(get_be32(f->cap[depth].bhs + BHS_ITT), get_be32(bhs + BHS_ITT));
	fx_disconnect(f);
}

static void test_nop(void **state)
{
	struct fake *f = login_ready(NULL);
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_OUT | ISCSI_FLAG_IMMEDIATE, ISCSI_FLAG_FINAL };
	const char ping[] = "ping-data-12345";
	const struct cap *c;

	(void)state;
	put_be24(bhs + BHS_DLEN, sizeof(ping));
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_TTT, TTT_NONE);
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	fx_recv(f, bhs, ping, sizeof(ping));
	fx_pump(f);
	c = last_op(f, ISCSI_OP_NOP_IN);
	assert_non_null(c);
	assert_int_equal(get_be32(c->bhs + BHS_ITT), f->itt);
	assert_int_equal(get_be32(c->bhs + BHS_TTT), TTT_NONE);
	assert_int_equal(c->len, sizeof(ping));
	assert_memory_equal(c->data, ping, sizeof(ping));

	/* Idle: the target pings; an answer clears it, silence drops the conn. */
	fx_free_caps(f);
	uint64_t t0 = f->conn->last_rx_us;

	conn_tick(f->conn, t0 + 6000000ull);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_NOP_IN);
	assert_non_null(c);
	assert_int_equal(get_be32(c->bhs + BHS_ITT), ITT_RESERVED);
	uint32_t ttt = get_be32(c->bhs + BHS_TTT);

	assert_int_not_equal(ttt, TTT_NONE);
	memset(bhs, 0, sizeof(bhs));
	bhs[0] = ISCSI_OP_NOP_OUT | ISCSI_FLAG_IMMEDIATE;
	bhs[1] = ISCSI_FLAG_FINAL;
	put_be32(bhs + BHS_ITT, ITT_RESERVED);
	put_be32(bhs + BHS_TTT, ttt);
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	fx_recv(f, bhs, NULL, 0);
	assert_false(f->conn->ping_out);
	conn_tick(f->conn, f->conn->last_rx_us + 6000000ull);
	assert_true(f->conn->ping_out);
	conn_tick(f->conn, f->conn->ping_sent_us + 6000000ull);
	assert_true(f->closed);
	fx_disconnect(f);
}

static void tmf_bhs(struct fake *f, uint8_t *bhs, uint8_t func, uint32_t rtt, uint32_t ref)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_TMF_REQ | ISCSI_FLAG_IMMEDIATE;
	bhs[1] = ISCSI_FLAG_FINAL | func;
	iscsi_lun_encode(LUN1, bhs + BHS_LUN);
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_TTT, rtt);
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	put_be32(bhs + BHS_REFCMDSN, ref);
}

static void test_tmf_abort(void **state)
{
	const char *keys[] = { "InitialR2T=Yes", "ImmediateData=No", NULL };
	struct fake *f = login_ready(keys);
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16], buf[4096] = { 0 };
	uint32_t witt, wsn, ttt;
	const struct cap *c;

	(void)state;
	/* A write waiting for its R2T data is aborted: no response for it. */
	rw10(cdb, 0x2a, 0, 8);
	wsn = f->cmdsn;
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, cdb, 4096, 0);
	witt = f->itt;
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_R2T);
	assert_non_null(c);
	ttt = get_be32(c->bhs + BHS_TTT);
	fx_free_caps(f);
	tmf_bhs(f, bhs, 1, witt, wsn);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->ncap, 1);
	c = &f->cap[0];
	assert_int_equal(bhs_opcode(c->bhs), ISCSI_OP_TMF_RSP);
	assert_int_equal(c->bhs[2], 0);                   /* function complete */
	assert_null(task_find(f->conn, witt));
	/* Its data arriving late is dropped quietly. */
	data_out(f, witt, ttt, 0, 0, buf, 4096, true);
	fx_pump(f);
	assert_false(f->closed);
	assert_int_equal(f->ncap, 1);

	/* Unknown task, RefCmdSN below the window: task does not exist. */
	tmf_bhs(f, bhs, 1, 0x9999, wsn);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->cap[f->ncap - 1].bhs[2], 1);
	/* Unknown task, RefCmdSN in the window but not below the (immediate)
	 * TMF's own CmdSN: no such task can have been sent. */
	tmf_bhs(f, bhs, 1, 0x9998, f->cmdsn + 1);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->cap[f->ncap - 1].bhs[2], 1);
	/* (RefCmdSN in the window below the TMF's CmdSN: test_iscsi_tmf.c) */
	/* LUN RESET of an unknown LUN. */
	tmf_bhs(f, bhs, 5, 0, 0);
	iscsi_lun_encode(9, bhs + BHS_LUN);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->cap[f->ncap - 1].bhs[2], 2);
	/* CLEAR ACA: not supported. */
	tmf_bhs(f, bhs, 3, 0, 0);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	assert_int_equal(f->cap[f->ncap - 1].bhs[2], 5);
	fx_disconnect(f);
}

static void test_logout_and_reject(void **state)
{
	struct fake *f = login_ready(NULL);
	uint8_t bhs[ISCSI_BHS_LEN];
	const struct cap *c;

	(void)state;
	/* SNACK at ERL 0 and an unknown opcode: Reject, connection stays. */
	memset(bhs, 0, sizeof(bhs));
	bhs[0] = ISCSI_OP_SNACK;
	bhs[1] = ISCSI_FLAG_FINAL;
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_REJECT);
	assert_non_null(c);
	assert_int_equal(c->len, ISCSI_BHS_LEN);
	assert_int_equal(c->data[0], ISCSI_OP_SNACK);
	bhs[0] = 0x1c;
	put_be32(bhs + BHS_ITT, 5);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_REJECT);
	assert_int_equal(c->bhs[2], ISCSI_REJECT_CMD_NOT_SUPPORTED);
	assert_false(f->closed);

	/* Remove-connection-for-recovery is not supported at ERL 0. */
	memset(bhs, 0, sizeof(bhs));
	bhs[0] = ISCSI_OP_LOGOUT_REQ | ISCSI_FLAG_IMMEDIATE;
	bhs[1] = ISCSI_FLAG_FINAL | 2;
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_LOGOUT_RSP);
	assert_int_equal(c->bhs[2], 2);
	assert_false(f->closed);
	/* Close the session. */
	bhs[1] = ISCSI_FLAG_FINAL | 0;
	put_be32(bhs + BHS_ITT, ++f->itt);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_LOGOUT_RSP);
	assert_int_equal(c->bhs[2], 0);
	assert_int_equal(get_be32(c->bhs + BHS_ITT), f->itt);
	assert_true(f->closed);
	fx_disconnect(f);
}

/* A garbage DataSegmentLength is caught before anything is allocated. */
static void test_garbage_header(void **state)
{
	struct fake *f = login_ready(NULL);
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_SCSI_CMD, ISCSI_FLAG_FINAL };

	(void)state;
	put_be24(bhs + BHS_DLEN, 0xffffff);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	assert_true(f->closed);
	fx_disconnect(f);
}

/* Dropping a connection with I/O in flight frees everything only after the
 * I/O completed. */
static void test_drop_inflight(void **state)
{
	struct fake *f = login_ready(fast_keys);
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16];

	(void)state;
	rw10(cdb, 0x28, 0, 64);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, cdb, 32768, 0);
	fx_recv(f, bhs, NULL, 0);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, cdb, 32768, 0);
	fx_recv(f, bhs, NULL, 0);
	iscsi_conn_xport_failed(f->conn, -ECONNRESET);
	assert_true(f->closed);
	fx_disconnect(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read_immediate),
		cmocka_unit_test(test_unsolicited_and_r2t),
		cmocka_unit_test(test_bad_data_out),
		cmocka_unit_test(test_residuals),
		cmocka_unit_test(test_cmdsn_window),
		cmocka_unit_test(test_cmdsn_window_closes),
		cmocka_unit_test(test_nop),
		cmocka_unit_test(test_tmf_abort),
		cmocka_unit_test(test_logout_and_reject),
		cmocka_unit_test(test_garbage_header),
		cmocka_unit_test(test_drop_inflight),
	};

	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
