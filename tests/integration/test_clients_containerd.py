"""containerd drives hull-runtime through its runc shim (io.containerd.runc.v2) — the path
Kubernetes takes. `ctr run --runc-binary hull-runtime` sets the shim's `BinaryName` option, the
same option the CRI plugin sets from `runtimes.<name>.options.BinaryName` (docs/kubernetes.md).

A private containerd (root, state, sockets in a temp dir; CRI plugin off) pulls the busybox
image from a local docker-registry on 127.0.0.1, where `hull push` put it. Containers live in
the namespace `hull-test-ctr` with cgroups under /hull-test-ctr-<random>/<id>; the shim keeps
hull-runtime's state in a temp `--runc-root`.
"""

import os
import time

import pytest
from client_helpers import (CgroupParent, Daemon, HULL_RUNTIME, busybox_image, hull, need,
                            pty_session, release_private_dir, run, short_tmpdir, state_dirs)
from image_helpers import Registry

NAMESPACE = "hull-test-ctr"
CGROUP_MOUNT = "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:nodev:noexec"

CONFIG = """version = 2
root = "{tmp}/root"
state = "{tmp}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{tmp}/c.sock"
[ttrpc]
  address = "{tmp}/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"""


class Ctr:
    def __init__(self, exe, tmp, image, cgroup):
        self.exe, self.tmp, self.image, self.cgroup = exe, tmp, image, cgroup
        self.runc_root = tmp / "runc"
        self.base = [exe, "--address", tmp / "c.sock", "--namespace", NAMESPACE]
        self.shim = ["--runc-binary", HULL_RUNTIME, "--runc-root", self.runc_root,
                     "--fifo-dir", tmp / "fifo"]

    def cmd(self, *args):
        return [*self.base, *args]

    def __call__(self, *args, check=True, **kw):
        return run(self.cmd(*args), check=check, **kw)

    def run_flags(self, cid):
        return [*self.shim, "--cgroup", f"{self.cgroup.path}/{cid}"]

    def wait_stopped(self, cid, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self("task", "ls").stdout.splitlines()[1:]:
                f = line.split()
                if f and f[0] == cid and f[-1] == "STOPPED":
                    return
            time.sleep(0.1)
        raise AssertionError(f"task {cid} did not stop")

    def remove(self, cid):
        self("task", "rm", "--force", cid, check=False)
        self("container", "rm", cid, check=False)


@pytest.fixture(scope="module")
def ctr(tmp_path_factory):
    containerd, exe = need("containerd", "ctr")
    need("containerd-shim-runc-v2")
    tmp = short_tmpdir("hull-ctr-")
    cgroup = CgroupParent("ctr")
    had_run_containerd = os.path.exists("/run/containerd")
    registry = Registry(tmp_path_factory.mktemp("ctr-registry"))
    daemon = None
    try:
        env = busybox_image(tmp_path_factory.mktemp("ctr-image"))
        image = f"{registry.host}/hull/busybox:test"
        hull("push", "-q", "--insecure", "busybox", image, env=env)
        (tmp / "config.toml").write_text(CONFIG.format(tmp=tmp))
        daemon = Daemon([containerd, "--config", tmp / "config.toml"], tmp / "containerd.log",
                        ready=lambda: os.path.exists(tmp / "c.sock") and
                        run([exe, "--address", tmp / "c.sock", "version"], check=False).returncode == 0)
        c = Ctr(exe, tmp, image, cgroup)
        c("images", "pull", "--plain-http", image)
        yield c
    finally:
        leftover_state = state_dirs(tmp / "runc" / NAMESPACE) + state_dirs(tmp / "runc")
        leftover_state = [d for d in leftover_state if d != NAMESPACE]
        leftover_cgroups = cgroup.children()
        if daemon:
            daemon.stop()
        registry.stop()
        mounts, still = release_private_dir(tmp, cgroup, had_run_containerd)
        assert not leftover_state, f"hull-runtime state left: {leftover_state}"
        assert not leftover_cgroups, f"cgroups left under {cgroup.path}: {leftover_cgroups}"
        assert not mounts, f"mounts left: {mounts}"
        assert not still, f"could not remove {still}"


def test_run_rm_exit_code_pid1_memory(ctr):
    r = ctr("run", "--rm", *ctr.run_flags("c-run"), "--memory-limit", str(64 * 1024 * 1024),
            "--mount", CGROUP_MOUNT, ctr.image, "c-run", "sh", "-c",
            "echo pid=$$; readlink /proc/self/ns/pid; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; exit 4",
            check=False)
    assert r.returncode == 4, r.stderr
    pid, ns, limit = r.stdout.split()
    assert pid == "pid=1" and ns != os.readlink("/proc/self/ns/pid")
    assert limit == str(64 * 1024 * 1024)
    assert ctr.cgroup.children() == [] and state_dirs(ctr.runc_root / NAMESPACE) == []


def test_exec_ps_pause_kill(ctr):
    cid = "c-exec"
    try:
        ctr("run", "-d", *ctr.run_flags(cid), ctr.image, cid, "sleep", "300")
        r = ctr("task", "exec", "--exec-id", "e1", "--fifo-dir", ctr.tmp / "fifo", cid,
                "sh", "-c", "echo pid=$$; exit 5", check=False)
        assert r.returncode == 5, r.stderr
        assert r.stdout.startswith("pid=") and r.stdout.split() != ["pid=1"]
        # `ctr task ps` asks the runtime: hull-runtime ps --format json
        pids = [line.split()[0] for line in ctr("task", "ps", cid).stdout.splitlines()[1:]]
        assert len(pids) == 1 and pids[0].isdigit()
        ctr("task", "pause", cid)
        assert "PAUSED" in ctr("task", "ls").stdout
        ctr("task", "resume", cid)
        ctr("task", "kill", "--signal", "SIGKILL", cid)
        ctr.wait_stopped(cid)
        assert state_dirs(ctr.runc_root / NAMESPACE) == [cid]  # until the task is deleted
    finally:
        ctr.remove(cid)
    assert state_dirs(ctr.runc_root / NAMESPACE) == []
    assert ctr.cgroup.children() == []


def test_tty(ctr):
    out, code = pty_session(ctr.cmd("run", "--rm", "-t", *ctr.run_flags("c-tty"), ctr.image, "c-tty", "sh"),
                            b"tty; echo PID=$$; exit 3\r", b"PID=1")
    assert b"/dev/pts/0" in out and b"PID=1" in out, out
    assert code == 3
