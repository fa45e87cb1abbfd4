"""`symtool stack` on Linux arm64 minidumps of real crashes, against gdb-multiarch.

The programs (tests/arm64_builds.py) are C built by gcc and clang at several settings and the
Rust no_core samples, crashed under qemu-aarch64; gdb-multiarch's backtrace of each core is the
oracle.  tests/builders/core_minidump.py turns each core into a Breakpad minidump (the old
``MDRawContextARM64_Old`` for gcc and Rust, crashpad's ``MDRawContextARM64`` for clang), and
symtool must list gdb's frames from a store holding the binaries: function by function, file:line,
inline frames, and each caller found the way its binary allows (``cfi`` with .eh_frame or
.debug_frame, ``frame-pointer`` without any CFI or from a bad PC).  The registers unwound through
ten saved integer registers are gdb's too, and the AArch64 CFI rows are llvm-dwarfdump's.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arm64_builds import C_BUILDS, PAC_ORACLE, RUST_CRASHES, SYSROOT, Arm64Crash, arm64_crashes  # noqa: F401
from builders.core_minidump import core_to_minidump
from cfi_rows import AARCH64_NAMES, check_rows
from symtool.cli import app
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


def _expected_trust(crash: Arm64Crash, physical: int) -> str:
    """How caller frame ``physical`` (1 = the first caller) must have been found."""
    if crash.build == "clang-fp-only":
        return "frame-pointer"  # no CFI at all: the frame records
    if crash.name.endswith("/badpc") and physical == 1:
        return "frame-pointer"  # the PC is in no module: the return address is LR
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
    assert gdb and (gdb[-1].function in ("main", "crash_stack::mainCRTStartup") or "mainCRTStartup" in gdb[-1].function)
    data = _stack_json(dumps[name], store)
    assert data["cpu"] == "arm64"
    rows = data["threads"][0]["frames"]
    assert len(rows) >= len(gdb), (gdb, rows)
    physical = 0
    for k, (g, row) in enumerate(zip(gdb, rows)):
        where = (name, k, g, row)
        assert same_function(g.function, row["function"]), where
        if g.file is not None:
            assert row["file"] == g.file or row["file"].endswith("/" + g.file), where
            assert row["line"] == g.line, where
        starts_physical = k == 0 or not rows[k - 1]["inline"]
        assert starts_physical == (k == 0 or g.address is not None), where  # gdb prints a caller's address once
        if k and starts_physical:
            physical += 1
            assert g.address == -1 or int(row["address"], 16) == g.address, where
            assert row["trust"] == _expected_trust(crash, physical), where
    assert rows[0]["trust"] == "context"
    assert all(r["trust"] in ("context", "cfi", "frame-pointer", "scan") for r in rows)


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
    assert os.path.basename(str(dumps["rust/crash-deep"])).endswith(".dmp")
