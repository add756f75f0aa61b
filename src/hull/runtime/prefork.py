"""A container's stage 1, started before the runtime loads its own code.

`hull-runtime create` and `run` have it from the start: while the parent parses its
arguments, imports the lifecycle code, reads and checks the spec and makes the state dir,
stage 1 imports the container-side modules (ctypes among them) on another CPU.

- Started beside the runtime: the entry script (bin/hull-runtime) starts it with the runtime,
  as a second interpreter (serve_beside), so the two start on two CPUs at once and share no
  memory: no copy-on-write page faults afterwards in either. The runtime finds it by the pid in
  $HULL_RUNTIME_STAGE1 (its child: the script execs the runtime) and connects to it.
- Forked otherwise (cli.main, as soon as a scan of the global flags says create/run, or the
  engine's in-process create): only the socketpair is made before the fork.

Two messages follow: EARLY, config.json as parsed but not checked (Stage1.early), on which
stage 1 may make the namespaces and fork the init; then OPTIONS, the checked spec and
everything the parent made (lifecycle.create).
"""

from hull import osfast as os

import _socket


class Stage1:
    """Stage 1 as the parent holds it: its pid and the channel to it (which the init it
    forks inherits)."""

    __slots__ = ("pid", "ch", "config", "beside")

    def __init__(self, pid, ch, beside=False):
        self.pid, self.ch = pid, ch
        self.beside = beside  # started by bin/hull-runtime, not forked
        self.config = None  # config.json's bytes as stage 1 got them

    def early(self, bundle=None, spec=None):
        """Send EARLY: config.json read from `bundle` and parsed, not checked (its bytes are
        kept in .config for the parent's own check: both see the same), or `spec`, checked
        already."""
        from hull import jsonfast as json
        from hull.runtime import sync
        if spec is None and bundle is not None:
            try:
                with open(os.path.join(bundle, "config.json"), "rb") as f:
                    self.config = f.read()
                spec = json.loads(self.config)
            except (OSError, ValueError, RecursionError):
                spec = None  # the parent's own read says what is wrong
        self.ch.send(sync.EARLY, spec=spec)

    def reap(self):
        reap(self.pid)
        self.pid = 0

    def kill(self):
        """On an error before `create` knows the init: stop stage 1, and an init it reported
        already (our child, CLONE_PARENT), and reap them. An init forked but not reported yet
        exits on the channel's EOF."""
        kill_and_reap(self.pid)
        self.pid = 0
        pids = self._reported_init()
        self.ch.close()
        for pid in pids:
            kill_and_reap(pid)

    def _reported_init(self):
        """Pids of CHILD_PID messages waiting unread in the channel."""
        import marshal
        from hull.runtime import sync
        found = []
        try:
            self.ch.sock.setblocking(False)
            while True:
                data, fds = sync.recv_with_fds(self.ch.sock, 1 << 16)
                for fd in fds:
                    os.close(fd)
                if not data:
                    break
                msg = marshal.loads(data)
                if msg.get("type") == sync.CHILD_PID:
                    found.append(msg["pid"])
        except (OSError, ValueError, EOFError):
            pass  # nothing (more) to read; a closed socket
        return found


def reap(pid):
    if pid:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def kill_and_reap(pid):
    """SIGKILL and reap: a stage 1, or an init or exec's process (our children, CLONE_PARENT)."""
    if pid:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        reap(pid)


def fork_stage(stage, *args):
    """Fork a child that runs init.<stage>(channel, *args) and never returns; returns its pid
    and our end of the channel. Only the socketpair is made before the fork: each side imports
    the channel code after it, into memory of its own (what is allocated before a fork is
    shared copy-on-write, and both processes then pay page faults to touch it)."""
    import gc
    # What exists now is shared copy-on-write with the child: out of the collector's sight,
    # so that no collection, in either process, writes to all of its pages (the runtime's
    # processes do not collect at all: cli.main).
    gc.freeze()
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            gc.disable()  # stage 1 and what it forks live for milliseconds: no collections
            from hull.runtime import init, sync
            init.run_child(sync.Channel(theirs), getattr(init, stage), *args)
        finally:
            os._exit(1)  # only if the import failed: run_child always exits
    theirs.close()
    from hull.runtime import sync
    return pid, sync.Channel(ours)


def fork(beside=""):
    """Stage 1 of `create`: the one started beside the runtime (`beside`: its pid, as
    bin/hull-runtime passes it), or one forked now; returns the parent's Stage1. Send it EARLY
    next."""
    stage1 = _connect_beside(beside)
    if stage1 is None:
        stage1 = Stage1(*fork_stage("create_stage1"))
    return stage1


# ----------------------------------------------------------------------------- beside
def _address(pid):
    # Abstract: nothing to clean up. Anyone could bind the name first; both ends check the
    # other's pid (SO_PEERCRED), and the runtime forks a stage 1 of its own if that fails.
    return b"\0hull-runtime/stage1/%d" % pid


def _peer_pid(sock):
    import _struct as struct
    return struct.unpack("3i", sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12))[0]


def serve_beside():
    """Stage 1 as bin/hull-runtime starts it, beside the runtime (its parent once the script
    has exec'd it): listen, import the container side, take the runtime's connection, then
    go on as a forked stage 1 would. Exits if the runtime goes away without connecting.
    (Its stdin is /dev/null, as sh gives background jobs: the runtime's stdio reaches the init
    with OPTIONS.)"""
    parent = os.getppid()
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        listener.bind(_address(os.getpid()))
        listener.listen(1)
    except OSError:
        os._exit(1)  # the name is taken: the runtime sees us exit, and forks a stage 1 itself
    import gc
    gc.disable()  # stage 1 and what it forks live for milliseconds: no collections
    from hull.runtime.spare_netns import SpareNetns
    spare = SpareNetns()  # the kernel's part of a network namespace, beside our imports
    from hull.runtime import init, sync
    listener.settimeout(0.1)
    while True:
        try:
            fd, _ = listener._accept()
        except TimeoutError:
            if os.getppid() != parent:
                os._exit(1)  # the runtime is gone
            continue
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, fd)
        if _peer_pid(sock) == parent:
            break
        sock.close()
    listener.close()
    init.run_child(sync.Channel(sock), init.create_stage1, spare)


def _beside_pid(value):
    """The pid bin/hull-runtime passed, if it is a running child of ours."""
    if not value.isdigit():
        return None
    try:
        return None if os.waitpid(int(value), os.WNOHANG)[0] else int(value)
    except ChildProcessError:
        return None  # not our child: nothing of ours


def _connect_beside(value):
    """The Stage1 that bin/hull-runtime started beside us, connected; None if there is none
    (or it exited: then a forked one does the work)."""
    pid = _beside_pid(value)
    if pid is None:
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    deadline = None
    while True:
        try:
            sock.connect(_address(pid))
            break
        except OSError:  # not listening yet (it starts as we do), or gone
            import time
            deadline = deadline or time.monotonic() + 5
            if os.waitpid(pid, os.WNOHANG)[0] or time.monotonic() > deadline:
                sock.close()
                kill_and_reap(pid)  # gone, or stuck: not worth waiting for
                return None
            time.sleep(0.0002)
    if _peer_pid(sock) != pid:  # somebody else's socket under that name
        sock.close()
        kill_and_reap(pid)
        return None
    from hull.runtime import sync
    return Stage1(pid, sync.Channel(sock), beside=True)


def discard_beside(value):
    """A stage 1 started beside us that this command does not use: stop it."""
    kill_and_reap(_beside_pid(value))
