"""hull-runtime run [--detach] [--keep] [create flags] ID — exits with the container's code."""

from hull.runtime.commands import create


def add_arguments(p):
    create.add_lifecycle_arguments(p)
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--keep", action="store_true", help="do not delete the container after it exits")


def run(ctx, args):
    stage1 = ctx.stage1()  # started by cli.main, before the flags were parsed
    stage1.early(bundle=args.bundle)
    from hull.runtime import lifecycle
    opts = create.options(ctx, args, detach=args.detach, keep=args.keep, stage1=stage1)
    ctx.take_stage1()  # lifecycle.run owns it now
    return lifecycle.run(ctx.root, args.container_id, args.bundle, opts)
