"""hull pull vs skopeo copy vs podman pull from a local docker-registry, and hull push vs
skopeo copy to one, same run.

    .venv/bin/python bench/image_pull.py [--image busybox] [--runs 5] [--no-push]

Pushes the image from $HULL_ROOT (or bootstraps busybox into a temp store), then times each
client pulling it into a fresh destination, interleaved; prints medians and ratios to skopeo.
hull pulls into one store whose zygote is warm (as on a machine where hull is in use), and
`hull rmi` between runs removes the image and its blobs, so every pull downloads everything;
the "no zygote" row pulls into a fresh store with HULL_ZYGOTE=0 (the cold, in-process CLI).
Push: each run, each client uploads the image to a registry of its own that starts empty (no
blob exists, no cross-repo mount), hull from its store, skopeo from an oci: layout copy.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from image_helpers import Registry  # noqa: E402

HULL = str(Path(sys.executable).parent / "hull")


def timed(cmd, env=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {p.stderr}")
    return dt


def warm(env):
    """Start the zygote for env's HULL_ROOT and wait until it serves."""
    sock = Path(env["HULL_ROOT"]) / "run" / "zygote.sock"
    deadline = time.monotonic() + 30
    while True:
        subprocess.run([HULL, "images", "-q"], env=env, check=True, capture_output=True)
        if sock.exists() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for _ in range(3):
        subprocess.run([HULL, "images", "-q"], env=env, check=True, capture_output=True)


def report(res, base_key):
    base = statistics.median(res[base_key])
    for k, v in res.items():
        if v:
            m = statistics.median(v)
            print(f"  {k:20s} median {m * 1000:7.0f} ms   {m / base:4.2f}x skopeo   "
                  f"(min {min(v) * 1000:.0f}, max {max(v) * 1000:.0f})")


def bench_push(a, work, ref, env):
    src_oci = work / "src-oci"
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{src_oci}:img"],
                   check=True, capture_output=True)
    res = {"hull push": [], "skopeo push": [], "hull push no zygote": []}
    warm(env)
    for i in range(a.runs):
        for k in res:
            reg = Registry(work / f"push-{i}-{k.replace(' ', '-')}")
            try:
                dest = f"{reg.host}/bench/pushed:1"
                if k.startswith("hull"):
                    subprocess.run([HULL, "tag", a.image, dest], env=env, check=True)
                    res[k].append(timed([HULL, "push", "-q", dest],
                                        dict(env, HULL_ZYGOTE="0") if "no zygote" in k else env))
                    subprocess.run([HULL, "rmi", dest], env=env, check=True, capture_output=True)
                else:
                    res[k].append(timed(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{src_oci}:img",
                                         f"docker://{dest}"]))
            finally:
                reg.stop()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="busybox")
    ap.add_argument("--root", default=os.environ.get("HULL_ROOT"), help="store holding --image")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-push", action="store_true", help="only the pull bench")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hull-bench-"))
    reg = Registry(work / "registry")
    try:
        root = a.root or str(work / "src")
        env = dict(os.environ, HULL_ROOT=root)
        if not a.root:
            subprocess.run([HULL, "image", "bootstrap", "busybox", "-q"], env=env, check=True, capture_output=True)
        ref = f"{reg.host}/bench/img:1"
        subprocess.run([HULL, "tag", a.image, ref], env=env, check=True)
        subprocess.run([HULL, "push", "-q", ref], env=env, check=True, capture_output=True)
        subprocess.run([HULL, "rmi", ref], env=env, check=True, capture_output=True)
        size = int(subprocess.run([HULL, "image", "inspect", "-f", ".Size", a.image], env=env,
                                  capture_output=True, text=True).stdout.strip())
        res = {"hull pull": [], "skopeo copy": [], "podman pull": [], "hull no zygote": []}
        pull_env = dict(os.environ, HULL_ROOT=str(work / "pull-root"))
        warm(pull_env)
        podman = shutil.which("podman")
        pm_run = tempfile.mkdtemp(prefix="pm-", dir="/tmp")
        for i in range(a.runs):
            d = work / f"run{i}"
            res["hull pull"].append(timed([HULL, "pull", "-q", ref], pull_env))
            subprocess.run([HULL, "rmi", ref], env=pull_env, check=True, capture_output=True)
            left = list((work / "pull-root" / "images" / "blobs" / "sha256").glob("*"))
            if left:
                raise SystemExit(f"hull rmi left blobs behind: {left}")
            res["hull no zygote"].append(timed([HULL, "pull", "-q", ref],
                                               dict(os.environ, HULL_ROOT=str(d / "hull"), HULL_ZYGOTE="0")))
            res["skopeo copy"].append(timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                                             f"oci:{d}/skopeo:img"]))
            if podman:
                res["podman pull"].append(timed([podman, "--root", str(d / "pm"), "--runroot", pm_run,
                                                 "--storage-driver", "vfs", "pull", "-q", "--tls-verify=false",
                                                 ref]))
                subprocess.run([podman, "--root", str(d / "pm"), "--runroot", pm_run, "--storage-driver", "vfs",
                                "rmi", "-a", "-f"], capture_output=True)
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(pm_run, ignore_errors=True)
        print(f"image {a.image} ({size / 1e6:.1f} MB compressed), {a.runs} runs, local docker-registry")
        report(res, "skopeo copy")
        if not a.no_push:
            push_res = bench_push(a, work, ref, env)
            print(f"push to an empty docker-registry, {a.runs} runs")
            report(push_res, "skopeo push")
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
