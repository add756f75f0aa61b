"""Helpers for the cgroups integration tests: unique cgroup names and forked children that wait
to be placed in a cgroup before they run, and report back through a pipe."""

import json
import os
import secrets
import signal
import traceback


def unique_path():
    return f"/hull/test-{secrets.token_hex(4)}"


class Child:
    """A forked process running `fn()` once `go()` is called; fn's return value (JSON-able)
    comes back through `result()`. Always `reap()` (kills if still running)."""

    def __init__(self, fn):
        go_r, go_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                os.close(go_w)
                os.close(res_r)
                os.read(go_r, 1)
                out = fn()
                os.write(res_w, json.dumps(out).encode())
            except BaseException:
                try:
                    os.write(res_w, json.dumps({"error": traceback.format_exc()}).encode())
                except BaseException:
                    pass
                code = 99
            finally:
                os._exit(code)
        os.close(go_r)
        os.close(res_w)
        self.pid = pid
        self._go = go_w
        self._res = res_r
        self.status = None

    def go(self):
        os.write(self._go, b"x")
        os.close(self._go)
        self._go = None

    def result(self):
        """Block until the child wrote its result and closed the pipe (or died)."""
        chunks = []
        while True:
            b = os.read(self._res, 65536)
            if not b:
                break
            chunks.append(b)
        data = b"".join(chunks)
        return json.loads(data) if data else None

    def wait(self):
        if self.status is None:
            _, self.status = os.waitpid(self.pid, 0)
        return self.status

    def reap(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()
        for fd in (self._go, self._res):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._go = self._res = None


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def managed(m):
    """Generator body for a `cg` fixture: yields manager `m` (with a list of children to reap)
    and afterwards kills, reaps and removes everything, asserting the cgroup is gone."""
    import signal
    m.children = []
    yield m
    try:
        if m.exists():
            m.kill_all(signal.SIGKILL)
    finally:
        for c in m.children:
            c.reap()
        m.destroy()
    assert not m.exists()


def start(cg, fn, resources=None):
    """Fork `fn` as a Child, put it in `cg`, apply `resources`, then let it run."""
    c = Child(fn)
    cg.children.append(c)
    cg.apply(c.pid)
    if resources is not None:
        cg.set(resources)
    c.go()
    return c
