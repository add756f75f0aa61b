"""Reading the json-file logs the monitor writes: `hull logs [-f] [--since] [--tail] [-t]`.

    for stream, text, ts in read(rec, tail=10, since=t0, follow=True): ...
"""

import json
import os
import time

from hull.engine import records


def parse_since(value):
    """RFC 3339 timestamp, Unix seconds, or a duration like 10s/5m/2h -> epoch seconds."""
    if not value:
        return 0.0
    v = value.strip()
    units = {"s": 1, "m": 60, "h": 3600}
    if v[-1:] in units and v[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(v[:-1]) * units[v[-1]]
    try:
        return float(v)
    except ValueError:
        pass
    t = records.parse_time(v if v.endswith("Z") or "." in v else v + "Z")
    if not t:
        from hull.errors import UsageError
        raise UsageError(f"invalid value for --since: {value!r} (use a timestamp, Unix seconds or 10m)")
    return t


def _files(rec):
    base = rec.log_path
    out = []
    i = 1
    while os.path.exists(f"{base}.{i}"):
        out.append(f"{base}.{i}")
        i += 1
    out.reverse()
    if os.path.exists(base):
        out.append(base)
    return out


def _parse(line):
    try:
        e = json.loads(line)
        return e.get("stream", "stdout"), e.get("log", ""), e.get("time", "")
    except ValueError:
        return None


def read(rec, tail=None, since=0.0, until=0.0, follow=False, poll=0.1):
    """Yield (stream, text, time) entries; with follow, keep going until the container is not
    running any more (and everything it wrote was read)."""
    entries = []
    for path in _files(rec):
        with open(path, "rb") as f:
            for line in f:
                e = _parse(line)
                if e:
                    entries.append(e)
    pos = os.path.getsize(rec.log_path) if os.path.exists(rec.log_path) else 0
    ino = os.stat(rec.log_path).st_ino if os.path.exists(rec.log_path) else None
    if since:
        entries = [e for e in entries if records.parse_time(e[2]) >= since]
    if until:
        entries = [e for e in entries if records.parse_time(e[2]) <= until]
    if tail is not None and tail >= 0:
        entries = entries[-tail:] if tail else []
    yield from entries
    if not follow:
        return
    buf = b""
    while True:
        running = rec.refresh().status in ("running", "paused", "restarting", "starting")
        try:
            st = os.stat(rec.log_path)
        except FileNotFoundError:
            if not running:
                return
            time.sleep(poll)
            continue
        if st.st_ino != ino:  # rotated: read the new file from the start
            ino, pos = st.st_ino, 0
        if st.st_size > pos:
            with open(rec.log_path, "rb") as f:
                f.seek(pos)
                data = f.read()
            pos += len(data)
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                e = _parse(line)
                if e:
                    yield e
            continue
        if not running:
            return
        time.sleep(poll)
