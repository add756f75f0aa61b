"""A reboot-like loss of /run: the containers' processes die with their monitors (no exit
written), the runtime's state dir (the engine's hull-runtime --root), every mount and cgroup are
gone. `hull ps -a` must report the containers as Exited, `hull rm` must remove them and leave
nothing, and a stale container can be started again."""

import json
import os
import re
import signal
import time
from pathlib import Path

from engine_helpers import clean, engine, wait_for  # noqa: F401

HIERARCHIES = Path("/sys/fs/cgroup")


def _cgroup_dirs(cid):
    return [h / "hull" / cid for h in HIERARCHIES.iterdir() if (h / "hull" / cid).is_dir()]


def _simulate_reboot(eng, ids):
    """What a reboot does to our containers, done to them alone (PIDs we started)."""
    pids = []
    for cid in ids:
        st = json.loads(Path(eng.root, "containers", cid, "state.json").read_text())
        for key in ("MonitorPid", "Pid"):  # the monitor first: it must not record an exit
            if st.get(key):
                os.kill(st[key], signal.SIGKILL)
                pids.append(st[key])
        procs = HIERARCHIES / "pids" / "hull" / cid / "cgroup.procs"
        for p in procs.read_text().split() if procs.exists() else ():
            try:  # the others may already be gone with the pid namespace's init
                os.kill(int(p), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert wait_for(lambda: not [p for p in pids if os.path.exists(f"/proc/{p}") and
                                 Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"])
    rt = Path(eng.root, "runtime")
    assert {p.name for p in rt.iterdir()} >= set(ids)  # the engine's runtime --root
    for p in sorted(rt.iterdir(), reverse=True):
        for f in sorted(p.rglob("*"), key=lambda x: -len(x.parts)):
            f.unlink() if not f.is_dir() or f.is_symlink() else f.rmdir()
        p.rmdir()
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(eng.root + "/")]
    for mp in sorted(points, key=len, reverse=True):
        assert os.system(f"umount -l '{mp}'") == 0
    for cid in ids:
        assert wait_for(lambda: not (HIERARCHIES / "pids" / "hull" / cid / "cgroup.procs").exists()
                        or not (HIERARCHIES / "pids" / "hull" / cid / "cgroup.procs").read_text().strip())
        for d in _cgroup_dirs(cid):
            for sub in sorted(d.glob("**/"), key=lambda x: -len(x.parts)):
                sub.rmdir()


def test_lost_run_reports_exited_and_rm_cleans(clean):
    ids = [clean.out("run", "-d", "--name", "boot1", "busybox", "sleep", "1000"),
           clean.out("run", "-d", "--name", "boot2", "--restart", "always", "busybox", "sh", "-c", "sleep 1000 & wait"),
           clean.out("run", "-d", "--name", "boot3", "--userns=auto", "busybox", "sleep", "1000")]
    time.sleep(0.5)  # past the in-process monitor hand-off
    _simulate_reboot(clean, ids)
    assert clean.out("ps", "-q") == ""
    lines = clean.out("ps", "-a", "--format", "{{.Names}} {{.Status}}").splitlines()
    assert sorted(line.split(" ", 1)[0] for line in lines) == ["boot1", "boot2", "boot3"]
    for line in lines:
        # when it ended is unknown without a reboot to date it (a real reboot gives the boot time)
        assert re.fullmatch(r"Exited \(255\)( \S.* ago)?", line.split(" ", 1)[1]), line
    for cid in ids:
        st = clean.inspect(cid)["State"]
        assert (st["Status"], st["Running"], st["Pid"], st["ExitCode"]) == ("exited", False, 0, 255)
        assert "runtime state is gone" in st["Error"], st["Error"]
    assert clean.out("ps", "-a", "-q", "--filter", "status=exited").split() != []
    # a stale container starts again (its overlay is mounted anew)...
    clean("start", "boot1")
    assert wait_for(lambda: clean.inspect("boot1")["State"]["Status"] == "running")
    assert clean.out("exec", "boot1", "echo", "back") == "back"
    clean("stop", "-t", "1", "boot1")
    # ...and `hull rm` (no -f) removes them all and leaves nothing
    clean("rm", *ids)
    assert clean.ids() == [] and clean.leftovers() == []
    assert not any(_cgroup_dirs(cid) for cid in ids)
    assert json.loads(Path(clean.root, "userns", "allocations.json").read_text()) == {}
