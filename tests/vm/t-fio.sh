#!/usr/bin/env bash
# t-fio.sh — data integrity under load with the Linux initiator, one boot:
# fio, libaio, direct I/O, 4 KiB random writes at queue depth 32 with
# verify=crc32c, for VM_FIO_RUNTIME seconds (default 60), one job on lichd's
# RAM LUN and one on its file LUN at the same time. Passes when fio exits 0,
# every job reports err= 0, and the blocks written were read back and verified
# while the job ran (verify_backlog: with time_based, a verify phase at the end
# would be skipped when the runtime ends before a full pass).
# Host side: lichd serves both LUNs on 127.0.0.1:PORT.
set -u
. "${VMT_DIR:-$(dirname "$0")}/lib.sh"

if [ "${1:-}" != guest ]; then
	# ------------------------------------------------------------- host
	IQN=iqn.2026-11.org.lich:vm-fio
	vm_host_init
	truncate -s 256M "$T/file.img"
	cat >"$T/t.conf" <<EOF
portal 127.0.0.1:$PORT
state-dir $T/state
memory-limit 256M
<target $IQN>
    <backing-store ram:vmfio>
        bs-type ram
        size 256M
        lun 1
    </backing-store>
    <backing-store $T/file.img>
        lun 2
    </backing-store>
</target>
EOF
	lichd_start "$T/t.conf" || { fail "lichd starts"; exit 1; }
	vm_guest_self
	lichd_final_checks
	exit 0
fi

# ------------------------------------------------------------------ guest
IQN=$VMT_IQN
rt=${VM_FIO_RUNTIME:-60}
check "iscsid starts" g_iscsi_prepare
g_node "$IQN"
out=$(g_login "$IQN" 2>&1); rc=$?
echo "$out" | diag
check "login to $IQN" test "$rc" -eq 0
d1=$(g_disk "$IQN" 1) && d2=$(g_disk "$IQN" 2)
check "LUN 1 (RAM) and LUN 2 (file) appear ($d1, $d2)" test -n "$d1" -a -n "$d2" || exit 1

fio --output-format=normal,json --output=/tmp/fio.out \
	--ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32 \
	--verify=crc32c --verify_backlog=1024 --time_based --runtime="$rt" \
	--name=ram --filename="/dev/$d1" \
	--name=file --filename="/dev/$d2" 2>/tmp/fio.err
rc=$?
grep -E 'err=|IOPS=|verify' /tmp/fio.out | diag
diag </tmp/fio.err
check "fio (randwrite 4k, qd32, verify=crc32c, ${rt}s, 2 jobs) exits 0" test "$rc" -eq 0
check "fio reports err= 0 for both jobs" test "$(grep -c ': err= 0:' /tmp/fio.out)" -eq 2
check "no verify error in fio's output" \
	bash -c '! grep -qiE "verify.*(bad|fail|mismatch)|crc32c.*(bad|wanted)" /tmp/fio.out /tmp/fio.err'
# The JSON part (first in the file): per job, the error and what was verified.
python3 - /tmp/fio.out >/tmp/fio.summary <<'PY'
import json, sys
text = open(sys.argv[1]).read()
start = text.index("{\n")
obj, _ = json.JSONDecoder().raw_decode(text[start:])
for j in obj["jobs"]:
    w, r = j["write"], j["read"]
    print(j["jobname"], j["error"], w["total_ios"], r["total_ios"], int(w["iops"]),
          int(w["clat_ns"]["percentile"]["50.000000"] / 1000),
          int(w["clat_ns"]["percentile"]["99.000000"] / 1000))
PY
check "fio's JSON output parses" test "$(wc -l </tmp/fio.summary)" -eq 2
while read -r job err wios rios iops p50 p99; do
	echo "$job: err=$err writes=$wios verified=$rios write IOPS=$iops clat p50=${p50}us p99=${p99}us" | diag
	check "fio job $job: $iops write IOPS, error $err, $rios of $wios written blocks read back and verified" \
		test "$err" -eq 0 -a "$wios" -gt 1000 -a "$rios" -ge $((wios / 2))
done </tmp/fio.summary

check "no iSCSI/SCSI error, timeout, abort or reset in the guest kernel log" g_kernel_clean
out=$(g_logout "$IQN" 2>&1); rc=$?
echo "$out" | diag
check "logout after fio" test "$rc" -eq 0
exit 0
