"""Health checks, as Docker runs them (HEALTHCHECK in the image, `--health-*` on `hull run`).

    hc = container_healthcheck(image_hc, opts)   # the container's Config.Healthcheck (or None)
    args = monitor_args(rec)                     # what the monitor needs to probe (or None)
    read(rec) / suffix(rec)                      # State.Health for inspect, "(healthy)" for ps

The probes are run by the container's monitor (engine/monitor.py), which stays small: no
threads, no imports beyond its own. On its poll timer it forks and execs
`hull-runtime --root R exec --pid-file P --process health-process.json ID` with stdout+stderr
on a pipe, every Interval (StartInterval while starting inside StartPeriod); a probe that
outlives Timeout is SIGKILLed (the process in the container through the pid file, then the
runtime). Exit 0 is healthy; anything else counts toward Retries, except failures inside
StartPeriod while the status is still "starting". The monitor keeps
<container>/health.json = {Status, FailingStreak, Log: last 5 {Start, End, ExitCode, Output}}
(Output cut at 4096 bytes) and, as Docker does, marks it "unhealthy" when the container stops.
"""

import json
import os
import re
import sys

from hull.errors import UsageError

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MIN_DURATION = 1_000_000  # Docker refuses durations under 1ms (0 means the default)

_UNITS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}


def parse_duration(text, flag):
    """A Go duration ("30s", "1m30s", "500ms", "0") -> nanoseconds."""
    text = str(text).strip()
    if text == "0":
        return 0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise UsageError(f'invalid argument "{text}" for "{flag}" flag: time: invalid duration "{text}"')
    return int(sum(float(v) * _UNITS[u] for v, u in parts))


def container_healthcheck(image_hc, opts):
    """The container's Healthcheck: the image's, with the run flags laid over it field by
    field (Docker's merge); {"Test": ["NONE"]} for --no-healthcheck; None when neither has one."""
    flags = {k: opts.get(k) for k in ("health_cmd", "health_interval", "health_timeout", "health_retries",
                                      "health_start_period", "health_start_interval")}
    given = {k: v for k, v in flags.items() if v is not None}
    if opts.get("no_healthcheck"):
        if given:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    hc = dict(image_hc or {})
    if not given:
        return hc or None
    if given.get("health_cmd") is not None:
        hc["Test"] = ["CMD-SHELL", given["health_cmd"]] if given["health_cmd"] else []
    for flag, key in (("health_interval", "Interval"), ("health_timeout", "Timeout"),
                      ("health_start_period", "StartPeriod"), ("health_start_interval", "StartInterval")):
        if flag in given:
            ns = parse_duration(given[flag], "--" + flag.replace("_", "-"))
            if ns and ns < MIN_DURATION:
                raise UsageError(f"--{flag.replace('_', '-')} cannot be less than 1ms")
            hc[key] = ns
    if "health_retries" in given:
        n = int(given["health_retries"])
        if n < 0:
            raise UsageError("--health-retries cannot be negative")
        hc["Retries"] = n
    return hc


def active(cfg):
    """The Healthcheck of a container Config when it runs probes, else None."""
    hc = (cfg or {}).get("Healthcheck") or {}
    test = hc.get("Test") or []
    if not test or test[0] == "NONE" or test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        return None
    return hc


def probe_argv(cfg, hc):
    test = hc["Test"]
    if test[0] == "CMD":
        return list(test[1:])
    return list(cfg.get("Shell") or ["/bin/sh", "-c"]) + [test[1]]


def _runtime_binary():
    exe = os.path.join(os.path.dirname(sys.executable), "hull-runtime")
    if os.access(exe, os.X_OK):
        return exe
    import shutil
    return shutil.which("hull-runtime") or exe


def monitor_args(rec):
    """At start (in the process that becomes the monitor): write the probe's OCI process and
    a fresh health.json ("starting", the previous log kept), and return the monitor's
    arguments, or None when the container has no health check (or it cannot be set up: the
    container runs anyway, its health says why)."""
    try:
        return _monitor_args(rec)
    except Exception as e:  # noqa: BLE001 - never fail a start over its health check
        from hull.engine import records
        try:
            records.atomic_write_json(rec.path("health.json"), {
                "Status": "unhealthy", "FailingStreak": 0,
                "Log": [{"Start": records.now(), "End": records.now(), "ExitCode": -1,
                         "Output": f"cannot run the health check: {e}"}]})
        except OSError:
            pass
        return None


def _monitor_args(rec):
    from hull.engine import exec as exec_mod
    from hull.engine import records
    cfg = rec.config.get("Config") or {}
    hc = active(cfg)
    if hc is None:
        return None
    proc = exec_mod.process_spec(rec, probe_argv(cfg, hc))
    proc_path = rec.path("health-process.json")
    records.atomic_write_json(proc_path, proc)
    old = read_file(rec) or {}
    state = {"Status": "starting", "FailingStreak": 0, "Log": list(old.get("Log") or [])[-5:]}
    path = rec.path("health.json")
    records.atomic_write_json(path, state)
    pid_file = rec.path("health.pid")

    def secs(key, default):
        v = hc.get(key) or default
        return v / SECOND
    return {
        "argv": [_runtime_binary(), "--root", records.runtime_root(), "exec", "--pid-file", pid_file,
                 "--process", proc_path, rec.id],
        "interval": secs("Interval", DEFAULT_INTERVAL), "timeout": secs("Timeout", DEFAULT_TIMEOUT),
        "start_period": secs("StartPeriod", DEFAULT_START_PERIOD),
        "start_interval": secs("StartInterval", DEFAULT_START_INTERVAL),
        "retries": hc.get("Retries") or DEFAULT_RETRIES,
        "path": path, "pid_file": pid_file, "state": state,
    }


def read_file(rec):
    try:
        with open(rec.path("health.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read(rec):
    """State.Health for `hull inspect`: None when the container has no health check."""
    if active(rec.config.get("Config")) is None:
        return None
    h = read_file(rec)
    if h is None:
        return {"Status": "starting" if rec.status == "running" else "unhealthy", "FailingStreak": 0, "Log": []}
    return {"Status": h.get("Status", "starting"), "FailingStreak": h.get("FailingStreak", 0),
            "Log": h.get("Log") or []}


def status(rec):
    """"starting" / "healthy" / "unhealthy", or "none" without a health check (ps filters)."""
    h = read(rec)
    return h["Status"] if h else "none"


def suffix(rec):
    """What `hull ps` appends to "Up 3 seconds" for a running container, as Docker does."""
    h = read(rec)
    if h is None:
        return ""
    return " (health: starting)" if h["Status"] == "starting" else f" ({h['Status']})"
