"""hull-runtime spec [--rootless] [--bundle DIR] — write a default config.json like runc spec."""

import json
from hull import osfast as os

from hull.errors import Conflict
from hull.runtime.spec_default import default_spec


def add_arguments(p):
    p.add_argument("-b", "--bundle", default=".")
    p.add_argument("--rootless", action="store_true")
    p.add_argument("--seccomp", action="store_true", help="include hull's default (Docker's) seccomp profile")


def run(ctx, args):
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise Conflict("File config.json exists. Remove it first.")
    spec = default_spec(rootless=args.rootless, with_docker_seccomp=args.seccomp)
    with open(path, "w") as f:
        json.dump(spec, f, indent="\t")
        f.write("\n")
    return 0
