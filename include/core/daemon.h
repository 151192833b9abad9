/* daemon.h — what a system service needs: detaching from the terminal, a
 * locked pid file, and the systemd readiness protocol (sd_notify) without
 * linking libsystemd.
 *
 * Start-up order (lichd):
 *   daemon_pidfile_lock(path)   before detaching, so "already running" is
 *                               reported on the terminal; the lock (flock) is
 *                               inherited by the daemon and held until exit
 *   daemon_detach()             before any thread exists: double fork, setsid,
 *                               chdir /, stdin/stdout to /dev/null. The caller
 *                               switches its logging to syslog (lichd: before
 *                               its reactor threads start). The original
 *                               process stays in daemon_detach() waiting for
 *                               daemon_started(), and exits with its status,
 *                               so a shell or an init script sees whether the
 *                               start worked. stderr stays on the terminal
 *                               until then, so start-up errors are seen.
 *   daemon_started(0)           once the portals listen: writes the pid file,
 *                               releases the waiting parent, stderr to
 *                               /dev/null. With a non-zero status: start-up
 *                               failed, the parent exits with that status.
 *   daemon_pidfile_remove()     at exit.
 * Without daemon_detach() the same calls work in the foreground (systemd's
 * Type=notify runs lichd that way).
 *
 * daemon_notify() sends one sd_notify datagram ("READY=1\nSTATUS=...") to
 * $NOTIFY_SOCKET (a path, or an abstract name written "@name"); it does
 * nothing when the variable is unset. Safe from any thread (one socket per
 * call: it is called a handful of times in a run).
 */
#ifndef LICH_CORE_DAEMON_H
#define LICH_CORE_DAEMON_H

#include <sys/types.h>

/* Opens (creating, 0644) and locks path. -EAGAIN if another process holds the
 * lock (*holder = the pid it wrote, or 0 if unreadable), other -errno on
 * failure. The path is remembered (made absolute) for the calls below. */
int daemon_pidfile_lock(const char *path, pid_t *holder);
/* Truncates the locked pid file and writes getpid(). No-op without a pid file. */
int daemon_pidfile_write(void);
/* Unlinks and closes the pid file (which releases the lock). */
void daemon_pidfile_remove(void);

/* Returns 0 in the daemon, -errno if it could not fork; never returns in the
 * original process. */
int daemon_detach(void);
/* Writes the pid file (status 0) and, if detached, reports status to the
 * waiting parent (0 = started, else its exit code) and points stderr at
 * /dev/null. Only the first call does anything. */
void daemon_started(int status);

/* printf-like sd_notify message. 0 if sent or $NOTIFY_SOCKET is unset, else
 * -errno (the caller may ignore it: readiness is advisory for us). */
int daemon_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
