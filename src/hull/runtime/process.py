"""The container process: user and groups, rlimits, cwd, the executable lookup, and exec."""

from hull import osfast as os

from hull.errors import HullError
from hull.kernel import signals

CLOSE_RANGE_CLOEXEC = 1 << 2


class ExecError(HullError):
    """The process cannot be executed. Wording follows runc, whose strings clients match
    (Docker maps "executable file not found"/"no such file or directory" to 127)."""


def find_executable(arg0, env, cwd="/"):
    """Resolve args[0] in the (already pivoted) container filesystem like Go's exec.LookPath."""
    if "/" in arg0:
        path = arg0 if arg0.startswith("/") else os.path.join(cwd, arg0)
        try:
            st = os.stat(path)
        except OSError as e:
            raise ExecError(f'exec: "{arg0}": stat {arg0}: {os.strerror(e.errno).lower()}') from None
        if not (st.st_mode & 0o111) or os.path.isdir(path):
            raise ExecError(f'exec: "{arg0}": permission denied')
        return path
    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for e in env:
        if e.startswith("PATH="):
            search = e[5:]
    for d in search.split(":"):
        candidate = os.path.join(d or ".", arg0)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ExecError(f'exec: "{arg0}": executable file not found in $PATH')


def apply_rlimits(rlimits):
    from hull.kernel import rlimits as limits
    for r in rlimits or ():
        limits.set(r["type"], r["soft"], r["hard"])


def set_user(user):
    """Switch to process.user. Groups first, then gid, then uid (the order the kernel needs)."""
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    groups = user.get("additionalGids") or []
    try:
        os.setgroups(groups)
    except PermissionError:
        if groups:  # setgroups is denied in some user namespaces; only fatal if groups were asked
            raise HullError(f"setgroups {groups}: operation not permitted (setgroups is denied in this user namespace)") from None
    try:
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise HullError(f"cannot set uid/gid to {uid}/{gid}: {e.strerror} "
                        "(is the id mapped in the user namespace?)") from None
    if user.get("umask") is not None:
        os.umask(user["umask"])


def chdir(cwd):
    try:
        os.chdir(cwd)
    except OSError as e:
        raise HullError(f'chdir to cwd ("{cwd}") set in config.json failed: {os.strerror(e.errno).lower()}') from None


def reset_signals():
    """Python ignores SIGPIPE/SIGXFSZ and handles SIGINT; the container must start with defaults."""
    signals.reset_all()


def take_stdio(fds):
    """Put the runtime's stdio (sync.stdio_fds: {n: fd received}) on fds 0-2. They arrive
    in ascending order on the lowest free fds, so going up from 0 never overwrites one not
    yet moved."""
    for n, fd in sorted((fds or {}).items()):
        if fd != n:
            os.dup2(fd, n)
            os.close(fd)


def close_extra_fds(keep_upto):
    """Mark every fd above `keep_upto` close-on-exec (preserve-fds/LISTEN_FDS stay open):
    one close_range(CLOSE_RANGE_CLOEXEC) (Linux 5.11), else fd by fd."""
    from hull.kernel.libc import syscall
    try:
        syscall("close_range", keep_upto + 1, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
        return
    except HullError:
        pass  # ENOSYS/EINVAL on an older kernel
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > keep_upto:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def env_map(env):
    """OCI env ("K=V" strings) -> the mapping os.execve wants; later entries win."""
    out = {}
    for e in env:
        k, _, v = e.partition("=")
        out[k] = v
    return out


def execute(path, args, env):
    reset_signals()
    try:
        os.execve(path, args, env_map(env))
    except OSError as e:
        os.write(2, f'hull-runtime: exec "{args[0]}": {os.strerror(e.errno).lower()}\n'.encode())
        os._exit(255)
