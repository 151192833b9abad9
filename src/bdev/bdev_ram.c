/* bdev_ram.c — a RAM disk: one anonymous private mapping shared by all reactors.
 *
 * The mapping is MAP_NORESERVE, so pages exist only where data was written:
 * that is what makes thin provisioning real here. UNMAP and WRITE_ZEROES zero
 * the unaligned edges and give the page-aligned interior back with
 * MADV_DONTNEED (those pages read back as zeroes). bdev_lba_status asks
 * mincore() which pages are resident.
 *
 * One subtlety: a read fault on a never-written private anonymous page maps the
 * shared zero page, and mincore() counts it as resident, so plain memcpy reads
 * would make read-but-never-written ranges look mapped. Reads therefore ask
 * mincore() first and fill non-resident pages with zeroes without touching them.
 *
 * Transparent huge pages are turned off for the mapping (MADV_NOHUGEPAGE): one
 * written 4 KiB block would otherwise make 2 MiB resident, and both memory use
 * and the provisioning status would lie by that much.
 *
 * Zero-copy reads (bdev_read_map, can_map): instead of copying, the reader is
 * given iovecs into the mapping for resident pages and into ram_zeroes, a
 * static read-only region of zeroes, for the others — the same mincore()
 * split as the copying read, so a read still never touches (and allocates) a
 * missing page. The SCSI layer sends Data-In of READs straight from there
 * (TCP); the memory stays valid while the bdev is open, which the LU's
 * reference held by the task until its Data-In is written guarantees. A WRITE
 * or UNMAP of those blocks on another reactor while the Data-In is being sent
 * makes the read see old data, new data or zeroes (MADV_DONTNEED of a page
 * being sent: the kernel's copy then reads zeroes, and maps the shared zero
 * page there — the page then counts as resident, the same window the copying
 * read has between its mincore() and its memcpy()).
 *
 * No locks: reactors may copy in and out of the same pages at once; overlapping
 * I/O to the same blocks is the initiator's business, as on a real disk.
 * All queued work happens in start(), which bdev_qp_poll calls — never in
 * bdev_submit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "bdev_internal.h"
#include "core/log.h"

/* Pages checked per mincore() call on the read path. */
#define RAM_MINCORE_BATCH 256
/* bdev_lba_status looks at most this far ahead per call. */
#define RAM_STATUS_SCAN_MAX (1ull << 30)
/* Mapped reads: a run of missing pages takes one segment per this many bytes
 * (an 8 MiB read of nothing: 32 segments). */
#define RAM_ZERO_BYTES (256u << 10)

/* What missing pages read as (const: in .rodata, never written). */
static const uint8_t ram_zeroes[RAM_ZERO_BYTES] __attribute__((aligned(4096)));

struct ram_bdev {
	uint8_t *base;
	uint64_t size;
	size_t page;
	uint64_t page_mask;       /* page - 1 */
};

static int ram_open(struct bdev *b, const struct bdev_opts *opts)
{
	uint64_t size = opts->size - opts->size % b->block_size;
	if (size == 0) {
		log_err("bdev %s: ram size %llu is smaller than one block", b->name,
			(unsigned long long)opts->size);
		return -EINVAL;
	}
	if (size != opts->size)
		log_info("bdev %s: size %llu rounded down to %llu (block size %u)", b->name,
			 (unsigned long long)opts->size, (unsigned long long)size, b->block_size);
	struct ram_bdev *rb = calloc(1, sizeof(*rb));
	if (!rb)
		return -ENOMEM;
	rb->page = (size_t)sysconf(_SC_PAGESIZE);
	rb->page_mask = rb->page - 1;
	rb->size = size;
	rb->base = mmap(NULL, size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (rb->base == MAP_FAILED) {
		int err = errno;
		log_err("bdev %s: cannot map %llu bytes: %s", b->name,
			(unsigned long long)size, strerror(err));
		free(rb);
		return -err;
	}
	/* Failure only costs precision (see the top of the file). */
	(void)madvise(rb->base, size, MADV_NOHUGEPAGE);
	b->size = size;
	b->can_unmap = !b->readonly;
	b->can_map = rb->page <= RAM_ZERO_BYTES;
	b->direct = false;
	b->is_blockdev = false;
	b->priv = rb;
	return 0;
}

static void ram_close(struct bdev *b)
{
	struct ram_bdev *rb = b->priv;
	munmap(rb->base, rb->size);
	free(rb);
}

/* Walks io's iovecs from its current position. */
static void iov_copy_in(struct bdev_io *io, uint8_t *dst, size_t len)
{
	while (len) {
		const struct iovec *v = &io->iov[io->iov_idx];
		size_t n = v->iov_len - io->iov_off;
		if (n > len)
			n = len;
		memcpy(dst, (uint8_t *)v->iov_base + io->iov_off, n);
		dst += n;
		len -= n;
		bdev_io_advance(io, n);
	}
}

/* src NULL: fill with zeroes. */
static void iov_copy_out(struct bdev_io *io, const uint8_t *src, size_t len)
{
	while (len) {
		const struct iovec *v = &io->iov[io->iov_idx];
		size_t n = v->iov_len - io->iov_off;
		if (n > len)
			n = len;
		uint8_t *dst = (uint8_t *)v->iov_base + io->iov_off;
		if (src) {
			memcpy(dst, src, n);
			src += n;
		} else {
			memset(dst, 0, n);
		}
		len -= n;
		bdev_io_advance(io, n);
	}
}

/* Walks [off, end) a page at a time, one mincore() per RAM_MINCORE_BATCH
 * pages, calling piece(arg, p, n) with p in the mapping for resident pages
 * and NULL for never-written ones (which are never touched). Stops at the
 * first nonzero return of piece and returns it; -errno if mincore fails. */
static int ram_walk(struct ram_bdev *rb, uint64_t off, uint64_t end,
		    int (*piece)(void *arg, const uint8_t *p, size_t n), void *arg)
{
	unsigned char vec[RAM_MINCORE_BATCH];

	while (off < end) {
		uint64_t first = off & ~rb->page_mask;
		uint64_t span = end - first;
		if (span > (uint64_t)RAM_MINCORE_BATCH * rb->page)
			span = (uint64_t)RAM_MINCORE_BATCH * rb->page;
		if (mincore(rb->base + first, span, vec) < 0)
			return -errno;
		for (size_t i = 0; off < end && i < RAM_MINCORE_BATCH; i++) {
			uint64_t page_end = first + (i + 1) * rb->page;
			size_t n = (size_t)((page_end < end ? page_end : end) - off);
			int rc = piece(arg, (vec[i] & 1) ? rb->base + off : NULL, n);
			if (rc)
				return rc;
			off += n;
		}
	}
	return 0;
}

static int read_piece(void *arg, const uint8_t *p, size_t n)
{
	iov_copy_out(arg, p, n);
	return 0;
}

static int ram_read(struct ram_bdev *rb, struct bdev_io *io)
{
	return ram_walk(rb, io->offset, io->offset + io->len, read_piece, io);
}

/* Appends [p, p + n) to iov[0..*cnt), merged with the last segment when it
 * continues it (resident pages are contiguous in the mapping; missing ones
 * all start at ram_zeroes, up to RAM_ZERO_BYTES). */
static bool map_append(struct iovec *iov, int *cnt, int max, const uint8_t *p, size_t n,
		       bool zero)
{
	if (*cnt > 0) {
		struct iovec *last = &iov[*cnt - 1];
		bool last_zero = last->iov_base == (void *)ram_zeroes;
		if (zero ? last_zero && last->iov_len + n <= RAM_ZERO_BYTES
			 : !last_zero && (uint8_t *)last->iov_base + last->iov_len == p) {
			last->iov_len += n;
			return true;
		}
	}
	if (*cnt == max)
		return false;
	iov[*cnt].iov_base = (void *)p;
	iov[*cnt].iov_len = n;
	(*cnt)++;
	return true;
}

struct map_state {
	struct iovec *iov;
	int cnt, max;
};

static int map_piece(void *arg, const uint8_t *p, size_t n)
{
	struct map_state *m = arg;
	bool zero = p == NULL;

	return map_append(m->iov, &m->cnt, m->max, zero ? ram_zeroes : p, n, zero) ? 0 : -E2BIG;
}

static int ram_map(struct ram_bdev *rb, uint64_t off, uint64_t len, struct iovec *iov, int max)
{
	struct map_state m = { iov, 0, max };
	int rc = ram_walk(rb, off, off + len, map_piece, &m);

	return rc < 0 ? rc : m.cnt;
}

/* Not behind the backend table: only ram can, and the SCSI layer calls it
 * per READ, so it is one direct call (bdev.h). */
int bdev_read_map(struct bdev *b, uint64_t offset, uint64_t len, struct iovec *iov, int max)
{
	if (!b->can_map || b->backend != &bdev_ram_backend)
		return -EOPNOTSUPP;
	if (len == 0 || offset > b->size || len > b->size - offset ||
	    ((offset | len) & (b->block_size - 1)) || max <= 0)
		return -EINVAL;
	return ram_map(b->priv, offset, len, iov, max);
}

static bool page_resident(struct ram_bdev *rb, uint64_t off)
{
	unsigned char v = 1;
	(void)mincore(rb->base + (off - off % rb->page), rb->page, &v);
	return v & 1;
}

/* Zeroes [off, off+len): page-aligned interior released, edges cleared only if
 * their page exists (a missing page already reads as zeroes and must stay
 * unallocated). */
static int ram_zero(struct ram_bdev *rb, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	uint64_t lo = (off + rb->page - 1) / rb->page * rb->page;
	uint64_t hi = end / rb->page * rb->page;

	if (lo >= hi) {             /* inside one page, or straddling two */
		uint64_t mid = lo < end ? lo : end;
		if (page_resident(rb, off))
			memset(rb->base + off, 0, mid - off);
		if (mid < end && page_resident(rb, mid))
			memset(rb->base + mid, 0, end - mid);
		return 0;
	}
	if (off < lo && page_resident(rb, off))
		memset(rb->base + off, 0, lo - off);
	if (hi < end && page_resident(rb, hi))
		memset(rb->base + hi, 0, end - hi);
	if (madvise(rb->base + lo, hi - lo, MADV_DONTNEED) < 0)
		return -errno;
	return 0;
}

static int ram_start(struct bdev_qp *qp, void *state, struct bdev_io *io)
{
	struct ram_bdev *rb = io->bdev->priv;
	int rc = 0;
	(void)state;

	switch (io->type) {
	case BDEV_IO_READ:
		rc = ram_read(rb, io);
		break;
	case BDEV_IO_WRITE:
		iov_copy_in(io, rb->base + io->offset, io->len);
		break;
	case BDEV_IO_FLUSH:           /* nothing is volatile beyond RAM itself */
		break;
	case BDEV_IO_UNMAP:
	case BDEV_IO_WRITE_ZEROES:
		rc = ram_zero(rb, io->offset, io->len);
		break;
	}
	bdev_io_done_later(qp, io, rc);
	return 0;
}

static int ram_lba_status(struct bdev *b, uint64_t offset, uint64_t *len, bool *mapped)
{
	struct ram_bdev *rb = b->priv;
	uint64_t limit = b->size - offset;
	if (limit > RAM_STATUS_SCAN_MAX)
		limit = RAM_STATUS_SCAN_MAX;
	uint64_t end = offset + limit;
	uint64_t pos = offset - offset % rb->page;
	unsigned char vec[RAM_MINCORE_BATCH];
	bool first = true, state = false;

	while (pos < end) {
		uint64_t span = end - pos;
		if (span > (uint64_t)RAM_MINCORE_BATCH * rb->page)
			span = (uint64_t)RAM_MINCORE_BATCH * rb->page;
		if (mincore(rb->base + pos, span, vec) < 0)
			return -errno;
		size_t pages = (size_t)((span + rb->page - 1) / rb->page);
		for (size_t i = 0; i < pages; i++) {
			bool res = vec[i] & 1;
			if (first) {
				state = res;
				first = false;
			} else if (res != state) {
				*len = pos + i * rb->page - offset;
				*mapped = state;
				return 0;
			}
		}
		pos += pages * rb->page;
	}
	*len = limit;
	*mapped = state;
	return 0;
}

const struct bdev_backend bdev_ram_backend = {
	.name = "ram",
	.open = ram_open,
	.close = ram_close,
	.start = ram_start,
	.lba_status = ram_lba_status,
};
