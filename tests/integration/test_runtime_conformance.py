"""Regressions found with the OCI runtime-tools validation suite (docs/conformance.md)."""

import json
import os
import subprocess
import time

from runtime_util import make_bundle, unique_id


def _state_hooks(tmp_path, phases):
    log = tmp_path / "hooks.log"
    log.write_text("")
    os.chmod(tmp_path, 0o755)
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nstate=$(cat)\necho \"$1 $state\" >> {log}\n")
    hook.chmod(0o755)

    def mutate(spec):
        spec["hooks"] = {p: [{"path": str(hook), "args": ["hook.sh", p]}] for p in phases}
    return log, mutate


def test_hook_state_status_and_pid_like_hooks_stdin(runtime, tmp_path, busybox_rootfs):
    """runtime-tools hooks_stdin: prestart sees "created" (the lifecycle's status after step 2)
    and the init's pid; poststart sees "running" and that pid even when the process has already
    exited by the time the hook runs (here: `true`)."""
    log, mutate = _state_hooks(tmp_path, ("prestart", "poststart"))
    cid = unique_id()
    b = make_bundle(tmp_path, busybox_rootfs, ["true"], mutate)
    runtime("create", "--bundle", b, cid)
    try:
        pid = runtime.state(cid)["pid"]
        runtime("start", cid)
    finally:
        runtime("delete", "--force", cid)
    seen = {}
    for line in log.read_text().splitlines():
        phase, state = line.split(" ", 1)
        seen[phase] = json.loads(state)
    assert seen["prestart"]["status"] == "created" and seen["prestart"]["pid"] == pid
    assert seen["poststart"]["status"] == "running" and seen["poststart"]["pid"] == pid


def test_joined_mount_namespace_gets_root_path(runtime, tmp_path, fresh_rootfs):
    """runtime-tools linux_ns_path: a container joining a mount namespace by path still has
    root.path as its root (the host's / lacks the process's files)."""
    (fresh_rootfs / "only-in-rootfs").write_text("inside\n")
    holder = subprocess.Popen(["unshare", "--mount", "--fork", "--kill-child", "sleep", "300"])
    try:
        ns = None
        for _ in range(200):
            kids = open(f"/proc/{holder.pid}/task/{holder.pid}/children").read().split()
            if kids and os.readlink(f"/proc/{kids[0]}/ns/mnt") != os.readlink("/proc/self/ns/mnt"):
                ns = f"/proc/{kids[0]}/ns/mnt"
                break
            time.sleep(0.05)
        assert ns, "unshare never made its mount namespace"

        def mutate(spec):
            for n in spec["linux"]["namespaces"]:
                if n["type"] == "mount":
                    n["path"] = ns
        b = make_bundle(tmp_path, fresh_rootfs, ["cat", "/only-in-rootfs"], mutate)
        r = runtime("run", "--bundle", b, unique_id(), check=False)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "inside\n"
    finally:
        holder.kill()
        holder.wait()


def test_lsm_fields_are_refused_where_the_kernel_lacks_them(runtime, tmp_path, busybox_rootfs):
    """runtime-tools linux_process_apparmor_profile / linux_mount_label passed only because hull
    ignored the fields: a profile or label this kernel cannot apply is a clear error at create
    (docs/security.md); AppArmor's "unconfined" needs nothing and is accepted."""
    from hull.kernel import lsm
    lsms = lsm.active()
    cases = []
    if not lsm.apparmor_enabled(lsms):
        cases.append(("process.apparmorProfile", lambda s: s["process"].__setitem__("apparmorProfile", "acme_secure_profile")))
    if not lsm.selinux_enabled(lsms):
        cases.append(("linux.mountLabel", lambda s: s["linux"].__setitem__("mountLabel", "system_u:object_r:svirt_sandbox_file_t:s0")))
        cases.append(("process.selinuxLabel", lambda s: s["process"].__setitem__("selinuxLabel", "system_u:system_r:svirt_lxc_net_t:s0")))
    for field, mutate in cases:
        cid = unique_id()
        b = make_bundle(tmp_path, busybox_rootfs, ["true"], mutate)
        r = runtime("create", "--bundle", b, cid, check=False)
        assert r.returncode == 1 and field in r.stderr and "not enabled on this kernel" in r.stderr, r.stderr
        assert cid not in runtime.ids()
    b = make_bundle(tmp_path, busybox_rootfs, ["true"], lambda s: s["process"].__setitem__("apparmorProfile", "unconfined"))
    r = runtime("run", "--bundle", b, unique_id(), check=False)
    assert r.returncode == 0, r.stderr
