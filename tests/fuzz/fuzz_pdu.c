/* fuzz_pdu.c — iscsi_pdu_check_header() and the LUN codec on arbitrary bytes.
 * Input: a 48-byte BHS (shorter inputs are zero padded) followed by 4 bytes of
 * max_data. Checks the header contract: a 0 result means the data length is
 * within max_data; the LUN decode/encode pair round-trips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "iscsi/pdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };
	uint32_t max_data = 8192;
	int rc;

	memcpy(bhs, data, size < sizeof(bhs) ? size : sizeof(bhs));
	if (size >= ISCSI_BHS_LEN + 4)
		max_data = get_be32(data + ISCSI_BHS_LEN) & 0xffffff;

	rc = iscsi_pdu_check_header(bhs, max_data);
	if (rc != -EPROTO && bhs_data_len(bhs) > max_data)
		abort();                        /* framing trusted past the limit */
	if (rc < 0 && rc != -EPROTO)
		abort();
	if (rc == 0 && bhs_opcode(bhs) >= 0x20)
		abort();                        /* a target opcode accepted */

	uint64_t lun = iscsi_lun_decode(bhs + BHS_LUN);
	if (lun != UINT64_MAX) {
		uint8_t enc[8];

		iscsi_lun_encode(lun, enc);
		if (iscsi_lun_decode(enc) != lun)
			abort();
	}
	return 0;
}
