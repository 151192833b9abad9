/* conf_write.c — a config back to targets.conf text (lichctl save, and the
 * deep copy conf_dup() that runtime edits go through).
 *
 * A key added to struct config must be written here too, or lichctl's edits
 * (which go through conf_dup) and "save" would reset it to its default.
 *
 * The text is written so that conf_parse_string() gives back an equal config:
 * every LUN is a <backing-store> block with its number and all its settings
 * spelled out (nothing relies on inheritance or automatic numbering), and a
 * value is quoted when the parser would otherwise cut it (white space, '#',
 * a leading '=' or '"'). A value that would need quotes but holds a '"'
 * cannot be written: -EINVAL.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "conf_int.h"

struct out {
	char *buf;
	size_t len, cap;
	int err;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = -EINVAL;
			return;
		}
		if (o->buf && o->len + (size_t)n < o->cap) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap ? o->cap : 4096;
		while (cap <= o->len + (size_t)n)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (!b) {
			o->err = -ENOMEM;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
}

/* A value as the parser reads it back: bare, or in double quotes. */
static void put_value(struct out *o, const char *v)
{
	bool quote = !*v || *v == '=' || *v == '"' || strpbrk(v, " \t#") != NULL;

	if (!quote) {
		put(o, "%s", v);
		return;
	}
	if (strchr(v, '"')) {
		o->err = -EINVAL;
		return;
	}
	put(o, "\"%s\"", v);
}

static void put_key(struct out *o, const char *indent, const char *key, const char *v)
{
	put(o, "%s%s ", indent, key);
	put_value(o, v);
	put(o, "\n");
}

static void put_portal(struct out *o, const char *key, const struct conf_portal *p)
{
	if (p->family == AF_INET6)
		put(o, "%s [%s]:%u\n", key, p->host, p->port);
	else
		put(o, "%s %s:%u\n", key, p->host, p->port);
}

static void put_account(struct out *o, const char *indent, const char *key,
			const struct conf_account *a)
{
	put(o, "%s%s ", indent, key);
	put_value(o, a->user);
	put(o, " ");
	put_value(o, a->secret);
	put(o, "\n");
}

static const char *bs_type_name(enum bs_type t)
{
	return t == BS_RAM ? "ram" : t == BS_NVME ? "nvme" : "uring";
}

static void put_lun(struct out *o, const struct conf_lun *l)
{
	char path[4200];

	if (l->bs_type == BS_RAM)
		snprintf(path, sizeof(path), "ram:%s", l->path ? l->path : "");
	else
		snprintf(path, sizeof(path), "%s", l->path ? l->path : "");
	put(o, "\t<backing-store ");
	put_value(o, path);
	put(o, ">\n");
	put(o, "\t\tlun %u\n", l->lun);
	put(o, "\t\tbs-type %s\n", bs_type_name(l->bs_type));
	if (l->size)
		put(o, "\t\tsize %" PRIu64 "\n", l->size);
	put(o, "\t\tblock-size %u\n", l->block_size);
	put(o, "\t\twrite-cache %s\n", l->write_cache ? "on" : "off");
	put(o, "\t\treadonly %s\n", l->readonly ? "on" : "off");
	put_key(o, "\t\t", "vendor_id", l->vendor_id);
	put_key(o, "\t\t", "product_id", l->product_id);
	put_key(o, "\t\t", "product_rev", l->product_rev);
	if (l->scsi_sn[0])
		put_key(o, "\t\t", "scsi_sn", l->scsi_sn);
	if (l->scsi_id[0])
		put_key(o, "\t\t", "scsi_id", l->scsi_id);
	put(o, "\t</backing-store>\n");
}

static void put_target(struct out *o, const struct conf_target *t)
{
	put(o, "\n<target %s>\n", t->name);
	for (unsigned i = 0; i < t->n_initiator_addresses; i++)
		put(o, "\tinitiator-address %s\n", t->initiator_addresses[i]);
	for (unsigned i = 0; i < t->n_initiator_names; i++)
		put(o, "\tinitiator-name %s\n", t->initiator_names[i]);
	for (unsigned i = 0; i < t->n_incoming; i++)
		put_account(o, "\t", "incominguser", &t->incoming[i]);
	if (t->outgoing)
		put_account(o, "\t", "outgoinguser", t->outgoing);
	for (unsigned i = 0; i < t->nluns; i++)
		put_lun(o, &t->luns[i]);
	put(o, "</target>\n");
}

static void put_globals(struct out *o, const struct config *c)
{
	static const char *const modes[] = { "sleep", "adaptive", "busy" };
	static const char *const levels[] = { "error", "warn", "info", "debug" };

	for (unsigned i = 0; i < c->nportals; i++)
		put_portal(o, "portal", &c->portals[i]);
	for (unsigned i = 0; i < c->n_iser_portals; i++)
		put_portal(o, "iser-portal", &c->iser_portals[i]);
	put(o, "cores ");
	for (unsigned i = 0; i < c->ncores; i++)
		put(o, "%s%d", i ? "," : "", c->cores[i]);
	put(o, "\n");
	put(o, "memory-limit %zu\n", c->memory_limit);
	if ((unsigned)c->poll_mode < 3)
		put(o, "poll-mode %s\n", modes[c->poll_mode]);
	if (c->log_level_set && (unsigned)c->log_level < 4)
		put(o, "log-level %s\n", levels[c->log_level]);
	if (c->state_dir)
		put_key(o, "", "state-dir", c->state_dir);
	put(o, "nop-interval %u\n", c->nop_interval);
	put(o, "nop-timeout %u\n", c->nop_timeout);
	put(o, "shutdown-timeout %u\n", c->shutdown_timeout);
	put(o, "uring-sqpoll %s\n", c->uring_sqpoll ? "on" : "off");
	if (c->control_socket)
		put_key(o, "", "control-socket", c->control_socket);
	if (c->has_metrics)
		put_portal(o, "metrics", &c->metrics);
	for (unsigned i = 0; i < c->n_discovery_incoming; i++)
		put_account(o, "", "incomingdiscoveryuser", &c->discovery_incoming[i]);
	if (c->discovery_outgoing)
		put_account(o, "", "outgoingdiscoveryuser", c->discovery_outgoing);
}

int conf_format(const struct config *c, char **out)
{
	struct out o = { 0 };

	put(&o, "# targets.conf written by lichd (lichctl save)\n");
	put_globals(&o, c);
	for (unsigned i = 0; i < c->ntargets; i++)
		put_target(&o, &c->targets[i]);
	if (o.err) {
		free(o.buf);
		return o.err;
	}
	*out = o.buf;
	return 0;
}

#define DUP_NAME "(copy)"

int conf_dup(const struct config *c, struct config **out, char *err, size_t errlen)
{
	char *text;
	int rc = conf_format(c, &text);

	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "%s", rc == -EINVAL ?
				 "a value holds a '\"' and cannot be written" : "out of memory");
		return rc;
	}
	rc = conf_parse_string(text, DUP_NAME, out, err, errlen);
	free(text);
	if (rc) {
		/* "(copy):LINE: why": the line is in text the user never saw */
		size_t n = strlen(DUP_NAME);
		char *why = err && strncmp(err, DUP_NAME ":", n + 1) == 0 ? strstr(err + n, ": ") : NULL;
		if (why)
			memmove(err, why + 2, strlen(why + 2) + 1);
		return rc;
	}
	/* the copy stands for the same file (reload and save use its path) */
	free((*out)->path);
	(*out)->path = c->path ? strdup(c->path) : NULL;
	if (c->path && !(*out)->path) {
		conf_free(*out);
		*out = NULL;
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}
