"""Namespaces: unshare, setns, and the table between OCI names, clone flags and /proc names."""

from hull import osfast as os

from hull.errors import KernelError
from hull.kernel.libc import check, libc

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# OCI type -> (clone flag, name under /proc/<pid>/ns)
TYPES = {
    "user": (CLONE_NEWUSER, "user"),
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "mount": (CLONE_NEWNS, "mnt"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

# The user namespace must be joined first; pid and time apply to children; mount last so
# earlier setns calls can still resolve host paths.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "time", "cgroup", "mount")


def unshare(flags):
    check(libc.unshare(flags), "unshare", hex(flags))


def setns(fd, nstype=0, path=None):
    check(libc.setns(fd, nstype), "setns", path)


def join(path, ns_type):
    """Join the namespace at `path` (e.g. /proc/123/ns/net) of the given OCI type."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno, "open namespace", path) from None
    try:
        setns(fd, TYPES[ns_type][0], path)
    finally:
        os.close(fd)


def inode(pid, ns_type):
    """The inode of a process's namespace, e.g. 4026531836; what lsns and /proc show."""
    return os.stat(f"/proc/{pid}/ns/{TYPES[ns_type][1]}").st_ino


def write_time_offsets(offsets):
    """Write linux.timeOffsets after unshare(CLONE_NEWTIME), before any child enters.
    os.write, not buffered IO, so the error is seen (HOST-NOTES)."""
    lines = []
    for clock, v in offsets.items():
        lines.append(f"{clock} {int(v.get('secs', 0))} {int(v.get('nanosecs', 0))}\n")
    fd = os.open("/proc/self/timens_offsets", os.O_WRONLY)
    try:
        for line in lines:
            try:
                os.write(fd, line.encode())
            except OSError as e:
                raise KernelError(e.errno, "write timens_offsets", line.strip()) from None
    finally:
        os.close(fd)
