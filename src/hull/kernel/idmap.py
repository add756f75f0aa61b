"""User-namespace id maps: written by the parent into /proc/<child>/{uid,gid}_map."""

from hull import osfast as os

from hull.errors import KernelError
from hull.kernel.system import write_proc


def format_map(mappings):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)


def _write(path, text):
    write_proc(path, text, detail=text.strip().replace("\n", "; "))


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


OVERFLOW_ID = 65534  # what the kernel shows for an id with no mapping (nobody/nogroup)


def container_id(host_id, mappings):
    """The inverse of host_id: a host uid/gid as the container sees it (OVERFLOW_ID when the
    mappings do not cover it)."""
    if not mappings:
        return host_id
    for m in mappings:
        if m["hostID"] <= host_id < m["hostID"] + m["size"]:
            return m["containerID"] + host_id - m["hostID"]
    return OVERFLOW_ID


# ----------------------------------------------------------------------------- idmapped mounts
# open_tree(2) / mount_setattr(2) / move_mount(2) constants (linux/mount.h, fcntl.h).
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_IDMAP = 0x00100000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
# errnos meaning "this kernel or filesystem cannot idmap": EINVAL, EPERM, ENOSYS, EOPNOTSUPP
UNSUPPORTED = (22, 1, 38, 95)


def idmapped_tree(source, userns_fd, recursive_clone=True, recursive_attr=True):
    """A detached clone of the mount tree at `source`, idmapped through the user namespace
    `userns_fd` (its maps: on-disk id containerID+i is seen as hostID+i). Returns the tree's
    O_PATH fd; attach it with attach_tree. Needs CAP_SYS_ADMIN over the filesystem (host root)."""
    from hull.kernel import ffi
    from hull.kernel.libc import syscall

    class MountAttr(ffi.Structure):
        _fields_ = [("attr_set", ffi.c_uint64), ("attr_clr", ffi.c_uint64),
                    ("propagation", ffi.c_uint64), ("userns_fd", ffi.c_uint64)]

    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive_clone else 0)
    fd = syscall("open_tree", -100, source, flags, path=source)  # AT_FDCWD
    try:
        attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        syscall("mount_setattr", fd, "", AT_EMPTY_PATH | (AT_RECURSIVE if recursive_attr else 0),
                ffi.byref(attr), ffi.sizeof(attr), path=source)
    except BaseException:
        os.close(fd)
        raise
    return fd


def attach_tree(tree_fd, target):
    """Mount a detached tree (from idmapped_tree) on `target` in our mount namespace."""
    from hull.kernel.libc import syscall
    syscall("move_mount", tree_fd, "", -100, target, MOVE_MOUNT_F_EMPTY_PATH, path=target)


def helper_userns(uid_mappings, gid_mappings):
    """An fd for a new user namespace with these maps, owned by nothing else: a short-lived
    child unshares CLONE_NEWUSER, we write its maps and keep /proc/<child>/ns/user open."""
    from hull.kernel import namespaces
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r1)
            os.close(w2)
            namespaces.unshare(namespaces.CLONE_NEWUSER)
            os.write(w1, b"1")
            os.read(r2, 1)  # EOF: the parent holds the namespace now
        except BaseException:
            code = 1
        os._exit(code)
    os.close(w1)
    os.close(r2)
    try:
        if os.read(r1, 1) != b"1":
            raise KernelError(1, "unshare", "CLONE_NEWUSER (helper user namespace for an idmapped mount)")
        write_maps(pid, uid_mappings, gid_mappings)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(r1)
        os.close(w2)
        os.waitpid(pid, 0)


def supported():
    """Whether this kernel has mount_setattr (idmapped mounts, 5.12+): probe with a bad fd
    (EBADF: the call exists; ENOSYS: it does not). Filesystems may still refuse."""
    from hull.kernel.libc import libc, SYS
    from hull.kernel import ffi
    ret = libc.syscall(ffi.c_long(SYS["mount_setattr"]), ffi.c_long(-1), ffi.c_char_p(b""),
                       ffi.c_ulong(AT_EMPTY_PATH), None, ffi.c_ulong(0))
    return not (ret == -1 and ffi.get_errno() == 38)
