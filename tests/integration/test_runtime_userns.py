"""User namespaces end to end: id maps with several ranges, an idmapped rootfs
(org.hull.rootfs.idmap), runtime-spec 1.2 idmapped bind mounts, the chown fallback, and clear
errors for what cannot work."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from runtime_util import add_ns, make_bundle, unique_id, userns, without_ns

from hull.kernel import idmap, mounts

pytestmark = pytest.mark.skipif(not idmap.supported(), reason="kernel without mount_setattr")

ANN = "org.hull.rootfs.idmap"


def build_busybox_rootfs(dest):
    import importlib.util
    spec = importlib.util.spec_from_file_location("_top_conftest", Path(__file__).parent.parent / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_busybox_rootfs(dest)


def _ranges(*triples):
    return [{"containerID": c, "hostID": h, "size": s} for c, h, s in triples]


@pytest.fixture
def host_dir():
    """A scratch dir the mapped root can traverse (pytest's tmp dirs are 0700 root)."""
    base = Path(tempfile.mkdtemp(prefix="hull-userns-data-"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(runtime, tmp_path, rootfs, script, mutate):
    if rootfs.parent.name.startswith("hull-userns-") and not (rootfs / "data").exists():
        (rootfs / "data").mkdir()  # root of a user namespace cannot create it in a host-root rootfs
    b = make_bundle(tmp_path, rootfs, ["sh", "-c", script], mutate)
    return runtime("run", "--bundle", b, unique_id(), check=False)


# ----------------------------------------------------------------------------- several ranges
def test_several_ranges(runtime, tmp_path, userns_rootfs):
    def mutate(spec):
        add_ns(spec, "user")
        spec["linux"]["uidMappings"] = _ranges((0, 100000, 1000), (1000, 1000, 1))
        spec["linux"]["gidMappings"] = _ranges((0, 100000, 1000), (1000, 1000, 1))
        for caps in spec["process"]["capabilities"].values():
            caps += ["CAP_SETUID", "CAP_SETGID"]  # for su
    # su sets the user's supplementary groups: keep them inside the mapping (2000 is not)
    (userns_rootfs / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\nuser:x:1000:\n")
    r = _run(runtime, tmp_path, userns_rootfs,
             "id; cat /proc/self/uid_map; touch /tmp/by-root; su user -c 'id; touch /tmp/by-user'", mutate)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("uid=0(root) gid=0(root)")
    assert [ln.split() for ln in lines[1:3]] == [["0", "100000", "1000"], ["1000", "1000", "1"]]
    assert lines[3].startswith("uid=1000(user) gid=1000(user)")
    st = os.stat(userns_rootfs / "tmp/by-root")
    assert (st.st_uid, st.st_gid) == (100000, 100000)
    st = os.stat(userns_rootfs / "tmp/by-user")
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_unmapped_container_uid_is_refused(runtime, tmp_path, userns_rootfs):
    def mutate(spec):
        add_ns(spec, "user")
        spec["linux"]["uidMappings"] = _ranges((0, 100000, 1000), (1000, 1000, 1))
        spec["linux"]["gidMappings"] = _ranges((0, 100000, 1000), (1000, 1000, 1))
        spec["process"]["user"] = {"uid": 1001, "gid": 0}  # in neither range
    r = _run(runtime, tmp_path, userns_rootfs, "id", mutate)
    assert r.returncode != 0
    assert "1001" in r.stderr or "mapped" in r.stderr, r.stderr


@pytest.mark.parametrize("maps, words", [
    (_ranges((0, 100000, 1000), (500, 200000, 10)), "containerID range overlaps"),
    (_ranges((0, 100000, 1000), (1000, 100500, 10)), "hostID range overlaps"),
    (_ranges((0, 100000, 0)), "at least 1"),
])
def test_bad_linux_mappings_are_clear_errors(runtime, tmp_path, userns_rootfs, maps, words):
    def mutate(spec):
        add_ns(spec, "user")
        spec["linux"]["uidMappings"] = maps
        spec["linux"]["gidMappings"] = _ranges((0, 100000, 65536))
    r = _run(runtime, tmp_path, userns_rootfs, "true", mutate)
    assert r.returncode != 0
    assert "linux.uidMappings" in r.stderr and words in r.stderr, r.stderr


# ----------------------------------------------------------------------------- idmapped rootfs
def test_idmapped_rootfs_owned_by_host_root(runtime, tmp_path, userns_rootfs):
    rootfs = userns_rootfs  # built by host root: every file is owned by 0 on disk
    (rootfs / "etc/foreign").write_text("not yours\n")
    os.chown(rootfs / "etc/foreign", 200000, 200000)  # outside the container's mapping
    (rootfs / "srv").mkdir()
    os.chown(rootfs / "srv", 200000, 200000)

    def mutate(spec):
        userns(spec, 100000)
        spec.setdefault("annotations", {})[ANN] = "true"
    r = _run(runtime, tmp_path, rootfs,
             "id -u; stat -c %u:%g /etc/passwd; head -1 /etc/passwd; touch /tmp/made; "
             "stat -c %u /tmp/made; stat -c %u /etc/foreign; "
             "echo x >> /etc/foreign && echo WROTE-FOREIGN || echo REFUSED-FOREIGN; "
             "touch /srv/x && echo WROTE-SRV || echo REFUSED-SRV; "
             "echo '# mine' >> /etc/hostname && echo WROTE-OWN", mutate)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")
    assert out[0] == "0"
    assert out[1] == "0:0"  # host root's file is the container root's
    assert out[2].startswith("root:x:0:0")
    assert out[3] == "0"
    # an idmapped mount maps both ways: what container root (host 100000) creates is stored
    # with the unshifted id, 0 — the rootfs stays in the image's id space
    st = os.stat(rootfs / "tmp/made")
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert out[4] == "65534"  # an id outside the mapping is nobody inside ...
    assert "REFUSED-FOREIGN" in out and "REFUSED-SRV" in out  # ... and not writable
    assert (rootfs / "etc/foreign").read_text() == "not yours\n"
    assert not (rootfs / "srv/x").exists()
    assert "WROTE-OWN" in out
    assert (rootfs / "etc/hostname").read_text().endswith("# mine\n")


def test_idmapped_rootfs_needs_a_user_namespace(runtime, tmp_path, busybox_rootfs):
    def mutate(spec):
        spec.setdefault("annotations", {})[ANN] = "true"
    r = _run(runtime, tmp_path, busybox_rootfs, "true", mutate)
    assert r.returncode != 0
    assert ANN in r.stderr and "user namespace" in r.stderr, r.stderr


def test_idmapped_rootfs_annotation_value_checked(runtime, tmp_path, busybox_rootfs):
    def mutate(spec):
        userns(spec)
        spec.setdefault("annotations", {})[ANN] = "yes"
    r = _run(runtime, tmp_path, busybox_rootfs, "true", mutate)
    assert r.returncode != 0 and ANN in r.stderr and '"true" or "false"' in r.stderr, r.stderr


def test_idmapped_rootfs_on_a_filesystem_without_idmap_support_names_the_fix(runtime, tmp_path):
    base = Path(tempfile.mkdtemp(prefix="hull-userns-ramfs-"))
    os.chmod(base, 0o755)
    mounts.mount("ramfs", str(base), "ramfs", 0, "mode=755")  # ramfs cannot be idmapped
    try:
        rootfs = build_busybox_rootfs(base / "rootfs")

        def mutate(spec):
            userns(spec)
            spec.setdefault("annotations", {})[ANN] = "true"
        r = _run(runtime, tmp_path, rootfs, "true", mutate)
    finally:
        mounts.umount(str(base), mounts.MNT_DETACH)
        os.rmdir(base)
    assert r.returncode != 0
    assert "cannot make an idmapped mount" in r.stderr and "chown_rootfs" in r.stderr, r.stderr


def test_idmapped_rootfs_under_0700_dir_still_needs_traversal(runtime, tmp_path):
    """Idmapping does not remove the `userns_rootfs` workaround: the init (root of the user
    namespace, host uid 100000) resolves root.path itself before anything is attached, and
    cannot search a 0700 host-root parent. The error says so."""
    rootfs = build_busybox_rootfs(tmp_path / "rootfs")  # under pytest's 0700 tmp dirs

    def mutate(spec):
        userns(spec)
        spec.setdefault("annotations", {})[ANN] = "true"
    r = _run(runtime, tmp_path, rootfs, "true", mutate)
    assert r.returncode != 0
    assert "search every parent directory" in r.stderr, r.stderr


# ----------------------------------------------------------------------------- chown fallback
def test_chown_rootfs_fallback(runtime, tmp_path, userns_rootfs):
    from hull.runtime.userns import chown_rootfs
    rootfs = userns_rootfs
    os.chown(rootfs / "home", 1000, 1000)
    os.chmod(rootfs / "bin/busybox", 0o4755)
    maps = _ranges((0, 100000, 65536))
    assert chown_rootfs(str(rootfs), maps, maps) > 100
    assert os.stat(rootfs / "etc/passwd").st_uid == 100000
    assert os.stat(rootfs / "home").st_uid == 101000
    assert os.stat(rootfs / "bin/busybox").st_mode & 0o7777 == 0o4755  # setuid kept
    assert os.lstat(rootfs / "bin/sh").st_uid == 100000  # symlinks themselves
    r = _run(runtime, tmp_path, rootfs,
             "id -u; stat -c %u /etc/passwd; stat -c %u /home; touch /tmp/made; "
             "echo '# mine' >> /etc/hostname && echo WROTE", lambda s: userns(s, 100000))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "0", "1000", "WROTE"]
    assert os.stat(rootfs / "tmp/made").st_uid == 100000  # no idmapping: shifted ids on disk


# ----------------------------------------------------------------------------- idmapped bind mounts
def test_idmapped_bind_mount_with_its_own_mappings(runtime, tmp_path, userns_rootfs, host_dir):
    data = host_dir / "data"
    data.mkdir()
    (data / "f").write_text("hello\n")
    for p in (data, data / "f"):
        os.chown(p, 5000, 5000)

    def mutate(spec):
        userns(spec, 100000)
        # on-disk 5000 is seen as host 100000, the container's root
        spec["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                               "options": ["bind", "idmap"],
                               "uidMappings": _ranges((5000, 100000, 1)),
                               "gidMappings": _ranges((5000, 100000, 1))})
    r = _run(runtime, tmp_path, userns_rootfs,
             "stat -c %u:%g /data/f; cat /data/f; echo more >> /data/f; touch /data/new; "
             "stat -c %u /data/new", mutate)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0:0", "hello", "0"]
    assert (data / "f").read_text() == "hello\nmore\n"
    st = os.stat(data / "new")
    assert (st.st_uid, st.st_gid) == (5000, 5000)  # stored unshifted


def test_idmapped_bind_mount_without_user_namespace(runtime, tmp_path, busybox_rootfs, host_dir):
    data = host_dir / "data"
    data.mkdir()
    os.chown(data, 5000, 5000)

    def mutate(spec):
        without_ns(spec, "user")
        spec["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                               "options": ["rbind", "ridmap", "ro"],
                               "uidMappings": _ranges((5000, 0, 1)), "gidMappings": _ranges((5000, 0, 1))})
    r = _run(runtime, tmp_path, busybox_rootfs,
             "stat -c %u:%g /data; touch /data/x 2>/dev/null && echo WROTE || echo RO", mutate)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0:0", "RO"]


def test_idmap_mount_without_mappings_uses_the_containers(runtime, tmp_path, userns_rootfs, host_dir):
    data = host_dir / "data"
    data.mkdir()  # owned by host root

    def mutate(spec):
        userns(spec, 100000)
        spec["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                               "options": ["rbind", "idmap"]})
    r = _run(runtime, tmp_path, userns_rootfs, "stat -c %u /data; touch /data/x && echo OK", mutate)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "OK"]
    assert os.stat(data / "x").st_uid == 0


def test_plain_bind_of_host_root_files_stays_unwritable(runtime, tmp_path, userns_rootfs, host_dir):
    (host_dir / "f").write_text("host\n")

    def mutate(spec):
        userns(spec, 100000)
        spec["mounts"].append({"destination": "/data", "type": "bind", "source": str(host_dir),
                               "options": ["rbind"]})
    r = _run(runtime, tmp_path, userns_rootfs,
             "stat -c %u /data/f; echo x >> /data/f && echo WROTE || echo REFUSED", mutate)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["65534", "REFUSED"]
    assert (host_dir / "f").read_text() == "host\n"


@pytest.mark.parametrize("mount, words", [
    ({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
      "uidMappings": _ranges((0, 100000, 1)), "gidMappings": _ranges((0, 100000, 1))},
     "bind mounts only"),
    ({"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind"],
      "uidMappings": _ranges((0, 100000, 1)), "gidMappings": _ranges((0, 100000, 1))},
     "need the \"idmap\" or \"ridmap\" option"),
    ({"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"]},
     "this container has none"),
    ({"destination": "/data", "type": "bind", "source": "/proc/sys", "options": ["rbind", "idmap"],
      "uidMappings": _ranges((0, 100000, 1)), "gidMappings": _ranges((0, 100000, 1))},
     "cannot make an idmapped mount"),
    ({"destination": "/data", "type": "bind", "source": "/nonexistent-hull", "options": ["bind", "idmap"],
      "uidMappings": _ranges((0, 100000, 1)), "gidMappings": _ranges((0, 100000, 1))},
     "does not exist"),
    ({"destination": "/data", "type": "bind", "source": "/srv", "options": ["bind", "idmap"],
      "uidMappings": _ranges((0, 100000, 10), (5, 200000, 10)), "gidMappings": _ranges((0, 100000, 1))},
     "overlaps"),
])
def test_bad_idmapped_mounts_are_clear_errors(runtime, tmp_path, busybox_rootfs, mount, words):
    def mutate(spec):
        without_ns(spec, "user")
        spec["mounts"].append(mount)
    r = _run(runtime, tmp_path, busybox_rootfs, "true", mutate)
    assert r.returncode != 0
    assert "mounts[" in r.stderr and words in r.stderr, r.stderr


def test_features_report_idmap(runtime):
    import json
    f = json.loads(runtime("features").stdout)
    assert f["linux"]["mountExtensions"]["idmap"]["enabled"] is True
    assert {"idmap", "ridmap"} <= set(f["mountOptions"])


def test_nothing_leaks_from_failed_idmap(runtime, tmp_path, busybox_rootfs):
    """A failing idmapped mount leaves no helper process, fd-held namespace or mount behind."""
    before = subprocess.run(["ps", "-eo", "pid="], capture_output=True, text=True).stdout.split()

    def mutate(spec):
        spec["mounts"].append({"destination": "/data", "type": "bind", "source": "/proc/sys",
                               "options": ["rbind", "idmap"], "uidMappings": _ranges((0, 100000, 1)),
                               "gidMappings": _ranges((0, 100000, 1))})
    for _ in range(3):
        assert _run(runtime, tmp_path, busybox_rootfs, "true", mutate).returncode != 0
    after = subprocess.run(["ps", "-eo", "pid=,comm="], capture_output=True, text=True).stdout
    new = [ln for ln in after.splitlines() if ln.split()[0] not in before and "hull" in ln]
    assert not new, new


def test_idmapped_rootfs_lets_the_init_make_mount_points(runtime, tmp_path, userns_rootfs, host_dir):
    """In a host-root-owned rootfs the mapped root cannot create a missing mount point; once the
    rootfs is idmapped it owns the tree and can."""
    assert not (userns_rootfs / "newdir").exists()

    def mutate(spec):
        userns(spec, 100000)
        spec.setdefault("annotations", {})[ANN] = "true"
        spec["mounts"].append({"destination": "/newdir", "type": "bind", "source": str(host_dir),
                               "options": ["rbind", "ro"]})
    r = _run(runtime, tmp_path, userns_rootfs, "stat -c %u /newdir", mutate)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["65534"]  # the host dir itself is not idmapped
    assert os.stat(userns_rootfs / "newdir").st_uid == 0
