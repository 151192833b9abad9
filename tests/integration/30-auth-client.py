#!/usr/bin/env python3
"""30-auth-client.py — a raw-socket iSCSI login client for CHAP edge cases.

Usage: 30-auth-client.py HOST PORT TARGET USER SECRET OUTUSER OUTSECRET
Prints PASS:/FAIL: lines (counted by tests/run via 30-auth.sh)."""
import hashlib
import os
import socket
import struct
import sys
import time

HOST, PORT, TARGET, USER, SECRET, OUTUSER, OUTSECRET = sys.argv[1:8]
PORT = int(PORT)
INIT = "iqn.2024-01.org.lich:rawclient"
AUTH_FAILED = 0x0201
HASHES = {5: hashlib.md5, 7: hashlib.sha256, 8: hashlib.sha3_256}


def ok(what, cond):
    print(("PASS: " if cond else "FAIL: ") + what, flush=True)


class Login:
    def __init__(self):
        self.s = socket.create_connection((HOST, PORT), 5)
        self.s.settimeout(5)
        self.isid = b"\x80" + os.urandom(5)
        self.itt = 0x1234
        self.statsn = 0

    def send(self, csg, nsg, transit, keys):
        data = b"".join(k.encode() + b"=" + v.encode() + b"\0" for k, v in keys)
        flags = (0x80 if transit else 0) | csg << 2 | nsg
        bhs = bytearray(48)
        bhs[0] = 0x43
        bhs[1] = flags
        bhs[5:8] = len(data).to_bytes(3, "big")
        bhs[8:14] = self.isid
        struct.pack_into(">I", bhs, 16, self.itt)
        struct.pack_into(">H", bhs, 20, 1)
        struct.pack_into(">I", bhs, 24, 1)
        struct.pack_into(">I", bhs, 28, self.statsn)
        pad = (-len(data)) % 4
        self.s.sendall(bytes(bhs) + data + b"\0" * pad)
        return self.recv()

    def recvn(self, n):
        b = b""
        while len(b) < n:
            x = self.s.recv(n - len(b))
            if not x:
                raise EOFError
            b += x
        return b

    def recv(self):
        """(status, flags, {key: value}) of the next Login Response."""
        bhs = self.recvn(48)
        dlen = int.from_bytes(bhs[5:8], "big")
        data = self.recvn(dlen + (-dlen) % 4)[:dlen]
        self.statsn = struct.unpack_from(">I", bhs, 24)[0] + 1
        kv = {}
        for item in data.split(b"\0"):
            if b"=" in item:
                k, v = item.split(b"=", 1)
                kv[k.decode()] = v.decode()
        return (bhs[36] << 8 | bhs[37]), bhs[1], kv

    def closed(self):
        try:
            return self.s.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return True

    def start(self, alg="5"):
        """Up to the target's challenge: returns (A, I, C bytes)."""
        st, _, kv = self.send(0, 1, True, [("InitiatorName", INIT), ("TargetName", TARGET),
                                           ("SessionType", "Normal"),
                                           ("AuthMethod", "CHAP,None")])
        assert st == 0 and kv.get("AuthMethod") == "CHAP", (st, kv)
        st, fl, kv = self.send(0, 1, True, [("CHAP_A", alg)])
        assert st == 0 and not fl & 0x80, (st, kv)
        c = kv["CHAP_C"]
        assert c.startswith("0x")
        return int(kv["CHAP_A"]), int(kv["CHAP_I"]), bytes.fromhex(c[2:])


def resp(alg, i, secret, c):
    return "0x" + HASHES[alg](bytes([i]) + secret.encode() + c).hexdigest()


def timed_failure(what, keys, alg="5", expect=AUTH_FAILED, min_delay=0.8):
    lg = Login()
    a, i, c = lg.start(alg)
    t0 = time.monotonic()
    try:
        st, _, _ = lg.send(0, 1, True, keys(a, i, c))
    except EOFError:
        st = None
    dt = time.monotonic() - t0
    ok(f"{what}: login fails with 0x{expect:04x} (got {st})", st == expect)
    ok(f"{what}: answer delayed ({dt:.2f} s)", dt >= min_delay)
    ok(f"{what}: connection closed", lg.closed())


def full_login(alg, mutual):
    lg = Login()
    a, i, c = lg.start(alg)
    ok(f"CHAP_A={alg} chosen", str(a) == alg.split(",")[0] or a in (5, 7, 8))
    ok(f"challenge is {len(c)} bytes", len(c) >= 16)
    keys = [("CHAP_N", USER), ("CHAP_R", resp(a, i, SECRET, c))]
    my_c = os.urandom(24)
    if mutual:
        keys += [("CHAP_I", "77"), ("CHAP_C", "0x" + my_c.hex())]
    st, fl, kv = lg.send(0, 1, True, keys)
    ok(f"alg {a}{' mutual' if mutual else ''}: response accepted", st == 0 and fl & 0x80)
    if mutual:
        ok(f"alg {a} mutual: CHAP_N is the outgoing user", kv.get("CHAP_N") == OUTUSER)
        ok(f"alg {a} mutual: CHAP_R proves the outgoing secret",
           kv.get("CHAP_R") == resp(a, 77, OUTSECRET, my_c))
    st, fl, kv = lg.send(1, 3, True, [("HeaderDigest", "None"), ("DataDigest", "None")])
    for _ in range(3):
        if st or fl & 0x80:
            break
        st, fl, kv = lg.send(1, 3, True, list(kv.items()))
    ok(f"alg {a}{' mutual' if mutual else ''}: full feature phase", st == 0 and fl & 0x80)
    lg.s.close()


full_login("5", False)
full_login("7", True)
full_login("8,5", True)

timed_failure("wrong CHAP_R", lambda a, i, c: [("CHAP_N", USER), ("CHAP_R", resp(a, i, "wrong-secret-x", c))])
timed_failure("unknown user", lambda a, i, c: [("CHAP_N", "mallory"), ("CHAP_R", resp(a, i, SECRET, c))])
timed_failure("missing CHAP_R", lambda a, i, c: [("CHAP_N", USER)])
timed_failure("malformed CHAP_R", lambda a, i, c: [("CHAP_N", USER), ("CHAP_R", "0xzz" + "00" * 15)])
timed_failure("short CHAP_R", lambda a, i, c: [("CHAP_N", USER), ("CHAP_R", resp(a, i, SECRET, c)[:-2])])
timed_failure("reflected challenge", lambda a, i, c: [
    ("CHAP_N", USER), ("CHAP_R", resp(a, i, SECRET, c)), ("CHAP_I", str(i)), ("CHAP_C", "0x" + c.hex())])
timed_failure("over-long CHAP_C (base64, 1025 bytes)", lambda a, i, c: [
    ("CHAP_N", USER), ("CHAP_R", resp(a, i, SECRET, c)), ("CHAP_I", "1"),
    ("CHAP_C", "0b" + __import__("base64").b64encode(os.urandom(1025)).decode())])
timed_failure("short CHAP_C", lambda a, i, c: [
    ("CHAP_N", USER), ("CHAP_R", resp(a, i, SECRET, c)), ("CHAP_I", "1"), ("CHAP_C", "0x0102030405")])
timed_failure("CHAP_C without CHAP_I", lambda a, i, c: [
    ("CHAP_N", USER), ("CHAP_R", resp(a, i, SECRET, c)), ("CHAP_C", "0x" + os.urandom(16).hex())])

# Over-long hex CHAP_C is past the text limit: still a failed login.
lg = Login()
a, i, c = lg.start()
try:
    st, _, _ = lg.send(0, 1, True, [("CHAP_N", USER), ("CHAP_R", resp(a, i, SECRET, c)),
                                   ("CHAP_I", "1"), ("CHAP_C", "0x" + "ab" * 1025)])
except EOFError:
    st = None
ok(f"over-long hex CHAP_C: login fails (got {st})", st is not None and st != 0)

# No AuthMethod=CHAP: refused.
lg = Login()
st, _, _ = lg.send(0, 1, True, [("InitiatorName", INIT), ("TargetName", TARGET),
                                ("SessionType", "Normal"), ("AuthMethod", "None")])
ok(f"AuthMethod=None to a CHAP target: 0x0201 (got {st})", st == AUTH_FAILED)

# Straight to the operational stage: refused.
lg = Login()
st, _, _ = lg.send(1, 3, True, [("InitiatorName", INIT), ("TargetName", TARGET),
                                ("SessionType", "Normal")])
ok(f"skipping the security stage: 0x0201 (got {st})", st == AUTH_FAILED)

# Asking to transit right after the challenge without answering it.
lg = Login()
a, i, c = lg.start()
st, _, _ = lg.send(0, 1, True, [])
ok(f"transit without a CHAP response: 0x0201 (got {st})", st == AUTH_FAILED)

# An operational-stage request while CHAP is pending: the stage is wrong.
lg = Login()
a, i, c = lg.start()
st, _, _ = lg.send(1, 3, True, [("HeaderDigest", "None")])
ok(f"operational request before CHAP completes: login fails (got {st})", st not in (0, None))

# No unsupported algorithm (SHA-1 only): CHAP_A=Reject and failure.
lg = Login()
st, _, kv = lg.send(0, 1, True, [("InitiatorName", INIT), ("TargetName", TARGET),
                                 ("SessionType", "Normal"), ("AuthMethod", "CHAP")])
try:
    st, _, kv = lg.send(0, 1, True, [("CHAP_A", "6")])
except EOFError:
    st, kv = None, {}
ok(f"CHAP_A=6 only: refused (got {st}, {kv.get('CHAP_A')})", st == AUTH_FAILED)
