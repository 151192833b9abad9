#!/usr/bin/env bash
# 55-multicore.sh — one LU shared by sessions on two reactors (issue 6 item 4:
# LU state changed on its owner reactor, through messages). lichd with
# `cores 0-1`; two sessions of two initiators (tests/integration/lib/
# iscsi_client.py), checked in the log to sit on different reactors, race
# COMPARE AND WRITE and PERSISTENT RESERVE OUT on LUN 1 and check the outcome
# (multicore_check.py); meanwhile two iscsi-perf sessions (one per reactor)
# read LUN 2, whose content was written before and is compared afterwards.
set -u
. "$(dirname "$0")/../lib/common.sh"

port=$(free_port)
iqn=iqn.2026-11.org.lich:multicore
url="iscsi://127.0.0.1:$port/$iqn"
rounds=60
case "$LICHD" in *asan*|*tsan*) rounds=25 ;; esac
truncate -s 64M "$TEST_TMP/data.img"
mkdir -p "$TEST_TMP/state"
cat >"$TEST_TMP/t.conf" <<CONF
portal 127.0.0.1:$port
cores 0-1
state-dir $TEST_TMP/state
control-socket $TEST_TMP/ctl.sock
memory-limit 512M
log-level info
<target $iqn>
    <backing-store ram:shared>
        bs-type ram
        size 16M
        lun 1
    </backing-store>
    <backing-store $TEST_TMP/data.img>
        bs-type uring
        lun 2
    </backing-store>
</target>
CONF
start_lichd "$TEST_TMP/t.conf" "$port" || { fail "lichd starts with two reactors"; exit 1; }
pass "lichd starts with two reactors"

# LUN 2: a known pattern, written through lichd.
head -c 32M /dev/urandom >"$TEST_TMP/pattern.raw"
check "pattern written to LUN 2 (qemu-img)" \
	timeout 60 qemu-img convert -n -f raw -O raw "$TEST_TMP/pattern.raw" "$url/2"

# Readers on both reactors while the races run.
perf_pids=""
for i in 1 2; do
	timeout 60 iscsi-perf -i "iqn.2026-11.org.lich:perf$i" -t 8 -b 8 -m 16 "$url/2" \
		>"$TEST_TMP/perf$i.out" 2>&1 &
	perf_pids="$perf_pids $!"
done
EXTRA_PIDS=$perf_pids

timeout 120 python3 "$(dirname "$0")/lib/multicore_check.py" 127.0.0.1 "$port" "$iqn" 1 \
	"$rounds" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "multicore_check.py exited $rc"

perf_ok=0
for p in $perf_pids; do wait "$p" && perf_ok=$((perf_ok + 1)); done
EXTRA_PIDS=""
check "two iscsi-perf sessions completed ($perf_ok of 2 exited 0)" test $perf_ok -eq 2
for i in 1 2; do
	check "iscsi-perf $i reported IOPS" grep -qi "iops" "$TEST_TMP/perf$i.out"
done

# Which reactor each session landed on (login lines carry it).
reactor_of() { grep "login: initiator $1 " "$TEST_TMP/lichd.log" | sed -n 's/.*, reactor \([0-9]*\).*/\1/p' | head -1; }
ra=$(reactor_of iqn.2026-11.org.lich:mc-a)
rb=$(reactor_of iqn.2026-11.org.lich:mc-b)
check "the racing sessions sat on different reactors (a: ${ra:-?}, b: ${rb:-?})" \
	test -n "$ra" -a -n "$rb" -a "$ra" != "$rb"
perf_reactors=$(grep "login: initiator iqn.2026-11.org.lich:perf" "$TEST_TMP/lichd.log" |
	sed -n 's/.*, reactor \([0-9]*\).*/\1/p' | sort -u | wc -l)
check "iscsi-perf sessions used both reactors ($perf_reactors)" test "$perf_reactors" -eq 2

check "LUN 2 reads back what was written (data verification after the load)" \
	timeout 60 qemu-img compare -f raw -F raw "$TEST_TMP/pattern.raw" "$url/2"

if grep -qE "runtime error|AddressSanitizer|LeakSanitizer|ThreadSanitizer" "$TEST_TMP/lichd.log"; then
	fail "no sanitizer report in lichd's log"
	grep -E -A30 "runtime error|AddressSanitizer|LeakSanitizer|ThreadSanitizer" "$TEST_TMP/lichd.log" | head -80
fi
stop_lichd; rc=$?
check "lichd exits 0 on SIGTERM (rc=$rc)" test $rc -eq 0
if grep -qE "runtime error|AddressSanitizer|LeakSanitizer|ThreadSanitizer" "$TEST_TMP/lichd.log"; then
	fail "no sanitizer report at exit"
	grep -E -A30 "runtime error|AddressSanitizer|LeakSanitizer|ThreadSanitizer" "$TEST_TMP/lichd.log" | head -80
fi
