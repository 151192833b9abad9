"""daemon_check.py — helpers for 45-daemon.sh.

  daemon_check.py notify SOCKET OUT
      Binds an AF_UNIX datagram socket (a path, or "@name" for the abstract
      namespace), as systemd does for NOTIFY_SOCKET, and appends every message
      to OUT as one line with its newlines written as "|". Runs until killed.
  daemon_check.py session HOST PORT TARGET MODE
      Logs in to TARGET, prints "logged-in", then waits (up to 30 s) for an
      Async Message. Prints "async event=E param3=P" for it. MODE obey: sends
      a Logout Request and prints "logout-response" when it comes; MODE
      ignore: keeps the session and prints "closed-by-target" when lichd
      drops it.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iscsi_client as ic  # noqa: E402


def notify(path, out):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + path[1:] if path.startswith("@") else path)
    with open(out, "a", buffering=1) as f:
        f.write("listening\n")
        while True:
            msg = s.recv(4096)
            f.write(msg.decode(errors="replace").replace("\n", "|") + "\n")


def say(*a):
    print(*a, flush=True)


def session(host, port, target, mode):
    s = ic.Session(host, int(port), "iqn.2024-01.org.lich:daemon-test", target)
    s.login()
    say("logged-in")
    end = time.monotonic() + 30
    try:
        ok = s.wait(lambda: any(e[1] == ic.OP_ASYNC for e in s.events),
                    end - time.monotonic())
    except ic.Closed:
        say("closed-before-async")
        return 1
    if not ok:
        say("no-async")
        return 1
    bhs = next(e[3] for e in s.events if e[1] == ic.OP_ASYNC)
    event, param3 = bhs[36], struct.unpack(">H", bhs[42:44])[0]
    itt = struct.unpack(">I", bhs[16:20])[0]
    say("async event=%d param3=%d itt=0x%08x" % (event, param3, itt))
    if mode == "obey":
        s.logout(timeout=5)
        if any(e[1] == ic.OP_LOGOUT_RSP and e[3][2] == 0 for e in s.events):
            say("logout-response")
        return 0
    try:
        while time.monotonic() < end:
            s.poll(0.1)
    except ic.Closed:
        say("closed-by-target")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "notify":
        notify(sys.argv[2], sys.argv[3])
    else:
        sys.exit(session(*sys.argv[2:6]))
