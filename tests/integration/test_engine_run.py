"""hull run and the container lifecycle: output, exit codes, --rm leaves nothing, -d + logs +
stop + wait, ps, rm -f, bad input."""

import os
import time

from engine_helpers import clean, engine, wait_for  # noqa: F401


def test_run_rm_echo_leaves_nothing(clean):
    p = clean("run", "--rm", "busybox", "echo", "hi")
    assert p.stdout == "hi\n" and p.returncode == 0
    assert clean.ids() == [] and clean.leftovers() == []
    assert not [d for d in os.listdir("/sys/fs/cgroup/memory/hull") if len(d) == 64 and
                not os.path.isdir(os.path.join(clean.root, "containers", d))] if os.path.isdir("/sys/fs/cgroup/memory/hull") else True


def test_exit_codes_like_docker(clean):
    p = clean("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (p.returncode, p.stdout, p.stderr) == (3, "out\n", "err\n")
    p = clean("run", "--rm", "busybox", "nosuchcmd", check=False)
    assert p.returncode == 127 and "executable file not found" in p.stderr
    p = clean("run", "--rm", "busybox", "/etc/passwd", check=False)
    assert p.returncode == 126 and "permission denied" in p.stderr
    p = clean("run", "--rm", "busybox", "sh", "-c", "sleep 100 & kill -9 $!; wait $!", check=False)
    assert p.returncode == 137
    assert clean.ids() == []


def test_bad_input_docker_messages_and_nothing_left(clean):
    for args, code, text in [
        (["run", "--rm", "--pull", "never", "nosuchimage", "true"], 125, "no such image"),
        (["run", "--rm", "--memory", "lots", "busybox", "true"], 125, 'invalid argument "lots" for "--memory"'),
        (["run", "--rm", "--cpus", "-1", "busybox", "true"], 125, "range of CPUs"),
        (["run", "--rm", "--restart", "always", "busybox", "true"], 125, "Conflicting options"),
        (["run", "--rm", "--network", "nosuchnet", "busybox", "true"], 125, "network nosuchnet not found"),
        (["run", "--rm", "-u", "nosuchuser", "busybox", "true"], 126, "unable to find user"),
        (["logs", "nosuch"], 125, "No such container"),
    ]:
        p = clean(*args, check=False)
        assert p.returncode == code and text in p.stderr, (args, p.returncode, p.stderr)
        assert "Traceback" not in p.stderr
    assert clean.ids() == [] and clean.leftovers() == []


def test_name_conflict(clean):
    clean("create", "--name", "taken", "busybox", "true")
    p = clean("run", "--name", "taken", "busybox", "true", check=False)
    assert p.returncode == 125 and 'The container name "/taken" is already in use' in p.stderr
    assert len(clean.ids()) == 1
    clean("rename", "taken", "free")
    assert clean.out("ps", "-a", "--format", "{{.Names}}") == "free"
    clean("rm", "free")


def test_detached_logs_stop_wait_ps_rm(clean):
    cid = clean.out("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
                    "trap 'echo bye; exit 0' TERM; i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done")
    assert len(cid) == 64
    assert wait_for(lambda: "line 3" in clean.out("logs", "ticker"))
    ps = clean.out("ps")
    assert "ticker" in ps and "Up " in ps
    assert clean.out("ps", "-q") == cid[:12]
    assert clean.out("logs", "--tail", "1", cid[:8]).startswith("line ")
    ts = clean.out("logs", "-t", "--tail", "1", "ticker")
    assert ts[:4].isdigit() and "T" in ts.split()[0] and ts.split()[0].endswith("Z")
    p = clean("rm", "ticker", check=False)
    assert p.returncode == 1 and "Stop the container" in p.stderr
    clean("stop", "ticker")
    assert clean.out("wait", "ticker") == "0"
    logs = clean.out("logs", "ticker")
    assert logs.endswith("bye")
    assert "Exited (0)" in clean.out("ps", "-a")
    assert clean.out("ps", "-q") == ""
    assert clean.out("ps", "-a", "--filter", "status=exited", "-q") == cid[:12]
    clean("rm", "ticker")
    assert clean.ids() == []


def test_logs_follow_ends_with_the_container(clean):
    clean("run", "-d", "--name", "f", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done")
    p = clean("logs", "-f", "f", timeout=30)
    assert p.stdout.split() == ["1", "2", "3"]
    assert clean.out("logs", "--since", "1h", "f").split() == ["1", "2", "3"]


def test_rm_force_running(clean):
    clean("run", "-d", "--name", "victim", "busybox", "sleep", "1000")
    clean("rm", "-f", "victim")
    assert clean.ids() == [] and clean.leftovers() == []


def test_create_start_restart_kill(clean):
    cid = clean.out("create", "--name", "c1", "busybox", "sleep", "1000")
    assert "Created" in clean.out("ps", "-a")
    clean("start", "c1")
    pid1 = clean.inspect("c1")["State"]["Pid"]
    assert pid1 > 0 and clean.inspect(cid)["State"]["Running"]
    clean("restart", "-t", "1", "c1")
    pid2 = clean.inspect("c1")["State"]["Pid"]
    assert pid2 != pid1 and clean.inspect("c1")["State"]["Status"] == "running"
    clean("kill", "c1")
    assert clean.out("wait", "c1") == "137"
    p = clean("exec", "c1", "true", check=False)
    assert p.returncode == 125 and "is not running" in p.stderr


def test_pause_unpause(clean):
    clean("run", "-d", "--name", "p", "busybox", "sleep", "1000")
    clean("pause", "p")
    assert clean.inspect("p")["State"]["Status"] == "paused"
    assert "(Paused)" in clean.out("ps")
    clean("unpause", "p")
    assert clean.inspect("p")["State"]["Status"] == "running"
