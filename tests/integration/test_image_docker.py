"""Docker interop for archives: `hull save` → `docker load` (same image id, layers, tags; the
image runs under docker) and `docker save` → `hull load` (docker's own images: same ids and
diff ids, contents intact), against a private dockerd (own data-root, exec-root and socket, no
bridge/iptables, cgroups under /hull-test-docker-*), as tests/integration/test_clients_docker.py."""

import gzip
import io
import json
import os
import tarfile

import pytest
from client_helpers import (CgroupParent, need, private_dockerd, release_private_dir, run,
                            short_tmpdir)
from image_helpers import hull

pytestmark = pytest.mark.root


class Docker:
    def __init__(self, exe, tmp):
        self.tmp = tmp
        self.base = [exe, "-H", f"unix://{tmp}/docker.sock"]
        self.env = dict(os.environ, DOCKER_CONFIG=str(tmp / "client"))

    def __call__(self, *args, check=True, **kw):
        return run([*self.base, *args], check=check, env=self.env, **kw)

    def inspect(self, ref):
        return json.loads(self("image", "inspect", ref).stdout)[0]


@pytest.fixture(scope="module")
def docker():
    if os.geteuid() != 0:
        pytest.skip("a private dockerd needs root")
    dockerd, = need("dockerd")
    exe = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else need("docker")[0]
    tmp = short_tmpdir("hull-dimg-")
    cgroup = CgroupParent("docker")
    had_run_containerd = os.path.exists("/run/containerd")
    d = Docker(exe, tmp)
    daemon = None
    try:
        daemon = private_dockerd(dockerd, tmp, cgroup, [*d.base, "version"], d.env)
        yield d
    finally:
        if daemon:
            d("rm", "--force", *d("ps", "-aq", check=False).stdout.split(), check=False)
            daemon.stop()
        mounts, still = release_private_dir(tmp, cgroup, had_run_containerd)
        assert not mounts, f"mounts left: {mounts}"
        assert not still, f"could not remove {still}"


@pytest.fixture
def env(tmp_path):
    return {"HULL_ROOT": str(tmp_path / "hullroot"), "HULL_AUTH_FILE": str(tmp_path / "auth.json"),
            "HULL_ZYGOTE": "0"}


def _two_layer_image(env, tmp_path, name):
    """busybox plus an imported layer: a two-layer image with config changes."""
    from hull.image import archive
    from hull.image.store import Store
    hull("image", "bootstrap", "-q", "busybox", env=env)
    st = Store(env["HULL_ROOT"])
    extra = tmp_path / "extra.tar"
    with tarfile.open(extra, "w") as tf:
        data = b"from hull\n"
        ti = tarfile.TarInfo("etc/hull-interop")
        ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
        tf.addfile(ti, io.BytesIO(data))
    # a second layer on top of busybox, as `hull commit` would make it
    from hull.image import layers
    base = st.resolve("busybox")
    with st.lease():
        desc, diff_id = layers.write_layer(st, lambda out: out.write(extra.read_bytes()))
        cfg = json.loads(json.dumps(base.config))
        cfg["rootfs"]["diff_ids"] = base.diff_ids + [diff_id]
        archive._apply_changes(cfg["config"], ['CMD ["cat", "/etc/hull-interop"]', "ENV HULL=1"])
        cfg["history"] = list(cfg.get("history", [])) + [{"created_by": "test layer"}]
        img = st.write_image(cfg, base.layers + [desc], name)
    return img


def test_hull_save_docker_load_and_run(docker, env, tmp_path):
    img = _two_layer_image(env, tmp_path, "localhost/hull-interop:v1")
    out = tmp_path / "save.tar"
    hull("save", "-o", out, "localhost/hull-interop:v1", "busybox", env=env)
    p = docker("load", "-i", out)
    assert "Loaded image: localhost/hull-interop:v1" in p.stdout and "Loaded image: busybox:latest" in p.stdout
    doc = docker.inspect("localhost/hull-interop:v1")
    assert doc["Id"] == img.id  # docker's image id is the config digest: the same bytes
    assert doc["RootFS"]["Layers"] == img.diff_ids
    assert doc["Config"]["Cmd"] == ["cat", "/etc/hull-interop"] and "HULL=1" in doc["Config"]["Env"]
    assert docker.inspect("busybox")["Id"] == hull("image", "inspect", "-f", "{{.Id}}", "busybox",
                                                   env=env).stdout.strip()
    r = docker("run", "--rm", "--runtime", "hull", "--network", "none", "localhost/hull-interop:v1")
    assert r.stdout == "from hull\n"
    # an oci-archive is not what docker 20.10 loads; the docker-archive through stdin, gzipped, is
    gz = tmp_path / "save.tar.gz"
    gz.write_bytes(gzip.compress(out.read_bytes()))
    docker("rmi", "localhost/hull-interop:v1")
    with open(gz, "rb") as f:
        assert "localhost/hull-interop:v1" in docker("load", stdin=f).stdout
    docker("rmi", "localhost/hull-interop:v1", "busybox")


def test_docker_save_hull_load(docker, env, tmp_path):
    # an image docker made itself (docker import + docker tag), and one loaded from hull
    hull("image", "bootstrap", "-q", "busybox", env=env)
    hull("save", "-o", tmp_path / "bb.tar", "busybox", env=env)
    docker("load", "-i", tmp_path / "bb.tar")
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tf:
        for name, data in (("hello.txt", b"made by docker\n"), ("dir/nested", b"x")):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o640
            tf.addfile(ti, io.BytesIO(data))
    docker("import", "-c", 'CMD ["/hello.txt"]', "-c", "ENV FROM=docker", rootfs, "dockermade/imp:1")
    docker("tag", "dockermade/imp:1", "dockermade/imp:other")
    archive = tmp_path / "docker-save.tar"
    docker("save", "-o", archive, "dockermade/imp:1", "dockermade/imp:other", "busybox:latest")
    other = {**env, "HULL_ROOT": str(tmp_path / "other")}
    p = hull("load", "-i", archive, env=other)
    assert {"Loaded image: dockermade/imp:1", "Loaded image: dockermade/imp:other",
            "Loaded image: busybox:latest"} <= set(p.stdout.splitlines())
    from hull.image import layers
    from hull.image.store import Store
    st = Store(other["HULL_ROOT"])
    want = docker.inspect("dockermade/imp:1")
    got = st.resolve("dockermade/imp:1")
    assert got.id == want["Id"] and got.diff_ids == want["RootFS"]["Layers"]
    assert got.config["config"]["Cmd"] == ["/hello.txt"] and "FROM=docker" in got.config["config"]["Env"]
    assert st.resolve("dockermade/imp:other").id == got.id
    assert st.resolve("busybox").id == docker.inspect("busybox")["Id"]
    top = layers.ensure_unpacked(st, got)[-1]
    assert (top / "hello.txt").read_bytes() == b"made by docker\n"
    assert (top / "dir/nested").stat().st_mode & 0o777 == 0o640
    # and hull's view of it is what docker saved: hull save -> docker load gives the same id
    hull("save", "-o", tmp_path / "again.tar", "dockermade/imp:1", env=other)
    docker("rmi", "dockermade/imp:1", "dockermade/imp:other")
    docker("load", "-i", tmp_path / "again.tar")
    assert docker.inspect("dockermade/imp:1")["Id"] == want["Id"]
    docker("rmi", "dockermade/imp:1", "busybox")
    hull("rmi", "dockermade/imp:1", "dockermade/imp:other", env=other)
