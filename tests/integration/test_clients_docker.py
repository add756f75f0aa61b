"""dockerd drives hull-runtime: `runtimes: {"hull": {"path": hull-runtime}}` in its config,
`docker run --runtime hull …`.

A private dockerd (--data-root, --exec-root, socket in a temp dir; it starts its own containerd
there) that changes no host network state: no bridge, no iptables, no ip forwarding. Its
cgroups go under /hull-test-docker-<random> (cgroupfs driver, `cgroup-parent`). The image is
`hull save`d from the busybox image hull bootstraps, and `docker load`ed.
"""

import os

import pytest
from client_helpers import (CgroupParent, busybox_image, hull, need, private_dockerd, pty_session,
                            release_private_dir, run, short_tmpdir, state_dirs)

IMAGE = "busybox:latest"


class Docker:
    def __init__(self, exe, tmp, cgroup):
        self.tmp, self.cgroup = tmp, cgroup
        self.base = [exe, "-H", f"unix://{tmp}/docker.sock"]
        self.env = dict(os.environ, DOCKER_CONFIG=str(tmp / "client"))
        self.run_flags = ["--runtime", "hull", "--network", "none"]

    def cmd(self, *args):
        return [*self.base, *args]

    def __call__(self, *args, check=True, **kw):
        return run(self.cmd(*args), check=check, env=self.env, **kw)

    def run_container(self, *args, check=True):
        return self("run", *self.run_flags, *args, check=check)

    def runtime_states(self):
        """hull-runtime's state dirs: dockerd hands the shim a root under its exec-root."""
        found = []
        for top in ("runtime-hull", "runtime-runc"):
            base = self.tmp / "exec" / top
            if base.is_dir():
                for ns in os.listdir(base):
                    found += state_dirs(base / ns)
        return found


@pytest.fixture(scope="module")
def docker(tmp_path_factory):
    dockerd, = need("dockerd")
    exe = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else need("docker")[0]
    tmp = short_tmpdir("hull-docker-")
    cgroup = CgroupParent("docker")
    had_run_containerd = os.path.exists("/run/containerd")
    d = Docker(exe, tmp, cgroup)
    daemon = None
    try:
        env = busybox_image(tmp_path_factory.mktemp("docker-image"))
        hull("save", "-o", tmp / "busybox.tar", "busybox", env=env)
        daemon = private_dockerd(dockerd, tmp, cgroup, d.cmd("version"), d.env)
        d("load", "-i", tmp / "busybox.tar")
        yield d
    finally:
        if daemon:
            d("rm", "--force", *d("ps", "-aq", check=False).stdout.split(), check=False)
        leftover_state = d.runtime_states()
        leftover_cgroups = cgroup.children()
        if daemon:
            daemon.stop()
        mounts, still = release_private_dir(tmp, cgroup, had_run_containerd)
        assert not leftover_state, f"hull-runtime state left: {leftover_state}"
        assert not leftover_cgroups, f"cgroups left under {cgroup.path}: {leftover_cgroups}"
        assert not mounts, f"mounts left: {mounts}"
        assert not still, f"could not remove {still}"


def test_run_exit_code_pid1_hostname(docker):
    r = docker.run_container("--rm", "--hostname", "hulldock", IMAGE,
                             "sh", "-c", "echo pid=$$; hostname; exit 6", check=False)
    assert r.returncode == 6, r.stderr
    assert r.stdout.split() == ["pid=1", "hulldock"]


def test_interactive_tty(docker):
    out, code = pty_session(docker.cmd("run", *docker.run_flags, "--rm", "-it", IMAGE, "sh"),
                            b"tty; echo PID=$$; exit 3\r", b"PID=1", env=docker.env)
    assert b"/dev/pts/0" in out and b"PID=1" in out, out
    assert code == 3


def test_exec_memory_pids_limit_stop(docker):
    docker.run_container("-d", "--name", "c-exec", "--memory", "64m", "--pids-limit", "20", IMAGE,
                         "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
    r = docker("exec", "c-exec", "sh", "-c", "echo pid=$$; cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
               "/sys/fs/cgroup/pids/pids.max")
    pid, limit, pids_max = r.stdout.split()
    assert pid != "pid=1" and limit == str(64 * 1024 * 1024) and pids_max == "20"
    assert docker("exec", "c-exec", "sh", "-c", "exit 9", check=False).returncode == 9
    # the pids limit holds: 30 background sleeps cannot all start
    r = docker("exec", "c-exec", "sh", "-c", "for i in $(seq 30); do sleep 2 & done; wait", check=False)
    assert "can't fork" in r.stderr + r.stdout
    docker("stop", "--time", "20", "c-exec")
    assert docker("inspect", "--format", "{{.State.ExitCode}}", "c-exec").stdout.strip() == "0"
    docker("rm", "c-exec")
    assert docker.runtime_states() == []


def test_kill_exit_137(docker):
    docker.run_container("-d", "--name", "c-kill", IMAGE, "sleep", "300")
    docker("kill", "c-kill")
    assert docker("wait", "c-kill").stdout.strip() == "137"
    docker("rm", "c-kill")
    assert docker.runtime_states() == []
