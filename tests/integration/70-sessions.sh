#!/usr/bin/env bash
# 70-sessions.sh — 1,000 concurrent sessions on one lichd (issue 7): all logged
# in at once (lichd's own count, lichctl show sessions), each writing and
# reading back its own block and answering TEST UNIT READY while all are
# logged in, then all idle: memory per idle session (RSS growth and pool
# growth / N) must stay within 64 KiB beyond the pool. Then all log out.
# lichd is started with the shell's soft descriptor limit lowered to 1024 so
# that it must raise its own (it takes the hard limit); the client raises its
# own. Under a sanitizer build (ASan inflates RSS and is slow): 200 sessions,
# the memory figures printed but not judged.
# The client is tests/integration/lib/load_sessions.py.
set -u
. "$(dirname "$0")/../lib/common.sh"

LICHCTL=${LICHCTL:-$(dirname "$LICHD")/lichctl}
here=$(cd "$(dirname "$0")" && pwd)
port=$(free_port)
iqn=iqn.2026-11.org.lich:load
sock=$TEST_TMP/lichd.sock
n=1000
bound=
if nm -a "$LICHD" 2>/dev/null | grep -q __asan_init || ldd "$LICHD" 2>/dev/null | grep -q libasan; then
	n=200
	bound=--no-memory-bound
	echo "note: sanitizer build: $n sessions, memory bound not judged"
fi
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((n + 100)) ]; then
	fail "hard descriptor limit $hard is below $((n + 100)): cannot test $n sessions"
	exit 0
fi

cores=0; [ "$(nproc)" -ge 2 ] && cores=0-1
cat >"$TEST_TMP/t.conf" <<CONF
portal 127.0.0.1:$port
cores $cores
memory-limit 512M
nop-interval 0
control-socket $sock
<target $iqn>
    <backing-store ram:load1>
        size 8M
        lun 1
    </backing-store>
</target>
CONF

# lichd under the common default soft limit: it has to raise it itself.
ulimit -Sn 1024
start_lichd "$TEST_TMP/t.conf" "$port" || { fail "lichd starts"; exit 0; }
lim=$(awk '/^Max open files/ {print $4}' "/proc/$LICHD_PID/limits")
check "lichd raised its soft descriptor limit from 1024 (now $lim)" \
	test "$lim" = unlimited -o "$lim" -gt $((n + 100))

timeout 85 python3 "$here/lib/load_sessions.py" --port "$port" --target "$iqn" \
	--sessions "$n" --pid "$LICHD_PID" --lichctl "$LICHCTL" --socket "$sock" $bound
rc=$?
check "load client finished ($rc)" test "$rc" = 0
check "lichd did not log a refused connection" \
	test -z "$(grep -iE 'accept: .*pausing|no memory for a new connection' "$TEST_TMP/lichd.log")"
stop_lichd; rc=$?
check "lichd exits 0 on SIGTERM after the load" test "$rc" = 0
