# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""A QEMU (TCG) guest with a vhost-user virtio-net NIC, driven through a
command agent on its second serial port.

The guest is the Debian kernel and a busybox initramfs (guestimg.py) whose
role script configures eth0 from the kernel command line, prints a ready
line on the console (ttyS0, a log file here) and then serves commands on
ttyS1 (a UNIX socket here): the host writes `ID COMMAND\\n`, the guest runs
COMMAND with sh and answers with its output and `@@E2E-DONE ID STATUS`.
"""
import os
import re
import socket
import subprocess
import time

import guestimg

QEMU = "qemu-system-x86_64"
MEM_MB = 256

# Role script: eth0 from the kernel parameters e2e_ip (address/prefix) and
# e2e_name, then the agent on ttyS1.
RC = r"""
echo "rc: guest $e2e_name"
ip link set lo up
if ! ip link set eth0 up; then
	echo "E2E-FAIL $e2e_name: no eth0"; ls /sys/class/net; poweroff -f
fi
ip addr add "$e2e_ip" dev eth0
echo "E2E-READY $e2e_name mtu=$(cat /sys/class/net/eth0/mtu) mac=$(cat /sys/class/net/eth0/address)"
stty -F /dev/ttyS1 raw -echo
exec /bin/sh /etc/agent.sh </dev/ttyS1 >/dev/ttyS1 2>&1
"""

AGENT = r"""
while IFS= read -r line; do
	id=${line%% *}
	sh -c "${line#* }" </dev/null 2>&1
	printf '\n@@E2E-DONE %s %d\n' "$id" "$?"
done
"""


class GuestError(Exception):
    pass


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
                 cpu=None, reconnect=False, nic_opts=""):
        self.name, self.sock, self.mac, self.ip = name, sock, mac, ip
        self.console = os.path.join(workdir, "guest-%s.console" % name)
        self.agent_path = os.path.join(workdir, "guest-%s.agent" % name)
        self.transcript = []
        self.proc = None
        self.conn = None
        self.buf = b""
        self.seq = 0
        self.boot_s = None
        nic = "virtio-net-pci,netdev=n0,mac=%s,vectors=0" % mac
        if mtu:
            nic += ",host_mtu=%d" % mtu
        if nic_opts:
            nic += "," + nic_opts
        chardev = "socket,id=c0,path=%s" % sock
        if reconnect:
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
            "-append", "console=ttyS0 panic=-1 ipv6.disable=1 "
            "e2e_name=%s e2e_ip=%s" % (name, ip),
            "-chardev", "file,id=con,path=%s" % self.console,
            "-serial", "chardev:con",
            "-chardev", "socket,id=agent,path=%s,server=on,wait=off"
            % self.agent_path,
            "-serial", "chardev:agent"]

    def start(self):
        self.t0 = time.monotonic()
        self.qemu_log = open(self.console + ".qemu", "w")
        self.proc = subprocess.Popen(self.argv, stdout=self.qemu_log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
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
        return out

    def wait_ready(self, timeout=90):
        """Until the role script has configured eth0; returns the MTU the
        guest's virtio_net driver took."""
        deadline = time.monotonic() + timeout
        pat = re.compile(r"E2E-READY %s mtu=(\d+)" % re.escape(self.name))
        while time.monotonic() < deadline:
            m = pat.search(self.console_text())
            if m:
                self.boot_s = time.monotonic() - self.t0
                self.mtu = int(m.group(1))
                self._connect(deadline)
                return self.mtu
            if "E2E-FAIL" in self.console_text():
                break
            if self.proc.poll() is not None:
                raise GuestError("guest %s: qemu exited with %d before the "
                                 "guest was ready\n%s" % (
                                     self.name, self.proc.returncode,
                                     self.diagnostics()))
            time.sleep(0.2)
        raise GuestError("guest %s not ready after %ds\n%s" % (
            self.name, timeout, self.diagnostics()))

    def _connect(self, deadline):
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.agent_path)
                self.conn = s
                return
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise GuestError("guest %s: agent socket %s" % (
                        self.name, self.agent_path))
                time.sleep(0.1)

    def sh(self, cmd, timeout=60, check=False, echo=None):
        """Runs `cmd` in the guest; returns (status, output). `echo`: a
        function called with each output line as it arrives."""
        self.seq += 1
        tag = "@@E2E-DONE %d " % self.seq
        self.conn.sendall(("%d %s\n" % (self.seq, cmd)).encode())
        deadline = time.monotonic() + timeout
        out = b""
        shown = 0
        while True:
            i = self.buf.find(tag.encode())
            if i >= 0:
                j = self.buf.find(b"\n", i)
                if j >= 0:
                    out = self.buf[:i]
                    status = int(self.buf[i + len(tag):j])
                    self.buf = self.buf[j + 1:]
                    break
            left = deadline - time.monotonic()
            if left <= 0:
                self.transcript.append("$ %s\n%s\n[timed out after %ds]" % (
                    cmd, self.buf.decode(errors="replace"), timeout))
                raise GuestError("guest %s: `%s` did not finish in %ds\n%s"
                                 % (self.name, cmd, timeout,
                                    self.diagnostics()))
            self.conn.settimeout(min(left, 1.0))
            try:
                data = self.conn.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise GuestError("guest %s: agent connection closed\n%s" % (
                    self.name, self.diagnostics()))
            self.buf += data
            if echo:
                lines = self.buf.split(b"\n")
                for ln in lines[shown:-1]:
                    if not ln.startswith(b"@@E2E-DONE"):
                        echo(ln.decode(errors="replace").rstrip("\r"))
                shown = max(shown, len(lines) - 1)
        text = out.decode(errors="replace").rstrip("\n")
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
