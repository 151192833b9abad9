/* stats.c — the registry of per-LU counter blocks, and the reader's side:
 * sums over reactors and latency percentiles. See ctl/stats.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/stats.h"

static struct {
	pthread_mutex_t lock;
	struct ctl_lu_stats *head, *tail;
	unsigned nreactors;
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER };

void ctl_stats_init(unsigned nreactors)
{
	reg.nreactors = nreactors ? nreactors : 1;
}

void ctl_stats_fini(void)
{
	pthread_mutex_lock(&reg.lock);
	while (reg.head) {
		struct ctl_lu_stats *s = reg.head;

		reg.head = s->next;
		free(s);
	}
	reg.tail = NULL;
	pthread_mutex_unlock(&reg.lock);
}

struct ctl_lu_stats *ctl_lu_stats_get(const char *target, unsigned lun)
{
	struct ctl_lu_stats *s;

	pthread_mutex_lock(&reg.lock);
	for (s = reg.head; s; s = s->next) {
		if (s->retired && s->lun == lun && strcmp(s->target, target) == 0) {
			s->retired = false;
			pthread_mutex_unlock(&reg.lock);
			return s;
		}
	}
	unsigned n = reg.nreactors ? reg.nreactors : 1;
	s = aligned_alloc(64, (sizeof(*s) + n * sizeof(s->per[0]) + 63) & ~(size_t)63);
	if (s) {
		memset(s, 0, sizeof(*s) + n * sizeof(s->per[0]));
		snprintf(s->target, sizeof(s->target), "%s", target);
		s->lun = lun;
		s->nreactors = n;
		if (reg.tail)
			reg.tail->next = s;
		else
			reg.head = s;
		reg.tail = s;
	}
	pthread_mutex_unlock(&reg.lock);
	return s;
}

void ctl_lu_stats_retire(struct ctl_lu_stats *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&reg.lock);
	s->retired = true;
	pthread_mutex_unlock(&reg.lock);
}

void ctl_lu_stats_retire_lun(const char *target, int lun)
{
	pthread_mutex_lock(&reg.lock);
	for (struct ctl_lu_stats *s = reg.head; s; s = s->next)
		if (!s->retired && (lun < 0 || s->lun == (unsigned)lun) &&
		    strcmp(s->target, target) == 0)
			s->retired = true;
	pthread_mutex_unlock(&reg.lock);
}

void ctl_lu_stats_each(void (*fn)(const struct ctl_lu_stats *s, void *arg), void *arg)
{
	pthread_mutex_lock(&reg.lock);
	for (struct ctl_lu_stats *s = reg.head; s; s = s->next)
		if (!s->retired)
			fn(s, arg);
	pthread_mutex_unlock(&reg.lock);
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

void ctl_lu_stats_sum(const struct ctl_lu_stats *s, struct ctl_lu_sum *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned r = 0; r < s->nreactors; r++) {
		const struct ctl_lu_ctr *c = &s->per[r];

		out->io.read_ops += LOAD(c->io.read_ops);
		out->io.write_ops += LOAD(c->io.write_ops);
		out->io.other_ops += LOAD(c->io.other_ops);
		out->io.read_bytes += LOAD(c->io.read_bytes);
		out->io.write_bytes += LOAD(c->io.write_bytes);
		out->io.errors += LOAD(c->io.errors);
		out->lat_sum_us += LOAD(c->lat_sum_us);
		for (unsigned b = 0; b < CTL_LAT_BUCKETS; b++) {
			uint64_t v = LOAD(c->lat[b]);

			out->lat[b] += v;
			out->lat_count += v;
		}
	}
}

/* Every opcode not named here is CTL_IO_OTHER (0). */
const uint8_t ctl_cdb_kinds[256] = {
	[0x08] = CTL_IO_READ, [0x28] = CTL_IO_READ,           /* READ 6/10/12/16 */
	[0xa8] = CTL_IO_READ, [0x88] = CTL_IO_READ,
	[0x0a] = CTL_IO_WRITE, [0x2a] = CTL_IO_WRITE,         /* WRITE 6/10/12/16 */
	[0xaa] = CTL_IO_WRITE, [0x8a] = CTL_IO_WRITE,
	[0x2e] = CTL_IO_WRITE, [0xae] = CTL_IO_WRITE,         /* WRITE AND VERIFY */
	[0x8e] = CTL_IO_WRITE,
	[0x89] = CTL_IO_WRITE,                                /* COMPARE AND WRITE */
};

uint64_t ctl_lat_bucket_le(unsigned b)
{
	if (b >= CTL_LAT_BUCKETS - 1)
		return UINT64_MAX;
	return (uint64_t)1 << b;
}

double ctl_lat_percentile(const uint64_t *buckets, unsigned n, double q)
{
	uint64_t total = 0, seen = 0;

	for (unsigned b = 0; b < n; b++)
		total += buckets[b];
	if (total == 0 || q <= 0)
		return 0;
	if (q > 1)
		q = 1;
	/* the rank of the sample wanted, 1..total */
	double rank = q * (double)total;
	for (unsigned b = 0; b < n; b++) {
		if (!buckets[b])
			continue;
		if ((double)(seen + buckets[b]) >= rank) {
			double lo = b == 0 ? 0 : (double)((uint64_t)1 << (b - 1));
			/* the open last bucket: report its lower bound */
			if (b == n - 1)
				return lo;
			double hi = (double)((uint64_t)1 << b);
			double frac = (rank - (double)seen) / (double)buckets[b];
			return lo + (hi - lo) * frac;
		}
		seen += buckets[b];
	}
	return 0;
}
