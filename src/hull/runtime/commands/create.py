"""hull-runtime create [--bundle DIR] [--pid-file F] [--console-socket S] ID"""

from hull.runtime import lifecycle


def add_lifecycle_arguments(p):
    p.add_argument("-b", "--bundle", default=".")
    p.add_argument("--console-socket", default="")
    p.add_argument("--pid-file", default="")
    p.add_argument("--preserve-fds", type=int, default=0)
    p.add_argument("--no-pivot", action="store_true")
    p.add_argument("--no-new-keyring", action="store_true")
    p.add_argument("container_id")


def add_arguments(p):
    add_lifecycle_arguments(p)


def options(ctx, args, **extra):
    return lifecycle.Options(
        pid_file=args.pid_file or None, console_socket=args.console_socket or None,
        preserve_fds=args.preserve_fds, no_pivot=args.no_pivot, no_new_keyring=args.no_new_keyring,
        systemd_cgroup=ctx.systemd_cgroup, **extra)


def run(ctx, args):
    lifecycle.create(ctx.root, args.container_id, args.bundle, options(ctx, args))
    return 0
