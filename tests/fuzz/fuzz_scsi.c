/* fuzz_scsi.c — the SCSI layer (CDB decoding and emulation in src/scsi,
 * persistent reservations with their parameter lists and APTPL state file)
 * driven like a transport does: scsi_task_prepare / data-out / scsi_task_exec /
 * completion from a RAM bdev's queue pair polled by hand (no reactor; see
 * tests/unit/test_scsi_harness.h).
 *
 * Every input starts on a target as good as fresh: LUN 0 (512 B blocks, 1 MiB,
 * APTPL state file in a private temporary directory) and LUN 1 (4 KiB blocks,
 * 256 KiB), and two fresh I_T nexuses, so inputs do not influence each other.
 * The target is built once and kept while inputs only send commands that
 * change no LU state, and rebuilt after any other (see fuzz_reuse.h).
 *
 * Input: up to 32 records  ctl(1) cdb(16) len(2, big endian) data(len & 0x3fff)
 *   ctl 0x01 second nexus            0x02 LUN 1 (else LUN 0)
 *       0x04 LUN 7 (no such LU)      0x08 do not wait: leave the command in
 *                                         flight (up to 8), with the next ones
 *       0x30 CDB length 6/10/12/16   0x40 R bit   0x80 W bit
 *   len 0x8000 then LOGICAL UNIT RESET by this nexus, 0x4000 I_T NEXUS RESET
 *   data: the Data-Out the initiator sends (may be shorter than wanted);
 *   Expected Data Transfer Length = the 14-bit length as well.
 * Attribute: SIMPLE, ORDERED when bit 0x08 and the CDB's last byte is odd. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "core/log.h"
#include "mem/pool.h"
#include "scsi/scsi.h"
#include "fuzz_reuse.h"

#define TGT_NAME "iqn.2026-11.org.lich:fuzz"
#define MAX_INFLIGHT 8

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_scsi: %s:%d: check failed: %s\n", \
			__FILE__, __LINE__, #x); abort(); } } while (0)

static struct {
	struct mem_pool *pool;
	struct bdev_qp *qp;
	char dir[64];
	char pr_path[96];
	struct bdev *b0, *b1;
	struct scsi_target *tgt;   /* NULL: build before the next input */
	bool dirty;                /* this input may have changed LU state */
} G;

struct slot {
	struct scsi_task t;
	bool busy;             /* prepared, waiting for done */
	bool done;
	bool pure;             /* its CDB changes no LU state */
};

static void on_done(struct scsi_task *t)
{
	struct slot *s = t->priv;

	CHECK(s->busy && !s->done);         /* done exactly once */
	s->done = true;
}

/* at exit: the APTPL state file and its directory go (libFuzzer exits normally) */
static void remove_dir(void)
{
	char tmp[128];

	snprintf(tmp, sizeof(tmp), "%s.tmp", G.pr_path);
	unlink(tmp);
	unlink(G.pr_path);
	rmdir(G.dir);
}

/* FUZZ_REUSE_STATS=1: how often the target had to be built, at exit. */
static unsigned long reuse_builds, reuse_inputs;

static void reuse_stats(void)
{
	fprintf(stderr, "fuzz_%s: %lu inputs, target built %lu times\n", "scsi",
		reuse_inputs, reuse_builds);
}

static void setup_once(void)
{
	struct mem_pool_opts po = { .name = "fuzz-scsi", .limit = 64u << 20, .numa_node = -1,
				    .no_hugepages = true };

	log_init(LOG_LVL_ERR, 0);
	G.pool = mem_pool_create(&po);
	CHECK(G.pool);
	G.qp = bdev_qp_create(NULL, 64);
	CHECK(G.qp);
	snprintf(G.dir, sizeof(G.dir), "/tmp/fuzz_scsi.XXXXXX");
	if (access("/dev/shm", W_OK) == 0)
		snprintf(G.dir, sizeof(G.dir), "/dev/shm/fuzz_scsi.XXXXXX");
	CHECK(mkdtemp(G.dir));
	snprintf(G.pr_path, sizeof(G.pr_path), "%s/lun0.pr", G.dir);
	atexit(remove_dir);
	if (getenv("FUZZ_REUSE_STATS"))
		atexit(reuse_stats);
}

/* Data-In is what a transport would send: read all of it. */
static void consume(const struct scsi_task *t)
{
	volatile uint8_t sink = 0;
	uint32_t left = t->data_in_len;

	CHECK(t->data_in_len <= t->buf_len || t->data_in_len == 0);
	for (int i = 0; i < t->iovcnt && left; i++) {
		const uint8_t *b = t->iov[i].iov_base;
		size_t l = t->iov[i].iov_len < left ? t->iov[i].iov_len : left;

		for (size_t j = 0; j < l; j += 512)
			sink ^= b[j];
		if (l)
			sink ^= b[l - 1];
		left -= (uint32_t)l;
	}
	CHECK(left == 0);
	CHECK(t->sense_len <= SCSI_SENSE_MAX);
	(void)sink;
}

static void finish(struct slot *s)
{
	if (!s->pure && !fuzz_refused_unexecuted(s->t.status, s->t.sense, s->t.sense_len))
		G.dirty = true;
	consume(&s->t);
	scsi_task_release(&s->t);
	s->busy = s->done = false;
}

static void wait_all(struct slot *slots)
{
	for (long spins = 0;; spins++) {
		bool busy = false;

		for (int i = 0; i < MAX_INFLIGHT; i++) {
			if (slots[i].busy && slots[i].done)
				finish(&slots[i]);
			busy |= slots[i].busy;
		}
		if (!busy)
			return;
		CHECK(spins < 1000000);          /* a command never completes */
		bdev_qp_poll(G.qp);
	}
}

static void nexus_init(struct scsi_nexus *n, const char *iname, const char *isid)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->initiator_name, sizeof(n->initiator_name), "%s", iname);
	snprintf(n->initiator_port, sizeof(n->initiator_port), "%s,i,0x%s", iname, isid);
	n->rel_port_id = 1;
	n->tpgt = 1;
}

static void target_build(void)
{
	struct bdev_opts bo0 = { .type = BDEV_TYPE_RAM, .path = "fs0", .size = 1u << 20, .block_size = 512 };
	struct bdev_opts bo1 = { .type = BDEV_TYPE_RAM, .path = "fs1", .size = 256u << 10, .block_size = 4096 };
	struct scsi_lu_opts lo = { .vendor = "LICH", .product = "FUZZ", .revision = "0001",
				   .write_cache = true };

	unlink(G.pr_path);
	CHECK(bdev_open(&bo0, &G.b0) == 0);
	CHECK(bdev_open(&bo1, &G.b1) == 0);
	G.tgt = scsi_target_create(TGT_NAME, 1);
	CHECK(G.tgt);
	lo.lun = 0;
	lo.bdev = G.b0;
	lo.pr_file = G.pr_path;
	CHECK(scsi_target_add_lu(G.tgt, &lo) == 0);
	lo.lun = 1;
	lo.bdev = G.b1;
	lo.pr_file = NULL;
	lo.serial = "SERIAL-ONE";
	lo.write_cache = false;
	CHECK(scsi_target_add_lu(G.tgt, &lo) == 0);
}

static void target_drop(void)
{
	scsi_target_destroy(G.tgt);
	bdev_close(G.b0);
	bdev_close(G.b1);
	G.tgt = NULL;
	G.b0 = G.b1 = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t cdb_lens[4] = { 6, 10, 12, 16 };
	struct scsi_target *tgt;
	struct scsi_nexus nx[2];
	struct slot *slots;

	if (!G.pool)
		setup_once();
	if (!G.tgt) {
		target_build();
		reuse_builds++;
	}
	reuse_inputs++;
	tgt = G.tgt;
	G.dirty = false;
	nexus_init(&nx[0], "iqn.2026-11.org.lich:init1", "023d00000001");
	nexus_init(&nx[1], "iqn.2026-11.org.lich:init2", "023d00000002");
	CHECK(scsi_nexus_attach(tgt, &nx[0]) == 0);
	CHECK(scsi_nexus_attach(tgt, &nx[1]) == 0);
	slots = calloc(MAX_INFLIGHT, sizeof(*slots));
	CHECK(slots);

	size_t pos = 0;
	for (int rec = 0; rec < 32 && pos + 19 <= size; rec++) {
		uint8_t ctl = data[pos];
		const uint8_t *cdb = data + pos + 1;
		uint16_t lenf = (uint16_t)(data[pos + 17] << 8 | data[pos + 18]);
		uint32_t dlen = lenf & 0x3fff;
		struct scsi_nexus *n = &nx[ctl & 1];
		struct slot *s = NULL;

		pos += 19;
		if (dlen > size - pos)
			dlen = (uint32_t)(size - pos);
		const uint8_t *dout = data + pos;
		pos += dlen;

		for (int i = 0; i < MAX_INFLIGHT && !s; i++)
			if (!slots[i].busy)
				s = &slots[i];
		if (!s) {
			wait_all(slots);
			s = &slots[0];
		}
		struct scsi_task *t = &s->t;

		scsi_task_init(t);
		t->target = tgt;
		t->nexus = n;
		t->lun = (ctl & 4) ? 7 : (ctl & 2) ? 1 : 0;
		memcpy(t->cdb, cdb, 16);
		t->cdb_len = cdb_lens[(ctl >> 4) & 3];
		t->attr = (ctl & 8) && (cdb[15] & 1) ? SCSI_ATTR_ORDERED : SCSI_ATTR_SIMPLE;
		t->exp_read = ctl & 0x40;
		t->exp_write = ctl & 0x80;
		t->exp_xfer_len = dlen;
		t->pool = G.pool;
		t->qp = G.qp;
		t->done = on_done;
		t->priv = s;
		s->busy = true;
		s->done = false;
		s->pure = fuzz_cdb_is_pure(cdb);
		if (scsi_task_prepare(t) == SCSI_TASK_DONE) {
			finish(s);
		} else {
			if (t->data_out_len) {
				uint32_t n2 = dlen < t->data_out_len ? dlen : t->data_out_len;
				uint32_t off = 0;

				CHECK(t->buf_len >= t->data_out_len);
				for (int i = 0; i < t->iovcnt && off < n2; i++) {
					uint32_t l = (uint32_t)t->iov[i].iov_len;

					if (l > n2 - off)
						l = n2 - off;
					memcpy(t->iov[i].iov_base, dout + off, l);
					off += l;
				}
				CHECK(off == n2);
				if (n2 < t->data_out_len)
					t->data_out_got = n2;
			}
			scsi_task_exec(t);
		}
		if (!(ctl & 8))
			wait_all(slots);
		if (lenf & 0x8000) {
			wait_all(slots);
			scsi_lu_reset(tgt, t->lun, n);
		} else if (lenf & 0x4000) {
			wait_all(slots);
			scsi_nexus_reset(tgt, n);
		}
	}
	wait_all(slots);
	free(slots);
	scsi_nexus_detach(tgt, &nx[0]);
	scsi_nexus_detach(tgt, &nx[1]);
	if (G.dirty)
		target_drop();
	CHECK(bdev_qp_inflight(G.qp) == 0);
	CHECK(mem_pool_check(G.pool) == 0);
	return 0;
}
