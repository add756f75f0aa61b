"""The monitor and state: -it through a real pty, --restart on-failure:N, --init, recovery after
SIGKILL of the monitor, 20 concurrent run -d."""

import concurrent.futures
import os
import pty
import select
import signal
import time

from engine_helpers import HULL, clean, engine, wait_for  # noqa: F401


def test_it_through_a_real_pty(clean):
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(HULL, [HULL, "run", "--rm", "-it", "busybox", "sh"], clean.env)
    out = b""

    def read_until(token, timeout=20):
        nonlocal out
        deadline = time.monotonic() + timeout
        while token not in out and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
        return token in out
    assert read_until(b"# ")
    os.write(fd, b"tty; echo pid=$$\n")
    assert read_until(b"pid=1")
    assert b"/dev/pts/0" in out
    os.write(fd, b"exit 7\n")
    read_until(b"never", timeout=3)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WEXITSTATUS(status) == 7


def test_interactive_stdin_pipe(clean):
    p = clean("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input="hello\n")
    assert p.stdout == "HELLO\n"


def test_restart_on_failure_restarts_twice(clean):
    clean("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 3")
    assert wait_for(lambda: clean.inspect("flaky")["State"]["Status"] == "exited"
                    and clean.inspect("flaky")["RestartCount"] == 2, timeout=30)
    doc = clean.inspect("flaky")
    assert doc["State"]["ExitCode"] == 3
    assert clean.out("logs", "flaky").split() == ["run", "run", "run"]


def test_init_reaps_and_is_pid1(clean):
    out = clean.out("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$")
    first, second = out.splitlines()
    assert first.startswith("/run/hull-init") and second != "1"


def test_monitor_sigkill_ps_tells_the_truth_and_rm_cleans(clean):
    cid = clean.out("run", "-d", "--name", "orphan", "busybox", "sleep", "1000")
    st = clean.inspect(cid)["State"]
    os.kill(st["MonitorPid"], signal.SIGKILL)
    time.sleep(0.2)
    assert "Up " in clean.out("ps")  # the container itself still runs
    os.kill(st["Pid"], signal.SIGKILL)
    assert wait_for(lambda: clean.inspect(cid)["State"]["Status"] == "exited")
    assert clean.out("ps", "-q") == ""
    clean("rm", "-f", cid)
    assert clean.leftovers() == []
    assert not os.path.exists(f"/sys/fs/cgroup/pids/hull/{cid}")


def test_twenty_concurrent_run_d(clean):
    def one(i):
        return clean.out("run", "-d", "--name", f"many{i}", "busybox", "sleep", "1000")
    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        ids = list(ex.map(one, range(20)))
    listed = clean.out("ps", "-q", "--no-trunc").split()
    assert sorted(listed) == sorted(ids)
    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        list(ex.map(lambda c: clean("rm", "-f", c), ids))
    assert clean.ids() == []
