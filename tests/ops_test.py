#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Operator tests: a daemon on the emulated fabric (tests/ibemu), driven
through ibvhostctl as an operator would.

usage: ops_test.py SCENARIO BUILD_DIR
scenarios:
  log-level   ibvhostctl set-log-level debug makes the running daemon log
              its debug lines (a frontend's rings), show-version reports
              the level; a level it does not know is refused with the
              choices, exit 1, and changes nothing; reload applies the
              file's log_level again
Every wait is bounded; everything started is stopped on exit.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath_test import Test  # noqa: E402
from testlib import Fail, check, wait_for  # noqa: E402

TIMEOUT = 30.0


def run_ctl(h, *args):
    return subprocess.run([h.t.ctl, "-s", h.ctl_sock] + list(args),
                          capture_output=True, text=True, timeout=TIMEOUT)


def ring_debug_lines(h, since):
    return [l for l in h.log_text()[since:].splitlines()
            if "debug: port p1: ring" in l]


def frontend_cycle(t, h):
    """A frontend connects, runs its rings briefly and goes."""
    r = t.result(t.frontend("p1", "idle", "--seconds", "0.2",
                            mac="02:00:00:00:0c:01"))
    check(r.get("ok"), "frontend on p1: %s" % r)
    wait_for(lambda: h.port("p1")["state"] == "waiting", "p1 to be waiting")


def scenario_log_level(t):
    h = t.host("A", 1, [{"name": "p1"}])
    check(h.ctl("show-version")["log_level"] == "info",
          "start level: %s" % h.ctl("show-version"))
    pos = len(h.log_text())
    frontend_cycle(t, h)
    check(not ring_debug_lines(h, pos), "debug lines at level info")

    r = run_ctl(h, "set-log-level", "debug")
    check(r.returncode == 0 and r.stdout.strip() ==
          "log level debug (was info)", "set-log-level debug: %d %r %r"
          % (r.returncode, r.stdout, r.stderr))
    r = run_ctl(h, "show-version")
    check(r.returncode == 0 and r.stdout.rstrip().endswith(", log level debug"),
          "show-version text: %r" % r.stdout)
    check(h.ctl("show-version")["log_level"] == "debug", "show-version JSON")
    check("control: log level debug (was info)" in h.log_text(),
          "the change is not logged")
    pos = len(h.log_text())
    frontend_cycle(t, h)
    wait_for(lambda: ring_debug_lines(h, pos), "debug lines at level debug")

    for bad in ("verbose", "DEBUG", "7", ""):
        r = run_ctl(h, "set-log-level", bad)
        check(r.returncode == 1 and r.stderr.strip() ==
              "ibvhostctl: set-log-level: unknown log level '%s' (one of "
              "err|warning|notice|info|debug); level stays debug" % bad,
              "set-log-level %r: %d %r" % (bad, r.returncode, r.stderr))
    r = run_ctl(h, "set-log-level")
    check(r.returncode == 2 and "usage: set-log-level" in r.stderr,
          "no level: %d %r" % (r.returncode, r.stderr))
    check(h.ctl("show-version")["log_level"] == "debug",
          "a refused level changed the level")

    r = run_ctl(h, "set-log-level", "warning")
    check(r.returncode == 0, "set-log-level warning: %r" % r.stderr)
    pos = len(h.log_text())
    frontend_cycle(t, h)
    check(not ring_debug_lines(h, pos), "debug lines at level warning")

    # The file says info: a reload applies it again.
    check(h.ctl("reload")["config"] == h.conf, "reload")
    check(h.ctl("show-version")["log_level"] == "info",
          "after reload: %s" % h.ctl("show-version"))
    print("log-level: set-log-level debug shows debug lines at once, "
          "show-version reports it, bad levels refused, reload restores")


SCENARIOS = {
    "log-level": scenario_log_level,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SCENARIOS:
        print(__doc__)
        return 2
    t = Test(sys.argv[2])
    try:
        SCENARIOS[sys.argv[1]](t)
        print("PASS", sys.argv[1])
        return 0
    except Fail as e:
        print("FAIL %s: %s" % (sys.argv[1], e))
        print(t.logs())
        return 1
    finally:
        t.cleanup()


if __name__ == "__main__":
    sys.exit(main())
