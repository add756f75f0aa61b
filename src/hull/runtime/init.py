"""The child side of create and exec. Runs in forked processes and never returns.

create:  stage 1 joins/creates namespaces (user first, the parent writes the id maps), then
         forks stage 2 — the container init, PID 1 of a new pid namespace — which builds the
         rootfs and the process's security and waits on the exec fifo until `start`.
exec:    stage 1 joins the init's namespaces with setns(pidfd), stage 2 sets up and execs.

Order inside the init (DESIGN.md): rootfs → hostname, sysctl, readonly/masked paths →
rlimits → landlock → user + capabilities → no_new_privs → seccomp (last) → READY → exec.
"""

from hull import osfast as os

from hull.errors import HullError, KernelError
from hull.kernel import clone, namespaces, netdev, system
from hull.runtime import process, sync
from hull.runtime.spare_netns import SpareNetns


def run_child(ch, stage1, *args):
    """Run `stage1(ch, *args)` in a forked child; every error goes back to the parent."""
    try:
        stage1(ch, *args)
    except sync.ChannelClosed:
        os._exit(1)  # the runtime gave up on this container (and says why), or is gone
    except BaseException as e:  # noqa: BLE001 - everything must reach the parent
        try:
            msg = str(e) or e.__class__.__name__
            if not getattr(e, "__module__", "").startswith("hull") and not isinstance(e, OSError):
                msg = f"{e.__class__.__name__}: {msg}"
            ch.send(sync.ERROR, message=msg)
        except BaseException:
            # after READY nobody listens on the channel: say it on the container's stderr
            os.write(2, f"hull-runtime: {msg}\n".encode())
        os._exit(1)
    os._exit(0)


# ----------------------------------------------------------------------------- create
class InitContext:
    """What the rootfs code needs to know about the namespaces it runs in."""

    def __init__(self, spec, opts, ch=None):
        self.spec = spec
        self.ch = ch
        self.no_pivot = opts.get("no_pivot", False)
        types = {ns["type"]: ns.get("path") for ns in spec["linux"].get("namespaces", ())}
        self.in_userns = "user" in types
        self.new_cgroupns = "cgroup" in types and not types["cgroup"]
        self.new_netns = "network" in types and not types["network"]
        self.own_mountns = "mount" in types and not types["mount"]
        self.joined_mountns = bool(types.get("mount"))
        self.host_cgroups = opts.get("cgroup_hierarchies")
        self.idmap_fds = opts.get("idmap_fds") or {}  # plan key -> detached idmapped tree fd

    def join_cgroup(self):
        """Wait until the parent has set up the container's cgroup and moved this init in, or
        left the v1 side of the move to it (START: `self_move`), then unshare the cgroup
        namespace if one is asked for: its root is the cgroup the process is in at that
        moment. Everything before (namespaces, mounts) overlaps with the parent's cgroup
        set-up; nothing of the container runs before this."""
        if self.host_cgroups is None:
            msg = self.ch.recv(sync.START)
            for tasks in msg.get("self_move") or ():
                # "0": this thread, the init's only one; a thread's own move needs no grace
                # period (the kernel skips cgroup_threadgroup_rwsem), a process's does
                fd = os.open(tasks, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)
            self.host_cgroups = msg["cgroup_hierarchies"]
            if self.new_cgroupns:
                namespaces.unshare(namespaces.CLONE_NEWCGROUP)

    def cgroup_hierarchies(self):
        """(mountpoint, fstype, super options, container's subpath) per host hierarchy, for
        `cgroup` mounts: known once the cgroup is joined."""
        self.join_cgroup()
        return self.host_cgroups


def create_stage1(ch, spare=None):
    """Namespaces, then the init forked into them (the runtime's child, not ours). Started
    before the runtime has even parsed its arguments (runtime/prefork.py): this imports what
    every container needs meanwhile, then takes EARLY, config.json as the parent parsed it,
    not checked yet. When that only asks for new namespaces (no user or time namespace, nothing
    joined), they are made and the init is forked at once, and the init takes OPTIONS (the
    checked spec, the options and the fds the parent made) itself. Otherwise OPTIONS comes
    here first. Nothing of the container happens before the checked spec has arrived; a
    check that fails kills both. The cgroup namespace is left to the init
    (InitContext.join_cgroup): the init joins its cgroup meanwhile (cloned into its cgroup2 dir,
    moving itself into the v1 ones on START), or with a user namespace the parent moves it.
    `spare`: a SpareNetns started already (prefork.serve_beside)."""
    if spare is None:
        spare = SpareNetns()  # its kernel work overlaps with our imports
    preload_common()
    early_spec = ch.recv(sync.EARLY).get("spec")
    flags = _early_namespace_flags(early_spec)
    netns_fd = spare.wait()  # and we are single-threaded again (unshare, clone need it)
    if flags is not None:
        preload(early_spec)
        early = {"early_namespaces": _namespace_plan(early_spec)}
        if flags & namespaces.CLONE_NEWNET and netns_fd is not None:
            namespaces.setns(netns_fd, namespaces.CLONE_NEWNET, "the spare network namespace")
            flags &= ~namespaces.CLONE_NEWNET
            early["lo_up"] = True
        if netns_fd is not None:
            os.close(netns_fd)
        if flags:
            namespaces.unshare(flags)
        fork_stage2(ch, container_init, None, early, cgroup_fd=_recv_cgroup(ch))
    else:
        if netns_fd is not None:
            os.close(netns_fd)  # a user namespace must own the network namespace: made after it
        fd = _recv_cgroup(ch)
        if fd is not None:
            os.close(fd)  # the parent moves this init (in a user namespace it could not)
        opts = sync.recv_options(ch)
        spec = opts.pop("spec")
        preload(spec)  # before the user namespace: root inside may not read the host's Python
        _namespaces_then_init(ch, spec, opts)


def _recv_cgroup(ch):
    """CGROUP: the container's cgroup2 dir (an fd, or None) once the parent has made the state
    dir and the cgroup."""
    _msg, fds = ch.recv(sync.CGROUP, with_fds=True)
    return fds[0] if fds else None


def _namespace_plan(spec):
    return sorted((ns["type"], ns.get("path") or None) for ns in spec["linux"].get("namespaces") or ())


def _early_namespace_flags(spec):
    """CLONE_NEW* flags for the namespaces a not yet checked spec asks for, or None when they
    need the parent first (a user namespace's id maps, a time namespace's offsets, a path to
    join) or the spec is not even shaped like one."""
    if not sync.early_path(spec):
        return None
    try:
        flags = 0
        for ns in spec["linux"]["namespaces"]:
            if ns["type"] != "cgroup":
                flags |= namespaces.TYPES[ns["type"]][0]
        return flags
    except KeyError:
        return None


def _namespaces_then_init(ch, spec, opts):
    linux = spec["linux"]
    wanted = {ns["type"]: ns.get("path") or None for ns in linux.get("namespaces", ())}
    for t in namespaces.JOIN_ORDER:
        if wanted.get(t):
            namespaces.join(wanted[t], t)
    if "user" in wanted and not wanted["user"]:
        namespaces.unshare(namespaces.CLONE_NEWUSER)
        ch.send(sync.WRITE_IDMAP)
        msg, fds = ch.recv(sync.IDMAP_DONE, with_fds=True)
        # idmapped mount trees made by the parent through our user namespace (runtime/userns.py)
        opts.setdefault("idmap_fds", {}).update(zip(msg.get("idmap_keys") or (), fds))
        _become_ns_root()
    flags = 0
    for t, path in wanted.items():
        if t not in ("user", "cgroup") and not path:
            flags |= namespaces.TYPES[t][0]
    if flags:
        namespaces.unshare(flags)
    if "time" in wanted and not wanted["time"] and linux.get("timeOffsets"):
        namespaces.write_time_offsets(linux["timeOffsets"])
    fork_stage2(ch, container_init, spec, opts)


def fork_stage2(ch, fn, *args, cgroup_fd=None):
    """Fork stage 2 as the runtime's child (CLONE_PARENT) and report its pid. Stage 2 waits
    until CHILD_PID is sent, so the parent always knows the pid before any message of stage 2
    arrives. With `cgroup_fd`, stage 2 starts in that cgroup2 dir if the kernel can
    (CLONE_INTO_CGROUP, Linux 5.7); CHILD_PID says whether it did."""
    r, w = os.pipe()
    import gc
    gc.freeze()  # shared with stage 2 copy-on-write: not walked by its collections (cli.py)
    in_cgroup = cgroup_fd is not None
    try:
        pid = clone.fork_sibling(cgroup_fd)
    except KernelError:
        if not in_cgroup:
            raise
        in_cgroup = False  # an older kernel, or not allowed: the parent moves it
        pid = clone.fork_sibling()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # EOF once stage 1 has reported
        os.close(r)
        run_child(ch, fn, *args)
    os.close(r)
    if cgroup_fd is not None:
        os.close(cgroup_fd)
    ch.send(sync.CHILD_PID, pid=pid, in_cgroup=in_cgroup)
    os.close(w)


def _become_ns_root():
    from hull.kernel import prctl
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError:
        raise OSError("user namespace: uid/gid 0 must be mapped (linux.uidMappings/gidMappings)") from None
    # after a uid change the process is not dumpable; /proc/self/* writes need it (HOST-NOTES)
    prctl.set_dumpable(True)


def preload_common():
    """Import what nearly every container process uses (stage 1 does it while the parent still
    reads the spec and prepares OPTIONS); preload(spec) adds what this spec needs besides."""
    from hull.kernel import capabilities, mounts, prctl, rlimits  # noqa: F401
    capabilities.host_bounding()  # both cached now, from the host's /proc: the rootfs may
    capabilities.last_cap()       # have none to read them from
    from hull.runtime import rootfs  # noqa: F401


def preload(spec):
    """Import now every module needed after pivot_root: hull's files (and Python's) are not
    reachable from inside the container's rootfs. Only what this spec will use: each import
    costs start-up time."""
    proc = spec.get("process") or {}
    linux = spec.get("linux") or {}
    preload_common()
    if proc.get("apparmorProfile") or proc.get("selinuxLabel"):
        from hull.kernel import lsm  # noqa: F401
    if proc.get("terminal"):
        import fcntl, struct  # noqa: E401,F401 - the pty is made after pivot_root
        from hull.runtime import console  # noqa: F401
    if linux.get("seccomp"):
        from hull.kernel import seccomp  # noqa: F401 - the filter itself is compiled by the parent
    if (spec.get("annotations") or {}).get("org.hull.landlock"):
        import json  # noqa: F401 - landlock.parse reads the annotation after pivot_root
        from hull.kernel import landlock  # noqa: F401
    if (spec.get("hooks") or {}).get("startContainer") or (spec.get("hooks") or {}).get("createContainer"):
        from hull.runtime import hooks  # noqa: F401
        import subprocess  # noqa: F401


def container_init(ch, spec, opts):
    from hull.runtime import rootfs
    if spec is None:  # stage 1 went ahead with the namespaces: the checked spec comes now
        early = opts
        opts = sync.recv_options(ch)
        spec = opts.pop("spec")
        if _namespace_plan(spec) != early["early_namespaces"]:
            raise HullError("config.json changed while the container was being created")
        opts["lo_up"] = early.get("lo_up", False)
    os.setsid()
    if not opts.get("no_new_keyring"):
        # its own session keyring, so the container cannot read the host's keys (runc does this)
        system.join_session_keyring(f"_ses.{opts['state']['id']}")
    proc = spec["process"]
    linux = spec["linux"]
    process.take_stdio(opts.pop("stdio_fds", None))
    preserve = opts.get("preserve_fds", 0)
    process.close_extra_fds(2 + preserve)
    fifo_fd = opts["fifo_fd"]  # opened by the parent: in a user namespace we may not reach it
    opts["landlock_fds"] = (fifo_fd,)
    ctx = InitContext(spec, opts, ch)

    def before_pivot(_rootfs):
        ctx.join_cgroup()  # if no `cgroup` mount did already
        hooks = spec.get("hooks") or {}
        if not any(hooks.get(k) for k in ("prestart", "createRuntime", "createContainer", "startContainer")):
            return  # nothing to run, nor a state to pass on: no round trip to the parent
        ch.send(sync.RUN_HOOKS)
        # the init's pid as the host sees it, for the state the container-side hooks read
        opts["state"]["pid"] = ch.recv(sync.HOOKS_DONE)["pid"]
        hooks = hooks.get("createContainer")
        if hooks:
            from hull.runtime import hooks as hookrun
            hookrun.run_hooks(hooks, opts["state"], "createContainer")

    if ctx.new_netns and not opts.get("lo_up"):
        netdev.link_up("lo")  # a new network namespace starts with lo down; runc brings it up
    if ctx.own_mountns:
        rootfs.setup(spec, ctx, before_pivot)
    else:
        # Without a mount namespace of its own the container shares the host's (or another
        # container's) mount table: hull mounts nothing there, it only changes root — to
        # root.path as seen in that table, also in a joined one (runc pivots into it there;
        # runtime-tools linux_ns_path runs /runtimetest from the bundle).
        before_pivot(spec["root"]["path"])
        # the rootfs may have no /proc: keep a handle on ours to reopen the exec fifo later
        opts["proc_fd_dir"] = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        os.chroot(spec["root"]["path"])
        os.chdir("/")
    if proc.get("terminal"):
        _setup_terminal(opts["console_fd"], proc, bind_console=ctx.own_mountns)
    if spec.get("hostname"):
        system.sethostname(spec["hostname"])
    if spec.get("domainname"):
        system.setdomainname(spec["domainname"])
    for key, value in (linux.get("sysctl") or {}).items():
        system.write_sysctl(key, value)
    if ctx.own_mountns:
        rootfs.readonly_paths(linux.get("readonlyPaths"))
        rootfs.masked_paths(linux.get("maskedPaths"))
        if spec["root"].get("readonly"):
            rootfs.readonly_root()
    path = finish_setup(ch, proc, linux, spec.get("annotations") or {}, opts)
    if opts.get("start_now"):  # create + start in one (run, the engine): no fifo to wait on
        if opts.get("proc_fd_dir") is not None:
            os.close(opts["proc_fd_dir"])
    else:
        # wait for `start`: opening the fifo for writing blocks until start opens it for reading
        if opts.get("proc_fd_dir") is not None:
            fd = os.open(str(fifo_fd), os.O_WRONLY | os.O_CLOEXEC, dir_fd=opts["proc_fd_dir"])
            os.close(opts["proc_fd_dir"])
        else:
            fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(fd, b"0")
        os.close(fd)
    os.close(fifo_fd)
    hooks = spec.get("hooks", {}).get("startContainer")
    if hooks:
        from hull.runtime import hooks as hookrun
        hookrun.run_hooks(hooks, opts["state"], "startContainer")
    process.execute(path, proc["args"], _env(proc, opts))


def _apply_lsm(proc):
    """AppArmor profile / SELinux label for the next execve (as runc, before capabilities are
    dropped); `create` has refused them already where the kernel does not run that LSM."""
    if proc.get("apparmorProfile") or proc.get("selinuxLabel"):
        from hull.kernel import lsm
        lsm.apply(proc)


def _env(proc, opts):
    env = list(proc.get("env") or [])
    if opts.get("listen_fds"):
        env += [f"LISTEN_FDS={opts['listen_fds']}", "LISTEN_PID=1"]
    return env


def _setup_terminal(console_fd, proc, bind_console=True):
    """A pty from the container's devpts: the master goes to the console socket, the slave
    becomes stdio and the controlling terminal (and /dev/console for the init)."""
    from hull.kernel import mounts
    from hull.runtime import console
    master, slave_path = console.open_pty()
    size = proc.get("consoleSize")
    if size:
        console.set_size(master, size.get("height", 24), size.get("width", 80))
    slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
    if bind_console:
        mounts.make_mountpoint("/dev/console", is_dir=False)
        mounts.mount(slave_path, "/dev/console", None, mounts.MS_BIND)
    console.send_master(console_fd, master)
    os.close(master)
    os.close(console_fd)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    system.set_controlling_tty(0)


def apply_process(proc, linux, annotations, opts=None):
    """rlimits, oom_score_adj, personality, landlock, user, capabilities, no_new_privs, cwd.
    Shared by the container init and exec. Without noNewPrivileges, loading a seccomp filter
    needs CAP_SYS_ADMIN, so (as runc does) it is loaded here, before the capabilities are
    dropped; returns its notify fd then. With noNewPrivileges the caller loads it last."""
    from hull.kernel import prctl
    process.apply_rlimits(proc.get("rlimits"))
    if proc.get("oomScoreAdj") is not None:
        prctl.set_oom_score_adj(proc["oomScoreAdj"])
    if linux.get("personality"):
        p = linux["personality"]
        prctl.set_personality(p.get("domain", "LINUX"), p.get("flags") or [])
    rules = annotations.get("org.hull.landlock")
    if rules:
        from hull.kernel import landlock
        # the init still reopens its exec fifo, which lives outside any allowed tree
        landlock.apply(rules, allow_fds=(opts or {}).get("landlock_fds", ()))
    notify_fd = None
    if opts is not None and not proc.get("noNewPrivileges"):
        notify_fd = load_seccomp(opts)
    from hull.kernel import capabilities
    caps = proc.get("capabilities") or {}
    masks = capabilities.apply(caps)         # bounding/inheritable now, keeps setuid caps
    process.set_user(proc.get("user") or {})
    capabilities.after_setuid(caps, masks)   # exact sets and ambient, as the container user
    process.chdir(proc.get("cwd") or "/")
    if proc.get("noNewPrivileges"):
        prctl.set_no_new_privs()
    # A uid change cleared "dumpable", which locks us out of /proc/self/fd (the exec fifo is
    # reopened through it). execve resets it for the new program, so this does not leak.
    prctl.set_dumpable(True)
    return notify_fd


def finish_setup(ch, proc, linux, annotations, opts):
    """The last steps of the init and of exec: LSM label, process attributes and security,
    the executable lookup, seccomp (if not loaded already), then READY and the channel closed.
    Returns the executable's path."""
    _apply_lsm(proc)
    notify_fd = apply_process(proc, linux, annotations, opts)
    path = process.find_executable(proc["args"][0], proc.get("env") or [], proc.get("cwd") or "/")
    if notify_fd is None:
        notify_fd = load_seccomp(opts)
    ch.send(sync.READY, fds=[notify_fd] if notify_fd is not None else ())
    ch.close()
    return path


def load_seccomp(opts):
    """Install the BPF program the parent compiled (libseccomp is not reachable after
    pivot_root). Returns the notify listener fd, if the filter has SCMP_ACT_NOTIFY rules."""
    prog = opts.get("seccomp_prog")
    if not prog or opts.get("seccomp_loaded"):
        return None
    from hull.kernel import seccomp
    fd = seccomp.load_program(prog, opts["seccomp_flags"])
    opts["seccomp_loaded"] = True
    return fd if opts.get("seccomp_notify") else None


# ----------------------------------------------------------------------------- exec
def exec_stage1(ch, init_pid, join_flags, proc, linux, opts):
    preload({"linux": linux, "annotations": opts.get("annotations"), "process": proc})
    ch.recv(sync.START)
    from hull.kernel import pidfd
    fd = pidfd.pidfd_open(init_pid)
    namespaces.setns(fd, join_flags, f"/proc/{init_pid}/ns")
    os.close(fd)
    fork_stage2(ch, exec_stage2, proc, linux, opts)


def exec_stage2(ch, proc, linux, opts):
    process.close_extra_fds(2 + opts.get("preserve_fds", 0))
    if proc.get("terminal"):
        os.setsid()
        _setup_terminal(opts["console_fd"], proc, bind_console=False)
    path = finish_setup(ch, proc, linux, opts.get("annotations") or {}, opts)
    process.execute(path, proc["args"], list(proc.get("env") or []))

