"""`hull ns`: each container's namespaces next to the host's, read from /proc/<pid>/ns/*
(like lsns): type, inode, path, and whether the container shares it with the host."""

import os

TYPES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


def ns_inode(pid, kind):
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def host_namespaces():
    """The host's namespaces, from PID 1 (falls back to ours if PID 1 is unreadable)."""
    out = {}
    for t in TYPES:
        out[t] = ns_inode(1, t) or ns_inode("self", t)
    return out


def container_namespaces(pid):
    host = host_namespaces()
    out = []
    if not pid:
        return out
    for t in TYPES:
        ino = ns_inode(pid, t)
        if ino is None:
            continue
        out.append({"Type": t, "Inode": ino, "Path": f"/proc/{pid}/ns/{t}",
                    "Link": f"{t}:[{ino}]", "Host": ino == host.get(t)})
    return out


def table(recs):
    host = host_namespaces()
    headers = ("CONTAINER", "PID", "TYPE", "INODE", "HOST INODE", "ISOLATED", "PATH")
    rows = []
    for rec in recs:
        rec.refresh()
        pid = rec.state.get("Pid") if rec.status in ("running", "paused") else 0
        if not pid:
            rows.append([rec.name, "-", "-", "-", "-", "-", "(not running)"])
            continue
        for n in container_namespaces(pid):
            rows.append([rec.name, pid, n["Type"], n["Inode"], host.get(n["Type"]) or "-",
                         "no (host)" if n["Host"] else "yes", n["Path"]])
    return headers, rows
