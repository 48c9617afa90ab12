#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# Run rdma-core's unmodified ibv_ud_pingpong (server + client, two emulated
# hosts) on the emulated fabric.
#   ud_pingpong_test.sh LIBDIR SIZE ITERS MTU expect-ok|expect-fail [extra args]
set -u
libdir=$1 size=$2 iters=$3 mtu=$4 expect=$5
shift 5
command -v ibv_ud_pingpong >/dev/null || { echo "ibv_ud_pingpong missing (ibverbs-utils)"; exit 77; }

. "$(dirname "$0")/fabric_env.sh"
ibemu_fabric pp
port=$((20000 + $$ % 20000))

export LD_LIBRARY_PATH="$libdir" IBEMU_FABRIC="$fabric" IBEMU_MTU="$mtu"
ncpu=$(nproc)
cpu_srv=0 cpu_cli=$((ncpu > 1 ? 1 : 0))

taskset -c $cpu_srv timeout 60 ibv_ud_pingpong -p "$port" -s "$size" -n "$iters" "$@" \
	>"$out/srv" 2>&1 &
srv_pid=$!
# the server listens on TCP once its QP is ready
for _ in $(seq 100); do
	ss -ltn 2>/dev/null | grep -q ":$port " && break
	kill -0 $srv_pid 2>/dev/null || break
	sleep 0.05
done
taskset -c $cpu_cli timeout 60 ibv_ud_pingpong -p "$port" -s "$size" -n "$iters" "$@" \
	127.0.0.1 >"$out/cli" 2>&1
cli_rc=$?
wait $srv_pid
srv_rc=$?
srv_pid=
echo "--- server"; cat "$out/srv"; echo "--- client"; cat "$out/cli"

case $expect in
expect-ok)
	[ $cli_rc -eq 0 ] && [ $srv_rc -eq 0 ] &&
		grep -q "$iters iters" "$out/cli" && exit 0
	echo "FAIL: server rc=$srv_rc client rc=$cli_rc"; exit 1 ;;
expect-fail)
	# must fail cleanly: an error message and exit status 1, no crash
	[ $cli_rc -eq 1 ] && grep -q "larger than port MTU" "$out/cli" && exit 0
	echo "FAIL: expected a clean MTU refusal, client rc=$cli_rc"; exit 1 ;;
esac
exit 2
