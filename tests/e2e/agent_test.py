#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""The e2e command agent's framing, without QEMU: the agent script of
agent.py runs under busybox sh (its applets first on PATH, as in the
guest), on a pipe or on a pty (where it sets the tty raw itself), and the
host side (agent.Agent) talks to it. Faults are injected on the way in
(bytes dropped or changed in a command frame) and on the way out (bytes
dropped from a reply). Every command appends a line to a marker file, so
the test sees how often it really ran.

usage: agent_test.py [CASE...]     (default: all)
  intact     status, output with lines that look like frames, binary
             output, an empty and a 64 KB reply, exactly as produced
  late       the announcement missed (listening began after it): the host
             probes until the agent answers
  frame      every single-byte drop and change of a command frame is
             refused (NAK), never run; an intact frame after them runs
  retry      Agent.run with the first frame damaged (a byte dropped; the
             newline dropped, so the resend glues onto it): resent, the
             command runs once, with the right output
  slow       a command slower than the ACK bound is not resent; one slower
             than its own bound is an error, and the next command runs
  reply      every single-byte drop in a reply: the host never takes a
             wrong result; it fetches the stored reply again, and the
             command ran once
  pty        on a pty: stty raw -echo, readiness, 8-bit clean output; and
             the issue-15 failure: bytes already in the tty before the
             agent started (cooked mode, no newline) spoil the first frame,
             which is refused and resent, not run as something else
"""
import os
import select
import shutil
import subprocess
import sys
import tempfile
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent  # noqa: E402
import guestimg  # noqa: E402
from agent import Agent, GuestError, encode_command  # noqa: E402

# Short bounds: the agent runs locally, a missing answer is a lost byte.
ACK_S, CMD_S = 2.0, 10.0
REPLY_S = 3.0   # case reply: a lost last newline waits this long


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


class Local:
    """The agent under busybox sh, on pipes or a pty."""

    def __init__(self, work, tty=False):
        self.work = work
        bindir = os.path.join(work, "bin")
        if not os.path.isdir(bindir):
            os.makedirs(bindir)
            subprocess.run([guestimg.BUSYBOX, "--install", "-s", bindir],
                           check=True)
        script = os.path.join(work, "agent.sh")
        with open(script, "w") as f:
            f.write(agent.AGENT)
        self.marker = os.path.join(work, "ran")
        self.agent_dir = os.path.join(work, "state")
        env = {"PATH": bindir, "e2e_name": "local",
               "AGENT_DIR": self.agent_dir, "HOME": work}
        self.master = None
        self.tty = tty
        self.pre = []
        argv = [guestimg.BUSYBOX, "sh", script]
        if tty:
            self.master, slave = os.openpty()
            self.argv, self.env, self.slave = argv, env, slave
            self.proc = None
        else:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, env=env)
        self.faults_in = []    # functions: frame bytes -> bytes
        self.drop_out = None   # [offset] in the output stream to drop
        self.out_pos = 0

    def start_tty(self):
        self.proc = subprocess.Popen(self.argv, stdin=self.slave,
                                     stdout=self.slave,
                                     stderr=subprocess.DEVNULL, env=self.env)
        os.close(self.slave)

    def raw_send(self, data):
        if self.master is not None:
            while data:
                n = os.write(self.master, data)
                data = data[n:]
        else:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def send(self, data):
        if self.faults_in:
            data = self.faults_in.pop(0)(data)
        self.raw_send(data)

    def recv(self, timeout):
        fd = self.master if self.master is not None else \
            self.proc.stdout.fileno()
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return None
        try:
            data = os.read(fd, 65536)
        except OSError:   # EIO: the pty's other side is closed
            return b""
        if data:
            start = self.out_pos
            self.out_pos += len(data)
            k = None if self.drop_out is None else self.drop_out - start
            if k is not None and 0 <= k < len(data):
                data = data[:k] + data[k + 1:]
                self.drop_out = None
        return data

    def host(self):
        return Agent(self.send, self.recv, "local agent",
                     alive=lambda: self.proc.poll() is None,
                     ack_timeout=ACK_S, probe_s=1.0, resend_timeout=ACK_S)

    def runs(self):
        try:
            with open(self.marker) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.master is not None:
            os.close(self.master)


def counted(tag, extra=""):
    """A command that leaves `tag` in the marker file, then `extra`."""
    return "echo %s >>\"$HOME/ran\"%s" % (tag, "; " + extra if extra else "")


def lines_until(loc, pred, timeout=ACK_S * 2):
    """Lines from the agent until pred(line) holds; all of them."""
    h = Agent(loc.raw_send, loc.recv, "raw")
    h.buf = getattr(loc, "rest", b"")
    got = []
    deadline = time.monotonic() + timeout
    while True:
        ln = h._line(deadline)
        check(ln is not None, "no expected line within %.0f s; got %r" % (
            timeout, got))
        got.append(ln)
        if pred(ln):
            loc.rest = h.buf
            return got


def case_intact(loc):
    h = loc.host()
    h.wait_ready(CMD_S)
    st, out = h.run(counted("a", "echo hello; exit 3"), CMD_S)
    check((st, out) == (3, b"hello\n"), "got %r" % ((st, out),))
    fake = "@@E 2\n@@R 2 5 0123\n@@ACK 2 x\n@@NAK - junk\nQUJD\n"
    st, out = h.run("printf '%s'" % fake.replace("\n", "\\n"), CMD_S)
    check((st, out) == (0, fake.encode()), "frame-like output: %r" % out)
    st, out = h.run("printf '\\000\\001\\r\\n\\377no newline'", CMD_S)
    check(out == b"\0\1\r\n\377no newline", "binary: %r" % out)
    st, out = h.run("true", CMD_S)
    check((st, out) == (0, b""), "empty: %r" % ((st, out),))
    st, out = h.run("head -c 65536 /dev/zero | tr '\\000' x; echo >&2 E",
                    CMD_S)
    check(out == b"x" * 65536 + b"E\n", "64 KB: %d bytes" % len(out))
    st, out = h.run("echo 'quotes \" $HOME `x` \\\\'; echo $((6*7))", CMD_S)
    check(out == b"quotes \" $HOME `x` \\\\\n42\n", "quoting: %r" % out)
    check(loc.runs() == ["a"], "marker %r" % loc.runs())
    check(h.resends == [] and h.sends == 1, "resends %r" % h.resends)
    print("intact: status, frame-like, binary, empty and 64 KB output "
          "exact; one frame each")


def case_late(loc):
    # The host starts listening after the agent's announcement: it probes.
    got = lines_until(loc, lambda ln: ln.startswith(b"@@AGENT-READY"))
    check(got[-1] == b"@@AGENT-READY local 0", "announcement %r" % got)
    h = loc.host()
    h.buf = loc.rest
    h.wait_ready(CMD_S)
    check(h.probes >= 1, "ready without a probe: %d" % h.probes)
    st, out = h.run(counted("late", "echo late"), CMD_S)
    check((st, out) == (0, b"late\n") and loc.runs() == ["late"],
          "got %r, marker %r" % ((st, out), loc.runs()))
    print("late: announcement missed, ready after %d probe(s), command ran "
          "once" % h.probes)


def case_frame(loc):
    h = loc.host()
    h.wait_ready(CMD_S)
    loc.rest = h.buf
    seq = 1
    frame = encode_command(seq, counted("bad"))
    variants = []
    for i in range(len(frame) - 1):   # the newline: see case retry
        variants.append(("drop %d" % i, frame[:i] + frame[i + 1:]))
        c = frame[i:i + 1]
        # A different character of the same class (digit, hex, base64).
        alt = b"7" if c == b"3" else b"3" if c.isalnum() else b"x"
        variants.append(("change %d %r->%r" % (i, c, alt),
                         frame[:i] + alt + frame[i + 1:]))
    naks = {}
    for n, (what, bad) in enumerate(variants):
        loc.raw_send(bad)
        loc.raw_send(b"@@H %d\n" % (n + 1000))
        got = lines_until(loc, lambda ln: ln == b"@@AGENT-READY local %d"
                          % (n + 1000))
        ans = [ln for ln in got if ln.startswith(b"@@")][:-1]
        check(len(ans) == 1 and ans[0].startswith(b"@@NAK "),
              "%s: %r answered %r" % (what, bad, ans))
        reason = ans[0].split()[-1].decode()
        naks[reason] = naks.get(reason, 0) + 1
    check(loc.runs() == [], "a damaged frame ran: %r" % loc.runs())
    h.seq = 0
    h.buf = loc.rest
    st, out = h.run(counted("good", "echo ok"), CMD_S)
    check((st, out) == (0, b"ok\n") and loc.runs() == ["good"],
          "intact frame: %r, marker %r" % ((st, out), loc.runs()))
    print("frame: %d damaged frames (every byte of a %d-byte frame dropped "
          "or changed) refused, none ran (NAK reasons %s); the intact one "
          "ran once" % (len(variants), len(frame), naks))


def case_retry(loc):
    h = loc.host()
    h.wait_ready(CMD_S)
    # A byte of the payload dropped.
    loc.faults_in = [lambda f: f[:len(f) - 10] + f[len(f) - 9:]]
    st, out = h.run(counted("one", "echo first"), CMD_S)
    check((st, out) == (0, b"first\n"), "got %r" % ((st, out),))
    check(h.resends == ["NAK checksum"], "resends %r" % h.resends)
    # The newline dropped: the agent waits for the rest of the line, the
    # host for an ACK; the resend glues onto the damaged frame (refused),
    # the next one runs.
    loc.faults_in = [lambda f: f[:-1]]
    st, out = h.run(counted("two", "echo second"), CMD_S)
    check((st, out) == (0, b"second\n"), "got %r" % ((st, out),))
    check(h.resends == ["no ACK", "NAK fields"], "resends %r" % h.resends)
    # Damaged every time: bounded, then an error; nothing ran.
    loc.faults_in = [lambda f: f.replace(b"@@C", b"@@X")] * agent.MAX_SENDS
    try:
        h.run(counted("never"), CMD_S)
        raise Fail("a command damaged %d times was delivered"
                   % agent.MAX_SENDS)
    except GuestError as e:
        check("not delivered in %d frames" % agent.MAX_SENDS in str(e),
              "error: %s" % e)
    check(loc.runs() == ["one", "two"], "marker %r" % loc.runs())
    st, out = h.run(counted("three", "echo third"), CMD_S)
    check((st, out) == (0, b"third\n") and loc.runs()[-1] == "three",
          "after the failure: %r" % ((st, out),))
    print("retry: dropped byte -> NAK checksum, resent, ran once; dropped "
          "newline -> no ACK, glued resend refused, third frame ran once; "
          "%d damaged frames -> GuestError, nothing ran" % agent.MAX_SENDS)


def case_slow(loc):
    h = loc.host()
    h.wait_ready(CMD_S)
    # Longer than the ACK bound: acknowledged before it runs, not resent.
    st, out = h.run(counted("slow", "sleep %g; echo done" % (ACK_S + 1)),
                    CMD_S)
    check((st, out) == (0, b"done\n") and h.resends == [],
          "got %r, resends %r" % ((st, out), h.resends))
    # Longer than its own bound: an error, not a resend.
    t0 = time.monotonic()
    try:
        h.run(counted("late", "sleep %g" % (ACK_S + 1)), 1.0)
        raise Fail("a command over its time bound returned")
    except GuestError as e:
        check("did not finish in 1 s" in str(e) and h.sends == 1,
              "error %s after %d frames" % (e, h.sends))
    took = time.monotonic() - t0
    # The agent answers again once that command is done.
    st, out = h.run(counted("after", "echo after"), CMD_S)
    check((st, out) == (0, b"after\n"), "got %r" % ((st, out),))
    check(loc.runs() == ["slow", "late", "after"], "marker %r" % loc.runs())
    print("slow: a %g s command acknowledged first, sent once; one over "
          "its 1 s bound failed after %.1f s, one frame; the next ran" % (
              ACK_S + 1, took))


def case_reply(loc):
    h = loc.host()
    h.wait_ready(CMD_S)
    # The stream of one reply, to know its length; the sequence numbers
    # all of three digits, so every reply has that length.
    h.seq = 99
    loc.out_pos = 0
    st, out = h.run(counted("probe", "echo reply"), CMD_S)
    length = loc.out_pos
    check(out == b"reply\n" and length > 40, "probe reply %d bytes" % length)
    resent = 0
    for k in range(length):
        loc.out_pos = 0
        loc.drop_out = k
        st, out = h.run(counted("r%d" % k, "echo reply"), REPLY_S)
        check((st, out) == (0, b"reply\n"),
              "byte %d of the reply dropped: got %r" % (k, (st, out)))
        resent += bool(h.resends)
    check(h.seq < 1000, "sequence numbers grew a digit")
    want = ["probe"] + ["r%d" % k for k in range(length)]
    check(loc.runs() == want, "commands ran %r, want each once" % (
        loc.runs(),))
    print("reply: each of the %d bytes of a reply dropped in turn: every "
          "result right, %d stored replies fetched again, each command "
          "ran once" % (length, resent))


def case_pty(loc):
    # What the first command of a fresh guest met: bytes that reached the
    # tty before the agent set it raw (no newline yet).
    loc.raw_send(b"at /sys/class/net/eth0/mtu")
    loc.start_tty()
    h = loc.host()
    h.wait_ready(CMD_S)
    st, out = h.run(counted("first", "echo first"), CMD_S)
    check((st, out) == (0, b"first\n"), "got %r" % ((st, out),))
    check(h.resends and h.resends[0].startswith("NAK"),
          "the spoilt first frame was not refused: resends %r" % h.resends)
    check(loc.runs() == ["first"], "marker %r" % loc.runs())
    first = h.resends[0]
    allbytes = "".join("\\%03o" % b for b in range(256))
    st, out = h.run("printf '%s'" % allbytes, CMD_S)
    check(out == bytes(range(256)), "8-bit output over the pty: %r" % out)
    # The pty's settings, as the agent left them (Linux reports the
    # slave's on the master).
    _, _, _, lflag = termios.tcgetattr(loc.master)[:4]
    oflag = termios.tcgetattr(loc.master)[1]
    check(not lflag & (termios.ECHO | termios.ICANON) and
          not oflag & termios.OPOST, "the agent's tty is not raw: lflag "
          "%#o oflag %#o" % (lflag, oflag))
    stray = [e for e in h.events if e.startswith("stray")]
    check(not stray, "stray lines (echo?): %r" % stray)
    print("pty: leftover bytes spoilt the first frame: refused (%s), "
          "resent, ran once; all 256 byte values intact; tty raw, no echo"
          % first)


CASES = {"intact": case_intact, "late": case_late, "frame": case_frame, "retry": case_retry,
         "slow": case_slow, "reply": case_reply, "pty": case_pty}


def main():
    names = sys.argv[1:] or list(CASES)
    bad = [n for n in names if n not in CASES]
    if bad:
        print(__doc__)
        return 2
    work = tempfile.mkdtemp(prefix="ibvhostd-agent-")
    failed = 0
    try:
        for n in names:
            d = os.path.join(work, n)
            os.makedirs(d)
            loc = Local(d, tty=(n == "pty"))
            t0 = time.monotonic()
            try:
                CASES[n](loc)
                print("  %s: ok (%.1f s)" % (n, time.monotonic() - t0),
                      flush=True)
            except (Fail, GuestError) as e:
                failed += 1
                print("FAIL %s: %s" % (n, e), flush=True)
            finally:
                loc.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS" if not failed else "FAILED %d of %d" % (failed, len(names)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
