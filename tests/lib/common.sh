# tests/lib/common.sh — helpers for integration tests (sourced).
# Each test prints "PASS: what" / "FAIL: what"; tests/run counts those lines.
# Needs: LICHD (path to the daemon, set by tests/run).

: "${LICHD:?LICHD must point to the lichd binary}"
TEST_TMP=$(mktemp -d /var/tmp/lich-test.XXXXXX)
# Each test's lichd (and lichctl) gets its own control socket, so tests that
# run side by side do not meet on the default /run/lich/lichd.sock.
export LICH_CONTROL_SOCKET="$TEST_TMP/lichd.sock"
LICHD_PID=""

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; }
check() { # check "what" command...
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

cleanup() {
	[ -n "$LICHD_PID" ] && kill -9 "$LICHD_PID" 2>/dev/null
	[ -n "${EXTRA_PIDS:-}" ] && kill -9 $EXTRA_PIDS 2>/dev/null
	rm -rf "$TEST_TMP"
}
trap cleanup EXIT

free_port() {
	python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# start_lichd CONF — starts lichd in the background and waits for its portal.
start_lichd() {
	local conf=$1 port=$2 i
	"$LICHD" -c "$conf" >"$TEST_TMP/lichd.log" 2>&1 &
	LICHD_PID=$!
	for i in $(seq 1 100); do
		if ! kill -0 "$LICHD_PID" 2>/dev/null; then
			echo "lichd exited early:"; cat "$TEST_TMP/lichd.log"; LICHD_PID=""; return 1
		fi
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "lichd did not listen on $port"; cat "$TEST_TMP/lichd.log"; return 1
}

# stop_lichd [SECONDS] — SIGTERM, expect exit within SECONDS (default 10);
# returns lichd's exit code, 124 (after SIGKILL) if it did not exit in time.
stop_lichd() {
	local i rc secs=${1:-10}
	[ -n "$LICHD_PID" ] || return 1
	kill -TERM "$LICHD_PID"
	for i in $(seq 1 $((secs * 10))); do
		kill -0 "$LICHD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$LICHD_PID" 2>/dev/null; then
		kill -9 "$LICHD_PID"; wait "$LICHD_PID" 2>/dev/null; LICHD_PID=""; return 124
	fi
	wait "$LICHD_PID"; rc=$?
	LICHD_PID=""
	return $rc
}

lichd_rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$LICHD_PID/status"; }
