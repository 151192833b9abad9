/* bdev.h — block backends behind one queue-pair interface.
 *
 * A struct bdev is a backing store opened once (at config load, any thread) and
 * shared by every reactor: its fields are read-only after bdev_open. I/O goes
 * through a struct bdev_qp, one per reactor, shared by all bdevs that reactor
 * drives: the uring backend keeps one io_uring per qp (its eventfd in the
 * reactor's epoll set so sleeping reactors wake), the nvme backend another
 * (SQE128/CQE32, NVMe passthrough: src/bdev/bdev_nvme.c), the ram backend
 * completes in the qp's poll.
 *
 * The model is a submission queue and a completion queue:
 *   bdev_submit()   queues an I/O (never completes it inline, never blocks);
 *   the qp's poller (registered on the reactor by bdev_qp_create) submits what
 *   was queued in one batch per reactor turn and reaps completions, calling
 *   io->cb(io) on the submitting reactor with io->status = 0 or -errno.
 * So a callback never runs inside bdev_submit, and the caller may submit from
 * a callback.
 *
 * Semantics:
 *   READ/WRITE    offset and len in bytes, multiples of bdev->block_size, data in
 *                 io->iov (segments must be 512 B-aligned in address and length for
 *                 O_DIRECT; pool memory always is). A short transfer is retried by
 *                 the backend for the rest; EOF inside the device is -EIO.
 *   fua           WRITE only: the data is durable when cb reports success
 *                 (RWF_DSYNC, or write then fdatasync).
 *   FLUSH         everything acknowledged before is durable (fdatasync).
 *   UNMAP         deallocates the range (fallocate PUNCH_HOLE|KEEP_SIZE on files,
 *                 BLKDISCARD on block devices, zero+release on ram); reads of it
 *                 return zeroes afterwards (block devices: only if the device
 *                 zeroes discarded blocks; Linux can't tell us). -EOPNOTSUPP if
 *                 the backend can't.
 *   WRITE_ZEROES  the range reads back as zeroes (FALLOC_FL_ZERO_RANGE, or
 *                 writes of a zero buffer when that is not supported).
 * An acknowledged write is never lost: with write_cache off, the SCSI layer sets
 * fua on every write.
 */
#ifndef LICH_BDEV_BDEV_H
#define LICH_BDEV_BDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct reactor;
struct mem_pool;

enum bdev_type { BDEV_TYPE_URING = 0, BDEV_TYPE_RAM, BDEV_TYPE_NVME };

struct bdev_opts {
	enum bdev_type type;
	const char *path;         /* file or block device (uring/nvme); name for ram */
	uint64_t size;            /* ram: required; file: 0 = file size (must be > 0),
	                           * larger than the file grows it (sparse, not when
	                           * readonly), smaller exports a prefix; block device:
	                           * 0 = whole device, else a prefix. Rounded down to
	                           * block_size. */
	uint32_t block_size;      /* logical block size exported: 512..4096, power of 2 */
	bool readonly;
};

struct bdev {
	char name[256];
	enum bdev_type type;
	uint64_t size;            /* bytes, multiple of block_size */
	uint32_t block_size;
	bool readonly;
	bool can_unmap;           /* UNMAP supported (hole punching / discard) */
	bool can_map;             /* bdev_read_map works (ram): reads need no copy */
	bool direct;              /* uring: O_DIRECT in use */
	bool is_blockdev;
	const struct bdev_backend *backend;
	void *priv;
};

enum bdev_io_type {
	BDEV_IO_READ = 0,
	BDEV_IO_WRITE,
	BDEV_IO_FLUSH,
	BDEV_IO_UNMAP,
	BDEV_IO_WRITE_ZEROES,
};

#define BDEV_IO_MAX_IOV 64

struct bdev_io {
	/* filled by the caller */
	struct bdev *bdev;
	enum bdev_io_type type;
	bool fua;
	uint64_t offset;
	uint64_t len;
	struct iovec *iov;
	int iovcnt;
	void (*cb)(struct bdev_io *io);
	void *ctx;
	/* set before cb */
	int status;
	uint32_t sense;           /* 0, or with status != 0 the precise SCSI sense the
	                           * backend knows (nvme: from the NVMe status), packed
	                           * key << 16 | asc << 8 | ascq; the SCSI layer then
	                           * reports it instead of deriving one from status */
	/* backend private */
	struct bdev_io *next;
	uint64_t done_bytes;
	uint32_t flags;
	int iov_idx;              /* progress through iov on partial transfers */
	size_t iov_off;
};

struct bdev_qp;

int bdev_open(const struct bdev_opts *opts, struct bdev **out);
void bdev_close(struct bdev *b);

/* Creates this reactor's qp (call on the reactor's thread). depth = max I/Os in
 * flight in the kernel at once (more wait in the qp's queue; clamped to 32768).
 * r == NULL: no poller/eventfd, the caller drives bdev_qp_poll (tests).
 * r != NULL: the qp attaches reactor_pool(r) as by bdev_qp_set_pool (a failure
 * there is logged and the qp works without registered buffers). */
struct bdev_qp *bdev_qp_create(struct reactor *r, unsigned depth);
/* Registered buffers: attaches pool to the qp (added for the "buffers from the
 * pool registered with io_uring" issue). The uring backend installs every
 * chunk of the pool, now and as the pool maps more, in its ring's fixed-buffer
 * table (through a mem_pool_add_reg hook; when the ring is made on the first
 * uring I/O if it does not exist yet), and a READ/WRITE whose segments each lie
 * inside one chunk then goes as READ_FIXED/WRITE_FIXED, one SQE per segment
 * (the io completes when all are in; a short or failed segment is handled as
 * for one SQE): no page pinning per I/O. Anything else (memory not from the
 * pool, a segment crossing a chunk's end) goes as readv/writev; so does
 * everything if the kernel refuses the table (logged once). The nvme backend
 * does the same on its ring (IORING_URING_CMD_FIXED, one-segment commands);
 * the ram backend ignores the pool. pool == NULL detaches; attaching
 * another pool detaches the previous one first. The pool must outlive the
 * attachment (bdev_qp_destroy detaches). On the qp's thread, which must be the
 * pool's; never from inside a bdev callback. 0, -EBUSY (the pool has no free
 * registration id), -ENOMEM or -ECANCELED (qp being destroyed). */
int bdev_qp_set_pool(struct bdev_qp *qp, struct mem_pool *pool);
/* uring rings made from now on use SQPOLL (targets.conf `uring-sqpoll on`):
 * a kernel thread per ring (so per reactor) polls its submission queue, taking
 * the io_uring_enter off the reactor's path while I/O flows, at the price of
 * that thread's CPU time (it sleeps after 1 s idle). Off by default. Call
 * before reactors start; a kernel that refuses falls back (logged once). */
void bdev_uring_set_sqpoll(bool on);
/* On the qp's reactor thread, never from inside a bdev callback (use
 * reactor_defer). Completes queued-but-unstarted I/O with -ECANCELED, waits for
 * (reaps) everything in the kernel (its callbacks run with their result; a
 * short transfer is not continued but gets -ECANCELED), then frees the qp.
 * Callbacks run meanwhile cannot submit (bdev_submit returns -ECANCELED). */
void bdev_qp_destroy(struct bdev_qp *qp);
/* Queues io; returns 0, or without queueing it:
 *   -EINVAL      malformed: no cb, range outside the device (or len 0),
 *                offset/len not multiples of block_size, READ/WRITE iovecs not
 *                1..BDEV_IO_MAX_IOV or not summing to len, or (O_DIRECT bdevs)
 *                segments not 512 B-aligned; FLUSH ignores offset/len;
 *   -EROFS       WRITE, UNMAP or WRITE_ZEROES to a readonly bdev;
 *   -EOPNOTSUPP  UNMAP on a bdev without can_unmap;
 *   -ECANCELED   the qp is being destroyed. */
int bdev_submit(struct bdev_qp *qp, struct bdev_io *io);
/* Submits queued I/O and reaps completions; returns completions reaped. Called
 * by the qp's poller; exposed for tests. */
int bdev_qp_poll(struct bdev_qp *qp);
/* I/O submitted whose callback has not run yet (queued + in the backend). */
unsigned bdev_qp_inflight(const struct bdev_qp *qp);

/* GET LBA STATUS support (synchronous, cheap): from byte offset, how many bytes
 * are in the same state and whether that state is mapped (allocated) or not.
 * Backends that can't tell report mapped up to the end of the device (block
 * devices). Files: SEEK_DATA/SEEK_HOLE, a block partly allocated counts as
 * mapped. ram: page residency (mincore), looking at most 1 GiB ahead per call.
 * -EINVAL if offset >= size. Thread-safe (reads shared state only). */
int bdev_lba_status(struct bdev *b, uint64_t offset, uint64_t *len, bool *mapped);

/* Zero-copy reads (added for "Data-In sent straight from the backend's
 * buffer"; bdevs with can_map, today ram): fills iov[0..max) with where the
 * bytes [offset, offset + len) can be read in place and returns how many
 * segments that took. Never-written ranges point at a shared read-only region
 * of zeroes, so nothing is copied and no page becomes allocated. Synchronous,
 * thread-safe, no qp; the caller only reads the memory. The segments stay
 * valid while the bdev is open; a WRITE, UNMAP or WRITE_ZEROES of the range
 * meanwhile changes what they show (old data, new data or zeroes: overlapping
 * I/O is the initiator's business, as on a disk). -E2BIG when more than max
 * segments would be needed (read through the qp instead), -EINVAL (range
 * outside the device, len 0, not multiples of block_size), -EOPNOTSUPP
 * without can_map. */
int bdev_read_map(struct bdev *b, uint64_t offset, uint64_t len, struct iovec *iov, int max);

struct bdev_qp_stats {
	/* accepted by bdev_submit; callbacks run; of which status != 0; polls that
	 * started I/O (one io_uring_submit each); longest the queue has been */
	uint64_t submitted, completed, errors, batches, queued_peak;
	/* uring READ/WRITE SQEs (a short transfer's continuation counts again) that
	 * used a registered pool buffer, and those that did not (readv/writev);
	 * pool chunks installed in the ring's fixed-buffer table now (added) */
	uint64_t rw_fixed, rw_plain, fixed_bufs;
	/* 1 while the qp's ring runs with SQPOLL (bdev_uring_set_sqpoll) */
	uint64_t sqpoll;
};
void bdev_qp_get_stats(const struct bdev_qp *qp, struct bdev_qp_stats *out);

#endif
