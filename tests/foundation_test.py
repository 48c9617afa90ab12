#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Integration tests for ibvhostd with real vhost-user frontends.

usage: foundation_test.py SCENARIO BUILD_DIR
scenarios:
  frontends  two ports, dpdk-testpmd (virtio-user) on each: running with
             negotiated features and memory regions; declined features
             stay declined; quit -> waiting without memory; reconnect;
             no PMD / librte_* / libmlx* mapped; control socket robustness;
             SIGTERM -> exit 0, sockets removed
  reload     SIGHUP: a bad config is rejected and the old one kept; ports
             added / removed / changed by difference, unchanged port with
             its frontend untouched
  notify     NOTIFY_SOCKET: READY=1 only after the port sockets exist,
             WATCHDOG=1, RELOADING=1/READY=1 on SIGHUP, STOPPING=1 on SIGTERM
  config     --check-config and exit status 78 on a bad file
  systemd    systemd-analyze verify on the generated unit
  client     client-mode port: the daemon connects to a listening frontend
             and reconnects when it returns
  access     control socket group/mode from the config; SO_PEERCRED check
  two-daemons  two daemons at once; a socket in use is refused; sockets
             of a killed daemon are taken over
Every wait is bounded; everything started is stopped on exit.
"""
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile

from testlib import Ctl, Fail, check, kill_procs, remove_eal_dirs, wait_for

TIMEOUT = 30.0
# Core layout: the daemon's main thread on CPU 1, testpmd's main lcore on
# CPU 0. testpmd insists on a forwarding lcore even in interactive mode; it
# idles, and on a single-CPU machine it shares CPU 0.
NCPU = len(os.sched_getaffinity(0))
DAEMON_CORE = 1 if NCPU > 1 else 0
FRONTEND_LCORES = "0@0,1@%d" % (1 if NCPU > 1 else 0)

# Feature bits (virtio spec)
F = {"CSUM": 0, "GUEST_CSUM": 1, "MTU": 3, "GUEST_TSO4": 7, "GUEST_TSO6": 8,
     "GUEST_UFO": 10, "HOST_TSO4": 11, "HOST_TSO6": 12, "HOST_UFO": 14,
     "MRG_RXBUF": 15, "CTRL_VQ": 17, "MQ": 22, "LOG_ALL": 26,
     "EVENT_IDX": 29, "VERSION_1": 32, "IOMMU_PLATFORM": 33, "RING_PACKED": 34}
DECLINED = ["GUEST_TSO4", "GUEST_TSO6", "GUEST_UFO", "HOST_TSO4", "HOST_TSO6",
            "HOST_UFO", "CTRL_VQ", "MQ", "LOG_ALL", "IOMMU_PLATFORM",
            "RING_PACKED"]


class Env:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.ibvhostd = os.path.join(self.build, "daemon", "ibvhostd")
        self.ctl = os.path.join(self.build, "daemon", "ibvhostctl")
        self.dir = tempfile.mkdtemp(prefix="ibvhostd-test-")
        self.procs = []
        self.daemon = None
        self.log = os.path.join(self.dir, "daemon.log")
        self.nfe = 0
        self.prefixes = []
        self.client = Ctl(self.ctl, self.path("ctl.sock"))

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_config(self, ports, extra="", name="ibvhostd.conf"):
        lines = ["log_level = info",
                 "control_socket = %s" % self.path("ctl.sock"),
                 "main_core = %d" % DAEMON_CORE,
                 extra,
                 "[segment blue]", "qkey = 0x11110001",
                 "[segment red]", "qkey = 0x11110002"]
        for p in ports:
            lines += ["[port %s]" % p["name"],
                      "socket = %s" % self.path(p["name"] + ".sock"),
                      "segment = %s" % p.get("segment", "blue")]
            for k in ("mode", "mtu", "mac"):
                if k in p:
                    lines.append("%s = %s" % (k, p[k]))
        path = self.path(name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start_daemon(self, config, env=None, wrap=()):
        self.logf = open(self.log, "a")
        self.daemon = subprocess.Popen(list(wrap) + [self.ibvhostd, "-c", config],
                                       stdout=self.logf, stderr=self.logf,
                                       env=env)
        self.procs.append(self.daemon)
        wait_for(lambda: self.ctl_listening()
                 or self.daemon.poll() is not None, "the control socket")
        check(self.daemon.poll() is None,
              "ibvhostd exited with %s; log:\n%s" % (self.daemon.returncode,
                                                     self.log_text()))
        return self.daemon

    def ctl_listening(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.path("ctl.sock"))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def ctl_json(self, *args):
        return self.client.ctl(*args)

    def port(self, name):
        return self.client.port(name)

    def start_frontend(self, port, extra_vdev="", sock=None):
        """dpdk-testpmd with DPDK's virtio-user PMD as the guest side."""
        self.nfe += 1
        self.prefixes.append("fe%d-%d" % (os.getpid(), self.nfe))
        env = dict(os.environ)
        env.pop("LD_LIBRARY_PATH", None)  # the system's own DPDK, as is
        cmd = ["dpdk-testpmd", "--lcores", FRONTEND_LCORES, "--main-lcore", "0",
               "--no-pci", "--no-huge", "-m", "512",
               "--file-prefix", "fe%d-%d" % (os.getpid(), self.nfe),
               "--vdev", "net_virtio_user0,path=%s%s" %
               (sock or self.path(port + ".sock"), extra_vdev),
               "--", "--total-num-mbufs=32768", "-i"]
        logf = open(self.path("testpmd-%d.log" % self.nfe), "w")
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=logf,
                             stderr=subprocess.STDOUT, env=env)
        p.logname = logf.name
        self.procs.append(p)
        return p

    def stop_frontend(self, p):
        try:
            p.stdin.write(b"quit\n")
            p.stdin.flush()
        except OSError:
            pass
        try:
            p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def cleanup(self):
        kill_procs(self.procs)
        shutil.rmtree(self.dir, ignore_errors=True)
        remove_eal_dirs(self.procs, self.prefixes)


def wait_state(env, port, state, timeout=TIMEOUT):
    return wait_for(lambda: (lambda j: j if j["state"] == state else None)(
        env.port(port)), "port %s to be %s" % (port, state), timeout)


def assert_running(env, name, info):
    feats = int(info["features"], 16)
    offered = int(info["offered_features"], 16)
    check(feats & (1 << F["VERSION_1"]), "%s: VERSION_1 not negotiated" % name)
    check(feats & ~offered == 0,
          "%s: negotiated 0x%x outside the offer 0x%x" % (name, feats, offered))
    for d in DECLINED:
        check(not feats & (1 << F[d]), "%s: declined %s negotiated" % (name, d))
        check(not offered & (1 << F[d]), "%s: declined %s offered" % (name, d))
    for o in ("CSUM", "GUEST_CSUM", "MTU", "MRG_RXBUF", "EVENT_IDX",
              "VERSION_1"):
        check(offered & (1 << F[o]), "%s: %s not offered" % (name, o))
    check(len(info["memory_regions"]) >= 1, "%s: no memory region" % name)
    for r in info["memory_regions"]:
        check(r["size"] > 0 and int(r["host_user_addr"], 16) != 0,
              "%s: bad region %s" % (name, r))
    check(info["memory_size"] >= 512 << 20,
          "%s: memory %d < testpmd's 512 MB" % (name, info["memory_size"]))
    check(len(info["queues"]) == 2, "%s: %d queues" % (name, len(info["queues"])))


def check_no_pmd_mapped(pid):
    with open("/proc/%d/maps" % pid) as f:
        libs = {l.split()[-1] for l in f if ".so" in l}
    bad = [l for l in libs if "librte_" in os.path.basename(l)
           or "libmlx" in os.path.basename(l) or "pmd" in l]
    check(not bad, "ibvhostd maps DPDK/PMD shared objects: %s" % bad)
    return libs


def raw_ctl(env, payload, nlines):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(env.path("ctl.sock"))
    s.sendall(payload)
    buf = b""
    while buf.count(b"\n") < nlines:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return [json.loads(l) for l in buf.split(b"\n") if l]


def scenario_frontends(env):
    cfg = env.write_config([{"name": "vm1"}, {"name": "vm2", "mtu": 1500}])
    d = env.start_daemon(cfg)
    for p in ("vm1", "vm2"):
        st = os.stat(env.path(p + ".sock"))
        check(stat.S_ISSOCK(st.st_mode), "%s socket missing" % p)
    mode = stat.S_IMODE(os.stat(env.path("ctl.sock")).st_mode)
    check(mode == 0o660, "control socket mode %o, want 660" % mode)
    ports = env.ctl_json("show-ports")
    check([p["state"] for p in ports] == ["waiting", "waiting"],
          "initial states %s" % ports)

    # Frontend 2 asks for packed rings: declined, so it must fall back.
    fe1 = env.start_frontend("vm1")
    fe2 = env.start_frontend("vm2", ",packed_vq=1")
    i1 = wait_state(env, "vm1", "running")
    i2 = wait_state(env, "vm2", "running")
    assert_running(env, "vm1", i1)
    assert_running(env, "vm2", i2)
    check(i2["mtu_config"] == 1500, "vm2 mtu_config %s" % i2["mtu_config"])
    human = subprocess.run([env.ctl, "-s", env.path("ctl.sock"), "show-ports"],
                           capture_output=True, text=True, timeout=TIMEOUT)
    print(human.stdout)
    check(human.returncode == 0 and "running" in human.stdout,
          "human show-ports: %s" % human.stderr)
    libs = check_no_pmd_mapped(d.pid)
    print("ibvhostd maps %d shared objects, no librte_*/libmlx*/PMD" % len(libs))

    # Frontend quits: port back to waiting, memory table gone.
    env.stop_frontend(fe1)
    i1 = wait_state(env, "vm1", "waiting")
    check(i1["memory_regions"] == [] and i1["memory_size"] == 0,
          "vm1 still has memory after the frontend left: %s" % i1)
    check(env.port("vm2")["state"] == "running", "vm2 disturbed by vm1")
    # Reconnect.
    fe1 = env.start_frontend("vm1")
    i1 = wait_state(env, "vm1", "running")
    assert_running(env, "vm1", i1)
    check(i1["connects"] == 2, "vm1 connects %d, want 2" % i1["connects"])

    # Control socket: bad requests get an error, the connection stays.
    big = b"{" + b" " * 10000 + b"}\n"
    replies = raw_ctl(env, b"garbage\n" + big + b'{"cmd":"nope"}\n'
                      b'{"cmd":"show-port"}\n{"cmd":"show-version"}\n', 5)
    check(len(replies) == 5, "got %d replies: %s" % (len(replies), replies))
    check([r["ok"] for r in replies] == [False] * 4 + [True],
          "replies %s" % replies)
    check("too long" in replies[1]["error"], "oversized: %s" % replies[1])
    check(replies[4]["result"]["pid"] == d.pid, "show-version pid")
    r = subprocess.run([env.ctl, "-s", env.path("ctl.sock"), "show-port", "nope"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    check(r.returncode == 1 and "no port named" in r.stderr,
          "show-port nope: %d %s" % (r.returncode, r.stderr))

    env.stop_frontend(fe1)
    env.stop_frontend(fe2)
    wait_state(env, "vm1", "waiting")
    wait_state(env, "vm2", "waiting")

    # SIGTERM: clean stop.
    d.send_signal(signal.SIGTERM)
    rc = d.wait(timeout=TIMEOUT)
    check(rc == 0, "exit status %d after SIGTERM" % rc)
    for s in ("vm1.sock", "vm2.sock", "ctl.sock"):
        check(not os.path.exists(env.path(s)), "%s left behind" % s)



def scenario_reload(env):
    cfg = env.write_config([{"name": "keep"}, {"name": "gone"}, {"name": "chg"}])
    d = env.start_daemon(cfg)
    fe = env.start_frontend("keep")
    before = wait_state(env, "keep", "running")

    # A bad config is rejected; everything stays.
    with open(cfg, "a") as f:
        f.write("[port broken]\nsocket = /x.sock\nsegment = nosuch\n")
    env.hup_pos = len(env.log_text())
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: "keeping the running configuration" in env.log_text()[env.hup_pos:],
             "the bad config to be rejected")
    check("segment nosuch is not defined" in env.log_text(), "no file:line error")
    check(d.poll() is None, "daemon died on a bad config")
    names = [p["name"] for p in env.ctl_json("show-ports")]
    check(names == ["keep", "gone", "chg"], "ports after bad reload: %s" % names)

    # Remove one, add one, change one, keep one.
    env.write_config([{"name": "keep"}, {"name": "chg", "mtu": 1400},
                      {"name": "new", "segment": "red"}])
    env.hup_pos = len(env.log_text())
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload: done" in env.log_text()[env.hup_pos:], "the reload")
    names = sorted(p["name"] for p in env.ctl_json("show-ports"))
    check(names == ["chg", "keep", "new"], "ports after reload: %s" % names)
    check(not os.path.exists(env.path("gone.sock")), "removed port's socket left")
    check(os.path.exists(env.path("new.sock")), "added port's socket missing")
    check(env.port("chg")["mtu_config"] == 1400, "changed port not restarted")
    check("port chg changed; restarting" in env.log_text(), "no restart log")
    after = env.port("keep")
    check(after["state"] == "running" and after["connects"] == before["connects"]
          and after["vid"] == before["vid"]
          and after["device_starts"] == before["device_starts"],
          "unchanged port was disturbed: %s -> %s" % (before, after))

    # ibvhostctl reload (the unit's ExecReload): synchronous, per-port
    # report, and the exit status says whether the file was applied.
    def ctl_reload(*opts):
        return subprocess.run([env.ctl, "-s", env.path("ctl.sock")] +
                              list(opts) + ["reload"],
                              capture_output=True, text=True, timeout=120)
    r = ctl_reload("--json")
    check(r.returncode == 0, "reload of an unchanged file: %d %s" %
          (r.returncode, r.stderr))
    actions = {p["name"]: p["action"] for p in json.loads(r.stdout)["ports"]}
    check(actions == {"keep": "kept", "chg": "kept", "new": "kept"},
          "unchanged file, actions %s" % actions)

    good = open(cfg).read()
    with open(cfg, "a") as f:
        f.write("[port broken]\nsocket = /x.sock\nsegment = nosuch\n")
    bad_line = len(good.splitlines()) + 3
    r = ctl_reload()
    check(r.returncode == 1 and "rejected, running configuration kept" in r.stderr
          and "%s:%d: port broken: segment nosuch is not defined" % (cfg, bad_line)
          in r.stderr, "rejected file: %d %r" % (r.returncode, r.stderr))
    check(d.poll() is None, "daemon died on a rejected reload")
    names = sorted(p["name"] for p in env.ctl_json("show-ports"))
    check(names == ["chg", "keep", "new"], "ports after rejected reload: %s" % names)

    # A port whose socket cannot be created fails the reload; the rest of
    # the file is applied.
    env.write_config([{"name": "keep"}, {"name": "chg"}, {"name": "added"}])
    with open(cfg, "a") as f:
        f.write("[port nodir]\nsocket = %s\nsegment = blue\n" %
                env.path("missing-dir/nodir.sock"))
    r = ctl_reload()
    check(r.returncode == 1 and "port(s) failed to start: nodir: " in r.stderr,
          "port that cannot start: %d %r" % (r.returncode, r.stderr))
    names = sorted(p["name"] for p in env.ctl_json("show-ports"))
    check(names == ["added", "chg", "keep"], "ports after partial reload: %s" % names)

    env.write_config([{"name": "keep"}, {"name": "chg"}, {"name": "added"}])
    r = ctl_reload()
    check(r.returncode == 0 and re.search(r"^nodir\s", r.stdout, re.M) is None
          and re.search(r"^added\s+kept$", r.stdout, re.M)
          and re.search(r"^keep\s+kept$", r.stdout, re.M),
          "reload after the fix: %d %r %r" % (r.returncode, r.stdout, r.stderr))
    after = env.port("keep")
    check(after["connects"] == before["connects"] and after["state"] == "running",
          "ibvhostctl reload disturbed an unchanged port: %s" % after)
    env.write_config([{"name": "keep"}, {"name": "added", "mtu": 1400}])
    r = ctl_reload("--json")
    actions = {p["name"]: p["action"] for p in json.loads(r.stdout)["ports"]}
    check(r.returncode == 0 and
          actions == {"keep": "kept", "chg": "removed", "added": "restarted"},
          "remove and restart: %d %s" % (r.returncode, actions))

    env.stop_frontend(fe)
    d.send_signal(signal.SIGTERM)
    check(d.wait(timeout=TIMEOUT) == 0, "exit status after SIGTERM")


def scenario_notify(env):
    nsock = env.path("notify.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(nsock)
    rx.settimeout(0.2)
    cfg = env.write_config([{"name": "n1"}, {"name": "n2"}])
    e = dict(os.environ, NOTIFY_SOCKET=nsock, WATCHDOG_USEC="400000")
    env.logf = open(env.log, "a")
    d = subprocess.Popen([env.ibvhostd, "-c", cfg], stdout=env.logf,
                         stderr=env.logf, env=e)
    env.procs.append(d)
    env.daemon = d
    msgs = []

    def recv_until(pred, what):
        def step():
            try:
                m = rx.recv(4096).decode()
            except socket.timeout:
                return None
            # Check the sockets at the moment READY=1 is received.
            socks = all(os.path.exists(env.path(n + ".sock")) for n in ("n1", "n2"))
            msgs.append((m, socks))
            return pred(m)
        wait_for(step, what)

    recv_until(lambda m: "READY=1" in m.split("\n"), "READY=1")
    ready = [s for m, s in msgs if "READY=1" in m.split("\n")]
    check(ready and ready[0], "READY=1 arrived before the port sockets existed")
    check(env.ctl_json("show-ports")[0]["state"] == "waiting", "ports not up")
    recv_until(lambda m: m == "WATCHDOG=1", "WATCHDOG=1")
    d.send_signal(signal.SIGHUP)
    recv_until(lambda m: m.startswith("RELOADING=1"), "RELOADING=1")
    recv_until(lambda m: m.startswith("READY=1"), "READY=1 after reload")
    d.send_signal(signal.SIGTERM)
    recv_until(lambda m: m == "STOPPING=1", "STOPPING=1")
    check(d.wait(timeout=TIMEOUT) == 0, "exit status after SIGTERM")
    print("notifications:", [m for m, _ in msgs if m != "WATCHDOG=1"],
          "+ %d WATCHDOG=1" % sum(1 for m, _ in msgs if m == "WATCHDOG=1"))


def scenario_config(env):
    good = env.write_config([{"name": "a"}])
    r = subprocess.run([env.ibvhostd, "--check-config", "-c", good],
                       capture_output=True, text=True, timeout=TIMEOUT)
    check(r.returncode == 0 and "OK" in r.stdout, "good config: %d %s" %
          (r.returncode, r.stderr))
    bad = env.path("bad.conf")
    with open(bad, "w") as f:
        f.write("log_level = info\n\n[port x]\nsocket = /tmp/x.sock\nsegment = none\n")
    for args in (["--check-config", "-c", bad], ["-c", bad]):
        r = subprocess.run([env.ibvhostd] + args, capture_output=True,
                           text=True, timeout=TIMEOUT)
        check(r.returncode == 78, "bad config: exit %d, want 78" % r.returncode)
        check("%s:5: port x: segment none is not defined" % bad in r.stderr,
              "bad config message: %s" % r.stderr)
    r = subprocess.run([env.ibvhostd, "-c", env.path("missing.conf")],
                       capture_output=True, text=True, timeout=TIMEOUT)
    check(r.returncode == 78 and "cannot open" in r.stderr,
          "missing config: %d %s" % (r.returncode, r.stderr))
    # The shipped example must be valid.
    example = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "config", "ibvhostd.conf")
    r = subprocess.run([env.ibvhostd, "--check-config", "-c", example],
                       capture_output=True, text=True, timeout=TIMEOUT)
    check(r.returncode == 0, "example config: %s" % r.stderr)


def scenario_systemd(env):
    """The rendered unit, what meson install puts where, the sysusers
    group, and --version of both programs; no systemd needs to run."""
    opts = {o["name"]: o["value"] for o in json.loads(subprocess.run(
        ["meson", "introspect", "--buildoptions", env.build],
        capture_output=True, text=True, timeout=60, check=True).stdout)}
    prefix = opts["prefix"]
    unit = os.path.join(env.build, "systemd", "ibvhostd.service")
    with open(unit) as f:
        text = f.read()
    ctl_bin = os.path.join(prefix, opts["bindir"], "ibvhostctl")
    sbin = os.path.join(prefix, opts["sbindir"], "ibvhostd")
    for want in ("Type=notify", "ExecReload=%s reload" % ctl_bin,
                 "ExecStart=%s -f" % sbin,
                 "Group=ibvhostd", "RuntimeDirectory=ibvhostd",
                 "RuntimeDirectoryMode=0750", "UMask=0007",
                 "LimitMEMLOCK=infinity", "DevicePolicy=closed",
                 "DeviceAllow=char-infiniband_verbs rw",
                 "DeviceAllow=/dev/infiniband/rdma_cm rw",
                 "Restart=on-failure", "RestartPreventExitStatus=78",
                 "WatchdogSec=", "Documentation=man:ibvhostd(8)"):
        check(want in text, "unit lacks %s" % want)
    check("kill -HUP" not in text, "ExecReload still only signals")

    # meson install puts the programs, the unit, the sysusers file, the
    # man pages and the example config in place, and nothing in /etc.
    dest = env.path("destdir")
    r = subprocess.run(["meson", "install", "-C", env.build, "--no-rebuild",
                        "--destdir", dest], capture_output=True, text=True,
                       timeout=120)
    check(r.returncode == 0, "meson install: %s" % (r.stdout + r.stderr)[-2000:])
    installed = set()
    for root, _, files in os.walk(dest):
        installed.update(os.path.relpath(os.path.join(root, f), dest)
                         for f in files)
    doc = os.path.join(prefix, opts["datadir"], "doc", "ibvhostd").lstrip("/")
    man = os.path.join(prefix, opts["mandir"]).lstrip("/")
    for f in (sbin.lstrip("/"), ctl_bin.lstrip("/"),
              doc + "/ibvhostd.conf.example", doc + "/README.md",
              doc + "/LICENSE", man + "/man8/ibvhostd.8",
              man + "/man8/ibvhostctl.8", man + "/man5/ibvhostd.conf.5"):
        check(f in installed, "meson install did not install %s (got %s)" %
              (f, sorted(installed)))
    units = [f for f in installed if f.endswith("/ibvhostd.service")]
    sysusers = [f for f in installed if f.endswith("sysusers.d/ibvhostd.conf")]
    check(len(units) == 1 and len(sysusers) == 1,
          "unit %s, sysusers %s installed" % (units, sysusers))
    check(not any(os.path.join(prefix, opts["sysconfdir"]).lstrip("/") in f
                  for f in installed),
          "meson install writes to sysconfdir: %s" % sorted(installed))

    # verify wants the binaries and the Documentation= man pages to exist:
    # point them at the build tree and the installed pages.
    local = env.path("ibvhostd.service")
    with open(local, "w") as f:
        f.write(text.replace(sbin, env.ibvhostd).replace(ctl_bin, env.ctl))
    # The optional textfile-collector units too.
    metrics_units = [local]
    for name in ("ibvhostd-metrics.service", "ibvhostd-metrics.timer"):
        check(any(f.endswith("/" + name) for f in installed),
              "%s not installed" % name)
        src = [f for f in installed if f.endswith("/" + name)][0]
        with open(os.path.join(dest, src)) as f:
            body = f.read()
        metrics_units.append(env.path(name))
        with open(metrics_units[-1], "w") as f:
            f.write(body.replace(ctl_bin, env.ctl))
    r = subprocess.run(["systemd-analyze", "verify"] + metrics_units,
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ,
                                MANPATH=os.path.join(dest, man)))
    out = (r.stdout + r.stderr).strip()
    check(r.returncode == 0 and "ibvhostd" not in out,
          "systemd-analyze verify: %d %s" % (r.returncode, out))

    # The sysusers file creates the unit's Group=.
    root = env.path("sysroot")
    os.makedirs(os.path.join(root, "etc"))
    r = subprocess.run(["systemd-sysusers", "--root", root,
                        os.path.join(dest, sysusers[0])],
                       capture_output=True, text=True, timeout=60)
    with open(os.path.join(root, "etc", "group")) as f:
        groups = f.read()
    check(r.returncode == 0 and re.search(r"^ibvhostd:x:\d+:", groups, re.M),
          "systemd-sysusers did not create group ibvhostd: %s %s" %
          (r.stderr, groups))

    # The daemon's default config and the unit's -c follow the build's
    # prefix and sysconfdir.
    conf = os.path.join(prefix, opts["sysconfdir"], "ibvhostd",
                        "ibvhostd.conf")
    r = subprocess.run([env.ibvhostd, "--help"], capture_output=True,
                       text=True, timeout=TIMEOUT)
    check("(default %s)" % conf in r.stdout,
          "default config is not %s: %s" % (conf, r.stdout))
    check("-c %s" % conf in text, "unit does not read %s" % conf)

    # --version of both programs is meson's project version.
    version = json.loads(subprocess.run(
        ["meson", "introspect", "--projectinfo", env.build],
        capture_output=True, text=True, timeout=60, check=True).stdout)["version"]
    for prog, name in ((env.ibvhostd, "ibvhostd"), (env.ctl, "ibvhostctl")):
        r = subprocess.run([prog, "--version"], capture_output=True,
                           text=True, timeout=TIMEOUT)
        check(r.returncode == 0 and
              r.stdout.startswith("%s %s" % (name, version)),
              "%s --version: %d %r, want %s" % (name, r.returncode, r.stdout,
                                                version))


def scenario_client(env):
    """Client mode: the frontend listens, the daemon connects, and connects
    again when the frontend comes back."""
    fe_sock = env.path("fe.sock")
    cfg = env.write_config([{"name": "c1", "mode": "client"}])
    with open(cfg) as f:
        text = f.read().replace("socket = %s" % env.path("c1.sock"),
                                "socket = %s" % fe_sock)
    with open(cfg, "w") as f:
        f.write(text)
    env.start_daemon(cfg)
    check(env.port("c1")["mode"] == "client", "mode not client")
    check(env.port("c1")["state"] == "waiting", "client port not waiting")
    for round_ in (1, 2):
        fe = env.start_frontend("c1", ",server=1", sock=fe_sock)
        info = wait_state(env, "c1", "running")
        assert_running(env, "c1", info)
        check(info["connects"] == round_, "connects %d in round %d" %
              (info["connects"], round_))
        env.stop_frontend(fe)
        wait_state(env, "c1", "waiting")
    env.daemon.send_signal(signal.SIGTERM)
    check(env.daemon.wait(timeout=TIMEOUT) == 0, "exit status after SIGTERM")


def scenario_two_daemons(env):
    """Two daemons side by side; a socket in use is refused; sockets left
    by a killed daemon are taken over by the next one."""
    cfg_a = env.write_config([{"name": "a1"}], name="a.conf")
    d_a = env.start_daemon(cfg_a)
    ctl_a = env.path("ctl.sock")
    # Second daemon: own control socket, own port.
    text = open(cfg_a).read().replace(ctl_a, env.path("ctl-b.sock")).replace(
        "[port a1]", "[port b1]").replace(env.path("a1.sock"), env.path("b1.sock"))
    cfg_b = env.path("b.conf")
    with open(cfg_b, "w") as f:
        f.write(text)
    logb = open(env.path("b.log"), "w")
    d_b = subprocess.Popen([env.ibvhostd, "-c", cfg_b], stdout=logb, stderr=logb)
    env.procs.append(d_b)
    wait_for(lambda: os.path.exists(env.path("b1.sock")), "daemon b's port")
    check(d_a.poll() is None and d_b.poll() is None, "a daemon died")
    fe = env.start_frontend("b1")
    wait_for(lambda: json.loads(subprocess.run(
        [env.ctl, "-s", env.path("ctl-b.sock"), "--json", "show-port", "b1"],
        capture_output=True, text=True, timeout=TIMEOUT).stdout)["state"] == "running",
        "b1 running on daemon b")
    check(env.port("a1")["state"] == "waiting", "daemon a's port disturbed")
    env.stop_frontend(fe)

    # A third daemon wanting a1's socket (in use) must refuse to start.
    text = open(cfg_a).read().replace(ctl_a, env.path("ctl-c.sock"))
    cfg_c = env.path("c.conf")
    with open(cfg_c, "w") as f:
        f.write(text)
    r = subprocess.run([env.ibvhostd, "-c", cfg_c], capture_output=True,
                       text=True, timeout=TIMEOUT)
    check(r.returncode == 1 and "in use by another process" in r.stderr,
          "socket in use: exit %d %s" % (r.returncode, r.stderr[-500:]))
    check(not os.path.exists(env.path("ctl-c.sock")), "ctl-c.sock left behind")

    # kill -9 leaves stale sockets; a new daemon takes them over.
    d_a.kill()
    d_a.wait(timeout=TIMEOUT)
    check(os.path.exists(env.path("a1.sock")), "expected a stale socket")
    env.start_daemon(cfg_a)
    fe = env.start_frontend("a1")
    wait_state(env, "a1", "running")
    env.stop_frontend(fe)
    for d in (env.daemon, d_b):
        d.send_signal(signal.SIGTERM)
        check(d.wait(timeout=TIMEOUT) == 0, "exit status after SIGTERM")


def scenario_access(env):
    """Control socket access: mode and group from the config; the peer
    credential check refuses a client even if the file mode is loosened."""
    if os.geteuid() != 0:
        print("SKIP access: needs root to act as other users")
        raise SystemExit(77)  # meson's "skipped"
    cfg = env.write_config([{"name": "a1"}],
                           extra="control_group = 65534\ncontrol_mode = 0660")
    env.start_daemon(cfg)
    os.chmod(env.dir, 0o711)  # let the unprivileged clients reach the socket
    st = os.stat(env.path("ctl.sock"))
    check(stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == 65534,
          "control socket %o gid %d" % (stat.S_IMODE(st.st_mode), st.st_gid))

    def ctl_as(uid, gid):
        return subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                               "--clear-groups", env.ctl, "-s",
                               env.path("ctl.sock"), "show-version"],
                              capture_output=True, text=True, timeout=TIMEOUT)
    r = ctl_as(65534, 65534)
    check(r.returncode == 0, "member of the control group refused: %s" % r.stderr)
    r = ctl_as(65533, 65533)
    check(r.returncode == 3 and "Permission denied" in r.stderr,
          "stranger not stopped by the file mode: %d %s" % (r.returncode, r.stderr))
    os.chmod(env.path("ctl.sock"), 0o666)  # an admin's mistake
    r = ctl_as(65533, 65533)
    check(r.returncode == 1 and "permission denied" in r.stderr,
          "peer credentials not checked: %d %s" % (r.returncode, r.stderr))
    check("refused a client with uid 65533" in env.log_text(), "refusal not logged")
    env.daemon.send_signal(signal.SIGTERM)
    check(env.daemon.wait(timeout=TIMEOUT) == 0, "exit status after SIGTERM")


def scenario_service_group(env):
    """The unit's model without systemd: the daemon runs as root with the
    service group (Group=ibvhostd), the run directory is root:GROUP 0750
    (RuntimeDirectoryMode=). A QEMU user that is a member of the group
    reaches the port and the control socket with no chmod; another user
    does not."""
    if os.geteuid() != 0:
        print("SKIP service-group: needs root to act as other users")
        raise SystemExit(77)
    group = 64990  # the service group; any gid no test user has
    os.chown(env.dir, 0, group)
    os.chmod(env.dir, 0o750)
    cfg = env.write_config([{"name": "vm1"}])
    env.start_daemon(cfg, wrap=["setpriv", "--regid=%d" % group,
                                "--keep-groups"])
    for sock in ("ctl.sock", "vm1.sock"):
        st = os.stat(env.path(sock))
        check(st.st_uid == 0 and st.st_gid == group and
              stat.S_IMODE(st.st_mode) == 0o660,
              "%s: %d:%d %o, want 0:%d 0660" % (sock, st.st_uid, st.st_gid,
                                               stat.S_IMODE(st.st_mode), group))

    def as_user(groups, argv):
        return subprocess.run(["setpriv", "--reuid=65533", "--regid=65533"] +
                              (["--groups=%s" % groups] if groups else
                               ["--clear-groups"]) + argv,
                              capture_output=True, text=True, timeout=TIMEOUT)
    connect = [sys.executable, "-c",
               "import socket,sys; s=socket.socket(socket.AF_UNIX);"
               "s.connect(sys.argv[1]); print('connected')",
               env.path("vm1.sock")]
    r = as_user(str(group), connect)
    check(r.returncode == 0 and "connected" in r.stdout,
          "a member of the service group cannot reach the port: %s" % r.stderr)
    r = as_user(str(group), [env.ctl, "-s", env.path("ctl.sock"), "show-version"])
    check(r.returncode == 0, "a member cannot use the control socket: %s" % r.stderr)
    r = as_user(None, connect)
    check(r.returncode != 0 and "Permission denied" in r.stderr,
          "a user outside the group reached the port: %d %s %s" %
          (r.returncode, r.stdout, r.stderr))
    env.daemon.send_signal(signal.SIGTERM)
    check(env.daemon.wait(timeout=TIMEOUT) == 0, "exit status after SIGTERM")


SCENARIOS = {
    "service-group": scenario_service_group,
    "access": scenario_access,
    "client": scenario_client,
    "two-daemons": scenario_two_daemons,
    "frontends": scenario_frontends,
    "reload": scenario_reload,
    "notify": scenario_notify,
    "config": scenario_config,
    "systemd": scenario_systemd,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SCENARIOS:
        print(__doc__)
        return 2
    env = Env(sys.argv[2])
    # The daemon opens an IB device at start: the emulated fabric, private
    # to this test (its shared memory lives in the test's directory).
    os.environ["LD_LIBRARY_PATH"] = os.path.join(env.build, "tests", "ibemu")
    os.environ["IBEMU_SHM_DIR"] = env.dir
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        SCENARIOS[sys.argv[1]](env)
        print("PASS", sys.argv[1])
        return 0
    except Fail as e:
        print("FAIL %s: %s" % (sys.argv[1], e))
        print("---- ibvhostd log ----\n" + env.log_text()[-6000:])
        return 1
    finally:
        env.cleanup()


if __name__ == "__main__":
    sys.exit(main())
