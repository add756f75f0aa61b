"""hull run --userns=auto[:size=N]: the container's root is an allocated block of host ids
(idmapped layers under the overlay, or a chowned copy), two containers never share a block,
rm releases it; keep-id is refused as podman does as root."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from engine_helpers import clean, engine  # noqa: F401


def _uid_map(pid):
    return [tuple(int(x) for x in line.split()) for line in Path(f"/proc/{pid}/uid_map").read_text().splitlines()]


def _ledger(eng):
    try:
        return json.loads(Path(eng.root, "userns", "allocations.json").read_text())
    except FileNotFoundError:
        return {}


@pytest.fixture
def host_dir():
    d = tempfile.mkdtemp(prefix="hull-userns-bind-", dir="/tmp")
    os.chmod(d, 0o777)  # writable by the container's (unprivileged) root
    yield d
    shutil.rmtree(d)


def test_auto_maps_root_onto_an_allocated_block(clean, host_dir):
    cid = clean.out("run", "-d", "--userns=auto", "-v", f"{host_dir}:/data", "-v", "uvol:/vol",
                    "busybox", "sh", "-c", "touch /data/from-ctr /vol/in-vol /made-in-rootfs && sleep 1000")
    doc = clean.inspect(cid)
    pid = doc["State"]["Pid"]
    (inside, host, size), = _uid_map(pid)
    assert inside == 0 and size == 65536 and host >= 1 << 31
    assert doc["HostConfig"]["IDMappings"]["UidMap"] == [f"0:{host}:65536"]
    assert _ledger(clean)[cid]["uid"] == [host, 65536]
    out = clean.out("exec", cid, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map; stat -c %u /bin/busybox")
    uid, gid, umap, owner = out.splitlines()
    assert (uid, gid, owner) == ("0", "0", "0")  # the image's root files are the container root's
    assert umap.split() == ["0", str(host), "65536"]
    # a bind mount is not shifted: what the container's root writes is owned by the mapped uid
    from engine_helpers import wait_for
    assert wait_for(lambda: os.path.exists(f"{host_dir}/from-ctr"))
    st = os.stat(f"{host_dir}/from-ctr")
    assert (st.st_uid, st.st_gid) == (host, host)
    vol = Path(clean.root, "volumes", "uvol", "_data")
    assert vol.stat().st_uid == host and (vol / "in-vol").stat().st_uid == host
    # the container's writes to its rootfs land in the overlay's upper dir with mapped ids
    assert Path(clean.root, "containers", cid, "upper", "made-in-rootfs").stat().st_uid == host
    clean("rm", "-f", cid)
    clean("volume", "rm", "uvol", check=False)
    shutil.rmtree(Path(clean.root, "volumes", "uvol"), ignore_errors=True)
    assert cid not in _ledger(clean)


def test_concurrent_auto_containers_get_disjoint_blocks_released_on_rm(clean):
    a = clean.out("run", "-d", "--userns=auto", "busybox", "sleep", "1000")
    b = clean.out("run", "-d", "--userns=auto:size=4096", "busybox", "sleep", "1000")
    (_, ha, sa), = _uid_map(clean.inspect(a)["State"]["Pid"])
    (_, hb, sb), = _uid_map(clean.inspect(b)["State"]["Pid"])
    assert (sa, sb) == (65536, 4096)
    assert ha + sa <= hb or hb + sb <= ha, (ha, sa, hb, sb)
    # the gid maps are disjoint too
    ga = clean.inspect(a)["HostConfig"]["IDMappings"]["GidMap"][0].split(":")
    gb = clean.inspect(b)["HostConfig"]["IDMappings"]["GidMap"][0].split(":")
    assert int(ga[1]) + int(ga[2]) <= int(gb[1]) or int(gb[1]) + int(gb[2]) <= int(ga[1])
    clean("rm", "-f", a)
    assert set(_ledger(clean)) == {b}
    # the released block is free again: the next container gets it back (first fit)
    c = clean.out("run", "-d", "--userns=auto", "busybox", "sleep", "1000")
    (_, hc, _), = _uid_map(clean.inspect(c)["State"]["Pid"])
    assert hc == ha
    clean("rm", "-f", b, c)
    assert _ledger(clean) == {}


def test_auto_without_idmapped_mounts_uses_a_chowned_copy(clean):
    env = dict(clean.env, HULL_IDMAP="0")  # as on a kernel or filesystem that cannot idmap
    import subprocess
    from engine_helpers import HULL
    p = subprocess.run([HULL, "run", "--rm", "--userns=auto", "busybox", "sh", "-c",
                        "id -u; stat -c %u /bin/busybox; touch /new && echo wrote"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "0", "wrote"]
    assert clean.ids() == [] and _ledger(clean) == {}


def test_keep_id_and_bad_values_are_refused_and_leave_nothing(clean):
    for value, text in (("keep-id", "keep-id is only supported in rootless mode"),
                        ("auto:size=lots", "size must be a number"),
                        ("auto:uidmapping=0:1:2", "unknown option 'uidmapping'"),
                        ("nosuch", "use host, auto, auto:size=N or keep-id")):
        p = clean("run", "--rm", f"--userns={value}", "busybox", "true", check=False)
        assert p.returncode == 125 and text in p.stderr, (value, p.stderr)
        assert "Traceback" not in p.stderr
    assert clean.ids() == [] and _ledger(clean) == {}


def test_small_block_without_the_tty_group_still_runs(clean):
    out = clean.out("run", "--rm", "--userns=auto:size=1", "busybox", "sh", "-c", "id -u; cat /proc/self/uid_map")
    first, umap = out.splitlines()
    assert first == "0" and umap.split()[0::2] == ["0", "1"]


def test_commit_of_an_auto_container_has_the_ids_it_saw(clean):
    """A --userns=auto container writes through its mapping (host ids 2^31+N); its commit
    shifts them back: the image's files belong to 0 and 1000, as the container saw them."""
    cid = clean.out("run", "-d", "--userns=auto", "busybox", "sh", "-c",
                    "touch /by-root && touch /by-user && chown 1000:1000 /by-user && sleep 1000")
    clean("exec", cid, "ls", "/by-user")  # written by now
    upper = Path(clean.root, "containers", cid, "upper")
    assert upper.joinpath("by-root").stat().st_uid >= 1 << 31  # as written, on the host
    clean("commit", cid, "shifted:1")
    out = clean.out("run", "--rm", "shifted:1", "stat", "-c", "%n %u %g", "/by-root", "/by-user")
    assert out.splitlines() == ["/by-root 0 0", "/by-user 1000 1000"]
    clean("rm", "-f", cid)
    clean("rmi", "shifted:1")
