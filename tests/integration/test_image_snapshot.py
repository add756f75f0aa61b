"""Snapshots: overlay rootfs from image layers, vfs fallback, diff, commit, in-use refusal."""

import os

import pytest

from image_helpers import hull, hull_root  # noqa: F401
from hull.errors import Conflict
from hull.image import bootstrap, snapshot
from hull.image.store import default_store

pytestmark = pytest.mark.root


@pytest.fixture
def image(hull_root):
    return bootstrap.busybox(default_store())


def test_overlay_prepare_diff_commit_remove(image, tmp_path):
    cdir = tmp_path / "ctr-hull"
    rootfs = snapshot.prepare(image, cdir, owner="c1")
    try:
        assert snapshot.is_mounted(rootfs)
        assert os.path.islink(rootfs / "bin/sh") and (rootfs / "bin/busybox").is_file()
        assert snapshot.prepare(image, cdir) == rootfs  # idempotent
        (rootfs / "hello").write_text("hi")
        os.unlink(rootfs / "bin/ls")
        changes = dict((p, k) for k, p in snapshot.diff(cdir))
        assert changes["/hello"] == "A" and changes["/bin/ls"] == "D" and changes["/bin"] == "C"
        assert (cdir / "upper/hello").read_text() == "hi"
        with pytest.raises(Conflict):
            default_store().remove("busybox")
        new = snapshot.commit(cdir, "committed:1", changes=['CMD ["cat", "/hello"]'])
        assert len(new.layers) == 2 and new.config["config"]["Cmd"] == ["cat", "/hello"]
        # the committed image, as a fresh snapshot, has the change and the deletion
        cdir2 = tmp_path / "ctr2-hull"
        r2 = snapshot.prepare(new, cdir2)
        try:
            assert (r2 / "hello").read_text() == "hi" and not os.path.lexists(r2 / "bin/ls")
        finally:
            snapshot.remove(cdir2)
    finally:
        snapshot.remove(cdir)
    assert not snapshot.is_mounted(rootfs) and not rootfs.exists()
    assert default_store().users() == []
    default_store().remove("busybox")  # free now


def test_vfs_snapshot_applies_whiteouts(image, tmp_path):
    cdir = tmp_path / "ctr-hull"
    r = snapshot.prepare(image, cdir)
    (r / "x").write_text("1")
    os.unlink(r / "bin/cat")
    new = snapshot.commit(cdir, "c:1")
    snapshot.remove(cdir)
    vdir = tmp_path / "vfs-hull"
    r = snapshot.prepare(new, vdir, driver="vfs")
    try:
        assert not snapshot.is_mounted(r)
        assert (r / "x").read_text() == "1" and not os.path.lexists(r / "bin/cat")
        assert os.path.islink(r / "bin/sh")
        assert oct((r / "tmp").stat().st_mode & 0o7777) == "0o1777"
        with pytest.raises(Exception) as e:
            snapshot.diff(vdir)
        assert "vfs" in str(e.value)
    finally:
        snapshot.remove(vdir)


def test_gc_keeps_layers_of_snapshots(image, tmp_path):
    cdir = tmp_path / "ctr-hull"
    snapshot.prepare(image, cdir)
    try:
        st = default_store()
        st.remove("busybox", force=True)
        layer = st.layers_dir / image.chain_ids[0][7:]
        assert layer.exists()
    finally:
        snapshot.remove(cdir)
    default_store().gc()
    assert not layer.exists()
