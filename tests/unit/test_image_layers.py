"""Layer unpacking against malicious and ordinary tarballs (no root needed)."""

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile

import pytest

from hull.image import layers
from hull.image.layers import UnsafeLayer


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (name, kind, extra) with kind file/dir/sym/hard; extra = data or link target."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            name, kind = e[0], e[1]
            extra = e[2] if len(e) > 2 else None
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            if kind == "file":
                data = extra or b""
                ti.size = len(data)
                ti.mode = 0o644
                tf.addfile(ti, io.BytesIO(data))
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
                tf.addfile(ti)
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra
                tf.addfile(ti)
    return buf.getvalue()


@pytest.fixture
def box(tmp_path):
    """A layer dir inside a sandbox; `outside` is where escapes would land."""
    dest = tmp_path / "sandbox" / "layer"
    dest.mkdir(parents=True)
    outside = tmp_path / "sandbox"
    (outside / "victim").write_text("original")
    return dest, outside


def unpack(data, dest, **kw):
    return layers.unpack(io.BytesIO(data), dest, allow_devices=False, **kw)


def assert_nothing_outside(outside):
    assert sorted(p.name for p in outside.iterdir()) == ["layer", "victim"]
    assert (outside / "victim").read_text() == "original"


@pytest.mark.parametrize("entries,msg", [
    ([("../evil", "file", b"x")], "'..'"),
    ([("a/../../evil", "file", b"x")], "'..'"),
    ([("/abs", "file", b"x")], "absolute"),
    ([("./../victim", "file", b"pwned")], "'..'"),
    ([("link", "sym", ".."), ("link/evil", "file", b"x")], "symlink"),
    ([("link", "sym", "../victim"), ("link/x", "file", b"x")], "symlink"),
    ([("d", "dir"), ("d/link", "sym", "/"), ("d/link/evil", "file", b"x")], "symlink"),
    ([("link", "sym", ".."), ("link/sub/evil", "dir")], "symlink"),
    ([("hl", "hard", "../victim")], "'..'"),
    ([("hl", "hard", "/etc/passwd")], "absolute"),
    ([("hl", "hard", "etc/passwd")], "not in this layer"),
    ([("link", "sym", ".."), ("hl", "hard", "link/victim")], "symlink"),
    ([("file", "file", b"x"), ("file/sub", "file", b"y")], "not a directory"),
])
def test_malicious_refused(box, entries, msg):
    dest, outside = box
    with pytest.raises(UnsafeLayer) as e:
        unpack(tar_bytes(entries), dest)
    assert msg in str(e.value)
    assert_nothing_outside(outside)


def test_symlink_then_file_replaces_link_not_target(box):
    dest, outside = box
    unpack(tar_bytes([("x", "sym", "../victim"), ("x", "file", b"new")]), dest)
    assert (dest / "x").read_bytes() == b"new" and not (dest / "x").is_symlink()
    assert_nothing_outside(outside)


def test_absurd_entry_size_refused(box):
    dest, outside = box
    ti = tarfile.TarInfo("huge")
    ti.size = 1 << 40
    data = ti.tobuf(tarfile.PAX_FORMAT) + b"\0" * 1024
    with pytest.raises(UnsafeLayer) as e:
        unpack(data, dest)
    assert "1.0 TiB" in str(e.value) and "limit" in str(e.value)
    assert list(dest.iterdir()) == []


def test_total_size_limit(box):
    dest, _ = box
    data = tar_bytes([(f"f{i}", "file", b"x" * 600) for i in range(4)])
    with pytest.raises(UnsafeLayer) as e:
        unpack(data, dest, max_total=2000)
    assert "HULL_MAX_LAYER_SIZE" in str(e.value)


def test_truncated_archive(box):
    dest, _ = box
    data = tar_bytes([("f", "file", b"y" * 5000)])
    with pytest.raises(UnsafeLayer) as e:
        unpack(data[:1500], dest)
    assert "truncated" in str(e.value) or "tar" in str(e.value)


def test_not_a_tar(box):
    dest, _ = box
    with pytest.raises(UnsafeLayer):
        unpack(gzip.compress(b"hello world, not a tar" * 40), dest)


def test_ordinary_layer_roundtrip(box):
    dest, outside = box
    data = tar_bytes([("./", "dir"), ("etc", "dir"), ("etc/conf", "file", b"abc"), ("etc/hl", "hard", "etc/conf"),
                      ("bin", "dir"), ("bin/sh", "sym", "/bin/busybox"), ("deep/implicit/file", "file", b"z")])
    diff_id, size, skipped = unpack(data, dest)
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest() and size == len(data)
    assert (dest / "etc/conf").read_bytes() == b"abc"
    assert os.stat(dest / "etc/hl").st_ino == os.stat(dest / "etc/conf").st_ino
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert (dest / "deep/implicit/file").read_bytes() == b"z"
    assert os.stat(dest / "etc/conf").st_mtime == 1_600_000_000
    assert os.stat(dest / "etc").st_mtime == 1_600_000_000
    assert oct(os.stat(dest / "etc/conf").st_mode & 0o777) == oct(0o644)
    assert_nothing_outside(outside)


def test_gzip_and_diff_id(box):
    dest, _ = box
    data = tar_bytes([("a", "file", b"1")])
    diff_id, _, _ = unpack(gzip.compress(data), dest)
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.skipif(not shutil.which("zstd"), reason="zstd tool not installed")
def test_zstd(box):
    dest, _ = box
    data = tar_bytes([("a", "file", b"zstd!")])
    comp = subprocess.run(["zstd", "-c"], input=data, capture_output=True, check=True).stdout
    diff_id, _, _ = unpack(comp, dest)
    assert (dest / "a").read_bytes() == b"zstd!"
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()


def test_xattr_on_overlay_namespace_ignored(box):
    dest, _ = box
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("d")
        ti.type = tarfile.DIRTYPE
        ti.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y"}
        tf.addfile(ti)
    unpack(buf.getvalue(), dest)
    try:
        assert os.getxattr(dest / "d", "trusted.overlay.opaque") != b"y"
    except OSError:
        pass  # not set: what we want


def test_tar_directory_reproducible(tmp_path):
    src = tmp_path / "src"
    (src / "a/b").mkdir(parents=True)
    (src / "a/b/f").write_text("hi")
    os.symlink("b/f", src / "a/l")
    outs = []
    for _ in range(2):
        b = io.BytesIO()
        layers.tar_directory(src, b, mtime=0)
        outs.append(b.getvalue())
    assert outs[0] == outs[1]
    dest = tmp_path / "dest"
    dest.mkdir()
    layers.unpack(io.BytesIO(outs[0]), dest)
    assert (dest / "a/b/f").read_text() == "hi" and os.readlink(dest / "a/l") == "b/f"
