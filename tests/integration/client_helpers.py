"""Helpers for the real-client tests (podman, containerd, dockerd driving hull-runtime).

Each client keeps its state in a temp dir and its cgroups under its own absolute parent
(`/hull-test-<client>-<random>`, never the caller's cgroup: HOST-NOTES). Daemons are started
and stopped by PID. Nothing here installs anything: a missing client binary skips its tests.
"""

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from runtime_util import BIN as HULL_RUNTIME  # noqa: F401 - re-exported for the client tests

CGROUP_FS = Path("/sys/fs/cgroup")
VENV_BIN = Path(HULL_RUNTIME).parent
HULL = str(VENV_BIN / "hull")


def need(*names):
    """Absolute paths of the binaries, or skip the module naming the missing one."""
    paths = []
    for name in names:
        path = name if os.path.isabs(name) else shutil.which(name)
        if not path or not os.path.exists(path):
            pytest.skip(f"{name} is not installed (apt-get install the packages in .ci/packages.txt)")
        paths.append(path)
    return paths


def short_tmpdir(prefix):
    """A short temp dir: daemons put unix sockets in it (108-byte sun_path limit)."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return Path(d)


class CgroupParent:
    """An absolute cgroup parent for one client, e.g. /hull-test-podman-1a2b3c. The client (and
    hull-runtime for the containers) create what is below it; `remove` deletes the parent and
    whatever empty dirs are left under it, in every hierarchy."""

    def __init__(self, client):
        self.name = f"hull-test-{client}-{uuid.uuid4().hex[:6]}"
        self.path = "/" + self.name

    def _tops(self):
        return [h / self.name for h in CGROUP_FS.iterdir() if (h / self.name).is_dir()] \
            if CGROUP_FS.is_dir() else []

    def children(self, ignore=()):
        """Sub-cgroups still under the parent (relative names), except `ignore`d top names."""
        found = set()
        for top in self._tops():
            for dirpath, dirnames, _ in os.walk(top):
                for d in dirnames:
                    rel = os.path.relpath(os.path.join(dirpath, d), top)
                    if rel.split("/")[0] not in ignore:
                        found.add(rel)
        return sorted(found)

    def remove(self):
        assert self.name.startswith("hull-test-") and "/" not in self.name
        for top in self._tops():
            for dirpath, dirnames, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                for d in dirnames:
                    _rmdir(os.path.join(dirpath, d))
            _rmdir(top)
        return self._tops()


def _rmdir(path):
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY while the last task is still exiting
            time.sleep(0.1)


def remove_empty_run_containerd():
    """containerd 1.6 puts shim sockets in /run/containerd/s whatever its config says; remove
    the empty dirs left there (call only when /run/containerd did not exist before)."""
    for dirpath, _, _ in sorted(os.walk("/run/containerd"), key=lambda w: -len(w[0])):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


def mounts_under(path):
    path = str(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        return [m for m in (line.split()[4] for line in f) if (m + "/").startswith(path)]


def state_dirs(root):
    """Container state dirs hull-runtime left in `root` (dot entries are caches)."""
    return sorted(n for n in os.listdir(root) if not n.startswith(".")) if os.path.isdir(root) else []


class Daemon:
    """A daemon we started, stopped by its PID (TERM, then KILL)."""

    def __init__(self, argv, log_path, ready, timeout=60, env=None):
        self.log_path = Path(log_path)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{argv[0]} did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def run(argv, check=True, timeout=120, **kw):
    """Run a client command; output goes through files (a detached container keeps the stdio
    it was given, so a pipe might never reach EOF)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        rc = subprocess.run([str(a) for a in argv], stdout=out, stderr=err, timeout=timeout,
                            stdin=kw.pop("stdin", subprocess.DEVNULL), **kw).returncode
        out.seek(0)
        err.seek(0)
        r = subprocess.CompletedProcess(argv, rc, out.read().decode(errors="replace"),
                                        err.read().decode(errors="replace"))
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def pty_session(argv, script, expect, prompt=b"# ", timeout=60, env=None):
    """Run `argv` on a real pty (as a terminal user would), wait for `prompt`, type `script`,
    read until `expect`. Returns (output bytes, exit code)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            if env is not None:
                os.execvpe(argv[0], [str(a) for a in argv], env)
            os.execvp(argv[0], [str(a) for a in argv])
        finally:
            os._exit(127)
    buf = b""

    def read_until(pattern):
        nonlocal buf
        deadline = time.monotonic() + timeout
        while pattern not in buf and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    return
                if not data:
                    return
                buf += data
    try:
        read_until(prompt)
        os.write(fd, script)
        read_until(expect)
        read_until(b"\x00never")  # drain until the client exits (EOF/EIO on the pty)
    finally:
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid:
                status = st
                break
            time.sleep(0.05)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return buf, os.waitstatus_to_exitcode(status)


def hull(*args, env):
    return run([HULL, *args], env=env)


def busybox_image(tmp, env_extra=None):
    """A private HULL_ROOT holding the `busybox` image built from the host's busybox-static
    (`hull image bootstrap busybox`). Returns the environment to run `hull` with."""
    if not os.path.exists(shutil.which("busybox") or "/bin/busybox"):
        pytest.skip("busybox-static is not installed")
    # HULL_ZYGOTE_IDLE: the zygote `hull` starts for this root exits soon after the test
    env = dict(os.environ, HULL_ROOT=str(Path(tmp) / "hullroot"),
               HULL_AUTH_FILE=str(Path(tmp) / "auth.json"), HULL_ZYGOTE_IDLE="5", **(env_extra or {}))
    hull("image", "bootstrap", "-q", "busybox", env=env)
    return env


def private_dockerd(dockerd, tmp, cgroup, version_cmd, env):
    """A dockerd of the tests' own: state, sockets and logs in `tmp`, cgroups under `cgroup`,
    hull-runtime as runtime `hull`, and no host network changes (no bridge, iptables or
    forwarding). Ready once `version_cmd` answers."""
    config = {
        "runtimes": {"hull": {"path": str(HULL_RUNTIME)}},
        "exec-opts": ["native.cgroupdriver=cgroupfs"], "cgroup-parent": cgroup.path,
        "bridge": "none", "iptables": False, "ip6tables": False, "ip-forward": False,
        "ip-masq": False, "userland-proxy": False, "storage-driver": "overlay2",
        "features": {"buildkit": False},
    }
    (tmp / "daemon.json").write_text(json.dumps(config))
    return Daemon([dockerd, "--config-file", tmp / "daemon.json", "--data-root", tmp / "data",
                   "--exec-root", tmp / "exec", "--pidfile", tmp / "docker.pid",
                   "-H", f"unix://{tmp}/docker.sock"], tmp / "dockerd.log",
                  ready=lambda: os.path.exists(tmp / "docker.sock") and
                  run(version_cmd, check=False, env=env).returncode == 0)


def release_private_dir(tmp, cgroup, had_run_containerd):
    """After a private daemon stopped: remove its cgroup parent, an empty /run/containerd it
    made, and `tmp` when nothing is mounted under it. Returns (mounts left, cgroups left)."""
    mounts = mounts_under(tmp)
    still = cgroup.remove()
    if not had_run_containerd:
        remove_empty_run_containerd()
    if not mounts:
        shutil.rmtree(tmp, ignore_errors=True)
    return mounts, still
