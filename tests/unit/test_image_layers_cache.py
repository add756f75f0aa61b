"""layers.unpack caches directory fds: a directory replaced later in the same layer (by a
symlink, a file, or a whiteout) must not keep receiving entries through a stale fd."""

import io
import os
import tarfile

import pytest

from hull.image import layers


def _tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, arg in entries:
            ti = tarfile.TarInfo(name)
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(arg), 0o644
                tf.addfile(ti, io.BytesIO(arg))
    buf.seek(0)
    return buf


def test_dir_replaced_by_symlink_then_written_through_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "layer"
    dest.mkdir()
    t = _tar([("a/", "dir", None), ("a/b/", "dir", None), ("a/b/f1", "file", b"1"),
              ("a", "sym", str(outside)), ("a/b/f2", "file", b"2")])
    with pytest.raises(layers.UnsafeLayer, match="symlink"):
        layers.unpack(t, dest)
    assert os.listdir(outside) == []


def test_dir_replaced_by_file_and_recreated(tmp_path):
    dest = tmp_path / "layer"
    dest.mkdir()
    t = _tar([("a/", "dir", None), ("a/b/", "dir", None), ("a/b/f1", "file", b"1"),
              ("a", "file", b"now a file"), ("c/d/e", "file", b"e")])
    layers.unpack(t, dest)
    assert (dest / "a").read_bytes() == b"now a file" and (dest / "c/d/e").read_bytes() == b"e"
    dest2 = tmp_path / "layer2"
    dest2.mkdir()
    t = _tar([("a/", "dir", None), ("a/b/", "dir", None), ("a/b/f1", "file", b"1"),
              ("a", "file", b"x"), ("a/b/f2", "file", b"2")])
    with pytest.raises(layers.UnsafeLayer, match="not a directory"):
        layers.unpack(t, dest2)


def test_many_directories_beyond_the_fd_cache(tmp_path):
    dest = tmp_path / "layer"
    dest.mkdir()
    n = layers._MAX_CACHED_FDS * 2 + 7
    t = _tar([(f"d{i}/sub/f", "file", str(i).encode()) for i in range(n)] + [("d0/sub/g", "file", b"g")])
    layers.unpack(t, dest)
    assert (dest / f"d{n - 1}/sub/f").read_bytes() == str(n - 1).encode() and (dest / "d0/sub/g").read_bytes() == b"g"
    assert len(os.listdir(f"/proc/{os.getpid()}/fd")) < 64  # every cached fd was closed
