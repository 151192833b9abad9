/* test_conf.c — targets.conf parser: tgt dialect, lich keys, includes,
 * error locations, value parsers, address matching and access rules. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"

#define NAME_A "iqn.2026-11.org.lich:a"

/* ---- helpers ---- */

static struct config *parse_ok(const char *text)
{
	struct config *c = NULL;
	char err[512] = "";
	int rc = conf_parse_string(text, "t.conf", &c, err, sizeof(err));

	if (rc != 0)
		fail_msg("parse failed (%d): %s", rc, err);
	assert_non_null(c);
	return c;
}

struct err_case {
	const char *text;
	const char *err;     /* the whole expected message */
};

static void expect_errors(const struct err_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct config *sentinel = (struct config *)(uintptr_t)0x1;
		struct config *c = sentinel;
		char err[512] = "";
		int rc = conf_parse_string(cases[i].text, "t.conf", &c, err, sizeof(err));

		if (rc != -EINVAL)
			fail_msg("case %zu: rc %d, want -EINVAL (err '%s')", i, rc, err);
		if (c != sentinel)
			fail_msg("case %zu: *out changed on error", i);
		if (strcmp(err, cases[i].err) != 0)
			fail_msg("case %zu:\n got  '%s'\n want '%s'", i, err, cases[i].err);
	}
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void rm_tree(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* stderr capture, to check what the parser logs */
struct capture {
	int saved;
	int fd;
	char path[64];
	char text[8192];
};

static void capture_start(struct capture *cap)
{
	strcpy(cap->path, "/tmp/lich-test-conf-XXXXXX");
	cap->fd = mkstemp(cap->path);
	assert_true(cap->fd >= 0);
	cap->saved = dup(STDERR_FILENO);
	assert_true(cap->saved >= 0);
	assert_int_equal(dup2(cap->fd, STDERR_FILENO), STDERR_FILENO);
}

static const char *capture_end(struct capture *cap)
{
	assert_int_equal(dup2(cap->saved, STDERR_FILENO), STDERR_FILENO);
	close(cap->saved);
	ssize_t n = pread(cap->fd, cap->text, sizeof(cap->text) - 1, 0);
	assert_true(n >= 0);
	cap->text[n] = '\0';
	close(cap->fd);
	unlink(cap->path);
	return cap->text;
}

static const struct conf_lun *find_lun(const struct conf_target *t, unsigned lun)
{
	for (unsigned i = 0; i < t->nluns; i++)
		if (t->luns[i].lun == lun)
			return &t->luns[i];
	return NULL;
}

/* ---- whole files ---- */

static const char tgt_file[] =
	"# A tgt-style file\n"
	"\n"
	"default-driver iscsi\n"
	"<target iqn.2008-09.com.example:server.target3>\n"
	"    backing-store /dev/vg/one\t# Becomes LUN 1\n"
	"    backing-store /dev/vg/two\t# Becomes LUN 2\n"
	"    write-cache off\n"
	"    vendor_id MyCo\n"
	"</target>\n"
	"\n"
	"<target iqn.2008-09.com.example:server.target5>\n"
	"    <direct-store /dev/sdd>\n"
	"\tvendor_id VENDOR1\n"
	"\tlun 1\n"
	"    </direct-store>\n"
	"    <backing-store /dev/sdb1>\n"
	"\tvendor_id back1\n"
	"\tscsi_sn SERIAL\n"
	"\twrite-cache on\n"
	"\t# lun 3   (commented out: allocated automatically)\n"
	"    </backing-store>\n"
	"    <backing-store /dev/sdd1>\n"
	"\tvendor_id back2\n"
	"\tlun 15\n"
	"    </backing-store>\n"
	"    backing-store /dev/sde\n"
	"    write-cache off\n"
	"    scsi_sn multipath-10\n"
	"    product_id \"Shared Disk\"\n"
	"    readonly yes\n"
	"    block-size 4096\n"
	"    initiator-address 192.168.100.1\n"
	"    initiator-address 192.168.200.0/24\n"
	"    initiator-name iqn.1994-05.com.redhat:client1\n"
	"    incominguser user1 secretpass12\n"
	"    incominguser user2 \"secret pass 23\"\n"
	"    outgoinguser userA secretpassA1\n"
	"</target>\n"
	"\n"
	"<target iqn.2008-09.com.example:server.target6>\n"
	"    backing-store /dev/LVM/somedevice\n"
	"    lun 10\n"
	"</target>\n"
	"   <target eui.02004567A425678D>  \r\n"
	"  backing-store = ram:scratch\r\n"
	"  size = 64M\r\n"
	"  </target>\r\n"
	"<target naa.52004567BA64678D>\n"
	"</target>\n";

static void test_tgt_file(void **state)
{
	(void)state;
	struct config *c = parse_ok(tgt_file);

	assert_int_equal(c->ntargets, 5);
	/* target 3: single-line LUNs in file order, target-level keys apply */
	const struct conf_target *t = &c->targets[0];
	assert_string_equal(t->name, "iqn.2008-09.com.example:server.target3");
	assert_int_equal(t->tid, 1);
	assert_int_equal(t->line, 4);
	assert_int_equal(t->nluns, 2);
	assert_int_equal(t->luns[0].lun, 1);
	assert_string_equal(t->luns[0].path, "/dev/vg/one");
	assert_int_equal(t->luns[0].line, 5);
	assert_int_equal(t->luns[1].lun, 2);
	assert_string_equal(t->luns[1].path, "/dev/vg/two");
	for (unsigned i = 0; i < 2; i++) {
		assert_false(t->luns[i].write_cache);
		assert_string_equal(t->luns[i].vendor_id, "MyCo");
		assert_string_equal(t->luns[i].product_id, "VIRTUAL-DISK");
		assert_string_equal(t->luns[i].product_rev, "0001");
		assert_int_equal(t->luns[i].bs_type, BS_URING);
		assert_int_equal(t->luns[i].block_size, 512);
		assert_false(t->luns[i].readonly);
	}
	assert_int_equal(t->n_initiator_addresses, 0);
	assert_null(t->outgoing);

	/* target 5: explicit lun numbers, automatic ones fill from 1 up with
	 * backing-stores first, per-LUN keys override target-level ones */
	t = &c->targets[1];
	assert_int_equal(t->tid, 2);
	assert_int_equal(t->nluns, 4);
	for (unsigned i = 1; i < t->nluns; i++)
		assert_true(t->luns[i - 1].lun < t->luns[i].lun);
	const struct conf_lun *l = find_lun(t, 1);
	assert_non_null(l);
	assert_string_equal(l->path, "/dev/sdd");      /* direct-store with lun 1 */
	assert_string_equal(l->vendor_id, "VENDOR1");
	assert_false(l->write_cache);                  /* target level */
	assert_string_equal(l->scsi_sn, "multipath-10");
	l = find_lun(t, 2);
	assert_non_null(l);
	assert_string_equal(l->path, "/dev/sdb1");
	assert_string_equal(l->vendor_id, "back1");
	assert_string_equal(l->scsi_sn, "SERIAL");
	assert_true(l->write_cache);                   /* overridden in its block */
	assert_int_equal(l->line, 16);
	l = find_lun(t, 15);
	assert_non_null(l);
	assert_string_equal(l->path, "/dev/sdd1");
	assert_string_equal(l->vendor_id, "back2");
	assert_false(l->write_cache);
	l = find_lun(t, 3);
	assert_non_null(l);
	assert_string_equal(l->path, "/dev/sde");
	assert_string_equal(l->vendor_id, "LICH");     /* default: none at target level */
	for (unsigned i = 0; i < t->nluns; i++) {
		assert_string_equal(t->luns[i].product_id, "Shared Disk");
		assert_true(t->luns[i].readonly);
		assert_int_equal(t->luns[i].block_size, 4096);
	}
	assert_int_equal(t->n_initiator_addresses, 2);
	assert_string_equal(t->initiator_addresses[0], "192.168.100.1");
	assert_string_equal(t->initiator_addresses[1], "192.168.200.0/24");
	assert_int_equal(t->n_initiator_names, 1);
	assert_string_equal(t->initiator_names[0], "iqn.1994-05.com.redhat:client1");
	assert_int_equal(t->n_incoming, 2);
	assert_string_equal(t->incoming[0].user, "user1");
	assert_string_equal(t->incoming[0].secret, "secretpass12");
	assert_string_equal(t->incoming[1].user, "user2");
	assert_string_equal(t->incoming[1].secret, "secret pass 23");
	assert_non_null(t->outgoing);
	assert_string_equal(t->outgoing->user, "userA");
	assert_string_equal(t->outgoing->secret, "secretpassA1");

	/* target 6: tgt's target-level lun with one backing store */
	t = &c->targets[2];
	assert_int_equal(t->nluns, 1);
	assert_int_equal(t->luns[0].lun, 10);

	/* eui name, CRLF lines, "key = value", ram: prefix */
	t = &c->targets[3];
	assert_string_equal(t->name, "eui.02004567A425678D");
	assert_int_equal(t->nluns, 1);
	assert_int_equal(t->luns[0].bs_type, BS_RAM);
	assert_string_equal(t->luns[0].path, "scratch");
	assert_int_equal(t->luns[0].size, 64u << 20);

	/* a target without LUNs is fine */
	assert_int_equal(c->targets[4].nluns, 0);
	assert_null(c->targets[4].luns);

	assert_ptr_equal(conf_find_target(c, "IQN.2008-09.COM.EXAMPLE:SERVER.TARGET6"), &c->targets[2]);
	assert_ptr_equal(conf_find_target(c, "naa.52004567ba64678d"), &c->targets[4]);
	assert_null(conf_find_target(c, "iqn.2008-09.com.example:nope"));
	assert_null(conf_find_target(c, NULL));
	assert_string_equal(c->path, "t.conf");
	conf_free(c);
}

static void test_defaults(void **state)
{
	(void)state;
	struct config *c = parse_ok("# nothing but a comment\n\n   \n<target " NAME_A ">\n"
				    "backing-store /x\n</target>\n");

	assert_int_equal(c->nportals, 1);
	assert_string_equal(c->portals[0].host, "0.0.0.0");
	assert_int_equal(c->portals[0].port, 3260);
	assert_int_equal(c->portals[0].family, AF_INET);
	assert_int_equal(c->n_iser_portals, 0);
	assert_int_equal(c->ncores, 1);
	assert_int_equal(c->cores[0], 0);
	assert_int_equal(c->memory_limit, (size_t)1 << 30);
	assert_int_equal(c->poll_mode, POLL_ADAPTIVE);
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	assert_false(c->log_level_set);
	assert_string_equal(c->state_dir, "/var/lib/lich");
	assert_int_equal(c->nop_interval, 30);
	assert_int_equal(c->nop_timeout, 30);
	assert_int_equal(c->n_discovery_incoming, 0);
	assert_null(c->discovery_outgoing);
	assert_int_equal(c->ntargets, 1);
	const struct conf_lun *l = &c->targets[0].luns[0];
	assert_int_equal(l->lun, 1);
	assert_int_equal(l->bs_type, BS_URING);
	assert_int_equal(l->size, 0);
	assert_int_equal(l->block_size, 512);
	assert_true(l->write_cache);
	assert_false(l->readonly);
	assert_string_equal(l->vendor_id, "LICH");
	assert_string_equal(l->product_id, "VIRTUAL-DISK");
	assert_string_equal(l->product_rev, "0001");
	assert_string_equal(l->scsi_sn, "");
	assert_string_equal(l->scsi_id, "");
	conf_free(c);
	conf_free(NULL);
}

static void test_globals(void **state)
{
	(void)state;
	struct config *c = parse_ok(
		"portal 10.0.0.1:3261\n"
		"portal [::1]\n"
		"portal [2001:DB8:0::1]:860   # trailing comment\n"
		"iser-portal 192.168.5.5:3260\n"
		"cores 0-2,5\n"
		"memory-limit 512M\n"
		"poll-mode BUSY\n"
		"log-level debug\n"
		"state-dir \"/srv/lich state\"\n"
		"nop-interval 0\n"
		"nop-timeout 3600\n"
		"incomingdiscoveryuser disc1 discovery-secret\n"
		"incomingdiscoveryuser disc2 discovery-secret2\n"
		"outgoingdiscoveryuser lich lich-discovery\n");

	assert_int_equal(c->nportals, 3);
	assert_string_equal(c->portals[0].host, "10.0.0.1");
	assert_int_equal(c->portals[0].port, 3261);
	assert_int_equal(c->portals[0].line, 1);
	assert_string_equal(c->portals[1].host, "::1");
	assert_int_equal(c->portals[1].port, 3260);
	assert_int_equal(c->portals[1].family, AF_INET6);
	assert_string_equal(c->portals[2].host, "2001:db8::1");
	assert_int_equal(c->portals[2].port, 860);
	assert_int_equal(c->n_iser_portals, 1);
	assert_string_equal(c->iser_portals[0].host, "192.168.5.5");
	assert_int_equal(c->iser_portals[0].line, 4);
	assert_int_equal(c->ncores, 4);
	assert_int_equal(c->cores[0], 0);
	assert_int_equal(c->cores[2], 2);
	assert_int_equal(c->cores[3], 5);
	assert_int_equal(c->memory_limit, (size_t)512 << 20);
	assert_int_equal(c->poll_mode, POLL_BUSY);
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_true(c->log_level_set);
	assert_string_equal(c->state_dir, "/srv/lich state");
	assert_int_equal(c->nop_interval, 0);
	assert_int_equal(c->nop_timeout, 3600);
	assert_int_equal(c->n_discovery_incoming, 2);
	assert_string_equal(c->discovery_incoming[1].user, "disc2");
	assert_string_equal(c->discovery_incoming[1].secret, "discovery-secret2");
	assert_non_null(c->discovery_outgoing);
	assert_string_equal(c->discovery_outgoing->user, "lich");
	assert_int_equal(c->ntargets, 0);
	conf_free(c);

	c = parse_ok("poll-mode sleep\n");
	assert_int_equal(c->poll_mode, POLL_SLEEP);
	conf_free(c);
}

/* comments, quotes, continuation lines, "\#", case-insensitive keys */
static void test_lexical(void **state)
{
	(void)state;
	struct config *c = parse_ok(
		"<TARGET " NAME_A ">   # comment after a tag\n"
		"  Backing-Store /data/disk#1.img\n"          /* '#' inside a word stays */
		"  incominguser joe \\#notacomment12\n"
		"  incominguser ann \"with # hash\"\n"
		"  product_id \"A B\"  # quoted, then a comment\n"
		"  vendor_id \\\n"
		"      LONGVEND\n"
		"  scsi_id \"\"\n"
		"\t#  </target> in a comment does nothing\n"
		"</Target>\n");
	const struct conf_target *t = &c->targets[0];

	assert_int_equal(t->nluns, 1);
	assert_string_equal(t->luns[0].path, "/data/disk#1.img");
	assert_string_equal(t->incoming[0].secret, "#notacomment12");
	assert_string_equal(t->incoming[1].secret, "with # hash");
	assert_string_equal(t->luns[0].product_id, "A B");
	assert_string_equal(t->luns[0].vendor_id, "LONGVEND");
	assert_string_equal(t->luns[0].scsi_id, "");
	conf_free(c);
}

/* bs-type: global default, target, block (innermost wins); ram rules */
static void test_bs_type_scopes(void **state)
{
	(void)state;
	struct config *c = parse_ok(
		"bs-type ram\n"
		"<target iqn.2026-11.org.lich:g>\n"
		"  backing-store mem1\n"                /* global ram */
		"  size 16M\n"
		"</target>\n"
		"<target iqn.2026-11.org.lich:t>\n"
		"  bs-type aio\n"                       /* tgt's aio = uring */
		"  backing-store /f1\n"
		"  <backing-store /dev/ng0n1>\n"
		"    bs-type nvme\n"
		"  </backing-store>\n"
		"  <backing-store ram:>\n"               /* ram: with empty name */
		"    size 1M\n"
		"    block-size 4096\n"
		"  </backing-store>\n"
		"</target>\n");

	assert_int_equal(c->targets[0].luns[0].bs_type, BS_RAM);
	assert_string_equal(c->targets[0].luns[0].path, "mem1");
	assert_int_equal(c->targets[0].luns[0].size, 16u << 20);
	const struct conf_target *t = &c->targets[1];
	assert_int_equal(t->nluns, 3);
	assert_int_equal(find_lun(t, 1)->bs_type, BS_URING);
	assert_string_equal(find_lun(t, 1)->path, "/f1");
	assert_int_equal(find_lun(t, 2)->bs_type, BS_NVME);
	assert_int_equal(find_lun(t, 3)->bs_type, BS_RAM);
	assert_null(find_lun(t, 3)->path);
	assert_int_equal(find_lun(t, 3)->block_size, 4096);
	conf_free(c);
}

/* ---- errors, with their exact location ---- */

static void test_errors_structure(void **state)
{
	(void)state;
	static const struct err_case cases[] = {
		{ "# c\n<target " NAME_A ">\n  backing-store /a\n",
		  "t.conf:2: <target> block not closed (opened here)" },
		{ "<target " NAME_A ">\n\n  <backing-store /a>\n    lun 2\n",
		  "t.conf:3: <backing-store> block not closed (opened here)" },
		{ "<target " NAME_A ">\n</target>\n</target>\n",
		  "t.conf:3: stray </target> (no <target> is open)" },
		{ "\n</backing-store>\n",
		  "t.conf:2: stray </backing-store> (no <backing-store> is open)" },
		{ "<target " NAME_A ">\n</backing-store>\n",
		  "t.conf:2: stray </backing-store> (no <backing-store> is open)" },
		{ "<target " NAME_A ">\n<backing-store /a>\n</direct-store>\n",
		  "t.conf:3: </direct-store> does not match <backing-store> opened at t.conf:2" },
		{ "<target " NAME_A ">\n<backing-store /a>\n</target>\n",
		  "t.conf:3: </target> while <backing-store> opened at t.conf:2 is not closed" },
		{ "<target " NAME_A ">\n<target iqn.2026-11.org.lich:b>\n",
		  "t.conf:2: <target> inside <target " NAME_A "> opened at t.conf:1" },
		{ "<target " NAME_A ">\n<backing-store /a>\n<backing-store /b>\n",
		  "t.conf:3: <backing-store> inside <backing-store> opened at t.conf:2" },
		{ "<backing-store /a>\n", "t.conf:1: <backing-store> outside <target>" },
		{ "<target>\n", "t.conf:1: <target> needs an iSCSI name" },
		{ "<target " NAME_A ">\n<backing-store>\n",
		  "t.conf:2: <backing-store> needs a path" },
		{ "<lun 1>\n", "t.conf:1: unknown block <lun> (expected <target>, "
		  "<backing-store> or <direct-store>)" },
		{ "<target " NAME_A "\n",
		  "t.conf:1: malformed tag '<target " NAME_A "' (expected <NAME ARG> or </NAME>)" },
		{ "<target " NAME_A ">\n</target foo>\n",
		  "t.conf:2: malformed closing tag '</target foo>'" },
		{ "foo bar\n", "t.conf:1: unknown key 'foo'" },
		{ "\n\n<target " NAME_A ">\n  backing-store /a\n\n  foo 1\n</target>\n",
		  "t.conf:6: unknown key 'foo' in <target " NAME_A ">" },
		{ "<target " NAME_A ">\n<backing-store /dev/sdb>\nwrite_cache off\n",
		  "t.conf:3: unknown key 'write_cache' in <backing-store /dev/sdb>" },
		{ "= 3\n", "t.conf:1: line starts with '=' (expected 'key value')" },
		{ "<target " NAME_A ">\nportal 1.2.3.4\n",
		  "t.conf:2: 'portal' is a global key, not valid in <target " NAME_A ">" },
		{ "<target " NAME_A ">\n<backing-store /a>\ninitiator-address ALL\n",
		  "t.conf:3: 'initiator-address' is a target-level key, not valid in "
		  "<backing-store /a>" },
		{ "vendor_id X\n", "t.conf:1: 'vendor_id' is only valid inside <target>" },
		{ "backing-store /a\n", "t.conf:1: 'backing-store' is only valid inside <target>" },
		{ "<target " NAME_A ">\nbacking-store\n", "t.conf:2: 'backing-store' needs a value" },
		{ "cores 0\ncores 1\n", "t.conf:2: 'cores' given twice (first at t.conf:1)" },
		{ "<target " NAME_A ">\nvendor_id A\nvendor_id B\n",
		  "t.conf:3: 'vendor_id' given twice in <target " NAME_A "> (first at t.conf:2)" },
		{ "<target " NAME_A ">\n<backing-store /a>\nsize 1M\nsize 2M\n",
		  "t.conf:4: 'size' given twice in <backing-store /a> (first at t.conf:3)" },
		{ "<target " NAME_A ">\nproduct_id \"abc\n",
		  "t.conf:2: product_id: unterminated quote" },
		{ "<target " NAME_A ">\nincominguser \"joe secret12345\n",
		  "t.conf:2: 'incominguser' needs a user name and a secret: unterminated quote" },
	};
	expect_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_errors_names(void **state)
{
	(void)state;
	static const struct err_case cases[] = {
		{ "<target iqn.2026-13.org.lich:a>\n", "t.conf:1: bad target name "
		  "'iqn.2026-13.org.lich:a': iqn date has a month outside 01..12" },
		{ "<target iqn.26-11.org.lich:a>\n", "t.conf:1: bad target name "
		  "'iqn.26-11.org.lich:a': iqn name needs a date: iqn.YYYY-MM.reversed.domain" },
		{ "<target iqn.2026-11.org..lich>\n", "t.conf:1: bad target name "
		  "'iqn.2026-11.org..lich': iqn name has an empty domain label" },
		{ "<target iqn.2026-11.>\n", "t.conf:1: bad target name "
		  "'iqn.2026-11.': iqn name has an empty domain label" },
		{ "<target iqn.2026-11.org.lich:>\n", "t.conf:1: bad target name "
		  "'iqn.2026-11.org.lich:': iqn name ends with ':'" },
		{ "<target iqn.2026-11.org_x.lich:a>\n", "t.conf:1: bad target name "
		  "'iqn.2026-11.org_x.lich:a': iqn domain may hold only letters, digits, '-' and '.'" },
		{ "<target iqn.2026-11.org.lich:a b>\n", "t.conf:1: bad target name "
		  "'iqn.2026-11.org.lich:a b': iSCSI names may hold only letters, digits, '-', '.' and ':'" },
		{ "<target eui.0123>\n", "t.conf:1: bad target name 'eui.0123': "
		  "eui name must be 'eui.' and 16 hex digits" },
		{ "<target naa.0123456789abcdef01>\n", "t.conf:1: bad target name "
		  "'naa.0123456789abcdef01': naa name must be 'naa.' and 16 or 32 hex digits" },
		{ "<target disk1>\n", "t.conf:1: bad target name 'disk1': "
		  "iSCSI name must start with iqn., eui. or naa." },
		{ "<target " NAME_A ">\n</target>\n\n<target IQN.2026-11.ORG.LICH:A>\n",
		  "t.conf:4: duplicate target 'IQN.2026-11.ORG.LICH:A' (first defined at t.conf:1)" },
		{ "<target " NAME_A ">\ninitiator-name bob\n",
		  "t.conf:2: bad initiator-name 'bob': iSCSI name must start with iqn., eui. or naa." },
	};
	expect_errors(cases, sizeof(cases) / sizeof(cases[0]));

	/* 223 bytes is the limit */
	char name[300];
	strcpy(name, "<target iqn.2026-11.org.lich:");
	size_t n = strlen(name) - strlen("<target ");
	while (n < 223) {
		strcat(name, "x");
		n++;
	}
	strcat(name, ">\n</target>\n");
	struct config *c = parse_ok(name);
	assert_int_equal(strlen(c->targets[0].name), 223);
	conf_free(c);
	name[strlen(name) - strlen(">\n</target>\n")] = '\0';
	strcat(name, "y>\n</target>\n");
	char err[512];
	assert_int_equal(conf_parse_string(name, "t.conf", &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "t.conf:1: bad target name"));
	assert_non_null(strstr(err, "longer than 223 bytes"));

	c = parse_ok("<target naa.0123456789ABCDEF0123456789abcdef>\n</target>\n"
		     "<target iqn.2001-04.com.example>\n</target>\n");
	assert_int_equal(c->ntargets, 2);
	conf_free(c);
}

static void test_errors_values(void **state)
{
	(void)state;
	static const struct err_case cases[] = {
		{ "portal 1.2.3.4:70000\n", "t.conf:1: bad portal '1.2.3.4:70000': "
		  "port must be a number from 1 to 65535" },
		{ "portal ::1\n", "t.conf:1: bad portal '::1': an IPv6 address must be in "
		  "brackets, e.g. [::1]:3260" },
		{ "\nportal host.example:3260\n", "t.conf:2: bad portal 'host.example:3260': "
		  "not a numeric IPv4 address" },
		{ "iser-portal [::1\n", "t.conf:1: bad iser-portal '[::1': missing ']' after "
		  "the IPv6 address" },
		{ "portal 1.2.3.4\nportal 1.2.3.4:3260\n",
		  "t.conf:2: portal '1.2.3.4:3260' already given at line 1" },
		{ "portal 1.2.3.4 5.6.7.8\n",
		  "t.conf:1: 'portal' takes one value, got '1.2.3.4 5.6.7.8'" },
		{ "cores 0-x\n", "t.conf:1: bad cores '0-x' (expected a CPU list such as 0-3,6, "
		  "each CPU once)" },
		{ "cores 0-64\n", "t.conf:1: cores '0-64': more than 64 CPUs" },
		{ "memory-limit 3M\n", "t.conf:1: memory-limit '3M' is below the minimum of 4M" },
		{ "memory-limit lots\n", "t.conf:1: bad memory-limit 'lots' (expected a size "
		  "such as 512M or 2G)" },
		{ "poll-mode fast\n", "t.conf:1: bad poll-mode 'fast' (expected busy, adaptive "
		  "or sleep)" },
		{ "log-level loud\n", "t.conf:1: bad log-level 'loud' (expected error, warn, "
		  "info or debug)" },
		{ "state-dir var/lib/lich\n", "t.conf:1: state-dir 'var/lib/lich' must be an "
		  "absolute path" },
		{ "nop-interval 3601\n", "t.conf:1: bad nop-interval '3601' (expected seconds, 0..3600)" },
		{ "nop-timeout -1\n", "t.conf:1: bad nop-timeout '-1' (expected seconds, 0..3600)" },
		{ "default-driver fc\n", "t.conf:1: bad default-driver 'fc' (expected iscsi or iser)" },
		{ "bs-type sg\n", "t.conf:1: bs-type 'sg' is not supported by lich (use ram, "
		  "uring or nvme)" },
		{ "<target " NAME_A ">\n<backing-store /a>\nbs-type ssc\n",
		  "t.conf:3: bs-type 'ssc' is not supported by lich (use ram, uring or nvme)" },
		{ "<target " NAME_A ">\nbs-type floppy\n",
		  "t.conf:2: unknown bs-type 'floppy' (expected ram, uring or nvme)" },
		{ "<target " NAME_A ">\nblock-size 520\n",
		  "t.conf:2: bad block-size '520' (expected 512, 1024, 2048 or 4096)" },
		{ "<target " NAME_A ">\n<backing-store /a>\nblock-size 8192\n",
		  "t.conf:3: bad block-size '8192' (expected 512, 1024, 2048 or 4096)" },
		{ "<target " NAME_A ">\nwrite-cache yes\n",
		  "t.conf:2: bad write-cache 'yes' (expected on or off)" },
		{ "<target " NAME_A ">\nreadonly maybe\n",
		  "t.conf:2: bad readonly 'maybe' (expected 0/1, yes/no or on/off)" },
		{ "<target " NAME_A ">\nsize 0\n", "t.conf:2: bad size '0' (expected a number of "
		  "bytes > 0 with an optional K, M, G or T suffix)" },
		{ "<target " NAME_A ">\nvendor_id MyCompany\n",
		  "t.conf:2: vendor_id 'MyCompany' is 9 characters long; at most 8 fit" },
		{ "<target " NAME_A ">\n<backing-store /a>\nvendor_id \"MyCompany Inc.\"\n",
		  "t.conf:3: vendor_id 'MyCompany Inc.' is 14 characters long; at most 8 fit" },
		{ "<target " NAME_A ">\nproduct_id 12345678901234567\n",
		  "t.conf:2: product_id '12345678901234567' is 17 characters long; at most 16 fit" },
		{ "<target " NAME_A ">\nproduct_rev 1.0.0\n",
		  "t.conf:2: product_rev '1.0.0' is 5 characters long; at most 4 fit" },
		{ "<target " NAME_A ">\nscsi_sn 12345678901234567890123456789012345678901\n",
		  "t.conf:2: scsi_sn '12345678901234567890123456789012345678901' is 41 "
		  "characters long; at most 40 fit" },
		{ "<target " NAME_A ">\nscsi_sn \"a\tb\"\n",
		  "t.conf:2: scsi_sn may hold only printable ASCII characters" },
		{ "<target " NAME_A ">\nvendor_id \"\"\n", "t.conf:2: vendor_id must not be empty" },
		{ "<target " NAME_A ">\ninitiator-address 10.0.0.0/33\n",
		  "t.conf:2: bad initiator-address '10.0.0.0/33': prefix length must be 0..32 "
		  "(expected ALL, an address or ADDRESS/PREFIX)" },
		{ "<target " NAME_A ">\ninitiator-address somehost\n",
		  "t.conf:2: bad initiator-address 'somehost': not a numeric IPv4 or IPv6 address "
		  "(expected ALL, an address or ADDRESS/PREFIX)" },
		{ "<target " NAME_A ">\nincominguser joe\n",
		  "t.conf:2: 'incominguser' needs a user name and a secret" },
		{ "<target " NAME_A ">\nincominguser joe secret123456 extra\n",
		  "t.conf:2: 'incominguser' needs a user name and a secret" },
		{ "<target " NAME_A ">\nincominguser joe secret123456\nincominguser joe other12345678\n",
		  "t.conf:3: incominguser 'joe' given twice" },
		{ "<target " NAME_A ">\noutgoinguser a secret123456\noutgoinguser b secret1234567\n",
		  "t.conf:3: only one outgoinguser per target (first at t.conf:2)" },
		{ "outgoingdiscoveryuser a secret123456\noutgoingdiscoveryuser b secret1234567\n",
		  "t.conf:2: 'outgoingdiscoveryuser' given twice (first at t.conf:1)" },
		{ "incominguser a secret123456\n",
		  "t.conf:1: 'incominguser' is only valid inside <target>" },
	};
	expect_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_errors_luns(void **state)
{
	(void)state;
	static const struct err_case cases[] = {
		{ "<target " NAME_A ">\n<backing-store /a>\nlun 3\n</backing-store>\n"
		  "<backing-store /b>\n  lun 3\n</backing-store>\n</target>\n",
		  "t.conf:6: duplicate LUN 3 in <target " NAME_A "> (first at t.conf:3)" },
		{ "<target " NAME_A ">\n<backing-store /a>\nlun 0\n",
		  "t.conf:3: LUN 0 is reserved (tgt keeps it for its controller); backing "
		  "stores use LUN 1 and up" },
		{ "<target " NAME_A ">\n<backing-store /a>\nlun 16384\n",
		  "t.conf:3: bad lun '16384' (expected 1..16383)" },
		{ "<target " NAME_A ">\n<backing-store /a>\nlun 1\nlun 2\n",
		  "t.conf:4: 'lun' given twice in <backing-store /a> (first at t.conf:3)" },
		{ "<target " NAME_A ">\nbacking-store /a\nbacking-store /b\nlun 4\n</target>\n",
		  "t.conf:4: target-level 'lun' needs exactly one backing-store in <target "
		  NAME_A "> (found 2); put 'lun' inside <backing-store> blocks instead" },
		{ "<target " NAME_A ">\n  backing-store /a\n  backing-store ram:x\n</target>\n",
		  "t.conf:3: RAM LUN 'ram:x' needs a size (e.g. size 64M)" },
		{ "<target " NAME_A ">\n  <backing-store mem>\n  bs-type ram\n  </backing-store>\n"
		  "</target>\n", "t.conf:2: RAM LUN 'mem' needs a size (e.g. size 64M)" },
		{ "bs-type ram\n<target " NAME_A ">\n  backing-store /a\n</target>\n",
		  "t.conf:3: RAM LUN '/a' needs a size (e.g. size 64M)" },
		{ "<target " NAME_A ">\n<backing-store ram:x>\nbs-type uring\nsize 1M\n"
		  "</backing-store>\n</target>\n",
		  "t.conf:3: bs-type contradicts the RAM backing store 'ram:x'" },
		{ "<target " NAME_A ">\nblock-size 4096\nbacking-store ram:x\nsize 6K\n</target>\n",
		  "t.conf:3: size 6144 of 'ram:x' is not a multiple of block-size 4096" },
	};
	expect_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_lun_numbering(void **state)
{
	(void)state;
	struct config *c = parse_ok(
		"<target " NAME_A ">\n"
		"  direct-store /d1\n"              /* direct-stores after backing-stores */
		"  backing-store /b1\n"
		"  <backing-store /b2>\n"
		"    lun 2\n"
		"  </backing-store>\n"
		"  backing-store /b3\n"
		"  <direct-store /d2>\n"
		"    lun 1\n"
		"  </direct-store>\n"
		"</target>\n"
		"<target iqn.2026-11.org.lich:b>\n"
		"  lun 7\n"                         /* before the store it numbers */
		"  backing-store /x\n"
		"</target>\n");
	const struct conf_target *t = &c->targets[0];

	assert_int_equal(t->nluns, 5);
	assert_string_equal(find_lun(t, 1)->path, "/d2");
	assert_string_equal(find_lun(t, 2)->path, "/b2");
	assert_string_equal(find_lun(t, 3)->path, "/b1");
	assert_string_equal(find_lun(t, 4)->path, "/b3");
	assert_string_equal(find_lun(t, 5)->path, "/d1");
	for (unsigned i = 0; i < t->nluns; i++)
		assert_int_equal(t->luns[i].lun, i + 1);    /* sorted */
	assert_int_equal(c->targets[1].luns[0].lun, 7);
	assert_int_equal(c->targets[1].tid, 2);
	conf_free(c);
}

/* tgt keys lich does not use load with a warning naming file:line and key;
 * secrets never reach the log */
static void test_tgt_keys_warn(void **state)
{
	(void)state;
	struct capture cap;
	struct config *c;

	log_set_level(LOG_LVL_INFO);
	capture_start(&cap);
	c = parse_ok(
		"ignore-errors yes\n"
		"<target " NAME_A ">\n"
		"  params element_type=4,start_address=500\n"
		"  allow-in-use yes\n"
		"  controller_tid 3\n"
		"  MaxRecvDataSegmentLength 8192\n"
		"  <backing-store /dev/sdb>\n"
		"    mode_page 8:0:18:0x10:0:0xff\n"
		"    device-type cd\n"
		"    bs-type aio\n"
		"    bsoflags sync\n"
		"  </backing-store>\n"
		"  incominguser shorty tiny\n"
		"  removable\n"                      /* tgt keys may come without a value */
		"</target>\n");
	const char *log = capture_end(&cap);

	assert_int_equal(c->ntargets, 1);
	assert_int_equal(c->targets[0].luns[0].bs_type, BS_URING);
	assert_string_equal(c->targets[0].incoming[0].secret, "tiny");
	conf_free(c);
	assert_non_null(strstr(log, "t.conf:1: ignoring 'ignore-errors'"));
	assert_non_null(strstr(log, "t.conf:3: ignoring 'params'"));
	assert_non_null(strstr(log, "t.conf:4: ignoring 'allow-in-use'"));
	assert_non_null(strstr(log, "t.conf:5: ignoring 'controller_tid'"));
	assert_non_null(strstr(log, "t.conf:6: ignoring 'MaxRecvDataSegmentLength'"));
	assert_non_null(strstr(log, "t.conf:8: ignoring 'mode_page'"));
	assert_non_null(strstr(log, "t.conf:9: ignoring 'device-type'"));
	assert_non_null(strstr(log, "t.conf:10: bs-type aio"));
	assert_non_null(strstr(log, "t.conf:11: ignoring 'bsoflags'"));
	assert_non_null(strstr(log, "t.conf:13: incominguser 'shorty'"));
	assert_non_null(strstr(log, "t.conf:14: ignoring 'removable'"));
	assert_null(strstr(log, "tiny"));
}

/* ---- includes ---- */

static char *make_tmpdir(void)
{
	static char dir[64];

	strcpy(dir, "/tmp/lich-test-conf-dXXXXXX");
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void test_include_glob(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char path[256], sub[256];
	struct config *c;
	char err[512];

	snprintf(sub, sizeof(sub), "%s/conf.d", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/conf.d/dir.conf", dir);   /* a directory: skipped */
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(dir, "main.conf",
		   "portal 127.0.0.1\n"
		   "include conf.d/*.conf\n"
		   "include \"nothing/*.conf\"\n"               /* no match: fine */
		   "<target iqn.2026-11.org.lich:main>\n"
		   "  include luns.inc\n"                       /* inside a target */
		   "</target>\n");
	write_file(dir, "luns.inc", "backing-store /in/target\nvendor_id INC\n");
	write_file(dir, "conf.d/b.conf", "<target iqn.2026-11.org.lich:b>\n</target>\n");
	write_file(dir, "conf.d/a.conf", "cores 1\n<target iqn.2026-11.org.lich:a>\n</target>\n");
	write_file(dir, "conf.d/skip.txt", "junk junk\n");
	snprintf(path, sizeof(path), "%s/main.conf", dir);

	assert_int_equal(conf_load(path, &c, err, sizeof(err)), 0);
	assert_string_equal(c->path, path);
	assert_int_equal(c->ntargets, 3);
	assert_string_equal(c->targets[0].name, "iqn.2026-11.org.lich:a");   /* glob order */
	assert_string_equal(c->targets[1].name, "iqn.2026-11.org.lich:b");
	assert_string_equal(c->targets[2].name, "iqn.2026-11.org.lich:main");
	assert_int_equal(c->targets[2].nluns, 1);
	assert_string_equal(c->targets[2].luns[0].path, "/in/target");
	assert_string_equal(c->targets[2].luns[0].vendor_id, "INC");
	assert_int_equal(c->cores[0], 1);
	conf_free(c);

	/* an error inside an included file names that file and line */
	write_file(dir, "conf.d/b.conf", "<target iqn.2026-11.org.lich:b>\n  bogus 1\n</target>\n");
	c = (struct config *)(uintptr_t)0x1;
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -EINVAL);
	assert_ptr_equal(c, (struct config *)(uintptr_t)0x1);
	char want[512];
	snprintf(want, sizeof(want), "%s/conf.d/b.conf:2: unknown key 'bogus' in "
		 "<target iqn.2026-11.org.lich:b>", dir);
	assert_string_equal(err, want);

	/* a duplicate across files points at the first definition */
	write_file(dir, "conf.d/b.conf", "<target IQN.2026-11.org.lich:A>\n</target>\n");
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/conf.d/b.conf:1: duplicate target "
		 "'IQN.2026-11.org.lich:A' (first defined at %s/conf.d/a.conf:2)", dir, dir);
	assert_string_equal(err, want);

	/* a block opened in an included file must close there */
	write_file(dir, "conf.d/b.conf", "\n<target iqn.2026-11.org.lich:b>\n");
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/conf.d/b.conf:2: <target> block not closed "
		 "(opened here)", dir);
	assert_string_equal(err, want);
	write_file(dir, "conf.d/b.conf", "\n");
	write_file(dir, "luns.inc", "backing-store /x\n</target>\n");
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/luns.inc:2: </target> cannot close a block "
		 "opened in another file", dir);
	assert_string_equal(err, want);

	write_file(dir, "luns.inc", "</backing-store>\n");
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/luns.inc:1: stray </backing-store> (no "
		 "<backing-store> is open)", dir);
	assert_string_equal(err, want);

	/* a plain include that does not exist is an error at the include line */
	write_file(dir, "luns.inc", "backing-store /x\n");
	write_file(dir, "conf.d/b.conf", "\n\ninclude ../missing.conf\n");
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s/conf.d/b.conf:3: include '%s/conf.d/../missing.conf': "
		 "No such file or directory", dir, dir);
	assert_string_equal(err, want);

	/* NUL bytes are not text */
	snprintf(sub, sizeof(sub), "%s/conf.d/b.conf", dir);
	int fd = open(sub, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "# ok\nfoo\0bar\n", 13), 13);
	close(fd);
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/conf.d/b.conf:2: NUL byte in line (not a text file?)", dir);
	assert_string_equal(err, want);
	rm_tree(dir);
}

static void test_include_cycle_and_depth(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char path[256], want[512], err[512];
	struct config *c;

	/* a includes b includes a */
	write_file(dir, "a.conf", "include b.conf\n");
	write_file(dir, "b.conf", "# b\ninclude a.conf\n");
	snprintf(path, sizeof(path), "%s/a.conf", dir);
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/b.conf:2: include cycle: '%s/a.conf' is already "
		 "being read", dir, dir);
	assert_string_equal(err, want);

	/* a file including itself through a glob */
	write_file(dir, "self.conf", "include *.conf\n");
	snprintf(path, sizeof(path), "%s/self.conf", dir);
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "include cycle"));

	/* a chain of 9 files (8 nested includes) loads, 10 files do not */
	for (int i = 0; i < 10; i++) {
		char name[32], text[64];
		snprintf(name, sizeof(name), "d%d.conf", i);
		if (i < 9)
			snprintf(text, sizeof(text), "include d%d.conf\n", i + 1);
		else
			snprintf(text, sizeof(text), "cores 3\n");
		write_file(dir, name, text);
	}
	snprintf(path, sizeof(path), "%s/d1.conf", dir);
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), 0);
	assert_int_equal(c->cores[0], 3);
	conf_free(c);
	snprintf(path, sizeof(path), "%s/d0.conf", dir);
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/d8.conf:1: includes nested deeper than 8 files", dir);
	assert_string_equal(err, want);

	/* the top file itself */
	snprintf(path, sizeof(path), "%s/none.conf", dir);
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	assert_int_equal(conf_load(dir, &c, err, sizeof(err)), -EISDIR);
	rm_tree(dir);
}

/* include from a string resolves against the current directory */
static void test_include_from_string(void **state)
{
	(void)state;
	struct config *c = parse_ok("include conf/targets.conf\n");

	assert_int_equal(c->ntargets, 1);
	assert_string_equal(c->targets[0].name, "iqn.2026-11.org.lich:demo");
	conf_free(c);
}

/* ---- the shipped files ---- */

static void test_shipped_files(void **state)
{
	(void)state;
	struct config *c;
	char err[512] = "";
	int rc = conf_load("conf/targets.conf", &c, err, sizeof(err));

	if (rc)
		fail_msg("conf/targets.conf: %s", err);
	assert_int_equal(c->nportals, 1);
	assert_string_equal(c->portals[0].host, "127.0.0.1");
	assert_int_equal(c->portals[0].port, 3260);
	assert_int_equal(c->ncores, 1);
	assert_int_equal(c->cores[0], 0);
	assert_int_equal(c->poll_mode, POLL_ADAPTIVE);
	assert_true(c->state_dir[0] == '/');
	assert_int_equal(c->ntargets, 1);
	const struct conf_target *t = conf_find_target(c, "iqn.2026-11.org.lich:demo");
	assert_non_null(t);
	assert_int_equal(t->nluns, 1);
	assert_int_equal(t->luns[0].lun, 1);
	assert_int_equal(t->luns[0].bs_type, BS_RAM);
	assert_int_equal(t->luns[0].size, 256u << 20);
	assert_true(conf_target_allows(t, "iqn.1994-05.com.redhat:any", "127.0.0.1"));
	conf_free(c);

	rc = conf_load("conf/targets.conf.example", &c, err, sizeof(err));
	if (rc)
		fail_msg("conf/targets.conf.example: %s", err);
	assert_true(c->ntargets >= 8);
	assert_int_equal(c->nportals, 2);
	assert_int_equal(c->portals[1].family, AF_INET6);
	t = conf_find_target(c, "iqn.2026-11.org.example:acl");
	assert_non_null(t);
	assert_true(conf_target_allows(t, "iqn.1994-05.com.redhat:web1", "192.168.1.77"));
	assert_false(conf_target_allows(t, "iqn.1994-05.com.redhat:web1", "192.168.2.77"));
	assert_false(conf_target_allows(t, "iqn.1994-05.com.redhat:evil", "10.0.0.5"));
	t = conf_find_target(c, "iqn.2026-11.org.example:chap");
	assert_non_null(t);
	assert_int_equal(t->n_incoming, 2);
	assert_non_null(t->outgoing);
	conf_free(c);
}

/* ---- value parsers ---- */

static void test_parse_size(void **state)
{
	(void)state;
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "0", 0 }, { "512", 512 }, { "4k", 4096 }, { "4K", 4096 },
		{ "64M", 64ull << 20 }, { "64MB", 64ull << 20 }, { "64MiB", 64ull << 20 },
		{ "1G", 1ull << 30 }, { "2t", 2ull << 40 },
		{ "18446744073709551615", UINT64_MAX }, { "16777215T", 16777215ull << 40 },
		{ "17179869183G", 17179869183ull << 30 },
	};
	static const char *const bad[] = {
		"", "M", "12X", "-1", " 1", "1 ", "1.5G", "0x10", "1KK", "1MiBs", "1iB",
		"18446744073709551616", "99999999999999999999999", "16777216T",
		"17179869184G", "1e3",
	};
	uint64_t v;

	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		if (conf_parse_size(ok[i].s, &v) != 0)
			fail_msg("'%s' rejected", ok[i].s);
		assert_int_equal(v, ok[i].v);
	}
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		if (conf_parse_size(bad[i], &v) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(v, 12345);
	}
	assert_int_equal(conf_parse_size(NULL, &v), -EINVAL);
}

static void test_parse_cpulist(void **state)
{
	(void)state;
	int cores[8];
	unsigned n;

	assert_int_equal(conf_parse_cpulist("0", cores, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(cores[0], 0);
	assert_int_equal(conf_parse_cpulist("0-3,5", cores, 8, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(cores[3], 3);
	assert_int_equal(cores[4], 5);
	assert_int_equal(conf_parse_cpulist("7,1", cores, 8, &n), 0);   /* order kept */
	assert_int_equal(n, 2);
	assert_int_equal(cores[0], 7);
	assert_int_equal(cores[1], 1);
	assert_int_equal(conf_parse_cpulist("0-7:2", cores, 8, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(cores[3], 6);
	assert_int_equal(conf_parse_cpulist("1023", cores, 8, &n), 0);
	assert_int_equal(cores[0], 1023);
	assert_int_equal(conf_parse_cpulist("0-7", cores, 8, &n), 0);   /* exactly max */
	assert_int_equal(n, 8);

	static const char *const bad[] = {
		"", ",", "0,", ",0", "a", "3-1", "0-", "-1", "0--1", "1,1", "0-2,1",
		"1024", "99999999999", "0, 1", "0 ", "0-3:0", "0-3:", "1:2", "0x1",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 99;
		if (conf_parse_cpulist(bad[i], cores, 8, &n) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(n, 99);
	}
	n = 99;
	assert_int_equal(conf_parse_cpulist("0-8", cores, 8, &n), -E2BIG);
	assert_int_equal(n, 99);
	assert_int_equal(conf_parse_cpulist("0,1,2", cores, 2, &n), -E2BIG);
	assert_int_equal(conf_parse_cpulist(NULL, cores, 2, &n), -EINVAL);
}

static void test_parse_portal(void **state)
{
	(void)state;
	static const struct { const char *s; const char *host; int port; int family; } ok[] = {
		{ "1.2.3.4:3260", "1.2.3.4", 3260, AF_INET },
		{ "0.0.0.0", "0.0.0.0", 3260, AF_INET },
		{ "10.0.0.1:1", "10.0.0.1", 1, AF_INET },
		{ "10.0.0.1:65535", "10.0.0.1", 65535, AF_INET },
		{ "[::1]:3261", "::1", 3261, AF_INET6 },
		{ "[::]", "::", 3260, AF_INET6 },
		{ "[0:0::1]", "::1", 3260, AF_INET6 },
		{ "[::ffff:1.2.3.4]:860", "::ffff:1.2.3.4", 860, AF_INET6 },
	};
	static const char *const bad[] = {
		"", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:", "1.2.3.4:32a", "::1", "fe80::1:3260",
		"localhost:3260", "[::1", "[::1]x", "[::1]:", "[1.2.3.4]:3260", "1.2.3.256",
		"[]:3260", ":3260", "1.2.3", "[fe80::1%eth0]:3260",
	};
	struct conf_portal p;

	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		memset(&p, 0xaa, sizeof(p));
		if (conf_parse_portal(ok[i].s, &p) != 0)
			fail_msg("'%s' rejected", ok[i].s);
		assert_string_equal(p.host, ok[i].host);
		assert_int_equal(p.port, ok[i].port);
		assert_int_equal(p.family, ok[i].family);
	}
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&p, 0xaa, sizeof(p));
		if (conf_parse_portal(bad[i], &p) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(p.port, 0xaaaa);   /* untouched */
	}
}

static void test_addr_match(void **state)
{
	(void)state;
	static const struct { const char *pat, *addr; bool match; } cases[] = {
		{ "ALL", "1.2.3.4", true }, { "all", "::1", true },
		{ "192.168.1.5", "192.168.1.5", true }, { "192.168.1.5", "192.168.1.6", false },
		{ "192.168.1.0/24", "192.168.1.200", true },
		{ "192.168.1.0/24", "192.168.2.1", false },
		{ "192.168.1.77/24", "192.168.1.3", true },       /* host bits ignored */
		{ "10.0.0.0/8", "10.255.255.255", true }, { "10.0.0.0/8", "11.0.0.0", false },
		{ "172.16.0.0/12", "172.31.1.1", true }, { "172.16.0.0/12", "172.32.0.1", false },
		{ "0.0.0.0/0", "8.8.8.8", true }, { "1.2.3.4/32", "1.2.3.4", true },
		{ "1.2.3.4/32", "1.2.3.5", false },
		/* v4-mapped IPv6 peers match IPv4 rules */
		{ "192.168.1.0/24", "::ffff:192.168.1.7", true },
		{ "192.168.1.0/24", "::ffff:192.168.9.7", false },
		{ "10.0.0.5", "::FFFF:10.0.0.5", true },
		{ "::ffff:10.0.0.0/104", "10.1.2.3", true },
		{ "::ffff:10.0.0.0/104", "11.1.2.3", false },
		/* IPv6 */
		{ "::1", "::1", true }, { "::1", "0:0:0:0:0:0:0:1", true }, { "::1", "::2", false },
		{ "2001:db8::/32", "2001:db8:ffff::1", true },
		{ "2001:db8::/32", "2001:db9::1", false },
		{ "2001:db8:0:7::/63", "2001:db8:0:6::1", true },
		{ "2001:db8:0:7::/63", "2001:db8:0:8::1", false },
		{ "fe80::/10", "fe80::1%eth0", true },
		{ "[2001:db8::1]", "[2001:db8::1]", true },
		{ "[2001:db8::]/64", "2001:db8::abcd", true },
		/* families do not mix otherwise */
		{ "2001:db8::/32", "1.2.3.4", false }, { "1.2.3.0/24", "::1.2.3.4", false },
		{ "1.2.3.4", "::1", false },
		/* junk never matches */
		{ "1.2.3.4/33", "1.2.3.4", false }, { "::/129", "::1", false },
		{ "1.2.3.4/", "1.2.3.4", false }, { "1.2.3.4/x", "1.2.3.4", false },
		{ "foo", "1.2.3.4", false }, { "1.2.3.4", "foo", false }, { "1.2.3.4", "", false },
		{ "", "1.2.3.4", false },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (conf_addr_match(cases[i].pat, cases[i].addr) != cases[i].match)
			fail_msg("'%s' vs '%s': want %s", cases[i].pat, cases[i].addr,
				 cases[i].match ? "match" : "no match");
	assert_false(conf_addr_match(NULL, "1.2.3.4"));
	assert_false(conf_addr_match("ALL", NULL));
}

static void test_target_allows(void **state)
{
	(void)state;
	struct config *c = parse_ok(
		"<target iqn.2026-11.org.lich:open>\n</target>\n"
		"<target iqn.2026-11.org.lich:names>\n"
		"  initiator-name iqn.1994-05.com.redhat:a\n"
		"  initiator-name iqn.1994-05.com.redhat:b\n"
		"</target>\n"
		"<target iqn.2026-11.org.lich:addrs>\n"
		"  initiator-address 10.0.0.0/24\n"
		"  initiator-address [2001:db8::]/64\n"
		"</target>\n"
		"<target iqn.2026-11.org.lich:both>\n"
		"  initiator-address 10.0.0.5\n"
		"  initiator-name iqn.1994-05.com.redhat:a\n"
		"</target>\n"
		"<target iqn.2026-11.org.lich:all>\n"
		"  initiator-address all\n"
		"</target>\n");
	const struct conf_target *open = &c->targets[0], *names = &c->targets[1];
	const struct conf_target *addrs = &c->targets[2], *both = &c->targets[3];
	const struct conf_target *all = &c->targets[4];

	assert_true(conf_target_allows(open, "iqn.1994-05.com.redhat:z", "1.2.3.4"));
	assert_true(conf_target_allows(open, NULL, NULL));

	assert_true(conf_target_allows(names, "iqn.1994-05.com.redhat:b", "1.2.3.4"));
	assert_true(conf_target_allows(names, "IQN.1994-05.COM.REDHAT:A", "::1"));
	assert_false(conf_target_allows(names, "iqn.1994-05.com.redhat:c", "1.2.3.4"));
	assert_false(conf_target_allows(names, NULL, "1.2.3.4"));

	assert_string_equal(addrs->initiator_addresses[1], "2001:db8::/64");
	assert_true(conf_target_allows(addrs, "iqn.1994-05.com.redhat:z", "10.0.0.9"));
	assert_true(conf_target_allows(addrs, "iqn.1994-05.com.redhat:z", "::ffff:10.0.0.9"));
	assert_true(conf_target_allows(addrs, "iqn.1994-05.com.redhat:z", "2001:db8::7"));
	assert_false(conf_target_allows(addrs, "iqn.1994-05.com.redhat:z", "10.0.1.9"));
	assert_false(conf_target_allows(addrs, "iqn.1994-05.com.redhat:z", NULL));

	assert_true(conf_target_allows(both, "iqn.1994-05.com.redhat:a", "10.0.0.5"));
	assert_false(conf_target_allows(both, "iqn.1994-05.com.redhat:a", "10.0.0.6"));
	assert_false(conf_target_allows(both, "iqn.1994-05.com.redhat:b", "10.0.0.5"));

	assert_string_equal(all->initiator_addresses[0], "ALL");
	assert_true(conf_target_allows(all, "iqn.1994-05.com.redhat:q", "203.0.113.9"));
	conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tgt_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_globals),
		cmocka_unit_test(test_lexical),
		cmocka_unit_test(test_bs_type_scopes),
		cmocka_unit_test(test_errors_structure),
		cmocka_unit_test(test_errors_names),
		cmocka_unit_test(test_errors_values),
		cmocka_unit_test(test_errors_luns),
		cmocka_unit_test(test_lun_numbering),
		cmocka_unit_test(test_tgt_keys_warn),
		cmocka_unit_test(test_include_glob),
		cmocka_unit_test(test_include_cycle_and_depth),
		cmocka_unit_test(test_include_from_string),
		cmocka_unit_test(test_shipped_files),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_cpulist),
		cmocka_unit_test(test_parse_portal),
		cmocka_unit_test(test_addr_match),
		cmocka_unit_test(test_target_allows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
