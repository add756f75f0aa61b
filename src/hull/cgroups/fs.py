"""cgroupfs file access shared by the v1 and v2 managers.

The cgroupfs root is injectable (`root=`): unit tests point it at a tmp tree. On a fake tree
(`fake=True`) files are created on write; on the real cgroupfs a missing file means the kernel
does not have that knob, and the caller gets an error naming it.
"""

import errno
from hull import osfast as os
import time

from hull.cgroups import DEFAULT_ROOT, FORBIDDEN  # noqa: F401 - fs.FORBIDDEN for its users
from hull.errors import HullError, KernelError


class Unsupported(HullError):
    """A resource the host's cgroups do not offer (controller not mounted, file missing)."""


def read(dirpath, name, default=None):
    try:
        with open(os.path.join(dirpath, name)) as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        if default is not None:
            return default
        raise
    except OSError as e:
        if default is not None and e.errno in (errno.ENODEV, errno.EOPNOTSUPP, errno.EINVAL):
            return default
        raise KernelError(e.errno, "read", os.path.join(dirpath, name)) from None


def read_int(dirpath, name, default=0):
    from hull.cgroups.convert import parse_uint
    try:
        return parse_uint(read(dirpath, name, ""))
    except ValueError:
        return default


def write(dirpath, name, value, fake=False):
    """Write one value to one cgroup file with a single write(2) (the kernel parses per write)."""
    path = os.path.join(dirpath, name)
    data = value if isinstance(value, bytes) else str(value).encode()
    flags = os.O_WRONLY | os.O_CLOEXEC
    if fake:
        flags |= os.O_CREAT | os.O_APPEND if name in _APPEND_IN_FAKE else os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        if not os.path.isdir(dirpath):
            raise KernelError(errno.ENOENT, "write", dirpath, "the cgroup does not exist") from None
        raise Unsupported(f"{name} does not exist in {dirpath}: this kernel does not support it") from None
    except OSError as e:
        raise KernelError(e.errno, "open", path) from None
    try:
        if fake and name in _APPEND_IN_FAKE:
            data += b"\n"
        os.write(fd, data)
    except OSError as e:
        raise KernelError(e.errno, "write", path, f"value {value!r}") from None
    finally:
        os.close(fd)


# Files that accumulate lines: in a fake tree each write appends so tests can see the sequence.
_APPEND_IN_FAKE = {"devices.allow", "devices.deny", "cgroup.procs", "io.max", "io.weight",
                   "io.bfq.weight", "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                   "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device",
                   "blkio.weight_device", "blkio.leaf_weight_device", "blkio.bfq.weight_device",
                   "net_prio.ifpriomap", "cgroup.subtree_control", "rdma.max"}


def check_path(path):
    """Refuse cgroup paths in the machine's own subtree."""
    for bad in FORBIDDEN:
        if path == bad or path.startswith(bad + "/"):
            raise HullError(f"cgroup path {path}: {bad} belongs to the machine's management; "
                            "hull never creates or enters cgroups there")


def mkdirs(base, path):
    """mkdir -p base+path; returns the list of directories created (outermost first)."""
    created = []
    cur = base
    for part in path.strip("/").split("/"):
        if not part:
            continue
        cur = os.path.join(cur, part)
        try:
            os.mkdir(cur, 0o755)
            created.append(cur)
        except FileExistsError:
            continue
        except OSError as e:
            raise KernelError(e.errno, "mkdir", cur) from None
    return created


def rmdir(path, timeout=2.0):
    """rmdir a cgroup, retrying EBUSY (processes still exiting); True when gone."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno not in (errno.EBUSY, errno.EAGAIN) or time.monotonic() >= deadline:
                raise KernelError(e.errno, "rmdir", path, "processes may still be in the cgroup") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def remove_cgroup(d, fake=False):
    """Remove cgroup `d` and its sub-cgroups; idempotent. One rmdir in the usual case (a leaf
    whose processes are gone); else sub-cgroups first, each retrying EBUSY. Fake trees (tests)
    hold regular files, which go first. Raises the first error."""
    if not fake:
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:
            pass
    errors = []
    for dirpath, _, files in os.walk(d, topdown=False):
        try:
            if fake:
                for name in files:
                    os.unlink(os.path.join(dirpath, name))
                os.rmdir(dirpath)
            else:
                rmdir(dirpath)
        except (KernelError, OSError) as e:
            errors.append(e)
    if errors:
        raise errors[0]


def remove_created(dirs):
    """Undo mkdirs: remove the dirs it made, deepest first, as far as they go (best effort)."""
    for d in reversed(dirs):
        try:
            rmdir(d, timeout=0.5)
        except (KernelError, OSError):
            pass


def enable_controllers(mount, path, fake=False, root_enable=frozenset()):
    """cgroup v2: enable controllers in the subtree_control of each ancestor of `path` (not the
    leaf: it holds processes, and v2 forbids controllers + processes there).

    Below the root every controller the parent passes down is enabled (as runc does). At the
    root — the host's — only `root_enable` is added (what the spec needs), never anything else.
    Returns the set of controllers the leaf gets.
    """
    parts = [p for p in path.strip("/").split("/") if p]
    chain = [mount] + [mount + "/" + "/".join(parts[:i]) for i in range(1, len(parts))]
    enabled = None
    for i, d in enumerate(chain):
        avail = set(read(d, "cgroup.controllers", "").split())
        if enabled is not None and not fake:
            avail &= enabled
        elif enabled is not None:
            avail = enabled  # fake sub-dirs have no cgroup.controllers: inherit
        have = set(read(d, "cgroup.subtree_control", "").split())
        want = (set(root_enable) & avail) if i == 0 else avail
        missing = sorted(want - have)
        if missing:
            try:
                write(d, "cgroup.subtree_control", " ".join("+" + c for c in missing), fake)
            except HullError:
                for c in missing:  # one by one: keep what the kernel accepts
                    try:
                        write(d, "cgroup.subtree_control", "+" + c, fake)
                    except HullError:
                        pass
            have = have | set(missing) if fake else set(read(d, "cgroup.subtree_control", "").split())
        enabled = have & avail if not fake else (have | set(missing)) & avail
    return enabled or set()


def signal_all(mgr, sig):
    """Signal every process of a manager's cgroup: freeze, signal each pid, thaw (nothing can fork
    in between); for SIGKILL repeat until the cgroup is empty. A cgroup that was already frozen
    (a paused container) stays frozen for other signals — they are delivered on resume, as with
    runc — and is thawed for SIGKILL so the kill lands."""
    import signal as _signal
    can = mgr.can_freeze()
    was_frozen = can and mgr.frozen()
    for _ in range(100):
        if not mgr.pids():
            return
        froze = False
        if can and not was_frozen:
            try:
                mgr.freeze()
                froze = True
            except HullError:
                pass
        for p in mgr.pids():
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        if froze or (was_frozen and sig == _signal.SIGKILL):
            mgr.thaw()
            was_frozen = False
        if sig != _signal.SIGKILL:
            return
        wait_until(lambda: not mgr.pids(), 0.2)
    if mgr.pids():
        raise HullError(f"processes {mgr.pids()} in cgroup {mgr.path} survive SIGKILL")


def pids_in(dirpath):
    try:
        text = read(dirpath, "cgroup.procs")
    except FileNotFoundError:
        return []
    return [int(x) for x in text.split()]


def parse_mountinfo(text, root=DEFAULT_ROOT):
    """cgroup (v1) mounts under `root` -> {subsystem: mountpoint}; named hierarchies as 'name=x'.

    A mount carrying several controllers (cpu,cpuacct) maps each of them to the same point.
    Returns (v1 dict, cgroup2 mountpoint or None).
    """
    v1 = {}
    v2 = None
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        mnt = fields[4].replace("\\040", " ")
        fstype = fields[sep + 1]
        if not (mnt == root or mnt.startswith(root + "/")):
            continue
        if fstype == "cgroup2":
            v2 = v2 or mnt
        elif fstype == "cgroup":
            opts = fields[sep + 3].split(",")
            for o in opts:
                if o in ("rw", "ro") or o.startswith(("release_agent=", "xattr", "clone_children",
                                                      "noprefix", "cpuset_v2_mode")):
                    continue
                v1.setdefault(o, mnt)
    return v1, v2


def scan_v1(root):
    """For an injected (fake) root: each directory names its controllers ('cpu,cpuacct')."""
    v1 = {}
    v2 = None
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name)
        if not os.path.isdir(p):
            continue
        if name == "unified":
            v2 = p
            continue
        target = os.path.realpath(p)
        for ctrl in os.path.basename(target).split(","):
            if ctrl == "systemd":
                ctrl = "name=systemd"
            v1.setdefault(ctrl, target)
    return v1, v2


_host_hierarchies = []  # the host's, read once per process (the zygote reads it for its workers)


def v1_hierarchies(root):
    if root == DEFAULT_ROOT:
        if not _host_hierarchies:
            with open("/proc/self/mountinfo") as f:
                _host_hierarchies.append(parse_mountinfo(f.read(), root))
        v1, v2 = _host_hierarchies[0]
        return dict(v1), v2
    return scan_v1(root)


def wait_until(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not pred():
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def check_block_devices(resources, sys_root="/sys"):
    """Every device named in linux.resources.blockIO must exist on this host."""
    from hull.errors import SpecError
    bio = resources.get("blockIO") or {}
    for key in ("weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice",
                "throttleReadIOPSDevice", "throttleWriteIOPSDevice"):
        for i, d in enumerate(bio.get(key) or []):
            dev = f"{d['major']}:{d['minor']}"
            if not os.path.exists(os.path.join(sys_root, "dev/block", dev)):
                raise SpecError(f"linux.resources.blockIO.{key}[{i}]", f"there is no block device {dev} "
                                "on this host (see /sys/dev/block or `lsblk`)")
