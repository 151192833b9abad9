#!/usr/bin/env bash
# t-chap.sh — CHAP with the Linux initiator (open-iscsi) in a QEMU guest, one
# boot: SendTargets discovery with discovery CHAP (mutual); login with CHAP and
# mutual CHAP, the disk appears and a 16 MiB round trip is identical; a wrong
# initiator secret is refused by lichd (which keeps serving); a wrong target
# secret (password_in) makes the initiator refuse the login; logout.
# Host side: lichd serves a RAM LUN on 127.0.0.1:PORT behind incominguser /
# outgoinguser, and incomingdiscoveryuser / outgoingdiscoveryuser.
set -u
. "${VMT_DIR:-$(dirname "$0")}/lib.sh"

# Secrets of 12 characters or more, a different one for each direction.
IN_USER=vm-guest IN_SECRET=Guest-Secret-4711
OUT_USER=lich-target OUT_SECRET=Target-Secret-0815
DISC_IN_USER=vm-disc DISC_IN_SECRET=Disc-Secret-2342
DISC_OUT_USER=lich-disc DISC_OUT_SECRET=Disc-Target-Secret-99

if [ "${1:-}" != guest ]; then
	# ------------------------------------------------------------- host
	IQN=iqn.2026-11.org.lich:vm-chap
	vm_host_init
	cat >"$T/t.conf" <<EOC
portal 127.0.0.1:$PORT
state-dir $T/state
memory-limit 128M
incomingdiscoveryuser $DISC_IN_USER $DISC_IN_SECRET
outgoingdiscoveryuser $DISC_OUT_USER $DISC_OUT_SECRET
<target $IQN>
    <backing-store ram:vmchap>
        bs-type ram
        size 64M
        lun 1
    </backing-store>
    incominguser $IN_USER $IN_SECRET
    outgoinguser $OUT_USER $OUT_SECRET
</target>
EOC
	lichd_start "$T/t.conf" || { fail "lichd starts"; exit 1; }
	vm_guest_self
	check "lichd logged the guest's CHAP authentication as $IN_USER" \
		grep -q "login: initiator $VM_INITIATOR at 127.0.0.1:[0-9]* authenticated by CHAP as $IN_USER" "$T/lichd.log"
	check "lichd never logged a secret" \
		bash -c '! grep -qF -e "$1" -e "$2" -e "$3" -e "$4" "$5"' _ \
		"$IN_SECRET" "$OUT_SECRET" "$DISC_IN_SECRET" "$DISC_OUT_SECRET" "$T/lichd.log"
	lichd_final_checks
	exit 0
fi

# ------------------------------------------------------------------ guest
IQN=$VMT_IQN
P=10.0.2.2:$VMT_PORT
check "iscsid starts (iscsi_tcp and sd_mod loaded)" g_iscsi_prepare

# ---- discovery with discovery CHAP (mutual) ----
ddb() { iscsiadm -m discoverydb -t st -p "$P" "$@"; }
dset() { ddb -o update -n "discovery.sendtargets.auth.$1" -v "$2"; }
check "a discovery record for $P with CHAP (and mutual CHAP) settings" eval '
	ddb -o new >/dev/null &&
	dset authmethod CHAP && dset username "$DISC_IN_USER" && dset password "$DISC_IN_SECRET" &&
	dset username_in "$DISC_OUT_USER" && dset password_in "$DISC_OUT_SECRET"'
disc=$(timeout 60 iscsiadm -m discoverydb -t st -p "$P" --discover 2>&1); rc=$?
echo "$disc" | diag
# QEMU's user-mode NAT delivers the guest's connection to the host's
# 127.0.0.1, so that is the address lichd reached and answers with.
check "SendTargets with discovery CHAP lists $IQN (127.0.0.1:$VMT_PORT,1)" \
	test "$rc" -eq 0 -a -n "$(grep -xF "127.0.0.1:$VMT_PORT,1 $IQN" <<<"$disc")"

# ---- node record for 10.0.2.2:PORT with CHAP + mutual CHAP ----
nset() { iscsiadm -m node -T "$IQN" -p "$P" -o update -n "node.session.auth.$1" -v "$2"; }
check "a node record for $P with node.session.auth.authmethod=CHAP and mutual CHAP" eval '
	g_node "$IQN" &&
	nset authmethod CHAP && nset username "$IN_USER" && nset password "$IN_SECRET" &&
	nset username_in "$OUT_USER" && nset password_in "$OUT_SECRET"'

# login_refused WHAT: the login fails, leaves no session.
login_refused() {
	local out rc
	out=$(g_login "$IQN" 2>&1); rc=$?
	echo "$out" | diag
	check "$1: login fails (iscsiadm exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
	check "$1: no session" test "$(g_session_count "$IQN")" -eq 0
}
# login_ok WHAT: the login succeeds, the disk appears.
login_ok() {
	local out rc
	out=$(g_login "$IQN" 2>&1); rc=$?
	echo "$out" | diag
	check "$1: login succeeds" test "$rc" -eq 0
	check "$1: one session" test "$(g_session_count "$IQN")" -eq 1
	d=$(g_disk "$IQN" 1)
	check "$1: LUN 1 appears as a SCSI disk ($d)" test -n "$d"
}
logout_ok() {
	local out rc
	out=$(g_logout "$IQN" 2>&1); rc=$?
	echo "$out" | diag
	check "$1: logout" test "$rc" -eq 0 -a "$(g_session_count "$IQN")" -eq 0
	check "$1: the disk is gone" g_gone "$IQN" 1
}

# ---- CHAP + mutual CHAP: login, data round trip ----
d=
login_ok "CHAP + mutual CHAP"
if [ -z "$d" ]; then dmesg | tail -30 | diag; exit 1; fi
head -c 16M /dev/urandom >/tmp/rand
dd if=/tmp/rand of="/dev/$d" bs=1M oflag=direct status=none &&
	dd if="/dev/$d" of=/tmp/back bs=1M count=16 iflag=direct status=none
check "16 MiB written and read back identical" cmp -s /tmp/rand /tmp/back
check "no iSCSI/SCSI error, timeout, abort or reset in the guest kernel log" g_kernel_clean
logout_ok "CHAP + mutual CHAP"

# kernel_errors_since LINE: the error lines of the guest's kernel log (as
# g_kernel_clean sees them) after its first LINE lines.
kernel_errors_since() {
	dmesg | tail -n +$(($1 + 1)) | grep -iE 'conn(ection)? error|detected conn|timing out|timed out|abort|reset|I/O error|blk_update_request|critical|Sense Key' |
		grep -v 'Power-on or device reset occurred'
}
k0=$(dmesg | wc -l)
# ---- a wrong initiator secret: lichd refuses ----
nset password Wrong-Secret-0000
login_refused "wrong CHAP password"
nset password "$IN_SECRET"

# ---- a wrong target secret: the initiator refuses lichd's response ----
nset password_in Wrong-Target-0000
login_refused "wrong mutual (target) secret"
nset password_in "$OUT_SECRET"

# open-iscsi sends the login PDUs through the kernel connection: lichd
# closing it after the login reject (as RFC 7143 says) is logged as "detected
# conn error (1020)" (ISCSI_ERR_TCP_CONN_CLOSE), expected here, nothing else.
bad=$(kernel_errors_since "$k0" | grep -vE 'connection[0-9]+:0: detected conn error \(1020\)$')
[ -n "$bad" ] && echo "$bad" | diag
check "the refused logins leave nothing in the kernel log but the closed login connection" test -z "$bad"
k1=$(dmesg | wc -l)

# ---- lichd keeps serving: the right secrets still work ----
login_ok "after the refused logins, CHAP + mutual CHAP again"
[ -n "$d" ] && check "the disk reads back the 16 MiB written before" \
	cmp -s /tmp/rand <(dd if="/dev/$d" bs=1M count=16 iflag=direct status=none)
bad=$(kernel_errors_since "$k1")
[ -n "$bad" ] && echo "$bad" | diag
check "no iSCSI/SCSI error, timeout, abort or reset in the kernel log since" test -z "$bad"
logout_ok "final"
exit 0
