"""Small process-level calls: hostname, domainname, controlling tty, sysctl, subreaper, keyring."""

from hull import osfast as os

from hull.errors import KernelError
from hull.kernel.libc import check, libc

TIOCSCTTY = 0x540E


def sethostname(name):
    b = name.encode()
    check(libc.sethostname(b, len(b)), "sethostname", name)


def setdomainname(name):
    b = name.encode()
    check(libc.setdomainname(b, len(b)), "setdomainname", name)


def set_controlling_tty(fd):
    import fcntl
    try:
        fcntl.ioctl(fd, TIOCSCTTY, 0)
    except OSError as e:
        raise KernelError(e.errno, "ioctl(TIOCSCTTY)") from None


def write_proc(path, text, call="write", what=None, detail=None):
    """One unbuffered write to a /proc (or /sys) file, so the kernel's error is seen."""
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise KernelError(e.errno, call, what or path, detail) from None


def write_sysctl(key, value):
    write_proc("/proc/sys/" + key.replace(".", "/"), value, "write sysctl", key, f"value {value!r}")


PR_SET_CHILD_SUBREAPER = 36
KEYCTL_JOIN_SESSION_KEYRING = 1


def set_child_subreaper():
    """Orphaned descendants (the container init after stage 1 exits) reparent to us."""
    check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def join_session_keyring(name):
    """A new session keyring so containers don't share the host's keys (runc does this)."""
    from hull.kernel import ffi
    from hull.kernel.libc import syscall
    try:
        syscall("keyctl", KEYCTL_JOIN_SESSION_KEYRING, ffi.c_char_p(name.encode()))
    except KernelError as e:
        if e.errno not in (38, 1, 13):  # ENOSYS, EPERM, EACCES: keyrings unavailable/denied
            raise
