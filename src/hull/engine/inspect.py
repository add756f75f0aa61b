"""`hull inspect`: Docker-shaped JSON for a container, plus hull's own `Namespaces` (type,
inode, path, shared with the host?) and `Cgroup` (mode, path, limits read back from the
kernel); and `render()`, the small Go-template subset `--format` understands."""

import json
import os
import re

from hull.engine import records


def container(rec):
    rec.refresh()
    st = rec.state
    cfg = rec.config
    status = rec.status
    running = status in ("running", "paused", "restarting")
    pid = st.get("Pid", 0) if status in ("running", "paused") else 0
    out = {
        "Id": rec.id,
        "Created": cfg.get("Created"),
        "Path": cfg.get("Path"),
        "Args": cfg.get("Args") or [],
        "State": {
            "Status": status, "Running": running, "Paused": status == "paused",
            "Restarting": status == "restarting", "OOMKilled": bool(st.get("OOMKilled")),
            "Dead": status == "dead", "Pid": pid, "ExitCode": st.get("ExitCode", 0),
            "Error": st.get("Error", ""), "StartedAt": st.get("StartedAt", "0001-01-01T00:00:00Z"),
            "FinishedAt": st.get("FinishedAt", "0001-01-01T00:00:00Z"),
            "MonitorPid": st.get("MonitorPid", 0) if running else 0,
        },
        "Image": cfg.get("Image"),
        "ResolvConfPath": rec.path("resolv.conf"),
        "HostnamePath": rec.path("hostname"),
        "HostsPath": rec.path("hosts"),
        "LogPath": rec.log_path,
        "Name": "/" + rec.name,
        "RestartCount": st.get("RestartCount", 0),
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": cfg.get("HostConfig", {}),
        "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": rec.path("rootfs"), "UpperDir": rec.path("upper"),
                                                    "WorkDir": rec.path("work")}},
        "Mounts": _mounts(rec),
        "Config": cfg.get("Config", {}),
        "NetworkSettings": _network_settings(rec, running),
        "Namespaces": namespaces(rec) if pid else [],
        "Cgroup": cgroup(rec) if running else {"Path": rec.cgroup_path},
    }
    from hull.engine import health
    h = health.read(rec)
    if h is not None:
        out["State"]["Health"] = h
    return out


def _network_settings(rec, running):
    from hull.network import endpoint, ports
    info = endpoint.load(rec) if running else None
    nets = {}
    for name, e in ((info or {}).get("Networks") or {}).items():
        nets[name] = {"NetworkID": e.get("NetworkID", ""), "IPAddress": e.get("IPAddress", ""),
                      "IPPrefixLen": e.get("IPPrefixLen", 0), "Gateway": e.get("Gateway", ""),
                      "MacAddress": e.get("MacAddress", ""), "Aliases": e.get("Aliases") or [],
                      "EndpointID": f"{rec.id[:12]}-{e.get('IfName', '')}"}
    if not nets:
        nets = {rec.config["HostConfig"].get("NetworkMode", "none"): {}}
    first = next(iter(nets.values()))
    return {"Networks": nets, "SandboxKey": (info or {}).get("NetNS", ""),
            "Ports": ports.docker_ports((info or {}).get("Ports") or []),
            "IPAddress": first.get("IPAddress", ""), "Gateway": first.get("Gateway", ""),
            "IPPrefixLen": first.get("IPPrefixLen", 0), "MacAddress": first.get("MacAddress", "")}


def _mounts(rec):
    out = []
    host = rec.config.get("HostConfig", {})
    anon = rec.config.get("AnonymousVolumes") or {}
    for b in list(host.get("Binds") or ()) + list(host.get("Mounts") or ()):
        src = b.get("Source") or anon.get(b["Destination"], "")
        if b["Type"] == "volume":
            out.append({"Type": "volume", "Name": src, "Source": os.path.join(records.volumes_dir(), src, "_data"),
                        "Destination": b["Destination"], "RW": b.get("RW", True)})
        else:
            out.append({"Type": b["Type"], "Source": src, "Destination": b["Destination"], "RW": b.get("RW", True)})
    for dest in host.get("Tmpfs") or {}:
        out.append({"Type": "tmpfs", "Source": "", "Destination": dest, "RW": True})
    return out


def namespaces(rec):
    from hull.engine.namespaces import container_namespaces
    return container_namespaces(rec.state.get("Pid"))


def cgroup(rec):
    """Mode, path and the effective limits as the kernel reports them now."""
    from hull import cgroups
    mode = cgroups.detect_mode()
    mgr = cgroups.manager(rec.cgroup_path)
    out = {"Mode": "v2" if mode == cgroups.UNIFIED else f"v1 ({mode})", "Path": rec.cgroup_path,
           "Paths": {}, "Limits": {}}
    try:
        out["Paths"] = {k or "unified": v for k, v in mgr.paths().items()}
    except Exception:  # noqa: BLE001 - a report, not a failure
        pass
    out["Limits"] = read_limits(mgr, mode)
    return out


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def read_limits(mgr, mode):
    from hull import cgroups
    try:
        paths = mgr.paths()
    except Exception:  # noqa: BLE001
        return {}
    lim = {}

    def num(v):
        if v is None:
            return None
        if v == "max":
            return -1
        try:
            n = int(v)
        except ValueError:
            return v
        return -1 if n >= 0x7FFFFFFFFFFFF000 else n
    if mode == cgroups.UNIFIED:
        d = paths.get("") or next(iter(paths.values()))
        lim["memory"] = num(_read(f"{d}/memory.max"))
        lim["memory_swap"] = num(_read(f"{d}/memory.swap.max"))
        lim["pids"] = num(_read(f"{d}/pids.max"))
        cpu = _read(f"{d}/cpu.max")
        if cpu:
            q, _, p = cpu.partition(" ")
            lim["cpu_quota"], lim["cpu_period"] = num(q), num(p)
        lim["cpu_weight"] = num(_read(f"{d}/cpu.weight"))
        lim["cpuset_cpus"] = _read(f"{d}/cpuset.cpus")
    else:
        if "memory" in paths:
            lim["memory"] = num(_read(f"{paths['memory']}/memory.limit_in_bytes"))
            lim["memory_swap"] = num(_read(f"{paths['memory']}/memory.memsw.limit_in_bytes"))
            lim["memory_reservation"] = num(_read(f"{paths['memory']}/memory.soft_limit_in_bytes"))
        if "pids" in paths:
            lim["pids"] = num(_read(f"{paths['pids']}/pids.max"))
        if "cpu" in paths:
            lim["cpu_quota"] = num(_read(f"{paths['cpu']}/cpu.cfs_quota_us"))
            lim["cpu_period"] = num(_read(f"{paths['cpu']}/cpu.cfs_period_us"))
            lim["cpu_shares"] = num(_read(f"{paths['cpu']}/cpu.shares"))
        if "cpuset" in paths:
            lim["cpuset_cpus"] = _read(f"{paths['cpuset']}/cpuset.cpus")
        if "blkio" in paths:
            lim["blkio_weight"] = num(_read(f"{paths['blkio']}/blkio.weight"))
    return {k: v for k, v in lim.items() if v is not None}


# ------------------------------------------------------------------------------ --format
_TOKEN = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def _lookup(obj, path):
    cur = obj
    for part in [p for p in path.split(".") if p]:
        if isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return None
    return cur


def _value(expr, obj):
    expr = expr.strip()
    if expr.startswith("json "):
        return json.dumps(_value(expr[5:], obj))
    if expr.startswith("index "):
        parts = expr.split()
        base = _value(parts[1], obj)
        key = parts[2].strip('"')
        if isinstance(base, list):
            return base[int(key)]
        return (base or {}).get(key)
    if expr.startswith("lower "):
        return str(_value(expr[6:], obj)).lower()
    if expr.startswith("upper "):
        return str(_value(expr[6:], obj)).upper()
    if expr == ".":
        return obj
    if expr.startswith("."):
        return _lookup(obj, expr)
    if expr.startswith('"') and expr.endswith('"'):
        return expr[1:-1]
    return None


def _fmt(v):
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v) if isinstance(v, dict) else "[" + " ".join(_fmt(x) for x in v) + "]"
    return str(v)


def render(template, obj):
    """`{{.State.Pid}}`, `{{json .State}}`, `{{index .Config.Labels "k"}}`, `{{.Name}}`, text
    around them; `\\t` and `\\n` escapes as Docker's CLI accepts."""
    if template == "json":
        return json.dumps(obj)
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    return _TOKEN.sub(lambda m: _fmt(_value(m.group(1), obj)), template)
