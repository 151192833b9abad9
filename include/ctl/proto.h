/* proto.h — the lichctl protocol and its text helpers (no sockets here).
 *
 * Transport: a SOCK_STREAM UNIX socket (control-socket); one request per
 * connection. The client sends one line (at most CTL_REQ_MAX bytes with the
 * '\n'), either
 *   a JSON array of strings:   ["lun","add","iqn...:d1","2","/tmp/x.img","--size","64M"]
 *   or simple text:            lun add iqn...:d1 2 /tmp/x.img --size 64M
 * (words separated by blanks, "double quotes" around a word with blanks).
 * The word --json anywhere asks for JSON output instead of text tables.
 * The server answers with one status line, "ok" or "error: MESSAGE", then
 * the body (text or JSON, may be empty), and closes the connection.
 *
 * Helpers: a growable buffer, a JSON writer (correct escaping, commas handled
 * by nesting level) and an aligned text table.
 */
#ifndef LICH_CTL_PROTO_H
#define LICH_CTL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_REQ_MAX   65536
#define CTL_WORDS_MAX 32

struct ctl_req {
	char *w[CTL_WORDS_MAX];
	unsigned n;
	bool json;                  /* --json was given (and removed from w[]) */
	char *store;                /* the words' bytes (owned) */
};

/* Parses one request line (without or with its '\n'). 0, or -EINVAL with a
 * reason in err; -E2BIG for more than CTL_WORDS_MAX words; -ENOMEM. */
int ctl_req_parse(const char *line, size_t len, struct ctl_req *out, char *err, size_t errlen);
void ctl_req_free(struct ctl_req *r);

/* Growable text; after an allocation failure it stays truncated and
 * b->oom is set. */
struct ctl_buf {
	char *s;
	size_t len, cap;
	bool oom;
};
void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_buf_put(struct ctl_buf *b, const char *s, size_t n);
void ctl_buf_free(struct ctl_buf *b);

/* JSON writer: key is NULL inside arrays and at the top. */
#define CTL_JSON_DEPTH 16
struct ctl_json {
	struct ctl_buf *b;
	unsigned depth;
	bool has_item[CTL_JSON_DEPTH];
};
void cj_init(struct ctl_json *j, struct ctl_buf *b);
void cj_obj(struct ctl_json *j, const char *key);     /* { */
void cj_arr(struct ctl_json *j, const char *key);     /* [ */
void cj_end_obj(struct ctl_json *j);
void cj_end_arr(struct ctl_json *j);
void cj_str(struct ctl_json *j, const char *key, const char *v);   /* v NULL: null */
void cj_u64(struct ctl_json *j, const char *key, uint64_t v);
void cj_dbl(struct ctl_json *j, const char *key, double v);
void cj_bool(struct ctl_json *j, const char *key, bool v);
/* A JSON string literal of s (quotes included). */
void ctl_json_escape(struct ctl_buf *b, const char *s);

/* Text table: columns left aligned, two blanks apart, no trailing blanks. */
#define CTL_TABLE_COLS 16
struct ctl_table {
	unsigned ncols, nrows, cap;
	char **cells;               /* nrows * ncols, row 0 = header */
	bool oom;
};
void ctl_table_init(struct ctl_table *t, unsigned ncols, const char *const *header);
void ctl_table_row(struct ctl_table *t, const char *const *cells);
/* printf-style cells: fmt holds one conversion per cell separated by '\t'. */
void ctl_table_rowf(struct ctl_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_table_render(const struct ctl_table *t, struct ctl_buf *out);
void ctl_table_free(struct ctl_table *t);

/* JSON reader (lichctl reads lichd's --json answers): a tree of values,
 * malloc'ed, members and elements in document order. */
enum cjv_type { CJV_NULL, CJV_BOOL, CJV_NUM, CJV_STR, CJV_ARR, CJV_OBJ };
struct cjv {
	enum cjv_type type;
	char *key;                  /* member name when inside an object */
	char *str;                  /* CJV_STR, unescaped, NUL-terminated */
	double num;                 /* CJV_NUM */
	uint64_t u;                 /* CJV_NUM that is a non-negative integer, else 0 */
	bool b;                     /* CJV_BOOL */
	struct cjv *child, *next;   /* CJV_ARR/CJV_OBJ: first element; siblings */
};
/* 0 and *out, or -EINVAL with a reason in err; -ENOMEM. */
int cjv_parse(const char *s, size_t len, struct cjv **out, char *err, size_t errlen);
void cjv_free(struct cjv *v);
/* Member key of an object; NULL if obj is not an object or has no such key. */
const struct cjv *cjv_get(const struct cjv *obj, const char *key);
uint64_t cjv_u64(const struct cjv *obj, const char *key);       /* 0 if absent */
const char *cjv_str(const struct cjv *obj, const char *key);    /* NULL if absent */

/* "1.5K", "64.0M", "3.2G": bytes for humans (powers of 1024). */
void ctl_human_bytes(uint64_t v, char *out, size_t n);

#endif
