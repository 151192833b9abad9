/* conf.h — targets.conf: tgt-admin's dialect plus lich's global keys.
 *
 * Contract: conf_load() parses a whole file (and the files it includes) into a
 * struct config, or fails with a message "FILE:LINE: what is wrong" and returns
 * -EINVAL (or -errno for I/O errors), leaving *out untouched. A config is plain
 * data, immutable once loaded; nothing here opens a backing store or a socket.
 * Validation done here: syntax, key names, value types and ranges, duplicate
 * target names, duplicate LUN numbers within a target, IQN/EUI/NAA name syntax,
 * portal syntax. Checks that need the system (does the file exist) are the
 * caller's.
 *
 * Dialect (tgt's targets.conf, so an admin's file loads unchanged):
 *   # comment
 *   include /etc/tgt/conf.d/[a-z]*.conf     (glob, relative to the including file)
 *   default-driver iscsi                    (accepted; only iscsi exists)
 *   <target iqn.2003-01.org.example:disk1>
 *       backing-store /var/lib/lich/disk1.img   (LUN 1, 2, ... in order)
 *       direct-store /dev/sdb                   (treated as backing-store)
 *       <backing-store /dev/sdc>                (nested: per-LUN keys)
 *           lun 5
 *           vendor_id ACME
 *       </backing-store>
 *       initiator-address 192.168.1.0/24        (repeatable; ALL = anyone)
 *       initiator-name iqn.1994-05.com.redhat:x (repeatable)
 *       incominguser NAME SECRET                (repeatable)
 *       outgoinguser NAME SECRET                (at most one)
 *       write-cache on|off, block-size 512|4096, vendor_id, product_id,
 *       product_rev, scsi_id, scsi_sn, readonly 0|1|on|off, bs-type, size,
 *       params / allow-in-use / controller_tid / MaxRecvDataSegmentLength ...
 *         (tgt keys that lich does not use are accepted with a warning)
 *   </target>
 * Target-level per-LUN keys apply to every LUN of the target unless a nested
 * block overrides them. Global lich keys (outside targets):
 *   portal ADDR:PORT        repeatable; [v6addr]:port for IPv6; default 0.0.0.0:3260
 *   iser-portal ADDR:PORT   repeatable; none by default
 *   cores 0-1,3             CPU list; default: one reactor on CPU 0
 *   memory-limit 1G         per reactor pool limit (K/M/G suffixes)
 *   poll-mode busy|adaptive|sleep   default adaptive
 *   uring-sqpoll on|off     io_uring SQPOLL (a kernel thread per reactor polls
 *                           its submission queue); default off; read at start
 *   bs-type ram|uring|nvme  default for LUNs: uring (tgt's rdwr/aio/mmap map to uring)
 *   log-level error|warn|info|debug
 *   state-dir DIR           where persistent reservations are kept; default /var/lib/lich
 *   nop-interval SECONDS    target NOP-In ping on idle connections; 0 = off (default 30)
 *   nop-timeout SECONDS     drop a connection whose ping is unanswered (default 30)
 *   shutdown-timeout SECONDS  at stop, how long sessions asked to log out get
 *                           before they are dropped; 0 = drop at once (default 5)
 *   incomingdiscoveryuser NAME SECRET / outgoingdiscoveryuser NAME SECRET
 *   control-socket PATH     lichctl's UNIX socket; default /run/lich/lichd.sock,
 *                           or $LICH_CONTROL_SOCKET when that is an absolute path
 *   metrics ADDR:PORT       Prometheus text over HTTP (GET /metrics); off when
 *                           absent; any address is accepted, a local one is advised
 * A LUN with bs-type ram takes "size" (e.g. size 64M) and ignores the path
 * ("backing-store ram:NAME" also selects ram).
 * LUN numbers: "lun N" (1..16383) inside a block, or at target level when the
 * target has one backing store; the others get the lowest free number from 1
 * up, backing-stores before direct-stores (tgt-admin's order). luns[] is
 * sorted by number. An explicit size must be a multiple of block-size.
 */
#ifndef LICH_CONF_CONF_H
#define LICH_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "core/reactor.h"
#include "core/log.h"

enum bs_type { BS_URING = 0, BS_RAM, BS_NVME };

struct conf_portal {
	char host[64];        /* numeric address, no brackets ("0.0.0.0", "::") */
	uint16_t port;
	int family;           /* AF_INET or AF_INET6 */
	int line;
};

struct conf_account {
	char *user;
	char *secret;
};

struct conf_lun {
	unsigned lun;              /* LUN number */
	char *path;                /* backing file/device; for ram: the name after "ram:"
	                            * (or the path given with bs-type ram), NULL if empty */
	enum bs_type bs_type;
	uint64_t size;             /* ram: bytes (required); others: 0 = whole file */
	uint32_t block_size;       /* 512 (default) or 4096 (also 1024, 2048) */
	bool write_cache;          /* default true */
	bool readonly;             /* default false */
	char vendor_id[9];         /* default "LICH" */
	char product_id[17];       /* default "VIRTUAL-DISK" */
	char product_rev[5];       /* default "0001" */
	char scsi_sn[41];          /* unit serial; default derived by the caller if empty */
	char scsi_id[41];          /* device identification string; default empty */
	int line;
};

struct conf_target {
	char *name;                /* IQN / EUI / NAA name */
	unsigned tid;              /* 1.. in file order */
	struct conf_lun *luns;
	unsigned nluns;
	char **initiator_addresses;   /* "ALL", "ADDR" or "ADDR/PREFIX" */
	unsigned n_initiator_addresses;
	char **initiator_names;
	unsigned n_initiator_names;
	struct conf_account *incoming;
	unsigned n_incoming;
	struct conf_account *outgoing;   /* NULL or one */
	int line;
};

struct config {
	char *path;
	struct conf_portal *portals;
	unsigned nportals;
	struct conf_portal *iser_portals;
	unsigned n_iser_portals;
	unsigned ncores;
	int cores[REACTOR_MAX];
	size_t memory_limit;         /* default 1 GiB */
	enum poll_mode poll_mode;    /* default POLL_ADAPTIVE */
	bool uring_sqpoll;           /* uring-sqpoll: SQPOLL rings (default off) */
	enum log_level log_level;    /* default info */
	bool log_level_set;
	char *state_dir;
	unsigned nop_interval;
	unsigned nop_timeout;
	unsigned shutdown_timeout;   /* seconds sessions get to log out at stop (5) */
	struct conf_account *discovery_incoming;
	unsigned n_discovery_incoming;
	struct conf_account *discovery_outgoing;
	struct conf_target *targets;
	unsigned ntargets;
	char *control_socket;        /* default /run/lich/lichd.sock ($LICH_CONTROL_SOCKET) */
	bool has_metrics;            /* "metrics" given */
	struct conf_portal metrics;
};

/* err receives "FILE:LINE: message" (or "FILE: message"). */
int conf_load(const char *path, struct config **out, char *err, size_t errlen);
/* Same on a string; `name` stands for the file name in messages; include is
 * resolved relative to the current directory. */
int conf_parse_string(const char *text, const char *name, struct config **out,
		      char *err, size_t errlen);
void conf_free(struct config *c);
const struct conf_target *conf_find_target(const struct config *c, const char *name);
/* Size with K/M/G/T suffix (powers of 1024); -EINVAL on junk or overflow. */
int conf_parse_size(const char *s, uint64_t *out);
/* "0-3,5" → cores[]; -EINVAL on junk, -E2BIG on more than max. */
int conf_parse_cpulist(const char *s, int *cores, unsigned max, unsigned *n);
/* "1.2.3.4:3260", "[::1]:3260", "0.0.0.0" (port 3260), "[::]" */
int conf_parse_portal(const char *s, struct conf_portal *out);
/* The socket address of a portal (for bind/rdma_bind_addr); -EINVAL when its
 * host is not a numeric address of its family. */
int conf_portal_sockaddr(const struct conf_portal *p, struct sockaddr_storage *ss,
			 socklen_t *len);
/* "host:port", or "[host]:port" for IPv6, as logs and lichctl print it. */
void conf_portal_text(const struct conf_portal *p, char *out, size_t n);
/* True if `addr` (numeric, v4 or v6; v4-mapped v6 counts as v4) matches an
 * initiator-address pattern ("ALL", exact address, or address/prefix). */
bool conf_addr_match(const char *pattern, const char *addr);
/* Access check: names and addresses each empty = anyone; otherwise the
 * initiator must match a listed name (if any listed) and a listed address
 * (if any listed). */
bool conf_target_allows(const struct conf_target *t, const char *initiator_name,
			const char *initiator_addr);

/* ---- writing and editing (conf_write.c, conf_edit.c; for lichctl) ----
 * conf_format() writes c as targets.conf text (malloc'd) that conf_parse_string
 * reads back to an equal config: global keys, then each target with every LUN
 * as a <backing-store> block with all its keys spelled out. Includes come out
 * flattened and comments are lost. -EINVAL if a value cannot be written (a
 * '"' inside a value that needs quotes), -ENOMEM.
 * conf_dup() is format + parse: a deep copy that is also fully validated, so
 * the edits below (which only check what they need to find their place) are
 * followed by a conf_dup() before the result is used. Edits return -ENOENT
 * (no such target / LUN / ACL entry), -EEXIST, -EINVAL or -ENOMEM. */
int conf_format(const struct config *c, char **out);
int conf_dup(const struct config *c, struct config **out, char *err, size_t errlen);
int conf_edit_target_add(struct config *c, const char *name);
int conf_edit_target_del(struct config *c, const char *name);
/* l is copied (path strdup'ed); l->line is ignored. */
int conf_edit_lun_add(struct config *c, const char *target, const struct conf_lun *l);
int conf_edit_lun_del(struct config *c, const char *target, unsigned lun);
/* who: an initiator name (iqn./eui./naa.) → initiator-name, else an
 * initiator-address pattern (ADDR, ADDR/PREFIX, ALL). */
int conf_edit_acl(struct config *c, const char *target, const char *who, bool add);
/* The LUN defaults conf_load gives a LUN without keys (vendor LICH, ...). */
void conf_lun_defaults(struct conf_lun *l);

#endif
