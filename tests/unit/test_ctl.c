/* test_ctl.c — lichctl's pieces without sockets: request parsing (text and
 * JSON), the JSON writer, text tables, latency buckets and percentiles, the
 * per-LU counter registry, and the config writer / editor that runtime
 * changes and "save" go through (conf_format, conf_dup, conf_edit_*). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "ctl/proto.h"
#include "ctl/stats.h"
#include "../../src/ctl/ctl_int.h"

/* ---- requests ---- */

static void test_req_text(void **state)
{
	struct ctl_req r;
	char err[100];
	const char *line = "lun add \"iqn.x:a b\"  2 /tmp/x.img --json --size 64M\n";

	(void)state;
	assert_int_equal(ctl_req_parse(line, strlen(line), &r, err, sizeof(err)), 0);
	assert_true(r.json);
	assert_int_equal(r.n, 7);
	assert_string_equal(r.w[0], "lun");
	assert_string_equal(r.w[2], "iqn.x:a b");
	assert_string_equal(r.w[3], "2");
	assert_string_equal(r.w[5], "--size");
	assert_string_equal(r.w[6], "64M");
	ctl_req_free(&r);
}

static void test_req_json(void **state)
{
	struct ctl_req r;
	char err[100];
	const char *line = " [\"show\", \"sessions\",\"--json\", \"a\\\"b\\\\c\\u0041\\n\"] \n";

	(void)state;
	assert_int_equal(ctl_req_parse(line, strlen(line), &r, err, sizeof(err)), 0);
	assert_true(r.json);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.w[0], "show");
	assert_string_equal(r.w[1], "sessions");
	assert_string_equal(r.w[2], "a\"b\\cA\n");
	ctl_req_free(&r);
}

static void test_req_errors(void **state)
{
	static const char *const bad[] = {
		"", "   ", "--json", "[]", "[\"a\"", "[\"a\",]", "[\"a\" \"b\"]", "[1]",
		"[\"a\\x\"]", "[\"a\\u00e9\"]", "[\"a\\u0000\"]", "[\"a\"] junk", "say \"hi",
		"say \"hi\"there", "two\nlines", "[\"a\\u12\"]",
	};
	struct ctl_req r;
	char err[100];
	char many[400] = "";

	(void)state;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_not_equal(ctl_req_parse(bad[i], strlen(bad[i]), &r, err, sizeof(err)), 0);
		assert_true(err[0] != '\0');
	}
	for (int i = 0; i < CTL_WORDS_MAX + 1; i++)
		strcat(many, "w ");
	assert_int_equal(ctl_req_parse(many, strlen(many), &r, err, sizeof(err)), -E2BIG);
}

/* ---- JSON writer ---- */

static void test_json_writer(void **state)
{
	struct ctl_buf b = { 0 };
	struct ctl_json j;

	(void)state;
	cj_init(&j, &b);
	cj_obj(&j, NULL);
	cj_u64(&j, "n", 18446744073709551615ull);
	cj_str(&j, "s", "q\"\\\x01");
	cj_str(&j, "null", NULL);
	cj_arr(&j, "a");
	cj_u64(&j, NULL, 1);
	cj_obj(&j, NULL);
	cj_bool(&j, "t", true);
	cj_end_obj(&j);
	cj_arr(&j, NULL);
	cj_end_arr(&j);
	cj_end_arr(&j);
	cj_dbl(&j, "d", 1.5);
	cj_end_obj(&j);
	assert_false(b.oom);
	assert_string_equal(b.s, "{\"n\":18446744073709551615,\"s\":\"q\\\"\\\\\\u0001\","
			    "\"null\":null,\"a\":[1,{\"t\":true},[]],\"d\":1.500}");
	ctl_buf_free(&b);
}

/* ---- tables ---- */

static void test_table(void **state)
{
	static const char *const hdr[] = { "A", "LONGER", "C" };
	struct ctl_table t;
	struct ctl_buf b = { 0 };

	(void)state;
	ctl_table_init(&t, 3, hdr);
	ctl_table_rowf(&t, "%s\t%d\t%s", "xyz", 5, "end");
	ctl_table_rowf(&t, "%s\t%s\t%s", "1", "22", "");
	ctl_table_render(&t, &b);
	assert_string_equal(b.s, "A    LONGER  C\n"
				 "xyz  5       end\n"
				 "1    22\n");
	ctl_table_free(&t);
	ctl_buf_free(&b);
}

static void test_human_bytes(void **state)
{
	char s[32];

	(void)state;
	ctl_human_bytes(0, s, sizeof(s));
	assert_string_equal(s, "0");
	ctl_human_bytes(1023, s, sizeof(s));
	assert_string_equal(s, "1023");
	ctl_human_bytes(1536, s, sizeof(s));
	assert_string_equal(s, "1.5K");
	ctl_human_bytes(64ull << 20, s, sizeof(s));
	assert_string_equal(s, "64.0M");
	ctl_human_bytes(3ull << 40, s, sizeof(s));
	assert_string_equal(s, "3.0T");
}

/* ---- latency ---- */

static void test_buckets(void **state)
{
	(void)state;
	assert_int_equal(ctl_lat_bucket(0), 0);
	assert_int_equal(ctl_lat_bucket(1), 1);     /* [1, 2) */
	assert_int_equal(ctl_lat_bucket(2), 2);     /* [2, 4) */
	assert_int_equal(ctl_lat_bucket(3), 2);
	assert_int_equal(ctl_lat_bucket(4), 3);
	assert_int_equal(ctl_lat_bucket(1000), 10); /* [512, 1024) */
	assert_int_equal(ctl_lat_bucket((1u << 24) - 1), 24);
	assert_int_equal(ctl_lat_bucket(1u << 24), CTL_LAT_BUCKETS - 1);
	assert_int_equal(ctl_lat_bucket(UINT64_MAX), CTL_LAT_BUCKETS - 1);
	assert_int_equal(ctl_lat_bucket_le(0), 1);
	assert_int_equal(ctl_lat_bucket_le(10), 1024);
	assert_true(ctl_lat_bucket_le(CTL_LAT_BUCKETS - 1) == UINT64_MAX);
	/* every value lies below its bucket's upper bound and at or above the previous */
	for (uint64_t v = 0; v < 5000000; v = v * 3 + 1) {
		unsigned b = ctl_lat_bucket(v);
		assert_true(v < ctl_lat_bucket_le(b));
		if (b)
			assert_true(v >= ctl_lat_bucket_le(b - 1));
	}
}

static void test_percentiles(void **state)
{
	uint64_t h[CTL_LAT_BUCKETS] = { 0 };

	(void)state;
	assert_true(ctl_lat_percentile(h, CTL_LAT_BUCKETS, 0.5) == 0);
	/* 100 samples in [64, 128) */
	h[7] = 100;
	assert_true(ctl_lat_percentile(h, CTL_LAT_BUCKETS, 0.5) == 96.0);
	assert_true(ctl_lat_percentile(h, CTL_LAT_BUCKETS, 1.0) == 128.0);
	/* 990 fast ones in [8, 16), 9 in [1024, 2048), 1 at >= 2^24 us */
	memset(h, 0, sizeof(h));
	h[4] = 990;
	h[11] = 9;
	h[CTL_LAT_BUCKETS - 1] = 1;
	double p50 = ctl_lat_percentile(h, CTL_LAT_BUCKETS, 0.50);
	double p99 = ctl_lat_percentile(h, CTL_LAT_BUCKETS, 0.99);
	double p999 = ctl_lat_percentile(h, CTL_LAT_BUCKETS, 0.999);
	double pmax = ctl_lat_percentile(h, CTL_LAT_BUCKETS, 1.0);
	assert_true(p50 >= 8 && p50 < 16);
	assert_true(p99 >= 8 && p99 <= 16);
	assert_true(p999 >= 1024 && p999 <= 2048);
	assert_true(pmax == (double)(1u << 24));   /* open bucket: its lower bound */
	assert_true(p50 <= p99 && p99 <= p999 && p999 <= pmax);
}

static void test_cdb_kind(void **state)
{
	(void)state;
	assert_int_equal(ctl_cdb_kind(0x28), CTL_IO_READ);
	assert_int_equal(ctl_cdb_kind(0x88), CTL_IO_READ);
	assert_int_equal(ctl_cdb_kind(0x2a), CTL_IO_WRITE);
	assert_int_equal(ctl_cdb_kind(0x8a), CTL_IO_WRITE);
	assert_int_equal(ctl_cdb_kind(0x89), CTL_IO_WRITE);
	assert_int_equal(ctl_cdb_kind(0x00), CTL_IO_OTHER);
	assert_int_equal(ctl_cdb_kind(0x12), CTL_IO_OTHER);
}

/* ---- LU counter registry ---- */

struct seen { unsigned n; unsigned luns[8]; };

static void collect(const struct ctl_lu_stats *s, void *arg)
{
	struct seen *w = arg;

	if (w->n < 8)
		w->luns[w->n] = s->lun;
	w->n++;
}

static void test_lu_stats(void **state)
{
	struct ctl_lu_sum sum;
	struct seen w = { 0 };

	(void)state;
	ctl_stats_init(3);
	struct ctl_lu_stats *a = ctl_lu_stats_get("iqn.x:t", 1);
	struct ctl_lu_stats *b = ctl_lu_stats_get("iqn.x:t", 2);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->nreactors, 3);
	assert_true(((uintptr_t)&a->per[1] & 63) == 0);
	ctl_lu_count(a, 0, CTL_IO_READ, 4096, false, 10);
	ctl_lu_count(a, 1, CTL_IO_READ, 8192, false, 100);
	ctl_lu_count(a, 2, CTL_IO_WRITE, 512, true, 1000);
	ctl_lu_count(a, 2, CTL_IO_OTHER, 0, false, 0);
	ctl_lu_count(a, 7, CTL_IO_READ, 1, false, 1);   /* no such reactor: ignored */
	ctl_lu_stats_sum(a, &sum);
	assert_int_equal(sum.io.read_ops, 2);
	assert_int_equal(sum.io.read_bytes, 12288);
	assert_int_equal(sum.io.write_ops, 1);
	assert_int_equal(sum.io.write_bytes, 512);
	assert_int_equal(sum.io.other_ops, 1);
	assert_int_equal(sum.io.errors, 1);
	assert_int_equal(sum.lat_count, 4);
	assert_int_equal(sum.lat_sum_us, 1110);
	assert_int_equal(sum.lat[ctl_lat_bucket(100)], 1);

	ctl_lu_stats_each(collect, &w);
	assert_int_equal(w.n, 2);
	/* a retired block is not listed, and a new LU with its name takes it over */
	ctl_lu_stats_retire_lun("iqn.x:t", 1);
	w.n = 0;
	ctl_lu_stats_each(collect, &w);
	assert_int_equal(w.n, 1);
	assert_int_equal(w.luns[0], 2);
	assert_ptr_equal(ctl_lu_stats_get("iqn.x:t", 1), a);
	ctl_lu_stats_sum(a, &sum);
	assert_int_equal(sum.io.read_ops, 2);
	ctl_lu_stats_retire_lun("iqn.x:t", -1);
	w.n = 0;
	ctl_lu_stats_each(collect, &w);
	assert_int_equal(w.n, 0);
	ctl_lu_stats_retire(NULL);
	ctl_stats_fini();
}

/* ---- config writer and edits ---- */

static const char full_conf[] =
	"portal 127.0.0.1:3261\n"
	"portal [::1]:3262\n"
	"cores 0-1\n"
	"memory-limit 512M\n"
	"poll-mode busy\n"
	"log-level debug\n"
	"state-dir \"/var/lib/lich state\"\n"
	"nop-interval 7\n"
	"nop-timeout 9\n"
	"control-socket /tmp/x/lichd.sock\n"
	"metrics 127.0.0.1:9100\n"
	"incomingdiscoveryuser disc secretsecret12\n"
	"<target iqn.2026-11.org.lich:a>\n"
	"  backing-store /tmp/a.img\n"
	"  <backing-store ram:r1>\n"
	"    size 8M\n"
	"    lun 7\n"
	"    vendor_id \"AC ME\"\n"
	"    readonly on\n"
	"    write-cache off\n"
	"    block-size 4096\n"
	"    scsi_sn SN#1\n"
	"  </backing-store>\n"
	"  initiator-address 10.0.0.0/8\n"
	"  initiator-name iqn.2026-11.org.lich:i\n"
	"  incominguser u1 \"pass word 123\"\n"
	"  outgoinguser out outsecret1234\n"
	"</target>\n"
	"<target iqn.2026-11.org.lich:b>\n"
	"</target>\n";

static struct config *parse(const char *text)
{
	struct config *c = NULL;
	char err[512] = "";

	if (conf_parse_string(text, "t.conf", &c, err, sizeof(err)))
		fail_msg("parse: %s", err);
	return c;
}

static void assert_same_lun(const struct conf_lun *a, const struct conf_lun *b)
{
	assert_int_equal(a->lun, b->lun);
	assert_int_equal(a->bs_type, b->bs_type);
	assert_true(a->size == b->size);
	assert_int_equal(a->block_size, b->block_size);
	assert_int_equal(a->readonly, b->readonly);
	assert_int_equal(a->write_cache, b->write_cache);
	assert_string_equal(a->path ? a->path : "", b->path ? b->path : "");
	assert_string_equal(a->vendor_id, b->vendor_id);
	assert_string_equal(a->product_id, b->product_id);
	assert_string_equal(a->scsi_sn, b->scsi_sn);
}

static void test_format_roundtrip(void **state)
{
	struct config *c = parse(full_conf), *d = NULL;
	char err[512];

	(void)state;
	assert_int_equal(conf_dup(c, &d, err, sizeof(err)), 0);
	assert_string_equal(d->path, "t.conf");     /* the copy stands for the same file */
	assert_int_equal(d->nportals, 2);
	assert_int_equal(d->portals[1].family, c->portals[1].family);
	assert_int_equal(d->portals[1].port, 3262);
	assert_int_equal(d->ncores, 2);
	assert_true(d->memory_limit == (size_t)512 << 20);
	assert_int_equal(d->poll_mode, POLL_BUSY);
	assert_true(d->log_level_set);
	assert_int_equal(d->log_level, LOG_LVL_DEBUG);
	assert_string_equal(d->state_dir, "/var/lib/lich state");
	assert_int_equal(d->nop_interval, 7);
	assert_int_equal(d->nop_timeout, 9);
	assert_string_equal(d->control_socket, "/tmp/x/lichd.sock");
	assert_true(d->has_metrics);
	assert_int_equal(d->metrics.port, 9100);
	assert_int_equal(d->n_discovery_incoming, 1);
	assert_string_equal(d->discovery_incoming[0].secret, "secretsecret12");
	assert_int_equal(d->ntargets, 2);
	const struct conf_target *ta = &c->targets[0], *tb = &d->targets[0];
	assert_string_equal(tb->name, ta->name);
	assert_int_equal(tb->nluns, 2);
	for (unsigned i = 0; i < 2; i++)
		assert_same_lun(&ta->luns[i], &tb->luns[i]);
	assert_string_equal(tb->luns[1].vendor_id, "AC ME");
	assert_string_equal(tb->luns[1].scsi_sn, "SN#1");
	assert_string_equal(tb->initiator_addresses[0], "10.0.0.0/8");
	assert_string_equal(tb->initiator_names[0], "iqn.2026-11.org.lich:i");
	assert_string_equal(tb->incoming[0].secret, "pass word 123");
	assert_string_equal(tb->outgoing->user, "out");
	assert_int_equal(d->targets[1].nluns, 0);
	/* and once more: the text is stable */
	char *t1, *t2;
	assert_int_equal(conf_format(c, &t1), 0);
	assert_int_equal(conf_format(d, &t2), 0);
	assert_string_equal(t1, t2);
	free(t1);
	free(t2);
	conf_free(c);
	conf_free(d);
}

static void test_defaults_roundtrip(void **state)
{
	struct config *c = parse("<target iqn.2026-11.org.lich:a>\nbacking-store /x\n</target>\n");
	struct config *d = NULL;
	char err[512];

	(void)state;
	assert_int_equal(conf_dup(c, &d, err, sizeof(err)), 0);
	assert_string_equal(d->control_socket, "/run/lich/lichd.sock");
	assert_false(d->has_metrics);
	assert_false(d->log_level_set);
	assert_same_lun(&c->targets[0].luns[0], &d->targets[0].luns[0]);
	conf_free(c);
	conf_free(d);
}

static void test_format_refuses_quote(void **state)
{
	struct config *c = parse("<target iqn.2026-11.org.lich:a>\nincominguser u a\"b123456789012\n</target>\n");
	char *t = NULL;

	(void)state;
	/* a secret with a '"' and no blank does not need quotes: it is written */
	assert_int_equal(conf_format(c, &t), 0);
	free(t);
	free(c->targets[0].incoming[0].secret);
	c->targets[0].incoming[0].secret = strdup("a \"b");
	assert_int_equal(conf_format(c, &t), -EINVAL);
	conf_free(c);
}

static void test_metrics_key(void **state)
{
	struct config *c = NULL;
	char err[512];

	(void)state;
	assert_int_not_equal(conf_parse_string("metrics 127.0.0.1\n", "t", &c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "port"));
	assert_int_not_equal(conf_parse_string("control-socket rel/x.sock\n", "t", &c, err,
					       sizeof(err)), 0);
	assert_int_not_equal(conf_parse_string("metrics [::1]:9\nmetrics [::1]:9\n", "t", &c,
					       err, sizeof(err)), 0);
	assert_int_equal(conf_parse_string("metrics [::1]:9100\n", "t", &c, err, sizeof(err)), 0);
	assert_string_equal(c->metrics.host, "::1");
	conf_free(c);
}

static void test_edits(void **state)
{
	struct config *c = parse(full_conf), *d = NULL;
	struct conf_lun l;
	char err[512];

	(void)state;
	assert_int_equal(conf_edit_target_add(c, "iqn.2026-11.org.lich:a"), -EEXIST);
	assert_int_equal(conf_edit_target_add(c, "IQN.2026-11.ORG.LICH:A"), -EEXIST);
	assert_int_equal(conf_edit_target_add(c, "not a name"), -EINVAL);
	assert_int_equal(conf_edit_target_add(c, "iqn.2026-11.org.lich:new"), 0);
	conf_lun_defaults(&l);
	l.lun = 3;
	l.bs_type = BS_RAM;
	l.size = 1 << 20;
	l.path = "n1";
	assert_int_equal(conf_edit_lun_add(c, "iqn.2026-11.org.lich:new", &l), 0);
	l.lun = 1;
	l.path = "n0";
	assert_int_equal(conf_edit_lun_add(c, "iqn.2026-11.org.lich:new", &l), 0);
	assert_int_equal(conf_edit_lun_add(c, "iqn.2026-11.org.lich:new", &l), -EEXIST);
	assert_int_equal(conf_edit_lun_add(c, "iqn.2026-11.org.lich:none", &l), -ENOENT);
	l.lun = 0;
	assert_int_equal(conf_edit_lun_add(c, "iqn.2026-11.org.lich:new", &l), -EINVAL);
	assert_int_equal(conf_edit_acl(c, "iqn.2026-11.org.lich:new", "iqn.2026-11.org.lich:i2", true), 0);
	assert_int_equal(conf_edit_acl(c, "iqn.2026-11.org.lich:new", "iqn.2026-11.org.lich:i2", true), -EEXIST);
	assert_int_equal(conf_edit_acl(c, "iqn.2026-11.org.lich:new", "192.168.0.0/16", true), 0);
	assert_int_equal(conf_edit_acl(c, "iqn.2026-11.org.lich:new", "999.1.1.1", true), -EINVAL);
	assert_int_equal(conf_edit_acl(c, "iqn.2026-11.org.lich:a", "10.0.0.0/8", false), 0);
	assert_int_equal(conf_edit_acl(c, "iqn.2026-11.org.lich:a", "10.0.0.0/8", false), -ENOENT);
	assert_int_equal(conf_edit_lun_del(c, "iqn.2026-11.org.lich:a", 7), 0);
	assert_int_equal(conf_edit_lun_del(c, "iqn.2026-11.org.lich:a", 7), -ENOENT);
	assert_int_equal(conf_edit_target_del(c, "iqn.2026-11.org.lich:b"), 0);
	assert_int_equal(conf_edit_target_del(c, "iqn.2026-11.org.lich:b"), -ENOENT);

	assert_int_equal(conf_dup(c, &d, err, sizeof(err)), 0);
	assert_int_equal(d->ntargets, 2);
	const struct conf_target *t = conf_find_target(d, "iqn.2026-11.org.lich:new");
	assert_non_null(t);
	assert_int_equal(t->tid, 2);
	assert_int_equal(t->nluns, 2);
	assert_int_equal(t->luns[0].lun, 1);      /* kept sorted */
	assert_string_equal(t->luns[0].path, "n0");
	assert_int_equal(t->luns[1].lun, 3);
	assert_int_equal(t->luns[1].bs_type, BS_RAM);
	assert_int_equal(t->n_initiator_names, 1);
	assert_int_equal(t->n_initiator_addresses, 1);
	const struct conf_target *a = conf_find_target(d, "iqn.2026-11.org.lich:a");
	assert_int_equal(a->nluns, 1);
	assert_int_equal(a->n_initiator_addresses, 0);
	assert_null(conf_find_target(d, "iqn.2026-11.org.lich:b"));
	conf_free(d);

	/* conf_dup is the validation: a RAM LUN without a size is refused */
	l.lun = 9;
	l.size = 0;
	assert_int_equal(conf_edit_lun_add(c, "iqn.2026-11.org.lich:new", &l), 0);
	assert_int_equal(conf_dup(c, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "size"));
	assert_null(strstr(err, "(copy)"));          /* no line of text nobody saw */
	conf_free(c);
}

/* ---- Prometheus page and pool totals ---- */

static void test_metrics_page(void **state)
{
	struct ctl_gather *g = calloc(1, sizeof(*g) + 2 * sizeof(g->part[0]));
	struct ctl_buf b = { 0 };

	(void)state;
	ctl_stats_init(2);
	struct ctl_lu_stats *s = ctl_lu_stats_get("iqn.x:\"q\"", 3);
	ctl_lu_count(s, 1, CTL_IO_READ, 4096, false, 3);      /* bucket [2, 4) */
	ctl_lu_count(s, 0, CTL_IO_WRITE, 512, true, 40000000); /* past 16.8 s */
	g->n = 2;
	g->part[0].replied = g->part[1].replied = true;
	g->part[0].have_pool = true;
	g->part[0].pool.page_bytes_in_use = 3 * 4096 + 16384;  /* 3 raw pages + a slab */
	g->part[0].pool.chunks = 1;
	g->part[0].caches = calloc(1, sizeof(*g->part[0].caches));
	g->part[0].ncaches = 1;
	g->part[0].caches[0].st.slab_bytes = 16384;
	g->part[0].caches[0].st.bytes_in_use = 256;
	assert_int_equal(ctl_part_bytes_in_use(&g->part[0]), 3 * 4096 + 256);
	assert_int_equal(ctl_part_bytes_in_use(&g->part[1]), 0);
	ctl_metrics_render(g, &b);
	assert_false(b.oom);
	const char *lbl = "{target=\"iqn.x:\\\"q\\\"\",lun=\"3\"";
	char want[256];
	snprintf(want, sizeof(want), "\nlich_lun_read_ops_total%s} 1\n", lbl);
	assert_non_null(strstr(b.s, want));
	snprintf(want, sizeof(want), "\nlich_lun_errors_total%s} 1\n", lbl);
	assert_non_null(strstr(b.s, want));
	snprintf(want, sizeof(want), "\nlich_lun_latency_seconds_bucket%s,le=\"2e-06\"} 0\n", lbl);
	assert_non_null(strstr(b.s, want));
	snprintf(want, sizeof(want), "\nlich_lun_latency_seconds_bucket%s,le=\"4e-06\"} 1\n", lbl);
	assert_non_null(strstr(b.s, want));
	snprintf(want, sizeof(want), "\nlich_lun_latency_seconds_bucket%s,le=\"+Inf\"} 2\n", lbl);
	assert_non_null(strstr(b.s, want));
	snprintf(want, sizeof(want), "\nlich_lun_latency_seconds_count%s} 2\n", lbl);
	assert_non_null(strstr(b.s, want));
	assert_non_null(strstr(b.s, "\n# TYPE lich_lun_latency_seconds histogram\n"));
	assert_non_null(strstr(b.s, "\nlich_pool_bytes_in_use{reactor=\"0\"} 12544\n"));
	/* a reactor without pool figures gets no pool line */
	assert_null(strstr(b.s, "lich_pool_bytes_in_use{reactor=\"1\"}"));
	/* every line is a comment or "name{labels} value" / "name value" */
	for (char *line = b.s; *line; line = strchr(line, '\n') + 1) {
		assert_non_null(strchr(line, '\n'));
		if (*line != '#')
			assert_true(strchr(line, ' ') < strchr(line, '\n'));
	}
	ctl_buf_free(&b);
	ctl_gather_free(g);
	ctl_stats_fini();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_req_text),
		cmocka_unit_test(test_req_json),
		cmocka_unit_test(test_req_errors),
		cmocka_unit_test(test_json_writer),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_human_bytes),
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_cdb_kind),
		cmocka_unit_test(test_lu_stats),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_defaults_roundtrip),
		cmocka_unit_test(test_format_refuses_quote),
		cmocka_unit_test(test_metrics_key),
		cmocka_unit_test(test_edits),
		cmocka_unit_test(test_metrics_page),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
