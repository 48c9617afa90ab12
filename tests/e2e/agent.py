# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""The e2e guests' command agent: the shell script that runs in the guest
on its second serial port (AGENT, busybox sh) and the host side of its
protocol (Agent), kept together because each is the other's test.

Why framed: a serial port loses what arrives before the guest has opened
and configured it, and nothing tells the sender. So the agent says when
it is ready, every command carries its own checksum, and a command that
did not arrive whole is refused, never run; the host then sends it again.

Lines, each starting a line of its own (the agent writes a newline before
its lines, so stray output cannot glue itself in front of one):

  guest: @@AGENT-READY NAME NONCE   after `stty raw -echo` on its open
                                    port: from here on the tty queues what
                                    comes in. Once at start (NONCE 0) and
                                    in answer to every probe.
  host:  @@H NONCE                  probe: are you there?
  host:  @@C SEQ LEN SUM B64        a command: B64 its bytes in base64 (one
                                    line), LEN their count, SUM the md5 of
                                    "SEQ LEN B64", so a lost or changed
                                    byte anywhere in the frame shows
  guest: @@NAK SEQ|- REASON         refused (not run): the host resends
  guest: @@ACK SEQ SUM              accepted; about to run it
  guest: @@R SEQ LEN SUM            the reply: base64 lines of a body of
         base64 lines...            LEN bytes with md5 SUM: the exit status,
  guest: @@E SEQ                    a newline, then stdout+stderr
  guest: @@DUP SEQ                  SEQ was run already: its stored reply
                                    follows (a command is run once; a
                                    resend after a lost ACK or a damaged
                                    reply only fetches the reply again)

Every wait is bounded; the host resends a command at most MAX_SENDS
times (after a NAK, a missing ACK, or a reply that fails its checks).
"""
import base64
import binascii
import hashlib
import re
import time

# The agent. Runs as the guest's PID 1 (the role script execs it with the
# port as stdin and stdout); under a plain pipe (the unit test) there is
# no tty and no stty. AGENT_DIR: where it keeps the command and the last
# reply (/tmp/agent in the guest).
AGENT = r"""
T=${AGENT_DIR:-/tmp/agent}
mkdir -p "$T"
if [ -t 0 ]; then
	if ! stty raw -echo; then
		printf '\n@@AGENT-FAIL stty\n'
		exit 1
	fi
fi
name=${e2e_name:-guest}
last=0
nak() {
	printf '\n@@NAK %s %s\n' "$1" "$2"
}
printf '\n@@AGENT-READY %s 0\n' "$name"
while IFS= read -r line; do
	set -f
	set -- $line
	set +f
	case "$1" in
	"")
		continue ;;
	@@H)
		[ $# -eq 2 ] && printf '\n@@AGENT-READY %s %s\n' "$name" "$2"
		continue ;;
	@@C) ;;
	*)
		nak - junk
		continue ;;
	esac
	if [ $# -ne 5 ]; then
		nak - fields
		continue
	fi
	seq=$2 len=$3 sum=$4 b64=$5
	case "$seq$len" in
	*[!0-9]*)
		nak - number
		continue ;;
	esac
	case "$b64" in
	*[!A-Za-z0-9+/=]*)
		nak - base64
		continue ;;
	esac
	got=$(printf '%s %s %s' "$seq" "$len" "$b64" | md5sum)
	if [ "${got%% *}" != "$sum" ]; then
		nak - checksum
		continue
	fi
	if [ "$seq" -eq "$last" ]; then
		printf '\n@@DUP %s\n' "$seq"
		cat "$T/reply"
		continue
	fi
	if [ "$seq" -lt "$last" ]; then
		nak "$seq" stale
		continue
	fi
	if ! printf '%s\n' "$b64" | base64 -d >"$T/cmd" 2>/dev/null; then
		nak "$seq" decode
		continue
	fi
	if [ "$(wc -c <"$T/cmd")" -ne "$len" ]; then
		nak "$seq" length
		continue
	fi
	printf '\n@@ACK %s %s\n' "$seq" "$sum"
	last=$seq
	rm -f "$T/out" "$T/body"
	sh "$T/cmd" </dev/null >"$T/out" 2>&1
	echo $? >"$T/body"
	cat "$T/out" >>"$T/body"
	n=$(wc -c <"$T/body")
	s=$(md5sum <"$T/body")
	{
		printf '\n@@R %s %s %s\n' "$seq" "$n" "${s%% *}"
		base64 <"$T/body"
		printf '\n@@E %s\n' "$seq"
	} >"$T/reply"
	cat "$T/reply"
done
printf '\n@@AGENT-EOF\n'
"""

MAX_SENDS = 5
ACK_TIMEOUT = 20.0   # a frame's ACK or NAK (a few forks in a TCG guest)
REPLY_RESEND_TIMEOUT = 20.0   # a stored reply asked for again
PROBE_S = 5.0        # readiness probe interval once the console says ready

_B64_LINE = re.compile(rb"^[A-Za-z0-9+/=]*$")


class GuestError(Exception):
    pass


def encode_command(seq, cmd):
    """The frame of command `cmd` (str or bytes) as number `seq`."""
    data = cmd.encode() if isinstance(cmd, str) else cmd
    b64 = base64.b64encode(data).decode()
    head = "%d %d %s" % (seq, len(data), b64)
    return ("@@C %d %d %s %s\n" % (seq, len(data),
                                   hashlib.md5(head.encode()).hexdigest(),
                                   b64)).encode()


class Agent:
    """The host side, over any byte stream: `send(bytes)`, and
    `recv(timeout)` returning bytes, b"" at end of stream, or None when
    nothing came within `timeout` s. `alive()`: False once the other end
    is known dead (QEMU exited). `what`: for messages."""

    def __init__(self, send, recv, what, alive=lambda: True,
                 ack_timeout=ACK_TIMEOUT, probe_s=PROBE_S,
                 resend_timeout=REPLY_RESEND_TIMEOUT):
        self.send, self.recv, self.what, self.alive = send, recv, what, alive
        self.ack_timeout, self.probe_s = ack_timeout, probe_s
        self.resend_timeout = resend_timeout
        self.buf = b""
        self.seq = 0
        self.ready = False
        self.probes = 0    # readiness probes sent
        self.events = []   # resends and stray lines, for diagnostics
        self.sends = 0     # frames sent for the last command
        self.resends = []  # and why each after the first

    def _line(self, deadline):
        """The next line (without its newline and any \\r), or None at
        `deadline`."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 1:]
                return line.rstrip(b"\r")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self.recv(min(left, 1.0))
            if data is None:
                if not self.alive():
                    raise GuestError("%s: the guest is gone" % self.what)
                continue
            if not data:
                raise GuestError("%s: agent connection closed" % self.what)
            self.buf += data

    def _event(self, text):
        self.events.append(text)
        del self.events[:-50]

    def wait_ready(self, timeout):
        """Until the agent announces itself; probes every `probe_s` s if
        its first announcement came before we listened."""
        deadline = time.monotonic() + timeout
        nonce = self.probes = 0
        next_probe = time.monotonic() + self.probe_s
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise GuestError("%s: agent not ready after %.0f s (%d "
                                 "probes)" % (self.what, timeout, nonce))
            line = self._line(min(deadline, next_probe))
            if line is None:
                if time.monotonic() >= next_probe:
                    nonce = self.probes = nonce + 1
                    self.send(b"@@H %d\n" % nonce)
                    next_probe = time.monotonic() + self.probe_s
                continue
            f = line.split()
            if len(f) == 3 and f[0] == b"@@AGENT-READY":
                self.ready = True
                # Answers to earlier probes may follow: harmless, skipped
                # by run() as stray lines.
                return
            if f[:1] == [b"@@AGENT-FAIL"]:
                raise GuestError("%s: agent failed: %s" % (
                    self.what, line.decode(errors="replace")))
            if line:
                self._event("before ready: %r" % line[:200])

    def run(self, cmd, timeout):
        """Runs `cmd` in the guest once; returns (exit status, output
        bytes). GuestError if it cannot be delivered in MAX_SENDS frames,
        does not finish within `timeout` s of its ACK, or its reply
        cannot be had intact."""
        if not self.ready:
            raise GuestError("%s: command before the agent is ready"
                             % self.what)
        self.seq += 1
        seq = self.seq
        frame = encode_command(seq, cmd)
        want_sum = frame.split(b" ")[3]
        self.sends = 0
        self.resends = []
        acked = False      # the agent took it: it runs (or ran) once
        fetching = False   # sent again for a reply that came damaged
        body = None   # (len, sum, [base64 lines]) while in a reply
        need_send, why = True, None
        deadline = 0.0
        while True:
            if need_send:
                if self.sends >= MAX_SENDS:
                    raise GuestError("%s: command %d not delivered in %d "
                                     "frames (last: %s): %s" % (
                                         self.what, seq, self.sends, why,
                                         cmd))
                if self.sends:
                    self.resends.append(why)
                    self._event("command %d sent again: %s" % (seq, why))
                self.send(frame)
                self.sends += 1
                need_send = False
                body = None
                deadline = time.monotonic() + (
                    self.resend_timeout if fetching else self.ack_timeout)
            line = self._line(deadline)
            if line is None:
                if acked and not fetching and body is None and \
                        not self.buf:
                    raise GuestError("%s: command %d did not finish in "
                                     "%.0f s: %s" % (self.what, seq,
                                                     timeout, cmd))
                # No ACK: the frame was lost (or its newline). A reply
                # begun but not ended (its last newline lost, say), or
                # none to a request for it again: ask (again).
                need_send = True
                why = "no ACK" if not acked and not fetching else \
                    "no reply"
                fetching = fetching or acked
                if self.buf:
                    self._event("unterminated: %r" % self.buf[:200])
                    self.buf = b""
                continue
            f = line.split()
            tag = f[0] if f else b""
            num = int(f[1]) if len(f) > 1 and f[1].isdigit() else None
            if body is not None:
                if not line:   # the newline before @@E
                    continue
                if _B64_LINE.match(line):
                    body[2].append(line)
                    continue
                if tag == b"@@E" and len(f) == 2 and num == seq:
                    out = self._decode(body)
                    if out is not None:
                        return out
                    why = "damaged reply"
                else:
                    why = "damaged reply: %r" % line[:80]
                body = None
                # The agent sends its stored reply again.
                need_send = fetching = True
                continue
            if tag == b"@@ACK" and len(f) == 3 and num == seq and \
                    len(f[2]) == 32:   # a damaged ACK is no ACK
                if f[2] != want_sum:
                    raise GuestError("%s: command %d acknowledged with "
                                     "checksum %s, sent %s" % (
                                         self.what, seq, f[2].decode(
                                             errors="replace"),
                                         want_sum.decode()))
                if not acked and not fetching:
                    deadline = time.monotonic() + timeout
                acked = True
            elif tag == b"@@NAK" and len(f) == 3 and (
                    num == seq or f[1] == b"-"):
                if not acked:
                    need_send, why = True, "NAK " + f[2].decode(
                        errors="replace")
            elif tag == b"@@R" and len(f) == 4 and num == seq and \
                    f[2].isdigit():
                body = (int(f[2]), f[3], [])
            elif tag == b"@@E" and len(f) == 2 and num == seq:
                # The end of a reply whose header was damaged.
                need_send, why = True, "damaged reply header"
                fetching = True
            elif line and tag not in (b"@@DUP", b"@@AGENT-READY",
                                      b"@@R", b"@@E", b"@@ACK", b"@@NAK") \
                    and not _B64_LINE.match(line):
                self._event("stray: %r" % line[:200])

    @staticmethod
    def _decode(body):
        n, s, lines = body
        try:
            data = base64.b64decode(b"".join(lines), validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(data) != n or hashlib.md5(data).hexdigest().encode() != s:
            return None
        status, nl, out = data.partition(b"\n")
        if not nl or not status.isdigit():
            return None
        return int(status), out
