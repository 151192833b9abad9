/* target.c — process-wide engine state: options, per-reactor contexts, the
 * target registry and the session table.
 *
 * Everything here that several reactors share sits behind one mutex. It is
 * taken at login (target lookup, ACL, session table), logout/session end,
 * SendTargets and reload — never per command.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/log.h"
#include "core/reactor.h"
#include "internal.h"

struct iscsi_opts iscsi_opts_cur;

static struct {
	pthread_mutex_t lock;
	bool inited;
	struct iscsi_tgt *targets;
	struct iscsi_session *sessions;
	unsigned nsessions;
	uint16_t next_tsih;
	unsigned n_discovery_accounts;
	_Atomic unsigned nop_interval, nop_timeout, shutdown_timeout;
	_Atomic uint64_t next_id;
	struct iscsi_reactor *reactors[REACTOR_MAX];
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

void iscsi_opts_default(struct iscsi_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->limits.max_recv_dsl = 256 * 1024;
	o->limits.max_burst = 1024 * 1024;
	o->limits.first_burst = 64 * 1024;
	o->limits.max_outstanding_r2t = 4;
	o->limits.max_connections = 1;
	o->limits.max_erl = 0;
	o->limits.allow_digests = true;
	o->limits.immediate_data = true;
	o->limits.initial_r2t = false;
	o->queue_depth = 128;
	o->login_timeout = 15;
	o->nop_interval = 30;
	o->nop_timeout = 30;
	o->bdev_depth = 256;
	o->shutdown_timeout = 5;
}

int iscsi_init(const struct iscsi_opts *o)
{
	if (g.inited)
		return -EBUSY;
	iscsi_opts_cur = *o;
	if (iscsi_opts_cur.queue_depth == 0 || iscsi_opts_cur.queue_depth > 4096)
		iscsi_opts_cur.queue_depth = 128;
	if (iscsi_opts_cur.limits.max_outstanding_r2t > TASK_MAX_R2T)
		iscsi_opts_cur.limits.max_outstanding_r2t = TASK_MAX_R2T;
	if (iscsi_opts_cur.limits.max_outstanding_r2t == 0)
		iscsi_opts_cur.limits.max_outstanding_r2t = 1;
	if (iscsi_opts_cur.bdev_depth == 0)
		iscsi_opts_cur.bdev_depth = 256;
	atomic_store(&g.nop_interval, o->nop_interval);
	atomic_store(&g.nop_timeout, o->nop_timeout);
	atomic_store(&g.shutdown_timeout, o->shutdown_timeout);
	atomic_store(&g.next_id, 1);
	g.next_tsih = 1;
	g.inited = true;
	return 0;
}

static void target_destroy(struct iscsi_tgt *t)
{
	scsi_target_destroy(t->st);
	if (t->release)
		t->release(t->release_arg);
	free(t);
}

void iscsi_fini(void)
{
	struct iscsi_tgt *t;

	for (unsigned i = 0; i < REACTOR_MAX; i++) {
		struct iscsi_reactor *ir = g.reactors[i];

		if (!ir)
			continue;
		/* Tests (and a failed start) leave reactors that never stopped. */
		if (!ir->stopped)
			iscsi_reactor_teardown(ir);
		free(ir);
		g.reactors[i] = NULL;
	}
	reg_discovery_accounts_clear();
	pthread_mutex_lock(&g.lock);
	t = g.targets;
	g.targets = NULL;
	pthread_mutex_unlock(&g.lock);
	while (t) {
		struct iscsi_tgt *next = t->next;

		if (--t->refs == 0)
			target_destroy(t);
		else
			log_err("iscsi: target %s still has %u sessions at exit", t->name,
				t->refs);
		t = next;
	}
	g.inited = false;
}

void iscsi_set_config(const struct config *c)
{
	atomic_store(&g.nop_interval, c->nop_interval);
	atomic_store(&g.nop_timeout, c->nop_timeout);
	atomic_store(&g.shutdown_timeout, c->shutdown_timeout);
	pthread_mutex_lock(&g.lock);
	g.n_discovery_accounts = c->n_discovery_incoming;
	pthread_mutex_unlock(&g.lock);
	if (reg_discovery_accounts_set(c))
		log_err("iscsi: no memory for the discovery CHAP accounts");
}

unsigned iscsi_nop_interval(void) { return atomic_load(&g.nop_interval); }
unsigned iscsi_nop_timeout(void) { return atomic_load(&g.nop_timeout); }
unsigned iscsi_shutdown_timeout(void) { return atomic_load(&g.shutdown_timeout); }
uint64_t iscsi_next_id(void) { return atomic_fetch_add(&g.next_id, 1); }
void iscsi_config_lock(void) { pthread_mutex_lock(&g.lock); }
void iscsi_config_unlock(void) { pthread_mutex_unlock(&g.lock); }

struct iscsi_reactor *iscsi_reactor_of(unsigned id)
{
	return id < REACTOR_MAX ? g.reactors[id] : NULL;
}

void iscsi_reactor_register(struct iscsi_reactor *ir)
{
	g.reactors[ir->id] = ir;
}

void iscsi_post(unsigned rid, void (*fn)(void *a, void *b), void *a, void *b)
{
	int rc;

	if (!reactor_self()) {
		fn(a, b);
		return;
	}
	rc = reactor_send(rid, fn, a, b);
	if (rc)
		log_err("iscsi: cannot message reactor %u: %s", rid, strerror(-rc));
}

/* ---- targets ---- */

static struct iscsi_tgt *find_locked(const char *name)
{
	for (struct iscsi_tgt *t = g.targets; t; t = t->next)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

int iscsi_target_add(struct scsi_target *st, const struct conf_target *conf,
		     void (*release)(void *arg), void *arg)
{
	const char *name = scsi_target_name(st);
	struct iscsi_tgt *t;

	if (strlen(name) > ISCSI_NAME_MAX)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->st = st;
	t->conf = conf;
	t->refs = 1;
	t->release = release;
	t->release_arg = arg;
	/* PREEMPT AND ABORT reaches the preempted sessions through sweeps. */
	scsi_target_set_preempt_abort(st, iscsi_preempt_abort, NULL);
	pthread_mutex_lock(&g.lock);
	if (find_locked(name)) {
		pthread_mutex_unlock(&g.lock);
		free(t);
		return -EEXIST;
	}
	t->next = g.targets;
	g.targets = t;
	pthread_mutex_unlock(&g.lock);
	return 0;
}

int iscsi_target_update_conf(const char *name, const struct conf_target *conf)
{
	struct iscsi_tgt *t;
	int rc = -ENOENT;

	pthread_mutex_lock(&g.lock);
	t = find_locked(name);
	if (t) {
		t->conf = conf;
		rc = 0;
	}
	pthread_mutex_unlock(&g.lock);
	return rc;
}

struct scsi_target *iscsi_target_scsi(const char *name)
{
	struct iscsi_tgt *t;

	pthread_mutex_lock(&g.lock);
	t = find_locked(name);
	pthread_mutex_unlock(&g.lock);
	return t ? t->st : NULL;
}

int iscsi_target_remove(const char *name)
{
	struct iscsi_tgt *t, **pp;

	pthread_mutex_lock(&g.lock);
	for (pp = &g.targets; *pp && strcmp((*pp)->name, name); pp = &(*pp)->next)
		;
	t = *pp;
	if (!t) {
		pthread_mutex_unlock(&g.lock);
		return -ENOENT;
	}
	*pp = t->next;
	t->next = NULL;
	t->removed = true;
	t->conf = NULL;
	pthread_mutex_unlock(&g.lock);
	reg_kill_target_sessions(t);
	reg_target_put(t);
	return 0;
}

struct iscsi_tgt *reg_target_get(const char *name)
{
	struct iscsi_tgt *t;

	pthread_mutex_lock(&g.lock);
	t = find_locked(name);
	if (t)
		t->refs++;
	pthread_mutex_unlock(&g.lock);
	return t;
}

void reg_target_hold(struct iscsi_tgt *t)
{
	pthread_mutex_lock(&g.lock);
	t->refs++;
	pthread_mutex_unlock(&g.lock);
}

void reg_target_put(struct iscsi_tgt *t)
{
	bool last;

	if (!t)
		return;
	pthread_mutex_lock(&g.lock);
	last = --t->refs == 0;
	pthread_mutex_unlock(&g.lock);
	if (last)
		target_destroy(t);
}

bool reg_target_allows(struct iscsi_tgt *t, const char *iname, const char *addr)
{
	bool ok;

	pthread_mutex_lock(&g.lock);
	ok = !t->removed && (!t->conf || conf_target_allows(t->conf, iname, addr));
	pthread_mutex_unlock(&g.lock);
	return ok;
}

bool reg_target_needs_auth(struct iscsi_tgt *t)
{
	bool need;

	pthread_mutex_lock(&g.lock);
	need = t->conf && t->conf->n_incoming > 0;
	pthread_mutex_unlock(&g.lock);
	return need;
}

bool reg_discovery_needs_auth(void)
{
	bool need;

	pthread_mutex_lock(&g.lock);
	need = g.n_discovery_accounts > 0;
	pthread_mutex_unlock(&g.lock);
	return need;
}

/* TargetAddress is the address this connection reached (RFC 7143 §13.8):
 * initiators behind NAT or on another interface get a reachable one. */
static int add_target(struct iscsi_conn *c, struct iscsi_tgt *t, struct iscsi_textbuf *tb)
{
	const struct xport_conn *xc = c->xc;
	int rc;

	rc = iscsi_textbuf_add(tb, "TargetName", t->name);
	if (rc || !xc)
		return rc;
	if (xc->family == AF_INET6)
		return iscsi_textbuf_addf(tb, "TargetAddress", "[%s]:%u,1", xc->local_addr,
					  xc->local_port);
	return iscsi_textbuf_addf(tb, "TargetAddress", "%s:%u,1", xc->local_addr,
				  xc->local_port);
}

int reg_sendtargets(struct iscsi_conn *c, const char *which, struct iscsi_textbuf *tb)
{
	const char *iname = c->params.initiator_name;
	const char *addr = c->xc ? c->xc->peer_addr : "";
	bool all = strcmp(which, "All") == 0;
	int rc = 0;

	pthread_mutex_lock(&g.lock);
	for (struct iscsi_tgt *t = g.targets; t && rc == 0; t = t->next) {
		if (!all && strcmp(which, t->name) != 0)
			continue;
		if (t->conf && !conf_target_allows(t->conf, iname, addr))
			continue;   /* hidden, like a forbidden login */
		rc = add_target(c, t, tb);
	}
	pthread_mutex_unlock(&g.lock);
	return rc;
}

/* ---- session table ---- */

static bool same_nexus(const struct iscsi_session *a, const struct iscsi_session *b)
{
	return a->tgt == b->tgt && a->type == b->type &&
	       memcmp(a->isid, b->isid, 6) == 0 &&
	       strcmp(a->initiator_name, b->initiator_name) == 0;
}

static bool tsih_used(uint16_t tsih)
{
	for (struct iscsi_session *s = g.sessions; s; s = s->g_next)
		if (s->tsih == tsih)
			return true;
	return false;
}

int reg_session_enter(struct iscsi_conn *c)
{
	struct iscsi_session *s = &c->sess, *old = NULL;
	unsigned tries = 0;

	pthread_mutex_lock(&g.lock);
	if (s->tgt && s->tgt->removed) {
		pthread_mutex_unlock(&g.lock);
		return ISCSI_LOGIN_STATUS_TGT_REMOVED;
	}
	for (struct iscsi_session *e = g.sessions; e; e = e->g_next) {
		if (same_nexus(e, s)) {
			old = e;
			break;
		}
	}
	if (old && old->has_waiter) {
		/* A reinstatement of it is already under way: try again later. */
		pthread_mutex_unlock(&g.lock);
		return ISCSI_LOGIN_STATUS_SVC_UNAVAIL;
	}
	do {
		s->tsih = g.next_tsih++;
		if (g.next_tsih == 0)
			g.next_tsih = 1;
	} while ((s->tsih == 0 || tsih_used(s->tsih)) && ++tries < 70000);
	s->g_prev = NULL;
	s->g_next = g.sessions;
	if (g.sessions)
		g.sessions->g_prev = s;
	g.sessions = s;
	s->in_table = true;
	g.nsessions++;
	if (old) {
		old->dying = true;
		old->has_waiter = true;
		old->waiter_rid = s->rid;
		old->waiter_conn = s->id;
	}
	pthread_mutex_unlock(&g.lock);
	if (old) {
		log_info("iscsi: reinstating session of %s (tsih %u) on reactor %u",
			 s->initiator_name, old->tsih, old->rid);
		iscsi_post(old->rid, iscsi_session_kill_msg, (void *)(uintptr_t)old->id,
			   "session reinstatement");
		return 1;
	}
	return 0;
}

bool reg_session_exists(const char *iname, const uint8_t isid[6], uint16_t tsih)
{
	bool found = false;

	pthread_mutex_lock(&g.lock);
	for (struct iscsi_session *e = g.sessions; e && !found; e = e->g_next)
		found = e->tsih == tsih && memcmp(e->isid, isid, 6) == 0 &&
			strcmp(e->initiator_name, iname) == 0;
	pthread_mutex_unlock(&g.lock);
	return found;
}

void reg_session_leave(struct iscsi_session *s)
{
	bool waiter = false;
	unsigned rid = 0;
	uint64_t conn_id = 0;

	pthread_mutex_lock(&g.lock);
	if (s->in_table) {
		if (s->g_prev)
			s->g_prev->g_next = s->g_next;
		else
			g.sessions = s->g_next;
		if (s->g_next)
			s->g_next->g_prev = s->g_prev;
		s->in_table = false;
		g.nsessions--;
		waiter = s->has_waiter;
		rid = s->waiter_rid;
		conn_id = s->waiter_conn;
		s->has_waiter = false;
	}
	pthread_mutex_unlock(&g.lock);
	if (waiter)
		iscsi_post(rid, iscsi_login_resume, (void *)(uintptr_t)conn_id, NULL);
}

void reg_kill_target_sessions(struct iscsi_tgt *t)
{
	struct { unsigned rid; uint64_t id; } *v = NULL;
	unsigned n = 0, cap = 0;

	pthread_mutex_lock(&g.lock);
	for (struct iscsi_session *e = g.sessions; e; e = e->g_next) {
		if (e->tgt != t)
			continue;
		if (n == cap) {
			void *nv = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
			cap = cap ? cap * 2 : 16;
		}
		v[n].rid = e->rid;
		v[n].id = e->id;
		n++;
		e->dying = true;
	}
	pthread_mutex_unlock(&g.lock);
	for (unsigned i = 0; i < n; i++)
		iscsi_post(v[i].rid, iscsi_session_kill_msg, (void *)(uintptr_t)v[i].id,
			   "target removed");
	free(v);
}

int iscsi_session_request_logout(uint64_t session_id, unsigned time_to_logout)
{
	int rc = -ENOENT;
	unsigned rid = 0;

	pthread_mutex_lock(&g.lock);
	for (struct iscsi_session *e = g.sessions; e; e = e->g_next) {
		if (e->id == session_id && !e->dying) {
			rid = e->rid;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&g.lock);
	if (rc == 0)
		iscsi_post(rid, iscsi_session_logout_msg, (void *)(uintptr_t)session_id,
			   (void *)(uintptr_t)time_to_logout);
	return rc;
}

unsigned iscsi_session_count(void)
{
	unsigned n;

	pthread_mutex_lock(&g.lock);
	n = g.nsessions;
	pthread_mutex_unlock(&g.lock);
	return n;
}

/* ---- CHAP accounts ----
 * Targets' accounts are read in their conf (under the lock); the discovery
 * accounts are copied here since iscsi_set_config() keeps nothing of its
 * config. */

static struct {
	struct conf_account *in;
	unsigned n_in;
	struct conf_account *out;
} disc;

static void account_wipe(struct conf_account *a)
{
	if (a->secret)
		explicit_bzero(a->secret, strlen(a->secret));
	free(a->user);
	free(a->secret);
	a->user = a->secret = NULL;
}

static void accounts_free(struct conf_account *v, unsigned n)
{
	for (unsigned i = 0; v && i < n; i++)
		account_wipe(&v[i]);
	free(v);
}

static struct conf_account *accounts_dup(const struct conf_account *v, unsigned n)
{
	struct conf_account *d = n ? calloc(n, sizeof(*d)) : NULL;

	for (unsigned i = 0; d && i < n; i++) {
		d[i].user = strdup(v[i].user ? v[i].user : "");
		d[i].secret = strdup(v[i].secret ? v[i].secret : "");
		if (!d[i].user || !d[i].secret) {
			accounts_free(d, i + 1);
			return NULL;
		}
	}
	return d;
}

int reg_discovery_accounts_set(const struct config *c)
{
	struct conf_account *in = accounts_dup(c->discovery_incoming, c->n_discovery_incoming);
	struct conf_account *out = c->discovery_outgoing ?
				   accounts_dup(c->discovery_outgoing, 1) : NULL;
	struct conf_account *old_in, *old_out;
	unsigned old_n;

	if ((c->n_discovery_incoming && !in) || (c->discovery_outgoing && !out)) {
		accounts_free(in, c->n_discovery_incoming);
		accounts_free(out, 1);
		return -ENOMEM;
	}
	pthread_mutex_lock(&g.lock);
	old_in = disc.in;
	old_n = disc.n_in;
	old_out = disc.out;
	disc.in = in;
	disc.n_in = c->n_discovery_incoming;
	disc.out = out;
	pthread_mutex_unlock(&g.lock);
	accounts_free(old_in, old_n);
	accounts_free(old_out, 1);
	return 0;
}

void reg_discovery_accounts_clear(void)
{
	pthread_mutex_lock(&g.lock);
	accounts_free(disc.in, disc.n_in);
	accounts_free(disc.out, 1);
	disc.in = disc.out = NULL;
	disc.n_in = 0;
	pthread_mutex_unlock(&g.lock);
}

int reg_with_accounts(struct iscsi_tgt *t,
		      int (*fn)(const struct chap_accounts *acc, void *arg), void *arg)
{
	struct chap_accounts acc = { 0 };
	int rc;

	pthread_mutex_lock(&g.lock);
	if (t && t->removed) {
		pthread_mutex_unlock(&g.lock);
		return ISCSI_LOGIN_STATUS_TGT_REMOVED;
	}
	if (t && t->conf) {
		acc.incoming = t->conf->incoming;
		acc.n_incoming = t->conf->n_incoming;
		acc.outgoing = t->conf->outgoing;
	} else if (!t) {
		acc.incoming = disc.in;
		acc.n_incoming = disc.n_in;
		acc.outgoing = disc.out;
	}
	rc = fn(&acc, arg);
	pthread_mutex_unlock(&g.lock);
	return rc;
}
