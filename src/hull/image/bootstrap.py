"""Base images made on this machine, no registry needed.

`busybox`: one layer built in memory from the host's busybox-static: /bin/busybox, a symlink per
applet (`busybox --list-full`), /etc/passwd and /etc/group, the usual mount points. Every
timestamp is 0, owners root, entries sorted, gzip without a name or time: the same
busybox-static gives the same digest on every run and every machine with the same zlib.

`debian:<suite>`: debootstrap --variant=minbase from the apt mirror the host is configured
with (or `mirror`), then one layer of the resulting tree, apt caches and lists removed.
"""

import io
import os
import platform
import re
import shutil
import stat
import subprocess
import tarfile
import time

from hull.errors import HullError, UsageError
from hull.image import layers as layers_mod
from hull.image.store import default_store

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
EPOCH = "1970-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
          "s390x": "s390x", "riscv64": "riscv64"}


def host_arch():
    m = platform.machine()
    return GOARCH.get(m, m)


def find_busybox():
    for p in BUSYBOX_CANDIDATES:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise HullError("busybox is not installed on this host; install it with "
                    "`apt-get install busybox-static` and run `hull image bootstrap busybox` again")


def _busybox_version(exe):
    out = subprocess.run([exe], capture_output=True, text=True).stdout + ""
    m = re.search(r"BusyBox (v\S+)(?: \(([^)]*)\))?", out)
    return (m.group(1), m.group(2) or "") if m else ("unknown", "")


def busybox_layer_tar(exe, out):
    applets = subprocess.run([exe, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    dirs = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555, "root": 0o700,
            "run": 0o755, "sbin": 0o755, "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755,
            "usr/sbin": 0o755, "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755}
    for a in applets:
        d = os.path.dirname(a)
        while d:
            dirs.setdefault(d, 0o755)
            d = os.path.dirname(d)
    files = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                      b"nobody:x:65534:65534:nobody:/home:/bin/false\n",
        "etc/group": b"root:x:0:\ndaemon:x:1:\nwheel:x:10:root\nnogroup:x:65534:\n",
        "etc/shadow": b"root:*:10933:0:99999:7:::\nnobody:*:10933:0:99999:7:::\n",
    }
    entries = {d: ("dir", m) for d, m in dirs.items()}
    for f in files:
        entries[f] = ("file", 0o640 if f == "etc/shadow" else 0o644)
    entries["bin/busybox"] = ("busybox", 0o755)
    for a in applets:
        if a != "bin/busybox" and a not in entries:
            entries[a] = ("link", 0o777)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(entries):
            kind, mode = entries[name]
            ti = tarfile.TarInfo(name)
            ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = mode, 0, 0, 0, "", ""
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind == "file":
                ti.size = len(files[name])
                tf.addfile(ti, io.BytesIO(files[name]))
            elif kind == "busybox":
                ti.size = os.stat(exe).st_size
                with open(exe, "rb") as f:
                    tf.addfile(ti, f)
            else:
                ti.type = tarfile.SYMTYPE
                ti.linkname = "/bin/busybox"
                tf.addfile(ti)


def busybox(store=None, name="busybox:latest"):
    """Build (or rebuild: the digest is the same) the busybox image. Returns the Image."""
    store = store or default_store()
    exe = find_busybox()
    version, pkg = _busybox_version(exe)
    with store.lease():
        desc, diff_id = layers_mod.write_layer(store, lambda out: busybox_layer_tar(exe, out))
        config = {
            "created": EPOCH,
            "architecture": host_arch(),
            "os": "linux",
            "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": EPOCH,
                         "created_by": f"hull image bootstrap busybox (BusyBox {version} {pkg})".strip()}],
        }
        return store.write_image(config, [desc], name)


# -- debian ------------------------------------------------------------------------------

def apt_mirror():
    """The first Debian mirror the host's apt is configured with."""
    candidates = []
    src = "/etc/apt/sources.list.d"
    if os.path.isdir(src):
        for f in sorted(os.listdir(src)):
            if f.endswith(".sources"):
                text = open(os.path.join(src, f)).read()
                for block in text.split("\n\n"):
                    if re.search(r"^Types:.*\bdeb\b", block, re.M) and re.search(r"^Suites:.*\b(bookworm|trixie|bullseye|sid|stable)\b(?!-)", block, re.M):
                        m = re.search(r"^URIs:\s*(\S+)", block, re.M)
                        if m:
                            candidates.append(m.group(1))
    if os.path.exists("/etc/apt/sources.list"):
        for line in open("/etc/apt/sources.list"):
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[2]:
                url = next((p for p in parts[1:] if "://" in p), None)
                if url:
                    candidates.append(url)
    return candidates[0] if candidates else "http://deb.debian.org/debian"


def debian(store=None, suite="bookworm", mirror=None, name=None, progress=None, variant="minbase"):
    """debootstrap a Debian image. `progress(kind, text)` gets ("step", line) for each
    debootstrap I:-line and ("package", name) per package retrieved/unpacked."""
    store = store or default_store()
    exe = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if os.path.exists("/usr/sbin/debootstrap") else None)
    if not exe:
        raise HullError("debootstrap is not installed; install it with `apt-get install debootstrap`")
    if os.geteuid() != 0:
        raise HullError("bootstrapping a Debian image needs root (debootstrap chroots and makes device nodes)")
    if not re.match(r"^[a-z][a-z0-9-]*$", suite):
        raise UsageError(f"invalid Debian suite {suite!r}")
    mirror = mirror or apt_mirror()
    name = name or f"debian:{suite}"
    store.init()
    work = store.root / "tmp" / f"bootstrap-{suite}-{os.getpid()}-{time.monotonic_ns()}"
    rootfs = work / "rootfs"
    rootfs.mkdir(parents=True)
    try:
        cmd = [exe, f"--variant={variant}", suite, str(rootfs), mirror]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail = []
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-15:]
            if progress:
                m = re.match(r"I: (Retrieving|Validating|Extracting|Unpacking|Configuring) (\S+)", line)
                if m:
                    progress("package", f"{m.group(1).lower()} {m.group(2)}")
                elif line.startswith("I: "):
                    progress("step", line[3:])
        if proc.wait() != 0:
            raise HullError(f"debootstrap {suite} from {mirror} failed (exit {proc.returncode}):\n  "
                            + "\n  ".join(tail))
        for d in ("var/cache/apt/archives", "var/lib/apt/lists", "var/cache/debconf", "var/log"):
            p = rootfs / d
            if p.is_dir():
                for child in p.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        if child.name != "partial":
                            shutil.rmtree(child, ignore_errors=True)
                    elif child.name != "lock":
                        child.unlink(missing_ok=True)
        for junk in ("dev",):  # the runtime provides /dev; keep the empty dir
            p = rootfs / junk
            if p.is_dir():
                for child in p.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
        if progress:
            progress("step", "Writing the layer")
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
        with store.lease():
            desc, diff_id = layers_mod.write_layer(store, lambda out: layers_mod.tar_directory(rootfs, out, mtime=epoch))
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
            config = {
                "created": created,
                "architecture": host_arch(),
                "os": "linux",
                "config": {"Env": [PATH_ENV], "Cmd": ["bash"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created": created,
                             "created_by": f"hull image bootstrap debian:{suite} (debootstrap --variant={variant} {mirror})"}],
            }
            return store.write_image(config, [desc], name)
    finally:
        _rmtree_root(work)


def _rmtree_root(path):
    """rm -rf that also copes with read-only dirs (debootstrap leaves some)."""
    def onerror(func, p, exc):
        try:
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            func(p)
        except OSError:
            pass
    shutil.rmtree(path, onerror=onerror)


def bootstrap(what, store=None, progress=None, mirror=None):
    """`hull image bootstrap WHAT`: busybox[:tag] or debian[:suite]."""
    base, _, tag = what.partition(":")
    if base == "busybox":
        return busybox(store, name=f"busybox:{tag or 'latest'}")
    if base == "debian":
        return debian(store, suite=tag or "bookworm", mirror=mirror, progress=progress)
    raise UsageError(f"cannot bootstrap {what!r}: known images are busybox and debian[:SUITE]")
