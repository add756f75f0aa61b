"""Run options -> the container's recorded config, and image config + that config -> the OCI
config.json the runtime runs.

    cfg = container_config(image, opts)        # Docker-shaped {"Config", "HostConfig", ...}
    spec = build_spec(rec, rootfs)             # the OCI spec dict, from the recorded config

Docker's rules: Entrypoint + Cmd (``--entrypoint`` clears the image's Cmd), image Env then
``-e``/``--env-file``, WorkingDir (created if missing), User by name through the rootfs'
/etc/passwd and /etc/group, Docker's 14 default capabilities, Docker's default seccomp profile,
masked and read-only paths, resources from flags with ``--pids-limit`` 2048 by default (as
podman), cgroupsPath ``/hull/<id>``.
"""

import os
import re

from hull.errors import HullError, NotFound, UsageError

DEFAULT_PIDS_LIMIT = 2048
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_BINARIES = ("/usr/bin/docker-init", "/usr/bin/tini-static", "/usr/bin/catatonit")
INIT_PATH = "/run/hull-init"
CPU_PERIOD = 100000

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$", re.I)
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5}


# ------------------------------------------------------------------------------ parsing
def parse_size(value, flag):
    """"50m", "1g", "512k", "1048576" -> bytes (binary units, as Docker's RAMInBytes)."""
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        return value
    m = _SIZE_RE.match(str(value).strip())
    if not m:
        raise UsageError(f'invalid argument "{value}" for "{flag}" flag: invalid size: \'{value}\'')
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_cpus(value):
    if value in (None, ""):
        return 0
    try:
        f = float(value)
    except ValueError:
        raise UsageError(f'invalid argument "{value}" for "--cpus" flag: failed to parse {value} as a rational number') from None
    if f < 0:
        raise UsageError(f"invalid argument \"{value}\" for \"--cpus\" flag: range of CPUs is from 0.01 to {os.cpu_count()}.00, as there are only {os.cpu_count()} CPUs available")
    if f > (os.cpu_count() or 1):
        raise UsageError(f"range of CPUs is from 0.01 to {os.cpu_count()}.00, as there are only {os.cpu_count()} CPUs available")
    return int(f * 1e9)


def parse_restart(value):
    if not value or value == "no":
        return {"Name": "no", "MaximumRetryCount": 0}
    name, _, count = value.partition(":")
    if name not in ("always", "on-failure", "unless-stopped"):
        raise UsageError(f"invalid restart policy {value!r}: use no, always, unless-stopped or on-failure[:max-retries]")
    if count and name != "on-failure":
        raise UsageError(f"invalid restart policy {value!r}: maximum retry count cannot be used with restart policy '{name}'")
    try:
        n = int(count) if count else 0
    except ValueError:
        raise UsageError(f"invalid restart policy {value!r}: the retry count must be a number") from None
    if n < 0:
        raise UsageError(f"invalid restart policy {value!r}: the retry count must not be negative")
    return {"Name": name, "MaximumRetryCount": n}


def parse_ulimit(text):
    name, _, vals = text.partition("=")
    soft, _, hard = vals.partition(":")
    try:
        soft_i = int(soft)
        hard_i = int(hard) if hard else soft_i
    except ValueError:
        raise UsageError(f"invalid ulimit argument: {text!r} (use name=soft[:hard])") from None
    if name.upper().replace("RLIMIT_", "") not in _RLIMITS:
        raise UsageError(f"invalid ulimit type: {name}")
    if soft_i > hard_i:
        raise UsageError(f"ulimit soft limit must be less than or equal to hard limit: {soft_i} > {hard_i}")
    return {"Name": name.lower().replace("rlimit_", ""), "Soft": soft_i, "Hard": hard_i}


_RLIMITS = ("CORE", "CPU", "DATA", "FSIZE", "LOCKS", "MEMLOCK", "MSGQUEUE", "NICE", "NOFILE",
            "NPROC", "RSS", "RTPRIO", "RTTIME", "SIGPENDING", "STACK", "AS")


def parse_env_file(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if "=" not in line:
                    if line in os.environ:
                        out.append(f"{line}={os.environ[line]}")
                    continue
                out.append(line)
    except OSError as e:
        raise UsageError(f"open {path}: {e.strerror.lower()}") from None
    return out


def _cap_name(c):
    c = c.upper()
    return c if c.startswith("CAP_") or c == "ALL" else "CAP_" + c


def _parse_ns_mode(value, flag, allowed=("host", "private")):
    if not value:
        return ""
    if value in allowed or value.startswith("container:"):
        return value
    raise UsageError(f"invalid {flag} value {value!r}: use {'|'.join(allowed)}|container:<name|id>")


# ------------------------------------------------------------------------------ config
def container_config(image, opts):
    """Validate the run options and make the record's config (Docker's Config/HostConfig)."""
    from hull.kernel import capabilities as caps
    o = dict(opts)
    icfg = (image.config or {}).get("config") or {}
    env = []
    for path in o.get("env_file") or ():
        env += parse_env_file(path)
    for e in o.get("env") or ():
        if "=" not in e:
            if e in os.environ:
                env.append(f"{e}={os.environ[e]}")
            continue
        env.append(e)
    for c in list(o.get("cap_add") or ()) + list(o.get("cap_drop") or ()):
        n = _cap_name(c)
        if n != "ALL" and n not in caps.NUMBERS:
            raise UsageError(f"unknown capability: {c!r}")
    memory = parse_size(o.get("memory"), "--memory")
    if memory and memory < 6 * 1024 * 1024:
        raise UsageError("Minimum memory limit allowed is 6MB")
    swap = o.get("memory_swap")
    swap = -1 if str(swap) == "-1" else parse_size(swap, "--memory-swap")
    if swap and swap != -1 and memory and swap < memory:
        raise UsageError("Minimum memoryswap limit should be larger than memory limit, see usage")
    if swap and not memory:
        raise UsageError("You should always set the Memory limit when using Memoryswap limit, see usage")
    pids = o.get("pids_limit")
    if pids is None:
        pids = DEFAULT_PIDS_LIMIT
    try:
        pids = int(pids)
    except ValueError:
        raise UsageError(f'invalid argument "{pids}" for "--pids-limit" flag') from None
    cpu_shares = int(o.get("cpu_shares") or 0)
    if cpu_shares < 0:
        raise UsageError(f"invalid --cpu-shares {cpu_shares}: must be positive")
    blkio = int(o.get("blkio_weight") or 0)
    if blkio and not 10 <= blkio <= 1000:
        raise UsageError(f"invalid --blkio-weight {blkio}: range is from 10 to 1000")
    sec = []
    for s in o.get("security_opt") or ():
        key, sep, val = s.partition("=") if "=" in s else s.partition(":")
        if key == "no-new-privileges":
            if val not in ("", "true", "false"):
                raise UsageError(f"invalid --security-opt {s!r}")
        elif key == "seccomp":
            if val != "unconfined" and not os.path.isfile(val):
                raise UsageError(f"opening seccomp profile ({val}) failed: no such file or directory")
        elif key == "landlock":
            pass
        elif key in ("label", "apparmor"):
            pass
        else:
            raise UsageError(f"invalid --security-opt {s!r}: use no-new-privileges, seccomp=unconfined|FILE, landlock=RULES")
        sec.append(s)
    restart = parse_restart(o.get("restart"))
    if o.get("rm") and restart["Name"] != "no":
        raise UsageError("Conflicting options: --restart and --rm")
    binds, mounts, tmpfs = [], [], {}
    for v in o.get("volume") or ():
        binds.append(_parse_volume(v))
    for m in o.get("mount") or ():
        mounts.append(_parse_mount(m))
    for t in o.get("tmpfs") or ():
        dest, _, topts = t.partition(":")
        if not dest.startswith("/"):
            raise UsageError(f"invalid --tmpfs {t!r}: the path must be absolute")
        tmpfs[dest] = topts
    for d in o.get("device") or ():
        _parse_device(d)
    entry = o.get("entrypoint")
    if entry is not None:
        entrypoint = [entry] if entry else []
        cmd = list(o.get("command") or [])
    else:
        entrypoint = list(icfg.get("Entrypoint") or [])
        cmd = list(o.get("command") or []) or list(icfg.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise UsageError("no command specified")
    labels = dict(icfg.get("Labels") or {})
    for lab in o.get("label") or ():
        k, _, v = lab.partition("=")
        labels[k] = v
    stop_signal = o.get("stop_signal") or icfg.get("StopSignal") or "SIGTERM"
    from hull.runtime.lifecycle import parse_signal
    try:
        parse_signal(stop_signal)
    except HullError:
        raise UsageError(f"invalid signal: {stop_signal}") from None
    from hull.network import options as netopts
    network, net_host, net_cfg, net_endpoints = netopts.from_run_options(o, icfg)
    userns = o.get("userns") or ""
    from hull.engine import userns as uns
    uns.parse_mode(userns)  # auto[:size=N]; keep-id is refused as in podman (rootless only)
    ulimits = [parse_ulimit(u) for u in o.get("ulimit") or ()]
    config = {
        "Hostname": o.get("hostname") or "",
        "Domainname": "",
        "User": o.get("user") if o.get("user") is not None else icfg.get("User", ""),
        "Env": list(icfg.get("Env") or []) + env,
        "Cmd": cmd,
        "Entrypoint": entrypoint or None,
        "WorkingDir": o.get("workdir") or icfg.get("WorkingDir") or "",
        "Tty": bool(o.get("tty")),
        "OpenStdin": bool(o.get("interactive")),
        "AttachStdin": bool(o.get("interactive")) and not o.get("detach"),
        "Labels": labels,
        "StopSignal": stop_signal,
        "StopTimeout": int(o["stop_timeout"]) if o.get("stop_timeout") is not None else 10,
        "Image": o.get("image_ref") or image.name or image.id,
        "Volumes": dict(icfg.get("Volumes") or {}),
        **net_cfg,
    }
    from hull.engine import health
    hc = health.container_healthcheck(icfg.get("Healthcheck"), o)  # image's + --health-* flags
    if hc:
        config["Healthcheck"] = hc
    if icfg.get("Shell"):
        config["Shell"] = list(icfg["Shell"])  # CMD-SHELL health checks run in it (Docker)
    host = {
        "Binds": binds, "Mounts": mounts, "Tmpfs": tmpfs,
        "ReadonlyRootfs": bool(o.get("read_only")),
        "Memory": memory, "MemorySwap": swap,
        "MemoryReservation": parse_size(o.get("memory_reservation"), "--memory-reservation"),
        "NanoCpus": parse_cpus(o.get("cpus")), "CpuShares": cpu_shares,
        "CpusetCpus": o.get("cpuset_cpus") or "", "PidsLimit": pids, "BlkioWeight": blkio,
        "BlkioDeviceReadBps": list(o.get("device_read_bps") or []),
        "BlkioDeviceWriteBps": list(o.get("device_write_bps") or []),
        "Devices": list(o.get("device") or []), "Ulimits": ulimits,
        "CapAdd": [_cap_name(c) for c in o.get("cap_add") or ()],
        "CapDrop": [_cap_name(c) for c in o.get("cap_drop") or ()],
        "SecurityOpt": sec, "Privileged": bool(o.get("privileged")),
        "NetworkMode": network, **net_host,
        "PidMode": _parse_ns_mode(o.get("pid"), "--pid", ("host",)),
        "IpcMode": _parse_ns_mode(o.get("ipc"), "--ipc", ("host", "private", "shareable", "none")),
        "UTSMode": _parse_ns_mode(o.get("uts"), "--uts", ("host",)),
        "CgroupnsMode": _parse_ns_mode(o.get("cgroupns"), "--cgroupns") or "private",
        "UsernsMode": userns,
        "Init": bool(o.get("init")),
        "RestartPolicy": restart,
        "AutoRemove": bool(o.get("rm")),
        "LogConfig": {"Type": "json-file", "Config": _log_opts(o.get("log_opt") or ())},
        "TimeOffsets": _time_offsets(o.get("timens") or ()),
    }
    return {
        "Image": image.id, "ImageDigest": image.digest, "ImageName": config["Image"],
        "Path": args[0], "Args": args[1:], "Config": config, "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": net_endpoints},
    }


def _log_opts(items):
    out = {"max-size": "10m", "max-file": "1"}
    for it in items:
        k, _, v = it.partition("=")
        if k not in ("max-size", "max-file"):
            raise UsageError(f"unknown log opt '{k}' for json-file log driver")
        out[k] = v
    parse_size(out["max-size"], "--log-opt max-size")
    if not out["max-file"].isdigit() or int(out["max-file"]) < 1:
        raise UsageError("max-file cannot be less than 1")
    return out


def _time_offsets(items):
    out = {}
    for it in items:
        clock, _, secs = it.partition("=")
        if clock not in ("monotonic", "boottime") or not secs.lstrip("-").isdigit():
            raise UsageError(f"invalid --timens {it!r}: use monotonic=SECONDS or boottime=SECONDS")
        out[clock] = {"secs": int(secs), "nanosecs": 0}
    return out


def _parse_volume(v):
    parts = v.split(":")
    if len(parts) == 1:
        src, dst, mode = "", parts[0], ""
    elif len(parts) == 2:
        src, dst, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        src, dst, mode = parts
    else:
        raise UsageError(f"invalid volume specification: '{v}'")
    if not dst.startswith("/"):
        raise UsageError(f"invalid volume specification: '{v}': the destination must be an absolute path")
    for m in mode.split(",") if mode else ():
        if m not in ("ro", "rw", "z", "Z", "private", "rprivate", "shared", "rshared", "slave", "rslave", "nocopy"):
            raise UsageError(f"invalid mode: {m}")
    if src and not src.startswith("/") and not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", src):
        raise UsageError(f'"{src}" includes invalid characters for a local volume name')
    kind = "bind" if src.startswith("/") else "volume"
    out = {"Type": kind, "Source": src, "Destination": dst, "RW": "ro" not in mode.split(",")}
    if "nocopy" in mode.split(","):
        if kind == "bind":
            raise UsageError(f"invalid volume specification: '{v}': nocopy applies to volumes, not to bind mounts")
        out["VolumeOptions"] = {"NoCopy": True}
    return out


def _parse_mount(text):
    kv = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        kv[k.strip()] = v if sep else "true"
    kind = kv.get("type", "volume")
    src = kv.get("source", kv.get("src", ""))
    dst = kv.get("destination", kv.get("dst", kv.get("target", "")))
    if kind not in ("bind", "volume", "tmpfs"):
        raise UsageError(f"invalid --mount type {kind!r}: use bind, volume or tmpfs")
    if not dst.startswith("/"):
        raise UsageError(f"invalid --mount {text!r}: target must be an absolute path")
    if kind == "bind":
        if not src.startswith("/"):
            raise UsageError(f"invalid --mount {text!r}: a bind source must be an absolute path")
        if not os.path.exists(src):
            raise UsageError(f"invalid mount config for type \"bind\": bind source path does not exist: {src}")
    ro = kv.get("readonly", kv.get("ro", "false")) in ("true", "1")
    out = {"Type": kind, "Source": src, "Destination": dst, "RW": not ro}
    if "volume-nocopy" in kv:
        if kind != "volume":
            raise UsageError(f"invalid --mount {text!r}: volume-nocopy must not be specified on mount type {kind!r}")
        if kv["volume-nocopy"] not in ("true", "1", "false", "0"):
            raise UsageError(f"invalid --mount {text!r}: volume-nocopy must be true or false")
        out["VolumeOptions"] = {"NoCopy": kv["volume-nocopy"] in ("true", "1")}
    if kind == "tmpfs":
        opts = []
        if "tmpfs-size" in kv:
            opts.append(f"size={parse_size(kv['tmpfs-size'], '--mount tmpfs-size')}")
        if "tmpfs-mode" in kv:
            opts.append(f"mode={kv['tmpfs-mode']}")
        out["Options"] = ",".join(opts)
    return out


def _parse_device(text):
    parts = text.split(":")
    host = parts[0]
    if not os.path.exists(host):
        raise UsageError(f"error gathering device information while adding custom device \"{host}\": no such file or directory")
    import stat as st
    mode = os.stat(host).st_mode
    if not (st.S_ISCHR(mode) or st.S_ISBLK(mode)):
        raise UsageError(f"{host} is not a device")
    return parts


# ------------------------------------------------------------------------------ spec
def lookup_user(rootfs, user):
    """"name[:group]" or "uid[:gid]" -> (uid, gid, additional gids) via the rootfs' files."""
    user = user or ""
    if not user:
        return 0, 0, []
    name, _, group = user.partition(":")
    passwd = _read_db(rootfs, "etc/passwd")
    groups = _read_db(rootfs, "etc/group")
    uid = gid = None
    uname = None
    if name.isdigit():
        uid = int(name)
        for e in passwd:
            if len(e) > 3 and e[2] == name:
                uname, gid = e[0], int(e[3]) if e[3].isdigit() else 0
                break
    else:
        for e in passwd:
            if len(e) > 3 and e[0] == name:
                uid, gid, uname = int(e[2]), int(e[3]), name
                break
        if uid is None:
            raise HullError(f"unable to find user {name}: no matching entries in passwd file")
    if gid is None:
        gid = 0
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            for e in groups:
                if len(e) > 2 and e[0] == group:
                    gid = int(e[2])
                    break
            else:
                raise HullError(f"unable to find group {group}: no matching entries in group file")
    extra = []
    if uname:
        for e in groups:
            if len(e) > 3 and uname in e[3].split(",") and e[2].isdigit() and int(e[2]) != gid:
                extra.append(int(e[2]))
    return uid, gid, extra


def _read_db(rootfs, rel):
    from hull.kernel import mounts
    try:
        path = mounts.secure_join(str(rootfs), "/" + rel)
        with open(path) as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except (OSError, HullError):
        return []


def _namespace_path(mode, ns_file, what):
    """container:<ref> -> /proc/<pid>/ns/<ns_file> of that running container."""
    from hull.engine import records
    ref = mode.split(":", 1)[1]
    try:
        other = records.load(ref).refresh()
    except NotFound:
        raise NotFound(f"cannot join {what} of container {ref}: No such container: {ref}") from None
    if other.status != "running" or not other.state.get("Pid"):
        raise HullError(f"cannot join {what} of a non running container: {ref}")
    return f"/proc/{other.state['Pid']}/ns/{ns_file}"


def effective_caps(host_cfg):
    """The capability list for the container: Docker's default +add -drop, or all (clamped to
    this host's bounding set) when privileged. Returns (caps, [names the host cannot grant])."""
    from hull.kernel import capabilities as capmod
    host = capmod.host_bounding()
    known = capmod.all_names()
    if host_cfg.get("Privileged"):
        wanted = list(known)
    else:
        wanted = list(capmod.DOCKER_DEFAULT)
        adds = host_cfg.get("CapAdd") or []
        if "ALL" in adds:
            wanted = list(known)
        else:
            wanted += [c for c in adds if c not in wanted]
        drops = host_cfg.get("CapDrop") or []
        if "ALL" in drops:
            wanted = [c for c in adds if c != "ALL"]
        else:
            wanted = [c for c in wanted if c not in drops]
    granted = [c for c in wanted if c in capmod.NUMBERS and host >> capmod.NUMBERS[c] & 1]
    missing = [c for c in wanted if c not in granted]
    return granted, missing


def _seccomp(host_cfg, caps):
    if host_cfg.get("Privileged"):
        return None
    for s in host_cfg.get("SecurityOpt") or ():
        key, _, val = s.partition("=") if "=" in s else s.partition(":")
        if key == "seccomp":
            if val == "unconfined":
                return None
            return load_seccomp_file(val, caps)
    from hull.runtime.seccomp_profile import default_seccomp
    return default_seccomp(caps)


def load_seccomp_file(path, caps):
    """A seccomp profile file: OCI form, or Docker's (archMap, names/includes/excludes)."""
    import json
    from hull.runtime import seccomp_profile as sp
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"loading seccomp profile {path}: {e}") from None
    arch = sp.native_arch()
    out = {"defaultAction": data.get("defaultAction", "SCMP_ACT_ERRNO")}
    if "defaultErrnoRet" in data:
        out["defaultErrnoRet"] = data["defaultErrnoRet"]
    if data.get("architectures"):
        out["architectures"] = data["architectures"]
    elif data.get("archMap"):
        for entry in data["archMap"]:
            if entry.get("architecture") == {"amd64": "SCMP_ARCH_X86_64"}.get(arch, ""):
                out["architectures"] = [entry["architecture"]] + list(entry.get("subArchitectures") or [])
    rules = []
    for r in data.get("syscalls") or ():
        inc, exc = r.get("includes") or {}, r.get("excludes") or {}
        if inc.get("caps") and not all(c in caps for c in inc["caps"]):
            continue
        if exc.get("caps") and any(c in caps for c in exc["caps"]):
            continue
        names = r.get("names") or ([r["name"]] if r.get("name") else [])
        rule = {"names": names, "action": r["action"]}
        for k in ("args", "errnoRet"):
            if r.get(k) is not None:
                rule[k] = r[k]
        rules.append(rule)
    out["syscalls"] = rules
    from hull.kernel import seccomp
    seccomp.validate(out, path=f"seccomp profile {path}")
    return out


def _resources(host_cfg):
    res = {"devices": [{"allow": False, "access": "rwm"}]}
    if host_cfg.get("Privileged"):
        res["devices"] = [{"allow": True, "access": "rwm"}]
    mem = {}
    if host_cfg.get("Memory"):
        mem["limit"] = host_cfg["Memory"]
        swap = host_cfg.get("MemorySwap")
        if swap:
            mem["swap"] = swap
    if host_cfg.get("MemoryReservation"):
        mem["reservation"] = host_cfg["MemoryReservation"]
    if mem:
        res["memory"] = mem
    cpu = {}
    if host_cfg.get("NanoCpus"):
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = host_cfg["NanoCpus"] * CPU_PERIOD // 1_000_000_000
    if host_cfg.get("CpuShares"):
        cpu["shares"] = host_cfg["CpuShares"]
    if host_cfg.get("CpusetCpus"):
        cpu["cpus"] = host_cfg["CpusetCpus"]
    if cpu:
        res["cpu"] = cpu
    if host_cfg.get("PidsLimit", 0) > 0:
        res["pids"] = {"limit": host_cfg["PidsLimit"]}
    blk = {}
    if host_cfg.get("BlkioWeight"):
        blk["weight"] = host_cfg["BlkioWeight"]
    for key, field in (("BlkioDeviceReadBps", "throttleReadBpsDevice"), ("BlkioDeviceWriteBps", "throttleWriteBpsDevice")):
        for item in host_cfg.get(key) or ():
            dev, _, rate = item.rpartition(":")
            st = os.stat(dev)
            blk.setdefault(field, []).append({"major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                                              "rate": parse_size(rate, "--device-read-bps")})
    if blk:
        res["blockIO"] = blk
    return res


def build_spec(rec, rootfs, console_size=None):
    """The OCI config for `rec` (its recorded Config/HostConfig) over the prepared `rootfs`.
    Side effects inside the container dir: hostname/hosts/resolv.conf files, the working
    directory and mount points in the rootfs, named volumes created on first use."""
    from hull.kernel import mounts as kmounts
    from hull.runtime.spec_default import default_spec
    cfg, host = rec.config["Config"], rec.config["HostConfig"]
    caps, _missing = effective_caps(host)
    spec = default_spec(args=[rec.config["Path"]] + list(rec.config.get("Args") or []), terminal=cfg.get("Tty", False))
    proc = spec["process"]
    hostname = cfg.get("Hostname") or rec.id[:12]
    # env: image env, then -e; PATH and HOSTNAME like Docker, TERM for a tty
    env = {}
    for e in (["PATH=" + DEFAULT_PATH, "HOSTNAME=" + hostname] + (["TERM=xterm"] if cfg.get("Tty") else [])
              + list(cfg.get("Env") or [])):
        k, _, v = e.partition("=")
        env[k] = v
    proc["env"] = [f"{k}={v}" for k, v in env.items()]
    cwd = cfg.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise UsageError(f"the working directory '{cwd}' is invalid, it needs to be an absolute path")
    proc["cwd"] = cwd
    if cwd != "/":
        target = kmounts.secure_join(str(rootfs), cwd)
        os.makedirs(target, exist_ok=True)
    uid, gid, extra = lookup_user(rootfs, cfg.get("User"))
    proc["user"] = {"uid": uid, "gid": gid}
    if extra:
        proc["user"]["additionalGids"] = extra
    proc["capabilities"] = {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}
    proc["noNewPrivileges"] = any(s in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges:true")
                                  for s in host.get("SecurityOpt") or ())
    hard = _host_hard_nofile()
    rl = {"RLIMIT_NOFILE": {"type": "RLIMIT_NOFILE", "soft": hard, "hard": hard}}
    for u in host.get("Ulimits") or ():
        t = "RLIMIT_" + u["Name"].upper()
        rl[t] = {"type": t, "soft": u["Soft"], "hard": u["Hard"]}
    proc["rlimits"] = list(rl.values())
    if console_size:
        proc["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    spec["root"] = {"path": str(rootfs), "readonly": bool(host.get("ReadonlyRootfs"))}
    linux = spec["linux"]
    # namespaces
    ns = []
    modes = {"pid": host.get("PidMode"), "network": host.get("NetworkMode"), "ipc": host.get("IpcMode"),
             "uts": host.get("UTSMode"), "cgroup": host.get("CgroupnsMode"), "mount": "", "time": ""}
    files = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "cgroup": "cgroup"}
    for t in ("pid", "network", "ipc", "uts", "mount", "cgroup"):
        mode = modes[t] or ""
        if mode == "host":
            continue
        if mode.startswith("container:"):
            ns.append({"type": t, "path": _namespace_path(mode, files[t], f"the {t} namespace")})
        elif t == "network" and mode != "none":  # a bridge network: the netns CNI set up
            from hull.network import endpoint
            ns.append({"type": t, "path": (endpoint.load(rec) or {}).get("NetNS") or endpoint.missing(rec)})
        else:
            ns.append({"type": t})
    if host.get("TimeOffsets"):
        ns.append({"type": "time"})
        linux["timeOffsets"] = host["TimeOffsets"]
    userns = host.get("UsernsMode") or ""
    root_ids = None
    if userns not in ("", "host"):  # --userns=auto: the block lifecycle.create allocated
        from hull.engine import userns as uns
        uids, gids = uns.oci_mappings(host.get("IDMappings"))
        if not uids or not gids:
            raise HullError(f"container {rec.name} has --userns={userns} but no id mappings recorded; "
                            "remove it and run it again")
        ns.append({"type": "user"})
        linux["uidMappings"], linux["gidMappings"] = uids, gids
        root_ids = uns.root_ids(host["IDMappings"])
        from hull.kernel.idmap import host_id
        if host_id(5, gids) is None:  # a small block without the tty group: as podman, no gid=5
            for m in spec["mounts"]:
                if m["type"] == "devpts":
                    m["options"] = [o for o in m.get("options", []) if o != "gid=5"]
        uns.make_traversable(rec.dir)  # the mapped root mounts from here (rootfs, /etc files)
    linux["namespaces"] = ns
    if modes["uts"] == "host":
        spec.pop("hostname", None)
    else:
        spec["hostname"] = hostname
    linux["cgroupsPath"] = rec.cgroup_path
    linux["resources"] = _resources(host)
    if host.get("Privileged"):
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
        for m in spec["mounts"]:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m.get("options", []) if o != "ro"]
    else:
        sc = _seccomp(host, caps)
        if sc:
            linux["seccomp"] = sc
    for s in host.get("SecurityOpt") or ():
        if s.startswith("landlock="):
            spec.setdefault("annotations", {})["org.hull.landlock"] = s.split("=", 1)[1]
    devices = host_devices() if host.get("Privileged") else []
    for d in host.get("Devices") or ():
        parts = d.split(":")
        st = os.stat(parts[0])
        import stat as stmod
        devices.append({"path": parts[1] if len(parts) > 1 else parts[0],
                        "type": "c" if stmod.S_ISCHR(st.st_mode) else "b",
                        "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                        "fileMode": st.st_mode & 0o777, "uid": 0, "gid": 0})
    if devices:
        linux["devices"] = devices
    # mounts: /etc files, volumes, tmpfs, init
    mounts = spec["mounts"]
    if modes["network"] == "host":
        mounts = [m for m in mounts if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                       "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    from hull.network import endpoint
    etc = endpoint.etc_files(rec, hostname, modes["network"] or "none")
    for name, path in etc.items():
        if root_ids:  # the container's root owns its /etc/hosts, hostname, resolv.conf (podman)
            os.chown(path, *root_ids)
        mounts.append({"destination": f"/etc/{name}", "type": "bind", "source": path,
                       "options": ["rbind", "rprivate"] + (["ro"] if host.get("ReadonlyRootfs") else [])})
    for b in list(host.get("Binds") or ()) + list(host.get("Mounts") or ()):
        mounts.append(_mount_entry(rec, b, root_ids, rootfs))
    for dest, topts in (host.get("Tmpfs") or {}).items():
        o = ["nosuid", "nodev", "noexec"] + [x for x in topts.split(",") if x]
        mounts.append({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": o})
    for dest in (cfg.get("Volumes") or {}):  # image VOLUMEs become anonymous volumes
        if not any(m["destination"] == dest for m in mounts):
            mounts.append(_mount_entry(rec, {"Type": "volume", "Source": "", "Destination": dest, "RW": True},
                                       root_ids, rootfs))
    if host.get("Init"):
        init = next((p for p in INIT_BINARIES if os.path.exists(p)), None)
        if not init:
            raise HullError("--init: no init binary found (install tini: apt-get install tini)")
        mounts.append({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["bind", "ro"]})
        proc["args"] = [INIT_PATH, "--"] + proc["args"]
    spec["mounts"] = mounts
    spec.setdefault("annotations", {})["org.hull.container.name"] = rec.name
    return spec


_HOST_DEV_SKIP_DIRS = ("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev")


def host_devices(root="/dev"):
    """--privileged: every device node under the host's /dev as linux.devices entries (what
    Docker/containerd's HostDevices give a privileged container): recursive, without the pts,
    shm, mqueue and fd dirs, /dev/console (the container gets its own) and the nodes the runtime
    always makes; the host's mode, owner and numbers are kept."""
    import stat as stmod
    from hull.runtime.devices import DEFAULT_DEVICES
    always = {d[0] for d in DEFAULT_DEVICES}
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _HOST_DEV_SKIP_DIRS)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if path in always or path == "/dev/console":
                continue
            try:
                st = os.lstat(path)
            except OSError:  # gone meanwhile
                continue
            if stmod.S_ISCHR(st.st_mode):
                kind = "c"
            elif stmod.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            out.append({"path": path, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                        "fileMode": stmod.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return out


def _host_hard_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return min(hard if hard != resource.RLIM_INFINITY else 1048576, 1048576)


def copy_up(rootfs, dest, volume):
    """Docker's copy-up: a volume that is empty when the container starts gets what the image
    has at the mount point (files, dirs, symlinks, device nodes and fifos, with owners, modes,
    times and xattrs) and that directory's owner and mode. Bind mounts never; a volume with
    anything in it never again; `volume-nocopy` / `:nocopy` turns it off. The image is read
    through the mounted rootfs, so with --userns=auto the ids are already the mapped ones."""
    from hull.kernel import mounts as kmounts
    if rootfs is None or os.listdir(volume):
        return False
    try:
        src = kmounts.secure_join(str(rootfs), dest)
    except HullError:
        return False
    if not os.path.isdir(src) or os.path.islink(src):
        return False
    entries = os.listdir(src)
    for name in entries:
        _copy_entry(os.path.join(src, name), os.path.join(volume, name))
    st = os.stat(src)
    os.chown(volume, st.st_uid, st.st_gid)
    os.chmod(volume, st.st_mode & 0o7777)
    return bool(entries)


def _copy_entry(src, dst):
    import shutil
    import stat as stmod
    st = os.lstat(src)
    mode = st.st_mode
    if stmod.S_ISDIR(mode):
        os.mkdir(dst)
        for name in os.listdir(src):
            _copy_entry(os.path.join(src, name), os.path.join(dst, name))
    elif stmod.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stmod.S_ISREG(mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
    elif stmod.S_ISCHR(mode) or stmod.S_ISBLK(mode) or stmod.S_ISFIFO(mode):
        os.mknod(dst, mode, st.st_rdev)
    else:
        return  # sockets: nothing to copy
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stmod.S_ISLNK(mode):
        os.chmod(dst, stmod.S_IMODE(mode))  # after chown, which clears setuid/setgid
    try:
        for name in os.listxattr(src, follow_symlinks=False):
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
    except OSError:
        pass  # a filesystem without (these) xattrs: the data and owners are what matters
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _mount_entry(rec, b, root_ids=None, rootfs=None):
    kind, src, dst = b["Type"], b.get("Source") or "", b["Destination"]
    ro = [] if b.get("RW", True) else ["ro"]
    if kind == "tmpfs":
        o = ["nosuid", "nodev"] + [x for x in (b.get("Options") or "").split(",") if x] + ro
        return {"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o}
    if kind == "volume":
        from hull.engine import volumes
        anonymous = not src
        if anonymous:  # one per destination for the container's life (rm -v, --rm remove it)
            anon = rec.config.setdefault("AnonymousVolumes", {})
            src = anon.get(dst) or volumes.new_anonymous_name()
            anon[dst] = src
        new = not volumes.exists(src)
        path = volumes.ensure(src, anonymous=anonymous)
        if root_ids:  # --userns=auto: a new volume belongs to the container's root (podman)
            from hull.engine import userns as uns
            if new:
                os.chown(path, *root_ids)
            uns.make_traversable(path)
        if not (b.get("VolumeOptions") or {}).get("NoCopy"):
            copy_up(rootfs, dst, path)
        return {"destination": dst, "type": "bind", "source": path, "options": ["rbind", "rprivate"] + ro}
    if not os.path.exists(src):
        os.makedirs(src, exist_ok=True)  # Docker creates a missing -v host path
    return {"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"] + ro}
