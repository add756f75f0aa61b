"""`hull-runtime update / pause / resume / events` on real containers, as clients drive them."""

import json
import os
import signal
import subprocess
import time

import pytest
from runtime_util import make_bundle, unique_id

from hull import cgroups
from hull.cgroups import fs


@pytest.fixture
def rt(runtime):
    """The runtime fixture, deleting this test's containers (and so their cgroups) at the end."""
    yield runtime
    for cid in runtime.ids():
        runtime("delete", "--force", cid, check=False)


def wait_status(runtime, cid, status, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runtime.state(cid)["status"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} never reached {status}: {runtime.state(cid)}")


def started(runtime, tmp_path, rootfs, args, resources=None):
    cid = unique_id()

    def mutate(spec):
        if resources:
            spec["linux"].setdefault("resources", {}).update(resources)
    b = make_bundle(tmp_path, rootfs, args, mutate=mutate)
    runtime("create", "--bundle", b, cid)
    runtime("start", cid)
    return cid, cgroups.manager(cgroups.resolve_path(None, cid))


def test_update_changes_a_running_containers_limits(rt, tmp_path, busybox_rootfs):
    cid, mgr = started(rt, tmp_path, busybox_rootfs, ["sleep", "600"], {"memory": {"limit": 100 << 20}})
    mem = mgr.paths().get("memory") or mgr.paths()[""]
    mfile = "memory.limit_in_bytes" if mgr.version == 1 else "memory.max"
    assert fs.read_int(mem, mfile) == 100 << 20
    rt("update", "--memory", "200M", "--pids-limit", "50", "--cpu-quota", "50000",
            "--cpu-period", "100000", cid)
    assert fs.read_int(mem, mfile) == 200 << 20
    st = mgr.stats()
    assert st["pids"]["limit"] == 50
    assert st["memory"]["usage"]["limit"] == 200 << 20
    if mgr.version == 1:
        assert fs.read(mgr.dir("cpu"), "cpu.cfs_quota_us").strip() == "50000"
    else:
        assert fs.read(mgr.dir, "cpu.max").strip() == "50000 100000"
    # --resources from stdin (runc's -r -)
    r = rt("update", "-r", "-", cid, input=json.dumps({"pids": {"limit": 30}}).encode(), stdin=None)
    assert r.returncode == 0
    assert mgr.stats()["pids"]["limit"] == 30
    # the container still runs
    assert rt.state(cid)["status"] == "running"


def test_update_errors(rt, tmp_path, busybox_rootfs):
    cid, mgr = started(rt, tmp_path, busybox_rootfs, ["sleep", "600"])
    r = rt("update", "--memory", "lots", cid, check=False)
    assert r.returncode == 1 and "--memory: invalid size 'lots'" in r.stderr
    r = rt("update", "--cpu-share", "1", cid, check=False)
    assert r.returncode == 1 and "linux.resources.cpu.shares" in r.stderr
    r = rt("update", "--pids-limit", "-7", cid, check=False)
    assert r.returncode == 1 and "linux.resources.pids.limit" in r.stderr
    r = rt("update", "--memory", "10M", "nope-" + cid, check=False)
    assert r.returncode == 1 and "does not exist" in r.stderr
    rt("kill", cid, "KILL")
    wait_status(rt, cid, "stopped")
    r = rt("update", "--memory", "10M", cid, check=False)
    assert r.returncode == 1 and "container not running" in r.stderr


def test_pause_freezes_and_resume_continues(rt, tmp_path, busybox_rootfs):
    cid, mgr = started(rt, tmp_path, busybox_rootfs, ["sh", "-c", "while :; do :; done"])
    pid = rt.state(cid)["pid"]
    rt("pause", cid)
    assert rt.state(cid)["status"] == "paused"
    assert mgr.frozen()
    with open(f"/proc/{pid}/stat") as f:
        state = f.read().rsplit(")", 1)[1].split()[0]
    assert state in ("D", "S")  # v1 freezer: D; v2: S
    usage = mgr.stats()["cpu"]["usage"]["total"]
    time.sleep(0.3)
    assert mgr.stats()["cpu"]["usage"]["total"] == usage  # no progress while paused
    r = rt("start", cid, check=False)
    assert r.returncode == 1
    rt("resume", cid)
    assert rt.state(cid)["status"] == "running"
    assert not mgr.frozen()
    assert fs.wait_until(lambda: mgr.stats()["cpu"]["usage"]["total"] > usage, 10)
    r = rt("resume", cid, check=False)
    assert r.returncode == 1 and "container not paused" in r.stderr
    # a paused container can be killed and deleted
    rt("pause", cid)
    rt("delete", "--force", cid)
    assert not mgr.exists()


def test_kill_all_on_a_paused_container(rt, tmp_path, busybox_rootfs):
    cid, mgr = started(rt, tmp_path, busybox_rootfs, ["sh", "-c", "sleep 600 & sleep 600 & wait"])
    assert fs.wait_until(lambda: len(mgr.pids()) == 3, 10)
    rt("pause", cid)
    rt("kill", "--all", cid, "KILL")
    wait_status(rt, cid, "stopped")
    assert fs.wait_until(lambda: not mgr.pids(), 10)


def test_events_stats_is_runc_shaped_json(rt, tmp_path, busybox_rootfs):
    cid, mgr = started(rt, tmp_path, busybox_rootfs, ["sleep", "600"], {"pids": {"limit": 40}})
    out = rt("events", "--stats", cid).stdout
    ev = json.loads(out)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    for key in ("cpu", "memory", "pids", "blkio", "hugetlb"):
        assert key in data
    assert data["pids"] == {"current": 1, "limit": 40}
    assert {"usage", "throttling"} <= set(data["cpu"])
    assert {"usage", "swap", "cache", "raw"} <= set(data["memory"])
    r = rt("events", "--interval", "soon", cid, check=False)
    assert r.returncode == 1 and "invalid duration" in r.stderr


def test_events_stream_reports_oom(rt, tmp_path, busybox_rootfs):
    """A container over its memory limit is OOM-killed: `events` emits an oom event, the
    container's exit is 137 and the cgroup says oom_killed."""
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs,
                    ["sh", "-c", "read x < /dev/null; sleep 1; dd if=/dev/zero of=/dev/null bs=200M count=1"],
                    mutate=lambda s: s["linux"].setdefault("resources", {}).update({"memory": {"limit": 30 << 20}}))
    rt("create", "--bundle", b, cid)
    out = tmp_path / "events.out"
    with open(out, "w") as f:
        ev = subprocess.Popen(rt.cmd("events", "--interval", "200ms", cid), stdout=f, stderr=subprocess.STDOUT)
    try:
        rt("start", cid)
        ev.wait(timeout=60)
    finally:
        if ev.poll() is None:
            ev.kill()
            ev.wait()
    events = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    types = [e["type"] for e in events]
    assert "oom" in types, out.read_text()
    assert all(e["id"] == cid for e in events)
    assert "stats" in types
    mgr = cgroups.manager(cgroups.resolve_path(None, cid))
    assert mgr.oom_killed()
    assert rt.state(cid)["status"] == "stopped"


def test_run_oom_exit_137(rt, tmp_path, busybox_rootfs):
    b = make_bundle(tmp_path, busybox_rootfs, ["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"],
                    mutate=lambda s: s["linux"].setdefault("resources", {}).update({"memory": {"limit": 30 << 20}}))
    assert rt("run", "--bundle", b, unique_id(), check=False).returncode == 137


def test_the_init_is_in_its_cgroup_in_every_hierarchy(rt, tmp_path, busybox_rootfs):
    """Whichever way it got there: on v1 and hybrid hosts the init moves itself into its v1
    dirs and is cloned into the cgroup2 one (no move that waits for an RCU grace period); the
    runtime moves it on cgroup2-only hosts."""
    cid, mgr = started(rt, tmp_path, busybox_rootfs, ["sleep", "600"])
    with open(f"/proc/{rt.state(cid)['pid']}/cgroup") as f:
        paths = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in f.read().splitlines()}
    assert paths and set(paths.values()) == {mgr.path}, paths


def test_clone_into_a_cgroup2_dir(tmp_path):
    """kernel/clone.fork_sibling(cgroup_fd): the child starts in that cgroup (clone3's
    CLONE_INTO_CGROUP), and its exit reaches our parent's wait as a fork's would."""
    from hull.kernel import clone
    mount = cgroups.DEFAULT_ROOT if cgroups.detect_mode() == cgroups.UNIFIED else cgroups.DEFAULT_ROOT + "/unified"
    if not os.path.exists(mount + "/cgroup.controllers"):
        pytest.skip("no cgroup2 mount")
    path = f"/hull/test-clone-{unique_id()}"
    created = fs.mkdirs(mount, path)
    try:
        fd = os.open(mount + path, os.O_RDONLY | os.O_DIRECTORY)
        r, w = os.pipe()
        middle = os.fork()
        if middle == 0:  # the child is its sibling: ours
            try:
                if clone.fork_sibling(fd) == 0:
                    with open("/proc/self/cgroup") as f:
                        os.write(w, f.read().encode())
                    os._exit(7)
            finally:
                os._exit(0)
        os.close(w)
        os.close(fd)
        assert os.waitpid(middle, 0)[1] == 0
        seen = os.read(r, 4096).decode().splitlines()
        os.close(r)
        _, status = os.wait()
        assert os.waitstatus_to_exitcode(status) == 7
        assert f"0::{path}" in seen
    finally:
        fs.remove_created(created)
