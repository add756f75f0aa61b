"""`hull-runtime update` flags (runc's) -> a partial linux.resources dict.

Only the flags given appear in the result, so Manager.set() changes only those files.
Memory sizes accept Docker/runc units ("100M", "1g", "512KiB"; binary multiples) or -1.
"""

import json
import re

from hull.errors import UsageError

_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

# flag (python name) -> (section, key, kind)
FLAGS = {
    "blkio_weight": ("blockIO", "weight", "uint"),
    "cpu_period": ("cpu", "period", "uint"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_burst": ("cpu", "burst", "uint"),
    "cpu_share": ("cpu", "shares", "uint"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "uint"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpu_idle": ("cpu", "idle", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "memory": ("memory", "limit", "size"),
    "memory_reservation": ("memory", "reservation", "size"),
    "memory_swap": ("memory", "swap", "size"),
    "kernel_memory": ("memory", "kernel", "size"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "size"),
    "pids_limit": ("pids", "limit", "int"),
}


def parse_size(text, flag="--memory"):
    """'100M' -> 104857600, '-1' -> -1 (runc uses docker's RAMInBytes: binary units)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    s = str(text).strip()
    if s == "-1":
        return -1
    m = _SIZE.match(s)
    if not m:
        raise UsageError(f"{flag}: invalid size {text!r} (use bytes or a unit: 512k, 100M, 2g; -1 for unlimited)")
    return int(float(m.group(1)) * _MULT[(m.group(2) or "").lower()])


def _value(kind, raw, flag):
    if kind == "str":
        return str(raw)
    if kind == "size":
        return parse_size(raw, flag)
    try:
        v = int(raw)
    except (TypeError, ValueError):
        raise UsageError(f"{flag}: {raw!r} is not a number") from None
    if kind == "uint" and v < 0:
        raise UsageError(f"{flag}: {v} must not be negative")
    return v


def resources_from_update_flags(resources=None, stdin=None, **flags):
    """Build the partial linux.resources for `update`.

    `resources` is runc's --resources/-r: a path to a JSON file, or "-" for stdin (`stdin` lets
    callers pass a file object). As in runc, when it is given the other flags are ignored.
    Unknown flag names are an error; None values mean "flag not given".
    """
    if resources:
        if resources == "-":
            import sys
            data = (stdin or sys.stdin).read()
            where = "stdin"
        else:
            try:
                with open(resources) as f:
                    data = f.read()
            except OSError as e:
                raise UsageError(f"--resources {resources}: {e.strerror}") from None
            where = resources
        try:
            r = json.loads(data)
        except ValueError as e:
            raise UsageError(f"--resources: {where} is not valid JSON: {e}") from None
        if not isinstance(r, dict):
            raise UsageError(f"--resources: {where} must hold a JSON object (linux.resources)")
        return r
    out = {}
    for name, raw in flags.items():
        if name not in FLAGS:
            raise UsageError(f"unknown update flag --{name.replace('_', '-')}")
        if raw is None or raw == "":
            continue
        section, key, kind = FLAGS[name]
        out.setdefault(section, {})[key] = _value(kind, raw, "--" + name.replace("_", "-"))
    mem = out.get("memory")
    if mem and mem.get("limit") == -1 and "swap" not in mem:
        mem["swap"] = -1  # unlimited memory with swap unset: swap unlimited too (runc)
    return out
