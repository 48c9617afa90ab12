#!/usr/bin/env python3
"""Guest images for end-to-end tests: a Debian kernel and a busybox
initramfs, built from Debian packages and cached under the build folder.

- The kernel is the image package that `linux-image-amd64` depends on,
  fetched with `apt-get download` and unpacked with `dpkg -x` (never
  installed), into CACHE/kernel/<package>/ (CACHE = BUILD/e2e-cache).
- An initramfs is busybox-static, the requested kernel modules with their
  dependencies (load order resolved from each module's `depends=`;
  `.ko.xz`/`.ko.zst` decompressed, busybox insmod loads plain `.ko` only),
  a generic /init and a role script /etc/rc that /init runs once the
  modules are in. It is written as a gzip'd newc cpio by this module (no
  cpio tool needed) and cached by the hash of everything that goes in.

The generic /init mounts proc, sys and devtmpfs, loads /etc/modules in
order, and execs /etc/rc; kernel parameters `KEY=VALUE` reach the role
script as environment variables, as the kernel passes them to init.

usage: guestimg.py BUILD_DIR [MODULE...]    prints the kernel and initrd
"""
import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import subprocess
import sys

BUSYBOX = "/bin/busybox"
KERNEL_META = "linux-image-amd64"

# The virtio-net guest: PCI transport (legacy and modern) and the driver.
VIRTIO_NET_MODULES = ["virtio", "virtio_ring", "virtio_pci_legacy_dev",
                      "virtio_pci_modern_dev", "virtio_pci", "failover",
                      "net_failover", "virtio_net"]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp /run
mount -t tmpfs tmp /tmp
while read -r m; do
	[ -n "$m" ] || continue
	insmod "/lib/modules/$m.ko" || echo "init: insmod $m failed"
done < /etc/modules
echo "init: modules loaded: $(cat /etc/modules | tr '\n' ' ')"
exec /bin/sh /etc/rc
"""


class BuildError(Exception):
    pass


def run(argv, cwd=None):
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError("%s failed (%d): %s" % (" ".join(argv), r.returncode,
                                                  r.stderr.strip()[-2000:]))
    return r.stdout


def kernel_package():
    """The image package the metapackage depends on (from the local apt
    cache, so it works offline once the cache below is filled)."""
    out = run(["apt-cache", "depends", KERNEL_META])
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split()[1]
    raise BuildError("apt-cache depends %s: no linux-image dependency"
                     % KERNEL_META)


def fetch_kernel(cache):
    """Returns (kernel version dir root, vmlinuz path). Downloads and
    unpacks once; later calls reuse the unpacked tree."""
    kdir = os.path.join(cache, "kernel")
    os.makedirs(kdir, exist_ok=True)
    have = sorted(d for d in os.listdir(kdir) if
                  os.path.exists(os.path.join(kdir, d, ".done")))
    # A kernel once unpacked is kept (remove CACHE/kernel for a newer one):
    # later runs need neither apt nor the network.
    if have:
        pkg = have[-1]
    else:
        try:
            pkg = kernel_package()
        except BuildError:
            if os.geteuid() != 0:
                raise
            # An image whose apt lists were removed: fetch them once.
            run(["apt-get", "update", "-qq"])
            pkg = kernel_package()
    root = os.path.join(kdir, pkg)
    if not os.path.exists(os.path.join(root, ".done")):
        tmp = "%s.tmp%d" % (root, os.getpid())
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        try:
            run(["apt-get", "download", pkg], cwd=tmp)
            debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
            if len(debs) != 1:
                raise BuildError("apt-get download %s gave %s" % (pkg, debs))
            tree = os.path.join(tmp, "tree")
            run(["dpkg", "-x", debs[0], tree], cwd=tmp)
            open(os.path.join(tree, ".done"), "w").close()
            if not os.path.exists(os.path.join(root, ".done")):
                shutil.rmtree(root, ignore_errors=True)
                os.rename(tree, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    vmlinuz = [f for f in os.listdir(os.path.join(root, "boot"))
               if f.startswith("vmlinuz-")]
    if len(vmlinuz) != 1:
        raise BuildError("%s: expected one vmlinuz, found %s" % (pkg, vmlinuz))
    return root, os.path.join(root, "boot", vmlinuz[0])


def _mod_name(filename):
    base = os.path.basename(filename)
    for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(ext):
            return base[:-len(ext)].replace("-", "_")
    return None


def module_index(kroot):
    """name -> path of every module in the unpacked kernel tree."""
    index = {}
    for top, _, files in os.walk(os.path.join(kroot, "lib", "modules")):
        for f in files:
            n = _mod_name(f)
            if n:
                index[n] = os.path.join(top, f)
    if not index:
        raise BuildError("no kernel modules under %s" % kroot)
    return index


def module_bytes(path):
    """The plain ELF module (busybox insmod takes no compressed ones)."""
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
    """The `depends=` list of a module's .modinfo."""
    i = data.find(b"\0depends=")
    if i < 0:
        return []
    end = data.index(b"\0", i + 1)
    val = data[i + len(b"\0depends="):end].decode()
    return [d.replace("-", "_") for d in val.split(",") if d]


def resolve_modules(index, wanted):
    """wanted + their dependencies, each after what it depends on.
    Returns [(name, bytes)]."""
    order, seen, cache = [], set(), {}

    def visit(name, chain):
        if name in seen:
            return
        if name in chain:
            raise BuildError("module dependency loop: %s" % " -> ".join(
                chain + [name]))
        if name not in index:
            raise BuildError("module %s not in the kernel package (built "
                             "in, or misspelt?)" % name)
        data = cache.setdefault(name, module_bytes(index[name]))
        for d in module_depends(data):
            visit(d, chain + [name])
        seen.add(name)
        order.append((name, data))

    for w in wanted:
        visit(w.replace("-", "_"), [])
    return order


class Cpio:
    """A newc cpio archive written in memory."""

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


def build_initramfs(cache, kroot, modules, rc, files=None, name="guest"):
    """A gzip'd initramfs: busybox, `modules` (and dependencies), /init,
    /etc/rc = `rc`, plus `files` {path in guest: bytes or str}. Cached by
    content; returns its path."""
    files = dict(files or {})
    # The key: what goes in, with the kernel and busybox named by their
    # unpacked folder and file status (no need to read them again).
    bb = os.stat(BUSYBOX)
    h = hashlib.sha256()
    for part in [kroot, "%d %d" % (bb.st_size, bb.st_mtime_ns), INIT, rc,
                 " ".join(modules)] + \
            ["%s=%s" % (k, v if isinstance(v, str) else v.hex())
             for k, v in sorted(files.items())]:
        h.update(hashlib.sha256(part.encode()).digest())
    out = os.path.join(cache, "%s-%s.cpio.gz" % (name, h.hexdigest()[:16]))
    if os.path.exists(out):
        return out
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    mods = resolve_modules(module_index(kroot), modules)
    c = Cpio()
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "run", "etc",
              "lib/modules", "root"):
        c.dir(d)
    c.file("bin/busybox", busybox, 0o755)
    c.file("init", INIT.encode(), 0o755)
    c.file("etc/rc", rc.encode(), 0o755)
    c.file("etc/modules", "".join(n + "\n" for n, _ in mods).encode())
    for n, d in mods:
        c.file("lib/modules/%s.ko" % n, d)
    for path, data in sorted(files.items()):
        c.file(path, data if isinstance(data, bytes) else data.encode(),
               0o755 if path.endswith(".sh") else 0o644)
    tmp = out + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(gzip.compress(c.finish(), compresslevel=6))
    os.rename(tmp, out)
    for f in os.listdir(cache):  # older builds of this image
        if f.startswith(name + "-") and f.endswith(".cpio.gz") and \
                f != os.path.basename(out):
            os.unlink(os.path.join(cache, f))
    return out


def cache_dir(build):
    d = os.path.join(os.path.abspath(build), "e2e-cache")
    os.makedirs(d, exist_ok=True)
    return d


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cache = cache_dir(sys.argv[1])
    kroot, vmlinuz = fetch_kernel(cache)
    initrd = build_initramfs(cache, kroot, sys.argv[2:] or VIRTIO_NET_MODULES,
                             "exec /bin/sh\n", name="shell")
    print(vmlinuz)
    print(initrd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
