"""`hull stats` and `hull top`: numbers from the container's cgroup (the runtime's
Manager.stats()) and its processes from /proc.

CPU % is Docker's: delta of the cgroup's CPU time over the delta of wall time, times 100
(so one busy core reads 100 %). Memory usage is Docker's "usage - inactive_file" (v1: cache
counted as total_inactive_file)."""

import os
import time

from hull.engine import records

_NET = "--"


def human(n, binary=True):
    units = ("B", "KiB", "MiB", "GiB", "TiB") if binary else ("B", "kB", "MB", "GB", "TB")
    base = 1024.0 if binary else 1000.0
    f = float(n)
    for u in units:
        if f < base or u == units[-1]:
            return f"{f:.4g}{u}" if u != "B" else f"{int(f)}B"
        f /= base
    return str(n)


def _host_memory():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def raw(rec):
    """The cgroup's stats (the runtime's Stats shape) or None if it is gone."""
    from hull import cgroups
    mgr = cgroups.manager(rec.cgroup_path)
    if not mgr.exists():
        return None
    return mgr.stats()


def memory_usage(st):
    m = st["memory"]
    usage = m["usage"]["usage"]
    inactive = m["raw"].get("total_inactive_file", m["raw"].get("inactive_file", 0))
    return max(0, usage - inactive)


def memory_limit(st):
    lim = st["memory"]["usage"]["limit"]
    host = _host_memory()
    if not lim or lim >= 0x7FFFFFFFFFFFF000 or (host and lim > host):
        return host
    return lim


def _net_io(rec):
    """rx / tx over the container's non-loopback interfaces (its netns's /proc/<pid>/net/dev)."""
    from hull.network.endpoint import net_io
    pid = rec.state.get("Pid")
    io = net_io(pid) if pid and rec.config["HostConfig"].get("NetworkMode") != "host" else None
    if io is None:
        return _NET
    return f"{human(io[0], False)} / {human(io[1], False)}"


class Sampler:
    def __init__(self, recs):
        self.recs = recs
        self.prev = {}

    def _read(self):
        now = time.monotonic()
        out = {}
        for rec in self.recs:
            st = raw(rec)
            if st is not None:
                out[rec.id] = (now, st)
        return out

    def sample(self, interval=1.0):
        if not self.prev:
            self.prev = self._read()
            time.sleep(interval)
        cur = self._read()
        rows = []
        for rec in self.recs:
            if rec.id not in cur:
                rows.append({"ID": rec.id, "Name": rec.name, "CPUPerc": "--", "MemUsage": "-- / --",
                             "MemPerc": "--", "NetIO": _NET, "BlockIO": "--", "PIDs": "--"})
                continue
            t1, st = cur[rec.id]
            cpu = 0.0
            if rec.id in self.prev:
                t0, st0 = self.prev[rec.id]
                dt = t1 - t0
                if dt > 0:
                    cpu = (st["cpu"]["usage"]["total"] - st0["cpu"]["usage"]["total"]) / (dt * 1e9) * 100
            used, limit = memory_usage(st), memory_limit(st)
            rd = sum(e.get("value", 0) for e in st["blkio"]["ioServiceBytesRecursive"] if str(e.get("op", "")).lower() == "read")
            wr = sum(e.get("value", 0) for e in st["blkio"]["ioServiceBytesRecursive"] if str(e.get("op", "")).lower() == "write")
            rows.append({
                "ID": rec.id, "Name": rec.name, "CPUPerc": f"{max(cpu, 0):.2f}%",
                "MemUsage": f"{human(used)} / {human(limit)}",
                "MemPerc": f"{(used / limit * 100 if limit else 0):.2f}%",
                "NetIO": _net_io(rec), "BlockIO": f"{human(rd, False)} / {human(wr, False)}",
                "PIDs": str(st["pids"]["current"]),
                "Raw": {"cpu_total_ns": st["cpu"]["usage"]["total"], "memory_usage": st["memory"]["usage"]["usage"],
                        "memory_working_set": used, "memory_limit": limit, "pids": st["pids"]["current"],
                        "pids_limit": st["pids"]["limit"], "blkio_read": rd, "blkio_write": wr},
            })
        self.prev = cur
        return rows


def top(rec):
    """`ps -ef`-like rows for the processes in the container's cgroup (host pids)."""
    from hull import cgroups
    from hull.errors import Conflict
    rec.refresh()
    if rec.status not in ("running", "paused"):
        raise Conflict(f"container {rec.id} is not running")
    pids = sorted(cgroups.manager(rec.cgroup_path).pids())
    hz = os.sysconf("SC_CLK_TCK") or 100
    rows = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{pid}/status") as f:
                uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        ppid = int(fields[1])
        secs = (int(fields[11]) + int(fields[12])) // hz
        start = records.proc_start_time(pid) or 0
        rows.append([uid, pid, ppid, "0", start // hz, "?", f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}",
                     cmd or f"[{stat[stat.index(b'(') + 1:stat.rindex(b')')].decode()}]"])
    return ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"), rows
