/* conf_edit.c — the runtime edits of lichctl (target/LUN/ACL add and del) on
 * a config model. lichd edits a copy of the running config, validates it with
 * conf_dup() and applies the difference exactly as a SIGHUP reload does, so
 * the two compose. These functions only check what they need to find their
 * place; names, ranges and duplicates are checked by the parse in conf_dup().
 * Arrays are reallocated to their exact size (conf_dup() rebuilds them).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "conf_int.h"

static struct conf_target *find_target(struct config *c, const char *name)
{
	for (unsigned i = 0; i < c->ntargets; i++)
		if (strcasecmp(c->targets[i].name, name) == 0)
			return &c->targets[i];
	return NULL;
}

static int push_string(char ***arr, unsigned *n, const char *s)
{
	char *copy = strdup(s);
	char **v = copy ? realloc(*arr, (*n + 1) * sizeof(*v)) : NULL;

	if (!v) {
		free(copy);
		return -ENOMEM;
	}
	v[(*n)++] = copy;
	*arr = v;
	return 0;
}

static int remove_string(char **arr, unsigned *n, const char *s)
{
	for (unsigned i = 0; i < *n; i++) {
		if (strcasecmp(arr[i], s) == 0) {
			free(arr[i]);
			memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof(*arr));
			(*n)--;
			return 0;
		}
	}
	return -ENOENT;
}

void conf_lun_defaults(struct conf_lun *l)
{
	memset(l, 0, sizeof(*l));
	l->bs_type = BS_URING;
	l->block_size = 512;
	l->write_cache = true;
	strcpy(l->vendor_id, "LICH");
	strcpy(l->product_id, "VIRTUAL-DISK");
	strcpy(l->product_rev, "0001");
}

int conf_edit_target_add(struct config *c, const char *name)
{
	if (find_target(c, name))
		return -EEXIST;
	if (conf_check_iscsi_name(name))
		return -EINVAL;
	struct conf_target *v = realloc(c->targets, (c->ntargets + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->targets = v;
	struct conf_target *t = &v[c->ntargets];
	memset(t, 0, sizeof(*t));
	if (!(t->name = strdup(name)))
		return -ENOMEM;
	t->tid = c->ntargets + 1;
	c->ntargets++;
	return 0;
}

int conf_edit_target_del(struct config *c, const char *name)
{
	struct conf_target *t = find_target(c, name);

	if (!t)
		return -ENOENT;
	unsigned i = (unsigned)(t - c->targets);
	conf_target_clear(t);
	memmove(&c->targets[i], &c->targets[i + 1], (c->ntargets - i - 1) * sizeof(*t));
	c->ntargets--;
	return 0;
}

int conf_edit_lun_add(struct config *c, const char *target, const struct conf_lun *l)
{
	struct conf_target *t = find_target(c, target);

	if (!t)
		return -ENOENT;
	if (l->lun == 0 || l->lun > CONF_LUN_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < t->nluns; i++)
		if (t->luns[i].lun == l->lun)
			return -EEXIST;
	struct conf_lun *v = realloc(t->luns, (t->nluns + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->luns = v;
	/* keep luns[] sorted by number */
	unsigned pos = 0;
	while (pos < t->nluns && t->luns[pos].lun < l->lun)
		pos++;
	memmove(&v[pos + 1], &v[pos], (t->nluns - pos) * sizeof(*v));
	v[pos] = *l;
	v[pos].line = 0;
	v[pos].path = NULL;
	t->nluns++;
	if (l->path && !(v[pos].path = strdup(l->path))) {
		memmove(&v[pos], &v[pos + 1], (t->nluns - pos - 1) * sizeof(*v));
		t->nluns--;
		return -ENOMEM;
	}
	return 0;
}

int conf_edit_lun_del(struct config *c, const char *target, unsigned lun)
{
	struct conf_target *t = find_target(c, target);

	if (!t)
		return -ENOENT;
	for (unsigned i = 0; i < t->nluns; i++) {
		if (t->luns[i].lun == lun) {
			free(t->luns[i].path);
			memmove(&t->luns[i], &t->luns[i + 1], (t->nluns - i - 1) * sizeof(*t->luns));
			t->nluns--;
			return 0;
		}
	}
	return -ENOENT;
}

static bool is_iscsi_name(const char *who)
{
	return strncasecmp(who, "iqn.", 4) == 0 || strncasecmp(who, "eui.", 4) == 0 ||
	       strncasecmp(who, "naa.", 4) == 0;
}

int conf_edit_acl(struct config *c, const char *target, const char *who, bool add)
{
	struct conf_target *t = find_target(c, target);
	bool name = is_iscsi_name(who);
	char **arr;
	unsigned *n;

	if (!t)
		return -ENOENT;
	if (name) {
		if (conf_check_iscsi_name(who))
			return -EINVAL;
		n = &t->n_initiator_names;
		arr = t->initiator_names;
	} else {
		if (conf_check_addr_pattern(who))
			return -EINVAL;
		n = &t->n_initiator_addresses;
		arr = t->initiator_addresses;
	}
	if (!add)
		return remove_string(arr, n, who);
	for (unsigned i = 0; i < *n; i++)
		if (strcasecmp(arr[i], who) == 0)
			return -EEXIST;
	return push_string(name ? &t->initiator_names : &t->initiator_addresses, n, who);
}
