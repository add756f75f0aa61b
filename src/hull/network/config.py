"""Network records: one CNI conflist per network under $HULL_ROOT/networks/<name>.conflist.

    net = ensure_default()                      # hull0, created on first use
    net = create("backend", subnet="10.90.7.0/24", internal=True)
    net = load("backend"); nets = all_networks(); remove("backend")

A network is a bridge (CNI `bridge` + `host-local` IPAM) followed by `portmap` (published
ports), `firewall` (FORWARD accept for the container, isolation from other bridges:
ingressPolicy same-bridge) and `tuning` (--mac-address). hull's own facts about it (id,
creation time, internal, dns, labels) sit in the conflist under the top-level key "org.hull",
which CNI ignores. `--internal`: no masquerade and no default route.

The subnet of a new network is chosen from 10.90.0.0/16 in /24 steps, skipping every subnet
that overlaps a host route, a host address or another hull network — of this HULL_ROOT or,
through the host-wide claims (`_claim`), of any other; an explicit --subnet that overlaps one
of those is refused.
"""

import ipaddress
import json
import os
import re
import secrets
import time

from hull.errors import Conflict, HullError, NotFound, UsageError

DEFAULT_NAME = "hull0"
POOL = ipaddress.ip_network("10.90.0.0/16")
POOL_PREFIX = 24
CNI_VERSION = "1.0.0"
META = "org.hull"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
RESERVED = ("none", "host", "bridge", "default")


def networks_dir():
    return os.path.join(os.environ.get("HULL_ROOT") or "/var/lib/hull", "networks")


def ipam_dir():
    return os.path.join(networks_dir(), "ipam")


def cache_dir():
    return os.path.join(networks_dir(), "cache")


def _path(name):
    return os.path.join(networks_dir(), name + ".conflist")


class Network:
    """One network: its conflist (the dict CNI reads) and hull's metadata in it."""

    def __init__(self, conflist):
        self.conflist = conflist

    @property
    def name(self):
        return self.conflist["name"]

    @property
    def meta(self):
        return self.conflist.get(META, {})

    @property
    def id(self):
        return self.meta.get("id", "")

    @property
    def subnet(self):
        return self.meta.get("subnet", "")

    @property
    def gateway(self):
        return self.meta.get("gateway", "")

    @property
    def bridge(self):
        return self.meta.get("bridge", "")

    @property
    def internal(self):
        return bool(self.meta.get("internal"))

    @property
    def dns(self):
        return bool(self.meta.get("dns"))

    def inspect(self, containers=None):
        """Docker's `network inspect` shape."""
        return {
            "Name": self.name, "Id": self.id, "Created": self.meta.get("created", ""),
            "Scope": "local", "Driver": "bridge", "EnableIPv6": False,
            "IPAM": {"Driver": "host-local", "Options": {},
                     "Config": [{"Subnet": self.subnet, "Gateway": self.gateway}]},
            "Internal": self.internal, "Attachable": False, "Ingress": False,
            "DNSEnabled": self.dns, "NetworkInterface": self.bridge,
            "Containers": containers or {}, "Options": {}, "Labels": dict(self.meta.get("labels") or {}),
        }


def validate_name(name):
    if not _NAME_RE.match(name or ""):
        raise UsageError(f"invalid network name {name!r}: use letters, digits, '_', '.', '-' "
                         "(up to 63, starting with a letter or digit)")
    if name in RESERVED:
        raise UsageError(f"network name {name!r} is reserved (it names a network mode)")


def load(ref):
    """A network by name, full id or unique id prefix. NotFound otherwise."""
    if ref in ("bridge", "default"):
        return ensure_default()
    p = _path(ref) if _NAME_RE.match(ref or "") else None
    if p and os.path.exists(p):
        return _read(p)
    if ref and re.match(r"^[0-9a-f]{3,64}$", ref):
        hits = [n for n in all_networks() if n.id.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
    raise NotFound(f"network {ref} not found (see `hull network ls`; create it with `hull network create {ref}`)")


def _read(path):
    try:
        with open(path) as f:
            return Network(json.load(f))
    except ValueError as e:
        raise HullError(f"network config {path} is corrupt: {e}; remove it with `hull network rm`") from None


def all_networks():
    d = networks_dir()
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith(".conflist"))
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        try:
            out.append(_read(os.path.join(d, n)))
        except (OSError, HullError):
            continue
    return out


# ------------------------------------------------------------------------------ subnets
def host_networks():
    """IPv4 networks the host already uses: routes (not default) and interface addresses."""
    import subprocess
    out = []
    for kind, args in (("route", ["ip", "-4", "-o", "route", "show", "table", "all"]),
                       ("addr", ["ip", "-4", "-o", "addr"])):
        try:
            text = subprocess.run(args, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for line in text.splitlines():
            words = line.split()
            if kind == "addr":
                cands = words[3:4]
            else:
                cands = words[:2]  # "10.0.0.0/24 dev ..." or "local 10.0.0.1 dev ..."
            for cand in cands:
                try:
                    net = ipaddress.ip_network(cand, strict=False)
                except ValueError:
                    continue
                if net.prefixlen and not net.is_loopback and not (kind == "route" and net.prefixlen == 32):
                    out.append((net, line.strip()))
                break
    return out


# Host-wide subnet claims: every hull network on this host, whatever its HULL_ROOT, holds a
# claim <host state dir>/subnets/<a.b.c.d_len> naming its conflist. A network of another root
# whose bridge is down (no container yet, or lingered away) shows in no route, and without
# the claim two roots' networks could get the same subnet and later clash on the host.
def _claims_dir():
    from hull.network import hoststate
    return os.path.join(hoststate.state_dir(), "subnets")


def _claim_file(net):
    return os.path.join(_claims_dir(), str(net).replace("/", "_"))


def _claims():
    """[(subnet, owner conflist path)] of the live claims; stale ones (their network is gone
    or has another subnet now: its HULL_ROOT was deleted, say) are dropped."""
    out = []
    try:
        names = os.listdir(_claims_dir())
    except OSError:
        return out
    for name in names:
        path = os.path.join(_claims_dir(), name)
        try:
            net = ipaddress.ip_network(name.replace("_", "/"))
            with open(path) as f:
                owner = f.read().strip()
            if _read(owner).subnet == str(net):
                out.append((net, owner))
                continue
        except (OSError, ValueError, HullError):
            pass
        try:
            os.unlink(path)
        except OSError:
            pass
    return out


def _claim(net, owner):
    """Claim `net` for the network whose conflist is `owner`; False if another holds it."""
    os.makedirs(_claims_dir(), mode=0o700, exist_ok=True)
    try:
        fd = os.open(_claim_file(net), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(owner)
    return True


def _release_claim(net, owner):
    try:
        with open(_claim_file(net)) as f:
            if f.read().strip() != owner:
                return
        os.unlink(_claim_file(net))
    except OSError:
        pass


def _overlap(subnet, exclude_name=None):
    """What `subnet` overlaps: another hull network (of any HULL_ROOT) or a host route or
    address; None if free."""
    for n in all_networks():
        if n.name == exclude_name or not n.subnet:
            continue
        if ipaddress.ip_network(n.subnet).overlaps(subnet):
            return f"network {n.name} ({n.subnet})"
    for net, owner in _claims():
        if net.overlaps(subnet) and os.path.dirname(owner) != networks_dir():
            return f"a network of another hull root ({owner}, {net})"
    for net, line in host_networks():
        if net.overlaps(subnet):
            return f"a host route or address ({line})"
    return None


def pick_subnet(skip=()):
    used = [ipaddress.ip_network(n.subnet) for n in all_networks() if n.subnet]
    used += [net for net, _ in _claims()] + list(skip)
    host = [net for net, _ in host_networks()]
    for cand in POOL.subnets(new_prefix=POOL_PREFIX):
        if any(cand.overlaps(u) for u in used) or any(cand.overlaps(h) for h in host):
            continue
        return cand
    raise HullError(f"no free subnet left in {POOL} for a new network: remove unused networks "
                    "(`hull network prune`) or give one with --subnet")


def _bridge_name(name, nid):
    """hull0 for the default network of /var/lib/hull; hull-<id> otherwise (a test's own
    HULL_ROOT must not take the host's hull0)."""
    if name == DEFAULT_NAME and networks_dir() == "/var/lib/hull/networks":
        return DEFAULT_NAME
    return "hull-" + nid[:10]


# ------------------------------------------------------------------------------ create
def conflist_for(name, nid, subnet, gateway, bridge, internal, dns, labels=None):
    ipam = {"type": "host-local", "ranges": [[{"subnet": str(subnet), "gateway": str(gateway)}]],
            "dataDir": ipam_dir()}
    return {
        "cniVersion": CNI_VERSION,
        "name": name,
        META: {"id": nid, "created": _now(), "subnet": str(subnet), "gateway": str(gateway),
               "bridge": bridge, "internal": bool(internal), "dns": bool(dns), "labels": labels or {}},
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "isDefaultGateway": not internal,
             "ipMasq": not internal, "hairpinMode": True, "capabilities": {"ips": True}, "ipam": ipam},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
            {"type": "firewall", "backend": "iptables", "ingressPolicy": "same-bridge"},
            {"type": "tuning", "capabilities": {"mac": True}},
        ],
    }


def masquerade(conflist):
    """Whether the network masquerades outbound traffic (the bridge plugin's ipMasq)."""
    return any(p["type"] == "bridge" and p.get("ipMasq") for p in conflist["plugins"])


def for_attachment(conflist, runtime_config, firewall=True):
    """The plugins one ADD runs (its config is cached, so its DEL runs the same ones): portmap
    only with published ports (without, its ADD changes nothing), tuning only for --mac-address
    (its only use here), firewall for a bridge's first container (hoststate.firewall_needed).
    The bridge plugin's ipMasq is done once per bridge instead (hoststate.bridge_rules: one
    `-s SUBNET ! -o BRIDGE -j MASQUERADE` rule, as Docker has for docker0) — per container it
    costs ~15 iptables runs (a chain with two rules and a POSTROUTING jump, made and removed)."""
    rc = runtime_config or {}
    keep = []
    for p in conflist["plugins"]:
        caps = p.get("capabilities") or {}
        if p["type"] == "bridge" and p.get("ipMasq"):
            p = dict(p, ipMasq=False)
        if p["type"] == "portmap" and caps.get("portMappings") and not rc.get("portMappings"):
            continue
        if p["type"] == "tuning" and set(caps) == {"mac"} and not rc.get("mac") and len(p) == 2:
            continue
        if p["type"] == "firewall" and not firewall:
            continue
        keep.append(p)
    return dict(conflist, plugins=keep)


def _now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def create(name, subnet=None, gateway=None, internal=False, labels=None, dns=True):
    """Write a new network's conflist. Conflict if the name exists or the subnet overlaps."""
    if name != DEFAULT_NAME:
        validate_name(name)
    os.makedirs(networks_dir(), mode=0o700, exist_ok=True)
    from hull.network import lock
    with lock.held(os.path.join(networks_dir(), ".lock")):
        if os.path.exists(_path(name)):
            raise Conflict(f"network with name {name} already exists")
        if subnet:
            try:
                net = ipaddress.ip_network(subnet)
            except ValueError as e:
                if "host bits" in str(e):
                    raise UsageError(f"invalid subnet {subnet}: host bits are set (did you mean "
                                     f"{ipaddress.ip_network(subnet, strict=False)}?)") from None
                raise UsageError(f"invalid subnet {subnet!r}: use CIDR notation, e.g. 10.90.7.0/24") from None
            if net.version != 4:
                raise UsageError(f"invalid subnet {subnet}: only IPv4 subnets are supported")
            if net.prefixlen > 30:
                raise UsageError(f"invalid subnet {subnet}: too small for a gateway and a container (use /30 or larger)")
            clash = _overlap(net)
            if clash or not _claim(net, _path(name)):
                raise Conflict(f"subnet {net} overlaps with {clash or 'a network of another hull root'}: "
                               "choose another --subnet")
        else:
            if gateway:
                raise UsageError("--gateway needs --subnet")
            taken = []
            net = pick_subnet()
            while not _claim(net, _path(name)):  # another root claimed it just now
                taken.append(net)
                net = pick_subnet(skip=taken)
        try:
            if gateway:
                try:
                    gw = ipaddress.ip_address(gateway)
                except ValueError:
                    raise UsageError(f"invalid gateway {gateway!r}: not an IPv4 address") from None
                if gw not in net or gw in (net.network_address, net.broadcast_address):
                    raise UsageError(f"gateway {gw} is not a usable address of subnet {net}")
            else:
                gw = net.network_address + 1
            nid = secrets.token_hex(32)
            conf = conflist_for(name, nid, net, gw, _bridge_name(name, nid), internal,
                                dns and name != DEFAULT_NAME, labels)
            tmp = _path(name) + f".tmp{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(conf, f, indent=1)
            os.rename(tmp, _path(name))
        except BaseException:
            _release_claim(net, _path(name))
            raise
    return Network(conf)


def ensure_default():
    """hull0, created (with a free subnet) the first time it is used."""
    p = _path(DEFAULT_NAME)
    if os.path.exists(p):
        return _read(p)
    try:
        return create(DEFAULT_NAME)
    except Conflict:
        return _read(p)


def remove(name):
    p = _path(name)
    from hull.network import hoststate, lock
    if not os.path.exists(p):
        raise NotFound(f"network {name} not found")
    try:
        bridge = _read(p).bridge
    except (OSError, HullError):
        bridge = ""
    with lock.held(p):  # the lock ADD/DEL on the network take
        try:
            subnet = _read(p).subnet
        except (OSError, HullError):
            subnet = None
        try:
            os.unlink(p)
        except FileNotFoundError:
            raise NotFound(f"network {name} not found") from None
        if subnet:
            _release_claim(ipaddress.ip_network(subnet), p)
        hoststate.drop_bridge(bridge)  # it may linger after its last container (hoststate.linger)
    import shutil
    shutil.rmtree(os.path.join(ipam_dir(), name), ignore_errors=True)
