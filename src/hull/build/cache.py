"""The build cache: Docker-like keys chained from the base image.

    key = step_key(parent_key, instruction_text, files=checksum, env=used_args)
    hit = cache.get(key)       # {"config": ..., "layers": [...]} or None
    cache.put(key, result)

A step's key hashes its parent's key (the base image ID for the first step), the instruction
after substitution (with its flags), the content checksum of the files COPY/ADD read, and the
build args a RUN sees. The result is the image state after the step (config + layer
descriptors), kept in $HULL_ROOT/build-cache/<hex>.json. A hit whose layer blobs were
garbage-collected is a miss. So a rebuild with nothing changed makes no new layers and
reuses the first build's configs (and so yields the same image ID).
"""

import hashlib
import json
import os
import time

VERSION = "hull-build-cache-1"


def step_key(parent, text, files=None, env=None, extra=None):
    doc = {"v": VERSION, "parent": parent, "text": text}
    if files:
        doc["files"] = files
    if env:
        doc["env"] = sorted(env)
    if extra:
        doc["extra"] = extra
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class Cache:
    def __init__(self, store, enabled=True):
        self.store = store
        self.dir = store.root / "build-cache"
        self.enabled = enabled

    def _path(self, key):
        return self.dir / (key.split(":", 1)[1] + ".json")

    def get(self, key):
        if not self.enabled:
            return None
        try:
            with open(self._path(key)) as f:
                res = json.load(f)
        except (OSError, ValueError):
            return None
        if not all(self.store.has_blob(d["digest"]) for d in res.get("layers", [])):
            return None
        return res

    def put(self, key, result):
        self.dir.mkdir(parents=True, exist_ok=True)
        p = self._path(key)
        tmp = p.with_name(f"{p.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
        tmp.write_text(json.dumps(result))  # key order kept: the config bytes (image ID) must repeat
        os.rename(tmp, p)

    def prune(self):
        """Forget every cached step (`hull builder prune`)."""
        n = 0
        if self.dir.is_dir():
            for p in self.dir.iterdir():
                p.unlink(missing_ok=True)
                n += 1
        return n
