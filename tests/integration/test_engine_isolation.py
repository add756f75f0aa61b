"""hull run's limits and security flags, checked from inside the container and against the
kernel's own files; exec, inspect (Namespaces, Cgroup), ns, stats, top."""

import json
import os
import time

from engine_helpers import cgroup_file, clean, engine, wait_for  # noqa: F401


def test_memory_oom_is_recorded(clean):
    p = clean("run", "--name", "oom", "--memory", "50m", "busybox", "tail", "/dev/zero", check=False)
    assert p.returncode == 137
    st = clean.inspect("oom")["State"]
    assert st["OOMKilled"] is True and st["ExitCode"] == 137
    assert clean.inspect("oom")["HostConfig"]["Memory"] == 50 * 1024 * 1024


def test_pids_limit_contains_a_fork_bomb(clean):
    cid = clean.out("run", "-d", "--pids-limit", "20", "busybox", "sleep", "1000")
    p = clean("exec", cid, "sh", "-c", "for i in $(seq 100); do sleep 30 </dev/null >/dev/null 2>&1 & done", check=False)
    assert p.returncode != 0 and "fork" in p.stderr  # the bomb ran out of pids
    assert clean.inspect(cid)["State"]["Running"]
    assert cgroup_file(cid, "pids", "pids.max") == "20"
    assert int(cgroup_file(cid, "pids", "pids.current")) <= 20
    assert int(cgroup_file(cid, "pids", "pids.events").split()[-1]) > 0  # forks were refused


def test_default_pids_limit_and_cgroup_path(clean):
    cid = clean.out("run", "-d", "busybox", "sleep", "100")
    assert cgroup_file(cid, "pids", "pids.max") == "2048"


def test_read_only_with_tmpfs(clean):
    p = clean("run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c",
              "touch /x 2>/dev/null && echo rootfs-writable; touch /scratch/y && echo tmpfs-ok")
    assert p.stdout.split() == ["tmpfs-ok"]


def test_named_volume_and_bind_persist(clean, tmp_path):
    clean("run", "--rm", "-v", "vol1:/data", "busybox", "sh", "-c", "echo persisted > /data/f")
    assert clean.out("run", "--rm", "-v", "vol1:/data:ro", "busybox", "cat", "/data/f") == "persisted"
    assert os.path.isfile(os.path.join(clean.root, "volumes/vol1/_data/f"))
    (tmp_path / "in").write_text("from host\n")
    out = clean.out("run", "--rm", "-v", f"{tmp_path}:/host", "busybox", "sh", "-c", "cat /host/in; echo back > /host/out")
    assert out == "from host" and (tmp_path / "out").read_text() == "back\n"
    p = clean("run", "--rm", "-v", f"{tmp_path}:/host:ro", "busybox", "touch", "/host/x", check=False)
    assert p.returncode == 1


def test_env_workdir_user_entrypoint_hostname(clean):
    out = clean.out("run", "--rm", "-e", "A=1", "-w", "/work", "-u", "nobody", "--hostname", "hh",
                    "busybox", "sh", "-c", 'echo $A $(pwd) $(id -u):$(id -g) $(hostname) $HOSTNAME')
    assert out == "1 /work 65534:65534 hh hh"
    assert clean.out("run", "--rm", "-u", "1000:2000", "busybox", "id", "-u") == "1000"
    assert clean.out("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b") == "a b"
    assert clean.out("run", "--rm", "busybox", "sh", "-c", "echo $PATH") .startswith("/usr/local/sbin")


def _caps(clean, *flags):
    out = clean.out("run", "--rm", *flags, "busybox", "grep", "-E", "CapEff|NoNewPrivs|Seccomp:", "/proc/self/status")
    return dict(line.split(":\t") for line in out.splitlines())


def test_caps_and_security_opts(clean):
    d = _caps(clean)
    assert d["CapEff"] == "00000000a80425fb" and d["Seccomp"] == "2" and d["NoNewPrivs"] == "0"
    assert _caps(clean, "--cap-drop", "ALL")["CapEff"] == "0000000000000000"
    d = _caps(clean, "--cap-add", "SYS_ADMIN", "--cap-drop", "NET_RAW", "--security-opt", "no-new-privileges")
    assert int(d["CapEff"], 16) == 0xa80425fb | (1 << 21) & ~(1 << 13) or int(d["CapEff"], 16) == (0xa80425fb | 1 << 21) & ~(1 << 13)
    assert d["NoNewPrivs"] == "1"
    assert _caps(clean, "--security-opt", "seccomp=unconfined")["Seccomp"] == "0"


def test_seccomp_file(clean, tmp_path):
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    (tmp_path / "p.json").write_text(json.dumps(prof))
    p = clean("run", "--rm", "--security-opt", f"seccomp={tmp_path / 'p.json'}", "busybox", "mkdir", "/tmp/x", check=False)
    assert p.returncode == 1 and "Operation not permitted" in p.stderr


def test_privileged_clamped_with_a_message(clean):
    p = clean("run", "--rm", "--privileged", "busybox", "grep", "CapEff", "/proc/self/status")
    eff = int(p.stdout.split()[1], 16)
    assert eff & (1 << 21) and not eff & (1 << 24)  # SYS_ADMIN yes, SYS_RESOURCE: host lacks it
    assert "cannot grant CAP_SYS_RESOURCE" in p.stderr


def test_privileged_host_devices_no_seccomp_no_masked_paths(clean):
    import stat
    script = ("ls /dev | tr '\\n' ' '; echo; grep Seccomp: /proc/self/status; losetup -f; "
              "awk '{print $5, $6}' /proc/self/mountinfo")
    devs_line, seccomp, loop, *mounts = clean.out("run", "--rm", "--privileged", "busybox", "sh", "-c", script).splitlines()
    devs = set(devs_line.split())
    host = {n for n in os.listdir("/dev") if n != "console" and
            (stat.S_ISCHR(os.lstat(f"/dev/{n}").st_mode) or stat.S_ISBLK(os.lstat(f"/dev/{n}").st_mode))}
    assert host <= devs, sorted(host - devs)
    assert {"kmsg", "loop-control"} & host <= devs
    assert seccomp.split() == ["Seccomp:", "0"]
    assert loop.startswith("/dev/loop")  # the device cgroup lets it use /dev/loop-control
    points = dict(m.split() for m in mounts)
    from hull.runtime.spec_default import MASKED_PATHS, READONLY_PATHS
    assert not set(points) & (set(MASKED_PATHS) | set(READONLY_PATHS)), set(points) & set(MASKED_PATHS)
    assert points["/sys"].split(",")[0] == "rw"
    # without --privileged: the runtime's default nodes only, seccomp filtering, masked paths
    devs_line, seccomp, loop, *mounts = clean.out("run", "--rm", "busybox", "sh", "-c", script.replace("losetup -f", "echo -")).splitlines()
    assert "loop-control" not in devs_line.split() and "kmsg" not in devs_line.split()
    assert seccomp.split() == ["Seccomp:", "2"]
    points = dict(m.split() for m in mounts)
    assert "/proc/keys" in points and points["/sys"].split(",")[0] == "ro"


def test_exec_inspect_ns_stats_top(clean):
    cid = clean.out("run", "-d", "--name", "box", "--hostname", "boxhost", "--memory", "64m",
                    "--pids-limit", "100", "busybox", "sleep", "1000")
    out = clean.out("exec", "box", "sh", "-c", "echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '")
    lines = out.splitlines()
    assert lines[1] == "boxhost" and lines[2].strip() == "sleep 1000" and int(lines[0]) > 1
    assert clean.out("exec", "-u", "nobody", "-w", "/tmp", "-e", "X=y", "box", "sh", "-c", "echo $(id -u) $(pwd) $X") == "65534 /tmp y"
    assert clean("exec", "box", "nosuch", check=False).returncode == 127
    assert clean("exec", "box", "sh", "-c", "exit 5", check=False).returncode == 5
    clean("exec", "-d", "box", "sleep", "300")
    pid = int(clean.out("inspect", "--format", "{{.State.Pid}}", "box"))
    doc = clean.inspect(cid)
    assert doc["State"]["Pid"] == pid and doc["Name"] == "/box"
    for n in doc["Namespaces"]:
        assert n["Inode"] == os.stat(f"/proc/{pid}/ns/{n['Type']}").st_ino
        assert n["Host"] == (n["Inode"] == os.stat(f"/proc/self/ns/{n['Type']}").st_ino)
    isolated = {n["Type"] for n in doc["Namespaces"] if not n["Host"]}
    assert {"pid", "mnt", "uts", "ipc", "net", "cgroup"} <= isolated
    lim = doc["Cgroup"]["Limits"]
    assert lim["memory"] == 64 * 1024 * 1024 == int(cgroup_file(cid, "memory", "memory.limit_in_bytes"))
    assert lim["pids"] == 100 and doc["Cgroup"]["Path"] == f"/hull/{cid}"
    table = clean.out("ns", "box").splitlines()
    assert table[0].split()[:4] == ["CONTAINER", "PID", "TYPE", "INODE"]
    rows = {r.split()[2]: r.split() for r in table[1:]}
    assert int(rows["pid"][3]) == os.stat(f"/proc/{pid}/ns/pid").st_ino
    assert int(rows["pid"][4]) == os.stat("/proc/self/ns/pid").st_ino and rows["pid"][5] == "yes"
    # exec'd processes that just exited may still be counted until they are reaped: settle first
    deadline = time.monotonic() + 10
    while int(cgroup_file(cid, "pids", "pids.current")) != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    s = json.loads(clean.out("stats", "--no-stream", "--format", "json", "box"))
    assert s["Raw"]["memory_limit"] == 64 * 1024 * 1024
    assert s["Raw"]["pids"] == int(cgroup_file(cid, "pids", "pids.current")) == 2
    assert s["Name"] == "box" and s["MemUsage"].endswith("/ 64MiB")
    table = clean.out("stats", "--no-stream").splitlines()
    assert table[0].startswith("CONTAINER ID") and "box" in table[1]
    top = clean.out("top", "box")
    assert "sleep 1000" in top and "sleep 300" in top


def test_network_modes(clean):
    host_net = os.stat("/proc/self/ns/net").st_ino
    out = clean.out("run", "--rm", "--network", "host", "busybox", "stat", "-L", "-c", "%i", "/proc/self/ns/net")
    assert int(out) == host_net
    clean("run", "-d", "--name", "netowner", "busybox", "sleep", "100")
    pid = clean.inspect("netowner")["State"]["Pid"]
    out = clean.out("run", "--rm", "--network", "container:netowner", "busybox", "stat", "-L", "-c", "%i", "/proc/self/ns/net")
    assert int(out) == os.stat(f"/proc/{pid}/ns/net").st_ino
    out = clean.out("run", "--rm", "busybox", "ls", "/sys/class/net")
    assert out.split() == ["lo"]
