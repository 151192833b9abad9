/* pr_int.h — state shared by the reservation files: pr.c (life cycle,
 * conflicts, PERSISTENT RESERVE IN, RESERVE/RELEASE), pr_out.c (PERSISTENT
 * RESERVE OUT), pr_port.c (names, TransportIDs), pr_file.c (APTPL state
 * file). Internal to src/scsi/pr*.c; the contract is include/scsi/pr.h.
 */
#ifndef LICH_SCSI_PR_INT_H
#define LICH_SCSI_PR_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scsi/pr.h"

#define PR_MAX_REGS   256   /* beyond: INSUFFICIENT REGISTRATION RESOURCES */
#define PR_NAME_MAX   224   /* iSCSI name, 223 bytes + NUL (RFC 7143 §4.2.7.1) */
#define PR_PORT_STR   256   /* "name,i,0x" + 12 hex digits + NUL fits */
#define PR_ISID_MAX   0xffffffffffffull  /* the ISID is 48 bits */

/* Persistent reservation types (SPC-4 table 177). 0 doubles as "none". */
enum {
	PR_TYPE_NONE = 0x0,
	PR_TYPE_WE = 0x1,       /* Write Exclusive */
	PR_TYPE_EA = 0x3,       /* Exclusive Access */
	PR_TYPE_WE_RO = 0x5,    /* Write Exclusive - Registrants Only */
	PR_TYPE_EA_RO = 0x6,    /* Exclusive Access - Registrants Only */
	PR_TYPE_WE_AR = 0x7,    /* Write Exclusive - All Registrants */
	PR_TYPE_EA_AR = 0x8,    /* Exclusive Access - All Registrants */
};

/* An iSCSI initiator port ("name,i,0x<isid>"), or, without the ISID, every
 * port of one initiator device (TransportID format 00b). Names compare
 * case-insensitively, ISIDs as numbers, so spellings of one port match. */
struct pr_port {
	char name[PR_NAME_MAX];
	bool has_isid;
	uint64_t isid;
};

/* One registration: an I_T nexus (initiator port + relative target port, or
 * every target port when all_tg_pt) and its reservation key. */
struct pr_reg {
	uint64_t key;
	struct pr_port port;
	uint16_t rel_port_id;
	bool all_tg_pt;
	bool holder;        /* holds the reservation (types other than all registrants) */
};

/* Everything SPC-4 lets persist through power loss. The reservation is
 * type != PR_TYPE_NONE; its holder is the registration with holder set, or
 * every registration for the all registrants types. */
struct pr_state {
	unsigned nregs;
	uint8_t type;
	bool aptpl;
	struct pr_reg regs[PR_MAX_REGS];
};

static inline bool pr_type_valid(unsigned type)
{
	return type == PR_TYPE_WE || type == PR_TYPE_EA || type == PR_TYPE_WE_RO ||
	       type == PR_TYPE_EA_RO || type == PR_TYPE_WE_AR || type == PR_TYPE_EA_AR;
}

static inline bool pr_type_all_regs(unsigned type)
{
	return type == PR_TYPE_WE_AR || type == PR_TYPE_EA_AR;
}

static inline bool pr_type_regs_only(unsigned type)
{
	return type == PR_TYPE_WE_RO || type == PR_TYPE_EA_RO;
}

/* --- pr_port.c --- */

/* Parses "name" or "name,i,0x<1..12 hex digits>" (len bytes, no NUL needed).
 * -EINVAL if the name is empty, too long, or holds a control byte, a space
 * or a comma. */
int pr_port_parse(const char *s, size_t len, struct pr_port *out);
/* Canonical text: "name,i,0x%012llx" (lowercase) or the bare name. */
void pr_port_format(const struct pr_port *p, char out[PR_PORT_STR]);
/* Same port (a bare name equals only a bare name). */
bool pr_port_equal(const struct pr_port *a, const struct pr_port *b);
/* Designate at least one common initiator port (a bare name covers every
 * ISID of that name). */
bool pr_port_overlap(const struct pr_port *a, const struct pr_port *b);

/* iSCSI TransportIDs (SPC-4 §7.6.4.6): protocol identifier 5h, format 00b
 * (name) or 01b (name ",i,0x" ISID), NUL terminated, padded to 4 bytes.
 * pr_tid_parse reads one from buf[0..len): on success returns 0 and sets
 * *used to its size; -EINVAL with *bad = offset of the offending byte. */
#define PR_TID_MIN 24u    /* header 4 + the minimum ADDITIONAL LENGTH of 20 */
int pr_tid_parse(const uint8_t *buf, size_t len, struct pr_port *out,
		 size_t *used, size_t *bad);
/* Size of the TransportID pr_tid_write produces for p. */
size_t pr_tid_size(const struct pr_port *p);
/* Writes it to out (pr_tid_size(p) bytes). */
void pr_tid_write(const struct pr_port *p, uint8_t *out);

/* --- pr_file.c --- */

/* Writes st to path atomically (temp file, fsync, rename, fsync of the
 * directory). 0 or -errno. */
int pr_file_save(const char *path, const struct pr_state *st);
/* Removes the file (and a stale temp file) durably; absent is fine. */
int pr_file_remove(const char *path);
/* Loads path into st (st->aptpl is set: the file exists only while APTPL is
 * active). Returns 0, -ENOENT if there is no file, -EINVAL if it is corrupt,
 * other -errno on I/O errors. */
int pr_file_load(const char *path, struct pr_state *st);

/* --- pr.c: the LU's reservation object and helpers pr_out.c shares --- */

/* PERSISTENT RESERVE IN / OUT service actions. */
enum { PRI_READ_KEYS, PRI_READ_RESERVATION, PRI_REPORT_CAPABILITIES, PRI_READ_FULL_STATUS };
enum {
	PRO_REGISTER, PRO_RESERVE, PRO_RELEASE, PRO_CLEAR, PRO_PREEMPT,
	PRO_PREEMPT_AND_ABORT, PRO_REGISTER_AND_IGNORE, PRO_REGISTER_AND_MOVE,
};

/* Additional sense codes used by the reservation code. */
#define ASC_PARAM_LIST_LENGTH   0x1a  /* /00 PARAMETER LIST LENGTH ERROR */
#define ASC_INVALID_FIELD_CDB   0x24  /* /00 */
#define ASC_INVALID_FIELD_PARAM 0x26  /* /00; /04 INVALID RELEASE OF PERSISTENT RESERVATION */
#define ASCQ_INVALID_RELEASE    0x04
#define ASC_INTERNAL_FAILURE    0x44  /* /00 INTERNAL TARGET FAILURE */
#define ASC_INSUFFICIENT_RES    0x55  /* /04 INSUFFICIENT REGISTRATION RESOURCES */
#define ASCQ_INSUFFICIENT_REG   0x04
#define ASC_PR_CHANGED          0x2a
#define ASCQ_RES_PREEMPTED      0x03  /* RESERVATIONS PREEMPTED */
#define ASCQ_RES_RELEASED       0x04  /* RESERVATIONS RELEASED */
#define ASCQ_REGS_PREEMPTED     0x05  /* REGISTRATIONS PREEMPTED */

/* What pr_conflict needs, copied out of the state each time it changes while
 * any reservation exists; immutable once published. Reactors other than the
 * owner read it (pr->view), the owner never writes it again. */
struct pr_view {
	struct pr_view *retired_next;   /* kept until pr_destroy (no retire hook) */
	uint8_t type;
	bool spc2_held;
	struct pr_port spc2_port;
	uint16_t spc2_rel_port_id;
	unsigned nregs;
	struct pr_reg regs[];
};

/* Changed only on the LU's owner reactor (see pr.h); no lock. */
struct scsi_pr {
	_Atomic(struct pr_view *) view;   /* NULL: no reservation of any kind */
	pr_retire_fn retire;
	void *retire_ctx;
	struct pr_view *retired;          /* superseded views, without a hook */
	char *state_file;
	pr_ua_fn ua;
	void *ua_ctx;
	pr_abort_fn abort_fn;
	void *abort_ctx;
	uint32_t generation;
	struct {
		bool held;
		struct pr_port port;
		uint16_t rel_port_id;
	} spc2;
	struct pr_state st;
	struct pr_state *undo;      /* pre-command copy while persisting (state_file only) */
};

/* The I_T nexus a command came on, as the reservation code sees it. */
struct pr_itn {
	bool valid;                 /* the nexus initiator port name parsed */
	struct pr_port port;
	uint16_t rel_port_id;
};

static inline uint16_t pr_get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t pr_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t pr_get_be64(const uint8_t *p)
{
	return (uint64_t)pr_get_be32(p) << 32 | pr_get_be32(p + 4);
}
static inline void pr_put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void pr_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void pr_put_be64(uint8_t *p, uint64_t v)
{
	pr_put_be32(p, (uint32_t)(v >> 32));
	pr_put_be32(p + 4, (uint32_t)v);
}

struct scsi_nexus;
struct scsi_task;

void pr_itn_of(const struct scsi_nexus *n, struct pr_itn *out);
/* Publishes a new view for pr_conflict (or NULL when nothing is reserved);
 * call after changing the reservation or the registrations. */
void pr_update_flag(struct scsi_pr *pr);
/* The registration that applies to this I_T nexus, or NULL. */
struct pr_reg *pr_reg_find(struct scsi_pr *pr, const struct pr_itn *itn);
bool pr_reg_is_holder(const struct scsi_pr *pr, const struct pr_reg *r);

/* Task results. pr_set_check: CHECK CONDITION with fixed format sense and,
 * when fp is not PR_FP_NONE, a sense key specific field pointer (SPC-4
 * 4.5.2.4.2) naming the offending byte (and bit, if >= 0) of the CDB or of
 * the parameter list. */
enum pr_fp { PR_FP_NONE, PR_FP_CDB, PR_FP_PARAM };
void pr_set_good(struct scsi_task *t);
void pr_set_conflict(struct scsi_task *t);
void pr_set_check(struct scsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq,
		  enum pr_fp fp, unsigned byte, int bit);
void pr_set_invalid_cdb(struct scsi_task *t, unsigned byte, int bit);

#endif
