"""The per-container monitor (hull's conmon): a small long-lived process, one per container.

It is exec'd as `python -S -B monitor.py ARGS-JSON` by the (double-forked) process that
created and started the container, so it is the container init's parent (a child subreaper
keeps that across the exec). It imports only the standard library's smallest modules — never
hull, click or rich — to stay at a few MiB.

What it does:
- owns the container's stdio: reads stdout/stderr pipes (or the pty master) and writes the
  json-file log ({"log","stream","time"} lines, rotated at max-size, max-file files kept);
- copies them to the attached `hull run` (its inherited stdout/stderr) while it lives, and the
  attached stdin to the container's; a control socket to `hull run` carries resize requests
  ("w"), and its EOF means the client is gone (then the monitor drops the attached fds);
- waits for the init's exit (pidfd), writes exit.json {ExitCode, FinishedAt} atomically;
- then tells the attached client "exit N"; if the client answers "done" it has cleaned up;
  otherwise the monitor execs the engine's cleanup (`hull.engine.lifecycle.cleanup_main`),
  which records OOM, deletes the runtime state and cgroup, applies --restart and --rm;
- runs the health check, if the container has one (engine/health.py): a timer in the same poll
  loop forks+execs `hull-runtime exec` every interval, reads its output from a pipe, kills it
  after the timeout, and keeps <container>/health.json.
"""

import os
import select
import sys
import time

import _json
import _signal

_esc = _json.encode_basestring_ascii


class _DecodeContext:  # for _json's scanner: `import json` would pull in re and enum (~1 MiB)
    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int = float, int
    parse_constant = None
    memo = {}


def _loads(text):
    return _json.make_scanner(_DecodeContext())(text, 0)[0]


def _dumps(obj):
    return "".join(_json.make_encoder(None, None, _esc, None, ": ", ", ", False, False, True)(obj, 0))


def _now():
    ns = time.time_ns()
    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%09dZ" % frac


class Log:
    """json-file writer with size rotation (ctr.log, ctr.log.1, ... up to max_file files)."""

    def __init__(self, path, max_size, max_file, partial=None):
        self.path, self.max_size, self.max_file = path, max_size, max_file
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.partial = {"stdout": b"", "stderr": b""}
        for k, v in (partial or {}).items():  # carried over a handoff (latin-1 text)
            self.partial[k] = v.encode("latin-1")

    def write(self, stream, data):
        buf = self.partial[stream] + data
        lines = buf.split(b"\n")
        self.partial[stream] = lines.pop()
        if len(self.partial[stream]) > 16384:  # Docker splits long lines at 16K
            lines.append(self.partial[stream])
            self.partial[stream] = b""
            tail_nl = False
        else:
            tail_nl = True
        out = []
        for i, line in enumerate(lines):
            nl = "\n" if (tail_nl or i < len(lines) - 1) else ""
            text = line.decode("utf-8", "replace") + nl
            out.append(_line(text, stream))
        if out:
            self._emit("".join(out).encode())

    def flush(self):
        for stream in ("stdout", "stderr"):
            if self.partial[stream]:
                text = self.partial[stream].decode("utf-8", "replace")
                self.partial[stream] = b""
                self._emit(_line(text, stream).encode())

    def _emit(self, data):
        if self.max_size and self.size + len(data) > self.max_size and self.size > 0:
            self._rotate()
        try:
            os.write(self.fd, data)
            self.size += len(data)
        except OSError:
            pass

    def _rotate(self):
        os.close(self.fd)
        if self.max_file > 1:
            for i in range(self.max_file - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                try:
                    os.rename(src, f"{self.path}.{i}")
                except FileNotFoundError:
                    pass
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        else:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = 0


def _line(text, stream):
    return '{"log":%s,"stream":"%s","time":"%s"}\n' % (_esc(text), stream, _now())


def _frame(kind, data):
    """attach.sock frames: kind (0 stdin, 1 stdout, 2 stderr, 3 winsize, 4 exit code, 5 stdin
    closed), 2-byte big-endian length, data (at most 65535 bytes)."""
    if len(data) <= 65535:
        return bytes((kind,)) + len(data).to_bytes(2, "big") + data
    return b"".join(_frame(kind, data[i:i + 65535]) for i in range(0, len(data), 65535))


def _set_winsize(fd, ws):
    import fcntl
    import termios
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, ws[:8])
    except OSError:
        pass


def _write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _close(fd):
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def _resize(src, dst):
    import fcntl
    import termios
    try:
        ws = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, ws)
    except OSError:
        pass


class Health:
    """The health check's timer and probe (engine/health.py has the rules). `h` is the
    monitor's "health" argument; its "state", "t0" and "next" carry over the hand-off."""

    def __init__(self, h, poller, init):
        self.h, self.poller, self.init = h, poller, init
        now = time.monotonic()
        h.setdefault("t0", now)
        h.setdefault("next", now + self._interval(now, h["t0"]))
        self.pid = self.pidfd = self.out = -1
        self.buf = b""
        self.timed_out = False

    def _interval(self, now, t0):
        h = self.h
        if now - t0 < h["start_period"] and h["state"]["Status"] == "starting":
            return h["start_interval"]
        return h["interval"]

    def timeout_ms(self, now):
        due = self.deadline if self.pid > 0 else self.h["next"]
        return max(0, int((due - now) * 1000) + 1)

    def tick(self, now):
        if self.pid > 0:
            if now >= self.deadline:
                if not self.timed_out:  # the process in the container first: the runtime reaps it
                    self.timed_out = True
                    self.deadline = now + 2
                    if self.kill_inner():
                        return
                self.kill()
                self.finish(-1, "")
        elif now >= self.h["next"]:
            self.start(now)

    def start(self, now):
        h = self.h
        try:
            os.unlink(h["pid_file"])
        except OSError:
            pass
        r, w = os.pipe()
        self.started, self.start_text = now, _now()
        self.deadline = now + h["timeout"]
        self.timed_out = False
        pid = os.fork()
        if pid == 0:
            try:
                null = os.open("/dev/null", os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(w, 1)
                os.dup2(w, 2)
                os.closerange(3, 1 << 20)
                for s in (_signal.SIGPIPE, _signal.SIGINT, _signal.SIGHUP):
                    _signal.signal(s, _signal.SIG_DFL)
                os.execv(h["argv"][0], h["argv"])
            finally:
                os._exit(127)
        os.close(w)
        self.pid, self.out, self.buf = pid, r, b""
        self.pidfd = os.pidfd_open(pid)
        os.set_blocking(r, False)
        self.poller.register(r, select.POLLIN)
        self.poller.register(self.pidfd, select.POLLIN)

    def read(self):
        while True:
            try:
                data = os.read(self.out, 65536)
            except OSError:  # EAGAIN: nothing more now
                return True
            if not data:
                self.poller.unregister(self.out)
                _close(self.out)
                self.out = -1
                return False
            if len(self.buf) < 4096:
                self.buf = (self.buf + data)[:4096]

    def exited(self):
        try:
            _, st = os.waitpid(self.pid, 0)
        except ChildProcessError:
            st = 255 << 8
        self.pid = -1
        if self.out >= 0:
            self.read()  # what is buffered (a background child may hold the pipe: no EOF wait)
        code = os.WEXITSTATUS(st) if os.WIFEXITED(st) else -1
        self.finish(code, self.buf.decode("utf-8", "replace"))

    def finish(self, code, output):
        if self.timed_out:  # Docker's result for a probe that outlived --health-timeout
            code, output = -1, "Health check exceeded timeout (%gs)" % self.h["timeout"]
        self.record(code, output)

    def kill_inner(self):
        """SIGKILL the probe's process in the container (the runtime wrote its pid file)."""
        try:
            with open(self.h["pid_file"]) as f:
                os.kill(int(f.read().strip()), _signal.SIGKILL)
            return True
        except (OSError, ValueError):
            return False

    def kill(self):
        """SIGKILL the probe: the process in the container and the runtime's exec."""
        self.kill_inner()
        if self.pid > 0:
            try:
                os.kill(self.pid, _signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            self.pid = -1

    def reap_strays(self):
        """Reap what the probe left to us (we are a subreaper), never the container's init."""
        while True:
            try:
                r = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except (ChildProcessError, OSError):
                return
            if r is None or r.si_pid == self.init:
                return
            try:
                os.waitpid(r.si_pid, 0)
            except ChildProcessError:
                return

    def record(self, code, output):
        h, st = self.h, self.h["state"]
        for fd in (self.out, self.pidfd):
            if fd >= 0:
                try:
                    self.poller.unregister(fd)
                except KeyError:
                    pass
                _close(fd)
        self.out = self.pidfd = -1
        now = time.monotonic()
        if code == 0:
            st["FailingStreak"] = 0
            st["Status"] = "healthy"
        elif not (st["Status"] == "starting" and self.started - h["t0"] < h["start_period"]):
            st["FailingStreak"] += 1
            if st["FailingStreak"] >= h["retries"]:
                st["Status"] = "unhealthy"
        st["Log"] = (st["Log"] + [{"Start": self.start_text, "End": _now(), "ExitCode": code,
                                   "Output": output}])[-5:]
        self.save()
        self.reap_strays()
        h["next"] = now + self._interval(now, h["t0"])

    def save(self, status=None):
        st = self.h["state"]
        if status:
            st["Status"] = status
        path = self.h["path"]
        try:
            with open(path + ".tmp", "w") as f:
                f.write(_dumps(st))
            os.rename(path + ".tmp", path)
        except OSError:
            pass

    def stop(self):
        """The container is gone: end a running probe; "unhealthy" from now on (Docker)."""
        self.kill()
        for fd in (self.out, self.pidfd):
            _close(fd)
        self.out = self.pidfd = -1
        self.save("unhealthy")


def entry():
    """The script the engine execs for the monitor (monitor_main.py), after making sure this
    module's .pyc is current so the small process does not compile it (in the engine's
    process only: it imports what the monitor itself must not)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        import importlib.util
        import py_compile
        src = os.path.join(here, "monitor.py")
        pyc = importlib.util.cache_from_source(src)
        st = os.stat(src)
        try:
            with open(pyc, "rb") as f:
                head = f.read(16)
            fresh = (int.from_bytes(head[4:8], "little") == 0 and head[:4] == importlib.util.MAGIC_NUMBER
                     and int.from_bytes(head[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
                     and int.from_bytes(head[12:16], "little") == st.st_size & 0xFFFFFFFF)
        except OSError:
            fresh = False
        if not fresh:
            py_compile.compile(src, cfile=pyc, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    except Exception:  # noqa: BLE001 - read-only install: it compiles at start, as before
        pass
    return os.path.join(here, "monitor_main.py")


def main(argv):
    return serve(_loads(argv[1]))


def serve(a, handoff_at=None):
    """Monitor the container described by `a` until it exits and the exit is handed on.
    With `handoff_at` (a time.monotonic() deadline), called in-process by the engine so that a
    short container's exit is seen without waiting for this script's interpreter to start:
    if the container still runs at the deadline, return the arguments (fds, partial log lines)
    for the exec'd monitor to carry on with."""
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
    pid = a["pid"]
    log = Log(a["log"], a.get("max_size", 0), a.get("max_file", 1), a.get("partial"))
    tty = a.get("tty", False)
    streams = {}  # fd -> stream name
    if a["out"] >= 0:
        streams[a["out"]] = "stdout"
    if a.get("err", -1) >= 0:
        streams[a["err"]] = "stderr"
    cin = a.get("in", -1)
    sink_in, sink_out, sink_err = a.get("sink_in", -1), a.get("sink_out", -1), a.get("sink_err", -1)
    ctl = a.get("ctl", -1)
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    if sink_in >= 0 and cin >= 0:
        poller.register(sink_in, select.POLLIN)

    def size_source():  # the attached terminal (stdin, or stdout when stdin is relayed by a pipe)
        return sink_in if sink_in >= 0 and os.isatty(sink_in) else sink_out

    if ctl >= 0:
        poller.register(ctl, select.POLLIN)
        if tty and size_source() >= 0:
            _resize(size_source(), a["out"])
    poller.register(pidfd, select.POLLIN)
    listener = a.get("attach", -1)  # `hull attach` clients connect here (attach.sock)
    clients = {}  # fd -> bytes of an incomplete frame
    if listener >= 0:
        poller.register(listener, select.POLLIN)
    for fd in a.get("clients", ()):
        clients[fd] = b""
        poller.register(fd, select.POLLIN)
    health = Health(a["health"], poller, pid) if a.get("health") else None

    def drop_client(fd):
        if clients.pop(fd, None) is not None:
            try:
                poller.unregister(fd)
            except KeyError:
                pass
            _close(fd)

    def to_clients(kind, data):
        for fd in list(clients):
            try:
                _write_all(fd, _frame(kind, data))
            except OSError:  # gone, or too slow to keep up: it is detached
                drop_client(fd)

    def from_client(fd):
        nonlocal cin
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            drop_client(fd)
            return
        buf = clients[fd] + data
        while len(buf) >= 3:
            n = int.from_bytes(buf[1:3], "big")
            if len(buf) < 3 + n:
                break
            kind, body, buf = buf[0], buf[3:3 + n], buf[3 + n:]
            if kind == 0 and cin >= 0:
                try:
                    _write_all(cin, body)
                except OSError:
                    pass
            elif kind == 3 and tty and a["out"] >= 0:
                _set_winsize(a["out"], body)
            elif kind == 5 and cin >= 0 and not tty:  # the client's stdin ended
                _close(cin)
                cin = -1
        if fd in clients:
            clients[fd] = buf

    def drop_sinks():
        nonlocal sink_in, sink_out, sink_err
        if sink_in >= 0:
            try:
                poller.unregister(sink_in)
            except KeyError:
                pass
        for fd in {sink_in, sink_out, sink_err}:
            _close(fd)
        sink_in = sink_out = sink_err = -1

    def on_output(fd, nonblock=False):
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError:  # EIO: the pty's other side is gone
            data = b""
        if not data:
            poller.unregister(fd)
            streams.pop(fd)
            _close(fd)
            return False
        name = streams[fd]
        log.write(name, data)
        if clients:
            to_clients(1 if name == "stdout" else 2, data)
        sink = sink_out if name == "stdout" else sink_err
        if sink >= 0:
            try:
                _write_all(sink, data)
            except OSError:
                drop_sinks()
        return True

    status = None
    while status is None:
        timeout = None
        now = time.monotonic()
        if handoff_at is not None and (health is None or health.pid < 0):
            timeout = max(0, int((handoff_at - now) * 1000))
        if health is not None:
            t = health.timeout_ms(now)
            timeout = t if timeout is None else min(timeout, t)
        try:
            events = poller.poll(timeout)
        except InterruptedError:
            continue
        if (not events and handoff_at is not None and time.monotonic() >= handoff_at
                and (health is None or health.pid < 0)):  # a running probe is awaited first
            os.close(pidfd)
            os.close(log.fd)
            for fd in clients:  # accepted here: close-on-exec unless told otherwise
                os.set_inheritable(fd, True)
            out = [fd for fd, name in streams.items() if name == "stdout"]
            err = [fd for fd, name in streams.items() if name == "stderr"]
            return dict(a, out=out[0] if out else -1, err=err[0] if err else -1, **{"in": cin},
                        sink_in=sink_in, sink_out=sink_out, sink_err=sink_err, ctl=ctl,
                        attach=listener, clients=list(clients),
                        partial={k: v.decode("latin-1") for k, v in log.partial.items()})
        for fd, ev in events:
            if fd in streams:
                on_output(fd)
            elif health is not None and fd == health.out:
                health.read()
            elif health is not None and fd == health.pidfd:
                if health.pid > 0:
                    health.exited()
            elif fd in clients:
                from_client(fd)
            elif fd == listener:
                try:
                    import _socket
                    cfd = _socket.socket(fileno=os.dup(listener))
                    try:
                        nfd, _ = cfd._accept()
                    finally:
                        cfd.close()
                    os.set_blocking(nfd, True)
                    clients[nfd] = b""
                    poller.register(nfd, select.POLLIN)
                except OSError:
                    pass
            elif fd == sink_in:
                try:
                    data = os.read(sink_in, 65536)
                except OSError:
                    data = b""
                if data:
                    try:
                        _write_all(cin, data)
                    except OSError:
                        poller.unregister(sink_in)
                        sink_in = -1  # closed with the other sinks
                else:
                    poller.unregister(sink_in)
                    if tty:
                        try:
                            os.write(cin, b"\x04")
                        except OSError:
                            pass
                    else:
                        _close(cin)
                        cin = -1
                    _close(sink_in)
                    sink_in = -1
            elif fd == ctl:
                try:
                    data = os.read(ctl, 4096)
                except OSError:
                    data = b""
                if not data:  # the client is gone: stop writing to its stdio
                    poller.unregister(ctl)
                    _close(ctl)
                    ctl = -1
                    drop_sinks()
                elif b"detach" in data:  # detach keys typed: the container runs on
                    poller.unregister(ctl)
                    _close(ctl)
                    ctl = -1
                    drop_sinks()
                elif b"w" in data and tty and size_source() >= 0:
                    _resize(size_source(), a["out"])
            elif fd == pidfd:
                try:
                    _, st = os.waitpid(pid, 0)
                except ChildProcessError:
                    st = 255 << 8
                status = st
                break
        if health is not None and status is None:
            health.tick(time.monotonic())
    if health is not None:
        health.stop()
    # drain what the container wrote before it died
    for fd in list(streams):
        os.set_blocking(fd, False)
        while fd in streams and on_output(fd):
            pass
    log.flush()
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
    elif os.WIFSIGNALED(status):
        code = 128 + os.WTERMSIG(status)
    else:
        code = 255
    exit_path = os.path.join(a["dir"], "exit.json")
    tmp = exit_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(_dumps({"ExitCode": code, "FinishedAt": _now(), "MonitorPid": os.getpid()}))
    os.rename(tmp, exit_path)
    to_clients(4, b"%d" % code)
    for fd in list(clients):
        drop_client(fd)
    if listener >= 0:
        _close(listener)
        try:
            os.unlink(os.path.join(a["dir"], "attach.sock"))
        except OSError:
            pass
    drop_sinks()
    _close(cin)
    for fd in list(streams):
        _close(fd)
    while True:  # reap anything else that ended up with us
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    if ctl >= 0:
        try:
            _write_all(ctl, b"exit %d\n" % code)
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = os.read(ctl, 64)
                if not chunk:
                    break
                reply += chunk
        except OSError:
            reply = b""
        if reply.strip() == b"done":
            return 0
        _close(ctl)
    os.execv(a["python"], a["cleanup"])
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
