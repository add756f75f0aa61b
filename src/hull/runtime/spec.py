"""The OCI runtime-spec `config.json` (v1.0-v1.2, v1.3 accepted) as a plain dict.

hull-runtime's hot path imports only stdlib + ctypes, so there is no model class here: the
spec is the JSON dict, checked by a small declarative schema walker built at import time from
closures on first use (~0.2 ms; importing the module builds nothing and imports only
`hull.errors`; `json` is imported lazily by `load`).

Public API
    load(bundle_dir, *, require_process=True, check_rootfs=True, warn=None) -> dict
    validate(spec, *, for_exec=False, warn=None) -> None
    validate_process(proc, path="process", *, warn=None) -> None
    process_defaults(proc) -> proc          (fills optional process fields, in place)
    rlimit_name(type) -> int                ("RLIMIT_NOFILE" -> 7, kernel/rlimits.py's table)
    namespace_map(spec) -> {type: path or None}
    NAMESPACE_TYPES, RLIMITS, HOOK_PHASES

Every error is `hull.errors.SpecError(json_path, message)`, the first one found, with paths like
`process.args`, `linux.namespaces[2].type`, `mounts[1].destination`,
`linux.sysctl["net.ipv4.ip_forward"]`. Unknown keys are ignored (forward compatibility, as runc).
Sub-objects owned by other modules are only checked to be objects here: `linux.resources`
(hull.cgroups validates it), `linux.seccomp` (the seccomp module), `linux.intelRdt`.

Deviation from a strict reading, on purpose, like runc: a relative `mounts[].destination` is
accepted with a warning and `load` makes it absolute (runtime-spec: "MAY be a relative path, in
which case it MUST be interpreted as relative to /"; relative paths are deprecated).
"""

from hull.errors import SpecError
from hull.kernel.rlimits import NUMBERS as RLIMITS

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
HOOK_PHASES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


SUPPORTED_MAJOR = 1
NEWEST_MINOR = 3  # newer 1.x versions load with a warning (additions are ignored)

_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1
_I32 = (-(1 << 31), (1 << 31) - 1)
_I64 = (-(1 << 63), (1 << 63) - 1)

# sysctls that a namespace makes per-container (runc's validator uses the same lists).
_IPC_SYSCTLS = frozenset((
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
))


# ---------------------------------------------------------------- helpers


def _jtype(v):
    """The JSON name of a Python value's type, for messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _show(v):
    """A short rendering of a bad value: "foo", 12, an array."""
    if isinstance(v, str):
        s = v if len(v) <= 60 else v[:57] + "..."
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    return "an " + _jtype(v) if _jtype(v) in ("array", "object") else _jtype(v)


def _key(path, name):
    """Join a JSON path and an object key: a.b, or a["x.y"] when the key is not an identifier."""
    if name and (name.replace("_", "a").isalnum() and not name[0].isdigit()):
        return f"{path}.{name}" if path else name
    return f'{path}["{name}"]'


def _err(path, msg):
    raise SpecError(path, msg)


def _type_err(path, what, v):
    _err(path, f"must be {what}, got {_show(v)}")


# ---------------------------------------------------------------- schema building blocks
# A schema is a function check(value, path, ctx) that raises SpecError; ctx carries `warn`.


def t_str(nonempty=False, abspath=False, choices=None, nonul=True):
    def check(v, path, ctx):
        if not isinstance(v, str):
            _type_err(path, "a string", v)
        if nonempty and not v:
            _err(path, "must not be empty")
        if nonul and "\0" in v:
            _err(path, "must not contain a NUL byte")
        if abspath and not v.startswith("/"):
            _err(path, f"must be an absolute path, got {_show(v)}")
        if choices is not None and v not in choices:
            _err(path, f"unknown value {_show(v)} (expected one of {', '.join(choices)})")
    return check


def t_bool():
    def check(v, path, ctx):
        if not isinstance(v, bool):
            _type_err(path, "a boolean (true or false)", v)
    return check


def t_int(lo, hi, what="an integer"):
    def check(v, path, ctx):
        if isinstance(v, bool) or not isinstance(v, int):
            _type_err(path, what, v)
        if v < lo or v > hi:
            _err(path, f"{v} is out of range ({lo} to {hi})")
    return check


def t_uint32():
    return t_int(0, _U32, "a non-negative integer")


def t_uint64():
    return t_int(0, _U64, "a non-negative integer")


def t_object():
    """Any JSON object; its owner module validates the inside."""
    def check(v, path, ctx):
        if not isinstance(v, dict):
            _type_err(path, "an object", v)
    return check


def t_list(item, nonempty=False, what="a list"):
    def check(v, path, ctx):
        if not isinstance(v, list):
            _type_err(path, what if not nonempty else "a non-empty list", v)
        if nonempty and not v:
            _err(path, "must be a non-empty list")
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]", ctx)
    return check


def t_map(value, key=None):
    """A JSON object used as a map: string keys (checked by `key(k, path)`), values by `value`."""
    def check(v, path, ctx):
        if not isinstance(v, dict):
            _type_err(path, "an object", v)
        for k, x in v.items():
            p = _key(path, k)
            if key is not None:
                key(k, p)
            value(x, p, ctx)
    return check


def t_struct(fields, required=(), post=None, missing=None):
    """A JSON object with known fields; unknown keys are ignored (forward compatibility).

    `required` names fields that must be present; `missing` maps a field to a message used
    when it is absent; `post(obj, path, ctx)` checks relations between fields.
    """
    order = tuple(fields.items())
    missing = missing or {}

    def check(v, path, ctx):
        if not isinstance(v, dict):
            _type_err(path, "an object", v)
        for name in required:
            if name not in v:
                _err(_key(path, name), missing.get(name, "is required"))
        for name, sub in order:
            if name in v:
                sub(v[name], _key(path, name), ctx)
        if post is not None:
            post(v, path, ctx)
    return check


# ---------------------------------------------------------------- field checks


def _semver(v, path, ctx):
    if not isinstance(v, str):
        _type_err(path, "a string", v)
    core = v
    for sep in ("+", "-"):
        core = core.split(sep, 1)[0]
    parts = core.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        _err(path, f"{_show(v)} is not a SemVer version like \"1.2.0\"")
    major, minor = int(parts[0]), int(parts[1])
    if major != SUPPORTED_MAJOR:
        _err(path, f"unsupported version {_show(v)} (hull supports runtime-spec 1.x)")
    if minor > NEWEST_MINOR:
        ctx.warn(f"{path}: {v} is newer than the newest runtime-spec hull knows (1.{NEWEST_MINOR}); "
                 "fields it does not know are ignored")


def _env_entry(v, path, ctx):
    if not isinstance(v, str):
        _type_err(path, 'a "KEY=VALUE" string', v)
    if "\0" in v:
        _err(path, "must not contain a NUL byte")
    k, sep, _ = v.partition("=")
    if not sep:
        _err(path, f'{_show(v)} is not in "KEY=VALUE" form')
    if not k:
        _err(path, f"{_show(v)} has an empty variable name")


def _cpu_list(v, path, ctx):
    """"0-3,7" style lists (cpus, NUMA nodes)."""
    if not isinstance(v, str):
        _type_err(path, 'a list string like "0-3,7"', v)
    if v == "":
        return
    for part in v.split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or (dash and int(hi) < int(lo)):
            _err(path, f'{_show(v)} is not a list like "0-3,7"')


def _check_mappings(v, path, ctx):
    """uidMappings / gidMappings: list of {containerID, hostID, size}, no overlaps."""
    _id_maps(v, path, ctx)
    spans = []
    for i, m in enumerate(v):
        size = m["size"]
        for field in ("containerID", "hostID"):
            if m[field] + size - 1 > _U32:
                _err(f"{path}[{i}]", f"{field} {m[field]} + size {size} is beyond the 32-bit id range")
        spans.append((m["containerID"], m["hostID"], size, i))
    for a in range(len(spans)):
        for b in range(a + 1, len(spans)):
            ca, ha, sa, ia = spans[a]
            cb, hb, sb, ib = spans[b]
            if ca < cb + sb and cb < ca + sa:
                _err(f"{path}[{ib}]", f"containerID range overlaps {path}[{ia}]")
            if ha < hb + sb and hb < ha + sa:
                _err(f"{path}[{ib}]", f"hostID range overlaps {path}[{ia}]")
    if len(v) > 340:
        _err(path, f"{len(v)} ranges; the kernel allows at most 340")


def _size_positive(v, path, ctx):
    t_uint32()(v, path, ctx)
    if v == 0:
        _err(path, "must be at least 1")


def _mount_post(m, path, ctx):
    if ("uidMappings" in m) != ("gidMappings" in m):
        _err(path, "uidMappings and gidMappings must be given together")


def _mount_destination(v, path, ctx):
    t_str(nonempty=True)(v, path, ctx)
    if not v.startswith("/"):
        ctx.warn(f"{path}: {_show(v)} is not absolute; it is taken relative to \"/\" "
                 "(relative mount destinations are deprecated)")


def _rlimits_post(v, path, ctx):
    seen = {}
    for i, r in enumerate(v):
        t = r["type"]
        if t in seen:
            _err(f"{path}[{i}].type", f"duplicate rlimit {t} (also {path}[{seen[t]}])")
        seen[t] = i
        if r["soft"] > r["hard"]:
            _err(f"{path}[{i}]", f"soft limit {r['soft']} is above hard limit {r['hard']} for {t}")


def _rlimit_type(v, path, ctx):
    if not isinstance(v, str):
        _type_err(path, 'a string like "RLIMIT_NOFILE"', v)
    if v not in RLIMITS:
        _err(path, f"unknown rlimit type {_show(v)} (expected one of {', '.join(RLIMITS)})")


def _rlimits(v, path, ctx):
    t_list(_rlimit)(v, path, ctx)
    _rlimits_post(v, path, ctx)


_SCHED_POLICIES = ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO",
                   "SCHED_IDLE", "SCHED_DEADLINE")
_SCHED_FLAGS = ("SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN",
                "SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN",
                "SCHED_FLAG_UTIL_CLAMP_MAX")


def _sched_post(v, path, ctx):
    pol = v["policy"]
    if v.get("priority", 0) != 0 and pol not in ("SCHED_FIFO", "SCHED_RR"):
        _err(_key(path, "priority"), f"can only be set with SCHED_FIFO or SCHED_RR, not {pol}")
    if pol != "SCHED_DEADLINE":
        for f in ("runtime", "deadline", "period"):
            if v.get(f, 0) != 0:
                _err(_key(path, f), f"can only be set with SCHED_DEADLINE, not {pol}")


_CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def _process_post(proc, path):
    args = proc["args"]
    if args[0] == "":
        _err(f"{path}.args[0]", "the program to run must not be empty")


def _hook_timeout(v, path, ctx):
    t_int(1, _I64[1], "a positive integer (seconds)")(v, path, ctx)


def _annotation_key(k, path):
    if k == "":
        _err(path, "annotation keys must not be empty")


def _ns_post(v, path, ctx):
    seen = {}
    for i, ns in enumerate(v):
        t = ns["type"]
        if t in seen:
            _err(f"{path}[{i}].type", f'duplicate namespace "{t}" (also {path}[{seen[t]}])')
        seen[t] = i


def _ns_type(v, path, ctx):
    if not isinstance(v, str):
        _type_err(path, "a string", v)
    if v not in NAMESPACE_TYPES:
        _err(path, f"unknown namespace type {_show(v)} (expected one of {', '.join(NAMESPACE_TYPES)})")


def _namespaces(v, path, ctx):
    t_list(_namespace)(v, path, ctx)
    _ns_post(v, path, ctx)


def _time_offset_key(k, path):
    if k not in ("monotonic", "boottime"):
        _err(path, f'unknown clock "{k}" (expected monotonic or boottime)')


def _device_post(d, path, ctx):
    if d["type"] != "p":
        for f in ("major", "minor"):
            if f not in d:
                _err(_key(path, f), f'is required for a device of type "{d["type"]}"')


def _sysctl_key(k, path):
    if not k or "\0" in k or "=" in k:
        _err(path, "is not a valid sysctl name")


_PROPAGATION = ("shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate",
                "runbindable")

_MPOL_MODES = ("MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
               "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL")
_MPOL_FLAGS = ("MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES")


def _netdev_key(k, path):
    if not k or "/" in k or len(k) > 15:
        _err(path, "is not a valid network interface name")


# ---------------------------------------------------------------- the schema (built on first use)
# Built lazily: `state`, `kill`, `delete` import this module but never validate a config.

_spec = None


def _build():
    global _id_map, _id_maps, _mount, _rlimit, _scheduler, _user, _process, _hook, _hooks
    global _annotations, _namespace, _time_offsets, _device, _linux, _root, _spec
    _id_map = t_struct(
        {"containerID": t_uint32(), "hostID": t_uint32(), "size": _size_positive},
        required=("containerID", "hostID", "size"),
    )

    _id_maps = t_list(_id_map)

    _mount = t_struct(
        {
            "destination": _mount_destination,
            "source": t_str(),
            "type": t_str(),
            "options": t_list(t_str()),
            "uidMappings": _check_mappings,
            "gidMappings": _check_mappings,
        },
        required=("destination",),
        post=_mount_post,
    )

    _rlimit = t_struct(
        {"type": _rlimit_type, "soft": t_uint64(), "hard": t_uint64()},
        required=("type", "soft", "hard"),
    )

    _scheduler = t_struct(
        {
            "policy": t_str(choices=_SCHED_POLICIES),
            "nice": t_int(-20, 19),
            "priority": t_int(*_I32),
            "flags": t_list(t_str(choices=_SCHED_FLAGS)),
            "runtime": t_uint64(),
            "deadline": t_uint64(),
            "period": t_uint64(),
        },
        required=("policy",),
        post=_sched_post,
    )

    _user = t_struct(
        {
            "uid": t_uint32(),
            "gid": t_uint32(),
            "umask": t_int(0, 0o7777, "a non-negative integer (decimal, e.g. 18 for 022)"),
            "additionalGids": t_list(t_uint32()),
            "username": t_str(),
        },
        required=("uid", "gid"),
    )

    _process = t_struct(
        {
            "terminal": t_bool(),
            "consoleSize": t_struct({"height": t_uint32(), "width": t_uint32()},
                                    required=("height", "width")),
            "user": _user,
            "args": t_list(t_str(), nonempty=True),
            "commandLine": t_str(),
            "env": t_list(_env_entry),
            "cwd": t_str(nonempty=True, abspath=True),
            "capabilities": t_struct({name: t_list(t_str()) for name in _CAP_SETS}),
            "rlimits": _rlimits,
            "noNewPrivileges": t_bool(),
            "apparmorProfile": t_str(),
            "oomScoreAdj": t_int(-1000, 1000),
            "selinuxLabel": t_str(),
            "ioPriority": t_struct(
                {"class": t_str(choices=("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")),
                 "priority": t_int(0, 7)},
                required=("class", "priority"),
            ),
            "scheduler": _scheduler,
            "execCPUAffinity": t_struct({"initial": _cpu_list, "final": _cpu_list}),
        },
        required=("args",),
        missing={"args": "must be a non-empty list"},
    )

    _hook = t_struct(
        {
            "path": t_str(nonempty=True, abspath=True),
            "args": t_list(t_str()),
            "env": t_list(_env_entry),
            "timeout": _hook_timeout,
        },
        required=("path",),
    )

    _hooks = t_struct({phase: t_list(_hook) for phase in HOOK_PHASES})

    _annotations = t_map(t_str(nonul=False), key=_annotation_key)

    _namespace = t_struct(
        {"type": _ns_type, "path": t_str(nonempty=True, abspath=True)},
        required=("type",),
    )

    _time_offsets = t_map(
        t_struct({"secs": t_int(*_I64), "nanosecs": t_int(0, 999_999_999)}),
        key=_time_offset_key,
    )

    _device = t_struct(
        {
            "type": t_str(choices=("c", "b", "u", "p")),
            "path": t_str(nonempty=True, abspath=True),
            "major": t_int(*_I64),
            "minor": t_int(*_I64),
            "fileMode": t_int(0, 0o177777, "a non-negative integer (decimal, e.g. 438 for 0666)"),
            "uid": t_uint32(),
            "gid": t_uint32(),
        },
        required=("type", "path"),
        post=_device_post,
    )

    _linux = t_struct(
        {
            "namespaces": _namespaces,
            "uidMappings": _check_mappings,
            "gidMappings": _check_mappings,
            "timeOffsets": _time_offsets,
            "devices": t_list(_device),
            "netDevices": t_map(t_struct({"name": t_str(nonempty=True)}), key=_netdev_key),
            "cgroupsPath": t_str(),
            "resources": t_object(),
            "rootfsPropagation": t_str(choices=_PROPAGATION),
            "seccomp": t_object(),
            "sysctl": t_map(t_str(), key=_sysctl_key),
            "maskedPaths": t_list(t_str(nonempty=True, abspath=True)),
            "readonlyPaths": t_list(t_str(nonempty=True, abspath=True)),
            "mountLabel": t_str(),
            "personality": t_struct(
                {"domain": t_str(choices=("LINUX", "LINUX32")), "flags": t_list(t_str())},
                required=("domain",),
            ),
            "intelRdt": t_object(),
            "memoryPolicy": t_struct(
                {"mode": t_str(choices=_MPOL_MODES), "nodes": _cpu_list,
                 "flags": t_list(t_str(choices=_MPOL_FLAGS))},
                required=("mode",),
            ),
        },
    )

    _root = t_struct(
        {"path": t_str(nonempty=True), "readonly": t_bool()},
        required=("path",),
    )

    _spec = t_struct(
        {
            "ociVersion": _semver,
            "root": _root,
            "mounts": t_list(_mount),
            "process": _process,
            "hostname": t_str(),
            "domainname": t_str(),
            "hooks": _hooks,
            "annotations": _annotations,
            "linux": _linux,
        },
        required=("ociVersion", "root"),
    )


# ---------------------------------------------------------------- cross-field rules


def _cross_checks(spec):
    """Relations between fields that runc enforces too (else the container would touch the host)."""
    linux = spec.get("linux") or {}
    ns = {n["type"]: n.get("path") for n in linux.get("namespaces", ())}

    if "user" in ns:
        if ns["user"] is None:
            for f in ("uidMappings", "gidMappings"):
                if not linux.get(f):
                    _err(f"linux.{f}", "a new user namespace needs uidMappings and gidMappings")
    else:
        for f in ("uidMappings", "gidMappings"):
            if linux.get(f):
                _err(f"linux.{f}", 'needs a user namespace: add {"type": "user"} to linux.namespaces')

    if linux.get("timeOffsets"):
        if "time" not in ns:
            _err("linux.timeOffsets", 'needs a time namespace: add {"type": "time"} to linux.namespaces')
        if ns["time"] is not None:
            _err("linux.timeOffsets", "cannot be set when joining an existing time namespace (path)")

    for f in ("hostname", "domainname"):
        if spec.get(f) and "uts" not in ns:
            _err(f, 'needs a UTS namespace: add {"type": "uts"} to linux.namespaces')

    for name in linux.get("sysctl", ()):
        key = name.replace("/", ".")
        p = _key("linux.sysctl", name)
        if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if "ipc" not in ns:
                _err(p, "needs an IPC namespace (it would change the host's value)")
        elif key.startswith("net."):
            if "network" not in ns:
                _err(p, "needs a network namespace (it would change the host's value)")
        elif key in ("kernel.hostname", "kernel.domainname"):
            if "uts" not in ns:
                _err(p, "needs a UTS namespace (it would change the host's value)")
            if key == "kernel.hostname":
                _err(p, "is not allowed: set the \"hostname\" field instead")
        else:
            _err(p, "is not namespaced by the kernel, so a container cannot set it")


# ---------------------------------------------------------------- public API


class _Ctx:
    __slots__ = ("warn",)

    def __init__(self, warn):
        self.warn = warn if warn is not None else _no_warn


def _no_warn(msg):
    pass


def validate(spec, *, for_exec=False, warn=None):
    """Check a config.json dict; raise SpecError for the first problem found.

    for_exec: the spec is about to be executed (`create`/`run`): `process` is then required.
    Without it `process` is optional, as the runtime-spec allows until `start`.
    warn: optional callable(str) for non-fatal findings (deprecated relative mount
    destinations, newer ociVersion).
    """
    if _spec is None:
        _build()
    ctx = _Ctx(warn)
    if not isinstance(spec, dict):
        _err("config.json", f"must be a JSON object, got {_show(spec)}")
    _spec(spec, "", ctx)
    if "process" in spec:
        _process_post(spec["process"], "process")
    elif for_exec:
        _err("process", "is required to create or run a container")
    _cross_checks(spec)


def validate_process(proc, path="process", *, warn=None):
    """Check a `process` object alone (also `exec --process process.json`)."""
    if _spec is None:
        _build()
    _process(proc, path, _Ctx(warn))
    _process_post(proc, path)


def process_defaults(proc):
    """Fill the optional process fields that have a defined default, in place; returns proc.

    terminal false, env [], cwd "/", user 0:0 (runc's zero value), additionalGids [],
    rlimits [], noNewPrivileges false. Capabilities are left absent when absent (absent means
    "do not change capabilities", which differs from an empty set).
    """
    proc.setdefault("terminal", False)
    proc.setdefault("env", [])
    proc.setdefault("cwd", "/")
    user = proc.setdefault("user", {"uid": 0, "gid": 0})
    user.setdefault("additionalGids", [])
    proc.setdefault("rlimits", [])
    proc.setdefault("noNewPrivileges", False)
    return proc


def apply_defaults(spec, bundle_dir):
    """Resolve root.path against the bundle and default the optional sections, in place."""
    from hull import osfast as os

    bundle = os.path.abspath(bundle_dir)
    root = spec["root"]
    root["path"] = os.path.normpath(os.path.join(bundle, root["path"]))
    root.setdefault("readonly", False)
    mounts = spec.setdefault("mounts", [])
    for m in mounts:
        if not m["destination"].startswith("/"):
            m["destination"] = "/" + m["destination"]
        m.setdefault("options", [])
    if "process" in spec:
        process_defaults(spec["process"])
    hooks = spec.setdefault("hooks", {})
    for phase in HOOK_PHASES:
        hooks.setdefault(phase, [])
    spec.setdefault("annotations", {})
    linux = spec.setdefault("linux", {})
    for f in ("namespaces", "uidMappings", "gidMappings", "devices", "maskedPaths", "readonlyPaths"):
        linux.setdefault(f, [])
    linux.setdefault("sysctl", {})
    return spec


def load(bundle_dir, *, require_process=True, check_rootfs=True, warn=None, data=None):
    """Read `<bundle_dir>/config.json`, validate it, and return it with defaults applied.

    root.path comes back absolute (relative paths are relative to the bundle). With
    check_rootfs, a missing rootfs directory is a SpecError on `root.path`. `data`: the
    file's bytes, read already (hull-runtime's stage 1 got the same bytes).
    """
    from hull import osfast as os

    path = os.path.join(bundle_dir, "config.json")
    try:
        if data is None:
            with open(path, "rb") as f:
                data = f.read()
    except FileNotFoundError:
        if not os.path.isdir(bundle_dir):
            _err("config.json", f"bundle directory {bundle_dir} does not exist")
        _err("config.json", f"{path} does not exist (write a default one with `hull-runtime spec`)")
    except OSError as e:
        _err("config.json", f"cannot read {path}: {e.strerror}")

    from hull import jsonfast as json

    try:
        spec = json.loads(data)
    except UnicodeDecodeError as e:
        _err("config.json", f"is not valid UTF-8 (byte {e.start})")
    except json.JSONDecodeError as e:
        _err("config.json", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}")
    except RecursionError:
        _err("config.json", "is nested too deeply")

    validate(spec, for_exec=require_process, warn=warn)
    apply_defaults(spec, bundle_dir)
    if check_rootfs and not os.path.isdir(spec["root"]["path"]):
        _err("root.path", f"rootfs directory {spec['root']['path']} does not exist")
    return spec


def rlimit_name(type, path="process.rlimits"):
    """Map "RLIMIT_NOFILE" to this platform's resource number; unknown names are a SpecError."""
    if not isinstance(type, str) or type not in RLIMITS:
        _err(path, f"unknown rlimit type {_show(type)} (expected one of {', '.join(RLIMITS)})")
    return RLIMITS[type]


def namespace_map(spec):
    """{type: path or None} of `linux.namespaces` (None = create a new one)."""
    return {n["type"]: n.get("path") for n in (spec.get("linux") or {}).get("namespaces", ())}
