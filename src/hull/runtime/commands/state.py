"""hull-runtime state ID — runc's state JSON."""

import sys

from hull import jsonfast as json
from hull.runtime.state import Container


def add_arguments(p):
    p.add_argument("container_id")


def run(ctx, args):
    st = Container.load(ctx.root, args.container_id).oci_state()
    sys.stdout.write(json.dumps(st, indent=2) + "\n")
    return 0
