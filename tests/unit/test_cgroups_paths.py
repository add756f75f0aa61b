"""cgroupsPath resolution, mode detection fallbacks, and validation errors (JSON paths)."""

import pytest

from hull import cgroups
from hull.cgroups.fs import parse_mountinfo
from hull.errors import SpecError


@pytest.mark.parametrize("given,cid,out", [
    ("/hull/abc", "x", "/hull/abc"),
    ("/custom//parent/c1/", "x", "/custom/parent/c1"),
    ("", "c1", "/hull/c1"),
    (None, "c1", "/hull/c1"),
    ("mygroup/c1", "x", "/hull/mygroup/c1"),
])
def test_resolve_path(given, cid, out):
    assert cgroups.resolve_path(given, cid) == out


@pytest.mark.parametrize("given", ["/hull/../process_api", "../escape", "/a/./b", "a/../../b", "/hull/.."])
def test_resolve_path_rejects_escapes(given):
    with pytest.raises(SpecError) as e:
        cgroups.resolve_path(given, "x")
    assert e.value.path == "linux.cgroupsPath"


@pytest.mark.parametrize("given", ["/process_api", "/process_api/foo", "/", "//"])
def test_resolve_path_rejects_forbidden(given):
    with pytest.raises(SpecError, match="linux.cgroupsPath"):
        cgroups.resolve_path(given, "x")


@pytest.mark.parametrize("given,cid,out", [
    ("machine.slice:libpod:abc", "x", "/machine.slice/libpod-abc.scope"),
    ("system.slice:hull:c1", "x", "/system.slice/hull-c1.scope"),
    ("user-1000.slice:podman:c", "x", "/user.slice/user-1000.slice/podman-c.scope"),
    ("a-b-c.slice:p:n", "x", "/a.slice/a-b.slice/a-b-c.slice/p-n.scope"),
    ("", "c9", "/system.slice/hull-c9.scope"),
    (":hull:c1", "x", "/system.slice/hull-c1.scope"),
    ("-.slice:p:n", "x", "/p-n.scope"),
    ("machine.slice::n", "x", "/machine.slice/n.scope"),
    ("machine.slice:p:sub.slice", "x", "/machine.slice/sub.slice"),
])
def test_resolve_systemd(given, cid, out):
    assert cgroups.resolve_path(given, cid, systemd=True) == out


@pytest.mark.parametrize("given", ["/hull/x", "a:b", "bad:p:n", "a--b.slice:p:n", "x.slice:p:../n", "x.slice:p/q:n"])
def test_resolve_systemd_bad(given):
    with pytest.raises(SpecError, match="linux.cgroupsPath"):
        cgroups.resolve_path(given, "x", systemd=True)


MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 31 0:40 / /other/cgroup rw - cgroup cgroup rw,pids
"""


def test_parse_mountinfo():
    v1, v2 = parse_mountinfo(MOUNTINFO)
    assert v1 == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                  "cpuset": "/sys/fs/cgroup/cpuset", "memory": "/sys/fs/cgroup/memory",
                  "name=systemd": "/sys/fs/cgroup/systemd"}
    assert v2 == "/sys/fs/cgroup/unified"


def test_detect_mode_values():
    assert cgroups.detect_mode() in ("unified", "hybrid", "legacy")
