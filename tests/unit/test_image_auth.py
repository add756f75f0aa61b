import base64
import json
import os
import stat

import pytest

from hull.errors import NotFound
from hull.image import auth
from hull.image.registry import parse_challenge, select_platform, is_insecure_host


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("HULL_AUTH_FILE", str(tmp_path / "hull" / "config.json"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return tmp_path / "hull" / "config.json"


def test_store_get_remove_0600(cfg):
    assert auth.get("localhost:5000") is None
    auth.store("localhost:5000", "alice", "p:w")
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    data = json.loads(cfg.read_text())
    assert base64.b64decode(data["auths"]["localhost:5000"]["auth"]) == b"alice:p:w"
    assert auth.get("localhost:5000") == ("alice", "p:w")
    assert auth.remove("localhost:5000") is True
    assert auth.get("localhost:5000") is None
    assert auth.remove("localhost:5000") is False


def test_docker_hub_key_and_docker_fallback(cfg, tmp_path):
    auth.store("docker.io", "bob", "x")
    assert "https://index.docker.io/v1/" in json.loads(cfg.read_text())["auths"]
    assert auth.get("registry-1.docker.io") == ("bob", "x")
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(json.dumps(
        {"auths": {"https://quay.io": {"auth": base64.b64encode(b"q:y").decode()}}}))
    assert auth.get("quay.io") == ("q", "y")


def test_parse_challenge():
    s, p = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                           'scope="repository:library/busybox:pull"')
    assert s == "bearer"
    assert p == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                 "scope": "repository:library/busybox:pull"}
    assert parse_challenge('Basic realm="hull-test"') == ("basic", {"realm": "hull-test"})
    assert parse_challenge(None) == (None, {})


def test_select_platform():
    ms = [{"digest": "a", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
          {"digest": "b", "platform": {"os": "linux", "architecture": "amd64"}},
          {"digest": "c", "platform": {"os": "unknown", "architecture": "unknown"}},
          {"digest": "d", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}]
    assert select_platform(ms, "linux/amd64")["digest"] == "b"
    assert select_platform(ms, "linux/arm64")["digest"] == "a"
    assert select_platform(ms, "linux/arm64/v8")["digest"] == "a"
    assert select_platform(ms, "linux/arm/v7")["digest"] == "d"
    with pytest.raises(NotFound) as e:
        select_platform(ms, "linux/s390x")
    assert "linux/amd64" in str(e.value) and "unknown" not in str(e.value)


def test_insecure_hosts(monkeypatch):
    assert is_insecure_host("127.0.0.1:5000") and is_insecure_host("localhost")
    assert not is_insecure_host("quay.io")
    monkeypatch.setenv("HULL_INSECURE_REGISTRIES", "reg.lan:5000")
    assert is_insecure_host("reg.lan:5000")
