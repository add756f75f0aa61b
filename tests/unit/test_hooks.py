"""hull.runtime.hooks: running OCI hooks with state on stdin, env, timeouts, failure semantics."""

import json
import os
import sys

import pytest

from hull.errors import HullError
from hull.runtime.hooks import HOOK_PHASES, HookError, run_hook, run_hooks

SH = "/bin/sh"
STATE = {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 4242,
         "bundle": "/nonexistent-bundle", "annotations": {"a": "b"}}


def sh(script, **kw):
    return {"path": SH, "args": ["sh", "-c", script], **kw}


def test_success_and_stdin_state(tmp_path):
    out = tmp_path / "stdin.json"
    run_hooks([sh(f"cat > {out}")], STATE, "createRuntime")
    assert json.loads(out.read_text()) == STATE


def test_every_hook_gets_the_state_in_order(tmp_path):
    log = tmp_path / "log"
    hooks = [sh(f"echo {i} $(cat | wc -c) >> {log}") for i in range(3)]
    run_hooks(hooks, STATE, "prestart")
    size = len(json.dumps(STATE, separators=(",", ":")))
    assert log.read_text().split("\n")[:3] == [f"0 {size}", f"1 {size}", f"2 {size}"]


def test_hook_that_ignores_stdin():
    big = dict(STATE, annotations={f"k{i}": "x" * 100 for i in range(2000)})  # > pipe buffer
    run_hooks([{"path": "/bin/true"}], big, "poststart")


def test_argv0_is_args0(tmp_path):
    out = tmp_path / "argv"
    run_hooks([{"path": SH, "args": ["custom-name", "-c", f'echo "$0" > {out}']}], STATE, "prestart")
    assert out.read_text().strip() == "custom-name"


def test_no_args_means_argv_is_path(tmp_path):
    script = tmp_path / "hook.sh"
    out = tmp_path / "argv0"
    script.write_text(f'#!/bin/sh\necho "$0 $#" > {out}\n')
    script.chmod(0o755)
    run_hooks([{"path": str(script)}], STATE, "prestart")
    assert out.read_text().strip() == f"{script} 0"


def test_env_exactly_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv("HULL_TEST_LEAK", "1")
    out = tmp_path / "env"
    hook = sh(f"env > {out}", env=["A=1", "B=x=y", "EMPTY="])
    run_hooks([hook], STATE, "createContainer")
    lines = sorted(line for line in out.read_text().splitlines() if not line.startswith(("PWD=", "SHLVL=", "_=")))
    # sh itself may add PWD/SHLVL/_; nothing from the runtime's environment leaks in
    assert lines == ["A=1", "B=x=y", "EMPTY="]


def test_env_empty_list_means_empty_environment(tmp_path):
    out = tmp_path / "env"
    run_hooks([sh(f"/usr/bin/env > {out}", env=[])], STATE, "prestart")
    leaked = [line for line in out.read_text().splitlines() if not line.startswith(("PWD=", "SHLVL=", "_="))]
    assert leaked == []


def test_env_absent_inherits_runtime_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HULL_TEST_INHERIT", "yes")
    out = tmp_path / "env"
    run_hooks([sh(f'echo "$HULL_TEST_INHERIT" > {out}')], STATE, "prestart")
    assert out.read_text().strip() == "yes"


def test_cwd_is_bundle(tmp_path):
    out = tmp_path / "cwd"
    run_hooks([sh(f"pwd > {out}")], dict(STATE, bundle=str(tmp_path)), "createRuntime")
    assert out.read_text().strip() == str(tmp_path)


def test_failure_message_with_stderr_tail():
    with pytest.raises(HookError) as ei:
        run_hooks([sh("echo out; echo first >&2; echo 'the reason' >&2; exit 1")], STATE, "createRuntime")
    e = ei.value
    assert str(e) == f"createRuntime hook {SH}: exit status 1: first | the reason"
    assert isinstance(e, HullError)
    assert (e.phase, e.path, e.returncode) == ("createRuntime", SH, 1)


def test_failure_without_stderr_uses_stdout():
    with pytest.raises(HookError) as ei:
        run_hooks([sh("echo only-stdout; exit 3")], STATE, "prestart")
    assert str(ei.value) == f"prestart hook {SH}: exit status 3: only-stdout"


def test_failure_silent():
    with pytest.raises(HookError) as ei:
        run_hooks([{"path": "/bin/false", "args": ["false"]}], STATE, "startContainer")
    assert str(ei.value) == "startContainer hook /bin/false: exit status 1"


def test_long_stderr_is_cut_to_tail():
    with pytest.raises(HookError) as ei:
        run_hooks([sh("i=0; while [ $i -lt 500 ]; do echo line$i >&2; i=$((i+1)); done; exit 2")], STATE, "prestart")
    msg = str(ei.value)
    assert msg.endswith("line499") and "line0 " not in msg and len(msg) < 800


def test_killed_by_signal():
    with pytest.raises(HookError) as ei:
        run_hooks([sh("kill -TERM $$")], STATE, "prestart")
    assert str(ei.value) == f"prestart hook {SH}: killed by signal SIGTERM"
    assert ei.value.returncode == -15


def test_missing_executable():
    with pytest.raises(HookError) as ei:
        run_hooks([{"path": "/nonexistent/hook"}], STATE, "createRuntime")
    assert str(ei.value) == "createRuntime hook /nonexistent/hook: cannot execute: No such file or directory"


def test_not_executable(tmp_path):
    f = tmp_path / "hook"
    f.write_text("#!/bin/sh\n")
    f.chmod(0o644)
    with pytest.raises(HookError) as ei:
        run_hooks([{"path": str(f)}], STATE, "createRuntime")
    assert str(ei.value) == f"createRuntime hook {f}: cannot execute: Permission denied"


def test_timeout_kills_hook_and_its_children(tmp_path):
    pids = tmp_path / "pids"
    hook = sh(f"sleep 60 & echo $! > {pids}; echo $$ >> {pids}; wait", timeout=1)
    with pytest.raises(HookError) as ei:
        run_hooks([hook], STATE, "createRuntime")
    assert str(ei.value) == f"createRuntime hook {SH}: timed out after 1s (killed)"
    assert ei.value.returncode is None
    for pid in map(int, pids.read_text().split()):
        assert _dies(pid), f"pid {pid} survived the timeout"


def _alive(pid):
    """True if pid is running (a zombie waiting for init to reap it counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _dies(pid):
    """SIGKILL to the group is queued before run_hooks returns, but the grandchild is reaped
    by init asynchronously: wait (bounded) for it to disappear or become a zombie."""
    import time

    deadline = time.monotonic() + 10
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_timeout_not_hit_by_fast_hook():
    run_hooks([sh("exit 0", timeout=30)], STATE, "prestart")


def test_first_failure_stops_fatal_phases(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(HookError):
        run_hooks([sh("exit 1"), sh(f"touch {marker}")], STATE, "createContainer")
    assert not marker.exists()


@pytest.mark.parametrize("phase", ["prestart", "createRuntime", "createContainer", "startContainer", "poststart"])
def test_fatal_phases(phase):
    with pytest.raises(HookError) as ei:
        run_hooks([sh("exit 1")], STATE, phase)
    assert str(ei.value).startswith(f"{phase} hook ")


def test_poststop_warns_and_continues(tmp_path):
    marker = tmp_path / "ran"
    warnings = []
    run_hooks([sh("echo bad >&2; exit 1"), sh(f"touch {marker}")], STATE, "poststop", warn=warnings.append)
    assert warnings == [f"poststop hook {SH}: exit status 1: bad"]
    assert marker.exists()


def test_warn_on_failure_override(tmp_path):
    warnings = []
    run_hooks([sh("exit 4")], STATE, "poststart", warn_on_failure=True, warn=warnings.append)
    assert warnings == [f"poststart hook {SH}: exit status 4"]
    with pytest.raises(HookError):
        run_hooks([sh("exit 4")], STATE, "poststop", warn_on_failure=False)


def test_default_warning_goes_to_stderr(capfd):
    run_hooks([sh("exit 1")], STATE, "poststop")
    assert capfd.readouterr().err == f"hull-runtime: warning: poststop hook {SH}: exit status 1\n"


def test_empty_hook_list_is_noop():
    run_hooks([], STATE, "prestart")
    run_hooks(None, STATE, "prestart")


def test_run_hook_directly():
    run_hook({"path": "/bin/true"}, b"{}", "prestart")
    with pytest.raises(HookError):
        run_hook({"path": "/bin/false"}, b"{}", "prestart")


def test_phases_match_spec_module():
    from hull.runtime.spec import HOOK_PHASES as SPEC_PHASES

    assert HOOK_PHASES == SPEC_PHASES


def test_import_does_not_load_subprocess():
    import subprocess

    code = "import sys, hull.runtime.hooks; print('subprocess' in sys.modules, 'json' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ)).stdout.split()
    assert out == ["False", "False"]
