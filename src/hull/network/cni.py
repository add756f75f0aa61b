"""Invoking CNI plugins as the CNI spec (1.0) says.

    result = add(conflist, cid, netns_path, "eth0", runtime_config={"portMappings": [...]})
    check(conflist, cid, netns_path, "eth0")
    errors = delete(conflist, cid, netns_path, "eth0")   # from the cached config if there is one

Each plugin of the list runs as an executable found in CNI_PATH with CNI_COMMAND,
CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH in its environment and its network
config on stdin: the list's `name` and `cniVersion`, `runtimeConfig` built from the plugin's
declared `capabilities`, and `prevResult` (the previous plugin's result on ADD; the cached
result on CHECK and DEL). ADD runs the plugins in order; a failed ADD is rolled back with DEL
in reverse order. DEL runs in reverse order, keeps going past errors and is idempotent. The
result of an ADD is cached (with the config and runtimeConfig it used) under
$HULL_ROOT/networks/cache/results/<network>-<container>-<ifname>, as libcni does, so DEL works
even if the network's config was changed or removed.
"""

import json
import os
import subprocess

from hull.errors import HullError

PLUGIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni")


class CNIError(HullError):
    """A plugin failed: its error code, msg and details (CNI's error result)."""

    def __init__(self, plugin, command, network, code, msg, details=""):
        self.plugin, self.command, self.code, self.msg = plugin, command, code, msg
        text = f"CNI plugin {plugin} {command} on network {network} failed: {msg}"
        if details and details not in msg:
            text += f" ({details})"
        super().__init__(text)


def plugin_path():
    env = os.environ.get("CNI_PATH")
    dirs = env.split(":") if env else list(PLUGIN_DIRS)
    return ":".join(d for d in dirs if os.path.isdir(d))


def find_plugin(kind):
    for d in plugin_path().split(":"):
        p = os.path.join(d, kind)
        if d and os.access(p, os.X_OK):
            return p
    raise HullError(f"CNI plugin {kind!r} not found in {plugin_path() or ':'.join(PLUGIN_DIRS)}: "
                    "install Debian's containernetworking-plugins (apt-get install containernetworking-plugins)")


def _cache_path(network, cid, ifname):
    from hull.network.config import cache_dir
    return os.path.join(cache_dir(), "results", f"{network}-{cid}-{ifname}")


def _plugin_conf(conflist, plugin, runtime_config, prev):
    conf = dict(plugin)
    conf["name"] = conflist["name"]
    conf["cniVersion"] = conflist.get("cniVersion", "1.0.0")
    caps = plugin.get("capabilities") or {}
    rc = {k: v for k, v in (runtime_config or {}).items() if caps.get(k) and v}
    conf.pop("runtimeConfig", None)
    if rc:
        conf["runtimeConfig"] = rc
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def exec_plugin(conf, command, cid, netns, ifname, args=""):
    """Run one plugin; its parsed result (ADD) or None. CNIError on failure."""
    exe = find_plugin(conf["type"])
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns or "",
           "CNI_IFNAME": ifname, "CNI_ARGS": args, "CNI_PATH": plugin_path(),
           "PATH": os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin"}
    p = subprocess.run([exe], input=json.dumps(conf).encode(), env=env, capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace").strip()
    if p.returncode != 0:
        try:
            err = json.loads(out)
        except ValueError:
            err = {"code": p.returncode, "msg": out or p.stderr.decode(errors="replace").strip() or f"exit {p.returncode}"}
        raise CNIError(conf["type"], command, conf["name"], err.get("code", p.returncode), err.get("msg", ""),
                       err.get("details", ""))
    if command == "ADD":
        try:
            return json.loads(out) if out else None
        except ValueError:
            raise CNIError(conf["type"], command, conf["name"], 999, f"invalid result: {out[:200]!r}") from None
    return None


def add(conflist, cid, netns, ifname, runtime_config=None, args=""):
    """ADD the container to the network; the final result. Rolled back (DEL) on failure."""
    prev = None
    done = []
    try:
        for plugin in conflist["plugins"]:
            conf = _plugin_conf(conflist, plugin, runtime_config, prev)
            done.append(plugin)
            res = exec_plugin(conf, "ADD", cid, netns, ifname, args)
            if res is not None:
                prev = res
    except BaseException:
        for plugin in reversed(done):
            try:
                exec_plugin(_plugin_conf(conflist, plugin, runtime_config, prev), "DEL", cid, netns, ifname, args)
            except HullError:
                pass
        raise
    path = _cache_path(conflist["name"], cid, ifname)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"kind": "cniCacheV1", "containerId": cid, "ifName": ifname, "networkName": conflist["name"],
                   "config": conflist, "runtimeConfig": runtime_config or {}, "cniArgs": args, "result": prev}, f)
    os.rename(tmp, path)
    return prev


def cached(network, cid, ifname):
    try:
        with open(_cache_path(network, cid, ifname)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def check(conflist, cid, netns, ifname):
    """CHECK every plugin the ADD ran (the cached config) against the cached result; CNIError
    if one disagrees."""
    c = cached(conflist["name"], cid, ifname)
    if c is None:
        raise HullError(f"no cached CNI result for container {cid[:12]} on network {conflist['name']}")
    conflist = c.get("config") or conflist
    for plugin in conflist["plugins"]:
        exec_plugin(_plugin_conf(conflist, plugin, c.get("runtimeConfig"), c.get("result")), "CHECK",
                    cid, netns, ifname, c.get("cniArgs", ""))


def delete(conflist, cid, netns, ifname):
    """DEL in reverse order with the cached config/result when there is one. Returns the
    errors (a list of CNIError); the cache entry goes only when every plugin succeeded."""
    c = cached(conflist["name"] if conflist else "", cid, ifname) if conflist else None
    if c is not None:
        conflist = c.get("config") or conflist
    rc = (c or {}).get("runtimeConfig") or {}
    prev = (c or {}).get("result")
    args = (c or {}).get("cniArgs", "")
    errors = []
    for plugin in reversed(conflist["plugins"]):
        if c is not None and (plugin.get("capabilities") or {}).get("portMappings") and not rc.get("portMappings"):
            continue  # portmap's ADD without mappings changed nothing (it returns at once); its DEL costs ~35 ms
        try:
            exec_plugin(_plugin_conf(conflist, plugin, rc, prev), "DEL", cid, netns, ifname, args)
        except HullError as e:
            errors.append(e)
    if not errors:
        try:
            os.unlink(_cache_path(conflist["name"], cid, ifname))
        except FileNotFoundError:
            pass
    return errors
