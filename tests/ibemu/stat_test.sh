#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# ibemu_stat sees a live node from outside the fabric, and its counters.
#   stat_test.sh BUILDDIR_OF_IBEMU
set -u
dir=$1
command -v ibv_ud_pingpong >/dev/null || { echo "ibv_ud_pingpong missing"; exit 77; }
fabric="stat$$"
port=$((20000 + $$ % 20000))
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -f /dev/shm/ibemu-"$fabric" /dev/shm/ibemu-"$fabric".*
}
trap cleanup EXIT INT TERM
export IBEMU_FABRIC="$fabric"
# a node that waits (the server side of the pingpong, no client comes)
LD_LIBRARY_PATH="$dir" IBEMU_LID=7 IBEMU_IP=10.9.8.7 \
	ibv_ud_pingpong -p "$port" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
	"$dir/ibemu_stat" -l 7 -c rx_pkts >/dev/null 2>&1 && break
	sleep 0.05
done
out=$("$dir/ibemu_stat" -j) || { echo "ibemu_stat failed"; exit 1; }
echo "$out"
echo "$out" | grep -q '"lid": 7, "pid": '"$pid"', "ip": "10.9.8.7"' || exit 1
[ "$("$dir/ibemu_stat" -l 7 -c drop_qkey)" = 0 ] || exit 1
"$dir/ibemu_stat" -l 7 -c no_such_counter 2>/dev/null && exit 1
kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=
# a dead node is not listed (and is reclaimed by the next node to come)
"$dir/ibemu_stat" -l 7 -c rx_pkts 2>/dev/null && { echo "dead node listed"; exit 1; }
# a node that closes the device normally removes the fabric it was last in
LD_LIBRARY_PATH="$dir" ibv_devinfo >/dev/null || exit 1
"$dir/ibemu_stat" >/dev/null 2>&1 && { echo "fabric left behind"; exit 1; }
exit 0
