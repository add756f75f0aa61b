"""engine/trash.py: a moved directory is gone from its place at once and deleted by empty();
sweep() deletes what a killed process left."""

import os

from hull.engine import trash


def _tree(path):
    os.makedirs(os.path.join(path, "a", "b"))
    with open(os.path.join(path, "a", "f"), "w") as f:
        f.write("x")


def test_move_then_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("HULL_ROOT", str(tmp_path))
    d = tmp_path / "containers" / "c1"
    _tree(d)
    trash.move(str(d))
    assert not d.exists()
    moved = os.listdir(tmp_path / "trash")
    assert len(moved) == 1 and moved[0].startswith("c1.")
    trash.empty()
    assert os.listdir(tmp_path / "trash") == []


def test_move_of_a_missing_path_is_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HULL_ROOT", str(tmp_path))
    trash.move(str(tmp_path / "nope"))
    assert not (tmp_path / "trash").exists() or os.listdir(tmp_path / "trash") == []


def test_sweep_deletes_leftovers(tmp_path):
    _tree(tmp_path / "trash" / "c2.123.456")
    trash.sweep(str(tmp_path))
    assert os.listdir(tmp_path / "trash") == []
    trash.sweep(str(tmp_path / "no-root"))  # no trash dir: nothing to do
