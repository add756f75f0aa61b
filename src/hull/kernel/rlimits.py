"""Resource limits by their OCI names, set with prlimit(2).

The numbers are the asm-generic ones (x86, arm, arm64, riscv, ppc, s390), checked against the
platform's by a unit test. Setting goes through libc's prlimit, so the container's init does
not load the `resource` extension module for it (one dlopen less on its path); this module
imports nothing at load, the spec checker uses its table.
"""

from hull import osfast as os

from hull.errors import HullError

NUMBERS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
_MAX = (1 << 64) - 1  # RLIM_INFINITY


def get(name):
    """(soft, hard) of this process."""
    from hull.kernel import ffi
    from hull.kernel.libc import check, libc
    old = (ffi.c_ulong * 2)()
    check(libc.prlimit(0, NUMBERS[name], None, ffi.byref(old)), "prlimit", name)
    return old[0], old[1]


def set(name, soft, hard):  # noqa: A001 - the module's verb, as in rlimits.set
    """setrlimit(name, soft, hard); the error says what was asked and, for a hard limit above
    the current one, that raising it needs CAP_SYS_RESOURCE."""
    from hull.kernel import ffi
    from hull.kernel.libc import libc
    if name not in NUMBERS:
        raise HullError(f"rlimit {name}: not supported by this kernel")
    if soft > hard:
        raise HullError(f"setrlimit {name} (soft {soft}, hard {hard}): soft limit exceeds hard limit")
    new = (ffi.c_ulong * 2)(min(soft, _MAX), min(hard, _MAX))
    old = (ffi.c_ulong * 2)()
    if libc.prlimit(0, NUMBERS[name], ffi.byref(new), ffi.byref(old)) == -1:
        err = ffi.get_errno()
        cur_hard = get(name)[1]
        hint = ""
        if hard > cur_hard:
            hint = (f"; the current hard limit is {cur_hard} and raising it needs CAP_SYS_RESOURCE, "
                    "which this host's bounding set may lack")
        raise HullError(f"setrlimit {name} (soft {soft}, hard {hard}): {os.strerror(err)}{hint}")
