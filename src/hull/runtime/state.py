"""Container state under --root: one dir per container with state.json, exec fifo and a lock.

Writes are atomic (temp + rename); every mutation happens under flock on the dir's lock file.
The status is derived like runc's: stored facts + whether the init process still lives.
"""

import errno
import fcntl
from hull import osfast as os
import time

from hull import jsonfast as json
from hull.errors import Conflict, HullError, NotFound, UsageError
from hull.kernel import pidfd

STATE_FILE = "state.json"
FIFO = "exec.fifo"
LOCK = "lock"
DEFAULT_ROOT = "/run/hull-runtime"

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-")


def validate_id(cid):
    """runc's rule: [A-Za-z0-9][A-Za-z0-9_.+-]*, and no path tricks."""
    if not cid or len(cid) > 1024 or not cid[0].isalnum() or not cid.isascii() \
            or not _ID_CHARS.issuperset(cid) or cid in (".", ".."):
        raise UsageError(f"invalid container id format: {cid!r}")


def rfc3339_now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


class Container:
    """A container's on-disk record. `data` is the state.json dict."""

    def __init__(self, root, cid, data=None):
        self.root, self.id = root, cid
        self.dir = os.path.join(root, cid)
        self.data = data or {}
        self._lock_fd = None

    # --- persistence -------------------------------------------------------------------
    @classmethod
    def new(cls, root, cid):
        """Create the state dir; a duplicate id is a Conflict with runc's wording."""
        validate_id(cid)
        os.makedirs(root, mode=0o711, exist_ok=True)
        c = cls(root, cid)
        try:
            os.mkdir(c.dir, 0o711)
        except FileExistsError:
            raise Conflict(f"container with id exists: {cid}") from None
        c.lock()
        return c

    @classmethod
    def load(cls, root, cid):
        validate_id(cid)
        path = os.path.join(root, cid, STATE_FILE)
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise NotFound(f"container does not exist: {cid}") from None
        except ValueError as e:
            raise HullError(f"state of container {cid} is corrupt ({path}): {e}") from None
        return cls(root, cid, data)

    def save(self):
        tmp = os.path.join(self.dir, f".{STATE_FILE}.{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.rename(tmp, os.path.join(self.dir, STATE_FILE))

    def lock(self):
        if self._lock_fd is None:
            fd = os.open(os.path.join(self.dir, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock_fd = fd
        return self

    def unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def remove(self):
        for name in (STATE_FILE, FIFO, LOCK):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass
        for name in os.listdir(self.dir) if os.path.isdir(self.dir) else ():
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except FileNotFoundError:
            pass
        self.unlock()

    # --- derived state -----------------------------------------------------------------
    @property
    def fifo(self):
        return os.path.join(self.dir, FIFO)

    @property
    def pid(self):
        return self.data.get("pid", 0)

    def init_alive(self):
        pid = self.pid
        return bool(pid) and pidfd.alive(pid, self.data.get("initStartTime"))

    def status(self):
        """created | running | paused | stopped (runc's statuses)."""
        if not self.init_alive():
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        if self.data.get("paused"):
            return "paused"
        return "running"

    def oci_state(self):
        """The state JSON `hull-runtime state` prints (runc's fields and order)."""
        status = self.status()
        d = self.data
        return {
            "ociVersion": d.get("ociVersion", ""),
            "id": self.id,
            "pid": d.get("pid", 0) if status != "stopped" else 0,
            "status": status,
            "bundle": d.get("bundle", ""),
            "rootfs": d.get("rootfs", ""),
            "created": d.get("created", ""),
            "owner": d.get("owner", ""),
            **({"annotations": d["annotations"]} if d.get("annotations") else {}),
        }


def list_ids(root):
    try:
        return sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, STATE_FILE)))
    except FileNotFoundError:
        return []
    except OSError as e:
        if e.errno == errno.ENOTDIR:
            return []
        raise
