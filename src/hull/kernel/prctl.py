"""Per-process attributes set with prctl(2) and friends: no_new_privs, dumpable, keepcaps,
parent-death signal, personality(2) and the OOM score.

The container init calls these in the child, after pivot_root:
``set_no_new_privs()`` after capabilities and before seccomp, ``set_dumpable(True)`` right
after ``setresuid`` in a user namespace (HOST-NOTES), ``set_personality(domain, flags)`` from
``linux.personality``.
"""

from hull.kernel import ffi

from hull.errors import KernelError, SpecError
from hull.kernel.libc import SYS, check, libc

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_GET_KEEPCAPS = 7
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

_prctl = libc.prctl
_prctl.restype = ffi.c_int
_prctl.argtypes = (ffi.c_int, ffi.c_ulong, ffi.c_ulong, ffi.c_ulong, ffi.c_ulong)  # converted in C
_syscall = libc.syscall
_syscall.restype = ffi.c_long


def prctl(option, a2=0, a3=0, a4=0, a5=0, *, what=None):
    """prctl(2) with every argument passed as unsigned long; raises KernelError on -1."""
    return check(_prctl(option, a2, a3, a4, a5), what or f"prctl({option})")


# --- no_new_privs, dumpable, keepcaps, pdeathsig -------------------------------------------

def set_no_new_privs():
    """PR_SET_NO_NEW_PRIVS: execve can no longer grant privileges (setuid bits, file caps).
    Irreversible; inherited by children. Required before seccomp without CAP_SYS_ADMIN."""
    prctl(PR_SET_NO_NEW_PRIVS, 1, what="prctl(PR_SET_NO_NEW_PRIVS)")


def get_no_new_privs():
    return bool(prctl(PR_GET_NO_NEW_PRIVS, what="prctl(PR_GET_NO_NEW_PRIVS)"))


def set_dumpable(on=True):
    """PR_SET_DUMPABLE. After setresuid in a user namespace the process is not dumpable and
    /proc/self/* writes (timens_offsets, uid_map of children) fail with EACCES."""
    prctl(PR_SET_DUMPABLE, 1 if on else 0, what="prctl(PR_SET_DUMPABLE)")


def get_dumpable():
    return bool(prctl(PR_GET_DUMPABLE, what="prctl(PR_GET_DUMPABLE)"))


def set_keepcaps(on=True):
    """PR_SET_KEEPCAPS: keep the permitted set across a setuid away from uid 0.
    The kernel clears this flag on execve."""
    prctl(PR_SET_KEEPCAPS, 1 if on else 0, what="prctl(PR_SET_KEEPCAPS)")


def get_keepcaps():
    return bool(prctl(PR_GET_KEEPCAPS, what="prctl(PR_GET_KEEPCAPS)"))


def set_pdeathsig(sig):
    """Deliver `sig` to this process when its parent thread dies (0 disables). Cleared by the
    kernel on setuid/setgid and on exec of a setuid binary: set it again after setresuid."""
    prctl(PR_SET_PDEATHSIG, int(sig), what="prctl(PR_SET_PDEATHSIG)")


def get_pdeathsig():
    out = ffi.c_int(0)
    ret = _prctl(PR_GET_PDEATHSIG, ffi.addressof(out), 0, 0, 0)
    check(ret, "prctl(PR_GET_PDEATHSIG)")
    return out.value


# --- personality(2) ---------------------------------------------------------------------------

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}

# <linux/personality.h>. The OCI spec does not name flags; hull accepts the kernel's names.
PERSONALITY_FLAGS = {
    "UNAME26": 0x0020000,
    "ADDR_NO_RANDOMIZE": 0x0040000,
    "FDPIC_FUNCPTRS": 0x0080000,
    "MMAP_PAGE_ZERO": 0x0100000,
    "ADDR_COMPAT_LAYOUT": 0x0200000,
    "READ_IMPLIES_EXEC": 0x0400000,
    "ADDR_LIMIT_32BIT": 0x0800000,
    "SHORT_INODE": 0x1000000,
    "WHOLE_SECONDS": 0x2000000,
    "STICKY_TIMEOUTS": 0x4000000,
    "ADDR_LIMIT_3GB": 0x8000000,
}


def personality_value(domain, flags=(), path="linux.personality"):
    """Translate OCI `linux.personality` ({"domain": "LINUX"|"LINUX32", "flags": [...]}) to
    the personality(2) argument. Raises SpecError with the JSON path of a bad value."""
    if domain not in PERSONALITY_DOMAINS:
        raise SpecError(f"{path}.domain",
                        f'unknown personality domain {domain!r}; use "LINUX" or "LINUX32"')
    value = PERSONALITY_DOMAINS[domain]
    if flags is None:
        flags = ()
    if not isinstance(flags, (list, tuple)):
        raise SpecError(f"{path}.flags", "must be a list of flag names")
    for i, name in enumerate(flags):
        if name not in PERSONALITY_FLAGS:
            raise SpecError(f"{path}.flags[{i}]",
                            f"unknown personality flag {name!r}; known: {', '.join(PERSONALITY_FLAGS)}")
        value |= PERSONALITY_FLAGS[name]
    return value


def validate_personality(personality, path="linux.personality"):
    if not isinstance(personality, dict):
        raise SpecError(path, "must be an object with a domain")
    personality_value(personality.get("domain"), personality.get("flags") or (), path)


def set_personality(domain, flags=()):
    """personality(2) for OCI `linux.personality`. Returns the previous persona."""
    value = personality_value(domain, flags)
    ret = _syscall(ffi.c_long(SYS["personality"]), ffi.c_ulong(value))
    return check(ret, "personality", f"{domain} {'|'.join(flags or ())}".strip())


def get_personality():
    ret = _syscall(ffi.c_long(SYS["personality"]), ffi.c_ulong(0xFFFFFFFF))
    return check(ret, "personality")


# --- OOM score ----------------------------------------------------------------------------------

def set_oom_score_adj(value, pid="self"):
    """Write /proc/<pid>/oom_score_adj (-1000..1000). Lowering it needs CAP_SYS_RESOURCE,
    which this host's bounding set lacks: the error then says so."""
    if isinstance(value, bool) or not isinstance(value, int) or not -1000 <= value <= 1000:
        raise SpecError("process.oomScoreAdj", f"must be an integer in -1000..1000, got {value!r}")
    from hull import osfast as os
    fname = f"/proc/{pid}/oom_score_adj"
    try:
        fd = os.open(fname, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
    except OSError as e:
        hint = None
        if e.errno in (1, 13):  # EPERM, EACCES
            hint = ("lowering oom_score_adj needs CAP_SYS_RESOURCE; raise process.oomScoreAdj "
                    "to at least the caller's value")
        raise KernelError(e.errno, "write", fname, hint) from None
