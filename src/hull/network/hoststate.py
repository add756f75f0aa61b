"""What hull's networks change on the host outside their own bridges, and how it is undone.

The CNI bridge plugin turns on net.ipv4.ip_forward (host-wide) for a gateway bridge; the
firewall and portmap plugins leave their shared chains (CNI-FORWARD, CNI-ADMIN,
CNI-ISOLATION-STAGE-1/2, CNI-HOSTPORT-DNAT/-SETMARK/-MASQ) and per-bridge isolation rules
behind after DEL; and the bridge itself stays. hull undoes all of that:

- a host-wide ledger under /run/hull/network: one file per attached network namespace
  (`users/`), the sysctl values seen before the first attachment (`saved.json`);
- `release_bridge(name)` after a DEL: if no port is left on the bridge, its isolation rules
  go, then the bridge (with its per-interface sysctls such as route_localnet);
- `release(key)` after the last attachment on the host: the saved sysctls are restored and
  the shared CNI chains are removed if they hold nothing but the plugins' fixed rules (so
  another CNI user's rules are never touched).

Both wait LINGER seconds first (`HULL_NETWORK_LINGER`, default 2; 0 = at once): an emptied
bridge, its isolation rules and the host-wide state stay that long, so back-to-back `hull run`s
do not build and tear down the bridge, the CNI chains and the nft tables every time (Docker
keeps its bridge while dockerd runs). One detached reaper process per host (flock on
`reaper.lock`) waits for the deadlines in `idle/`, then removes what is still unused; an
attachment that comes first cancels it (`claim_bridge`, `acquire`). `hull network rm` removes
an idle bridge at once (`drop_bridge`).

Per bridge, not per container: the firewall plugin runs for a bridge's first container (its
isolation rules, ingressPolicy same-bridge); then `bridge_rules` adds the bridge's FORWARD
accepts and its outbound NAT in one iptables-restore; later containers run only the bridge
plugin (veth, host-local, routes). All of it goes with the bridge.
"""

import json
import os
import subprocess

from hull.network import lock

SYSCTLS = ("net/ipv4/ip_forward",)
STATE_DIR = "/run/hull/network"
_FILTER_CHAINS = ("CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2", "CNI-FORWARD", "CNI-ADMIN")
_NAT_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ")


def state_dir():
    return os.environ.get("HULL_NETWORK_STATE") or STATE_DIR


def _users():
    d = os.path.join(state_dir(), "users")
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        p = os.path.join(d, n)
        try:
            with open(p) as f:
                netns_path = f.read().strip()
        except OSError:
            continue
        if netns_path and not os.path.exists(netns_path):
            os.unlink(p)  # its owner crashed and its netns is gone: not a user any more
            continue
        out.append(n)
    return out


def _read_sysctl(name):
    with open("/proc/sys/" + name) as f:
        return f.read().strip()


def _write_sysctl(name, value):
    with open("/proc/sys/" + name, "w") as f:
        f.write(value)


def _key(netns_path):
    return netns_path.strip("/").replace("/", "_")


def linger():
    try:
        return max(0.0, float(os.environ.get("HULL_NETWORK_LINGER", "2")))
    except ValueError:
        return 2.0


def _idle(name):
    return os.path.join(state_dir(), "idle", name)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def acquire(netns_path):
    """Before a CNI ADD: remember the sysctls if this is the host's first attachment."""
    with lock.held(os.path.join(state_dir(), "lock")):
        _unlink(_idle(".host"))
        saved = os.path.join(state_dir(), "saved.json")
        if not _users() or not os.path.exists(saved):
            if not os.path.exists(saved):
                data = {}
                for s in SYSCTLS:
                    try:
                        data[s] = _read_sysctl(s)
                    except OSError:
                        pass
                data["nft_tables"] = _nft_tables()
                with open(saved + ".tmp", "w") as f:
                    json.dump(data, f)
                os.rename(saved + ".tmp", saved)
        d = os.path.join(state_dir(), "users")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, _key(netns_path)), "w") as f:
            f.write(netns_path)


def release(netns_path):
    """After the DELs of a namespace: drop it from the ledger; the last one restores the host."""
    with lock.held(os.path.join(state_dir(), "lock")):
        try:
            os.unlink(os.path.join(state_dir(), "users", _key(netns_path)))
        except FileNotFoundError:
            pass
        if _users():
            return
        if linger():
            _mark_idle(".host", {})
            return
        _restore_host()


def _restore_host():
    """(Ledger lock held, no user left.) Sysctls back, shared chains and new empty tables gone."""
    saved = os.path.join(state_dir(), "saved.json")
    try:
        with open(saved) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    tables_before = data.pop("nft_tables", None)
    for name, value in data.items():
        try:
            if _read_sysctl(name) != value:
                _write_sysctl(name, value)
        except OSError:
            pass
    try:
        os.unlink(saved)
    except FileNotFoundError:
        pass
    _drop_shared_chains()
    if tables_before is not None:
        _drop_new_empty_tables(tables_before)


# ------------------------------------------------------------------------------ iptables
# One iptables-save to read, one iptables-restore --noflush to change: each iptables call
# costs ~10 ms here, and a teardown would otherwise make a dozen.
def _save():
    """{table: {chain: [rule lines "-A CHAIN ..."]}} from iptables-save (chains with no rule too)."""
    p = subprocess.run(["iptables-save"], capture_output=True, text=True)
    tables, table = {}, None
    for line in p.stdout.splitlines():
        if line.startswith("*"):
            table = tables.setdefault(line[1:], {})
        elif line.startswith(":") and table is not None:
            table.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A ") and table is not None:
            table.setdefault(line.split()[1], []).append(line)
    return tables


def _restore(changes, check=False):
    """changes: {table: [lines]} for iptables-restore --noflush."""
    text = ""
    for table, lines in changes.items():
        if lines:
            text += f"*{table}\n" + "".join(ln + "\n" for ln in lines) + "COMMIT\n"
    if text:
        p = subprocess.run(["iptables-restore", "-w", "--noflush"], input=text, capture_output=True, text=True)
        if check and p.returncode != 0:
            from hull.errors import HullError
            raise HullError(f"iptables-restore failed: {p.stderr.strip()} (rules: {text.strip()!r})")


def _as_delete(rule):
    return "-D" + rule[2:]


def _has_ports(bridge):
    brif = f"/sys/class/net/{bridge}/brif"
    return os.path.isdir(brif) and bool(os.listdir(brif))


def claim_bridge(bridge):
    """(Bridge lock held) before an ADD on it: an idle bridge is in use again."""
    if bridge:
        _unlink(_idle(bridge))


def firewall_needed(bridge):
    """(Bridge lock held) Whether this ADD must run the firewall plugin: for the bridge's first
    container (it makes the bridge's isolation rules, which stay until the bridge goes); later
    ones are covered by the bridge's rules (bridge_rules)."""
    return not (bridge and os.path.exists(os.path.join(state_dir(), "bridges", bridge))
                and os.path.isdir(f"/sys/class/net/{bridge}"))


def bridge_rules(bridge, subnet, masquerade):
    """(Bridge lock held) After the firewall plugin's ADD on the bridge: hull's per-bridge rules,
    in one iptables-restore, removed with the bridge —
    - FORWARD accepts for the subnet in CNI-FORWARD (from the bridge; replies into it), as
      Docker (docker0) and netavark (per network) have, instead of the firewall plugin's two
      rules per container (~30 iptables runs per container to add, check and delete);
    - outbound NAT, one POSTROUTING rule (not to the bridge itself or multicast, as the bridge
      plugin's ipMasq), instead of the bridge plugin's per-container chain (~15 runs)."""
    c = _rule_comment(bridge)
    filt = [f"-A CNI-FORWARD -s {subnet} -i {bridge} -m comment --comment {c} -j ACCEPT",
            f"-A CNI-FORWARD -d {subnet} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED "
            f"-m comment --comment {c} -j ACCEPT"]
    nat = [f"-A POSTROUTING -s {subnet} ! -d 224.0.0.0/4 ! -o {bridge} -m comment --comment {c} -j MASQUERADE"]
    _restore({"filter": filt, "nat": nat if masquerade else []}, check=True)
    d = os.path.join(state_dir(), "bridges")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, bridge), "w") as f:
        f.write(subnet)


def _rule_comment(bridge):
    return f"hull-bridge:{bridge}"


def release_bridge(bridge, lock_path=None):
    """(Bridge lock held) after a DEL: if no port is left on the bridge, it goes LINGER seconds
    later (at once when LINGER is 0), unless an ADD claims it first."""
    if not bridge or _has_ports(bridge):
        return
    if linger() and lock_path:
        with lock.held(os.path.join(state_dir(), "lock")):
            _mark_idle(bridge, {"lock": lock_path})
        return
    _remove_bridge(bridge)


def drop_bridge(bridge):
    """The network is being removed: its bridge goes now if it has no port."""
    if bridge and not _has_ports(bridge):
        _remove_bridge(bridge)


def _remove_bridge(bridge):
    """Drop the bridge's isolation, forward and masquerade rules, then the bridge."""
    _unlink(os.path.join(state_dir(), "bridges", bridge))
    _unlink(_idle(bridge))
    saved = _save()
    filt = saved.get("filter", {})
    dels = []
    for chain in ("CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"):
        for r in filt.get(chain, ()):
            words = r.split()
            if any(words[i] in ("-i", "-o") and words[i + 1] == bridge for i in range(len(words) - 1)):
                dels.append(_as_delete(r))
    ours = lambda r: _rule_comment(bridge) in r.replace('"', "").split()  # noqa: E731
    dels += [_as_delete(r) for r in filt.get("CNI-FORWARD", ()) if ours(r)]
    nat = [_as_delete(r) for r in saved.get("nat", {}).get("POSTROUTING", ()) if ours(r)]
    _restore({"filter": dels, "nat": nat})
    if os.path.isdir(f"/sys/class/net/{bridge}"):
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def _only_fixed(rules, chain):
    """True if the chain holds only the rules the plugins put in every time."""
    for r in rules:
        if chain in ("CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2") and r.endswith("-j RETURN"):
            continue
        if chain == "CNI-FORWARD" and r.endswith("-j CNI-ADMIN"):
            continue
        if chain == "CNI-HOSTPORT-SETMARK" and "MARK --set-xmark" in r:
            continue
        if chain == "CNI-HOSTPORT-MASQ" and "-j MASQUERADE" in r and "--mark" in r:
            continue
        return False
    return True


def _drop_shared_chains():
    saved = _save()
    changes = {}
    for table, chains in (("filter", _FILTER_CHAINS), ("nat", _NAT_CHAINS)):
        rules = saved.get(table, {})
        present = [c for c in chains if c in rules]
        if not present or not all(_only_fixed(rules[c], c) for c in present):
            continue
        lines = []
        for chain, rs in rules.items():
            if chain in present:
                continue
            lines += [_as_delete(r) for r in rs if any(r.endswith(f"-j {c}") for c in present)]
        lines += [f"-F {c}" for c in present] + [f"-X {c}" for c in present]
        changes[table] = lines
    _restore(changes)


# ------------------------------------------------------------------------------ the reaper
def _mark_idle(name, data):
    """(Ledger lock held) `name` (a bridge, or .host) is unused from now: note its deadline and
    make sure a reaper runs."""
    import time
    d = os.path.join(state_dir(), "idle")
    os.makedirs(d, exist_ok=True)
    data = dict(data, deadline=time.time() + linger())
    with open(_idle(name) + ".tmp", "w") as f:
        json.dump(data, f)
    os.rename(_idle(name) + ".tmp", _idle(name))
    _spawn_reaper()


def _spawn_reaper():
    """(Ledger lock held) Start the reaper unless one runs (it holds reaper.lock for its life;
    it only exits with the ledger lock held and nothing idle, so no deadline is missed)."""
    import fcntl
    fd = os.open(os.path.join(state_dir(), "reaper.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return
    pid = os.fork()
    if pid == 0:  # double fork: the reaper is nobody's child here, and holds the lock
        try:
            os.setsid()
            if os.fork() == 0:
                _reaper_main(fd)
        finally:
            os._exit(0)
    os.close(fd)
    os.waitpid(pid, 0)


def _reaper_main(lockfd):
    import fcntl
    import time
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for i in (0, 1, 2):
            os.dup2(null, i)
        keep = sorted({0, 1, 2, lockfd})
        for a, b in zip(keep, keep[1:] + [65536]):
            os.closerange(a + 1, b)
        os.chdir("/")
        while True:
            now = time.time()
            due, wait = [], None
            for name in _idle_names():
                data = _read_idle(name)
                if data is None:
                    continue
                left = data.get("deadline", 0) - now
                if left <= 0:
                    due.append((name, data))
                else:
                    wait = left if wait is None else min(wait, left)
            for name, data in sorted(due, key=lambda x: x[0] == ".host"):  # bridges first
                _reap(name, data)
            with lock.held(os.path.join(state_dir(), "lock")):
                if not _idle_names():  # a later idle entry (ledger lock held) starts a new reaper
                    fcntl.flock(lockfd, fcntl.LOCK_UN)
                    os._exit(0)
            time.sleep(min(wait if wait is not None else 0.05, 5) + 0.01)
    finally:
        os._exit(0)


def _idle_names():
    try:
        return sorted(n for n in os.listdir(os.path.join(state_dir(), "idle")) if not n.endswith(".tmp"))
    except FileNotFoundError:
        return []


def _read_idle(name):
    try:
        with open(_idle(name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _reap(name, data):
    import time
    if name == ".host":
        with lock.held(os.path.join(state_dir(), "lock")):
            cur = _read_idle(name)
            if cur is None or cur.get("deadline", 0) > time.time():
                return
            os.unlink(_idle(name))
            if not _users():
                _restore_host()
        return
    path = data.get("lock") or os.path.join(state_dir(), "lock.bridges")
    if not os.path.exists(path):
        path = os.path.join(state_dir(), "lock.bridges")
    with lock.held(path):  # the bridge's lock, as ADD/DEL take it
        cur = _read_idle(name)
        if cur is None or cur.get("deadline", 0) > time.time():
            return
        _unlink(_idle(name))
        if not _has_ports(name):
            _remove_bridge(name)


# ------------------------------------------------------------------------------ nftables
def _nft_tables():
    p = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return sorted(line.strip() for line in p.stdout.splitlines() if line.startswith("table "))


def _drop_new_empty_tables(before):
    """iptables-nft creates `table ip filter`/`ip nat` on first use: if they were not there
    before hull's first attachment and hold no rule now, they go again."""
    p = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True)
    try:
        items = json.loads(p.stdout).get("nftables", [])
    except ValueError:
        return
    tables = {(i["table"]["family"], i["table"]["name"]) for i in items if "table" in i}
    busy = {(i["rule"]["family"], i["rule"]["table"]) for i in items if "rule" in i}
    doomed = [t for t in tables if f"table {t[0]} {t[1]}" not in before and t not in busy]
    if doomed:
        subprocess.run(["nft", "-f", "-"], input="".join(f"delete table {f} {n}\n" for f, n in doomed),
                       capture_output=True, text=True)
