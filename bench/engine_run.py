"""Side-by-side, interleaved in one run: `hull run --rm --network none busybox true` vs
`podman run --rm --network none` (and `docker run --rm --network none` through a private
dockerd when dockerd is installed), each with an image imported from the same busybox rootfs.
Prints median and p90 wall time, the ratio to podman, and the monitor's PSS
(/proc/<pid>/smaps_rollup of a `hull run -d` container's monitor, alone and with 10 running).

    sudo .venv/bin/python bench/engine_run.py [-n 30] [--no-docker] [--no-zygote]

hull runs from its venv's entry script with a private HULL_ROOT; its first command starts the
zygote (docs/engine.md), so the warm-up rounds are not counted. --no-zygote adds a row for
hull with HULL_ZYGOTE=0 (every command pays interpreter start-up and imports). podman needs the --ulimit flags here
(no CAP_SYS_RESOURCE, HOST-NOTES) and uses runc when its default runtime (crun) refuses this
host's hybrid cgroup layout.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from conftest import build_busybox_rootfs, hull_parents, release_parents  # noqa: E402

sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
from client_helpers import CgroupParent, Daemon, mounts_under, short_tmpdir  # noqa: E402

VENV_BIN = Path(sys.executable).parent
HULL = str(VENV_BIN / "hull")
PARENTS_AT_START = hull_parents()  # the hull cgroup parents before any bench made one


def timed(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return time.perf_counter() - t0, p.returncode, p.stderr.strip()


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class Hull:
    name = "hull"

    def __init__(self, tmp, tar, zygote):
        if not zygote:
            self.name = "hull(no zygote)"
        self.env = dict(os.environ, HULL_ROOT=str(tmp / ("hull" if zygote else "hull-nozygote")))
        self.env.pop("HULL_RUNTIME_ROOT", None)
        if not zygote:
            self.env["HULL_ZYGOTE"] = "0"
        subprocess.run([HULL, "import", str(tar), "busybox"], env=self.env, check=True, capture_output=True)
        self.cmd = [HULL, "run", "--rm", "--network", "none", "busybox", "true"]

    def hull(self, *args):
        return subprocess.run([HULL, *args], env=self.env, capture_output=True, text=True, check=True).stdout

    def monitor_pss(self):
        """PSS of one container's monitor alone, then the mean over 10 running at once."""
        ids = []
        try:
            ids.append(self.hull("run", "-d", "busybox", "sleep", "300").strip())
            time.sleep(1.0)  # past the in-process hand-off: the exec'd monitor
            one = pss_kib(self._monitor(ids[0]))
            for _ in range(9):
                ids.append(self.hull("run", "-d", "busybox", "sleep", "300").strip())
            time.sleep(1.0)
            many = statistics.mean(pss_kib(self._monitor(c)) for c in ids)
            return one, many
        finally:
            if ids:
                subprocess.run([HULL, "rm", "-f", *ids], env=self.env, capture_output=True)

    def _monitor(self, cid):
        st = json.loads(Path(self.env["HULL_ROOT"], "containers", cid, "state.json").read_text())
        return st["MonitorPid"]

    def close(self):
        pass


class Podman:
    name = "podman"

    def __init__(self, tmp, tar):
        exe = shutil.which("podman")
        self.tmp = tmp / "podman"
        self.tmp.mkdir()
        self.cgroup = CgroupParent("bench-podman")
        self.env = dict(os.environ, CONTAINERS_REGISTRIES_CONF=str(self.tmp / "registries.conf"))
        (self.tmp / "registries.conf").write_text("unqualified-search-registries = []\n")
        self.base = [exe, "--root", str(self.tmp / "root"), "--runroot", str(self.tmp / "runroot"),
                     "--tmpdir", str(self.tmp / "tmp"), "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file", "--storage-driver", "overlay"]
        subprocess.run([*self.base, "import", str(tar), "localhost/busybox:bench"], env=self.env,
                       check=True, capture_output=True)
        flags = ["run", "--rm", "--network", "none", "--cgroup-parent", self.cgroup.path,
                 "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
        self.cmd = [*self.base, *flags, "localhost/busybox:bench", "true"]
        if subprocess.run(self.cmd, env=self.env, capture_output=True).returncode != 0 and shutil.which("runc"):
            self.base.insert(1, "--runtime=" + shutil.which("runc"))
            self.cmd = [*self.base, *flags, "localhost/busybox:bench", "true"]
            self.name = "podman(runc)"

    def close(self):
        subprocess.run([*self.base, "rm", "--all", "--force", "--time", "0"], env=self.env, capture_output=True)
        subprocess.run([*self.base, "system", "reset", "--force"], env=self.env, capture_output=True)
        self.cgroup.remove()


class Docker:
    """A private dockerd (own data/exec root, socket and cgroup parent) with hull's busybox
    loaded; `docker run --rm --network none busybox true`. Subclasses change the network."""
    name = "docker"
    tmp_prefix, cgroup_name = "hull-bench-docker-", "bench-docker"
    network_config = {"bridge": "none", "iptables": False, "ip6tables": False, "ip-forward": False,
                      "ip-masq": False, "userland-proxy": False}
    run_args = ("--network", "none")

    def __init__(self, tmp, hull_env):
        dockerd = shutil.which("dockerd")
        exe = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")
        self.tmp = short_tmpdir(self.tmp_prefix)
        self.cgroup = CgroupParent(self.cgroup_name)
        self.prepare_network()
        config = {"exec-opts": ["native.cgroupdriver=cgroupfs"], "cgroup-parent": self.cgroup.path,
                  **self.network_config, "storage-driver": "overlay2",
                  "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 20000, "Hard": 20000}},
                  "features": {"buildkit": False}}
        (self.tmp / "daemon.json").write_text(json.dumps(config))
        self.env = dict(os.environ, DOCKER_CONFIG=str(self.tmp / "cli"))
        self.base = [exe, "-H", f"unix://{self.tmp}/docker.sock"]
        subprocess.run([HULL, "save", "-o", str(self.tmp / "busybox.tar"), "busybox"], env=hull_env,
                       check=True, capture_output=True)
        self.daemon = Daemon([dockerd, "--config-file", str(self.tmp / "daemon.json"),
                              "--data-root", str(self.tmp / "data"), "--exec-root", str(self.tmp / "exec"),
                              "--pidfile", str(self.tmp / "docker.pid"), "-H", f"unix://{self.tmp}/docker.sock"],
                             self.tmp / "dockerd.log",
                             ready=lambda: os.path.exists(self.tmp / "docker.sock") and subprocess.run(
                                 [*self.base, "version"], env=self.env, capture_output=True).returncode == 0)
        subprocess.run([*self.base, "load", "-i", str(self.tmp / "busybox.tar")], env=self.env,
                       check=True, capture_output=True)
        self.cmd = [*self.base, "run", "--rm", *self.run_args, "busybox", "true"]

    def prepare_network(self):
        pass

    def close(self):
        self.daemon.stop()
        self.cgroup.remove()
        if not mounts_under(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--no-zygote", action="store_true")
    args = ap.parse_args()
    tmp = short_tmpdir("hull-bench-")
    engines = []
    had_run_containerd = os.path.exists("/run/containerd")
    try:
        rootfs = build_busybox_rootfs(tmp / "rootfs")
        tar = tmp / "busybox.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs, arcname=".")
        hull = Hull(tmp, tar, zygote=True)
        engines.append(hull)
        if args.no_zygote:  # the same engine paying interpreter start-up and imports per command
            engines.append(Hull(tmp, tar, zygote=False))
        if shutil.which("podman"):
            engines.append(Podman(tmp, tar))
        if not args.no_docker and shutil.which("dockerd"):
            try:
                engines.append(Docker(tmp, hull.env))
            except Exception as e:  # noqa: BLE001 - docker is optional here
                print(f"docker: skipped ({e.__class__.__name__}: {str(e)[:200]})", file=sys.stderr)
        results, broken = measure(engines, args.n)
        report(engines, results, broken, next((e.name for e in engines if isinstance(e, Podman)), None), 14)
        one, many = hull.monitor_pss()
        print(f"hull monitor PSS: {one / 1024:.2f} MiB alone, {many / 1024:.2f} MiB each with 10 running")
    finally:
        close_all(engines, tmp, had_run_containerd)


def measure(engines, n, warmup=3):
    """Each engine's command n times, interleaved, after `warmup` rounds (hull's first one
    starts the zygote). Returns ({name: [seconds]}, {name: why it failed})."""
    results = {e.name: [] for e in engines}
    broken = {}
    for i in range(n + warmup):
        for e in engines:
            if e.name in broken:
                continue
            dt, rc, err = timed(e.cmd, e.env)
            if rc != 0:
                broken[e.name] = (err.splitlines() or [f"exit {rc}"])[-1]
            elif i >= warmup:
                results[e.name].append(dt)
    return results, broken


def report(engines, results, broken, base_name, width):
    """Median, p90 and the ratio to `base_name`'s median, one line per engine."""
    base = statistics.median(results[base_name]) if results.get(base_name) else None
    print(f"{'engine':<{width}}{'median ms':>10}{'p90 ms':>9}{'ratio/podman':>14}")
    for e in engines:
        if e.name in broken:
            print(f"{e.name:<{width}} failed: {broken[e.name]}")
            continue
        xs = sorted(results[e.name])
        med = statistics.median(xs)
        p90 = xs[max(0, int(len(xs) * 0.9) - 1)]
        ratio = f"{med / base:.2f}" if base else "-"
        print(f"{e.name:<{width}}{med * 1000:>10.1f}{p90 * 1000:>9.1f}{ratio:>14}")


def close_all(engines, tmp, had_run_containerd):
    """close_engines, then the bench's tmp dir unless something is still mounted there."""
    close_engines(engines, had_run_containerd)
    left = mounts_under(tmp)
    if left:
        print(f"mounts left under {tmp}: {left}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def close_engines(engines, had_run_containerd):
    """Close the engines (last first), release hull's monitor cgroup and the hull cgroup
    parents this bench made (tests/conftest.py) and remove the empty /run/containerd dockerd
    made."""
    for e in reversed(engines):
        try:
            e.close()
        except Exception as ex:  # noqa: BLE001
            print(f"{e.name}: cleanup: {ex}", file=sys.stderr)
    release_parents(PARENTS_AT_START)
    if not had_run_containerd:
        for dirpath, _, _ in sorted(os.walk("/run/containerd"), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


if __name__ == "__main__":
    main()
