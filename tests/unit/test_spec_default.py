"""hull.runtime.spec_default: `hull-runtime spec` output, compared with `runc spec`."""

import json
import os
import shutil
import subprocess

import pytest

from hull import OCI_VERSION
from hull.runtime import spec as S
from hull.runtime.spec_default import MASKED_PATHS, READONLY_PATHS, default_spec

RUNC = shutil.which("runc")

DOCKER_MASKED = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
DOCKER_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def ns_types(s):
    return [n["type"] for n in s["linux"]["namespaces"]]


def mount_at(s, dest):
    return next((m for m in s["mounts"] if m["destination"] == dest), None)


@pytest.mark.parametrize("rootless", [False, True])
def test_validates_and_round_trips(rootless, tmp_path):
    s = default_spec(rootless=rootless)
    S.validate(s, for_exec=True)
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(s, indent=2))
    loaded = S.load(str(tmp_path))
    assert loaded["root"]["path"] == str(tmp_path / "rootfs")
    assert loaded["process"]["args"] == ["sh"]
    # JSON round trip keeps everything
    assert json.loads(json.dumps(s)) == s


def test_defaults_like_runc():
    s = default_spec()
    assert s["ociVersion"] == OCI_VERSION
    p = s["process"]
    assert p["terminal"] is True
    assert p["user"] == {"uid": 0, "gid": 0}
    assert p["args"] == ["sh"]
    assert p["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]
    assert p["cwd"] == "/"
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert p["capabilities"] == {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps}
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert p["noNewPrivileges"] is True
    assert s["root"] == {"path": "rootfs", "readonly": True}
    assert s["hostname"] == "hull"
    assert [m["destination"] for m in s["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    assert mount_at(s, "/sys")["type"] == "sysfs"
    assert "gid=5" in mount_at(s, "/dev/pts")["options"]
    assert ns_types(s) == ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    assert s["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    assert s["linux"]["maskedPaths"] == DOCKER_MASKED
    assert s["linux"]["readonlyPaths"] == DOCKER_READONLY
    assert "seccomp" not in s["linux"]
    assert "uidMappings" not in s["linux"]


def test_rootless():
    s = default_spec(rootless=True)
    types = ns_types(s)
    assert "user" in types and "network" not in types
    assert s["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert s["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    sysfs = mount_at(s, "/sys")
    assert sysfs["type"] == "none" and sysfs["source"] == "/sys" and "rbind" in sysfs["options"]
    assert "ro" in sysfs["options"]
    assert mount_at(s, "/sys/fs/cgroup") is None
    assert "gid=5" not in mount_at(s, "/dev/pts")["options"]
    assert "resources" not in s["linux"]
    assert s["linux"]["maskedPaths"] == DOCKER_MASKED


def test_args_and_terminal():
    s = default_spec(args=["/bin/echo", "hi"], terminal=False)
    assert s["process"]["args"] == ["/bin/echo", "hi"]
    assert s["process"]["terminal"] is False
    assert default_spec(args=[])["process"]["args"] == ["sh"]


def test_fresh_objects_each_call():
    a, b = default_spec(), default_spec()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    a["linux"]["maskedPaths"].append("/x")
    a["mounts"][2]["options"].append("x")
    assert b == default_spec()
    assert list(MASKED_PATHS) == DOCKER_MASKED and list(READONLY_PATHS) == DOCKER_READONLY
    caps = a["process"]["capabilities"]
    assert caps["effective"] is not caps["bounding"]


@pytest.mark.skipif(RUNC is None, reason="runc is not installed (apt-get install runc)")
@pytest.mark.parametrize("rootless", [False, True])
def test_same_shape_as_runc_spec(tmp_path, rootless):
    """Same keys and process/root/mount defaults as `runc spec`; documented differences only."""
    subprocess.run([RUNC, "spec", *(["--rootless"] if rootless else [])], cwd=tmp_path, check=True,
                   capture_output=True)
    runc = json.loads((tmp_path / "config.json").read_text())
    ours = default_spec(rootless=rootless)
    assert set(ours) == set(runc)
    assert ours["process"] == runc["process"]
    assert ours["root"] == runc["root"]
    runc_mounts = [m for m in runc["mounts"] if not (rootless and m["destination"] == "/sys/fs/cgroup")]
    assert ours["mounts"] == runc_mounts
    assert set(ours["linux"]["maskedPaths"]) >= set(runc["linux"]["maskedPaths"])
    assert ours["linux"]["readonlyPaths"] == runc["linux"]["readonlyPaths"]
    assert set(ns_types(ours)) - {"cgroup"} == {n["type"] for n in runc["linux"]["namespaces"]}
    if rootless:
        assert "resources" not in ours["linux"]
    else:
        assert ours["linux"]["resources"] == runc["linux"]["resources"]


def _have_seccomp_profile():
    try:
        from hull.runtime.seccomp_profile import default_seccomp  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _have_seccomp_profile(), reason="hull.runtime.seccomp_profile is not in the tree yet")
def test_with_docker_seccomp():
    s = default_spec(with_docker_seccomp=True)
    seccomp = s["linux"]["seccomp"]
    assert isinstance(seccomp, dict) and seccomp.get("defaultAction")
    S.validate(s, for_exec=True)
    from hull.kernel import seccomp as kseccomp

    kseccomp.validate(seccomp)  # the seccomp module owns the inside of linux.seccomp
    assert "seccomp" not in default_spec()["linux"]


def test_with_docker_seccomp_missing_module_is_import_error(monkeypatch):
    """Until the seccomp module lands, asking for the profile fails loudly, never silently."""
    if _have_seccomp_profile():
        pytest.skip("hull.runtime.seccomp_profile exists")
    with pytest.raises(ImportError):
        default_spec(with_docker_seccomp=True)
