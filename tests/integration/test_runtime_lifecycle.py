"""The lifecycle as clients drive it: create/start/state/kill/delete, run exit codes, exec,
console socket, force delete, parallel containers."""

import json
import os
import subprocess
import time

from runtime_util import console_listener, make_bundle, read_until, unique_id


def wait_status(runtime, cid, status, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runtime.state(cid)["status"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} never reached {status}: {runtime.state(cid)}")


def test_create_start_kill_delete(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"])
    pidfile = tmp_path / "pid"
    runtime("create", "--bundle", b, "--pid-file", pidfile, cid)
    st = runtime.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid and st["bundle"] == str(b) and st["ociVersion"]
    assert int(pidfile.read_text()) == st["pid"] > 0
    # the init waits on the exec fifo: not yet running the user's process
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert b"sleep" not in f.read()
    runtime("start", cid)
    assert runtime.state(cid)["status"] == "running"
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"
    runtime("kill", cid, "KILL")
    wait_status(runtime, cid, "stopped")
    assert runtime.state(cid)["pid"] == 0
    r = runtime("kill", cid, "TERM", check=False)
    assert r.returncode == 1 and "container not running" in r.stderr
    runtime("delete", cid)
    r = runtime("state", cid, check=False)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_run_exit_codes(runtime, tmp_path, busybox_rootfs):
    for args, code in ((["true"], 0), (["sh", "-c", "exit 3"], 3)):
        b = make_bundle(tmp_path, busybox_rootfs, args)
        assert runtime("run", "--bundle", b, unique_id(), check=False).returncode == code


def test_run_killed_by_sigkill_is_137(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"])
    proc = subprocess.Popen(runtime.cmd("run", "--bundle", b, cid), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = runtime("state", cid, check=False)
            if r.returncode == 0 and json.loads(r.stdout)["status"] == "running":
                break
            time.sleep(0.05)
        runtime("kill", cid, "9")
        assert proc.wait(timeout=10) == 137
    finally:
        proc.kill()
        proc.wait()
    assert cid not in runtime.ids()  # run deletes the container after it exits


def test_process_that_forks_children(runtime, tmp_path, busybox_rootfs):
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "(echo one) & (sleep 0.2; echo two) & wait; echo done"])
    out = runtime("run", "--bundle", b, unique_id()).stdout.split()
    assert sorted(out[:2]) == ["one", "two"] and out[2] == "done"


def test_exec_sees_same_pid_namespace_and_hostname(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"])
    runtime("run", "--detach", "--bundle", b, cid)
    out = runtime("exec", cid, "sh", "-c", "hostname; ps -o pid,args | grep 'sleep 60' | grep -v grep").stdout
    runtime("delete", "--force", cid)
    lines = out.splitlines()
    assert lines[0] == "hulltest"
    assert lines[1].split()[0] == "1"  # the init, PID 1 of the namespace exec joined


def test_exec_namespace_inodes_match_init(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"])
    runtime("run", "--detach", "--bundle", b, cid)
    pid = runtime.state(cid)["pid"]
    names = ("pid", "net", "ipc", "uts", "mnt", "cgroup")
    init_ns = {n: os.stat(f"/proc/{pid}/ns/{n}").st_ino for n in names}
    script = "; ".join(f"echo {n} $(stat -L -c %i /proc/self/ns/{n})" for n in names)
    out = runtime("exec", cid, "sh", "-c", script).stdout
    runtime("delete", "--force", cid)
    assert {l.split()[0]: int(l.split()[1]) for l in out.splitlines()} == init_ns


def test_exec_exit_code_and_env(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"])
    runtime("run", "--detach", "--bundle", b, cid)
    r = runtime("exec", "--env", "FOO=bar", "--cwd", "/tmp", cid, "sh", "-c", "echo $FOO $(pwd); exit 7", check=False)
    runtime("delete", "--force", cid)
    assert r.returncode == 7 and r.stdout.split() == ["bar", "/tmp"]


def test_console_socket_gives_working_pty(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    sock = tmp_path / "console.sock"
    result = {}
    t = console_listener(sock, result)
    b = make_bundle(tmp_path, busybox_rootfs, ["sh"], terminal=True)
    runtime("create", "--bundle", b, "--console-socket", sock, cid)
    t.join(20)
    master = result["master"]
    try:
        runtime("start", cid)
        os.write(master, b"tty; echo marker-$((6*7))\n")
        out = read_until(master, b"marker-42")
        assert b"/dev/pts/0" in out and b"marker-42" in out
        os.write(master, b"exit\n")
    finally:
        os.close(master)
    runtime("delete", "--force", cid)


def test_delete_force_running(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"])
    runtime("run", "--detach", "--bundle", b, cid)
    pid = runtime.state(cid)["pid"]
    r = runtime("delete", cid, check=False)
    assert r.returncode == 1 and "not stopped" in r.stderr
    runtime("delete", "--force", cid)
    assert not os.path.exists(f"/proc/{pid}/cmdline") or open(f"/proc/{pid}/cmdline", "rb").read() == b""
    assert runtime.ids() == []


def test_two_containers_in_parallel(runtime, tmp_path, busybox_rootfs):
    ids = [unique_id("p"), unique_id("p")]
    for i, cid in enumerate(ids):
        b = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"], name=f"b{i}")
        runtime("run", "--detach", "--bundle", b, cid)
    states = [runtime.state(cid) for cid in ids]
    assert all(s["status"] == "running" for s in states)
    assert states[0]["pid"] != states[1]["pid"]
    assert os.stat(f"/proc/{states[0]['pid']}/ns/pid").st_ino != os.stat(f"/proc/{states[1]['pid']}/ns/pid").st_ino
    assert sorted(runtime.ids()) == sorted(ids)
    for cid in ids:
        runtime("delete", "--force", cid)


def test_list_and_ps(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "sleep 60 & sleep 61"])
    runtime("run", "--detach", "--bundle", b, cid)
    table = runtime("list").stdout
    assert table.splitlines()[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert cid in table and "running" in table
    pids = json.loads(runtime("ps", "--format", "json", cid).stdout)
    assert runtime.state(cid)["pid"] in pids and len(pids) == 2
    out = runtime("ps", cid).stdout
    assert "sleep 61" in out and "PID" in out.splitlines()[0]
    runtime("delete", "--force", cid)
