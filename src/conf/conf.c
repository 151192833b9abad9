/* conf.c — reads targets.conf: files and includes, physical and logical
 * lines, comments, <block> tags. Keys are handed to conf_keys.c.
 *
 * The dialect is the one tgt-admin reads through Perl's Config::General:
 *   - one directive per line: "key value...", "key = value" also accepted;
 *   - '#' starts a comment at the start of a line or after white space,
 *     outside double quotes; "\#" is a literal '#';
 *   - a line ending in '\' continues on the next one;
 *   - <target NAME> ... </target> holding directives and
 *     <backing-store PATH> / <direct-store PATH> ... </...> blocks;
 *   - include PATTERN (glob, relative to the including file), anywhere.
 * Blocks must be closed in the file that opened them, so every message can
 * point at one place.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf_int.h"

#define INCLUDE_DEPTH_MAX 8
#define CONF_FILE_MAX (16u << 20)     /* a config file larger than this is a mistake */

int conf_fail(struct conf_parser *p, const struct conf_where *at, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!p->err || p->errlen == 0)
		return -EINVAL;
	if (at && at->line > 0)
		n = snprintf(p->err, p->errlen, "%s:%d: ", at->file, at->line);
	else if (at)
		n = snprintf(p->err, p->errlen, "%s: ", at->file);
	if (n < 0 || (size_t)n >= p->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int conf_oom(struct conf_parser *p, const struct conf_where *at)
{
	conf_fail(p, at, "out of memory");
	return -ENOMEM;
}

int conf_grow(void *arrp, unsigned n, size_t elem_size)
{
	void **arr = arrp;

	/* capacity is 4, then doubles: reallocate only when n hits it */
	if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
		return 0;
	size_t cap = n ? (size_t)n * 2 : 4;
	void *q = realloc(*arr, cap * elem_size);
	if (!q)
		return -ENOMEM;
	*arr = q;
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static char *trim(char *s)
{
	while (is_space(*s))
		s++;
	size_t n = strlen(s);
	while (n && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Cuts a comment off a physical line, in place. */
static void strip_comment(char *s)
{
	bool quoted = false;
	char *w = s;

	for (char *r = s; *r; r++) {
		if (*r == '"') {
			quoted = !quoted;
		} else if (*r == '\\' && r[1] == '#') {
			*w++ = '#';
			r++;
			continue;
		} else if (*r == '#' && !quoted && (r == s || is_space(r[-1]))) {
			break;
		}
		*w++ = *r;
	}
	*w = '\0';
}

const char *conf_unquote(char *s, char **out)
{
	size_t n = strlen(s);

	if (n && s[0] == '"') {
		if (n < 2 || s[n - 1] != '"')
			return "unterminated quote";
		s[n - 1] = '\0';
		if (strchr(s + 1, '"'))
			return "stray '\"' inside a quoted value";
		*out = s + 1;
		return NULL;
	}
	*out = s;
	return NULL;
}

static const char *const lun_blocks[] = { "backing-store", "direct-store" };

static const char *lun_block_kind(const char *name)
{
	for (unsigned i = 0; i < 2; i++)
		if (strcasecmp(name, lun_blocks[i]) == 0)
			return lun_blocks[i];
	return NULL;
}

static int open_block(struct conf_parser *p, const char *name, char *arg,
		      const struct conf_where *at)
{
	const char *kind = lun_block_kind(name);
	const char *why;
	char *val;

	if (strcasecmp(name, "target") != 0 && !kind)
		return conf_fail(p, at, "unknown block <%s> (expected <target>, "
				 "<backing-store> or <direct-store>)", name);
	if ((why = conf_unquote(arg, &val)))
		return conf_fail(p, at, "<%s ...>: %s", name, why);
	if (kind) {
		if (p->depth == D_TOP)
			return conf_fail(p, at, "<%s> outside <target>", kind);
		if (p->depth == D_LUN)
			return conf_fail(p, at, "<%s> inside <%s> opened at %s:%d", kind,
					 p->blk_kind, p->pl[p->npl - 1].at.file,
					 p->pl[p->npl - 1].at.line);
		if (!*val)
			return conf_fail(p, at, "<%s> needs a path", kind);
		int rc = conf_lun_open(p, kind, val, at);
		if (rc)
			return rc;
		p->blk_kind = kind;
		p->depth = D_LUN;
		return 0;
	}
	if (p->depth != D_TOP)
		return conf_fail(p, at, "<target> inside <target %s> opened at %s:%d",
				 p->cur.name, p->cur_at.file, p->cur_at.line);
	if (!*val)
		return conf_fail(p, at, "<target> needs an iSCSI name");
	if ((why = conf_check_iscsi_name(val)))
		return conf_fail(p, at, "bad target name '%s': %s", val, why);
	for (unsigned i = 0; i < p->cfg->ntargets; i++)
		if (strcasecmp(p->cfg->targets[i].name, val) == 0)
			return conf_fail(p, at, "duplicate target '%s' (first defined at %s:%d)",
					 val, p->target_at[i].file, p->target_at[i].line);
	p->cur.name = strdup(val);
	if (!p->cur.name)
		return conf_oom(p, at);
	p->cur.line = at->line;
	p->cur_at = *at;
	p->depth = D_TARGET;
	return 0;
}

static int close_block(struct conf_parser *p, const char *name, const struct conf_where *at)
{
	const char *kind = lun_block_kind(name);
	bool mine = p->depth > p->src->entry_depth;   /* innermost block opened in this file */

	if (strcasecmp(name, "target") != 0 && !kind)
		return conf_fail(p, at, "unknown block </%s>", name);
	if (kind) {
		if (p->depth != D_LUN)
			return conf_fail(p, at, "stray </%s> (no <%s> is open)", kind, kind);
		if (!mine)
			return conf_fail(p, at, "</%s> cannot close a block opened in another file",
					 kind);
		if (kind != p->blk_kind)
			return conf_fail(p, at, "</%s> does not match <%s> opened at %s:%d",
					 kind, p->blk_kind, p->pl[p->npl - 1].at.file,
					 p->pl[p->npl - 1].at.line);
		p->depth = D_TARGET;
		p->blk_kind = NULL;
		return 0;
	}
	if (p->depth == D_TOP)
		return conf_fail(p, at, "stray </target> (no <target> is open)");
	if (p->depth == D_LUN)
		return conf_fail(p, at, "</target> while <%s> opened at %s:%d is not closed",
				 p->blk_kind, p->pl[p->npl - 1].at.file, p->pl[p->npl - 1].at.line);
	if (!mine)
		return conf_fail(p, at, "</target> cannot close a block opened in another file");
	return conf_target_finish(p);
}

/* "<name arg>" or "</name>", already trimmed, starting with '<'. */
static int parse_tag(struct conf_parser *p, char *s, const struct conf_where *at)
{
	size_t n = strlen(s);

	if (n < 3 || s[n - 1] != '>')
		return conf_fail(p, at, "malformed tag '%s' (expected <NAME ARG> or </NAME>)", s);
	s[n - 1] = '\0';
	s = trim(s + 1);
	if (*s == '/') {
		char *name = trim(s + 1);

		if (!*name || strpbrk(name, " \t"))
			return conf_fail(p, at, "malformed closing tag '</%s>'", name);
		return close_block(p, name, at);
	}
	char *arg = s;
	while (*arg && !is_space(*arg))
		arg++;
	if (*arg)
		*arg++ = '\0';
	return open_block(p, s, trim(arg), at);
}

static int parse_line(struct conf_parser *p, char *s, int lineno)
{
	struct conf_where at = { p->src->name, lineno };

	s = trim(s);
	if (!*s)
		return 0;
	if (*s == '<')
		return parse_tag(p, s, &at);
	/* key, then white space and/or '=', then the value */
	char *key = s;
	while (*s && !is_space(*s) && *s != '=')
		s++;
	char *end = s;
	while (is_space(*s))
		s++;
	if (*s == '=')
		s++;
	*end = '\0';
	if (!*key)
		return conf_fail(p, &at, "line starts with '=' (expected 'key value')");
	return conf_key(p, key, trim(s), &at);
}

/* Splits buf (len bytes, one spare byte after them) into logical lines. */
static int parse_buffer(struct conf_parser *p, char *buf, size_t len)
{
	char *acc = NULL;            /* a logical line continued with '\' */
	size_t acc_len = 0, acc_cap = 0;
	int acc_line = 0, lineno = 0, rc = 0;
	size_t off = 0;

	while (off < len && rc == 0) {
		char *ln = buf + off;
		char *nl = memchr(ln, '\n', len - off);
		size_t n = nl ? (size_t)(nl - ln) : len - off;

		off += n + (nl ? 1 : 0);
		lineno++;
		if (memchr(ln, '\0', n)) {
			struct conf_where at = { p->src->name, lineno };
			rc = conf_fail(p, &at, "NUL byte in line (not a text file?)");
			break;
		}
		ln[n] = '\0';
		strip_comment(ln);
		n = strlen(ln);
		while (n && is_space(ln[n - 1]))
			ln[--n] = '\0';
		bool cont = n && ln[n - 1] == '\\';
		if (cont)
			ln[--n] = '\0';
		if (!cont && acc_len == 0) {
			rc = parse_line(p, ln, lineno);
			continue;
		}
		if (acc_len + n + 2 > acc_cap) {
			size_t cap = (acc_len + n + 2) * 2;
			char *q = realloc(acc, cap);
			if (!q) {
				struct conf_where at = { p->src->name, lineno };
				rc = conf_oom(p, &at);
				break;
			}
			acc = q;
			acc_cap = cap;
		}
		if (acc_len == 0)
			acc_line = lineno;
		memcpy(acc + acc_len, ln, n);
		acc_len += n;
		acc[acc_len++] = ' ';
		acc[acc_len] = '\0';
		if (!cont) {
			rc = parse_line(p, acc, acc_line);
			acc_len = 0;
		}
	}
	if (rc == 0 && acc_len)
		rc = parse_line(p, acc, acc_line);
	free(acc);
	return rc;
}

/* Whole file into memory with one spare byte; -errno. */
static int read_all(const char *path, char **out, size_t *outlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (len + 1 >= cap) {
			char *q = cap >= CONF_FILE_MAX ? NULL : realloc(buf, cap * 2);
			if (!q) {
				free(buf);
				close(fd);
				return cap >= CONF_FILE_MAX ? -EFBIG : -ENOMEM;
			}
			buf = q;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

static const char *intern(struct conf_parser *p, const char *name)
{
	if (conf_grow(&p->names, p->nnames, sizeof(*p->names)))
		return NULL;
	char *s = strdup(name);
	if (!s)
		return NULL;
	p->names[p->nnames++] = s;
	return s;
}

static int unclosed(struct conf_parser *p)
{
	if (p->depth == D_LUN)
		return conf_fail(p, &p->pl[p->npl - 1].at, "<%s> block not closed (opened here)",
				 p->blk_kind);
	return conf_fail(p, &p->cur_at, "<target> block not closed (opened here)");
}

/* Reads one file; `from` is the include line (NULL for the top file). */
static int parse_file(struct conf_parser *p, const char *path, const struct conf_where *from)
{
	struct conf_source src = { .up = p->src, .entry_depth = p->depth };
	char *buf = NULL;
	size_t len = 0;
	int rc;

	src.level = p->src ? p->src->level + 1 : 0;
	if (src.level > INCLUDE_DEPTH_MAX)
		return conf_fail(p, from, "includes nested deeper than %d files", INCLUDE_DEPTH_MAX);
	rc = read_all(path, &buf, &len);
	if (rc) {
		struct conf_where top = { path, 0 };
		if (from)
			conf_fail(p, from, "include '%s': %s", path, strerror(-rc));
		else
			conf_fail(p, &top, "%s", strerror(-rc));
		return rc;
	}
	src.real = realpath(path, NULL);
	for (struct conf_source *s = p->src; s && src.real; s = s->up) {
		if (s->real && strcmp(s->real, src.real) == 0) {
			rc = conf_fail(p, from, "include cycle: '%s' is already being read", path);
			goto out;
		}
	}
	src.name = intern(p, path);
	char *d = strdup(path);
	if (!src.name || !d) {
		free(d);
		rc = conf_oom(p, from);
		goto out;
	}
	src.dir = strdup(dirname(d));
	free(d);
	if (!src.dir) {
		rc = conf_oom(p, from);
		goto out;
	}
	p->src = &src;
	rc = parse_buffer(p, buf, len);
	if (rc == 0 && p->depth > src.entry_depth)
		rc = unclosed(p);
	p->src = src.up;
out:
	free(src.dir);
	free(src.real);
	free(buf);
	return rc;
}

/* Backslash-escapes glob's special characters, so a directory named "a*b"
 * is taken literally when it prefixes a pattern. */
static char *glob_escape_dir(const char *dir)
{
	size_t n = strlen(dir);
	char *out = malloc(2 * n + 2), *w = out;

	if (!out)
		return NULL;
	for (const char *r = dir; *r; r++) {
		if (strchr("*?[\\", *r))
			*w++ = '\\';
		*w++ = *r;
	}
	*w++ = '/';
	*w = '\0';
	return out;
}

int conf_include(struct conf_parser *p, const char *pattern, const struct conf_where *at)
{
	bool relative = pattern[0] != '/' && p->src->dir && strcmp(p->src->dir, ".") != 0;
	char *full = NULL;
	glob_t g;
	int rc = 0;

	if (!strpbrk(pattern, "*?[")) {
		/* a plain file name: it must exist */
		if (!relative)
			return parse_file(p, pattern, at);
		if (asprintf(&full, "%s/%s", p->src->dir, pattern) < 0)
			return conf_oom(p, at);
		rc = parse_file(p, full, at);
		free(full);
		return rc;
	}
	if (relative) {
		char *pre = glob_escape_dir(p->src->dir);
		if (!pre || asprintf(&full, "%s%s", pre, pattern) < 0) {
			free(pre);
			return conf_oom(p, at);
		}
		free(pre);
	}
	int g_rc = glob(full ? full : pattern, 0, NULL, &g);
	free(full);
	if (g_rc == GLOB_NOMATCH) {
		log_info("%s:%d: include '%s' matches no file", at->file, at->line, pattern);
		return 0;
	}
	if (g_rc == GLOB_NOSPACE)
		return conf_oom(p, at);
	if (g_rc != 0)
		return conf_fail(p, at, "include '%s': cannot read the directory", pattern);
	for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
		struct stat st;

		/* a pattern like conf.d/ * may match sub-directories: skip them */
		if (stat(g.gl_pathv[i], &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		rc = parse_file(p, g.gl_pathv[i], at);
	}
	globfree(&g);
	return rc;
}

static struct config *config_new(const char *path)
{
	struct config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->path = strdup(path);
	c->state_dir = strdup("/var/lib/lich");
	/* the environment may move the default (tests, several lichd on one host) */
	const char *sock = getenv("LICH_CONTROL_SOCKET");
	c->control_socket = strdup(sock && sock[0] == '/' ? sock : "/run/lich/lichd.sock");
	if (!c->path || !c->state_dir || !c->control_socket) {
		conf_free(c);
		return NULL;
	}
	c->ncores = 1;
	c->cores[0] = 0;
	c->memory_limit = (size_t)1 << 30;
	c->poll_mode = POLL_ADAPTIVE;
	c->log_level = LOG_LVL_INFO;
	c->nop_interval = 30;
	c->nop_timeout = 30;
	c->shutdown_timeout = 5;
	return c;
}

static void parser_done(struct conf_parser *p)
{
	conf_pending_clear(p);
	conf_target_clear(&p->cur);
	for (unsigned i = 0; i < p->nnames; i++)
		free(p->names[i]);
	free(p->names);
	free(p->target_at);
}

/* Defaults that depend on what the file said. */
static int finish_config(struct conf_parser *p)
{
	struct config *c = p->cfg;

	if (c->nportals == 0) {
		if (conf_grow(&c->portals, 0, sizeof(*c->portals)))
			return conf_oom(p, NULL);
		conf_parse_portal("0.0.0.0:3260", &c->portals[0]);
		c->nportals = 1;
	}
	return 0;
}

/* text: a mutable copy the parser may cut up; path: the file it came from
 * (NULL for conf_parse_string). */
static int load(const char *name, const char *path, char *text, size_t len,
		struct config **out, char *err, size_t errlen)
{
	struct conf_parser p = { .err = err, .errlen = errlen };
	int rc;

	if (err && errlen)
		err[0] = '\0';
	p.cfg = config_new(name);
	if (!p.cfg) {
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	if (path) {
		rc = parse_file(&p, path, NULL);
	} else {
		struct conf_source src = { .name = intern(&p, name) };
		if (!src.name) {
			struct conf_where at = { name, 0 };
			rc = conf_oom(&p, &at);
		} else {
			p.src = &src;
			rc = parse_buffer(&p, text, len);
			if (rc == 0 && p.depth != D_TOP)
				rc = unclosed(&p);
			p.src = NULL;
		}
	}
	if (rc == 0)
		rc = finish_config(&p);
	parser_done(&p);
	if (rc) {
		conf_free(p.cfg);
		return rc;
	}
	*out = p.cfg;
	return 0;
}

int conf_load(const char *path, struct config **out, char *err, size_t errlen)
{
	return load(path, path, NULL, 0, out, err, errlen);
}

int conf_parse_string(const char *text, const char *name, struct config **out,
		      char *err, size_t errlen)
{
	size_t len = strlen(text);
	char *copy = malloc(len + 1);
	int rc;

	if (!copy) {
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	memcpy(copy, text, len + 1);
	rc = load(name, NULL, copy, len, out, err, errlen);
	free(copy);
	return rc;
}

void conf_free(struct config *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->ntargets; i++)
		conf_target_clear(&c->targets[i]);
	free(c->targets);
	for (unsigned i = 0; i < c->n_discovery_incoming; i++) {
		free(c->discovery_incoming[i].user);
		free(c->discovery_incoming[i].secret);
	}
	free(c->discovery_incoming);
	if (c->discovery_outgoing) {
		free(c->discovery_outgoing->user);
		free(c->discovery_outgoing->secret);
		free(c->discovery_outgoing);
	}
	free(c->portals);
	free(c->iser_portals);
	free(c->state_dir);
	free(c->control_socket);
	free(c->path);
	free(c);
}

const struct conf_target *conf_find_target(const struct config *c, const char *name)
{
	for (unsigned i = 0; c && name && i < c->ntargets; i++)
		if (strcasecmp(c->targets[i].name, name) == 0)
			return &c->targets[i];
	return NULL;
}
