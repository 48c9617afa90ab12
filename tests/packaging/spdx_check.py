#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Check the licence markers of the source tree.

Every source file (C, headers, linker maps, Python, shell, meson files,
templates, scdoc man pages, scripts with a #! line) must name the project's licence in an
SPDX-License-Identifier line within its first lines, the LICENSE file must
be the BSD-3-Clause text with the project's copyright line, and meson's
project() must declare the same licence.

usage: spdx_check.py SOURCE_ROOT [--skip DIR]...   check the tree
       spdx_check.py --self-test                    check the checker

--skip DIR leaves a folder (relative to SOURCE_ROOT) out; the files there
that still lack the line are counted and reported, not failed.
Exit status: 0 all present, 1 something missing, 2 usage.
"""
import os
import re
import sys
import tempfile

LICENSE_ID = "BSD-3-Clause"
SPDX_LINE = re.compile(r"^\s*(?:#|/\*|\*|//|;)\s*SPDX-License-Identifier:\s*(\S+)")
COPYRIGHT = "Copyright (c) 2026 The ibvhostd authors"
HEAD_LINES = 5  # the identifier must be near the top, not buried
SUFFIXES = (".c", ".h", ".map", ".py", ".sh", ".in", ".scd")
NAMES = ("meson.build", "meson_options.txt", "meson.options")


def is_build_dir(path):
    return (os.path.isdir(os.path.join(path, "meson-private")) or
            os.path.isdir(os.path.join(path, "meson-info")))


def wants_header(path, name):
    if name.endswith(SUFFIXES) or name in NAMES:
        return True
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def source_files(root):
    """Relative paths of the files that need the identifier."""
    out = []
    for top, dirs, files in os.walk(root):
        rel_top = os.path.relpath(top, root)
        keep = []
        for d in sorted(dirs):
            full = os.path.join(top, d)
            # Hidden folders are VCS and editor state, except CI scripts.
            if d.startswith(".") and d != ".ci":
                continue
            if is_build_dir(full) or os.path.islink(full):
                continue
            keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            full = os.path.join(top, name)
            if os.path.islink(full) or not wants_header(full, name):
                continue
            out.append(os.path.normpath(os.path.join(rel_top, name)))
    return out


def header_licence(path):
    """The licence named in the file's first lines, or None."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for _, line in zip(range(HEAD_LINES), f):
            m = SPDX_LINE.match(line)
            if m:
                return m.group(1).rstrip("*/ ")
    return None


def check_tree(root, skip):
    errors, skipped_missing = [], []
    skip = [os.path.normpath(s) for s in skip]
    for rel in source_files(root):
        lic = header_licence(os.path.join(root, rel))
        skipped = any(rel == s or rel.startswith(s + os.sep) for s in skip)
        if lic == LICENSE_ID:
            continue
        if skipped:
            skipped_missing.append(rel)
        elif lic is None:
            errors.append("%s: no 'SPDX-License-Identifier: %s' in its "
                          "first %d lines" % (rel, LICENSE_ID, HEAD_LINES))
        else:
            errors.append("%s: SPDX-License-Identifier is %s, the project "
                          "is %s" % (rel, lic, LICENSE_ID))
    lic_path = os.path.join(root, "LICENSE")
    try:
        with open(lic_path) as f:
            text = f.read()
        if "BSD 3-Clause" not in text or "Neither the name" not in text:
            errors.append("LICENSE: not the BSD-3-Clause text")
        if COPYRIGHT not in text:
            errors.append("LICENSE: lacks '%s'" % COPYRIGHT)
    except OSError as e:
        errors.append("LICENSE: cannot read: %s" % e.strerror)
    try:
        with open(os.path.join(root, "meson.build")) as f:
            m = re.search(r"license\s*:\s*'([^']*)'", f.read())
        if not m or m.group(1) != LICENSE_ID:
            errors.append("meson.build: project() license is %s, want %s" %
                          (m.group(1) if m else "missing", LICENSE_ID))
    except OSError as e:
        errors.append("meson.build: cannot read: %s" % e.strerror)
    return errors, skipped_missing


def self_test():
    """The checker must flag a file without the line, with another licence,
    with the line too far down, and a missing LICENSE; and pass a good tree."""
    with tempfile.TemporaryDirectory() as root:
        def put(rel, text):
            p = os.path.join(root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        put("meson.build", "# SPDX-License-Identifier: BSD-3-Clause\n"
            "project('x', 'c', license: 'BSD-3-Clause')\n")
        put("a/good.c", "/* SPDX-License-Identifier: BSD-3-Clause\n */\n")
        put("a/good.py", "#!/usr/bin/env python3\n"
            "# SPDX-License-Identifier: BSD-3-Clause\n")
        put("a/bad.h", "/* no identifier */\n")
        put("a/other.sh", "#!/bin/sh\n# SPDX-License-Identifier: MIT\n")
        put("a/late.c", "\n" * HEAD_LINES +
            "/* SPDX-License-Identifier: BSD-3-Clause */\n")
        put("a/script", "#!/bin/sh\necho no header\n")
        put("a/data.bin", "not a source file\n")
        put("skipme/lack.c", "int x;\n")
        put("build/meson-private/x", "")
        put("build/gen.c", "int generated;\n")
        errors, skipped = check_tree(root, ["skipme"])
        flagged = sorted(e.split(":", 1)[0] for e in errors)
        want = sorted(["LICENSE", "a/bad.h", "a/late.c", "a/other.sh",
                       "a/script"])
        if flagged != want or skipped != ["skipme/lack.c"]:
            print("self-test FAILED: flagged %s, skipped %s; want %s, %s" %
                  (flagged, skipped, want, ["skipme/lack.c"]))
            return 1
        with open(os.path.join(root, "LICENSE"), "w") as f:
            f.write("BSD 3-Clause License\n%s\nNeither the name\n" % COPYRIGHT)
        for rel in ("a/bad.h", "a/late.c", "a/other.sh", "a/script"):
            os.unlink(os.path.join(root, rel))
        errors, _ = check_tree(root, ["skipme"])
        if errors:
            print("self-test FAILED: a good tree reported: %s" % errors)
            return 1
    print("self-test ok")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) < 2 or argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    root, skip, rest = argv[1], [], argv[2:]
    while rest:
        if rest[0] != "--skip" or len(rest) < 2:
            print(__doc__, file=sys.stderr)
            return 2
        skip.append(rest[1])
        rest = rest[2:]
    errors, skipped_missing = check_tree(root, skip)
    for e in errors:
        print(e)
    n = len(source_files(root))
    if skipped_missing:
        print("not checked yet (--skip %s): %d file(s) without the line, "
              "e.g. %s" % (" --skip ".join(skip), len(skipped_missing),
                           ", ".join(skipped_missing[:3])))
    if errors:
        print("FAIL: %d problem(s) in %d source files" % (len(errors), n))
        return 1
    print("ok: %d source files carry SPDX-License-Identifier: %s" %
          (n - len(skipped_missing), LICENSE_ID))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
