/* bdev_internal.h — what bdev.c (the generic queue pair) and the backends share.
 *
 * An I/O moves through a qp like this:
 *   bdev_submit()  validates it; then, for a backend with start_in_submit whose
 *                  per-qp state exists, when nothing is queued and fewer than
 *                  qp->depth are started, starts it at once (uring: fills its
 *                  SQE; no system call, no callback), else appends it to qp->pend;
 *   bdev_qp_poll() 1. starts queued I/O while fewer than qp->depth are started:
 *                     backend->start() (uring: prepares an SQE; ram: does the copy
 *                     and finishes it onto qp->done);
 *                  2. backend->commit() once per backend that started something
 *                     since the last poll, here or in bdev_submit (uring: one
 *                     io_uring_submit for the whole batch);
 *                  3. backend->reap() (uring: CQEs, no syscall), then qp->done;
 *                     each finished I/O gets its callback via bdev_io_done().
 * A backend that needs another round for an I/O (short transfer, -EAGAIN) gives
 * it back with bdev_io_retry(): it goes to the head of qp->pend and is started
 * again on the next poll, with its progress (done_bytes, iov_idx, iov_off) kept.
 *
 * Per-qp backend state (the uring backend's io_uring) is made by
 * backend->qp_init() on the first I/O of that backend on the qp, so a reactor
 * that only drives ram bdevs never opens a ring.
 */
#ifndef LICH_BDEV_INTERNAL_H
#define LICH_BDEV_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "bdev/bdev.h"

struct reactor;
struct poller;
struct mem_pool;
struct uring_bufs;

/* bdev_qp_create clamps depth to this (io_uring's largest SQ). */
#define BDEV_QP_MAX_DEPTH 32768

/* One slot per enum bdev_type. */
#define BDEV_BACKEND_MAX 3

/* io->flags (backend private). */
#define BDEV_IO_F_ZERO_BY_WRITE (1u << 0) /* WRITE_ZEROES done as writes of zeroes */

struct bdev_backend {
	const char *name;
	/* Fills b->size, can_unmap, direct, is_blockdev and b->priv; the generic
	 * code has already validated opts and set name, type, block_size, readonly. */
	int (*open)(struct bdev *b, const struct bdev_opts *opts);
	void (*close)(struct bdev *b);

	/* Per-qp state: NULL qp_init means the backend needs none. qp_fini must
	 * reap everything this backend still has in flight on the qp (calling
	 * bdev_io_done for each) before it frees the state. */
	int (*qp_init)(struct bdev_qp *qp, void **state);
	void (*qp_fini)(struct bdev_qp *qp, void *state);

	/* Starts io. Returns 0 when the backend owns it (it will finish it with
	 * bdev_io_done, bdev_io_done_later or bdev_io_retry), or -EBUSY when it has
	 * no room right now (the io stays at the head of the queue). */
	int (*start)(struct bdev_qp *qp, void *state, struct bdev_io *io);
	/* Called once after a poll started I/O on this backend (may be NULL). */
	void (*commit)(struct bdev_qp *qp, void *state);
	/* Finishes what completed; returns how many I/O got callbacks (may be NULL). */
	int (*reap)(struct bdev_qp *qp, void *state);

	int (*lba_status)(struct bdev *b, uint64_t offset, uint64_t *len, bool *mapped);

	/* start() may also run inside bdev_submit, so possibly inside another
	 * io's callback, even while this backend's reap() runs. It must be safe
	 * there (finish io only with bdev_io_done_later, keep reap's state
	 * consistent around callbacks). Saves the pending queue's round trip. */
	bool start_in_submit;
};

extern const struct bdev_backend bdev_uring_backend;
extern const struct bdev_backend bdev_ram_backend;
extern const struct bdev_backend bdev_nvme_backend;

struct bdev_qp {
	struct reactor *reactor;      /* NULL: polled by hand (unit tests) */
	struct poller *poller;
	unsigned depth;
	unsigned queued;              /* I/O in pend */
	unsigned started;             /* I/O owned by a backend, callback not yet run */
	bool closing;                 /* bdev_qp_destroy running: no new I/O */
	struct bdev_io *pend_head, *pend_tail;
	struct bdev_io *done_head, *done_tail;
	bool ready[BDEV_BACKEND_MAX]; /* qp_init done for that backend */
	void *state[BDEV_BACKEND_MAX];
	unsigned direct_mask;         /* backends (1 << type) that may start in bdev_submit
	                               * (start_in_submit, ready) */
	unsigned reap_mask;           /* ready backends with a reap() */
	unsigned commit_mask;         /* backends that started I/O since their last commit */
	unsigned fresh;               /* I/O started in bdev_submit since the last poll */
	struct mem_pool *pool;        /* bdev_qp_set_pool; NULL: none */
	struct uring_bufs *ubufs;     /* uring's registration of pool (bdev_uring.c) */
	struct bdev_qp_stats stats;
};

/* For backends. */
/* Runs io's callback now with status (only from reap or qp_fini). Inline: it is
 * on every I/O's path. */
static inline void bdev_io_done(struct bdev_qp *qp, struct bdev_io *io, int status)
{
	qp->started--;
	qp->stats.completed++;
	if (status)
		qp->stats.errors++;
	io->status = status;
	io->next = NULL;
	io->cb(io);
}
/* Finishes io from inside start(): its callback runs later in the same poll. */
void bdev_io_done_later(struct bdev_qp *qp, struct bdev_io *io, int status);
/* Gives io back to be started again (short transfer, -EAGAIN...). While the qp
 * is being destroyed it completes io with -ECANCELED instead. */
void bdev_io_retry(struct bdev_qp *qp, struct bdev_io *io);
/* Records n more bytes transferred: done_bytes, iov_idx, iov_off. */
void bdev_io_advance(struct bdev_io *io, uint64_t n);

/* bdev_uring.c: registers pool's chunks as the qp's ring's fixed buffers (the
 * ring's table is made now if the ring exists, else when it is) and sets
 * qp->pool and qp->ubufs; detach undoes it (qp->pool, qp->ubufs = NULL). */
int bdev_uring_bufs_attach(struct bdev_qp *qp, struct mem_pool *pool);
void bdev_uring_bufs_detach(struct bdev_qp *qp);
/* bdev_nvme.c: the same for the nvme ring (its own hook on qp->pool); attach
 * does nothing until the qp has an nvme ring (qp_init attaches then). */
void bdev_nvme_bufs_attach(struct bdev_qp *qp);
void bdev_nvme_bufs_detach(struct bdev_qp *qp);

#endif
