/* bdev_uring.c — files and block devices through io_uring.
 *
 * One io_uring per qp (so per reactor), shared by every uring bdev the reactor
 * drives. Each bdev's fd is installed in the ring's fixed-file table the first
 * time the qp sees it. Slots are global: bdev_open takes a free slot number
 * (the same on every ring), and a qp keeps, per slot, the id of the bdev it
 * installed there, so a slot reused by a later bdev is simply re-installed
 * (which also drops the ring's reference to the closed file). More open bdevs
 * than slots, or a kernel without sparse tables, means plain fds: correct, a
 * little slower.
 *
 * Opening: O_DIRECT unless the file system refuses it (EINVAL, e.g. ramfs) or
 * needs an alignment larger than the exported block size; then buffered I/O,
 * logged once at info. bdev->direct tells which.
 *
 * Registered buffers: when the qp has a pool (bdev_qp_set_pool), every chunk
 * of it gets a slot in the ring's fixed-buffer table, through a pool
 * registration hook: chunks mapped before the ring exists are installed when
 * it is made, later ones when the pool maps them, and a chunk the pool unmaps
 * leaves its slot. Registration is only an optimisation, so the hook never
 * refuses a chunk (which would fail the pool's allocation): when there is no
 * slot, no table, or the kernel refuses, the chunk simply is not installed and
 * I/O on it goes the plain way.
 *
 * Operations:
 *   READ/WRITE    one segment inside an installed chunk: READ_FIXED/WRITE_FIXED
 *                 with that chunk's slot; several segments each inside one: one
 *                 fixed SQE per segment (a tracker from the qp's fixed set
 *                 counts their CQEs; what moved is the run of whole segments
 *                 from the start, see split_done); otherwise readv/writev
 *                 (RWF_DSYNC when fua, every way). A short transfer goes back
 *                 to the queue and the rest is submitted on the next poll; when it
 *                 stopped inside an iovec, that iovec's rest goes alone first (no
 *                 copy of the caller's array needed). 0 bytes moved = -EIO (EOF).
 *   FLUSH         fsync(IORING_FSYNC_DATASYNC).
 *   UNMAP         files: fallocate(PUNCH_HOLE|KEEP_SIZE). can_unmap is probed at
 *                 open by punching a 4 KiB hole well beyond EOF (KEEP_SIZE: the
 *                 file's size and data are untouched; only blocks preallocated past
 *                 EOF could go, which hold no data); a file system that refuses
 *                 later still yields -EOPNOTSUPP for that I/O.
 *                 Block devices: ioctl(BLKDISCARD), synchronous on the reactor
 *                 thread (rare; io_uring has no discard on the kernels we target).
 *                 Whether discarded sectors read back as zeroes is up to the device.
 *   WRITE_ZEROES  files: fallocate(ZERO_RANGE|KEEP_SIZE); where that is refused
 *                 (-EOPNOTSUPP, e.g. tmpfs) the bdev remembers it and writes from a
 *                 per-qp zero buffer instead, up to BDEV_IO_MAX_IOV chunks per SQE.
 *                 Block devices: ioctl(BLKZEROOUT), synchronous like BLKDISCARD.
 * Errors come back as io->status = -errno; -EAGAIN/-EINTR are retried.
 *
 * Ring flags: none that defer completions (COOP_TASKRUN, DEFER_TASKRUN): a
 * sleeping reactor relies on the kernel posting CQEs, and so signalling the
 * eventfd, on its own. SQPOLL when configured (ring_init).
 *
 * System calls: an I/O gets its SQE in bdev_submit when the ring exists and
 * nothing is queued ahead of it (start_in_submit), else when the poll starts
 * the queue; each poll then does one io_uring_submit for all SQEs filled since
 * the last (uring_commit; none at all with SQPOLL while its thread is awake).
 * Completions are read from the CQ ring in the poller without entering the
 * kernel (cq_take). The ring is entered only to submit (or to flush an
 * overflowed CQ), and the reactor sleeps in epoll on the ring's eventfd.
 *
 * The common case is short on purpose: a one-segment READ/WRITE (or the one
 * piece a short transfer left) is one SQE filled by start_piece, its buffer's
 * table slot found through a per-qp chunk cache (fixed_buf), and a CQE that
 * moved all of it completes the io at once (complete_one); splits, vectored
 * I/O, retries and zeroing take the general code.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "bdev_internal.h"
#include "core/log.h"
#include "core/reactor.h"
#include "mem/buddy.h"
#include "mem/pool.h"

#define URING_FIXED_SLOTS 256
#define URING_MAX_BUFS    16384            /* the kernel's IORING_MAX_REG_BUFFERS */
#define URING_ZERO_CHUNK  (64u * 1024)     /* zero buffer; x BDEV_IO_MAX_IOV per SQE */
#define URING_REAP_BATCH  64
#define URING_SPLITS      32               /* multi-segment fixed I/O in flight per qp */
#define URING_SPLIT_TAG   (1ull << 63)     /* user_data of a segment SQE (not an io) */
#define URING_SQPOLL_IDLE_MS 1000          /* SQPOLL thread sleeps after this idle */

/* Set once before any qp exists (bdev_uring_set_sqpoll). */
static bool g_sqpoll;

/* A READ/WRITE split into one fixed SQE per buffer segment; user_data of each
 * is URING_SPLIT_TAG | tracker index << 8 | segment. */
struct uring_split {
	struct bdev_io *io;       /* NULL: free */
	unsigned pending;         /* segment SQEs whose CQE has not come */
	unsigned nseg;
	uint32_t len[BDEV_IO_MAX_IOV];
	int32_t res[BDEV_IO_MAX_IOV];
};

struct uring_bdev {
	int fd;
	int slot;                 /* fixed-file slot, -1 = none */
	uint64_t id;              /* unique over the process's life */
	int no_zero_range;        /* set (atomically) once ZERO_RANGE was refused */
};

/* Wakes a sleeping reactor when CQEs arrive. Separate from the qp because the
 * reactor may still hold a pointer to it until the turn after event_del. */
struct uring_wake {
	struct reactor_event ev;
	struct bdev_qp *qp;       /* NULL once the qp is gone */
};

struct uring_qp {
	struct io_uring ring;
	unsigned inflight;        /* SQEs prepared, CQE not yet reaped */
	bool fixed_ok;            /* sparse fixed-file table registered */
	uint64_t slot_owner[URING_FIXED_SLOTS];   /* bdev id installed per slot */
	struct uring_wake *wake;
	int efd;
	uint8_t *zero_buf;        /* URING_ZERO_CHUNK of zeroes, made on first need */
	struct iovec zero_iov[BDEV_IO_MAX_IOV];
	struct uring_split splits[URING_SPLITS];
	bool sqpoll;              /* the kernel polls the SQ (IORING_SETUP_SQPOLL) */
};

/* ---- global slot numbers (open/close only, never on the I/O path) ---- */

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static bool slot_used[URING_FIXED_SLOTS];
static uint64_t next_bdev_id = 1;

static void slot_take(struct uring_bdev *ub)
{
	pthread_mutex_lock(&slots_lock);
	ub->id = next_bdev_id++;
	ub->slot = -1;
	for (int i = 0; i < URING_FIXED_SLOTS; i++) {
		if (!slot_used[i]) {
			slot_used[i] = true;
			ub->slot = i;
			break;
		}
	}
	pthread_mutex_unlock(&slots_lock);
}

static void slot_release(struct uring_bdev *ub)
{
	if (ub->slot < 0)
		return;
	pthread_mutex_lock(&slots_lock);
	slot_used[ub->slot] = false;
	pthread_mutex_unlock(&slots_lock);
}

/* ---- open ---- */

static int open_fd(const char *path, bool readonly, bool direct)
{
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
	int fd = open(path, flags);
	return fd < 0 ? -errno : fd;
}

/* Smallest file offset alignment O_DIRECT needs here, 0 if unknown. */
static unsigned dio_offset_align(int fd)
{
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) < 0 ||
	    !(sx.stx_mask & STATX_DIOALIGN))
		return 0;
	return sx.stx_dio_offset_align;
}

static bool sysfs_discard(dev_t rdev)
{
	/* A partition has no queue/ of its own: its disk's is one level up. */
	static const char *const fmt[] = {
		"/sys/dev/block/%u:%u/queue/discard_max_bytes",
		"/sys/dev/block/%u:%u/../queue/discard_max_bytes",
	};
	for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), fmt[i], major(rdev), minor(rdev));
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		unsigned long long v = 0;
		int n = fscanf(f, "%llu", &v);
		fclose(f);
		return n == 1 && v > 0;
	}
	return false;
}

static int open_blockdev(struct bdev *b, const struct bdev_opts *opts, int fd,
			 const struct stat *st)
{
	uint64_t dev_size = 0;
	int lbs = 0;
	if (ioctl(fd, BLKGETSIZE64, &dev_size) < 0 || ioctl(fd, BLKSSZGET, &lbs) < 0) {
		int err = errno;
		log_err("bdev %s: cannot query block device: %s", b->name, strerror(err));
		return -err;
	}
	if ((uint32_t)lbs > b->block_size) {
		log_err("bdev %s: block size %u is below the device's logical sector %d",
			b->name, b->block_size, lbs);
		return -EINVAL;
	}
	if (opts->size > dev_size) {
		log_err("bdev %s: size %" PRIu64 " exceeds the device (%" PRIu64 ")",
			b->name, opts->size, dev_size);
		return -EINVAL;
	}
	b->size = opts->size ? opts->size : dev_size;
	b->is_blockdev = true;
	b->can_unmap = !b->readonly && sysfs_discard(st->st_rdev);
	return 0;
}

/* See the top of the file: a hole punched past EOF touches no data. */
static bool probe_punch_hole(int fd, uint64_t fsize)
{
	uint64_t at = (fsize + (1u << 20) - 1) / (1u << 20) * (1u << 20) + (1u << 20);
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)at, 4096) == 0;
}

/* *fd may be replaced by a buffered one (*direct cleared). */
static int open_file(struct bdev *b, const struct bdev_opts *opts, int *fd, bool *direct,
		     const struct stat *st)
{
	uint64_t fsize = (uint64_t)st->st_size;
	b->size = opts->size ? opts->size : fsize;
	if (b->size > fsize) {
		/* A sized file LUN on a shorter (or new, empty) file: grow it,
		 * sparse. Never shrink: the export may be smaller than the file. */
		if (b->readonly) {
			log_err("bdev %s: file is %" PRIu64 " bytes, %" PRIu64 " requested, read-only",
				b->name, fsize, b->size);
			return -EINVAL;
		}
		if (ftruncate(*fd, (off_t)b->size) < 0) {
			int err = errno;
			log_err("bdev %s: cannot grow file to %" PRIu64 ": %s", b->name,
				b->size, strerror(err));
			return -err;
		}
		log_info("bdev %s: file grown from %" PRIu64 " to %" PRIu64 " bytes",
			 b->name, fsize, b->size);
		fsize = b->size;
	}
	unsigned align = *direct ? dio_offset_align(*fd) : 0;
	if (align > b->block_size) {
		log_info("bdev %s: O_DIRECT needs %u-byte alignment, above block size %u: "
			 "using buffered I/O", b->name, align, b->block_size);
		int nfd = open_fd(opts->path, b->readonly, false);
		if (nfd < 0) {
			log_err("bdev %s: cannot reopen: %s", b->name, strerror(-nfd));
			return nfd;
		}
		close(*fd);
		*fd = nfd;
		*direct = false;
	}
	b->can_unmap = !b->readonly && probe_punch_hole(*fd, fsize);
	return 0;
}

static int uring_open(struct bdev *b, const struct bdev_opts *opts)
{
	bool direct = true;
	int fd = open_fd(opts->path, b->readonly, true);
	if (fd == -EINVAL) {
		direct = false;
		fd = open_fd(opts->path, b->readonly, false);
		if (fd >= 0)
			log_info("bdev %s: O_DIRECT refused by the file system, using buffered I/O",
				 b->name);
	}
	if (fd < 0) {
		log_err("bdev %s: cannot open: %s", b->name, strerror(-fd));
		return fd;
	}
	struct stat st;
	int rc;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		log_err("bdev %s: fstat: %s", b->name, strerror(-rc));
	} else if (S_ISBLK(st.st_mode)) {
		rc = open_blockdev(b, opts, fd, &st);
	} else if (S_ISREG(st.st_mode)) {
		rc = open_file(b, opts, &fd, &direct, &st);
	} else {
		log_err("bdev %s: not a regular file or block device", b->name);
		rc = -EINVAL;
	}
	if (rc == 0) {
		uint64_t size = b->size - b->size % b->block_size;
		if (size == 0) {
			log_err("bdev %s: size %" PRIu64 " is smaller than one block", b->name, b->size);
			rc = -EINVAL;
		} else if (size != b->size) {
			log_info("bdev %s: size %" PRIu64 " rounded down to %" PRIu64
				 " (block size %u)", b->name, b->size, size, b->block_size);
			b->size = size;
		}
	}
	struct uring_bdev *ub = rc == 0 ? calloc(1, sizeof(*ub)) : NULL;
	if (rc == 0 && !ub)
		rc = -ENOMEM;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	ub->fd = fd;
	slot_take(ub);
	b->direct = direct;
	b->priv = ub;
	return 0;
}

static void uring_close(struct bdev *b)
{
	struct uring_bdev *ub = b->priv;
	slot_release(ub);
	close(ub->fd);
	free(ub);
}

/* ---- registered buffers: the qp's pool chunks in the ring's buffer table ---- */

/* Lives from bdev_uring_bufs_attach to _detach, independent of the ring (which
 * may be made later, or never). Slot s holds chunk slot[s] (iov_base NULL:
 * free); the pool keeps s + 1 as the chunk's handle, so finding the slot of a
 * buffer is one pool lookup. */
/* Chunk -> slot cache for fixed_buf, direct-mapped by chunk number (the
 * chunks a pool maps are mostly consecutive, so they rarely collide). Filled
 * when the pool registers a chunk, emptied when it unregisters it; a miss
 * (collision) asks the pool. */
#define URING_BUF_CACHE 256
struct uring_buf_cache {
	uintptr_t key;              /* chunk address / BUDDY_CHUNK_SIZE; 0: empty */
	unsigned slot;
};

struct uring_bufs {
	struct uring_buf_cache cache[URING_BUF_CACHE];
	struct bdev_qp *qp;
	struct mem_pool *pool;
	unsigned reg_id;            /* our hook's id on the pool */
	unsigned nslots;
	unsigned nfree;
	unsigned *free;             /* stack of free slot numbers */
	struct iovec *slot;
	bool *live;                 /* slot installed in ring's table */
	struct io_uring *ring;      /* table registered on it; NULL: none */
	bool warned;                /* an install failure was logged */
};

/* Puts slot s's chunk into the ring's table; on failure it stays out (plain
 * I/O for that chunk). */
static void slot_install(struct uring_bufs *ub, unsigned s)
{
	int rc = io_uring_register_buffers_update_tag(ub->ring, s, &ub->slot[s], NULL, 1);
	if (rc == 1) {
		ub->live[s] = true;
		ub->qp->stats.fixed_bufs++;
		return;
	}
	if (!ub->warned)
		log_warn("bdev: cannot register a pool chunk with io_uring (%s): plain I/O on it"
			 " (RLIMIT_MEMLOCK?)", strerror(rc < 0 ? -rc : EIO));
	ub->warned = true;
}

static void slot_remove(struct uring_bufs *ub, unsigned s)
{
	if (!ub->live[s])
		return;
	/* An empty iovec clears the slot; an I/O still using the old buffer keeps
	 * the kernel's reference to it until it completes. */
	struct iovec none = { NULL, 0 };
	int rc = io_uring_register_buffers_update_tag(ub->ring, s, &none, NULL, 1);
	if (rc != 1)
		log_warn("bdev: cannot clear registered buffer %u: %s", s,
			 strerror(rc < 0 ? -rc : EIO));
	ub->live[s] = false;
	ub->qp->stats.fixed_bufs--;
}

static uintptr_t chunk_key(const void *p)
{
	return (uintptr_t)p / BUDDY_CHUNK_SIZE;
}

static struct uring_buf_cache *cache_entry(struct uring_bufs *ub, uintptr_t key)
{
	return &ub->cache[key % URING_BUF_CACHE];
}

/* Only whole, aligned chunks are cached: then every byte of one has its key. */
static void cache_put(struct uring_bufs *ub, const struct iovec *c, unsigned s)
{
	if ((uintptr_t)c->iov_base % BUDDY_CHUNK_SIZE || c->iov_len != BUDDY_CHUNK_SIZE)
		return;
	uintptr_t key = chunk_key(c->iov_base);
	*cache_entry(ub, key) = (struct uring_buf_cache){ key, s };
}

static void cache_drop(struct uring_bufs *ub, unsigned s)
{
	uintptr_t key = chunk_key(ub->slot[s].iov_base);
	struct uring_buf_cache *e = cache_entry(ub, key);
	if (e->key == key && e->slot == s)
		*e = (struct uring_buf_cache){ 0, 0 };
}

/* Pool hook: a chunk was mapped (or the hook added). Never fails: see top. */
static int bufs_reg(void *ctx, void *addr, size_t len, void **handle)
{
	struct uring_bufs *ub = ctx;
	*handle = NULL;
	if (ub->nfree == 0)
		return 0;
	unsigned s = ub->free[--ub->nfree];
	ub->slot[s] = (struct iovec){ addr, len };
	if (ub->ring)
		slot_install(ub, s);
	cache_put(ub, &ub->slot[s], s);
	*handle = (void *)(uintptr_t)(s + 1);
	return 0;
}

/* Pool hook: the chunk is about to be unmapped (or the hook removed). */
static void bufs_unreg(void *ctx, void *handle)
{
	struct uring_bufs *ub = ctx;
	if (!handle)
		return;
	unsigned s = (unsigned)((uintptr_t)handle - 1);
	slot_remove(ub, s);
	cache_drop(ub, s);
	ub->slot[s] = (struct iovec){ NULL, 0 };
	ub->free[ub->nfree++] = s;
}

/* Gives ring a table with a slot per chunk the pool can map, and installs the
 * chunks it has mapped so far. */
static void bufs_ring_attach(struct uring_bufs *ub, struct io_uring *ring)
{
	int rc = io_uring_register_buffers_sparse(ring, ub->nslots);
	if (rc < 0) {
		log_info("bdev: io_uring registered buffers unavailable (%s): plain reads "
			 "and writes", strerror(-rc));
		return;
	}
	ub->ring = ring;
	for (unsigned s = 0; s < ub->nslots; s++)
		if (ub->slot[s].iov_base)
			slot_install(ub, s);
}

static void bufs_ring_detach(struct uring_bufs *ub)
{
	if (!ub->ring)
		return;
	/* Unpins every chunk at once; the slots stay assigned, for a next ring. */
	int rc = io_uring_unregister_buffers(ub->ring);
	if (rc < 0)
		log_warn("bdev: io_uring_unregister_buffers: %s", strerror(-rc));
	memset(ub->live, 0, ub->nslots * sizeof(*ub->live));
	ub->qp->stats.fixed_bufs = 0;
	ub->ring = NULL;
}

static void bufs_free(struct uring_bufs *ub)
{
	free(ub->free);
	free(ub->slot);
	free(ub->live);
	free(ub);
}

int bdev_uring_bufs_attach(struct bdev_qp *qp, struct mem_pool *pool)
{
	struct mem_pool_stats ps;
	mem_pool_get_stats(pool, &ps);
	size_t chunks = ps.limit / BUDDY_CHUNK_SIZE;
	struct uring_bufs *ub = calloc(1, sizeof(*ub));
	if (!ub)
		return -ENOMEM;
	ub->qp = qp;
	ub->pool = pool;
	ub->nslots = chunks < 1 ? 1 : chunks > URING_MAX_BUFS ? URING_MAX_BUFS : (unsigned)chunks;
	ub->free = calloc(ub->nslots, sizeof(*ub->free));
	ub->slot = calloc(ub->nslots, sizeof(*ub->slot));
	ub->live = calloc(ub->nslots, sizeof(*ub->live));
	if (!ub->free || !ub->slot || !ub->live) {
		bufs_free(ub);
		return -ENOMEM;
	}
	/* Lowest slots first: the stack pops from the end. */
	for (unsigned s = 0; s < ub->nslots; s++)
		ub->free[s] = ub->nslots - 1 - s;
	ub->nfree = ub->nslots;
	struct mem_reg_ops ops = { bufs_reg, bufs_unreg, ub };
	int rc = mem_pool_add_reg(pool, &ops, &ub->reg_id);
	if (rc < 0) {
		bufs_free(ub);
		return rc;
	}
	qp->pool = pool;
	qp->ubufs = ub;
	if (qp->ready[BDEV_TYPE_URING]) {
		struct uring_qp *uq = qp->state[BDEV_TYPE_URING];
		bufs_ring_attach(ub, &uq->ring);
	}
	return 0;
}

void bdev_uring_bufs_detach(struct bdev_qp *qp)
{
	struct uring_bufs *ub = qp->ubufs;
	if (!ub)
		return;
	bufs_ring_detach(ub);
	mem_pool_del_reg(ub->pool, ub->reg_id);   /* slots freed, no syscalls: no ring */
	bufs_free(ub);
	qp->ubufs = NULL;
	qp->pool = NULL;
}

/* Buffer table slot for [p, p + n) if it lies inside one installed chunk; -1
 * otherwise (the caller then uses plain readv/writev). */
static int fixed_buf(const struct bdev_qp *qp, const void *p, size_t n)
{
	struct uring_bufs *ub = qp->ubufs;
	if (!ub)
		return -1;
	uintptr_t key = chunk_key(p);
	const struct uring_buf_cache *e = cache_entry(ub, key);
	unsigned s;
	if (e->key == key) {
		s = e->slot;
	} else {
		void *h = mem_pool_reg_handle_id(ub->pool, ub->reg_id, p);
		if (!h)
			return -1;
		s = (unsigned)((uintptr_t)h - 1);
		cache_put(ub, &ub->slot[s], s);   /* it collided: now it wins */
	}
	const struct iovec *c = &ub->slot[s];
	/* p is in the chunk (that is how h was found); its end must be too. */
	if (!ub->live[s] || n > (size_t)((const uint8_t *)c->iov_base + c->iov_len -
					 (const uint8_t *)p))
		return -1;
	return (int)s;
}

/* ---- per-qp ring ---- */

static void wake_event(void *arg, uint32_t events)
{
	struct uring_wake *w = arg;
	uint64_t v;
	(void)events;
	/* Reset the counter (one read does), or level-triggered epoll keeps
	 * reporting it. */
	if (read(w->ev.fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("bdev: eventfd read: %s", strerror(errno));
	if (w->qp)
		bdev_qp_poll(w->qp);
}

static int wake_setup(struct bdev_qp *qp, struct uring_qp *uq)
{
	uq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (uq->efd < 0)
		return -errno;
	int rc = io_uring_register_eventfd(&uq->ring, uq->efd);
	if (rc < 0)
		return rc;
	uq->wake = calloc(1, sizeof(*uq->wake));
	if (!uq->wake)
		return -ENOMEM;
	uq->wake->qp = qp;
	uq->wake->ev.fd = uq->efd;
	uq->wake->ev.fn = wake_event;
	uq->wake->ev.arg = uq->wake;
	rc = reactor_event_add(qp->reactor, &uq->wake->ev, EPOLLIN);
	if (rc < 0) {
		free(uq->wake);
		uq->wake = NULL;
	}
	return rc;
}

static void free_wake(void *a, void *b)
{
	(void)b;
	free(a);
}

static void ring_free(struct bdev_qp *qp, struct uring_qp *uq)
{
	if (uq->wake) {
		reactor_event_del(qp->reactor, &uq->wake->ev);
		uq->wake->qp = NULL;
		/* reactor.h: the event must outlive the current turn. */
		if (reactor_defer(free_wake, uq->wake, NULL) < 0)
			free(uq->wake);
	}
	if (uq->efd >= 0)
		close(uq->efd);
	if (qp->ubufs && qp->ubufs->ring == &uq->ring)
		bufs_ring_detach(qp->ubufs);
	io_uring_queue_exit(&uq->ring);
	if (uq->sqpoll)
		qp->stats.sqpoll = 0;
	free(uq->zero_buf);
	free(uq);
}

void bdev_uring_set_sqpoll(bool on)
{
	g_sqpoll = on;
}

/* SUBMIT_ALL: one bad SQE must not stop the rest of the batch. SQPOLL (when
 * configured): a kernel thread per ring picks SQEs up, so a busy reactor
 * submits without a system call; it sleeps after URING_SQPOLL_IDLE_MS without
 * work, and io_uring_submit wakes it (one syscall) when it finds it asleep.
 * The thread is not pinned: on the reactor's own core it would compete with
 * the reactor. A kernel or a limit that refuses SQPOLL: logged once, normal
 * submission. */
static int ring_init(struct bdev_qp *qp, struct uring_qp *uq)
{
	static bool sqpoll_warned;
	struct io_uring_params p;
	int rc;

	if (g_sqpoll) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SQPOLL | IORING_SETUP_SUBMIT_ALL;
		p.sq_thread_idle = URING_SQPOLL_IDLE_MS;
		rc = io_uring_queue_init_params(qp->depth, &uq->ring, &p);
		if (rc == -EINVAL) {
			p.flags &= ~IORING_SETUP_SUBMIT_ALL;
			rc = io_uring_queue_init_params(qp->depth, &uq->ring, &p);
		}
		if (rc == 0) {
			uq->sqpoll = true;
			qp->stats.sqpoll = 1;
			return 0;
		}
		if (!__atomic_exchange_n(&sqpoll_warned, true, __ATOMIC_RELAXED))
			log_warn("bdev: io_uring SQPOLL refused (%s): submitting with "
				 "io_uring_enter", strerror(-rc));
	}
	rc = io_uring_queue_init(qp->depth, &uq->ring, IORING_SETUP_SUBMIT_ALL);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(qp->depth, &uq->ring, 0);
	return rc;
}

static int uring_qp_init(struct bdev_qp *qp, void **state)
{
	struct uring_qp *uq = calloc(1, sizeof(*uq));
	if (!uq)
		return -ENOMEM;
	uq->efd = -1;
	int rc = ring_init(qp, uq);
	if (rc < 0) {
		free(uq);
		return rc;
	}
	uq->fixed_ok = io_uring_register_files_sparse(&uq->ring, URING_FIXED_SLOTS) == 0;
	if (qp->reactor) {
		rc = wake_setup(qp, uq);
		if (rc < 0) {
			ring_free(qp, uq);
			return rc;
		}
	}
	if (qp->ubufs)
		bufs_ring_attach(qp->ubufs, &uq->ring);
	*state = uq;
	return 0;
}

/* Fixed slot for b on this ring, installing it on first use; -1: use the fd. */
static int fixed_slot(struct uring_qp *uq, const struct uring_bdev *ub)
{
	if (!uq->fixed_ok || ub->slot < 0)
		return -1;
	if (uq->slot_owner[ub->slot] == ub->id)
		return ub->slot;
	int fd = ub->fd;
	int rc = io_uring_register_files_update(&uq->ring, (unsigned)ub->slot, &fd, 1);
	if (rc != 1) {
		log_warn("bdev: fixed-file update failed (%s), using plain fds on this ring",
			 strerror(rc < 0 ? -rc : EIO));
		uq->fixed_ok = false;
		return -1;
	}
	uq->slot_owner[ub->slot] = ub->id;
	return ub->slot;
}

static int zero_buf(struct uring_qp *uq)
{
	if (uq->zero_buf)
		return 0;
	void *p;
	if (posix_memalign(&p, 4096, URING_ZERO_CHUNK))
		return -ENOMEM;
	memset(p, 0, URING_ZERO_CHUNK);
	uq->zero_buf = p;
	/* Shared by every zeroing SQE at once: it is only ever read. */
	for (int i = 0; i < BDEV_IO_MAX_IOV; i++) {
		uq->zero_iov[i].iov_base = p;
		uq->zero_iov[i].iov_len = URING_ZERO_CHUNK;
	}
	return 0;
}

static int blk_range_ioctl(int fd, unsigned long req, uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };
	return ioctl(fd, req, range) < 0 ? -errno : 0;
}

/* Prepares the rest of a read or write (or zeroing write) of io. */
static void prep_rw(struct bdev_qp *qp, struct uring_qp *uq, struct io_uring_sqe *sqe, int fd,
		    struct bdev_io *io)
{
	uint64_t off = io->offset + io->done_bytes;
	uint64_t rest = io->len - io->done_bytes;
	bool rd = io->type == BDEV_IO_READ;

	if (io->flags & BDEV_IO_F_ZERO_BY_WRITE) {
		if (rest >= URING_ZERO_CHUNK) {
			uint64_t n = rest / URING_ZERO_CHUNK;
			io_uring_prep_writev(sqe, fd, uq->zero_iov,
					     n > BDEV_IO_MAX_IOV ? BDEV_IO_MAX_IOV : (unsigned)n, off);
		} else {
			io_uring_prep_write(sqe, fd, uq->zero_buf, (unsigned)rest, off);
		}
		return;
	}
	if (io->iov_off || io->iovcnt - io->iov_idx == 1) {
		/* One piece: the last iovec, or resuming inside one (then that one
		 * goes alone first). From a registered chunk, no pinning per I/O. */
		const struct iovec *v = &io->iov[io->iov_idx];
		void *p = (uint8_t *)v->iov_base + io->iov_off;
		unsigned n = (unsigned)(v->iov_len - io->iov_off);
		int bi = fixed_buf(qp, p, n);
		if (bi >= 0 && rd)
			io_uring_prep_read_fixed(sqe, fd, p, n, off, bi);
		else if (bi >= 0)
			io_uring_prep_write_fixed(sqe, fd, p, n, off, bi);
		else if (rd)
			io_uring_prep_read(sqe, fd, p, n, off);
		else
			io_uring_prep_write(sqe, fd, p, n, off);
		if (bi >= 0)
			qp->stats.rw_fixed++;
		else
			qp->stats.rw_plain++;
	} else {
		const struct iovec *v = io->iov + io->iov_idx;
		unsigned n = (unsigned)(io->iovcnt - io->iov_idx);
		if (rd)
			io_uring_prep_readv(sqe, fd, v, n, off);
		else
			io_uring_prep_writev(sqe, fd, v, n, off);
		qp->stats.rw_plain++;
	}
	if (!rd && io->fua)
		sqe->rw_flags = RWF_DSYNC;
}

/* The rest of a READ/WRITE of several segments, each inside an installed
 * chunk: one READ_FIXED/WRITE_FIXED per segment (there is no vectored fixed
 * read or write), so no page is pinned per I/O; the io completes when every
 * segment's CQE is in (split_done). Returns 1 when io went that way, 0 when it
 * must go the plain way (one segment, resuming inside one, memory outside the
 * table, no free tracker, more segments than the SQ has entries), -EBUSY when
 * the SQ has no room for all its segments now (next poll). */
static int start_split(struct bdev_qp *qp, struct uring_qp *uq, struct bdev_io *io, int fd,
		       bool fixed_file)
{
	unsigned n = (unsigned)(io->iovcnt - io->iov_idx), si;
	uint64_t off = io->offset + io->done_bytes;
	struct uring_split *sp = NULL;
	int bufs[BDEV_IO_MAX_IOV];

	if (n < 2 || io->iov_off || !qp->ubufs || n > uq->ring.sq.ring_entries ||
	    (io->type != BDEV_IO_READ && io->type != BDEV_IO_WRITE))
		return 0;
	for (si = 0; si < URING_SPLITS && !sp; si++)
		if (!uq->splits[si].io)
			sp = &uq->splits[si];
	if (!sp)
		return 0;
	si--;
	for (unsigned i = 0; i < n; i++) {
		const struct iovec *v = &io->iov[io->iov_idx + (int)i];
		bufs[i] = fixed_buf(qp, v->iov_base, v->iov_len);
		if (bufs[i] < 0)
			return 0;
	}
	if (io_uring_sq_space_left(&uq->ring) < n)
		return -EBUSY;
	sp->io = io;
	sp->pending = n;
	sp->nseg = n;
	for (unsigned i = 0; i < n; i++) {
		const struct iovec *v = &io->iov[io->iov_idx + (int)i];
		struct io_uring_sqe *sqe = io_uring_get_sqe(&uq->ring);
		unsigned len = (unsigned)v->iov_len;

		if (io->type == BDEV_IO_READ) {
			io_uring_prep_read_fixed(sqe, fd, v->iov_base, len, off, bufs[i]);
		} else {
			io_uring_prep_write_fixed(sqe, fd, v->iov_base, len, off, bufs[i]);
			if (io->fua)
				sqe->rw_flags = RWF_DSYNC;
		}
		if (fixed_file)
			sqe->flags |= IOSQE_FIXED_FILE;
		io_uring_sqe_set_data64(sqe, URING_SPLIT_TAG | (uint64_t)si << 8 | i);
		sp->len[i] = len;
		sp->res[i] = 0;
		off += len;
		qp->stats.rw_fixed++;
	}
	uq->inflight += n;
	return 1;
}

/* The common case, short: a READ/WRITE whose rest is one piece (one segment,
 * or the rest of the one a short transfer stopped in) as one SQE, filled
 * here; READ_FIXED/WRITE_FIXED when the piece is in an installed chunk. The
 * same SQE prep_rw makes for it. */
static int start_piece(struct bdev_qp *qp, struct uring_qp *uq, struct bdev_io *io)
{
	const struct uring_bdev *ub = io->bdev->priv;
	int slot = fixed_slot(uq, ub);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&uq->ring);
	if (!sqe)
		return -EBUSY;

	const struct iovec *v = &io->iov[io->iov_idx];
	uint8_t *p = (uint8_t *)v->iov_base + io->iov_off;
	unsigned n = (unsigned)(v->iov_len - io->iov_off);
	int bi = fixed_buf(qp, p, n);
	bool rd = io->type == BDEV_IO_READ;
	int op = bi >= 0 ? (rd ? IORING_OP_READ_FIXED : IORING_OP_WRITE_FIXED)
			 : (rd ? IORING_OP_READ : IORING_OP_WRITE);

	io_uring_prep_rw(op, sqe, slot >= 0 ? slot : ub->fd, p, n, io->offset + io->done_bytes);
	if (bi >= 0) {
		sqe->buf_index = (uint16_t)bi;
		qp->stats.rw_fixed++;
	} else {
		qp->stats.rw_plain++;
	}
	if (!rd && io->fua)
		sqe->rw_flags = RWF_DSYNC;
	if (slot >= 0)
		sqe->flags = IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, io);
	uq->inflight++;
	return 0;
}

static int uring_start(struct bdev_qp *qp, void *state, struct bdev_io *io)
{
	struct uring_qp *uq = state;
	struct bdev *b = io->bdev;
	struct uring_bdev *ub = b->priv;

	if ((io->type == BDEV_IO_READ || io->type == BDEV_IO_WRITE) &&
	    (io->iov_off || io->iovcnt - io->iov_idx == 1))
		return start_piece(qp, uq, io);

	if (b->is_blockdev && (io->type == BDEV_IO_UNMAP || io->type == BDEV_IO_WRITE_ZEROES)) {
		int rc = blk_range_ioctl(ub->fd, io->type == BDEV_IO_UNMAP ? BLKDISCARD : BLKZEROOUT,
					 io->offset, io->len);
		bdev_io_done_later(qp, io, rc);
		return 0;
	}
	if (io->type == BDEV_IO_WRITE_ZEROES && !(io->flags & BDEV_IO_F_ZERO_BY_WRITE) &&
	    __atomic_load_n(&ub->no_zero_range, __ATOMIC_RELAXED))
		io->flags |= BDEV_IO_F_ZERO_BY_WRITE;
	if ((io->flags & BDEV_IO_F_ZERO_BY_WRITE) && zero_buf(uq) < 0) {
		bdev_io_done_later(qp, io, -ENOMEM);
		return 0;
	}

	int slot = fixed_slot(uq, ub);
	int fd = slot >= 0 ? slot : ub->fd;
	if (!(io->flags & BDEV_IO_F_ZERO_BY_WRITE)) {
		int rc = start_split(qp, uq, io, fd, slot >= 0);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&uq->ring);
	if (!sqe)
		return -EBUSY;

	switch (io->type) {
	case BDEV_IO_READ:
	case BDEV_IO_WRITE:
		prep_rw(qp, uq, sqe, fd, io);
		break;
	case BDEV_IO_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case BDEV_IO_UNMAP:
		io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)io->offset, (off_t)io->len);
		break;
	case BDEV_IO_WRITE_ZEROES:
		if (io->flags & BDEV_IO_F_ZERO_BY_WRITE)
			prep_rw(qp, uq, sqe, fd, io);
		else
			io_uring_prep_fallocate(sqe, fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
						(off_t)io->offset, (off_t)io->len);
		break;
	}
	if (slot >= 0)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, io);
	uq->inflight++;
	return 0;
}

static void uring_commit(struct bdev_qp *qp, void *state)
{
	struct uring_qp *uq = state;
	(void)qp;
	if (!io_uring_sq_ready(&uq->ring))
		return;
	/* On failure the SQEs stay in the ring and go with the next commit (or
	 * the next poll's, see uring_reap). */
	int rc = io_uring_submit(&uq->ring);
	if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR)
		log_warn("bdev: io_uring_submit: %s", strerror(-rc));
}

/* One CQE for io with result res. */
static void complete_one(struct bdev_qp *qp, struct bdev_io *io, int res)
{
	struct uring_bdev *ub = io->bdev->priv;
	bool transfer = io->type == BDEV_IO_READ || io->type == BDEV_IO_WRITE ||
			(io->flags & BDEV_IO_F_ZERO_BY_WRITE);

	if (res > 0 && (uint64_t)res == io->len - io->done_bytes) {
		/* All of the rest moved (only transfers return a count): done,
		 * no need to walk iov (nothing reads the progress any more). */
		io->done_bytes = io->len;
		bdev_io_done(qp, io, 0);
		return;
	}
	if (res == -EAGAIN || res == -EINTR) {
		bdev_io_retry(qp, io);
		return;
	}
	if (res == -EOPNOTSUPP && io->type == BDEV_IO_WRITE_ZEROES &&
	    !(io->flags & BDEV_IO_F_ZERO_BY_WRITE)) {
		__atomic_store_n(&ub->no_zero_range, 1, __ATOMIC_RELAXED);
		io->flags |= BDEV_IO_F_ZERO_BY_WRITE;
		bdev_io_retry(qp, io);
		return;
	}
	if (res < 0) {
		bdev_io_done(qp, io, res);
		return;
	}
	if (!transfer) {
		bdev_io_done(qp, io, 0);
		return;
	}
	if (res == 0) {             /* EOF (or a device that moves nothing) */
		bdev_io_done(qp, io, -EIO);
		return;
	}
	bdev_io_advance(io, (uint64_t)res);
	if (io->done_bytes < io->len)
		bdev_io_retry(qp, io);
	else
		bdev_io_done(qp, io, 0);
}

/* A segment of a split I/O completed; the last one finishes the io. What moved
 * is the run of whole segments from the start plus the bytes of the first
 * segment that fell short: the io goes on from there on the next poll (the
 * segments after it are simply done again). An error in any segment fails the
 * io; nothing moved and a first segment at EOF is -EIO, as for one SQE. */
static void split_done(struct bdev_qp *qp, struct uring_qp *uq, uint64_t ud, int res)
{
	struct uring_split *sp = &uq->splits[(ud >> 8) & 0xffff];
	struct bdev_io *io = sp->io;
	uint64_t moved = 0;
	bool again = false;

	sp->res[ud & 0xff] = res;
	if (--sp->pending)
		return;
	sp->io = NULL;
	for (unsigned i = 0; i < sp->nseg; i++) {
		int r = sp->res[i];
		if (r < 0 && r != -EAGAIN && r != -EINTR) {
			bdev_io_done(qp, io, r);
			return;
		}
	}
	for (unsigned i = 0; i < sp->nseg; i++) {
		int r = sp->res[i];
		if (r > 0)
			moved += (uint64_t)r;
		if (r != (int)sp->len[i]) {
			again = r == -EAGAIN || r == -EINTR;
			break;
		}
	}
	if (moved == 0 && !again) {       /* EOF (or a device that moves nothing) */
		bdev_io_done(qp, io, -EIO);
		return;
	}
	bdev_io_advance(io, moved);
	if (io->done_bytes < io->len)
		bdev_io_retry(qp, io);
	else
		bdev_io_done(qp, io, 0);
}

struct uring_got {
	uint64_t ud;
	int res;
};

/* Copies up to URING_REAP_BATCH CQEs out of the CQ ring and releases them
 * (before any callback runs); returns how many. Reads the ring directly: no
 * system call and no pointer array, except when it is empty and the kernel
 * has CQEs that overflowed it; liburing's peek then enters the kernel to
 * flush them (IORING_SQ_CQ_OVERFLOW; the ring takes no TASKRUN flags). */
static unsigned cq_take(struct io_uring *ring, struct uring_got *got)
{
	struct io_uring_cq *cq = &ring->cq;
	unsigned head = *cq->khead;
	unsigned n = io_uring_smp_load_acquire(cq->ktail) - head;

	if (n == 0) {
		struct io_uring_cqe *cqe;
		if (!(IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_CQ_OVERFLOW) ||
		    io_uring_peek_batch_cqe(ring, &cqe, 1) == 0)
			return 0;
		n = io_uring_smp_load_acquire(cq->ktail) - head;
	}
	if (n > URING_REAP_BATCH)
		n = URING_REAP_BATCH;
	unsigned shift = io_uring_cqe_shift(ring);
	for (unsigned i = 0; i < n; i++) {
		const struct io_uring_cqe *cqe = &cq->cqes[((head + i) & cq->ring_mask) << shift];
		got[i].ud = cqe->user_data;
		got[i].res = cqe->res;
	}
	io_uring_smp_store_release(cq->khead, head + n);
	return n;
}

static int uring_reap(struct bdev_qp *qp, void *state)
{
	struct uring_qp *uq = state;
	struct uring_got got[URING_REAP_BATCH];
	int total = 0;

	/* SQEs left by a failed submit: try again now. */
	if (io_uring_sq_ready(&uq->ring))
		uring_commit(qp, uq);
	for (;;) {
		unsigned n = cq_take(&uq->ring, got);
		if (n == 0)
			break;
		uq->inflight -= n;
		for (unsigned i = 0; i < n; i++) {
			if (got[i].ud & URING_SPLIT_TAG)
				split_done(qp, uq, got[i].ud, got[i].res);
			else
				complete_one(qp, (struct bdev_io *)(uintptr_t)got[i].ud, got[i].res);
		}
		total += (int)n;
		if (n < URING_REAP_BATCH)
			break;
	}
	return total;
}

static void uring_qp_fini(struct bdev_qp *qp, void *state)
{
	struct uring_qp *uq = state;
	while (uq->inflight) {
		if (io_uring_sq_ready(&uq->ring)) {
			int rc = io_uring_submit(&uq->ring);
			if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR) {
				/* A broken ring: these never reached the kernel and never
				 * will, so their callbacks cannot run. Say so and stop. */
				log_err("bdev: %u I/O could not be submitted at qp teardown: %s",
					uq->inflight, strerror(-rc));
				break;
			}
		}
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe(&uq->ring, &cqe);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN) {
			log_err("bdev: waiting for I/O at qp teardown: %s", strerror(-rc));
			break;
		}
		uring_reap(qp, uq);
	}
	ring_free(qp, uq);
}

/* ---- provisioning status ---- */

static int uring_lba_status(struct bdev *b, uint64_t offset, uint64_t *len, bool *mapped)
{
	struct uring_bdev *ub = b->priv;
	uint64_t end = b->size;

	if (b->is_blockdev) {
		*len = end - offset;
		*mapped = true;
		return 0;
	}
	off_t data = lseek(ub->fd, (off_t)offset, SEEK_DATA);
	if (data < 0 && errno != ENXIO)
		return -errno;
	uint64_t run_end;
	bool is_data;
	if (data < 0 || (uint64_t)data >= end) {
		run_end = end;                       /* no data up to the end */
		is_data = false;
	} else if ((uint64_t)data > offset) {
		run_end = (uint64_t)data;            /* hole, then data */
		is_data = false;
	} else {
		off_t hole = lseek(ub->fd, (off_t)offset, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		run_end = (uint64_t)hole < end ? (uint64_t)hole : end;
		is_data = true;
	}
	/* Report whole blocks: a block partly allocated counts as mapped. */
	uint64_t bs = b->block_size;
	if (is_data) {
		run_end = (run_end + bs - 1) / bs * bs;
	} else {
		run_end = run_end / bs * bs;
		if (run_end <= offset) {
			is_data = true;
			run_end = (offset / bs + 1) * bs;
		}
	}
	if (run_end > end)
		run_end = end;
	*len = run_end - offset;
	*mapped = is_data;
	return 0;
}

const struct bdev_backend bdev_uring_backend = {
	.name = "uring",
	.open = uring_open,
	.close = uring_close,
	.qp_init = uring_qp_init,
	.qp_fini = uring_qp_fini,
	.start = uring_start,
	.commit = uring_commit,
	.reap = uring_reap,
	.lba_status = uring_lba_status,
	.start_in_submit = true,
};
