#!/usr/bin/env python3
"""load_sessions.py — N concurrent iSCSI sessions against one lichd, and what
an idle session costs it.

    load_sessions.py --port P --target IQN --sessions N --pid LICHD_PID
                     --lichctl PATH --socket SOCK [--lun 1] [--block 512]

One initiator name per session (ISID 1 each), so N distinct I_T nexuses. Steps:
  1. warm-up: one session logs in, writes and reads a block, logs out (the
     first I/O sets up caches and buffers that are not per session);
  2. baseline: lichd's RSS (VmRSS) and its pools' bytes_in_use (lichctl pool);
  3. N sessions log in, all held open;
  4. the session count lichd reports (lichctl show sessions) is read;
  5. while all are logged in: every session sends TEST UNIT READY (the power-on
     unit attention), then WRITE(10) of its own block
     (its own pattern), all of them before any answer is awaited; then READ(10)
     of the same block, likewise, each verified; then TEST UNIT READY;
  6. all idle: RSS and pool again; per idle session = growth / N;
  7. all log out; the session count must drop to 0 and the pools shrink back.
Prints "PASS: ..."/"FAIL: ..." per check and the figures; --no-memory-bound
reports the memory figures without judging them (ASan inflates RSS).
Descriptors: raises its own RLIMIT_NOFILE soft limit to the hard one, and
polls with poll(2) (select() stops at descriptor 1023).
"""
import argparse
import json
import os
import resource
import select
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iscsi_client import Session, Closed, cdb_rw10  # noqa: E402

KIB = 1024
IDLE_BOUND = 64 * KIB          # per idle session, beyond the pool (issue 7)


class PollSession(Session):
    """Session whose reads wait with poll(2): works past descriptor 1023."""

    def _read_some(self, timeout):
        p = select.poll()
        p.register(self.sock, select.POLLIN)
        if not p.poll(max(timeout, 0) * 1000):
            return False
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed("connection closed by the target")
        self.buf += chunk
        return True


    def wait(self, pred, timeout):
        """Like Session.wait, without lingering for more PDUs once pred holds
        (a thousand sessions cannot afford 50 ms each)."""
        end = time.monotonic() + timeout
        while not pred():
            pdu = self.recv_pdu(max(end - time.monotonic(), 0))
            if pdu is None:
                return False
            self._handle(*pdu)
        return True


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def ctl_json(a, *verb):
    out = subprocess.run([a.lichctl, "-s", a.socket, "--json"] + list(verb),
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("lichctl %s: %s" % (" ".join(verb), out.stderr.strip()))
    return json.loads(out.stdout)


def pool_bytes(a):
    return int(ctl_json(a, "pool")["bytes_in_use"])


def session_count(a, target):
    return sum(1 for s in ctl_json(a, "show", "sessions")["sessions"]
               if s.get("target") == target)


def pattern(i, block):
    head = struct.pack(">I", i) * 4
    return (head * (block // len(head) + 1))[:block]


def settle(pid, secs=1.0):
    """RSS once it stops moving (deferred frees, the kernel's accounting)."""
    time.sleep(secs)
    return rss_kib(pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--lichctl", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--lun", type=int, default=1)
    ap.add_argument("--block", type=int, default=512)
    ap.add_argument("--no-memory-bound", action="store_true")
    a = ap.parse_args()
    n = a.sessions
    fails = 0

    def check(what, ok):
        nonlocal fails
        print("%s: %s" % ("PASS" if ok else "FAIL", what), flush=True)
        fails += 0 if ok else 1
        return ok

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    init = "iqn.2026-11.org.lich:load-%d"
    # 1. warm-up
    s = PollSession(a.host, a.port, init % 999999, a.target)
    s.login()
    s.command(a.lun, b"\0" * 6)                # takes the power-on unit attention
    st, _, _ = s.command(a.lun, cdb_rw10(0x2A, 0, 1), write=pattern(0, a.block))
    st2, _, t = s.command(a.lun, cdb_rw10(0x28, 0, 1), read_len=a.block)
    s.logout()
    check("warm-up session: write and read back a block",
          st == 0 and st2 == 0 and bytes(t.read) == pattern(0, a.block))
    time.sleep(0.5)

    # 2. baseline
    rss0 = settle(a.pid)
    pool0 = pool_bytes(a)

    # 3. N sessions
    t0 = time.monotonic()
    sess = []
    try:
        for i in range(n):
            s = PollSession(a.host, a.port, init % i, a.target)
            s.login()
            sess.append(s)
    except (Closed, OSError) as e:
        print("login %d failed: %s" % (len(sess), e))
    t_login = time.monotonic() - t0
    check("%d sessions logged in at once (%.1f s)" % (n, t_login), len(sess) == n)

    # 4. what lichd counts
    count = session_count(a, a.target)
    check("lichd reports %d sessions on the target (lichctl show sessions)" % count,
          count == n)

    # 5. I/O on every session while all are logged in, answers awaited last
    t0 = time.monotonic()
    ok_w = ok_r = ok_t = ok_ua = 0
    try:
        # the first command of a new nexus reports the power-on unit attention
        itts = [s.scsi(a.lun, b"\0" * 6) for s in sess]
        for s, itt in zip(sess, itts):
            if s.wait(lambda: s.done(itt), 30) and \
                    (s.result(itt)[0] == 0 or s.sense_code(itt)[:2] == (6, 0x29)):
                ok_ua += 1
        itts = [s.scsi(a.lun, cdb_rw10(0x2A, i, 1), write=pattern(i, a.block))
                for i, s in enumerate(sess)]
        for s, itt in zip(sess, itts):
            if s.wait(lambda: s.done(itt), 30) and s.result(itt)[0] == 0:
                ok_w += 1
        itts = [s.scsi(a.lun, cdb_rw10(0x28, i, 1), read_len=a.block)
                for i, s in enumerate(sess)]
        for i, (s, itt) in enumerate(zip(sess, itts)):
            if s.wait(lambda: s.done(itt), 30) and s.result(itt)[0] == 0 and \
                    bytes(s.tasks[itt].read) == pattern(i, a.block):
                ok_r += 1
        itts = [s.scsi(a.lun, b"\0" * 6) for s in sess]
        for s, itt in zip(sess, itts):
            if s.wait(lambda: s.done(itt), 30) and s.result(itt)[0] == 0:
                ok_t += 1
    except (Closed, OSError) as e:
        print("I/O failed: %s" % e)
    t_io = time.monotonic() - t0
    check("every session: first TEST UNIT READY answered (%d/%d)" % (ok_ua, n), ok_ua == n)
    check("every session wrote its block (%d/%d)" % (ok_w, n), ok_w == n)
    check("every session read its block back and it verified (%d/%d)" % (ok_r, n),
          ok_r == n)
    check("every session: TEST UNIT READY good (%d/%d) (all I/O: %.1f s)" % (ok_t, n, t_io),
          ok_t == n)
    for s in sess:          # drop what the client kept of the I/O
        s.tasks.clear()
        s.events.clear()

    # 6. all idle
    rss1 = settle(a.pid)
    pool1 = pool_bytes(a)
    count_idle = session_count(a, a.target)
    d_rss = (rss1 - rss0) * KIB
    d_pool = pool1 - pool0
    per_rss = d_rss / n
    per_pool = d_pool / n
    beyond = (d_rss - d_pool) / n
    print("figures: sessions=%d rss_before=%d KiB rss_idle=%d KiB pool_before=%d "
          "pool_idle=%d bytes" % (n, rss0, rss1, pool0, pool1))
    print("figures: per idle session: RSS %.1f KiB, pool %.1f KiB, RSS beyond the pool "
          "%.1f KiB (bound %d KiB)" % (per_rss / KIB, per_pool / KIB, beyond / KIB,
                                       IDLE_BOUND // KIB))
    check("all %d sessions still logged in when idle" % n, count_idle == n)
    if a.no_memory_bound:
        print("SKIP: memory per idle session not judged (sanitizer build: RSS is "
              "inflated by shadow memory and quarantine)")
    else:
        check("memory per idle session beyond the pool: %.1f KiB <= %d KiB"
              % (beyond / KIB, IDLE_BOUND // KIB), beyond <= IDLE_BOUND)
        # The pool's part too: an idle connection holds no receive buffer
        # (it held 64 KiB of staging buffer for life before issue 7).
        check("memory per idle session all told (RSS growth): %.1f KiB <= %d KiB"
              % (per_rss / KIB, IDLE_BOUND // KIB), per_rss <= IDLE_BOUND)

    # 7. all log out
    for s in sess:
        try:
            s.logout(timeout=10)
        except (Closed, OSError):
            s.close()
    left = -1
    for _ in range(50):
        left = session_count(a, a.target)
        if left == 0:
            break
        time.sleep(0.1)
    check("all sessions gone after logout (%d left)" % left, left == 0)
    pool2 = pool_bytes(a)
    print("figures: pool after logout %d bytes (before %d)" % (pool2, pool0))
    # Caches may keep a little (slabs of freed objects stay in the pool's
    # magazines); a per-session leak would show as ~N times something.
    check("pool back near its size before the sessions (%+d bytes)" % (pool2 - pool0),
          pool2 - pool0 <= 256 * KIB)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
