#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Render each built man page with man -l and check it.

- man(1) and groff report nothing on stderr (--warnings) and exit 0;
- the usual sections are there, and no @PLACEHOLDER@ is left;
- ibvhostd.conf(5) documents every key of config/config.c's key tables,
  ibvhostctl(8) every command of daemon/ibvhostctl.c's grammar table;
- ibvhostd(8) has a complete QEMU command line and a libvirt domain that
  virt-xml-validate accepts (when libvirt's tools are installed).

usage: man_test.py SOURCE_ROOT PAGE...
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

COMMON = ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"]
PER_PAGE = {
    "ibvhostd.8": ["OPTIONS", "SIGNALS", "SYSTEMD", "QEMU", "LIBVIRT",
                   "FILES", "EXIT STATUS", "--check-config", "--version",
                   "memory-backend-memfd,id=mem0,size=2G,share=on",
                   "-chardev socket,id=chr0,path=/run/ibvhostd/vm1.sock",
                   "-netdev vhost-user,id=net0,chardev=chr0",
                   "-device virtio-net-pci,netdev=net0",
                   "<access mode='shared'/>", "<interface type='vhostuser'>",
                   "usermod -a -G ibvhostd libvirt-qemu"],
    "ibvhostctl.8": ["OPTIONS", "COMMANDS", "COUNTERS", "EXIT STATUS",
                     "PROTOCOL", "METRICS", "--version",
                     "ibvhostd_port_drops_total", "ibvhostd-metrics.timer"],
    "ibvhostd.conf.5": ["SYNTAX", "GLOBAL SETTINGS", "SEGMENTS", "PORTS",
                        "EXAMPLE", "68..9000"],
}

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


def render(page):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    r = subprocess.run(["man", "--warnings", "-l", page], env=env,
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def config_keys(src):
    """Keys of the global, segment and port tables of config/config.c."""
    with open(os.path.join(src, "config", "config.c")) as f:
        text = f.read()
    keys = []
    for table in ("global_keys", "segment_keys", "port_keys"):
        m = re.search(r"%s\[\]\s*=\s*\{(.*?)\n\};" % table, text, re.S)
        check(m is not None, "config.c: table %s not found" % table)
        if m:
            keys += re.findall(r'\{\s*"([a-z_]+)"', m.group(1))
    check(len(keys) > 20, "config.c: only %d keys found: %s" % (len(keys), keys))
    return keys


def ctl_verbs(src):
    with open(os.path.join(src, "daemon", "ibvhostctl.c")) as f:
        text = f.read()
    m = re.search(r"struct ctl_verb verbs\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    check(m is not None, "ibvhostctl.c: table verbs[] not found")
    verbs = re.findall(r'\{\s*"([a-z -]+)",', m.group(1)) if m else []
    check(len(verbs) >= 8, "ibvhostctl.c: only %d verbs: %s" % (len(verbs), verbs))
    return verbs


def check_libvirt_xml(text):
    m = re.search(r"(<domain type=.*?</domain>)", text, re.S)
    check(m is not None, "ibvhostd.8: no <domain> ... </domain> in LIBVIRT")
    if not m:
        return
    if not shutil.which("virt-xml-validate"):
        print("note: virt-xml-validate not installed; domain XML not validated")
        return
    xml = "\n".join(l.strip() for l in m.group(1).splitlines())
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
        f.write(xml)
        f.flush()
        r = subprocess.run(["virt-xml-validate", f.name, "domain"],
                           capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "ibvhostd.8: libvirt rejects the domain XML: %s" %
          (r.stdout + r.stderr).strip())


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, pages = sys.argv[1], sys.argv[2:]
    seen = set()
    for page in pages:
        name = os.path.basename(page)
        seen.add(name)
        rc, out, err = render(page)
        check(rc == 0, "%s: man -l exited %d: %s" % (name, rc, err.strip()))
        check(err.strip() == "", "%s: man/groff warnings: %s" % (name, err.strip()))
        check(len(out.splitlines()) > 40, "%s: renders to %d lines only" %
              (name, len(out.splitlines())))
        for line in out.splitlines():
            check(len(line) <= 80, "%s: line wider than MANWIDTH=80: %r" % (name, line))
        left = re.findall(r"@[A-Z_]+@", out)
        check(not left, "%s: placeholders left: %s" % (name, left))
        for want in COMMON + PER_PAGE.get(name, []):
            if want.isupper():
                check(re.search(r"^%s$" % re.escape(want), out, re.M),
                      "%s: no section %s" % (name, want))
            else:
                check(want in out, "%s: lacks %r" % (name, want))
        if name == "ibvhostd.conf.5":
            for key in config_keys(src):
                check(re.search(r"(?<![a-z_])%s(?![a-z_])" % key, out),
                      "%s: key %s is not documented" % (name, key))
        if name == "ibvhostctl.8":
            for verb in ctl_verbs(src):
                check(re.search(r"^\s+%s(\s|$)" % re.escape(verb), out, re.M),
                      "%s: command '%s' has no entry" % (name, verb))
        if name == "ibvhostd.8":
            check_libvirt_xml(out)
    for want in PER_PAGE:
        check(want in seen, "page %s was not given (not built?)" % want)
    for e in errors:
        print("FAIL: " + e)
    if errors:
        return 1
    print("ok: %s render cleanly and document what they must" % ", ".join(sorted(seen)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
