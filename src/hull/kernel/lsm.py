"""Linux Security Modules: which are active, and AppArmor / SELinux for a container.

OCI fields: ``process.apparmorProfile``, ``process.selinuxLabel`` and ``linux.mountLabel``.
This host runs lockdown, capability, landlock and bpf only, so a requested AppArmor profile or
SELinux label is an error ("AppArmor is not enabled on this kernel") rather than silently
ignored; where the LSM exists, ``apply(process)`` asks the kernel to switch on the next execve
(as runc does), and ``mount_label_option()`` gives the ``context=`` mount option.
AppArmor's ``unconfined`` needs nothing and is accepted everywhere.
"""

from hull import osfast as os

from hull.errors import KernelError, SpecError

_LSM_FILE = "/sys/kernel/security/lsm"


def active(lsm_file=_LSM_FILE):
    """Names of the active LSMs. Reads securityfs' list when it is mounted, else probes
    AppArmor's module parameter, selinuxfs and Landlock."""
    try:
        with open(lsm_file) as f:
            return [n for n in f.read().strip().split(",") if n]
    except OSError:
        pass
    found = []
    if _apparmor_probe():
        found.append("apparmor")
    if _selinux_probe():
        found.append("selinux")
    from hull.kernel import landlock
    if landlock.abi():
        found.append("landlock")
    return found


def _apparmor_probe():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def _selinux_probe():
    return os.path.exists("/sys/fs/selinux/enforce")


def apparmor_enabled(lsms=None):
    return "apparmor" in (active() if lsms is None else lsms)


def selinux_enabled(lsms=None):
    return "selinux" in (active() if lsms is None else lsms)


def validate(spec, lsms=None):
    """Raise SpecError if the spec asks for an LSM this kernel does not run."""
    proc = spec.get("process") or {}
    linux = spec.get("linux") or {}
    profile = proc.get("apparmorProfile")
    label = proc.get("selinuxLabel")
    mount_label = linux.get("mountLabel")
    if not (profile or label or mount_label):
        return
    lsms = active() if lsms is None else lsms
    if profile and profile != "unconfined" and not apparmor_enabled(lsms):
        raise SpecError("process.apparmorProfile",
                        f"AppArmor is not enabled on this kernel (active LSMs: {', '.join(lsms) or 'none'}); "
                        f"remove the profile {profile!r} or run on a host with AppArmor")
    if label and not selinux_enabled(lsms):
        raise SpecError("process.selinuxLabel",
                        f"SELinux is not enabled on this kernel (active LSMs: {', '.join(lsms) or 'none'}); "
                        "remove the label or run on a host with SELinux")
    if mount_label and not selinux_enabled(lsms):
        raise SpecError("linux.mountLabel",
                        f"SELinux is not enabled on this kernel (active LSMs: {', '.join(lsms) or 'none'}); "
                        "remove linux.mountLabel or run on a host with SELinux")


def _write_attr(names, value):
    for name in names:
        path = f"/proc/thread-self/attr/{name}"
        if not os.path.exists(path):
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
            return
        except OSError as e:
            raise KernelError(e.errno, "write", path, f"cannot set {value!r}") from None
    raise KernelError(2, "write", f"/proc/thread-self/attr/{names[-1]}", "the LSM interface is missing")


def apply(process):
    """In the container init, just before execve: switch to the AppArmor profile / SELinux
    label on exec. Call validate() first; does nothing when neither is set."""
    profile = process.get("apparmorProfile")
    if profile and profile != "unconfined":
        _write_attr(["apparmor/exec", "exec"], f"exec {profile}")
    label = process.get("selinuxLabel")
    if label:
        _write_attr(["selinux/exec", "exec"], label)
        try:
            _write_attr(["selinux/keycreate", "keycreate"], label)
        except KernelError:
            pass  # keyrings label is best effort, as in runc


def mount_label_option(label):
    """The mount data option that labels a mount with `linux.mountLabel` ('' when unset)."""
    return f'context="{label}"' if label else ""
