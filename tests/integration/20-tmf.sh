#!/usr/bin/env bash
# 20-tmf.sh — task management across sessions and reactors: lichd on two
# reactors (cores 0-1), two concurrent sessions of a small Python initiator
# (tests/integration/lib/iscsi_client.py) on different reactors. LU RESET
# from one session aborts the other's writes in flight (no response for them,
# 29h/03h next, nothing of them after the reset), its response waits for
# them (no aborted write lands afterwards); ABORT TASK; unsupported functions;
# I_T NEXUS RESET; PREEMPT AND ABORT; TARGET COLD RESET; and lichd keeps
# serving and exits cleanly.
set -u
. "$(dirname "$0")/../lib/common.sh"

port=$(free_port)
iqn=iqn.2026-11.org.lich:tmf
truncate -s 1G "$TEST_TMP/slow.img"
mkdir -p "$TEST_TMP/state"
cat >"$TEST_TMP/t.conf" <<CONF
portal 127.0.0.1:$port
cores 0-1
state-dir $TEST_TMP/state
memory-limit 512M
log-level info
<target $iqn>
    <backing-store $TEST_TMP/slow.img>
        bs-type uring
        write-cache off
        lun 1
    </backing-store>
    <backing-store ram:tmf>
        bs-type ram
        size 64M
        lun 2
    </backing-store>
</target>
CONF
start_lichd "$TEST_TMP/t.conf" "$port" || { fail "lichd starts with two reactors"; exit 1; }
pass "lichd starts with two reactors"

timeout 300 python3 "$(dirname "$0")/lib/tmf_check.py" 127.0.0.1 "$port" "$iqn" \
	"$TEST_TMP/slow.img" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "tmf_check.py exited $rc"

check "lichd alive after the task management tests" kill -0 "$LICHD_PID"
out=$(timeout 20 iscsi-inq "iscsi://127.0.0.1:$port/$iqn/2" 2>&1)
check "lichd still serves a new session (iscsi-inq)" grep -q "^Vendor:LICH" <<<"$out"
if grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$TEST_TMP/lichd.log"; then
	fail "no sanitizer report in lichd's log"
	grep -E -A20 "runtime error|AddressSanitizer|LeakSanitizer" "$TEST_TMP/lichd.log" | head -60
fi
stop_lichd; rc=$?
check "lichd exits 0 on SIGTERM (rc=$rc)" test $rc -eq 0
if grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$TEST_TMP/lichd.log"; then
	fail "no sanitizer report at exit"
	grep -E -A30 "runtime error|AddressSanitizer|LeakSanitizer" "$TEST_TMP/lichd.log" | head -80
fi
