"""fork() with a clone flag os.fork cannot ask for: CLONE_PARENT.

A container's stage 1 forks the init as a sibling (runc's nsexec does the same): the init's
parent is the runtime itself, which can wait for it without being a subreaper, and when a
`create` exits, the init passes to the caller's subreaper (conmon, containerd's shim).

The clone runs as the raw syscall, with the interpreter's own before/after-fork steps around
it, as os.fork() does. glibc's fork() also resets its locks in the child, for the other
threads that may have held them: so this is only for a single-threaded process, like stage 1.
"""

from hull.errors import KernelError
from hull.kernel import ffi
from hull.kernel.libc import SYS

CLONE_PARENT = 0x00008000
CLONE_INTO_CGROUP = 0x200000000
SIGCHLD = 17

_python = ffi.PyDLL(None)  # the interpreter's own symbols; calls keep the GIL
_raw_syscall = _python.syscall  # libc's, through the same handle: the GIL stays held
_raw_syscall.restype = ffi.c_long
_raw_syscall.argtypes = (ffi.c_long, ffi.c_ulong, ffi.c_ulong, ffi.c_ulong, ffi.c_ulong, ffi.c_ulong)


def fork_sibling(cgroup_fd=None):
    """Fork a child whose parent is our parent. Returns 0 in the child, its pid in the caller.
    With `cgroup_fd` (a cgroup2 directory), the child starts in that cgroup (clone3's
    CLONE_INTO_CGROUP): no move afterwards, so none of the RCU grace period a first move waits
    for (cgroups.warm_migrations)."""
    if cgroup_fd is None:
        call, args, what = SYS["clone"], (CLONE_PARENT | SIGCHLD, 0, 0, 0, 0), "clone(CLONE_PARENT)"
    else:
        # struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack,
        # stack_size, tls, set_tid, set_tid_size, cgroup (u64 each); no stack: fork-like. No
        # exit_signal with CLONE_PARENT: the child signals as we do to our parent (SIGCHLD).
        clone_args = (ffi.c_uint64 * 11)(CLONE_PARENT | CLONE_INTO_CGROUP, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, cgroup_fd)
        call, args = SYS["clone3"], (ffi.addressof(clone_args), ffi.sizeof(clone_args), 0, 0, 0)
        what = "clone3(CLONE_PARENT|CLONE_INTO_CGROUP)"
    _python.PyOS_BeforeFork()
    pid = _raw_syscall(call, *args)
    if pid == 0:
        _python.PyOS_AfterFork_Child()
        return 0
    err = ffi.get_errno()
    _python.PyOS_AfterFork_Parent()
    if pid < 0:
        raise KernelError(err, what)
    return pid
