#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""End to end: unmodified Linux guests (QEMU TCG, the Debian kernel's own
virtio_net driver) on two ibvhostd, two emulated hosts of one ibemu
fabric.

usage: e2e_test.py SCENARIO BUILD_DIR
scenarios:
  ping      guests on hosts A and B (segment blue) ping each other both
            ways (ARP through the segment's multicast group, then unicast);
            each daemon's FDB holds the other guest's MAC at the peer
            port's LID/QPN
  segments  a guest on segment red (host B) reaches neither blue guest;
            its port receives nothing of blue's traffic
  mtu       the guest's MTU is the one the daemon advertises; a ping of
            MTU - 28 bytes goes unfragmented, one of MTU bytes is
            fragmented by the guest and passes; no drop counted
  bulk      8 MB guest to guest over TCP (busybox nc), checksums equal;
            checksum offload negotiated and no daemon computed a checksum
  restart   kill -9 the daemon of host A and start it again: QEMU
            (chardev reconnect=1) reconnects, the guest's network comes
            back without a reboot; prints the recovery time
  restart-client  QEMU is the vhost-user server, the ports mode = client:
            host A killed with pings flowing both ways and restarted, then
            killed with its guest idle and restarted; both times both
            guests reach each other (pings, full-size pings, 1 MB TCP)
  virtio    a legacy virtio-net guest (no VERSION_1) and one asking for
            packed rings (not offered: split) talk to each other
  norxmrg   both guests without mergeable RX buffers (mrg_rxbuf=off):
            pings (full size too) and bulk TCP intact both ways
  jumbo     segment MTU 9000 (guests host_mtu=9000, frames of up to 3 IB
            messages): 8972-byte pings unfragmented both ways, bulk TCP
            intact both ways, and the same with a receiver without
            mergeable RX buffers
  demo      scenario ping for people: shows the guests' ping output and
            prints ibvhostctl show-ports and show-fdb of both daemons
Every wait is bounded; everything started is stopped on exit.
E2E_KEEP=1 keeps the work folder (configs, daemon logs, guest consoles);
E2E_POLL_MODE=adaptive|busy: the daemons' poll_mode (default busy; the
demo's default is adaptive, which leaves idle CPU time to the guests).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest as guestmod  # noqa: E402
from guest import Guest, GuestError, ping_stats  # noqa: E402
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import testlib  # noqa: E402
from testlib import (Ctl, Fail, check, kill_procs,  # noqa: E402
                     remove_eal_dirs)

TIMEOUT = 30.0
BOOT_TIMEOUT = 180
RECOVERY_BOUND_S = 30.0
OUTAGE_S = 5.0
# Host A polls on CPU 1, host B on CPU 0 (two CPUs here); each guest runs
# on the CPU its own daemon does not poll, so a guest and the daemon
# serving it never share one.
CPU_A, CPU_B = 1, 0
GUESTS = {  # name: (host, segment, MAC, address)
    "a1": ("A", "blue", "52:54:00:12:0a:01", "10.99.0.1"),
    "b1": ("B", "blue", "52:54:00:12:0b:01", "10.99.0.2"),
    "b3": ("B", "red", "52:54:00:12:0b:03", "10.99.0.3"),
}
PREFIX = 24
# busy (the default: the polling core spins) or adaptive (it sleeps when
# idle, which leaves the CPUs to the TCG guests here).
POLL_MODE = os.environ.get("E2E_POLL_MODE", "busy")
if len(sys.argv) > 1 and sys.argv[1] == "demo":
    POLL_MODE = os.environ.get("E2E_POLL_MODE", "adaptive")


def wait_for(pred, what, timeout=TIMEOUT, interval=0.1):
    """testlib's wait_for; a Fail raised by pred (a ctl call to a daemon
    not up yet) counts as not yet."""
    testlib.wait_for(pred, what, timeout, interval, ignore=(Fail,))


class Host(Ctl):
    """One ibvhostd: one emulated host of the fabric."""

    def __init__(self, t, name, core, ports, client=()):
        self.t, self.name, self.core = t, name, core
        Ctl.__init__(self, t.ctl, t.path("ctl-%s.sock" % name),
                     "host " + name)
        self.log = t.path("ibvhostd-%s.log" % name)
        lines = ["log_level = info",
                 "control_socket = %s" % self.ctl_sock,
                 "main_core = %d" % core,
                 "poll_mode = %s" % POLL_MODE,
                 "[segment blue]", "qkey = 0x0b1e0001"] + [
                 "mtu = %d" % t.blue_mtu] * bool(t.blue_mtu) + [
                 "[segment red]", "qkey = 0x0bed0002"]
        for p in ports:
            _, seg, mac, _ = GUESTS[p]
            lines += ["[port %s]" % p, "socket = %s" % self.sock(p),
                      "segment = %s" % seg, "mac = %s" % mac]
            if p in client:
                lines += ["mode = client"]
        self.conf = t.path("ibvhostd-%s.conf" % name)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.ports = ports
        self.proc = None

    def sock(self, port):
        return self.t.path("%s.sock" % port)

    def start(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([self.t.ibvhostd, "-c", self.conf],
                                     stdout=logf, stderr=logf,
                                     env=self.t.daemon_env)
        logf.close()
        self.t.procs.append(self.proc)
        pid = self.proc.pid

        def up():
            check(self.proc.poll() is None, "ibvhostd %s exited (%s):\n%s"
                  % (self.name, self.proc.returncode, self.log_tail()))
            return (self.ctl("show-version", quiet=True) or {}).get(
                "pid") == pid
        wait_for(up, "ibvhostd %s's control socket" % self.name)
        return self

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)

    def log_tail(self, n=4000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""


class Test:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.ibvhostd = os.path.join(self.build, "daemon", "ibvhostd")
        self.ctl = os.path.join(self.build, "daemon", "ibvhostctl")
        self.dir = tempfile.mkdtemp(prefix="ibvhostd-e2e-")
        self.procs, self.hosts, self.guests = [], {}, {}
        self.blue_mtu = 0  # segment blue's mtu key, 0: not set
        self.daemon_env = dict(os.environ,
                               LD_LIBRARY_PATH=os.path.join(
                                   self.build, "tests", "ibemu"),
                               IBEMU_SHM_DIR=self.dir,
                               IBEMU_FABRIC="e2e-%d" % os.getpid())
        self.times = {}
        self.t0 = time.monotonic()

    def path(self, name):
        return os.path.join(self.dir, name)

    def stage(self, name):
        """Records how long the stage that ends here took."""
        now = time.monotonic()
        self.times[name] = now - getattr(self, "_last", self.t0)
        self._last = now

    def start_hosts(self, red=False, client=()):
        self.hosts["A"] = Host(self, "A", CPU_A, ["a1"], client).start()
        self.hosts["B"] = Host(self, "B", CPU_B,
                               ["b1", "b3"] if red else ["b1"],
                               client).start()
        self.stage("daemons")
        mtu = self.hosts["A"].port("a1")["ib"]["mtu"]
        for h in self.hosts.values():
            for p in h.ports:
                m = h.port(p)["ib"]["mtu"]
                check(m == mtu, "port %s advertises MTU %d, a1 %d" %
                      (p, m, mtu))
        self.mtu = mtu
        return mtu

    def start_guests(self, names, reconnect=False, nic_opts=None,
                     server=()):
        self.images = guestmod.images(self.build)
        self.stage("guest images")
        for n in names:
            host, _, mac, ip = GUESTS[n]
            h = self.hosts[host]
            g = Guest(self.dir, n, h.sock(n), mac, "%s/%d" % (ip, PREFIX),
                      self.mtu, *self.images,
                      cpu=CPU_B if host == "A" else CPU_A,
                      reconnect=reconnect,
                      nic_opts=(nic_opts or {}).get(n, ""),
                      server=n in server)
            self.guests[n] = g.start()
        for n in names:
            self.guests[n].wait_ready(BOOT_TIMEOUT)
        self.stage("guests booted")
        for n in names:
            h = self.hosts[GUESTS[n][0]]
            wait_for(lambda: h.port(n)["state"] == "running" and
                     h.port(n)["ib"]["started"],
                     "port %s on host %s to run" % (n, h.name))
        return [self.guests[n] for n in names]

    def ping(self, src, dst, count=5, size=None, expect=True, echo=None,
             wait=5):
        args = "-c %d -W %d" % (count, wait)
        if size is not None:
            args += " -s %d" % size
        _, out = self.guests[src].sh("ping %s %s" % (args, GUESTS[dst][3]),
                                     timeout=count * (wait + 2) + 20,
                                     echo=echo)
        sent, got, rtt = ping_stats(out)
        if expect:
            check(sent == count and got == count,
                  "ping %s -> %s (%s): %d of %d replies:\n%s" % (
                      src, dst, args, got, sent, out))
        return sent, got, rtt, out

    def cleanup(self):
        for g in self.guests.values():
            g.stop()
        kill_procs(self.procs)
        remove_eal_dirs(self.procs)
        if os.environ.get("E2E_KEEP"):
            print("e2e: files kept in %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def diagnostics(self):
        out = ""
        for g in self.guests.values():
            out += g.diagnostics()
        for h in self.hosts.values():
            out += "---- ibvhostd %s log (tail) ----\n%s\n" % (
                h.name, h.log_tail())
            for p in h.ports:
                c = h.ctl("show-port", p, quiet=True)
                if c:
                    out += "---- %s counters: %s\n" % (p, c.get("counters"))
        return out

    def report_times(self):
        print("timings: " + ", ".join("%s %.1f s" % kv for kv in
                                      self.times.items()))
        for g in self.guests.values():
            if g.boot_s is not None:
                print("guest %s: eth0 up %.1f s after QEMU start" %
                      (g.name, g.boot_s))


def nonzero_drops(c):
    return {k: v for k, v in c.items() if k.startswith("drop_") and v}


def check_fdb(t, port, peer):
    """`port`'s FDB holds `peer`'s MAC at `peer`'s port address."""
    h, hp = t.hosts[GUESTS[port][0]], t.hosts[GUESTS[peer][0]]
    fdb = h.fdb(port)
    mac = GUESTS[peer][2]
    check(mac in fdb, "host %s port %s did not learn %s (%s): FDB %s" % (
        h.name, port, peer, mac, fdb))
    ib = hp.port(peer)["ib"]
    e = fdb[mac]
    check(e["lid"] == ib["lid"] and e["qpn"] == ib["qpn"],
          "%s learned %s at LID %s QPN %s; it is LID %s QPN %s" % (
              port, peer, e["lid"], e["qpn"], ib["lid"], ib["qpn"]))


def scenario_ping(t, echo=None):
    t.start_hosts()
    t.start_guests(["a1", "b1"])
    a, b = t.hosts["A"], t.hosts["B"]
    _, _, rtt_ab, _ = t.ping("a1", "b1", count=5, echo=echo)
    _, _, rtt_ba, _ = t.ping("b1", "a1", count=5, echo=echo)
    t.stage("pings")
    check_fdb(t, "a1", "b1")
    check_fdb(t, "b1", "a1")
    for h, p in ((a, "a1"), (b, "b1")):
        c = h.counters(p)
        check(c["tx_frames"] - c["flooded"] >= 8,
              "%s: %d frames sent, %d of them flooded: the pings did not go "
              "unicast" % (p, c["tx_frames"], c["flooded"]))
        check(not nonzero_drops(c), "%s dropped frames: %s" % (
            p, nonzero_drops(c)))
    print("ping: a1 -> b1 5/5 (avg RTT %.2f ms), b1 -> a1 5/5 (avg RTT "
          "%.2f ms); FDBs learned the peers; unicast after ARP" %
          (rtt_ab, rtt_ba))
    return rtt_ab, rtt_ba


def scenario_segments(t):
    t.start_hosts(red=True)
    t.start_guests(["a1", "b1", "b3"])
    a, b = t.hosts["A"], t.hosts["B"]
    t.ping("a1", "b1", count=3)
    for src, dst in (("b3", "a1"), ("b3", "b1"), ("a1", "b3")):
        sent, got, _, out = t.ping(src, dst, count=3, wait=1, expect=False)
        check(sent == 3 and got == 0, "%s (red) -> %s (blue): %d of %d "
              "replies:\n%s" % (src, dst, got, sent, out))
    t.stage("pings")
    c = b.counters("b3")
    check(c["tx_frames"] > 0, "b3 sent nothing: the test proves nothing")
    check(c["rx_frames"] == 0, "b3 (red) received %d frames" % c["rx_frames"])
    for h, p in ((a, "a1"), (b, "b1")):
        check(GUESTS["b3"][2] not in h.fdb(p), "%s learned b3's MAC" % p)
    _, neigh = t.guests["b3"].sh("ip neigh show")
    check("lladdr" not in neigh, "b3 resolved a blue address: %s" % neigh)
    print("segments: b3 (red) sent %d frames, received 0; no blue guest "
          "answered or learned it" % c["tx_frames"])


def ip_stats(g):
    """The guest's IP counters (/proc/net/snmp)."""
    _, out = g.sh("grep '^Ip:' /proc/net/snmp", check=True)
    keys, vals = [l.split()[1:] for l in out.splitlines()[:2]]
    return dict(zip(keys, map(int, vals)))


def scenario_mtu(t):
    mtu = t.start_hosts()
    t.start_guests(["a1", "b1"])
    a, b = t.hosts["A"], t.hosts["B"]
    for n, g in t.guests.items():
        _, cur = g.sh("cat /sys/class/net/eth0/mtu", check=True)
        check(int(cur) == mtu, "guest %s: eth0 MTU %s, the daemon "
              "advertises %d" % (n, cur, mtu))
        # VIRTIO_NET_F_MTU is also the driver's maximum.
        st, out = g.sh("ip link set eth0 mtu %d" % (mtu + 1))
        check(st != 0, "guest %s accepted MTU %d > advertised %d" %
              (n, mtu + 1, mtu))
    t.ping("a1", "b1", count=2)  # ARP resolved both ways
    ga, gb = t.guests["a1"], t.guests["b1"]
    before = a.counters("a1")
    s0, r0 = ip_stats(ga), ip_stats(gb)
    _, _, rtt_full, _ = t.ping("a1", "b1", count=3, size=mtu - 28)
    s1 = ip_stats(ga)
    after = a.counters("a1")
    check(s1["FragCreates"] == s0["FragCreates"],
          "a %d-byte ping was fragmented by the guest" % (mtu - 28))
    # The guest may send an ARP probe meanwhile: a few small frames more.
    frames = after["tx_frames"] - before["tx_frames"]
    extra = after["tx_bytes"] - before["tx_bytes"] - 3 * (mtu + 14)
    check(3 <= frames <= 6 and 0 <= extra <= (frames - 3) * 100,
          "3 full-size pings (3 x %d bytes) sent as %d frames of %d bytes"
          % (mtu + 14, frames, after["tx_bytes"] - before["tx_bytes"]))
    r1 = ip_stats(gb)
    check(r1["ReasmReqds"] == r0["ReasmReqds"],
          "b1 received a %d-byte ping in fragments" % (mtu - 28))
    _, _, rtt_frag, _ = t.ping("a1", "b1", count=3, size=mtu)
    s2, r2 = ip_stats(ga), ip_stats(gb)
    check(s2["FragCreates"] - s1["FragCreates"] >= 6,
          "a %d-byte ping was not fragmented (FragCreates +%d)" % (
              mtu, s2["FragCreates"] - s1["FragCreates"]))
    check(r2["ReasmOKs"] - r1["ReasmOKs"] == 3,
          "b1 reassembled %d of 3 pings" % (r2["ReasmOKs"] - r1["ReasmOKs"]))
    for h, p in ((a, "a1"), (b, "b1")):
        d = nonzero_drops(h.counters(p))
        check(not d, "%s dropped frames: %s" % (p, d))
    t.stage("pings")
    print("mtu: guest MTU %d = advertised; %d-byte ping unfragmented in "
          "one %d-byte frame (RTT %.2f ms); %d-byte ping fragmented and "
          "reassembled (RTT %.2f ms); 0 drops" % (
              mtu, mtu - 28, mtu + 14, rtt_full, mtu, rtt_frag))


def transfer(t, src, dst, mb, port=5001):
    """`mb` MB of random data from guest src to guest dst over TCP (busybox
    nc); returns (seconds, md5)."""
    gs, gd = t.guests[src], t.guests[dst]
    size = mb << 20
    gs.sh("head -c %d /dev/urandom >/tmp/data" % size, check=True,
          timeout=120)
    _, n = gs.sh("wc -c </tmp/data", check=True)
    check(int(n) == size, "%s made a file of %s bytes, not %d" % (src, n,
                                                                  size))
    _, sum_s = gs.sh("md5sum /tmp/data | cut -d' ' -f1", check=True)
    # nc closes its sending half at EOF on its stdin, and a peer that sees
    # that stops: the receiver's stdin is a pipe that stays open.
    gd.sh("rm -f /tmp/recv /tmp/recv.rc; sleep 400 | (timeout 300 nc -l -p "
          "%d >/tmp/recv; echo $? >/tmp/recv.rc) >/dev/null 2>&1 &" % port,
          check=True)
    wait_for(lambda: gd.sh("netstat -ltn | grep -q ':%d '" % port)[0] == 0,
             "%s's nc to listen" % dst, interval=0.3)
    t0 = time.monotonic()
    st, out = gs.sh("timeout 300 nc %s %d </tmp/data" % (GUESTS[dst][3],
                                                          port), timeout=320)
    check(st == 0, "nc %s -> %s failed (%d): %s" % (src, dst, st, out))
    wait_for(lambda: gd.sh("test -f /tmp/recv.rc")[0] == 0,
             "%s's nc to finish" % dst, timeout=60, interval=0.2)
    secs = time.monotonic() - t0
    _, got = gd.sh("wc -c </tmp/recv", check=True)
    if int(got) != size:
        info = ""
        for g in (gs, gd):
            _, o = g.sh("cat /tmp/recv.rc 2>/dev/null; grep -e '^Tcp:' -e "
                        "'^Ip:' /proc/net/snmp; dmesg | tail -5")
            info += "guest %s:\n%s\n" % (g.name, o)
        raise Fail("%s received %s bytes of %d:\n%s" % (dst, got, size,
                                                         info))
    _, sum_d = gd.sh("md5sum /tmp/recv | cut -d' ' -f1", check=True)
    check(sum_s == sum_d, "%s -> %s: md5 differs: sent %s, received %s" % (
        src, dst, sum_s, sum_d))
    print("bulk: %d MB %s -> %s in %.2f s (%.0f Mbit/s), md5 %s equal" % (
        mb, src, dst, secs, size * 8 / secs / 1e6, sum_s), flush=True)
    return secs, sum_s


def scenario_bulk(t, mb=8):
    t.start_hosts()
    t.start_guests(["a1", "b1"])
    a, b = t.hosts["A"], t.hosts["B"]
    t.ping("a1", "b1", count=2)
    transfer(t, "a1", "b1", mb)
    transfer(t, "b1", "a1", mb, port=5002)
    t.stage("transfers")
    for h, p in ((a, "a1"), (b, "b1")):
        info = h.port(p)
        feat = int(str(info["features"]), 0)
        check(feat & 3 == 3, "%s: CSUM/GUEST_CSUM not negotiated "
              "(features %#x)" % (p, feat))
        c = info["counters"]
        check(c["csum_computed"] == 0, "%s: the daemon computed %d "
              "checksums" % (p, c["csum_computed"]))
        check(c["rx_bytes"] > mb << 20 and c["tx_bytes"] > mb << 20,
              "%s carried less than %d MB each way: %s" % (p, mb, c))
    ca, cb = a.counters("a1"), b.counters("b1")
    print("bulk: CSUM+GUEST_CSUM negotiated on both ports, csum_computed 0 "
          "on both; a1 tx %d frames rx %d, drops a1 %s b1 %s" % (
              ca["tx_frames"], ca["rx_frames"], nonzero_drops(ca) or 0,
              nonzero_drops(cb) or 0))


def scenario_restart(t):
    t.start_hosts()
    t.start_guests(["a1", "b1"], reconnect=True)
    a = t.hosts["A"]
    ga = t.guests["a1"]
    t.ping("a1", "b1", count=3)
    _, up0 = ga.sh("cut -d' ' -f1 /proc/uptime")
    t.stage("first pings")
    killed = time.monotonic()
    a.kill9()
    sent, got, _, _ = t.ping("a1", "b1", count=1, wait=1, expect=False)
    check(got == 0, "a1 reached b1 with its daemon killed")
    # Down long enough for QEMU to fail a few reconnection attempts.
    time.sleep(max(0.0, killed + OUTAGE_S - time.monotonic()))
    a.start()
    restarted = time.monotonic()
    deadline = killed + RECOVERY_BOUND_S + 30
    ok = None
    while time.monotonic() < deadline:
        _, got, _, _ = t.ping("a1", "b1", count=1, wait=1, expect=False)
        if got:
            ok = time.monotonic()
            break
    check(ok is not None, "a1's network did not come back within %ds of "
          "the kill; port a1: %s" % (deadline - killed,
                                     a.ctl("show-port", "a1", quiet=True)))
    recovery, since_start = ok - killed, ok - restarted
    t.stage("recovery")
    t.ping("a1", "b1", count=3)
    t.ping("b1", "a1", count=3)
    _, up1 = ga.sh("cut -d' ' -f1 /proc/uptime")
    check(float(up1) > float(up0), "a1 rebooted (uptime %s then %s)" %
          (up0, up1))
    check(ga.console_text().count("E2E-READY") == 1, "a1 booted twice")
    check_fdb(t, "b1", "a1")
    print("restart: daemon down %.1f s; network back %.1f s after kill -9 "
          "(%.1f s after the daemon restarted), bound %.0f s; no guest "
          "reboot" % (restarted - killed, recovery, since_start,
                      RECOVERY_BOUND_S))
    check(recovery < RECOVERY_BOUND_S, "recovery took %.1f s, bound %.0f s"
          % (recovery, RECOVERY_BOUND_S))


def scenario_restart_client(t):
    """QEMU is the vhost-user server, ports a1 and b1 are mode = client.
    Host A's daemon is killed twice and restarted at once: first with
    pings flowing both ways, then with a1 idle, its RX ring waiting for
    an interrupt. After each restart both guests reach each other again
    (small and full-size pings, and TCP) without a reboot."""
    both = ("a1", "b1")
    t.start_hosts(client=both)
    t.start_guests(list(both), server=both)
    a = t.hosts["A"]
    ga, gb = t.guests["a1"], t.guests["b1"]
    t.ping("a1", "b1", count=3)
    t.ping("b1", "a1", count=3)
    _, up0 = ga.sh("cut -d' ' -f1 /proc/uptime")
    t.stage("first pings")

    def restarted(what):
        a.start()
        wait_for(lambda: a.port("a1")["state"] == "running" and
                 a.port("a1")["ib"]["started"],
                 "port a1 to reconnect to its guest after %s" % what, 60)

    def reachable(what, tcp_port):
        """Both ways, small and full size, then 1 MB of TCP."""
        for src, dst in (("b1", "a1"), ("a1", "b1")):
            sent, got, _, out = t.ping(src, dst, count=3, expect=False)
            if got != 3:
                for g in (ga, gb):
                    _, o = g.sh("cat /proc/net/dev; cat /proc/interrupts; "
                                "ip -s link show eth0; cat /tmp/bg.ping "
                                "| tail -5", timeout=30)
                    out += "\n---- %s ----\n%s" % (g.name, o)
            check(got == 3, "after %s, ping %s -> %s: %d of %d replies; "
                  "port a1: %s\n%s" % (what, src, dst, got, sent,
                                        a.ctl("show-port", "a1",
                                              quiet=True), out))
        t.ping("a1", "b1", count=2, size=t.mtu - 28)
        t.ping("b1", "a1", count=2, size=t.mtu - 28)
        transfer(t, "a1", "b1", 1, port=tcp_port)

    # 1. Kill with traffic in flight both ways.
    for src, dst in (("a1", "b1"), ("b1", "a1")):
        # busybox ping takes whole seconds for -i: a loop of single pings.
        t.guests[src].sh("(while :; do ping -c 1 -W 1 %s; done) "
                         ">/tmp/bg.ping 2>&1 & echo $! >/tmp/bg.pid"
                         % GUESTS[dst][3])
    wait_for(lambda: a.port("a1")["counters"]["rx_frames"] >= 20,
             "background pings through a1")
    a.kill9()
    restarted("a kill with traffic flowing")
    t.stage("restart under traffic")
    for g in (ga, gb):
        g.sh("kill $(cat /tmp/bg.pid); killall ping; true")
    reachable("a restart under traffic", 5001)
    t.stage("reachable again")

    # 2. Kill while a1 is idle: nothing in flight, a1's driver waits for
    # its next RX interrupt, which only the new daemon can send.
    a.kill9()
    restarted("an idle kill")
    t.stage("idle restart")
    reachable("a restart of an idle port", 5002)
    _, up1 = ga.sh("cut -d' ' -f1 /proc/uptime")
    check(float(up1) > float(up0), "a1 rebooted (uptime %s then %s)"
          % (up0, up1))
    for g in (ga, gb):
        check(g.console_text().count("E2E-READY") == 1,
              "%s booted twice" % g.name)
    check_fdb(t, "b1", "a1")
    print("restart-client: QEMU as the vhost-user server; host A killed "
          "under traffic and idle, restarted, both ways reachable each "
          "time (pings %d B and %d B, 1 MB TCP); no guest reboot"
          % (56, t.mtu - 28))


VIRTIO_F_VERSION_1 = 1 << 32
VIRTIO_F_RING_PACKED = 1 << 34


def scenario_virtio(t):
    """a1: legacy virtio-net (QEMU disable-modern=on: no VERSION_1, the
    12-byte legacy header); b1: modern with packed=on, which the daemon
    does not offer, so the guest gets split rings."""
    t.start_hosts()
    t.start_guests(["a1", "b1"], nic_opts={"a1": "disable-modern=on",
                                          "b1": "packed=on"})
    fa = int(str(t.hosts["A"].port("a1")["features"]), 0)
    fb = int(str(t.hosts["B"].port("b1")["features"]), 0)
    check(not fa & VIRTIO_F_VERSION_1, "a1 (legacy) negotiated VERSION_1: "
          "%#x" % fa)
    check(fb & VIRTIO_F_VERSION_1 and not fb & VIRTIO_F_RING_PACKED,
          "b1 should be modern with split rings: %#x" % fb)
    for n, g in t.guests.items():
        check(g.mtu == t.mtu, "guest %s MTU %d, advertised %d" % (n, g.mtu,
                                                                 t.mtu))
    _, _, rtt_ab, _ = t.ping("a1", "b1", count=5)
    _, _, rtt_ba, _ = t.ping("b1", "a1", count=5)
    t.ping("a1", "b1", count=2, size=t.mtu)  # fragmented, both headers
    transfer(t, "a1", "b1", 4)
    transfer(t, "b1", "a1", 4, port=5002)
    t.stage("traffic")
    for h, p in ((t.hosts["A"], "a1"), (t.hosts["B"], "b1")):
        c = h.counters(p)
        check(c["csum_computed"] == 0 and not nonzero_drops(c),
              "%s: %s" % (p, c))
    print("virtio: legacy a1 (features %#x) and modern b1 asking for packed "
          "rings (features %#x, split) ping both ways (RTT %.2f / %.2f ms), "
          "4 MB each way intact, 0 checksums computed, 0 drops" % (
              fa, fb, rtt_ab, rtt_ba))


def scenario_norxmrg(t):
    """Both guests without mergeable RX buffers (QEMU mrg_rxbuf=off): the
    Linux driver then posts one 1.5 KB buffer per frame, which the spec
    allows; every frame must arrive."""
    t.start_hosts()
    t.start_guests(["a1", "b1"], nic_opts={"a1": "mrg_rxbuf=off",
                                          "b1": "mrg_rxbuf=off"})
    for h, p in ((t.hosts["A"], "a1"), (t.hosts["B"], "b1")):
        f = int(str(h.port(p)["features"]), 0)
        check(not f & (1 << 15), "%s negotiated MRG_RXBUF: %#x" % (p, f))
    _, _, rtt_ab, _ = t.ping("a1", "b1", count=5)
    _, _, rtt_ba, _ = t.ping("b1", "a1", count=5)
    t.ping("a1", "b1", count=3, size=t.mtu - 28)  # full-size frames
    t.ping("b1", "a1", count=3, size=t.mtu - 28)
    transfer(t, "a1", "b1", 8)
    transfer(t, "b1", "a1", 4, port=5002)
    t.stage("traffic")
    for h, p in ((t.hosts["A"], "a1"), (t.hosts["B"], "b1")):
        c = h.counters(p)
        i = h.port(p)["ib"]
        check(not nonzero_drops(c) and not i["broken"],
              "%s: %s %s" % (p, c, i))
    print("norxmrg: guests without mergeable RX buffers ping both ways "
          "(RTT %.2f / %.2f ms), full-size pings, 8 MB and 4 MB intact (md5), "
          "no drop, no port broken" % (rtt_ab, rtt_ba))


def scenario_jumbo(t):
    """Guests with a 9000-byte MTU across two daemons: every full-size
    frame is fragmented into IB messages and reassembled in the receiving
    guest's buffers; b1 without mergeable RX buffers gets whole frames in
    its large buffers (later fragments copied in)."""
    t.blue_mtu = 9000
    mtu = t.start_hosts()
    check(mtu == 9000, "the ports advertise MTU %d" % mtu)
    t.start_guests(["a1", "b1"])
    a, b = t.hosts["A"], t.hosts["B"]
    ga, gb = t.guests["a1"], t.guests["b1"]
    for n, g in t.guests.items():
        _, cur = g.sh("cat /sys/class/net/eth0/mtu", check=True)
        check(int(cur) == mtu, "guest %s: eth0 MTU %s" % (n, cur))
    t.ping("a1", "b1", count=2)
    s0, r0 = ip_stats(ga), ip_stats(gb)
    _, _, rtt_ab, _ = t.ping("a1", "b1", count=3, size=mtu - 28)
    _, _, rtt_ba, _ = t.ping("b1", "a1", count=3, size=mtu - 28)
    s1, r1 = ip_stats(ga), ip_stats(gb)
    check(s1["FragCreates"] == s0["FragCreates"] and
          r1["ReasmReqds"] == r0["ReasmReqds"],
          "a %d-byte ping was fragmented by a guest" % (mtu - 28))
    check(b.counters("b1")["rx_reassembled"] >= 3 and
          a.counters("a1")["rx_reassembled"] >= 3,
          "full-size frames not reassembled: %s / %s"
          % (a.counters("a1"), b.counters("b1")))
    transfer(t, "a1", "b1", 8)
    transfer(t, "b1", "a1", 4, port=5002)
    t.stage("mergeable")
    for h, p in ((a, "a1"), (b, "b1")):
        c = h.counters(p)
        check(not nonzero_drops(c) and c["tx_fragments"] > 0,
              "%s: %s" % (p, c))
    frag = (b.counters("b1")["rx_fragments"], b.counters("b1")["rx_reassembled"])
    # b1 again, without mergeable RX buffers.
    t.guests.pop("b1").stop()
    t.start_guests(["b1"], nic_opts={"b1": "mrg_rxbuf=off"})
    f = int(str(b.port("b1")["features"]), 0)
    check(not f & (1 << 15), "b1 negotiated MRG_RXBUF: %#x" % f)
    c0 = b.counters("b1")["reasm_copies"]
    t.ping("a1", "b1", count=3, size=mtu - 28)
    t.ping("b1", "a1", count=3, size=mtu - 28)
    transfer(t, "a1", "b1", 4, port=5003)
    t.stage("no mergeable buffers")
    copies = b.counters("b1")["reasm_copies"] - c0
    check(copies > 0, "b1 without mergeable buffers: %s" % b.counters("b1"))
    # A frame whose fragment found no receive posted (the guest had none
    # to give: rx_starved), or was in flight when b1's guest stopped, is
    # given up (drop_reasm); TCP resends it. Nothing else may drop.
    for h, p in ((a, "a1"), (b, "b1")):
        c = h.counters(p)
        d = nonzero_drops(c)
        d.pop("drop_reasm", None)
        check(not d and c["drop_reasm"] <= c["rx_starved"] + 1,
              "%s dropped frames: %s" % (p, c))
    print("jumbo: guest MTU 9000; 8972-byte pings unfragmented both ways "
          "(RTT %.2f / %.2f ms), 8 MB and 4 MB intact; b1 received %d "
          "fragments, reassembled %d frames; without mergeable buffers "
          "pings and 4 MB intact, %d fragments copied; frames given up "
          "a1 %d, b1 %d" % (rtt_ab, rtt_ba, frag[0], frag[1], copies,
                           a.counters("a1")["drop_reasm"],
                           b.counters("b1")["drop_reasm"]))


def scenario_demo(t):
    def echo_from(name):
        return lambda line: line and print("  [guest %s] %s" % (name, line),
                                           flush=True)
    print("demo: two daemons (hosts A and B) on an emulated IB fabric; "
          "files in %s" % t.dir, flush=True)
    mtu = t.start_hosts()
    print("demo: daemons up (host A polls on CPU %d, host B on CPU %d, "
          "poll_mode %s), ports advertise MTU %d" % (CPU_A, CPU_B, POLL_MODE,
                                                      mtu), flush=True)
    print("demo: guest images: Debian kernel (apt-get download on the first "
          "run) and a busybox initramfs, cached in %s; then two QEMU guests "
          "(TCG) boot" % os.path.join(t.build, "e2e-cache"), flush=True)
    t.start_guests(["a1", "b1"])
    for n, g in t.guests.items():
        print("demo: guest %s (%s, %s on host %s) eth0 up after %.1f s, "
              "MTU %d" % (n, GUESTS[n][3], GUESTS[n][2], GUESTS[n][0],
                          g.boot_s, g.mtu), flush=True)
    for src, dst in (("a1", "b1"), ("b1", "a1")):
        print("demo: guest %s: ping -c 5 %s" % (src, GUESTS[dst][3]),
              flush=True)
        t.ping(src, dst, count=5, echo=echo_from(src))
    for h in t.hosts.values():
        print("\ndemo: host %s: ibvhostctl show-ports" % h.name)
        print(h.ctl("show-ports", text=True).rstrip())
        for p in h.ports:
            print("\ndemo: host %s: ibvhostctl show-fdb %s" % (h.name, p))
            print(h.ctl("show-fdb", p, text=True).rstrip())
    t.stage("demo")
    hold = float(os.environ.get("DEMO_HOLD", "0") or 0)
    if hold > 0:
        print("\ndemo: holding for %.0f s; guests' agents at %s/guest-*.agent"
              % (hold, t.dir), flush=True)
        time.sleep(hold)


SCENARIOS = {
    "jumbo": scenario_jumbo,
    "ping": scenario_ping,
    "segments": scenario_segments,
    "mtu": scenario_mtu,
    "bulk": scenario_bulk,
    "restart": scenario_restart,
    "restart-client": scenario_restart_client,
    "virtio": scenario_virtio,
    "norxmrg": scenario_norxmrg,
    "demo": scenario_demo,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SCENARIOS:
        print(__doc__)
        return 2
    name = sys.argv[1]
    t = Test(sys.argv[2])
    # SIGTERM (meson's timeout, a killed demo) cleans up as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    try:
        SCENARIOS[name](t)
        t.report_times()
        print("PASS", name)
        return 0
    except (Fail, GuestError, guestmod.guestimg.BuildError) as e:
        print("FAIL %s: %s" % (name, e))
        t.report_times()
        try:
            print(t.diagnostics())
        except Exception as d:  # the diagnostics must not hide the failure
            print("(diagnostics failed: %s)" % d)
        return 1
    except KeyboardInterrupt:
        print("%s: interrupted, cleaning up" % name)
        return 130
    finally:
        t.cleanup()


if __name__ == "__main__":
    sys.exit(main())
