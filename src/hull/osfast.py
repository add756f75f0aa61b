"""os for hull-runtime's hot path, on the C module `posix` directly.

`import os` costs ~1.6 ms of start-up per process on this VM (its environ class brings in
_collections_abc's ABCs), and each container start runs two interpreters. The runtime's
modules (hull.runtime, hull.kernel, hull.cgroups) import this as `os` instead: posix's
functions and constants as they are, and the part of os.path, os.environ and os's helpers
they use, with os's semantics. What is used rarely (os.walk, os.path.relpath) comes from the
real os module, imported then.
"""

import sys

import posix
from posix import *  # noqa: F401,F403 - the same functions os re-exports
from posix import _exit  # noqa: F401 - not in posix.__all__

SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2

_S_IFMT, _S_IFDIR, _S_IFREG, _S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000


def fsencode(name):
    return name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name


def fsdecode(name):
    return name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name


class _Environ:
    """os.environ, or its behaviour where os is not imported: reads from posix.environ (bytes;
    the table os.environ is built from when os is imported), writes to it and to the
    process's environment, so that a later os.environ agrees. Once os is imported, its
    environ is the one."""

    @staticmethod
    def _os():
        real = sys.modules.get("os")
        return None if real is None else real.environ

    def __getitem__(self, key):
        real = self._os()
        return real[key] if real is not None else fsdecode(posix.environ[fsencode(key)])

    def get(self, key, default=None):
        real = self._os()
        if real is not None:
            return real.get(key, default)
        value = posix.environ.get(fsencode(key))
        return default if value is None else fsdecode(value)

    def __contains__(self, key):
        real = self._os()
        return key in real if real is not None else fsencode(key) in posix.environ

    def __setitem__(self, key, value):
        real = self._os()
        if real is not None:
            real[key] = value
            return
        posix.putenv(key, value)
        posix.environ[fsencode(key)] = fsencode(value)

    def pop(self, key, *default):
        real = self._os()
        if real is not None:
            return real.pop(key, *default)
        if fsencode(key) not in posix.environ:
            if default:
                return default[0]
            raise KeyError(key)
        posix.unsetenv(key)
        return fsdecode(posix.environ.pop(fsencode(key)))


environ = _Environ()


def _mode(p, follow=True):
    try:
        return (posix.stat(p) if follow else posix.lstat(p)).st_mode
    except (OSError, ValueError):
        return None


class path:
    """os.path (posixpath) for str and bytes paths."""

    @staticmethod
    def join(a, *parts):
        slash = b"/" if isinstance(a, bytes) else "/"
        out = a
        for b in parts:
            if b.startswith(slash):
                out = b
            elif not out or out.endswith(slash):
                out += b
            else:
                out += slash + b
        return out

    @staticmethod
    def dirname(p):
        slash = b"/" if isinstance(p, bytes) else "/"
        head = p[:p.rfind(slash) + 1]
        if head and head != slash * len(head):
            head = head.rstrip(slash)
        return head

    @staticmethod
    def basename(p):
        return p[p.rfind(b"/" if isinstance(p, bytes) else "/") + 1:]

    @staticmethod
    def exists(p):
        return _mode(p) is not None

    @staticmethod
    def lexists(p):
        return _mode(p, follow=False) is not None

    @staticmethod
    def isdir(p):
        m = _mode(p)
        return m is not None and m & _S_IFMT == _S_IFDIR

    @staticmethod
    def isfile(p):
        m = _mode(p)
        return m is not None and m & _S_IFMT == _S_IFREG

    @staticmethod
    def islink(p):
        m = _mode(p, follow=False)
        return m is not None and m & _S_IFMT == _S_IFLNK

    @staticmethod
    def isabs(p):
        return p.startswith(b"/" if isinstance(p, bytes) else "/")

    @staticmethod
    def normpath(p):
        """posixpath.normpath: no . or empty components, .. folded where it can be; a
        leading // is kept (POSIX leaves it to the implementation), /// and more are /."""
        b = isinstance(p, bytes)
        slash, dot, dotdot, empty = (b"/", b".", b"..", b"") if b else ("/", ".", "..", "")
        if p == empty:
            return dot
        initial = 0
        if p.startswith(slash):
            initial = 2 if p.startswith(slash * 2) and not p.startswith(slash * 3) else 1
        comps = []
        for comp in p.split(slash):
            if comp in (empty, dot):
                continue
            if comp != dotdot or (not initial and not comps) or (comps and comps[-1] == dotdot):
                comps.append(comp)
            elif comps:
                comps.pop()
        out = slash * initial + slash.join(comps)
        return out or dot

    @classmethod
    def abspath(cls, p):
        if not cls.isabs(p):
            p = cls.join(posix.getcwdb() if isinstance(p, bytes) else posix.getcwd(), p)
        return cls.normpath(p)

    @staticmethod
    def realpath(p):
        """The kernel's resolution of an existing path (an O_PATH fd's /proc link); anything
        else as posixpath.realpath resolves it."""
        try:
            fd = posix.open(p, posix.O_PATH | posix.O_CLOEXEC)
        except (OSError, ValueError):
            fd = None
        if fd is not None:
            try:
                resolved = posix.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                resolved = None
            finally:
                posix.close(fd)
            if resolved is not None and resolved.startswith("/") and not resolved.endswith(" (deleted)"):
                return fsencode(resolved) if isinstance(p, bytes) else resolved
        import posixpath
        return posixpath.realpath(p)

    @staticmethod
    def relpath(p, start=None):
        import posixpath
        return posixpath.relpath(p, start) if start is not None else posixpath.relpath(p)


def makedirs(name, mode=0o777, exist_ok=False):
    """os.makedirs."""
    head = path.dirname(path.normpath(name)) if name else name
    if head and not path.exists(head):
        try:
            makedirs(head, exist_ok=True)
        except FileExistsError:
            pass  # made meanwhile
    try:
        posix.mkdir(name, mode)
    except OSError:
        if not exist_ok or not path.isdir(name):
            raise


def walk(top, topdown=True, onerror=None, followlinks=False):
    import os
    return os.walk(top, topdown=topdown, onerror=onerror, followlinks=followlinks)
