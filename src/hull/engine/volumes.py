"""Volumes: $HULL_ROOT/volumes/<name>/_data, made on first use (-v NAME:/dst, an image's VOLUME,
`hull volume create`), with <name>/meta.json (created, labels, anonymous).

    volumes.ensure(name, anonymous=False)     # the _data path (created with its meta if new)
    volumes.all_volumes(); volumes.inspect(name); volumes.users(name)
    volumes.remove(name, force=False); volumes.prune(all_=False)

Anonymous volumes (64 hex characters, as Docker's) go with their container on `rm -v` and
`run --rm`; otherwise they stay until `hull volume rm`/`prune`. Named volumes stay until
removed by name (or `prune --all`).
"""

import os
import re
import secrets

from hull.errors import Conflict, NotFound, UsageError
from hull.engine import records

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_ANON_RE = re.compile(r"^[0-9a-f]{64}$")


def _dir(name):
    return os.path.join(records.volumes_dir(), name)


def validate_name(name):
    if not _NAME_RE.match(name or ""):
        raise UsageError(f'"{name}" includes invalid characters for a local volume name, only '
                         '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')


def new_anonymous_name():
    return secrets.token_hex(32)


def ensure(name, anonymous=False, labels=None):
    """The volume's _data dir, made (with meta.json) if the volume is new."""
    d = _dir(name)
    data = os.path.join(d, "_data")
    if not os.path.isdir(data):
        os.makedirs(data, exist_ok=True)
        meta = {"CreatedAt": records.now(), "Labels": labels or {}, "Anonymous": bool(anonymous)}
        records.atomic_write_json(os.path.join(d, "meta.json"), meta)
    return data


def _meta(name):
    m = records.read_json(os.path.join(_dir(name), "meta.json")) or {}
    m.setdefault("Anonymous", bool(_ANON_RE.match(name)))  # made before meta.json existed
    return m


def all_volumes():
    try:
        names = sorted(os.listdir(records.volumes_dir()))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.isdir(os.path.join(_dir(n), "_data"))]


def exists(name):
    return os.path.isdir(os.path.join(_dir(name), "_data"))


def inspect(name):
    if not exists(name):
        raise NotFound(f"get {name}: no such volume")
    m = _meta(name)
    return {"CreatedAt": m.get("CreatedAt", ""), "Driver": "local", "Labels": m.get("Labels") or None,
            "Mountpoint": os.path.join(_dir(name), "_data"), "Name": name, "Options": None,
            "Scope": "local", "Anonymous": m["Anonymous"]}


def users(name):
    """Ids of the containers (any state) that mount the volume."""
    out = []
    for rec in records.all_records():
        host = rec.config.get("HostConfig") or {}
        named = [b.get("Source") for b in list(host.get("Binds") or ()) + list(host.get("Mounts") or ())
                 if b.get("Type") == "volume"]
        if name in named or name in (rec.config.get("AnonymousVolumes") or {}).values():
            out.append(rec.id)
    return out


def remove(name, force=False):
    """Remove a volume no container uses (force: also a missing one, quietly)."""
    if not exists(name):
        if force:
            return
        raise NotFound(f"get {name}: no such volume")
    used = users(name)
    if used:
        raise Conflict(f"remove {name}: volume is in use - [{', '.join(used)}]")
    from hull.engine import trash
    trash.move(_dir(name))


def prune(all_=False):
    """Remove unused anonymous volumes (with all_, unused named ones too); their names."""
    gone = []
    for name in all_volumes():
        if (all_ or _meta(name)["Anonymous"]) and not users(name):
            remove(name)
            gone.append(name)
    return gone
