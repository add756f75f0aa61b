"""hull.runtime.spec: loading config.json, the schema walker, cross-field rules, defaults."""

import copy
import json
import os
import resource
import shutil
import subprocess
import sys

import pytest

from hull.errors import SpecError
from hull.runtime import spec as S


def minimal():
    return {
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/true"], "cwd": "/"},
    }


def full():
    """A config using every Linux field the validator knows."""
    return {
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "none", "source": "/srv", "options": ["rbind", "ro", "idmap"],
             "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
             "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
        ],
        "process": {
            "terminal": True,
            "consoleSize": {"height": 25, "width": 80},
            "user": {"uid": 1, "gid": 1, "umask": 18, "additionalGids": [5, 6], "username": "u"},
            "args": ["sh", "-c", "true"],
            "commandLine": "sh -c true",
            "env": ["PATH=/bin", "EMPTY=", "X=a=b"],
            "cwd": "/root",
            "capabilities": {s: ["CAP_KILL"] for s in ("bounding", "effective", "inheritable", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                        {"type": "RLIMIT_CORE", "soft": 0, "hard": 2**64 - 1}],
            "noNewPrivileges": True,
            "apparmorProfile": "p",
            "oomScoreAdj": -1000,
            "selinuxLabel": "l",
            "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 4},
            "scheduler": {"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
            "execCPUAffinity": {"initial": "0-3,7", "final": "1"},
        },
        "hostname": "h",
        "domainname": "d",
        "hooks": {p: [{"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}]
                  for p in S.HOOK_PHASES},
        "annotations": {"org.example.key": "v", "k": ""},
        "linux": {
            "namespaces": [{"type": t} for t in S.NAMESPACE_TYPES if t != "network"]
                          + [{"type": "network", "path": "/var/run/netns/x"}],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1},
                            {"containerID": 1, "hostID": 100000, "size": 65535}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "timeOffsets": {"monotonic": {"secs": -3600, "nanosecs": 0}, "boottime": {"secs": 86400}},
            "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438,
                         "uid": 0, "gid": 0},
                        {"type": "p", "path": "/dev/fifo"}],
            "netDevices": {"eth1": {"name": "net1"}},
            "cgroupsPath": "/hull/x",
            "resources": {"memory": {"limit": 1 << 28}},
            "rootfsPropagation": "rslave",
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"},
            "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "10",
                       "kernel.domainname": "x", "net/core/somaxconn": "128"},
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
            "mountLabel": "m",
            "personality": {"domain": "LINUX32", "flags": []},
            "intelRdt": {"closID": "x"},
            "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]},
        },
    }


def with_(base, dotted, value):
    """Copy `base` with the field at `dotted` (a.b.0.c) set to value, or deleted if value is DEL."""
    s = copy.deepcopy(base)
    *parents, last = dotted.split(".")
    obj = s
    for p in parents:
        obj = obj[int(p)] if isinstance(obj, list) else obj.setdefault(p, {})
    key = int(last) if isinstance(obj, list) else last
    if value is DEL:
        del obj[key]
    else:
        obj[key] = value
    return s


DEL = object()


def err(s, **kw):
    with pytest.raises(SpecError) as ei:
        S.validate(s, **kw)
    return str(ei.value)


# ------------------------------------------------------------------ valid configs


def test_minimal_and_full_are_valid():
    S.validate(minimal())
    S.validate(full())
    S.validate(full(), for_exec=True)


def test_process_optional_unless_for_exec():
    s = with_(minimal(), "process", DEL)
    S.validate(s)
    assert err(s, for_exec=True) == "process: is required to create or run a container"


def test_unknown_keys_ignored():
    s = minimal()
    s["futureField"] = {"x": 1}
    s["process"]["futureProc"] = 1
    s["linux"] = {"futureLinux": [1], "namespaces": [{"type": "pid", "futureNs": True}]}
    S.validate(s)


@pytest.mark.parametrize("v", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.2.1", "1.3.0", "1.3.0+dev", "1.0.0-rc5"])
def test_oci_versions_accepted(v):
    S.validate(with_(minimal(), "ociVersion", v))


def test_newer_minor_version_warns():
    warnings = []
    S.validate(with_(minimal(), "ociVersion", "1.4.0"), warn=warnings.append)
    assert len(warnings) == 1 and "ociVersion" in warnings[0]


@pytest.mark.parametrize("v, msg", [
    ("2.0.0", 'ociVersion: unsupported version "2.0.0" (hull supports runtime-spec 1.x)'),
    ("1.0", 'ociVersion: "1.0" is not a SemVer version like "1.2.0"'),
    ("", 'ociVersion: "" is not a SemVer version like "1.2.0"'),
    (1, "ociVersion: must be a string, got 1"),
])
def test_bad_oci_version(v, msg):
    assert err(with_(minimal(), "ociVersion", v)) == msg


# ------------------------------------------------------------------ required fields


@pytest.mark.parametrize("field, msg", [
    ("ociVersion", "ociVersion: is required"),
    ("root", "root: is required"),
    ("root.path", "root.path: is required"),
    ("process.args", "process.args: must be a non-empty list"),
    ("process.user.uid", "process.user.uid: is required"),
    ("process.user.gid", "process.user.gid: is required"),
    ("process.consoleSize.height", "process.consoleSize.height: is required"),
    ("process.consoleSize.width", "process.consoleSize.width: is required"),
    ("process.rlimits.0.type", "process.rlimits[0].type: is required"),
    ("process.rlimits.0.soft", "process.rlimits[0].soft: is required"),
    ("process.rlimits.0.hard", "process.rlimits[0].hard: is required"),
    ("process.ioPriority.class", "process.ioPriority.class: is required"),
    ("process.ioPriority.priority", "process.ioPriority.priority: is required"),
    ("process.scheduler.policy", "process.scheduler.policy: is required"),
    ("mounts.0.destination", "mounts[0].destination: is required"),
    ("hooks.prestart.0.path", "hooks.prestart[0].path: is required"),
    ("hooks.poststop.0.path", "hooks.poststop[0].path: is required"),
    ("linux.namespaces.0.type", "linux.namespaces[0].type: is required"),
    ("linux.uidMappings.0.containerID", "linux.uidMappings[0].containerID: is required"),
    ("linux.uidMappings.0.hostID", "linux.uidMappings[0].hostID: is required"),
    ("linux.gidMappings.0.size", "linux.gidMappings[0].size: is required"),
    ("linux.devices.0.type", "linux.devices[0].type: is required"),
    ("linux.devices.0.path", "linux.devices[0].path: is required"),
    ("linux.devices.0.major", 'linux.devices[0].major: is required for a device of type "c"'),
    ("linux.devices.0.minor", 'linux.devices[0].minor: is required for a device of type "c"'),
    ("linux.personality.domain", "linux.personality.domain: is required"),
    ("linux.memoryPolicy.mode", "linux.memoryPolicy.mode: is required"),
    ("mounts.1.gidMappings", "mounts[1]: uidMappings and gidMappings must be given together"),
])
def test_required_field_missing(field, msg):
    assert err(with_(full(), field, DEL)) == msg


def test_pipe_device_needs_no_numbers():
    S.validate(full())  # full() has {"type": "p", "path": "/dev/fifo"}


# ------------------------------------------------------------------ wrong types


@pytest.mark.parametrize("field, value, msg", [
    ("root.path", 5, "root.path: must be a string, got 5"),
    ("root.path", "", "root.path: must not be empty"),
    ("root.readonly", "yes", 'root.readonly: must be a boolean (true or false), got "yes"'),
    ("mounts", {}, "mounts: must be a list, got an object"),
    ("mounts.0", "proc", 'mounts[0]: must be an object, got "proc"'),
    ("mounts.0.options", "ro", 'mounts[0].options: must be a list, got "ro"'),
    ("mounts.0.options", ["ro", 1], "mounts[0].options[1]: must be a string, got 1"),
    ("mounts.0.source", None, "mounts[0].source: must be a string, got null"),
    ("mounts.0.destination", "", "mounts[0].destination: must not be empty"),
    ("process", [], "process: must be an object, got an array"),
    ("process.terminal", 1, "process.terminal: must be a boolean (true or false), got 1"),
    ("process.args", [], "process.args: must be a non-empty list"),
    ("process.args", "sh", 'process.args: must be a non-empty list, got "sh"'),
    ("process.args", [1], "process.args[0]: must be a string, got 1"),
    ("process.args", [""], "process.args[0]: the program to run must not be empty"),
    ("process.args", ["a\0b"], "process.args[0]: must not contain a NUL byte"),
    ("process.cwd", "root", 'process.cwd: must be an absolute path, got "root"'),
    ("process.cwd", "", "process.cwd: must not be empty"),
    ("process.env", ["PATH"], 'process.env[0]: "PATH" is not in "KEY=VALUE" form'),
    ("process.env", ["=x"], 'process.env[0]: "=x" has an empty variable name'),
    ("process.env", [None], 'process.env[0]: must be a "KEY=VALUE" string, got null'),
    ("process.user.uid", -1, "process.user.uid: -1 is out of range (0 to 4294967295)"),
    ("process.user.uid", 2**32, "process.user.uid: 4294967296 is out of range (0 to 4294967295)"),
    ("process.user.uid", "0", 'process.user.uid: must be a non-negative integer, got "0"'),
    ("process.user.uid", 1.0, "process.user.uid: must be a non-negative integer, got 1.0"),
    ("process.user.uid", True, "process.user.uid: must be a non-negative integer, got true"),
    ("process.user.additionalGids", [1, "2"], 'process.user.additionalGids[1]: must be a non-negative integer, got "2"'),
    ("process.user.umask", -1, "process.user.umask: -1 is out of range (0 to 4095)"),
    ("process.user.username", 1, "process.user.username: must be a string, got 1"),
    ("process.consoleSize.width", -80, "process.consoleSize.width: -80 is out of range (0 to 4294967295)"),
    ("process.capabilities", ["CAP_KILL"], "process.capabilities: must be an object, got an array"),
    ("process.capabilities.bounding", "CAP_KILL", 'process.capabilities.bounding: must be a list, got "CAP_KILL"'),
    ("process.capabilities.ambient", [5], "process.capabilities.ambient[0]: must be a string, got 5"),
    ("process.rlimits.0.type", "NOFILE", 'process.rlimits[0].type: unknown rlimit type "NOFILE" (expected one of '
     + ", ".join(S.RLIMITS) + ")"),
    ("process.rlimits.0.soft", -1, "process.rlimits[0].soft: -1 is out of range (0 to 18446744073709551615)"),
    ("process.rlimits.0.hard", 512, "process.rlimits[0]: soft limit 1024 is above hard limit 512 for RLIMIT_NOFILE"),
    ("process.noNewPrivileges", "true", 'process.noNewPrivileges: must be a boolean (true or false), got "true"'),
    ("process.oomScoreAdj", 1001, "process.oomScoreAdj: 1001 is out of range (-1000 to 1000)"),
    ("process.apparmorProfile", 1, "process.apparmorProfile: must be a string, got 1"),
    ("process.selinuxLabel", [], "process.selinuxLabel: must be a string, got an array"),
    ("process.ioPriority.class", "RT", 'process.ioPriority.class: unknown value "RT" (expected one of '
     "IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE)"),
    ("process.ioPriority.priority", 8, "process.ioPriority.priority: 8 is out of range (0 to 7)"),
    ("process.scheduler.policy", "FIFO", 'process.scheduler.policy: unknown value "FIFO" (expected one of '
     "SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE)"),
    ("process.scheduler.nice", 20, "process.scheduler.nice: 20 is out of range (-20 to 19)"),
    ("process.scheduler.flags", ["X"], 'process.scheduler.flags[0]: unknown value "X" (expected one of '
     + ", ".join(S._SCHED_FLAGS) + ")"),
    ("process.execCPUAffinity.initial", "0-", 'process.execCPUAffinity.initial: "0-" is not a list like "0-3,7"'),
    ("process.execCPUAffinity.final", "3-1", 'process.execCPUAffinity.final: "3-1" is not a list like "0-3,7"'),
    ("process.commandLine", 1, "process.commandLine: must be a string, got 1"),
    ("hostname", 1, "hostname: must be a string, got 1"),
    ("domainname", False, "domainname: must be a string, got false"),
    ("hooks", [], "hooks: must be an object, got an array"),
    ("hooks.prestart", {}, "hooks.prestart: must be a list, got an object"),
    ("hooks.createRuntime.0.path", "true", 'hooks.createRuntime[0].path: must be an absolute path, got "true"'),
    ("hooks.createContainer.0.args", "x", 'hooks.createContainer[0].args: must be a list, got "x"'),
    ("hooks.startContainer.0.env", ["A"], 'hooks.startContainer[0].env[0]: "A" is not in "KEY=VALUE" form'),
    ("hooks.poststart.0.timeout", 0, "hooks.poststart[0].timeout: 0 is out of range (1 to 9223372036854775807)"),
    ("hooks.poststop.0.timeout", 1.5, "hooks.poststop[0].timeout: must be a positive integer (seconds), got 1.5"),
    ("annotations", [], "annotations: must be an object, got an array"),
    ("annotations.k", 1, "annotations.k: must be a string, got 1"),
    ("linux", "x", 'linux: must be an object, got "x"'),
    ("linux.namespaces", {}, "linux.namespaces: must be a list, got an object"),
    ("linux.namespaces.0.path", "ns/pid", 'linux.namespaces[0].path: must be an absolute path, got "ns/pid"'),
    ("linux.uidMappings", {}, "linux.uidMappings: must be a list, got an object"),
    ("linux.uidMappings.0.size", 0, "linux.uidMappings[0].size: must be at least 1"),
    ("linux.uidMappings.0.hostID", -5, "linux.uidMappings[0].hostID: -5 is out of range (0 to 4294967295)"),
    ("linux.timeOffsets.monotonic.secs", "1", 'linux.timeOffsets.monotonic.secs: must be an integer, got "1"'),
    ("linux.timeOffsets.boottime.nanosecs", 10**9, "linux.timeOffsets.boottime.nanosecs: 1000000000 is out of range (0 to 999999999)"),
    ("linux.timeOffsets.realtime", {"secs": 1}, 'linux.timeOffsets.realtime: unknown clock "realtime" (expected monotonic or boottime)'),
    ("linux.devices.0.type", "x", 'linux.devices[0].type: unknown value "x" (expected one of c, b, u, p)'),
    ("linux.devices.0.path", "dev/fuse", 'linux.devices[0].path: must be an absolute path, got "dev/fuse"'),
    ("linux.devices.0.major", "10", 'linux.devices[0].major: must be an integer, got "10"'),
    ("linux.devices.0.fileMode", -1, "linux.devices[0].fileMode: -1 is out of range (0 to 65535)"),
    ("linux.devices.0.uid", -1, "linux.devices[0].uid: -1 is out of range (0 to 4294967295)"),
    ("linux.netDevices.eth1.name", "", "linux.netDevices.eth1.name: must not be empty"),
    ("linux.cgroupsPath", 1, "linux.cgroupsPath: must be a string, got 1"),
    ("linux.resources", [], "linux.resources: must be an object, got an array"),
    ("linux.rootfsPropagation", "rwhatever", 'linux.rootfsPropagation: unknown value "rwhatever" (expected one of '
     "shared, slave, private, unbindable, rshared, rslave, rprivate, runbindable)"),
    ("linux.seccomp", "x", 'linux.seccomp: must be an object, got "x"'),
    ("linux.sysctl", [], "linux.sysctl: must be an object, got an array"),
    ("linux.maskedPaths", ["proc/kcore"], 'linux.maskedPaths[0]: must be an absolute path, got "proc/kcore"'),
    ("linux.readonlyPaths", [""], "linux.readonlyPaths[0]: must not be empty"),
    ("linux.mountLabel", 1, "linux.mountLabel: must be a string, got 1"),
    ("linux.personality.domain", "LINUX64", 'linux.personality.domain: unknown value "LINUX64" (expected one of LINUX, LINUX32)'),
    ("linux.personality.flags", "x", 'linux.personality.flags: must be a list, got "x"'),
    ("linux.intelRdt", 1, "linux.intelRdt: must be an object, got 1"),
    ("linux.memoryPolicy.mode", "BIND", 'linux.memoryPolicy.mode: unknown value "BIND" (expected one of '
     + ", ".join(S._MPOL_MODES) + ")"),
    ("linux.memoryPolicy.nodes", "a", 'linux.memoryPolicy.nodes: "a" is not a list like "0-3,7"'),
    ("linux.memoryPolicy.flags", ["MPOL_F_X"], 'linux.memoryPolicy.flags[0]: unknown value "MPOL_F_X" (expected one of '
     + ", ".join(S._MPOL_FLAGS) + ")"),
])
def test_wrong_values(field, value, msg):
    assert err(with_(full(), field, value)) == msg


def test_map_keys_with_dots_are_quoted():
    s = full()
    s["annotations"]["org.example.key"] = 1
    assert err(s) == 'annotations["org.example.key"]: must be a string, got 1'
    s = full()
    s["linux"]["sysctl"]["net.ipv4.ip_forward"] = 1
    assert err(s) == 'linux.sysctl["net.ipv4.ip_forward"]: must be a string, got 1'


def test_empty_annotation_key():
    s = with_(minimal(), "annotations", {"": "x"})
    assert err(s) == 'annotations[""]: annotation keys must not be empty'


def test_top_level_must_be_object():
    assert err([]) == "config.json: must be a JSON object, got an array"


def test_first_error_is_reported():
    s = full()
    s["process"]["args"] = []
    s["linux"]["namespaces"] = [{"type": "bogus"}]
    assert err(s) == "process.args: must be a non-empty list"


# ------------------------------------------------------------------ namespaces


def test_unknown_namespace_type():
    s = with_(minimal(), "linux", {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "foo"}]})
    assert err(s) == ('linux.namespaces[2].type: unknown namespace type "foo" '
                      "(expected one of pid, network, mount, ipc, uts, user, cgroup, time)")


def test_namespace_type_wrong_type():
    s = with_(minimal(), "linux", {"namespaces": [{"type": 1}]})
    assert err(s) == "linux.namespaces[0].type: must be a string, got 1"


def test_duplicate_namespace():
    s = with_(minimal(), "linux", {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "pid", "path": "/proc/1/ns/pid"}]})
    assert err(s) == 'linux.namespaces[2].type: duplicate namespace "pid" (also linux.namespaces[0])'


def test_all_namespace_types_accepted():
    s = with_(minimal(), "linux", {
        "namespaces": [{"type": t} for t in S.NAMESPACE_TYPES],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
    })
    S.validate(s)


# ------------------------------------------------------------------ id mappings


def _userns(**linux):
    s = minimal()
    s["linux"] = {"namespaces": [{"type": "user"}], **linux}
    return s


ONE = [{"containerID": 0, "hostID": 1000, "size": 1}]


def test_new_userns_needs_mappings():
    assert err(_userns(gidMappings=ONE)) == "linux.uidMappings: a new user namespace needs uidMappings and gidMappings"
    assert err(_userns(uidMappings=ONE)) == "linux.gidMappings: a new user namespace needs uidMappings and gidMappings"


def test_joined_userns_needs_no_mappings():
    s = minimal()
    s["linux"] = {"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}]}
    S.validate(s)


def test_mappings_without_userns():
    s = with_(minimal(), "linux", {"uidMappings": ONE, "gidMappings": ONE})
    assert err(s) == 'linux.uidMappings: needs a user namespace: add {"type": "user"} to linux.namespaces'


def test_overlapping_mappings():
    maps = [{"containerID": 0, "hostID": 1000, "size": 10}, {"containerID": 5, "hostID": 5000, "size": 10}]
    assert err(_userns(uidMappings=maps, gidMappings=ONE)) == \
        "linux.uidMappings[1]: containerID range overlaps linux.uidMappings[0]"
    maps = [{"containerID": 0, "hostID": 1000, "size": 10}, {"containerID": 10, "hostID": 1009, "size": 10}]
    assert err(_userns(uidMappings=ONE, gidMappings=maps)) == \
        "linux.gidMappings[1]: hostID range overlaps linux.gidMappings[0]"
    adjacent = [{"containerID": 0, "hostID": 1000, "size": 10}, {"containerID": 10, "hostID": 1010, "size": 10}]
    S.validate(_userns(uidMappings=adjacent, gidMappings=adjacent))


def test_mapping_beyond_id_range():
    maps = [{"containerID": 0, "hostID": 2**32 - 10, "size": 100}]
    assert err(_userns(uidMappings=maps, gidMappings=ONE)) == \
        "linux.uidMappings[0]: hostID 4294967286 + size 100 is beyond the 32-bit id range"


def test_mapping_entry_wrong_type():
    assert err(_userns(uidMappings=["0 1000 1"], gidMappings=ONE)) == \
        'linux.uidMappings[0]: must be an object, got "0 1000 1"'


def test_too_many_mapping_ranges():
    maps = [{"containerID": i, "hostID": 1000 + i, "size": 1} for i in range(341)]
    assert err(_userns(uidMappings=maps, gidMappings=ONE)) == "linux.uidMappings: 341 ranges; the kernel allows at most 340"


# ------------------------------------------------------------------ other cross-field rules


def test_time_offsets_need_time_namespace():
    s = with_(minimal(), "linux", {"timeOffsets": {"monotonic": {"secs": 1}}})
    assert err(s) == 'linux.timeOffsets: needs a time namespace: add {"type": "time"} to linux.namespaces'
    s["linux"]["namespaces"] = [{"type": "time", "path": "/proc/1/ns/time"}]
    assert err(s) == "linux.timeOffsets: cannot be set when joining an existing time namespace (path)"
    s["linux"]["namespaces"] = [{"type": "time"}]
    S.validate(s)


@pytest.mark.parametrize("field", ["hostname", "domainname"])
def test_hostname_needs_uts(field):
    s = with_(minimal(), field, "x")
    assert err(s) == f'{field}: needs a UTS namespace: add {{"type": "uts"}} to linux.namespaces'
    s["linux"] = {"namespaces": [{"type": "uts"}]}
    S.validate(s)
    S.validate(with_(minimal(), field, ""))  # empty means "do not set"


@pytest.mark.parametrize("name, ns", [
    ("net.ipv4.ip_forward", "network"),
    ("net/core/somaxconn", "network"),
    ("kernel.shmmax", "ipc"),
    ("kernel.msgmnb", "ipc"),
    ("fs.mqueue.msg_max", "ipc"),
    ("kernel.domainname", "uts"),
])
def test_sysctl_needs_its_namespace(name, ns):
    s = with_(minimal(), "linux", {"sysctl": {name: "1"}})
    msg = err(s)
    assert msg.startswith(f'linux.sysctl["{name}"]: needs a') and "host's value" in msg
    s["linux"]["namespaces"] = [{"type": ns}]
    S.validate(s)


def test_sysctl_not_namespaced():
    s = with_(minimal(), "linux", {"namespaces": [{"type": t} for t in S.NAMESPACE_TYPES if t != "user"],
                                   "sysctl": {"vm.swappiness": "10"}})
    assert err(s) == 'linux.sysctl["vm.swappiness"]: is not namespaced by the kernel, so a container cannot set it'


def test_sysctl_kernel_hostname_refused():
    s = with_(minimal(), "linux", {"namespaces": [{"type": "uts"}], "sysctl": {"kernel.hostname": "x"}})
    assert err(s) == 'linux.sysctl["kernel.hostname"]: is not allowed: set the "hostname" field instead'


def test_duplicate_rlimit():
    s = with_(minimal(), "process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                                              {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2}])
    assert err(s) == "process.rlimits[1].type: duplicate rlimit RLIMIT_NOFILE (also process.rlimits[0])"


def test_scheduler_priority_and_deadline_rules():
    s = with_(minimal(), "process.scheduler", {"policy": "SCHED_OTHER", "priority": 5})
    assert err(s) == "process.scheduler.priority: can only be set with SCHED_FIFO or SCHED_RR, not SCHED_OTHER"
    s = with_(minimal(), "process.scheduler", {"policy": "SCHED_RR", "runtime": 5})
    assert err(s) == "process.scheduler.runtime: can only be set with SCHED_DEADLINE, not SCHED_RR"
    S.validate(with_(minimal(), "process.scheduler", {"policy": "SCHED_DEADLINE", "runtime": 1, "deadline": 2, "period": 3}))
    S.validate(with_(minimal(), "process.scheduler", {"policy": "SCHED_BATCH", "nice": -5}))


def test_relative_mount_destination_warns():
    warnings = []
    s = with_(minimal(), "mounts", [{"destination": "/proc", "type": "proc"}, {"destination": "data", "type": "tmpfs"}])
    S.validate(s, warn=warnings.append)
    assert warnings == ['mounts[1].destination: "data" is not absolute; it is taken relative to "/" '
                        "(relative mount destinations are deprecated)"]


# ------------------------------------------------------------------ validate_process (exec --process)


def test_validate_process():
    S.validate_process({"args": ["ls"], "cwd": "/", "env": ["A=1"], "terminal": False})
    with pytest.raises(SpecError) as ei:
        S.validate_process({"cwd": "/"})
    assert str(ei.value) == "process.args: must be a non-empty list"
    with pytest.raises(SpecError) as ei:
        S.validate_process({"args": ["ls"], "user": {"uid": 0}}, path="process.json")
    assert str(ei.value) == "process.json.user.gid: is required"
    with pytest.raises(SpecError) as ei:
        S.validate_process(["ls"])
    assert str(ei.value) == "process: must be an object, got an array"


def test_process_defaults():
    p = S.process_defaults({"args": ["ls"]})
    assert p == {"args": ["ls"], "terminal": False, "env": [], "cwd": "/",
                 "user": {"uid": 0, "gid": 0, "additionalGids": []}, "rlimits": [], "noNewPrivileges": False}
    assert "capabilities" not in p
    kept = S.process_defaults({"args": ["ls"], "cwd": "/x", "user": {"uid": 5, "gid": 6}})
    assert kept["cwd"] == "/x" and kept["user"] == {"uid": 5, "gid": 6, "additionalGids": []}


# ------------------------------------------------------------------ load()


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def write(bundle, obj):
    text = obj if isinstance(obj, (str, bytes)) else json.dumps(obj, indent=2)
    mode = "wb" if isinstance(text, bytes) else "w"
    with open(bundle / "config.json", mode) as f:
        f.write(text)


def load_err(bundle, **kw):
    with pytest.raises(SpecError) as ei:
        S.load(str(bundle), **kw)
    return ei.value


def test_load_resolves_root_and_defaults(bundle):
    write(bundle, minimal())
    s = S.load(str(bundle))
    assert s["root"] == {"path": str(bundle / "rootfs"), "readonly": False}
    assert s["mounts"] == []
    assert s["process"]["env"] == [] and s["process"]["cwd"] == "/" and s["process"]["terminal"] is False
    assert s["hooks"] == {p: [] for p in S.HOOK_PHASES}
    assert s["annotations"] == {}
    linux = s["linux"]
    for f in ("namespaces", "uidMappings", "gidMappings", "devices", "maskedPaths", "readonlyPaths"):
        assert linux[f] == []
    assert linux["sysctl"] == {}
    # nothing invented: fields with runtime-chosen behaviour stay absent
    for absent in ("resources", "seccomp", "cgroupsPath", "rootfsPropagation"):
        assert absent not in linux
    for absent in ("hostname", "domainname"):
        assert absent not in s
    assert "capabilities" not in s["process"] and "oomScoreAdj" not in s["process"]


def test_load_relative_bundle_path(bundle, monkeypatch):
    write(bundle, minimal())
    monkeypatch.chdir(bundle.parent)
    s = S.load(bundle.name)
    assert s["root"]["path"] == str(bundle / "rootfs")


def test_load_absolute_root_path(bundle, tmp_path_factory):
    other = tmp_path_factory.mktemp("otherroot")
    write(bundle, with_(minimal(), "root.path", str(other) + "/"))
    assert S.load(str(bundle))["root"]["path"] == str(other)


def test_load_cwd_default_only_when_missing(bundle):
    write(bundle, with_(minimal(), "process.cwd", DEL))
    assert S.load(str(bundle))["process"]["cwd"] == "/"


def test_load_relative_mount_destination_made_absolute(bundle):
    write(bundle, with_(minimal(), "mounts", [{"destination": "data", "type": "tmpfs", "source": "tmpfs"}]))
    warnings = []
    s = S.load(str(bundle), warn=warnings.append)
    assert s["mounts"][0]["destination"] == "/data"
    assert s["mounts"][0]["options"] == []
    assert len(warnings) == 1


def test_load_invalid_json_position(bundle):
    write(bundle, '{\n  "ociVersion": "1.2.0",\n  "root": {"path": "rootfs"}\n  "process": {}\n}\n')
    e = load_err(bundle)
    assert e.path == "config.json"
    assert str(e) == "config.json: invalid JSON at line 4 column 3: Expecting ',' delimiter"


def test_load_truncated_json(bundle):
    write(bundle, '{"ociVersion": "1.2.0", "root": {')
    assert str(load_err(bundle)).startswith("config.json: invalid JSON at line 1 column 34: ")


def test_load_empty_file(bundle):
    write(bundle, "")
    assert str(load_err(bundle)) == "config.json: invalid JSON at line 1 column 1: Expecting value"


def test_load_not_utf8(bundle):
    write(bundle, b'{"ociVersion": "\xff"}')
    assert str(load_err(bundle)) == "config.json: is not valid UTF-8 (byte 16)"


def test_load_missing_config(bundle):
    e = load_err(bundle)
    assert e.path == "config.json"
    assert str(e) == (f"config.json: {bundle}/config.json does not exist "
                      "(write a default one with `hull-runtime spec`)")


def test_load_missing_bundle(tmp_path):
    e = load_err(tmp_path / "nope")
    assert str(e) == f"config.json: bundle directory {tmp_path / 'nope'} does not exist"


def test_load_config_is_a_directory(bundle):
    (bundle / "config.json").mkdir()
    assert str(load_err(bundle)).startswith(f"config.json: cannot read {bundle}/config.json: ")


def test_load_missing_rootfs(bundle):
    write(bundle, with_(minimal(), "root.path", "nothere"))
    e = load_err(bundle)
    assert str(e) == f"root.path: rootfs directory {bundle}/nothere does not exist"
    S.load(str(bundle), check_rootfs=False)


def test_load_requires_process_by_default(bundle):
    write(bundle, with_(minimal(), "process", DEL))
    assert str(load_err(bundle)) == "process: is required to create or run a container"
    assert "process" not in S.load(str(bundle), require_process=False)


def test_load_validation_error_has_json_path(bundle):
    write(bundle, with_(minimal(), "linux", {"namespaces": [{"type": "pid"}, {"type": "net"}]}))
    e = load_err(bundle)
    assert e.path == "linux.namespaces[1].type"
    assert e.detail.startswith('unknown namespace type "net"')


def test_load_full(bundle):
    write(bundle, full())
    s = S.load(str(bundle))
    assert s["process"]["user"]["additionalGids"] == [5, 6]


# ------------------------------------------------------------------ runc-generated configs


RUNC = shutil.which("runc")


@pytest.mark.skipif(RUNC is None, reason="runc is not installed (apt-get install runc)")
@pytest.mark.parametrize("flags", [[], ["--rootless"]])
def test_runc_spec_loads(tmp_path, flags):
    subprocess.run([RUNC, "spec", *flags], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "rootfs").mkdir()
    s = S.load(str(tmp_path))
    assert s["process"]["args"] == ["sh"]
    assert s["root"]["path"] == str(tmp_path / "rootfs")
    types = [n["type"] for n in s["linux"]["namespaces"]]
    assert ("user" in types) == bool(flags)


# ------------------------------------------------------------------ rlimit_name, namespace_map


def test_rlimit_name():
    assert S.rlimit_name("RLIMIT_NOFILE") == resource.RLIMIT_NOFILE
    assert S.rlimit_name("RLIMIT_NPROC") == resource.RLIMIT_NPROC
    for name in S.RLIMITS:
        assert isinstance(S.rlimit_name(name), int)
    with pytest.raises(SpecError) as ei:
        S.rlimit_name("RLIMIT_FOO")
    assert str(ei.value).startswith('process.rlimits: unknown rlimit type "RLIMIT_FOO"')
    with pytest.raises(SpecError):
        S.rlimit_name("rlimit_nofile")


def test_rlimit_table_matches_platform():
    for name, num in S.RLIMITS.items():
        if hasattr(resource, name):
            assert getattr(resource, name) == num, name


def test_namespace_map():
    s = with_(minimal(), "linux", {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/run/netns/a"}]})
    assert S.namespace_map(s) == {"pid": None, "network": "/run/netns/a"}
    assert S.namespace_map(minimal()) == {}


# ------------------------------------------------------------------ import cost


def test_import_is_light():
    """The module imports only hull.errors and the rlimit table (json is lazy), so hull-runtime
    stays fast: no ctypes, no resource."""
    code = ("import sys; before = set(sys.modules); import hull.runtime.spec; "
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}).stdout
    new = eval(out)
    assert set(new) <= {"hull", "hull.errors", "hull.osfast", "hull.runtime", "hull.runtime.spec", "errno",
                        "hull.kernel", "hull.kernel.rlimits"}, new


def test_rlimits_set_and_report_in_a_child():
    """kernel/rlimits.set through prlimit: applied, soft over hard refused with the names."""
    from hull.errors import HullError
    from hull.kernel import rlimits
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            soft, hard = rlimits.get("RLIMIT_NOFILE")
            rlimits.set("RLIMIT_NOFILE", 100, hard)
            ok = resource.getrlimit(resource.RLIMIT_NOFILE) == (100, hard)
            try:
                rlimits.set("RLIMIT_NOFILE", 200, 100)
                msg = "no error"
            except HullError as e:
                msg = str(e)
            os.write(w, f"{ok}|{msg}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        ok, msg = f.read().split("|")
    os.waitpid(pid, 0)
    assert ok == "True"
    assert msg == "setrlimit RLIMIT_NOFILE (soft 200, hard 100): soft limit exceeds hard limit"
