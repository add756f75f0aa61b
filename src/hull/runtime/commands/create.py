"""hull-runtime create [--bundle DIR] [--pid-file F] [--console-socket S] ID"""


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
    from hull.runtime import lifecycle
    return lifecycle.Options(
        pid_file=args.pid_file or None, console_socket=args.console_socket or None,
        preserve_fds=args.preserve_fds, no_pivot=args.no_pivot, no_new_keyring=args.no_new_keyring,
        systemd_cgroup=ctx.systemd_cgroup, **extra)


def run(ctx, args):
    stage1 = ctx.stage1()  # started by cli.main, before the flags were parsed
    stage1.early(bundle=args.bundle)
    from hull.runtime import lifecycle
    opts = options(ctx, args, stage1=stage1)
    ctx.take_stage1()  # lifecycle.create owns it now
    lifecycle.create(ctx.root, args.container_id, args.bundle, opts)
    return 0
