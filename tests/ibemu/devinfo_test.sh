#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# Unmodified ibv_devinfo lists ibemu0 with an ACTIVE port.
set -u
command -v ibv_devinfo >/dev/null || { echo "ibv_devinfo missing (ibverbs-utils)"; exit 77; }
fabric="devinfo$$"
trap 'rm -f /dev/shm/ibemu-$fabric /dev/shm/ibemu-$fabric.*' EXIT INT TERM
out=$(LD_LIBRARY_PATH=$1 IBEMU_FABRIC=$fabric timeout 20 ibv_devinfo) || { echo "$out"; exit 1; }
echo "$out"
echo "$out" | grep -q 'hca_id:[[:space:]]*ibemu0' &&
	echo "$out" | grep -q 'state:[[:space:]]*PORT_ACTIVE' &&
	echo "$out" | grep -q 'active_mtu:[[:space:]]*4096'
