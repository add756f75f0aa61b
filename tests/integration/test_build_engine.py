"""hull build: real images from the bootstrapped busybox, run with hull run.

Multi-stage with COPY --from, ARG/ENV substitution, .dockerignore, USER/WORKDIR at run time,
ENTRYPOINT+CMD rules, heredocs, ADD of a tar, --chown/--chmod, a failing RUN, the layer cache
(hit: no new layers, same image ID; miss after a file changes) and bad input — each leaving no
image, container, mount or work dir behind."""

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from engine_helpers import clean, engine, wait_for  # noqa: F401 - fixtures


def write(ctx, files):
    for name, text in files.items():
        p = Path(ctx, name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(ctx)


def index_names(engine):
    idx = json.loads(Path(engine.root, "images", "index.json").read_text())
    return sorted(json.dumps(m, sort_keys=True) for m in idx.get("manifests", []))


def blobs(engine):
    return set(os.listdir(Path(engine.root, "images", "blobs", "sha256")))


def no_build_leftovers(engine):
    tmp = Path(engine.root, "tmp")
    left = [p.name for p in tmp.iterdir() if p.name.startswith("build-")] if tmp.is_dir() else []
    snaps = Path(engine.root, "snapshots")
    left += [p.name for p in snaps.iterdir()] if snaps.is_dir() else []
    return left + engine.leftovers()


def run(engine, image, *args):
    return engine("run", "--rm", image, *args).stdout


MULTISTAGE = """\
ARG BASE=busybox
FROM $BASE AS builder
ARG GREETING=hello
ENV OUT=/out NAME=${GREETING:-none}
RUN mkdir -p $OUT && echo "$NAME from builder" > $OUT/msg && echo "arg in run: $GREETING"
COPY src/ /src/

FROM ${BASE}
COPY --from=builder /out/msg /app/msg
COPY --from=builder /src /app/src
WORKDIR /app
RUN echo 'app:x:1234:1234::/app:/bin/sh' >> /etc/passwd
USER app
ENV EXTRA=${UNSET:+nope}set
CMD ["sh", "-c", "cat msg; pwd; id -u; ls src; echo $EXTRA"]
"""


def test_multistage_args_env_ignore_user_workdir(clean, tmp_path):
    ctx = write(tmp_path, {
        "Dockerfile": MULTISTAGE,
        "src/keep.txt": "k", "src/debug.log": "d", "src/sub/deep.log": "x", "src/sub/ok.txt": "o",
        ".dockerignore": "**/*.log\n!src/sub/deep.log\n",
    })
    p = clean("build", "-t", "ms:1", "--build-arg", "GREETING=hi", ctx)
    assert "arg in run: hi" in p.stderr
    out = run(clean, "ms:1").split("\n")
    assert out[0] == "hi from builder"
    assert out[1] == "/app"
    assert out[2] == "1234"
    assert out[3:5] == ["keep.txt", "sub"]
    assert out[5] == "set"
    assert run(clean, "ms:1", "ls", "/app/src/sub").split() == ["deep.log", "ok.txt"]
    cfg = clean.inspect("ms:1")["Config"]
    assert not any(e.startswith("NAME=") for e in cfg["Env"])   # only the final stage's ENV
    assert cfg["WorkingDir"] == "/app" and cfg["User"] == "app"
    assert not no_build_leftovers(clean)


CONFIG = """\
FROM busybox
LABEL a=1 "b c"="d e"
EXPOSE 80 53/udp 8000-8001
VOLUME ["/data", "/logs"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=3 CMD wget -q localhost || exit 1
SHELL ["/bin/sh", "-ec"]
RUN echo shell-form
ONBUILD RUN echo triggered > /onbuild
ENTRYPOINT ["echo", "entry"]
"""


def test_image_config_like_docker(clean, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": CONFIG})
    clean("build", "-t", "cfg:1", "--label", "extra=yes", ctx)
    img = clean.inspect("cfg:1")
    cfg = img["Config"]
    assert cfg["Labels"] == {"a": "1", "b c": "d e", "extra": "yes"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                                  "Interval": 30_000_000_000, "Retries": 3}
    assert cfg["Shell"] == ["/bin/sh", "-ec"]
    assert cfg["OnBuild"] == ["RUN echo triggered > /onbuild"]
    assert cfg["Entrypoint"] == ["echo", "entry"] and not cfg.get("Cmd")
    blob = Path(clean.root, "images", "blobs", "sha256", img["Id"].split(":")[1])
    hist = json.loads(blob.read_text())["history"]
    mine = [h["created_by"] for h in hist if h.get("comment") == "buildkit.dockerfile.v0"]
    assert "RUN /bin/sh -ec echo shell-form # buildkit" in mine
    assert "EXPOSE map[53/udp:{} 80/tcp:{} 8000/tcp:{} 8001/tcp:{}]" in mine
    assert sum(1 for h in hist if not h.get("empty_layer")) == len(img["RootFS"]["diff_ids"])
    # ONBUILD fires in an image built FROM this one
    ctx2 = write(tmp_path / "child", {"Dockerfile": 'FROM cfg:1\nENTRYPOINT []\nCMD ["cat", "/onbuild"]\n'})
    clean("build", "-t", "child:1", ctx2)
    assert run(clean, "child:1") == "triggered\n"
    assert not clean.inspect("child:1")["Config"].get("OnBuild")


@pytest.mark.parametrize("lines,args,expect", [
    (['CMD ["echo", "cmd"]'], [], "cmd"),
    (['ENTRYPOINT ["echo", "ep"]', 'CMD ["default"]'], [], "ep default"),
    (['ENTRYPOINT ["echo", "ep"]', 'CMD ["default"]'], ["given"], "ep given"),
    (['CMD ["echo", "same-stage"]', 'ENTRYPOINT ["echo", "ep"]'], [], "ep echo same-stage"),
    (["ENTRYPOINT echo shell-form", 'CMD ["ignored"]'], ["x"], "shell-form"),
    (["CMD echo shell $((1+1))"], [], "shell 2"),
])
def test_entrypoint_cmd_rules(clean, tmp_path, lines, args, expect):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\n" + "\n".join(lines) + "\n"})
    clean("build", "-q", "-t", "ep:1", ctx)
    assert run(clean, "ep:1", *args).strip() == expect


def test_entrypoint_resets_inherited_cmd(clean, tmp_path):
    write(tmp_path / "base", {"Dockerfile": 'FROM busybox\nCMD ["base-cmd"]\n'})
    clean("build", "-q", "-t", "withcmd:1", str(tmp_path / "base"))
    write(tmp_path / "child", {"Dockerfile": 'FROM withcmd:1\nENTRYPOINT ["echo", "only"]\n'})
    clean("build", "-q", "-t", "resets:1", str(tmp_path / "child"))
    assert run(clean, "resets:1").strip() == "only"


HEREDOCS = """\
FROM busybox AS files
ARG WHO=world
RUN <<EOF
echo line1 > /h1
echo "hello $WHO" >> /h1
EOF
COPY <<EOF /etc/greeting
greeting for ${WHO}
EOF
ADD pkg.tar.gz /opt/
COPY --chown=nobody:nogroup --chmod=0640 plain.txt /owned
RUN stat -c '%U:%G %a' /owned && cat /opt/pkg/readme /h1 /etc/greeting

FROM scratch
COPY --from=files /bin/busybox /bin/sh
COPY --from=files /h1 /etc/greeting /
CMD ["/bin/sh", "-c", "echo scratch; cat /h1 /greeting"]
"""


def test_heredocs_add_tar_chown_chmod_scratch(clean, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"from the tarball\n"
        ti = tarfile.TarInfo("pkg/readme")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    (tmp_path / "pkg.tar.gz").write_bytes(buf.getvalue())
    ctx = write(tmp_path, {"plain.txt": "plain\n", "Dockerfile": HEREDOCS})
    p = clean("build", "-t", "hd:1", ctx)
    assert "nobody:nogroup 640" in p.stderr
    assert "from the tarball" in p.stderr and "hello world" in p.stderr and "greeting for world" in p.stderr
    assert run(clean, "hd:1") == "scratch\nline1\nhello world\ngreeting for world\n"
    assert clean.inspect("hd:1")["Config"]["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def test_target_skips_unneeded_stages(clean, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": """\
FROM busybox AS a
RUN echo built-a
FROM busybox AS broken
RUN echo built-broken && exit 1
FROM a AS b
RUN echo built-b
"""})
    p = clean("build", "--target", "b", "-t", "tg:1", ctx)
    assert "built-a" in p.stderr and "built-b" in p.stderr and "built-broken" not in p.stderr
    p = clean("build", "--target", "nosuch", ctx, check=False)
    assert p.returncode == 1 and 'target stage "nosuch" could not be found' in p.stderr


def test_failing_run_reports_step_and_leaves_nothing(clean, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo before\nRUN echo oops >&2; exit 7\nRUN echo never\n"})
    before = index_names(clean)
    p = clean("build", "-t", "fail:1", ctx, check=False)
    assert p.returncode == 1
    assert "[3/4] RUN echo oops >&2; exit 7" in p.stderr
    assert "oops" in p.stderr and "[4/4]" not in p.stderr
    assert 'process "/bin/sh -c echo oops >&2; exit 7" did not complete successfully: exit code: 7' in p.stderr
    assert ">>> RUN echo oops" in p.stderr and "Dockerfile:3" in p.stderr
    assert index_names(clean) == before
    assert not no_build_leftovers(clean)


def test_cache_hit_then_miss_after_change(clean, tmp_path):
    ctx = write(tmp_path, {"app.txt": "v1\n", "other.txt": "o\n", "Dockerfile": """\
FROM busybox
RUN echo expensive > /e
COPY app.txt /app.txt
RUN cat /app.txt > /copy
COPY other.txt /other.txt
"""})
    clean("build", "-t", "c:1", ctx)
    first = clean.inspect("c:1")
    b1 = blobs(clean)
    p = clean("build", "-t", "c:1", ctx)
    assert p.stderr.count("CACHED") == 4
    assert blobs(clean) == b1                                   # no new layers, configs or manifests
    assert clean.inspect("c:1")["Id"] == first["Id"]
    Path(tmp_path, "app.txt").write_text("v2\n")
    p = clean("build", "-t", "c:2", ctx)
    assert p.stderr.count("CACHED") == 1                        # RUN echo expensive only
    second = clean.inspect("c:2")
    assert second["RootFS"]["diff_ids"][:2] == first["RootFS"]["diff_ids"][:2]
    assert second["RootFS"]["diff_ids"][2:] != first["RootFS"]["diff_ids"][2:]
    assert run(clean, "c:2", "cat", "/copy") == "v2\n"
    p = clean("build", "--no-cache", "-t", "c:3", ctx)
    assert "CACHED" not in p.stderr
    assert not no_build_leftovers(clean)


@pytest.mark.parametrize("dockerfile,files,msg", [
    ("FROM busybox\nRUN true\nRUNN echo\n", {}, 'Dockerfile:3: unknown instruction "RUNN"'),
    ("FROM busybox\nCOPY ../outside /x\n", {}, "forbidden path outside the build context"),
    ("FROM busybox\nCOPY escape/passwd /x\n", {"@link": "escape"}, "forbidden path outside the build context"),
    ("FROM busybox\nCOPY missing.txt /x\n", {}, "file not found in build context"),
    ("FROM busybox\nCOPY --from=nosuchstage /a /b\n", {}, "failed to resolve base image nosuchstage"),
    ("FROM busybox\nCOPY a.txt b.txt /notadir\n", {"a.txt": "a", "b.txt": "b"}, "must be a directory and end with a /"),
    ("FROM busybox\nRUN <<EOF\necho\n", {}, "Dockerfile:2: unterminated heredoc"),
    ("FROM busybox\nENV A=\"unterminated\n", {}, "Dockerfile:2:"),
    ("FROM --platform=linux/arm64 busybox\n", {}, "linux/amd64 only"),
    ("FROM busybox\nADD http://127.0.0.1:9/x /x\n", {}, "needs network access"),
])
def test_bad_input(clean, tmp_path, dockerfile, files, msg):
    files = dict(files)
    link = files.pop("@link", None)
    ctx = write(tmp_path / "ctx", {"Dockerfile": dockerfile, **files})
    if link:
        os.symlink("/etc", Path(ctx, link))
    before = index_names(clean)
    p = clean("build", "-t", "bad:1", ctx, check=False)
    assert p.returncode == 1, p.stderr
    assert msg in p.stderr
    assert "Traceback" not in p.stderr
    assert index_names(clean) == before
    assert not no_build_leftovers(clean)


MOUNT_FROM = """\
FROM busybox AS tools
RUN mkdir -p /out && echo from-tools > /out/msg && echo seed > /out/seedfile

FROM busybox AS unused
RUN echo built-unused

FROM busybox
RUN --mount=type=bind,from=tools,source=/out,target=/mnt/tools \\
    cat /mnt/tools/msg > /got && (touch /mnt/tools/x 2>/dev/null && echo writable || echo readonly) >> /got
RUN --mount=type=bind,from=busybox,source=/bin,target=/mnt/imgbin /mnt/imgbin/busybox echo from-image >> /got
RUN --mount=type=cache,from=tools,source=/out,target=/cache,id={cache_id} cat /cache/seedfile >> /got
RUN --mount=type=bind,source=data.txt,target=/data.txt cat /data.txt >> /got
CMD ["cat", "/got"]
"""


def test_run_mount_from_stage_image_cache_and_context(clean, tmp_path):
    ctx = write(tmp_path, {"data.txt": "data-v1\n",
                           "Dockerfile": MOUNT_FROM.format(cache_id=f"seeded-{tmp_path.name}")})
    p = clean("build", "-t", "mnt:1", ctx)
    assert "built-unused" not in p.stderr                    # a stage only mounted from is built, not others
    assert run(clean, "mnt:1") == "from-tools\nreadonly\nfrom-image\nseed\ndata-v1\n"
    # nothing of the mounts stays in the image, not even the mount points the RUNs needed
    assert run(clean, "mnt:1", "sh", "-c", "test ! -e /mnt && test ! -e /cache && test ! -e /data.txt && echo none") == "none\n"
    p = clean("build", "-t", "mnt:1", ctx)
    assert p.stderr.count("CACHED") == 6                     # tools' RUN, the four mounting RUNs, CMD
    Path(tmp_path, "data.txt").write_text("data-v2\n")
    p = clean("build", "-t", "mnt:2", ctx)                   # the bound context file changed: a miss
    assert p.stderr.count("CACHED") == 4
    assert run(clean, "mnt:2").endswith("seed\ndata-v2\n")
    assert not no_build_leftovers(clean)


def test_run_mount_from_unknown_stage(clean, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN --mount=type=bind,from=nosuch,target=/x true\n"})
    before = index_names(clean)
    p = clean("build", "-t", "bad:1", ctx, check=False)
    assert p.returncode == 1 and "failed to resolve base image nosuch" in p.stderr
    assert index_names(clean) == before
    assert not no_build_leftovers(clean)


def test_noop_rebuild_in_the_zygote_still_sees_changes(clean, tmp_path):
    """A no-op rebuild is answered by the zygote itself (stat-keyed checksums, reads only):
    a file rewritten with the same size and mtime still misses, a new tag is still written."""
    clean.out("ps")  # starts the zygote, if none
    assert wait_for(lambda: Path(clean.root, "run", "zygote.sock").exists(), timeout=30)
    ctx = write(tmp_path, {"app.txt": "aaaa\n", "Dockerfile": "FROM busybox\nCOPY app.txt /app.txt\n"})
    first = clean.out("build", "-q", "-t", "z:1", ctx)
    p = clean("build", "-t", "z:1", ctx)
    assert p.stderr.count("CACHED") == 1 and f"writing image {first} done" in p.stderr
    assert clean.out("build", "-q", "-t", "z:1", ctx) == first
    app = Path(tmp_path, "app.txt")
    st = app.stat()
    app.write_text("bbbb\n")
    os.utime(app, ns=(st.st_atime_ns, st.st_mtime_ns))     # same size, same mtime: the ctime differs
    p = clean("build", "-t", "z:2", ctx)
    assert "CACHED" not in p.stderr
    assert run(clean, "z:2", "cat", "/app.txt") == "bbbb\n"
    assert clean.out("build", "-q", "-t", "z:3", ctx) == clean.inspect("z:2")["Id"]   # a new name: written
    assert clean.inspect("z:3")["Id"] == clean.inspect("z:2")["Id"]
    assert not no_build_leftovers(clean)
