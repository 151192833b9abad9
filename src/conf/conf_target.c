/* conf_target.c — closing a <target>: numbering its LUNs, resolving each
 * LUN's settings from its block, the target level and the global level
 * (innermost wins), and handing the finished target to the config.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "conf_int.h"

int conf_lun_open(struct conf_parser *p, const char *kind, const char *path,
		  const struct conf_where *at)
{
	if (conf_grow(&p->pl, p->npl, sizeof(*p->pl)))
		return conf_oom(p, at);
	struct conf_pending_lun *l = &p->pl[p->npl];
	memset(l, 0, sizeof(*l));
	l->path = strdup(path);
	if (!l->path)
		return conf_oom(p, at);
	l->direct = strcasecmp(kind, "direct-store") == 0;
	l->at = *at;
	p->npl++;
	if (l->direct)
		log_info("%s:%d: direct-store %s is served like backing-store (lich does not "
			 "copy the device's INQUIRY data)", at->file, at->line, path);
	return 0;
}

/* Numbers the LUNs without "lun N": first free number from 1 up, all
 * backing-stores before all direct-stores (tgt-admin's order). */
static int number_luns(struct conf_parser *p)
{
	uint8_t used[CONF_LUN_MAX / 8 + 1];
	unsigned next = 1;

	memset(used, 0, sizeof(used));
	for (unsigned i = 0; i < p->npl; i++)
		if (p->pl[i].lun_at.line)
			used[p->pl[i].lun / 8] |= (uint8_t)(1u << (p->pl[i].lun % 8));
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < p->npl; i++) {
			struct conf_pending_lun *l = &p->pl[i];

			if (l->lun_at.line || l->direct != (pass == 1))
				continue;
			while (next <= CONF_LUN_MAX && (used[next / 8] & (1u << (next % 8))))
				next++;
			if (next > CONF_LUN_MAX)
				return conf_fail(p, &l->at, "no LUN number left in <target %s>",
						 p->cur.name);
			l->lun = next;
			used[next / 8] |= (uint8_t)(1u << (next % 8));
		}
	}
	return 0;
}

/* The innermost scope that set key lk, or NULL for the default. */
static const struct conf_lun_opts *pick(const struct conf_parser *p,
					const struct conf_pending_lun *l, int lk)
{
	if (l->o.at[lk].line)
		return &l->o;
	if (p->topts.at[lk].line)
		return &p->topts;
	if (p->gopts.at[lk].line)
		return &p->gopts;
	return NULL;
}

static int resolve_lun(struct conf_parser *p, const struct conf_pending_lun *l,
		       struct conf_lun *out)
{
	const struct conf_lun_opts *s;
	bool ram_prefix = strncmp(l->path, "ram:", 4) == 0;

	memset(out, 0, sizeof(*out));
	out->lun = l->lun;
	out->line = l->at.line;
	out->bs_type = (s = pick(p, l, LK_BS_TYPE)) ? s->bs_type : BS_URING;
	if (ram_prefix) {
		if (l->o.at[LK_BS_TYPE].line && l->o.bs_type != BS_RAM)
			return conf_fail(p, &l->o.at[LK_BS_TYPE], "bs-type contradicts the RAM "
					 "backing store '%s'", l->path);
		out->bs_type = BS_RAM;
	}
	out->size = (s = pick(p, l, LK_SIZE)) ? s->size : 0;
	out->block_size = (s = pick(p, l, LK_BLOCK_SIZE)) ? s->block_size : 512;
	out->write_cache = (s = pick(p, l, LK_WRITE_CACHE)) ? s->write_cache : true;
	out->readonly = (s = pick(p, l, LK_READONLY)) ? s->readonly : false;
	strcpy(out->vendor_id, (s = pick(p, l, LK_VENDOR_ID)) ? s->vendor_id : "LICH");
	strcpy(out->product_id, (s = pick(p, l, LK_PRODUCT_ID)) ? s->product_id : "VIRTUAL-DISK");
	strcpy(out->product_rev, (s = pick(p, l, LK_PRODUCT_REV)) ? s->product_rev : "0001");
	strcpy(out->scsi_sn, (s = pick(p, l, LK_SCSI_SN)) ? s->scsi_sn : "");
	strcpy(out->scsi_id, (s = pick(p, l, LK_SCSI_ID)) ? s->scsi_id : "");
	if (out->bs_type == BS_RAM && out->size == 0)
		return conf_fail(p, &l->at, "RAM LUN '%s' needs a size (e.g. size 64M)", l->path);
	if (out->size % out->block_size)
		return conf_fail(p, &l->at, "size %" PRIu64 " of '%s' is not a multiple of "
				 "block-size %u", out->size, l->path, out->block_size);
	/* a RAM LUN keeps only its name: what follows "ram:", or the path given */
	const char *name = out->bs_type != BS_RAM ? l->path : ram_prefix ? l->path + 4 : l->path;
	if (*name && !(out->path = strdup(name)))
		return conf_oom(p, &l->at);
	return 0;
}

static int lun_cmp(const void *a, const void *b)
{
	const struct conf_lun *x = a, *y = b;

	return x->lun < y->lun ? -1 : x->lun > y->lun;
}

int conf_target_finish(struct conf_parser *p)
{
	struct conf_target *t = &p->cur;
	struct config *c = p->cfg;
	int rc;

	if (p->tlun_at.line) {
		if (p->npl != 1)
			return conf_fail(p, &p->tlun_at, "target-level 'lun' needs exactly one "
					 "backing-store in <target %s> (found %u); put 'lun' inside "
					 "<backing-store> blocks instead", t->name, p->npl);
		if (!p->pl[0].lun_at.line) {
			p->pl[0].lun = p->tlun;
			p->pl[0].lun_at = p->tlun_at;
		}
	}
	if ((rc = number_luns(p)))
		return rc;
	if (p->npl && !(t->luns = calloc(p->npl, sizeof(*t->luns))))
		return conf_oom(p, &p->cur_at);
	for (unsigned i = 0; i < p->npl; i++) {
		if ((rc = resolve_lun(p, &p->pl[i], &t->luns[t->nluns])))
			return rc;
		t->nluns++;
	}
	if (t->nluns > 1)
		qsort(t->luns, t->nluns, sizeof(*t->luns), lun_cmp);
	for (unsigned i = 0; t->outgoing && i < t->n_incoming; i++)
		if (strcmp(t->incoming[i].secret, t->outgoing->secret) == 0)
			log_warn("%s:%d: <target %s>: outgoinguser '%s' has the same secret as "
				 "incominguser '%s'; use a different secret for each direction",
				 p->outgoing_at.file, p->outgoing_at.line, t->name,
				 t->outgoing->user, t->incoming[i].user);

	if (conf_grow(&c->targets, c->ntargets, sizeof(*c->targets)) ||
	    conf_grow(&p->target_at, c->ntargets, sizeof(*p->target_at)))
		return conf_oom(p, &p->cur_at);
	t->tid = c->ntargets + 1;
	p->target_at[c->ntargets] = p->cur_at;
	c->targets[c->ntargets++] = *t;
	memset(t, 0, sizeof(*t));
	conf_pending_clear(p);
	p->depth = D_TOP;
	return 0;
}

void conf_target_clear(struct conf_target *t)
{
	for (unsigned i = 0; i < t->nluns; i++)
		free(t->luns[i].path);
	free(t->luns);
	for (unsigned i = 0; i < t->n_initiator_addresses; i++)
		free(t->initiator_addresses[i]);
	free(t->initiator_addresses);
	for (unsigned i = 0; i < t->n_initiator_names; i++)
		free(t->initiator_names[i]);
	free(t->initiator_names);
	for (unsigned i = 0; i < t->n_incoming; i++) {
		free(t->incoming[i].user);
		free(t->incoming[i].secret);
	}
	free(t->incoming);
	if (t->outgoing) {
		free(t->outgoing->user);
		free(t->outgoing->secret);
		free(t->outgoing);
	}
	free(t->name);
	memset(t, 0, sizeof(*t));
}

void conf_pending_clear(struct conf_parser *p)
{
	for (unsigned i = 0; i < p->npl; i++)
		free(p->pl[i].path);
	free(p->pl);
	p->pl = NULL;
	p->npl = 0;
	memset(&p->topts, 0, sizeof(p->topts));
	memset(&p->tlun_at, 0, sizeof(p->tlun_at));
	memset(&p->outgoing_at, 0, sizeof(p->outgoing_at));
	p->tlun = 0;
	p->blk_kind = NULL;
}
