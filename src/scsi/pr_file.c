/* pr_file.c — the persistent reservation state file (APTPL).
 *
 * A small line-oriented text format, version 1:
 *
 *   lich-pr 1
 *   reg <key: 1-16 hex digits> <relative target port id> <all_tg_pt 0|1> <holder 0|1> <port>
 *   ...
 *   reservation <type: decimal, SPC-4 type code>
 *   end
 *
 * <port> is the canonical initiator port ("iqn...,i,0x<12 hex>") or a bare
 * iSCSI name (a format 00b TransportID registration); neither contains
 * spaces. The "reservation" line is present only when a reservation exists.
 * The file exists only while APTPL is active; the PR generation is not kept
 * (SPC-4: PRgeneration is zero after power on). "end" detects truncation.
 * Anything else — unknown lines, extra spaces, bad numbers, overlapping or
 * too many registrations, a reservation without a consistent holder — makes
 * the file corrupt (-EINVAL): the LU must not start with guessed state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hex.h"
#include "pr_int.h"

#define PR_FILE_MAGIC   "lich-pr 1"
#define PR_FILE_MAX     (1u << 20)   /* far above 256 registrations */
#define PR_FILE_TOKENS  7

/* ---- writing ---- */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_parent_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (len == 0)
		snprintf(dir, sizeof(dir), "/");
	else if (len < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)len, path);
	else
		return -ENAMETOOLONG;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int tmp_path(const char *path, char *out, size_t size)
{
	int n = snprintf(out, size, "%s.tmp", path);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static char *format_state(const struct pr_state *st, size_t *len)
{
	size_t cap = 64 + (size_t)st->nregs * (PR_PORT_STR + 64);
	char *buf = malloc(cap);
	size_t off = 0;

	if (!buf)
		return NULL;
	off += (size_t)snprintf(buf + off, cap - off, PR_FILE_MAGIC "\n");
	for (unsigned i = 0; i < st->nregs; i++) {
		const struct pr_reg *r = &st->regs[i];
		char port[PR_PORT_STR];
		pr_port_format(&r->port, port);
		off += (size_t)snprintf(buf + off, cap - off, "reg %016llx %u %d %d %s\n",
					(unsigned long long)r->key, r->rel_port_id,
					r->all_tg_pt, r->holder, port);
	}
	if (st->type != PR_TYPE_NONE)
		off += (size_t)snprintf(buf + off, cap - off, "reservation %u\n", st->type);
	off += (size_t)snprintf(buf + off, cap - off, "end\n");
	*len = off;
	return buf;
}

int pr_file_save(const char *path, const struct pr_state *st)
{
	char tmp[4096];
	size_t len;
	int rc = tmp_path(path, tmp, sizeof(tmp));

	if (rc < 0)
		return rc;
	char *text = format_state(st, &len);
	if (!text)
		return -ENOMEM;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = write_all(fd, text, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_parent_dir(path);
	else
		unlink(tmp);
out:
	free(text);
	return rc;
}

int pr_file_remove(const char *path)
{
	char tmp[4096];
	int rc = tmp_path(path, tmp, sizeof(tmp));

	if (rc < 0)
		return rc;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	if (unlink(tmp) < 0 && errno != ENOENT)
		return -errno;
	return fsync_parent_dir(path);
}

/* ---- reading ---- */

/* Parses a whole token as an unsigned number <= max. */
static int parse_num(const char *tok, int base, unsigned max_digits, uint64_t max,
		     uint64_t *out)
{
	size_t n = strlen(tok);
	uint64_t v = 0;

	if (n == 0 || n > max_digits)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = tok[i];
		int h = hex_digit(c);
		if (h < 0 || h >= base)
			return -EINVAL;
		unsigned d = (unsigned)h;
		if (v > (UINT64_MAX - d) / (uint64_t)base)
			return -EINVAL;
		v = v * (uint64_t)base + d;
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Splits line (modified in place) at single spaces; empty tokens (double,
 * leading or trailing spaces) are errors. Returns the count or -EINVAL. */
static int split(char *line, char *tok[PR_FILE_TOKENS])
{
	int n = 0;
	char *p = line;

	for (;;) {
		if (n == PR_FILE_TOKENS)
			return -EINVAL;
		tok[n++] = p;
		char *sp = strchr(p, ' ');
		if (!sp)
			break;
		*sp = '\0';
		p = sp + 1;
	}
	for (int i = 0; i < n; i++)
		if (tok[i][0] == '\0')
			return -EINVAL;
	return n;
}

static int parse_reg(char *tok[], int ntok, struct pr_state *st)
{
	uint64_t key, rel, atp, holder;
	struct pr_reg *r;

	if (ntok != 6 || st->nregs >= PR_MAX_REGS)
		return -EINVAL;
	if (parse_num(tok[1], 16, 16, UINT64_MAX, &key) < 0 || key == 0 ||
	    parse_num(tok[2], 10, 5, UINT16_MAX, &rel) < 0 ||
	    parse_num(tok[3], 10, 1, 1, &atp) < 0 ||
	    parse_num(tok[4], 10, 1, 1, &holder) < 0)
		return -EINVAL;
	r = &st->regs[st->nregs];
	memset(r, 0, sizeof(*r));
	if (pr_port_parse(tok[5], strlen(tok[5]), &r->port) < 0)
		return -EINVAL;
	r->key = key;
	r->rel_port_id = (uint16_t)rel;
	r->all_tg_pt = atp;
	r->holder = holder;
	st->nregs++;
	return 0;
}

/* Cross-line rules: distinct I_T nexuses, a holder consistent with the type. */
static int check_state(const struct pr_state *st)
{
	unsigned holders = 0;

	for (unsigned i = 0; i < st->nregs; i++) {
		const struct pr_reg *a = &st->regs[i];
		holders += a->holder;
		for (unsigned j = i + 1; j < st->nregs; j++) {
			const struct pr_reg *b = &st->regs[j];
			if (pr_port_overlap(&a->port, &b->port) &&
			    (a->all_tg_pt || b->all_tg_pt || a->rel_port_id == b->rel_port_id))
				return -EINVAL;
		}
	}
	if (st->type == PR_TYPE_NONE)
		return holders == 0 ? 0 : -EINVAL;
	if (pr_type_all_regs(st->type))
		return holders == 0 && st->nregs > 0 ? 0 : -EINVAL;
	return holders == 1 ? 0 : -EINVAL;
}

static int parse_state(char *text, size_t len, struct pr_state *st)
{
	bool seen_res = false, seen_end = false;
	char *p = text, *end = text + len;
	unsigned lineno = 0;

	memset(st, 0, offsetof(struct pr_state, regs));
	if (len == 0 || text[len - 1] != '\n' || memchr(text, '\0', len))
		return -EINVAL;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *tok[PR_FILE_TOKENS];
		*nl = '\0';
		char *line = p;
		p = nl + 1;
		if (seen_end)               /* nothing may follow "end" */
			return -EINVAL;
		if (lineno++ == 0) {
			if (strcmp(line, PR_FILE_MAGIC) != 0)
				return -EINVAL;
			continue;
		}
		int ntok = split(line, tok);
		if (ntok < 0)
			return -EINVAL;
		if (strcmp(tok[0], "reg") == 0) {
			if (seen_res || parse_reg(tok, ntok, st) < 0)
				return -EINVAL;
		} else if (strcmp(tok[0], "reservation") == 0) {
			uint64_t type;
			if (seen_res || ntok != 2 ||
			    parse_num(tok[1], 10, 2, 15, &type) < 0 || !pr_type_valid((unsigned)type))
				return -EINVAL;
			st->type = (uint8_t)type;
			seen_res = true;
		} else if (strcmp(tok[0], "end") == 0 && ntok == 1) {
			seen_end = true;
		} else {
			return -EINVAL;
		}
	}
	if (!seen_end)
		return -EINVAL;
	st->aptpl = true;
	return check_state(st);
}

int pr_file_load(const char *path, struct pr_state *st)
{
	struct stat sb;
	int rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > PR_FILE_MAX) {
		rc = -EINVAL;
		goto out_close;
	}
	size_t size = (size_t)sb.st_size, got = 0;
	char *text = malloc(size + 1);
	if (!text) {
		rc = -ENOMEM;
		goto out_close;
	}
	while (got < size) {
		ssize_t n = read(fd, text + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EINVAL;   /* shrank under us */
			break;
		}
		got += (size_t)n;
	}
	if (rc == 0)
		rc = parse_state(text, size, st);
	free(text);
out_close:
	close(fd);
	return rc;
}
