"""insecure-registries from $HULL_ROOT/config.json: a plain-HTTP docker-registry on a
non-loopback address of this host is refused until the config file lists it (host:port, or a
CIDR), then push and pull work; no --insecure, no environment variable."""

import json
import socket

import pytest

from image_helpers import Registry, hull, hull_root  # noqa: F401

pytestmark = pytest.mark.root


def _local_non_loopback_ipv4():
    """An address of this host that is not loopback (hull treats loopback as insecure anyway)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.123", 9))  # no packet is sent: this only picks the outgoing address
        addr = s.getsockname()[0]
    except OSError:
        addr = None
    finally:
        s.close()
    if not addr or addr.startswith("127."):
        pytest.skip("this host has no non-loopback IPv4 address")
    return addr


@pytest.fixture
def lan_registry(tmp_path_factory):
    r = Registry(tmp_path_factory.mktemp("lanregistry"), addr=_local_non_loopback_ipv4())
    yield r
    r.stop()


def test_insecure_registries_from_config_file(hull_root, lan_registry, monkeypatch):
    monkeypatch.delenv("HULL_INSECURE_REGISTRIES", raising=False)
    monkeypatch.delenv("HULL_CONFIG_FILE", raising=False)
    hull("image", "bootstrap", "-q", "busybox")
    target = f"{lan_registry.host}/hull/insecure:1"
    hull("tag", "busybox", target)
    p = hull("push", target, check=False)
    assert p.returncode == 125 and "insecure-registries" in p.stderr and "Traceback" not in p.stderr
    (hull_root / "config.json").write_text(json.dumps({"insecure-registries": [lan_registry.host]}))
    digest = hull("push", "-q", target).stdout.strip()
    hull("rmi", target)
    hull("pull", "-q", target)
    assert hull("image", "inspect", "-f", "{{.Digest}}", target).stdout.strip() == digest
    # a CIDR covering the address works as well; another port of the same host does not
    net = lan_registry.addr.rsplit(".", 1)[0] + ".0/24"
    (hull_root / "config.json").write_text(json.dumps({"insecure-registries": [net]}))
    hull("rmi", target)
    hull("pull", "-q", target)
    (hull_root / "config.json").write_text(json.dumps({"insecure-registries": [lan_registry.addr + ":1"]}))
    assert hull("pull", "-q", target, check=False).returncode == 125
    (hull_root / "config.json").write_text("{oops")
    p = hull("pull", "-q", target, check=False)
    assert p.returncode == 125 and "invalid JSON" in p.stderr and "config.json" in p.stderr
