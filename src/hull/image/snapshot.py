"""Snapshots: a container's rootfs from its image's layers.

    rootfs = prepare(image, container_dir)      # mounted, ready for the runtime
    changes = diff(container_dir)               # [("A"|"C"|"D", "/path")], from the upper dir
    image = commit(container_dir, "name:tag")   # upper dir -> a new layer on top of the image
    remove(container_dir)                       # unmount, delete upper/work/rootfs, forget

overlay (default): <container_dir>/rootfs is an overlay of the layer dirs
($HULL_ROOT/layers/<chain>/diff, top first) with <container_dir>/upper and work; the upper dir
is the change set. vfs (fallback when overlay cannot be mounted, or HULL_SNAPSHOTTER=vfs):
the layers are copied into <container_dir>/rootfs in order, applying whiteouts; diff/commit
are not available there.

Each snapshot is recorded in $HULL_ROOT/snapshots/<key>.json (image, chain ids, driver) so the
store refuses to remove an image in use and gc keeps its layers.
"""

import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

from hull.errors import Conflict, HullError, NotFound
from hull.image import layers as layers_mod
from hull.image.store import default_store

PAGE = 4096


def _key(container_dir):
    return hashlib.sha256(str(Path(container_dir).resolve()).encode()).hexdigest()[:32]


def _record_path(store, container_dir):
    return store.snapshots_dir / (_key(container_dir) + ".json")


def record(container_dir, store=None):
    store = store or default_store()
    try:
        return json.loads(_record_path(store, container_dir).read_text())
    except FileNotFoundError:
        return None


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path:
                return True
    return False


def _mount_overlay(lowers, upper, work, target, layers_root, volatile=False):
    # volatile (podman does it for --rm): no syncfs of the upper dir at unmount — its
    # contents are deleted next anyway; that sync was most of the unmount's ~2.5 ms here
    extra = ",volatile" if volatile else ""
    data = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work}{extra}"
    if len(data) < PAGE - 1:
        try:
            from hull.kernel import mounts
            mounts.mount("overlay", str(target), "overlay", 0, data)
            return
        except ImportError:
            pass
        except HullError as e:
            raise HullError(f"mounting the overlay rootfs at {target}: {e}") from None
    # Too long for one page (many layers): relative lowerdirs from the layers dir, like Docker.
    rel = ":".join(os.path.relpath(p, layers_root) for p in lowers)
    data = f"lowerdir={rel},upperdir={upper},workdir={work}{extra}"
    if len(data) >= PAGE - 1:
        raise HullError(f"image has too many layers ({len(lowers)}) for one overlay mount")
    p = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", data, str(target)], cwd=str(layers_root),
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise HullError(f"mounting the overlay rootfs at {target}: {p.stderr.strip()}")


def _umount(target):
    try:
        from hull.kernel import mounts
        try:
            mounts.umount(str(target))
        except HullError:
            mounts.umount(str(target), 2)  # MNT_DETACH
        return
    except ImportError:
        pass
    p = subprocess.run(["umount", str(target)], capture_output=True, text=True)
    if p.returncode != 0:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, text=True)


def prepare(image, container_dir, driver=None, owner=None, idmap=None, volatile=False):
    """Make <container_dir>/rootfs for `image` and return its path. Idempotent: a prepared
    snapshot whose overlay is not mounted (after a reboot) is mounted again. `volatile`: for
    a snapshot that is deleted when its container exits (--rm), the overlay's `volatile`
    option.

    `idmap` ({"uid": [OCI mappings], "gid": [...]}, for a container in its own user namespace):
    the rootfs is seen shifted — a layer file owned by id N appears owned by the host id that
    container id N maps to. overlay: each lower layer is an idmapped mount (made, used for the
    overlay mount, then detached: the overlay keeps its own clones) and upper/work belong to the
    mapped root, so the container's writes land in upper with mapped ids. Where the kernel or
    filesystem cannot idmap (or HULL_IDMAP=0), podman's fallback: a chowned copy (vfs)."""
    store = image.store
    cdir = Path(container_dir).resolve()
    cdir.mkdir(parents=True, exist_ok=True)
    rootfs, upper, work = cdir / "rootfs", cdir / "upper", cdir / "work"
    existing = record(cdir, store)
    if existing and existing.get("image") not in (image.digest, image.id):
        raise Conflict(f"{cdir} already holds a snapshot of another image ({existing.get('image')})")
    if existing and (existing.get("driver") == "overlay" and os.path.ismount(rootfs)
                     or existing.get("driver") == "vfs" and (cdir / ".vfs-complete").exists()):
        return rootfs  # prepared and mounted (an overlay has a device of its own: ismount)
    volatile = volatile or bool((existing or {}).get("volatile"))
    idmap = idmap or (existing or {}).get("idmap")
    driver = driver or (existing or {}).get("driver") or os.environ.get("HULL_SNAPSHOTTER") or "overlay"
    if driver not in ("overlay", "vfs"):
        raise HullError(f"unknown snapshotter {driver!r}: use overlay or vfs")
    rec = {"container_dir": str(cdir), "image": image.digest, "image_id": image.id, "chain_ids": image.chain_ids,
           "driver": driver, "owner": owner, "rootfs": str(rootfs), "created": time.time()}
    if idmap:
        rec["idmap"] = idmap
    if volatile:
        rec["volatile"] = True
    store.init()
    _write_record(store, cdir, rec)  # first, so gc keeps the layers while we work
    try:
        lowers = list(reversed(layers_mod.ensure_unpacked(store, image)))
        if driver == "overlay":
            if is_mounted(rootfs):
                return rootfs
            for d in (rootfs, upper, work):
                d.mkdir(exist_ok=True)
            if volatile:  # a volatile overlay refuses to mount again while its marker is there
                shutil.rmtree(work / "incompat", ignore_errors=True)
            if not lowers:
                (cdir / "empty").mkdir(exist_ok=True)
                lowers = [cdir / "empty"]
            try:
                if idmap:
                    _mount_overlay_idmapped(lowers, upper, work, rootfs, idmap, cdir)
                else:
                    _mount_overlay(lowers, upper, work, rootfs, store.layers_dir, volatile)
            except HullError as e:
                if existing:
                    raise
                # overlay (or idmapped layers) unavailable here: fall back to a copy
                shutil.rmtree(upper, ignore_errors=True)
                shutil.rmtree(work, ignore_errors=True)
                rec["driver"] = "vfs"
                if idmap:
                    rec["idmap_fallback"] = str(e)
                _write_record(store, cdir, rec)
                _vfs_copy(list(reversed(lowers)), rootfs)
                if idmap:
                    _chown_copy(rootfs, idmap)
                (cdir / ".vfs-complete").touch()
        elif not (cdir / ".vfs-complete").exists():
            if rootfs.exists():
                shutil.rmtree(rootfs)
            rootfs.mkdir()
            _vfs_copy(list(reversed(lowers)), rootfs)
            if idmap:
                _chown_copy(rootfs, idmap)
            (cdir / ".vfs-complete").touch()
    except BaseException:
        if not existing:
            remove(cdir, store)
        raise
    return rootfs


def _chown_copy(rootfs, idmap):
    from hull.runtime.userns import chown_rootfs
    chown_rootfs(str(rootfs), idmap["uid"], idmap["gid"])


def _mount_overlay_idmapped(lowers, upper, work, target, idmap, cdir):
    """overlay over idmapped mounts of the lower layers; upper/work owned by the mapped root.
    HullError (the caller falls back to a chowned copy) when idmapped mounts are refused."""
    from hull.errors import KernelError
    from hull.kernel import idmap as kidmap
    from hull.kernel import mounts
    from hull.kernel.idmap import host_id
    if os.environ.get("HULL_IDMAP") == "0":
        raise HullError("idmapped layers are turned off (HULL_IDMAP=0)")
    uid, gid = host_id(0, idmap["uid"]), host_id(0, idmap["gid"])
    for d in (upper, work):
        os.chown(d, uid, gid)
    tmp = cdir / ".idmapped"
    tmp.mkdir(exist_ok=True)
    points = []
    try:
        try:
            ufd = kidmap.helper_userns(idmap["uid"], idmap["gid"])
        except KernelError as e:
            raise HullError(f"idmapped layers: {e}") from None
        try:
            for i, lower in enumerate(lowers):
                p = tmp / str(i)
                p.mkdir(exist_ok=True)
                try:
                    fd = kidmap.idmapped_tree(str(lower), ufd)
                except KernelError as e:
                    raise HullError(f"idmapped layers: {e}") from None
                try:
                    kidmap.attach_tree(fd, str(p))
                finally:
                    os.close(fd)
                points.append(p)
        finally:
            os.close(ufd)
        data = f"lowerdir={':'.join(map(str, points))},upperdir={upper},workdir={work}"
        try:
            mounts.mount("overlay", str(target), "overlay", 0, data)
        except HullError as e:
            raise HullError(f"mounting the overlay rootfs at {target} over idmapped layers: {e}") from None
    finally:
        for p in points:  # the overlay holds private clones of its layers
            _umount(p)
        for p in [*points, tmp]:  # rmdir, never rmtree: a point still mounted is a layer
            try:
                os.rmdir(p)
            except OSError:
                pass


def _write_record(store, cdir, rec):
    p = _record_path(store, cdir)
    tmp = p.with_name(p.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(rec))
    os.rename(tmp, p)


def unmount(container_dir):
    rootfs = Path(container_dir).resolve() / "rootfs"
    if is_mounted(rootfs):
        _umount(rootfs)


def release(container_dir, store=None):
    """Unmount the snapshot and forget it (its record); its directories stay, for the caller
    to delete. HullError if anything is still mounted under the container dir afterwards
    (deleting it would reach through the mount)."""
    store = store or default_store()
    cdir = Path(container_dir).resolve()
    unmount(cdir)
    idm = cdir / ".idmapped"  # left by an interrupted idmapped mount: points may be layers
    if idm.is_dir():
        for p in list(idm.iterdir()) + [idm]:
            if p != idm and is_mounted(p):
                _umount(p)
            os.rmdir(p)
    prefix = str(cdir) + "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if "\\" in mp:
                mp = mp.encode().decode("unicode_escape")
            if mp.startswith(prefix):
                raise HullError(f"{mp} is still mounted; unmount it first")
    _record_path(store, cdir).unlink(missing_ok=True)
    return cdir


def remove(container_dir, store=None):
    """Unmount and delete the snapshot's rootfs/upper/work and its record."""
    cdir = release(container_dir, store)
    for name in ("rootfs", "upper", "work", "empty", ".vfs-complete"):
        p = cdir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=False)
        elif p.exists() or p.is_symlink():
            p.unlink()


# -- vfs ---------------------------------------------------------------------------------

def _is_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _copy_meta(src, dst, st, is_link=False):
    if os.geteuid() == 0:
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        for k in os.listxattr(src, follow_symlinks=False):
            if not k.startswith("trusted.overlay."):
                os.setxattr(dst, k, os.getxattr(src, k, follow_symlinks=False), follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EPERM):
            raise
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _remove_path(p):
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(p)
    else:
        os.unlink(p)


def _vfs_copy(layer_dirs, rootfs):
    """Apply overlay-format layer dirs (bottom first) onto rootfs."""
    for layer in layer_dirs:
        links = {}
        dirs_meta = []

        def walk(rel):
            src_dir = os.path.join(layer, rel)
            for name in sorted(os.listdir(src_dir)):
                r = os.path.join(rel, name)
                src, dst = os.path.join(layer, r), os.path.join(rootfs, r)
                st = os.lstat(src)
                if _is_whiteout(st):
                    _remove_path(dst)
                    continue
                if stat.S_ISDIR(st.st_mode):
                    try:
                        dst_st = os.lstat(dst)
                        if not stat.S_ISDIR(dst_st.st_mode):
                            os.unlink(dst)
                            os.mkdir(dst)
                        else:
                            try:
                                if os.getxattr(src, layers_mod.OPAQUE_XATTR, follow_symlinks=False) == b"y":
                                    for child in os.listdir(dst):
                                        _remove_path(os.path.join(dst, child))
                            except OSError:
                                pass
                    except FileNotFoundError:
                        os.mkdir(dst)
                    walk(r)
                    dirs_meta.append((src, dst, st))
                    continue
                _remove_path(dst)
                if stat.S_ISREG(st.st_mode):
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1 and key in links:
                        os.link(links[key], dst)
                        continue
                    shutil.copyfile(src, dst, follow_symlinks=False)
                    links[key] = dst
                    _copy_meta(src, dst, st)
                elif stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(src), dst)
                    _copy_meta(src, dst, st, is_link=True)
                elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                    os.mknod(dst, st.st_mode, st.st_rdev)
                    _copy_meta(src, dst, st)
        walk("")
        for src, dst, st in dirs_meta:
            _copy_meta(src, dst, st)


# -- diff / commit -----------------------------------------------------------------------

def _overlay_record(container_dir, store):
    rec = record(container_dir, store)
    if not rec:
        raise NotFound(f"no snapshot at {container_dir}")
    if rec.get("driver") != "overlay":
        raise HullError(f"{container_dir} uses the vfs snapshotter, which keeps no change set; "
                        "diff and commit need overlay")
    return rec


# Mount points every engine container gets: when the runtime had to create them (as empty
# files/dirs in the upper dir) they are not the container's changes, like Docker's init layer.
RUNTIME_STUBS = ("/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf")


def _lowers(rec, store):
    return [store.layers_dir / c[7:] / "diff" for c in reversed(rec["chain_ids"])]


def _in_lower(lowers, rel):
    for low in lowers:
        p = low / rel
        if os.path.lexists(p):
            try:
                return not _is_whiteout(os.lstat(p))
            except OSError:
                return False
        # a whiteout or opaque dir higher up hides lower layers: good enough to stop at first hit
    return False


def _is_opaque(path):
    try:
        return os.getxattr(path, layers_mod.OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _skipped(upper, lowers, exclude):
    """Upper-relative paths that are only mount-point stubs: an `exclude` path that the image
    does not have and that is an empty file or dir in the upper dir, and the copied-up parent
    dirs that hold nothing else."""
    stubs = set()
    for dest in exclude or ():
        rel = os.path.normpath(dest).lstrip("/")
        if not rel or rel == ".":
            continue
        full = os.path.join(upper, rel)
        try:
            st = os.lstat(full)
        except OSError:
            continue
        empty = (stat.S_ISREG(st.st_mode) and st.st_size == 0 or
                 stat.S_ISDIR(st.st_mode) and not os.listdir(full))
        if empty and not _in_lower(lowers, rel):
            stubs.add(rel)
    if not stubs:
        return stubs
    for rel in sorted(stubs, key=lambda r: -r.count("/")):
        parent = os.path.dirname(rel)
        while parent:
            full = os.path.join(upper, parent)
            if parent in stubs or not _in_lower(lowers, parent) or _is_opaque(full):
                break
            if not all(os.path.join(parent, n) in stubs for n in os.listdir(full)):
                break
            stubs.add(parent)
            parent = os.path.dirname(parent)
    return stubs


def diff(container_dir, store=None, exclude=()):
    """Changes in the container relative to its image: [(kind, path)], kind A/C/D. Paths in
    `exclude` (absolute, e.g. the container's mount points) are left out where they are only
    empty stubs the runtime created."""
    store = store or default_store()
    rec = _overlay_record(container_dir, store)
    upper = Path(rec["container_dir"]) / "upper"
    lowers = _lowers(rec, store)
    skip = _skipped(upper, lowers, exclude)
    out = []
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = os.path.relpath(dirpath, upper)
        dirnames[:] = [d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in skip]
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel in skip:
                continue
            st = os.lstat(full)
            if _is_whiteout(st):
                out.append(("D", "/" + rel))
            else:
                out.append(("C" if _in_lower(lowers, rel) else "A", "/" + rel))
    return sorted(out, key=lambda x: x[1])


def commit(container_dir, name=None, changes=(), message=None, author=None, store=None, exclude=()):
    """A new image: the snapshot's image plus its upper dir as one more layer (without the
    mount-point stubs of `exclude`, as diff)."""
    store = store or default_store()
    rec = _overlay_record(container_dir, store)
    base = store.load(rec["image"])
    upper = Path(rec["container_dir"]) / "upper"
    skip = _skipped(upper, _lowers(rec, store), exclude)
    from hull.image.archive import _apply_changes
    with store.lease():
        desc, diff_id = layers_mod.write_layer(
            store, lambda out: layers_mod.tar_directory(upper, out, overlay=True, skip=skip,
                                                        idmap=rec.get("idmap")))
        cfg = json.loads(json.dumps(base.config))
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cfg["created"] = created
        cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"] = base.diff_ids + [diff_id]
        conf = cfg.setdefault("config", {})
        _apply_changes(conf, changes)
        hist = {"created": created, "created_by": "hull commit"}
        if message:
            hist["comment"] = message
        if author:
            hist["author"] = cfg["author"] = author
        cfg["history"] = list(cfg.get("history", [])) + [hist]
        return store.write_image(cfg, base.layers + [desc], name)
