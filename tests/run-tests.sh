#!/bin/bash
# The test command: install what is needed, build with warnings as errors,
# run every registered test. Ends with meson test's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/install-deps.sh
if [ -f build/build.ninja ]; then
	meson configure build -Dwerror=true
else
	meson setup build -Dwerror=true
fi
meson compile -C build
exec meson test -C build --print-errorlogs "$@"
