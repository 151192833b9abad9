/* iser_int.h — what iser.c (connections, data path) and iser_listener.c
 * (rdma_cm listeners) share. Private to src/net.
 *
 * Devices: one struct iser_dev per RDMA device (ibv_context) seen by a
 * listener, process wide, created on reactor 0 when the first connection
 * request for it arrives, kept until exit. It holds the protection domain
 * (one per device) and, per reactor, that reactor's completion queue on the
 * device (shared by all its connections on it, polled by the reactor) and the
 * id of the registration hook that registered the reactor's pool chunks with
 * the PD (one MR per chunk, registered once). The per-reactor part is written
 * only by its reactor.
 */
#ifndef LICH_NET_ISER_INT_H
#define LICH_NET_ISER_INT_H

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/reactor.h"

struct iser_rdev {                  /* one device on one reactor */
	bool ready;
	bool armed;                     /* CQ notification requested */
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	int cq_size;
	int cq_used;                    /* entries reserved by connections */
	struct reactor_event ev;
	struct poller *poller;
	unsigned reg_id;
	bool reg_added;
	unsigned nconns;
};

struct iser_dev {
	struct iser_dev *next;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_device_attr attr;
	struct iser_rdev r[REACTOR_MAX];
};

/* A connection request on its way from the listener (reactor 0) to the
 * reactor that will own the connection. malloc'd (crosses threads). */
struct iser_conn_req {
	struct rdma_cm_id *id;          /* its events already acked */
	struct iser_dev *dev;
	uint8_t cm_flags;               /* initiator's iSER CM header flags */
	uint8_t initiator_depth;        /* from the request */
	uint8_t responder_resources;
};

/* Every device seen so far (iser_listener.c); appended to on reactor 0 under
 * a lock, never shortened while reactors run. */
extern struct iser_dev *iser_dev_list;
/* The device of ctx (created on first use); NULL on failure. Any thread. */
struct iser_dev *iser_dev_get(struct ibv_context *ctx);
/* Message handler (reactor_send): sets up the QP on the calling reactor and
 * accepts, or rejects. a = struct iser_conn_req * (freed here). */
void iser_accept_msg(void *a, void *b);
/* Frees every device (after reactors_run returned). */
void iser_devs_free(void);

#endif
