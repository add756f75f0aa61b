"""The container's filesystem: mounts with options, masked and read-only paths, read-only
rootfs, devices, rlimits, sysctl; host files untouched."""

import os

from runtime_util import make_bundle, unique_id


def run_out(runtime, tmp_path, rootfs, script, mutate=None, **process):
    b = make_bundle(tmp_path, rootfs, ["sh", "-c", script], mutate, **process)
    return runtime("run", "--bundle", b, unique_id()).stdout


def test_mounts_with_options(runtime, tmp_path, busybox_rootfs):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hostfile").write_text("from host\n")

    def mutate(spec):
        spec["mounts"] += [
            {"destination": "/data", "type": "bind", "source": str(shared), "options": ["rbind", "ro", "nosuid"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"]},
        ]
    out = run_out(runtime, tmp_path, busybox_rootfs,
                  "cat /data/hostfile; echo x > /data/new && echo WROTE || echo REFUSED; "
                  "grep -E ' /(data|scratch) ' /proc/mounts; stat -c %a /scratch", mutate)
    lines = out.splitlines()
    assert lines[0] == "from host" and lines[1] == "REFUSED"
    data = next(line for line in lines if " /data " in line).split()[3].split(",")
    scratch = next(line for line in lines if " /scratch " in line).split()
    assert "ro" in data and "nosuid" in data
    assert scratch[2] == "tmpfs" and {"nosuid", "nodev", "noexec"} <= set(scratch[3].split(","))
    assert "size=1024k" in scratch[3]
    assert lines[-1] == "700"
    assert not (shared / "new").exists()


def test_masked_and_readonly_paths(runtime, tmp_path, busybox_rootfs):
    # /proc/kcore does not exist on this kernel; /proc/timer_list does and is masked too
    assert os.path.exists("/proc/timer_list") and os.listdir("/sys/firmware")
    out = run_out(runtime, tmp_path, busybox_rootfs,
                  "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
                  "echo 1 > /proc/sysrq-trigger && echo WROTE || echo REFUSED; "
                  "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo WROTE || echo REFUSED")
    assert out.split() == ["0", "0", "REFUSED", "REFUSED"]


def test_readonly_rootfs_refuses_writes(runtime, tmp_path, fresh_rootfs):
    def mutate(spec):
        spec["root"]["readonly"] = True
    out = run_out(runtime, tmp_path, fresh_rootfs,
                  "touch /newfile && echo WROTE || echo REFUSED; touch /dev/shm/ok && echo SHM", mutate)
    assert out.split() == ["REFUSED", "SHM"]
    assert not (fresh_rootfs / "newfile").exists()


def test_host_files_untouched(runtime, tmp_path, fresh_rootfs):
    before = (fresh_rootfs / "etc/passwd").read_text()
    run_out(runtime, tmp_path, fresh_rootfs, "rm -rf /proc/kcore 2>/dev/null; echo hi > /root/note")
    assert (fresh_rootfs / "etc/passwd").read_text() == before
    assert (fresh_rootfs / "root/note").read_text() == "hi\n"  # writes land in the rootfs only


def test_default_devices(runtime, tmp_path, busybox_rootfs):
    out = run_out(runtime, tmp_path, busybox_rootfs,
                  "for d in null zero full random urandom tty; do stat -c '%n %t:%T' /dev/$d; done; "
                  "readlink /dev/ptmx; readlink /dev/fd; head -c 4 /dev/zero | wc -c")
    lines = out.splitlines()
    assert "/dev/null 1:3" in lines and "/dev/zero 1:5" in lines and "/dev/tty 5:0" in lines
    assert "pts/ptmx" in lines and "/proc/self/fd" in lines and lines[-1] == "4"


def test_rlimits_applied(runtime, tmp_path, busybox_rootfs):
    out = run_out(runtime, tmp_path, busybox_rootfs, "ulimit -n; ulimit -Hn; ulimit -c",
                  rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
                           {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}])
    assert out.split() == ["512", "1000", "0"]


def test_rlimit_above_host_hard_limit_is_a_clear_error(runtime, tmp_path, busybox_rootfs):
    b = make_bundle(tmp_path, busybox_rootfs, ["true"],
                    rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1 << 30, "hard": 1 << 30}])
    r = runtime("run", "--bundle", b, unique_id(), check=False)
    assert r.returncode == 1
    assert "RLIMIT_NOFILE" in r.stderr and "Traceback" not in r.stderr


def test_sysctl_and_domainname(runtime, tmp_path, busybox_rootfs):
    def mutate(spec):
        spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"}
        spec["domainname"] = "example.test"
    out = run_out(runtime, tmp_path, busybox_rootfs,
                  "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax; cat /proc/sys/kernel/domainname", mutate)
    assert out.split() == ["1", "4096", "example.test"]


def test_user_and_cwd(runtime, tmp_path, busybox_rootfs):
    out = run_out(runtime, tmp_path, busybox_rootfs, "id -u; id -g; id -G; pwd; umask",
                  user={"uid": 1000, "gid": 1000, "additionalGids": [2000], "umask": 0o27}, cwd="/tmp")
    assert out.split() == ["1000", "1000", "1000", "2000", "/tmp", "0027"]
