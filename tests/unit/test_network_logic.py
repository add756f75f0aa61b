"""Network logic without root: -p parsing, port assignment conflicts, /etc/hosts and
resolv.conf generation, conflists and subnet choice, the CNI plugin stdin config."""

import json

import pytest

from hull.errors import Conflict, UsageError
from hull.network import cni, config, hosts, ports


@pytest.mark.parametrize("spec,want", [
    ("80", [("", 0, 80, "tcp")]),
    ("8080:80", [("", 8080, 80, "tcp")]),
    ("127.0.0.1:8080:80/udp", [("127.0.0.1", 8080, 80, "udp")]),
    ("127.0.0.1::80", [("127.0.0.1", 0, 80, "tcp")]),
    ("0.0.0.0:9000-9001:90-91", [("", 9000, 90, "tcp"), ("", 9001, 91, "tcp")]),
])
def test_parse_publish(spec, want):
    got = [(b["HostIp"], b["HostPort"], b["ContainerPort"], b["Protocol"]) for b in ports.parse_publish([spec])]
    assert got == want


@pytest.mark.parametrize("spec", ["70000:80", "abc", "127.0.0.1:80:", "1.2.3:80:80", "80:80/icmp",
                                  "8000-8002:80-81", "a:b:c:d", "90-80:80", "[::1]:80:80"])
def test_parse_publish_rejects(spec):
    with pytest.raises(UsageError, match="invalid port spec"):
        ports.parse_publish([spec])


def test_same_host_port_twice_is_refused():
    with pytest.raises(Conflict):
        ports.parse_publish(["8080:80", "127.0.0.1:8080:81"])
    ports.parse_publish(["8080:80", "8080:80/udp"])  # other protocol: fine


def test_assign_conflicts_with_another_container():
    mine = ports.parse_publish(["127.0.0.1:18123:80"])
    other = [{"HostIp": "", "HostPort": 18123, "ContainerPort": 81, "Protocol": "tcp", "Container": "web"}]
    with pytest.raises(Conflict, match="already allocated.*web"):
        ports.assign(mine, other)
    free = ports.assign(ports.parse_publish(["127.0.0.1::80"]), [])
    assert free[0]["HostPort"] > 0


def test_publish_all_and_ps_text():
    extra = ports.publish_all({"80/tcp": {}, "53/udp": {}}, ports.parse_publish(["8080:80"]))
    assert extra == [{"HostIp": "", "HostPort": 0, "ContainerPort": 53, "Protocol": "udp"}]
    b = ports.parse_publish(["127.0.0.1:8080:80"])
    assert ports.ps_text(b) == "127.0.0.1:8080->80/tcp"
    assert ports.portmap_entries(b) == [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}]


def test_hosts_and_resolv(monkeypatch):
    monkeypatch.setattr(hosts, "_host_resolv", lambda: "search corp\nnameserver 127.0.0.53\nnameserver 192.0.2.1\n")
    text = hosts.hosts_file("bridge", "box", ["web"], ["10.90.0.5"], [("db", "10.1.1.1")])
    assert "10.90.0.5\tbox web" in text and "10.1.1.1\tdb" in text and "127.0.0.1\tlocalhost" in text
    assert "127.0.1.1\tbox" in hosts.hosts_file("none", "box")
    r = hosts.resolv_conf("bridge")
    assert "127.0.0.53" not in r and "nameserver 192.0.2.1" in r and "search corp" in r
    assert hosts.resolv_conf("bridge", gateway_dns="10.90.0.1").count("nameserver") == 1
    assert "nameserver 9.9.9.9" in hosts.resolv_conf("bridge", dns=["9.9.9.9"])
    with pytest.raises(UsageError):
        hosts.parse_add_host(["nohost"])
    with pytest.raises(UsageError):
        hosts.parse_dns(["not-an-ip"])


def test_create_picks_free_subnets_and_refuses_overlaps(tmp_path, monkeypatch):
    import ipaddress
    monkeypatch.setenv("HULL_ROOT", str(tmp_path))
    monkeypatch.setenv("HULL_NETWORK_STATE", str(tmp_path / "host-state"))  # the subnet claims
    monkeypatch.setattr(config, "host_networks", lambda: [(ipaddress.ip_network("10.90.0.0/24"), "host route")])
    a = config.create("a")
    assert a.subnet == "10.90.1.0/24" and a.gateway == "10.90.1.1" and a.bridge.startswith("hull-")
    b = config.create("b", internal=True)
    assert b.subnet == "10.90.2.0/24"
    plugins = [p["type"] for p in b.conflist["plugins"]]
    assert plugins == ["bridge", "portmap", "firewall", "tuning"]
    assert b.conflist["plugins"][0]["ipMasq"] is False and b.conflist["plugins"][0]["isDefaultGateway"] is False
    with pytest.raises(Conflict, match="overlaps with network a"):
        config.create("c", subnet="10.90.1.128/25")
    with pytest.raises(Conflict, match="host route"):
        config.create("c", subnet="10.90.0.0/25")
    with pytest.raises(UsageError, match="host bits"):
        config.create("c", subnet="10.91.0.1/24")
    with pytest.raises(UsageError, match="not a usable address"):
        config.create("c", subnet="10.91.0.0/24", gateway="10.92.0.1")
    with pytest.raises(UsageError, match="reserved"):
        config.create("host")
    assert [n.name for n in config.all_networks()] == ["a", "b"]
    assert config.load(a.id[:6]).name == "a"
    json.loads((tmp_path / "networks" / "a.conflist").read_text())


def test_subnets_are_claimed_across_hull_roots(tmp_path, monkeypatch):
    """Two HULL_ROOTs on one host never get the same subnet, even while no bridge is up (no
    route shows it); rm releases the claim; the claim of a deleted root is dropped."""
    import shutil
    monkeypatch.setenv("HULL_NETWORK_STATE", str(tmp_path / "host-state"))
    monkeypatch.setattr(config, "host_networks", lambda: [])
    monkeypatch.setenv("HULL_ROOT", str(tmp_path / "one"))
    a = config.create("hull0")
    assert a.subnet == "10.90.0.0/24"
    monkeypatch.setenv("HULL_ROOT", str(tmp_path / "two"))
    b = config.create("hull0")
    assert b.subnet == "10.90.1.0/24"
    with pytest.raises(Conflict, match="another hull root"):
        config.create("mine", subnet="10.90.0.128/25")
    config.remove("hull0")  # two's: its claim goes
    assert config.create("again").subnet == "10.90.1.0/24"
    shutil.rmtree(tmp_path / "one")  # a deleted root: its claim is stale
    monkeypatch.setenv("HULL_ROOT", str(tmp_path / "three"))
    assert config.create("hull0").subnet == "10.90.0.0/24"


def test_plugin_conf_runtime_config_follows_capabilities():
    conflist = {"cniVersion": "1.0.0", "name": "n", "plugins": []}
    plugin = {"type": "portmap", "capabilities": {"portMappings": True}}
    conf = cni._plugin_conf(conflist, plugin, {"portMappings": [{"hostPort": 1}], "mac": "x"}, {"ips": []})
    assert conf["runtimeConfig"] == {"portMappings": [{"hostPort": 1}]}
    assert conf["name"] == "n" and conf["cniVersion"] == "1.0.0" and conf["prevResult"] == {"ips": []}
    assert "runtimeConfig" not in cni._plugin_conf(conflist, {"type": "firewall"}, {"portMappings": [1]}, None)
