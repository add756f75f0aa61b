"""Pure conversion rules between the OCI (cgroup-v1 shaped) resource values and cgroup v2 files.

The formulas are the ones runc and crun use, so a container gets the same limits from hull
as from them:

- cpu.shares [2, 262144]  -> cpu.weight [1, 10000]:  1 + (shares - 2) * 9999 / 262142
- blkio.weight [10, 1000] -> io.weight [1, 10000]:   1 + (weight - 10) * 9999 / 990
- cpu quota/period (us)   -> cpu.max "QUOTA PERIOD" | "max PERIOD"
- memory.swap (OCI = memory+swap, the v1 memsw meaning) -> memory.swap.max (swap only)
"""

from hull.errors import SpecError

MAX_INT64 = (1 << 63) - 1
DEFAULT_CFS_PERIOD = 100000


# -- cpu ------------------------------------------------------------------------------------

def shares_to_weight(shares):
    """cpu.shares -> cpu.weight. 0 means unset (returns 0)."""
    if not shares:
        return 0
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def weight_to_shares(weight):
    """cpu.weight -> cpu.shares (inverse of shares_to_weight, rounded up so it round-trips)."""
    if not weight:
        return 0
    weight = min(max(weight, 1), 10000)
    return 2 + -(-((weight - 1) * 262142) // 9999)


def cpu_max(quota, period):
    """OCI cpu.quota / cpu.period -> the cpu.max line, or None when neither is set.

    quota <= 0 (-1 in OCI) means no limit ("max"); period 0 means the kernel default 100000.
    When only the period is given, runc writes "max PERIOD" as well.
    """
    quota = quota or 0
    period = period or 0
    if quota == 0 and period == 0:
        return None
    if period == 0:
        period = DEFAULT_CFS_PERIOD
    if quota <= 0:
        return f"max {period}"
    return f"{quota} {period}"


def parse_cpu_max(text):
    """'max 100000' -> (-1, 100000); '50000 100000' -> (50000, 100000)."""
    parts = text.split()
    quota = -1 if parts[0] == "max" else int(parts[0])
    period = int(parts[1]) if len(parts) > 1 else DEFAULT_CFS_PERIOD
    return quota, period


# -- block io -------------------------------------------------------------------------------

def blkio_weight_to_io_weight(weight):
    """blkio.weight [10, 1000] -> io.weight [1, 10000]. 0 means unset."""
    if not weight:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def io_weight_to_blkio_weight(weight):
    """io.weight [1, 10000] -> blkio.weight [10, 1000] (for stats/inspect)."""
    if not weight:
        return 0
    return 10 + (weight - 1) * 990 // 9999


# -- memory ---------------------------------------------------------------------------------

def memory_v2(value):
    """An OCI memory value for v2 files: -1 -> 'max', else the number."""
    return "max" if value == -1 else str(value)


def memory_v1(value):
    """An OCI memory value for v1 files: -1 is understood by the kernel as unlimited."""
    return str(value)


def swap_v2(swap, memory, path="linux.resources.memory.swap"):
    """OCI memory.swap (memory+swap total, v1 semantics) -> memory.swap.max value (swap only).

    Returns None (leave the file alone), -1 (max) or the byte count; runc's rules:
    - memory unlimited and swap unset: swap unlimited too;
    - swap -1: unlimited; swap 0/None: unset;
    - else swap needs a memory limit, swap >= memory, and the v2 value is swap - memory.
    """
    memory = memory or 0
    swap = swap or 0
    if memory == -1 and swap == 0:
        return -1
    if swap == -1:
        return -1
    if swap == 0:
        return None
    if memory == 0 or memory == -1:
        raise SpecError(path, "a swap limit needs a memory limit (set linux.resources.memory.limit)")
    if swap < memory:
        raise SpecError(path, f"memory+swap limit {swap} is lower than the memory limit {memory}; "
                              "swap is the total of memory and swap, so it must be >= memory.limit")
    return swap - memory


def swap_from_v2(swap_max, memory_max):
    """memory.swap.max + memory.max -> the OCI (memory+swap) value; -1 when unlimited."""
    if swap_max < 0 or memory_max < 0:
        return -1
    return swap_max + memory_max


# -- parsing cgroup file values -------------------------------------------------------------

def parse_uint(text):
    """A cgroup counter: 'max' (v2) or the v1 'unlimited' sentinel -> 0 (as runc reports it)."""
    text = text.strip()
    if text == "max" or not text:
        return 0
    v = int(text)
    return 0 if v < 0 else v


def parse_flat_keyed(text):
    """'key value' lines (memory.stat, cpu.stat, memory.events) -> {key: int}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def parse_list(text):
    """A cpuset list '0-3,7' -> sorted list of ints."""
    out = set()
    text = text.strip()
    if not text:
        return []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            lo, hi = int(lo), int(hi)
            if lo > hi:
                raise ValueError(part)
            out.update(range(lo, hi + 1))
        else:
            out.add(int(part))
    return sorted(out)


def hugepage_size_name(kb):
    """Size in KiB (as in /sys/kernel/mm/hugepages/hugepages-2048kB) -> '2MB' as cgroup files name it."""
    units = ("KB", "MB", "GB", "TB")
    i = 0
    while kb >= 1024 and kb % 1024 == 0 and i < len(units) - 1:
        kb //= 1024
        i += 1
    return f"{kb}{units[i]}"


def same_in_both(resources):
    """The writes whose files and values v1 and v2 share: cpu.idle, cpuset cpus/mems, pids.max."""
    cpu = resources.get("cpu") or {}
    cp = "linux.resources.cpu"
    w = []
    if cpu.get("idle") is not None:
        w.append(("cpu", "cpu.idle", str(cpu["idle"]), f"{cp}.idle", False))
    if cpu.get("cpus"):
        w.append(("cpuset", "cpuset.cpus", cpu["cpus"], f"{cp}.cpus", False))
    if cpu.get("mems"):
        w.append(("cpuset", "cpuset.mems", cpu["mems"], f"{cp}.mems", False))
    lim = (resources.get("pids") or {}).get("limit")
    if lim:
        w.append(("pids", "pids.max", "max" if lim < 0 else str(lim), "linux.resources.pids.limit", False))
    return w
