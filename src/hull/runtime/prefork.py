"""A container's stage 1, forked before the runtime loads its own code.

`hull-runtime create` and `run` fork it first thing, as soon as the global flags say which
command this is (cli.main): while the parent parses its arguments, imports the lifecycle
code, reads and checks the spec and makes the state dir, stage 1 imports the container-side
modules (ctypes among them) on another CPU. Forking this early also keeps the heap the two
processes share small, so fewer of its pages are copied on write afterwards.

Two messages follow: EARLY, config.json as parsed but not checked (Stage1.early), on which
stage 1 may make the namespaces and fork the init; then OPTIONS, the checked spec and
everything the parent made (lifecycle.create).
"""

import os

import _socket


class Stage1:
    """Stage 1 as the parent holds it: its pid and the channel to it (which the init it
    forks inherits)."""

    __slots__ = ("pid", "ch", "config")

    def __init__(self, pid, ch, config):
        self.pid, self.ch = pid, ch
        self.config = config  # config.json's bytes as stage 1 got them, or None

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
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            import gc
            gc.disable()  # stage 1 and what it forks live for milliseconds: no collections
            from hull.runtime import init, sync
            init.run_child(sync.Channel(theirs), getattr(init, stage), *args)
        finally:
            os._exit(1)  # only if the import failed: run_child always exits
    theirs.close()
    from hull.runtime import sync
    return pid, sync.Channel(ours)


def fork():
    """Fork stage 1 of `create`; returns the parent's Stage1. Send it EARLY next."""
    pid, ch = fork_stage("create_stage1")
    return Stage1(pid, ch, None)
