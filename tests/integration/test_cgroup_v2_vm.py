"""Run the cgroup v2 integration tests (marker `cgroup2`) inside a qemu VM, in one boot.

This machine's cgroups are v1 (hybrid, no v2 controllers), so `tests/vm/vmrun.py` boots Debian's
kernel with `cgroup_no_v1=all` and runs `pytest -m cgroup2 tests/integration` there, with the
repository shared at the same path. Skipped, with the reason, only when qemu or the kernel
package is missing (CI installs qemu-system-x86 and linux-image-amd64 from .ci/packages.txt),
or when this already runs inside the VM. Expect a few minutes: the guest is emulated (TCG).

Python runs ~10-20x slower in the guest, and collecting every integration module costs ~15 s
there, so by default only the files that mention "cgroup2" are given to `pytest -m cgroup2`
(the marker is set in the test files, by convention). HULL_VM_COLLECT_ALL=1 collects all of
tests/integration instead.

Environment: HULL_VM_TIMEOUT (seconds, default 3600) bounds the whole VM run;
HULL_VM_PYTEST_ARGS adds arguments to the inner pytest (e.g. "-x -k oom").
"""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
VMRUN = REPO / "tests" / "vm" / "vmrun.py"


def _vmrun():
    spec = importlib.util.spec_from_file_location("hull_tests_vmrun", VMRUN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cgroup2_files():
    """The integration test files that can hold cgroup2-marked tests (relative paths)."""
    if os.environ.get("HULL_VM_COLLECT_ALL"):
        return ["tests/integration"]
    base = REPO / "tests" / "integration"
    files = sorted(str(p.relative_to(REPO)) for p in base.rglob("test_*.py")
                   if "cgroup2" in p.read_text(errors="replace") and p.name != Path(__file__).name)
    return files or ["tests/integration"]


def test_cgroup2_suite_in_vm():
    if os.environ.get("HULL_IN_VM"):
        pytest.skip("already inside the VM")
    if os.geteuid() != 0:
        pytest.skip("needs root (the VM shares the host's / over 9p with passthrough ownership)")
    reason = _vmrun().availability()
    if reason:
        pytest.skip(f"cgroup v2 VM unavailable: {reason}")

    inner = [sys.executable, "-m", "pytest", "-m", "cgroup2", "-p", "no:cacheprovider",
             "-q", "-rfEs", "--color=no", *shlex.split(os.environ.get("HULL_VM_PYTEST_ARGS", "")),
             *_cgroup2_files()]
    timeout = os.environ.get("HULL_VM_TIMEOUT", "3600")
    # Byte-compiling is ~10x dearer in the guest: let it write __pycache__ (git-ignored) into the
    # shared repo even when this shell sets PYTHONDONTWRITEBYTECODE; later runs reuse it (~10 s).
    r = subprocess.run([sys.executable, str(VMRUN), "--timeout", timeout,
                        "--env", "PYTHONDONTWRITEBYTECODE=", "--", *inner],
                       cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace")
    out = r.stdout
    print(out)  # shown by pytest with -s / -rA, and on failure
    tail = "\n".join(out.splitlines()[-60:])
    assert r.returncode != 125, f"the VM failed (not the tests):\n{tail}"
    assert r.returncode != 124, f"the VM run timed out after {timeout} s:\n{tail}"
    assert r.returncode == 0, f"cgroup2 tests failed in the VM (pytest exit {r.returncode}):\n{tail}"
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    assert re.search(r"\d+ passed", summary), f"no cgroup2 test passed in the VM: {summary!r}"
    # the VM's own smoke tests must have run there, not been skipped
    assert "test_vm_smoke.py" not in "".join(l for l in out.splitlines() if l.startswith("SKIPPED")), tail
