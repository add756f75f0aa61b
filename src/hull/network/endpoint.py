"""A container's attachment to its networks: set up before the container starts, torn down
exactly when it stops (cleanup, rm, crash recovery).

    info = setup(rec)        # netns + CNI ADD per network + DNS entries + /etc files
    teardown(rec)            # CNI DEL per network, DNS entries, bridge if unused, netns, ledger
    info = load(rec)         # <container dir>/network.json (None when not attached)

The record's HostConfig says what to attach: NetworkMode (a network name, or none/host/
container:<id>), PortBindings/PublishAllPorts, and NetworkingConfig.EndpointsConfig (per
network: IPAMConfig.IPv4Address, Aliases, MacAddress). network.json is written *before* the
first ADD and lists every network being attached, so a crash at any point still leaves
teardown enough to DEL (DEL is idempotent).
"""

import json
import os

from hull.errors import HullError
from hull.network import config, lock

SPECIAL = ("none", "host")


def is_bridge_mode(mode):
    return bool(mode) and mode not in SPECIAL and not mode.startswith("container:")


def _path(rec):
    return rec.path("network.json")


def load(rec):
    try:
        with open(_path(rec)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _save(rec, info):
    tmp = _path(rec) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1)
    os.rename(tmp, _path(rec))


def _bridge_lock(network):
    """ADD/DEL on one network (and the bridge's removal when it empties) are serialized by a
    flock on the network's conflist (the host ledger's lock if the conflist is gone)."""
    return lock.held(_bridge_lock_path(network))


def _bridge_lock_path(network):
    from hull.network import hoststate
    p = os.path.join(config.networks_dir(), network + ".conflist")
    return p if os.path.exists(p) else os.path.join(hoststate.state_dir(), "lock.bridges")


def networks_of(rec):
    """[(network name, endpoint config)] in attach order: the NetworkMode network first."""
    host = rec.config["HostConfig"]
    mode = host.get("NetworkMode") or "none"
    if not is_bridge_mode(mode):
        return []
    eps = (rec.config.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    order = [mode] + [n for n in eps if n != mode]
    return [(n, eps.get(n) or {}) for n in order]


def published(rec):
    """The host ports the container holds while running (from network.json)."""
    info = load(rec)
    return (info or {}).get("Ports") or []


def _others_ports(rec):
    from hull.engine import records
    out = []
    for r in records.all_records():
        if r.id == rec.id:
            continue
        for b in published(r):
            out.append(dict(b, Container=r.name))
    return out


def _names(rec, ep):
    return [rec.name, rec.id[:12]] + list(ep.get("Aliases") or [])


def setup(rec):
    """Attach `rec` (bridge networks only; other modes get no netns). Returns network.json."""
    from hull.network import cni, dns, hoststate, netns, ports
    nets = networks_of(rec)
    if not nets:
        return None
    host = rec.config["HostConfig"]
    teardown(rec)  # leftovers of a crashed earlier start
    binds = list(host.get("PortBindings") or [])
    if host.get("PublishAllPorts"):
        binds += ports.publish_all(rec.config["Config"].get("ExposedPorts") or {}, binds)
    binds = ports.assign(binds, _others_ports(rec))
    loaded = [(config.load(name), ep) for name, ep in nets]
    path = netns.path_for(rec.id)
    info = {"NetNS": path, "Networks": {}, "Ports": binds,
            "Pending": [{"Name": n.name, "IfName": f"eth{i}", "Bridge": n.bridge} for i, (n, _) in enumerate(loaded)]}
    _save(rec, info)
    try:
        netns.create(rec.id)
        hoststate.acquire(path)
        for i, (net, ep) in enumerate(loaded):
            _attach(rec, info, net, ep, f"eth{i}", binds if i == 0 else [])
        info.pop("Pending", None)
        _save(rec, info)
    except BaseException:
        teardown(rec)
        raise
    return info


def _attach(rec, info, net, ep, ifname, binds):
    from hull.network import cni, dns, ports
    rc = {}
    if binds:
        rc["portMappings"] = ports.portmap_entries(binds)
    want_ip = (ep.get("IPAMConfig") or {}).get("IPv4Address")
    if want_ip:
        rc["ips"] = [f"{want_ip}/{net.subnet.split('/')[1]}"]
    if ep.get("MacAddress"):
        rc["mac"] = ep["MacAddress"]
    from hull.network import hoststate
    with _bridge_lock(net.name):
        hoststate.claim_bridge(net.bridge)
        fw = hoststate.firewall_needed(net.bridge)
        try:
            res = cni.add(config.for_attachment(net.conflist, rc, firewall=fw), rec.id, info["NetNS"], ifname, rc)
            if fw:
                hoststate.bridge_rules(net.bridge, net.subnet, config.masquerade(net.conflist))
        except HullError as e:
            msg = str(e)
            if want_ip and ("already reserved" in msg or "requested IP address" in msg or "not in" in msg):
                raise HullError(f"cannot give address {want_ip} on network {net.name}: {msg}") from None
            raise
    addr = gw = mac = ""
    for ipc in (res or {}).get("ips") or []:
        if ":" not in ipc.get("address", ""):
            addr, gw = ipc["address"], ipc.get("gateway", "")
            break
    for itf in (res or {}).get("interfaces") or []:
        if itf.get("sandbox") and itf.get("name") == ifname:
            mac = itf.get("mac", "")
    ip, _, plen = addr.partition("/")
    entry = {"NetworkID": net.id, "IPAddress": ip, "IPPrefixLen": int(plen or 0), "Gateway": gw,
             "MacAddress": mac, "IfName": ifname, "Bridge": net.bridge, "Aliases": list(ep.get("Aliases") or []),
             "DNS": net.dns}
    info["Networks"][net.name] = entry
    _save(rec, info)
    if net.dns and ip:
        dns.add(net.name, net.gateway, rec.id, ip, _names(rec, ep))


def _detach(rec, info, name, entry):
    """DEL one network; the errors (strings)."""
    from hull.network import cni, dns, hoststate
    errors = []
    try:
        dns.remove(name, rec.id)
    except (HullError, OSError) as e:
        errors.append(f"dns: {e}")
    try:
        conf = config.load(name).conflist
    except HullError:
        conf = None
    ifname = entry.get("IfName", "eth0")
    c = cni.cached(name, rec.id, ifname)
    if conf is None and c is not None:
        conf = c.get("config")
    bridge = entry.get("Bridge") or (conf or {}).get(config.META, {}).get("bridge", "")
    if conf is not None:
        lk = _bridge_lock_path(name)
        with lock.held(lk):
            errors += [str(e) for e in cni.delete(conf, rec.id, info.get("NetNS") or "", ifname)]
            hoststate.release_bridge(bridge, lock_path=lk)
    return errors


def teardown(rec):
    """Undo setup (idempotent). Raises HullError listing what could not be undone."""
    from hull.network import hoststate, netns
    info = load(rec)
    path = netns.path_for(rec.id)
    if info is None:
        if os.path.exists(path):
            netns.remove(path)
            hoststate.release(path)
        return
    errors = []
    todo = dict(info.get("Networks") or {})
    for p in info.get("Pending") or ():
        todo.setdefault(p["Name"], {"IfName": p["IfName"], "Bridge": p.get("Bridge", "")})
    for name, entry in todo.items():
        errors += _detach(rec, info, name, entry)
    ns = info.get("NetNS") or path
    netns.remove(ns)
    hoststate.release(ns)
    try:
        os.unlink(_path(rec))
    except FileNotFoundError:
        pass
    if errors:
        raise HullError(f"network teardown of container {rec.id[:12]}: " + "; ".join(errors))


def connect(rec, name, ep):
    """Attach a running container to one more network (next ethN)."""
    info = load(rec)
    if info is None:
        raise HullError(f"container {rec.name} has no network namespace of its own (network mode "
                        f"{rec.config['HostConfig'].get('NetworkMode')}): cannot connect it")
    net = config.load(name)
    if net.name in info["Networks"]:
        from hull.errors import Conflict
        raise Conflict(f"container {rec.name} is already connected to network {net.name}")
    used = {e["IfName"] for e in info["Networks"].values()}
    ifname = next(f"eth{i}" for i in range(64) if f"eth{i}" not in used)
    info["Pending"] = [{"Name": net.name, "IfName": ifname, "Bridge": net.bridge}]
    _save(rec, info)
    try:
        _attach(rec, info, net, ep, ifname, [])
    except BaseException:
        _detach(rec, info, net.name, {"IfName": ifname, "Bridge": net.bridge})
        info["Networks"].pop(net.name, None)
        raise
    finally:
        info.pop("Pending", None)
        _save(rec, info)
    return info


def disconnect(rec, name):
    info = load(rec)
    net_name = config.load(name).name if name not in ((info or {}).get("Networks") or {}) else name
    if not info or net_name not in info["Networks"]:
        from hull.errors import Conflict
        raise Conflict(f"container {rec.name} is not connected to network {name}")
    entry = info["Networks"].pop(net_name)
    errors = _detach(rec, info, net_name, entry)
    _save(rec, info)
    if errors:
        raise HullError("; ".join(errors))


def etc_files(rec, hostname, mode, read_only=False):
    """Write the container's hostname/hosts/resolv.conf for its network mode."""
    from hull.network import hosts
    host = rec.config["HostConfig"]
    info = load(rec) if is_bridge_mode(mode) else None
    ips, gw_dns, gateway = [], None, None
    for entry in ((info or {}).get("Networks") or {}).values():
        if entry.get("IPAddress"):
            ips.append(entry["IPAddress"])
        gateway = gateway or entry.get("Gateway")
        if entry.get("DNS") and not gw_dns:
            gw_dns = entry.get("Gateway")
    names = [rec.name] if rec.name and rec.name != hostname else []
    return hosts.write(rec.dir, hostname, "host" if mode == "host" else ("bridge" if info else "none"),
                       names=names, ips=ips[:1], add_hosts=hosts.parse_add_host(host.get("ExtraHosts")),
                       dns=host.get("Dns"), dns_search=host.get("DnsSearch"), dns_options=host.get("DnsOptions"),
                       gateway_dns=gw_dns, gateway=gateway)


def net_io(pid):
    """(rx bytes, tx bytes) over the non-loopback interfaces of the netns of `pid`."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            continue
        v = rest.split()
        if len(v) >= 9:
            rx += int(v[0])
            tx += int(v[8])
    return rx, tx


def missing(rec):
    raise HullError(f"container {rec.name}: its network namespace was not set up "
                    "(network.json missing); start it with `hull start`")
