"""The engine's zygote: a pre-forked, pre-imported `hull` that starts commands without paying
interpreter start-up and imports (DESIGN.md, Speed).

    python -m hull.engine.zygote HULL_ROOT        (started on demand by hull.cli.fast)

It imports the CLI (click) and everything `hull run` needs once, then listens on
$HULL_ROOT/run/zygote.sock (mode 0600 in a 0700 directory; a peer with another uid is refused,
SO_PEERCRED). Each connection goes to a *worker*, the `hull` process for that command, forked
ahead of time (a spare, kept ready by the zygote's _Forker while the current command runs):

    client -> worker   4-byte length + JSON {argv, env, cwd, umask}, the client's fds 0,1,2 as
                       SCM_RIGHTS on the first byte; then lines "sig N" (signals the client got)
    worker -> client   "exit N" when the command is done (stdout/stderr flushed before)

The zygote reads the request itself. A `hull build` whose every step is cached and whose
image and tags are already stored (a no-op rebuild) is answered right there, reading only
(_inline): no worker. Everything else is handed through the forker to the spare worker (the
connection and the client's fds over SCM_RIGHTS, the request in the client's framing).

The worker takes the client's stdio, cwd, environment and umask, and runs hull.cli.main. If
the client goes away (killed) the worker SIGKILLs itself, as `hull` itself would have died.

The zygote serves only as long as its code is current: after each request it compares the
mtimes of the hull modules it loaded with what it loaded (while the worker runs); if one
changed it exits, and the next client starts a fresh one. It also exits when its socket is gone or
replaced ($HULL_ROOT removed, as tests do) or after HULL_ZYGOTE_IDLE seconds (default 600)
without a request.
"""

import os
import signal
import socket
import struct
import sys
import time

PRELOAD = (
    "hull.cli.main", "hull.cli.containers", "hull.engine.lifecycle", "hull.engine.bundle",
    "hull.engine.records", "hull.engine.exec", "hull.engine.logs", "hull.engine.inspect",
    "hull.engine.namespaces", "hull.engine.attach", "hull.engine.monitor",
    "hull.image.store", "hull.image.snapshot", "hull.image.reference",
    "hull.runtime.lifecycle", "hull.runtime.rootfs", "hull.runtime.init", "hull.runtime.spec",
    "hull.runtime.spec_default", "hull.runtime.console", "hull.runtime.state",
    "hull.cgroups", "hull.cgroups.fs", "hull.kernel.seccomp", "hull.kernel.capabilities",
    "hull.kernel.system", "hull.kernel.mounts", "hull.kernel.namespaces",
    "termios", "tty", "fcntl", "calendar", "shutil", "io", "threading",
    "resource", "encodings.unicode_escape",  # the container's stage 1; mountinfo's escapes
    "hull.cli.images", "hull.image.registry", "hull.image.http", "ssl",  # pull/push
    "hull.cli.build", "hull.build.builder", "hull.build.cache", "hull.build.context",  # build
    "hull.build.dockerfile", "hull.build.dockerignore", "secrets", "encodings.utf_8_sig",
    "difflib",  # click tries each short option (-q, -t) as a long one first: NoSuchOption imports it
)


def socket_path(root):
    return os.path.join(root, "run", "zygote.sock")


def _preload():
    """Import what commands import lazily, so no worker pays for it: the list above, then
    every other module of the hull package (lazy imports inside functions included)."""
    import importlib
    import pkgutil
    import hull
    names = list(PRELOAD)
    names += [m.name for m in pkgutil.walk_packages(hull.__path__, "hull.")
              if not m.name.endswith(("__main__", ".zygote")) and ".tests" not in m.name]
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - optional or broken module: serve without it
            pass
    try:  # what every worker would read again: the default seccomp profile's data
        from hull.runtime import seccomp_profile
        seccomp_profile.profile()
    except BaseException:  # noqa: BLE001 - a worker will say what is wrong with it
        pass
    try:  # and the host's cgroup layout (mode, v1 mounts)
        from hull import cgroups
        from hull.cgroups import fs
        if cgroups.detect_mode() != cgroups.UNIFIED:
            fs.v1_hierarchies(cgroups.DEFAULT_ROOT)
    except BaseException:  # noqa: BLE001 - no cgroups here: the workers will say so
        pass
    import gc
    gc.collect()
    gc.freeze()  # keep the collector off the preloaded objects: fewer copy-on-write faults


def _hull_files():
    base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = {}
    for m in list(sys.modules.values()):
        f = getattr(m, "__file__", None)
        if f and f.startswith(base):
            try:
                out[f] = os.stat(f).st_mtime_ns
            except OSError:
                pass
    return out


def _stale(files):
    for f, mtime in files.items():
        try:
            if os.stat(f).st_mtime_ns != mtime:
                return True
        except OSError:
            return True
    return False


def serve(root):
    import fcntl
    from hull.engine import lifecycle, trash
    rundir = os.path.join(root, "run")
    os.makedirs(rundir, mode=0o700, exist_ok=True)
    lockfd = os.open(os.path.join(rundir, "zygote.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + 2  # a stale zygote may still be on its way out
    while True:
        try:
            fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                return 0  # another zygote serves this root
            time.sleep(0.05)
    _preload()
    files = _hull_files()
    path = socket_path(root)
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{path}.{os.getpid()}"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    lsock.bind(tmp)
    os.chmod(tmp, 0o600)
    lsock.listen(128)
    os.rename(tmp, path)
    ino = os.stat(path).st_ino
    idle = float(os.environ.get("HULL_ZYGOTE_IDLE") or 600)
    lsock.settimeout(2.0)
    last = time.monotonic()

    def in_forker():
        lsock.detach()  # its fd is closed already (_fork_with_channel): forget it, never close it
    forker = _Forker(in_forker)
    try:
        while True:
            try:
                conn, _ = lsock.accept()
            except socket.timeout:
                _reap()
                trash.sweep(root)  # left by a worker killed before it emptied its trash
                lifecycle.release_monitor_cgroup()  # when the last monitor has gone
                try:
                    gone = os.stat(path).st_ino != ino
                except OSError:
                    gone = True
                if gone or time.monotonic() - last > idle:
                    return 0
                continue
            _reap()
            last = time.monotonic()
            conn.setblocking(True)
            _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if uid != os.getuid():
                conn.close()
                continue
            try:
                conn.settimeout(10)  # a peer that connects and sends nothing does not stall us
                req, fds = _recv_request(conn)
                conn.settimeout(None)
            except (OSError, ValueError):
                conn.close()
                continue
            try:
                if _inline(conn, req, fds):
                    continue
                try:
                    _hand(forker.sock, conn.fileno(), req, fds)
                except OSError:  # the forker died (killed?): another one
                    forker.dismiss()
                    forker = _Forker(in_forker)
                    _hand(forker.sock, conn.fileno(), req, fds)
            finally:
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                conn.close()
            # checked after the hand-off (while the worker runs), not before it: a request
            # that races an edit of hull's code runs the old code once, none after it
            if _stale(files):
                return 0
    finally:
        forker.dismiss()
        lifecycle.release_monitor_cgroup()
        try:
            if os.stat(path).st_ino == ino:
                os.unlink(path)
        except OSError:
            pass
        os.close(lockfd)  # now, not at exit: a client that finds no socket may start the next


def _hand(sock, conn_fd, req, fds):
    """Pass a request on: the client's framing (4-byte length + JSON) with the connection and
    the client's fds as SCM_RIGHTS."""
    from hull import jsonfast
    import array
    data = jsonfast.dumps(req).encode()
    passed = array.array("i", [conn_fd, *fds])
    msg = len(data).to_bytes(4, "little") + data
    n = sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, passed.tobytes())])
    if n < len(msg):
        sock.sendall(msg[n:])


def _fork_with_channel(body):
    """Fork a child that runs body(its end of a socketpair) with every other inherited fd
    closed (0-2 stay); returns (our end, pid)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ours.close()
            keep = theirs.fileno()  # nothing of an earlier client may stay open here
            os.closerange(3, keep)
            os.closerange(keep + 1, 1 << 16)
            code = body(theirs)
        finally:
            os._exit(code)
    theirs.close()
    return ours, pid


class _Forker:
    """The zygote's helper that keeps a *spare* worker ready: forked once from the zygote, it
    forks a spare (a worker before its request), passes it the next request the zygote
    hands over, and forks the next spare while that command runs. Forking this ~27 MB process
    and the child's first run took 3-4 ms of every command's start. Spares are forked from
    here, not from the zygote, so the zygote's own pages stay its own: a cached build it
    answers itself (_inline) does not copy-on-write fault on pages a spare shares."""

    def __init__(self, in_child):
        def body(chan):
            in_child()
            return _forker_loop(chan)
        self.sock, self.pid = _fork_with_channel(body)

    def dismiss(self):
        self.sock.close()  # the forker reads EOF, dismisses its spare and exits


def _forker_loop(chan):
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # finished workers reap themselves
    spare, _ = _fork_with_channel(_serve_one)
    try:
        while True:
            try:
                req, fds = _recv_request(chan, max_fds=4)
            except (OSError, ValueError):
                return 0  # the zygote is gone
            try:
                try:
                    _hand(spare, fds[0], req, fds[1:])
                except OSError:  # the spare died: another one
                    spare.close()
                    spare, _ = _fork_with_channel(_serve_one)
                    _hand(spare, fds[0], req, fds[1:])
                spare.close()
            finally:
                for fd in fds:
                    os.close(fd)
            spare, _ = _fork_with_channel(_serve_one)  # with this client's fds closed here
    finally:
        spare.close()  # a spare that got nothing reads EOF and exits


def _serve_one(sock):
    _prepare_worker()
    try:
        req, fds = _recv_request(sock, max_fds=4)
    except (OSError, ValueError):
        return 0  # dismissed
    sock.close()
    if not fds:
        return 1
    conn = socket.socket(fileno=fds[0])
    return _worker(conn, req, fds[1:])


def _prepare_worker():
    for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
        signal.signal(s, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import gc
    gc.set_threshold(50000)  # mostly short-lived: (almost) no collector pauses on the start path


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _recv_request(conn, max_fds=3):
    import array
    fds = array.array("i")
    data = b""
    msg, anc, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(max_fds * fds.itemsize))
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(cdata[:len(cdata) - (len(cdata) % fds.itemsize)])
    data = msg
    if len(data) < 4:
        raise OSError("short request")
    n = int.from_bytes(data[:4], "little")
    while len(data) < n + 4:
        chunk = conn.recv(max(65536, n + 4 - len(data)))
        if not chunk:
            raise OSError("short request")
        data += chunk
    from hull import jsonfast
    return jsonfast.loads(data[4:4 + n]), list(fds)


def _inline(conn, req, fds):
    """Serve a no-op `hull build` (cached through and through, nothing to write) here, without
    a worker: what a fork costs on this kind of VM (page-table copy, then a copy-on-write
    fault for every page the command touches: ~10 ms for a cached build) was most of it.
    hull.cli.build.serve_cached only reads (Dockerfile, context, cache entries, index) and
    gives the output, or None (then a worker runs the build as always). The output goes to
    the client's fds only when they take it at once; anything unusual falls back to a worker."""
    argv = req.get("argv") or []
    if not argv or argv[0] != "build" or len(fds) < 3:
        return False
    env = req.get("env") or {}
    if any(env.get(k) != os.environ.get(k) for k in set(env) | set(os.environ) if k.startswith("HULL_")):
        return False  # another store, runtime root or setting than this zygote's
    try:
        from hull.cli import build as cli_build
        res = cli_build.serve_cached(argv, req.get("cwd") or "/", env)
        if res is None:
            return False
        import select
        chunks = [(fds[1], res[0].encode()), (fds[2], res[1].encode())]
        for fd, data in chunks:
            if data and (len(data) > 4096 or not select.select([], [fd], [], 0)[1]):
                return False
        for fd, data in chunks:
            while data:
                data = data[os.write(fd, data):]
    except Exception:  # noqa: BLE001 - a worker runs it and reports what went wrong
        return False
    try:
        conn.sendall(b"exit 0\n")
    except OSError:
        pass
    return True


def _reopen_stdio():
    import io
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        tty = os.isatty(fd)
        raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
        buf = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        f = io.TextIOWrapper(buf, encoding="utf-8", errors="backslashreplace" if fd == 2 else "strict",
                             line_buffering=tty or fd == 2, write_through=fd == 2)
        setattr(sys, name, f)
        setattr(sys, f"__{name}__", f)


_answered = False  # the worker sent "exit N": the client may go now, the worker finishes up


def _control(conn):
    """The worker's thread on the client connection: signals in, EOF = the client died."""
    buf = b""
    while True:
        try:
            data = conn.recv(256)
        except OSError:
            data = b""
        if not data:
            if not _answered:  # the client died before its answer: so does its command
                os.kill(os.getpid(), signal.SIGKILL)
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.startswith(b"sig "):
                try:
                    os.kill(os.getpid(), int(line[4:]))
                except (ValueError, OSError):
                    pass


def _worker(conn, req, fds):
    for i, fd in enumerate(fds[:3]):
        if fd != i:
            os.dup2(fd, i)
            os.close(fd)
    for fd in fds[3:]:
        os.close(fd)
    env = req["env"]
    for k in [k for k in os.environ if k not in env]:  # only what differs: each change is a
        del os.environ[k]                               # putenv, ~40 of them took ~1.4 ms
    for k, v in env.items():
        if os.environ.get(k) != v:
            os.environ[k] = v
    os.umask(req.get("umask", 0o022))
    os.chdir(req["cwd"])
    _reopen_stdio()
    # nothing forked from here on (monitors, runtime children) keeps the client's connection
    def drop_conn():
        fd = conn.detach()  # the object forgets the fd, so no finalizer closes a reused number
        if fd >= 0:
            os.close(fd)
    os.register_at_fork(after_in_child=drop_conn)
    import threading
    threading.Thread(target=_control, args=(conn,), daemon=True).start()
    argv = list(req["argv"])
    sys.argv = ["hull", *argv]
    code = 0
    try:
        from hull.cli.main import main
        main.main(args=argv, prog_name="hull")
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    except BaseException as e:  # noqa: BLE001 - HullGroup handles the usual; this is the rest
        print(f"Error: internal error: {e.__class__.__name__}: {e}", file=sys.stderr)
        code = 125
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    global _answered
    _answered = True
    try:
        conn.sendall(b"exit %d\n" % (code & 0xFF))
    except OSError:
        pass
    from hull.engine import trash
    trash.empty()  # what the command removed, deleted now that the client has its answer
    return code & 0xFF


def main(argv):
    root = argv[1] if len(argv) > 1 else (os.environ.get("HULL_ROOT") or "/var/lib/hull")
    for s in (signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    return serve(root)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
