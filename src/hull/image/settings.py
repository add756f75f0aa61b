"""Registry settings from configuration files, like dockerd's daemon.json:

    /etc/hull/config.json      system-wide
    $HULL_ROOT/config.json     per store (HULL_ROOT defaults to /var/lib/hull)
    $HULL_CONFIG_FILE          when set, the only file read

    {"insecure-registries": ["myregistry:5000", "registry.lan", "10.0.0.0/8"]}

An insecure registry is reached over HTTPS without certificate verification, else plain HTTP.
Entries are hosts with or without a port (a host without a port matches every port), or CIDR
ranges that match registries given by IP address; an `http://`/`https://` prefix is ignored.
Loopback hosts are always insecure, as in Docker. $HULL_INSECURE_REGISTRIES (comma-separated)
adds to the files. Unknown keys are ignored (the file may hold other components' settings).
"""

import json
import os

from hull.errors import HullError

SYSTEM_FILE = "/etc/hull/config.json"


def config_files():
    if os.environ.get("HULL_CONFIG_FILE"):
        return [os.environ["HULL_CONFIG_FILE"]]
    root = os.environ.get("HULL_ROOT") or "/var/lib/hull"
    return [SYSTEM_FILE, os.path.join(root, "config.json")]


def _read(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise HullError(f"cannot read the hull configuration {path}: {e.strerror}") from None
    try:
        doc = json.loads(data or b"{}")
    except ValueError as e:
        raise HullError(f"hull configuration {path}: invalid JSON ({e}); fix or remove the file") from None
    if not isinstance(doc, dict):
        raise HullError(f"hull configuration {path}: must be a JSON object, like "
                        '{"insecure-registries": ["host:5000"]}')
    return doc


def _normalize(entry, path):
    if not isinstance(entry, str) or not entry.strip():
        raise HullError(f"hull configuration {path}: insecure-registries entries must be non-empty strings "
                        f"(host, host:port or CIDR), got {entry!r}")
    e = entry.strip()
    for prefix in ("http://", "https://"):
        if e.lower().startswith(prefix):
            e = e[len(prefix):]
    return e.rstrip("/").lower()


def insecure_registries():
    """The configured insecure registry entries (normalized), files first, then the env var."""
    out = []
    for path in config_files():
        doc = _read(path)
        entries = doc.get("insecure-registries", [])
        if not isinstance(entries, list):
            raise HullError(f"hull configuration {path}: insecure-registries must be a list of strings")
        out += [_normalize(e, path) for e in entries]
    out += [_normalize(e, "$HULL_INSECURE_REGISTRIES")
            for e in os.environ.get("HULL_INSECURE_REGISTRIES", "").split(",") if e.strip()]
    return out


def _split_host(host):
    """'h:p' -> ('h', 'p'); '[::1]:p' -> ('::1', 'p'); 'h' -> ('h', None)."""
    if host.startswith("["):
        h, _, rest = host[1:].partition("]")
        return h, rest[1:] if rest.startswith(":") else None
    if host.count(":") == 1:
        h, _, p = host.partition(":")
        return h, p
    return host, None


def matches(host, entries):
    """Is registry `host` (as in a reference: name[:port]) covered by one of `entries`?"""
    host = host.lower()
    h, _ = _split_host(host)
    for e in entries:
        if e == host or e == h:
            return True
        if "/" in e:
            import ipaddress
            try:
                net = ipaddress.ip_network(e, strict=False)
                if ipaddress.ip_address(h) in net:
                    return True
            except ValueError:
                continue
    return False


def is_loopback(host):
    h, _ = _split_host(host.lower())
    return h in ("localhost", "::1") or h.startswith("127.") or h.endswith(".localhost")


def is_insecure(host):
    return is_loopback(host) or matches(host, insecure_registries())
