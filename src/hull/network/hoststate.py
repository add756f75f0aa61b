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
"""

import json
import os
import subprocess

from hull.network import lock

SYSCTLS = ("net/ipv4/ip_forward",)
STATE_DIR = "/run/hull/network"
_FILTER_CHAINS = ("CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2", "CNI-FORWARD", "CNI-ADMIN")
_NAT_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ")


def _dir():
    return os.environ.get("HULL_NETWORK_STATE") or STATE_DIR


def _users():
    d = os.path.join(_dir(), "users")
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


def acquire(netns_path):
    """Before a CNI ADD: remember the sysctls if this is the host's first attachment."""
    with lock.held(os.path.join(_dir(), "lock")):
        saved = os.path.join(_dir(), "saved.json")
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
        d = os.path.join(_dir(), "users")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, _key(netns_path)), "w") as f:
            f.write(netns_path)


def release(netns_path):
    """After the DELs of a namespace: drop it from the ledger; the last one restores the host."""
    with lock.held(os.path.join(_dir(), "lock")):
        try:
            os.unlink(os.path.join(_dir(), "users", _key(netns_path)))
        except FileNotFoundError:
            pass
        if _users():
            return
        saved = os.path.join(_dir(), "saved.json")
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


def _restore(changes):
    """changes: {table: [lines]} for iptables-restore --noflush."""
    text = ""
    for table, lines in changes.items():
        if lines:
            text += f"*{table}\n" + "".join(ln + "\n" for ln in lines) + "COMMIT\n"
    if text:
        subprocess.run(["iptables-restore", "-w", "--noflush"], input=text, capture_output=True, text=True)


def _as_delete(rule):
    return "-D" + rule[2:]


def release_bridge(bridge):
    """The bridge has no port left: drop its isolation rules, then the bridge."""
    if not bridge:
        return
    brif = f"/sys/class/net/{bridge}/brif"
    if os.path.isdir(brif) and os.listdir(brif):
        return
    filt = _save().get("filter", {})
    dels = []
    for chain in ("CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"):
        for r in filt.get(chain, ()):
            words = r.split()
            if any(words[i] in ("-i", "-o") and words[i + 1] == bridge for i in range(len(words) - 1)):
                dels.append(_as_delete(r))
    _restore({"filter": dels})
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
