/* test_bdev_nvme.c — the nvme backend's pure parts (src/bdev/nvme_cmd.c):
 * Identify parsing, NVMe command building, splitting by MDTS / DSM ranges /
 * iovecs, and NVMe status to SCSI sense.
 *
 * The backend itself needs an NVMe namespace: with LICH_TEST_NVME=/dev/ngXnY
 * (its contents are destroyed) the test_dev_* cases drive it through a queue
 * pair — tests/vm/t-nvme.sh runs them in the guest against QEMU's emulated
 * controller; without, they are skipped (and say so). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "bdev/bdev.h"
#include "bdev/nvme.h"
#include "mem/buddy.h"
#include "mem/pool.h"

static uint8_t g_id[NVME_IDENTIFY_LEN];

static void put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_le32(uint8_t *p, uint32_t v) { put_le16(p, (uint16_t)v); put_le16(p + 2, (uint16_t)(v >> 16)); }
static void put_le64(uint8_t *p, uint64_t v) { put_le32(p, (uint32_t)v); put_le32(p + 4, (uint32_t)(v >> 32)); }

/* Identify Namespace: nsze blocks, formats lbads[] (log2 sizes), current idx. */
static void make_id_ns(uint64_t nsze, const uint8_t *lbads, unsigned nf, unsigned idx,
		       uint16_t ms, uint8_t dlfeat)
{
	memset(g_id, 0, sizeof(g_id));
	put_le64(g_id, nsze);
	put_le64(g_id + 8, nsze);
	g_id[25] = (uint8_t)(nf - 1);
	g_id[26] = (uint8_t)((idx & 0x0f) | ((idx >> 4) & 3) << 5);
	g_id[33] = dlfeat;
	for (unsigned i = 0; i < nf; i++) {
		g_id[128 + 4 * i + 2] = lbads[i];
		if (i == idx)
			put_le16(g_id + 128 + 4 * i, ms);
	}
}

static void test_id_ns(void **state)
{
	(void)state;
	struct nvme_ns_info ns = { 0 };
	const uint8_t f[] = { 9, 12 };
	make_id_ns(2097152, f, 2, 1, 0, 0x09);
	assert_int_equal(nvme_parse_id_ns(g_id, &ns), 0);
	assert_int_equal(ns.lba_size, 4096);
	assert_int_equal(ns.nblocks, 2097152);
	assert_int_equal(ns.md_size, 0);
	assert_true(ns.dealloc_reads_zero);          /* DLFEAT bits 2:0 = 001b */

	make_id_ns(1000, f, 2, 0, 8, 0x02);            /* 512 B + 8 B metadata */
	assert_int_equal(nvme_parse_id_ns(g_id, &ns), 0);
	assert_int_equal(ns.lba_size, 512);
	assert_int_equal(ns.md_size, 8);
	assert_false(ns.dealloc_reads_zero);         /* 010b: reads 0xff */

	/* More than 16 formats: FLBAS bits 6:5 are the index's high bits. */
	uint8_t many[20];
	for (unsigned i = 0; i < 20; i++)
		many[i] = 9;
	many[18] = 12;
	make_id_ns(64, many, 20, 18, 0, 0);
	assert_int_equal(nvme_parse_id_ns(g_id, &ns), 0);
	assert_int_equal(ns.lba_size, 4096);

	make_id_ns(64, f, 2, 2, 0, 0);                 /* index past NLBAF */
	assert_int_equal(nvme_parse_id_ns(g_id, &ns), -EINVAL);
	const uint8_t tiny[] = { 8 };                  /* 256 B: below 512 */
	make_id_ns(64, tiny, 1, 0, 0, 0);
	assert_int_equal(nvme_parse_id_ns(g_id, &ns), -EINVAL);
	make_id_ns(0, f, 2, 0, 0, 0);                  /* empty namespace */
	assert_int_equal(nvme_parse_id_ns(g_id, &ns), -EINVAL);
}

static void make_id_ctrl(uint8_t mdts, uint16_t oncs, uint8_t vwc)
{
	memset(g_id, 0, sizeof(g_id));
	g_id[77] = mdts;
	put_le16(g_id + 520, oncs);
	g_id[525] = vwc;
}

static void test_id_ctrl(void **state)
{
	(void)state;
	struct nvme_ns_info ns = { .lba_size = 512 };
	make_id_ctrl(7, 0x0c, 1);                      /* QEMU's: 512 KiB, DSM + WZ */
	nvme_parse_id_ctrl(g_id, &ns);
	assert_int_equal(ns.max_xfer_blocks, 1024);
	assert_true(ns.has_dsm);
	assert_true(ns.has_write_zeroes);
	assert_true(ns.vwc);

	ns.lba_size = 4096;
	make_id_ctrl(5, 0x04, 0);                      /* 128 KiB; DSM only */
	nvme_parse_id_ctrl(g_id, &ns);
	assert_int_equal(ns.max_xfer_blocks, 32);
	assert_true(ns.has_dsm);
	assert_false(ns.has_write_zeroes);
	assert_false(ns.vwc);

	make_id_ctrl(0, 0, 0);                         /* no limit: NLB's */
	nvme_parse_id_ctrl(g_id, &ns);
	assert_int_equal(ns.max_xfer_blocks, NVME_MAX_NLB);
	ns.lba_size = 512;
	make_id_ctrl(14, 0, 0);                        /* 64 MiB > 65536 blocks */
	nvme_parse_id_ctrl(g_id, &ns);
	assert_int_equal(ns.max_xfer_blocks, NVME_MAX_NLB);
	ns.lba_size = 4096;
	make_id_ctrl(1, 0, 0);                         /* 8 KiB: 2 blocks */
	nvme_parse_id_ctrl(g_id, &ns);
	assert_int_equal(ns.max_xfer_blocks, 2);
}

/* The kernel's per-request limits cap MDTS: a passthrough is never split. */
static void test_clamp_xfer(void **state)
{
	(void)state;
	struct nvme_ns_info ns = { .lba_size = 512, .max_xfer_blocks = 1024 };  /* 512 KiB */
	nvme_clamp_xfer(&ns, 0, 0);                    /* unknown: 126 pages */
	assert_int_equal(ns.max_xfer_blocks, 126 * 8);
	ns.max_xfer_blocks = 1024;
	nvme_clamp_xfer(&ns, 512, 127);                /* QEMU's queue */
	assert_int_equal(ns.max_xfer_blocks, 1008);
	ns.max_xfer_blocks = 1024;
	nvme_clamp_xfer(&ns, 128, 1024);               /* max_hw_sectors_kb smaller */
	assert_int_equal(ns.max_xfer_blocks, 256);
	ns.max_xfer_blocks = 16;                       /* MDTS already the smaller */
	nvme_clamp_xfer(&ns, 512, 127);
	assert_int_equal(ns.max_xfer_blocks, 16);
	ns.lba_size = 4096;
	ns.max_xfer_blocks = 1024;
	nvme_clamp_xfer(&ns, 4096, 1);                 /* one segment: one page */
	assert_int_equal(ns.max_xfer_blocks, 1);
}

static void test_id_ctrl_nvm(void **state)
{
	(void)state;
	struct nvme_ns_info ns = { .lba_size = 512 };
	nvme_ns_info_defaults(&ns);
	assert_int_equal(ns.dsm_max_ranges, 256);
	assert_int_equal(ns.dsm_range_max_blocks, UINT32_MAX);
	assert_int_equal(ns.wz_max_blocks, NVME_MAX_NLB);

	memset(g_id, 0, sizeof(g_id));
	g_id[1] = 3;                                   /* WZSL: 32 KiB */
	g_id[3] = 8;                                   /* DMRL */
	put_le32(g_id + 4, 4096);                      /* DMRSL */
	nvme_parse_id_ctrl_nvm(g_id, &ns);
	assert_int_equal(ns.wz_max_blocks, 64);
	assert_int_equal(ns.dsm_max_ranges, 8);
	assert_int_equal(ns.dsm_range_max_blocks, 4096);

	memset(g_id, 0, sizeof(g_id));                 /* zeroes: no limits */
	nvme_parse_id_ctrl_nvm(g_id, &ns);
	assert_int_equal(ns.wz_max_blocks, NVME_MAX_NLB);
	assert_int_equal(ns.dsm_max_ranges, 256);
}

static void test_build_commands(void **state)
{
	(void)state;
	struct nvme_uring_cmd c;
	uint8_t buf[8];

	nvme_build_identify(&c, 3, NVME_CNS_NS, buf);
	assert_int_equal(c.opcode, 0x06);
	assert_int_equal(c.nsid, 3);
	assert_int_equal(c.cdw10, 0);
	assert_int_equal(c.data_len, 4096);
	assert_ptr_equal((void *)(uintptr_t)c.addr, buf);
	nvme_build_identify(&c, 0, NVME_CNS_CTRL_CSI, buf);
	assert_int_equal(c.cdw10, 6);

	/* Write of 8 blocks at an LBA above 2^32, FUA. */
	nvme_build_rw(&c, true, 1, 0x123456789aull, 8, true, 0x1000, 4096);
	assert_int_equal(c.opcode, 0x01);
	assert_int_equal(c.nsid, 1);
	assert_int_equal(c.cdw10, 0x3456789a);
	assert_int_equal(c.cdw11, 0x12);
	assert_int_equal(c.cdw12, (1u << 30) | 7);   /* FUA, NLB 0's based */
	assert_int_equal(c.addr, 0x1000);
	assert_int_equal(c.data_len, 4096);
	assert_int_equal(c.cdw13, 0);
	assert_int_equal(c.metadata_len, 0);
	/* Read of 65536 blocks: NLB field 0xffff, no FUA. */
	nvme_build_rw(&c, false, 2, 0, NVME_MAX_NLB, false, 0x2000, 0);
	assert_int_equal(c.opcode, 0x02);
	assert_int_equal(c.cdw12, 0xffff);

	nvme_build_flush(&c, 5);
	assert_int_equal(c.opcode, 0x00);
	assert_int_equal(c.nsid, 5);
	assert_int_equal(c.addr, 0);
	assert_int_equal(c.data_len, 0);

	nvme_build_write_zeroes(&c, 1, 100, 16, true, false);
	assert_int_equal(c.opcode, 0x08);
	assert_int_equal(c.cdw10, 100);
	assert_int_equal(c.cdw12, (1u << 25) | 15);  /* DEAC */
	assert_int_equal(c.data_len, 0);
	nvme_build_write_zeroes(&c, 1, 100, 1, false, true);
	assert_int_equal(c.cdw12, 1u << 30);

	struct nvme_dsm_range r[3];
	nvme_build_dsm_deallocate(&c, 1, r, 3);
	assert_int_equal(c.opcode, 0x09);
	assert_int_equal(c.cdw10, 2);                /* NR 0's based */
	assert_int_equal(c.cdw11, 1u << 2);          /* AD */
	assert_int_equal(c.data_len, 48);
	assert_ptr_equal((void *)(uintptr_t)c.addr, r);
	assert_int_equal(sizeof(struct nvme_dsm_range), 16);
}

static void test_dsm_fill(void **state)
{
	(void)state;
	struct nvme_dsm_range r[4];
	uint64_t covered;

	assert_int_equal(nvme_dsm_fill(r, 4, UINT32_MAX, 10, 100, &covered), 1);
	assert_int_equal(covered, 100);
	assert_int_equal(r[0].slba, 10);
	assert_int_equal(r[0].nlb, 100);
	assert_int_equal(r[0].cattr, 0);

	/* DMRSL 30: 100 blocks in 30 + 30 + 30 + 10. */
	assert_int_equal(nvme_dsm_fill(r, 4, 30, 1000, 100, &covered), 4);
	assert_int_equal(covered, 100);
	assert_int_equal(r[1].slba, 1030);
	assert_int_equal(r[3].slba, 1090);
	assert_int_equal(r[3].nlb, 10);

	/* Ranges run out: the rest goes in another command. */
	assert_int_equal(nvme_dsm_fill(r, 2, 30, 0, 100, &covered), 2);
	assert_int_equal(covered, 60);
	assert_int_equal(nvme_dsm_fill(r, 2, 30, 60, 100 - 60, &covered), 2);
	assert_int_equal(covered, 40);
	assert_int_equal(r[1].nlb, 10);

	/* More than 2^32 blocks in one call. */
	assert_int_equal(nvme_dsm_fill(r, 4, UINT32_MAX, 0, 1ull << 33, &covered), 3);
	assert_int_equal(covered, 1ull << 33);
	assert_int_equal(r[2].nlb, 2);
}

static void test_chunk_and_slice(void **state)
{
	(void)state;
	/* MDTS split: 2500 blocks at 1024 per command = 1024, 1024, 452. */
	uint64_t rest = 2500;
	uint32_t got[4];
	int n = 0;
	while (rest) {
		got[n] = nvme_chunk_blocks(rest, 1024);
		rest -= got[n++];
	}
	assert_int_equal(n, 3);
	assert_int_equal(got[0], 1024);
	assert_int_equal(got[2], 452);

	uint8_t a[8192], b[4096], c[16384];
	struct iovec iov[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	struct iovec out[3];
	size_t bytes;
	/* Everything fits. */
	assert_int_equal(nvme_iov_slice(iov, 3, 0, 0, 1 << 20, out, &bytes), 3);
	assert_int_equal(bytes, 28672);
	/* Cut inside the second iovec. */
	assert_int_equal(nvme_iov_slice(iov, 3, 0, 0, 10240, out, &bytes), 2);
	assert_int_equal(bytes, 10240);
	assert_ptr_equal(out[1].iov_base, b);
	assert_int_equal(out[1].iov_len, 2048);
	/* Resume from there (iov_idx 1, iov_off 2048), cut inside the third. */
	assert_int_equal(nvme_iov_slice(iov, 3, 1, 2048, 10240, out, &bytes), 2);
	assert_ptr_equal(out[0].iov_base, b + 2048);
	assert_int_equal(out[0].iov_len, 2048);
	assert_ptr_equal(out[1].iov_base, c);
	assert_int_equal(out[1].iov_len, 8192);
	assert_int_equal(bytes, 10240);
	/* One piece inside one iovec. */
	assert_int_equal(nvme_iov_slice(iov, 3, 2, 8192, 4096, out, &bytes), 1);
	assert_ptr_equal(out[0].iov_base, c + 8192);
	assert_int_equal(bytes, 4096);
}

struct status_case {
	uint16_t status;
	uint8_t key, asc, ascq;
	int err;
};

static void test_status_to_sense(void **state)
{
	(void)state;
	static const struct status_case cases[] = {
		{ 0x0001, 0x5, 0x20, 0x00, -EOPNOTSUPP },  /* invalid opcode */
		{ 0x0002, 0x5, 0x24, 0x00, -EINVAL },      /* invalid field */
		{ 0x0004, 0x3, 0x00, 0x00, -EIO },         /* data transfer error */
		{ 0x0006, 0x4, 0x44, 0x00, -EIO },         /* internal error */
		{ 0x0007, 0xb, 0x00, 0x00, -ECANCELED },   /* abort requested */
		{ 0x000b, 0x5, 0x20, 0x09, -ENODEV },      /* invalid namespace */
		{ 0x0020, 0x7, 0x27, 0x00, -EROFS },       /* namespace write protected */
		{ 0x0080, 0x5, 0x21, 0x00, -EINVAL },      /* LBA out of range */
		{ 0x0081, 0x3, 0x00, 0x00, -ENOSPC },      /* capacity exceeded */
		{ 0x0082, 0x2, 0x04, 0x00, -EBUSY },       /* namespace not ready */
		{ 0x0084, 0x2, 0x04, 0x04, -EBUSY },       /* format in progress */
		{ 0x0180, 0x5, 0x24, 0x00, -EINVAL },      /* conflicting attributes */
		{ 0x0182, 0x7, 0x27, 0x00, -EROFS },       /* write to read-only range */
		{ 0x0280, 0x3, 0x03, 0x00, -EIO },         /* write fault */
		{ 0x0281, 0x3, 0x11, 0x00, -EIO },         /* unrecovered read error */
		{ 0x0282, 0x3, 0x10, 0x01, -EIO },         /* guard check */
		{ 0x0283, 0x3, 0x10, 0x02, -EIO },         /* application tag check */
		{ 0x0284, 0x3, 0x10, 0x03, -EIO },         /* reference tag check */
		{ 0x0285, 0xe, 0x1d, 0x00, -EILSEQ },      /* compare failure */
		{ 0x0286, 0x7, 0x20, 0x02, -EACCES },      /* access denied */
		{ 0x0300, 0xb, 0x00, 0x00, -EBUSY },       /* path related */
		{ 0x0055, 0x4, 0x44, 0x00, -EIO },         /* unknown generic */
		{ 0x0700, 0x4, 0x44, 0x00, -EIO },         /* vendor specific */
		/* DNR and More bits do not change the translation */
		{ 0x4281, 0x3, 0x11, 0x00, -EIO },
		{ 0x6080, 0x5, 0x21, 0x00, -EINVAL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = 12345;
		uint32_t s = nvme_status_to_sense(cases[i].status, &err);
		if (NVME_SENSE_KEY(s) != cases[i].key || NVME_SENSE_ASC(s) != cases[i].asc ||
		    NVME_SENSE_ASCQ(s) != cases[i].ascq || err != cases[i].err)
			fail_msg("status %#x: got %x/%02x/%02x %d", cases[i].status,
				 NVME_SENSE_KEY(s), NVME_SENSE_ASC(s), NVME_SENSE_ASCQ(s), err);
	}
	int err = 1;
	assert_int_equal(nvme_status_to_sense(0, &err), 0);
	assert_int_equal(err, 0);
	assert_true(nvme_status_dnr(0x4281));
	assert_false(nvme_status_dnr(0x0281));
}

/* Opening: not a namespace character device, or nothing there. */
static void test_open_refuses(void **state)
{
	(void)state;
	struct bdev *b = NULL;
	struct bdev_opts o = { .type = BDEV_TYPE_NVME, .block_size = 512 };
	o.path = "/dev/null";                          /* a char device, not NVMe */
	assert_int_equal(bdev_open(&o, &b), -ENOTTY);
	assert_null(b);
	o.path = "/etc/hostname";                      /* a regular file */
	assert_int_equal(bdev_open(&o, &b), -EINVAL);
	o.path = "/dev/nvme97n3";                      /* mapped to /dev/ng97n3: absent */
	assert_int_equal(bdev_open(&o, &b), -ENOENT);
	assert_null(b);
}


/* ---- against a real namespace (LICH_TEST_NVME) ---- */

#define KiB 1024ull
#define MiB (1024ull * 1024)

static const char *dev_path(void)
{
	const char *p = getenv("LICH_TEST_NVME");
	if (!p || !*p) {
		print_message("LICH_TEST_NVME not set: no NVMe namespace to test against\n");
		skip();
	}
	return p;
}

static void pattern(void *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static bool all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void *abuf(size_t len)
{
	void *p = NULL;
	assert_int_equal(posix_memalign(&p, 4096, len), 0);
	memset(p, 0xee, len);
	return p;
}

struct done { int n; };

static void on_done(struct bdev_io *io)
{
	((struct done *)io->ctx)->n++;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Submits one I/O, polls until it completes (10 s at most); returns the
 * submit error or its status, and its sense in *sense. */
static int io_sync(struct bdev_qp *qp, struct bdev *b, enum bdev_io_type type, bool fua,
		   uint64_t off, uint64_t len, struct iovec *iov, int iovcnt, uint32_t *sense)
{
	struct done d = { 0 };
	struct bdev_io io;
	memset(&io, 0, sizeof(io));
	io.bdev = b;
	io.type = type;
	io.fua = fua;
	io.offset = off;
	io.len = len;
	io.iov = iov;
	io.iovcnt = iovcnt;
	io.cb = on_done;
	io.ctx = &d;
	int rc = bdev_submit(qp, &io);
	if (rc)
		return rc;
	uint64_t deadline = now_ms() + 10000;
	while (d.n == 0) {
		if (bdev_qp_poll(qp) == 0)
			usleep(50);
		assert_true(now_ms() < deadline);
	}
	if (sense)
		*sense = io.sense;
	return io.status;
}

static int rw(struct bdev_qp *qp, struct bdev *b, enum bdev_io_type t, uint64_t off,
	      void *buf, size_t len)
{
	struct iovec v = { buf, len };
	return io_sync(qp, b, t, false, off, len, &v, 1, NULL);
}

static void round_trip(struct bdev_qp *qp, struct bdev *b, uint64_t off, uint8_t *src,
		       uint8_t *dst, size_t len, uint32_t seed)
{
	pattern(src, len, seed);
	memset(dst, 0xee, len);
	assert_int_equal(rw(qp, b, BDEV_IO_WRITE, off, src, len), 0);
	assert_int_equal(rw(qp, b, BDEV_IO_READ, off, dst, len), 0);
	assert_memory_equal(src, dst, len);
}

static struct bdev *dev_open(const char *path)
{
	struct bdev_opts o = { .type = BDEV_TYPE_NVME, .path = path, .block_size = 512 };
	struct bdev *b = NULL;
	assert_int_equal(bdev_open(&o, &b), 0);
	assert_true(b->block_size >= 512 && b->block_size <= 4096);
	assert_true(b->size >= 64 * MiB);
	assert_int_equal(b->size % b->block_size, 0);
	return b;
}

static struct bdev_qp_stats qstats(const struct bdev_qp *qp)
{
	struct bdev_qp_stats st;
	bdev_qp_get_stats(qp, &st);
	return st;
}

/* Reads [off, off + len) with O_DIRECT from the namespace's block device
 * (/dev/nvmeXnY for /dev/ngXnY), i.e. not through lich. */
static void read_blockdev(const char *ng, uint64_t off, void *buf, size_t len)
{
	unsigned c, n;
	char blk[64];
	const char *base = strrchr(ng, '/');
	assert_int_equal(sscanf(base ? base + 1 : ng, "ng%un%u", &c, &n), 2);
	snprintf(blk, sizeof(blk), "/dev/nvme%un%u", c, n);
	int fd = open(blk, O_RDONLY | O_DIRECT);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void test_dev_rw(void **state)
{
	(void)state;
	const char *path = dev_path();
	struct bdev *b = dev_open(path);
	struct bdev_qp *qp = bdev_qp_create(NULL, 16);
	assert_non_null(qp);
	uint8_t *a = abuf(4 * MiB), *c = abuf(4 * MiB), *chk = abuf(4 * MiB);

	/* One segment: NVME_URING_CMD_IO. 4 MiB: more than any MDTS QEMU has,
	 * so split. */
	round_trip(qp, b, 0, a, c, 4 * KiB, 1);
	round_trip(qp, b, 8 * MiB, a, c, 4 * MiB, 2);
	read_blockdev(path, 8 * MiB, chk, 4 * MiB);
	assert_memory_equal(a, chk, 4 * MiB);
	/* The last blocks of the namespace. */
	round_trip(qp, b, b->size - 64 * KiB, a, c, 64 * KiB, 3);

	/* Several segments (NVME_URING_CMD_IO_VEC), odd sizes, and split inside
	 * a segment when they exceed the transfer limit. */
	pattern(a, 3 * MiB, 4);
	struct iovec wv[3] = { { a, 4 * KiB }, { a + 4 * KiB, 2 * MiB }, { a + 4 * KiB + 2 * MiB, MiB - 4 * KiB } };
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE, true, 20 * MiB, 3 * MiB, wv, 3, NULL), 0);
	memset(c, 0, 3 * MiB);
	struct iovec rv[2] = { { c, 512 * KiB + 4096 }, { c + 512 * KiB + 4096, 3 * MiB - 512 * KiB - 4096 } };
	assert_int_equal(io_sync(qp, b, BDEV_IO_READ, false, 20 * MiB, 3 * MiB, rv, 2, NULL), 0);
	assert_memory_equal(a, c, 3 * MiB);
	read_blockdev(path, 20 * MiB, chk, 3 * MiB);    /* FUA: on the medium */
	assert_memory_equal(a, chk, 3 * MiB);

	assert_int_equal(io_sync(qp, b, BDEV_IO_FLUSH, false, 0, 0, NULL, 0, NULL), 0);
	struct bdev_qp_stats st = qstats(qp);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.rw_fixed, 0);              /* no pool attached */
	assert_true(st.rw_plain >= 10);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(a);
	free(c);
	free(chk);
}

/* Pool memory goes as IORING_URING_CMD_FIXED (Linux >= 6.1). */
static void test_dev_fixed_bufs(void **state)
{
	(void)state;
	const char *path = dev_path();
	struct bdev *b = dev_open(path);
	struct mem_pool_opts po = { .name = "nvme-test", .limit = 16 * MiB, .prealloc = 2 * MiB,
				    .numa_node = -1, .no_hugepages = true };
	struct mem_pool *pool = mem_pool_create(&po);
	assert_non_null(pool);
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);
	uint8_t *ca = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	uint8_t *cb = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	assert_non_null(ca);
	assert_non_null(cb);

	/* The first command goes fixed. A kernel that refuses it (Linux 6.1
	 * takes registered buffers for passthrough only as single pages) makes
	 * the qp resend it, and everything after, plainly: the data is right
	 * either way and the counters tell which path was taken. */
	round_trip(qp, b, 0, ca, cb, 256 * KiB, 5);
	struct bdev_qp_stats st = qstats(qp);
	bool refused = st.rw_plain != 0;
	print_message("registered buffers for NVMe passthrough: %s\n",
		      refused ? "refused by this kernel, plain buffers" : "used");
	if (refused) {
		assert_int_equal(st.rw_fixed, 1);
		assert_int_equal(st.rw_plain, 2);
	} else {
		assert_int_equal(st.rw_fixed, 2);
	}
	/* A chunk mapped after the ring exists: installed at once. */
	uint8_t *cc = mem_pool_alloc_pages(pool, BUDDY_MAX_ORDER);
	assert_non_null(cc);
	round_trip(qp, b, MiB, cc + 4 * KiB, ca, 2 * MiB - 4 * KiB, 6);
	if (!refused)
		assert_true(qstats(qp).rw_fixed >= 4);
	/* Pool detached: plain, still right; attached again: registered
	 * buffers are tried anew. */
	assert_int_equal(bdev_qp_set_pool(qp, NULL), 0);
	uint64_t fixed = qstats(qp).rw_fixed;
	round_trip(qp, b, 4 * MiB, ca, cb, 64 * KiB, 7);
	assert_int_equal(qstats(qp).rw_fixed, fixed);
	assert_int_equal(bdev_qp_set_pool(qp, pool), 0);
	round_trip(qp, b, 4 * MiB, cb, ca, 64 * KiB, 8);
	assert_true(qstats(qp).rw_fixed >= fixed);
	assert_int_equal(qstats(qp).errors, 0);
	bdev_qp_destroy(qp);
	mem_pool_destroy(pool);
	bdev_close(b);
}

static void test_dev_unmap_zeroes(void **state)
{
	(void)state;
	const char *path = dev_path();
	struct bdev *b = dev_open(path);
	assert_true(b->can_unmap);                     /* QEMU: DSM and Write Zeroes */
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	uint8_t *a = abuf(MiB), *c = abuf(MiB);

	for (int op = 0; op < 2; op++) {
		enum bdev_io_type t = op ? BDEV_IO_WRITE_ZEROES : BDEV_IO_UNMAP;
		pattern(a, MiB, 9 + op);
		assert_int_equal(rw(qp, b, BDEV_IO_WRITE, 30 * MiB, a, MiB), 0);
		assert_int_equal(io_sync(qp, b, t, false, 30 * MiB + 64 * KiB, 512 * KiB,
					 NULL, 0, NULL), 0);
		assert_int_equal(rw(qp, b, BDEV_IO_READ, 30 * MiB, c, MiB), 0);
		assert_memory_equal(c, a, 64 * KiB);
		assert_true(all_zero(c + 64 * KiB, 512 * KiB));
		assert_memory_equal(c + 576 * KiB, a + 576 * KiB, MiB - 576 * KiB);
	}
	/* A range larger than one Write Zeroes command (65536 blocks). */
	uint64_t big = 65536ull * b->block_size + 8 * b->block_size;
	assert_int_equal(io_sync(qp, b, BDEV_IO_WRITE_ZEROES, false, 0, big, NULL, 0, NULL), 0);
	assert_int_equal(rw(qp, b, BDEV_IO_READ, big - MiB, c, MiB), 0);
	assert_true(all_zero(c, MiB));
	assert_int_equal(qstats(qp).errors, 0);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(a);
	free(c);
}

/* An NVMe error comes back as sense: make the bdev believe it is larger
 * than the namespace, so that a read past the end reaches the controller,
 * which answers LBA Out of Range. */
static void test_dev_status_sense(void **state)
{
	(void)state;
	const char *path = dev_path();
	struct bdev *b = dev_open(path);
	struct bdev_qp *qp = bdev_qp_create(NULL, 4);
	uint8_t *a = abuf(8 * KiB);
	uint64_t real = b->size;
	b->size += 64 * MiB;
	struct iovec v = { a, 8 * KiB };
	uint32_t sense = 0;
	int rc = io_sync(qp, b, BDEV_IO_READ, false, real + MiB, 8 * KiB, &v, 1, &sense);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(NVME_SENSE_KEY(sense), 0x5);  /* ILLEGAL REQUEST */
	assert_int_equal(NVME_SENSE_ASC(sense), 0x21); /* LBA OUT OF RANGE */
	assert_int_equal(NVME_SENSE_ASCQ(sense), 0x00);
	/* Straddling the end: fails too; the part inside is not reported done. */
	v.iov_len = 8 * KiB;
	rc = io_sync(qp, b, BDEV_IO_WRITE, false, real - 4 * KiB, 8 * KiB, &v, 1, &sense);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(NVME_SENSE_ASC(sense), 0x21);
	b->size = real;
	/* The qp still works. */
	assert_int_equal(rw(qp, b, BDEV_IO_READ, 0, a, 8 * KiB), 0);
	bdev_qp_destroy(qp);
	bdev_close(b);
	free(a);
}

/* Many I/O in flight, more than the qp's depth; destroy with some in flight. */
static void test_dev_depth(void **state)
{
	(void)state;
	const char *path = dev_path();
	struct bdev *b = dev_open(path);
	struct bdev_qp *qp = bdev_qp_create(NULL, 8);
	enum { N = 64 };
	uint8_t *buf = abuf(N * 4 * KiB);
	struct iovec v[N];
	struct bdev_io io[N];
	struct done d = { 0 };
	pattern(buf, N * 4 * KiB, 12);
	for (int i = 0; i < N; i++) {
		memset(&io[i], 0, sizeof(io[i]));
		v[i] = (struct iovec){ buf + i * 4 * KiB, 4 * KiB };
		io[i].bdev = b;
		io[i].type = BDEV_IO_WRITE;
		io[i].offset = 40 * MiB + (uint64_t)i * 4 * KiB;
		io[i].len = 4 * KiB;
		io[i].iov = &v[i];
		io[i].iovcnt = 1;
		io[i].cb = on_done;
		io[i].ctx = &d;
		assert_int_equal(bdev_submit(qp, &io[i]), 0);
	}
	uint64_t deadline = now_ms() + 10000;
	while (d.n < N) {
		if (bdev_qp_poll(qp) == 0)
			usleep(50);
		assert_true(now_ms() < deadline);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(io[i].status, 0);
	uint8_t *chk = abuf(N * 4 * KiB);
	read_blockdev(path, 40 * MiB, chk, N * 4 * KiB);
	assert_memory_equal(buf, chk, N * 4 * KiB);
	/* Destroy with I/O queued and in the kernel: every callback runs. */
	d.n = 0;
	for (int i = 0; i < N; i++) {
		io[i].type = BDEV_IO_READ;
		assert_int_equal(bdev_submit(qp, &io[i]), 0);
	}
	bdev_qp_poll(qp);
	bdev_qp_destroy(qp);
	assert_int_equal(d.n, N);
	bdev_close(b);
	free(buf);
	free(chk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_ns),
		cmocka_unit_test(test_id_ctrl),
		cmocka_unit_test(test_clamp_xfer),
		cmocka_unit_test(test_id_ctrl_nvm),
		cmocka_unit_test(test_build_commands),
		cmocka_unit_test(test_dsm_fill),
		cmocka_unit_test(test_chunk_and_slice),
		cmocka_unit_test(test_status_to_sense),
		cmocka_unit_test(test_open_refuses),
		cmocka_unit_test(test_dev_rw),
		cmocka_unit_test(test_dev_fixed_bufs),
		cmocka_unit_test(test_dev_unmap_zeroes),
		cmocka_unit_test(test_dev_status_sense),
		cmocka_unit_test(test_dev_depth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
