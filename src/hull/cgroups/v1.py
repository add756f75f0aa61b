"""cgroup v1 manager: one directory per hierarchy (cpu, cpuacct, memory, pids, ...).

On a hybrid host (v1 controllers plus a cgroup2 mount at <root>/unified, like this one) the
container also gets a directory in the unified hierarchy, as runc does: it gives `cgroup.kill`
for kill_all, a place for `linux.resources.unified` keys, and controllers that are only on the
v2 side (hugetlb here).

`plan(resources)` turns linux.resources into (controller, file, value, json_path, optional)
writes — pure, unit-tested; the Manager checks the host has the controllers, then writes.
"""

import errno
from hull import osfast as os
import _signal  # not signal.py: its enums cost start-up on the runtime path

from hull.cgroups import fs
from hull.cgroups.fs import Unsupported
from hull.errors import HullError, KernelError

P = "linux.resources"
# Where pids()/exists() look first.
PRIMARY = ("pids", "freezer", "memory", "devices", "cpu", "cpuacct", "cpuset", "blkio", "name=systemd")


def _dev_rule_v1(typ, major, minor, access):
    if typ == "a" and major == -1 and minor == -1 and access == "rwm":
        return "a"
    ma = "*" if major == -1 else str(major)
    mi = "*" if minor == -1 else str(minor)
    return f"{typ} {ma}:{mi} {access}"


def plan(resources):
    """linux.resources -> ordered list of (controller, file, value, json_path, optional).

    `file` may be a tuple of alternatives (the first that exists is used). Values follow
    runc's rules: 0 means "leave alone" for limits, -1 unlimited.
    """
    from hull.cgroups import convert
    from hull.cgroups.resources import device_rule, validate
    validate(resources)
    w = []
    mem = resources.get("memory") or {}
    mp = f"{P}.memory"
    limit = mem.get("limit") or 0
    swap = mem.get("swap") or 0
    if limit:
        w.append(("memory", "memory.limit_in_bytes", str(limit), f"{mp}.limit", False))
    if limit == -1 and not swap:
        # unlimited memory with swap unset: unlimited swap too (where swap accounting exists)
        w.append(("memory", "memory.memsw.limit_in_bytes", "-1", f"{mp}.swap", True))
    elif swap:
        w.append(("memory", "memory.memsw.limit_in_bytes", str(swap), f"{mp}.swap", swap == -1))
    if mem.get("reservation"):
        w.append(("memory", "memory.soft_limit_in_bytes", str(mem["reservation"]), f"{mp}.reservation", False))
    if mem.get("kernel"):
        # deprecated by the kernel (5.4+) and by the spec ("runtimes MAY ignore"): best effort
        w.append(("memory", "memory.kmem.limit_in_bytes", str(mem["kernel"]), f"{mp}.kernel", True))
    if mem.get("kernelTCP"):
        w.append(("memory", "memory.kmem.tcp.limit_in_bytes", str(mem["kernelTCP"]), f"{mp}.kernelTCP", False))
    sw = mem.get("swappiness")
    if sw is not None and sw != -1:
        w.append(("memory", "memory.swappiness", str(sw), f"{mp}.swappiness", False))
    if mem.get("disableOOMKiller"):
        w.append(("memory", "memory.oom_control", "1", f"{mp}.disableOOMKiller", False))
    if mem.get("useHierarchy"):
        w.append(("memory", "memory.use_hierarchy", "1", f"{mp}.useHierarchy", "ensure"))

    cpu = resources.get("cpu") or {}
    cp = f"{P}.cpu"
    if cpu.get("shares"):
        w.append(("cpu", "cpu.shares", str(cpu["shares"]), f"{cp}.shares", False))
    if cpu.get("period"):
        w.append(("cpu", "cpu.cfs_period_us", str(cpu["period"]), f"{cp}.period", False))
    if cpu.get("quota"):
        w.append(("cpu", "cpu.cfs_quota_us", str(cpu["quota"] if cpu["quota"] > 0 else -1), f"{cp}.quota", False))
    if cpu.get("burst") is not None and (cpu.get("burst") or cpu.get("quota")):
        w.append(("cpu", "cpu.cfs_burst_us", str(cpu["burst"]), f"{cp}.burst", False))
    if cpu.get("realtimePeriod"):
        w.append(("cpu", "cpu.rt_period_us", str(cpu["realtimePeriod"]), f"{cp}.realtimePeriod", False))
    if cpu.get("realtimeRuntime"):
        w.append(("cpu", "cpu.rt_runtime_us", str(cpu["realtimeRuntime"]), f"{cp}.realtimeRuntime", False))
    w += convert.same_in_both(resources)

    bio = resources.get("blockIO") or {}
    bp = f"{P}.blockIO"
    if bio.get("weight"):
        w.append(("blkio", ("blkio.weight", "blkio.bfq.weight"), str(bio["weight"]), f"{bp}.weight", False))
    if bio.get("leafWeight"):
        w.append(("blkio", "blkio.leaf_weight", str(bio["leafWeight"]), f"{bp}.leafWeight", False))
    for i, wd in enumerate(bio.get("weightDevice") or []):
        dev = f"{wd['major']}:{wd['minor']}"
        if wd.get("weight"):
            w.append(("blkio", ("blkio.weight_device", "blkio.bfq.weight_device"), f"{dev} {wd['weight']}",
                      f"{bp}.weightDevice[{i}].weight", False))
        if wd.get("leafWeight"):
            w.append(("blkio", "blkio.leaf_weight_device", f"{dev} {wd['leafWeight']}",
                      f"{bp}.weightDevice[{i}].leafWeight", False))
    for key, fname in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                       ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                       ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                       ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for i, td in enumerate(bio.get(key) or []):
            w.append(("blkio", fname, f"{td['major']}:{td['minor']} {td['rate']}", f"{bp}.{key}[{i}]", False))

    for i, h in enumerate(resources.get("hugepageLimits") or []):
        w.append(("hugetlb", f"hugetlb.{h['pageSize']}.limit_in_bytes", str(h["limit"]),
                  f"{P}.hugepageLimits[{i}]", False))

    net = resources.get("network") or {}
    if net.get("classID") is not None:
        w.append(("net_cls", "net_cls.classid", str(net["classID"]), f"{P}.network.classID", False))
    for i, pr in enumerate(net.get("priorities") or []):
        w.append(("net_prio", "net_prio.ifpriomap", f"{pr['name']} {pr.get('priority') or 0}",
                  f"{P}.network.priorities[{i}]", False))

    for name, r in (resources.get("rdma") or {}).items():
        hh = r.get("hcaHandles")
        ho = r.get("hcaObjects")
        if hh is None and ho is None:
            continue
        val = f"{name} hca_handle={'max' if hh is None else hh} hca_object={'max' if ho is None else ho}"
        w.append(("rdma", "rdma.max", val, f"{P}.rdma.{name}", False))

    for k, v in (resources.get("unified") or {}).items():
        w.append(("unified", k, v, f"{P}.unified.{k}", False))

    devices = resources.get("devices")
    if devices is not None:
        w.append(("devices", "devices.deny", "a", f"{P}.devices", False))
        for i, d in enumerate(devices):
            allow, typ, major, minor, access = device_rule(d, f"{P}.devices[{i}]")
            w.append(("devices", "devices.allow" if allow else "devices.deny",
                      _dev_rule_v1(typ, major, minor, access), f"{P}.devices[{i}]", False))
    return w


class Manager:
    version = 1

    def __init__(self, path, root=fs.DEFAULT_ROOT, mode="hybrid", fake=False, sys_root="/sys"):
        fs.check_path(path)
        self.path = path
        self.root = root
        self.mode = mode
        self.fake = fake
        self.sys_root = sys_root
        hier, unified = fs.v1_hierarchies(root)
        self.hierarchies = hier  # subsystem -> mountpoint
        self.unified_mount = unified if mode == "hybrid" else None
        self.warnings = []
        self._made = False  # the dirs exist: made by this manager's set() or apply()

    # -- paths ------------------------------------------------------------------------------
    def dir(self, subsystem):
        mnt = self.hierarchies.get(subsystem)
        return None if mnt is None else mnt + self.path

    @property
    def unified_dir(self):
        return None if self.unified_mount is None else self.unified_mount + self.path

    def paths(self):
        """{subsystem: dir}, plus "" -> the unified dir in hybrid mode (runc's layout)."""
        out = {s: m + self.path for s, m in self.hierarchies.items()}
        if self.unified_mount:
            out[""] = self.unified_dir
        return out

    def _all_dirs(self):
        """Distinct (mountpoint, dir) pairs (cpu,cpuacct co-mounted share one)."""
        seen, out = set(), []
        for s in sorted(self.hierarchies, key=lambda s: (s not in PRIMARY, s)):
            m = self.hierarchies[s]
            if m not in seen:
                seen.add(m)
                out.append((m, m + self.path))
        if self.unified_mount:
            out.append((self.unified_mount, self.unified_dir))
        return out

    def _primary(self):
        for s in PRIMARY:
            if s in self.hierarchies:
                return self.dir(s)
        for m, d in self._all_dirs():
            return d
        raise Unsupported("no cgroup v1 hierarchy is mounted under " + self.root)

    # -- lifecycle --------------------------------------------------------------------------
    def _create(self):
        """mkdir in every hierarchy, once per manager (apply and set both ask); returns the
        dirs created now (for cleanup on failure)."""
        if self._made:
            return []
        created = []
        try:
            for mnt, _ in self._all_dirs():
                new = fs.mkdirs(mnt, self.path)
                created += new
                if mnt == self.hierarchies.get("cpuset") and new:
                    self._init_cpuset(new)
                if mnt == self.unified_mount and new:
                    # pass down what the host enabled at the unified root (hugetlb here)
                    fs.enable_controllers(mnt, self.path, self.fake)
        except BaseException:
            fs.remove_created(created)
            raise
        self._made = True
        return created

    def _init_cpuset(self, new_dirs):
        """A new v1 cpuset has empty cpus/mems and refuses tasks: copy the parent's, top down."""
        for d in new_dirs:
            parent = os.path.dirname(d)
            for f in ("cpuset.cpus", "cpuset.mems"):
                cur = fs.read(d, f, "").strip()
                if not cur:
                    val = fs.read(parent, f, "").strip()
                    if val:
                        fs.write(d, f, val, self.fake)

    def prepare(self):
        """Make the cgroup's dirs now, ahead of set() and apply() (the mkdirs are most of the
        time those take on v1)."""
        self._create()

    def apply(self, pid):
        """Create the cgroup in every hierarchy and move `pid` into it."""
        self._move(pid, [d for _, d in self._all_dirs()])

    def _move(self, pid, dirs):
        """Create the cgroup, then move `pid` into `dirs` (undoing the mkdirs on failure)."""
        created = self._create()
        try:
            for d in dirs:
                fs.write(d, "cgroup.procs", str(pid), self.fake)
        except BaseException:
            fs.remove_created(created)
            raise

    def cgroup2_dir(self):
        """The dir a child can be cloned into (CLONE_INTO_CGROUP): the unified side's."""
        return self.unified_dir if self.unified_mount else None

    def apply_from_init(self, pid, in_cgroup2):
        """apply(), when the init moves itself into the v1 dirs (InitContext.join_cgroup; a
        thread's own move needs no RCU grace period, a process's does): the cgroup2 side here,
        unless the init was cloned into it. Returns the v1 `tasks` files the init writes "0"
        to."""
        self._move(pid, [self.unified_dir] if self.unified_mount and not in_cgroup2 else [])
        return [d + "/tasks" for m, d in self._all_dirs() if m != self.unified_mount]

    def exists(self):
        try:
            return os.path.isdir(self._primary())
        except Unsupported:
            return False

    def pids(self):
        return fs.pids_in(self._primary())

    def destroy(self):
        """Remove the cgroup (and any sub-cgroups) from every hierarchy; idempotent."""
        self._made = False
        errors = []
        for _, d in self._all_dirs():
            try:
                fs.remove_cgroup(d, self.fake)
            except (KernelError, OSError) as e:
                errors.append(e)
        if errors:
            raise errors[0]

    # -- resources --------------------------------------------------------------------------
    def _route(self, ctrl):
        """Which directory gets a controller's files; None when the host lacks it."""
        if ctrl == "unified":
            return self.unified_dir
        d = self.dir(ctrl)
        if d is None and self.unified_mount and ctrl in self._unified_controllers():
            return self.unified_dir
        return d

    def _unified_controllers(self):
        """Controllers the unified side can give a container: those the host enabled in the
        unified root's cgroup.subtree_control (hull does not change the host's root)."""
        if not self.unified_mount:
            return set()
        return set(fs.read(self.unified_mount, "cgroup.subtree_control", "").split())

    def check(self, resources):
        """Validate and plan; raise before anything is created if the host lacks a controller."""
        writes = plan(resources)
        out = []
        for ctrl, fname, value, jpath, optional in writes:
            d = self._route(ctrl)
            if d is None:
                if optional is True:
                    continue
                if ctrl == "unified":
                    raise Unsupported(f"{jpath}: linux.resources.unified needs cgroup v2; this host has "
                                      f"only cgroup v1 ({self.mode} mode without a unified mount)")
                have = ", ".join(sorted(self.hierarchies))
                extra = ""
                if ctrl == "hugetlb" and self.unified_mount:
                    extra = (" and it is not enabled in the unified hierarchy's cgroup.subtree_control "
                             f"({self.unified_mount})")
                raise Unsupported(f"{jpath}: the {ctrl} cgroup controller is not available on this host "
                                  f"(mounted v1 controllers: {have}){extra}")
            if ctrl == "hugetlb" and d == self.unified_dir:
                fname = fname.replace(".limit_in_bytes", ".max")
            out.append((ctrl, d, fname, value, jpath, optional))
        self._check_block_devices(resources)
        return out

    def _check_block_devices(self, resources):
        if not (self.fake and self.sys_root == "/sys"):
            fs.check_block_devices(resources, self.sys_root)

    def set(self, resources):
        """Validate linux.resources, create the cgroup if needed, write every limit."""
        writes = self.check(resources or {})
        if not writes:
            return
        created = self._create()
        try:
            self._write_all(writes)
        except BaseException:
            if created and not any(fs.pids_in(d) for d in created if os.path.isdir(d)):
                fs.remove_created(created)
            raise

    def _write_all(self, writes):
        writes = self._order_memory(writes)
        i = 0
        while i < len(writes):
            ctrl, d, fname, value, jpath, optional = writes[i]
            if fname == "cpu.cfs_period_us" and i + 1 < len(writes) and writes[i + 1][2] == "cpu.cfs_quota_us":
                # period first, quota second — unless the kernel rejects that order (EINVAL with the
                # old quota), then the other way round (runc does the same)
                try:
                    self._write(writes[i])
                    self._write(writes[i + 1])
                except HullError:
                    self._write(writes[i + 1])
                    self._write(writes[i])
                i += 2
                continue
            self._write(writes[i])
            i += 1

    def _order_memory(self, writes):
        """Memory limit vs memsw: the kernel wants memsw >= limit at every step."""
        names = [w[2] for w in writes]
        if "memory.limit_in_bytes" in names and "memory.memsw.limit_in_bytes" in names:
            li, si = names.index("memory.limit_in_bytes"), names.index("memory.memsw.limit_in_bytes")
            d = writes[li][1]
            swap = int(writes[si][3])
            try:
                cur = int(fs.read(d, "memory.limit_in_bytes", "0").strip() or 0)
            except ValueError:
                cur = 0
            if swap == -1 or (cur and cur < swap):
                writes = list(writes)
                sw = writes.pop(si)
                writes.insert(li, sw)  # swap first: raising both
        return writes

    def _write(self, w):
        ctrl, d, fname, value, jpath, optional = w
        if optional == "ensure":
            if fs.read(d, fname, "").strip() == value:
                return
        names = fname if isinstance(fname, tuple) else (fname,)
        if not self.fake:
            avail = [n for n in names if os.path.exists(os.path.join(d, n))]
            if not avail:
                if optional is True or optional == "ensure":
                    self.warnings.append(f"{jpath}: {names[0]} is not supported by this kernel; ignored")
                    return
                why = {"blkio.weight": "the block I/O scheduler offers no proportional weights "
                                       "(needs BFQ: echo bfq > /sys/block/<dev>/queue/scheduler)"}
                raise Unsupported(f"{jpath}: {' / '.join(names)} does not exist in {d}: this kernel "
                                  f"does not support it{'; ' + why[names[0]] if names[0] in why else ''}")
            names = avail
        try:
            fs.write(d, names[0], value, self.fake)
        except KernelError as e:
            if optional is True and e.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTSUP):
                self.warnings.append(f"{jpath}: {names[0]} rejected by the kernel ({e}); ignored")
                return
            raise self._explain(e, d, names[0], value, jpath) from None

    def _explain(self, e, d, fname, value, jpath):
        msg = f"{jpath}: cannot set {fname} to {value} in {d}: {os.strerror(e.errno)}"
        if fname == "memory.limit_in_bytes" and e.errno == errno.EBUSY:
            usage = fs.read(d, "memory.usage_in_bytes", "?").strip()
            msg += f" (current usage {usage} is above the new limit)"
        elif fname == "memory.memsw.limit_in_bytes" and e.errno == errno.EINVAL:
            msg += " (memory+swap must be >= the memory limit)"
        elif fname.startswith("cpuset.") and e.errno in (errno.EINVAL, errno.ERANGE):
            allowed = fs.read(os.path.dirname(d), fname.replace("cpuset.", "cpuset.effective_"), "?").strip()
            msg += f" (the parent cgroup allows {allowed})"
        elif fname.startswith("cpu.rt_") and e.errno == errno.EINVAL:
            msg += " (the parent cgroup has no realtime budget in cpu.rt_runtime_us)"
        elif fname == "memory.limit_in_bytes" and e.errno == errno.EINVAL:
            memsw = fs.read(d, "memory.memsw.limit_in_bytes", "").strip()
            if memsw:
                msg += f" (memory+swap limit is {memsw}: raise linux.resources.memory.swap / --memory-swap too)"
        elif fname in ("devices.allow",) and e.errno == errno.EPERM:
            msg += " (the parent cgroup does not allow this device)"
        return HullError(msg)

    # -- freezer ----------------------------------------------------------------------------
    def _freezer(self):
        d = self.dir("freezer")
        if d is None:
            raise Unsupported("pause/resume needs the freezer cgroup controller, which is not mounted")
        return d

    def freeze(self):
        d = self._freezer()
        for _ in range(10):
            fs.write(d, "freezer.state", "FROZEN", self.fake)
            if self.fake or fs.wait_until(lambda: fs.read(d, "freezer.state", "").strip() == "FROZEN", 1.0):
                return
            # stuck in FREEZING (a task in an uninterruptible wait): thaw and try again
            fs.write(d, "freezer.state", "THAWED", self.fake)
        raise HullError(f"cannot freeze {d}: tasks stay in FREEZING; try again")

    def thaw(self):
        d = self._freezer()
        fs.write(d, "freezer.state", "THAWED", self.fake)
        if not self.fake:
            fs.wait_until(lambda: fs.read(d, "freezer.state", "").strip() == "THAWED", 5.0)

    def can_freeze(self):
        return self.dir("freezer") is not None

    def frozen(self):
        d = self.dir("freezer")
        if d is None:
            return False
        return fs.read(d, "freezer.state", "").strip() == "FROZEN"

    # -- signals ----------------------------------------------------------------------------
    def kill_all(self, sig=_signal.SIGKILL):
        """Signal every process; SIGKILL loops until the cgroup is empty.

        Uses cgroup.kill of the unified side when present (hybrid); otherwise freezes, signals
        each pid, thaws (so nothing forks in between)."""
        sig = int(sig)
        ud = self.unified_dir
        if (sig == _signal.SIGKILL and ud and os.path.exists(os.path.join(ud, "cgroup.kill"))
                and fs.pids_in(ud)):
            fs.write(ud, "cgroup.kill", "1", self.fake)
            if self.frozen():
                self.thaw()  # v1-frozen tasks die only once thawed
            if fs.wait_until(lambda: not self.pids(), 5.0):
                return
        fs.signal_all(self, sig)

    # -- stats ------------------------------------------------------------------------------
    def oom_count(self):
        d = self.dir("memory")
        if d is None:
            return 0
        from hull.cgroups.convert import parse_flat_keyed
        return parse_flat_keyed(fs.read(d, "memory.oom_control", "")).get("oom_kill", 0)

    def oom_killed(self):
        return self.oom_count() > 0

    def stats(self):
        from hull.cgroups.convert import parse_flat_keyed, parse_list
        from hull.cgroups.stats import empty, parse_blkio_v1
        st = empty()
        cpu = st["cpu"]
        d = self.dir("cpuacct")
        if d and os.path.isdir(d):
            cpu["usage"]["total"] = fs.read_int(d, "cpuacct.usage")
            cpu["usage"]["percpu"] = [int(x) for x in fs.read(d, "cpuacct.usage_percpu", "").split()]
            cpu["usage"]["percpu_kernel"] = [int(x) for x in fs.read(d, "cpuacct.usage_percpu_sys", "").split()]
            cpu["usage"]["percpu_user"] = [int(x) for x in fs.read(d, "cpuacct.usage_percpu_user", "").split()]
            ticks = parse_flat_keyed(fs.read(d, "cpuacct.stat", ""))
            hz = os.sysconf("SC_CLK_TCK") or 100
            cpu["usage"]["user"] = ticks.get("user", 0) * 1_000_000_000 // hz
            cpu["usage"]["kernel"] = ticks.get("system", 0) * 1_000_000_000 // hz
        d = self.dir("cpu")
        if d and os.path.isdir(d):
            cs = parse_flat_keyed(fs.read(d, "cpu.stat", ""))
            cpu["throttling"] = {"periods": cs.get("nr_periods", 0), "throttledPeriods": cs.get("nr_throttled", 0),
                                 "throttledTime": cs.get("throttled_time", 0)}
        d = self.dir("cpuset")
        if d and os.path.isdir(d):
            st["cpuset"] = {"cpus": parse_list(fs.read(d, "cpuset.cpus", "")),
                            "mems": parse_list(fs.read(d, "cpuset.mems", ""))}
        d = self.dir("memory")
        if d and os.path.isdir(d):
            m = st["memory"]
            raw = parse_flat_keyed(fs.read(d, "memory.stat", ""))
            m["raw"] = raw
            m["cache"] = raw.get("total_cache", raw.get("cache", 0))
            m["rss"] = raw.get("total_rss", raw.get("rss", 0))
            for key, prefix in (("usage", "memory"), ("swap", "memory.memsw"), ("kernel", "memory.kmem"),
                                ("kernelTCP", "memory.kmem.tcp")):
                m[key] = {"limit": fs.read_int(d, f"{prefix}.limit_in_bytes"),
                          "usage": fs.read_int(d, f"{prefix}.usage_in_bytes"),
                          "max": fs.read_int(d, f"{prefix}.max_usage_in_bytes"),
                          "failcnt": fs.read_int(d, f"{prefix}.failcnt")}
            m["oom_kill"] = parse_flat_keyed(fs.read(d, "memory.oom_control", "")).get("oom_kill", 0)
            raw["oom_kill"] = m["oom_kill"]
        d = self.dir("pids")
        if d and os.path.isdir(d):
            st["pids"] = {"current": fs.read_int(d, "pids.current"), "limit": fs.read_int(d, "pids.max")}
        d = self.dir("blkio")
        if d and os.path.isdir(d):
            b = st["blkio"]
            b["ioServiceBytesRecursive"] = parse_blkio_v1(fs.read(d, "blkio.throttle.io_service_bytes_recursive", ""))
            b["ioServicedRecursive"] = parse_blkio_v1(fs.read(d, "blkio.throttle.io_serviced_recursive", ""))
        d = self._route("hugetlb")
        if d and os.path.isdir(d):
            v2 = d == self.unified_dir
            for name in sorted(os.listdir(d)):
                parts = name.split(".")
                if len(parts) == 3 and parts[0] == "hugetlb" and parts[2] == ("max" if v2 else "limit_in_bytes"):
                    size = parts[1]
                    if v2:
                        ev = parse_flat_keyed(fs.read(d, f"hugetlb.{size}.events", ""))
                        st["hugetlb"][size] = {"usage": fs.read_int(d, f"hugetlb.{size}.current"),
                                               "max": fs.read_int(d, f"hugetlb.{size}.max"),
                                               "failcnt": ev.get("max", 0)}
                    else:
                        st["hugetlb"][size] = {"usage": fs.read_int(d, f"hugetlb.{size}.usage_in_bytes"),
                                               "max": fs.read_int(d, f"hugetlb.{size}.max_usage_in_bytes"),
                                               "failcnt": fs.read_int(d, f"hugetlb.{size}.failcnt")}
        return st
