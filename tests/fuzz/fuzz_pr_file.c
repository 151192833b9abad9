/* fuzz_pr_file.c — the persistent reservation state file loader (pr_create on
 * a file holding the input) and pr_initiator_port_match on the input's first
 * two lines. A loaded state is then queried (registration count, conflicts of
 * a WRITE from two nexuses, a nexus loss) and destroyed.
 * The file lives in a private temporary directory (/dev/shm when writable). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "scsi/pr.h"
#include "scsi/scsi.h"

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_pr_file: %s:%d: check failed: %s\n", \
			__FILE__, __LINE__, #x); abort(); } } while (0)

static char dir[64], path[96];

static void ua(void *ctx, const char *initiator_port, uint16_t rel_port_id,
	       uint8_t asc, uint8_t ascq)
{
	(void)ctx; (void)rel_port_id; (void)asc; (void)ascq;
	(void)strlen(initiator_port);
}

static void nexus_init(struct scsi_nexus *n, const char *iname, const char *isid, uint64_t id)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->initiator_name, sizeof(n->initiator_name), "%s", iname);
	snprintf(n->initiator_port, sizeof(n->initiator_port), "%s,i,0x%s", iname, isid);
	n->rel_port_id = 1;
	n->tpgt = 1;
	n->id = id;
}

static void remove_dir(void)
{
	char tmp[128];

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scsi_pr *pr = NULL;
	int fd;

	if (!dir[0]) {
		log_init(LOG_LVL_ERR, 0);
		snprintf(dir, sizeof(dir), access("/dev/shm", W_OK) == 0 ?
			 "/dev/shm/fuzz_pr.XXXXXX" : "/tmp/fuzz_pr.XXXXXX");
		CHECK(mkdtemp(dir));
		snprintf(path, sizeof(path), "%s/state", dir);
		atexit(remove_dir);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);

	if (pr_create(path, ua, NULL, &pr) == 0) {
		struct scsi_nexus n1, n2;
		struct scsi_task t;

		CHECK(pr);
		(void)pr_registration_count(pr);
		nexus_init(&n1, "iqn.2026-11.org.lich:init1", "023d00000001", 1);
		nexus_init(&n2, "iqn.2026-11.org.lich:init2", "023d00000002", 2);
		scsi_task_init(&t);
		t.cdb[0] = 0x2a;         /* WRITE(10) */
		t.cdb_len = 10;
		t.nexus = &n1;
		(void)pr_conflict(pr, &t);
		t.nexus = &n2;
		(void)pr_conflict(pr, &t);
		pr_nexus_lost(pr, &n1);
		pr_destroy(pr);
	}
	unlink(path);

	/* the port matcher on the first two lines */
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	char *nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		char *nl2 = strchr(nl + 1, '\n');
		if (nl2)
			*nl2 = '\0';
		(void)pr_initiator_port_match(s, nl + 1);
	}
	free(s);
	return 0;
}
