"""Bad linux.resources -> SpecError naming the JSON path, before anything touches a cgroupfs."""

import pytest

from hull import cgroups
from hull.cgroups.resources import device_rule
from hull.errors import SpecError


def bad(resources, path, match=None):
    with pytest.raises(SpecError) as e:
        cgroups.validate(resources)
    assert e.value.path == path, str(e.value)
    if match:
        assert match in str(e.value)


def test_valid_full():
    r = {"memory": {"limit": 52428800, "reservation": 1 << 20, "swap": 104857600, "kernel": -1, "kernelTCP": 0,
                    "swappiness": 60, "disableOOMKiller": False, "useHierarchy": True},
         "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "realtimeRuntime": 0,
                 "realtimePeriod": 0, "cpus": "0-1", "mems": "0", "idle": 0},
         "pids": {"limit": 20},
         "blockIO": {"weight": 500, "leafWeight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                     "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
         "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
         "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
         "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
         "unified": {"memory.high": "max"},
         "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3}]}
    assert cgroups.validate(r) is r
    assert cgroups.validate(None) == {}


def test_memory():
    bad({"memory": {"limit": -5}}, "linux.resources.memory.limit", "minimum -1")
    bad({"memory": {"limit": 100}}, "linux.resources.memory.limit", "below one page")
    bad({"memory": {"limit": "50M"}}, "linux.resources.memory.limit", "integer")
    bad({"memory": {"limit": True}}, "linux.resources.memory.limit")
    bad({"memory": {"limit": 1 << 70}}, "linux.resources.memory.limit", "maximum")
    bad({"memory": {"limit": 1 << 30, "swap": 1 << 20}}, "linux.resources.memory.swap", ">= memory.limit")
    bad({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness")
    bad({"memory": {"disableOOMKiller": 1}}, "linux.resources.memory.disableOOMKiller")
    bad({"memory": []}, "linux.resources.memory")


def test_cpu():
    bad({"cpu": {"shares": 1}}, "linux.resources.cpu.shares")
    bad({"cpu": {"shares": 10**9}}, "linux.resources.cpu.shares")
    bad({"cpu": {"quota": 10}}, "linux.resources.cpu.quota", "1000us")
    bad({"cpu": {"quota": -2}}, "linux.resources.cpu.quota")
    bad({"cpu": {"period": 10**7}}, "linux.resources.cpu.period")
    bad({"cpu": {"period": 10}}, "linux.resources.cpu.period")
    bad({"cpu": {"cpus": "0-x"}}, "linux.resources.cpu.cpus")
    bad({"cpu": {"mems": "3-1"}}, "linux.resources.cpu.mems")
    bad({"cpu": {"idle": 2}}, "linux.resources.cpu.idle")
    bad({"cpu": {"quota": 10000, "burst": 20000}}, "linux.resources.cpu.burst")


def test_pids_blkio_and_friends():
    bad({"pids": {"limit": -2}}, "linux.resources.pids.limit")
    bad({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight")
    bad({"blockIO": {"weight": 5000}}, "linux.resources.blockIO.weight")
    bad({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}},
        "linux.resources.blockIO.throttleReadBpsDevice[0].minor", "required")
    bad({"blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0}]}},
        "linux.resources.blockIO.throttleWriteIOPSDevice[0].rate")
    bad({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 1}]}},
        "linux.resources.blockIO.weightDevice[0].weight")
    bad({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}, "linux.resources.hugepageLimits[0].pageSize")
    bad({"hugepageLimits": [{"pageSize": "2MB"}]}, "linux.resources.hugepageLimits[0].limit")
    bad({"network": {"classID": -1}}, "linux.resources.network.classID")
    bad({"network": {"priorities": [{"name": "eth 0", "priority": 1}]}}, "linux.resources.network.priorities[0].name")
    bad({"rdma": {"mlx": {"hcaHandles": -1}}}, "linux.resources.rdma.mlx.hcaHandles")
    bad({"unified": {"../x": "1"}}, "linux.resources.unified.../x")
    bad({"unified": {"cgroup.procs": "1"}}, "linux.resources.unified.cgroup.procs")
    bad({"unified": {"memory.high": 5}}, "linux.resources.unified.memory.high")
    bad("nope", "linux.resources")


def test_devices():
    bad({"devices": [{"type": "c", "major": 1}]}, "linux.resources.devices[0].allow")
    bad({"devices": [{"allow": True, "type": "x"}]}, "linux.resources.devices[0].type")
    bad({"devices": [{"allow": True, "access": "rwx"}]}, "linux.resources.devices[0].access")
    bad({"devices": [{"allow": True, "major": -7}]}, "linux.resources.devices[0].major")
    bad({"devices": {"allow": True}}, "linux.resources.devices")


def test_device_rule_normalised():
    assert device_rule({"allow": False}, "p") == (False, "a", -1, -1, "rwm")
    assert device_rule({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "wr"}, "p") == \
        (True, "c", 1, 3, "rw")
    assert device_rule({"allow": True, "type": "b", "major": 8, "minor": None, "access": "m"}, "p") == \
        (True, "b", 8, -1, "m")
