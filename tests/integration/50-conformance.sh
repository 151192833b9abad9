#!/usr/bin/env bash
# Conformance: libiscsi's iscsi-test-cu (destructive tests on, multipath URL
# given) against a RAM LUN and a file LUN. Every test case is one PASS/FAIL
# line; lich must also skip fewer test cases than tgt 1.0.85 does on this suite
# (205 skipped of 615 with a file LUN, measured on this machine with the same
# libiscsi-bin 1.19.0).
set -u
. "$(dirname "$0")/../lib/common.sh"
TGT_SKIPPED=205

port=$(free_port)
iqn=iqn.2026-11.org.lich:conformance
truncate -s 128M "$TEST_TMP/file.img"
cat >"$TEST_TMP/t.conf" <<CONF
portal 127.0.0.1:$port
state-dir $TEST_TMP/state
log-level warn
<target $iqn>
    <backing-store ram:cu>
        bs-type ram
        size 128M
    </backing-store>
    <backing-store $TEST_TMP/file.img>
        bs-type uring
    </backing-store>
</target>
CONF
mkdir -p "$TEST_TMP/state"
start_lichd "$TEST_TMP/t.conf" "$port" || { fail "lichd starts"; exit 1; }

for lun in 1 2; do
	label=ram; [ $lun = 2 ] && label=file
	url="iscsi://127.0.0.1:$port/$iqn/$lun"
	out=$(CU_DIR="$TEST_TMP/cu" "$(dirname "$0")/../conformance/run-cu" "$label" "$url" "$url")
	echo "$out"
	summary=$(echo "$out" | grep "^CU $label:")
	skipped=$(echo "$summary" | sed -n 's/.*skipped \([0-9]*\).*/\1/p')
	if [ -n "$skipped" ] && [ "$skipped" -lt "$TGT_SKIPPED" ]; then
		pass "cu $label skips $skipped test cases, fewer than tgt's $TGT_SKIPPED"
	else
		fail "cu $label skips ${skipped:-?} test cases, tgt skips $TGT_SKIPPED"
	fi
	# the daemon must survive the whole suite
	check "lichd alive after cu $label" kill -0 "$LICHD_PID"
	cp "$TEST_TMP/cu/cu-$label.log" "${BUILD:-build}/test-logs/cu-$label.log" 2>/dev/null
done
stop_lichd; rc=$?
check "lichd exits 0 on SIGTERM after the suite (rc=$rc)" test $rc -eq 0
