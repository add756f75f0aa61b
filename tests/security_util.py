"""Run a function in a forked child and get its JSON-able result (or how it died).

The security layers are irreversible for the process that applies them, so each test applies
them in a fresh child: `status, result = in_child(fn)`; `status` is the waitpid() status.
"""

import ctypes
import errno
import json
import os
import traceback

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def in_child(fn, *args):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            out = {"ok": fn(*args)}
        except BaseException as e:  # report everything to the parent
            out = {"error": f"{type(e).__name__}: {e}", "tb": traceback.format_exc()}
            code = 1
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    result = json.loads(data) if data else None
    if result and "error" in result:
        raise AssertionError(f"child failed: {result['error']}\n{result['tb']}")
    return status, (result or {}).get("ok")


def sys_errno(nr, *args):
    """Raw syscall; returns 0 on success else the errno name."""
    ret = libc.syscall(ctypes.c_long(nr), *(ctypes.c_ulong(a) for a in args))
    if ret == -1:
        return errno.errorcode[ctypes.get_errno()]
    return 0


def status_of(pid="self"):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out
