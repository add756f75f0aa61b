"""The one Stats shape both managers return: runc's `events --stats` "data" object.

    {"cpu": {"usage": {"total", "percpu", "percpu_kernel", "percpu_user", "kernel", "user"},
             "throttling": {"periods", "throttledPeriods", "throttledTime"}},
     "cpuset": {"cpus", "mems"},
     "memory": {"cache", "rss", "oom_kill", "usage": {limit, usage, max, failcnt},
                "swap": {...}, "kernel": {...}, "kernelTCP": {...}, "raw": {...}},
     "pids": {"current", "limit"},
     "blkio": {"ioServiceBytesRecursive": [{"major","minor","op","value"}], "ioServicedRecursive": [...], ...},
     "hugetlb": {"2MB": {"usage", "max", "failcnt"}}}

Times are nanoseconds, sizes bytes, "unlimited" limits are reported as the kernel's number (v1)
or 0 (v2 "max"), as runc does. `rss` and `oom_kill` are hull additions (also in `raw`).
"""


def _entry():
    return {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}


def empty():
    return {
        "cpu": {"usage": {"total": 0, "percpu": [], "percpu_kernel": [], "percpu_user": [],
                          "kernel": 0, "user": 0},
                "throttling": {"periods": 0, "throttledPeriods": 0, "throttledTime": 0}},
        "cpuset": {"cpus": [], "mems": []},
        "memory": {"cache": 0, "rss": 0, "oom_kill": 0, "usage": _entry(), "swap": _entry(),
                   "kernel": _entry(), "kernelTCP": _entry(), "raw": {}},
        "pids": {"current": 0, "limit": 0},
        "blkio": {"ioServiceBytesRecursive": [], "ioServicedRecursive": [], "ioQueueRecursive": [],
                  "ioServiceTimeRecursive": [], "ioWaitTimeRecursive": [], "ioMergedRecursive": [],
                  "ioTimeRecursive": [], "sectorsRecursive": []},
        "hugetlb": {},
    }


def parse_blkio_v1(text):
    """blkio.throttle.io_service_bytes_recursive: '254:0 Read 4096' lines -> entries."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, minor = parts[0].split(":")
            out.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
    return out


def parse_io_stat_v2(text):
    """io.stat '8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0' -> (bytes entries, ios entries)."""
    nbytes, nios = [], []
    names = {"rbytes": ("Read", nbytes), "wbytes": ("Write", nbytes), "dbytes": ("Discard", nbytes),
             "rios": ("Read", nios), "wios": ("Write", nios), "dios": ("Discard", nios)}
    for line in text.splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        for kv in parts[1:]:
            k, _, v = kv.partition("=")
            if k in names:
                op, lst = names[k]
                lst.append({"major": major, "minor": minor, "op": op, "value": int(v)})
    return nbytes, nios
