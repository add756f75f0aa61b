"""Stage 1 makes the namespaces of a spec it has not seen checked only when that needs
nothing from the parent: no user or time namespace, nothing to join, a spec-shaped object."""

from hull.kernel import namespaces
from hull.runtime.init import _early_namespace_flags, _namespace_plan


def spec(*nss):
    return {"linux": {"namespaces": [dict(ns) for ns in nss]}}


def test_new_namespaces_give_their_flags_and_cgroup_is_left_to_the_init():
    s = spec({"type": "pid"}, {"type": "network"}, {"type": "mount"}, {"type": "cgroup"})
    assert _early_namespace_flags(s) == (namespaces.CLONE_NEWPID | namespaces.CLONE_NEWNET
                                         | namespaces.CLONE_NEWNS)


def test_no_namespaces_at_all_is_still_early():
    assert _early_namespace_flags(spec()) == 0


def test_what_needs_the_parent_first_waits():
    assert _early_namespace_flags(spec({"type": "pid"}, {"type": "user"})) is None
    assert _early_namespace_flags(spec({"type": "time"})) is None
    assert _early_namespace_flags(spec({"type": "network", "path": "/proc/1/ns/net"})) is None


def test_not_a_spec_waits_for_the_checked_one():
    for bad in (None, [], {"linux": {}}, {"linux": {"namespaces": [{"type": "bogus"}]}},
                {"linux": {"namespaces": ["pid"]}}, {"linux": {"namespaces": [{}]}}):
        assert _early_namespace_flags(bad) is None, bad


def test_the_plan_compares_types_and_paths_in_any_order():
    a = spec({"type": "pid"}, {"type": "ipc", "path": ""})
    b = spec({"type": "ipc"}, {"type": "pid"})
    assert _namespace_plan(a) == _namespace_plan(b)
    assert _namespace_plan(a) != _namespace_plan(spec({"type": "pid"}))
