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
  completion  the bash completion as meson installs it, sourced in bash:
              command prefixes complete to the running daemon's commands
              (ibvhostctl's own table when none answers, the same set),
              port arguments to its port names, set-log-level to the
              levels, -s selects the daemon
Every wait is bounded; everything started is stopped on exit.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath_test import Test  # noqa: E402
from testlib import check, run_scenario, wait_for  # noqa: E402

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


def install_completion(t):
    """meson install into a scratch destdir; the completion file's path."""
    opts = {o["name"]: o["value"] for o in json.loads(subprocess.run(
        ["meson", "introspect", "--buildoptions", t.build],
        capture_output=True, text=True, check=True).stdout)}
    dest = t.path("destdir")
    r = subprocess.run(["meson", "install", "-C", t.build, "--no-rebuild",
                        "--destdir", dest], capture_output=True, text=True,
                       timeout=120)
    check(r.returncode == 0, "meson install: %s" % (r.stdout + r.stderr)[-2000:])
    path = os.path.join(dest, opts["prefix"].lstrip("/"), opts["datadir"],
                        "bash-completion", "completions", "ibvhostctl")
    check(os.path.isfile(path), "no completion at %s" % path)
    return path


# Sources the completion, finds the function `complete -p ibvhostctl`
# names, and calls it as bash does on TAB with the cursor at the end of
# the line; prints COMPREPLY.
COMPLETE_SH = r"""
set -u
source "$1"
spec=$(complete -p ibvhostctl) || exit 3
fn=$(sed -n 's/.*-F \([^ ]*\) .*/\1/p' <<<"$spec")
COMP_LINE=$2
COMP_POINT=${#COMP_LINE}
read -r -a COMP_WORDS <<<"$COMP_LINE"
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
"$fn" ibvhostctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def make_completer(t, script):
    """complete(line) -> the sorted words bash completes the line's last
    word to. ibvhostctl is the build's, found through PATH."""
    env = dict(os.environ, PATH=os.path.dirname(t.ctl) + ":" +
               os.environ.get("PATH", ""))

    def complete(line):
        r = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                            COMPLETE_SH, "bash", script, line],
                           capture_output=True, text=True, env=env,
                           timeout=TIMEOUT)
        check(r.returncode == 0 and not r.stderr,
              "completing %r: %d %r" % (line, r.returncode, r.stderr))
        return sorted(w for w in r.stdout.split("\n") if w)
    return complete


BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def check_on_demand_load(script):
    """bash-completion's loader finds the installed file by the command
    name alone, under XDG_DATA_DIRS (its lookup for DATADIR)."""
    datadir = os.path.dirname(os.path.dirname(os.path.dirname(script)))
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                        'source "$1" && __load_completion ibvhostctl && '
                        'complete -p ibvhostctl', "bash", BASH_COMPLETION],
                       capture_output=True, text=True, timeout=TIMEOUT,
                       env=dict(os.environ, XDG_DATA_DIRS=datadir,
                                BASH_COMPLETION_USER_DIR="/nonexistent"))
    check(r.returncode == 0 and "-F _ibvhostctl ibvhostctl" in r.stdout,
          "bash-completion does not load %s: %d %r %r"
          % (script, r.returncode, r.stdout, r.stderr))


def scenario_completion(t):
    script = install_completion(t)
    complete = make_completer(t, script)
    if os.path.exists(BASH_COMPLETION):
        check_on_demand_load(script)
    else:
        print("note: %s absent, on-demand loading not checked"
              % BASH_COMPLETION)
    h = t.host("A", 1, [{"name": "vm-web"}, {"name": "vm-db"},
                        {"name": "edge"}])
    s = "ibvhostctl -s %s " % h.ctl_sock
    daemon_cmds = sorted(c["name"] for c in h.ctl("list-commands"))

    got = complete(s)
    check(got == daemon_cmds, "all commands: %s, daemon has %s"
          % (got, daemon_cmds))
    for prefix, want in (("show-p", ["show-port", "show-ports"]),
                         ("set", ["set-log-level"]),
                         ("fdb-", ["fdb-add", "fdb-del"]),
                         ("nosuch", [])):
        got = complete(s + prefix)
        check(got == want, "%r: %s, want %s" % (prefix, got, want))
    for line, want in ((s + "show-port ", ["edge", "vm-db", "vm-web"]),
                       (s + "show-port vm-", ["vm-db", "vm-web"]),
                       (s + "show-fdb e", ["edge"]),
                       (s + "clear-counters vm-w", ["vm-web"]),
                       (s + "fdb-add vm-d", ["vm-db"]),
                       (s + "fdb-add vm-db ", []),  # a MAC: no words
                       (s + "show-port vm-db ", []),  # no second argument
                       (s + "set-log-level ",
                        ["debug", "err", "info", "notice", "warning"]),
                       (s + "set-log-level w", ["warning"]),
                       (s + "--js", ["--json"]),
                       (s + "--json show-port v", ["vm-db", "vm-web"])):
        got = complete(line)
        check(got == want, "%r: %s, want %s" % (line, got, want))
    got = complete("ibvhostctl -s " + h.ctl_sock[:-4])
    check(h.ctl_sock in got and all(f.startswith(h.ctl_sock) for f in got),
          "-s completes files: %s" % got)
    # What the completion offers runs.
    check(h.ctl("show-port", complete(s + "show-port vm-w")[0])["name"]
          == "vm-web", "the completed port")
    mac = "02:00:00:00:00:01"
    h.ctl("fdb-add", "vm-db", mac, "1", "0x11")
    check(mac in h.fdb("vm-db"), "fdb-add by its protocol name")
    h.ctl("fdb-del", "vm-db", mac)
    check(mac not in h.fdb("vm-db"), "fdb-del by its protocol name")

    # No daemon on the socket: ibvhostctl's own table, the same commands;
    # no port names, no error.
    s = "ibvhostctl -s %s " % t.path("nothing.sock")
    got = complete(s)
    check(got == daemon_cmds, "commands without a daemon: %s, daemon has %s"
          % (got, daemon_cmds))
    check(complete(s + "show-p") == ["show-port", "show-ports"],
          "prefix without a daemon")
    check(complete(s + "show-port ") == [], "ports without a daemon")
    check(complete(s + "set-log-level d") == ["debug"],
          "levels without a daemon")
    print("completion: %d commands from the daemon and from ibvhostctl's "
          "table alike; port names and levels complete" % len(daemon_cmds))


SCENARIOS = {
    "completion": scenario_completion,
    "log-level": scenario_log_level,
}


if __name__ == "__main__":
    sys.exit(run_scenario(__doc__, SCENARIOS, Test, sys.argv))
