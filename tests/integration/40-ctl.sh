#!/usr/bin/env bash
# 40-ctl.sh — lichctl against a running lichd (two reactors when the machine
# has two CPUs): every verb, with real initiators (libiscsi tools and the
# Python client); the control socket's life (permissions, stale socket, a
# second lichd refused); save + lichd --check; the Prometheus endpoint;
# errors exit 1 with one line; lichctl without a daemon says so.
set -u
. "$(dirname "$0")/../lib/common.sh"

LICHCTL=${LICHCTL:-$(dirname "$LICHD")/lichctl}
port=$(free_port)
mport=$(free_port)
iqn=iqn.2026-11.org.lich:ctl
iqn2=iqn.2026-11.org.lich:ctl-added
sock=$TEST_TMP/run/lich/lichd.sock
cores=0; [ "$(nproc)" -ge 2 ] && cores=0-1
nreactors=1; [ "$cores" = 0-1 ] && nreactors=2
truncate -s 64M "$TEST_TMP/disk2.img"
mkdir -p "$TEST_TMP/state"
cat >"$TEST_TMP/t.conf" <<CONF
portal 127.0.0.1:$port
cores $cores
memory-limit 256M
state-dir $TEST_TMP/state
control-socket $sock
metrics 127.0.0.1:$mport
<target $iqn>
    <backing-store ram:ctl1>
        size 32M
        lun 1
    </backing-store>
</target>
CONF
ctl() { "$LICHCTL" -s "$sock" "$@"; }
url="iscsi://127.0.0.1:$port"

# ---- no daemon ----
out=$("$LICHCTL" -s "$TEST_TMP/none.sock" show targets 2>&1); rc=$?
check "lichctl without a running lichd: exit 1, says lichd is not reachable" \
	test "$rc" = 1 -a "$(echo "$out" | wc -l)" = 1 -a -n "$(echo "$out" | grep 'is lichd running')"

start_lichd "$TEST_TMP/t.conf" "$port" || { fail "lichd starts with a control socket"; exit 1; }
pass "lichd starts with a control socket"
check "control socket directory is 0700" test "$(stat -c %a "$(dirname "$sock")")" = 700
check "control socket is 0600" test "$(stat -c %a "$sock")" = 600
check "control socket is a socket" test -S "$sock"
# a client that connects and sends nothing: it must not hold up the others,
# and lichd closes it after its read timeout (10 s)
python3 -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(30); t0 = time.monotonic()
s.sendall(b'show')   # half a request, no newline
d = s.recv(100)
print('%.1f %r' % (time.monotonic() - t0, d))" "$sock" >"$TEST_TMP/idle.out" 2>&1 &
idle_pid=$!

# ---- a second lichd on the same socket is refused ----
port_b=$(free_port)
sed "s/127.0.0.1:$port/127.0.0.1:$port_b/; s/127.0.0.1:$mport/127.0.0.1:$(free_port)/" \
	"$TEST_TMP/t.conf" >"$TEST_TMP/t2.conf"
timeout 10 "$LICHD" -c "$TEST_TMP/t2.conf" >"$TEST_TMP/second.log" 2>&1; rc=$?
check "a second lichd on the same control socket refuses to start" \
	test "$rc" -ne 0 -a -n "$(grep 'another lichd answers' "$TEST_TMP/second.log")"
check "the first lichd still answers after that" ctl show portals >/dev/null
check "lichctl finds the socket through LICH_CONTROL_SOCKET" \
	env LICH_CONTROL_SOCKET="$sock" "$LICHCTL" show portals
check "-s wins over LICH_CONTROL_SOCKET" \
	sh -c "! env LICH_CONTROL_SOCKET='$sock' '$LICHCTL' -s '$TEST_TMP/none.sock' show portals 2>/dev/null"

# ---- show ----
out=$(ctl show targets)
check "show targets lists the target with its LUN" \
	test -n "$(echo "$out" | awk -v t="$iqn" '$1 == t && $3 == "1"')"
check "show targets: text table has a header" test "$(echo "$out" | head -1 | awk '{print $1}')" = TARGET
out=$(ctl --json show targets)
check "show targets --json" python3 -c "import json,sys; d=json.loads(sys.argv[1]); \
assert d['targets'][0]['name']=='$iqn' and d['targets'][0]['luns']==[1] and d['targets'][0]['sessions']==0" "$out"
out=$(ctl show luns)
check "show luns: ram LUN 1 of 32 MiB" test -n "$(echo "$out" | grep "^$iqn *1 *ram *32.0M")"
out=$(ctl show portals)
check "show portals lists the portal and the metrics address" \
	test -n "$(echo "$out" | grep "^tcp *127.0.0.1 *$port")" -a -n "$(echo "$out" | grep "$mport")"
check "show portals --json" python3 -c "import json,sys; d=json.loads(sys.argv[1]); \
assert d['portals']==[{'transport':'tcp','address':'127.0.0.1','port':$port}] and d['control_socket']=='$sock'" \
	"$(ctl --json show portals)"

# ---- sessions, stats, logout (Python initiator) ----
timeout 60 python3 "$(dirname "$0")/lib/ctl_check.py" "$LICHCTL" "$sock" 127.0.0.1 "$port" \
	"$iqn" "$nreactors" 2>&1 || echo "FAIL: ctl_check.py exited $?"

# ---- stats with libiscsi's iscsi-perf: counters grow ----
r0=$(ctl --json stats | python3 -c "import json,sys; print([l['read_ops'] for l in json.load(sys.stdin)['luns'] if l['lun']==1][0])")
timeout 10 iscsi-perf -t 2 -b 8 "$url/$iqn/1" >/dev/null 2>&1
r1=$(ctl --json stats | python3 -c "import json,sys; print([l['read_ops'] for l in json.load(sys.stdin)['luns'] if l['lun']==1][0])")
check "stats: read ops grow by iscsi-perf's reads ($r0 -> $r1)" test "$r1" -gt $((r0 + 100))
out=$(ctl stats)
check "stats: text table with p50/p99/p999 per LUN" \
	test -n "$(echo "$out" | head -1 | grep 'P50_US *P99_US *P999_US')"

# ---- stats --interval: rates per interval, computed by lichctl ----
# iscsi-perf runs through both intervals (4 s against 2 x 1 s of sampling).
timeout 20 iscsi-perf -t 4 -b 8 "$url/$iqn/1" >/dev/null 2>&1 &
perf_pid=$!
sleep 0.7
ctl --json stats --interval 1 --count 2 >"$TEST_TMP/rates.json" 2>"$TEST_TMP/rates.err"; rc=$?
wait "$perf_pid"
check "stats --interval 1 --count 2 --json: two JSON lines, each about 1 s long, with rates" \
	python3 -c "
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert sys.argv[2] == '0' and len(lines) == 2, (sys.argv[2], lines)
for l in lines:
    d = json.loads(l)
    assert 0.9 <= d['seconds'] <= 2.0, d['seconds']
    for x in d['luns'] + d['connections']:
        assert all(x[k] >= 0 for k in ('read_iops', 'write_iops', 'read_mbps', 'write_mbps', 'errors_per_s'))" \
	"$TEST_TMP/rates.json" "$rc"
check "stats --interval under iscsi-perf: the LUN's read IOPS, MB/s and interval latency are not 0" \
	python3 -c "
import json, sys
for l in open(sys.argv[1]).read().splitlines():
    d = json.loads(l)
    lun = [x for x in d['luns'] if x['target'] == sys.argv[2] and x['lun'] == 1][0]
    assert lun['read_iops'] > 10 and lun['read_mbps'] > 0, lun
    lat = lun['latency_us']
    assert lat['count'] > 10 and 0 < lat['p50'] <= lat['p99'] <= lat['p999'], lat" \
	"$TEST_TMP/rates.json" "$iqn"
check "stats --interval under iscsi-perf: its connection's read IOPS are not 0" \
	python3 -c "
import json, sys
for l in open(sys.argv[1]).read().splitlines():
    d = json.loads(l)
    c = [x for x in d['connections'] if x['target'] == sys.argv[2]]
    assert c and max(x['read_iops'] for x in c) > 10, c" "$TEST_TMP/rates.json" "$iqn"
# the interval's IOPS agree with the cumulative counters' growth over it
out=$( (ctl --json stats; ctl --json stats --interval 1 --count 1; ctl --json stats) 2>&1)
check "stats --interval with no I/O: 0 IOPS, 0 MB/s, no latency samples for the LUN" \
	python3 -c "
import json, sys
a, d, b = [json.loads(l) for l in sys.argv[1].splitlines()]
la = [x for x in a['luns'] if x['lun'] == 1][0]; lb = [x for x in b['luns'] if x['lun'] == 1][0]
assert la['read_ops'] == lb['read_ops'] and la['write_ops'] == lb['write_ops'], (la, lb)
lun = [x for x in d['luns'] if x['target'] == sys.argv[2] and x['lun'] == 1][0]
assert lun['read_iops'] == 0 and lun['write_iops'] == 0 and lun['read_mbps'] == 0, lun
assert lun['errors_per_s'] == 0 and lun['latency_us']['count'] == 0, lun" "$out" "$iqn"
out=$(ctl stats --interval 0.5 --count 2)
check "stats --interval text: two reports, each an interval line and two tables" \
	test "$(echo "$out" | grep -c '^interval 0\.[0-9]* s$')" = 2 \
	-a "$(echo "$out" | grep -c '^TARGET *LUN *R_IOPS *W_IOPS *R_MB/s *W_MB/s *ERR/s *P50_US *P99_US *P999_US$')" = 2 \
	-a "$(echo "$out" | grep -c '^SESSION *CID *PEER *R_IOPS')" = 2 \
	-a -n "$(echo "$out" | grep "^$iqn *1 *0\.0 *0\.0 *0\.00 *0\.00 *0\.0 ")"
out=$(ctl stats --interval 0 2>&1); rc=$?
check "stats --interval 0: exit 1 with one line" test "$rc" = 1 -a "$(echo "$out" | wc -l)" = 1
out=$(ctl stats --count 2 2>&1); rc=$?
check "stats --count without --interval: exit 1" test "$rc" = 1 -a -n "$(echo "$out" | grep 'needs --interval')"

# ---- pool ----
out=$(ctl --json pool)
check "pool --json: integer bytes_in_use, one entry per reactor with caches" python3 -c "
import json,sys; d=json.loads(sys.argv[1])
assert isinstance(d['bytes_in_use'], int) and d['bytes_in_use'] >= 0
assert len(d['reactors']) == $nreactors
assert sum(r['bytes_in_use'] for r in d['reactors']) == d['bytes_in_use']
assert all(isinstance(r['hugepages'], bool) and r['chunks'] >= 0 for r in d['reactors'])
assert any(c['name'] == 'iscsi_task' for r in d['reactors'] for c in r['caches'])" "$out"
check "pool: text tables" test -n "$(ctl pool | grep '^total bytes in use: [0-9]*$')"
iscsi-inq "$url/$iqn/1" >/dev/null 2>&1
b1=$(ctl --json pool | python3 -c "import json,sys; print(json.load(sys.stdin)['bytes_in_use'])")
for i in 1 2 3; do iscsi-inq "$url/$iqn/1" >/dev/null 2>&1; done
sleep 0.3
b2=$(ctl --json pool | python3 -c "import json,sys; print(json.load(sys.stdin)['bytes_in_use'])")
check "pool: bytes_in_use back to the same value after sessions came and went ($b1, $b2)" \
	test "$b1" = "$b2"

# ---- lun add / del ----
check "lun add (ram) succeeds" ctl lun add "$iqn" 2 ram:added --size 16M
check "iscsi-ls shows the added LUN" sh -c "iscsi-ls -s '$url' 2>/dev/null | grep -q 'Lun:2 '"
check "lun add (uring file) succeeds" ctl lun add "$iqn" 3 "$TEST_TMP/disk2.img"
check "iscsi-inq reads the file LUN" iscsi-inq "$url/$iqn/3"
out=$(ctl lun add "$iqn" 4 "$TEST_TMP/missing.img" 2>&1); rc=$?
check "lun add of a missing file: exit 1 with one line" \
	test "$rc" = 1 -a "$(echo "$out" | wc -l)" = 1 -a -n "$(echo "$out" | grep 'cannot open')"
out=$(ctl lun add "$iqn" 2 ram:dup --size 1M 2>&1); rc=$?
check "lun add of an existing LUN number: exit 1" test "$rc" = 1
check "lun del succeeds" ctl lun del "$iqn" 2
check "iscsi-ls no longer shows the removed LUN" sh -c "! iscsi-ls -s '$url' 2>/dev/null | grep -q 'Lun:2 '"

# ---- target add / acl / del ----
check "target add succeeds" ctl target add "$iqn2"
check "target add: a bad name is refused" sh -c "! '$LICHCTL' -s '$sock' target add not-an-iqn 2>/dev/null"
check "lun add to the new target" ctl lun add "$iqn2" 1 ram:t2 --size 8M
check "iscsi-ls lists the added target" sh -c "iscsi-ls '$url' 2>/dev/null | grep -q '$iqn2'"
check "acl add (initiator name)" ctl acl add "$iqn2" iqn.2026-11.org.lich:allowed
check "acl: an initiator not listed is refused" \
	sh -c "! iscsi-inq -i iqn.2026-11.org.lich:other '$url/$iqn2/1' >/dev/null 2>&1"
check "acl: the listed initiator logs in" iscsi-inq -i iqn.2026-11.org.lich:allowed "$url/$iqn2/1"
check "acl add (address pattern)" ctl acl add "$iqn2" 127.0.0.0/8
check "show targets shows the ACL" sh -c "'$LICHCTL' -s '$sock' show targets | grep '$iqn2' | grep -q '127.0.0.0/8'"
check "acl del" ctl acl del "$iqn2" iqn.2026-11.org.lich:allowed
check "acl del of an entry not there: exit 1" sh -c "! '$LICHCTL' -s '$sock' acl del '$iqn2' iqn.2026-11.org.lich:allowed 2>/dev/null"
check "acl: with only the address left, another initiator logs in" \
	iscsi-inq -i iqn.2026-11.org.lich:other "$url/$iqn2/1"

# ---- save, then lichd --check accepts the file ----
cp "$TEST_TMP/t.conf" "$TEST_TMP/t.conf.orig"
check "save succeeds" ctl save
check "save keeps the previous file as .bak" cmp -s "$TEST_TMP/t.conf.orig" "$TEST_TMP/t.conf.bak"
check "the saved file holds the runtime changes" \
	sh -c "grep -q '<target $iqn2>' '$TEST_TMP/t.conf' && grep -q 'disk2.img' '$TEST_TMP/t.conf' && grep -q 'initiator-address 127.0.0.0/8' '$TEST_TMP/t.conf'"
check "lichd --check accepts the saved file" "$LICHD" --check -c "$TEST_TMP/t.conf"

# ---- target del --force drops the sessions ----
timeout 30 python3 - "$(dirname "$0")/lib" "$LICHCTL" "$sock" "$port" "$iqn2" <<'PY'
import subprocess, sys
sys.path.insert(0, sys.argv[1])
from iscsi_client import Session, Closed
ctl, sock, port, iqn = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
s = Session("127.0.0.1", port, "iqn.2026-11.org.lich:force", iqn, isid=5)
s.login()
r = subprocess.run([ctl, "-s", sock, "target", "del", iqn], capture_output=True, text=True)
print(("PASS" if r.returncode == 1 else "FAIL") + ": target del of a target with a session is refused")
r = subprocess.run([ctl, "-s", sock, "target", "del", iqn, "--force"], capture_output=True, text=True)
print(("PASS" if r.returncode == 0 else "FAIL") + ": target del --force succeeds")
closed = False
try:
    s.wait(lambda: False, 3)
except Closed:
    closed = True
print(("PASS" if closed or s.closed else "FAIL") + ": target del --force closes the target's session")
PY
check "iscsi-ls no longer lists the removed target" sh -c "! iscsi-ls '$url' 2>/dev/null | grep -q '$iqn2'"

# ---- reload: same path as SIGHUP; the saved file brings the target back ----
check "reload succeeds" ctl reload
check "reload applied the file (the saved target is back)" \
	sh -c "'$LICHCTL' -s '$sock' show targets | grep -q '$iqn2'"
check "target del (no sessions) succeeds" ctl target del "$iqn2"
check "show targets no longer lists it" sh -c "! '$LICHCTL' -s '$sock' show targets | grep -q '$iqn2'"
echo "this is not a config" >>"$TEST_TMP/t.conf"
out=$(ctl reload 2>&1); rc=$?
check "reload of a broken file: exit 1, running configuration kept" \
	test "$rc" = 1 -a -n "$(ctl show targets | grep "$iqn")"
cp "$TEST_TMP/t.conf.bak" "$TEST_TMP/t.conf"

# ---- errors ----
out=$(ctl frobnicate 2>&1); rc=$?
check "an unknown command: exit 1 with one line on stderr" \
	test "$rc" = 1 -a "$(echo "$out" | wc -l)" = 1
out=$(ctl show 2>/dev/null); rc=$?
check "an incomplete command: exit 1, nothing on stdout" test "$rc" = 1 -a -z "$out"
check "lun del of an unknown LUN: exit 1" sh -c "! '$LICHCTL' -s '$sock' lun del '$iqn' 99 2>/dev/null"
check "help lists the verbs" sh -c "'$LICHCTL' -s '$sock' help | grep -q 'show sessions'"
check "a raw text request works too" python3 -c "
import socket; s=socket.socket(socket.AF_UNIX); s.connect('$sock'); s.sendall(b'show luns --json\n')
d=b''
while True:
    c=s.recv(65536)
    if not c: break
    d+=c
assert d.startswith(b'ok\n{\"luns\":'), d"

# ---- metrics ----
out=$(curl -s "http://127.0.0.1:$mport/metrics")
check "metrics: lich_up and per-LU counters" \
	test -n "$(echo "$out" | grep '^lich_up 1$')" -a -n "$(echo "$out" | grep "^lich_lun_read_ops_total{target=\"$iqn\",lun=\"1\"} [1-9]")"
check "metrics: latency histogram with +Inf bucket, sum and count" \
	test -n "$(echo "$out" | grep "^lich_lun_latency_seconds_bucket{target=\"$iqn\",lun=\"1\",le=\"+Inf\"} [1-9]")" \
	-a -n "$(echo "$out" | grep '^lich_lun_latency_seconds_count')"
check "metrics: per-reactor pool gauges" test -n "$(echo "$out" | grep '^lich_pool_bytes_in_use{reactor="0"}')"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/other")
check "metrics: other paths get 404" test "$code" = 404

wait "$idle_pid"
read -r idle_secs idle_data <"$TEST_TMP/idle.out"
check "an idle client is closed after the read timeout (${idle_secs}s, got $idle_data)" \
	python3 -c "import sys; t=float(sys.argv[1]); assert 9 <= t <= 15 and sys.argv[2] == \"b''\"" \
	"$idle_secs" "$idle_data"

# ---- stop: the socket goes; a stale socket does not stop the next start ----
check "lichd stops cleanly" stop_lichd
check "the control socket is removed at exit" test ! -e "$sock"
python3 -c "import socket; s=socket.socket(socket.AF_UNIX); s.bind('$sock')"
# restart with 4000 targets: an answer larger than the socket buffer, read
# slowly by the client, is written in pieces (EPOLLOUT) and arrives whole
cp "$TEST_TMP/t.conf" "$TEST_TMP/big.conf"
for i in $(seq 1 4000); do printf '<target iqn.2026-11.org.lich:many-%05d>\n</target>\n' "$i"; done \
	>>"$TEST_TMP/big.conf"
start_lichd "$TEST_TMP/big.conf" "$port" && check "a stale socket is replaced at start" ctl show portals
check "a large answer read slowly arrives whole" python3 -c "
import socket, time
s = socket.socket(socket.AF_UNIX); s.connect('$sock'); s.sendall(b'show targets --json\n')
time.sleep(1)
d = b''
while True:
    c = s.recv(65536)
    if not c: break
    d += c
assert len(d) > 300000, len(d)
import json; t = json.loads(d.split(b'\n', 1)[1])['targets']
assert len(t) == 4001, len(t)"
check "lichd stops cleanly with 4000 targets" stop_lichd
