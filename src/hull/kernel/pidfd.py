"""pidfds and process identity: handles to processes without PID-reuse races."""

import errno
import os

from hull.errors import KernelError
from hull.kernel.libc import syscall


def pidfd_open(pid):
    return syscall("pidfd_open", pid, 0)


def send_signal(pidfd, sig):
    syscall("pidfd_send_signal", pidfd, sig, None, 0)


def _stat_fields(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()


def start_time(pid):
    """Field 22 of /proc/<pid>/stat: with the pid, identifies one process across PID reuse."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def alive(pid, expected_start=None):
    """True if `pid` runs (not a zombie) and, if given, is the process that started then."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in (b"Z", b"X"):
        return False
    return expected_start is None or int(fields[19]) == expected_start


def signal_process(pid, expected_start, sig):
    """Signal `pid` only if it is still the process that started at `expected_start`.
    Returns False when that process is gone."""
    try:
        fd = pidfd_open(pid)
    except KernelError as e:
        if e.errno == errno.ESRCH:
            return False
        raise
    try:
        if expected_start is not None and start_time(pid) != expected_start:
            return False
        try:
            send_signal(fd, sig)
        except KernelError as e:
            if e.errno == errno.ESRCH:
                return False
            raise
        return True
    finally:
        os.close(fd)
