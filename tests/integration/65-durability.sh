#!/usr/bin/env bash
# 65-durability.sh — what lichd acknowledged survives SIGKILL (issue 7): a
# writer puts numbered, checksummed blocks on a file LUN with WRITE(10) FUA=1
# and with WRITE(16) FUA=0 + SYNCHRONIZE CACHE, journaling only what was
# acknowledged (for FUA=0: once the SYNCHRONIZE CACHE behind it was GOOD),
# while lichd is killed at random moments, with write-cache on and off; after
# each restart every acknowledged block must read back intact. A persistent
# reservation registered with APTPL=1 must come back after a kill too.
set -u
. "$(dirname "$0")/../lib/common.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
DUR="python3 $HERE/lib/durability.py"
IQN=iqn.2024-01.org.lich:durability
H=127.0.0.1
PORT=$(free_port)
NSLOTS=8192                       # 4 KiB blocks: a 32 MiB LUN
IMG=$TEST_TMP/dur.img
JOURNAL=$TEST_TMP/journal
truncate -s 32M "$IMG"
: >"$JOURNAL"

ROUNDS=6

CTL=""
[ -x "$(dirname "$LICHD")/lichctl" ] && CTL="control-socket $TEST_TMP/ctl.sock"

conf() { # conf on|off
	cat >"$TEST_TMP/d.conf" <<EOF
portal $H:$PORT
$CTL
cores 0-1
state-dir $TEST_TMP/state
<target $IQN>
    <backing-store $IMG>
        lun 1
        write-cache $1
    </backing-store>
</target>
EOF
}

kill9() {
	kill -9 "$LICHD_PID" 2>/dev/null
	wait "$LICHD_PID" 2>/dev/null
	LICHD_PID=""
}

# ---- persistent reservation (APTPL) across a kill ----
conf on
start_lichd "$TEST_TMP/d.conf" "$PORT" || { fail "lichd starts"; exit 1; }
out=$($DUR pr-set $H "$PORT" $IQN 1 abc123 2>&1)
check "PERSISTENT RESERVE OUT: REGISTER (APTPL=1) and RESERVE ($out)" test "$out" = ok
before=$($DUR pr-show $H "$PORT" $IQN 1 2>&1)

# ---- rounds: writer, SIGKILL at a random moment, restart, verify ----
seq=0
total=0
for r in $(seq 1 "$ROUNDS"); do
	wc=on
	[ $((r % 2)) = 0 ] && wc=off
	if [ -z "$LICHD_PID" ]; then
		conf "$wc"
		start_lichd "$TEST_TMP/d.conf" "$PORT" || { fail "round $r: lichd restarts"; exit 1; }
	fi
	$DUR writer $H "$PORT" $IQN 1 "$JOURNAL" "$NSLOTS" "$seq" >"$TEST_TMP/w.out" 2>"$TEST_TMP/w.err" &
	wpid=$!
	EXTRA_PIDS=$wpid
	sleep "$(python3 -c 'import random; print("%.2f" % random.uniform(0.4, 1.4))')"
	kill9
	wait "$wpid"
	EXTRA_PIDS=""
	w=$(cat "$TEST_TMP/w.out")
	seq=$(awk '{print $NF}' <<<"$w")
	acked=$(awk '{print $2}' <<<"$w")
	total=$((total + ${acked:-0}))
	conf "$wc"
	start_lichd "$TEST_TMP/d.conf" "$PORT" || { fail "round $r: lichd restarts after SIGKILL"; exit 1; }
	v=$($DUR verify $H "$PORT" $IQN 1 "$JOURNAL" "$NSLOTS" 2>"$TEST_TMP/v.err")
	check "round $r (write-cache $wc): lichd SIGKILLed under writes ($w); every acknowledged block intact after restart ($v)" \
		bash -c "[ '${acked:-0}' -gt 0 ] && grep -q 'bad 0$' <<<'$v'"
	[ -s "$TEST_TMP/v.err" ] && head -5 "$TEST_TMP/v.err"
	if [ "$r" = 1 ]; then
		after=$($DUR pr-show $H "$PORT" $IQN 1 2>&1)
		check "PERSISTENT RESERVE IN after SIGKILL shows the same key and reservation ($before -> $after)" \
			test "$after" = "$before" -a "$before" = "keys abc123 holder abc123 type 1"
	fi
done
check "$ROUNDS kill rounds, $total writes acknowledged in all, each checked after the kill that followed it" \
	test "$total" -gt 0
after=$($DUR pr-show $H "$PORT" $IQN 1 2>&1)
check "the reservation is still there after $ROUNDS kills ($after)" test "$after" = "$before"
stop_lichd; rc=$?
check "SIGTERM exits 0" test "$rc" = 0
exit 0
