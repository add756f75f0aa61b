"""The README's demo: run the bootstrapped busybox image with `hull run --rm`, a 64 MiB memory
limit and a pids limit of 64, and let the container show what it sees — PID 1, its own
hostname, its namespaces next to the host's, its limits read back from its cgroup."""

import os
import subprocess
import sys

SCRIPT = r"""
echo "PID inside:      $$ (own pid namespace: the container's first process is PID 1)"
echo "hostname:        $(hostname)"
echo "memory limit:    $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) bytes"
echo "pids limit:      $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
echo "namespaces (inside):"; for n in pid net mnt uts ipc cgroup; do echo "  $n $(readlink /proc/self/ns/$n)"; done
echo "interfaces:      $(ip -o -4 addr show | awk '{print $2, $4}' | tr '\n' ' ')(the default bridge, hull0)"
echo "processes:"; ps -o pid,comm
"""


def main():
    hull = os.path.join(os.path.dirname(sys.executable), "hull")
    print("namespaces (host):")
    for n in ("pid", "net", "mnt", "uts", "ipc", "cgroup"):
        print(f"  {n} {os.readlink(f'/proc/self/ns/{n}')}")
    print(f"\n$ hull run --rm --hostname hull-demo --memory 64m --pids-limit 64 busybox sh -c '…'\n", flush=True)
    return subprocess.call([hull, "run", "--rm", "--hostname", "hull-demo", "--memory", "64m",
                            "--pids-limit", "64", "busybox", "sh", "-c", SCRIPT])


if __name__ == "__main__":
    sys.exit(main())
