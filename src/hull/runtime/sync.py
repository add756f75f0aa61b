"""Parent <-> container-init handshake over a SOCK_SEQPACKET socketpair, in named messages.

Each message is one packet: a dict {"type": NAME, ...} in marshal's format, optionally
carrying fds. Both ends are forks of the same interpreter, and marshal is built into it: the
container's processes load no JSON extension module for the handshake (bytes need no hex
either). An error in the child travels to the parent as ERROR{message} and is raised there.
"""

import marshal
from hull import osfast as os
import _struct as struct  # struct.py only re-exports the C module

import _socket  # the C module: socket.py's enum set-up costs ~5 ms of start-up
from hull.errors import HullError

# Child -> parent
WRITE_IDMAP = "WRITE_IDMAP"      # child unshared the user ns; parent writes uid/gid maps
CHILD_PID = "CHILD_PID"          # stage-1 forked the init (pid as seen by the parent)
RUN_HOOKS = "RUN_HOOKS"          # mounts done, before pivot_root: parent runs prestart/createRuntime
READY = "READY"                  # init set up; waiting on the exec fifo (may carry a seccomp fd)
ERROR = "ERROR"
# Parent -> child
EARLY = "EARLY"                  # config.json as parsed, not checked yet: stage 1 may go ahead
CGROUP = "CGROUP"                # the state dir and cgroup exist: the cgroup2 dir (fd) to clone into
OPTIONS = "OPTIONS"              # what create made after the fork: options, fifo/console/idmap fds
START = "START"                  # the init is in its cgroups: it may go on (cgroupns, hooks, pivot)
IDMAP_DONE = "IDMAP_DONE"
HOOKS_DONE = "HOOKS_DONE"

_MAX = 65536


class ChildError(HullError):
    """An error the container-side process reported."""


class ChannelClosed(ChildError):
    """The other end closed the channel: on the runtime's side, the container's process exited
    before finishing; on the container's side, the runtime gave up on it (it says why) or is
    gone."""


class Channel:
    __slots__ = ("sock",)

    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def pair(cls):
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        return cls(a), cls(b)

    def send(self, kind, fds=(), **fields):
        fields["type"] = kind
        data = marshal.dumps(fields)
        payload_fd = None
        if len(data) > _MAX:  # a big spec: the message travels in a memfd, the last fd attached
            payload_fd = os.memfd_create("hull-sync", os.MFD_CLOEXEC)
            view = memoryview(data)
            while view:
                view = view[os.write(payload_fd, view):]
            data = marshal.dumps({"type": kind, "payload_fd": True})
            fds = [*fds, payload_fd]
        anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
        try:
            self.sock.sendmsg([data], anc)
        except (BrokenPipeError, ConnectionResetError):
            self._raise_what_the_peer_said()
        finally:
            if payload_fd is not None:
                os.close(payload_fd)

    def _raise_what_the_peer_said(self):
        """The other end is gone (a failing init may exit before the runtime's next message):
        raise its last word, an ERROR waiting to be read (ChildError), or ChannelClosed."""
        while True:
            self.recv()

    def recv(self, *expected, with_fds=False):
        """Receive one message; ERROR becomes ChildError; EOF raises ChannelClosed (a ChildError).
        If `expected` is given, any other type is a protocol error."""
        data, fds = recv_with_fds(self.sock, _MAX)
        if not data:
            for fd in fds:
                os.close(fd)
            raise ChannelClosed("container init exited before finishing setup")
        msg = marshal.loads(data)
        if msg.get("payload_fd") and fds:
            msg = marshal.loads(_read_all(fds.pop()))
        if msg["type"] == ERROR:
            for fd in fds:
                os.close(fd)
            raise ChildError(msg.get("message", "unknown error"))
        if expected and msg["type"] not in expected:
            raise HullError(f"sync: expected {'/'.join(expected)}, got {msg['type']}")
        if with_fds:
            return msg, fds
        for fd in fds:
            os.close(fd)
        return msg

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()


def send_options(ch, opts, fds):
    """OPTIONS: the child's options dict and named fds."""
    ch.send(OPTIONS, fds=list(fds.values()), options=opts, fd_names=list(fds))


def recv_options(ch):
    """The options send_options sent; fds under their names ("idmap:<key>" ones collected in
    "idmap_fds", "stdio:<n>" ones in "stdio_fds")."""
    msg, fds = ch.recv(OPTIONS, with_fds=True)
    opts = msg["options"]
    for name, fd in zip(msg["fd_names"], fds):
        if name.startswith("idmap:"):
            opts.setdefault("idmap_fds", {})[name[len("idmap:"):]] = fd
        elif name.startswith("stdio:"):
            opts.setdefault("stdio_fds", {})[int(name[len("stdio:"):])] = fd
        else:
            opts[name] = fd
    return opts


def early_path(spec):
    """Whether stage 1 makes the namespaces and forks the init on EARLY, before OPTIONS: when
    the spec asks only for new namespaces (no user or time namespace, nothing to join). The
    init is then host root and single-threaded: it moves itself into its v1 cgroups (no
    grace period: cgroups.warm_migrations). Both sides decide by this."""
    try:
        return all(not ns.get("path") and ns["type"] not in ("user", "time")
                   for ns in spec["linux"]["namespaces"])
    except (KeyError, TypeError, AttributeError):
        return False


def stdio_fds():
    """The runtime's open fds 0-2, named for OPTIONS: the container's process gets exactly
    these (process.take_stdio), whatever its stage 1 had (one started beside the runtime by
    bin/hull-runtime has /dev/null for stdin, as sh gives background jobs)."""
    fds = {}
    for n in range(3):
        try:
            os.fstat(n)
        except OSError:
            continue  # closed: left as the init has it
        fds[f"stdio:{n}"] = n
    return fds


def _read_all(fd):
    """The whole content of a memfd from offset 0; closes it."""
    try:
        chunks = []
        offset = 0
        while True:
            chunk = os.pread(fd, 1 << 20, offset)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            offset += len(chunk)
    finally:
        os.close(fd)


def recv_with_fds(sock, size, maxfds=64):
    """recvmsg returning (data, [fds]) — what socket.recv_fds does, on a bare _socket."""
    try:
        data, anc, _flags, _addr = sock.recvmsg(size, _socket.CMSG_SPACE(maxfds * 4))
    except ConnectionResetError:
        # The peer exited without reading all we sent (an init that failed before START):
        # the kernel reports that first, and once, ahead of what the peer sent before it
        # closed (its ERROR). Read on.
        data, anc, _flags, _addr = sock.recvmsg(size, _socket.CMSG_SPACE(maxfds * 4))
    fds = []
    for level, kind, payload in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            n = len(payload) // 4
            fds += struct.unpack(f"{n}i", payload[:n * 4])
    return data, fds


def send_with_fds(sock, data, fds):
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
