"""`hull volume` and the life of anonymous volumes, as Docker's: `rm` keeps a container's
anonymous volumes, `rm -v` and `run --rm` remove them; a volume in use cannot be removed;
`volume prune` removes unused anonymous volumes, `--all` named ones too."""

from engine_helpers import clean, engine  # noqa: F401


def _anon(eng, cid):
    return next(m["Name"] for m in eng.inspect(cid)["Mounts"] if m["Destination"] == "/data")


def test_rm_keeps_anonymous_volumes_rm_v_and_run_rm_remove_them(clean):
    before = set(clean.out("volume", "ls", "-q").split())
    kept = clean.out("run", "-d", "-v", "/data", "busybox", "sh", "-c", "echo x > /data/f; sleep 1000")
    name = _anon(clean, kept)
    assert len(name) == 64
    clean("rm", "-f", kept)
    assert name in clean.out("volume", "ls", "-q").split()  # dangling, as Docker leaves it
    gone = clean.out("run", "-d", "-v", "/data", "busybox", "sleep", "1000")
    name2 = _anon(clean, gone)
    clean("rm", "-f", "-v", gone)
    assert name2 not in clean.out("volume", "ls", "-q").split()
    clean("run", "--rm", "-v", "/data", "busybox", "true")
    assert set(clean.out("volume", "ls", "-q").split()) - before == {name}  # --rm left nothing
    assert clean.out("volume", "rm", name) == name
    assert set(clean.out("volume", "ls", "-q").split()) == before


def test_a_volume_in_use_is_not_removed(clean):
    cid = clean.out("run", "-d", "-v", "inuse1:/d", "busybox", "sleep", "1000")
    p = clean("volume", "rm", "inuse1", check=False)
    assert p.returncode == 1 and "volume is in use" in p.stderr and cid in p.stderr
    clean("rm", "-f", cid)
    assert clean.out("volume", "rm", "inuse1") == "inuse1"
    p = clean("volume", "rm", "inuse1", check=False)
    assert p.returncode == 1 and "no such volume" in p.stderr
    assert clean("volume", "rm", "-f", "inuse1").returncode == 0


def test_prune_and_create(clean):
    named = clean.out("volume", "create", "--label", "k=v", "pr-named")
    doc = __import__("json").loads(clean.out("volume", "inspect", named))[0]
    assert doc["Name"] == "pr-named" and doc["Labels"] == {"k": "v"} and doc["Driver"] == "local"
    cid = clean.out("run", "-d", "-v", "/data", "busybox", "sleep", "1000")
    anon = _anon(clean, cid)
    assert len(anon) == 64
    clean("rm", "-f", cid)
    out = clean.out("volume", "prune", "-f")
    assert anon in out and "pr-named" not in out
    assert "pr-named" in clean.out("volume", "ls", "-q").split()
    assert "pr-named" in clean.out("volume", "prune", "-f", "--all")
    p = clean("volume", "create", "bad name", check=False)
    assert p.returncode == 125 and "invalid characters" in p.stderr
