#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# Build the libFuzzer harnesses with clang in their own build dir and run
# each for a bounded time on a copy of its seed corpus.
#
#   tests/fuzz/run-fuzz.sh [seconds-per-harness]   (default 60)
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), CC (default clang, or
# clang-14 when plain clang is missing), FUZZ_JOBS (parallel fuzz jobs, 1).
# Exits non-zero if a harness fails to build or finds a crash; crash
# inputs are left in $FUZZ_BUILD_DIR/fuzz-artifacts/.
set -eu

secs=${1:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
jobs=${FUZZ_JOBS:-1}
if [ -z "${CC:-}" ]; then
	if command -v clang >/dev/null 2>&1; then CC=clang; else CC=clang-14; fi
fi
export CC

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$top" -Dbuildtype=debugoptimized -Db_lundef=false \
		-Dfuzz=enabled
fi

# Harness name -> corpus folder under tests/fuzz/corpus/.
harnesses=${FUZZ_HARNESSES:-"fuzz_vq:vq fuzz_ctl:ctl fuzz_cfg:cfg"}

status=0
for entry in $harnesses; do
	name=${entry%%:*}
	corpus=${entry#*:}
	meson compile -C "$build" "$name"
	bin=$(find "$build" -name "$name" -type f -perm -u+x | head -n 1)
	[ -n "$bin" ] || { echo "run-fuzz: $name was not built (is $CC clang with libFuzzer?)" >&2; exit 1; }

	work="$build/fuzz-corpus/$corpus"
	art="$build/fuzz-artifacts/$corpus/"
	mkdir -p "$work" "$art"
	cp -n "$top/tests/fuzz/corpus/$corpus/"* "$work/" 2>/dev/null || true

	echo "run-fuzz: $name for ${secs}s"
	# -timeout: one input taking seconds means a hang (e.g. a chain loop).
	# With -jobs libFuzzer writes fuzz-N.log into the current directory.
	par=""
	dict=""
	[ -f "$top/tests/fuzz/$corpus.dict" ] && dict="-dict=$top/tests/fuzz/$corpus.dict"
	[ "$jobs" -gt 1 ] && par="-jobs=$jobs -workers=$jobs"
	# shellcheck disable=SC2086
	if ! (cd "$build" && "$bin" -max_total_time="$secs" -timeout=10 \
		-print_final_stats=1 $par $dict -artifact_prefix="$art" "$work") 2>&1 |
		tee "$build/$name.log" | grep -E 'stat::|DONE|ERROR|SUMMARY'; then
		:
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$name.log" | tail -n 1)
	cov=$(grep -E '^#[0-9]+' "$build/$name.log" | tail -n 1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	pcs=$(sed -n 's/^INFO: Loaded 1 PC tables (\([0-9]*\) PCs.*/\1/p' "$build/$name.log" | head -n 1)
	echo "run-fuzz: $name: ${execs:-0} executions in ${secs}s, coverage ${cov:-?} of ${pcs:-?} instrumented edges"
	if grep -qE 'ERROR: (libFuzzer|AddressSanitizer|UndefinedBehaviorSanitizer)|runtime error:|deadly signal|libFuzzer: timeout' "$build/$name.log"; then
		echo "run-fuzz: $name found a crash, inputs in $art" >&2
		status=1
	fi
done
exit $status
