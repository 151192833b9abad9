/* ctl.c — the control socket and the metrics socket on reactor 0: accepting,
 * reading one request per connection, gathering what other reactors own by
 * messages, writing the answer. See ctl/ctl.h; the verbs are in verbs.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/log.h"
#include "ctl_int.h"

#define CLIENTS_MAX   64
#define HTTP_REQ_MAX  8192
#define READ_TIMEOUT_US (10 * 1000000ull)   /* a request must arrive by then */

const struct ctl_ops *ctl_hooks;

static struct {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;                        /* control socket, -1 if none */
	int http_fd;                   /* metrics, -1 if off */
	struct reactor_event ev, http_ev;
	struct reactor *r;
	bool stopping;
	struct ctl_client *clients;
	unsigned nclients;
	unsigned gathers_out;
} s = { .fd = -1, .http_fd = -1 };

/* ---- sockets ---- */

static int make_dir(const char *path)
{
	char dir[sizeof(s.path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	/* missing parents 0755 (like mkdir -p), the socket's own directory 0700 */
	for (char *p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

/* 1: another process accepts on path; 0: nothing (or a stale socket, now
 * removed); -errno: something else is in the way. */
static int check_existing(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	if (rc == 0)
		return 1;
	if (errno != ECONNREFUSED && errno != ENOENT)
		return -errno;
	log_info("ctl: removing stale control socket %s", path);
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return 0;
}

static int open_control(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, rc;
	mode_t old;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	rc = make_dir(path);
	if (rc) {
		log_err("ctl: cannot create the directory of %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = check_existing(path);
	if (rc == 1) {
		log_err("ctl: another lichd answers on %s; not starting", path);
		return -EADDRINUSE;
	}
	if (rc) {
		log_err("ctl: %s: %s", path, rc == -EEXIST ? "exists and is not a socket" :
			strerror(-rc));
		return rc;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	/* the socket file is made 0600 by bind itself: no window where it is open */
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (rc || listen(fd, 16)) {
		rc = -errno;
		log_err("ctl: cannot listen on %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	snprintf(s.path, sizeof(s.path), "%s", path);
	s.fd = fd;
	return 0;
}

static int open_metrics(const struct conf_portal *p)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, rc;

	if (conf_portal_sockaddr(p, &ss, &len)) {
		log_err("ctl: metrics address %s is not a numeric address", p->host);
		return -EINVAL;
	}
	fd = socket(p->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (p->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 16)) {
		rc = -errno;
		log_err("ctl: cannot listen for metrics on %s port %u: %s", p->host, p->port,
			strerror(-rc));
		close(fd);
		return rc;
	}
	s.http_fd = fd;
	return 0;
}

int ctl_open(const struct config *c, const struct ctl_ops *ops)
{
	int rc;

	ctl_hooks = ops;
	if (c->control_socket) {
		rc = open_control(c->control_socket);
		if (rc)
			return rc;
	}
	if (c->has_metrics) {
		rc = open_metrics(&c->metrics);
		if (rc) {
			ctl_close();
			return rc;
		}
		if (strcmp(c->metrics.host, "127.0.0.1") && strcmp(c->metrics.host, "::1"))
			log_warn("ctl: metrics served on %s port %u without authentication; a "
				 "local address is advised", c->metrics.host, c->metrics.port);
	}
	return 0;
}

void ctl_close(void)
{
	if (s.fd >= 0) {
		close(s.fd);
		unlink(s.path);
		s.fd = -1;
	}
	if (s.http_fd >= 0) {
		close(s.http_fd);
		s.http_fd = -1;
	}
	/* clients left at exit (reactors are gone): just free them */
	while (s.clients) {
		struct ctl_client *cl = s.clients;
		s.clients = cl->next;
		close(cl->fd);
		ctl_req_free(&cl->req);
		ctl_buf_free(&cl->out);
		free(cl->in);
		free(cl);
	}
	s.nclients = 0;
}

/* ---- clients ---- */

static void client_free_deferred(void *a, void *b)
{
	struct ctl_client *cl = a;

	(void)b;
	ctl_req_free(&cl->req);
	ctl_buf_free(&cl->out);
	free(cl->in);
	free(cl);
}

static void client_close(struct ctl_client *cl)
{
	if (cl->timer)
		reactor_timer_cancel(s.r, cl->timer);
	cl->timer = NULL;
	reactor_event_del(s.r, &cl->ev);
	close(cl->fd);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		s.clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	s.nclients--;
	if (reactor_defer(client_free_deferred, cl, NULL))
		log_warn("ctl: leaking a client (no memory to defer its free)");
}

/* Writes what is left of cl->out; closes when all is written. */
static void client_flush(struct ctl_client *cl)
{
	while (cl->out_off < cl->out.len) {
		ssize_t n = send(cl->fd, cl->out.s + cl->out_off, cl->out.len - cl->out_off,
				 MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* the socket left the epoll set once the request was read */
			if (reactor_event_mod(s.r, &cl->ev, EPOLLOUT) &&
			    reactor_event_add(s.r, &cl->ev, EPOLLOUT))
				break;
			return;
		}
		if (n <= 0)
			break;
		cl->out_off += (size_t)n;
	}
	client_close(cl);
}

static void reply(struct ctl_client *cl, const char *status, const struct ctl_buf *body)
{
	cl->out.len = 0;
	if (cl->http) {
		ctl_buf_printf(&cl->out, "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
			       "Content-Length: %zu\r\nConnection: close\r\n\r\n", status,
			       strncmp(status, "200", 3) == 0 ?
			       "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
			       body ? body->len : 0);
	} else {
		ctl_buf_printf(&cl->out, "%s\n", status);
	}
	if (body && body->len)
		ctl_buf_put(&cl->out, body->s, body->len);
	if (cl->out.oom) {
		ctl_buf_free(&cl->out);
		ctl_buf_printf(&cl->out, cl->http ? "HTTP/1.0 500 Out of memory\r\n\r\n" :
			       "error: out of memory\n");
	}
	cl->out_off = 0;
	client_flush(cl);
}

void ctl_reply_ok(struct ctl_client *cl, const struct ctl_buf *body)
{
	if (body && body->oom) {
		ctl_reply_err(cl, "out of memory");
		return;
	}
	reply(cl, cl->http ? "200 OK" : "ok", body);
}

void ctl_reply_err(struct ctl_client *cl, const char *fmt, ...)
{
	char msg[600], line[640];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (cl->http) {
		struct ctl_buf b = { 0 };
		ctl_buf_printf(&b, "%s\n", msg);
		reply(cl, msg, &b);   /* msg starts with the HTTP status */
		ctl_buf_free(&b);
		return;
	}
	snprintf(line, sizeof(line), "error: %s", msg);
	reply(cl, line, NULL);
}

static void metrics_cont(struct ctl_client *cl, struct ctl_gather *g)
{
	struct ctl_buf b = { 0 };

	ctl_metrics_render(g, &b);
	ctl_reply_ok(cl, &b);
	ctl_buf_free(&b);
}

static void http_request(struct ctl_client *cl)
{
	char method[16], target[256];

	if (sscanf(cl->in, "%15s %255s", method, target) != 2) {
		ctl_reply_err(cl, "400 Bad Request");
		return;
	}
	if (strcmp(method, "GET") != 0) {
		ctl_reply_err(cl, "405 Method Not Allowed");
		return;
	}
	if (strcmp(target, "/metrics") != 0 && strncmp(target, "/metrics?", 9) != 0) {
		ctl_reply_err(cl, "404 Not Found");
		return;
	}
	ctl_gather(cl, metrics_cont);
}

static void ctl_request(struct ctl_client *cl)
{
	char err[200];
	int rc = ctl_req_parse(cl->in, cl->inlen, &cl->req, err, sizeof(err));

	if (rc == -ENOMEM)
		ctl_reply_err(cl, "out of memory");
	else if (rc)
		ctl_reply_err(cl, "bad request: %s", err);
	else
		ctl_dispatch(cl);
}

static void client_readable(struct ctl_client *cl)
{
	size_t cap = cl->http ? HTTP_REQ_MAX : CTL_REQ_MAX;

	for (;;) {
		if (cl->inlen == cap) {
			ctl_reply_err(cl, cl->http ? "431 Request Header Fields Too Large" :
				      "request longer than %d bytes", CTL_REQ_MAX);
			return;
		}
		ssize_t n = recv(cl->fd, cl->in + cl->inlen, cap - cl->inlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			client_close(cl);
			return;
		}
		bool eof = n == 0;
		cl->inlen += (size_t)n;
		cl->in[cl->inlen] = '\0';
		if (cl->http) {
			if (strstr(cl->in, "\r\n\r\n") || strstr(cl->in, "\n\n") || eof)
				break;
		} else {
			char *nl = memchr(cl->in, '\n', cl->inlen);
			if (nl) {
				cl->inlen = (size_t)(nl - cl->in);
				cl->in[cl->inlen] = '\0';
				break;
			}
			if (eof)
				break;
		}
		if (eof)
			break;
	}
	if (cl->inlen == 0 && !cl->http) {
		client_close(cl);   /* connected and went away (e.g. a liveness probe) */
		return;
	}
	cl->done_reading = true;
	if (cl->timer)
		reactor_timer_cancel(s.r, cl->timer);
	cl->timer = NULL;
	/* Out of the epoll set while the answer is prepared (a hang-up would
	 * otherwise be reported every turn); back in only if a write blocks. */
	reactor_event_del(s.r, &cl->ev);
	if (cl->http)
		http_request(cl);
	else
		ctl_request(cl);
}

static void client_event(void *arg, uint32_t events)
{
	struct ctl_client *cl = arg;

	if (!cl->done_reading) {
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			client_readable(cl);
		return;
	}
	if (!cl->waiting && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
		client_flush(cl);
}

/* A client that connected and sent no whole request in time. */
static void client_timeout(void *arg)
{
	struct ctl_client *cl = arg;

	cl->timer = NULL;   /* a fired one-shot timer is freed by the reactor */
	if (!cl->done_reading)
		client_close(cl);
}

static void accept_one(int lfd, bool http)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				log_warn("ctl: accept: %s", strerror(errno));
			return;
		}
		if (s.stopping || s.nclients >= CLIENTS_MAX) {
			static const char busy[] = "error: lichd is busy or stopping\n";
			if (!http && send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL) < 0)
				(void)0;
			close(fd);
			continue;
		}
		struct ctl_client *cl = calloc(1, sizeof(*cl));
		if (cl)
			cl->in = malloc((http ? HTTP_REQ_MAX : CTL_REQ_MAX) + 1);
		if (!cl || !cl->in) {
			if (cl)
				free(cl);
			close(fd);
			continue;
		}
		cl->fd = fd;
		cl->http = http;
		cl->ev = (struct reactor_event){ .fd = fd, .fn = client_event, .arg = cl };
		if (reactor_event_add(s.r, &cl->ev, EPOLLIN)) {
			close(fd);
			free(cl->in);
			free(cl);
			continue;
		}
		cl->timer = reactor_timer_add(s.r, READ_TIMEOUT_US, 0, client_timeout, cl);
		cl->next = s.clients;
		if (s.clients)
			s.clients->prev = cl;
		s.clients = cl;
		s.nclients++;
	}
}

static void control_event(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
	accept_one(s.fd, false);
}

static void http_event(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
	accept_one(s.http_fd, true);
}

/* ---- gathering from every reactor ---- */

void ctl_gather_free(struct ctl_gather *g)
{
	for (unsigned i = 0; i < g->n; i++) {
		free(g->part[i].sess);
		free(g->part[i].caches);
	}
	free(g);
}

static void gather_reply(void *a, void *b)
{
	struct ctl_gather *g = a;
	unsigned i = (unsigned)(uintptr_t)b;

	if (i < g->n)
		g->part[i].replied = true;
	if (--g->pending)
		return;
	s.gathers_out--;
	g->cl->waiting = false;
	g->cont(g->cl, g);
	ctl_gather_free(g);
}

/* On reactor i: its part. Allocations here are malloc: this is the control
 * path, and the part is freed on reactor 0. */
static void gather_part(void *a, void *b)
{
	struct ctl_gather *g = a;
	unsigned i = (unsigned)(uintptr_t)b;
	struct ctl_part *p = &g->part[i];
	struct reactor *r = reactor_self();
	struct mem_pool *pool = r ? reactor_pool(r) : NULL;
	unsigned n = iscsi_sessions_here(NULL, 0);

	if (n && (p->sess = calloc(n, sizeof(*p->sess)))) {
		unsigned got = iscsi_sessions_here(p->sess, n);
		p->nsess = got < n ? got : n;
	}
	if (pool) {
		struct slab_cache *c;
		unsigned k = 0;

		mem_pool_get_stats(pool, &p->pool);
		p->have_pool = true;
		for (c = slab_cache_next(pool, NULL); c; c = slab_cache_next(pool, c))
			k++;
		if (k && (p->caches = calloc(k, sizeof(*p->caches)))) {
			unsigned j = 0;
			for (c = slab_cache_next(pool, NULL); c && j < k; c = slab_cache_next(pool, c)) {
				slab_get_stats(c, &p->caches[j].st);
				snprintf(p->caches[j].name, sizeof(p->caches[j].name), "%s",
					 p->caches[j].st.name ? p->caches[j].st.name : "?");
				p->caches[j].st.name = NULL;
				j++;
			}
			p->ncaches = j;
		}
	}
	if (r)
		reactor_get_stats(r, &p->rstats);
	if (reactor_send(0, gather_reply, g, b))
		log_err("ctl: reactor %u cannot answer reactor 0", i);
}

void ctl_gather(struct ctl_client *cl, ctl_cont_fn cont)
{
	unsigned n = reactor_count();
	struct ctl_gather *g = calloc(1, sizeof(*g) + n * sizeof(g->part[0]));

	if (!g) {
		ctl_reply_err(cl, "out of memory");
		return;
	}
	g->cl = cl;
	g->cont = cont;
	g->n = n;
	g->pending = n;
	cl->waiting = true;
	s.gathers_out++;
	for (unsigned i = 0; i < n; i++) {
		if (reactor_send(i, gather_part, g, (void *)(uintptr_t)i)) {
			/* counted as answered, with nothing in it */
			g->pending--;
		}
	}
	if (g->pending == 0) {
		s.gathers_out--;
		cl->waiting = false;
		cont(cl, g);
		ctl_gather_free(g);
	}
}

/* ---- reactor 0 ---- */

static bool stop_hook(void *arg)
{
	(void)arg;
	if (!s.stopping) {
		s.stopping = true;
		if (s.fd >= 0)
			reactor_event_del(s.r, &s.ev);
		if (s.http_fd >= 0)
			reactor_event_del(s.r, &s.http_ev);
	}
	if (s.gathers_out)
		return false;
	/* nobody is waiting for other reactors: drop the idle and the unread */
	while (s.clients)
		client_close(s.clients);
	return true;
}

int ctl_start(struct reactor *r)
{
	int rc;

	s.r = r;
	if (s.fd >= 0) {
		s.ev = (struct reactor_event){ .fd = s.fd, .fn = control_event, .arg = NULL };
		if ((rc = reactor_event_add(r, &s.ev, EPOLLIN)))
			return rc;
	}
	if (s.http_fd >= 0) {
		s.http_ev = (struct reactor_event){ .fd = s.http_fd, .fn = http_event, .arg = NULL };
		if ((rc = reactor_event_add(r, &s.http_ev, EPOLLIN)))
			return rc;
	}
	return reactor_stop_hook_add(r, stop_hook, NULL);
}
