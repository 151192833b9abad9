/* iser_listener.c — rdma_cm listeners on every configured iser-portal.
 *
 * Like the TCP listener: ids are created, bound and listening before the
 * reactors run (a portal that cannot be had fails the start), and their event
 * channel is polled by reactor 0. A connection request is acked on reactor 0
 * (so its id can move to another event channel), its device looked up (PD
 * created on first use) and handed round robin to a reactor, which migrates
 * the id to its own event channel, builds the QP on its completion queue and
 * accepts (iser.c). Devices are kept until exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "conf/conf.h"
#include "core/log.h"
#include "core/reactor.h"
#include "net/iser_proto.h"
#include "net/transport.h"
#include "iser_int.h"

#define ISER_BACKLOG 128

struct iser_listener {
	struct rdma_cm_id *id;
	char name[XPORT_ADDR_MAX + 16];
};

struct iser_portals {
	unsigned n;
	struct iser_listener *l;
	struct rdma_event_channel *ech;
	struct reactor_event ev;
	struct reactor *r;
	unsigned next;
	bool started;
};

struct iser_dev *iser_dev_list;
static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;

struct iser_dev *iser_dev_get(struct ibv_context *ctx)
{
	struct iser_dev *d;

	if (!ctx)
		return NULL;
	pthread_mutex_lock(&dev_lock);
	for (d = iser_dev_list; d && d->ctx != ctx; d = d->next)
		;
	if (!d && (d = calloc(1, sizeof(*d)))) {
		d->ctx = ctx;
		d->pd = ibv_alloc_pd(ctx);
		if (!d->pd || ibv_query_device(ctx, &d->attr)) {
			log_err("iser: device %s: cannot set up: %s",
				ibv_get_device_name(ctx->device), strerror(errno));
			if (d->pd)
				ibv_dealloc_pd(d->pd);
			free(d);
			d = NULL;
		} else {
			d->next = iser_dev_list;
			iser_dev_list = d;
			log_info("iser: device %s: protection domain ready (max %d QP WRs, %d SGEs, "
				 "RDMA Read depth %d)", ibv_get_device_name(ctx->device),
				 d->attr.max_qp_wr, d->attr.max_sge, d->attr.max_qp_init_rd_atom);
		}
	}
	pthread_mutex_unlock(&dev_lock);
	return d;
}

void iser_devs_free(void)
{
	pthread_mutex_lock(&dev_lock);
	while (iser_dev_list) {
		struct iser_dev *d = iser_dev_list;

		iser_dev_list = d->next;
		ibv_dealloc_pd(d->pd);
		free(d);
	}
	pthread_mutex_unlock(&dev_lock);
}

static int open_one(struct iser_portals *ps, const struct conf_portal *cp, struct iser_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc;

	if (conf_portal_sockaddr(cp, &ss, &sl))
		return -EINVAL;
	conf_portal_text(cp, l->name, sizeof(l->name));
	if (rdma_create_id(ps->ech, &l->id, l, RDMA_PS_TCP))
		return -errno;
	if (cp->family == AF_INET6) {
		int one = 1;

		rdma_set_option(l->id, RDMA_OPTION_ID, RDMA_OPTION_ID_AFONLY, &one, sizeof(one));
	}
	if (rdma_bind_addr(l->id, (struct sockaddr *)&ss) || rdma_listen(l->id, ISER_BACKLOG)) {
		rc = -errno;
		rdma_destroy_id(l->id);
		l->id = NULL;
		return rc;
	}
	return 0;
}

int iser_portals_open(const struct conf_portal *portals, unsigned n, struct iser_portals **out)
{
	struct iser_portals *ps = calloc(1, sizeof(*ps));
	int rc;

	if (!ps || !(ps->l = calloc(n ? n : 1, sizeof(*ps->l)))) {
		free(ps);
		return -ENOMEM;
	}
	ps->ech = rdma_create_event_channel();
	if (!ps->ech) {
		rc = -errno;
		log_err("iser: cannot create an rdma_cm event channel: %s (is rdma_cm loaded?)",
			strerror(-rc));
		free(ps->l);
		free(ps);
		return rc;
	}
	fcntl(ps->ech->fd, F_SETFL, fcntl(ps->ech->fd, F_GETFL) | O_NONBLOCK);
	for (unsigned i = 0; i < n; i++) {
		rc = open_one(ps, &portals[i], &ps->l[i]);
		if (rc) {
			log_err("iser-portal %s:%u: cannot listen: %s (no RDMA device with that "
				"address?)", portals[i].host, portals[i].port, strerror(-rc));
			ps->n = i;
			iser_portals_close(ps);
			return rc;
		}
		ps->n = i + 1;
		log_info("listening on iser %s (device %s)", ps->l[i].name,
			 ps->l[i].id->verbs ? ibv_get_device_name(ps->l[i].id->verbs->device) :
			 "any");
	}
	*out = ps;
	return 0;
}

static void on_connect_request(struct iser_portals *ps, struct rdma_cm_event *ev)
{
	struct rdma_cm_id *id = ev->id;
	const struct rdma_conn_param *p = &ev->param.conn;
	struct iser_conn_req *req = calloc(1, sizeof(*req));
	struct iser_cm_hdr h = { 0 };
	unsigned to;

	if (p->private_data && iser_cm_hdr_parse(p->private_data, p->private_data_len, &h) == 0)
		if (req)
			req->cm_flags = h.flags;
	if (req) {
		req->id = id;
		req->initiator_depth = p->initiator_depth;
		req->responder_resources = p->responder_resources;
	}
	rdma_ack_cm_event(ev);
	if (!req || reactors_stopping() || !(req->dev = iser_dev_get(id->verbs))) {
		log_warn("iser: connection request refused (%s)", !req ? "no memory" :
			 reactors_stopping() ? "shutting down" : "device unusable");
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		free(req);
		return;
	}
	to = ps->next++ % reactor_count();
	if (to == reactor_id(ps->r)) {
		iser_accept_msg(req, NULL);
	} else if (reactor_send(to, iser_accept_msg, req, NULL)) {
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		free(req);
	}
}

static void on_event(void *arg, uint32_t events)
{
	struct iser_portals *ps = arg;
	struct rdma_cm_event *ev;

	(void)events;
	while (ps->ech && rdma_get_cm_event(ps->ech, &ev) == 0) {
		struct iser_listener *l = ev->listen_id ? ev->listen_id->context : ev->id->context;

		switch (ev->event) {
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			on_connect_request(ps, ev);
			break;
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
			rdma_ack_cm_event(ev);
			if (l && l->id) {
				log_err("iser: portal %s: RDMA device removed: no longer listening",
					l->name);
				rdma_destroy_id(l->id);
				l->id = NULL;
			}
			break;
		default:
			log_debug("iser: listener event %s", rdma_event_str(ev->event));
			rdma_ack_cm_event(ev);
			break;
		}
	}
}

static bool stop_hook(void *arg)
{
	struct iser_portals *ps = arg;

	if (ps->started) {
		reactor_event_del(ps->r, &ps->ev);
		ps->started = false;
	}
	for (unsigned i = 0; i < ps->n; i++) {
		if (ps->l[i].id)
			rdma_destroy_id(ps->l[i].id);
		ps->l[i].id = NULL;
	}
	return true;
}

int iser_portals_start(struct iser_portals *ps)
{
	struct reactor *r = reactor_self();
	int rc;

	if (!r)
		return -EPERM;
	ps->r = r;
	ps->ev = (struct reactor_event){ ps->ech->fd, on_event, ps };
	rc = reactor_event_add(r, &ps->ev, EPOLLIN);
	if (rc)
		return rc;
	ps->started = true;
	return reactor_stop_hook_add(r, stop_hook, ps);
}

void iser_portals_close(struct iser_portals *ps)
{
	if (!ps)
		return;
	for (unsigned i = 0; i < ps->n; i++)
		if (ps->l[i].id)
			rdma_destroy_id(ps->l[i].id);
	if (ps->ech)
		rdma_destroy_event_channel(ps->ech);
	free(ps->l);
	free(ps);
	iser_devs_free();
}
