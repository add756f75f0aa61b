"""process.capabilities validation and masks (no root needed)."""

import pytest

from hull.errors import SpecError
from hull.kernel import capabilities as caps

FULL = (1 << 41) - 1
HOST = FULL & ~(1 << caps.NUMBERS["CAP_SYS_RESOURCE"])  # this machine's bounding set


def sets(names, **over):
    d = {s: list(names) for s in ("bounding", "effective", "permitted")}
    d.update(over)
    return d


def test_docker_default_mask():
    assert caps.to_mask(caps.DOCKER_DEFAULT) == 0xA80425FB
    assert sorted(caps.from_mask(0xA80425FB)) == sorted(caps.DOCKER_DEFAULT)


def test_names_cover_0_to_40():
    assert caps.NAMES[0] == "CAP_CHOWN" and caps.NAMES[40] == "CAP_CHECKPOINT_RESTORE"
    assert caps.NUMBERS["CAP_SYS_ADMIN"] == 21 and caps.NUMBERS["CAP_BPF"] == 39
    assert "CAP_SYS_ADMIN" in caps.all_names()


def test_validate_returns_masks():
    m = caps.validate(sets(["CAP_CHOWN", "CAP_KILL"], ambient=[]), host_mask=HOST)
    assert m["bounding"] == m["effective"] == m["permitted"] == 1 | 1 << 5
    assert m["inheritable"] == m["ambient"] == 0


def test_unknown_capability_names_json_path():
    with pytest.raises(SpecError) as e:
        caps.validate({"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_FOO"]}, host_mask=HOST)
    assert e.value.path == "process.capabilities.bounding[3]"
    assert 'unknown capability "CAP_FOO"' in str(e.value)


def test_lowercase_name_gets_a_hint():
    with pytest.raises(SpecError, match='did you mean "CAP_CHOWN"'):
        caps.validate({"effective": ["chown"]}, host_mask=HOST)


def test_capability_missing_from_host_bounding_set_is_named():
    with pytest.raises(SpecError) as e:
        caps.validate(sets(["CAP_CHOWN", "CAP_SYS_RESOURCE"]), host_mask=HOST)
    assert e.value.path == "process.capabilities.bounding[1]"
    assert "CAP_SYS_RESOURCE is not in this host's capability bounding set" in str(e.value)


def test_effective_must_be_permitted():
    with pytest.raises(SpecError, match="CAP_KILL is not in permitted"):
        caps.validate({"effective": ["CAP_KILL"], "permitted": []}, host_mask=HOST)


def test_inheritable_must_be_in_bounding():
    with pytest.raises(SpecError, match="CAP_KILL is not in bounding"):
        caps.validate({"bounding": [], "inheritable": ["CAP_KILL"]}, host_mask=HOST)


def test_ambient_without_inheritable_is_accepted_like_runc():
    # `runc spec` writes ambient without inheritable; runc only warns.
    caps.validate(sets(["CAP_KILL"], ambient=["CAP_KILL"]), host_mask=HOST)


@pytest.mark.parametrize("bad, path", [
    ("CAP_CHOWN", "process.capabilities"),
    ({"bounding": "CAP_CHOWN"}, "process.capabilities.bounding"),
    ({"bounding": [3]}, "process.capabilities.bounding[0]"),
    ({"boundng": []}, "process.capabilities.boundng"),
])
def test_malformed(bad, path):
    with pytest.raises(SpecError) as e:
        caps.validate(bad, host_mask=HOST)
    assert e.value.path == path


def test_none_means_no_capabilities():
    assert caps.validate(None, host_mask=HOST) == {s: 0 for s in caps.SETS}


def test_clamp_to_host_drops_what_the_host_lacks():
    allcaps = sets(caps.all_names())
    clamped, dropped = caps.clamp_to_host(allcaps, host_mask=HOST)
    assert dropped == ["CAP_SYS_RESOURCE"]
    assert "CAP_SYS_RESOURCE" not in clamped["bounding"]
    caps.validate(clamped, host_mask=HOST)


def test_read_status_parses_self():
    st = caps.read_status()
    assert set(st) == set(caps.SETS)
