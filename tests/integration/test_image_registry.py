"""Pull and push against a real docker-registry on 127.0.0.1, with skopeo for interop."""

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from image_helpers import (FlakyProxy, auth_registry, flaky_proxy, hull, hull_root, registry,  # noqa: F401
                           skopeo)
from hull.image import bootstrap, registry as reg
from hull.image.registry import AuthError, RegistryError
from hull.image.store import DigestMismatch, Store, default_store, sha256_digest


def blobs_of(store):
    return sorted(p.name for p in store.blobs.iterdir())


def test_push_then_pull_same_digest(registry, hull_root, tmp_path):
    src = default_store()
    img = bootstrap.busybox(src)
    ref = f"{registry.host}/hull/busybox:1"
    assert reg.push("busybox", ref, src) == img.digest
    dst = Store(tmp_path / "other")
    pulled = reg.pull(ref, dst)
    assert pulled.digest == img.digest and pulled.id == img.id
    assert pulled.names == [ref]
    assert blobs_of(dst) == sorted(d[7:] for d in [img.digest, img.id] + [l["digest"] for l in img.layers])
    assert list(dst.ingest_dir.iterdir()) == []
    # by digest, too
    again = reg.pull(f"{registry.host}/hull/busybox@{img.digest}", dst)
    assert again.digest == img.digest


def test_cli_push_pull_quiet(registry, hull_root):
    hull("image", "bootstrap", "busybox", "-q")
    ref = f"{registry.host}/cli/busybox:latest"
    hull("tag", "busybox", ref)
    out = hull("push", "-q", ref).stdout.strip()
    hull("rmi", ref, "busybox")
    assert hull("images", "-q").stdout.strip() == ""
    p = hull("pull", "-q", ref)
    assert p.stdout.strip() == ref and p.stderr == ""
    assert json.loads(hull("image", "inspect", ref).stdout)[0]["Digest"] == out
    p = hull("pull", ref)
    assert "Already exists" in p.stdout or "Already exists" in p.stderr


def test_pull_missing_image_clear_error(registry, hull_root):
    p = hull("pull", f"{registry.host}/nope/nothing:1", check=False)
    assert p.returncode == 125
    assert "not found" in p.stderr.lower() and "Traceback" not in p.stderr


def test_unreachable_registry(hull_root):
    from image_helpers import free_port
    p = hull("pull", f"127.0.0.1:{free_port()}/x:1", check=False)
    assert p.returncode == 125 and "cannot reach registry" in p.stderr


def test_chunked_upload_and_cross_repo_mount(registry, hull_root, tmp_path):
    st = default_store()
    img = bootstrap.busybox(st)
    events = []

    class Rec(reg.Reporter):
        def done(self, key, status):
            events.append(status)
    reg.push("busybox", f"{registry.host}/a/bb:1", st, reporter=Rec(), chunk_size=64 * 1024)
    assert "Pushed" in events
    st.tag("busybox", f"{registry.host}/a/bb:1")
    events.clear()
    reg.push("busybox", f"{registry.host}/b/bb:1", st, reporter=Rec())
    assert events == ["Mounted from a/bb"]
    events.clear()
    reg.push("busybox", f"{registry.host}/b/bb:2", st, reporter=Rec())
    assert events == ["Layer already exists"]
    assert reg.pull(f"{registry.host}/b/bb:1", Store(tmp_path / "o")).digest == img.digest


def test_multi_arch_index_selects_platform(registry, hull_root, tmp_path):
    st = default_store()
    amd = bootstrap.busybox(st)
    # a second, different "arm64" image: same layer, another config
    cfg = dict(amd.config, architecture="arm64", variant="v8")
    arm = st.write_image(cfg, amd.layers, "fake-arm:1")
    repo = f"{registry.host}/multi/busybox"
    reg.push("busybox", f"{repo}:amd64", st)
    reg.push("fake-arm:1", f"{repo}:arm64", st)
    descs = [{"mediaType": amd.media_type, "digest": arm.digest, "size": st.blob_size(arm.digest),
              "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
             {"mediaType": amd.media_type, "digest": amd.digest, "size": st.blob_size(amd.digest),
              "platform": {"os": "linux", "architecture": "amd64"}}]
    index_digest = reg.put_index(f"{repo}:latest", descs)
    dst = Store(tmp_path / "o")
    got = reg.pull(f"{repo}:latest", dst)
    assert got.digest == amd.digest and got.config["architecture"] == "amd64"
    got = reg.pull(f"{repo}:latest", dst, platform="linux/arm64")
    assert got.digest == arm.digest
    assert dst.resolve(f"{repo}:latest").digest == arm.digest
    with pytest.raises(Exception) as e:
        reg.pull(f"{repo}:latest", dst, platform="linux/s390x")
    assert "linux/amd64" in str(e.value)
    # Docker manifest list media type too
    reg.put_index(f"{repo}:list", [dict(d, mediaType="application/vnd.docker.distribution.manifest.v2+json")
                                   for d in descs], docker=True)
    assert index_digest
    p = hull("pull", "--platform", "linux/amd64", f"{repo}:list", env={"HULL_ROOT": str(tmp_path / "cli")})
    assert p.returncode == 0


def test_skopeo_interop_both_ways(registry, hull_root, tmp_path):
    st = default_store()
    img = bootstrap.busybox(st)
    # hull pushes -> skopeo pulls
    reg.push("busybox", f"{registry.host}/interop/a:1", st)
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/interop/a:1", f"oci:{tmp_path}/sk:a")
    idx = json.loads((tmp_path / "sk/index.json").read_text())
    assert idx["manifests"][0]["digest"] == img.digest
    # skopeo reads hull's store directly (it is an OCI layout)
    out = json.loads(skopeo("inspect", f"oci:{st.layout}:docker.io/library/busybox:latest"))
    assert out["Digest"] == img.digest
    # skopeo pushes (converting to Docker v2s2) -> hull pulls
    skopeo("copy", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{st.layout}:docker.io/library/busybox:latest",
           f"docker://{registry.host}/interop/b:v2s2")
    got = reg.pull(f"{registry.host}/interop/b:v2s2", Store(tmp_path / "o"))
    assert got.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert got.diff_ids == img.diff_ids
    # and hull pushes the Docker-typed image on, unchanged
    d = reg.push(f"{registry.host}/interop/b:v2s2", f"{registry.host}/interop/c:1", got.store)
    assert d == got.digest
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/interop/c:1")
    assert sha256_digest(raw.encode()) == got.digest


def test_digest_mismatch_rejected_not_stored(registry, hull_root):
    st = default_store()
    img = bootstrap.busybox(st)
    reg.push("busybox", f"{registry.host}/bad/bb:1", st)
    proxy = FlakyProxy(registry.port, mode="corrupt")
    try:
        dst = Store(st.root.parent / "dst")
        with pytest.raises(DigestMismatch) as e:
            reg.pull(f"{proxy.host}/bad/bb:1", dst, retries=0)
        assert "not stored" in str(e.value) or "hashes to" in str(e.value)
        assert not any(dst.has_blob(l["digest"]) for l in img.layers)
        assert not dst.has_blob(img.id)
        assert dst.images() == []
        assert list(dst.ingest_dir.glob("*.partial")) == []
    finally:
        proxy.stop()


def test_interrupted_pull_no_half_blob_then_resume(registry, hull_root, tmp_path):
    st = default_store()
    img = bootstrap.busybox(st)
    reg.push("busybox", f"{registry.host}/cut/bb:1", st)
    proxy = FlakyProxy(registry.port, mode="cut")
    try:
        dst = Store(tmp_path / "dst")
        with pytest.raises(RegistryError):
            reg.pull(f"{proxy.host}/cut/bb:1", dst, retries=0)
        layer = img.layers[0]["digest"]
        assert not dst.has_blob(layer)
        assert dst.images() == []
        partial = dst.ingest_dir / (layer[7:] + ".partial")
        assert partial.exists() and 0 < partial.stat().st_size < img.layers[0]["size"]
        # retry through a healthy connection: resumes with a Range request and succeeds
        proxy.mode = "ok"
        proxy.blob_requests.clear()
        got = reg.pull(f"{proxy.host}/cut/bb:1", dst)
        assert got.digest == img.digest
        size_before = img.layers[0]["size"] // 2
        ranges = [r for p, r in proxy.blob_requests if layer in p]
        assert ranges == [f"bytes={size_before}-"]
        assert not partial.exists()
        assert dst.read_blob(layer) == st.read_blob(layer)
    finally:
        proxy.stop()


def test_interrupted_pull_retries_and_resumes_in_process(registry, hull_root, tmp_path):
    st = default_store()
    img = bootstrap.busybox(st)
    reg.push("busybox", f"{registry.host}/cut2/bb:1", st)
    proxy = FlakyProxy(registry.port, mode="cut_once")
    try:
        dst = Store(tmp_path / "dst")
        got = reg.pull(f"{proxy.host}/cut2/bb:1", dst, retries=2, workers=1)
        assert got.digest == img.digest
        ranges = [r for _, r in proxy.blob_requests if r]
        assert len(ranges) == 1 and ranges[0].startswith("bytes=")
        assert list(dst.ingest_dir.iterdir()) == []
    finally:
        proxy.stop()


def test_eight_concurrent_pulls_one_copy(registry, hull_root, tmp_path):
    st = default_store()
    img = bootstrap.busybox(st)
    reg.push("busybox", f"{registry.host}/conc/bb:1", st)
    proxy = FlakyProxy(registry.port)
    try:
        root = tmp_path / "shared"
        env = {"HULL_ROOT": str(root)}
        with ThreadPoolExecutor(8) as pool:
            procs = list(pool.map(lambda _: hull("pull", "-q", f"{proxy.host}/conc/bb:1", env=env, check=False),
                                  range(8)))
        for p in procs:
            assert p.returncode == 0, p.stderr
        shared = Store(root)
        want = sorted(d[7:] for d in [img.digest, img.id] + [l["digest"] for l in img.layers])
        assert blobs_of(shared) == want
        assert list(shared.ingest_dir.iterdir()) == []
        # every blob crossed the wire once: the others waited on the blob lock and found it
        fetched = sorted(p.rsplit("/", 1)[1] for p, _ in proxy.blob_requests)
        assert fetched == sorted([img.id] + [l["digest"] for l in img.layers])
        assert [i.digest for i in shared.images()] == [img.digest]
    finally:
        proxy.stop()


def test_basic_auth_login_push_pull_logout(auth_registry, hull_root, tmp_path):
    host = auth_registry.host
    hull("image", "bootstrap", "busybox", "-q")
    ref = f"{host}/private/bb:1"
    hull("tag", "busybox", ref)
    p = hull("push", ref, check=False)
    assert p.returncode == 125 and "hull login" in p.stderr
    p = hull("login", "-u", "alice", "--password-stdin", host, input="wrong\n", check=False)
    assert p.returncode == 125 and "login" in p.stderr.lower()
    p = hull("login", "-u", "alice", "--password-stdin", host, input="s3cret-pw\n")
    assert "Login Succeeded" in p.stdout
    auth_file = tmp_path / "auth.json"
    assert oct(os.stat(auth_file).st_mode & 0o777) == "0o600"
    hull("push", ref)
    hull("rmi", ref)
    hull("pull", ref)
    # skopeo with the same credentials sees it
    skopeo("inspect", "--tls-verify=false", "--creds", "alice:s3cret-pw", f"docker://{ref}")
    assert "Removing login credentials" in hull("logout", host).stdout
    p = hull("pull", ref, check=False)
    assert p.returncode == 125 and "unauthorized" in p.stderr.lower()
    with pytest.raises(AuthError):
        reg.pull(ref, default_store(), credentials=("alice", "nope"))
