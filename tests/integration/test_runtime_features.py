"""Hooks with state on stdin, preserve-fds and LISTEN_FDS, --no-pivot, linux.devices,
tmpcopyup, rootfs propagation, spec and features output."""

import json
import os
import subprocess

from runtime_util import BIN, make_bundle, unique_id

PHASES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def test_hooks_run_in_order_with_state_on_stdin(runtime, tmp_path, busybox_rootfs):
    log = tmp_path / "hooks.log"
    log.write_text("")
    os.chmod(tmp_path, 0o755)
    hook = tmp_path / "hook.sh"
    # startContainer runs inside the container: it cannot see the host's log; it leaves a mark
    hook.write_text(f"#!/bin/sh\nstate=$(cat)\necho \"$1 $HOOK_ENV $state\" >> {log}\n")
    hook.chmod(0o755)
    inner = "#!/bin/sh\necho startContainer-ran > /tmp/start-hook\n"
    (busybox_rootfs / "start-hook.sh").write_text(inner)
    os.chmod(busybox_rootfs / "start-hook.sh", 0o755)

    def mutate(spec):
        spec["hooks"] = {p: [{"path": str(hook), "args": ["hook.sh", p], "env": ["HOOK_ENV=yes"]}]
                         for p in PHASES if p != "startContainer"}
        spec["hooks"]["startContainer"] = [{"path": "/start-hook.sh"}]
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "cat /tmp/start-hook"], mutate)
    try:
        out = runtime("run", "--bundle", b, cid).stdout
    finally:
        os.unlink(busybox_rootfs / "start-hook.sh")
    assert out.strip() == "startContainer-ran"
    lines = log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    for line in lines:
        phase, env, state = line.split(" ", 2)
        st = json.loads(state)
        assert env == "yes" and st["id"] == cid and st["bundle"] == str(b) and st["ociVersion"]
        assert st["status"] == {"prestart": "created", "createRuntime": "created", "createContainer": "created",
                                "poststart": "running", "poststop": "stopped"}[phase]
        if phase != "poststop":
            assert st["pid"] > 0


def test_failing_prestart_hook_aborts_create_and_cleans_up(runtime, tmp_path, busybox_rootfs):
    def mutate(spec):
        spec["hooks"] = {"prestart": [{"path": "/bin/false"}]}
    b = make_bundle(tmp_path, busybox_rootfs, ["true"], mutate)
    r = runtime("create", "--bundle", b, unique_id(), check=False)
    assert r.returncode == 1 and "prestart hook" in r.stderr and "Traceback" not in r.stderr
    assert runtime.ids() == []


def test_preserve_fds_and_listen_fds(runtime, tmp_path, busybox_rootfs):
    (tmp_path / "three").write_text("three\n")
    (tmp_path / "four").write_text("four\n")
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "cat <&3; cat <&4 2>/dev/null || echo no-fd-4"])
    # fds 3 and 4 are open in hull-runtime, but only one is preserved: fd 4 must not reach the container
    cmd = f'exec "$0" --root "$1" run --preserve-fds 1 --bundle "$2" "$3" 3<{tmp_path}/three 4<{tmp_path}/four'
    out = subprocess.run(["sh", "-c", cmd, str(BIN), runtime.root, str(b), unique_id()],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["three", "no-fd-4"], out.stderr


def test_listen_fds_passed_like_systemd(runtime, tmp_path, busybox_rootfs):
    (tmp_path / "sock").write_text("listen\n")
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; cat <&3"])
    cmd = f'LISTEN_FDS=1 exec "$0" --root "$1" run --bundle "$2" "$3" 3<{tmp_path}/sock'
    out = subprocess.run(["sh", "-c", cmd, str(BIN), runtime.root, str(b), unique_id()],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["1", "1", "listen"], out.stderr


def test_no_pivot(runtime, tmp_path, busybox_rootfs):
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "ls /; cat /proc/self/mountinfo | wc -l"])
    out = runtime("run", "--no-pivot", "--bundle", b, unique_id()).stdout
    assert "bin" in out.split() and "etc" in out.split()


def test_linux_devices_created(runtime, tmp_path, busybox_rootfs):
    def mutate(spec):
        spec["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                     "fileMode": 0o640, "uid": 0, "gid": 0}]
        spec["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"})
    b = make_bundle(tmp_path, busybox_rootfs, ["stat", "-c", "%F %t:%T %a", "/dev/fuse"], mutate)
    out = runtime("run", "--bundle", b, unique_id()).stdout.strip()
    assert out == "character special file a:e5 640"


def test_tmpcopyup_keeps_image_content(runtime, tmp_path, fresh_rootfs):
    (fresh_rootfs / "data").mkdir()
    (fresh_rootfs / "data/seed").write_text("from image\n")

    def mutate(spec):
        spec["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                               "options": ["tmpcopyup", "mode=755"]})
    b = make_bundle(tmp_path, fresh_rootfs, ["sh", "-c", "cat /data/seed; echo new > /data/new; grep ' /data ' /proc/mounts | cut -d' ' -f3"], mutate)
    out = runtime("run", "--bundle", b, unique_id()).stdout.split()
    assert out == ["from", "image", "tmpfs"]
    assert not (fresh_rootfs / "data/new").exists()


def test_rootfs_propagation_private(runtime, tmp_path, busybox_rootfs):
    def mutate(spec):
        spec["linux"]["rootfsPropagation"] = "private"
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"], mutate)
    line = runtime("run", "--bundle", b, unique_id()).stdout
    assert line.strip() and "shared:" not in line and "master:" not in line


def test_spec_writes_runc_like_config(tmp_path, runtime):
    r = runtime("spec", "--bundle", tmp_path)
    spec = json.loads((tmp_path / "config.json").read_text())
    assert spec["process"]["args"] == ["sh"] and spec["root"]["path"] == "rootfs"
    assert {n["type"] for n in spec["linux"]["namespaces"]} >= {"pid", "network", "ipc", "uts", "mount"}
    again = runtime("spec", "--bundle", tmp_path, check=False)
    assert again.returncode == 1 and "exists" in again.stderr
    rootless = tmp_path / "rl"
    rootless.mkdir()
    runtime("spec", "--rootless", "--bundle", rootless)
    spec = json.loads((rootless / "config.json").read_text())
    assert spec["linux"]["uidMappings"] and any(n["type"] == "user" for n in spec["linux"]["namespaces"])
    assert r.returncode == 0


def test_features_is_honest(runtime):
    f = json.loads(runtime("features").stdout)
    assert set(f["linux"]["namespaces"]) == {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}
    assert "CAP_SYS_ADMIN" in f["linux"]["capabilities"]
    assert f["linux"]["cgroup"]["v1"] is True  # this host is hybrid
    assert f["linux"]["apparmor"]["enabled"] is False and f["linux"]["selinux"]["enabled"] is False
    assert "SCMP_ACT_NOTIFY" in f["linux"]["seccomp"]["actions"]
    assert "rbind" in f["mountOptions"] and "tmpcopyup" in f["mountOptions"]
    assert "createContainer" in f["hooks"]


def test_version(runtime):
    out = runtime("--version").stdout
    assert out.startswith("hull-runtime version ") and "spec: 1." in out


def test_new_session_keyring(runtime, tmp_path, busybox_rootfs):
    b2 = make_bundle(tmp_path, busybox_rootfs, ["sleep", "30"])
    cid2 = unique_id()
    runtime("run", "--detach", "--bundle", b2, cid2)
    try:
        with open("/proc/keys") as f:
            assert any(f"_ses.{cid2}" in line for line in f)
    finally:
        runtime("delete", "--force", cid2)


def test_run_with_terminal_and_no_console_socket(runtime, tmp_path, busybox_rootfs):
    """runc run with terminal:true proxies its own tty to the container's pty."""
    import pty
    import time
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "tty; read x; echo got-$x; exit 5"], terminal=True)
    pid, master = pty.fork()
    if pid == 0:
        os.execv(str(BIN), [str(BIN), "--root", runtime.root, "run", "--bundle", str(b), unique_id()])
    buf = b""
    try:
        deadline = time.monotonic() + 20
        sent = False
        while time.monotonic() < deadline:
            if not sent and b"/dev/pts/0" in buf:
                os.write(master, b"hello\r")
                sent = True
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    assert b"/dev/pts/0" in buf and b"got-hello" in buf, buf
    assert os.waitstatus_to_exitcode(status) == 5
