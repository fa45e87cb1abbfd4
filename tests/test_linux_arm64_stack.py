"""`symtool stack` on Linux arm64 minidumps of real crashes, against gdb-multiarch.

The programs (tests/arm64_builds.py) are C built by gcc and clang at several settings and the
Rust no_core samples, crashed under qemu-aarch64; gdb-multiarch's backtrace of each core is the
oracle.  tests/builders/core_minidump.py turns each core into a Breakpad minidump (the old
``MDRawContextARM64_Old`` for gcc and Rust, crashpad's ``MDRawContextARM64`` for clang), and
symtool must list gdb's frames from a store holding the binaries: function by function, file:line,
inline frames, every thread, and each caller found the way its binary allows (``cfi`` with
.eh_frame or .debug_frame, the C library's own CFI past abort() or pthread_join, ``frame-pointer``
without any CFI or from a bad PC).  Return addresses signed by pointer authentication are stripped
(gdb cannot read those cores past the first signed one: the same program built without pac-ret is
the oracle).  The registers unwound through ten saved integer registers are gdb's too, the contexts
lldb-19's, the AArch64 CFI rows llvm-dwarfdump's; with CFI and FP taken away, scanning still finds
gdb's return addresses; mutated contexts and stacks never break the walk.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from arm64_builds import C_BUILDS, PAC_ORACLE, RUST_CRASHES, SYSROOT, Arm64Crash, arm64_crashes  # noqa: F401
from builders.core_minidump import core_to_minidump
from cfi_rows import AARCH64_NAMES, check_rows
from conftest import need_tool
from symtool.cli import app
from symtool.dumps.locate import SymbolLocator
from symtool.dumps.stack import StackResolver, all_stacks
from symtool.dumps.symbolize import SymbolizerCache
from symtool.formats.cpu_context import parse_context
from symtool.formats.dwarf_cfi import read_elf_cfi
from symtool.formats.minidump import open_minidump
from symtool.stackwalk import StackMemory, WalkModule, walk_stack

LIBRARIES = (SYSROOT / "lib" / "libc.so.6", SYSROOT / "lib" / "ld-linux-aarch64.so.1")


def _layout(crash: Arm64Crash) -> str:
    return "new" if crash.build.startswith("clang") else "old"


@pytest.fixture(scope="module")
def dumps(arm64_crashes, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("arm64-dumps")
    paths = {}
    for name, crash in arm64_crashes.items():
        path = out / (name.replace("/", "-") + ".dmp")
        path.write_bytes(core_to_minidump(crash.core, executable=crash.binary, sysroot=SYSROOT,
                                          arm64_context=_layout(crash)))
        paths[name] = path
    return paths


@pytest.fixture(scope="module")
def store(arm64_crashes, tmp_path_factory) -> Path:
    """Every binary (and .dwp), libc and the dynamic linker, published with symtool publish."""
    root = tmp_path_factory.mktemp("arm64-store") / "store"
    root.mkdir()
    files = {c.binary for c in arm64_crashes.values()} | {f for c in arm64_crashes.values() for f in c.debug_files}
    result = CliRunner().invoke(app, ["publish", "--store", str(root), *map(str, sorted(files)),
                                      *map(str, LIBRARIES)], env={"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": ""})
    assert result.exit_code == 0, result.output
    return root


def _stack_json(dump: Path, store: Path) -> dict:
    result = CliRunner().invoke(app, ["stack", "--json", "--offline", "--store", str(store), str(dump)],
                                env={"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": "", "SYMTOOL_CACHE": str(store.parent)})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def same_function(gdb_name: str, ours: str | None) -> bool:
    # A #[no_mangle] Rust function: gdb qualifies it by its DWARF namespace (crash_deep::mainCRTStartup),
    # its linkage name (what symtool, like llvm-symbolizer, gives) is bare.
    if gdb_name == "??":
        return ours is None
    return ours is not None and (gdb_name == ours or gdb_name.endswith("::" + ours))


def _expected_trust(crash: Arm64Crash, callee: dict) -> str:
    """How the caller of the frame ``callee`` (its first row in ``stack --json``) must have been found."""
    if callee["module"] is None:
        return "frame-pointer"  # a bad PC, in no module: the return address is LR
    if crash.build == "clang-fp-only" and callee["module"] == crash.binary.name:
        return "frame-pointer"  # no CFI at all in the program: its frame records (the C library has CFI)
    return "cfi"


CRASH_NAMES = [f"{build}/{mode}" for build, (_c, _f, _s, modes) in C_BUILDS.items() for mode in modes] + \
    [f"rust/{name}" for name in RUST_CRASHES]


@pytest.mark.parametrize("name", CRASH_NAMES)
def test_stack_gives_gdbs_frames(arm64_crashes, dumps, store, name):
    crash = arm64_crashes[name]
    gdb = crash.frames
    oracle_build = PAC_ORACLE.get(crash.build)
    if oracle_build is not None:
        # gdb stops at the first signed return address; the same program built without pac-ret
        # has the same frames (functions, lines), at other addresses.
        gdb = [replace(g, address=None if g.address is None else -1)
               for g in arm64_crashes[name.replace(crash.build, oracle_build)].frames]
        assert _signed_return_addresses(dumps[name]), "no PAC-signed return address on the stack"
    # gdb stops at main (a Rust program's entry); a thread's backtrace ends in the C library.
    assert gdb and (gdb[-1].function == "main" or gdb[-1].function.endswith("mainCRTStartup")
                    or name.endswith("/thread"))
    data = _stack_json(dumps[name], store)
    assert data["cpu"] == "arm64"
    _check_frames(crash, gdb, data["threads"][0]["frames"])


def symbolizer_chain(binary: Path, address: int) -> list[tuple[str, int]]:
    """llvm-symbolizer's (function, line) for ``address`` of ``binary``, innermost inlined call first."""
    out = subprocess.run([need_tool("llvm-symbolizer"), "--inlines", "-e", str(binary), hex(address)],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    return [(out[i], int(out[i + 1].rsplit(":", 2)[1])) for i in range(0, len(out) - 1, 2)]


def _check_frames(crash: Arm64Crash, gdb: list, rows: list[dict]) -> None:
    """``rows`` (a thread's frames in ``stack --json``) begin with gdb's frames: function, file:line,
    inline rows where gdb has them, each caller's return address, and how it was found."""
    assert len(rows) >= len(gdb), (gdb, rows)
    start = 0
    for k, (g, row) in enumerate(zip(gdb, rows)):
        where = (crash.name, k, g, row)
        assert same_function(g.function, row["function"]), where
        starts_physical = k == 0 or not rows[k - 1]["inline"]
        callee, start = (rows[start], k) if starts_physical else (None, start)
        if g.file is not None:
            assert row["file"] == g.file or row["file"].endswith("/" + g.file), where
            if row["line"] != g.line:
                # At a function's first instruction gdb gives an inlined frame 0 its caller's line;
                # llvm-symbolizer (and eu-addr2line) read the line table: then ours must be theirs.
                lookup = int(row["address"], 16) - (0 if k == 0 or rows[start]["trust"] == "context" else 4)
                assert k == start == 0 or rows[start]["trust"] == "context", where
                assert (row["function"], row["line"]) == symbolizer_chain(crash.binary, lookup)[k - start], where
        assert starts_physical == (k == 0 or g.address is not None), where  # gdb prints a caller's address once
        if k and starts_physical:
            assert g.address == -1 or int(row["address"], 16) == g.address, where
            assert row["trust"] == _expected_trust(crash, callee), where
    assert rows[0]["trust"] == "context"
    assert all(r["trust"] in ("context", "cfi", "frame-pointer", "scan") for r in rows)


@pytest.mark.parametrize("build", ["gcc-O1", "clang-O2", "clang-fp-only"])
def test_every_thread_is_gdbs(arm64_crashes, dumps, store, build):
    """A second thread crashed while the first waited in pthread_join: `stack --all` walks both,
    the waiting one from inside the C library (its CFI), as gdb's `thread apply all bt` does."""
    crash = arm64_crashes[f"{build}/thread"]
    assert len(crash.threads) == 2
    result = CliRunner().invoke(app, ["stack", "--all", "--json", "--offline", "--store", str(store),
                                      str(dumps[crash.name])], env={"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": ""})
    assert result.exit_code == 0, result.output
    ours = {t["thread_id"]: t for t in json.loads(result.stdout)["threads"]}
    assert set(ours) == set(crash.threads)
    first = next(iter(crash.threads))
    assert ours[first]["crashed"] and not any(t["crashed"] for tid, t in ours.items() if tid != first)
    for tid, gdb in crash.threads.items():
        _check_frames(crash, gdb, ours[tid]["frames"])


def _signed_return_addresses(dump: Path) -> list[int]:
    """Words of the crashing thread's stack that are a code address with a PAC signature above it."""
    with open_minidump(dump) as md:
        d = md.dump
        code = [(m.base, m.base + m.size) for m in d.modules]
        stack = md.read_range(d.thread(d.exception.thread_id).stack, 1 << 20)
    words = struct.unpack(f"<{len(stack) // 8}Q", stack[:len(stack) // 8 * 8])
    return [w for w in words if w >> 48 and any(lo <= w & ((1 << 48) - 1) < hi for lo, hi in code)]


def _walk(crash: Arm64Crash, dump: Path):
    """The library's walk of ``dump`` with the crash's binary and the C libraries' CFI."""
    images = {}
    with open_minidump(dump) as md:
        d = md.dump
        ctx = parse_context(md.read_location(d.exception.context), d.system.cpu)
        thread = d.thread(d.exception.thread_id)
        mem = StackMemory([(thread.stack.start, md.read_range(thread.stack, thread.stack.size))])
        modules = [WalkModule(m.base, m.size, m.file_name, i) for i, m in enumerate(d.modules)]
        for wm in modules:
            path = crash.binary if wm.name == crash.binary.name else next(
                (lib for lib in LIBRARIES if lib.name == wm.name), None)
            if path is not None:
                images[wm.index] = read_elf_cfi(path)
    try:
        return walk_stack(ctx, mem, modules, lambda wm: images.get(wm.index))
    finally:
        for image in images.values():
            image.close()


@pytest.mark.parametrize("build", ["gcc-O1", "gcc-O2-nofp", "gcc-debug-frame", "clang-O2"])
def test_registers_unwound_through_saved_pairs_are_gdbs(arm64_crashes, dumps, build):
    """many_saves keeps ten integer values in x19..x28 across its call: main's registers are
    restored from its saves, as gdb restores them (and fp, sp, pc of every frame)."""
    name = f"{build}/saves"
    crash = arm64_crashes[name]
    result = _walk(crash, dumps[name])
    assert len(crash.frames) == 3 and len(result.frames) >= 3  # leaf_load, many_saves, main
    for k, gdb_regs in crash.registers.items():
        if k >= len(crash.frames):
            continue  # past main: gdb's backtrace stops there
        ours = dict(result.frames[k].context.regs)
        ours["x29"] = ours.pop("fp", None)
        compared = {r: (ours[r], v) for r, v in gdb_regs.items() if ours.get(r) is not None}
        assert all(a == b for a, b in compared.values()), (k, {r: (hex(a), hex(b)) for r, (a, b) in compared.items()})
        assert {"sp", "pc", "x29"} <= set(compared), (k, compared)
        if k == 2:  # main: every callee-saved register many_saves used was restored from the stack
            assert {f"x{i}" for i in range(19, 29)} <= set(compared), sorted(compared)


def test_the_old_and_new_context_layouts_give_one_walk(arm64_crashes, tmp_path):
    crash = arm64_crashes["gcc-O1/recurse"]
    walks = []
    for layout in ("old", "new"):
        dump = tmp_path / f"{layout}.dmp"
        dump.write_bytes(core_to_minidump(crash.core, executable=crash.binary, sysroot=SYSROOT, arm64_context=layout))
        walks.append([(f.pc, f.sp, f.trust) for f in _walk(crash, dump).frames])
    assert walks[0] == walks[1] and len(walks[0]) > 40


def test_builder_dump_reads_with_the_independent_minidump_reader(arm64_crashes, dumps):
    from minidump.minidumpfile import MinidumpFile

    crash = arm64_crashes["gcc-O1/fnptr"]
    md = MinidumpFile.parse(str(dumps["gcc-O1/fnptr"]))
    assert md.sysinfo.ProcessorArchitecture.name == "AARCH64" and md.sysinfo.PlatformId.value == 0x8201
    names = [m.name for m in md.modules.modules]
    assert names[0] == str(crash.binary) and any(n.endswith("/libc.so.6") for n in names)
    assert md.exception.exception_records[0].ExceptionRecord.ExceptionCode_raw == 11  # SIGSEGV
    (thread,) = md.threads.threads
    assert md.memory_segments.memory_segments[0].start_virtual_address == thread.Stack.StartOfMemoryRange


@pytest.mark.parametrize("build,which", [("gcc-O1", "eh-frame"), ("gcc-O2-nofp", "eh-frame"),
                                         ("clang-O2", "eh-frame"), ("gcc-debug-frame", "debug-frame")])
def test_aarch64_cfi_rows_match_llvm_dwarfdump(arm64_crashes, build, which):
    binary = next(c.binary for c in arm64_crashes.values() if c.build == build)
    assert check_rows(binary, which, AARCH64_NAMES) >= 10


def test_cfi_rows_of_the_rust_binaries_and_libc(arm64_crashes):
    assert check_rows(arm64_crashes["rust/crash-deep"].binary, "eh-frame", AARCH64_NAMES) >= 3
    assert check_rows(LIBRARIES[0], "eh-frame", AARCH64_NAMES) > 1000


def test_stack_text_of_an_arm64_dump(arm64_crashes, dumps, store):
    result = CliRunner().invoke(app, ["stack", "-r", "--offline", "--store", str(store), str(dumps["rust/crash-deep"])],
                                env={"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": ""})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("x0=") and any(line.startswith("fp=") and " pc=" in line for line in lines)
    assert any("crash_deep!minicore::poke+0x0" in line for line in lines)
    assert any("(Inline Function)" in line and "crash_deep::middle" in line for line in lines)


@pytest.mark.parametrize("layout", ["old", "new"])
def test_real_contexts_read_as_lldb_reads_them(arm64_crashes, tmp_path, layout):
    """The aarch64 core's registers, through either context layout: lldb's minidump reader and
    symtool's agree, and both are gdb's frame 0."""
    from test_stack_arm64 import lldb_registers

    crash = arm64_crashes["gcc-O1/saves"]
    dump = tmp_path / f"{layout}.dmp"
    dump.write_bytes(core_to_minidump(crash.core, executable=crash.binary, sysroot=SYSROOT, arm64_context=layout))
    theirs = lldb_registers(dump)
    with open_minidump(dump) as md:
        ours = parse_context(md.read_location(md.dump.exception.context), md.dump.system.cpu).regs
    if layout == "new":
        theirs.pop("cpsr")  # lldb 19 reads no Cpsr from CONTEXT_ARM64 (tests/test_stack_arm64.py)
    assert len(theirs) >= 33 and {k: ours[k] for k in theirs} == theirs
    gdb = crash.registers[0]
    assert (ours["fp"], ours["sp"], ours["pc"], ours["x19"]) == (gdb["x29"], gdb["sp"], gdb["pc"], gdb["x19"])


@pytest.mark.parametrize("name", ["gcc-O2-nofp/recurse", "gcc-O2-nofp/fnptr", "gcc-O1/saves", "rust/crash-deep"])
def test_without_cfi_or_frame_pointer_scanning_finds_gdbs_return_addresses(arm64_crashes, dumps, name):
    """The binary's CFI hidden from the walker and the context's FP dropped: past the leaf's LR,
    scanning for words that follow a BL/BLR in the binary's code finds every return address gdb
    unwound to, in order (a scan may also pick up stale ones between them)."""
    crash = arm64_crashes[name]
    with open_minidump(dumps[name]) as md:
        d = md.dump
        ctx = parse_context(md.read_location(d.exception.context), d.system.cpu)
        del ctx.regs["fp"]
        thread = d.thread(d.exception.thread_id)
        mem = StackMemory([(thread.stack.start, md.read_range(thread.stack, thread.stack.size))])
        modules = [WalkModule(m.base, m.size, m.file_name, i) for i, m in enumerate(d.modules)]
    image = read_elf_cfi(crash.binary)
    image.sections = []  # no .eh_frame / .debug_frame: only the code, for checking call sites
    main = next(m for m in modules if m.name == crash.binary.name)
    try:
        result = walk_stack(ctx, mem, modules, lambda wm: image if wm.index == main.index else None, max_frames=200)
    finally:
        image.close()
    pcs = [f.pc for f in result.frames]
    wanted = [g.address for g in crash.frames if g.address is not None]
    found = iter(pcs)
    assert all(any(pc == address for pc in found) for address in wanted), ([hex(a) for a in wanted],
                                                                            [hex(p) for p in pcs])
    assert [f.trust for f in result.frames[:2]] == ["context", "frame-pointer"]  # the leaf, through LR
    assert {f.trust for f in result.frames[2:]} == {"scan"}


FUZZ = settings(max_examples=max(20, int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "500")) // 5), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.data())
def test_mutated_arm64_contexts_and_stacks_give_stacks_or_errors(arm64_crashes, dumps, data):
    """A real arm64 dump with its context and the top of its stack mutated, walked with the real
    binary's CFI: frames or an error per thread, never an exception, never more than the cap."""
    crash = arm64_crashes["gcc-O1/fnptr"]
    raw = bytearray(dumps["gcc-O1/fnptr"].read_bytes())
    with open_minidump(dumps["gcc-O1/fnptr"]) as md:
        context, stack = md.dump.exception.context, md.dump.threads[0].stack
    spans = [(context.rva, context.size), (stack.rva, min(stack.size, 4096))]
    for _ in range(data.draw(st.integers(1, 24))):
        rva, size = data.draw(st.sampled_from(spans))
        raw[rva + data.draw(st.integers(0, size - 1))] = data.draw(st.integers(0, 255))
    with tempfile.NamedTemporaryFile(suffix=".dmp") as f:
        f.write(raw)
        f.flush()
        with open_minidump(f.name) as md:
            resolver = StackResolver(SymbolLocator([], [str(crash.binary.parent)]), SymbolizerCache())
            try:
                for s in all_stacks(md, resolver, max_frames=256):
                    assert len(s.frames) <= 4 * 256
            finally:
                resolver.close()
