"""`hull network`: create, ls, inspect, rm, connect, disconnect, prune. Parsing and output
only; the work is in hull.network."""

import json
import sys

import click

from hull.errors import Conflict, HullError, NotFound


def _attached(net):
    """{container id: endpoint} of running containers on `net` (from their network.json)."""
    from hull.engine import records
    from hull.network import endpoint
    out = {}
    for rec in records.all_records():
        info = endpoint.load(rec)
        e = ((info or {}).get("Networks") or {}).get(net.name)
        if e:
            out[rec.id] = {"Name": rec.name, "EndpointID": f"{rec.id[:12]}-{e.get('IfName')}",
                           "MacAddress": e.get("MacAddress", ""),
                           "IPv4Address": f"{e.get('IPAddress')}/{e.get('IPPrefixLen')}", "IPv6Address": ""}
    return out


def _users(net):
    """Names of containers (any state) whose config uses the network."""
    from hull.engine import records
    out = []
    for rec in records.all_records():
        eps = (rec.config.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        if rec.config["HostConfig"].get("NetworkMode") == net.name or net.name in eps:
            out.append(rec.name)
    return out


@click.group("network")
def network():
    """Manage networks."""


@network.command("create")
@click.option("--subnet", help="Subnet in CIDR format (default: a free /24 from 10.90.0.0/16).")
@click.option("--gateway", help="IPv4 gateway of the subnet (default: its first address).")
@click.option("--internal", is_flag=True, help="Restrict external access to the network (no NAT, no default route).")
@click.option("-d", "--driver", default="bridge", help="Driver (only bridge).")
@click.option("--disable-dns", is_flag=True, help="No name resolution between the network's containers.")
@click.option("--label", multiple=True, help="Set metadata on a network.")
@click.argument("name")
def create(name, subnet, gateway, internal, driver, disable_dns, label):
    """Create a network."""
    from hull.errors import UsageError
    from hull.network import config
    if driver != "bridge":
        raise UsageError(f"network driver {driver!r} is not supported: use bridge")
    labels = dict(lab.partition("=")[::2] for lab in label)
    net = config.create(name, subnet=subnet, gateway=gateway, internal=internal, labels=labels, dns=not disable_dns)
    click.echo(net.id)


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--format", "fmt", help="'json' or a Go-template-like string.")
@click.option("--no-trunc", is_flag=True)
def ls(quiet, fmt, no_trunc):
    """List networks."""
    from hull.network import config
    nets = config.all_networks()
    if quiet:
        for n in nets:
            click.echo(n.id if no_trunc else n.id[:12])
        return
    if fmt:
        from hull.engine import inspect as insp
        for n in nets:
            row = {"ID": n.id if no_trunc else n.id[:12], "Name": n.name, "Driver": "bridge", "Scope": "local",
                   "Subnet": n.subnet, "Internal": n.internal}
            click.echo(json.dumps(row) if fmt == "json" else insp.render(fmt.replace("table ", ""), row))
        return
    from hull.cli.containers import _table
    _table(("NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET", "INTERNAL"),
           [[n.id if no_trunc else n.id[:12], n.name, "bridge", "local", n.subnet, str(n.internal).lower()]
            for n in nets])


@network.command("inspect")
@click.option("-f", "--format", "fmt", help="Go-template-like string or 'json'.")
@click.argument("names", nargs=-1, required=True)
def inspect(names, fmt):
    """Display detailed information on one or more networks."""
    from hull.network import config
    out, failed = [], False
    for ref in names:
        try:
            net = config.load(ref)
        except NotFound as e:
            click.echo(f"Error: {e}", err=True)
            failed = True
            continue
        out.append(net.inspect(_attached(net)))
    if fmt and fmt != "json":
        from hull.engine import inspect as insp
        for o in out:
            click.echo(insp.render(fmt, o))
    else:
        click.echo(json.dumps(out, indent=4))
    if failed:
        sys.exit(1)


def _remove(net, force=False):
    from hull.network import config
    users = _users(net)
    if users:
        raise Conflict(f"network {net.name} is used by container(s) {', '.join(users)}: remove them "
                       "(or disconnect them) first")
    config.remove(net.name)


@network.command("rm")
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist.")
@click.argument("names", nargs=-1, required=True)
def rm(names, force):
    """Remove one or more networks."""
    from hull.network import config
    failed = False
    for ref in names:
        try:
            _remove(config.load(ref))
            click.echo(ref)
        except NotFound as e:
            if not force:
                click.echo(f"Error: {e}", err=True)
                failed = True
        except HullError as e:
            click.echo(f"Error: {e}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
def prune(force):
    """Remove all networks no container uses."""
    from hull.network import config
    removed = []
    for net in config.all_networks():
        if not _users(net):
            config.remove(net.name)
            removed.append(net.name)
    if removed:
        click.echo("Deleted Networks:")
        for n in removed:
            click.echo(n)


@network.command("connect")
@click.option("--ip", help="IPv4 address on the network.")
@click.option("--alias", multiple=True, help="Network-scoped alias for the container.")
@click.argument("name")
@click.argument("container")
def connect(name, container, ip, alias):
    """Connect a container to a network (now if it runs, else at its next start)."""
    from hull.engine import records
    from hull.network import config, endpoint
    net = config.load(name)
    rec = records.load(container)
    ep = {}
    if ip:
        ep["IPAMConfig"] = {"IPv4Address": ip}
    if alias:
        ep["Aliases"] = list(alias)
    if not endpoint.is_bridge_mode(rec.config["HostConfig"].get("NetworkMode")):
        raise HullError(f"container {rec.name} uses network mode {rec.config['HostConfig'].get('NetworkMode')}: "
                        "only containers on a bridge network can be connected to another")
    rec.refresh()
    if rec.status in ("running", "paused"):
        endpoint.connect(rec, net.name, ep)
    with rec.locked():
        rec.reload()
        eps = rec.config.setdefault("NetworkingConfig", {}).setdefault("EndpointsConfig", {})
        eps[net.name] = ep
        rec.save_config()


@network.command("disconnect")
@click.option("-f", "--force", is_flag=True)
@click.argument("name")
@click.argument("container")
def disconnect(name, container, force):
    """Disconnect a container from a network."""
    from hull.engine import records
    from hull.network import endpoint
    rec = records.load(container)
    if rec.config["HostConfig"].get("NetworkMode") == name:
        raise HullError(f"network {name} is the primary network of container {rec.name} (its NetworkMode); "
                        "it cannot be disconnected from it")
    rec.refresh()
    eps = (rec.config.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    if name not in eps:
        raise Conflict(f"container {rec.name} is not connected to network {name}")
    if rec.status in ("running", "paused"):
        endpoint.disconnect(rec, name)
    with rec.locked():
        rec.reload()
        rec.config["NetworkingConfig"]["EndpointsConfig"].pop(name, None)
        rec.save_config()


def register(group):
    group.add_command(network)
