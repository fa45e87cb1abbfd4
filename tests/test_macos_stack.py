"""macOS stacks: compact unwind, ``__eh_frame`` and dSYM symbolization, on real Mach-O binaries
crashed in an emulator.

The programs (tests/corpus/macos-unwind: deep recursion, a large frame, many saved registers,
FP registers, a frameless leaf crash, inlined functions, a call through a function pointer, a
bad PC, frameless functions with immediate and indirect stack sizes, a stack overflow) are built here for
``arm64-apple-macos11`` and ``x86_64-apple-macos11`` with clang, rust-lld and dsymutil, and
published to a store with ``symtool publish``.  Each runs in unicorn from its entry to its
fault (tests/emulate): the shadow stack kept from executed calls and returns gives the frames,
``llvm-symbolizer`` on the dSYM gives each frame's functions and file:line, and the crash
becomes a crashpad-style minidump (macOS platform, the module's LC_UUID as its RSDS GUID with
age 0).  ``symtool stack`` from the store must list exactly those frames.

The compact unwind decoder is compared with ``llvm-objdump --unwind-info`` on every entry of
the real binaries (and of the Rust samples built with unwind tables), and fuzzed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, need_tool

CORPUS = ROOT / "tests" / "corpus" / "macos-unwind"
SLIDE = 0x10000000  # the image is loaded away from its link address, as ASLR does
SCENARIOS = {1: "recursion", 2: "large frame", 3: "many saved registers", 4: "FP registers",
             5: "frameless leaf", 6: "inlined functions", 7: "function pointer", 8: "bad PC",
             9: "frameless big frame", 10: "frameless saved registers", 11: "stack overflow"}
EXC_BAD_ACCESS = 1
KERN_INVALID_ADDRESS = 1


def symtool(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SYMTOOL_STORE", "_NT_SYMBOL_PATH", "SYMTOOL_CACHE")}
    return subprocess.run([sys.executable, "-m", "symtool", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


@dataclass
class MacBuild:
    arch: str  # arm64 or x86_64
    binary: Path
    dsym: Path  # the bundle
    dwarf: Path  # its DWARF file
    store: Path


def rust_lld() -> str:
    """The Rust toolchain's rust-lld (what samples/ links its macOS builds with): Debian's
    ld64.lld 14 writes every FDE of __eh_frame with the section's own address as its start."""
    rustc = need_tool("rustc")
    sysroot = subprocess.run([rustc, "--print", "sysroot"], capture_output=True, text=True, check=True,
                             timeout=60).stdout.strip()
    host = re.search(r"^host: (\S+)$", subprocess.run([rustc, "-vV"], capture_output=True, text=True, check=True,
                                                      timeout=60).stdout, re.M).group(1)
    path = Path(sysroot) / "lib" / "rustlib" / host / "bin" / "rust-lld"
    assert path.is_file(), f"no rust-lld at {path} (rustup component llvm-tools / the default toolchain has it)"
    return str(path)


def _build(out: Path, arch: str, *extra_flags: str) -> MacBuild:
    clang, lld, dsymutil = need_tool("clang"), rust_lld(), need_tool("dsymutil")
    out.mkdir(parents=True, exist_ok=True)
    target = f"{arch}-apple-macos11"
    flags = ["-O2", "-g", "-fno-stack-protector", "-Wno-everything", *extra_flags, "-c"]
    subprocess.run([clang, f"--target={target}", *flags, str(CORPUS / "frames.c"), "-o", str(out / "frames.o")],
                   check=True, timeout=120)
    subprocess.run([clang, f"--target={target}", *flags, "-fomit-frame-pointer", str(CORPUS / "frameless.c"),
                    "-o", str(out / "frameless.o")], check=True, timeout=120)
    binary = out / "frames"
    subprocess.run([lld, "-flavor", "darwin", "-arch", arch, "-platform_version", "macos", "11.0", "11.0", "-e", "_start", "-o",
                    str(binary), str(out / "frames.o"), str(out / "frameless.o")], check=True, timeout=120)
    subprocess.run([dsymutil, str(binary), "-o", str(out / "frames.dSYM")], check=True, timeout=120)
    dwarf = out / "frames.dSYM" / "Contents" / "Resources" / "DWARF" / "frames"
    store = out / "store"
    proc = symtool("publish", "--store", store, binary, out / "frames.dSYM", cwd=out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The objects and the binary's own copy go away: only the store is left to find them in.
    return MacBuild(arch, binary, out / "frames.dSYM", dwarf, store)


@pytest.fixture(scope="session")
def mac_x86_64(tmp_path_factory) -> MacBuild:
    return _build(tmp_path_factory.mktemp("macos-x86_64"), "x86_64")


@pytest.fixture(scope="session")
def mac_arm64(tmp_path_factory) -> MacBuild:
    return _build(tmp_path_factory.mktemp("macos-arm64"), "arm64")


@pytest.fixture(scope="session")
def mac_arm64_pac(tmp_path_factory) -> MacBuild:
    """Return addresses signed with the B key before they are saved (pacibsp/retab), as arm64e
    code signs them."""
    return _build(tmp_path_factory.mktemp("macos-arm64-pac"), "arm64", "-mbranch-protection=pac-ret+b-key")


# -- the oracle: llvm-symbolizer on the dSYM ------------------------------------------------------

def symbolizer_frames(dwarf: Path, addresses: list[int]) -> list[list[tuple[str, str, int]]]:
    """llvm-symbolizer's frames (function, file name, line) for each address, inlined frames first."""
    tool = need_tool("llvm-symbolizer-19")
    proc = subprocess.run([tool, f"--obj={dwarf}", "--inlines", "--output-style=JSON",
                           *[hex(a) for a in addresses]], capture_output=True, text=True, timeout=120, check=True)
    data = json.loads(proc.stdout)
    entries = data if isinstance(data, list) else [data]
    assert len(entries) == len(addresses)
    return [[(f["FunctionName"], Path(f["FileName"]).name, f["Line"]) for f in entry["Symbol"]] for entry in entries]


def emulate(build: MacBuild, scenario: int, pointer_auth: bool = False):
    """Run the program to its fault with ``scenario`` written into its ``scenario`` global
    (``pointer_auth``: arm64 with pointer authentication on, so PAC instructions really sign)."""
    from emulate.macho import load_macho

    if build.arch == "x86_64":
        from emulate.x86_64 import X64Emulator

        emu = X64Emulator()
    else:
        from emulate.arm64 import Arm64Emulator

        emu = Arm64Emulator(pointer_auth=pointer_auth)
    image = load_macho(emu, build.binary, slide=SLIDE)
    crash_start = image.symbol("_start")
    emu.uc.mem_write(image.symbol("_scenario"), struct.pack("<i", scenario))
    crash = emu.run(crash_start)
    # The arm64 emulator's entry returns to address 0, so a call to address 0 (the bad PC) stops
    # it as "exited" too: with live calls on the shadow stack it is the bad PC.
    bad_pc = crash.reason == "exited" and crash.shadow and crash.regs["pc"] == 0
    assert crash.reason in ("write-unmapped", "fetch-unmapped") or bad_pc, (scenario, crash.reason)
    return image, crash


def crashpad_dump(path: Path, image, crash, arch: str) -> None:
    """A crashpad-style macOS minidump: the module named by its LC_UUID (an RSDS record whose GUID
    is the UUID, age 0, the file name as "PDB"), EXC_BAD_ACCESS, the thread's context (CONTEXT_AMD64
    or the ARM64 layout crashpad writes) and its stack from SP up."""
    from builders.minidump import build_threads_minidump, codeview_rsds

    guid = uuidlib.UUID(bytes=image.uuid).bytes_le
    name = image.path.name
    module = {"name": f"/Applications/{name}.app/Contents/MacOS/{name}", "base": image.base, "size": image.size,
              "codeview": codeview_rsds(guid, 0, name)}
    regs = dict(crash.regs)
    if arch == "arm64":
        regs.update(crash.fpregs)
    data = build_threads_minidump(modules=[module], threads=[{"tid": 1, "regs": regs, "stack": 0}],
                                  memory=[crash.stack], platform_id=0x8101,
                                  cpu="x64" if arch == "x86_64" else "arm64",
                                  exception={"thread_id": 1, "code": EXC_BAD_ACCESS, "flags": KERN_INVALID_ADDRESS,
                                             "address": crash.address or 0})
    path.write_bytes(data)


def expected_rows(build: MacBuild, image, crash) -> list[tuple[str | None, str | None, int | None, bool]]:
    """(function, file name, line, inline) of every row the stack must show: the shadow stack's
    frames, each symbolized by llvm-symbolizer (return addresses at address - 1)."""
    pcs = crash.oracle_pcs()
    lookups = [pc - image.slide - (0 if k == 0 else 1) for k, pc in enumerate(pcs)]
    in_module = [image.base <= pc < image.base + image.size for pc in pcs]
    named = symbolizer_frames(build.dwarf, [a for a, ok in zip(lookups, in_module) if ok])
    rows = []
    for ok in in_module:
        if not ok:
            rows.append((None, None, None, False))
            continue
        frames = named.pop(0)
        rows += [(f, file, line, k < len(frames) - 1) for k, (f, file, line) in enumerate(frames)]
    return rows


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_macos_stack_matches_the_emulator(request, tmp_path, arch, scenario):
    build = request.getfixturevalue(f"mac_{arch}")
    image, crash = emulate(build, scenario)
    dump = tmp_path / "frames.dmp"
    crashpad_dump(dump, image, crash, arch)
    proc = symtool("stack", "--json", "--offline", "--store", build.store, dump, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    frames = data["threads"][0]["frames"]
    got = [(f["function"], Path(f["file"]).name if f["file"] else None, f["line"], f["inline"]) for f in frames]
    assert got == expected_rows(build, image, crash), (SCENARIOS[scenario], frames)
    physical = [f for f in frames if not f["inline"]]
    assert [int(f["address"], 16) for f in physical] == crash.oracle_pcs()
    # Found by compact unwind (or __eh_frame) everywhere but after a bad PC, whose caller only a
    # scan finds (nothing describes address 0).
    trusts = [f["trust"] for f in physical]
    assert trusts[0] == "context"
    if scenario == 8:
        # x86_64: the return address the call pushed, read at RSP; arm64: the one in LR.
        assert trusts[1] == ("scan" if arch == "x86_64" else "frame-pointer") and set(trusts[2:]) <= {"cfi"}
    else:
        assert set(trusts[1:]) == {"cfi"}, trusts
    assert not any("not supported" in n or "not done" in n for n in data.get("notes", []))


@pytest.mark.parametrize("scenario", [1, 3, 4, 6, 7, 8, 11])
def test_macos_arm64_signed_return_addresses_are_stripped(mac_arm64_pac, tmp_path, scenario):
    """pac-ret code run with pointer authentication on: the return addresses saved in frame
    records carry a signature in their upper bits, and the walk finds the shadow stack's frames."""
    from symtool.formats.compact_unwind import DECODERS

    image, crash = emulate(mac_arm64_pac, scenario, pointer_auth=True)
    words = struct.unpack(f"<{len(crash.stack[1]) // 8}Q", crash.stack[1][:len(crash.stack[1]) // 8 * 8])
    returns = {f.return_address for f in crash.shadow}
    signed = [w for w in words if w >> 48 and (w & ((1 << 40) - 1)) in returns]
    assert signed, "no signed return address on the stack: pointer authentication was off"
    kinds = {DECODERS["arm64"](e.encoding).kind for e in _ours(mac_arm64_pac.binary).entries()}
    # LLVM gives pac-ret functions DWARF-mode entries: their __eh_frame FDEs (with
    # DW_CFA_AARCH64_negate_ra_state) read the signed records.
    assert "dwarf" in kinds
    dump = tmp_path / "pac.dmp"
    crashpad_dump(dump, image, crash, "arm64")
    proc = symtool("stack", "--json", "--offline", "--store", mac_arm64_pac.store, dump, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    frames = json.loads(proc.stdout)["threads"][0]["frames"]
    got = [(f["function"], Path(f["file"]).name if f["file"] else None, f["line"], f["inline"]) for f in frames]
    assert got == expected_rows(mac_arm64_pac, image, crash), SCENARIOS[scenario]
    assert [int(f["address"], 16) for f in frames if not f["inline"]] == crash.oracle_pcs()


def test_macos_x86_64_dumps_row_is_symbolized(mac_x86_64, tmp_path):
    image, crash = emulate(mac_x86_64, 6)
    dump = tmp_path / "inlined.dmp"
    crashpad_dump(dump, image, crash, "x86_64")
    proc = symtool("dumps", "--json", "--offline", "--store", mac_x86_64.store, dump, cwd=tmp_path)
    (row,) = json.loads(proc.stdout)
    assert row["platform"] == "macos" and row["exception_name"] == "EXC_BAD_ACCESS"
    assert row["exception_detail"] == "KERN_INVALID_ADDRESS at 0x0"
    assert row["faulting_module"] == "frames" and row["function"] == "poke"
    assert [f["function"] for f in row["stack"]][:4] == ["poke", "inlined_inner", "inlined_outer", "has_inlined"]
    assert not any("not done" in n or "not supported" in n for n in row["notes"]), row["notes"]
    (module,) = row["modules"]
    assert module["code_id"] == image.uuid.hex()
    assert module["image_found"] is True and module["debug_path"].endswith("_.dwarf")
    assert proc.returncode == 0, proc.stderr


# -- the decoder against llvm-objdump -------------------------------------------------------------

OBJDUMP_ENTRY = re.compile(r"^\s+\[(\d+)\]: function offset=0x([0-9a-f]+), encoding(?:\[(\d+)\])?=0x([0-9a-f]+)$")
OBJDUMP_COMMON = re.compile(r"^\s+encoding\[(\d+)\]: 0x([0-9a-f]+)$")
OBJDUMP_INDEX = re.compile(r"^\s+\[(\d+)\]: function offset=0x([0-9a-f]+), 2nd level page offset=0x([0-9a-f]+), "
                           r"LSDA offset=0x([0-9a-f]+)$")
OBJDUMP_LSDA = re.compile(r"^\s+\[(\d+)\]: function offset=0x([0-9a-f]+), LSDA offset=0x([0-9a-f]+)$")
OBJDUMP_PERSONALITY = re.compile(r"^\s+personality\[(\d+)\]: 0x([0-9a-f]+)$")


def objdump_unwind(path: Path) -> dict:
    tool = need_tool("llvm-objdump-19")
    text = subprocess.run([tool, "--macho", "--unwind-info", str(path)], capture_output=True, text=True,
                          timeout=120, check=True).stdout
    out = {"common": [], "index": [], "entries": [], "lsda": [], "personalities": []}
    section = None
    for line in text.splitlines():
        if "Common encodings:" in line:
            section = "common"
        elif "Top level indices:" in line:
            section = "index"
        elif "LSDA descriptors:" in line:
            section = "lsda"
        elif "Second level indices:" in line:
            section = "entries"
        elif "Personality functions:" in line:
            section = "personalities"
        elif section == "common" and (m := OBJDUMP_COMMON.match(line)):
            out["common"].append(int(m.group(2), 16))
        elif section == "index" and (m := OBJDUMP_INDEX.match(line)):
            out["index"].append(tuple(int(g, 16) for g in m.groups()[1:]))
        elif section == "lsda" and (m := OBJDUMP_LSDA.match(line)):
            out["lsda"].append((int(m.group(2), 16), int(m.group(3), 16)))
        elif section == "entries" and (m := OBJDUMP_ENTRY.match(line)):
            out["entries"].append((int(m.group(2), 16), int(m.group(4), 16)))
        elif section == "personalities" and (m := OBJDUMP_PERSONALITY.match(line)):
            out["personalities"].append(int(m.group(2), 16))
    return out


def _ours(path: Path):
    from symtool.formats.compact_unwind import CompactUnwindInfo
    from symtool.formats.macho import open_macho_image

    image = open_macho_image(path)
    try:
        view = image.view("__TEXT", "__unwind_info")
        return CompactUnwindInfo(view.read(0, view.size), str(path))
    finally:
        image.close()


def assert_same_as_objdump(path: Path) -> None:
    theirs = objdump_unwind(path)
    ours = _ours(path)
    assert theirs["entries"], f"llvm-objdump found no entries in {path}"
    assert ours.common_encodings() == theirs["common"]
    assert ours.personalities() == theirs["personalities"]
    assert [tuple(e) for e in ours.index()] == theirs["index"]
    assert ours.lsdas() == theirs["lsda"]
    assert [(e.start, e.encoding) for e in ours.entries()] == theirs["entries"]
    for e in ours.entries():  # every entry is found again by lookup, at its first and last byte
        for rva in {e.start, max(e.end - 1, e.start)}:
            hit = ours.lookup(rva)
            assert hit is not None and (hit.start, hit.encoding) == (e.start, e.encoding)


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_compact_unwind_decoder_equals_llvm_objdump(request, arch):
    from symtool.formats.compact_unwind import DECODERS

    build = request.getfixturevalue(f"mac_{arch}")
    assert_same_as_objdump(build.binary)
    info = _ours(build.binary)
    kinds = {DECODERS[arch](e.encoding).kind for e in info.entries()}
    # The corpus covers frame, frameless (x86_64: immediate and indirect stack size) and DWARF-mode
    # encodings on both CPUs.
    assert kinds >= {"frame", "frameless", "dwarf"}


def test_compact_unwind_regular_pages_lsda_and_personalities(tmp_path):
    """ld64.lld writes compressed pages; a regular page, LSDAs and personalities come from an
    object assembled here, read by llvm-objdump and by us."""
    clang = need_tool("clang")
    # Header (7 words), 1 common encoding, 2 personalities, 3 index entries (two pages + sentinel),
    # 2 LSDA entries, a regular page with 2 entries and a compressed page with 2 entries
    # (one common encoding, one of the page's own).
    words = []
    header_size = 7 * 4
    common_at = header_size
    personality_at = common_at + 4
    index_at = personality_at + 8
    lsda_at = index_at + 3 * 12
    regular_at = lsda_at + 2 * 8
    compressed_at = regular_at + 8 + 2 * 8
    words += [1, common_at, 1, personality_at, 2, index_at, 3]
    words += [0x01010001]
    words += [0x2000, 0x2008]
    words += [0x1000, regular_at, lsda_at, 0x1100, compressed_at, lsda_at + 16, 0x1200, 0, lsda_at + 16]
    words += [0x1000, 0x3000, 0x1040, 0x3040]
    regular = struct.pack("<IHH", 2, 8, 2) + struct.pack("<4I", 0x1000, 0x51010001, 0x1040, 0x61020021)
    compressed = struct.pack("<IHHHH", 3, 12, 2, 20, 1) + struct.pack("<2I", 0x000000, 0x01000080) + \
        struct.pack("<I", 0x02021000)
    blob = struct.pack(f"<{len(words)}I", *words) + regular + compressed
    asm = tmp_path / "u.s"
    asm.write_text(".section __TEXT,__unwind_info\n" + "".join(f".byte {b}\n" for b in blob))
    obj = tmp_path / "u.o"
    subprocess.run([clang, "--target=x86_64-apple-macos11", "-c", str(asm), "-o", str(obj)], check=True, timeout=60)
    assert_same_as_objdump(obj)
    info = _ours(obj)
    assert [k for _o, k, _n in info.page_kinds()] == [2, 3]
    first = info.lookup(0x1000)
    assert first.lsda == 0x3000 and first.personality == 0x2000
    assert info.lookup(0x1040).personality == 0x2008 and info.lookup(0x1040).lsda == 0x3040
    assert info.lookup(0x1180).encoding == 0x02021000
    assert info.lookup(0x1200) is None and info.lookup(0xFFF) is None


# -- hostile __unwind_info ---------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512), st.lists(st.integers(0, 0xFFFFFFFF), max_size=16))
def test_unwind_info_fuzz(data, words):
    """Random and half-valid __unwind_info: FormatError or an answer, never anything else."""
    from symtool.errors import FormatError
    from symtool.formats.compact_unwind import CompactUnwindInfo, decode_arm64, decode_x86_64

    blobs = [data, struct.pack("<7I", 1, 28, 2, 36, 1, 40, 2) + struct.pack(f"<{len(words)}I", *words) + data]
    for blob in blobs:
        try:
            info = CompactUnwindInfo(blob)
            for rva in (0, 0x1000, 0xFFFFFFFF, *words[:4]):
                info.lookup(rva)
            for entry in info.entries():
                for decode in (decode_arm64, decode_x86_64):
                    try:
                        decode(entry.encoding)
                    except FormatError:
                        pass
            info.lsdas()
        except FormatError:
            pass
    for word in words:
        for decode in (decode_arm64, decode_x86_64):
            try:
                decode(word)
            except FormatError:
                pass


# -- fetch --dump, universal binaries -------------------------------------------------------------

def test_fetch_dump_brings_the_binary_and_dsym_of_a_macos_dump(mac_arm64, tmp_path):
    """`fetch --dump` asks for each Mach-O module's binary and dSYM DWARF file by LC_UUID; the
    cache it fills is a store `stack` symbolizes from."""
    image, crash = emulate(mac_arm64, 1)
    dump = tmp_path / "recursion.dmp"
    crashpad_dump(dump, image, crash, "arm64")
    cache = tmp_path / "cache"
    proc = symtool("fetch", "--dump", dump, "--server", mac_arm64.store, "--cache", cache, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    uuid = image.uuid.hex()
    assert {(r["kind"], r["key"], r["status"]) for r in out["results"]} == {
        ("image", f"frames/mach-uuid-{uuid}/frames", "fetched"),
        ("dsym", f"_.dwarf/mach-uuid-sym-{uuid}/_.dwarf", "fetched")}
    data = json.loads(symtool("stack", "--json", "--offline", "--store", cache, dump, cwd=tmp_path).stdout)
    functions = [f["function"] for f in data["threads"][0]["frames"]]
    assert functions[:2] == ["poke", "recurse"] and functions.count("recurse") == 41 and functions[-1] == "start"


def test_universal_binary_gives_each_cpu_its_slice(mac_arm64, mac_x86_64, tmp_path):
    """A fat (universal) binary and dSYM published once: an arm64 dump and an x86_64 dump each get
    the slice of their module's UUID, for unwinding and for symbols."""
    lipo = need_tool("llvm-lipo")
    fat = tmp_path / "fat" / "frames"
    fat.parent.mkdir()
    subprocess.run([lipo, "-create", str(mac_arm64.binary), str(mac_x86_64.binary), "-output", str(fat)],
                   check=True, timeout=60)
    dwarf = tmp_path / "fat" / "frames.dSYM" / "Contents" / "Resources" / "DWARF" / "frames"
    shutil.copytree(mac_arm64.dsym, dwarf.parents[3])
    dwarf.unlink()
    subprocess.run([lipo, "-create", str(mac_arm64.dwarf), str(mac_x86_64.dwarf), "-output", str(dwarf)],
                   check=True, timeout=60)
    # A build directory, not a store: the binary by name and the .dSYM bundle beside it.
    for build in (mac_arm64, mac_x86_64):
        image, crash = emulate(build, 6)
        dump = tmp_path / f"{build.arch}.dmp"
        crashpad_dump(dump, image, crash, build.arch)
        proc = symtool("stack", "--json", "--offline", "--build-dir", fat.parent, dump, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        frames = json.loads(proc.stdout)["threads"][0]["frames"]
        got = [(f["function"], Path(f["file"]).name if f["file"] else None, f["line"], f["inline"]) for f in frames]
        assert got == expected_rows(build, image, crash), build.arch


# -- Rust programs: the samples built for macOS with unwind tables ---------------------------------

RUST_CRASHES = ("crash-deep", "crash-recurse", "crash-me")


@pytest.fixture(scope="module")
def rust_mac_builds(tmp_path_factory):
    """samples/ for aarch64-apple-darwin and x86_64-apple-darwin (full-debug, rust-lld, dsymutil),
    with unwind tables: rustc's objects then carry __compact_unwind / __eh_frame (DWARF mode)."""
    from native_builds import MAC_ARM, MAC_X64, _workspace, cargo_build

    need_tool("cargo")
    need_tool("dsymutil")
    ws = _workspace(tmp_path_factory, "macrust")
    return {arch: cargo_build(ws, ws / "t", triple, "full-debug", "-C", "force-unwind-tables=yes")
            for arch, triple in (("arm64", MAC_ARM), ("x86_64", MAC_X64))}


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
@pytest.mark.parametrize("program", RUST_CRASHES)
def test_rust_macos_crash_from_the_build_dir(rust_mac_builds, tmp_path, arch, program):
    """A Rust program's crash, symbolized from cargo's build directory (the binary, and the dSYM
    in deps/ that rustc's dsymutil wrote), each frame as the shadow stack and llvm-symbolizer say."""
    cargo = rust_mac_builds[arch]
    binary = cargo.bin(program)
    dwarf = next(iter((cargo.out / "deps").glob(f"{program.replace('-', '_')}-*.dSYM/Contents/Resources/DWARF/*")))
    build = MacBuild(arch, binary, dwarf.parents[3], dwarf, cargo.out)
    assert_same_as_objdump(binary)
    from emulate.macho import load_macho

    if arch == "x86_64":
        from emulate.x86_64 import X64Emulator as Emulator
    else:
        from emulate.arm64 import Arm64Emulator as Emulator
    emu = Emulator()
    image = load_macho(emu, binary, slide=SLIDE)
    crash = emu.run(image.symbol("_mainCRTStartup"))
    assert crash.reason == "write-unmapped", crash.reason
    dump = tmp_path / f"{program}.dmp"
    crashpad_dump(dump, image, crash, arch)
    proc = symtool("stack", "--json", "--offline", "--build-dir", cargo.out, "--build-dir", cargo.out / "deps",
                   dump, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    frames = json.loads(proc.stdout)["threads"][0]["frames"]
    got = [(f["function"], Path(f["file"]).name if f["file"] else None, f["line"], f["inline"]) for f in frames]
    assert got == expected_rows(build, image, crash)
    assert got[0][0] == "minicore::poke" and got[-1][0] == "mainCRTStartup"
    assert {f["trust"] for f in frames[1:] if not f["inline"]} == {"cfi"}


# -- hostile Mach-O images: unwinding and symbolizing never crash --------------------------------------

def _mutate(data: bytes, edits: list[tuple[int, int]], window: tuple[int, int]) -> bytes:
    out = bytearray(data)
    lo, hi = window
    for position, value in edits:
        out[lo + position % max(hi - lo, 1)] = value
    return bytes(out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=24),
       st.sampled_from(["commands", "unwind", "eh_frame", "dwarf"]))
def test_hostile_macho_unwind_and_symbols(mac_arm64, tmp_path_factory, edits, where):
    """Bytes of the real binary's load commands, __unwind_info or __eh_frame, or of its dSYM's
    DWARF, changed at random: opening, unwinding and symbolizing give FormatError/UnwindError or
    an answer, never another exception or a hang."""
    from symtool.errors import FormatError
    from symtool.formats.cpu_context import CpuContext
    from symtool.formats.dwarf_symbols import DwarfSymbolizer
    from symtool.formats.macho import read_macho
    from symtool.stackwalk.cfi import EndOfStack
    from symtool.stackwalk.macos import read_macho_unwind, unwind_macho_arm64
    from symtool.stackwalk.memory import StackMemory
    from symtool.stackwalk.x64 import UnwindError

    source = mac_arm64.dwarf if where == "dwarf" else mac_arm64.binary
    data = source.read_bytes()
    sl = read_macho(source).slices[0]
    if where == "commands":
        window = (0, 32 + 2048)
    elif where == "dwarf":
        info = sl.section("__DWARF", "__debug_info")
        window = (info[2], info[2] + info[3])
    else:
        sec = sl.section("__TEXT", "__unwind_info" if where == "unwind" else "__eh_frame")
        window = (sec[2], sec[2] + sec[3])
    folder = tmp_path_factory.getbasetemp() / "hostile-macho"  # one file, rewritten by each example
    folder.mkdir(exist_ok=True)
    path = folder / "frames"
    path.write_bytes(_mutate(data, edits, window))
    stack = StackMemory([(0x7000, bytes(range(256)) * 16)])
    try:
        if where == "dwarf":
            with DwarfSymbolizer(path) as sym:
                for rva in range(0x400, 0xA00, 0x40):
                    sym.symbolize(rva)
            return
        image = read_macho_unwind(path)
    except FormatError:
        return
    try:
        for rva in range(0x420, 0xA00, 0x20):
            ctx = CpuContext("arm64", {"pc": 0x100000000 + rva, "sp": 0x7100, "fp": 0x7200, "lr": 0x100000500})
            for innermost in (True, False):
                try:
                    unwind_macho_arm64(ctx, image, 0x100000000, stack, innermost)
                except (UnwindError, EndOfStack):
                    pass
            image.is_code(rva)
            image.read_rva(rva, 8)
    finally:
        image.close()


def test_unwind_info_lookup_reads_a_few_entries_of_a_huge_page():
    """Every first-level entry naming one page of 65,535 entries: a lookup binary-searches the
    page's bytes (a few dozen reads), so a walk of hostile data costs no page decodes."""
    from symtool.formats.compact_unwind import CompactUnwindInfo

    count = 200  # first-level entries (the last is the sentinel)
    index_at = 32  # after the header and one common encoding
    page_at = index_at + 12 * count
    index = b"".join(struct.pack("<3I", 0x1000 * (k + 1), page_at if k < count - 1 else 0, page_at)
                     for k in range(count))
    page = struct.pack("<IHHHH", 3, 12, 0xFFFF, 0, 0) + b"".join(struct.pack("<I", k) for k in range(0xFFFF))
    info = CompactUnwindInfo(struct.pack("<8I", 1, 28, 1, 32, 0, index_at, count, 0x04000000) + index + page)
    reads = []
    original = info._u32
    info._u32 = lambda offset: reads.append(offset) or original(offset)
    for k in range(count - 1):
        entry = info.lookup(0x1000 * (k + 1) + 8)
        assert entry is not None and entry.start == 0x1000 * (k + 1) + 8 and entry.encoding == 0x04000000
    assert len(reads) < 40 * (count - 1)
