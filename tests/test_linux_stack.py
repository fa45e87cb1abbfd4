"""`symtool stack` and `symtool dumps` on Linux (Breakpad-format) minidumps of x86_64 programs.

The crash is real: the no_core samples built for x86_64-unknown-linux-gnu at
full-debug (debug = 2, split-debuginfo = packed: a .dwp beside each binary),
run under gdb, which stops at the signal, prints its own backtrace (the
oracle: function, file:line for every frame, inline frames included) and
writes a core with ``gcore``.  tests/builders/core_minidump.py turns the core
into a Breakpad minidump (checked with the independent ``minidump`` reader),
and symtool must walk it with the binary's DWARF CFI and give gdb's frames.

The CFI reader is checked against llvm-dwarfdump's unwind rows (.eh_frame of
the Rust binaries and of a C program with a personality routine, .debug_frame
of a C program built without unwind tables) and fuzzed with mutated sections.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders.core_minidump import core_to_minidump, elf_build_id
from cfi_rows import check_rows as _check_rows
from cli_runner import symtool_in_process
from conftest import FIXTURES_DIR, need_tool
from symtool.errors import FormatError
from symtool.formats.cpu_context import CpuContext
from symtool.formats.dwarf import SectionView
from symtool.formats.dwarf_cfi import (OFFSET, REGISTER, SAME_VALUE, UNDEFINED, VAL_OFFSET, CfiRow, CfiSection,
                                       read_elf_cfi)
from symtool.stackwalk.cfi import EndOfStack, apply_row
from symtool.stackwalk.memory import StackMemory
from symtool.stackwalk.x64 import UnwindError

CRASHES = ("crash-deep", "crash-ill", "crash-recurse", "crash-me")


def symtool(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SYMTOOL_STORE", "_NT_SYMBOL_PATH", "SYMTOOL_CACHE")}
    return symtool_in_process(*map(str, args), timeout=300, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def build(linux_builds):
    """samples/ at full-debug for Linux: the session's build (tests/native_builds.py), read-only."""
    return linux_builds.dwarf4


# gdb's backtrace lines: "#1  0x0000000000201379 in crash_deep::level3 (p=0x0) at crates/.../crash-deep.rs:13";
# inline frames and frame 0 have no address.
GDB_FRAME = re.compile(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(.+?) \(.*\) at (\S+):(\d+)$")


def gdb_crash(binary: Path, core: Path) -> list[tuple[str, str, int]]:
    """Run ``binary`` under gdb to its signal: gdb's backtrace (function, file, line) and a core file."""
    gdb = need_tool("gdb")
    proc = subprocess.run([gdb, "-batch", "-nx", "-ex", "set pagination off", "-ex", "run", "-ex", "bt",
                           "-ex", f"gcore {core}", str(binary)], capture_output=True, text=True, timeout=120,
                          cwd=binary.parent)
    frames = []
    for line in proc.stdout.splitlines():
        m = GDB_FRAME.match(line.strip())
        if m:
            assert int(m.group(1)) == len(frames), proc.stdout
            frames.append((m.group(2), m.group(3), int(m.group(4))))
    assert frames and core.is_file(), proc.stdout + proc.stderr
    return frames


@pytest.fixture(scope="module")
def crashes(build, tmp_path_factory):
    """name -> (gdb's frames, minidump path) for each crash sample."""
    d = tmp_path_factory.mktemp("dumps")
    out = {}
    for name in CRASHES:
        frames = gdb_crash(build.bin(name), d / f"{name}.core")
        dump = d / f"{name}.dmp"
        dump.write_bytes(core_to_minidump(d / f"{name}.core"))
        out[name] = (frames, dump)
    return out


def same_function(gdb_name: str, ours: str) -> bool:
    # gdb qualifies a #[no_mangle] function by the namespace of its DWARF entry
    # (crash_deep::mainCRTStartup); the DWARF symbolizer names functions by their linkage
    # name, as llvm-symbolizer does, and a #[no_mangle] one's is bare (mainCRTStartup).
    # The only divergence allowed; every other name must be gdb's exactly.
    return gdb_name == ours or gdb_name.endswith("::" + ours)


# -- the builder ---------------------------------------------------------------------------------

def test_builder_dump_reads_with_the_independent_minidump_reader(build, crashes):
    from minidump.minidumpfile import MinidumpFile

    _frames, dump = crashes["crash-deep"]
    md = MinidumpFile.parse(str(dump))
    assert md.sysinfo.ProcessorArchitecture.name == "AMD64"
    assert md.sysinfo.PlatformId.value == 0x8201  # Linux
    (module,) = md.modules.modules
    assert module.name == str(build.bin("crash-deep")) and module.baseaddress == 0x200000
    assert md.exception.exception_records[0].ExceptionRecord.ExceptionCode_raw == 11  # SIGSEGV
    (thread,) = md.threads.threads
    seg = md.memory_segments.memory_segments[0]
    assert seg.start_virtual_address == thread.Stack.StartOfMemoryRange
    assert elf_build_id(build.bin("crash-deep")).hex() == _symtool_module(dump)["code_id"]


def _symtool_module(dump: Path) -> dict:
    proc = symtool("dumps", "--json", "--offline", dump, cwd=dump.parent)
    (row,) = json.loads(proc.stdout)
    return row["modules"][0]


# -- symtool stack against gdb -------------------------------------------------------------------

@pytest.mark.parametrize("name", CRASHES)
def test_stack_gives_gdbs_frames(build, crashes, name):
    gdb_frames, dump = crashes[name]
    proc = symtool("stack", "--json", "--offline", "-b", build.out, dump, cwd=dump.parent)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    frames = data["threads"][0]["frames"]
    ours = [(f["function"], f["file"], f["line"]) for f in frames]
    assert len(ours) == len(gdb_frames), (ours, gdb_frames)
    for (gfunc, gfile, gline), (func, file, line) in zip(gdb_frames, ours):
        assert same_function(gfunc, func), (gdb_frames, ours)
        assert file is not None and file.endswith("/" + gfile) and line == gline, (gdb_frames, ours)
    # Every caller was found with the CFI: nothing scanned, no frame pointer guessed.
    assert [f["trust"] for f in frames if not f["inline"]][1:] == ["cfi"] * (len([f for f in frames
                                                                                if not f["inline"]]) - 1)
    assert frames[0]["trust"] == "context"
    assert any("found by build id: " + name in n for n in data["notes"])


def test_stack_text_has_the_inline_row(build, crashes):
    _frames, dump = crashes["crash-deep"]
    proc = symtool("stack", "--offline", "-b", build.out, dump, cwd=dump.parent)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].startswith(" # Child-SP")
    assert re.match(r"^00 00007fff`[0-9a-f]{8} 00000000`[0-9a-f]{8} crash_deep!minicore::poke\+0x0 "
                    r"\[.*/minicore/src/lib.rs @ 69\]  \(Found by: given as instruction pointer in context\)$",
                    lines[2]), lines[2]
    # The caller was unwound with the binary's DWARF CFI, and says so as minidump-stackwalk does.
    assert re.match(r"^01 .* crash_deep!crash_deep::level3\+0x[0-9a-f]+ \[.*crash-deep.rs @ 13\]  "
                    r"\(Found by: call frame info\)$", lines[3]), lines[3]
    inline = [line for line in lines if "(Inline Function)" in line]
    assert len(inline) == 1 and "crash_deep!crash_deep::middle [" in inline[0] and inline[0].endswith("crash-deep.rs @ 19]")
    assert "note: found by build id: crash-deep (binary, .dwp)" in lines


def test_dumps_row_for_a_linux_dump(build, crashes):
    _frames, dump = crashes["crash-deep"]
    proc = symtool("dumps", "--json", "--offline", "-b", build.out, dump, cwd=dump.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = json.loads(proc.stdout)
    assert (row["platform"], row["exception_name"], row["exception_address"]) == ("linux", "SIGSEGV", "0x0")
    assert row["faulting_module"] == "crash-deep" and row["function"] == "minicore::poke"
    assert row["bucket"] == "0000000B crash_deep!minicore::poke | crash_deep!crash_deep::level3 | " \
                            "crash_deep!crash_deep::middle"
    module = row["modules"][0]
    assert module["image_found"] is True and module["image_path"] == str(build.bin("crash-deep"))
    assert module["debug_path"] == str(build.dwp("crash-deep"))
    assert module["image_store_path"] == f"crash-deep/elf-buildid-{module['code_id']}/crash-deep"
    assert not any("PDB store lookups" in n for n in row["notes"])
    assert "found by build id: crash-deep (binary, .dwp)" in row["notes"]
    assert [f["trust"] for f in row["stack"]][:2] == ["context", "cfi"]


# -- finding the files by build id -----------------------------------------------------------------

def test_stack_finds_binary_and_dwp_in_a_store(build, crashes, tmp_path):
    """Published with symtool publish (SSQP keys); the dump's directory holds no build output."""
    _frames, dump = crashes["crash-deep"]
    store = tmp_path / "store"
    store.mkdir()
    proc = symtool("publish", "--store", store, build.bin("crash-deep"), build.dwp("crash-deep"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = symtool("stack", "--json", "--offline", "--store", store, dump, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    frames = data["threads"][0]["frames"]
    assert [f["function"] for f in frames][:3] == ["minicore::poke", "crash_deep::level3", "crash_deep::middle"]
    # publish files the binary under its SSQP key and, as it holds DWARF, as the _.debug file too.
    assert "found by build id: crash-deep (binary, .dwp, debug file)" in data["notes"]


def test_stack_finds_files_in_the_debuginfod_view(build, crashes, tmp_path):
    from symtool.store.layout import DEBUGINFOD_ROOT, debuginfod_key

    _frames, dump = crashes["crash-deep"]
    store = tmp_path / "store"
    bid = elf_build_id(build.bin("crash-deep")).hex()
    for artifact, src in (("executable", build.bin("crash-deep")), ("dwp", build.dwp("crash-deep"))):
        dst = store / DEBUGINFOD_ROOT / debuginfod_key(bid, artifact)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    proc = symtool("stack", "--json", "--offline", "--store", store, dump, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    frames = json.loads(proc.stdout)["threads"][0]["frames"]
    assert frames[1]["function"] == "crash_deep::level3" and frames[1]["trust"] == "cfi"


def test_stack_fetches_binary_and_dwp_from_an_http_store(build, crashes, nginx, tmp_path):
    """An HTTP store (real nginx): the binary and .dwp are fetched by their SSQP keys into the cache,
    verified, then walked with and symbolized; --offline fetches nothing."""
    _frames, dump = crashes["crash-deep"]
    store = nginx.www / "linux-stack"
    proc = symtool("publish", "--store", store, build.bin("crash-deep"), build.dwp("crash-deep"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMTOOL_", "_NT_"))}
    env.update(SYMTOOL_CACHE=str(cache), HOME=str(tmp_path))
    argv = [sys.executable, "-m", "symtool", "stack", "--json", str(dump), "--store", nginx.url("linux-stack")]
    offline = subprocess.run(argv + ["--offline"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert offline.returncode == 0, offline.stderr
    assert all(f["function"] is None for f in json.loads(offline.stdout)["threads"][0]["frames"])
    online = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert online.returncode == 0, online.stderr
    frames = json.loads(online.stdout)["threads"][0]["frames"]
    assert [f["function"] for f in frames][:3] == ["minicore::poke", "crash_deep::level3", "crash_deep::middle"]
    assert [f["trust"] for f in frames][:2] == ["context", "cfi"]
    bid = elf_build_id(build.bin("crash-deep")).hex()
    cached = cache / "crash-deep" / f"elf-buildid-{bid}" / "crash-deep"
    assert cached.read_bytes() == build.bin("crash-deep").read_bytes()


def test_a_binary_of_another_build_is_not_used(build, crashes, tmp_path):
    """Same name, another build id (crash-me renamed): not the module's, so not walked with, not symbolized."""
    _frames, dump = crashes["crash-deep"]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(build.bin("crash-me"), other / "crash-deep")
    shutil.copy(build.dwp("crash-me"), other / "crash-deep.dwp")
    proc = symtool("stack", "--json", "--offline", "-b", other, dump, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    frames = data["threads"][0]["frames"]
    assert all(f["function"] is None for f in frames)
    assert all(f["trust"] in ("context", "scan", "frame-pointer") for f in frames)
    assert any(n.startswith("not found by build id") and "crash-deep" in n for n in data["notes"])


# -- a real Breakpad dump without its binaries -------------------------------------------------------

def test_breakpad_dump_without_binaries_is_scanned_and_says_so(tmp_path):
    dump = FIXTURES_DIR / "dumps" / "rm-linux-mini.dmp"
    proc = symtool("stack", "--json", "--offline", dump, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    frames = data["threads"][0]["frames"]
    assert frames[0]["module"] == "crash" and frames[0]["trust"] == "context"
    # No unwind data: callers come from the RBP chain where it leads into a module, else from scanning.
    assert len(frames) > 1 and {f["trust"] for f in frames[1:]} <= {"scan", "frame-pointer"}
    (note,) = [n for n in data["notes"] if n.startswith("not found by build id")]
    assert "crash f1c3bcc0279865fe3058404b2831d9e64135386c" in note and "libc-2.23.so" in note
    text = symtool("stack", "--offline", dump, cwd=tmp_path).stdout
    assert "note: not found by build id (walked by scanning, not symbolized): crash " in text
    proc = symtool("dumps", "--offline", dump, cwd=tmp_path)
    assert "PDB store lookups" not in proc.stdout and "not found by build id" in proc.stdout


# -- the CFI reader against llvm-dwarfdump -----------------------------------------------------------

def test_eh_frame_rows_match_llvm_dwarfdump(build):
    for name in CRASHES:
        assert _check_rows(build.bin(name), "eh-frame") >= 3


C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
__attribute__((noinline)) static int leaf(volatile char *p, int n) { char buf[64]; memset(buf, n, sizeof buf);
  return buf[n & 63] + p[0]; }
__attribute__((noinline)) int mid(int n) { char *p = alloca(n + 16); p[0] = (char)n; return leaf(p, n) * 2; }
int main(int argc, char **argv) { printf("%d\n", mid(argc * 100)); return 0; }
"""


def test_c_program_eh_frame_and_debug_frame_match_llvm_dwarfdump(tmp_path):
    """A C program's CFI: frame-pointer functions (alloca), the C runtime's remember/restore
    state and PLT expressions; and .debug_frame from a build without unwind tables."""
    cc = need_tool("clang")
    src = tmp_path / "p.c"
    src.write_text(C_PROGRAM)
    eh = tmp_path / "eh"
    subprocess.run([cc, "-O2", "-g", "-o", str(eh), str(src)], check=True)
    assert _check_rows(eh, "eh-frame") > 5
    dbg = tmp_path / "dbg"
    subprocess.run([cc, "-O2", "-g", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-o", str(dbg),
                    str(src)], check=True)
    cfi = read_elf_cfi(dbg)
    try:
        assert any(not s.is_eh for s in cfi.sections), "clang wrote no .debug_frame"
    finally:
        cfi.close()
    assert _check_rows(dbg, "debug-frame") > 2


def test_cxx_program_with_personality_cies(tmp_path):
    """C++ exceptions: CIEs with a personality routine and LSDA (zPLR) beside plain zR ones."""
    cc = need_tool("clang++")
    src = tmp_path / "p.cc"
    src.write_text('#include <stdexcept>\n#include <cstdio>\nint f(int n){ if(n>1) throw std::runtime_error("x");'
                   ' return n; }\nint main(int c, char**){ try { return f(c); } catch(...) { puts("c"); } }\n')
    exe = tmp_path / "p"
    proc = subprocess.run([cc, "-O1", "-o", str(exe), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    cfi = read_elf_cfi(exe)
    try:
        augmentations = {f.cie.augmentation for f in cfi.sections[0].entries()}
    finally:
        cfi.close()
    assert "zPLR" in augmentations and "zR" in augmentations
    assert _check_rows(exe, "eh-frame") > 5


# -- evaluating rows ---------------------------------------------------------------------------------

def _ctx(**regs) -> CpuContext:
    return CpuContext("x64", dict(regs))


def test_row_rules_are_applied():
    mem = StackMemory([(0x1000, bytes(range(256)) * 2)])
    row = CfiRow(0, ("register", 7, 16), {16: (OFFSET, -8), 6: (OFFSET, -16), 3: (VAL_OFFSET, 0),
                                           12: (REGISTER, 13), 14: (SAME_VALUE, None), 15: (UNDEFINED, None)})
    caller = apply_row(_ctx(rip=0x10, rsp=0x1000, rbp=1, rbx=2, r13=7, r14=9, r15=11, rax=5), row, mem)
    assert caller.regs["rsp"] == 0x1010
    assert caller.regs["rip"] == int.from_bytes(bytes(range(8, 16)), "little")
    assert caller.regs["rbp"] == int.from_bytes(bytes(range(0, 8)), "little")
    assert caller.regs["rbx"] == 0x1010 and caller.regs["r12"] == 7 and caller.regs["r14"] == 9
    assert "r15" not in caller.regs and "rax" not in caller.regs  # undefined; volatile


def test_undefined_return_address_is_the_end_of_the_stack():
    row = CfiRow(0, ("register", 7, 8), {16: (UNDEFINED, None)})
    with pytest.raises(EndOfStack):
        apply_row(_ctx(rip=0x10, rsp=0x1000), row, StackMemory([]))


@pytest.mark.parametrize("row", [
    CfiRow(0, ("expression", b"\x77\x08"), {16: (OFFSET, -8)}),  # CFA expression: not evaluated
    CfiRow(0, ("register", 7, 8), {16: (OFFSET, -8)}),  # the saved RIP is outside the saved stack
    CfiRow(0, ("register", 40, 8), {16: (OFFSET, -8)}),  # an XMM register as CFA base
])
def test_rows_that_cannot_be_evaluated_raise_unwind_error(row):
    with pytest.raises(UnwindError):
        apply_row(_ctx(rip=0x10, rsp=0x5000), row, StackMemory([(0x1000, b"\0" * 64)]))


# -- hostile CFI ---------------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def real_eh_frame(tmp_path_factory):
    """.eh_frame and .eh_frame_hdr (bytes, address) and the code ranges of a C program clang links."""
    cc = need_tool("clang")
    d = tmp_path_factory.mktemp("fuzz")
    (d / "p.c").write_text(C_PROGRAM)
    subprocess.run([cc, "-O2", "-o", str(d / "p"), str(d / "p.c")], check=True)
    from symtool.formats import elf as elf_format
    from symtool.formats.binio import BoundedReader

    with open(d / "p", "rb") as f:
        e = elf_format.ElfFile(BoundedReader(f, "p"), "p")
        e.read_sections()
        eh, hdr = e.section(".eh_frame"), e.section(".eh_frame_hdr")
        data = e.view(eh).read(0, eh.size)
        hdr_data = e.view(hdr).read(0, hdr.size)
        code = [(s.addr, s.addr + s.size) for s in e.sections if s.flags & 4]
        return data, eh.addr, hdr_data, hdr.addr, code


@FUZZ
@given(data=st.data())
def test_mutated_eh_frame_gives_rows_or_format_errors(real_eh_frame, data):
    eh, eh_addr, hdr, hdr_addr, code = real_eh_frame
    buf = bytearray(eh)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(buf) - 1))
        buf[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = buf[:data.draw(st.integers(0, len(buf)))]
    use_hdr = data.draw(st.booleans())
    hdr_buf = bytearray(hdr)
    if use_hdr and data.draw(st.booleans()):
        at = data.draw(st.integers(0, len(hdr_buf) - 1))
        hdr_buf[at] = data.draw(st.integers(0, 255))
    section = CfiSection(SectionView.of_bytes(".eh_frame", bytes(buf), "fuzz"), eh_addr, "<", 8, True,
                         (SectionView.of_bytes(".eh_frame_hdr", bytes(hdr_buf), "fuzz"), hdr_addr) if use_hdr else None)
    lo, hi = code[0][0], code[-1][1]
    for address in [data.draw(st.integers(lo, hi)) for _ in range(4)]:
        try:
            row = section.row_at(address)
        except FormatError:
            continue
        if row is not None:
            assert row.cfa[0] in ("register", "expression")


@FUZZ
@given(body=st.binary(min_size=0, max_size=200), version=st.sampled_from([1, 3, 4, 9]),
       aug=st.sampled_from([b"", b"zR", b"zPLR", b"zRS", b"zX", b"eh", b"q"]))
def test_synthetic_cie_and_fde_give_rows_or_format_errors(body, version, aug):
    """A CIE with arbitrary initial instructions and an FDE with arbitrary ones."""
    import struct

    cie_body = struct.pack("<IB", 0, version) + aug + b"\0"
    if version == 4:
        cie_body += b"\x08\x00"
    cie_body += b"\x01\x78\x10"  # code align 1, data align -8, RA column 16
    if aug.startswith(b"z"):
        cie_body += b"\x01\x1b" if aug == b"zR" else b"\x00"
    cie_body += body[:len(body) // 2]
    cie = struct.pack("<I", len(cie_body)) + cie_body
    fde_body = struct.pack("<IiI", len(cie) + 4, 0x1000 - (len(cie) + 8), 0x100)
    if aug.startswith(b"z"):
        fde_body += b"\x00"
    fde_body += body[len(body) // 2:]
    data = cie + struct.pack("<I", len(fde_body)) + fde_body + b"\0\0\0\0"
    section = CfiSection(SectionView.of_bytes(".eh_frame", data, "fuzz"), 0, "<", 8, True)
    for address in (0x1000, 0x1001, 0x1080, 0x10FF, 0x2000):
        try:
            section.row_at(address)
        except FormatError:
            pass


# -- macOS dumps: modules by UUID, said plainly when missing -------------------------------------------

def test_macos_dump_names_the_modules_not_found_by_uuid(tmp_path):
    """A macOS dump whose binary is nowhere: the note names the module and its UUID (walked and
    symbolized dumps are tests/test_macos_stack.py's); nothing says macOS is unsupported."""
    import uuid

    from builders.minidump import build_minidump, codeview_rsds

    module_uuid = uuid.UUID("4c4c4419-5555-3144-a107-fb630a82ad94")
    dump = tmp_path / "mac.dmp"
    dump.write_bytes(build_minidump(arch=12, platform_id=0x8101, version=(14, 0, 0),  # ARM64, macOS
                                    modules=[{"name": "/Applications/App.app/Contents/MacOS/app", "base": 0x100000000,
                                              "size": 0x4000, "codeview": codeview_rsds(module_uuid.bytes_le, 0, "app")}],
                                    exception={"code": 1, "address": 0, "thread_id": 1}))
    wanted = f"not found by UUID (walked by frame pointers and scanning, not symbolized): app {str(module_uuid).upper()}"
    proc = symtool("stack", "--offline", dump, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"note: {wanted}" in proc.stdout
    assert "not done" not in proc.stdout and "not supported" not in proc.stdout
    data = json.loads(symtool("stack", "--json", "--offline", dump, cwd=tmp_path).stdout)
    assert wanted in data["notes"]
    proc = symtool("dumps", "--json", "--offline", dump, cwd=tmp_path)
    (row,) = json.loads(proc.stdout)
    assert wanted in row["notes"] and not any("not done" in n for n in row["notes"])
    (module,) = row["modules"]
    assert module["code_id"] == module_uuid.hex and module["image_found"] is False
    assert module["image_store_path"] == f"app/mach-uuid-{module_uuid.hex}/app"
    assert proc.returncode == 1  # the module's binary and dSYM are missing: a finding


def test_walk_without_cfi_follows_the_rbp_chain_on_linux():
    """No unwind data for the module: the RBP chain (each link leading to a return address in a
    module and up the stack) gives the callers, marked frame-pointer; Windows walks do not use it."""
    import struct

    from symtool.stackwalk import WalkModule, walk_stack

    words = {0x7010: 0x7030, 0x7018: 0x401234, 0x7030: 0x7050, 0x7038: 0x401500, 0x7050: 0, 0x7058: 0}
    stack = bytearray(0x100)
    for address, value in words.items():
        struct.pack_into("<Q", stack, address - 0x7000, value)
    mem = StackMemory([(0x7000, bytes(stack))])
    module = WalkModule(0x400000, 0x10000, "app", 0)
    ctx = _ctx(rip=0x401000, rsp=0x7000, rbp=0x7010)
    linux = walk_stack(ctx, mem, [module], lambda m: None, rbp_chain=True)
    assert [(f.pc, f.trust) for f in linux.frames] == [(0x401000, "context"), (0x401234, "frame-pointer"),
                                                         (0x401500, "frame-pointer")]
    windows = walk_stack(ctx, mem, [module], lambda m: None)
    assert [f.trust for f in windows.frames][1:] == ["scan"] * (len(windows.frames) - 1)
