"""Stage 1 started beside the runtime by bin/hull-runtime (runtime/prefork.py): used when
there, the runtime's stdio still reaches the container, nothing outlives a failure, and the
runtime forks a stage 1 of its own without the entry script."""

import os
import subprocess
import sys

from runtime_util import make_bundle, unique_id
from test_runtime_errors import _processes_of


def test_stage1_started_beside_is_used(runtime, tmp_path, busybox_rootfs):
    log = tmp_path / "log"
    b = make_bundle(tmp_path, busybox_rootfs, ["true"])
    r = runtime("--debug", "--log", log, "run", "--bundle", b, unique_id(), check=False)
    assert r.returncode == 0, r.stderr
    assert "started beside the runtime" in log.read_text()


def test_stdin_reaches_the_container(runtime, tmp_path, busybox_rootfs):
    """sh gives its background jobs /dev/null for stdin; the container still reads the
    runtime's."""
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "read line; echo got:$line"])
    r = subprocess.run(runtime.cmd("run", "--bundle", b, unique_id()), input="hello\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "got:hello\n"


def test_nothing_outlives_an_early_failure(runtime, tmp_path):
    """Failures before the runtime has even parsed its flags, or read the spec: the stage 1
    and the cgroup move the entry script started are reaped before the runtime exits (their
    command lines carry the runtime's arguments, the container id among them)."""
    for args in (["run", "--bogus-flag"], ["run", "--help"], ["create", "--bundle", tmp_path / "missing"],
                 ["exec", "--bogus-flag"]):
        cid = unique_id()
        r = runtime(*args, cid, check=False)
        assert r.returncode != 0 or "--help" in args, r
        assert _processes_of(cid) == [], args


def test_without_the_entry_script_stage1_is_forked(runtime, tmp_path, busybox_rootfs):
    """Run as a plain Python program (as the engine's tests and embedders may), with a stale
    variable naming a process that is not ours: the runtime forks its stage 1 and leaves
    that process alone."""
    log = tmp_path / "log"
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "echo $$"])
    code = "import sys; from hull.runtime.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", code, *runtime.cmd("--debug", "--log", log, "run", "--bundle", b, unique_id())[1:]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                       env={**os.environ, "HULL_RUNTIME_STAGE1": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1\n"
    assert "forked" in log.read_text()

