#!/usr/bin/env bash
# 55-zerocopy.sh — write data received straight into task buffers over TCP:
# 2 MiB writes (immediate data, unsolicited Data-Out, R2T bursts in PDUs of an
# odd size, so they carry padding and cross the 1 MiB buffer segments) read
# back intact, with and without CRC32C digests, on a RAM LUN and an O_DIRECT
# file LUN (io_uring, one fixed SQE per buffer segment); a Data-Out with a bad
# data digest drops the connection and what it carried never reaches the LUN.
set -u
. "$(dirname "$0")/../lib/common.sh"

PORT=$(free_port)
IQN=iqn.2024-01.org.lich:zerocopy
truncate -s 16M "$TEST_TMP/file.img"
cat >"$TEST_TMP/t.conf" <<EOF
portal 127.0.0.1:$PORT
cores 0
state-dir $TEST_TMP/state
memory-limit 256M
nop-interval 0
<target $IQN>
    <backing-store ram:zc>
        bs-type ram
        size 16M
    </backing-store>
    backing-store $TEST_TMP/file.img
</target>
EOF
start_lichd "$TEST_TMP/t.conf" "$PORT" || { fail "lichd starts"; exit 0; }

cat >"$TEST_TMP/zc.py" <<'PYEOF'
import socket, struct, sys
port, iqn, case = int(sys.argv[1]), sys.argv[2], sys.argv[3]
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
def pattern(n, seed):
    b = bytearray(n)
    x = seed * 2654435761 % 2**32 + 1
    for i in range(0, n, 4):
        x ^= (x << 13) & 0xFFFFFFFF; x ^= x >> 17; x ^= (x << 5) & 0xFFFFFFFF
        b[i:i + 4] = struct.pack("<I", x)
    return bytes(b)
class Conn:
    def __init__(s, digests):
        s.s = socket.create_connection(("127.0.0.1", port), 10); s.s.settimeout(10)
        s.want = digests; s.hd = s.dd = False; s.cmdsn = 1; s.statsn = 0; s.itt = 1
        s.keys = {}
    def recvn(s, n):
        b = bytearray()
        while len(b) < n:
            d = s.s.recv(n - len(b))
            if not d: raise EOFError
            b += d
        return bytes(b)
    def send(s, bhs, data=b"", bad_dd=False):
        bhs = bytearray(bhs); bhs[5:8] = struct.pack(">I", len(data))[1:]
        out = [bytes(bhs)]
        if s.hd: out.append(dig(bytes(bhs)))
        if data:
            p = pad(data); out.append(p)
            if s.dd:
                d = bytearray(dig(p))
                if bad_dd: d[0] ^= 1
                out.append(bytes(d))
        s.s.sendall(b"".join(out))
    def recv(s):
        bhs = s.recvn(48)
        if s.hd: assert s.recvn(4) == dig(bhs), "bad header digest from target"
        dl = int.from_bytes(bhs[5:8], "big"); data = b""
        if dl:
            data = s.recvn(dl + (-dl % 4))
            if s.dd: assert s.recvn(4) == dig(data), "bad data digest from target"
            data = data[:dl]
        if bhs[0] & 0x3f in (0x21, 0x23, 0x24, 0x26) or (bhs[0] & 0x3f == 0x25 and bhs[1] & 1):
            s.statsn = struct.unpack(">I", bhs[24:28])[0] + 1
        return bhs, data
    def login(s):
        d = "CRC32C" if s.want else "None"
        keys = ("HeaderDigest=%s\0DataDigest=%s\0InitialR2T=No\0ImmediateData=Yes\0"
                "FirstBurstLength=65536\0MaxBurstLength=1048576\0MaxOutstandingR2T=1\0"
                "MaxRecvDataSegmentLength=262144\0" % (d, d)).encode()
        for csg, nsg, text in ((0, 1, b"InitiatorName=iqn.2024-01.org.lich:zc\0TargetName=" +
                                iqn.encode() + b"\0AuthMethod=None\0"), (1, 3, keys)):
            bhs = bytearray(48); bhs[0] = 0x43; bhs[1] = 0x80 | csg << 2 | nsg
            bhs[8] = 0x80; bhs[13] = 9; bhs[16:20] = struct.pack(">I", s.itt)
            bhs[24:28] = struct.pack(">I", s.cmdsn); bhs[28:32] = struct.pack(">I", s.statsn)
            s.send(bhs, text)
            r, data = s.recv()
            assert r[0] == 0x23 and r[36] == 0 and r[1] & 0x80, ("login failed", r[36:38], data)
            for kv in data.split(b"\0"):
                if b"=" in kv:
                    k, v = kv.split(b"=", 1); s.keys[k.decode()] = v.decode()
        s.hd = s.keys.get("HeaderDigest") == "CRC32C"; s.dd = s.keys.get("DataDigest") == "CRC32C"
        assert s.hd == s.want and s.dd == s.want, s.keys
        s.mrdsl = int(s.keys.get("MaxRecvDataSegmentLength", "8192"))
        s.first = int(s.keys.get("FirstBurstLength", "65536"))
        for lun in (1, 2):          # TEST UNIT READY takes the unit attention
            s.cmd(lun, b"\0" * 6, 0)
            while s.recv()[0][0] & 0x3f != 0x21:
                pass
    def cmd(s, lun, cdb, edtl, write=None, imm=0):
        s.itt += 1
        bhs = bytearray(48); bhs[0] = 0x01
        bhs[1] = 0x80 if not write or imm == len(write) else 0
        bhs[1] |= 0x20 if write else 0x40
        bhs[1] |= 1; bhs[9] = lun
        bhs[16:20] = struct.pack(">I", s.itt); bhs[20:24] = struct.pack(">I", edtl)
        bhs[24:28] = struct.pack(">I", s.cmdsn); s.cmdsn += 1
        bhs[28:32] = struct.pack(">I", s.statsn); bhs[32:32 + len(cdb)] = cdb
        s.send(bhs, write[:imm] if write else b"")
        return s.itt
    def data_out(s, lun, itt, ttt, sn, off, data, final, bad_dd=False):
        bhs = bytearray(48); bhs[0] = 0x05; bhs[1] = 0x80 if final else 0; bhs[9] = lun
        bhs[16:20] = struct.pack(">I", itt); bhs[20:24] = struct.pack(">I", ttt)
        bhs[28:32] = struct.pack(">I", s.statsn)
        bhs[36:40] = struct.pack(">I", sn); bhs[40:44] = struct.pack(">I", off)
        s.send(bhs, data, bad_dd)
    def burst(s, lun, itt, ttt, data, off, end, size, bad_at=None):
        sn = 0
        while off < end:
            n = min(size, end - off)
            s.data_out(lun, itt, ttt, sn, off, data[off:off + n], off + n == end,
                       bad_dd=bad_at is not None and off <= bad_at < off + n)
            off += n; sn += 1
    def write(s, lun, lba, data, pdu=99999, bad_at=None):
        imm = 8192
        cdb = struct.pack(">BBIBHB", 0x2a, 0, lba, 0, len(data) // 512, 0)
        itt = s.cmd(lun, cdb, len(data), data, imm)
        first = min(len(data), s.first)
        size = min(pdu, s.mrdsl)
        s.burst(lun, itt, 0xFFFFFFFF, data, imm, first, size, bad_at)
        while True:
            r, d = s.recv()
            op = r[0] & 0x3f
            if op == 0x31:
                off, n = struct.unpack(">I", r[40:44])[0], struct.unpack(">I", r[44:48])[0]
                s.burst(lun, itt, struct.unpack(">I", r[20:24])[0], data, off, off + n, size,
                        bad_at)
            elif op == 0x21:
                return r[3]
            elif op == 0x20:
                continue
            else:
                raise AssertionError("unexpected opcode 0x%02x" % op)
    def read(s, lun, lba, n):
        cdb = struct.pack(">BBIBHB", 0x28, 0, lba, 0, n // 512, 0)
        s.cmd(lun, cdb, n)
        out = bytearray(n)
        while True:
            r, d = s.recv()
            op = r[0] & 0x3f
            if op == 0x25:
                off = struct.unpack(">I", r[40:44])[0]; out[off:off + len(d)] = d
                if r[1] & 1: return r[3], bytes(out)
            elif op == 0x21:
                return r[3], bytes(out)

MB = 1 << 20
if case == "rw":
    for digests in (False, True):
        for lun, seed in ((1, 1), (2, 2)):
            c = Conn(digests); c.login()
            data = pattern(2 * MB, seed + 10 * digests)
            st = c.write(lun, 2048, data)
            assert st == 0, ("write status", st, lun, digests)
            st, back = c.read(lun, 2048, 2 * MB)
            assert st == 0 and back == data, ("read back differs", lun, digests)
            # PDUs of 64 KiB too (offsets on segment boundaries).
            data = pattern(2 * MB, seed + 20)
            assert c.write(lun, 8192, data, pdu=65536) == 0
            st, back = c.read(lun, 8192, 2 * MB)
            assert st == 0 and back == data, ("read back differs (64K PDUs)", lun, digests)
elif case == "baddigest":
    for lun in (1, 2):
        c = Conn(True); c.login()
        old = pattern(MB, 30 + lun)
        assert c.write(lun, 16384, old) == 0
        try:
            # The Data-Out at 600000 (an R2T burst) has a bad data digest.
            c.write(lun, 16384, pattern(MB, 40 + lun), bad_at=600000)
            raise AssertionError("no drop after a Data-Out data digest error")
        except (EOFError, ConnectionResetError, BrokenPipeError):
            pass
        c = Conn(False); c.login()
        st, back = c.read(lun, 16384, MB)
        assert st == 0 and back == old, ("data of the failed write reached the LUN", lun)
print("ok")
PYEOF
check "2 MiB writes with immediate, unsolicited and R2T data in odd-sized PDUs read back (RAM and file LUN, with and without digests)" \
	timeout 80 python3 "$TEST_TMP/zc.py" "$PORT" "$IQN" rw
check "a Data-Out data digest error drops the connection; none of that write reaches the LUN" \
	timeout 40 python3 "$TEST_TMP/zc.py" "$PORT" "$IQN" baddigest
check "lichd still serves" grep -q "^Vendor:LICH" <<<"$(timeout 20 iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN/1" 2>&1)"
check "lichd stops cleanly" stop_lichd
