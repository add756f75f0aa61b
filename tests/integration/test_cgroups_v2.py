"""cgroup v2 with real controllers: run on a unified host, e.g. inside the tests/vm harness
(`cgroup_no_v1=all`). Skipped with the reason on hosts whose v2 side has no controllers
(this hybrid machine: only hugetlb). The core v2 files are covered by test_cgroups_unified.py.
"""

import errno
import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from cgroups_util import managed, start, unique_path  # noqa: E402

from hull import cgroups  # noqa: E402
from hull.cgroups import fs  # noqa: E402
from hull.cgroups.fs import Unsupported  # noqa: E402
from hull.errors import HullError, SpecError  # noqa: E402


def _skip_reason():
    if cgroups.detect_mode() != "unified":
        return f"host is in cgroup {cgroups.detect_mode()} mode; v2 controller tests run in the tests/vm harness"
    have = set(fs.read("/sys/fs/cgroup", "cgroup.controllers", "").split())
    missing = {"memory", "pids", "cpu", "cpuset"} - have
    if missing:
        return f"cgroup2 root lacks controllers {sorted(missing)}"
    return None


pytestmark = [pytest.mark.cgroup2, pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))]


@pytest.fixture
def cg():
    m = cgroups.manager(unique_path())
    yield from managed(m)


def test_memory_max_oom_kills_and_is_reported(cg):
    def hog():
        buf = bytearray(200 << 20)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
        return "survived"

    c = start(cg, hog, {"memory": {"limit": 50 << 20, "swap": 50 << 20}})
    assert fs.read(cg.dir, "memory.max").strip() == str(50 << 20)
    if os.path.exists(os.path.join(cg.dir, "memory.swap.max")):
        assert fs.read(cg.dir, "memory.swap.max").strip() == "0"  # memory+swap == memory: no swap
    assert c.result() is None
    st = c.wait()
    assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL
    assert cg.oom_killed()
    stats = cg.stats()
    assert stats["memory"]["oom_kill"] >= 1
    assert stats["memory"]["usage"]["limit"] == 50 << 20


def test_pids_max_stops_a_fork_bomb(cg):
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
        for k in kids:
            os.kill(k, signal.SIGKILL)
            os.waitpid(k, 0)
        return {"forked": len(kids), "errno": err}

    c = start(cg, bomb, {"pids": {"limit": 20}})
    r = c.result()
    assert r == {"forked": 19, "errno": errno.EAGAIN}
    assert fs.read(cg.dir, "pids.max").strip() == "20"
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    assert os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 3


def test_cpu_max_half_a_cpu(cg):
    def spin():
        while True:
            pass

    start(cg, spin, {"cpu": {"quota": 50000, "period": 100000, "shares": 1024}})
    assert fs.read(cg.dir, "cpu.max").strip() == "50000 100000"
    assert fs.read(cg.dir, "cpu.weight").strip() == "39"

    def usage():
        return cg.stats()["cpu"]["usage"]["total"]

    time.sleep(0.5)
    u0, t0 = usage(), time.monotonic()
    time.sleep(3.0)
    u1, t1 = usage(), time.monotonic()
    share = (u1 - u0) / ((t1 - t0) * 1e9)
    assert 0.3 <= share <= 0.7, f"busy loop got {share:.2f} of a CPU with cpu.max 50000 100000"
    assert cg.stats()["cpu"]["throttling"]["throttledPeriods"] > 0


def test_cpuset_pins(cg):
    cpus = fs.read("/sys/fs/cgroup", "cpuset.cpus.effective", "0").strip()
    last = str(max(int(x) for x in cpus.replace("-", ",").split(",")))

    def allowed():
        with open("/proc/self/status") as f:
            return [ln.split()[1] for ln in f if ln.startswith("Cpus_allowed_list")][0]

    c = start(cg, allowed, {"cpu": {"cpus": last, "mems": "0"}})
    assert c.result() == last


def test_io_max_names_the_device(cg):
    if "io" not in fs.read("/sys/fs/cgroup", "cgroup.controllers", ""):
        pytest.skip("no io controller")
    dev = None
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "zram", "ram")):
            dev = fs.read(f"/sys/block/{name}", "dev").strip()
            break
    if dev is None:
        pytest.skip("no disk block device (give the VM a virtio-blk scratch disk)")
    major, minor = (int(x) for x in dev.split(":"))
    cg.set({"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]}})
    line = [ln for ln in fs.read(cg.dir, "io.max").splitlines() if ln.startswith(dev + " ")][0]
    assert "rbps=1048576" in line and "wiops=100" in line


def test_set_memory_on_a_live_cgroup(cg):
    start(cg, lambda: time.sleep(60), {"memory": {"limit": 100 << 20}})
    cg.set({"memory": {"limit": 200 << 20}})
    assert fs.read(cg.dir, "memory.max").strip() == str(200 << 20)
    cg.set({"memory": {"limit": -1}})
    assert fs.read(cg.dir, "memory.max").strip() == "max"


def test_freeze_v2(cg):
    c = start(cg, lambda: time.sleep(60))
    cg.freeze()
    assert cg.frozen()
    cg.thaw()
    assert not cg.frozen()
    cg.kill_all()
    assert os.WTERMSIG(c.wait()) == signal.SIGKILL


def test_v2_unsupported_and_bad_input_create_nothing():
    m = cgroups.manager(unique_path())
    for res, exc, text in [
        ({"cpu": {"realtimeRuntime": 1000}}, Unsupported, "realtime"),
        ({"network": {"classID": 1}}, Unsupported, "net_cls"),
        ({"memory": {"limit": -9}}, SpecError, "linux.resources.memory.limit"),
        ({"cpu": {"cpus": "250"}}, HullError, "linux.resources.cpu.cpus"),
    ]:
        with pytest.raises(exc, match=text):
            m.set(res)
        assert not m.exists()
