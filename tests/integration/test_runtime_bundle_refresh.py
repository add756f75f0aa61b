"""hull-runtime writes its module bundle (runtime/bundle.py) when it finds none, as Python
writes a missing .pyc."""

import os
import sys

from hull.runtime import bundle


def test_a_missing_bundle_is_written_again(runtime):
    path = bundle.path()
    with open(path, "rb") as f:
        saved = f.read()
    os.unlink(path)
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        runtime("list", env=env)
        assert os.path.exists(path)
        meta_path = list(sys.meta_path)
        assert bundle.install(path) is not None  # a readable one
        sys.meta_path[:] = meta_path
    finally:
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(saved)
