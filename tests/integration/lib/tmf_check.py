#!/usr/bin/env python3
"""tmf_check.py HOST PORT TARGET IMAGE — task management across two sessions,
for tests/integration/20-tmf.sh. LUN 1 is a file LUN (write cache off) on
IMAGE, LUN 2 a RAM LUN. Two sessions connected one after the other land on
different reactors (connections are handed out round robin). Writes reaching
IMAGE are watched with inotify (io_uring reports each completed write as
IN_MODIFY), to see whether any lands after a TMF response. Prints PASS:/FAIL:
lines.
"""
import ctypes
import ctypes.util
import os
import struct
import sys
import time

sys.dont_write_bytecode = True          # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iscsi_client import (Session, Closed, cdb_rw10, OP_SCSI_RSP, OP_DATA_IN,  # noqa: E402
                          OP_TMF_RSP, TMF_ABORT_TASK, TMF_CLEAR_ACA, TMF_LU_RESET,
                          TMF_TARGET_COLD_RESET, TMF_TASK_REASSIGN, TMF_IT_NEXUS_RESET)

HOST, PORT, TARGET, IMAGE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
INIT = "iqn.2024-01.org.lich:tmf-check"
CH = 1 << 20            # one write: 1 MiB
BLK = 512
TUR = b"\0" * 6
failures = 0


class WriteWatch:
    """Counts the writes completed on a file since the last count."""
    IN_MODIFY, IN_NONBLOCK = 0x2, 0o4000

    def __init__(self, path):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = libc.inotify_init1(self.IN_NONBLOCK)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, path.encode(), self.IN_MODIFY) < 0:
            raise OSError(ctypes.get_errno(), "inotify on " + path)

    def count(self):
        n = 0
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return n
            off = 0
            while off + 16 <= len(buf):
                n += 1
                off += 16 + struct.unpack_from("=I", buf, off + 12)[0]


def check(what, ok, detail=""):
    global failures
    if ok:
        print("PASS: " + what)
    else:
        failures += 1
        print("FAIL: " + what + (" (%s)" % detail if detail else ""))
    sys.stdout.flush()


def session(isid):
    s = Session(HOST, PORT, INIT, TARGET, isid=isid)
    s.login()
    for lun in (1, 2):            # clear the POWER ON unit attention
        for _ in range(4):
            st, _, _ = s.command(lun, TUR)
            if st == 0:
                break
    return s


def pump(sessions, pred, timeout):
    end = time.monotonic() + timeout
    while not pred() and time.monotonic() < end:
        for s in sessions:
            if not s.closed:
                try:
                    s.poll(0.005)
                except Closed:
                    pass
    return pred()


def tmf_time(s, itt):
    for e in s.events:
        if e[1] == OP_TMF_RSP and e[2] == itt:
            return e[0]
    return None


def last_response_index(s, itts):
    idx = -1
    for i, e in enumerate(s.events):
        if e[2] in itts and e[1] in (OP_SCSI_RSP, OP_DATA_IN):
            idx = i
    return idx


def index_of(s, itt, op=OP_SCSI_RSP):
    for i, e in enumerate(s.events):
        if e[2] == itt and e[1] == op:
            return i
    return None


def read_region(s, lun, chunks):
    out = b""
    for i in range(chunks):
        st, sense, t = s.command(lun, cdb_rw10(0x28, i * (CH // BLK), CH // BLK), read_len=CH)
        if st != 0:
            raise Closed("READ failed: status %s sense %s" % (st, sense))
        out += bytes(t.read)
    return out


def pr_out(s, sa, typ, key, sakey):
    cdb = struct.pack(">BBBxxIB", 0x5F, sa, typ, 24, 0)
    return s.command(1, cdb, write=struct.pack(">QQ8x", key, sakey))


def lu_reset_across_sessions():
    """LU RESET from A while B (on the other reactor) has writes running and
    writes waiting for data."""
    big, nbig, nsmall = 8 * CH, 4, 8
    small0 = nbig * big // BLK            # LBA of the small writes' area
    a, b = session(1), session(2)
    for i in range(nbig):
        st, _, _ = b.command(1, cdb_rw10(0x2A, i * (big // BLK), big // BLK),
                             write=bytes([0x11]) * big)
        assert st == 0
    running = [b.scsi(1, cdb_rw10(0x2A, i * (big // BLK), big // BLK),
                      write=bytes([0x40 + i]) * big) for i in range(nbig)]
    waiting = [b.scsi(1, cdb_rw10(0x2A, small0 + i * (CH // BLK), CH // BLK),
                      write=bytes([0x50 + i]) * CH, hold_r2t=True) for i in range(nsmall)]
    itts = running + waiting
    # Every command has reached the target (it asked for data), and the
    # first big write has all its data: its I/O runs now.
    ok = pump([b], lambda: all(b.heard_of(i) for i in itts) and
              b.tasks[running[0]].sent == big, 20)
    assert ok, "B's writes did not get going"
    b.poll(0.003)                         # the target takes the last of it in
    watch = WriteWatch(IMAGE)
    t0 = time.monotonic()
    tmf = a.tmf(TMF_LU_RESET, lun=1)
    answered = pump([a, b], lambda: tmf in a.tmf_rsp, 30)
    before = watch.count()                # writes completed before the response
    check("LU RESET from session A is answered Function complete (after %.1f ms)" %
          ((time.monotonic() - t0) * 1000), answered and a.tmf_rsp[tmf] == 0,
          a.tmf_rsp.get(tmf))
    # Right away: what the region holds must not change any more.
    st, sense, _ = a.command(1, TUR)
    check("session A sees the unit attention too", st == 2 and sense == (6, 0x29, 3), sense)
    r1 = read_region(a, 1, nbig * 8)
    for i in waiting:                     # B keeps answering its R2Ts, late
        b.release(i)
    tur = b.scsi(1, TUR)
    pump([a, b], lambda: b.done(tur), 10)
    check("session B's next command gets the LU reset unit attention (29h/03h)",
          b.done(tur) and b.sense_code(tur) == (6, 0x29, 3), b.sense_code(tur))
    b.poll(1.0)
    good = [i for i in itts if b.done(i) and b.result(i)[0] == 0]
    silent = [i for i in itts if not b.done(i)]
    other = [i for i in itts if b.done(i) and b.result(i)[0] != 0]
    check("B's writes waiting for data are aborted without a response",
          all(i in silent for i in waiting))
    check("B's running writes: each GOOD or aborted without a response "
          "(%d GOOD, %d aborted)" % (len([i for i in running if i in good]),
                                     len([i for i in running if i in silent])),
          not other, "other statuses: %s" % [b.result(i) for i in other])
    check("no response for B's old writes after B's first post-reset response "
          "(response fence on a third-party session)",
          last_response_index(b, set(itts)) < index_of(b, tur))
    time.sleep(0.5)
    r2 = read_region(a, 1, nbig * 8)
    after = watch.count()
    check("no aborted write completes after the TMF response (%d before it, %d after)"
          % (before, after), after == 0)
    check("the region read right after the TMF response does not change", r1 == r2)
    landed = all(r2[k * big:(k + 1) * big] == bytes([0x40 + k]) * big
                 for k, i in enumerate(running) if i in good)
    check("the writes answered GOOD are on the medium", landed)
    a.logout()
    b.logout()


def abort_task_and_unsupported():
    a = session(3)
    data = bytes([0x77]) * 8192
    sn = a.cmdsn
    w = a.scsi(2, cdb_rw10(0x2A, 0, 16), write=data, send_data=False)
    a.poll(0.2)
    tmf = a.tmf(TMF_ABORT_TASK, lun=2, rtt=w, refcmdsn=sn)
    a.wait(lambda: tmf in a.tmf_rsp, 10)
    check("ABORT TASK of a write waiting for data: Function complete", a.tmf_rsp.get(tmf) == 0,
          a.tmf_rsp.get(tmf))
    a._data_out(a.tasks[w], 0xFFFFFFFF, 0, 0, 8192, True)    # its data comes late
    st, _, _ = a.command(2, TUR)
    check("the aborted write gets no response; its late data is dropped quietly",
          not a.heard_of(w) and st == 0)
    tmf = a.tmf(TMF_ABORT_TASK, lun=2, rtt=0x4242, refcmdsn=sn)
    a.wait(lambda: tmf in a.tmf_rsp, 10)
    check("ABORT TASK of a finished task: Task does not exist", a.tmf_rsp.get(tmf) == 1)
    codes = {}
    for name, func, lun in (("CLEAR ACA", TMF_CLEAR_ACA, 2), ("QUERY ASYNC EVENT", 12, 2),
                            ("function 99", 99, 2), ("TASK REASSIGN", TMF_TASK_REASSIGN, 2),
                            ("LU RESET of LUN 77", TMF_LU_RESET, 77)):
        itt = a.tmf(func, lun=lun, rtt=w)
        a.wait(lambda: itt in a.tmf_rsp, 10)
        codes[name] = a.tmf_rsp.get(itt)
    check("unsupported functions: not supported (5); TASK REASSIGN at ERL 0: 4; "
          "unknown LUN: 2",
          codes == {"CLEAR ACA": 5, "QUERY ASYNC EVENT": 5, "function 99": 5,
                    "TASK REASSIGN": 4, "LU RESET of LUN 77": 2}, codes)
    a.logout()


def it_nexus_reset():
    a, b = session(4), session(5)
    ra = [a.scsi(1, cdb_rw10(0x28, i * (CH // BLK), CH // BLK), read_len=CH) for i in range(8)]
    rb = [b.scsi(1, cdb_rw10(0x28, i * (CH // BLK), CH // BLK), read_len=CH) for i in range(8)]
    tmf = a.tmf(TMF_IT_NEXUS_RESET)
    pump([a, b], lambda: tmf in a.tmf_rsp or a.closed, 30)
    check("I_T NEXUS RESET is answered Function complete", a.tmf_rsp.get(tmf) == 0, a.tmf_rsp.get(tmf))
    t_rsp = index_of(a, tmf, OP_TMF_RSP)
    check("no response for the session's reads after the TMF response",
          t_rsp is not None and last_response_index(a, set(ra)) < t_rsp)
    pump([a, b], lambda: a.closed, 10)
    check("the target closes the reset session after the response", a.closed)
    pump([b], lambda: all(b.done(i) for i in rb), 30)
    check("the other session's reads complete normally",
          all(b.done(i) and b.result(i)[0] == 0 for i in rb))
    st, _, _ = b.command(1, TUR)
    check("the other session gets no unit attention", st == 0)
    a2 = Session(HOST, PORT, INIT, TARGET, isid=4)
    a2.login()
    st, sense, _ = a2.command(1, TUR)
    check("the initiator logs in again with the same ISID (new nexus: 29h)",
          st == 2 and sense and sense[:2] == (6, 0x29), sense)
    a2.logout()
    b.logout()


def preempt_and_abort():
    n = 16
    a, b = session(6), session(7)
    ok = pr_out(a, 0, 0, 0, 0xA)[0] == 0 and pr_out(b, 0, 0, 0, 0xB)[0] == 0
    ok = ok and pr_out(b, 1, 1, 0xB, 0)[0] == 0          # B: WRITE EXCLUSIVE
    check("two registrations and B's reservation", ok)
    itts = [b.scsi(1, cdb_rw10(0x2A, i * (CH // BLK), CH // BLK), write=bytes([0x60]) * CH)
            for i in range(n)]
    b.poll(0.003)
    cdb = struct.pack(">BBBxxIB", 0x5F, 5, 1, 24, 0)
    pa = a.scsi(1, cdb, write=struct.pack(">QQ8x", 0xA, 0xB))
    pump([a, b], lambda: a.done(pa), 30)
    check("PREEMPT AND ABORT from A completes GOOD", a.done(pa) and a.result(pa)[0] == 0,
          a.result(pa))
    tur = b.scsi(1, TUR)
    pump([a, b], lambda: b.done(tur), 10)
    sc = b.sense_code(tur)
    check("B learns it was preempted (2Ah)", sc is not None and sc[:2] == (6, 0x2A), sc)
    b.poll(0.5)
    silent = [i for i in itts if not b.done(i)]
    check("B's writes: GOOD or aborted without a response (%d aborted)" % len(silent),
          silent and all(b.result(i)[0] == 0 for i in itts if b.done(i)))
    check("no response for B's old writes after its first post-preempt response",
          last_response_index(b, set(itts)) < index_of(b, tur))
    ok = pr_out(a, 2, 1, 0xA, 0)[0] == 0 and pr_out(a, 0, 0, 0xA, 0)[0] == 0
    check("A releases and unregisters", ok)
    a.logout()
    b.logout()


def cold_reset():
    a, b = session(8), session(9)
    rb = [b.scsi(2, cdb_rw10(0x28, 0, 64), read_len=64 * BLK) for _ in range(4)]
    tmf = a.tmf(TMF_TARGET_COLD_RESET)
    pump([a, b], lambda: a.closed and b.closed, 15)
    check("TARGET COLD RESET is answered, then every session of the target is closed",
          a.tmf_rsp.get(tmf) == 0 and a.closed and b.closed, (a.tmf_rsp.get(tmf), a.closed, b.closed))
    del rb
    c = session(10)
    st, _, _ = c.command(2, TUR)
    check("a new session works after the cold reset", st == 0)
    c.logout()


for scenario in (lu_reset_across_sessions, abort_task_and_unsupported, it_nexus_reset,
                 preempt_and_abort, cold_reset):
    try:
        scenario()
    except Exception as e:                  # a broken scenario is one failure
        check("%s ran to the end" % scenario.__name__, False, repr(e))
print("tmf_check: %d failure(s)" % failures)
