/* iscsi_fake.h — a fake in-memory transport and a RAM-backed target for the
 * engine's unit tests (test_iscsi_*.c). Single threaded: the reactor is set up
 * (reactors_init) but never run; bdev completions are pumped by hand. */
#ifndef TEST_ISCSI_FAKE_H
#define TEST_ISCSI_FAKE_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "bdev/bdev.h"
#include "conf/conf.h"
#include "core/log.h"
#include "core/reactor.h"
#include "iscsi/iscsi.h"
#include "iscsi/pdu.h"
#include "mem/pool.h"
#include "net/transport.h"
#include "scsi/scsi.h"
#include "../../src/iscsi/internal.h"

#define FX_TARGET   "iqn.2024-01.org.lich:test1"
#define FX_HIDDEN   "iqn.2024-01.org.lich:hidden"
#define FX_INIT     "iqn.2024-01.org.lich:init1"
#define FX_LUN_SIZE (4u << 20)
#define FX_MAX_CAP  512
#define FAKE_MAXQ   FX_MAX_CAP

struct cap {                    /* a PDU the engine sent */
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t *data;
	uint32_t len;
};

struct fake {
	struct xport_conn xc;
	struct iscsi_conn *conn;
	bool closed;
	struct iscsi_pdu *q[FAKE_MAXQ];
	unsigned nq;
	struct cap cap[FX_MAX_CAP];
	unsigned ncap;
	uint32_t cmdsn, itt, expstatsn;
	uint8_t isid_lo;                /* last ISID byte; 0 means 1 */
	unsigned placed;                /* data segments received zero-copy */
	bool hdr_only;                  /* capture headers only (no malloc per PDU) */
};

static struct {
	struct bdev *bdev;
	struct conf_target hidden_conf;
	char *hidden_names[1];
} fx_g;

static void fake_capture(struct fake *f, struct iscsi_pdu *p)
{
	struct cap *c;

	if (f->ncap == FX_MAX_CAP)
		return;
	c = &f->cap[f->ncap++];
	memcpy(c->bhs, p->bhs, ISCSI_BHS_LEN);
	c->len = p->data_len;
	if (f->hdr_only) {
		c->data = NULL;
		return;
	}
	c->data = p->data_len ? malloc(p->data_len) : NULL;
	if (p->data_iovcnt > 0) {
		uint32_t off = 0;

		for (int i = 0; i < p->data_iovcnt; i++) {
			memcpy(c->data + off, p->data_iov[i].iov_base, p->data_iov[i].iov_len);
			off += (uint32_t)p->data_iov[i].iov_len;
		}
		assert_int_equal(off, p->data_len);
	} else if (p->data_len) {
		memcpy(c->data, p->data, p->data_len);
	}
}

/* What the fake transport writes is captured. */
static void fake_written(struct fake *f, struct iscsi_pdu *p)
{
	fake_capture(f, p);
}

#include "fake_xport.h"

static struct iscsi_reactor *fx_ir(void)
{
	return iscsi_reactor_of(0);
}

/* Completes bdev I/O on every reactor's queue pair; returns how many. */
static __attribute__((unused)) int fx_poll_bdev(unsigned *inflight)
{
	return fake_poll_bdev(inflight);
}

/* Completes bdev I/O, runs the engine's deferred calls and messages (what
 * the reactors do on their next turns) and writes out queued PDUs until
 * nothing moves. */
static __attribute__((unused)) void fx_pump(struct fake *f)
{
	for (int i = 0; i < 1000; i++)
		if (!fake_pump_once(f))
			break;
}

/* A connection arriving on reactor rid (its engine context must be started). */
static __attribute__((unused)) struct fake *fx_connect_on(unsigned rid)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fake_connect(f, rid), 0);
	f->itt = 0x100;
	return f;
}

static __attribute__((unused)) struct fake *fx_connect(void)
{
	return fx_connect_on(0);
}

static __attribute__((unused)) void fx_free_caps(struct fake *f)
{
	for (unsigned i = 0; i < f->ncap; i++)
		free(f->cap[i].data);
	f->ncap = 0;
}

/* Closes (if needed) and frees the fake; the engine conn must be gone. */
static __attribute__((unused)) void fx_disconnect(struct fake *f)
{
	if (!f->closed)
		iscsi_conn_xport_failed(f->conn, 0);
	fx_pump(f);
	assert_true(f->closed);
	fx_free_caps(f);
	free(f);
	assert_int_equal(fx_ir()->nconns, 0);
}

/* Hands one PDU to the engine as the TCP transport would. */
static __attribute__((unused)) void fx_recv(struct fake *f, const uint8_t *bhs, const void *data, uint32_t len)
{
	assert_false(f->closed);
	assert_int_equal(fake_recv(f, bhs, NULL, data, len, false), 0);
}

/* key=value\0 text from a NULL-terminated list of "key=value" strings. */
static __attribute__((unused)) uint32_t fx_text(char *buf, size_t cap, ...)
{
	va_list ap;
	uint32_t len = 0;
	const char *s;

	va_start(ap, cap);
	while ((s = va_arg(ap, const char *))) {
		size_t l = strlen(s) + 1;

		assert_true(len + l <= cap);
		memcpy(buf + len, s, l);
		len += (uint32_t)l;
	}
	va_end(ap);
	return len;
}

/* Value of key in a captured text data segment, or NULL. */
static __attribute__((unused)) const char *fx_key(const struct cap *c, const char *key)
{
	size_t kl = strlen(key);

	for (uint32_t off = 0; off < c->len;) {
		const char *kv = (const char *)c->data + off;
		size_t l = strnlen(kv, c->len - off);

		if (l > kl && strncmp(kv, key, kl) == 0 && kv[kl] == '=')
			return kv + kl + 1;
		off += (uint32_t)l + 1;
	}
	return NULL;
}

static __attribute__((unused)) void fx_login_bhs(struct fake *f, uint8_t *bhs, uint8_t flags, uint16_t tsih,
			 uint32_t dlen)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_LOGIN_REQ | ISCSI_FLAG_IMMEDIATE;
	bhs[1] = flags;
	put_be24(bhs + BHS_DLEN, dlen);
	bhs[8] = 0x80;                  /* ISID: random type */
	bhs[13] = f->isid_lo ? f->isid_lo : 0x01;
	put_be16(bhs + BHS_TSIH, tsih);
	put_be32(bhs + BHS_ITT, f->itt);
	put_be16(bhs + BHS_TTT, 1);     /* CID */
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	put_be32(bhs + BHS_EXPSTATSN, f->expstatsn);
}

/* Sends one login request; returns the captured response (last PDU). */
static __attribute__((unused)) const struct cap *fx_login_step(struct fake *f, uint8_t flags, const char *text,
				       uint32_t len)
{
	uint8_t bhs[ISCSI_BHS_LEN];
	unsigned before = f->ncap;

	fx_login_bhs(f, bhs, flags, 0, len);
	fx_recv(f, bhs, text, len);
	fx_pump(f);
	assert_int_equal(f->ncap, before + 1);
	f->expstatsn = get_be32(f->cap[f->ncap - 1].bhs + BHS_STATSN) + 1;
	return &f->cap[f->ncap - 1];
}

static __attribute__((unused)) uint16_t fx_status(const struct cap *c)
{
	return (uint16_t)(c->bhs[36] << 8 | c->bhs[37]);
}

#define STAGE(csg, nsg, t) ((uint8_t)((t ? ISCSI_LOGIN_TRANSIT : 0) | (csg) << 2 | (nsg)))

/* Full login of a normal session on reactor rid, ISID ending in isid_lo,
 * with extra operational keys. */
static __attribute__((unused)) struct fake *fx_login_normal_on(unsigned rid, uint8_t isid_lo,
								const char *const *op_keys)
{
	struct fake *f = fx_connect_on(rid);
	char text[4096];
	uint32_t len;
	const struct cap *c;

	f->isid_lo = isid_lo;
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "TargetName=" FX_TARGET,
		      "SessionType=Normal", "AuthMethod=None", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	len = 0;
	for (int i = 0; op_keys && op_keys[i]; i++) {
		size_t l = strlen(op_keys[i]) + 1;

		memcpy(text + len, op_keys[i], l);
		len += (uint32_t)l;
	}
	for (int round = 0; round < 3; round++) {
		c = fx_login_step(f, STAGE(1, 3, 1), text, len);
		assert_int_equal(fx_status(c), 0);
		if (c->bhs[1] & ISCSI_LOGIN_TRANSIT)
			break;
		/* The target made offers: accept them as they are. */
		len = 0;
		for (uint32_t off = 0; off < c->len;) {
			const char *kv = (const char *)c->data + off;
			size_t l = strnlen(kv, c->len - off) + 1;

			if (strncmp(kv, "MaxRecvDataSegmentLength=", 25) != 0) {
				memcpy(text + len, kv, l);
				len += (uint32_t)l;
			}
			off += (uint32_t)l;
		}
	}
	assert_true(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	assert_int_equal(ISCSI_LOGIN_NSG(c->bhs[1]), ISCSI_STAGE_FULL);
	assert_int_not_equal(get_be16(c->bhs + BHS_TSIH), 0);
	assert_int_equal(f->conn->state, CONN_FULL);
	f->cmdsn = get_be32(c->bhs + BHS_EXPCMDSN);
	fx_free_caps(f);
	return f;
}

static __attribute__((unused)) struct fake *fx_login_normal(const char *const *op_keys)
{
	return fx_login_normal_on(0, 1, op_keys);
}

/* Set before fx_setup_n by tests that need reads to stay in flight until the
 * queue pair is polled (task management): a RAM LUN otherwise answers a read
 * over TCP at once from its own memory (bdev_read_map), with nothing to abort. */
static __attribute__((unused)) bool fx_copy_reads;

/* Reactors (set up, never run: the tests drive them by hand) with the
 * engine's context on each, a RAM LUN 1 on FX_TARGET and a hidden target. */
static __attribute__((unused)) int fx_setup_n(unsigned nreactors)
{
	struct reactor_opts ro = { .ncores = nreactors, .cores = { -1, -1, -1, -1 },
				   .mode = POLL_SLEEP, .mem_limit = 64u << 20,
				   .no_hugepages = true };
	struct bdev_opts bo = { .type = BDEV_TYPE_RAM, .path = "fx", .size = FX_LUN_SIZE,
				.block_size = 512 };
	struct scsi_lu_opts lo = { .lun = 1, .vendor = "LICH", .product = "TEST",
				   .revision = "0001", .write_cache = true };
	struct iscsi_opts io;
	struct scsi_target *st;

	log_init(getenv("FX_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERR, 0);
	assert_int_equal(reactors_init(&ro), 0);
	iscsi_opts_default(&io);
	io.nop_interval = 5;
	io.nop_timeout = 5;
	assert_int_equal(iscsi_init(&io), 0);
	assert_int_equal(bdev_open(&bo, &fx_g.bdev), 0);
	if (fx_copy_reads)
		fx_g.bdev->can_map = false;
	st = scsi_target_create(FX_TARGET, 1);
	assert_non_null(st);
	lo.bdev = fx_g.bdev;
	assert_int_equal(scsi_target_add_lu(st, &lo), 0);
	assert_int_equal(iscsi_target_add(st, NULL, NULL, NULL), 0);
	/* A target only another initiator may see. */
	st = scsi_target_create(FX_HIDDEN, 1);
	assert_non_null(st);
	fx_g.hidden_names[0] = "iqn.2024-01.org.lich:someone-else";
	fx_g.hidden_conf.name = FX_HIDDEN;
	fx_g.hidden_conf.initiator_names = fx_g.hidden_names;
	fx_g.hidden_conf.n_initiator_names = 1;
	assert_int_equal(iscsi_target_add(st, &fx_g.hidden_conf, NULL, NULL), 0);
	for (unsigned rid = 0; rid < nreactors; rid++)
		assert_int_equal(iscsi_reactor_start(reactor_get(rid)), 0);
	return 0;
}

static __attribute__((unused)) int fx_setup(void **state)
{
	(void)state;
	return fx_setup_n(1);
}

static __attribute__((unused)) int fx_teardown(void **state)
{
	(void)state;
	iscsi_fini();
	bdev_close(fx_g.bdev);
	reactors_fini();
	return 0;
}

#endif
