#!/usr/bin/env bash
# t-initiator.sh — lichd with the Linux initiator (open-iscsi + the kernel's
# iscsi_tcp and sd) in a QEMU guest, one boot:
#   discovery (SendTargets), login, both LUNs appear as /dev/sdX with the size,
#   vendor, product, revision, serial (VPD 0x80) and WWN (VPD 0x83) that the
#   config says and that iscsi-inq on the host reports; a RAM LUN round trip;
#   ext4 on the file LUN: files and checksums survive logout and login again,
#   fsck is clean; blkdiscard and sg_unmap reach the backing file (its
#   allocated blocks, seen from the guest through the uncached share, shrink)
#   and unmapped blocks read back as zeros (LBPRZ); logout.
# Host side: lichd serves a RAM LUN and a sparse file LUN on 127.0.0.1:PORT.
set -u
. "${VMT_DIR:-$(dirname "$0")}/lib.sh"

if [ "${1:-}" != guest ]; then
	# ------------------------------------------------------------- host
	IQN=iqn.2026-11.org.lich:vm-initiator
	vm_host_init
	truncate -s 256M "$T/file.img"
	cat >"$T/t.conf" <<EOF
portal 127.0.0.1:$PORT
state-dir $T/state
memory-limit 256M
<target $IQN>
    <backing-store ram:vmram>
        bs-type ram
        size 256M
        lun 1
        vendor_id VMTEST
        product_id "RAM DISK"
        product_rev 0042
        scsi_sn RAM-SERIAL-0001
    </backing-store>
    <backing-store $T/file.img>
        lun 2
    </backing-store>
</target>
EOF
	{
		echo "CONF_1_size=268435456 CONF_1_vendor=VMTEST CONF_1_product='RAM DISK'"
		echo "CONF_1_rev=0042 CONF_1_serial=RAM-SERIAL-0001"
		echo "CONF_2_size=268435456 CONF_2_vendor=LICH CONF_2_product=VIRTUAL-DISK CONF_2_rev=0001"
		echo "CONF_2_file=$T/file.img"
	} >"$T/expect.sh"
	lichd_start "$T/t.conf" || { fail "lichd starts"; exit 1; }
	check "iscsi-inq on the host reads LUN 1 and LUN 2 (for the guest to compare)" \
		eval 'host_identity "$IQN" 1 && host_identity "$IQN" 2'
	vm_guest_self
	lichd_final_checks
	exit 0
fi

# ------------------------------------------------------------------ guest
IQN=$VMT_IQN
T=$VMT_T
. "$T/expect.sh"
check "iscsid starts (iscsi_tcp and sd_mod loaded)" g_iscsi_prepare

# ---- discovery ----
disc=$(timeout 60 iscsiadm -m discovery -t st -p "10.0.2.2:$VMT_PORT" 2>&1)
echo "$disc" | diag
# QEMU's user-mode NAT delivers the guest's connection to the host's
# 127.0.0.1, so that is the address lichd reached and answers with.
check "SendTargets lists $IQN at the address lichd was reached on (127.0.0.1:$VMT_PORT,1)" \
	grep -qxF "127.0.0.1:$VMT_PORT,1 $IQN" <<<"$disc"

# ---- login ----
g_node "$IQN"
out=$(g_login "$IQN" 2>&1); rc=$?
echo "$out" | diag
check "login to $IQN through 10.0.2.2:$VMT_PORT" test "$rc" -eq 0
check "one session to $IQN" test "$(g_session_count "$IQN")" -eq 1
d1=$(g_disk "$IQN" 1) && d2=$(g_disk "$IQN" 2)
if ! check "LUN 1 and LUN 2 appear as SCSI disks ($d1, $d2)" test -n "$d1" -a -n "$d2"; then
	dmesg | tail -30 | diag
	exit 1
fi

# ---- identity: sysfs (what the kernel read) vs the config vs iscsi-inq ----
vpd80_serial() { tail -c +5 "/sys/block/$1/device/vpd_pg80"; }
# The NAA designator (type 3, LU association) in the raw VPD 0x83 page, in hex.
vpd83_naa() {
	local -a b
	local i=4 n len j s
	read -r -a b <<<"$(od -An -v -tx1 "/sys/block/$1/device/vpd_pg83" | tr '\n' ' ')"
	n=${#b[@]}
	while [ $((i + 3)) -lt "$n" ]; do
		len=$((16#${b[i + 3]}))
		if [ $((16#${b[i + 1]} & 0x3f)) -eq 3 ]; then
			s=
			for ((j = i + 4; j < i + 4 + len && j < n; j++)); do s+=${b[j]}; done
			echo "$s"
			return 0
		fi
		i=$((i + 4 + len))
	done
	return 1
}
for lun in 1 2; do
	d=$(eval echo "\$d$lun")
	sys=/sys/block/$d
	size=$(( $(cat "$sys/size") * 512 ))
	vendor=$(trim <"$sys/device/vendor") product=$(trim <"$sys/device/model") rev=$(trim <"$sys/device/rev")
	serial=$(vpd80_serial "$d") wwid=$(cat "$sys/device/wwid") naa=$(vpd83_naa "$d")
	echo "LUN $lun: /dev/$d size=$size vendor='$vendor' product='$product' rev='$rev' serial='$serial' wwid=$wwid" | diag
	e() { eval echo "\"\${$1_${lun}_$2:-}\""; }
	check "LUN $lun: size $size bytes as configured" test "$size" = "$(e CONF size)"
	check "LUN $lun: vendor '$vendor' = config = iscsi-inq" \
		test "$vendor" = "$(e CONF vendor)" -a "$vendor" = "$(e INQ vendor)"
	check "LUN $lun: product '$product' = config = iscsi-inq" \
		test "$product" = "$(e CONF product)" -a "$product" = "$(e INQ product)"
	check "LUN $lun: revision '$rev' = config = iscsi-inq" \
		test "$rev" = "$(e CONF rev)" -a "$rev" = "$(e INQ rev)"
	if [ -n "$(e CONF serial)" ]; then
		check "LUN $lun: serial (VPD 0x80) '$serial' = config = iscsi-inq" \
			test "$serial" = "$(e CONF serial)" -a "$serial" = "$(e INQ serial)"
	else
		check "LUN $lun: derived serial (VPD 0x80) '$serial' = iscsi-inq" \
			test -n "$serial" -a "$serial" = "$(e INQ serial)"
	fi
	check "LUN $lun: WWN $wwid is the NAA designator of VPD 0x83 (naa.$naa)" \
		test -n "$naa" -a "$wwid" = "naa.$naa"
	check "LUN $lun: WWN = the NAA iscsi-inq reports on the host" test "$naa" = "$(e INQ naa)"
done
wwid1=$(cat "/sys/block/$d1/device/wwid") wwid2=$(cat "/sys/block/$d2/device/wwid")
check "the two LUNs have different WWNs" test "$wwid1" != "$wwid2"

# ---- RAM LUN: data round trip (direct I/O) ----
head -c 32M /dev/urandom >/tmp/rand
dd if=/tmp/rand of="/dev/$d1" bs=1M oflag=direct status=none &&
	dd if="/dev/$d1" of=/tmp/back bs=1M count=32 iflag=direct status=none
check "RAM LUN: 32 MiB written and read back identical" cmp -s /tmp/rand /tmp/back

# ---- file LUN: ext4, files and checksums across logout and login ----
out=$(mkfs.ext4 -q -F -L lichvm "/dev/$d2" 2>&1); rc=$?
echo "$out" | diag
check "mkfs.ext4 on the file LUN" test "$rc" -eq 0
mkdir -p /mnt/lich
check "mount it" mount "/dev/$d2" /mnt/lich
mkdir -p /mnt/lich/dir/sub
for i in 1 2 3 4 5 6; do head -c $((i * 3))M /dev/urandom >"/mnt/lich/f$i"; done
for i in $(seq 200); do echo "small file $i $RANDOM" >"/mnt/lich/dir/sub/s$i"; done
(cd /mnt/lich && find . -type f ! -name lost+found | sort | xargs sha256sum) >/tmp/sums
check "write 63 MiB in 206 files and sync" sync
check "unmount" umount /mnt/lich
out=$(g_logout "$IQN" 2>&1); rc=$?
echo "$out" | diag
check "logout" test "$rc" -eq 0
check "the disks are gone after logout" g_gone "$IQN" 2
check "no session left after logout" test "$(g_session_count "$IQN")" -eq 0
out=$(g_login "$IQN" 2>&1); rc=$?
check "login again" test "$rc" -eq 0
d2=$(g_disk "$IQN" 2)
check "the file LUN is back ($d2) with the same WWN" \
	test -n "$d2" -a "$(cat "/sys/block/$d2/device/wwid" 2>/dev/null)" = "$wwid2"
check "mount it again" mount "/dev/$d2" /mnt/lich
out=$(cd /mnt/lich && sha256sum -c --quiet /tmp/sums 2>&1); rc=$?
echo "$out" | head -5 | diag
check "all $(wc -l </tmp/sums) files intact (sha256sum -c)" test "$rc" -eq 0
umount /mnt/lich
out=$(fsck.ext4 -f -n "/dev/$d2" 2>&1); rc=$?
[ "$rc" -ne 0 ] && echo "$out" | diag
check "fsck.ext4 -f -n finds the file system clean" test "$rc" -eq 0

# ---- discard: blkdiscard and sg_unmap reach the backing file ----
f=$CONF_2_file
mode=$(cat /sys/block/"$d2"/device/scsi_disk/*/provisioning_mode 2>/dev/null)
echo "provisioning_mode=$mode discard_max_bytes=$(cat "/sys/block/$d2/queue/discard_max_bytes")" | diag
check "the kernel enabled discard on the file LUN (provisioning_mode $mode)" \
	test "$(cat "/sys/block/$d2/queue/discard_max_bytes")" -gt 0
b0=$(blocks_of "$f")
out=$(blkdiscard "/dev/$d2" 2>&1); rc=$?
echo "$out" | diag
b1=$(blocks_of "$f")
echo "backing file: $b0 -> $b1 blocks of 512 after blkdiscard" | diag
check "blkdiscard of the whole LUN succeeds" test "$rc" -eq 0
check "blkdiscard shrinks the backing file's allocation ($b0 -> $b1 blocks)" \
	test "$b1" -lt $((b0 / 4)) -a "$b0" -gt 65536
# 32 MiB at 64 MiB, then UNMAP of exactly that range (LBA 131072, 65536 blocks).
dd if=/tmp/rand of="/dev/$d2" bs=1M seek=64 oflag=direct status=none
b2=$(blocks_of "$f")
check "writing 32 MiB allocates them in the backing file ($b1 -> $b2 blocks)" \
	test "$b2" -ge $((b1 + 65536))
out=$(sg_unmap --force --lba=131072 --num=65536 "/dev/$d2" 2>&1); rc=$?
echo "$out" | diag
b3=$(blocks_of "$f")
check "sg_unmap succeeds" test "$rc" -eq 0
check "sg_unmap frees the 32 MiB in the backing file ($b2 -> $b3 blocks)" \
	test "$b3" -le $((b2 - 65536))
echo 3 >/proc/sys/vm/drop_caches
check "unmapped blocks read back as zeros (LBPRZ)" \
	cmp -s -n $((32 << 20)) <(dd if="/dev/$d2" bs=1M skip=64 count=32 iflag=direct status=none) /dev/zero

check "no iSCSI/SCSI error, timeout, abort or reset in the guest kernel log" g_kernel_clean
# ---- logout ----
out=$(iscsiadm -m node -T "$IQN" --logout 2>&1); rc=$?
echo "$out" | diag
check "final logout" test "$rc" -eq 0 -a "$(g_session_count "$IQN")" -eq 0
exit 0
