"""The build context: a directory, less what .dockerignore leaves out.

    ctx = Context("/src/app")                    # reads /src/app/.dockerignore
    srcs = ctx.resolve("src/*.py", "COPY")       # [Source(rel, path)], globs expanded
    ctx.checksum(srcs)                           # sha256 over names, modes, contents, link targets

Sources are resolved inside the context only: `..` and absolute paths are cleaned against the
context root, and a symlink that points outside the context is refused, like Docker's
"forbidden path outside the build context".
"""

import fnmatch
import hashlib
import os
import posixpath
import stat

from hull.build.dockerignore import Matcher
from hull.errors import HullError


class ContextError(HullError):
    exit_code = 1


class Source:
    """A resolved source: `rel` (cleaned, relative to the context root), `path` on disk."""

    def __init__(self, rel, path):
        self.rel, self.path = rel, path

    def __repr__(self):
        return f"Source({self.rel!r})"


def _has_glob(s):
    return any(c in s for c in "*?[")


# Content checksums of regular files by path, valid while (dev, inode, size, mtime, ctime) are
# the same (BuildKit keeps such a stat-keyed cache too). It lives as long as the process: in
# the zygote, across builds. A write to a file changes its mtime and ctime, a replacement its
# inode, so a changed file is hashed again; ctime cannot be set from user space.
_SUMS = {}
_SUMS_MAX = 200_000


def file_digest(path, st):
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    hit = _SUMS.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    fh = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            fh.update(chunk)
    digest = fh.digest()
    if len(_SUMS) >= _SUMS_MAX:
        _SUMS.clear()
    _SUMS[path] = (key, digest)
    return digest


class Context:
    def __init__(self, root, ignore=None, dry=False):
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise ContextError(f"unable to prepare context: path {root!r} not found (the build context must be a directory)")
        if ignore is None:
            path = os.path.join(self.root, ".dockerignore")
            if dry and os.path.lexists(path) and not stat.S_ISREG(os.stat(path).st_mode):
                from hull.build.builder import NeedsWork
                raise NeedsWork(path)  # a FIFO would block the reader
            ignore = Matcher.from_file(path)
        self.ignore = ignore

    def _inside(self, rel, what, original):
        """The on-disk path for cleaned `rel`, refusing symlinks that leave the context."""
        full = os.path.join(self.root, rel) if rel else self.root
        real = os.path.realpath(full)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise ContextError(f"{what} failed: forbidden path outside the build context: {original} ({real})")
        return full

    def resolve(self, pattern, what="COPY"):
        """Context files for one COPY/ADD source (a path or a glob). Raises ContextError when
        the path leaves the context or nothing matches."""
        original = pattern
        raw = posixpath.normpath(pattern.replace("\\", "/"))
        if raw == ".." or raw.startswith("../"):
            raise ContextError(f"{what} failed: forbidden path outside the build context: {original}")
        rel = raw.lstrip("/")
        if rel == ".":
            rel = ""
        if not _has_glob(rel):
            full = self._inside(rel, what, original)
            if not os.path.lexists(full) or (rel and self.ignore.excluded(rel)):
                raise ContextError(f"{what} failed: file not found in build context or excluded by "
                                   f".dockerignore: stat {original}: file does not exist")
            return [Source(rel, full)]
        out = []
        self._glob(rel.split("/"), "", out)
        out = [s for s in out if not self.ignore.excluded(s.rel)]
        if not out:
            raise ContextError(f"{what} failed: no source files were specified matching {original!r} "
                               "(or all were excluded by .dockerignore)")
        for s in out:
            self._inside(s.rel, what, original)
        return out

    def _glob(self, parts, base, out):
        part, rest = parts[0], parts[1:]
        d = os.path.join(self.root, base) if base else self.root
        if not _has_glob(part):
            names = [part] if os.path.lexists(os.path.join(d, part)) else []
        else:
            try:
                names = sorted(n for n in os.listdir(d) if fnmatch.fnmatchcase(n, part))
            except OSError:
                names = []
        for n in names:
            rel = f"{base}/{n}" if base else n
            if rest:
                if os.path.isdir(os.path.join(self.root, rel)):
                    self._glob(rest, rel, out)
            else:
                out.append(Source(rel, os.path.join(self.root, rel)))

    def walk(self, src):
        """(rel-to-src, full path, lstat) for `src` and everything below it that is not
        excluded, parents first, sorted."""
        st = os.lstat(src.path)
        yield "", src.path, st
        if not stat.S_ISDIR(st.st_mode):
            return
        stack = [(src.rel, src.path, "")]
        while stack:
            rel_ctx, full, rel_src = stack.pop()
            entries = []
            for name in sorted(os.listdir(full)):
                r_ctx = f"{rel_ctx}/{name}" if rel_ctx else name
                if self.ignore and self.ignore.excluded(r_ctx):
                    p = os.path.join(full, name)
                    if os.path.isdir(p) and not os.path.islink(p) and self.ignore.may_include_below(r_ctx):
                        entries.append((name, r_ctx, True))
                    continue
                entries.append((name, r_ctx, False))
            subdirs = []
            for name, r_ctx, excluded_dir in entries:
                p = os.path.join(full, name)
                r_src = f"{rel_src}/{name}" if rel_src else name
                st = os.lstat(p)
                if not excluded_dir:
                    yield r_src, p, st
                if stat.S_ISDIR(st.st_mode):
                    subdirs.append((r_ctx, p, r_src))
            stack.extend(reversed(subdirs))

    def checksum(self, sources):
        """Content checksum of the sources for the cache key: names, types, modes, sizes,
        contents and symlink targets (not mtimes or owners, as BuildKit)."""
        h = hashlib.sha256()
        for s in sources:
            h.update(b"S" + s.rel.encode() + b"\0")
            for rel, full, st in self.walk(s):
                h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
                if stat.S_ISREG(st.st_mode):
                    h.update(file_digest(full, st))
                elif stat.S_ISLNK(st.st_mode):
                    h.update(os.readlink(full).encode())
        return "sha256:" + h.hexdigest()


def checksum_tree(path):
    """Content checksum of a directory tree or file outside the context (COPY --from)."""
    ctx = Context.__new__(Context)
    ctx.root, ctx.ignore = os.path.dirname(path) or "/", Matcher()
    return ctx.checksum([Source(os.path.basename(path), path)])
