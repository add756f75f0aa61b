"""hull-runtime: an OCI runtime with runc's command line.

The CLI is a table of small command modules (runtime/commands/<name>.py, each with
`add_arguments(parser)` and `run(ctx, args) -> int`); only the invoked one is imported,
keeping start-up to stdlib + ctypes. Errors print one line to stderr (and a JSON line to
--log with --log-format json, which containerd reads) and exit 1, as runc does.
"""

import os
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

    def __init__(self, ns):
        self.root = ns.root
        self.log = ns.log
        self.log_format = ns.log_format
        self.debug = ns.debug
        self.systemd_cgroup = ns.systemd_cgroup

    def log_line(self, level, msg):
        if not self.log:
            return
        import json
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


def _global_parser():
    import argparse
    p = argparse.ArgumentParser(prog="hull-runtime", add_help=False,
                                description="hull-runtime: an OCI runtime (runc-compatible CLI)")
    p.add_argument("--root", default=os.environ.get("XDG_RUNTIME_DIR") and os.getuid() != 0
                   and os.path.join(os.environ["XDG_RUNTIME_DIR"], "hull-runtime") or "/run/hull-runtime")
    p.add_argument("--log", default="")
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="cgroupsPath is slice:prefix:name; without systemd hull maps it to cgroupfs")
    p.add_argument("--rootless", default="auto")
    p.add_argument("--criu", default="criu", help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true")
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("command", nargs="?")
    p.add_argument("rest", nargs="...")
    return p


def _usage():
    lines = ["usage: hull-runtime [global options] command [command options] [arguments...]", "",
             "commands:"]
    lines += [f"   {name:<10} {text}" for name, text in COMMANDS.items()]
    lines += ["", "global options: --root DIR --log FILE --log-format text|json --debug --systemd-cgroup"]
    return "\n".join(lines)


def split_trailing(parser, argv):
    """For `exec ID CMD...` and `ps ID -- ARGS`: options end at the container id, as with runc
    (urfave/cli), so the command's own flags (`sh -c ...`) are not taken as ours."""
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            return argv[:i], argv[i + 1:]
        if tok.startswith("-") and tok != "-":
            action = parser._option_string_actions.get(tok.split("=", 1)[0])
            if action is not None and action.nargs != 0 and "=" not in tok:
                i += 1
            i += 1
            continue
        rest = argv[i + 1:]
        return argv[:i + 1], rest[1:] if rest[:1] == ["--"] else rest
    return argv, []


def version_text():
    from hull import OCI_VERSION, __version__
    return f"hull-runtime version {__version__}\nspec: {OCI_VERSION}\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ns = _global_parser().parse_args(argv)
    if ns.version:
        sys.stdout.write(version_text())
        return 0
    name = ALIASES.get(ns.command, ns.command)
    if ns.help or not name:
        print(_usage())
        return 0
    ctx = Context(ns)
    if name not in COMMANDS:
        msg = f"No help topic for '{ns.command}'"
        sys.stderr.write(f"hull-runtime: {msg}\n")
        ctx.log_line("error", msg)
        return 1
    import argparse
    import importlib
    mod = importlib.import_module(f"hull.runtime.commands.{name}")
    parser = argparse.ArgumentParser(prog=f"hull-runtime {name}", description=COMMANDS[name])
    mod.add_arguments(parser)
    rest, trailing = ns.rest, None
    if getattr(mod, "TRAILING_ARGS", False):
        rest, trailing = split_trailing(parser, rest)
    try:
        args = parser.parse_args(rest)
    except SystemExit as e:
        return 0 if e.code == 0 else 1
    if trailing is not None:
        args.command = trailing
    from hull.errors import HullError
    try:
        return mod.run(ctx, args) or 0
    except HullError as e:
        msg = str(e)
        sys.stderr.write(f"hull-runtime: {msg}\n")
        ctx.log_line("error", msg)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
