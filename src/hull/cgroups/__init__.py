"""cgroups for hull: mode detection, cgroupsPath resolution, and the Manager chosen from the mode.

    from hull import cgroups
    mode = cgroups.detect_mode()                 # "unified" | "hybrid" | "legacy"
    path = cgroups.resolve_path(spec_path, container_id, systemd=False)
    mgr = cgroups.manager(path)                  # v1.Manager or v2.Manager
    mgr.apply(pid); mgr.set(resources); mgr.stats(); mgr.destroy()

The Manager protocol (both implementations): prepare(), apply(pid), set(resources), pids(),
exists(), freeze(), thaw(), frozen(), kill_all(sig), destroy(), stats(), oom_killed(), paths(),
and for an init that joins its cgroup itself: cgroup2_dir(), apply_from_init(pid, in_cgroup2).

This module is on hull-runtime's hot path, imported first thing for the warm-up: stdlib only
at import; paths, v1/v2 load on first use.
"""

from hull import osfast as os

DEFAULT_ROOT = "/sys/fs/cgroup"
HULL_PARENT = "/hull"
# The machine's own cgroup (HOST-NOTES): hull never creates, enters or deletes anything there.
FORBIDDEN = ("/process_api",)
UNIFIED, HYBRID, LEGACY = "unified", "hybrid", "legacy"

_mode_cache = {}


def detect_mode(root=DEFAULT_ROOT):
    """cgroup2 at root -> "unified"; else cgroup2 at root/unified -> "hybrid"; else "legacy".

    A cgroup2 mount is known by its `cgroup.controllers`, a file only cgroup2 has (runc and
    crun ask statfs for the same answer): no ctypes, which the runtime's parent process does
    not otherwise load."""
    if root in _mode_cache:
        return _mode_cache[root]
    if _is_cgroup2(root):
        mode = UNIFIED
    else:
        mode = HYBRID if _is_cgroup2(os.path.join(root, "unified")) else LEGACY
    _mode_cache[root] = mode
    return mode


def _is_cgroup2(mount):
    return os.path.exists(os.path.join(mount, "cgroup.controllers"))


def resolve_path(cgroups_path, container_id, systemd=False):
    """linux.cgroupsPath -> an absolute cgroup path (cgroups/paths.py; loaded on first use, as
    this package is imported early)."""
    from hull.cgroups.paths import resolve_path as _resolve
    return _resolve(cgroups_path, container_id, systemd=systemd)


_warm = {"until": 0.0}


def warm_migrations(root=DEFAULT_ROOT, keep_for=0.1):
    """Start paying, in a background thread, what the first cgroup migration after a quiet
    moment waits for: an RCU grace period (the kernel's cgroup_threadgroup_rwsem; 6-20 ms
    here, during which the kernel holds cgroup_mutex). The thread writes this process's pid
    to the cgroup.procs of the cgroup2 group it is already in — a move that moves nothing
    but takes that lock — and again every few ms, so that moves stay fast (they are only for
    one grace period after the last one) until the container's own move is made
    (warm_migrations_done) or `keep_for` seconds have passed.
    Best effort: skipped when there is no cgroup2 mount or our group is the machine's own.
    The thread only writes that file (nothing it could hold across the caller's fork).
    Only where a move of a process is to come (exec's process; the init on a cgroup2-only host
    or with a user namespace): elsewhere a container's init joins its cgroup without one
    (lifecycle._create_in), and a move waiting here would hold cgroup_mutex over its mkdirs.
    There bin/hull-runtime makes the first move itself, ~10 ms sooner; this thread then mostly
    keeps moves fast."""
    import time
    if _warm["until"] > time.monotonic():
        return  # running already
    procs = _own_procs_file(root)
    if procs:
        import _thread
        _warm["until"] = time.monotonic() + keep_for
        try:
            _thread.start_new_thread(_move_self, (procs,))
        except RuntimeError:
            pass  # no thread: no head start


def warm_migrations_done():
    """The moves that needed it are made: the warm-up thread stops."""
    _warm["until"] = 0.0


def _own_procs_file(root):
    """cgroup.procs of the cgroup2 group this process is in; None without a cgroup2 mount or
    when that group is the machine's own (FORBIDDEN). The mount is found by its
    cgroup.controllers, as in detect_mode: the sooner the move starts, the sooner its wait is
    over."""
    try:
        with open("/proc/self/cgroup") as f:
            path = next((line[3:].strip() for line in f if line.startswith("0::")), None)
    except OSError:
        return None
    if path is None or any(path == bad or path.startswith(bad + "/") for bad in FORBIDDEN):
        return None
    for mount in (root, os.path.join(root, "unified")):  # unified, then hybrid
        if _is_cgroup2(mount):
            return mount + path.rstrip("/") + "/cgroup.procs"
    return None


def _move_self(procs):
    import time
    try:
        fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        try:
            pid = b"%d" % os.getpid()
            os.write(fd, pid)
            while time.monotonic() < _warm["until"]:
                time.sleep(0.004)
                os.write(fd, pid)
        finally:
            os.close(fd)
    except OSError:
        pass  # no permission (v2: our group has children), no unified mount: no head start


def manager(path, root=DEFAULT_ROOT, mode=None, fake=False):
    """The Manager for `path` on this host: v2 when unified, v1 (with the unified side in hybrid
    mode) otherwise. `root`/`mode`/`fake` let tests point it at a tmp tree."""
    mode = mode or detect_mode(root)
    if mode == UNIFIED:
        from hull.cgroups.v2 import Manager
        return Manager(path, root=root, fake=fake)
    from hull.cgroups.v1 import Manager
    return Manager(path, root=root, mode=mode, fake=fake)


def validate(resources):
    """Check an OCI linux.resources dict without touching the host (raises SpecError)."""
    from hull.cgroups.resources import validate as _v
    return _v(resources)


def resources_from_update_flags(**flags):
    """runc `update` flags (memory="100M", cpu_quota=50000, pids_limit=20, ...) -> a partial
    linux.resources dict holding only what was given."""
    from hull.cgroups.update import resources_from_update_flags as _r
    return _r(**flags)
