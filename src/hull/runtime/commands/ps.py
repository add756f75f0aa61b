"""hull-runtime ps [--format table|json] ID [-- ps options]"""

import json
import sys

from hull.errors import HullError
from hull.runtime.state import Container


TRAILING_ARGS = True  # COMMAND... after the id (see cli.split_trailing)


def add_arguments(p):
    p.add_argument("-f", "--format", default="table", choices=("table", "json"))
    p.add_argument("container_id")


def run(ctx, args):
    from hull import cgroups
    c = Container.load(ctx.root, args.container_id)
    mgr = cgroups.manager(c.data["cgroupPath"])
    pids = mgr.pids() if mgr.exists() else []
    if args.format == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    import subprocess
    ps_args = args.command or ["-ef"]
    try:
        out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise HullError(f"ps {' '.join(ps_args)}: {e}") from None
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise HullError("couldn't find PID field in ps output")
    col = header.index("PID")
    sys.stdout.write(lines[0] + "\n")
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            sys.stdout.write(line + "\n")
    return 0
