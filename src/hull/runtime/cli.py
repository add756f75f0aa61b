"""hull-runtime: an OCI runtime with runc's command line.

The CLI is a table of small command modules (runtime/commands/<name>.py, each with
`add_arguments(parser)` and `run(ctx, args) -> int`); only the invoked one is imported,
keeping start-up to stdlib + ctypes. Errors print one line to stderr (and a JSON line to
--log with --log-format json, which containerd reads) and exit 1, as runc does.
"""

from hull import osfast as os
import sys

COMMANDS = {
    "create": "Create a container",
    "start": "Execute the user-defined process in a created container",
    "run": "Create and run a container",
    "state": "Output the state of a container",
    "kill": "Send a signal to the container's init process",
    "delete": "Delete any resources held by the container",
    "list": "List containers started by hull-runtime with the given root",
    "ps": "Display the processes running inside a container",
    "exec": "Execute new process inside the container",
    "spec": "Create a new specification file",
    "features": "Show the enabled features",
    "update": "Update container resource constraints",
    "pause": "Pause all processes within the container",
    "resume": "Resume all processes that have been previously paused",
    "events": "Display container events such as OOM notifications, cpu, memory, and IO usage statistics",
}
ALIASES = {"rm": "delete", "ls": "list"}


class Context:
    """Global flags shared by every command."""

    def __init__(self, ns, started=None):
        self.root = ns.root
        self.log = ns.log
        self.log_format = ns.log_format
        self.debug = ns.debug
        self.systemd_cgroup = ns.systemd_cgroup
        self._started = started if started is not None else {}

    def stage1(self):
        """create/run: the container's stage 1, started at start-up (runtime/prefork.py), or
        now if the scan of the flags could not tell the command."""
        if self._started.get("stage1") is None:
            from hull.runtime import prefork
            self._started["stage1"] = prefork.fork()
        stage1 = self._started["stage1"]
        if self.debug:
            how = "started beside the runtime" if stage1.beside else "forked"
            self.log_line("debug", f"stage 1: pid {stage1.pid}, {how}")
        return stage1

    def take_stage1(self):
        """Hand stage 1 over (to lifecycle, which kills it on its own errors)."""
        return self._started.pop("stage1", None)

    def log_line(self, level, msg):
        if not self.log:
            return
        from hull import jsonfast as json
        import time
        t = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
        if self.log_format == "json":
            line = json.dumps({"level": level, "msg": msg, "time": stamp})
        else:
            line = f'time="{stamp}" level={level} msg="{msg}"'
        try:
            with open(self.log, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass


GLOBAL_FLAGS = (
    (("--root",), {"default": None}),
    (("--log",), {"default": ""}),
    (("--log-format",), {"default": "text", "choices": ("text", "json")}),
    (("--debug",), {"action": "store_true"}),
    (("--systemd-cgroup",), {"action": "store_true"}),
    (("--rootless",), {"default": "auto"}),
    (("--criu",), {"default": "criu"}),
    (("-v", "--version"), {"action": "store_true"}),
)


_VALUE_FLAGS = frozenset(n for names, kw in GLOBAL_FLAGS if kw.get("action") != "store_true" for n in names)


def _command_name(argv):
    """The command, as far as a scan of the global flags can tell without the flag parser
    (which _parse_globals loads, and which has the last word)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in _VALUE_FLAGS else 1
    return argv[i] if i < len(argv) else None


def _start_beside(argv):
    """create/run/exec: start first what runs beside the rest of our start-up: the cgroup
    warm-up, and for create/run the container's stage 1 (runtime/prefork.py)."""
    started = {}
    command = _command_name(argv)
    # what bin/hull-runtime started beside us (pids; ours alone: not for hooks or the container)
    beside = os.environ.pop("HULL_RUNTIME_STAGE1", "")
    warm_move = os.environ.pop("HULL_RUNTIME_WARM", "")
    if warm_move.isdigit():
        started["warm_move"] = int(warm_move)
    if command in ("create", "run", "exec"):
        from hull import cgroups
        if command == "exec" or cgroups.detect_mode() == cgroups.UNIFIED:
            # A move of ours follows within ~10-20 ms (exec's process; the init on a
            # cgroup2-only host). On v1 and hybrid hosts create's init moves itself: no grace
            # period to wait for, and none of ours in flight to hold cgroup_mutex over the
            # cgroup's mkdirs (lifecycle._create_in).
            cgroups.warm_migrations()
    if command in ("create", "run"):
        import gc
        # No collections in this process: it creates a container, then only waits (cyclic
        # garbage is negligible). Only here: the engine's long-lived processes collect.
        gc.disable()
        from hull.runtime import prefork
        started["stage1"] = prefork.fork(beside)
    elif beside:  # the script's scan of the flags disagreed with ours
        from hull.runtime import prefork
        prefork.discard_beside(beside)
    return started


def _parse_globals(argv):
    """Global flags come before the command (as with runc); returns (namespace, command, rest)."""
    from hull.runtime.flags import FlagParser
    p = FlagParser("hull-runtime")
    for names, kw in GLOBAL_FLAGS:
        p.add_argument(*names, **kw)
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-h", "--help"):
        opt = p.option(argv[i])
        i += 2 if opt is not None and opt.takes_value and "=" not in argv[i] else 1
    ns = p.parse_args(argv[:i])
    if ns.root is None:
        ns.root = "/run/hull-runtime"
        if os.getuid() != 0 and os.environ.get("XDG_RUNTIME_DIR"):
            ns.root = os.path.join(os.environ["XDG_RUNTIME_DIR"], "hull-runtime")
    ns.help = i < len(argv) and argv[i] in ("-h", "--help")
    command = argv[i] if i < len(argv) and not ns.help else None
    return ns, command, argv[i + 1:]


def _usage():
    lines = ["usage: hull-runtime [global options] command [command options] [arguments...]", "",
             "commands:"]
    lines += [f"   {name:<10} {text}" for name, text in COMMANDS.items()]
    lines += ["", "global options: --root DIR --log FILE --log-format text|json --debug --systemd-cgroup"]
    return "\n".join(lines)


def version_text():
    from hull import OCI_VERSION, __version__
    return f"hull-runtime version {__version__}\nspec: {OCI_VERSION}\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    started = _start_beside(argv)
    try:
        return _main(argv, started)
    finally:
        if started.get("stage1") is not None:  # not taken over (a usage error, --help)
            started["stage1"].kill()
        if started.get("warm_move"):  # bin/hull-runtime's, long done unless we failed fast
            from hull.runtime import prefork
            prefork.reap(started["warm_move"])


def _main(argv, started):
    from hull.errors import HullError
    try:
        ns, command, rest = _parse_globals(argv)
    except HullError as e:
        sys.stderr.write(f"hull-runtime: {e}\n")
        return 1
    if ns.version:
        sys.stdout.write(version_text())
        return 0
    name = ALIASES.get(command, command)
    if ns.help or not name:
        print(_usage())
        return 0
    ctx = Context(ns, started)
    if name not in COMMANDS:
        msg = f"No help topic for '{command}'"
        sys.stderr.write(f"hull-runtime: {msg}\n")
        ctx.log_line("error", msg)
        return 3  # runc (urfave/cli) exits 3 for an unknown command
    from hull.runtime.flags import FlagParser, split_trailing
    try:
        __import__(f"hull.runtime.commands.{name}")
        mod = sys.modules[f"hull.runtime.commands.{name}"]
        parser = FlagParser(f"hull-runtime {name}", COMMANDS[name])
        mod.add_arguments(parser)
        trailing = None
        if getattr(mod, "TRAILING_ARGS", False):
            rest, trailing = split_trailing(parser, rest)
        try:
            args = parser.parse_args(rest)
        except SystemExit as e:
            return 0 if e.code == 0 else 1
        if trailing is not None:
            args.command = trailing
        return mod.run(ctx, args) or 0
    except HullError as e:
        from hull.errors import UsageError
        msg, code = str(e), 1
        if not isinstance(e, UsageError):
            # runc's `exec` says "exec failed: ..." and exits 255 for any error of its own
            msg, code = getattr(mod, "ERROR_PREFIX", "") + msg, getattr(mod, "ERROR_EXIT", 1)
        sys.stderr.write(f"hull-runtime: {msg}\n")
        ctx.log_line("error", msg)
        return code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
