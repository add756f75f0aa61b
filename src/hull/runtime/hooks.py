"""OCI lifecycle hooks: run `hooks.<phase>` entries with the container state on stdin.

Each hook runs `path` with `args` as its argv (args[0] is argv[0]; no args means argv is
[path]), the container state JSON on stdin, and:
- env: exactly the hook's `env` list when it has one; without `env` the hook inherits the
  runtime's environment (what runc and crun do);
- cwd: the bundle directory from the state (runc runs hooks from the bundle), else ours;
- timeout: seconds; when it expires the hook's whole process group is killed and the hook
  fails. Each hook runs in its own session so that nothing it forked outlives the kill.

Failure semantics (runtime-spec "Lifecycle", v1.3.0, which matches runc and crun):

  phase            runs during   namespace   on failure
  prestart         create        runtime     error: the runtime tears the container down
  createRuntime    create        runtime     error: tear down
  createContainer  create        container   error: tear down
  startContainer   start         container   error: tear down
  poststart        start         runtime     error: stop the container, tear down
  poststop         delete        runtime     warning; the remaining hooks still run

Runtime-spec 1.0.2-1.2.x said poststart failures only warn; 1.3.0 changed that to match runc,
which has always killed the container (crun followed). `warn_on_failure` overrides the table.
This module only runs hooks and reports; tearing down is the caller's job (runtime/lifecycle).
"""

from hull.errors import HullError

HOOK_PHASES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
WARN_ONLY_PHASES = frozenset(("poststop",))

STDERR_TAIL = 512        # bytes of a failing hook's output quoted in the error
KILL_GRACE = 2.0         # seconds to collect output after killing a timed-out hook


class HookError(HullError):
    """A hook failed; `phase`, `path` and `returncode` (None: timeout or exec failure)."""

    def __init__(self, message, phase, path, returncode=None):
        super().__init__(message)
        self.phase = phase
        self.path = path
        self.returncode = returncode


def _default_warn(msg):
    import sys

    sys.stderr.write(f"hull-runtime: warning: {msg}\n")
    sys.stderr.flush()


def _tail(out, err):
    """The last bytes of stderr (or stdout when stderr is empty), as one line of text."""
    data = (err or b"").strip() or (out or b"").strip()
    if not data:
        return ""
    if len(data) > STDERR_TAIL:
        data = b"..." + data[-STDERR_TAIL:]
    text = data.decode("utf-8", "replace")
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def _env_map(env):
    if env is None:
        return None  # inherit
    result = {}
    for entry in env:
        key, _, value = entry.partition("=")
        result[key] = value  # later duplicates win, as with runc (Go's os/exec)
    return result


def _kill_group(proc):
    import os
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass


def run_hook(hook, state_json, phase, *, cwd=None):
    """Run one hook; raise HookError on failure. state_json: bytes written to its stdin."""
    import subprocess

    path = hook["path"]
    argv = list(hook.get("args") or ()) or [path]
    timeout = hook.get("timeout")
    if cwd is not None and not isinstance(cwd, str):
        cwd = None
    try:
        proc = subprocess.Popen(
            argv,
            executable=path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env_map(hook.get("env")),
            cwd=cwd,
            close_fds=True,
            start_new_session=True,
        )
    except OSError as e:
        what = e.strerror or str(e)
        if cwd and e.filename == cwd:
            what = f"working directory {cwd}: {what}"
        raise HookError(f"{phase} hook {path}: cannot execute: {what}", phase, path) from None

    try:
        out, err = proc.communicate(state_json, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            proc.communicate(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            # Something escaped the process group and holds the pipes; stop reading.
            for f in (proc.stdin, proc.stdout, proc.stderr):
                if f is not None:
                    f.close()
            proc.wait()
        raise HookError(f"{phase} hook {path}: timed out after {timeout}s (killed)", phase, path) from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise

    rc = proc.returncode
    if rc == 0:
        return
    if rc < 0:
        import signal

        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = str(-rc)
        status = f"killed by signal {name}"
    else:
        status = f"exit status {rc}"
    tail = _tail(out, err)
    msg = f"{phase} hook {path}: {status}" + (f": {tail}" if tail else "")
    raise HookError(msg, phase, path, rc)


def run_hooks(hooks, state, phase, *, warn_on_failure=None, warn=None, cwd=None):
    """Run `hooks` (the list under spec["hooks"][phase]) in order with `state` on stdin.

    state: the container state dict (runtime-spec "State": ociVersion, id, status, pid,
    bundle, annotations) serialized as JSON for each hook.
    warn_on_failure: None = per the spec table above (only poststop warns); True = log a
    warning and run the remaining hooks; False = raise HookError at the first failure.
    warn: callable(str) for warnings (default: one line on stderr).
    cwd: working directory for the hooks (default: state["bundle"] when it is a directory).
    """
    if not hooks:
        return
    import json
    import os

    if warn_on_failure is None:
        warn_on_failure = phase in WARN_ONLY_PHASES
    if warn is None:
        warn = _default_warn
    if cwd is None:
        bundle = state.get("bundle")
        if isinstance(bundle, str) and os.path.isdir(bundle):
            cwd = bundle
    data = json.dumps(state, separators=(",", ":")).encode()
    for hook in hooks:
        try:
            run_hook(hook, data, phase, cwd=cwd)
        except HookError as e:
            if not warn_on_failure:
                raise
            warn(str(e))
