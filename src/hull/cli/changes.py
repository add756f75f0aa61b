"""`hull diff CONTAINER` and `hull commit CONTAINER [REPOSITORY[:TAG]]`: a container's changes
to its image (the snapshot's upper dir, hull.image.snapshot) listed, or made into an image.
Parsing and output only."""

import click

from hull.errors import HullError


def _container(ref):
    from hull.engine import records
    return records.load(ref)


@click.command("diff")
@click.argument("container")
def diff(container):
    """Inspect changes to files or directories on a container's filesystem.

    A: added, C: changed, D: deleted, relative to the container's image."""
    from hull.image import snapshot
    rec = _container(container)
    for kind, path in snapshot.diff(rec.dir, exclude=_runtime_stubs(rec)):
        click.echo(f"{kind} {path}")


def _runtime_stubs(rec):
    """The container's mount points (its bundle's, and those every container gets): where the
    runtime had to create them they are stubs, not changes (Docker keeps them in an init layer)."""
    import json
    from hull.image import snapshot
    points = set(snapshot.RUNTIME_STUBS)
    try:
        with open(rec.path("bundle", "config.json")) as f:
            points.update(m["destination"] for m in json.load(f).get("mounts") or () if m.get("destination"))
    except (OSError, ValueError):
        pass
    return sorted(points)


@click.command("commit")
@click.option("-a", "--author", help='Author (e.g. "John Hannibal Smith <hannibal@a-team.com>").')
@click.option("-c", "--change", multiple=True,
              help="Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, WORKDIR.")
@click.option("-m", "--message", help="Commit message.")
@click.option("-p", "--pause", "pause", type=click.BOOL, default=True, show_default=True, metavar="BOOL",
              help="Pause the container during commit (--pause=false to not).")
@click.argument("container")
@click.argument("image", metavar="[REPOSITORY[:TAG]]", required=False)
def commit(author, change, message, pause, container, image):
    """Create a new image from a container's changes."""
    from hull.image import reference, snapshot
    if image:
        reference.parse(image)  # a bad name fails before any work
    rec = _container(container)
    paused_here = False
    if pause:
        rec.refresh()
        if rec.status == "running":
            from hull.engine import lifecycle
            try:
                lifecycle.pause(rec)
                paused_here = True
            except HullError as e:
                click.echo(f"warning: committing without pausing {rec.name}: {e}", err=True)
    try:
        img = snapshot.commit(rec.dir, image, changes=list(change), message=message, author=author,
                              exclude=_runtime_stubs(rec))
    finally:
        if paused_here:
            from hull.engine import lifecycle
            lifecycle.unpause(rec)
    click.echo(img.id)


def register(main):
    for cmd in (diff, commit):
        main.add_command(cmd)
        group = main.commands.get("container")
        if isinstance(group, click.Group):
            group.add_command(cmd)
