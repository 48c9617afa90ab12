#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Inside the Soft-RoCE VM (run by softroce_test.py's /init, as root, in a
chroot of the host's root over 9p): real kernel verbs on rdma_rxe.

usage: guest.py BUILD_DIR [OPTIONS]   (OPTIONS comma-separated, or -)

1. A veth pair (iproute2's ip: busybox's applet cannot make veth) with MTU
   4200 on both ends (rxe's IB MTU follows the netdev's: 4096 needs more
   than 4096 + headers), 10.77.0.1 and .2, accept_local=1 and rp_filter=0
   (both ends are in one namespace: each receives packets from a local
   address); rxe0 on veth0, rxe1 on veth1 (`rdma link add`).
2. Unmodified ibv_ud_pingpong, server on rxe0, client on rxe1, on the
   RoCE v2 IPv4 GID; the veth counters prove the packets crossed it.
3. Two ibvhostd, A on rxe0 and B on rxe1 (gid_index of that GID),
   A: a1, a2 (segment blue); B: b1 (blue), b3 (red); vhu-frontend guests:
   - unicast   frames A->B and B->A arrive intact (--verify); the first
               burst floods (rdma_cm multicast group), the reverse is
               point to point; FDBs learned the peer by GID, LID 0, QPN
   - segments  broadcasts on blue never reach b3 (red)
   - broadcast a broadcast from a1 reaches a2 and b1 exactly once each,
               not a1
   - rtt       vhu-frontend pingpong a1 <-> b1 (echo)
   - testpmd   dpdk-testpmd (virtio-user) frontends pass frames both ways

Prints `SR: STAGE name seconds`, `SR: PASS|FAIL check detail`, `SR: LOG
...` lines on stdout (the VM console). Exit status 0 when all passed.
"""
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# tests/: the same path inside the VM (a chroot of this machine's root).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import testlib  # noqa: E402
from testlib import Ctl, Fail, check  # noqa: E402

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
RDMA = shutil.which("rdma") or "/usr/bin/rdma"
ADDR = {"veth0": "10.77.0.1", "veth1": "10.77.0.2"}
MTU = 4200
MAC = {"a1": "02:00:00:00:0a:01", "a2": "02:00:00:00:0a:02",
       "b1": "02:00:00:00:0b:01", "b3": "02:00:00:00:0b:03"}
BCAST = "ff:ff:ff:ff:ff:ff"
TPMD_MAC = {"a1": "02:00:00:00:1a:01", "b1": "02:00:00:00:1b:01"}
QKEY = {"blue": 0x0b1e0001, "red": 0x0bed0002}
SEG_MTU = 9000      # above one 4096-byte message: frames are fragmented
FAILED = []


def say(*a):
    print("SR: " + " ".join(str(x) for x in a), flush=True)


def result(name, ok, detail=""):
    say("PASS" if ok else "FAIL", name, detail)
    if not ok:
        FAILED.append(name)


def sh(argv, timeout=30, check_rc=True):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise Fail("%s: exit %d: %s" % (" ".join(argv), r.returncode,
                                        (r.stderr or r.stdout).strip()[-800:]))
    return r.stdout


def wait_for(pred, what, timeout=60):
    return testlib.wait_for(pred, what, timeout)


class Stage:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t = time.monotonic()
        return self

    def __exit__(self, *exc):
        say("STAGE", self.name, "%.2f" % (time.monotonic() - self.t))
        return False


def sysfs(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def veth_packets():
    s = "/sys/class/net/%s/statistics/%s"
    return {d: int(sysfs(s % (d, "tx_packets")) or 0) +
            int(sysfs(s % (d, "rx_packets")) or 0) for d in ADDR}


# --- 1. network and rxe devices ----------------------------------------------

def setup_rxe():
    sh([IP, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1"])
    for dev, addr in ADDR.items():
        sh([IP, "link", "set", dev, "mtu", str(MTU)])
        sh([IP, "addr", "add", addr + "/24", "dev", dev])
        sh([IP, "link", "set", dev, "up"])
    for conf in ("all", "default", "veth0", "veth1"):
        write("/proc/sys/net/ipv4/conf/%s/accept_local" % conf, "1")
        write("/proc/sys/net/ipv4/conf/%s/rp_filter" % conf, "0")
    for i, dev in enumerate(ADDR):
        sh([RDMA, "link", "add", "rxe%d" % i, "type", "rxe", "netdev", dev])
    gids = {}
    for i, dev in enumerate(ADDR):
        rxe = "rxe%d" % i
        port = "/sys/class/infiniband/%s/ports/1" % rxe
        wait_for(lambda: "ACTIVE" in sysfs(port + "/state"),
                 "%s port ACTIVE" % rxe, 20)
        # The RoCE v2 GID of the netdev's IPv4 address (::ffff:a.b.c.d).
        want = ADDR[dev].split(".")
        want = "0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x" % tuple(
            int(x) for x in want)

        def find():
            for idx in range(16):
                g = sysfs("%s/gids/%d" % (port, idx))
                t = sysfs("%s/gid_attrs/types/%d" % (port, idx))
                if g == want and "v2" in t:
                    return idx
            return None
        idx = wait_for(lambda: find() is not None and (find(),),
                       "%s's RoCE v2 IPv4 GID" % rxe, 20)[0]
        gids[rxe] = (idx, want)
    info = sh(["ibv_devinfo", "-v"], timeout=30)
    mtus = re.findall(r"active_mtu:\s*(\d+)", info)
    return gids, info, mtus


# --- 2. ibv_ud_pingpong ------------------------------------------------------

def ud_pingpong(gidx, iters=500):
    before = veth_packets()
    srv = subprocess.Popen(["ibv_ud_pingpong", "-d", "rxe0", "-g", str(gidx),
                            "-n", str(iters), "-s", "2048"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    time.sleep(0.5)
    try:
        cli = None
        for _ in range(20):  # until the server listens
            cli = subprocess.run(["ibv_ud_pingpong", "-d", "rxe1", "-g",
                                  str(gidx), "-n", str(iters), "-s", "2048",
                                  "127.0.0.1"], capture_output=True,
                                 text=True, timeout=120)
            if "Couldn't connect" not in cli.stdout + cli.stderr:
                break
            time.sleep(0.3)
        so, _ = srv.communicate(timeout=60)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    after = veth_packets()
    out = cli.stdout + cli.stderr
    m = re.search(r"([\d.]+) usec/iter", out)
    crossed = min(after[d] - before[d] for d in ADDR)
    say("LOG pingpong client:", out.strip().replace("\n", " | "))
    say("LOG pingpong server:", so.strip().replace("\n", " | "))
    return (cli.returncode == 0 and srv.returncode == 0 and m is not None,
            m.group(1) if m else None, crossed, out + so)


# --- 3. two daemons ----------------------------------------------------------

class Host(Ctl):
    def __init__(self, t, name, rxe, gidx, core, ports):
        self.t, self.name = t, name
        Ctl.__init__(self, t.ctl, t.path("ctl-%s.sock" % name), name)
        self.log = t.path("%s.log" % name)
        lines = ["log_level = info", "control_socket = %s" % self.ctl_sock,
                 "ib_device = %s" % rxe, "ib_port = 1",
                 "gid_index = %d" % gidx, "main_core = %d" % core,
                 "poll_mode = %s" % ("busy" if "busy" in t.opts
                                     else "adaptive"),
                 "eal_memory_mb = 64"]
        for seg, q in QKEY.items():
            # 9000: the unicast step sends 3800-byte frames and the
            # jumbo step 9014-byte ones (three UD messages each), which a
            # segment only carries when its MTU says so (default 1500).
            lines += ["[segment %s]" % seg, "qkey = 0x%08x" % q,
                      "mtu = %d" % SEG_MTU]
        for p, seg in ports:
            lines += ["[port %s]" % p, "socket = %s" % t.path(p + ".sock"),
                      "segment = %s" % seg]
        self.conf = t.path("%s.conf" % name)
        write(self.conf, "\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([self.t.ibvhostd, "-c", self.conf],
                                     stdout=logf, stderr=logf)
        self.t.procs.append(self.proc)
        wait_for(lambda: os.path.exists(self.ctl_sock)
                 or self.proc.poll() is not None,
                 "%s's control socket" % self.name)
        check(self.proc.poll() is None, "ibvhostd %s exited %s: %s" % (
            self.name, self.proc.returncode, self.log_text()[-2000:]))

    def log_text(self):
        return sysfs(self.log)


class Test:
    def __init__(self, build):
        self.build = build
        self.ibvhostd = os.path.join(build, "daemon", "ibvhostd")
        self.ctl = os.path.join(build, "daemon", "ibvhostctl")
        self.vhu = os.path.join(build, "tests", "vhu", "vhu-frontend")
        self.dir = tempfile.mkdtemp(prefix="softroce-")
        self.procs = []
        self.n = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def frontend(self, port, cmd, *args, timeout=60, extra=(), core=0):
        argv = ["taskset", "-c", str(core), self.vhu,
                "--socket", self.path(port + ".sock"), "--mac", MAC[port],
                "--timeout", str(timeout)] + list(extra) + [cmd] + \
            [str(a) for a in args]
        self.n += 1
        out = open(self.path("vhu-%s-%s-%d.out" % (port, cmd, self.n)), "w+")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        p.out = out
        p.what = "%s %s" % (port, cmd)
        self.procs.append(p)
        return p

    def result(self, p, timeout=90):
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Fail("vhu-frontend %s did not finish in %ds"
                       % (p.what, timeout))
        p.out.seek(0)
        text = p.out.read()
        lines = [l for l in text.splitlines() if l.startswith("{")]
        check(lines, "vhu-frontend %s printed no summary (exit %d): %s"
              % (p.what, p.returncode, text[-600:]))
        return json.loads(lines[-1])

    def wait_running(self, h, port):
        wait_for(lambda: h.port(port)["state"] == "running" and
                 h.port(port)["ib"]["started"],
                 "%s on %s to run" % (port, h.name), 60)

    def send_recv(self, tx, rx, count, size=1000, dst=None, receivers=(),
                  rate=2000):
        """count frames from port tx; every (host, port) in receivers
        (default rx) must get each exactly once, intact."""
        receivers = receivers or [rx]
        rps = [(h, p, self.frontend(p, "recv", "--count", count, "--verify",
                                    "--src", MAC[tx[1]],
                                    extra=("--ring", "1024")))
               for h, p in receivers]
        for h, p, _ in rps:
            self.wait_running(h, p)
        t0 = time.monotonic()
        s = self.frontend(tx[1], "send", "--count", count, "--size", size,
                          "--dst", dst or MAC[rx[1]], "--rate", rate)
        sent = self.result(s)
        check(sent.get("ok") and sent["sent"] == count,
              "sender %s: %s" % (tx[1], sent))
        out = []
        for h, p, rp in rps:
            r = self.result(rp)
            check(r.get("ok") and r["good"] == count and r["bad"] == 0,
                  "receiver %s got %s of %d (bad %s, missing %s): %s"
                  % (p, r.get("good"), count, r.get("bad"), r.get("missing"),
                     {k: r.get(k) for k in ("error", "received",
                                            "first_missing", "duplicates")}))
            out.append(r)
        return out, time.monotonic() - t0

    def cleanup(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class TestPmd:
    """dpdk-testpmd (DPDK's virtio-user PMD) as a guest, interactive."""

    def __init__(self, t, port, mac, lcores):
        self.t, self.port, self.mac = t, port, mac
        self.prefix = "tpmd-%s" % port
        self.logname = t.path("testpmd-%s.log" % port)
        self.nstats = 0
        argv = ["stdbuf", "-oL", "dpdk-testpmd", "--lcores", lcores, "--main-lcore", "0",
                "--no-pci", "--no-huge", "-m", "160", "--file-prefix",
                self.prefix, "--vdev", "net_virtio_user0,path=%s,mac=%s"
                % (t.path(port + ".sock"), mac), "--",
                "--total-num-mbufs=4096", "-i"]
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=open(self.logname, "w"),
                                  stderr=subprocess.STDOUT)
        self.p.what = "testpmd %s" % port
        t.procs.append(self.p)

    def log(self):
        return sysfs(self.logname)

    def wait_up(self, h):
        wait_for(lambda: "testpmd>" in self.log() or
                 self.p.poll() is not None, "testpmd on %s" % self.port, 90)
        check(self.p.poll() is None, "testpmd on %s exited: %s"
              % (self.port, self.log()[-1500:]))
        self.t.wait_running(h, self.port)

    def cmd(self, *lines):
        self.p.stdin.write("".join(l + "\n" for l in lines).encode())
        self.p.stdin.flush()

    def stats(self, n):
        """The RX/TX packet counts of the last `stop`."""
        self.nstats += n
        want = self.nstats
        wait_for(lambda: self.log().count("Forward statistics for port 0")
                 >= want, "testpmd %s's statistics" % self.port, 30)
        block = self.log().rsplit("Forward statistics for port 0", 1)[1]
        rx = re.search(r"RX-packets:\s*(\d+)", block)
        tx = re.search(r"TX-packets:\s*(\d+)", block)
        return {"rx": int(rx.group(1)) if rx else -1,
                "tx": int(tx.group(1)) if tx else -1}

    def quit(self):
        try:
            self.cmd("quit")
            self.p.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()
        shutil.rmtree("/var/run/dpdk/" + self.prefix, ignore_errors=True)


def daemon_checks(t, gids):
    ga, gb = gids["rxe0"], gids["rxe1"]
    with Stage("daemons"):
        a = Host(t, "A", "rxe0", ga[0], 1, [("a1", "blue"), ("a2", "blue")])
        b = Host(t, "B", "rxe1", gb[0], 0, [("b1", "blue"), ("b3", "red")])
        hosts = (a, b)
        for h in hosts:
            h.start()
        # One rdma_cm multicast group per segment with a port on the host.
        want = {a: 1, b: 2}
        for h in hosts:
            wait_for(lambda: h.log_text().count("joined multicast group")
                     >= want[h] or "multicast" in h.log_text() and
                     "failed" in h.log_text(),
                     "%s's multicast joins" % h.name, 60)
    for h in hosts:
        say("LOG ---- ibvhostd %s ----" % h.name)
        for line in h.log_text().splitlines()[:40]:
            say("LOG   " + line)
    for h in hosts:
        joined = h.log_text().count("joined multicast group")
        result("mcast-join-%s" % h.name, joined == want[h],
               "%d groups joined via rdma_cm on %s"
               % (joined, "rxe0" if h is a else "rxe1"))
    # rdma_cm joined the IPv4 groups on the rxe netdevs (IGMP), which is
    # what lets the kernel deliver the segment's multicast to rxe.
    groups = igmp_groups()
    say("LOG /proc/net/igmp: %s" % {d: sorted(g) for d, g in groups.items()
                                    if d in ADDR})
    want_g = {"veth0": {"239.30.0.1"}, "veth1": {"239.30.0.1",
                                                 "239.237.0.2"}}
    result("mcast-igmp", all(want_g[d] <= groups.get(d, set())
                             for d in want_g),
           "; ".join("%s: %s" % (d, " ".join(sorted(groups.get(d, ()))))
                     for d in sorted(want_g)))
    for h in hosts:
        ok = "RoCE" in h.log_text() and "LID 0x0" in h.log_text()
        result("roce-%s" % h.name, ok, "daemon sees RoCE, LID 0")

    def step(name, fn):
        try:
            with Stage(name):
                detail = fn()
            result(name, True, detail)
        except Fail as e:
            result(name, False, str(e))
        except subprocess.TimeoutExpired as e:
            result(name, False, "timeout: %s" % e)

    n = 300

    def unicast():
        # A -> B: b1 unknown to a1: flooded through the multicast group.
        _, dt1 = t.send_recv((a, "a1"), (b, "b1"), n)
        ca = a.counters("a1")
        check(ca["tx_frames"] == n and ca["flooded"] == n,
              "a1 should have flooded %d frames: %s" % (n, ca))
        # B -> A: b1 learned a1 by GID: point to point.
        _, dt2 = t.send_recv((b, "b1"), (a, "a1"), n)
        cb = b.counters("b1")
        check(cb["tx_frames"] == n and cb["flooded"] == 0,
              "b1 -> a1 should be unicast: %s" % cb)
        # A -> B again: unicast now.
        _, dt3 = t.send_recv((a, "a1"), (b, "b1"), n, size=4000 - 200)
        ca = a.counters("a1")
        check(ca["flooded"] == n and ca["tx_frames"] == 2 * n,
              "a1's second burst should be unicast: %s" % ca)
        for h, p in ((a, "a1"), (b, "b1")):
            c = h.counters(p)
            drops = {k: v for k, v in c.items() if k.startswith("drop_")
                     and v}
            check(not drops, "%s dropped frames: %s" % (p, drops))
        return ("%d frames A->B flooded, %d B->A unicast, %d A->B unicast "
                "(%d B), intact; %.1fs %.1fs %.1fs"
                % (n, n, n, 4000 - 200, dt1, dt2, dt3))

    def jumbo():
        # 9014-byte frames over rxe's 4096-byte messages: a first message
        # and two continuations each, gathered from and scattered into
        # guest memory by the kernel's verbs; A -> B is unicast by now.
        c0 = a.counters("a1"), b.counters("b1")
        _, dt = t.send_recv((a, "a1"), (b, "b1"), n, size=9014, rate=1000)
        _, dt2 = t.send_recv((b, "b1"), (a, "a1"), n, size=9014, rate=1000)
        ca, cb = a.counters("a1"), b.counters("b1")
        for c, c_0, p in ((ca, c0[0], "a1"), (cb, c0[1], "b1")):
            check(c["tx_fragments"] - c_0["tx_fragments"] == 3 * n and
                  c["rx_reassembled"] - c_0["rx_reassembled"] == n,
                  "%s: %d frames as %d messages, %d reassembled: %s"
                  % (p, n, c["tx_fragments"] - c_0["tx_fragments"],
                     c["rx_reassembled"] - c_0["rx_reassembled"], c))
            drops = {k: v for k, v in c.items() if k.startswith("drop_")
                     and v}
            check(not drops, "%s dropped frames: %s" % (p, drops))
        return ("%d frames of 9014 B each way as 3 messages each, "
                "reassembled intact; %.1fs %.1fs" % (n, dt, dt2))

    def fdb_gid():
        out = []
        for h, p, peer_h, peer, gid in ((b, "b1", a, "a1", ga[1]),
                                        (a, "a1", b, "b1", gb[1])):
            fdb = h.fdb(p)
            table = sh([t.ctl, "-s", h.ctl_sock, "show-fdb", p])
            for line in ("ibvhostctl show-fdb %s" % p,) + tuple(
                    table.splitlines()):
                say("FDB %s: %s" % (h.name, line))
            check(MAC[peer] in fdb, "%s did not learn %s: %s"
                  % (p, peer, fdb))
            e = fdb[MAC[peer]]
            ib = peer_h.port(peer)["ib"]
            check(e.get("lid") == 0, "%s's entry for %s has LID %s, RoCE "
                  "has none" % (p, peer, e.get("lid")))
            check(num(e.get("qpn")) == num(ib["qpn"]), "%s's entry for %s: QPN %s, "
                  "%s's QPN is %s" % (p, peer, e.get("qpn"), peer,
                                       ib["qpn"]))
            check(same_gid(e.get("gid"), gid),
                  "%s's entry for %s has GID %r, expected %s"
                  % (p, peer, e.get("gid"), gid))
            out.append("%s: %s -> GID %s LID %s QPN %s" % (
                p, peer, e.get("gid"), e.get("lid"), e.get("qpn")))
        return "; ".join(out)

    def segments():
        red = t.frontend("b3", "recv", "--count", 1, timeout=8)
        t.wait_running(b, "b3")
        t.send_recv((a, "a1"), (b, "b1"), 200, dst=BCAST)
        r = t.result(red)
        check(r["received"] == 0, "segment red received %d frames from "
              "blue" % r["received"])
        check(b.counters("b3")["rx_frames"] == 0, "b3 counted frames")
        return "200 broadcasts on blue reached b1, 0 reached b3 (red)"

    def broadcast():
        before = {p: h.counters(p)["rx_frames"]
                  for h, p in ((a, "a1"), (a, "a2"), (b, "b1"))}
        t.send_recv((a, "a1"), None, 200, dst=BCAST,
                    receivers=[(a, "a2"), (b, "b1")])
        got = {p: h.counters(p)["rx_frames"] - before[p]
               for h, p in ((a, "a1"), (a, "a2"), (b, "b1"))}
        check(got["a1"] == 0, "a1 received its own broadcasts: %s" % got)
        check(got["a2"] == 200 and got["b1"] == 200,
              "each receiver should count 200: %s" % got)
        return "200 broadcasts from a1 reached a2 (same host) and b1 " \
               "(peer) once each, a1 none"

    def rtt():
        echo = t.frontend("b1", "echo", timeout=60)
        t.wait_running(b, "b1")
        pp = t.frontend("a1", "pingpong", "--count", 200, "--size", 200,
                        "--dst", MAC["b1"], timeout=60)
        r = t.result(pp)
        echo.terminate()
        t.result(echo)
        check(r.get("ok") and r.get("replies", 0) > 150,
              "pingpong: %s" % r)
        say("RTT min %.1f us p50 %.1f us p99 %.1f us (%d/%d replies)" % (
            r["rtt_min_us"], r["rtt_p50_us"], r["rtt_p99_us"],
            r["replies"], r["sent"]))
        return "RTT p50 %.0f us (min %.0f, p99 %.0f), %d/%d replies" % (
            r["rtt_p50_us"], r["rtt_min_us"], r["rtt_p99_us"],
            r["replies"], r["sent"])

    def testpmd():
        pa = TestPmd(t, "a1", TPMD_MAC["a1"], "0@0,1@1")
        pb = TestPmd(t, "b1", TPMD_MAC["b1"], "0@1,1@0")
        for pmd, h in ((pa, a), (pb, b)):
            pmd.wait_up(h)
        out = []
        # A -> B (B's MAC unknown to A's port: flooded), then B -> A
        # (learned by GID from those frames: point to point).
        for tx, rx, txh, rxh in ((pa, pb, a, b), (pb, pa, b, a)):
            before = rxh.counters(rx.port)["rx_frames"]
            rx.cmd("set fwd rxonly", "start")
            tx.cmd("set fwd txonly", "set eth-peer 0 %s" % rx.mac,
                   "set txpkts 1000", "start")
            time.sleep(3)
            tx.cmd("stop")
            time.sleep(1)
            rx.cmd("stop")
            st_tx = tx.stats(1)
            st_rx = rx.stats(1)
            got = rxh.counters(rx.port)["rx_frames"] - before
            check(st_tx["tx"] > 0 and st_rx["rx"] > 0,
                  "testpmd %s -> %s: sent %s, received %s (daemon rx %d)"
                  % (tx.port, rx.port, st_tx, st_rx, got))
            out.append("%s->%s sent %d received %d (daemon delivered %d)"
                       % (tx.port, rx.port, st_tx["tx"], st_rx["rx"], got))
        fdb = b.fdb("b1")
        check(TPMD_MAC["a1"] in fdb and same_gid(fdb[TPMD_MAC["a1"]]["gid"],
                                                 ga[1]),
              "b1 did not learn a1's testpmd MAC by GID: %s" % fdb)
        for pmd in (pa, pb):
            pmd.quit()
        return "; ".join(out)

    step("unicast", unicast)
    step("jumbo", jumbo)
    step("fdb-gid", fdb_gid)
    step("segments", segments)
    step("broadcast", broadcast)
    step("rtt", rtt)
    if "no-testpmd" not in t.opts:
        step("testpmd", testpmd)
    for h in hosts:
        alive = h.proc.poll() is None
        result("daemon-%s-alive" % h.name, alive,
               "" if alive else h.log_text()[-1500:])
    return hosts


def igmp_groups():
    """{netdev: {IPv4 groups joined}} from /proc/net/igmp."""
    out, dev = {}, None
    for line in sysfs("/proc/net/igmp").splitlines()[1:]:
        if not line.startswith("\t"):
            dev = line.split()[1] if len(line.split()) > 1 else None
            continue
        f = line.split()
        if dev and f and len(f[0]) == 8:
            out.setdefault(dev, set()).add(
                socket.inet_ntoa(bytes.fromhex(f[0])[::-1]))
    return out


def num(v):
    return int(v, 0) if isinstance(v, str) else v


def same_gid(a, b):
    try:
        return ipaddress.IPv6Address(a) == ipaddress.IPv6Address(b)
    except ValueError:
        return False


def main():
    build = sys.argv[1]
    opts = set(",".join(sys.argv[2:]).split(",")) - {"-", ""}
    say("LOG guest.py in the VM: uname %s, opts %s" % (os.uname().release,
                                                       sorted(opts)))
    t = None
    try:
        with Stage("rxe-setup"):
            gids, info, mtus = setup_rxe()
        say("LOG GIDs: %s" % gids)
        result("rxe-devices", len(gids) == 2 and all(
            g[0] is not None for g in gids.values()),
            "rxe0/rxe1 ACTIVE, RoCE v2 IPv4 GID index %s" % {
                k: v[0] for k, v in gids.items()})
        result("rxe-mtu", mtus == ["4096", "4096"] or
               mtus.count("4096") == 2, "active_mtu %s (netdev MTU %d)"
               % (mtus, MTU))
        gidx = gids["rxe0"][0]
        with Stage("pingpong"):
            ok, usec, crossed, out = ud_pingpong(gidx)
        result("ud-pingpong", ok, "%s usec/iter" % usec if ok
               else out[-800:].replace("\n", " | "))
        result("veth-crossed", crossed >= 1000, "%d packets on each veth "
               "end during pingpong" % crossed)
        t = Test(build)
        t.opts = opts
        with Stage("traffic-total"):
            daemon_checks(t, gids)
    except Fail as e:
        result("setup", False, str(e))
    except Exception as e:  # noqa: BLE001 - report, never hang the VM
        result("guest", False, "%s: %s" % (type(e).__name__, e))
    finally:
        if t:
            if FAILED:
                for name in ("A", "B"):
                    say("LOG ---- %s.log tail ----" % name)
                    for line in sysfs(t.path(name + ".log")).splitlines()[
                            -30:]:
                        say("LOG   " + line)
            t.cleanup()
    say("LOG failed checks: %s" % (FAILED or "none"))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
