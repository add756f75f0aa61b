"""hull-runtime resume ID — thaw a paused container."""

from hull.errors import HullError
from hull.runtime.state import Container


def add_arguments(p):
    p.add_argument("container_id")


def run(ctx, args):
    from hull import cgroups
    c = Container.load(ctx.root, args.container_id).lock()
    try:
        status = c.status()
        if status == "stopped":
            raise HullError("container not running")
        if status != "paused":
            raise HullError("container not paused")
        cgroups.manager(c.data["cgroupPath"]).thaw()
        c.data["paused"] = False
        c.save()
    finally:
        c.unlock()
    return 0
