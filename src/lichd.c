/* lichd — the lich iSCSI target daemon.
 *
 *   lichd [-c FILE] [-d]          run in the foreground, log to stderr
 *   lichd --daemon [--pidfile F]  detach (double fork), log to syslog
 *   lichd --check [-c FILE]       parse FILE and check its backing stores
 *
 * Start: load the config, open every backing store, build the SCSI targets and
 * LUs, bind the portals (so a busy port fails the start), then run one reactor
 * per configured core; each gets the iSCSI engine's context (bdev queue pair,
 * caches) and reactor 0 accepts connections.
 * SIGINT/SIGTERM: the reactors' stop hooks stop accepting, ask sessions to log
 * out (shutdown-timeout), drop what is left and wait for in-flight I/O; then
 * everything is freed and lichd exits 0.
 * systemd (Type=notify): READY=1 once the portals listen, RELOADING=1 / READY=1
 * around a reload, STOPPING=1 at shutdown (core/daemon.h).
 * SIGHUP: the file is loaded again; on error the running config stays. Else
 * targets and LUNs are added and removed to match it; unchanged ones (and their
 * sessions) are not touched.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "conf/conf.h"
#include "core/daemon.h"
#include "core/log.h"
#include "core/reactor.h"
#include "ctl/ctl.h"
#include "ctl/stats.h"
#include "iscsi/iscsi.h"
#include "net/transport.h"
#include "scsi/scsi.h"

#define LICH_VERSION "0.1.0"
#define DEFAULT_CONF "/etc/lich/targets.conf"

/* The backing stores of one target's LUs; closed when the engine releases
 * the target (its last session ended after it was removed, or at exit). */
struct tgt_luns {
	unsigned n, cap;
	unsigned *lun;
	struct bdev **bdev;
};

/* Backing stores of LUs removed by a reload: tasks of other reactors may
 * still have I/O queued on them, so they are closed at exit. */
static struct {
	struct bdev **v;
	unsigned n, cap;
} graveyard;

/* tgt_luns of each live target, by name (reactor 0 / main thread only). */
static struct {
	char **name;
	struct tgt_luns **tl;
	unsigned n, cap;
} tl_index;

static struct {
	const char *conf_path;
	const char *pidfile;
	bool daemonize;
	struct config *cfg;
	struct tcp_portals *portals;
	struct iser_portals *iser_portals;   /* NULL without iser-portal */
	bool debug;
	int start_error;
} d;

/* ---- backing stores ---- */

static void graveyard_add(struct bdev *b)
{
	if (graveyard.n == graveyard.cap) {
		unsigned cap = graveyard.cap ? graveyard.cap * 2 : 8;
		struct bdev **v = realloc(graveyard.v, cap * sizeof(*v));

		if (!v) {
			log_warn("reload: cannot keep a removed backing store open; leaking it");
			return;
		}
		graveyard.v = v;
		graveyard.cap = cap;
	}
	graveyard.v[graveyard.n++] = b;
}

static int tl_add(struct tgt_luns *tl, unsigned lun, struct bdev *b)
{
	if (tl->n == tl->cap) {
		unsigned cap = tl->cap ? tl->cap * 2 : 4;
		unsigned *l = realloc(tl->lun, cap * sizeof(*l));

		if (!l)
			return -ENOMEM;
		tl->lun = l;
		struct bdev **v = realloc(tl->bdev, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		tl->bdev = v;
		tl->cap = cap;
	}
	tl->lun[tl->n] = lun;
	tl->bdev[tl->n] = b;
	tl->n++;
	return 0;
}

static struct bdev *tl_take(struct tgt_luns *tl, unsigned lun)
{
	for (unsigned i = 0; i < tl->n; i++) {
		if (tl->lun[i] == lun) {
			struct bdev *b = tl->bdev[i];

			tl->lun[i] = tl->lun[tl->n - 1];
			tl->bdev[i] = tl->bdev[tl->n - 1];
			tl->n--;
			return b;
		}
	}
	return NULL;
}

static int tl_index_add(const char *name, struct tgt_luns *tl)
{
	if (tl_index.n == tl_index.cap) {
		unsigned cap = tl_index.cap ? tl_index.cap * 2 : 16;
		char **nv = realloc(tl_index.name, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		tl_index.name = nv;
		struct tgt_luns **tv = realloc(tl_index.tl, cap * sizeof(*tv));

		if (!tv)
			return -ENOMEM;
		tl_index.tl = tv;
		tl_index.cap = cap;
	}
	if (!(tl_index.name[tl_index.n] = strdup(name)))
		return -ENOMEM;
	tl_index.tl[tl_index.n++] = tl;
	return 0;
}

static void tl_index_del(const char *name)
{
	for (unsigned i = 0; i < tl_index.n; i++) {
		if (strcmp(tl_index.name[i], name) == 0) {
			free(tl_index.name[i]);
			tl_index.name[i] = tl_index.name[--tl_index.n];
			tl_index.tl[i] = tl_index.tl[tl_index.n];
			return;
		}
	}
}

static struct tgt_luns *target_luns(const char *name)
{
	for (unsigned i = 0; i < tl_index.n; i++)
		if (strcmp(tl_index.name[i], name) == 0)
			return tl_index.tl[i];
	return NULL;
}

static void tl_release(void *arg)
{
	struct tgt_luns *tl = arg;

	for (unsigned i = 0; i < tl->n; i++)
		bdev_close(tl->bdev[i]);
	free(tl->lun);
	free(tl->bdev);
	free(tl);
}

static int open_lun(const char *cfg_path, const struct conf_target *t,
		    const struct conf_lun *l, bool check_only, struct bdev **out)
{
	char name[300];
	struct bdev_opts o = {
		.size = l->size,
		.block_size = l->block_size,
		.readonly = l->readonly || check_only,
	};
	int rc;

	switch (l->bs_type) {
	case BS_NVME:
		/* The namespace's character device (/dev/ngXnY, or /dev/nvmeXnY);
		 * the exported block size is the namespace's LBA size. */
		o.type = BDEV_TYPE_NVME;
		o.path = l->path;
		if (!o.path) {
			fprintf(stderr, "%s:%d: LUN %u has no NVMe namespace path\n", cfg_path,
				l->line, l->lun);
			return -EINVAL;
		}
		break;
	case BS_RAM:
		if (check_only)
			return 0;
		snprintf(name, sizeof(name), "%s-lun%u", t->name, l->lun);
		o.type = BDEV_TYPE_RAM;
		o.path = l->path ? l->path : name;
		break;
	default:
		o.type = BDEV_TYPE_URING;
		o.path = l->path;
		if (!o.path) {
			fprintf(stderr, "%s:%d: LUN %u has no backing store path\n", cfg_path,
				l->line, l->lun);
			return -EINVAL;
		}
		break;
	}
	rc = bdev_open(&o, out);
	if (rc) {
		fprintf(stderr, "%s:%d: cannot open backing store %s: %s\n", cfg_path, l->line,
			o.path, strerror(-rc));
		return rc;
	}
	if (check_only) {
		bdev_close(*out);
		*out = NULL;
	}
	return 0;
}

static int add_lu(const struct config *cfg, struct scsi_target *st,
		  const struct conf_target *t, const struct conf_lun *l, struct tgt_luns *tl)
{
	char pr_file[512];
	struct scsi_lu_opts o;
	struct bdev *b = NULL;
	int rc;

	rc = open_lun(cfg->path, t, l, false, &b);
	if (rc)
		return rc;
	snprintf(pr_file, sizeof(pr_file), "%s/%s-lun%u.pr", cfg->state_dir, t->name, l->lun);
	o = (struct scsi_lu_opts){
		.lun = l->lun,
		.bdev = b,
		.vendor = l->vendor_id,
		.product = l->product_id,
		.revision = l->product_rev,
		.serial = l->scsi_sn[0] ? l->scsi_sn : NULL,   /* scsi derives one */
		.device_id = l->scsi_id[0] ? l->scsi_id : NULL,
		.write_cache = l->write_cache,
		.readonly = l->readonly,
		.pr_file = cfg->state_dir ? pr_file : NULL,
		.stats = ctl_lu_stats_get(t->name, l->lun),
	};
	rc = scsi_target_add_lu(st, &o);
	if (rc) {
		ctl_lu_stats_retire(o.stats);
		log_err("%s:%d: target %s LUN %u: cannot create: %s", cfg->path, l->line,
			t->name, l->lun, strerror(-rc));
		bdev_close(b);
		return rc;
	}
	rc = tl_add(tl, l->lun, b);
	if (rc) {
		scsi_target_del_lu(st, l->lun);
		ctl_lu_stats_retire(o.stats);
		graveyard_add(b);
	}
	return rc;
}

static int add_target(const struct config *cfg, const struct conf_target *t)
{
	struct scsi_target *st = scsi_target_create(t->name, 1);
	struct tgt_luns *tl = calloc(1, sizeof(*tl));
	int rc = -ENOMEM;

	if (!st || !tl)
		goto fail;
	for (unsigned i = 0; i < t->nluns; i++) {
		rc = add_lu(cfg, st, t, &t->luns[i], tl);
		if (rc)
			goto fail;
	}
	rc = tl_index_add(t->name, tl);
	if (rc)
		goto fail;
	rc = iscsi_target_add(st, t, tl_release, tl);
	if (rc) {
		tl_index_del(t->name);
		log_err("%s:%d: target %s: %s", cfg->path, t->line, t->name, strerror(-rc));
		goto fail;
	}
	log_info("target %s: %u LUN%s", t->name, t->nluns, t->nluns == 1 ? "" : "s");
	return 0;
fail:
	ctl_lu_stats_retire_lun(t->name, -1);
	if (st)
		scsi_target_destroy(st);
	if (tl)
		tl_release(tl);
	return rc;
}

static int check_config(const struct config *cfg)
{
	int rc = 0;

	for (unsigned i = 0; i < cfg->ntargets && rc == 0; i++) {
		const struct conf_target *t = &cfg->targets[i];

		for (unsigned j = 0; j < t->nluns && rc == 0; j++) {
			struct bdev *b = NULL;

			rc = open_lun(cfg->path, t, &t->luns[j], true, &b);
		}
	}
	return rc;
}

/* ---- systemd notifications ---- */

static void notify_ready(const char *what)
{
	daemon_notify("READY=1\nSTATUS=%s: %u targets, %u portals\nMAINPID=%ld", what,
		      d.cfg->ntargets, d.cfg->nportals, (long)getpid());
}

/* MONOTONIC_USEC lets systemd (253+, Type=notify-reload) match the reload. */
static void notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	daemon_notify("RELOADING=1\nSTATUS=reloading %s\nMONOTONIC_USEC=%llu", d.conf_path,
		      (unsigned long long)ts.tv_sec * 1000000ull +
		      (unsigned long long)ts.tv_nsec / 1000);
}

/* A stop hook on reactor 0: the first thing shutdown does. */
static bool notify_stopping(void *arg)
{
	(void)arg;
	daemon_notify("STOPPING=1\nSTATUS=stopping: sessions asked to log out");
	return true;
}

/* ---- reload ---- */

static bool lun_same(const struct conf_lun *a, const struct conf_lun *b)
{
	return a->bs_type == b->bs_type && a->size == b->size &&
	       a->block_size == b->block_size && a->readonly == b->readonly &&
	       a->write_cache == b->write_cache &&
	       strcmp(a->path ? a->path : "", b->path ? b->path : "") == 0 &&
	       strcmp(a->vendor_id, b->vendor_id) == 0 &&
	       strcmp(a->product_id, b->product_id) == 0 &&
	       strcmp(a->product_rev, b->product_rev) == 0 &&
	       strcmp(a->scsi_sn, b->scsi_sn) == 0 && strcmp(a->scsi_id, b->scsi_id) == 0;
}

static const struct conf_lun *find_lun(const struct conf_target *t, unsigned lun)
{
	for (unsigned i = 0; i < t->nluns; i++)
		if (t->luns[i].lun == lun)
			return &t->luns[i];
	return NULL;
}

/* Brings one surviving target's LUs in line with its new config entry. */
static void reload_target(const struct config *ncfg, const struct conf_target *ot,
			  const struct conf_target *nt, unsigned *changed, unsigned *failed)
{
	struct scsi_target *st = iscsi_target_scsi(nt->name);
	struct tgt_luns *tl = target_luns(nt->name);

	if (!st || !tl)
		return;
	for (unsigned i = 0; i < ot->nluns; i++) {
		const struct conf_lun *ol = &ot->luns[i], *nl = find_lun(nt, ol->lun);

		if (nl && lun_same(ol, nl))
			continue;
		/* Sessions get REPORTED LUNS DATA HAS CHANGED from the scsi layer. */
		scsi_target_del_lu(st, ol->lun);
		ctl_lu_stats_retire_lun(ot->name, (int)ol->lun);
		struct bdev *b = tl_take(tl, ol->lun);

		if (b)
			graveyard_add(b);
		(*changed)++;
	}
	for (unsigned i = 0; i < nt->nluns; i++) {
		const struct conf_lun *nl = &nt->luns[i], *ol = find_lun(ot, nl->lun);

		if (ol && lun_same(ol, nl))
			continue;
		if (add_lu(ncfg, st, nt, nl, tl) == 0)
			(*changed)++;
		else
			(*failed)++;
	}
}

/* Makes ncfg the running config (it takes ownership): targets and LUNs are
 * added and removed to match it; unchanged ones (and their sessions) are not
 * touched. SIGHUP and lichctl's edits both come here. Returns how many
 * targets/LUNs could not be set up (logged). */
static unsigned apply_config(struct config *ncfg, const char *why)
{
	struct config *ocfg = d.cfg;
	unsigned added = 0, removed = 0, changed = 0, failed = 0;

	if (!d.debug && ncfg->log_level_set)
		log_set_level(ncfg->log_level);
	for (unsigned i = 0; i < ocfg->ntargets; i++) {
		const struct conf_target *ot = &ocfg->targets[i];
		const struct conf_target *nt = conf_find_target(ncfg, ot->name);

		if (nt) {
			reload_target(ncfg, ot, nt, &changed, &failed);
			iscsi_target_update_conf(nt->name, nt);
		} else {
			tl_index_del(ot->name);
			ctl_lu_stats_retire_lun(ot->name, -1);
			if (iscsi_target_remove(ot->name))
				continue;
			removed++;
			log_info("%s: target %s removed", why, ot->name);
		}
	}
	for (unsigned i = 0; i < ncfg->ntargets; i++) {
		const struct conf_target *nt = &ncfg->targets[i];

		if (conf_find_target(ocfg, nt->name))
			continue;
		if (add_target(ncfg, nt) == 0)
			added++;
		else
			failed++;
	}
	if (ncfg->nportals != ocfg->nportals || ncfg->n_iser_portals != ocfg->n_iser_portals)
		log_warn("%s: portal changes take effect at the next start", why);
	if (strcmp(ncfg->control_socket, ocfg->control_socket) ||
	    ncfg->has_metrics != ocfg->has_metrics ||
	    (ncfg->has_metrics && (ncfg->metrics.port != ocfg->metrics.port ||
				   strcmp(ncfg->metrics.host, ocfg->metrics.host))))
		log_warn("%s: control-socket and metrics changes take effect at the next start",
			 why);
	iscsi_set_config(ncfg);
	/* Nothing points into the old config any more. */
	iscsi_config_lock();
	d.cfg = ncfg;
	iscsi_config_unlock();
	conf_free(ocfg);
	log_info("%s: %u targets added, %u removed, %u LUNs changed%s", why, added, removed,
		 changed, failed ? " (some failed, see above)" : "");
	return failed;
}

static int reload_file(char *err, size_t errlen)
{
	struct config *ncfg = NULL;
	unsigned failed;
	int rc;

	notify_reloading();
	rc = conf_load(d.conf_path, &ncfg, err, errlen);
	if (rc) {
		log_err("%s", err);
		log_err("reload failed: keeping the running configuration");
		notify_ready("reload failed, running configuration kept");
		return rc;
	}
	failed = apply_config(ncfg, "reload");
	notify_ready("reloaded");
	if (failed) {
		snprintf(err, errlen, "%u target(s)/LUN(s) could not be set up (see lichd's log)",
			 failed);
		return -EIO;
	}
	return 0;
}

static void reload(void *arg)
{
	char err[512];

	(void)arg;
	reload_file(err, sizeof(err));
}

/* ---- lichctl hooks (ctl/ctl.h; on reactor 0) ---- */

static const struct config *ctl_config(void)
{
	return d.cfg;
}

static int ctl_apply(struct config *ncfg, char *err, size_t errlen)
{
	unsigned failed = apply_config(ncfg, "lichctl");

	if (failed) {
		snprintf(err, errlen, "%u target(s)/LUN(s) could not be set up (see lichd's log)",
			 failed);
		return -EIO;
	}
	return 0;
}

static int ctl_check_lun(const struct config *c, const char *target, unsigned lun,
			 char *err, size_t errlen)
{
	const struct conf_target *t = conf_find_target(c, target);
	const struct conf_lun *l = t ? find_lun(t, lun) : NULL;
	struct bdev *b = NULL;
	int rc;

	if (!l) {
		snprintf(err, errlen, "target %s LUN %u: not found", target, lun);
		return -ENOENT;
	}
	rc = open_lun(c->path, t, l, true, &b);
	if (rc)
		snprintf(err, errlen, "target %s LUN %u: cannot open %s: %s", target, lun,
			 l->path ? l->path : "(no path)", strerror(-rc));
	return rc;
}

static uint64_t ctl_lun_size(const char *target, unsigned lun)
{
	struct tgt_luns *tl = target_luns(target);

	for (unsigned i = 0; tl && i < tl->n; i++)
		if (tl->lun[i] == lun && tl->bdev[i])
			return tl->bdev[i]->size;
	return 0;
}

static const struct ctl_ops ctl_hooks_lichd = {
	.config = ctl_config,
	.apply = ctl_apply,
	.reload = reload_file,
	.check_lun = ctl_check_lun,
	.lun_size = ctl_lun_size,
};

/* ---- reactors ---- */

static void start_reactor(struct reactor *r, void *arg)
{
	int rc;

	(void)arg;
	rc = iscsi_reactor_start(r);
	if (rc == 0 && reactor_id(r) == 0)
		rc = tcp_portals_start(d.portals);
	if (rc == 0 && reactor_id(r) == 0 && d.iser_portals)
		rc = iser_portals_start(d.iser_portals);
	if (rc == 0 && reactor_id(r) == 0)
		rc = ctl_start(r);
	if (rc) {
		log_err("reactor %u: cannot start: %s", reactor_id(r), strerror(-rc));
		d.start_error = rc;
		reactors_stop();
		return;
	}
	if (reactor_id(r) == 0) {
		/* Portals listen: the pid file, the waiting parent, systemd. */
		if (reactor_stop_hook_add(r, notify_stopping, NULL))
			log_warn("no memory to tell systemd about the stop");
		daemon_started(0);
		notify_ready("serving");
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lichd [-c FILE] [-d] [-s] [--daemon] [--pidfile FILE] [--check]\n"
		"  -c, --config FILE   targets.conf to use (default " DEFAULT_CONF ")\n"
		"      --check         validate FILE and its backing stores, then exit\n"
		"  -d, --debug         log at debug level\n"
		"  -s, --syslog        log to syslog (daemon facility) instead of stderr\n"
		"  -D, --daemon        detach and log to syslog (default: foreground)\n"
		"  -p, --pidfile FILE  write the pid to FILE (locked: one lichd per FILE)\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this help\n");
}

/* Every connection is a descriptor, and the usual soft limit (1024) would
 * stop accepting short of a thousand sessions: take the hard limit, which
 * only root or the service manager (LimitNOFILE=) can raise. */
static void raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur > (1u << 20))        /* "unlimited": the kernel's nr_open */
		rl.rlim_cur = 1u << 20;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		log_warn("cannot raise the open file limit: %s", strerror(errno));
	else
		log_debug("open file limit raised to %llu", (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "debug", no_argument, NULL, 'd' },
		{ "syslog", no_argument, NULL, 's' },
		{ "daemon", no_argument, NULL, 'D' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct reactor_opts ro;
	struct iscsi_opts io;
	bool check = false;
	char err[512];
	int c, rc, use_syslog = 0;

	d.conf_path = DEFAULT_CONF;
	while ((c = getopt_long(argc, argv, "c:dsDp:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': d.conf_path = optarg; break;
		case 'k': check = true; break;
		case 'd': d.debug = true; break;
		case 's': use_syslog = 1; break;
		case 'D': d.daemonize = true; break;
		case 'p': d.pidfile = optarg; break;
		case 'V': printf("lichd %s\n", LICH_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 1;
	}
	log_init(d.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO, use_syslog);
	rc = conf_load(d.conf_path, &d.cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (!d.debug && d.cfg->log_level_set)
		log_set_level(d.cfg->log_level);
	if (check) {
		rc = check_config(d.cfg);
		if (rc == 0)
			printf("%s: OK\n", d.conf_path);
		conf_free(d.cfg);
		return rc ? 1 : 0;
	}
	if (check_config(d.cfg)) {
		conf_free(d.cfg);
		return 1;
	}
	if (d.pidfile) {
		pid_t holder;

		rc = daemon_pidfile_lock(d.pidfile, &holder);
		if (rc == -EAGAIN)
			fprintf(stderr, "lichd: %s is locked: lichd is already running (pid %ld)\n",
				d.pidfile, (long)holder);
		else if (rc)
			fprintf(stderr, "lichd: pid file %s: %s\n", d.pidfile, strerror(-rc));
		if (rc) {
			conf_free(d.cfg);
			return 1;
		}
	}
	/* Before any thread or hugepage mapping exists. */
	if (d.daemonize) {
		rc = daemon_detach();
		if (rc) {
			fprintf(stderr, "lichd: cannot detach: %s\n", strerror(-rc));
			goto out_conf;
		}
		/* Logging stays on the terminal's stderr until the reactors run. */
	}
	raise_nofile_limit();
	if (d.cfg->state_dir && mkdir(d.cfg->state_dir, 0755) && errno != EEXIST)
		log_warn("state-dir %s: %s (persistent reservations will fail)",
			 d.cfg->state_dir, strerror(errno));

	iscsi_opts_default(&io);
	io.nop_interval = d.cfg->nop_interval;
	io.nop_timeout = d.cfg->nop_timeout;
	io.shutdown_timeout = d.cfg->shutdown_timeout;
	rc = iscsi_init(&io);
	if (rc)
		goto out_conf;
	iscsi_set_config(d.cfg);
	ctl_stats_init(d.cfg->ncores);
	for (unsigned i = 0; i < d.cfg->ntargets; i++) {
		rc = add_target(d.cfg, &d.cfg->targets[i]);
		if (rc)
			goto out_iscsi;
	}
	rc = tcp_portals_open(d.cfg->portals, d.cfg->nportals, &d.portals);
	if (rc)
		goto out_iscsi;
	if (d.cfg->n_iser_portals) {
		rc = iser_portals_open(d.cfg->iser_portals, d.cfg->n_iser_portals,
				       &d.iser_portals);
		if (rc)
			goto out_portals;
	}
	rc = ctl_open(d.cfg, &ctl_hooks_lichd);
	if (rc)
		goto out_portals;

	memset(&ro, 0, sizeof(ro));
	ro.ncores = d.cfg->ncores;
	memcpy(ro.cores, d.cfg->cores, sizeof(ro.cores));
	ro.mode = d.cfg->poll_mode;
	ro.mem_limit = d.cfg->memory_limit;
	bdev_uring_set_sqpoll(d.cfg->uring_sqpoll);
	rc = reactors_init(&ro);
	if (rc) {
		log_err("cannot set up reactors: %s", strerror(-rc));
		goto out_portals;
	}
	reactors_set_reload_hook(reload, NULL);
	/* Detached: start-up errors up to here were seen on the terminal; from
	 * here on (threads) lichd logs to syslog. */
	if (d.daemonize)
		log_init(d.debug ? LOG_LVL_DEBUG : log_get_level(), 1);
	log_info("lichd %s: %u targets, %u reactors", LICH_VERSION, d.cfg->ntargets,
		 ro.ncores ? ro.ncores : 1);
	rc = reactors_run(start_reactor, NULL);
	if (rc == 0)
		rc = d.start_error;
	log_info("lichd: stopped");
out_portals:
	ctl_close();
	tcp_portals_close(d.portals);
	iser_portals_close(d.iser_portals);
out_iscsi:
	iscsi_fini();
	for (unsigned i = 0; i < graveyard.n; i++)
		bdev_close(graveyard.v[i]);
	free(graveyard.v);
	while (tl_index.n)
		free(tl_index.name[--tl_index.n]);
	free(tl_index.name);
	free(tl_index.tl);
	ctl_stats_fini();
out_conf:
	conf_free(d.cfg);
	daemon_started(rc ? 1 : 0);   /* a failed start: tell the waiting parent */
	daemon_pidfile_remove();
	return rc ? 1 : 0;
}
