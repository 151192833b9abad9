/* test_pr.c — SCSI reservations: PERSISTENT RESERVE IN/OUT, the conflict
 * tables, unit attentions, APTPL state files, SPC-2 RESERVE/RELEASE. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mem/pool.h"
#include "scsi/pr.h"
#include "scsi/scsi.h"

/* ---- fixtures ---- */

/* PR type codes and service actions, spelled out as the spec numbers them. */
enum { WE = 1, EA = 3, WE_RO = 5, EA_RO = 6, WE_AR = 7, EA_AR = 8 };
enum { REGISTER = 0, RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT_ABORT, REG_IGNORE, REG_MOVE };
enum { READ_KEYS = 0, READ_RESERVATION, REPORT_CAPS, READ_FULL_STATUS };

#define NNEXUS 4
static struct scsi_nexus NX[NNEXUS];
#define A (&NX[0])
#define B (&NX[1])
#define C (&NX[2])
#define D (&NX[3])

static struct mem_pool *POOL;
static struct scsi_task T;
static uint8_t data[1 << 16];     /* PR OUT parameter list / PR IN data, flat */

struct ua_rec { char port[300]; uint16_t rel; uint8_t asc, ascq; };
static struct ua_rec uas[600];
static unsigned nuas;

struct abort_rec { char port[300]; const struct scsi_task *by; };
static struct abort_rec aborts[600];
static unsigned naborts;

static void ua_cb(void *ctx, const char *port, uint16_t rel, uint8_t asc, uint8_t ascq)
{
	(void)ctx;
	assert_true(nuas < 600);
	snprintf(uas[nuas].port, sizeof(uas[nuas].port), "%s", port);
	uas[nuas].rel = rel;
	uas[nuas].asc = asc;
	uas[nuas].ascq = ascq;
	nuas++;
}

static void abort_cb(void *ctx, const struct scsi_task *by, const char *port, uint16_t rel)
{
	(void)ctx;
	(void)rel;
	assert_true(naborts < 600);
	snprintf(aborts[naborts].port, sizeof(aborts[naborts].port), "%s", port);
	aborts[naborts].by = by;
	naborts++;
}

static unsigned uas_for(const struct scsi_nexus *n, uint8_t ascq)
{
	unsigned c = 0;
	for (unsigned i = 0; i < nuas; i++)
		if (pr_initiator_port_match(uas[i].port, n->initiator_port) &&
		    uas[i].asc == 0x2a && uas[i].ascq == ascq)
			c++;
	return c;
}

static unsigned aborts_for(const struct scsi_nexus *n)
{
	unsigned c = 0;
	for (unsigned i = 0; i < naborts; i++)
		if (pr_initiator_port_match(aborts[i].port, n->initiator_port))
			c++;
	return c;
}

static void nexus_init(void)
{
	memset(NX, 0, sizeof(NX));
	for (int i = 0; i < NNEXUS; i++) {
		snprintf(NX[i].initiator_port, sizeof(NX[i].initiator_port),
			 "iqn.2024-01.org.lich:init%d,i,0x00023d00000%d", i, i);
		snprintf(NX[i].initiator_name, sizeof(NX[i].initiator_name),
			 "iqn.2024-01.org.lich:init%d", i);
		NX[i].id = (uint64_t)i + 1;
		NX[i].rel_port_id = 1;
		NX[i].tpgt = 1;
	}
	nuas = naborts = 0;
}

static int setup(void **state)
{
	struct scsi_pr *pr;

	nexus_init();
	assert_int_equal(pr_create(NULL, ua_cb, NULL, &pr), 0);
	pr_set_abort_fn(pr, abort_cb, NULL);
	*state = pr;
	return 0;
}

static int teardown(void **state)
{
	pr_destroy(*state);
	return 0;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

static void task_setup(struct scsi_nexus *n, const uint8_t *cdb, unsigned cdb_len)
{
	scsi_task_init(&T);
	T.nexus = n;
	T.pool = POOL;
	memcpy(T.cdb, cdb, cdb_len);
	T.cdb_len = (uint8_t)cdb_len;
}

/* Flattens the task's Data-In into data[] and gives the buffer back. */
static void take_data_in(void)
{
	uint32_t off = 0;

	for (int i = 0; i < T.iovcnt; i++) {
		size_t n = T.iov[i].iov_len;
		if (off + n > T.data_in_len)
			n = T.data_in_len - off;
		memcpy(data + off, T.iov[i].iov_base, n);
		off += (uint32_t)n;
		mem_free(POOL, T.iov[i].iov_base);
	}
	assert_int_equal(off, T.data_in_len);
	T.iovcnt = 0;
	T.buf_len = 0;
}

/* PERSISTENT RESERVE OUT with an arbitrary parameter list. */
static int prout_raw(struct scsi_pr *pr, struct scsi_nexus *n, unsigned sa, uint8_t scope_type,
		     const uint8_t *plist, uint32_t len, uint32_t cdb_len_field)
{
	uint8_t cdb[10] = { 0x5f, (uint8_t)sa, scope_type };

	put32(cdb + 5, cdb_len_field);
	task_setup(n, cdb, sizeof(cdb));
	/* The parameter list as the transport would have left it: split in
	 * two segments to exercise the gathering. */
	memcpy(data, plist, len);
	T.iov[0].iov_base = data;
	T.iov[0].iov_len = len / 2;
	T.iov[1].iov_base = data + len / 2;
	T.iov[1].iov_len = len - len / 2;
	T.iovcnt = 2;
	T.exp_write = true;
	T.exp_xfer_len = len;
	T.data_out_len = len;
	T.data_out_got = len;
	pr_out(pr, &T);
	T.iovcnt = 0;              /* data[] is not pool memory */
	return T.status;
}

static int prout(struct scsi_pr *pr, struct scsi_nexus *n, unsigned sa, unsigned type,
		 uint64_t rk, uint64_t sark, uint8_t flags)
{
	uint8_t pl[24] = { 0 };

	put64(pl, rk);
	put64(pl + 8, sark);
	pl[20] = flags;
	return prout_raw(pr, n, sa, (uint8_t)type, pl, sizeof(pl), sizeof(pl));
}

static int prin(struct scsi_pr *pr, struct scsi_nexus *n, unsigned sa, uint16_t alloc)
{
	uint8_t cdb[10] = { 0x5e, (uint8_t)sa };

	put16(cdb + 7, alloc);
	task_setup(n, cdb, sizeof(cdb));
	T.exp_read = true;
	T.exp_xfer_len = alloc;
	T.aux = alloc;             /* the allocation length, as spc_pr_in records it */
	pr_in(pr, &T);
	memset(data, 0xee, 4096);
	take_data_in();
	return T.status;
}

static bool conflict_cdb(struct scsi_pr *pr, struct scsi_nexus *n, const uint8_t *cdb, unsigned len)
{
	task_setup(n, cdb, len);
	return pr_conflict(pr, &T);
}

static bool conflicts(struct scsi_pr *pr, struct scsi_nexus *n, uint8_t opcode)
{
	uint8_t cdb[16] = { opcode };
	return conflict_cdb(pr, n, cdb, 10);
}

static void assert_sense(uint8_t key, uint8_t asc, uint8_t ascq)
{
	assert_int_equal(T.status, SAM_STAT_CHECK_CONDITION);
	assert_true(T.sense_len >= 14);
	assert_int_equal(T.sense[2] & 0x0f, key);
	assert_int_equal(T.sense[12], asc);
	assert_int_equal(T.sense[13], ascq);
}

/* Sense key specific field pointer: c_d 1 = CDB, 0 = parameter list. */
static void assert_field(int c_d, unsigned byte, int bit)
{
	assert_int_equal(T.sense[15] & 0x80, 0x80);
	assert_int_equal(!!(T.sense[15] & 0x40), c_d);
	if (bit >= 0)
		assert_int_equal(T.sense[15] & 0x0f, 0x08 | bit);
	else
		assert_int_equal(T.sense[15] & 0x08, 0);
	assert_int_equal(get16(T.sense + 16), byte);
}

static unsigned read_keys(struct scsi_pr *pr, uint64_t *keys, uint32_t *gen)
{
	assert_int_equal(prin(pr, A, READ_KEYS, 8192), SAM_STAT_GOOD);
	uint32_t al = get32(data + 4);
	assert_int_equal(T.data_in_len, 8 + al);
	for (unsigned i = 0; i < al / 8; i++)
		keys[i] = get64(data + 8 + 8 * i);
	if (gen)
		*gen = get32(data);
	return al / 8;
}

/* Reservation as READ RESERVATION reports it: type (0 = none) and key. */
static unsigned read_resv(struct scsi_pr *pr, uint64_t *key)
{
	assert_int_equal(prin(pr, D, READ_RESERVATION, 8192), SAM_STAT_GOOD);
	if (get32(data + 4) == 0) {
		assert_int_equal(T.data_in_len, 8);
		return 0;
	}
	assert_int_equal(get32(data + 4), 16);
	assert_int_equal(T.data_in_len, 24);
	*key = get64(data + 8);
	return data[21];
}

static bool has_key(const uint64_t *keys, unsigned n, uint64_t k)
{
	for (unsigned i = 0; i < n; i++)
		if (keys[i] == k)
			return true;
	return false;
}

/* Builds an iSCSI TransportID; addl 0 = natural length. */
static size_t tid(uint8_t *out, unsigned fmt, const char *s, unsigned addl)
{
	size_t n = strlen(s);
	if (!addl) {
		addl = (unsigned)((n + 1 + 3) & ~(size_t)3);
		if (addl < 20)
			addl = 20;
	}
	memset(out, 0, 4 + addl);
	out[0] = (uint8_t)(fmt << 6 | 5);
	put16(out + 2, (uint16_t)addl);
	memcpy(out + 4, s, n < addl ? n : addl);
	return 4 + addl;
}

/* REGISTER with SPEC_I_PT=1 and the given TransportIDs. */
static int register_spec(struct scsi_pr *pr, struct scsi_nexus *n, uint64_t rk, uint64_t sark,
			 const uint8_t *tids, size_t len, uint8_t extra_flags)
{
	static uint8_t pl[sizeof(data)];
	memset(pl, 0, 28);
	put64(pl, rk);
	put64(pl + 8, sark);
	pl[20] = 0x08 | extra_flags;
	put32(pl + 24, (uint32_t)len);
	memcpy(pl + 28, tids, len);
	return prout_raw(pr, n, REGISTER, 0, pl, (uint32_t)(28 + len), (uint32_t)(28 + len));
}

/* ---- registration, READ KEYS, generation ---- */

static void test_register_and_read_keys(void **state)
{
	struct scsi_pr *pr = *state;
	uint64_t keys[8];
	uint32_t g0, g;

	assert_int_equal(read_keys(pr, keys, &g0), 0);
	assert_int_equal(g0, 0);

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0xaa, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REG_IGNORE, 0, 0x1234, 0xbb, 0), SAM_STAT_GOOD);
	assert_int_equal(read_keys(pr, keys, &g), 2);
	assert_true(has_key(keys, 2, 0xaa) && has_key(keys, 2, 0xbb));
	assert_int_equal(g, 2);
	assert_int_equal(pr_generation(pr), 2);
	assert_int_equal(pr_registration_count(pr), 2);

	/* An unregistered nexus must send key 0. */
	assert_int_equal(prout(pr, C, REGISTER, 0, 0x99, 0xcc, 0), SAM_STAT_RESERVATION_CONFLICT);
	/* Unregistering what is not registered: GOOD, no change. */
	assert_int_equal(prout(pr, C, REGISTER, 0, 0, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(pr_generation(pr), 2);

	/* A registered nexus must send its key; REGISTER AND IGNORE need not. */
	assert_int_equal(prout(pr, A, REGISTER, 0, 0xbb, 0xa1, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(pr_generation(pr), 2);
	assert_int_equal(prout(pr, A, REGISTER, 0, 0xaa, 0xa1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REG_IGNORE, 0, 0x5555, 0xb1, 0), SAM_STAT_GOOD);
	assert_int_equal(read_keys(pr, keys, &g), 2);
	assert_true(has_key(keys, 2, 0xa1) && has_key(keys, 2, 0xb1));
	assert_int_equal(g, 4);

	/* Unregister. */
	assert_int_equal(prout(pr, A, REGISTER, 0, 0xa1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(read_keys(pr, keys, &g), 1);
	assert_int_equal(keys[0], 0xb1);
	assert_int_equal(g, 5);
	assert_int_equal(nuas, 0);
}

static void test_read_keys_truncated(void **state)
{
	struct scsi_pr *pr = *state;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1111, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2222, 0), SAM_STAT_GOOD);
	assert_int_equal(prin(pr, A, READ_KEYS, 8), SAM_STAT_GOOD);
	assert_int_equal(T.data_in_len, 8);
	assert_int_equal(get32(data), 2);
	assert_int_equal(get32(data + 4), 16);   /* not altered by the allocation length */
	assert_int_equal(data[8], 0xee);         /* nothing beyond 8 bytes */
	assert_int_equal(prin(pr, A, READ_KEYS, 12), SAM_STAT_GOOD);
	assert_int_equal(T.data_in_len, 12);
	assert_int_equal(prin(pr, A, READ_KEYS, 0), SAM_STAT_GOOD);
	assert_int_equal(T.data_in_len, 0);
}

static void test_prin_service_action_range(void **state)
{
	struct scsi_pr *pr = *state;

	for (unsigned sa = 0; sa < 4; sa++)
		assert_int_equal(prin(pr, A, sa, 16384), SAM_STAT_GOOD);
	for (unsigned sa = 4; sa < 0x20; sa++) {
		prin(pr, A, sa, 16384);
		assert_sense(SK_ILLEGAL_REQUEST, 0x24, 0);
		assert_field(1, 1, 4);
	}
}

static void test_report_capabilities(void **state)
{
	struct scsi_pr *pr = *state;
	static const uint8_t want[8] = { 0x00, 0x08, 0x1c, 0xb0, 0xea, 0x01, 0x00, 0x00 };

	assert_int_equal(prin(pr, A, REPORT_CAPS, 100), SAM_STAT_GOOD);
	assert_int_equal(T.data_in_len, 8);
	/* CRH SIP_C ATP_C, PTPL_C=0 (no state file); TMV, ALLOW COMMANDS 011b,
	 * PTPL_A=0; all six types. */
	assert_memory_equal(data, want, 8);
	assert_int_equal(prin(pr, A, REPORT_CAPS, 4), SAM_STAT_GOOD);
	assert_int_equal(T.data_in_len, 4);
	assert_int_equal(get16(data), 8);
}

/* ---- RESERVE / RELEASE ---- */

static void test_reserve_release_each_type(void **state)
{
	struct scsi_pr *pr = *state;
	static const unsigned types[] = { WE_AR, EA_RO, WE_RO, EA, WE, EA_AR };
	uint64_t key;

	assert_int_equal(prout(pr, A, REG_IGNORE, 0, 0, 0xabc, 0), SAM_STAT_GOOD);
	uint32_t gen = pr_generation(pr);
	for (unsigned i = 0; i < 6; i++) {
		unsigned type = types[i];
		bool ar = type == WE_AR || type == EA_AR;
		assert_int_equal(prout(pr, A, RESERVE, type, 0xabc, 0, 0), SAM_STAT_GOOD);
		assert_int_equal(read_resv(pr, &key), type);
		assert_int_equal(key, ar ? 0 : 0xabc);
		/* The same RESERVE again is a no-op; another type conflicts. */
		assert_int_equal(prout(pr, A, RESERVE, type, 0xabc, 0, 0), SAM_STAT_GOOD);
		assert_int_equal(prout(pr, A, RESERVE, type == WE ? EA : WE, 0xabc, 0, 0),
				 SAM_STAT_RESERVATION_CONFLICT);
		/* RELEASE must name the type held. */
		prout(pr, A, RELEASE, type == WE ? EA : WE, 0xabc, 0, 0);
		assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0x04);
		assert_int_equal(prout(pr, A, RELEASE, type, 0xabc, 0, 0), SAM_STAT_GOOD);
		assert_int_equal(read_resv(pr, &key), 0);
	}
	assert_int_equal(pr_generation(pr), gen);   /* RESERVE/RELEASE do not count */
	assert_int_equal(nuas, 0);
}

static void test_reserve_errors(void **state)
{
	struct scsi_pr *pr = *state;
	uint64_t key;

	/* Unregistered, or with the wrong key. */
	assert_int_equal(prout(pr, A, RESERVE, WE, 0, 0, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x10, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, WE, 0x11, 0, 0), SAM_STAT_RESERVATION_CONFLICT);
	/* Invalid types and scopes. */
	for (unsigned type = 0; type < 16; type++) {
		if (type == WE || type == EA || (type >= WE_RO && type <= EA_AR))
			continue;
		prout(pr, A, RESERVE, type, 0x10, 0, 0);
		assert_sense(SK_ILLEGAL_REQUEST, 0x24, 0);
		assert_field(1, 2, 3);
	}
	prout(pr, A, RESERVE, 0x10 | WE, 0x10, 0, 0);
	assert_sense(SK_ILLEGAL_REQUEST, 0x24, 0);
	assert_field(1, 2, 7);
	assert_int_equal(read_resv(pr, &key), 0);

	/* Someone else's reservation. */
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x20, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, EA, 0x10, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, RESERVE, EA, 0x20, 0, 0), SAM_STAT_RESERVATION_CONFLICT);
	/* RELEASE from a registered non-holder: GOOD, nothing happens. */
	assert_int_equal(prout(pr, B, RELEASE, EA, 0x20, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(read_resv(pr, &key), EA);
	assert_int_equal(key, 0x10);
	/* RELEASE from an unregistered nexus conflicts. */
	assert_int_equal(prout(pr, C, RELEASE, EA, 0, 0, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(prout(pr, A, RELEASE, EA, 0x99, 0, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(read_resv(pr, &key), EA);
}

/* READ(10), WRITE(10) and friends from registered and unregistered non-holders
 * under each type (the libiscsi ProutReserveAccess* matrix, and more). */
static void test_conflict_matrix(void **state)
{
	struct scsi_pr *pr = *state;
	static const struct {
		unsigned type;
		bool reg_read, reg_write, unreg_read, unreg_write;
	} m[] = {
		{ EA, false, false, false, false },
		{ WE, true, false, true, false },
		{ EA_RO, true, true, false, false },
		{ WE_RO, true, true, true, false },
		{ EA_AR, true, true, false, false },
		{ WE_AR, true, true, true, false },
	};
	static const uint8_t any_ops[] = { 0x00, 0x12, 0x03, 0xa0, 0x25, 0x5e, 0x4d };
	static const uint8_t write_ops[] = { 0x2a, 0x0a, 0xaa, 0x8a, 0x35, 0x91, 0x42, 0x41,
					     0x93, 0x89, 0x2e, 0x04, 0x48, 0x15, 0x55, 0x3b };
	static const uint8_t read_ops[] = { 0x28, 0x08, 0xa8, 0x88, 0x2f, 0x8f, 0x1a, 0x5a, 0x34 };

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0xa, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0xb, 0), SAM_STAT_GOOD);
	for (unsigned i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		assert_int_equal(prout(pr, A, RESERVE, m[i].type, 0xa, 0, 0), SAM_STAT_GOOD);
		for (unsigned k = 0; k < sizeof(read_ops); k++) {
			assert_false(conflicts(pr, A, read_ops[k]));
			assert_int_equal(conflicts(pr, B, read_ops[k]), !m[i].reg_read);
			assert_int_equal(conflicts(pr, C, read_ops[k]), !m[i].unreg_read);
		}
		for (unsigned k = 0; k < sizeof(write_ops); k++) {
			assert_false(conflicts(pr, A, write_ops[k]));
			assert_int_equal(conflicts(pr, B, write_ops[k]), !m[i].reg_write);
			assert_int_equal(conflicts(pr, C, write_ops[k]), !m[i].unreg_write);
		}
		for (unsigned k = 0; k < sizeof(any_ops); k++) {
			assert_false(conflicts(pr, B, any_ops[k]));
			assert_false(conflicts(pr, C, any_ops[k]));
		}
		/* PR OUT, RESERVE, RELEASE decide for themselves. */
		assert_false(conflicts(pr, C, 0x5f));
		assert_false(conflicts(pr, C, 0x16));
		assert_false(conflicts(pr, C, 0x57));
		assert_int_equal(prout(pr, A, RELEASE, m[i].type, 0xa, 0, 0), SAM_STAT_GOOD);
		assert_false(conflicts(pr, C, 0x2a));
	}
}

static void test_conflict_service_actions_and_bits(void **state)
{
	struct scsi_pr *pr = *state;
	uint8_t cdb[32];

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0xa, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, EA, 0xa, 0, 0), SAM_STAT_GOOD);
	/* READ CAPACITY(16) passes, GET LBA STATUS does not (EA). */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x9e; cdb[1] = 0x10;
	assert_false(conflict_cdb(pr, C, cdb, 16));
	cdb[1] = 0x12;
	assert_true(conflict_cdb(pr, C, cdb, 16));
	/* REPORT TARGET PORT GROUPS passes, REPORT SUPPORTED OPCODES does not. */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0xa3; cdb[1] = 0x0a;
	assert_false(conflict_cdb(pr, C, cdb, 12));
	cdb[1] = 0x0c;
	assert_true(conflict_cdb(pr, C, cdb, 12));
	/* PREVENT ALLOW MEDIUM REMOVAL: allowing passes, preventing does not. */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x1e;
	assert_false(conflict_cdb(pr, C, cdb, 6));
	cdb[4] = 1;
	assert_true(conflict_cdb(pr, C, cdb, 6));
	/* START STOP UNIT: START=1 passes, a stop does not. */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x1b; cdb[4] = 0x01;
	assert_false(conflict_cdb(pr, C, cdb, 6));
	cdb[4] = 0x00;
	assert_true(conflict_cdb(pr, C, cdb, 6));
	cdb[4] = 0x31;               /* START with a POWER CONDITION */
	assert_true(conflict_cdb(pr, C, cdb, 6));
	/* 32-byte READ passes under WE, WRITE(32) does not. */
	assert_int_equal(prout(pr, A, RELEASE, EA, 0xa, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, WE, 0xa, 0, 0), SAM_STAT_GOOD);
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x7f; cdb[7] = 0x18; cdb[9] = 0x09;
	assert_false(conflict_cdb(pr, C, cdb, 32));
	cdb[9] = 0x0b;
	assert_true(conflict_cdb(pr, C, cdb, 32));
	/* POPULATE TOKEN reads, WRITE USING TOKEN writes. */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x83; cdb[1] = 0x10;
	assert_false(conflict_cdb(pr, C, cdb, 16));
	cdb[1] = 0x11;
	assert_true(conflict_cdb(pr, C, cdb, 16));
	/* A nexus without a usable port is treated as unregistered. */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x2a;
	task_setup(NULL, cdb, 10);
	assert_true(pr_conflict(pr, &T));
}

/* Registrations alone never make commands conflict; nothing at all: fast path. */
static void test_no_reservation_no_conflict(void **state)
{
	struct scsi_pr *pr = *state;

	assert_false(conflicts(pr, C, 0x2a));
	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0xa, 0), SAM_STAT_GOOD);
	for (unsigned op = 0; op < 256; op++) {
		if (op == 0x5e || op == 0x5f)
			continue;
		assert_false(conflicts(pr, C, (uint8_t)op));
		assert_false(conflicts(pr, A, (uint8_t)op));
	}
}

/* ---- ownership: unregistering, libiscsi ProutReserveOwnership* ---- */

static void test_unregister_holder(void **state)
{
	struct scsi_pr *pr = *state;
	static const struct { unsigned type; bool shared; bool ua; } m[] = {
		{ EA, false, false }, { WE, false, false }, { EA_RO, false, true },
		{ WE_RO, false, true }, { EA_AR, true, false }, { WE_AR, true, false },
	};
	uint64_t key;

	for (unsigned i = 0; i < 6; i++) {
		nuas = 0;
		assert_int_equal(prout(pr, A, REG_IGNORE, 0, 0, 0x1, 0), SAM_STAT_GOOD);
		assert_int_equal(prout(pr, B, REG_IGNORE, 0, 0, 0x2, 0), SAM_STAT_GOOD);
		assert_int_equal(prout(pr, A, RESERVE, m[i].type, 0x1, 0, 0), SAM_STAT_GOOD);
		assert_int_equal(prout(pr, A, REGISTER, 0, 0x1, 0, 0), SAM_STAT_GOOD);
		if (m[i].shared) {
			assert_int_equal(read_resv(pr, &key), m[i].type);
			assert_int_equal(key, 0);
			assert_int_equal(prout(pr, B, RELEASE, m[i].type, 0x2, 0, 0), SAM_STAT_GOOD);
		}
		assert_int_equal(read_resv(pr, &key), 0);
		assert_int_equal(uas_for(B, 0x04), m[i].ua ? 1 : 0);
		assert_int_equal(uas_for(A, 0x04), 0);
		assert_int_equal(prout(pr, B, REGISTER, 0, 0x2, 0, 0), SAM_STAT_GOOD);
		assert_int_equal(pr_registration_count(pr), 0);
	}
	/* The last all registrants registrant takes the reservation along. */
	assert_int_equal(prout(pr, A, REG_IGNORE, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, EA_AR, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, REGISTER, 0, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(read_resv(pr, &key), 0);
	assert_false(conflicts(pr, C, 0x2a));
}

static void test_release_unit_attentions(void **state)
{
	struct scsi_pr *pr = *state;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	/* WE: no unit attention on release. */
	assert_int_equal(prout(pr, A, RESERVE, WE, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RELEASE, WE, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(nuas, 0);
	/* WE_RO: RESERVATIONS RELEASED for the other registrants. */
	assert_int_equal(prout(pr, A, RESERVE, WE_RO, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RELEASE, WE_RO, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(nuas, 1);
	assert_int_equal(uas_for(B, 0x04), 1);
	assert_int_equal(uas[0].rel, 1);
	assert_string_equal(uas[0].port, B->initiator_port);
	/* EA_AR released by B (any registrant holds it). */
	nuas = 0;
	assert_int_equal(prout(pr, A, RESERVE, EA_AR, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, RELEASE, EA_AR, 0x2, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(nuas, 1);
	assert_int_equal(uas_for(A, 0x04), 1);
}

/* ---- CLEAR, PREEMPT ---- */

static void test_clear(void **state)
{
	struct scsi_pr *pr = *state;
	uint64_t keys[4], key;
	uint32_t g;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, C, REGISTER, 0, 0, 0x3, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, EA, 0x1, 0, 0), SAM_STAT_GOOD);
	uint32_t g0 = pr_generation(pr);
	/* Unregistered or wrong key: conflict. */
	assert_int_equal(prout(pr, D, CLEAR, 0, 0, 0, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(prout(pr, B, CLEAR, 0, 0x1, 0, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(prout(pr, B, CLEAR, 0, 0x2, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(read_keys(pr, keys, &g), 0);
	assert_int_equal(g, g0 + 1);
	assert_int_equal(read_resv(pr, &key), 0);
	assert_int_equal(uas_for(A, 0x03), 1);
	assert_int_equal(uas_for(C, 0x03), 1);
	assert_int_equal(uas_for(B, 0x03), 0);
	assert_false(conflicts(pr, D, 0x28));
}

/* libiscsi ProutPreempt.RemoveRegistration: no reservation, remove a key. */
static void test_preempt_removes_registration(void **state)
{
	struct scsi_pr *pr = *state;
	uint64_t keys[4];
	uint32_t g0, g;

	assert_int_equal(prout(pr, A, REG_IGNORE, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REG_IGNORE, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(read_keys(pr, keys, &g0), 2);
	assert_int_equal(prout(pr, B, PREEMPT, EA, 0x2, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(read_keys(pr, keys, &g), 1);
	assert_int_equal(keys[0], 0x2);
	assert_int_equal(g, g0 + 1);
	assert_int_equal(uas_for(A, 0x05), 1);
	assert_int_equal(uas_for(B, 0x05), 0);
	assert_int_equal(naborts, 0);          /* PREEMPT, not PREEMPT AND ABORT */
	uint64_t key;
	assert_int_equal(read_resv(pr, &key), 0);   /* no reservation was created */
}

static void test_preempt_reservation(void **state)
{
	struct scsi_pr *pr = *state;
	uint64_t keys[4], key;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, C, REGISTER, 0, 0, 0x3, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, D, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);  /* shares A's key */
	assert_int_equal(prout(pr, A, RESERVE, EA, 0x1, 0, 0), SAM_STAT_GOOD);
	uint32_t g0 = pr_generation(pr);
	/* B preempts the holder's key with a different type. */
	assert_int_equal(prout(pr, B, PREEMPT, WE, 0x2, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(read_keys(pr, keys, NULL), 2);
	assert_true(has_key(keys, 2, 0x2) && has_key(keys, 2, 0x3));
	assert_int_equal(read_resv(pr, &key), WE);
	assert_int_equal(key, 0x2);
	assert_int_equal(pr_generation(pr), g0 + 1);
	assert_int_equal(uas_for(A, 0x05), 1);
	assert_int_equal(uas_for(D, 0x05), 1);
	assert_int_equal(uas_for(C, 0x04), 1);   /* type changed: RESERVATIONS RELEASED */
	assert_int_equal(uas_for(B, 0x04) + uas_for(B, 0x05), 0);
	assert_true(conflicts(pr, A, 0x2a));
	assert_false(conflicts(pr, B, 0x2a));

	/* Self-preempt by the holder with the same type: no RESERVATIONS RELEASED. */
	nuas = 0;
	assert_int_equal(prout(pr, B, PREEMPT, WE, 0x2, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(read_resv(pr, &key), WE);
	assert_int_equal(key, 0x2);
	assert_int_equal(pr_registration_count(pr), 2);
	assert_int_equal(nuas, 0);

	/* Preempting with an invalid type while taking the reservation. */
	prout(pr, C, PREEMPT, 0x2, 0x3, 0x2, 0);
	assert_sense(SK_ILLEGAL_REQUEST, 0x24, 0);
	assert_int_equal(read_resv(pr, &key), WE);
	assert_int_equal(key, 0x2);
}

static void test_preempt_errors(void **state)
{
	struct scsi_pr *pr = *state;
	uint64_t key;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, WE_RO, 0x1, 0, 0), SAM_STAT_GOOD);
	uint32_t g0 = pr_generation(pr);
	assert_int_equal(prout(pr, C, PREEMPT, EA, 0, 0x1, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(prout(pr, B, PREEMPT, EA, 0x7, 0x1, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(prout(pr, B, PREEMPT, EA, 0x2, 0x99, 0), SAM_STAT_RESERVATION_CONFLICT);
	prout(pr, B, PREEMPT, EA, 0x2, 0, 0);
	assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);
	assert_field(0, 8, -1);
	assert_int_equal(pr_generation(pr), g0);
	assert_int_equal(pr_registration_count(pr), 2);
	assert_int_equal(read_resv(pr, &key), WE_RO);
	assert_int_equal(nuas, 0);
}

static void test_preempt_all_registrants(void **state)
{
	struct scsi_pr *pr = *state;
	uint64_t keys[4], key;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, C, REGISTER, 0, 0, 0x3, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, WE_AR, 0x1, 0, 0), SAM_STAT_GOOD);
	/* A non-zero key only removes registrations; the reservation stays. */
	assert_int_equal(prout(pr, B, PREEMPT, EA, 0x2, 0x3, 0), SAM_STAT_GOOD);
	assert_int_equal(uas_for(C, 0x05), 1);
	assert_int_equal(read_resv(pr, &key), WE_AR);
	/* Key zero: everyone else goes, B holds the new type. */
	assert_int_equal(prout(pr, B, PREEMPT, EA_RO, 0x2, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(read_keys(pr, keys, NULL), 1);
	assert_int_equal(keys[0], 0x2);
	assert_int_equal(read_resv(pr, &key), EA_RO);
	assert_int_equal(key, 0x2);
	assert_int_equal(uas_for(A, 0x05), 1);
}

static void test_preempt_and_abort(void **state)
{
	struct scsi_pr *pr = *state;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, C, REGISTER, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, EA, 0x1, 0, 0), SAM_STAT_GOOD);
	/* C preempts A: A's registration and tasks go. */
	assert_int_equal(prout(pr, C, PREEMPT_ABORT, EA, 0x2, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(aborts_for(A), 1);
	assert_int_equal(aborts_for(B) + aborts_for(C), 0);
	assert_ptr_equal(aborts[0].by, &T);
	assert_int_equal(uas_for(A, 0x05), 1);
	assert_int_equal(pr_registration_count(pr), 2);
	/* Preempting its own key (shared with B): B's tasks and C's other tasks. */
	naborts = 0;
	nuas = 0;
	assert_int_equal(prout(pr, C, PREEMPT_ABORT, EA, 0x2, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(aborts_for(B), 1);
	assert_int_equal(aborts_for(C), 1);
	assert_int_equal(uas_for(B, 0x05), 1);
	assert_int_equal(uas_for(C, 0x05), 0);
	assert_int_equal(pr_registration_count(pr), 1);
	assert_false(conflicts(pr, C, 0x2a));
	assert_true(conflicts(pr, B, 0x28));
}

/* ---- REGISTER AND MOVE ---- */

static int register_move(struct scsi_pr *pr, struct scsi_nexus *n, uint64_t rk, uint64_t sark,
			 uint8_t flags17, uint16_t rtpi, const uint8_t *t, size_t tlen)
{
	uint8_t pl[512] = { 0 };

	put64(pl, rk);
	put64(pl + 8, sark);
	pl[17] = flags17;
	put16(pl + 18, rtpi);
	put32(pl + 20, (uint32_t)tlen);
	memcpy(pl + 24, t, tlen);
	return prout_raw(pr, n, REG_MOVE, 0, pl, (uint32_t)(24 + tlen), (uint32_t)(24 + tlen));
}

static void test_register_and_move(void **state)
{
	struct scsi_pr *pr = *state;
	uint8_t tb[300], ta[300];
	size_t nb = tid(tb, 1, B->initiator_port, 0), na = tid(ta, 1, A->initiator_port, 0);
	uint64_t keys[4], key;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, C, REGISTER, 0, 0, 0x3, 0), SAM_STAT_GOOD);
	/* No reservation to move. */
	register_move(pr, A, 0x1, 0xb, 0, 1, tb, nb);
	assert_sense(SK_ILLEGAL_REQUEST, 0x24, 0);
	assert_int_equal(prout(pr, A, RESERVE, WE_RO, 0x1, 0, 0), SAM_STAT_GOOD);
	/* Not the holder / not registered / wrong key. */
	assert_int_equal(register_move(pr, C, 0x3, 0xb, 0, 1, tb, nb), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(register_move(pr, D, 0, 0xb, 0, 1, tb, nb), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(register_move(pr, A, 0x2, 0xb, 0, 1, tb, nb), SAM_STAT_RESERVATION_CONFLICT);
	/* Key zero, to itself, relative port zero. */
	register_move(pr, A, 0x1, 0, 0, 1, tb, nb);
	assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);
	assert_field(0, 8, -1);
	register_move(pr, A, 0x1, 0xb, 0, 1, ta, na);
	assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);
	assert_field(0, 24, -1);
	register_move(pr, A, 0x1, 0xb, 0, 0, tb, nb);
	assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);
	assert_field(0, 18, -1);
	/* TransportID longer than the parameter list says. */
	{
		uint8_t pl[64] = { 0 };
		put64(pl, 0x1);
		put64(pl + 8, 0xb);
		put16(pl + 18, 1);
		put32(pl + 20, 100);
		prout_raw(pr, A, REG_MOVE, 0, pl, 48, 48);
		assert_sense(SK_ILLEGAL_REQUEST, 0x1a, 0);
	}
	assert_int_equal(pr_generation(pr), 2);

	/* Move to the unregistered B, keep A registered. */
	assert_int_equal(register_move(pr, A, 0x1, 0xb, 0, 1, tb, nb), SAM_STAT_GOOD);
	assert_int_equal(pr_generation(pr), 3);
	assert_int_equal(read_resv(pr, &key), WE_RO);
	assert_int_equal(key, 0xb);
	assert_int_equal(read_keys(pr, keys, NULL), 3);
	assert_true(has_key(keys, 3, 0x1) && has_key(keys, 3, 0xb) && has_key(keys, 3, 0x3));
	/* A may no longer release it; B can move it back with UNREG. */
	assert_int_equal(prout(pr, A, RELEASE, WE_RO, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(read_resv(pr, &key), WE_RO);
	assert_int_equal(register_move(pr, B, 0xb, 0xa1, 0x02, 1, ta, na), SAM_STAT_GOOD);
	assert_int_equal(read_keys(pr, keys, NULL), 2);
	assert_true(has_key(keys, 2, 0xa1) && has_key(keys, 2, 0x3));
	assert_int_equal(read_resv(pr, &key), WE_RO);
	assert_int_equal(key, 0xa1);
	assert_true(conflicts(pr, B, 0x2a));
	/* All registrants reservations cannot be moved. */
	assert_int_equal(prout(pr, A, RELEASE, WE_RO, 0xa1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, EA_AR, 0xa1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(register_move(pr, A, 0xa1, 0xb, 0, 1, tb, nb), SAM_STAT_RESERVATION_CONFLICT);
	/* APTPL without a state file. */
	register_move(pr, A, 0xa1, 0xb, 0x01, 1, tb, nb);
	assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);
	assert_field(0, 17, 0);
}

/* ---- READ FULL STATUS, TransportIDs ---- */

static void test_read_full_status(void **state)
{
	struct scsi_pr *pr = *state;
	uint8_t t[300];
	const char *wild = "iqn.2024-01.org.lich:wildcard";

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1122334455667788ull, 0), SAM_STAT_GOOD);
	B->rel_port_id = 7;
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2, 0x04), SAM_STAT_GOOD);  /* ALL_TG_PT */
	size_t n = tid(t, 0, wild, 0);
	assert_int_equal(register_spec(pr, C, 0, 0x3, t, n, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, EA_RO, 0x1122334455667788ull, 0, 0), SAM_STAT_GOOD);

	assert_int_equal(prin(pr, D, READ_FULL_STATUS, 8192), SAM_STAT_GOOD);
	uint32_t gen = get32(data), al = get32(data + 4);
	assert_int_equal(gen, 3);
	assert_int_equal(T.data_in_len, 8 + al);

	const uint8_t *d = data + 8;
	unsigned seen = 0;
	while (d < data + 8 + al) {
		uint64_t key = get64(d);
		uint32_t tl = get32(d + 20);
		const uint8_t *tp = d + 24;
		assert_int_equal(tl % 4, 0);
		assert_true(tl >= 24);
		assert_int_equal(get16(tp + 2), tl - 4);
		const char *s = (const char *)tp + 4;
		assert_true(strnlen(s, tl - 4) < tl - 4);
		for (size_t k = strlen(s); k < tl - 4; k++)
			assert_int_equal(s[k], 0);            /* zero padding */
		if (key == 0x1122334455667788ull) {
			assert_int_equal(d[12], 0x01);        /* R_HOLDER */
			assert_int_equal(d[13], EA_RO);
			assert_int_equal(get16(d + 18), 1);
			assert_int_equal(tp[0], 0x45);        /* format 01b, iSCSI */
			assert_string_equal(s, A->initiator_port);
			seen |= 1;
		} else if (key == 0x2) {
			assert_int_equal(d[12], 0x02);        /* ALL_TG_PT */
			assert_int_equal(d[13], 0);
			assert_int_equal(get16(d + 18), 7);
			assert_int_equal(tp[0], 0x45);
			assert_string_equal(s, B->initiator_port);
			seen |= 2;
		} else if (key == 0x3 && tp[0] == 0x45) {
			assert_int_equal(d[12], 0);
			assert_string_equal(s, C->initiator_port);
			seen |= 4;
		} else {
			assert_int_equal(key, 0x3);
			assert_int_equal(tp[0], 0x05);        /* format 00b: the device name */
			assert_int_equal(d[12], 0);
			assert_string_equal(s, wild);
			assert_int_equal(tl, 36);             /* 4 + (29 + NUL padded to 32) */
			seen |= 8;
		}
		d += 24 + tl;
	}
	assert_int_equal(seen, 15);
	assert_ptr_equal(d, data + 8 + al);
	/* Truncated: the header still describes the whole list. */
	assert_int_equal(prin(pr, D, READ_FULL_STATUS, 30), SAM_STAT_GOOD);
	assert_int_equal(T.data_in_len, 30);
	assert_int_equal(get32(data + 4), al);
}

static void test_read_full_status_holders(void **state)
{
	struct scsi_pr *pr = *state;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, WE_AR, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(prin(pr, D, READ_FULL_STATUS, 8192), SAM_STAT_GOOD);
	const uint8_t *d = data + 8;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(d[12], 0x01);        /* every registrant holds it */
		assert_int_equal(d[13], WE_AR);
		d += 24 + get32(d + 20);
	}
}

static void test_spec_i_pt(void **state)
{
	struct scsi_pr *pr = *state;
	uint8_t t[1024];
	size_t n = 0;
	uint64_t keys[8];

	/* B by port name, D's whole initiator by device name, A itself. */
	n += tid(t + n, 1, "IQN.2024-01.org.lich:init1,I,0X23D000001", 0);
	n += tid(t + n, 0, "iqn.2024-01.org.lich:init3", 0);
	n += tid(t + n, 1, A->initiator_port, 0);
	assert_int_equal(register_spec(pr, A, 0, 0x77, t, n, 0), SAM_STAT_GOOD);
	assert_int_equal(read_keys(pr, keys, NULL), 3);
	assert_int_equal(pr_generation(pr), 1);
	/* B and D (any ISID) are registered: they can use their key. */
	assert_int_equal(prout(pr, B, REGISTER, 0, 0x77, 0x78, 0), SAM_STAT_GOOD);
	strcpy(D->initiator_port, "iqn.2024-01.org.lich:init3,i,0x400000000099");
	assert_int_equal(prout(pr, D, RESERVE, EA, 0x77, 0, 0), SAM_STAT_GOOD);
	assert_false(conflicts(pr, D, 0x2a));
	assert_true(conflicts(pr, A, 0x2a));
	assert_int_equal(prout(pr, D, RELEASE, EA, 0x77, 0, 0), SAM_STAT_GOOD);
	/* From a registered nexus SPEC_I_PT is an error. */
	n = tid(t, 1, C->initiator_port, 0);
	register_spec(pr, A, 0x77, 0x77, t, n, 0);
	assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);
	assert_field(0, 20, 3);
	/* So is a TransportID naming someone registered: nothing is added. */
	n = tid(t, 1, C->initiator_port, 0);
	n += tid(t + n, 1, B->initiator_port, 0);
	register_spec(pr, C, 0, 0x5, t, n, 0);
	assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);
	assert_int_equal(pr_registration_count(pr), 3);
	/* Only REGISTER takes SPEC_I_PT. */
	uint8_t pl[24] = { 0 };
	pl[20] = 0x08;
	prout_raw(pr, C, REG_IGNORE, 0, pl, 24, 24);
	assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);
	assert_field(0, 20, 3);
	prout_raw(pr, C, RESERVE, WE, pl, 24, 24);
	assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);
}

static void test_spec_i_pt_malformed(void **state)
{
	struct scsi_pr *pr = *state;
	uint8_t t[1024];
	char longname[400];
	size_t n;

	/* Each case: the whole command fails, nothing gets registered; the
	 * field pointer names the offending byte of the parameter list. */
#define BAD_TID(len, at)                                                       \
	do {                                                                   \
		register_spec(pr, C, 0, 0x5, t, (len), 0);                     \
		assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);                     \
		assert_field(0, (at), -1);                                     \
		assert_int_equal(pr_registration_count(pr), 0);                \
	} while (0)

	/* Wrong protocol identifier (Fibre Channel), reserved format 10b. */
	n = tid(t, 1, B->initiator_port, 0);
	t[0] = 0x40;
	BAD_TID(n, 28);
	t[0] = 0x85;
	BAD_TID(n, 28);
	t[0] = 0x65;                 /* reserved bits 5:4 */
	BAD_TID(n, 28);
	/* ADDITIONAL LENGTH not a multiple of 4, and below 20. */
	BAD_TID(tid(t, 0, "iqn.x", 22), 30);
	BAD_TID(tid(t, 0, "iqn.x", 16), 30);
	/* Not NUL terminated inside its length. */
	BAD_TID(tid(t, 0, "iqn.2024-01.org.lich:exactly-twenty-four", 24), 32);
	/* Format 01b without ",i,0x", format 00b with it, bad ISIDs. */
	BAD_TID(tid(t, 1, "iqn.2024-01.org.lich:init1", 0), 32);
	BAD_TID(tid(t, 0, B->initiator_port, 0), 32);
	BAD_TID(tid(t, 1, "iqn.2024-01.org.lich:init1,i,0x12345678901234", 0), 32);
	BAD_TID(tid(t, 1, "iqn.2024-01.org.lich:init1,i,0xzz", 0), 32);
	BAD_TID(tid(t, 1, "iqn.2024-01.org.lich:init1,i,0x", 0), 32);
	/* A name with a space, an empty name. */
	BAD_TID(tid(t, 0, "iqn.2024-01.org.lich:in it", 0), 32);
	BAD_TID(tid(t, 0, "", 0), 32);
	/* Too long: 224 name bytes. */
	memset(longname, 'a', 224);
	longname[224] = '\0';
	BAD_TID(tid(t, 0, longname, 0), 32);
	/* The second TransportID's length overruns the list. */
	n = tid(t, 1, B->initiator_port, 0);
	size_t n2 = tid(t + n, 0, "iqn.2024-01.org.lich:init3", 0);
	put16(t + n + 2, 200);
	BAD_TID(n + n2, 28 + n + 2);
	/* A trailing fragment shorter than a TransportID header. */
	BAD_TID(n + 2, 28 + n);
	/* The same port twice, and a device name covering a listed port. */
	n2 = tid(t + n, 1, B->initiator_port, 0);
	BAD_TID(n + n2, 28 + n);
	n2 = tid(t + n, 0, "iqn.2024-01.org.lich:init1", 0);
	BAD_TID(n + n2, 28 + n);
#undef BAD_TID

	/* 223 bytes is fine. */
	longname[223] = '\0';
	n = tid(t, 0, longname, 0);
	assert_int_equal(register_spec(pr, C, 0, 0x5, t, n, 0), SAM_STAT_GOOD);
	assert_int_equal(pr_registration_count(pr), 2);
}

static void test_param_list_length(void **state)
{
	struct scsi_pr *pr = *state;
	uint8_t pl[64] = { 0 };

	for (uint32_t len = 0; len < 64; len++) {
		if (len == 24)
			continue;
		prout_raw(pr, A, REG_IGNORE, 0, pl, len, len);
		assert_sense(SK_ILLEGAL_REQUEST, 0x1a, 0);
	}
	/* The CDB asks for more than the data the task holds. */
	prout_raw(pr, A, REG_IGNORE, 0, pl, 24, 32);
	assert_sense(SK_ILLEGAL_REQUEST, 0x1a, 0);
	/* SPEC_I_PT: TransportID length inconsistent with the list length. */
	pl[20] = 0x08;
	put64(pl + 8, 0x5);
	put32(pl + 24, 8);
	prout_raw(pr, A, REGISTER, 0, pl, 28, 28);
	assert_sense(SK_ILLEGAL_REQUEST, 0x1a, 0);
	prout_raw(pr, A, REGISTER, 0, pl, 24, 24);
	assert_sense(SK_ILLEGAL_REQUEST, 0x1a, 0);
	put32(pl + 24, 0);
	prout_raw(pr, A, REGISTER, 0, pl, 40, 40);
	assert_sense(SK_ILLEGAL_REQUEST, 0x1a, 0);
	/* SPEC_I_PT with no TransportIDs registers just the sender. */
	assert_int_equal(prout_raw(pr, A, REGISTER, 0, pl, 28, 28), SAM_STAT_GOOD);
	assert_int_equal(pr_registration_count(pr), 1);
	/* Unknown service actions. */
	memset(pl, 0, sizeof(pl));
	for (unsigned sa = 8; sa < 0x20; sa++) {
		prout_raw(pr, A, sa, 0, pl, 24, 24);
		assert_sense(SK_ILLEGAL_REQUEST, 0x24, 0);
		assert_field(1, 1, 4);
	}
	/* APTPL without a state file. */
	prout(pr, B, REGISTER, 0, 0, 0x9, 0x01);
	assert_sense(SK_ILLEGAL_REQUEST, 0x26, 0);
	assert_field(0, 20, 0);
	/* ... but ignored by service actions that do not take it. */
	assert_int_equal(prout(pr, A, RESERVE, WE, 0x5, 0, 0x01), SAM_STAT_GOOD);
	assert_int_equal(pr_registration_count(pr), 1);
}

static void test_registration_limit(void **state)
{
	struct scsi_pr *pr = *state;
	static uint8_t t[256 * 64];
	size_t n = 0;
	char name[128];

	for (int i = 0; i < 256; i++) {
		snprintf(name, sizeof(name), "iqn.2024-01.org.lich:many%03d,i,0x1", i);
		n += tid(t + n, 1, name, 0);
	}
	/* Sender + 256 = 257: too many, and nothing is registered. */
	register_spec(pr, A, 0, 0x5, t, n, 0);
	assert_sense(SK_ILLEGAL_REQUEST, 0x55, 0x04);
	assert_int_equal(pr_registration_count(pr), 0);
	/* Sender + 255 = 256 fits. */
	n = 0;
	for (int i = 0; i < 255; i++) {
		snprintf(name, sizeof(name), "iqn.2024-01.org.lich:many%03d,i,0x1", i);
		n += tid(t + n, 1, name, 0);
	}
	assert_int_equal(register_spec(pr, A, 0, 0x5, t, n, 0), SAM_STAT_GOOD);
	assert_int_equal(pr_registration_count(pr), 256);
	prout(pr, B, REGISTER, 0, 0, 0x6, 0);
	assert_sense(SK_ILLEGAL_REQUEST, 0x55, 0x04);
	assert_int_equal(pr_registration_count(pr), 256);
	/* READ KEYS and READ FULL STATUS cope with the full table. */
	assert_int_equal(prin(pr, A, READ_KEYS, 65535), SAM_STAT_GOOD);
	assert_int_equal(get32(data + 4), 256 * 8);
	assert_int_equal(prin(pr, A, READ_FULL_STATUS, 65535), SAM_STAT_GOOD);
	assert_true(get32(data + 4) > 256 * 24);
	/* CLEAR makes room again. */
	assert_int_equal(prout(pr, A, CLEAR, 0, 0x5, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(nuas, 255);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x6, 0), SAM_STAT_GOOD);
}

static void test_all_tg_pt(void **state)
{
	struct scsi_pr *pr = *state;
	struct scsi_nexus a2 = *A;

	a2.rel_port_id = 2;
	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0x04), SAM_STAT_GOOD);
	/* The same initiator port through another target port is registered. */
	assert_int_equal(prout(pr, &a2, RESERVE, EA, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_false(conflicts(pr, A, 0x2a));
	assert_false(conflicts(pr, &a2, 0x2a));
	assert_true(conflicts(pr, B, 0x2a));
	assert_int_equal(prout(pr, A, RELEASE, EA, 0x1, 0, 0), SAM_STAT_GOOD);
	/* Without ALL_TG_PT the other target port is a different I_T nexus. */
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	struct scsi_nexus b2 = *B;
	b2.rel_port_id = 2;
	assert_int_equal(prout(pr, &b2, REGISTER, 0, 0, 0x3, 0), SAM_STAT_GOOD);
	assert_int_equal(pr_registration_count(pr), 3);
	assert_int_equal(prout(pr, B, RESERVE, EA, 0x2, 0, 0), SAM_STAT_GOOD);
	assert_true(conflicts(pr, &b2, 0x2a));
	/* A unit attention for an ALL_TG_PT registration names every port (0). */
	assert_int_equal(prout(pr, B, CLEAR, 0, 0x2, 0, 0), SAM_STAT_GOOD);
	for (unsigned i = 0; i < nuas; i++)
		if (pr_initiator_port_match(uas[i].port, A->initiator_port))
			assert_int_equal(uas[i].rel, 0);
		else
			assert_int_equal(uas[i].rel, 2);
	assert_int_equal(nuas, 2);
}

/* ---- APTPL and the state file ---- */

static char tmpdir[256];

/* Fixture for the state file tests: a fresh directory, removed even when
 * the test fails. */
static int setup_tmpdir(void **state)
{
	(void)state;
	nexus_init();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_pr.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_aptpl_persistence(void **state)
{
	(void)state;
	struct scsi_pr *pr;
	char path[300];
	uint64_t keys[8], key;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/lu0.pr", tmpdir);
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), 0);
	assert_int_equal(prin(pr, A, REPORT_CAPS, 8), SAM_STAT_GOOD);
	assert_int_equal(data[2], 0x1d);        /* PTPL_C */
	assert_int_equal(data[3] & 0x01, 0);    /* not active yet */

	/* Without APTPL nothing is written. */
	assert_int_equal(prout(pr, C, REGISTER, 0, 0, 0xc, 0), SAM_STAT_GOOD);
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0xa, 0x01), SAM_STAT_GOOD);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0xb, 0x01), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, WE_RO, 0xa, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(prin(pr, A, REPORT_CAPS, 8), SAM_STAT_GOOD);
	assert_int_equal(data[3] & 0x01, 1);    /* PTPL_A */
	pr_destroy(pr);

	/* "Power cycle": same keys, same reservation, generation back to 0. */
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), 0);
	assert_int_equal(pr_generation(pr), 0);
	assert_int_equal(read_keys(pr, keys, NULL), 3);
	assert_true(has_key(keys, 3, 0xa) && has_key(keys, 3, 0xb) && has_key(keys, 3, 0xc));
	assert_int_equal(read_resv(pr, &key), WE_RO);
	assert_int_equal(key, 0xa);
	assert_false(conflicts(pr, B, 0x2a));
	assert_true(conflicts(pr, D, 0x2a));
	assert_int_equal(prin(pr, A, REPORT_CAPS, 8), SAM_STAT_GOOD);
	assert_int_equal(data[3] & 0x01, 1);
	/* The holder is still the holder. */
	assert_int_equal(prout(pr, A, RELEASE, WE_RO, 0xa, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(read_resv(pr, &key), 0);
	pr_destroy(pr);
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), 0);
	assert_int_equal(read_resv(pr, &key), 0);   /* the release was persisted too */
	assert_int_equal(pr_registration_count(pr), 3);

	/* A REGISTER with APTPL=0 deactivates it and removes the file. */
	assert_int_equal(prout(pr, B, REGISTER, 0, 0xb, 0xbb, 0), SAM_STAT_GOOD);
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(prin(pr, A, REPORT_CAPS, 8), SAM_STAT_GOOD);
	assert_int_equal(data[3] & 0x01, 0);
	pr_destroy(pr);
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), 0);
	assert_int_equal(pr_registration_count(pr), 0);
	pr_destroy(pr);
}

static void test_aptpl_move_and_wildcard_roundtrip(void **state)
{
	(void)state;
	struct scsi_pr *pr;
	char path[300];
	uint8_t t[300];
	uint64_t key;

	snprintf(path, sizeof(path), "%s/lu1.pr", tmpdir);
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), 0);
	size_t n = tid(t, 0, "iqn.2024-01.org.lich:init3", 0);
	assert_int_equal(register_spec(pr, A, 0, 0x1, t, n, 0x04 | 0x01), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, EA, 0x1, 0, 0), SAM_STAT_GOOD);
	n = tid(t, 1, B->initiator_port, 0);
	assert_int_equal(register_move(pr, A, 0x1, 0x2, 0x01, 1, t, n), SAM_STAT_GOOD);
	pr_destroy(pr);
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), 0);
	assert_int_equal(pr_registration_count(pr), 3);
	assert_int_equal(read_resv(pr, &key), EA);
	assert_int_equal(key, 0x2);
	assert_false(conflicts(pr, B, 0x28));
	assert_true(conflicts(pr, A, 0x28));
	/* D (init3) with any ISID through any target port still has key 1. */
	strcpy(D->initiator_port, "iqn.2024-01.org.lich:init3,i,0x000000000777");
	D->rel_port_id = 9;
	assert_int_equal(prout(pr, D, PREEMPT, WE, 0x1, 0x2, 0), SAM_STAT_GOOD);
	assert_int_equal(read_resv(pr, &key), WE);
	assert_int_equal(key, 0x1);
	pr_destroy(pr);
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), 0);
	assert_int_equal(read_resv(pr, &key), WE);
	assert_int_equal(key, 0x1);
	assert_int_equal(pr_registration_count(pr), 2);
	pr_destroy(pr);
}

static void test_state_file_corrupt(void **state)
{
	(void)state;
	struct scsi_pr *pr = NULL;
	char path[300];
	static const char *const bad[] = {
		"",
		"lich-pr 2\nend\n",
		"lich-pr 1\n",                                          /* no end */
		"lich-pr 1\nend",                                       /* no final newline */
		"lich-pr 1\nend\nreg 1 1 0 0 iqn.a,i,0x1\n",            /* after end */
		"lich-pr 1\nreg 0 1 0 0 iqn.a,i,0x1\nend\n",            /* key 0 */
		"lich-pr 1\nreg 1ffffffffffffffff 1 0 0 iqn.a,i,0x1\nend\n",
		"lich-pr 1\nreg xyz 1 0 0 iqn.a,i,0x1\nend\n",
		"lich-pr 1\nreg 1 65536 0 0 iqn.a,i,0x1\nend\n",
		"lich-pr 1\nreg 1 1 2 0 iqn.a,i,0x1\nend\n",
		"lich-pr 1\nreg 1 1 0 0 iqn.a,i,0x1234567890123\nend\n",
		"lich-pr 1\nreg 1 1 0 0\nend\n",
		"lich-pr 1\nreg 1 1 0 0 iqn.a,i,0x1 extra\nend\n",
		"lich-pr 1\nreg 1  1 0 0 iqn.a,i,0x1\nend\n",           /* double space */
		"lich-pr 1\nreg 1 1 0 0 iqn.a,i,0x1 \nend\n",           /* trailing space */
		"lich-pr 1\nreg 1 1 0 0 iqn.a,i,0x1\nreg 2 1 0 0 IQN.A,i,0x01\nend\n", /* same nexus */
		"lich-pr 1\nreg 1 1 1 0 iqn.a,i,0x1\nreg 2 2 0 0 iqn.a\nend\n", /* overlap via ALL_TG_PT */
		"lich-pr 1\nreg 1 1 0 1 iqn.a,i,0x1\nend\n",            /* holder, no reservation */
		"lich-pr 1\nreg 1 1 0 0 iqn.a,i,0x1\nreservation 3\nend\n",       /* no holder */
		"lich-pr 1\nreg 1 1 0 1 iqn.a,i,0x1\nreg 2 1 0 1 iqn.b,i,0x1\nreservation 3\nend\n",
		"lich-pr 1\nreg 1 1 0 1 iqn.a,i,0x1\nreservation 7\nend\n",       /* AR with holder */
		"lich-pr 1\nreservation 7\nend\n",                                /* AR, nobody */
		"lich-pr 1\nreg 1 1 0 1 iqn.a,i,0x1\nreservation 2\nend\n",       /* obsolete type */
		"lich-pr 1\nreg 1 1 0 1 iqn.a,i,0x1\nreservation 3\nreservation 3\nend\n",
		"lich-pr 1\nreg 1 1 0 1 iqn.a,i,0x1\nreservation 3\nreg 2 1 0 0 iqn.b,i,0x1\nend\n",
		"lich-pr 1\ngeneration 5\nend\n",
		"lich-pr 1\nend \n",
	};

	snprintf(path, sizeof(path), "%s/bad.pr", tmpdir);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i]);
		pr = NULL;
		if (pr_create(path, ua_cb, NULL, &pr) != -EINVAL)
			fail_msg("corrupt state file #%u accepted", i);
		assert_null(pr);
	}
	/* A NUL byte inside. */
	{
		int fd = open(path, O_WRONLY | O_TRUNC);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "lich-pr 1\n\0end\n", 15), 15);
		close(fd);
		assert_int_equal(pr_create(path, ua_cb, NULL, &pr), -EINVAL);
	}
	/* Too many registrations. */
	{
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "lich-pr 1\n");
		for (int i = 0; i < 257; i++)
			fprintf(f, "reg %x 1 0 0 iqn.r%d,i,0x1\n", i + 1, i);
		fprintf(f, "end\n");
		fclose(f);
		assert_int_equal(pr_create(path, ua_cb, NULL, &pr), -EINVAL);
	}
	/* A hand-written good one. */
	write_file(path, "lich-pr 1\n"
			 "reg 00000000000000aa 1 0 1 iqn.2024-01.org.lich:init0,i,0x00023d000000\n"
			 "reg BB 1 1 0 iqn.2024-01.org.lich:init1,i,0x23d000001\n"
			 "reg cc 4 0 0 iqn.2024-01.org.lich:init2\n"
			 "reservation 3\n"
			 "end\n");
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), 0);
	uint64_t keys[4], key;
	assert_int_equal(read_keys(pr, keys, NULL), 3);
	assert_true(has_key(keys, 3, 0xaa) && has_key(keys, 3, 0xbb) && has_key(keys, 3, 0xcc));
	assert_int_equal(read_resv(pr, &key), EA);
	assert_int_equal(key, 0xaa);
	assert_false(conflicts(pr, A, 0x2a));
	assert_true(conflicts(pr, B, 0x2a));
	pr_destroy(pr);
	/* A directory where the file should be is not a state file. */
	snprintf(path, sizeof(path), "%s/dir.pr", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), -EINVAL);
}

/* Persisting fails: the command fails and the state is what it was. */
static void test_aptpl_write_failure_rolls_back(void **state)
{
	(void)state;
	struct scsi_pr *pr;
	char path[300];
	uint64_t key;

	snprintf(path, sizeof(path), "%s/missing/lu.pr", tmpdir);
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), 0);   /* no file yet: fine */
	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0xa, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0xb, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, RESERVE, WE_RO, 0xb, 0, 0), SAM_STAT_GOOD);
	uint32_t g = pr_generation(pr);
	nuas = 0;
	prout(pr, A, REGISTER, 0, 0xa, 0xa2, 0x01);
	assert_sense(SK_HARDWARE_ERROR, 0x44, 0);
	assert_int_equal(pr_generation(pr), g);
	uint64_t keys[4];
	assert_int_equal(read_keys(pr, keys, NULL), 2);
	assert_true(has_key(keys, 2, 0xa) && !has_key(keys, 2, 0xa2));
	assert_int_equal(prin(pr, A, REPORT_CAPS, 8), SAM_STAT_GOOD);
	assert_int_equal(data[3] & 0x01, 0);
	/* Unregistering the holder with APTPL fails too: nothing moves, no UA. */
	prout(pr, B, REGISTER, 0, 0xb, 0, 0x01);
	assert_sense(SK_HARDWARE_ERROR, 0x44, 0);
	assert_int_equal(read_resv(pr, &key), WE_RO);
	assert_int_equal(key, 0xb);
	assert_int_equal(nuas, 0);
	/* Once the directory exists it works. */
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/missing", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(prout(pr, A, REGISTER, 0, 0xa, 0xa2, 0x01), SAM_STAT_GOOD);
	assert_int_equal(pr_generation(pr), g + 1);
	pr_destroy(pr);
	assert_int_equal(pr_create(path, ua_cb, NULL, &pr), 0);
	assert_int_equal(pr_registration_count(pr), 2);
	pr_destroy(pr);
}

/* ---- SPC-2 RESERVE / RELEASE ---- */

static int reserve_cmd(struct scsi_pr *pr, struct scsi_nexus *n, uint8_t op, uint8_t byte1)
{
	uint8_t cdb[10] = { op, byte1 };
	task_setup(n, cdb, op == 0x16 || op == 0x17 ? 6 : 10);
	if (op == 0x16 || op == 0x56)
		pr_reserve(pr, &T);
	else
		pr_release(pr, &T);
	return T.status;
}

static void test_spc2_reserve_release(void **state)
{
	struct scsi_pr *pr = *state;

	/* libiscsi Reserve6.2Initiators */
	assert_int_equal(reserve_cmd(pr, A, 0x16, 0), SAM_STAT_GOOD);
	assert_int_equal(reserve_cmd(pr, A, 0x16, 0), SAM_STAT_GOOD);
	assert_int_equal(reserve_cmd(pr, B, 0x16, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(reserve_cmd(pr, B, 0x56, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(reserve_cmd(pr, B, 0x17, 0), SAM_STAT_GOOD);   /* no-op */
	assert_false(conflicts(pr, A, 0x1a));
	assert_true(conflicts(pr, B, 0x1a));         /* MODE SENSE */
	assert_true(conflicts(pr, B, 0x28));
	assert_true(conflicts(pr, B, 0x2a));
	assert_true(conflicts(pr, B, 0x00));         /* TEST UNIT READY */
	assert_false(conflicts(pr, B, 0x12));        /* INQUIRY */
	assert_false(conflicts(pr, B, 0x03));        /* REQUEST SENSE */
	assert_false(conflicts(pr, B, 0xa0));        /* REPORT LUNS */
	assert_false(conflicts(pr, B, 0x25));        /* READ CAPACITY(10) */
	assert_false(conflicts(pr, B, 0x17));        /* RELEASE decides itself */
	assert_false(conflicts(pr, A, 0x2a));
	/* Persistent reservation commands conflict for everybody. */
	assert_true(conflicts(pr, A, 0x5e));
	assert_true(conflicts(pr, A, 0x5f));
	assert_true(conflicts(pr, B, 0x5e));
	assert_int_equal(prin(pr, A, READ_KEYS, 100), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(pr_registration_count(pr), 0);
	/* Release by the holder (the 10-byte form), then B may reserve. */
	assert_int_equal(reserve_cmd(pr, A, 0x57, 0), SAM_STAT_GOOD);
	assert_false(conflicts(pr, B, 0x1a));
	assert_int_equal(reserve_cmd(pr, B, 0x56, 0), SAM_STAT_GOOD);
	assert_true(conflicts(pr, A, 0x2a));
	assert_int_equal(reserve_cmd(pr, B, 0x17, 0), SAM_STAT_GOOD);
	assert_false(conflicts(pr, A, 0x2a));
	/* Third-party forms are not supported. */
	reserve_cmd(pr, A, 0x56, 0x10);
	assert_sense(SK_ILLEGAL_REQUEST, 0x24, 0);
	assert_field(1, 1, 4);
	reserve_cmd(pr, A, 0x57, 0x02);
	assert_sense(SK_ILLEGAL_REQUEST, 0x24, 0);
	assert_field(1, 1, 1);
	assert_false(conflicts(pr, B, 0x2a));
}

static void test_spc2_nexus_loss_and_reset(void **state)
{
	struct scsi_pr *pr = *state;
	struct scsi_nexus a_other_port = *A;

	a_other_port.rel_port_id = 2;
	assert_int_equal(reserve_cmd(pr, A, 0x16, 0), SAM_STAT_GOOD);
	pr_nexus_lost(pr, B);
	pr_nexus_lost(pr, &a_other_port);       /* another I_T nexus of the same port */
	assert_true(conflicts(pr, B, 0x2a));
	assert_true(conflicts(pr, &a_other_port, 0x2a));
	pr_nexus_lost(pr, A);
	assert_false(conflicts(pr, B, 0x2a));
	assert_int_equal(reserve_cmd(pr, B, 0x16, 0), SAM_STAT_GOOD);
	pr_lu_reset(pr);
	assert_false(conflicts(pr, A, 0x2a));
	assert_int_equal(reserve_cmd(pr, A, 0x16, 0), SAM_STAT_GOOD);
	assert_int_equal(reserve_cmd(pr, A, 0x17, 0), SAM_STAT_GOOD);
	/* PR state survives both events. */
	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, EA, 0x1, 0, 0), SAM_STAT_GOOD);
	pr_nexus_lost(pr, A);
	pr_lu_reset(pr);
	assert_true(conflicts(pr, B, 0x28));
	assert_int_equal(pr_registration_count(pr), 1);
}

/* SPC-4 5.13.3: RESERVE/RELEASE in the presence of registrations (CRH=1). */
static void test_spc2_with_registrations(void **state)
{
	struct scsi_pr *pr = *state;
	uint64_t key;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, B, REGISTER, 0, 0, 0x2, 0), SAM_STAT_GOOD);
	/* Registrations but no reservation: both conflict for everybody. */
	assert_int_equal(reserve_cmd(pr, A, 0x16, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(reserve_cmd(pr, C, 0x16, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(reserve_cmd(pr, C, 0x17, 0), SAM_STAT_RESERVATION_CONFLICT);
	/* The holder gets GOOD and nothing changes. */
	assert_int_equal(prout(pr, A, RESERVE, WE, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(reserve_cmd(pr, A, 0x16, 0), SAM_STAT_GOOD);
	assert_int_equal(reserve_cmd(pr, A, 0x17, 0), SAM_STAT_GOOD);
	assert_int_equal(read_resv(pr, &key), WE);
	assert_false(conflicts(pr, C, 0x28));       /* no SPC-2 reservation appeared */
	/* A registered non-holder under WE: conflict; under WE_RO: GOOD. */
	assert_int_equal(reserve_cmd(pr, B, 0x16, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(prout(pr, A, RELEASE, WE, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, WE_RO, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(reserve_cmd(pr, B, 0x56, 0), SAM_STAT_GOOD);
	assert_int_equal(reserve_cmd(pr, B, 0x57, 0), SAM_STAT_GOOD);
	assert_int_equal(reserve_cmd(pr, C, 0x56, 0), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(read_resv(pr, &key), WE_RO);
	/* Once the registrations are gone SPC-2 works again. */
	assert_int_equal(prout(pr, A, CLEAR, 0, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(reserve_cmd(pr, C, 0x16, 0), SAM_STAT_GOOD);
	assert_int_equal(reserve_cmd(pr, C, 0x17, 0), SAM_STAT_GOOD);
}

/* ---- names ---- */

static void test_port_match(void **state)
{
	(void)state;
	assert_true(pr_initiator_port_match("iqn.a:b,i,0x00023d000001", "iqn.a:b,i,0x00023d000001"));
	assert_true(pr_initiator_port_match("IQN.A:B,I,0X23D000001", "iqn.a:b,i,0x00023d000001"));
	assert_true(pr_initiator_port_match("iqn.a:b", "iqn.a:b,i,0x00023d000001"));
	assert_false(pr_initiator_port_match("iqn.a:b,i,0x00023d000002", "iqn.a:b,i,0x00023d000001"));
	assert_false(pr_initiator_port_match("iqn.a:c", "iqn.a:b,i,0x00023d000001"));
	assert_false(pr_initiator_port_match("iqn.a:b,i,0x1", "iqn.a:b"));
	assert_false(pr_initiator_port_match("", "iqn.a:b,i,0x1"));
	assert_false(pr_initiator_port_match("iqn.a:b,i,0x1", NULL));
	assert_false(pr_initiator_port_match("iqn a:b,i,0x1", "iqn a:b,i,0x1"));
	assert_false(pr_initiator_port_match("iqn.a:\tb,i,0x1", "iqn.a:\tb,i,0x1"));
	/* UTF-8 is allowed in iSCSI names. */
	assert_true(pr_initiator_port_match("iqn.a:caf\xc3\xa9,i,0x1", "iqn.a:caf\xc3\xa9,i,0x01"));
}

/* ---- threads: the holder never sees a conflict while others churn ---- */

struct churn { struct scsi_pr *pr; atomic_int stop; };

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	struct scsi_task t;
	uint8_t pl[24] = { 0 };
	struct iovec iov = { pl, sizeof(pl) };

	put64(pl + 8, 0x42);
	scsi_task_init(&t);
	t.nexus = B;
	for (int i = 0; !atomic_load(&c->stop) && i < 20000; i++) {
		uint8_t cdb[10] = { 0x5f, REG_IGNORE };
		put32(cdb + 5, 24);
		memset(&t, 0, sizeof(t));
		t.nexus = B;
		memcpy(t.cdb, cdb, 10);
		t.iov[0] = iov;
		t.iovcnt = 1;
		t.data_out_len = 24;
		put64(pl + 8, (i & 1) ? 0x42 : 0);   /* register, unregister */
		pr_out(c->pr, &t);
		if (t.status != SAM_STAT_GOOD)
			return (void *)1;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct scsi_pr *pr = *state;
	struct churn c = { pr, 0 };
	pthread_t th;
	struct scsi_task t;

	assert_int_equal(prout(pr, A, REGISTER, 0, 0, 0x1, 0), SAM_STAT_GOOD);
	assert_int_equal(prout(pr, A, RESERVE, EA, 0x1, 0, 0), SAM_STAT_GOOD);
	assert_int_equal(pthread_create(&th, NULL, churn_thread, &c), 0);
	scsi_task_init(&t);
	t.nexus = A;
	t.cdb[0] = 0x2a;
	for (int i = 0; i < 20000; i++) {
		assert_false(pr_conflict(pr, &t));
		t.nexus = C;
		assert_true(pr_conflict(pr, &t));
		t.nexus = A;
	}
	atomic_store(&c.stop, 1);
	void *rv;
	assert_int_equal(pthread_join(th, &rv), 0);
	assert_null(rv);
}

int main(void)
{
	struct mem_pool_opts po = { .name = "test_pr", .limit = 64u << 20,
				    .numa_node = -1, .no_hugepages = true };
	POOL = mem_pool_create(&po);
	if (!POOL) {
		fprintf(stderr, "test_pr: cannot create a memory pool\n");
		return 1;
	}

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_and_read_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_keys_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prin_service_action_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_release_each_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict_service_actions_and_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_reservation_no_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unregister_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_unit_attentions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_removes_registration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_reservation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_all_registrants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_and_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_full_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_full_status_holders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spec_i_pt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spec_i_pt_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_param_list_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registration_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_tg_pt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aptpl_persistence, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_aptpl_move_and_wildcard_roundtrip, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_state_file_corrupt, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_aptpl_write_failure_rolls_back, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_spc2_reserve_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spc2_nexus_loss_and_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spc2_with_registrations, setup, teardown),
		cmocka_unit_test(test_port_match),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	mem_pool_destroy(POOL);
	return rc;
}
