"""Layers: safe unpacking of layer tarballs into per-layer directories, and making tarballs.

A layer is unpacked alone into $HULL_ROOT/layers/<chain-id hex>/diff, in overlayfs' format:
an OCI whiteout `.wh.NAME` becomes a 0/0 character device NAME, an opaque marker
`.wh..wh..opq` becomes the xattr trusted.overlay.opaque=y on its directory. snapshot.py stacks
these dirs as overlay lowers (or copies them, interpreting the same markers, for vfs).

Every entry is created through directory file descriptors opened with O_NOFOLLOW, so nothing
can be written outside the layer dir. Refused with `UnsafeLayer`: absolute names, `..`
components, entries whose parent is a symlink (a symlink written through), hardlinks to
anything not already in this layer, entries or totals over the size limits. Owner, mode,
xattrs (PAX SCHILY.xattr.*) and mtimes are kept. Device nodes are created only when allowed
(default: when running as root), otherwise skipped.

Compression is detected from magic bytes: gzip (zlib), zstd (through the `zstd` tool, when
installed), or plain tar. The uncompressed stream is hashed while it is read and must match
the config's diff_id.
"""

import errno
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import time
import zlib

from hull.errors import HullError

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
# Limits against absurd sizes; override with HULL_MAX_LAYER_ENTRY / HULL_MAX_LAYER_SIZE (bytes).
MAX_ENTRY = int(os.environ.get("HULL_MAX_LAYER_ENTRY", 16 << 30))
MAX_TOTAL = int(os.environ.get("HULL_MAX_LAYER_SIZE", 64 << 30))
_CHUNK = 1 << 20


class UnsafeLayer(HullError):
    """A layer tarball tried to escape its directory, or is absurd; nothing was kept."""


class _HashReader(io.RawIOBase):
    def __init__(self, f):
        self.f = f
        self.hash = hashlib.sha256()
        self.count = 0

    def readable(self):
        return True

    def readinto(self, b):
        data = self.f.read(len(b))
        n = len(data)
        b[:n] = data
        self.hash.update(data)
        self.count += n
        return n

    def read(self, n=-1):
        data = self.f.read(n)
        self.hash.update(data)
        self.count += len(data)
        return data

    def drain(self):
        while self.read(_CHUNK):
            pass

    @property
    def digest(self):
        return "sha256:" + self.hash.hexdigest()


class _Zstd(io.RawIOBase):
    """zstd -dc as a readable stream (the zstd tool is light; no Python binding needed)."""

    def __init__(self, f):
        import subprocess
        import threading
        exe = shutil.which("zstd")
        if not exe:
            raise HullError("this layer is zstd-compressed; install the zstd tool (apt-get install zstd)")
        self.proc = subprocess.Popen([exe, "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

        def feed():
            try:
                while chunk := f.read(_CHUNK):
                    self.proc.stdin.write(chunk)
            except (BrokenPipeError, ValueError):
                pass
            finally:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
        self.thread = threading.Thread(target=feed, daemon=True)
        self.thread.start()

    def readable(self):
        return True

    def read(self, n=-1):
        data = self.proc.stdout.read(n) if n and n > 0 else self.proc.stdout.read()
        if not data and self.proc.wait() != 0:
            raise HullError("zstd could not decompress this layer (corrupt data)")
        return data

    def readinto(self, b):
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        super().close()


def decompressed(f):
    """Wrap a binary stream so reads return the uncompressed tar (gzip, zstd or plain)."""
    f = io.BufferedReader(f, _CHUNK) if not hasattr(f, "peek") else f
    magic = f.peek(4)[:4]
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")
    if magic == b"\x28\xb5\x2f\xfd":
        return io.BufferedReader(_Zstd(f), _CHUNK)
    return f


def _split(name, what="entry"):
    if name.startswith("/"):
        raise UnsafeLayer(f"layer {what} {name!r} has an absolute path; refusing the layer")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"layer {what} {name!r} contains '..' (path traversal); refusing the layer")
    return parts


def _human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


_MAX_CACHED_FDS = 256


class _Unpacker:
    def __init__(self, root, allow_devices, max_entry, max_total):
        self.root = str(root)
        self.rootfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        self.allow_devices = allow_devices
        self.max_entry = max_entry
        self.max_total = max_total
        self.total = 0
        self.dirs = []
        self.skipped = []
        self.is_root = os.geteuid() == 0
        self._fds = {}  # parts tuple -> O_NOFOLLOW-opened dir fd (see _dirfd)

    def close(self):
        self._forget(())
        os.close(self.rootfd)

    def _dirfd(self, parts, name, create=True):
        """fd of the directory `parts` under root, never following a symlink. Borrowed from a
        cache (do not close it): each component is opened once with O_NOFOLLOW from its cached
        parent, not re-walked from the root for every entry (that was ~7 opens per entry)."""
        key = tuple(parts)
        if not key:
            return self.rootfd
        fd = self._fds.get(key)
        if fd is not None:
            return fd
        parent = self._dirfd(key[:-1], name, create)
        comp = key[-1]
        try:
            nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(comp, 0o755, dir_fd=parent)
            nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            where = "/".join(key)
            st = os.lstat(comp, dir_fd=parent)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(comp, dir_fd=parent)
                raise UnsafeLayer(f"layer entry {name!r} is written through the symlink {where!r} "
                                  f"(-> {target!r}); refusing the layer") from None
            raise UnsafeLayer(f"layer entry {name!r}: {where!r} is not a directory") from None
        if len(self._fds) >= _MAX_CACHED_FDS:
            self._forget(())  # the parent is not needed any more: nfd is not cached yet
        self._fds[key] = nfd
        return nfd

    def _forget(self, prefix):
        """Close the cached fds of `prefix` and everything under it (it was removed)."""
        n = len(prefix)
        for key in [k for k in self._fds if k[:n] == prefix]:
            os.close(self._fds.pop(key))

    def _clear(self, pfd, name, keep_dir=False, parts=None):
        try:
            st = os.lstat(name, dir_fd=pfd)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            if parts is not None:
                self._forget(tuple(parts))
            else:
                self._forget(())
            shutil.rmtree(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)

    def _meta(self, target, m, pfd=None, name=None, is_link=False):
        """chown/chmod/xattrs (mtime is separate). target: an fd, or name under pfd."""
        xattrs = {k[13:]: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
        if isinstance(target, int):
            if self.is_root:
                os.chown(target, m.uid, m.gid)
            os.chmod(target, m.mode & 0o7777)
            for k, v in xattrs.items():
                self._setxattr(target, k, v, m.name)
            # chown clears setuid bits: set the mode after it (done above, in this order)
        else:
            if self.is_root:
                os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            if not is_link:
                os.chmod(name, m.mode & 0o7777, dir_fd=pfd)
            if xattrs:
                path = f"/proc/self/fd/{pfd}/{name}"
                for k, v in xattrs.items():
                    self._setxattr(path, k, v, m.name, follow=False)

    def _setxattr(self, target, key, value, entry, follow=True):
        if key.startswith("trusted.overlay."):
            return  # would forge overlay whiteouts/redirects
        data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        try:
            os.setxattr(target, key, data, follow_symlinks=follow)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise HullError(f"layer entry {entry!r}: cannot set xattr {key}: {e.strerror}") from None

    def entry(self, tf, m):
        parts = _split(m.name)
        if not parts:
            return  # "./": the root itself
        if m.size > self.max_entry:
            raise UnsafeLayer(f"layer entry {m.name!r} declares {_human(m.size)}, over the "
                              f"{_human(self.max_entry)} limit per file (HULL_MAX_LAYER_ENTRY); refusing the layer")
        self.total += m.size
        if self.total > self.max_total:
            raise UnsafeLayer(f"layer unpacks to more than {_human(self.max_total)} (HULL_MAX_LAYER_SIZE); "
                              "refusing the layer")
        base = parts[-1]
        pfd = self._dirfd(parts[:-1], m.name)
        # pfd is borrowed from the cache: not closed here
        if base == OPAQUE:
            try:
                os.setxattr(pfd, OPAQUE_XATTR, b"y")
            except OSError as e:
                raise HullError(f"layer entry {m.name!r}: cannot mark the directory opaque "
                                f"({OPAQUE_XATTR}): {e.strerror}; the layer dir needs a filesystem "
                                "with trusted xattrs, and root") from None
            return
        if base.startswith(WHITEOUT_PREFIX):
            real = base[len(WHITEOUT_PREFIX):]
            if not real or real in (".", ".."):
                raise UnsafeLayer(f"layer entry {m.name!r} is an invalid whiteout")
            self._clear(pfd, real, parts=parts[:-1] + [real])
            os.mknod(real, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
            return
        if m.isdir():
            self._clear(pfd, base, keep_dir=True)
            try:
                os.mkdir(base, 0o700, dir_fd=pfd)
            except FileExistsError:
                pass
            self.dirs.append((parts, m))
            return
        self._clear(pfd, base, parts=parts)
        if m.isreg():
            st = os.statvfs(pfd) if m.size >= _CHUNK else None
            if st is not None and m.size > st.f_bavail * st.f_frsize:
                raise UnsafeLayer(f"layer entry {m.name!r} needs {_human(m.size)}; only "
                                  f"{_human(st.f_bavail * st.f_frsize)} free under {self.root}")
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=pfd)
            try:
                src = tf.extractfile(m)
                left = m.size
                while left > 0:
                    chunk = src.read(min(left, _CHUNK))
                    if not chunk:
                        raise UnsafeLayer(f"layer entry {m.name!r}: archive ends before its "
                                          f"{_human(m.size)} of data; the layer is truncated")
                    _write_all(fd, chunk)
                    left -= len(chunk)
                self._meta(fd, m)
                os.utime(fd, ns=(int(m.mtime * 1e9),) * 2)
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            self._meta(None, m, pfd, base, is_link=True)
            os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)
        elif m.islnk():
            tparts = _split(m.linkname, "hardlink target")
            if not tparts:
                raise UnsafeLayer(f"layer entry {m.name!r} hardlinks to the layer root")
            try:
                tfd = self._dirfd(tparts[:-1], m.name, create=False)
            except FileNotFoundError:
                tfd = None
            try:
                if tfd is None:
                    raise FileNotFoundError
                os.lstat(tparts[-1], dir_fd=tfd)
                os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise UnsafeLayer(f"layer entry {m.name!r} hardlinks to {m.linkname!r}, which is not in "
                                  "this layer; refusing the layer") from None
        elif m.ischr() or m.isblk():
            if not self.allow_devices:
                self.skipped.append(m.name)
                return
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
            self._meta(None, m, pfd, base)
            os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)
        elif m.isfifo():
            os.mkfifo(base, m.mode & 0o7777, dir_fd=pfd)
            self._meta(None, m, pfd, base)
            os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)
        else:
            self.skipped.append(m.name)

    def finish(self):
        # Directories last and deepest first, so writing their children did not move mtimes.
        for parts, m in sorted(self.dirs, key=lambda pm: -len(pm[0])):
            try:
                fd = self._dirfd(parts, m.name, create=False)
            except (FileNotFoundError, UnsafeLayer):
                continue  # replaced later in the layer (by a file, a symlink, a whiteout)
            self._meta(fd, m)
            os.utime(fd, ns=(int(m.mtime * 1e9),) * 2)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def unpack(stream, dest, allow_devices=None, max_entry=None, max_total=None):
    """Unpack a (possibly compressed) layer tar stream into the existing empty dir `dest`.
    Returns (diff_id, uncompressed size, skipped entry names). Raises UnsafeLayer; the caller
    removes `dest` on error."""
    if allow_devices is None:
        allow_devices = os.geteuid() == 0
    reader = _HashReader(decompressed(stream))
    u = _Unpacker(dest, allow_devices, max_entry or MAX_ENTRY, max_total or MAX_TOTAL)
    try:
        try:
            with tarfile.open(fileobj=reader, mode="r|", errors="surrogateescape") as tf:
                for m in tf:
                    u.entry(tf, m)
            u.finish()
            reader.drain()
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise UnsafeLayer(f"layer is not a valid (or is a truncated) tar archive: {e}") from None
        except UnsafeLayer:
            raise
        except OSError as e:
            raise HullError(f"unpacking layer into {dest}: {e}") from None
    finally:
        u.close()
    return reader.digest, reader.count, u.skipped


def layer_dir(store, chain_id):
    return store.layers_dir / chain_id[7:]


def ensure_unpacked(store, image, progress=None):
    """Unpack each of the image's layers (once, shared by chain id). Returns the layer `diff`
    dirs bottom-up. `progress(i, n, diff_id)` is called per layer that had to be unpacked."""
    store.init()
    dirs = []
    for i, (desc, diff_id, chain) in enumerate(zip(image.layers, image.diff_ids, image.chain_ids)):
        d = layer_dir(store, chain)
        if not (d / "meta.json").exists():
            with store.lock("layer-" + chain[7:]):
                if not (d / "meta.json").exists():
                    if progress:
                        progress(i, len(image.layers), diff_id)
                    _unpack_one(store, desc, diff_id, chain, image.chain_ids[i - 1] if i else None)
        dirs.append(d / "diff")
    return dirs


def _unpack_one(store, desc, diff_id, chain, parent):
    d = layer_dir(store, chain)
    tmp = store.layers_dir / f".tmp-{chain[7:19]}-{os.getpid()}-{time.monotonic_ns()}"
    (tmp / "diff").mkdir(parents=True)
    try:
        with open(store.blob_path(desc["digest"]), "rb") as f:
            got, size, skipped = unpack(f, tmp / "diff")
        if got != diff_id:
            raise HullError(f"layer {desc['digest']}: uncompressed content hashes to {got}, but the image "
                            f"config says {diff_id}; the image is corrupt (pull it again)")
        meta = {"chain_id": chain, "diff_id": diff_id, "parent": parent, "digest": desc["digest"],
                "size": size, "skipped": skipped}
        (tmp / "meta.json").write_text(json.dumps(meta))
        if d.exists():
            shutil.rmtree(d)
        os.rename(tmp, d)
    except FileNotFoundError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise HullError(f"layer blob {desc['digest']} is missing from the store ({e.filename}); "
                        "pull the image again") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- making tarballs ----------------------------------------------------------------------

def tar_directory(src, out, overlay=False, mtime=None, skip=(), idmap=None):
    """Write `src` as a PAX tar to the binary stream `out`, sorted (reproducible), keeping
    owners, modes, xattrs, hardlinks, devices. With overlay=True the dir is an overlay upper
    dir: 0/0 char devices become `.wh.NAME` and opaque dirs get `.wh..wh..opq` (OCI format).
    `mtime` clamps every timestamp to at most that value (SOURCE_DATE_EPOCH style). Relative
    paths in `skip` are left out (with their contents). `idmap` ({"uid": [OCI mappings],
    "gid": [...]}: the dir was written through a user namespace) shifts owners back to the
    ids the container saw, so the layer is the same as without one."""
    from hull.kernel.idmap import container_id
    src = os.fspath(src)
    seen = {}
    uids, gids = (idmap or {}).get("uid"), (idmap or {}).get("gid")
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        def add(rel, full):
            st = os.lstat(full)
            ti = tarfile.TarInfo(rel)
            ti.mode = stat.S_IMODE(st.st_mode)
            ti.uid, ti.gid = container_id(st.st_uid, uids), container_id(st.st_gid, gids)
            ti.uname = ti.gname = ""
            ti.mtime = min(st.st_mtime, mtime) if mtime is not None else st.st_mtime
            ti.mtime = int(ti.mtime)
            xattrs = {}
            try:
                for k in os.listxattr(full, follow_symlinks=False):
                    if k.startswith("trusted.overlay."):
                        continue
                    xattrs["SCHILY.xattr." + k] = os.getxattr(full, k, follow_symlinks=False).decode(
                        "utf-8", "surrogateescape")
            except OSError:
                pass
            if xattrs:
                ti.pax_headers = xattrs
            if stat.S_ISCHR(st.st_mode) and overlay and st.st_rdev == 0:
                d, b = os.path.split(rel)
                wh = tarfile.TarInfo(os.path.join(d, WHITEOUT_PREFIX + b))
                wh.mtime = ti.mtime
                tf.addfile(wh)
                return
            if stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    ti.type = tarfile.LNKTYPE
                    ti.linkname = seen[key]
                    tf.addfile(ti)
                    return
                seen[key] = rel
                ti.size = st.st_size
                with open(full, "rb") as f:
                    tf.addfile(ti, f)
            elif stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
                if overlay:
                    try:
                        if os.getxattr(full, OPAQUE_XATTR, follow_symlinks=False) == b"y":
                            o = tarfile.TarInfo(os.path.join(rel, OPAQUE))
                            o.mtime = ti.mtime
                            tf.addfile(o)
                    except OSError:
                        pass
            elif stat.S_ISLNK(st.st_mode):
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(full)
                tf.addfile(ti)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                tf.addfile(ti)
            elif stat.S_ISFIFO(st.st_mode):
                ti.type = tarfile.FIFOTYPE
                tf.addfile(ti)
            # sockets are not archived

        def walk(rel_dir, full_dir):
            for name in sorted(os.listdir(full_dir)):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if rel in skip:
                    continue
                full = os.path.join(full_dir, name)
                add(rel, full)
                if os.path.isdir(full) and not os.path.islink(full):
                    walk(rel, full)
        walk("", src)


class _DigestWriter(io.RawIOBase):
    def __init__(self, f):
        self.f = f
        self.hash = hashlib.sha256()
        self.count = 0

    def writable(self):
        return True

    def write(self, b):
        self.hash.update(b)
        self.count += len(b)
        self.f.write(b)
        return len(b)

    @property
    def digest(self):
        return "sha256:" + self.hash.hexdigest()


def write_layer(store, produce, compress=True):
    """Run `produce(stream)` to write an uncompressed tar; store it gzip-compressed (mtime 0,
    so reproducible). Returns (descriptor, diff_id)."""
    from hull.image.store import MT_OCI_LAYER, MT_OCI_LAYER_GZIP
    store.init()
    tmp = store.ingest_dir / f"layer-{os.getpid()}-{time.monotonic_ns()}"
    try:
        with open(tmp, "wb") as raw:
            if compress:
                gz = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6)
                dw = _DigestWriter(gz)
                produce(dw)
                gz.close()
            else:
                dw = _DigestWriter(raw)
                produce(dw)
        digest, size = store.put_file(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return {"mediaType": MT_OCI_LAYER_GZIP if compress else MT_OCI_LAYER, "digest": digest, "size": size}, dw.digest


def diff_id_of(path):
    """sha256 of a layer file's uncompressed content."""
    with open(path, "rb") as f:
        r = _HashReader(decompressed(f))
        r.drain()
    return r.digest
