#!/usr/bin/env python3
"""durability.py — what lichd acknowledged must survive lichd being killed,
for tests/integration/65-durability.sh.

  writer HOST PORT IQN LUN JOURNAL NSLOTS FIRST_SEQ
      Writes numbered, checksummed 4 KiB blocks until the connection dies
      (lichd killed), 8 in flight, alternating two ways of making them
      durable: WRITE(10) with FUA=1, each journaled once its GOOD status is
      in; WRITE(16) with FUA=0, journaled only after the SYNCHRONIZE CACHE
      that follows them is GOOD. Block seq goes to slot seq % NSLOTS. The
      journal gets "slot seq" lines, flushed as they are written. Prints
      "acked N fua F synced S".
  verify HOST PORT IQN LUN JOURNAL NSLOTS
      Reads the LUN back; every journaled slot must hold a block with a good
      checksum whose seq is the last acknowledged one for that slot or a later
      one written to the same slot. Prints "checked N bad B" (and the first
      few bad slots on stderr).
  pr-set HOST PORT IQN LUN KEY
      REGISTER (APTPL=1) KEY and RESERVE WRITE EXCLUSIVE; prints "ok".
  pr-show HOST PORT IQN LUN
      Prints "keys K1,K2 holder KEY type T" from PERSISTENT RESERVE IN.
"""
import os
import struct
import sys
import zlib

sys.dont_write_bytecode = True          # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iscsi_client import Closed  # noqa: E402
from faults import login, clear_ua, command, fwait  # noqa: E402

BS = 4096
SECT = 512
MAGIC = b"LICHDUR1"
INFLIGHT = 8


def block(seq, slot):
    body = MAGIC + struct.pack(">QQ", seq, slot)
    body += (struct.pack(">Q", seq * 0x9E3779B97F4A7C15 & (2**64 - 1)) * (BS // 8))[:BS - 4 - len(body)]
    return body + struct.pack(">I", zlib.crc32(body))


def parse(b):
    if len(b) != BS or b[:8] != MAGIC or struct.unpack(">I", b[-4:])[0] != zlib.crc32(b[:-4]):
        return None
    return struct.unpack(">QQ", b[8:24])


def write10_fua(lba, n):
    return struct.pack(">BBIBHB", 0x2A, 0x08, lba, 0, n, 0)


def write16(lba, n):
    return struct.pack(">BBQIBB", 0x8A, 0x00, lba, n, 0, 0)


SYNC10 = struct.pack(">BBIBHB", 0x35, 0, 0, 0, 0, 0)


def cmd_writer(host, port, iqn, lun, journal, nslots, seq):
    # The reservation holder's I_T nexus (WRITE EXCLUSIVE: only it may write).
    s = login(host, port, iqn, "pr-holder", isid=32)
    clear_ua(s, lun)
    per = BS // SECT
    acked = fua = synced = 0
    with open(journal, "a") as j:
        try:
            batch = 0
            while True:
                use_fua = batch % 2 == 0
                batch += 1
                itts = {}
                for _ in range(INFLIGHT):
                    slot = seq % nslots
                    cdb = write10_fua(slot * per, per) if use_fua else write16(slot * per, per)
                    itts[s.scsi(lun, cdb, write=block(seq, slot))] = (slot, seq)
                    seq += 1
                pend = set(itts)
                while pend:
                    if not fwait(s, lambda: any(s.done(i) for i in pend), 10):
                        raise Closed("no response")
                    for i in [i for i in pend if s.done(i)]:
                        pend.discard(i)
                        st = s.tasks.pop(i).status
                        if st != 0:
                            raise Closed("write status 0x%02x" % st)
                        if use_fua:
                            j.write("%d %d\n" % itts[i])
                            j.flush()
                            acked += 1
                            fua += 1
                if not use_fua:
                    st, sk, _ = command(s, lun, SYNC10)
                    if st != 0:
                        raise Closed("SYNCHRONIZE CACHE status 0x%02x %s" % (st, sk))
                    for i in itts:
                        j.write("%d %d\n" % itts[i])
                    j.flush()
                    acked += INFLIGHT
                    synced += INFLIGHT
        except (Closed, OSError) as e:
            print("writer stopped: %s" % e, file=sys.stderr)
    print("acked %d fua %d synced %d next %d" % (acked, fua, synced, seq))


def cmd_verify(host, port, iqn, lun, journal, nslots):
    last = {}
    with open(journal) as j:
        for line in j:
            slot, seq = map(int, line.split())
            if seq > last.get(slot, -1):
                last[slot] = seq
    s = login(host, port, iqn, "verify", isid=31)
    clear_ua(s, lun)
    per_cmd = 256                      # blocks of 4 KiB per READ: 1 MiB
    disk = {}
    for first in range(0, nslots, per_cmd):
        n = min(per_cmd, nslots - first)
        if not any(first <= k < first + n for k in last):
            continue
        st, sk, t = command(s, lun, struct.pack(">BBIBHB", 0x28, 0, first * 8, 0, n * 8, 0),
                            read_len=n * BS)
        if st != 0:
            print("READ failed: 0x%02x %s" % (st, sk), file=sys.stderr)
            print("checked 0 bad %d" % len(last))
            return
        for k in range(n):
            disk[first + k] = bytes(t.read[k * BS:(k + 1) * BS])
    bad = 0
    for slot, seq in sorted(last.items()):
        got = parse(disk[slot])
        if got is None or got[1] != slot or got[0] < seq or got[0] % nslots != slot:
            bad += 1
            if bad <= 5:
                print("slot %d: acked seq %d, found %s" % (slot, seq, got), file=sys.stderr)
    s.logout()
    print("checked %d bad %d" % (len(last), bad))


def pr_out(s, lun, sa, ptype, key, sakey, aptpl):
    param = struct.pack(">QQ4xBxxx", key, sakey, 1 if aptpl else 0)
    cdb = struct.pack(">BBBxxIx", 0x5F, sa, ptype, len(param))
    st, sk, _ = command(s, lun, cdb, write=param)
    return st, sk


def pr_in(s, lun, sa):
    cdb = struct.pack(">BBxxxxxHx", 0x5E, sa, 4096)
    st, sk, t = command(s, lun, cdb, read_len=4096)
    if st != 0:
        raise Closed("PERSISTENT RESERVE IN status 0x%02x %s" % (st, sk))
    return bytes(t.read)


def cmd_pr_set(host, port, iqn, lun, key):
    s = login(host, port, iqn, "pr-holder", isid=32)
    clear_ua(s, lun)
    st, sk = pr_out(s, lun, 0x00, 0, 0, key, True)       # REGISTER, APTPL=1
    st2, sk2 = pr_out(s, lun, 0x01, 0x01, key, 0, False)  # RESERVE, WRITE EXCLUSIVE
    s.logout()
    print("ok" if st == 0 and st2 == 0 else "register %s %s reserve %s %s" % (st, sk, st2, sk2))


def cmd_pr_show(host, port, iqn, lun):
    s = login(host, port, iqn, "pr-holder", isid=32)
    clear_ua(s, lun)
    keys_d = pr_in(s, lun, 0)
    n = struct.unpack(">I", keys_d[4:8])[0] // 8
    keys = [struct.unpack(">Q", keys_d[8 + 8 * i:16 + 8 * i])[0] for i in range(n)]
    res = pr_in(s, lun, 1)
    if struct.unpack(">I", res[4:8])[0] >= 16:
        holder, ptype = struct.unpack(">Q", res[8:16])[0], res[21] & 0x0F
    else:
        holder, ptype = 0, 0
    s.logout()
    print("keys %s holder %x type %d" % (",".join("%x" % k for k in keys) or "-", holder, ptype))


def main():
    a = sys.argv[1:]
    host, port, iqn, lun = a[1], int(a[2]), a[3], int(a[4])
    if a[0] == "writer":
        cmd_writer(host, port, iqn, lun, a[5], int(a[6]), int(a[7]))
    elif a[0] == "verify":
        cmd_verify(host, port, iqn, lun, a[5], int(a[6]))
    elif a[0] == "pr-set":
        cmd_pr_set(host, port, iqn, lun, int(a[5], 16))
    elif a[0] == "pr-show":
        cmd_pr_show(host, port, iqn, lun)
    else:
        sys.exit("unknown subcommand " + a[0])


if __name__ == "__main__":
    main()
