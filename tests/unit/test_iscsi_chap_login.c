/* test_iscsi_chap_login.c — CHAP inside the login state machine (login.c with
 * chap.c), over the fake transport of iscsi_fake.h: the exchange through full
 * feature phase, mutual CHAP, the stage rules, discovery accounts, and ACLs
 * checked before any challenge. (The 1 s delay of failed answers needs a
 * running reactor: tests/integration/30-auth.sh measures it.) */
#include "iscsi_fake.h"
#include "iscsi/chap.h"
#include "iscsi/hash.h"

#define CX_TARGET  "iqn.2024-01.org.lich:chap"
#define CX_SECRET  "Alice-Secret-4711"
#define CX_OSECRET "Target-Secret-0815"
#define CX_DSECRET "Discovery-Secret-42"

static struct conf_account cx_in[] = { { "alice", CX_SECRET } };
static struct conf_account cx_out = { "lich-target", CX_OSECRET };
static struct conf_account cx_disc_in[] = { { "disco", CX_DSECRET } };
static struct conf_target cx_conf = {
	.name = CX_TARGET, .incoming = cx_in, .n_incoming = 1, .outgoing = &cx_out,
};
static struct bdev *cx_bdev;

static int cx_setup(void **state)
{
	struct bdev_opts bo = { .type = BDEV_TYPE_RAM, .path = "cx", .size = FX_LUN_SIZE,
				.block_size = 512 };
	struct scsi_lu_opts lo = { .lun = 1, .vendor = "LICH", .product = "TEST",
				   .revision = "0001", .write_cache = true };
	struct scsi_target *st;

	fx_setup(state);
	assert_int_equal(bdev_open(&bo, &cx_bdev), 0);
	st = scsi_target_create(CX_TARGET, 1);
	assert_non_null(st);
	lo.bdev = cx_bdev;
	assert_int_equal(scsi_target_add_lu(st, &lo), 0);
	assert_int_equal(iscsi_target_add(st, &cx_conf, NULL, NULL), 0);
	return 0;
}

static int cx_teardown(void **state)
{
	fx_teardown(state);
	bdev_close(cx_bdev);
	return 0;
}

static void set_discovery_accounts(bool on)
{
	struct config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.nop_interval = 5;
	cfg.nop_timeout = 5;
	if (on) {
		cfg.discovery_incoming = cx_disc_in;
		cfg.n_discovery_incoming = 1;
	}
	iscsi_set_config(&cfg);
}

/* Response to the target's challenge in c (a captured Login Response). */
static void make_response(const struct cap *c, const char *secret, char *out, size_t cap)
{
	uint8_t ch[64], r[HASH_MAX_LEN];
	size_t clen;
	unsigned a, id;
	enum hash_alg alg;
	int n;

	assert_non_null(fx_key(c, "CHAP_A"));
	assert_non_null(fx_key(c, "CHAP_I"));
	assert_non_null(fx_key(c, "CHAP_C"));
	assert_int_equal(sscanf(fx_key(c, "CHAP_A"), "%u", &a), 1);
	assert_int_equal(sscanf(fx_key(c, "CHAP_I"), "%u", &id), 1);
	assert_int_equal(chap_alg_of(a, &alg), 0);
	assert_int_equal(chap_decode(fx_key(c, "CHAP_C"), ch, sizeof(ch), &clen), 0);
	assert_int_equal(clen, CHAP_CHALLENGE_LEN);
	chap_response(alg, (uint8_t)id, secret, strlen(secret), ch, clen, r);
	n = snprintf(out, cap, "CHAP_R=0x");
	for (size_t i = 0; i < hash_len(alg); i++)
		n += snprintf(out + n, cap - (size_t)n, "%02x", r[i]);
}

/* AuthMethod and CHAP_A: returns the challenge response. */
static const struct cap *cx_start(struct fake *f, const char *target, const char *algs)
{
	char text[1024], a[64];
	uint32_t len;
	const struct cap *c;

	if (target)
		len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "SessionType=Normal",
			      "AuthMethod=CHAP,None", NULL);
	else
		len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT,
			      "SessionType=Discovery", "AuthMethod=CHAP,None", NULL);
	if (target) {
		char tn[256];

		snprintf(tn, sizeof(tn), "TargetName=%s", target);
		memcpy(text + len, tn, strlen(tn) + 1);
		len += (uint32_t)strlen(tn) + 1;
	}
	/* T=1 as libiscsi does: the target must not transit yet. */
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_string_equal(fx_key(c, "AuthMethod"), "CHAP");
	assert_false(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	snprintf(a, sizeof(a), "CHAP_A=%s", algs);
	len = fx_text(text, sizeof(text), a, NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_false(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	return c;
}

/* Operational stage through full feature phase. */
static void cx_finish(struct fake *f)
{
	char text[512];
	uint32_t len = fx_text(text, sizeof(text), "HeaderDigest=None", "DataDigest=None",
			       "MaxRecvDataSegmentLength=65536", NULL);
	const struct cap *c = NULL;

	for (int round = 0; round < 3; round++) {
		c = fx_login_step(f, STAGE(1, 3, 1), text, len);
		assert_int_equal(fx_status(c), 0);
		if (c->bhs[1] & ISCSI_LOGIN_TRANSIT)
			break;
		len = 0;
		for (uint32_t off = 0; off < c->len;) {
			const char *kv = (const char *)c->data + off;
			size_t l = strnlen(kv, c->len - off) + 1;

			if (strncmp(kv, "MaxRecvDataSegmentLength=", 25) != 0) {
				memcpy(text + len, kv, l);
				len += (uint32_t)l;
			}
			off += (uint32_t)l;
		}
	}
	assert_true(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	assert_int_equal(ISCSI_LOGIN_NSG(c->bhs[1]), ISCSI_STAGE_FULL);
	assert_int_equal(f->conn->state, CONN_FULL);
}

static void test_one_way(void **state)
{
	struct fake *f = fx_connect();
	char r[128], text[512];
	uint32_t len;
	const struct cap *c;

	(void)state;
	c = cx_start(f, CX_TARGET, "7,5");
	assert_string_equal(fx_key(c, "CHAP_A"), "7");
	make_response(c, CX_SECRET, r, sizeof(r));
	len = fx_text(text, sizeof(text), "CHAP_N=alice", r, NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_true(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	assert_int_equal(ISCSI_LOGIN_NSG(c->bhs[1]), ISCSI_STAGE_OPERATIONAL);
	assert_null(fx_key(c, "CHAP_N"));          /* not asked to authenticate itself */
	cx_finish(f);
	assert_int_equal(iscsi_session_count(), 1);
	fx_disconnect(f);
	assert_int_equal(iscsi_session_count(), 0);
}

static void test_mutual(void **state)
{
	struct fake *f = fx_connect();
	char r[128], text[512], want[128];
	const char *ic = "CHAP_C=0x00112233445566778899aabbccddeeff";
	uint8_t ch[16], rr[16];
	size_t n;
	uint32_t len;
	const struct cap *c;

	(void)state;
	c = cx_start(f, CX_TARGET, "5");
	make_response(c, CX_SECRET, r, sizeof(r));
	len = fx_text(text, sizeof(text), "CHAP_N=alice", r, "CHAP_I=9", ic, NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_true(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	assert_string_equal(fx_key(c, "CHAP_N"), "lich-target");
	assert_int_equal(chap_decode(ic + 7, ch, sizeof(ch), &n), 0);
	chap_response(HASH_MD5, 9, CX_OSECRET, strlen(CX_OSECRET), ch, n, rr);
	strcpy(want, "0x");
	for (int i = 0; i < 16; i++)
		sprintf(want + 2 + 2 * i, "%02x", rr[i]);
	assert_string_equal(fx_key(c, "CHAP_R"), want);
	cx_finish(f);
	fx_disconnect(f);
}

static void expect_failure(struct fake *f, uint8_t flags, uint16_t status, ...)
{
	char text[2048];
	uint32_t len = 0;
	const char *s;
	va_list ap;
	const struct cap *c;

	va_start(ap, status);
	while ((s = va_arg(ap, const char *))) {
		memcpy(text + len, s, strlen(s) + 1);
		len += (uint32_t)strlen(s) + 1;
	}
	va_end(ap);
	c = fx_login_step(f, flags, text, len);
	assert_int_equal(fx_status(c), status);
	assert_null(fx_key(c, "CHAP_R"));
	assert_true(f->closed);
	fx_disconnect(f);
	assert_int_equal(iscsi_session_count(), 0);
}

static void test_failures(void **state)
{
	struct fake *f;
	char r[128], reflect[128];
	const struct cap *c;

	(void)state;
	/* Wrong secret. */
	f = fx_connect();
	c = cx_start(f, CX_TARGET, "5");
	make_response(c, "not-the-secret", r, sizeof(r));
	expect_failure(f, STAGE(0, 1, 1), ISCSI_LOGIN_STATUS_AUTH_FAILED, "CHAP_N=alice", r, NULL);
	/* Right response, unknown user. */
	f = fx_connect();
	c = cx_start(f, CX_TARGET, "5");
	make_response(c, CX_SECRET, r, sizeof(r));
	expect_failure(f, STAGE(0, 1, 1), ISCSI_LOGIN_STATUS_AUTH_FAILED, "CHAP_N=bob", r, NULL);
	/* Transit asked without answering the challenge. */
	f = fx_connect();
	cx_start(f, CX_TARGET, "5");
	expect_failure(f, STAGE(0, 1, 1), ISCSI_LOGIN_STATUS_AUTH_FAILED, "CHAP_N=alice", NULL);
	/* Our challenge reflected back in mutual CHAP. */
	f = fx_connect();
	c = cx_start(f, CX_TARGET, "5");
	make_response(c, CX_SECRET, r, sizeof(r));
	snprintf(reflect, sizeof(reflect), "CHAP_C=%s", fx_key(c, "CHAP_C"));
	expect_failure(f, STAGE(0, 1, 1), ISCSI_LOGIN_STATUS_AUTH_FAILED, "CHAP_N=alice", r,
		       "CHAP_I=3", reflect, NULL);
	/* An operational-stage request while CHAP is pending: wrong stage. */
	f = fx_connect();
	cx_start(f, CX_TARGET, "5");
	expect_failure(f, STAGE(1, 3, 1), ISCSI_LOGIN_STATUS_INIT_ERR, "HeaderDigest=None", NULL);
	/* AuthMethod=None offered to a CHAP target. */
	f = fx_connect();
	expect_failure(f, STAGE(0, 1, 1), ISCSI_LOGIN_STATUS_AUTH_FAILED,
		       "InitiatorName=" FX_INIT, "TargetName=" CX_TARGET, "AuthMethod=None", NULL);
	/* No AuthMethod, asking to move on. */
	f = fx_connect();
	expect_failure(f, STAGE(0, 1, 1), ISCSI_LOGIN_STATUS_AUTH_FAILED,
		       "InitiatorName=" FX_INIT, "TargetName=" CX_TARGET, NULL);
	/* Straight into the operational stage. */
	f = fx_connect();
	expect_failure(f, STAGE(1, 3, 1), ISCSI_LOGIN_STATUS_AUTH_FAILED,
		       "InitiatorName=" FX_INIT, "TargetName=" CX_TARGET, NULL);
	/* CHAP keys on a target without accounts (AuthMethod=None). */
	f = fx_connect();
	expect_failure(f, STAGE(0, 1, 0), ISCSI_LOGIN_STATUS_INIT_ERR,
		       "InitiatorName=" FX_INIT, "TargetName=" FX_TARGET,
		       "AuthMethod=CHAP,None", "CHAP_A=5", NULL);
	/* The ACL comes first: no challenge for a forbidden initiator. */
	f = fx_connect();
	expect_failure(f, STAGE(0, 1, 1), ISCSI_LOGIN_STATUS_TGT_FORBIDDEN,
		       "InitiatorName=" FX_INIT, "TargetName=" FX_HIDDEN,
		       "AuthMethod=CHAP,None", NULL);
}

static void test_open_target(void **state)
{
	struct fake *f = fx_connect();
	char text[512];
	uint32_t len;
	const struct cap *c;

	(void)state;
	/* An initiator willing to do CHAP gets None from a target without accounts. */
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "TargetName=" FX_TARGET,
		      "AuthMethod=CHAP,None", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_string_equal(fx_key(c, "AuthMethod"), "None");
	assert_true(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	cx_finish(f);
	fx_disconnect(f);
}

static void test_discovery(void **state)
{
	struct fake *f;
	char r[128], text[512];
	uint32_t len;
	const struct cap *c;

	(void)state;
	set_discovery_accounts(true);
	/* The target's account is not a discovery account. */
	f = fx_connect();
	c = cx_start(f, NULL, "5");
	make_response(c, CX_SECRET, r, sizeof(r));
	expect_failure(f, STAGE(0, 1, 1), ISCSI_LOGIN_STATUS_AUTH_FAILED, "CHAP_N=alice", r, NULL);
	/* None refused. */
	f = fx_connect();
	expect_failure(f, STAGE(0, 1, 1), ISCSI_LOGIN_STATUS_AUTH_FAILED,
		       "InitiatorName=" FX_INIT, "SessionType=Discovery", "AuthMethod=None", NULL);
	/* The discovery account works, and SendTargets follows. */
	f = fx_connect();
	c = cx_start(f, NULL, "5");
	make_response(c, CX_DSECRET, r, sizeof(r));
	len = fx_text(text, sizeof(text), "CHAP_N=disco", r, NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_true(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	cx_finish(f);
	assert_int_equal(f->conn->sess.type, ISCSI_SESSION_DISCOVERY);
	fx_disconnect(f);

	/* Accounts removed (reload): discovery is open again. */
	set_discovery_accounts(false);
	f = fx_connect();
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "SessionType=Discovery",
		      "AuthMethod=CHAP,None", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_string_equal(fx_key(c, "AuthMethod"), "None");
	fx_disconnect(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_way),
		cmocka_unit_test(test_mutual),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_open_target),
		cmocka_unit_test(test_discovery),
	};

	return cmocka_run_group_tests(tests, cx_setup, cx_teardown);
}
