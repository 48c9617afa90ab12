#!/usr/bin/env python3
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

The kernel tree and the initramfs are cached under BUILD_DIR/softroce-cache
(an unpacked kernel in BUILD_DIR/e2e-cache is reused if there is one), so a
second run starts the VM at once. Prints one PASS/FAIL line per check, the
time each stage took and the console's tail on failure. Everything is
bounded by timeouts; QEMU is killed on exit. Exit 0 when every check
passed, 77 (meson: skipped) when QEMU or the kernel cannot be had.
"""
import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUSYBOX = "/bin/busybox"
QEMU = "qemu-system-x86_64"
KERNEL_META = "linux-image-amd64"
KERNEL_FETCHED = False
VM_TIMEOUT = int(os.environ.get("SOFTROCE_VM_TIMEOUT", "900"))

# Loaded by /init before the host root is mounted.
BASE_MODULES = ["virtio", "virtio_ring", "virtio_pci_legacy_dev",
                "virtio_pci_modern_dev", "virtio_pci", "9pnet",
                "9pnet_virtio", "9p", "veth"]
# In this order (issue 6): crc32_generic is no dependency of rdma_rxe by
# modinfo, but `rdma link add` fails with ENOENT without it.
RDMA_MODULES = ["crc32_generic", "udp_tunnel", "ip6_udp_tunnel", "ib_core",
                "ib_uverbs", "rdma_rxe", "configfs", "ib_cm", "iw_cm",
                "rdma_cm", "rdma_ucm"]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
up() { cut -d' ' -f1 /proc/uptime; }
echo "SR: STAGE kernel-boot $(up)"
for m in $(cat /etc/modules.base); do
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
for m in $(cat /etc/modules.rdma); do
	insmod "/lib/modules/$m.ko" || echo "SR: ERROR insmod $m failed"
done
t1=$(up)
echo "SR: STAGE module-load $(awk "BEGIN{print $t1 - $t0}")"
echo "SR: MODULES $(cat /etc/modules.rdma | tr '\n' ' ')"
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


class Skip(Exception):
    pass


class BuildError(Exception):
    pass


def run(argv, cwd=None):
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError("%s failed (%d): %s" % (" ".join(argv), r.returncode,
                                                  r.stderr.strip()[-2000:]))
    return r.stdout


# --- kernel: apt-get download + dpkg -x, cached ------------------------------

def kernel_package():
    out = run(["apt-cache", "depends", KERNEL_META])
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split()[1]
    raise BuildError("apt-cache depends %s: no linux-image dependency"
                     % KERNEL_META)


def unpacked(kdir, pkg=None):
    """An unpacked kernel tree under kdir (the package's, or any)."""
    if not os.path.isdir(kdir):
        return None
    names = [pkg] if pkg else sorted(os.listdir(kdir), reverse=True)
    for n in names:
        root = os.path.join(kdir, n)
        if os.path.exists(os.path.join(root, ".done")):
            return root
    return None


def fetch_kernel(build, cache):
    kdir = os.path.join(cache, "kernel")
    shared = os.path.join(build, "e2e-cache", "kernel")
    try:
        pkg = kernel_package()
    except BuildError:
        pkg = None
    if pkg is None and not (unpacked(kdir) or unpacked(shared)) and \
            os.geteuid() == 0:
        # A machine whose apt lists were cleaned: fetch them once.
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True,
                       timeout=600)
        try:
            pkg = kernel_package()
        except BuildError:
            pass
    root = (unpacked(kdir, pkg) or unpacked(shared, pkg)
            or (None if pkg else unpacked(kdir) or unpacked(shared)))
    global KERNEL_FETCHED
    if root is None:
        KERNEL_FETCHED = True
        if pkg is None:
            raise Skip("no kernel package known to apt (apt-cache depends "
                       "%s) and none cached" % KERNEL_META)
        os.makedirs(kdir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=pkg + ".", dir=kdir)
        try:
            try:
                run(["apt-get", "download", pkg], cwd=tmp)
            except BuildError as e:
                raise Skip("cannot fetch the kernel: %s" % e)
            debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
            if len(debs) != 1:
                raise BuildError("apt-get download %s gave %s" % (pkg, debs))
            run(["dpkg", "-x", debs[0], "tree"], cwd=tmp)
            root = os.path.join(kdir, pkg)
            shutil.rmtree(root, ignore_errors=True)
            os.rename(os.path.join(tmp, "tree"), root)
            open(os.path.join(root, ".done"), "w").close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    boot = os.path.join(root, "boot")
    vml = [f for f in os.listdir(boot) if f.startswith("vmlinuz-")]
    if len(vml) != 1:
        raise BuildError("%s: expected one vmlinuz, found %s" % (boot, vml))
    return root, os.path.join(boot, vml[0])


# --- initramfs: busybox + modules + /init, newc cpio written here -------------

def mod_name(filename):
    for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if filename.endswith(ext):
            return filename[:-len(ext)].replace("-", "_")
    return None


def module_index(kroot):
    index = {}
    for top, _, files in os.walk(os.path.join(kroot, "lib", "modules")):
        for f in files:
            n = mod_name(f)
            if n:
                index[n] = os.path.join(top, f)
    if not index:
        raise BuildError("no kernel modules under %s" % kroot)
    return index


def module_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        r = subprocess.run(["zstd", "-dc", path], capture_output=True)
        if r.returncode != 0:
            raise BuildError("zstd -d %s failed" % path)
        return r.stdout
    return data


def module_depends(data):
    i = data.find(b"\0depends=")
    if i < 0:
        return []
    end = data.index(b"\0", i + 1)
    val = data[i + len(b"\0depends="):end].decode()
    return [d.replace("-", "_") for d in val.split(",") if d]


def resolve(index, wanted, seen, blobs):
    """wanted (in order) plus dependencies, each after what it needs,
    skipping what is in `seen` already."""
    order = []

    def visit(name, chain):
        if name in seen:
            return
        if name in chain:
            raise BuildError("module dependency loop: %s"
                             % " -> ".join(chain + [name]))
        if name not in index:
            raise BuildError("module %s not in the kernel package" % name)
        data = blobs.setdefault(name, module_bytes(index[name]))
        for d in module_depends(data):
            visit(d, chain + [name])
        seen.add(name)
        order.append(name)

    for w in wanted:
        visit(w.replace("-", "_"), [])
    return order


class Cpio:
    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1
        self.names = set()

    def _entry(self, name, mode, data=b"", nlink=1):
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0,
            len(name) + 1, 0))
        self.ino += 1
        self.buf.write(hdr.encode() + name.encode() + b"\0")
        self.buf.write(b"\0" * (-self.buf.tell() % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def dir(self, name):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in self.names:
                self.names.add(p)
                self._entry(p, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name, data, mode=0o644):
        name = name.strip("/")
        if "/" in name:
            self.dir(os.path.dirname(name))
        self.names.add(name)
        self._entry(name, stat.S_IFREG | mode, data)

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def build_initramfs(cache, kroot):
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    index = module_index(kroot)
    seen, blobs = set(), {}
    base = resolve(index, BASE_MODULES, seen, blobs)
    rdma = resolve(index, RDMA_MODULES, seen, blobs)
    h = hashlib.sha256()
    for part in [busybox, INIT.encode(), " ".join(base).encode(),
                 " ".join(rdma).encode()] + [blobs[n] for n in base + rdma]:
        h.update(hashlib.sha256(part).digest())
    out = os.path.join(cache, "softroce-%s.cpio.gz" % h.hexdigest()[:16])
    if os.path.exists(out):
        return out, False
    c = Cpio()
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "run", "etc",
              "lib/modules", "host"):
        c.dir(d)
    c.file("bin/busybox", busybox, 0o755)
    c.file("init", INIT.encode(), 0o755)
    c.file("etc/modules.base", "".join(n + "\n" for n in base).encode())
    c.file("etc/modules.rdma", "".join(n + "\n" for n in rdma).encode())
    for n in base + rdma:
        c.file("lib/modules/%s.ko" % n, blobs[n])
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(gzip.compress(c.finish(), compresslevel=6))
    os.rename(tmp, out)
    for old in os.listdir(cache):  # keep only the current one
        if old.startswith("softroce-") and old.endswith(".cpio.gz") and \
                os.path.join(cache, old) != out:
            os.unlink(os.path.join(cache, old))
    return out, True


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
    append = ("console=ttyS0 quiet loglevel=4 panic=-1 "
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
    for prog in (QEMU, BUSYBOX):
        if not shutil.which(prog):
            print("SKIP: %s not found (tests/install-deps.sh installs it)"
                  % prog)
            return 77
    for f in ("daemon/ibvhostd", "daemon/ibvhostctl",
              "tests/vhu/vhu-frontend"):
        if not os.path.exists(os.path.join(build, f)):
            print("FAIL build: %s missing (build first)" % f)
            return 1
    t0 = time.monotonic()
    try:
        kroot, vmlinuz = fetch_kernel(build, cache)
        t1 = time.monotonic()
        initrd, built = build_initramfs(cache, kroot)
    except Skip as e:
        print("SKIP: %s" % e)
        return 77
    except BuildError as e:
        print("FAIL image: %s" % e)
        return 1
    t2 = time.monotonic()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    stages = [("kernel-fetch" + ("" if KERNEL_FETCHED else " (cached)"),
               t1 - t0),
              ("image-build" + ("" if built else " (cached)"), t2 - t1)]
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
