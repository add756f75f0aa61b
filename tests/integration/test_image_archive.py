"""save/load/import against podman and skopeo."""

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from image_helpers import hull, hull_root, skopeo  # noqa: F401
from hull.image import archive, bootstrap
from hull.image.store import Store, default_store

PODMAN = shutil.which("podman")


@pytest.fixture
def podman(tmp_path):
    if not PODMAN:
        pytest.skip("podman is not installed (apt-get install podman)")
    import tempfile
    root = tmp_path / "podman-root"
    run = tempfile.mkdtemp(prefix="pm-", dir="/tmp")  # podman wants a runroot under 50 chars

    def run_(*args, check=True):
        p = subprocess.run([PODMAN, "--root", str(root), "--runroot", str(run), "--storage-driver", "vfs",
                            *map(str, args)], capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"podman {args} failed:\n{p.stderr}")
        return p
    yield run_
    run_("rmi", "-a", "-f", check=False)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)


def test_save_docker_archive_podman_load_and_back(hull_root, tmp_path, podman):
    img = bootstrap.busybox(default_store())
    out = tmp_path / "bb.tar"
    hull("save", "-o", out, "busybox")
    with tarfile.open(out) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["docker.io/library/busybox:latest"]
    p = podman("load", "-i", out)
    assert "docker.io/library/busybox:latest" in p.stdout
    inspected = json.loads(podman("image", "inspect", "docker.io/library/busybox:latest").stdout)[0]
    assert inspected["Id"] == img.id[7:]
    # podman save -> hull load
    back = tmp_path / "from-podman.tar"
    podman("save", "-o", back, "docker.io/library/busybox:latest")
    other = tmp_path / "other"
    p = hull("load", "-i", back, env={"HULL_ROOT": str(other)})
    assert "Loaded image: busybox:latest" in p.stdout
    loaded = Store(other).resolve("busybox")
    assert loaded.id == img.id and loaded.diff_ids == img.diff_ids


def test_oci_archive_roundtrip_podman_and_skopeo(hull_root, tmp_path, podman):
    img = bootstrap.busybox(default_store())
    out = tmp_path / "bb-oci.tar"
    hull("save", "--format", "oci-archive", "-o", out, "busybox")
    info = json.loads(skopeo("inspect", f"oci-archive:{out}:docker.io/library/busybox:latest"))
    assert info["Digest"] == img.digest
    p = podman("load", "-i", out)
    assert "busybox" in p.stdout
    other = tmp_path / "other"
    hull("load", "-i", out, env={"HULL_ROOT": str(other)})
    assert Store(other).resolve("busybox").digest == img.digest


def test_docker_archive_roundtrip_same_digest(hull_root, tmp_path):
    st = default_store()
    img = bootstrap.busybox(st)
    st.tag("busybox", "localhost:5000/x/y:2")
    buf = io.BytesIO()
    archive.save(st, ["busybox", "localhost:5000/x/y:2"], buf)
    dst = Store(tmp_path / "o")
    buf.seek(0)
    imgs = archive.load(dst, buf)
    assert [i.digest for i in imgs] == [img.digest, img.digest]
    assert sorted(dst.resolve("busybox").names) == ["docker.io/library/busybox:latest", "localhost:5000/x/y:2"]
    # gzip-compressed archive and stdin work too
    buf.seek(0)
    gz = tmp_path / "a.tar.gz"
    gz.write_bytes(gzip.compress(buf.getvalue()))
    imgs = archive.load(Store(tmp_path / "o3"), str(gz))
    assert imgs[0].digest == img.digest


def test_load_stdin_cli(hull_root, tmp_path):
    bootstrap.busybox(default_store())
    out = tmp_path / "bb.tar"
    hull("save", "-o", out, "busybox")
    from image_helpers import HULL
    with open(out, "rb") as f:
        p = subprocess.run([HULL, "load"], stdin=f, capture_output=True, text=True,
                           env=dict(os.environ, HULL_ROOT=str(tmp_path / "o")))
    assert p.returncode == 0 and "Loaded image: busybox:latest" in p.stdout


def test_load_rejects_bad_layer(hull_root, tmp_path):
    st = default_store()
    bootstrap.busybox(st)
    good = tmp_path / "bb.tar"
    archive.save(st, ["busybox"], str(good))
    bad = tmp_path / "bad.tar"
    with tarfile.open(good) as src, tarfile.open(bad, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("layer.tar"):
                data = data[:-2048] + b"\x01" * 2048
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    p = hull("load", "-i", bad, env={"HULL_ROOT": str(tmp_path / "o")}, check=False)
    assert p.returncode == 125 and "hashes to" in p.stderr
    assert Store(tmp_path / "o").images() == []


def test_import_rootfs(hull_root, tmp_path, busybox_rootfs):
    tarball = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(busybox_rootfs, arcname=".")
    p = hull("import", "-c", "CMD [\"sh\"]", "-c", "ENV A=b", "-m", "hi", tarball, "imported:1")
    img = default_store().resolve("imported:1")
    assert p.stdout.strip() == img.id
    assert img.config["config"]["Cmd"] == ["sh"] and "A=b" in img.config["config"]["Env"]
    assert img.layers[0]["mediaType"].endswith("tar+gzip")
    p = hull("import", tmp_path / "nope.tar", check=False)
    assert p.returncode == 125
    (tmp_path / "not.tar").write_text("hello" * 200)
    p = hull("import", tmp_path / "not.tar", check=False)
    assert p.returncode == 125 and "not a tar" in p.stderr
