"""The OCI lifecycle, parent side: create, start, run, kill, delete, exec, and queries.

`create` forks the container's stage 1 (init.py), answers its named messages (write id maps,
put the init into its cgroups, run hooks) until READY, records the state and returns, leaving the
init waiting on the exec fifo. `start` opens the fifo. `run` = create + start + wait; it (and
the engine) creates with `start_now`: the init does not wait on the fifo at all.
"""

import errno
from hull import osfast as os
import select
import time

from hull import OCI_VERSION
from hull.errors import Conflict, HullError, NotFound
from hull.kernel import pidfd, signals
from hull.runtime import prefork, sync
from hull.runtime.state import Container, rfc3339_now


class Options(dict):
    """create/exec options (pid_file, console_socket, preserve_fds, no_pivot, no_new_keyring,
    systemd_cgroup, detach, spec if loaded already ...); missing keys read as None."""

    def __getattr__(self, name):
        return self.get(name)


def _cgroup_hierarchies(cgroup_path):
    """(mountpoint, fstype, mount data, container's subpath) per hierarchy, for `cgroup` mounts."""
    from hull import cgroups
    from hull.cgroups import fs
    if cgroups.detect_mode() == cgroups.UNIFIED:
        return [(cgroups.DEFAULT_ROOT, "cgroup2", "", cgroup_path)]
    v1, v2 = fs.v1_hierarchies(cgroups.DEFAULT_ROOT)
    by_mount = {}
    for ctrl, mp in v1.items():
        by_mount.setdefault(mp, []).append(ctrl)
    out = []
    for mp, ctrls in sorted(by_mount.items()):
        names = [c for c in ctrls if not c.startswith("name=")]
        data = ",".join(names) if names else "none," + ",".join(ctrls)
        if not os.path.isdir(mp + cgroup_path):
            continue
        out.append((mp, "cgroup", data, cgroup_path))
    if v2 and os.path.isdir(v2 + cgroup_path):
        out.append((v2, "cgroup2", "", cgroup_path))
    return out


def compile_seccomp(linux, root, child_opts):
    """Compile linux.seccomp to BPF here, in the runtime (cached by content hash), so the
    container side only installs it."""
    if not linux.get("seccomp"):
        return
    from hull.kernel import seccomp
    spec = linux["seccomp"]
    child_opts["seccomp_prog"] = seccomp.compile(spec, os.path.join(root, ".seccomp-cache"))
    child_opts["seccomp_flags"] = seccomp.load_flags(spec)
    child_opts["seccomp_notify"] = seccomp.uses_notify(spec)


def _send_cgroup(ch, mgr):
    """CGROUP: the cgroup2 dir stage 1 may clone the init into (an fd), if there is one."""
    path = mgr.cgroup2_dir()
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if path else None
    try:
        ch.send(sync.CGROUP, fds=[fd] if fd is not None else [])
    finally:
        if fd is not None:
            os.close(fd)


def _write_pid_file(path, pid):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _hook_state(cid, status, pid, bundle, annotations):
    return {"ociVersion": OCI_VERSION, "id": cid, "status": status, "pid": pid,
            "bundle": bundle, "annotations": annotations or {}}


# ----------------------------------------------------------------------------- create
def create(root, cid, bundle, opts):
    """Create a container; returns its Container record (status "created").

    Stage 1 runs already (opts.stage1, started by cli.main) or is forked now (runtime/prefork.py):
    it imports what the container side needs, and may make the namespaces and the init, while
    this process loads and checks the spec and makes the state dir, the exec fifo and the rest
    of the child's options, which follow with the spec in one OPTIONS message (fds attached)."""
    stage1 = opts.stage1
    if stage1 is None:  # called in-process (the engine): fork it now
        stage1 = prefork.fork()
        stage1.early(bundle=None if opts.spec else bundle, spec=opts.spec)
    try:
        from hull.runtime import spec as specmod
        bundle = os.path.abspath(bundle)
        # `run` has loaded it already; stage 1 got the same bytes
        spec = opts.spec or specmod.load(bundle, data=stage1.config)
        if not spec.get("process"):
            raise HullError("config.json: process: must be set to create a container")
        spec.setdefault("linux", {})
        c, cgroup_path = _create_record(root, cid, spec, opts)
    except BaseException:
        stage1.kill()
        raise
    return _create_in(c, cgroup_path, stage1, spec, bundle, opts)


def _create_record(root, cid, spec, opts):
    """What `create` checks before it makes anything, then the locked state dir; returns it
    with the container's cgroup path."""
    from hull import cgroups
    from hull.kernel import lsm
    linux = spec["linux"]
    lsm.validate(spec)  # an AppArmor profile / SELinux label this kernel cannot apply: an error, not ignored
    cgroup_path = cgroups.resolve_path(linux.get("cgroupsPath"), cid, systemd=bool(opts.systemd_cgroup))
    if linux.get("resources"):
        cgroups.validate(linux["resources"])
    if spec["process"].get("terminal") and not opts.console_socket and not opts.console_fd:
        raise HullError("cannot allocate tty if hull-runtime will detach without setting console socket")
    return Container.new(root, cid), cgroup_path


def _create_in(c, cgroup_path, stage1, spec, bundle, opts):
    """The rest of `create`, with the state dir made and locked: undone entirely on error."""
    from hull import cgroups
    from hull.runtime import userns
    cid, root, linux, proc = c.id, c.root, spec["linux"], spec["process"]
    new_ns = {ns["type"] for ns in linux.get("namespaces") or () if not ns.get("path")}
    parent_ch = stage1.ch
    helper_fds = {}
    mgr = None
    init_pid = 0
    console_sock = None
    fifo_fd = None
    early = sync.early_path(spec)  # stage 1 forks the init on EARLY; it moves itself (v1)
    try:
        # The cgroup's dirs first: stage 1 may clone the init into it (CGROUP). No move of
        # ours is waiting for a grace period meanwhile (holding cgroup_mutex), except on the
        # paths that need the warm-up (cli._start_beside, and below).
        mgr = cgroups.manager(cgroup_path)
        mgr.prepare()
        _send_cgroup(parent_ch, mgr)
        if not early:
            cgroups.warm_migrations()  # this path's move is ours, with its grace period
        os.mkfifo(c.fifo, 0o622)
        os.chmod(c.fifo, 0o622)  # not subject to umask: a non-root container user must write it
        annotations = spec.get("annotations") or {}
        # runtime-spec lifecycle: "created" is the status after step 2 (the environment is
        # made); prestart/createRuntime/createContainer run after it (runc says "creating",
        # crun and runtime-tools' hooks_stdin "created").
        hook_state = _hook_state(cid, "created", 0, bundle, annotations)
        listen_fds = int(os.environ.get("LISTEN_FDS", "0") or 0) if os.environ.get("LISTEN_PID") in (None, str(os.getpid())) else 0
        fifo_fd = os.open(c.fifo, os.O_PATH | os.O_CLOEXEC)
        child_opts = {
            "spec": spec, "no_pivot": opts.no_pivot, "preserve_fds": (opts.preserve_fds or 0) + listen_fds,
            "listen_fds": listen_fds, "state": hook_state,
            "no_new_keyring": opts.no_new_keyring, "start_now": bool(opts.start_now),
        }
        fds = {"fifo_fd": fifo_fd, **sync.stdio_fds()}
        compile_seccomp(linux, root, child_opts)
        idmap_plan = userns.plan(spec)
        if idmap_plan:  # idmapped mounts with their own mappings, made here
            helper_fds = userns.helper_trees(idmap_plan)
            fds.update((f"idmap:{k}", fd) for k, fd in helper_fds.items())
        if proc.get("terminal"):
            if opts.console_fd is not None:
                fds["console_fd"] = opts.console_fd
            else:
                from hull.runtime import console
                console_sock = console.connect(opts.console_socket)
                fds["console_fd"] = console_sock.fileno()
        sync.send_options(parent_ch, child_opts, fds)
        os.close(fifo_fd)
        fifo_fd = None
        userns.close(helper_fds)
        helper_fds = {}
        if console_sock:
            console_sock.close()
            console_sock = None
        resources = dict(linux.get("resources") or {})
        if "devices" in resources:
            from hull.runtime.devices import cgroup_rules
            resources["devices"] = cgroup_rules(resources["devices"], linux.get("devices"))
        if resources:  # its limits, while the init sets up its namespaces and mounts
            mgr.set(resources)
        notify_fd = None
        while True:
            msg, fds = parent_ch.recv(with_fds=True)
            kind = msg["type"]
            if kind == sync.CHILD_PID:
                # The init exists; while it builds its rootfs, it goes into its cgroup. It waits
                # for START before its cgroup namespace, hooks and anything of the container.
                init_pid = msg["pid"]
                start = {"cgroup_hierarchies": _cgroup_hierarchies(cgroup_path)}
                if early:  # the init moves itself into the v1 dirs; maybe cloned into cgroup2
                    start["self_move"] = mgr.apply_from_init(init_pid, msg.get("in_cgroup", False))
                else:
                    mgr.apply(init_pid)
                cgroups.warm_migrations_done()
                parent_ch.send(sync.START, **start)
                if opts.subreaper and "pid" not in new_ns:
                    # `run` reaps what the container leaves orphaned, as runc does; with a pid
                    # namespace of its own, its init does (and the init is our child anyway)
                    from hull.kernel import system
                    system.set_child_subreaper()
                stage1.reap()  # it has reported; it exits
                # the state, while the init builds its rootfs (removed again if that fails)
                c.data = {
                    "ociVersion": spec.get("ociVersion", OCI_VERSION), "id": cid, "pid": init_pid,
                    "initStartTime": pidfd.start_time(init_pid), "bundle": bundle,
                    "rootfs": spec["root"]["path"], "created": rfc3339_now(), "owner": "",
                    "annotations": spec.get("annotations") or {}, "cgroupPath": cgroup_path,
                    "config": spec, "systemdCgroup": bool(opts.systemd_cgroup),
                }
                c.save()
            elif kind == sync.WRITE_IDMAP:
                from hull.kernel import idmap
                idmap.write_maps(stage1.pid, linux.get("uidMappings"), linux.get("gidMappings"))
                # trees idmapped through the container's own user namespace (runtime/userns.py)
                trees = userns.container_trees(idmap_plan, stage1.pid) if idmap_plan else {}
                try:
                    parent_ch.send(sync.IDMAP_DONE, fds=list(trees.values()), idmap_keys=list(trees))
                finally:
                    userns.close(trees)
            elif kind == sync.RUN_HOOKS:
                hook_state["pid"] = init_pid
                hooks = spec.get("hooks") or {}
                if hooks.get("prestart") or hooks.get("createRuntime"):
                    from hull.runtime import hooks as hookrun
                    hookrun.run_hooks(hooks.get("prestart") or [], hook_state, "prestart")
                    hookrun.run_hooks(hooks.get("createRuntime") or [], hook_state, "createRuntime")
                parent_ch.send(sync.HOOKS_DONE, pid=init_pid)
            elif kind == sync.READY:
                notify_fd = fds[0] if fds else None
                break
        parent_ch.close()
        if notify_fd is not None:
            from hull.kernel import seccomp
            seccomp.send_listener_fd(linux["seccomp"]["listenerPath"], notify_fd,
                                     c.oci_state(), linux["seccomp"].get("listenerMetadata", ""))
            os.close(notify_fd)
        if opts.pid_file:
            _write_pid_file(opts.pid_file, init_pid)
        if opts.start_now:  # the init did not wait for `start`: it runs already
            os.unlink(c.fifo)
            _poststart(c)
        c.unlock()
        return c
    except BaseException:
        if fifo_fd is not None:
            os.close(fifo_fd)
        userns.close(helper_fds)
        if console_sock:
            console_sock.close()
        prefork.kill_and_reap(init_pid)
        stage1.kill()
        if mgr is not None:
            _destroy_cgroup(mgr)
        c.remove()
        raise


def _destroy_cgroup(mgr):
    try:
        if mgr.exists():
            mgr.kill_all(signals.SIGKILL)
        mgr.destroy()
    except HullError:
        pass


# ----------------------------------------------------------------------------- start
def start(root, cid):
    c = Container.load(root, cid).lock()
    try:
        status = c.status()
        if status != "created":
            raise Conflict({"stopped": "cannot start a container that has stopped",
                            "running": "cannot start an already running container",
                            "paused": "cannot start an already paused container"}[status])
        fd = os.open(c.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            # The init is blocked opening the fifo for writing; now it can write its byte.
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            while True:
                if poller.poll(100):
                    try:
                        if os.read(fd, 1):
                            break
                    except BlockingIOError:
                        pass
                if not c.init_alive():
                    raise HullError("cannot start a container that has stopped")
        finally:
            os.close(fd)
        os.unlink(c.fifo)
        _poststart(c)
        return c
    finally:
        c.unlock()


def _poststart(c):
    hooks = (c.data.get("config") or {}).get("hooks") or {}
    if hooks.get("poststart"):
        from hull.runtime import hooks as hookrun
        # the state as the start operation left it: running, the init's pid — even if a
        # short-lived process has exited already (crun; runtime-tools hooks_stdin)
        st = c.oci_state()
        st["status"], st["pid"] = "running", c.pid
        hookrun.run_hooks(hooks["poststart"], st, "poststart", warn_on_failure=True)


# ----------------------------------------------------------------------------- signals
parse_signal = signals.parse


def kill(root, cid, sig, all_processes=False):
    c = Container.load(root, cid)
    status = c.status()
    if status == "stopped" and not all_processes:
        raise HullError("container not running")
    if all_processes:
        mgr = _manager(c)
        if mgr.exists():
            mgr.kill_all(sig)
            if status == "paused" and sig == signals.SIGKILL:
                mgr.thaw()
        return
    if not pidfd.signal_process(c.pid, c.data.get("initStartTime"), sig):
        raise HullError("container not running")


def _manager(c):
    from hull import cgroups
    return cgroups.manager(c.data["cgroupPath"])


def wait_exit(pid, start_time=None, timeout=None):
    """Wait until `pid` is gone (it need not be our child). Returns False on timeout."""
    try:
        fd = pidfd.pidfd_open(pid)
    except HullError as e:
        if getattr(e, "errno", None) == errno.ESRCH:
            return True
        raise
    try:
        if start_time is not None and pidfd.start_time(pid) != start_time:
            return True
        p = select.poll()
        p.register(fd, select.POLLIN)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0, deadline - time.monotonic())
            if p.poll(None if left is None else int(left * 1000) + 1):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- delete
def delete(root, cid, force=False):
    try:
        c = Container.load(root, cid)
    except NotFound:
        if force:
            return
        raise
    _delete(c, force)


def _delete(c, force):
    cid = c.id
    c.lock()
    status = c.status()
    if status in ("running", "paused") and not force:
        c.unlock()
        raise Conflict(f"cannot delete container {cid} that is not stopped: {status}")
    mgr = _manager(c)
    if status != "stopped":
        pidfd.signal_process(c.pid, c.data.get("initStartTime"), signals.SIGKILL)
        if mgr.exists():
            mgr.kill_all(signals.SIGKILL)
            if status == "paused":
                mgr.thaw()
        wait_exit(c.pid, c.data.get("initStartTime"), timeout=10)
    elif mgr.exists() and mgr.pids():
        # the init is gone but other processes of the container linger (no pid namespace)
        mgr.kill_all(signals.SIGKILL)
    mgr.destroy()
    hooks = (c.data.get("config") or {}).get("hooks") or {}
    if hooks.get("poststop"):
        from hull.runtime import hooks as hookrun
        st = c.oci_state()
        st["status"] = "stopped"
        hookrun.run_hooks(hooks["poststop"], st, "poststop", warn_on_failure=True)
    c.remove()


# ----------------------------------------------------------------------------- run
def exit_status(status):
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return 255


def _wait_child(pid, forward_to):
    """Wait for our child `pid` (we are its subreaper), forwarding signals to it."""
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    old = {s: signals.handle(s, forward) for s in signals.FORWARDED}
    try:
        while True:
            try:
                wpid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 255
            if wpid == pid:
                return exit_status(status)
    finally:
        for s, h in old.items():
            signals.handle(s, h)


def _attach_and_wait(master, pid):
    """Proxy our terminal to the container's pty (if we hold its master), then wait for `pid`."""
    if master is not None:
        from hull.runtime import console
        console.proxy(master)
        os.close(master)
    return _wait_child(pid, pid)


def run(root, cid, bundle, opts):
    """create + start, then (unless detached) wait and delete; returns the exit code."""
    master = None
    opts["subreaper"] = not opts.detach
    from hull.runtime import spec as specmod
    try:
        opts["spec"] = specmod.load(os.path.abspath(bundle), data=opts.stage1 and opts.stage1.config)
    except BaseException:
        if opts.stage1:
            opts.stage1.kill()
        raise
    spec_terminal = bool((opts.spec.get("process") or {}).get("terminal"))
    if spec_terminal and not opts.console_socket and not opts.detach:
        import _socket
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        opts["console_fd"] = theirs.fileno()
    opts["start_now"] = True  # create + start in one: the init does not wait on the fifo
    c = create(root, cid, bundle, opts)
    if opts.get("console_fd") is not None:
        from hull.runtime import console
        theirs.close()
        master = console.recv_master(ours)
        ours.close()
    if opts.detach:
        return 0
    code = _attach_and_wait(master, c.pid)
    if not opts.keep:
        _delete(c, force=True)  # the record create returned: no need to read it back
    return code


# ----------------------------------------------------------------------------- exec
def exec_process(root, cid, proc, opts):
    """Run `proc` (an OCI process object) inside a running container; returns the exit code
    (or 0 when detached)."""
    from hull.kernel import namespaces
    c = Container.load(root, cid)
    status = c.status()
    if status == "paused" and not opts.ignore_paused:
        raise HullError("cannot exec in a paused container (use --ignore-paused to override)")
    if status not in ("running", "paused"):
        raise HullError("cannot exec in a stopped container" if status == "stopped"
                        else f"cannot exec in a {status} container")
    spec = c.data.get("config") or {}
    linux = spec.get("linux") or {}
    join = 0
    for ns in linux.get("namespaces", ()):
        flag, name = namespaces.TYPES[ns["type"]]
        try:
            if os.stat(f"/proc/{c.pid}/ns/{name}").st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                join |= flag
        except OSError as e:
            raise HullError(f"cannot read namespace {name} of container {cid}: {e.strerror}") from None
    if not opts.detach:
        from hull.kernel import system
        system.set_child_subreaper()
    stage1 = pid = 0
    master = None
    ours = None
    console_sock = None
    child_opts = {"preserve_fds": opts.preserve_fds or 0, "annotations": spec.get("annotations") or {}}
    compile_seccomp(linux, root, child_opts)
    try:
        if proc.get("terminal"):
            if opts.console_socket:
                from hull.runtime import console
                console_sock = console.connect(opts.console_socket)
                child_opts["console_fd"] = console_sock.fileno()
            elif opts.detach:
                raise HullError("cannot allocate tty if hull-runtime will detach without setting console socket")
            else:
                import _socket
                ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
                console_sock = theirs
                child_opts["console_fd"] = theirs.fileno()
            os.set_inheritable(child_opts["console_fd"], True)
        stage1, parent_ch = prefork.fork_stage("exec_stage1", c.pid, join, proc, linux, child_opts)
        if console_sock:
            console_sock.close()
        mgr = _manager(c)
        if mgr.exists():
            mgr.apply(stage1)
        from hull import cgroups
        cgroups.warm_migrations_done()
        parent_ch.send(sync.START)
        while True:
            msg, fds = parent_ch.recv(with_fds=True)
            if msg["type"] == sync.CHILD_PID:
                pid = msg["pid"]
                prefork.reap(stage1)
                stage1 = 0
            elif msg["type"] == sync.READY:
                for fd in fds:
                    os.close(fd)
                break
        parent_ch.close()
        if opts.pid_file:
            _write_pid_file(opts.pid_file, pid)
        if ours is not None:
            from hull.runtime import console
            master = console.recv_master(ours)
            ours.close()
    except BaseException:
        prefork.kill_and_reap(pid)
        prefork.kill_and_reap(stage1)
        raise
    if opts.detach:
        return 0
    return _attach_and_wait(master, pid)
