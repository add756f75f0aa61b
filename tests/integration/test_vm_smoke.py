"""Smoke tests for the cgroup v2 VM (tests/vm/vmrun.py): real v2 controllers are there and work.

Marked cgroup2, so test_cgroup_v2_vm.py runs them inside the VM. On a host whose
/sys/fs/cgroup is not cgroup2 (this hybrid machine) they are skipped; inside the VM
(HULL_IN_VM=1) a missing cgroup2 is a failure, not a skip, so a broken VM cannot pass.
They use the cgroup files directly, not hull, so they check the VM, not hull's code.
"""

import errno
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

CG = Path("/sys/fs/cgroup")
WANTED = {"memory", "pids", "cpu"}


def _cgroup_fstype():
    """Filesystem type of the top mount on /sys/fs/cgroup (None if nothing is mounted)."""
    fstype = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(CG):
                fstype = fields[fields.index("-") + 1]
    return fstype


def _problem():
    fstype = _cgroup_fstype()
    if fstype != "cgroup2":
        return f"/sys/fs/cgroup is {fstype or 'not mounted'}, not cgroup2 (unified mode)"
    if os.geteuid() != 0:
        return "needs root"
    return None


@pytest.fixture
def v2():
    problem = _problem()
    if problem:
        if os.environ.get("HULL_IN_VM"):
            pytest.fail(f"inside the VM but: {problem}")
        pytest.skip(f"{problem}; these run in the VM via tests/integration/test_cgroup_v2_vm.py")


@pytest.fixture
def child_cgroup(v2):
    """/sys/fs/cgroup/hull-test/vmsmoke-<unique> with memory, pids and cpu enabled; removed after."""
    parent = CG / "hull-test"
    made_parent = not parent.exists()
    parent.mkdir(exist_ok=True)
    (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(WANTED)))
    cg = parent / f"vmsmoke-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    cg.mkdir()
    try:
        yield cg
    finally:
        if (cg / "cgroup.kill").exists():
            (cg / "cgroup.kill").write_text("1")
        while "populated 1" in (cg / "cgroup.events").read_text():
            time.sleep(0.05)
        cg.rmdir()
        if made_parent:
            try:
                parent.rmdir()
            except OSError:
                pass  # someone else's cgroup is in there too


def run_in(cg, code):
    """Run Python code in a new process that moves itself into cg before exec."""
    def enter():
        with open(cg / "cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
    return subprocess.run([sys.executable, "-S", "-c", code], preexec_fn=enter,
                          capture_output=True, text=True, timeout=600)


def events(cg, name):
    return dict(line.split() for line in (cg / name).read_text().splitlines())


@pytest.mark.cgroup2
def test_unified_root_has_controllers(v2):
    controllers = set((CG / "cgroup.controllers").read_text().split())
    assert WANTED <= controllers, controllers
    enabled = set((CG / "cgroup.subtree_control").read_text().split())
    assert WANTED <= enabled, f"root cgroup.subtree_control: {enabled}"
    # v1 hierarchies are off (cgroup_no_v1=all in the VM): no cgroup v1 mount anywhere
    with open("/proc/self/mountinfo") as f:
        v1 = [line.split()[4] for line in f if line.split(" - ")[1].startswith("cgroup ")]
    assert not v1, f"cgroup v1 mounts present: {v1}"


@pytest.mark.cgroup2
def test_memory_max_oom_kills(child_cgroup):
    (child_cgroup / "memory.max").write_text(str(20 << 20))
    if (child_cgroup / "memory.swap.max").exists():
        (child_cgroup / "memory.swap.max").write_text("0")
    r = run_in(child_cgroup, "b = b'x' * (200 << 20); print('allocated', len(b))")
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stdout, r.stderr)
    assert "allocated" not in r.stdout
    ev = events(child_cgroup, "memory.events")
    assert ev["oom_kill"] == "1", ev
    assert int(ev["max"]) >= 1, ev


@pytest.mark.cgroup2
def test_pids_max_stops_forks(child_cgroup):
    (child_cgroup / "pids.max").write_text("5")
    code = """
import os
r, w = os.pipe()
kids, err = [], None
for _ in range(10):
    try:
        pid = os.fork()
    except OSError as e:
        err = e.errno
        break
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    kids.append(pid)
os.close(w)
for pid in kids:
    os.waitpid(pid, 0)
print(len(kids), err)
"""
    r = run_in(child_cgroup, code)
    assert r.returncode == 0, r.stderr
    forked, err = r.stdout.split()
    assert (int(forked), err) == (4, str(errno.EAGAIN))  # 5 = the parent + 4 children
    assert int(events(child_cgroup, "pids.events")["max"]) >= 1
