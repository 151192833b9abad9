/* bdev.c — generic part of the block layer: open/close dispatch, request
 * validation, and the queue pair (pending queue, depth, batching, callbacks).
 * See include/bdev/bdev.h for the contract and bdev_internal.h for the flow. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev/bdev.h"
#include "bdev_internal.h"
#include "core/log.h"
#include "core/reactor.h"
#include "mem/pool.h"

/* Indexed by enum bdev_type, which is also the qp's slot for the backend. */
static const struct bdev_backend *const backends[BDEV_BACKEND_MAX] = {
	[BDEV_TYPE_URING] = &bdev_uring_backend,
	[BDEV_TYPE_RAM]   = &bdev_ram_backend,
	[BDEV_TYPE_NVME]  = &bdev_nvme_backend,
};

static const struct bdev_backend *backend_of(enum bdev_type type)
{
	return (unsigned)type < BDEV_BACKEND_MAX ? backends[type] : NULL;
}

static bool is_pow2(uint32_t x) { return x && !(x & (x - 1)); }

int bdev_open(const struct bdev_opts *opts, struct bdev **out)
{
	*out = NULL;
	if (!opts || !opts->path || !opts->path[0]) {
		log_err("bdev: open without a path/name");
		return -EINVAL;
	}
	if (opts->block_size < 512 || opts->block_size > 4096 || !is_pow2(opts->block_size)) {
		log_err("bdev %s: block size %u is not a power of two in 512..4096",
			opts->path, opts->block_size);
		return -EINVAL;
	}
	const struct bdev_backend *be = backend_of(opts->type);
	if (!be) {
		log_err("bdev %s: backend type %d not supported", opts->path, (int)opts->type);
		return -EOPNOTSUPP;
	}
	struct bdev *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	/* Longer names are cut: name is for logs and for matching in config. */
	strncpy(b->name, opts->path, sizeof(b->name) - 1);
	b->type = opts->type;
	b->block_size = opts->block_size;
	b->readonly = opts->readonly;
	b->backend = be;
	int rc = be->open(b, opts);
	if (rc < 0) {
		free(b);
		return rc;
	}
	*out = b;
	return 0;
}

void bdev_close(struct bdev *b)
{
	if (!b)
		return;
	b->backend->close(b);
	free(b);
}

static int qp_poller(void *arg);

struct bdev_qp *bdev_qp_create(struct reactor *r, unsigned depth)
{
	if (depth == 0)
		return NULL;
	if (depth > BDEV_QP_MAX_DEPTH)     /* the largest io_uring SQ */
		depth = BDEV_QP_MAX_DEPTH;
	struct bdev_qp *qp = calloc(1, sizeof(*qp));
	if (!qp)
		return NULL;
	qp->reactor = r;
	qp->depth = depth;
	if (r) {
		qp->poller = reactor_poller_add(r, qp_poller, qp);
		if (!qp->poller) {
			log_err("bdev: cannot add the queue pair poller");
			free(qp);
			return NULL;
		}
		/* Registered buffers are an optimisation: without, I/O still works. */
		struct mem_pool *pool = reactor_pool(r);
		int rc = pool ? bdev_qp_set_pool(qp, pool) : 0;
		if (rc < 0)
			log_warn("bdev: no registered buffers for %s: %s",
				 mem_pool_name(pool), strerror(-rc));
	}
	return qp;
}

int bdev_qp_set_pool(struct bdev_qp *qp, struct mem_pool *pool)
{
	if (qp->closing)
		return -ECANCELED;
	if (pool == qp->pool)
		return 0;
	bdev_nvme_bufs_detach(qp);
	bdev_uring_bufs_detach(qp);
	int rc = pool ? bdev_uring_bufs_attach(qp, pool) : 0;
	bdev_nvme_bufs_attach(qp);            /* qp->pool, if that worked */
	return rc;
}

/* ---- the pending queue ---- */

static struct bdev_io *pend_pop(struct bdev_qp *qp)
{
	struct bdev_io *io = qp->pend_head;
	qp->pend_head = io->next;
	if (!qp->pend_head)
		qp->pend_tail = NULL;
	io->next = NULL;
	qp->queued--;
	return io;
}

static void pend_push_front(struct bdev_qp *qp, struct bdev_io *io)
{
	io->next = qp->pend_head;
	qp->pend_head = io;
	if (!qp->pend_tail)
		qp->pend_tail = io;
	qp->queued++;
}

/* ---- completion helpers for backends ---- */

void bdev_io_done_later(struct bdev_qp *qp, struct bdev_io *io, int status)
{
	io->status = status;
	io->next = NULL;
	if (qp->done_tail)
		qp->done_tail->next = io;
	else
		qp->done_head = io;
	qp->done_tail = io;
}

void bdev_io_retry(struct bdev_qp *qp, struct bdev_io *io)
{
	if (qp->closing) {
		bdev_io_done(qp, io, -ECANCELED);
		return;
	}
	qp->started--;
	pend_push_front(qp, io);
}

void bdev_io_advance(struct bdev_io *io, uint64_t n)
{
	io->done_bytes += n;
	if (!io->iov)
		return;
	while (n && io->iov_idx < io->iovcnt) {
		size_t left = io->iov[io->iov_idx].iov_len - io->iov_off;
		if (n < left) {
			io->iov_off += n;
			return;
		}
		n -= left;
		io->iov_idx++;
		io->iov_off = 0;
	}
}

/* ---- submission ---- */

static bool io_writes(enum bdev_io_type t)
{
	return t == BDEV_IO_WRITE || t == BDEV_IO_UNMAP || t == BDEV_IO_WRITE_ZEROES;
}

static int check_iov(const struct bdev *b, const struct bdev_io *io)
{
	if (!io->iov || io->iovcnt < 1 || io->iovcnt > BDEV_IO_MAX_IOV)
		return -EINVAL;
	uint64_t sum = 0;
	for (int i = 0; i < io->iovcnt; i++) {
		const struct iovec *v = &io->iov[i];
		/* O_DIRECT fails unaligned segments with EINVAL at run time; refuse
		 * them here where the cause is clear. */
		if (b->direct && (((uintptr_t)v->iov_base | v->iov_len) & 511))
			return -EINVAL;
		sum += v->iov_len;
	}
	return sum == io->len ? 0 : -EINVAL;
}

/* Range of a READ/WRITE/UNMAP/WRITE_ZEROES: inside the device, whole blocks
 * (block_size is a power of two: bdev_open checks). */
static bool range_ok(const struct bdev *b, const struct bdev_io *io)
{
	return io->len != 0 && !((io->offset | io->len) & (b->block_size - 1)) &&
	       io->offset <= b->size && io->len <= b->size - io->offset;
}

static int check_io(const struct bdev_io *io)
{
	const struct bdev *b = io->bdev;
	if (!b || !io->cb)
		return -EINVAL;
	if (io->type > BDEV_IO_WRITE_ZEROES)
		return -EINVAL;
	if (b->readonly && io_writes(io->type))
		return -EROFS;
	if (io->type == BDEV_IO_FLUSH)
		return 0;               /* whole device; offset/len ignored */
	if (!range_ok(b, io))
		return -EINVAL;
	if (io->type == BDEV_IO_UNMAP && !b->can_unmap)
		return -EOPNOTSUPP;
	if (io->type == BDEV_IO_READ || io->type == BDEV_IO_WRITE)
		return check_iov(b, io);
	return 0;
}

/* The common case first: a READ, or a WRITE to a writable bdev, of one
 * segment. The same checks as check_io, in fewer steps; anything else goes
 * to check_io. */
static int check_io_fast(const struct bdev_io *io)
{
	const struct bdev *b = io->bdev;
	if (b && io->cb && io->iovcnt == 1 && io->iov &&
	    (io->type == BDEV_IO_READ || (io->type == BDEV_IO_WRITE && !b->readonly))) {
		const struct iovec *v = io->iov;
		if (!range_ok(b, io) || v->iov_len != io->len ||
		    (b->direct && (((uintptr_t)v->iov_base | v->iov_len) & 511)))
			return -EINVAL;
		return 0;
	}
	return check_io(io);
}

static void pend_push_back(struct bdev_qp *qp, struct bdev_io *io)
{
	if (qp->pend_tail)
		qp->pend_tail->next = io;
	else
		qp->pend_head = io;
	qp->pend_tail = io;
	qp->queued++;
	if (qp->queued > qp->stats.queued_peak)
		qp->stats.queued_peak = qp->queued;
}

int bdev_submit(struct bdev_qp *qp, struct bdev_io *io)
{
	if (qp->closing)
		return -ECANCELED;
	int rc = check_io_fast(io);
	if (rc < 0)
		return rc;
	io->status = 0;
	io->sense = 0;
	io->next = NULL;
	io->done_bytes = 0;
	io->flags = 0;
	io->iov_idx = 0;
	io->iov_off = 0;
	qp->stats.submitted++;
	/* Straight to the backend when nothing waits ahead of io (the queue
	 * keeps its order, and retries go first) and there is room: the poll
	 * then only commits it. A backend without room now (-EBUSY) gets it
	 * from the queue later. */
	unsigned slot = (unsigned)io->bdev->type;
	if ((qp->direct_mask >> slot & 1) && !qp->pend_head && qp->started < qp->depth) {
		qp->started++;
		if (backends[slot]->start(qp, qp->state[slot], io) != -EBUSY) {
			qp->commit_mask |= 1u << slot;
			qp->fresh++;
			return 0;
		}
		qp->started--;
	}
	pend_push_back(qp, io);
	return 0;
}

/* Makes the backend's per-qp state on first use; an I/O that finds no state
 * (the ring could not be set up) fails with that error and the next one tries
 * again, so a transient -ENOMEM does not break the reactor for good. */
static int backend_ready(struct bdev_qp *qp, const struct bdev_backend *be, unsigned slot)
{
	if (qp->ready[slot])
		return 0;
	if (be->qp_init) {
		int rc = be->qp_init(qp, &qp->state[slot]);
		if (rc < 0) {
			log_err("bdev: cannot set up %s queue pair: %s", be->name, strerror(-rc));
			return rc;
		}
	}
	qp->ready[slot] = true;
	if (be->reap)
		qp->reap_mask |= 1u << slot;
	if (be->start_in_submit)
		qp->direct_mask |= 1u << slot;
	return 0;
}

/* Starts queued I/O up to depth and commits what was started since the last
 * poll (here or in bdev_submit); returns how many that is. */
static int start_pending(struct bdev_qp *qp)
{
	int n = (int)qp->fresh;

	qp->fresh = 0;
	while (qp->pend_head && qp->started < qp->depth) {
		struct bdev_io *io = pend_pop(qp);
		struct bdev *b = io->bdev;
		unsigned slot = (unsigned)b->type;
		qp->started++;
		int rc = backend_ready(qp, b->backend, slot);
		if (rc < 0) {
			bdev_io_done_later(qp, io, rc);
			continue;
		}
		rc = b->backend->start(qp, qp->state[slot], io);
		if (rc == -EBUSY) {
			qp->started--;
			pend_push_front(qp, io);
			break;
		}
		qp->commit_mask |= 1u << slot;
		n++;
	}
	unsigned m = qp->commit_mask;
	qp->commit_mask = 0;
	while (m) {
		unsigned s = (unsigned)__builtin_ctz(m);
		m &= m - 1;
		if (backends[s]->commit)
			backends[s]->commit(qp, qp->state[s]);
	}
	if (n)
		qp->stats.batches++;
	return n;
}

static int drain_done(struct bdev_qp *qp)
{
	struct bdev_io *io = qp->done_head;
	int n = 0;
	qp->done_head = qp->done_tail = NULL;
	while (io) {
		struct bdev_io *next = io->next;
		bdev_io_done(qp, io, io->status);
		io = next;
		n++;
	}
	return n;
}

static int reap_all(struct bdev_qp *qp)
{
	int n = 0;
	for (unsigned m = qp->reap_mask; m; m &= m - 1) {
		unsigned s = (unsigned)__builtin_ctz(m);
		n += backends[s]->reap(qp, qp->state[s]);
	}
	if (qp->done_head)
		n += drain_done(qp);
	return n;
}

int bdev_qp_poll(struct bdev_qp *qp)
{
	start_pending(qp);
	return reap_all(qp);
}

static int qp_poller(void *arg)
{
	struct bdev_qp *qp = arg;

	/* Idle: nothing queued, nothing to commit, nothing in a backend or on
	 * the done list (those count in started). One look, not two calls. */
	if (!qp->started && !qp->pend_head && !qp->commit_mask)
		return 0;
	int started = start_pending(qp);
	return started + reap_all(qp);
}

unsigned bdev_qp_inflight(const struct bdev_qp *qp)
{
	return qp->queued + qp->started;
}

void bdev_qp_get_stats(const struct bdev_qp *qp, struct bdev_qp_stats *out)
{
	*out = qp->stats;
}

void bdev_qp_destroy(struct bdev_qp *qp)
{
	if (!qp)
		return;
	qp->closing = true;
	if (qp->poller)
		reactor_poller_del(qp->reactor, qp->poller);
	/* Never handed to a backend: cancel. Callbacks may not submit again
	 * (bdev_submit refuses with -ECANCELED while closing). */
	while (qp->pend_head) {
		struct bdev_io *io = pend_pop(qp);
		qp->started++;
		bdev_io_done(qp, io, -ECANCELED);
	}
	drain_done(qp);
	/* In the kernel: wait for each (they cannot be taken back). */
	for (unsigned s = 0; s < BDEV_BACKEND_MAX; s++) {
		const struct bdev_backend *be = backend_of((enum bdev_type)s);
		if (qp->ready[s] && be && be->qp_fini)
			be->qp_fini(qp, qp->state[s]);
	}
	drain_done(qp);
	bdev_uring_bufs_detach(qp);
	free(qp);
}

int bdev_lba_status(struct bdev *b, uint64_t offset, uint64_t *len, bool *mapped)
{
	if (!b || offset >= b->size)
		return -EINVAL;
	if (!b->backend->lba_status) {
		*len = b->size - offset;
		*mapped = true;
		return 0;
	}
	return b->backend->lba_status(b, offset, len, mapped);
}
