"""Namespaces, seen from inside the container: PID 1, hostname, /proc/self/ns/*, joins,
user namespace ownership, time namespace offsets."""

import os

import pytest
from runtime_util import add_ns, make_bundle, unique_id, userns, without_ns

NS_PROC = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
           "cgroup": "cgroup", "user": "user", "time": "time"}
ALL = list(NS_PROC)


def _ns_inodes_script():
    return "for n in " + " ".join(NS_PROC.values()) + "; do echo $n $(stat -L -c %i /proc/self/ns/$n); done"


def _host_ns():
    return {n: os.stat(f"/proc/self/ns/{n}").st_ino for n in NS_PROC.values()}


def _parse(out):
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if len(line.split()) == 2}


def test_pid1_and_hostname(runtime, tmp_path, busybox_rootfs):
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "echo pid=$$; hostname"])
    r = runtime("run", "--bundle", b, unique_id())
    assert r.stdout.split() == ["pid=1", "hulltest"]


@pytest.mark.parametrize("requested", [
    ["pid", "network", "ipc", "uts", "mount", "cgroup"],   # runc spec's default set
    ALL,                                                     # all eight
    ["mount"],                                               # only what rootfs needs
])
def test_ns_links_differ_exactly_for_requested(runtime, tmp_path, userns_rootfs, requested):
    def mutate(spec):
        without_ns(spec, *ALL)
        for t in requested:
            add_ns(spec, t)
        if "user" in requested:
            userns(spec)
        if "uts" not in requested:
            spec.pop("hostname", None)
        if "network" not in requested:
            # sysfs needs its own netns (HOST-NOTES); bind the host's instead
            spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "sysfs"]
    b = make_bundle(tmp_path, userns_rootfs, ["sh", "-c", _ns_inodes_script()], mutate)
    inside = _parse(runtime("run", "--bundle", b, unique_id()).stdout)
    host = _host_ns()
    for t, name in NS_PROC.items():
        if t in requested:
            assert inside[name] != host[name], f"{t} namespace should be new"
        else:
            assert inside[name] == host[name], f"{t} namespace should be the host's"


def test_join_namespace_by_path_is_shared(runtime, tmp_path, busybox_rootfs):
    first = unique_id("a")
    b1 = make_bundle(tmp_path, busybox_rootfs, ["sleep", "60"], name="first")
    runtime("run", "--detach", "--bundle", b1, first)
    pid = runtime.state(first)["pid"]

    def mutate(spec):
        add_ns(spec, "uts", f"/proc/{pid}/ns/uts")
        add_ns(spec, "network", f"/proc/{pid}/ns/net")
        add_ns(spec, "ipc", f"/proc/{pid}/ns/ipc")
        spec["hostname"] = ""
    b2 = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "hostname; " + _ns_inodes_script()], mutate,
                     name="second")
    out = runtime("run", "--bundle", b2, unique_id("b")).stdout
    first_ns = {n: os.stat(f"/proc/{pid}/ns/{n}").st_ino for n in ("uts", "net", "ipc", "pid")}
    runtime("delete", "--force", first)
    assert out.splitlines()[0] == "hulltest"  # the first container's hostname, seen through uts
    inside = _parse(out)
    for name in ("uts", "net", "ipc"):
        assert inside[name] == first_ns[name], f"{name} should be the first container's"
    assert inside["pid"] != first_ns["pid"]


def test_user_namespace_root_is_mapped_uid_on_host(runtime, tmp_path, userns_rootfs):
    fresh_rootfs = userns_rootfs
    b = make_bundle(tmp_path, fresh_rootfs, ["sh", "-c", "id -u; id -g; touch /tmp/made-inside; "
                                              "echo x > /etc/passwd && echo WROTE || echo REFUSED"],
                    lambda s: userns(s, 100000))
    r = runtime("run", "--bundle", b, unique_id())
    lines = r.stdout.split()
    assert lines[:2] == ["0", "0"]
    st = os.stat(fresh_rootfs / "tmp/made-inside")
    assert (st.st_uid, st.st_gid) == (100000, 100000)
    # /etc/passwd belongs to host root, which is unmapped: root inside cannot write it
    assert lines[2] == "REFUSED"
    assert (fresh_rootfs / "etc/passwd").read_text().startswith("root:")


def test_time_namespace_offsets_visible(runtime, tmp_path, busybox_rootfs):
    def mutate(spec):
        add_ns(spec, "time")
        spec["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 400, "nanosecs": 0},
                                        "monotonic": {"secs": 86400 * 400, "nanosecs": 0}}
    b = make_bundle(tmp_path, busybox_rootfs, ["cat", "/proc/uptime"], mutate)
    uptime = float(runtime("run", "--bundle", b, unique_id()).stdout.split()[0])
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert uptime - host > 86400 * 399


def test_cgroup_namespace_root(runtime, tmp_path, busybox_rootfs):
    b = make_bundle(tmp_path, busybox_rootfs, ["cat", "/proc/self/cgroup"])
    out = runtime("run", "--bundle", b, unique_id()).stdout
    # in its own cgroup namespace the container sees its cgroup as "/"
    for line in out.splitlines():
        assert line.rsplit(":", 1)[1] == "/", line


def test_without_mount_namespace_nothing_is_mounted_on_the_host(runtime, tmp_path, busybox_rootfs):
    """No mount namespace: the container shares the host's mount table, so hull mounts nothing
    (runc would mount /proc, /dev ... into the host's table); it only chroots into the rootfs."""
    def mutate(spec):
        without_ns(spec, "mount")
    with open("/proc/self/mountinfo") as f:
        before = f.read().count("\n")
    b = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "echo $$; cat /etc/hostname; ls /proc | wc -l"], mutate)
    out = runtime("run", "--bundle", b, unique_id()).stdout.split()
    with open("/proc/self/mountinfo") as f:
        after = f.read().count("\n")
    assert out[:3] == ["1", "busybox", "0"]  # PID 1, the rootfs's /etc, and no /proc mounted
    assert after == before


@pytest.mark.parametrize("with_userns", [False, True])
def test_a_new_network_namespace_has_lo_up_and_belongs_to_the_container(runtime, tmp_path, userns_rootfs,
                                                                        with_userns):
    """Without a user namespace stage 1 joins a network namespace a helper thread made while
    it imported; with one, the network namespace is made after it, so that it owns it (root
    inside may then configure it). Either way lo is up, as with runc."""
    script = ("cat /sys/class/net/lo/flags; stat -L -c %i /proc/self/ns/net; "
              "ip link set lo mtu 1500 && echo configured")

    def mutate(spec):
        caps = spec["process"]["capabilities"]
        for s in ("bounding", "effective", "permitted"):
            caps[s] = [*caps.get(s, []), "CAP_NET_ADMIN"]
        if with_userns:
            add_ns(spec, "user")
            userns(spec)
    b = make_bundle(tmp_path, userns_rootfs, ["sh", "-c", script], mutate)
    flags, ino, configured = runtime("run", "--bundle", b, unique_id()).stdout.split()
    assert int(flags, 16) & 0x1  # IFF_UP
    assert int(ino) != os.stat("/proc/self/ns/net").st_ino
    assert configured == "configured"
