"""Helpers for the network tests: the host's network state (links, addresses, iptables/nft
rulesets without counters) to compare before and after, free loopback ports, and a per-test
fixture that removes the test's containers and networks and checks nothing was left.

An emptied bridge and the host-wide CNI state linger HULL_NETWORK_LINGER seconds (default 2)
before hull's reaper removes them (hull.network.hoststate): `settled()` waits for that, and
`assert_settles(before)` waits for the host to come back to `before`."""

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from engine_helpers import engine, wait_for  # noqa: F401

STATE_DIR = os.environ.get("HULL_NETWORK_STATE") or "/run/hull/network"


def _run(*args):
    return subprocess.run(args, capture_output=True, text=True).stdout


def host_state(root=None):
    """What a container on a bridge could leave on the host, normalized. With `root`, what
    belongs to other hull roots' bridges (other test sessions running at the same time) is
    noted in "foreign" so that diff_state can leave it out."""
    links = sorted(re.sub(r"^\d+: ", "", ln).split("\\")[0].split(" qdisc")[0]
                   for ln in _run("ip", "-o", "link").splitlines())
    addrs = sorted(re.sub(r"^\d+: ", "", ln).split("\\")[0] for ln in _run("ip", "-o", "addr").splitlines()
                   if "tentative" not in ln)
    ipt = sorted(re.sub(r"\[\d+:\d+\]", "", ln) for ln in _run("iptables-save").splitlines() if not ln.startswith("#"))
    nft = sorted(re.sub(r"counter packets \d+ bytes \d+", "", ln).strip() for ln in _run("nft", "list", "ruleset").splitlines())
    fwd = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    out = {"links": links, "addrs": addrs, "iptables": ipt, "nft": nft, "ip_forward": fwd}
    if root is not None:
        out["foreign"] = _foreign(root, ipt)
    return out


def _foreign(root, ipt):
    """Names, address prefixes and per-container chains of other roots' hull bridges."""
    mine = {json.loads(p.read_text())["org.hull"]["bridge"] for p in Path(root, "networks").glob("*.conflist")}
    words = set()
    for b in os.listdir("/sys/class/net"):
        if not b.startswith("hull") or b in mine or not os.path.isdir(f"/sys/class/net/{b}/brif"):
            continue
        words.add(b)
        words.update(os.listdir(f"/sys/class/net/{b}/brif"))
        for ln in _run("ip", "-o", "-4", "addr", "show", "dev", b).splitlines():
            a = ln.split()[3].split("/")[0]
            words.add(a.rsplit(".", 1)[0] + ".")
    chains = set()
    for ln in ipt:
        if any(_mentions(ln, w) for w in words):
            chains.update(re.findall(r"CNI-[0-9a-f]{24}", ln))
    return sorted(words | chains)


def _mentions(line, word):
    if word.endswith("."):  # an address prefix
        return re.search(r"(?<![\d.])" + re.escape(word) + r"\d", line) is not None
    return word in line


def diff_state(before, after):
    foreign = set(before.get("foreign", ())) | set(after.get("foreign", ()))
    out = {}
    for k in before:
        if k == "foreign":
            continue
        b, a = before[k], after[k]
        if isinstance(b, list) and foreign:
            b = [ln for ln in b if not any(_mentions(ln, w) for w in foreign)]
            a = [ln for ln in a if not any(_mentions(ln, w) for w in foreign)]
            if k == "nft":  # rules inside another root's chains name neither bridge nor address
                b, a = sorted(set(b)), sorted(set(a))
        if b != a:
            if isinstance(b, list):
                out[k] = {"gone": sorted(set(b) - set(a)), "new": sorted(set(a) - set(b))}
            else:
                out[k] = (b, a)
    return out


def our_ports(root):
    """Interfaces (the host ends of veths) still enslaved to a bridge of `root`'s networks."""
    bridges = [json.loads(p.read_text())["org.hull"]["bridge"] for p in Path(root, "networks").glob("*.conflist")]
    return sorted(p.name for b in bridges if Path(f"/sys/class/net/{b}/brif").is_dir()
                  for p in Path(f"/sys/class/net/{b}/brif").iterdir())


def idle_entries():
    """What hull's reaper still has to remove (lingering bridges, `.host`)."""
    d = Path(STATE_DIR, "idle")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def settled(root=None):
    """The host's state once nothing of hull's lingers (bounded wait: another session's
    containers may keep it busy)."""
    wait_for(lambda: not idle_entries(), timeout=15, interval=0.1)
    return host_state(root)


def assert_settles(before, root=None):
    """After the linger, the host is as it was."""
    wait_for(lambda: not diff_state(before, host_state(root)), timeout=15, interval=0.25)
    assert not diff_state(before, host_state(root)), diff_state(before, host_state(root))


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
    assert not [b for b in bridges if os.path.exists(f"/sys/class/net/{b}")], "a bridge outlived its network"
    settled()  # the next test's "before" is not taken while this one's state lingers


def make_network(eng, name, *args):
    eng("network", "create", *args, name)
    eng.networks.append(name)
    return name
