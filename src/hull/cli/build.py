"""`hull build`: parsing, BuildKit-plain-like progress output, errors. The work is in
hull.build.builder."""

import sys
import time

import click

from hull.errors import UsageError


class PlainProgress:
    """BuildKit's `--progress=plain` shape: `#N [1/3] RUN ...`, `#N 0.213 output`,
    `#N DONE 0.4s` / `#N CACHED` / `#N ERROR: ...`, on stderr."""

    def __init__(self, quiet=False):
        self.quiet = quiet
        self.n = 0
        self.started = {}

    def _p(self, text):
        if not self.quiet:
            click.echo(text, err=True)

    def begin(self, label):
        self.n += 1
        self.started[self.n] = time.monotonic()
        self._p(f"\n#{self.n} {label}")
        return self.n

    def log(self, step, text):
        self._p(f"#{step} {time.monotonic() - self.started.get(step, time.monotonic()):.3f} {text}")

    def cached(self, step):
        self._p(f"#{step} CACHED")

    def done(self, step):
        self._p(f"#{step} DONE {time.monotonic() - self.started.get(step, time.monotonic()):.1f}s")

    def error(self, step, message):
        click.echo(f"#{step} ERROR: {message}", err=True)

    def warn(self, message):
        click.echo(f"[Warning] {message}", err=True)


def _pairs(items, flag):
    out = {}
    for it in items:
        k, eq, v = it.partition("=")
        if not k:
            raise UsageError(f"{flag} {it!r}: expected KEY=VALUE")
        if not eq:
            import os
            if k not in os.environ:
                continue  # docker: --build-arg NAME takes the value from the environment, if set
            v = os.environ[k]
        out[k] = v
    return out


def _excerpt(text, line, name):
    lines = text.split("\n")
    lo, hi = max(1, line - 2), min(len(lines), line + 2)
    out = [f"{name}:{line}", "-" * 20]
    for i in range(lo, hi + 1):
        mark = ">>>" if i == line else "   "
        out.append(f" {i:>3} | {mark} {lines[i - 1]}")
    out.append("-" * 20)
    return "\n".join(out)


@click.command("build")
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag (name:tag).")
@click.option("-f", "--file", "dockerfile", help="The Dockerfile (default: CONTEXT/Dockerfile).")
@click.option("--build-arg", "build_args", multiple=True, help="Set a build-time variable (KEY=VALUE).")
@click.option("--label", "labels", multiple=True, help="Set a label on the image (KEY=VALUE).")
@click.option("--target", help="Build this stage (and what it needs) only.")
@click.option("--platform", default=None, help="Target platform (linux/amd64 only).")
@click.option("--no-cache", is_flag=True, help="Do not use the build cache.")
@click.option("--pull", is_flag=True, help="Always pull base images again.")
@click.option("--network", type=click.Choice(["default", "none", "host"]), default=None,
              help="Networking for RUN (default: none).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto",
              help="Progress output (plain lines in every mode).")
@click.argument("context")
def build_cmd(tags, dockerfile, build_args, labels, target, platform, no_cache, pull, network, quiet, progress, context):
    """Build an image from a Dockerfile."""
    from hull.build import builder
    from hull.build.dockerfile import DockerfileError
    from hull.image import reference
    for t in tags:
        ref = reference.parse(t)
        if ref.digest:
            raise UsageError(f"invalid tag {t!r}: a tag cannot hold a digest")
    opts = builder.BuildOptions(context=context, dockerfile=dockerfile, tags=tags,
                                build_args=_pairs(build_args, "--build-arg"), labels=_pairs(labels, "--label"),
                                target=target, platform=platform, no_cache=no_cache, pull=pull, network=network)
    prog = PlainProgress(quiet=quiet or progress == "quiet")
    t0 = time.monotonic()
    b = builder.Builder(opts, progress=prog)
    try:
        img = b.build()
    except builder.BuildError as e:
        click.echo(f"ERROR: {e}", err=True)
        ins = e.instruction
        if ins is not None and getattr(b, "df_text", None):
            click.echo(_excerpt(b.df_text, ins.line, b.df_name), err=True)
        sys.exit(1)
    except DockerfileError as e:
        click.echo(f"ERROR: failed to solve: {e}", err=True)
        if e.line and getattr(b, "df_text", None):
            click.echo(_excerpt(b.df_text, e.line, b.df_name), err=True)
        sys.exit(1)
    except builder.ContextError as e:
        click.echo(f"ERROR: {e}", err=True)
        sys.exit(1)
    n = prog.begin("exporting to image")
    prog._p(f"#{n} writing image {img.id} done")
    for t in tags:
        prog._p(f"#{n} naming to {reference.parse(t)} done")
    prog._p(f"#{n} DONE {time.monotonic() - t0:.1f}s")
    if quiet:
        click.echo(img.id)
    return 0


def register(main):
    main.add_command(build_cmd)
