"""Helpers for the engine tests: a temp HULL_ROOT per test module with the busybox image
bootstrapped into it, `hull(...)` through the venv's console script, and a cleanup check that
fails the module if a container, monitor, cgroup or mount is left behind."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HULL = str(Path(sys.executable).with_name("hull"))


def with_network(args):
    """`hull run`/`create` without a network flag get `--network none`: `hull run` defaults to
    the bridge (hull0, as Docker), which tests that do not look at networking would only pay
    for (a veth, a lease, iptables rules per container). Tests of networking pass --network
    (test_network_*.py), and test_network_bridge checks the default itself."""
    args = list(args)
    if args and args[0] in ("run", "create") and not any(
            a in ("--network", "--net") or a.startswith(("--network=", "--net=")) for a in args):
        args[1:1] = ["--network", "none"]
    return args


class Engine:
    def __init__(self, root):
        self.root = str(root)
        self.env = dict(os.environ, HULL_ROOT=self.root)
        self.env.pop("HULL_RUNTIME_ROOT", None)

    def __call__(self, *args, check=True, input=None, timeout=60):
        args = with_network(args)
        p = subprocess.run([HULL, *args], env=self.env, capture_output=True, text=True,
                           input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"hull {' '.join(args)} -> {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def out(self, *args):
        return self(*args).stdout.strip()

    def inspect(self, ref):
        return json.loads(self("inspect", ref).stdout)[0]

    def ids(self):
        d = Path(self.root, "containers")
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    def monitors(self):
        """PIDs of live monitors recorded for this root's containers."""
        out = []
        for cid in self.ids():
            try:
                st = json.loads(Path(self.root, "containers", cid, "state.json").read_text())
            except (OSError, ValueError):
                continue
            if st.get("MonitorPid") and os.path.exists(f"/proc/{st['MonitorPid']}"):
                out.append(st["MonitorPid"])
        return out

    def cleanup(self):
        for cid in self.ids():
            self("rm", "-f", cid, check=False)

    def leftovers(self):
        """What a container of this root could leave behind."""
        left = []
        left += [f"container {c}" for c in self.ids()]
        rt = Path(self.root, "runtime")
        if rt.is_dir():
            left += [f"runtime state {p.name}" for p in rt.iterdir() if not p.name.startswith(".")]
        with open("/proc/self/mountinfo") as f:
            left += [f"mount {line.split()[4]}" for line in f if self.root in line.split()[4]]
        return left


@pytest.fixture(scope="module")
def engine():
    if os.geteuid() != 0:
        pytest.skip("engine tests need root")
    root = tempfile.mkdtemp(prefix="hull-engine-")
    eng = Engine(root)
    eng("image", "bootstrap", "busybox")
    yield eng
    eng.cleanup()
    left = eng.leftovers()
    shutil.rmtree(root, ignore_errors=True)
    assert not left, f"engine tests left: {left}"


@pytest.fixture
def clean(engine):
    """Per test: remove what the test made; fail if a container or monitor survives rm -f."""
    yield engine
    for cid in engine.ids():
        engine("rm", "-f", cid, check=False)
    assert not engine.ids()
    deadline = time.monotonic() + 10
    while engine.monitors() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not engine.leftovers(), engine.leftovers()


def cgroup_file(cid, controller, name):
    return Path(f"/sys/fs/cgroup/{controller}/hull/{cid}/{name}").read_text().strip()


def wait_for(pred, timeout=20, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()
