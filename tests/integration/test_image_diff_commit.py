"""`hull diff` and `hull commit` on engine containers: Docker's A/C/D output without the
runtime's mount-point stubs, commit of stopped and running (paused) containers, --change,
--message, --author, errors."""

import json

from engine_helpers import clean, engine, wait_for  # noqa: F401


def test_diff_and_commit_stopped_container(clean):
    clean("run", "--name", "dc1", "busybox", "sh", "-c",
          "echo hi > /etc/foo; rm /bin/ls; mkdir -p /newdir/sub; echo x > /newdir/sub/f")
    lines = clean("diff", "dc1").stdout.splitlines()
    # /etc/hosts, /etc/hostname, /etc/resolv.conf were created as mount points: not changes
    assert lines == ["C /bin", "D /bin/ls", "C /etc", "A /etc/foo", "A /newdir", "A /newdir/sub",
                     "A /newdir/sub/f"]
    assert clean("container", "diff", "dc1").stdout.splitlines() == lines
    img_id = clean.out("commit", "-c", 'CMD ["cat", "/etc/foo"]', "-m", "a message", "-a", "me <me@x>",
                       "dc1", "committed/one:v1")
    assert img_id.startswith("sha256:")
    doc = json.loads(clean("image", "inspect", "committed/one:v1").stdout)[0]
    assert doc["Id"] == img_id and doc["RepoTags"] == ["committed/one:v1"]
    assert doc["Config"]["Cmd"] == ["cat", "/etc/foo"] and doc["Author"] == "me <me@x>"
    assert doc["History"][-1]["comment"] == "a message" and len(doc["Layers"]) == 2
    assert clean("run", "--rm", "committed/one:v1").stdout == "hi\n"
    p = clean("run", "--rm", "committed/one:v1", "sh", "-c",
              "test -e /bin/ls && echo ls; cat /newdir/sub/f", check=False)
    assert p.stdout == "x\n"
    # a container of the committed image starts with no changes of its own
    clean("create", "--name", "dc2", "committed/one:v1")
    assert clean("diff", "dc2").stdout == ""
    clean("rm", "dc2", "dc1")
    clean("rmi", "committed/one:v1")


def test_commit_running_container_pauses_and_resumes(clean):
    clean("run", "-d", "--name", "dc3", "busybox", "sh", "-c", "echo running > /state; sleep 300")
    assert wait_for(lambda: "A /state" in clean("diff", "dc3").stdout)
    img_id = clean.out("commit", "dc3")  # no name: a dangling image, like Docker
    assert clean.inspect("dc3")["State"]["Status"] == "running"
    assert clean.inspect("dc3")["State"]["Paused"] is False
    assert clean("run", "--rm", img_id[7:19], "cat", "/state").stdout == "running\n"
    clean.out("commit", "--pause=false", "dc3", "committed/two")
    assert clean("run", "--rm", "committed/two", "cat", "/state").stdout == "running\n"
    clean("rm", "-f", "dc3")
    clean("rmi", "committed/two")
    # both commits may have produced the same image (same content within the same second)
    p = clean("rmi", img_id, check=False)
    assert p.returncode == 0 or "no such image" in p.stderr


def test_diff_commit_errors(clean):
    for args, text in [(["diff", "nosuch"], "No such container"),
                       (["commit", "nosuch", "x"], "No such container"),
                       (["commit", "--change", "FROM x", "nosuch"], "No such container")]:
        p = clean(*args, check=False)
        assert p.returncode == 125 and text in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
    clean("create", "--name", "dc4", "busybox")
    p = clean("commit", "dc4", "BAD NAME", check=False)
    assert p.returncode == 125 and "invalid reference format" in p.stderr
    p = clean("commit", "--change", "FROM scratch", "dc4", "x", check=False)
    assert p.returncode == 125 and "unsupported instruction FROM" in p.stderr
    assert clean("diff", "dc4").stdout == ""
    clean("rm", "dc4")
