"""hull.osfast: what the runtime uses of os, with os's results; and the runtime's modules do not
import os at all (it costs ~1.6 ms of start-up per process)."""

import os
import posixpath
import subprocess
import sys

import pytest

from hull import osfast

PATHS = ["", "/", "//", "///", "a", "a/", "/a/b", "a//b//", "//x", "a/b/../c", "/a/./b/", "../x",
         "a/../..", "//a//b", "/..", "a/b/c/../../..", "./", "/a/b/..", b"/a/../b", b"x/y/"]


@pytest.mark.parametrize("p", PATHS)
def test_path_functions_agree_with_posixpath(p):
    for name in ("normpath", "dirname", "basename", "isabs"):
        assert getattr(osfast.path, name)(p) == getattr(posixpath, name)(p), name
    if p:
        assert osfast.path.abspath(p) == posixpath.abspath(p)


@pytest.mark.parametrize("parts", [("a", "b"), ("a/", "b"), ("a", "/b"), ("", "x"), ("/", "x"),
                                   ("a", "b", "/c", "d"), ("a", ""), (b"a", b"b")])
def test_join_agrees_with_posixpath(parts):
    assert osfast.path.join(*parts) == posixpath.join(*parts)


def test_file_tests_and_realpath(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    (tmp_path / "l").symlink_to(tmp_path / "d")
    (tmp_path / "dangling").symlink_to(tmp_path / "nope")
    for p in ("d", "f", "l", "dangling", "nope", "l/../f"):
        full = str(tmp_path / p)
        for name in ("exists", "lexists", "isdir", "isfile", "islink", "realpath"):
            assert getattr(osfast.path, name)(full) == getattr(posixpath, name)(full), (p, name)


def test_makedirs(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    osfast.makedirs(str(target), mode=0o750)
    assert target.is_dir() and (target.stat().st_mode & 0o777) == 0o750
    osfast.makedirs(str(target), exist_ok=True)
    with pytest.raises(FileExistsError):
        osfast.makedirs(str(target))
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):
        osfast.makedirs(str(tmp_path / "file"), exist_ok=True)


def test_environ_with_os_imported_is_os_environ(monkeypatch):
    monkeypatch.setenv("HULL_OSFAST_TEST", "one")
    assert osfast.environ.get("HULL_OSFAST_TEST") == "one" and "HULL_OSFAST_TEST" in osfast.environ
    assert osfast.environ.pop("HULL_OSFAST_TEST") == "one"
    assert "HULL_OSFAST_TEST" not in os.environ
    assert osfast.environ.pop("HULL_OSFAST_TEST", "gone") == "gone"


def test_environ_without_os_and_after_it():
    """In a process that has not imported os: reads, writes and pops reach the process's
    environment (a child sees them) and the os.environ made later."""
    code = """
import sys
from hull import osfast
assert "os" not in sys.modules
assert osfast.environ.get("KEEP") == "k\\xe9" and osfast.environ["KEEP"] == "k\\xe9"
assert osfast.environ.pop("DROP") == "d" and osfast.environ.pop("DROP", None) is None
osfast.environ["ADDED"] = "a"
import os, subprocess
assert "DROP" not in os.environ and os.environ["ADDED"] == "a"
print(subprocess.run(["sh", "-c", 'echo "$KEEP|${DROP-unset}|$ADDED"'], capture_output=True,
                     text=True).stdout.strip())
"""
    env = {**os.environ, "KEEP": "k\xe9", "DROP": "d"}
    out = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}\n{code}"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "k\xe9|unset|a"


def test_the_runtime_does_not_import_os():
    modules = ("hull.runtime.cli", "hull.runtime.prefork", "hull.runtime.init", "hull.runtime.lifecycle",
               "hull.runtime.spec", "hull.runtime.rootfs", "hull.runtime.commands.run",
               "hull.runtime.commands.create", "hull.runtime.bundle", "hull.cgroups.v1", "hull.cgroups.v2",
               "hull.kernel.capabilities", "hull.kernel.mounts", "hull.kernel.seccomp")
    code = f"import sys; sys.path[:0] = {sys.path!r}\nfor m in {modules!r}: __import__(m)\nprint('os' in sys.modules)"
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
