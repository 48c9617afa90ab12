#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# The benchmark harness in one command (see tests/bench/README.md):
#   tests/bench/run.sh [BUILD_DIR] [bench.py options...]
# Builds BUILD_DIR (default: build) if needed, runs every measurement and
# writes BUILD_DIR/bench/{table.txt,results.json,results.csv,
# instructions.csv,bench.png}. A few minutes; Ctrl-C stops and cleans up.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$ROOT/build}
[ $# -gt 0 ] && shift
if [ ! -x "$BUILD/daemon/ibvhostd" ]; then
	[ -d "$BUILD" ] || meson setup "$BUILD" "$ROOT"
	meson compile -C "$BUILD"
fi
exec python3 "$HERE/bench.py" "$BUILD" "$@"
