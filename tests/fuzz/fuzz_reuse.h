/* fuzz_reuse.h — when a harness may keep its SCSI target for the next input.
 *
 * Building a target with its LUs (and tearing it down) costs more than most
 * inputs, so fuzz_scsi and fuzz_iscsi build it once and keep it for as long as
 * the inputs leave it as they found it. State that belongs to one I_T nexus
 * (unit attentions, PR registrations held by that nexus, tasks) goes with the
 * nexus, and every input gets fresh nexuses; what outlives a nexus is the
 * LUs' shared state: LUN contents, reservations and registrations of other
 * nexuses, the APTPL file, mode pages, task set state after a reset. Only the
 * commands below are known to leave all of that unchanged; any other command
 * that was not refused before it executed marks the target dirty, and the
 * harness rebuilds it before the next input. Resets (LU, target, I_T nexus,
 * task management) need no rebuild: they take a target back to its defaults
 * (SPC-2 reservations released, mode pages and the stopped state reset, unit
 * attentions for the nexuses there are — this input's), so a clean target
 * stays clean; a command they abort never answered and so stays dirty. So every input still starts on a target that is, as far as
 * any command can tell, fresh: a reproducer replays alone. */
#ifndef FUZZ_REUSE_H
#define FUZZ_REUSE_H

#include <stdbool.h>
#include <stdint.h>

/* Commands that read or report and change no LU state. */
static bool fuzz_cdb_is_pure(const uint8_t *cdb)
{
	switch (cdb[0]) {
	case 0x00:              /* TEST UNIT READY */
	case 0x03:              /* REQUEST SENSE (consumes this nexus's UAs only) */
	case 0x08: case 0x28: case 0xa8: case 0x88:     /* READ 6/10/12/16 */
	case 0x12:              /* INQUIRY */
	case 0x1a: case 0x5a:   /* MODE SENSE 6/10 */
	case 0x25:              /* READ CAPACITY (10) */
	case 0x2f: case 0xaf: case 0x8f:                /* VERIFY 10/12/16 */
	case 0x35: case 0x91:   /* SYNCHRONIZE CACHE 10/16 (RAM: nothing to do) */
	case 0x5e:              /* PERSISTENT RESERVE IN */
	case 0x9e:              /* SERVICE ACTION IN (16): capacity, LBA status */
	case 0xa0:              /* REPORT LUNS */
	case 0xa3:              /* MAINTENANCE IN: report TPGs, opcodes, TMFs */
		return true;
	default:
		return false;
	}
}

/* A command refused before it did anything (SPC-4: an invalid parameter in
 * the CDB terminates the command without altering the medium; a pending
 * unit attention or a reservation conflict is reported instead of executing
 * it): RESERVATION CONFLICT, or CHECK CONDITION with UNIT ATTENTION, or
 * ILLEGAL REQUEST for the CDB itself (invalid opcode, LBA out of range,
 * invalid field in CDB, LU not supported). Errors in a parameter list do not
 * count: the command may have acted on part of it. Fixed or descriptor
 * format sense. */
static bool fuzz_refused_unexecuted(uint8_t status, const uint8_t *sense, unsigned len)
{
	uint8_t key, asc;

	if (status == 0x18)
		return true;
	if (status != 0x02)
		return false;
	if (len >= 14 && (sense[0] & 0x7e) == 0x70) {
		key = sense[2] & 0x0f;
		asc = sense[12];
	} else if (len >= 4 && (sense[0] & 0x7e) == 0x72) {
		key = sense[1] & 0x0f;
		asc = sense[2];
	} else {
		return false;
	}
	if (key == 0x06)
		return true;
	return key == 0x05 && (asc == 0x20 || asc == 0x21 || asc == 0x24 || asc == 0x25);
}

#endif
