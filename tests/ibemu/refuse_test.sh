#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# Programs that need what ibemu does not offer fail cleanly at creation
# (EOPNOTSUPP), never run on a wrong emulation: ibv_rc_pingpong (RC QPs),
# ibv_srq_pingpong (SRQ).
set -u
libdir=$1
command -v ibv_rc_pingpong >/dev/null || { echo "ibverbs-utils missing"; exit 77; }
fabric="refuse$$"
trap 'rm -f /dev/shm/ibemu-$fabric /dev/shm/ibemu-$fabric.*' EXIT INT TERM
export LD_LIBRARY_PATH="$libdir" IBEMU_FABRIC="$fabric"
port=$((20000 + $$ % 20000))
out=$(timeout 10 ibv_rc_pingpong -p $port 2>&1); rc=$?
echo "$out"
[ $rc -eq 1 ] && echo "$out" | grep -q "Couldn't create QP" || exit 1
out=$(timeout 10 ibv_srq_pingpong -p $port 2>&1); rc=$?
echo "$out"
[ $rc -eq 1 ] && echo "$out" | grep -q "Couldn't create SRQ" || exit 1
exit 0
