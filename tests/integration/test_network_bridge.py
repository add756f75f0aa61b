"""Bridge networks end to end: name resolution and TCP between containers, a published HTTP
server answering on 127.0.0.1, isolation between networks, the none/host/internal modes,
the per-container /etc files and addresses. All traffic stays on loopback or inside the
test's own namespaces and bridges (10.90.0.0/16 and the test's explicit subnets)."""

import json
import time
import urllib.request

from engine_helpers import engine, wait_for  # noqa: F401
from network_helpers import free_port, make_network, net  # noqa: F401


def _ip(eng, ref, network):
    return eng.inspect(ref)["NetworkSettings"]["Networks"][network]["IPAddress"]


def test_two_containers_reach_each_other_by_name(net):
    n = make_network(net, "nt-echo")
    net("run", "-d", "--name", "echo-srv", "--network", n, "busybox", "nc", "-ll", "-p", "7000", "-e", "cat")
    out = net("run", "--rm", "--network", n, "busybox", "sh", "-c",
              "for i in 1 2 3 4 5 6 7 8 9 10; do r=$(echo hello-$i | nc -w 2 echo-srv 7000) && "
              "[ -n \"$r\" ] && { echo \"$r\"; exit 0; }; sleep 0.2; done; exit 1").stdout
    assert out.strip().startswith("hello-")
    # the short id and the container's IP resolve too; resolv.conf points at the gateway
    cid = net.inspect("echo-srv")["Id"]
    res = net("run", "--rm", "--network", n, "busybox", "sh", "-c",
              f"nslookup {cid[:12]}; cat /etc/resolv.conf").stdout
    assert _ip(net, "echo-srv", n) in res
    gw = json.loads(net("network", "inspect", n).stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    assert f"nameserver {gw}" in res


def test_published_http_server_answers_on_localhost(net):
    port = free_port()
    net("run", "-d", "--name", "web", "--network", "bridge", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c",
        "mkdir -p /www && echo hello-from-hull > /www/index.html && exec httpd -f -p 80 -h /www")

    def fetch():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
        except OSError:
            return None
    assert wait_for(fetch, timeout=10) == "hello-from-hull\n"
    assert net.out("port", "web") == f"80/tcp -> 127.0.0.1:{port}"
    assert net.out("port", "web", "80") == f"127.0.0.1:{port}"
    assert f"127.0.0.1:{port}->80/tcp" in net.out("ps")
    ports = net.inspect("web")["NetworkSettings"]["Ports"]
    assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    # hull0 (the default bridge) was made on first use
    assert "hull0" in net.out("network", "ls")
    net("rm", "-f", "web")
    assert fetch() is None  # the DNAT rule went with the container
    net.networks.append("hull0")


def test_containers_on_different_networks_cannot_reach_each_other(net):
    a = make_network(net, "nt-iso-a")
    b = make_network(net, "nt-iso-b")
    net("run", "-d", "--name", "iso-srv", "--network", a, "busybox", "nc", "-ll", "-p", "7001", "-e", "cat")
    ip = _ip(net, "iso-srv", a)
    same = net("run", "--rm", "--network", a, "busybox", "sh", "-c",
               f"for i in 1 2 3 4 5 6 7 8 9 10; do echo x | nc -w 2 {ip} 7001 && exit 0; sleep 0.2; done; exit 1")
    assert same.stdout.strip() == "x"
    other = net("run", "--rm", "--network", b, "busybox", "sh", "-c",
                f"echo x | nc -w 2 {ip} 7001; echo rc=$?; ping -c 1 -W 1 {ip} >/dev/null; echo ping=$?",
                check=False)
    assert "rc=0" not in other.stdout and "ping=0" not in other.stdout, other.stdout
    assert "x" not in other.stdout.split("rc=")[0]
    # and the name of a container on another network does not resolve
    r = net("run", "--rm", "--network", b, "busybox", "nslookup", "iso-srv", check=False)
    assert ip not in r.stdout


def test_network_none_has_only_lo(net):
    out = net("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link").stdout
    names = [line.split(":")[1].strip() for line in out.splitlines()]
    assert names == ["lo"]


def test_network_host_sees_the_hosts_interfaces(net):
    import os
    host = sorted(os.listdir("/sys/class/net"))
    out = net("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net").stdout.split()
    assert sorted(out) == host


def test_internal_network_has_no_default_route(net):
    n = make_network(net, "nt-internal", "--internal")
    out = net("run", "--rm", "--network", n, "busybox", "ip", "route").stdout
    assert "default" not in out
    assert "dev eth0" in out
    inspect = json.loads(net("network", "inspect", n).stdout)[0]
    assert inspect["Internal"] is True


def test_ip_mac_hostname_dns_add_host(net):
    n = make_network(net, "nt-opts", "--subnet", "10.91.77.0/24", "--gateway", "10.91.77.254")
    out = net("run", "--rm", "--network", n, "--ip", "10.91.77.9", "--mac-address", "92:d0:c6:0a:29:33",
              "--hostname", "box1", "--dns", "10.91.77.53", "--add-host", "db.example:10.1.2.3",
              "busybox", "sh", "-c",
              "ip -o -4 addr show eth0; cat /sys/class/net/eth0/address; hostname; cat /etc/hosts /etc/resolv.conf; "
              "ip route").stdout
    assert "10.91.77.9/24" in out
    assert "92:d0:c6:0a:29:33" in out
    assert "box1" in out.splitlines()
    assert "10.1.2.3\tdb.example" in out
    assert "nameserver 10.91.77.53" in out
    assert "default via 10.91.77.254" in out


def test_read_only_rootfs_gets_read_only_etc_files(net):
    out = net("run", "--rm", "--read-only", "--network", "bridge", "busybox", "sh", "-c",
              "echo x >> /etc/hosts; echo rc=$?; grep -c localhost /etc/hosts", check=False).stdout
    assert "rc=0" not in out
    net.networks.append("hull0")


def test_stats_show_net_io_and_connect_disconnect(net):
    a = make_network(net, "nt-stats")
    b = make_network(net, "nt-extra")
    net("run", "-d", "--name", "st", "--network", a, "busybox", "sleep", "300")
    net("run", "--rm", "--network", a, "busybox", "ping", "-c", "3", "-i", "0.2", "st")
    row = json.loads(net("stats", "--no-stream", "--format", "json", "st").stdout)
    assert row["NetIO"] != "--" and not row["NetIO"].startswith("0B / 0B"), row
    net("network", "connect", b, "st")
    links = net("exec", "st", "ip", "-o", "-4", "addr").stdout
    assert "eth1" in links
    assert b in net.inspect("st")["NetworkSettings"]["Networks"]
    net("network", "disconnect", b, "st")
    assert "eth1" not in net("exec", "st", "ip", "-o", "link").stdout
    r = net("network", "rm", a, check=False)
    assert r.returncode != 0 and "used by" in r.stderr


def test_default_network_is_the_default_bridge(net):
    """No --network: hull0 (made on first use), as Docker's default bridge — an address and
    a default route, no DNS server of hull's on it. (The engine helper adds `--network none`
    to other tests' runs, so this one calls hull itself.)"""
    import subprocess
    from engine_helpers import HULL
    p = subprocess.run([HULL, "run", "-d", "--name", "dflt", "busybox", "sleep", "300"], env=net.env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    net.networks.append("hull0")
    assert net.inspect("dflt")["HostConfig"]["NetworkMode"] == "hull0"
    out = net("exec", "dflt", "sh", "-c", "ip -o -4 addr show eth0; ip route; cat /etc/resolv.conf").stdout
    assert "inet 10." in out and "default via" in out, out
    gw = json.loads(net("network", "inspect", "hull0").stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    assert f"nameserver {gw}" not in out
    assert "hull0" in net.out("network", "ls")


def test_network_alias_resolves_and_cni_check_passes(net):
    """--network-alias is served by aardvark-dns; CNI CHECK (the plugins the ADD ran, against
    the cached result) agrees with a running container, and fails once its veth is gone."""
    import os
    import subprocess
    n = make_network(net, "nt-alias")
    net("run", "-d", "--name", "al1", "--network", n, "--network-alias", "db-alias", "busybox", "sleep", "300")
    ip = _ip(net, "al1", n)
    out = net("run", "--rm", "--network", n, "busybox", "nslookup", "db-alias").stdout
    assert ip in out
    cid = net.inspect("al1")["Id"]
    netns = json.loads(open(os.path.join(net.root, "containers", cid, "network.json")).read())["NetNS"]
    code = ("import json, sys; from hull.network import cni, config; "
            "cni.check(config.load(sys.argv[1]).conflist, sys.argv[2], sys.argv[3], 'eth0')")
    import sys
    r = subprocess.run([sys.executable, "-c", code, n, cid, netns], env=net.env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    subprocess.run(["nsenter", f"--net={netns}", "ip", "link", "del", "eth0"], check=True)
    r = subprocess.run([sys.executable, "-c", code, n, cid, netns], env=net.env, capture_output=True, text=True)
    assert r.returncode != 0 and "CNI plugin" in r.stderr, r.stderr


def test_publish_all_uses_the_images_exposed_ports(net, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nEXPOSE 80 53/udp\n")
    net("build", "-q", "-t", "nt-exposed", str(tmp_path))
    try:
        net("run", "-d", "--name", "pa", "--network", "bridge", "-P", "nt-exposed", "sleep", "300")
        net.networks.append("hull0")
        ports = net.inspect("pa")["NetworkSettings"]["Ports"]
        assert set(ports) == {"80/tcp", "53/udp"}, ports
        assert all(int(b[0]["HostPort"]) > 0 for b in ports.values())
        assert "->80/tcp" in net.out("ps")
        net("rm", "-f", "pa")
    finally:
        net("rmi", "-f", "nt-exposed", check=False)
