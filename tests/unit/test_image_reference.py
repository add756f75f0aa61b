import pytest

from hull.errors import UsageError
from hull.image import reference


@pytest.mark.parametrize("text,full,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t"),
    ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest"),
    ("quay.io/org/app", "quay.io/org/app:latest", "quay.io/org/app:latest"),
    ("[::1]:5000/app:1", "[::1]:5000/app:1", "[::1]:5000/app:1"),
    ("my-registry.example.com:443/a_b/c-d.e__f:T_1.2-3", "my-registry.example.com:443/a_b/c-d.e__f:T_1.2-3", None),
    ("Registry.Example.com/app", "Registry.Example.com/app:latest", None),
])
def test_normalize(text, full, familiar):
    r = reference.parse(text)
    assert str(r) == full
    if familiar:
        assert r.familiar() == familiar


def test_digest_reference():
    d = "sha256:" + "a" * 64
    r = reference.parse(f"busybox@{d}")
    assert r.digest == d and r.tag is None and r.object == d
    assert str(r) == f"docker.io/library/busybox@{d}"
    r = reference.parse(f"localhost:5000/x:1@{d}")
    assert r.tag == "1" and r.digest == d and r.domain == "localhost:5000"


def test_parts():
    r = reference.parse("busybox")
    assert r.registry_host == "registry-1.docker.io"
    assert r.repository == "library/busybox"
    assert r.name == "docker.io/library/busybox"
    assert r.familiar_name() == "busybox"
    r = reference.parse("localhost:5000/a/b")
    assert r.registry_host == "localhost:5000" and r.repository == "a/b"
    assert reference.parse("x", default_tag=False).tag is None


@pytest.mark.parametrize("text,why", [
    ("", "empty"),
    ("Busybox", "lowercase"),
    ("docker.io/Library/x", "lowercase"),
    ("busybox:", "tag"),
    ("busybox:-x", "tag"),
    ("busybox:" + "a" * 129, "tag"),
    ("busybox@sha256:abc", "digest"),
    ("busybox@sha256:" + "A" * 64, "sha256"),
    ("bu sy", "whitespace"),
    ("a//b", "repository path"),
    ("a/b_", "repository path"),
    ("-a", "repository path"),
    ("localhost:5000/", "repository path"),
    ("a" * 64, "64-byte"),
    ("x/" + "a" * 260, "255"),
    (":tag", "no repository"),
])
def test_invalid(text, why):
    with pytest.raises(UsageError) as e:
        reference.parse(text)
    assert why in str(e.value)


def test_with_tag_and_helpers():
    r = reference.parse("quay.io/a/b:1").with_tag("2")
    assert str(r) == "quay.io/a/b:2"
    assert reference.is_short_id("2bc93f0e5ff5")
    assert not reference.is_short_id("busybox")
    assert reference.is_digest("sha256:" + "0" * 64)
