/* sense.c — sense data.
 *
 * Commands fail with fixed-format sense (response code 70h, 18 bytes, SPC-4
 * 4.5.3): D_SENSE is 0 in our Control mode page and not changeable. REQUEST
 * SENSE with DESC=1 gets the same information in descriptor format (72h,
 * SPC-4 4.5.2), built here from the fixed bytes.
 *
 * Fixed format layout used below:
 *   0  VALID(7) | response code 70h     7   additional length (10)
 *   2  sense key                        12  ASC, 13 ASCQ
 *   3..6 INFORMATION                    15  SKSV(7) C/D(6) BPV(3) bit pointer(2-0)
 *                                       16..17 field pointer
 */
#include <string.h>

#include "scsi_internal.h"

#define FIXED_LEN 18

void scsi_task_set_sense(struct scsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq)
{
	memset(t->sense, 0, sizeof(t->sense));
	t->sense[0] = 0x70;
	t->sense[2] = key & 0x0f;
	t->sense[7] = FIXED_LEN - 8;
	t->sense[12] = asc;
	t->sense[13] = ascq;
	t->sense_len = FIXED_LEN;
	t->status = SAM_STAT_CHECK_CONDITION;
}

void sense_set_field(struct scsi_task *t, bool cd, uint16_t byte, int bit)
{
	uint8_t sks = 0x80;               /* SKSV */
	if (cd)
		sks |= 0x40;
	if (bit >= 0 && bit <= 7)
		sks |= 0x08 | (uint8_t)bit;   /* BPV + bit pointer */
	t->sense[15] = sks;
	put_be16(&t->sense[16], byte);
}

void sense_set_info(struct scsi_task *t, uint32_t info)
{
	t->sense[0] |= 0x80;              /* VALID */
	put_be32(&t->sense[3], info);
}

int fail_invalid_cdb(struct scsi_task *t, uint16_t byte, int bit)
{
	scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB);
	sense_set_field(t, true, byte, bit);
	return SCSI_TASK_DONE;
}

int fail_invalid_param(struct scsi_task *t, uint16_t byte, int bit)
{
	scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM);
	sense_set_field(t, false, byte, bit);
	return SCSI_TASK_DONE;
}

int fail_param_len(struct scsi_task *t)
{
	scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
	return SCSI_TASK_DONE;
}

int fail_lba_range(struct scsi_task *t)
{
	scsi_task_set_sense(t, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
	return SCSI_TASK_DONE;
}

unsigned sense_fixed_to_desc(const uint8_t *fixed, unsigned len, uint8_t *buf)
{
	unsigned n = 8;

	memset(buf, 0, 8);
	buf[0] = 0x72;
	if (len < FIXED_LEN) {
		buf[7] = 0;
		return n;
	}
	buf[1] = fixed[2] & 0x0f;
	buf[2] = fixed[12];
	buf[3] = fixed[13];
	if (fixed[0] & 0x80) {            /* information descriptor (type 00h) */
		memset(buf + n, 0, 12);
		buf[n] = 0x00;
		buf[n + 1] = 0x0a;
		buf[n + 2] = 0x80;        /* VALID */
		memcpy(buf + n + 8, fixed + 3, 4);   /* 8-byte field, low 4 bytes */
		n += 12;
	}
	if (fixed[15] & 0x80) {           /* sense key specific descriptor (02h) */
		memset(buf + n, 0, 8);
		buf[n] = 0x02;
		buf[n + 1] = 0x06;
		memcpy(buf + n + 4, fixed + 15, 3);
		n += 8;
	}
	buf[7] = (uint8_t)(n - 8);
	return n;
}

unsigned sense_build(uint8_t *buf, bool desc, uint8_t key, uint8_t asc, uint8_t ascq)
{
	uint8_t fixed[FIXED_LEN] = { 0 };

	fixed[0] = 0x70;
	fixed[2] = key & 0x0f;
	fixed[7] = FIXED_LEN - 8;
	fixed[12] = asc;
	fixed[13] = ascq;
	if (desc)
		return sense_fixed_to_desc(fixed, FIXED_LEN, buf);
	memcpy(buf, fixed, FIXED_LEN);
	return FIXED_LEN;
}
