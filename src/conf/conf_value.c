/* conf_value.c — value syntax of targets.conf: sizes, CPU lists, portals,
 * iSCSI names, initiator address patterns and the access check built on them.
 * Nothing here keeps state; the line parser (conf.c) calls these.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "conf_int.h"

#define DEFAULT_ISCSI_PORT 3260

const char *conf_parse_uint(const char *s, unsigned max, unsigned *out)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return "not a number";
	for (; isdigit((unsigned char)*s); s++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return "out of range";
	}
	if (*s)
		return "not a number";
	*out = (unsigned)v;
	return NULL;
}

const char *conf_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "on", "true" };
	static const char *const no[] = { "0", "no", "off", "false" };

	for (unsigned i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return NULL;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return NULL;
		}
	}
	return "expected 0/1, yes/no or on/off";
}

int conf_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	switch (toupper((unsigned char)*s)) {
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	case '\0': break;
	default: return -EINVAL;
	}
	if (shift) {
		s++;
		/* "64M", "64MB" and "64MiB" all mean 64 * 2^20. */
		if (*s == 'i' && (s[1] == 'B' || s[1] == 'b'))
			s += 2;
		else if (*s == 'B' || *s == 'b')
			s++;
	}
	if (*s)
		return -EINVAL;
	if (v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* One CPU number, below CPU_SETSIZE (what sched_setaffinity can name). */
static int cpu_num(const char **pp, unsigned *out)
{
	const char *p = *pp;
	unsigned v = 0;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v >= CPU_SETSIZE)
			return -EINVAL;
	}
	*pp = p;
	*out = v;
	return 0;
}

int conf_parse_cpulist(const char *s, int *cores, unsigned max, unsigned *n)
{
	uint8_t seen[CPU_SETSIZE / 8];
	unsigned count = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	memset(seen, 0, sizeof(seen));
	for (;;) {
		unsigned first, last, stride = 1;

		if (cpu_num(&p, &first))
			return -EINVAL;
		last = first;
		if (*p == '-') {
			p++;
			if (cpu_num(&p, &last) || last < first)
				return -EINVAL;
			if (*p == ':') {   /* "0-7:2" as in the kernel's cpulist syntax */
				p++;
				if (cpu_num(&p, &stride) || stride == 0)
					return -EINVAL;
			}
		}
		for (unsigned c = first; c <= last; c += stride) {
			if (seen[c / 8] & (1u << (c % 8)))
				return -EINVAL;   /* one reactor per CPU */
			if (count == max)
				return -E2BIG;
			seen[c / 8] |= (uint8_t)(1u << (c % 8));
			cores[count++] = (int)c;
		}
		if (*p == '\0')
			break;
		if (*p != ',')
			return -EINVAL;
		p++;
	}
	*n = count;
	return 0;
}

const char *conf_portal_parse(const char *s, struct conf_portal *out)
{
	char host[64];
	const char *port = NULL;
	unsigned char bin[sizeof(struct in6_addr)];
	size_t len;
	int family;

	if (!s || !*s)
		return "empty portal";
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end)
			return "missing ']' after the IPv6 address";
		len = (size_t)(end - s - 1);
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return "expected ':PORT' after ']'";
		s++;
		family = AF_INET6;
	} else {
		const char *colon = strchr(s, ':');

		if (colon && strchr(colon + 1, ':'))
			return "an IPv6 address must be in brackets, e.g. [::1]:3260";
		len = colon ? (size_t)(colon - s) : strlen(s);
		if (colon)
			port = colon + 1;
		family = AF_INET;
	}
	if (len == 0)
		return "missing address";
	if (len >= sizeof(host))
		return "address too long";
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(family, host, bin) != 1)
		return family == AF_INET ? "not a numeric IPv4 address" :
					   "not a numeric IPv6 address";
	unsigned p = DEFAULT_ISCSI_PORT;
	if (port && (conf_parse_uint(port, 65535, &p) || p == 0))
		return "port must be a number from 1 to 65535";
	memset(out, 0, sizeof(*out));
	if (!inet_ntop(family, bin, out->host, sizeof(out->host)))
		return "address too long";
	out->family = family;
	out->port = (uint16_t)p;
	return NULL;
}

int conf_parse_portal(const char *s, struct conf_portal *out)
{
	struct conf_portal p;

	if (conf_portal_parse(s, &p))
		return -EINVAL;
	*out = p;
	return 0;
}

/* An address as 16 bytes, IPv4 as its v4-mapped IPv6 form (::ffff:a.b.c.d)
 * so one prefix comparison covers both families. Brackets are allowed; a
 * zone ("%eth0") is dropped when `allow_zone`. */
static int addr_bytes(const char *s, size_t len, bool allow_zone,
		      uint8_t out[16], bool *v4)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in_addr a4;

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	char *zone = strchr(buf, '%');
	if (zone) {
		if (!allow_zone)
			return -EINVAL;
		*zone = '\0';
	}
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*v4 = true;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out) == 1) {
		*v4 = false;
		return 0;
	}
	return -EINVAL;
}

/* Pattern "ADDR[/PREFIX]" → address bytes and the number of leading bits
 * to compare in the mapped space (an IPv4 /24 compares 96 + 24 bits). */
static const char *pattern_bytes(const char *s, uint8_t out[16], unsigned *bits)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	bool v4;

	if (addr_bytes(s, alen, false, out, &v4))
		return "not a numeric IPv4 or IPv6 address";
	unsigned max = v4 ? 32 : 128, prefix = max;
	if (slash && conf_parse_uint(slash + 1, max, &prefix))
		return v4 ? "prefix length must be 0..32" : "prefix length must be 0..128";
	*bits = v4 ? 96 + prefix : prefix;
	return NULL;
}

const char *conf_check_addr_pattern(const char *s)
{
	uint8_t a[16];
	unsigned bits;

	if (strcasecmp(s, "ALL") == 0)
		return NULL;
	return pattern_bytes(s, a, &bits);
}

bool conf_addr_match(const char *pattern, const char *addr)
{
	uint8_t p[16], a[16];
	unsigned bits;
	bool v4;

	if (!pattern || !addr)
		return false;
	if (strcasecmp(pattern, "ALL") == 0)
		return true;
	if (pattern_bytes(pattern, p, &bits) || addr_bytes(addr, strlen(addr), true, a, &v4))
		return false;
	unsigned whole = bits / 8, rest = bits % 8;
	if (memcmp(p, a, whole) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((p[whole] & mask) != (a[whole] & mask))
			return false;
	}
	return true;
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return s[n] == '\0';
}

/* RFC 7143 4.2.7: after stringprep an iSCSI name holds only ASCII letters,
 * digits, '-', '.' and ':' (we accept upper case; names compare
 * case-insensitively). */
static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '.' || c == ':';
}

static const char *check_iqn(const char *s)
{
	const char *p = s + 4;   /* after "iqn." */

	/* yyyy-mm: the month the naming authority owned the domain */
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)p[i]))
			return "iqn name needs a date: iqn.YYYY-MM.reversed.domain";
	if (p[4] != '-' || !isdigit((unsigned char)p[5]) || !isdigit((unsigned char)p[6]) ||
	    p[7] != '.')
		return "iqn name needs a date: iqn.YYYY-MM.reversed.domain";
	int month = (p[5] - '0') * 10 + (p[6] - '0');
	if (month < 1 || month > 12)
		return "iqn date has a month outside 01..12";
	p += 8;
	/* reversed domain: labels of letters, digits and '-' */
	size_t label = 0;
	for (; *p && *p != ':'; p++) {
		if (*p == '.') {
			if (label == 0)
				return "iqn name has an empty domain label";
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-') {
			label++;
		} else {
			return "iqn domain may hold only letters, digits, '-' and '.'";
		}
	}
	if (label == 0)
		return "iqn name has an empty domain label";
	if (*p == ':') {
		p++;
		if (!*p)
			return "iqn name ends with ':'";
		for (; *p; p++)
			if (!name_char(*p))
				return "iSCSI names may hold only letters, digits, '-', '.' and ':'";
	}
	return NULL;
}

const char *conf_check_iscsi_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0)
		return "empty iSCSI name";
	if (len > CONF_ISCSI_NAME_MAX)
		return "iSCSI name longer than 223 bytes";
	if (strncasecmp(s, "iqn.", 4) == 0)
		return check_iqn(s);
	if (strncasecmp(s, "eui.", 4) == 0)
		return len == 4 + 16 && all_hex(s + 4, 16) ? NULL :
			"eui name must be 'eui.' and 16 hex digits";
	if (strncasecmp(s, "naa.", 4) == 0)
		return (len == 4 + 16 && all_hex(s + 4, 16)) ||
		       (len == 4 + 32 && all_hex(s + 4, 32)) ? NULL :
			"naa name must be 'naa.' and 16 or 32 hex digits";
	return "iSCSI name must start with iqn., eui. or naa.";
}

bool conf_target_allows(const struct conf_target *t, const char *initiator_name,
			const char *initiator_addr)
{
	if (t->n_initiator_names) {
		bool ok = false;

		for (unsigned i = 0; initiator_name && i < t->n_initiator_names && !ok; i++)
			ok = strcasecmp(t->initiator_names[i], initiator_name) == 0;
		if (!ok)
			return false;
	}
	if (t->n_initiator_addresses) {
		bool ok = false;

		for (unsigned i = 0; initiator_addr && i < t->n_initiator_addresses && !ok; i++)
			ok = conf_addr_match(t->initiator_addresses[i], initiator_addr);
		if (!ok)
			return false;
	}
	return true;
}

int conf_portal_sockaddr(const struct conf_portal *p, struct sockaddr_storage *ss,
			 socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (p->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(p->port);
		*len = sizeof(*s6);
		return inet_pton(AF_INET6, p->host, &s6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(p->port);
	*len = sizeof(*s4);
	return inet_pton(AF_INET, p->host, &s4->sin_addr) == 1 ? 0 : -EINVAL;
}

void conf_portal_text(const struct conf_portal *p, char *out, size_t n)
{
	snprintf(out, n, p->family == AF_INET6 ? "[%s]:%u" : "%s:%u", p->host, p->port);
}
