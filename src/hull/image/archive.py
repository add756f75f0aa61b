"""Image archives: save and load Docker's `docker save` format and OCI archives, import rootfs
tarballs.

docker-archive (what `docker load`/`podman load` read):
    manifest.json   [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"], "Layers": ["<diff hex>/layer.tar"]}]
    <config hex>.json, <diff hex>/layer.tar (uncompressed), <diff hex>/VERSION, repositories
oci-archive: a tar of an OCI image layout (oci-layout, index.json, blobs/sha256/...), each
manifest named with org.opencontainers.image.ref.name = the full reference.

`load` accepts both (and Docker 25's combined layout, which has both a manifest.json and an
index.json). Loaded layers are verified against the config's diff_ids; uncompressed layers are
stored gzip-compressed so a later push is small.
"""

import io
import json
import os
import shutil
import tarfile
import time

from hull.errors import HullError, UsageError
from hull.image import layers as layers_mod
from hull.image import reference
from hull.image.store import (INDEX_TYPES, MT_OCI_INDEX, MT_OCI_LAYER_GZIP, MT_OCI_LAYER_ZSTD, REF_NAME,
                              DigestMismatch, canonical_json, manifest_kind, sha256_digest)

CONTAINERD_NAME = "io.containerd.image.name"


class ArchiveError(HullError):
    pass


def _add_bytes(tf, name, data, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = 0
    tf.addfile(ti, io.BytesIO(data))


def _add_dir(tf, name):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    ti.mtime = 0
    tf.addfile(ti)


def _open_out(out):
    if isinstance(out, (str, os.PathLike)):
        return open(out, "wb"), True
    return out, False


def save(store, names, out, fmt="docker-archive"):
    """Write images (names or ids) to `out` (path or binary stream)."""
    if fmt not in ("docker-archive", "oci-archive"):
        raise UsageError(f"unknown archive format {fmt!r}: use docker-archive or oci-archive")
    resolved = []
    for n in names:
        img = store.resolve(n)
        tag = None
        if not reference.is_short_id(n) or any(n == x for x in img.names):
            try:
                r = reference.parse(n)
                tag = str(r) if str(r) in img.names else (img.name if r.digest else None)
            except UsageError:
                tag = None
        resolved.append((img, tag))
    f, close = _open_out(out)
    tmp_path = None
    try:
        if isinstance(out, (str, os.PathLike)):
            tmp_path = str(out) + ".tmp"
            f.close()
            f = open(tmp_path, "wb")
        if fmt == "docker-archive":
            _save_docker(store, resolved, f)
        else:
            _save_oci(store, resolved, f)
        if tmp_path:
            f.close()
            os.rename(tmp_path, out)
            tmp_path = None
    finally:
        if close and not f.closed:
            f.close()
        if tmp_path and os.path.exists(tmp_path):
            os.unlink(tmp_path)


def _save_docker(store, resolved, f):
    manifest, repos, written = [], {}, set()
    with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for img, tag in resolved:
            cfg_name = img.id[7:] + ".json"
            if cfg_name not in written:
                _add_bytes(tf, cfg_name, store.read_blob(img.id))
                written.add(cfg_name)
            layer_paths = []
            for desc, diff_id in zip(img.layers, img.diff_ids):
                d = diff_id[7:]
                path = f"{d}/layer.tar"
                if path not in written:
                    _add_dir(tf, d)
                    _add_bytes(tf, f"{d}/VERSION", b"1.0")
                    _add_uncompressed(store, tf, path, desc["digest"], diff_id)
                    written.add(path)
                layer_paths.append(path)
            tags = []
            if tag:
                r = reference.parse(tag)
                tags = [str(r)]  # fully qualified: podman reads "busybox:latest" as localhost/busybox
                if r.tag:
                    repos.setdefault(r.familiar_name(), {})[r.tag] = img.diff_ids[-1][7:] if img.diff_ids else ""
            entry = {"Config": cfg_name, "RepoTags": tags or None, "Layers": layer_paths}
            manifest.append(entry)
        _add_bytes(tf, "manifest.json", json.dumps(manifest).encode())
        if repos:
            _add_bytes(tf, "repositories", json.dumps(repos).encode())


def _add_uncompressed(store, tf, name, digest, diff_id):
    """Add the layer blob, decompressed, as `name` (the header needs the size first)."""
    tmp = store.ingest_dir / f"save-{os.getpid()}-{time.monotonic_ns()}"
    try:
        with open(store.blob_path(digest), "rb") as src, open(tmp, "wb") as dst:
            r = layers_mod._HashReader(layers_mod.decompressed(src))
            while chunk := r.read(1 << 20):
                dst.write(chunk)
        if r.digest != diff_id:
            raise DigestMismatch(f"layer {digest} decompresses to {r.digest}, the config says {diff_id}; "
                                 "the stored image is corrupt")
        ti = tarfile.TarInfo(name)
        ti.size = os.path.getsize(tmp)
        ti.mode = 0o644
        ti.mtime = 0
        with open(tmp, "rb") as fh:
            tf.addfile(ti, fh)
    finally:
        tmp.unlink(missing_ok=True)


def _save_oci(store, resolved, f):
    written = set()
    entries = []
    with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_dir(tf, "blobs")
        _add_dir(tf, "blobs/sha256")
        for img, tag in resolved:
            for d in [img.id] + [layer["digest"] for layer in img.layers] + [img.digest]:
                if d in written:
                    continue
                p = store.blob_path(d)
                ti = tarfile.TarInfo(f"blobs/sha256/{d[7:]}")
                ti.size = p.stat().st_size
                ti.mode = 0o644
                ti.mtime = 0
                with open(p, "rb") as fh:
                    tf.addfile(ti, fh)
                written.add(d)
            desc = {"mediaType": img.media_type, "digest": img.digest, "size": store.blob_size(img.digest)}
            if tag:
                desc["annotations"] = {REF_NAME: tag, CONTAINERD_NAME: tag}
            entries.append(desc)
        index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": entries}
        _add_bytes(tf, "index.json", json.dumps(index).encode())


# -- load -------------------------------------------------------------------------------

def _seekable(src, store):
    """A seekable binary file for src (path or stream); stdin is spooled to a temp file."""
    if isinstance(src, (str, os.PathLike)):
        return open(src, "rb"), None
    try:
        src.seek(0, os.SEEK_CUR)
        return src, None
    except (OSError, AttributeError, io.UnsupportedOperation):
        pass
    store.init()
    tmp = store.ingest_dir / f"load-{os.getpid()}-{time.monotonic_ns()}"
    with open(tmp, "wb") as f:
        shutil.copyfileobj(src, f, 1 << 20)
    return open(tmp, "rb"), tmp


def load(store, src):
    """Load every image in a docker-archive or oci-archive. Returns the Images."""
    store.init()
    f, tmp = _seekable(src, store)
    try:
        magic = f.read(4)
        f.seek(0)
        if magic[:2] == b"\x1f\x8b" or magic == b"\x28\xb5\x2f\xfd":
            f2, tmp2 = _spool_plain(store, f)  # random access needs the plain tar
            try:
                return load(store, f2)
            finally:
                f2.close()
                tmp2.unlink(missing_ok=True)
        try:
            tf = tarfile.open(fileobj=f, mode="r:")
        except tarfile.TarError as e:
            raise ArchiveError(f"not an image archive (tar): {e}") from None
        with tf, store.lease():
            names = set(tf.getnames())
            norm = {n.lstrip("./"): n for n in names}
            if "manifest.json" in norm:
                return _load_docker(store, tf, norm)
            if "index.json" in norm:
                return _load_oci(store, tf, norm)
            raise ArchiveError("not an image archive: it has neither manifest.json (docker-archive) "
                               "nor index.json (oci-archive)")
    finally:
        if isinstance(src, (str, os.PathLike)) or tmp:
            f.close()
        if tmp:
            tmp.unlink(missing_ok=True)


def _spool_plain(store, f):
    tmp = store.ingest_dir / f"load-plain-{os.getpid()}-{time.monotonic_ns()}"
    with open(tmp, "wb") as out:
        shutil.copyfileobj(layers_mod.decompressed(f), out, 1 << 20)
    return open(tmp, "rb"), tmp


def _member(tf, norm, name):
    key = name.lstrip("./")
    if key not in norm:
        raise ArchiveError(f"archive lists {name!r} but does not contain it")
    fh = tf.extractfile(norm[key])
    if fh is None:
        raise ArchiveError(f"archive entry {name!r} is not a file")
    return fh


def _store_layer(store, fh):
    """Store a layer stream; gzip it when it is plain tar. Returns (descriptor, diff_id)."""
    buf = io.BufferedReader(fh, 1 << 20) if not hasattr(fh, "peek") else fh
    magic = buf.peek(4)[:4]
    if magic[:2] == b"\x1f\x8b" or magic == b"\x28\xb5\x2f\xfd":
        tmp = store.ingest_dir / f"layer-{os.getpid()}-{time.monotonic_ns()}"
        try:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(buf, out, 1 << 20)
            diff_id = layers_mod.diff_id_of(tmp)
            digest, size = store.put_file(tmp)
        finally:
            tmp.unlink(missing_ok=True)
        mt = MT_OCI_LAYER_GZIP if magic[:2] == b"\x1f\x8b" else MT_OCI_LAYER_ZSTD
        return {"mediaType": mt, "digest": digest, "size": size}, diff_id

    def produce(out):
        shutil.copyfileobj(buf, out, 1 << 20)
    return layers_mod.write_layer(store, produce)


def _load_docker(store, tf, norm):
    try:
        manifest = json.load(_member(tf, norm, "manifest.json"))
    except ValueError as e:
        raise ArchiveError(f"manifest.json is not valid JSON: {e}") from None
    out = []
    for entry in manifest:
        cfg_bytes = _member(tf, norm, entry["Config"]).read()
        cfg = json.loads(cfg_bytes)
        want = cfg.get("rootfs", {}).get("diff_ids", [])
        if len(want) != len(entry.get("Layers", [])):
            raise ArchiveError(f"{entry['Config']}: {len(want)} diff_ids for {len(entry.get('Layers', []))} layers")
        descs = []
        for path, diff_id in zip(entry.get("Layers", []), want):
            desc, got = _store_layer(store, _member(tf, norm, path))
            if got != diff_id:
                raise DigestMismatch(f"layer {path} hashes to {got}, the image config says {diff_id}; refusing it")
            descs.append(desc)
        tags = entry.get("RepoTags") or []
        img = store.write_image(cfg_bytes, descs, tags[0] if tags else None)
        for t in tags[1:]:
            store.tag(img.digest, t)
        out.append(store.load(img.digest, [str(reference.parse(t)) for t in tags]))
    return out


def _copy_blob(store, tf, norm, desc):
    d = desc["digest"]
    if store.has_blob(d):
        return
    fh = _member(tf, norm, f"blobs/sha256/{d[7:]}" if d.startswith("sha256:") else d)
    with store.blob_lock(d):
        if store.has_blob(d):
            return
        w = store.writer(d, desc.get("size"))
        if w.offset:
            w.restart()
        try:
            while chunk := fh.read(1 << 20):
                w.write(chunk)
            w.commit()
        finally:
            w.close()


def _load_oci(store, tf, norm):
    from hull.image.registry import select_platform
    index = json.load(_member(tf, norm, "index.json"))
    out = []
    for desc in index.get("manifests", []):
        ann = desc.get("annotations") or {}
        name = ann.get(CONTAINERD_NAME) or ann.get(REF_NAME)
        try:
            name = str(reference.parse(name)) if name and ("/" in name or ":" in name) else None
        except UsageError:
            name = None
        _copy_blob(store, tf, norm, desc)
        m = store.read_json(desc["digest"])
        mdesc = desc
        if manifest_kind(m, desc.get("mediaType")) == "index":
            mdesc = select_platform(m.get("manifests", []))
            _copy_blob(store, tf, norm, mdesc)
            m = store.read_json(mdesc["digest"])
        _copy_blob(store, tf, norm, m["config"])
        for layer in m.get("layers", []):
            _copy_blob(store, tf, norm, layer)
        store.add({"mediaType": m.get("mediaType") or mdesc.get("mediaType"), "digest": mdesc["digest"],
                   "size": mdesc.get("size") or store.blob_size(mdesc["digest"])}, name)
        out.append(store.load(mdesc["digest"], [name] if name else []))
    return out


# -- import -----------------------------------------------------------------------------

def _apply_changes(cfg, changes):
    for ch in changes:
        word, _, rest = ch.strip().partition(" ")
        word, rest = word.upper(), rest.strip()

        def argv(text):
            if text.startswith("["):
                try:
                    v = json.loads(text)
                    if isinstance(v, list) and all(isinstance(x, str) for x in v):
                        return v
                except ValueError:
                    pass
                raise UsageError(f"--change {ch!r}: invalid JSON array")
            return ["/bin/sh", "-c", text]
        if word == "CMD":
            cfg["Cmd"] = argv(rest)
        elif word == "ENTRYPOINT":
            cfg["Entrypoint"] = argv(rest)
        elif word == "ENV":
            k, sep, v = rest.partition("=")
            if not sep:
                k, _, v = rest.partition(" ")
            env = [e for e in cfg.get("Env", []) if not e.startswith(k + "=")]
            cfg["Env"] = env + [f"{k}={v.strip()}"]
        elif word == "WORKDIR":
            cfg["WorkingDir"] = rest
        elif word == "USER":
            cfg["User"] = rest
        elif word == "LABEL":
            k, _, v = rest.partition("=")
            cfg.setdefault("Labels", {})[k.strip()] = v.strip().strip('"')
        elif word == "EXPOSE":
            for p in rest.split():
                cfg.setdefault("ExposedPorts", {})[p if "/" in p else p + "/tcp"] = {}
        elif word == "STOPSIGNAL":
            cfg["StopSignal"] = rest
        else:
            raise UsageError(f"--change {ch!r}: unsupported instruction {word} "
                             "(CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, WORKDIR)")


def import_rootfs(store, src, name=None, changes=(), message=None, platform=None):
    """`hull import`: one layer from a rootfs tarball (plain, gzip or zstd). Returns the Image."""
    from hull.image.bootstrap import PATH_ENV, host_arch
    if name:
        reference.parse(name)
    store.init()
    fh, tmp = (open(src, "rb"), None) if isinstance(src, (str, os.PathLike)) else (src, None)
    try:
        buf = io.BufferedReader(fh, 1 << 20) if not hasattr(fh, "peek") else fh
        with store.lease():
            head = buf.peek(512)[:512]
            compressed = head[:2] == b"\x1f\x8b" or head[:4] == b"\x28\xb5\x2f\xfd"
            if not compressed and (len(head) < 262 or head[257:262] != b"ustar"):
                raise ArchiveError("the input is not a tar archive (no ustar header)")
            desc, diff_id = _store_layer(store, buf)
        os_, _, arch = (platform or f"linux/{host_arch()}").partition("/")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cfg = {"Env": [PATH_ENV]}
        _apply_changes(cfg, changes)
        hist = {"created": created, "created_by": "hull import"}
        if message:
            hist["comment"] = message
        config = {"created": created, "architecture": arch.split("/")[0] or host_arch(), "os": os_ or "linux",
                  "config": cfg, "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "history": [hist]}
        with store.lease():
            return store.write_image(config, [desc], name)
    finally:
        if isinstance(src, (str, os.PathLike)):
            fh.close()


__all__ = ["save", "load", "import_rootfs", "ArchiveError", "canonical_json", "sha256_digest", "INDEX_TYPES"]
