"""hull-runtime events [--stats] [--interval 5s] ID — runc's event stream as JSON lines.

    {"type": "stats", "id": ID, "data": {...}}   every --interval (once with --stats)
    {"type": "oom", "id": ID}                    when the kernel OOM-kills in the container

Without --stats it runs until the container stops (or is deleted).
"""

import json
import re
import sys
import time

from hull.errors import HullError, NotFound, UsageError
from hull.runtime.state import Container

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text):
    """Go's time.ParseDuration subset runc accepts: '5s', '100ms', '1m30s', '1.5s'."""
    s = str(text).strip()
    if s in ("0", ""):
        raise UsageError("--interval: duration must be greater than 0")
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not pos:
        raise UsageError(f"--interval: invalid duration {text!r} (like 5s, 500ms, 1m)")
    if total <= 0:
        raise UsageError("--interval: duration must be greater than 0")
    return total


def add_arguments(p):
    p.add_argument("--interval", default="5s", help="stats collection interval (default 5s)")
    p.add_argument("--stats", action="store_true", help="display the container's stats then exit")
    p.add_argument("container_id")


def _emit(ev):
    sys.stdout.write(json.dumps(ev, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def run(ctx, args):
    from hull import cgroups
    cid = args.container_id
    interval = parse_duration(args.interval)
    c = Container.load(ctx.root, cid)
    if c.status() == "stopped":
        raise HullError(f"container with id {cid} is not running")
    mgr = cgroups.manager(c.data["cgroupPath"])
    if args.stats:
        _emit({"type": "stats", "id": cid, "data": mgr.stats()})
        return 0
    ooms = mgr.oom_count()
    next_stats = time.monotonic()
    while True:
        try:
            stopped = Container.load(ctx.root, cid).status() == "stopped"
        except NotFound:
            stopped = True
        if mgr.exists():
            n = mgr.oom_count()
            if n > ooms:
                _emit({"type": "oom", "id": cid})
                ooms = n
        if stopped:
            return 0
        now = time.monotonic()
        if now >= next_stats:
            try:
                _emit({"type": "stats", "id": cid, "data": mgr.stats()})
            except HullError as e:
                ctx.log_line("error", f"events: stats of {cid}: {e}")
            next_stats = now + interval
        time.sleep(min(0.1, max(0.0, next_stats - time.monotonic())) or 0.01)
