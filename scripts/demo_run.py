"""Run the bootstrapped busybox image under hull-runtime with limits; clean up afterwards."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from hull.image import snapshot, store
from hull.runtime.spec_default import default_spec

SCRIPT = r"""
echo "PID inside:      $$ (own pid namespace)"
echo "hostname:        $(hostname)"
echo "memory limit:    $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "pids limit:      $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
echo "namespaces:"; for n in pid net mnt uts ipc cgroup; do echo "  $n $(readlink /proc/self/ns/$n)"; done
echo "processes:"; ps -o pid,comm
"""


def main():
    bindir = os.path.dirname(sys.executable)
    work = tempfile.mkdtemp(prefix="hull-demo-")
    image = store.resolve("busybox")
    rootfs = snapshot.prepare(image, work)
    try:
        spec = default_spec(terminal=False, with_docker_seccomp=True)
        spec["root"] = {"path": str(rootfs)}
        spec["process"]["args"] = ["sh", "-c", SCRIPT]
        spec["hostname"] = "hull-demo"
        spec["linux"]["resources"]["memory"] = {"limit": 64 * 1024 * 1024}
        spec["linux"]["resources"]["pids"] = {"limit": 64}
        with open(os.path.join(work, "config.json"), "w") as f:
            json.dump(spec, f)
        print(f"host's own pid namespace: {os.readlink('/proc/self/ns/pid')}\n")
        return subprocess.call([os.path.join(bindir, "hull-runtime"), "run", "--bundle", work,
                                f"hull-demo-{os.getpid()}"])
    finally:
        snapshot.remove(work)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
