"""runtime/bundle.py: modules served from one file while their sources are unchanged; the usual
import system for anything edited since (and the bundle marked stale)."""

import os
import sys

import pytest

from hull.runtime import bundle


@pytest.fixture
def pkg(tmp_path):
    """A package `bpkg` with a submodule, and a bundle of both; removed from sys.modules and
    sys.meta_path afterwards."""
    root = tmp_path / "src"
    (root / "bpkg").mkdir(parents=True)
    (root / "bpkg" / "__init__.py").write_text("VALUE = 'pkg'\n")
    (root / "bpkg" / "mod.py").write_text("from bpkg import VALUE\nTWICE = VALUE * 2\n")
    entries = [("bpkg", str(root / "bpkg" / "__init__.py"), True), ("bpkg.mod", str(root / "bpkg" / "mod.py"), False)]
    path = bundle.write(str(tmp_path / "bundle.bin"), entries)
    sys.path.insert(0, str(root))
    meta_path = list(sys.meta_path)
    yield root, path
    sys.meta_path[:] = meta_path
    sys.path.remove(str(root))
    for name in ("bpkg", "bpkg.mod"):
        sys.modules.pop(name, None)


def test_modules_come_from_the_bundle(pkg):
    root, path = pkg
    finder = bundle.install(path)
    import bpkg.mod
    assert bpkg.mod.TWICE == "pkgpkg"
    assert bpkg.mod.__spec__.loader is finder and bpkg.__spec__.loader is finder
    assert bpkg.mod.__file__ == str(root / "bpkg" / "mod.py")
    assert bpkg.__path__ == [str(root / "bpkg")]
    assert not finder.stale


def test_an_edited_module_is_imported_from_its_source(pkg):
    root, path = pkg
    (root / "bpkg" / "mod.py").write_text("TWICE = 'edited, and longer'\n")
    finder = bundle.install(path)
    import bpkg.mod
    assert bpkg.mod.TWICE == "edited, and longer"
    assert bpkg.mod.__spec__.loader is not finder
    assert finder.stale


def test_an_unreadable_bundle_is_no_bundle(tmp_path):
    (tmp_path / "bundle.bin").write_bytes(b"\x05\x00\x00\x00junk")
    meta_path = list(sys.meta_path)
    assert bundle.install(str(tmp_path / "bundle.bin")) is None
    assert bundle.install(str(tmp_path / "missing.bin")) is None
    assert sys.meta_path == meta_path


def test_the_runtime_bundle_holds_every_runtime_module():
    base = os.path.dirname(os.path.dirname(os.path.dirname(bundle.__file__)))
    names = {name for name, _source, _pkg in bundle.modules(base)}
    for name in ("hull", "hull.errors", "hull.jsonfast", "hull.runtime.cli", "hull.runtime.init",
                 "hull.runtime.lifecycle", "hull.runtime.commands.run", "hull.kernel.ffi",
                 "hull.cgroups.v1", "hull.cgroups.v2"):
        assert name in names
