# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# Sourced by the scripts that run unmodified verbs programs on the emulated
# fabric: `ibemu_fabric NAME` gives the script a fabric of its own
# ($fabric, NAME + pid), a scratch directory ($out) and a cleanup of both
# and of the server in $srv_pid, however the script ends.
ibemu_cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
	rm -rf "$out" /dev/shm/ibemu-"$fabric" /dev/shm/ibemu-"$fabric".*
}

ibemu_fabric() {
	fabric="$1$$"
	out=$(mktemp -d)
	srv_pid=
	trap ibemu_cleanup EXIT INT TERM
}
