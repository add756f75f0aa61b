"""Side-by-side, interleaved in one run: `hull run --rm --network bridge busybox true` (hull0
over the CNI plugins: netns, bridge+host-local, portmap, firewall, tuning, teardown included)
vs `podman run --rm` on its default network (netavark bridge), and hull with --network none
as the floor. Median and p90 wall time and the ratio to podman.

    sudo .venv/bin/python bench/network_run.py [-n 20]

podman's netavark leaves NETAVARK-* chains, its bridge and ip_forward=1 behind; the bench
removes the chains and bridges that were not there before it started and restores ip_forward.
"""

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import engine_run as er  # noqa: E402


def _iptables_chains():
    out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return {ln[1:].split()[0] for ln in out.splitlines() if ln.startswith(":")}


def _links():
    return set(os.listdir("/sys/class/net"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    args = ap.parse_args()
    tmp = er.short_tmpdir("hull-netbench-")
    chains0, links0 = _iptables_chains(), _links()
    forward0 = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    engines = []
    try:
        rootfs = er.build_busybox_rootfs(tmp / "rootfs")
        tar = tmp / "busybox.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs, arcname=".")
        hull = er.Hull(tmp, tar, zygote=True)
        hull.name = "hull bridge"
        hull.cmd = [er.HULL, "run", "--rm", "--network", "bridge", "busybox", "true"]
        floor = er.Hull.__new__(er.Hull)
        floor.env, floor.name = hull.env, "hull none"
        floor.cmd = [er.HULL, "run", "--rm", "--network", "none", "busybox", "true"]
        engines += [hull, floor]
        pod = er.Podman(tmp, tar)
        pod.cmd = [c for c in pod.cmd]
        i = pod.cmd.index("--network")
        del pod.cmd[i:i + 2]
        pod.name += " default net"
        engines.append(pod)
        results = {e.name: [] for e in engines}
        broken = {}
        for r in range(args.n + 3):
            for e in engines:
                if e.name in broken:
                    continue
                dt, rc, err = er.timed(e.cmd, e.env)
                if rc != 0:
                    broken[e.name] = (err.splitlines() or [f"exit {rc}"])[-1]
                elif r >= 3:
                    results[e.name].append(dt)
        base = statistics.median(results[pod.name]) if results.get(pod.name) else None
        print(f"{'engine':<28}{'median ms':>10}{'p90 ms':>9}{'ratio/podman':>14}")
        for e in engines:
            if e.name in broken:
                print(f"{e.name:<28} failed: {broken[e.name]}")
                continue
            xs = sorted(results[e.name])
            med = statistics.median(xs)
            p90 = xs[max(0, int(len(xs) * 0.9) - 1)]
            print(f"{e.name:<28}{med * 1000:>10.1f}{p90 * 1000:>9.1f}{(f'{med / base:.2f}' if base else '-'):>14}")
    finally:
        for e in engines:
            e.close()
        for c in sorted(_iptables_chains() - chains0):
            if c.startswith("NETAVARK"):
                for t in ("filter", "nat"):
                    out = subprocess.run(["iptables", "-t", t, "-S"], capture_output=True, text=True).stdout
                    for ln in out.splitlines():
                        if ln.startswith("-A ") and ln.endswith(f"-j {c}"):
                            subprocess.run(["iptables", "-t", t, "-D", *shlex.split(ln)[1:]], capture_output=True)
                    subprocess.run(["iptables", "-t", t, "-F", c], capture_output=True)
                    subprocess.run(["iptables", "-t", t, "-X", c], capture_output=True)
        for link in sorted(_links() - links0):
            if link.startswith("podman"):
                subprocess.run(["ip", "link", "del", link], capture_output=True)
        Path("/proc/sys/net/ipv4/ip_forward").write_text(forward0)  # netavark turns it on and leaves it
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
