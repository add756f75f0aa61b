"""hull-runtime list [--format table|json] [--quiet]"""

import json
import sys

from hull.runtime import state


def add_arguments(p):
    p.add_argument("-f", "--format", default="table", choices=("table", "json"))
    p.add_argument("-q", "--quiet", action="store_true")


def run(ctx, args):
    rows = []
    for cid in state.list_ids(ctx.root):
        try:
            rows.append(state.Container.load(ctx.root, cid).oci_state())
        except Exception:  # a container being deleted right now
            continue
    if args.quiet:
        sys.stdout.write("".join(r["id"] + "\n" for r in rows))
    elif args.format == "json":
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        table += [(r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]) for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(6)]
        for row in table:
            sys.stdout.write("   ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")
    return 0
