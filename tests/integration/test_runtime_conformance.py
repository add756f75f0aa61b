"""Regressions found with the OCI runtime-tools validation suite (docs/conformance.md)."""

import json
import os

from runtime_util import make_bundle, unique_id


def _state_hooks(tmp_path, phases):
    log = tmp_path / "hooks.log"
    log.write_text("")
    os.chmod(tmp_path, 0o755)
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nstate=$(cat)\necho \"$1 $state\" >> {log}\n")
    hook.chmod(0o755)

    def mutate(spec):
        spec["hooks"] = {p: [{"path": str(hook), "args": ["hook.sh", p]}] for p in phases}
    return log, mutate


def test_hook_state_status_and_pid_like_hooks_stdin(runtime, tmp_path, busybox_rootfs):
    """runtime-tools hooks_stdin: prestart sees "created" (the lifecycle's status after step 2)
    and the init's pid; poststart sees "running" and that pid even when the process has already
    exited by the time the hook runs (here: `true`)."""
    log, mutate = _state_hooks(tmp_path, ("prestart", "poststart"))
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["true"], mutate)
    runtime("create", "--bundle", b, cid)
    try:
        pid = runtime.state(cid)["pid"]
        runtime("start", cid)
    finally:
        runtime("delete", "--force", cid)
    seen = {}
    for line in log.read_text().splitlines():
        phase, state = line.split(" ", 1)
        seen[phase] = json.loads(state)
    assert seen["prestart"]["status"] == "created" and seen["prestart"]["pid"] == pid
    assert seen["poststart"]["status"] == "running" and seen["poststart"]["pid"] == pid
