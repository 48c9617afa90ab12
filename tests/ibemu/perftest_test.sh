#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# Run Debian's unmodified perftest programs (ib_send_bw, ib_send_lat), UD
# mode, server and client on two emulated hosts. perftest links the
# provider libraries libmlx5 and libefa directly; they need libibverbs'
# private symbols to load (providers.c).
#   perftest_test.sh LIBDIR PROGRAM SIZE ITERS [extra args]
set -u
libdir=$1 prog=$2 size=$3 iters=$4
shift 4
command -v "$prog" >/dev/null || { echo "$prog missing (perftest)"; exit 77; }

. "$(dirname "$0")/fabric_env.sh"
ibemu_fabric perf
port=$((20000 + $$ % 20000))

# What makes this more than ibv_ud_pingpong: the program links providers.
providers=$(ldd "$(command -v "$prog")" | grep -oE 'lib(mlx5|mlx4|efa|mana)\.so\.[0-9]+' | sort -u | tr '\n' ' ')
echo "$prog links: ${providers:-no provider library}"

export LD_LIBRARY_PATH="$libdir" IBEMU_FABRIC="$fabric"
ncpu=$(nproc)
cpu_srv=0 cpu_cli=$((ncpu > 1 ? 1 : 0))
args="-c UD -d ibemu0 -i 1 -s $size -n $iters -p $port"

# shellcheck disable=SC2086
taskset -c $cpu_srv timeout 60 "$prog" $args "$@" >"$out/srv" 2>&1 &
srv_pid=$!
# the server listens on TCP once its QP is ready (bounded: 10 s)
i=0
until ss -ltn 2>/dev/null | grep -q ":$port "; do
	kill -0 $srv_pid 2>/dev/null || break
	i=$((i + 1))
	[ $i -le 200 ] || break
	sleep 0.05
done
# shellcheck disable=SC2086
taskset -c $cpu_cli timeout 60 "$prog" $args "$@" 127.0.0.1 >"$out/cli" 2>&1
cli_rc=$?
wait $srv_pid
srv_rc=$?
srv_pid=
echo "--- server"; cat "$out/srv"; echo "--- client"; cat "$out/cli"

# The result line: "#bytes #iterations ..." then SIZE ITERS figures.
result() {
	grep -qE "^ *$size +$iters +[0-9]" "$1"
}
if grep -q "symbol lookup error" "$out/srv" "$out/cli"; then
	echo "FAIL: $prog does not load over ibemu"; exit 1
fi
if grep -q "^ibemu:" "$out/srv" "$out/cli"; then
	echo "FAIL: $prog reached something ibemu refuses"; exit 1
fi
[ $cli_rc -eq 0 ] && [ $srv_rc -eq 0 ] && result "$out/cli" && result "$out/srv" && {
	echo "PASS: $prog UD, $iters x $size bytes"; exit 0; }
echo "FAIL: server rc=$srv_rc client rc=$cli_rc"
exit 1
