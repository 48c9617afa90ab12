#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Benchmark harness for ibvhostd (issue 7): frames/s, RTT, instructions
per frame, polling-core CPU use; ibvhostd against dpdk-testpmd's vhost
switch and Open vSwitch with DPDK, in one run, same frontends, same layout.

usage: bench.py BUILD_DIR [--out DIR] [--sizes 64,256,1500,4088]
                [--window S] [--only PARTS] [--skip PARTS] [--smoke]
                [--poll-modes busy,adaptive]
PARTS: loop (frames/s, every switch), two (two daemons), rtt, cg
(callgrind instructions/frame), cpu (polling-core CPU at set rates).

Layout on a 2-CPU machine (busy threads never share a CPU):
  CPU 0: the frontend, ONE dpdk-testpmd with two virtio-user ports in io
         forwarding (its main lcore sleeps on the command line, its one
         forwarding lcore is mapped to CPU 0 too); `start tx_first` puts
         bursts on both ports and they circulate forever.
  CPU 1: the switch under test: ibvhostd (main thread and polling thread
         on CPU 1, two ports on one segment: frames still go QP to QP over
         the emulated fabric) | dpdk-testpmd with two vhost PMD ports in
         io forwarding | ovs-vswitchd with its PMD thread on CPU 1.
Forwarded frames/s = the sum of both frontend ports' Rx-pps over a timed
window (testpmd measures the window with its TSC).

Every wait is bounded; every process started is killed on exit, also on
Ctrl-C / SIGTERM.
"""
import argparse
import csv
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import testlib  # noqa: E402
from testlib import Ctl, Fail, eal_run_dir, remove_eal_dirs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAC0, MAC1 = "02:00:00:00:be:01", "02:00:00:00:be:02"
FE_CPU, SW_CPU = 0, 1
QKEY = "0x0be70001"
MBUF_SIZE = 5120          # holds an MTU-size frame in one mbuf
BURSTS = 4                # tx_first bursts of 32 per port in the loop
CG_BURSTS = int(os.environ.get("BENCH_CG_BURSTS", "16"))  # under callgrind
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def wait_for(pred, what, timeout=20.0, step=0.05):
    return testlib.wait_for(pred, what, timeout, step)


class Run:
    """Processes, files and cleanup of one benchmark run."""

    def __init__(self, build, out):
        self.build = os.path.abspath(build)
        self.out = out
        self.dir = tempfile.mkdtemp(prefix="ibvh-bench-")
        self.procs = []
        self.ibvhostd = os.path.join(self.build, "daemon", "ibvhostd")
        self.ctl = os.path.join(self.build, "daemon", "ibvhostctl")
        self.vhu = os.path.join(self.build, "tests", "vhu", "vhu-frontend")
        self.ibemu = os.path.join(self.build, "tests", "ibemu")
        self.testpmd = shutil.which("dpdk-testpmd")
        self.n = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def uniq(self, name):
        self.n += 1
        return "%s%d-%d" % (name, os.getpid(), self.n)

    def spawn(self, argv, name, env=None, stdin=subprocess.DEVNULL):
        if env is None:
            # Only the daemon runs on the emulated fabric (it gets its env
            # explicitly); frontends and baselines use the system's
            # rdma-core as they are, whatever meson test exported.
            env = dict(os.environ)
            env.pop("LD_LIBRARY_PATH", None)
        logf = open(self.path(name + ".log"), "w")
        p = subprocess.Popen(argv, stdin=stdin, stdout=logf,
                             stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        p.logname = self.path(name + ".log")
        p.logf = logf
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)
        p.logf.close()

    def cleanup(self):
        for p in reversed(self.procs):
            if p.returncode is None:
                self.stop(p, timeout=5)
        for d in glob.glob(os.path.join(eal_run_dir(),
                                        "*%d-*" % os.getpid())):
            shutil.rmtree(d, ignore_errors=True)
        remove_eal_dirs(self.procs)
        if os.environ.get("BENCH_KEEP"):
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def logtail(self, p, n=2000):
        try:
            with open(p.logname) as f:
                return f.read()[-n:]
        except OSError:
            return ""


# ---- the frontend: one dpdk-testpmd, two virtio-user ports, CPU 0 -------

class Frontend:
    def __init__(self, r, sock0, sock1, size, tag):
        self.r = r
        argv = ["stdbuf", "-o0", r.testpmd,
                "--lcores", "0@%d,1@%d" % (FE_CPU, FE_CPU),
                "--main-lcore", "0", "--no-pci", "--no-huge", "-m", "1024",
                "--file-prefix", r.uniq("fe"),
                "--vdev", "net_virtio_user0,path=%s,mac=%s" % (sock0, MAC0),
                "--vdev", "net_virtio_user1,path=%s,mac=%s" % (sock1, MAC1),
                "--", "-i", "--total-num-mbufs=32768",
                "--mbuf-size=%d" % MBUF_SIZE, "--max-pkt-len=%d" % 4600,
                "--txpkts=%d" % size, "--forward-mode=io",
                "--eth-peer=0,%s" % MAC1, "--eth-peer=1,%s" % MAC0]
        self.p = r.spawn(argv, "fe-%s-%d" % (tag, size),
                         stdin=subprocess.PIPE)
        wait_for(lambda: "testpmd>" in r.logtail(self.p, 100000)
                 or self.p.poll() is not None, "frontend testpmd", 30)
        if self.p.poll() is not None:
            raise Fail("frontend testpmd exited: " + r.logtail(self.p))

    def cmd(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()

    def text(self):
        return self.r.logtail(self.p, 10 ** 7)

    def stats(self):
        """One `show port stats all`: {port: {rx, tx, rx_pps, tx_pps}}."""
        before = self.text().count("NIC statistics for port 1")
        self.cmd("show port stats all")
        wait_for(lambda: self.text().count("NIC statistics for port 1")
                 > before and "#####\n" in self.text()[-200:],
                 "testpmd stats", 10)
        block = self.text().split("NIC statistics for port 0")[-1]
        res = {}
        for port, part in enumerate(block.split("NIC statistics for port 1")):
            g = lambda k: int(re.search(k + r":\s+(\d+)", part).group(1))
            res[port] = {"rx": g("RX-packets"), "tx": g("TX-packets"),
                         "rx_pps": g("Rx-pps"), "tx_pps": g("Tx-pps")}
        return res

    def loop_rate(self, warmup, window, sw_threads=()):
        """Start the circulating bursts; frames/s forwarded by the switch
        (both ports' Rx-pps summed) over `window` seconds, and the CPU
        time the switch's busy threads and the frontend's forwarding
        thread got in that window (other work on the machine takes the
        rest)."""
        self.cmd("start tx_first %d" % BURSTS)
        time.sleep(warmup)
        fe_threads = threads_named(self.p.pid, ["rte-worker"])
        s0 = self.stats()
        f0, w0 = threads_times(fe_threads), threads_times(sw_threads)
        t0 = time.monotonic()
        time.sleep(window)
        s1 = self.stats()
        f1, w1 = threads_times(fe_threads), threads_times(sw_threads)
        dt = time.monotonic() - t0
        self.cmd("stop")
        rx = [s1[i]["rx"] - s0[i]["rx"] for i in (0, 1)]
        sw_run = (w1[0] - w0[0]) / dt
        m = {"fps": s1[0]["rx_pps"] + s1[1]["rx_pps"],
             "fps_dir": [s1[1]["rx_pps"], s1[0]["rx_pps"]],
             "frames": sum(rx),
             "fe_cpu_pct": round(100 * (f1[0] - f0[0]) / dt, 1),
             "fe_wait_pct": round(100 * (f1[1] - f0[1]) / dt, 1),
             "sw_cpu_pct": round(100 * sw_run, 1) if sw_threads else None,
             "sw_wait_pct": round(100 * (w1[1] - w0[1]) / dt, 1)
             if sw_threads else None}
        # frames per second of CPU the switch's busy threads actually got
        m["fps_per_cpu"] = round(sum(rx) / (w1[0] - w0[0])) \
            if sw_threads and w1[0] > w0[0] else None
        return m

    def close(self):
        if self.p.poll() is None:
            try:
                self.cmd("quit")
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.r.stop(self.p)


# ---- switches under test -----------------------------------------------

class Ibvhostd:
    name = "ibvhostd"

    def __init__(self, r, tag="sw", cpu=SW_CPU, lid=None, fabric="bench",
                 ports=("vm1", "vm2"), poll_mode="busy", valgrind=None):
        self.r, self.tag = r, tag
        self.ctl_sock = r.path("ctl-%s.sock" % tag)
        self.client = Ctl(r.ctl, self.ctl_sock, "ibvhostd " + tag)
        lines = ["log_level = notice", "control_socket = %s" % self.ctl_sock,
                 "main_core = %d" % cpu, "poll_mode = %s" % poll_mode,
                 "[segment bench]", "qkey = %s" % QKEY]
        self.socks = []
        for p in ports:
            s = r.path("%s-%s.sock" % (tag, p))
            self.socks.append(s)
            lines += ["[port %s]" % p, "socket = %s" % s, "segment = bench"]
        self.ports = ports
        self.fabric = fabric
        conf = r.path("%s.conf" % tag)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        env = dict(os.environ, LD_LIBRARY_PATH=r.ibemu,
                   IBEMU_SHM_DIR=r.dir, IBEMU_FABRIC=fabric)
        if lid:
            env["IBEMU_LID"] = str(lid)
        argv = [r.ibvhostd, "-c", conf]
        if valgrind:
            argv = valgrind + argv
        self.p = r.spawn(["taskset", "-c", str(cpu)] + argv, tag, env=env)
        wait_for(lambda: all(os.path.exists(s) for s in self.socks)
                 and os.path.exists(self.ctl_sock) or
                 self.p.poll() is not None, "ibvhostd %s" % tag,
                 120 if valgrind else 30)
        if self.p.poll() is not None:
            raise Fail("ibvhostd exited: " + r.logtail(self.p))

    def ctljson(self, *args):
        return self.client.ctl(*args)

    def counters(self):
        tot = {}
        for p in self.ports:
            for k, v in self.ctljson("show-port", p)["counters"].items():
                if isinstance(v, int):
                    tot[k] = tot.get(k, 0) + v
        return tot

    def poll_tid(self):
        pid = self.p.pid  # taskset and valgrind exec: the daemon's pid
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                if f.read().startswith("ibvh-poll"):
                    return pid, int(t)
        raise Fail("no ibvh-poll thread in ibvhostd %d" % pid)

    def busy_threads(self):
        return threads_named(self.p.pid, ["ibvh-poll"])

    def close(self):
        self.r.stop(self.p)


class TestpmdSwitch:
    name = "testpmd-vhost"

    def __init__(self, r):
        self.r = r
        self.socks = [r.path("tp-vm1.sock"), r.path("tp-vm2.sock")]
        argv = [r.testpmd, "--lcores", "0@%d,1@%d" % (SW_CPU, SW_CPU),
                "--main-lcore", "0", "--no-pci", "--no-huge", "-m", "1024",
                "--file-prefix", r.uniq("sw"),
                "--vdev", "net_vhost0,iface=%s,queues=1" % self.socks[0],
                "--vdev", "net_vhost1,iface=%s,queues=1" % self.socks[1],
                "--", "--forward-mode=io", "--total-num-mbufs=32768",
                "--mbuf-size=%d" % MBUF_SIZE, "--max-pkt-len=4600",
                "-a", "--stats-period", "3600"]
        self.p = r.spawn(argv, "testpmd-switch")
        wait_for(lambda: all(os.path.exists(s) for s in self.socks)
                 or self.p.poll() is not None, "testpmd vhost switch", 30)
        if self.p.poll() is not None:
            raise Fail("testpmd switch exited: " + r.logtail(self.p))

    def busy_threads(self):
        return threads_named(self.p.pid, ["rte-worker"])

    def close(self):
        self.r.stop(self.p)


class OvsSwitch:
    """ovs-vswitchd (Debian openvswitch-switch-dpdk), netdev bridge, two
    dpdkvhostuserclient ports (OVS connects to the frontend's sockets, so
    the frontend's virtio-user ports are servers), PMD on SW_CPU."""
    name = "ovs-dpdk"

    def __init__(self, r):
        self.r = r
        vsd = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
        if not os.path.exists(vsd):
            vsd = shutil.which("ovs-vswitchd")
        if not vsd or not shutil.which("ovsdb-server"):
            raise Fail("Open vSwitch with DPDK is not installed "
                       "(openvswitch-switch-dpdk)")
        self.d = r.path(r.uniq("ovs"))
        os.makedirs(self.d)
        self.db = os.path.join(self.d, "conf.db")
        self.dbsock = os.path.join(self.d, "db.sock")
        subprocess.run(["ovsdb-tool", "create", self.db,
                        "/usr/share/openvswitch/vswitch.ovsschema"],
                       check=True, capture_output=True, timeout=30)
        env = dict(os.environ, OVS_RUNDIR=self.d, OVS_LOGDIR=self.d,
                   OVS_DBDIR=self.d)
        self.env = env
        self.dbp = r.spawn(["ovsdb-server", self.db,
                            "--remote=punix:" + self.dbsock,
                            "--unixctl=" + os.path.join(self.d, "db.ctl")],
                           "ovsdb", env=env)
        wait_for(lambda: os.path.exists(self.dbsock), "ovsdb-server", 20)
        self.vsctl("--no-wait", "init")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                   "other_config:dpdk-init=true",
                   "other_config:dpdk-lcore-mask=0x%x" % (1 << SW_CPU),
                   "other_config:pmd-cpu-mask=0x%x" % (1 << SW_CPU),
                   # --no-huge needs legacy memory; without --legacy-mem OVS adds
                   # --in-memory, which EAL refuses with --no-huge
                   'other_config:dpdk-extra="--no-huge --legacy-mem --no-pci -m 1024"')
        self.p = r.spawn(["taskset", "-c", str(SW_CPU), vsd,
                          "unix:" + self.dbsock, "--pidfile=" +
                          os.path.join(self.d, "vswitchd.pid"),
                          "--unixctl=" + os.path.join(self.d, "vsd.ctl")],
                         "ovs-vswitchd", env=env)
        wait_for(lambda: os.path.exists(os.path.join(self.d, "vsd.ctl"))
                 or self.p.poll() is not None, "ovs-vswitchd", 60)
        if self.p.poll() is not None:
            raise Fail("ovs-vswitchd exited: " + r.logtail(self.p))
        self.vsctl("add-br", "br0", "--", "set", "bridge", "br0",
                   "datapath_type=netdev")
        self.socks = [os.path.join(self.d, "vm1.sock"),
                      os.path.join(self.d, "vm2.sock")]
        for i, s in enumerate(self.socks):
            self.vsctl("add-port", "br0", "vhu%d" % i, "--", "set",
                       "Interface", "vhu%d" % i, "type=dpdkvhostuserclient",
                       "options:vhost-server-path=%s" % s,
                       "mtu_request=4074")
        out = self.vsctl("get", "Open_vSwitch", ".", "dpdk_initialized")
        if "true" not in out:
            raise Fail("OVS DPDK not initialised: " +
                       r.logtail(self.p, 3000))

    def vsctl(self, *args):
        out = subprocess.run(["ovs-vsctl", "--db=unix:" + self.dbsock,
                              "--timeout=30"] + list(args),
                             capture_output=True, text=True, timeout=40,
                             env=self.env)
        if out.returncode:
            raise Fail("ovs-vsctl %s: %s %s" % (" ".join(args), out.stderr,
                                                self.r.logtail(self.p, 3000)
                                                if hasattr(self, "p") else ""))
        return out.stdout

    def busy_threads(self):
        return threads_named(self.p.pid, ["pmd"])

    def close(self):
        self.r.stop(self.p)
        self.r.stop(self.dbp)


# ---- measurements ------------------------------------------------------

def loop_sizes(r, sw, sizes, warmup, window, tag, server_fe=False):
    """Frames/s through `sw` for each size (frontend on FE_CPU)."""
    res = []
    for size in sizes:
        c0 = sw.counters() if isinstance(sw, Ibvhostd) else None
        socks = sw.socks
        fe = FrontendServer(r, socks, size, tag) if server_fe else \
            Frontend(r, socks[0], socks[-1], size, tag)
        try:
            if isinstance(sw, Ibvhostd):
                wait_for(lambda: all(
                    sw.ctljson("show-port", p)["state"] == "running"
                    for p in sw.ports), "ports running", 20)
            else:
                time.sleep(1.0)
            m = fe.loop_rate(warmup, window, sw.busy_threads())
        finally:
            fe.close()
        m["size"] = size
        if c0 is not None:
            c1 = sw.counters()
            d = {k: c1[k] - c0.get(k, 0) for k in c1}
            m["flooded"] = d.get("flooded", 0)
            m["drops"] = sum(v for k, v in d.items() if k.startswith("drop"))
            m["bounce"] = d.get("bounce_copies", 0)
        log("%-14s %5d B: %9.0f frames/s; CPU: switch %s %%, frontend %s %%;"
            " %s frames per switch CPU-second" % (
                tag, size, m["fps"], m["sw_cpu_pct"], m["fe_cpu_pct"],
                m["fps_per_cpu"]))
        res.append(m)
    return res


def start_switch(r, name):
    if name == "ibvhostd":
        return Ibvhostd(r, fabric="loop%d" % r.n)
    if name == "testpmd-vhost":
        return TestpmdSwitch(r)
    if name == "ovs-dpdk":
        sw = OvsSwitch(r)
        time.sleep(2.0)  # its main thread finishes touching 1 GB
        return sw
    raise Fail("unknown switch %s" % name)


def median_sample(ms):
    """The round with the median frames/s; keeps every round's figure."""
    ms = sorted(ms, key=lambda m: m["fps"])
    m = dict(ms[(len(ms) - 1) // 2] if len(ms) % 2 else ms[len(ms) // 2])
    m["fps_rounds"] = [x["fps"] for x in ms]
    if len(ms) % 2 == 0:
        lo, hi = ms[len(ms) // 2 - 1], ms[len(ms) // 2]
        m["fps"] = (lo["fps"] + hi["fps"]) // 2
        m["fps_dir"] = [(x + y) // 2 for x, y in zip(lo["fps_dir"],
                                                      hi["fps_dir"])]
        for k in ("fps_per_cpu", "sw_cpu_pct", "fe_cpu_pct"):
            if lo.get(k) is not None and hi.get(k) is not None:
                m[k] = round((lo[k] + hi[k]) / 2, 1)
    return m


def FrontendServer(r, socks, size, tag):
    """The frontend for OVS: virtio-user in server mode (OVS's
    dpdkvhostuserclient ports connect to it)."""
    fe = Frontend.__new__(Frontend)
    fe.r = r
    argv = ["stdbuf", "-o0", r.testpmd,
            "--lcores", "0@%d,1@%d" % (FE_CPU, FE_CPU),
            "--main-lcore", "0", "--no-pci", "--no-huge", "-m", "1024",
            "--file-prefix", r.uniq("fe"),
            "--vdev", "net_virtio_user0,path=%s,mac=%s,server=1,queues=1"
            % (socks[0], MAC0),
            "--vdev", "net_virtio_user1,path=%s,mac=%s,server=1,queues=1"
            % (socks[1], MAC1),
            "--", "-i", "--total-num-mbufs=32768",
            "--mbuf-size=%d" % MBUF_SIZE, "--max-pkt-len=4600",
            "--txpkts=%d" % size, "--forward-mode=io",
            "--eth-peer=0,%s" % MAC1, "--eth-peer=1,%s" % MAC0]
    fe.p = r.spawn(argv, "fe-%s-%d" % (tag, size), stdin=subprocess.PIPE)
    wait_for(lambda: "testpmd>" in r.logtail(fe.p, 100000)
             or fe.p.poll() is not None, "frontend testpmd (server)", 60)
    if fe.p.poll() is not None:
        raise Fail("frontend testpmd exited: " + r.logtail(fe.p))
    return fe


def vhu(r, sock, mac, cmd, *args, timeout=30, name="vhu", listen=False):
    argv = ["taskset", "-c", str(FE_CPU), r.vhu, "--socket", sock,
            "--mac", mac, "--timeout", str(timeout), "--ring", "1024"]
    if listen:  # the switch connects (OVS dpdkvhostuserclient)
        argv.append("--listen")
    argv.append(cmd)
    argv += [str(a) for a in args]
    return r.spawn(argv, r.uniq(name))


def vhu_result(r, p, timeout):
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        r.stop(p, signal.SIGKILL)
        raise Fail("vhu-frontend did not finish in %d s" % timeout)
    lines = [l for l in r.logtail(p, 100000).splitlines()
             if l.startswith("{")]
    if not lines:
        raise Fail("vhu-frontend printed no summary: " + r.logtail(p))
    return json.loads(lines[-1])


def rtt(r, sw, size, count, tag):
    """Ping-pong RTT between the two ports: vhu-frontend echo on port 2,
    pingpong on port 1, both on FE_CPU (they alternate, never both busy;
    they sleep on the call eventfds between frames)."""
    listen = isinstance(sw, OvsSwitch)
    e = vhu(r, sw.socks[-1], MAC1, "echo", timeout=60, name="echo",
            listen=listen)
    time.sleep(2.5 if listen else 0.5)  # OVS reconnects once a second
    if isinstance(sw, Ibvhostd):
        wait_for(lambda: sw.ctljson("show-port", sw.ports[-1])["state"]
                 == "running", "echo port running", 20)
    p = vhu(r, sw.socks[0], MAC0, "pingpong", "--count", count, "--size",
            size, "--dst", MAC1, timeout=60, name="ping", listen=listen)
    try:
        res = vhu_result(r, p, 90)
    finally:
        r.stop(e)
    out = {"size": size, "count": count, "replies": res.get("replies"),
           "p50_us": res.get("rtt_p50_us"), "p99_us": res.get("rtt_p99_us"),
           "min_us": res.get("rtt_min_us")}
    log("%-14s RTT %d B: p50 %s us p99 %s us (%s/%d replies)" %
        (tag, size, out["p50_us"], out["p99_us"], out["replies"], count))
    return out


TWO_LAYOUTS = [
    {"name": "shared-busy", "cpus": (SW_CPU, SW_CPU), "mode": "busy",
     "text": "daemon A (vm1) and daemon B (vm2) both busy-poll on CPU %d "
     "and time-share it (the switch gets one CPU, as the single daemon "
     "does); frontend on CPU %d" % (SW_CPU, FE_CPU)},
    {"name": "shared-adaptive", "cpus": (SW_CPU, SW_CPU),
     "mode": "adaptive",
     "text": "as shared-busy with poll_mode = adaptive (a daemon with "
     "nothing to do sleeps and yields the CPU to the other)"},
    {"name": "split-busy", "cpus": (SW_CPU, FE_CPU), "mode": "busy",
     "text": "daemon A busy-polls alone on CPU %d; daemon B busy-polls on "
     "CPU %d and time-shares it with the frontend" % (SW_CPU, FE_CPU)},
]


def two_daemons(r, lay, sizes, warmup, window):
    """The cross-host path: two ibvhostd (two emulated hosts, LIDs 1 and
    2), one port each; the frontend loop runs through both."""
    fab = "two%d" % r.n
    A = Ibvhostd(r, tag="hostA-" + lay["name"], lid=1, fabric=fab,
                 ports=("vm1",), cpu=lay["cpus"][0], poll_mode=lay["mode"])
    B = Ibvhostd(r, tag="hostB-" + lay["name"], lid=2, fabric=fab,
                 ports=("vm2",), cpu=lay["cpus"][1], poll_mode=lay["mode"])
    out = []
    try:
        for size in sizes:
            ca0, cb0 = A.counters(), B.counters()
            fe = Frontend(r, A.socks[0], B.socks[0], size, "two")
            try:
                wait_for(lambda: A.ctljson("show-port", "vm1")["state"] ==
                         "running" and B.ctljson("show-port", "vm2")
                         ["state"] == "running", "two-daemon ports", 20)
                m = fe.loop_rate(warmup, window,
                                 A.busy_threads() + B.busy_threads())
            finally:
                fe.close()
            ca1, cb1 = A.counters(), B.counters()
            d = {k: ca1[k] - ca0[k] + cb1[k] - cb0[k] for k in ca1}
            m.update(size=size, layout=lay["name"], layout_text=lay["text"],
                     flooded=d.get("flooded", 0),
                     drops=sum(v for k, v in d.items()
                               if k.startswith("drop")))
            log("two daemons %-15s %5d B: %9.0f frames/s" %
                (lay["name"], size, m["fps"]))
            out.append(m)
    finally:
        A.close()
        B.close()
    return out


def fabric_drops(r, sw):
    """Messages the emulated fabric dropped because the receiving QP had
    no receive posted (ibemu_stat drop_no_recv, all nodes)."""
    env = dict(os.environ, IBEMU_SHM_DIR=r.dir)
    try:
        out = subprocess.run([os.path.join(r.ibemu, "ibemu_stat"), "-f",
                              sw.fabric, "-j"], capture_output=True,
                             text=True, timeout=10, env=env)
        return sum(n.get("drop_no_recv", 0)
                   for n in json.loads(out.stdout)["nodes"])
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return 0


def threads_named(pid, prefixes):
    """[(pid, tid)] of the threads of pid whose name starts with one of
    prefixes."""
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                if f.read().strip().startswith(tuple(prefixes)):
                    out.append((pid, int(t)))
    except OSError:
        pass
    return out


def threads_times(threads):
    run = wait = 0.0
    for pid, tid in threads:
        try:
            a, b = thread_times(pid, tid)
        except OSError:
            continue
        run, wait = run + a, wait + b
    return run, wait


def thread_times(pid, tid):
    """(seconds on a CPU, seconds runnable but waiting for one): the
    scheduler's own accounting (/proc/PID/task/TID/schedstat), finer than
    the tick-based utime/stime of .../stat. A busy poller on a CPU shared
    with other work runs less than 100 %; run + wait is what it wants."""
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        run, wait = f.read().split()[:2]
    return int(run) / 1e9, int(wait) / 1e9


def cpu_window(pid, tid, seconds):
    r0, w0 = thread_times(pid, tid)
    t0 = time.monotonic()
    time.sleep(seconds)
    r1, w1 = thread_times(pid, tid)
    dt = time.monotonic() - t0
    return round(100 * (r1 - r0) / dt, 1), round(100 * (r1 - r0 + w1 - w0)
                                                 / dt, 1)


def cpu_at_rates(r, mode, rates, seconds):
    """Polling thread CPU% of one ibvhostd at a set frame rate: vhu send
    on port 1 -> vhu recv on port 2 (both sleeping frontends on FE_CPU)."""
    sw = Ibvhostd(r, tag="cpu-" + mode, poll_mode=mode, fabric="cpu" + mode)
    out = []
    try:
        pid, tid = sw.poll_tid()
        # teach port 1 where MAC1 is (a few frames port 2 -> port 1), so
        # that the measured frames go point to point, not to the group
        ln = vhu(r, sw.socks[0], MAC0, "recv", "--count", 5, timeout=20,
                 name="teach-rx")
        wait_for(lambda: sw.ctljson("show-port", sw.ports[0])["state"]
                 == "running", "port 1 running", 20)
        tn = vhu(r, sw.socks[-1], MAC1, "send", "--count", 5, "--size", 64,
                 "--dst", MAC0, "--rate", 1000, timeout=20, name="teach-tx")
        vhu_result(r, tn, 30)
        vhu_result(r, ln, 30)
        for rate in rates:
            if rate == 0:
                run, want = cpu_window(pid, tid, seconds)
                out.append({"mode": mode, "rate": 0, "cpu_pct": run,
                            "cpu_wanted_pct": want, "frames": 0})
                log("cpu %-8s %6d frames/s: polling thread %.1f %% CPU "
                    "(%.1f %% with run-queue wait)" % (mode, 0, run, want))
                continue
            n = int(rate * seconds)
            tx0 = sw.ctljson("show-port", sw.ports[0])["counters"]
            rx0 = sw.ctljson("show-port", sw.ports[-1])["counters"]
            rx = vhu(r, sw.socks[-1], MAC1, "recv", "--count", n,
                     timeout=seconds + 30, name="recv")
            wait_for(lambda: sw.ctljson("show-port", sw.ports[-1])["state"]
                     == "running", "recv port", 20)
            tx = vhu(r, sw.socks[0], MAC0, "send", "--count", n, "--size",
                     64, "--dst", MAC1, "--rate", rate,
                     timeout=seconds + 30, name="send")
            wait_for(lambda: sw.ctljson("show-port", sw.ports[0])["state"]
                     == "running", "send port", 20)
            time.sleep(min(1.0, seconds / 4))
            run, want = cpu_window(pid, tid, seconds / 2)
            fab0 = fabric_drops(r, sw)
            vhu_result(r, tx, seconds + 40)
            time.sleep(0.5)
            tx1 = sw.ctljson("show-port", sw.ports[0])["counters"]
            rx1 = sw.ctljson("show-port", sw.ports[-1])["counters"]
            r.stop(rx)
            out.append({"mode": mode, "rate": rate, "cpu_pct": run,
                        "cpu_wanted_pct": want,
                        "frames": tx1["tx_frames"] - tx0["tx_frames"],
                        "received": rx1["rx_frames"] - rx0["rx_frames"],
                        "flooded": tx1["flooded"] - tx0["flooded"],
                        "fabric_drop_no_recv": fabric_drops(r, sw) - fab0})
            log("cpu %-8s %6d frames/s: polling thread %.1f %% CPU "
                "(%.1f %% with run-queue wait)" % (mode, rate, run, want))
        # latency cost of waking: RTT at a low rate (one ping at a time)
        lat = rtt(r, sw, 64, 200, "rtt-" + mode)
        lat["mode"] = mode
    finally:
        sw.close()
    return out, lat


# ---- callgrind ---------------------------------------------------------

# Source functions of the daemon by direction. Inlining moves code
# between compiled symbols, so costs are attributed by SOURCE LINE: each
# line belongs to the C function that encloses it in the source file.
TX_FNS = {"port_tx", "tx_sges", "tx_return", "tx_complete", "tx_hdr",
          "vnet_tx_parse", "wire_hdr_build", "fdb_lookup"}
RX_FNS = {"dp_port_refill_rx", "rx_next_head", "rx_unget", "spare_push",
          "spare_count", "rx_hdr", "rx_learn", "rx_deliver", "rx_complete",
          "wire_hdr_parse", "vnet_rx_spread", "vnet_rx_write_hdr",
          "fdb_learn", "vq_segs_advance", "vnet_csum_complete"}
FN_DEF = re.compile(r"^[A-Za-z_][\w \t\*]*?\b([A-Za-z_]\w*)\s*\(")


class SourceMap:
    """(file, line) -> name of the enclosing C function definition."""

    def __init__(self):
        self.files = {}

    def fn(self, path, line):
        if path not in self.files:
            starts = []
            try:
                with open(path) as f:
                    lines = f.read().split("\n")
            except OSError:
                lines = []
            for i, l in enumerate(lines):
                m = FN_DEF.match(l)
                if m and not l.rstrip().endswith(";") and "=" not in l and \
                        not l.startswith(("typedef", "#")):
                    starts.append((i + 1, m.group(1)))
            self.files[path] = starts
        name = None
        for start, n in self.files[path]:
            if start > line:
                break
            name = n
        return name


def parse_callgrind(path):
    """A callgrind.out file (--compress-pos=no, --dump-line=yes).
    Returns (funcs, calls, lines):
      funcs: symbol -> {"ob", "self", "calls_in"}
      calls: (caller symbol, callee symbol) -> inclusive Ir
      lines: (caller symbol, file, line, callee or None) -> Ir
             (self cost when callee is None, else the call's inclusive)."""
    obs, fns, files = {}, {}, {}
    funcs, calls, lines = {}, {}, {}
    cur_ob = cur_fn = cur_file = cur_fl = None
    cob = cfn = None
    ncalls = 0
    pending_call = False

    def name(table, spec):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?", spec)
        if not m:
            return spec
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), m.group(1))

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit():
                parts = line.split()
                pos = int(parts[0])
                ir = int(parts[1]) if len(parts) > 1 else 0
                if pending_call:
                    calls[(cur_fn, cfn)] = calls.get((cur_fn, cfn), 0) + ir
                    k = (cur_fn, cur_file, pos, cfn)
                    lines[k] = lines.get(k, 0) + ir
                    funcs[cfn]["calls_in"] += ncalls
                    pending_call = False
                    cfn = cob = None
                else:
                    funcs[cur_fn]["self"] += ir
                    k = (cur_fn, cur_file, pos, None)
                    lines[k] = lines.get(k, 0) + ir
                continue
            key, _, val = line.partition("=")
            if key == "ob":
                cur_ob = name(obs, val)
            elif key == "fl":
                cur_fl = cur_file = name(files, val)
            elif key in ("fi", "fe"):
                cur_file = name(files, val)
            elif key in ("cfi", "cfl"):
                name(files, val)
            elif key == "fn":
                cur_fn = name(fns, val)
                cur_file = cur_fl
                funcs.setdefault(cur_fn, {"ob": cur_ob, "self": 0,
                                          "calls_in": 0})
            elif key == "cob":
                cob = name(obs, val)
            elif key == "cfn":
                cfn = name(fns, val)
                funcs.setdefault(cfn, {"ob": cob or cur_ob, "self": 0,
                                       "calls_in": 0})
            elif key == "calls":
                ncalls = int(val.split()[0])
                pending_call = True
    return funcs, calls, lines


def own_inclusive(funcs, calls, own):
    """For every symbol: (inclusive Ir counting only symbols for which
    own(name) is true, total inclusive Ir); a callee's own share is
    assumed the same for all its callers."""
    by_caller = {}
    for (a, b), ir in calls.items():
        by_caller.setdefault(a, []).append((b, ir))
    memo = {}

    def go(fn):
        if fn in memo:
            return memo[fn]
        memo[fn] = (0, 0)  # cycle guard
        s = funcs.get(fn, {"self": 0})["self"]
        o_in = s if own(fn) else 0
        t_in = s
        for b, ir in by_caller.get(fn, []):
            if b == fn:
                continue
            bo, bt = go(b)
            t_in += ir
            o_in += ir * (bo / bt) if bt else 0
        memo[fn] = (o_in, t_in)
        return memo[fn]

    for fn in list(funcs):
        go(fn)
    return memo


def attribute(funcs, calls, lines, own, roots):
    """Own-code Ir of the polling thread split by direction.
    A line counts for TX or RX when the C function that encloses it in the
    source (inlined code counted where it is written) is in TX_FNS/RX_FNS;
    a call from such a line counts the callee's whole own share there; a
    call from any other line passes the callee's own split on. Returns
    ({"tx","rx","other"} for the roots, {source function: self Ir})."""
    inc = own_inclusive(funcs, calls, own)
    src = SourceMap()
    by_sym = {}
    for (sym, path, line, callee), ir in lines.items():
        by_sym.setdefault(sym, []).append((path, line, callee, ir))
    by_src = {}
    memo = {}

    def direction(path, line, sym):
        fn = (src.fn(path, line) if path else None) or sym
        return fn, ("tx" if fn in TX_FNS else "rx" if fn in RX_FNS
                    else None)

    def split(sym):
        if sym in memo:
            return memo[sym]
        memo[sym] = {"tx": 0.0, "rx": 0.0, "other": 0.0}
        out = {"tx": 0.0, "rx": 0.0, "other": 0.0}
        for path, line, callee, ir in by_sym.get(sym, []):
            fn, d = direction(path, line, sym)
            if callee is None:
                if own(sym):
                    out[d or "other"] += ir
                continue
            o, t = inc.get(callee, (0, 0))
            if not t or not o:
                continue
            if d:
                out[d] += ir * o / t
            else:
                sub = split(callee)
                tot = sum(sub.values())
                for k in out:
                    out[k] += ir * o / t * (sub[k] / tot if tot else 0)
        memo[sym] = out
        return out

    for (sym, path, line, callee), ir in lines.items():
        if callee is None and own(sym):
            fn = direction(path, line, sym)[0]
            by_src[fn] = by_src.get(fn, 0) + ir
    tot = {"tx": 0.0, "rx": 0.0, "other": 0.0}
    for r in roots:
        for k, v in split(r).items():
            tot[k] += v
    return tot, by_src, inc


# calls per forwarded frame worth knowing (batching): verbs calls into the
# HCA library and the per-round entry points
CALLS_PER_FRAME = ["ibemu_post_send", "ibemu_post_recv", "ibemu_poll_cq",
                   "port_tx", "dp_port_refill_rx", "vq_walk_chain",
                   "fdb_learn", "clock_gettime", "eventfd_write", "write"]


def callgrind_run(r, sizes, frames_goal, log_cb=log):
    """Instructions per frame of ibvhostd's own code, per direction, at
    each size: the daemon under callgrind (collection off), the frontend
    loop running, collection on for a counted window."""
    vg = shutil.which("valgrind")
    if not vg:
        raise Fail("valgrind not installed")
    out = []
    for size in sizes:
        cgout = r.path("callgrind.%d.out" % size)
        sw = Ibvhostd(r, tag="cg%d" % size, fabric="cg%d" % size,
                      valgrind=[vg, "--tool=callgrind",
                                "--instr-atstart=no",
                                "--callgrind-out-file=" + cgout,
                                "--compress-pos=no",
                                "--dump-line=yes"])
        fe = None
        try:
            fe = Frontend(r, sw.socks[0], sw.socks[1], size, "cg")
            wait_for(lambda: all(sw.ctljson("show-port", p)["state"]
                                 == "running" for p in sw.ports),
                     "ports running (callgrind)", 60)
            cgc = lambda *x: subprocess.run(
                ["callgrind_control"] + list(x) + [str(sw.p.pid)],
                capture_output=True, timeout=60)
            # part 1: idle rounds (frontend attached, nothing sent), to
            # separate the cost of a round from the cost of a frame
            cgc("-i", "on")
            time.sleep(1.5)
            cgc("-d")
            fe.cmd("start tx_first %d" % CG_BURSTS)
            time.sleep(1.5)
            cgc("-z")
            c0 = sw.counters()
            t0 = time.monotonic()
            while time.monotonic() - t0 < 30:
                time.sleep(0.5)
                c = sw.counters()
                if c["tx_frames"] - c0["tx_frames"] >= frames_goal:
                    break
            cgc("-d")  # part 2: the counted window
            c1 = sw.counters()
            cgc("-i", "off")
            fe.cmd("stop")
        finally:
            if fe:
                fe.close()
            sw.close()
        # the window's counters bracket the collection (reads take ~ms)
        tx = c1["tx_frames"] - c0["tx_frames"]
        rx = c1["rx_frames"] - c0["rx_frames"]
        parts = {}
        for fpath in glob.glob(cgout + "*"):
            with open(fpath) as f:
                head = f.read(2000)
            m = re.search(r"^part: (\d+)", head, re.M)
            parts[int(m.group(1)) if m else 0] = fpath
        if 1 not in parts or 2 not in parts:
            raise Fail("callgrind wrote no profile parts: %s %s" %
                       (sorted(parts), r.logtail(sw.p)))

        def analyse(fpath):
            funcs, calls, lines = parse_callgrind(fpath)
            own = lambda fn: (funcs.get(fn, {}).get("ob") or "").endswith(
                "/ibvhostd")
            roots = [x for x in ("core_main",) if x in funcs] or [
                x for x in ("dp_core_round", "dp_core_sleep") if x in funcs]
            split, by_src, inc = attribute(funcs, calls, lines, own, roots)
            total = sum(inc.get(x, (0, 0))[1] for x in roots)
            rounds = funcs.get("dp_core_round", {}).get("calls_in", 0)
            cpf = {k: funcs[k]["calls_in"] for k in CALLS_PER_FRAME
                   if k in funcs}
            return split, by_src, total, rounds, cpf

        isplit, _, itotal, irounds, _ = analyse(parts[1])
        split, by_src, thread_total, rounds, cpf = analyse(parts[2])
        frames = max(1, tx)
        thread_own = sum(split.values())
        # subtract what the same number of empty rounds costs
        per_idle = {k: v / irounds if irounds else 0
                    for k, v in isplit.items()}
        net = {k: max(0.0, split[k] - per_idle[k] * rounds) for k in split}
        res = {"size": size, "tx_frames": tx, "rx_frames": rx,
               "polling_rounds": rounds, "idle_rounds": irounds,
               "frames_per_round": round(tx / rounds, 2) if rounds else None,
               "ir_per_idle_round": round(sum(per_idle.values()), 1),
               "ir_per_frame_tx": round(net["tx"] / frames, 1),
               "ir_per_frame_rx": round(net["rx"] / frames, 1),
               "ir_per_frame_round": round(net["other"] / frames, 1),
               "ir_per_frame_all": round(sum(net.values()) / frames, 1),
               "ir_per_frame_all_raw": round(thread_own / frames, 1),
               "ir_per_frame_tx_raw": round(split["tx"] / frames, 1),
               "ir_per_frame_rx_raw": round(split["rx"] / frames, 1),
               "ir_per_frame_not_own": round((thread_total - thread_own)
                                             / frames, 1)}
        res["calls_per_frame"] = {k: round(v / frames, 3)
                                  for k, v in cpf.items()}
        top = sorted(((v, k) for k, v in by_src.items()), reverse=True)
        res["top_self"] = [{"fn": k, "ir_per_frame": round(v / frames, 1)}
                           for v, k in top[:15]]
        out.append(res)
        log_cb("callgrind %4d B: %d frames, TX %.1f, RX %.1f, other %.1f, "
               "all own %.1f (raw %.1f), ibemu+libc %.1f instructions/frame,"
               " %s frames/round, %.0f per empty round" % (
                   size, tx, res["ir_per_frame_tx"], res["ir_per_frame_rx"],
                   res["ir_per_frame_round"], res["ir_per_frame_all"],
                   res["ir_per_frame_all_raw"], res["ir_per_frame_not_own"],
                   res["frames_per_round"], res["ir_per_idle_round"]))
    return out


# ---- output ------------------------------------------------------------

def write_outputs(out, res):
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    rows = []
    for sw, lst in res.get("loop", {}).items():
        for m in lst:
            rows.append({"test": "loop", "switch": sw, "size": m["size"],
                         "frames_per_s": m["fps"],
                         "dir0_fps": m["fps_dir"][0],
                         "dir1_fps": m["fps_dir"][1],
                         "sw_cpu_pct": m.get("sw_cpu_pct"),
                         "fe_cpu_pct": m.get("fe_cpu_pct"),
                         "frames_per_sw_cpu_s": m.get("fps_per_cpu"),
                         "flooded": m.get("flooded", ""),
                         "drops": m.get("drops", "")})
    for m in res.get("two_daemons", []):
        rows.append({"test": "two-daemons",
                     "switch": "ibvhostd x2 " + m["layout"],
                     "size": m["size"], "frames_per_s": m["fps"],
                     "dir0_fps": m["fps_dir"][0], "dir1_fps": m["fps_dir"][1],
                     "sw_cpu_pct": m.get("sw_cpu_pct"),
                     "fe_cpu_pct": m.get("fe_cpu_pct"),
                     "frames_per_sw_cpu_s": m.get("fps_per_cpu"),
                     "flooded": m.get("flooded", ""),
                     "drops": m.get("drops", "")})
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["test", "switch", "size",
                                          "frames_per_s", "dir0_fps",
                                          "dir1_fps", "sw_cpu_pct",
                                          "fe_cpu_pct", "frames_per_sw_cpu_s",
                                          "flooded", "drops"])
        w.writeheader()
        w.writerows(rows)
    if res.get("callgrind"):
        with open(os.path.join(out, "instructions.csv"), "w",
                  newline="") as f:
            w = csv.writer(f)
            w.writerow(["size", "tx_frames", "ir_per_frame_tx",
                        "ir_per_frame_rx", "ir_per_frame_round",
                        "ir_per_frame_all", "ir_per_frame_not_own"])
            for c in res["callgrind"]:
                w.writerow([c["size"], c["tx_frames"], c["ir_per_frame_tx"],
                            c["ir_per_frame_rx"], c["ir_per_frame_round"],
                            c["ir_per_frame_all"],
                            c["ir_per_frame_not_own"]])


def table(res):
    L = []
    L.append("Layout: %s" % res["layout"])
    L.append("Load average at start / end: %s / %s (other work on this "
             "machine disturbs absolute figures; ratios are measured "
             "interleaved)" % (res.get("load_start"), res.get("load_end")))
    loop = res.get("loop", {})
    if loop:
        sws = list(loop)
        L.append("")
        L.append("Frames/s forwarded by the switch (loop: both directions "
                 "at once, sum of both ports); CPU = share of a CPU the "
                 "switch's busy thread(s) / the frontend's forwarding thread "
                 "got in the window; per CPU-s = frames per second of CPU "
                 "the switch got; ratio = ibvhostd / baseline")
        L.append("  %-6s %-14s %10s %7s %7s %12s %9s %11s" % (
            "size", "switch", "Mframes/s", "sw CPU", "fe CPU",
            "Mfr/CPU-s", "ratio", "ratio/CPU"))
        sizes = [m["size"] for m in loop[sws[0]]]
        for i, size in enumerate(sizes):
            ib = loop.get("ibvhostd", [None] * len(sizes))
            ib = ib[i] if i < len(ib) else None
            for sname in sws:
                if i >= len(loop[sname]):
                    continue
                m = loop[sname][i]
                ratio = ratio_c = ""
                if ib and sname != "ibvhostd" and m["fps"]:
                    ratio = "%.2f" % (ib["fps"] / m["fps"])
                    if ib.get("fps_per_cpu") and m.get("fps_per_cpu"):
                        ratio_c = "%.2f" % (ib["fps_per_cpu"] /
                                            m["fps_per_cpu"])
                L.append("  %-6d %-14s %10.3f %6s%% %6s%% %12s %9s %11s" % (
                    size, sname, m["fps"] / 1e6, m.get("sw_cpu_pct"),
                    m.get("fe_cpu_pct"),
                    "%.3f" % (m["fps_per_cpu"] / 1e6)
                    if m.get("fps_per_cpu") else "-", ratio, ratio_c))
        L.append("(median of %d interleaved rounds; every round: %s)" % (
            res.get("rounds", 1), "; ".join(
                "%s %s" % (s, " ".join("/".join("%.2fM" % (f / 1e6)
                                                for f in m.get("fps_rounds",
                                                               [m["fps"]]))
                                       for m in loop[s])) for s in sws)))
        if "ibvhostd" in loop:
            L.append("ibvhostd one direction (port1->port2 / port2->port1) "
                     "and counters:")
            for m in loop["ibvhostd"]:
                L.append("  %5d B: %9d / %9d frames/s, flooded %s, drops "
                         "%s, bounce %s" % (m["size"], m["fps_dir"][0],
                                            m["fps_dir"][1], m.get("flooded"),
                                            m.get("drops"), m.get("bounce")))
    if res.get("two_daemons"):
        L.append("")
        L.append("Two daemons (two emulated hosts, the cross-host path), "
                 "frames/s forwarded:")
        seen = []
        for m in res["two_daemons"]:
            if m["layout"] not in seen:
                seen.append(m["layout"])
                L.append("  layout %s: %s" % (m["layout"], m["layout_text"]))
            L.append("    %-16s %5d B: %9.0f frames/s (%d / %d per "
                     "direction), flooded %s, drops %s" % (
                         m["layout"], m["size"], m["fps"], m["fps_dir"][0],
                         m["fps_dir"][1], m.get("flooded"), m.get("drops")))
    if res.get("rtt"):
        L.append("")
        L.append("RTT (vhu-frontend pingpong <-> echo, sleeping frontends "
                 "on CPU %d):" % FE_CPU)
        for sw, lst in res["rtt"].items():
            for m in lst:
                L.append("  %-16s %5d B: p50 %s us, p99 %s us, min %s us "
                         "(%s/%s)" % (sw, m["size"], m["p50_us"],
                                      m["p99_us"], m["min_us"], m["replies"],
                                      m["count"]))
    if res.get("callgrind"):
        L.append("")
        L.append("Instructions per frame, ibvhostd's own code (callgrind, "
                 "ibemu/libc/DPDK excluded):")
        L.append("(per forwarded frame: each one is sent once (TX) and "
                 "received once (RX) by the daemon; 'other' = polling loop, "
                 "CQ dispatch, used-ring publish; target <= 150 per "
                 "direction)")
        L.append("  %-6s %8s %8s %8s %10s %14s %12s" % (
            "size", "TX", "RX", "other", "all own", "ibemu+libc", "frames/round"))
        for c in res["callgrind"]:
            L.append("  %-6d %8.1f %8.1f %8.1f %10.1f %14.1f %12s" % (
                c["size"], c["ir_per_frame_tx"], c["ir_per_frame_rx"],
                c["ir_per_frame_round"], c["ir_per_frame_all"],
                c["ir_per_frame_not_own"], c["frames_per_round"]))
        for c in res["callgrind"]:
            if (c.get("frames_per_round") or 0) < 8:
                L.append("  note: at %d B the window averaged %s frames per "
                         "polling round: per-round costs are not amortised "
                         "(the frontend or the circulating bursts left most "
                         "rounds empty); the per-frame cost is the figure of "
                         "a window with full bursts (rerun --only cg)" % (
                             c["size"], c["frames_per_round"]))
        for c in res["callgrind"]:
            L.append("  calls per frame at %d B: " % c["size"] + ", ".join(
                "%s %s" % kv for kv in c.get("calls_per_frame", {}).items()))
        for c in res["callgrind"]:
            L.append("  top self cost at %d B: " % c["size"] + ", ".join(
                "%s %.1f" % (t["fn"], t["ir_per_frame"])
                for t in c["top_self"][:10]))
    if res.get("cpu"):
        L.append("")
        L.append("Polling thread CPU use (64 B frames, vhu send -> recv):")
        for m in res["cpu"]:
            L.append("  %-9s %7d frames/s: %5.1f %% CPU on its core "
                     "(%5.1f %% counting run-queue wait); daemon sent %s (flooded %s), delivered %s, fabric dropped (no receive posted) %s" % (
                         m["mode"], m["rate"], m["cpu_pct"],
                         m["cpu_wanted_pct"], m.get("frames", "-"),
                         m.get("flooded", "-"), m.get("received", "-"),
                         m.get("fabric_drop_no_recv", "-")))
        for m in res.get("wake_rtt", []):
            L.append("  %-9s RTT at low rate (64 B): p50 %s us, p99 %s us" %
                     (m["mode"], m["p50_us"], m["p99_us"]))
    for s, why in res.get("skipped", {}).items():
        L.append("skipped %s: %s" % (s, why))
    return "\n".join(L) + "\n"


def plot(out, res):
    gp = shutil.which("gnuplot")
    loop = res.get("loop", {})
    if not gp or not loop:
        return None
    dat = os.path.join(out, "plot.dat")
    sws = list(loop)
    sizes = [m["size"] for m in loop[sws[0]]]
    cg = {c["size"]: c for c in res.get("callgrind", [])}
    two = {m["size"]: m["fps"] for m in res.get("two_daemons", [])
           if m["layout"] == "shared-busy"}
    with open(dat, "w") as f:
        f.write("# size " + " ".join(sws) + " two_daemons ir_tx ir_rx " +
                " ".join(w + "_per_cpu" for w in sws) + "\n")
        for i, sz in enumerate(sizes):
            vals = [loop[w][i]["fps"] / 1e6 if i < len(loop[w]) else 0
                    for w in sws]
            pcpu = [(loop[w][i].get("fps_per_cpu") or 0) / 1e6
                    if i < len(loop[w]) else 0 for w in sws]
            c = cg.get(sz)
            f.write("%d %s %s %s %s %s\n" % (
                sz, " ".join("%.4f" % v for v in vals),
                "%.4f" % (two[sz] / 1e6) if sz in two else "NaN",
                c["ir_per_frame_tx"] if c else "NaN",
                c["ir_per_frame_rx"] if c else "NaN",
                " ".join("%.4f" % v for v in pcpu)))
        # callgrind sizes that are not loop sizes
        for sz, c in sorted(cg.items()):
            if sz not in sizes:
                f.write("%d %s NaN %s %s %s\n" % (
                    sz, " ".join("NaN" for _ in sws), c["ir_per_frame_tx"],
                    c["ir_per_frame_rx"], " ".join("NaN" for _ in sws)))
    n = len(sws)
    png = os.path.join(out, "bench.png")
    cmds = ["set terminal pngcairo size 1500,450 noenhanced"
            if _has_cairo(gp) else "set terminal png size 1500,450",
            "set output '%s'" % png, "set multiplot layout 1,3",
            "set logscale x 2", "set grid", "set key top right",
            "set xlabel 'frame size (bytes)'", "set datafile missing 'NaN'",
            "set ylabel 'Mframes/s forwarded (2 directions)'",
            "set title 'Frames/s (switch on CPU %d, frontend on CPU %d)'"
            % (SW_CPU, FE_CPU),
            "set yrange [0:*]",
            "plot " + ", ".join(
                "'%s' using 1:%d with linespoints title '%s'" % (dat, i + 2, w)
                for i, w in enumerate(sws)) +
            (", '%s' using 1:%d with linespoints title 'ibvhostd x2 "
             "(two hosts, shared CPU)'" % (dat, n + 2) if two else ""),
            "set ylabel 'Mframes per CPU-second of the switch'",
            "set title 'Frames per second of CPU the switch got'",
            "plot " + ", ".join(
                "'%s' using 1:%d with linespoints title '%s'" % (
                    dat, n + 5 + i, w) for i, w in enumerate(sws)),
            "set ylabel 'instructions per frame (daemon code)'",
            "set title 'ibvhostd instructions/frame (callgrind)'",
            "set key center right",
            "plot '%s' using 1:%d with linespoints title 'TX', "
            "'%s' using 1:%d with linespoints title 'RX', "
            "150 with lines dashtype 2 title 'target 150'" % (
                dat, n + 3, dat, n + 4),
            "unset multiplot"]
    g = subprocess.run([gp], input="\n".join(cmds) + "\n", text=True,
                       capture_output=True, timeout=60)
    if g.returncode or not os.path.exists(png):
        log("gnuplot failed: %s" % g.stderr)
        return None
    return png


def _has_cairo(gp):
    g = subprocess.run([gp, "-e", "set terminal"], capture_output=True,
                       text=True, timeout=20)
    return "pngcairo" in g.stdout + g.stderr


# ---- main --------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--out")
    ap.add_argument("--sizes", default="64,256,1500,4088")
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=2,
                    help="each switch is measured this many times, "
                    "interleaved; the table shows the median")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="")
    ap.add_argument("--switches", default="ibvhostd,testpmd-vhost,ovs-dpdk")
    ap.add_argument("--poll-modes", default="busy,adaptive")
    ap.add_argument("--cg-sizes", default="64,1500")
    ap.add_argument("--cg-frames", type=int, default=100000)
    ap.add_argument("--smoke", action="store_true",
                    help="a few seconds: ibvhostd loop at 64 B only")
    a = ap.parse_args()
    parts = {"loop", "two", "rtt", "cg", "cpu"}
    if a.only:
        parts = set(a.only.split(","))
    parts -= set(a.skip.split(","))
    sizes = [int(s) for s in a.sizes.split(",")]
    switches = a.switches.split(",")
    if a.smoke:
        parts, sizes, switches = {"loop"}, [64], ["ibvhostd"]
        a.window, a.warmup, a.rounds = 1.0, 0.5, 1
    if os.cpu_count() < 2:
        raise SystemExit("bench: needs 2 CPUs (frontend and switch)")
    out = os.path.abspath(a.out or os.path.join(a.build, "bench"))
    os.makedirs(out, exist_ok=True)
    r = Run(a.build, out)
    if not r.testpmd:
        raise SystemExit("bench: dpdk-testpmd not installed")

    def on_signal(sig, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    res = {"layout": "frontend dpdk-testpmd (2 virtio-user ports, io fwd, "
           "tx_first %dx32 per port) on CPU %d; switch under test on CPU %d"
           % (BURSTS, FE_CPU, SW_CPU), "started": time.strftime("%FT%T"),
           "skipped": {}, "loop": {}, "rounds": a.rounds,
           "load_start": [round(x, 2) for x in os.getloadavg()]}
    t_start = time.monotonic()
    try:
        if "loop" in parts:
            samples = {}
            for rnd in range(a.rounds):
                for name in switches:
                    if name in res["skipped"]:
                        continue
                    sw = None
                    try:
                        sw = start_switch(r, name)
                        ms = loop_sizes(r, sw, sizes, a.warmup, a.window,
                                        name, server_fe=(name == "ovs-dpdk"))
                        for m in ms:
                            samples.setdefault(name, {}).setdefault(
                                m["size"], []).append(m)
                        if "rtt" in parts and rnd == 0:
                            res.setdefault("rtt", {})[name] = [
                                rtt(r, sw, s, 2000, name) for s in (64, 1500)]
                    except (Fail, OSError, subprocess.SubprocessError,
                            ValueError, KeyError) as e:
                        log("%s: %s" % (name, e))
                        res["skipped"][name] = str(e)[:2000]
                    finally:
                        if sw:
                            sw.close()
            for name, by_size in samples.items():
                res["loop"][name] = [median_sample(by_size[s])
                                     for s in sizes if s in by_size]
        if "two" in parts:
            res["two_daemons"] = []
            for lay in TWO_LAYOUTS:
                if lay["mode"] not in a.poll_modes.split(","):
                    continue
                res["two_daemons"] += two_daemons(
                    r, lay, sizes if lay is TWO_LAYOUTS[0] else
                    [x for x in sizes if x in (64, 1500)] or sizes[:1],
                    a.warmup, a.window)
        if "cg" in parts:
            try:
                res["callgrind"] = callgrind_run(
                    r, [int(s) for s in a.cg_sizes.split(",")], a.cg_frames)
            except Fail as e:
                res["skipped"]["callgrind"] = str(e)
        if "cpu" in parts:
            res["cpu"], res["wake_rtt"] = [], []
            for mode in a.poll_modes.split(","):
                c, lat = cpu_at_rates(r, mode, [0, 10000, 100000], 4.0)
                res["cpu"] += c
                res["wake_rtt"].append(lat)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        r.cleanup()
        sys.exit(130)
    except Fail as e:
        log("FAILED: %s" % e)
        r.cleanup()
        sys.exit(1)
    except BaseException:
        r.cleanup()  # a bug in the harness must not leave processes behind
        raise
    res["seconds"] = round(time.monotonic() - t_start, 1)
    res["load_end"] = [round(x, 2) for x in os.getloadavg()]
    r.cleanup()
    write_outputs(out, res)
    png = plot(out, res)
    txt = table(res)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(txt)
    print(txt)
    print("bench: results in %s (results.json, results.csv, table.txt%s)" %
          (out, ", bench.png" if png else ""))
    if a.smoke:
        for f in ("results.csv", "results.json", "table.txt"):
            if not os.path.getsize(os.path.join(out, f)):
                print("bench: smoke: %s is empty" % f)
                sys.exit(1)
        m = res["loop"].get("ibvhostd", [{}])[0]
        if not m.get("fps") or m.get("frames", 0) < 1000:
            print("bench: smoke: no frames flowed")
            sys.exit(1)
        if m.get("flooded", 0) > 4 * BURSTS * 32:
            print("bench: smoke: %d frames flooded" % m["flooded"])
            sys.exit(1)


if __name__ == "__main__":
    main()
