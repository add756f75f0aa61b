"""Helpers for tests that drive hull-runtime through its CLI, the way clients do."""

import copy
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent / "hull-runtime"


def base_config(rootfs, args, **process):
    """A config.json like `hull-runtime spec` writes, non-interactive, for `rootfs`."""
    from hull.runtime.spec_default import default_spec
    spec = default_spec(terminal=False)
    spec["root"] = {"path": str(rootfs), "readonly": False}
    spec["process"]["args"] = list(args)
    spec["process"].update(process)
    spec["hostname"] = "hulltest"
    return spec


class Runtime:
    """hull-runtime with its own --root; removes every container it made at teardown."""

    def __init__(self, root):
        self.root = str(root)

    def cmd(self, *args):
        return [str(BIN), "--root", self.root, *map(str, args)]

    def __call__(self, *args, check=True, timeout=60, **kw):
        """Run hull-runtime. Output goes through files, not pipes: a detached or created
        container keeps the stdio it was given (as with runc), so a pipe would never reach EOF."""
        import tempfile
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            rc = subprocess.run(self.cmd(*args), timeout=timeout, stdout=out, stderr=err,
                                stdin=kw.pop("stdin", subprocess.DEVNULL), **kw).returncode
            out.seek(0)
            err.seek(0)
            r = subprocess.CompletedProcess(args, rc, out.read().decode(), err.read().decode())
        if check and r.returncode != 0:
            raise AssertionError(f"hull-runtime {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
        return r

    def state(self, cid):
        return json.loads(self("state", cid).stdout)

    def ids(self):
        r = self("list", "--format", "json")
        return [s["id"] for s in json.loads(r.stdout)]

    def cleanup(self):
        for cid in self.ids():
            self("delete", "--force", cid, check=False)


def make_bundle(tmp_path, rootfs, args, mutate=None, name=None, **process):
    bundle = Path(tmp_path) / (name or f"bundle-{uuid.uuid4().hex[:8]}")
    bundle.mkdir()
    spec = base_config(rootfs, args, **process)
    if mutate:
        mutate(spec)
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def unique_id(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def without_ns(spec, *types):
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] not in types]


def add_ns(spec, ns_type, path=None):
    without_ns(spec, ns_type)
    spec["linux"]["namespaces"].append({"type": ns_type, **({"path": path} if path else {})})


def userns(spec, host_base=100000, size=65536):
    add_ns(spec, "user")
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_base, "size": size}]
    spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_base, "size": size}]


def deep(d):
    return copy.deepcopy(d)


def console_listener(path, result):
    """A client's --console-socket: accept one connection and keep the pty master it sends
    (result["master"]). Returns the accepting thread."""
    import socket
    import threading
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    srv.settimeout(20)

    def accept():
        try:
            conn, _ = srv.accept()
            _msg, fds, _f, _a = socket.recv_fds(conn, 1024, 1)
            result["master"] = fds[0]
            conn.close()
        finally:
            srv.close()
    t = threading.Thread(target=accept)
    t.start()
    return t


def read_until(fd, needle, timeout=15):
    """Read a pty master until `needle` shows up (or the timeout); returns what was read."""
    import time
    buf = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(fd, False)
    while needle not in buf and time.monotonic() < deadline:
        try:
            buf += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.02)
        except OSError:
            break
    return buf
