# shellcheck shell=bash disable=SC2086
# scripts/lib/bench.sh — start lichd and tgtd side by side and drive them with
# libiscsi's iscsi-perf; sourced by scripts/bench and scripts/bench-sweep.
#
# The caller sets (or leaves at their defaults):
#   bench_kind    ram | tmpfs | file   (what serves the LUN, see bench_setup)
#   bench_lcores  lich's `cores` list, e.g. "0" or "0-1"
#   bench_tcpu    CPU list tgtd is pinned to, "" for unpinned
#   bench_pcpu    CPU list iscsi-perf is pinned to, "" for unpinned
# then calls bench_setup, bench_start, and bench_perf / bench_perf_multi.
# $LICHD names the lichd binary (default build/lichd; when it is set, the
# callers do not run make, so a binary from another build dir is used as is).
#
# Kinds:
#   ram:   lich's RAM backend vs tgt's rdwr backend on a file in /dev/shm
#          (tgt has no RAM backend; a tmpfs file is the closest it has)
#   tmpfs: both on a file in /dev/shm (lich's io_uring backend; tmpfs refuses
#          O_DIRECT, so lich falls back to buffered I/O, like tgt's rdwr)
#   file:  both on a file in /var/tmp (the root file system, ext4 on a virtio
#          disk here) opened with O_DIRECT: lich's io_uring backend does that
#          by default, tgt's rdwr with --bsoflags direct, so that neither
#          serves reads from the page cache. The files are written in full
#          first (reads of unwritten extents would not reach the disk).
#
# Every lichd gets LICH_CONTROL_SOCKET in its temp dir, so that it does not
# collide with another lichd's /run/lich/lichd.sock.

LICHD=${LICHD:-build/lichd}
bench_kind=${bench_kind:-ram}
bench_lcores=${bench_lcores:-0}
bench_tcpu=${bench_tcpu-0}
bench_pcpu=${bench_pcpu-1}
bench_pids=()
bench_tmp=
bench_files=()

bench_cleanup()
{
	local p
	for p in "${bench_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	[ -n "$bench_tmp" ] && rm -rf "$bench_tmp"
	[ ${#bench_files[@]} -gt 0 ] && rm -f "${bench_files[@]}"
	return 0
}

bench_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

bench_wait_port()
{
	local _
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# pinned CPUS CMD... — CMD under taskset when CPUS is set
bench_pinned()
{
	local cpus=$1
	shift
	if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

# bench_setup: temp dir, images, config. Sets bench_limg/bench_timg.
bench_setup()
{
	case $bench_kind in ram|tmpfs|file) ;; *) echo "bench: unknown kind '$bench_kind' (ram, tmpfs, file)" >&2; return 2;; esac
	[ -x "$LICHD" ] || { echo "bench: no lichd at $LICHD (build it, or set LICHD)" >&2; return 1; }
	bench_tmp=$(mktemp -d /dev/shm/lich-bench.XXXXXX)
	trap bench_cleanup EXIT
	bench_size=1G
	if [ "$bench_kind" = file ]; then
		# 256 MiB each: written in full, so every read goes to the disk
		bench_size=256M
		bench_limg=$(mktemp /var/tmp/lich-bench-lich.XXXXXX)
		bench_timg=$(mktemp /var/tmp/lich-bench-tgt.XXXXXX)
		bench_files=("$bench_limg" "$bench_timg")
		dd if=/dev/urandom of="$bench_limg" bs=1M count=256 status=none conv=fsync
		cp "$bench_limg" "$bench_timg"
		sync
	else
		bench_limg=$bench_tmp/lich.img bench_timg=$bench_tmp/tgt.img
		truncate -s $bench_size "$bench_timg" "$bench_limg"
	fi
}

# bench_start: both daemons, LUN 1 on each, first 64 MiB filled with data.
# Sets bench_lurl, bench_turl.
bench_start()
{
	local lport tport tctl lun
	local liqn=iqn.2026-11.org.lich:bench tiqn=iqn.2026-11.org.lich:bench-tgt
	lport=$(bench_port) tport=$(bench_port) tctl=$((RANDOM % 1000 + 2000))
	# info only for files: the O_DIRECT fallback is logged at info
	local loglevel=warn
	[ "$bench_kind" = file ] && loglevel=info
	if [ "$bench_kind" = ram ]; then
		lun="<backing-store ram:bench>
        bs-type ram
        size $bench_size
    </backing-store>"
	else
		lun="backing-store $bench_limg"
	fi
	cat >"$bench_tmp/lich.conf" <<CONF
portal 127.0.0.1:$lport
cores $bench_lcores
poll-mode adaptive
log-level $loglevel
state-dir $bench_tmp
<target $liqn>
    $lun
</target>
CONF
	# disowned, so that killing them at the end prints no job notices
	LICH_CONTROL_SOCKET=$bench_tmp/lichd.sock "$LICHD" -c "$bench_tmp/lich.conf" \
		2>"$bench_tmp/lichd.log" &
	bench_pids+=($!)
	disown
	# taskset itself in the background (not a function: $! would be a
	# subshell, and killing it would leave tgtd running)
	local pin=()
	[ -n "$bench_tcpu" ] && pin=(taskset -c "$bench_tcpu")
	"${pin[@]}" tgtd -f -C "$tctl" --iscsi portal=127.0.0.1:"$tport" \
		>"$bench_tmp/tgtd.log" 2>&1 &
	bench_pids+=($!)
	disown
	bench_wait_port "$lport" || { echo "lichd did not start"; cat "$bench_tmp/lichd.log"; return 1; }
	bench_wait_port "$tport" || { echo "tgtd did not start"; cat "$bench_tmp/tgtd.log"; return 1; }
	local oflags=()
	[ "$bench_kind" = file ] && oflags=(--bsoflags direct)
	tgtadm -C "$tctl" --lld iscsi --op new --mode target --tid 1 -T "$tiqn"
	tgtadm -C "$tctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 \
		-b "$bench_timg" "${oflags[@]}"
	tgtadm -C "$tctl" --lld iscsi --op bind --mode target --tid 1 -I ALL
	bench_lurl="iscsi://127.0.0.1:$lport/$liqn/1"
	bench_turl="iscsi://127.0.0.1:$tport/$tiqn/1"
	if [ "$bench_kind" = file ]; then
		if grep -q "O_DIRECT" "$bench_tmp/lichd.log"; then
			echo "bench: lichd did not open the file with O_DIRECT:" >&2
			grep "O_DIRECT" "$bench_tmp/lichd.log" >&2
		fi
		return 0   # already written in full
	fi
	# fill both so reads hit data, not holes
	local url
	for url in "$bench_lurl" "$bench_turl"; do
		qemu-img convert -n -O raw <(head -c 64M /dev/urandom) "$url" 2>/dev/null || true
	done
}

# bench_perf URL QD BLOCKS SECS [-r] → average IOPS of one iscsi-perf session
# (empty on error), pinned to $bench_pcpu.
bench_perf()
{
	local out
	out=$(bench_pinned "$bench_pcpu" timeout $(($4 + 20)) iscsi-perf -m "$2" -b "$3" -t "$4" \
		${5:-} "$1" 2>&1 | tr '\r' '\n' || true)
	echo "$out" | sed -n 's/.*iops average \([0-9]*\).*/\1/p' | tail -1
}

# bench_perf_multi N URL QD BLOCKS SECS [-r] → summed average IOPS of N
# concurrent iscsi-perf sessions (each its own initiator name, so they are N
# sessions, not a reinstatement of one), unpinned; empty if any failed.
bench_perf_multi()
{
	local n=$1 i sum=0 v
	shift
	for i in $(seq "$n"); do
		timeout $(($4 + 20)) iscsi-perf -i "iqn.2026-11.org.lich:bench-client$i" \
			-m "$2" -b "$3" -t "$4" ${5:-} "$1" >"$bench_tmp/perf$i.out" 2>&1 &
	done
	wait
	for i in $(seq "$n"); do
		v=$(tr '\r' '\n' <"$bench_tmp/perf$i.out" | sed -n 's/.*iops average \([0-9]*\).*/\1/p' | tail -1)
		[ -n "$v" ] || return 0
		sum=$((sum + v))
	done
	echo "$sum"
}
