/* task.c — the life of a SCSI task, its data buffer, and the command table.
 *
 * The command table is the single source of truth for what we accept: each
 * entry's CDB usage mask is both what REPORT SUPPORTED OPERATION CODES reports
 * and what scsi_task_prepare() enforces (a bit outside the mask, reserved or a
 * feature we do not have such as protection information, gets INVALID FIELD IN
 * CDB with the field pointer on it).
 *
 * Checks in scsi_task_prepare, in this order (SAM-5 5.? / SPC-4 precedence):
 *   1. the LU exists (else LOGICAL UNIT NOT SUPPORTED, except INQUIRY, REPORT
 *      LUNS and REQUEST SENSE which answer for a missing LU as SPC-4 says);
 *   2. a pending unit attention (not for those three commands);
 *   3. the operation code and service action are known;
 *   4. the CDB against the usage mask (reserved bits, control byte: NACA/LINK);
 *   5. reservations (pr_conflict);
 *   6. a stopped LU (NOT READY for medium access);
 *   7. the command's own prepare: field semantics, LBA range, data phase size.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/zero.h"
#include "core/log.h"
#include "mem/pool.h"
#include "scsi/pr.h"
#include "scsi_internal.h"

#define B4 0xff, 0xff, 0xff, 0xff
#define B8 B4, B4

/* Timeouts reported with RCTD (seconds): nominal, recommended. */
#define TO_FAST  0, 10
#define TO_IO    1, 30
#define TO_LONG  5, 120

static const struct scsi_cmd cmd_table[] = {
	{ 0x00, 0, 6, CMD_MEDIA, { 0x00, 0, 0, 0, 0, 0 }, "TEST UNIT READY",
	  spc_test_unit_ready, NULL, TO_FAST },
	{ 0x03, 0, 6, CMD_NO_LU | CMD_NO_UA, { 0x03, 0x01, 0, 0, 0xff, 0 }, "REQUEST SENSE",
	  spc_request_sense, NULL, TO_FAST },
	{ 0x08, 0, 6, CMD_MEDIA, { 0x08, 0x1f, 0xff, 0xff, 0xff, 0 }, "READ(6)",
	  sbc_rw_prepare, sbc_exec, TO_IO },
	{ 0x0a, 0, 6, CMD_MEDIA | CMD_WRITE, { 0x0a, 0x1f, 0xff, 0xff, 0xff, 0 }, "WRITE(6)",
	  sbc_rw_prepare, sbc_exec, TO_IO },
	{ 0x12, 0, 6, CMD_NO_LU | CMD_NO_UA, { 0x12, 0x01, 0xff, 0xff, 0xff, 0 }, "INQUIRY",
	  spc_inquiry, NULL, TO_FAST },
	{ 0x15, 0, 6, 0, { 0x15, 0x10, 0, 0, 0xff, 0 }, "MODE SELECT(6)",
	  spc_mode_select_prepare, spc_mode_select_exec, TO_FAST },
	{ 0x16, 0, 6, 0, { 0x16, 0, 0, 0, 0, 0 }, "RESERVE(6)",
	  spc_reserve_prepare, spc_reserve_exec, TO_FAST },
	{ 0x17, 0, 6, 0, { 0x17, 0, 0, 0, 0, 0 }, "RELEASE(6)",
	  spc_reserve_prepare, spc_release_exec, TO_FAST },
	{ 0x1a, 0, 6, 0, { 0x1a, 0x08, 0xff, 0xff, 0xff, 0 }, "MODE SENSE(6)",
	  spc_mode_sense, NULL, TO_FAST },
	{ 0x1b, 0, 6, 0, { 0x1b, 0x01, 0, 0, 0x07, 0 }, "START STOP UNIT",
	  spc_start_stop, spc_start_stop_exec, TO_LONG },
	{ 0x1e, 0, 6, 0, { 0x1e, 0, 0, 0, 0x01, 0 }, "PREVENT ALLOW MEDIUM REMOVAL",
	  spc_prevent_allow, NULL, TO_FAST },
	{ 0x25, 0, 10, CMD_MEDIA, { 0x25, 0, B4, 0, 0, 0x01, 0 }, "READ CAPACITY(10)",
	  sbc_read_capacity10, NULL, TO_FAST },
	{ 0x28, 0, 10, CMD_MEDIA, { 0x28, 0x1a, B4, 0x1f, 0xff, 0xff, 0 }, "READ(10)",
	  sbc_rw_prepare, sbc_exec, TO_IO },
	{ 0x2a, 0, 10, CMD_MEDIA | CMD_WRITE, { 0x2a, 0x1a, B4, 0x1f, 0xff, 0xff, 0 }, "WRITE(10)",
	  sbc_rw_prepare, sbc_exec, TO_IO },
	{ 0x2e, 0, 10, CMD_MEDIA | CMD_WRITE, { 0x2e, 0x12, B4, 0x1f, 0xff, 0xff, 0 },
	  "WRITE AND VERIFY(10)", sbc_write_verify_prepare, sbc_exec, TO_IO },
	{ 0x2f, 0, 10, CMD_MEDIA, { 0x2f, 0x16, B4, 0x1f, 0xff, 0xff, 0 }, "VERIFY(10)",
	  sbc_verify_prepare, sbc_exec, TO_IO },
	{ 0x34, 0, 10, CMD_MEDIA, { 0x34, 0x02, B4, 0x1f, 0xff, 0xff, 0 }, "PRE-FETCH(10)",
	  sbc_prefetch_prepare, NULL, TO_FAST },
	{ 0x35, 0, 10, CMD_MEDIA, { 0x35, 0x06, B4, 0x1f, 0xff, 0xff, 0 }, "SYNCHRONIZE CACHE(10)",
	  sbc_sync_cache_prepare, sbc_exec, TO_LONG },
	{ 0x37, 0, 10, CMD_MEDIA, { 0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0 }, "READ DEFECT DATA(10)",
	  sbc_read_defect_data, NULL, TO_FAST },
	{ 0x41, 0, 10, CMD_MEDIA | CMD_WRITE | CMD_WS_UNMAP, { 0x41, 0x08, B4, 0x1f, 0xff, 0xff, 0 },
	  "WRITE SAME(10)", sbc_write_same_prepare, sbc_exec, TO_LONG },
	{ 0x42, 0, 10, CMD_MEDIA | CMD_WRITE | CMD_THIN, { 0x42, 0, 0, 0, 0, 0, 0x1f, 0xff, 0xff, 0 },
	  "UNMAP", sbc_unmap_prepare, sbc_exec, TO_LONG },
	{ 0x55, 0, 10, 0, { 0x55, 0x10, 0, 0, 0, 0, 0, 0xff, 0xff, 0 }, "MODE SELECT(10)",
	  spc_mode_select_prepare, spc_mode_select_exec, TO_FAST },
	{ 0x56, 0, 10, 0, { 0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, "RESERVE(10)",
	  spc_reserve_prepare, spc_reserve_exec, TO_FAST },
	{ 0x57, 0, 10, 0, { 0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, "RELEASE(10)",
	  spc_reserve_prepare, spc_release_exec, TO_FAST },
	{ 0x5a, 0, 10, 0, { 0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0 }, "MODE SENSE(10)",
	  spc_mode_sense, NULL, TO_FAST },
	{ 0x5e, 0x00, 10, CMD_SA, { 0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0 },
	  "PERSISTENT RESERVE IN / READ KEYS", spc_pr_in, spc_pr_in_exec, TO_FAST },
	{ 0x5e, 0x01, 10, CMD_SA, { 0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0 },
	  "PERSISTENT RESERVE IN / READ RESERVATION", spc_pr_in, spc_pr_in_exec, TO_FAST },
	{ 0x5e, 0x02, 10, CMD_SA, { 0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0 },
	  "PERSISTENT RESERVE IN / REPORT CAPABILITIES", spc_pr_in, spc_pr_in_exec, TO_FAST },
	{ 0x5e, 0x03, 10, CMD_SA, { 0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0 },
	  "PERSISTENT RESERVE IN / READ FULL STATUS", spc_pr_in, spc_pr_in_exec, TO_FAST },
#define PR_OUT(sa, name) \
	{ 0x5f, sa, 10, CMD_SA, { 0x5f, 0x1f, 0xff, 0, 0, B4, 0 }, \
	  "PERSISTENT RESERVE OUT / " name, spc_pr_out_prepare, spc_pr_out_exec, TO_FAST }
	PR_OUT(0x00, "REGISTER"),
	PR_OUT(0x01, "RESERVE"),
	PR_OUT(0x02, "RELEASE"),
	PR_OUT(0x03, "CLEAR"),
	PR_OUT(0x04, "PREEMPT"),
	PR_OUT(0x05, "PREEMPT AND ABORT"),
	PR_OUT(0x06, "REGISTER AND IGNORE EXISTING KEY"),
	PR_OUT(0x07, "REGISTER AND MOVE"),
#undef PR_OUT
	{ 0x88, 0, 16, CMD_MEDIA, { 0x88, 0x1a, B8, B4, 0x1f, 0 }, "READ(16)",
	  sbc_rw_prepare, sbc_exec, TO_IO },
	{ 0x89, 0, 16, CMD_MEDIA | CMD_WRITE, { 0x89, 0x1a, B8, 0, 0, 0, 0xff, 0x1f, 0 },
	  "COMPARE AND WRITE", sbc_caw_prepare, sbc_exec, TO_IO },
	{ 0x8a, 0, 16, CMD_MEDIA | CMD_WRITE, { 0x8a, 0x1a, B8, B4, 0x1f, 0 }, "WRITE(16)",
	  sbc_rw_prepare, sbc_exec, TO_IO },
	{ 0x8b, 0, 16, CMD_MEDIA | CMD_WRITE, { 0x8b, 0x1a, B8, B4, 0x1f, 0 }, "ORWRITE(16)",
	  sbc_orwrite_prepare, sbc_exec, TO_IO },
	{ 0x8e, 0, 16, CMD_MEDIA | CMD_WRITE, { 0x8e, 0x12, B8, B4, 0x1f, 0 },
	  "WRITE AND VERIFY(16)", sbc_write_verify_prepare, sbc_exec, TO_IO },
	{ 0x8f, 0, 16, CMD_MEDIA, { 0x8f, 0x16, B8, B4, 0x1f, 0 }, "VERIFY(16)",
	  sbc_verify_prepare, sbc_exec, TO_IO },
	{ 0x90, 0, 16, CMD_MEDIA, { 0x90, 0x02, B8, B4, 0x1f, 0 }, "PRE-FETCH(16)",
	  sbc_prefetch_prepare, NULL, TO_FAST },
	{ 0x91, 0, 16, CMD_MEDIA, { 0x91, 0x06, B8, B4, 0x1f, 0 }, "SYNCHRONIZE CACHE(16)",
	  sbc_sync_cache_prepare, sbc_exec, TO_LONG },
	{ 0x93, 0, 16, CMD_MEDIA | CMD_WRITE | CMD_WS_UNMAP, { 0x93, 0x09, B8, B4, 0x1f, 0 },
	  "WRITE SAME(16)", sbc_write_same_prepare, sbc_exec, TO_LONG },
	{ 0x9e, 0x10, 16, CMD_MEDIA | CMD_SA, { 0x9e, 0x1f, B8, B4, 0x01, 0 }, "READ CAPACITY(16)",
	  sbc_read_capacity16, NULL, TO_FAST },
	{ 0x9e, 0x12, 16, CMD_MEDIA | CMD_SA, { 0x9e, 0x1f, B8, B4, 0, 0 }, "GET LBA STATUS",
	  sbc_get_lba_status, NULL, TO_FAST },
	{ 0xa0, 0, 12, CMD_NO_LU | CMD_NO_UA, { 0xa0, 0, 0xff, 0, 0, 0, B4, 0, 0 }, "REPORT LUNS",
	  spc_report_luns, NULL, TO_FAST },
	{ 0xa3, 0x0c, 12, CMD_SA, { 0xa3, 0x1f, 0x87, 0xff, 0xff, 0xff, B4, 0, 0 },
	  "REPORT SUPPORTED OPERATION CODES", spc_report_opcodes, NULL, TO_FAST },
	{ 0xa8, 0, 12, CMD_MEDIA, { 0xa8, 0x1a, B4, B4, 0x1f, 0 }, "READ(12)",
	  sbc_rw_prepare, sbc_exec, TO_IO },
	{ 0xaa, 0, 12, CMD_MEDIA | CMD_WRITE, { 0xaa, 0x1a, B4, B4, 0x1f, 0 }, "WRITE(12)",
	  sbc_rw_prepare, sbc_exec, TO_IO },
	{ 0xae, 0, 12, CMD_MEDIA | CMD_WRITE, { 0xae, 0x12, B4, B4, 0x1f, 0 },
	  "WRITE AND VERIFY(12)", sbc_write_verify_prepare, sbc_exec, TO_IO },
	{ 0xaf, 0, 12, CMD_MEDIA, { 0xaf, 0x16, B4, B4, 0x1f, 0 }, "VERIFY(12)",
	  sbc_verify_prepare, sbc_exec, TO_IO },
	{ 0xb7, 0, 12, CMD_MEDIA, { 0xb7, 0x1f, 0, 0, 0, 0, B4, 0, 0 }, "READ DEFECT DATA(12)",
	  sbc_read_defect_data, NULL, TO_FAST },
};

#define NCMDS (sizeof(cmd_table) / sizeof(cmd_table[0]))

/* First table index of each opcode, +1 (0 = unknown). Entries of one opcode are
 * adjacent in the table. */
static uint8_t opcode_index[256];
/* The entry of each opcode that has only one, with no service action and no
 * thin-only condition (READ, WRITE, ...): found with a single load. */
static const struct scsi_cmd *opcode_only[256];
/* cdb_bytes_mask[n]: 0xff in bytes 1..n-1 of a CDB, for check_cdb_bits(). */
static uint8_t cdb_bytes_mask[17][16];
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void build_index(void)
{
	for (unsigned i = NCMDS; i-- > 0;)
		opcode_index[cmd_table[i].opcode] = (uint8_t)(i + 1);
	for (unsigned i = 0; i < NCMDS; i++) {
		const struct scsi_cmd *c = &cmd_table[i];
		bool alone = (i == 0 || cmd_table[i - 1].opcode != c->opcode) &&
			     (i + 1 == NCMDS || cmd_table[i + 1].opcode != c->opcode);

		if (alone && !(c->flags & (CMD_SA | CMD_THIN)))
			opcode_only[c->opcode] = c;
	}
	for (unsigned n = 0; n <= 16; n++)
		for (unsigned i = 1; i < n; i++)
			cdb_bytes_mask[n][i] = 0xff;
}

/* Built before main (and so before any task): prepare then looks opcodes up
 * without a pthread_once per command. scsi_cmd_find keeps the once for
 * callers that might run earlier. */
__attribute__((constructor)) static void index_ctor(void)
{
	pthread_once(&index_once, build_index);
}

const struct scsi_cmd *scsi_cmd_table(unsigned *n)
{
	*n = NCMDS;
	return cmd_table;
}

bool scsi_cmd_supported(const struct scsi_lu *lu, const struct scsi_cmd *c)
{
	return !(c->flags & CMD_THIN) || (lu && lu->thin);
}

void scsi_cmd_usage(const struct scsi_lu *lu, const struct scsi_cmd *c, uint8_t out[16])
{
	memcpy(out, c->usage, 16);
	if ((c->flags & CMD_WS_UNMAP) && !(lu && lu->thin))
		out[1] &= (uint8_t)~0x08;
}

const struct scsi_cmd *scsi_cmd_find(const struct scsi_lu *lu, uint8_t opcode, uint8_t sa,
				     bool *opcode_known)
{
	pthread_once(&index_once, build_index);
	if (opcode_only[opcode]) {
		*opcode_known = true;
		return opcode_only[opcode];
	}
	unsigned i = opcode_index[opcode];
	*opcode_known = false;
	if (!i)
		return NULL;
	for (i--; i < NCMDS && cmd_table[i].opcode == opcode; i++) {
		const struct scsi_cmd *c = &cmd_table[i];
		if (!scsi_cmd_supported(lu, c))
			return NULL;
		*opcode_known = true;
		if (!(c->flags & CMD_SA) || c->sa == (sa & 0x1f))
			return c;
	}
	return NULL;
}

/* ---- buffers ---- */

/* task_buf_alloc() past its one-page case; t's buffer is freed, len > 0. */
static __attribute__((noinline)) int task_buf_alloc_segs(struct scsi_task *t, uint32_t len,
							 bool io)
{
	if ((len + SCSI_SEG_BYTES - 1) / SCSI_SEG_BYTES > SCSI_MAX_IOV)
		return -ENOMEM;
	uint32_t off = 0;
	while (off < len) {
		uint32_t seg = len - off < SCSI_SEG_BYTES ? len - off : SCSI_SEG_BYTES;
		/* slab objects are only 64 B aligned: I/O buffers take whole pages */
		size_t asz = io && seg < 4096 ? 4096 : seg;
		/* one page (the 4 KiB I/O): straight to the page magazine */
		void *p = asz == 4096 ? mem_pool_alloc_pages(t->pool, 0) : mem_alloc(t->pool, asz);
		if (!p) {
			task_buf_free(t);
			return -ENOMEM;
		}
		t->iov[t->iovcnt].iov_base = p;
		t->iov[t->iovcnt].iov_len = seg;
		t->iovcnt++;
		off += seg;
	}
	t->buf_len = len;
	return 0;
}

int task_buf_alloc(struct scsi_task *t, uint32_t len, bool io)
{
	task_buf_free(t);
	if (len == 0)
		return 0;
	if (!t->pool)
		return -ENOMEM;
	/* One page (every 4 KiB I/O): what the segment loop would do, without
	 * it (and the pool's page fast path). */
	if (len == 4096 || (io && len < 4096)) {
		void *p = mem_pool_alloc_pages(t->pool, 0);
		if (!p)
			return -ENOMEM;
		t->iov[0].iov_base = p;
		t->iov[0].iov_len = len;
		t->iovcnt = 1;
		t->buf_len = len;
		return 0;
	}
	return task_buf_alloc_segs(t, len, io);
}

void task_buf_free(struct scsi_task *t)
{
	if (t->iov_mapped)           /* the backend's memory: nothing to free */
		t->iovcnt = 0;
	t->iov_mapped = false;
	for (int i = 0; i < t->iovcnt; i++)
		mem_free(t->pool, t->iov[i].iov_base);
	t->iovcnt = 0;
	t->buf_len = 0;
}

void task_buf_read(const struct scsi_task *t, uint32_t off, void *dst, uint32_t len)
{
	uint8_t *d = dst;
	for (int i = 0; i < t->iovcnt && len; i++) {
		size_t l = t->iov[i].iov_len;
		if (off >= l) {
			off -= (uint32_t)l;
			continue;
		}
		size_t n = l - off < len ? l - off : len;
		memcpy(d, (uint8_t *)t->iov[i].iov_base + off, n);
		d += n;
		len -= (uint32_t)n;
		off = 0;
	}
}

void task_buf_write(struct scsi_task *t, uint32_t off, const void *src, uint32_t len)
{
	const uint8_t *s = src;
	for (int i = 0; i < t->iovcnt && len; i++) {
		size_t l = t->iov[i].iov_len;
		if (off >= l) {
			off -= (uint32_t)l;
			continue;
		}
		size_t n = l - off < len ? l - off : len;
		memcpy((uint8_t *)t->iov[i].iov_base + off, s, n);
		s += n;
		len -= (uint32_t)n;
		off = 0;
	}
}

int scsi_task_copy_in(struct scsi_task *t, const void *data, uint32_t len)
{
	if (len > task_alloc_len(t))
		len = task_alloc_len(t);
	int rc = task_buf_alloc(t, len, false);
	if (rc < 0)
		return rc;
	task_buf_write(t, 0, data, len);
	t->data_in_len = len;
	return 0;
}

/* ---- task life ---- */

/* scsi_task_init clears two ranges of struct scsi_task around iov[]: */
static_assert(offsetof(struct scsi_task, iov) < offsetof(struct scsi_task, iovcnt) &&
	      offsetof(struct scsi_task, buf_len) < offsetof(struct scsi_task, data_out_len) &&
	      offsetof(struct scsi_task, wait_next) < offsetof(struct scsi_task, io),
	      "struct scsi_task layout changed: update scsi_task_init");

void scsi_task_init(struct scsi_task *t)
{
	/* Everything but the (large) iov array and bdev request storage, which are
	 * only read after being written. */
	zero_small(t, offsetof(struct scsi_task, iov));
	t->iovcnt = 0;
	t->buf_len = 0;
	zero_small(&t->data_out_len, offsetof(struct scsi_task, io) - offsetof(struct scsi_task, data_out_len));
	t->state = SCSI_TS_INIT;
}

void task_finish(struct scsi_task *t)
{
	if (t->state == SCSI_TS_DONE || t->state == SCSI_TS_RELEASED) {
		log_err("scsi: task %02x finished twice (state %d)", t->cdb[0], t->state);
		return;
	}
	t->state = SCSI_TS_DONE;
	if (t->done)
		t->done(t);
}

static int prepare_done(struct scsi_task *t)
{
	t->state = SCSI_TS_DONE;
	return SCSI_TASK_DONE;
}

/* Whether t's nexus may have a unit attention queued for t's LU (ua.c's
 * count and LU mask): a load or two in the common case where it has none,
 * also while other LUs of the nexus still hold theirs. */
static inline bool ua_maybe_pending(const struct scsi_task *t)
{
	const struct nexus_state *st = t->nexus ? t->nexus->scsi_priv : NULL;
	return st && st->pending && (st->lu_mask & ua_lu_bit(t->lu));
}

/* Reports a pending unit attention; true if the command ends here. */
static bool report_ua(struct scsi_task *t)
{
	uint8_t asc, ascq;
	if (!ua_maybe_pending(t) || !lu_ua_take(t->lu, t->nexus, &asc, &ascq))
		return false;
	scsi_task_set_sense(t, SK_UNIT_ATTENTION, asc, ascq);
	/* LUICLR (Extended INQUIRY page): REPORTED LUNS DATA HAS CHANGED is
	 * reported once per nexus, not once per LU. */
	if (asc == 0x3f && ascq == 0x0e && t->nexus)
		target_ua_clear(t->target, t->nexus, 0x3f, 0x0e);
	return true;
}

/* The usage-mask check: any CDB bit we do not accept is an invalid field. */
static bool check_cdb_bits(struct scsi_task *t, const struct scsi_cmd *c)
{
	uint8_t usage[16];
	uint64_t cdb_w[2], use_w[2], mask_w[2];

	if (c->flags & CMD_WS_UNMAP)
		scsi_cmd_usage(t->lu, c, usage);
	else
		memcpy(usage, c->usage, 16);
	/* Common case, all bits valid: two words, no loop (index built by the
	 * scsi_cmd_find() that found c; cdb_len <= 16 as usage[] is). */
	memcpy(cdb_w, t->cdb, 16);
	memcpy(use_w, usage, 16);
	memcpy(mask_w, cdb_bytes_mask[c->cdb_len <= 16 ? c->cdb_len : 16], 16);
	if (!((cdb_w[0] & ~use_w[0] & mask_w[0]) | (cdb_w[1] & ~use_w[1] & mask_w[1])))
		return true;
	for (unsigned i = 1; i < c->cdb_len; i++) {
		uint8_t bad = t->cdb[i] & (uint8_t)~usage[i];
		if (bad) {
			int bit = 7;
			while (!(bad & (1u << bit)))
				bit--;
			fail_invalid_cdb(t, (uint16_t)i, bit);
			return false;
		}
	}
	return true;
}

int scsi_task_prepare(struct scsi_task *t)
{
	t->status = SAM_STAT_GOOD;
	t->sense_len = 0;
	t->data_in_len = 0;
	t->data_out_len = 0;
	t->data_out_got = 0;
	t->aux = 0;
	t->lu = lu_get(t->target, t->lun);

	uint8_t op = t->cdb[0];
	/* READ, WRITE and the other single-entry opcodes: one load. */
	const struct scsi_cmd *c = opcode_only[op];
	bool known = c != NULL;
	if (!c)
		c = scsi_cmd_find(t->lu, op, t->cdb[1], &known);

	if (!t->lu && !(c && (c->flags & CMD_NO_LU))) {
		scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_LU_NOT_SUPPORTED);
		return prepare_done(t);
	}
	if (t->lu && !(c && (c->flags & CMD_NO_UA)) && report_ua(t))
		return prepare_done(t);
	if (!known) {
		scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return prepare_done(t);
	}
	if (!c) {                 /* known opcode, unknown service action */
		fail_invalid_cdb(t, 1, 4);
		return prepare_done(t);
	}
	if (t->cdb_len && t->cdb_len < c->cdb_len) {
		fail_invalid_cdb(t, 0, -1);
		return prepare_done(t);
	}
	if (t->attr == SCSI_ATTR_ACA) {   /* we do not support NACA=1 */
		scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_INVALID_MESSAGE);
		return prepare_done(t);
	}
	if (!check_cdb_bits(t, c))
		return prepare_done(t);
	if (t->lu && t->lu->pr && pr_may_conflict(t->lu->pr) && pr_conflict(t->lu->pr, t)) {
		t->status = SAM_STAT_RESERVATION_CONFLICT;
		return prepare_done(t);
	}
	if (t->lu && (c->flags & CMD_MEDIA) && atomic_load(&t->lu->stopped)) {
		scsi_task_set_sense(t, SK_NOT_READY, ASC_NOT_READY_INIT_REQ);
		return prepare_done(t);
	}

	t->state = SCSI_TS_PREPARED;
	t->cmd = c;
	int rc = c->prepare(t);
	if (rc == -ENOMEM) {
		task_buf_free(t);
		return rc;
	}
	if (rc == SCSI_TASK_DONE || !c->exec)
		return prepare_done(t);
	/* Until the transport says otherwise, the initiator sent everything. */
	t->data_out_got = t->data_out_len;
	return SCSI_TASK_EXEC;
}

void scsi_task_exec(struct scsi_task *t)
{
	if (t->state != SCSI_TS_PREPARED) {
		log_err("scsi: exec of task %02x in state %d", t->cdb[0], t->state);
		if (t->state == SCSI_TS_DONE || t->state == SCSI_TS_RELEASED)
			return;
		scsi_task_set_sense(t, SK_HARDWARE_ERROR, ASC_INTERNAL_FAILURE);
		task_finish(t);
		return;
	}
	t->state = SCSI_TS_RUNNING;
	if (t->aborted) {
		t->status = SAM_STAT_TASK_ABORTED;
		task_finish(t);
		return;
	}
	if (t->data_out_got > t->data_out_len)
		t->data_out_got = t->data_out_len;
	t->cmd->exec(t);     /* prepare's lookup: the CDB has not changed since */
}

struct ctl_lu_stats *scsi_task_lu_stats(const struct scsi_task *t)
{
	return t->lu ? t->lu->stats : NULL;
}

void scsi_task_release(struct scsi_task *t)
{
	if (t->state == SCSI_TS_WAITING || t->state == SCSI_TS_IO || t->state == SCSI_TS_RUNNING) {
		/* done() has not come yet: freeing now would let the I/O write into
		 * freed memory. Leak instead, loudly. */
		log_err("scsi: release of task %02x before its completion (state %d)",
			t->cdb[0], t->state);
		return;
	}
	if (t->state == SCSI_TS_RELEASED)
		return;
	if (t->scsi_priv)
		sbc_aux_free(t);
	if (t->iovcnt)
		task_buf_free(t);
	lu_put(t->lu);
	t->lu = NULL;
	t->state = SCSI_TS_RELEASED;
}

void scsi_task_abort(struct scsi_task *t)
{
	/* Checked before every new I/O and when a queued task is resumed. */
	t->aborted = true;
}
