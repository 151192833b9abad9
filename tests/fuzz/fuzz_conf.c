/* fuzz_conf.c — the targets.conf parser (conf_parse_string) and its value
 * parsers on arbitrary text. Inputs that mention "include" are skipped: an
 * include would read whatever files the fuzzer names (/dev/zero, /proc...),
 * which tests the file system rather than the parser.
 * Checks: a parsed config is self-consistent (LUNs sorted and unique, names
 * NUL-terminated) and frees cleanly; a failure leaves *out untouched and
 * writes a NUL-terminated message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

static void check_config(const struct config *c)
{
	for (unsigned i = 0; i < c->ntargets; i++) {
		const struct conf_target *t = &c->targets[i];

		if (!t->name || conf_find_target(c, t->name) != t)
			abort();
		for (unsigned j = 0; j < t->nluns; j++) {
			const struct conf_lun *l = &t->luns[j];

			if (j && l->lun <= t->luns[j - 1].lun)
				abort();
			if (memchr(l->vendor_id, 0, sizeof(l->vendor_id)) == NULL ||
			    memchr(l->product_id, 0, sizeof(l->product_id)) == NULL ||
			    memchr(l->product_rev, 0, sizeof(l->product_rev)) == NULL ||
			    memchr(l->scsi_sn, 0, sizeof(l->scsi_sn)) == NULL ||
			    memchr(l->scsi_id, 0, sizeof(l->scsi_id)) == NULL)
				abort();
			if (l->path)
				(void)strlen(l->path);
		}
		for (unsigned j = 0; j < t->n_initiator_addresses; j++)
			(void)strlen(t->initiator_addresses[j]);
		for (unsigned j = 0; j < t->n_initiator_names; j++)
			(void)strlen(t->initiator_names[j]);
		for (unsigned j = 0; j < t->n_incoming; j++)
			(void)(strlen(t->incoming[j].user) + strlen(t->incoming[j].secret));
	}
	if (c->ncores > REACTOR_MAX)
		abort();
	for (unsigned i = 0; i < c->nportals; i++)
		if (memchr(c->portals[i].host, 0, sizeof(c->portals[i].host)) == NULL)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct config *c = (struct config *)(uintptr_t)1;   /* must stay untouched on error */
	char err[256];

	memcpy(text, data, size);
	text[size] = '\0';
	if (strcasestr(text, "include")) {
		free(text);
		return 0;
	}
	err[0] = 'x';
	if (conf_parse_string(text, "fuzz.conf", &c, err, sizeof(err)) == 0) {
		check_config(c);
		conf_free(c);
	} else {
		if (c != (struct config *)(uintptr_t)1 || !memchr(err, 0, sizeof(err)))
			abort();
	}

	/* the value parsers on the first line */
	char *nl = strchr(text, '\n');
	if (nl)
		*nl = '\0';
	uint64_t sz;
	int cores[REACTOR_MAX];
	unsigned n = 0;
	struct conf_portal portal;

	conf_parse_size(text, &sz);
	if (conf_parse_cpulist(text, cores, REACTOR_MAX, &n) == 0 && n > REACTOR_MAX)
		abort();
	memset(&portal, 0, sizeof(portal));
	conf_parse_portal(text, &portal);
	free(text);
	return 0;
}
