/* ctl_int.h — shared by the control server (ctl.c), its verbs (verbs.c) and
 * the Prometheus page (metrics.c). Not a public contract: ctl/ctl.h is. */
#ifndef LICH_CTL_INT_H
#define LICH_CTL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/reactor.h"
#include "ctl/ctl.h"
#include "ctl/proto.h"
#include "iscsi/iscsi.h"
#include "mem/pool.h"
#include "mem/slab.h"

struct ctl_gather;
/* What one reactor reported (filled on its thread, read on reactor 0 after
 * its reply message). */
struct ctl_part {
	bool replied;
	struct iscsi_session_info *sess;
	unsigned nsess;
	struct mem_pool_stats pool;
	bool have_pool;
	struct ctl_cache {
		char name[48];          /* copied: st.name points into the cache */
		struct slab_stats st;
	} *caches;
	unsigned ncaches;
	struct reactor_stats rstats;
};

struct ctl_client;
typedef void (*ctl_cont_fn)(struct ctl_client *cl, struct ctl_gather *g);

struct ctl_gather {
	struct ctl_client *cl;
	ctl_cont_fn cont;
	unsigned n;                     /* reactors asked */
	unsigned pending;
	struct ctl_part part[];
};

struct ctl_client {
	struct ctl_client *next, *prev;
	struct reactor_event ev;
	int fd;
	bool http;
	bool done_reading;
	char *in;
	size_t inlen;
	struct ctl_req req;
	struct ctl_buf out;             /* status line + body */
	size_t out_off;
	ctl_cont_fn cont;
	bool waiting;                   /* a gather is out */
	struct timer *timer;            /* read timeout, until the request is in */
};

extern const struct ctl_ops *ctl_hooks;

/* Asks every reactor for its part; cont runs on reactor 0 when all are in. */
void ctl_gather(struct ctl_client *cl, ctl_cont_fn cont);
/* Finishes a request: "ok" + body, or "error: msg". */
void ctl_reply_ok(struct ctl_client *cl, const struct ctl_buf *body);
void ctl_reply_err(struct ctl_client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_gather_free(struct ctl_gather *g);

/* verbs.c: runs cl->req (reactor 0); ends with ctl_reply_* now or later. */
void ctl_dispatch(struct ctl_client *cl);
/* pool JSON/text pieces shared with metrics.c */
uint64_t ctl_part_bytes_in_use(const struct ctl_part *p);
/* metrics.c: the Prometheus page from a gather. */
void ctl_metrics_render(const struct ctl_gather *g, struct ctl_buf *out);

#endif
