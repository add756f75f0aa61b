"""AppArmor/SELinux requests against the active LSMs (no root needed)."""

import pytest

from hull.errors import SpecError
from hull.kernel import lsm


def test_no_request_no_error():
    lsm.validate({"process": {}}, lsms=[])


def test_apparmor_profile_without_apparmor():
    with pytest.raises(SpecError) as e:
        lsm.validate({"process": {"apparmorProfile": "docker-default"}}, lsms=["landlock", "bpf"])
    assert e.value.path == "process.apparmorProfile"
    assert "AppArmor is not enabled on this kernel" in str(e.value)


def test_apparmor_unconfined_needs_nothing():
    lsm.validate({"process": {"apparmorProfile": "unconfined"}}, lsms=[])


def test_apparmor_profile_with_apparmor():
    lsm.validate({"process": {"apparmorProfile": "docker-default"}}, lsms=["capability", "apparmor"])


def test_selinux_label_and_mount_label():
    with pytest.raises(SpecError, match="SELinux is not enabled on this kernel"):
        lsm.validate({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}, lsms=[])
    with pytest.raises(SpecError) as e:
        lsm.validate({"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}, lsms=["apparmor"])
    assert e.value.path == "linux.mountLabel"
    lsm.validate({"process": {"selinuxLabel": "x"}, "linux": {"mountLabel": "y"}}, lsms=["selinux"])


def test_active_reads_securityfs_list(tmp_path):
    f = tmp_path / "lsm"
    f.write_text("lockdown,capability,landlock,bpf")
    assert lsm.active(str(f)) == ["lockdown", "capability", "landlock", "bpf"]


def test_active_without_securityfs_probes(tmp_path):
    found = lsm.active(str(tmp_path / "missing"))
    assert isinstance(found, list)


def test_mount_label_option():
    assert lsm.mount_label_option("a:b:c:s0") == 'context="a:b:c:s0"'
    assert lsm.mount_label_option(None) == ""
