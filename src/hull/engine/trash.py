"""Deleting directories off the critical path.

    trash.move(path)    rename `path` into $HULL_ROOT/trash now: gone from where it was
    trash.empty()       delete what this process moved (the zygote's worker calls it after it
                        answered the client; otherwise it runs when the process exits)
    trash.sweep(root)   delete everything in <root>/trash (the zygote when idle: what a process
                        killed before it emptied left behind)

Removing a container's directories (record, bundle, overlay upper/work, a vfs copy) costs
several ms of rmdir/unlink here — nothing a user waits for once the name, the mounts, the
cgroups and the runtime state are gone, which happens before. A directory with anything still
mounted under it must never be moved here: rmtree would follow the mount.
"""

import os
import shutil
import time

_moved = []


def move(path):
    from hull.engine import records
    trash = os.path.join(records.hull_root(), "trash")
    dst = os.path.join(trash, f"{os.path.basename(path)}.{os.getpid()}.{time.monotonic_ns()}")
    try:
        try:
            os.rename(path, dst)
        except FileNotFoundError:
            if not os.path.lexists(path):
                return
            os.makedirs(trash, mode=0o700, exist_ok=True)
            os.rename(path, dst)
    except OSError:  # another filesystem (EXDEV) or no trash dir: delete it now
        shutil.rmtree(path, ignore_errors=True)
        return
    if not _moved:
        import atexit
        atexit.register(empty)
    _moved.append(dst)


def empty():
    while _moved:
        shutil.rmtree(_moved.pop(), ignore_errors=True)


def sweep(root):
    trash = os.path.join(root, "trash")
    try:
        names = os.listdir(trash)
    except OSError:
        return
    for name in names:
        shutil.rmtree(os.path.join(trash, name), ignore_errors=True)
