/* bdev_nvme.c — an NVMe namespace through io_uring passthrough
 * (IORING_OP_URING_CMD on its character device /dev/ngXnY): the NVMe commands
 * are built here (src/bdev/nvme_cmd.c) and go to the controller without the
 * kernel's block layer in between.
 *
 * Opening: the path is /dev/ngXnY, or /dev/nvmeXnY which is mapped to its ng
 * device. The namespace id comes from NVME_IOCTL_ID; Identify Namespace gives
 * the LBA format and size (the exported block size is the namespace's, whatever
 * block-size the config says: logged when they differ), Identify Controller
 * MDTS, the volatile write cache and the optional commands, and the NVM
 * command set's Identify Controller (when there is one) the Write Zeroes and
 * DSM limits. Namespaces with metadata (md_size != 0) are refused: their
 * commands would need metadata buffers.
 *
 * One ring per qp (IORING_SETUP_SQE128 | CQE32, the layout passthrough needs),
 * shared by every nvme bdev the reactor drives, made on the qp's first nvme
 * I/O. Each in-flight command has a slot (the ring has as many): the bdev_io
 * it belongs to, the command as sent (for a resend), and room for its iovecs
 * and DSM ranges, which the kernel may read until the command completes. No
 * slot or SQE free = -EBUSY (the I/O waits at the head of the queue).
 *
 * Operations. A bdev_io larger than one command takes (MDTS, 65536 blocks,
 * WZSL, DSM ranges) goes in pieces, up to NVME_BATCH of them in flight at once;
 * when a batch is over, the next one is started through bdev_io_retry. The
 * first failing piece's status is the I/O's; the others of its batch still
 * complete before the callback runs (no later batch is sent).
 *   READ/WRITE    Read/Write of at most MDTS (and 65536 blocks); FUA bit when
 *                 io->fua. Data: one segment inside a registered pool chunk goes
 *                 with IORING_URING_CMD_FIXED (no pinning per I/O); one plain
 *                 segment as NVME_URING_CMD_IO; several as NVME_URING_CMD_IO_VEC.
 *   FLUSH         Flush; completes at once when the controller has no volatile
 *                 write cache (every completed write is durable then).
 *   UNMAP         Write Zeroes with DEAC (deallocate, and reads return zeroes
 *                 whatever the device does with deallocated blocks); without
 *                 Write Zeroes, Dataset Management / deallocate when DLFEAT says
 *                 deallocated blocks read as zeroes. Either way the blocks read
 *                 back as zeroes, as the SCSI layer's LBPRZ promises; can_unmap
 *                 when one of them exists.
 *   WRITE_ZEROES  Write Zeroes (DEAC clear), or writes of a zero buffer when the
 *                 controller has no Write Zeroes.
 * A failed NVMe command completes the bdev_io with io->sense set from its
 * status (nvme_status_to_sense) and the matching -errno. Kernel errors (res < 0)
 * come back as they are; a command that got -EAGAIN/-EINTR is sent again as it
 * was (not while the qp is being destroyed).
 *
 * Registered buffers: as in the uring backend, a hook on the qp's pool installs
 * every chunk in this ring's buffer table, never refusing a chunk. If the
 * kernel refuses a fixed-buffer command (-EINVAL/-EOPNOTSUPP/-EFAULT), the qp
 * stops using them (logged once) and resends the command plainly.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "bdev/nvme.h"
#include "bdev_internal.h"
#include "core/log.h"
#include "core/reactor.h"
#include "mem/buddy.h"
#include "mem/pool.h"

#define NVME_SLOT_RANGES  16              /* DSM ranges per command (per slot) */
#define NVME_ZERO_BYTES   (128u * 1024)   /* zero buffer, when no Write Zeroes */
#define NVME_MAX_BUFS     16384           /* the kernel's IORING_MAX_REG_BUFFERS */
#define NVME_REAP_BATCH   64
#define NVME_BATCH        16              /* commands one I/O has in flight at once */

struct nvme_bdev {
	int fd;
	struct nvme_ns_info ns;
	bool unmap_by_dsm;        /* UNMAP as DSM deallocate (else Write Zeroes + DEAC) */
};

/* One NVMe command in flight, kept as sent: a resend (-EAGAIN/-EINTR, or a
 * registered buffer the kernel refused) reuses it. */
struct nvme_slot {
	struct bdev_io *io;
	struct nvme_uring_cmd cmd;
	uint32_t cmd_op;          /* NVME_URING_CMD_IO or _IO_VEC */
	int buf_index;            /* registered buffer, -1: none */
	struct iovec iov[BDEV_IO_MAX_IOV];
	struct nvme_dsm_range ranges[NVME_SLOT_RANGES];
};

/* io->flags bits of this backend (bit 0 is BDEV_IO_F_ZERO_BY_WRITE): the
 * commands of the current batch still in flight, and whether one failed (then
 * io->status and io->sense hold the first failure until the batch is over). */
#define NVME_F_PENDING_SHIFT 8
#define NVME_F_PENDING_MASK  (0xffffu << NVME_F_PENDING_SHIFT)
#define NVME_F_FAILED        (1u << 24)

struct nvme_wake {
	struct reactor_event ev;
	struct bdev_qp *qp;       /* NULL once the qp is gone */
};

struct nvme_qp {
	struct io_uring ring;
	unsigned inflight;
	unsigned nslots;
	struct nvme_slot *slot;
	unsigned *free;           /* stack of free slot numbers */
	unsigned nfree;
	unsigned *resend;         /* slots to send again (no SQE was free) */
	unsigned nresend;
	struct nvme_wake *wake;
	int efd;
	uint8_t *zero_buf;        /* NVME_ZERO_BYTES of zeroes, made on first need */
	/* pool chunks in the ring's buffer table (see top) */
	struct mem_pool *pool;    /* hooked pool; NULL: none */
	unsigned reg_id;
	unsigned nbufs;
	unsigned nbuf_free;
	unsigned *buf_free;
	struct iovec *buf;        /* chunk per table slot; iov_base NULL: free */
	bool *buf_live;
	bool bufs_table;          /* sparse buffer table registered on the ring */
	bool bufs_ok;             /* ... and fixed commands allowed (the kernel took them) */
	bool bufs_warned;
};

/* ---- open ---- */

/* /dev/nvmeXnY -> /dev/ngXnY; anything else stays. */
static void char_dev_path(const char *path, char *out, size_t n)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	unsigned c, ns;
	char tail;
	if (sscanf(base, "nvme%un%u%c", &c, &ns, &tail) == 2)
		snprintf(out, n, "/dev/ng%un%u", c, ns);
	else
		snprintf(out, n, "%s", path);
}

static int admin_identify(int fd, uint32_t nsid, uint8_t cns, void *buf)
{
	struct nvme_uring_cmd uc;
	struct nvme_passthru_cmd pc;
	/* Same layout up to timeout_ms; passthru_cmd's last word is the result. */
	_Static_assert(sizeof(uc) == sizeof(pc), "nvme command layouts differ");
	nvme_build_identify(&uc, nsid, cns, buf);
	memcpy(&pc, &uc, sizeof(pc));
	pc.result = 0;
	int rc = ioctl(fd, NVME_IOCTL_ADMIN_CMD, &pc);
	if (rc < 0)
		return -errno;
	return rc == 0 ? 0 : -EIO;   /* > 0: an NVMe status */
}

static int identify_all(struct bdev *b, int fd, struct nvme_ns_info *ns)
{
	void *buf;
	if (posix_memalign(&buf, 4096, NVME_IDENTIFY_LEN))
		return -ENOMEM;
	int rc;
	memset(buf, 0, NVME_IDENTIFY_LEN);
	if ((rc = admin_identify(fd, ns->nsid, NVME_CNS_NS, buf)) < 0) {
		log_err("bdev %s: Identify Namespace %u: %s", b->name, ns->nsid, strerror(-rc));
		goto out;
	}
	if ((rc = nvme_parse_id_ns(buf, ns)) < 0) {
		log_err("bdev %s: namespace %u has no usable LBA format", b->name, ns->nsid);
		goto out;
	}
	memset(buf, 0, NVME_IDENTIFY_LEN);
	if ((rc = admin_identify(fd, 0, NVME_CNS_CTRL, buf)) < 0) {
		log_err("bdev %s: Identify Controller: %s", b->name, strerror(-rc));
		goto out;
	}
	nvme_parse_id_ctrl(buf, ns);
	memset(buf, 0, NVME_IDENTIFY_LEN);
	if (admin_identify(fd, 0, NVME_CNS_CTRL_CSI, buf) == 0)
		nvme_parse_id_ctrl_nvm(buf, ns);
	else
		nvme_ns_info_defaults(ns);   /* an NVMe 1.x controller: no such page */
	rc = 0;
out:
	free(buf);
	return rc;
}

static uint32_t sysfs_u32(const char *blk, const char *attr)
{
	char path[128];
	unsigned long v = 0;
	snprintf(path, sizeof(path), "/sys/block/%s/queue/%s", blk, attr);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%lu", &v) != 1)
		v = 0;
	fclose(f);
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* The kernel's limits for one request on the namespace, read from its block
 * device's queue (ngXnY -> nvmeXnY); 0s when that is not found. */
static void kernel_limits(const char *ng_path, uint32_t *max_hw_kb, uint32_t *max_segs)
{
	const char *base = strrchr(ng_path, '/');
	base = base ? base + 1 : ng_path;
	unsigned c, n;
	char blk[64];
	*max_hw_kb = *max_segs = 0;
	if (sscanf(base, "ng%un%u", &c, &n) != 2)
		return;
	snprintf(blk, sizeof(blk), "nvme%un%u", c, n);
	*max_hw_kb = sysfs_u32(blk, "max_hw_sectors_kb");
	*max_segs = sysfs_u32(blk, "max_segments");
}

static int nvme_open(struct bdev *b, const struct bdev_opts *opts)
{
	char path[256];
	char_dev_path(opts->path, path, sizeof(path));
	int fd = open(path, (b->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		log_err("bdev %s: cannot open %s: %s", b->name, path, strerror(err));
		return -err;
	}
	struct stat st;
	struct nvme_ns_info ns = { 0 };
	int rc = 0;
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		log_err("bdev %s: %s is not an NVMe namespace character device (/dev/ngXnY)",
			b->name, path);
		rc = -EINVAL;
		goto fail;
	}
	int id = ioctl(fd, NVME_IOCTL_ID);
	if (id <= 0) {
		rc = id < 0 ? -errno : -EINVAL;
		log_err("bdev %s: %s: no namespace id (NVME_IOCTL_ID): %s", b->name, path,
			strerror(-rc));
		goto fail;
	}
	ns.nsid = (uint32_t)id;
	if ((rc = identify_all(b, fd, &ns)) < 0)
		goto fail;
	uint32_t max_hw_kb, max_segs;
	kernel_limits(path, &max_hw_kb, &max_segs);
	nvme_clamp_xfer(&ns, max_hw_kb, max_segs);
	if (ns.md_size) {
		log_err("bdev %s: namespace %u is formatted with %u metadata bytes per block: "
			"not supported", b->name, ns.nsid, ns.md_size);
		rc = -EOPNOTSUPP;
		goto fail;
	}
	if (ns.lba_size < 512 || ns.lba_size > 4096) {
		log_err("bdev %s: LBA size %u is outside 512..4096", b->name, ns.lba_size);
		rc = -EOPNOTSUPP;
		goto fail;
	}
	if (opts->block_size != ns.lba_size)
		log_info("bdev %s: exporting the namespace's block size %u (block-size %u ignored)",
			 b->name, ns.lba_size, opts->block_size);
	b->block_size = ns.lba_size;
	uint64_t dev_size = ns.nblocks * ns.lba_size;
	if (opts->size > dev_size) {
		log_err("bdev %s: size %" PRIu64 " exceeds the namespace (%" PRIu64 ")", b->name,
			opts->size, dev_size);
		rc = -EINVAL;
		goto fail;
	}
	b->size = opts->size ? opts->size - opts->size % ns.lba_size : dev_size;
	if (b->size == 0) {
		log_err("bdev %s: size %" PRIu64 " is smaller than one block", b->name, opts->size);
		rc = -EINVAL;
		goto fail;
	}
	struct nvme_bdev *nb = calloc(1, sizeof(*nb));
	if (!nb) {
		rc = -ENOMEM;
		goto fail;
	}
	nb->fd = fd;
	nb->ns = ns;
	/* Write Zeroes + DEAC first: zeroes are then guaranteed by the command
	 * itself, not by DLFEAT, which a device (QEMU's, whose backing drive
	 * ignores discards unless told otherwise) may report and not honour. */
	nb->unmap_by_dsm = !ns.has_write_zeroes && ns.has_dsm && ns.dealloc_reads_zero;
	b->can_unmap = !b->readonly && (nb->unmap_by_dsm || ns.has_write_zeroes);
	b->direct = true;           /* the controller DMAs straight to the buffers */
	b->is_blockdev = true;
	b->priv = nb;
	log_info("bdev %s: NVMe namespace %u on %s: %" PRIu64 " blocks of %u B, %u blocks per "
		 "command, write cache %s, unmap %s", b->name, ns.nsid, path, ns.nblocks,
		 ns.lba_size, ns.max_xfer_blocks, ns.vwc ? "yes" : "no",
		 b->readonly ? "no (read-only)" : !b->can_unmap ? "no" :
		 nb->unmap_by_dsm ? "by DSM" : "by Write Zeroes");
	return 0;
fail:
	close(fd);
	return rc;
}

static void nvme_close(struct bdev *b)
{
	struct nvme_bdev *nb = b->priv;
	close(nb->fd);
	free(nb);
}

/* ---- registered buffers ---- */

static void buf_install(struct nvme_qp *nq, unsigned s)
{
	int rc = io_uring_register_buffers_update_tag(&nq->ring, s, &nq->buf[s], NULL, 1);
	if (rc == 1) {
		nq->buf_live[s] = true;
		return;
	}
	if (!nq->bufs_warned)
		log_warn("bdev: cannot register a pool chunk with the nvme ring (%s): plain I/O "
			 "on it", strerror(rc < 0 ? -rc : EIO));
	nq->bufs_warned = true;
}

static int bufs_reg(void *ctx, void *addr, size_t len, void **handle)
{
	struct nvme_qp *nq = ctx;
	*handle = NULL;
	if (nq->nbuf_free == 0)
		return 0;            /* never refuse: registration is an optimisation */
	unsigned s = nq->buf_free[--nq->nbuf_free];
	nq->buf[s] = (struct iovec){ addr, len };
	if (nq->bufs_table)
		buf_install(nq, s);
	*handle = (void *)(uintptr_t)(s + 1);
	return 0;
}

static void bufs_unreg(void *ctx, void *handle)
{
	struct nvme_qp *nq = ctx;
	if (!handle)
		return;
	unsigned s = (unsigned)((uintptr_t)handle - 1);
	if (nq->buf_live[s]) {
		struct iovec none = { NULL, 0 };
		if (io_uring_register_buffers_update_tag(&nq->ring, s, &none, NULL, 1) != 1)
			log_warn("bdev: cannot clear nvme registered buffer %u", s);
		nq->buf_live[s] = false;
	}
	nq->buf[s] = (struct iovec){ NULL, 0 };
	nq->buf_free[nq->nbuf_free++] = s;
}

static void bufs_free(struct nvme_qp *nq)
{
	free(nq->buf_free);
	free(nq->buf);
	free(nq->buf_live);
	nq->buf_free = NULL;
	nq->buf = NULL;
	nq->buf_live = NULL;
}

static void bufs_attach(struct nvme_qp *nq, struct mem_pool *pool)
{
	struct mem_pool_stats ps;
	mem_pool_get_stats(pool, &ps);
	size_t chunks = ps.limit / BUDDY_CHUNK_SIZE;
	nq->nbufs = chunks < 1 ? 1 : chunks > NVME_MAX_BUFS ? NVME_MAX_BUFS : (unsigned)chunks;
	nq->buf_free = calloc(nq->nbufs, sizeof(*nq->buf_free));
	nq->buf = calloc(nq->nbufs, sizeof(*nq->buf));
	nq->buf_live = calloc(nq->nbufs, sizeof(*nq->buf_live));
	if (!nq->buf_free || !nq->buf || !nq->buf_live) {
		bufs_free(nq);
		return;
	}
	for (unsigned s = 0; s < nq->nbufs; s++)
		nq->buf_free[s] = nq->nbufs - 1 - s;
	nq->nbuf_free = nq->nbufs;
	int rc = io_uring_register_buffers_sparse(&nq->ring, nq->nbufs);
	nq->bufs_table = nq->bufs_ok = rc == 0;
	if (rc < 0)
		log_info("bdev: nvme ring: registered buffers unavailable (%s)", strerror(-rc));
	struct mem_reg_ops ops = { bufs_reg, bufs_unreg, nq };
	if (mem_pool_add_reg(pool, &ops, &nq->reg_id) < 0) {
		if (nq->bufs_table)
			io_uring_unregister_buffers(&nq->ring);
		nq->bufs_table = nq->bufs_ok = false;
		bufs_free(nq);
		return;
	}
	nq->pool = pool;
}

static void bufs_detach(struct nvme_qp *nq)
{
	if (!nq->pool)
		return;
	mem_pool_del_reg(nq->pool, nq->reg_id);   /* unregisters every chunk */
	if (nq->bufs_table)
		io_uring_unregister_buffers(&nq->ring);
	nq->bufs_table = nq->bufs_ok = false;
	nq->pool = NULL;
	bufs_free(nq);
}

void bdev_nvme_bufs_attach(struct bdev_qp *qp)
{
	if (qp->ready[BDEV_TYPE_NVME] && qp->pool)
		bufs_attach(qp->state[BDEV_TYPE_NVME], qp->pool);
}

void bdev_nvme_bufs_detach(struct bdev_qp *qp)
{
	if (qp->ready[BDEV_TYPE_NVME])
		bufs_detach(qp->state[BDEV_TYPE_NVME]);
}

/* Buffer table slot for [p, p + n) inside one installed chunk, or -1. */
static int fixed_buf(const struct nvme_qp *nq, const void *p, size_t n)
{
	if (!nq->pool || !nq->bufs_ok)
		return -1;
	void *h = mem_pool_reg_handle_id(nq->pool, nq->reg_id, p);
	if (!h)
		return -1;
	unsigned s = (unsigned)((uintptr_t)h - 1);
	const struct iovec *c = &nq->buf[s];
	if (!nq->buf_live[s] ||
	    n > (size_t)((const uint8_t *)c->iov_base + c->iov_len - (const uint8_t *)p))
		return -1;
	return (int)s;
}

/* ---- per-qp ring ---- */

static void wake_event(void *arg, uint32_t events)
{
	struct nvme_wake *w = arg;
	uint64_t v;
	(void)events;
	if (read(w->ev.fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("bdev: nvme eventfd read: %s", strerror(errno));
	if (w->qp)
		bdev_qp_poll(w->qp);
}

static int wake_setup(struct bdev_qp *qp, struct nvme_qp *nq)
{
	nq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (nq->efd < 0)
		return -errno;
	int rc = io_uring_register_eventfd(&nq->ring, nq->efd);
	if (rc < 0)
		return rc;
	nq->wake = calloc(1, sizeof(*nq->wake));
	if (!nq->wake)
		return -ENOMEM;
	nq->wake->qp = qp;
	nq->wake->ev.fd = nq->efd;
	nq->wake->ev.fn = wake_event;
	nq->wake->ev.arg = nq->wake;
	rc = reactor_event_add(qp->reactor, &nq->wake->ev, EPOLLIN);
	if (rc < 0) {
		free(nq->wake);
		nq->wake = NULL;
	}
	return rc;
}

static void free_wake(void *a, void *b)
{
	(void)b;
	free(a);
}

static void ring_free(struct bdev_qp *qp, struct nvme_qp *nq)
{
	if (nq->wake) {
		reactor_event_del(qp->reactor, &nq->wake->ev);
		nq->wake->qp = NULL;
		if (reactor_defer(free_wake, nq->wake, NULL) < 0)
			free(nq->wake);
	}
	if (nq->efd >= 0)
		close(nq->efd);
	bufs_detach(nq);
	io_uring_queue_exit(&nq->ring);
	free(nq->zero_buf);
	free(nq->slot);
	free(nq->free);
	free(nq->resend);
	free(nq);
}

static int nvme_qp_init(struct bdev_qp *qp, void **state)
{
	struct nvme_qp *nq = calloc(1, sizeof(*nq));
	if (!nq)
		return -ENOMEM;
	nq->efd = -1;
	unsigned flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32;
	int rc = io_uring_queue_init(qp->depth, &nq->ring, flags | IORING_SETUP_SUBMIT_ALL);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(qp->depth, &nq->ring, flags);
	if (rc < 0) {
		log_err("bdev: cannot set up an io_uring for NVMe passthrough (SQE128/CQE32): %s",
			strerror(-rc));
		free(nq);
		return rc;
	}
	nq->nslots = nq->ring.sq.ring_entries;
	nq->slot = calloc(nq->nslots, sizeof(*nq->slot));
	nq->free = calloc(nq->nslots, sizeof(*nq->free));
	nq->resend = calloc(nq->nslots, sizeof(*nq->resend));
	if (!nq->slot || !nq->free || !nq->resend) {
		ring_free(qp, nq);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < nq->nslots; i++)
		nq->free[i] = nq->nslots - 1 - i;
	nq->nfree = nq->nslots;
	if (qp->reactor) {
		rc = wake_setup(qp, nq);
		if (rc < 0) {
			ring_free(qp, nq);
			return rc;
		}
	}
	if (qp->pool)
		bufs_attach(nq, qp->pool);
	*state = nq;
	return 0;
}

static int zero_buf(struct nvme_qp *nq)
{
	if (nq->zero_buf)
		return 0;
	void *p;
	if (posix_memalign(&p, 4096, NVME_ZERO_BYTES))
		return -ENOMEM;
	memset(p, 0, NVME_ZERO_BYTES);
	nq->zero_buf = p;
	return 0;
}

/* ---- building and sending commands ---- */

/* The next READ/WRITE piece of io (or zeroing write) into slot sl; returns
 * the bytes it covers. */
static uint64_t prep_rw(struct nvme_qp *nq, struct bdev_qp *qp, struct nvme_slot *sl,
			const struct nvme_bdev *nb, struct bdev_io *io)
{
	uint32_t bs = nb->ns.lba_size;
	uint64_t rest = (io->len - io->done_bytes) / bs;
	uint32_t nblk = nvme_chunk_blocks(rest, nb->ns.max_xfer_blocks);
	uint64_t slba = (io->offset + io->done_bytes) / bs;
	bool wr = io->type != BDEV_IO_READ;
	size_t bytes;

	sl->cmd_op = NVME_URING_CMD_IO;
	if (io->flags & BDEV_IO_F_ZERO_BY_WRITE) {
		uint32_t zmax = NVME_ZERO_BYTES / bs;
		if (nblk > zmax)
			nblk = zmax;
		/* Every piece reads the same zero buffer: it is never written. */
		nvme_build_rw(&sl->cmd, true, nb->ns.nsid, slba, nblk, false,
			      (uint64_t)(uintptr_t)nq->zero_buf, nblk * bs);
		qp->stats.rw_plain++;
		return (uint64_t)nblk * bs;
	}
	int n = nvme_iov_slice(io->iov, io->iovcnt, io->iov_idx, io->iov_off,
			       (size_t)nblk * bs, sl->iov, &bytes);
	/* bytes == nblk * bs: the iovecs sum to len (bdev_submit checked). */
	if (n == 1) {
		sl->buf_index = fixed_buf(nq, sl->iov[0].iov_base, sl->iov[0].iov_len);
		nvme_build_rw(&sl->cmd, wr, nb->ns.nsid, slba, nblk, wr && io->fua,
			      (uint64_t)(uintptr_t)sl->iov[0].iov_base, (uint32_t)bytes);
	} else {
		/* Vectored: addr is the iovec array, data_len its count. */
		nvme_build_rw(&sl->cmd, wr, nb->ns.nsid, slba, nblk, wr && io->fua,
			      (uint64_t)(uintptr_t)sl->iov, (uint32_t)n);
		sl->cmd_op = NVME_URING_CMD_IO_VEC;
	}
	if (sl->buf_index >= 0)
		qp->stats.rw_fixed++;
	else
		qp->stats.rw_plain++;
	return bytes;
}

/* The next piece of io into slot sl; returns the bytes of io it covers. */
static uint64_t prep_piece(struct nvme_qp *nq, struct bdev_qp *qp, struct nvme_slot *sl,
			   const struct nvme_bdev *nb, struct bdev_io *io)
{
	uint32_t bs = nb->ns.lba_size;
	uint64_t rest = (io->len - io->done_bytes) / bs;
	uint64_t slba = (io->offset + io->done_bytes) / bs;

	sl->cmd_op = NVME_URING_CMD_IO;
	sl->buf_index = -1;
	switch (io->type) {
	case BDEV_IO_READ:
	case BDEV_IO_WRITE:
		return prep_rw(nq, qp, sl, nb, io);
	case BDEV_IO_FLUSH:
		nvme_build_flush(&sl->cmd, nb->ns.nsid);
		return 0;
	case BDEV_IO_UNMAP:
		if (nb->unmap_by_dsm) {
			uint32_t max = nb->ns.dsm_max_ranges < NVME_SLOT_RANGES ?
				       nb->ns.dsm_max_ranges : NVME_SLOT_RANGES;
			uint64_t covered;
			uint32_t nr = nvme_dsm_fill(sl->ranges, max, nb->ns.dsm_range_max_blocks,
						    slba, rest, &covered);
			nvme_build_dsm_deallocate(&sl->cmd, nb->ns.nsid, sl->ranges, nr);
			return covered * bs;
		} else {
			uint32_t n = nvme_chunk_blocks(rest, nb->ns.wz_max_blocks);
			nvme_build_write_zeroes(&sl->cmd, nb->ns.nsid, slba, n, true, false);
			return (uint64_t)n * bs;
		}
	case BDEV_IO_WRITE_ZEROES:
		if (io->flags & BDEV_IO_F_ZERO_BY_WRITE)
			return prep_rw(nq, qp, sl, nb, io);
		uint32_t n = nvme_chunk_blocks(rest, nb->ns.wz_max_blocks);
		nvme_build_write_zeroes(&sl->cmd, nb->ns.nsid, slba, n, false, false);
		return (uint64_t)n * bs;
	}
	return 0;
}

/* Puts slot si's command in an SQE; false when the SQ is full. */
static bool send_slot(struct nvme_qp *nq, unsigned si)
{
	struct nvme_slot *sl = &nq->slot[si];
	const struct nvme_bdev *nb = sl->io->bdev->priv;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&nq->ring);
	if (!sqe)
		return false;
	memset(sqe, 0, 2 * sizeof(*sqe));          /* SQE128: two slots' worth */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = nb->fd;
	sqe->cmd_op = sl->cmd_op;
	if (sl->buf_index >= 0) {
		sqe->uring_cmd_flags = IORING_URING_CMD_FIXED;
		sqe->buf_index = (uint16_t)sl->buf_index;
	}
	memcpy(sqe->cmd, &sl->cmd, sizeof(sl->cmd));
	io_uring_sqe_set_data64(sqe, si);
	nq->inflight++;
	return true;
}

static void send_resends(struct nvme_qp *nq)
{
	while (nq->nresend && send_slot(nq, nq->resend[nq->nresend - 1]))
		nq->nresend--;
}

static unsigned pending_of(const struct bdev_io *io)
{
	return (io->flags & NVME_F_PENDING_MASK) >> NVME_F_PENDING_SHIFT;
}

static void set_pending(struct bdev_io *io, unsigned n)
{
	io->flags = (io->flags & ~NVME_F_PENDING_MASK) | n << NVME_F_PENDING_SHIFT;
}

/* Sends the next batch of io's pieces: up to NVME_BATCH commands at once,
 * as many as there are free slots and SQEs (at least one, or -EBUSY). The
 * batch's last completion sends the next batch (bdev_io_retry). */
static int nvme_start(struct bdev_qp *qp, void *state, struct bdev_io *io)
{
	struct nvme_qp *nq = state;
	struct nvme_bdev *nb = io->bdev->priv;

	if (io->type == BDEV_IO_FLUSH && !nb->ns.vwc) {
		bdev_io_done_later(qp, io, 0);     /* no volatile cache: nothing to flush */
		return 0;
	}
	if (io->type == BDEV_IO_WRITE_ZEROES && !nb->ns.has_write_zeroes)
		io->flags |= BDEV_IO_F_ZERO_BY_WRITE;
	if ((io->flags & BDEV_IO_F_ZERO_BY_WRITE) && zero_buf(nq) < 0) {
		bdev_io_done_later(qp, io, -ENOMEM);
		return 0;
	}
	unsigned n = 0;
	do {
		if (nq->nfree == 0 || io_uring_sq_space_left(&nq->ring) == 0)
			break;
		unsigned si = nq->free[--nq->nfree];
		struct nvme_slot *sl = &nq->slot[si];
		sl->io = io;
		uint64_t bytes = prep_piece(nq, qp, sl, nb, io);
		if (io->type == BDEV_IO_FLUSH)
			io->done_bytes = io->len;  /* one command, whatever len says */
		else if (io->iov && !(io->flags & BDEV_IO_F_ZERO_BY_WRITE))
			bdev_io_advance(io, bytes);
		else
			io->done_bytes += bytes;
		send_slot(nq, si);                 /* there was room (checked above) */
		n++;
	} while (n < NVME_BATCH && io->done_bytes < io->len);
	if (n == 0)
		return -EBUSY;
	set_pending(io, n);
	return 0;
}

static void nvme_commit(struct bdev_qp *qp, void *state)
{
	struct nvme_qp *nq = state;
	(void)qp;
	if (!io_uring_sq_ready(&nq->ring))
		return;
	int rc = io_uring_submit(&nq->ring);
	if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR)
		log_warn("bdev: nvme io_uring_submit: %s", strerror(-rc));
}

/* A registered buffer the kernel would not take for passthrough: Linux
 * before 6.1, or 6.1 with a buffer whose pages it coalesced (huge pages,
 * THP), which its bvec mapping refuses. */
static bool fixed_refused(int res)
{
	return res == -EINVAL || res == -EOPNOTSUPP || res == -EFAULT;
}

static void complete_one(struct bdev_qp *qp, struct nvme_qp *nq, unsigned si, int res)
{
	struct nvme_slot *sl = &nq->slot[si];
	struct bdev_io *io = sl->io;

	if (!qp->closing) {
		if (sl->buf_index >= 0 && fixed_refused(res)) {
			if (nq->bufs_ok)
				log_info("bdev: NVMe passthrough refused a registered buffer (%s): "
					 "plain buffers on this reactor", strerror(-res));
			nq->bufs_ok = false;
			sl->buf_index = -1;
			qp->stats.rw_plain++;
			res = -EAGAIN;
		}
		if (res == -EAGAIN || res == -EINTR) {
			nq->resend[nq->nresend++] = si;  /* the slot stays io's */
			return;
		}
	}
	sl->io = NULL;
	nq->free[nq->nfree++] = si;
	if (res != 0 && !(io->flags & NVME_F_FAILED)) {
		io->flags |= NVME_F_FAILED;
		if (res > 0) {
			int err;
			io->sense = nvme_status_to_sense((uint16_t)res, &err);
			io->status = err ? err : -EIO;
			log_debug("bdev %s: NVMe status %#x in an I/O at byte %" PRIu64,
				  io->bdev->name, (unsigned)res, io->offset);
		} else {
			io->status = res;
		}
	}
	unsigned left = pending_of(io) - 1;
	set_pending(io, left);
	if (left)
		return;
	if (io->flags & NVME_F_FAILED)
		bdev_io_done(qp, io, io->status);
	else if (io->done_bytes < io->len)
		bdev_io_retry(qp, io);         /* the next batch, on the next poll */
	else
		bdev_io_done(qp, io, 0);
}

static int nvme_reap(struct bdev_qp *qp, void *state)
{
	struct nvme_qp *nq = state;
	struct io_uring_cqe *cqes[NVME_REAP_BATCH];
	struct { unsigned si; int res; } got[NVME_REAP_BATCH];
	int total = 0;

	for (;;) {
		unsigned n = io_uring_peek_batch_cqe(&nq->ring, cqes, NVME_REAP_BATCH);
		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++) {
			got[i].si = (unsigned)io_uring_cqe_get_data64(cqes[i]);
			got[i].res = cqes[i]->res;
		}
		io_uring_cq_advance(&nq->ring, n);
		nq->inflight -= n;
		for (unsigned i = 0; i < n; i++)
			complete_one(qp, nq, got[i].si, got[i].res);
		total += (int)n;
		if (n < NVME_REAP_BATCH)
			break;
	}
	/* Commands to send again, and SQEs a failed submit left: now, not on
	 * some later poll (a sleeping reactor might not have one soon). */
	send_resends(nq);
	if (io_uring_sq_ready(&nq->ring))
		nvme_commit(qp, nq);
	return total;
}

static void nvme_qp_fini(struct bdev_qp *qp, void *state)
{
	struct nvme_qp *nq = state;
	/* Resends queued before the qp started closing go out now; whatever
	 * completes from here on is final (complete_one resends nothing). */
	send_resends(nq);
	while (nq->inflight) {
		if (io_uring_sq_ready(&nq->ring)) {
			int rc = io_uring_submit(&nq->ring);
			if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR) {
				log_err("bdev: %u NVMe commands could not be submitted at qp "
					"teardown: %s", nq->inflight, strerror(-rc));
				break;
			}
		}
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe(&nq->ring, &cqe);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN) {
			log_err("bdev: waiting for NVMe commands at qp teardown: %s", strerror(-rc));
			break;
		}
		nvme_reap(qp, nq);         /* sends the rest of the resends, if any */
	}
	ring_free(qp, nq);
}

const struct bdev_backend bdev_nvme_backend = {
	.name = "nvme",
	.open = nvme_open,
	.close = nvme_close,
	.qp_init = nvme_qp_init,
	.qp_fini = nvme_qp_fini,
	.start = nvme_start,
	.commit = nvme_commit,
	.reap = nvme_reap,
	.lba_status = NULL,
};
