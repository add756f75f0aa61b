"""cli._command_name and bin/hull-runtime's scan: the command as a scan of runc's global flags
tells it, before the flag parser is loaded (create/run start the container's stage 1 on it;
the parser has the last word)."""

import subprocess
from pathlib import Path

import pytest

from hull.runtime.cli import _command_name


CASES = [
    (["run", "c1"], "run"),
    (["--root", "/run/x", "create", "--bundle", "b", "c1"], "create"),
    (["--root=/run/x", "--log-format", "json", "--debug", "run", "c1"], "run"),
    (["--log", "/tmp/l", "--systemd-cgroup", "exec", "c1", "true"], "exec"),
    (["--rootless", "false", "--criu", "x", "state", "c1"], "state"),
    (["-v"], None),
    ([], None),
    (["--root", "run"], None),  # "run" is --root's value here, not a command
    (["--root"], None),
]


@pytest.mark.parametrize("argv, command", CASES)
def test_the_command_after_the_global_flags(argv, command):
    assert _command_name(argv) == command


@pytest.mark.parametrize("argv, command", CASES)
def test_entry_script_scans_the_flags_as_the_runtime_does(argv, command):
    """bin/hull-runtime's scan (which starts stage 1 for create/run) names the same command."""
    script = (Path(__file__).resolve().parents[2] / "bin" / "hull-runtime").read_text()
    scan = script[script.index("command=\nscan()"):script.index('scan "$@"')]
    out = subprocess.run(["sh", "-c", scan + 'scan "$@"; printf %s "$command"', "sh", *argv],
                         capture_output=True, text=True, check=True).stdout
    assert out == (command or "")

