#!/usr/bin/env bash
# 60-faults.sh — lichd under faults (issue 7): (a) 1,000 connections killed
# mid-login, mid-write (Data-Out outstanding, R2T half answered) and mid-read
# (Data-In in flight) while iscsi-perf keeps a session busy; (b) a session that
# never reads its socket does not stall another one on the same reactor nor
# make lichd buffer without bound: an honest one fills its CmdSN window and
# waits, a rogue one sends READs past MaxCmdSN (dropped) and immediate READs
# (TASK SET FULL past the window, then disconnected); (c) an exhausted memory pool answers TASK
# SET FULL/BUSY, never crashes, hangs or drops a command; (d) backend errors
# become sense data: ENOSPC on a full tmpfs (DATA PROTECT, SPACE ALLOCATION
# FAILED WRITE PROTECT, what Linux maps to ENOSPC) and a real EIO from a loop
# device whose backing file was cut short (MEDIUM ERROR, UNRECOVERED READ
# ERROR). Write EIO is covered by tests/unit/test_scsi_faults.c.
# Memory: RSS always; the pool's bytes_in_use from `lichctl --json pool` when
# lichctl is built next to lichd (control-socket in targets.conf).
set -u
. "$(dirname "$0")/../lib/common.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
FAULTS="python3 $HERE/lib/faults.py"
LICHCTL=$(dirname "$LICHD")/lichctl
IQN=iqn.2024-01.org.lich:faults
H=127.0.0.1
LOOPDEV=""
MNT=""
cleanup_faults() {
	[ -n "${PERF_PID:-}" ] && kill -9 "$PERF_PID" 2>/dev/null
	[ -n "${STALL_PID:-}" ] && kill -9 "$STALL_PID" 2>/dev/null
	[ -n "$LICHD_PID" ] && kill -9 "$LICHD_PID" 2>/dev/null && wait "$LICHD_PID" 2>/dev/null
	LICHD_PID=""
	[ -n "$LOOPDEV" ] && losetup -d "$LOOPDEV" 2>/dev/null
	[ -n "$MNT" ] && mountpoint -q "$MNT" && { umount "$MNT" || umount -l "$MNT"; }
	cleanup
}
trap cleanup_faults EXIT

ASAN=0
grep -qa __asan_init "$LICHD" && ASAN=1
DROPS=1000                 # about 2 s here, 11 s under ASan: no scaling down
HAVE_CTL=0
[ -x "$LICHCTL" ] && HAVE_CTL=1
[ "$HAVE_CTL" = 1 ] || echo "note: $LICHCTL not built: pool checks use RSS only"

# conf NAME "global lines" "target body" — writes $TEST_TMP/NAME.conf
conf() {
	local ctl=""
	[ "$HAVE_CTL" = 1 ] && ctl="control-socket $TEST_TMP/$1.sock"
	printf 'portal %s:%s\n%s\nstate-dir %s/state-%s\n%s\n<target %s>\n%s\n</target>\n' \
		"$H" "$PORT" "$ctl" "$TEST_TMP" "$1" "$2" "$IQN" "$3" >"$TEST_TMP/$1.conf"
	CTLSOCK="$TEST_TMP/$1.sock"
}

ram_lun() { printf '<backing-store ram:%s>\nbs-type ram\nsize %s\nlun %s\n</backing-store>\n' "$@"; }

# bytes_in_use of every reactor's pool, or "" without lichctl.
pool_bytes() {
	[ "$HAVE_CTL" = 1 ] || return 0
	"$LICHCTL" -s "$CTLSOCK" --json pool 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_in_use"])' 2>/dev/null
}

# pool_back BASE SLACK — waits up to 10 s for the pool to be back within SLACK
# bytes of BASE; sets POOL_NOW.
pool_back() {
	local i
	for i in $(seq 50); do
		POOL_NOW=$(pool_bytes)
		[ -n "$POOL_NOW" ] && [ "$POOL_NOW" -le $(($1 + $2)) ] && return 0
		sleep 0.2
	done
	return 1
}

# check_pool WHAT BASE — a PASS/FAIL when lichctl is there.
check_pool() {
	[ "$HAVE_CTL" = 1 ] || return 0
	if pool_back "$2" $((256 << 10)); then
		pass "$1: pool back to baseline ($2 -> $POOL_NOW bytes in use)"
	else
		fail "$1: pool back to baseline ($2 -> ${POOL_NOW:-?} bytes in use)"
	fi
}

alive() { kill -0 "$LICHD_PID" 2>/dev/null; }

# ======== (a) 1,000 connections dropped mid-transfer under load ========
PORT=$(free_port)
conf a "cores 0-1
memory-limit 256M" "$(ram_lun fa1 64M 1)"
start_lichd "$TEST_TMP/a.conf" "$PORT" || { fail "(a) lichd starts"; exit 1; }
URL=iscsi://$H:$PORT/$IQN/1
$FAULTS drop $H "$PORT" $IQN 1 48 >/dev/null        # warm the pools' caches
sleep 0.5
pool0=$(pool_bytes); rss0=$(lichd_rss_kb)
iscsi-perf -t 600 -m 4 -b 16 "$URL" >"$TEST_TMP/perf.out" 2>&1 &
PERF_PID=$!
sleep 1
t0=$(date +%s.%N)
$FAULTS drop $H "$PORT" $IQN 1 "$DROPS" >"$TEST_TMP/drop.out" 2>"$TEST_TMP/drop.err"
t1=$(date +%s.%N)
secs=$(python3 -c "print('%.1f' % ($t1 - $t0))")
lines0=$(tr '\r' '\n' <"$TEST_TMP/perf.out" | grep -c 'iops current')
sleep 2.2
perf_tail=$(tr '\r' '\n' <"$TEST_TMP/perf.out" | grep 'iops current' | tail -1)
lines1=$(tr '\r' '\n' <"$TEST_TMP/perf.out" | grep -c 'iops current')
check "(a) $DROPS connections killed mid-login/mid-write/mid-read in ${secs}s$([ "$ASAN" = 1 ] && echo ' (ASan build)'): $(cat "$TEST_TMP/drop.out")" \
	grep -q "^dropped $DROPS setup_errors 0 " "$TEST_TMP/drop.out"
check "(a) lichd survived the drops" alive
perf_ok=0
if kill -0 "$PERF_PID" 2>/dev/null && [ "$lines1" -gt "$lines0" ] &&
   ! grep -qE 'iops current 0 ' <<<"$perf_tail" && grep -qE 'busy 0( |$)' <<<"$perf_tail"; then
	perf_ok=1
fi
kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID"; prc=$?; PERF_PID=""
check "(a) the iscsi-perf session ran on through the drops (last second: $(echo ${perf_tail#* - }))" \
	test "$perf_ok" = 1 -a "$prc" = 0
check "(a) iscsi-inq after the drops" grep -q "^Vendor:LICH" <<<"$(timeout 20 iscsi-inq "$URL" 2>&1)"
check_pool "(a) after $DROPS drops" "$pool0"
rss1=$(lichd_rss_kb)
rss_bound=$((32 << 10)); [ "$ASAN" = 1 ] && rss_bound=$((128 << 10))
check "(a) RSS grew less than $((rss_bound >> 10)) MiB over the drops ($rss0 -> $rss1 KiB)" \
	test $((rss1 - rss0)) -lt "$rss_bound"
stop_lichd; rc=$?
check "(a) SIGTERM exits 0 after the drops" test "$rc" = 0

# ======== (b) a stalled connection on the same reactor ========
PORT=$(free_port)
conf b "cores 0
memory-limit 256M" "$(ram_lun fb1 64M 1)"
start_lichd "$TEST_TMP/b.conf" "$PORT" || { fail "(b) lichd starts"; exit 1; }
MEAS=2
[ "$ASAN" = 1 ] && MEAS=3
base=$($FAULTS measure $H "$PORT" $IQN 1 $MEAS)
base_ops=$(awk '{print $2}' <<<"$base")
sleep 0.3
pool0=$(pool_bytes); rss0=$(lichd_rss_kb)
coproc STALL { $FAULTS stall $H "$PORT" $IQN 1 2>&1; }
STALL_PID=$STALL_PID
read -r -t 20 line <&"${STALL[0]}"
check "(b) the staller queued a window of READs and stopped reading ($line)" \
	grep -q "^READY honest" <<<"$line"
m1=$($FAULTS measure $H "$PORT" $IQN 1 $MEAS)
ops1=$(awk '{print $2}' <<<"$m1")
# Not a timing test (the machine may be loaded): a session stuck behind the
# staller would complete nothing; a tenth of the unstalled rate is plenty.
floor=$((base_ops / 10)); [ "$floor" -lt 5 ] && floor=5
check "(b) another session on the same reactor keeps going while one is stalled ($base_ops -> $ops1 write+verify cycles in ${MEAS}s, >= $floor)" \
	test "$(awk '{print $4}' <<<"$m1")" = 0 -a "$ops1" -ge "$floor"
rss1=$(lichd_rss_kb); pool1=$(pool_bytes)
echo go >&"${STALL[1]}"
read -r -t 30 line <&"${STALL[0]}"
m2=$($FAULTS measure $H "$PORT" $IQN 1 $MEAS)
ops2=$(awk '{print $2}' <<<"$m2")
rss2=$(lichd_rss_kb); pool2=$(pool_bytes)
check "(b) a staller sending past MaxCmdSN does not slow the other session ($line; $base_ops -> $ops2)" \
	test "$(awk '{print $4}' <<<"$m2")" = 0 -a "$ops2" -ge $((base_ops / 2))
# The honest window is 128 READs of 256 KiB = 32 MiB at most.
bound=$((48 << 10))
[ "$ASAN" = 1 ] && bound=$((160 << 10))
check "(b) lichd buffers a bounded amount for the stalled session (RSS $rss0 -> $rss1 -> $rss2 KiB, bound +$((bound >> 10)) MiB)" \
	test $((rss2 - rss0)) -lt "$bound"
if [ "$HAVE_CTL" = 1 ]; then
	check "(b) pool in use stays bounded while stalled ($pool0 -> $pool1 -> $pool2 bytes)" \
		test $((pool2 - pool0)) -lt $((40 << 20))
fi
echo close >&"${STALL[1]}"
read -r -t 20 line <&"${STALL[0]}"
wait "$STALL_PID" 2>/dev/null; STALL_PID=""
check "(b) the staller closed" test "$line" = CLOSED
check_pool "(b) after the staller closed" "$pool0"
check "(b) lichd still serves after the staller left" \
	grep -q "errors 0" <<<"$($FAULTS measure $H "$PORT" $IQN 1 0.5)"
stop_lichd; rc=$?
check "(b) SIGTERM exits 0" test "$rc" = 0

# ======== (c) memory pool exhausted ========
PORT=$(free_port)
conf c "cores 0
memory-limit 8M" "$(ram_lun fc1 32M 1)"
start_lichd "$TEST_TMP/c.conf" "$PORT" || { fail "(c) lichd starts"; exit 1; }
$FAULTS measure $H "$PORT" $IQN 1 0.3 >/dev/null
sleep 0.3
pool0=$(pool_bytes)
out=$(timeout 90 $FAULTS exhaust $H "$PORT" $IQN 1 4 8 4 2>"$TEST_TMP/exhaust.err")
read -r _ good _ full _ busy _ other _ lost <<<"$out"
check "(c) 4 sessions x 8 commands of 1 MiB against an 8 MiB pool: the excess is answered TASK SET FULL/BUSY ($out)" \
	test -n "$out" -a "${lost:-1}" = 0 -a "${other:-1}" = 0 -a $((full + busy)) -gt 0 -a "$good" -gt 0
[ -s "$TEST_TMP/exhaust.err" ] && head -5 "$TEST_TMP/exhaust.err"
check "(c) lichd survived the exhaustion" alive
check_pool "(c) after the exhaustion" "$pool0"
out=$(timeout 60 $FAULTS exhaust $H "$PORT" $IQN 1 1 2 1 2>&1)
read -r _ good _ full _ busy _ other _ lost <<<"$out"
check "(c) after the load stops every command succeeds again ($out)" \
	test -n "$out" -a "${good:-0}" -gt 0 -a "$full$busy$other$lost" = 0000
stop_lichd; rc=$?
check "(c) SIGTERM exits 0" test "$rc" = 0

# ======== (d) backend errors as sense data ========
MNT=$TEST_TMP/tmpfs
mkdir -p "$MNT"
if mount -t tmpfs -o size=4M tmpfs "$MNT" 2>/dev/null; then
	truncate -s 64M "$MNT/thin.img"
	EIO_LUN=""
	truncate -s 16M "$TEST_TMP/eio.img"
	if LOOPDEV=$(losetup -f --show "$TEST_TMP/eio.img" 2>/dev/null); then
		head -c 16M /dev/urandom >"$TEST_TMP/eio.img"
		EIO_LUN=$(printf '<backing-store %s>\nlun 2\n</backing-store>\n' "$LOOPDEV")
	else
		LOOPDEV=""
	fi
	PORT=$(free_port)
	conf d "cores 0" "$(printf '<backing-store %s/thin.img>\nlun 1\nwrite-cache off\n</backing-store>\n' "$MNT")
$EIO_LUN"
	start_lichd "$TEST_TMP/d.conf" "$PORT" || { fail "(d) lichd starts"; exit 1; }
	# 1 MiB writes from LBA 0 until the 4 MiB tmpfs is full.
	first_fail=""
	for i in $(seq 0 15); do
		r=$($FAULTS sense $H "$PORT" $IQN 1 $((i * 2048)) write 2048)
		if [ "$r" != "status 0 sense -" ]; then first_fail="$i: $r"; break; fi
	done
	check "(d) ENOSPC: a write past the tmpfs' space gets CHECK CONDITION, DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT ($first_fail)" \
		grep -q "status 2 sense 7/27/07" <<<"$first_fail"
	r=$($FAULTS sense $H "$PORT" $IQN 1 0 write 8)
	check "(d) ENOSPC: rewriting allocated blocks still works ($r)" test "$r" = "status 0 sense -"
	r=$($FAULTS sense $H "$PORT" $IQN 1 100000 read 8)
	check "(d) ENOSPC: reads (of a hole) still work ($r)" test "$r" = "status 0 sense -"
	if [ -n "$LOOPDEV" ]; then
		truncate -s 4M "$TEST_TMP/eio.img"          # the loop device now fails past 4 MiB
		r=$($FAULTS sense $H "$PORT" $IQN 2 16384 read 8)
		check "(d) EIO (loop device, backing file cut short): a read gets MEDIUM ERROR / UNRECOVERED READ ERROR ($r)" \
			test "$r" = "status 2 sense 3/11/00"
		r=$($FAULTS sense $H "$PORT" $IQN 2 8 read 8)
		check "(d) EIO: reads of intact LBAs still work ($r)" test "$r" = "status 0 sense -"
	else
		echo "note: no loop device: read EIO covered by tests/unit/test_scsi_faults.c only"
	fi
	check "(d) lichd keeps serving after backend errors" \
		grep -q "^Vendor:LICH" <<<"$(timeout 20 iscsi-inq "iscsi://$H:$PORT/$IQN/1" 2>&1)"
	stop_lichd; rc=$?
	check "(d) SIGTERM exits 0" test "$rc" = 0
else
	fail "(d) mount a 4 MiB tmpfs (needs root)"
fi
exit 0
