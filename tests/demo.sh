#!/bin/bash
# The demo: install, build, start ibvhostd with two vhost-user ports, attach
# a real virtio-net frontend to each (dpdk-testpmd with DPDK's virtio-user
# driver), show what the daemon negotiated, and clean up (also on Ctrl-C).
#   DEMO_HOLD=SECONDS  keep everything running that long before cleaning up
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

tests/install-deps.sh
if [ ! -f build/build.ninja ]; then
	meson setup build
fi
meson compile -C build

IBVHOSTD=$ROOT/build/daemon/ibvhostd
IBVHOSTCTL=$ROOT/build/daemon/ibvhostctl
DIR=$(mktemp -d /tmp/ibvhostd-demo.XXXXXX)
CTL=$DIR/ctl.sock
TIMEOUT=30
NCPU=$(nproc)
# Daemon's main thread on the last CPU, the frontends' main lcore on CPU 0
# (testpmd wants a forwarding lcore too; it idles, mapped onto a CPU).
DAEMON_CORE=$((NCPU > 1 ? NCPU - 1 : 0))
FE_LCORES=0@0,1@$DAEMON_CORE
pids=()

cleanup() {
	trap - EXIT INT TERM
	echo "demo: cleaning up"
	for fd in 5 6; do { echo quit >&$fd; } 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$DIR"
	# testpmd leaves its EAL runtime directory behind.
	rm -rf /var/run/dpdk/ibvhostd-demo-fe[12]-$$
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # what, command...
	local what=$1; shift
	for _ in $(seq $((TIMEOUT * 10))); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "demo: timed out waiting for $what" >&2
	echo "---- daemon log ----" >&2; tail -30 "$DIR/ibvhostd.log" >&2
	return 1
}

cat >"$DIR/ibvhostd.conf" <<CONF
log_level = info
control_socket = $CTL
main_core = $DAEMON_CORE

[segment blue]
qkey = 0x11110001

[port vm1]
socket = $DIR/vm1.sock
segment = blue
mac = 52:54:00:00:00:01

[port vm2]
socket = $DIR/vm2.sock
segment = blue
mac = 52:54:00:00:00:02
CONF

echo "demo: starting ibvhostd (config $DIR/ibvhostd.conf)"
# The emulated IB fabric (tests/ibemu) stands in for the HCA.
LD_LIBRARY_PATH=$ROOT/build/tests/ibemu IBEMU_SHM_DIR=$DIR \
	"$IBVHOSTD" -c "$DIR/ibvhostd.conf" >"$DIR/ibvhostd.log" 2>&1 &
pids+=($!)
wait_for "the port sockets" test -S "$DIR/vm2.sock"
"$IBVHOSTCTL" -s "$CTL" show-ports

start_frontend() { # n fd
	local n=$1 fd=$2
	mkfifo "$DIR/fe$n.in"
	eval "exec $fd<>\"$DIR/fe$n.in\""
	dpdk-testpmd --lcores "$FE_LCORES" --main-lcore 0 --no-pci --no-huge -m 512 \
		--file-prefix "ibvhostd-demo-fe$n-$$" \
		--vdev "net_virtio_user0,path=$DIR/vm$n.sock,mac=52:54:00:00:00:0$n" \
		-- --total-num-mbufs=32768 -i \
		<"$DIR/fe$n.in" >"$DIR/testpmd$n.log" 2>&1 &
	pids+=($!)
}
port_running() {
	"$IBVHOSTCTL" -s "$CTL" --json show-port "$1" | grep -q '"state": "running"'
}

echo "demo: starting two dpdk-testpmd virtio-user frontends"
start_frontend 1 5
start_frontend 2 6
wait_for "vm1 to run" port_running vm1
wait_for "vm2 to run" port_running vm2

echo
echo "demo: ibvhostctl show-ports"
"$IBVHOSTCTL" -s "$CTL" show-ports
echo
echo "demo: ibvhostctl show-port vm1"
"$IBVHOSTCTL" -s "$CTL" show-port vm1
if [ -n "${DEMO_HOLD:-}" ]; then
	echo "demo: holding for $DEMO_HOLD s (control socket $CTL)"
	sleep "$DEMO_HOLD" &
	wait $! # interruptible: Ctrl-C runs the cleanup at once
fi
