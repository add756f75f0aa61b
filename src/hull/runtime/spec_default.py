"""The default config.json that `hull-runtime spec` writes, shaped like `runc spec`.

Same structure and defaults as runc 1.1 (terminal, `sh`, PATH/TERM, the three capabilities,
RLIMIT_NOFILE 1024, noNewPrivileges, read-only root, proc/dev/devpts/shm/mqueue/sysfs/cgroup
mounts, deny-all device cgroup), with these differences on purpose:

- hostname "hull"; ociVersion is the runtime-spec version hull implements;
- maskedPaths/readonlyPaths are Docker's default lists (runc's plus /sys/devices/virtual/powercap);
- a cgroup namespace is requested (as Docker does on cgroup v2), so /sys/fs/cgroup shows the
  container's own cgroup;
- rootless: a user namespace mapping the caller's uid/gid to 0, no network namespace (sysfs is
  bind-mounted from the host since a fresh sysfs needs its own netns), no `gid=5` on devpts
  (that gid is not mapped), no cgroup mount and no `linux.resources` (an unprivileged caller
  cannot manage cgroups), as `runc spec --rootless` does for the last three.

`with_docker_seccomp=True` adds `linux.seccomp` from `hull.runtime.seccomp_profile`.
"""

from hull import osfast as os

from hull import OCI_VERSION

DEFAULT_CAPS = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


def _mounts(rootless):
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        devpts.append("gid=5")
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ]
    if rootless:
        mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                       "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    else:
        mounts.append({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                       "options": ["nosuid", "noexec", "nodev", "ro"]})
        mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    return mounts


def default_spec(rootless=False, args=None, *, terminal=True, with_docker_seccomp=False):
    """A fresh config.json dict like `runc spec` (`--rootless` with rootless=True).

    args: the process arguments (default ["sh"]). with_docker_seccomp: also set linux.seccomp
    to Docker's default profile for the default capabilities (needs hull.runtime.seccomp_profile).
    """
    caps = list(DEFAULT_CAPS)
    process = {
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": list(args) if args else ["sh"],
        "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {s: list(caps) for s in ("bounding", "effective", "permitted", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    }
    if rootless:
        namespaces = ["pid", "ipc", "uts", "mount", "cgroup", "user"]
    else:
        namespaces = ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    linux = {}
    if rootless:
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    linux["namespaces"] = [{"type": t} for t in namespaces]
    linux["maskedPaths"] = list(MASKED_PATHS)
    linux["readonlyPaths"] = list(READONLY_PATHS)
    if with_docker_seccomp:
        from hull.runtime.seccomp_profile import default_seccomp

        linux["seccomp"] = default_seccomp(caps)
    return {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "hull",
        "mounts": _mounts(rootless),
        "linux": linux,
    }
