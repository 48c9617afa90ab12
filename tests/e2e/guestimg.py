#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Guest images for the QEMU tests (tests/e2e, tests/softroce): a Debian
kernel and a busybox initramfs, built from Debian packages and cached under
the build folder.

- The kernel is the image package that `linux-image-amd64` depends on,
  fetched with `apt-get download` and unpacked with `dpkg -x` (never
  installed), into CACHE/kernel/<package>/ (CACHE = BUILD/e2e-cache for the
  e2e tests). A tree once unpacked is reused without apt; a caller may name
  other caches' kernel folders to reuse too, and may ask for the package
  apt names now rather than whatever tree is there (`follow_apt`).
- An initramfs is busybox-static, the requested kernel modules with their
  dependencies (load order resolved from each module's `depends=`;
  `.ko.xz`/`.ko.zst`/`.ko.gz` decompressed, busybox insmod loads plain
  `.ko` only), an /init and a role script /etc/rc. It is written as a
  gzip'd newc cpio by this module (no cpio tool needed) and cached by the
  hash of everything that goes in.

The generic /init mounts proc, sys and devtmpfs, loads /etc/modules in
order, and execs /etc/rc; kernel parameters `KEY=VALUE` reach the role
script as environment variables, as the kernel passes them to init. A
caller may give its own /init instead, and `late_modules`: listed in
/etc/modules.late (with those of their dependencies not in /etc/modules)
for an /init that loads them later, e.g. once a root is mounted.

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

# How every /init begins: busybox's applets, proc, sys and devtmpfs.
INIT_START = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
"""

INIT = INIT_START + r"""mkdir -p /tmp /run
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


class KernelUnavailable(BuildError):
    """No kernel cached and none to be had from apt (no package known, or
    the download failed)."""


def run(argv, cwd=None, timeout=None):
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
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


def unpacked(kdirs, pkg=None):
    """The unpacked kernel tree of `pkg` (None: the newest of any) in the
    first of the folders `kdirs` that has one, or None."""
    for kdir in kdirs:
        if not os.path.isdir(kdir):
            continue
        for n in [pkg] if pkg else sorted(os.listdir(kdir), reverse=True):
            root = os.path.join(kdir, n)
            if os.path.exists(os.path.join(root, ".done")):
                return root
    return None


def download_kernel(kdir, pkg):
    """apt-get download + dpkg -x of `pkg` into kdir/pkg; concurrent
    callers do not clash (the tree appears complete or not at all)."""
    root = os.path.join(kdir, pkg)
    os.makedirs(kdir, exist_ok=True)
    tmp = "%s.tmp%d" % (root, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        try:
            run(["apt-get", "download", pkg], cwd=tmp)
        except BuildError as e:
            raise KernelUnavailable("cannot fetch the kernel: %s" % e)
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
    return root


def fetch_kernel(cache, reuse=(), follow_apt=False):
    """Returns (unpacked package root, vmlinuz path, fetched). Downloads and
    unpacks into CACHE/kernel once; later calls reuse the unpacked tree, or
    one in the kernel folders `reuse` (another suite's cache), without apt
    or the network. With `follow_apt`, a cached tree is used only if it is
    of the package apt names now (any, if apt names none); otherwise the
    newest cached one is kept (remove CACHE/kernel for a newer one).
    `fetched`: whether this call downloaded it."""
    kdir = os.path.join(cache, "kernel")
    kdirs = [kdir] + list(reuse)
    pkg = None
    if follow_apt:
        try:
            pkg = kernel_package()
        except BuildError:
            pass
    root = unpacked(kdirs, pkg)
    fetched = root is None
    if root is None:
        if pkg is None:
            try:
                pkg = kernel_package()
            except BuildError as e:
                if os.geteuid() != 0:
                    raise KernelUnavailable(
                        "no kernel package known to apt (%s) and none cached"
                        % e)
                # An image whose apt lists were removed: fetch them once.
                try:
                    run(["apt-get", "update", "-qq"], timeout=600)
                    pkg = kernel_package()
                except (BuildError, subprocess.TimeoutExpired) as e2:
                    raise KernelUnavailable(
                        "no kernel package known to apt after apt-get "
                        "update (%s) and none cached" % e2)
        root = download_kernel(kdir, pkg)
    boot = os.path.join(root, "boot")
    vmlinuz = [f for f in os.listdir(boot) if f.startswith("vmlinuz-")]
    if len(vmlinuz) != 1:
        raise BuildError("%s: expected one vmlinuz, found %s" % (root, vmlinuz))
    return root, os.path.join(boot, vmlinuz[0]), fetched


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


def resolve_modules(index, wanted, have=()):
    """wanted + their dependencies, each after what it depends on, leaving
    out the names in `have` (loaded before). Returns [(name, bytes)]."""
    order, seen, cache = [], set(have), {}

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


def build_initramfs(cache, kroot, modules, rc, files=None, name="guest",
                    init=INIT, late_modules=()):
    """A gzip'd initramfs: busybox, `modules` (and dependencies) listed in
    load order in /etc/modules, /init = `init`, /etc/rc = `rc` (none if
    None), `late_modules` (and dependencies not in /etc/modules) listed in
    /etc/modules.late, plus `files` {path in guest: bytes or str}. Cached
    by content; returns its path."""
    files = dict(files or {})
    # The key: what goes in, with the kernel and busybox named by their
    # unpacked folder and file status (no need to read them again).
    bb = os.stat(BUSYBOX)
    h = hashlib.sha256()
    for part in [kroot, "%d %d" % (bb.st_size, bb.st_mtime_ns), init,
                 "\0(no rc)" if rc is None else rc, " ".join(modules)] + \
            (["late: " + " ".join(late_modules)] if late_modules else []) + \
            ["%s=%s" % (k, v if isinstance(v, str) else v.hex())
             for k, v in sorted(files.items())]:
        h.update(hashlib.sha256(part.encode()).digest())
    out = os.path.join(cache, "%s-%s.cpio.gz" % (name, h.hexdigest()[:16]))
    if os.path.exists(out):
        return out
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    index = module_index(kroot)
    mods = resolve_modules(index, modules)
    late = resolve_modules(index, late_modules, have=[n for n, _ in mods])
    c = Cpio()
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "run", "etc",
              "lib/modules", "root"):
        c.dir(d)
    c.file("bin/busybox", busybox, 0o755)
    c.file("init", init.encode(), 0o755)
    if rc is not None:
        c.file("etc/rc", rc.encode(), 0o755)
    c.file("etc/modules", "".join(n + "\n" for n, _ in mods).encode())
    if late_modules:
        c.file("etc/modules.late", "".join(n + "\n" for n, _ in late).encode())
    for n, d in mods + late:
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
    kroot, vmlinuz, _ = fetch_kernel(cache)
    initrd = build_initramfs(cache, kroot, sys.argv[2:] or VIRTIO_NET_MODULES,
                             "exec /bin/sh\n", name="shell")
    print(vmlinuz)
    print(initrd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
