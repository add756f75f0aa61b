"""Published ports: `-p [ip:][hostPort[-end]:]containerPort[-end][/tcp|udp]` and `-P`.

    bindings = parse_publish(["127.0.0.1:8080:80", "53:53/udp"])
    bindings += publish_all(exposed={"80/tcp": {}}, taken=bindings)
    check_free(bindings, others)        # Conflict if another container or a host socket has it
    portmap_entries(bindings)           # the portmap plugin's runtimeConfig.portMappings

A binding is {"HostIp", "HostPort", "ContainerPort", "Protocol"} (Docker's PortBinding with
the container side). An empty host port is given a free ephemeral one when published.
Traffic to a host port is DNATed by the portmap plugin; nothing listens on the host, so
`check_free` also tries to bind the host port to refuse a port a host process holds.
"""

import ipaddress
import socket

from hull.errors import Conflict, UsageError


def _port(text, spec):
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"invalid port spec {spec!r}: {text!r} is not a port number (1-65535)")
    return int(text)


def _range(text, spec):
    lo, sep, hi = text.partition("-")
    a = _port(lo, spec)
    b = _port(hi, spec) if sep else a
    if b < a:
        raise UsageError(f"invalid port spec {spec!r}: the range {text} ends before it starts")
    return list(range(a, b + 1))


def parse_publish(specs):
    out = []
    for spec in specs or ():
        s = spec.strip()
        proto = "tcp"
        if "/" in s:
            s, proto = s.rsplit("/", 1)
            proto = proto.lower()
            if proto not in ("tcp", "udp", "sctp"):
                raise UsageError(f"invalid port spec {spec!r}: protocol must be tcp, udp or sctp")
        host_ip = ""
        if s.startswith("["):
            raise UsageError(f"invalid port spec {spec!r}: IPv6 host addresses are not supported")
        parts = s.split(":")
        if len(parts) == 3:
            host_ip, host, ctr = parts
        elif len(parts) == 2:
            host, ctr = parts
        elif len(parts) == 1:
            host, ctr = "", parts[0]
        else:
            raise UsageError(f"invalid port spec {spec!r}: use [ip:][hostPort:]containerPort[/tcp|udp]")
        if host_ip:
            try:
                addr = ipaddress.ip_address(host_ip)
            except ValueError:
                raise UsageError(f"invalid port spec {spec!r}: {host_ip!r} is not an IP address") from None
            if addr.version != 4:
                raise UsageError(f"invalid port spec {spec!r}: only IPv4 host addresses are supported")
            if str(addr) == "0.0.0.0":
                host_ip = ""
        if not ctr:
            raise UsageError(f"invalid port spec {spec!r}: no container port")
        cports = _range(ctr, spec)
        hports = _range(host, spec) if host else [0] * len(cports)
        if len(hports) != len(cports):
            if host and len(hports) > 1 and len(cports) == 1:
                hports = hports[:1]  # Docker: a host range for one port -> the first free (we take the first)
            else:
                raise UsageError(f"invalid port spec {spec!r}: host and container port ranges differ in size")
        for h, c in zip(hports, cports):
            out.append({"HostIp": host_ip, "HostPort": h, "ContainerPort": c, "Protocol": proto})
    _no_duplicates(out)
    return out


def _no_duplicates(bindings):
    seen = {}
    for b in bindings:
        if not b["HostPort"]:
            continue
        for (ip, port, proto), other in seen.items():
            if port == b["HostPort"] and proto == b["Protocol"] and (not ip or not b["HostIp"] or ip == b["HostIp"]):
                raise Conflict(f"port {_host_str(b)}/{proto} is published twice (for {other} and {b['ContainerPort']})")
        seen[(b["HostIp"], b["HostPort"], b["Protocol"])] = b["ContainerPort"]


def exposed_ports(exposed):
    """Image ExposedPorts {"80/tcp": {}} -> [(80, "tcp")]."""
    out = []
    for key in exposed or {}:
        port, _, proto = str(key).partition("/")
        if port.isdigit():
            out.append((int(port), proto or "tcp"))
    return sorted(out)


def publish_all(exposed, bindings):
    """-P: every exposed port not yet published gets a free host port (later)."""
    have = {(b["ContainerPort"], b["Protocol"]) for b in bindings}
    return [{"HostIp": "", "HostPort": 0, "ContainerPort": p, "Protocol": proto}
            for p, proto in exposed_ports(exposed) if (p, proto) not in have]


def _host_str(b):
    return f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}"


def _bindable(ip, port, proto):
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((ip or "0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _free_port(proto, ip, taken):
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    for _ in range(50):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((ip or "0.0.0.0", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if (port, proto) not in taken:
            return port
    raise Conflict(f"no free {proto} host port found to publish on")


def assign(bindings, others):
    """Check every fixed host port against `others` (bindings of other running containers)
    and the host's sockets; give the unset ones free ports. Returns the completed list."""
    taken = {(o["HostPort"], o["Protocol"]) for o in others}
    out = []
    for b in bindings:
        b = dict(b)
        if not b["HostPort"]:
            b["HostPort"] = _free_port(b["Protocol"], b["HostIp"], taken)
        else:
            for o in others:
                if (o["HostPort"] == b["HostPort"] and o["Protocol"] == b["Protocol"]
                        and (not o["HostIp"] or not b["HostIp"] or o["HostIp"] == b["HostIp"])):
                    raise Conflict(f"Bind for {_host_str(b)} failed: port is already allocated "
                                   f"(published by container {o.get('Container', '?')})")
            if not _bindable(b["HostIp"], b["HostPort"], b["Protocol"]):
                raise Conflict(f"Bind for {_host_str(b)}/{b['Protocol']} failed: the port is in use on the host "
                               "or the address is not local")
        taken.add((b["HostPort"], b["Protocol"]))
        out.append(b)
    return out


def portmap_entries(bindings):
    out = []
    for b in bindings:
        e = {"hostPort": b["HostPort"], "containerPort": b["ContainerPort"], "protocol": b["Protocol"]}
        if b["HostIp"]:
            e["hostIP"] = b["HostIp"]
        out.append(e)
    return out


def docker_ports(bindings):
    """Docker's NetworkSettings.Ports: {"80/tcp": [{"HostIp", "HostPort"}]}."""
    out = {}
    for b in bindings:
        out.setdefault(f"{b['ContainerPort']}/{b['Protocol']}", []).append(
            {"HostIp": b["HostIp"] or "0.0.0.0", "HostPort": str(b["HostPort"])})
    return out


def ps_text(bindings):
    """`hull ps` PORTS: 127.0.0.1:8080->80/tcp, 0.0.0.0:53->53/udp."""
    return ", ".join(f"{_host_str(b)}->{b['ContainerPort']}/{b['Protocol']}" for b in bindings)
