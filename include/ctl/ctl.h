/* ctl.h — lichd's control socket (lichctl) and Prometheus endpoint.
 *
 * No thread of its own: the listening sockets and the clients' sockets are
 * in reactor 0's epoll set. A request that needs what other reactors own
 * (their sessions, their memory pools) sends each reactor a message; each
 * fills its part of a reply on its own thread and sends it back to reactor 0,
 * which answers once every part is in. Per-LU counters are read directly
 * (ctl/stats.h: single writer per block, relaxed loads).
 *
 * Configuration changes (target/lun/acl add and del) edit a copy of the
 * running config model (conf_edit_*), validate it (conf_dup) and hand it to
 * lichd's apply hook, the same code path as a SIGHUP reload. They are not
 * written to targets.conf until "save"; a SIGHUP reload before that reads the
 * file and so drops them.
 *
 * Setup (lichd): ctl_open() before the reactors run (binds the socket: fails
 * if another lichd answers on it, removes a stale one; creates its directory
 * 0700, the socket 0600; binds the metrics address if configured);
 * ctl_start() on reactor 0 from its start function; ctl_close() after
 * reactors_run() returned (closes and unlinks the socket).
 */
#ifndef LICH_CTL_CTL_H
#define LICH_CTL_CTL_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct reactor;

struct ctl_ops {
	/* The running config (reactor 0). */
	const struct config *(*config)(void);
	/* Makes ncfg the running config the way a reload does (ownership of
	 * ncfg passes, also on failure). 0, or -errno with a message in err
	 * (some targets/LUNs could not be set up; the rest is applied). */
	int (*apply)(struct config *ncfg, char *err, size_t errlen);
	/* Same as SIGHUP: reload the file lichd was started with. */
	int (*reload)(char *err, size_t errlen);
	/* Can LUN lun of target in c be opened (as lichd --check does)? */
	int (*check_lun)(const struct config *c, const char *target, unsigned lun,
			 char *err, size_t errlen);
	/* Size in bytes of a running LU; 0 if unknown. */
	uint64_t (*lun_size)(const char *target, unsigned lun);
};

/* Main thread, before reactors_run. -EADDRINUSE: another lichd answers on
 * the socket; other -errno on socket errors (logged). */
int ctl_open(const struct config *c, const struct ctl_ops *ops);
/* On reactor 0. */
int ctl_start(struct reactor *r);
/* After reactors_run returned. */
void ctl_close(void);

#endif
