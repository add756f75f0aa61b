"""The hull CLI's image commands: output, Docker exit codes, no tracebacks."""

import json

from image_helpers import hull, hull_root  # noqa: F401


def test_bootstrap_images_tag_inspect_rmi_prune(hull_root):
    out = hull("image", "bootstrap", "busybox").stdout
    assert "docker.io/library/busybox:latest" in out
    digest = hull("image", "bootstrap", "busybox", "-q").stdout.strip()
    assert digest == hull("image", "bootstrap", "busybox", "-q").stdout.strip()  # reproducible
    hull("tag", "busybox", "mine/bb:2")
    lines = hull("images").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert {tuple(l.split()[:2]) for l in lines[1:]} == {("busybox", "latest"), ("mine/bb", "2")}
    assert len(set(hull("images", "-q").stdout.split())) == 1
    doc = json.loads(hull("image", "inspect", "mine/bb:2").stdout)[0]
    assert doc["Digest"] == digest and doc["RepoTags"] == ["busybox:latest", "mine/bb:2"]
    assert hull("image", "inspect", "-f", "{{.Config.Cmd}}", "busybox").stdout.strip() == '["sh"]'
    assert json.loads(hull("images", "--format", "json").stdout)[0]["Digest"] == digest
    p = hull("rmi", doc["Id"][7:19], check=False)
    assert p.returncode == 125 and "must be forced" in p.stderr
    assert "Untagged: mine/bb:2" in hull("image", "rm", "mine/bb:2").stdout
    out = hull("rmi", "busybox").stdout
    assert "Deleted: " + doc["Id"] in out
    assert hull("images", "-q").stdout == ""
    assert "Total reclaimed space" in hull("image", "prune", "-f").stdout


def test_errors_have_docker_exit_codes(hull_root):
    for args, text in [(["rmi", "nosuch"], "no such image"),
                       (["pull", "library/UPPER"], "must be lowercase"),
                       (["pull", "--bogus"], "No such option"),
                       (["tag", "nosuch", "x"], "no such image"),
                       (["image", "bootstrap", "fedora"], "cannot bootstrap"),
                       (["save", "-o", "/nonexistent-dir/x.tar", "nosuch"], "no such image"),
                       (["load", "-i", "/etc/hostname"], "not an image archive"),
                       (["image", "inspect", "nosuch"], "no such image")]:
        p = hull(*args, check=False)
        assert p.returncode == 125, (args, p.stderr)
        assert text in p.stderr, (args, p.stderr)
        assert "Traceback" not in p.stderr


def test_unwritable_root_is_clear(tmp_path):
    p = hull("image", "bootstrap", "busybox", check=False, env={"HULL_ROOT": "/proc/hull-nope"})
    assert p.returncode == 125 and "HULL_ROOT" in p.stderr and "Traceback" not in p.stderr
