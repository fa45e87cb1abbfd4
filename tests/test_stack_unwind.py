"""The x64 unwinder against prologues executed forward: every unwind op, chained info,
a fault inside a prologue and an epilogue, leaf functions, PUSH_MACHFRAME; and fuzzed
dumps, contexts and .pdata that must give a frame list or an error, never a traceback."""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES_DIR
from symtool.dumps.locate import SymbolLocator
from symtool.dumps.stack import StackResolver, all_stacks
from symtool.dumps.symbolize import SymbolizerCache
from symtool.errors import FormatError
from symtool.formats.cpu_context import CpuContext
from symtool.formats.minidump import open_minidump
from symtool.formats.pe_unwind import PeUnwindImage, Section, parse_pe_unwind
from symtool.stackwalk import StackMemory, WalkModule, walk_stack
from symtool.stackwalk.x64 import unwind_x64

BASE = 0x140000000
SETTINGS = settings(max_examples=int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _code(offset: int, op: int, info: int) -> bytes:
    return struct.pack("<BB", offset, op | info << 4)


def _image(text: bytes, xdata: bytes, functions) -> PeUnwindImage:
    data = b"\0" * 0x400 + text.ljust(0x400, b"\xcc") + xdata.ljust(0x400, b"\0")
    sections = [Section(".text", 0x1000, 0x400, 0x400, 0x400, 0x60000020),
                Section(".xdata", 0x2000, 0x400, 0x800, 0x400, 0x40000040)]
    img = PeUnwindImage("<test>", 0x8664, 0, 0x3000, BASE, True, sections, sorted(functions), _data=data)
    img._begins = [f[0] for f in img.functions]
    return img


# The prologue: push rbp; push rbx; sub rsp, 0x100; lea rbp, [rsp+0x20]; mov [rsp+0x40], rsi; movaps [rsp+0x50], xmm6
PROLOG = [(1, 0, 5), (2, 0, 3), (9, 1, 0), (14, 3, 0), (19, 4, 6), (25, 8, 6)]


def _unwind_info(flags: int = 0, chained: tuple | None = None) -> bytes:
    codes = b""
    for off, op, info in sorted(PROLOG, reverse=True):
        codes += _code(off, op, info)
        if op == 1:
            codes += struct.pack("<H", 0x100 // 8)
        elif op == 4:
            codes += struct.pack("<H", 0x40 // 8)
        elif op == 8:
            codes += struct.pack("<H", 0x50 // 16)
    count = len(codes) // 2
    head = struct.pack("<BBBB", 1 | flags << 3, 25, count, 5 | 2 << 4)  # frame register rbp, offset 2*16
    body = head + codes + (b"\0\0" if count % 2 else b"")
    if chained:
        body += struct.pack("<III", *chained)
    return body


def _run_prolog(upto: int, caller: dict, ret: int) -> tuple[dict, dict]:
    """Execute the prologue's instructions whose end offset is <= upto; returns (regs, memory writes)."""
    mem: dict[int, int] = {}
    regs = dict(caller)
    regs["rsp"] -= 8
    mem[regs["rsp"]] = ret
    for off, op, info in PROLOG:
        if off > upto:
            break
        if op == 0:
            regs["rsp"] -= 8
            mem[regs["rsp"]] = regs[["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"][info]]
        elif op == 1:
            regs["rsp"] -= 0x100
        elif op == 3:
            regs["rbp"] = regs["rsp"] + 0x20
        elif op == 4:
            mem[regs["rsp"] + 0x40] = regs["rsi"]
    return regs, mem


def _memory(writes: dict[int, int], low: int, high: int) -> StackMemory:
    buf = bytearray(high - low)
    for addr, value in writes.items():
        struct.pack_into("<Q", buf, addr - low, value)
    return StackMemory([(low, bytes(buf))])


CALLER = {"rsp": 0x20000, "rbp": 0x1111, "rbx": 0x2222, "rsi": 0x3333, "rdi": 0x4444}
RET = BASE + 0x1500


def _check(img, pc_rva: int, upto: int, clobber: bool = True, alloca: int = 0):
    regs, writes = _run_prolog(upto, CALLER, RET)
    if clobber:
        regs.update({"rbx": 0xBAD1, "rsi": 0xBAD2})
        if 1 <= upto < 14:
            regs["rbp"] = 0xBAD3  # pushed, not yet the frame register: the callee may use it
    regs["rsp"] -= alloca
    ctx = CpuContext("x64", {**regs, "rip": BASE + pc_rva})
    caller = unwind_x64(ctx, img, BASE, _memory(writes, 0x1F000, 0x20100), innermost=True)
    assert caller.regs["rip"] == RET and caller.regs["rsp"] == CALLER["rsp"]
    return caller


def test_every_prologue_op_is_undone_from_the_body():
    img = _image(b"\x90" * 0x100, _unwind_info(), [(0x1000, 0x1100, 0x2000)])
    caller = _check(img, 0x1080, 99, alloca=0x40)  # rsp moved after the prologue: SET_FPREG restores it
    assert (caller.regs["rbp"], caller.regs["rbx"], caller.regs["rsi"]) == (0x1111, 0x2222, 0x3333)


def test_fault_inside_the_prologue():
    img = _image(b"\x90" * 0x100, _unwind_info(), [(0x1000, 0x1100, 0x2000)])
    for upto, pc in ((0, 0x1000), (1, 0x1001), (2, 0x1002), (9, 0x1009)):
        caller = _check(img, pc, upto, clobber=False)
        assert caller.regs["rbx"] == 0x2222 and caller.regs["rbp"] == 0x1111


def test_chained_unwind_info():
    # A chained part with no codes of its own: head (count 0) then the parent RUNTIME_FUNCTION.
    xdata = _unwind_info().ljust(0x40, b"\0") + struct.pack("<BBBB", 1 | 4 << 3, 0, 0, 0) + \
        struct.pack("<III", 0x1000, 0x1100, 0x2000)
    img = _image(b"\x90" * 0x200, xdata, [(0x1000, 0x1100, 0x2000), (0x1100, 0x1200, 0x2040)])
    caller = _check(img, 0x1150, 99)
    assert caller.regs["rsi"] == 0x3333


def test_epilogue_is_emulated():
    text = b"\x90" * 0x60 + b"\x48\x83\xc4\x10" + b"\x5b" + b"\x5d" + b"\xc3"
    xdata = struct.pack("<BBBB", 1, 6, 3, 0) + _code(6, 2, 1) + _code(2, 0, 3) + _code(1, 0, 5) + b"\0\0"
    img = _image(text, xdata, [(0x1000, 0x1070, 0x2000)])
    stack = {0x1FFE0: 0, 0x1FFE8: 0, 0x1FFF0: 0x2222, 0x1FFF8: 0x1111, 0x20000: RET}
    ctx = CpuContext("x64", {"rip": BASE + 0x1060, "rsp": 0x1FFE0, "rbx": 0, "rbp": 0})
    caller = unwind_x64(ctx, img, BASE, _memory(stack, 0x1F000, 0x20100), innermost=True)
    assert caller.regs == {"rip": RET, "rsp": 0x20008, "rbx": 0x2222, "rbp": 0x1111}


def test_leaf_and_machframe():
    xdata = struct.pack("<BBBB", 1, 0, 1, 0) + _code(0, 10, 1) + b"\0\0"
    img = _image(b"\x90" * 0x100, xdata, [(0x1080, 0x1100, 0x2000)])
    mem = _memory({0x1FF00: RET}, 0x1F000, 0x20100)
    leaf = unwind_x64(CpuContext("x64", {"rip": BASE + 0x1010, "rsp": 0x1FF00}), img, BASE, mem, True)
    assert leaf.regs["rip"] == RET and leaf.regs["rsp"] == 0x1FF08
    # PUSH_MACHFRAME with an error code: [rsp] error, then RIP, CS, EFLAGS, RSP, SS.
    frame = {0x1FF00: 0, 0x1FF08: RET, 0x1FF10: 0x33, 0x1FF18: 0x246, 0x1FF20: 0x1FFA0, 0x1FF28: 0x2B}
    got = unwind_x64(CpuContext("x64", {"rip": BASE + 0x1090, "rsp": 0x1FF00}), img, BASE,
                     _memory(frame, 0x1F000, 0x20100), True)
    assert got.regs["rip"] == RET and got.regs["rsp"] == 0x1FFA0


def test_walk_is_bounded_on_a_self_loop():
    # Every return address points back into a leaf function: the stack pointer still rises, the walk ends.
    img = _image(b"\xe8\0\0\0\0" + b"\x90" * 0xFB, b"", [])
    words = [BASE + 0x1005] * 4096
    mem = StackMemory([(0x100000, struct.pack(f"<{len(words)}Q", *words))])
    res = walk_stack(CpuContext("x64", {"rip": BASE + 0x1010, "rsp": 0x100000}), mem,
                     [WalkModule(BASE, 0x3000, "x.exe", 0)], lambda m: img)
    assert len(res.frames) == 1024 and res.truncated


def test_scan_never_takes_a_modules_header_page_for_a_return_address():
    # An OS module with no image: any address in it counts when scanning, but not its first
    # page (the headers): third-party dumps showed ntdll+0x0 frames.
    other = 0x7FF000000000
    img = _image(b"\x90" * 0x100, b"", [])
    words = [0x1234, other, other + 0x10, other + 0x2345]  # the leaf's return slot holds no code address
    mem = StackMemory([(0x100000, struct.pack("<4Q", *words))])
    res = walk_stack(CpuContext("x64", {"rip": BASE + 0x1010, "rsp": 0x100000}), mem,
                     [WalkModule(BASE, 0x3000, "x.exe", 0), WalkModule(other, 0x100000, "ntdll.dll", 1)],
                     lambda m: img if m.index == 0 else None)
    assert [f.pc - other for f in res.frames[1:]] == [0x2345]


@SETTINGS
@given(data=st.data())
def test_fuzzed_pdata_never_crashes(data):
    raw = bytearray((FIXTURES_DIR / "pe-pdb" / "dump_syms_regtest64.exe").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    try:
        img = parse_pe_unwind(bytes(raw))
    except FormatError:
        return
    mem = StackMemory([(0x10000, bytes(data.draw(st.binary(min_size=64, max_size=512))))])
    for begin, _end, info in img.functions[:50]:
        try:
            img.unwind_info(info)
        except FormatError:
            pass
    res = walk_stack(CpuContext("x64", {"rip": img.image_base + (img.functions[0][0] if img.functions else 0x1000),
                                        "rsp": 0x10000}), mem, [WalkModule(img.image_base, 0x100000, "a", 0)],
                     lambda m: img)
    assert len(res.frames) <= 1024


@SETTINGS
@given(data=st.data())
def test_fuzzed_dumps_give_stacks_or_errors(data):
    raw = bytearray((FIXTURES_DIR / "dumps" / "symbolic-windows-mini.dmp").read_bytes())
    for _ in range(data.draw(st.integers(1, 16))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".dmp") as f:
        f.write(raw)
        f.flush()
        try:
            md = open_minidump(f.name)
        except FormatError:
            return
        with md:
            resolver = StackResolver(SymbolLocator([], [str(FIXTURES_DIR / "pe-pdb")]), SymbolizerCache())
            for stack in all_stacks(md, resolver):
                assert len(stack.frames) <= 4 * 1024
