/* metrics.c — the Prometheus text exposition format (version 0.0.4) of
 * lich's counters: per LU (I/O counters, latency histogram in seconds), per
 * reactor (memory pool, loop), and the session count. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl/stats.h"
#include "ctl_int.h"

/* A label value: backslash, double quote and newline escaped. */
static void label(struct ctl_buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			ctl_buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			ctl_buf_put(b, "\\n", 2);
		else
			ctl_buf_put(b, v, 1);
	}
}

static void head(struct ctl_buf *b, const char *name, const char *type, const char *help)
{
	ctl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const struct {
	const char *name, *help;
	size_t off;
} lun_counters[] = {
	{ "lich_lun_read_ops_total", "READ commands completed",
	  offsetof(struct ctl_io_ctr, read_ops) },
	{ "lich_lun_write_ops_total", "WRITE commands completed",
	  offsetof(struct ctl_io_ctr, write_ops) },
	{ "lich_lun_other_ops_total", "other SCSI commands completed",
	  offsetof(struct ctl_io_ctr, other_ops) },
	{ "lich_lun_read_bytes_total", "bytes read by initiators",
	  offsetof(struct ctl_io_ctr, read_bytes) },
	{ "lich_lun_write_bytes_total", "bytes written by initiators",
	  offsetof(struct ctl_io_ctr, write_bytes) },
	{ "lich_lun_errors_total", "commands that ended with a status other than GOOD",
	  offsetof(struct ctl_io_ctr, errors) },
};
#define NCOUNTERS (sizeof(lun_counters) / sizeof(lun_counters[0]))

struct walk {
	struct ctl_buf *b;
	unsigned what;          /* index into lun_counters, or NCOUNTERS: histogram */
};

static void lun_labels(struct ctl_buf *b, const struct ctl_lu_stats *s)
{
	ctl_buf_put(b, "target=\"", 8);
	label(b, s->target);
	ctl_buf_printf(b, "\",lun=\"%u\"", s->lun);
}

static void lun_one(const struct ctl_lu_stats *s, void *arg)
{
	struct walk *w = arg;
	struct ctl_lu_sum sum;

	ctl_lu_stats_sum(s, &sum);
	if (w->what < NCOUNTERS) {
		uint64_t v;
		memcpy(&v, (const char *)&sum.io + lun_counters[w->what].off, sizeof(v));
		ctl_buf_printf(w->b, "%s{", lun_counters[w->what].name);
		lun_labels(w->b, s);
		ctl_buf_printf(w->b, "} %" PRIu64 "\n", v);
		return;
	}
	uint64_t cum = 0;
	for (unsigned k = 0; k < CTL_LAT_BUCKETS; k++) {
		uint64_t le = ctl_lat_bucket_le(k);
		cum += sum.lat[k];
		ctl_buf_put(w->b, "lich_lun_latency_seconds_bucket{", 32);
		lun_labels(w->b, s);
		if (le == UINT64_MAX)
			ctl_buf_printf(w->b, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
		else
			ctl_buf_printf(w->b, ",le=\"%g\"} %" PRIu64 "\n", (double)le / 1e6, cum);
	}
	ctl_buf_put(w->b, "lich_lun_latency_seconds_sum{", 29);
	lun_labels(w->b, s);
	ctl_buf_printf(w->b, "} %.6f\n", (double)sum.lat_sum_us / 1e6);
	ctl_buf_put(w->b, "lich_lun_latency_seconds_count{", 31);
	lun_labels(w->b, s);
	ctl_buf_printf(w->b, "} %" PRIu64 "\n", sum.lat_count);
}

static void per_reactor(struct ctl_buf *b, const struct ctl_gather *g, const char *name,
			const char *type, const char *help,
			uint64_t (*get)(const struct ctl_part *p))
{
	head(b, name, type, help);
	for (unsigned i = 0; i < g->n; i++)
		if (g->part[i].replied && g->part[i].have_pool)
			ctl_buf_printf(b, "%s{reactor=\"%u\"} %" PRIu64 "\n", name, i, get(&g->part[i]));
}

static uint64_t p_in_use(const struct ctl_part *p) { return ctl_part_bytes_in_use(p); }
static uint64_t p_mapped(const struct ctl_part *p) { return p->pool.mapped_bytes; }
static uint64_t p_chunks(const struct ctl_part *p) { return p->pool.chunks; }
static uint64_t p_huge(const struct ctl_part *p) { return p->pool.hugepage_chunks; }
static uint64_t p_hw(const struct ctl_part *p) { return p->pool.page_high_water; }
static uint64_t p_fail(const struct ctl_part *p) { return p->pool.failed_allocs; }
static uint64_t p_limit(const struct ctl_part *p) { return p->pool.limit; }
static uint64_t r_turns(const struct ctl_part *p) { return p->rstats.turns; }
static uint64_t r_busy(const struct ctl_part *p) { return p->rstats.busy_turns; }
static uint64_t r_msgs(const struct ctl_part *p) { return p->rstats.msgs; }
static uint64_t r_sess(const struct ctl_part *p) { return p->nsess; }

void ctl_metrics_render(const struct ctl_gather *g, struct ctl_buf *b)
{
	head(b, "lich_up", "gauge", "1 while lichd answers");
	ctl_buf_printf(b, "lich_up 1\n");
	head(b, "lich_reactors", "gauge", "reactor threads");
	ctl_buf_printf(b, "lich_reactors %u\n", g->n);
	for (unsigned k = 0; k <= NCOUNTERS; k++) {
		struct walk w = { b, k };
		if (k < NCOUNTERS)
			head(b, lun_counters[k].name, "counter", lun_counters[k].help);
		else
			head(b, "lich_lun_latency_seconds", "histogram",
			     "command latency from arrival to status");
		ctl_lu_stats_each(lun_one, &w);
	}
	per_reactor(b, g, "lich_sessions", "gauge", "sessions (incl. discovery) per reactor",
		    r_sess);
	per_reactor(b, g, "lich_pool_bytes_in_use", "gauge",
		    "bytes allocated from the reactor's memory pool", p_in_use);
	per_reactor(b, g, "lich_pool_mapped_bytes", "gauge", "bytes mapped by the pool", p_mapped);
	per_reactor(b, g, "lich_pool_limit_bytes", "gauge", "the pool's memory-limit", p_limit);
	per_reactor(b, g, "lich_pool_chunks", "gauge", "2 MiB chunks mapped", p_chunks);
	per_reactor(b, g, "lich_pool_hugepage_chunks", "gauge", "chunks backed by hugepages",
		    p_huge);
	per_reactor(b, g, "lich_pool_high_water_bytes", "gauge",
		    "most page bytes ever in use", p_hw);
	per_reactor(b, g, "lich_pool_failed_allocs_total", "counter",
		    "page allocations the pool refused", p_fail);
	per_reactor(b, g, "lich_reactor_turns_total", "counter", "event loop turns", r_turns);
	per_reactor(b, g, "lich_reactor_busy_turns_total", "counter", "turns that found work",
		    r_busy);
	per_reactor(b, g, "lich_reactor_messages_total", "counter",
		    "messages received from reactors", r_msgs);
}
