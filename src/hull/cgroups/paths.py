"""linux.cgroupsPath -> the absolute cgroup path hull manages (cgroups.resolve_path)."""

from hull.cgroups import FORBIDDEN, HULL_PARENT
from hull.errors import SpecError


def _check_components(path, field):
    for part in path.split("/"):
        if part in ("..", "."):
            raise SpecError(field, f"{path!r} must not contain '{part}' (it would escape hull's cgroup parent)")
        if "\n" in part or "\0" in part:
            raise SpecError(field, f"{path!r} contains a forbidden character")


def _expand_slice(slice_name, field):
    """systemd slice 'a-b.slice' -> '/a.slice/a-b.slice' (as systemd lays it out); '-.slice' -> ''."""
    if slice_name in ("", "-.slice"):
        return ""
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise SpecError(field, f"{slice_name!r} is not a systemd slice name (like 'machine.slice')")
    stem = slice_name[: -len(".slice")]
    if not stem or stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise SpecError(field, f"{slice_name!r} is not a valid systemd slice name")
    out, prefix = [], ""
    for comp in stem.split("-"):
        prefix = f"{prefix}-{comp}" if prefix else comp
        out.append(prefix + ".slice")
    return "/" + "/".join(out)


def resolve_path(cgroups_path, container_id, systemd=False):
    """linux.cgroupsPath -> an absolute cgroup path.

    - absolute: as given (no '..'/'.' components, not '/', not the machine's own subtree);
    - relative or empty: under hull's parent, "/hull/<relative or id>" — never under the
      caller's cgroup;
    - systemd "slice:prefix:name": the cgroupfs path systemd would use,
      "/<slice tree>/<prefix>-<name>.scope" (hull manages it through cgroupfs).
    """
    field = "linux.cgroupsPath"
    p = cgroups_path or ""
    if not isinstance(p, str):
        raise SpecError(field, f"must be a string, got {p!r}")
    if systemd:
        if not p:
            p = f"system.slice:hull:{container_id}"
        parts = p.split(":")
        if len(parts) != 3:
            raise SpecError(field, f"{p!r}: with --systemd-cgroup the path must be 'slice:prefix:name'")
        slice_name, prefix, name = parts
        for part in (slice_name, prefix, name):
            _check_components(part, field)
            if "/" in part:
                raise SpecError(field, f"{p!r}: systemd path components must not contain '/'")
        if not name:
            name = container_id
        base = _expand_slice(slice_name or "system.slice", field)
        if name.endswith(".slice"):
            path = f"{base}/{name}"  # the unit is itself a slice, below the parent slice
        else:
            path = f"{base}/{prefix}-{name}.scope" if prefix else f"{base}/{name}.scope"
    elif p.startswith("/"):
        path = "/" + "/".join(x for x in p.split("/") if x)
        _check_components(path, field)
    else:
        rel = p or container_id
        if not rel:
            raise SpecError(field, "empty cgroupsPath and no container id")
        _check_components(rel, field)
        path = HULL_PARENT + "/" + "/".join(x for x in rel.split("/") if x)
    if path in ("", "/"):
        raise SpecError(field, f"{cgroups_path!r} resolves to the root cgroup; hull will not manage it")
    for bad in FORBIDDEN:
        if path == bad or path.startswith(bad + "/"):
            raise SpecError(field, f"{path!r} is inside {bad}, which belongs to the machine's "
                                   "management; use a path under /hull")
    return path
