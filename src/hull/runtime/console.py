"""Terminals: the container's pty is allocated inside it (its own devpts) and the master is
sent to the client's --console-socket over SCM_RIGHTS, as runc and conmon expect."""

from hull import osfast as os

import _socket

from hull.errors import HullError
from hull.runtime.sync import recv_with_fds, send_with_fds

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCSWINSZ = 0x5414


def connect(path):
    """Connect to the client's console socket (in the runtime's mount namespace)."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise HullError(f"cannot connect to console socket {path}: {e.strerror}") from None
    return s


def open_pty():
    """Open a pty pair from /dev/ptmx (the container's devpts). Returns (master, slave_path)."""
    import fcntl
    import struct
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    return master, f"/dev/pts/{n}"


def set_size(fd, rows, cols):
    import fcntl
    import struct
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def send_master(sock_fd, master):
    s = _socket.socket(fileno=os.dup(sock_fd))
    try:
        send_with_fds(s, b"/dev/ptmx", [master])
    finally:
        s.close()


def recv_master(sock):
    _msg, fds = recv_with_fds(sock, 4096, 1)
    if not fds:
        raise HullError("console socket: no pty master received")
    return fds[0]


def proxy(master, stdin_fd=0, stdout_fd=1, until_pid_exit=None):
    """Copy between our stdio and the pty master until the master hangs up (used by
    `run`/`exec` with a terminal and no --console-socket). Puts our tty in raw mode."""
    import select
    import termios
    import tty
    old = None
    if os.isatty(stdin_fd):
        old = termios.tcgetattr(stdin_fd)
        tty.setraw(stdin_fd)
        try:
            size = os.get_terminal_size(stdin_fd)
            set_size(master, size.lines, size.columns)
        except OSError:
            pass
    fds = [master, stdin_fd]
    try:
        while True:
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    return
                os.write(stdout_fd, data)
            if stdin_fd in ready:
                data = os.read(stdin_fd, 65536)
                if not data:
                    fds.remove(stdin_fd)
                    os.write(master, b"\x04")
                else:
                    os.write(master, data)
    finally:
        if old is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, old)
