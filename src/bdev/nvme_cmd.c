/* nvme_cmd.c — NVMe command building, Identify parsing and status translation
 * for the nvme backend; pure functions, see include/bdev/nvme.h. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bdev/nvme.h"

#define PAGE_4K 4096u

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* ---- Identify ---- */

void nvme_ns_info_defaults(struct nvme_ns_info *ns)
{
	ns->dsm_max_ranges = NVME_DSM_MAX_RANGES;
	ns->dsm_range_max_blocks = UINT32_MAX;
	ns->wz_max_blocks = NVME_MAX_NLB;
}

void nvme_parse_id_ctrl(const uint8_t id[NVME_IDENTIFY_LEN], struct nvme_ns_info *ns)
{
	uint8_t mdts = id[77];
	uint16_t oncs = le16(id + 520);
	uint64_t max_blocks = NVME_MAX_NLB;

	/* MDTS 0: no limit. Otherwise 2^MDTS pages; a shift past 2^20 pages
	 * (4 GiB) is beyond any NLB anyway. */
	if (mdts && mdts < 20 && ns->lba_size) {
		uint64_t bytes = (uint64_t)PAGE_4K << mdts;
		max_blocks = bytes / ns->lba_size;
	}
	if (max_blocks > NVME_MAX_NLB)
		max_blocks = NVME_MAX_NLB;
	if (max_blocks == 0)
		max_blocks = 1;
	ns->max_xfer_blocks = (uint32_t)max_blocks;
	ns->has_dsm = oncs & (1u << 2);
	ns->has_write_zeroes = oncs & (1u << 3);
	ns->vwc = id[525] & 1;
}

int nvme_parse_id_ns(const uint8_t id[NVME_IDENTIFY_LEN], struct nvme_ns_info *ns)
{
	uint8_t nlbaf = id[25];
	uint8_t flbas = id[26];
	/* The format index: bits 3:0, and bits 6:5 as its high bits when more
	 * than 16 formats exist (NVMe 2.0). */
	unsigned idx = (flbas & 0x0f) | (nlbaf >= 16 ? ((flbas >> 5) & 3u) << 4 : 0);
	if (idx > nlbaf || idx >= 64)
		return -EINVAL;
	const uint8_t *lbaf = id + 128 + 4 * idx;
	uint8_t lbads = lbaf[2];
	if (lbads < 9 || lbads > 16)
		return -EINVAL;
	ns->nblocks = le64(id);
	if (ns->nblocks == 0)
		return -EINVAL;
	ns->lba_size = 1u << lbads;
	ns->md_size = le16(lbaf);
	ns->dealloc_reads_zero = (id[33] & 7) == 1;
	return 0;
}

void nvme_parse_id_ctrl_nvm(const uint8_t id[NVME_IDENTIFY_LEN], struct nvme_ns_info *ns)
{
	nvme_ns_info_defaults(ns);
	uint8_t wzsl = id[1], dmrl = id[3];
	uint32_t dmrsl = le32(id + 4);
	if (wzsl && wzsl < 20 && ns->lba_size) {
		uint64_t b = ((uint64_t)PAGE_4K << wzsl) / ns->lba_size;
		ns->wz_max_blocks = b == 0 ? 1 : b < NVME_MAX_NLB ? (uint32_t)b : NVME_MAX_NLB;
	}
	if (dmrl)
		ns->dsm_max_ranges = dmrl;
	if (dmrsl)
		ns->dsm_range_max_blocks = dmrsl;
}

void nvme_clamp_xfer(struct nvme_ns_info *ns, uint32_t max_hw_kb, uint32_t max_segments)
{
	if (max_segments == 0)
		max_segments = 127;
	uint64_t bytes = max_segments > 1 ? (uint64_t)(max_segments - 1) * PAGE_4K : PAGE_4K;
	if (max_hw_kb && (uint64_t)max_hw_kb * 1024 < bytes)
		bytes = (uint64_t)max_hw_kb * 1024;
	uint64_t blocks = ns->lba_size ? bytes / ns->lba_size : 0;
	if (blocks == 0)
		blocks = 1;
	if (blocks < ns->max_xfer_blocks)
		ns->max_xfer_blocks = (uint32_t)blocks;
}

/* ---- commands ---- */

void nvme_build_identify(struct nvme_uring_cmd *c, uint32_t nsid, uint8_t cns, void *buf)
{
	memset(c, 0, sizeof(*c));
	c->opcode = NVME_ADMIN_IDENTIFY;
	c->nsid = nsid;
	c->addr = (uint64_t)(uintptr_t)buf;
	c->data_len = NVME_IDENTIFY_LEN;
	c->cdw10 = cns;               /* CNTID 0 */
	c->cdw11 = 0;                 /* CSI 0: the NVM command set */
}

void nvme_build_rw(struct nvme_uring_cmd *c, bool write, uint32_t nsid, uint64_t slba,
		   uint32_t nblocks, bool fua, uint64_t addr, uint32_t len)
{
	memset(c, 0, sizeof(*c));
	c->opcode = write ? NVME_CMD_WRITE : NVME_CMD_READ;
	c->nsid = nsid;
	c->addr = addr;
	c->data_len = len;
	c->cdw10 = (uint32_t)slba;
	c->cdw11 = (uint32_t)(slba >> 32);
	c->cdw12 = (nblocks - 1) | (fua ? 1u << 30 : 0);
}

void nvme_build_flush(struct nvme_uring_cmd *c, uint32_t nsid)
{
	memset(c, 0, sizeof(*c));
	c->opcode = NVME_CMD_FLUSH;
	c->nsid = nsid;
}

void nvme_build_write_zeroes(struct nvme_uring_cmd *c, uint32_t nsid, uint64_t slba,
			     uint32_t nblocks, bool deallocate, bool fua)
{
	memset(c, 0, sizeof(*c));
	c->opcode = NVME_CMD_WRITE_ZEROES;
	c->nsid = nsid;
	c->cdw10 = (uint32_t)slba;
	c->cdw11 = (uint32_t)(slba >> 32);
	c->cdw12 = (nblocks - 1) | (deallocate ? 1u << 25 : 0) | (fua ? 1u << 30 : 0);
}

void nvme_build_dsm_deallocate(struct nvme_uring_cmd *c, uint32_t nsid,
			       const struct nvme_dsm_range *ranges, uint32_t nr)
{
	memset(c, 0, sizeof(*c));
	c->opcode = NVME_CMD_DSM;
	c->nsid = nsid;
	c->addr = (uint64_t)(uintptr_t)ranges;
	c->data_len = nr * (uint32_t)sizeof(*ranges);
	c->cdw10 = nr - 1;            /* NR, 0's based */
	c->cdw11 = 1u << 2;           /* AD: deallocate */
}

uint32_t nvme_dsm_fill(struct nvme_dsm_range *ranges, uint32_t max_ranges,
		       uint32_t max_range_blocks, uint64_t slba, uint64_t nblocks,
		       uint64_t *covered)
{
	uint32_t n = 0;
	uint64_t done = 0;
	while (done < nblocks && n < max_ranges) {
		uint64_t len = nblocks - done;
		if (len > max_range_blocks)
			len = max_range_blocks;
		/* The range layout is little-endian on the wire; so is every
		 * host this builds for (x86-64, arm64 LE). */
		ranges[n].cattr = 0;
		ranges[n].nlb = (uint32_t)len;
		ranges[n].slba = slba + done;
		done += len;
		n++;
	}
	*covered = done;
	return n;
}

int nvme_iov_slice(const struct iovec *iov, int iovcnt, int idx, size_t off,
		   size_t max_bytes, struct iovec *out, size_t *bytes)
{
	int n = 0;
	size_t total = 0;
	while (idx < iovcnt && total < max_bytes) {
		size_t left = iov[idx].iov_len - off;
		size_t take = left < max_bytes - total ? left : max_bytes - total;
		if (take) {
			out[n].iov_base = (uint8_t *)iov[idx].iov_base + off;
			out[n].iov_len = take;
			n++;
			total += take;
		}
		idx++;
		off = 0;
	}
	*bytes = total;
	return n;
}

/* ---- status → sense ---- */

#define SK_NOT_READY       0x2
#define SK_MEDIUM_ERROR    0x3
#define SK_HARDWARE_ERROR  0x4
#define SK_ILLEGAL_REQUEST 0x5
#define SK_DATA_PROTECT    0x7
#define SK_ABORTED_COMMAND 0xb
#define SK_MISCOMPARE      0xe

uint32_t nvme_status_to_sense(uint16_t status, int *err)
{
	uint8_t sc = status & 0xff;
	uint8_t sct = (status >> 8) & 7;

	*err = -EIO;
	if (sct == 0 && sc == 0) {
		*err = 0;
		return 0;
	}
	switch (sct) {
	case 0:                                   /* generic command status */
		switch (sc) {
		case 0x01:                        /* invalid command opcode */
			*err = -EOPNOTSUPP;
			return NVME_SENSE(SK_ILLEGAL_REQUEST, 0x20, 0x00);
		case 0x02:                        /* invalid field in command */
		case 0x03:                        /* command ID conflict */
			*err = -EINVAL;
			return NVME_SENSE(SK_ILLEGAL_REQUEST, 0x24, 0x00);
		case 0x04:                        /* data transfer error */
			return NVME_SENSE(SK_MEDIUM_ERROR, 0x00, 0x00);
		case 0x05:                        /* aborted: power loss notification */
			*err = -ECANCELED;
			return NVME_SENSE(SK_ABORTED_COMMAND, 0x0b, 0x08);
		case 0x06:                        /* internal error */
			return NVME_SENSE(SK_HARDWARE_ERROR, 0x44, 0x00);
		case 0x07:                        /* abort requested */
		case 0x08:                        /* aborted: SQ deletion */
		case 0x09:                        /* aborted: failed fused */
		case 0x0a:                        /* aborted: missing fused */
			*err = -ECANCELED;
			return NVME_SENSE(SK_ABORTED_COMMAND, 0x00, 0x00);
		case 0x0b:                        /* invalid namespace or format */
			*err = -ENODEV;
			return NVME_SENSE(SK_ILLEGAL_REQUEST, 0x20, 0x09);
		case 0x20:                        /* namespace is write protected */
			*err = -EROFS;
			return NVME_SENSE(SK_DATA_PROTECT, 0x27, 0x00);
		case 0x80:                        /* LBA out of range */
			*err = -EINVAL;
			return NVME_SENSE(SK_ILLEGAL_REQUEST, 0x21, 0x00);
		case 0x81:                        /* capacity exceeded */
			*err = -ENOSPC;
			return NVME_SENSE(SK_MEDIUM_ERROR, 0x00, 0x00);
		case 0x82:                        /* namespace not ready */
			*err = -EBUSY;
			return NVME_SENSE(SK_NOT_READY, 0x04, 0x00);
		case 0x84:                        /* format in progress */
			*err = -EBUSY;
			return NVME_SENSE(SK_NOT_READY, 0x04, 0x04);
		}
		break;
	case 1:                                   /* command specific */
		switch (sc) {
		case 0x80:                        /* conflicting attributes (DSM) */
			*err = -EINVAL;
			return NVME_SENSE(SK_ILLEGAL_REQUEST, 0x24, 0x00);
		case 0x81:                        /* invalid protection information */
			*err = -EINVAL;
			return NVME_SENSE(SK_ILLEGAL_REQUEST, 0x24, 0x00);
		case 0x82:                        /* write to read-only range */
			*err = -EROFS;
			return NVME_SENSE(SK_DATA_PROTECT, 0x27, 0x00);
		}
		break;
	case 2:                                   /* media and data integrity */
		switch (sc) {
		case 0x80:                        /* write fault */
			return NVME_SENSE(SK_MEDIUM_ERROR, 0x03, 0x00);
		case 0x81:                        /* unrecovered read error */
			return NVME_SENSE(SK_MEDIUM_ERROR, 0x11, 0x00);
		case 0x82:                        /* end-to-end guard check */
			return NVME_SENSE(SK_MEDIUM_ERROR, 0x10, 0x01);
		case 0x83:                        /* end-to-end application tag check */
			return NVME_SENSE(SK_MEDIUM_ERROR, 0x10, 0x02);
		case 0x84:                        /* end-to-end reference tag check */
			return NVME_SENSE(SK_MEDIUM_ERROR, 0x10, 0x03);
		case 0x85:                        /* compare failure */
			*err = -EILSEQ;
			return NVME_SENSE(SK_MISCOMPARE, 0x1d, 0x00);
		case 0x86:                        /* access denied */
			*err = -EACCES;
			return NVME_SENSE(SK_DATA_PROTECT, 0x20, 0x02);
		case 0x87:                        /* deallocated or unwritten block */
			return NVME_SENSE(SK_MEDIUM_ERROR, 0x11, 0x00);
		}
		break;
	case 3:                                   /* path related */
		*err = -EBUSY;
		return NVME_SENSE(SK_ABORTED_COMMAND, 0x00, 0x00);
	}
	return NVME_SENSE(SK_HARDWARE_ERROR, 0x44, 0x00);
}
