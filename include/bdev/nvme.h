/* nvme.h — NVMe commands for the nvme backend (src/bdev/bdev_nvme.c), as pure
 * functions: parsing Identify data, building I/O commands into the kernel's
 * struct nvme_uring_cmd (linux/nvme_ioctl.h, the payload of an
 * IORING_OP_URING_CMD SQE on /dev/ngXnY), cutting a transfer to the controller's
 * limits, and translating an NVMe completion status into SCSI sense. Nothing
 * here does I/O, so all of it is unit-tested (tests/unit/test_bdev_nvme.c).
 *
 * Units: LBAs and block counts are in the namespace's logical blocks; a command
 * carries 1..65536 blocks (NLB is 16 bits, 0's based). Status is the 15-bit NVMe
 * status field the kernel puts in the CQE's res for a passthrough command
 * (SC bits 0-7, SCT bits 8-10, CRD 11-12, M 13, DNR 14); a negative res is an
 * errno from the kernel, not an NVMe status.
 *
 * Status translation follows the NVM Express SCSI Translation Reference (rev
 * 1.5, "NVM Express Status Code to SCSI Status Code Mapping"), for the codes an
 * NVM I/O command can return; anything else is HARDWARE ERROR / INTERNAL TARGET
 * FAILURE. The sense is packed as NVME_SENSE(key, asc, ascq), the form
 * struct bdev_io.sense carries to the SCSI layer.
 */
#ifndef LICH_BDEV_NVME_H
#define LICH_BDEV_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/nvme_ioctl.h>

/* Opcodes (NVMe base spec: admin; NVM command set: I/O). */
#define NVME_ADMIN_IDENTIFY   0x06
#define NVME_CMD_FLUSH        0x00
#define NVME_CMD_WRITE        0x01
#define NVME_CMD_READ         0x02
#define NVME_CMD_WRITE_ZEROES 0x08
#define NVME_CMD_DSM          0x09

/* Identify CNS values */
#define NVME_CNS_NS           0x00
#define NVME_CNS_CTRL         0x01
#define NVME_CNS_CTRL_CSI     0x06   /* I/O command set specific controller (CSI 0: NVM) */
#define NVME_IDENTIFY_LEN     4096

#define NVME_MAX_NLB          65536u /* blocks per read/write/write-zeroes command */
#define NVME_DSM_MAX_RANGES   256u   /* ranges per DSM command (4 KiB of ranges) */

/* Packed SCSI sense: key, additional sense code and qualifier. */
#define NVME_SENSE(key, asc, ascq) (((uint32_t)(key) << 16) | ((uint32_t)(asc) << 8) | (ascq))
#define NVME_SENSE_KEY(s)  ((uint8_t)((s) >> 16))
#define NVME_SENSE_ASC(s)  ((uint8_t)((s) >> 8))
#define NVME_SENSE_ASCQ(s) ((uint8_t)(s))

/* What the backend needs to know of a namespace and its controller. */
struct nvme_ns_info {
	uint32_t nsid;
	uint32_t lba_size;        /* bytes per logical block of the current format */
	uint32_t md_size;         /* metadata bytes per block (the backend refuses != 0) */
	uint64_t nblocks;         /* NSZE: blocks in the namespace */
	uint32_t max_xfer_blocks; /* per read/write: from MDTS (4 KiB pages), <= NVME_MAX_NLB */
	bool vwc;                 /* volatile write cache present: Flush matters */
	bool has_dsm;             /* ONCS: Dataset Management */
	bool has_write_zeroes;    /* ONCS: Write Zeroes */
	bool dealloc_reads_zero;  /* DLFEAT: deallocated blocks read as zeroes */
	uint32_t dsm_max_ranges;  /* DMRL, or NVME_DSM_MAX_RANGES */
	uint32_t dsm_range_max_blocks;  /* DMRSL, or UINT32_MAX */
	uint32_t wz_max_blocks;   /* WZSL, or NVME_MAX_NLB */
};

/* Fills the nvme_ns_info fields that come from Identify Controller (CNS 01h):
 * max_xfer_blocks (needs lba_size set first), vwc, has_dsm, has_write_zeroes.
 * MDTS is in units of the controller's minimum page size, taken as 4 KiB
 * (what Linux's nvme driver uses for PRPs). */
void nvme_parse_id_ctrl(const uint8_t id[NVME_IDENTIFY_LEN], struct nvme_ns_info *ns);
/* From Identify Namespace (CNS 00h): nblocks, lba_size, md_size,
 * dealloc_reads_zero. -EINVAL if the current LBA format is unusable (data size
 * below 512 B or above 64 KiB, or NSZE 0). */
int nvme_parse_id_ns(const uint8_t id[NVME_IDENTIFY_LEN], struct nvme_ns_info *ns);
/* From the NVM command set's Identify Controller (CNS 06h, CSI 0): WZSL,
 * DMRL, DMRSL (0 in the data = no limit); wz also capped by max transfer as
 * the spec says WZSL is in units of the MDTS page. */
void nvme_parse_id_ctrl_nvm(const uint8_t id[NVME_IDENTIFY_LEN], struct nvme_ns_info *ns);
/* Sets the defaults nvme_parse_id_ctrl_nvm would leave when CNS 06h is not
 * supported. */
void nvme_ns_info_defaults(struct nvme_ns_info *ns);

/* Caps max_xfer_blocks to what the kernel passes through in one request: a
 * passthrough command is never split, so it must fit the namespace queue's
 * max_hw_sectors_kb and max_segments (one segment per 4 KiB page at worst —
 * NVMe PRPs — plus one for a buffer that does not start on a page). 0 = not
 * known: then 127 segments (Linux's nvme-pci) and no byte limit are assumed. */
void nvme_clamp_xfer(struct nvme_ns_info *ns, uint32_t max_hw_kb, uint32_t max_segments);

/* Admin Identify, for NVME_URING_CMD_ADMIN / NVME_IOCTL_ADMIN_CMD (same layout
 * as struct nvme_passthru_cmd up to data_len). */
void nvme_build_identify(struct nvme_uring_cmd *c, uint32_t nsid, uint8_t cns, void *buf);

/* I/O commands. addr/len: the data buffer (or, for a vectored command, the
 * iovec array and its count: the caller sets NVME_URING_CMD_IO_VEC). */
void nvme_build_rw(struct nvme_uring_cmd *c, bool write, uint32_t nsid, uint64_t slba,
		   uint32_t nblocks, bool fua, uint64_t addr, uint32_t len);
void nvme_build_flush(struct nvme_uring_cmd *c, uint32_t nsid);
/* deallocate: DEAC (the controller may deallocate; reads return zeroes anyway). */
void nvme_build_write_zeroes(struct nvme_uring_cmd *c, uint32_t nsid, uint64_t slba,
			     uint32_t nblocks, bool deallocate, bool fua);
struct nvme_dsm_range {
	uint32_t cattr;
	uint32_t nlb;
	uint64_t slba;
};
/* DSM with the Deallocate attribute over nr ranges (1..256) at ranges. */
void nvme_build_dsm_deallocate(struct nvme_uring_cmd *c, uint32_t nsid,
			       const struct nvme_dsm_range *ranges, uint32_t nr);

/* Fills up to max_ranges ranges covering [slba, slba + nblocks) from the
 * start, each at most max_range_blocks (>= 1) long; returns how many ranges
 * and sets *covered to the blocks they cover (less than nblocks when the
 * ranges ran out: the caller sends the rest in another command). */
uint32_t nvme_dsm_fill(struct nvme_dsm_range *ranges, uint32_t max_ranges,
		       uint32_t max_range_blocks, uint64_t slba, uint64_t nblocks,
		       uint64_t *covered);

/* Blocks for the next command of a transfer with rest blocks left, at most
 * max_blocks (>= 1) per command. */
static inline uint32_t nvme_chunk_blocks(uint64_t rest, uint32_t max_blocks)
{
	return rest < max_blocks ? (uint32_t)rest : max_blocks;
}

/* Cuts the next command's data out of iov[iovcnt], starting inside iov[idx]
 * at byte off, at most max_bytes long: writes the pieces to out[] (room for
 * iovcnt - idx entries) and returns their count; *bytes = their total. */
int nvme_iov_slice(const struct iovec *iov, int iovcnt, int idx, size_t off,
		   size_t max_bytes, struct iovec *out, size_t *bytes);

/* NVMe status field (as in the CQE's res) to packed SCSI sense; 0 for success.
 * *err gets the errno the bdev reports with it (-EIO for media errors,
 * -EINVAL, -EROFS, -ENOSPC...). */
uint32_t nvme_status_to_sense(uint16_t status, int *err);
/* True when the status asks for no retry (DNR) — informative; the backend
 * never retries an NVMe error itself (the initiator does). */
static inline bool nvme_status_dnr(uint16_t status) { return status & 0x4000; }

#endif
