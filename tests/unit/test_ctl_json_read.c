/* test_ctl_json_read.c — the JSON reader lichctl uses for "stats --interval":
 * values of every type, escapes (also \u and surrogate pairs), exact 64-bit
 * integers, what the JSON writer produces reads back, and malformed input
 * refused with a reason (never read past the given length). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/proto.h"

static struct cjv *parse_ok(const char *s)
{
	struct cjv *v = NULL;
	char err[128] = "";

	int rc = cjv_parse(s, strlen(s), &v, err, sizeof(err));
	if (rc)
		fail_msg("cjv_parse(%s): %d %s", s, rc, err);
	return v;
}

static void test_values(void **st)
{
	(void)st;
	struct cjv *v = parse_ok(" {\"a\": [1, -2.5, true, false, null, \"x\"], \"b\": {}, \"c\": [] } ");
	const struct cjv *a = cjv_get(v, "a"), *e;

	assert_int_equal(v->type, CJV_OBJ);
	assert_non_null(a);
	assert_int_equal(a->type, CJV_ARR);
	e = a->child;
	assert_int_equal(e->type, CJV_NUM);
	assert_int_equal(e->u, 1);
	e = e->next;
	assert_int_equal(e->type, CJV_NUM);
	assert_true(e->num == -2.5);
	assert_int_equal(e->u, 0);
	e = e->next;
	assert_true(e->type == CJV_BOOL && e->b);
	e = e->next;
	assert_true(e->type == CJV_BOOL && !e->b);
	e = e->next;
	assert_int_equal(e->type, CJV_NULL);
	e = e->next;
	assert_int_equal(e->type, CJV_STR);
	assert_string_equal(e->str, "x");
	assert_null(e->next);
	assert_int_equal(cjv_get(v, "b")->type, CJV_OBJ);
	assert_null(cjv_get(v, "b")->child);
	assert_int_equal(cjv_get(v, "c")->type, CJV_ARR);
	assert_null(cjv_get(v, "missing"));
	assert_null(cjv_get(a, "a"));              /* not an object */
	assert_int_equal(cjv_u64(v, "missing"), 0);
	assert_null(cjv_str(v, "a"));              /* not a string */
	cjv_free(v);
}

static void test_u64_exact(void **st)
{
	(void)st;
	struct cjv *v = parse_ok("{\"n\":18446744073709551615,\"m\":9007199254740993}");

	assert_true(cjv_u64(v, "n") == UINT64_MAX);
	assert_true(cjv_u64(v, "m") == 9007199254740993ull);   /* not a double */
	cjv_free(v);
}

static void test_escapes(void **st)
{
	(void)st;
	struct cjv *v = parse_ok("[\"q\\\"b\\\\s\\/n\\nt\\t\", \"\\u00e9\\u20ac\", \"\\ud83d\\ude00\"]");
	const struct cjv *e = v->child;

	assert_string_equal(e->str, "q\"b\\s/n\nt\t");
	assert_string_equal(e->next->str, "\xc3\xa9\xe2\x82\xac");
	assert_string_equal(e->next->next->str, "\xf0\x9f\x98\x80");
	cjv_free(v);
}

/* What lichd writes (cj_*), lichctl reads back. */
static void test_writer_roundtrip(void **st)
{
	(void)st;
	struct ctl_buf b = { 0 };
	struct ctl_json j;

	cj_init(&j, &b);
	cj_obj(&j, NULL);
	cj_arr(&j, "luns");
	cj_obj(&j, NULL);
	cj_str(&j, "target", "iqn.x:\"odd\"\n\x01name");
	cj_u64(&j, "read_ops", 123456789012345ull);
	cj_dbl(&j, "p50", 12.5);
	cj_str(&j, "none", NULL);
	cj_end_obj(&j);
	cj_end_arr(&j);
	cj_end_obj(&j);
	struct cjv *v = parse_ok(b.s);
	const struct cjv *l = cjv_get(v, "luns")->child;
	assert_string_equal(cjv_str(l, "target"), "iqn.x:\"odd\"\n\x01name");
	assert_true(cjv_u64(l, "read_ops") == 123456789012345ull);
	assert_true(cjv_get(l, "p50")->num == 12.5);
	assert_int_equal(cjv_get(l, "none")->type, CJV_NULL);
	cjv_free(v);
	ctl_buf_free(&b);
}

static void test_malformed(void **st)
{
	(void)st;
	static const char *const bad[] = {
		"", "{", "[1,]", "[1 2]", "{\"a\" 1}", "{a:1}", "\"abc", "\"a\\x\"", "\"\\u12\"",
		"\"\\u12g4\"", "\"\\ud83d\\u0041\"", "tru", "nul", "[1] x", "-", "1e", "\"a\nb\"",
		"{\"a\":1,}",
	};
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cjv *v = NULL;
		err[0] = '\0';
		int rc = cjv_parse(bad[i], strlen(bad[i]), &v, err, sizeof(err));
		if (rc != -EINVAL)
			fail_msg("\"%s\" gave %d", bad[i], rc);
		assert_null(v);
		assert_true(strncmp(err, "bad JSON: ", 10) == 0);
	}
	/* the length is the bound, not a NUL: "[1]" cut after "[1" is incomplete */
	struct cjv *v = NULL;
	assert_int_equal(cjv_parse("[1]", 2, &v, err, sizeof(err)), -EINVAL);
	/* nesting is bounded */
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	assert_int_equal(cjv_parse(deep, 200, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "deep"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_u64_exact),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_writer_roundtrip),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
