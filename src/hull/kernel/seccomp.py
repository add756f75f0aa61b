"""seccomp filters for OCI `linux.seccomp`: validate, compile with libseccomp, cache, load.

- ``validate(spec)`` is pure Python; errors carry JSON paths such as
  ``linux.seccomp.syscalls[2].args[0].op``.
- ``compile(spec, cache_dir=None)`` builds the filter with libseccomp (our own ctypes binding
  to libseccomp.so.2, loaded lazily on first use) and returns the classic-BPF program bytes
  from ``seccomp_export_bpf``. With ``cache_dir`` the program is cached by content hash (as
  crun does), so a repeat start never touches libseccomp.
- ``load(spec, cache_dir=None)`` installs the program with the seccomp(2) syscall directly
  (``SECCOMP_SET_MODE_FILTER`` with the spec's flags, plus ``SECCOMP_FILTER_FLAG_NEW_LISTENER``
  when any rule is ``SCMP_ACT_NOTIFY``) and returns the listener fd or None. It needs
  no_new_privs or CAP_SYS_ADMIN, so the init calls it last, after ``prctl.set_no_new_privs()``.
- ``send_listener_fd(...)`` hands the listener fd to `listenerPath` per the OCI spec.

Behaviour choices, as runc:
- A syscall name libseccomp does not know is skipped (debug log on the ``hull.seccomp``
  logger; ``compile`` also records it in ``last_skipped``). Profiles name syscalls of other
  arches and of newer kernels; failing on them would make every shared profile unusable.
- A rule whose action equals the default action is skipped (libseccomp refuses it).
- When a rule has several conditions on the same argument, each condition becomes its own
  rule (OR); otherwise all conditions are one rule (AND).
- Syscalls newer than the newest one the profile names (on the native arch) return ENOSYS
  instead of the default action, so libc falls back (clone3 → clone, fchmodat2 → fchmodat)
  rather than failing with EPERM. hull prepends six BPF instructions to libseccomp's
  program for that (runc patches its filter the same way).
"""

from hull.kernel import ffi
from hull import osfast as os

from hull.errors import HullError, KernelError, SpecError
from hull.kernel.libc import SYS, libc

# --- the OCI vocabulary ------------------------------------------------------------------------

SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_KILL_THREAD = 0x00000000
SCMP_ACT_TRAP = 0x00030000
SCMP_ACT_NOTIFY = 0x7FC00000
SCMP_ACT_LOG = 0x7FFC0000
SCMP_ACT_ALLOW = 0x7FFF0000
_ERRNO_BASE = 0x00050000
_TRACE_BASE = 0x7FF00000

ACTIONS = {
    "SCMP_ACT_KILL": SCMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": SCMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": SCMP_ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": SCMP_ACT_TRAP,
    "SCMP_ACT_ERRNO": _ERRNO_BASE,
    "SCMP_ACT_TRACE": _TRACE_BASE,
    "SCMP_ACT_LOG": SCMP_ACT_LOG,
    "SCMP_ACT_ALLOW": SCMP_ACT_ALLOW,
    "SCMP_ACT_NOTIFY": SCMP_ACT_NOTIFY,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}

# OCI name -> libseccomp name (seccomp_arch_resolve_name).
ARCHES = {
    "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips", "SCMP_ARCH_MIPS64": "mips64", "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel", "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc", "SCMP_ARCH_PPC64": "ppc64", "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390", "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_PARISC": "parisc", "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64", "SCMP_ARCH_LOONGARCH64": "loongarch64",
    "SCMP_ARCH_M68K": "m68k", "SCMP_ARCH_SH": "sh", "SCMP_ARCH_SHEB": "sheb",
}

# seccomp(2) filter flags.
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_GET_NOTIF_SIZES = 3
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
_FLAG_NEW_LISTENER = 8
_FLAG_TSYNC_ESRCH = 16

_MAX_ARGS = 6
_U64 = (1 << 64) - 1

last_skipped = []  # syscall names the last compile() skipped (unknown to libseccomp)


# --- validation ------------------------------------------------------------------------------------

def _uint(value, where, limit=_U64):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise SpecError(where, f"must be an integer in 0..{limit}, got {value!r}")


def validate(spec, path="linux.seccomp"):
    """Check an OCI `linux.seccomp` object; raise SpecError with the JSON path of the first
    problem. Unknown syscall *names* are not an error (see the module docstring); unknown
    fields are ignored, as runc and crun do, so newer spec versions still load."""
    if not isinstance(spec, dict):
        raise SpecError(path, "must be an object")
    default = spec.get("defaultAction")
    if default is None:
        raise SpecError(f"{path}.defaultAction", "is required")
    if default not in ACTIONS:
        raise SpecError(f"{path}.defaultAction", f"unknown action {default!r}; known: {', '.join(ACTIONS)}")
    if default == "SCMP_ACT_NOTIFY":
        raise SpecError(f"{path}.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    if spec.get("defaultErrnoRet") is not None:
        _uint(spec["defaultErrnoRet"], f"{path}.defaultErrnoRet", 0xFFFF)
        if default not in _WITH_ERRNO:
            raise SpecError(f"{path}.defaultErrnoRet", f"{default} does not take an errno; "
                            "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do")
    arches = spec.get("architectures") or []
    if not isinstance(arches, list):
        raise SpecError(f"{path}.architectures", "must be a list")
    for i, a in enumerate(arches):
        if a not in ARCHES:
            raise SpecError(f"{path}.architectures[{i}]", f"unknown architecture {a!r}")
    flags = spec.get("flags") or []
    if not isinstance(flags, list):
        raise SpecError(f"{path}.flags", "must be a list")
    for i, fl in enumerate(flags):
        if fl not in FLAGS:
            raise SpecError(f"{path}.flags[{i}]", f"unknown seccomp flag {fl!r}; known: {', '.join(FLAGS)}")
    lp = spec.get("listenerPath")
    if lp is not None and (not isinstance(lp, str) or not lp.startswith("/")):
        raise SpecError(f"{path}.listenerPath", "must be an absolute path to a unix socket")
    if spec.get("listenerMetadata") is not None and not isinstance(spec["listenerMetadata"], str):
        raise SpecError(f"{path}.listenerMetadata", "must be a string")
    syscalls = spec.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise SpecError(f"{path}.syscalls", "must be a list")
    notify = False
    for i, rule in enumerate(syscalls):
        where = f"{path}.syscalls[{i}]"
        if not isinstance(rule, dict):
            raise SpecError(where, "must be an object with names and action")
        names = rule.get("names")
        if not isinstance(names, list) or not names:
            raise SpecError(f"{where}.names", "must be a non-empty list of syscall names")
        for j, n in enumerate(names):
            if not isinstance(n, str) or not n or not n.replace("_", "a").isalnum():
                raise SpecError(f"{where}.names[{j}]", f"not a syscall name: {n!r}")
        action = rule.get("action")
        if action not in ACTIONS:
            raise SpecError(f"{where}.action", f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
        if action == "SCMP_ACT_NOTIFY":
            notify = True
            if "write" in names:
                raise SpecError(f"{where}.names", "SCMP_ACT_NOTIFY cannot be used for write "
                                "(the runtime writes after loading the filter; as runc)")
        if rule.get("errnoRet") is not None:
            _uint(rule["errnoRet"], f"{where}.errnoRet", 0xFFFF)
            if action not in _WITH_ERRNO:
                raise SpecError(f"{where}.errnoRet", f"{action} does not take an errno; "
                                "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do")
        args = rule.get("args") or []
        if not isinstance(args, list):
            raise SpecError(f"{where}.args", "must be a list")
        for k, arg in enumerate(args):
            aw = f"{where}.args[{k}]"
            if not isinstance(arg, dict):
                raise SpecError(aw, "must be an object with index, value, op")
            if "index" not in arg:
                raise SpecError(f"{aw}.index", "is required")
            _uint(arg["index"], f"{aw}.index", _MAX_ARGS - 1)
            if "value" not in arg:
                raise SpecError(f"{aw}.value", "is required")
            _uint(arg["value"], f"{aw}.value")
            if arg.get("valueTwo") is not None:
                _uint(arg["valueTwo"], f"{aw}.valueTwo")
            if arg.get("op") not in OPERATORS:
                raise SpecError(f"{aw}.op", f"unknown operator {arg.get('op')!r}; known: {', '.join(OPERATORS)}")
    if notify and not lp:
        raise SpecError(f"{path}.listenerPath", "is required when a rule uses SCMP_ACT_NOTIFY")
    return spec


def action_value(action, errno_ret=None):
    base = ACTIONS[action]
    if action in _WITH_ERRNO:
        return base | ((1 if errno_ret is None else errno_ret) & 0xFFFF)
    return base


def uses_notify(spec):
    return any(r.get("action") == "SCMP_ACT_NOTIFY" for r in spec.get("syscalls") or ())


# --- libseccomp, loaded lazily ---------------------------------------------------------------------

class _ArgCmp(ffi.Structure):
    _fields_ = [("arg", ffi.c_uint), ("op", ffi.c_int),
                ("datum_a", ffi.c_uint64), ("datum_b", ffi.c_uint64)]


class _Version(ffi.Structure):
    _fields_ = [("major", ffi.c_uint), ("minor", ffi.c_uint), ("micro", ffi.c_uint)]


_lib = None
_NR_SCMP_ERROR = -1
_FLTATR_CTL_NNP = 3
_FLTATR_CTL_OPTIMIZE = 8


def _libseccomp():
    global _lib
    if _lib is None:
        try:
            lib = ffi.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise HullError(f"cannot load libseccomp.so.2 ({e}); install libseccomp2") from None
        lib.seccomp_init.restype = ffi.c_void_p
        lib.seccomp_init.argtypes = [ffi.c_uint32]
        lib.seccomp_release.argtypes = [ffi.c_void_p]
        lib.seccomp_release.restype = None
        lib.seccomp_arch_add.argtypes = [ffi.c_void_p, ffi.c_uint32]
        lib.seccomp_arch_resolve_name.argtypes = [ffi.c_char_p]
        lib.seccomp_arch_resolve_name.restype = ffi.c_uint32
        lib.seccomp_arch_native.restype = ffi.c_uint32
        lib.seccomp_attr_set.argtypes = [ffi.c_void_p, ffi.c_int, ffi.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ffi.c_char_p]
        lib.seccomp_syscall_resolve_name_arch.argtypes = [ffi.c_uint32, ffi.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ffi.c_void_p, ffi.c_uint32, ffi.c_int,
                                               ffi.c_uint, ffi.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [ffi.c_void_p, ffi.c_int]
        lib.seccomp_load.argtypes = [ffi.c_void_p]
        lib.seccomp_notify_fd.argtypes = [ffi.c_void_p]
        lib.seccomp_version.restype = ffi.POINTER(_Version)
        lib.seccomp_api_get.restype = ffi.c_uint
        _lib = lib
    return _lib


def libseccomp_version():
    v = _libseccomp().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def _lib_check(ret, call, path=None):
    if ret < 0:
        raise KernelError(-ret, call, path)
    return ret


def _debug(msg):
    import logging
    logging.getLogger("hull.seccomp").debug(msg)


# --- compile ------------------------------------------------------------------------------------

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_ENOSYS = 38
_FORMAT = "hull-seccomp-1"


def _insn(code, jt, jf, k):
    return code.to_bytes(2, "little") + bytes((jt, jf)) + (k & 0xFFFFFFFF).to_bytes(4, "little")


def _enosys_prologue(max_nr):
    """Classic BPF: on x86_64 (not x32), a syscall number above max_nr returns ENOSYS;
    everything else falls through to libseccomp's program."""
    return b"".join((
        _insn(0x20, 0, 0, 4),                               # ld  [4]      arch
        _insn(0x15, 0, 4, _AUDIT_ARCH_X86_64),              # jeq x86_64 ? next : prog
        _insn(0x20, 0, 0, 0),                               # ld  [0]      nr
        _insn(0x45, 2, 0, _X32_SYSCALL_BIT),                # jset x32 ? prog : next
        _insn(0x25, 0, 1, max_nr),                          # jgt max ? next : prog
        _insn(0x06, 0, 0, _ERRNO_BASE | _ENOSYS),           # ret ERRNO(ENOSYS)
    ))


def _conditions(args):
    """OCI args -> list of condition groups; each group becomes one libseccomp rule."""
    conds = []
    for a in args:
        conds.append((a["index"], OPERATORS[a["op"]], a["value"], a.get("valueTwo") or 0))
    indexes = [c[0] for c in conds]
    if len(set(indexes)) != len(indexes):
        return [[c] for c in conds]
    return [conds]


def _build(spec):
    """Build the filter with libseccomp and return (program bytes, skipped names)."""
    lib = _libseccomp()
    default = action_value(spec["defaultAction"], spec.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise KernelError(ffi.get_errno() or 22, "seccomp_init", spec["defaultAction"])
    skipped = []
    try:
        lib.seccomp_attr_set(ctx, _FLTATR_CTL_NNP, 0)
        for i, name in enumerate(spec.get("architectures") or ()):
            token = lib.seccomp_arch_resolve_name(ARCHES[name].encode())
            if token == 0:
                raise SpecError(f"linux.seccomp.architectures[{i}]",
                                f"{name} is not supported by libseccomp {libseccomp_version()}")
            ret = lib.seccomp_arch_add(ctx, token)
            if ret < 0 and ret != -17:  # EEXIST: the native arch is always there
                raise SpecError(f"linux.seccomp.architectures[{i}]",
                                f"libseccomp cannot add {name}: {os.strerror(-ret)}")
        native = lib.seccomp_arch_native()
        max_nr = -1
        for i, rule in enumerate(spec.get("syscalls") or ()):
            act = action_value(rule["action"], rule.get("errnoRet"))
            if act == default:
                continue
            groups = _conditions(rule.get("args") or ())
            for name in rule["names"]:
                bname = name.encode()
                nr = lib.seccomp_syscall_resolve_name(bname)
                if nr == _NR_SCMP_ERROR:
                    skipped.append(name)
                    continue
                max_nr = max(max_nr, lib.seccomp_syscall_resolve_name_arch(native, bname))
                for group in groups:
                    arr = (_ArgCmp * max(1, len(group)))()
                    for k, (idx, op, a, b) in enumerate(group):
                        arr[k].arg, arr[k].op, arr[k].datum_a, arr[k].datum_b = idx, op, a, b
                    ret = lib.seccomp_rule_add_array(ctx, act, nr, len(group), arr)
                    if ret < 0:
                        raise SpecError(f"linux.seccomp.syscalls[{i}]",
                                        f"libseccomp rejected the rule for {name!r}: {os.strerror(-ret)}")
        fd = os.memfd_create("hull-seccomp", os.MFD_CLOEXEC)
        try:
            _lib_check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_END)
            prog = os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    if (native == _AUDIT_ARCH_X86_64 and max_nr >= 0 and spec["defaultAction"] != "SCMP_ACT_ALLOW"
            and default != _ERRNO_BASE | _ENOSYS):
        prog = _enosys_prologue(max_nr) + prog
    return prog, skipped


def cache_key(spec):
    """Content hash of everything that shapes the program (not flags or listener fields)."""
    import _sha256  # not hashlib: it loads OpenSSL, a few ms on every container start
    from hull import jsonfast as json
    shaped = {k: spec.get(k) for k in ("defaultAction", "defaultErrnoRet", "architectures", "syscalls")}
    text = json.dumps(shaped, sort_keys=True, separators=(",", ":"))
    h = _sha256.sha256(f"{_FORMAT}\0{libseccomp_version()}\0{os.uname().machine}\0".encode())
    h.update(text.encode())
    return h.hexdigest()


def compile(spec, cache_dir=None):  # noqa: A001 - the public name the runtime calls
    """Validate and compile `linux.seccomp` to classic-BPF bytes (8 bytes per instruction).
    With `cache_dir`, look up / store the program as <cache_dir>/<sha256>.bpf."""
    global last_skipped
    validate(spec)
    path = None
    if cache_dir:
        path = os.path.join(cache_dir, cache_key(spec) + ".bpf")
        try:
            with open(path, "rb") as f:
                prog = f.read()
            if prog and len(prog) % 8 == 0:
                last_skipped = []
                return prog
        except OSError:
            pass
    prog, skipped = _build(spec)
    last_skipped = skipped
    if skipped:
        _debug(f"seccomp: skipped syscalls unknown to libseccomp {libseccomp_version()}: {', '.join(skipped)}")
    if path:
        try:
            os.makedirs(cache_dir, mode=0o700, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(prog)
            os.rename(tmp, path)
        except OSError as e:
            _debug(f"seccomp: cannot cache the program in {cache_dir}: {e}")
    return prog


# --- load -----------------------------------------------------------------------------------------

class _SockFprog(ffi.Structure):
    _fields_ = [("len", ffi.c_ushort), ("filter", ffi.c_char_p)]


_syscall = libc.syscall
_syscall.restype = ffi.c_long


def load_program(prog, flags=0):
    """Install a classic-BPF program with seccomp(SECCOMP_SET_MODE_FILTER, flags). Returns the
    syscall's result (the listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER)."""
    if not prog or len(prog) % 8:
        raise HullError(f"seccomp: invalid BPF program ({len(prog)} bytes)")
    fprog = _SockFprog(len(prog) // 8, prog)
    ret = _syscall(ffi.c_long(SYS["seccomp"]), ffi.c_ulong(SECCOMP_SET_MODE_FILTER),
                   ffi.c_ulong(flags), ffi.byref(fprog))
    if ret == -1:
        err = ffi.get_errno()
        hint = None
        if err == 13:  # EACCES
            hint = "set no_new_privs first (prctl.set_no_new_privs) or hold CAP_SYS_ADMIN"
        elif err == 22:
            hint = "the kernel rejected the program or a flag"
        raise KernelError(err, "seccomp(SECCOMP_SET_MODE_FILTER)", f"flags={flags:#x}", hint)
    return ret


def load_flags(spec):
    flags = 0
    for name in spec.get("flags") or ():
        flags |= FLAGS[name]
    if uses_notify(spec):
        flags |= _FLAG_NEW_LISTENER
        if flags & FLAGS["SECCOMP_FILTER_FLAG_TSYNC"]:
            flags |= _FLAG_TSYNC_ESRCH  # the kernel refuses TSYNC with NEW_LISTENER otherwise
    elif flags & FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]:
        flags &= ~FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]  # only meaningful with a listener
    return flags


def load(spec, cache_dir=None):
    """Compile (or take from the cache) and install `linux.seccomp` in the calling process.
    Returns the notification listener fd when any rule uses SCMP_ACT_NOTIFY, else None."""
    prog = compile(spec, cache_dir)
    fd = load_program(prog, load_flags(spec))
    return fd if uses_notify(spec) else None


def load_with_libseccomp(spec):
    """Build and load through seccomp_load() (the slow path; for comparison and debugging)."""
    validate(spec)
    lib = _libseccomp()
    default = action_value(spec["defaultAction"], spec.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    try:
        lib.seccomp_attr_set(ctx, _FLTATR_CTL_NNP, 0)
        for name in spec.get("architectures") or ():
            lib.seccomp_arch_add(ctx, lib.seccomp_arch_resolve_name(ARCHES[name].encode()))
        for rule in spec.get("syscalls") or ():
            act = action_value(rule["action"], rule.get("errnoRet"))
            if act == default:
                continue
            for name in rule["names"]:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == _NR_SCMP_ERROR:
                    continue
                for group in _conditions(rule.get("args") or ()):
                    arr = (_ArgCmp * max(1, len(group)))()
                    for k, (idx, op, a, b) in enumerate(group):
                        arr[k].arg, arr[k].op, arr[k].datum_a, arr[k].datum_b = idx, op, a, b
                    _lib_check(lib.seccomp_rule_add_array(ctx, act, nr, len(group), arr),
                               "seccomp_rule_add", name)
        _lib_check(lib.seccomp_load(ctx), "seccomp_load")
        return lib.seccomp_notify_fd(ctx) if uses_notify(spec) else None
    finally:
        lib.seccomp_release(ctx)


# --- NOTIFY: hand the listener fd to listenerPath ------------------------------------------------

def send_listener_fd(listener_path, fd, state_json_bytes, metadata=""):
    """Per the OCI spec: connect to the unix socket `listener_path` and send one
    ContainerProcessState JSON message ({"ociVersion", "fds": ["seccompFd"], "pid",
    "metadata", "state"}) with `fd` attached as SCM_RIGHTS. `state_json_bytes` is the
    container's state (bytes, str or dict)."""
    import array
    import json
    import socket

    from hull import OCI_VERSION

    if isinstance(state_json_bytes, (bytes, str)):
        state = json.loads(state_json_bytes)
    else:
        state = dict(state_json_bytes)
    msg = {
        "ociVersion": OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": state.get("pid", 0),
        "metadata": metadata or "",
        "state": state,
    }
    payload = json.dumps(msg).encode()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        try:
            sock.connect(listener_path)
        except OSError as e:
            raise KernelError(e.errno, "connect", listener_path,
                              "is the seccomp agent listening on linux.seccomp.listenerPath?") from None
        sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    finally:
        sock.close()


# --- features ----------------------------------------------------------------------------------

def _action_available(value):
    v = ffi.c_uint32(value)
    ret = _syscall(ffi.c_long(SYS["seccomp"]), ffi.c_ulong(SECCOMP_GET_ACTION_AVAIL),
                   ffi.c_ulong(0), ffi.byref(v))
    return ret == 0


def _flag_supported(flag):
    # seccomp(SET_MODE_FILTER, flag, NULL): EFAULT means the flag was accepted, EINVAL not.
    if flag == FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]:
        flag |= _FLAG_NEW_LISTENER
    ret = _syscall(ffi.c_long(SYS["seccomp"]), ffi.c_ulong(SECCOMP_SET_MODE_FILTER),
                   ffi.c_ulong(flag), ffi.c_void_p(0))
    return ret == -1 and ffi.get_errno() == 14


def features():
    """The `linux.seccomp` part of `hull-runtime features`, probed on this kernel."""
    try:
        lib = _libseccomp()
    except HullError:
        return {"enabled": False}
    archs = [a for a, n in ARCHES.items() if lib.seccomp_arch_resolve_name(n.encode())]
    actions = [a for a, v in ACTIONS.items() if _action_available(v)]
    return {
        "enabled": True,
        "actions": actions,
        "operators": list(OPERATORS),
        "archs": archs,
        "knownFlags": list(FLAGS),
        "supportedFlags": [f for f, v in FLAGS.items() if _flag_supported(v)],
    }
