#!/usr/bin/env bash
# 10-basic.sh — lichd end to end with libiscsi's tools and qemu-img on
# 127.0.0.1: discovery and LUN listing, INQUIRY, READ CAPACITY, a 256 MiB image
# copied in and out of a RAM LUN and a file LUN, garbage clients, a client
# killed mid-I/O, SIGHUP reload, SIGTERM, and --check.
# Prints PASS:/FAIL: per case; always kills lichd on exit.
set -u
LICHD=${LICHD:-build/lichd}
case "$LICHD" in /*) ;; *) LICHD="$(pwd)/$LICHD" ;; esac
export LICHD
. "$(dirname "$0")/../lib/common.sh"
tmp=$TEST_TMP

PORT=$(free_port)
IQN=iqn.2024-01.org.lich:basic
IQN2=iqn.2024-01.org.lich:added
URL=iscsi://127.0.0.1:$PORT
truncate -s 256M "$tmp/disk.img"
# IPv6 loopback too, when the machine has it.
V6=
python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null &&
	V6="portal [::1]:$PORT"
cat >"$tmp/t.conf" <<EOF
portal 127.0.0.1:$PORT
$V6
cores 0-1
state-dir $tmp/state
memory-limit 256M
nop-interval 5
<target $IQN>
    <backing-store ram:basic1>
        bs-type ram
        size 256M
        lun 1
    </backing-store>
    <backing-store $tmp/disk.img>
        lun 2
    </backing-store>
</target>
EOF

# ---- --check ----
out=$("$LICHD" --check -c "$tmp/t.conf" 2>&1); rc=$?
check "--check accepts a good config" test "$rc" -eq 0 -a "$out" = "$tmp/t.conf: OK"
printf 'portal 127.0.0.1:%s\n<target %s>\n  frobnicate 1\n</target>\n' "$PORT" "$IQN" >"$tmp/bad.conf"
out=$("$LICHD" --check -c "$tmp/bad.conf" 2>&1); rc=$?
check "--check rejects a bad config with file:line" \
	test "$rc" -eq 1 -a -n "$(echo "$out" | grep -F "$tmp/bad.conf:3")"
printf 'portal 127.0.0.1:%s\n<target %s>\n  backing-store %s/missing.img\n</target>\n' \
	"$PORT" "$IQN" "$tmp" >"$tmp/missing.conf"
out=$("$LICHD" --check -c "$tmp/missing.conf" 2>&1); rc=$?
check "--check reports a missing backing store" \
	test "$rc" -eq 1 -a -n "$(echo "$out" | grep -F "missing.img")"

# ---- start ----
start_lichd "$tmp/t.conf" "$PORT" || { fail "lichd listens on 127.0.0.1:$PORT"; exit 1; }
pass "lichd listens on 127.0.0.1:$PORT"

ls_out=$(timeout 20 iscsi-ls -s "$URL" 2>&1)
check "iscsi-ls lists the target" grep -q "Target:$IQN Portal:127.0.0.1:$PORT,1" <<<"$ls_out"
check "iscsi-ls lists both LUNs with sizes" \
	test "$(grep -cE '^Lun:[12] +Type:DIRECT_ACCESS \(Size:25[56]M\)' <<<"$ls_out")" -eq 2
inq=$(timeout 20 iscsi-inq "$URL/$IQN/1" 2>&1)
check "iscsi-inq reads the standard INQUIRY" grep -q "^Vendor:LICH" <<<"$inq"
cap=$(timeout 20 iscsi-readcapacity16 "$URL/$IQN/1" 2>&1)
check "iscsi-readcapacity16 reports 256 MiB" grep -q "^Total size:268435456" <<<"$cap"

# ---- data round trips ----
head -c 256M /dev/urandom >"$tmp/rand.img"
for lun in 1 2; do
	rm -f "$tmp/back.img"
	if timeout 120 qemu-img convert -O raw "$tmp/rand.img" "$URL/$IQN/$lun" &&
	   timeout 120 qemu-img convert -O raw "$URL/$IQN/$lun" "$tmp/back.img" &&
	   cmp -s "$tmp/rand.img" "$tmp/back.img"; then
		pass "qemu-img round trip of 256 MiB through LUN $lun"
	else
		fail "qemu-img round trip of 256 MiB through LUN $lun"
	fi
done
check "the file LUN holds what was written" cmp -s "$tmp/rand.img" "$tmp/disk.img"

# ---- garbage ----
rss() { lichd_rss_kb; }
python3 - "$PORT" "$IQN" 20 >/dev/null 2>&1 <<'EOF'
import os, socket, struct, sys
port, iqn, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), 2)
    s.sendall(b"\x01\x80\x00\x00\x00\xff\xff\xff" + os.urandom(40) + os.urandom(4096))
    s.close()
EOF
rss0=$(rss)
python3 - "$PORT" "$IQN" 200 >"$tmp/garbage.out" 2>&1 <<'EOF'
import os, socket, struct, sys
port, iqn, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def login_pdu(text):
    bhs = bytearray(48)
    bhs[0] = 0x43; bhs[1] = 0x81            # immediate login, T, CSG 0 -> NSG 1
    bhs[5:8] = struct.pack(">I", len(text))[1:]
    bhs[8] = 0x80; bhs[13] = 1              # ISID
    bhs[16:20] = struct.pack(">I", 1)
    return bytes(bhs) + text + b"\0" * (-len(text) % 4)
understood = 0
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(5)
    try:
        if i % 2 == 0:
            # garbage DataSegmentLength, then random bytes
            s.sendall(b"\x01\x80\x00\x00\x00\xff\xff\xff" + os.urandom(40) + os.urandom(8192))
            s.recv(4096)
        else:
            text = (b"InitiatorName=iqn.2024-01.org.lich:garbage\0TargetName=" +
                    iqn.encode() + b"\0AuthMethod=None\0X-Lich-Bogus=1\0Bogus" +
                    str(i).encode() + b"=x\0")
            s.sendall(login_pdu(text))
            rsp = b""
            while len(rsp) < 48:
                d = s.recv(65536)
                if not d: break
                rsp += d
            if len(rsp) >= 48 and rsp[36] == 0 and b"X-Lich-Bogus=NotUnderstood" in rsp:
                understood += 1
            s.sendall(os.urandom(300))       # then garbage mid-login
    except OSError:
        pass
    s.close()
print("understood", understood)
EOF
check "unknown login keys are answered NotUnderstood" grep -q "understood 100" "$tmp/garbage.out"
sleep 0.5
rss1=$(rss)
check "lichd survives 200 garbage connections" kill -0 "$LICHD_PID"
check "RSS does not grow materially over 200 garbage connections ($rss0 -> $rss1 KiB)" \
	test $((rss1 - rss0)) -lt 16384
check "iscsi-ls still works after the garbage" \
	grep -q "Target:$IQN" <<<"$(timeout 20 iscsi-ls "$URL" 2>&1)"

# ---- digests: libiscsi always prefers None, so a small client asks CRC32C ----
cat >"$tmp/digest.py" <<'PYEOF'
import socket, struct, sys
port, iqn = int(sys.argv[1]), sys.argv[2]
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)
def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
def dig(b): return struct.pack("<I", crc32c(b))
def pad(b): return b + b"\0" * (-len(b) % 4)
class Conn:
    def __init__(s):
        s.s = socket.create_connection(("127.0.0.1", port), 5); s.s.settimeout(5)
        s.hd = s.dd = False; s.cmdsn = 1; s.statsn = 0; s.itt = 1
    def recvn(s, n):
        b = b""
        while len(b) < n:
            d = s.s.recv(n - len(b))
            if not d: raise EOFError
            b += d
        return b
    def send(s, bhs, data=b"", bad_hd=False, bad_dd=False):
        bhs = bytearray(bhs); bhs[5:8] = struct.pack(">I", len(data))[1:]
        out = bytes(bhs)
        if s.hd:
            d = bytearray(dig(bytes(bhs)))
            if bad_hd: d[0] ^= 1
            out += bytes(d)
        if data:
            out += pad(data)
            if s.dd:
                d = bytearray(dig(pad(data)))
                if bad_dd: d[0] ^= 1
                out += bytes(d)
        s.s.sendall(out)
    def recv(s):
        bhs = s.recvn(48)
        if s.hd:
            assert s.recvn(4) == dig(bhs), "bad header digest from target"
        dl = int.from_bytes(bhs[5:8], "big")
        data = b""
        if dl:
            data = s.recvn(dl + (-dl % 4))
            if s.dd:
                assert s.recvn(4) == dig(data), "bad data digest from target"
            data = data[:dl]
        return bhs, data
    def login(s, keys):
        for csg, nsg, text in ((0, 1, b"InitiatorName=iqn.2024-01.org.lich:digest\0TargetName=" + iqn.encode() + b"\0AuthMethod=None\0"),
                               (1, 3, keys)):
            bhs = bytearray(48); bhs[0] = 0x43; bhs[1] = 0x80 | csg << 2 | nsg
            bhs[8] = 0x80; bhs[13] = 7; bhs[16:20] = struct.pack(">I", s.itt)
            bhs[24:28] = struct.pack(">I", s.cmdsn); bhs[28:32] = struct.pack(">I", s.statsn)
            s.send(bhs, text)
            r, d = s.recv()
            assert r[0] == 0x23 and r[36] == 0 and r[1] & 0x80, ("login failed", r[36:38], d)
            s.statsn = struct.unpack(">I", r[24:28])[0] + 1
        s.hd = b"HeaderDigest=CRC32C" in d; s.dd = b"DataDigest=CRC32C" in d
        return d
    def nop(s, payload, **kw):
        s.itt += 1
        bhs = bytearray(48); bhs[0] = 0x40; bhs[1] = 0x80
        bhs[16:20] = struct.pack(">I", s.itt); bhs[20:24] = b"\xff" * 4
        bhs[24:28] = struct.pack(">I", s.cmdsn); bhs[28:32] = struct.pack(">I", s.statsn)
        s.send(bhs, payload, **kw)
        return s.recv()
    def inquiry(s):
        s.itt += 1
        bhs = bytearray(48); bhs[0] = 0x01; bhs[1] = 0xc1; bhs[9] = 1
        bhs[16:20] = struct.pack(">I", s.itt); bhs[20:24] = struct.pack(">I", 96)
        bhs[24:28] = struct.pack(">I", s.cmdsn); s.cmdsn += 1
        bhs[32] = 0x12; bhs[36] = 96
        s.send(bhs)
        while True:
            r, d = s.recv()
            if r[0] == 0x25 and r[1] & 1: return r, d
            if r[0] == 0x21: return r, d
keys = b"HeaderDigest=CRC32C\0DataDigest=CRC32C\0MaxRecvDataSegmentLength=8192\0"
c = Conn(); d = c.login(keys)
assert c.hd and c.dd, d
r, d = c.nop(b"hello digests!!")           # 15 bytes: padding inside the data digest
assert r[0] == 0x20 and d == b"hello digests!!", (r, d)
r, d = c.inquiry()
assert r[0] in (0x25, 0x21), r[0]
r, d = c.nop(b"abc", bad_dd=True)          # data digest error: Reject, conn stays
assert r[0] == 0x3f and r[2] == 0x02, ("expected Reject/DATA_DIGEST", r[:4])
r, d = c.nop(b"still here")
assert d == b"still here"
try:
    c.itt += 1
    bhs = bytearray(48); bhs[0] = 0x40; bhs[1] = 0x80; bhs[16:20] = struct.pack(">I", c.itt); bhs[20:24] = b"\xff" * 4
    c.send(bhs, b"", bad_hd=True)          # header digest error: dropped
    c.recv()
    print("header digest error not detected"); sys.exit(1)
except (EOFError, ConnectionResetError, socket.timeout) as e:
    if isinstance(e, socket.timeout):
        print("no drop after header digest error"); sys.exit(1)
PYEOF
check "CRC32C header and data digests (good both ways, data digest error -> Reject, header digest error -> drop)" \
	timeout 30 python3 "$tmp/digest.py" "$PORT" "$IQN"

# ---- session reinstatement (two reactors: the sessions land on different ones) ----
cat >"$tmp/reinstate.py" <<'PYEOF'
import socket, struct, sys, time
port, iqn = int(sys.argv[1]), sys.argv[2]
def login(isid_lo):
    s = socket.create_connection(("127.0.0.1", port), 5); s.settimeout(5)
    for csg, nsg, text in ((0, 1, b"InitiatorName=iqn.2024-01.org.lich:reinstate\0TargetName=" +
                            iqn.encode() + b"\0AuthMethod=None\0"), (1, 3, b"")):
        bhs = bytearray(48); bhs[0] = 0x43; bhs[1] = 0x80 | csg << 2 | nsg
        bhs[5:8] = struct.pack(">I", len(text))[1:]; bhs[8] = 0x80; bhs[13] = isid_lo
        bhs[16:20] = struct.pack(">I", 1)
        s.sendall(bytes(bhs) + text + b"\0" * (-len(text) % 4))
        r = s.recv(48)
        while len(r) < 48: r += s.recv(48 - len(r))
        dl = int.from_bytes(r[5:8], "big"); dl += -dl % 4
        while dl: dl -= len(s.recv(dl))
        assert r[36] == 0, ("login failed", r[36:38])
    return s, struct.unpack(">H", r[14:16])[0]
a, tsih_a = login(0x42)
b, tsih_b = login(0x42)          # same initiator name and ISID: reinstates
a.settimeout(3)
assert a.recv(1) == b"", "old session still open"
assert tsih_a != tsih_b
c, _ = login(0x43)               # another ISID: a second session, b stays
b.settimeout(0.5)
try:
    assert b.recv(1) != b"", "unrelated session closed"
except socket.timeout:
    pass
PYEOF
check "session reinstatement closes the old session (same name and ISID) only" \
	timeout 30 python3 "$tmp/reinstate.py" "$PORT" "$IQN"
if [ -n "$V6" ]; then
	check "iscsi-ls over IPv6 gives a bracketed TargetAddress" \
		grep -q "Portal:\[::1\]:$PORT,1" <<<"$(timeout 20 iscsi-ls "iscsi://[::1]:$PORT" 2>&1)"
fi

# ---- a client killed mid-I/O ----
# The subshell exits normally, so bash reports no "Killed" job; the client is
# killed by its parent's pid (timeout's), which the subshell wrote down.
kill_mid_io() {
	( timeout 60 "$@" >/dev/null 2>&1 & echo $! >"$tmp/client.pid"; wait; true ) 2>/dev/null &
	local sub=$!
	sleep "${KILL_AFTER:-0.15}"
	pkill -9 -P "$(cat "$tmp/client.pid")" 2>/dev/null
	wait "$sub"
}
kill_mid_io qemu-img convert -O raw "$tmp/rand.img" "$URL/$IQN/1"
command -v iscsi-perf >/dev/null && KILL_AFTER=1 kill_mid_io iscsi-perf -t 10 "$URL/$IQN/1"
check "still serving after clients were killed mid-I/O" \
	grep -q "^Vendor:LICH" <<<"$(timeout 20 iscsi-inq "$URL/$IQN/1" 2>&1)"

# ---- reload ----
cp "$tmp/t.conf" "$tmp/t.conf.orig"
cat >>"$tmp/t.conf" <<EOF
<target $IQN2>
    <backing-store ram:added1>
        bs-type ram
        size 8M
    </backing-store>
</target>
EOF
kill -HUP "$LICHD_PID"
sleep 0.5
check "SIGHUP adds a target" grep -q "Target:$IQN2" <<<"$(timeout 20 iscsi-ls "$URL" 2>&1)"
echo "garbage here" >>"$tmp/t.conf"
kill -HUP "$LICHD_PID"
sleep 0.5
check "a bad config on SIGHUP is refused with file:line, lichd keeps serving" \
	bash -c "grep -q '$tmp/t.conf:[0-9]*:' '$tmp/lichd.log' && kill -0 $LICHD_PID &&
		 timeout 20 iscsi-ls '$URL' 2>&1 | grep -q 'Target:$IQN2'"
cp "$tmp/t.conf.orig" "$tmp/t.conf"
kill -HUP "$LICHD_PID"
sleep 0.5
ls_out=$(timeout 20 iscsi-ls "$URL" 2>&1)
check "SIGHUP removes a target and keeps the other" \
	bash -c "! grep -q 'Target:$IQN2' <<<'$ls_out' && grep -q 'Target:$IQN ' <<<'$ls_out'"

# ---- SIGTERM ----
check "SIGTERM: lichd exits 0 within 5 s" stop_lichd 5
check "login and logout are logged with initiator, address and target" \
	bash -c "grep -q 'login: initiator .* at 127.0.0.1:[0-9]*, target $IQN' '$tmp/lichd.log' &&
		 grep -q 'logout: initiator .* at 127.0.0.1:[0-9]*, target $IQN' '$tmp/lichd.log'"
exit 0
