"""`hull run --userns=auto[:size=N]` (and the refusal of keep-id): id ranges for containers.

podman's semantics: `auto` gives the container its own user namespace with container ids
0..size-1 (65536 by default) mapped onto a block of host ids that no other hull container
uses. The ids come from the ranges of the user `containers` in /etc/subuid and /etc/subgid when
those exist (as podman), else from hull's own range (HULL_RANGE, above 2^31 like podman's
suggested `containers:2147483648:...`). Which container holds which block is recorded in
$HULL_ROOT/userns/allocations.json (under a flock), so two containers never overlap; `rm`
releases the block, and a block whose container record is gone is reclaimed.

The rootfs is made usable for the mapped root by the snapshot (idmapped lower layers under the
overlay, or a chowned copy where the kernel cannot idmap), named volumes are chowned to the
mapped root when they are first created, and bind mounts are left alone: what the container's
root writes there is owned by the mapped host uid (as podman without `:idmap`).

`keep-id` maps the calling user into the container; like podman, it exists for rootless use
only, and hull runs containers as root, so it is refused with podman's message.
"""

import fcntl
import json
import os

from hull.errors import HullError, UsageError

HULL_RANGE = (2147483648, 1073741824)  # 2^31 .. 2^31+2^30: 16384 blocks of 65536
MAX_SIZE = 1 << 24


def parse_mode(value):
    """--userns value -> (mode, size): ("", 0) for the host's, ("auto", N). Raises UsageError."""
    value = value or ""
    if value in ("", "host"):
        return "", 0
    if value == "keep-id" or value.startswith("keep-id:"):
        if os.geteuid() == 0:
            raise UsageError("keep-id is only supported in rootless mode")
        raise UsageError("--userns=keep-id: hull runs containers as root, where podman refuses "
                         "keep-id too (keep-id is only supported in rootless mode)")
    if value == "auto" or value.startswith("auto:"):
        from hull.runtime.subid import DEFAULT_SIZE
        size = DEFAULT_SIZE
        for opt in value[5:].split(",") if value.startswith("auto:") else ():
            key, _, val = opt.partition("=")
            if key != "size":
                raise UsageError(f"invalid --userns {value!r}: unknown option {key!r} (hull supports auto:size=N)")
            if not val.isdigit() or not 1 <= int(val) <= MAX_SIZE:
                raise UsageError(f"invalid --userns {value!r}: size must be a number from 1 to {MAX_SIZE}")
            size = int(val)
        return "auto", size
    raise UsageError(f"invalid --userns {value!r}: use host, auto, auto:size=N or keep-id")


def _dir():
    from hull.engine import records
    return os.path.join(records.hull_root(), "userns")


def _available():
    """{"uid": [(start, count)], "gid": [...]}: the `containers` user's subordinate ranges, or
    hull's own range when /etc/subuid (subgid) has none for it."""
    from hull.runtime import subid
    out = {}
    for kind, path in (("uid", subid.SUBUID), ("gid", subid.SUBGID)):
        out[kind] = subid.ranges(subid.AUTO_USER, path) or [HULL_RANGE]
    return out


class _Ledger:
    def __enter__(self):
        d = _dir()
        os.makedirs(d, mode=0o700, exist_ok=True)
        self.path = os.path.join(d, "allocations.json")
        self.fd = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            with open(self.path) as f:
                self.data = json.load(f)
        except (FileNotFoundError, ValueError):
            self.data = {}
        return self

    def save(self):
        from hull.engine import records
        records.atomic_write_json(self.path, self.data)

    def __exit__(self, *exc):
        os.close(self.fd)


def allocate(cid, size):
    """A free block of `size` uids and gids for container `cid`; returns the podman-shaped
    {"UidMap": ["0:HOST:SIZE"], "GidMap": [...]} recorded in its HostConfig.IDMappings."""
    from hull.engine import records
    from hull.runtime import subid
    avail = _available()
    with _Ledger() as led:
        for other in list(led.data):  # blocks of containers that are gone are free again
            if other != cid and not os.path.isdir(os.path.join(records.containers_dir(), other)):
                del led.data[other]
        got = {}
        for kind in ("uid", "gid"):
            used = [tuple(v[kind]) for k, v in led.data.items() if k != cid]
            block = subid.pick_range(avail[kind], size, used)
            if block is None:
                total = sum(c for _, c in avail[kind])
                raise HullError(f"--userns=auto: no free block of {size} {kind}s left in the {total} ids "
                                f"hull allocates from; remove containers that use --userns=auto, or "
                                f"give the user 'containers' a larger range in /etc/sub{kind}")
            got[kind] = list(block)
        led.data[cid] = got
        led.save()
    return {"UidMap": [f"0:{got['uid'][0]}:{size}"], "GidMap": [f"0:{got['gid'][0]}:{size}"]}


def release(cid):
    if not os.path.isdir(_dir()):
        return
    with _Ledger() as led:
        if led.data.pop(cid, None) is not None:
            led.save()


def oci_mappings(idmappings):
    """HostConfig.IDMappings -> (linux.uidMappings, linux.gidMappings), or (None, None)."""
    if not idmappings:
        return None, None

    def conv(items):
        out = []
        for it in items:
            c, h, n = (int(x) for x in it.split(":"))
            out.append({"containerID": c, "hostID": h, "size": n})
        return out
    return conv(idmappings.get("UidMap") or ()), conv(idmappings.get("GidMap") or ())


def root_ids(idmappings):
    """The host uid and gid of the container's root (for chowning what it must own)."""
    from hull.kernel.idmap import host_id
    uids, gids = oci_mappings(idmappings)
    return host_id(0, uids), host_id(0, gids)


def make_traversable(path):
    """The container's root (an unprivileged host uid) sets up its mounts itself: give
    `others` search permission (never read) on $HULL_ROOT and the directories below it down to
    `path`, as podman/containers-storage make their roots 0711 for user namespaces."""
    from hull.engine import records
    root = os.path.realpath(records.hull_root())
    path = os.path.realpath(path)
    if not (path == root or path.startswith(root + "/")):
        return
    parts = [root] + [os.path.join(root, *os.path.relpath(path, root).split("/")[:i + 1])
                      for i in range(len(os.path.relpath(path, root).split("/")))] if path != root else [root]
    for p in parts:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue
        if not st.st_mode & 0o001:
            os.chmod(p, (st.st_mode & 0o7777) | 0o001)
