"""User-namespace id maps: written by the parent into /proc/<child>/{uid,gid}_map."""

import os

from hull.errors import KernelError


def format_map(mappings):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)


def _write(path, text):
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise KernelError(e.errno, "write", path, text.strip().replace("\n", "; ")) from None


def write_maps(pid, uid_mappings, gid_mappings, deny_setgroups=False):
    """Write both maps for `pid` (a process that has just unshared CLONE_NEWUSER)."""
    if deny_setgroups:
        _write(f"/proc/{pid}/setgroups", "deny")
    if uid_mappings:
        _write(f"/proc/{pid}/uid_map", format_map(uid_mappings))
    if gid_mappings:
        _write(f"/proc/{pid}/gid_map", format_map(gid_mappings))


def host_id(container_id, mappings):
    """Translate a container uid/gid to the host's through the mapping ranges."""
    for m in mappings or ():
        if m["containerID"] <= container_id < m["containerID"] + m["size"]:
            return m["hostID"] + container_id - m["containerID"]
    return None if mappings else container_id
