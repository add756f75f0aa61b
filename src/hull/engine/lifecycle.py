"""The engine's container lifecycle: create, start (through a monitor), attach-wait, stop, kill,
remove, pause, cleanup after exit, restart policies, recovery of stale containers.

    rec = create(image, opts)                 # record + snapshot + bundle (Status created)
    session = start(rec, attach=Attach(...))  # monitor spawned, container running
    code = session.wait()                     # attached: stream until exit, clean up, exit code
    stop(rec); remove(rec, force=True)

Process model (DESIGN.md "engine"): `start` forks M (a Starter; `hull run` forks it before
it creates the record, docs/engine.md says why); M joins the monitors' cgroup, waits for the
container's id, becomes a child subreaper, redirects its stdio to pipes (or asks for a pty),
calls the runtime library's create (start_now) in-process, records the state, monitors the
container in-process for a moment and then *execs* the small monitor (engine/monitor.py),
which stays the init's parent. When the init exits, the monitor writes
exit.json and either the attached `hull run` or the monitor (exec'ing `cleanup_main`) runs
`cleanup()`, which is idempotent and serialized by the record's lock.
"""

import json
import os
import signal
import socket
import sys
import time

from hull.errors import Conflict, HullError, NotFound
from hull.engine import records
from hull.engine.records import Record

MONITOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "monitor.py")
MONITOR_HANDOFF = 0.25  # seconds the starting process monitors before it execs the monitor
MONITOR_CGROUP = "/hull/monitor"  # where every container's monitor lives (_join_monitor_cgroup)


class CannotInvoke(HullError):
    exit_code = 126


class CommandNotFound(HullError):
    exit_code = 127


def classify_start_error(message):
    """Docker's exit codes for a failed start: 127 command not found, 126 cannot invoke."""
    m = message.lower()
    if "executable file not found" in m or "no such file or directory" in m and "exec" in m:
        return CommandNotFound(message)
    if "permission denied" in m and "exec" in m or "unable to find user" in m or "unable to find group" in m:
        return CannotInvoke(message)
    return HullError(message)


def _store():
    from hull.image.store import default_store
    return default_store()


# ------------------------------------------------------------------------------ create
def create(image, opts):
    """A new container record from `image` (an Image) and run options (dict of CLI values)."""
    from hull.engine import bundle
    from hull.image import snapshot
    cfg = bundle.container_config(image, opts)
    rec = Record.create(cfg, opts.get("name"))
    try:
        with rec.locked():
            idmap = _allocate_userns(rec)
            snapshot.prepare(image, rec.dir, owner=rec.id, idmap=idmap,  # mounted until the container stops
                             volatile=bool(cfg["HostConfig"].get("AutoRemove")))
    except BaseException:
        _remove_all(rec, volumes=True)
        raise
    return rec


def _allocate_userns(rec):
    """--userns=auto: a block of host ids for the record (HostConfig.IDMappings); returns the
    snapshot's idmap or None."""
    from hull.engine import userns as uns
    mode, size = uns.parse_mode(rec.config["HostConfig"].get("UsernsMode"))
    if mode != "auto":
        return None
    rec.config["HostConfig"]["IDMappings"] = uns.allocate(rec.id, size)
    rec.save_config()
    uids, gids = uns.oci_mappings(rec.config["HostConfig"]["IDMappings"])
    return {"uid": uids, "gid": gids}


def _image_of(rec):
    from hull.image import store as st
    return st.resolve(rec.config["Image"])


# ------------------------------------------------------------------------------ start
class Attach:
    """How `hull run`/`start -a` attaches: our stdin (if interactive) and stdout/stderr.
    `detach_keys` (Docker's format, default ctrl-p,ctrl-q) apply to a terminal with -it: our
    stdin then goes to the monitor through a pipe this process feeds, so the keys can be
    matched here (engine/attach.py's KeyMatcher) — as Docker, only with a tty."""

    def __init__(self, stdin=False, tty=False, detach_keys=None):
        from hull.engine import attach as att
        self.stdin, self.tty = stdin, tty
        self.keys = att.parse_detach_keys(detach_keys or att.DEFAULT_DETACH_KEYS)
        self.stdin_pipe = None  # (read end for the monitor, write end for us) when keys apply

    def relay(self):
        return bool(self.stdin and self.tty and os.isatty(0))


class Session:
    """A started container, seen from the `hull` process that started it."""

    def __init__(self, rec, sock, attached, pending=b"", attach=None):
        self.rec, self.sock, self.attached = rec, sock, attached
        self.pending = pending  # what the monitor sent after the pid line (an early "exit N")
        self.stdin_w = attach.stdin_pipe[1] if attach and attach.stdin_pipe else -1
        self.keys = attach.keys if attach else None

    def wait(self, proxy_signals=True):
        """Attached: wait for the exit, clean up here (unless a restart policy applies; then
        the monitor does) and return the exit code."""
        rec = self.rec
        tty_old = None
        old_handlers = {}
        sock = self.sock
        if rec.config["Config"].get("Tty") and os.isatty(0):
            import termios
            import tty
            tty_old = termios.tcgetattr(0)
            tty.setraw(0, termios.TCSANOW)  # keep what was typed ahead (TCSAFLUSH drops it)

        def on_winch(_s, _f):
            try:
                sock.send(b"w")
            except OSError:
                pass

        def forward(signum, _f):
            try:
                kill(rec, signum)
            except HullError:
                pass
        try:
            old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, on_winch)
            if proxy_signals:
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
                    old_handlers[s] = signal.signal(s, forward)
            buf = self.pending
            if self.stdin_w >= 0 and not buf.endswith(b"\n"):
                buf, detached = self._relay_stdin(buf)
                if detached:
                    return self._detached(buf)
            while not buf.endswith(b"\n"):
                try:
                    chunk = sock.recv(64)
                except InterruptedError:
                    continue
                if not chunk:
                    break
                buf += chunk
        finally:
            for s, h in old_handlers.items():
                signal.signal(s, h)
            if self.stdin_w >= 0:
                os.close(self.stdin_w)
                self.stdin_w = -1
            if tty_old is not None:
                import termios
                termios.tcsetattr(0, termios.TCSADRAIN, tty_old)
        text = buf.decode().strip()
        if not text.startswith("exit "):
            sock.close()
            rec.refresh()
            return rec.state.get("ExitCode", 255)
        code = int(text.split()[1])
        if _restart_policy_applies(rec, code):
            sock.sendall(b"cleanup\n")
            sock.close()
            return code
        try:
            cleanup(rec.id, code)
        finally:
            try:
                sock.sendall(b"done\n")
            except OSError:
                pass
            sock.close()
        return code


    def _relay_stdin(self, buf):
        """Copy our stdin to the monitor's pipe, watching for the detach keys, until the
        monitor's "exit N" line (returns (buf, False)) or the keys (returns (buf, True))."""
        import select
        from hull.engine.attach import KeyMatcher
        matcher = KeyMatcher(self.keys)
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(0, select.POLLIN)
        while not buf.endswith(b"\n"):
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            for fd, _ev in events:
                if fd == 0:
                    try:
                        data = os.read(0, 4096)
                    except OSError:
                        data = b""
                    if not data:  # our stdin ended: what was held back, then EOF to the monitor
                        poller.unregister(0)
                        if matcher.held:
                            _write_quietly(self.stdin_w, matcher.held)
                        os.close(self.stdin_w)
                        self.stdin_w = -1
                        return buf, False
                    out, detached = matcher.feed(data)
                    if out:
                        _write_quietly(self.stdin_w, out)
                    if detached:
                        return buf, True
                    continue
                try:
                    chunk = self.sock.recv(64)
                except InterruptedError:
                    continue
                if not chunk:
                    return buf, False
                buf += chunk
        return buf, False

    def _detached(self, buf):
        """The detach keys were typed: the monitor stops using our stdio (and closes the control
        socket); the container keeps running and its exit is handled by the monitor."""
        try:
            self.sock.sendall(b"detach\n")
            while True:  # until the monitor let go of us (EOF); an "exit N" may race with it
                chunk = self.sock.recv(64)
                if not chunk:
                    break
                buf += chunk
        except OSError:
            pass
        self.sock.close()
        text = buf.decode(errors="replace").strip()
        if text.startswith("exit "):
            return int(text.split()[1])  # it exited meanwhile; the monitor cleans up
        return 0


def _write_quietly(fd, data):
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:  # the monitor is gone (the container exited)
        pass


class Starter:
    """M, forked ahead of the container it will start: it joins the monitors' cgroup while
    this process still creates the record and writes the bundle (_join_monitor_cgroup says
    why that matters), then waits for go(rec). `hull run` forks it before creating the
    container; start() forks one itself otherwise."""

    def __init__(self, attach=None):
        self.attach = attach
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        if attach and attach.relay():
            attach.stdin_pipe = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            self.sock.close()
            try:
                _spawn_monitor(theirs, attach)
            finally:
                os._exit(1)
        theirs.close()

    def go(self, rec):
        self.sock.sendall(rec.id.encode() + b"\n")
        if self.attach and self.attach.stdin_pipe:
            os.close(self.attach.stdin_pipe[0])

    def cancel(self):
        """Not needed after all: M reads EOF instead of a container id and exits."""
        self.sock.close()
        if self.attach and self.attach.stdin_pipe:
            for fd in self.attach.stdin_pipe:
                os.close(fd)
            self.attach.stdin_pipe = None
        os.waitpid(self.pid, 0)


def start(rec, attach=None, starter=None):
    """Start `rec` under a new monitor. Returns a Session (wait() on it when attached)."""
    from hull.image import snapshot
    starter = starter or Starter(attach)
    try:
        _prepare_start(rec, attach)
    except BaseException:
        starter.cancel()
        raise
    starter.go(rec)
    ours = starter.sock
    buf = b""
    while b"\n" not in buf:
        chunk = ours.recv(65536)
        if not chunk:
            break
        buf += chunk
    buf, _, pending = buf.partition(b"\n")  # a short container's "exit N" may follow at once
    try:
        msg = json.loads(buf.decode() or "{}")
    except ValueError:
        msg = {}
    if "pid" not in msg:
        ours.close()
        if attach and attach.stdin_pipe:
            os.close(attach.stdin_pipe[1])
        err = msg.get("error") or "the container's monitor died while starting it"
        exc = classify_start_error(err)
        with rec.locked():
            rec.reload()
            if os.path.isdir(rec.dir):
                rec.state.update(Status="created" if not rec.state.get("StartedAt") else "exited",
                                 ExitCode=exc.exit_code, Error=err, Pid=0, MonitorPid=0)
                rec.save_state()
                _teardown_network(rec)
                try:
                    snapshot.unmount(rec.dir)
                except HullError:
                    pass
        raise exc
    rec.reload()
    if not attach:
        ours.close()
        return Session(rec, None, False)
    return Session(rec, ours, True, pending, attach)


def _prepare_start(rec, attach):
    """Under the record's lock: check the status, mount the rootfs, set up the network, write
    the bundle and mark the record "starting"."""
    from hull.engine import bundle
    from hull.image import snapshot
    from hull.runtime import lifecycle as rt
    with rec.locked():
        rec.refresh()
        if (rec.status in ("running", "paused", "restarting") and rec.monitor_alive()
                and rec.state.get("MonitorPid") != os.getpid()):  # a restart comes from the old monitor
            raise Conflict(f"container {rec.name} is already running")
        if rec.status == "removing":
            raise Conflict(f"container {rec.name} is being removed")
        if rec.state.get("Stale"):
            _cleanup_runtime(rec)
        try:
            os.unlink(rec.path("exit.json"))
        except FileNotFoundError:
            pass
        rootfs = snapshot.prepare(_image_of(rec), rec.dir, owner=rec.id)
        size = None
        if attach and attach.tty and os.isatty(0):
            try:
                sz = os.get_terminal_size(0)
                size = (sz.lines, sz.columns)
            except OSError:
                pass
        try:
            from hull.network import endpoint
            endpoint.setup(rec)  # bridge networks: netns + CNI ADD before the container
            spec = bundle.build_spec(rec, rootfs, console_size=size)
        except BaseException as e:
            _teardown_network(rec)
            snapshot.unmount(rec.dir)
            if isinstance(e, HullError) and type(e) is HullError:
                raise classify_start_error(str(e)) from None
            raise
        os.makedirs(rec.bundle, exist_ok=True)
        records.atomic_write_json(os.path.join(rec.bundle, "config.json"), spec)
        rec.save_config()
        try:
            rt.delete(records.runtime_root(), rec.id, force=True)  # leftovers of an earlier run
        except HullError:
            pass
        rec.state.update(Status="starting", Pid=0, MonitorPid=0, Error="", Stale=False)
        rec.save_state()


def _spawn_monitor(sock, attach):
    """In the forked child: detach, join the monitors' cgroup, wait for the id of the
    container to start (its bundle is written), become M: create + start the container, exec
    the monitor. One fork, not two: nobody waits for M; when `hull` exits M is reparented (a
    second fork of this large process cost ~3-14 ms on the start path)."""
    os.setsid()
    _join_monitor_cgroup()
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(80)
        if not chunk:
            os._exit(0)  # not needed after all (Starter.cancel)
        buf += chunk
    try:
        rec = Record.load(buf.decode().strip())
        _monitor_body(rec, sock, attach)
    except BaseException as e:  # noqa: BLE001 - reported to the hull process
        msg = str(e) or e.__class__.__name__
        try:
            sock.sendall((json.dumps({"error": msg}) + "\n").encode())
        except OSError:
            pass
    os._exit(1)


def _join_monitor_cgroup():
    """Monitors live in hull's own cgroup, as podman's conmon lives in its own: not in the
    cgroup of whoever ran `hull` (a login session's cgroup is torn down with the session).
    It also makes the start faster: the first cgroup migration after a pause waits for an RCU
    grace period (cgroup_threadgroup_rwsem; 6-15 ms here), and migrations in the next ~15 ms
    do not. M pays it here, while start() still writes the bundle, so the container's own
    move into its cgroup right after is cheap. Best effort: without it M stays where it is."""
    from hull import cgroups
    try:
        cgroups.manager(MONITOR_CGROUP).apply(os.getpid())
    except (HullError, OSError):
        pass


def release_monitor_cgroup():
    """Remove the monitors' cgroup from every hierarchy where no monitor is left in it (one
    rmdir each: a busy one says EBUSY at once and stays; a monitor that comes later makes it
    again). The zygote calls this when idle and when it leaves."""
    from hull import cgroups
    try:
        dirs = set(cgroups.manager(MONITOR_CGROUP).paths().values())
    except (HullError, OSError):
        return
    for d in dirs:
        try:
            os.rmdir(d)
        except OSError:
            pass


def _monitor_body(rec, sock, attach):
    from hull.kernel import system
    from hull.runtime import lifecycle as rt
    rt_root = records.runtime_root()
    system.set_child_subreaper()
    cfg, host = rec.config["Config"], rec.config["HostConfig"]
    tty = bool(cfg.get("Tty"))
    interactive = bool(cfg.get("OpenStdin"))
    devnull = os.open(os.devnull, os.O_RDWR)
    sink_in = sink_out = sink_err = -1
    if attach:
        if attach.stdin_pipe:  # `hull run -it` on a terminal: our parent relays stdin (detach keys)
            os.close(attach.stdin_pipe[1])
            sink_in = attach.stdin_pipe[0]
        elif attach.stdin:
            sink_in = os.dup(0)
        sink_out = os.dup(1)
        sink_err = os.dup(2) if not tty else -1
    opts = rt.Options(keep=True, start_now=True)  # create + start in one: no exec fifo
    out_r = err_r = in_w = -1
    console_pair = None
    if tty:
        console_pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        opts["console_fd"] = console_pair[1].fileno()
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if interactive:
            in_r, in_w = os.pipe()
        else:
            in_r = os.dup(devnull)
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    c = rt.create(rt_root, rec.id, rec.bundle, opts)
    master = -1
    if tty:
        from hull.runtime import console
        console_pair[1].close()
        master = console.recv_master(console_pair[0])
        console_pair[0].close()
        out_r = master
        in_w = os.dup(master) if interactive else -1
    pid = c.pid
    me = os.getpid()
    with rec.locked():
        rec.reload()
        count = rec.state.get("RestartCount", 0)
        rec.state.update(Status="running", Running=True, Paused=False, Restarting=False, Pid=pid,
                         PidStart=records.proc_start_time(pid), MonitorPid=me,
                         MonitorStart=records.proc_start_time(me), StartedAt=records.now(),
                         FinishedAt="0001-01-01T00:00:00Z", ExitCode=0, OOMKilled=False, Error="",
                         RestartCount=count, StoppedByUser=False, Stale=False)
        rec.save_state()
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    from hull.engine.bundle import parse_size
    logcfg = host.get("LogConfig", {}).get("Config", {})
    args = {
        "id": rec.id, "dir": rec.dir, "pid": pid, "tty": tty,
        "out": out_r, "err": err_r, "in": in_w,
        "sink_in": sink_in, "sink_out": sink_out, "sink_err": sink_err,
        "ctl": sock.fileno() if attach else -1,
        "log": rec.log_path, "max_size": parse_size(logcfg.get("max-size", "10m"), "max-size"),
        "max_file": int(logcfg.get("max-file", "1")),
        "python": sys.executable,
        "cleanup": [sys.executable, "-c", "import sys; from hull.engine.lifecycle import cleanup_main; "
                    "cleanup_main(sys.argv[1:])", rec.id],
    }
    args["attach"] = _attach_listener(rec)
    from hull.engine import health
    args["health"] = health.monitor_args(rec)  # None without a health check
    keep = {fd for fd in (out_r, err_r, in_w, sink_in, sink_out, sink_err, args["ctl"], args["attach"]) if fd >= 0}
    for fd in keep:
        os.set_inheritable(fd, True)
    sock.sendall((json.dumps({"pid": pid}) + "\n").encode())
    if not attach:
        sock.close()
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass
    # Monitor in-process for a moment: a short container's exit is then seen at once instead
    # of after the small monitor's interpreter start-up; if it still runs, exec the monitor.
    from hull.engine import monitor
    rv = monitor.serve(args, handoff_at=time.monotonic() + MONITOR_HANDOFF)
    if not isinstance(rv, dict):
        os._exit(rv or 0)
    os.execv(sys.executable, [sys.executable, "-S", "-B", monitor.entry(), json.dumps(rv)])


def _attach_listener(rec):
    """The monitor's attach.sock (for `hull attach`), bound through /proc/self/fd so a long
    $HULL_ROOT does not overflow sun_path. Returns the listening fd, or -1."""
    path = rec.path("attach.sock")
    dfd = os.open(rec.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(f"/proc/self/fd/{dfd}/attach.sock")
            os.chmod(path, 0o600)
            s.listen(16)
        except OSError:
            s.close()
            return -1
        return s.detach()
    finally:
        os.close(dfd)


# ------------------------------------------------------------------------------ exit
def _restart_policy_applies(rec, code):
    rec.reload()
    pol = rec.config["HostConfig"].get("RestartPolicy") or {}
    name = pol.get("Name", "no")
    if name == "no" or rec.state.get("StoppedByUser"):
        return False
    if name == "on-failure":
        if code == 0:
            return False
        n = pol.get("MaximumRetryCount", 0)
        return not n or rec.state.get("RestartCount", 0) < n
    return name in ("always", "unless-stopped")


def restarts_on_boot(rec):
    """Docker's rule when the daemon starts (here: `hull start --boot`, run after a reboot):
    a stopped container comes back with `always` (even after `hull stop`), `unless-stopped`
    unless `hull stop`/`rm -f` stopped it, `on-failure` after a failure with retries left."""
    rec.refresh()
    if rec.status != "exited" or not rec.state.get("StartedAt"):
        return False
    pol = rec.config["HostConfig"].get("RestartPolicy") or {}
    name = pol.get("Name", "no")
    if name == "always":
        return True
    if name == "unless-stopped":
        return not rec.state.get("StoppedByUser")
    if name == "on-failure":
        n = pol.get("MaximumRetryCount", 0)
        return rec.state.get("ExitCode", 0) != 0 and (not n or rec.state.get("RestartCount", 0) < n)
    return False


def start_on_boot():
    """Start every container restarts_on_boot() picks; returns [(rec, error or None)]."""
    out = []
    for rec in records.all_records():
        try:
            if restarts_on_boot(rec):
                start(rec)
                out.append((rec, None))
        except HullError as e:
            out.append((rec, e))
    return out


def _cleanup_runtime(rec):
    """Delete the runtime state and the cgroup (killing what is left). Returns OOMKilled."""
    from hull import cgroups
    from hull.runtime import lifecycle as rt
    oom = False
    mgr = cgroups.manager(rec.cgroup_path)
    try:
        if mgr.exists():
            oom = mgr.oom_killed()
    except (HullError, OSError):
        pass
    try:
        rt.delete(records.runtime_root(), rec.id, force=True)
    except HullError:
        pass
    try:
        if mgr.exists():
            try:
                mgr.kill_all(signal.SIGKILL)
            except HullError:
                pass
            for _ in range(100):
                if not mgr.pids():
                    break
                time.sleep(0.02)
            mgr.destroy()
    except (HullError, OSError):
        pass
    _teardown_network(rec)
    return oom


def _teardown_network(rec):
    """CNI DEL, DNS entries, netns (the container's processes are gone by now)."""
    from hull.network import endpoint
    try:
        endpoint.teardown(rec)
    except HullError as e:
        try:
            rec.state["Error"] = str(e)
        except (AttributeError, TypeError):
            pass


def cleanup(cid, code=None):
    """After the container's init exited: record exit and OOM, free the runtime state, cgroup
    and mount, then --rm or --restart. Idempotent; serialized by the record lock."""
    from hull.image import snapshot
    try:
        rec = Record.load(cid)
    except NotFound:
        return None
    restart = False
    with rec.locked():
        if not os.path.isdir(rec.dir):
            return None
        rec.reload()
        ex = rec.exit_info()
        if ex is None and code is None and rec.status not in ("running", "paused", "starting", "restarting"):
            return rec  # already cleaned up
        if code is None:
            code = ex.get("ExitCode", 255) if ex else 255
        oom = _cleanup_runtime(rec)
        restart = _restart_policy_applies(rec, code)
        finished = (ex or {}).get("FinishedAt") or records.now()
        if restart:
            rec.state.update(Status="restarting", Running=True, Restarting=True, Pid=0, ExitCode=code,
                             OOMKilled=oom, FinishedAt=finished,
                             RestartCount=rec.state.get("RestartCount", 0) + 1)
            rec.save_state()
        elif rec.config["HostConfig"].get("AutoRemove"):
            _remove_all(rec, volumes=True, runtime_done=True)  # --rm: its anonymous volumes too
            return None
        else:
            try:
                snapshot.unmount(rec.dir)
            except HullError:
                pass
            rec.state.update(Status="exited", Running=False, Paused=False, Restarting=False, Pid=0,
                             ExitCode=code, OOMKilled=oom, FinishedAt=finished, Stale=False)
            rec.save_state()
        try:
            os.unlink(rec.path("exit.json"))
        except FileNotFoundError:
            pass
    if restart:
        n = rec.state["RestartCount"]
        time.sleep(min(0.1 * (2 ** (n - 1)), 5))
        rec.reload()
        if rec.status == "restarting" and not rec.state.get("StoppedByUser"):
            try:
                start(rec)
            except HullError as e:
                rec.update_state(Status="exited", Running=False, Restarting=False, Error=str(e))
    return rec


def cleanup_main(argv):
    """Entry of the process the monitor execs into after the exit."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)
    try:
        cleanup(argv[0])
    except Exception as e:  # noqa: BLE001 - nobody is attached; keep it in the record
        try:
            records.Record.load(argv[0]).update_state(Error=f"cleanup failed: {e}")
        except Exception:  # noqa: BLE001
            pass
        sys.exit(1)


# ------------------------------------------------------------------------------ signals
def kill(rec, sig=signal.SIGKILL):
    """Send `sig` to the container's init. As `docker kill`: SIGKILL and the container's stop
    signal turn its restart policy off until it is started again; other signals (SIGUSR1,
    say) leave it in place."""
    from hull.runtime import lifecycle as rt
    rec.refresh()
    if rec.status not in ("running", "paused"):
        raise Conflict(f"Cannot kill container: {rec.id}: container {rec.id} is not running")
    if sig in (signal.SIGKILL, rt.parse_signal(rec.config["Config"].get("StopSignal") or "SIGTERM")):
        rec.update_state(StoppedByUser=True)
    try:
        rt.kill(records.runtime_root(), rec.id, sig)
    except NotFound:
        raise Conflict(f"Cannot kill container: {rec.id}: container {rec.id} is not running") from None
    except HullError as e:
        if "not running" in str(e):
            raise Conflict(f"Cannot kill container: {rec.id}: container {rec.id} is not running") from None
        raise
    if sig == signal.SIGKILL and rec.status == "paused":
        unpause(rec)


def wait_monitor(rec, timeout=None):
    """Wait until the monitor (and the cleanup it execs into) is gone. False on timeout."""
    from hull.runtime.lifecycle import wait_exit
    pid, st = rec.state.get("MonitorPid"), rec.state.get("MonitorStart")
    if not pid or not records.process_alive(pid, st):
        return True
    return wait_exit(pid, None, timeout=timeout)


def wait(rec):
    """Block until the container is not running; returns the exit code (`hull wait`)."""
    while True:
        rec.refresh()
        if rec.status in ("running", "paused", "restarting", "starting"):
            if rec.monitor_alive():
                wait_monitor(rec)
                continue
            if rec.status == "restarting" or rec.status == "starting":
                time.sleep(0.05)
                continue
            if rec.init_alive():  # no monitor: poll the init
                from hull.runtime.lifecycle import wait_exit
                wait_exit(rec.state["Pid"], rec.state.get("PidStart"))
            continue
        return rec.state.get("ExitCode", 0)


def stop(rec, timeout=None):
    from hull.runtime.lifecycle import parse_signal
    rec.refresh()
    if rec.status not in ("running", "paused", "restarting"):
        return False
    rec.update_state(StoppedByUser=True)
    rec.refresh()
    if timeout is None:
        timeout = rec.config["Config"].get("StopTimeout", 10)
    sig = parse_signal(rec.config["Config"].get("StopSignal") or "SIGTERM")
    if rec.status == "paused":
        unpause(rec)
    if rec.status == "running":
        try:
            kill(rec, sig)
        except Conflict:
            pass
        from hull.runtime.lifecycle import wait_exit
        if rec.state.get("Pid") and not wait_exit(rec.state["Pid"], rec.state.get("PidStart"), timeout=timeout):
            try:
                kill(rec, signal.SIGKILL)
            except Conflict:
                pass
    if not wait_monitor(rec, timeout=30):
        raise HullError(f"container {rec.name}: the monitor did not finish after the stop")
    rec.refresh()
    if rec.state.get("Stale") or rec.status in ("running", "restarting", "starting"):
        recover(rec)
    return True


def recover(rec):
    """The monitor is gone: finish its job (cleanup) so the record tells the truth."""
    if rec.init_alive():
        from hull.runtime import lifecycle as rt
        try:
            rt.kill(records.runtime_root(), rec.id, signal.SIGKILL)
        except HullError:
            pass
    cleanup(rec.id, code=rec.exit_info().get("ExitCode") if rec.exit_info() else 255)


def remove(rec, force=False, volumes=False):
    rec.refresh()
    if rec.status in ("running", "paused", "restarting", "starting") and not (
            rec.state.get("Stale") or not force and False):
        if not force:
            raise Conflict(f"You cannot remove a {rec.status} container {rec.id}. Stop the "
                           "container before attempting removal or force remove")
        rec.update_state(StoppedByUser=True)
        rec.refresh()
        if rec.status == "paused":
            unpause(rec)
        if rec.init_alive():
            try:
                kill(rec, signal.SIGKILL)
            except Conflict:
                pass
        wait_monitor(rec, timeout=30)
    with rec.locked():
        if not os.path.isdir(rec.dir):
            return  # the monitor's --rm got there first
        rec.reload()
        _remove_all(rec, volumes=volumes)


def _remove_all(rec, volumes=False, runtime_done=False):
    """Runtime state and cgroup (unless `runtime_done`: _cleanup_runtime ran), snapshot,
    the record, and with `volumes` (rm -v; --rm) its anonymous volumes. Under the lock. The
    directories go to the trash (deleted once the command has answered; engine/trash.py)."""
    from hull.engine import trash
    from hull.image import snapshot
    if not runtime_done:
        _cleanup_runtime(rec)
    try:
        snapshot.release(rec.dir)  # unmounted and forgotten; its dirs go with the record's
    except FileNotFoundError:
        pass
    if volumes:
        for name in (rec.config.get("AnonymousVolumes") or {}).values():
            trash.move(os.path.join(records.volumes_dir(), name))
    if rec.config["HostConfig"].get("IDMappings"):
        from hull.engine import userns
        userns.release(rec.id)
    rec.remove_files()


# ------------------------------------------------------------------------------ pause
def _rt_container(rec):
    from hull.runtime.state import Container
    return Container.load(records.runtime_root(), rec.id)


def pause(rec):
    rec.refresh()
    if rec.status == "paused":
        raise Conflict(f"Container {rec.id} is already paused")
    if rec.status != "running":
        raise Conflict(f"Container {rec.id} is not running")
    _set_frozen(rec, True)
    rec.update_state(Status="paused", Paused=True)


def unpause(rec):
    rec.refresh()
    if rec.status != "paused":
        raise Conflict(f"Container {rec.id} is not paused")
    _set_frozen(rec, False)
    rec.update_state(Status="running", Paused=False)


def _set_frozen(rec, frozen):
    """Freeze or thaw the container's cgroup and say so in the runtime's state (under its lock)."""
    from hull import cgroups
    c = _rt_container(rec).lock()
    try:
        mgr = cgroups.manager(rec.cgroup_path)
        if frozen:
            mgr.freeze()
        else:
            mgr.thaw()
        c.data["paused"] = frozen
        c.save()
    finally:
        c.unlock()


def update(rec, **flags):
    """Live resource update (`hull update`): cgroup now, HostConfig for the next start."""
    from hull import cgroups
    from hull.engine import bundle
    host = rec.config["HostConfig"]
    changes = {}
    if flags.get("memory") is not None:
        changes["Memory"] = bundle.parse_size(flags["memory"], "--memory")
    if flags.get("memory_swap") is not None:
        s = flags["memory_swap"]
        changes["MemorySwap"] = -1 if str(s) == "-1" else bundle.parse_size(s, "--memory-swap")
    if flags.get("cpus") is not None:
        changes["NanoCpus"] = bundle.parse_cpus(flags["cpus"])
    if flags.get("cpu_shares") is not None:
        changes["CpuShares"] = int(flags["cpu_shares"])
    if flags.get("pids_limit") is not None:
        changes["PidsLimit"] = int(flags["pids_limit"])
    if flags.get("cpuset_cpus") is not None:
        changes["CpusetCpus"] = flags["cpuset_cpus"]
    if flags.get("restart") is not None:
        changes["RestartPolicy"] = bundle.parse_restart(flags["restart"])
    merged = dict(host, **changes)
    res = bundle._resources(merged)
    res.pop("devices", None)
    rec.refresh()
    if rec.status in ("running", "paused") and res:
        cgroups.validate(res)
        cgroups.manager(rec.cgroup_path).set(res)
    with rec.locked():
        rec.config["HostConfig"] = merged
        rec.save_config()
