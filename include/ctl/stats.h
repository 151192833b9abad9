/* stats.h — live I/O statistics for lichctl and the Prometheus endpoint.
 *
 * Per logical unit: one counter block per (LU, reactor), written only by that
 * reactor with plain loads and stores (no lock, no atomic read-modify-write on
 * the I/O path) and summed by a reader on any thread with relaxed atomic loads;
 * a reader may see one block a few operations behind another, never a torn
 * value (naturally aligned 64-bit words). Per connection: the same counters
 * (struct ctl_io_ctr) embedded in the connection, read only on its reactor.
 *
 * Latency: from the command's arrival to its completion (status ready to be
 * sent), in log2 buckets of microseconds: bucket 0 is < 1 us, bucket i (1..24)
 * is [2^(i-1), 2^i) us, the last is >= 2^24 us (~16.8 s). Percentiles are
 * computed by the reader (ctl_lat_percentile), interpolating inside a bucket.
 *
 * Life: lichd makes a block when it creates an LU (ctl_lu_stats_get) and
 * passes it to the scsi layer (scsi_lu_opts.stats). Removing the LU only
 * marks the block retired (tasks in flight may still count into it); a later
 * LU with the same target and number takes it over, so its counters keep
 * growing (as Prometheus counters should). Blocks are freed by
 * ctl_stats_fini() at exit.
 */
#ifndef LICH_CTL_STATS_H
#define LICH_CTL_STATS_H

#include <stdbool.h>
#include <stdint.h>

#define CTL_LAT_BUCKETS 26
#define CTL_NAME_MAX 224

enum ctl_io_kind { CTL_IO_OTHER = 0, CTL_IO_READ, CTL_IO_WRITE };

struct ctl_io_ctr {
	uint64_t read_ops, write_ops, other_ops;
	uint64_t read_bytes, write_bytes;
	uint64_t errors;                 /* commands ended with a status other than GOOD */
};

/* One reactor's part of an LU's statistics (its own cache lines). */
struct ctl_lu_ctr {
	struct ctl_io_ctr io;
	uint64_t lat_sum_us;
	uint64_t lat[CTL_LAT_BUCKETS];
} __attribute__((aligned(64)));

struct ctl_lu_stats {
	struct ctl_lu_stats *next;       /* registry (under its lock) */
	char target[CTL_NAME_MAX];
	unsigned lun;
	bool retired;
	unsigned nreactors;
	struct ctl_lu_ctr per[];         /* nreactors blocks */
};

/* A sum over reactors, as the reader sees it. */
struct ctl_lu_sum {
	struct ctl_io_ctr io;
	uint64_t lat_sum_us;
	uint64_t lat[CTL_LAT_BUCKETS];
	uint64_t lat_count;
};

/* nreactors: how many reactors will run (before any block is made). */
void ctl_stats_init(unsigned nreactors);
void ctl_stats_fini(void);
/* The block of (target, lun): a retired one is taken over, else a new one.
 * NULL on allocation failure (the LU then runs without statistics). */
struct ctl_lu_stats *ctl_lu_stats_get(const char *target, unsigned lun);
void ctl_lu_stats_retire(struct ctl_lu_stats *s);
/* Retires the live block of (target, lun), or every block of target when
 * lun < 0 (a removed LU / target). */
void ctl_lu_stats_retire_lun(const char *target, int lun);
/* Calls fn for every live block, under the registry lock, in creation order. */
void ctl_lu_stats_each(void (*fn)(const struct ctl_lu_stats *s, void *arg), void *arg);
void ctl_lu_stats_sum(const struct ctl_lu_stats *s, struct ctl_lu_sum *out);

/* READ/WRITE family from the opcode; everything else is OTHER. */
extern const uint8_t ctl_cdb_kinds[256];
static inline enum ctl_io_kind ctl_cdb_kind(uint8_t opcode)
{
	return (enum ctl_io_kind)ctl_cdb_kinds[opcode];
}
/* Bucket of a latency in microseconds. */
static inline unsigned ctl_lat_bucket(uint64_t us)
{
	unsigned b = us ? 64u - (unsigned)__builtin_clzll(us) : 0;

	return b < CTL_LAT_BUCKETS - 1 ? b : CTL_LAT_BUCKETS - 1;
}
/* Upper bound of bucket b in microseconds (UINT64_MAX for the last). */
uint64_t ctl_lat_bucket_le(unsigned b);
/* The q-quantile (0 < q <= 1) of a histogram, in microseconds, linearly
 * interpolated inside its bucket; 0 when the histogram is empty. */
double ctl_lat_percentile(const uint64_t *buckets, unsigned n, double q);

/* Counts one finished command in a counter block (its owner's thread). */
static inline void ctl_io_count(struct ctl_io_ctr *c, enum ctl_io_kind kind, uint32_t bytes,
				bool error)
{
	if (kind == CTL_IO_READ) {
		c->read_ops++;
		c->read_bytes += bytes;
	} else if (kind == CTL_IO_WRITE) {
		c->write_ops++;
		c->write_bytes += bytes;
	} else {
		c->other_ops++;
	}
	if (error)
		c->errors++;
}

/* Plain load + store of a word a reader loads atomically (single writer). */
#define CTL_BUMP(x, v) __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + (v), \
					 __ATOMIC_RELAXED)

/* Counts one finished command of this LU on reactor rid. */
static inline void ctl_lu_count(struct ctl_lu_stats *s, unsigned rid, enum ctl_io_kind kind,
				uint32_t bytes, bool error, uint64_t lat_us)
{
	if (!s || rid >= s->nreactors)
		return;
	struct ctl_lu_ctr *c = &s->per[rid];
	if (kind == CTL_IO_READ) {
		CTL_BUMP(c->io.read_ops, 1);
		CTL_BUMP(c->io.read_bytes, bytes);
	} else if (kind == CTL_IO_WRITE) {
		CTL_BUMP(c->io.write_ops, 1);
		CTL_BUMP(c->io.write_bytes, bytes);
	} else {
		CTL_BUMP(c->io.other_ops, 1);
	}
	if (error)
		CTL_BUMP(c->io.errors, 1);
	CTL_BUMP(c->lat_sum_us, lat_us);
	CTL_BUMP(c->lat[ctl_lat_bucket(lat_us)], 1);
}

#endif
