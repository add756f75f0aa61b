"""The cgroup v2 core files and the device BPF program, tested on whatever unified hierarchy the
host has: /sys/fs/cgroup/unified on a hybrid host (no controllers needed), /sys/fs/cgroup on a
v2 host (and in the tests/vm harness). Uses the v2 Manager directly with that root."""

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
from hull.cgroups.v2 import Manager  # noqa: E402
from hull.errors import SpecError  # noqa: E402
from hull.kernel import bpf  # noqa: E402

MODE = cgroups.detect_mode()
ROOT = {"unified": "/sys/fs/cgroup", "hybrid": "/sys/fs/cgroup/unified"}.get(MODE)
pytestmark = pytest.mark.skipif(ROOT is None, reason="no cgroup2 mount on this host (legacy mode)")


@pytest.fixture
def cg():
    m = cgroups.manager(unique_path(), root=ROOT, mode="unified")
    assert isinstance(m, Manager)
    yield from managed(m)


def probe_devices():
    out = {}
    for dev in ("/dev/null", "/dev/zero", "/dev/full"):
        try:
            os.close(os.open(dev, os.O_RDWR))
            out[dev] = "ok"
        except OSError as e:
            out[dev] = errno.errorcode[e.errno]
    return out


def test_cgroup_procs_moves_the_process(cg):
    c = start(cg, lambda: time.sleep(60))
    assert cg.pids() == [c.pid]
    with open(f"/proc/{c.pid}/cgroup") as f:
        assert f"0::{cg.path}" in f.read().splitlines()


def test_device_bpf_denies_zero_allows_null(cg):
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    c = start(cg, probe_devices, {"devices": rules})
    assert c.result() == {"/dev/null": "ok", "/dev/zero": "EPERM", "/dev/full": "EPERM"}
    flags, ids = bpf.query(cg.dir)
    assert len(ids) == 1 and flags == bpf.BPF_F_ALLOW_MULTI


def test_device_bpf_is_replaced_not_stacked(cg):
    deny_zero = [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 5}]
    cg.set({"devices": deny_zero})
    first = bpf.query(cg.dir)[1]
    # now allow zero and deny full instead: the old program must be gone
    cg.set({"devices": [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 7}]})
    second = bpf.query(cg.dir)[1]
    assert len(first) == 1 and len(second) == 1 and first != second
    c = start(cg, probe_devices)
    assert c.result() == {"/dev/null": "ok", "/dev/zero": "ok", "/dev/full": "EPERM"}


def test_device_access_modes(cg):
    def modes():
        out = {}
        for flag, name in ((os.O_RDONLY, "r"), (os.O_WRONLY, "w")):
            try:
                os.close(os.open("/dev/zero", flag))
                out[name] = "ok"
            except OSError as e:
                out[name] = errno.errorcode[e.errno]
        return out

    c = start(cg, modes, {"devices": [{"allow": False, "access": "rwm"},
                                      {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}]})
    assert c.result() == {"r": "ok", "w": "EPERM"}


def test_freeze_and_thaw(cg):
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
    assert fs.read(cg.dir, "cgroup.freeze").strip() == "1"
    assert proc_state(c.pid) in ("S", "D")  # v2-frozen tasks sleep in the signal-stop path
    before = counter()
    time.sleep(0.2)
    assert counter() == before
    cg.thaw()
    assert not cg.frozen()
    assert fs.wait_until(lambda: counter() > before, 10)


def test_kill_all_uses_cgroup_kill(cg):
    def family():
        for _ in range(3):
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
        time.sleep(60)

    c = start(cg, family)
    assert fs.wait_until(lambda: len(cg.pids()) == 4, 10)
    if not os.path.exists(os.path.join(cg.dir, "cgroup.kill")):
        pytest.skip("kernel without cgroup.kill (< 5.14)")
    cg.kill_all(signal.SIGKILL)
    st = c.wait()
    assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL
    assert fs.wait_until(lambda: not cg.pids(), 10)


def test_kill_all_other_signal_freezes_and_signals(cg):
    c = start(cg, lambda: time.sleep(60))
    cg.kill_all(signal.SIGTERM)
    st = c.wait()
    assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGTERM
    assert not cg.frozen()


def test_bad_device_rule_creates_nothing():
    m = cgroups.manager(unique_path(), root=ROOT, mode="unified")
    with pytest.raises(SpecError, match=r"linux.resources.devices\[1\].access"):
        m.set({"devices": [{"allow": False}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "x"}]})
    assert not m.exists()


def test_stats_on_the_core_files(cg):
    start(cg, lambda: sum(range(10**6)) and time.sleep(60))
    st = cg.stats()
    assert set(st) == {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb"}
    assert fs.wait_until(lambda: cg.stats()["cpu"]["usage"]["total"] > 0, 10)


def test_warming_migrations_moves_nothing():
    """cgroups.warm_migrations' move leaves this process in exactly the cgroups it was in, in
    every hierarchy."""
    with open("/proc/self/cgroup") as f:
        before = f.read()
    procs = cgroups._own_procs_file(cgroups.DEFAULT_ROOT)
    assert procs and os.path.exists(procs)  # this host has a cgroup2 mount and we are in it
    cgroups._move_self(procs)  # what the thread does, here in the foreground
    with open("/proc/self/cgroup") as f:
        assert f.read() == before
