"""Commands that act on several objects (rm, stop, kill, volume rm …), as Docker's: each one
in turn, an error for one is reported and the others still happen, exit 1 if any failed."""

import sys

import click

from hull.errors import HullError


def each(refs, fn):
    failed = False
    for ref in refs:
        try:
            fn(ref)
        except HullError as e:
            click.echo(f"Error response from daemon: {e}", err=True)
            failed = True
    if failed:
        sys.exit(1)
