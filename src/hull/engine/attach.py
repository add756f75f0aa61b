"""`hull attach`: connect this terminal to a running container's stdio through its monitor.

The monitor listens on <container>/attach.sock; frames both ways are kind (1 byte), length
(2 bytes, big-endian), data — see engine/monitor.py `_frame`. Output arrives as stdout (1) and
stderr (2) frames and finally the exit code (4); we send stdin (0), the terminal size (3) and
"stdin closed" (5). Detach keys (default ctrl-p,ctrl-q) are matched here in what we read from
stdin: when the sequence completes we close the connection and return, the container keeps
running; bytes of a partial match are held back and sent if the sequence breaks off.
"""

import os
import select
import signal
import socket

from hull.errors import Conflict, UsageError

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


class Detached(Exception):
    pass


def parse_detach_keys(text):
    """Docker's format: comma-separated `ctrl-<c>` (c in a-z @ [ \\ ] ^ _) or single characters."""
    out = bytearray()
    for part in (text or "").split(","):
        part = part.strip()
        if part.startswith("ctrl-") and len(part) == 6:
            c = part[5].lower()
            if not ("a" <= c <= "z" or c in "@[\\]^_"):
                raise UsageError(f"invalid detach keys {text!r}: unknown key {part!r}")
            out.append(ord(c.upper()) & 0x1F)
        elif len(part) == 1:
            out.append(ord(part))
        else:
            raise UsageError(f"invalid detach keys {text!r}: use e.g. ctrl-p,ctrl-q or ctrl-a,a")
    if not out:
        raise UsageError(f"invalid detach keys {text!r}")
    return bytes(out)


class KeyMatcher:
    """Feed stdin bytes; returns (bytes to forward, detached?)."""

    def __init__(self, keys):
        self.keys, self.held = keys, b""

    def feed(self, data):
        out = bytearray()
        for b in data:
            cand = self.held + bytes((b,))
            if self.keys.startswith(cand):
                self.held = cand
                if cand == self.keys:
                    self.held = b""
                    return bytes(out), True
            else:
                out += self.held
                self.held = b""
                if self.keys.startswith(bytes((b,))):
                    self.held = bytes((b,))
                    if self.held == self.keys:
                        self.held = b""
                        return bytes(out), True
                else:
                    out.append(b)
        return bytes(out), False


def _frame(kind, data=b""):
    return bytes((kind,)) + len(data).to_bytes(2, "big") + data


def connect(rec):
    dfd = os.open(rec.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(f"/proc/self/fd/{dfd}/attach.sock")
    except OSError:
        s.close()
        raise Conflict(f"You cannot attach to a stopped container {rec.id}, start it first") from None
    finally:
        os.close(dfd)
    return s


def attach(rec, stdin=True, detach_keys=None, sig_proxy=True):
    """Stream until the container exits (returns its exit code) or the user detaches (None)."""
    from hull.engine import lifecycle
    rec.refresh()
    if rec.status not in ("running", "paused"):
        raise Conflict(f"You cannot attach to a stopped container {rec.id}, start it first")
    cfg = rec.config.get("Config", {})
    tty = bool(cfg.get("Tty"))
    stdin = stdin and bool(cfg.get("OpenStdin"))
    keys = parse_detach_keys(detach_keys or DEFAULT_DETACH_KEYS)
    sock = connect(rec)
    matcher = KeyMatcher(keys)
    old_tty = None
    old_handlers = {}
    interactive_tty = tty and os.isatty(0)
    if interactive_tty:
        import termios
        import tty as ttymod
        old_tty = termios.tcgetattr(0)
        ttymod.setraw(0, termios.TCSANOW)  # keep what was typed ahead (TCSAFLUSH would drop it)

    def send_size(*_):
        try:
            import fcntl
            import termios
            ws = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
            sock.sendall(_frame(3, ws))
        except OSError:
            pass

    def forward(signum, _f):
        try:
            lifecycle.kill(rec, signum)
        except Exception:  # noqa: BLE001 - the container may be gone already
            pass
    code = None
    try:
        if interactive_tty:
            send_size()
            old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, send_size)
        if sig_proxy and not tty:
            for sg in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
                old_handlers[sg] = signal.signal(sg, forward)
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        if stdin:
            poller.register(0, select.POLLIN)
        buf = b""
        while code is None:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            for fd, _ev in events:
                if fd == 0:
                    data = os.read(0, 4096)
                    if not data:
                        poller.unregister(0)
                        if not tty:
                            sock.sendall(_frame(5))
                        continue
                    out, detached = matcher.feed(data)
                    if out:
                        sock.sendall(_frame(0, out))
                    if detached:
                        raise Detached()
                    continue
                chunk = sock.recv(65536)
                if not chunk:
                    rec.refresh()
                    return rec.state.get("ExitCode", 0) if rec.status not in ("running", "paused") else None
                buf += chunk
                while len(buf) >= 3:
                    n = int.from_bytes(buf[1:3], "big")
                    if len(buf) < 3 + n:
                        break
                    kind, body, buf = buf[0], buf[3:3 + n], buf[3 + n:]
                    if kind in (1, 2):
                        _write_all(1 if kind == 1 or tty else 2, body)
                    elif kind == 4:
                        code = int(body or b"0")
        return code
    except Detached:
        return None
    finally:
        sock.close()
        for sg, h in old_handlers.items():
            signal.signal(sg, h)
        if old_tty is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, old_tty)


def _write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]
