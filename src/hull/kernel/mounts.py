"""Mounts: mount/umount2/pivot_root, the OCI mount-option table, and safe paths in a rootfs."""

from hull import osfast as os
import _stat as stat  # stat.py only re-exports the C module

from hull.errors import KernelError
from hull.kernel.libc import check, fsencode, libc, syscall

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

# option -> (clear?, flag). clear=True means the option removes the flag.
FLAGS = {
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID), "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV), "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC), "exec": (True, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS), "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC),
    "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK), "nomand": (True, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME), "atime": (True, MS_NOATIME),
    "nodiratime": (False, MS_NODIRATIME), "diratime": (True, MS_NODIRATIME),
    "relatime": (False, MS_RELATIME), "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME), "nostrictatime": (True, MS_STRICTATIME),
    "lazytime": (False, MS_LAZYTIME), "nolazytime": (True, MS_LAZYTIME),
    "nosymfollow": (False, MS_NOSYMFOLLOW), "symfollow": (True, MS_NOSYMFOLLOW),
    "bind": (False, MS_BIND), "rbind": (False, MS_BIND | MS_REC),
}

PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}

# Options hull handles itself rather than passing to the kernel.
EXTENSIONS = {"tmpcopyup", "idmap", "ridmap"}


class MountOptions:
    """OCI mount options split into flags, propagation flags, extensions and fs data."""

    __slots__ = ("flags", "propagation", "extensions", "data")

    def __init__(self, flags=0, propagation=(), extensions=(), data=""):
        self.flags, self.propagation, self.extensions, self.data = flags, propagation, extensions, data

    @property
    def is_bind(self):
        return bool(self.flags & MS_BIND)


def parse_options(options):
    flags, prop, ext, data = 0, [], [], []
    for opt in options or ():
        if opt in FLAGS:
            clear, f = FLAGS[opt]
            flags = (flags & ~f) if clear else (flags | f)
        elif opt in PROPAGATION:
            prop.append(PROPAGATION[opt])
        elif opt in EXTENSIONS:
            ext.append(opt)
        else:
            data.append(opt)
    return MountOptions(flags, tuple(prop), tuple(ext), ",".join(data))


def mount(source, target, fstype, flags=0, data=None):
    ret = libc.mount(fsencode(source) if source else None, fsencode(target),
                     fsencode(fstype) if fstype else None, flags,
                     fsencode(data) if data else None)
    check(ret, f"mount {fstype or ''}".rstrip(), f"{source or 'none'} on {target}")


def umount(target, flags=0):
    check(libc.umount2(fsencode(target), flags), "umount2", target)


def pivot_root(new_root, put_old):
    syscall("pivot_root", new_root, put_old, path=new_root)


def set_propagation(target, flags):
    mount(None, target, None, flags)


def secure_join(root, unsafe):
    """Resolve `unsafe` inside `root` as if root were "/": symlinks and `..` never leave root.
    (The idea of filepath-securejoin; resolution is done component by component, one lstat
    each, none once a component is missing: nothing below it exists to be a link.)"""
    root = os.path.abspath(root)
    base = "" if root == "/" else root
    parts = [p for p in reversed(unsafe.split("/")) if p and p != "."]
    resolved = []
    links = 0
    missing = False
    while parts:
        part = parts.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            missing = False  # back up to what exists: what follows may be a link again
            continue
        candidate = f"{base}/{'/'.join(resolved)}/{part}" if resolved else f"{base}/{part}"
        if not missing:
            try:
                is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
            except OSError:
                is_link, missing = False, True
            if is_link:
                links += 1
                if links > 255:
                    raise KernelError(40, "resolve", unsafe)  # ELOOP
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                parts += [p for p in reversed(target.split("/")) if p and p != "."]
                continue
        resolved.append(part)
    return f"{base}/{'/'.join(resolved)}" if resolved else root


def make_mountpoint(path, is_dir=True, mode=0o755):
    """Create the destination of a mount: a directory, or an empty file for a file bind."""
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), mode=mode, exist_ok=True)
    if is_dir:
        os.mkdir(path, mode)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
