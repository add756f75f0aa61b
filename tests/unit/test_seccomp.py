"""linux.seccomp validation, compilation with libseccomp, the cache, and Docker's default
profile resolution. Compiling needs no privileges; nothing here loads a filter."""

import copy
import os
import struct

import pytest

from hull.errors import SpecError
from hull.kernel import capabilities, seccomp
from hull.runtime.seccomp_profile import allowed_names, default_seccomp, profile

DOCKER_CAPS = list(capabilities.DOCKER_DEFAULT)


def simple(**over):
    spec = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]}
    spec.update(over)
    return spec


# --- validation -------------------------------------------------------------------------------

def test_docker_default_validates():
    seccomp.validate(default_seccomp(DOCKER_CAPS))


@pytest.mark.parametrize("mutate, path, text", [
    (lambda s: s.pop("defaultAction"), "linux.seccomp.defaultAction", "is required"),
    (lambda s: s.update(defaultAction="SCMP_ACT_NOPE"), "linux.seccomp.defaultAction", "unknown action"),
    (lambda s: s.update(defaultAction="SCMP_ACT_NOTIFY"), "linux.seccomp.defaultAction", "cannot be the default"),
    (lambda s: s.update(defaultErrnoRet=5), "linux.seccomp.defaultErrnoRet", "does not take an errno"),
    (lambda s: s.update(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]), "linux.seccomp.architectures[1]", "unknown architecture"),
    (lambda s: s.update(flags=["SECCOMP_FILTER_FLAG_BOGUS"]), "linux.seccomp.flags[0]", "unknown seccomp flag"),
    (lambda s: s.update(listenerPath="relative.sock"), "linux.seccomp.listenerPath", "absolute"),
    (lambda s: s["syscalls"][0].update(names=[]), "linux.seccomp.syscalls[0].names", "non-empty"),
    (lambda s: s["syscalls"][0].update(names=["ok", "bad name"]), "linux.seccomp.syscalls[0].names[1]", "not a syscall name"),
    (lambda s: s["syscalls"][0].update(action="ALLOW"), "linux.seccomp.syscalls[0].action", "unknown action"),
    (lambda s: s["syscalls"][0].update(action="SCMP_ACT_KILL"), "linux.seccomp.syscalls[0].errnoRet", "does not take an errno"),
    (lambda s: s["syscalls"][0].update(errnoRet=70000), "linux.seccomp.syscalls[0].errnoRet", "0..65535"),
    (lambda s: s["syscalls"][0].update(action="SCMP_ACT_NOTIFY", errnoRet=None), "linux.seccomp.listenerPath", "required when a rule uses SCMP_ACT_NOTIFY"),
])
def test_bad_input_names_the_json_path(mutate, path, text):
    spec = simple()
    mutate(spec)
    with pytest.raises(SpecError) as e:
        seccomp.validate(spec)
    assert e.value.path == path
    assert text in str(e.value)


def args_spec(args):
    return {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": args}]}


@pytest.mark.parametrize("args, path, text", [
    ([{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 2, "op": "EQ"}],
     "linux.seccomp.syscalls[2].args[1].op", "unknown operator 'EQ'"),
    ([{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}], "linux.seccomp.syscalls[2].args[0].index", "0..5"),
    ([{"value": 1, "op": "SCMP_CMP_EQ"}], "linux.seccomp.syscalls[2].args[0].index", "required"),
    ([{"index": 0, "op": "SCMP_CMP_EQ"}], "linux.seccomp.syscalls[2].args[0].value", "required"),
    ([{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}], "linux.seccomp.syscalls[2].args[0].value", "must be an integer"),
    ([{"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}], "linux.seccomp.syscalls[2].args[0].value", "must be an integer"),
    (["x"], "linux.seccomp.syscalls[2].args[0]", "must be an object"),
])
def test_bad_args(args, path, text):
    with pytest.raises(SpecError) as e:
        seccomp.validate(args_spec(args))
    assert e.value.path == path and text in str(e.value)


def test_notify_on_write_is_refused_like_runc():
    spec = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}
    with pytest.raises(SpecError, match="cannot be used for write"):
        seccomp.validate(spec)


def test_unknown_fields_are_ignored():
    spec = simple(futureField=1)
    spec["syscalls"][0]["comment"] = "why"
    seccomp.validate(spec)


def test_action_values():
    assert seccomp.action_value("SCMP_ACT_ERRNO") == 0x00050001          # EPERM by default
    assert seccomp.action_value("SCMP_ACT_ERRNO", 38) == 0x00050026
    assert seccomp.action_value("SCMP_ACT_KILL_PROCESS") == 0x80000000
    assert seccomp.action_value("SCMP_ACT_KILL") == 0
    assert seccomp.action_value("SCMP_ACT_NOTIFY") == 0x7FC00000


# --- compile ------------------------------------------------------------------------------------

def insns(prog):
    return [struct.unpack("<HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]


def test_compile_returns_bpf_with_the_actions():
    prog = seccomp.compile(simple())
    assert prog and len(prog) % 8 == 0
    rets = {k for code, _, _, k in insns(prog) if code == 0x06}
    assert 0x00050000 | 77 in rets and 0x7FFF0000 in rets


def test_unknown_syscall_names_are_skipped():
    spec = simple()
    spec["syscalls"].append({"names": ["no_such_syscall_xyz", "getpid"], "action": "SCMP_ACT_KILL_PROCESS"})
    prog = seccomp.compile(spec)
    assert seccomp.last_skipped == ["no_such_syscall_xyz"]
    assert 0x80000000 in {k for code, _, _, k in insns(prog) if code == 0x06}


def test_rule_equal_to_default_is_skipped():
    spec = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}
    assert seccomp.compile(spec)


def test_same_index_conditions_become_separate_rules():
    same = seccomp._conditions([{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}])
    assert len(same) == 2
    diff = seccomp._conditions([{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                {"index": 1, "value": 2, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 2}])
    assert diff == [[(0, 4, 1, 0), (1, 7, 2, 2)]]
    seccomp.compile(args_spec([{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                               {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]))


def test_enosys_prologue_for_allowlists():
    prog = seccomp.compile(default_seccomp(DOCKER_CAPS))
    first = insns(prog)[:6]
    assert first[1][3] == 0xC000003E            # x86_64 check
    assert first[5] == (0x06, 0, 0, 0x00050000 | 38)   # ENOSYS
    assert first[4][3] >= 435                   # max known syscall number in the profile
    # a denylist (default ALLOW) gets no prologue
    assert (0x06, 0, 0, 0x00050000 | 38) not in insns(seccomp.compile(simple()))


def test_cache_round_trip(tmp_path):
    spec = default_seccomp(DOCKER_CAPS)
    prog = seccomp.compile(spec, str(tmp_path))
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".bpf"
    assert files[0].read_bytes() == prog
    assert seccomp.compile(spec, str(tmp_path)) == prog
    # a hit does not call libseccomp: corrupt-free content is returned as stored
    files[0].write_bytes(prog[:8] * 3)
    assert seccomp.compile(spec, str(tmp_path)) == prog[:8] * 3


def test_cache_key_ignores_flags_and_listener_but_not_rules():
    a = default_seccomp(DOCKER_CAPS)
    b = copy.deepcopy(a)
    b["flags"] = ["SECCOMP_FILTER_FLAG_LOG"]
    b["listenerMetadata"] = "x"
    assert seccomp.cache_key(a) == seccomp.cache_key(b)
    b["syscalls"][0]["names"].remove("getpid")
    assert seccomp.cache_key(a) != seccomp.cache_key(b)


def test_cache_dir_unwritable_still_compiles(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    assert seccomp.compile(simple(), str(f / "sub"))


def test_load_flags():
    assert seccomp.load_flags({"flags": ["SECCOMP_FILTER_FLAG_LOG"]}) == 2
    notify = {"flags": ["SECCOMP_FILTER_FLAG_TSYNC"], "syscalls": [{"names": ["x"], "action": "SCMP_ACT_NOTIFY"}]}
    assert seccomp.load_flags(notify) == 1 | 8 | 16


def test_features():
    f = seccomp.features()
    assert f["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in f["actions"] and "SCMP_ACT_ERRNO" in f["actions"]
    assert "SCMP_CMP_MASKED_EQ" in f["operators"]
    assert "SCMP_ARCH_X86_64" in f["archs"]
    assert set(f["supportedFlags"]) <= set(f["knownFlags"])


# --- Docker's default profile --------------------------------------------------------------------

def test_profile_data_shape():
    data = profile()
    assert data["defaultAction"] == "SCMP_ACT_ERRNO" and data["defaultErrnoRet"] == 1
    assert len(data["allow"]) >= 355
    assert data["archMap"]["amd64"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def test_default_for_docker_caps():
    s = default_seccomp(DOCKER_CAPS, arch="amd64", kernel_release="6.18.44")
    allowed = allowed_names(s)
    assert s["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    for blocked in ("mount", "unshare", "setns", "bpf", "keyctl", "reboot", "init_module",
                    "finit_module", "kexec_load", "open_by_handle_at", "umount2", "clone3", "add_key"):
        assert blocked not in allowed, blocked
    for ok in ("read", "write", "openat", "socket", "arch_prctl", "chroot", "ptrace", "execve"):
        assert ok in allowed or any(ok in r["names"] for r in s["syscalls"]), ok
    clone = [r for r in s["syscalls"] if r["names"] == ["clone"]]
    assert clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"          # no namespace flags
    clone3 = [r for r in s["syscalls"] if r["names"] == ["clone3"]][0]
    assert clone3 == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}


def test_default_with_sys_admin_allows_mount_and_plain_clone():
    s = default_seccomp(DOCKER_CAPS + ["CAP_SYS_ADMIN"], arch="amd64")
    allowed = allowed_names(s)
    assert {"mount", "unshare", "setns", "clone", "clone3"} <= allowed
    assert not [r for r in s["syscalls"] if r.get("args") and r["names"] == ["clone"]]


def test_default_cap_conditions():
    assert "reboot" in allowed_names(default_seccomp(["CAP_SYS_BOOT"], arch="amd64"))
    assert "chroot" not in allowed_names(default_seccomp([], arch="amd64"))
    assert {"init_module", "finit_module"} <= allowed_names(default_seccomp(["CAP_SYS_MODULE"], arch="amd64"))


def test_default_arch_and_kernel_conditions():
    old = default_seccomp([], arch="amd64", kernel_release="4.4.0")
    assert "ptrace" not in allowed_names(old)
    assert "ptrace" in allowed_names(default_seccomp([], arch="amd64", kernel_release="5.10.0-1-amd64"))
    arm = default_seccomp([], arch="arm64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in allowed_names(arm) and "set_tls" in allowed_names(arm)
    s390 = default_seccomp([], arch="s390x")
    clone = [r for r in s390["syscalls"] if r["names"] == ["clone"]]
    assert clone[0]["args"][0]["index"] == 1


def test_default_compiles():
    assert len(seccomp.compile(default_seccomp(DOCKER_CAPS))) > 8 * 300
