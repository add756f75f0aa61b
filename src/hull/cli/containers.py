"""Container commands: run, create, start, stop, kill, restart, rm, ps, logs, exec, inspect,
top, stats, wait, rename, pause, unpause, update, prune, ns. Parsing and output only; the work
is in hull.engine."""

import json
import os
import sys
import time

import click

from hull.cli.each import each
from hull.errors import HullError, NotFound, UsageError

_RUN_CTX = {"allow_interspersed_args": False}


def _records():
    from hull.engine import records
    return records


def _load(ref):
    return _records().load(ref)


# ------------------------------------------------------------------------------ run options
def _run_options(f):
    opts = [
        click.option("--name", help="Assign a name to the container."),
        click.option("-e", "--env", multiple=True, help="Set environment variables (KEY=VALUE or KEY)."),
        click.option("--env-file", multiple=True, help="Read in a file of environment variables."),
        click.option("-w", "--workdir", help="Working directory inside the container."),
        click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])."),
        click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image."),
        click.option("-h", "--hostname", help="Container host name."),
        click.option("-v", "--volume", multiple=True, help="Bind mount a volume (SRC:DST[:ro] or NAME:DST)."),
        click.option("--mount", multiple=True, help="Attach a filesystem mount (type=bind|volume|tmpfs,...)."),
        click.option("--tmpfs", multiple=True, help="Mount a tmpfs directory (PATH[:OPTIONS])."),
        click.option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only."),
        click.option("-m", "--memory", help="Memory limit (e.g. 50m)."),
        click.option("--memory-swap", help="Memory + swap limit; -1 for unlimited swap."),
        click.option("--memory-reservation", help="Memory soft limit."),
        click.option("--cpus", help="Number of CPUs."),
        click.option("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)."),
        click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)."),
        click.option("--pids-limit", help="Tune container pids limit (default 2048; -1 for unlimited)."),
        click.option("--device", multiple=True, help="Add a host device to the container."),
        click.option("--blkio-weight", type=int, help="Block IO weight (10-1000)."),
        click.option("--device-read-bps", multiple=True, help="Limit read rate from a device (DEV:RATE)."),
        click.option("--device-write-bps", multiple=True, help="Limit write rate to a device (DEV:RATE)."),
        click.option("--ulimit", multiple=True, help="Ulimit options (name=soft[:hard])."),
        click.option("--cap-add", multiple=True, help="Add Linux capabilities."),
        click.option("--cap-drop", multiple=True, help="Drop Linux capabilities."),
        click.option("--security-opt", multiple=True, help="no-new-privileges, seccomp=unconfined|FILE, landlock=RULES."),
        click.option("--privileged", is_flag=True, help="Give extended privileges (as far as this host allows)."),
        click.option("--userns", help="User namespace (host)."),
        click.option("--pid", help="PID namespace (host|container:<id>)."),
        click.option("--ipc", help="IPC namespace (host|private|container:<id>)."),
        click.option("--uts", help="UTS namespace (host)."),
        click.option("--network", "--net", "network", help="Network: bridge (hull0, the default), NAME, none, host, container:<id>."),
        click.option("--ip", help="IPv4 address on the network (e.g. 10.90.0.7)."),
        click.option("--mac-address", help="Container MAC address (e.g. 92:d0:c6:0a:29:33)."),
        click.option("--network-alias", multiple=True, help="Add a network-scoped alias for the container."),
        click.option("--dns", multiple=True, help="Set custom DNS servers."),
        click.option("--dns-search", multiple=True, help="Set custom DNS search domains."),
        click.option("--dns-option", multiple=True, help="Set DNS options."),
        click.option("--add-host", multiple=True, help="Add a custom host-to-IP mapping (host:ip)."),
        click.option("-p", "--publish", multiple=True, help="Publish a container's port(s) to the host ([ip:]hostPort:containerPort[/proto])."),
        click.option("-P", "--publish-all", is_flag=True, help="Publish all exposed ports to random ports."),
        click.option("--cgroupns", help="Cgroup namespace (host|private)."),
        click.option("--timens", multiple=True, help="Time namespace offset (monotonic=SECS, boottime=SECS)."),
        click.option("--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps processes."),
        click.option("--restart", help="Restart policy (no, on-failure[:max-retries], always, unless-stopped)."),
        click.option("-l", "--label", multiple=True, help="Set meta data on a container."),
        click.option("--stop-signal", help="Signal to stop the container."),
        click.option("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container."),
        click.option("--pull", type=click.Choice(["missing", "always", "never"]), default="missing",
                     help="Pull image before running."),
        click.option("--log-opt", multiple=True, help="Log driver options (max-size, max-file)."),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        click.option("--health-cmd", help="Command to run to check health (run by /bin/sh -c)."),
        click.option("--health-interval", help="Time between running the check (ms|s|m|h) (default 30s)."),
        click.option("--health-timeout", help="Maximum time to allow one check to run (ms|s|m|h) (default 30s)."),
        click.option("--health-retries", type=int, help="Consecutive failures needed to report unhealthy (default 3)."),
        click.option("--health-start-period", help="Start period for the container to initialize before "
                     "failures count toward retries (ms|s|m|h) (default 0s)."),
        click.option("--health-start-interval", help="Time between checks during the start period (default 5s)."),
        click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _image(ref, pull_policy):
    from hull.image.store import default_store
    store = default_store()
    if pull_policy != "always":
        try:
            return store.resolve(ref)
        except NotFound:
            if pull_policy == "never":
                raise
    from hull.image import reference, registry
    from hull.cli.images import _Progress
    r = reference.parse(ref)
    if pull_policy == "missing":
        click.echo(f"Unable to find image '{r.familiar()}' locally", err=True)
    try:
        with _Progress(quiet=False) as rep:
            registry.pull(r, store, reporter=rep)
    except HullError as e:
        raise NotFound(f"Unable to find image '{r.familiar()}': {e}") from None
    return store.resolve(ref)


def _create(kw, image_ref, command):
    from hull.engine import lifecycle
    image = _image(image_ref, kw.pop("pull", "missing"))
    kw["command"] = list(command)
    kw["image_ref"] = image_ref
    if kw.get("privileged"):
        from hull.engine import bundle
        _caps, missing = bundle.effective_caps({"Privileged": True})
        if missing:
            click.echo(f"WARNING: --privileged: this host cannot grant {', '.join(missing)} (not in "
                       "hull's own capability bounding set); the container runs without it", err=True)
    return lifecycle.create(image, kw)


@click.command("run", context_settings=_RUN_CTX)
@_run_options
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print container ID.")
@click.option("--rm", is_flag=True, help="Automatically remove the container when it exits.")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy received signals to the process.")
@click.option("--detach-keys", help="Override the key sequence for detaching a container (default ctrl-p,ctrl-q).")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(image, command, detach, sig_proxy, detach_keys, **kw):
    """Create and run a new container from an image."""
    from hull.engine import lifecycle
    kw["detach"] = detach
    attach = None if detach else lifecycle.Attach(stdin=kw.get("interactive"), tty=kw.get("tty"),
                                                  detach_keys=detach_keys)  # bad keys: before create
    starter = lifecycle.Starter(attach)  # the monitor, forked now: see lifecycle.Starter
    try:
        rec = _create(kw, image, command)
    except BaseException:
        starter.cancel()
        raise
    if detach:
        lifecycle.start(rec, starter=starter)
        click.echo(rec.id)
        return 0
    try:
        session = lifecycle.start(rec, attach=attach, starter=starter)
    except HullError:
        if kw.get("rm"):
            try:
                lifecycle.remove(_load(rec.id), force=True)
            except NotFound:
                pass
        raise
    return session.wait(proxy_signals=sig_proxy)


@click.command("create", context_settings=_RUN_CTX)
@_run_options
@click.option("--rm", is_flag=True, help="Automatically remove the container when it exits.")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def create(image, command, **kw):
    """Create a new container."""
    rec = _create(kw, image, command)
    click.echo(rec.id)


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals.")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN.")
@click.option("--detach-keys", help="Override the key sequence for detaching a container (default ctrl-p,ctrl-q).")
@click.option("--boot", is_flag=True, help="Start the containers whose restart policy brings them back after a "
              "reboot (always; unless-stopped if not stopped by the user; on-failure after a failure).")
@click.argument("containers", nargs=-1)
def start(containers, attach, interactive, detach_keys, boot):
    """Start one or more stopped containers."""
    from hull.engine import lifecycle
    if boot:  # what dockerd does when it starts; run it from a boot unit
        if containers or attach:
            raise UsageError("--boot starts the containers their restart policies pick: give no containers and no -a")
        failed = False
        for rec, err in lifecycle.start_on_boot():
            if err:
                click.echo(f"Error response from daemon: {rec.name}: {err}", err=True)
                failed = True
            else:
                click.echo(rec.name)
        return 1 if failed else 0
    if not containers:
        raise UsageError('"hull start" requires at least 1 argument (a container, or --boot)')
    code = 0
    for ref in containers:
        rec = _load(ref)
        if attach:
            att = lifecycle.Attach(stdin=interactive, tty=rec.config["Config"].get("Tty"), detach_keys=detach_keys)
            s = lifecycle.start(rec, attach=att)
            return s.wait()
        rec.refresh()
        if rec.status == "running":
            click.echo(ref)
            continue
        lifecycle.start(rec)
        click.echo(ref)
    return code


@click.command("stop")
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait for stop before killing it.")
@click.argument("containers", nargs=-1, required=True)
def stop(containers, timeout):
    """Stop one or more running containers."""
    from hull.engine import lifecycle

    def one(ref):
        lifecycle.stop(_load(ref), timeout)
        click.echo(ref)
    each(containers, one)


@click.command("kill")
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send to the container.")
@click.argument("containers", nargs=-1, required=True)
def kill(containers, sig):
    """Kill one or more running containers."""
    from hull.engine import lifecycle
    from hull.runtime.lifecycle import parse_signal
    try:
        n = parse_signal(sig)
    except HullError:
        raise UsageError(f"invalid signal: {sig}") from None

    def one(ref):
        rec = _load(ref)
        if n in (9, 15, 2):
            rec.update_state(StoppedByUser=True)
        lifecycle.kill(rec, n)
        click.echo(ref)
    each(containers, one)


@click.command("restart")
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait for stop before killing it.")
@click.argument("containers", nargs=-1, required=True)
def restart(containers, timeout):
    """Restart one or more containers."""
    from hull.engine import lifecycle

    def one(ref):
        rec = _load(ref)
        lifecycle.stop(rec, timeout)
        lifecycle.start(_load(rec.id))
        click.echo(ref)
    each(containers, one)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL).")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes associated with the container.")
@click.argument("containers", nargs=-1, required=True)
def rm(containers, force, volumes):
    """Remove one or more containers."""
    from hull.engine import lifecycle

    def one(ref):
        try:
            rec = _load(ref)
        except NotFound:
            if force:
                return
            raise
        lifecycle.remove(rec, force=force, volumes=volumes)
        click.echo(ref)
    each(containers, one)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
def prune(force):
    """Remove all stopped containers."""
    from hull.engine import lifecycle
    removed = []
    for rec in _records().all_records():
        if rec.status in ("exited", "created", "dead"):
            lifecycle.remove(rec)
            removed.append(rec.id)
    if removed:
        click.echo("Deleted Containers:")
        for i in removed:
            click.echo(i)
    click.echo(f"Total reclaimed space: {len(removed)} containers")


@click.command("wait")
@click.argument("containers", nargs=-1, required=True)
def wait(containers):
    """Block until one or more containers stop, then print their exit codes."""
    from hull.engine import lifecycle
    for ref in containers:
        click.echo(lifecycle.wait(_load(ref)))


@click.command("rename")
@click.argument("container")
@click.argument("new_name")
def rename(container, new_name):
    """Rename a container."""
    _records().rename(_load(container), new_name)


@click.command("pause")
@click.argument("containers", nargs=-1, required=True)
def pause(containers):
    """Pause all processes within one or more containers."""
    from hull.engine import lifecycle

    def one(ref):
        lifecycle.pause(_load(ref))
        click.echo(ref)
    each(containers, one)


@click.command("unpause")
@click.argument("containers", nargs=-1, required=True)
def unpause(containers):
    """Unpause all processes within one or more containers."""
    from hull.engine import lifecycle

    def one(ref):
        lifecycle.unpause(_load(ref))
        click.echo(ref)
    each(containers, one)


@click.command("update")
@click.option("-m", "--memory")
@click.option("--memory-swap")
@click.option("--cpus")
@click.option("-c", "--cpu-shares", type=int)
@click.option("--cpuset-cpus")
@click.option("--pids-limit", type=int)
@click.option("--restart")
@click.argument("containers", nargs=-1, required=True)
def update(containers, **flags):
    """Update configuration of one or more containers."""
    from hull.engine import lifecycle

    def one(ref):
        lifecycle.update(_load(ref), **flags)
        click.echo(ref)
    each(containers, one)


# ------------------------------------------------------------------------------ ps
def _ago(ts):
    t = _records().parse_time(ts)
    if not t:
        return ""
    d = max(0, time.time() - t)
    for unit, secs in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if d >= secs * 2:
            return f"{int(d // secs)} {unit}"
    if d >= 60:
        return "About a minute" if d < 120 else f"{int(d // 60)} minutes"
    return f"{int(d)} seconds" if d >= 1 else "Less than a second"


def status_text(rec):
    st = rec.state
    s = rec.status
    if s == "running":
        from hull.engine import health
        return f"Up {_ago(st.get('StartedAt'))}{health.suffix(rec)}"
    if s == "paused":
        return f"Up {_ago(st.get('StartedAt'))} (Paused)"
    if s == "restarting":
        return f"Restarting ({st.get('ExitCode', 0)}) {_ago(st.get('FinishedAt'))} ago"
    if s == "exited":
        ago = _ago(st.get("FinishedAt"))  # unknown when nobody saw the end (monitor killed)
        return f"Exited ({st.get('ExitCode', 0)}) {ago} ago" if ago else f"Exited ({st.get('ExitCode', 0)})"
    if s == "starting":
        return "Starting"
    return "Created"


def _ps_fields(rec):
    cfg = rec.config
    cmd = " ".join([cfg.get("Path", "")] + list(cfg.get("Args") or []))
    return {
        "ID": rec.id[:12], "Image": cfg.get("ImageName", ""), "Command": "\"" + (cmd if len(cmd) <= 20 else cmd[:19] + "…") + "\"",
        "CreatedAt": cfg.get("Created", ""), "RunningFor": _ago(cfg.get("Created")) + " ago",
        "Status": status_text(rec), "State": rec.status, "Names": rec.name, "Ports": _ports_text(rec),
        "Labels": ",".join(f"{k}={v}" for k, v in (cfg["Config"].get("Labels") or {}).items()),
        "Pid": rec.state.get("Pid", 0), "ExitCode": rec.state.get("ExitCode", 0),
    }


def _ports_text(rec):
    if rec.status not in ("running", "paused"):
        return ""
    from hull.network import endpoint, ports
    return ports.ps_text(endpoint.published(rec))


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False)
def port(container, private_port):
    """List port mappings or a specific mapping for the container."""
    from hull.network import endpoint
    rec = _load(container)
    binds = endpoint.published(rec) if rec.status in ("running", "paused") else []
    if private_port:
        num, _, proto = private_port.partition("/")
        proto = proto or "tcp"
        hits = [b for b in binds if str(b["ContainerPort"]) == num and b["Protocol"] == proto]
        if not hits:
            raise NotFound(f"No public port '{num}/{proto}' published for {container}")
        for b in hits:
            click.echo(f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}")
        return
    for b in binds:
        click.echo(f"{b['ContainerPort']}/{b['Protocol']} -> {b['HostIp'] or '0.0.0.0'}:{b['HostPort']}")


def _match(rec, filters):
    for f in filters:
        k, _, v = f.partition("=")
        if k == "status" and rec.status != v:
            return False
        if k == "name" and v not in rec.name:
            return False
        if k == "id" and not rec.id.startswith(v):
            return False
        if k == "exited" and (rec.status != "exited" or str(rec.state.get("ExitCode")) != v):
            return False
        if k == "label":
            lk, _, lv = v.partition("=")
            labels = rec.config["Config"].get("Labels") or {}
            if lk not in labels or (lv and labels[lk] != lv):
                return False
        if k == "ancestor" and v not in (rec.config.get("ImageName"), rec.config.get("Image")):
            return False
        if k == "health":
            from hull.engine import health
            if v not in ("starting", "healthy", "unhealthy", "none"):
                raise UsageError(f"Unrecognised filter value for health: {v}")
            if health.status(rec) != v:
                return False
        if k not in ("status", "name", "id", "exited", "label", "ancestor", "health"):
            raise UsageError(f"invalid filter '{k}'")
    return True


@click.command("ps")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running).")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided.")
@click.option("--format", "fmt", help="Format output using a Go-template-like string or 'json'.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-n", "--last", type=int, default=-1, help="Show n last created containers.")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container.")
def ps(show_all, quiet, filters, fmt, no_trunc, last, latest):
    """List containers."""
    from hull.engine import inspect as insp
    recs = _records().all_records()
    if not show_all and not filters and last < 0 and not latest:
        recs = [r for r in recs if r.status in ("running", "paused", "restarting")]
    recs = [r for r in recs if _match(r, filters)]
    recs.sort(key=lambda r: r.config.get("Created", ""), reverse=True)
    if latest:
        last = 1
    if last >= 0:
        recs = recs[:last]
    rows = [_ps_fields(r) for r in recs]
    if no_trunc:
        for row, r in zip(rows, recs):
            row["ID"] = r.id
    if quiet:
        for row in rows:
            click.echo(row["ID"])
        return
    if fmt:
        for row in rows:
            click.echo(json.dumps(row) if fmt == "json" else insp.render(fmt.replace("table ", ""), row))
        return
    cols = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
    keys = ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names")
    _table(cols, [[row[k] for k in keys] for row in rows])


def _table(headers, rows):
    widths = [max([len(str(h))] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]
    click.echo("   ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip())
    for r in rows:
        click.echo("   ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


# ------------------------------------------------------------------------------ logs
@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("--since", help="Show logs since timestamp or relative (e.g. 42m).")
@click.option("--until", help="Show logs before a timestamp or relative (e.g. 42m).")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end of the logs.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("container")
def logs(container, follow, since, until, tail, timestamps):
    """Fetch the logs of a container."""
    from hull.engine import logs as logmod
    rec = _load(container)
    if tail == "all":
        n = None
    else:
        try:
            n = int(tail)
        except ValueError:
            raise UsageError(f"invalid value for --tail: {tail!r}") from None
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for stream, text, ts in logmod.read(rec, tail=n, since=logmod.parse_since(since),
                                        until=logmod.parse_since(until) if until else 0, follow=follow):
        data = (f"{ts} {text}" if timestamps else text).encode()
        target = err if stream == "stderr" else out
        target.write(data)
        target.flush()


# ------------------------------------------------------------------------------ exec
@click.command("exec", context_settings=_RUN_CTX)
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background.")
@click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>]).")
@click.option("-e", "--env", multiple=True, help="Set environment variables.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the command.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(container, command, **kw):
    """Execute a command in a running container."""
    from hull.engine import exec as execmod
    return execmod.run(_load(container), list(command), **kw)


# ------------------------------------------------------------------------------ inspect
@click.command("inspect")
@click.option("-f", "--format", "fmt", help="Format output using a Go-template-like string or 'json'.")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes.")
@click.option("--type", "kind", type=click.Choice(["container", "image"]), default=None)
@click.argument("names", nargs=-1, required=True)
def inspect(names, fmt, size, kind):
    """Return low-level information on containers (or images)."""
    from hull.engine import inspect as insp
    out = []
    failed = False
    for name in names:
        try:
            if kind == "image":
                raise NotFound(name)
            out.append(insp.container(_load(name)))
        except NotFound:
            if kind != "container":
                try:
                    from hull.image.store import default_store
                    img = default_store().resolve(name)
                    out.append({"Id": img.id, "RepoTags": img.names, "RepoDigests": [img.digest],
                                "Config": (img.config or {}).get("config", {}),
                                "Architecture": img.config.get("architecture"), "Os": img.config.get("os"),
                                "Size": img.size, "RootFS": img.config.get("rootfs")})
                    continue
                except (NotFound, HullError):
                    pass
            click.echo(f"Error: No such object: {name}", err=True)
            failed = True
    if fmt and fmt != "json":
        for o in out:
            click.echo(insp.render(fmt, o))
    else:
        click.echo(json.dumps(out, indent=4))
    if failed:
        sys.exit(1)


@click.command("top")
@click.argument("container")
@click.argument("ps_args", nargs=-1)
def top(container, ps_args):
    """Display the running processes of a container."""
    from hull.engine import stats
    headers, rows = stats.top(_load(container))
    _table(headers, rows)


@click.command("stats")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running).")
@click.option("--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result.")
@click.option("--format", "fmt", help="Format output using a Go-template-like string or 'json'.")
@click.option("--no-trunc", is_flag=True)
@click.argument("containers", nargs=-1)
def stats(containers, show_all, no_stream, fmt, no_trunc):
    """Display a live stream of container(s) resource usage statistics."""
    from hull.engine import inspect as insp
    from hull.engine import stats as st
    if containers:
        recs = [_load(c) for c in containers]
    else:
        recs = [r for r in _records().all_records() if show_all or r.status == "running"]
    headers = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS")

    def rows(samples):
        out = []
        for s in samples:
            if fmt == "json":
                click.echo(json.dumps(s))
            elif fmt:
                click.echo(insp.render(fmt, s))
            else:
                out.append([s["ID"] if no_trunc else s["ID"][:12], s["Name"], s["CPUPerc"], s["MemUsage"],
                            s["MemPerc"], s["NetIO"], s["BlockIO"], s["PIDs"]])
        return out
    sampler = st.Sampler(recs)
    if no_stream:
        r = rows(sampler.sample(interval=0.5))
        if not fmt:
            _table(headers, r)
        return
    try:
        while True:
            r = rows(sampler.sample(interval=1.0))
            if not fmt:
                if sys.stdout.isatty():
                    click.echo("\x1b[2J\x1b[H", nl=False)
                _table(headers, r)
    except KeyboardInterrupt:
        return


@click.command("ns")
@click.argument("containers", nargs=-1)
def ns(containers):
    """Show each container's namespaces next to the host's (like lsns)."""
    from hull.engine import namespaces
    recs = [_load(c) for c in containers] if containers else [
        r for r in _records().all_records() if r.status in ("running", "paused")]
    headers, rows = namespaces.table(recs)
    _table(headers, rows)


@click.command("attach")
@click.option("--detach-keys", help="Override the key sequence for detaching a container (default ctrl-p,ctrl-q).")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN.")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy all received signals to the process.")
@click.argument("container")
def attach(container, detach_keys, no_stdin, sig_proxy):
    """Attach local standard input, output, and error streams to a running container."""
    from hull.engine import attach as att
    code = att.attach(_load(container), stdin=not no_stdin, detach_keys=detach_keys, sig_proxy=sig_proxy)
    if code is None:  # detached: the container keeps running
        click.echo("", err=True) if os.isatty(2) else None
        return 0
    return code


COMMANDS = (run, create, start, stop, kill, restart, rm, prune, wait, rename, pause, unpause, update,
            ps, logs, exec_, inspect, top, stats, ns, port, attach)


def register(group):
    for cmd in COMMANDS:
        group.add_command(cmd, name="exec" if cmd is exec_ else cmd.name)
    container = click.Group("container", help="Manage containers.")
    for cmd in COMMANDS:
        container.add_command(cmd, name="exec" if cmd is exec_ else cmd.name)
    container.add_command(ps, name="ls")
    group.add_command(container)
