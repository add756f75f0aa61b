"""cli._command_name: the command as a scan of runc's global flags tells it, before the flag
parser is loaded (create/run fork the container's stage 1 on it; the parser has the last word)."""

import pytest

from hull.runtime.cli import _command_name


@pytest.mark.parametrize("argv, command", [
    (["run", "c1"], "run"),
    (["--root", "/run/x", "create", "--bundle", "b", "c1"], "create"),
    (["--root=/run/x", "--log-format", "json", "--debug", "run", "c1"], "run"),
    (["--log", "/tmp/l", "--systemd-cgroup", "exec", "c1", "true"], "exec"),
    (["--rootless", "false", "--criu", "x", "state", "c1"], "state"),
    (["-v"], None),
    ([], None),
    (["--root", "run"], None),  # "run" is --root's value here, not a command
])
def test_the_command_after_the_global_flags(argv, command):
    assert _command_name(argv) == command
