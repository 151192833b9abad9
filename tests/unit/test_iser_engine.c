/* test_iser_engine.c — the engine on an RDMA transport (iSER, RFC 7145),
 * against a scripted initiator: a fake transport with put_data/get_data that
 * records each RDMA operation and completes it when the test says so.
 *   - login: RDMAExtensions=Yes, the iSER keys, InitialR2T=Yes, no digests,
 *     our receive limit declared;
 *   - READ: the data goes by one RDMA Write to the Read STag, the SCSI
 *     Response follows it, no Data-In PDU; the task (and its buffer) lives
 *     until the write completed;
 *   - WRITE with immediate data: the rest comes by one RDMA Read from the
 *     Write STag at the Write Base Offset, no R2T; status after the read;
 *   - the connection dropped with an RDMA Read in flight: the task waits for
 *     the flushed completion, then everything is freed. */
#include "iscsi_fake.h"

#define LUN1 1
#define MAX_OPS 16
#define REMOTE_SIZE (256u << 10)

struct rop {
	bool write;                    /* put_data (RDMA Write) or get_data (Read) */
	struct iscsi_rdma_ref ref;
	uint32_t len;
	void *cookie;
	unsigned after_caps;           /* PDUs captured before it was posted */
};

static struct {
	struct rop ops[MAX_OPS];
	unsigned nops;
	uint8_t remote[REMOTE_SIZE];   /* the initiator's memory (VA = offset) */
} rd;

static int fake_put(struct xport_conn *xc, const struct iscsi_rdma_ref *ref,
		    const struct iovec *iov, int iovcnt, uint32_t len, void *cookie)
{
	struct fake *f = (struct fake *)xc;
	uint64_t va = ref->va;

	assert_true(rd.nops < MAX_OPS);
	for (int i = 0; i < iovcnt && len; i++) {
		uint32_t n = iov[i].iov_len < len ? (uint32_t)iov[i].iov_len : len;

		assert_true(va + n <= REMOTE_SIZE);
		memcpy(rd.remote + va, iov[i].iov_base, n);
		va += n;
	}
	rd.ops[rd.nops++] = (struct rop){ true, *ref, len, cookie, f->ncap + f->nq };
	return 0;
}

static int fake_get(struct xport_conn *xc, const struct iscsi_rdma_ref *ref,
		    const struct iovec *iov, int iovcnt, uint32_t len, void *cookie)
{
	struct fake *f = (struct fake *)xc;
	uint64_t va = ref->va;
	uint32_t left = len;

	assert_true(rd.nops < MAX_OPS);
	for (int i = 0; i < iovcnt && left; i++) {
		uint32_t n = iov[i].iov_len < left ? (uint32_t)iov[i].iov_len : left;

		assert_true(va + n <= REMOTE_SIZE);
		memcpy(iov[i].iov_base, rd.remote + va, n);
		va += n;
		left -= n;
	}
	assert_int_equal(left, 0);
	rd.ops[rd.nops++] = (struct rop){ false, *ref, len, cookie, f->ncap + f->nq };
	return 0;
}

static const struct xport_ops rdma_ops = {
	.name = "fake-rdma", .send = fake_send, .close = fake_close,
	.put_data = fake_put, .get_data = fake_get,
};

/* Completes the oldest recorded RDMA operation. */
static void rop_complete(int err)
{
	struct rop op;

	assert_true(rd.nops > 0);
	op = rd.ops[0];
	memmove(rd.ops, rd.ops + 1, (rd.nops - 1) * sizeof(rd.ops[0]));
	rd.nops--;
	if (op.write)
		iscsi_rdma_put_done(op.cookie, err);
	else
		iscsi_rdma_get_done(op.cookie, err);
}

static void cmd_bhs(struct fake *f, uint8_t *bhs, uint8_t flags, const uint8_t *cdb,
		    uint32_t edtl, uint32_t dlen)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_SCSI_CMD;
	bhs[1] = flags | 1;
	put_be24(bhs + BHS_DLEN, dlen);
	iscsi_lun_encode(LUN1, bhs + BHS_LUN);
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_EDTL, edtl);
	put_be32(bhs + BHS_CMDSN, f->cmdsn++);
	put_be32(bhs + BHS_EXPSTATSN, f->expstatsn);
	memcpy(bhs + BHS_CDB, cdb, 16);
}

static void rw10(uint8_t *cdb, uint8_t op, uint32_t lba, uint16_t blocks)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	put_be32(cdb + 2, lba);
	put_be16(cdb + 7, blocks);
}

/* What the iSER transport does with a received command: the PDU carries the
 * STags of its iSER header. */
static void recv_cmd(struct fake *f, const uint8_t *bhs, const void *data, uint32_t len,
		     const struct iscsi_rdma_ref *in, const struct iscsi_rdma_ref *out)
{
	struct iscsi_pdu *p = iscsi_pdu_alloc(f->conn);
	int rc = iscsi_pdu_check_header(bhs, f->xc.max_recv_dsl);

	assert_non_null(p);
	assert_true(rc >= 0);
	memcpy(p->bhs, bhs, ISCSI_BHS_LEN);
	p->data_len = len;
	if (len) {
		p->data = mem_alloc(f->xc.pool, ISCSI_PAD(len));
		assert_non_null(p->data);
		p->data_owned = true;
		memcpy(p->data, data, len);
	}
	if (in)
		p->rdma_in = *in;
	if (out)
		p->rdma_out = *out;
	iscsi_conn_recv(f->conn, p, rc);
}

static struct fake *iser_login(void)
{
	struct fake *f = fx_connect_on(0);
	char text[1024];
	uint32_t len;
	const struct cap *c;
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16] = { 0 };

	f->xc.ops = &rdma_ops;
	f->xc.rdma_max_dsl = 8192;
	f->xc.rdma_max_unexpected = 144;
	len = fx_text(text, sizeof(text), "InitiatorName=" FX_INIT, "TargetName=" FX_TARGET,
		      "SessionType=Normal", "AuthMethod=None", NULL);
	c = fx_login_step(f, STAGE(0, 1, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	len = fx_text(text, sizeof(text), "RDMAExtensions=Yes", "HeaderDigest=CRC32C,None",
		      "DataDigest=CRC32C,None", "InitialR2T=No", "ImmediateData=Yes",
		      "MaxRecvDataSegmentLength=262144", "InitiatorRecvDataSegmentLength=8192",
		      "TargetRecvDataSegmentLength=262144", "MaxOutstandingUnexpectedPDUs=0",
		      "FirstBurstLength=65536", "MaxBurstLength=262144", NULL);
	c = fx_login_step(f, STAGE(1, 3, 1), text, len);
	assert_int_equal(fx_status(c), 0);
	assert_string_equal(fx_key(c, "RDMAExtensions"), "Yes");
	assert_string_equal(fx_key(c, "HeaderDigest"), "None");
	assert_string_equal(fx_key(c, "DataDigest"), "None");
	assert_string_equal(fx_key(c, "InitialR2T"), "Yes");
	assert_string_equal(fx_key(c, "MaxRecvDataSegmentLength"), "8192");
	assert_string_equal(fx_key(c, "TargetRecvDataSegmentLength"), "8192");
	assert_string_equal(fx_key(c, "MaxOutstandingUnexpectedPDUs"), "144");
	assert_true(atoi(fx_key(c, "FirstBurstLength")) <= 8192);
	assert_true(c->bhs[1] & ISCSI_LOGIN_TRANSIT);
	assert_int_equal(f->conn->state, CONN_FULL);
	assert_true(f->conn->params.rdma_extensions);
	assert_int_equal(f->xc.max_recv_dsl, 8192);
	f->cmdsn = get_be32(c->bhs + BHS_EXPCMDSN);
	fx_free_caps(f);
	/* Clear the power-on unit attention. */
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL, cdb, 0, 0);
	recv_cmd(f, bhs, NULL, 0, NULL, NULL);
	fx_pump(f);
	assert_int_equal(f->ncap, 1);
	fx_free_caps(f);
	memset(&rd, 0, sizeof(rd));
	return f;
}

static void test_login_keys(void **state)
{
	(void)state;
	fx_disconnect(iser_login());
}

/* WRITE of len bytes at lba: imm bytes immediate, the rest by RDMA Read from
 * the remote buffer at remote_off. Returns the SCSI status. */
static uint8_t do_write(struct fake *f, uint32_t lba, const uint8_t *data, uint32_t len,
			uint32_t imm, uint32_t remote_off)
{
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16];
	struct iscsi_rdma_ref out = { remote_off, 0x1234, true };
	uint8_t status;

	memcpy(rd.remote + remote_off, data + imm, len - imm);
	rw10(cdb, 0x2a, lba, (uint16_t)(len / 512));
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, cdb, len, imm);
	recv_cmd(f, bhs, data, imm, NULL, &out);
	fx_pump(f);
	if (imm < len) {
		/* One RDMA Read for the rest, from the Write Base Offset; no R2T,
		 * no status before it completes. */
		assert_int_equal(rd.nops, 1);
		assert_false(rd.ops[0].write);
		assert_int_equal(rd.ops[0].len, len - imm);
		assert_true(rd.ops[0].ref.va == remote_off);
		assert_int_equal(rd.ops[0].ref.stag, 0x1234);
		assert_int_equal(f->ncap, 0);
		rop_complete(0);
		fx_pump(f);
	}
	assert_int_equal(rd.nops, 0);
	assert_int_equal(f->ncap, 1);
	assert_int_equal(bhs_opcode(f->cap[0].bhs), ISCSI_OP_SCSI_RSP);
	status = f->cap[0].bhs[3];
	fx_free_caps(f);
	return status;
}

/* READ: one RDMA Write to the Read STag, then the SCSI Response. */
static void do_read(struct fake *f, uint32_t lba, uint8_t *out, uint32_t len)
{
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16];
	struct iscsi_rdma_ref in = { 4096, 0x5678, true };

	rw10(cdb, 0x28, lba, (uint16_t)(len / 512));
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, cdb, len, 0);
	recv_cmd(f, bhs, NULL, 0, &in, NULL);
	fx_pump(f);
	assert_int_equal(rd.nops, 1);
	assert_true(rd.ops[0].write);
	assert_int_equal(rd.ops[0].len, len);
	assert_int_equal(rd.ops[0].ref.stag, 0x5678);
	assert_int_equal(rd.ops[0].after_caps, 0);      /* posted before the response */
	assert_int_equal(f->ncap, 1);                    /* only the response: no Data-In */
	assert_int_equal(bhs_opcode(f->cap[0].bhs), ISCSI_OP_SCSI_RSP);
	assert_int_equal(f->cap[0].bhs[3], 0);
	assert_int_equal(get_be32(f->cap[0].bhs + BHS_DATASN), 0);   /* ExpDataSN */
	/* The buffer stays until the write completed. */
	assert_int_equal(f->conn->ntasks, 1);
	rop_complete(0);
	fx_pump(f);
	assert_int_equal(f->conn->ntasks, 0);
	memcpy(out, rd.remote + 4096, len);
	fx_free_caps(f);
}

static void test_write_read(void **state)
{
	struct fake *f = iser_login();
	static uint8_t data[65536], back[65536];

	(void)state;
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 512);
	/* 64 KiB: 8 KiB immediate, 56 KiB by RDMA Read. */
	assert_int_equal(do_write(f, 16, data, sizeof(data), 8192, 100000), 0);
	/* 4 KiB all immediate: no RDMA Read at all. */
	assert_int_equal(do_write(f, 200, data, 4096, 4096, 0), 0);
	do_read(f, 16, back, sizeof(back));
	assert_memory_equal(back, data, sizeof(data));
	do_read(f, 200, back, 4096);
	assert_memory_equal(back, data, 4096);
	fx_disconnect(f);
}

static void test_drop_with_read_in_flight(void **state)
{
	struct fake *f = iser_login();
	static uint8_t data[32768];
	uint8_t bhs[ISCSI_BHS_LEN], cdb[16];
	struct iscsi_rdma_ref out = { 0, 0x42, true };

	(void)state;
	rw10(cdb, 0x2a, 0, sizeof(data) / 512);
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, cdb, sizeof(data), 0);
	recv_cmd(f, bhs, NULL, 0, NULL, &out);
	fx_pump(f);
	assert_int_equal(rd.nops, 1);
	iscsi_conn_xport_failed(f->conn, 0);
	fx_pump(f);
	assert_true(f->closed);
	/* The engine keeps the connection while the device may write the buffer. */
	assert_int_equal(fx_ir()->nconns, 1);
	rop_complete(-ECANCELED);
	fx_pump(f);
	assert_int_equal(fx_ir()->nconns, 0);
	fx_free_caps(f);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_login_keys, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_read, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_drop_with_read_in_flight, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
