"""ARM64 contexts and the ARM64 unwinder on synthetic stacks: both context layouts (and the
exception's own context), the frame record chain with a leaf in LR, scanning for a return address
after a call instruction (checked against llvm-objdump's decoding), pointer-authentication
stripping, AArch64 CFI rows; hostile contexts never give a traceback."""

from __future__ import annotations

import json
import os
import random
import re
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders.minidump import ARCH_ARM64, ARCH_ARM64_OLD, build_threads_minidump, context_arm64
from conftest import need_tool
from symtool.errors import FormatError
from symtool.formats.cpu_context import CpuContext, parse_context
from symtool.formats.minidump import read_minidump
from symtool.formats.dwarf_cfi import OFFSET, SAME_VALUE, UNDEFINED, CfiRow
from symtool.stackwalk import StackMemory, WalkModule, walk_stack
from symtool.stackwalk.arm64 import address_mask, is_call, strip_pac
from symtool.stackwalk.cfi import EndOfStack, apply_row
from symtool.stackwalk.x64 import UnwindError

SETTINGS = settings(max_examples=int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "500")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
REGS = {**{f"x{i}": 0x1000 + i for i in range(29)}, "fp": 0x7FFF_F000_0100, "lr": 0x40_1234, "sp": 0x7FFF_F000_0000,
        "pc": 0x40_1000, "cpsr": 0x6000_0000, **{f"d{i}": 0xD000 + i for i in range(8, 16)}}


def symtool(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SYMTOOL_STORE", "_NT_SYMBOL_PATH", "SYMTOOL_CACHE")}
    return subprocess.run([sys.executable, "-m", "symtool", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


# -- contexts ---------------------------------------------------------------------------

@pytest.mark.parametrize("old", [False, True])
def test_both_context_layouts_give_the_registers(old):
    record = context_arm64({**REGS, "v9": (0xABCD << 64) | REGS["d9"]}, old=old)
    assert len(record) == (796 if old else 0x390)
    ctx = parse_context(record, "arm64")
    assert ctx.regs == REGS and (ctx.pc_name, ctx.sp_name, ctx.fp_name) == ("pc", "sp", "fp")
    assert (ctx.pc, ctx.sp) == (REGS["pc"], REGS["sp"])


@pytest.mark.parametrize("old", [False, True])
def test_without_the_floating_point_flag_there_are_no_d_registers(old):
    flags = 0x80000002 if old else 0x00400003  # INTEGER(_OLD) (| CONTROL): no FLOATING_POINT
    ctx = parse_context(context_arm64(REGS, old=old, flags=flags), "arm64")
    assert not any(name.startswith("d") for name in ctx.regs) and ctx.regs["x28"] == REGS["x28"]


def test_contexts_without_flags_are_told_by_their_size():
    assert parse_context(context_arm64(REGS, flags=0), "arm64").regs["x5"] == REGS["x5"]
    assert parse_context(context_arm64(REGS, old=True, flags=0), "arm64").regs["lr"] == REGS["lr"]


@pytest.mark.parametrize("data", [b"", b"\0\0\0", context_arm64(REGS)[:0x38F], context_arm64(REGS, old=True)[:795],
                                  context_arm64(REGS, flags=0x00100007), bytes(700)])
def test_short_or_foreign_contexts_are_format_errors(data):
    with pytest.raises(FormatError):
        parse_context(data, "arm64")


@SETTINGS
@given(st.binary(max_size=1200), st.sampled_from([0, 0x00400000, 0x00400007, 0x80000000, 0x80000006, 0xFFFFFFFF]))
def test_fuzzed_contexts_never_traceback(data, flags):
    for blob in (data, struct.pack("<I", flags) + data[4:]):
        try:
            ctx = parse_context(blob, "arm64")
        except FormatError:
            continue
        assert ctx.cpu == "arm64" and {"pc", "sp", "fp", "lr"} <= set(ctx.regs)


# -- call instructions: our decoder against llvm-objdump's ---------------------------------

def test_is_call_agrees_with_llvm_objdump(tmp_path):
    """Every BL/BLR/BLRA* form and random words around them, decoded by llvm-objdump."""
    rng = random.Random(23)
    seeds = [0x94000000, 0xD63F0000, 0xD63F081F, 0xD63F0C1F, 0xD73F0800, 0xD73F0C00, 0xD61F0000, 0xD65F03C0,
             0xD71F0800, 0x14000000, 0xD65F0BFF]
    words = []
    for seed in seeds:
        words += [seed] + [seed ^ (1 << rng.randrange(32)) for _ in range(60)] + [seed | rng.getrandbits(11)
                                                                                   for _ in range(30)]
    words += [rng.getrandbits(32) for _ in range(500)]
    source = tmp_path / "calls.s"
    source.write_text(".text\n" + "".join(f".inst {w:#010x}\n" for w in words))
    obj = tmp_path / "calls.o"
    subprocess.run([need_tool("llvm-mc"), "-triple=aarch64", "-filetype=obj", "-o", obj, source], check=True,
                   timeout=60)
    dump = subprocess.run([need_tool("llvm-objdump"), "-d", "--mattr=+pauth", "--no-show-raw-insn", obj],
                          capture_output=True, text=True, check=True, timeout=60).stdout
    mnemonics = {}
    for line in dump.splitlines():
        head, _, rest = line.partition(":")
        if rest.strip() and all(c in "0123456789abcdef" for c in head.strip()) and head.strip():
            mnemonics[int(head, 16) // 4] = rest.split()[0]
    assert len(mnemonics) == len(words)
    calls = {"bl", "blr", "blraa", "blraaz", "blrab", "blrabz"}
    wrong = [(f"{w:#010x}", mnemonics[k]) for k, w in enumerate(words) if is_call(w) != (mnemonics[k] in calls)]
    assert not wrong
    assert sum(is_call(w) for w in words) > 100  # the seeds' neighbourhoods hold many calls


# -- the walk on synthetic stacks -------------------------------------------------------

STACK = 0x7FFF_F000_0000
APP = WalkModule(0x40_0000, 0x1_0000, "app", 0)


def _memory(words: dict[int, int], size: int = 0x400) -> StackMemory:
    stack = bytearray(size)
    for address, value in words.items():
        struct.pack_into("<Q", stack, address - STACK, value)
    return StackMemory([(STACK, bytes(stack))])


def _walk(regs: dict[str, int], words: dict[int, int], image_for=lambda m: None, modules=(APP,)):
    return walk_stack(CpuContext("arm64", dict(regs)), _memory(words), list(modules), image_for)


def test_frame_records_with_a_leaf_in_lr():
    """The innermost frame saved nothing (its return address is in LR); then the frame records;
    a zero record ends the stack."""
    words = {STACK + 0x40: STACK + 0x80, STACK + 0x48: 0x40_3008, STACK + 0x80: 0, STACK + 0x88: 0}
    result = _walk({"pc": 0x40_1000, "lr": 0x40_2004, "sp": STACK, "fp": STACK + 0x40}, words)
    assert [(f.pc, f.sp, f.trust) for f in result.frames] == [
        (0x40_1000, STACK, "context"), (0x40_2004, STACK, "frame-pointer"), (0x40_3008, STACK + 0x50, "frame-pointer")]
    assert "zero" in result.stop and not result.truncated
    assert [f.lookup_address for f in result.frames] == [0x40_1000, 0x40_2000, 0x40_3004]


def test_a_frame_whose_lr_is_its_own_record_is_not_a_leaf():
    words = {STACK + 0x40: STACK + 0x80, STACK + 0x48: 0x40_2004, STACK + 0x80: 0, STACK + 0x88: 0}
    result = _walk({"pc": 0x40_1000, "lr": 0x40_2004, "sp": STACK, "fp": STACK + 0x40}, words)
    assert [f.pc for f in result.frames] == [0x40_1000, 0x40_2004]


def test_pac_signed_return_addresses_are_stripped():
    signed = 0x002B_0000_0000_0000 | 0x40_3008
    words = {STACK + 0x40: STACK + 0x80, STACK + 0x48: signed, STACK + 0x80: 0, STACK + 0x88: 0}
    result = _walk({"pc": 0x40_1000, "lr": 0x7B_0000_0040_2004, "sp": STACK, "fp": STACK + 0x40}, words)
    assert [f.pc for f in result.frames] == [0x40_1000, 0x40_2004, 0x40_3008]
    mask = address_mask(0x40_0000 + 0x1_0000)
    assert strip_pac(signed, mask) == 0x40_3008 and mask == (1 << 39) - 1
    assert address_mask(0x7FFF_FFFF_F000) == (1 << 47) - 1 and address_mask(1 << 60) == (1 << 48) - 1


def test_a_bad_pc_is_unwound_through_lr():
    """A call through a null function pointer: pc 0 is in no module, LR is the return address."""
    words = {STACK + 0x40: 0, STACK + 0x48: 0}
    result = _walk({"pc": 0, "lr": 0x40_2004, "sp": STACK, "fp": STACK + 0x40}, words)
    assert [(f.pc, f.trust) for f in result.frames] == [(0, "context"), (0x40_2004, "frame-pointer")]


def test_scanning_finds_a_pac_signed_return_address_and_the_record_beside_it():
    """No frame pointer: the scan takes the first word that (stripped) points into a module; a
    word pointing outside every module is skipped."""
    words = {STACK + 0x10: 0x7777_0000, STACK + 0x20: STACK + 0x60, STACK + 0x28: 0x0055_0000_0040_2008,
             STACK + 0x60: 0, STACK + 0x68: 0}
    result = _walk({"pc": 0x40_1000, "sp": STACK, "fp": 0}, words)
    assert [(f.pc, f.sp, f.trust) for f in result.frames][:2] == [(0x40_1000, STACK, "context"),
                                                                  (0x40_2008, STACK + 0x30, "scan")]


def test_an_frame_record_leading_down_the_stack_is_not_followed():
    words = {STACK + 0x40: STACK + 0x10, STACK + 0x48: 0x40_3008, STACK + 0x10: STACK + 0x40,
             STACK + 0x18: 0x40_3008}
    result = _walk({"pc": 0x40_1000, "sp": STACK + 0x20, "fp": STACK + 0x40}, words)
    assert len(result.frames) < 8 and all(f.sp >= STACK + 0x20 for f in result.frames)


# -- AArch64 CFI rows -------------------------------------------------------------------

def _row(cfa, rules, ra=30):
    return CfiRow(0x1000, cfa, dict(rules), ra)


def test_cfi_row_restores_fp_lr_and_callee_saved_registers():
    mem = _memory({STACK + 0x30: STACK + 0x100, STACK + 0x38: 0x40_3000, STACK + 0x20: 0x1919, STACK + 0x28: 0xD8D8})
    ctx = CpuContext("arm64", {"pc": 0x40_1000, "sp": STACK, "fp": STACK + 0x30, "x0": 1, "x19": 5, "x20": 6,
                               "lr": 0x40_9999})
    # CFA = fp + 16; x29 at CFA-16, x30 at CFA-8, x19 at CFA-32, d8 (DWARF 72) at CFA-24
    new = apply_row(ctx, _row(("register", 29, 16), {29: (OFFSET, -16), 30: (OFFSET, -8), 19: (OFFSET, -32),
                                                     72: (OFFSET, -24)}), mem)
    assert new.regs == {"pc": 0x40_3000, "lr": 0x40_3000, "sp": STACK + 0x40, "fp": STACK + 0x100, "x19": 0x1919,
                        "x20": 6, "d8": 0xD8D8}


def test_cfi_leaf_row_without_an_lr_rule_returns_to_lr():
    ctx = CpuContext("arm64", {"pc": 0x40_1000, "sp": STACK, "fp": 0x99, "lr": 0x40_2004})
    new = apply_row(ctx, _row(("register", 31, 0), {}), _memory({}))
    assert (new.pc, new.sp, new.regs["fp"]) == (0x40_2004, STACK, 0x99)


def test_cfi_undefined_lr_is_the_end_and_an_unknown_lr_is_an_error():
    with pytest.raises(EndOfStack):
        apply_row(CpuContext("arm64", {"pc": 1, "sp": STACK, "lr": 5}),
                  _row(("register", 31, 0), {30: (UNDEFINED, None)}), _memory({}))
    with pytest.raises(UnwindError):
        apply_row(CpuContext("arm64", {"pc": 1, "sp": STACK}), _row(("register", 31, 0), {30: (SAME_VALUE, None)}),
                  _memory({}))
    with pytest.raises(UnwindError):  # DWARF register 40 is no AArch64 integer register
        apply_row(CpuContext("arm64", {"pc": 1, "sp": STACK, "lr": 5}), _row(("register", 40, 0), {}), _memory({}))


# -- whole dumps --------------------------------------------------------------------------

@pytest.mark.parametrize("cpu,arch", [("arm64", ARCH_ARM64), ("arm64-old", ARCH_ARM64_OLD)])
def test_stack_walks_an_arm64_dump_from_the_exception_context(tmp_path, cpu, arch):
    """The exception stream's context (the fault) is walked, not the thread's own (a handler's)."""
    words = {STACK + 0x40: STACK + 0x80, STACK + 0x48: 0x40_3008, STACK + 0x80: 0, STACK + 0x88: 0}
    stack = bytearray(0x100)
    for address, value in words.items():
        struct.pack_into("<Q", stack, address - STACK, value)
    fault = {"pc": 0x40_1000, "lr": 0x40_2004, "sp": STACK, "fp": STACK + 0x40, "x19": 0x19}
    dump = tmp_path / "arm64.dmp"
    dump.write_bytes(build_threads_minidump(
        modules=[{"name": "/usr/bin/app", "base": 0x40_0000, "size": 0x1_0000}],
        threads=[{"tid": 7, "regs": {"pc": 0x40_5000, "sp": STACK + 0x10, "fp": 0}, "stack": 0}],
        memory=[(STACK, bytes(stack))], exception={"thread_id": 7, "code": 0xC0000005, "address": 0, "regs": fault},
        platform_id=0x8201, cpu=cpu))
    assert read_minidump(dump).system.arch == arch
    proc = symtool("stack", "--json", "--offline", dump, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["cpu"] == "arm64"
    (thread,) = data["threads"]
    assert [(f["address"], f["trust"]) for f in thread["frames"]] == [
        ("0x401000", "context"), ("0x402004", "frame-pointer"), ("0x403008", "frame-pointer")]
    assert thread["registers"]["x19"] == "0x19" and thread["registers"]["pc"] == "0x401000"
    text = symtool("stack", "--offline", "-r", dump, cwd=tmp_path).stdout
    assert "not supported" not in text and "fp=00007ffff0000040" in text and "x19=0000000000000019" in text


# -- hostile stacks and rows ------------------------------------------------------------

@SETTINGS
@given(st.binary(min_size=0, max_size=512), st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 64 - 1),
       st.integers(0, 0x200), st.one_of(st.none(), st.integers(0, 2 ** 64 - 1)))
def test_hostile_stacks_never_break_the_walk(data, pc, lr, fp_offset, fp):
    """Random stack words (some pointing into the module, some PAC-signed), any registers: a
    bounded walk whose frames climb the stack, never an exception."""
    words = {STACK + 8 * k: int.from_bytes(data[8 * k:8 * k + 8], "little") for k in range(len(data) // 8)}
    regs = {"pc": pc, "lr": lr, "sp": STACK, "fp": STACK + fp_offset if fp is None else fp}
    result = walk_stack(CpuContext("arm64", regs), _memory(words), [APP], lambda m: None, max_frames=64)
    assert 1 <= len(result.frames) <= 64
    assert all(b.sp >= a.sp for a, b in zip(result.frames, result.frames[1:]))


@SETTINGS
@given(st.tuples(st.integers(-4, 100), st.integers(-2 ** 20, 2 ** 20)),
       st.dictionaries(st.integers(0, 100), st.tuples(st.sampled_from([OFFSET, SAME_VALUE, UNDEFINED, "register",
                                                                       "val_offset", "expression"]),
                                                      st.integers(-512, 512)), max_size=8),
       st.integers(0, 100))
def test_hostile_aarch64_rows_raise_only_unwind_errors(cfa, rules, ra):
    mem = _memory({STACK + 8 * k: STACK + 8 * k for k in range(64)})
    ctx = CpuContext("arm64", {**REGS, "sp": STACK + 0x100})
    try:
        apply_row(ctx, _row(("register", *cfa), rules, ra), mem)
    except (UnwindError, EndOfStack):
        pass


# -- the builders' arm64 dumps, read by lldb ----------------------------------------------

LLDB_REGISTER = re.compile(r"^\s+(x\d+|fp|lr|sp|pc|cpsr) = 0x([0-9a-f]+)", re.M)


def lldb_registers(dump) -> dict[str, int]:
    """The crashing thread's registers as lldb's own minidump reader gives them."""
    out = subprocess.run([need_tool("lldb-19"), "-b", "-c", str(dump), "-o", "register read --all"],
                         capture_output=True, text=True, timeout=120).stdout
    return {name: int(value, 16) for name, value in LLDB_REGISTER.findall(out)}


@pytest.mark.parametrize("cpu", ["arm64", "arm64-old"])
def test_builder_arm64_contexts_read_as_lldb_reads_them(tmp_path, cpu):
    """Windows' CONTEXT_ARM64 (ProcessorArchitecture 12) and Breakpad's old layout (0x8003), as the
    other arm64 tests write them: lldb reads the same registers symtool does."""
    regs = {k: v for k, v in REGS.items() if not k.startswith("d")}
    dump = tmp_path / f"{cpu}.dmp"
    dump.write_bytes(build_threads_minidump(
        modules=[{"name": "/usr/bin/app", "base": 0x40_0000, "size": 0x1_0000}],
        threads=[{"tid": 3, "regs": regs, "stack": 0}], memory=[(REGS["sp"], bytes(0x100))],
        exception={"thread_id": 3, "code": 11, "address": 0}, platform_id=0x8201, cpu=cpu))
    theirs = lldb_registers(dump)
    assert len(theirs) >= 34, theirs
    if cpu == "arm64":
        # lldb 19 shows 0 for CONTEXT_ARM64's Cpsr; winnt.h, Breakpad's MDRawContextARM64 and
        # rust-minidump all put it at offset 4, right after ContextFlags, where it is written.
        assert theirs.pop("cpsr") == 0
        assert {k: theirs[k] for k in regs if k != "cpsr"} == {k: v for k, v in regs.items() if k != "cpsr"}
    else:
        assert {k: theirs[k] for k in regs} == regs
    proc = symtool("stack", "--json", "--offline", dump, cwd=tmp_path)
    ours = {k: int(v, 16) for k, v in json.loads(proc.stdout)["threads"][0]["registers"].items()}
    assert {k: ours[k] for k in regs} == regs


@pytest.mark.parametrize("raw", [bytes(100), struct.pack("<I", 0x00100007) + bytes(0x38C),
                                 context_arm64(REGS, old=True)[:500]])
def test_hostile_context_in_a_dump_is_one_note(tmp_path, raw):
    """A context of the wrong size or another CPU's flags: the thread says its context is unreadable,
    the command succeeds (other threads and the module list still count), no traceback."""
    dump = tmp_path / "bad.dmp"
    dump.write_bytes(build_threads_minidump(
        modules=[{"name": "/usr/bin/app", "base": 0x40_0000, "size": 0x1_0000}],
        threads=[{"tid": 3, "raw_context": raw, "stack": 0}], memory=[(STACK, bytes(0x100))],
        exception={"thread_id": 3, "code": 11, "address": 0}, platform_id=0x8201, cpu="arm64"))
    proc = symtool("stack", "--offline", dump, cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "unreadable CPU context" in proc.stdout
