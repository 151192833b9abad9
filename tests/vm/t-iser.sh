#!/usr/bin/env bash
# t-iser.sh — iSER (RFC 7145) with the Linux initiator (ib_iser), one boot.
# Everything runs in the guest: soft-RoCE (rdma_rxe) on eth0, lichd with an
# iser-portal on 10.0.2.15 (the host has no RDMA), open-iscsi with the iser
# iface. Checks: login over iSER (lichd logs the iSER connection, the session's
# transport is iser); ext4 made, files written, checksums intact after logout
# and a new login, fsck clean; fio verify=crc32c 4 KiB random writes at queue
# depth 32 and 128 KiB sequential writes (RDMA Read of the initiator's buffers
# beyond the immediate data) with read-back (RDMA Write); the initiator
# dropping its session in the middle of fio leaves lichd serving, its pool
# back to what it held before, and memory registered per chunk, not per I/O
# (lichd's registration counter against its chunk count); no iSCSI error in
# the kernel log of the clean phases; lichd exits 0 on SIGTERM.
# VM_FIO_RUNTIME (default 15 here) is each fio job's length.
set -u
. "${VMT_DIR:-$(dirname "$0")}/lib.sh"

if [ "${1:-}" != guest ]; then
	# ------------------------------------------------------------- host
	IQN=iqn.2026-11.org.lich:vm-iser
	vm_host_init
	VM_FIO_RUNTIME=${VM_FIO_RUNTIME_ISER:-15} vm_guest_self -e VMT_LICHD="$LICHD"
	exit 0
fi

# ------------------------------------------------------------------ guest
IQN=$VMT_IQN
T=$VMT_T
rt=${VM_FIO_RUNTIME:-15}
[ "$rt" -gt 20 ] && rt=20
ADDR=10.0.2.15
IPORT=3260
SOCK=/run/lich-iser.sock
LOG=$T/lichd-iser.log
lpid=

g_stop_lichd() {
	[ -n "$lpid" ] || return 1
	kill -TERM "$lpid" 2>/dev/null
	for _ in $(seq 150); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$lpid" 2>/dev/null && { kill -9 "$lpid"; wait "$lpid"; lpid=; return 124; }
	wait "$lpid"; local rc=$?; lpid=; return "$rc"
}
trap '[ -n "$lpid" ] && kill -9 "$lpid" 2>/dev/null' EXIT

pool_in_use() { # bytes_in_use of lichd's pools (lichctl pool)
	"$(dirname "$VMT_LICHD")/lichctl" -s "$SOCK" --json pool 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_in_use"])'
}
pool_chunks() {
	"$(dirname "$VMT_LICHD")/lichctl" -s "$SOCK" --json pool 2>/dev/null |
		python3 -c 'import json,sys; print(sum(r["chunks"] for r in json.load(sys.stdin)["reactors"]))'
}
mr_count() { grep -o 'memory registrations so far: [0-9]*' "$LOG" | tail -1 | grep -o '[0-9]*$'; }
i_node() {
	iscsiadm -m node -o delete -T "$IQN" >/dev/null 2>&1
	iscsiadm -m node -o new -T "$IQN" -p "$ADDR:$IPORT" -I iser >/dev/null
}
i_login() { timeout 60 iscsiadm -m node -T "$IQN" -p "$ADDR:$IPORT" -I iser --login; }
i_logout() { timeout 60 iscsiadm -m node -T "$IQN" -p "$ADDR:$IPORT" -I iser --logout; }
# The pool settles once the connection is flushed and freed.
pool_settles_at() {
	local want=$1 now
	for _ in $(seq 50); do
		now=$(pool_in_use)
		[ "$now" = "$want" ] && return 0
		sleep 0.2
	done
	echo "pool bytes_in_use $now, expected $want" | diag
	return 1
}

check "soft-RoCE: rdma_rxe device rxe0 on eth0" \
	bash -c 'modprobe rdma_rxe && modprobe rdma_ucm && modprobe ib_iser &&
		 rdma link add rxe0 type rxe netdev eth0 && test -e /dev/infiniband/uverbs0'
truncate -s 256M /tmp/iser-file.img
cat >/tmp/iser.conf <<EOF
portal 127.0.0.1:$VMT_PORT
iser-portal $ADDR:$IPORT
control-socket $SOCK
memory-limit 256M
<target $IQN>
    <backing-store ram:iser>
        bs-type ram
        size 192M
        lun 1
    </backing-store>
    <backing-store /tmp/iser-file.img>
        lun 2
    </backing-store>
</target>
EOF
"$VMT_LICHD" -c /tmp/iser.conf >"$LOG" 2>&1 &
lpid=$!
for _ in $(seq 100); do grep -q "listening on iser" "$LOG" && break; sleep 0.1; done
check "lichd listens on iser $ADDR:$IPORT" grep -q "listening on iser $ADDR:$IPORT" "$LOG" ||
	{ diag <"$LOG"; exit 1; }

check "iscsid starts" g_iscsi_prepare
i_node
out=$(i_login 2>&1); rc=$?
echo "$out" | diag
check "login to $IQN over iSER (iface iser)" test "$rc" -eq 0
check "the session's transport is iser" bash -c "iscsiadm -m session | grep -q '^iser: .* $IQN'"
check "lichd logged the iSER connection and the login" \
	bash -c "grep -q 'iser: connection from $ADDR' '$LOG' && grep -q 'login: initiator $VM_INITIATOR at $ADDR' '$LOG'"
d1=$(g_disk "$IQN" 1) && d2=$(g_disk "$IQN" 2)
check "LUN 1 (RAM) and LUN 2 (file) appear ($d1, $d2)" test -n "$d1" -a -n "$d2" || exit 1

# --- ext4 on LUN 2, files that must survive a new login
mkdir -p /mnt/iser
check "mkfs.ext4 on /dev/$d2" mkfs.ext4 -q -F "/dev/$d2"
check "mount /dev/$d2" mount "/dev/$d2" /mnt/iser
for i in $(seq 40); do
	head -c $(( (i * 37 % 29 + 1) * 16384 )) /dev/urandom >"/mnt/iser/f$i"
done
(cd /mnt/iser && sha256sum f* >/tmp/iser.sums)
check "40 files written and read back with the same checksums" \
	bash -c "sync && echo 3 >/proc/sys/vm/drop_caches && cd /mnt/iser && sha256sum -c --quiet /tmp/iser.sums"
check "umount" umount /mnt/iser

# --- fio with verify: RDMA Read (writes) and RDMA Write (reads)
fio --output=/tmp/fio1.out --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=32 --verify=crc32c --verify_backlog=512 --time_based --runtime="$rt" \
	--name=rand4k --filename="/dev/$d1" 2>/tmp/fio1.err
rc=$?
grep -E 'err=|IOPS=' /tmp/fio1.out | diag
check "fio randwrite 4k qd32 verify=crc32c ${rt}s: exit 0, err= 0" \
	bash -c "test $rc -eq 0 && grep -q ': err= 0:' /tmp/fio1.out"
fio --output=/tmp/fio2.out --ioengine=libaio --direct=1 --rw=write --bs=128k \
	--iodepth=8 --verify=crc32c --verify_backlog=64 --time_based --runtime="$rt" --size=128M \
	--name=seq128k --filename="/dev/$d1" 2>/tmp/fio2.err
rc=$?
grep -E 'err=|IOPS=' /tmp/fio2.out | diag
check "fio sequential write 128k qd8 verify=crc32c ${rt}s: exit 0, err= 0" \
	bash -c "test $rc -eq 0 && grep -q ': err= 0:' /tmp/fio2.out"
check "no verify error in fio's output" \
	bash -c '! grep -qiE "verify.*(bad|fail|mismatch)|crc32c.*(bad|wanted)" /tmp/fio[12].out /tmp/fio[12].err'
check "no iSCSI/SCSI error, abort or reset in the kernel log" g_kernel_clean

# --- logout, login again, the files are still there
out=$(i_logout 2>&1); rc=$?
echo "$out" | diag
check "logout" test "$rc" -eq 0
check "the LUNs are gone after logout" g_gone "$IQN" 1
sleep 1
base=$(pool_in_use)
check "lichctl pool reports lichd's memory after the logout ($base bytes in use)" test -n "$base"
out=$(i_login 2>&1); rc=$?
echo "$out" | diag
check "login again over iSER" test "$rc" -eq 0
d2=$(g_disk "$IQN" 2) && d1=$(g_disk "$IQN" 1)
check "the LUNs are back ($d1, $d2)" test -n "$d1" -a -n "$d2"
check "fsck of the ext4 file system is clean" fsck.ext4 -n -f "/dev/$d2"
mount "/dev/$d2" /mnt/iser &&
check "the 40 files have their checksums after the new login" \
	bash -c "cd /mnt/iser && sha256sum -c --quiet /tmp/iser.sums"
umount /mnt/iser 2>/dev/null

# --- the initiator goes away in the middle of I/O
fio --output=/tmp/fio3.out --ioengine=libaio --direct=1 --rw=randrw --bs=64k \
	--iodepth=32 --time_based --runtime=60 --name=cut --filename="/dev/$d1" 2>/dev/null &
fpid=$!
sleep 4
kill -9 "$fpid" 2>/dev/null
i_logout >/dev/null 2>&1 || iscsiadm -m session -u >/dev/null 2>&1
wait "$fpid" 2>/dev/null
check "the session is gone after the cut" bash -c "! iscsiadm -m session 2>/dev/null | grep -q '$IQN'"
check "lichd is still running after the initiator dropped mid-I/O" kill -0 "$lpid"
check "lichd's pool is back to its level before the session (no buffer leaked)" \
	pool_settles_at "$base"
chunks=$(pool_chunks) mr=$(mr_count)
echo "pool chunks $chunks, memory registrations $mr" | diag
check "memory registered once per pool chunk, not per I/O ($mr registrations, $chunks chunks)" \
	test -n "$mr" -a -n "$chunks" -a "${mr:-999999}" -le "${chunks:-0}"
out=$(i_login 2>&1); rc=$?
echo "$out" | diag
d1=$(g_disk "$IQN" 1)
check "lichd still serves: login again and read 4 MiB of LUN 1" \
	bash -c "test $rc -eq 0 && test -n '$d1' && dd if=/dev/$d1 of=/dev/null bs=1M count=4 iflag=direct status=none"
i_logout >/dev/null 2>&1
g_stop_lichd; rc=$?
check "lichd exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
grep -E ' lichd (error|warn): ' "$LOG" | grep -v 'hugepages unavailable' | tail -20 | diag
exit 0
