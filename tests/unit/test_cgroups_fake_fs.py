"""v1 and v2 managers writing into a fake cgroupfs tree in tmp (injectable root)."""

import os

import pytest

from hull import cgroups
from hull.cgroups import v1, v2
from hull.cgroups.fs import Unsupported
from hull.errors import HullError, SpecError

V1_DIRS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified")


@pytest.fixture
def v1root(tmp_path):
    root = tmp_path / "cgroup"
    for d in V1_DIRS:
        (root / d).mkdir(parents=True)
    (root / "cpuset/cpuset.cpus").write_text("0-3\n")
    (root / "cpuset/cpuset.mems").write_text("0\n")
    (root / "unified/cgroup.controllers").write_text("hugetlb\n")
    (root / "unified/cgroup.subtree_control").write_text("\n")
    return root


@pytest.fixture
def v2root(tmp_path):
    root = tmp_path / "cgroup2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("cpu memory\n")
    return root


def read(p):
    return p.read_text()


def test_v1_apply_creates_every_hierarchy_and_copies_cpuset(v1root):
    m = cgroups.manager("/hull/c1", root=str(v1root), mode="hybrid", fake=True)
    assert isinstance(m, v1.Manager)
    m.apply(4242)
    for d in V1_DIRS:
        assert read(v1root / d / "hull/c1/cgroup.procs") == "4242\n"
    # a new v1 cpuset inherits cpus/mems from its parent (or it refuses tasks)
    assert read(v1root / "cpuset/hull/c1/cpuset.cpus") == "0-3"
    assert read(v1root / "cpuset/hull/cpuset.mems") == "0"
    assert m.paths()[""] == str(v1root / "unified/hull/c1")
    assert m.paths()["name=systemd"] == str(v1root / "systemd/hull/c1")
    assert m.exists()
    m.destroy()
    assert not m.exists()
    m.destroy()  # idempotent
    assert not (v1root / "memory/hull/c1").exists()


RES = {
    "memory": {"limit": 52428800, "swap": 104857600, "reservation": 1 << 20, "swappiness": 10,
               "disableOOMKiller": True},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "0-1", "mems": "0", "idle": 0},
    "pids": {"limit": 20},
    "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]},
    "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 136, "access": "rw"}],
}


def test_v1_set_writes_files(v1root):
    m = cgroups.manager("/hull/c2", root=str(v1root), mode="hybrid", fake=True)
    m.set(RES)
    mem = v1root / "memory/hull/c2"
    assert read(mem / "memory.limit_in_bytes") == "52428800"
    assert read(mem / "memory.memsw.limit_in_bytes") == "104857600"
    assert read(mem / "memory.soft_limit_in_bytes") == str(1 << 20)
    assert read(mem / "memory.swappiness") == "10"
    assert read(mem / "memory.oom_control") == "1"
    cpu = v1root / "cpu/hull/c2"
    assert read(cpu / "cpu.shares") == "512"
    assert read(cpu / "cpu.cfs_quota_us") == "50000"
    assert read(cpu / "cpu.cfs_period_us") == "100000"
    assert read(cpu / "cpu.cfs_burst_us") == "1000"
    assert read(v1root / "cpuset/hull/c2/cpuset.cpus") == "0-1"
    assert read(v1root / "pids/hull/c2/pids.max") == "20"
    blk = v1root / "blkio/hull/c2"
    assert read(blk / "blkio.weight") == "300"
    assert read(blk / "blkio.throttle.read_bps_device") == "254:0 1048576\n"
    assert read(blk / "blkio.throttle.write_iops_device") == "8:16 100\n"
    # deny everything first, then the rules in order
    assert read(v1root / "devices/hull/c2/devices.deny") == "a\na\n"
    assert read(v1root / "devices/hull/c2/devices.allow") == "c 1:3 rwm\nc 136:* rw\n"
    m.destroy()


def test_v1_plan_order_and_values():
    w = v1.plan({"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": -1}})
    files = [(c, f, v) for c, f, v, _, _ in w]
    assert ("memory", "memory.limit_in_bytes", "-1") in files
    assert ("memory", "memory.memsw.limit_in_bytes", "-1") in files  # unlimited memory => unlimited swap
    assert ("cpu", "cpu.cfs_quota_us", "-1") in files
    assert ("pids", "pids.max", "max") in files
    assert v1.plan({}) == []
    assert [f for _, f, _, _, _ in v1.plan({"devices": []})] == ["devices.deny"]  # empty list: deny all
    assert v1._dev_rule_v1("a", -1, -1, "rwm") == "a"
    assert v1._dev_rule_v1("b", 8, -1, "r") == "b 8:* r"


def test_v1_memory_swap_order_when_raising(v1root):
    """Raising both limits: memsw must go first or the kernel rejects limit > memsw."""
    m = cgroups.manager("/hull/c3", root=str(v1root), mode="hybrid", fake=True)
    m.set({"memory": {"limit": 10 << 20, "swap": 20 << 20}})
    writes = m.check({"memory": {"limit": 100 << 20, "swap": 200 << 20}})
    ordered = [w[2] for w in m._order_memory(writes)]
    assert ordered == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    # lowering: the memory limit first
    m.set({"memory": {"limit": 100 << 20, "swap": 200 << 20}})
    writes = m.check({"memory": {"limit": 10 << 20, "swap": 20 << 20}})
    assert [w[2] for w in m._order_memory(writes)] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    m.destroy()


def test_v1_unsupported_controller_creates_nothing(v1root):
    m = cgroups.manager("/hull/c4", root=str(v1root), mode="hybrid", fake=True)
    with pytest.raises(Unsupported, match=r"linux.resources.network.classID: the net_cls cgroup controller is not"):
        m.set({"memory": {"limit": 1 << 20}, "network": {"classID": 1}})
    with pytest.raises(Unsupported, match="hugetlb"):
        m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]})
    with pytest.raises(SpecError, match="linux.resources.memory.limit"):
        m.set({"memory": {"limit": -3}})
    assert not (v1root / "memory/hull").exists()


def test_v1_hybrid_routes_hugetlb_and_unified_to_the_v2_side(v1root):
    (v1root / "unified/cgroup.subtree_control").write_text("hugetlb\n")
    m = cgroups.manager("/hull/c5", root=str(v1root), mode="hybrid", fake=True)
    m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 20}], "unified": {"cgroup.max.depth": "3"}})
    u = v1root / "unified/hull/c5"
    assert read(u / "hugetlb.2MB.max") == str(2 << 20)
    assert read(u / "cgroup.max.depth") == "3"
    assert "+hugetlb" in read(v1root / "unified/hull/cgroup.subtree_control")
    m.destroy()


def test_v1_legacy_has_no_unified(v1root):
    m = cgroups.manager("/hull/c6", root=str(v1root), mode="legacy", fake=True)
    assert "" not in m.paths()
    with pytest.raises(Unsupported, match="needs cgroup v2"):
        m.set({"unified": {"memory.high": "1"}})


def test_v1_block_device_must_exist(v1root, tmp_path):
    sysroot = tmp_path / "sys"
    (sysroot / "dev/block/254:0").mkdir(parents=True)
    m = v1.Manager("/hull/c7", root=str(v1root), mode="hybrid", fake=True, sys_root=str(sysroot))
    with pytest.raises(SpecError, match="no block device 4095:7") as e:
        m.set({"blockIO": {"throttleReadBpsDevice": [{"major": 4095, "minor": 7, "rate": 1}]}})
    assert e.value.path == "linux.resources.blockIO.throttleReadBpsDevice[0]"
    m.set({"blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1}]}})
    m.destroy()
    assert not (v1root / "blkio/hull/c7").exists()


def test_v1_freeze_and_stats_from_files(v1root):
    m = cgroups.manager("/hull/c8", root=str(v1root), mode="hybrid", fake=True)
    m.apply(1)
    m.freeze()
    assert m.frozen()
    m.thaw()
    assert not m.frozen()
    acct = v1root / "cpuacct/hull/c8"
    (acct / "cpuacct.usage").write_text("123456789\n")
    (acct / "cpuacct.usage_percpu").write_text("100 200 \n")
    (acct / "cpuacct.stat").write_text("user 10\nsystem 5\n")
    (v1root / "cpu/hull/c8/cpu.stat").write_text("nr_periods 10\nnr_throttled 4\nthrottled_time 999\n")
    mem = v1root / "memory/hull/c8"
    (mem / "memory.usage_in_bytes").write_text("4096\n")
    (mem / "memory.limit_in_bytes").write_text("52428800\n")
    (mem / "memory.failcnt").write_text("7\n")
    (mem / "memory.stat").write_text("cache 10\nrss 20\ntotal_cache 11\ntotal_rss 21\n")
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (v1root / "pids/hull/c8/pids.current").write_text("3\n")
    (v1root / "pids/hull/c8/pids.max").write_text("max\n")
    (v1root / "blkio/hull/c8/blkio.throttle.io_service_bytes_recursive").write_text(
        "254:0 Read 4096\n254:0 Write 8192\nTotal 12288\n")
    st = m.stats()
    assert st["cpu"]["usage"]["total"] == 123456789
    assert st["cpu"]["usage"]["percpu"] == [100, 200]
    assert st["cpu"]["usage"]["user"] == 10 * 10**9 // os.sysconf("SC_CLK_TCK")
    assert st["cpu"]["throttling"] == {"periods": 10, "throttledPeriods": 4, "throttledTime": 999}
    assert st["memory"]["usage"]["usage"] == 4096 and st["memory"]["usage"]["failcnt"] == 7
    assert st["memory"]["cache"] == 11 and st["memory"]["rss"] == 21
    assert st["memory"]["oom_kill"] == 2 and m.oom_killed()
    assert st["pids"] == {"current": 3, "limit": 0}
    assert st["blkio"]["ioServiceBytesRecursive"] == [
        {"major": 254, "minor": 0, "op": "Read", "value": 4096},
        {"major": 254, "minor": 0, "op": "Write", "value": 8192}]
    assert st["cpuset"]["cpus"] == [0, 1, 2, 3]
    m.destroy()


# ---------------------------------------------------------------------------------- v2

def test_v2_apply_enables_controllers_below_the_root_only(v2root):
    m = cgroups.manager("/hull/a/b", root=str(v2root), mode="unified", fake=True)
    assert isinstance(m, v2.Manager)
    m.apply(77)
    assert read(v2root / "hull/a/b/cgroup.procs") == "77\n"
    assert read(v2root / "cgroup.subtree_control") == "cpu memory\n"  # the host's root is left alone
    assert read(v2root / "hull/cgroup.subtree_control") == "+cpu +memory\n"
    assert read(v2root / "hull/a/cgroup.subtree_control") == "+cpu +memory\n"
    assert not (v2root / "hull/a/b/cgroup.subtree_control").exists()  # leaf: no internal processes
    m.destroy()
    assert not (v2root / "hull/a/b").exists()


def test_v2_set_converts(v2root):
    m = cgroups.manager("/hull/c1", root=str(v2root), mode="unified", fake=True)
    m.set(RES)
    d = v2root / "hull/c1"
    assert read(d / "memory.max") == "52428800"
    assert read(d / "memory.swap.max") == str(104857600 - 52428800)
    assert read(d / "memory.low") == str(1 << 20)
    assert read(d / "cpu.weight") == "20"
    assert read(d / "cpu.max") == "50000 100000"
    assert read(d / "cpu.max.burst") == "1000"
    assert read(d / "cpuset.cpus") == "0-1"
    assert read(d / "pids.max") == "20"
    assert read(d / "io.weight") == "default 2930\n"
    assert read(d / "io.max") == "254:0 rbps=1048576\n8:16 wiops=100\n"
    assert (d / "devices.bpf").stat().st_size > 0
    # the root enables only what the spec needs (pids, io, cpuset were missing there)
    assert "+cpuset +io +pids" in read(v2root / "cgroup.subtree_control")
    assert any("swappiness" in w for w in m.warnings)
    assert any("disableOOMKiller" in w for w in m.warnings)
    m.destroy()


def test_v2_plan_details():
    w, _ = v2.plan({"memory": {"limit": -1}, "cpu": {"period": 50000}})
    assert ("memory", "memory.max", "max") in [x[:3] for x in w]
    assert ("memory", "memory.swap.max", "max") in [x[:3] for x in w]
    assert ("cpu", "cpu.max", "max 50000") in [x[:3] for x in w]
    # a raw unified value wins over the converted one
    w, _ = v2.plan({"cpu": {"shares": 1024}, "unified": {"cpu.weight": "300"}})
    assert [x[1:3] for x in w] == [("cpu.weight", "300")]
    # swap-only update uses the live memory.max
    w, _ = v2.plan({"memory": {"swap": 300}}, current_memory=100)
    assert [x[1:3] for x in w] == [("memory.swap.max", "200")]


@pytest.mark.parametrize("res,match", [
    ({"network": {"classID": 1}}, "net_cls/net_prio do not exist on cgroup v2"),
    ({"cpu": {"realtimeRuntime": 1000}}, "realtime"),
    ({"memory": {"kernelTCP": 1 << 20}}, "kernelTCP"),
    ({"rdma": {"mlx": {"hcaHandles": 1}}, "memory": {"limit": 1 << 20}}, None),
])
def test_v2_unsupported(v2root, res, match):
    m = cgroups.manager("/hull/c2", root=str(v2root), mode="unified", fake=True)
    if match is None:
        m.set(res)
        assert read(v2root / "hull/c2/rdma.max") == "mlx hca_handle=1 hca_object=max\n"
        m.destroy()
        return
    with pytest.raises(Unsupported, match=match):
        m.set(res)
    assert not (v2root / "hull").exists()


def test_v2_missing_controller(v2root):
    (v2root / "cgroup.controllers").write_text("memory\n")
    m = cgroups.manager("/hull/c3", root=str(v2root), mode="unified", fake=True)
    with pytest.raises(Unsupported, match=r"linux.resources.pids.limit: the pids controller is not available"):
        m.set({"pids": {"limit": 5}})
    assert not (v2root / "hull").exists()


def test_v2_freeze_kill_stats(v2root):
    m = cgroups.manager("/hull/c4", root=str(v2root), mode="unified", fake=True)
    m.apply(1)
    m.freeze()
    assert m.frozen()
    m.thaw()
    assert not m.frozen()
    d = v2root / "hull/c4"
    (d / "cgroup.kill").write_text("0")
    (d / "cpu.stat").write_text("usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 5\n"
                                "nr_throttled 2\nthrottled_usec 30\n")
    (d / "memory.current").write_text("8192\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.stat").write_text("anon 100\nfile 200\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (d / "pids.current").write_text("2\n")
    (d / "pids.max").write_text("20\n")
    (d / "io.stat").write_text("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
    (d / "hugetlb.2MB.max").write_text("max\n")
    (d / "hugetlb.2MB.current").write_text("0\n")
    st = m.stats()
    assert st["cpu"]["usage"] == {"total": 1_000_000, "percpu": [], "percpu_kernel": [], "percpu_user": [],
                                  "kernel": 400_000, "user": 600_000}
    assert st["cpu"]["throttling"] == {"periods": 5, "throttledPeriods": 2, "throttledTime": 30_000}
    assert st["memory"]["usage"]["usage"] == 8192 and st["memory"]["usage"]["failcnt"] == 3
    assert st["memory"]["cache"] == 200 and st["memory"]["rss"] == 100
    assert st["memory"]["oom_kill"] == 1 and m.oom_killed()
    assert st["pids"] == {"current": 2, "limit": 20}
    assert {"major": 8, "minor": 0, "op": "Write", "value": 20} in st["blkio"]["ioServiceBytesRecursive"]
    assert {"major": 8, "minor": 0, "op": "Read", "value": 1} in st["blkio"]["ioServicedRecursive"]
    assert st["hugetlb"] == {"2MB": {"usage": 0, "max": 0, "failcnt": 0}}
    m.kill_all()
    assert read(d / "cgroup.kill") == "1"
    m.destroy()


def test_manager_refuses_machine_subtree(v1root):
    with pytest.raises(HullError, match="process_api"):
        cgroups.manager("/process_api/x", root=str(v1root), mode="hybrid", fake=True)
