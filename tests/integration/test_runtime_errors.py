"""Bad input: a clear one-line error, exit 1 (runc's status), and nothing left behind."""

import json
import os
import time

import pytest
from runtime_util import make_bundle, unique_id


def _processes_of(cid):
    """Processes with `cid` among their arguments: what a hull-runtime create for it forked
    (stage 1 and the init are forks of it, with its command line), if any outlived it."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if cid.encode() in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def assert_clean_failure(runtime, r, *needles):
    assert r.returncode == 1, r
    err = r.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    assert runtime.ids() == []
    # stage 1 may have made the namespaces and forked the init before the spec was refused
    cid = str(r.args[-1])
    deadline = time.monotonic() + 2
    while _processes_of(cid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _processes_of(cid) == []


def test_malformed_json(runtime, tmp_path):
    b = tmp_path / "b"
    b.mkdir()
    (b / "config.json").write_text('{"ociVersion": "1.0.2", "process": {')
    r = runtime("create", "--bundle", b, unique_id(), check=False)
    assert_clean_failure(runtime, r, "config.json")


def test_incomplete_config(runtime, tmp_path, busybox_rootfs):
    b = make_bundle(tmp_path, busybox_rootfs, ["true"], lambda s: s["process"].update(args=[]))
    r = runtime("create", "--bundle", b, unique_id(), check=False)
    assert_clean_failure(runtime, r, "process.args")


def test_missing_rootfs(runtime, tmp_path):
    b = make_bundle(tmp_path, tmp_path / "nope", ["true"])
    r = runtime("create", "--bundle", b, unique_id(), check=False)
    assert_clean_failure(runtime, r, "root")


def test_a_refused_spec_is_one_line_every_time(runtime, tmp_path):
    """Stage 1 may have forked the init by the time the runtime refuses the spec: the init,
    seeing the channel close, exits without a word of its own (a race, hence the repeats)."""
    b = make_bundle(tmp_path, tmp_path / "nope", ["true"])
    for _ in range(20):
        r = runtime("create", "--bundle", b, unique_id(), check=False)
        assert_clean_failure(runtime, r, "root")


def test_unknown_namespace_type(runtime, tmp_path, busybox_rootfs):
    b = make_bundle(tmp_path, busybox_rootfs, ["true"],
                    lambda s: s["linux"]["namespaces"].append({"type": "bogus"}))
    r = runtime("create", "--bundle", b, unique_id(), check=False)
    assert_clean_failure(runtime, r, "linux.namespaces", "bogus")


def test_duplicate_id(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"])
    runtime("create", "--bundle", b, cid)
    first = _processes_of(cid)  # the first container's init
    r = runtime("create", "--bundle", b, cid, check=False)
    assert r.returncode == 1 and f"container with id exists: {cid}" in r.stderr
    assert runtime.ids() == [cid]
    # the refused create's stage 1 (and an init it may have forked already) are gone
    deadline = time.monotonic() + 2
    while _processes_of(cid) != first and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _processes_of(cid) == first
    runtime("delete", "--force", cid)


@pytest.mark.parametrize("cmd", [["state"], ["start"], ["kill"], ["delete"], ["exec"], ["ps"]])
def test_unknown_id(runtime, cmd):
    args = [*cmd, "nosuchcontainer"] + (["true"] if cmd == ["exec"] else [])
    r = runtime(*args, check=False)
    # runc: exec's own errors exit 255 ("exec failed: ..."), the other commands' exit 1
    assert r.returncode == (255 if cmd == ["exec"] else 1)
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_delete_force_unknown_id_is_ok(runtime):
    assert runtime("delete", "--force", "nosuchcontainer", check=False).returncode == 0


def test_missing_binary(runtime, tmp_path, busybox_rootfs):
    b = make_bundle(tmp_path, busybox_rootfs, ["no-such-binary"])
    r = runtime("run", "--bundle", b, unique_id(), check=False)
    assert_clean_failure(runtime, r, 'exec: "no-such-binary": executable file not found in $PATH')
    b = make_bundle(tmp_path, busybox_rootfs, ["/bin/nope"])
    r = runtime("run", "--bundle", b, unique_id(), check=False)
    assert_clean_failure(runtime, r, "/bin/nope", "no such file or directory")


def test_exec_missing_binary_in_running_container(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"])
    runtime("run", "--detach", "--bundle", b, cid)
    r = runtime("exec", cid, "no-such-binary", check=False)
    runtime("delete", "--force", cid)
    assert r.returncode == 255 and "exec failed:" in r.stderr and "executable file not found" in r.stderr


def test_unknown_flag_and_command(runtime):
    r = runtime("create", "--no-such-flag", "x", check=False)
    assert r.returncode == 1
    r = runtime("frobnicate", check=False)
    assert r.returncode == 3 and "No help topic for 'frobnicate'" in r.stderr  # runc's status


def test_bad_signal(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"])
    runtime("run", "--detach", "--bundle", b, cid)
    r = runtime("kill", cid, "SIGFOO", check=False)
    runtime("delete", "--force", cid)
    assert r.returncode == 1 and 'unknown signal "SIGFOO"' in r.stderr


def test_json_log_for_containerd(runtime, tmp_path, busybox_rootfs):
    log = tmp_path / "log.json"
    b = make_bundle(tmp_path, busybox_rootfs, ["no-such-binary"])
    r = runtime("--log", log, "--log-format", "json", "create", "--bundle", b, unique_id(), check=False)
    assert r.returncode == 1
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error" and "executable file not found" in last["msg"] and last["time"]
    assert os.listdir(runtime.root) == [] or all(n.startswith(".") for n in os.listdir(runtime.root))
