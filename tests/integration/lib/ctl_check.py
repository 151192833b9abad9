#!/usr/bin/env python3
"""ctl_check.py LICHCTL SOCKET HOST PORT IQN NREACTORS — lichctl against live
sessions of the small Python initiator (iscsi_client.py): show sessions lists
each session with its reactor, peer and negotiated parameters; stats grow by
exactly the I/O done (per LU and per connection); logout sends the Async
Message and the session goes once the initiator logs out; logout --now drops
at once; target del is refused while sessions exist. Prints PASS:/FAIL: lines."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iscsi_client import Session, Closed, cdb_rw10, OP_ASYNC  # noqa: E402

ctl, sock, host, port, iqn, nreactors = sys.argv[1], sys.argv[2], sys.argv[3], \
    int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
fails = 0


def check(what, ok):
    global fails
    print(("PASS: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        fails += 1


def lichctl(*args):
    r = subprocess.run([ctl, "-s", sock, "--json"] + list(args), capture_output=True,
                       text=True, timeout=20)
    if r.returncode != 0:
        raise RuntimeError("lichctl %s: %s" % (" ".join(args), r.stderr.strip()))
    return json.loads(r.stdout)


def sessions():
    return lichctl("show", "sessions")["sessions"]


def find(sid):
    return [s for s in sessions() if s["id"] == sid]


def lun_stats(lun):
    for l in lichctl("stats")["luns"]:
        if l["target"] == iqn and l["lun"] == lun:
            return l
    return None


def conn_stats(sid):
    for c in lichctl("stats")["connections"]:
        if c["session"] == sid:
            return c
    return None


# ---- two sessions: with more than one reactor they land on different ones ----
a = Session(host, port, "iqn.2026-11.org.lich:ctl-a", iqn, isid=0x11)
b = Session(host, port, "iqn.2026-11.org.lich:ctl-b", iqn, isid=0x22)
a.login()
b.login()
for s in (a, b):
    s.command(1, bytes([0x00] * 6))        # TEST UNIT READY: takes the power-on UA
    s.command(1, bytes([0x00] * 6))

ls = sessions()
mine = {s["initiator"]: s for s in ls}
sa, sb = mine.get(a.initiator), mine.get(b.initiator)
check("show sessions lists both logged-in sessions", sa is not None and sb is not None)
if sa is None or sb is None:
    sys.exit(1)
check("show sessions gives target and ISID", sa["target"] == iqn and sb["target"] == iqn
      and sa["isid"] == "0x8000000000%02x" % 0x11 and sb["isid"] == "0x8000000000%02x" % 0x22)
check("show sessions gives a TSIH", sa["tsih"] > 0 and sb["tsih"] > 0 and sa["tsih"] != sb["tsih"])
peer_a = "%s:%d" % a.sock.getsockname()
ca = sa["connections"][0]
check("show sessions: connection peer address:port is the initiator's socket",
      ca["peer"] == peer_a)
check("show sessions: local address is the portal", ca["local"] == "%s:%d" % (host, port))
reactors = {sa["reactor"], sb["reactor"]}
if nreactors > 1:
    check("sessions on different reactors (messages cross reactors)", reactors == {0, 1})
else:
    check("sessions on reactor 0", reactors == {0})
p = ca["params"]
check("show sessions: negotiated parameters",
      p["header_digest"] == "None" and p["data_digest"] == "None"
      and p["max_xmit_data_segment_length"] == 262144
      and p["max_recv_data_segment_length"] == a.target_mrdsl
      and p["first_burst_length"] == a.first_burst and p["max_burst_length"] == a.max_burst
      and p["immediate_data"] == a.immediate_data and p["initial_r2t"] == a.initial_r2t)

# ---- stats grow by the I/O done ----
before, cb0 = lun_stats(1), conn_stats(sa["id"])
nw, nr = 12, 7
for i in range(nw):
    st, sense, _ = a.command(1, cdb_rw10(0x2a, 100 + 8 * i, 8), write=bytes([i]) * 4096)
    assert st == 0, sense
for i in range(nr):
    st, sense, _ = b.command(1, cdb_rw10(0x28, 100 + 16 * i, 16), read_len=8192)
    assert st == 0, sense
after, cb1 = lun_stats(1), conn_stats(sa["id"])
check("stats: LU write ops grow by the writes done",
      after["write_ops"] - before["write_ops"] == nw)
check("stats: LU write bytes grow by the bytes written",
      after["write_bytes"] - before["write_bytes"] == nw * 4096)
check("stats: LU read ops and bytes grow by the reads done",
      after["read_ops"] - before["read_ops"] == nr
      and after["read_bytes"] - before["read_bytes"] == nr * 8192)
check("stats: no new errors", after["errors"] == before["errors"])
lat = after["latency_us"]
check("stats: latency histogram counts every command and has percentiles",
      lat["count"] - before["latency_us"]["count"] == nw + nr and lat["p50"] > 0
      and lat["p50"] <= lat["p99"] <= lat["p999"])
check("stats: per-connection counters of session A are its own I/O",
      cb1["write_ops"] - cb0["write_ops"] == nw and cb1["read_ops"] == cb0["read_ops"]
      and cb1["write_bytes"] - cb0["write_bytes"] == nw * 4096)
cbb = conn_stats(sb["id"])
check("stats: per-connection counters of session B (other reactor) are its reads",
      cbb["read_ops"] >= nr and cbb["read_bytes"] >= nr * 8192 and cbb["write_ops"] == 0)

# ---- target del refused while sessions exist ----
r = subprocess.run([ctl, "-s", sock, "target", "del", iqn], capture_output=True, text=True)
check("target del with sessions is refused without --force (exit 1, says why)",
      r.returncode == 1 and "session" in r.stderr and r.stderr.count("\n") == 1)

# ---- logout: Async Message, the initiator logs out ----
t0 = time.monotonic()
r = subprocess.run([ctl, "-s", sock, "logout", str(sa["id"])], capture_output=True, text=True)
check("logout SESSION succeeds", r.returncode == 0)
got = a.wait(lambda: any(e[1] == OP_ASYNC for e in a.events), 5)
ev = [e for e in a.events if e[1] == OP_ASYNC]
check("logout: the initiator gets Async Message 'target requests logout'",
      got and ev and ev[0][3][36] == 1)
a.logout()
gone = False
while time.monotonic() - t0 < 5:
    if not find(sa["id"]):
        gone = True
        break
    time.sleep(0.1)
check("logout: the session is gone after the initiator logged out", gone)

# ---- logout --now drops at once ----
r = subprocess.run([ctl, "-s", sock, "logout", str(sb["id"]), "--now"], capture_output=True,
                   text=True)
check("logout --now succeeds", r.returncode == 0)
dropped = False
try:
    b.wait(lambda: False, 3)
except Closed:
    dropped = True
check("logout --now: the connection is closed by the target", dropped or b.closed)
time.sleep(0.2)
check("logout --now: the session is no longer listed", not find(sb["id"]))
r = subprocess.run([ctl, "-s", sock, "logout", "999999"], capture_output=True, text=True)
check("logout of an unknown session: exit 1", r.returncode == 1 and "no session" in r.stderr)
sys.exit(1 if fails else 0)
