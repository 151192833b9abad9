/* lichctl — talk to a running lichd over its control socket.
 *
 *   lichctl [-s PATH] [--json] VERB...
 *   lichctl [-s PATH] [--json] stats --interval SECONDS [--count N]
 *
 * The socket: -s, else $LICH_CONTROL_SOCKET (an absolute path), else
 * /run/lich/lichd.sock — lichd uses the same default when targets.conf has
 * no control-socket.
 *
 * Sends the words as one JSON array line (ctl/proto.h), prints the body of
 * the answer to stdout and exits 0 on "ok"; prints the one-line error to
 * stderr and exits 1 otherwise (also when lichd cannot be reached).
 *
 * "stats --interval" is done here, not in lichd: lichd keeps cumulative
 * counters only, so lichctl asks for "stats --json" once, then once per
 * interval, and prints the differences divided by the time between the two
 * answers (like iostat): IOPS, MB/s (10^6 bytes), errors/s per LUN and per
 * connection, and per LUN the latency percentiles of that interval alone,
 * from the differences of the latency histogram's buckets.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/proto.h"
#include "ctl/stats.h"

#define DEFAULT_SOCKET "/run/lich/lichd.sock"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lichctl [-s PATH] [--json] VERB...\n"
		"  -s, --socket PATH   lichd's control socket (default $LICH_CONTROL_SOCKET,\n"
		"                      else " DEFAULT_SOCKET ")\n"
		"  -j, --json          JSON output instead of text tables\n"
		"  -h, --help          this help\n"
		"verbs:\n"
		"  show targets | show luns | show portals | show sessions\n"
		"  stats [--interval SECONDS [--count N]] | pool\n"
		"  target add IQN | target del IQN [--force]\n"
		"  lun add IQN LUN BACKING [--type ram|uring|nvme] [--size N] | lun del IQN LUN\n"
		"  acl add|del IQN INITIATOR-IQN|ADDR[/PREFIX]\n"
		"  logout SESSION-ID [--now] [--timeout SECONDS]\n"
		"  reload | save\n");
}

static int die(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "lichctl: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 1;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One request. 0 with the answer's body at *body (inside rsp, which the
 * caller frees); 1 after the error was printed. */
static int call(const char *path, char **words, int n, bool json, struct ctl_buf *rsp,
		const char **body)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct ctl_buf req = { 0 };
	char chunk[65536];
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return die("socket path %s is too long%s", path, "");
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);

	ctl_buf_put(&req, "[", 1);
	if (json)
		ctl_buf_put(&req, "\"--json\"", 8);
	for (int i = 0; i < n; i++) {
		if (json || i > 0)
			ctl_buf_put(&req, ",", 1);
		ctl_json_escape(&req, words[i]);
	}
	ctl_buf_put(&req, "]\n", 2);
	if (req.oom || req.len > CTL_REQ_MAX) {
		ctl_buf_free(&req);
		return die("request too long%s%s", "", "");
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return die("socket: %s%s", strerror(errno), "");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		int e = errno;
		close(fd);
		ctl_buf_free(&req);
		if (e == ENOENT || e == ECONNREFUSED)
			return die("cannot connect to lichd at %s: %s (is lichd running?)", path,
				   e == ENOENT ? "no such socket" : "connection refused");
		return die("cannot connect to lichd at %s: %s", path, strerror(e));
	}
	int rc = send_all(fd, req.s, req.len);
	ctl_buf_free(&req);
	if (rc) {
		close(fd);
		return die("cannot send the request to %s: %s", path, strerror(errno));
	}
	shutdown(fd, SHUT_WR);
	rsp->len = 0;
	for (;;) {
		ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			return die("reading lichd's answer: %s%s", strerror(errno), "");
		}
		if (r == 0)
			break;
		ctl_buf_put(rsp, chunk, (size_t)r);
	}
	close(fd);
	if (rsp->oom)
		return die("out of memory%s%s", "", "");
	char *nl = rsp->s ? memchr(rsp->s, '\n', rsp->len) : NULL;
	if (!nl)
		return die("lichd closed the connection without an answer%s%s", "", "");
	*nl = '\0';
	if (strcmp(rsp->s, "ok") == 0) {
		*body = nl + 1;
		return 0;
	}
	const char *msg = strncmp(rsp->s, "error: ", 7) == 0 ? rsp->s + 7 : rsp->s;
	fprintf(stderr, "lichctl: %s\n", msg);
	return 1;
}

/* ---- stats --interval ---- */

/* One "stats --json" answer and when it was asked for. */
struct sample {
	struct cjv *root;
	double t;                   /* CLOCK_MONOTONIC seconds */
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int take_sample(const char *path, struct sample *s)
{
	char *words[] = { "stats" };
	struct ctl_buf rsp = { 0 };
	const char *body;
	char err[128] = "";
	int rc;

	s->t = now_mono();
	rc = call(path, words, 1, true, &rsp, &body);
	if (rc == 0) {
		size_t n = rsp.len - (size_t)(body - rsp.s);
		s->root = NULL;
		if (cjv_parse(body, n, &s->root, err, sizeof(err)) ||
		    !cjv_get(s->root, "luns") || !cjv_get(s->root, "connections")) {
			cjv_free(s->root);
			s->root = NULL;
			rc = die("lichd's stats answer is not what lichctl expects (%s)%s",
				 err[0] ? err : "no luns or connections", "");
		}
	}
	ctl_buf_free(&rsp);
	return rc;
}

static const struct cjv *first(const struct cjv *root, const char *key)
{
	const struct cjv *a = cjv_get(root, key);

	return a && a->type == CJV_ARR ? a->child : NULL;
}

/* The same LUN / connection in the earlier sample; NULL if it is new (its
 * counters then started inside the interval, from zero). */
static const struct cjv *find_lun(const struct cjv *root, const struct cjv *l)
{
	const char *t = cjv_str(l, "target");

	for (const struct cjv *o = first(root, "luns"); o; o = o->next)
		if (t && cjv_str(o, "target") && strcmp(cjv_str(o, "target"), t) == 0 &&
		    cjv_u64(o, "lun") == cjv_u64(l, "lun"))
			return o;
	return NULL;
}

static const struct cjv *find_conn(const struct cjv *root, const struct cjv *c)
{
	for (const struct cjv *o = first(root, "connections"); o; o = o->next)
		if (cjv_u64(o, "session") == cjv_u64(c, "session") &&
		    cjv_u64(o, "cid") == cjv_u64(c, "cid"))
			return o;
	return NULL;
}

/* A counter's growth; 0 if it went backwards (it should not). */
static uint64_t delta(const struct cjv *cur, const struct cjv *prev, const char *key)
{
	uint64_t a = cjv_u64(cur, key), b = prev ? cjv_u64(prev, key) : 0;

	return a >= b ? a - b : 0;
}

struct rates {
	double r_iops, w_iops, r_mbps, w_mbps, err_ps;
};

static void io_rates(const struct cjv *cur, const struct cjv *prev, double dt, struct rates *r)
{
	r->r_iops = (double)delta(cur, prev, "read_ops") / dt;
	r->w_iops = (double)delta(cur, prev, "write_ops") / dt;
	r->r_mbps = (double)delta(cur, prev, "read_bytes") / dt / 1e6;
	r->w_mbps = (double)delta(cur, prev, "write_bytes") / dt / 1e6;
	r->err_ps = (double)delta(cur, prev, "errors") / dt;
}

/* A LUN's histogram from its latency_us.buckets ({"le":N|"+Inf","count":N},
 * only the non-empty buckets are listed). false if the answer has none. */
static bool read_hist(const struct cjv *lun, uint64_t *h)
{
	const struct cjv *bk = cjv_get(cjv_get(lun, "latency_us"), "buckets");

	memset(h, 0, sizeof(*h) * CTL_LAT_BUCKETS);
	if (!bk || bk->type != CJV_ARR)
		return false;
	for (const struct cjv *e = bk->child; e; e = e->next) {
		const struct cjv *le = cjv_get(e, "le");
		unsigned b = CTL_LAT_BUCKETS - 1;
		if (!le)
			continue;
		if (le->type == CJV_NUM) {
			for (b = 0; b < CTL_LAT_BUCKETS - 1 && ctl_lat_bucket_le(b) != le->u; b++)
				;
		}
		h[b] += cjv_u64(e, "count");
	}
	return true;
}

struct interval_lat {
	bool known;
	uint64_t count;
	double p50, p99, p999;
};

static void lun_latency(const struct cjv *cur, const struct cjv *prev, struct interval_lat *l)
{
	uint64_t hc[CTL_LAT_BUCKETS], hp[CTL_LAT_BUCKETS];

	memset(l, 0, sizeof(*l));
	if (!read_hist(cur, hc))
		return;
	if (prev)
		read_hist(prev, hp);
	else
		memset(hp, 0, sizeof(hp));
	l->known = true;
	for (unsigned b = 0; b < CTL_LAT_BUCKETS; b++) {
		hc[b] = hc[b] >= hp[b] ? hc[b] - hp[b] : 0;
		l->count += hc[b];
	}
	l->p50 = ctl_lat_percentile(hc, CTL_LAT_BUCKETS, 0.50);
	l->p99 = ctl_lat_percentile(hc, CTL_LAT_BUCKETS, 0.99);
	l->p999 = ctl_lat_percentile(hc, CTL_LAT_BUCKETS, 0.999);
}

static void json_rates(struct ctl_json *j, const struct rates *r)
{
	cj_dbl(j, "read_iops", r->r_iops);
	cj_dbl(j, "write_iops", r->w_iops);
	cj_dbl(j, "read_mbps", r->r_mbps);
	cj_dbl(j, "write_mbps", r->w_mbps);
	cj_dbl(j, "errors_per_s", r->err_ps);
}

/* One interval's report, from two samples, into out. */
static void report(const struct sample *prev, const struct sample *cur, bool json,
		   struct ctl_buf *out)
{
	double dt = cur->t - prev->t;
	struct ctl_json j;
	struct ctl_table t;
	struct rates r;
	struct interval_lat lat;

	if (dt <= 0)
		dt = 1e-9;
	if (json) {
		cj_init(&j, out);
		cj_obj(&j, NULL);
		cj_dbl(&j, "seconds", dt);
		cj_arr(&j, "luns");
	} else {
		static const char *const h[] = { "TARGET", "LUN", "R_IOPS", "W_IOPS", "R_MB/s",
						 "W_MB/s", "ERR/s", "P50_US", "P99_US", "P999_US" };
		ctl_buf_printf(out, "interval %.2f s\n", dt);
		ctl_table_init(&t, 10, h);
	}
	for (const struct cjv *l = first(cur->root, "luns"); l; l = l->next) {
		const struct cjv *o = find_lun(prev->root, l);
		const char *target = cjv_str(l, "target");
		io_rates(l, o, dt, &r);
		lun_latency(l, o, &lat);
		if (!json) {
			char p50[32] = "-", p99[32] = "-", p999[32] = "-";
			if (lat.known) {
				snprintf(p50, sizeof(p50), "%.0f", lat.p50);
				snprintf(p99, sizeof(p99), "%.0f", lat.p99);
				snprintf(p999, sizeof(p999), "%.0f", lat.p999);
			}
			ctl_table_rowf(&t, "%s\t%" PRIu64 "\t%.1f\t%.1f\t%.2f\t%.2f\t%.1f\t%s\t%s\t%s",
				       target ? target : "-", cjv_u64(l, "lun"), r.r_iops, r.w_iops,
				       r.r_mbps, r.w_mbps, r.err_ps, p50, p99, p999);
			continue;
		}
		cj_obj(&j, NULL);
		cj_str(&j, "target", target);
		cj_u64(&j, "lun", cjv_u64(l, "lun"));
		json_rates(&j, &r);
		if (lat.known) {
			cj_obj(&j, "latency_us");
			cj_u64(&j, "count", lat.count);
			cj_dbl(&j, "p50", lat.p50);
			cj_dbl(&j, "p99", lat.p99);
			cj_dbl(&j, "p999", lat.p999);
			cj_end_obj(&j);
		}
		cj_end_obj(&j);
	}
	if (json) {
		cj_end_arr(&j);
		cj_arr(&j, "connections");
	} else {
		static const char *const h[] = { "SESSION", "CID", "PEER", "R_IOPS", "W_IOPS",
						 "R_MB/s", "W_MB/s", "ERR/s", "TARGET" };
		ctl_table_render(&t, out);
		if (t.oom)
			out->oom = true;
		ctl_table_free(&t);
		ctl_buf_put(out, "\n", 1);
		ctl_table_init(&t, 9, h);
	}
	for (const struct cjv *c = first(cur->root, "connections"); c; c = c->next) {
		const struct cjv *o = find_conn(prev->root, c);
		const char *target = cjv_str(c, "target"), *peer = cjv_str(c, "peer");
		io_rates(c, o, dt, &r);
		if (!json) {
			ctl_table_rowf(&t, "%" PRIu64 "\t%" PRIu64 "\t%s\t%.1f\t%.1f\t%.2f\t%.2f\t%.1f\t%s",
				       cjv_u64(c, "session"), cjv_u64(c, "cid"), peer ? peer : "-",
				       r.r_iops, r.w_iops, r.r_mbps, r.w_mbps, r.err_ps,
				       target ? target : "(discovery)");
			continue;
		}
		cj_obj(&j, NULL);
		cj_u64(&j, "session", cjv_u64(c, "session"));
		cj_u64(&j, "cid", cjv_u64(c, "cid"));
		cj_str(&j, "initiator", cjv_str(c, "initiator"));
		cj_str(&j, "target", target);
		cj_str(&j, "peer", peer);
		json_rates(&j, &r);
		cj_end_obj(&j);
	}
	if (json) {
		cj_end_arr(&j);
		cj_end_obj(&j);
		ctl_buf_put(out, "\n", 1);
	} else {
		ctl_table_render(&t, out);
		if (t.oom)
			out->oom = true;
		ctl_table_free(&t);
	}
}

/* Positive seconds (fractions allowed, at most a day) / a count >= 1. */
static bool parse_seconds(const char *s, double *out)
{
	char *e;
	double v = strtod(s, &e);

	if (e == s || *e || !(v >= 0.01 && v <= 86400))
		return false;
	*out = v;
	return true;
}

static bool parse_count(const char *s, unsigned long *out)
{
	char *e;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &e, 10);
	if (errno || *e || v == 0)
		return false;
	*out = v;
	return true;
}

/* stats --interval S [--count N]: N reports (forever without --count), one
 * every S seconds, on the same clock (no drift from the time a request
 * takes). */
static int stats_interval(const char *path, char **w, int n, bool json)
{
	double interval = 0;
	unsigned long count = 0;
	struct sample prev = { 0 }, cur = { 0 };
	struct timespec next;

	for (int i = 0; i < n; i++) {
		if (strcmp(w[i], "--json") == 0)
			json = true;
		else if (strcmp(w[i], "--interval") == 0 && i + 1 < n) {
			if (!parse_seconds(w[++i], &interval))
				return die("stats: --interval wants seconds from 0.01 to 86400, not %s%s",
					   w[i], "");
		} else if (strcmp(w[i], "--count") == 0 && i + 1 < n) {
			if (!parse_count(w[++i], &count))
				return die("stats: --count wants a whole number >= 1, not %s%s", w[i], "");
		} else
			return die("stats: unexpected %s (stats [--interval SECONDS [--count N]])%s",
				   w[i], "");
	}
	if (interval <= 0)
		return die("stats: --count needs --interval SECONDS%s%s", "", "");

	/* the schedule starts when the first request is sent, as each sample's
	 * time is taken then too */
	clock_gettime(CLOCK_MONOTONIC, &next);
	if (take_sample(path, &prev))
		return 1;
	for (unsigned long k = 0; count == 0 || k < count; k++) {
		struct ctl_buf out = { 0 };
		double sec = floor(interval);
		next.tv_sec += (time_t)sec;
		next.tv_nsec += (long)((interval - sec) * 1e9);
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		if (take_sample(path, &cur)) {
			cjv_free(prev.root);
			return 1;
		}
		if (k > 0 && !json)
			ctl_buf_put(&out, "\n", 1);
		report(&prev, &cur, json, &out);
		if (out.oom) {
			ctl_buf_free(&out);
			cjv_free(prev.root);
			cjv_free(cur.root);
			return die("out of memory%s%s", "", "");
		}
		fwrite(out.s, 1, out.len, stdout);
		ctl_buf_free(&out);
		cjv_free(prev.root);
		prev = cur;
		cur.root = NULL;
		if (fflush(stdout)) {
			cjv_free(prev.root);
			return 1;
		}
	}
	cjv_free(prev.root);
	return 0;
}

static bool has_word(char **w, int n, const char *word)
{
	for (int i = 0; i < n; i++)
		if (strcmp(w[i], word) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = getenv("LICH_CONTROL_SOCKET");

	if (!path || path[0] != '/')
		path = DEFAULT_SOCKET;
	bool json = false;
	int c;

	/* "+": stop at the first verb word, so "--force" etc. reach lichd */
	while ((c = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (c) {
		case 's': path = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	char **w = argv + optind;
	int n = argc - optind;
	if (strcmp(w[0], "stats") == 0 && (has_word(w, n, "--interval") || has_word(w, n, "--count")))
		return stats_interval(path, w + 1, n - 1, json);

	struct ctl_buf rsp = { 0 };
	const char *body;
	int rc = call(path, w, n, json, &rsp, &body);
	if (rc == 0) {
		fwrite(body, 1, rsp.len - (size_t)(body - rsp.s), stdout);
		rc = fflush(stdout) ? 1 : 0;
	}
	ctl_buf_free(&rsp);
	return rc;
}
