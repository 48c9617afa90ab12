#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""A production build as a distribution makes it: configure the source
tree with -Dtests=false --prefix=/usr on a system where cmocka cannot be
found, build it, install it into a DESTDIR and check what lands where.

cmocka is hidden by a pkg-config directory that links every system .pc
file except cmocka.pc (PKG_CONFIG_LIBDIR) and by a native file that gives
meson no cmake (cmocka also ships CMake files). The same environment with
-Dtests=true must fail on cmocka, so the test knows the hiding works.

usage: production_build_test.py SOURCE_ROOT SCRATCH_DIR
"""
import glob
import json
import os
import shutil
import subprocess
import sys

TIMEOUT = 600


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run(cmd, env, **kw):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True,
                       timeout=TIMEOUT, **kw)
    return r.returncode, r.stdout + r.stderr


def env_without_cmocka(scratch):
    pcdir = os.path.join(scratch, "pkgconfig")
    os.makedirs(pcdir)
    r = subprocess.run(["pkg-config", "--variable", "pc_path", "pkg-config"],
                       capture_output=True, text=True, check=True)
    for d in r.stdout.strip().split(":"):
        for pc in glob.glob(os.path.join(d, "*.pc")):
            name = os.path.basename(pc)
            dst = os.path.join(pcdir, name)
            if name != "cmocka.pc" and not os.path.exists(dst):
                os.symlink(pc, dst)
    native = os.path.join(scratch, "native.ini")
    with open(native, "w") as f:
        f.write("[binaries]\ncmake = '/bin/false'\n")
    env = dict(os.environ, PKG_CONFIG_LIBDIR=pcdir)
    env.pop("PKG_CONFIG_PATH", None)
    return env, native


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, scratch = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    env, native = env_without_cmocka(scratch)

    # The hiding must work, or the next step proves nothing.
    rc, out = run(["meson", "setup", os.path.join(scratch, "with-tests"), src,
                   "--native-file", native, "-Dtests=true"], env)
    check(rc != 0 and "cmocka" in out,
          "with cmocka hidden, -Dtests=true configured anyway (rc %d): %s" %
          (rc, out[-1500:]))

    build = os.path.join(scratch, "build")
    rc, out = run(["meson", "setup", build, src, "--native-file", native,
                   "-Dtests=false", "-Dprefix=/usr", "-Dwerror=true"], env)
    check(rc == 0, "-Dtests=false without cmocka: configure failed: %s" %
          out[-3000:])
    rc, out = run(["meson", "introspect", "--tests", build], env)
    check(rc == 0 and json.loads(out) == [],
          "-Dtests=false still registers tests: %s" % out[:500])
    rc, out = run(["meson", "introspect", "--targets", build], env)
    names = sorted(t["name"] for t in json.loads(out))
    for t in names:
        check(t not in ("ibverbs", "rdmacm", "vhu-frontend") and
              not t.endswith("_test") and not t.startswith("fuzz_"),
              "-Dtests=false builds test target %s (targets: %s)" % (t, names))
    check("ibvhostd" in names and "ibvhostctl" in names,
          "the programs are not targets: %s" % names)

    rc, out = run(["nice", "-n", "10", "meson", "compile", "-C", build], env)
    check(rc == 0, "production build failed: %s" % out[-3000:])
    rc, out = run([os.path.join(build, "daemon", "ibvhostd"), "--version"], env)
    check(rc == 0 and out.startswith("ibvhostd "),
          "the production ibvhostd does not run: %d %s" % (rc, out))
    dest = os.path.join(scratch, "dest")
    rc, out = run(["meson", "install", "-C", build, "--no-rebuild",
                   "--destdir", dest], env)
    check(rc == 0, "meson install failed: %s" % out[-3000:])
    installed = sorted(os.path.relpath(os.path.join(top, f), dest)
                       for top, _, files in os.walk(dest) for f in files)
    example = "usr/share/doc/ibvhostd/ibvhostd.conf.example"
    for want in ("usr/sbin/ibvhostd", "usr/bin/ibvhostctl", example,
                 "usr/share/doc/ibvhostd/LICENSE"):
        check(want in installed, "%s not installed (got %s)" % (want, installed))
    if shutil.which("scdoc"):
        for page in ("man8/ibvhostd.8", "man8/ibvhostctl.8",
                     "man5/ibvhostd.conf.5"):
            check("usr/share/man/" + page in installed,
                  "man page %s not installed (got %s)" % (page, installed))
    check(not any(f.startswith("etc/") for f in installed),
          "meson install writes to /etc: %s" % installed)
    # The built-in default follows --prefix=/usr, as the unit's -c does.
    ibvhostd = os.path.join(build, "daemon", "ibvhostd")
    rc, out = run([ibvhostd, "--help"], env)
    check("(default /etc/ibvhostd/ibvhostd.conf)" in out,
          "prefix /usr: default config path is not /etc/...: %s" % out)
    with open(os.path.join(build, "systemd", "ibvhostd.service")) as f:
        unit = f.read()
    check("-c /etc/ibvhostd/ibvhostd.conf" in unit and
          "/usr/sbin/ibvhostd" in unit, "unit paths for prefix /usr: %s" % unit)
    # The installed example is valid as installed.
    rc, out = run([ibvhostd, "--check-config", "-c",
                   os.path.join(dest, example)], env)
    check(rc == 0, "installed example rejected: %d %s" % (rc, out))
    # A reinstall (package upgrade) leaves the operator's live file alone.
    live = os.path.join(dest, "etc", "ibvhostd", "ibvhostd.conf")
    os.makedirs(os.path.dirname(live))
    with open(live, "w") as f:
        f.write("# the operator's file\n")
    rc, out = run(["meson", "install", "-C", build, "--no-rebuild",
                   "--destdir", dest], env)
    check(rc == 0, "second meson install failed: %s" % out[-3000:])
    with open(live) as f:
        check(f.read() == "# the operator's file\n",
              "a reinstall overwrote the live config")
    for f in installed:
        check("ibverbs" not in f and "rdmacm" not in f,
              "the emulated fabric was installed: %s" % f)
    print("ok: -Dtests=false configures and builds without cmocka; "
          "installed: %s" % ", ".join(installed))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
