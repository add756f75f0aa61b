"""The container's filesystem view, built inside its new mount namespace:
propagation, rootfs bind, spec mounts, devices, pivot_root, then readonly and masked paths."""

from hull import osfast as os

from hull.errors import HullError, KernelError
from hull.kernel import mounts
from hull.kernel.mounts import (MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE,
                                MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE)
from hull.runtime import devices

# statvfs flags that the kernel locks on mounts inherited into a user namespace.
_ST_LOCKED = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC,
              1024: mounts.MS_NOATIME, 2048: mounts.MS_NODIRATIME, 4096: mounts.MS_RELATIME}


def _locked_flags(path):
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return 0
    return sum(v for k, v in _ST_LOCKED.items() if f & k)


def remount(target, flags, source=None):
    """Remount a bind mount with new flags; in a user namespace keep the flags the kernel locked."""
    try:
        mounts.mount(source, target, None, flags | MS_REMOUNT | MS_BIND)
    except KernelError as e:
        if e.errno != 1:  # EPERM: retry keeping locked flags
            raise
        mounts.mount(source, target, None, flags | MS_REMOUNT | MS_BIND | (_locked_flags(target) & ~MS_RDONLY))


def prepare_root(rootfs, propagation, in_userns=False, tree_fd=None):
    """Stop our mounts propagating to the host, then make rootfs a mount point for pivot_root.
    `tree_fd`: an idmapped clone of the rootfs made by the runtime (runtime/userns.py),
    attached over rootfs instead of the plain bind."""
    if not os.path.isdir(rootfs):
        hint = (" (in a user namespace the mapped root must be able to search every parent"
                " directory)") if in_userns and os.geteuid() == 0 else ""
        raise HullError(f"rootfs {rootfs!r} is not reachable or not a directory{hint} (root.path in config.json)")
    if propagation in ("unbindable", "runbindable"):
        propagation = None  # rootfs could not be bound from an unbindable /: set after pivot
    flags = mounts.PROPAGATION.get(propagation or "rslave", MS_SLAVE | MS_REC)
    mounts.set_propagation("/", flags)
    # pivot_root refuses a shared new root or a shared parent of it (as runc does: make the
    # parent mount private; the bind below is then private too). The requested propagation
    # is given to the container's / after pivot_root (final_propagation). After a recursive
    # slave or private (rslave is the default) no mount is shared: nothing to look up.
    if flags not in (MS_SLAVE | MS_REC, MS_PRIVATE | MS_REC):
        _parent_mount_private(os.path.realpath(rootfs))
    if tree_fd is None:
        mounts.mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    else:
        _attach(tree_fd, rootfs)


def _attach(tree_fd, dest):
    """Attach a detached tree the runtime made; rslave like a bind from our rslave / (a clone
    of a shared host mount would otherwise share its peer group with the host)."""
    from hull.kernel import idmap
    try:
        idmap.attach_tree(tree_fd, dest)
    finally:
        os.close(tree_fd)
    mounts.set_propagation(dest, MS_SLAVE | MS_REC)


def _parent_mount_private(path):
    best, shared = "", False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].replace("\\040", " ")
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best = mp
                shared = any(x.startswith("shared:") for x in fields[6:fields.index("-")])
    if shared:
        mounts.set_propagation(best, MS_PRIVATE)


def final_propagation(propagation):
    """linux.rootfsPropagation for the container's / (after pivot_root): shared/slave/private/
    unbindable, recursive or not. Unset leaves / rslave."""
    if propagation in ("shared", "rshared", "unbindable", "runbindable", "slave", "private", "rprivate"):
        mounts.set_propagation("/", mounts.PROPAGATION[propagation])


def mount_all(rootfs, spec_mounts, ctx):
    """Every entry of `mounts`, in order. `ctx` gives cgroup facts for `cgroup` mounts."""
    trees = getattr(ctx, "idmap_fds", None) or {}
    for i, m in enumerate(spec_mounts or ()):
        try:
            mount_one(rootfs, m, ctx, trees.get(str(i)))
        except KernelError as e:
            raise HullError(f"mounts[{i}] ({m.get('type') or 'bind'} on {m['destination']}): {e}") from None


def mount_one(rootfs, m, ctx, tree_fd=None):
    opts = mounts.parse_options(m.get("options"))
    fstype = m.get("type") or ""
    source = m.get("source") or fstype or "none"
    dest = mounts.secure_join(rootfs, m["destination"])
    if tree_fd is not None:  # idmap/ridmap: an idmapped clone of source, made by the runtime
        import stat
        mounts.make_mountpoint(dest, is_dir=stat.S_ISDIR(os.fstat(tree_fd).st_mode))
        _attach(tree_fd, dest)
        extra = opts.flags & ~(MS_BIND | MS_REC)
        if extra:
            remount(dest, extra | (opts.flags & MS_REC))
    elif opts.is_bind or fstype == "bind":
        _bind(source, dest, opts)
    elif fstype == "cgroup" or fstype == "cgroup2":
        _mount_cgroup(dest, opts, ctx)
    else:
        mounts.make_mountpoint(dest)
        if "tmpcopyup" in opts.extensions:
            _tmpcopyup(source, dest, fstype, opts)
        else:
            try:
                mounts.mount(source, dest, fstype, opts.flags, opts.data)
            except KernelError as e:
                # In a user namespace without its own netns/ipcns the kernel refuses a new sysfs or
                # mqueue; bind the host's instead (runc does the same for rootless containers).
                if e.errno != 1 or fstype not in ("sysfs", "mqueue"):
                    raise
                host = "/sys" if fstype == "sysfs" else "/dev/mqueue"
                mounts.mount(host, dest, None, MS_BIND | MS_REC)
                remount(dest, opts.flags | MS_REC)
    for p in opts.propagation:
        mounts.set_propagation(dest, p)


def _bind(source, dest, opts):
    if not os.path.exists(source):
        raise KernelError(2, "bind mount source", source)
    mounts.make_mountpoint(dest, is_dir=os.path.isdir(source))
    mounts.mount(source, dest, None, MS_BIND | (opts.flags & MS_REC))
    extra = opts.flags & ~(MS_BIND | MS_REC)
    if extra:
        remount(dest, extra | (opts.flags & MS_REC))


def _tmpcopyup(source, dest, fstype, opts):
    """Mount a tmpfs over `dest` that starts with a copy of what `dest` held (runc's tmpcopyup)."""
    import shutil
    import tempfile
    staging = tempfile.mkdtemp(prefix="hull-tmpcopyup.")
    try:
        mounts.mount(source, staging, fstype, opts.flags, opts.data)
        try:
            shutil.copytree(dest, staging, symlinks=True, dirs_exist_ok=True)
            mounts.mount(staging, dest, None, mounts.MS_MOVE)
        except BaseException:
            mounts.umount(staging, MNT_DETACH)
            raise
    finally:
        os.rmdir(staging)


def _mount_cgroup(dest, opts, ctx):
    """`cgroup` mounts: cgroup2 on a unified host; on v1/hybrid a tmpfs with one mount per
    hierarchy. In a new cgroup namespace the kernel shows the container's own cgroup as root;
    otherwise the container's cgroup dirs are bind-mounted."""
    mounts.make_mountpoint(dest)
    ro = opts.flags & MS_RDONLY
    base = MS_NOSUID | MS_NODEV | MS_NOEXEC
    hierarchies = ctx.cgroup_hierarchies()  # [(mountpoint, fstype, super_options, subpath)]
    if len(hierarchies) == 1 and hierarchies[0][1] == "cgroup2":
        mp, _, _, sub = hierarchies[0]
        if ctx.new_cgroupns:
            mounts.mount("cgroup2", dest, "cgroup2", base | ro)
        else:
            mounts.mount(mp + sub, dest, None, MS_BIND | MS_REC)
            remount(dest, base | ro | MS_REC)
        return
    mounts.mount("tmpfs", dest, "tmpfs", base, "mode=755")
    for mp, fstype, superopts, sub in hierarchies:
        name = os.path.basename(mp)
        target = os.path.join(dest, name)
        os.mkdir(target, 0o755)
        try:
            if not ctx.new_cgroupns:
                raise KernelError(1, "mount cgroup", target)
            if fstype == "cgroup2":
                mounts.mount("cgroup2", target, "cgroup2", base | ro)
            else:
                mounts.mount("cgroup", target, "cgroup", base | ro, superopts)
        except KernelError:
            mounts.mount(mp + sub, target, None, MS_BIND | MS_REC)
            remount(target, base | ro | MS_REC)
    if ro:
        mounts.mount(None, dest, None, MS_REMOUNT | MS_RDONLY | base, "mode=755")


def pivot(rootfs, no_pivot=False):
    """Make rootfs the process's /. pivot_root(".", ".") then detach the old root; with
    --no-pivot move the mount over / and chroot (for ramfs-rooted hosts)."""
    os.chdir(rootfs)
    if no_pivot:
        mounts.mount(rootfs, "/", None, mounts.MS_MOVE)
        os.chroot(".")
    else:
        mounts.pivot_root(".", ".")
        # the old root is stacked under "."; keep its unmount from propagating to the host
        mounts.set_propagation(".", MS_SLAVE | MS_REC)
        mounts.umount(".", MNT_DETACH)
    os.chdir("/")


def readonly_paths(paths):
    for p in paths or ():
        if not os.path.lexists(p):
            continue
        mounts.mount(p, p, None, MS_BIND | MS_REC)
        remount(p, MS_RDONLY | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def masked_paths(paths):
    for p in paths or ():
        try:
            if os.path.isdir(p):
                mounts.mount("tmpfs", p, "tmpfs", MS_RDONLY)
            elif os.path.lexists(p):
                mounts.mount("/dev/null", p, None, MS_BIND)
        except KernelError as e:
            if e.errno not in (2, 20):  # ENOENT, ENOTDIR: nothing to mask
                raise


def readonly_root():
    remount("/", MS_RDONLY | MS_REC)


def setup(spec, ctx, before_pivot):
    """The whole rootfs sequence inside the new mount namespace, up to (not incl.) the
    hostname/sysctl/readonly/masked steps that follow pivot_root."""
    linux = spec.get("linux", {})
    rootfs = spec["root"]["path"]
    prepare_root(rootfs, linux.get("rootfsPropagation"), ctx.in_userns,
                 (getattr(ctx, "idmap_fds", None) or {}).get("root"))
    mount_all(rootfs, spec.get("mounts"), ctx)
    dev_is_bind = any(m["destination"] == "/dev" and ("bind" in (m.get("options") or ()) or
                      "rbind" in (m.get("options") or ()) or m.get("type") == "bind")
                      for m in spec.get("mounts") or ())
    if not dev_is_bind:
        devices.create_devices(rootfs, linux.get("devices"), ctx.in_userns)
        if os.path.isdir(os.path.join(rootfs, "dev/pts")) and any(
                m["destination"] == "/dev/pts" for m in spec.get("mounts") or ()):
            devices.setup_ptmx(rootfs)
    before_pivot(rootfs)
    pivot(rootfs, ctx.no_pivot)
    final_propagation(linux.get("rootfsPropagation"))
