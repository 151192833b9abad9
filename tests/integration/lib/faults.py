#!/usr/bin/env python3
"""faults.py — fault injection against a running lichd, for
tests/integration/60-faults.sh. Subcommands (each prints one result line or
PASS:/FAIL: lines; exit status 0 unless the helper itself broke):

  drop HOST PORT IQN LUN COUNT
      COUNT connections killed (RST or FIN, alternating) in the middle of
      something, BATCH at a time: during login, with a write's unsolicited
      Data-Out outstanding, with an R2T answered halfway, with a large read's
      Data-In in flight, with a mix of queued reads and writes. Prints
      "dropped N states=..." at the end.
  stall HOST PORT IQN LUN
      One session that queues READs and never reads its socket (it respects
      the MaxCmdSN it saw at login, as a real initiator would), then "rogue":
      it keeps sending READs past MaxCmdSN, and immediate ones. Prints READY lines and
      waits for a line on stdin before each next step (see 60-faults.sh).
  measure HOST PORT IQN LUN SECONDS
      Another session: 64 KiB write+read-verify cycles for SECONDS; prints
      "ops N errors E".
  exhaust HOST PORT IQN LUN SESSIONS DEPTH SECONDS
      SESSIONS sessions each keeping DEPTH large commands (1 MiB writes and
      reads) in flight; prints "good G full F busy B other O lost L".
  sense HOST PORT IQN LUN LBA KIND
      One command, prints "status S sense K/ASC/ASCQ" (KIND: write, read).
"""
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True          # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iscsi_client import (Session, Closed, cdb_rw10, OP_R2T, OP_DATA_IN,  # noqa: E402
                          OP_SCSI_RSP)

INIT = "iqn.2024-01.org.lich:faults"
TUR = b"\0" * 6
BLK = 512


def read10(lba, n):
    return cdb_rw10(0x28, lba, n)


def write10(lba, n):
    return cdb_rw10(0x2A, lba, n)


def login(host, port, iqn, name, isid=1, extra=()):
    s = Session(host, port, INIT + ":" + name, iqn, isid=isid)
    s.login(extra)
    return s


def fwait(s, pred, timeout):
    """Like Session.wait, but returns as soon as pred() holds."""
    end = time.monotonic() + timeout
    while not pred():
        left = end - time.monotonic()
        if left <= 0:
            return False
        pdu = s.recv_pdu(min(left, 0.05))
        if pdu:
            s._handle(*pdu)
    return True


def command(s, lun, cdb, write=b"", read_len=0, timeout=10):
    """Synchronous: (status, (key, asc, ascq) or None, task)."""
    itt = s.scsi(lun, cdb, write=write, read_len=read_len)
    if not fwait(s, lambda: s.done(itt), timeout):
        raise Closed("no response to command 0x%02x" % cdb[0])
    return s.tasks[itt].status, s.sense_code(itt), s.tasks.pop(itt)


def clear_ua(s, lun):
    for _ in range(4):
        st, _, _ = command(s, lun, TUR)
        if st == 0:
            return
    raise Closed("TEST UNIT READY never GOOD")


def kill(s, rst):
    """Drops the connection without a logout: RST (SO_LINGER 0) or FIN."""
    if s.sock is None:
        return
    try:
        if rst:
            s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sock.close()
    except OSError:
        pass
    s.closed = True


def wait_event(s, op, itt, timeout=5):
    return fwait(s, lambda: any(e[1] == op and e[2] == itt for e in s.events), timeout)


# ---- drop ----

def raw_login_start(host, port, iqn, name, half):
    """A connection in the middle of login: the first Login Request sent
    whole (answered) or cut in half (the target waits for the rest)."""
    s = Session(host, port, INIT + ":" + name, iqn)
    s.connect()
    text = (b"InitiatorName=" + s.initiator.encode() + b"\0TargetName=" + iqn.encode() +
            b"\0SessionType=Normal\0AuthMethod=None\0")
    bhs = bytearray(48)
    bhs[0] = 0x43
    bhs[1] = 0x81
    bhs[5:8] = struct.pack(">I", len(text))[1:]
    bhs[8] = 0x80
    bhs[13] = 1
    bhs[16:20] = struct.pack(">I", 7)
    msg = bytes(bhs) + text + b"\0" * (-len(text) % 4)
    s.sock.setblocking(True)
    s.sock.sendall(msg[:len(msg) // 2] if half else msg)
    s.sock.setblocking(False)
    if not half:
        s.recv_pdu(5)
    return s


def mid_state(host, port, iqn, lun, kind, name, big):
    """Brings one connection to a mid-transfer state; returns it."""
    if kind == 0:
        return raw_login_start(host, port, iqn, name, half=True)
    if kind == 1:
        return raw_login_start(host, port, iqn, name, half=False)
    s = login(host, port, iqn, name)
    clear_ua(s, lun)
    nblk = big // BLK
    if kind == 2:           # write: unsolicited Data-Out announced, never sent
        s.scsi(lun, write10(0, nblk), write=b"\x5a" * big, send_data=False)
    elif kind == 3:         # write: R2T received, answered halfway
        itt = s.scsi(lun, write10(nblk, nblk), write=b"\xa5" * big, hold_r2t=True)
        if not wait_event(s, OP_R2T, itt):
            raise Closed("no R2T")
        t = s.tasks[itt]
        ttt, off, length = t.held[0]
        s._data_out(t, ttt, 0, off, min(length, s.target_mrdsl) // 2, False)
    elif kind == 4:         # read: Data-In on its way
        itt = s.scsi(lun, read10(0, 4 * nblk), read_len=4 * big)
        if not wait_event(s, OP_DATA_IN, itt):
            raise Closed("no Data-In")
    else:                   # a mix queued, nothing waited for
        for i in range(8):
            if i % 3 == 2:
                s.scsi(lun, write10(i * nblk, nblk), write=b"\x33" * big, hold_r2t=True)
            else:
                s.scsi(lun, read10(i * nblk, nblk), read_len=big)
    return s


def cmd_drop(host, port, iqn, lun, count):
    batch, kinds, big = 8, 6, 1 << 20
    done, errors = 0, 0
    states = [0] * kinds
    i = 0
    while done < count:
        live = []
        for j in range(min(batch, count - done)):
            kind = (i + j) % kinds
            try:
                live.append(mid_state(host, port, iqn, lun, kind, "drop%d" % j, big))
                states[kind] += 1
            except (Closed, OSError) as e:
                errors += 1
                if errors <= 5:
                    print("setup error (kind %d): %s" % (kind, e), file=sys.stderr)
        for j, s in enumerate(live):
            kill(s, rst=(i + j) % 2 == 0)
        done += min(batch, count - done)
        i += batch
    print("dropped %d setup_errors %d states=%s" % (done, errors, states))


# ---- stall ----

def cmd_stall(host, port, iqn, lun):
    size = 256 << 10
    nblk = size // BLK
    s = login(host, port, iqn, "staller", isid=3)
    clear_ua(s, lun)
    s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # Honest: as many READs as the window allows, then nothing more.
    sent = 0
    while ((s.maxcmdsn - s.cmdsn) & 0xFFFFFFFF) < 0x80000000:
        s.scsi(lun, read10((sent * nblk) % 65536, nblk), read_len=size)
        sent += 1
    print("READY honest sent %d" % sent, flush=True)
    sys.stdin.readline()
    # Rogue: keeps sending READs for 3 s, CmdSN past the MaxCmdSN it knows,
    # every other one an immediate command (which takes no CmdSN at all).
    end = time.monotonic() + 3
    s.sock.settimeout(0.2)
    blocked = dropped = False
    while time.monotonic() < end:
        itt = s.next_itt()
        imm = 0x40 if itt % 2 else 0
        bhs = struct.pack(">BBxx", 0x01 | imm, 0x80 | 0x40 | 0x01) + b"\0" * 4
        bhs += struct.pack(">BB6x", 0, lun)
        bhs += struct.pack(">IIII", itt, size, s.cmdsn, s.expstatsn)
        bhs += read10((sent * nblk) % 65536, nblk) + b"\0" * 6
        try:
            s.sock.send(bhs)
        except socket.timeout:
            blocked = True          # lichd stopped reading us: fine
            time.sleep(0.05)
            continue
        except OSError:
            dropped = True          # lichd dropped the rogue: fine too
            break
        if not imm:
            s.cmdsn = (s.cmdsn + 1) & 0xFFFFFFFF
        sent += 1
    print("READY rogue sent %d blocked %d dropped %d" % (sent, blocked, dropped), flush=True)
    sys.stdin.readline()
    kill(s, rst=False)
    print("CLOSED", flush=True)


# ---- measure ----

def cmd_measure(host, port, iqn, lun, seconds):
    s = login(host, port, iqn, "measure", isid=4)
    clear_ua(s, lun)
    size = 64 << 10
    nblk = size // BLK
    ops = errors = 0
    end = time.monotonic() + seconds
    base = 70000
    while time.monotonic() < end:
        lba = base + (ops % 64) * nblk
        data = struct.pack(">I", ops) * (size // 4)
        st, _, _ = command(s, lun, write10(lba, nblk), write=data, timeout=5)
        st2, _, t = command(s, lun, read10(lba, nblk), read_len=size, timeout=5)
        if st != 0 or st2 != 0 or bytes(t.read) != data:
            errors += 1
        ops += 1
    s.logout()
    print("ops %d errors %d" % (ops, errors))


# ---- exhaust ----

def cmd_exhaust(host, port, iqn, lun, nsess, depth, seconds):
    size = 1 << 20
    nblk = size // BLK
    sess = []
    for k in range(nsess):
        s = login(host, port, iqn, "exhaust%d" % k, isid=10 + k)
        clear_ua(s, lun)
        sess.append(s)
    counts = {"good": 0, "full": 0, "busy": 0, "other": 0, "lost": 0}
    pending = [dict() for _ in sess]      # itt -> issue time
    payload = b"\xc3" * size
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end or any(pending):
        for k, s in enumerate(sess):
            if s.closed:
                continue
            while time.monotonic() < end and len(pending[k]) < depth and \
                    ((s.maxcmdsn - s.cmdsn) & 0xFFFFFFFF) < 0x80000000:
                lba = (n % 16) * nblk
                if n % 2:
                    itt = s.scsi(lun, write10(lba, nblk), write=payload)
                else:
                    itt = s.scsi(lun, read10(lba, nblk), read_len=size)
                pending[k][itt] = time.monotonic()
                n += 1
            try:
                s.poll(0.002)
            except Closed:
                pass
            now = time.monotonic()
            for itt in list(pending[k]):
                t = s.tasks[itt]
                if t.done:
                    st = t.status
                    key = "good" if st == 0 else "full" if st == 0x28 else \
                          "busy" if st == 0x08 else "other"
                    if key == "other" and counts["other"] < 5:
                        print("status 0x%02x sense %s" % (st, s.sense_code(itt)),
                              file=sys.stderr)
                    counts[key] += 1
                    del pending[k][itt]
                    del s.tasks[itt]
                elif s.closed or now - pending[k][itt] > 15:
                    counts["lost"] += 1
                    del pending[k][itt]
        if time.monotonic() > end + 20:
            break
    for k, s in enumerate(sess):
        counts["lost"] += len(pending[k])
        if not s.closed:
            s.logout()
        else:
            print("session %d was closed by the target" % k, file=sys.stderr)
    print("good %(good)d full %(full)d busy %(busy)d other %(other)d lost %(lost)d" % counts)


# ---- sense ----

def cmd_sense(host, port, iqn, lun, lba, kind, nblk=8):
    s = login(host, port, iqn, "sense", isid=20)
    clear_ua(s, lun)
    if kind == "write":
        st, sk, _ = command(s, lun, write10(lba, nblk), write=os.urandom(nblk * BLK))
    else:
        st, sk, _ = command(s, lun, read10(lba, nblk), read_len=nblk * BLK)
    s.logout()
    print("status %d sense %s" % (st, "%x/%02x/%02x" % sk if sk else "-"))


def main():
    a = sys.argv[1:]
    host, port, iqn, lun = a[1], int(a[2]), a[3], int(a[4])
    if a[0] == "drop":
        cmd_drop(host, port, iqn, lun, int(a[5]))
    elif a[0] == "stall":
        cmd_stall(host, port, iqn, lun)
    elif a[0] == "measure":
        cmd_measure(host, port, iqn, lun, float(a[5]))
    elif a[0] == "exhaust":
        cmd_exhaust(host, port, iqn, lun, int(a[5]), int(a[6]), float(a[7]))
    elif a[0] == "sense":
        cmd_sense(host, port, iqn, lun, int(a[5]), a[6], int(a[7]) if len(a) > 7 else 8)
    else:
        sys.exit("unknown subcommand " + a[0])


if __name__ == "__main__":
    main()
