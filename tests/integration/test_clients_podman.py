"""podman drives hull-runtime: `podman --runtime hull-runtime run …` through conmon.

podman's storage (--root/--runroot/--tmpdir) lives in a temp dir; its cgroups (conmon's and the
containers') under /hull-test-podman-<random> with the cgroupfs manager. hull-runtime keeps its
state in its default root (/run/hull-runtime): podman's `--runtime-flag root=…` is not passed on
to `podman container cleanup`, which conmon runs and which deletes the container, so a private
root would leave the state behind. The test checks that each container's state dir is gone.

The image is imported from the busybox rootfs (`podman import`). podman's default rlimits need
CAP_SYS_RESOURCE, which root lacks here (HOST-NOTES), hence the --ulimit flags.
"""

import os
import subprocess
import tarfile

import pytest
from client_helpers import (HULL_RUNTIME, CgroupParent, mounts_under, need, pty_session, run,
                            short_tmpdir, state_dirs)

IMAGE = "localhost/hull-busybox:test"
RUNTIME_ROOT = "/run/hull-runtime"


class Podman:
    def __init__(self, exe, tmp, cgroup):
        self.tmp = tmp
        self.cgroup = cgroup
        self.ids = []
        self.base = [exe, "--root", tmp / "root", "--runroot", tmp / "runroot", "--tmpdir", tmp / "tmp",
                     "--network-config-dir", tmp / "net", "--volumepath", tmp / "volumes",
                     "--runtime", HULL_RUNTIME, "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                     "--storage-driver", "overlay"]
        self.run_flags = ["--network", "none", "--cgroup-parent", cgroup.path,
                          "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
        self.env = dict(os.environ, CONTAINERS_REGISTRIES_CONF=str(tmp / "registries.conf"))
        (tmp / "registries.conf").write_text("unqualified-search-registries = []\n")

    def cmd(self, *args):
        return [*self.base, *args]

    def __call__(self, *args, check=True, **kw):
        return run(self.cmd(*args), check=check, env=self.env, **kw)

    def run_container(self, *args, check=True):
        return self("run", *self.run_flags, *args, check=check)

    def track(self, name):
        cid = self("inspect", "--format", "{{.Id}}", name).stdout.strip()
        self.ids.append(cid)
        return cid


@pytest.fixture(scope="module")
def podman(busybox_rootfs):
    exe, _ = need("podman", "conmon")
    tmp = short_tmpdir("hull-podman-")
    cgroup = CgroupParent("podman")
    p = Podman(exe, tmp, cgroup)
    try:
        tar = tmp / "busybox.tar"
        with tarfile.open(tar, "w") as t:
            t.add(busybox_rootfs, arcname=".")
        p("import", tar, IMAGE)
        yield p
    finally:
        p("rm", "--all", "--force", "--time", "0", check=False)
        leftover_state = [c for c in p.ids if c in state_dirs(RUNTIME_ROOT)]
        leftover_cgroups = cgroup.children(ignore=("conmon",))  # conmon's is podman's, not ours
        p("system", "reset", "--force", check=False)  # unmounts podman's storage
        mounts = mounts_under(tmp)
        still = cgroup.remove()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
        assert not leftover_state, f"hull-runtime state left in {RUNTIME_ROOT}: {leftover_state}"
        assert not leftover_cgroups, f"cgroups left under {cgroup.path}: {leftover_cgroups}"
        assert not mounts, f"mounts left: {mounts}"
        assert not still, f"could not remove {still}"


def test_run_exit_code_pid1_hostname(podman):
    r = podman.run_container("--rm", "--hostname", "hullpod", IMAGE,
                             "sh", "-c", "echo pid=$$; hostname; exit 7", check=False)
    assert r.returncode == 7, r.stderr
    assert r.stdout.split() == ["pid=1", "hullpod"]


def test_run_stdin_pipe_passthrough(podman):
    r = subprocess.run([str(a) for a in podman.cmd("run", *podman.run_flags, "--rm", "-i", IMAGE,
                                                   "sh", "-c", "tr a-z A-Z; echo err >&2")],
                       input=b"through a pipe\n", capture_output=True, env=podman.env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"THROUGH A PIPE\n" and b"err" in r.stderr


def test_interactive_tty_through_conmon(podman):
    out, code = pty_session(podman.cmd("run", *podman.run_flags, "--rm", "-it", IMAGE, "sh"),
                            b"tty; echo PID=$$; exit 3\r", b"PID=1", env=podman.env)
    assert b"/dev/pts/0" in out and b"PID=1" in out, out
    assert code == 3


def test_exec_memory_limit_and_stop(podman):
    podman.run_container("-d", "--name", "c-exec", "--memory", "64m", IMAGE,
                         "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
    cid = podman.track("c-exec")
    r = podman("exec", "c-exec", "sh", "-c",
               "echo pid=$$; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; readlink /proc/1/ns/pid")
    lines = r.stdout.split()
    assert lines[0] != "pid=1" and lines[1] == str(64 * 1024 * 1024)
    assert lines[2] != os.readlink("/proc/self/ns/pid")
    assert podman("exec", "c-exec", "sh", "-c", "exit 5", check=False).returncode == 5
    # the container's cgroup is under our parent, with the limit set
    cg = f"/sys/fs/cgroup/memory{podman.cgroup.path}/libpod-{cid}/memory.limit_in_bytes"
    assert open(cg).read().strip() == str(64 * 1024 * 1024)
    podman("stop", "--time", "20", "c-exec")
    assert podman("inspect", "--format", "{{.State.ExitCode}}", "c-exec").stdout.strip() == "0"
    podman("rm", "c-exec")
    assert cid not in state_dirs(RUNTIME_ROOT)


def test_kill_reports_signal_exit(podman):
    podman.run_container("-d", "--name", "c-kill", IMAGE, "sleep", "300")
    cid = podman.track("c-kill")
    podman("kill", "c-kill")
    assert podman("wait", "c-kill").stdout.strip() == "137"
    podman("rm", "c-kill")
    assert cid not in state_dirs(RUNTIME_ROOT)
