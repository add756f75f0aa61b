"""`hull run` network flags -> the record's NetworkMode, HostConfig/Config fields and
NetworkingConfig endpoints (Docker's names), validated up front so a bad flag leaves nothing.

--network NAME|bridge|none|host|container:<id> (default bridge: hull0, as Docker), --ip, --mac-address,
--network-alias, --dns, --dns-search, --dns-option, --add-host, -p/--publish,
-P/--publish-all (the image's EXPOSE'd ports).
"""

import ipaddress
import re

from hull.errors import UsageError

_MAC_RE = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")


def from_run_options(o, icfg):
    from hull.network import config, endpoint, hosts, ports
    mode = o.get("network") or "bridge"  # Docker's default: the default bridge network
    if mode in ("bridge", "default"):
        mode = config.DEFAULT_NAME
    bridge = endpoint.is_bridge_mode(mode)
    net = None
    if bridge:
        net = config.ensure_default() if mode == config.DEFAULT_NAME else config.load(mode)
        mode = net.name
    elif mode.startswith("container:") and not mode.split(":", 1)[1]:
        raise UsageError("--network container: needs a container name or id")
    binds = ports.parse_publish(o.get("publish") or ())
    if (binds or o.get("publish_all")) and not bridge:
        raise UsageError(f"-p/-P need a bridge network; the network mode {mode!r} has no ports of its own")
    ep = {}
    ip = o.get("ip")
    if ip:
        if not bridge:
            raise UsageError("--ip needs a bridge network (--network NAME)")
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise UsageError(f"invalid --ip {ip!r}: not an IPv4 address") from None
        subnet = ipaddress.ip_network(net.subnet)
        if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address) \
                or str(addr) == net.gateway:
            raise UsageError(f"invalid --ip {ip}: not a free host address of network {net.name} ({net.subnet}, "
                             f"gateway {net.gateway})")
        ep["IPAMConfig"] = {"IPv4Address": str(addr)}
    mac = o.get("mac_address")
    if mac:
        if not bridge:
            raise UsageError("--mac-address needs a bridge network (--network NAME)")
        if not _MAC_RE.match(mac) or int(mac.split(":")[0], 16) & 1:
            raise UsageError(f"invalid --mac-address {mac!r}: use a unicast xx:xx:xx:xx:xx:xx")
        ep["MacAddress"] = mac.lower()
    aliases = list(o.get("network_alias") or ())
    if aliases:
        if not bridge:
            raise UsageError("--network-alias needs a user-defined network")
        ep["Aliases"] = aliases
    hosts.parse_add_host(o.get("add_host"))
    host = {
        "PortBindings": binds, "PublishAllPorts": bool(o.get("publish_all")),
        "Dns": hosts.parse_dns(o.get("dns")), "DnsSearch": list(o.get("dns_search") or ()),
        "DnsOptions": list(o.get("dns_option") or ()), "ExtraHosts": list(o.get("add_host") or ()),
    }
    cfg = {"ExposedPorts": dict(icfg.get("ExposedPorts") or {})}
    if mac:
        cfg["MacAddress"] = mac.lower()
    for b in binds:
        cfg["ExposedPorts"].setdefault(f"{b['ContainerPort']}/{b['Protocol']}", {})
    return mode, host, cfg, ({mode: ep} if bridge else {})
