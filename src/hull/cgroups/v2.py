"""cgroup v2 manager: one directory in the unified hierarchy.

Limits are the v1-shaped OCI values converted by `hull.cgroups.convert` (shares -> cpu.weight,
blkio weight -> io.weight, quota/period -> cpu.max, memory+swap -> memory.swap.max). Devices are
a BPF program (`hull.kernel.bpf`) attached to the directory. `plan()` is pure and unit-tested.
"""

import errno
from hull import osfast as os
import signal as _signal

from hull.cgroups import fs
from hull.cgroups.fs import Unsupported
from hull.errors import HullError, KernelError

P = "linux.resources"


def plan(resources, current_memory=0):
    """linux.resources -> (writes, warnings). A write is (controller, file, value, json_path,
    optional); `file`/`value` may be parallel tuples of alternatives (first existing file wins).
    The devices write is ("devices", "bpf", rules, path, False). `current_memory` is the live
    memory.max (for a swap-only update)."""
    from hull.cgroups import convert
    from hull.cgroups.resources import device_rule, validate
    validate(resources)
    w, warn = [], []
    mem = resources.get("memory") or {}
    mp = f"{P}.memory"
    limit = mem.get("limit") or 0
    if limit:
        w.append(("memory", "memory.max", convert.memory_v2(limit), f"{mp}.limit", False))
    if mem.get("swap") or limit == -1:
        swap = convert.swap_v2(mem.get("swap"), limit or current_memory, f"{mp}.swap")
        if swap is not None:
            w.append(("memory", "memory.swap.max", convert.memory_v2(swap), f"{mp}.swap", swap == -1))
    if mem.get("reservation"):
        w.append(("memory", "memory.low", convert.memory_v2(mem["reservation"]), f"{mp}.reservation", False))
    if mem.get("kernel"):
        warn.append(f"{mp}.kernel: kernel memory limits do not exist on cgroup v2; ignored")
    if mem.get("kernelTCP"):
        raise Unsupported(f"{mp}.kernelTCP: kernel TCP memory limits are not supported on cgroup v2")
    sw = mem.get("swappiness")
    if sw is not None and sw != -1:
        warn.append(f"{mp}.swappiness: there is no per-cgroup swappiness on cgroup v2; ignored")
    if mem.get("disableOOMKiller"):
        warn.append(f"{mp}.disableOOMKiller: cgroup v2 cannot disable the OOM killer; ignored")

    cpu = resources.get("cpu") or {}
    cp = f"{P}.cpu"
    unified = resources.get("unified") or {}
    if cpu.get("shares") and "cpu.weight" not in unified:
        w.append(("cpu", "cpu.weight", str(convert.shares_to_weight(cpu["shares"])), f"{cp}.shares", False))
    cmax = convert.cpu_max(cpu.get("quota"), cpu.get("period"))
    if cmax and "cpu.max" not in unified:
        w.append(("cpu", "cpu.max", cmax, f"{cp}.quota", False))
    if cpu.get("burst") is not None and (cpu.get("burst") or cpu.get("quota")):
        w.append(("cpu", "cpu.max.burst", str(cpu["burst"]), f"{cp}.burst", False))
    if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
        raise Unsupported(f"{cp}.realtimeRuntime: realtime CPU scheduling limits are not supported on cgroup v2")
    w += convert.same_in_both(resources)

    bio = resources.get("blockIO") or {}
    bp = f"{P}.blockIO"
    if bio.get("weight"):
        wt = bio["weight"]
        w.append(("io", ("io.bfq.weight", "io.weight"),
                  (f"default {wt}", f"default {convert.blkio_weight_to_io_weight(wt)}"), f"{bp}.weight", False))
    if bio.get("leafWeight"):
        warn.append(f"{bp}.leafWeight: there are no leaf weights on cgroup v2; ignored")
    for i, wd in enumerate(bio.get("weightDevice") or []):
        dev = f"{wd['major']}:{wd['minor']}"
        if wd.get("weight"):
            w.append(("io", ("io.bfq.weight", "io.weight"),
                      (f"{dev} {wd['weight']}", f"{dev} {convert.blkio_weight_to_io_weight(wd['weight'])}"),
                      f"{bp}.weightDevice[{i}].weight", False))
    for key, field in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                       ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for i, td in enumerate(bio.get(key) or []):
            rate = td["rate"] or "max"
            w.append(("io", "io.max", f"{td['major']}:{td['minor']} {field}={rate}", f"{bp}.{key}[{i}]", False))

    for i, h in enumerate(resources.get("hugepageLimits") or []):
        w.append(("hugetlb", f"hugetlb.{h['pageSize']}.max", str(h["limit"]), f"{P}.hugepageLimits[{i}]", False))

    net = resources.get("network") or {}
    if net.get("classID") is not None or net.get("priorities"):
        raise Unsupported(f"{P}.network: net_cls/net_prio do not exist on cgroup v2 "
                          "(classify traffic with nftables 'socket cgroupv2' or tc instead)")

    for name, r in (resources.get("rdma") or {}).items():
        hh, ho = r.get("hcaHandles"), r.get("hcaObjects")
        if hh is None and ho is None:
            continue
        val = f"{name} hca_handle={'max' if hh is None else hh} hca_object={'max' if ho is None else ho}"
        w.append(("rdma", "rdma.max", val, f"{P}.rdma.{name}", False))

    for k, v in unified.items():
        w.append((k.split(".", 1)[0], k, v, f"{P}.unified.{k}", False))

    devices = resources.get("devices")
    if devices is not None:
        rules = [device_rule(d, f"{P}.devices[{i}]") for i, d in enumerate(devices)]
        w.append(("devices", "bpf", rules, f"{P}.devices", False))
    return w, warn


class Manager:
    version = 2

    def __init__(self, path, root=fs.DEFAULT_ROOT, fake=False, sys_root="/sys"):
        fs.check_path(path)
        self.path = path
        self.root = root
        self.mode = "unified"
        self.fake = fake
        self.sys_root = sys_root
        self.dir = root + path
        self.warnings = []

    def paths(self):
        return {"": self.dir}

    def exists(self):
        return os.path.isdir(self.dir)

    def pids(self):
        return fs.pids_in(self.dir)

    # -- lifecycle --------------------------------------------------------------------------
    def _create(self, root_enable=frozenset()):
        created = fs.mkdirs(self.root, self.path)
        try:
            fs.enable_controllers(self.root, self.path, self.fake, root_enable)
        except BaseException:
            fs.remove_created(created)
            raise
        return created

    def prepare(self):
        """Nothing ahead of set(): which controllers the dir is made with depends on the
        limits (v1 makes its dirs here)."""

    def apply(self, pid):
        created = self._create()
        try:
            fs.write(self.dir, "cgroup.procs", str(pid), self.fake)
        except KernelError as e:
            fs.remove_created(created)
            if e.errno == errno.EBUSY:
                raise HullError(f"cannot move {pid} into {self.dir}: its parent has controllers enabled "
                                "and processes (cgroup v2 'no internal processes' rule)") from None
            raise
        except BaseException:
            fs.remove_created(created)
            raise

    def cgroup2_dir(self):
        """No dir to clone into: its controllers are enabled as set() needs them."""
        return None

    def apply_from_init(self, pid, in_cgroup2):
        """apply(): a cgroup2 process's move is the parent's (no v1 dirs to move into)."""
        if not in_cgroup2:
            self.apply(pid)
        return []

    def destroy(self):
        fs.remove_cgroup(self.dir, self.fake)

    # -- resources --------------------------------------------------------------------------
    def _available(self):
        """Controllers the container's cgroup has or can get (root's cgroup.controllers)."""
        return set(fs.read(self.root, "cgroup.controllers", "").split())

    def check(self, resources):
        cur = 0
        mem = (resources or {}).get("memory") or {}
        if mem.get("swap") and not mem.get("limit") and os.path.isdir(self.dir):
            text = fs.read(self.dir, "memory.max", "max").strip()
            cur = -1 if text == "max" else int(text)
        writes, warn = plan(resources or {}, current_memory=cur)
        avail = self._available()
        needed = set()
        for ctrl, fname, value, jpath, optional in writes:
            if ctrl in ("cgroup", "devices"):
                continue
            if ctrl not in avail:
                if optional is True:
                    continue
                raise Unsupported(f"{jpath}: the {ctrl} controller is not available in the cgroup v2 hierarchy "
                                  f"{self.root} (it offers: {' '.join(sorted(avail)) or 'none'})")
            needed.add(ctrl)
        self._check_block_devices(resources or {})
        return writes, warn, needed

    def _check_block_devices(self, resources):
        if not (self.fake and self.sys_root == "/sys"):
            fs.check_block_devices(resources, self.sys_root)

    def set(self, resources):
        writes, warn, needed = self.check(resources)
        self.warnings += warn
        if not writes:
            return
        created = self._create(root_enable=needed)
        try:
            for w in writes:
                self._write(w)
        except BaseException:
            if created and not self.pids():
                fs.remove_created(created)
            raise

    def _write(self, w):
        ctrl, fname, value, jpath, optional = w
        if fname == "bpf":
            if self.fake:
                from hull.kernel.bpf import device_program
                with open(os.path.join(self.dir, "devices.bpf"), "wb") as f:
                    f.write(device_program(value))
                return
            from hull.kernel.bpf import set_device_filter
            try:
                set_device_filter(self.dir, value)
            except KernelError as e:
                raise HullError(f"{jpath}: cannot install the device BPF program on {self.dir}: {e}") from None
            return
        names = fname if isinstance(fname, tuple) else (fname,)
        values = value if isinstance(value, tuple) else (value,) * len(names)
        idx = 0
        if not self.fake:
            found = [i for i, n in enumerate(names) if os.path.exists(os.path.join(self.dir, n))]
            if not found:
                if optional is True:
                    self.warnings.append(f"{jpath}: {names[0]} is not supported here; ignored")
                    return
                raise Unsupported(f"{jpath}: {' / '.join(names)} does not exist in {self.dir}: "
                                  "this kernel or controller does not support it")
            idx = found[0]
        else:
            idx = len(names) - 1  # fake trees: the generic file (io.weight, not io.bfq.weight)
        try:
            fs.write(self.dir, names[idx], values[idx], self.fake)
        except KernelError as e:
            msg = f"{jpath}: cannot set {names[idx]} to {values[idx]!r} in {self.dir}: {os.strerror(e.errno)}"
            if names[idx].startswith("cpuset.") and e.errno in (errno.EINVAL, errno.ERANGE):
                allowed = fs.read(os.path.dirname(self.dir), names[idx] + ".effective", "?")
                msg += f" (the parent allows {allowed.strip()})"
            raise HullError(msg) from None

    # -- freezer ----------------------------------------------------------------------------
    def can_freeze(self):
        return os.path.exists(os.path.join(self.dir, "cgroup.freeze")) or self.fake

    def _frozen_event(self):
        from hull.cgroups.convert import parse_flat_keyed
        return parse_flat_keyed(fs.read(self.dir, "cgroup.events", "")).get("frozen", 0) == 1

    def freeze(self):
        fs.write(self.dir, "cgroup.freeze", "1", self.fake)
        if not self.fake and not fs.wait_until(self._frozen_event, 10.0):
            raise HullError(f"{self.dir} did not report frozen in cgroup.events; try again")

    def thaw(self):
        fs.write(self.dir, "cgroup.freeze", "0", self.fake)
        if not self.fake:
            fs.wait_until(lambda: not self._frozen_event(), 5.0)

    def frozen(self):
        if self.fake:
            return fs.read(self.dir, "cgroup.freeze", "0").strip() == "1"
        return self._frozen_event()

    def kill_all(self, sig=_signal.SIGKILL):
        """SIGKILL through cgroup.kill (kernel 5.14+) when present; else freeze/signal/thaw."""
        sig = int(sig)
        if sig == _signal.SIGKILL and os.path.exists(os.path.join(self.dir, "cgroup.kill")):
            fs.write(self.dir, "cgroup.kill", "1", self.fake)
            if self.fake or fs.wait_until(lambda: not self.pids(), 5.0):
                return
        fs.signal_all(self, sig)

    # -- stats ------------------------------------------------------------------------------
    def oom_count(self):
        from hull.cgroups.convert import parse_flat_keyed
        return parse_flat_keyed(fs.read(self.dir, "memory.events", "")).get("oom_kill", 0)

    def oom_killed(self):
        return self.oom_count() > 0

    def stats(self):
        from hull.cgroups.convert import parse_flat_keyed, parse_list
        from hull.cgroups.stats import empty, parse_io_stat_v2
        st = empty()
        d = self.dir
        if not os.path.isdir(d):
            return st
        cs = parse_flat_keyed(fs.read(d, "cpu.stat", ""))
        u = st["cpu"]["usage"]
        u["total"] = cs.get("usage_usec", 0) * 1000
        u["user"] = cs.get("user_usec", 0) * 1000
        u["kernel"] = cs.get("system_usec", 0) * 1000
        st["cpu"]["throttling"] = {"periods": cs.get("nr_periods", 0), "throttledPeriods": cs.get("nr_throttled", 0),
                                   "throttledTime": cs.get("throttled_usec", 0) * 1000}
        st["cpuset"] = {"cpus": parse_list(fs.read(d, "cpuset.cpus.effective", "")),
                        "mems": parse_list(fs.read(d, "cpuset.mems.effective", ""))}
        m = st["memory"]
        if os.path.exists(os.path.join(d, "memory.current")):
            raw = parse_flat_keyed(fs.read(d, "memory.stat", ""))
            ev = parse_flat_keyed(fs.read(d, "memory.events", ""))
            m["raw"] = raw
            m["cache"] = raw.get("file", 0)
            m["rss"] = raw.get("anon", 0)
            usage = fs.read_int(d, "memory.current")
            limit = fs.read_int(d, "memory.max")
            m["usage"] = {"usage": usage, "limit": limit, "max": fs.read_int(d, "memory.peak"),
                          "failcnt": ev.get("max", 0)}
            # runc reports v2 swap as memory+swap, like v1's memsw
            swap_usage = fs.read_int(d, "memory.swap.current")
            swap_max = fs.read_int(d, "memory.swap.max")
            m["swap"] = {"usage": swap_usage + usage, "limit": (swap_max + limit) if swap_max and limit else 0,
                         "max": 0, "failcnt": parse_flat_keyed(fs.read(d, "memory.swap.events", "")).get("max", 0)}
            m["oom_kill"] = ev.get("oom_kill", 0)
            raw["oom_kill"] = m["oom_kill"]
        st["pids"] = {"current": fs.read_int(d, "pids.current"), "limit": fs.read_int(d, "pids.max")}
        nbytes, nios = parse_io_stat_v2(fs.read(d, "io.stat", ""))
        st["blkio"]["ioServiceBytesRecursive"] = nbytes
        st["blkio"]["ioServicedRecursive"] = nios
        for name in sorted(os.listdir(d)):
            parts = name.split(".")
            if len(parts) == 3 and parts[0] == "hugetlb" and parts[2] == "max":
                size = parts[1]
                ev = parse_flat_keyed(fs.read(d, f"hugetlb.{size}.events", ""))
                st["hugetlb"][size] = {"usage": fs.read_int(d, f"hugetlb.{size}.current"),
                                       "max": fs.read_int(d, f"hugetlb.{size}.max"), "failcnt": ev.get("max", 0)}
        return st
