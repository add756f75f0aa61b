"""Layer unpacking as root: owners, xattrs, whiteouts in overlay format, device nodes."""

import io
import os
import stat
import struct
import tarfile

import pytest

from hull.image import layers

pytestmark = pytest.mark.root


def build(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def ti(name, kind=tarfile.REGTYPE, size=0, **kw):
    t = tarfile.TarInfo(name)
    t.type = kind
    t.size = size
    t.mtime = 1_500_000_000
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def test_owner_mode_xattr_mtime_preserved(tmp_path):
    f = ti("f", size=2, uid=1234, gid=5678, mode=0o4750)
    cap = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)  # VFS_CAP_REVISION_2, cap_net_bind_service
    f.pax_headers = {"SCHILY.xattr.user.hull": "yes",
                     "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape")}
    d = ti("d", tarfile.DIRTYPE, uid=42, gid=43, mode=0o711)
    link = ti("d/l", tarfile.SYMTYPE, linkname="../f", uid=7, gid=8)
    data = build([(d, None), (f, b"hi"), (link, None)])
    layers.unpack(io.BytesIO(data), tmp_path)
    st = os.stat(tmp_path / "f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4750)
    assert st.st_mtime == 1_500_000_000
    assert os.getxattr(tmp_path / "f", "user.hull") == b"yes"
    assert os.getxattr(tmp_path / "f", "security.capability") == cap
    st = os.stat(tmp_path / "d")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_mtime) == (42, 43, 0o711, 1_500_000_000)
    lst = os.lstat(tmp_path / "d/l")
    assert (lst.st_uid, lst.st_gid) == (7, 8)


def test_whiteouts_become_overlay_format(tmp_path):
    data = build([(ti("etc", tarfile.DIRTYPE, mode=0o755), None),
                  (ti("etc/.wh.passwd"), b""),
                  (ti("var", tarfile.DIRTYPE, mode=0o755), None),
                  (ti("var/.wh..wh..opq"), b"")])
    layers.unpack(io.BytesIO(data), tmp_path)
    st = os.lstat(tmp_path / "etc/passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert not (tmp_path / "etc/.wh.passwd").exists()
    assert os.getxattr(tmp_path / "var", "trusted.overlay.opaque") == b"y"


def test_whiteout_name_cannot_escape(tmp_path):
    (tmp_path / "layer").mkdir()
    (tmp_path / "keep").write_text("x")
    with pytest.raises(layers.UnsafeLayer):
        layers.unpack(io.BytesIO(build([(ti(".wh...", size=0), b"")])), tmp_path / "layer")
    assert (tmp_path / "keep").exists()


def test_devices_only_when_allowed(tmp_path):
    dev = ti("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
    fifo = ti("fifo", tarfile.FIFOTYPE, mode=0o600)
    data = build([(ti("dev", tarfile.DIRTYPE, mode=0o755), None), (dev, None), (fifo, None)])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, _, skipped = layers.unpack(io.BytesIO(data), tmp_path / "a", allow_devices=True)
    assert stat.S_ISCHR(os.lstat(tmp_path / "a/dev/null").st_mode) and not skipped
    _, _, skipped = layers.unpack(io.BytesIO(data), tmp_path / "b", allow_devices=False)
    assert skipped == ["dev/null"] and not os.path.lexists(tmp_path / "b/dev/null")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "b/fifo").st_mode)
