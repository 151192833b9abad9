/* test_scsi_harness.h — drives src/scsi like a transport would: a real memory
 * pool, real ram bdevs and a qp polled by hand (no reactor), and helpers that
 * run one command through prepare / (data-out) / exec / completion. */
#ifndef TEST_SCSI_HARNESS_H
#define TEST_SCSI_HARNESS_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "bdev/bdev.h"
#include "core/log.h"
#include "mem/pool.h"
#include "scsi/scsi.h"

#define TGT_NAME "iqn.2026-11.org.lich:test"

struct env {
	struct mem_pool *pool;
	struct bdev_qp *qp;
	struct bdev *bdev[4];
	struct scsi_target *tgt;
	struct scsi_nexus n1, n2;
	bool any_mem;              /* tasks get data_in_any_mem (TCP-like transport) */
};

static struct env E;

static struct bdev *ram_bdev(const char *name, uint64_t size, uint32_t bs)
{
	struct bdev_opts o = { .type = BDEV_TYPE_RAM, .path = name, .size = size, .block_size = bs };
	struct bdev *b = NULL;
	assert_int_equal(bdev_open(&o, &b), 0);
	return b;
}

static void nexus_init(struct scsi_nexus *n, const char *iname, const char *isid)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->initiator_name, sizeof(n->initiator_name), "%s", iname);
	snprintf(n->initiator_port, sizeof(n->initiator_port), "%s,i,0x%s", iname, isid);
	n->rel_port_id = 1;
	n->tpgt = 1;
}

static int done_count;

static void on_done(struct scsi_task *t)
{
	(*(int *)t->priv)++;
}

/* Runs one command. dout/dlen: what the initiator sends (may be shorter than
 * the command wants). Returns prepare's result (DONE/EXEC) or -ENOMEM. */
static int run_cmd(struct scsi_task *t, struct scsi_nexus *n, uint64_t lun, const uint8_t *cdb,
		   unsigned cdblen, const void *dout, uint32_t dlen)
{
	scsi_task_init(t);
	t->target = E.tgt;
	t->nexus = n;
	t->lun = lun;
	memcpy(t->cdb, cdb, cdblen);
	t->cdb_len = 16 > cdblen ? 16 : (uint8_t)cdblen;
	t->attr = SCSI_ATTR_SIMPLE;
	t->pool = E.pool;
	t->qp = E.qp;
	t->done = on_done;
	done_count = 0;
	t->priv = &done_count;
	t->data_in_any_mem = E.any_mem;
	t->exp_xfer_len = dlen;
	int rc = scsi_task_prepare(t);
	if (rc != SCSI_TASK_EXEC)
		return rc;
	if (t->data_out_len) {
		uint32_t n2 = dlen < t->data_out_len ? dlen : t->data_out_len;
		uint32_t off = 0;
		const uint8_t *s = dout;
		for (int i = 0; i < t->iovcnt && off < n2; i++) {
			uint32_t l = (uint32_t)t->iov[i].iov_len;
			if (l > n2 - off)
				l = n2 - off;
			memcpy(t->iov[i].iov_base, s + off, l);
			off += l;
		}
		if (n2 < t->data_out_len)
			t->data_out_got = n2;
	}
	scsi_task_exec(t);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (done_count == 0) {
		bdev_qp_poll(E.qp);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 20)
			fail_msg("command %02x never completed", cdb[0]);
	}
	assert_int_equal(done_count, 1);
	return rc;
}

/* Runs a command and releases it; returns the status; copies sense/data out. */
struct result {
	uint8_t status;
	uint8_t key, asc, ascq;
	uint8_t sense[SCSI_SENSE_MAX];
	uint8_t sense_len;
	uint32_t len;
	uint8_t *data;             /* malloc'ed copy of Data-In (len bytes) */
	bool mapped;               /* Data-In was the bdev's memory (bdev_read_map) */
};

static struct result cmdn(struct scsi_nexus *n, uint64_t lun, const uint8_t *cdb, unsigned cdblen,
			  const void *dout, uint32_t dlen)
{
	struct scsi_task *t = calloc(1, sizeof(*t));
	struct result r;
	memset(&r, 0, sizeof(r));
	int rc = run_cmd(t, n, lun, cdb, cdblen, dout, dlen);
	assert_true(rc == SCSI_TASK_DONE || rc == SCSI_TASK_EXEC);
	r.status = t->status;
	r.sense_len = t->sense_len;
	memcpy(r.sense, t->sense, sizeof(r.sense));
	if (t->sense_len >= 14) {
		r.key = t->sense[2] & 0x0f;
		r.asc = t->sense[12];
		r.ascq = t->sense[13];
	}
	r.len = t->data_in_len;
	r.mapped = t->iov_mapped;
	r.data = calloc(1, r.len + 1);
	uint32_t off = 0;
	for (int i = 0; i < t->iovcnt && off < r.len; i++) {
		uint32_t l = (uint32_t)t->iov[i].iov_len;
		if (l > r.len - off)
			l = r.len - off;
		memcpy(r.data + off, t->iov[i].iov_base, l);
		off += l;
	}
	scsi_task_release(t);
	free(t);
	return r;
}

#define CMD(lun, ...) ({ const uint8_t _c[] = { __VA_ARGS__ }; \
	cmdn(&E.n1, lun, _c, sizeof(_c), NULL, 0); })
#define CMD_N(nx, lun, ...) ({ const uint8_t _c[] = { __VA_ARGS__ }; \
	cmdn(nx, lun, _c, sizeof(_c), NULL, 0); })
#define CMD_OUT(lun, dout, dlen, ...) ({ const uint8_t _c[] = { __VA_ARGS__ }; \
	cmdn(&E.n1, lun, _c, sizeof(_c), dout, dlen); })

static void free_result(struct result *r)
{
	free(r->data);
	r->data = NULL;
}

#define assert_good(r) do { struct result _r = (r); \
	if (_r.status != SAM_STAT_GOOD) \
		fail_msg("status %02x sense %x/%02x/%02x", _r.status, _r.key, _r.asc, _r.ascq); \
	free_result(&_r); } while (0)

#define assert_sense(r, k, a, q) do { struct result _r = (r); \
	if (_r.status != SAM_STAT_CHECK_CONDITION || _r.key != (k) || _r.asc != (a) || _r.ascq != (q)) \
		fail_msg("status %02x sense %x/%02x/%02x, wanted %x/%02x/%02x", _r.status, _r.key, \
			 _r.asc, _r.ascq, (k), (a), (q)); \
	free_result(&_r); } while (0)

#define assert_invalid_cdb(r) assert_sense(r, SK_ILLEGAL_REQUEST, 0x24, 0x00)
#define assert_lba_oob(r) assert_sense(r, SK_ILLEGAL_REQUEST, 0x21, 0x00)

/* Field pointer of an ILLEGAL REQUEST fixed sense, -1 if SKSV is clear. */
static int field_pointer(const struct result *r)
{
	if (!(r->sense[15] & 0x80))
		return -1;
	return r->sense[16] << 8 | r->sense[17];
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* Clears the unit attentions of n on lun (TEST UNIT READY until GOOD). */
static void clear_ua(struct scsi_nexus *n, uint64_t lun)
{
	for (int i = 0; i < 20; i++) {
		struct result r = CMD_N(n, lun, 0x00, 0, 0, 0, 0, 0);
		int st = r.status, key = r.key;
		free_result(&r);
		if (st == SAM_STAT_GOOD)
			return;
		assert_int_equal(key, SK_UNIT_ATTENTION);
	}
	fail_msg("unit attentions do not clear");
}

static struct scsi_lu_opts lu_opts(unsigned lun, struct bdev *b)
{
	struct scsi_lu_opts o = {
		.lun = lun, .bdev = b, .vendor = "LICHTEST", .product = "UNIT DISK",
		.revision = "0.1", .write_cache = true,
	};
	return o;
}

/* One target, LUN 0 (ram, 8 MiB, 512 B blocks) and LUN 1 (ram, 4 MiB, 4 KiB
 * blocks), nexuses n1 and n2 attached with their UAs cleared. */
static int env_setup(void **state)
{
	(void)state;
	log_init(LOG_LVL_ERR, 0);
	struct mem_pool_opts po = { .name = "scsi-test", .limit = 64u << 20, .numa_node = -1,
				    .no_hugepages = true };
	memset(&E, 0, sizeof(E));
	E.pool = mem_pool_create(&po);
	assert_non_null(E.pool);
	E.qp = bdev_qp_create(NULL, 64);
	assert_non_null(E.qp);
	E.bdev[0] = ram_bdev("ram0", 8u << 20, 512);
	E.bdev[1] = ram_bdev("ram1", 4u << 20, 4096);
	E.tgt = scsi_target_create(TGT_NAME, 1);
	assert_non_null(E.tgt);
	struct scsi_lu_opts o0 = lu_opts(0, E.bdev[0]);
	assert_int_equal(scsi_target_add_lu(E.tgt, &o0), 0);
	struct scsi_lu_opts o1 = lu_opts(1, E.bdev[1]);
	o1.serial = "SERIAL-ONE";
	assert_int_equal(scsi_target_add_lu(E.tgt, &o1), 0);
	nexus_init(&E.n1, "iqn.2026-11.org.lich:init1", "023d00000001");
	nexus_init(&E.n2, "iqn.2026-11.org.lich:init2", "023d00000002");
	assert_int_equal(scsi_nexus_attach(E.tgt, &E.n1), 0);
	assert_int_equal(scsi_nexus_attach(E.tgt, &E.n2), 0);
	clear_ua(&E.n1, 0);
	clear_ua(&E.n1, 1);
	clear_ua(&E.n2, 0);
	clear_ua(&E.n2, 1);
	return 0;
}

static int env_teardown(void **state)
{
	(void)state;
	scsi_nexus_detach(E.tgt, &E.n1);
	scsi_nexus_detach(E.tgt, &E.n2);
	scsi_target_destroy(E.tgt);
	bdev_qp_destroy(E.qp);
	for (int i = 0; i < 4; i++)
		if (E.bdev[i])
			bdev_close(E.bdev[i]);
	mem_pool_destroy(E.pool);
	return 0;
}

#endif
