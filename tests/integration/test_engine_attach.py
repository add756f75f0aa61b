"""hull attach: output and exit code of a running container, stdin through a real pty, the
detach keys (default ctrl-p,ctrl-q and --detach-keys) leaving the container running; plus the
zygote serving container commands and the monitor's memory."""

import os
import pty
import select
import time
from pathlib import Path

from engine_helpers import HULL, clean, engine, wait_for  # noqa: F401


def _pty_attach(env, *args):
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(HULL, [HULL, "attach", *args], env)
    return pid, fd


def _read_until(fd, out, token, timeout=20):
    deadline = time.monotonic() + timeout
    while token not in out[0] and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                out[0] += os.read(fd, 4096)
            except OSError:
                break
    return token in out[0]


def _status(eng, cid):
    return eng.inspect(cid)["State"]["Status"]


def test_attach_streams_output_and_returns_the_exit_code(clean):
    cid = clean.out("run", "-d", "busybox", "sh", "-c", "sleep 1; echo out-line; echo err-line >&2; exit 7")
    p = clean("attach", cid, check=False, timeout=30)
    assert p.returncode == 7, p.stderr
    assert "out-line" in p.stdout and "err-line" in p.stderr


def test_attach_tty_stdin_and_detach_keys(clean):
    cid = clean.out("run", "-d", "-it", "busybox", "sh")
    for keys, seq in ((None, b"\x10\x11"), ("ctrl-a,x", b"\x01x")):
        pid, fd = _pty_attach(clean.env, *(["--detach-keys", keys] if keys else []), cid)
        out = [b""]
        # what is typed before attach has set up its terminal is kept, but wait for the shell
        # to answer so the keys below are not interleaved with the start-up
        deadline = time.monotonic() + 20
        while b"attached-" not in out[0] and time.monotonic() < deadline:
            os.write(fd, b"echo attached-$((6*7))\r")
            _read_until(fd, out, b"attached-42", timeout=1)
        assert b"attached-42" in out[0], out[0]
        os.write(fd, seq)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        assert os.WEXITSTATUS(status) == 0
        assert _status(clean, cid) == "running"
    clean("rm", "-f", cid)


def test_attach_to_a_stopped_container_is_refused(clean):
    cid = clean.out("create", "busybox", "true")
    p = clean("attach", cid, check=False)
    assert p.returncode != 0 and "start it first" in p.stderr


def test_zygote_serves_and_the_monitor_stays_small(clean):
    clean.out("ps")  # starts the zygote, if none
    assert wait_for(lambda: Path(clean.root, "run", "zygote.sock").exists(), timeout=30)
    cid = clean.out("run", "-d", "busybox", "sleep", "60")
    time.sleep(1)  # past the in-process hand-off: the exec'd monitor
    mpid = clean.inspect(cid)["State"].get("MonitorPid") or \
        __import__("json").loads(Path(clean.root, "containers", cid, "state.json").read_text())["MonitorPid"]
    rollup = Path(f"/proc/{mpid}/smaps_rollup").read_text()
    pss_kib = int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")))
    cmdline = Path(f"/proc/{mpid}/cmdline").read_bytes().split(b"\0")
    assert any(c.endswith(b"monitor_main.py") for c in cmdline)  # the stub that loads monitor's .pyc
    assert pss_kib < 8 * 1024  # the target is 5 MiB; PSS depends on what else shares the pages
    clean("rm", "-f", cid)


def test_zygote_workers_hold_no_other_clients_pipes(clean):
    """Each command's output pipe sees EOF when that command is done: the spare worker the
    zygote forks next holds none of the previous client's fds (it did once: a caller reading
    to EOF then waited for the next command)."""
    clean.out("ps")
    assert wait_for(Path(clean.root, "run", "zygote.sock").exists, timeout=30)
    for _ in range(3):
        assert clean("ps", "-q", timeout=20).stdout == ""  # capture_output: reads to EOF


def test_zygote_leaves_after_hull_code_changed(clean):
    """A zygote serves only current code: once a hull module it loaded changes (its mtime),
    it answers the request in flight and exits; the next command runs with the new code."""
    from hull.engine import trash
    clean.out("ps")
    sock = Path(clean.root, "run", "zygote.sock")
    assert wait_for(sock.exists, timeout=30)
    module = trash.__file__
    st = os.stat(module)
    try:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert clean.out("ps", "-q") == ""  # served (by the old zygote)
        assert wait_for(lambda: not sock.exists(), timeout=10)
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert clean.out("ps", "-q") == ""  # no zygote: in-process, and one starts for later
    assert wait_for(sock.exists, timeout=30)


def _pty_hull(env, *args):
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(HULL, [HULL, *args], env)
    return pid, fd


def _shell_answers(fd, out, tag):
    """Type an echo until the shell answers (what is typed before the shell runs is not lost,
    but the keys typed after it must not be interleaved with the start-up)."""
    deadline = time.monotonic() + 20
    while f"{tag}-42".encode() not in out[0] and time.monotonic() < deadline:
        os.write(fd, f"echo {tag}-$((6*7))\r".encode())
        _read_until(fd, out, f"{tag}-42".encode(), timeout=1)
    return f"{tag}-42".encode() in out[0]


def test_run_it_detach_keys_leave_the_container_running(clean):
    for name, keys, seq in (("det1", None, b"\x10\x11"), ("det2", "ctrl-a,x", b"\x01x")):
        args = ["run", "-it", "--name", name] + (["--detach-keys", keys] if keys else []) + ["busybox", "sh"]
        pid, fd = _pty_hull(clean.env, *args)
        out = [b""]
        assert _shell_answers(fd, out, "typed"), out[0]
        # a key that only starts the sequence is passed on when the sequence breaks off
        os.write(fd, seq[:1] + b"echo held-$((1+1))\r")
        assert _read_until(fd, out, b"held-2"), out[0]
        os.write(fd, seq)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert _status(clean, name) == "running"
        # the shell kept its stdin: attach again and end it
        pid, fd = _pty_attach(clean.env, name)
        out = [b""]
        assert _shell_answers(fd, out, "again"), out[0]
        os.write(fd, b"exit 3\r")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        assert os.WEXITSTATUS(status) == 3
        assert wait_for(lambda: _status(clean, name) == "exited")
        clean("rm", name)


def test_start_ai_detach_keys_and_rm_after_detach(clean):
    cid = clean.out("create", "-it", "--rm", "busybox", "sh")
    pid, fd = _pty_hull(clean.env, "start", "-ai", "--detach-keys", "ctrl-x", cid)
    out = [b""]
    assert _shell_answers(fd, out, "started"), out[0]
    os.write(fd, b"\x18")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WEXITSTATUS(status) == 0
    assert _status(clean, cid) == "running"
    clean("stop", "-t", "1", cid)  # --rm: the monitor removes it once it exits
    assert wait_for(lambda: cid not in clean.ids())


def test_bad_detach_keys_are_refused_before_anything_exists(clean):
    p = clean("run", "-it", "--detach-keys", "ctrl-", "busybox", "true", check=False)
    assert p.returncode == 125 and "invalid detach keys" in p.stderr, p.stderr
    assert clean.ids() == []
