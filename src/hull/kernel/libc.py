"""The one place libc is loaded (through kernel/ffi.py, the slice of ctypes hull uses). Every
syscall wrapper in kernel/ goes through `check`.

ctypes passes plain ints to variadic syscall() as 32-bit values, so `syscall` wraps every
argument in c_ulong / c_char_p (HOST-NOTES).
"""

from hull.kernel import ffi

from hull.errors import KernelError

libc = ffi.CDLL("libc.so.6", use_errno=True)  # not find_library: it runs ldconfig
_syscall = libc.syscall
_syscall.restype = ffi.c_long

# x86_64 numbers for calls glibc 2.36 has no wrapper for.
SYS = {
    "clone": 56,
    "pivot_root": 155,
    "clone3": 435,
    "pidfd_getfd": 438,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "mount_setattr": 442,
    "landlock_create_ruleset": 444,
    "landlock_add_rule": 445,
    "landlock_restrict_self": 446,
    "seccomp": 317,
    "bpf": 321,
    "capget": 125,
    "capset": 126,
    "personality": 135,
    "keyctl": 250,
    "close_range": 436,
}


def check(ret, call, path=None, hint=None):
    """Raise KernelError(errno, call, path) when a libc call returned -1."""
    if ret == -1:
        raise KernelError(ffi.get_errno(), call, path, hint)
    return ret


def _arg(a):
    if isinstance(a, int):
        return ffi.c_ulong(a & 0xFFFFFFFFFFFFFFFF)
    if isinstance(a, str):
        return ffi.c_char_p(a.encode())
    if isinstance(a, bytes) or a is None:
        return ffi.c_char_p(a)
    return a  # already a ctypes object or pointer


def syscall(name, *args, path=None):
    """Raw syscall by name with errno checking."""
    ret = _syscall(ffi.c_long(SYS[name]), *(_arg(a) for a in args))
    return check(ret, name, path)


def fsencode(p):
    return p.encode() if isinstance(p, str) else p
