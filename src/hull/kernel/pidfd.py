"""pidfds and process identity: handles to processes without PID-reuse races.

The stdlib has both calls (os.pidfd_open, _signal.pidfd_send_signal): no ctypes, which keeps
this module off the cost of loading libc in the runtime's parent process."""

import errno
from hull import osfast as os

import _signal

from hull.errors import KernelError


def pidfd_open(pid):
    try:
        return os.pidfd_open(pid)
    except OSError as e:
        raise KernelError(e.errno, "pidfd_open", str(pid)) from None


def send_signal(pidfd, sig):
    try:
        _signal.pidfd_send_signal(pidfd, sig)
    except OSError as e:
        raise KernelError(e.errno, "pidfd_send_signal") from None


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
