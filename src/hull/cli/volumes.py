"""`hull volume`: create, ls, inspect, rm, prune. Parsing and output only; the work is in
hull.engine.volumes."""

import json
import sys

import click

from hull.errors import HullError


@click.group("volume")
def volume():
    """Manage volumes."""


@volume.command("create")
@click.option("-d", "--driver", default="local", help="Volume driver (only local).")
@click.option("--label", multiple=True, help="Set metadata for a volume (KEY=VALUE).")
@click.argument("name", required=False)
def create(name, driver, label):
    """Create a volume (a random name when none is given)."""
    from hull.engine import volumes
    from hull.errors import UsageError
    if driver != "local":
        raise UsageError(f"volume driver {driver!r} is not supported: use local")
    if name:
        volumes.validate_name(name)
    else:
        name = volumes.new_anonymous_name()
    volumes.ensure(name, labels=dict(lab.partition("=")[::2] for lab in label))
    click.echo(name)


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names.")
def ls(quiet):
    """List volumes."""
    from hull.engine import volumes
    names = volumes.all_volumes()
    if quiet:
        for n in names:
            click.echo(n)
        return
    click.echo(f"{'DRIVER':<10}VOLUME NAME")
    for n in names:
        click.echo(f"{'local':<10}{n}")


@volume.command("inspect")
@click.argument("names", nargs=-1, required=True)
def inspect(names):
    """Display detailed information on one or more volumes."""
    from hull.engine import volumes
    out, failed = [], False
    for n in names:
        try:
            doc = volumes.inspect(n)
            doc.pop("Anonymous", None)
            out.append(doc)
        except HullError as e:
            click.echo(f"Error response from daemon: {e}", err=True)
            failed = True
    click.echo(json.dumps(out, indent=4))
    if failed:
        sys.exit(1)


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="Do not error for a volume that does not exist.")
@click.argument("names", nargs=-1, required=True)
def rm(names, force):
    """Remove one or more volumes (not while a container uses them)."""
    from hull.cli.each import each
    from hull.engine import volumes

    def one(name):
        volumes.remove(name, force=force)
        click.echo(name)
    each(names, one)


@volume.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused volumes, not just anonymous ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
def prune(all_, force):
    """Remove unused anonymous volumes (with --all, unused named volumes too)."""
    from hull.engine import volumes
    if not force and sys.stdin.isatty():
        what = "all local volumes not used by at least one container" if all_ else \
            "all anonymous local volumes not used by at least one container"
        if not click.confirm(f"WARNING! This will remove {what}.\nAre you sure you want to continue?"):
            return
    gone = volumes.prune(all_=all_)
    if gone:
        click.echo("Deleted Volumes:")
        for n in gone:
            click.echo(n)
        click.echo("")
    click.echo(f"Total reclaimed space: {len(gone)} volume(s)")


def register(main):
    main.add_command(volume)
