"""Side-by-side: `hull-runtime run` vs `runc run` (and `crun run` where it works) of busybox
/bin/true, interleaved in one run. Prints median wall time, the ratio to runc, and peak RSS of
the runtime process (ru_maxrss from wait4).

    sudo .venv/bin/python bench/runtime_run.py [-n 30] [--gap MS]

--gap waits between runs, so that no run starts right after another's cgroup moves: the first
move after a quiet moment waits for an RCU grace period (~8 ms here), and one made within a
grace period of the last is fast, whoever made that one (docs/runtime.md).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import build_busybox_rootfs  # noqa: E402


def bundle_for(work, name, rootfs, runtime_bin):
    b = work / name
    b.mkdir()
    subprocess.run([runtime_bin, "spec"], cwd=b, check=True, capture_output=True)
    spec = json.loads((b / "config.json").read_text())
    spec["root"] = {"path": str(rootfs), "readonly": True}
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    spec["linux"]["cgroupsPath"] = f"/hull-bench/{name}"
    (b / "config.json").write_text(json.dumps(spec))
    return b


def one_run(cmd):
    """Wall time of one run, and the runtime's peak RSS as /usr/bin/time sees it (measuring from
    here would count the forked copy of this Python process)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss=%M", *cmd], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    lines = p.stderr.strip().splitlines()
    maxrss = int(lines[-1].split("=")[1]) if lines and lines[-1].startswith("maxrss=") else 0
    err = "\n".join(line for line in lines if not line.startswith(("maxrss=", "Command exited")))
    return dt, maxrss, p.returncode, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--gap", type=float, default=0, help="milliseconds to wait between runs")
    args = ap.parse_args()
    hull = str(Path(sys.executable).parent / "hull-runtime")
    runtimes = {"hull-runtime": hull}
    for name in ("runc", "crun"):
        if shutil.which(name):
            runtimes[name] = shutil.which(name)
    # hull-runtime's module bundle, as scripts/test makes it (the runtime writes a missing one
    # itself, but not where PYTHONDONTWRITEBYTECODE is set)
    subprocess.run([sys.executable, "-m", "hull.runtime.bundle"], check=True, capture_output=True)
    work = Path(tempfile.mkdtemp(prefix="hull-bench-"))
    try:
        rootfs = build_busybox_rootfs(work / "rootfs")
        bundles = {n: bundle_for(work, n, rootfs, b if n != "hull-runtime" else hull) for n, b in runtimes.items()}
        results = {n: [] for n in runtimes}
        rss = {n: [] for n in runtimes}
        broken = {}
        for i in range(args.n + 2):  # 2 warm-up rounds
            for name, binary in runtimes.items():
                if name in broken:
                    continue
                root = work / f"state-{name}"
                cmd = [binary, "--root", str(root), "run", "--bundle", str(bundles[name]), f"b{i}"]
                time.sleep(args.gap / 1000)
                dt, maxrss, rc, err = one_run(cmd)
                if rc != 0:
                    broken[name] = err.strip().splitlines()[-1] if err.strip() else f"exit {rc}"
                    continue
                if i >= 2:
                    results[name].append(dt)
                    rss[name].append(maxrss)
        base = statistics.median(results["runc"]) if results.get("runc") else None
        print(f"{'runtime':<14}{'median ms':>10}{'p25 ms':>9}{'p90 ms':>9}{'ratio/runc':>12}{'peak RSS MiB':>14}")
        for name in runtimes:
            if name in broken:
                print(f"{name:<14} failed: {broken[name]}")
                continue
            xs = sorted(results[name])
            med = statistics.median(xs)
            p25 = xs[int(len(xs) * 0.25)]
            p90 = xs[int(len(xs) * 0.9) - 1]
            ratio = f"{med / base:.2f}" if base else "-"
            print(f"{name:<14}{med * 1000:>10.1f}{p25 * 1000:>9.1f}{p90 * 1000:>9.1f}{ratio:>12}"
                  f"{max(rss[name]) / 1024:>14.1f}")
    finally:
        for d in ("/sys/fs/cgroup/" + c + "/hull-bench" for c in os.listdir("/sys/fs/cgroup")):
            if os.path.isdir(d):
                for sub in os.listdir(d):
                    p = os.path.join(d, sub)
                    if os.path.isdir(p):
                        try:
                            os.rmdir(p)
                        except OSError:
                            pass
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
