"""A spare network namespace for a container's stage 1, made beside its other work."""

from hull import osfast as os

from hull.kernel import namespaces, netdev


class SpareNetns:
    """A new network namespace with lo up, made by a helper thread while stage 1 imports: the
    kernel's part (~1 ms here) then costs stage 1 nothing (started before the rest of the
    container side is imported: runtime/prefork.py). Most containers ask for one; stage
    1 joins it only if this one does, and only on the early path (a user namespace must own
    its network namespace). Unused, it goes with its fd."""

    def __init__(self):
        import _thread
        self.fd = None
        self._done = _thread.allocate_lock()
        self._done.acquire()
        try:
            _thread.start_new_thread(self._make, ())
        except RuntimeError:
            self._done.release()

    def _make(self):
        try:  # nothing to import here (imported with this module): no GIL waits
            namespaces.unshare(namespaces.CLONE_NEWNET)  # this thread's own, not the process's
            netdev.link_up("lo")
            self.fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:  # noqa: BLE001 - best effort: stage 1 then unshares it itself
            pass
        finally:
            self._done.release()

    def wait(self):
        """The namespace's fd (or None), once the thread has ended."""
        self._done.acquire()
        for _ in range(10000):  # ended in the kernel too (a few yields at most)
            if len(os.listdir("/proc/self/task")) == 1:
                break
            os.sched_yield()
        return self.fd
