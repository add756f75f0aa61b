"""Landlock (ABI 1..7) through ctypes: filesystem, TCP port and scope rules for a container.

Rules come from the annotation ``org.hull.landlock`` (JSON, documented in docs/landlock.md)::

    {"read": ["/usr", "/etc"], "write": ["/tmp", "/dev/null"], "exec": ["/bin"],
     "bind_tcp": [8080], "connect_tcp": [53, 443], "scope": ["signal"],
     "best_effort": false}

``validate(rules)`` checks the shape; ``apply(rules)`` runs in the container init after
pivot_root (paths are the container's) and before capabilities are dropped, so it may rely on
CAP_SYS_ADMIN instead of no_new_privs. ``abi()`` returns the kernel's ABI (0: unavailable).
"""

from hull.kernel import ffi
from hull import osfast as os

from hull.errors import HullError, KernelError, SpecError
from hull.kernel.libc import SYS, libc

ANNOTATION = "org.hull.landlock"

LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_RULE_NET_PORT = 2

# access rights, with the ABI that introduced each
FS = {
    "execute": (1 << 0, 1), "write_file": (1 << 1, 1), "read_file": (1 << 2, 1),
    "read_dir": (1 << 3, 1), "remove_dir": (1 << 4, 1), "remove_file": (1 << 5, 1),
    "make_char": (1 << 6, 1), "make_dir": (1 << 7, 1), "make_reg": (1 << 8, 1),
    "make_sock": (1 << 9, 1), "make_fifo": (1 << 10, 1), "make_block": (1 << 11, 1),
    "make_sym": (1 << 12, 1), "refer": (1 << 13, 2), "truncate": (1 << 14, 3),
    "ioctl_dev": (1 << 15, 5),
}
NET = {"bind_tcp": (1 << 0, 4), "connect_tcp": (1 << 1, 4)}
SCOPE = {"abstract_unix_socket": (1 << 0, 6), "signal": (1 << 1, 6)}
# landlock_restrict_self() flags (ABI 7): audit logging of denials
RESTRICT_LOG_SAME_EXEC_OFF = 1 << 0
RESTRICT_LOG_NEW_EXEC_ON = 1 << 1
RESTRICT_LOG_SUBDOMAINS_OFF = 1 << 2

# Rights that only make sense on directories; a rule on a file may carry only the others.
_FILE_RIGHTS = {"execute", "write_file", "read_file", "truncate", "ioctl_dev"}

# What each rule key grants beneath a path.
_READ = ("read_file", "read_dir")
_WRITE = _READ + ("write_file", "remove_dir", "remove_file", "make_char", "make_dir", "make_reg",
                  "make_sock", "make_fifo", "make_block", "make_sym", "refer", "truncate", "ioctl_dev")
_EXEC = _READ + ("execute",)
PATH_KEYS = {"read": _READ, "write": _WRITE, "exec": _EXEC}
PORT_KEYS = ("bind_tcp", "connect_tcp")
KNOWN_KEYS = set(PATH_KEYS) | set(PORT_KEYS) | {"scope", "best_effort", "log", "paths"}


class _RulesetAttr(ffi.Structure):
    _fields_ = [("handled_access_fs", ffi.c_uint64), ("handled_access_net", ffi.c_uint64),
                ("scoped", ffi.c_uint64)]


class _PathBeneathAttr(ffi.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ffi.c_uint64), ("parent_fd", ffi.c_int32)]


class _NetPortAttr(ffi.Structure):
    _fields_ = [("allowed_access", ffi.c_uint64), ("port", ffi.c_uint64)]


_syscall = libc.syscall
_syscall.restype = ffi.c_long


def _sys(name, *args):
    return _syscall(ffi.c_long(SYS[name]), *args)


_abi = None


def abi():
    """The kernel's Landlock ABI version (0 when Landlock is not available or disabled)."""
    global _abi
    if _abi is None:
        ret = _sys("landlock_create_ruleset", ffi.c_void_p(0), ffi.c_size_t(0),
                   ffi.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
        _abi = ret if ret > 0 else 0
    return _abi


def features():
    """The Landlock part of `hull-runtime features` (under annotations / a hull section)."""
    level = abi()
    return {
        "enabled": level > 0,
        "abi": level,
        "fs": [n for n, (_, v) in FS.items() if v <= level],
        "net": [n for n, (_, v) in NET.items() if v <= level],
        "scope": [n for n, (_, v) in SCOPE.items() if v <= level],
    }


# --- validation ------------------------------------------------------------------------------

def parse(annotation_value, path=f'annotations["{ANNOTATION}"]'):
    """JSON text of the annotation -> validated rules dict."""
    import json
    try:
        rules = json.loads(annotation_value)
    except (TypeError, ValueError) as e:
        raise SpecError(path, f"is not valid JSON: {e}") from None
    return validate(rules, path)


def validate(rules, path=f'annotations["{ANNOTATION}"]'):
    """Check the rules' shape (no kernel access; a str is parsed as the annotation's JSON).
    Returns the rules dict."""
    if isinstance(rules, (str, bytes)):
        return parse(rules, path)
    if not isinstance(rules, dict):
        raise SpecError(path, 'must be a JSON object such as {"read": ["/"], "write": ["/tmp"]}')
    for key in rules:
        if key not in KNOWN_KEYS:
            raise SpecError(f"{path}.{key}", f"unknown key; known: {', '.join(sorted(KNOWN_KEYS))}")
    for key in PATH_KEYS:
        _paths(rules.get(key), f"{path}.{key}")
    for key in PORT_KEYS:
        ports = rules.get(key)
        if ports is None:
            continue
        if not isinstance(ports, list):
            raise SpecError(f"{path}.{key}", "must be a list of TCP port numbers")
        for i, p in enumerate(ports):
            if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 65535:
                raise SpecError(f"{path}.{key}[{i}]", f"must be a port number 0..65535, got {p!r}")
    scope = rules.get("scope")
    if scope is not None:
        if not isinstance(scope, list):
            raise SpecError(f"{path}.scope", f"must be a list of {', '.join(SCOPE)}")
        for i, s in enumerate(scope):
            if s not in SCOPE:
                raise SpecError(f"{path}.scope[{i}]", f"unknown scope {s!r}; known: {', '.join(SCOPE)}")
    extra = rules.get("paths")
    if extra is not None:
        if not isinstance(extra, list):
            raise SpecError(f"{path}.paths", 'must be a list of {"path": ..., "access": [...]}')
        for i, item in enumerate(extra):
            where = f"{path}.paths[{i}]"
            if not isinstance(item, dict) or set(item) - {"path", "access"}:
                raise SpecError(where, 'must be {"path": "/abs", "access": ["read_file", ...]}')
            _paths([item.get("path")], f"{where}.path", single=True)
            access = item.get("access")
            if not isinstance(access, list) or not access:
                raise SpecError(f"{where}.access", f"must be a non-empty list of {', '.join(FS)}")
            for j, a in enumerate(access):
                if a not in FS:
                    raise SpecError(f"{where}.access[{j}]", f"unknown access right {a!r}; known: {', '.join(FS)}")
    if not isinstance(rules.get("best_effort", False), bool):
        raise SpecError(f"{path}.best_effort", "must be true or false")
    log = rules.get("log")
    if log is not None:
        if not isinstance(log, dict) or set(log) - {"same_exec", "new_exec", "subdomains"} \
                or not all(isinstance(v, bool) for v in log.values()):
            raise SpecError(f"{path}.log", 'must be {"same_exec": bool, "new_exec": bool, "subdomains": bool}')
    return rules


def _paths(value, where, single=False):
    if value is None:
        return
    if not isinstance(value, list):
        raise SpecError(where, "must be a list of absolute paths")
    for i, p in enumerate(value):
        w = where if single else f"{where}[{i}]"
        if not isinstance(p, str) or not p.startswith("/") or "\0" in p:
            raise SpecError(w, f"must be an absolute path, got {p!r}")


# --- planning (pure) -------------------------------------------------------------------------

def plan(rules, level):
    """Decide what to ask of a kernel with ABI `level`. Returns a dict with handled masks,
    path rules [(path, right names)], port rules [(right, port)], scoped mask, restrict flags
    and `dropped` (what best-effort left out). Raises HullError when the kernel is too old
    and best_effort is false."""
    best = rules.get("best_effort", False)
    dropped = []

    def need(what, version):
        if level >= version:
            return True
        if best:
            dropped.append(f"{what} (needs Landlock ABI {version})")
            return False
        raise HullError(f"Landlock: {what} needs ABI {version}, this kernel has "
                        f"{'no Landlock' if level == 0 else f'ABI {level}'}; "
                        f'remove it from the {ANNOTATION} annotation or set "best_effort": true')

    if level == 0:
        need("Landlock", 1)
        return {"handled_fs": 0, "handled_net": 0, "scoped": 0, "paths": [], "ports": [],
                "flags": 0, "dropped": dropped, "abi": 0}
    known_fs = {n for n, (_, v) in FS.items() if v <= level}
    path_rules = []
    for key, rights in PATH_KEYS.items():
        for p in rules.get(key) or ():
            path_rules.append((p, [r for r in rights if r in known_fs]))
    for item in rules.get("paths") or ():
        names = []
        for r in item["access"]:
            if r in known_fs or need(f"access right {r!r}", FS[r][1]):
                names.append(r)
        path_rules.append((item["path"], names))
    restrict_fs = any(k in rules for k in PATH_KEYS) or "paths" in rules
    handled_fs = sum(FS[n][0] for n in known_fs) if restrict_fs else 0

    handled_net = 0
    ports = []
    for key in PORT_KEYS:
        if key in rules and need(f"{key} rules", NET[key][1]):
            handled_net |= NET[key][0]
            ports += [(key, p) for p in rules[key]]
    scoped = 0
    for s in rules.get("scope") or ():
        if need(f"scope {s!r}", SCOPE[s][1]):
            scoped |= SCOPE[s][0]
    flags = 0
    log = rules.get("log") or {}
    if log and need("log settings", 7):
        if log.get("same_exec") is False:
            flags |= RESTRICT_LOG_SAME_EXEC_OFF
        if log.get("new_exec") is True:
            flags |= RESTRICT_LOG_NEW_EXEC_ON
        if log.get("subdomains") is False:
            flags |= RESTRICT_LOG_SUBDOMAINS_OFF
    return {"handled_fs": handled_fs, "handled_net": handled_net, "scoped": scoped,
            "paths": path_rules, "ports": ports, "flags": flags, "dropped": dropped, "abi": level}


# --- applying ---------------------------------------------------------------------------------

def apply(rules, allow_fds=()):
    """Restrict the calling process (and its future children) per `rules` (a dict, or the
    annotation's JSON text). Needs no_new_privs or CAP_SYS_ADMIN. Returns the plan that was
    applied (see plan()).

    `allow_fds`: file descriptors the runtime itself must still open read/write after this
    call, e.g. the exec fifo the init reopens through /proc/self/fd/N while it waits for
    `start` — that file lives outside the container's tree, so no path rule can name it."""
    if isinstance(rules, (str, bytes)):
        rules = parse(rules)
    else:
        validate(rules)
    p = plan(rules, abi())
    if not (p["handled_fs"] or p["handled_net"] or p["scoped"]):
        return p  # nothing the kernel can enforce (best effort on an old kernel, or empty rules)
    level = p["abi"]
    attr = _RulesetAttr(p["handled_fs"], p["handled_net"], p["scoped"])
    size = 24 if level >= 6 else 16 if level >= 4 else 8
    ruleset = _sys("landlock_create_ruleset", ffi.byref(attr), ffi.c_size_t(size), ffi.c_uint32(0))
    if ruleset < 0:
        raise KernelError(ffi.get_errno(), "landlock_create_ruleset", f"ABI {level}")
    try:
        for path, names in p["paths"]:
            _add_path(ruleset, path, names)
        if p["handled_fs"]:
            known = [n for n, (_, v) in FS.items() if v <= level]
            for fd in allow_fds:
                _add_fd(ruleset, fd, [n for n in _WRITE if n in known], f"fd {fd}")
        for key, port in p["ports"]:
            na = _NetPortAttr(NET[key][0], port)
            if _sys("landlock_add_rule", ffi.c_int(ruleset), ffi.c_int(LANDLOCK_RULE_NET_PORT),
                    ffi.byref(na), ffi.c_uint32(0)) < 0:
                raise KernelError(ffi.get_errno(), "landlock_add_rule", f"{key} port {port}")
        if _sys("landlock_restrict_self", ffi.c_int(ruleset), ffi.c_uint32(p["flags"])) < 0:
            err = ffi.get_errno()
            hint = "needs no_new_privs or CAP_SYS_ADMIN" if err == 1 else None
            raise KernelError(err, "landlock_restrict_self", None, hint)
    finally:
        os.close(ruleset)
    return p


def _add_path(ruleset, path, names):
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno, "open", path,
                          f"a path in the {ANNOTATION} annotation must exist in the container") from None
    try:
        _add_fd(ruleset, fd, names, path)
    finally:
        os.close(fd)


def _add_fd(ruleset, fd, names, label):
    import stat
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        names = [n for n in names if n in _FILE_RIGHTS]
    mask = 0
    for n in names:
        mask |= FS[n][0]
    if not mask:
        return
    pb = _PathBeneathAttr(mask, fd)
    if _sys("landlock_add_rule", ffi.c_int(ruleset), ffi.c_int(LANDLOCK_RULE_PATH_BENEATH),
            ffi.byref(pb), ffi.c_uint32(0)) < 0:
        raise KernelError(ffi.get_errno(), "landlock_add_rule", label)
