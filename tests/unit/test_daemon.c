/* test_daemon.c — core/daemon.c: the locked pid file and sd_notify
 * messages (path and abstract NOTIFY_SOCKET). Detaching is covered by
 * tests/integration/45-daemon.sh (it forks the real lichd). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/daemon.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/lich-test-daemon.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	ssize_t got;

	assert_true(fd >= 0);
	got = read(fd, buf, n - 1);
	assert_true(got >= 0);
	buf[got] = '\0';
	close(fd);
}

static void test_pidfile(void **state)
{
	char path[128], buf[64], want[32];
	pid_t holder = -1;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/lichd.pid", dir);
	assert_int_equal(daemon_pidfile_lock(path, &holder), 0);
	assert_int_equal(holder, 0);
	/* Locked until written and after: another open file cannot lock it. */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	close(fd);

	/* An old, longer content is truncated. */
	fd = open(path, O_WRONLY);
	assert_int_equal(write(fd, "1234567890123\n", 14), 14);
	close(fd);
	assert_int_equal(daemon_pidfile_write(), 0);
	read_file(path, buf, sizeof(buf));
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	assert_string_equal(buf, want);

	/* A second lichd: refused, told who holds it. */
	assert_int_equal(daemon_pidfile_lock(path, &holder), -EAGAIN);
	assert_int_equal(holder, getpid());

	daemon_pidfile_remove();
	assert_int_equal(access(path, F_OK), -1);
	daemon_pidfile_remove();                     /* twice is harmless */
	assert_int_equal(daemon_pidfile_write(), 0); /* no pid file: nothing */

	/* Free again. */
	assert_int_equal(daemon_pidfile_lock(path, &holder), 0);
	daemon_pidfile_remove();

	/* A relative path is made absolute (the daemon chdirs to /). */
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(daemon_pidfile_lock("rel.pid", &holder), 0);
	assert_int_equal(chdir("/"), 0);
	daemon_pidfile_remove();
	snprintf(path, sizeof(path), "%s/rel.pid", dir);
	assert_int_equal(access(path, F_OK), -1);

	snprintf(path, sizeof(path), "%s/no/such/dir/x.pid", dir);
	assert_int_equal(daemon_pidfile_lock(path, &holder), -ENOENT);
}

/* A datagram socket bound where NOTIFY_SOCKET will point. */
static int bind_notify(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memcpy(sa.sun_path, name, strlen(name));
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void expect_msg(int fd, const char *want)
{
	char buf[600];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_notify(void **state)
{
	char path[128], name[64], big[700];
	int fd;

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(daemon_notify("READY=1"), 0);   /* not under systemd */
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(daemon_notify("READY=1"), 0);

	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = bind_notify(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(daemon_notify("READY=1\nSTATUS=%s: %u targets", "serving", 3u), 0);
	expect_msg(fd, "READY=1\nSTATUS=serving: 3 targets");
	close(fd);

	snprintf(name, sizeof(name), "@lich-test-notify-%ld", (long)getpid());
	fd = bind_notify(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(daemon_notify("STOPPING=1"), 0);
	expect_msg(fd, "STOPPING=1");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(daemon_notify("STATUS=%s", big), -EMSGSIZE);
	close(fd);

	/* Nobody listening any more. */
	assert_int_equal(daemon_notify("READY=1"), -ECONNREFUSED);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(daemon_notify("READY=1"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pidfile),
		cmocka_unit_test(test_notify),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
