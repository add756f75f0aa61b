"""hull-runtime's modules from one file: start-up without importlib's per-module file work.

Each hull-runtime process imports ~25 small modules, and importlib spends ~75 µs on each on
this VM before the module's own code runs, half of it finding, opening, checking and reading
its .pyc (~13 syscalls). The bundle holds the compiled code of the runtime's packages
(hull.runtime, hull.kernel, hull.cgroups and the hull modules they use) in one file: an index,
read at start-up, then each module's code, read when imported (one pread). Its finder, first on sys.meta_path, serves a module from it if the module's source still
has the size and mtime it was compiled from (one stat), and leaves everything else to the
usual import system. bin/hull-runtime installs it.

The file sits next to the package's bytecode and is written as Python writes .pyc files: by
`python -m hull.runtime.bundle` (scripts/test), and by hull-runtime itself, after its command
is done, when it found the file missing or a module in it edited.
"""

import marshal
from hull import osfast as os
import sys

_PACKAGES = ("hull.runtime", "hull.kernel", "hull.cgroups")
_MODULES = ("hull", "hull.errors", "hull.jsonfast", "hull.osfast")
_FORMAT = 3


def path():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__",
                        f"bundle.{sys.implementation.cache_tag}.bin")


class Finder:
    """A meta path finder and loader for the modules of a bundle. `index`: module name ->
    (source path, its st_mtime_ns, st_size, is a package, offset and length of the
    marshalled code after `base` in the file open as `fd`)."""

    def __init__(self, index, fd, base, bundle_path):
        self.index = index
        self.fd = fd
        self.base = base
        self.bundle_path = bundle_path
        self.stale = False  # a module's source changed since the bundle was written

    def find_spec(self, fullname, path=None, target=None):
        entry = self.index.get(fullname)
        if entry is None:
            return None
        origin, mtime_ns, size, is_package = entry[:4]
        try:
            st = os.stat(origin)
        except OSError:
            st = None
        if st is None or st.st_mtime_ns != mtime_ns or st.st_size != size:
            self.stale = True
            return None  # the usual import system compiles it
        spec = sys.modules["_frozen_importlib"].ModuleSpec(fullname, self, origin=origin,
                                                            is_package=is_package)
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(origin)]
        spec.has_location = True
        spec.cached = self.bundle_path  # where the code came from (and importlib need not work out a .pyc path)
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        offset, length = self.index[module.__spec__.name][4:]
        exec(marshal.loads(os.pread(self.fd, length, self.base + offset)), module.__dict__)


_installed = None


def install(bundle_path=None):
    """Put the bundle's finder first on sys.meta_path; returns it, or None without a usable
    bundle file (refresh_if_stale then writes one)."""
    global _installed
    _installed = False
    bundle_path = bundle_path or path()
    try:
        fd = os.open(bundle_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        head = os.read(fd, 1 << 14)
        size = int.from_bytes(head[:4], "little")
        if len(head) < 4 + size:
            head += os.pread(fd, 4 + size - len(head), len(head))
        fmt, tag, index = marshal.loads(head[4:4 + size])
        if (fmt, tag) != (_FORMAT, sys.implementation.cache_tag):
            raise ValueError("another bundle format or Python")
    except (OSError, ValueError, EOFError, TypeError):
        os.close(fd)
        return None
    # the fd stays open (close-on-exec): modules are read from it when imported
    _installed = Finder(index, fd, 4 + size, bundle_path)
    sys.meta_path.insert(0, _installed)
    return _installed


def refresh_if_stale():
    """Write the bundle again if install() found none, or a module in it edited. Best effort,
    and only where Python would write bytecode too."""
    if _installed is None or (_installed and not _installed.stale) or sys.dont_write_bytecode:
        return
    cache_dir = os.path.dirname(path())
    if os.access(cache_dir if os.path.isdir(cache_dir) else os.path.dirname(cache_dir), os.W_OK):
        try:
            build()
        except (OSError, SyntaxError, ValueError):
            pass


def modules(base):
    """(module name, source path, is a package) for every module a bundle of the hull package
    under `base` holds."""
    for name in _MODULES:
        rel = name.replace(".", "/")
        init = os.path.join(base, rel, "__init__.py")
        if os.path.exists(init):
            yield name, init, True
        else:
            yield name, os.path.join(base, rel + ".py"), False
    for package in _PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(base, package.replace(".", "/"))):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            dotted = os.path.relpath(dirpath, base).replace("/", ".")
            for fn in sorted(f for f in filenames if f.endswith(".py")):
                if fn == "__init__.py":
                    yield dotted, os.path.join(dirpath, fn), True
                else:
                    yield f"{dotted}.{fn[:-3]}", os.path.join(dirpath, fn), False


def write(bundle_path, entries):
    """Write a bundle of `entries` ((name, source path, is a package)), from the sources'
    .pyc files where they match, compiled otherwise; atomically (runtimes run concurrently)."""
    import importlib.util
    index, chunks, offset = {}, [], 0
    for name, source, is_package in entries:
        st = os.stat(source)
        code = _code_bytes(source, st, importlib.util.cache_from_source(source))
        index[name] = (source, st.st_mtime_ns, st.st_size, is_package, offset, len(code))
        chunks.append(code)
        offset += len(code)
    header = marshal.dumps((_FORMAT, sys.implementation.cache_tag, index))
    os.makedirs(os.path.dirname(bundle_path), exist_ok=True)
    tmp = f"{bundle_path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(len(header).to_bytes(4, "little"))
        f.write(header)
        f.writelines(chunks)
    os.replace(tmp, bundle_path)
    return bundle_path


def build():
    """The bundle of this installation's runtime modules."""
    base = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return write(path(), modules(base))


def _code_bytes(source, st, pyc):
    """The marshalled code of `source`: from its timestamp-checked .pyc when that matches,
    else compiled now."""
    try:
        with open(pyc, "rb") as f:
            data = f.read()
        if (data[:4] == sys.modules["_frozen_importlib_external"].MAGIC_NUMBER
                and int.from_bytes(data[4:8], "little") == 0
                and int.from_bytes(data[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
                and int.from_bytes(data[12:16], "little") == st.st_size & 0xFFFFFFFF):
            return data[16:]
    except OSError:
        pass
    with open(source, "rb") as f:
        return marshal.dumps(compile(f.read(), source, "exec", dont_inherit=True))


if __name__ == "__main__":
    print(build())
