"""The runc contract as podman/conmon, containerd's shim and dockerd rely on it (issue 5 item 1):
log lines, error wording and statuses, kill after exit, delete idempotence, exec --process with
a console socket, ps/state/features output, update from stdin, pid files, reparenting of the
init to a subreaper, stdio handed through untouched, seccomp without no_new_privs."""

import json
import os
import subprocess
import sys
import time

from runtime_util import BIN, console_listener, make_bundle, read_until, unique_id

SLEEP = ["sleep", "300"]


def wait_status(runtime, cid, status, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runtime.state(cid)["status"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} never reached {status}: {runtime.state(cid)}")


def test_json_log_lines_for_every_error(runtime, tmp_path):
    """containerd reads the last "error" line of --log; every line is one JSON object."""
    log = tmp_path / "log.json"
    for args in (["state", "nope"], ["kill", "nope", "KILL"], ["delete", "nope"], ["exec", "nope", "true"]):
        r = runtime("--log", log, "--log-format", "json", *args, check=False)
        assert r.returncode != 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 4
    for entry in lines:
        assert set(entry) >= {"level", "msg", "time"} and entry["level"] == "error"
        assert "does not exist" in entry["msg"]
        assert entry["time"].endswith("Z") and "T" in entry["time"]
    assert lines[-1]["msg"].startswith("exec failed: ")


def test_state_through_the_lifecycle_and_kill_after_exit(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, SLEEP)
    runtime("create", "--bundle", b, cid)
    assert runtime.state(cid)["status"] == "created"
    runtime("start", cid)
    st = runtime.state(cid)
    assert st["status"] == "running" and st["pid"] > 0
    runtime("pause", cid)
    assert runtime.state(cid)["status"] == "paused"
    r = runtime("exec", cid, "true", check=False)
    assert r.returncode == 255 and "cannot exec in a paused container" in r.stderr
    runtime("resume", cid)
    r = runtime("resume", cid, check=False)
    assert r.returncode == 1 and "container not paused" in r.stderr
    runtime("kill", cid, "KILL")
    wait_status(runtime, cid, "stopped")
    assert runtime.state(cid)["pid"] == 0
    # kill after exit: runc's error, which containerd maps to "not found"
    r = runtime("kill", cid, "TERM", check=False)
    assert r.returncode == 1 and "container not running" in r.stderr
    assert runtime("kill", "--all", cid, "KILL", check=False).returncode == 0
    r = runtime("start", cid, check=False)
    assert r.returncode == 1 and "cannot start a container that has stopped" in r.stderr
    r = runtime("exec", cid, "true", check=False)
    assert r.returncode == 255 and "exec failed: cannot exec in a stopped container" in r.stderr
    runtime("delete", cid)


def test_delete_is_idempotent_with_force(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, SLEEP)
    runtime("create", "--bundle", b, cid)
    runtime("delete", cid)  # a created container is deleted without --force, as by runc
    runtime("run", "--detach", "--bundle", b, cid)
    r = runtime("delete", cid, check=False)
    assert r.returncode == 1 and f"cannot delete container {cid} that is not stopped: running" in r.stderr
    runtime("delete", "--force", cid)
    r = runtime("delete", cid, check=False)
    assert r.returncode == 1 and "does not exist" in r.stderr
    assert runtime("delete", "--force", cid).returncode == 0
    assert runtime("delete", "--force", cid).returncode == 0


def test_bad_input_wording_and_status(runtime, tmp_path, busybox_rootfs):
    r = runtime("kill", "--no-such-flag", "x", check=False)
    assert r.returncode == 1 and "flag provided but not defined" in r.stderr
    r = runtime("frobnicate", check=False)
    assert r.returncode == 3 and "No help topic for 'frobnicate'" in r.stderr
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, SLEEP)
    runtime("run", "--detach", "--bundle", b, cid)
    try:
        for sig in ("SIGKLL", "KLL", "99", "RTMIN+99"):
            r = runtime("kill", cid, sig, check=False)
            assert r.returncode == 1 and f'unknown signal "{sig}"' in r.stderr, r.stderr
        for sig in ("CONT", "SIGCONT", "cont", "18"):  # the forms runc accepts; harmless to sleep
            runtime("kill", cid, sig)
        assert runtime.state(cid)["status"] == "running"
    finally:
        runtime("delete", "--force", cid)


def test_exec_process_json_with_console_socket(runtime, tmp_path, busybox_rootfs):
    """What conmon does for `podman exec -it`: --process FILE --console-socket S --detach
    --pid-file P; the master arrives on the socket, the pid file exists when exec returns."""
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, SLEEP)
    runtime("run", "--detach", "--bundle", b, cid)
    try:
        proc = {"terminal": True, "consoleSize": {"height": 30, "width": 100},
                "user": {"uid": 0, "gid": 0}, "cwd": "/tmp",
                "args": ["sh", "-c", "tty; stty size; pwd; echo $HULLX; read x; echo got-$x"],
                "env": ["PATH=/bin:/usr/bin", "HULLX=from-process-json"]}
        (tmp_path / "process.json").write_text(json.dumps(proc))
        sock = tmp_path / "exec.sock"
        result = {}
        t = console_listener(sock, result)
        pidfile = tmp_path / "exec.pid"
        runtime("exec", "--process", tmp_path / "process.json", "--console-socket", sock,
                "--detach", "--pid-file", pidfile, cid)
        t.join(20)
        pid = int(pidfile.read_text())
        assert pid > 0 and pid != runtime.state(cid)["pid"]
        master = result["master"]
        try:
            out = read_until(master, b"from-process-json")
            assert b"/dev/pts/" in out and b"30 100" in out and b"/tmp" in out, out
            os.write(master, b"yes\n")
            assert b"got-yes" in read_until(master, b"got-yes")
        finally:
            os.close(master)
    finally:
        runtime("delete", "--force", cid)


def test_ps_json_and_features_and_version(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "sleep 300 & wait"])
    runtime("run", "--detach", "--bundle", b, cid)
    try:
        pids = json.loads(runtime("ps", "--format", "json", cid).stdout)
        assert isinstance(pids, list) and all(isinstance(p, int) for p in pids)
        assert runtime.state(cid)["pid"] in pids and len(pids) == 2
    finally:
        runtime("delete", "--force", cid)
    feats = json.loads(runtime("features").stdout)
    assert feats["ociVersionMin"] and feats["ociVersionMax"]
    assert "user" in feats["linux"]["namespaces"] and "CAP_SYS_ADMIN" in feats["linux"]["capabilities"]
    assert "bind" in feats["mountOptions"] or "rbind" in feats["mountOptions"]
    out = runtime("--version").stdout
    assert out.startswith("hull-runtime version ") and "\nspec: " in out


def test_update_resources_from_stdin(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, SLEEP)
    runtime("run", "--detach", "--bundle", b, cid)
    try:
        res = json.dumps({"memory": {"limit": 48 * 1024 * 1024}, "pids": {"limit": 33}})
        r = subprocess.run(runtime.cmd("update", "--resources", "-", cid), input=res.encode(),
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        cg = runtime.state(cid).get("cgroupPath") or json.loads(
            (open(os.path.join(runtime.root, cid, "state.json")).read()))["cgroupPath"]
        assert open(f"/sys/fs/cgroup/memory{cg}/memory.limit_in_bytes").read().strip() == str(48 << 20)
        assert open(f"/sys/fs/cgroup/pids{cg}/pids.max").read().strip() == "33"
        r = subprocess.run(runtime.cmd("update", "--resources", "-", cid), input=b"{not json",
                           capture_output=True, timeout=30)
        assert r.returncode == 1 and b"Traceback" not in r.stderr
    finally:
        runtime("delete", "--force", cid)


def test_pid_file_relative_and_written_before_create_returns(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, SLEEP)
    workdir = tmp_path / "work"
    workdir.mkdir()
    # conmon and the shim pass absolute paths; runc also resolves a relative one against its cwd
    runtime("create", "--bundle", b, "--pid-file", "init.pid", cid, cwd=workdir)
    try:
        pid = int((workdir / "init.pid").read_text())
        assert pid == runtime.state(cid)["pid"]
        with open(f"/proc/{pid}/status") as f:
            assert any(line.split() == ["State:", "S", "(sleeping)"] for line in f)
    finally:
        runtime("delete", "--force", cid)


SUBREAPER = r"""
import ctypes, json, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(36, 1, 0, 0, 0) == 0          # PR_SET_CHILD_SUBREAPER, as conmon/the shim do
rt, root, bundle, cid, pidfile = sys.argv[1:]
subprocess.run([rt, "--root", root, "create", "--bundle", bundle, "--pid-file", pidfile, cid],
               check=True, stdin=subprocess.DEVNULL)
pid = int(open(pidfile).read())
ppid = int([l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("PPid:")][0])
subprocess.run([rt, "--root", root, "start", cid], check=True)
_, status = os.waitpid(pid, 0)                  # the init is our child now: we get its status
print(json.dumps({"me": os.getpid(), "ppid": ppid, "code": os.waitstatus_to_exitcode(status)}))
"""


def test_init_reparented_to_the_subreaper_that_called_create(runtime, tmp_path, busybox_rootfs):
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "sleep 0.2; exit 7"])
    r = subprocess.run([sys.executable, "-c", SUBREAPER, str(BIN), runtime.root, str(b), cid,
                        str(tmp_path / "pid")], capture_output=True, text=True, timeout=60)
    runtime("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ppid"] == out["me"] and out["code"] == 7


def test_stdio_pipes_and_fifos_passed_through_untouched(runtime, tmp_path, busybox_rootfs):
    """Clients hand the init pipes (conmon, dockerd) or fifos (containerd): the container's fds
    0/1/2 must be those very objects, and data must flow both ways after `create` returns."""
    cid = unique_id()
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "read line; echo got-$line; echo err-$line >&2"])
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    wfd = os.open(fifo, os.O_WRONLY)
    in_r, in_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        p = subprocess.run(runtime.cmd("create", "--bundle", b, cid), stdin=in_r, stdout=wfd,
                           stderr=err_w, timeout=60)
        assert p.returncode == 0
        for fd in (in_r, wfd, err_w):
            os.close(fd)
        in_r = wfd = err_w = None
        pid = runtime.state(cid)["pid"]
        assert os.readlink(f"/proc/{pid}/fd/0") == f"pipe:[{os.fstat(in_w).st_ino}]"
        assert os.stat(f"/proc/{pid}/fd/1").st_ino == os.stat(fifo).st_ino
        assert os.readlink(f"/proc/{pid}/fd/2") == f"pipe:[{os.fstat(err_r).st_ino}]"
        runtime("start", cid)
        os.write(in_w, b"hello\n")
        os.close(in_w)
        in_w = None
        os.set_blocking(rfd, True)
        assert _read_all(rfd) == b"got-hello\n"
        assert _read_all(err_r) == b"err-hello\n"
        wait_status(runtime, cid, "stopped")
    finally:
        for fd in (in_r, in_w, wfd, err_w, rfd, err_r):
            if fd is not None:
                os.close(fd)
        runtime("delete", "--force", cid)


def _read_all(fd):
    buf = b""
    while True:
        data = os.read(fd, 4096)
        if not data:
            return buf
        buf += data


def test_seccomp_without_no_new_privs_as_non_root(runtime, tmp_path, busybox_rootfs):
    """podman's and dockerd's default: a seccomp profile, noNewPrivileges false, capabilities
    without CAP_SYS_ADMIN. Loading the filter needs CAP_SYS_ADMIN then, so it must go in before
    the capabilities are dropped (runc's order)."""
    from hull.runtime.spec_default import default_spec

    def mutate(spec):
        full = default_spec(terminal=False, with_docker_seccomp=True)
        spec["linux"]["seccomp"] = full["linux"]["seccomp"]
        spec["process"]["noNewPrivileges"] = False
        spec["process"]["user"] = {"uid": 1000, "gid": 1000}
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "id -u; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"],
                    mutate)
    r = runtime("run", "--bundle", b, unique_id(), check=False)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "1000"
    assert "NoNewPrivs:\t0" in r.stdout and "Seccomp:\t2" in r.stdout


def test_rootfs_propagation_modes(runtime, tmp_path, busybox_rootfs):
    """linux.rootfsPropagation (CRI sets rshared for Bidirectional mounts): pivot_root refuses a
    shared new root, so the mode is given to the container's / after pivot_root."""
    # slave: a slave of a private mount is private, so only "not shared" can be asserted
    want = {"shared": "shared:", "rshared": "shared:", "slave": None, "private": None,
            "unbindable": "unbindable"}
    for mode, tag in want.items():
        b = make_bundle(tmp_path, busybox_rootfs, ["cat", "/proc/self/mountinfo"],
                        lambda s: s["linux"].update(rootfsPropagation=mode))
        out = runtime("run", "--bundle", b, unique_id()).stdout
        root = next(line.split() for line in out.splitlines() if line.split()[4] == "/")
        optional = root[6:root.index("-")]
        if tag is None:
            assert not any(o.startswith("shared:") for o in optional), (mode, root)
        else:
            assert any(o.startswith(tag) for o in optional), (mode, root)


def test_fifo_and_unbuffered_char_devices(runtime, tmp_path, busybox_rootfs):
    """linux.devices may list fifos ("p") and "u" char devices: a fifo needs no device-cgroup
    rule (runc adds none), "u" is a char device to the cgroup."""
    def mutate(spec):
        spec["linux"]["devices"] = [
            {"path": "/dev/testfifo", "type": "p", "fileMode": 0o666, "uid": 0, "gid": 0},
            {"path": "/dev/testu", "type": "u", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0}]
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "[ -p /dev/testfifo ] && [ -c /dev/testu ] && echo ok"],
                    mutate)
    assert runtime("run", "--bundle", b, unique_id()).stdout.strip() == "ok"
