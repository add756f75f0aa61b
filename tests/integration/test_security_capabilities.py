"""Capabilities, no_new_privs, dumpable and personality on the real kernel, read back from
/proc/<pid>/status in forked children (and in programs they exec)."""

import os
import struct
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from security_util import in_child, status_of  # noqa: E402

from hull.errors import SpecError  # noqa: E402
from hull.kernel import capabilities, prctl  # noqa: E402

DOCKER = list(capabilities.DOCKER_DEFAULT)
DOCKER_MASK = 0xA80425FB
BUSYBOX = "/bin/busybox"


def caps_of(status):
    return {k: int(status[k], 16) for k in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb")}


def exec_status(argv_extra=()):
    """Fork+exec `busybox cat /proc/self/status` and parse its output."""
    out = subprocess.run([BUSYBOX, "cat", "/proc/self/status"], capture_output=True, text=True,
                         check=True, close_fds=True).stdout
    return dict((k, v.strip()) for k, _, v in (line.partition(":") for line in out.splitlines()))


def test_docker_default_sets_as_root():
    def child():
        capabilities.apply({"bounding": DOCKER, "effective": DOCKER, "permitted": DOCKER},
                           keep_uid_change=False)
        return {"self": caps_of(status_of()), "exec": caps_of(exec_status())}
    _, got = in_child(child)
    assert got["self"] == {"CapBnd": DOCKER_MASK, "CapEff": DOCKER_MASK, "CapPrm": DOCKER_MASK,
                           "CapInh": 0, "CapAmb": 0}
    # root execs a program: permitted/effective come from the bounding set
    assert got["exec"]["CapEff"] == got["exec"]["CapPrm"] == got["exec"]["CapBnd"] == DOCKER_MASK


def test_five_sets_survive_setuid_and_ambient_survives_exec():
    nbs = ["CAP_NET_BIND_SERVICE"]
    spec = {"bounding": DOCKER, "effective": DOCKER, "permitted": DOCKER,
            "inheritable": nbs, "ambient": nbs}

    def child():
        capabilities.apply(spec)               # keep_uid_change=True
        during = {"keepcaps": prctl.get_keepcaps(), **caps_of(status_of())}
        os.setgroups([])
        os.setresgid(1000, 1000, 1000)
        os.setresuid(1000, 1000, 1000)
        capabilities.after_setuid(spec)
        return {"during": during, "after": caps_of(status_of()), "keepcaps": prctl.get_keepcaps(),
                "uid": os.getresuid(), "exec": caps_of(exec_status())}
    _, got = in_child(child)
    nbs_mask = 1 << 10
    assert got["during"]["keepcaps"] is True
    assert got["uid"] == [1000, 1000, 1000]
    assert got["after"] == {"CapBnd": DOCKER_MASK, "CapEff": DOCKER_MASK, "CapPrm": DOCKER_MASK,
                            "CapInh": nbs_mask, "CapAmb": nbs_mask}
    assert got["keepcaps"] is False
    # a non-root user keeps exactly the ambient set across execve
    assert got["exec"] == {"CapBnd": DOCKER_MASK, "CapEff": nbs_mask, "CapPrm": nbs_mask,
                           "CapInh": nbs_mask, "CapAmb": nbs_mask}


def test_non_root_without_ambient_loses_everything_on_exec():
    spec = {"bounding": DOCKER, "effective": DOCKER, "permitted": DOCKER}

    def child():
        capabilities.apply(spec)
        os.setresgid(1000, 1000, 1000)
        os.setresuid(1000, 1000, 1000)
        capabilities.after_setuid(spec)
        return caps_of(exec_status())
    _, got = in_child(child)
    assert got == {"CapBnd": DOCKER_MASK, "CapEff": 0, "CapPrm": 0, "CapInh": 0, "CapAmb": 0}


def test_empty_sets_drop_everything():
    def child():
        capabilities.apply({}, keep_uid_change=False)
        return caps_of(status_of())
    _, got = in_child(child)
    assert got == {"CapBnd": 0, "CapEff": 0, "CapPrm": 0, "CapInh": 0, "CapAmb": 0}


def test_host_lacks_cap_sys_resource():
    if capabilities.host_bounding() >> capabilities.NUMBERS["CAP_SYS_RESOURCE"] & 1:
        pytest.skip("this host's bounding set has CAP_SYS_RESOURCE")
    with pytest.raises(SpecError) as e:
        capabilities.validate({"bounding": DOCKER + ["CAP_SYS_RESOURCE"]})
    assert e.value.path == f"process.capabilities.bounding[{len(DOCKER)}]"
    assert "CAP_SYS_RESOURCE is not in this host's capability bounding set" in str(e.value)


def test_unknown_capability_fails_before_touching_the_process():
    def child():
        try:
            capabilities.apply({"bounding": ["CAP_CHOWN", "CAP_FOO"]})
        except SpecError as e:
            return {"error": str(e), "bnd": caps_of(status_of())["CapBnd"]}
    _, got = in_child(child)
    assert got["error"] == 'process.capabilities.bounding[1]: unknown capability "CAP_FOO"'
    assert got["bnd"] == capabilities.host_bounding()


def _set_file_caps(path, mask):
    # struct vfs_cap_data, revision 2, effective flag set
    data = struct.pack("<IIIII", 0x02000000 | 1, mask & 0xFFFFFFFF, 0, mask >> 32, 0)
    os.setxattr(path, "security.capability", data)


@pytest.mark.parametrize("nnp", [False, True])
def test_no_new_privs_stops_file_capabilities(tmp_path, nnp):
    """The setuid/file-capability escalation: a binary carrying CAP_NET_ADMIN (in the bounding
    set, not in the caller's permitted set) grants it to a non-root caller, unless
    no_new_privs is set."""
    binary = tmp_path / "busybox-netraw"
    binary.write_bytes(open(BUSYBOX, "rb").read())
    os.chmod(binary, 0o755)
    os.chmod(tmp_path, 0o755)
    _set_file_caps(str(binary), 1 << 12)

    def child():
        spec = {"bounding": DOCKER + ["CAP_NET_ADMIN"], "effective": DOCKER, "permitted": DOCKER}
        capabilities.apply(spec)
        os.setresgid(1000, 1000, 1000)
        os.setresuid(1000, 1000, 1000)
        capabilities.after_setuid(spec)
        if nnp:
            prctl.set_no_new_privs()
        out = subprocess.run([str(binary), "cat", "/proc/self/status"], capture_output=True,
                             text=True, check=True).stdout
        st = dict((k, v.strip()) for k, _, v in (line.partition(":") for line in out.splitlines()))
        return {"CapEff": int(st["CapEff"], 16), "NoNewPrivs": st["NoNewPrivs"]}
    _, got = in_child(child)
    if nnp:
        assert got == {"CapEff": 0, "NoNewPrivs": "1"}
    else:
        assert got == {"CapEff": 1 << 12, "NoNewPrivs": "0"}


def test_no_new_privs_and_dumpable():
    def child():
        prctl.set_dumpable(False)
        a = prctl.get_dumpable()
        prctl.set_dumpable(True)
        prctl.set_no_new_privs()
        return {"dumpable": [a, prctl.get_dumpable()], "nnp": prctl.get_no_new_privs(),
                "status": status_of()["NoNewPrivs"]}
    _, got = in_child(child)
    assert got == {"dumpable": [False, True], "nnp": True, "status": "1"}


def test_personality_linux32_changes_uname():
    def child():
        prctl.set_personality("LINUX32", ["ADDR_NO_RANDOMIZE"])
        return {"persona": prctl.get_personality(), "machine": subprocess.run(
            [BUSYBOX, "uname", "-m"], capture_output=True, text=True).stdout.strip()}
    _, got = in_child(child)
    assert got["persona"] == 0x0008 | 0x0040000
    assert got["machine"] in ("i686", "i386")


def test_pdeathsig():
    def child():
        prctl.set_pdeathsig(9)
        return prctl.get_pdeathsig()
    _, got = in_child(child)
    assert got == 9


def test_oom_score_adj_raise_works_lower_needs_sys_resource():
    def child():
        prctl.set_oom_score_adj(500)
        v = open("/proc/self/oom_score_adj").read().strip()
        try:
            prctl.set_oom_score_adj(-500)
            low = "ok"
        except Exception as e:  # noqa: BLE001
            low = str(e)
        return {"raised": v, "lower": low}
    _, got = in_child(child)
    assert got["raised"] == "500"
    if not capabilities.host_bounding() >> capabilities.NUMBERS["CAP_SYS_RESOURCE"] & 1:
        assert "CAP_SYS_RESOURCE" in got["lower"]
