import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from runtime_util import Runtime  # noqa: E402


@pytest.fixture
def runtime(tmp_path):
    """A hull-runtime with a private --root; fails the test if a container is left behind."""
    rt = Runtime(tmp_path / "state")
    yield rt
    left = rt.ids()
    rt.cleanup()
    assert not left, f"test left containers behind: {left}"
    leftovers = [n for n in os.listdir(rt.root) if not n.startswith(".")] if os.path.isdir(rt.root) else []
    assert not leftovers, f"state dirs left behind: {leftovers}"
