"""insecure-registries from $HULL_ROOT/config.json, /etc/hull/config.json ($HULL_CONFIG_FILE),
and $HULL_INSECURE_REGISTRIES: hosts, host:port, CIDRs, schemes, clear errors."""

import json

import pytest

from hull.errors import HullError
from hull.image import settings
from hull.image.registry import is_insecure_host


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("HULL_ROOT", str(tmp_path))
    monkeypatch.delenv("HULL_CONFIG_FILE", raising=False)
    monkeypatch.delenv("HULL_INSECURE_REGISTRIES", raising=False)
    monkeypatch.setattr(settings, "SYSTEM_FILE", str(tmp_path / "etc-hull-config.json"))
    return tmp_path


def write(path, doc):
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))


def test_no_files_only_loopback(root):
    assert settings.insecure_registries() == []
    assert is_insecure_host("127.0.0.1:5000") and is_insecure_host("localhost:1") and is_insecure_host("[::1]:5000")
    assert not is_insecure_host("reg.lan:5000") and not is_insecure_host("quay.io")


def test_root_config_hosts_ports_cidrs(root):
    write(root / "config.json", {"insecure-registries": ["reg.lan:5000", "HTTP://Other.Lan/", "10.0.0.0/8",
                                                         "fd00::/8"],
                                 "some-other-setting": True})
    assert settings.insecure_registries() == ["reg.lan:5000", "other.lan", "10.0.0.0/8", "fd00::/8"]
    assert is_insecure_host("reg.lan:5000") and not is_insecure_host("reg.lan:5001") and not is_insecure_host("reg.lan")
    assert is_insecure_host("other.lan") and is_insecure_host("other.lan:443")  # no port: any port
    assert is_insecure_host("10.1.2.3:5000") and not is_insecure_host("11.1.2.3:5000")
    assert is_insecure_host("[fd00::2]:5000") and not is_insecure_host("[fe80::1]:5000")
    assert not is_insecure_host("10.example.com")


def test_system_file_and_env_add_up(root, monkeypatch):
    write(root / "etc-hull-config.json", {"insecure-registries": ["sys.lan"]})
    write(root / "config.json", {"insecure-registries": ["root.lan"]})
    monkeypatch.setenv("HULL_INSECURE_REGISTRIES", "env.lan:1, ")
    assert settings.insecure_registries() == ["sys.lan", "root.lan", "env.lan:1"]
    assert all(is_insecure_host(h) for h in ("sys.lan", "root.lan", "env.lan:1"))
    # HULL_CONFIG_FILE replaces both files
    write(root / "only.json", {"insecure-registries": ["only.lan"]})
    monkeypatch.setenv("HULL_CONFIG_FILE", str(root / "only.json"))
    assert settings.insecure_registries() == ["only.lan", "env.lan:1"]
    assert not is_insecure_host("sys.lan")


@pytest.mark.parametrize("doc,text", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ({"insecure-registries": "reg.lan"}, "must be a list"),
    ({"insecure-registries": [5]}, "non-empty strings"),
    ({"insecure-registries": [""]}, "non-empty strings"),
])
def test_bad_config_is_a_clear_error(root, doc, text):
    write(root / "config.json", doc)
    with pytest.raises(HullError) as e:
        is_insecure_host("reg.lan")
    assert text in str(e.value) and str(root / "config.json") in str(e.value)


def test_empty_file_is_no_settings(root):
    write(root / "config.json", "")
    assert settings.insecure_registries() == []
