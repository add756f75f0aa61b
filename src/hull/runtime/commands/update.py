"""hull-runtime update [flags] ID — change a live container's cgroup limits (runc's flags).

`--resources FILE|-` takes a linux.resources JSON object (then the other flags are ignored, as
in runc). Only what is given changes; the container's stored config is updated to match.
"""

import sys

from hull.errors import HullError
from hull.runtime.state import Container

# runc's flags: name, help
FLAGS = [
    ("blkio-weight", "per cgroup block IO weight, 10 to 1000"),
    ("cpu-period", "CPU CFS period in usecs (0: system default)"),
    ("cpu-quota", "CPU CFS hardcap limit in usecs per period"),
    ("cpu-burst", "CPU CFS burst limit in usecs"),
    ("cpu-share", "CPU shares (relative weight)"),
    ("cpu-rt-period", "CPU realtime period in usecs"),
    ("cpu-rt-runtime", "CPU realtime hardcap limit in usecs"),
    ("cpu-idle", "1: SCHED_IDLE for the cgroup, 0: default"),
    ("cpuset-cpus", "CPU(s) to use"),
    ("cpuset-mems", "memory node(s) to use"),
    ("memory", "memory limit (bytes or 100M, 1g; -1 unlimited)"),
    ("memory-reservation", "memory reservation / soft limit"),
    ("memory-swap", "total memory + swap; -1 for unlimited swap"),
    ("kernel-memory", "(obsolete) kernel memory limit"),
    ("kernel-memory-tcp", "(obsolete) kernel TCP buffer limit"),
    ("pids-limit", "maximum number of pids (0: unchanged, -1: unlimited)"),
]


def add_arguments(p):
    p.add_argument("-r", "--resources", default="",
                   help="path to a JSON file with linux.resources to apply, or '-' for stdin")
    for name, text in FLAGS:
        p.add_argument("--" + name, default=None, help=text)
    p.add_argument("--l3-cache-schema", default="", help="Intel RDT/CAT L3 cache schema (not supported)")
    p.add_argument("--mem-bw-schema", default="", help="Intel RDT/MBA memory bandwidth schema (not supported)")
    p.add_argument("container_id")


def _merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v
    return dst


def run(ctx, args):
    from hull import cgroups
    if args.l3_cache_schema or args.mem_bw_schema:
        raise HullError("Intel RDT (--l3-cache-schema/--mem-bw-schema) is not supported by hull-runtime")
    flags = {name.replace("-", "_"): getattr(args, name.replace("-", "_")) for name, _ in FLAGS}
    if flags["pids_limit"] in ("0", 0):
        flags["pids_limit"] = None  # runc: 0 leaves the limit alone
    if flags["blkio_weight"] in ("0", 0):
        flags["blkio_weight"] = None
    resources = cgroups.resources_from_update_flags(resources=args.resources or None, **flags)
    c = Container.load(ctx.root, args.container_id).lock()
    try:
        if c.status() == "stopped":
            raise HullError("container not running")
        mgr = cgroups.manager(c.data["cgroupPath"])
        mgr.set(resources)
        for w in mgr.warnings:
            sys.stderr.write(f"hull-runtime: warning: {w}\n")
            ctx.log_line("warning", w)
        linux = c.data.setdefault("config", {}).setdefault("linux", {})
        _merge(linux.setdefault("resources", {}), resources)
        c.save()
    finally:
        c.unlock()
    return 0
