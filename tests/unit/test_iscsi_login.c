/* test_iscsi_login.c — the login state machine and discovery, over a fake
 * transport (see iscsi_fake.h). */
#include "iscsi_fake.h"

static void test_good_login(void **state)
{
	const char *keys[] = { "HeaderDigest=None", "DataDigest=None",
			       "MaxRecvDataSegmentLength=65536", "InitialR2T=No",
			       "ImmediateData=Yes", NULL };
	struct fake *f = fx_connect();
	char text[1024];
	uint32_t len;
	const struct cap *c;

	(void)state;
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "TargetName=" FX_TARGET,
		      "SessionType=Normal", "AuthMethod=None", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_int_equal(c->bhs[0], ISCSI_OP_LOGIN_RSP);
	assert_true(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	assert_int_equal(ISCSI_LOGIN_CSG(c->bhs[1]), 0);
	assert_int_equal(ISCSI_LOGIN_NSG(c->bhs[1]), 1);
	assert_int_equal(get_be32(c->bhs + BHS_ITT), f->itt);
	assert_string_equal(fx_key(c, "TargetPortalGroupTag"), "1");
	assert_string_equal(fx_key(c, "AuthMethod"), "None");
	assert_int_equal(get_be16(c->bhs + BHS_TSIH), 0);
	fx_disconnect(f);

	/* The whole thing through full feature phase. */
	f = fx_login_normal(keys);
	assert_int_equal(f->conn->sess.type, ISCSI_SESSION_NORMAL);
	assert_true(f->conn->sess.nexus_attached);
	assert_int_equal(iscsi_session_count(), 1);
	/* Final response written: the receive limit is now what we declared. */
	assert_int_equal(f->xc.max_recv_dsl, f->conn->params.max_recv_dsl);
	assert_int_equal(f->conn->params.max_xmit_dsl, 65536);
	fx_disconnect(f);
	assert_int_equal(iscsi_session_count(), 0);
}

static void test_bad_stage(void **state)
{
	struct fake *f = fx_connect();
	char text[512];
	uint32_t len;
	const struct cap *c;

	(void)state;
	/* Operational → security is backwards: initiator error, then close. */
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "TargetName=" FX_TARGET, NULL);
	c = fx_login_step(f, STAGE(1, 0, 1), text, len);
	assert_int_equal(fx_status(c), ISCSI_LOGIN_STATUS_INIT_ERR);
	assert_true(f->closed);
	fx_disconnect(f);

	/* A second request claiming a stage other than the current one. */
	f = fx_connect();
	c = fx_login_step(f, STAGE(0, 1, 0), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_false(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	c = fx_login_step(f, STAGE(1, 3, 1), NULL, 0);
	assert_int_equal(fx_status(c), ISCSI_LOGIN_STATUS_INIT_ERR);
	assert_true(f->closed);
	fx_disconnect(f);

	/* A SCSI command before login completes closes the connection. */
	f = fx_connect();
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_SCSI_CMD, ISCSI_FLAG_FINAL };

	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	assert_true(f->closed);
	fx_disconnect(f);
}

static void test_version(void **state)
{
	struct fake *f = fx_connect();
	uint8_t bhs[ISCSI_BHS_LEN];
	char text[256];
	uint32_t len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT,
			       "TargetName=" FX_TARGET, NULL);

	(void)state;
	fx_login_bhs(f, bhs, STAGE(0, 1, 1), 0, len);
	bhs[2] = 2;     /* version-max */
	bhs[3] = 1;     /* version-min > 0: we speak 0 only */
	fx_recv(f, bhs, text, len);
	fx_pump(f);
	assert_int_equal(f->ncap, 1);
	assert_int_equal(fx_status(&f->cap[0]), ISCSI_LOGIN_STATUS_NO_VERSION);
	assert_true(f->closed);
	fx_disconnect(f);
}

static void test_unknown_keys(void **state)
{
	struct fake *f = fx_connect();
	char text[512];
	uint32_t len;
	const struct cap *c;

	(void)state;
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "TargetName=" FX_TARGET,
		      "AuthMethod=None", "X-com.example.Foo=bar", "NoSuchKey=1", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_string_equal(fx_key(c, "X-com.example.Foo"), "NotUnderstood");
	assert_string_equal(fx_key(c, "NoSuchKey"), "NotUnderstood");
	assert_false(f->closed);
	fx_disconnect(f);
}

static void test_missing_and_unknown(void **state)
{
	struct fake *f = fx_connect();
	char text[512];
	uint32_t len;
	const struct cap *c;

	(void)state;
	len = fx_text(text, sizeof(text), "TargetName=" FX_TARGET, "AuthMethod=None", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), ISCSI_LOGIN_STATUS_MISSING_PARAM);
	assert_true(f->closed);
	fx_disconnect(f);

	f = fx_connect();
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "AuthMethod=None", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), ISCSI_LOGIN_STATUS_MISSING_PARAM);
	fx_disconnect(f);

	f = fx_connect();
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT,
		      "TargetName=iqn.2024-01.org.lich:nosuch", "AuthMethod=None", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), ISCSI_LOGIN_STATUS_TGT_NOT_FOUND);
	assert_true(f->closed);
	fx_disconnect(f);

	/* The ACL names someone else. */
	f = fx_connect();
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "TargetName=" FX_HIDDEN,
		      "AuthMethod=None", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), ISCSI_LOGIN_STATUS_TGT_FORBIDDEN);
	fx_disconnect(f);

	/* TSIH != 0: adding a connection to a session that does not exist. */
	f = fx_connect();
	uint8_t bhs[ISCSI_BHS_LEN];

	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "TargetName=" FX_TARGET,
		      "AuthMethod=None", NULL);
	fx_login_bhs(f, bhs, STAGE(0, 1, 1), 77, len);
	fx_recv(f, bhs, text, len);
	fx_pump(f);
	assert_int_equal(f->ncap, 1);
	assert_int_equal(fx_status(&f->cap[0]), ISCSI_LOGIN_STATUS_NO_SESSION);
	fx_disconnect(f);
}

/* Text split with the C bit is collected before negotiation. */
static void test_continuation(void **state)
{
	struct fake *f = fx_connect();
	char text[512];
	uint32_t len;
	const struct cap *c;

	(void)state;
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "TargetName=" FX_TARGET,
		      "AuthMethod=None", NULL);
	c = fx_login_step(f, (uint8_t)(ISCSI_LOGIN_CONTINUE | STAGE(0, 1, 0)), text, 10);
	assert_int_equal(fx_status(c), 0);
	assert_int_equal(c->len, 0);
	assert_false(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	c = fx_login_step(f, STAGE(0, 1, 1), text + 10, len - 10);
	assert_int_equal(fx_status(c), 0);
	assert_true(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	assert_string_equal(fx_key(c, "TargetPortalGroupTag"), "1");
	fx_disconnect(f);
}

static struct fake *discovery_login(void)
{
	struct fake *f = fx_connect();
	char text[512];
	uint32_t len;
	const struct cap *c;

	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "SessionType=Discovery",
		      "AuthMethod=None", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_null(fx_key(c, "TargetPortalGroupTag"));
	len = fx_text(text, sizeof(text), "HeaderDigest=None", "MaxRecvDataSegmentLength=8192",
		      NULL);
	c = fx_login_step(f, STAGE(1, 3, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_true(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	assert_int_equal(f->conn->sess.type, ISCSI_SESSION_DISCOVERY);
	f->cmdsn = get_be32(c->bhs + BHS_EXPCMDSN);
	fx_free_caps(f);
	return f;
}

static const struct cap *send_text(struct fake *f, const char *text, uint32_t len,
				   uint32_t ttt)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_TEXT_REQ | ISCSI_FLAG_IMMEDIATE,
				       ISCSI_FLAG_FINAL };
	unsigned before = f->ncap;

	put_be24(bhs + BHS_DLEN, len);
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_TTT, ttt);
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	fx_recv(f, bhs, text, len);
	fx_pump(f);
	assert_int_equal(f->ncap, before + 1);
	return &f->cap[f->ncap - 1];
}

static void test_sendtargets(void **state)
{
	struct fake *f = discovery_login();
	char text[64];
	uint32_t len = fx_text(text, sizeof(text), "SendTargets=All", NULL);
	const struct cap *c;
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_SCSI_CMD, ISCSI_FLAG_FINAL };

	(void)state;
	c = send_text(f, text, len, TTT_NONE);
	assert_int_equal(c->bhs[0], ISCSI_OP_TEXT_RSP);
	assert_true(c->bhs[1] & ISCSI_FLAG_FINAL);
	assert_int_equal(get_be32(c->bhs + BHS_TTT), TTT_NONE);
	assert_string_equal(fx_key(c, "TargetName"), FX_TARGET);
	assert_string_equal(fx_key(c, "TargetAddress"), "192.0.2.1:3260,1");
	/* The forbidden target is hidden. */
	assert_null(memmem(c->data, c->len, FX_HIDDEN, strlen(FX_HIDDEN)));

	/* Only Text and Logout in a discovery session. */
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	c = &f->cap[f->ncap - 1];
	assert_int_equal(c->bhs[0], ISCSI_OP_REJECT);
	assert_int_equal(c->bhs[2], ISCSI_REJECT_PROTOCOL_ERROR);
	assert_false(f->closed);
	fx_disconnect(f);
}

/* A response larger than the initiator's MaxRecvDataSegmentLength comes in
 * parts with the C bit and a TTT (RFC 7143 §11.11). */
static void test_sendtargets_split(void **state)
{
	struct fake *f = discovery_login();
	char text[64];
	uint32_t len = fx_text(text, sizeof(text), "SendTargets=All", NULL);
	const struct cap *c;
	uint8_t all[512];
	uint32_t got = 0;

	(void)state;
	f->conn->params.max_xmit_dsl = 16;     /* tiny, to force parts */
	c = send_text(f, text, len, TTT_NONE);
	while (true) {
		assert_true(c->len <= 16);
		memcpy(all + got, c->data, c->len);
		got += c->len;
		if (c->bhs[1] & ISCSI_FLAG_FINAL)
			break;
		assert_true(c->bhs[1] & ISCSI_TEXT_CONTINUE);
		assert_int_not_equal(get_be32(c->bhs + BHS_TTT), TTT_NONE);
		c = send_text(f, NULL, 0, get_be32(c->bhs + BHS_TTT));
	}
	assert_true(got > 16);
	assert_non_null(memmem(all, got, "TargetName=" FX_TARGET, strlen("TargetName=" FX_TARGET)));
	fx_disconnect(f);
}

static void test_logout_discovery(void **state)
{
	struct fake *f = discovery_login();
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_LOGOUT_REQ | ISCSI_FLAG_IMMEDIATE,
				       ISCSI_FLAG_FINAL };
	const struct cap *c;

	(void)state;
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be16(bhs + BHS_TTT, 1);
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	c = &f->cap[f->ncap - 1];
	assert_int_equal(c->bhs[0], ISCSI_OP_LOGOUT_RSP);
	assert_int_equal(c->bhs[2], 0);
	assert_true(f->closed);
	fx_disconnect(f);
}

/* A second login with the same initiator name and ISID replaces the first. */
static void test_reinstatement(void **state)
{
	struct fake *a = fx_login_normal(NULL);
	struct fake *b;

	(void)state;
	assert_int_equal(iscsi_session_count(), 1);
	b = fx_login_normal(NULL);
	assert_true(a->closed);
	assert_int_equal(iscsi_session_count(), 1);
	fx_pump(a);
	fx_free_caps(a);
	free(a);
	fx_disconnect(b);
}

static void test_login_timeout(void **state)
{
	struct fake *f = fx_connect();

	(void)state;
	conn_tick(f->conn, f->conn->login_start_us + 1000000ull);
	assert_false(f->closed);
	conn_tick(f->conn, f->conn->login_start_us + 16000000ull);
	assert_true(f->closed);
	fx_disconnect(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_login),
		cmocka_unit_test(test_bad_stage),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_missing_and_unknown),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_sendtargets),
		cmocka_unit_test(test_sendtargets_split),
		cmocka_unit_test(test_logout_discovery),
		cmocka_unit_test(test_reinstatement),
		cmocka_unit_test(test_login_timeout),
	};

	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
