"""hull-runtime delete [--force] ID"""

from hull.runtime import lifecycle


def add_arguments(p):
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("container_id")


def run(ctx, args):
    lifecycle.delete(ctx.root, args.container_id, args.force)
    return 0
