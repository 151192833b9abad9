#!/usr/bin/env bash
# 30-auth.sh — CHAP authentication and access control end to end: lichd with a
# CHAP target (incoming and outgoing accounts), an address-restricted target,
# an initiator-name-restricted target and an open one; libiscsi's tools with
# and without credentials (one-way and mutual CHAP), discovery filtering, and
# a raw-socket client (30-auth-client.py) for protocol edge cases (reflected
# challenge, missing CHAP_R, over-long CHAP_C...). lichd must keep serving and
# never log a secret. Prints PASS:/FAIL: per case; always kills lichd on exit.
set -u
LICHD=${LICHD:-build/lichd}
case "$LICHD" in /*) ;; *) LICHD="$(pwd)/$LICHD" ;; esac
here=$(cd "$(dirname "$0")" && pwd)
export LICHD
. "$here/../lib/common.sh"
tmp=$TEST_TMP

PORT=$(free_port)
CHAP=iqn.2024-01.org.lich:chap
ADDR=iqn.2024-01.org.lich:addr-acl
NAME=iqn.2024-01.org.lich:name-acl
OPEN=iqn.2024-01.org.lich:open
ALLOWED=iqn.2024-01.org.lich:allowed
IN_USER=alice
IN_SECRET=Alice-Secret-4711
OUT_USER=lich-target
OUT_SECRET=Target-Secret-0815
URL=iscsi://127.0.0.1:$PORT
CURL="iscsi://$IN_USER%$IN_SECRET@127.0.0.1:$PORT"

lun() { # name
	printf '    <backing-store ram:%s>\n        bs-type ram\n        size 4M\n        lun 1\n    </backing-store>\n' "$1"
}
{
	echo "portal 127.0.0.1:$PORT"
	echo "cores 0"
	echo "state-dir $tmp/state"
	echo "memory-limit 128M"
	echo "<target $CHAP>"; lun chap
	echo "    incominguser $IN_USER $IN_SECRET"
	echo "    outgoinguser $OUT_USER $OUT_SECRET"
	echo "</target>"
	echo "<target $ADDR>"; lun addr
	echo "    initiator-address 10.9.9.9"
	echo "</target>"
	echo "<target $NAME>"; lun name
	echo "    initiator-name $ALLOWED"
	echo "</target>"
	echo "<target $OPEN>"; lun open
	echo "</target>"
} >"$tmp/t.conf"

start_lichd "$tmp/t.conf" "$PORT" || { fail "lichd listens on 127.0.0.1:$PORT"; exit 1; }
pass "lichd listens on 127.0.0.1:$PORT"

alive() { kill -0 "$LICHD_PID" 2>/dev/null; }

# ---- CHAP with libiscsi ----
out=$(timeout 20 iscsi-inq "$CURL/$CHAP/1" 2>&1)
check "CHAP login with the right secret (iscsi-inq)" grep -q "^Vendor:LICH" <<<"$out"
out=$(timeout 20 iscsi-inq "iscsi://$IN_USER%wrong-secret-123@127.0.0.1:$PORT/$CHAP/1" 2>&1)
check "CHAP login with a wrong secret fails" \
	bash -c '! grep -q "^Vendor:" <<<"$1" && grep -qi "auth" <<<"$1"' _ "$out"
out=$(timeout 20 iscsi-inq "$URL/$CHAP/1" 2>&1)
check "login without credentials to the CHAP target fails" \
	bash -c '! grep -q "^Vendor:" <<<"$1" && grep -qi "auth" <<<"$1"' _ "$out"
out=$(timeout 20 iscsi-inq "iscsi://mallory%$IN_SECRET@127.0.0.1:$PORT/$CHAP/1" 2>&1)
check "CHAP login with an unknown user fails" bash -c '! grep -q "^Vendor:" <<<"$1"' _ "$out"
out=$(LIBISCSI_CHAP_TARGET_USERNAME=$OUT_USER LIBISCSI_CHAP_TARGET_PASSWORD=$OUT_SECRET \
	timeout 20 iscsi-inq "$CURL/$CHAP/1" 2>&1)
check "mutual CHAP: libiscsi verifies the target's response" grep -q "^Vendor:LICH" <<<"$out"
out=$(LIBISCSI_CHAP_TARGET_USERNAME=$OUT_USER LIBISCSI_CHAP_TARGET_PASSWORD=not-the-secret-1 \
	timeout 20 iscsi-inq "$CURL/$CHAP/1" 2>&1)
check "mutual CHAP: a wrong target secret is detected by the initiator" \
	bash -c '! grep -q "^Vendor:" <<<"$1"' _ "$out"
t0=$(date +%s%N)
timeout 20 iscsi-inq "iscsi://$IN_USER%wrong-secret-123@127.0.0.1:$PORT/$CHAP/1" >/dev/null 2>&1
dt=$((($(date +%s%N) - t0) / 1000000))
check "a failed CHAP login is answered late (${dt} ms)" test "$dt" -ge 900
out=$(timeout 20 iscsi-inq "$CURL/$OPEN/1" 2>&1)
check "credentials offered to an open target: AuthMethod=None, login works" \
	grep -q "^Vendor:LICH" <<<"$out"

# ---- discovery and ACLs ----
ls_out=$(timeout 20 iscsi-ls "$URL" 2>&1)
check "discovery lists the CHAP target and the open one" \
	bash -c 'grep -q "Target:$2 " <<<"$1" && grep -q "Target:$3 " <<<"$1"' _ "$ls_out" "$CHAP" "$OPEN"
check "discovery hides the address-restricted target" bash -c '! grep -q "$2" <<<"$1"' _ "$ls_out" "$ADDR"
check "discovery hides the name-restricted target from other names" \
	bash -c '! grep -q "$2" <<<"$1"' _ "$ls_out" "$NAME"
ls_out=$(timeout 20 iscsi-ls -i "$ALLOWED" "$URL" 2>&1)
check "discovery shows the name-restricted target to the allowed name" \
	grep -q "Target:$NAME " <<<"$ls_out"
out=$(timeout 20 iscsi-inq "$URL/$ADDR/1" 2>&1)
check "login to the address-restricted target is refused (authorization failure)" \
	bash -c '! grep -q "^Vendor:" <<<"$1" && grep -qiE "authoriz|0x0202|514|forbidden" <<<"$1"' _ "$out"
out=$(timeout 20 iscsi-inq "$URL/$NAME/1" 2>&1)
check "login to the name-restricted target with another name is refused" \
	bash -c '! grep -q "^Vendor:" <<<"$1"' _ "$out"
out=$(timeout 20 iscsi-inq -i "$ALLOWED" "$URL/$NAME/1" 2>&1)
check "login to the name-restricted target with the allowed name works" \
	grep -q "^Vendor:LICH" <<<"$out"
ls_out=$(timeout 30 iscsi-ls -s "$CURL" 2>&1)
check "iscsi-ls -s with credentials shows the CHAP target's LUN" \
	bash -c 'grep -A3 "Target:$2 " <<<"$1" | grep -q "Lun:1"' _ "$ls_out" "$CHAP"

# ---- protocol edge cases ----
python3 "$here/30-auth-client.py" 127.0.0.1 "$PORT" "$CHAP" "$IN_USER" "$IN_SECRET" \
	"$OUT_USER" "$OUT_SECRET"
check "lichd still running after the edge cases" alive
out=$(timeout 20 iscsi-inq "$CURL/$CHAP/1" 2>&1)
check "CHAP login still works after the edge cases" grep -q "^Vendor:LICH" <<<"$out"

# ---- logs ----
check "the log records CHAP successes" grep -q "authenticated by CHAP as $IN_USER" "$tmp/lichd.log"
check "the log records authentication failures" grep -q "authentication failed" "$tmp/lichd.log"
check "no secret in lichd's log" \
	bash -c '! grep -qF -e "$2" -e "$3" -e "wrong-secret" -e "not-the-secret" "$1"' _ \
	"$tmp/lichd.log" "$IN_SECRET" "$OUT_SECRET"

# ---- discovery CHAP, switched on by a reload ----
D_USER=disco
D_SECRET=Discovery-Secret-2024
echo "incomingdiscoveryuser $D_USER $D_SECRET" >>"$tmp/t.conf"
kill -HUP "$LICHD_PID"
for _ in $(seq 50); do grep -q "reload:" "$tmp/lichd.log" && break; sleep 0.1; done
check "reload with incomingdiscoveryuser" grep -q "reload:" "$tmp/lichd.log"
ls_out=$(timeout 20 iscsi-ls "$URL" 2>&1)
check "discovery without credentials now fails" bash -c '! grep -q "Target:" <<<"$1"' _ "$ls_out"
ls_out=$(timeout 20 iscsi-ls "iscsi://$IN_USER%$IN_SECRET@127.0.0.1:$PORT" 2>&1)
check "a target account is not a discovery account" bash -c '! grep -q "Target:" <<<"$1"' _ "$ls_out"
ls_out=$(timeout 20 iscsi-ls "iscsi://$D_USER%$D_SECRET@127.0.0.1:$PORT" 2>&1)
check "discovery with the discovery account lists the targets" \
	bash -c 'grep -q "Target:$2 " <<<"$1" && grep -q "Target:$3 " <<<"$1"' _ "$ls_out" "$CHAP" "$OPEN"
out=$(timeout 20 iscsi-inq "$URL/$OPEN/1" 2>&1)
check "normal sessions to the open target still need no CHAP" grep -q "^Vendor:LICH" <<<"$out"
check "no discovery secret in lichd's log" bash -c '! grep -qF "$2" "$1"' _ "$tmp/lichd.log" "$D_SECRET"

# ---- shutdown ----
check "lichd exits on SIGTERM" stop_lichd
