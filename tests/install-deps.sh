#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# Install every Debian 12 package that building, testing and the demo need
# (including those of the data-path, end-to-end and hardening tests).
# Quick no-op when all of them are installed already.
set -euo pipefail

PACKAGES=(
	# build
	meson ninja-build pkg-config gcc clang-14 python3
	libdpdk-dev dpdk-dev libibverbs-dev librdmacm-dev libev-dev
	libjansson-dev libinih-dev libsystemd-dev
	# man pages (scdoc renders them, man -l checks them)
	scdoc man-db
	# tests
	libcmocka-dev rdma-core ibverbs-utils rdmacm-utils perftest
	systemd valgrind jq iproute2 busybox-static qemu-system-x86
	libfuzzer-14-dev libclang-rt-14-dev gnuplot-nox
	# promtool checks the show-metrics exposition
	prometheus
	# benchmarks (tests/bench): the Open vSwitch + DPDK baseline
	openvswitch-switch-dpdk
)

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root (or install them) and try again" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
