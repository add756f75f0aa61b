"""seccomp on the real kernel: Docker's default profile with Docker's default capabilities
stops the classic container escapes with EPERM while normal work goes on, and every action
(ERRNO with a custom errno, KILL_PROCESS, KILL_THREAD, TRAP, LOG, NOTIFY) does what the spec
says. Each test applies the layers in a forked child (see tests/security_util.py)."""

import array
import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import struct
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from security_util import in_child, libc, status_of, sys_errno  # noqa: E402

from hull.errors import KernelError  # noqa: E402
from hull.kernel import capabilities, prctl, seccomp  # noqa: E402
from hull.runtime.seccomp_profile import default_seccomp  # noqa: E402

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64")

DOCKER = list(capabilities.DOCKER_DEFAULT)
DOCKER_CAPS = {"bounding": DOCKER, "effective": DOCKER, "permitted": DOCKER}

# x86_64 syscall numbers
NR = {"mount": 165, "umount2": 166, "unshare": 272, "setns": 308, "keyctl": 250, "add_key": 248,
      "bpf": 321, "ptrace": 101, "reboot": 169, "init_module": 175, "finit_module": 313,
      "delete_module": 176, "kexec_load": 246, "open_by_handle_at": 304, "clone": 56,
      "clone3": 435, "swapon": 167, "syslog": 103, "acct": 163, "settimeofday": 164,
      "perf_event_open": 298, "iopl": 172, "pivot_root": 155, "getppid": 110, "getpriority": 140}
CLONE_NEWNS, CLONE_FS, CLONE_NEWUSER = 0x00020000, 0x00000200, 0x10000000


def contain(profile_caps=DOCKER, caps=DOCKER_CAPS, cache_dir=None):
    capabilities.apply(caps, keep_uid_change=False)
    prctl.set_no_new_privs()
    seccomp.load(default_seccomp(profile_caps), cache_dir=cache_dir)


def try_attacks():
    contain()
    bad = ctypes.c_char_p(b"/nonexistent-hull-test")
    return {
        # arguments are chosen so that the call would fail harmlessly if it were allowed
        "mount": sys_errno(NR["mount"], 0, 0, 0, 0, 0),
        "umount2": sys_errno(NR["umount2"], 0, 0),
        "unshare(CLONE_NEWUSER)": sys_errno(NR["unshare"], CLONE_NEWUSER),
        "unshare(CLONE_NEWNS)": sys_errno(NR["unshare"], CLONE_NEWNS),
        "setns": sys_errno(NR["setns"], 99999, 0),
        "clone(CLONE_NEWNS|CLONE_FS)": sys_errno(NR["clone"], CLONE_NEWNS | CLONE_FS, 0, 0, 0, 0),
        "keyctl": sys_errno(NR["keyctl"], 0, (1 << 64) - 3, 0),
        "add_key": sys_errno(NR["add_key"], 0, 0, 0, 0, 0),
        "bpf": sys_errno(NR["bpf"], 0, 0, 0),
        "ptrace(ATTACH, 1)": sys_errno(NR["ptrace"], 16, 1, 0, 0),
        "reboot": sys_errno(NR["reboot"], 0, 0, 0, 0),
        "init_module": sys_errno(NR["init_module"], 0, 0, 0),
        "finit_module": sys_errno(NR["finit_module"], (1 << 64) - 1, 0, 0),
        "delete_module": sys_errno(NR["delete_module"], 0, 0),
        "kexec_load": sys_errno(NR["kexec_load"], 0, 0, 0, 0),
        "open_by_handle_at": sys_errno(NR["open_by_handle_at"], (1 << 64) - 1, 0, 0),
        "swapon": sys_errno(NR["swapon"], 0, 0),
        "syslog": sys_errno(NR["syslog"], 10, 0, 0),
        "acct": sys_errno(NR["acct"], 0),
        "settimeofday": sys_errno(NR["settimeofday"], 0, 0),
        "perf_event_open": sys_errno(NR["perf_event_open"], 0, 0, 0, 0, 0),
        "iopl": sys_errno(NR["iopl"], 3),
        "pivot_root": sys_errno(NR["pivot_root"], ctypes.cast(bad, ctypes.c_void_p).value,
                                ctypes.cast(bad, ctypes.c_void_p).value),
    }


def test_docker_default_profile_blocks_escapes():
    status, got = in_child(try_attacks)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert got == {k: "EPERM" for k in got}, {k: v for k, v in got.items() if v != "EPERM"}


def test_clone3_gets_enosys_and_new_syscalls_too():
    def child():
        contain()
        return {"clone3": sys_errno(NR["clone3"], 0, 0), "nr 600": sys_errno(600),
                "kexec_load (known, blocked)": sys_errno(NR["kexec_load"], 0, 0, 0, 0)}
    _, got = in_child(child)
    assert got == {"clone3": "ENOSYS", "nr 600": "ENOSYS", "kexec_load (known, blocked)": "EPERM"}


def normal_work(tmp):
    contain()
    out = {}
    # files
    p = os.path.join(tmp, "f")
    with open(p, "w") as f:
        f.write("hello")
    out["file"] = open(p).read()
    os.rename(p, p + "2")
    os.unlink(p + "2")
    # sockets: unix pair and TCP over loopback
    a, b = socket.socketpair()
    a.sendall(b"ping")
    out["socketpair"] = b.recv(4).decode()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    cli.sendall(b"tcp")
    out["tcp"] = conn.recv(3).decode()
    # fork + exec + wait
    pid = os.fork()
    if pid == 0:
        os.execv("/bin/busybox", ["busybox", "true"])
    _, st = os.waitpid(pid, 0)
    out["fork_exec"] = os.waitstatus_to_exitcode(st)
    # threads
    res = []
    t = threading.Thread(target=lambda: res.append(os.getpid()))
    t.start()
    t.join()
    out["thread"] = res == [os.getpid()]
    st = status_of()
    out["NoNewPrivs"] = st["NoNewPrivs"]
    out["Seccomp"] = st["Seccomp"]
    return out


def test_normal_work_still_succeeds(tmp_path):
    _, got = in_child(normal_work, str(tmp_path))
    assert got == {"file": "hello", "socketpair": "ping", "tcp": "tcp", "fork_exec": 0,
                   "thread": True, "NoNewPrivs": "1", "Seccomp": "2"}


def test_sys_admin_profile_lets_mount_reach_the_kernel():
    admin = DOCKER + ["CAP_SYS_ADMIN"]

    def child():
        contain(profile_caps=admin, caps={"bounding": admin, "effective": admin, "permitted": admin})
        return sys_errno(NR["mount"], 0, 0, 0, 0, 0)
    _, got = in_child(child)
    assert got not in ("EPERM", 0)   # the kernel rejects the NULL arguments itself


def test_cached_program_loads_and_blocks(tmp_path):
    cache = str(tmp_path / "cache")
    in_child(lambda: seccomp.compile(default_seccomp(DOCKER), cache))
    assert len(os.listdir(cache)) == 1

    def child():
        contain(cache_dir=cache)
        return sys_errno(NR["unshare"], CLONE_NEWUSER)
    _, got = in_child(child)
    assert got == "EPERM"


def test_load_without_nnp_or_sys_admin_is_a_clear_error():
    def child():
        capabilities.apply(DOCKER_CAPS, keep_uid_change=False)
        try:
            seccomp.load(default_seccomp(DOCKER))
        except KernelError as e:
            return str(e)
        return "loaded"
    _, got = in_child(child)
    assert "Permission denied" in got and "no_new_privs" in got


# --- each action --------------------------------------------------------------------------------

def one_rule(action, names=("getppid",), **extra):
    rule = {"names": list(names), "action": action}
    rule.update(extra)
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}


def test_errno_with_custom_errno():
    def child():
        prctl.set_no_new_privs()
        seccomp.load(one_rule("SCMP_ACT_ERRNO", errnoRet=errno.EXDEV))
        return sys_errno(NR["getppid"])
    _, got = in_child(child)
    assert got == "EXDEV"


def test_default_errno_ret():
    def child():
        prctl.set_no_new_privs()
        seccomp.load({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOTSUP, "syscalls": [
            {"names": sorted(seccomp_profile_allow() - {"getpriority"}), "action": "SCMP_ACT_ALLOW"}]})
        return sys_errno(NR["getpriority"], 0, 0)
    _, got = in_child(child)
    assert got == errno.errorcode[errno.ENOTSUP]


def seccomp_profile_allow():
    from hull.runtime.seccomp_profile import profile
    return set(profile()["allow"])


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_with_sigsys(action):
    def child():
        prctl.set_no_new_privs()
        seccomp.load(one_rule(action, names=["getpriority"]))
        os.getpriority(os.PRIO_PROCESS, 0)
        return "survived"
    status, got = in_child(child)
    assert got is None
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_kill_process_kills_all_threads():
    def child():
        prctl.set_no_new_privs()
        seccomp.load(one_rule("SCMP_ACT_KILL_PROCESS", names=["getpriority"]))
        t = threading.Thread(target=lambda: os.getpriority(os.PRIO_PROCESS, 0))
        t.start()
        t.join()
        threading.Event().wait(5)
        return "main thread survived"
    status, got = in_child(child)
    assert got is None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def _kmsg_tail():
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    os.lseek(fd, 0, os.SEEK_END)
    return fd


def _kmsg_read(fd):
    lines = []
    while True:
        try:
            lines.append(os.read(fd, 8192).decode(errors="replace"))
        except BlockingIOError:
            break
        except OSError as e:
            if e.errno == errno.EPIPE:   # overwritten records: keep reading
                continue
            raise
    os.close(fd)
    return lines


def test_log_allows_and_logs_to_the_kernel_log():
    kmsg = _kmsg_tail()

    def child():
        prctl.set_no_new_privs()
        seccomp.load(one_rule("SCMP_ACT_LOG", names=["getppid"]))
        return {"ret": libc.syscall(ctypes.c_long(NR["getppid"])), "pid": os.getpid()}
    _, got = in_child(child)
    assert got["ret"] == os.getpid()
    if kmsg is None:
        pytest.skip("/dev/kmsg is not readable; the call was allowed")
    logged = [l for l in _kmsg_read(kmsg) if f" pid={got['pid']} " in l and "code=0x7ffc0000" in l]
    assert logged and f"syscall={NR['getppid']}" in logged[0]


# --- NOTIFY: the listener fd goes to an agent over listenerPath ----------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101


def test_notify_delivers_listener_fd_to_agent(tmp_path):
    path = str(tmp_path / "agent.sock")
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(path)
    agent.listen(1)
    spec = one_rule("SCMP_ACT_NOTIFY", names=["getppid"])
    spec["listenerPath"] = path
    spec["listenerMetadata"] = "hull-test"

    def child():
        prctl.set_no_new_privs()
        fd = seccomp.load(spec)
        state = {"ociVersion": "1.2.0", "id": "sec-test", "status": "creating", "pid": os.getpid(),
                 "bundle": "/nonexistent"}
        seccomp.send_listener_fd(path, fd, json.dumps(state).encode(), spec["listenerMetadata"])
        os.close(fd)
        return {"getppid": libc.syscall(ctypes.c_long(NR["getppid"]))}   # blocks until the agent answers

    result = {}

    def run_agent():
        conn, _ = agent.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % 4])
        result["msg"] = json.loads(msg)
        fd = fds[0]
        req = bytearray(80)
        fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req, True)
        nid, pid, _flags, nr = struct.unpack_from("<QIIi", req)
        result["nr"], result["pid"] = nr, pid
        fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(struct.pack("<QqiI", nid, 4242, 0, 0)), True)
        os.close(fd)
        conn.close()

    t = threading.Thread(target=run_agent)
    t.start()
    try:
        _, got = in_child(child)
    finally:
        t.join(30)
        agent.close()
    msg = result["msg"]
    assert msg["fds"] == ["seccompFd"] and msg["metadata"] == "hull-test"
    assert msg["state"]["id"] == "sec-test" and msg["pid"] == result["pid"]
    assert result["nr"] == NR["getppid"]
    assert got == {"getppid": 4242}


def test_features_probe_this_kernel():
    f = seccomp.features()
    assert set(f["actions"]) == set(seccomp.ACTIONS)
    assert "SECCOMP_FILTER_FLAG_LOG" in f["supportedFlags"]
