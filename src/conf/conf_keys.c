/* conf_keys.c — the directives of targets.conf: which key is valid where,
 * and how its value is checked and stored (conf_target.c resolves LUNs).
 *
 * Scopes: global (outside any block), target (inside <target>), LUN (inside
 * <backing-store>/<direct-store>). Per-LUN keys given at target level apply
 * to every LUN of the target unless its block says otherwise; bs-type may
 * also be given globally. tgt keys lich has no use for are accepted with a
 * warning so an existing tgt file loads; anything else unknown is an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "conf_int.h"

#define S_TOP (1u << D_TOP)
#define S_TGT (1u << D_TARGET)
#define S_LUN (1u << D_LUN)
#define S_ALL (S_TOP | S_TGT | S_LUN)

#define MEMORY_LIMIT_MIN ((size_t)4 << 20)
#define NOP_SECONDS_MAX 3600
#define ACCOUNT_FIELD_MAX 255
#define SECRET_WEAK_LEN 12     /* e.g. Windows' initiator refuses shorter CHAP secrets */

struct key_def;
typedef int (*key_fn)(struct conf_parser *p, const struct key_def *k, char *raw,
		      const struct conf_where *at);

struct key_def {
	const char *name;
	unsigned scopes;       /* S_* where the key is valid */
	key_fn fn;             /* NULL: a tgt option lich does not use (warned) */
	int arg;               /* k_lun_opt: which LK_* */
	enum conf_once once;   /* global keys allowed once */
	const char *note;      /* for ignored keys: why */
};

/* ---- value helpers ---- */

static const char *scope_desc(struct conf_parser *p, char *buf, size_t n)
{
	if (p->depth == D_TARGET)
		snprintf(buf, n, " in <target %s>", p->cur.name);
	else if (p->depth == D_LUN)
		snprintf(buf, n, " in <%s %s>", p->blk_kind, p->pl[p->npl - 1].path);
	else
		buf[0] = '\0';
	return buf;
}

/* The whole value, without surrounding quotes. */
static int value(struct conf_parser *p, const struct key_def *k, char *raw,
		 const struct conf_where *at, char **out)
{
	const char *why = conf_unquote(raw, out);

	if (why)
		return conf_fail(p, at, "%s: %s", k->name, why);
	return 0;
}

/* A value that must be one word. */
static int token(struct conf_parser *p, const struct key_def *k, char *raw,
		 const struct conf_where *at, char **out)
{
	int rc = value(p, k, raw, at, out);

	if (rc == 0 && (!**out || strpbrk(*out, " \t")))
		return conf_fail(p, at, "'%s' takes one value, got '%s'", k->name, *out);
	return rc;
}

/* Splits a value into words; a word may be "double quoted". */
static const char *split_words(char *s, char **w, unsigned max, unsigned *n)
{
	unsigned count = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		if (count == max)
			return "too many values";
		if (*s == '"') {
			char *end = strchr(s + 1, '"');

			if (!end)
				return "unterminated quote";
			if (end[1] && end[1] != ' ' && end[1] != '\t')
				return "text right after a closing quote";
			*end = '\0';
			w[count++] = s + 1;
			s = end + 1;
		} else {
			w[count++] = s;
			while (*s && *s != ' ' && *s != '\t')
				s++;
			if (*s)
				*s++ = '\0';
		}
	}
	*n = count;
	return NULL;
}

static int keep_string(struct conf_parser *p, char ***arr, unsigned *n, const char *s,
		       const struct conf_where *at)
{
	char *copy = strdup(s);

	if (!copy || conf_grow(arr, *n, sizeof(**arr))) {
		free(copy);
		return conf_oom(p, at);
	}
	(*arr)[(*n)++] = copy;
	return 0;
}

/* ---- global keys ---- */

static int k_include(struct conf_parser *p, const struct key_def *k, char *raw,
		     const struct conf_where *at)
{
	char *v;
	int rc = value(p, k, raw, at, &v);

	if (rc)
		return rc;
	if (!*v)
		return conf_fail(p, at, "include needs a file name or pattern");
	return conf_include(p, v, at);
}

static int k_portal(struct conf_parser *p, const struct key_def *k, char *raw,
		    const struct conf_where *at)
{
	struct config *c = p->cfg;
	bool iser = strcmp(k->name, "iser-portal") == 0;
	struct conf_portal **list = iser ? &c->iser_portals : &c->portals;
	unsigned *n = iser ? &c->n_iser_portals : &c->nportals;
	struct conf_portal pt;
	const char *why;
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	if ((why = conf_portal_parse(v, &pt)))
		return conf_fail(p, at, "bad %s '%s': %s", k->name, v, why);
	for (unsigned i = 0; i < *n; i++)
		if ((*list)[i].port == pt.port && strcmp((*list)[i].host, pt.host) == 0)
			return conf_fail(p, at, "%s '%s' already given at line %d", k->name, v,
					 (*list)[i].line);
	if (conf_grow(list, *n, sizeof(**list)))
		return conf_oom(p, at);
	pt.line = at->line;
	(*list)[(*n)++] = pt;
	return 0;
}

static int k_cores(struct conf_parser *p, const struct key_def *k, char *raw,
		   const struct conf_where *at)
{
	unsigned n;
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	rc = conf_parse_cpulist(v, p->cfg->cores, REACTOR_MAX, &n);
	if (rc == -E2BIG)
		return conf_fail(p, at, "cores '%s': more than %d CPUs", v, REACTOR_MAX);
	if (rc)
		return conf_fail(p, at, "bad cores '%s' (expected a CPU list such as 0-3,6, "
				 "each CPU once)", v);
	p->cfg->ncores = n;
	return 0;
}

static int k_memory_limit(struct conf_parser *p, const struct key_def *k, char *raw,
			  const struct conf_where *at)
{
	uint64_t v64;
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	if (conf_parse_size(v, &v64) || v64 > SIZE_MAX)
		return conf_fail(p, at, "bad memory-limit '%s' (expected a size such as 512M or 2G)", v);
	if (v64 < MEMORY_LIMIT_MIN)
		return conf_fail(p, at, "memory-limit '%s' is below the minimum of 4M", v);
	p->cfg->memory_limit = (size_t)v64;
	return 0;
}

static int k_poll_mode(struct conf_parser *p, const struct key_def *k, char *raw,
		       const struct conf_where *at)
{
	static const struct { const char *name; enum poll_mode mode; } modes[] = {
		{ "busy", POLL_BUSY }, { "adaptive", POLL_ADAPTIVE }, { "sleep", POLL_SLEEP },
	};
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcasecmp(v, modes[i].name) == 0) {
			p->cfg->poll_mode = modes[i].mode;
			return 0;
		}
	}
	return conf_fail(p, at, "bad poll-mode '%s' (expected busy, adaptive or sleep)", v);
}

static int k_log_level(struct conf_parser *p, const struct key_def *k, char *raw,
		       const struct conf_where *at)
{
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	if (log_level_parse(v, &p->cfg->log_level))
		return conf_fail(p, at, "bad log-level '%s' (expected error, warn, info or debug)", v);
	p->cfg->log_level_set = true;
	return 0;
}

static int k_state_dir(struct conf_parser *p, const struct key_def *k, char *raw,
		       const struct conf_where *at)
{
	char *v;
	int rc = value(p, k, raw, at, &v);

	if (rc)
		return rc;
	if (v[0] != '/')
		return conf_fail(p, at, "state-dir '%s' must be an absolute path", v);
	if (strlen(v) >= 4096)
		return conf_fail(p, at, "state-dir is too long");
	char *copy = strdup(v);
	if (!copy)
		return conf_oom(p, at);
	free(p->cfg->state_dir);
	p->cfg->state_dir = copy;
	return 0;
}

static int k_nop(struct conf_parser *p, const struct key_def *k, char *raw,
		 const struct conf_where *at)
{
	unsigned secs;
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	if (conf_parse_uint(v, NOP_SECONDS_MAX, &secs))
		return conf_fail(p, at, "bad %s '%s' (expected seconds, 0..%d)", k->name, v,
				 NOP_SECONDS_MAX);
	if (k->once == ONCE_NOP_INTERVAL)
		p->cfg->nop_interval = secs;
	else if (k->once == ONCE_NOP_TIMEOUT)
		p->cfg->nop_timeout = secs;
	else
		p->cfg->shutdown_timeout = secs;
	return 0;
}

/* control-socket PATH: where lichd listens for lichctl. */
static int k_control_socket(struct conf_parser *p, const struct key_def *k, char *raw,
			    const struct conf_where *at)
{
	char *v;
	int rc = value(p, k, raw, at, &v);

	if (rc)
		return rc;
	if (v[0] != '/')
		return conf_fail(p, at, "control-socket '%s' must be an absolute path", v);
	/* sun_path holds 108 bytes with the terminating NUL */
	if (strlen(v) > 107)
		return conf_fail(p, at, "control-socket is longer than 107 bytes");
	char *copy = strdup(v);
	if (!copy)
		return conf_oom(p, at);
	free(p->cfg->control_socket);
	p->cfg->control_socket = copy;
	return 0;
}

/* metrics ADDR:PORT: the Prometheus endpoint (any address; a local one is advised). */
static int k_uring_sqpoll(struct conf_parser *p, const struct key_def *k, char *raw,
			  const struct conf_where *at)
{
	const char *why;
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	if ((why = conf_parse_bool(v, &p->cfg->uring_sqpoll)))
		return conf_fail(p, at, "bad uring-sqpoll '%s': %s", v, why);
	return 0;
}

static int k_metrics(struct conf_parser *p, const struct key_def *k, char *raw,
		     const struct conf_where *at)
{
	const char *why;
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	const char *close = v[0] == '[' ? strchr(v, ']') : v;
	if (!close || !strchr(close, ':'))
		return conf_fail(p, at, "metrics '%s' needs a port (ADDR:PORT)", v);
	if ((why = conf_portal_parse(v, &p->cfg->metrics)))
		return conf_fail(p, at, "bad metrics '%s': %s (expected ADDR:PORT)", v, why);
	p->cfg->metrics.line = at->line;
	p->cfg->has_metrics = true;
	return 0;
}

/* default-driver (global) and driver (target): tgt's choice of transport. */
static int k_driver(struct conf_parser *p, const struct key_def *k, char *raw,
		    const struct conf_where *at)
{
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	if (strcasecmp(v, "iscsi") == 0)
		return 0;
	if (strcasecmp(v, "iser") == 0) {
		log_warn("%s:%d: ignoring '%s iser': lich serves every target on all its "
			 "portals and iser-portals", at->file, at->line, k->name);
		return 0;
	}
	return conf_fail(p, at, "bad %s '%s' (expected iscsi or iser)", k->name, v);
}

/* ---- accounts ---- */

static int account_fill(struct conf_parser *p, struct conf_account *a, const char *user,
			const char *secret, const struct conf_where *at)
{
	a->user = strdup(user);
	a->secret = strdup(secret);
	if (!a->user || !a->secret) {
		free(a->user);
		free(a->secret);
		a->user = a->secret = NULL;
		return conf_oom(p, at);
	}
	return 0;
}

static const char *account_check(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ACCOUNT_FIELD_MAX)
		return "must be 1..255 bytes";
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return "contains a control character";
	return NULL;
}

/* incominguser/outgoinguser (target), incoming/outgoingdiscoveryuser (global).
 * Secrets never reach the log. */
static int k_account(struct conf_parser *p, const struct key_def *k, char *raw,
		     const struct conf_where *at)
{
	bool discovery = p->depth == D_TOP;
	bool outgoing = strncmp(k->name, "outgoing", 8) == 0;
	char *w[3];
	unsigned n;
	const char *why = split_words(raw, w, 3, &n);

	if (why || n != 2)
		return conf_fail(p, at, "'%s' needs a user name and a secret%s%s", k->name,
				 why ? ": " : "", why ? why : "");
	if ((why = account_check(w[0])))
		return conf_fail(p, at, "%s: user name %s", k->name, why);
	if ((why = account_check(w[1])))
		return conf_fail(p, at, "%s '%s': secret %s", k->name, w[0], why);
	if (strlen(w[1]) < SECRET_WEAK_LEN)
		log_warn("%s:%d: %s '%s': the secret is shorter than %d bytes; many initiators "
			 "refuse it", at->file, at->line, k->name, w[0], SECRET_WEAK_LEN);

	if (outgoing) {
		struct conf_account **slot = discovery ? &p->cfg->discovery_outgoing : &p->cur.outgoing;

		if (!discovery && p->outgoing_at.line)
			return conf_fail(p, at, "only one outgoinguser per target (first at %s:%d)",
					 p->outgoing_at.file, p->outgoing_at.line);
		struct conf_account *a = calloc(1, sizeof(*a));
		if (!a)
			return conf_oom(p, at);
		if (account_fill(p, a, w[0], w[1], at)) {
			free(a);
			return -ENOMEM;
		}
		*slot = a;
		if (!discovery)
			p->outgoing_at = *at;
		return 0;
	}
	struct conf_account **arr = discovery ? &p->cfg->discovery_incoming : &p->cur.incoming;
	unsigned *cnt = discovery ? &p->cfg->n_discovery_incoming : &p->cur.n_incoming;
	for (unsigned i = 0; i < *cnt; i++)
		if (strcmp((*arr)[i].user, w[0]) == 0)
			return conf_fail(p, at, "%s '%s' given twice", k->name, w[0]);
	if (conf_grow(arr, *cnt, sizeof(**arr)))
		return conf_oom(p, at);
	if (account_fill(p, &(*arr)[*cnt], w[0], w[1], at))
		return -ENOMEM;
	(*cnt)++;
	return 0;
}

/* ---- target keys ---- */

static int k_initiator_address(struct conf_parser *p, const struct key_def *k, char *raw,
			       const struct conf_where *at)
{
	char norm[128];
	const char *why;
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	if ((why = conf_check_addr_pattern(v)))
		return conf_fail(p, at, "bad initiator-address '%s': %s (expected ALL, an "
				 "address or ADDRESS/PREFIX)", v, why);
	/* stored as "ALL", "ADDR" or "ADDR/PREFIX", without IPv6 brackets */
	if (strcasecmp(v, "ALL") == 0) {
		snprintf(norm, sizeof(norm), "ALL");
	} else if (v[0] == '[') {
		char *close = strchr(v, ']');   /* present: the pattern parsed */
		*close = '\0';
		snprintf(norm, sizeof(norm), "%s%s", v + 1, close + 1);
	} else {
		snprintf(norm, sizeof(norm), "%s", v);
	}
	return keep_string(p, &p->cur.initiator_addresses, &p->cur.n_initiator_addresses,
			   norm, at);
}

static int k_initiator_name(struct conf_parser *p, const struct key_def *k, char *raw,
			    const struct conf_where *at)
{
	const char *why;
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	if ((why = conf_check_iscsi_name(v)))
		return conf_fail(p, at, "bad initiator-name '%s': %s", v, why);
	return keep_string(p, &p->cur.initiator_names, &p->cur.n_initiator_names, v, at);
}

/* single-line "backing-store PATH" / "direct-store PATH" */
static int k_store(struct conf_parser *p, const struct key_def *k, char *raw,
		   const struct conf_where *at)
{
	char *v;
	int rc = value(p, k, raw, at, &v);

	if (rc)
		return rc;
	if (!*v)
		return conf_fail(p, at, "'%s' needs a path", k->name);
	return conf_lun_open(p, k->name, v, at);
}

/* "lun N": inside a <backing-store> block, or at target level when the
 * target has a single backing store (as tgt-admin allows). */
static int k_lun(struct conf_parser *p, const struct key_def *k, char *raw,
		 const struct conf_where *at)
{
	unsigned lun;
	char *v;
	int rc = token(p, k, raw, at, &v);

	if (rc)
		return rc;
	if (conf_parse_uint(v, CONF_LUN_MAX, &lun))
		return conf_fail(p, at, "bad lun '%s' (expected 1..%d)", v, CONF_LUN_MAX);
	if (lun == 0)
		return conf_fail(p, at, "LUN 0 is reserved (tgt keeps it for its controller); "
				 "backing stores use LUN 1 and up");
	if (p->depth == D_TARGET) {
		if (p->tlun_at.line)
			return conf_fail(p, at, "'lun' given twice in <target %s> (first at %s:%d)",
					 p->cur.name, p->tlun_at.file, p->tlun_at.line);
		p->tlun = lun;
		p->tlun_at = *at;
		return 0;
	}
	struct conf_pending_lun *l = &p->pl[p->npl - 1];
	if (l->lun_at.line)
		return conf_fail(p, at, "'lun' given twice in <%s %s> (first at %s:%d)",
				 p->blk_kind, l->path, l->lun_at.file, l->lun_at.line);
	for (unsigned i = 0; i + 1 < p->npl; i++)
		if (p->pl[i].lun_at.line && p->pl[i].lun == lun)
			return conf_fail(p, at, "duplicate LUN %u in <target %s> (first at %s:%d)",
					 lun, p->cur.name, p->pl[i].lun_at.file,
					 p->pl[i].lun_at.line);
	l->lun = lun;
	l->lun_at = *at;
	return 0;
}

/* ---- per-LUN keys ---- */

static int bs_type_parse(struct conf_parser *p, const char *v, const struct conf_where *at,
			 enum bs_type *out)
{
	static const struct { const char *name; enum bs_type type; } native[] = {
		{ "uring", BS_URING }, { "ram", BS_RAM }, { "nvme", BS_NVME },
	};
	/* tgt's file backends: lich serves files and block devices with io_uring */
	static const char *const filelike[] = { "rdwr", "aio", "mmap" };
	/* tgt backends for pass-through, tape, changers or network stores */
	static const char *const foreign[] = {
		"sg", "bsg", "ssc", "smc", "mmc", "rbd", "sheepdog", "glfs", "null",
	};

	for (unsigned i = 0; i < sizeof(native) / sizeof(native[0]); i++) {
		if (strcasecmp(v, native[i].name) == 0) {
			*out = native[i].type;
			return 0;
		}
	}
	for (unsigned i = 0; i < sizeof(filelike) / sizeof(filelike[0]); i++) {
		if (strcasecmp(v, filelike[i]) == 0) {
			log_info("%s:%d: bs-type %s: lich serves files and block devices with "
				 "io_uring (bs-type uring)", at->file, at->line, v);
			*out = BS_URING;
			return 0;
		}
	}
	for (unsigned i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
		if (strcasecmp(v, foreign[i]) == 0)
			return conf_fail(p, at, "bs-type '%s' is not supported by lich "
					 "(use ram, uring or nvme)", v);
	return conf_fail(p, at, "unknown bs-type '%s' (expected ram, uring or nvme)", v);
}

/* INQUIRY text: printable ASCII (SPC-4 4.3.1), at most `max` bytes. */
static int inquiry_text(struct conf_parser *p, const char *key, const char *v, char *dst,
			size_t max, bool may_be_empty, const struct conf_where *at)
{
	size_t n = strlen(v);

	if (n == 0 && !may_be_empty)
		return conf_fail(p, at, "%s must not be empty", key);
	if (n > max)
		return conf_fail(p, at, "%s '%s' is %zu characters long; at most %zu fit",
				 key, v, n, max);
	for (size_t i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			return conf_fail(p, at, "%s may hold only printable ASCII characters", key);
	memcpy(dst, v, n + 1);
	return 0;
}

static int k_lun_opt(struct conf_parser *p, const struct key_def *k, char *raw,
		     const struct conf_where *at)
{
	struct conf_lun_opts *o = p->depth == D_TOP ? &p->gopts :
				  p->depth == D_TARGET ? &p->topts : &p->pl[p->npl - 1].o;
	int lk = k->arg;
	char desc[300];
	unsigned u;
	char *v;
	int rc;

	if (o->at[lk].line)
		return conf_fail(p, at, "'%s' given twice%s (first at %s:%d)", k->name,
				 scope_desc(p, desc, sizeof(desc)), o->at[lk].file, o->at[lk].line);
	if ((rc = value(p, k, raw, at, &v)))
		return rc;
	switch (lk) {
	case LK_BS_TYPE:
		rc = bs_type_parse(p, v, at, &o->bs_type);
		break;
	case LK_SIZE:
		if (conf_parse_size(v, &o->size) || o->size == 0)
			rc = conf_fail(p, at, "bad size '%s' (expected a number of bytes > 0 with "
				       "an optional K, M, G or T suffix)", v);
		break;
	case LK_BLOCK_SIZE:
		if (conf_parse_uint(v, 4096, &u) || (u != 512 && u != 1024 && u != 2048 && u != 4096))
			rc = conf_fail(p, at, "bad block-size '%s' (expected 512, 1024, 2048 or 4096)", v);
		o->block_size = u;
		break;
	case LK_WRITE_CACHE:
		if (strcasecmp(v, "on") == 0)
			o->write_cache = true;
		else if (strcasecmp(v, "off") == 0)
			o->write_cache = false;
		else
			rc = conf_fail(p, at, "bad write-cache '%s' (expected on or off)", v);
		break;
	case LK_READONLY: {
		const char *why = conf_parse_bool(v, &o->readonly);
		if (why)
			rc = conf_fail(p, at, "bad readonly '%s' (%s)", v, why);
		break;
	}
	case LK_VENDOR_ID:
		rc = inquiry_text(p, k->name, v, o->vendor_id, 8, false, at);
		break;
	case LK_PRODUCT_ID:
		rc = inquiry_text(p, k->name, v, o->product_id, 16, false, at);
		break;
	case LK_PRODUCT_REV:
		rc = inquiry_text(p, k->name, v, o->product_rev, 4, false, at);
		break;
	case LK_SCSI_SN:
		rc = inquiry_text(p, k->name, v, o->scsi_sn, 40, true, at);
		break;
	case LK_SCSI_ID:
		rc = inquiry_text(p, k->name, v, o->scsi_id, 40, true, at);
		break;
	}
	if (rc == 0)
		o->at[lk] = *at;
	return rc;
}

/* ---- the table ---- */

#define TGT_PARAM(n) { n, S_TGT, NULL, 0, ONCE_NONE, "lich negotiates iSCSI parameters itself" }
#define TGT_LUN(n, why) { n, S_TGT | S_LUN, NULL, 0, ONCE_NONE, why }
#define LUN_OPT(n, sc, lk) { n, sc, k_lun_opt, lk, ONCE_NONE, NULL }

static const struct key_def keys[] = {
	{ "include", S_ALL, k_include, 0, ONCE_NONE, NULL },
	/* lich's global keys */
	{ "portal", S_TOP, k_portal, 0, ONCE_NONE, NULL },
	{ "iser-portal", S_TOP, k_portal, 0, ONCE_NONE, NULL },
	{ "cores", S_TOP, k_cores, 0, ONCE_CORES, NULL },
	{ "memory-limit", S_TOP, k_memory_limit, 0, ONCE_MEMORY_LIMIT, NULL },
	{ "poll-mode", S_TOP, k_poll_mode, 0, ONCE_POLL_MODE, NULL },
	{ "uring-sqpoll", S_TOP, k_uring_sqpoll, 0, ONCE_URING_SQPOLL, NULL },
	{ "log-level", S_TOP, k_log_level, 0, ONCE_LOG_LEVEL, NULL },
	{ "state-dir", S_TOP, k_state_dir, 0, ONCE_STATE_DIR, NULL },
	{ "nop-interval", S_TOP, k_nop, 0, ONCE_NOP_INTERVAL, NULL },
	{ "nop-timeout", S_TOP, k_nop, 0, ONCE_NOP_TIMEOUT, NULL },
	{ "shutdown-timeout", S_TOP, k_nop, 0, ONCE_SHUTDOWN_TIMEOUT, NULL },
	{ "incomingdiscoveryuser", S_TOP, k_account, 0, ONCE_NONE, NULL },
	{ "outgoingdiscoveryuser", S_TOP, k_account, 0, ONCE_DISCOVERY_OUT, NULL },
	{ "default-driver", S_TOP, k_driver, 0, ONCE_DEFAULT_DRIVER, NULL },
	{ "control-socket", S_TOP, k_control_socket, 0, ONCE_CONTROL_SOCKET, NULL },
	{ "metrics", S_TOP, k_metrics, 0, ONCE_METRICS, NULL },
	/* tgt's global keys that have no meaning here */
	{ "ignore-errors", S_TOP, NULL, 0, ONCE_NONE, NULL },
	{ "control-port", S_TOP, NULL, 0, ONCE_NONE, NULL },
	{ "iSNSServerIP", S_TOP, NULL, 0, ONCE_NONE, "lich has no iSNS client" },
	{ "iSNSServerPort", S_TOP, NULL, 0, ONCE_NONE, "lich has no iSNS client" },
	{ "iSNSAccessControl", S_TOP, NULL, 0, ONCE_NONE, "lich has no iSNS client" },
	{ "iSNS", S_TOP, NULL, 0, ONCE_NONE, "lich has no iSNS client" },
	{ "lld", S_TOP | S_TGT, NULL, 0, ONCE_NONE, NULL },
	/* target keys */
	{ "driver", S_TGT, k_driver, 0, ONCE_NONE, NULL },
	{ "backing-store", S_TGT, k_store, 0, ONCE_NONE, NULL },
	{ "direct-store", S_TGT, k_store, 0, ONCE_NONE, NULL },
	{ "initiator-address", S_TGT, k_initiator_address, 0, ONCE_NONE, NULL },
	{ "initiator-name", S_TGT, k_initiator_name, 0, ONCE_NONE, NULL },
	{ "incominguser", S_TGT, k_account, 0, ONCE_NONE, NULL },
	{ "outgoinguser", S_TGT, k_account, 0, ONCE_NONE, NULL },
	{ "lun", S_TGT | S_LUN, k_lun, 0, ONCE_NONE, NULL },
	{ "controller_tid", S_TGT, NULL, 0, ONCE_NONE, "lich numbers targets in file order" },
	TGT_PARAM("MaxRecvDataSegmentLength"), TGT_PARAM("MaxXmitDataSegmentLength"),
	TGT_PARAM("HeaderDigest"), TGT_PARAM("DataDigest"), TGT_PARAM("InitialR2T"),
	TGT_PARAM("MaxOutstandingR2T"), TGT_PARAM("ImmediateData"),
	TGT_PARAM("FirstBurstLength"), TGT_PARAM("MaxBurstLength"),
	TGT_PARAM("DataPDUInOrder"), TGT_PARAM("DataSequenceInOrder"),
	TGT_PARAM("ErrorRecoveryLevel"), TGT_PARAM("IFMarker"), TGT_PARAM("OFMarker"),
	TGT_PARAM("DefaultTime2Wait"), TGT_PARAM("DefaultTime2Retain"),
	TGT_PARAM("OFMarkInt"), TGT_PARAM("IFMarkInt"), TGT_PARAM("MaxConnections"),
	TGT_PARAM("MaxQueueCmd"), TGT_PARAM("TargetAlias"), TGT_PARAM("RDMAExtensions"),
	TGT_PARAM("TargetRecvDataSegmentLength"), TGT_PARAM("InitiatorRecvDataSegmentLength"),
	TGT_PARAM("MaxOutstandingUnexpectedPDUs"),
	/* per-LUN keys (target level = default for the target's LUNs) */
	LUN_OPT("bs-type", S_ALL, LK_BS_TYPE),
	LUN_OPT("size", S_TGT | S_LUN, LK_SIZE),
	LUN_OPT("block-size", S_TGT | S_LUN, LK_BLOCK_SIZE),
	LUN_OPT("write-cache", S_TGT | S_LUN, LK_WRITE_CACHE),
	LUN_OPT("readonly", S_TGT | S_LUN, LK_READONLY),
	LUN_OPT("vendor_id", S_TGT | S_LUN, LK_VENDOR_ID),
	LUN_OPT("product_id", S_TGT | S_LUN, LK_PRODUCT_ID),
	LUN_OPT("product_rev", S_TGT | S_LUN, LK_PRODUCT_REV),
	LUN_OPT("scsi_sn", S_TGT | S_LUN, LK_SCSI_SN),
	LUN_OPT("scsi_id", S_TGT | S_LUN, LK_SCSI_ID),
	/* tgt per-LUN keys lich does not use */
	TGT_LUN("params", NULL),
	TGT_LUN("allow-in-use", NULL),
	TGT_LUN("mode_page", "lich builds its mode pages itself"),
	TGT_LUN("device-type", "lich serves disks only"),
	TGT_LUN("removable", NULL),
	TGT_LUN("sense_format", "lich always sends fixed-format sense"),
	TGT_LUN("path", NULL),
	TGT_LUN("online", NULL),
	TGT_LUN("prevent_removal", NULL),
	TGT_LUN("bsoflags", NULL),
	TGT_LUN("bsopts", NULL),
};

int conf_key(struct conf_parser *p, const char *key, char *raw, const struct conf_where *at)
{
	const struct key_def *k = NULL;
	char desc[300];

	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]) && !k; i++)
		if (strcasecmp(keys[i].name, key) == 0)
			k = &keys[i];
	if (!k)
		return conf_fail(p, at, "unknown key '%s'%s", key, scope_desc(p, desc, sizeof(desc)));
	if (!(k->scopes & (1u << p->depth))) {
		if (p->depth == D_TOP)
			return conf_fail(p, at, "'%s' is only valid inside <target>", k->name);
		if (k->scopes == S_TOP)
			return conf_fail(p, at, "'%s' is a global key, not valid%s", k->name,
					 scope_desc(p, desc, sizeof(desc)));
		return conf_fail(p, at, "'%s' is a target-level key, not valid%s", k->name,
				 scope_desc(p, desc, sizeof(desc)));
	}
	if (!k->fn) {
		log_warn("%s:%d: ignoring '%s': %s", at->file, at->line, k->name,
			 k->note ? k->note : "a tgt option lich does not use");
		return 0;
	}
	if (!*raw)
		return conf_fail(p, at, "'%s' needs a value", k->name);
	if (k->once && p->once[k->once].line)
		return conf_fail(p, at, "'%s' given twice (first at %s:%d)", k->name,
				 p->once[k->once].file, p->once[k->once].line);
	int rc = k->fn(p, k, raw, at);
	if (rc == 0 && k->once)
		p->once[k->once] = *at;
	return rc;
}
