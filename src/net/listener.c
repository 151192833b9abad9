/* listener.c — listening sockets on every configured portal.
 *
 * Sockets are created and bound before the reactors run (so a busy port is
 * reported at startup), then polled by reactor 0. Each accepted connection is
 * handed round robin to a reactor, where it stays for life. Out of file
 * descriptors, accepting pauses for a moment instead of spinning on a
 * readable listen socket it cannot serve.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/log.h"
#include "core/reactor.h"
#include "net/transport.h"

#define ACCEPT_BURST   64
#define BACKLOG        1024
#define PAUSE_US       100000   /* after EMFILE and friends */

struct tcp_listener {
	struct reactor_event ev;
	struct tcp_portals *ps;
	int fd;
	char name[XPORT_ADDR_MAX + 16];
};

struct tcp_portals {
	unsigned n;
	struct tcp_listener *l;
	struct reactor *r;           /* reactor 0, once started */
	unsigned next;               /* round robin */
	bool paused;
	uint64_t last_warn_us;
};

static int open_one(const struct conf_portal *cp, struct tcp_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd, err;

	if (conf_portal_sockaddr(cp, &ss, &sl))
		return -EINVAL;
	conf_portal_text(cp, l->name, sizeof(l->name));
	fd = socket(cp->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A v6 portal serves v6 only: "0.0.0.0" and "::" can both be listed. */
	if (cp->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, BACKLOG)) {
		err = -errno;
		close(fd);
		return err;
	}
	l->fd = fd;
	return 0;
}

int tcp_portals_open(const struct conf_portal *portals, unsigned n, struct tcp_portals **out)
{
	struct tcp_portals *ps = calloc(1, sizeof(*ps));
	int rc;

	if (!ps || !(ps->l = calloc(n ? n : 1, sizeof(*ps->l)))) {
		free(ps);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		ps->l[i].fd = -1;
		ps->l[i].ps = ps;
		rc = open_one(&portals[i], &ps->l[i]);
		if (rc) {
			log_err("portal %s:%u: cannot listen: %s", portals[i].host, portals[i].port,
				strerror(-rc));
			ps->n = i;
			tcp_portals_close(ps);
			return rc;
		}
		log_info("listening on %s", ps->l[i].name);
	}
	ps->n = n;
	*out = ps;
	return 0;
}

static void adopt_msg(void *a, void *b)
{
	int fd = (int)(intptr_t)a;
	struct reactor *r = reactor_self();

	(void)b;
	if (!r || reactors_stopping()) {
		close(fd);
		return;
	}
	tcp_conn_adopt(r, fd);
}

static void set_paused(struct tcp_portals *ps, bool paused)
{
	for (unsigned i = 0; i < ps->n; i++)
		if (ps->l[i].fd >= 0)
			reactor_event_mod(ps->r, &ps->l[i].ev, paused ? 0 : EPOLLIN);
	ps->paused = paused;
}

static void resume_timer(void *arg)
{
	struct tcp_portals *ps = arg;

	if (!reactors_stopping())
		set_paused(ps, false);
}

static void on_accept(void *arg, uint32_t events)
{
	struct tcp_listener *l = arg;
	struct tcp_portals *ps = l->ps;

	(void)events;
	for (int i = 0; i < ACCEPT_BURST && !ps->paused; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		unsigned to;

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			/* EMFILE/ENFILE/ENOBUFS/ENOMEM: back off, don't spin. */
			if (reactor_now_us(ps->r) - ps->last_warn_us > 10000000u) {
				log_warn("portal %s: accept: %s (pausing)", l->name, strerror(errno));
				ps->last_warn_us = reactor_now_us(ps->r);
			}
			set_paused(ps, true);
			if (!reactor_timer_add(ps->r, PAUSE_US, 0, resume_timer, ps))
				set_paused(ps, false);
			return;
		}
		to = ps->next++ % reactor_count();
		if (to == reactor_id(ps->r)) {
			tcp_conn_adopt(ps->r, fd);
		} else if (reactor_send(to, adopt_msg, (void *)(intptr_t)fd, NULL)) {
			close(fd);
		}
	}
}

static bool stop_hook(void *arg)
{
	struct tcp_portals *ps = arg;

	for (unsigned i = 0; i < ps->n; i++) {
		if (ps->l[i].fd < 0)
			continue;
		reactor_event_del(ps->r, &ps->l[i].ev);
		close(ps->l[i].fd);
		ps->l[i].fd = -1;
	}
	return true;
}

int tcp_portals_start(struct tcp_portals *ps)
{
	struct reactor *r = reactor_self();
	int rc;

	if (!r)
		return -EPERM;
	ps->r = r;
	for (unsigned i = 0; i < ps->n; i++) {
		ps->l[i].ev = (struct reactor_event){ ps->l[i].fd, on_accept, &ps->l[i] };
		rc = reactor_event_add(r, &ps->l[i].ev, EPOLLIN);
		if (rc)
			return rc;
	}
	return reactor_stop_hook_add(r, stop_hook, ps);
}

void tcp_portals_close(struct tcp_portals *ps)
{
	if (!ps)
		return;
	for (unsigned i = 0; i < ps->n; i++)
		if (ps->l[i].fd >= 0)
			close(ps->l[i].fd);
	free(ps->l);
	free(ps);
}
