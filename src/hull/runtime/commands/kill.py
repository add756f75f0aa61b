"""hull-runtime kill [--all] ID [SIGNAL]"""

from hull.runtime import lifecycle


def add_arguments(p):
    p.add_argument("-a", "--all", action="store_true", help="send the signal to all processes in the container")
    p.add_argument("container_id")
    p.add_argument("signal", nargs="?", default="SIGTERM")


def run(ctx, args):
    lifecycle.kill(ctx.root, args.container_id, lifecycle.parse_signal(args.signal), args.all)
    return 0
