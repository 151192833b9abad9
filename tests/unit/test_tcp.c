/* test_tcp.c — the TCP transport's framing on a real socket and a running
 * reactor: PDUs whose header arrives whole in the staging buffer (parsed where
 * it lies), headers that arrive in pieces (assembled in the connection), data
 * segments with padding, several PDUs in one segment, a header cut across two
 * writes, and responses batched into one writev.
 *
 * A client thread speaks iSCSI over a loopback connection that reactor 0
 * adopted with tcp_conn_adopt(): a normal session's login, then NOP-Outs with
 * ping data written in various cuts; each must come back as a NOP-In echoing
 * its data. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "bdev/bdev.h"
#include "core/log.h"
#include "core/reactor.h"
#include "iscsi/iscsi.h"
#include "iscsi/pdu.h"
#include "net/transport.h"
#include "scsi/scsi.h"

#define TARGET "iqn.2024-01.org.lich:tcp-test"
#define INIT   "iqn.2024-01.org.lich:tcp-init"

static struct {
	int srv_fd;                     /* adopted by reactor 0 */
	int cli_fd;
	uint32_t cmdsn, expstatsn, itt;
	int failures;
	char why[256];
} tt;

static void bad(const char *fmt, ...)
{
	va_list ap;

	if (tt.failures++)
		return;
	va_start(ap, fmt);
	vsnprintf(tt.why, sizeof(tt.why), fmt, ap);
	va_end(ap);
}

/* ---- client side (blocking socket, its own thread) ---- */

static void put_all(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(tt.cli_fd, p, len);

		if (n <= 0) {
			bad("write: %s", n < 0 ? strerror(errno) : "0");
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Written in separate pieces with a pause between, so that the target's
 * reads see them apart (TCP_NODELAY on both ends). */
static void put_cut(const void *buf, size_t len, const size_t *cuts, unsigned ncuts)
{
	size_t off = 0;

	for (unsigned i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;

		put_all((const uint8_t *)buf + off, end - off);
		off = end;
		usleep(20000);
	}
}

static bool get_all(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(tt.cli_fd, p, len);

		if (n <= 0) {
			bad("read: %s", n < 0 ? strerror(errno) : "connection closed");
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* One PDU from the target; data (padded on the wire) into data[max]. */
static bool get_pdu(uint8_t *bhs, uint8_t *data, uint32_t max, uint32_t *len)
{
	uint8_t pad[4];

	if (!get_all(bhs, ISCSI_BHS_LEN))
		return false;
	*len = bhs_data_len(bhs);
	if (*len > max) {
		bad("response data of %u bytes", *len);
		return false;
	}
	if (!get_all(data, *len) || !get_all(pad, ISCSI_PAD(*len) - *len))
		return false;
	if (bhs_opcode(bhs) != ISCSI_OP_NOP_IN || get_be32(bhs + BHS_TTT) == 0xffffffffu)
		tt.expstatsn = get_be32(bhs + BHS_STATSN) + 1;
	return true;
}

static size_t kv_text(char *out, size_t cap, const char *const *kv)
{
	size_t len = 0;

	for (; *kv; kv++) {
		size_t l = strlen(*kv) + 1;

		if (len + l > cap)
			break;
		memcpy(out + len, *kv, l);
		len += l;
	}
	return len;
}

/* BHS + data + padding of a PDU, laid out in out; returns its length. */
static size_t build(uint8_t *out, const uint8_t *bhs, const void *data, uint32_t len)
{
	memcpy(out, bhs, ISCSI_BHS_LEN);
	memcpy(out + ISCSI_BHS_LEN, data, len);
	memset(out + ISCSI_BHS_LEN + len, 0, ISCSI_PAD(len) - len);
	return ISCSI_BHS_LEN + ISCSI_PAD(len);
}

static void login_bhs(uint8_t *bhs, uint8_t flags, uint32_t dlen)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_LOGIN_REQ | ISCSI_FLAG_IMMEDIATE;
	bhs[1] = flags;
	put_be24(bhs + BHS_DLEN, dlen);
	bhs[8] = 0x80;                  /* ISID: random type */
	bhs[13] = 0x01;
	put_be32(bhs + BHS_ITT, tt.itt++);
	put_be16(bhs + BHS_TTT, 1);     /* CID */
	put_be32(bhs + BHS_CMDSN, tt.cmdsn);
	put_be32(bhs + BHS_EXPSTATSN, tt.expstatsn);
}

#define STAGE(csg, nsg) ((uint8_t)(ISCSI_LOGIN_TRANSIT | (csg) << 2 | (nsg)))

static bool login(void)
{
	static const char *const sec[] = { "InitiatorName=" INIT, "TargetName=" TARGET,
					   "SessionType=Normal", "AuthMethod=None", NULL };
	static const char *const op[] = { "HeaderDigest=None", "DataDigest=None", NULL };
	uint8_t bhs[ISCSI_BHS_LEN], rbhs[ISCSI_BHS_LEN], data[8192], pdu[8192 + 64];
	char text[1024];
	uint32_t len, rlen;
	size_t n;
	/* The header in three pieces, the data in two: the header is assembled
	 * in the connection, not parsed in the staging buffer. */
	size_t cuts[] = { 10, 30, ISCSI_BHS_LEN + 7 };

	len = (uint32_t)kv_text(text, sizeof(text), sec);
	login_bhs(bhs, STAGE(ISCSI_STAGE_SECURITY, ISCSI_STAGE_OPERATIONAL), len);
	n = build(pdu, bhs, text, len);
	put_cut(pdu, n, cuts, 3);
	if (!get_pdu(rbhs, data, sizeof(data), &rlen))
		return false;
	if (bhs_opcode(rbhs) != ISCSI_OP_LOGIN_RSP || get_be16(rbhs + 36) != 0) {
		bad("security stage: opcode 0x%02x status 0x%04x", bhs_opcode(rbhs),
		    get_be16(rbhs + 36));
		return false;
	}
	len = (uint32_t)kv_text(text, sizeof(text), op);
	for (int round = 0; round < 3; round++) {
		login_bhs(bhs, STAGE(ISCSI_STAGE_OPERATIONAL, ISCSI_STAGE_FULL), len);
		put_all(pdu, build(pdu, bhs, text, len));
		if (!get_pdu(rbhs, data, sizeof(data), &rlen))
			return false;
		if (get_be16(rbhs + 36) != 0) {
			bad("operational stage: status 0x%04x", get_be16(rbhs + 36));
			return false;
		}
		if (rbhs[1] & ISCSI_LOGIN_TRANSIT) {
			tt.cmdsn = get_be32(rbhs + BHS_EXPCMDSN);
			return true;
		}
		/* The target made offers: take them as they are. */
		len = 0;
		for (uint32_t off = 0; off < rlen;) {
			const char *kv = (const char *)data + off;
			size_t l = strnlen(kv, rlen - off) + 1;

			if (strncmp(kv, "MaxRecvDataSegmentLength=", 25) != 0 &&
			    len + l <= sizeof(text)) {
				memcpy(text + len, kv, l);
				len += (uint32_t)l;
			}
			off += (uint32_t)l;
		}
	}
	bad("login did not reach full feature phase");
	return false;
}

/* A NOP-Out (a ping: the target answers with a NOP-In echoing data). */
static size_t nop_out(uint8_t *out, uint32_t itt, const uint8_t *data, uint32_t len)
{
	uint8_t bhs[ISCSI_BHS_LEN];

	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_NOP_OUT | ISCSI_FLAG_IMMEDIATE;
	bhs[1] = ISCSI_FLAG_FINAL;
	put_be24(bhs + BHS_DLEN, len);
	put_be32(bhs + BHS_ITT, itt);
	put_be32(bhs + BHS_TTT, 0xffffffffu);
	put_be32(bhs + BHS_CMDSN, tt.cmdsn);
	put_be32(bhs + BHS_EXPSTATSN, tt.expstatsn);
	return build(out, bhs, data, len);
}

static void expect_nop_in(uint32_t itt, const uint8_t *data, uint32_t len)
{
	uint8_t rbhs[ISCSI_BHS_LEN], rdata[512];
	uint32_t rlen;

	if (!get_pdu(rbhs, rdata, sizeof(rdata), &rlen))
		return;
	if (bhs_opcode(rbhs) != ISCSI_OP_NOP_IN || bhs_itt(rbhs) != itt)
		bad("expected NOP-In for ITT %u, got opcode 0x%02x ITT %u", itt,
		    bhs_opcode(rbhs), bhs_itt(rbhs));
	else if (rlen != len || memcmp(rdata, data, len) != 0)
		bad("NOP-In %u: %u bytes of data, expected %u echoed", itt, rlen, len);
}

static void *client(void *arg)
{
	uint8_t buf[4096], ping[3][200];
	uint32_t lens[3] = { 5, 0, 130 };
	size_t n = 0, cut;

	(void)arg;
	for (unsigned i = 0; i < 3; i++)
		for (unsigned j = 0; j < sizeof(ping[i]); j++)
			ping[i][j] = (uint8_t)(i * 31 + j);
	if (!login())
		goto out;
	/* Three pings in one write: each header lies whole in the staging
	 * buffer; data with and without padding. */
	for (unsigned i = 0; i < 3; i++)
		n += nop_out(buf + n, 100 + i, ping[i], lens[i]);
	put_all(buf, n);
	for (unsigned i = 0; i < 3; i++)
		expect_nop_in(100 + i, ping[i], lens[i]);
	/* Two pings, the second's header cut in two: the first part comes with
	 * the first ping, the rest with a later read. */
	n = nop_out(buf, 200, ping[0], lens[0]);
	cut = n + 20;
	n += nop_out(buf + n, 201, ping[2], lens[2]);
	put_cut(buf, n, &cut, 1);
	expect_nop_in(200, ping[0], lens[0]);
	expect_nop_in(201, ping[2], lens[2]);
	/* Many pings in one write: the answers go out batched. */
	n = 0;
	for (unsigned i = 0; i < 40; i++)
		n += nop_out(buf + n, 300 + i, ping[i % 3], lens[i % 3]);
	put_all(buf, n);
	for (unsigned i = 0; i < 40; i++)
		expect_nop_in(300 + i, ping[i % 3], lens[i % 3]);
out:
	close(tt.cli_fd);
	reactors_stop();
	return NULL;
}

/* ---- target side ---- */

static void start(struct reactor *r, void *arg)
{
	(void)arg;
	if (iscsi_reactor_start(r) != 0) {
		bad("iscsi_reactor_start failed");
		reactors_stop();
		return;
	}
	if (tcp_conn_adopt(r, tt.srv_fd) != 0) {
		bad("tcp_conn_adopt failed");
		reactors_stop();
	}
}

static void loopback_pair(int *srv, int *cli)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(l >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	*cli = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(*cli >= 0);
	assert_int_equal(connect(*cli, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*srv = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(*srv >= 0);
	setsockopt(*cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A target that never answers fails the test instead of hanging it. */
	setsockopt(*cli, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ .tv_sec = 10 },
		   sizeof(struct timeval));
	close(l);
}

static void test_framing(void **state)
{
	struct reactor_opts ro = { .ncores = 1, .cores = { -1 }, .mode = POLL_SLEEP,
				   .mem_limit = 64u << 20, .no_hugepages = true };
	struct bdev_opts bo = { .type = BDEV_TYPE_RAM, .path = "tcp-test", .size = 1u << 20,
				.block_size = 512 };
	struct scsi_lu_opts lo = { .lun = 1, .vendor = "LICH", .product = "TEST",
				   .revision = "0001", .write_cache = true };
	struct iscsi_opts io;
	struct scsi_target *st;
	struct bdev *bdev;
	pthread_t th;

	(void)state;
	memset(&tt, 0, sizeof(tt));
	tt.itt = 1;
	log_init(getenv("TCP_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERR, 0);
	assert_int_equal(reactors_init(&ro), 0);
	iscsi_opts_default(&io);
	assert_int_equal(iscsi_init(&io), 0);
	assert_int_equal(bdev_open(&bo, &bdev), 0);
	st = scsi_target_create(TARGET, 1);
	assert_non_null(st);
	lo.bdev = bdev;
	assert_int_equal(scsi_target_add_lu(st, &lo), 0);
	assert_int_equal(iscsi_target_add(st, NULL, NULL, NULL), 0);
	loopback_pair(&tt.srv_fd, &tt.cli_fd);
	assert_int_equal(pthread_create(&th, NULL, client, NULL), 0);
	assert_int_equal(reactors_run(start, NULL), 0);
	pthread_join(th, NULL);
	iscsi_fini();
	bdev_close(bdev);
	if (tt.failures)
		fail_msg("%s", tt.why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
