/* daemon.c — detaching, pid file, sd_notify; see include/core/daemon.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/daemon.h"

static struct {
	int pid_fd;              /* locked pid file, or -1 */
	char pid_path[PATH_MAX];
	int report_fd;           /* pipe to the waiting parent, or -1 */
	bool started;
} dm = { .pid_fd = -1, .report_fd = -1 };

/* ---- pid file ---- */

static pid_t pidfile_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long v;
	char *end;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	return v > 0 && v <= INT_MAX && (*end == '\n' || *end == '\0') ? (pid_t)v : 0;
}

int daemon_pidfile_lock(const char *path, pid_t *holder)
{
	int fd, rc;

	*holder = 0;
	if (path[0] == '/') {
		rc = snprintf(dm.pid_path, sizeof(dm.pid_path), "%s", path);
	} else {
		char cwd[PATH_MAX];

		/* Made absolute now: the daemon runs in / */
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		rc = snprintf(dm.pid_path, sizeof(dm.pid_path), "%s/%s", cwd, path);
	}
	if (rc < 0 || (size_t)rc >= sizeof(dm.pid_path))
		return -ENAMETOOLONG;
	fd = open(dm.pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	/* flock, not fcntl: the lock belongs to the open file, so the daemon
	 * keeps it after the processes that forked it have exited. */
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		rc = -errno;
		if (rc == -EWOULDBLOCK)
			*holder = pidfile_holder(fd);
		close(fd);
		return rc == -EWOULDBLOCK ? -EAGAIN : rc;
	}
	dm.pid_fd = fd;
	return 0;
}

int daemon_pidfile_write(void)
{
	char buf[32];
	int n;

	if (dm.pid_fd < 0)
		return 0;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(dm.pid_fd, 0) || pwrite(dm.pid_fd, buf, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

void daemon_pidfile_remove(void)
{
	if (dm.pid_fd < 0)
		return;
	/* Unlink while still holding the lock: a new instance that opens the
	 * path from here on creates a fresh file. */
	unlink(dm.pid_path);
	close(dm.pid_fd);
	dm.pid_fd = -1;
}

/* ---- detaching ---- */

/* The original process: waits for the daemon's one status byte. EOF without
 * it means the daemon died during start-up. */
static void wait_for_daemon(int rfd, pid_t child)
{
	unsigned char status = 1;
	ssize_t n;

	do
		n = read(rfd, &status, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		fprintf(stderr, "lichd: the daemon exited during start-up\n");
		status = 1;
	} else if (status) {
		fprintf(stderr, "lichd: start-up failed (details above and in syslog)\n");
	}
	waitpid(child, NULL, 0);     /* the middle process, gone already */
	_exit(status);
}

static int null_stdio(int fd_min, int fd_max)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (int i = fd_min; i <= fd_max; i++)
		if (dup2(fd, i) < 0)
			return -errno;
	if (fd > fd_max)
		close(fd);
	return 0;
}

int daemon_detach(void)
{
	int p[2], rc;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(p[0]);
		close(p[1]);
		return rc;
	}
	if (pid > 0) {
		close(p[1]);
		wait_for_daemon(p[0], pid);
	}
	close(p[0]);
	/* New session: no controlling terminal. The second fork makes sure the
	 * daemon, not being a session leader, can never acquire one. */
	if (setsid() < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);
	dm.report_fd = p[1];
	umask(022);
	if (chdir("/"))
		return -errno;
	return null_stdio(STDIN_FILENO, STDOUT_FILENO);
}

void daemon_started(int status)
{
	unsigned char b = (unsigned char)(status > 255 || status < 0 ? 1 : status);

	if (dm.started)
		return;
	dm.started = true;
	if (status == 0) {
		int rc = daemon_pidfile_write();

		if (rc)
			fprintf(stderr, "lichd: cannot write the pid file %s: %s\n",
				dm.pid_path, strerror(-rc));
	}
	if (dm.report_fd < 0)
		return;
	/* stderr first: once the parent returned, the daemon is fully detached. */
	fflush(stderr);
	null_stdio(STDERR_FILENO, STDERR_FILENO);
	if (write(dm.report_fd, &b, 1) != 1) {
		/* The parent is gone (killed): nobody to tell. */
	}
	close(dm.report_fd);
	dm.report_fd = -1;
}

/* ---- sd_notify ---- */

int daemon_notify(const char *fmt, ...)
{
	const char *env = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t salen;
	char msg[512];
	va_list ap;
	size_t len;
	int fd, n, rc = 0;

	if (!env || !*env)
		return 0;
	len = strlen(env);
	if ((env[0] != '/' && env[0] != '@') || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, env, len);
	if (env[0] == '@')
		sa.sun_path[0] = '\0';     /* Linux abstract namespace */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
			    (env[0] == '/' ? 1 : 0));

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -EMSGSIZE;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) != n)
		rc = -errno;
	close(fd);
	return rc;
}
