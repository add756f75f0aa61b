"""Signal names and numbers, from the C module `_signal` (signal.py builds enums at import,
which costs start-up on the runtime's hot path)."""

import _signal

from hull.errors import HullError

SIGKILL = _signal.SIGKILL
SIGTERM = _signal.SIGTERM
NUMBERS = {n: getattr(_signal, n) for n in dir(_signal)
           if n.startswith("SIG") and not n.startswith("SIG_") and n not in ("SIGRTMIN", "SIGRTMAX")}
# what a blocked default disposition is reset from before exec
RESET_ON_EXEC = tuple(NUMBERS[n] for n in ("SIGPIPE", "SIGXFSZ", "SIGINT", "SIGTERM", "SIGCHLD",
                                           "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"))
FORWARDED = tuple(NUMBERS[n] for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1",
                                       "SIGUSR2", "SIGWINCH", "SIGCONT"))


def parse(value):
    """"KILL", "SIGKILL", "9", "RTMIN+2" -> number; runc's error for anything else."""
    if value is None or value == "":
        return SIGTERM
    v = str(value).upper()
    if v.isdigit():
        n = int(v)
        if 0 < n <= _signal.SIGRTMAX:
            return n
        raise HullError(f'unknown signal "{value}"')  # runc's wording (Go %q)
    name = v if v.startswith("SIG") else "SIG" + v
    if name in NUMBERS:
        return NUMBERS[name]
    for base_name, base in (("SIGRTMIN", _signal.SIGRTMIN), ("SIGRTMAX", _signal.SIGRTMAX)):
        if name.startswith(base_name):
            off = name[len(base_name):]
            try:
                n = base + int(off) if off else base
            except ValueError:
                break
            if _signal.SIGRTMIN <= n <= _signal.SIGRTMAX:
                return n
    raise HullError(f'unknown signal "{value}"')  # runc's wording (Go %q)


def handle(signum, handler):
    return _signal.signal(signum, handler)


def reset_all():
    """Default dispositions and an empty mask, as a freshly exec'd program expects."""
    for s in RESET_ON_EXEC:
        _signal.signal(s, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
