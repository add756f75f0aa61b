"""hull-runtime pause ID — freeze every process of the container (v1 freezer / v2 cgroup.freeze)."""

from hull.errors import HullError
from hull.runtime.state import Container


def add_arguments(p):
    p.add_argument("container_id")


def run(ctx, args):
    from hull import cgroups
    c = Container.load(ctx.root, args.container_id).lock()
    try:
        status = c.status()
        if status == "paused":
            return 0
        if status not in ("running", "created"):
            raise HullError("container not running")
        cgroups.manager(c.data["cgroupPath"]).freeze()
        c.data["paused"] = True
        c.save()
    finally:
        c.unlock()
    return 0
