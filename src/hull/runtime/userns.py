"""User namespaces and file ownership: idmapped mounts (runtime-spec 1.2 `idmap`/`ridmap`
mounts, the `org.hull.rootfs.idmap` annotation) and the chown fallback (chown_rootfs).

Idmapped mounts are made by the runtime (host root): only it holds CAP_SYS_ADMIN over the
host's filesystems. `plan(spec)` lists them; the parent clones and idmaps each tree
(open_tree + mount_setattr) and hands the detached tree fds to the container init, which
attaches them (move_mount) inside its mount namespace:

* a tree idmapped through the container's own user namespace (the rootfs, and mounts whose
  mappings equal linux.uid/gidMappings or have none) is made once the parent has written the
  id maps, and travels to stage 1 with IDMAP_DONE (SCM_RIGHTS);
* a tree with other mappings is idmapped through a helper user namespace made before the
  container is forked, and is inherited.

An idmapped mount translates both ways: a file owned on disk by containerID+i is seen as
hostID+i, and a file created through the mount by hostID+i is stored as containerID+i. So with
the rootfs idmapped through the container's namespace (0 -> 100000), files owned by host root
are the container's root's, and what container root creates stays owned by 0 on disk.
"""

from hull import osfast as os

from hull.errors import HullError, SpecError

ROOTFS_ANNOTATION = "org.hull.rootfs.idmap"
ROOT = "root"  # the plan key of the rootfs; mounts use their index as a string


def _same(a, b):
    key = lambda m: (m["containerID"], m["hostID"], m["size"])  # noqa: E731
    return sorted(map(key, a or ())) == sorted(map(key, b or ()))


def plan(spec):
    """[(key, source, uid_mappings, gid_mappings, recursive_clone, recursive_attr, own_userns)]
    for every mount hull must idmap. Raises SpecError for requests it cannot honour."""
    linux = spec.get("linux") or {}
    ns = {n["type"]: n.get("path") for n in linux.get("namespaces", ())}
    new_userns = "user" in ns and not ns["user"]
    uids, gids = linux.get("uidMappings"), linux.get("gidMappings")
    out = []
    value = (spec.get("annotations") or {}).get(ROOTFS_ANNOTATION, "false")
    if value not in ("true", "false"):
        raise SpecError(f"annotations[{ROOTFS_ANNOTATION!r}]", f'must be "true" or "false", got {value!r}')
    if value == "true":
        if not new_userns:
            raise SpecError(f"annotations[{ROOTFS_ANNOTATION!r}]",
                            'an idmapped rootfs needs a new user namespace: add {"type": "user"} '
                            "and uidMappings/gidMappings to linux")
        out.append((ROOT, spec["root"]["path"], uids, gids, True, True, True))
    for i, m in enumerate(spec.get("mounts") or ()):
        opts = m.get("options") or ()
        idm, ridm = "idmap" in opts, "ridmap" in opts
        path = f"mounts[{i}]"
        if not (idm or ridm):
            if m.get("uidMappings") or m.get("gidMappings"):
                raise SpecError(path, 'uidMappings/gidMappings need the "idmap" or "ridmap" option')
            continue
        if not ("bind" in opts or "rbind" in opts or m.get("type") == "bind"):
            raise SpecError(path, 'idmap/ridmap is supported on bind mounts only (add "bind" or "rbind")')
        mu, mg = m.get("uidMappings"), m.get("gidMappings")
        if not mu and not mg:
            if not new_userns:
                raise SpecError(path, "idmap without uidMappings/gidMappings uses the container's user "
                                      "namespace, and this container has none: give the mount its own mappings")
            mu, mg = uids, gids
        own = new_userns and _same(mu, uids) and _same(mg, gids)
        out.append((str(i), m.get("source") or "", mu, mg, "rbind" in opts, ridm, own))
    return out


def _tree(key, source, userns_fd, rclone, rattr):
    from hull.errors import KernelError
    from hull.kernel import idmap
    if not os.path.exists(source):
        what = "root.path" if key == ROOT else f"mounts[{key}].source"
        raise HullError(f"{what}: {source!r} does not exist")
    try:
        return idmap.idmapped_tree(source, userns_fd, rclone, rattr)
    except KernelError as e:
        if e.errno not in idmap.UNSUPPORTED:
            raise
        fix = ("chown the rootfs to the container's root instead (chown -R, or "
               "hull.runtime.userns.chown_rootfs(path, uidMappings, gidMappings)) and drop the "
               f"{ROOTFS_ANNOTATION} annotation") if key == ROOT else \
            "drop the idmap/ridmap option and chown the source to the mapped ids"
        raise HullError(f"{'root.path' if key == ROOT else f'mounts[{key}]'}: cannot make an idmapped "
                        f"mount of {source!r} ({os.strerror(e.errno)}: the kernel or this filesystem "
                        f"does not support idmapped mounts here); {fix}") from None


def helper_trees(items):
    """Trees with their own mappings, idmapped through helper user namespaces (before fork)."""
    from hull.kernel import idmap
    fds = {}
    try:
        for key, source, mu, mg, rclone, rattr, own in items:
            if own:
                continue
            ufd = idmap.helper_userns(mu, mg)
            try:
                fds[key] = _tree(key, source, ufd, rclone, rattr)
            finally:
                os.close(ufd)
    except BaseException:
        close(fds)
        raise
    return fds


def container_trees(items, pid):
    """Trees idmapped through the user namespace of `pid` (its maps are written)."""
    fds = {}
    if not any(it[6] for it in items):
        return fds
    ufd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for key, source, _mu, _mg, rclone, rattr, own in items:
            if own:
                fds[key] = _tree(key, source, ufd, rclone, rattr)
    except BaseException:
        close(fds)
        raise
    finally:
        os.close(ufd)
    return fds


def close(fds):
    for fd in fds.values():
        try:
            os.close(fd)
        except OSError:
            pass


# ----------------------------------------------------------------------------- chown fallback
def _shift(i, mappings):
    for m in mappings:
        if m["containerID"] <= i < m["containerID"] + m["size"]:
            return m["hostID"] + i - m["containerID"]
    return None


def chown_rootfs(path, uid_mappings, gid_mappings=None):
    """Shift the ownership of every file under `path` through the mappings: a file owned by
    containerID+i becomes hostID+i (what the container's user namespace sees as containerID+i).
    Ids outside the mappings are left alone (the container sees them as nobody). The file
    mode is kept (chown clears setuid/setgid; they are restored). File capabilities
    (security.capability xattrs) are dropped by the kernel on chown. Not idempotent: run it once
    on an unshifted tree (the engine's --userns=auto uses it where idmapped mounts fail).
    Returns the number of entries changed."""
    import stat
    gid_mappings = uid_mappings if gid_mappings is None else gid_mappings
    changed = 0

    def one(p):
        nonlocal changed
        st = os.lstat(p)
        u, g = _shift(st.st_uid, uid_mappings), _shift(st.st_gid, gid_mappings)
        u = st.st_uid if u is None else u
        g = st.st_gid if g is None else g
        if (u, g) == (st.st_uid, st.st_gid):
            return
        os.lchown(p, u, g)
        changed += 1
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            os.chmod(p, stat.S_IMODE(st.st_mode))

    one(path)
    dev = os.lstat(path).st_dev
    for dirpath, dirnames, filenames in os.walk(path):
        # stay on the rootfs's filesystem (a mount under it is not ours to change)
        dirnames[:] = [d for d in dirnames if os.lstat(os.path.join(dirpath, d)).st_dev == dev]
        for n in dirnames + filenames:
            one(os.path.join(dirpath, n))
    return changed
