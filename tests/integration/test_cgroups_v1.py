"""cgroup v1 on this host (hybrid/legacy), with plain forked processes placed in a hull cgroup.

Each test asserts a real effect from the process' side: OOM kill, fork refused, CPU share,
allowed CPUs, device access, frozen state. No timing asserts: waits are bounded polls.
"""

import errno
import mmap
import os
import signal
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from cgroups_util import managed, proc_state, start, unique_path  # noqa: E402

from hull import cgroups  # noqa: E402
from hull.cgroups import fs  # noqa: E402
from hull.cgroups.fs import Unsupported  # noqa: E402
from hull.errors import HullError, SpecError  # noqa: E402

pytestmark = pytest.mark.skipif(cgroups.detect_mode() == "unified",
                                reason="cgroup v1 tests need a v1 (hybrid or legacy) host")


@pytest.fixture
def cg():
    """A manager for a unique /hull/test-xxx cgroup, plus the children to reap; all cleaned up."""
    m = cgroups.manager(unique_path())
    yield from managed(m)


def _dirs_exist(path):
    m = cgroups.manager(path)
    return [d for d in m.paths().values() if os.path.isdir(d)]


def test_memory_limit_oom_kills_and_is_reported(cg):
    def hog():
        buf = bytearray(200 << 20)
        for i in range(0, len(buf), 4096):  # touch every page
            buf[i] = 1
        return "survived"

    res = {"memory": {"limit": 50 << 20}}
    if os.path.exists(os.path.join(cg.hierarchies["memory"], "memory.memsw.limit_in_bytes")):
        res["memory"]["swap"] = 50 << 20  # no swap either, if the host had some
    c = start(cg, hog, res)
    assert c.result() is None
    status = c.wait()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert cg.oom_killed()
    st = cg.stats()
    assert st["memory"]["oom_kill"] >= 1
    assert st["memory"]["usage"]["limit"] == 50 << 20


def test_pids_limit_stops_a_fork_bomb(cg):
    def bomb():
        kids, err = [], None
        for _ in range(200):
            try:
                pid = os.fork()
            except OSError as e:
                err = e.errno
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            kids.append(pid)
        for k in kids:  # clean up our own children before reporting
            os.kill(k, signal.SIGKILL)
            os.waitpid(k, 0)
        return {"forked": len(kids), "errno": err}

    c = start(cg, bomb, {"pids": {"limit": 20}})
    r = c.result()
    assert r["errno"] == errno.EAGAIN
    assert r["forked"] == 19  # 20 tasks: the bomb itself plus 19 children
    assert os.WEXITSTATUS(c.wait()) == 0
    # the host is unaffected
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    assert os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 7
    assert cg.stats()["pids"]["limit"] == 20


def test_cpu_quota_half_a_cpu(cg):
    def spin():
        while True:
            pass

    c = start(cg, spin, {"cpu": {"quota": 50000, "period": 100000}})
    acct = cg.dir("cpuacct")
    time.sleep(0.3)  # let it start
    u0, t0 = fs.read_int(acct, "cpuacct.usage"), time.monotonic()
    time.sleep(2.0)
    u1, t1 = fs.read_int(acct, "cpuacct.usage"), time.monotonic()
    share = (u1 - u0) / ((t1 - t0) * 1e9)
    assert 0.3 <= share <= 0.7, f"busy loop got {share:.2f} of a CPU with a 50% quota"
    st = cg.stats()
    assert st["cpu"]["throttling"]["throttledPeriods"] > 0
    assert st["cpu"]["usage"]["total"] >= u1
    assert sum(st["cpu"]["usage"]["percpu"]) > 0
    c.reap()


def test_cpuset_pins_the_process(cg):
    cpus = fs.read("/sys/fs/cgroup/cpuset", "cpuset.effective_cpus", "0").strip()
    last = str(max(int(x) for x in cpus.replace("-", ",").split(",")))

    def allowed():
        with open("/proc/self/status") as f:
            return [ln.split()[1] for ln in f if ln.startswith("Cpus_allowed_list")][0]

    c = start(cg, allowed, {"cpu": {"cpus": last, "mems": "0"}})
    assert c.result() == last
    assert cg.stats()["cpuset"]["cpus"] == [int(last)]


def test_cpuset_unavailable_cpu_is_a_clear_error(cg):
    with pytest.raises(HullError, match=r"linux.resources.cpu.cpus: cannot set cpuset.cpus to 63.*parent"):
        cg.set({"cpu": {"cpus": "63"}})
    assert not cg.exists()  # set() created the cgroup and removed it again


def test_devices_deny_zero_allow_null(cg):
    def probe():
        out = {}
        for dev in ("/dev/null", "/dev/zero"):
            try:
                os.close(os.open(dev, os.O_RDWR))
                out[dev] = "ok"
            except OSError as e:
                out[dev] = errno.errorcode[e.errno]
        return out

    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    c = start(cg, probe, {"devices": rules})
    assert c.result() == {"/dev/null": "ok", "/dev/zero": "EPERM"}
    assert fs.read(cg.dir("devices"), "devices.list").split("\n")[0] == "c 1:3 rwm"


def _a_block_device():
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("loop", "zram", "ram")):
            continue
        with open(f"/sys/block/{name}/dev") as f:
            return tuple(int(x) for x in f.read().split(":"))
    pytest.skip("no disk block device on this host")


def test_blkio_throttle_files_name_the_device(cg):
    major, minor = _a_block_device()
    cg.set({"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]}})
    d = cg.dir("blkio")
    assert f"{major}:{minor} 1048576" in fs.read(d, "blkio.throttle.read_bps_device")
    assert f"{major}:{minor} 100" in fs.read(d, "blkio.throttle.write_iops_device")


def test_freeze_stops_progress_and_thaw_resumes(cg):
    shared = mmap.mmap(-1, 8)

    def count():
        n = 0
        while True:
            n += 1
            shared[:8] = struct.pack("Q", n)

    def counter():
        return struct.unpack("Q", shared[:8])[0]

    c = start(cg, count)
    assert fs.wait_until(lambda: counter() > 0, 10)
    cg.freeze()
    assert cg.frozen()
    assert proc_state(c.pid) == "D"  # v1 freezer: frozen tasks show as D
    before = counter()
    time.sleep(0.2)
    assert counter() == before  # no progress while frozen
    cg.thaw()
    assert not cg.frozen()
    assert fs.wait_until(lambda: counter() > before, 10)
    assert proc_state(c.pid) in ("R", "S")


def test_set_new_memory_limit_on_a_live_cgroup(cg):
    def hold():
        buf = bytearray(30 << 20)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
        os.write(1, b"")
        time.sleep(60)

    c = start(cg, hold, {"memory": {"limit": 100 << 20}})
    mem = cg.dir("memory")
    assert fs.wait_until(lambda: fs.read_int(mem, "memory.usage_in_bytes") > 25 << 20, 10)
    cg.set({"memory": {"limit": 200 << 20}})
    assert fs.read_int(mem, "memory.limit_in_bytes") == 200 << 20
    # lowering below what is in use (anonymous memory, no swap) fails clearly, and the old limit stays
    if not os.path.exists("/proc/swaps") or len(open("/proc/swaps").read().splitlines()) <= 1:
        with pytest.raises(HullError, match=r"linux.resources.memory.limit: cannot set memory.limit_in_bytes"):
            cg.set({"memory": {"limit": 10 << 20}})
        assert fs.read_int(mem, "memory.limit_in_bytes") == 200 << 20
    assert proc_state(c.pid) != "Z"
    cg.set({"memory": {"limit": -1}})
    assert fs.read_int(mem, "memory.limit_in_bytes") > 1 << 40


def test_kill_all_empties_the_cgroup(cg):
    def family():
        for _ in range(3):
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
        time.sleep(60)

    start(cg, family)
    assert fs.wait_until(lambda: len(cg.pids()) == 4, 10)
    cg.kill_all(signal.SIGKILL)
    # grandchildren are reparented; the cgroup is empty once they are all gone
    assert cg.pids() == [] or fs.wait_until(lambda: not cg.pids(), 10)


def test_kill_all_with_sigterm(cg):
    def sleeper():
        time.sleep(60)

    c = start(cg, sleeper)
    cg.kill_all(signal.SIGTERM)
    st = c.wait()
    assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGTERM


def test_bad_input_creates_nothing():
    path = unique_path()
    m = cgroups.manager(path)
    bad = [
        ({"memory": {"limit": -5}}, SpecError, "linux.resources.memory.limit"),
        ({"cpu": {"shares": 10**9}}, SpecError, "linux.resources.cpu.shares"),
        ({"pids": {"limit": -20}}, SpecError, "linux.resources.pids.limit"),
        ({"devices": [{"allow": True, "type": "q"}]}, SpecError, "linux.resources.devices[0].type"),
        ({"blockIO": {"throttleReadBpsDevice": [{"major": 4095, "minor": 4095, "rate": 1}]}}, SpecError,
         "no block device 4095:4095"),
        ({"network": {"classID": 5}}, Unsupported, "net_cls"),
        ({"rdma": {"mlx5_0": {"hcaHandles": 1}}}, Unsupported, "rdma"),
        ({"cpu": {"cpus": "0-1000"}}, HullError, "linux.resources.cpu.cpus"),
    ]
    for res, exc, text in bad:
        with pytest.raises(exc) as e:
            m.set(res)
        assert text in str(e.value)
        assert _dirs_exist(path) == []
    if "hugetlb" not in cgroups.manager(path).hierarchies and \
            "hugetlb" not in fs.read("/sys/fs/cgroup/unified", "cgroup.subtree_control", "").split():
        with pytest.raises(Unsupported, match=r"hugepageLimits\[0\]: the hugetlb cgroup controller"):
            m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]})
        assert _dirs_exist(path) == []
    with pytest.raises(SpecError, match="linux.cgroupsPath"):
        cgroups.resolve_path("/hull/../escape", "x")
    with pytest.raises(SpecError, match="linux.cgroupsPath"):
        cgroups.resolve_path("../escape", "x")


def test_unsupported_blkio_weight_names_the_knob(cg):
    if os.path.exists("/sys/fs/cgroup/blkio/blkio.weight") or os.path.exists("/sys/fs/cgroup/blkio/blkio.bfq.weight"):
        pytest.skip("this host's block scheduler has weights")
    with pytest.raises(Unsupported, match=r"linux.resources.blockIO.weight: blkio.weight / blkio.bfq.weight"):
        cg.set({"blockIO": {"weight": 500}})
    assert not cg.exists()


def test_relative_path_lands_under_hull_and_stats_shape(cg):
    path = cgroups.resolve_path("", "abc")
    assert path == "/hull/abc"
    c = start(cg, lambda: time.sleep(60))
    st = cg.stats()
    assert set(st) == {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb"}
    assert st["pids"]["current"] == 1
    assert cg.pids() == [c.pid]
    if cg.mode == "hybrid":
        assert fs.pids_in(cg.paths()[""]) == [c.pid]  # also on the unified side, like runc


def test_destroy_is_idempotent():
    m = cgroups.manager(unique_path())
    m.set({"pids": {"limit": 5}})
    assert m.exists()
    m.destroy()
    m.destroy()
    assert not m.exists()
