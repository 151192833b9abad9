/* sbc.c — block commands (SBC-3) and their I/O state machines.
 *
 * prepare (on the reactor that received the command) decodes LBA and length,
 * checks the range, write protection and limits, and sizes the data phase.
 * exec runs the command as a chain of bdev I/Os: each submission names the step
 * that handles its completion (struct sbc_ioctx.step), so a command reads top to
 * bottom as start -> step -> step -> sbc_finish. Only one I/O of a task is in
 * flight at a time; multi-step commands (VERIFY, WRITE AND VERIFY, WRITE SAME,
 * UNMAP, COMPARE AND WRITE, ORWRITE) work through a bounce buffer of at most
 * SCSI_CHUNK_BYTES, so memory per task stays bounded whatever the length.
 *
 * COMPARE AND WRITE and ORWRITE hold their LBA range (lu.c) from the read to the
 * end of the write; any command touching a held range queues behind it and is
 * started again (on its own reactor) when the range is released; the ranges
 * are kept by the LU's owner reactor (range.c). Limitation:
 * a command already past that check when a COMPARE AND WRITE takes the range is
 * not waited for.
 *
 * An aborted task starts no new I/O: when its I/O completes it ends with TASK
 * ABORTED status (the transport discards the response).
 *
 * READ on a bdev that can_map (ram), for a transport that sends Data-In from
 * any memory (t->data_in_any_mem: TCP), takes no buffer: exec points iov[]
 * at the backend's memory (bdev_read_map) and finishes without I/O; a range
 * that needs more than SCSI_MAX_IOV segments gets a buffer then and is read
 * as usual. The task holds its LU (and so the bdev) until release.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/reactor.h"
#include "mem/pool.h"
#include "scsi_internal.h"

typedef void (*sbc_step_fn)(struct scsi_task *t, int status);

/* Lives in t->io.opaque. */
struct sbc_ioctx {
	struct bdev_io bio;
	struct reactor *home;        /* the task's reactor: where it is resumed */
	sbc_step_fn step;            /* what to do when bio completes */
};

static_assert(sizeof(struct sbc_ioctx) <= sizeof(((struct scsi_task *)0)->io.opaque),
	      "bdev request does not fit in the task");

/* t->scsi_priv of commands with several steps. */
struct sbc_aux {
	struct caw_range range;      /* COMPARE AND WRITE / ORWRITE: range.held */
	uint8_t *scratch;            /* bounce buffer (page aligned) */
	uint32_t scratch_len;
	uint64_t pos;                /* progress: blocks done, or UNMAP descriptor */
	struct iovec sub[SCSI_MAX_IOV];
};

static struct sbc_ioctx *ioctx(struct scsi_task *t)
{
	return (struct sbc_ioctx *)t->io.opaque;
}

static struct sbc_aux *aux_of(struct scsi_task *t)
{
	return t->scsi_priv;
}

/* Allocates the task's aux (and a scratch buffer of scratch bytes). */
static int aux_alloc(struct scsi_task *t, uint32_t scratch)
{
	struct sbc_aux *a = t->scsi_priv;
	if (!a) {
		if (!t->pool || !(a = mem_zalloc(t->pool, sizeof(*a))))
			return -ENOMEM;
		t->scsi_priv = a;
	}
	if (scratch && !a->scratch) {
		a->scratch = mem_alloc(t->pool, scratch < 4096 ? 4096 : scratch);
		if (!a->scratch)
			return -ENOMEM;
		a->scratch_len = scratch;
	}
	return 0;
}

void sbc_aux_free(struct scsi_task *t)
{
	struct sbc_aux *a = t->scsi_priv;
	if (!a)
		return;
	if (a->range.held)           /* not reached: sbc_finish releases it */
		range_release(t->lu, &a->range);
	mem_free(t->pool, a->scratch);
	mem_free(t->pool, a);
	t->scsi_priv = NULL;
}

/* ---- buffer helpers ---- */

/* Fills out[] with the part [off, off+len) of the task buffer; returns count. */
static int iov_slice(const struct scsi_task *t, uint64_t off, uint64_t len, struct iovec *out)
{
	int n = 0;
	for (int i = 0; i < t->iovcnt && len; i++) {
		size_t l = t->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		size_t take = l - off < len ? l - off : len;
		out[n].iov_base = (uint8_t *)t->iov[i].iov_base + off;
		out[n].iov_len = take;
		n++;
		len -= take;
		off = 0;
	}
	return n;
}

/* Offset (from 0) of the first byte where buf differs from the task buffer at
 * off, or -1. */
static int64_t buf_compare(const struct scsi_task *t, uint64_t off, const uint8_t *buf, uint64_t len)
{
	uint64_t done = 0;
	for (int i = 0; i < t->iovcnt && done < len; i++) {
		size_t l = t->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		size_t take = l - off < len - done ? l - off : len - done;
		const uint8_t *p = (const uint8_t *)t->iov[i].iov_base + off;
		if (memcmp(p, buf + done, take)) {
			for (size_t j = 0; j < take; j++)
				if (p[j] != buf[done + j])
					return (int64_t)(done + j);
		}
		done += take;
		off = 0;
	}
	return -1;
}

/* task buffer [off, off+len) |= buf */
static void buf_or(struct scsi_task *t, uint64_t off, const uint8_t *buf, uint64_t len)
{
	uint64_t done = 0;
	for (int i = 0; i < t->iovcnt && done < len; i++) {
		size_t l = t->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		size_t take = l - off < len - done ? l - off : len - done;
		uint8_t *p = (uint8_t *)t->iov[i].iov_base + off;
		for (size_t j = 0; j < take; j++)
			p[j] |= buf[done + j];
		done += take;
		off = 0;
	}
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

/* ---- common checks ---- */

static int check_range(struct scsi_task *t, uint64_t lba, uint64_t n)
{
	const struct scsi_lu *lu = t->lu;
	if (lba > lu->nblocks || n > lu->nblocks - lba)
		return fail_lba_range(t);
	return SCSI_TASK_EXEC;
}

static int check_writable(struct scsi_task *t)
{
	if (t->lu->readonly) {
		scsi_task_set_sense(t, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return SCSI_TASK_DONE;
	}
	if (atomic_load(&t->lu->swp)) {
		scsi_task_set_sense(t, SK_DATA_PROTECT, ASC_SW_WRITE_PROTECTED);
		return SCSI_TASK_DONE;
	}
	return SCSI_TASK_EXEC;
}

/* LBA and transfer length of the read/write/verify families; *len_byte is
 * where the length field starts (for the sense field pointer). */
static inline __attribute__((always_inline))
void decode_lba_len(const uint8_t *cdb, uint64_t *lba, uint64_t *n, uint16_t *len_byte)
{
	switch (cdb[0] >> 5) {
	case 0:                                   /* 6-byte */
		*lba = (uint64_t)(cdb[1] & 0x1f) << 16 | get_be16(cdb + 2);
		*n = cdb[4] ? cdb[4] : 256;
		*len_byte = 4;
		break;
	case 1:                                   /* 10-byte */
	case 2:
		*lba = get_be32(cdb + 2);
		*n = get_be16(cdb + 7);
		*len_byte = 7;
		break;
	case 4:                                   /* 16-byte */
		*lba = get_be64(cdb + 2);
		*n = get_be32(cdb + 10);
		*len_byte = 10;
		break;
	default:                                  /* 12-byte */
		*lba = get_be32(cdb + 2);
		*n = get_be32(cdb + 6);
		*len_byte = 6;
		break;
	}
}

static bool is_write_opcode(uint8_t op)
{
	return op == 0x0a || op == 0x2a || op == 0xaa || op == 0x8a;
}

static bool cdb_fua(const struct scsi_task *t)
{
	/* 6-byte commands have no FUA bit; elsewhere it is byte 1 bit 3. */
	return (t->cdb[0] >> 5) != 0 && (t->cdb[1] & 0x08);
}

/* Sets t->lba/nblocks and allocates data_len bytes of I/O buffer. */
static int setup_transfer(struct scsi_task *t, uint64_t lba, uint64_t n, uint64_t data_len,
			  uint16_t len_byte, bool data_out)
{
	if (data_len > SCSI_MAX_XFER)
		return fail_invalid_cdb(t, len_byte, -1);
	t->lba = lba;
	t->nblocks = (uint32_t)n;
	int rc = task_buf_alloc(t, (uint32_t)data_len, true);
	if (rc < 0)
		return rc;
	if (data_out)
		t->data_out_len = (uint32_t)data_len;
	return SCSI_TASK_EXEC;
}

/* ---- prepare: capacity and friends (answered from memory) ---- */

int sbc_read_capacity10(struct scsi_task *t)
{
	const struct scsi_lu *lu = t->lu;
	uint8_t buf[8];

	/* PMI=0 requires LBA 0 (SBC-3 5.15); with PMI=1 there is no delay to
	 * report, so the last LBA of the medium is returned either way. */
	if (!(t->cdb[8] & 0x01) && get_be32(&t->cdb[2]))
		return fail_invalid_cdb(t, 2, -1);
	uint64_t last = lu->nblocks - 1;
	put_be32(buf, last > 0xfffffffeull ? 0xffffffffu : (uint32_t)last);
	put_be32(buf + 4, lu->block_size);
	t->aux = sizeof(buf);
	int rc = scsi_task_copy_in(t, buf, sizeof(buf));
	return rc < 0 ? rc : SCSI_TASK_DONE;
}

int sbc_read_capacity16(struct scsi_task *t)
{
	const struct scsi_lu *lu = t->lu;
	uint8_t buf[32] = { 0 };

	if (!(t->cdb[14] & 0x01) && get_be64(&t->cdb[2]))
		return fail_invalid_cdb(t, 2, -1);
	put_be64(buf, lu->nblocks - 1);
	put_be32(buf + 8, lu->block_size);
	buf[12] = 0;                                  /* no protection information */
	buf[13] = lu->lbppbe & 0x0f;
	if (lu->thin)
		buf[14] = 0x80 | 0x40;                /* LBPME, LBPRZ */
	t->aux = get_be32(&t->cdb[10]);
	int rc = scsi_task_copy_in(t, buf, sizeof(buf));
	return rc < 0 ? rc : SCSI_TASK_DONE;
}

#define GLS_MAX_DESC   64
#define GLS_MAX_PROBES 1024

int sbc_get_lba_status(struct scsi_task *t)
{
	const struct scsi_lu *lu = t->lu;
	uint64_t lba = get_be64(&t->cdb[2]);
	uint32_t alloc = get_be32(&t->cdb[10]);
	uint8_t buf[8 + 16 * GLS_MAX_DESC];

	if (lba >= lu->nblocks)
		return fail_lba_range(t);
	t->aux = alloc;
	unsigned want = alloc >= 24 ? (alloc - 8) / 16 : 1;
	if (want > GLS_MAX_DESC)
		want = GLS_MAX_DESC;

	struct { uint64_t lba; uint64_t n; bool mapped; } d[GLS_MAX_DESC];
	unsigned nd = 0;
	uint64_t cur = lba;
	for (unsigned probes = 0; cur < lu->nblocks && probes < GLS_MAX_PROBES; probes++) {
		uint64_t len = 0;
		bool mapped = true;
		uint64_t blocks;
		if (bdev_lba_status(lu->bdev, cur * lu->block_size, &len, &mapped) < 0)
			blocks = lu->nblocks - cur;          /* can't tell: mapped */
		else
			blocks = len / lu->block_size;
		if (blocks == 0)
			blocks = 1;
		if (blocks > lu->nblocks - cur)
			blocks = lu->nblocks - cur;
		if (nd && d[nd - 1].mapped == mapped && d[nd - 1].n + blocks <= 0xffffffffull) {
			d[nd - 1].n += blocks;
		} else {
			if (nd == want)
				break;
			d[nd].lba = cur;
			d[nd].n = blocks > 0xffffffffull ? 0xffffffffull : blocks;
			d[nd].mapped = mapped;
			blocks = d[nd].n;
			nd++;
		}
		cur += blocks;
	}
	memset(buf, 0, 8 + 16 * nd);
	put_be32(buf, 4 + 16 * nd);                   /* PARAMETER DATA LENGTH */
	for (unsigned i = 0; i < nd; i++) {
		uint8_t *p = buf + 8 + 16 * i;
		put_be64(p, d[i].lba);
		put_be32(p + 8, (uint32_t)d[i].n);
		p[12] = d[i].mapped ? 0x00 : 0x01;     /* mapped / deallocated */
	}
	int rc = scsi_task_copy_in(t, buf, 8 + 16 * nd);
	return rc < 0 ? rc : SCSI_TASK_DONE;
}

int sbc_read_defect_data(struct scsi_task *t)
{
	uint8_t buf[8] = { 0 };
	bool twelve = t->cdb[0] == 0xb7;
	uint8_t req = twelve ? t->cdb[1] : t->cdb[2];

	/* The medium has no defects: an empty list in whatever format was asked,
	 * with PLISTV/GLISTV set for the lists requested. */
	buf[1] = req & 0x1f;
	t->aux = twelve ? get_be32(&t->cdb[6]) : get_be16(&t->cdb[7]);
	int rc = scsi_task_copy_in(t, buf, twelve ? 8 : 4);
	return rc < 0 ? rc : SCSI_TASK_DONE;
}

/* ---- prepare: block I/O commands ---- */

int sbc_rw_prepare(struct scsi_task *t)
{
	uint64_t lba, n;
	uint16_t len_byte;
	bool write = is_write_opcode(t->cdb[0]);

	decode_lba_len(t->cdb, &lba, &n, &len_byte);
	int rc = check_range(t, lba, n);
	if (rc == SCSI_TASK_EXEC && write)
		rc = check_writable(t);
	if (rc != SCSI_TASK_EXEC || n == 0)
		return SCSI_TASK_DONE;
	uint64_t len = n * t->lu->block_size;
	if (!write && t->data_in_any_mem && t->lu->map_reads) {
		/* rw_start maps the blocks (bdev_read_map) instead of reading
		 * them into a buffer: none is allocated here. */
		if (len > SCSI_MAX_XFER)
			return fail_invalid_cdb(t, len_byte, -1);
		t->lba = lba;
		t->nblocks = (uint32_t)n;
		return SCSI_TASK_EXEC;
	}
	return setup_transfer(t, lba, n, len, len_byte, write);
}

/* Writes that also need the range read (WRITE AND VERIFY reads it back,
 * ORWRITE reads it first): the data-out phase plus a scratch buffer of up to
 * one chunk. */
static int write_with_scratch_prepare(struct scsi_task *t)
{
	uint64_t lba, n;
	uint16_t len_byte;

	decode_lba_len(t->cdb, &lba, &n, &len_byte);
	int rc = check_range(t, lba, n);
	if (rc == SCSI_TASK_EXEC)
		rc = check_writable(t);
	if (rc != SCSI_TASK_EXEC || n == 0)
		return SCSI_TASK_DONE;
	rc = setup_transfer(t, lba, n, n * t->lu->block_size, len_byte, true);
	if (rc != SCSI_TASK_EXEC)
		return rc;
	uint64_t bytes = n * t->lu->block_size;
	return aux_alloc(t, bytes < SCSI_CHUNK_BYTES ? (uint32_t)bytes : SCSI_CHUNK_BYTES) ?: rc;
}

int sbc_write_verify_prepare(struct scsi_task *t)
{
	return write_with_scratch_prepare(t);
}

int sbc_verify_prepare(struct scsi_task *t)
{
	uint64_t lba, n;
	uint16_t len_byte;
	uint8_t bytchk = (t->cdb[1] >> 1) & 0x03;
	uint32_t bs = t->lu->block_size;

	if (bytchk == 0x02)
		return fail_invalid_cdb(t, 1, 2);
	decode_lba_len(t->cdb, &lba, &n, &len_byte);
	int rc = check_range(t, lba, n);
	if (rc != SCSI_TASK_EXEC || n == 0)
		return SCSI_TASK_DONE;
	/* BYTCHK 00b: medium only; 01b: n blocks to compare; 11b: one block
	 * compared with each block of the range. */
	uint64_t data = bytchk == 0x01 ? n * bs : bytchk == 0x03 ? bs : 0;
	if (bytchk == 0)
		t->lba = lba, t->nblocks = (uint32_t)n;
	else if ((rc = setup_transfer(t, lba, n, data, len_byte, true)) != SCSI_TASK_EXEC)
		return rc;
	uint64_t bytes = n * bs;
	return aux_alloc(t, bytes < SCSI_CHUNK_BYTES ? (uint32_t)bytes : SCSI_CHUNK_BYTES) ?: SCSI_TASK_EXEC;
}

int sbc_write_same_prepare(struct scsi_task *t)
{
	const struct scsi_lu *lu = t->lu;
	bool ws16 = t->cdb[0] == 0x93;
	bool ndob = ws16 && (t->cdb[1] & 0x01);
	uint64_t lba = ws16 ? get_be64(&t->cdb[2]) : get_be32(&t->cdb[2]);
	uint64_t n = ws16 ? get_be32(&t->cdb[10]) : get_be16(&t->cdb[7]);
	uint16_t len_byte = ws16 ? 10 : 7;

	if (lba > lu->nblocks)
		return fail_lba_range(t);
	if (n == 0)                       /* WSNZ=0: to the end of the medium */
		n = lu->nblocks - lba;
	else if (check_range(t, lba, n) != SCSI_TASK_EXEC)
		return SCSI_TASK_DONE;
	if (n > SCSI_MAX_WS_BLOCKS)
		return fail_invalid_cdb(t, len_byte, -1);
	if (check_writable(t) != SCSI_TASK_EXEC || n == 0)
		return SCSI_TASK_DONE;
	/* The Data-Out is exactly one block (SBC-3 5.50): an initiator that says
	 * it sends another amount has built a bad command. */
	if (!ndob && t->exp_xfer_len != lu->block_size) {
		scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB);
		return SCSI_TASK_DONE;
	}
	t->lba = lba;
	t->nblocks = (uint32_t)n;
	if (!ndob) {
		int rc = task_buf_alloc(t, lu->block_size, true);
		if (rc < 0)
			return rc;
		t->data_out_len = lu->block_size;
	}
	uint64_t bytes = n * lu->block_size;
	return aux_alloc(t, bytes < SCSI_CHUNK_BYTES ? (uint32_t)bytes : SCSI_CHUNK_BYTES) ?: SCSI_TASK_EXEC;
}

int sbc_unmap_prepare(struct scsi_task *t)
{
	uint32_t len = get_be16(&t->cdb[7]);

	if (len == 0)                     /* no parameter list: not an error */
		return SCSI_TASK_DONE;
	if (len < 8)
		return fail_param_len(t);
	if (check_writable(t) != SCSI_TASK_EXEC)
		return SCSI_TASK_DONE;
	int rc = task_buf_alloc(t, len, false);
	if (rc < 0)
		return rc;
	t->data_out_len = len;
	return aux_alloc(t, 0) ?: SCSI_TASK_EXEC;
}

int sbc_sync_cache_prepare(struct scsi_task *t)
{
	uint64_t lba, n;
	uint16_t len_byte;

	decode_lba_len(t->cdb, &lba, &n, &len_byte);
	/* 0 blocks means "to the end"; we flush everything in any case. */
	if (check_range(t, lba, n) != SCSI_TASK_EXEC)
		return SCSI_TASK_DONE;
	return SCSI_TASK_EXEC;
}

int sbc_prefetch_prepare(struct scsi_task *t)
{
	uint64_t lba, n;
	uint16_t len_byte;

	/* We keep no cache of our own to load: after the range check the answer
	 * is GOOD ("not all blocks could be placed in the cache", SBC-3 5.10),
	 * never CONDITION MET. */
	decode_lba_len(t->cdb, &lba, &n, &len_byte);
	check_range(t, lba, n);
	return SCSI_TASK_DONE;
}

int sbc_caw_prepare(struct scsi_task *t)
{
	uint64_t lba = get_be64(&t->cdb[2]);
	uint32_t n = t->cdb[13];
	uint32_t bs = t->lu->block_size;

	if (n > SCSI_MAX_CAW_BLOCKS)
		return fail_invalid_cdb(t, 13, -1);
	int rc = check_range(t, lba, n);
	if (rc == SCSI_TASK_EXEC)
		rc = check_writable(t);
	if (rc != SCSI_TASK_EXEC)
		return SCSI_TASK_DONE;
	/* Data-Out: the compare and the write instance, 2 x n blocks exactly.
	 * With 0 blocks nothing is transferred and it is not an error (SBC-3
	 * 5.2) — unless the initiator announces more data than any COMPARE AND
	 * WRITE can carry (e.g. 256 blocks wrapped to 0 in the one-byte field). */
	if (n == 0) {
		if (t->exp_xfer_len > 2u * SCSI_MAX_CAW_BLOCKS * bs)
			return fail_invalid_cdb(t, 13, -1);
		return SCSI_TASK_DONE;
	}
	if (t->exp_xfer_len != 2 * n * bs)
		return fail_invalid_cdb(t, 13, -1);
	rc = setup_transfer(t, lba, n, 2ull * n * bs, 13, true);
	if (rc != SCSI_TASK_EXEC)
		return rc;
	return aux_alloc(t, n * bs) ?: SCSI_TASK_EXEC;
}

int sbc_orwrite_prepare(struct scsi_task *t)
{
	return write_with_scratch_prepare(t);
}

/* ---- exec machinery ---- */

static void sbc_finish(struct scsi_task *t)
{
	struct sbc_aux *a = aux_of(t);
	if (a && a->range.held) {
		/* on the LU's owner; the task completes home after */
		range_release_then_finish(t, &a->range);
		return;
	}
	task_finish(t);
}

static void fail_io(struct scsi_task *t, int status, bool write)
{
	const struct bdev_io *bio = &ioctx(t)->bio;
	/* A backend that knows the precise sense (nvme) gives it with the status. */
	uint32_t sense = bio->status == status ? bio->sense : 0;
	if (sense)
		scsi_task_set_sense(t, (uint8_t)(sense >> 16), (uint8_t)(sense >> 8), (uint8_t)sense);
	switch (sense ? 0 : status) {
	case 0:
		break;
	case -ENOSPC:
		scsi_task_set_sense(t, SK_DATA_PROTECT, ASC_SPACE_ALLOC_FAILED);
		break;
	case -EROFS:
		scsi_task_set_sense(t, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		break;
	case -EIO:
	case -ENODATA:
	case -EBADMSG:
		if (write)
			scsi_task_set_sense(t, SK_MEDIUM_ERROR, ASC_WRITE_ERROR);
		else
			scsi_task_set_sense(t, SK_MEDIUM_ERROR, ASC_READ_ERROR);
		break;
	default:
		scsi_task_set_sense(t, SK_HARDWARE_ERROR, ASC_INTERNAL_FAILURE);
		break;
	}
	log_warn("scsi: %s LUN %u: %s at LBA %llu failed: %s", t->lu->target->name, t->lu->lun,
		 write ? "write" : "read", (unsigned long long)t->lba, strerror(-status));
	sbc_finish(t);
}

static void io_done(struct bdev_io *io)
{
	struct scsi_task *t = io->ctx;
	t->state = SCSI_TS_RUNNING;
	if (t->aborted) {
		t->status = SAM_STAT_TASK_ABORTED;
		t->sense_len = 0;
		sbc_finish(t);
		return;
	}
	ioctx(t)->step(t, io->status);
}

static void submit(struct scsi_task *t, enum bdev_io_type type, uint64_t lba, uint64_t n,
		   struct iovec *iov, int iovcnt, bool fua, sbc_step_fn step)
{
	struct sbc_ioctx *x = ioctx(t);
	struct bdev_io *io = &x->bio;
	uint32_t bs = t->lu->block_size;

	/* Every field the caller owns is set (bdev_submit resets the backend's);
	 * status/sense cleared for fail_io when bdev_submit refuses io. */
	io->bdev = t->lu->bdev;
	io->type = type;
	io->fua = fua;
	io->offset = lba * bs;
	io->len = n * bs;
	io->iov = iov;
	io->iovcnt = iovcnt;
	io->cb = io_done;
	io->ctx = t;
	io->status = 0;
	io->sense = 0;
	x->step = step;
	t->state = SCSI_TS_IO;
	int rc = t->qp ? bdev_submit(t->qp, io) : -ENODEV;
	if (rc < 0) {
		t->state = SCSI_TS_RUNNING;
		step(t, rc);
	}
}

static bool write_fua(const struct scsi_task *t)
{
	return cdb_fua(t) || !atomic_load(&t->lu->wce);
}

/* Flush when the write cache is off and the last operation (unmap, write
 * zeroes) has no FUA of its own; then GOOD. */
static void finish_ok(struct scsi_task *t, int status)
{
	if (status)
		fail_io(t, status, true);
	else
		sbc_finish(t);
}

static void flush_if_no_cache(struct scsi_task *t, int status)
{
	if (status) {
		fail_io(t, status, true);
		return;
	}
	if (atomic_load(&t->lu->wce)) {
		sbc_finish(t);
		return;
	}
	submit(t, BDEV_IO_FLUSH, 0, 0, NULL, 0, false, finish_ok);
}

/* ---- READ / WRITE ---- */

static void read_done(struct scsi_task *t, int status)
{
	if (status) {
		fail_io(t, status, false);
		return;
	}
	t->data_in_len = t->nblocks * t->lu->block_size;
	sbc_finish(t);
}

static void write_done(struct scsi_task *t, int status)
{
	if (status)
		fail_io(t, status, true);
	else
		sbc_finish(t);
}

/* The initiator sent less than the CDB asked for (iSCSI EDTL < transfer
 * length): write the whole blocks that arrived, as libiscsi's residual tests
 * expect; a partial block is refused, nothing is written. Returns false if
 * the task ended here. */
static bool trim_to_received(struct scsi_task *t)
{
	uint32_t bs = t->lu->block_size;

	if (t->data_out_got >= t->data_out_len)
		return true;
	if (t->data_out_got % bs) {
		scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IU);
		sbc_finish(t);
		return false;
	}
	t->nblocks = t->data_out_got / bs;
	if (t->nblocks == 0) {
		sbc_finish(t);
		return false;
	}
	return true;
}

/* iov for the first t->nblocks blocks of the task buffer. */
static bool data_iov(struct scsi_task *t, struct iovec **iov, int *cnt)
{
	uint64_t len = (uint64_t)t->nblocks * t->lu->block_size;
	if (len == t->buf_len) {
		*iov = t->iov;
		*cnt = t->iovcnt;
		return true;
	}
	if (aux_alloc(t, 0) < 0) {
		t->status = SAM_STAT_BUSY;
		sbc_finish(t);
		return false;
	}
	*iov = aux_of(t)->sub;
	*cnt = iov_slice(t, 0, len, aux_of(t)->sub);
	return true;
}

/* range_wait_if_busy's first test, inline: no COMPARE AND WRITE range is
 * held on the LU (the common case) costs one load. */
static inline bool caw_maybe_busy(const struct scsi_task *t)
{
	return atomic_load_explicit(&t->lu->caw_active, memory_order_acquire) != 0;
}

/* A READ prepared without a buffer (data_in_any_mem, map_reads): iov[] gets
 * the backend's own memory and the task ends here, no copy, no I/O. When the
 * bdev cannot map the range (more segments than iov[] holds: a fragmented
 * mix of written and never-written pages) a buffer is allocated now and the
 * caller reads into it as usual (true). */
static bool read_mapped(struct scsi_task *t)
{
	uint32_t bs = t->lu->block_size;
	uint64_t len = (uint64_t)t->nblocks * bs;
	int n = bdev_read_map(t->lu->bdev, t->lba * bs, len, t->iov, SCSI_MAX_IOV);

	if (n > 0) {
		t->iovcnt = n;
		t->iov_mapped = true;
		t->buf_len = (uint32_t)len;
		t->data_in_len = (uint32_t)len;
		sbc_finish(t);
		return false;
	}
	if (task_buf_alloc(t, (uint32_t)len, true) < 0) {
		t->status = SAM_STAT_BUSY;
		sbc_finish(t);
		return false;
	}
	return true;
}

static void rw_start(struct scsi_task *t)
{
	struct iovec *iov;
	int cnt;

	if (is_write_opcode(t->cdb[0])) {
		if (!trim_to_received(t))
			return;
		if ((caw_maybe_busy(t) && range_wait_if_busy(t->lu, t->lba, t->nblocks, t)) ||
		    !data_iov(t, &iov, &cnt))
			return;
		submit(t, BDEV_IO_WRITE, t->lba, t->nblocks, iov, cnt, write_fua(t), write_done);
		return;
	}
	if (caw_maybe_busy(t) && range_wait_if_busy(t->lu, t->lba, t->nblocks, t))
		return;
	if (t->iovcnt == 0 && !read_mapped(t))
		return;
	submit(t, BDEV_IO_READ, t->lba, t->nblocks, t->iov, t->iovcnt, false, read_done);
}

/* ---- VERIFY / WRITE AND VERIFY: read back in chunks, compare ---- */

static void verify_next(struct scsi_task *t);

static void miscompare(struct scsi_task *t, uint64_t offset)
{
	scsi_task_set_sense(t, SK_MISCOMPARE, ASC_MISCOMPARE_VERIFY);
	if (offset <= 0xffffffffull)
		sense_set_info(t, (uint32_t)offset);
	sbc_finish(t);
}

/* Blocks the next step of a chunked command moves: as many as the scratch
 * buffer holds, but no further than the end of the command's range. */
static uint64_t chunk_blocks(struct scsi_task *t)
{
	const struct sbc_aux *a = aux_of(t);
	uint64_t chunk = a->scratch_len / t->lu->block_size;

	return chunk < t->nblocks - a->pos ? chunk : t->nblocks - a->pos;
}

static void verify_read_done(struct scsi_task *t, int status)
{
	struct sbc_aux *a = aux_of(t);
	uint32_t bs = t->lu->block_size;
	uint8_t bytchk = (t->cdb[1] >> 1) & 0x03;
	uint64_t chunk = chunk_blocks(t);

	if (status) {
		fail_io(t, status, false);
		return;
	}
	if (bytchk == 0x01) {
		int64_t d = buf_compare(t, a->pos * bs, a->scratch, chunk * bs);
		if (d >= 0) {
			miscompare(t, a->pos * bs + (uint64_t)d);
			return;
		}
	} else if (bytchk == 0x03) {
		for (uint64_t b = 0; b < chunk; b++) {
			int64_t d = buf_compare(t, 0, a->scratch + b * bs, bs);
			if (d >= 0) {
				miscompare(t, (a->pos + b) * bs + (uint64_t)d);
				return;
			}
		}
	}
	a->pos += chunk;
	verify_next(t);
}

static void verify_next(struct scsi_task *t)
{
	struct sbc_aux *a = aux_of(t);
	uint32_t bs = t->lu->block_size;

	if (a->pos >= t->nblocks) {
		sbc_finish(t);
		return;
	}
	uint64_t chunk = chunk_blocks(t);
	a->sub[0].iov_base = a->scratch;
	a->sub[0].iov_len = chunk * bs;
	submit(t, BDEV_IO_READ, t->lba + a->pos, chunk, a->sub, 1, false, verify_read_done);
}

static void verify_start(struct scsi_task *t)
{
	if (t->data_out_got < t->data_out_len) {
		uint64_t lba, n;
		uint16_t len_byte;
		decode_lba_len(t->cdb, &lba, &n, &len_byte);
		fail_invalid_cdb(t, len_byte, -1);      /* less data than the CDB said */
		sbc_finish(t);
		return;
	}
	if (range_wait_if_busy(t->lu, t->lba, t->nblocks, t))
		return;
	aux_of(t)->pos = 0;
	verify_next(t);
}

static void write_verify_written(struct scsi_task *t, int status)
{
	if (status) {
		fail_io(t, status, true);
		return;
	}
	/* Read back and (BYTCHK=1) compare with what we were sent. */
	aux_of(t)->pos = 0;
	verify_next(t);
}

static void write_verify_start(struct scsi_task *t)
{
	struct iovec *iov;
	int cnt;

	if (!trim_to_received(t))
		return;
	if (range_wait_if_busy(t->lu, t->lba, t->nblocks, t) || !data_iov(t, &iov, &cnt))
		return;
	/* The data must reach the medium before it is verified. */
	submit(t, BDEV_IO_WRITE, t->lba, t->nblocks, iov, cnt, true, write_verify_written);
}

/* ---- WRITE SAME ---- */

static void write_same_chunk(struct scsi_task *t, int status)
{
	struct sbc_aux *a = aux_of(t);
	uint32_t bs = t->lu->block_size;

	if (status) {
		fail_io(t, status, true);
		return;
	}
	if (a->pos >= t->nblocks) {
		sbc_finish(t);
		return;
	}
	uint64_t chunk = chunk_blocks(t);
	uint64_t lba = t->lba + a->pos;
	a->pos += chunk;
	a->sub[0].iov_base = a->scratch;
	a->sub[0].iov_len = chunk * bs;
	submit(t, BDEV_IO_WRITE, lba, chunk, a->sub, 1, write_fua(t), write_same_chunk);
}

static void write_same_start(struct scsi_task *t)
{
	struct sbc_aux *a = aux_of(t);
	uint32_t bs = t->lu->block_size;
	bool unmap = t->cdb[1] & 0x08;
	bool ndob = t->cdb[0] == 0x93 && (t->cdb[1] & 0x01);

	if (t->data_out_got < t->data_out_len) {
		scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB);
		sbc_finish(t);
		return;
	}
	if (range_wait_if_busy(t->lu, t->lba, t->nblocks, t))
		return;
	if (unmap) {
		/* Thin LU (the usage mask refuses UNMAP=1 otherwise): deallocate,
		 * whatever the data block holds — libiscsi reads LBPRZ zeroes back
		 * even after a non-zero block. */
		submit(t, BDEV_IO_UNMAP, t->lba, t->nblocks, NULL, 0, false, flush_if_no_cache);
		return;
	}
	if (ndob) {
		submit(t, BDEV_IO_WRITE_ZEROES, t->lba, t->nblocks, NULL, 0, false, flush_if_no_cache);
		return;
	}
	task_buf_read(t, 0, a->scratch, bs);
	if (all_zero(a->scratch, bs)) {
		submit(t, BDEV_IO_WRITE_ZEROES, t->lba, t->nblocks, NULL, 0, false, flush_if_no_cache);
		return;
	}
	/* Replicate the block through the bounce buffer, then write it in chunks. */
	for (uint32_t off = bs; off + bs <= a->scratch_len; off += bs)
		memcpy(a->scratch + off, a->scratch, bs);
	a->pos = 0;
	write_same_chunk(t, 0);
}

/* ---- UNMAP ---- */

static void unmap_next(struct scsi_task *t, int status)
{
	struct sbc_aux *a = aux_of(t);
	uint32_t ndesc = get_be16((const uint8_t *)t->iov[0].iov_base + 2) / 16;
	uint8_t d[16];

	if (status) {
		fail_io(t, status, true);
		return;
	}
	while (a->pos < ndesc) {
		task_buf_read(t, 8 + 16 * (uint32_t)a->pos, d, 16);
		a->pos++;
		uint32_t n = get_be32(d + 8);
		if (n) {
			submit(t, BDEV_IO_UNMAP, get_be64(d), n, NULL, 0, false, unmap_next);
			return;
		}
	}
	flush_if_no_cache(t, 0);
}

/* Validates the whole parameter list before anything is unmapped (SBC-3 5.28). */
static bool unmap_validate(struct scsi_task *t, uint32_t *ndesc)
{
	const struct scsi_lu *lu = t->lu;
	uint32_t len = t->data_out_len;
	uint8_t h[8], d[16];

	if (t->data_out_got < len) {
		fail_param_len(t);
		return false;
	}
	task_buf_read(t, 0, h, 8);
	uint32_t dl = get_be16(h), bdl = get_be16(h + 2);
	if (dl + 2 > len || bdl + 8 > len) {
		fail_param_len(t);
		return false;
	}
	/* An incomplete last descriptor is ignored (bdl not a multiple of 16). */
	*ndesc = bdl / 16;
	if (*ndesc > SCSI_MAX_UNMAP_DESC) {
		fail_invalid_param(t, 2, -1);
		return false;
	}
	for (uint32_t i = 0; i < *ndesc; i++) {
		task_buf_read(t, 8 + 16 * i, d, 16);
		uint64_t lba = get_be64(d);
		uint32_t n = get_be32(d + 8);
		if (lba > lu->nblocks || n > lu->nblocks - lba) {
			fail_lba_range(t);
			return false;
		}
		if (n > SCSI_MAX_UNMAP_BLOCKS) {
			fail_invalid_param(t, (uint16_t)(8 + 16 * i + 8), -1);
			return false;
		}
	}
	return true;
}

static void unmap_start(struct scsi_task *t)
{
	uint32_t ndesc;
	uint8_t d[16];

	if (!unmap_validate(t, &ndesc)) {
		sbc_finish(t);
		return;
	}
	for (uint32_t i = 0; i < ndesc; i++) {
		task_buf_read(t, 8 + 16 * i, d, 16);
		if (range_wait_if_busy(t->lu, get_be64(d), get_be32(d + 8), t))
			return;
	}
	aux_of(t)->pos = 0;
	unmap_next(t, 0);
}

/* ---- SYNCHRONIZE CACHE ---- */

static void flush_done(struct scsi_task *t, int status)
{
	if (status)
		fail_io(t, status, true);
	else
		sbc_finish(t);
}

void sbc_flush_then_finish(struct scsi_task *t)
{
	ioctx(t)->home = reactor_self();
	submit(t, BDEV_IO_FLUSH, 0, 0, NULL, 0, false, flush_done);
}

/* ---- COMPARE AND WRITE, ORWRITE: read-modify-write under a range lock ---- */

static void caw_read_done(struct scsi_task *t, int status)
{
	struct sbc_aux *a = aux_of(t);
	uint64_t len = (uint64_t)t->nblocks * t->lu->block_size;

	if (status) {
		fail_io(t, status, false);
		return;
	}
	/* Data-Out: the verify instance (n blocks), then the write instance. */
	int64_t d = buf_compare(t, 0, a->scratch, len);
	if (d >= 0) {
		miscompare(t, (uint64_t)d);
		return;
	}
	int cnt = iov_slice(t, len, len, a->sub);
	submit(t, BDEV_IO_WRITE, t->lba, t->nblocks, a->sub, cnt, write_fua(t), write_done);
}

static bool hold_range(struct scsi_task *t)
{
	struct sbc_aux *a = aux_of(t);
	if (a->range.held)            /* handed over by the previous holder */
		return true;
	a->range.lba = t->lba;
	a->range.nblocks = t->nblocks;
	/* false: queued, resumed when the holder is done */
	return range_hold(t->lu, &a->range, t);
}

struct caw_range *sbc_task_range(struct scsi_task *t)
{
	if ((t->cdb[0] == 0x89 || t->cdb[0] == 0x8b) && t->scsi_priv)
		return &aux_of(t)->range;
	return NULL;
}

bool sbc_task_extent(const struct scsi_task *t, uint64_t *lba, uint64_t *nblocks)
{
	if (t->cdb[0] == 0x42)
		return false;             /* UNMAP: one range per descriptor */
	*lba = t->lba;
	*nblocks = t->nblocks;
	return true;
}

static void caw_start(struct scsi_task *t)
{
	struct sbc_aux *a = aux_of(t);

	if (t->data_out_got < t->data_out_len) {
		fail_invalid_cdb(t, 13, -1);
		sbc_finish(t);
		return;
	}
	if (!hold_range(t))
		return;
	a->sub[0].iov_base = a->scratch;
	a->sub[0].iov_len = (size_t)t->nblocks * t->lu->block_size;
	submit(t, BDEV_IO_READ, t->lba, t->nblocks, a->sub, 1, false, caw_read_done);
}

static void orwrite_next(struct scsi_task *t, int status);

static void orwrite_read_done(struct scsi_task *t, int status)
{
	struct sbc_aux *a = aux_of(t);
	uint32_t bs = t->lu->block_size;
	uint64_t chunk = chunk_blocks(t);

	if (status) {
		fail_io(t, status, false);
		return;
	}
	buf_or(t, a->pos * bs, a->scratch, chunk * bs);
	int cnt = iov_slice(t, a->pos * bs, chunk * bs, a->sub);
	uint64_t lba = t->lba + a->pos;
	a->pos += chunk;
	submit(t, BDEV_IO_WRITE, lba, chunk, a->sub, cnt, write_fua(t), orwrite_next);
}

static void orwrite_next(struct scsi_task *t, int status)
{
	struct sbc_aux *a = aux_of(t);
	uint32_t bs = t->lu->block_size;

	if (status) {
		fail_io(t, status, true);
		return;
	}
	if (a->pos >= t->nblocks) {
		sbc_finish(t);
		return;
	}
	uint64_t chunk = chunk_blocks(t);
	a->sub[0].iov_base = a->scratch;
	a->sub[0].iov_len = chunk * bs;
	submit(t, BDEV_IO_READ, t->lba + a->pos, chunk, a->sub, 1, false, orwrite_read_done);
}

static void orwrite_start(struct scsi_task *t)
{
	if (t->data_out_got < t->data_out_len) {
		fail_invalid_cdb(t, 10, -1);
		sbc_finish(t);
		return;
	}
	if (!hold_range(t))
		return;
	aux_of(t)->pos = 0;
	orwrite_next(t, 0);
}

/* ---- dispatch ---- */

static void sbc_start(struct scsi_task *t)
{
	t->state = SCSI_TS_RUNNING;
	if (t->aborted) {
		t->status = SAM_STAT_TASK_ABORTED;
		sbc_finish(t);
		return;
	}
	switch (t->cdb[0]) {
	case 0x08: case 0x0a: case 0x28: case 0x2a:
	case 0xa8: case 0xaa: case 0x88: case 0x8a:
		rw_start(t);
		break;
	case 0x2e: case 0xae: case 0x8e:
		write_verify_start(t);
		break;
	case 0x2f: case 0xaf: case 0x8f:
		verify_start(t);
		break;
	case 0x41: case 0x93:
		write_same_start(t);
		break;
	case 0x42:
		unmap_start(t);
		break;
	case 0x35: case 0x91:
		submit(t, BDEV_IO_FLUSH, 0, 0, NULL, 0, false, flush_done);
		break;
	case 0x89:
		caw_start(t);
		break;
	case 0x8b:
		orwrite_start(t);
		break;
	default:
		log_err("scsi: no block exec for opcode %02x", t->cdb[0]);
		scsi_task_set_sense(t, SK_HARDWARE_ERROR, ASC_INTERNAL_FAILURE);
		sbc_finish(t);
		break;
	}
}

void sbc_exec(struct scsi_task *t)
{
	ioctx(t)->home = reactor_self();
	sbc_start(t);
}

static void resume_msg(void *a, void *b)
{
	(void)b;
	sbc_start(a);
}

void sbc_resume(struct scsi_task *t)
{
	struct reactor *home = ioctx(t)->home;
	struct reactor *self = reactor_self();

	/* A task runs on its own reactor (its pool, its qp): send it home. */
	if (home && home != self) {
		int rc = self ? reactor_send(reactor_id(home), resume_msg, t, NULL)
			      : reactor_send_ext(reactor_id(home), resume_msg, t, NULL);
		if (rc == 0)
			return;
		log_err("scsi: cannot resume a task on reactor %u: %s", reactor_id(home),
			strerror(-rc));
	}
	sbc_start(t);
}
