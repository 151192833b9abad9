/* test_scsi_multicore.c — one target shared by two real reactors: the LU's
 * shared state (COMPARE AND WRITE ranges, reservations, unit attentions) stays
 * correct when commands for it arrive on both, with LUN 0 owned by reactor 0
 * and LUN 1 by reactor 1 (src/scsi/owner.c), so half of every race travels.
 *
 * Each reactor is home to one nexus (attached there, as a session would be)
 * and runs "workers": a task, that nexus, a script of commands. A
 * worker issues one command at a time (prepare, fill Data-Out, exec) on its
 * reactor with that reactor's pool and qp; done() defers the script's next
 * step. cmocka's assertions longjmp, so reactor code only records; the test
 * thread checks after reactors_run() returned. A safety timer and alarm()
 * turn a hang into a failure.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev/bdev.h"
#include "core/log.h"
#include "core/reactor.h"
#include "mem/pool.h"
#include "scsi/scsi.h"

#define TGT "iqn.2026-11.org.lich:multicore"
#define NREACTORS 2
#define SAFETY_US (15u * 1000 * 1000)
#define BS 512u

struct worker;
typedef void (*step_fn)(struct worker *w);

struct worker {
	struct scsi_task t;
	struct scsi_nexus *nexus;
	unsigned reactor;
	uint64_t lun;
	step_fn on_done;             /* what to do with the finished command */
	/* script state */
	unsigned iter, step;
	uint64_t expect;             /* CAW: the value we believe is there */
	uint64_t key, other_key;
	/* results */
	unsigned caw_ok, caw_miscompare, ua_seen, errors;
	uint8_t ua_log[16][2];
	unsigned nua_log;
	uint8_t status_log[16];
	unsigned nstatus_log;
	uint8_t keys[256], resv[64];
	uint32_t keys_len, resv_len;
	bool finished;
	bool waiting;
	bool needs_release;
	uint8_t cur[BS], next[BS];       /* CAW: block as last seen, as we write it */
	unsigned go_pending;
};

static struct scsi_target *TG;
static struct bdev *BDEV[2];
static struct bdev_qp *QP[NREACTORS];
static struct scsi_nexus NX[NREACTORS];
static struct worker *W;
static unsigned NW;
static atomic_uint workers_left;
static atomic_bool timed_out;
static void (*start_script)(struct worker *w);

/* ---- plumbing ---- */

static struct reactor_opts opts(void)
{
	struct reactor_opts o = { .ncores = NREACTORS, .mode = POLL_ADAPTIVE,
				  .mem_limit = 64u << 20, .no_hugepages = true };
	for (unsigned i = 0; i < REACTOR_MAX; i++)
		o.cores[i] = -1;
	return o;
}

static void nexus_init(struct scsi_nexus *n, const char *iname, const char *isid)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->initiator_name, sizeof(n->initiator_name), "%s", iname);
	snprintf(n->initiator_port, sizeof(n->initiator_port), "%s,i,0x%s", iname, isid);
	n->rel_port_id = 1;
	n->tpgt = 1;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }
static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get_be64(const uint8_t *p) { return (uint64_t)get_be32(p) << 32 | get_be32(p + 4); }

static void worker_finished(struct worker *w)
{
	if (w->needs_release)
		scsi_task_release(&w->t);
	w->needs_release = false;
	w->finished = true;
	if (atomic_fetch_sub(&workers_left, 1) == 1)
		reactors_stop();
}

static void step_deferred(void *a, void *b)
{
	struct worker *w = a;
	(void)b;
	w->needs_release = true;     /* after on_done has read the results */
	w->on_done(w);
}

static void task_done(struct scsi_task *t)
{
	/* Never continue inside done(): it may run inside exec or a bdev callback. */
	if (reactor_defer(step_deferred, t->priv, NULL))
		abort();
}

/* Issues one command for w; on_done(w) runs once it finished (t still holds
 * status, sense and data until the next issue). */
static void issue(struct worker *w, const uint8_t *cdb, unsigned cdblen, const void *dout,
		  uint32_t dlen, uint32_t xfer, step_fn on_done)
{
	struct scsi_task *t = &w->t;

	if (w->needs_release)
		scsi_task_release(t);
	w->needs_release = false;
	scsi_task_init(t);
	t->target = TG;
	t->nexus = w->nexus;
	t->lun = w->lun;
	memcpy(t->cdb, cdb, cdblen);
	t->cdb_len = 16;
	t->attr = SCSI_ATTR_SIMPLE;
	t->pool = reactor_pool(reactor_self());
	t->qp = QP[w->reactor];
	t->done = task_done;
	t->priv = w;
	t->exp_xfer_len = xfer;
	t->exp_write = dlen > 0;
	t->exp_read = dlen == 0 && xfer > 0;
	w->on_done = on_done;
	int rc = scsi_task_prepare(t);
	if (rc < 0) {
		t->status = SAM_STAT_TASK_SET_FULL;
		task_done(t);
		return;
	}
	if (rc == SCSI_TASK_DONE) {
		task_done(t);
		return;
	}
	uint32_t off = 0;
	for (int i = 0; i < t->iovcnt && off < t->data_out_len && off < dlen; i++) {
		uint32_t l = (uint32_t)t->iov[i].iov_len;
		if (l > dlen - off)
			l = dlen - off;
		memcpy(t->iov[i].iov_base, (const uint8_t *)dout + off, l);
		off += l;
	}
	scsi_task_exec(t);
}

static void data_in(const struct scsi_task *t, uint8_t *out, uint32_t max, uint32_t *len)
{
	uint32_t n = t->data_in_len < max ? t->data_in_len : max, off = 0;
	for (int i = 0; i < t->iovcnt && off < n; i++) {
		uint32_t l = (uint32_t)t->iov[i].iov_len;
		if (l > n - off)
			l = n - off;
		memcpy(out + off, t->iov[i].iov_base, l);
		off += l;
	}
	*len = n;
}

static uint8_t sense_key(const struct scsi_task *t) { return t->sense_len >= 14 ? t->sense[2] & 0x0f : 0; }

static bool is_ua(const struct scsi_task *t)
{
	return t->status == SAM_STAT_CHECK_CONDITION && sense_key(t) == SK_UNIT_ATTENTION;
}

static void safety(void *arg)
{
	(void)arg;
	atomic_store(&timed_out, true);
	reactors_stop();
}

/* Each reactor is home to one nexus: attached in start(), detached here. */
static bool reactor_stop_hook(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	if (QP[id]) {
		scsi_nexus_detach(TG, &NX[id]);
		bdev_qp_destroy(QP[id]);
		QP[id] = NULL;
	}
	return true;
}

static void start(struct reactor *r, void *arg)
{
	unsigned id = reactor_id(r);
	(void)arg;
	QP[id] = bdev_qp_create(r, 64);
	if (!QP[id] || scsi_nexus_attach(TG, &NX[id]) ||
	    reactor_stop_hook_add(r, reactor_stop_hook, (void *)(uintptr_t)id))
		abort();
	if (id == 0)
		reactor_timer_add(r, SAFETY_US, 0, safety, NULL);
	for (unsigned i = 0; i < NW; i++)
		if (W[i].reactor == id)
			start_script(&W[i]);
}

static int run(void (*script)(struct worker *w))
{
	start_script = script;
	atomic_store(&workers_left, NW);
	atomic_store(&timed_out, false);
	struct reactor_opts o = opts();
	assert_int_equal(reactors_init(&o), 0);
	alarm(60);
	int rc = reactors_run(start, NULL);
	alarm(0);
	return rc;
}

static void env_up(void)
{
	struct bdev_opts bo0 = { .type = BDEV_TYPE_RAM, .path = "mc0", .size = 1u << 20, .block_size = BS };
	struct bdev_opts bo1 = { .type = BDEV_TYPE_RAM, .path = "mc1", .size = 1u << 20, .block_size = BS };
	assert_int_equal(bdev_open(&bo0, &BDEV[0]), 0);
	assert_int_equal(bdev_open(&bo1, &BDEV[1]), 0);
	TG = scsi_target_create(TGT, 1);
	assert_non_null(TG);
	for (unsigned lun = 0; lun < 2; lun++) {
		struct scsi_lu_opts o = { .lun = lun, .bdev = BDEV[lun], .write_cache = true };
		assert_int_equal(scsi_target_add_lu(TG, &o), 0);
	}
	nexus_init(&NX[0], "iqn.2026-11.org.lich:host-a", "023d00000001");
	nexus_init(&NX[1], "iqn.2026-11.org.lich:host-b", "023d00000002");
}

static void env_down(void)
{
	scsi_target_destroy(TG);
	bdev_close(BDEV[0]);
	bdev_close(BDEV[1]);
	free(W);
	W = NULL;
	NW = 0;
}

/* Workers: per reactor, per LUN, `per` of them; nexus = the reactor's. */
static void workers(unsigned per)
{
	NW = NREACTORS * 2 * per;
	W = calloc(NW, sizeof(*W));
	assert_non_null(W);
	for (unsigned i = 0; i < NW; i++) {
		W[i].reactor = i % NREACTORS;
		W[i].lun = (i / NREACTORS) % 2;
		W[i].nexus = &NX[W[i].reactor];
	}
}

/* ---- COMPARE AND WRITE: a counter in block 0, incremented by everyone ---- */

#define CAW_ROUNDS 150

static void caw_next(struct worker *w);

static void caw_read_done(struct worker *w)
{
	uint8_t b[BS];
	uint32_t len;

	if (is_ua(&w->t)) {
		w->ua_seen++;
		caw_next(w);
		return;
	}
	if (w->t.status != SAM_STAT_GOOD) {
		w->errors++;
		worker_finished(w);
		return;
	}
	data_in(&w->t, b, sizeof(b), &len);
	memcpy(w->cur, b, BS);
	w->expect = get_be64(b);
	caw_next(w);
}

static void caw_done(struct worker *w)
{
	struct scsi_task *t = &w->t;

	if (t->status == SAM_STAT_GOOD) {
		w->caw_ok++;
		w->expect++;
		memcpy(w->cur, w->next, BS);
		w->iter++;
	} else if (t->status == SAM_STAT_CHECK_CONDITION && sense_key(t) == SK_MISCOMPARE) {
		w->caw_miscompare++;
		w->step = 1;             /* re-read */
	} else if (is_ua(t)) {
		w->ua_seen++;
	} else {
		w->errors++;
		worker_finished(w);
		return;
	}
	caw_next(w);
}

static void caw_next(struct worker *w)
{
	if (w->iter >= CAW_ROUNDS) {
		worker_finished(w);
		return;
	}
	if (w->step == 1) {
		uint8_t cdb[16] = { 0x88 };
		w->step = 0;
		put_be32(cdb + 10, 1);
		issue(w, cdb, 16, NULL, 0, BS, caw_read_done);
		return;
	}
	uint8_t cdb[16] = { 0x89 };
	uint8_t d[2 * BS];
	/* verify instance: the whole block as last seen; write instance: the
	 * counter + 1 and who wrote it */
	memset(w->next, 0, BS);
	put_be64(w->next, w->expect + 1);
	put_be32(w->next + 8, (uint32_t)(w - W));
	memcpy(d, w->cur, BS);
	memcpy(d + BS, w->next, BS);
	cdb[13] = 1;
	issue(w, cdb, 16, d, sizeof(d), sizeof(d), caw_done);
}

/* A reader also touching block 0 (waits behind held ranges) and a writer on
 * block 1 (never overlaps): both must keep flowing while CAWs hold block 0. */
static void caw_start(struct worker *w)
{
	w->step = 1;
	caw_next(w);
}

static void test_caw_race(void **state)
{
	(void)state;
	env_up();
	workers(3);
	assert_int_equal(run(caw_start), 0);
	for (unsigned i = 0; i < NW; i++)
		if (!W[i].finished)
			print_message("worker %u (r%u lun %u): iter %u ok %u miss %u state %d status %02x\n",
				      i, W[i].reactor, (unsigned)W[i].lun, W[i].iter, W[i].caw_ok,
				      W[i].caw_miscompare, W[i].t.state, W[i].t.status);
	assert_false(atomic_load(&timed_out));

	unsigned ok[2] = { 0, 0 }, miss = 0;
	for (unsigned i = 0; i < NW; i++) {
		assert_int_equal(W[i].errors, 0);
		assert_true(W[i].finished);
		assert_int_equal(W[i].caw_ok, CAW_ROUNDS);
		ok[W[i].lun] += W[i].caw_ok;
		miss += W[i].caw_miscompare;
	}
	/* The counter went up by exactly the number of successes: no two CAWs
	 * ever both succeeded on the same old value. */
	for (unsigned lun = 0; lun < 2; lun++) {
		struct worker *w = NULL;
		for (unsigned i = 0; i < NW; i++)
			if (W[i].lun == lun)
				w = &W[i];
		uint64_t v = 0;
		for (unsigned i = 0; i < NW; i++)
			if (W[i].lun == lun && W[i].expect > v)
				v = W[i].expect;
		assert_non_null(w);
		assert_int_equal(v, ok[lun]);
	}
	print_message("caw: %u + %u successes, %u miscompares\n", ok[0], ok[1], miss);
	env_down();
}

/* ---- persistent reservations raced from both sides ---- */

#define PR_ROUNDS 200

enum { PRO_REGISTER_IGNORE = 6, PRO_RESERVE = 1, PRO_PREEMPT = 4, PRO_RELEASE = 2 };
#define TYPE_EA 0x3

static void pr_issue_out(struct worker *w, unsigned sa, unsigned type, uint64_t key, uint64_t sakey,
			 step_fn then)
{
	uint8_t cdb[16] = { 0x5f, (uint8_t)sa, (uint8_t)type };
	uint8_t pl[24] = { 0 };
	put_be32(cdb + 5, 24);
	put_be64(pl, key);
	put_be64(pl + 8, sakey);
	issue(w, cdb, 10, pl, 24, 24, then);
}

static void pr_issue_in(struct worker *w, unsigned sa, step_fn then)
{
	uint8_t cdb[16] = { 0x5e, (uint8_t)sa };
	cdb[7] = 1;                  /* allocation length 256 */
	issue(w, cdb, 10, NULL, 0, 256, then);
}

static void pr_next(struct worker *w);

static void pr_final_resv(struct worker *w)
{
	data_in(&w->t, w->resv, sizeof(w->resv), &w->resv_len);
	if (w->t.status != SAM_STAT_GOOD)
		w->errors++;
	worker_finished(w);
}

static void pr_final_keys(struct worker *w)
{
	if (is_ua(&w->t)) {
		w->ua_seen++;
		pr_issue_in(w, 0, pr_final_keys);
		return;
	}
	data_in(&w->t, w->keys, sizeof(w->keys), &w->keys_len);
	if (w->t.status != SAM_STAT_GOOD)
		w->errors++;
	pr_issue_in(w, 1, pr_final_resv);
}

static atomic_uint racing;

static void pr_final_msg(void *a, void *b)
{
	(void)b;
	pr_issue_in(a, 0, pr_final_keys);
}

static void pr_step_done(struct worker *w)
{
	struct scsi_task *t = &w->t;

	if (is_ua(t)) {
		w->ua_seen++;            /* command not run: retry the step */
	} else {
		if (t->status != SAM_STAT_GOOD && t->status != SAM_STAT_RESERVATION_CONFLICT)
			w->errors++;
		w->step = (w->step + 1) % 3;
		if (w->step == 0)
			w->iter++;
	}
	pr_next(w);
}

static void pr_next(struct worker *w)
{
	if (w->iter >= PR_ROUNDS) {
		/* Both sides done racing: every worker reads the final state. */
		if (atomic_fetch_sub(&racing, 1) == 1)
			for (unsigned i = 0; i < NW; i++)
				if (reactor_send(W[i].reactor, pr_final_msg, &W[i], NULL))
					abort();
		return;
	}
	switch (w->step) {
	case 0:
		pr_issue_out(w, PRO_REGISTER_IGNORE, 0, 0, w->key, pr_step_done);
		break;
	case 1:
		pr_issue_out(w, PRO_RESERVE, TYPE_EA, w->key, 0, pr_step_done);
		break;
	default:
		pr_issue_out(w, PRO_PREEMPT, TYPE_EA, w->key, w->other_key, pr_step_done);
		break;
	}
}

static void test_pr_race(void **state)
{
	(void)state;
	env_up();
	/* one worker per reactor, both on LUN 1 (owned by reactor 1) */
	NW = 2;
	W = calloc(NW, sizeof(*W));
	for (unsigned i = 0; i < NW; i++) {
		W[i].reactor = i;
		W[i].lun = 1;
		W[i].nexus = &NX[i];
		W[i].key = 0xa0 + i;
		W[i].other_key = 0xa1 - i;
	}
	atomic_store(&racing, NW);
	assert_int_equal(run(pr_next), 0);
	assert_false(atomic_load(&timed_out));
	for (unsigned i = 0; i < NW; i++) {
		assert_int_equal(W[i].errors, 0);
		assert_true(W[i].finished);
	}
	/* Both sides read the same state, and it is a consistent one. */
	assert_int_equal(W[0].keys_len, W[1].keys_len);
	assert_memory_equal(W[0].keys, W[1].keys, W[0].keys_len);
	assert_int_equal(W[0].resv_len, W[1].resv_len);
	assert_memory_equal(W[0].resv, W[1].resv, W[0].resv_len);
	uint32_t nkeys = get_be32(W[0].keys + 4) / 8;
	if (!(nkeys >= 1 && nkeys <= 2))
		print_message("keys_len %u: %02x %02x %02x %02x %02x %02x %02x %02x\n", W[0].keys_len,
			      W[0].keys[0], W[0].keys[1], W[0].keys[2], W[0].keys[3], W[0].keys[4],
			      W[0].keys[5], W[0].keys[6], W[0].keys[7]);
	assert_true(nkeys >= 1 && nkeys <= 2);
	if (get_be32(W[0].resv + 4) == 16) {
		uint64_t holder = get_be64(W[0].resv + 8);
		bool found = false;
		for (uint32_t k = 0; k < nkeys; k++)
			found |= get_be64(W[0].keys + 8 + 8 * k) == holder;
		assert_true(found);
		assert_int_equal(W[0].resv[21] & 0x0f, TYPE_EA);
	}
	print_message("pr: generation %u, %u key(s), UAs seen %u/%u\n", get_be32(W[0].keys),
		      nkeys, W[0].ua_seen, W[1].ua_seen);
	env_down();
}

/* ---- unit attentions established on one reactor, seen on the other ---- */

/* Worker 0 (reactor 0, host-a) and worker 1 (reactor 1, host-b), one LUN:
 * b registers; a registers, reserves and preempts b; b
 * must see REGISTRATIONS PREEMPTED once; then a resets the LU from reactor 0
 * and both see BUS DEVICE RESET FUNCTION OCCURRED once. The two scripts wait
 * for each other with messages (go / wait_go), never by polling. */
static void ua_next(struct worker *w);

static void go_msg(void *a, void *b)
{
	struct worker *w = a;
	(void)b;
	if (w->waiting) {
		w->waiting = false;
		ua_next(w);
	} else {
		w->go_pending++;
	}
}

static void go(unsigned widx)
{
	if (reactor_send(W[widx].reactor, go_msg, &W[widx], NULL))
		abort();
}

/* true: go on now; false: ua_next runs again when the go arrives */
static bool wait_go(struct worker *w)
{
	if (w->go_pending) {
		w->go_pending--;
		return true;
	}
	w->waiting = true;
	return false;
}

static void tur(struct worker *w, step_fn then)
{
	uint8_t cdb[16] = { 0 };
	issue(w, cdb, 6, NULL, 0, 0, then);
}

static void ua_clear_done(struct worker *w)
{
	if (is_ua(&w->t)) {
		tur(w, ua_clear_done);
		return;
	}
	w->step++;
	ua_next(w);
}

/* logs a TEST UNIT READY's outcome */
static void ua_logged(struct worker *w)
{
	struct scsi_task *t = &w->t;
	if (w->nstatus_log < 16)
		w->status_log[w->nstatus_log++] = t->status;
	if (is_ua(t) && w->nua_log < 16) {
		w->ua_log[w->nua_log][0] = t->sense[12];
		w->ua_log[w->nua_log][1] = t->sense[13];
		w->nua_log++;
	}
	w->step++;
	ua_next(w);
}

/* a PERSISTENT RESERVE OUT that must succeed */
static void ua_pr_done(struct worker *w)
{
	if (w->t.status != SAM_STAT_GOOD)
		w->errors++;
	w->step++;
	ua_next(w);
}

static void ua_b(struct worker *w)
{
	switch (w->step) {
	case 0:
		tur(w, ua_clear_done);             /* POWER ON */
		break;
	case 1:
		pr_issue_out(w, PRO_REGISTER_IGNORE, 0, 0, 0xb, ua_pr_done);
		break;
	case 2:
		w->step++;
		go(0);
		if (wait_go(w))                    /* a preempted us */
			ua_next(w);
		break;
	case 3:
	case 4:
		tur(w, ua_logged);
		break;
	case 5:
		w->step++;
		go(0);
		if (wait_go(w))                    /* a reset the LU */
			ua_next(w);
		break;
	case 6:
	case 7:
		tur(w, ua_logged);
		break;
	default:
		worker_finished(w);
		break;
	}
}

static void ua_a(struct worker *w)
{
	switch (w->step) {
	case 0:
		tur(w, ua_clear_done);
		break;
	case 1:
		w->step++;
		if (wait_go(w))                    /* b registered */
			ua_next(w);
		break;
	case 2:
		pr_issue_out(w, PRO_REGISTER_IGNORE, 0, 0, 0xa, ua_pr_done);
		break;
	case 3:
		pr_issue_out(w, PRO_RESERVE, TYPE_EA, 0xa, 0, ua_pr_done);
		break;
	case 4:
		pr_issue_out(w, PRO_PREEMPT, TYPE_EA, 0xa, 0xb, ua_pr_done);
		break;
	case 5:
		w->step++;
		go(1);
		if (wait_go(w))                    /* b saw it */
			ua_next(w);
		break;
	case 6:
		if (scsi_lu_reset(TG, w->lun, w->nexus))
			w->errors++;
		go(1);
		tur(w, ua_logged);
		break;
	case 7:
		tur(w, ua_logged);
		break;
	default:
		worker_finished(w);
		break;
	}
}

static void ua_next(struct worker *w)
{
	if (w->reactor == 0)
		ua_a(w);
	else
		ua_b(w);
}

/* LUN 1: the owner is b's reactor, b's UA is queued there at once; LUN 0:
 * the owner is a's reactor, b's UA travels as an event. */
static void ua_across(unsigned lun)
{
	env_up();
	NW = 2;
	W = calloc(NW, sizeof(*W));
	for (unsigned i = 0; i < NW; i++) {
		W[i].reactor = i;
		W[i].lun = lun;
		W[i].nexus = &NX[i];
	}
	assert_int_equal(run(ua_next), 0);
	assert_false(atomic_load(&timed_out));
	struct worker *a = &W[0], *b = &W[1];
	assert_int_equal(a->errors, 0);
	assert_int_equal(b->errors, 0);
	/* a: its reset's UA once, then GOOD */
	assert_int_equal(a->nstatus_log, 2);
	assert_int_equal(a->nua_log, 1);
	assert_int_equal(a->ua_log[0][0], 0x29);
	assert_int_equal(a->ua_log[0][1], 0x03);
	assert_int_equal(a->status_log[1], SAM_STAT_GOOD);
	/* b: REGISTRATIONS PREEMPTED once, GOOD, then the reset once, GOOD */
	assert_int_equal(b->nstatus_log, 4);
	assert_int_equal(b->nua_log, 2);
	assert_int_equal(b->ua_log[0][0], 0x2a);
	assert_int_equal(b->ua_log[0][1], 0x05);
	assert_int_equal(b->status_log[1], SAM_STAT_GOOD);
	assert_int_equal(b->ua_log[1][0], 0x29);
	assert_int_equal(b->ua_log[1][1], 0x03);
	assert_int_equal(b->status_log[3], SAM_STAT_GOOD);
	env_down();
}

static void test_ua_across_owner_is_b(void **state)
{
	(void)state;
	ua_across(1);
}

static void test_ua_across_owner_is_a(void **state)
{
	(void)state;
	ua_across(0);
}

int main(void)
{
	log_init(LOG_LVL_ERR, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caw_race),
		cmocka_unit_test(test_pr_race),
		cmocka_unit_test(test_ua_across_owner_is_b),
		cmocka_unit_test(test_ua_across_owner_is_a),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
