"""Image commands: pull, push, images, image {ls,inspect,rm,prune,bootstrap,tag,...}, tag,
rmi, save, load, import, login, logout. Parsing and output only; the work is in hull.image."""

import json
import os
import sys
import time

import click

from hull.errors import UsageError


def _store():
    from hull.image.store import default_store
    return default_store()


def _human_size(n):
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000


def _ago(created):
    if not created:
        return "N/A"
    try:
        t = time.mktime(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    except ValueError:
        return created
    d = time.time() - t
    for unit, secs in (("year", 31536000), ("month", 2592000), ("week", 604800), ("day", 86400),
                       ("hour", 3600), ("minute", 60)):
        if d >= secs:
            k = int(d // secs)
            return f"{k} {unit}{'s' if k > 1 else ''} ago"
    return "Less than a minute ago"


class _Progress:
    """A registry.Reporter: rich bars on a terminal, Docker-like status lines otherwise,
    nothing but the result in quiet mode."""

    def __init__(self, quiet=False):
        self.quiet = quiet
        self.live = not quiet and sys.stderr.isatty()
        self.tasks = {}
        self.progress = None
        if self.live:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                       TransferSpeedColumn)
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                     TransferSpeedColumn(), console=Console(stderr=True), transient=False)

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *a):
        if self.progress:
            self.progress.stop()

    def _label(self, key):
        return "config" if key == "config" else key[7:19] if key.startswith("sha256:") else key

    def start(self, key, label, total):
        if self.progress:
            self.tasks[key] = self.progress.add_task(f"{self._label(key)}: Downloading", total=total)

    def advance(self, key, n):
        if self.progress and key in self.tasks:
            self.progress.advance(self.tasks[key], n)

    def done(self, key, status):
        if self.quiet or key == "config":
            if self.progress and key in self.tasks:
                self.progress.remove_task(self.tasks.pop(key))
            return
        if self.progress:
            if key in self.tasks:
                t = self.tasks[key]
                task = self.progress.tasks[[x.id for x in self.progress.tasks].index(t)]
                self.progress.update(t, description=f"{self._label(key)}: {status}", completed=task.total)
            else:
                self.progress.add_task(f"{self._label(key)}: {status}", total=1, completed=1)
        else:
            click.echo(f"{self._label(key)}: {status}")

    def message(self, text):
        if self.quiet:
            return
        if self.progress:
            self.progress.console.print(text, highlight=False, markup=False)
        else:
            click.echo(text)


# -- pull / push ---------------------------------------------------------------------------

@click.command("pull")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image reference.")
@click.option("--platform", help="os/arch[/variant] to pick from a multi-arch image (default: this host).")
@click.option("--insecure", "insecure", is_flag=True, default=None,
              help="Allow plain HTTP and unverified TLS for this registry.")
@click.argument("image")
def pull(quiet, platform, insecure, image):
    """Download an image from a registry."""
    from hull.image import reference, registry
    ref = reference.parse(image)
    with _Progress(quiet) as rep:
        registry.pull(ref, _store(), platform=platform, reporter=rep, insecure=insecure)
    click.echo(str(ref) if not quiet else str(ref))


@click.command("push")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@click.option("--insecure", "insecure", is_flag=True, default=None,
              help="Allow plain HTTP and unverified TLS for this registry.")
@click.option("--chunk-size", type=int, default=None, help="Upload in chunks of this many bytes.")
@click.argument("image")
@click.argument("destination", required=False)
def push(quiet, insecure, chunk_size, image, destination):
    """Upload an image to a registry (to DESTINATION if given, else to its own name)."""
    from hull.image import registry
    with _Progress(quiet) as rep:
        digest = registry.push(image, destination, _store(), reporter=rep, insecure=insecure,
                               chunk_size=chunk_size)
    if quiet:
        click.echo(digest)


# -- listing and inspecting ---------------------------------------------------------------

def _rows(images, show_all):
    from hull.image import reference
    rows = []
    for img in images:
        names = img.names or [None]
        for n in names:
            if n:
                r = reference.parse(n)
                repo, tag = r.familiar_name(), r.tag or "<none>"
            else:
                repo, tag = "<none>", "<none>"
            rows.append((repo, tag, img))
    return rows


@click.command("images")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all images (default hides none).")
@click.option("--digests", is_flag=True, help="Show manifest digests.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate IDs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.argument("repository", required=False)
def images(quiet, show_all, digests, no_trunc, fmt, repository):
    """List images."""
    from hull.image import reference
    imgs = _store().images()
    rows = _rows(imgs, show_all)
    if repository:
        want = reference.parse(repository, default_tag=False)
        rows = [r for r in rows if r[0] == want.familiar_name() and (not want.tag or r[1] == want.tag)]
    if quiet:
        seen = []
        for _, _, img in rows:
            i = img.id if no_trunc else img.id[7:19]
            if i not in seen:
                seen.append(i)
                click.echo(i)
        return
    if fmt == "json":
        click.echo(json.dumps([{"Repository": r, "Tag": t, "ID": i.id, "Digest": i.digest,
                                "Created": i.config.get("created"), "Size": i.size} for r, t, i in rows], indent=2))
        return
    header = ["REPOSITORY", "TAG"] + (["DIGEST"] if digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    table = [header]
    for repo, tag, img in rows:
        table.append([repo, tag] + ([img.digest] if digests else []) +
                     [img.id if no_trunc else img.id[7:19], _ago(img.config.get("created")), _human_size(img.size)])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _inspect_doc(img):
    from hull.image import reference
    cfg = img.config
    repo_digests = []
    for n in img.names:
        r = reference.parse(n)
        d = f"{r.familiar_name()}@{(img.manifest.get('annotations') or {}).get('io.hull.index.digest', img.digest)}"
        if d not in repo_digests:
            repo_digests.append(d)
    return {
        "Id": img.id,
        "RepoTags": [reference.parse(n).familiar() for n in img.names if "@" not in n],
        "RepoDigests": repo_digests,
        "Digest": img.digest,
        "MediaType": img.media_type,
        "Created": cfg.get("created"),
        "Author": cfg.get("author", ""),
        "Architecture": cfg.get("architecture"),
        "Variant": cfg.get("variant"),
        "Os": cfg.get("os"),
        "Size": img.size,
        "Config": cfg.get("config", {}),
        "RootFS": {"Type": "layers", "Layers": img.diff_ids},
        "Layers": [l["digest"] for l in img.layers],
        "ChainIDs": img.chain_ids,
        "History": cfg.get("history", []),
    }


@click.command("inspect")
@click.option("-f", "--format", "fmt", help="Print one field, e.g. '{{.Id}}' or '.Config.Cmd'.")
@click.argument("image", nargs=-1, required=True)
def inspect(fmt, image):
    """Show an image's configuration and layers as JSON."""
    store = _store()
    docs = [_inspect_doc(store.resolve(i)) for i in image]
    if fmt:
        path = fmt.strip().removeprefix("{{").removesuffix("}}").strip().lstrip(".")
        for d in docs:
            v = d
            for part in filter(None, path.split(".")):
                if not isinstance(v, dict) or part not in v:
                    raise UsageError(f"template field {fmt!r}: no field {part!r}")
                v = v[part]
            click.echo(v if isinstance(v, str) else json.dumps(v))
        return
    click.echo(json.dumps(docs, indent=4))


@click.command("rmi")
@click.option("-f", "--force", is_flag=True, help="Remove even if containers use it or it has several names.")
@click.argument("image", nargs=-1, required=True)
def rmi(force, image):
    """Remove one or more images."""
    store = _store()
    failed = None
    for i in image:
        try:
            for what, x in store.remove(i, force=force):
                click.echo(f"{what}: {x}")
        except Exception as e:
            from hull.errors import HullError
            if not isinstance(e, HullError):
                raise
            click.echo(f"Error: {e}", err=True)
            failed = e
    if failed:
        sys.exit(getattr(failed, "exit_code", 125) if len(image) == 1 else 1)


@click.command("prune")
@click.option("-a", "--all", "all_unused", is_flag=True, help="Remove every image no container uses.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
def prune(all_unused, force):
    """Remove dangling images and unreferenced blobs and layers."""
    if not force and sys.stdin.isatty():
        what = "all images without at least one container associated to them" if all_unused else "all dangling images"
        if not click.confirm(f"WARNING! This will remove {what}.\nAre you sure you want to continue?"):
            return
    removed, freed = _store().prune(all_unused)
    if removed:
        click.echo("Deleted Images:")
        for d in removed:
            click.echo(f"deleted: {d}")
    click.echo(f"Total reclaimed space: {_human_size(max(freed, 0))}")


@click.command("tag")
@click.argument("source")
@click.argument("target")
def tag(source, target):
    """Give an image another name: hull tag SOURCE[:TAG] TARGET[:TAG]."""
    _store().tag(source, target)


@click.command("bootstrap")
@click.option("--mirror", help="Debian mirror (default: the first one apt is configured with).")
@click.option("-q", "--quiet", is_flag=True)
@click.argument("what")
def bootstrap_cmd(mirror, quiet, what):
    """Build a base image on this machine: busybox (from busybox-static) or debian[:SUITE]."""
    from hull.image import bootstrap
    if what.partition(":")[0] == "debian" and not quiet and sys.stderr.isatty():
        from rich.console import Console
        console = Console(stderr=True)
        count = {"n": 0}
        with console.status(f"debootstrap {what}") as status:
            def progress(kind, text):
                if kind == "package":
                    count["n"] += 1
                    status.update(f"debootstrap {what}: [{count['n']}] {text}")
                else:
                    console.print(f"  {text}", highlight=False, markup=False)
                    status.update(f"debootstrap {what}: {text}")
            img = bootstrap.bootstrap(what, _store(), progress=progress, mirror=mirror)
    else:
        def progress(kind, text):
            if not quiet and kind == "step":
                click.echo(text, err=True)
        img = bootstrap.bootstrap(what, _store(), progress=progress, mirror=mirror)
    click.echo(img.digest if quiet else f"{img.name}  {img.id}")


# -- archives ------------------------------------------------------------------------------

@click.command("save")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: stdout).")
@click.option("--format", "fmt", type=click.Choice(["docker-archive", "oci-archive"]), default="docker-archive")
@click.argument("image", nargs=-1, required=True)
def save(output, fmt, image):
    """Save images to a tar archive (Docker's `docker save` format, or an OCI archive)."""
    from hull.image import archive
    if not output and sys.stdout.isatty():
        raise UsageError("refusing to write an archive to a terminal; use -o FILE or redirect stdout")
    archive.save(_store(), list(image), output or sys.stdout.buffer, fmt=fmt)


@click.command("load")
@click.option("-i", "--input", "input_", type=click.Path(exists=True, dir_okay=False),
              help="Read from this file (default: stdin).")
@click.option("-q", "--quiet", is_flag=True)
def load(input_, quiet):
    """Load images from a docker-archive or oci-archive tarball."""
    from hull.image import archive, reference
    imgs = archive.load(_store(), input_ or sys.stdin.buffer)
    for img in imgs:
        if img.names:
            for n in img.names:
                click.echo(f"Loaded image: {reference.parse(n).familiar()}")
        else:
            click.echo(f"Loaded image ID: {img.id}")


@click.command("import")
@click.option("-c", "--change", multiple=True, help="Dockerfile-like change: CMD, ENV, WORKDIR, ENTRYPOINT, USER.")
@click.option("-m", "--message", help="Commit message (history).")
@click.option("--platform", help="os/arch of the image (default: this host).")
@click.argument("file")
@click.argument("reference_", metavar="[REPOSITORY[:TAG]]", required=False)
def import_(change, message, platform, file, reference_):
    """Create an image from a rootfs tarball (FILE, or - for stdin)."""
    from hull.image import archive
    src = sys.stdin.buffer if file == "-" else file
    img = archive.import_rootfs(_store(), src, reference_, changes=list(change), message=message, platform=platform)
    click.echo(img.id)


# -- auth ----------------------------------------------------------------------------------

@click.command("login")
@click.option("-u", "--username")
@click.option("-p", "--password")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--insecure", "insecure", is_flag=True, default=None)
@click.argument("server", required=False, default="docker.io")
def login(username, password, password_stdin, insecure, server):
    """Log in to a registry; credentials go to a Docker-style config.json (0600)."""
    from hull.image import registry
    if password_stdin:
        if password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\r\n")
    if not username:
        username = click.prompt("Username")
    if not password:
        password = click.prompt("Password", hide_input=True)
    elif not password_stdin:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True)
    path = registry.login(server, username, password, insecure=insecure)
    click.echo(f"Login Succeeded (credentials stored in {path})")


@click.command("logout")
@click.argument("server", required=False, default="docker.io")
def logout(server):
    """Forget the credentials for a registry."""
    from hull.image import auth
    if auth.remove(server):
        click.echo(f"Removing login credentials for {server}")
    else:
        click.echo(f"Not logged in to {server}")


def register(main):
    for cmd in (pull, push, images, rmi, tag, save, load, import_, login, logout):
        main.add_command(cmd)

    @main.group("image")
    def image():
        """Manage images."""

    for cmd in (inspect, prune, bootstrap_cmd, pull, push, tag, save, load, import_):
        image.add_command(cmd)
    image.add_command(images, "ls")
    image.add_command(rmi, "rm")
