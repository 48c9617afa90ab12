#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# rdma-core's unmodified rdma_cm examples on the emulated fabric:
#   udaddy — UD service ID resolution (SIDR), then data both ways;
#   mckey  — rdma_join_multicast_ex, a sender and a receiver node.
#   rdmacm_examples_test.sh LIBDIR udaddy|mckey
set -u
libdir=$1 which=$2
command -v "$which" >/dev/null || { echo "$which missing (rdmacm-utils)"; exit 77; }
. "$(dirname "$0")/fabric_env.sh"
ibemu_fabric cm
export LD_LIBRARY_PATH="$libdir" IBEMU_FABRIC="$fabric"
ip1=10.77.100.1 ip2=10.77.100.2

case $which in
udaddy)
	IBEMU_LID=11 IBEMU_IP=$ip1 timeout 30 udaddy -b $ip1 -C 100 >"$out/srv" 2>&1 &
	srv_pid=$!
	sleep 0.5
	IBEMU_LID=12 IBEMU_IP=$ip2 timeout 30 udaddy -s $ip1 -C 100 >"$out/cli" 2>&1 ;;
mckey)
	IBEMU_LID=11 IBEMU_IP=$ip1 timeout 30 mckey -m 239.1.2.3 -b $ip1 -C 100 \
		>"$out/srv" 2>&1 &
	srv_pid=$!
	sleep 0.5
	IBEMU_LID=12 IBEMU_IP=$ip2 timeout 30 mckey -m 239.1.2.3 -b $ip2 -s -C 100 \
		>"$out/cli" 2>&1 ;;
*)
	exit 2 ;;
esac
cli_rc=$?
wait $srv_pid
srv_rc=$?
srv_pid=
echo "--- receiving side"; cat "$out/srv"; echo "--- sending side"; cat "$out/cli"
[ $cli_rc -eq 0 ] && [ $srv_rc -eq 0 ] && grep -q "test complete" "$out/srv" &&
	grep -q "test complete" "$out/cli"
