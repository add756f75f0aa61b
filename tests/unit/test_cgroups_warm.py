"""cgroups.warm_migrations: a thread that keeps re-writing our pid into our own cgroup2 group
(a move that moves nothing) until the container's move is made, then stops."""

import _thread
import os
import time

from hull import cgroups


def own_group():
    with open("/proc/self/cgroup") as f:
        return next(line[3:].strip() for line in f if line.startswith("0::"))


def test_keeps_the_move_warm_until_done(tmp_path):
    group = tmp_path / own_group().strip("/")
    group.mkdir(parents=True, exist_ok=True)
    (tmp_path / "cgroup.controllers").write_text("")  # what marks a cgroup2 mount
    procs = group / "cgroup.procs"
    procs.write_text("")
    threads = _thread._count()
    cgroups.warm_migrations(root=str(tmp_path), keep_for=5)
    time.sleep(0.03)
    writes = procs.read_text().count(str(os.getpid()))
    assert writes >= 3, writes  # once at once, then every few ms
    cgroups.warm_migrations_done()
    deadline = time.monotonic() + 1
    while _thread._count() > threads and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _thread._count() == threads
    settled = procs.read_text()
    time.sleep(0.02)
    assert procs.read_text() == settled


def test_never_in_the_machines_own_group(tmp_path, monkeypatch):
    real_open = open

    def fake_open(path, *a, **kw):
        if path == "/proc/self/cgroup":
            from io import StringIO
            return StringIO("0::/process_api/x\n")
        return real_open(path, *a, **kw)
    monkeypatch.setattr("builtins.open", fake_open)
    (tmp_path / "cgroup.controllers").write_text("")
    assert cgroups._own_procs_file(str(tmp_path)) is None
