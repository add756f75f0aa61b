"""Subordinate ids: parse /etc/subuid and /etc/subgid, pick ranges for `--userns=auto`.

Format (subuid(5)): one ``owner:start:count`` per line, owner a user name or numeric uid;
``#`` comments and blank lines are ignored. Like podman, ``--userns=auto`` takes its ids from
the ranges of the user ``containers`` and gives each container a block of ``size`` ids
(65536 by default) that no other container uses.
"""

from hull.errors import HullError

SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"
AUTO_USER = "containers"
DEFAULT_SIZE = 65536


def parse(text, source=SUBUID):
    """[(owner, start, count)] from subuid/subgid text; bad lines raise HullError naming them."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3 or not parts[0]:
            raise HullError(f"{source}:{n}: expected owner:start:count, got {line!r}")
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            raise HullError(f"{source}:{n}: start and count must be numbers, got {line!r}") from None
        if start < 0 or count <= 0 or start + count > 1 << 32:
            raise HullError(f"{source}:{n}: range {start}+{count} is outside 0..2^32")
        out.append((parts[0], start, count))
    return out


def read(path=SUBUID):
    try:
        with open(path) as f:
            return parse(f.read(), path)
    except FileNotFoundError:
        return []


def ranges(user, path=SUBUID, uid=None, entries=None):
    """Sorted, merged [(start, count)] that `user` (name, or its numeric `uid`) owns."""
    entries = read(path) if entries is None else entries
    owners = {str(user)}
    if uid is not None:
        owners.add(str(uid))
    found = sorted((s, c) for o, s, c in entries if o in owners)
    return _merge(found)


def _merge(rs):
    out = []
    for s, c in sorted(rs):
        if out and s <= out[-1][0] + out[-1][1]:
            ps, pc = out[-1]
            out[-1] = (ps, max(pc, s + c - ps))
        else:
            out.append((s, c))
    return out


def pick_range(available, size=DEFAULT_SIZE, used=()):
    """First block of `size` ids inside `available` [(start, count)] that overlaps none of
    `used` [(start, count)]. Returns (start, size) or None."""
    busy = _merge(used)
    for start, count in _merge(available):
        cur, end = start, start + count
        for bs, bc in busy:
            if bs + bc <= cur:
                continue
            if bs >= cur + size:
                break
            cur = max(cur, bs + bc)
        if cur + size <= end:
            return (cur, size)
    return None


def pick(size=DEFAULT_SIZE, used_uids=(), used_gids=(), user=AUTO_USER,
         subuid=SUBUID, subgid=SUBGID):
    """Ranges for `--userns=auto`: {"uid": (start, size), "gid": (start, size)}.
    Raises HullError saying what to add to /etc/subuid or /etc/subgid when there is no room."""
    out = {}
    for kind, path, used in (("uid", subuid, used_uids), ("gid", subgid, used_gids)):
        avail = ranges(user, path)
        if not avail:
            raise HullError(f"--userns=auto: {path} has no range for user {user!r}; add a line "
                            f"such as '{user}:2147483648:2147483648'")
        got = pick_range(avail, size, used)
        if got is None:
            total = sum(c for _, c in avail)
            raise HullError(f"--userns=auto: no free block of {size} {kind}s left in {user!r}'s "
                            f"{total} ids in {path}; remove containers or enlarge the range")
        out[kind] = got
    return out


def mappings(uid_range, gid_range):
    """OCI linux.uidMappings / gidMappings mapping container id 0.. onto the picked ranges."""
    return ([{"containerID": 0, "hostID": uid_range[0], "size": uid_range[1]}],
            [{"containerID": 0, "hostID": gid_range[0], "size": gid_range[1]}])
