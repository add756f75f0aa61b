"""statfs(2): the filesystem type of a path (what `os.statvfs` does not return).

Used by cgroups mode detection, the same test runc and crun make.
"""

import ctypes

from hull.kernel.libc import check, fsencode, libc

CGROUP_SUPER_MAGIC = 0x27E0EB
CGROUP2_SUPER_MAGIC = 0x63677270
TMPFS_MAGIC = 0x01021994

_statfs = libc.statfs
_statfs.argtypes = (ctypes.c_char_p, ctypes.c_void_p)


def fs_type(path):
    """f_type of the filesystem holding `path` (raises KernelError, e.g. ENOENT)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on x86_64
    check(_statfs(fsencode(path), buf), "statfs", path)
    return int.from_bytes(buf.raw[:8], "little", signed=True) & 0xFFFFFFFF
