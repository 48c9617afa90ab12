#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Soft-RoCE: ibvhostd on real kernel verbs (rdma_rxe) inside a QEMU VM.

usage: softroce_test.py BUILD_DIR [--guest-OPTION...]
       (--guest-no-testpmd: skip the dpdk-testpmd step;
        --guest-busy: the daemons busy-poll instead of poll_mode = adaptive)

Boots Debian's kernel (the image package `linux-image-amd64` depends on,
fetched with `apt-get download`, unpacked with `dpkg -x`, never installed)
under QEMU TCG with a busybox-static initramfs. The VM's root is this
machine's own userspace, read-only through virtio-9p, so rdma-core, iproute2,
DPDK, python3 and the built project are there as they are here; /tmp, /run
and /dev/shm are tmpfs in the VM. The initramfs's /init loads the virtio and
9p modules, mounts the host root, loads the RDMA modules (crc32_generic
first: `rdma link add` fails with ENOENT without it) and runs
tests/softroce/guest.py in a chroot of the host root. guest.py creates
rxe0/rxe1 on the two ends of a veth pair and runs the checks (see its
docstring); it prints `SR: ...` lines on the console, which QEMU writes to
a file this script reads.

The kernel fetch and the initramfs writer are tests/e2e/guestimg.py's; the
kernel tree and the initramfs are cached under BUILD_DIR/softroce-cache (an
unpacked kernel of the same package in BUILD/e2e-cache is reused), so a
second run starts the VM at once. Prints one PASS/FAIL line per check, the
time each stage took and the console's tail on failure. Everything is
bounded by timeouts; QEMU is killed on exit. Exit 0 when every check
passed, 77 (meson: skipped) when QEMU or the kernel cannot be had.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(HERE, "..", "e2e"))
import guestimg  # noqa: E402  (tests/e2e: kernel fetch, initramfs writer)

QEMU = "qemu-system-x86_64"
VM_TIMEOUT = int(os.environ.get("SOFTROCE_VM_TIMEOUT", "900"))

# Loaded by /init before the host root is mounted (/etc/modules).
BASE_MODULES = ["virtio", "virtio_ring", "virtio_pci_legacy_dev",
                "virtio_pci_modern_dev", "virtio_pci", "9pnet",
                "9pnet_virtio", "9p", "veth"]
# Loaded once it is mounted (/etc/modules.late), in this order (issue 6):
# crc32_generic is no dependency of rdma_rxe by modinfo, but `rdma link add`
# fails with ENOENT without it.
RDMA_MODULES = ["crc32_generic", "udp_tunnel", "ip6_udp_tunnel", "ib_core",
                "ib_uverbs", "rdma_rxe", "configfs", "ib_cm", "iw_cm",
                "rdma_cm", "rdma_ucm"]

INIT = guestimg.INIT_START + r"""up() { cut -d' ' -f1 /proc/uptime; }
echo "SR: STAGE kernel-boot $(up)"
for m in $(cat /etc/modules); do
	insmod "/lib/modules/$m.ko" || echo "SR: ERROR insmod $m failed"
done
mkdir -p /host
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host; then
	echo "SR: ERROR mounting the host root over 9p failed"
	poweroff -f
fi
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/shm /host/dev/pts
mount -t tmpfs shm /host/dev/shm
mount -t devpts pts /host/dev/pts
mount -t tmpfs run /host/run
mkdir -p /host/run/tmp
# A tmpfs /tmp too, unless the project lives under the host's /tmp.
[ "$sr_keeptmp" = 1 ] || mount -t tmpfs tmp /host/tmp
t0=$(up)
for m in $(cat /etc/modules.late); do
	insmod "/lib/modules/$m.ko" || echo "SR: ERROR insmod $m failed"
done
t1=$(up)
echo "SR: STAGE module-load $(awk "BEGIN{print $t1 - $t0}")"
echo "SR: MODULES $(cat /etc/modules.late | tr '\n' ' ')"
mount -t configfs configfs /host/sys/kernel/config 2>/dev/null
ip link set lo up
echo "SR: GUEST-START"
ulimit -l unlimited
chroot /host /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/run/tmp TMPDIR=/run/tmp PYTHONDONTWRITEBYTECODE=1 \
	/usr/bin/python3 -u "$sr_guest" "$sr_build" $sr_args
echo "SR: GUEST-EXIT $?"
echo "SR: DMESG-BEGIN"
dmesg | grep -iE 'rxe|rdma|infiniband|ib_|9p|veth|error|fail|warn' | tail -n 60
echo "SR: DMESG-END"
poweroff -f
"""


def images(build, cache):
    """(vmlinuz, initrd, stage timings): guestimg's kernel (the package apt
    names now; e2e's unpacked tree of it reused) and initramfs."""
    t0 = time.monotonic()
    kroot, vmlinuz, fetched = guestimg.fetch_kernel(
        cache, reuse=[os.path.join(build, "e2e-cache", "kernel")],
        follow_apt=True)
    t1 = time.monotonic()
    before = set(os.listdir(cache))
    initrd = guestimg.build_initramfs(cache, kroot, BASE_MODULES, None,
                                      name="softroce", init=INIT,
                                      late_modules=RDMA_MODULES)
    built = os.path.basename(initrd) not in before
    t2 = time.monotonic()
    return vmlinuz, initrd, [
        ("kernel-fetch" + ("" if fetched else " (cached)"), t1 - t0),
        ("image-build" + ("" if built else " (cached)"), t2 - t1)]


# --- the VM -------------------------------------------------------------------

def console_tail(path, n=80):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no console log)"


def boot_vm(build, vmlinuz, initrd, log, extra_args):
    guest = os.path.join(HERE, "guest.py")
    under_tmp = any(p == "/tmp" or p.startswith("/tmp/")
                    for p in (build, os.path.realpath(guest)))
    # no_timer_check: see tests/e2e/guest.py (TCG on a busy host).
    append = ("console=ttyS0 quiet loglevel=4 panic=-1 no_timer_check "
              "sr_guest=%s sr_build=%s sr_args=%s sr_keeptmp=%d"
              % (guest, build, ",".join(extra_args) or "-", under_tmp))
    argv = [QEMU, "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1024",
            "-nic", "none", "-nographic", "-no-reboot",
            "-monitor", "none", "-serial", "file:" + log,
            "-kernel", vmlinuz, "-initrd", initrd, "-append", append,
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,"
            "readonly=on,multidevs=remap"]
    out = open(log + ".qemu", "w")
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, preexec_fn=die_with_parent)


def die_with_parent():
    """QEMU gets SIGKILL if this script dies, however it dies."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PDEATHSIG
    except (OSError, AttributeError):
        pass


def kill_vm(p):
    if p and p.poll() is None:
        p.kill()
        p.wait()


def on_signal(signum, _frame):
    raise SystemExit("softroce: signal %d" % signum)


def follow(p, log, deadline):
    """Print the guest's SR: lines as they come; returns all of them."""
    pos, lines, partial = 0, [], ""
    while True:
        done = p.poll() is not None
        try:
            with open(log, errors="replace") as f:
                f.seek(pos)
                chunk = f.read()
                pos = f.tell()
        except OSError:
            chunk = ""
        partial += chunk
        *full, partial = partial.split("\n")
        for line in full:
            line = line.rstrip("\r")
            i = line.find("SR: ")
            if i >= 0:
                line = line[i + 4:]
                lines.append(line)
                print("  vm: " + line, flush=True)
        if done:
            return lines, False
        if time.monotonic() > deadline:
            return lines, True
        time.sleep(0.2)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__)
        return 2
    build = os.path.abspath(args[0])
    cache = os.path.join(build, "softroce-cache")
    os.makedirs(cache, exist_ok=True)
    for prog in (QEMU, guestimg.BUSYBOX):
        if not shutil.which(prog):
            print("SKIP: %s not found (tests/install-deps.sh installs it)"
                  % prog)
            return 77
    for f in ("daemon/ibvhostd", "daemon/ibvhostctl",
              "tests/vhu/vhu-frontend"):
        if not os.path.exists(os.path.join(build, f)):
            print("FAIL build: %s missing (build first)" % f)
            return 1
    try:
        vmlinuz, initrd, stages = images(build, cache)
    except guestimg.KernelUnavailable as e:
        print("SKIP: %s" % e)
        return 77
    except guestimg.BuildError as e:
        print("FAIL image: %s" % e)
        return 1
    t2 = time.monotonic()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    print("kernel %s\ninitramfs %s" % (vmlinuz, initrd), flush=True)
    log = os.path.join(cache, "console.log")
    if os.path.exists(log):
        os.unlink(log)
    p = boot_vm(build, vmlinuz, initrd, log,
                [a[len("--guest-"):] for a in sys.argv[1:]
                 if a.startswith("--guest-")])
    try:
        lines, timed_out = follow(p, log, time.monotonic() + VM_TIMEOUT)
    finally:
        kill_vm(p)
    t3 = time.monotonic()
    qemu_out = console_tail(log + ".qemu", 40)

    results, guest_exit, rtt = [], None, None
    for line in lines:
        m = re.match(r"STAGE (\S+) ([\d.]+)", line)
        if m:
            stages.append((m.group(1), float(m.group(2))))
        m = re.match(r"(PASS|FAIL) (\S+)(.*)", line)
        if m:
            results.append((m.group(1), m.group(2), m.group(3).strip()))
        if line.startswith("RTT "):
            rtt = line
        m = re.match(r"GUEST-EXIT (\d+)", line)
        if m:
            guest_exit = int(m.group(1))
    stages.append(("vm-total", t3 - t2))
    print("\n---- stage timings (s) ----")
    for name, secs in stages:
        print("  %-28s %7.2f" % (name, secs))
    print("---- checks ----")
    for r in results:
        print("%s %s %s" % r)
    ok = (not timed_out and guest_exit == 0 and results
          and all(r[0] == "PASS" for r in results))
    if not ok:
        why = ("VM timed out after %ds" % VM_TIMEOUT if timed_out else
               "guest exited %s" % guest_exit if guest_exit is not None else
               "the guest script never finished")
        print("FAIL softroce: %s" % why)
        if qemu_out.strip():
            print("---- qemu ----\n" + qemu_out[-2000:])
        print("---- console tail ----\n" + console_tail(log, 120))
        return 1
    if rtt:
        print("vhu-frontend pingpong over rxe, guest to guest: " + rtt)
    print("PASS softroce: %d checks (console: %s)" % (len(results), log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
