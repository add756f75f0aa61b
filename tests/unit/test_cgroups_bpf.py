"""The cgroup-v2 device program, checked by running it in a tiny interpreter of the instructions
it uses (no root, no kernel): the decisions must match the OCI rule semantics (last match wins,
default deny). The real kernel load/attach is in tests/integration/test_cgroups_unified.py."""

import struct

import pytest

from hull.kernel import bpf

ACC = {"m": bpf.ACC_MKNOD, "r": bpf.ACC_READ, "w": bpf.ACC_WRITE}


def interp(prog, dev_type, access, major, minor):
    """Run the program for one access (struct bpf_cgroup_dev_ctx); returns r0."""
    ctx = struct.pack("<III", (sum(ACC[c] for c in access) << 16) | (1 if dev_type == "b" else 2), major, minor)
    regs = [0] * 11
    regs[1] = "ctx"
    pc = 0
    insns = [struct.unpack_from("<BBhi", prog, i) for i in range(0, len(prog), 8)]
    for _ in range(10000):
        code, regsb, off, imm = insns[pc]
        dst, src = regsb & 0xF, regsb >> 4
        pc += 1
        if code == bpf.LDX_MEM_W:
            assert regs[src] == "ctx"
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == bpf.ALU32_AND_K:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif code == bpf.ALU32_RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == bpf.ALU32_MOV_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == bpf.ALU64_MOV_K:
            regs[dst] = imm
        elif code == bpf.JMP32_JNE_K:
            if regs[dst] & 0xFFFFFFFF != imm & 0xFFFFFFFF:
                pc += off
        elif code == bpf.JMP_JNE_X:
            if regs[dst] != regs[src]:
                pc += off
        elif code == bpf.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        assert 0 <= pc < len(insns), "jumped outside the program"
    raise AssertionError("no exit")


DEFAULT = [(False, "a", -1, -1, "rwm"),
           (True, "c", 1, 3, "rwm"),      # /dev/null
           (True, "c", 136, -1, "rw"),    # /dev/pts/*
           (True, "b", 8, 0, "r")]


@pytest.mark.parametrize("access,expect", [
    (("c", "rw", 1, 3), 1),
    (("c", "m", 1, 3), 1),
    (("c", "r", 1, 5), 0),         # /dev/zero: not listed -> denied
    (("c", "rw", 136, 7), 1),      # wildcard minor
    (("c", "m", 136, 7), 0),       # mknod not in "rw"
    (("b", "r", 8, 0), 1),
    (("b", "w", 8, 0), 0),         # read-only rule
    (("c", "r", 8, 0), 0),         # same numbers, wrong type
    (("b", "r", 8, 1), 0),
])
def test_decisions(access, expect):
    assert interp(bpf.device_program(DEFAULT), *access) == expect


def test_last_rule_wins():
    rules = [(True, "c", 1, 3, "rwm"), (False, "c", 1, 3, "w")]
    prog = bpf.device_program(rules)
    assert interp(prog, "c", "r", 1, 3) == 1
    assert interp(prog, "c", "w", 1, 3) == 0
    assert interp(prog, "c", "rw", 1, 3) == 1  # "rw" is not a subset of the deny rule's "w"


def test_allow_all_and_empty():
    assert interp(bpf.device_program([(True, "a", -1, -1, "rwm")]), "b", "rwm", 259, 1) == 1
    assert interp(bpf.device_program([]), "c", "r", 1, 3) == 0  # a devices list with no rule: deny
    # an unconditional rule makes every earlier rule unreachable: nothing is emitted for them
    short = bpf.device_program([(True, "c", 1, 3, "rwm"), (False, "a", -1, -1, "rwm")])
    assert len(short) == 8 * 8 and interp(short, "c", "r", 1, 3) == 0


def test_large_numbers_fit_32_bits():
    prog = bpf.device_program([(True, "c", 4000, 0xFFFFF, "r")])
    assert interp(prog, "c", "r", 4000, 0xFFFFF) == 1
    assert interp(prog, "c", "r", 4000, 0xFFFFE) == 0
