# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Helpers shared by the Python test scripts (foundation, datapath, e2e,
hardening, softroce guest, bench): failures, bounded waits, ibvhostctl
--json calls, and cleanup of processes and DPDK EAL runtime directories.

Scripts in subfolders put tests/ on sys.path before importing it. The
Soft-RoCE guest imports it too, inside its VM: the VM runs in a chroot of
this machine's root (read-only over 9p), so the same path holds it.
"""
import json
import os
import shutil
import subprocess
import time

TIMEOUT = 30.0


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def wait_for(pred, what, timeout=TIMEOUT, interval=0.1, ignore=()):
    """Polls pred() every `interval` s until it returns a true value, which
    is returned; Fail after `timeout` s. Exceptions in `ignore` raised by
    pred count as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = pred()
        except ignore:
            v = None
        if v:
            return v
        time.sleep(interval)
    raise Fail("timed out after %.0f s waiting for %s" % (timeout, what))


class Ctl:
    """ibvhostctl --json against one daemon's control socket. Host classes
    inherit it (Ctl.__init__ with the ibvhostctl binary and the socket)."""

    def __init__(self, binary, sock, name="", timeout=TIMEOUT):
        self.ctl_bin, self.ctl_sock = binary, sock
        self.ctl_name, self.ctl_timeout = name, timeout

    def ctl(self, *args, quiet=False, text=False):
        """The command's JSON answer (its text output with text=True);
        a failure raises Fail, or returns None with quiet=True."""
        argv = [self.ctl_bin, "-s", self.ctl_sock] + ([] if text else
                                                      ["--json"]) + list(args)
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=self.ctl_timeout)
        if r.returncode != 0:
            if quiet:
                return None
            raise Fail("ibvhostctl %s%s failed (%d): %s" % (
                " ".join(args), " on " + self.ctl_name if self.ctl_name
                else "", r.returncode, r.stderr.strip()))
        return r.stdout if text else json.loads(r.stdout)

    def port(self, name):
        return self.ctl("show-port", name)

    def counters(self, name):
        return self.port(name)["counters"]

    def fdb(self, name):
        return {e["mac"]: e for e in self.ctl("show-fdb", name)}


def kill_procs(procs):
    """SIGKILL what still runs, newest first, and reap it."""
    for p in reversed(procs):
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def eal_run_dir():
    """Where DPDK's EAL keeps its per-process runtime directories."""
    return "/var/run/dpdk" if os.geteuid() == 0 else os.path.join(
        os.environ.get("XDG_RUNTIME_DIR", "/tmp"), "dpdk")


def remove_eal_dirs(procs, prefixes=()):
    """Removes the EAL runtime directories of the given --file-prefix
    names and of each daemon among procs (ibvhostd-PID): testpmd leaves
    its own behind, and a daemon killed with SIGKILL cannot remove its."""
    run = eal_run_dir()
    for p in prefixes:
        shutil.rmtree(os.path.join(run, p), ignore_errors=True)
    for p in procs:
        shutil.rmtree(os.path.join(run, "ibvhostd-%d" % p.pid),
                      ignore_errors=True)


def run_scenario(doc, scenarios, make_test, argv):
    """`PROGRAM SCENARIO BUILD_DIR`: runs one scenario on a fresh test
    (make_test(build_dir)), prints PASS or FAIL with the logs, always
    cleans up. Returns the exit status."""
    if len(argv) != 3 or argv[1] not in scenarios:
        print(doc)
        return 2
    t = make_test(argv[2])
    try:
        scenarios[argv[1]](t)
        print("PASS", argv[1])
        return 0
    except Fail as e:
        print("FAIL %s: %s" % (argv[1], e))
        print(t.logs())
        return 1
    finally:
        t.cleanup()
