"""Container records: $HULL_ROOT/containers/<id>/ holds what the engine knows of a container.

    <id>/config.json   what was asked (image, command, run options) — written once, at create
    <id>/state.json    what is (Status, Pid, MonitorPid, ExitCode, OOMKilled, times, restarts)
    <id>/exit.json     written by the monitor when the container exits, until cleanup folds it in
    <id>/bundle/       the OCI bundle (config.json) the runtime runs
    <id>/rootfs upper work   the image snapshot (hull.image.snapshot)
    <id>/ctr.log       json-file logs;  <id>/lock  flock for every mutation
    $HULL_ROOT/names/<name> -> <id>   names (a symlink: creating it is the atomic name claim)

Statuses are Docker's: created, running, paused, restarting, exited, dead, removing.
`refresh()` derives the truth from the stored state and the liveness of the monitor and the
container init, so `ps` stays right after the monitor or `hull` was SIGKILLed.
"""

import errno
import fcntl
import json
import os
import re
import secrets
import time

from hull.errors import Conflict, HullError, NotFound, UsageError

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_HEX_RE = re.compile(r"^[0-9a-f]{1,64}$")


def hull_root():
    return os.environ.get("HULL_ROOT") or "/var/lib/hull"


def runtime_root():
    """The OCI runtime's --root for the engine's containers: $HULL_RUNTIME_ROOT, else
    $HULL_ROOT/runtime when HULL_ROOT is set (tests), else /run/hull/runtime."""
    if os.environ.get("HULL_RUNTIME_ROOT"):
        return os.environ["HULL_RUNTIME_ROOT"]
    if os.environ.get("HULL_ROOT"):
        return os.path.join(os.environ["HULL_ROOT"], "runtime")
    return "/run/hull/runtime"


def containers_dir():
    return os.path.join(hull_root(), "containers")


def names_dir():
    return os.path.join(hull_root(), "names")


def volumes_dir():
    return os.path.join(hull_root(), "volumes")


def now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def parse_time(text):
    """RFC 3339 (as `now()` writes) -> epoch seconds; 0 for empty/unknown."""
    if not text or text.startswith("0001"):
        return 0.0
    import calendar
    base, _, frac = text.rstrip("Z").partition(".")
    try:
        t = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0.0
    return t + (float("0." + frac) if frac.isdigit() else 0.0)


def atomic_write_json(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(json.dumps(data, separators=(",", ":")))  # no indent: the C encoder (~5x faster)
    os.rename(tmp, path)


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except ValueError as e:
        raise HullError(f"{path} is corrupt: {e}; remove the container with `hull rm -f`") from None


def proc_start_time(pid):
    """Field 22 of /proc/<pid>/stat (jiffies since boot) — with the pid, a process identity."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def process_alive(pid, start_time):
    if not pid:
        return False
    st = proc_start_time(pid)
    if st is None or (start_time is not None and st != start_time):
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rindex(b")") + 2:data.rindex(b")") + 3] != b"Z"
    except OSError:
        return False


class Record:
    """One container's record. `config` and `state` are the two JSON documents."""

    def __init__(self, cid, config=None, state=None):
        self.id = cid
        self.dir = os.path.join(containers_dir(), cid)
        self.config = config or {}
        self.state = state or {}
        self._lock_fd = None

    # --- paths --------------------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def name(self):
        return self.config.get("Name", "")

    @property
    def bundle(self):
        return self.path("bundle")

    @property
    def log_path(self):
        return self.path("ctr.log")

    @property
    def cgroup_path(self):
        return f"/hull/{self.id}"

    # --- persistence --------------------------------------------------------------------
    @classmethod
    def create(cls, config, name=None):
        """A new record with a fresh id and (claimed) name. Conflict if the name is taken."""
        cid = secrets.token_hex(32)
        os.makedirs(containers_dir(), mode=0o711, exist_ok=True)
        rec = cls(cid, dict(config), {"Status": "created"})
        name = name or generate_name()
        validate_name(name)
        os.mkdir(rec.dir, 0o711)
        try:
            claim_name(name, cid)
        except BaseException:
            os.rmdir(rec.dir)
            raise
        rec.config["Id"] = cid
        rec.config["Name"] = name
        rec.config.setdefault("Created", now())
        rec.lock()
        try:
            rec.save_config()
            rec.save_state()
        finally:
            rec.unlock()
        return rec

    @classmethod
    def load(cls, cid):
        d = os.path.join(containers_dir(), cid)
        config = read_json(os.path.join(d, "config.json"))
        if config is None:
            raise NotFound(f"No such container: {cid}")
        state = read_json(os.path.join(d, "state.json"), {"Status": "created"})
        return cls(cid, config, state)

    def reload(self):
        self.state = read_json(self.path("state.json"), self.state)
        return self

    def save_config(self):
        atomic_write_json(self.path("config.json"), self.config)

    def save_state(self):
        atomic_write_json(self.path("state.json"), self.state)

    def update_state(self, **changes):
        """Read-modify-write state.json under the lock."""
        with self.locked():
            self.reload()
            self.state.update(changes)
            self.save_state()

    def lock(self, blocking=True):
        if self._lock_fd is None:
            fd = os.open(self.path("lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
            self._lock_fd = fd
        return True

    def unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def locked(self):
        rec = self

        class _Ctx:
            def __enter__(self):
                self.mine = rec._lock_fd is None
                rec.lock()
                return rec

            def __exit__(self, *exc):
                if self.mine:
                    rec.unlock()
        return _Ctx()

    def remove_files(self):
        """Release the name and delete the record dir (into the trash: engine/trash.py). The
        snapshot must be unmounted already."""
        from hull.engine import trash
        release_name(self.name, self.id)
        trash.move(self.dir)
        self.unlock()

    # --- derived state ------------------------------------------------------------------
    def monitor_alive(self):
        return process_alive(self.state.get("MonitorPid"), self.state.get("MonitorStart"))

    def init_alive(self):
        return process_alive(self.state.get("Pid"), self.state.get("PidStart"))

    def exit_info(self):
        return read_json(self.path("exit.json"))

    def refresh(self):
        """The truth: stored status corrected by what is (still) alive. Does not write."""
        self.reload()
        st = self.state
        status = st.get("Status", "created")
        if status in ("running", "paused", "restarting", "starting"):
            rebooted = _before_boot(st.get("StartedAt"))  # its PIDs may belong to others now
            if not rebooted and self.monitor_alive():
                return self
            ex = self.exit_info()
            if not rebooted and self.init_alive():
                st["Error"] = st.get("Error") or "the container's monitor is gone"
                return self
            if status == "starting" and not st.get("Pid"):
                # `hull start` died before the container existed
                st["Status"] = "created"
                return self
            st["Status"] = "exited"
            st["Running"] = False
            if ex:
                st["ExitCode"] = ex.get("ExitCode", 255)
                st["FinishedAt"] = ex.get("FinishedAt") or st.get("FinishedAt")
            else:  # nobody saw it end: the monitor was killed, or the host rebooted / lost /run
                st["ExitCode"] = 255
                if rebooted:
                    st["FinishedAt"] = _boot_time_text()  # it ended at the latest then
                    why = "the host rebooted while the container was running"
                elif st.get("Pid") and not os.path.isdir(os.path.join(runtime_root(), self.id)):
                    why = "the container's runtime state is gone (the host rebooted or /run was cleared)"
                else:
                    why = "the container's monitor was killed"
                st["Error"] = st.get("Error") or f"{why}; exit code unknown"
            st["Pid"] = 0
            st["Stale"] = True  # runtime state / cgroup / mount may need cleanup
        return self

    @property
    def status(self):
        return self.state.get("Status", "created")

    @property
    def running(self):
        return self.status in ("running", "paused", "restarting")


def boot_time():
    """The host's boot time (seconds since the epoch), from /proc/stat's btime."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _boot_time_text():
    t = boot_time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000000000Z"


def _before_boot(ts):
    t = parse_time(ts) if ts else None
    return bool(t) and t < boot_time()


# --- names and ids ---------------------------------------------------------------------
_ADJ = ("admiring", "bold", "brave", "calm", "eager", "happy", "jolly", "keen", "nifty", "quirky",
        "sharp", "tender", "vibrant", "wizardly", "zen", "gifted", "lucid", "serene")
_NOUN = ("turing", "hopper", "lovelace", "ritchie", "thompson", "knuth", "dijkstra", "torvalds",
         "curie", "noether", "shannon", "babbage", "kernighan", "pike", "liskov", "hamilton")


def generate_name():
    for _ in range(50):
        name = f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}"
        if not os.path.lexists(os.path.join(names_dir(), name)):
            return name
    return f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}{secrets.randbelow(10000)}"


def validate_name(name):
    if name.startswith("/"):
        name = name[1:]
    if not _NAME_RE.match(name) or len(name) > 253:
        raise UsageError(f'Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')


def claim_name(name, cid):
    os.makedirs(names_dir(), mode=0o711, exist_ok=True)
    try:
        os.symlink(cid, os.path.join(names_dir(), name))
    except FileExistsError:
        other = os.readlink(os.path.join(names_dir(), name))
        raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                       f'"{other}". You have to remove (or rename) that container to be able to reuse '
                       'that name.') from None


def release_name(name, cid):
    p = os.path.join(names_dir(), name)
    try:
        if os.readlink(p) == cid:
            os.unlink(p)
    except OSError:
        pass


def rename(rec, new):
    validate_name(new)
    with rec.locked():
        claim_name(new, rec.id)
        old = rec.name
        rec.config["Name"] = new
        rec.save_config()
        release_name(old, rec.id)


def all_ids():
    try:
        return sorted(n for n in os.listdir(containers_dir())
                      if os.path.isfile(os.path.join(containers_dir(), n, "config.json")))
    except FileNotFoundError:
        return []


def resolve_id(ref):
    """A full id, a unique id prefix or a name -> the id. NotFound / ambiguous -> error."""
    if not ref:
        raise NotFound("No such container: ")
    ref = ref[1:] if ref.startswith("/") else ref
    d = containers_dir()
    if len(ref) == 64 and os.path.isfile(os.path.join(d, ref, "config.json")):
        return ref
    try:
        target = os.readlink(os.path.join(names_dir(), ref))
        if os.path.isfile(os.path.join(d, target, "config.json")):
            return target
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.EINVAL):
            raise
    if _HEX_RE.match(ref):
        hits = [i for i in all_ids() if i.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise Conflict(f"Multiple IDs found with provided prefix: {ref}")
    raise NotFound(f"No such container: {ref}")


def load(ref):
    return Record.load(resolve_id(ref))


def all_records():
    out = []
    for cid in all_ids():
        try:
            out.append(Record.load(cid).refresh())
        except (NotFound, HullError):
            continue
    return out
