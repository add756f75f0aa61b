"""`hull exec`: run a process in a running container through the runtime library's exec
(setns into the init's namespaces, the container's cgroup, caps, seccomp)."""

import os

from hull.errors import Conflict, HullError
from hull.engine import records


def process_spec(rec, command, user=None, env=(), workdir=None, tty=False, privileged=False):
    """The OCI process for the exec, from the container's bundle config (env, user, cwd, caps)."""
    import json
    from hull.engine import bundle
    with open(os.path.join(rec.bundle, "config.json")) as f:
        spec = json.load(f)
    proc = dict(spec["process"])
    proc["args"] = list(command)
    proc["terminal"] = bool(tty)
    proc.pop("consoleSize", None)
    envmap = {}
    for e in list(proc.get("env") or []) + list(env):
        if "=" not in e:
            if e in os.environ:
                e = f"{e}={os.environ[e]}"
            else:
                continue
        k, _, v = e.partition("=")
        envmap[k] = v
    if tty:
        envmap.setdefault("TERM", "xterm")
    proc["env"] = [f"{k}={v}" for k, v in envmap.items()]
    if workdir:
        proc["cwd"] = workdir
    if user is not None:
        uid, gid, extra = bundle.lookup_user(spec["root"]["path"], user)
        proc["user"] = {"uid": uid, "gid": gid}
        if extra:
            proc["user"]["additionalGids"] = extra
    if privileged:
        caps, _ = bundle.effective_caps({"Privileged": True})
        proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    return proc


def run(rec, command, interactive=False, tty=False, detach=False, user=None, env=(), workdir=None,
        privileged=False):
    """Returns the process's exit code (0 when detached). Docker's 126/127 for a command that
    cannot be invoked / is not found."""
    from hull.engine.lifecycle import classify_start_error
    from hull.runtime import lifecycle as rt
    rec.refresh()
    if rec.status == "paused":
        raise Conflict(f"container {rec.id} is paused, unpause the container before exec")
    if rec.status != "running":
        raise Conflict(f"container {rec.id} is not running")
    try:
        proc = process_spec(rec, command, user, env, workdir, tty and not detach, privileged)
    except HullError as e:
        raise classify_start_error(str(e)) from None
    opts = rt.Options()
    if detach:
        return _run_detached(rec, proc)
    devnull = None
    saved = None
    if not interactive and not tty:
        devnull = os.open(os.devnull, os.O_RDONLY)
        saved = [os.dup(0)]
        os.dup2(devnull, 0)
    try:
        return rt.exec_process(records.runtime_root(), rec.id, proc, opts)
    except HullError as e:
        raise classify_start_error(str(e)) from None
    finally:
        if saved is not None:
            for i, fd in enumerate(saved):
                os.dup2(fd, i)
                os.close(fd)
        if devnull is not None:
            os.close(devnull)


def _run_detached(rec, proc):
    """exec -d: a forked keeper (a child subreaper, outside the container's cgroup) runs the
    exec and reaps it, so its zombie never pins the cgroup (PID 1 here may reap slowly).
    Errors before the process runs come back over a pipe."""
    import json
    from hull.engine.lifecycle import classify_start_error
    from hull.runtime import lifecycle as rt
    import select
    import tempfile
    tmpdir = tempfile.mkdtemp(prefix="hull-exec-")
    pid_file = os.path.join(tmpdir, "pid")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setsid()
            if os.fork():
                os._exit(0)
            fd = os.open(os.devnull, os.O_RDWR)
            for i in (0, 1, 2):
                os.dup2(fd, i)
            from hull.kernel import system
            system.set_child_subreaper()
            try:
                rt.exec_process(records.runtime_root(), rec.id, proc, rt.Options(pid_file=pid_file))
            except BaseException as e:  # noqa: BLE001 - reported to the caller
                try:
                    os.write(w, json.dumps({"error": str(e)}).encode())
                except OSError:
                    pass
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    data = b""
    try:
        while not os.path.exists(pid_file):  # started (the keeper stays, reaping it)
            if select.select([r], [], [], 0.01)[0]:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                data += chunk
    finally:
        os.close(r)
        import shutil
        shutil.rmtree(tmpdir, ignore_errors=True)
    try:
        msg = json.loads(data or b"{}")
    except ValueError:
        msg = {}
    if msg.get("error"):
        raise classify_start_error(msg["error"])
    return 0
