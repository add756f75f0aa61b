"""Teardown is exact: after a killed container, a killed monitor, 20 start/remove cycles or a
refused run, the host's links, addresses, iptables/nft rulesets and ip_forward are what they
were, and the network root holds no lease, netns or cached CNI result."""

import json
import os
import signal
from pathlib import Path

from engine_helpers import engine, wait_for  # noqa: F401
from network_helpers import diff_state, free_port, host_state, leases, make_network, net, netns_files  # noqa: F401


def _cache(root):
    d = Path(root, "networks", "cache", "results")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _assert_clean(eng, before):
    assert not leases(eng.root), leases(eng.root)
    assert not netns_files(eng.root)
    assert not _cache(eng.root), _cache(eng.root)
    assert not diff_state(before, host_state()), diff_state(before, host_state())


def test_killed_container_then_rm_leaves_nothing(net):
    n = make_network(net, "nt-kill")
    before = host_state()
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
    before = host_state()
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
    before = host_state()
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
    before = host_state()
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
