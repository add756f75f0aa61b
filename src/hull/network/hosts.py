"""/etc/hosts, /etc/resolv.conf and /etc/hostname of a container, written into its record
directory and bind-mounted over the rootfs' files (read-only with --read-only).

    files = write(dir, hostname, mode, ips=[...], add_hosts=[...], dns=[...], dns_search=[...],
                  nameserver_gateway="10.90.1.1")

`mode` is the network mode: "host" copies the host's /etc/hosts and resolv.conf; "none" has
only localhost; a bridge network adds the container's own address under its hostname (and
name), and on a network with DNS the resolver is the network's gateway (aardvark-dns).
Host resolvers on 127.0.0.0/8 cannot be reached from a container's own namespace, so they
are dropped (Docker does the same) and the default falls back to the gateway or nothing.
"""

import ipaddress
import os

from hull.errors import UsageError


def parse_add_host(items):
    out = []
    for it in items or ():
        name, sep, ip = it.partition(":")
        if not sep or not name or not ip:
            raise UsageError(f"invalid --add-host {it!r}: use HOST:IP")
        if ip == "host-gateway":
            out.append((name, ip))
            continue
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise UsageError(f"invalid --add-host {it!r}: {ip!r} is not an IP address") from None
        out.append((name, ip))
    return out


def parse_dns(items):
    for ip in items or ():
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise UsageError(f"invalid --dns {ip!r}: not an IP address") from None
    return list(items or ())


def _host_resolv():
    try:
        with open("/etc/resolv.conf") as f:
            return f.read()
    except OSError:
        return ""


def resolv_conf(mode, dns=None, dns_search=None, dns_options=None, gateway_dns=None):
    host = _host_resolv()
    if mode == "host" and not (dns or dns_search or dns_options):
        return host
    servers, search, options = [], [], []
    for line in host.splitlines():
        w = line.split()
        if not w:
            continue
        if w[0] == "nameserver" and len(w) > 1:
            servers.append(w[1])
        elif w[0] in ("search", "domain"):
            search = w[1:]
        elif w[0] == "options":
            options += w[1:]
    if mode not in ("host",):
        servers = [s for s in servers if not ipaddress.ip_address(s.split("%")[0]).is_loopback]
    if gateway_dns:
        servers = [gateway_dns]
    if dns:
        servers = list(dns)
    if dns_search:
        search = list(dns_search)
    if dns_options:
        options = list(dns_options)
    text = ""
    if search:
        text += "search " + " ".join(search) + "\n"
    for s in servers:
        text += f"nameserver {s}\n"
    if options:
        text += "options " + " ".join(options) + "\n"
    return text


def hosts_file(mode, hostname, names=(), ips=(), add_hosts=(), gateway=None):
    if mode == "host":
        try:
            with open("/etc/hosts") as f:
                text = f.read()
        except OSError:
            text = "127.0.0.1\tlocalhost\n"
    else:
        text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    extra = ""
    for name, ip in add_hosts:
        if ip == "host-gateway":
            if not gateway:
                continue
            ip = gateway
        extra += f"{ip}\t{name}\n"
    aliases = " ".join(dict.fromkeys(n for n in (hostname,) + tuple(names) if n))
    if mode != "host":
        if ips:
            for ip in ips:
                extra += f"{ip}\t{aliases}\n"
        else:
            extra += f"127.0.1.1\t{aliases}\n"
    return text + extra


def write(directory, hostname, mode, names=(), ips=(), add_hosts=(), dns=None, dns_search=None,
          dns_options=None, gateway_dns=None, gateway=None):
    files = {}
    for name, text in (("hostname", hostname + "\n"),
                       ("hosts", hosts_file(mode, hostname, names, ips, add_hosts, gateway)),
                       ("resolv.conf", resolv_conf(mode, dns, dns_search, dns_options, gateway_dns))):
        p = os.path.join(directory, name)
        tmp = p + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, p)
        files[name] = p
    return files
