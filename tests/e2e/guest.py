# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""A QEMU (TCG) guest with a vhost-user virtio-net NIC, driven through a
command agent on its second serial port.

The guest is the Debian kernel and a busybox initramfs (guestimg.py) whose
role script configures eth0 from the kernel command line, prints a ready
line on the console (ttyS0, a log file here) and then execs the command
agent on ttyS1 (a UNIX socket here, connected as soon as QEMU has made
it). The agent and its protocol are in agent.py: it announces itself once
its port is in raw mode, and every command and reply is framed and
checksummed, so a lost byte means a resend, never a wrong command run.
"""
import os
import re
import socket
import subprocess
import time

import guestimg
from agent import AGENT, Agent, GuestError  # noqa: F401 (GuestError: API)

QEMU = "qemu-system-x86_64"
MEM_MB = 256
CONNECT_TIMEOUT = 30.0   # QEMU start to its agent socket
AGENT_READY_MIN_S = 30.0  # console ready to agent ready, at least

# Role script: eth0 from the kernel parameters e2e_ip (address/prefix) and
# e2e_name, then the agent on ttyS1. The agent sets the port raw itself,
# on the descriptor it then reads: `stty -F` would open and close the
# port, and a tty closed by its last user drops what arrives meanwhile.
RC = r"""
echo "rc: guest $e2e_name"
ip link set lo up
if ! ip link set eth0 up; then
	echo "E2E-FAIL $e2e_name: no eth0"; ls /sys/class/net; poweroff -f
fi
ip addr add "$e2e_ip" dev eth0
echo "E2E-READY $e2e_name mtu=$(cat /sys/class/net/eth0/mtu) mac=$(cat /sys/class/net/eth0/address)"
exec /bin/sh /etc/agent.sh </dev/ttyS1 >/dev/ttyS1 2>/dev/null
"""


def images(build):
    """(vmlinuz, initrd) of the virtio-net test guest, built once."""
    cache = guestimg.cache_dir(build)
    kroot, vmlinuz, _ = guestimg.fetch_kernel(cache)
    initrd = guestimg.build_initramfs(
        cache, kroot, guestimg.VIRTIO_NET_MODULES, RC,
        files={"etc/agent.sh": AGENT}, name="vnet-guest")
    return vmlinuz, initrd


class Guest:
    """One QEMU process. `sock` is the daemon port's vhost-user socket."""

    def __init__(self, workdir, name, sock, mac, ip, mtu, vmlinuz, initrd,
                 cpu=None, reconnect=False, nic_opts="", server=False):
        self.name, self.sock, self.mac, self.ip = name, sock, mac, ip
        self.console = os.path.join(workdir, "guest-%s.console" % name)
        self.agent_path = os.path.join(workdir, "guest-%s.agent" % name)
        self.transcript = []
        self.proc = None
        self.conn = None
        self.agent = None
        self.boot_s = None
        nic = "virtio-net-pci,netdev=n0,mac=%s,vectors=0" % mac
        if mtu:
            nic += ",host_mtu=%d" % mtu
        if nic_opts:
            nic += "," + nic_opts
        chardev = "socket,id=c0,path=%s" % sock
        if server:
            # QEMU listens, the daemon's port (mode = client) connects
            # and reconnects: the layout OVS recommends.
            chardev += ",server=on,wait=off"
        elif reconnect:
            chardev += ",reconnect=1"
        self.argv = ([] if cpu is None else ["taskset", "-c", str(cpu)]) + [
            QEMU, "-accel", "tcg", "-m", str(MEM_MB), "-smp", "1",
            "-nodefaults", "-display", "none", "-no-reboot",
            "-object", "memory-backend-memfd,id=mem,size=%dM,share=on"
            % MEM_MB,
            "-numa", "node,memdev=mem",
            "-chardev", chardev,
            "-netdev", "vhost-user,id=n0,chardev=c0",
            "-device", nic,
            "-kernel", vmlinuz, "-initrd", initrd,
            # no_timer_check: under TCG on a busy host the kernel's
            # early timer-IRQ check can miss its window and panic
            # ("IO-APIC + timer doesn't work!").
            "-append", "console=ttyS0 panic=-1 ipv6.disable=1 "
            "no_timer_check "
            "e2e_name=%s e2e_ip=%s" % (name, ip),
            "-chardev", "file,id=con,path=%s" % self.console,
            "-serial", "chardev:con",
            "-chardev", "socket,id=agent,path=%s,server=on,wait=off"
            % self.agent_path,
            "-serial", "chardev:agent"]

    def start(self):
        """Starts QEMU and connects to the agent's port before the guest
        can have booted to it (QEMU makes the socket before the machine
        runs); wait_ready() does not depend on that."""
        self.t0 = time.monotonic()
        self.qemu_log = open(self.console + ".qemu", "w")
        self.proc = subprocess.Popen(self.argv, stdout=self.qemu_log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        try:
            self._connect(time.monotonic() + CONNECT_TIMEOUT)
        except GuestError:
            self.stop()   # the caller has no guest to stop
            raise
        self.agent = Agent(self.conn.sendall, self._recv,
                           "guest %s" % self.name,
                           alive=lambda: self.proc.poll() is None)
        return self

    def console_text(self):
        try:
            with open(self.console, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def qemu_text(self):
        try:
            with open(self.console + ".qemu", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def diagnostics(self, lines=25):
        con = self.console_text().splitlines()[-lines:]
        out = "---- guest %s console (last %d lines) ----\n%s\n" % (
            self.name, lines, "\n".join(con))
        if self.qemu_text().strip():
            out += "---- guest %s qemu ----\n%s\n" % (
                self.name, self.qemu_text()[-1500:])
        if self.transcript:
            out += "---- guest %s commands (last 10) ----\n%s\n" % (
                self.name, "\n".join(self.transcript[-10:]))
        if self.agent and self.agent.events:
            out += "---- guest %s agent events (last 10) ----\n%s\n" % (
                self.name, "\n".join(self.agent.events[-10:]))
        return out

    def wait_ready(self, timeout=90):
        """Until the role script has configured eth0 and the agent has
        announced itself on its port; returns the MTU the guest's
        virtio_net driver took."""
        deadline = time.monotonic() + timeout
        pat = re.compile(r"E2E-READY %s mtu=(\d+)" % re.escape(self.name))
        while True:
            m = pat.search(self.console_text())
            if m:
                self.boot_s = time.monotonic() - self.t0
                self.mtu = int(m.group(1))
                break
            if "E2E-FAIL" in self.console_text():
                raise GuestError("guest %s failed to boot\n%s" % (
                    self.name, self.diagnostics()))
            self._check_alive("before the guest was ready")
            if time.monotonic() >= deadline:
                raise GuestError("guest %s not ready after %ds\n%s" % (
                    self.name, timeout, self.diagnostics()))
            time.sleep(0.2)   # polling the console file, bounded above
        try:
            self.agent.wait_ready(max(deadline - time.monotonic(),
                                      AGENT_READY_MIN_S))
        except GuestError as e:
            raise GuestError("%s\n%s" % (e, self.diagnostics()))
        return self.mtu

    def _check_alive(self, when):
        if self.proc.poll() is not None:
            raise GuestError("guest %s: qemu exited with %d %s\n%s" % (
                self.name, self.proc.returncode, when, self.diagnostics()))

    def _connect(self, deadline):
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.agent_path)
                self.conn = s
                return
            except OSError:
                s.close()
                self._check_alive("before making its agent socket")
                if time.monotonic() > deadline:
                    raise GuestError("guest %s: no agent socket %s" % (
                        self.name, self.agent_path))
                time.sleep(0.05)   # until QEMU has made it, bounded

    def _recv(self, timeout):
        self.conn.settimeout(timeout)
        try:
            return self.conn.recv(65536)
        except socket.timeout:
            return None

    def sh(self, cmd, timeout=60, check=False, echo=None):
        """Runs `cmd` in the guest; returns (status, output). `echo`: a
        function called with each output line (once the command is done:
        the output travels checksummed, in one piece)."""
        try:
            status, out = self.agent.run(cmd, timeout)
        except GuestError as e:
            self.transcript.append("$ %s\n[%s]" % (cmd, e))
            raise GuestError("%s\n%s" % (e, self.diagnostics()))
        text = out.decode(errors="replace").rstrip("\n")
        if self.agent.resends:
            print("guest %s: command %d sent %d times (%s): %s" % (
                self.name, self.agent.seq, self.agent.sends,
                "; ".join(self.agent.resends), cmd), flush=True)
        if echo:
            for ln in text.split("\n"):
                echo(ln.rstrip("\r"))
        self.transcript.append("$ %s\n%s\n[status %d]" % (cmd, text[-2000:],
                                                         status))
        if check and status != 0:
            raise GuestError("guest %s: `%s` failed (%d):\n%s\n%s" % (
                self.name, cmd, status, text[-2000:], self.diagnostics()))
        return status, text

    def stop(self):
        if self.conn:
            self.conn.close()
            self.conn = None
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            self.qemu_log.close()


def ping_stats(text):
    """(transmitted, received, avg RTT ms or None) from busybox ping."""
    m = re.search(r"(\d+) packets transmitted, (\d+) packets received", text)
    if not m:
        return 0, 0, None
    rtt = re.search(r"min/avg/max = [\d.]+/([\d.]+)/[\d.]+ ms", text)
    return int(m.group(1)), int(m.group(2)), (float(rtt.group(1))
                                              if rtt else None)
