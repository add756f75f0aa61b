"""Landlock on the real kernel (ABI 7 here): filesystem, TCP port and signal-scope rules from
the org.hull.landlock annotation, applied in forked children; and the whole init order
(landlock → capabilities → setuid → no_new_privs → seccomp) in one child."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from security_util import in_child, status_of, sys_errno  # noqa: E402

from hull.errors import HullError, KernelError  # noqa: E402
from hull.kernel import capabilities, landlock, prctl, seccomp  # noqa: E402
from hull.runtime.seccomp_profile import default_seccomp  # noqa: E402

pytestmark = pytest.mark.skipif(landlock.abi() < 4, reason="needs Landlock ABI >= 4")


def errname(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]


def write(path):
    with open(path, "w") as f:
        f.write("x")


def test_writes_outside_allowed_paths_get_eacces(tmp_path):
    allowed = tmp_path / "allowed"
    other = tmp_path / "other"
    allowed.mkdir()
    other.mkdir()
    (other / "existing").write_text("keep")
    rules = json.dumps({"read": ["/"], "write": [str(allowed), "/dev/null"]})

    def child():
        landlock.apply(rules)      # the annotation's JSON text, as the init passes it
        return {
            "write allowed": errname(lambda: write(allowed / "f")),
            "mkdir allowed": errname(lambda: os.mkdir(allowed / "d")),
            "write outside": errname(lambda: write(other / "f")),
            "overwrite outside": errname(lambda: write(other / "existing")),
            "unlink outside": errname(lambda: os.unlink(other / "existing")),
            "mkdir outside": errname(lambda: os.mkdir(other / "d")),
            "rename into allowed": errname(lambda: os.rename(other / "existing", allowed / "moved")),
            "read outside": errname(lambda: open(other / "existing").read()),
            "/dev/null": errname(lambda: write("/dev/null")),
        }
    _, got = in_child(child)
    assert got == {"write allowed": "ok", "mkdir allowed": "ok", "write outside": "EACCES",
                   "overwrite outside": "EACCES", "unlink outside": "EACCES", "mkdir outside": "EACCES",
                   "rename into allowed": "EACCES", "read outside": "ok", "/dev/null": "ok"}
    assert (other / "existing").read_text() == "keep"


def test_exec_needs_an_exec_rule(tmp_path):
    def child(rules):
        landlock.apply(rules)
        return errname(lambda: subprocess.run(["/bin/busybox", "true"], check=True))
    _, denied = in_child(child, {"read": ["/"]})
    _, allowed = in_child(child, {"read": ["/"], "exec": ["/bin", "/usr/bin"]})
    assert denied == "EACCES" and allowed == "ok"


def test_tcp_bind_and_connect_ports():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    open_port = srv.getsockname()[1]
    try:
        def child():
            landlock.apply({"bind_tcp": [0], "connect_tcp": [open_port]})

            def bind(port):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))

            def connect(port):
                with socket.create_connection(("127.0.0.1", port)):
                    pass
            return {"bind 18081": errname(lambda: bind(18081)),
                    "bind ephemeral": errname(lambda: bind(0)),
                    "connect allowed": errname(lambda: connect(open_port)),
                    "connect other": errname(lambda: connect(open_port + 1 if open_port < 65535 else 1)),
                    "udp untouched": errname(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("127.0.0.1", 0))),
                    "files untouched": errname(lambda: open("/dev/null", "w").close())}
        _, got = in_child(child)
    finally:
        srv.close()
    assert got == {"bind 18081": "EACCES", "bind ephemeral": "ok", "connect allowed": "ok",
                   "connect other": "EACCES", "udp untouched": "ok", "files untouched": "ok"}


@pytest.mark.skipif(landlock.abi() < 6, reason="signal scoping needs Landlock ABI 6")
def test_signal_scope_keeps_signals_inside():
    parent = os.getpid()

    def child():
        landlock.apply({"scope": ["signal"]})
        inside = os.fork()
        if inside == 0:
            signal.pause()
            os._exit(0)
        os.kill(inside, signal.SIGKILL)
        os.waitpid(inside, 0)
        return {"outside": errname(lambda: os.kill(parent, 0)), "inside": "ok"}
    _, got = in_child(child)
    assert got == {"outside": "EPERM", "inside": "ok"}


def test_missing_path_is_a_clear_error():
    def child():
        try:
            landlock.apply({"read": ["/nonexistent-hull-path"]})
        except KernelError as e:
            return str(e)
    _, got = in_child(child)
    assert "/nonexistent-hull-path" in got and "must exist in the container" in got


def test_full_init_order(tmp_path):
    """What the container init does, in its order, with Docker's defaults and a user."""
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 1000, 1000)
    docker = list(capabilities.DOCKER_DEFAULT)
    caps = {"bounding": docker, "effective": docker, "permitted": docker}

    def child():
        landlock.apply({"read": ["/"], "exec": ["/bin"], "write": [str(data), "/dev/null"]})
        capabilities.apply(caps)
        os.setgroups([])
        os.setresgid(1000, 1000, 1000)
        os.setresuid(1000, 1000, 1000)
        capabilities.after_setuid(caps)
        prctl.set_no_new_privs()
        seccomp.load(default_seccomp(docker))
        st = status_of()
        return {
            "write data": errname(lambda: write(data / "f")),
            "write tmp": errname(lambda: write(str(tmp_path / "g"))),
            "unshare": sys_errno(272, 0x10000000),
            "exec": subprocess.run(["/bin/busybox", "id", "-u"], capture_output=True, text=True).stdout.strip(),
            "NoNewPrivs": st["NoNewPrivs"], "Seccomp": st["Seccomp"],
            "CapEff": st["CapEff"], "Landlock": landlock.abi() > 0,
        }
    _, got = in_child(child)
    assert got == {"write data": "ok", "write tmp": "EACCES", "unshare": "EPERM", "exec": "1000",
                   "NoNewPrivs": "1", "Seccomp": "2", "CapEff": "00000000a80425fb", "Landlock": True}


@pytest.mark.skipif(landlock.abi() < 6, reason="needs Landlock ABI 6")
def test_best_effort_on_a_new_kernel_drops_nothing():
    def child():
        p = landlock.apply({"read": ["/"], "bind_tcp": [], "scope": ["signal"], "best_effort": True})
        return p["dropped"]
    _, got = in_child(child)
    assert got == []


def test_strict_mode_error_message_names_the_abi():
    with pytest.raises(HullError, match="needs ABI 4, this kernel has ABI 3"):
        landlock.plan({"connect_tcp": [443]}, 3)


def test_allow_fds_lets_the_runtime_reopen_its_exec_fifo(tmp_path):
    """The init reopens the exec fifo through /proc/self/fd/N after Landlock is applied;
    the fifo is outside the container's tree, so the runtime passes its fd."""
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo)

    def child(allow):
        fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        landlock.apply({"read": ["/"]}, allow_fds=[fd] if allow else ())
        return errname(lambda: os.close(os.open(f"/proc/self/fd/{fd}", os.O_RDWR)))
    _, without = in_child(child, False)
    _, with_fd = in_child(child, True)
    assert without == "EACCES" and with_fd == "ok"
