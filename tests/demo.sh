#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# The demo: install what is missing, build, then two ibvhostd (two emulated
# hosts on an emulated InfiniBand fabric, tests/ibemu) each serving one
# QEMU guest (TCG, Debian's kernel with its own virtio_net driver, a busybox
# initramfs); the guests ping each other, then each daemon's ports and
# forwarding database are shown. Everything started is stopped on exit,
# also on Ctrl-C.
#   DEMO_HOLD=SECONDS  keep everything running that long before cleaning up
#   BUILD_DIR=DIR      build folder (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}

tests/install-deps.sh
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD"
fi
meson compile -C "$BUILD"

# tests/e2e/e2e_test.py does the rest (scenario "demo"); it cleans up on
# SIGINT/SIGTERM and on any failure.
exec python3 tests/e2e/e2e_test.py demo "$BUILD"
