"""ADD of a local tar: extracted under the destination, never outside it — with tarfile's
"tar" filter where Python has it (3.11.4+), and with hull's own equal check where it does not
(Debian 12's 3.11.2, which CI's .venv uses)."""

import io
import tarfile

import pytest

from hull.build import builder
from hull.build.builder import BuildError
from hull.build.dockerfile import Instruction


def _tar(path, members):
    with tarfile.open(path, "w") as tf:
        for name, kind, data in members:
            ti = tarfile.TarInfo(name)
            if kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o4777
                tf.addfile(ti, io.BytesIO(data))
    return path


@pytest.fixture(params=["filter", "fallback"])
def extract(request, monkeypatch):
    if request.param == "fallback":
        monkeypatch.delattr(tarfile, "tar_filter", raising=False)
    elif not hasattr(tarfile, "tar_filter"):
        pytest.skip("this Python has no tarfile extraction filters")
    ins = Instruction("add", "pkg.tar /opt/", 3, "ADD pkg.tar /opt/")
    return lambda rootfs, tar: builder._extract(rootfs, "/opt", str(tar), ins)


def test_members_land_under_the_destination_without_setuid(extract, tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    extract(rootfs, _tar(tmp_path / "ok.tar", [("/pkg/readme", "file", b"hi\n")]))
    f = rootfs / "opt/pkg/readme"
    assert f.read_bytes() == b"hi\n"
    assert f.stat().st_mode & 0o7022 == 0


@pytest.mark.parametrize("members", [
    [("../../evil", "file", b"x")],
    [("link", "sym", "/"), ("link/evil", "file", b"x")],
])
def test_escaping_members_are_refused(extract, tmp_path, members):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    with pytest.raises(BuildError, match="outside the destination|extracting the archive failed"):
        extract(rootfs, _tar(tmp_path / "bad.tar", members))
    assert not (tmp_path / "evil").exists() and not (rootfs / "evil").exists()
    assert not __import__("os").path.exists("/evil")
