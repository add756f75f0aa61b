"""org.hull.landlock rules: validation and the ABI plan (no kernel needed)."""

import pytest

from hull.errors import HullError, SpecError
from hull.kernel import landlock

P = 'annotations["org.hull.landlock"]'


@pytest.mark.parametrize("rules, path, text", [
    ([], P, "must be a JSON object"),
    ({"raed": ["/"]}, f"{P}.raed", "unknown key"),
    ({"read": "/usr"}, f"{P}.read", "list of absolute paths"),
    ({"write": ["/tmp", "relative"]}, f"{P}.write[1]", "absolute path"),
    ({"bind_tcp": [80, 70000]}, f"{P}.bind_tcp[1]", "0..65535"),
    ({"connect_tcp": ["443"]}, f"{P}.connect_tcp[0]", "port number"),
    ({"scope": ["ptrace"]}, f"{P}.scope[0]", "unknown scope"),
    ({"best_effort": "yes"}, f"{P}.best_effort", "true or false"),
    ({"paths": [{"path": "/x", "access": ["fly"]}]}, f"{P}.paths[0].access[0]", "unknown access right"),
    ({"log": {"same_exec": 1}}, f"{P}.log", "same_exec"),
])
def test_malformed_rules(rules, path, text):
    with pytest.raises(SpecError) as e:
        landlock.validate(rules)
    assert e.value.path == path and text in str(e.value)


def test_parse_bad_json():
    with pytest.raises(SpecError, match="is not valid JSON"):
        landlock.parse("{read: [/]}")


def test_parse_annotation_text():
    assert landlock.parse('{"read": ["/"], "write": ["/tmp"]}') == {"read": ["/"], "write": ["/tmp"]}


def test_plan_fs_handles_every_right_of_the_abi():
    p = landlock.plan({"read": ["/"], "write": ["/tmp"]}, 7)
    assert p["handled_fs"] == (1 << 16) - 1
    assert p["handled_net"] == 0 and p["scoped"] == 0
    assert p["paths"][0] == ("/", ["read_file", "read_dir"])
    assert "write_file" in p["paths"][1][1] and "refer" in p["paths"][1][1]


def test_plan_abi1_leaves_out_newer_fs_rights():
    p = landlock.plan({"write": ["/tmp"]}, 1)
    assert p["handled_fs"] == (1 << 13) - 1
    assert "refer" not in p["paths"][0][1] and "truncate" not in p["paths"][0][1]


def test_plan_net_only_does_not_touch_fs():
    p = landlock.plan({"bind_tcp": [8080]}, 4)
    assert p["handled_fs"] == 0 and p["handled_net"] == 1
    assert p["ports"] == [("bind_tcp", 8080)]


def test_empty_port_list_denies_all():
    p = landlock.plan({"connect_tcp": []}, 4)
    assert p["handled_net"] == 2 and p["ports"] == []


def test_old_abi_is_an_error_by_default():
    with pytest.raises(HullError, match=r"bind_tcp rules needs ABI 4, this kernel has ABI 3"):
        landlock.plan({"read": ["/"], "bind_tcp": [80]}, 3)
    with pytest.raises(HullError, match="no Landlock"):
        landlock.plan({"read": ["/"]}, 0)


def test_best_effort_downgrades_and_reports():
    p = landlock.plan({"read": ["/"], "bind_tcp": [80], "scope": ["signal"], "best_effort": True}, 3)
    assert p["handled_net"] == 0 and p["scoped"] == 0 and p["handled_fs"]
    assert p["dropped"] == ["bind_tcp rules (needs Landlock ABI 4)", "scope 'signal' (needs Landlock ABI 6)"]
    none = landlock.plan({"read": ["/"], "best_effort": True}, 0)
    assert none["handled_fs"] == 0 and none["dropped"]


def test_scope_and_log_flags():
    p = landlock.plan({"scope": ["signal", "abstract_unix_socket"], "log": {"new_exec": True, "subdomains": False}}, 7)
    assert p["scoped"] == 3
    assert p["flags"] == landlock.RESTRICT_LOG_NEW_EXEC_ON | landlock.RESTRICT_LOG_SUBDOMAINS_OFF


def test_explicit_paths():
    p = landlock.plan({"paths": [{"path": "/srv", "access": ["read_file", "execute"]}]}, 5)
    assert p["paths"] == [("/srv", ["read_file", "execute"])]


def test_abi_and_features():
    assert landlock.abi() >= 0
    f = landlock.features()
    assert f["abi"] == landlock.abi() and f["enabled"] == (f["abi"] > 0)
