"""Name resolution between containers on user-defined networks, by aardvark-dns (Debian).

One aardvark-dns per HULL_ROOT serves every DNS-enabled network: its config directory
$HULL_ROOT/networks/aardvark holds one file per network (and nothing else: aardvark parses
every file there but its pid file) — the gateway address on the first
line (aardvark listens there, port 53), then `<cid> <ipv4> <ipv6> <name,alias,...>` per
container. `add` writes the container's line and starts aardvark-dns (first container) or
sends it SIGHUP (it re-reads the files); `remove` drops the line and SIGHUPs it, and when no
container is left on any network it is stopped with SIGTERM — by the pid it wrote, after
checking that pid is still that aardvark-dns (its command line names our directory).
Queries for other names are forwarded to the host's resolvers.
"""

import os
import signal
import subprocess
import time

from hull.errors import HullError
from hull.network import lock

BINARIES = ("/usr/lib/podman/aardvark-dns", "/usr/libexec/podman/aardvark-dns", "/usr/bin/aardvark-dns")
PORT = 53


def _dir():
    from hull.network.config import networks_dir
    return os.path.join(networks_dir(), "aardvark")


def _lock_path():
    return os.path.join(os.path.dirname(_dir()), ".aardvark.lock")  # aardvark reads every file in its dir


def binary():
    for b in BINARIES:
        if os.access(b, os.X_OK):
            return b
    raise HullError("aardvark-dns not found: install Debian's aardvark-dns (apt-get install aardvark-dns) "
                    "for name resolution on user-defined networks")


def _pid():
    try:
        with open(os.path.join(_dir(), "aardvark.pid")) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
        if _dir().encode() not in cmd:
            return 0
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        if data[data.rindex(b")") + 2:data.rindex(b")") + 3] == b"Z":
            return 0
        return pid
    except (OSError, ValueError):
        return 0


def _entries(network):
    try:
        with open(os.path.join(_dir(), network)) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None, []
    return (lines[0] if lines else None), [ln for ln in lines[1:] if ln.strip()]


def _write(network, header, entries):
    p = os.path.join(_dir(), network)
    if not entries:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
        return
    tmp = os.path.join(os.path.dirname(_dir()), f".aardvark-{network}.tmp")  # not in the dir aardvark reads
    with open(tmp, "w") as f:
        f.write(header + "\n" + "".join(e + "\n" for e in entries))
    os.rename(tmp, p)


def _any_entries():
    try:
        return any(n != "aardvark.pid" for n in os.listdir(_dir()))
    except FileNotFoundError:
        return False


def add(network, gateway, cid, ip, names):
    os.makedirs(_dir(), mode=0o700, exist_ok=True)
    with lock.held(_lock_path()):
        _, entries = _entries(network)
        entries = [e for e in entries if e.split(" ", 1)[0] != cid]
        entries.append(f"{cid} {ip}  {','.join(dict.fromkeys(n.lower() for n in names if n))}")
        _write(network, gateway, entries)
        pid = _pid()
        if pid:
            os.kill(pid, signal.SIGHUP)
            return
        p = subprocess.run([binary(), "--config", _dir(), "-p", str(PORT), "run"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30, cwd="/")
        if p.returncode != 0:
            raise HullError(f"aardvark-dns did not start: {p.stderr.decode(errors='replace').strip()}")
        for _ in range(100):  # it daemonizes; the pid file appears when it serves
            if _pid():
                return
            time.sleep(0.01)


def remove(network, cid):
    d = _dir()
    if not os.path.isdir(d):
        return
    with lock.held(_lock_path()):
        header, entries = _entries(network)
        if header is None:
            return
        _write(network, header, [e for e in entries if e.split(" ", 1)[0] != cid])
        pid = _pid()
        if not pid:
            return
        if _any_entries():
            os.kill(pid, signal.SIGHUP)
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            if not _pid():
                break
            time.sleep(0.01)
        try:
            os.unlink(os.path.join(d, "aardvark.pid"))
        except FileNotFoundError:
            pass
