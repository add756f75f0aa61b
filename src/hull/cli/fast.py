"""`hull`'s fast path: hand a container command to the engine's zygote (hull.engine.zygote).

Imported by the hand-written entry script (bin/hull) under `python -S`, before click, rich or
the engine: only sys, posix, _socket, _signal and hull.jsonfast (os only to start a zygote). `run(argv)` returns the
command's exit code, or None when the zygote cannot serve it (not a container command,
HULL_ZYGOTE=0, no zygote yet); then the caller runs the full CLI in-process.
When there is no zygote, it starts one in the background for the next command.
"""

import sys

import _signal
import _socket
import posix  # not os: `import os` (posixpath, _collections_abc) was ~2 ms of every command here

_ENV = {k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
        for k, v in posix.environ.items()}  # what os.environ holds

# commands the zygote's worker runs: container commands, and image commands whose start-up
# (click, http.client + ssl, the registry code) dominated a small pull or push. pull/push draw
# rich progress bars on a terminal: the worker has the client's stdio fds, so isatty() and the
# window size are the client's; a non-tty gets Docker-style status lines as before.
COMMANDS = frozenset((
    "run", "create", "start", "stop", "kill", "restart", "rm", "ps", "logs", "exec", "wait",
    "inspect", "attach", "top", "ns", "pause", "unpause", "rename", "port", "container",
    "pull", "push", "images", "tag", "rmi", "volume",
    "build",  # plain progress lines; a cached rebuild is ~8 ms of work behind ~150 ms of imports
))
_FORWARD = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1,
            _signal.SIGUSR2, _signal.SIGWINCH)


def _root():
    return _ENV.get("HULL_ROOT") or "/var/lib/hull"


def run(argv):
    if not argv or argv[0] not in COMMANDS or _ENV.get("HULL_ZYGOTE", "1") in ("0", "no", "false"):
        return None
    root = _root()
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(root + "/run/zygote.sock")
    except OSError:
        s.close()
        if posix.geteuid() == 0 or posix.access(root, posix.W_OK):
            spawn(root)
        return None
    for fd in (0, 1, 2):  # a closed std fd cannot be passed: give the worker /dev/null there
        try:
            posix.fstat(fd)
        except OSError:
            posix.open("/dev/null", posix.O_RDWR)
    from hull import jsonfast
    umask = posix.umask(0o022)
    posix.umask(umask)
    try:
        cwd = posix.getcwd()
    except OSError:
        cwd = "/"
    payload = jsonfast.dumps({"argv": argv, "env": _ENV, "cwd": cwd, "umask": umask}).encode()
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
    data = len(payload).to_bytes(4, "little") + payload
    try:
        n = s.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        if n < len(data):
            s.sendall(data[n:])
    except OSError:
        s.close()
        return None

    forwarded = []

    def forward(signum, _frame):
        forwarded.append(signum)
        try:
            s.send(b"sig %d\n" % signum)
        except OSError:
            pass
    for sig in _FORWARD:
        _signal.signal(sig, forward)
    buf = b""
    while b"\n" not in buf:
        try:
            chunk = s.recv(64)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        buf += chunk
    s.close()
    line = buf.split(b"\n", 1)[0]
    if line.startswith(b"exit "):
        return int(line[5:])
    if forwarded and forwarded[-1] != _signal.SIGWINCH:  # it died of the signal we passed on: so do we
        _signal.signal(forwarded[-1], _signal.SIG_DFL)
        posix.kill(posix.getpid(), forwarded[-1])
    posix.write(2, b"hull: the engine's worker for this command died\n")
    return 125


def spawn(root):
    """Start a zygote for `root` in the background (double fork, new session, stdio on
    $HULL_ROOT/run/zygote.log) and return at once — unless one holds the lock (starting, or
    on its way out after its code changed; the new one waits for that)."""
    import fcntl
    import os
    try:
        fd = os.open(root + "/run/zygote.lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a zygote is starting (its socket is not there yet)
        finally:
            os.close(fd)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            os.chdir("/")
            os.makedirs(root + "/run", mode=0o700, exist_ok=True)
            null = os.open("/dev/null", os.O_RDONLY)
            log = os.open(root + "/run/zygote.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.closerange(3, 256)
            os.execv(sys.executable, [sys.executable, "-m", "hull.engine.zygote", root])
        finally:
            os._exit(1)
    os.waitpid(pid, 0)
