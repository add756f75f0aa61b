"""hull's default seccomp profile: Docker's, shipped as data in hull/data/seccomp-default.json.

``default_seccomp(capabilities)`` resolves it, as Docker does when it writes a container's
config.json, into an OCI ``linux.seccomp`` object for this host: the host arch and its
sub-arches, the running kernel version, and the container's *bounding* capability set
(e.g. ``mount``/``unshare``/``bpf`` are allowed only with CAP_SYS_ADMIN, ``reboot`` only with
CAP_SYS_BOOT, ``clone`` with namespace flags is refused without CAP_SYS_ADMIN).
"""

from hull import osfast as os

_DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "seccomp-default.json")

# os.uname().machine -> the arch names used in the profile (Docker's, from GOARCH).
_MACHINE = {
    "x86_64": "amd64", "i386": "x86", "i686": "x86", "aarch64": "arm64", "armv7l": "arm",
    "armv8l": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "s390": "s390",
    "riscv64": "riscv64", "mips64": "mips64", "loongarch64": "loong64",
}

_profile = None


def profile():
    """The raw hull profile data (cached)."""
    global _profile
    if _profile is None:
        import json
        with open(_DATA) as f:
            _profile = json.load(f)
    return _profile


def native_arch(machine=None):
    machine = machine or os.uname().machine
    return _MACHINE.get(machine, machine)


def _kernel_version(release=None):
    release = release or os.uname().release
    parts = []
    for p in release.split("-")[0].split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit()) or "0"
        parts.append(int(digits))
    while len(parts) < 2:
        parts.append(0)
    return tuple(parts)


def _ge_kernel(min_kernel, release):
    return _kernel_version(release) >= _kernel_version(min_kernel)


def _applies(rule, caps, arch, release):
    inc = rule.get("if") or {}
    exc = rule.get("unless") or {}
    if inc.get("arch") and arch not in inc["arch"]:
        return False
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("minKernel") and not _ge_kernel(inc["minKernel"], release):
        return False
    if exc.get("arch") and arch in exc["arch"]:
        return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    if exc.get("minKernel") and _ge_kernel(exc["minKernel"], release):
        return False
    return True


def default_seccomp(capabilities, arch=None, kernel_release=None):
    """Docker's default profile as an OCI `linux.seccomp` object for a container whose bounding
    capability set is `capabilities` (list of "CAP_*" names). `arch` ("amd64", ...) and
    `kernel_release` ("6.18.4") default to this host's."""
    data = profile()
    caps = set(capabilities or ())
    arch = arch or native_arch()
    release = kernel_release or os.uname().release
    syscalls = [{"names": list(data["allow"]), "action": "SCMP_ACT_ALLOW"}]
    for rule in data["rules"]:
        if not _applies(rule, caps, arch, release):
            continue
        out = {"names": list(rule["names"]), "action": rule["action"]}
        if "errnoRet" in rule:
            out["errnoRet"] = rule["errnoRet"]
        if "args" in rule:
            out["args"] = [dict(a) for a in rule["args"]]
        syscalls.append(out)
    result = {
        "defaultAction": data["defaultAction"],
        "defaultErrnoRet": data["defaultErrnoRet"],
        "architectures": list(data["archMap"].get(arch, ())),
        "syscalls": syscalls,
    }
    if not result["architectures"]:
        del result["architectures"]
    return result


def allowed_names(seccomp):
    """Names a resolved profile allows unconditionally (rules with no args), for tests/tools."""
    out = set()
    for rule in seccomp.get("syscalls") or ():
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args"):
            out.update(rule["names"])
    return out
