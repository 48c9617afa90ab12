#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# The test command: install what is needed, build with warnings as errors,
# run every registered test. Ends with meson test's summary.
#
# Before the main run, two hardening stages (skip with HARDENING=0):
#  - fuzz: each libFuzzer harness (vring walker, control protocol, config
#    parser) for FUZZ_SECONDS (default 60) with ASan+UBSan, build-fuzz/;
#  - sanitizers: the unit and integration suites again, built with
#    -Db_sanitize=address,undefined in build-asan/ (valgrind runs excluded:
#    valgrind and ASan do not mix); UBSan findings abort.
# A failing stage fails the run, but the main run still goes last so that
# the output ends with its summary.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/install-deps.sh
if [ -f build/build.ninja ]; then
	meson configure build -Dwerror=true
else
	meson setup build -Dwerror=true
fi
meson compile -C build

stages_failed=()
if [ "${HARDENING:-1}" != 0 ]; then
	echo "run-tests: fuzz stage, ${FUZZ_SECONDS:-60}s per harness"
	if ! FUZZ_BUILD_DIR=build-fuzz tests/fuzz/run-fuzz.sh "${FUZZ_SECONDS:-60}"; then
		stages_failed+=(fuzz)
	fi

	echo "run-tests: sanitizer stage (ASan+UBSan), unit and integration suites"
	if [ -f build-asan/build.ninja ]; then
		meson configure build-asan -Dwerror=true
	else
		meson setup build-asan -Dwerror=true -Db_sanitize=address,undefined \
			-Db_lundef=false
	fi
	meson compile -C build-asan
	mapfile -t asan_tests < <(meson test -C build-asan --no-rebuild --list \
		--suite unit --suite integration 2>/dev/null |
		sed -n 's|^[^ ]* / ||p' | grep -v -- '-valgrind$')
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	if ! meson test -C build-asan --no-rebuild --print-errorlogs \
		"${asan_tests[@]}"; then
		# A sanitizer report fails the stage. Without one, a failure is
		# the slower instrumented build missing a deadline on a busy
		# machine (UD drops what finds no posted receive): run those
		# tests once more.
		log=build-asan/meson-logs/testlog.json
		if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
			build-asan/meson-logs/testlog.txt; then
			stages_failed+=(sanitizers)
		else
			mapfile -t again < <(python3 -c 'import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t["result"] not in ("OK", "SKIP", "EXPECTEDFAIL"):
        print(t["name"].split(" / ")[-1])' "$log")
			echo "run-tests: sanitizer stage: no sanitizer report; once more: ${again[*]}"
			if [ ${#again[@]} -eq 0 ] ||
				! meson test -C build-asan --no-rebuild --print-errorlogs \
					"${again[@]}"; then
				stages_failed+=(sanitizers)
			fi
		fi
	fi
	unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if [ ${#stages_failed[@]} -gt 0 ]; then
	echo "run-tests: FAILED hardening stage(s): ${stages_failed[*]} (the run will fail)"
fi
set +e
meson test -C build --print-errorlogs "$@"
rc=$?
if [ ${#stages_failed[@]} -gt 0 ] && [ $rc -eq 0 ]; then
	rc=1 # reported above: ${stages_failed[*]}
fi
exit $rc
