/* verbs.c — what lichctl can ask, on reactor 0: each verb answers now from
 * the running config and the LU counters, or first gathers what the other
 * reactors own (sessions, pools) and answers from the continuation. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/log.h"
#include "ctl/stats.h"
#include "ctl_int.h"

#define LOGOUT_DEFAULT_SECS 10

/* Renders a text table into the reply; a table that ran out of memory makes
 * the reply fail rather than come out short. */
static void table_out(struct ctl_table *t, struct ctl_buf *b)
{
	ctl_table_render(t, b);
	if (t->oom)
		b->oom = true;
	ctl_table_free(t);
}

static const char *const bs_names[] = { "uring", "ram", "nvme" };

static const char *bs_name(enum bs_type t)
{
	return (unsigned)t < 3 ? bs_names[t] : "?";
}

static void isid_text(const uint8_t isid[6], char *out, size_t n)
{
	snprintf(out, n, "0x%02x%02x%02x%02x%02x%02x", isid[0], isid[1], isid[2], isid[3],
		 isid[4], isid[5]);
}

/* The value of option `name` (e.g. "--size") among w[from..], or NULL; *bad
 * is set for an option given without its value. */
static const char *opt_value(const struct ctl_req *r, unsigned from, const char *name, bool *bad)
{
	for (unsigned i = from; i < r->n; i++) {
		if (strcmp(r->w[i], name) == 0) {
			if (i + 1 >= r->n) {
				*bad = true;
				return NULL;
			}
			return r->w[i + 1];
		}
	}
	return NULL;
}

static bool opt_flag(const struct ctl_req *r, unsigned from, const char *name)
{
	for (unsigned i = from; i < r->n; i++)
		if (strcmp(r->w[i], name) == 0)
			return true;
	return false;
}

/* Words from `from` on are options: each must be one of `known` (NULL
 * terminated; a name ending in '=' takes a value). */
static const char *check_opts(const struct ctl_req *r, unsigned from, const char *const *known)
{
	for (unsigned i = from; i < r->n; i++) {
		bool ok = false;
		for (unsigned k = 0; known[k] && !ok; k++) {
			size_t n = strlen(known[k]);
			bool takes = known[k][n - 1] == '=';
			if (strncmp(r->w[i], known[k], takes ? n - 1 : n) == 0 &&
			    strlen(r->w[i]) == (takes ? n - 1 : n)) {
				ok = true;
				if (takes)
					i++;
			}
		}
		if (!ok)
			return r->w[i];
	}
	return NULL;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static unsigned sessions_of(const struct ctl_gather *g, const char *target)
{
	unsigned n = 0;

	for (unsigned i = 0; i < g->n; i++)
		for (unsigned k = 0; k < g->part[i].nsess; k++)
			if (!g->part[i].sess[k].discovery &&
			    strcasecmp(g->part[i].sess[k].target, target) == 0)
				n++;
	return n;
}

/* ---- show ---- */

static void show_targets(struct ctl_client *cl, struct ctl_gather *g)
{
	const struct config *c = ctl_hooks->config();
	struct ctl_buf b = { 0 };

	if (cl->req.json) {
		struct ctl_json j;
		cj_init(&j, &b);
		cj_obj(&j, NULL);
		cj_arr(&j, "targets");
		for (unsigned i = 0; i < c->ntargets; i++) {
			const struct conf_target *t = &c->targets[i];
			cj_obj(&j, NULL);
			cj_str(&j, "name", t->name);
			cj_u64(&j, "tid", t->tid);
			cj_arr(&j, "luns");
			for (unsigned k = 0; k < t->nluns; k++)
				cj_u64(&j, NULL, t->luns[k].lun);
			cj_end_arr(&j);
			cj_u64(&j, "sessions", sessions_of(g, t->name));
			cj_arr(&j, "initiator_names");
			for (unsigned k = 0; k < t->n_initiator_names; k++)
				cj_str(&j, NULL, t->initiator_names[k]);
			cj_end_arr(&j);
			cj_arr(&j, "initiator_addresses");
			for (unsigned k = 0; k < t->n_initiator_addresses; k++)
				cj_str(&j, NULL, t->initiator_addresses[k]);
			cj_end_arr(&j);
			cj_bool(&j, "chap", t->n_incoming > 0);
			cj_end_obj(&j);
		}
		cj_end_arr(&j);
		cj_end_obj(&j);
		ctl_buf_put(&b, "\n", 1);
	} else {
		static const char *const hdr[] = { "TARGET", "TID", "LUNS", "SESSIONS", "ACL" };
		struct ctl_table t;
		ctl_table_init(&t, 5, hdr);
		for (unsigned i = 0; i < c->ntargets; i++) {
			const struct conf_target *ct = &c->targets[i];
			char luns[256] = "", acl[512] = "";
			size_t o = 0;
			for (unsigned k = 0; k < ct->nluns && o < sizeof(luns) - 8; k++)
				o += (size_t)snprintf(luns + o, sizeof(luns) - o, "%s%u", k ? "," : "",
						      ct->luns[k].lun);
			o = 0;
			for (unsigned k = 0; k < ct->n_initiator_names && o < sizeof(acl) - 1; k++)
				o += (size_t)snprintf(acl + o, sizeof(acl) - o, "%s%s", o ? "," : "",
						      ct->initiator_names[k]);
			for (unsigned k = 0; k < ct->n_initiator_addresses && o < sizeof(acl) - 1; k++)
				o += (size_t)snprintf(acl + o, sizeof(acl) - o, "%s%s", o ? "," : "",
						      ct->initiator_addresses[k]);
			ctl_table_rowf(&t, "%s\t%u\t%s\t%u\t%s", ct->name, ct->tid,
				       luns[0] ? luns : "-", sessions_of(g, ct->name),
				       acl[0] ? acl : "ALL");
		}
		table_out(&t, &b);
	}
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

static void show_luns(struct ctl_client *cl)
{
	const struct config *c = ctl_hooks->config();
	struct ctl_buf b = { 0 };
	struct ctl_json j;
	struct ctl_table t;
	static const char *const hdr[] = { "TARGET", "LUN", "TYPE", "SIZE", "BLOCK", "RO", "WC",
					   "BACKING" };

	if (cl->req.json) {
		cj_init(&j, &b);
		cj_obj(&j, NULL);
		cj_arr(&j, "luns");
	} else {
		ctl_table_init(&t, 8, hdr);
	}
	for (unsigned i = 0; i < c->ntargets; i++) {
		const struct conf_target *ct = &c->targets[i];
		for (unsigned k = 0; k < ct->nluns; k++) {
			const struct conf_lun *l = &ct->luns[k];
			uint64_t size = ctl_hooks->lun_size(ct->name, l->lun);
			char path[4200];
			snprintf(path, sizeof(path), "%s%s", l->bs_type == BS_RAM ? "ram:" : "",
				 l->path ? l->path : "");
			if (cl->req.json) {
				cj_obj(&j, NULL);
				cj_str(&j, "target", ct->name);
				cj_u64(&j, "lun", l->lun);
				cj_str(&j, "type", bs_name(l->bs_type));
				cj_str(&j, "backing", path);
				cj_u64(&j, "size", size);
				cj_u64(&j, "block_size", l->block_size);
				cj_bool(&j, "readonly", l->readonly);
				cj_bool(&j, "write_cache", l->write_cache);
				cj_str(&j, "vendor_id", l->vendor_id);
				cj_str(&j, "product_id", l->product_id);
				cj_bool(&j, "online", size != 0);
				cj_end_obj(&j);
			} else {
				char hs[32];
				ctl_human_bytes(size, hs, sizeof(hs));
				ctl_table_rowf(&t, "%s\t%u\t%s\t%s\t%u\t%s\t%s\t%s", ct->name, l->lun,
					       bs_name(l->bs_type), size ? hs : "offline",
					       l->block_size, l->readonly ? "yes" : "no",
					       l->write_cache ? "on" : "off", path);
			}
		}
	}
	if (cl->req.json) {
		cj_end_arr(&j);
		cj_end_obj(&j);
		ctl_buf_put(&b, "\n", 1);
	} else {
		table_out(&t, &b);
	}
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

static void show_portals(struct ctl_client *cl)
{
	const struct config *c = ctl_hooks->config();
	struct ctl_buf b = { 0 };
	char a[100];

	if (cl->req.json) {
		struct ctl_json j;
		cj_init(&j, &b);
		cj_obj(&j, NULL);
		cj_arr(&j, "portals");
		for (unsigned i = 0; i < c->nportals + c->n_iser_portals; i++) {
			bool iser = i >= c->nportals;
			const struct conf_portal *p = iser ? &c->iser_portals[i - c->nportals] :
							     &c->portals[i];
			cj_obj(&j, NULL);
			cj_str(&j, "transport", iser ? "iser" : "tcp");
			cj_str(&j, "address", p->host);
			cj_u64(&j, "port", p->port);
			cj_end_obj(&j);
		}
		cj_end_arr(&j);
		cj_str(&j, "control_socket", c->control_socket);
		if (c->has_metrics) {
			conf_portal_text(&c->metrics, a, sizeof(a));
			cj_str(&j, "metrics", a);
		} else {
			cj_str(&j, "metrics", NULL);
		}
		cj_end_obj(&j);
		ctl_buf_put(&b, "\n", 1);
	} else {
		static const char *const hdr[] = { "TRANSPORT", "ADDRESS", "PORT" };
		struct ctl_table t;
		ctl_table_init(&t, 3, hdr);
		for (unsigned i = 0; i < c->nportals; i++)
			ctl_table_rowf(&t, "tcp\t%s\t%u", c->portals[i].host, c->portals[i].port);
		for (unsigned i = 0; i < c->n_iser_portals; i++)
			ctl_table_rowf(&t, "iser\t%s\t%u", c->iser_portals[i].host,
				       c->iser_portals[i].port);
		if (c->has_metrics)
			ctl_table_rowf(&t, "metrics (http)\t%s\t%u", c->metrics.host, c->metrics.port);
		if (c->control_socket)
			ctl_table_rowf(&t, "control\t%s\t-", c->control_socket);
		table_out(&t, &b);
	}
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

static void json_io(struct ctl_json *j, const struct ctl_io_ctr *io)
{
	cj_u64(j, "read_ops", io->read_ops);
	cj_u64(j, "write_ops", io->write_ops);
	cj_u64(j, "other_ops", io->other_ops);
	cj_u64(j, "read_bytes", io->read_bytes);
	cj_u64(j, "write_bytes", io->write_bytes);
	cj_u64(j, "errors", io->errors);
}

static void show_sessions(struct ctl_client *cl, struct ctl_gather *g)
{
	struct ctl_buf b = { 0 };
	struct ctl_json j;
	struct ctl_table t;
	static const char *const hdr[] = { "ID", "INITIATOR", "ISID", "TSIH", "TARGET", "REACTOR",
					   "PEER", "LOCAL", "DIGESTS", "MRDSL(T/I)", "BURST(F/M)",
					   "STATE" };
	char isid[20];

	if (cl->req.json) {
		cj_init(&j, &b);
		cj_obj(&j, NULL);
		cj_arr(&j, "sessions");
	} else {
		ctl_table_init(&t, 12, hdr);
	}
	for (unsigned i = 0; i < g->n; i++) {
		for (unsigned k = 0; k < g->part[i].nsess; k++) {
			const struct iscsi_session_info *s = &g->part[i].sess[k];
			const struct iscsi_params_info *p = &s->params;
			isid_text(s->isid, isid, sizeof(isid));
			if (!cl->req.json) {
				ctl_table_rowf(&t, "%" PRIu64 "\t%s\t%s\t%u\t%s\t%u\t%s\t%s\t%s/%s\t%u/%u\t%u/%u\t%s",
					       s->id, s->initiator, isid, s->tsih,
					       s->discovery ? "(discovery)" : s->target, s->reactor,
					       s->peer, s->local,
					       p->header_digest ? "CRC32C" : "None",
					       p->data_digest ? "CRC32C" : "None",
					       p->max_recv_dsl, p->max_xmit_dsl, p->first_burst,
					       p->max_burst, s->logging_out ? "logout" : "full");
				continue;
			}
			cj_obj(&j, NULL);
			cj_u64(&j, "id", s->id);
			cj_str(&j, "type", s->discovery ? "discovery" : "normal");
			cj_str(&j, "initiator", s->initiator);
			cj_str(&j, "isid", isid);
			cj_u64(&j, "tsih", s->tsih);
			cj_str(&j, "target", s->discovery ? NULL : s->target);
			cj_u64(&j, "reactor", s->reactor);
			cj_str(&j, "state", s->logging_out ? "logout" : "full");
			cj_arr(&j, "connections");
			cj_obj(&j, NULL);
			cj_u64(&j, "cid", s->cid);
			cj_str(&j, "peer", s->peer);
			cj_str(&j, "local", s->local);
			cj_u64(&j, "reactor", s->reactor);
			cj_obj(&j, "params");
			cj_str(&j, "header_digest", p->header_digest ? "CRC32C" : "None");
			cj_str(&j, "data_digest", p->data_digest ? "CRC32C" : "None");
			cj_u64(&j, "max_recv_data_segment_length", p->max_recv_dsl);
			cj_u64(&j, "max_xmit_data_segment_length", p->max_xmit_dsl);
			cj_u64(&j, "first_burst_length", p->first_burst);
			cj_u64(&j, "max_burst_length", p->max_burst);
			cj_u64(&j, "max_outstanding_r2t", p->max_outstanding_r2t);
			cj_bool(&j, "immediate_data", p->immediate_data);
			cj_bool(&j, "initial_r2t", p->initial_r2t);
			cj_u64(&j, "error_recovery_level", p->erl);
			cj_end_obj(&j);
			cj_obj(&j, "stats");
			json_io(&j, &s->io);
			cj_end_obj(&j);
			cj_end_obj(&j);
			cj_end_arr(&j);
			cj_end_obj(&j);
		}
	}
	if (cl->req.json) {
		cj_end_arr(&j);
		cj_end_obj(&j);
		ctl_buf_put(&b, "\n", 1);
	} else {
		table_out(&t, &b);
	}
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

/* ---- stats ---- */

struct lu_walk {
	struct ctl_json *j;
	struct ctl_table *t;
};

static void lu_stats_one(const struct ctl_lu_stats *ls, void *arg)
{
	struct lu_walk *w = arg;
	struct ctl_lu_sum sum;
	double p50, p99, p999;

	ctl_lu_stats_sum(ls, &sum);
	p50 = ctl_lat_percentile(sum.lat, CTL_LAT_BUCKETS, 0.50);
	p99 = ctl_lat_percentile(sum.lat, CTL_LAT_BUCKETS, 0.99);
	p999 = ctl_lat_percentile(sum.lat, CTL_LAT_BUCKETS, 0.999);
	if (w->t) {
		char rb[32], wb[32];
		ctl_human_bytes(sum.io.read_bytes, rb, sizeof(rb));
		ctl_human_bytes(sum.io.write_bytes, wb, sizeof(wb));
		ctl_table_rowf(w->t, "%s\t%u\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s\t%" PRIu64
			       "\t%.0f\t%.0f\t%.0f", ls->target, ls->lun, sum.io.read_ops,
			       sum.io.write_ops, rb, wb, sum.io.errors, p50, p99, p999);
		return;
	}
	struct ctl_json *j = w->j;
	cj_obj(j, NULL);
	cj_str(j, "target", ls->target);
	cj_u64(j, "lun", ls->lun);
	json_io(j, &sum.io);
	cj_obj(j, "latency_us");
	cj_u64(j, "count", sum.lat_count);
	cj_u64(j, "sum", sum.lat_sum_us);
	cj_dbl(j, "mean", sum.lat_count ? (double)sum.lat_sum_us / (double)sum.lat_count : 0);
	cj_dbl(j, "p50", p50);
	cj_dbl(j, "p99", p99);
	cj_dbl(j, "p999", p999);
	cj_arr(j, "buckets");
	for (unsigned b = 0; b < CTL_LAT_BUCKETS; b++) {
		if (!sum.lat[b])
			continue;
		cj_obj(j, NULL);
		uint64_t le = ctl_lat_bucket_le(b);
		if (le == UINT64_MAX)
			cj_str(j, "le", "+Inf");
		else
			cj_u64(j, "le", le);
		cj_u64(j, "count", sum.lat[b]);
		cj_end_obj(j);
	}
	cj_end_arr(j);
	cj_end_obj(j);
	cj_end_obj(j);
}

static void stats_cont(struct ctl_client *cl, struct ctl_gather *g)
{
	struct ctl_buf b = { 0 };

	if (cl->req.json) {
		struct ctl_json j;
		struct lu_walk w = { .j = &j };
		cj_init(&j, &b);
		cj_obj(&j, NULL);
		cj_arr(&j, "luns");
		ctl_lu_stats_each(lu_stats_one, &w);
		cj_end_arr(&j);
		cj_arr(&j, "connections");
		for (unsigned i = 0; i < g->n; i++) {
			for (unsigned k = 0; k < g->part[i].nsess; k++) {
				const struct iscsi_session_info *s = &g->part[i].sess[k];
				cj_obj(&j, NULL);
				cj_u64(&j, "session", s->id);
				cj_u64(&j, "cid", s->cid);
				cj_str(&j, "initiator", s->initiator);
				cj_str(&j, "target", s->discovery ? NULL : s->target);
				cj_str(&j, "peer", s->peer);
				cj_u64(&j, "reactor", s->reactor);
				json_io(&j, &s->io);
				cj_end_obj(&j);
			}
		}
		cj_end_arr(&j);
		cj_end_obj(&j);
		ctl_buf_put(&b, "\n", 1);
	} else {
		static const char *const lh[] = { "TARGET", "LUN", "READS", "WRITES", "READ_B",
						  "WRITE_B", "ERRORS", "P50_US", "P99_US", "P999_US" };
		static const char *const chh[] = { "SESSION", "PEER", "REACTOR", "READS", "WRITES",
						   "READ_B", "WRITE_B", "ERRORS", "TARGET" };
		struct ctl_table t;
		struct lu_walk w = { .t = &t };
		ctl_table_init(&t, 10, lh);
		ctl_lu_stats_each(lu_stats_one, &w);
		table_out(&t, &b);
		ctl_buf_put(&b, "\n", 1);
		ctl_table_init(&t, 9, chh);
		for (unsigned i = 0; i < g->n; i++) {
			for (unsigned k = 0; k < g->part[i].nsess; k++) {
				const struct iscsi_session_info *s = &g->part[i].sess[k];
				char rb[32], wb[32];
				ctl_human_bytes(s->io.read_bytes, rb, sizeof(rb));
				ctl_human_bytes(s->io.write_bytes, wb, sizeof(wb));
				ctl_table_rowf(&t, "%" PRIu64 "\t%s\t%u\t%" PRIu64 "\t%" PRIu64
					       "\t%s\t%s\t%" PRIu64 "\t%s", s->id, s->peer, s->reactor,
					       s->io.read_ops, s->io.write_ops, rb, wb, s->io.errors,
					       s->discovery ? "(discovery)" : s->target);
			}
		}
		table_out(&t, &b);
	}
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

/* ---- pool ---- */

uint64_t ctl_part_bytes_in_use(const struct ctl_part *p)
{
	uint64_t slab_bytes = 0, objs = 0;

	if (!p->have_pool)
		return 0;
	for (unsigned k = 0; k < p->ncaches; k++) {
		slab_bytes += p->caches[k].st.slab_bytes;
		objs += p->caches[k].st.bytes_in_use;
	}
	/* raw page blocks handed out, plus the objects handed out of slabs */
	uint64_t raw = p->pool.page_bytes_in_use > slab_bytes ?
		       p->pool.page_bytes_in_use - slab_bytes : 0;
	return raw + objs;
}

static void pool_cont(struct ctl_client *cl, struct ctl_gather *g)
{
	struct ctl_buf b = { 0 };
	uint64_t total = 0;

	for (unsigned i = 0; i < g->n; i++)
		total += ctl_part_bytes_in_use(&g->part[i]);
	if (cl->req.json) {
		struct ctl_json j;
		cj_init(&j, &b);
		cj_obj(&j, NULL);
		cj_u64(&j, "bytes_in_use", total);
		cj_arr(&j, "reactors");
		for (unsigned i = 0; i < g->n; i++) {
			const struct ctl_part *p = &g->part[i];
			if (!p->have_pool)
				continue;
			cj_obj(&j, NULL);
			cj_u64(&j, "reactor", i);
			cj_u64(&j, "chunks", p->pool.chunks);
			cj_u64(&j, "hugepage_chunks", p->pool.hugepage_chunks);
			cj_bool(&j, "hugepages", p->pool.chunks && p->pool.hugepage_chunks == p->pool.chunks);
			cj_u64(&j, "mapped_bytes", p->pool.mapped_bytes);
			cj_u64(&j, "limit", p->pool.limit);
			cj_u64(&j, "bytes_in_use", ctl_part_bytes_in_use(p));
			cj_u64(&j, "page_bytes_in_use", p->pool.page_bytes_in_use);
			cj_u64(&j, "page_high_water", p->pool.page_high_water);
			cj_u64(&j, "page_cached_bytes", p->pool.page_cached_bytes);
			cj_u64(&j, "page_allocs", p->pool.page_allocs);
			cj_u64(&j, "failed_allocs", p->pool.failed_allocs);
			cj_arr(&j, "caches");
			for (unsigned k = 0; k < p->ncaches; k++) {
				const struct ctl_cache *c = &p->caches[k];
				cj_obj(&j, NULL);
				cj_str(&j, "name", c->name);
				cj_u64(&j, "obj_size", c->st.obj_size);
				cj_u64(&j, "in_use", c->st.in_use);
				cj_u64(&j, "bytes_in_use", c->st.bytes_in_use);
				cj_u64(&j, "high_water", c->st.high_water);
				cj_u64(&j, "slabs", c->st.slabs);
				cj_u64(&j, "slab_bytes", c->st.slab_bytes);
				cj_u64(&j, "allocs", c->st.allocs);
				cj_u64(&j, "failed", c->st.failed);
				cj_u64(&j, "cached", c->st.cached);
				cj_end_obj(&j);
			}
			cj_end_arr(&j);
			cj_end_obj(&j);
		}
		cj_end_arr(&j);
		cj_end_obj(&j);
		ctl_buf_put(&b, "\n", 1);
	} else {
		static const char *const ph[] = { "REACTOR", "CHUNKS", "HUGEPAGES", "MAPPED",
						  "IN_USE", "PAGES_IN_USE", "HIGH_WATER", "FAILED" };
		static const char *const chh[] = { "REACTOR", "CACHE", "OBJ_SIZE", "IN_USE", "BYTES",
						   "HIGH_WATER", "SLABS", "FAILED" };
		struct ctl_table t;
		char m[32], u[32], pu[32], hw[32];
		ctl_table_init(&t, 8, ph);
		for (unsigned i = 0; i < g->n; i++) {
			const struct ctl_part *p = &g->part[i];
			if (!p->have_pool)
				continue;
			ctl_human_bytes(p->pool.mapped_bytes, m, sizeof(m));
			ctl_human_bytes(ctl_part_bytes_in_use(p), u, sizeof(u));
			ctl_human_bytes(p->pool.page_bytes_in_use, pu, sizeof(pu));
			ctl_human_bytes(p->pool.page_high_water, hw, sizeof(hw));
			ctl_table_rowf(&t, "%u\t%zu\t%s\t%s\t%s\t%s\t%s\t%" PRIu64, i, p->pool.chunks,
				       p->pool.chunks && p->pool.hugepage_chunks == p->pool.chunks ?
				       "yes" : p->pool.hugepage_chunks ? "partly" : "no",
				       m, u, pu, hw, p->pool.failed_allocs);
		}
		table_out(&t, &b);
		ctl_buf_printf(&b, "total bytes in use: %" PRIu64 "\n\n", total);
		ctl_table_init(&t, 8, chh);
		for (unsigned i = 0; i < g->n; i++) {
			const struct ctl_part *p = &g->part[i];
			for (unsigned k = 0; k < p->ncaches; k++) {
				const struct ctl_cache *c = &p->caches[k];
				ctl_table_rowf(&t, "%u\t%s\t%zu\t%zu\t%zu\t%zu\t%zu\t%" PRIu64, i, c->name,
					       c->st.obj_size, c->st.in_use, c->st.bytes_in_use,
					       c->st.high_water, c->st.slabs, c->st.failed);
			}
		}
		table_out(&t, &b);
	}
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

/* ---- configuration changes ---- */

static struct config *running_copy(struct ctl_client *cl)
{
	char err[512];
	struct config *c = NULL;

	if (conf_dup(ctl_hooks->config(), &c, err, sizeof(err))) {
		ctl_reply_err(cl, "cannot copy the running configuration: %s", err);
		return NULL;
	}
	return c;
}

/* Validates the edited model and applies it as a reload would. */
static void commit(struct ctl_client *cl, struct config *edited, const char *target,
		   unsigned check_lun, const char *done)
{
	struct config *v = NULL;
	char err[512];
	int rc = conf_dup(edited, &v, err, sizeof(err));

	conf_free(edited);
	if (rc) {
		ctl_reply_err(cl, "%s", err);
		return;
	}
	if (check_lun && ctl_hooks->check_lun(v, target, check_lun, err, sizeof(err))) {
		conf_free(v);
		ctl_reply_err(cl, "%s", err);
		return;
	}
	if (ctl_hooks->apply(v, err, sizeof(err))) {
		ctl_reply_err(cl, "%s", err);
		return;
	}
	struct ctl_buf b = { 0 };
	ctl_buf_printf(&b, "%s\n", done);
	if (cl->req.json) {
		ctl_buf_free(&b);
		struct ctl_json j;
		cj_init(&j, &b);
		cj_obj(&j, NULL);
		cj_str(&j, "result", done);
		cj_end_obj(&j);
		ctl_buf_put(&b, "\n", 1);
	}
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

static const char *edit_error(int rc)
{
	return rc == -ENOENT ? "not found" : rc == -EEXIST ? "already exists" :
	       rc == -EINVAL ? "invalid" : strerror(-rc);
}

static void target_add(struct ctl_client *cl)
{
	const struct ctl_req *r = &cl->req;
	static const char *const known[] = { NULL };
	const char *bad = check_opts(r, 3, known);
	char msg[300];

	if (r->n < 3 || bad) {
		ctl_reply_err(cl, "usage: target add IQN");
		return;
	}
	struct config *c = running_copy(cl);
	if (!c)
		return;
	int rc = conf_edit_target_add(c, r->w[2]);
	if (rc) {
		conf_free(c);
		ctl_reply_err(cl, "target %s: %s", r->w[2], rc == -EINVAL ?
			      "not a valid iSCSI name" : edit_error(rc));
		return;
	}
	snprintf(msg, sizeof(msg), "target %s added", r->w[2]);
	commit(cl, c, NULL, 0, msg);
}

static void target_del_cont(struct ctl_client *cl, struct ctl_gather *g)
{
	const struct ctl_req *r = &cl->req;
	bool force = opt_flag(r, 3, "--force");
	unsigned n = g ? sessions_of(g, r->w[2]) : 0;
	char msg[300];

	if (n && !force) {
		ctl_reply_err(cl, "target %s has %u session%s; use --force to remove it anyway",
			      r->w[2], n, n == 1 ? "" : "s");
		return;
	}
	struct config *c = running_copy(cl);
	if (!c)
		return;
	int rc = conf_edit_target_del(c, r->w[2]);
	if (rc) {
		conf_free(c);
		ctl_reply_err(cl, "target %s: %s", r->w[2], edit_error(rc));
		return;
	}
	snprintf(msg, sizeof(msg), "target %s removed%s", r->w[2],
		 n ? " (its sessions are dropped)" : "");
	commit(cl, c, NULL, 0, msg);
}

static void target_del(struct ctl_client *cl)
{
	static const char *const known[] = { "--force", NULL };

	if (cl->req.n < 3 || check_opts(&cl->req, 3, known)) {
		ctl_reply_err(cl, "usage: target del IQN [--force]");
		return;
	}
	if (!conf_find_target(ctl_hooks->config(), cl->req.w[2])) {
		ctl_reply_err(cl, "target %s: not found", cl->req.w[2]);
		return;
	}
	ctl_gather(cl, target_del_cont);
}

static void lun_add(struct ctl_client *cl)
{
	const struct ctl_req *r = &cl->req;
	static const char *const known[] = { "--type=", "--size=", NULL };
	bool bad = false;
	const char *type = opt_value(r, 5, "--type", &bad);
	const char *size = opt_value(r, 5, "--size", &bad);
	uint64_t lun;
	struct conf_lun l;
	char msg[300];

	if (r->n < 5 || bad || check_opts(r, 5, known)) {
		ctl_reply_err(cl, "usage: lun add IQN LUN BACKING [--type ram|uring|nvme] [--size N]");
		return;
	}
	if (!parse_u64(r->w[3], 16383, &lun) || lun == 0) {
		ctl_reply_err(cl, "bad LUN '%s' (expected 1..16383)", r->w[3]);
		return;
	}
	conf_lun_defaults(&l);
	l.lun = (unsigned)lun;
	const char *backing = r->w[4];
	bool ram_prefix = strncmp(backing, "ram:", 4) == 0;
	l.bs_type = ram_prefix ? BS_RAM : BS_URING;
	if (type) {
		if (strcasecmp(type, "ram") == 0)
			l.bs_type = BS_RAM;
		else if (strcasecmp(type, "uring") == 0)
			l.bs_type = BS_URING;
		else if (strcasecmp(type, "nvme") == 0)
			l.bs_type = BS_NVME;
		else {
			ctl_reply_err(cl, "bad --type '%s' (expected ram, uring or nvme)", type);
			return;
		}
		if (ram_prefix && l.bs_type != BS_RAM) {
			ctl_reply_err(cl, "--type %s contradicts the RAM backing store '%s'", type,
				      backing);
			return;
		}
	}
	if (size && (conf_parse_size(size, &l.size) || l.size == 0)) {
		ctl_reply_err(cl, "bad --size '%s' (expected bytes with an optional K/M/G/T suffix)",
			      size);
		return;
	}
	if (l.bs_type == BS_RAM && !l.size) {
		ctl_reply_err(cl, "a RAM LUN needs --size");
		return;
	}
	char *path = (char *)(ram_prefix ? backing + 4 : backing);
	l.path = *path ? path : NULL;
	struct config *c = running_copy(cl);
	if (!c)
		return;
	int rc = conf_edit_lun_add(c, r->w[2], &l);
	if (rc) {
		conf_free(c);
		ctl_reply_err(cl, "target %s LUN %u: %s", r->w[2], l.lun,
			      rc == -ENOENT ? "no such target" : edit_error(rc));
		return;
	}
	snprintf(msg, sizeof(msg), "target %s LUN %u added", r->w[2], l.lun);
	commit(cl, c, r->w[2], l.bs_type == BS_RAM ? 0 : l.lun, msg);
}

static void lun_del(struct ctl_client *cl)
{
	const struct ctl_req *r = &cl->req;
	uint64_t lun;
	char msg[300];

	if (r->n != 4 || !parse_u64(r->w[3], 16383, &lun)) {
		ctl_reply_err(cl, "usage: lun del IQN LUN");
		return;
	}
	struct config *c = running_copy(cl);
	if (!c)
		return;
	int rc = conf_edit_lun_del(c, r->w[2], (unsigned)lun);
	if (rc) {
		conf_free(c);
		ctl_reply_err(cl, "target %s LUN %" PRIu64 ": %s", r->w[2], lun, edit_error(rc));
		return;
	}
	snprintf(msg, sizeof(msg), "target %s LUN %" PRIu64 " removed", r->w[2], lun);
	commit(cl, c, NULL, 0, msg);
}

static void acl_edit(struct ctl_client *cl, bool add)
{
	const struct ctl_req *r = &cl->req;
	char msg[600];

	if (r->n != 4) {
		ctl_reply_err(cl, "usage: acl %s IQN INITIATOR-IQN|ADDR[/PREFIX]", add ? "add" : "del");
		return;
	}
	struct config *c = running_copy(cl);
	if (!c)
		return;
	int rc = conf_edit_acl(c, r->w[2], r->w[3], add);
	if (rc) {
		conf_free(c);
		if (rc == -ENOENT && !conf_find_target(ctl_hooks->config(), r->w[2]))
			ctl_reply_err(cl, "target %s: not found", r->w[2]);
		else
			ctl_reply_err(cl, "acl entry '%s' on %s: %s", r->w[3], r->w[2],
				      rc == -EINVAL ? "not an initiator name nor an address pattern" :
				      edit_error(rc));
		return;
	}
	snprintf(msg, sizeof(msg), "target %s: %s %s", r->w[2], r->w[3],
		 add ? "allowed" : "no longer listed");
	commit(cl, c, NULL, 0, msg);
}

/* ---- logout, reload, save ---- */

static void logout_cont(struct ctl_client *cl, struct ctl_gather *g)
{
	const struct ctl_req *r = &cl->req;
	bool now = opt_flag(r, 2, "--now"), bad = false;
	const char *tmo = opt_value(r, 2, "--timeout", &bad);
	uint64_t id = 0, secs = LOGOUT_DEFAULT_SECS;
	char msg[400];

	parse_u64(r->w[1], UINT64_MAX, &id);
	if (tmo)
		parse_u64(tmo, 3600, &secs);
	for (unsigned i = 0; i < g->n; i++) {
		for (unsigned k = 0; k < g->part[i].nsess; k++) {
			const struct iscsi_session_info *s = &g->part[i].sess[k];
			if (s->id != id)
				continue;
			iscsi_session_logout_on(s->reactor, s->id, now, (unsigned)secs);
			if (now)
				snprintf(msg, sizeof(msg), "session %" PRIu64 " (%s) on reactor %u dropped",
					 id, s->initiator, s->reactor);
			else
				snprintf(msg, sizeof(msg), "session %" PRIu64 " (%s) on reactor %u asked "
					 "to log out within %" PRIu64 " s", id, s->initiator,
					 s->reactor, secs);
			struct ctl_buf b = { 0 };
			ctl_buf_printf(&b, "%s\n", msg);
			ctl_reply_ok(cl, &b);
			ctl_buf_free(&b);
			return;
		}
	}
	ctl_reply_err(cl, "no session %s (see show sessions)", r->w[1]);
}

static void logout(struct ctl_client *cl)
{
	const struct ctl_req *r = &cl->req;
	static const char *const known[] = { "--now", "--timeout=", NULL };
	bool bad = false;
	const char *tmo = opt_value(r, 2, "--timeout", &bad);
	uint64_t v;

	if (r->n < 2 || bad || check_opts(r, 2, known) || !parse_u64(r->w[1], UINT64_MAX, &v) ||
	    (tmo && !parse_u64(tmo, 3600, &v))) {
		ctl_reply_err(cl, "usage: logout SESSION-ID [--now] [--timeout SECONDS]");
		return;
	}
	ctl_gather(cl, logout_cont);
}

static void reload(struct ctl_client *cl)
{
	char err[512];

	if (ctl_hooks->reload(err, sizeof(err))) {
		ctl_reply_err(cl, "reload failed (the running configuration stays): %s", err);
		return;
	}
	struct ctl_buf b = { 0 };
	ctl_buf_printf(&b, "reloaded %s\n", ctl_hooks->config()->path);
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

static int write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	char tmp[4200];
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
	}
	if (rc == 0 && fsync(fd))
		rc = -errno;
	if (close(fd) && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static int read_whole(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	struct ctl_buf b = { 0 };
	char chunk[8192];
	size_t n;

	if (!f)
		return -errno;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ctl_buf_put(&b, chunk, n);
	bool err = ferror(f);
	fclose(f);
	if (err || b.oom) {
		ctl_buf_free(&b);
		return err ? -EIO : -ENOMEM;
	}
	*out = b.s ? b.s : strdup("");
	*len = b.len;
	return *out ? 0 : -ENOMEM;
}

static void save(struct ctl_client *cl)
{
	const struct config *c = ctl_hooks->config();
	char *text = NULL, *old = NULL, bak[4200];
	size_t oldlen = 0;
	mode_t mode = 0600;
	struct stat st;
	int rc;

	if (!c->path) {
		ctl_reply_err(cl, "lichd has no configuration file to save to");
		return;
	}
	rc = conf_format(c, &text);
	if (rc) {
		ctl_reply_err(cl, "cannot write the configuration: %s", rc == -EINVAL ?
			      "a value holds a '\"'" : strerror(-rc));
		return;
	}
	if (stat(c->path, &st) == 0) {
		mode = st.st_mode & 0777;
		rc = read_whole(c->path, &old, &oldlen);
		snprintf(bak, sizeof(bak), "%s.bak", c->path);
		if (rc == 0)
			rc = write_file(bak, old, oldlen, mode);
		free(old);
		if (rc) {
			free(text);
			ctl_reply_err(cl, "cannot keep a copy in %s: %s", bak, strerror(-rc));
			return;
		}
	}
	rc = write_file(c->path, text, strlen(text), mode);
	free(text);
	if (rc) {
		ctl_reply_err(cl, "cannot write %s: %s", c->path, strerror(-rc));
		return;
	}
	log_info("ctl: configuration saved to %s", c->path);
	struct ctl_buf b = { 0 };
	ctl_buf_printf(&b, "saved %s (previous version in %s.bak)\n", c->path, c->path);
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

static void help(struct ctl_client *cl)
{
	struct ctl_buf b = { 0 };

	ctl_buf_printf(&b,
		"show targets | show luns | show portals | show sessions\n"
		"stats | pool\n"
		"target add IQN | target del IQN [--force]\n"
		"lun add IQN LUN BACKING [--type ram|uring|nvme] [--size N] | lun del IQN LUN\n"
		"acl add IQN INITIATOR-IQN|ADDR[/PREFIX] | acl del IQN INITIATOR-IQN|ADDR[/PREFIX]\n"
		"logout SESSION-ID [--now] [--timeout SECONDS]\n"
		"reload | save\n");
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

void ctl_dispatch(struct ctl_client *cl)
{
	const struct ctl_req *r = &cl->req;
	const char *v = r->w[0], *o = r->n > 1 ? r->w[1] : "";
	bool one = r->n == 1, two = r->n == 2;

	if (strcmp(v, "show") == 0 && two && strcmp(o, "targets") == 0)
		ctl_gather(cl, show_targets);
	else if (strcmp(v, "show") == 0 && two && strcmp(o, "luns") == 0)
		show_luns(cl);
	else if (strcmp(v, "show") == 0 && two && strcmp(o, "portals") == 0)
		show_portals(cl);
	else if (strcmp(v, "show") == 0 && two && strcmp(o, "sessions") == 0)
		ctl_gather(cl, show_sessions);
	else if (strcmp(v, "stats") == 0 && one)
		ctl_gather(cl, stats_cont);
	else if (strcmp(v, "pool") == 0 && one)
		ctl_gather(cl, pool_cont);
	else if (strcmp(v, "target") == 0 && strcmp(o, "add") == 0)
		target_add(cl);
	else if (strcmp(v, "target") == 0 && strcmp(o, "del") == 0)
		target_del(cl);
	else if (strcmp(v, "lun") == 0 && strcmp(o, "add") == 0)
		lun_add(cl);
	else if (strcmp(v, "lun") == 0 && strcmp(o, "del") == 0)
		lun_del(cl);
	else if (strcmp(v, "acl") == 0 && strcmp(o, "add") == 0)
		acl_edit(cl, true);
	else if (strcmp(v, "acl") == 0 && strcmp(o, "del") == 0)
		acl_edit(cl, false);
	else if (strcmp(v, "logout") == 0)
		logout(cl);
	else if (strcmp(v, "reload") == 0 && one)
		reload(cl);
	else if (strcmp(v, "save") == 0 && one)
		save(cl);
	else if (strcmp(v, "help") == 0 && one)
		help(cl);
	else
		ctl_reply_err(cl, "unknown command '%s%s%s' (try: lichctl help)", v, r->n > 1 ? " " : "",
			      o);
}
