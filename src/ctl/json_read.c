/* json_read.c — a small JSON reader for lichctl (a tree of values). See
 * ctl/proto.h. Used on the client side only, never on lichd's I/O path, so it
 * allocates with malloc. Recursive descent, depth bounded by CJV_DEPTH. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "ctl/proto.h"

#define CJV_DEPTH 32

struct reader {
	const char *p, *end;
	char *err;
	size_t errlen;
};

static int bad(struct reader *r, const char *what)
{
	snprintf(r->err, r->errlen, "bad JSON: %s", what);
	return -EINVAL;
}

static void skip_ws(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static int hex4(struct reader *r, unsigned *out)
{
	unsigned v = 0;

	if (r->end - r->p < 4)
		return bad(r, "short \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = *r->p++;
		int d = hex_digit(c);

		if (d < 0)
			return bad(r, "bad \\u escape");
		v = v << 4 | (unsigned)d;
	}
	*out = v;
	return 0;
}

/* UTF-8 of code point cp into d (room for 4 bytes); returns bytes written. */
static size_t put_utf8(char *d, unsigned cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xc0 | (cp >> 6));
		d[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xe0 | (cp >> 12));
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		d[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (char)(0xf0 | (cp >> 18));
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	d[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* At the opening quote; a decoded, NUL-terminated copy (never longer than
 * the escaped text, so the source length bounds the allocation). */
static int read_string(struct reader *r, char **out)
{
	const char *q = ++r->p;

	while (q < r->end && *q != '"')
		q += (*q == '\\' && q + 1 < r->end) ? 2 : 1;
	if (q >= r->end)
		return bad(r, "unterminated string");
	char *s = malloc((size_t)(q - r->p) + 1), *d = s;
	if (!s)
		return -ENOMEM;
	while (r->p < q) {
		char c = *r->p++;
		if ((unsigned char)c < 0x20) {
			free(s);
			return bad(r, "control character in a string");
		}
		if (c != '\\') {
			*d++ = c;
			continue;
		}
		c = *r->p++;
		unsigned cp, lo;
		switch (c) {
		case '"': case '\\': case '/': *d++ = c; break;
		case 'b': *d++ = '\b'; break;
		case 'f': *d++ = '\f'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case 't': *d++ = '\t'; break;
		case 'u':
			if (q - r->p < 4 || hex4(r, &cp)) {
				bad(r, "bad \\u escape");
				goto fail;
			}
			/* a surrogate pair (12 escaped bytes) gives 4 UTF-8 bytes */
			if (cp >= 0xd800 && cp < 0xdc00 && q - r->p >= 6 && r->p[0] == '\\' &&
			    r->p[1] == 'u') {
				r->p += 2;
				if (hex4(r, &lo))
					goto fail;
				if (lo < 0xdc00 || lo > 0xdfff) {
					bad(r, "bad surrogate pair");
					goto fail;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			d += put_utf8(d, cp);
			break;
		default:
			bad(r, "bad escape");
			goto fail;
		}
	}
	*d = '\0';
	r->p = q + 1;
	*out = s;
	return 0;
fail:
	free(s);
	return -EINVAL;
}

static int read_value(struct reader *r, struct cjv *v, unsigned depth);

/* At '[' or '{': reads the members into v->child (in order). */
static int read_container(struct reader *r, struct cjv *v, unsigned depth)
{
	bool obj = *r->p == '{';
	char close = obj ? '}' : ']';
	struct cjv **tail = &v->child;

	if (depth >= CJV_DEPTH)
		return bad(r, "nested too deep");
	v->type = obj ? CJV_OBJ : CJV_ARR;
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return 0;
	}
	for (;;) {
		struct cjv *m = calloc(1, sizeof(*m));
		int rc;
		if (!m)
			return -ENOMEM;
		*tail = m;
		tail = &m->next;
		skip_ws(r);
		if (obj) {
			if (r->p >= r->end || *r->p != '"')
				return bad(r, "member name expected");
			if ((rc = read_string(r, &m->key)))
				return rc;
			skip_ws(r);
			if (r->p >= r->end || *r->p != ':')
				return bad(r, "':' expected");
			r->p++;
		}
		if ((rc = read_value(r, m, depth + 1)))
			return rc;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == close) {
			r->p++;
			return 0;
		}
		return bad(r, obj ? "',' or '}' expected" : "',' or ']' expected");
	}
}

static bool word(struct reader *r, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n))
		return false;
	r->p += n;
	return true;
}

static int read_number(struct reader *r, struct cjv *v)
{
	char buf[64], *e;
	size_t n = 0;

	while (r->p + n < r->end && n < sizeof(buf) - 1 && r->p[n] &&
	       strchr("+-0123456789.eE", r->p[n]))
		n++;
	if (!n || n == sizeof(buf) - 1)
		return bad(r, "bad number");
	memcpy(buf, r->p, n);
	buf[n] = '\0';
	v->type = CJV_NUM;
	v->num = strtod(buf, &e);
	if (*e)
		return bad(r, "bad number");
	/* counters are 64-bit integers: keep them exact too */
	if (buf[0] != '-' && !strpbrk(buf, ".eE")) {
		errno = 0;
		v->u = strtoull(buf, &e, 10);
		if (errno || *e)
			v->u = 0;
	}
	r->p += n;
	return 0;
}

static int read_value(struct reader *r, struct cjv *v, unsigned depth)
{
	skip_ws(r);
	if (r->p >= r->end)
		return bad(r, "value expected");
	switch (*r->p) {
	case '{': case '[':
		return read_container(r, v, depth);
	case '"':
		v->type = CJV_STR;
		return read_string(r, &v->str);
	case 't': case 'f':
		v->type = CJV_BOOL;
		v->b = *r->p == 't';
		return word(r, v->b ? "true" : "false") ? 0 : bad(r, "bad literal");
	case 'n':
		v->type = CJV_NULL;
		return word(r, "null") ? 0 : bad(r, "bad literal");
	default:
		return read_number(r, v);
	}
}

int cjv_parse(const char *s, size_t len, struct cjv **out, char *err, size_t errlen)
{
	struct reader r = { .p = s, .end = s + len, .err = err, .errlen = errlen };
	struct cjv *v = calloc(1, sizeof(*v));
	int rc;

	if (!v)
		return -ENOMEM;
	rc = read_value(&r, v, 0);
	if (!rc) {
		skip_ws(&r);
		if (r.p != r.end)
			rc = bad(&r, "trailing bytes after the value");
	}
	if (rc) {
		cjv_free(v);
		return rc;
	}
	*out = v;
	return 0;
}

void cjv_free(struct cjv *v)
{
	while (v) {
		struct cjv *next = v->next;
		cjv_free(v->child);
		free(v->key);
		free(v->str);
		free(v);
		v = next;
	}
}

const struct cjv *cjv_get(const struct cjv *obj, const char *key)
{
	if (!obj || obj->type != CJV_OBJ)
		return NULL;
	for (const struct cjv *m = obj->child; m; m = m->next)
		if (strcmp(m->key, key) == 0)
			return m;
	return NULL;
}

uint64_t cjv_u64(const struct cjv *obj, const char *key)
{
	const struct cjv *m = cjv_get(obj, key);

	return m && m->type == CJV_NUM ? m->u : 0;
}

const char *cjv_str(const struct cjv *obj, const char *key)
{
	const struct cjv *m = cjv_get(obj, key);

	return m && m->type == CJV_STR ? m->str : NULL;
}
