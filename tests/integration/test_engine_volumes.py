"""Volume copy-up (Docker's): an empty named or anonymous volume gets what the image has at the
mount point on first use — owners, modes, symlinks included; a volume with content is never
overwritten; bind mounts and `volume-nocopy` / `:nocopy` get nothing."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from engine_helpers import clean, engine  # noqa: F401

DOCKERFILE = """\
FROM busybox
RUN mkdir -p /srv/data/sub && echo seeded > /srv/data/seed && ln -s seed /srv/data/link \\
 && chown 1234:5678 /srv/data/sub && chmod 0750 /srv/data/sub && chmod 0751 /srv/data \\
 && mkdir /anon && echo in-anon > /anon/a
VOLUME /anon
"""


@pytest.fixture(scope="module")
def image(engine):
    ctx = tempfile.mkdtemp(prefix="hull-copyup-")
    Path(ctx, "Dockerfile").write_text(DOCKERFILE)
    engine("build", "-q", "-t", "copyup:1", ctx)
    shutil.rmtree(ctx)
    yield "copyup:1"
    engine("rmi", "copyup:1", check=False)


def _vol(eng, name):
    return Path(eng.root, "volumes", name, "_data")


def _drop(eng, *names):
    for n in names:
        shutil.rmtree(Path(eng.root, "volumes", n), ignore_errors=True)


def test_named_volume_gets_the_image_content_once(clean, image):
    out = clean.out("run", "--rm", "-v", "cu1:/srv/data", image, "sh", "-c",
                    "cat /srv/data/seed; readlink /srv/data/link; stat -c '%u:%g %a' /srv/data/sub /srv/data")
    assert out.splitlines() == ["seeded", "seed", "1234:5678 750", "0:0 751"]
    vol = _vol(clean, "cu1")
    assert (vol / "seed").read_text() == "seeded\n" and os.readlink(vol / "link") == "seed"
    st = (vol / "sub").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 5678, 0o750)
    # what a container changed stays: a volume with content is not copied into again
    clean("run", "--rm", "-v", "cu1:/srv/data", image, "sh", "-c", "rm /srv/data/seed; echo mine > /srv/data/new")
    out = clean.out("run", "--rm", "-v", "cu1:/srv/data", image, "ls", "/srv/data")
    assert out.split() == ["link", "new", "sub"]
    _drop(clean, "cu1")


def test_mount_syntax_and_the_image_volume_copy_too(clean, image):
    cid = clean.out("run", "-d", "--mount", "type=volume,src=cu2,dst=/srv/data", image, "sleep", "1000")
    assert clean.out("exec", cid, "cat", "/srv/data/seed", "/anon/a").split() == ["seeded", "in-anon"]
    clean("rm", "-f", cid)
    _drop(clean, "cu2")


def test_nocopy_and_bind_mounts_get_nothing(clean, image):
    for args in (["--mount", "type=volume,src=cu3,dst=/srv/data,volume-nocopy"], ["-v", "cu4:/srv/data:nocopy"]):
        assert clean.out("run", "--rm", *args, image, "ls", "-A", "/srv/data") == ""
    host = tempfile.mkdtemp(prefix="hull-copyup-bind-")
    try:
        assert clean.out("run", "--rm", "-v", f"{host}:/srv/data", image, "ls", "-A", "/srv/data") == ""
        assert os.listdir(host) == []
    finally:
        shutil.rmtree(host)
    assert os.listdir(_vol(clean, "cu3")) == [] and os.listdir(_vol(clean, "cu4")) == []
    _drop(clean, "cu3", "cu4")


def test_nocopy_on_a_bind_mount_is_refused(clean, image):
    host = tempfile.mkdtemp(prefix="hull-copyup-bind-")
    try:
        for args, text in ((["--mount", f"type=bind,src={host},dst=/x,volume-nocopy"], "volume-nocopy must not be specified"),
                           (["-v", f"{host}:/x:nocopy"], "nocopy applies to volumes")):
            p = clean("run", "--rm", *args, image, "true", check=False)
            assert p.returncode == 125 and text in p.stderr, p.stderr
    finally:
        shutil.rmtree(host)
    assert clean.ids() == []


def test_copy_up_with_userns_auto_keeps_the_mapped_owners(clean, image):
    out = clean.out("run", "--rm", "--userns=auto", "-v", "cu5:/srv/data", image, "sh", "-c",
                    "stat -c '%u:%g' /srv/data/sub /srv/data/seed; cat /proc/self/uid_map")
    sub, seed, umap = out.splitlines()
    assert (sub, seed) == ("1234:5678", "0:0")
    base = int(umap.split()[1])
    st = (_vol(clean, "cu5") / "sub").stat()
    assert (st.st_uid, st.st_gid) == (base + 1234, base + 5678)
    _drop(clean, "cu5")
