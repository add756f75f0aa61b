"""Health checks (engine/health.py, run by the monitor): a passing check becomes healthy, a
failing one unhealthy only after Retries, a timeout, --no-healthcheck, a HEALTHCHECK from a
built image, ps's STATUS column and inspect's State.Health. No timed assertions: each waits
for a state with a generous deadline."""

from pathlib import Path

from engine_helpers import clean, engine, wait_for  # noqa: F401 - fixtures


def health(engine, name):
    return engine.inspect(name)["State"].get("Health")


def ps_status(engine, name):
    return engine.out("ps", "--filter", f"name={name}", "--format", "{{.Status}}")


def test_passing_check_becomes_healthy(clean):
    clean("run", "-d", "--name", "ok", "--health-cmd", "echo fine; test -d /proc/1",
          "--health-interval", "200ms", "busybox", "sleep", "300")
    assert wait_for(lambda: health(clean, "ok")["Status"] == "healthy", timeout=60)
    h = health(clean, "ok")
    assert h["FailingStreak"] == 0
    assert 1 <= len(h["Log"]) <= 5
    last = h["Log"][-1]
    assert last["ExitCode"] == 0 and last["Output"] == "fine\n"
    assert last["Start"] <= last["End"]
    assert ps_status(clean, "ok").endswith("(healthy)")
    assert clean.out("ps", "-q", "--filter", "health=healthy") == clean.inspect("ok")["Id"][:12]
    assert wait_for(lambda: len(health(clean, "ok")["Log"]) == 5, timeout=60)  # the last 5 only
    cfg = clean.inspect("ok")["Config"]["Healthcheck"]
    assert cfg == {"Test": ["CMD-SHELL", "echo fine; test -d /proc/1"], "Interval": 200_000_000}


def test_failing_check_is_unhealthy_only_after_retries(clean):
    clean("run", "-d", "--name", "bad", "--health-cmd", "echo broken >&2; exit 1",
          "--health-interval", "200ms", "--health-retries", "3", "busybox", "sleep", "300")
    seen = []

    def unhealthy():
        h = health(clean, "bad")
        seen.append((h["Status"], h["FailingStreak"]))
        return h["Status"] == "unhealthy"
    assert wait_for(unhealthy, timeout=60)
    assert all(st != "unhealthy" for st, streak in seen if streak < 3)
    assert all(st == "starting" for st, streak in seen if streak < 3)
    h = health(clean, "bad")
    assert h["FailingStreak"] >= 3
    assert all(e["ExitCode"] == 1 and e["Output"] == "broken\n" for e in h["Log"])
    assert ps_status(clean, "bad").endswith("(unhealthy)")
    clean("stop", "-t", "1", "bad")
    assert health(clean, "bad")["Status"] == "unhealthy"  # stopped: unhealthy, as Docker


def test_timeout_kills_the_probe(clean):
    clean("run", "-d", "--name", "slow", "--health-cmd", "sleep 120", "--health-interval", "200ms",
          "--health-timeout", "300ms", "--health-retries", "1", "busybox", "sleep", "300")
    assert wait_for(lambda: health(clean, "slow")["Status"] == "unhealthy", timeout=60)
    last = health(clean, "slow")["Log"][-1]
    assert last["ExitCode"] == -1
    assert last["Output"] == "Health check exceeded timeout (0.3s)"
    # the probe's process in the container is gone, not piling up
    assert wait_for(lambda: "sleep 120" not in clean.out("top", "slow"), timeout=30)


def test_starting_and_start_period(clean):
    # the first check is an hour away: "health: starting" until then
    clean("run", "-d", "--name", "later", "--health-cmd", "true", "--health-interval", "1h",
          "busybox", "sleep", "300")
    assert health(clean, "later") == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert ps_status(clean, "later").endswith("(health: starting)")
    # failures inside the start period do not count toward Retries
    clean("run", "-d", "--name", "grace", "--health-cmd", "exit 1", "--health-interval", "200ms",
          "--health-start-period", "1h", "--health-start-interval", "100ms", "--health-retries", "1",
          "busybox", "sleep", "300")
    assert wait_for(lambda: len(health(clean, "grace")["Log"]) >= 3, timeout=60)
    h = health(clean, "grace")
    assert h["Status"] == "starting" and h["FailingStreak"] == 0


def test_flags_and_no_healthcheck(clean):
    p = clean("run", "--rm", "--no-healthcheck", "--health-cmd", "true", "busybox", "true", check=False)
    assert p.returncode == 125 and "--no-healthcheck conflicts with --health-* options" in p.stderr
    p = clean("run", "--rm", "--health-interval", "soon", "--health-cmd", "true", "busybox", "true", check=False)
    assert p.returncode == 125 and "invalid duration" in p.stderr
    clean("run", "-d", "--name", "none", "--no-healthcheck", "busybox", "sleep", "300")
    assert health(clean, "none") is None
    assert clean.inspect("none")["Config"]["Healthcheck"] == {"Test": ["NONE"]}
    assert "(" not in ps_status(clean, "none")


HEALTHY_IMAGE = """\
FROM busybox
RUN echo ready > /ready
HEALTHCHECK --interval=200ms --timeout=5s --retries=2 CMD ["cat", "/ready"]
CMD ["sleep", "300"]
"""


def test_built_image_healthcheck(clean, tmp_path):
    Path(tmp_path, "Dockerfile").write_text(HEALTHY_IMAGE)
    clean("build", "-q", "-t", "healthy:1", str(tmp_path))
    clean("run", "-d", "--name", "built", "healthy:1")
    assert clean.inspect("built")["Config"]["Healthcheck"]["Test"] == ["CMD", "cat", "/ready"]
    assert wait_for(lambda: health(clean, "built")["Status"] == "healthy", timeout=60)
    assert health(clean, "built")["Log"][-1]["Output"] == "ready\n"
    assert ps_status(clean, "built").endswith("(healthy)")
    # --health-cmd overrides the image's test, the image's interval stays
    clean("run", "-d", "--name", "override", "--health-cmd", "exit 1", "healthy:1")
    hc = clean.inspect("override")["Config"]["Healthcheck"]
    assert hc["Test"] == ["CMD-SHELL", "exit 1"] and hc["Interval"] == 200_000_000 and hc["Retries"] == 2
    assert wait_for(lambda: health(clean, "override")["Status"] == "unhealthy", timeout=60)
    # --no-healthcheck turns the image's off
    clean("run", "-d", "--name", "off", "--no-healthcheck", "healthy:1")
    assert health(clean, "off") is None
    # HEALTHCHECK NONE in a child image disables it too
    child = tmp_path / "child"
    child.mkdir()
    Path(child, "Dockerfile").write_text("FROM healthy:1\nHEALTHCHECK NONE\n")
    clean("build", "-q", "-t", "nohealth:1", str(child))
    clean("run", "-d", "--name", "child", "nohealth:1")
    assert health(clean, "child") is None
    assert "(" not in ps_status(clean, "child")
