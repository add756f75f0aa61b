"""`hull build`: parsing, BuildKit-plain-like progress output, errors. The work is in
hull.build.builder."""

import sys
import time

import click

from hull.errors import HullError, UsageError


class PlainProgress:
    """BuildKit's `--progress=plain` shape: `#N [1/3] RUN ...`, `#N 0.213 output`,
    `#N DONE 0.4s` / `#N CACHED` / `#N ERROR: ...`, on stderr."""

    def __init__(self, quiet=False, write=None):
        self.quiet = quiet
        self.n = 0
        self.started = {}
        self.write = write or (lambda text: click.echo(text, err=True))

    def _p(self, text):
        if not self.quiet:
            self.write(text)

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
        self.write(f"#{step} ERROR: {message}")

    def warn(self, message):
        self.write(f"[Warning] {message}")


def _pairs(items, flag, environ=None):
    out = {}
    for it in items:
        k, eq, v = it.partition("=")
        if not k:
            raise UsageError(f"{flag} {it!r}: expected KEY=VALUE")
        if not eq:
            import os
            env = os.environ if environ is None else environ
            if k not in env:
                continue  # docker: --build-arg NAME takes the value from the environment, if set
            v = env[k]
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
    return execute(dict(tags=tags, dockerfile=dockerfile, build_args=build_args, labels=labels, target=target,
                        platform=platform, no_cache=no_cache, pull=pull, network=network, quiet=quiet,
                        progress=progress, context=context))


def execute(params, out=None, err=None, environ=None, dry=False):
    """The build for the parsed options. `out`/`err` take lines (default: click.echo);
    `environ` is where --build-arg NAME looks values up. dry: answer only a build that is
    cached through and through, else raise builder.NeedsWork (the zygote, in-process)."""
    from hull.build import builder
    from hull.build.dockerfile import DockerfileError
    from hull.image import reference
    out = out or click.echo
    err = err or (lambda text: click.echo(text, err=True))
    tags, quiet = params["tags"], params["quiet"]
    for t in tags:
        ref = reference.parse(t)
        if ref.digest:
            raise UsageError(f"invalid tag {t!r}: a tag cannot hold a digest")
    opts = builder.BuildOptions(context=params["context"], dockerfile=params["dockerfile"], tags=tags,
                                build_args=_pairs(params["build_args"], "--build-arg", environ),
                                labels=_pairs(params["labels"], "--label", environ),
                                target=params["target"], platform=params["platform"], no_cache=params["no_cache"],
                                pull=params["pull"], network=params["network"])
    prog = PlainProgress(quiet=quiet or params["progress"] == "quiet", write=err)
    t0 = time.monotonic()
    b = builder.Builder(opts, progress=prog, dry=dry)
    try:
        img = b.build()
    except builder.BuildError as e:
        if dry:
            raise builder.NeedsWork(str(e)) from None
        err(f"ERROR: {e}")
        ins = e.instruction
        if ins is not None and getattr(b, "df_text", None):
            err(_excerpt(b.df_text, ins.line, b.df_name))
        sys.exit(1)
    except DockerfileError as e:
        if dry:
            raise builder.NeedsWork(str(e)) from None
        err(f"ERROR: failed to solve: {e}")
        if e.line and getattr(b, "df_text", None):
            err(_excerpt(b.df_text, e.line, b.df_name))
        sys.exit(1)
    except builder.ContextError as e:
        if dry:
            raise builder.NeedsWork(str(e)) from None
        err(f"ERROR: {e}")
        sys.exit(1)
    n = prog.begin("exporting to image")
    prog._p(f"#{n} writing image {img.id} done")
    for t in tags:
        prog._p(f"#{n} naming to {reference.parse(t)} done")
    prog._p(f"#{n} DONE {time.monotonic() - t0:.1f}s")
    if quiet:
        out(img.id)
    return 0


def serve_cached(argv, cwd, environ):
    """For the zygote: the output of `hull build ARGV` run in `cwd`, if the build is cached
    through and through and writes nothing (a no-op rebuild), as (stdout, stderr) text; None
    when it has to run for real (in a worker, as any command). Reads only: no store, cache or
    index write happens here, and the builder never reads stdin or a FIFO."""
    import os
    from hull.build import builder
    try:
        ctx = build_cmd.make_context("build", list(argv[1:]), resilient_parsing=False)
    except (click.exceptions.Exit, click.ClickException):
        return None
    params = dict(ctx.params)
    if params["context"] == "-" or params["dockerfile"] == "-":
        return None
    params["context"] = os.path.join(cwd, params["context"])
    if params["dockerfile"]:
        params["dockerfile"] = os.path.join(cwd, params["dockerfile"])
    out, err = [], []
    try:
        code = execute(params, out.append, err.append, environ=environ, dry=True)
    except (builder.NeedsWork, HullError, OSError, SystemExit):
        return None
    if code != 0:
        return None
    return "".join(x + "\n" for x in out), "".join(x + "\n" for x in err)


def register(main):
    main.add_command(build_cmd)
