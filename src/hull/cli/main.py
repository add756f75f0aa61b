"""`hull`: the Docker-like CLI. One module per command group registers its commands here.

Errors become one line on stderr and Docker's exit codes: 125 for hull's own errors and bad
usage, HullError.exit_code where a subclass sets another; no tracebacks (HULL_DEBUG=1 shows
them).
"""

import os
import sys

import click

from hull.errors import HullError


class HullGroup(click.Group):
    def main(self, args=None, prog_name=None, **kwargs):
        debug = bool(os.environ.get("HULL_DEBUG"))
        try:
            rv = super().main(args=args, prog_name=prog_name or "hull", standalone_mode=False, **kwargs)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except click.ClickException as e:
            e.show()
            sys.exit(125)
        except HullError as e:
            if debug:
                raise
            click.echo(f"Error: {e}", err=True)
            sys.exit(getattr(e, "exit_code", 125))
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(0)
        except OSError as e:
            if debug:
                raise
            where = f": {e.filename}" if getattr(e, "filename", None) else ""
            click.echo(f"Error: {e.strerror or e}{where}", err=True)
            sys.exit(125)
        except Exception as e:  # noqa: BLE001 - last line of defence, no tracebacks for users
            if debug:
                raise
            click.echo(f"Error: internal error: {e.__class__.__name__}: {e} "
                       "(run with HULL_DEBUG=1 for a traceback and report it)", err=True)
            sys.exit(125)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=HullGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hull", prog_name="hull")
def main():
    """hull: a daemonless, Docker-like container engine."""


def _register():
    from hull.cli import containers, images, networks, volumes
    images.register(main)
    containers.register(main)
    networks.register(main)
    volumes.register(main)
    from hull.cli import build
    build.register(main)
    from hull.cli import changes
    changes.register(main)


_register()

if __name__ == "__main__":
    main()
