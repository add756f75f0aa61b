"""Linux capabilities for OCI `process.capabilities`: the five sets by name.

Sequence in the container init (a process that is still uid 0 with full capabilities)::

    capabilities.validate(caps)                  # names, host bounding set, kernel rules
    capabilities.apply(caps)                     # bounding drop, keepcaps, capset (+SETUID/SETGID)
    os.setgroups(...); os.setresgid(...); os.setresuid(...)   # the container user
    capabilities.after_setuid(caps)              # exact capset, ambient raise, keepcaps off

``apply(caps, keep_uid_change=True)`` (the default) is the first half: it drops the bounding
set, sets PR_SET_KEEPCAPS and leaves CAP_SETUID/CAP_SETGID in the effective and permitted sets
so the runtime can still change user. ``after_setuid(caps)`` must always follow it, even when
the user stays uid 0. ``apply(caps, keep_uid_change=False)`` does everything in one step for a
process that does not change user afterwards.

Across execve the kernel's rules apply, as in runc: uid 0 gets its permitted and effective sets
from the bounding set; any other user keeps only the ambient set.
"""

from hull.kernel import ffi

from hull.errors import HullError, KernelError, SpecError
from hull.kernel import prctl as _prctl
from hull.kernel.libc import SYS, libc

# <linux/capability.h>, index = bit number.
NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}

# Docker's default set (mask 0xa80425fb); `hull-runtime spec` and the engine start from it.
DOCKER_DEFAULT = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
_STATUS_KEYS = {"CapBnd": "bounding", "CapEff": "effective", "CapPrm": "permitted",
                "CapInh": "inheritable", "CapAmb": "ambient"}

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _Header(ffi.Structure):
    _fields_ = [("version", ffi.c_uint32), ("pid", ffi.c_int)]


class _Data(ffi.Structure):
    _fields_ = [("effective", ffi.c_uint32), ("permitted", ffi.c_uint32),
                ("inheritable", ffi.c_uint32)]


_syscall = libc.syscall
_syscall.restype = ffi.c_long


# --- names and masks ----------------------------------------------------------------------------

def all_names():
    """Capability names this kernel knows (0..cap_last_cap), for `hull-runtime features`."""
    return list(NAMES[: last_cap() + 1])


_last_cap = None


def last_cap():
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap = int(f.read())
        except OSError:
            _last_cap = len(NAMES) - 1
    return _last_cap


def to_mask(names):
    mask = 0
    for n in names:
        mask |= 1 << NUMBERS[n]
    return mask


def from_mask(mask):
    return [NAMES[i] if i < len(NAMES) else f"CAP_{i}" for i in range(64) if mask >> i & 1]


def read_status(pid="self"):
    """The five sets of a process from /proc/<pid>/status as masks:
    {"bounding": int, "effective": int, ...}."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in _STATUS_KEYS:
                out[_STATUS_KEYS[key]] = int(value.strip(), 16)
    return out


_host_bounding = None


def host_bounding():
    """This process's bounding set (a mask): what the runtime itself can hand out."""
    global _host_bounding
    if _host_bounding is None:
        _host_bounding = read_status()["bounding"]
    return _host_bounding


# --- validation -----------------------------------------------------------------------------

def validate(caps, host_mask=None, path="process.capabilities"):
    """Check OCI `process.capabilities`. Raises SpecError naming the JSON path of:
    an unknown name, a capability this host's bounding set lacks (CAP_SYS_RESOURCE on this
    machine), effective not within permitted, inheritable not within bounding, ambient not
    within permitted and inheritable (the kernel's rules; runc fails later with a bare EPERM).
    Returns {set: mask}."""
    if caps is None:
        return {s: 0 for s in SETS}
    if not isinstance(caps, dict):
        raise SpecError(path, "must be an object with bounding/effective/permitted/inheritable/ambient lists")
    if host_mask is None:
        host_mask = host_bounding()
    lastcap = last_cap()
    masks = {}
    for key in caps:
        if key not in SETS:
            raise SpecError(f"{path}.{key}", f"unknown capability set; use one of {', '.join(SETS)}")
    for s in SETS:
        names = caps.get(s) or []
        if not isinstance(names, list):
            raise SpecError(f"{path}.{s}", "must be a list of capability names")
        mask = 0
        for i, name in enumerate(names):
            where = f"{path}.{s}[{i}]"
            if not isinstance(name, str):
                raise SpecError(where, f"capability must be a string, got {name!r}")
            num = NUMBERS.get(name)
            if num is None:
                upper = name.upper()
                hint = ""
                if upper in NUMBERS or "CAP_" + upper in NUMBERS:
                    hint = f' (did you mean "{upper if upper in NUMBERS else "CAP_" + upper}"?)'
                raise SpecError(where, f'unknown capability "{name}"{hint}')
            if num > lastcap:
                raise SpecError(where, f"{name} is not supported by this kernel "
                                       f"(cap_last_cap is {lastcap}); remove it")
            if not host_mask >> num & 1:
                raise SpecError(where, f"{name} is not in this host's capability bounding set, "
                                       "so hull cannot grant it; remove it from the container's capabilities")
            mask |= 1 << num
        masks[s] = mask
    _subset(masks, "effective", "permitted", path, "the kernel only allows effective capabilities that are also permitted")
    _subset(masks, "inheritable", "bounding", path, "an inheritable capability must be in the bounding set")
    # ambient outside permitted ∩ inheritable is not an error: `runc spec` writes ambient
    # without inheritable, and runc only warns; set_ambient() skips those (debug log).
    return masks


def _subset(masks, small, big, path, why):
    extra = masks[small] & ~masks[big]
    if extra:
        name = from_mask(extra)[0]
        raise SpecError(f"{path}.{small}", f"{name} is not in {big}: {why}")


# --- applying ---------------------------------------------------------------------------------

def _capset(eff, perm, inh):
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (eff >> shift) & 0xFFFFFFFF
        data[i].permitted = (perm >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inh >> shift) & 0xFFFFFFFF
    ret = _syscall(ffi.c_long(SYS["capset"]), ffi.byref(hdr), ffi.byref(data))
    if ret == -1:
        err = ffi.get_errno()
        raise KernelError(err, "capset", f"eff={eff:#x} perm={perm:#x} inh={inh:#x}")


def capget(pid=0):
    """(effective, permitted, inheritable) masks of `pid` (0 = this thread)."""
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_Data * 2)()
    ret = _syscall(ffi.c_long(SYS["capget"]), ffi.byref(hdr), ffi.byref(data))
    if ret == -1:
        raise KernelError(ffi.get_errno(), "capget", str(pid))
    return tuple(getattr(data[0], f) | getattr(data[1], f) << 32
                 for f in ("effective", "permitted", "inheritable"))


def drop_bounding(keep_mask):
    """PR_CAPBSET_DROP every capability 0..cap_last_cap not in keep_mask (needs CAP_SETPCAP).
    Those the bounding set lacks already (host_bounding, read before) are skipped."""
    have = host_bounding()
    for num in range(last_cap() + 1):
        if keep_mask >> num & 1 or not have >> num & 1:
            continue
        try:
            _prctl.prctl(_prctl.PR_CAPBSET_DROP, num, what="prctl(PR_CAPBSET_DROP)")
        except KernelError as e:
            raise KernelError(e.errno, "prctl(PR_CAPBSET_DROP)", NAMES[num],
                              "dropping the bounding set needs CAP_SETPCAP") from None


def set_ambient(mask):
    """Make the ambient set `mask`. The kernel only allows ambient capabilities that are both
    permitted and inheritable; others are skipped with a debug log, as runc does (its
    `runc spec` lists ambient capabilities without inheritable ones). Returns the skipped."""
    _prctl.prctl(_prctl.PR_CAP_AMBIENT, _prctl.PR_CAP_AMBIENT_CLEAR_ALL,
                 what="prctl(PR_CAP_AMBIENT_CLEAR_ALL)")
    if not mask:
        return []
    _, perm, inh = capget()
    # runs after pivot_root, where no further module can be imported: the caller logs these
    skipped = from_mask(mask & ~(perm & inh))
    for num in range(last_cap() + 1):
        if (mask & perm & inh) >> num & 1:
            try:
                _prctl.prctl(_prctl.PR_CAP_AMBIENT, _prctl.PR_CAP_AMBIENT_RAISE, num,
                             what="prctl(PR_CAP_AMBIENT_RAISE)")
            except KernelError as e:
                raise KernelError(e.errno, "prctl(PR_CAP_AMBIENT_RAISE)", NAMES[num]) from None
    return skipped


_UID_CHANGE = (1 << NUMBERS["CAP_SETUID"]) | (1 << NUMBERS["CAP_SETGID"])


def apply(caps, keep_uid_change=True):
    """Apply OCI `process.capabilities` to the calling process (see the module docstring for
    the order around setresuid). Returns the validated masks."""
    masks = validate(caps)
    drop_bounding(masks["bounding"])
    if keep_uid_change:
        _prctl.set_keepcaps(True)
        # Keep what setgroups/setresgid/setresuid need until after_setuid(); inheritable is set
        # now, while CAP_SETPCAP is still held (setuid does not change it).
        _, perm_now, _ = capget()
        extra = _UID_CHANGE & perm_now
        _capset(masks["effective"] | extra, masks["permitted"] | extra, masks["inheritable"])
    else:
        _capset(masks["effective"], masks["permitted"], masks["inheritable"])
        set_ambient(masks["ambient"])
    return masks


def after_setuid(caps, masks=None):
    """Second half of apply(keep_uid_change=True), after setresuid to the container user:
    the exact effective/permitted/inheritable sets, the ambient set, keepcaps off. `masks`:
    what apply returned, not validated again."""
    masks = masks or validate(caps)
    _capset(masks["effective"], masks["permitted"], masks["inheritable"])
    set_ambient(masks["ambient"])
    _prctl.set_keepcaps(False)
    return masks


def clamp_to_host(caps, host_mask=None):
    """A copy of `caps` without capabilities this host cannot grant (for `--privileged`,
    which asks for all of them; CAP_SYS_RESOURCE is missing here). Returns (caps, dropped)."""
    if host_mask is None:
        host_mask = host_bounding()
    lastcap = last_cap()
    dropped = set()
    out = {}
    for s in SETS:
        keep = []
        for n in (caps or {}).get(s) or []:
            num = NUMBERS.get(n)
            if num is not None and (num > lastcap or not host_mask >> num & 1):
                dropped.add(n)
            else:
                keep.append(n)
        out[s] = keep
    return out, sorted(dropped)


def require(name):
    """Raise HullError unless this process has `name` in its effective set."""
    eff, _, _ = capget()
    if not eff >> NUMBERS[name] & 1:
        raise HullError(f"this needs {name}, which the calling process does not have")
