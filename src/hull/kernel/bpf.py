"""cgroup v2 device control: a hand-assembled BPF_PROG_TYPE_CGROUP_DEVICE program.

cgroup v2 has no devices.allow/deny files; access to device nodes is decided by a BPF program
attached to the cgroup (what runc's devicefilter and crun's ebpf.c generate). The program gets

    struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; };
    access_type = (access << 16) | type      type: 1 block, 2 char; access: 1 mknod, 2 read, 4 write

and returns 1 to allow, 0 to deny. Rules are OCI linux.resources.devices entries, normalised
to (allow, type 'a'|'b'|'c', major or -1, minor or -1, access 'rwm'-subset). The last matching
rule wins (so the program tests them in reverse); nothing matching means deny.
"""

from hull.kernel import ffi
from hull import osfast as os
import struct

from hull.errors import KernelError
from hull.kernel.libc import syscall

# bpf(2) commands, program/attach types, flags (uapi/linux/bpf.h).
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_OVERRIDE = 1
BPF_F_ALLOW_MULTI = 2

DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4

# Instruction encodings used here.
LDX_MEM_W = 0x61    # dst = *(u32 *)(src + off)
ALU32_AND_K = 0x54  # dst &= imm (32-bit)
ALU32_RSH_K = 0x74  # dst >>= imm (32-bit)
ALU32_MOV_X = 0xBC  # dst = src (32-bit)
ALU64_MOV_K = 0xB7  # dst = imm
JMP32_JNE_K = 0x56  # if (u32)dst != imm goto +off
JMP_JNE_X = 0x5D    # if dst != src goto +off
EXIT = 0x95

_ATTR_SIZE = 128  # larger than every attr layout used below; the rest is zero as the kernel wants


def insn(code, dst=0, src=0, off=0, imm=0):
    if imm >= 1 << 31:
        imm -= 1 << 32
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_mask(access):
    return ((ACC_READ if "r" in access else 0) | (ACC_WRITE if "w" in access else 0)
            | (ACC_MKNOD if "m" in access else 0))


def _rule_block(allow, typ, major, minor, access):
    """Instructions for one rule: conditional jumps past the block, then `return allow`."""
    checks = []  # each entry: list of insns whose last one jumps to "next rule"
    if typ != "a":
        checks.append([insn(JMP32_JNE_K, dst=2, imm=DEV_BLOCK if typ == "b" else DEV_CHAR)])
    mask = _access_mask(access)
    if mask != ACC_READ | ACC_WRITE | ACC_MKNOD:
        # requested access (r3) must be a subset of the rule's: (r3 & mask) == r3
        checks.append([insn(ALU32_MOV_X, dst=1, src=3), insn(ALU32_AND_K, dst=1, imm=mask),
                       insn(JMP_JNE_X, dst=1, src=3)])
    if major != -1:
        checks.append([insn(JMP32_JNE_K, dst=4, imm=major)])
    if minor != -1:
        checks.append([insn(JMP32_JNE_K, dst=5, imm=minor)])
    tail = [insn(ALU64_MOV_K, dst=0, imm=1 if allow else 0), insn(EXIT)]
    flat = [i for c in checks for i in c]
    total = len(flat) + len(tail)
    out = []
    for idx, raw in enumerate(flat):
        code = raw[0]
        if code in (JMP32_JNE_K, JMP_JNE_X):  # patch the offset to land after the block
            raw = raw[:2] + struct.pack("<h", total - idx - 1) + raw[4:]
        out.append(raw)
    return out + tail, not checks


def device_program(rules):
    """Assemble the program for normalised rules (allow, type, major, minor, access)."""
    prog = [
        insn(LDX_MEM_W, dst=2, src=1, off=0),  # r2 = access_type
        insn(ALU32_AND_K, dst=2, imm=0xFFFF),  # r2 = type
        insn(LDX_MEM_W, dst=3, src=1, off=0),
        insn(ALU32_RSH_K, dst=3, imm=16),      # r3 = access
        insn(LDX_MEM_W, dst=4, src=1, off=4),  # r4 = major
        insn(LDX_MEM_W, dst=5, src=1, off=8),  # r5 = minor
    ]
    for rule in reversed(list(rules)):
        block, unconditional = _rule_block(*rule)
        prog += block
        if unconditional:  # matches everything: earlier rules can never be reached
            break
    else:
        prog += [insn(ALU64_MOV_K, dst=0, imm=0), insn(EXIT)]
    return b"".join(prog)


def _bpf(cmd, attr, what, path=None, hint=None):
    try:
        return syscall("bpf", cmd, attr, _ATTR_SIZE, path=path)
    except KernelError as e:
        raise KernelError(e.errno, f"bpf({what})", path, hint() if hint else None) from None


def load_device_program(code):
    """BPF_PROG_LOAD a cgroup device program; returns its fd (verifier log in the error)."""
    insns = ffi.create_string_buffer(code, len(code))
    lic = ffi.create_string_buffer(b"Apache-2.0")
    log = ffi.create_string_buffer(65536)
    attr = ffi.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
                     ffi.addressof(insns), ffi.addressof(lic), 1, len(log), ffi.addressof(log))
    struct.pack_into("<16s", attr, 48, b"hull_devices")
    struct.pack_into("<I", attr, 68, BPF_CGROUP_DEVICE)
    def verifier_log():
        text = log.value.decode(errors="replace").strip()
        return f"verifier: {text[-2000:]}" if text else None
    return _bpf(BPF_PROG_LOAD, attr, "PROG_LOAD", hint=verifier_log)


def _cgroup_fd(cgroup_dir):
    try:
        return os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno, "open", cgroup_dir) from None


def query(cgroup_dir):
    """(attach_flags, [prog ids]) of the device programs attached directly to `cgroup_dir`."""
    fd = _cgroup_fd(cgroup_dir)
    try:
        ids = (ffi.c_uint32 * 64)()
        attr = ffi.create_string_buffer(_ATTR_SIZE)
        struct.pack_into("<IIIIQI", attr, 0, fd, BPF_CGROUP_DEVICE, 0, 0, ffi.addressof(ids), 64)
        _bpf(BPF_PROG_QUERY, attr, "PROG_QUERY", cgroup_dir)
        flags = struct.unpack_from("<I", attr, 12)[0]
        count = struct.unpack_from("<I", attr, 24)[0]
        return flags, list(ids[:count])
    finally:
        os.close(fd)


def _prog_fd_by_id(prog_id):
    attr = ffi.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr, "PROG_GET_FD_BY_ID")


def _attach_cmd(cmd, cgroup_fd, prog_fd, flags, what, path):
    attr = ffi.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIII", attr, 0, cgroup_fd, prog_fd, BPF_CGROUP_DEVICE, flags)
    return _bpf(cmd, attr, what, path)


def _detach_ids(cgroup_fd, ids, path):
    for pid in ids:
        try:
            pfd = _prog_fd_by_id(pid)
        except KernelError:
            continue  # already gone
        try:
            _attach_cmd(BPF_PROG_DETACH, cgroup_fd, pfd, 0, "PROG_DETACH", path)
        except KernelError as e:
            if e.errno != 2:  # ENOENT: someone detached it meanwhile
                raise
        finally:
            os.close(pfd)


def set_device_filter(cgroup_dir, rules):
    """Load the program for `rules` and make it the cgroup's only device program.

    The new program is attached (BPF_F_ALLOW_MULTI) before the old ones are detached, so there is
    no moment without a filter — the order runc uses. Returns the new program's id list.
    """
    prog_fd = load_device_program(device_program(rules))
    try:
        flags, old = query(cgroup_dir)
        cg = _cgroup_fd(cgroup_dir)
        try:
            if old and flags != BPF_F_ALLOW_MULTI:
                # attached without MULTI (by someone else): it must go first
                _detach_ids(cg, old, cgroup_dir)
                old = []
            _attach_cmd(BPF_PROG_ATTACH, cg, prog_fd, BPF_F_ALLOW_MULTI, "PROG_ATTACH", cgroup_dir)
            _detach_ids(cg, old, cgroup_dir)
        finally:
            os.close(cg)
    finally:
        os.close(prog_fd)
    return query(cgroup_dir)[1]


def clear_device_filter(cgroup_dir):
    """Detach every device program attached directly to `cgroup_dir`."""
    _, ids = query(cgroup_dir)
    if ids:
        cg = _cgroup_fd(cgroup_dir)
        try:
            _detach_ids(cg, ids, cgroup_dir)
        finally:
            os.close(cg)
