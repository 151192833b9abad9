/* proto.c — request parsing, JSON writer, text tables for lichctl. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "ctl/proto.h"

/* ---- buffer ---- */

void ctl_buf_put(struct ctl_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;

		while (cap < b->len + n + 1)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (!ns) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		ctl_buf_put(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	ctl_buf_put(b, big, (size_t)n);
	free(big);
}

void ctl_buf_free(struct ctl_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* ---- requests ---- */

static int fail(char *err, size_t errlen, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

/* JSON array of strings; words are written to dst (at least len + 1 bytes). */
static int parse_json(const char *s, const char *end, char *dst, struct ctl_req *r,
		      char *err, size_t errlen)
{
	const char *p = s + 1;   /* past '[' */
	bool want_item = true, first = true;

	for (;;) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end)
			return fail(err, errlen, "unterminated JSON array");
		if (*p == ']' && (first || !want_item)) {
			p++;
			break;
		}
		if (!want_item) {
			if (*p != ',')
				return fail(err, errlen, "expected ',' or ']' in the JSON array");
			p++;
			want_item = true;
			continue;
		}
		if (*p != '"')
			return fail(err, errlen, "the JSON array must hold strings only");
		if (r->n == CTL_WORDS_MAX) {
			fail(err, errlen, "too many words");
			return -E2BIG;
		}
		r->w[r->n++] = dst;
		p++;
		for (;;) {
			if (p == end)
				return fail(err, errlen, "unterminated JSON string");
			unsigned char c = (unsigned char)*p++;
			if (c == '"')
				break;
			if (c < 0x20)
				return fail(err, errlen, "control character in a JSON string");
			if (c != '\\') {
				*dst++ = (char)c;
				continue;
			}
			if (p == end)
				return fail(err, errlen, "unterminated JSON string");
			c = (unsigned char)*p++;
			switch (c) {
			case '"': case '\\': case '/': *dst++ = (char)c; break;
			case 'n': *dst++ = '\n'; break;
			case 't': *dst++ = '\t'; break;
			case 'r': *dst++ = '\r'; break;
			case 'b': *dst++ = '\b'; break;
			case 'f': *dst++ = '\f'; break;
			case 'u': {
				int v = 0;
				if (end - p < 4)
					return fail(err, errlen, "short \\u escape");
				for (int i = 0; i < 4; i++) {
					int h = hex_digit(p[i]);
					if (h < 0)
						return fail(err, errlen, "bad \\u escape");
					v = v * 16 + h;
				}
				p += 4;
				if (v == 0 || v > 0x7f)
					return fail(err, errlen, "only ASCII \\u escapes are accepted");
				*dst++ = (char)v;
				break;
			}
			default:
				return fail(err, errlen, "bad escape in a JSON string");
			}
		}
		*dst++ = '\0';
		want_item = false;
		first = false;
	}
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	if (p != end)
		return fail(err, errlen, "text after the JSON array");
	return 0;
}

static int parse_text(const char *p, const char *end, char *dst, struct ctl_req *r,
		      char *err, size_t errlen)
{
	for (;;) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if (p == end)
			return 0;
		if (r->n == CTL_WORDS_MAX) {
			fail(err, errlen, "too many words");
			return -E2BIG;
		}
		r->w[r->n++] = dst;
		if (*p == '"') {
			const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
			if (!q)
				return fail(err, errlen, "unterminated quote");
			memcpy(dst, p + 1, (size_t)(q - p - 1));
			dst += q - p - 1;
			p = q + 1;
			if (p < end && *p != ' ' && *p != '\t' && *p != '\r')
				return fail(err, errlen, "text right after a closing quote");
		} else {
			while (p < end && *p != ' ' && *p != '\t' && *p != '\r') {
				if ((unsigned char)*p < 0x20)
					return fail(err, errlen, "control character in the request");
				*dst++ = *p++;
			}
		}
		*dst++ = '\0';
	}
}

int ctl_req_parse(const char *line, size_t len, struct ctl_req *out, char *err, size_t errlen)
{
	const char *end = line + len;
	struct ctl_req r = { .n = 0 };
	int rc;

	if (len && end[-1] == '\n')
		end--;
	if (memchr(line, '\n', (size_t)(end - line)) || memchr(line, '\0', (size_t)(end - line)))
		return fail(err, errlen, "one request line expected");
	r.store = malloc((size_t)(end - line) + 1);
	if (!r.store)
		return -ENOMEM;
	const char *p = line;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && *p == '[')
		rc = parse_json(p, end, r.store, &r, err, errlen);
	else
		rc = parse_text(p, end, r.store, &r, err, errlen);
	if (rc) {
		free(r.store);
		return rc;
	}
	unsigned k = 0;
	for (unsigned i = 0; i < r.n; i++) {
		if (strcmp(r.w[i], "--json") == 0)
			r.json = true;
		else
			r.w[k++] = r.w[i];
	}
	r.n = k;
	if (r.n == 0) {
		free(r.store);
		return fail(err, errlen, "empty request");
	}
	*out = r;
	return 0;
}

void ctl_req_free(struct ctl_req *r)
{
	free(r->store);
	memset(r, 0, sizeof(*r));
}

/* ---- JSON ---- */

void ctl_json_escape(struct ctl_buf *b, const char *s)
{
	ctl_buf_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			ctl_buf_put(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			ctl_buf_printf(b, "\\u%04x", c);
		} else {
			ctl_buf_put(b, (const char *)&c, 1);
		}
	}
	ctl_buf_put(b, "\"", 1);
}

void cj_init(struct ctl_json *j, struct ctl_buf *b)
{
	memset(j, 0, sizeof(*j));
	j->b = b;
}

static void cj_key(struct ctl_json *j, const char *key)
{
	if (j->has_item[j->depth])
		ctl_buf_put(j->b, ",", 1);
	j->has_item[j->depth] = true;
	if (key) {
		ctl_json_escape(j->b, key);
		ctl_buf_put(j->b, ":", 1);
	}
}

static void cj_open(struct ctl_json *j, const char *key, char c)
{
	cj_key(j, key);
	ctl_buf_put(j->b, &c, 1);
	if (j->depth + 1 < CTL_JSON_DEPTH)
		j->depth++;
	j->has_item[j->depth] = false;
}

void cj_obj(struct ctl_json *j, const char *key) { cj_open(j, key, '{'); }
void cj_arr(struct ctl_json *j, const char *key) { cj_open(j, key, '['); }

static void cj_close(struct ctl_json *j, char c)
{
	ctl_buf_put(j->b, &c, 1);
	if (j->depth)
		j->depth--;
}

void cj_end_obj(struct ctl_json *j) { cj_close(j, '}'); }
void cj_end_arr(struct ctl_json *j) { cj_close(j, ']'); }

void cj_str(struct ctl_json *j, const char *key, const char *v)
{
	cj_key(j, key);
	if (v)
		ctl_json_escape(j->b, v);
	else
		ctl_buf_put(j->b, "null", 4);
}

void cj_u64(struct ctl_json *j, const char *key, uint64_t v)
{
	cj_key(j, key);
	ctl_buf_printf(j->b, "%llu", (unsigned long long)v);
}

void cj_dbl(struct ctl_json *j, const char *key, double v)
{
	cj_key(j, key);
	if (v != v || v > 1e300 || v < -1e300)
		ctl_buf_put(j->b, "null", 4);
	else
		ctl_buf_printf(j->b, "%.3f", v);
}

void cj_bool(struct ctl_json *j, const char *key, bool v)
{
	cj_key(j, key);
	ctl_buf_printf(j->b, "%s", v ? "true" : "false");
}

/* ---- tables ---- */

void ctl_table_init(struct ctl_table *t, unsigned ncols, const char *const *header)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols > CTL_TABLE_COLS ? CTL_TABLE_COLS : ncols;
	ctl_table_row(t, header);
}

void ctl_table_row(struct ctl_table *t, const char *const *cells)
{
	if (t->oom)
		return;
	if ((t->nrows + 1) * t->ncols > t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : t->ncols * 8;
		while (cap < (t->nrows + 1) * t->ncols)
			cap *= 2;
		char **c = realloc(t->cells, cap * sizeof(*c));
		if (!c) {
			t->oom = true;
			return;
		}
		t->cells = c;
		t->cap = cap;
	}
	char **row = &t->cells[t->nrows * t->ncols];
	for (unsigned i = 0; i < t->ncols; i++) {
		row[i] = strdup(cells[i] ? cells[i] : "");
		if (!row[i]) {
			while (i--)
				free(row[i]);
			t->oom = true;
			return;
		}
	}
	t->nrows++;
}

void ctl_table_rowf(struct ctl_table *t, const char *fmt, ...)
{
	char line[4096];
	const char *cells[CTL_TABLE_COLS] = { 0 };
	va_list ap;
	unsigned n = 0;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	char *p = line;
	while (n < t->ncols) {
		cells[n++] = p;
		char *tab = strchr(p, '\t');
		if (!tab)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	ctl_table_row(t, cells);
}

void ctl_table_render(const struct ctl_table *t, struct ctl_buf *out)
{
	size_t w[CTL_TABLE_COLS] = { 0 };

	for (unsigned r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols; c++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);
			if (n > w[c])
				w[c] = n;
		}
	for (unsigned r = 0; r < t->nrows; r++) {
		/* the last non-empty cell ends the line: no trailing blanks */
		unsigned last = 0;
		for (unsigned c = 0; c < t->ncols; c++)
			if (t->cells[r * t->ncols + c][0])
				last = c;
		for (unsigned c = 0; c <= last; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (c == last)
				ctl_buf_printf(out, "%s", s);
			else
				ctl_buf_printf(out, "%-*s  ", (int)w[c], s);
		}
		ctl_buf_put(out, "\n", 1);
	}
}

void ctl_table_free(struct ctl_table *t)
{
	for (unsigned i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

void ctl_human_bytes(uint64_t v, char *out, size_t n)
{
	static const char units[] = "KMGTPE";

	if (v < 1024) {
		snprintf(out, n, "%llu", (unsigned long long)v);
		return;
	}
	double d = (double)v;
	unsigned u = 0;
	d /= 1024;
	while (d >= 1024 && u < sizeof(units) - 2) {
		d /= 1024;
		u++;
	}
	snprintf(out, n, "%.1f%c", d, units[u]);
}
