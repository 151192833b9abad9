/* test_iscsi_logout_req.c — the target asking for a logout (RFC 7143 §11.9,
 * AsyncEvent 1), as lichd does at shutdown and lichctl logout does: the Async
 * Message's fields, the initiator's logout that follows, the drop once the
 * time given has passed, and what iscsi_session_request_logout refuses. */
#include "iscsi_fake.h"

static const struct cap *last_op(struct fake *f, uint8_t op)
{
	for (unsigned i = f->ncap; i-- > 0;)
		if (bhs_opcode(f->cap[i].bhs) == op)
			return &f->cap[i];
	return NULL;
}

static void nop_out(struct fake *f)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_OUT | ISCSI_FLAG_IMMEDIATE };

	bhs[1] = ISCSI_FLAG_FINAL;
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_TTT, TTT_NONE);
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	fx_recv(f, bhs, NULL, 0);
}

static void test_async_then_logout(void **state)
{
	struct fake *f = fx_login_normal(NULL);
	uint8_t bhs[ISCSI_BHS_LEN];
	const struct cap *c;
	uint32_t statsn;

	(void)state;
	/* The StatSN the next status-bearing PDU gets (the NOP-In answer). */
	nop_out(f);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_NOP_IN);
	assert_non_null(c);
	statsn = get_be32(c->bhs + BHS_STATSN) + 1;

	assert_int_equal(iscsi_session_request_logout(f->conn->id, 7), 0);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_ASYNC);
	assert_non_null(c);
	assert_int_equal(c->bhs[1], ISCSI_FLAG_FINAL);
	assert_int_equal(c->len, 0);
	assert_int_equal(get_be32(c->bhs + BHS_ITT), 0xffffffffu);
	assert_int_equal(c->bhs[36], 1);                   /* AsyncEvent: logout request */
	assert_int_equal(c->bhs[37], 0);                   /* AsyncVCode */
	assert_int_equal(get_be16(c->bhs + 38), 0);        /* Parameter1 */
	assert_int_equal(get_be16(c->bhs + 40), 0);        /* Parameter2 */
	assert_int_equal(get_be16(c->bhs + 42), 7);        /* Parameter3: time to logout */
	assert_int_equal(get_be32(c->bhs + BHS_STATSN), statsn);
	assert_int_equal(get_be32(c->bhs + BHS_EXPCMDSN), f->cmdsn);
	assert_true(f->conn->logout_requested);
	assert_false(f->closed);

	/* A second request does not send a second message. */
	assert_int_equal(iscsi_session_request_logout(f->conn->id, 7), 0);
	fx_pump(f);
	unsigned n = 0;
	for (unsigned i = 0; i < f->ncap; i++)
		n += bhs_opcode(f->cap[i].bhs) == ISCSI_OP_ASYNC;
	assert_int_equal(n, 1);

	/* The initiator logs out (close session): answered, then closed. */
	memset(bhs, 0, sizeof(bhs));
	bhs[0] = ISCSI_OP_LOGOUT_REQ | ISCSI_FLAG_IMMEDIATE;
	bhs[1] = ISCSI_FLAG_FINAL;
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_CMDSN, f->cmdsn);
	put_be32(bhs + BHS_EXPSTATSN, statsn + 1);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	c = last_op(f, ISCSI_OP_LOGOUT_RSP);
	assert_non_null(c);
	assert_int_equal(c->bhs[2], 0);
	assert_int_equal(get_be32(c->bhs + BHS_STATSN), statsn + 1);
	assert_true(f->closed);
	fx_disconnect(f);
}

static void test_dropped_after_deadline(void **state)
{
	struct fake *f = fx_login_normal(NULL);
	uint64_t deadline;

	(void)state;
	assert_int_equal(iscsi_session_request_logout(f->conn->id, 1), 0);
	fx_pump(f);
	assert_non_null(last_op(f, ISCSI_OP_ASYNC));
	deadline = f->conn->logout_deadline_us;
	/* Parameter3 (1 s) plus a 2 s grace from when it was sent. */
	assert_true(deadline >= reactor_now_us(reactor_get(0)) + 3000000ull);
	conn_tick(f->conn, deadline - 1);
	fx_pump(f);
	assert_false(f->closed);
	conn_tick(f->conn, deadline);
	fx_pump(f);
	assert_true(f->closed);
	fx_disconnect(f);
}

static void test_refused(void **state)
{
	struct fake *f = fx_connect();
	uint64_t id = f->conn->id;

	(void)state;
	/* No session yet (login phase): not in the session table. */
	assert_int_equal(iscsi_session_request_logout(id, 5), -ENOENT);
	assert_int_equal(iscsi_session_request_logout(0xdeadbeefull, 5), -ENOENT);
	/* Nothing was sent on the connection in login. */
	assert_null(last_op(f, ISCSI_OP_ASYNC));
	fx_disconnect(f);

	/* A session that is gone. */
	f = fx_login_normal(NULL);
	id = f->conn->id;
	fx_disconnect(f);
	assert_int_equal(iscsi_session_request_logout(id, 5), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_async_then_logout),
		cmocka_unit_test(test_dropped_after_deadline),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
