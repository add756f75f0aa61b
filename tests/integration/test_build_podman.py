"""An image built by `hull build` runs under podman with the same output: build, push to a
local docker-registry, `podman pull` (private storage, runc) and `podman run`, compared with
`hull run`. Also `hull save` of a built image."""

import shutil
import tarfile

import pytest

from client_helpers import CgroupParent, mounts_under, short_tmpdir
from engine_helpers import clean, engine  # noqa: F401 - fixtures
from image_helpers import registry  # noqa: F401 - fixture

DOCKERFILE = """\
FROM busybox AS gen
RUN mkdir /out && for i in 1 2 3; do echo "line $i" >> /out/data; done
FROM busybox
ENV WHO=podman
WORKDIR /srv
COPY --from=gen /out/data ./data
COPY hello.txt .
RUN echo 'svc:x:4321:4321::/srv:/bin/sh' >> /etc/passwd && rm /bin/vi
USER svc
ENTRYPOINT ["sh", "-c", "echo $WHO $(id -u) $(pwd); cat data hello.txt; ls /bin/vi 2>&1 | head -c 12; echo; echo args: $0 $@"]
CMD ["default"]
"""


def test_built_image_runs_under_podman(clean, registry, tmp_path):
    podman_exe = shutil.which("podman")
    runc = shutil.which("runc")
    if not podman_exe or not runc:
        pytest.skip("podman and runc are needed")
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "hello.txt").write_text("hello from the context\n")
    ref = f"{registry.host}/hull-built:1"
    clean("build", "-t", ref, str(tmp_path))
    expected = clean("run", "--rm", ref).stdout
    assert expected.startswith("podman 4321 /srv\nline 1\nline 2\nline 3\nhello from the context\nls: /bin/vi")
    clean("push", ref)
    saved = tmp_path / "saved.tar"
    clean("save", "-o", str(saved), ref)
    with tarfile.open(saved) as tf:
        assert "index.json" in tf.getnames() or "manifest.json" in tf.getnames()

    tmp = short_tmpdir("hull-build-podman-")
    cgroup = CgroupParent("build-podman")
    (tmp / "registries.conf").write_text("unqualified-search-registries = []\n")
    env = dict(__import__("os").environ, CONTAINERS_REGISTRIES_CONF=str(tmp / "registries.conf"))
    base = [podman_exe, "--runtime", runc, "--root", str(tmp / "root"), "--runroot", str(tmp / "runroot"),
            "--tmpdir", str(tmp / "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file",
            "--storage-driver", "overlay"]
    import subprocess

    def podman(*args, check=True):
        p = subprocess.run([*base, *args], env=env, capture_output=True, text=True, timeout=120)
        if check and p.returncode:
            raise AssertionError(f"podman {' '.join(args)} -> {p.returncode}\n{p.stderr}")
        return p
    try:
        podman("pull", "--tls-verify=false", ref)
        flags = ["--network", "none", "--cgroup-parent", cgroup.path,
                 "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
        got = podman("run", "--rm", *flags, ref).stdout
        assert got == expected
        assert podman("run", "--rm", *flags, ref, "given").stdout == clean("run", "--rm", ref, "given").stdout
    finally:
        podman("rm", "--all", "--force", "--time", "0", check=False)
        podman("system", "reset", "--force", check=False)
        left = mounts_under(tmp)
        cgroup.remove()
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, left
