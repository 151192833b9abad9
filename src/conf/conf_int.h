/* conf_int.h — helpers shared by the conf parser (conf.c) and the value
 * parsers (conf_value.c). Not a public contract: include/conf/conf.h is.
 *
 * Every checker returns NULL when the input is fine, or a short reason
 * ("port out of range") the parser puts after "FILE:LINE: ".
 */
#ifndef LICH_CONF_INT_H
#define LICH_CONF_INT_H

#include <stdbool.h>
#include <stdint.h>
#include "conf/conf.h"

#define CONF_ISCSI_NAME_MAX 223     /* RFC 7143 4.2.7.1: at most 223 bytes */

/* iqn.YYYY-MM.reversed.domain[:suffix], eui.<16 hex>, naa.<16|32 hex>. */
const char *conf_check_iscsi_name(const char *s);
/* "ALL", ADDR, ADDR/PREFIX; IPv6 optionally in brackets. */
const char *conf_check_addr_pattern(const char *s);
/* conf_parse_portal with a reason. */
const char *conf_portal_parse(const char *s, struct conf_portal *out);
/* Decimal without sign, junk or overflow, at most `max`. */
const char *conf_parse_uint(const char *s, unsigned max, unsigned *out);
/* 0/1/yes/no/on/off/true/false, case-insensitive. */
const char *conf_parse_bool(const char *s, bool *out);

/* ---- parser state, shared by conf.c (files, lines, blocks),
 * conf_keys.c (keys) and conf_target.c (closing a target, LUN resolution) ---- */

#define CONF_LUN_MAX 16383          /* largest LUN of SAM flat space addressing (14 bits) */

/* Where something was written: file name (owned by the parser) and line. */
struct conf_where {
	const char *file;
	int line;                   /* 0: not set */
};

/* Per-LUN settings, one set per scope (global, target, <backing-store>);
 * at[k].line != 0 means "given at this scope". Innermost scope wins. */
enum conf_lun_key {
	LK_BS_TYPE, LK_SIZE, LK_BLOCK_SIZE, LK_WRITE_CACHE, LK_READONLY,
	LK_VENDOR_ID, LK_PRODUCT_ID, LK_PRODUCT_REV, LK_SCSI_SN, LK_SCSI_ID, LK_N
};

struct conf_lun_opts {
	struct conf_where at[LK_N];
	enum bs_type bs_type;
	uint64_t size;
	uint32_t block_size;
	bool write_cache;
	bool readonly;
	char vendor_id[9];
	char product_id[17];
	char product_rev[5];
	char scsi_sn[41];
	char scsi_id[41];
};

/* A backing-store/direct-store seen in the open target; LUN numbers and
 * inherited settings are resolved when the target closes. */
struct conf_pending_lun {
	char *path;
	bool direct;
	struct conf_where at;
	struct conf_lun_opts o;
	unsigned lun;
	struct conf_where lun_at;   /* line 0: no "lun" key, numbered automatically */
};

/* One file being read; `up` is the file that included it. */
struct conf_source {
	const char *name;
	char *real;                 /* realpath, for cycle detection; NULL for strings */
	char *dir;                  /* includes are relative to it; NULL = cwd */
	unsigned level;             /* 0 = the top file */
	unsigned entry_depth;       /* block depth when this file started */
	struct conf_source *up;
};

enum conf_depth { D_TOP = 0, D_TARGET = 1, D_LUN = 2 };

enum conf_once {                    /* global keys that may appear once */
	ONCE_NONE = 0, ONCE_CORES, ONCE_MEMORY_LIMIT, ONCE_POLL_MODE, ONCE_LOG_LEVEL,
	ONCE_STATE_DIR, ONCE_NOP_INTERVAL, ONCE_NOP_TIMEOUT, ONCE_DEFAULT_DRIVER,
	ONCE_DISCOVERY_OUT, ONCE_CONTROL_SOCKET, ONCE_METRICS, ONCE_SHUTDOWN_TIMEOUT,
	ONCE_URING_SQPOLL, ONCE_N
};

struct conf_parser {
	struct config *cfg;
	char *err;
	size_t errlen;
	struct conf_source *src;
	char **names;               /* every file name seen, freed at the end */
	unsigned nnames;
	struct conf_where *target_at;   /* where cfg->targets[i] was opened */
	struct conf_where once[ONCE_N];
	struct conf_lun_opts gopts;     /* global scope (bs-type only) */

	enum conf_depth depth;
	/* the open <target> */
	struct conf_target cur;
	struct conf_where cur_at;
	struct conf_lun_opts topts;
	unsigned tlun;
	struct conf_where tlun_at;
	struct conf_where outgoing_at;
	struct conf_pending_lun *pl;
	unsigned npl;
	/* the open <backing-store>/<direct-store> (always pl[npl - 1]) */
	const char *blk_kind;
};

/* "FILE:LINE: message" into p->err; returns -EINVAL. */
int conf_fail(struct conf_parser *p, const struct conf_where *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Records "out of memory" at `at`; returns -ENOMEM. */
int conf_oom(struct conf_parser *p, const struct conf_where *at);
/* Makes room for element n of a vector that grows 4, 8, 16...; -ENOMEM. */
int conf_grow(void *arrp, unsigned n, size_t elem_size);

/* conf_keys.c */
int conf_key(struct conf_parser *p, const char *key, char *raw, const struct conf_where *at);
/* conf_target.c */
int conf_lun_open(struct conf_parser *p, const char *kind, const char *path,
		  const struct conf_where *at);
int conf_target_finish(struct conf_parser *p);
void conf_target_clear(struct conf_target *t);
void conf_pending_clear(struct conf_parser *p);

/* conf.c */
/* Removes surrounding double quotes in place; NULL or a reason. */
const char *conf_unquote(char *s, char **out);
int conf_include(struct conf_parser *p, const char *pattern, const struct conf_where *at);

#endif
