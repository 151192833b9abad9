"""iscsi_client.py — a small iSCSI initiator (RFC 7143) for lich's tests.

One connection per session, no digests, no authentication, ERL 0. Commands
are asynchronous: submit them, then poll(); R2Ts are answered and NOP-In
pings returned while polling. Every PDU received is recorded in `events` in
arrival order, so tests can check what came before what.

    s = Session("127.0.0.1", 3260, "iqn...:init", "iqn...:target", isid=1)
    s.login()
    itt = s.scsi(lun, cdb, write=data)        # or read_len=n
    s.wait(lambda: s.done(itt), 5)
    status, sense = s.result(itt)
"""
import select
import socket
import struct
import time

OP_NOP_OUT, OP_SCSI_CMD, OP_TMF_REQ, OP_LOGIN_REQ = 0x00, 0x01, 0x02, 0x03
OP_DATA_OUT, OP_LOGOUT_REQ = 0x05, 0x06
OP_NOP_IN, OP_SCSI_RSP, OP_TMF_RSP, OP_LOGIN_RSP = 0x20, 0x21, 0x22, 0x23
OP_DATA_IN, OP_LOGOUT_RSP, OP_R2T, OP_ASYNC, OP_REJECT = 0x25, 0x26, 0x31, 0x32, 0x3F
IMMEDIATE = 0x40
FINAL = 0x80
RSVD = 0xFFFFFFFF

TMF_ABORT_TASK, TMF_ABORT_TASK_SET, TMF_CLEAR_ACA, TMF_CLEAR_TASK_SET = 1, 2, 3, 4
TMF_LU_RESET, TMF_TARGET_WARM_RESET, TMF_TARGET_COLD_RESET = 5, 6, 7
TMF_TASK_REASSIGN, TMF_IT_NEXUS_RESET = 8, 11


class Closed(Exception):
    pass


def lun_field(lun):
    if lun < 256:
        return struct.pack(">BB6x", 0, lun)
    return struct.pack(">H6x", 0x4000 | lun)      # flat space addressing


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def cdb_rw10(op, lba, blocks):
    return struct.pack(">BBIBHB", op, 0, lba, 0, blocks, 0)


class Task:
    def __init__(self, itt, lun, write, read_len):
        self.itt = itt
        self.lun = lun
        self.write = write
        self.read = bytearray(read_len)
        self.status = None           # SCSI status once done
        self.sense = b""
        self.done = False
        self.sent = 0                # bytes of write data sent
        self.hold = False            # keep R2Ts unanswered (see release())
        self.held = []


class Session:
    def __init__(self, host, port, initiator, target, isid=1):
        self.host, self.port = host, port
        self.initiator, self.target = initiator, target
        self.isid = isid
        self.sock = None
        self.buf = b""
        self.itt = 0x1000
        self.cmdsn = 0
        self.maxcmdsn = 0
        self.expstatsn = 0
        self.tasks = {}
        self.tmf_rsp = {}            # itt -> TMF response code
        self.events = []             # (time, opcode, itt, bhs, data)
        self.closed = False
        self.params = {}

    # ---- wire ----
    def connect(self):
        self.sock = socket.create_connection((self.host, self.port), 5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)

    def send(self, bhs, data=b""):
        assert len(bhs) == 48
        bhs = bhs[:5] + struct.pack(">I", len(data))[1:] + bhs[8:]
        msg = bhs + pad4(data)
        self.sock.setblocking(True)
        try:
            self.sock.sendall(msg)
        except OSError as e:
            self.closed = True
            raise Closed(str(e))
        finally:
            self.sock.setblocking(False)

    def _read_some(self, timeout):
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
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

    def recv_pdu(self, timeout):
        """One whole PDU (bhs, data), or None after timeout seconds."""
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 48:
                ahs = self.buf[4] * 4
                dlen = int.from_bytes(self.buf[5:8], "big")
                total = 48 + ahs + dlen + (-dlen % 4)
                if len(self.buf) >= total:
                    bhs = self.buf[:48]
                    data = self.buf[48 + ahs:48 + ahs + dlen]
                    self.buf = self.buf[total:]
                    return bhs, data
            left = end - time.monotonic()
            if left <= 0 or (not self._read_some(left) and time.monotonic() >= end):
                return None

    def _sn_update(self, bhs, has_statsn):
        if has_statsn:
            statsn = struct.unpack(">I", bhs[24:28])[0]
            if ((statsn + 1 - self.expstatsn) & 0xFFFFFFFF) < 0x80000000:
                self.expstatsn = (statsn + 1) & 0xFFFFFFFF
        self.maxcmdsn = struct.unpack(">I", bhs[32:36])[0]

    def next_itt(self):
        self.itt += 1
        return self.itt

    # ---- login / logout ----
    def _login_pdu(self, csg, nsg, transit, keys):
        text = b"".join(k.encode() + b"=" + v.encode() + b"\0" for k, v in keys)
        flags = (0x80 if transit else 0) | (csg << 2) | nsg
        isid = struct.pack(">BBHBB", 0x80, 0, 0, 0, 0)[:5] + bytes([self.isid])
        bhs = struct.pack(">BBBB", OP_LOGIN_REQ | IMMEDIATE, flags, 0, 0) + b"\0" * 4
        bhs += isid + struct.pack(">H", 0)
        bhs += struct.pack(">IHHII", self.login_itt, 1, 0, self.cmdsn, self.expstatsn)
        bhs += b"\0" * 16
        self.send(bhs, text)
        pdu = self.recv_pdu(10)
        if pdu is None:
            raise Closed("no login response")
        rbhs, rdata = pdu
        if rbhs[0] & 0x3F != OP_LOGIN_RSP:
            raise Closed("unexpected opcode 0x%02x during login" % rbhs[0])
        status = rbhs[36] << 8 | rbhs[37]
        if status:
            raise Closed("login failed: status 0x%04x" % status)
        self.expstatsn = (struct.unpack(">I", rbhs[24:28])[0] + 1) & 0xFFFFFFFF
        for kv in rdata.split(b"\0"):
            if b"=" in kv:
                k, v = kv.split(b"=", 1)
                self.params[k.decode()] = v.decode()
        return rbhs

    def login(self, extra=()):
        self.connect()
        self.login_itt = self.next_itt()
        r = self._login_pdu(0, 1, True, [("InitiatorName", self.initiator),
                                        ("TargetName", self.target),
                                        ("SessionType", "Normal"),
                                        ("AuthMethod", "None")])
        keys = [("HeaderDigest", "None"), ("DataDigest", "None"),
                ("MaxRecvDataSegmentLength", "262144"), ("InitialR2T", "No"),
                ("ImmediateData", "Yes"), ("FirstBurstLength", "65536"),
                ("MaxBurstLength", "1048576"), ("MaxOutstandingR2T", "1"),
                ("ErrorRecoveryLevel", "0"), ("MaxConnections", "1"),
                ("DataPDUInOrder", "Yes"), ("DataSequenceInOrder", "Yes"),
                ("DefaultTime2Wait", "0"), ("DefaultTime2Retain", "0")] + list(extra)
        for _ in range(4):
            r = self._login_pdu(1, 3, True, keys)
            if r[1] & 0x80 and r[1] & 3 == 3:
                break
            keys = []
        else:
            raise Closed("target did not move to full feature phase")
        self.cmdsn = struct.unpack(">I", r[28:32])[0]
        self.maxcmdsn = struct.unpack(">I", r[32:36])[0]
        p = self.params
        self.first_burst = int(p.get("FirstBurstLength", "65536"))
        self.max_burst = int(p.get("MaxBurstLength", "262144"))
        self.initial_r2t = p.get("InitialR2T", "Yes") == "Yes"
        self.immediate_data = p.get("ImmediateData", "No") == "Yes"
        self.target_mrdsl = int(p.get("MaxRecvDataSegmentLength", "8192"))

    def logout(self, timeout=5):
        itt = self.next_itt()
        bhs = struct.pack(">BBxx", OP_LOGOUT_REQ | IMMEDIATE, FINAL) + b"\0" * 12
        bhs += struct.pack(">IIII", itt, 0, self.cmdsn, self.expstatsn) + b"\0" * 16
        self.send(bhs)
        try:
            self.wait(lambda: any(e[1] == OP_LOGOUT_RSP for e in self.events), timeout)
        except Closed:
            pass
        self.close()

    def close(self):
        if self.sock:
            self.sock.close()
        self.closed = True

    # ---- commands ----
    def scsi(self, lun, cdb, write=b"", read_len=0, immediate_cmd=False, send_data=True,
             hold_r2t=False):
        """Sends a SCSI command; write data goes as immediate data, then
        unsolicited Data-Out up to FirstBurstLength (unless send_data is
        False: the command then waits for data that never comes)."""
        itt = self.next_itt()
        t = Task(itt, lun, write, read_len)
        t.hold = hold_r2t
        self.tasks[itt] = t
        imm = b""
        unsol_end = 0
        if write and send_data:
            if self.immediate_data:
                imm = write[:min(self.first_burst, self.target_mrdsl)]
            if not self.initial_r2t:
                unsol_end = min(len(write), self.first_burst)
        flags = 0x01 | (0x20 if write else 0) | (0x40 if read_len else 0)
        more_unsol = unsol_end > len(imm)
        if not write or not more_unsol and send_data:
            flags |= FINAL
        cdb = cdb + b"\0" * (16 - len(cdb))
        bhs = struct.pack(">BBxx", OP_SCSI_CMD | (IMMEDIATE if immediate_cmd else 0), flags)
        bhs += b"\0" * 4 + lun_field(lun)
        bhs += struct.pack(">IIII", itt, len(write) if write else read_len, self.cmdsn,
                           self.expstatsn) + cdb
        if not immediate_cmd:
            self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
        self.send(bhs, imm)
        t.sent = len(imm)
        off, datasn = len(imm), 0
        while more_unsol and off < unsol_end:
            n = min(unsol_end - off, self.target_mrdsl)
            self._data_out(t, RSVD, datasn, off, n, off + n == unsol_end)
            off += n
            datasn += 1
        return itt

    def _data_out(self, t, ttt, datasn, off, n, final):
        bhs = struct.pack(">BBxx", OP_DATA_OUT, FINAL if final else 0) + b"\0" * 4
        bhs += lun_field(t.lun)
        bhs += struct.pack(">IIIIIIII", t.itt, ttt, 0, self.expstatsn, 0, datasn, off, 0)
        self.send(bhs, bytes(t.write[off:off + n]))
        t.sent += n

    def _answer_r2t(self, t, ttt, off, length):
        datasn, end = 0, off + length
        while off < end:
            n = min(end - off, self.target_mrdsl)
            self._data_out(t, ttt, datasn, off, n, off + n == end)
            off += n
            datasn += 1

    def release(self, itt):
        """Answers the R2Ts held for a task (and stops holding them)."""
        t = self.tasks[itt]
        t.hold = False
        held, t.held = t.held, []
        for r in held:
            self._answer_r2t(t, *r)

    def tmf(self, func, lun=0, rtt=RSVD, refcmdsn=0):
        itt = self.next_itt()
        bhs = struct.pack(">BBxx", OP_TMF_REQ | IMMEDIATE, FINAL | func) + b"\0" * 4
        bhs += lun_field(lun)
        bhs += struct.pack(">IIII", itt, rtt, self.cmdsn, self.expstatsn)
        bhs += struct.pack(">II", refcmdsn, 0) + b"\0" * 8
        self.send(bhs)
        return itt

    # ---- receive ----
    def poll(self, timeout=0.0):
        """Handles whatever arrives within timeout seconds; returns the number
        of PDUs handled. Raises Closed when the target closed."""
        n = 0
        end = time.monotonic() + timeout
        while True:
            pdu = self.recv_pdu(max(end - time.monotonic(), 0))
            if pdu is None:
                return n
            self._handle(*pdu)
            n += 1

    def _handle(self, bhs, data):
        op = bhs[0] & 0x3F
        itt = struct.unpack(">I", bhs[16:20])[0]
        self.events.append((time.monotonic(), op, itt, bhs, data))
        if op == OP_SCSI_RSP:
            self._sn_update(bhs, True)
            t = self.tasks.get(itt)
            if t:
                t.status = bhs[3]
                if len(data) >= 2:
                    sl = struct.unpack(">H", data[:2])[0]
                    t.sense = data[2:2 + sl]
                t.done = True
        elif op == OP_DATA_IN:
            has_status = bool(bhs[1] & 0x01)
            self._sn_update(bhs, has_status)
            t = self.tasks.get(itt)
            if t:
                off = struct.unpack(">I", bhs[40:44])[0]
                t.read[off:off + len(data)] = data
                if has_status:
                    t.status = bhs[3]
                    t.done = True
        elif op == OP_R2T:
            self._sn_update(bhs, False)
            t = self.tasks.get(itt)
            ttt = struct.unpack(">I", bhs[20:24])[0]
            off, length = struct.unpack(">II", bhs[40:48])
            if t and t.hold:
                t.held.append((ttt, off, length))
            elif t and not t.done:
                self._answer_r2t(t, ttt, off, length)
        elif op == OP_TMF_RSP:
            self._sn_update(bhs, True)
            self.tmf_rsp[itt] = bhs[2]
        elif op == OP_NOP_IN:
            self._sn_update(bhs, itt != RSVD)
            ttt = struct.unpack(">I", bhs[20:24])[0]
            if ttt != RSVD:          # a ping: answer it
                out = struct.pack(">BBxx", OP_NOP_OUT | IMMEDIATE, FINAL) + b"\0" * 4
                out += bhs[8:16] + struct.pack(">IIII", RSVD, ttt, self.cmdsn,
                                               self.expstatsn) + b"\0" * 16
                self.send(out)
        else:
            self._sn_update(bhs, True)

    def wait(self, pred, timeout):
        end = time.monotonic() + timeout
        while not pred():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.poll(min(left, 0.05))
        return True

    # ---- results ----
    def done(self, itt):
        return self.tasks[itt].done

    def result(self, itt):
        t = self.tasks[itt]
        return t.status, t.sense

    def sense_code(self, itt):
        """(key, asc, ascq) of a CHECK CONDITION, or None."""
        s = self.tasks[itt].sense
        if len(s) >= 14:
            return s[2] & 0x0F, s[12], s[13]
        return None

    def heard_of(self, itt):
        """Did anything at all arrive for this task?"""
        return any(e[2] == itt and e[1] in (OP_SCSI_RSP, OP_DATA_IN, OP_R2T)
                   for e in self.events)

    def command(self, lun, cdb, write=b"", read_len=0, timeout=10):
        """Synchronous: (status, sense key/asc/ascq or None, task)."""
        itt = self.scsi(lun, cdb, write=write, read_len=read_len)
        if not self.wait(lambda: self.done(itt), timeout):
            raise Closed("no response to command 0x%02x" % cdb[0])
        return self.tasks[itt].status, self.sense_code(itt), self.tasks[itt]
