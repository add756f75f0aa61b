"""Shared fixtures: a busybox rootfs built from the host's busybox-static, and leak checks.

Integration tests need root; they are skipped (with the reason) when not root.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

# Everything hull-made that tests could leak: cgroups under these parents, mounts under tmp dirs.
CGROUP_FS = Path("/sys/fs/cgroup")


def hull_parents():
    """The hull parents (<hierarchy>/hull, hull-test): in each v1 hierarchy and the hybrid
    unified mount, and at the root of a pure cgroup2 mount (the VM)."""
    if not CGROUP_FS.exists():
        return set()
    roots = [CGROUP_FS] + [h for h in CGROUP_FS.iterdir() if h.is_dir() and not h.name.startswith("hull")]
    return {str(h / top) for h in roots for top in ("hull", "hull-test") if (h / top).is_dir()}


def _hull_cgroups():
    """Every cgroup under a hull parent."""
    found = set()
    for base in hull_parents():
        for dirpath, dirnames, _ in os.walk(base):
            for d in dirnames:
                found.add(os.path.join(dirpath, d))
    return found


def release_parents(before):
    """What the engine keeps between containers goes when no container is left: the monitors'
    cgroup (as the zygote releases it when idle) and the hull parents this session made."""
    import time
    from hull.engine import lifecycle
    deadline = time.monotonic() + 10  # a monitor's cleanup may still be on its way out
    while True:
        lifecycle.release_monitor_cgroup()
        if not any(os.path.isdir(os.path.join(p, "monitor")) for p in hull_parents()) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for parent in sorted(hull_parents() - before):
        try:
            os.rmdir(parent)
        except OSError:
            pass  # not empty: the leak check names what is left in it


def _hull_mounts():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f if "hull" in line.split()[4]}


def build_busybox_rootfs(dest: Path):
    """A minimal rootfs: static busybox with every applet linked, /etc files, mount points."""
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home", "var", "run"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copy2(BUSYBOX, dest / "bin/busybox")
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = dest / applet
        if not link.exists() and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/bin/busybox", link)
    (dest / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        "user:x:1000:1000:user:/home:/bin/sh\n")
    (dest / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\nuser:x:1000:\nextra:x:2000:user\n")
    (dest / "etc/hostname").write_text("busybox\n")
    return dest


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory):
    """A read-only-by-convention busybox rootfs shared by the session. Tests that write into
    the rootfs must use `fresh_rootfs`."""
    return build_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture
def fresh_rootfs(tmp_path):
    return build_busybox_rootfs(tmp_path / "rootfs")


@pytest.fixture(scope="session", autouse=True)
def no_leaks():
    """Fail the session if a test left a hull cgroup or mount behind."""
    before_cg, before_mnt, before_parents = _hull_cgroups(), _hull_mounts(), hull_parents()
    yield
    release_parents(before_parents)
    leaked = sorted(_hull_cgroups() - before_cg) + sorted(hull_parents() - before_parents) + \
        sorted(_hull_mounts() - before_mnt)
    if leaked:
        pytest.fail("tests leaked:\n  " + "\n  ".join(leaked), pytrace=False)


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="integration tests need root")
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture
def userns_rootfs():
    """A fresh rootfs whose parent dirs the mapped root of a user namespace can traverse
    (pytest's own tmp dirs are 0700 root)."""
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="hull-userns-"))
    os.chmod(base, 0o755)
    try:
        yield build_busybox_rootfs(base / "rootfs")
    finally:
        shutil.rmtree(base, ignore_errors=True)
