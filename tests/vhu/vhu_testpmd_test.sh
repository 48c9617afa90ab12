#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
# vhu-frontend against a real vhost-user backend: DPDK's vhost PMD inside
# dpdk-testpmd, io-forwarding port 0 <-> port 1. One vhu-frontend sends on
# port 0's socket, another receives and verifies on port 1's socket.
# Usage: vhu_testpmd_test.sh PATH/TO/vhu-frontend
set -u

VHU=${1:?usage: $0 PATH/TO/vhu-frontend}
TESTPMD=${TESTPMD:-dpdk-testpmd}
if ! command -v "$TESTPMD" >/dev/null; then
	echo "SKIP: $TESTPMD not installed"
	exit 77
fi

DIR=$(mktemp -d /tmp/vhu-test.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

FAILS=0
# A crashed child stays a zombie until waited for: kill -0 would succeed.
alive() { grep -q '^State:[[:space:]]*[^Z]' "/proc/$1/status" 2>/dev/null; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

# start_testpmd PREFIX VDEV_OPTS: main lcore 0, forwarding lcore 1 (the
# frontends run on core 0); sockets sock0/sock1 in $DIR.
start_testpmd() {
	"$TESTPMD" -l 0,1 --no-pci --no-huge -m 512 --file-prefix "$1$$" \
		--vdev "net_vhost0,iface=$DIR/sock0,queues=1$2" \
		--vdev "net_vhost1,iface=$DIR/sock1,queues=1$2" \
		-- --forward-mode=io --total-num-mbufs=32768 -a --stats-period 3600 \
		</dev/null >"$DIR/testpmd-$1.log" 2>&1 &
	TPMD=$!
	PIDS+=($TPMD)
}
stop_testpmd() {
	kill "$TPMD" 2>/dev/null
	timeout 10 tail --pid="$TPMD" -f /dev/null
	kill -9 "$TPMD" 2>/dev/null
	wait "$TPMD" 2>/dev/null
	PIDS=("${PIDS[@]/$TPMD}")
}

start_testpmd server ""
for _ in $(seq 200); do
	[ -S "$DIR/sock0" ] && [ -S "$DIR/sock1" ] && break
	kill -0 "$TPMD" 2>/dev/null || break
	sleep 0.1
done
if ! [ -S "$DIR/sock0" ] || ! [ -S "$DIR/sock1" ]; then
	echo "FAIL: testpmd did not create its vhost sockets within 20 s"
	tail -20 "$DIR/testpmd-server.log"
	exit 1
fi

FE="taskset -c 0 $VHU"
LISTEN=
MAC_A=52:54:00:00:0a:01
MAC_B=52:54:00:00:0b:01

# wait_ready FILE: the frontend prints "vhu: ... ready" once its rings run.
wait_ready() {
	for _ in $(seq 100); do
		grep -q ' ready on ' "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# json_check FILE PYEXPR: evaluates PYEXPR with j = the last JSON line.
json_check() {
	python3 -c '
import json, sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}

# transfer NAME COUNT "SENDER OPTS" "RECEIVER OPTS"
transfer() {
	local name=$1 count=$2 sopts=$3 ropts=$4
	local out="$DIR/$name"
	$FE --socket "$DIR/sock1" $LISTEN --mac $MAC_B --timeout 30 $ropts \
		recv --count "$count" --verify --src $MAC_A \
		>"$out.recv" 2>"$out.recv.err" &
	local rpid=$!
	PIDS+=($rpid)
	[ -n "$LISTEN" ] && start_testpmd client ",client=1"
	if ! wait_ready "$out.recv.err"; then
		fail "$name: receiver not ready"; cat "$out.recv.err"; return
	fi
	sleep 0.3
	timeout 40 $FE --socket "$DIR/sock0" $LISTEN --mac $MAC_A --timeout 30 $sopts \
		send --count "$count" --dst $MAC_B >"$out.send" 2>"$out.send.err"
	local src=$?
	timeout 40 tail --pid=$rpid -f /dev/null
	kill -0 $rpid 2>/dev/null && kill $rpid
	wait $rpid
	local rrc=$?
	PIDS=("${PIDS[@]/$rpid}")
	echo "$name send: $(tail -1 "$out.send")"
	echo "$name recv: $(tail -1 "$out.recv")"
	[ $src -eq 0 ] || fail "$name: sender exit $src: $(cat "$out.send.err")"
	[ $rrc -eq 0 ] || fail "$name: receiver exit $rrc: $(cat "$out.recv.err")"
	json_check "$out.recv" "j['good'] == $count and j['bad'] == 0 and j['duplicates'] == 0 and j['canary_changed'] == 0" ||
		fail "$name: frames missing or damaged"
	json_check "$out.send" "j['tx_completed'] == $count and j['stopped'] and j['vring_base'][1] == $count % 65536" ||
		fail "$name: sender's TX ring did not complete or stop cleanly"
}

transfer small 3000 "--size 64 --rate 5000 --ring 1024" "--ring 2048"
transfer mtu 3000 "--size 1514 --rate 5000 --ring 1024" "--ring 2048"
# Frames over several mergeable RX buffers, two memory regions, a TX chain of
# header descriptor + 4 segments.
transfer merge-2regions 2000 \
	"--size 4000 --rate 4000 --regions 2 --segments 4 --hdr-desc --ring 512" \
	"--regions 2 --ring 2048"
# UDP/IPv4 with a partial checksum (NEEDS_CSUM), indirect descriptor tables.
transfer csum-indirect 2000 "--size 600 --csum --indirect --segments 3 --rate 4000" \
	"--ring 2048"

# RTT: pingpong on port 0, echo on port 1.
$FE --socket "$DIR/sock1" --mac $MAC_B --timeout 20 echo --count 200 \
	>"$DIR/echo.out" 2>"$DIR/echo.err" &
EPID=$!
PIDS+=($EPID)
if wait_ready "$DIR/echo.err"; then
	sleep 0.3
	timeout 30 $FE --socket "$DIR/sock0" --mac $MAC_A --timeout 20 \
		pingpong --count 200 --size 256 --dst $MAC_B >"$DIR/ping.out" 2>&1 ||
		fail "pingpong exit $?: $(cat "$DIR/ping.out")"
	echo "pingpong: $(tail -1 "$DIR/ping.out")"
	json_check "$DIR/ping.out" "j['replies'] == 200 and j['rtt_p50_us'] > 0" ||
		fail "pingpong: replies missing"
else
	fail "echo not ready"
fi
timeout 30 tail --pid=$EPID -f /dev/null

# idle: hold the device, then stop with GET_VRING_BASE on both rings.
timeout 20 $FE --socket "$DIR/sock0" --timeout 10 idle --seconds 1 \
	>"$DIR/idle.out" 2>&1 || fail "idle exit $?: $(cat "$DIR/idle.out")"
json_check "$DIR/idle.out" "j['stopped'] and j['ok']" || fail "idle: no clean stop"
echo "idle: $(tail -1 "$DIR/idle.out")"

# Hostile cases that this backend survives: the tool runs them and reports.
timeout 20 $FE --socket "$DIR/sock0" --timeout 5 hostile chain-loop \
	>"$DIR/h1.out" 2>&1 || fail "hostile chain-loop exit $?: $(cat "$DIR/h1.out")"
json_check "$DIR/h1.out" "j['case'] == 'chain-loop' and j['canary_changed'] == 0" ||
	fail "hostile chain-loop: unexpected report"
echo "hostile: $(tail -1 "$DIR/h1.out")"
timeout 20 $FE --socket "$DIR/sock0" --timeout 5 hostile extra-fds \
	>"$DIR/h2.out" 2>&1 || fail "hostile extra-fds exit $?: $(cat "$DIR/h2.out")"
json_check "$DIR/h2.out" "j['case'] == 'extra-fds' and j['backend_closed']" ||
	fail "hostile extra-fds: DPDK's vhost rejects fds on GET_FEATURES; report differs"
echo "hostile: $(tail -1 "$DIR/h2.out")"
# ... and the backend still serves a well-behaved pair afterwards.
transfer after-hostile 500 "--size 128 --rate 5000" "--ring 2048"

alive "$TPMD" || fail "testpmd died: $(tail -5 "$DIR/testpmd-server.log")"
stop_testpmd

# Backend in client mode: the frontends listen, testpmd connects to them.
rm -f "$DIR/sock0" "$DIR/sock1"
LISTEN=--listen
transfer listen 1000 "--size 512 --rate 5000" "--ring 2048"
stop_testpmd

if [ $FAILS -ne 0 ]; then
	echo "$FAILS failure(s); testpmd log tails:"
	tail -30 "$DIR"/testpmd-*.log
	exit 1
fi
echo "PASS"
