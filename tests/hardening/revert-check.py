#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Show that each regression test catches its bug class: build a scratch
copy of the committed tree with the guard of each class reverted, run the
test that covers it against that build, and expect it to FAIL (and to
PASS against the real build).

usage: revert-check.py [BUILD_DIR] [CLASS...]
  BUILD_DIR  the real build (default build); the scratch copy goes to a
             temporary folder (kept with KEEP=1)
Takes a few minutes (one extra build); not part of CI.
"""
import os
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# class -> (file, guard text, reverted text, test argv after BUILD_DIR)
REVERTS = {
    "region-beyond-file (SET_MEM_TABLE larger than its fd, SIGBUS)": (
        "src/vhost_guard.c",
        "if (r->mmap_offset + r->memory_size > (uint64_t)st.st_size)",
        "if (0)",
        ["hostile", "memtable-huge"]),
    "memory table changed while WRs in flight (quiesce before unmap)": (
        "src/vhost_guard.c",
        "g->restart = dp_port_started(g->port);",
        "g->restart = false;",
        ["hostile", "memtable-fail-running"]),
    "CVE-2020-10722 size+offset overflow": (
        "src/vhost_guard.c",
        "return a + b < a;",
        "return (void)a, (void)b, false;",
        ["hostile", "memtable-offset-overflow"]),
    "call fd not an eventfd (pipe), SET_VRING_CALL on a running device": (
        "src/vhost_guard.c",
        "if (!fd_is_eventfd(m->fds[0]))",
        "if (0)",
        ["hostile", "pipe-callfd"]),
    "INFLIGHT_FD not negotiated": (
        "src/vhost_guard.c",
        "\tcase REQ_GET_INFLIGHT_FD:\n\tcase REQ_SET_INFLIGHT_FD:\n",
        "\tcase 0x7fff0001:\n\tcase 0x7fff0002:\n",
        ["hostile", "inflight-unnegotiated"]),
    "CVE-2019-14818 fds on a message that takes none": (
        "src/vhost_guard.c",
        "if (m->fd_num > 0 && !takes_fds(m->request))",
        "if (0)",
        ["hostile", "extra-fds"]),
    "payload withheld (blocking read on the shared vhost thread)": (
        "src/vhost_guard.c",
        "if (set_connection_timeouts(p->cfg.socket_path) <= 0)",
        "if (0)",
        ["stall"]),
    "CVE-2018-1059 descriptor not split at region borders": (
        "src/vq.c",
        "chunk = avail < len ? (uint32_t)avail : len;",
        "chunk = len; (void)avail;",
        ["hostile", "desc-straddle"]),
    "CVE-2024-11614 csum_start/csum_offset beyond the frame": (
        "src/vnet_hdr.c",
        "if (!wire_csum_fits(start, offset, tx->frame_len))",
        "if (0)",
        ["hostile", "csum-out-of-frame"]),
}


def run_test(build, argv, src):
    test = os.path.join(src, "tests", "hardening", "hardening_test.py")
    r = subprocess.run([sys.executable, test, argv[0], build] + argv[1:],
                       capture_output=True, text=True, timeout=900)
    last = [l for l in r.stdout.splitlines() if l.startswith(("PASS", "FAIL"))]
    return r.returncode, (last[-1] if last else r.stdout[-300:])[:220]


def main():
    args = sys.argv[1:]
    build = os.path.abspath(args.pop(0) if args and os.path.isdir(args[0])
                            else os.path.join(TOP, "build"))
    wanted = args
    scratch = tempfile.mkdtemp(prefix="ibvhostd-revert-")
    src = os.path.join(scratch, "src")
    os.makedirs(src)
    tar = subprocess.run(["git", "-C", TOP, "archive", "HEAD"],
                         capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", src], input=tar, check=True)
    rows = []
    try:
        applied = []
        for name, (path, guard, revert, _) in REVERTS.items():
            if wanted and not any(w in name for w in wanted):
                continue
            f = os.path.join(src, path)
            text = open(f).read()
            if text.count(guard) != 1:
                rows.append((name, "guard text not found once: not checked"))
                continue
            with open(f, "w") as fh:
                fh.write(text.replace(guard, revert))
            applied.append(name)
        sbuild = os.path.join(scratch, "build")
        subprocess.run(["meson", "setup", sbuild, src], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["meson", "compile", "-C", sbuild], check=True,
                       stdout=subprocess.DEVNULL)
        for name in applied:
            argv = REVERTS[name][3]
            rc_real, out_real = run_test(build, argv, TOP)
            rc_rev, out_rev = run_test(sbuild, argv, src)
            caught = rc_real == 0 and rc_rev != 0
            rows.append((name, "%s: real build %s; reverted %s"
                         % ("CAUGHT" if caught else "NOT CAUGHT",
                            "PASS" if rc_real == 0 else "FAIL", out_rev)))
    finally:
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(scratch, ignore_errors=True)
    for name, what in rows:
        print("%-66s %s" % (name, what))
    return 0 if all("NOT" not in w and "not checked" not in w
                    for _, w in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
