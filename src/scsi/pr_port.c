/* pr_port.c — iSCSI initiator port names and TransportIDs for reservations.
 *
 * A registration names an initiator port as the nexus spells it
 * ("iqn...,i,0x<isid>") or as a TransportID carries it (SPC-4 §7.6.4.6).
 * Both are parsed into struct pr_port so that two spellings of one port
 * (case, leading zeros of the ISID) compare equal.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/hex.h"
#include "pr_int.h"
#include "scsi/pr.h"

#define SEP     ",i,0x"
#define SEP_LEN 5
#define PROTO_ISCSI 0x5

static bool sep_at(const char *s)
{
	return s[0] == ',' && (s[1] == 'i' || s[1] == 'I') && s[2] == ',' &&
	       s[3] == '0' && (s[4] == 'x' || s[4] == 'X');
}

int pr_port_parse(const char *s, size_t len, struct pr_port *out)
{
	size_t name_len = len;

	memset(out, 0, sizeof(*out));
	/* The separator cannot be part of a name (',' is not a name byte), so
	 * the first one found is the only valid one. */
	for (size_t i = 0; i + SEP_LEN <= len; i++) {
		if (!sep_at(s + i))
			continue;
		size_t ndig = len - i - SEP_LEN;
		if (ndig == 0 || ndig > 12)
			return -EINVAL;
		uint64_t isid = 0;
		for (size_t k = i + SEP_LEN; k < len; k++) {
			int d = hex_digit(s[k]);
			if (d < 0)
				return -EINVAL;
			isid = isid << 4 | (uint64_t)d;
		}
		out->has_isid = true;
		out->isid = isid;
		name_len = i;
		break;
	}
	if (name_len == 0 || name_len >= PR_NAME_MAX)
		return -EINVAL;
	/* iSCSI names are UTF-8 (RFC 3722): refuse only what cannot be part
	 * of one and would break the state file's lines (controls, space). */
	for (size_t i = 0; i < name_len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == ',')
			return -EINVAL;
	}
	memcpy(out->name, s, name_len);
	out->name[name_len] = '\0';
	return 0;
}

void pr_port_format(const struct pr_port *p, char out[PR_PORT_STR])
{
	if (p->has_isid)
		snprintf(out, PR_PORT_STR, "%s" SEP "%012llx", p->name,
			 (unsigned long long)p->isid);
	else
		snprintf(out, PR_PORT_STR, "%s", p->name);
}

bool pr_port_equal(const struct pr_port *a, const struct pr_port *b)
{
	return strcasecmp(a->name, b->name) == 0 && a->has_isid == b->has_isid &&
	       (!a->has_isid || a->isid == b->isid);
}

bool pr_port_overlap(const struct pr_port *a, const struct pr_port *b)
{
	return strcasecmp(a->name, b->name) == 0 &&
	       (!a->has_isid || !b->has_isid || a->isid == b->isid);
}

bool pr_initiator_port_match(const char *registered, const char *port)
{
	struct pr_port r, p;

	if (!registered || !port ||
	    pr_port_parse(registered, strlen(registered), &r) < 0 ||
	    pr_port_parse(port, strlen(port), &p) < 0)
		return false;
	if (strcasecmp(r.name, p.name) != 0)
		return false;
	return !r.has_isid || (p.has_isid && r.isid == p.isid);
}

int pr_tid_parse(const uint8_t *buf, size_t len, struct pr_port *out,
		 size_t *used, size_t *bad)
{
	*bad = 0;
	if (len < 4)
		return -EINVAL;
	unsigned format = buf[0] >> 6;
	if ((buf[0] & 0x0f) != PROTO_ISCSI || (buf[0] & 0x30) || format > 1)
		return -EINVAL;
	size_t addl = (size_t)buf[2] << 8 | buf[3];
	*bad = 2;
	if (addl < PR_TID_MIN - 4 || addl % 4 || 4 + addl > len)
		return -EINVAL;
	*bad = 4;
	const char *str = (const char *)buf + 4;
	size_t n = strnlen(str, addl);
	if (n == addl)              /* not NUL terminated inside its length */
		return -EINVAL;
	if (pr_port_parse(str, n, out) < 0)
		return -EINVAL;
	if (out->has_isid != (format == 1))
		return -EINVAL;
	*used = 4 + addl;
	return 0;
}

size_t pr_tid_size(const struct pr_port *p)
{
	char s[PR_PORT_STR];

	pr_port_format(p, s);
	size_t addl = (strlen(s) + 1 + 3) & ~(size_t)3;
	if (addl < PR_TID_MIN - 4)
		addl = PR_TID_MIN - 4;
	return 4 + addl;
}

void pr_tid_write(const struct pr_port *p, uint8_t *out)
{
	char s[PR_PORT_STR];
	size_t size = pr_tid_size(p);

	pr_port_format(p, s);
	memset(out, 0, size);
	out[0] = (uint8_t)((p->has_isid ? 1u << 6 : 0) | PROTO_ISCSI);
	out[2] = (uint8_t)((size - 4) >> 8);
	out[3] = (uint8_t)(size - 4);
	memcpy(out + 4, s, strlen(s));
}
