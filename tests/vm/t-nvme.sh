#!/usr/bin/env bash
# t-nvme.sh — the nvme backend (bs-type nvme: NVMe passthrough with io_uring
# on /dev/ng0n1) against QEMU's emulated NVMe controller, one boot. Everything
# runs in the guest: lichd serves the namespace on the guest's 127.0.0.1, and
# the checks use libiscsi's tools and the guest's own kernel initiator:
#   - test_bdev_nvme's device cases drive the backend directly (a queue pair
#     polled by hand): splitting, vectored and registered-buffer commands,
#     unmap/write zeroes, an NVMe error's sense, teardown with I/O in flight;
#   - iscsi-readcapacity16 / iscsi-inq report the namespace's size and block size;
#   - data written through the iSCSI disk is on the namespace (read back both
#     ways, O_DIRECT) and data put on the namespace is read through iSCSI;
#   - blkdiscard on the iSCSI disk deallocates: zeroes both ways;
#   - fio, libaio, 4 KiB random writes at queue depth 32, verify=crc32c;
#   - libiscsi's iscsi-test-cu: the suites that reach the backend in
#     different ways (VM_NVME_CU=sbc, the default, ~2 min under TCG) or all of
#     it with a multipath URL (VM_NVME_CU=all, by hand: an hour or more);
#   - lichd logged no error and exits 0 on SIGTERM.
# Host side: only boots the guest (with a 1 GiB emulated NVMe disk).
set -u
. "${VMT_DIR:-$(dirname "$0")}/lib.sh"

if [ "${1:-}" != guest ]; then
	# ------------------------------------------------------------- host
	IQN=iqn.2026-11.org.lich:vm-nvme
	vm_host_init
	# The device cases of the unit test run in the guest: `make check-vm`
	# builds only the binaries, so build that one test if it is missing.
	ut=$(dirname "$LICHD")/tests/test_bdev_nvme
	if [ ! -x "$ut" ]; then
		b=$(dirname "$LICHD"); b=${b#"$(cd "$VMT_DIR/../.." && pwd)/"}
		make -s -C "$VMT_DIR/../.." BUILD="$b" "$b/tests/test_bdev_nvme" >/dev/null 2>&1 ||
			echo "could not build $ut"
	fi
	vm_guest_self -n 1G -e VMT_LICHD="$LICHD" -e VM_NVME_CU="${VM_NVME_CU:-sbc}" \
		-e VM_NVME_FIO_RUNTIME="${VM_NVME_FIO_RUNTIME:-20}"
	exit 0
fi

# ------------------------------------------------------------------ guest
IQN=$VMT_IQN
PORT=3260
T=$VMT_T
W=/tmp/nvmet
mkdir -p "$W"
url=iscsi://127.0.0.1:$PORT/$IQN/1

modprobe nvme
for _ in $(seq 100); do [ -c /dev/ng0n1 ] && [ -b /dev/nvme0n1 ] && break; sleep 0.1; done
check "the emulated NVMe namespace appears (/dev/nvme0n1, /dev/ng0n1)" test -c /dev/ng0n1 || exit 1
ns_lbs=$(cat /sys/block/nvme0n1/queue/logical_block_size)
ns_bytes=$(($(cat /sys/block/nvme0n1/size) * 512))
echo "namespace: $ns_bytes bytes, $ns_lbs-byte blocks" | diag

# --- the backend alone: test_bdev_nvme's device cases (a qp polled by hand)
ut=$(dirname "$VMT_LICHD")/tests/test_bdev_nvme
if [ -x "$ut" ]; then
	LICH_TEST_NVME=/dev/ng0n1 "$ut" >"$W/ut.log" 2>&1
	for c in $(sed -n 's/^\[ RUN      \] \(test_dev_[a-z_]*\)$/\1/p' "$W/ut.log"); do
		if grep -qE "^\[       OK \] $c\$" "$W/ut.log"; then
			pass "unit $c on /dev/ng0n1"
		else
			fail "unit $c on /dev/ng0n1"
			sed -n "/^\[ RUN      \] $c\$/,/^\[ *[A-Z]* *\] $c\$/p" "$W/ut.log" | diag
		fi
	done
	grep -i 'registered buffers' "$W/ut.log" | diag
	check "test_bdev_nvme ran its device cases (none skipped) and exited 0" \
		bash -c "grep -q 'RUN.*test_dev_rw' $W/ut.log && ! grep -q SKIPPED $W/ut.log && tail -3 $W/ut.log | grep -q PASSED"
else
	fail "$ut exists (make tests)"
fi

cat >"$W/t.conf" <<EOF
portal 127.0.0.1:$PORT
state-dir $W/state
memory-limit 256M
<target $IQN>
    <backing-store /dev/ng0n1>
        bs-type nvme
        lun 1
    </backing-store>
</target>
EOF
"$VMT_LICHD" -c "$W/t.conf" >"$W/lichd.log" 2>&1 &
LPID=$!
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	kill -0 "$LPID" 2>/dev/null || break
	sleep 0.1
done
check "lichd starts with an nvme LUN on /dev/ng0n1" kill -0 "$LPID" || { diag <"$W/lichd.log"; exit 1; }
grep -E 'NVMe namespace' "$W/lichd.log" | diag

# --- capacity and identity through iSCSI
rc16=$(timeout 30 iscsi-readcapacity16 "$url" 2>&1)
echo "$rc16" | diag
bl=$(sed -n 's/^LOGICAL BLOCK LENGTH IN BYTES: *\([0-9]*\).*/\1/ip' <<<"$rc16")
last=$(sed -n 's/^RETURNED LOGICAL BLOCK ADDRESS: *\([0-9]*\).*/\1/ip' <<<"$rc16")
check "READ CAPACITY(16): block length $bl = the namespace's $ns_lbs" test "${bl:-0}" -eq "$ns_lbs"
check "READ CAPACITY(16): $((${last:-0} + 1)) blocks = the namespace's $((ns_bytes / ns_lbs))" \
	test "$((${last:--1} + 1))" -eq "$((ns_bytes / ns_lbs))"
check "READ CAPACITY(16): thin provisioned (LBPME), the namespace can deallocate" \
	grep -q 'LBPME:1' <<<"$rc16"
inq=$(timeout 30 iscsi-inq "$url" 2>&1)
echo "$inq" | grep -iE 'device type|vendor|product' | diag
check "iscsi-inq: a direct-access block device" grep -qiE 'Peripheral Device Type:.*(direct|BLOCK|0)' <<<"$inq"

# --- kernel initiator: data both ways between the iSCSI disk and the namespace
check "iscsid starts" g_iscsi_prepare
iscsiadm -m node -o delete -T "$IQN" >/dev/null 2>&1
iscsiadm -m node -o new -T "$IQN" -p "127.0.0.1:$PORT" >/dev/null
out=$(timeout 60 iscsiadm -m node -T "$IQN" -p "127.0.0.1:$PORT" --login 2>&1); rc=$?
echo "$out" | diag
check "login to $IQN at 127.0.0.1 (lichd in the guest)" test "$rc" -eq 0
d=$(g_disk "$IQN" 1)
check "the nvme LUN appears as /dev/$d" test -n "$d" || exit 1
check "/dev/$d has the namespace's size" test "$(blockdev --getsize64 "/dev/$d")" -eq "$ns_bytes"
check "/dev/$d has the namespace's block size" test "$(blockdev --getss "/dev/$d")" -eq "$ns_lbs"

head -c 8M /dev/urandom >"$W/a"
dd if="$W/a" of="/dev/$d" bs=1M seek=100 oflag=direct conv=fsync status=none
check "8 MiB written through iSCSI read back through iSCSI" \
	cmp "$W/a" <(dd if="/dev/$d" bs=1M skip=100 count=8 iflag=direct status=none)
check "... and they are on the namespace (read from /dev/nvme0n1)" \
	cmp "$W/a" <(dd if=/dev/nvme0n1 bs=1M skip=100 count=8 iflag=direct status=none)
head -c 4M /dev/urandom >"$W/b"
dd if="$W/b" of=/dev/nvme0n1 bs=1M seek=300 oflag=direct conv=fsync status=none
check "4 MiB written to the namespace read back through iSCSI" \
	cmp "$W/b" <(dd if="/dev/$d" bs=1M skip=300 count=4 iflag=direct status=none)
# A 2 MiB transfer: more than the controller's MDTS (512 KiB on QEMU), split.
dd if="$W/a" of="/dev/$d" bs=2M seek=200 count=4 oflag=direct status=none
check "2 MiB writes and reads (split by MDTS) round trip" \
	cmp "$W/a" <(dd if="/dev/$d" bs=2M skip=200 count=4 iflag=direct status=none)

# --- UNMAP: blkdiscard through iSCSI, then zeroes both ways
out=$(blkdiscard -o $((100 * 1048576)) -l $((4 * 1048576)) "/dev/$d" 2>&1); rc=$?
echo "$out" | diag
check "blkdiscard of 4 MiB on /dev/$d (SCSI UNMAP) succeeds" test "$rc" -eq 0
check "the discarded range reads back as zeroes through iSCSI" \
	cmp <(head -c 4M /dev/zero) <(dd if="/dev/$d" bs=1M skip=100 count=4 iflag=direct status=none)
check "... and on the namespace" \
	cmp <(head -c 4M /dev/zero) <(dd if=/dev/nvme0n1 bs=1M skip=100 count=4 iflag=direct status=none)
check "the data after the discarded range is intact" \
	cmp <(tail -c 4M "$W/a") <(dd if="/dev/$d" bs=1M skip=104 count=4 iflag=direct status=none)
out=$(sg_unmap --force --lba=$((300 * 1048576 / ns_lbs)) --num=$((1048576 / ns_lbs)) "/dev/$d" 2>&1); rc=$?
echo "$out" | diag
check "sg_unmap of 1 MiB succeeds" test "$rc" -eq 0
check "the unmapped MiB reads as zeroes on the namespace" \
	cmp <(head -c 1M /dev/zero) <(dd if=/dev/nvme0n1 bs=1M skip=300 count=1 iflag=direct status=none)

out=$(sg_sync "/dev/$d" 2>&1); rc=$?
echo "$out" | diag
check "sg_sync (SYNCHRONIZE CACHE: an NVMe Flush) succeeds" test "$rc" -eq 0

# --- fio: 4 KiB random writes with verify
rt=${VM_NVME_FIO_RUNTIME:-20}
fio --output-format=normal --output="$W/fio.out" \
	--ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32 --size=256M \
	--verify=crc32c --verify_backlog=1024 --time_based --runtime="$rt" \
	--name=nvme --filename="/dev/$d" 2>"$W/fio.err"
rc=$?
grep -E 'err=|IOPS=|verify' "$W/fio.out" | diag
diag <"$W/fio.err"
check "fio (randwrite 4k, qd32, verify=crc32c, ${rt}s) on the nvme LUN exits 0" test "$rc" -eq 0
check "fio reports err= 0" grep -q ': err= 0:' "$W/fio.out"
check "no verify error in fio's output" \
	bash -c "! grep -qiE 'verify.*(bad|fail|mismatch)|crc32c.*(bad|wanted)' $W/fio.out $W/fio.err"
check "no iSCSI/SCSI error, timeout, abort or reset in the guest kernel log" g_kernel_clean
out=$(timeout 60 iscsiadm -m node -T "$IQN" -p "127.0.0.1:$PORT" --logout 2>&1); rc=$?
echo "$out" | diag
check "logout" test "$rc" -eq 0

# --- libiscsi's conformance suite against the nvme LUN
case ${VM_NVME_CU:-sbc} in
all) cu_tests=ALL ;;
*)   # what reaches the backend differently: reads and writes (FUA), flush,
     # unmap and write same (Write Zeroes); one path. Under TCG even a RAM
     # LUN needs a minute for CompareAndWrite alone: the rest is for by hand.
     cu_tests=ALL.Write16,ALL.WriteSame16,ALL.Unmap,ALL.ReadCapacity16 ;;
esac
mp=
[ "${VM_NVME_CU:-sbc}" = all ] && mp=$url      # the multipath tests need a second URL
cd "$W" || exit 1
rm -f CUnitAutomated-Results.xml
t0=$SECONDS
timeout 1800 iscsi-test-cu -d -x -t "$cu_tests" "$url" $mp >"$W/cu.log" 2>&1
cu_rc=$?
if [ -f CUnitAutomated-Results.xml ]; then
	awk '
	/<SUITE_NAME>/ { gsub(/.*<SUITE_NAME> *| *<\/SUITE_NAME>.*/, ""); suite = $0 }
	/<CUNIT_RUN_TEST_SUCCESS>/ { res = "PASS" }
	/<CUNIT_RUN_TEST_FAILURE>/ { res = "FAIL" }
	/<TEST_NAME>/ { gsub(/.*<TEST_NAME> *| *<\/TEST_NAME>.*/, ""); name = $0 }
	/<\/CUNIT_RUN_TEST_RECORD>/ { key = suite "." name; if (key != last) {
		print res ": cu nvme " key; n++; if (res == "FAIL") f++ }; last = key }
	END { printf "CU nvme: total %d, failed %d, ", n, f }
	' CUnitAutomated-Results.xml
	echo "skipped $(grep -c '\[SKIPPED\]' "$W/cu.log"), $((SECONDS - t0)) s"
	check "iscsi-test-cu ($cu_tests) finished its report" grep -q CUNIT_FOOTER CUnitAutomated-Results.xml
else
	fail "iscsi-test-cu produced a report (exit $cu_rc)"
	tail -20 "$W/cu.log" | diag
fi
grep -E '\[FAILED\]' -B3 "$W/cu.log" | head -40 | diag

# --- lichd
warn=$(grep -E ' lichd (error|warn): ' "$W/lichd.log" | grep -v 'hugepages unavailable')
[ -n "$warn" ] && tail -30 <<<"$warn" | diag
check "lichd is still running" kill -0 "$LPID"
check "lichd logged no error or warning (no failed I/O)" test -z "$warn"
kill -TERM "$LPID"
for _ in $(seq 100); do kill -0 "$LPID" 2>/dev/null || break; sleep 0.1; done
wait "$LPID"; rc=$?
check "lichd exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
cp "$W/lichd.log" "$W/cu.log" "$T/" 2>/dev/null
exit 0
