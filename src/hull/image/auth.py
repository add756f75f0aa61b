"""Registry credentials, stored like Docker's config.json.

    {"auths": {"localhost:5000": {"auth": base64("user:password")}}}

hull writes $HULL_AUTH_FILE, else $HULL_CONFIG/config.json, else ~/.hull/config.json, always
mode 0600 (atomically). Lookups fall back to Docker's ~/.docker/config.json (or
$DOCKER_CONFIG/config.json), read-only. Docker Hub is keyed "https://index.docker.io/v1/".
"""

import base64
import json
import os
from pathlib import Path

from hull.errors import HullError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def config_path():
    if os.environ.get("HULL_AUTH_FILE"):
        return Path(os.environ["HULL_AUTH_FILE"])
    if os.environ.get("HULL_CONFIG"):
        return Path(os.environ["HULL_CONFIG"]) / "config.json"
    return Path.home() / ".hull" / "config.json"


def _docker_path():
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def key_for(host):
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB_KEY
    return host


def _strip(k):
    for p in ("https://", "http://"):
        if k.startswith(p):
            k = k[len(p):]
    return k.split("/", 1)[0]


def _read(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (ValueError, OSError) as e:
        raise HullError(f"cannot read credentials file {path}: {e}; fix or remove it") from None


def _write(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps(data, indent="\t").encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _find(auths, host):
    key = key_for(host)
    if key in auths:
        return auths[key]
    for k, v in auths.items():
        if _strip(k) == _strip(key) or (key == DOCKER_HUB_KEY and _strip(k) in ("docker.io", "index.docker.io")):
            return v
    return None


def get(host):
    """(username, password) for a registry host, or None."""
    for path in (config_path(), _docker_path()):
        entry = _find(_read(path).get("auths", {}), host)
        if not entry:
            continue
        if entry.get("auth"):
            try:
                user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise HullError(f"{path}: the credentials for {host} are not valid base64 'user:password'") from None
            return user, pw
        if entry.get("username"):
            return entry["username"], entry.get("password", "")
    return None


def store(host, username, password):
    path = config_path()
    data = _read(path)
    auths = data.setdefault("auths", {})
    for k in [k for k in auths if _strip(k) == _strip(key_for(host))]:
        del auths[k]
    auths[key_for(host)] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    _write(path, data)
    return path


def remove(host):
    """Forget the credentials for host. Returns True if there were any."""
    path = config_path()
    data = _read(path)
    auths = data.get("auths", {})
    keys = [k for k in auths if _strip(k) == _strip(key_for(host))]
    for k in keys:
        del auths[k]
    if keys:
        _write(path, data)
    return bool(keys)
