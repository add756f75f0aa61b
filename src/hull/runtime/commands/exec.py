"""hull-runtime exec [options] ID [COMMAND ARGS...] | --process process.json ID"""

import copy

from hull import jsonfast as json
from hull.errors import HullError, SpecError
from hull.runtime import lifecycle
from hull.runtime.state import Container


TRAILING_ARGS = True  # COMMAND... after the id (see cli.split_trailing)
ERROR_PREFIX = "exec failed: "  # runc's wording and status for errors of exec itself
ERROR_EXIT = 255


def add_arguments(p):
    p.add_argument("--console-socket", default="")
    p.add_argument("--cwd", default="")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-u", "--user", default="", help="UID[:GID]")
    p.add_argument("-g", "--additional-gids", action="append", type=int, default=[])
    p.add_argument("-p", "--process", default="", help="path to a process.json")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--pid-file", default="")
    p.add_argument("--process-label", default="")
    p.add_argument("--apparmor", default="")
    p.add_argument("--no-new-privs", action="store_true")
    p.add_argument("-c", "--cap", action="append", default=[])
    p.add_argument("--preserve-fds", type=int, default=0)
    p.add_argument("--cgroup", action="append", default=[])
    p.add_argument("--ignore-paused", action="store_true")
    p.add_argument("container_id")


def build_process(base, args):
    """The process to exec: --process JSON, or the container's process with the flags applied."""
    from hull.runtime import spec as specmod
    if args.process:
        try:
            with open(args.process) as f:
                proc = json.load(f)
        except OSError as e:
            raise HullError(f"open {args.process}: {e.strerror}") from None
        except ValueError as e:
            raise SpecError(args.process, f"invalid JSON: {e}") from None
    else:
        if not args.command:
            raise HullError("exec: no command given (pass COMMAND or --process)")
        proc = copy.deepcopy(base or {})
        proc["args"] = args.command
        proc["terminal"] = args.tty
        proc.pop("consoleSize", None)
        if args.cwd:
            proc["cwd"] = args.cwd
        if args.env:
            env = [e for e in proc.get("env") or [] if e.split("=", 1)[0] not in
                   {x.split("=", 1)[0] for x in args.env}]
            proc["env"] = env + args.env
        if args.user:
            uid, _, gid = args.user.partition(":")
            try:
                proc["user"] = {"uid": int(uid), "gid": int(gid) if gid else 0}
            except ValueError:
                raise HullError(f"invalid --user {args.user!r}: expected UID[:GID]") from None
        if args.additional_gids:
            proc.setdefault("user", {})["additionalGids"] = args.additional_gids
        if args.no_new_privs:
            proc["noNewPrivileges"] = True
        if args.cap:
            caps = proc.setdefault("capabilities", {})
            for s in ("bounding", "effective", "permitted", "ambient"):
                caps[s] = list(dict.fromkeys((caps.get(s) or []) + args.cap))
    specmod.validate_process(proc, "process")
    specmod.process_defaults(proc)
    if proc.get("apparmorProfile") or proc.get("selinuxLabel"):
        from hull.kernel import lsm
        lsm.validate({"process": proc})
    return proc


def run(ctx, args):
    c = Container.load(ctx.root, args.container_id)
    proc = build_process((c.data.get("config") or {}).get("process"), args)
    if args.tty:
        proc["terminal"] = True
    opts = lifecycle.Options(console_socket=args.console_socket or None, detach=args.detach,
                             pid_file=args.pid_file or None, preserve_fds=args.preserve_fds,
                             ignore_paused=args.ignore_paused)
    return lifecycle.exec_process(ctx.root, args.container_id, proc, opts)
