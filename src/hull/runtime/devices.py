"""Device nodes in the container's /dev: the default set, linux.devices, and /dev symlinks.

Outside a user namespace nodes are made with mknod; inside one mknod is not allowed, so the
host's node is bind-mounted instead (what runc does for rootless containers).

`cgroup_rules` is the runtime parent's part; it runs before the parent loads ctypes (if at
all), so the node-making functions import kernel.mounts themselves.
"""

from hull import osfast as os
import _stat as stat  # stat.py only re-exports the C module

from hull.errors import KernelError

# (path, type, major, minor, mode) — what runc/docker always give a container.
DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3, 0o666),
    ("/dev/zero", "c", 1, 5, 0o666),
    ("/dev/full", "c", 1, 7, 0o666),
    ("/dev/random", "c", 1, 8, 0o666),
    ("/dev/urandom", "c", 1, 9, 0o666),
    ("/dev/tty", "c", 5, 0, 0o666),
)

SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def device_list(spec_devices):
    """Default devices plus linux.devices (a spec entry replaces a default at the same path)."""
    result = {d[0]: {"path": d[0], "type": d[1], "major": d[2], "minor": d[3], "fileMode": d[4],
                     "uid": 0, "gid": 0} for d in DEFAULT_DEVICES}
    for d in spec_devices or ():
        result[d["path"]] = d
    return list(result.values())


def create_devices(rootfs, spec_devices, in_userns):
    from hull.kernel import mounts
    umask = os.umask(0)  # the nodes get their fileMode as it is, with no chmod after each
    dev_dir = mounts.secure_join(rootfs, "/dev")  # resolved once for the nodes right in /dev
    try:
        for dev in device_list(spec_devices):
            head, _, name = dev["path"].rpartition("/")
            dest = f"{dev_dir}/{name}"
            if head != "/dev" or name in ("", ".", "..") or os.path.islink(dest):
                dest = mounts.secure_join(rootfs, dev["path"])  # a link resolves inside rootfs
            parent = os.path.dirname(dest)
            if not os.path.isdir(parent):
                os.makedirs(parent)
            if in_userns:
                _bind_host_device(dev["path"], dest)
            else:
                _mknod(dev, dest)
    finally:
        os.umask(umask)
    for target, link in SYMLINKS:  # all right in /dev
        path = f"{dev_dir}/{link[len('/dev/'):]}"
        if not os.path.lexists(path):
            os.symlink(target, path)


def _mknod(dev, dest):
    """The node, with umask 0 (create_devices): mode as given, owned by us unless told."""
    mode = dev.get("fileMode", 0o666) & 0o7777
    kind = _TYPES[dev["type"]]
    if os.path.lexists(dest):
        os.unlink(dest)
    try:
        os.mknod(dest, mode | kind, os.makedev(dev.get("major", 0), dev.get("minor", 0))
                 if kind != stat.S_IFIFO else 0)
        uid, gid = dev.get("uid", 0) or 0, dev.get("gid", 0) or 0
        if (uid, gid) != (os.geteuid(), os.getegid()):
            os.chown(dest, uid, gid)
            if mode & 0o6000:
                os.chmod(dest, mode)  # chown cleared the setuid/setgid bits
    except OSError as e:
        raise KernelError(e.errno, "mknod", dev["path"]) from None


def _bind_host_device(host_path, dest):
    if not os.path.exists(host_path):
        return
    from hull.kernel import mounts
    mounts.make_mountpoint(dest, is_dir=False)
    mounts.mount(host_path, dest, None, mounts.MS_BIND)


def setup_ptmx(rootfs):
    """/dev/ptmx -> pts/ptmx so each container uses its own devpts instance."""
    from hull.kernel import mounts
    ptmx = mounts.secure_join(rootfs, "/dev/ptmx")
    if os.path.lexists(ptmx):
        os.unlink(ptmx)
    os.symlink("pts/ptmx", ptmx)


# Device-cgroup rules every container gets after the spec's own (runc's AllowedDevices):
# mknod of anything, the default nodes, and the pty devices.
ALWAYS_ALLOWED = (
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
)


def cgroup_rules(resources_devices, spec_devices):
    """The device rules to program into the cgroup: the spec's, then the always-allowed ones,
    then access to every device listed in linux.devices."""
    rules = list(resources_devices or ())
    rules += [dict(r) for r in ALWAYS_ALLOWED]
    for d in spec_devices or ():
        if d["type"] == "p":
            continue  # a fifo is not a device: the device cgroup has no rule for it (as runc)
        rules.append({"allow": True, "type": "c" if d["type"] == "u" else d["type"],
                      "major": d.get("major"), "minor": d.get("minor"), "access": "rwm"})
    return rules
