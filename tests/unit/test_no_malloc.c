/* test_no_malloc.c — the I/O path allocates from the reactor's pool only, and
 * Data-Out lands in the task buffer without a copy.
 *
 * malloc, calloc, realloc, free and the aligned variants are defined here and
 * forward to glibc's own (__libc_malloc...), counting calls while `counting`
 * is set (sanitizer builds, whose runtime owns malloc, count through its
 * allocation hook instead). After a warm-up, READ and WRITE commands of 4 KiB,
 * 64 KiB and 1 MiB — writes with immediate data, unsolicited Data-Out and R2T
 * sequences — go through the engine (fake transport, RAM LU) and the number
 * of allocations must be 0. The fake transport places data the way TCP does
 * (iscsi_conn_data_dest), so the same loop checks that every Data-Out was
 * received zero-copy.
 *
 * Also here: what must hold for a placed data segment — a Data-Out the engine
 * would not take as it is gets no placement, a task aborted while its data is
 * being read keeps its buffer until the PDU is freed, and a data digest error
 * on a placed Data-Out drops the connection as before. */
#include "iscsi_fake.h"

#include <malloc.h>
#include <sys/uio.h>

#define LUN1 1

/* ---- counting allocator ---- */

static volatile bool counting;
static volatile unsigned long n_alloc;
static void *first_caller;

#if defined(__SANITIZE_ADDRESS__)
/* From the sanitizer runtime (its header, sanitizer/allocator_interface.h,
 * is not installed with every compiler). */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					      void (*free_hook)(const volatile void *));
#define COUNTER_KIND "sanitizer malloc hook"

static void count_hook(const volatile void *ptr, size_t size)
{
	(void)ptr;
	(void)size;
	if (counting)
		n_alloc++;
}

static void free_hook(const volatile void *ptr)
{
	(void)ptr;
}

static void counter_install(void)
{
	/* The runtime wants both hooks. */
	assert_int_not_equal(__sanitizer_install_malloc_and_free_hooks(count_hook, free_hook), 0);
}
#else
#define COUNTER_KIND "malloc interposition"
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static void counted(void *caller)
{
	if (!counting)
		return;
	if (n_alloc++ == 0)
		first_caller = caller;
}

void *malloc(size_t n)
{
	counted(__builtin_return_address(0));
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	counted(__builtin_return_address(0));
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	counted(__builtin_return_address(0));
	return __libc_realloc(p, n);
}

void free(void *p)
{
	__libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	counted(__builtin_return_address(0));
	p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
	counted(__builtin_return_address(0));
	return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
	counted(__builtin_return_address(0));
	return __libc_memalign(align, n);
}

static void counter_install(void)
{
}
#endif

static void *volatile sink;
static void count_start(void);

/* The counter counts (a compiler may drop a malloc/free pair it can see). */
static void counter_selftest(void)
{
	count_start();
	sink = malloc(24);
	free(sink);
	sink = calloc(2, 24);
	free(sink);
	counting = false;
	assert_int_equal(n_alloc, 2);
}

static void count_start(void)
{
	n_alloc = 0;
	first_caller = NULL;
	counting = true;
}

static unsigned long count_stop(void)
{
	counting = false;
	if (n_alloc)
		fprintf(stderr, "allocations while measuring: %lu (%s), first from %p\n",
			n_alloc, COUNTER_KIND, first_caller);
	return n_alloc;
}

/* ---- driving commands ---- */

#define IMM_LEN   8192u          /* immediate data per write command */
#define PDU_LEN   8192u          /* Data-Out PDU size */
#define FIRST_BURST 65536u

static const char *const keys[] = { "InitialR2T=No", "ImmediateData=Yes",
				    "MaxRecvDataSegmentLength=65536",
				    "FirstBurstLength=65536", "MaxBurstLength=262144",
				    "MaxOutstandingR2T=1", NULL };

static uint8_t wbuf[1u << 20];

static void cmd_bhs(struct fake *f, uint8_t *bhs, uint8_t flags, uint8_t op, uint32_t lba,
		    uint32_t len, uint32_t dlen)
{
	uint16_t blocks = (uint16_t)(len / 512);

	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_SCSI_CMD;
	bhs[1] = flags | 1;                    /* SIMPLE */
	put_be24(bhs + BHS_DLEN, dlen);
	iscsi_lun_encode(LUN1, bhs + BHS_LUN);
	put_be32(bhs + BHS_ITT, ++f->itt);
	put_be32(bhs + BHS_EDTL, len);
	put_be32(bhs + BHS_CMDSN, f->cmdsn++);
	put_be32(bhs + BHS_EXPSTATSN, f->expstatsn);
	bhs[BHS_CDB] = op;
	put_be32(bhs + BHS_CDB + 2, lba);
	put_be16(bhs + BHS_CDB + 7, blocks);
}

static void data_out_bhs(struct fake *f, uint8_t *bhs, uint32_t itt, uint32_t ttt,
			 uint32_t datasn, uint32_t off, uint32_t len, bool final)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = ISCSI_OP_DATA_OUT;
	bhs[1] = final ? ISCSI_FLAG_FINAL : 0;
	put_be24(bhs + BHS_DLEN, len);
	iscsi_lun_encode(LUN1, bhs + BHS_LUN);
	put_be32(bhs + BHS_ITT, itt);
	put_be32(bhs + BHS_TTT, ttt);
	put_be32(bhs + BHS_EXPSTATSN, f->expstatsn);
	put_be32(bhs + BHS_DATASN, datasn);
	put_be32(bhs + BHS_BUFOFF, off);
}

/* Data-Out PDUs of PDU_LEN for [off, end), DataSN from sn, F on the last. */
static unsigned send_burst(struct fake *f, uint32_t itt, uint32_t ttt, uint32_t sn,
			   uint32_t off, uint32_t end)
{
	uint8_t bhs[ISCSI_BHS_LEN];
	unsigned n = 0;

	for (; off < end; sn++, n++) {
		uint32_t len = end - off < PDU_LEN ? end - off : PDU_LEN;

		data_out_bhs(f, bhs, itt, ttt, sn, off, len, off + len == end);
		fx_recv(f, bhs, wbuf + off, len);
		off += len;
	}
	return n;
}

/* The status of command itt among the captured headers, 0xff if none yet. */
static uint8_t status_of(const struct fake *f, uint32_t itt)
{
	for (unsigned i = 0; i < f->ncap; i++) {
		const uint8_t *b = f->cap[i].bhs;

		if (get_be32(b + BHS_ITT) != itt)
			continue;
		if (bhs_opcode(b) == ISCSI_OP_SCSI_RSP ||
		    (bhs_opcode(b) == ISCSI_OP_DATA_IN && (b[1] & ISCSI_DATAIN_STATUS)))
			return b[3];
	}
	return 0xff;
}

/* WRITE(10) of len bytes at lba: immediate data, unsolicited Data-Out up to
 * FirstBurstLength, then whatever R2Ts ask for. Returns the Data-Out count. */
static unsigned do_write(struct fake *f, uint32_t lba, uint32_t len)
{
	uint8_t bhs[ISCSI_BHS_LEN];
	uint32_t imm = len < IMM_LEN ? len : IMM_LEN;
	uint32_t unsol_end = len < FIRST_BURST ? len : FIRST_BURST;
	unsigned ndo = 0;
	uint32_t itt;

	f->ncap = 0;
	cmd_bhs(f, bhs, (imm == len ? ISCSI_FLAG_FINAL : 0) | ISCSI_CMD_WRITE, 0x2a, lba, len, imm);
	itt = f->itt;
	fx_recv(f, bhs, wbuf, imm);
	if (imm < unsol_end)
		ndo += send_burst(f, itt, TTT_NONE, 0, imm, unsol_end);
	for (int rounds = 0; rounds < 64; rounds++) {
		unsigned from = f->ncap;

		fx_pump(f);
		if (status_of(f, itt) != 0xff)
			break;
		for (unsigned i = from; i < f->ncap; i++) {
			const uint8_t *b = f->cap[i].bhs;

			if (bhs_opcode(b) != ISCSI_OP_R2T)
				continue;
			uint32_t off = get_be32(b + BHS_BUFOFF);

			ndo += send_burst(f, itt, get_be32(b + BHS_TTT), 0, off,
					  off + get_be32(b + BHS_RESID));
		}
	}
	assert_int_equal(status_of(f, itt), SAM_STAT_GOOD);
	return ndo;
}

static void do_read(struct fake *f, uint32_t lba, uint32_t len)
{
	uint8_t bhs[ISCSI_BHS_LEN];

	f->ncap = 0;
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 0x28, lba, len, 0);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	assert_int_equal(status_of(f, f->itt), SAM_STAT_GOOD);
}

static struct fake *login_ready(void)
{
	struct fake *f = fx_login_normal(keys);
	uint8_t bhs[ISCSI_BHS_LEN];

	/* TEST UNIT READY eats the POWER ON unit attention. */
	cmd_bhs(f, bhs, ISCSI_FLAG_FINAL, 0x00, 0, 0, 0);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	fx_free_caps(f);
	f->hdr_only = true;
	return f;
}

static const uint32_t sizes[] = { 4096, 65536, 1u << 20 };

/* One round of every size, reads and writes; returns the Data-Out count. */
static unsigned io_round(struct fake *f, uint32_t round)
{
	unsigned ndo = 0;

	for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		uint32_t lba = (round % 2) * 2048 + s * 4096 % 8192;

		ndo += do_write(f, lba, sizes[s]);
		do_read(f, lba, sizes[s]);
	}
	return ndo;
}

static void test_io_path_no_malloc(void **state)
{
	struct fake *f;
	unsigned ndo = 0, placed;
	uint8_t *back;

	(void)state;
	counter_install();
	counter_selftest();
	for (uint32_t i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i * 13 + (i >> 10));
	f = login_ready();
	for (int i = 0; i < 3; i++)              /* warm-up: pool chunks, slabs */
		io_round(f, (uint32_t)i);
	placed = f->placed;
	count_start();
	for (uint32_t i = 0; i < 20; i++)
		ndo += io_round(f, i);
	assert_int_equal(count_stop(), 0);
	/* Every Data-Out went straight into its task buffer. */
	assert_true(ndo > 20 * 100);
	assert_int_equal(f->placed - placed, ndo);

	/* And the data is what was written (the 1 MiB write, read back). */
	f->hdr_only = false;
	f->ncap = 0;
	back = malloc(1u << 20);
	assert_non_null(back);
	{
		uint8_t bhs[ISCSI_BHS_LEN];
		uint32_t got = 0;

		cmd_bhs(f, bhs, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 0x28, 2048, 1u << 20, 0);
		fx_recv(f, bhs, NULL, 0);
		fx_pump(f);
		for (unsigned i = 0; i < f->ncap; i++) {
			if (bhs_opcode(f->cap[i].bhs) != ISCSI_OP_DATA_IN)
				continue;
			assert_int_equal(get_be32(f->cap[i].bhs + BHS_BUFOFF), got);
			memcpy(back + got, f->cap[i].data, f->cap[i].len);
			got += f->cap[i].len;
		}
		assert_int_equal(got, 1u << 20);
		assert_memory_equal(back, wbuf, 1u << 20);
	}
	free(back);
	fx_disconnect(f);
}

/* Starts a 64 KiB write with F=0 and no immediate data: unsolicited data
 * from offset 0 is expected next. */
static uint32_t start_unsolicited(struct fake *f)
{
	uint8_t bhs[ISCSI_BHS_LEN];

	cmd_bhs(f, bhs, ISCSI_CMD_WRITE, 0x2a, 64, 65536, 0);
	fx_recv(f, bhs, NULL, 0);
	fx_pump(f);
	return f->itt;
}

static struct iscsi_pdu *header_pdu(struct fake *f, const uint8_t *bhs)
{
	struct iscsi_pdu *p = iscsi_pdu_alloc(f->conn);

	assert_non_null(p);
	memcpy(p->bhs, bhs, ISCSI_BHS_LEN);
	p->data_len = bhs_data_len(bhs);
	return p;
}

/* Only a Data-Out the engine takes as it is gets task buffer memory. */
static void test_placement_rules(void **state)
{
	struct fake *f = login_ready();
	uint8_t bhs[ISCSI_BHS_LEN];
	struct iovec iov[8];
	struct iscsi_pdu *p;
	struct iscsi_task *t;
	uint32_t itt;

	(void)state;
	itt = start_unsolicited(f);
	t = task_find(f->conn, itt);
	assert_non_null(t);
	/* Wrong offset, wrong DataSN, unknown ITT, unknown TTT, past the
	 * FirstBurstLength: no placement (the engine copies or fails them). */
	const struct { uint32_t itt, ttt, sn, off, len; } bad[] = {
		{ itt, TTT_NONE, 0, 4096, 4096 },
		{ itt, TTT_NONE, 1, 0, 4096 },
		{ itt + 77, TTT_NONE, 0, 0, 4096 },
		{ itt, 0x1234, 0, 0, 4096 },
		{ itt, TTT_NONE, 0, 0, 65536 + 4096 },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		data_out_bhs(f, bhs, bad[i].itt, bad[i].ttt, bad[i].sn, bad[i].off, bad[i].len,
			     false);
		p = header_pdu(f, bhs);
		assert_int_equal(iscsi_conn_data_dest(f->conn, p, iov, 8), 0);
		assert_false(p->rx_placed);
		iscsi_pdu_free(f->conn, p);
	}
	assert_int_equal(t->rx_pins, 0);
	/* The expected one: placed at offset 0 of the task buffer. */
	data_out_bhs(f, bhs, itt, TTT_NONE, 0, 0, 8192, false);
	p = header_pdu(f, bhs);
	assert_int_equal(iscsi_conn_data_dest(f->conn, p, iov, 8), 1);
	assert_true(p->rx_placed);
	assert_ptr_equal(iov[0].iov_base, t->st.iov[0].iov_base);
	assert_int_equal(iov[0].iov_len, 8192);
	assert_int_equal(t->rx_pins, 1);
	/* No room for the iovecs: no placement either. */
	{
		struct iscsi_pdu *q = header_pdu(f, bhs);

		assert_int_equal(iscsi_conn_data_dest(f->conn, q, iov, 0), 0);
		iscsi_pdu_free(f->conn, q);
	}
	memcpy(t->st.iov[0].iov_base, wbuf, 8192);
	iscsi_conn_recv(f->conn, p, 0);
	assert_int_equal(t->rx_pins, 0);
	assert_int_equal(t->data_got, 8192);
	/* The rest, then the command completes. */
	send_burst(f, itt, TTT_NONE, 1, 8192, 65536);
	fx_pump(f);
	assert_int_equal(status_of(f, itt), SAM_STAT_GOOD);
	fx_disconnect(f);
}

/* The connection goes (e.g. a session reinstatement) while a placed data
 * segment is still being read: the task's buffer stays until the transport
 * frees the PDU (run under ASan, a write after the free would be caught). */
static void test_abort_while_placed(void **state)
{
	struct fake *f = login_ready();
	uint8_t bhs[ISCSI_BHS_LEN];
	struct iovec iov[8];
	struct iscsi_pdu *p;
	struct iscsi_task *t;
	struct iscsi_conn *c = f->conn;
	uint32_t itt;

	(void)state;
	itt = start_unsolicited(f);
	t = task_find(c, itt);
	data_out_bhs(f, bhs, itt, TTT_NONE, 0, 0, 16384, false);
	p = header_pdu(f, bhs);
	assert_int_equal(iscsi_conn_data_dest(c, p, iov, 8), 1);
	/* Half the data arrived; then the engine aborts every task. */
	memcpy(iov[0].iov_base, wbuf, 8192);
	task_abort(t);
	assert_int_equal(task_find(c, itt), t);   /* still there: pinned */
	memcpy((uint8_t *)iov[0].iov_base + 8192, wbuf + 8192, 8192);
	/* Delivered now, it is dropped, and the task goes with it. */
	iscsi_conn_recv(c, p, 0);
	assert_null(task_find(c, itt));
	fx_pump(f);
	assert_int_equal(status_of(f, itt), 0xff);    /* no response for it */
	fx_disconnect(f);
}

/* A placed Data-Out with a bad data digest: the connection is dropped (ERL 0)
 * and the task, pinned until then, goes with it. */
static void test_digest_error_placed(void **state)
{
	struct fake *f = login_ready();
	uint8_t bhs[ISCSI_BHS_LEN];
	struct iovec iov[8];
	struct iscsi_pdu *p;
	uint32_t itt;

	(void)state;
	itt = start_unsolicited(f);
	data_out_bhs(f, bhs, itt, TTT_NONE, 0, 0, 8192, false);
	p = header_pdu(f, bhs);
	assert_int_equal(iscsi_conn_data_dest(f->conn, p, iov, 8), 1);
	memset(iov[0].iov_base, 0xee, 8192);
	iscsi_conn_recv(f->conn, p, ISCSI_REJECT_DATA_DIGEST);
	assert_true(f->closed);
	fx_disconnect(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_path_no_malloc),
		cmocka_unit_test(test_placement_rules),
		cmocka_unit_test(test_abort_while_placed),
		cmocka_unit_test(test_digest_error_placed),
	};

	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
