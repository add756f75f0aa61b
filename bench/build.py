"""Side-by-side, interleaved in one run: `hull build --no-cache` of a small Dockerfile vs
`podman build --no-cache --isolation chroot` and `docker build --no-cache` (same busybox rootfs
in all three), then the cached rebuild of each. Prints medians and the ratios to podman and docker.

    sudo .venv/bin/python bench/build.py [-n 7] [--no-docker]

docker runs through a private dockerd started like bench/engine_run.py's `Docker` (own
--data-root/--exec-root/socket in a temp dir, no bridge, no iptables or ip-forward changes, an
own absolute cgroup parent, stopped by PID, all removed afterwards); its busybox is `hull save` of
hull's image, `docker load`ed as busybox:latest so the same Dockerfile's FROM resolves. BuildKit
when the buildx plugin is installed, else the classic builder (DOCKER_BUILDKIT=0); the script
says which. docker's RUN steps get --network none like podman's and hull's.

The Dockerfile: FROM busybox, ENV, WORKDIR, COPY of a small tree, two RUNs, CMD. podman gets
--network none (RUN in hull has no network either), the ulimit flags this host needs and runc
when crun refuses the hybrid cgroup layout (see bench/engine_run.py).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from conftest import build_busybox_rootfs  # noqa: E402
from engine_run import Docker, Hull, Podman, close_engines  # noqa: E402

DOCKERFILE = """\
FROM busybox
ENV APP=/app MODE=bench
WORKDIR /app
COPY src/ /app/src/
RUN echo built > /app/stamp && ls /app/src | wc -l
RUN cat /app/src/f1 > /app/copy
CMD ["sh", "-c", "cat /app/stamp"]
"""


def timed(cmd, env, cwd=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=7)
    ap.add_argument("--no-docker", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hull-bench-build-") as t:
        tmp = Path(t)
        rootfs = tmp / "rootfs"
        build_busybox_rootfs(rootfs)
        tar = tmp / "busybox.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        ctx = tmp / "ctx"
        (ctx / "src").mkdir(parents=True)
        for i in range(20):
            (ctx / "src" / f"f{i}").write_text(f"file {i}\n" * 50)
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        hull = Hull(tmp, tar, zygote=True)
        podman = Podman(tmp, tar)
        docker = None
        had_run_containerd = os.path.exists("/run/containerd")
        try:
            (ctx / "Dockerfile.podman").write_text(DOCKERFILE.replace("FROM busybox", "FROM localhost/busybox:bench"))
            # buildah under runc fails on this host with --cgroup-parent (devices.deny EINVAL), and without
            # a parent it would nest under our own cgroup: --isolation chroot (no cgroups; less work than hull)
            pflags = ["build", "--isolation", "chroot",
                      "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", "--pull=never",
                      "-f", str(ctx / "Dockerfile.podman"), "-t", "bench:1"]
            runs = {"hull no-cache": ([sys_hull(), "build", "-q", "--no-cache", "-t", "bench:1", str(ctx)], hull.env),
                    f"{podman.name} no-cache": ([*podman.base, *pflags, "--no-cache", str(ctx)], podman.env),
                    "hull cached": ([sys_hull(), "build", "-q", "-t", "bench:1", str(ctx)], hull.env),
                    f"{podman.name} cached": ([*podman.base, *pflags, str(ctx)], podman.env)}
            if not a.no_docker and shutil.which("dockerd"):
                docker = Docker(tmp, hull.env)
                denv = docker.env
                if subprocess.run([*docker.base, "buildx", "version"], env=denv, capture_output=True).returncode:
                    denv = dict(denv, DOCKER_BUILDKIT="0")
                    docker.builder = "classic builder, DOCKER_BUILDKIT=0: no buildx plugin"
                else:
                    docker.builder = "BuildKit (buildx)"
                dflags = ["build", "-q", "--network", "none", "-t", "bench:1"]
                runs["docker no-cache"] = ([*docker.base, *dflags, "--no-cache", str(ctx)], denv)
                runs["docker cached"] = ([*docker.base, *dflags, str(ctx)], denv)
                runs = {k: runs[k] for k in sorted(runs, key=lambda k: k.endswith("cached"))}
                print(f"docker: {docker.builder}")
            for cmd, env in runs.values():  # warm-up (and fills each cache)
                timed(cmd, env)
            res = {k: [] for k in runs}
            for _ in range(a.n):
                for k, (cmd, env) in runs.items():
                    res[k].append(timed(cmd, env))
            med = {k: statistics.median(v) for k, v in res.items()}
            for k, v in res.items():
                print(f"{k:28s} median {med[k] * 1000:8.1f} ms   min {min(v) * 1000:8.1f} ms")
            pn = podman.name
            print(f"no-cache ratio hull/{pn}: {med['hull no-cache'] / med[pn + ' no-cache']:.2f}x")
            print(f"cached   ratio hull/{pn}: {med['hull cached'] / med[pn + ' cached']:.2f}x")
            if docker:
                print(f"no-cache ratio hull/docker: {med['hull no-cache'] / med['docker no-cache']:.2f}x"
                      f"   (target <= 1.0x)")
                print(f"cached   ratio hull/docker: {med['hull cached'] / med['docker cached']:.2f}x"
                      f"   (target <= 0.2x)")
        finally:
            close_engines([hull, podman] + ([docker] if docker else []), had_run_containerd)


def sys_hull():
    from engine_run import HULL
    return HULL


if __name__ == "__main__":
    main()
