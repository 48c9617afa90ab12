#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Debian's provider libraries over ibemu's libibverbs.so.1: each
installed direct-verbs provider (libmlx5, libmlx4, libefa, libmana) loads
with every symbol bound at once (RTLD_NOW, as programs built with
-z now do), its constructor's driver registration is harmless, and its
entry points refuse an ibemu device cleanly (EOPNOTSUPP, never a crash);
a private libibverbs call made directly is refused with one line on
stderr. Exit 77 (skip) when no provider library is installed.

usage: providers_test.py IBEMU_LIBDIR
"""
import ctypes
import errno
import os
import subprocess
import sys

LIBDIR_ENV = "IBEMU_PROVIDERS_TEST_CHILD"
PROVIDERS = ["libmlx5.so.1", "libmlx4.so.1", "libefa.so.1", "libmana.so.1"]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def child(libdir):
    """Runs with LD_LIBRARY_PATH=libdir from the start."""
    verbs = ctypes.CDLL("libibverbs.so.1", mode=os.RTLD_NOW | os.RTLD_GLOBAL,
                        use_errno=True)
    if not hasattr(verbs, "ibemu_get_counters"):
        fail("libibverbs.so.1 is not ibemu's (LD_LIBRARY_PATH=%s)" % libdir)
    loaded = {}
    for p in PROVIDERS:
        try:
            loaded[p] = ctypes.CDLL(p, mode=os.RTLD_NOW, use_errno=True)
            print("%s: loaded, every symbol bound" % p)
        except OSError as e:
            if "cannot open shared object" in str(e):
                print("%s: not installed" % p)
                continue
            fail("%s does not load over ibemu: %s" % (p, e))
    if not loaded:
        print("no provider library installed (ibverbs-providers)")
        return 77

    verbs.ibv_get_device_list.restype = ctypes.POINTER(ctypes.c_void_p)
    verbs.ibv_open_device.restype = ctypes.c_void_p
    verbs.ibv_open_device.argtypes = [ctypes.c_void_p]
    verbs.ibv_close_device.argtypes = [ctypes.c_void_p]
    n = ctypes.c_int()
    devs = verbs.ibv_get_device_list(ctypes.byref(n))
    if n.value != 1 or not devs[0]:
        fail("no ibemu device")
    dev = devs[0]
    ctx = verbs.ibv_open_device(dev)
    if not ctx:
        fail("ibv_open_device: errno %d" % ctypes.get_errno())

    checked = []
    mlx5 = loaded.get("libmlx5.so.1")
    if mlx5:
        mlx5.mlx5dv_is_supported.argtypes = [ctypes.c_void_p]
        mlx5.mlx5dv_is_supported.restype = ctypes.c_bool
        if mlx5.mlx5dv_is_supported(dev):
            fail("mlx5dv_is_supported: an ibemu device is an mlx5 device")
        mlx5.mlx5dv_open_device.restype = ctypes.c_void_p
        mlx5.mlx5dv_open_device.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        attr = (ctypes.c_uint64 * 2)()   # flags, comp_mask
        ctypes.set_errno(0)
        r = mlx5.mlx5dv_open_device(dev, ctypes.byref(attr))
        if r or ctypes.get_errno() != errno.EOPNOTSUPP:
            fail("mlx5dv_open_device: %r, errno %d" % (r, ctypes.get_errno()))
        checked += ["mlx5dv_is_supported", "mlx5dv_open_device"]
    efa = loaded.get("libefa.so.1")
    if efa:
        efa.efadv_query_device.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                           ctypes.c_uint32]
        buf = (ctypes.c_uint8 * 256)()
        r = efa.efadv_query_device(ctx, buf, 32)
        if r != errno.EOPNOTSUPP:
            fail("efadv_query_device: %d, want EOPNOTSUPP" % r)
        checked.append("efadv_query_device")
    # A private call made anyway (what a provider would do on a context
    # it took for its own): refused.
    verbs.ibv_cmd_destroy_cq.argtypes = [ctypes.c_void_p]
    r = verbs.ibv_cmd_destroy_cq(None)
    if r != errno.EOPNOTSUPP:
        fail("ibv_cmd_destroy_cq: %d, want EOPNOTSUPP" % r)
    checked.append("ibv_cmd_destroy_cq")
    verbs.ibv_close_device(ctx)
    print("refused cleanly (EOPNOTSUPP): " + ", ".join(checked))
    return 0


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    libdir = os.path.abspath(sys.argv[1])
    if os.environ.get(LIBDIR_ENV) == libdir:
        return child(libdir)
    env = dict(os.environ, LD_LIBRARY_PATH=libdir, **{LIBDIR_ENV: libdir},
               IBEMU_FABRIC="providers%d" % os.getpid())
    r = subprocess.run([sys.executable, os.path.abspath(__file__), libdir],
                       env=env, capture_output=True, text=True, timeout=60)
    sys.stdout.write(r.stdout)
    err = r.stderr
    sys.stdout.write(err)
    if r.returncode == 0:
        want = "ibemu: ibv_cmd_destroy_cq (libibverbs' private interface"
        if err.count(want) != 1:
            fail("the refused private call was not reported once on stderr")
        if err.replace(want, "").count("ibemu:"):
            fail("unexpected ibemu messages on stderr")
        print("PASS")
    for f in os.listdir("/dev/shm"):
        if f.startswith("ibemu-" + env["IBEMU_FABRIC"]):
            os.unlink(os.path.join("/dev/shm", f))
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
