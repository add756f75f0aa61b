"""Side-by-side, interleaved in one run: `hull run --rm --network bridge busybox true` (hull0
over the CNI plugins, teardown included) vs `podman run --rm` on its default network (netavark
bridge) and `docker run --rm` on a private dockerd's default bridge (its own docker0-style
bridge with iptables and forwarding as Docker sets them up), and hull with --network none as
the floor. Median and p90 wall time and the ratio to podman.

    sudo .venv/bin/python bench/network_run.py [-n 20] [--no-docker] [--before SRC]

Rows: "hull bridge" as users get it (an emptied bridge and the host-wide CNI state linger
HULL_NETWORK_LINGER=2 s, so back-to-back runs reuse them); "hull bridge, linger 0" (its own
HULL_ROOT: every run builds and removes its bridge, chains and tables, as podman's netavark
does with its bridge); with --before SRC (e.g. `git archive <commit> src | tar -x -C /tmp/x`,
then --before /tmp/x/src) a row for that source tree's hull (PYTHONPATH, its own HULL_ROOT).

podman's netavark and dockerd leave chains (NETAVARK-*, DOCKER*), rules on their bridges, their
bridges, ip_forward=1 and (dockerd) a DROP policy on FORWARD behind; the bench removes the
chains, rules and bridges that were not there before it started, restores ip_forward, the
FORWARD policy and the bridge-nf sysctls, and drops the iptables-nft tables it made if empty.
"""

import argparse
import os
import shlex
import json
import shutil
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


SYSCTLS = ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables")
DOCKER_BRIDGE, DOCKER_BIP = "hullbench-d0", "10.93.250.1/24"


class DockerBridge(er.Docker):
    """A private dockerd with Docker's default bridge networking (own bridge name and subnet,
    iptables, masquerade, forwarding), `docker run --rm busybox true` with no --network."""

    name = "docker default bridge"
    tmp_prefix, cgroup_name = "hull-netbench-docker-", "bench-docker-net"
    network_config = {"bridge": DOCKER_BRIDGE, "fixed-cidr": DOCKER_BIP.replace(".1/", ".0/")}
    run_args = ()

    def prepare_network(self):
        subprocess.run(["ip", "link", "add", DOCKER_BRIDGE, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", DOCKER_BIP, "dev", DOCKER_BRIDGE], check=True)

def _read(name):
    try:
        return Path("/proc/sys", name).read_text()
    except OSError:
        return None


def _nft_tables():
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {ln.strip() for ln in out.splitlines() if ln.startswith("table ")}


def _undo_engines(chains0, links0, tables0, policy0):
    """Remove what netavark/dockerd left: rules that jump to or name their chains, bridges
    and subnet; the chains; their bridges; the FORWARD policy; new empty nft tables."""
    new = sorted(c for c in _iptables_chains() - chains0 if c.startswith(("NETAVARK", "DOCKER")))
    for t in ("filter", "nat"):
        out = subprocess.run(["iptables", "-t", t, "-S"], capture_output=True, text=True).stdout
        for ln in out.splitlines():
            words = ln.split()
            if ln.startswith("-A ") and words[1] not in new and (
                    any(ln.endswith(f"-j {c}") for c in new) or DOCKER_BRIDGE in words
                    or DOCKER_BIP.replace(".1/", ".0/") in words):
                subprocess.run(["iptables", "-t", t, "-D", *shlex.split(ln)[1:]], capture_output=True)
        for c in new:
            subprocess.run(["iptables", "-t", t, "-F", c], capture_output=True)
        for c in new:
            subprocess.run(["iptables", "-t", t, "-X", c], capture_output=True)
    if policy0:
        subprocess.run(["iptables", "-P", "FORWARD", policy0], capture_output=True)
    for link in sorted(_links() - links0):
        if link.startswith(("podman", "docker", DOCKER_BRIDGE)):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
    try:
        items = json.loads(subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True,
                                          text=True).stdout).get("nftables", [])
    except ValueError:
        items = []
    busy = {(i["rule"]["family"], i["rule"]["table"]) for i in items if "rule" in i}
    for t in sorted(_nft_tables() - tables0):
        _, fam, name = t.split()
        if (fam, name) not in busy:
            subprocess.run(["nft", "delete", "table", fam, name], capture_output=True)


def _forward_policy():
    out = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    for ln in out.splitlines():
        if ln.startswith("-P FORWARD "):
            return ln.split()[2]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--before", help="a hull src/ tree to bench too (an earlier commit)")
    args = ap.parse_args()
    tmp = er.short_tmpdir("hull-netbench-")
    chains0, links0, tables0, policy0 = _iptables_chains(), _links(), _nft_tables(), _forward_policy()
    sysctls0 = {s: _read(s) for s in SYSCTLS}
    had_run_containerd = os.path.exists("/run/containerd")
    engines = []
    try:
        rootfs = er.build_busybox_rootfs(tmp / "rootfs")
        tar = tmp / "busybox.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs, arcname=".")
        hull = er.Hull(tmp, tar, zygote=True)
        hull.name = "hull bridge"
        hull.cmd = [er.HULL, "run", "--rm", "--network", "bridge", "busybox", "true"]
        engines.append(hull)
        nolinger = er.Hull(tmp / "nolinger", tar, zygote=True)
        nolinger.name = "hull bridge, linger 0"
        nolinger.env["HULL_NETWORK_LINGER"] = "0"
        nolinger.cmd = hull.cmd
        engines.append(nolinger)
        if args.before:
            (tmp / "before").mkdir()
            old = er.Hull.__new__(er.Hull)
            old.env = dict(hull.env, HULL_ROOT=str(tmp / "before" / "hull"), PYTHONPATH=args.before)
            subprocess.run([er.HULL, "import", str(tar), "busybox"], env=old.env, check=True, capture_output=True)
            old.name, old.cmd = "hull bridge (before)", hull.cmd
            engines.append(old)
        floor = er.Hull.__new__(er.Hull)
        floor.env, floor.name = hull.env, "hull none"
        floor.cmd = [er.HULL, "run", "--rm", "--network", "none", "busybox", "true"]
        engines.append(floor)
        pod = er.Podman(tmp, tar)
        pod.cmd = [c for c in pod.cmd]
        i = pod.cmd.index("--network")
        del pod.cmd[i:i + 2]
        pod.name += " default net"
        engines.append(pod)
        if not args.no_docker and shutil.which("dockerd"):
            try:
                engines.append(DockerBridge(tmp, hull.env))
            except Exception as e:  # noqa: BLE001 - docker is optional here
                print(f"docker: skipped ({e.__class__.__name__}: {str(e)[:300]})", file=sys.stderr)
        results, broken = er.measure(engines, args.n)
        er.report(engines, results, broken, pod.name, 28)
    finally:
        er.close_all(engines, tmp, had_run_containerd)
        _undo_engines(chains0, links0, tables0, policy0)
        for name, value in sysctls0.items():
            if value is not None and _read(name) != value:
                Path("/proc/sys", name).write_text(value)  # netavark/dockerd turn forwarding on and leave it

if __name__ == "__main__":
    main()
