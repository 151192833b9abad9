#!/usr/bin/env bash
# 45-daemon.sh — lichd as a service: --daemon and --pidfile (the pid file
# holds the daemon's pid and is locked, so a second lichd refuses it; removed
# at exit), sd_notify READY/RELOADING/STOPPING on a NOTIFY_SOCKET (a path and
# an abstract "@name"), SIGHUP reload, SIGTERM with a logged-in initiator
# (Async Message "target requests logout", the initiator logs out, lichd exits
# 0 quickly; one that ignores it is dropped after shutdown-timeout), and
# `make install DESTDIR=... PREFIX=/usr`.
set -u
. "$(dirname "$0")/../lib/common.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
HELPER=$root/tests/integration/lib/daemon_check.py
BUILD=${BUILD:-$(basename "$(dirname "$LICHD")")}
PORT=$(free_port)
IQN=iqn.2024-01.org.lich:daemon
IQN2=iqn.2024-01.org.lich:daemon-added

write_conf() { # write_conf FILE PORT SHUTDOWN_TIMEOUT [extra target]
	cat >"$1" <<EOF
portal 127.0.0.1:$2
control-socket $TEST_TMP/ctl-$(basename "$1").sock
cores 0
memory-limit 64M
state-dir $TEST_TMP/state
shutdown-timeout $3
<target $IQN>
    <backing-store ram:daemon1>
        bs-type ram
        size 16M
    </backing-store>
</target>
EOF
	[ -n "${4:-}" ] && printf '<target %s>\n  backing-store ram:d2\n  bs-type ram\n  size 8M\n</target>\n' "$4" >>"$1"
	return 0
}

wait_for() { # wait_for TENTHS command... — polls until the command succeeds
	local n=$1 i; shift
	for i in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}
gone() { ! kill -0 "$1" 2>/dev/null; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
lists() { iscsi-ls -s "iscsi://127.0.0.1:$1" 2>/dev/null | grep -q "$2"; }
count() { grep -c -- "$1" "$2" 2>/dev/null; }

# ---- --daemon and --pidfile ----
write_conf "$TEST_TMP/d.conf" "$PORT" 5
PIDF=$TEST_TMP/run/lichd.pid
mkdir -p "$TEST_TMP/run"
t0=$(date +%s.%N)
# The daemon's stderr ends up on /dev/null: sanitizer reports (ASan build) go
# to files, checked after it stopped.
SAN_LOG=$TEST_TMP/san-daemon
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SAN_LOG" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$SAN_LOG" \
	"$LICHD" --daemon --pidfile "$PIDF" -c "$TEST_TMP/d.conf" >"$TEST_TMP/daemon.out" 2>&1
rc=$?
check "--daemon: the starting process exits 0 once the daemon is up" test "$rc" -eq 0
DPID=$(cat "$PIDF" 2>/dev/null)
EXTRA_PIDS=${DPID:-}
check "--daemon: portal listening when the starting process returns" listening "$PORT"
check "--pidfile holds the daemon's pid (a live lichd)" \
	test -n "$DPID" -a "$(readlink "/proc/${DPID:-0}/exe" 2>/dev/null)" = "$(readlink -f "$LICHD")"
sid=$(awk '{print $6}' "/proc/${DPID:-0}/stat" 2>/dev/null)
check "--daemon: own session, not its leader (double fork), cwd /, stdio on /dev/null" \
	test -n "$sid" -a "$sid" != "$DPID" -a "$sid" != "$(awk '{print $6}' /proc/$$/stat)" \
	-a "$(readlink "/proc/${DPID:-0}/cwd")" = / \
	-a "$(readlink "/proc/${DPID:-0}/fd/0")" = /dev/null \
	-a "$(readlink "/proc/${DPID:-0}/fd/2")" = /dev/null
check "--daemon: serves the LUN" lists "$PORT" "$IQN"

PORT2=$(free_port)
write_conf "$TEST_TMP/d2.conf" "$PORT2" 5
out=$("$LICHD" --pidfile "$PIDF" -c "$TEST_TMP/d2.conf" 2>&1); rc=$?
check "a second lichd with the same pid file refuses to start" \
	test "$rc" -eq 1 -a -n "$(echo "$out" | grep -F "already running (pid $DPID)")"
check "... and did not take the port or touch the pid file" \
	test "$(cat "$PIDF")" = "$DPID" -a -z "$(listening "$PORT2" && echo yes)"
write_conf "$TEST_TMP/d3.conf" "$PORT" 5
"$LICHD" --daemon --pidfile "$TEST_TMP/run/other.pid" -c "$TEST_TMP/d3.conf" \
	>"$TEST_TMP/busy.out" 2>&1; rc=$?
check "--daemon whose start fails (port in use) exits 1 with the error" \
	test "$rc" -eq 1 -a -n "$(grep -i "address already in use" "$TEST_TMP/busy.out")" \
	-a ! -e "$TEST_TMP/run/other.pid"
kill -TERM "$DPID" 2>/dev/null
check "--daemon: SIGTERM stops it" wait_for 100 gone "$DPID"
check "--daemon: pid file removed at exit" test ! -e "$PIDF"
check "--daemon: no sanitizer report from the detached daemon" \
	test -z "$(ls "$SAN_LOG".* 2>/dev/null)"
ls "$SAN_LOG".* >/dev/null 2>&1 && head -30 "$SAN_LOG".*
EXTRA_PIDS=
echo "daemon start took $(echo "$(date +%s.%N) - $t0" | bc) s (incl. checks)"

# ---- sd_notify, reload, SIGTERM with an initiator that obeys ----
NSOCK=$TEST_TMP/notify.sock
touch "$TEST_TMP/notify.log" "$TEST_TMP/notify2.log"
python3 "$HELPER" notify "$NSOCK" "$TEST_TMP/notify.log" &
NPID=$!
EXTRA_PIDS="$NPID"
wait_for 50 grep -q listening "$TEST_TMP/notify.log"
PORT=$(free_port)
write_conf "$TEST_TMP/n.conf" "$PORT" 5
NOTIFY_SOCKET=$NSOCK start_lichd "$TEST_TMP/n.conf" "$PORT" || fail "lichd under NOTIFY_SOCKET starts"
check "sd_notify: READY=1 with a STATUS once the portals listen" \
	wait_for 50 grep -q "^READY=1|STATUS=serving: 1 targets, 1 portals|MAINPID=$LICHD_PID$" \
	"$TEST_TMP/notify.log"

# the reload also changes shutdown-timeout (5 -> 4): it applies to the stop
write_conf "$TEST_TMP/n.conf" "$PORT" 4 "$IQN2"
kill -HUP "$LICHD_PID"
seq_of() { grep -oE "^(READY|RELOADING|STOPPING)=1" "$1" | tr '\n' ' '; }
check "sd_notify: RELOADING=1 then READY=1 around SIGHUP" \
	wait_for 50 eval '[ "$(seq_of "$TEST_TMP/notify.log")" = "READY=1 RELOADING=1 READY=1 " ]'
check "sd_notify: RELOADING=1 carries MONOTONIC_USEC" \
	grep -q "^RELOADING=1|STATUS=reloading .*|MONOTONIC_USEC=[0-9]*$" "$TEST_TMP/notify.log"
check "SIGHUP reload still works (added target is served)" wait_for 50 lists "$PORT" "$IQN2"

python3 "$HELPER" session 127.0.0.1 "$PORT" "$IQN" obey >"$TEST_TMP/obey.log" 2>&1 &
CPID=$!
EXTRA_PIDS="$NPID $CPID"
wait_for 100 grep -q logged-in "$TEST_TMP/obey.log"
t0=$(date +%s%N)
stop_lichd; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait "$CPID" 2>/dev/null
check "SIGTERM: the initiator gets Async Message event 1 (logout request), Parameter3 = 4 s (reloaded)" \
	grep -q "^async event=1 param3=4 itt=0xffffffff$" "$TEST_TMP/obey.log"
check "SIGTERM: the initiator's logout is answered" grep -q "^logout-response$" "$TEST_TMP/obey.log"
check "SIGTERM with a session that logs out: exit 0 well within the bound (${ms} ms)" \
	test "$rc" -eq 0 -a "$ms" -lt 4000
check "lichd logged the logout request" grep -q "asking .* to log out within 4 s" "$TEST_TMP/lichd.log"
check "sd_notify: STOPPING=1 at shutdown, last" \
	test "$(seq_of "$TEST_TMP/notify.log")" = "READY=1 RELOADING=1 READY=1 STOPPING=1 "
kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null

# ---- abstract NOTIFY_SOCKET, an initiator that ignores the request ----
ANAME="@lich-test-notify-$$"
python3 "$HELPER" notify "$ANAME" "$TEST_TMP/notify2.log" &
NPID=$!
EXTRA_PIDS="$NPID"
wait_for 50 grep -q listening "$TEST_TMP/notify2.log"
PORT=$(free_port)
write_conf "$TEST_TMP/a.conf" "$PORT" 1
NOTIFY_SOCKET=$ANAME start_lichd "$TEST_TMP/a.conf" "$PORT" || fail "lichd with an abstract NOTIFY_SOCKET starts"
check "sd_notify on an abstract socket (@name): READY=1" wait_for 50 grep -q "^READY=1" "$TEST_TMP/notify2.log"
python3 "$HELPER" session 127.0.0.1 "$PORT" "$IQN" ignore >"$TEST_TMP/ignore.log" 2>&1 &
CPID=$!
EXTRA_PIDS="$NPID $CPID"
wait_for 100 grep -q logged-in "$TEST_TMP/ignore.log"
t0=$(date +%s%N)
stop_lichd; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait "$CPID" 2>/dev/null
check "SIGTERM, initiator ignores the request: it was asked (Parameter3 = 1 s), then dropped" \
	test -n "$(grep "^async event=1 param3=1 " "$TEST_TMP/ignore.log")" \
	-a -n "$(grep "^closed-by-target$" "$TEST_TMP/ignore.log")"
check "... and lichd exits 0 after shutdown-timeout 1 s, not much later (${ms} ms)" \
	test "$rc" -eq 0 -a "$ms" -ge 900 -a "$ms" -lt 4000
check "sd_notify on an abstract socket: STOPPING=1" grep -q "^STOPPING=1" "$TEST_TMP/notify2.log"
kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null
EXTRA_PIDS=

# ---- make install ----
DEST=$TEST_TMP/root
# -o: install what this build made, never rebuild it (with other flags)
make -C "$root" --no-print-directory BUILD="$BUILD" -o "$BUILD/lichd" -o "$BUILD/lichctl" \
	install DESTDIR="$DEST" PREFIX=/usr >"$TEST_TMP/install.log" 2>&1; rc=$?
[ "$rc" -eq 0 ] || tail -20 "$TEST_TMP/install.log"
check "make install DESTDIR PREFIX=/usr succeeds" test "$rc" -eq 0
installed_bin() { [ -x "$DEST/usr/sbin/$1" ] && cmp -s "$DEST/usr/sbin/$1" "$root/$BUILD/$1"; }
check "install: /usr/sbin/lichd, executable, the built binary" installed_bin lichd
if [ -e "$root/$BUILD/lichctl" ]; then
	check "install: /usr/sbin/lichctl" installed_bin lichctl
fi
check "install: man pages lichd.8, lichctl.8, targets.conf.5" \
	test -f "$DEST/usr/share/man/man8/lichd.8" -a -f "$DEST/usr/share/man/man8/lichctl.8" \
	-a -f "$DEST/usr/share/man/man5/targets.conf.5"
check "install: systemd unit in /lib/systemd/system, ExecStart=/usr/sbin/lichd" \
	grep -q "^ExecStart=/usr/sbin/lichd -c /etc/lich/targets.conf$" \
	"$DEST/lib/systemd/system/lichd.service"
check "install: /etc/lich/targets.conf (DESTDIR: always) that lichd --check accepts" \
	test -f "$DEST/etc/lich/targets.conf" -a \
	"$("$LICHD" --check -c "$DEST/etc/lich/targets.conf" 2>/dev/null)" = "$DEST/etc/lich/targets.conf: OK"
make -C "$root" --no-print-directory BUILD="$BUILD" uninstall DESTDIR="$DEST" PREFIX=/usr \
	>>"$TEST_TMP/install.log" 2>&1
check "make uninstall removes the binaries, man pages and unit" \
	test ! -e "$DEST/usr/sbin/lichd" -a ! -e "$DEST/usr/share/man/man8/lichd.8" \
	-a ! -e "$DEST/lib/systemd/system/lichd.service"
