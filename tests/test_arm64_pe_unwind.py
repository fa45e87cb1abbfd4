"""The Windows ARM64 unwinder on synthetic stacks, one code path at a time, and fuzzed unwind data.

Packed unwind data: hundreds of .pdata words (every CR, H, RegI, RegF and the local-area
sizes that pick the canonical prologue's forms) are printed by ``llvm-readobj --unwind`` as
their canonical prologue; the test executes those instructions forward on a register file
and a memory, stops after each one (a fault inside the prologue), runs the body (the saved
registers are then clobbered) and each instruction of the epilogue, and the unwinder must
give back the caller's SP, return address and every register saved so far.

Full .xdata records are written here code by code with the instructions they stand for,
run forward the same way.  Hostile records and images must give FormatError or
UnwindError, never another exception.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess

import pefile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arm64_pe_builds import arm64_pe  # noqa: F401  (session fixture)
from conftest import need_tool
from symtool.errors import FormatError
from symtool.formats.cpu_context import CpuContext
from symtool.formats.pe_unwind import Section
from symtool.formats.pe_unwind_arm64 import (Arm64PeUnwindImage, PackedUnwind, decode_code, decode_entry,
                                             decode_sequence, parse_pe_unwind_any)
from symtool.stackwalk import StackMemory
from symtool.stackwalk.arm64_pe import unwind_arm64_pe
from symtool.stackwalk.x64 import UnwindError

BASE = 0x1_4000_0000
TEXT_RVA = 0x1000
XDATA_RVA = 0x40000
SP0 = 0x7FF0_0000
RET = BASE + 0x2_0000 + 0x44  # the caller's return address
SETTINGS = settings(max_examples=int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
PAC = 0x2A << 48  # what pacibsp puts above a 48-bit address in this model


def _image(entries: list[tuple[int, int]], xdata: bytes = b"") -> Arm64PeUnwindImage:
    text_size = XDATA_RVA - TEXT_RVA
    data = b"\0" * 0x400 + xdata.ljust(0x1000, b"\0")
    sections = [Section(".text", TEXT_RVA, text_size, 0, 0, 0x60000020),
                Section(".xdata", XDATA_RVA, 0x1000, 0x400, 0x1000, 0x40000040)]
    img = Arm64PeUnwindImage("<test>", 0xAA64, 0, XDATA_RVA + 0x1000, BASE, True, sections, [], _data=data)
    img.arm64_entries = sorted(entries)
    img._begins = [e[0] for e in img.arm64_entries]
    return img


# -- a forward model of the prologue instructions -----------------------------------------

class Machine:
    """Registers and memory; executes the prologue instructions llvm-readobj prints."""

    def __init__(self):
        self.regs = {f"x{i}": 0x1000 + i for i in range(19, 29)}
        self.regs.update({f"d{i}": 0x4000 + i for i in range(8, 16)})
        self.regs.update({f"x{i}": 0x100 + i for i in range(8)})
        self.regs.update(fp=0xF0F0, lr=RET, sp=SP0)
        self.mem: dict[int, int] = {}
        self.saved: set[str] = set()
        self.frame_pointer = False  # x29 was set up: the body keeps it

    @staticmethod
    def name(reg: str) -> str:
        return {"x29": "fp", "x30": "lr"}.get(reg, reg)

    def execute(self, line: str) -> None:
        r = self.regs
        m = re.fullmatch(r"(stp|str) (\w+)(?:, (\w+))?, \[sp, #(-?\d+)\](!?)", line)
        if m:
            op, a, b, offset, pre = m[1], m[2], m[3], int(m[4]), m[5]
            at = r["sp"] + offset
            for k, reg in enumerate([a] + ([b] if b else [])):
                self.mem[at + 8 * k] = r[self.name(reg)]
                self.saved.add(self.name(reg))
            if pre:
                r["sp"] = at
        elif m := re.fullmatch(r"sub sp, sp, #(\d+)", line):
            r["sp"] -= int(m[1])
        elif line == "mov x29, sp":
            r["fp"] = r["sp"]
            self.frame_pointer = True
        elif line == "pacibsp":
            r["lr"] |= PAC
        else:
            raise AssertionError(f"no model for {line!r}")

    def undo(self, line: str) -> None:
        """The epilogue instruction that mirrors prologue instruction ``line``."""
        r = self.regs
        m = re.fullmatch(r"(stp|str) (\w+)(?:, (\w+))?, \[sp, #(-?\d+)\](!?)", line)
        if m:
            a, b, offset, pre = m[2], m[3], int(m[4]), m[5]
            at = r["sp"] + (0 if pre else offset)
            for k, reg in enumerate([a] + ([b] if b else [])):
                r[self.name(reg)] = self.mem[at + 8 * k]
            if pre:
                r["sp"] -= offset
        elif m := re.fullmatch(r"sub sp, sp, #(\d+)", line):
            r["sp"] += int(m[1])
        elif line == "pacibsp":
            r["lr"] &= ~PAC  # autibsp
        else:
            raise AssertionError(f"no epilogue model for {line!r}")

    def clobber(self) -> None:
        """The saved registers reused (as a body would), but a frame pointer the prologue set up."""
        for name in self.saved:
            if not (name == "fp" and self.frame_pointer):
                self.regs[name] = 0xBAD0_0000 + len(name)

    def memory(self) -> StackMemory:
        low = min(self.mem, default=SP0) - 0x10
        buf = bytearray(SP0 + 0x100 - low)
        for at, value in self.mem.items():
            struct.pack_into("<Q", buf, at - low, value)
        return StackMemory([(low, bytes(buf))])


ORIGINAL = Machine().regs


def _check(caller: CpuContext, saved: set[str], where: str) -> None:
    regs = caller.regs
    assert regs["sp"] == SP0, where
    assert regs["pc"] & ~PAC == RET, where  # a signed LR keeps its PAC bits: the walk strips them
    for name in saved:
        if name.startswith("x") and int(name[1:]) < 18:
            continue  # homed parameter registers are volatile: no unwind effect
        value = regs.get(name)
        assert (value & ~PAC if name == "lr" and value is not None else value) == ORIGINAL[name], f"{where}: {name}"


# -- packed unwind data, against llvm-readobj's canonical prologues --------------------------

def _packed_words() -> list[int]:
    words = []
    length = 0x400  # bytes: prologue, a body, the epilogue
    for cr in range(4):
        for homed in (0, 1):
            for reg_i in (0, 1, 2, 3, 7, 10):
                if cr == 1 and reg_i == 1:
                    continue  # no canonical prologue (llvm-readobj: "INVALID!")
                for reg_f in (0, 1, 2, 7):
                    save = (8 * reg_i + 8 * (cr == 1) + (8 * (reg_f + 1) if reg_f else 0) + 64 * homed + 15) & ~15
                    for local in ((16, 608, 5008) if cr >= 2 else (0, 48, 608, 5008)):
                        frame = save + local
                        if frame > 511 * 16:
                            continue
                        words.append(1 | (length // 4) << 2 | reg_f << 13 | reg_i << 16 | homed << 20 | cr << 21
                                     | (frame // 16) << 23)
    return words


@pytest.fixture(scope="module")
def packed_prologues(tmp_path_factory) -> list[tuple[int, list[str]]]:
    """(packed word, llvm-readobj's canonical prologue in execution order) for each word."""
    words = _packed_words()
    work = tmp_path_factory.mktemp("packed")
    lines = ["    .text", "base:", f"    .space {0x400 * len(words)}", '    .section .pdata,"dr"']
    for k, word in enumerate(words):
        lines += [f"    .rva base + {0x400 * k}", f"    .long {word:#x}"]
    (work / "packed.s").write_text("\n".join(lines) + "\n")
    subprocess.run([need_tool("llvm-mc-19"), "-triple=aarch64-pc-windows-msvc", "-filetype=obj", "packed.s", "-o",
                    "packed.o"], cwd=work, check=True)
    text = subprocess.run([need_tool("llvm-readobj-19"), "--unwind", "packed.o"], cwd=work, capture_output=True,
                          text=True, check=True).stdout
    blocks = text.split("RuntimeFunction {")[1:]
    assert len(blocks) == len(words)
    out = []
    for word, block in zip(words, blocks):
        body = block.split("Prologue [", 1)[1]
        printed = [line.strip() for line in body.splitlines()[1:] if line.strip() not in ("", "]", "}")]
        printed = printed[:printed.index("end")]
        out.append((word, list(reversed(printed))))  # llvm-readobj prints them in unwind order
    return out


def test_packed_data_unwinds_from_every_prologue_and_epilogue_instruction(packed_prologues):
    assert len(packed_prologues) > 300
    for word, prologue in packed_prologues:
        packed = PackedUnwind.from_word(word)
        image = _image([(TEXT_RVA, word)])
        begin = BASE + TEXT_RVA
        where = f"packed {word:#010x} ({packed})"
        # A fault after each prologue instruction (k of them ran), the registers already saved
        # being reused.
        for k in range(len(prologue) + 1):
            machine = Machine()
            for line in prologue[:k]:
                machine.execute(line)
            machine.clobber()
            ctx = CpuContext("arm64", {**machine.regs, "pc": begin + 4 * k})
            _check(unwind_arm64_pe(ctx, image, BASE, machine.memory(), innermost=True), machine.saved,
                   f"{where} after {k} prologue instructions")
        # A caller frame (its PC a return address in the body).
        body = CpuContext("arm64", {**machine.regs, "pc": begin + 4 * len(prologue) + 8})
        _check(unwind_arm64_pe(body, image, BASE, machine.memory(), innermost=False), machine.saved, where)
        # The epilogue: the prologue undone in reverse, without `mov x29, sp` or the homing stores.
        epilogue = [line for line in reversed(prologue) if line != "mov x29, sp"
                    and not re.fullmatch(r"stp x[0-7], x[0-7], \[sp, #\d+\]", line)]
        start = begin + packed.function_length - 4 * (len(epilogue) + 1)
        for k in range(len(epilogue) + 1):
            ctx = CpuContext("arm64", {**machine.regs, "pc": start + 4 * k})
            _check(unwind_arm64_pe(ctx, image, BASE, machine.memory(), innermost=True), machine.saved,
                   f"{where}: {k} epilogue instructions ran")
            if k < len(epilogue):
                machine.undo(epilogue[k])


def test_a_packed_fragment_has_no_prologue_or_epilogue():
    # Flag 2: the frame (save_regp_x 16: x19, x20; CR=1 str lr) was built by its host function.
    word = 2 | (0x100 // 4) << 2 | 2 << 16 | 1 << 21 | 2 << 23  # RegI 2, CR 1, frame 32
    machine = Machine()
    for line in ("stp x19, x20, [sp, #-32]!", "str lr, [sp, #16]"):
        machine.execute(line)
    machine.clobber()
    image = _image([(TEXT_RVA, word)])
    for offset in (0, 4, 0xFC):  # its first and last instructions are body too
        ctx = CpuContext("arm64", {**machine.regs, "pc": BASE + TEXT_RVA + offset})
        _check(unwind_arm64_pe(ctx, image, BASE, machine.memory(), innermost=True), machine.saved, hex(offset))


def test_impossible_packed_data_is_a_format_error():
    with pytest.raises(FormatError):  # CR=1 with RegI=1
        decode_entry(1 | 4 << 2 | 1 << 16 | 1 << 21 | 1 << 23, lambda rva, size: None)
    with pytest.raises(FormatError):  # RegI 15
        decode_entry(1 | 4 << 2 | 15 << 16 | 1 << 23, lambda rva, size: None)
    with pytest.raises(FormatError):  # a frame smaller than its save area
        decode_entry(1 | 4 << 2 | 4 << 16, lambda rva, size: None)
    with pytest.raises(FormatError):  # flag 3 is reserved
        decode_entry(3 | 4 << 2, lambda rva, size: None)


# -- .xdata records written code by code ------------------------------------------------------

# (prologue instruction, its unwind code bytes), in execution order: one of every save form.
XDATA_PROLOGUE = [
    ("pacibsp", b"\xfc"),
    ("stp x19, x20, [sp, #-96]!", b"\x2c"),  # save_r19r20_x 96
    ("stp x21, x22, [sp, #16]", b"\xe6"),  # save_next
    ("stp x23, x24, [sp, #32]", b"\xe6"),  # save_next
    ("stp x25, x26, [sp, #48]", b"\xe6"),  # save_next
    ("stp x27, x28, [sp, #64]", b"\xe6"),  # save_next
    ("stp d8, d9, [sp, #80]", b"\xe6"),  # save_next after x27/x28: the first FP pair
    ("stp d10, d11, [sp, #-32]!", b"\xda\x83"),  # save_fregp_x d10, 32
    ("str d12, [sp, #16]", b"\xdd\x02"),  # save_freg d12, 16
    ("str d13, [sp, #-16]!", b"\xde\xa1"),  # save_freg_x d13, 16
    ("stp d14, d15, [sp, #-16]!", b"\xdb\x81"),  # save_fregp_x d14, 16 (1101101x'xxzzzzzz: X=6, Z=1)
    ("sub sp, sp, #16", b"\x01"),  # alloc_s 16
    ("str x29, [sp, #0]", b"\xd2\x80"),  # save_reg x29 (X=10), 0
    ("stp x29, lr, [sp, #-16]!", b"\x81"),  # save_fplr_x 16
    ("sub sp, sp, #1024", b"\xc0\x40"),  # alloc_m 1024
    ("stp x29, lr, [sp, #0]", b"\x40"),  # save_fplr 0
    ("add x29, sp, #0", b"\xe2\x00"),  # add_fp 0
    ("sub sp, sp, #65536", b"\xe0\x00\x10\x00"),  # alloc_l 65536
]


class XMachine(Machine):
    def execute(self, line: str) -> None:
        if line == "add x29, sp, #0":
            self.regs["fp"] = self.regs["sp"]
            self.frame_pointer = True
        else:
            super().execute(line)


def _xdata(prologue, *, epilog_codes: bytes = b"", epilog_start: int = 0, length: int = 0x400) -> bytes:
    codes = b"".join(code for _line, code in reversed(prologue)) + b"\xe4"
    index = len(codes)
    codes += epilog_codes
    words = (len(codes) + 3) // 4
    codes = codes.ljust(4 * words, b"\xe3")
    scopes = 1 if epilog_codes else 0
    head = length // 4 | scopes << 22 | words << 27
    body = struct.pack("<I", head)
    if scopes:
        body += struct.pack("<I", epilog_start // 4 | index << 22)
    return body + codes


def test_a_full_xdata_record_unwinds_from_every_prologue_instruction_and_the_body():
    image = _image([(TEXT_RVA, XDATA_RVA)], _xdata(XDATA_PROLOGUE))
    begin = BASE + TEXT_RVA
    for k in range(len(XDATA_PROLOGUE) + 1):
        machine = XMachine()
        for line, _code in XDATA_PROLOGUE[:k]:
            machine.execute(line)
        machine.clobber()
        ctx = CpuContext("arm64", {**machine.regs, "pc": begin + 4 * k})
        _check(unwind_arm64_pe(ctx, image, BASE, machine.memory(), innermost=True), machine.saved, f"after {k}")
    machine.regs["sp"] -= 0x40  # the body moved SP: add_fp's x29 still finds the frame
    body = CpuContext("arm64", {**machine.regs, "pc": begin + 0x200})
    _check(unwind_arm64_pe(body, image, BASE, machine.memory(), innermost=False), machine.saved, "body")


def test_an_epilog_scope_is_finished_from_each_of_its_instructions():
    # Prologue: stp x19, x20, [sp, #-32]! (save_r19r20_x 32); stp x29, lr, [sp, #16] (save_fplr 16).
    prologue = [("stp x19, x20, [sp, #-32]!", b"\x24"), ("stp x29, lr, [sp, #16]", b"\x42")]
    epilog = b"\x42\x24\xe4"  # ldp x29, lr, [sp, #16]; ldp x19, x20, [sp], #32; ret
    image = _image([(TEXT_RVA, XDATA_RVA)], _xdata(prologue, epilog_codes=epilog, epilog_start=0x80))
    machine = XMachine()
    for line, _code in prologue:
        machine.execute(line)
    machine.clobber()
    undo = [prologue[1][0], prologue[0][0]]
    for k in range(3):
        ctx = CpuContext("arm64", {**machine.regs, "pc": BASE + TEXT_RVA + 0x80 + 4 * k})
        _check(unwind_arm64_pe(ctx, image, BASE, machine.memory(), innermost=True), machine.saved, f"epilog {k}")
        if k < 2:
            machine.undo(undo[k])
    # Past the scope's end: body again (a caller frame is always body).
    machine = XMachine()
    for line, _code in prologue:
        machine.execute(line)
    ctx = CpuContext("arm64", {**machine.regs, "pc": BASE + TEXT_RVA + 0x80})
    _check(unwind_arm64_pe(ctx, image, BASE, machine.memory(), innermost=False), machine.saved, "caller")


def test_end_c_runs_on_into_the_parents_phantom_prologue():
    # Fragment: its own `stp x21, x22, [sp, #16]` (save_regp x21, 16), end_c, then the parent's
    # prologue `stp x29, lr, [sp, #-32]!` (save_fplr_x 32), end.
    codes = b"\xc8\x82\xe5\x83\xe4"
    record = struct.pack("<I", 0x100 // 4 | 1 << 21 | 0 << 22 | 2 << 27) + codes.ljust(8, b"\xe3")  # E=1, index 0
    image = _image([(TEXT_RVA, XDATA_RVA)], record)
    for k, extra in ((0, []), (1, ["stp x21, x22, [sp, #16]"])):  # before and after the fragment's prologue
        m = Machine()
        m.execute("stp x29, lr, [sp, #-32]!")
        for line in extra:
            m.execute(line)
        m.clobber()
        ctx = CpuContext("arm64", {**m.regs, "pc": BASE + TEXT_RVA + 4 * k})
        _check(unwind_arm64_pe(ctx, image, BASE, m.memory(), innermost=True), m.saved, f"fragment {k}")


def test_a_leaf_without_pdata_returns_through_lr_only_when_innermost():
    image = _image([(TEXT_RVA + 0x100, 1 | 4 << 2 | 1 << 21 | 1 << 23)])
    ctx = CpuContext("arm64", {"pc": BASE + TEXT_RVA + 0x10, "sp": SP0, "lr": RET, "x19": 5, "x0": 1})
    caller = unwind_arm64_pe(ctx, image, BASE, StackMemory([]), innermost=True)
    assert caller.regs["pc"] == RET and caller.regs["sp"] == SP0 and caller.regs["x19"] == 5
    assert "x0" not in caller.regs  # volatile
    with pytest.raises(UnwindError):
        unwind_arm64_pe(ctx, image, BASE, StackMemory([]), innermost=False)


def test_missing_stack_memory_is_an_unwind_error():
    image = _image([(TEXT_RVA, 1 | 0x40 << 2 | 1 << 21 | 1 << 23)])  # CR=1: str lr, [sp, #-16]!
    ctx = CpuContext("arm64", {"pc": BASE + TEXT_RVA + 0x20, "sp": SP0, "lr": 0})
    with pytest.raises(UnwindError, match="not in the dump"):
        unwind_arm64_pe(ctx, image, BASE, StackMemory([]), innermost=False)


# -- hostile unwind data -----------------------------------------------------------------------

@pytest.mark.parametrize("byte", [0xDF, 0xE7, 0xE8, 0xE9, 0xEA, 0xEB, 0xEC, 0xED, 0xEF, 0xF0, 0xF7, 0xF8, 0xFB, 0xFD,
                                  0xFF])
def test_reserved_and_custom_stack_codes_are_rejected(byte):
    with pytest.raises(FormatError):
        decode_code(bytes([byte, 0, 0, 0, 0]), 0)


def test_truncated_codes_are_rejected():
    for raw in (b"\xc0", b"\xe0\x00\x01", b"\xe2", b"\xd4"):
        with pytest.raises(FormatError, match="runs past"):
            decode_code(raw, 0)
    assert [c.op for c in decode_sequence(b"\x01\x02", 0)] == ["alloc_s", "alloc_s"]  # no end: stops at the bytes


@SETTINGS
@given(st.binary(min_size=4, max_size=96), st.integers(0, 0x3FF), st.booleans())
def test_fuzzed_xdata_and_stacks_never_traceback(record, pc_offset, innermost):
    image = _image([(TEXT_RVA, XDATA_RVA), (TEXT_RVA + 0x400, XDATA_RVA + 0x800)], record)
    mem = StackMemory([(SP0 - 0x200, bytes(range(256)) * 4)])
    ctx = CpuContext("arm64", {"pc": BASE + TEXT_RVA + 4 * pc_offset, "sp": SP0, "lr": RET, "fp": SP0 + 0x40})
    try:
        unwind_arm64_pe(ctx, image, BASE, mem, innermost)
    except UnwindError:
        pass


@SETTINGS
@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0x1FFF), st.booleans())
def test_fuzzed_pdata_words_never_traceback(word, pc_offset, innermost):
    image = _image([(TEXT_RVA, word)], b"\x00" * 16)
    mem = StackMemory([(SP0 - 0x2000, bytes(0x4000))])
    ctx = CpuContext("arm64", {"pc": BASE + TEXT_RVA + 4 * pc_offset, "sp": SP0, "lr": RET, "fp": SP0})
    try:
        unwind_arm64_pe(ctx, image, BASE, mem, innermost)
    except UnwindError:
        pass


@pytest.fixture(scope="module")
def real_exe(arm64_pe) -> bytes:  # noqa: F811
    return arm64_pe.exe.read_bytes()


@settings(SETTINGS, max_examples=max(20, SETTINGS.max_examples // 2))
@given(st.data())
def test_mutated_real_images_give_a_walk_or_a_format_error(real_exe, data):
    """Word overwrites in a real ARM64 image's .pdata and .rdata (where lld puts .xdata)."""
    pe = pefile.PE(data=real_exe, fast_load=True)
    spans = [(s.PointerToRawData, s.SizeOfRawData) for s in pe.sections if s.Name.rstrip(b"\0") in (b".pdata",
                                                                                                   b".rdata")]
    raw = bytearray(real_exe)
    for _ in range(data.draw(st.integers(1, 8))):
        start, size = data.draw(st.sampled_from(spans))
        at = data.draw(st.integers(start, start + size - 4))
        value = data.draw(st.sampled_from([0, 0xFFFFFFFF, 0xE4E4E4E4, 0xE8E8E8E8, 0x3FFFF, 0x7FFFFFFF])
                          | st.integers(0, 0xFFFFFFFF))
        struct.pack_into("<I", raw, at, value)
    try:
        image = parse_pe_unwind_any(bytes(raw), "mutated.exe")
    except FormatError:
        return
    mem = StackMemory([(SP0 - 0x2000, bytes(range(256)) * 32)])
    for rva in data.draw(st.lists(st.integers(0x1000, 0x1800), min_size=1, max_size=5)):
        for innermost in (True, False):
            ctx = CpuContext("arm64", {"pc": image.image_base + rva, "sp": SP0, "lr": RET, "fp": SP0})
            try:
                unwind_arm64_pe(ctx, image, image.image_base, mem, innermost)
            except UnwindError:
                pass


def test_an_exception_handler_record_is_read_and_does_not_change_the_unwind():
    # X=1, E=1 (the epilogue's codes at index 0), one code word: save_fplr_x 16, end; then the
    # handler's RVA and its data.
    record = struct.pack("<I", 0x40 // 4 | 1 << 20 | 1 << 21 | 1 << 27) + b"\x81\xe4\xe3\xe3" + \
        struct.pack("<II", 0x1234, 0xDEADBEEF)
    info = decode_entry(XDATA_RVA, lambda rva, size: record[rva - XDATA_RVA:rva - XDATA_RVA + size]
                        if 0 <= rva - XDATA_RVA and rva - XDATA_RVA + size <= len(record) else None)
    assert info.has_handler and info.handler_rva == 0x1234 and info.packed_epilog and info.epilog_index == 0
    machine = Machine()
    machine.execute("stp x29, lr, [sp, #-16]!")
    machine.clobber()
    image = _image([(TEXT_RVA, XDATA_RVA)], record)
    for offset, innermost in ((0x10, False), (0x38, True), (0x3C, True)):  # body, epilogue, its ret
        if offset == 0x3C:
            machine.undo("stp x29, lr, [sp, #-16]!")  # the epilogue's ldp x29, lr, [sp], #16 ran
        ctx = CpuContext("arm64", {**machine.regs, "pc": BASE + TEXT_RVA + offset})
        _check(unwind_arm64_pe(ctx, image, BASE, machine.memory(), innermost), machine.saved, hex(offset))
