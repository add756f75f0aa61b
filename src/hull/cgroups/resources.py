"""Validation of the OCI `linux.resources` dict, before anything touches the cgroupfs.

Every problem is a SpecError carrying the JSON path ("linux.resources.memory.limit"), so a bad
config is rejected before a cgroup directory is created. Host-dependent checks (is the
controller mounted, does the block device exist) happen in the managers.
"""

from hull.errors import SpecError

MAX_INT64 = (1 << 63) - 1
MAX_UINT32 = (1 << 32) - 1
P = "linux.resources"
PAGE = 4096


def _int(v, path, lo=None, hi=MAX_INT64, what="an integer"):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise SpecError(path, f"must be {what}, got {v!r}")
    if lo is not None and v < lo:
        raise SpecError(path, f"{v} is out of range (minimum {lo})")
    if hi is not None and v > hi:
        raise SpecError(path, f"{v} is out of range (maximum {hi})")
    return v


def _limit(v, path):
    """An int64 limit: -1 (unlimited), 0 (unset) or a positive number."""
    _int(v, path, lo=-1)
    return v


def _bool(v, path):
    if v is not None and not isinstance(v, bool):
        raise SpecError(path, f"must be true or false, got {v!r}")
    return v


def _str(v, path):
    if v is not None and not isinstance(v, str):
        raise SpecError(path, f"must be a string, got {v!r}")
    return v


def _dict(v, path):
    if v is not None and not isinstance(v, dict):
        raise SpecError(path, f"must be an object, got {type(v).__name__}")
    return v or {}


def _list(v, path):
    if v is not None and not isinstance(v, list):
        raise SpecError(path, f"must be an array, got {type(v).__name__}")
    return v or []


def cpu_list(text, path):
    """Check the cpuset list syntax ('0-3,5')."""
    from hull.cgroups.convert import parse_list
    _str(text, path)
    if not text:
        return []
    try:
        return parse_list(text)
    except ValueError:
        raise SpecError(path, f"{text!r} is not a cpu/memory-node list like '0-3,5'") from None


def validate(resources):
    """Check `resources` (the linux.resources dict); returns it unchanged or raises SpecError."""
    if resources is None:
        return {}
    if not isinstance(resources, dict):
        raise SpecError(P, f"must be an object, got {type(resources).__name__}")

    mem = _dict(resources.get("memory"), f"{P}.memory")
    mp = f"{P}.memory"
    limit = _limit(mem.get("limit"), f"{mp}.limit")
    if limit is not None and 0 < limit < PAGE:
        raise SpecError(f"{mp}.limit", f"{limit} bytes is below one page ({PAGE}); "
                        "a container cannot run in that (use bytes, e.g. 52428800 for 50M)")
    _limit(mem.get("reservation"), f"{mp}.reservation")
    swap = _limit(mem.get("swap"), f"{mp}.swap")
    if swap and swap > 0 and limit and limit > 0 and swap < limit:
        raise SpecError(f"{mp}.swap", f"memory+swap limit {swap} is lower than the memory limit "
                        f"{limit}; swap is the total of memory and swap and must be >= memory.limit")
    _limit(mem.get("kernel"), f"{mp}.kernel")
    _limit(mem.get("kernelTCP"), f"{mp}.kernelTCP")
    sw = mem.get("swappiness")
    if sw is not None and sw != -1:
        _int(sw, f"{mp}.swappiness", lo=0, hi=100)
    for k in ("disableOOMKiller", "useHierarchy", "checkBeforeUpdate"):
        _bool(mem.get(k), f"{mp}.{k}")

    cpu = _dict(resources.get("cpu"), f"{P}.cpu")
    cp = f"{P}.cpu"
    shares = _int(cpu.get("shares"), f"{cp}.shares", lo=0, hi=262144)
    if shares and shares < 2:
        raise SpecError(f"{cp}.shares", f"{shares} is out of range (2-262144)")
    quota = _int(cpu.get("quota"), f"{cp}.quota", lo=-1)
    if quota is not None and 0 < quota < 1000:
        raise SpecError(f"{cp}.quota", f"{quota}us is below the kernel minimum of 1000us (1ms)")
    period = _int(cpu.get("period"), f"{cp}.period", lo=0, hi=1000000)
    if period and period < 1000:
        raise SpecError(f"{cp}.period", f"{period}us is out of range (1000-1000000)")
    burst = _int(cpu.get("burst"), f"{cp}.burst", lo=0)
    if burst and quota is not None and 0 < quota < burst:
        raise SpecError(f"{cp}.burst", f"burst {burst} is larger than the quota {quota}")
    _int(cpu.get("realtimeRuntime"), f"{cp}.realtimeRuntime", lo=-1)
    _int(cpu.get("realtimePeriod"), f"{cp}.realtimePeriod", lo=0)
    cpu_list(cpu.get("cpus"), f"{cp}.cpus")
    cpu_list(cpu.get("mems"), f"{cp}.mems")
    _int(cpu.get("idle"), f"{cp}.idle", lo=0, hi=1)

    pids = _dict(resources.get("pids"), f"{P}.pids")
    _int(pids.get("limit"), f"{P}.pids.limit", lo=-1)

    bio = _dict(resources.get("blockIO"), f"{P}.blockIO")
    bp = f"{P}.blockIO"
    for k in ("weight", "leafWeight"):
        w = _int(bio.get(k), f"{bp}.{k}", lo=0, hi=1000)
        if w and w < 10:
            raise SpecError(f"{bp}.{k}", f"{w} is out of range (10-1000)")
    for i, wd in enumerate(_list(bio.get("weightDevice"), f"{bp}.weightDevice")):
        wp = f"{bp}.weightDevice[{i}]"
        _device_numbers(wd, wp)
        for k in ("weight", "leafWeight"):
            w = _int(wd.get(k), f"{wp}.{k}", lo=0, hi=1000)
            if w and w < 10:
                raise SpecError(f"{wp}.{k}", f"{w} is out of range (10-1000)")
    for key in ("throttleReadBpsDevice", "throttleWriteBpsDevice",
                "throttleReadIOPSDevice", "throttleWriteIOPSDevice"):
        for i, td in enumerate(_list(bio.get(key), f"{bp}.{key}")):
            tp = f"{bp}.{key}[{i}]"
            _device_numbers(td, tp)
            if td.get("rate") is None:
                raise SpecError(f"{tp}.rate", "is required")
            _int(td.get("rate"), f"{tp}.rate", lo=0)

    for i, h in enumerate(_list(resources.get("hugepageLimits"), f"{P}.hugepageLimits")):
        hp = f"{P}.hugepageLimits[{i}]"
        _dict(h, hp)
        size = _str(h.get("pageSize"), f"{hp}.pageSize")
        if not size or not (size[:-2].isdigit() and size[-2:] in ("KB", "MB", "GB", "TB")):
            raise SpecError(f"{hp}.pageSize", f"{size!r} is not a page size like '2MB' or '1GB'")
        if h.get("limit") is None:
            raise SpecError(f"{hp}.limit", "is required")
        _int(h.get("limit"), f"{hp}.limit", lo=0)

    net = _dict(resources.get("network"), f"{P}.network")
    _int(net.get("classID"), f"{P}.network.classID", lo=0, hi=MAX_UINT32)
    for i, pr in enumerate(_list(net.get("priorities"), f"{P}.network.priorities")):
        pp = f"{P}.network.priorities[{i}]"
        _dict(pr, pp)
        name = _str(pr.get("name"), f"{pp}.name")
        if not name or any(c.isspace() for c in name):
            raise SpecError(f"{pp}.name", f"{name!r} is not an interface name")
        _int(pr.get("priority"), f"{pp}.priority", lo=0, hi=MAX_UINT32)

    for name, r in _dict(resources.get("rdma"), f"{P}.rdma").items():
        rp = f"{P}.rdma.{name}"
        if not name or any(c.isspace() or c in "=/" for c in name):
            raise SpecError(rp, f"{name!r} is not an RDMA device name")
        _dict(r, rp)
        _int(r.get("hcaHandles"), f"{rp}.hcaHandles", lo=0, hi=MAX_UINT32)
        _int(r.get("hcaObjects"), f"{rp}.hcaObjects", lo=0, hi=MAX_UINT32)

    for k, v in _dict(resources.get("unified"), f"{P}.unified").items():
        up = f"{P}.unified.{k}"
        if not k or "/" in k or k.startswith(".") or "." not in k:
            raise SpecError(up, f"{k!r} is not a cgroup v2 file name like 'memory.high'")
        if k in ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.kill"):
            raise SpecError(up, f"{k} cannot be set through linux.resources.unified")
        _str(v, up)

    for i, d in enumerate(_list(resources.get("devices"), f"{P}.devices")):
        device_rule(d, f"{P}.devices[{i}]")
    return resources


def _device_numbers(d, path):
    _dict(d, path)
    for k in ("major", "minor"):
        if d.get(k) is None:
            raise SpecError(f"{path}.{k}", "is required")
        _int(d.get(k), f"{path}.{k}", lo=0, hi=MAX_UINT32)


def device_rule(d, path):
    """One linux.resources.devices rule -> (allow, type, major, minor, access); -1 = wildcard."""
    _dict(d, path)
    allow = d.get("allow")
    if not isinstance(allow, bool):
        raise SpecError(f"{path}.allow", f"is required and must be true or false, got {allow!r}")
    typ = d.get("type") or "a"
    if typ not in ("a", "b", "c"):
        raise SpecError(f"{path}.type", f"{typ!r} is not a device type ('a', 'b' or 'c')")
    major = d.get("major")
    minor = d.get("minor")
    major = -1 if major is None else _int(major, f"{path}.major", lo=-1, hi=MAX_UINT32)
    minor = -1 if minor is None else _int(minor, f"{path}.minor", lo=-1, hi=MAX_UINT32)
    access = d.get("access") or "rwm"
    _str(access, f"{path}.access")
    if not set(access) <= set("rwm"):
        raise SpecError(f"{path}.access", f"{access!r} may only contain r, w and m")
    return allow, typ, major, minor, "".join(c for c in "rwm" if c in access)
