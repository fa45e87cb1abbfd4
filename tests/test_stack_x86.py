"""x86 unwinding from PDB frame data (FPO_DATA / FrameData program strings), before the
EBP chain and scanning; hostile frame data never crashes the walk."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import FIXTURES_DIR, need_tool
from symtool.cli import app
from symtool.dumps.locate import SymbolLocator
from symtool.dumps.stack import StackResolver, crash_stack
from symtool.dumps.symbolize import SymbolizerCache
from symtool.errors import FormatError
from symtool.formats.cpu_context import CpuContext
from symtool.formats.minidump import open_minidump
from symtool.formats.pdb_frames import (FPO_DATA, FRAME_DATA, FrameInfo, FrameTable, parse_fpo, parse_framedata,
                                        read_frame_table_path)
import symtool.stackwalk as stackwalk
from symtool.stackwalk import StackMemory, WalkModule, walk_stack
from symtool.stackwalk.x64 import UnwindError
from symtool.stackwalk.x86 import eval_program, unwind_x86_fpo, unwind_x86_framedata

SETTINGS = settings(max_examples=int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "500")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CRASH_PDB = FIXTURES_DIR / "pe-pdb" / "crash.pdb"
DUMP = FIXTURES_DIR / "dumps" / "symbolic-windows-mini.dmp"
STANDARD = "$T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + ="

# The crashing thread of symbolic-windows-mini.dmp as getsentry/symbolicator's snapshot
# crates/symbolicator-native/tests/integration/snapshots/integration__process_minidump__minidump_windows.snap
# has it (rust-minidump's walker with crash.pdb's frame data; kernel32 and ntdll without symbols):
# (eip, esp, ebp, trust).  The same dump's fixture is symbolic-testutils/fixtures/windows/mini.dmp.
SYMBOLICATOR_FRAMES = [
    (0x2A2A3D, 0x10FF644, 0x10FF670, "context"),  # crash.exe main (main.cpp:35)
    (0x2A2D97, 0x10FF744, 0x10FF784, "cfi"),  # crash.exe __scrt_common_main_seh (exe_common.inl:283)
    (0x750662C4, 0x10FF78C, 0x10FF798, "cfi"),  # kernel32.dll
    (0x771D0F79, 0x10FF7A0, 0x10FF7E0, "frame-pointer"),  # ntdll.dll
    (0x771D0F44, 0x10FF7E8, 0x10FF7F0, "frame-pointer"),  # ntdll.dll
]


# -- reading the records ---------------------------------------------------------------

def _pdbutil_fpo() -> str:
    return subprocess.run([need_tool("llvm-pdbutil"), "dump", "--fpo", str(CRASH_PDB)], capture_output=True,
                          text=True, timeout=60, check=True).stdout


def test_frame_records_match_llvm_pdbutil():
    """Every FPO_DATA and FrameData record as ``llvm-pdbutil dump --fpo`` prints it."""
    table = read_frame_table_path(CRASH_PDB)
    old, new = _pdbutil_fpo().split("New FPO Data")
    want_old, want_new = [], []
    for line in old.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) == 9 and cols[0] != "RVA":
            want_old.append((int(cols[0], 16), int(cols[1]), int(cols[2]), int(cols[3]), int(cols[4]),
                             int(cols[5])))
    for line in new.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) == 11 and cols[0] != "RVA":
            want_new.append((int(cols[0], 16), int(cols[1]), int(cols[2]), int(cols[3]), int(cols[5]),
                             int(cols[6]), cols[7] == "true", " ".join(cols[10].split())))
    # llvm-pdbutil prints FPO locals/params in DWORDs and saved registers as a count.
    got_old = [(r.rva, r.size, r.locals_size // 4, r.params_size // 4, r.prolog_size, r.saved_regs_size // 4)
               for r in table.fpo]
    got_new = [(r.rva, r.size, r.locals_size, r.params_size, r.prolog_size, r.saved_regs_size, r.has_seh,
                " ".join(table.program_of(r).split())) for r in table.framedata]
    assert len(want_old) == 2 and len(want_new) > 150
    assert sorted(got_old) == sorted(want_old)
    assert sorted(got_new) == sorted(want_new)
    # The flag bits: winnt.h puts fHasSEH at bit 11 and fUseBP at bit 12 of the last word (both
    # records hold 0x0800); llvm-pdbutil 14/19 reads other bits and prints "Has SEH false".  The
    # FrameData records for the same two functions say HasSEH, as bit 11 does.
    for r in table.fpo:
        assert r.has_seh and not r.uses_bp
        assert [fd.has_seh for fd in table.framedata if fd.rva == r.rva] == [True]


def test_lookup_prefers_the_latest_covering_record():
    table = read_frame_table_path(CRASH_PDB)
    main = table.find(0x2A3D)  # main's records: one, starting at 0x2910
    assert (main.rva, main.locals_size, main.params_size) == (0x2910, 244, 8)
    assert main.program.startswith("$T0 $ebp 204 + =$eip")
    assert table.find(0x1011).rva == 0x100F  # 0x1000 (276 bytes) and 0x100F both cover it: the later one
    assert table.find(0x2DC8).kind == "framedata"  # FrameData wins over the FPO_DATA record at 0x2DC4
    assert table.find(0x50000) is None
    fpo_only = FrameTable([], table.fpo)
    assert fpo_only.find(0x2DC8).kind == "fpo"


# -- program strings -------------------------------------------------------------------

def test_documented_program_string():
    """IDiaFrameData::get_program's example (rust-minidump walker.rs works it through:
    ebp=16, esp=1600 gives ebp=[16], eip=[20], esp=24)."""
    mem = StackMemory([(16, struct.pack("<II", 0xFA1EF2E6, 0xB3EF04CE))])
    out = eval_program(STANDARD, {"$ebp": 16, "$esp": 1600}, mem)
    assert (out["$ebp"], out["$eip"], out["$esp"]) == (0xFA1EF2E6, 0xB3EF04CE, 24)


@pytest.mark.parametrize("program, want", [
    ("$a 1 2 + =", 3), ("$a 5 3 - =", 2), ("$a 2 3 - =", 0xFFFFFFFF), ("$a 5 3 * =", 15), ("$a 7 2 / =", 3),
    ("$a 7 3 % =", 1), ("$a 23 8 @ =", 16), ("$a -4 0 + =", 0xFFFFFFFC), ("$b 9 = $a $b 1 + =", 10),
    ("$a 1 = $a .undef = $a 7 =", 7), ("$a 1 2 + =$b 3 =", 3),
])
def test_operators(program, want):
    assert eval_program(program, {}, StackMemory())["$a"] == want


@pytest.mark.parametrize("program", [
    "$a 1 0 / =", "$a 1 0 % =", "$a 5 3 @ =", "$a $undefined =", "$a 4 ^ =", "1 2 =", "$a +", "=", "$a 1 2 ? =",
    "$a 99999999999999999999999 =", "$a " + "1 " * 40 + "=", "$a 1 " + "+ " * 400, "$a .undef 1 + =",
])
def test_bad_programs_raise_unwind_error(program):
    with pytest.raises(UnwindError):
        eval_program(program, {}, StackMemory())


def test_codeview_register_numbers_and_forwarding():
    """PDBs write registers by CodeView number ($20 EBX, $23 ESI, $24 EDI); callee-saved registers
    the program does not restore are forwarded from the callee."""
    info = FrameInfo("framedata", 0, 0x100, 36, 0, 16, 12,
                     "$T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + =  $20 $T0 40 - ^ =  $23 $T0 44 - ^ = ")
    ebp = 0x1000
    saved = struct.pack("<11I", 0x5E5E, 0xB0B0, *[0] * 9)  # [ebp-44] ESI, [ebp-40] EBX
    mem = StackMemory([(ebp - 44, saved + struct.pack("<II", 0x2000, 0x401234))])
    got = unwind_x86_framedata(CpuContext("x86", {"esp": 0xF00, "ebp": ebp, "edi": 7, "eip": 1}), info, mem)
    assert got.regs == {"eip": 0x401234, "esp": ebp + 8, "ebp": 0x2000, "ebx": 0xB0B0, "esi": 0x5E5E, "edi": 7}


def test_rasearch():
    """.raSearch = $esp + locals + saved registers + the callee's parameter bytes; with @ it is $ebp + 4."""
    info = FrameInfo("framedata", 0, 0x100, 8, 4, 12, 0, "$T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + =")
    esp = 0x1000
    mem = StackMemory([(esp, struct.pack("<16I", *range(100, 116)))])
    got = unwind_x86_framedata(CpuContext("x86", {"esp": esp, "ebp": 0}), info, mem, callee_params=8)
    assert got.regs["eip"] == 100 + (8 + 12 + 8) // 4 and got.regs["esp"] == esp + 28 + 4
    aligned = FrameInfo("framedata", 0, 0x100, 0, 0, 0, 0,
                        "$T1 .raSearch = $T0  $T1 4 - 8 @ = $ebp $T1 4 - ^ = $eip $T1 ^ = $esp $T1 4 + =")
    got = unwind_x86_framedata(CpuContext("x86", {"esp": esp, "ebp": esp + 0x20}), aligned, mem)
    assert (got.regs["eip"], got.regs["ebp"], got.regs["esp"]) == (109, 108, esp + 0x28)


def test_program_must_set_eip_and_esp():
    mem = StackMemory([(0x1000, bytes(64))])
    for program in ("$eip 4 =", "$esp 4 =", "$T0 1 =", "$eip .undef = $esp 8 ="):
        info = FrameInfo("framedata", 0, 0x100, 0, 0, 0, 0, program)
        with pytest.raises(UnwindError):
            unwind_x86_framedata(CpuContext("x86", {"esp": 0x1000, "ebp": 0x1000}), info, mem)


def test_fpo_record():
    """Breakpad's STACK WIN 0: [esp + frame size] is the return address; fUseBP: EBP saved below."""
    esp = 0x1000
    words = [0xAAAA, 0xBBBB, 0xCCCC, 0x401000, 0x402000, 0x403000]
    mem = StackMemory([(esp, struct.pack("<6I", *words))])
    info = FrameInfo("fpo", 0, 0x40, 4, 0, 8, 0)
    got = unwind_x86_fpo(CpuContext("x86", {"esp": esp, "ebp": 0x77, "ebx": 5, "eip": 0x400000}), info, mem)
    assert got.regs == {"eip": 0x401000, "esp": esp + 16, "ebp": 0x77, "ebx": 5}
    # A leftover return address equal to the context frame's EIP is skipped.
    got = unwind_x86_fpo(CpuContext("x86", {"esp": esp, "eip": 0x401000}), info, mem, is_context=True)
    assert got.regs["eip"] == 0x402000
    bp = FrameInfo("fpo", 0, 0x40, 4, 0, 12, 0, uses_bp=True)
    got = unwind_x86_fpo(CpuContext("x86", {"esp": esp}), bp, mem)
    assert got.regs["ebp"] == 0xBBBB and got.regs["eip"] == 0x402000


# -- the walk ----------------------------------------------------------------------------

def _walk_crash(monkeypatch, build_dir):
    walks = []
    real = stackwalk.walk_stack

    def spy(*args, **kw):
        walks.append(real(*args, **kw))
        return walks[-1]

    monkeypatch.setattr(stackwalk, "walk_stack", spy)
    with open_minidump(DUMP) as md:
        stack = crash_stack(md, StackResolver(SymbolLocator([], [str(build_dir)]), SymbolizerCache()))
    return stack, walks[0]


def test_crash_dump_walks_like_symbolicator(monkeypatch, tmp_path):
    shutil.copy(CRASH_PDB, tmp_path)
    shutil.copy(FIXTURES_DIR / "pe-pdb" / "crash.exe", tmp_path)
    stack, walk = _walk_crash(monkeypatch, tmp_path)
    got = [(f.pc, f.sp, f.context.regs.get("ebp"), f.trust) for f in walk.frames]
    assert got[:len(SYMBOLICATOR_FRAMES)] == SYMBOLICATOR_FRAMES
    # Past the snapshot's end (EBP 0x10ff7f0, the chain's last link) a scan finds one more ntdll frame.
    assert all(f.trust == "scan" for f in walk.frames[len(SYMBOLICATOR_FRAMES):])
    # The frame pointer column (cdb's ChildEBP) shows each frame's EBP, as in the snapshot.
    physical = [r for r in stack.frames if not r.inline]
    assert [int(r.frame_pointer, 16) for r in physical[:len(SYMBOLICATOR_FRAMES)]] == \
        [ebp for _eip, _esp, ebp, _trust in SYMBOLICATOR_FRAMES]
    rows = [(r.function, r.line, r.trust) for r in stack.frames if r.function]
    assert rows == [("?A0xc3a0617d::crash", 24, "context"), ("?A0xc3a0617d::start", 28, "context"),
                    ("main", 35, "context"), ("invoke_main", 78, "cfi"), ("__scrt_common_main_seh", 283, "cfi")]


def test_without_the_pdb_the_walk_falls_back(monkeypatch, tmp_path):
    shutil.copy(FIXTURES_DIR / "pe-pdb" / "crash.exe", tmp_path)
    _stack, walk = _walk_crash(monkeypatch, tmp_path)
    assert walk.frames[0].trust == "context"
    assert "cfi" not in {f.trust for f in walk.frames}


def test_cli_shows_cfi_frames(tmp_path):
    shutil.copy(CRASH_PDB, tmp_path)
    result = CliRunner().invoke(app, ["stack", str(DUMP), "-b", str(tmp_path), "--offline"],
                                env={"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": ""})
    assert result.exit_code == 0, result.output
    # ChildEBP is the frame's EBP (0x10ff784 in symbolicator's snapshot), not its ESP (0x10ff744).
    assert "010ff784 750662c4 crash!__scrt_common_main_seh+0xf9" in result.output


def _table_walk(table: FrameTable, words: list[int], regs: dict) -> list:
    mem = StackMemory([(0x10000, struct.pack(f"<{len(words)}I", *words))])
    mods = [WalkModule(0x400000, 0x10000, "a.exe", 0)]
    res = walk_stack(CpuContext("x86", {"eip": 0x401000, "esp": 0x10000, **regs}), mem, mods, lambda m: None,
                     frame_info_for=lambda m: table)
    return res.frames


def test_frame_data_that_leads_nowhere_falls_back_to_ebp():
    # The program sends EIP outside every module: the EBP chain is used instead.
    bad = FrameTable([FrameInfo("framedata", 0, 0x10000, 0, 0, 0, 0, "$eip 12345 = $esp $esp 4 + =")], [])
    words = [0] * 4 + [0, 0x401500] + [0] * 10
    frames = _table_walk(bad, words, {"ebp": 0x10010})
    assert [(f.pc, f.trust) for f in frames[:2]] == [(0x401000, "context"), (0x401500, "frame-pointer")]


# -- fuzzing ---------------------------------------------------------------------------

TOKENS = ["$eip", "$esp", "$ebp", "$ebx", "$T0", "$T1", "$20", "$L", "$P", ".raSearch", ".cbSavedRegs",
          ".cbLocals", ".cbParams", ".undef", "+", "-", "*", "/", "%", "@", "^", "=", "0", "4", "-8", "65536",
          "4294967295", "=$eip", "junk", "$"]


@SETTINGS
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=60),
       stack=st.binary(min_size=0, max_size=256), esp=st.integers(0x10000 - 64, 0x10000 + 256),
       ebp=st.integers(0, 0xFFFFFFFF), sizes=st.tuples(*[st.integers(0, 0xFFFFFFFF)] * 4))
def test_fuzzed_programs_unwind_or_fail_cleanly(tokens, stack, esp, ebp, sizes):
    info = FrameInfo("framedata", 0, 0x100, sizes[0], sizes[1], sizes[2], 0, " ".join(tokens))
    mem = StackMemory([(0x10000, stack)])
    try:
        got = unwind_x86_framedata(CpuContext("x86", {"esp": esp, "ebp": ebp}), info, mem, sizes[3])
    except UnwindError:
        return
    assert all(0 <= v <= 0xFFFFFFFF for v in got.regs.values())


@SETTINGS
@given(data=st.data())
def test_fuzzed_frame_streams_give_records_or_format_errors(data):
    names = data.draw(st.binary(max_size=64))
    records = data.draw(st.lists(st.tuples(*[st.integers(0, 0xFFFFFFFF)] * 6, st.integers(0, 0xFFFF),
                                           st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)), max_size=8))
    raw = b"".join(FRAME_DATA.pack(*r) for r in records)
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    try:
        table = FrameTable(parse_framedata(raw, names), [], names)
    except FormatError:
        return
    fpo_raw = data.draw(st.binary(max_size=80))
    try:
        fpo = parse_fpo(fpo_raw)
    except FormatError:
        assert len(fpo_raw) % FPO_DATA.size
        return
    table = FrameTable(table.framedata, fpo, names)
    words = data.draw(st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=64))
    mem = StackMemory([(0x10000, struct.pack(f"<{len(words)}I", *words))])
    res = walk_stack(CpuContext("x86", {"eip": data.draw(st.integers(0x400000, 0x40FFFF)), "esp": 0x10000,
                                        "ebp": data.draw(st.integers(0, 0xFFFFFFFF))}), mem,
                     [WalkModule(0x400000, 0x10000, "a.exe", 0)], lambda m: None, frame_info_for=lambda m: table)
    assert 1 <= len(res.frames) <= 1024


@SETTINGS
@given(data=st.data())
def test_fuzzed_pdb_frame_tables_give_tables_or_format_errors(data, tmp_path):
    """crash.pdb with bytes flipped in its frame streams, optional debug header and /names."""
    raw = bytearray(CRASH_PDB.read_bytes())
    for _ in range(data.draw(st.integers(1, 12))):
        at = data.draw(st.sampled_from(_HOT)) + data.draw(st.integers(0, 63))
        raw[min(at, len(raw) - 1)] = data.draw(st.integers(0, 255))
    path = tmp_path / "f.pdb"
    path.write_bytes(bytes(raw))
    try:
        table = read_frame_table_path(path)
    except FormatError:
        return
    for rva in (0x1000, 0x2A3D, 0x2D96):
        table.find(rva)


def _hot_offsets() -> list[int]:
    """File offsets of the blocks holding the DBI stream's tail (optional debug header), the FPO and
    New FPO streams and /names, found with the reader itself."""
    from symtool.formats.pdb import STREAM_DBI, open_msf, read_dbi_header, read_pdb
    from symtool.formats.pdb_frames import _debug_streams

    f, msf = open_msf(CRASH_PDB)
    with f:
        slots = _debug_streams(msf)
        streams = [slots[0], slots[9], read_pdb(CRASH_PDB).named_streams["/names"], STREAM_DBI]
        offs = []
        for s in streams:
            offs += [b * msf.block_size + k for b in msf.stream_blocks(s) for k in range(0, msf.block_size, 64)]
        dbi = read_dbi_header(msf)
        assert dbi is not None
    return offs


_HOT = _hot_offsets()


# -- arm64 ---------------------------------------------------------------------------

@pytest.mark.parametrize("arch", [0x8003, 12])  # Breakpad's PROCESSOR_ARCHITECTURE_ARM64_OLD, Windows' ARM64
def test_arm64_dump_without_a_context_says_so(tmp_path, arch):
    """An arm64 dump is walked (tests/test_stack_arm64.py); one whose exception has no context says
    that, not that arm64 is unsupported."""
    from builders.minidump import build_minidump

    path = tmp_path / "arm64.dmp"
    path.write_bytes(build_minidump(arch=arch, exception={"code": 0xC0000005, "address": 0x1000, "thread_id": 7}))
    if arch == 0x8003:  # the `minidump` package knows only Breakpad's number for arm64
        from minidump.minidumpfile import MinidumpFile

        ref = MinidumpFile.parse(str(path))
        assert ref.sysinfo.ProcessorArchitecture.name == "AARCH64"
        assert ref.exception.exception_records[0].ThreadId == 7
    for extra in ([], ["--all"], ["--json"]):
        result = CliRunner().invoke(app, ["stack", str(path), "--offline", *extra],
                                    env={"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": ""})
        assert result.exit_code == 0, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "no CPU context" in result.output and "not supported" not in result.output
        assert "Traceback" not in result.output


def test_hostile_program_offsets():
    """Offsets outside /names are a FormatError; an unterminated or over-long program only makes
    its record unusable (read at lookup), so a table of many records costs no more than its size."""
    rec = FRAME_DATA.pack(0, 0x100, 0, 0, 0, 5, 0, 0, 0)
    with pytest.raises(FormatError):
        parse_framedata(rec, b"\0" * 5)
    names = b"x" * 4096  # no NUL anywhere
    many = b"".join(FRAME_DATA.pack(i * 0x10, 0x10, 0, 0, 0, i, 0, 0, 0) for i in range(4096))
    table = FrameTable(parse_framedata(many, names), [], names)
    assert len(table) == 4096 and table.find(0x25).program is None
    words = [0] * 4 + [0, 0x401500] + [0] * 10
    frames = _table_walk(table, words, {"ebp": 0x10010})
    assert [(f.pc, f.trust) for f in frames[:2]] == [(0x401000, "context"), (0x401500, "frame-pointer")]


def test_stack_fetches_the_image_and_pdb_from_an_http_store_on_demand(nginx, tmp_path):
    """Issue 15 item 2: a store reached over HTTP is fetched into the cache when a frame needs it,
    verified by identity; --offline turns that off."""
    store = nginx.www / "stack-on-demand"
    proc = subprocess.run([sys.executable, "-m", "symtool", "publish", "--store", str(store),
                           str(CRASH_PDB), str(FIXTURES_DIR / "pe-pdb" / "crash.exe")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMTOOL_", "_NT_"))}
    env.update(SYMTOOL_CACHE=str(cache), HOME=str(tmp_path))
    argv = [sys.executable, "-m", "symtool", "stack", str(DUMP), "--store", nginx.url("stack-on-demand")]
    offline = subprocess.run(argv + ["--offline"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert "crash!__scrt_common_main_seh" not in offline.stdout
    assert not (cache / "crash.pdb").exists()
    online = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert online.returncode == 0, online.stderr
    assert "010ff784 750662c4 crash!__scrt_common_main_seh+0xf9" in online.stdout
    # What was fetched sits in the cache under its key, and is the published file.
    cached = cache / "crash.pdb" / "3249D99D0C4049318610F4E4FB0B69361" / "crash.pdb"
    assert cached.read_bytes() == CRASH_PDB.read_bytes()
