#!/usr/bin/env python3
"""multicore_check.py HOST PORT TARGET LUN ROUNDS — one LU shared by two
sessions of two initiators on two reactors, for tests/integration/55-multicore.sh.

The sessions log in one after the other, so they land on different reactors
(connections are handed out round robin; the shell script checks the log).
Races, each with several commands in flight per session:
  COMPARE AND WRITE   a counter in block 0; both sessions try to bump it from
                      the value they last saw; at the end the counter equals
                      the number of successes (no two succeeded on one value);
  PERSISTENT RESERVE  REGISTER / RESERVE / PREEMPT the other, from both sides;
                      afterwards both sessions read the same keys and
                      reservation, and a consistent one;
  unit attention      a preempt from one session is reported once to the other.
Prints PASS:/FAIL: lines; exit status = number of failures (capped).
"""
import os
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iscsi_client import Session, Closed  # noqa: E402

HOST, PORT, TARGET = sys.argv[1], int(sys.argv[2]), sys.argv[3]
LUN, ROUNDS = int(sys.argv[4]), int(sys.argv[5])
BLK = 512
DEPTH = 4                # commands in flight per session and round
TUR = b"\0" * 6
failures = 0


def check(what, ok, detail=""):
    global failures
    if ok:
        print("PASS: " + what)
    else:
        failures += 1
        print("FAIL: " + what + (" (%s)" % detail if detail else ""))
    sys.stdout.flush()


def clear_ua(s):
    for _ in range(8):
        st, _, _ = s.command(LUN, TUR)
        if st == 0:
            return
    raise Closed("unit attentions do not clear")


def pump(sessions, itts):
    """Waits until every (session, itt) finished."""
    for s, itt in itts:
        if not s.wait(lambda: s.done(itt), 20):
            raise Closed("no response for itt %#x" % itt)


def read_block(s, lba):
    cdb = struct.pack(">BBQIBB", 0x88, 0, lba, 1, 0, 0)
    st, sense, t = s.command(LUN, cdb, read_len=BLK)
    if st != 0:
        raise Closed("READ(16) failed: %s %s" % (st, sense))
    return bytes(t.read)


def caw_cdb(lba):
    return struct.pack(">BBQ3xBBB", 0x89, 0, lba, 1, 0, 0)


def is_ua(s, itt):
    c = s.sense_code(itt)
    return s.result(itt)[0] == 2 and c is not None and c[0] == 6


# ---- COMPARE AND WRITE ----

def caw_race(a, b):
    sessions = (a, b)
    for s in sessions:
        s.command(LUN, struct.pack(">BBQIBB", 0x8A, 0, 0, 1, 0, 0), write=b"\0" * BLK)
    ok = {a: 0, b: 0}
    miscompares = 0
    others = 0
    for rnd in range(ROUNDS):
        pending = []
        for tag, s in enumerate(sessions):
            cur = read_block(s, 0)
            val = struct.unpack(">Q", cur[:8])[0]
            new = struct.pack(">QII", val + 1, tag, rnd) + b"\0" * (BLK - 16)
            for _ in range(DEPTH):
                pending.append((s, s.scsi(LUN, caw_cdb(0), write=cur + new)))
        pump(sessions, pending)
        for s, itt in pending:
            st = s.result(itt)[0]
            code = s.sense_code(itt)
            if st == 0:
                ok[s] += 1
            elif st == 2 and code and code[0] == 0x0E:
                miscompares += 1
            else:
                others += 1
    final = struct.unpack(">Q", read_block(a, 0)[:8])[0]
    total = ok[a] + ok[b]
    check("COMPARE AND WRITE from two reactors: no unexpected status", others == 0,
          "%d" % others)
    check("COMPARE AND WRITE: counter %d == successes %d (a %d, b %d, %d miscompares)"
          % (final, total, ok[a], ok[b], miscompares), final == total)
    check("COMPARE AND WRITE: at most one success per value and round",
          total <= ROUNDS * 2 and total >= ROUNDS, "%d" % total)
    same = read_block(a, 0) == read_block(b, 0)
    check("both sessions read the same counter block", same)


# ---- persistent reservations ----

def pr_out(s, sa, typ, key, sakey):
    cdb = struct.pack(">BBBxxIB", 0x5F, sa, typ, 24, 0)
    return s.scsi(LUN, cdb, write=struct.pack(">QQ8x", key, sakey))


def pr_in(s, sa):
    cdb = struct.pack(">BBxxxxxHB", 0x5E, sa, 512, 0)
    for _ in range(8):
        st, code, t = s.command(LUN, cdb, read_len=512)
        if st == 0:
            return bytes(t.read)
        if not (st == 2 and code and code[0] == 6):
            raise Closed("PR IN failed: %s %s" % (st, code))
    raise Closed("PR IN keeps reporting unit attentions")


REG_IGNORE, RESERVE, RELEASE, CLEAR, PREEMPT = 6, 1, 2, 3, 4
EA = 3
KEYS = (0xA1, 0xB2)


def pr_race(a, b):
    sessions = (a, b)
    bad = 0
    conflicts = 0
    uas = 0
    for _ in range(ROUNDS):
        pending = []
        for i, s in enumerate(sessions):
            mine, other = KEYS[i], KEYS[1 - i]
            pending.append((s, pr_out(s, REG_IGNORE, 0, 0, mine)))
            pending.append((s, pr_out(s, RESERVE, EA, mine, 0)))
            pending.append((s, pr_out(s, PREEMPT, EA, mine, other)))
        pump(sessions, pending)
        for s, itt in pending:
            st = s.result(itt)[0]
            if st == 0x18:
                conflicts += 1
            elif is_ua(s, itt):
                uas += 1
            elif st != 0:
                bad += 1
    check("PR race: only GOOD, RESERVATION CONFLICT or UNIT ATTENTION (%d conflicts, %d UAs)"
          % (conflicts, uas), bad == 0, "%d others" % bad)
    for s in sessions:
        clear_ua(s)
    ka, kb = pr_in(a, 0), pr_in(b, 0)
    ra, rb = pr_in(a, 1), pr_in(b, 1)
    check("PR: READ KEYS identical from both reactors", ka == kb)
    check("PR: READ RESERVATION identical from both reactors", ra == rb)
    n = struct.unpack(">I", ka[4:8])[0] // 8
    keys = [struct.unpack(">Q", ka[8 + 8 * i:16 + 8 * i])[0] for i in range(n)]
    check("PR: one or two registrations, ours (%s)" % [hex(k) for k in keys],
          1 <= n <= 2 and set(keys) <= set(KEYS))
    if struct.unpack(">I", ra[4:8])[0] == 16:
        holder = struct.unpack(">Q", ra[8:16])[0]
        check("PR: the reservation holder %#x is registered, type EA" % holder,
              holder in keys and ra[21] & 0x0F == EA)
    return keys


def ua_once(a, b):
    """a preempts b: b sees REGISTRATIONS PREEMPTED exactly once."""
    for s, key in ((a, KEYS[0]), (b, KEYS[1])):
        s.command(LUN, struct.pack(">BBBxxIB", 0x5F, REG_IGNORE, 0, 24, 0),
                  write=struct.pack(">QQ8x", 0, key))
    for s in (a, b):
        clear_ua(s)
    st, code, _ = a.command(LUN, struct.pack(">BBBxxIB", 0x5F, RESERVE, EA, 24, 0),
                            write=struct.pack(">QQ8x", KEYS[0], 0))
    check("a RESERVEs (status %s %s)" % (st, code), st in (0, 0x18))
    st, code, _ = a.command(LUN, struct.pack(">BBBxxIB", 0x5F, PREEMPT, EA, 24, 0),
                            write=struct.pack(">QQ8x", KEYS[0], KEYS[1]))
    check("a PREEMPTs b across reactors", st == 0, "%s %s" % (st, code))
    seen = []
    for _ in range(3):
        st, code, _ = b.command(LUN, TUR)
        seen.append(code if st == 2 else st)
    check("b sees REGISTRATIONS PREEMPTED exactly once (%s)" % seen,
          seen[0] == (6, 0x2A, 0x05) and seen[1:] == [0, 0])
    # leave the LU unreserved for the I/O that follows
    st, _, _ = a.command(LUN, struct.pack(">BBBxxIB", 0x5F, CLEAR, 0, 24, 0),
                         write=struct.pack(">QQ8x", KEYS[0], 0))
    check("a CLEARs the reservation state", st == 0)
    for s in (a, b):
        clear_ua(s)


def main():
    a = Session(HOST, PORT, "iqn.2026-11.org.lich:mc-a", TARGET, isid=0x11)
    a.login()
    b = Session(HOST, PORT, "iqn.2026-11.org.lich:mc-b", TARGET, isid=0x22)
    b.login()
    for s in (a, b):
        clear_ua(s)
    try:
        caw_race(a, b)
        pr_race(a, b)
        ua_once(a, b)
    except Closed as e:
        check("sessions keep working", False, str(e))
    for s in (a, b):
        s.logout()
    return failures


if __name__ == "__main__":
    sys.exit(min(main(), 100))
