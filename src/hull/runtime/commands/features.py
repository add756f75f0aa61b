"""hull-runtime features — what this build and this host support (runtime-spec features.md)."""

import json
import sys

from hull import OCI_VERSION
from hull.kernel import mounts, namespaces


def features():
    from hull import cgroups
    from hull.kernel import capabilities, landlock, lsm, seccomp
    from hull.kernel import idmap
    mode = cgroups.detect_mode()
    idmapped = idmap.supported()
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted(set(mounts.FLAGS) | set(mounts.PROPAGATION) | {"tmpcopyup"} |
                              ({"idmap", "ridmap"} if idmapped else set())),
        "linux": {
            "namespaces": sorted(namespaces.TYPES),
            "capabilities": capabilities.all_names(),
            "cgroup": {"v1": mode != cgroups.UNIFIED, "v2": mode != cgroups.LEGACY, "systemd": False,
                       "systemdUser": False, "rdma": False},
            "seccomp": seccomp.features(),
            "apparmor": {"enabled": lsm.apparmor_enabled()},
            "selinux": {"enabled": lsm.selinux_enabled()},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": idmapped}},
        },
        "annotations": {
            "org.hull.landlock.abi": str(landlock.abi()),
            "org.hull.cgroup.mode": mode,
        },
    }


def add_arguments(p):
    pass


def run(ctx, args):
    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0
