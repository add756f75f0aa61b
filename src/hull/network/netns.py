"""A named network namespace per container: an nsfs bind mount that keeps it alive.

    path = create(cid)      # $HULL_ROOT/netns/<cid> (tests) or /run/hull/netns/<cid>
    remove(path)            # unmount + unlink; idempotent

The namespace is made before the container (CNI plugins configure it, then the runtime
joins it through `linux.namespaces[{type: network, path}]`), as `ip netns add` does: this
thread unshares CLONE_NEWNET, brings `lo` up in the new namespace, bind-mounts
/proc/thread-self/ns/net onto the file and returns to its original namespace.
"""

import os

from hull.errors import KernelError


def netns_dir():
    if os.environ.get("HULL_NETNS_DIR"):
        return os.environ["HULL_NETNS_DIR"]
    if os.environ.get("HULL_ROOT"):
        return os.path.join(os.environ["HULL_ROOT"], "netns")
    return "/run/hull/netns"


def path_for(cid):
    return os.path.join(netns_dir(), cid)


def is_mounted(path):
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == path for line in f)
    except OSError:
        return False


def create(cid):
    from hull.kernel import mounts, namespaces, netdev
    path = path_for(cid)
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    if is_mounted(path):
        return path
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
    os.close(fd)
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        namespaces.unshare(namespaces.CLONE_NEWNET)
        try:
            netdev.link_up("lo")
            mounts.mount("/proc/thread-self/ns/net", path, None, mounts.MS_BIND)
        finally:
            namespaces.setns(orig, namespaces.CLONE_NEWNET, "/proc/thread-self/ns/net (back to the host's)")
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    finally:
        os.close(orig)
    return path


def remove(path):
    from hull.kernel import mounts
    if not path:
        return
    while is_mounted(path):
        try:
            mounts.umount(path, mounts.MNT_DETACH)
        except KernelError:
            break
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def run_in(path, fn):
    """Call fn() with this thread inside the network namespace at `path` (then back)."""
    from hull.kernel import namespaces
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        namespaces.join(path, "network")
        try:
            return fn()
        finally:
            namespaces.setns(orig, namespaces.CLONE_NEWNET, "host network namespace")
    finally:
        os.close(orig)
