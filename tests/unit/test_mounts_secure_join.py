"""mounts.secure_join: a path inside a container rootfs, resolved as if the rootfs were "/" —
symlinks (absolute or relative) and `..` never lead outside it, whatever the image holds."""

import os

import pytest

from hull.errors import KernelError
from hull.kernel.mounts import secure_join


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "usr/lib").mkdir(parents=True)
    (r / "dev").mkdir()
    os.symlink("/usr/lib", r / "lib")            # absolute: relative to the rootfs
    os.symlink("../../../../..", r / "usr/up")   # climbs past the rootfs
    os.symlink("/etc/../../..", r / "escape")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    os.symlink("lib/missing", r / "dangling")
    return str(r)


@pytest.mark.parametrize("unsafe, expected", [
    ("/etc", "/etc"),
    ("etc/", "/etc"),
    ("/./etc/./", "/etc"),
    ("/lib/x.so", "/usr/lib/x.so"),          # through an absolute link
    ("/usr/up/etc/passwd", "/etc/passwd"),   # `..` in a link stops at the root
    ("/escape/shadow", "/shadow"),
    ("/../../etc", "/etc"),
    ("/dev/null", "/dev/null"),              # missing leaf
    ("/dev/a/b/c", "/dev/a/b/c"),            # missing components
    ("/dev/a/../null", "/dev/null"),         # `..` after a missing component
    ("/nothing/../escape/shadow", "/shadow"),  # ... and a link after that `..`
    ("/nothing/../lib", "/usr/lib"),
    ("/dangling/y", "/usr/lib/missing/y"),
    ("/", ""),
])
def test_resolves_inside_the_root(root, unsafe, expected):
    assert secure_join(root, unsafe) == root + expected


def test_a_symlink_loop_is_an_error(root):
    with pytest.raises(KernelError) as e:
        secure_join(root, "/loop1/x")
    assert e.value.errno == 40  # ELOOP


def test_root_given_relative_or_with_a_trailing_slash(root, monkeypatch):
    monkeypatch.chdir(os.path.dirname(root))
    assert secure_join("rootfs/", "/lib") == root + "/usr/lib"
