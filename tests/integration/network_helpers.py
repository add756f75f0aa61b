"""Helpers for the network tests: the host's network state (links, addresses, iptables/nft
rulesets without counters) to compare before and after, free loopback ports, and a per-test
fixture that removes the test's containers and networks and checks nothing was left."""

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from engine_helpers import engine  # noqa: F401


def _run(*args):
    return subprocess.run(args, capture_output=True, text=True).stdout


def host_state():
    """What a container on a bridge could leave on the host, normalized."""
    links = sorted(re.sub(r"^\d+: ", "", ln).split("\\")[0].split(" qdisc")[0]
                   for ln in _run("ip", "-o", "link").splitlines())
    addrs = sorted(re.sub(r"^\d+: ", "", ln).split("\\")[0] for ln in _run("ip", "-o", "addr").splitlines()
                   if "tentative" not in ln)
    ipt = sorted(re.sub(r"\[\d+:\d+\]", "", ln) for ln in _run("iptables-save").splitlines() if not ln.startswith("#"))
    nft = sorted(re.sub(r"counter packets \d+ bytes \d+", "", ln).strip() for ln in _run("nft", "list", "ruleset").splitlines())
    fwd = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    return {"links": links, "addrs": addrs, "iptables": ipt, "nft": nft, "ip_forward": fwd}


def diff_state(before, after):
    out = {}
    for k in before:
        if before[k] != after[k]:
            if isinstance(before[k], list):
                out[k] = {"gone": sorted(set(before[k]) - set(after[k])), "new": sorted(set(after[k]) - set(before[k]))}
            else:
                out[k] = (before[k], after[k])
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def leases(root):
    """host-local's lease files (one per allocated address) under the root's IPAM dir."""
    d = Path(root, "networks", "ipam")
    if not d.is_dir():
        return []
    return sorted(str(p.relative_to(d)) for p in d.rglob("*")
                  if p.is_file() and re.match(r"^\d+\.\d+\.\d+\.\d+$", p.name))


def netns_files(root):
    d = Path(root, "netns")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


@pytest.fixture
def net(engine):  # noqa: F811
    """Per test: the engine; afterwards its containers and networks are removed and no
    veth, lease, netns or rule of hull's may be left."""
    made = []
    engine.networks = made
    yield engine
    for cid in engine.ids():
        engine("rm", "-f", cid, check=False)
    bridges = [json.loads(p.read_text())["org.hull"]["bridge"] for p in Path(engine.root, "networks").glob("*.conflist")]
    for name in made:
        engine("network", "rm", name, check=False)
    assert not engine.ids()
    assert not leases(engine.root), leases(engine.root)
    assert not netns_files(engine.root), netns_files(engine.root)
    assert not engine.leftovers(), engine.leftovers()
    assert not [b for b in bridges if os.path.exists(f"/sys/class/net/{b}")], "a bridge outlived its containers"


def make_network(eng, name, *args):
    eng("network", "create", *args, name)
    eng.networks.append(name)
    return name
