"""The image store: an OCI image layout under $HULL_ROOT/images (default /var/lib/hull).

    $HULL_ROOT/images/oci-layout, index.json, blobs/sha256/<hex>   (skopeo/umoci can read it)
    $HULL_ROOT/layers/<chain-id hex>/diff                           (unpacked layers, layers.py)
    $HULL_ROOT/snapshots/<key>.json                                 (who uses which image, snapshot.py)
    $HULL_ROOT/tmp/ingest, tmp/locks                                 (partial blobs, flock files)

index.json names images with the `org.opencontainers.image.ref.name` annotation holding the
full normalized reference (docker.io/library/busybox:latest), as containerd does; an entry
without it is a dangling (untagged) image. Every blob is hashed while it is written and only
renamed into blobs/ when its digest and size match (`BlobWriter.commit`). Writers of one blob
serialize on a per-blob flock, so concurrent pulls download each blob once. Writers hold the
gc lock shared (`lease()`); `gc()` takes it exclusively so it never deletes a blob that a pull
has written but not yet tagged.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path

from hull.errors import Conflict, HullError, NotFound, UsageError
from hull.image import reference

REF_NAME = "org.opencontainers.image.ref.name"

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)
INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)


class DigestMismatch(HullError):
    """Content did not hash to the digest it was announced with."""


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest):
    if not reference.is_digest(digest):
        raise UsageError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    return digest[7:]


def chain_ids(diff_ids):
    """OCI ChainID: chain[0] = diff[0]; chain[n] = sha256(chain[n-1] + " " + diff[n])."""
    out = []
    for d in diff_ids:
        out.append(d if not out else sha256_digest(f"{out[-1]} {d}".encode()))
    return out


def canonical_json(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def manifest_kind(manifest, media_type=None):
    """'manifest' or 'index' from the mediaType (field or header) or the shape."""
    mt = manifest.get("mediaType") or media_type
    if mt in INDEX_TYPES or (mt is None and "manifests" in manifest):
        return "index"
    if mt in MANIFEST_TYPES or (mt is None and "layers" in manifest):
        return "manifest"
    if manifest.get("schemaVersion") == 1:
        raise HullError("Docker image manifest schema 1 is not supported (deprecated since 2019); "
                        "push the image again with a current client")
    raise HullError(f"unsupported manifest media type {mt!r}")


def _atomic_write(path, data, mode=0o644):
    tmp = f"{path}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


@contextlib.contextmanager
def _flock(path, mode=fcntl.LOCK_EX):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


class Image:
    """A resolved image: its manifest, config and layer descriptors.

    `digest` is the manifest digest, `id` the config digest (Docker's image ID), `layers` the
    layer descriptors bottom-up, `diff_ids`/`chain_ids` from the config."""

    def __init__(self, store, digest, manifest, config, names=(), media_type=None):
        self.store = store
        self.digest = digest
        self.manifest = manifest
        self.config = config
        self.names = list(names)
        self.media_type = manifest.get("mediaType") or media_type or MT_OCI_MANIFEST
        self.id = manifest["config"]["digest"]
        self.layers = list(manifest.get("layers", []))
        self.diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
        if len(self.diff_ids) != len(self.layers):
            raise HullError(f"image {digest}: config lists {len(self.diff_ids)} diff_ids for "
                            f"{len(self.layers)} layers; the image is corrupt")
        self.chain_ids = chain_ids(self.diff_ids)

    @property
    def name(self):
        return self.names[0] if self.names else None

    @property
    def size(self):
        return self.manifest["config"].get("size", 0) + sum(layer.get("size", 0) for layer in self.layers)

    @property
    def platform(self):
        p = f"{self.config.get('os', '?')}/{self.config.get('architecture', '?')}"
        return p + (f"/{self.config['variant']}" if self.config.get("variant") else "")

    def __repr__(self):
        return f"Image({self.name or self.digest!r}, id={self.id[:19]})"


class BlobWriter:
    """Streams one blob into tmp/ingest/<hex>.partial, hashing as it goes; `commit()` verifies
    digest (and size when known) and renames into blobs/. A leftover partial from an earlier
    interrupted write is resumed: `offset` says how many bytes are already there."""

    def __init__(self, store, digest, size=None):
        self.store = store
        self.digest = digest
        self.size = size
        self.path = store.ingest_dir / (_hex(digest) + ".partial")
        self._hash = hashlib.sha256()
        self.offset = 0
        if self.path.exists():
            with open(self.path, "rb") as f:
                while chunk := f.read(1 << 20):
                    self._hash.update(chunk)
                    self.offset += len(chunk)
            if size is not None and self.offset > size:
                self.restart()
        self._f = open(self.path, "ab")

    def restart(self):
        """Drop what is there (the server could not resume)."""
        if getattr(self, "_f", None):
            self._f.close()
        self.path.unlink(missing_ok=True)
        self._hash = hashlib.sha256()
        self.offset = 0
        self._f = open(self.path, "ab")

    def write(self, data):
        if self.size is not None and self.offset + len(data) > self.size:
            self.abort()
            raise DigestMismatch(f"blob {self.digest}: more data than the {self.size} bytes announced; "
                                 "refusing it")
        self._f.write(data)
        self._hash.update(data)
        self.offset += len(data)

    def commit(self):
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        got = "sha256:" + self._hash.hexdigest()
        if got != self.digest or (self.size is not None and self.offset != self.size):
            self.path.unlink(missing_ok=True)
            raise DigestMismatch(f"blob {self.digest}: content hashes to {got} ({self.offset} bytes"
                                 f"{'' if self.size is None else f', expected {self.size}'}); not stored")
        os.rename(self.path, self.store.blob_path(self.digest))
        return self.digest

    def close(self):
        """Stop writing but keep the partial for a later resume."""
        if not self._f.closed:
            self._f.close()

    def abort(self):
        self.close()
        self.path.unlink(missing_ok=True)


class Store:
    def __init__(self, root=None):
        self.root = Path(root or os.environ.get("HULL_ROOT") or "/var/lib/hull")
        self.layout = self.root / "images"
        self.blobs = self.layout / "blobs" / "sha256"
        self.index_path = self.layout / "index.json"
        self.ingest_dir = self.root / "tmp" / "ingest"
        self.locks_dir = self.root / "tmp" / "locks"
        self.layers_dir = self.root / "layers"
        self.snapshots_dir = self.root / "snapshots"
        self._ready = False

    # -- layout ---------------------------------------------------------------------------

    def init(self):
        if self._ready:
            return self
        try:
            for d in (self.blobs, self.ingest_dir, self.locks_dir, self.layers_dir, self.snapshots_dir):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HullError(f"cannot create the image store at {self.root}: {e.strerror} "
                            "(run as root or set HULL_ROOT to a writable directory)") from None
        if not (self.layout / "oci-layout").exists():
            _atomic_write(self.layout / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        if not self.index_path.exists():
            with self._index_lock():
                if not self.index_path.exists():
                    self._write_index({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": []})
        self._ready = True
        return self

    def lock(self, name, shared=False):
        self.init()
        return _flock(self.locks_dir / (name + ".lock"), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)

    def _index_lock(self):
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        return _flock(self.locks_dir / "index.lock")

    def lease(self):
        """Held (shared) while writing blobs that are not referenced yet; gc waits for it."""
        return self.lock("gc", shared=True)

    # -- blobs ----------------------------------------------------------------------------

    def blob_path(self, digest):
        return self.blobs / _hex(digest)

    def has_blob(self, digest):
        return self.blob_path(digest).exists()

    def blob_size(self, digest):
        return self.blob_path(digest).stat().st_size

    def read_blob(self, digest):
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the image store {self.layout}") from None

    def read_json(self, digest):
        return json.loads(self.read_blob(digest))

    def blob_lock(self, digest):
        return self.lock("blob-" + _hex(digest))

    def writer(self, digest, size=None):
        """A BlobWriter; hold `blob_lock(digest)` around it."""
        self.init()
        return BlobWriter(self, digest, size)

    def put_blob(self, data, digest=None):
        """Store bytes (verified against `digest` when given). Returns the digest."""
        digest = digest or sha256_digest(data)
        self.init()
        if self.has_blob(digest):
            return digest
        with self.blob_lock(digest):
            if self.has_blob(digest):
                return digest
            w = self.writer(digest, len(data))
            if w.offset:
                w.restart()
            w.write(data)
            return w.commit()

    def put_file(self, path, digest=None):
        """Store a file's content, hashing it on the way. Returns (digest, size)."""
        self.init()
        if digest and self.has_blob(digest):
            return digest, self.blob_size(digest)
        h = hashlib.sha256()
        tmp = self.ingest_dir / f"put-{os.getpid()}-{time.monotonic_ns()}"
        size = 0
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                h.update(chunk)
                dst.write(chunk)
                size += len(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        got = "sha256:" + h.hexdigest()
        if digest and got != digest:
            tmp.unlink()
            raise DigestMismatch(f"{path}: content hashes to {got}, expected {digest}; not stored")
        with self.blob_lock(got):
            if self.has_blob(got):
                tmp.unlink()
            else:
                os.rename(tmp, self.blob_path(got))
        return got, size

    # -- index.json -----------------------------------------------------------------------

    def _read_index(self):
        try:
            return json.loads(self.index_path.read_text())
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": []}
        except ValueError as e:
            raise HullError(f"{self.index_path} is not valid JSON ({e}); repair or remove it") from None

    def _write_index(self, index):
        _atomic_write(self.index_path, json.dumps(index, indent=2).encode())

    def entries(self):
        """index.json's manifest descriptors."""
        return self._read_index().get("manifests", [])

    def add(self, descriptor, name=None):
        """Name a stored manifest (or untagged when name is None). A name that pointed at
        another image moves; that image stays as a dangling entry if nothing else names it."""
        self.init()
        if not self.has_blob(descriptor["digest"]):
            raise NotFound(f"manifest {descriptor['digest']} is not in the store")
        desc = {k: descriptor[k] for k in ("mediaType", "digest", "size") if k in descriptor}
        if descriptor.get("platform"):
            desc["platform"] = descriptor["platform"]
        annotations = {k: v for k, v in (descriptor.get("annotations") or {}).items() if k != REF_NAME}
        if name:
            annotations[REF_NAME] = str(name)
        if annotations:
            desc["annotations"] = annotations
        with self._index_lock():
            index = self._read_index()
            out, displaced = [], []
            for e in index.get("manifests", []):
                ename = (e.get("annotations") or {}).get(REF_NAME)
                if name and ename == str(name):
                    if e["digest"] != desc["digest"]:
                        displaced.append(e)
                    continue
                if not ename and e["digest"] == desc["digest"]:
                    continue  # was dangling, is named now
                out.append(e)
            out.append(desc)
            for e in displaced:
                if not any(o["digest"] == e["digest"] for o in out):
                    d = dict(e)
                    d["annotations"] = {k: v for k, v in (e.get("annotations") or {}).items() if k != REF_NAME}
                    if not d["annotations"]:
                        del d["annotations"]
                    out.append(d)
            if out != index.get("manifests"):  # a cached rebuild re-names the same image: no write, no fsync
                index["manifests"] = out
                self._write_index(index)
        return desc

    def remove_entries(self, predicate):
        with self._index_lock():
            index = self._read_index()
            keep = [e for e in index.get("manifests", []) if not predicate(e)]
            removed = len(index.get("manifests", [])) - len(keep)
            index["manifests"] = keep
            self._write_index(index)
        return removed

    # -- images ---------------------------------------------------------------------------

    def load(self, digest, names=(), media_type=None):
        manifest = self.read_json(digest)
        if manifest_kind(manifest, media_type) != "manifest":
            raise HullError(f"{digest} is an image index, not a single image")
        config = self.read_json(manifest["config"]["digest"])
        return Image(self, digest, manifest, config, names, media_type)

    def images(self):
        """Every stored image (one per manifest), with all its names."""
        by_digest = {}
        order = []
        for e in self.entries():
            d = e["digest"]
            if d not in by_digest:
                by_digest[d] = (e, [])
                order.append(d)
            n = (e.get("annotations") or {}).get(REF_NAME)
            if n:
                by_digest[d][1].append(n)
        out = []
        for d in order:
            e, names = by_digest[d]
            try:
                out.append(self.load(d, names, e.get("mediaType")))
            except (NotFound, HullError):
                continue
        return out

    def resolve(self, text):
        """Find a stored image by reference (busybox, docker.io/library/busybox:latest,
        name@sha256:…), by image ID (config digest, or a prefix of at least 4 hex digits as
        `hull images` prints it) or by manifest digest. Raises NotFound."""
        if not text:
            raise UsageError("no image given")
        if not reference.is_short_id(text):
            img = self._resolve_name(text)
            if img is not None:
                return img
        images = self.images()
        if reference.is_short_id(text):
            t = text if text.startswith("sha256:") else "sha256:" + text
            hits = {i.digest: i for i in images if i.id.startswith(t) or i.digest.startswith(t)}
            if len(hits) == 1:
                return next(iter(hits.values()))
            if len(hits) > 1:
                raise Conflict(f"image ID {text!r} is ambiguous: it matches {len(hits)} images; give more digits")
            if text.startswith("sha256:"):
                raise NotFound(f"no such image: {text}")
        ref = reference.parse(text)
        want = str(ref)
        for img in images:
            if want in img.names:
                return img
        if ref.digest:
            for img in images:
                if img.digest == ref.digest and any(reference.parse(n).name == ref.name for n in img.names):
                    return img
            for img in images:
                if img.digest == ref.digest:
                    return img
        raise NotFound(f"no such image: {ref.familiar()} (pull it with `hull pull {ref.familiar()}` "
                       "or make it with `hull image bootstrap`)")

    def _resolve_name(self, text):
        """The image named `text` (a tag reference, no digest), loading only that one manifest
        and config rather than every image's (the store keeps dangling images from rebuilds);
        None when it is not a plain name or did not load: resolve's full scan decides then."""
        try:
            ref = reference.parse(text)
        except HullError:
            return None
        if ref.digest:
            return None
        want = str(ref)
        entries = self.entries()
        hit = next((e for e in entries if (e.get("annotations") or {}).get(REF_NAME) == want), None)
        if hit is None:
            return None
        d = hit["digest"]
        first = next(e for e in entries if e["digest"] == d)
        names = [n for e in entries if e["digest"] == d for n in [(e.get("annotations") or {}).get(REF_NAME)] if n]
        try:
            return self.load(d, names, first.get("mediaType"))
        except (NotFound, HullError):
            return None

    def exists(self, text):
        try:
            self.resolve(text)
            return True
        except (NotFound, UsageError):
            return False

    def tag(self, source, target):
        img = self.resolve(source)
        ref = reference.parse(target)
        if ref.digest:
            raise UsageError(f"cannot tag with a digest reference: {target}")
        self.add({"mediaType": img.media_type, "digest": img.digest,
                  "size": self.blob_size(img.digest)}, str(ref))
        return ref

    @staticmethod
    def _image_manifest(cfg, layers, annotations=None, docker=False):
        manifest = {"schemaVersion": 2,
                    "mediaType": MT_DOCKER_MANIFEST if docker else MT_OCI_MANIFEST,
                    "config": {"mediaType": MT_DOCKER_CONFIG if docker else MT_OCI_CONFIG,
                               "digest": sha256_digest(cfg), "size": len(cfg)},
                    "layers": [{k: d[k] for k in ("mediaType", "digest", "size") if k in d} for d in layers]}
        if annotations and not docker:
            manifest["annotations"] = dict(annotations)
        return manifest

    def stored_image(self, config, layers, names=()):
        """The Image write_image(config, layers, name) would make, if that would write
        nothing: config and manifest blobs stored and every name already on it (or, with no
        names, the manifest in the index). Else None. Reads only."""
        cfg = canonical_json(config)
        mbytes = canonical_json(self._image_manifest(cfg, layers))
        digest = sha256_digest(mbytes)
        if not (self.has_blob(digest) and self.has_blob(sha256_digest(cfg))):
            return None
        entries = [e for e in self._read_index().get("manifests", []) if e.get("digest") == digest]
        have = {(e.get("annotations") or {}).get(REF_NAME) for e in entries}
        want = [str(reference.parse(n)) for n in names]
        if not entries or any(n not in have for n in want):
            return None
        return self.load(digest, want[:1])

    def write_image(self, config, layers, name=None, annotations=None, docker=False):
        """Store a config (dict or exact bytes) and a manifest over already-stored layer
        descriptors, and name it (`name` None: untagged). Returns the Image."""
        cfg = config if isinstance(config, (bytes, bytearray)) else canonical_json(config)
        cfg_digest = self.put_blob(bytes(cfg))
        manifest = self._image_manifest(bytes(cfg), layers, annotations, docker)
        mbytes = canonical_json(manifest)
        digest = self.put_blob(mbytes)
        self.add({"mediaType": manifest["mediaType"], "digest": digest, "size": len(mbytes)},
                 str(reference.parse(name)) if name else None)
        return self.load(digest, [str(reference.parse(name))] if name else [])

    def users(self, image=None):
        """Snapshot records (containers) using `image` (or all when None)."""
        out = []
        if not self.snapshots_dir.is_dir():
            return out
        for p in sorted(self.snapshots_dir.glob("*.json")):
            try:
                rec = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if image is None or rec.get("image") in (image.digest, image.id):
                out.append(rec)
        return out

    def remove(self, text, force=False):
        """`hull rmi`: untag a name; the image goes when its last name goes. A bare ID removes
        every name (needs force when there are several, as Docker). Refuses while a container
        uses the image unless force. Returns a list of ("Untagged"|"Deleted", what)."""
        img = self.resolve(text)
        users = self.users(img)
        by_id = reference.is_short_id(text) and not any(text == n for n in img.names)
        try:
            ref = None if by_id else str(reference.parse(text))
        except UsageError:
            ref = None
        if ref not in img.names:
            ref = None
        if ref is None and len(img.names) > 1 and not force:
            raise Conflict(f"unable to delete {img.id[7:19]} (must be forced) - image is referenced in "
                           f"multiple repositories: {', '.join(img.names)}")
        drop = [ref] if ref else list(img.names)
        last = set(drop) >= set(img.names)
        if last and users and not force:
            holders = ", ".join(u.get("owner") or u.get("container_dir", "?") for u in users)
            raise Conflict(f"unable to remove image {img.name or img.id[7:19]}: it is in use by "
                           f"container(s) {holders}; remove them or use --force")
        actions = [("Untagged", reference.parse(n).familiar()) for n in drop]

        def pred(e):
            n = (e.get("annotations") or {}).get(REF_NAME)
            if e["digest"] != img.digest:
                return False
            return (n in drop) or (last and not n)
        self.remove_entries(pred)
        if last:
            actions.append(("Deleted", img.id))
            self.gc()
        return actions

    def prune(self, all_unused=False):
        """Remove dangling images (and, with all_unused, every image no container uses),
        then collect unreferenced blobs and layers. Returns (removed digests, bytes freed)."""
        used = {rec.get("image") for rec in self.users()}
        removed = []

        def pred(e):
            named = bool((e.get("annotations") or {}).get(REF_NAME))
            if e["digest"] in used:
                return False
            if (not named) or all_unused:
                removed.append(e["digest"])
                return True
            return False
        self.remove_entries(pred)
        before = self.disk_usage()
        self.gc()
        return sorted(set(removed)), before - self.disk_usage()

    def disk_usage(self):
        total = 0
        for base in (self.blobs, self.layers_dir):
            if base.is_dir():
                for dirpath, _, files in os.walk(base):
                    for f in files:
                        try:
                            total += os.lstat(os.path.join(dirpath, f)).st_size
                        except OSError:
                            pass
        return total

    def referenced(self):
        """Digests of every blob reachable from index.json, and chain ids in use."""
        blobs, chains = set(), set()
        todo = [(e["digest"], e.get("mediaType")) for e in self.entries()]
        while todo:
            d, mt = todo.pop()
            if d in blobs:
                continue
            blobs.add(d)
            try:
                m = self.read_json(d)
            except (NotFound, ValueError):
                continue
            if manifest_kind(m, mt) == "index":
                todo += [(c["digest"], c.get("mediaType")) for c in m.get("manifests", []) if self.has_blob(c["digest"])]
                continue
            blobs.add(m["config"]["digest"])
            blobs.update(layer["digest"] for layer in m.get("layers", []))
            try:
                cfg = self.read_json(m["config"]["digest"])
                chains.update(chain_ids(cfg.get("rootfs", {}).get("diff_ids", [])))
            except (NotFound, ValueError):
                pass
        for rec in self.users():
            chains.update(rec.get("chain_ids", []))
        return blobs, chains

    def gc(self):
        """Delete blobs and unpacked layers nothing references. Returns deleted blob digests."""
        import shutil
        if not self.blobs.is_dir():
            return []
        deleted = []
        with self.lock("gc"):
            keep, chains = self.referenced()
            for p in self.blobs.iterdir():
                d = "sha256:" + p.name
                if d not in keep:
                    with self.blob_lock(d):
                        p.unlink(missing_ok=True)
                    deleted.append(d)
            if self.layers_dir.is_dir():
                keep_hex = {c[7:] for c in chains}
                for p in self.layers_dir.iterdir():
                    if p.name.startswith("."):
                        continue
                    if p.name not in keep_hex:
                        with self.lock("layer-" + p.name):
                            shutil.rmtree(p, ignore_errors=True)
        return deleted


_default = None


def default_store():
    """The store at $HULL_ROOT (re-read when HULL_ROOT changes, for tests)."""
    global _default
    root = os.environ.get("HULL_ROOT") or "/var/lib/hull"
    if _default is None or str(_default.root) != root:
        _default = Store(root)
    return _default


def resolve(text, store=None):
    """The engine's entry point: `resolve("busybox") -> Image`."""
    return (store or default_store()).resolve(text)
