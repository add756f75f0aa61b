"""hull-runtime start ID"""

from hull.runtime import lifecycle


def add_arguments(p):
    p.add_argument("container_id")


def run(ctx, args):
    lifecycle.start(ctx.root, args.container_id)
    return 0
