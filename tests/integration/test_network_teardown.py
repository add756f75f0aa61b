"""Teardown is exact: after a killed container, a killed monitor, 20 start/remove cycles or a
refused run, the host's links, addresses, iptables/nft rulesets and ip_forward are what they
were, and the network root holds no lease, netns or cached CNI result. A container's own
state (veth, lease, netns, cached result, its rules) goes with it; an emptied bridge and the
host-wide CNI state go HULL_NETWORK_LINGER seconds later (at once with 0)."""

import json
import os
import signal
from pathlib import Path

from engine_helpers import engine, wait_for  # noqa: F401
from network_helpers import (assert_settles, diff_state, free_port, host_state, idle_entries, leases,  # noqa: F401
                             make_network, net, netns_files, our_ports, settled)


def _cache(root):
    d = Path(root, "networks", "cache", "results")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _assert_clean(eng, before):
    assert not leases(eng.root), leases(eng.root)
    assert not netns_files(eng.root)
    assert not _cache(eng.root), _cache(eng.root)
    assert not our_ports(eng.root), our_ports(eng.root)
    assert_settles(before, eng.root)


def test_killed_container_then_rm_leaves_nothing(net):
    n = make_network(net, "nt-kill")
    before = settled(net.root)
    port = free_port()
    net("run", "-d", "--name", "k1", "--network", n, "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "300")
    pid = net.inspect("k1")["State"]["Pid"]
    assert leases(net.root)
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: net.inspect("k1")["State"]["Status"] == "exited")
    net("rm", "-f", "k1")
    _assert_clean(net, before)


def test_killed_monitor_then_rm_leaves_nothing(net):
    n = make_network(net, "nt-mon")
    before = settled(net.root)
    port = free_port()
    net("run", "-d", "--name", "m1", "--network", n, "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "300")
    st = net.inspect("m1")["State"]
    os.kill(st["MonitorPid"], signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{st['MonitorPid']}/stat")
             or open(f"/proc/{st['MonitorPid']}/stat").read().split(") ")[1][0] == "Z")
    net("rm", "-f", "m1")
    _assert_clean(net, before)


def test_twenty_containers_leave_the_host_as_it_was(net):
    n = make_network(net, "nt-loop")
    before = settled(net.root)
    for i in range(20):
        args = ["run", "--rm", "--network", n]
        if i % 2:
            args += ["-p", f"127.0.0.1:{free_port()}:80"]
        if i % 5 == 0:
            args += ["-d", "--name", f"loop{i}"]
        net(*args, "busybox", "true")
        if i % 5 == 0:
            net("rm", "-f", f"loop{i}", check=False)
    _assert_clean(net, before)


def test_bad_input_is_refused_and_leaves_nothing(net):
    n = make_network(net, "nt-bad", "--subnet", "10.91.88.0/24")
    before = settled(net.root)
    r = net("network", "create", "--subnet", "10.91.88.128/25", "nt-overlap", check=False)
    assert r.returncode == 125 and "overlaps with network nt-bad" in r.stderr, r.stderr
    r = net("network", "create", "--subnet", "10.91.88.1/24", "nt-hostbits", check=False)
    assert r.returncode == 125 and "host bits" in r.stderr
    host_net = json.loads(net("network", "inspect", n).stdout)[0]["IPAM"]["Config"][0]["Subnet"]
    assert host_net == "10.91.88.0/24"
    r = net("network", "create", "nt-bad", check=False)
    assert r.returncode == 125 and "already exists" in r.stderr
    assert "nt-overlap" not in net.out("network", "ls")
    r = net("run", "--rm", "--network", "nt-nosuch", "busybox", "true", check=False)
    assert r.returncode == 125 and "network nt-nosuch not found" in r.stderr
    for spec in ("70000:80", "abc", "127.0.0.1:80:", "1.2.3:80:80", "80:80/icmp", "8000-8002:80-81"):
        r = net("run", "--rm", "--network", n, "-p", spec, "busybox", "true", check=False)
        assert r.returncode == 125 and "invalid port spec" in r.stderr, (spec, r.stderr)
    r = net("run", "--rm", "--network", n, "--ip", "10.99.0.5", "busybox", "true", check=False)
    assert r.returncode == 125 and "invalid --ip" in r.stderr
    assert not net.ids()
    port = free_port()
    net("run", "-d", "--name", "holder", "--network", n, "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "300")
    r = net("run", "--rm", "--network", n, "-p", f"{port}:80", "busybox", "true", check=False)
    assert r.returncode == 125 and "already allocated" in r.stderr, r.stderr
    assert net.ids() == [net.inspect("holder")["Id"]]
    assert len(leases(net.root)) == 1
    net("rm", "-f", "holder")
    _assert_clean(net, before)


def _plugins(root, network, cid):
    c = json.loads(Path(root, "networks", "cache", "results", f"{network}-{cid}-eth0").read_text())
    return [p["type"] for p in c["config"]["plugins"]]


def _rules(bridge):
    import subprocess
    out = []
    for table in ("filter", "nat"):
        out += [f"{table} {r}" for r in subprocess.run(["iptables", "-t", table, "-S"], capture_output=True,
                                                       text=True).stdout.splitlines() if f"hull-bridge:{bridge}" in r]
    return out


def test_plugins_run_only_where_they_do_something(net):
    """portmap only with -p, tuning only with --mac-address, firewall for a bridge's first
    container (its isolation rules); forwarding and outbound NAT are per bridge (hull's rules,
    one iptables-restore); DEL runs what ADD ran."""
    n = make_network(net, "nt-plugins")
    net("run", "-d", "--name", "p1", "--network", n, "busybox", "sleep", "300")
    assert _plugins(net.root, n, net.inspect("p1")["Id"]) == ["bridge", "firewall"]
    info = json.loads(net("network", "inspect", n).stdout)[0]
    bridge, subnet = info["NetworkInterface"], info["IPAM"]["Config"][0]["Subnet"]
    rules = _rules(bridge)
    assert len(rules) == 3, rules
    assert any(r.startswith(f"nat -A POSTROUTING -s {subnet} ! -d 224.0.0.0/4 ! -o {bridge}") and
               r.endswith("-j MASQUERADE") for r in rules), rules
    net("run", "-d", "--name", "p2", "--network", n, "-p", f"127.0.0.1:{free_port()}:80",
        "--mac-address", "92:d0:c6:0a:29:34", "busybox", "sleep", "300")
    assert _plugins(net.root, n, net.inspect("p2")["Id"]) == ["bridge", "portmap", "tuning"]
    out = net("exec", "p2", "cat", "/sys/class/net/eth0/address").stdout
    assert out.strip() == "92:d0:c6:0a:29:34"
    # p2 reaches p1 through the bridge (the FORWARD rules are the bridge's, not p1's)
    ip1 = net.inspect("p1")["NetworkSettings"]["Networks"][n]["IPAddress"]
    net("exec", "p2", "ping", "-c", "1", "-W", "2", ip1)
    net("rm", "-f", "p1")
    net("exec", "p2", "ping", "-c", "1", "-W", "2", info["IPAM"]["Config"][0]["Gateway"])
    net("rm", "-f", "p2")
    assert not leases(net.root)
    net("network", "rm", n)
    net.networks.remove(n)
    assert not _rules(bridge)


def test_internal_network_has_no_outbound_nat(net):
    n = make_network(net, "nt-nonat", "--internal")
    net("run", "-d", "--name", "i1", "--network", n, "busybox", "sleep", "300")
    bridge = json.loads(net("network", "inspect", n).stdout)[0]["NetworkInterface"]
    rules = _rules(bridge)
    assert rules and not [r for r in rules if "MASQUERADE" in r], rules


def test_emptied_bridge_lingers_then_goes(net):
    n = make_network(net, "nt-linger")
    before = settled(net.root)
    net("run", "--rm", "--network", n, "busybox", "true")
    bridge = json.loads(net("network", "inspect", n).stdout)[0]["NetworkInterface"]
    # kept for the next container (HULL_NETWORK_LINGER, default 2 s), then removed
    assert os.path.exists(f"/sys/class/net/{bridge}") or not idle_entries()
    out = net("run", "--rm", "--network", n, "busybox", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert "inet 10." in out
    assert not leases(net.root)
    assert wait_for(lambda: not os.path.exists(f"/sys/class/net/{bridge}"), timeout=15)
    assert_settles(before, net.root)


def test_linger_zero_tears_down_at_once(net):
    n = make_network(net, "nt-nolinger")
    before = settled(net.root)
    net.env["HULL_NETWORK_LINGER"] = "0"
    try:
        net("run", "--rm", "--network", n, "-p", f"127.0.0.1:{free_port()}:80", "busybox", "true")
    finally:
        del net.env["HULL_NETWORK_LINGER"]
    after = host_state(net.root)
    if not idle_entries():  # another session's containers may hold the host-wide state
        assert not diff_state(before, after), diff_state(before, after)
    bridge = json.loads(net("network", "inspect", n).stdout)[0]["NetworkInterface"]
    assert not os.path.exists(f"/sys/class/net/{bridge}")


def test_network_rm_removes_a_lingering_bridge_at_once(net):
    n = make_network(net, "nt-rmlinger")
    net("run", "--rm", "--network", n, "busybox", "true")
    bridge = json.loads(net("network", "inspect", n).stdout)[0]["NetworkInterface"]
    net("network", "rm", n)
    net.networks.remove(n)
    assert not os.path.exists(f"/sys/class/net/{bridge}")
