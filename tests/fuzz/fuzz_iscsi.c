/* fuzz_iscsi.c — the whole iSCSI engine (login, full feature phase, Data-Out,
 * R2T, TMF, Text, logout, Reject) fed a random sequence of PDUs over a fake
 * in-memory transport, with RAM LUNs behind it (single threaded: reactors are
 * set up, never run; bdev completions and deferred calls are pumped by hand,
 * as in tests/unit/iscsi_fake.h).
 *
 * Every input starts on a target as good as fresh (two RAM LUNs) with one new
 * connection, which goes away completely at the end, so inputs do not
 * influence each other (persistent reservations, unit attentions and LUN
 * contents start clean): the target is built once and kept while inputs send
 * only SCSI commands that change no LU state (or ones the target refused
 * before executing them); after any other it is removed and built again
 * (see fuzz_reuse.h). The transport is tests/unit/fake_xport.h, the one the unit
 * tests use, with zero-copy data placement.
 *
 * Input: byte 0 picks a prelude, then records until the input ends:
 *   prelude (byte 0 & 3): 0 none (the input logs in itself), 1 normal login
 *     with ImmediateData/InitialR2T=No and small bursts, 2 normal login with
 *     defaults plus digests, 3 discovery login.
 *   record: ctl(1) BHS(48) AHS(TotalAHSLength*4) data(DataSegmentLength):
 *     exactly what the TCP transport would read; a truncated record ends the
 *     input (the peer went away mid-PDU).
 *   ctl bits (fix-ups that make the PDU land where the engine looks):
 *     0x01 CmdSN = next expected, ExpStatSN = last StatSN + 1
 *     0x02 Data-Out: ITT/TTT/LUN of the last R2T, Buffer Offset relative to
 *          the R2T's (without an R2T yet: ITT/LUN of the last command, TTT
 *          0xffffffff: unsolicited data); TMF: RTT/RefCmdSN/LUN of the last
 *          command
 *     0x04 LUN field = LUN 1
 *     0x08 do not pump after this PDU (several PDUs arrive before the engine
 *          runs the backend completions)
 *     0x10 data digest error (rx_status = Reject data digest)
 *     0x20 ITT = a fresh one
 *     0x40 the transport breaks here (connection reset); input ends
 * Checks: the engine only sends target opcodes with consistent data segment
 * descriptions, the connection and the target go away completely, and the
 * reactor's memory pool is consistent. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bdev/bdev.h"
#include "core/log.h"
#include "core/reactor.h"
#include "iscsi/iscsi.h"
#include "iscsi/pdu.h"
#include "mem/pool.h"
#include "net/transport.h"
#include "scsi/scsi.h"
#include "../../src/iscsi/internal.h"
#include "fuzz_reuse.h"

#define TGT_NAME  "iqn.2024-01.org.lich:fuzz"
#define INIT_NAME "iqn.2024-01.org.lich:init1"
#define FAKE_MAXQ 1024                 /* PDUs queued in the fake transport */

struct fake {
	struct xport_conn xc;           /* first: the engine sees this */
	struct iscsi_conn *conn;
	bool closed;
	struct iscsi_pdu *q[FAKE_MAXQ];
	unsigned nq;
	unsigned placed;                /* data segments placed in task buffers */
	uint32_t cmdsn, itt, expstatsn;
	uint8_t last_r2t[ISCSI_BHS_LEN];
	bool have_r2t;
	uint8_t last_cmd[ISCSI_BHS_LEN];
	uint8_t login_rsp[ISCSI_BHS_LEN];
	char login_text[4096];
	uint32_t login_len;
	unsigned nlogin_rsp;
	/* ITTs of commands that may change LU state and were not (yet) refused
	 * before executing (see fuzz_reuse.h) */
	uint32_t impure_itt[64];
	unsigned nimpure;
};

static bool released;
static bool ready;
static bool tgt_up;                 /* the target is registered */
static bool tgt_dirty;              /* this input may have changed LU state */

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_iscsi: %s:%d: check failed: %s\n", \
			__FILE__, __LINE__, #x); abort(); } } while (0)

/* A command that may change LU state was answered: refused before it did
 * anything (fuzz_reuse.h), it changed nothing after all. */
static void impure_answered(struct fake *f, const struct iscsi_pdu *p)
{
	uint32_t itt = get_be32(p->bhs + BHS_ITT);
	uint8_t status = p->bhs[3];
	uint16_t slen = 0;

	if (p->bhs[2] != 0 || p->data_iovcnt > 0)
		return;                        /* iSCSI response: not completed */
	if (p->data_len >= 2) {
		slen = get_be16(p->data);
		if (slen > p->data_len - 2)
			return;
	}
	if (!fuzz_refused_unexecuted(status, slen ? p->data + 2 : NULL, slen))
		return;
	for (unsigned i = 0; i < f->nimpure; i++)
		if (f->impure_itt[i] == itt) {
			f->impure_itt[i] = f->impure_itt[--f->nimpure];
			return;
		}
}

/* What a transport would do with a PDU it writes: look at every byte. */
static void fake_written(struct fake *f, struct iscsi_pdu *p)
{
	uint8_t op = bhs_opcode(p->bhs);
	volatile uint8_t sink = 0;

	CHECK(op >= 0x20);
	CHECK(bhs_data_len(p->bhs) == p->data_len);
	if (p->data_iovcnt > 0) {
		uint32_t total = 0;

		CHECK(p->data_iovcnt <= 4);
		for (int i = 0; i < p->data_iovcnt; i++) {
			const uint8_t *b = p->data_iov[i].iov_base;

			for (size_t j = 0; j < p->data_iov[i].iov_len; j += 64)
				sink ^= b[j];
			if (p->data_iov[i].iov_len)
				sink ^= b[p->data_iov[i].iov_len - 1];
			total += (uint32_t)p->data_iov[i].iov_len;
		}
		CHECK(total == p->data_len);
	} else if (p->data_len) {
		CHECK(p->data != NULL);
		sink ^= p->data[0];
		sink ^= p->data[p->data_len - 1];
	}
	(void)sink;
	if (op == ISCSI_OP_SCSI_RSP)
		impure_answered(f, p);
	if (op == ISCSI_OP_R2T) {
		memcpy(f->last_r2t, p->bhs, ISCSI_BHS_LEN);
		f->have_r2t = true;
	}
	if (op == ISCSI_OP_LOGIN_RSP) {
		memcpy(f->login_rsp, p->bhs, ISCSI_BHS_LEN);
		f->login_len = 0;
		if (p->data_len <= sizeof(f->login_text) && p->data_iovcnt == 0 && p->data_len) {
			memcpy(f->login_text, p->data, p->data_len);
			f->login_len = p->data_len;
		}
		f->nlogin_rsp++;
	}
	/* responses that carry a StatSN */
	if (op != ISCSI_OP_DATA_IN && op != ISCSI_OP_R2T)
		f->expstatsn = get_be32(p->bhs + BHS_STATSN) + 1;
	if (op == ISCSI_OP_SCSI_RSP || op == ISCSI_OP_LOGIN_RSP || op == ISCSI_OP_TEXT_RSP ||
	    op == ISCSI_OP_NOP_IN || op == ISCSI_OP_TMF_RSP || op == ISCSI_OP_LOGOUT_RSP ||
	    op == ISCSI_OP_R2T || op == ISCSI_OP_DATA_IN || op == ISCSI_OP_REJECT)
		if (sn_gt(get_be32(p->bhs + BHS_EXPCMDSN), f->cmdsn) ||
		    op == ISCSI_OP_LOGIN_RSP)
			f->cmdsn = get_be32(p->bhs + BHS_EXPCMDSN);
}

#include "../unit/fake_xport.h"

static void pump(struct fake *f)
{
	int i;

	for (i = 0; i < 10000; i++)
		if (!fake_pump_once(f))
			break;
	CHECK(i < 10000);                     /* the engine keeps itself busy forever */
}

static void recv_pdu(struct fake *f, const uint8_t *bhs, const uint8_t *ahs,
		     const uint8_t *data, uint32_t len, bool digest_error)
{
	int rc = fake_recv(f, bhs, ahs, data, len, digest_error);

	CHECK(rc != -EPROTO);                 /* placed data must add up */
	if (rc < 0)
		iscsi_conn_xport_failed(f->conn, rc);
}

/* ---- canned logins (prelude) ---- */

static uint32_t text_of(char *buf, const char *const *kv)
{
	uint32_t len = 0;

	for (int i = 0; kv[i]; i++) {
		size_t l = strlen(kv[i]) + 1;

		memcpy(buf + len, kv[i], l);
		len += (uint32_t)l;
	}
	return len;
}

static bool login_step(struct fake *f, uint8_t flags, const char *text, uint32_t len)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };
	unsigned before = f->nlogin_rsp;

	bhs[0] = ISCSI_OP_LOGIN_REQ | ISCSI_FLAG_IMMEDIATE;
	bhs[1] = flags;
	put_be24(bhs + BHS_DLEN, len);
	bhs[8] = 0x80;
	bhs[13] = 0x01;
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be16(bhs + BHS_TTT, 1);
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	put_be32(bhs + BHS_EXPSTATSN, f->expstatsn);
	recv_pdu(f, bhs, NULL, (const uint8_t *)text, len, false);
	pump(f);
	return !f->closed && f->nlogin_rsp == before + 1 && get_be16(f->login_rsp + 36) == 0;
}

#define STAGE(csg, nsg, t) ((uint8_t)((t ? ISCSI_LOGIN_TRANSIT : 0) | (csg) << 2 | (nsg)))

static void prelude(struct fake *f, unsigned kind)
{
	static const char *const sec_normal[] = { "InitiatorName=" INIT_NAME, "TargetName=" TGT_NAME,
		"SessionType=Normal", "AuthMethod=None", NULL };
	static const char *const sec_disc[] = { "InitiatorName=" INIT_NAME,
		"SessionType=Discovery", "AuthMethod=None", NULL };
	static const char *const op_fast[] = { "InitialR2T=No", "ImmediateData=Yes",
		"MaxRecvDataSegmentLength=4096", "FirstBurstLength=8192", "MaxBurstLength=16384",
		"MaxOutstandingR2T=2", NULL };
	static const char *const op_dflt[] = { "HeaderDigest=CRC32C,None", "DataDigest=CRC32C,None",
		"MaxRecvDataSegmentLength=65536", NULL };
	static const char *const op_none[] = { NULL };
	char text[4096];
	uint32_t len;

	len = text_of(text, kind == 3 ? sec_disc : sec_normal);
	if (!login_step(f, STAGE(0, 1, 1), text, len))
		return;
	len = text_of(text, kind == 1 ? op_fast : kind == 2 ? op_dflt : op_none);
	for (int round = 0; round < 3; round++) {
		if (!login_step(f, STAGE(1, 3, 1), text, len))
			return;
		if (f->login_rsp[1] & ISCSI_LOGIN_TRANSIT)
			return;
		/* the target made offers: accept them as they are */
		memcpy(text, f->login_text, f->login_len);
		len = f->login_len;
	}
}

/* ---- the target, per input ---- */

static void release_target(void *arg)
{
	struct bdev **b = arg;

	bdev_close(b[0]);
	bdev_close(b[1]);
	free(b);
	released = true;
}

static void make_target(void)
{
	struct bdev_opts bo0 = { .type = BDEV_TYPE_RAM, .path = "fz0", .size = 1u << 20,
				 .block_size = 512 };
	struct bdev_opts bo1 = { .type = BDEV_TYPE_RAM, .path = "fz1", .size = 256u << 10,
				 .block_size = 4096 };
	struct scsi_lu_opts lo = { .lun = 1, .vendor = "LICH", .product = "FUZZ",
				   .revision = "0001", .write_cache = true };
	struct bdev **b = calloc(2, sizeof(*b));
	struct scsi_target *st;

	CHECK(b);
	CHECK(bdev_open(&bo0, &b[0]) == 0);
	CHECK(bdev_open(&bo1, &b[1]) == 0);
	st = scsi_target_create(TGT_NAME, 1);
	CHECK(st);
	lo.bdev = b[0];
	CHECK(scsi_target_add_lu(st, &lo) == 0);
	lo.lun = 0;
	lo.bdev = b[1];
	lo.write_cache = false;
	CHECK(scsi_target_add_lu(st, &lo) == 0);
	released = false;
	CHECK(iscsi_target_add(st, NULL, release_target, b) == 0);
}

/* FUZZ_REUSE_STATS=1: how often the target had to be built, at exit. */
static unsigned long reuse_builds, reuse_inputs;

static void reuse_stats(void)
{
	fprintf(stderr, "fuzz_%s: %lu inputs, target built %lu times\n", "iscsi",
		reuse_inputs, reuse_builds);
}

static void setup_once(void)
{
	struct reactor_opts ro = { .ncores = 1, .cores = { -1 }, .mode = POLL_SLEEP,
				   .mem_limit = 64u << 20, .no_hugepages = true };
	struct iscsi_opts io;

	log_init(getenv("FUZZ_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERR, 0);
	CHECK(reactors_init(&ro) == 0);
	iscsi_opts_default(&io);
	io.nop_interval = 0;
	io.queue_depth = 32;
	CHECK(iscsi_init(&io) == 0);
	CHECK(iscsi_reactor_start(reactor_get(0)) == 0);
	if (getenv("FUZZ_REUSE_STATS"))
		atexit(reuse_stats);
	ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake *f;

	if (!ready)
		setup_once();
	if (size < 1)
		return 0;
	if (!tgt_up) {
		make_target();
		tgt_up = true;
		reuse_builds++;
	}
	reuse_inputs++;

	f = calloc(1, sizeof(*f));
	CHECK(f);
	CHECK(fake_connect(f, 0) == 0);
	f->itt = 0x100;

	if (data[0] & 3)
		prelude(f, data[0] & 3);
	size_t pos = 1;
	while (!f->closed && pos + 1 + ISCSI_BHS_LEN <= size) {
		uint8_t ctl = data[pos];
		uint8_t bhs[ISCSI_BHS_LEN];
		const uint8_t *ahs, *d;
		uint32_t ahs_len, dlen;

		memcpy(bhs, data + pos + 1, ISCSI_BHS_LEN);
		pos += 1 + ISCSI_BHS_LEN;
		uint8_t op = bhs_opcode(bhs);

		if (ctl & 0x01) {
			put_be32(bhs + BHS_CMDSN, f->cmdsn);
			if (!bhs_immediate(bhs) && op != ISCSI_OP_DATA_OUT && op != ISCSI_OP_SNACK)
				f->cmdsn++;
			put_be32(bhs + BHS_EXPSTATSN, f->expstatsn);
		}
		if (ctl & 0x20)
			put_be32(bhs + BHS_ITT, ++f->itt);
		if (ctl & 0x04) {
			if (op == ISCSI_OP_SCSI_CMD || op == ISCSI_OP_DATA_OUT || op == ISCSI_OP_TMF_REQ ||
			    op == ISCSI_OP_NOP_OUT)
				iscsi_lun_encode(1, bhs + BHS_LUN);
		}
		if (ctl & 0x02) {
			if (op == ISCSI_OP_DATA_OUT && f->have_r2t) {
				memcpy(bhs + BHS_ITT, f->last_r2t + BHS_ITT, 8);   /* ITT + TTT */
				memcpy(bhs + BHS_LUN, f->last_r2t + BHS_LUN, 8);
				/* the PDU's offset is taken relative to the R2T's */
				put_be32(bhs + BHS_BUFOFF, get_be32(bhs + BHS_BUFOFF) +
					 get_be32(f->last_r2t + BHS_BUFOFF));
			} else if (op == ISCSI_OP_TMF_REQ) {
				memcpy(bhs + BHS_TTT, f->last_cmd + BHS_ITT, 4);   /* RTT */
				memcpy(bhs + BHS_REFCMDSN, f->last_cmd + BHS_CMDSN, 4);
				memcpy(bhs + BHS_LUN, f->last_cmd + BHS_LUN, 8);
			} else if (op == ISCSI_OP_DATA_OUT) {
				memcpy(bhs + BHS_ITT, f->last_cmd + BHS_ITT, 4);
				memset(bhs + BHS_TTT, 0xff, 4);
				memcpy(bhs + BHS_LUN, f->last_cmd + BHS_LUN, 8);
			}
		}
		if (op == ISCSI_OP_SCSI_CMD) {
			memcpy(f->last_cmd, bhs, ISCSI_BHS_LEN);
			if (!fuzz_cdb_is_pure(bhs + 32)) {
				if (f->nimpure < sizeof(f->impure_itt) / sizeof(f->impure_itt[0]))
					f->impure_itt[f->nimpure++] = get_be32(bhs + BHS_ITT);
				else
					tgt_dirty = true;
			}
		}

		ahs_len = bhs_ahs_len(bhs);
		dlen = bhs_data_len(bhs);
		if (iscsi_pdu_check_header(bhs, f->xc.max_recv_dsl) < 0) {
			/* the transport drops the connection before reading more */
			recv_pdu(f, bhs, NULL, NULL, 0, false);
			break;
		}
		if (size - pos < ahs_len)
			break;
		ahs = data + pos;
		pos += ahs_len;
		if (size - pos < dlen)
			break;
		d = data + pos;
		pos += dlen;
		if (ctl & 0x40) {
			iscsi_conn_xport_failed(f->conn, -ECONNRESET);
			break;
		}
		recv_pdu(f, bhs, ahs, d, dlen, ctl & 0x10);
		if (!(ctl & 0x08))
			pump(f);
	}

	/* the peer goes away */
	pump(f);
	if (!f->closed)
		iscsi_conn_xport_failed(f->conn, 0);
	pump(f);
	CHECK(f->closed);
	CHECK(f->nq == 0);
	if (iscsi_reactor_of(0)->nconns) {
		/* what keeps a connection alive after its transport went away */
		for (struct iscsi_conn *c = iscsi_reactor_of(0)->conns; c; c = c->next)
			fprintf(stderr, "fuzz_iscsi: conn left: state %d refs %u ntasks %u\n",
				(int)c->state, c->refs, c->ntasks);
	}
	CHECK(iscsi_reactor_of(0)->nconns == 0);
	if (f->nimpure)
		tgt_dirty = true;
	free(f);

	CHECK(iscsi_session_count() == 0);
	if (tgt_dirty) {
		CHECK(iscsi_target_remove(TGT_NAME) == 0);
		pump(NULL);
		CHECK(released);
		tgt_up = tgt_dirty = false;
	}
	CHECK(mem_pool_check(reactor_pool(reactor_get(0))) == 0);
	return 0;
}
