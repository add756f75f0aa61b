"""--restart unless-stopped: like always while the engine runs (a process that exits by itself,
with any code, is started again), neither comes back after `hull stop`; the difference is when
the engine comes back (dockerd's start, here `hull start --boot` after a reboot): always
restarts even a container the user stopped, unless-stopped does not."""

import shutil
from pathlib import Path

from engine_helpers import clean, engine, wait_for  # noqa: F401
from test_engine_reboot import _simulate_reboot

ONCE = "if [ -e /v/ran ]; then exec sleep 1000; fi; touch /v/ran; echo first; exit 0"


def _st(eng, ref):
    return eng.inspect(ref)["State"]


def test_unless_stopped_restarts_a_process_that_exits_by_itself(clean):
    clean("run", "-d", "--name", "us1", "--restart", "unless-stopped", "-v", "usvol:/v", "busybox", "sh", "-c", ONCE)
    # exit 0: on-failure would stop here, unless-stopped (as always) starts it again
    assert wait_for(lambda: clean.inspect("us1")["RestartCount"] == 1 and _st(clean, "us1")["Status"] == "running")
    assert clean.inspect("us1")["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    clean("rm", "-f", "us1")
    shutil.rmtree(Path(clean.root, "volumes", "usvol"))


def test_neither_comes_back_after_stop_but_always_does_at_boot(clean):
    ids = {}
    for name, pol in (("always-stopped", "always"), ("unless-stopped-stopped", "unless-stopped"),
                      ("always-running", "always"), ("unless-stopped-running", "unless-stopped"),
                      ("no-policy-running", "no"), ("failed-once", "on-failure:3")):
        cmd = ["sh", "-c", "exit 3"] if name == "failed-once" else ["sleep", "1000"]
        ids[name] = clean.out("run", "-d", "--name", name, "--restart", pol, "busybox", *cmd)
    for name in ("always-stopped", "unless-stopped-stopped"):
        clean("stop", "-t", "1", name)  # returns once the monitor is gone: nothing can restart it
        st = _st(clean, name)
        assert st["Status"] == "exited" and clean.inspect(name)["RestartCount"] == 0, (name, st)
    assert wait_for(lambda: _st(clean, "failed-once")["Status"] == "exited")
    running = ["always-running", "unless-stopped-running", "no-policy-running"]
    _simulate_reboot(clean, [ids[n] for n in running])
    assert all(_st(clean, n)["Status"] == "exited" for n in ids)
    p = clean("start", "--boot")
    started = set(p.stdout.split())
    assert started == {"always-stopped", "always-running", "unless-stopped-running"}, p.stdout + p.stderr
    for name in ids:
        want = "running" if name in started else "exited"
        assert _st(clean, name)["Status"] == want, name
    assert clean.out("exec", "always-stopped", "echo", "up") == "up"
    clean("rm", "-f", *ids.values())
    assert clean.ids() == [] and clean.leftovers() == []


def test_boot_takes_no_containers(clean):
    p = clean("start", "--boot", "x", check=False)
    assert p.returncode == 125 and "--boot" in p.stderr
    p = clean("start", check=False)
    assert p.returncode == 125 and "requires at least 1 argument" in p.stderr


def test_kill_turns_the_policy_off_until_the_next_start(clean):
    """docker kill: SIGKILL (or the stop signal) disables the restart policy until the
    container is started again; a signal like SIGUSR1 leaves it in place."""
    # PID 1 of a pid namespace gets only the signals it handles (and SIGKILL): trap USR1
    clean("run", "-d", "--name", "k1", "--restart", "always", "busybox", "sh", "-c",
          "trap 'exit 5' USR1; sleep 1000 & wait")
    clean("kill", "-s", "USR1", "k1")  # it exits of it: always restarts it
    assert wait_for(lambda: clean.inspect("k1")["RestartCount"] == 1 and _st(clean, "k1")["Status"] == "running")
    clean("kill", "k1")
    assert wait_for(lambda: _st(clean, "k1")["Status"] == "exited")
    assert wait_for(lambda: not clean("ps", "-q", "--filter", "status=restarting").stdout.strip())
    st = _st(clean, "k1")
    assert st["Status"] == "exited" and st["ExitCode"] == 137 and clean.inspect("k1")["RestartCount"] == 1
    clean("start", "k1")  # the policy is back
    assert _st(clean, "k1")["Status"] == "running"
    clean("kill", "-s", "USR1", "k1")
    assert wait_for(lambda: clean.inspect("k1")["RestartCount"] == 2 and _st(clean, "k1")["Status"] == "running")
    clean("rm", "-f", "k1")
