#!/usr/bin/env python3
"""Run a command inside a throw-away qemu VM that has real cgroup v2 controllers.

    python tests/vm/vmrun.py [options] -- <command...>

This host has cgroup v1 in hybrid mode (no v2 controllers), so cgroup v2 code is tested in a VM:

- Debian's ``linux-image-amd64`` kernel (6.1), found installed (/boot + /lib/modules) or fetched
  with ``apt-get download`` into a cache dir, its vmlinuz unpacked once to an ELF vmlinux that
  qemu's ``microvm`` machine boots through the PVH entry (no in-guest decompression);
- single-threaded TCG (``/dev/kvm`` is unusable here; multi-threaded TCG hung at boot sometimes);
- a small initramfs: static busybox + the virtio-mmio/9p/overlay/virtio-console modules, whose
  /init mounts the host's ``/`` read-only over virtio-9p with a tmpfs overlay on top, mounts the
  shared work dirs (default: this repository) read-write at the same paths, fresh tmpfs on
  /tmp and /run, ``switch_root``s and mounts cgroup2 at /sys/fs/cgroup (kernel booted with
  ``cgroup_no_v1=all``) with every controller enabled in the root's ``cgroup.subtree_control``;
- the command runs as root in the same cwd with a filtered copy of the environment, its stdout
  and stderr come back over virtio-serial ports and are streamed here, its exit code comes back
  over a third port and becomes this script's exit code.

Inside the VM: ``HULL_IN_VM=1``, and a sparse scratch disk is at ``/dev/vda``
(``HULL_VM_SCRATCH_DISK``) for io.max tests. Guest writes outside the shared dirs are lost.

Exit codes: the command's, 124 on --timeout, 125 when the VM could not run the command
(the reason and the kernel console tail go to stderr), 3 from ``--check`` when the VM cannot
be used here (qemu or kernel package missing; the reason is printed).

Built artifacts are cached by content in ``$HULL_VM_CACHE`` (default /var/cache/hull-vm for
root, else ~/.cache/hull-vm); a second run only boots. More in tests/vm/README.md.
"""

import argparse
import hashlib
import io
import json
import lzma
import os
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent

# Modules the initramfs loads (dependencies are added from each module's .modinfo).
WANTED_MODULES = ["virtio_mmio", "virtio_console", "virtio_blk", "9pnet_virtio", "9p", "overlay"]

# Environment passed into the VM: these names, anything starting with these prefixes, and --env.
ENV_NAMES = {"PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "VIRTUAL_ENV", "USER", "LOGNAME",
             "COLUMNS", "NO_COLOR", "FORCE_COLOR"}
ENV_PREFIXES = ("LC_", "HULL_", "PYTHON")
ENV_DROP = {"PYTHONSTARTUP", "HULL_VM_CACHE", "HULL_VM_KERNEL", "HULL_VM_MODULES"}

NINEP_OPTS = "trans=virtio,version=9p2000.L,msize=262144"


class Unavailable(Exception):
    """The VM cannot be used on this machine (message says what is missing and how to fix)."""


def log(msg):
    print(f"vmrun: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Locating things

def cache_dir() -> Path:
    env = os.environ.get("HULL_VM_CACHE")
    if env:
        d = Path(env)
    elif os.geteuid() == 0:
        d = Path("/var/cache/hull-vm")
    else:
        d = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hull-vm"
    d.mkdir(parents=True, exist_ok=True)
    return d


def find_qemu() -> str:
    q = shutil.which("qemu-system-x86_64")
    if not q:
        raise Unavailable("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    return q


def find_busybox() -> Path:
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            # must be static: it runs before any library is reachable
            with open(p, "rb") as f:
                head = f.read(4096)
            if b"/lib64/ld-linux" not in head and b"/lib/ld-linux" not in head:
                return Path(p)
    raise Unavailable("a static busybox is needed for the VM's initramfs (apt-get install busybox-static)")


def _kernel_version_key(v: str):
    return [int(x) if x.isdigit() else x for x in v.replace("-", ".").split(".")]


def _installed_kernel():
    """(vmlinuz, modules dir) of an installed Debian amd64 kernel package, or None."""
    found = []
    for vmlinuz in Path("/boot").glob("vmlinuz-*-amd64"):
        ver = vmlinuz.name[len("vmlinuz-"):]
        mods = Path("/lib/modules") / ver
        if (mods / "kernel").is_dir():
            found.append((ver, vmlinuz, mods))
    if not found:
        return None
    ver, vmlinuz, mods = max(found, key=lambda t: _kernel_version_key(t[0]))
    return vmlinuz, mods


def _apt_kernel_package() -> str:
    """linux-image-amd64's dependency, e.g. linux-image-6.1.0-57-amd64."""
    try:
        out = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"cannot ask apt for the kernel package: {e}")
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split()[-1]
    raise Unavailable("apt does not know linux-image-amd64 (run apt-get update, or "
                      "apt-get install linux-image-amd64)")


def _downloaded_kernel(cache: Path, allow_download: bool):
    """Fetch the kernel .deb with `apt-get download` and unpack it under the cache."""
    kroot = cache / "kernel"
    # An unpacked tree from an earlier run: use the newest (HULL_VM_REFRESH=1 asks apt whether
    # linux-image-amd64 now points at a newer one).
    have = sorted((d for d in kroot.glob("linux-image-*") if (d / ".complete").exists()),
                  key=lambda d: _kernel_version_key(d.name))
    pkg = None
    if have and not os.environ.get("HULL_VM_REFRESH"):
        pass
    elif allow_download and shutil.which("apt-get"):
        try:
            pkg = _apt_kernel_package()
        except Unavailable:
            if not have:
                raise
    if pkg is None:
        if not have:
            raise Unavailable("no Debian kernel: apt-get install linux-image-amd64 (or let vmrun "
                              "fetch it: it runs `apt-get download`)")
        tree = have[-1]
    else:
        tree = kroot / pkg
        if not (tree / ".complete").exists():
            log(f"fetching {pkg} with apt-get download (once; cached in {kroot})")
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                r = subprocess.run(["apt-get", "download", pkg], cwd=tmp, capture_output=True,
                                   text=True)
                debs = list(Path(tmp).glob("*.deb"))
                if r.returncode != 0 or not debs:
                    raise Unavailable(f"`apt-get download {pkg}` failed: {r.stderr.strip()[-500:]}")
                x = Path(tmp) / "x"
                subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(x)], check=True)
                if tree.exists():
                    shutil.rmtree(tree)
                tree.mkdir(parents=True)
                vmlinuz = next((x / "boot").glob("vmlinuz-*"))
                shutil.copy2(vmlinuz, tree / "vmlinuz")
                for cfg in (x / "boot").glob("config-*"):
                    shutil.copy2(cfg, tree / "config")
                (tree / "version").write_text(vmlinuz.name[len("vmlinuz-"):])
                # keep only the modules directory (drop docs etc.)
                mods = next((x / "lib/modules").iterdir())
                shutil.move(str(mods), tree / "modules")
                (tree / ".complete").write_text(pkg + "\n")
    return tree / "vmlinuz", tree / "modules"


def find_kernel(cache: Path, allow_download: bool = True):
    """(vmlinuz, modules dir). Order: $HULL_VM_KERNEL/$HULL_VM_MODULES, an installed
    linux-image-*-amd64, a cached or freshly downloaded copy of linux-image-amd64's kernel."""
    k, m = os.environ.get("HULL_VM_KERNEL"), os.environ.get("HULL_VM_MODULES")
    if k or m:
        if not (k and m and os.path.exists(k) and os.path.isdir(m)):
            raise Unavailable("HULL_VM_KERNEL must name a vmlinuz and HULL_VM_MODULES its "
                              "/lib/modules/<version> dir")
        return Path(k), Path(m)
    inst = _installed_kernel()
    if inst:
        return inst
    return _downloaded_kernel(cache, allow_download)


# ---------------------------------------------------------------------------------------------
# TSC rate. Under TCG the guest's TSC ticks at the host's TSC rate, and the guest's own
# calibration against the emulated PIT fails on a loaded host ("tsc: Unable to calibrate
# against PIT"), after which boot hangs. So tell the guest the rate: tsc_early_khz=.

_RDTSC = bytes.fromhex("0f31" "48c1e220" "4809d0" "c3")  # rdtsc; shl rdx,32; or rax,rdx; ret


def host_tsc_khz():
    env = os.environ.get("HULL_VM_TSC_KHZ")
    if env:
        return int(env)
    try:
        import ctypes
        import mmap
        buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        buf.write(_RDTSC)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        rdtsc = ctypes.CFUNCTYPE(ctypes.c_uint64)(addr)
        best = None
        for _ in range(3):  # shortest bracket wins: least disturbed by preemption
            t0, c0 = time.perf_counter_ns(), rdtsc()
            time.sleep(0.03)
            c1, t1 = rdtsc(), time.perf_counter_ns()
            khz = (c1 - c0) * 1_000_000 // (t1 - t0)
            best = khz if best is None else max(best, khz)
        del rdtsc, addr
        return int(best)
    except Exception:  # not x86, no exec mappings: fall back to /proc/cpuinfo
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(float(line.split(":")[1]) * 1000)
    return None


def kernel_hz(vmlinuz: Path) -> int:
    """CONFIG_HZ of the kernel (its config file sits next to it); Debian's 250 if unknown."""
    for cfg in (vmlinuz.parent / "config", vmlinuz.parent / vmlinuz.name.replace("vmlinuz", "config")):
        try:
            for line in cfg.read_text().splitlines():
                if line.startswith("CONFIG_HZ="):
                    return int(line.split("=")[1])
        except OSError:
            pass
    return 250


# ---------------------------------------------------------------------------------------------
# Kernel image: unpack bzImage → vmlinux (PVH-bootable ELF) once

def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _has_pvh_note(elf: bytes) -> bool:
    """True when the ELF has a Xen PHYS32_ENTRY note: qemu can boot it directly (PVH)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        return False
    e_phoff, = struct.unpack_from("<Q", elf, 0x20)
    e_phentsize, e_phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        p_type, = struct.unpack_from("<I", elf, off)
        if p_type != 4:  # PT_NOTE
            continue
        p_offset, = struct.unpack_from("<Q", elf, off + 8)
        p_filesz, = struct.unpack_from("<Q", elf, off + 32)
        pos, end = p_offset, p_offset + p_filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:
                return True
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


def unpacked_kernel(vmlinuz: Path, cache: Path) -> Path:
    """An uncompressed vmlinux for vmlinuz (cached by its hash); the bzImage if that fails."""
    key = _sha256_file(vmlinuz)[:16]
    out = cache / f"vmlinux-{key}"
    if out.exists():
        return out
    bz = out.with_suffix(".bzimage")
    if bz.exists():  # unpacking failed before: boot the bzImage
        return vmlinuz
    data = vmlinuz.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    elf = b""
    if start >= 0:
        try:
            d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            elf = d.decompress(data[start:])
        except lzma.LZMAError:
            elf = b""
    if elf and _has_pvh_note(elf):
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(elf)
        os.replace(tmp, out)
        return out
    log(f"{vmlinuz} could not be unpacked to a PVH vmlinux; booting the bzImage (slower)")
    bz.write_text("")
    return vmlinuz


# ---------------------------------------------------------------------------------------------
# Modules: dependencies from .modinfo, no depmod needed

def _module_bytes(path: Path) -> bytes:
    """A module's ELF bytes; .ko.xz (newer Debian kernels) is decompressed."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        data = lzma.decompress(data)
    if data[:4] != b"\x7fELF":
        raise Unavailable(f"{path} is not an ELF module (only .ko and .ko.xz are supported)")
    return data


def _module_name(path: Path) -> str:
    """File name in the initramfs: always uncompressed .ko."""
    return path.name.split(".ko")[0] + ".ko"


def _modinfo(path: Path) -> dict:
    data = _module_bytes(path)
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def sect(i):
        off = e_shoff + i * e_shentsize
        name, = struct.unpack_from("<I", data, off)
        offset, size = struct.unpack_from("<QQ", data, off + 24)
        return name, offset, size

    _, stroff, _ = sect(e_shstrndx)
    info = {}
    for i in range(e_shnum):
        name, offset, size = sect(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            for item in data[offset:offset + size].split(b"\0"):
                if b"=" in item:
                    k, v = item.decode(errors="replace").split("=", 1)
                    info.setdefault(k, v)
    return info


def module_load_order(moddir: Path, wanted):
    """Paths of the wanted modules and their dependencies, dependencies first. Built-in
    modules (modules.builtin) are left out."""
    norm = lambda n: n.replace("-", "_")
    index = {}
    for p in (moddir / "kernel").rglob("*.ko*"):
        if p.name.endswith((".ko", ".ko.xz")):
            index[norm(p.name.split(".ko")[0])] = p
    builtin = set()
    bfile = moddir / "modules.builtin"
    if bfile.exists():
        builtin = {norm(Path(line.strip()).name[:-3]) for line in bfile.read_text().splitlines() if line.strip()}
    order, seen = [], set()

    def visit(name):
        name = norm(name)
        if name in seen or name in builtin:
            return
        if name not in index:
            raise Unavailable(f"kernel module {name} not found under {moddir}")
        seen.add(name)
        deps = _modinfo(index[name]).get("depends", "")
        for dep in filter(None, deps.split(",")):
            visit(dep)
        order.append(index[name])

    for w in wanted:
        visit(w)
    return order


# ---------------------------------------------------------------------------------------------
# initramfs (newc cpio, written here; no cpio binary needed)

class Cpio:
    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0))
        self.ino += 1
        self.buf.write(hdr.encode() + name_b)
        self.buf.write(b"\0" * (-(110 + len(name_b)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def dir(self, name, mode=0o755):
        self._entry(name, 0o040000 | mode)

    def file(self, name, data, mode=0o644):
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name, target):
        self._entry(name, 0o120777, target.encode())

    def chardev(self, name, major, minor, mode=0o600):
        self._entry(name, 0o020000 | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self.buf.write(b"\0" * (-self.buf.tell() % 512))
        return self.buf.getvalue()


# Stage 1: PID 1 in the initramfs. Loads modules, assembles the new root, switch_root.
INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot /lower /upper
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "hull-vm init: $*" >/dev/console; poweroff -f; reboot -f; }
mark() { read up idle </proc/uptime; echo "hull-vm: $up s $1" >/dev/console; }
mark "init"
while read m; do insmod "/lib/modules/$m" || fail "insmod $m failed"; done </modules.order
mount9p() {  # tag dir opts: retry while the virtio devices are being probed
    i=0
    until mount -t 9p -o "$3" "$1" "$2" 2>/dev/null; do
        i=$((i+1)); [ $i -gt 100 ] && { mount -t 9p -o "$3" "$1" "$2"; fail "cannot mount 9p $1 on $2"; }
        sleep 0.05
    done
}
mark "modules loaded"
mount9p hostroot /lower "@NINEP@,ro,cache=loose"
mount -t tmpfs -o mode=0755 upper /upper
mkdir -p /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot || fail "overlay root failed"
for d in /tmp /run /var/tmp; do
    [ -d /newroot$d ] && mount -t tmpfs -o mode=1777 tmpfs /newroot$d
done
chmod 755 /newroot/run
while read tag path; do
    mkdir -p "/newroot$path" 2>/dev/null
    mount9p "$tag" "/newroot$path" "@NINEP@,cache=loose"
done </job/shares
mkdir -p /newroot/run/hull-vm
cp /bin/busybox /job/* /newroot/run/hull-vm/
mark "root assembled"
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /run/hull-vm/busybox sh /run/hull-vm/stage2
fail "switch_root failed"
"""

# Stage 2: PID 1 in the real (overlay) root. Sets up cgroup2 and the rest, runs the job.
STAGE2 = r"""BB=/run/hull-vm/busybox
mark() { read up idle </proc/uptime; echo "hull-vm: $up s $1" >/dev/console; }
mark "switched root"
echo -1000 >/proc/self/oom_score_adj  # a global OOM in a test must not kill PID 1 (panic)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
$BB mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for c in $($BB cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control
done
$BB mkdir -p /dev/pts /dev/shm /dev/mqueue
$BB mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
$BB mount -t tmpfs -o mode=1777 shm /dev/shm
$BB mount -t mqueue mqueue /dev/mqueue 2>/dev/null
mark "cgroup2 ready"
$BB ln -sf /proc/self/fd /dev/fd
$BB ln -sf /proc/self/fd/0 /dev/stdin
$BB ln -sf /proc/self/fd/1 /dev/stdout
$BB ln -sf /proc/self/fd/2 /dev/stderr
[ -e /proc/sys/fs/binfmt_misc ] && $BB mount -t binfmt_misc none /proc/sys/fs/binfmt_misc 2>/dev/null
[ "$($BB date +%Y)" -lt 2000 ] && $BB date -s "@$($BB cat /run/hull-vm/epoch)" >/dev/null  # no RTC
$BB hostname hull-vm
$BB ip link set lo up
i=0
while :; do
    OUT= ERR= EXIT=
    for p in /sys/class/virtio-ports/vport*; do
        [ -e "$p/name" ] || continue
        case "$($BB cat $p/name)" in
            hull.out) OUT=/dev/${p##*/};; hull.err) ERR=/dev/${p##*/};; hull.exit) EXIT=/dev/${p##*/};;
        esac
    done
    [ -n "$OUT" ] && [ -n "$ERR" ] && [ -n "$EXIT" ] && [ -e "$OUT" ] && [ -e "$ERR" ] && [ -e "$EXIT" ] && break
    i=$((i+1))
    [ $i -gt 200 ] && { echo "hull-vm: virtio-serial ports missing" >/dev/console; $BB poweroff -f; $BB reboot -f; }
    $BB sleep 0.05
done
mark "ports found"
echo "hull-vm: running job" >/dev/console
/bin/sh /run/hull-vm/job.sh <>/dev/null >"$OUT" 2>"$ERR"
rc=$?
echo "$rc" >"$EXIT"
$BB sync
$BB poweroff -f
$BB reboot -f
"""


SIG_MAGIC = b"~Module signature appended~\n"


def _unsigned(ko: bytes) -> bytes:
    """The module without its appended signature: checking RSA signatures costs ~50 ms per
    module under TCG. The kernel does not enforce signatures without secure boot; it only
    notes the unsigned module (taint E)."""
    if ko.endswith(SIG_MAGIC):
        sig_len, = struct.unpack_from(">I", ko, len(ko) - len(SIG_MAGIC) - 4)
        return ko[:len(ko) - len(SIG_MAGIC) - 12 - sig_len]
    return ko


def build_initramfs(cache: Path, busybox: Path, modules) -> Path:
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())  # /init, stage 2 and how modules are packed
    h.update(_sha256_file(busybox).encode())
    for m in modules:
        h.update(m.name.encode() + _sha256_file(m).encode())
    out = cache / f"initramfs-{h.hexdigest()[:16]}.cpio"
    if out.exists():
        return out
    c = Cpio()
    for d in ("bin", "dev", "lib", "lib/modules", "job"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    c.file("bin/busybox", busybox.read_bytes(), 0o755)
    c.file("init", INIT.replace("@NINEP@", NINEP_OPTS).encode(), 0o755)
    c.file("job/stage2", STAGE2.encode(), 0o644)
    for m in modules:
        c.file(f"lib/modules/{_module_name(m)}", _unsigned(_module_bytes(m)))
    c.file("modules.order", "".join(_module_name(m) + "\n" for m in modules).encode())
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(c.finish())
    os.replace(tmp, out)
    _prune(cache)
    return out


def _prune(cache: Path, max_age=2 * 86400):
    """Drop initramfs images and manifests nobody has used for two days."""
    now = time.time()
    for p in list(cache.glob("initramfs-*.cpio")) + list(cache.glob("boot-*.json")):
        try:
            if now - p.stat().st_atime > max_age and now - p.stat().st_mtime > max_age:
                p.unlink()
        except OSError:
            pass


def job_cpio(argv, cwd, env, shares) -> bytes:
    """The per-run part of the initramfs (appended to the cached one): /job/{job.sh,shares,epoch}."""
    lines = ["echo 0 >/proc/self/oom_score_adj",  # PID 1 is -1000; the job is an ordinary process
             "cd " + shlex.quote(cwd) + " || exit 125"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    lines.append("exec " + " ".join(shlex.quote(a) for a in argv))
    c = Cpio()
    c.dir("job")
    c.file("job/job.sh", ("\n".join(lines) + "\n").encode())
    c.file("job/shares", "".join(f"share{i} {p}\n" for i, p in enumerate(shares)).encode())
    c.file("job/epoch", f"{int(time.time())}\n".encode())
    return c.finish()


def guest_env(extra):
    env = {k: v for k, v in os.environ.items()
           if (k in ENV_NAMES or k.startswith(ENV_PREFIXES)) and k not in ENV_DROP}
    for item in extra:
        k, _, v = item.partition("=")
        env[k] = v
    env["HULL_IN_VM"] = "1"
    env["HULL_VM_SCRATCH_DISK"] = "/dev/vda"
    return env


# ---------------------------------------------------------------------------------------------
# Running

def prepare(allow_download=True):
    """Everything a boot needs: (qemu, kernel image, base initramfs, CONFIG_HZ). Raises
    Unavailable.

    The artifacts are keyed by content; a small manifest keyed by the inputs' paths, sizes and
    mtimes (and this script's text) skips hashing and module resolution on later runs."""
    qemu = find_qemu()
    cache = cache_dir()
    busybox = find_busybox()
    vmlinuz, moddir = find_kernel(cache, allow_download)
    h = hashlib.sha256(Path(__file__).read_bytes())
    for p in (vmlinuz, busybox, moddir):
        st = os.stat(p)
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    manifest = cache / f"boot-{h.hexdigest()[:16]}.json"
    try:
        m = json.loads(manifest.read_text())
        if os.path.exists(m["kernel"]) and os.path.exists(m["initrd"]):
            return qemu, Path(m["kernel"]), Path(m["initrd"]), m["hz"]
    except (OSError, ValueError, KeyError):
        pass
    kernel = unpacked_kernel(vmlinuz, cache)
    modules = module_load_order(moddir, WANTED_MODULES)
    initrd = build_initramfs(cache, busybox, modules)
    tmp = manifest.with_suffix(f".tmp{os.getpid()}")
    hz = kernel_hz(vmlinuz)
    tmp.write_text(json.dumps({"kernel": str(kernel), "initrd": str(initrd), "hz": hz}))
    os.replace(tmp, manifest)
    return qemu, kernel, initrd, hz


def availability(allow_download=True):
    """None when the VM can run here, else the reason it cannot (for pytest.skip)."""
    try:
        prepare(allow_download)
    except Unavailable as e:
        return str(e)
    return None


def _pump(fd, sink):
    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            sink.write(data)
            sink.flush()
    except OSError:
        pass
    finally:
        os.close(fd)


JOB_MARK = b"hull-vm: running job"


def run(argv, *, cwd=None, shares=None, env=(), mem="2G", smp=2, timeout=None,
        console=False, scratch_size="1G", stdout=None, stderr=None, append=(),
        boot_timeout=None, boot_attempts=2) -> int:
    """Boot, run argv, return its exit code (124 timeout, 125 VM failure).

    A boot that has not started the command after boot_timeout seconds (default 180, or
    $HULL_VM_BOOT_TIMEOUT) is killed and retried, up to boot_attempts boots in all."""
    try:
        qemu, kernel, initrd, hz = prepare()
    except Unavailable as e:
        log(f"cannot run the VM: {e}")
        return 125
    cwd = os.path.abspath(cwd or os.getcwd())
    shares = [os.path.abspath(s) for s in (shares if shares is not None else [str(REPO)])]
    env = guest_env(env)
    if boot_timeout is None:
        boot_timeout = float(os.environ.get("HULL_VM_BOOT_TIMEOUT", 180))
    khz = host_tsc_khz()
    kargs = ["console=ttyS0", "quiet", "loglevel=4", "cgroup_no_v1=all", "panic=-1", "reboot=t",
             "mitigations=off", "random.trust_cpu=on", "rdinit=/init", "8250.nr_uarts=1", "pci=off",
             "cryptomgr.notests",  # crypto self-tests are slow under TCG
             "lsm=lockdown,capability,landlock,bpf"]  # the same LSMs as this host
    if khz:
        # the guest's own calibrations fail or hang under TCG on a loaded host (PIT
        # calibration; TSC sync between vCPUs that run round-robin on one thread)
        kargs += [f"tsc_early_khz={khz}", "tsc=reliable", f"lpj={khz * 1000 // hz}"]
    kargs += list(append)
    with tempfile.TemporaryDirectory(prefix="hull-vm-") as tmp:
        tmp = Path(tmp)
        rd = tmp / "initrd"
        with open(rd, "wb") as f:
            with open(initrd, "rb") as base:
                shutil.copyfileobj(base, f)
            f.write(job_cpio(argv, cwd, env, shares))
        scratch = tmp / "scratch.img"
        with open(scratch, "wb") as f:
            f.truncate(_size(scratch_size))
        cmd = [
            qemu, "-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on,acpi=on",
            "-accel", "tcg,thread=single", "-cpu", os.environ.get("HULL_VM_CPU", "max"), "-smp", str(smp), "-m", mem,
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(rd), "-append", " ".join(kargs),
            "-fsdev", "local,id=fsroot,path=/,security_model=passthrough,readonly=on,multidevs=remap",
            "-device", "virtio-9p-device,fsdev=fsroot,mount_tag=hostroot",
        ]
        for i, path in enumerate(shares):
            cmd += ["-fsdev", f"local,id=fs{i},path={path},security_model=passthrough,multidevs=remap",
                    "-device", f"virtio-9p-device,fsdev=fs{i},mount_tag=share{i}"]
        cmd += ["-drive", f"file={scratch},if=none,id=scratch,format=raw,cache=unsafe",
                "-device", "virtio-blk-device,drive=scratch",
                "-device", "virtio-serial-device,max_ports=4"]
        for attempt in range(1, boot_attempts + 1):
            rc = _boot(cmd, tmp / f"boot{attempt}", stdout or sys.stdout.buffer,
                       stderr or sys.stderr.buffer, console, timeout, boot_timeout)
            if rc is not None:
                return rc
            if attempt < boot_attempts:
                log(f"boot {attempt} did not reach the command in {boot_timeout:.0f} s; retrying")
        log(f"the VM did not boot in {boot_attempts} attempts")
        return 125


def _die_with_parent():
    """In the qemu child: SIGKILL it when vmrun dies (a killed test run must not leave a VM
    spinning on the CPU)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL


def _boot(cmd, d, stdout, stderr, console, timeout, boot_timeout):
    """One boot. The command's exit code, 124/125, or None when the boot hung before the
    command started (then nothing was written to stdout/stderr and a retry is safe)."""
    d.mkdir()
    exitf, consolef, qemulog = d / "exit", d / "console.log", d / "qemu.log"
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    cmd = cmd + [
        "-chardev", f"file,id=con,path={consolef}", "-serial", "chardev:con",
        # the pipes' write ends are inherited by qemu and reopened through /proc
        "-chardev", f"file,id=out,path=/proc/self/fd/{out_w}",
        "-chardev", f"file,id=err,path=/proc/self/fd/{err_w}",
        "-chardev", f"file,id=exit,path={exitf}",
        "-device", "virtserialport,chardev=out,name=hull.out",
        "-device", "virtserialport,chardev=err,name=hull.err",
        "-device", "virtserialport,chardev=exit,name=hull.exit",
    ]
    t0 = time.monotonic()
    with open(qemulog, "wb") as qlog:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=qlog,
                                pass_fds=[out_w, err_w], preexec_fn=_die_with_parent)
    os.close(out_w)
    os.close(err_w)
    pumps = [threading.Thread(target=_pump, args=(out_r, stdout), daemon=True),
             threading.Thread(target=_pump, args=(err_r, stderr), daemon=True)]
    for t in pumps:
        t.start()
    pos, seen, booted_at, outcome = 0, b"", None, None
    try:
        while True:
            done = proc.poll() is not None
            try:
                with open(consolef, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            if data:
                pos += len(data)
                if console:
                    stderr.write(data)
                    stderr.flush()
                if booted_at is None:
                    seen = seen[-64:] + data
                    if JOB_MARK in seen:
                        booted_at = time.monotonic()
            if done:
                break
            now = time.monotonic()
            if booted_at is None and now - t0 > boot_timeout:
                outcome = "boot hung"
                break
            if timeout and now - t0 > timeout:
                outcome = "timeout"
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    for t in pumps:
        t.join(5)
    elapsed = time.monotonic() - t0
    if outcome == "boot hung":
        _show_tail(consolef, qemulog)
        return None
    if outcome == "timeout":
        log(f"timed out after {timeout} s; VM killed")
        _show_tail(consolef, qemulog)
        return 124
    text = exitf.read_text().strip() if exitf.exists() else ""
    if not text.isdigit():
        log(f"the VM stopped without the command's exit code (qemu exit {proc.returncode}, "
            f"{elapsed:.1f} s)")
        _show_tail(consolef, qemulog)
        return 125
    if os.environ.get("HULL_VM_VERBOSE"):
        boot = f"{booted_at - t0:.1f} s" if booted_at else "?"
        log(f"qemu start to command: {boot}; whole VM run {elapsed:.1f} s; exit code {text}")
    return int(text)


def _show_tail(consolef, qemulog):
    for name, p in (("kernel console", consolef), ("qemu", qemulog)):
        if p.exists():
            lines = p.read_text(errors="replace").splitlines()[-40:]
            if lines:
                print(f"--- {name} (last {len(lines)} lines) ---", file=sys.stderr)
                print("\n".join(lines), file=sys.stderr, flush=True)


def _size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = str(s).upper()
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)


def main(args=None):
    p = argparse.ArgumentParser(
        description="Run a command in a qemu VM with cgroup v2 controllers (see module doc).",
        usage="%(prog)s [options] -- command [args...]")
    p.add_argument("--share", action="append", metavar="DIR",
                   help="host dir shared read-write at the same path (repeatable; "
                        "default: the repository)")
    p.add_argument("--cwd", help="working directory of the command (default: current dir)")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="extra environment")
    p.add_argument("--mem", default="2G", help="guest memory (default 2G)")
    p.add_argument("--smp", type=int, default=2, help="guest CPUs (default 2)")
    p.add_argument("--timeout", type=float, help="kill the VM after this many seconds (exit 124)")
    p.add_argument("--console", action="store_true", help="show the kernel console on stderr")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="report boot and run times on stderr (also $HULL_VM_VERBOSE=1)")
    p.add_argument("--boot-timeout", type=float,
                   help="seconds for the VM to reach the command before the boot is retried "
                        "once (default 180, or $HULL_VM_BOOT_TIMEOUT)")
    p.add_argument("--append", action="append", default=[], metavar="ARG",
                   help="extra kernel command-line argument (repeatable; e.g. loglevel=7)")
    p.add_argument("--check", action="store_true",
                   help="prepare kernel and initramfs; exit 0 if the VM can run here, else "
                        "print why and exit 3")
    p.add_argument("command", nargs="*")
    ns = p.parse_args(args)
    if ns.check:
        reason = availability()
        if reason:
            print(reason)
            return 3
        return 0
    if not ns.command:
        p.error("no command given (put it after --)")
    if ns.verbose:
        os.environ["HULL_VM_VERBOSE"] = "1"
    return run(ns.command, cwd=ns.cwd, shares=ns.share, env=ns.env, mem=ns.mem, smp=ns.smp,
               timeout=ns.timeout, console=ns.console, append=ns.append,
               boot_timeout=ns.boot_timeout)


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds: the VM is killed
    sys.exit(main())
