# tests/vm/lib.sh — helpers for the guest tests tests/vm/t-*.sh (sourced).
#
# A test file runs twice: on the host (no argument), where it writes a config,
# starts lichd on a free port of 127.0.0.1 and boots the guest with
# vm_guest_self; and in the guest (argument "guest"), where it runs the checks
# with the real Linux initiator. Both halves print "PASS: what" / "FAIL: what";
# tests/vm/run-tests counts those lines.
#
# The host's temporary directory $T (backing files, lichd.log, expect.sh) is
# shared read-write with the guest at the same path, uncached: the guest sees
# the backing files' allocation (stat -c %b) as the host does.
# In the guest, the host's 127.0.0.1:PORT is 10.0.2.2:PORT.

VMT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; }
check() { # check "what" command...
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
# Indented diagnostics, so that they never look like a PASS/FAIL line.
diag() { sed -e '/^$/d' -e 's/^/    | /'; }

# ---------------------------------------------------------------------------
# Host side
# ---------------------------------------------------------------------------
LICHD_PID=

vm_host_init() {
	: "${LICHD:=$VMT_DIR/../../${BUILD:-build}/lichd}"
	case $LICHD in /*) ;; *) LICHD=$(pwd)/$LICHD ;; esac
	[ -x "$LICHD" ] || { fail "lichd binary $LICHD exists"; exit 1; }
	T=$(mktemp -d /var/tmp/lich-vmtest.XXXXXX)
	chmod 755 "$T"
	PORT=$(vm_free_port)
	VMT_SELF=$(readlink -f "$0")
	trap vm_host_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

vm_host_cleanup() {
	local rc=$?
	trap "" INT TERM HUP                 # a second signal must not cut this short
	[ -n "$LICHD_PID" ] && kill -9 "$LICHD_PID" 2>/dev/null
	[ -n "${VM_KEEP_TMP:-}" ] && echo "kept $T" || rm -rf "$T"
	exit "$rc"
}

vm_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# lichd_start CONF: start lichd, wait until it listens on $PORT.
lichd_start() {
	LICH_CONTROL_SOCKET="$T/lichd.sock" "$LICHD" -c "$1" >"$T/lichd.log" 2>&1 &
	LICHD_PID=$!
	for _ in $(seq 100); do
		kill -0 "$LICHD_PID" 2>/dev/null || break
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "lichd did not start:"; diag <"$T/lichd.log"
	return 1
}

# lichd_stop: SIGTERM; returns lichd's exit status (124 if it hangs > 10 s).
lichd_stop() {
	local rc
	[ -n "$LICHD_PID" ] || return 1
	kill -TERM "$LICHD_PID" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$LICHD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$LICHD_PID" 2>/dev/null; then
		kill -9 "$LICHD_PID"; wait "$LICHD_PID" 2>/dev/null; LICHD_PID=; return 124
	fi
	wait "$LICHD_PID"; rc=$?
	LICHD_PID=
	return "$rc"
}

# The host-side end of every test file: lichd survived the guest, logged the
# guest's logins, and stops cleanly.
lichd_final_checks() {
	local warn
	warn=$(grep -E ' lichd (error|warn): ' "$T/lichd.log" | grep -v 'hugepages unavailable')
	if [ -n "$warn" ]; then
		echo "lichd's warnings and errors:"
		tail -30 <<<"$warn" | diag
	fi
	check "lichd is still running after the guest's I/O" kill -0 "$LICHD_PID"
	check "lichd logged the guest initiator's login (through QEMU's NAT: 127.0.0.1)" \
		grep -q "login: initiator $VM_INITIATOR at 127.0.0.1:[0-9]*, target $IQN" "$T/lichd.log"
	lichd_stop; local rc=$?
	check "lichd exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
}

# host_identity IQN LUN: what iscsi-inq on the host reports for a LUN, as
# shell assignments INQ_<LUN>_{vendor,product,rev,serial,naa} (values trimmed;
# naa in lower-case hex) appended to $T/expect.sh for the guest.
host_identity() {
	local url=iscsi://127.0.0.1:$PORT/$1/$2
	timeout 30 iscsi-inq "$url" >"$T/inq-$2.std" 2>&1 &&
	timeout 30 iscsi-inq -e 1 -c 128 "$url" >"$T/inq-$2.80" 2>&1 &&
	timeout 30 iscsi-inq -e 1 -c 131 "$url" >"$T/inq-$2.83" 2>&1 || return 1
	python3 - "$2" "$T/inq-$2.std" "$T/inq-$2.80" "$T/inq-$2.83" >>"$T/expect.sh" <<'PY'
import re, shlex, sys
lun, std, p80, p83 = sys.argv[1], *(open(f, "rb").read() for f in sys.argv[2:])
def field(text, name):
    m = re.search(rb"^" + name + rb":(.*)$", text, re.M)
    return m.group(1).decode("latin-1").rstrip() if m else ""
out = {"vendor": field(std, b"Vendor"), "product": field(std, b"Product"),
       "rev": field(std, b"Revision")}
m = re.search(rb"Unit Serial Number:\[(.*)\]", p80)
out["serial"] = m.group(1).decode("latin-1") if m else ""
# iscsi-inq prints the binary NAA designator raw, between brackets, last.
m = re.search(rb"Designator Type:\(3\) NAA\nDesignator:\[(.*)\]\n*\Z", p83, re.S)
out["naa"] = m.group(1).hex() if m else ""
for k, v in out.items():
    print(f"INQ_{lun}_{k}={shlex.quote(v)}")
PY
}

# vm_guest_self [guest options]: boot the guest and run this test file in it
# ("guest" mode). The guest's PASS/FAIL lines come out here. A guest that
# cannot boot or does not finish is a loud FAIL, never a pass.
vm_guest_self() {
	local rc
	"$VMT_DIR/guest" -v -k "$T/guest-logs" -r "$T" \
		-e VMT_DIR="$VMT_DIR" -e VMT_T="$T" -e VMT_PORT="$PORT" -e VMT_IQN="$IQN" \
		-e VM_FIO_RUNTIME="${VM_FIO_RUNTIME:-60}" \
		"$@" "$VMT_SELF" guest
	rc=$?
	case $rc in
	0) ;;
	124) fail "the guest finished within its time limit (tests/vm/guest: timeout)" ;;
	125) fail "qemu booted the guest and ran the checks (tests/vm/guest: boot failure, see above)" ;;
	*) fail "the guest part exited $rc" ;;
	esac
	if [ "$rc" -ne 0 ] || [ -n "${VM_SHOW_DMESG:-}" ]; then
		echo "guest dmesg (last 40 lines):"; tail -40 "$T/guest-logs/dmesg" 2>/dev/null | diag
	fi
	return "$rc"
}

# ---------------------------------------------------------------------------
# Guest side
# ---------------------------------------------------------------------------
VM_INITIATOR=iqn.2026-11.org.lich:vm-guest

# Starts iscsid (it needs these paths; the guest's /etc is a throwaway overlay).
g_iscsi_prepare() {
	modprobe iscsi_tcp && modprobe sd_mod || return 1
	mkdir -p /etc/iscsi /var/lib/iscsi /run/lock/iscsi
	echo "InitiatorName=$VM_INITIATOR" >/etc/iscsi/initiatorname.iscsi
	iscsid || return 1
	for _ in $(seq 50); do
		[ -s /run/iscsid.pid ] && return 0
		sleep 0.1
	done
	return 1
}

# g_node IQN: a node record for 10.0.2.2:PORT (the discovered record names the
# address lichd saw, 127.0.0.1 behind QEMU's NAT, which the guest can't reach).
g_node() {
	iscsiadm -m node -o delete -T "$1" >/dev/null 2>&1
	iscsiadm -m node -o new -T "$1" -p "10.0.2.2:$VMT_PORT" >/dev/null
}
g_login() { timeout 60 iscsiadm -m node -T "$1" -p "10.0.2.2:$VMT_PORT" --login; }
g_logout() { timeout 60 iscsiadm -m node -T "$1" -p "10.0.2.2:$VMT_PORT" --logout; }
g_session_count() { iscsiadm -m session 2>/dev/null | grep -cF " $1 (" ; }

# g_disk IQN LUN [SECONDS]: the block device name (sdX) of LUN in the
# session to IQN, once it has appeared (no udev: read sysfs).
g_disk() {
	local s d n=$((${3:-30} * 5))
	[ "$n" -ge 1 ] || n=1
	for _ in $(seq "$n"); do
		for s in /sys/class/iscsi_session/session*; do
			[ "$(cat "$s/targetname" 2>/dev/null)" = "$1" ] || continue
			for d in "$s"/device/target*/*:*:*:"$2"/block/*; do
				[ -e "$d" ] && [ -b "/dev/${d##*/}" ] &&
					[ "$(cat "$d/size")" -gt 0 ] && { echo "${d##*/}"; return 0; }
			done
		done
		sleep 0.2
	done
	return 1
}

# g_gone IQN LUN: true once no device of that LUN is left (after logout).
g_gone() {
	for _ in $(seq 100); do
		g_disk "$1" "$2" 0 >/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# g_kernel_clean: no iSCSI connection error, SCSI timeout, abort, reset
# or I/O error in the guest's kernel log (the unit attention logged at the
# first command, "Power-on or device reset occurred", is expected).
g_kernel_clean() {
	local bad
	bad=$(dmesg | grep -iE 'conn(ection)? error|detected conn|timing out|timed out|abort|reset|I/O error|blk_update_request|critical|Sense Key' |
		grep -v 'Power-on or device reset occurred')
	[ -z "$bad" ] && return 0
	echo "$bad" | tail -20 | diag
	return 1
}

trim() { sed 's/ *$//'; }
blocks_of() { stat -c %b "$1"; }
