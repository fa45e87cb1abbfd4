"""Windows ARM64 stacks from real PE + PDB files (tests/arm64_pe, built by tests/arm64_pe_builds.py).

Oracles nobody here wrote:
* ``llvm-readobj --unwind`` decodes every .pdata entry: our decoding of each (packed fields
  and the canonical prologue they stand for, .xdata header, epilog scopes, every unwind code
  with its registers and offsets) must equal it;
* unicorn runs the program from its entry point to the fault (or to a chosen instruction,
  inside prologues and epilogues), keeping a shadow stack of the calls and returns it
  executed and the caller's callee-saved registers at each call: the walk must find exactly
  those return addresses, and restore those registers;
* ``llvm-symbolizer`` names the functions from the PDB: ``symtool stack`` must name the same.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pefile
import pytest
from typer.testing import CliRunner

from arm64_pe_builds import arm64_pe  # noqa: F401  (session fixture)
from conftest import need_tool
from emulate.arm64 import Arm64Emulator, Crash
from emulate.minidump import crash_minidump
from emulate.pe import load_pe, module_record
from symtool.cli import app
from symtool.formats.cpu_context import CpuContext
from symtool.formats.pe_unwind_arm64 import Arm64PeUnwindImage, Arm64UnwindCode, read_pe_unwind_any
from symtool.stackwalk import StackMemory, WalkModule, walk_stack

EVERY_CODE = {"alloc_s", "alloc_m", "alloc_l", "save_r19r20_x", "save_fplr", "save_fplr_x", "save_reg", "save_reg_x",
              "save_regp", "save_regp_x", "save_lrpair", "save_fregp", "save_fregp_x", "save_freg", "save_freg_x",
              "set_fp", "add_fp", "nop", "end", "end_c", "save_next", "pac_sign_lr"}
# scenario -> what crashes (tests/arm64_pe/crash.c's start())
SCENARIOS = {0: "deep recursion", 1: "40 KB frame (alloc_l, __chkstk)", 2: "ten saved x registers",
             3: "eight saved d registers", 4: "inlined calls, call through a pointer", 5: "bad PC",
             6: "leaf crash from the entry", 7: "varargs (homed parameters)", 8: "alloca (frame pointer)",
             9: "frame-chained pac-ret recursion", 10: "every integer unwind code", 11: "every FP unwind code",
             12: "function fragment with end_c", 13: "stack overflow in a prologue's __chkstk probe"}
STACK_SIZES = {13: 0x8000}  # smaller than big_frame's 40,000 bytes
QUIET = 100  # start(100 + n): scenario n without its crash
PAC_SIGNED = {9, 10}  # pac-ret C and every_int_code sign LR (pacibsp) before saving it


def signed_return_addresses(crash) -> list[int]:
    """Words of the saved stack that are a live call's return address with a PAC above bit 47."""
    start, data = crash.stack
    returns = {f.return_address for f in crash.shadow}
    words = struct.unpack(f"<{len(data) // 8}Q", data[:len(data) // 8 * 8])
    return [w for w in words if w >> 48 and w & ((1 << 48) - 1) in returns]


# -- llvm-readobj's decoding ----------------------------------------------------------------

def readobj_unwind(exe: Path) -> list[dict]:
    text = subprocess.run([need_tool("llvm-readobj-19"), "--unwind", str(exe)], capture_output=True, text=True,
                          check=True).stdout
    entries = []
    for block in text.split("RuntimeFunction {")[1:]:
        entry: dict = {"begin": int(re.search(r"Function: (?:\S+ \()?(0x[0-9A-Fa-f]+)", block)[1], 16)}
        fields = dict(re.findall(r"^\s*(\w+): (.*)$", block, re.M))
        entry["fields"] = fields
        prologue = re.split(r"^\s*\]\s*$", block.split("Prologue [", 1)[1], maxsplit=1, flags=re.M)[0]
        if "ExceptionData {" in block:
            entry["kind"] = "xdata"
            entry["codes"] = re.findall(r"^\s*0x([0-9a-f]+)\s+; (.*)$", prologue, re.M)
            entry["scopes"] = [(int(a), int(b)) for a, b in
                               re.findall(r"StartOffset: (\d+)\s+EpilogueStartIndex: (\d+)", block)]
        else:
            entry["kind"] = "packed"
            entry["lines"] = [line.strip() for line in prologue.strip().splitlines()]
        entries.append(entry)
    return entries


def _x(reg: int) -> str:
    return f"x{reg}"


def render(code: Arm64UnwindCode) -> str:
    """A code as llvm-readobj prints its prologue instruction."""
    op, r, off = code.op, code.reg, code.offset
    return {
        "alloc_s": f"sub sp, #{off}", "alloc_m": f"sub sp, #{off}", "alloc_l": f"sub sp, #{off}",
        "save_r19r20_x": f"stp x19, x20, [sp, #-{off}]!", "save_fplr": f"stp x29, x30, [sp, #{off}]",
        "save_fplr_x": f"stp x29, x30, [sp, #-{off}]!", "save_regp": f"stp {_x(r)}, {_x(r + 1)}, [sp, #{off}]",
        "save_regp_x": f"stp {_x(r)}, {_x(r + 1)}, [sp, #-{off}]!", "save_reg": f"str {_x(r)}, [sp, #{off}]",
        "save_reg_x": f"str {_x(r)}, [sp, #-{off}]!", "save_lrpair": f"stp {_x(r)}, x30, [sp, #{off}]",
        "save_fregp": f"stp d{r}, d{r + 1}, [sp, #{off}]", "save_fregp_x": f"stp d{r}, d{r + 1}, [sp, #-{off}]!",
        "save_freg": f"str d{r}, [sp, #{off}]", "save_freg_x": f"str d{r}, [sp, #-{off}]!",
        "set_fp": "mov x29, sp", "add_fp": f"add x29, sp, #{off}", "nop": "nop", "end": "end", "end_c": "end_c",
        "save_next": "save next", "pac_sign_lr": "pacibsp",
    }[op]


def normalize(text: str) -> str:
    text = re.sub(r"\bfp\b", "x29", re.sub(r"\blr\b", "x30", text)).replace("sub sp, sp, #", "sub sp, #")
    return re.sub(r"^stp x[0-7], x[0-7], \[sp, #\d+\]$", "nop", text)  # homed parameters: no unwind effect


@pytest.fixture(scope="session")
def image(arm64_pe) -> Arm64PeUnwindImage:  # noqa: F811
    img = read_pe_unwind_any(arm64_pe.exe)
    assert isinstance(img, Arm64PeUnwindImage)
    return img


@pytest.fixture(scope="session")
def readobj(arm64_pe) -> list[dict]:  # noqa: F811
    return readobj_unwind(arm64_pe.exe)


def test_decoding_equals_llvm_readobj_on_every_function(image, readobj):
    assert [e["begin"] - image.image_base for e in readobj] == [b for b, _ in image.arm64_entries]
    assert len(readobj) >= 15
    for k, entry in enumerate(readobj):
        info = image.unwind_info_for(k)
        f = entry["fields"]
        where = f"function at {entry['begin']:#x}"
        assert info.function_length == int(f["FunctionLength"]), where
        if entry["kind"] == "xdata":
            assert info.packed is None and info.version == int(f["Version"]), where
            assert info.packed_epilog == (f["EpiloguePacked"] == "Yes"), where
            if info.packed_epilog:
                assert info.epilog_index == int(f["EpilogueOffset"]), where
            else:
                assert [(e.start // 4, e.index) for e in info.epilogs] == entry["scopes"], where
            ours = [(code.length, render(code)) for code in info.prolog_codes]
            theirs = [(len(raw) // 2, normalize(text)) for raw, text in entry["codes"]]
            assert ours == theirs, where
        else:
            p = info.packed
            assert p is not None and p.flag == (2 if f["Fragment"] == "Yes" else 1), where
            assert (p.reg_f, p.reg_i, p.homed, p.cr, p.frame_size) == (
                int(f["RegF"]), int(f["RegI"]), f["HomedParameters"] == "Yes", int(f["CR"]), int(f["FrameSize"])), where
            assert [render(c) for c in info.prolog_codes] == [normalize(line) for line in entry["lines"]], where


def test_every_unwind_code_is_in_the_real_binary(image, readobj):
    seen = {code.op for k in range(len(readobj)) for code in image.unwind_info_for(k).prolog_codes}
    assert EVERY_CODE <= seen, EVERY_CODE - seen
    kinds = {e["kind"] for e in readobj}
    assert kinds == {"xdata", "packed"}  # both forms, checked against llvm-readobj above


# -- emulated crashes -------------------------------------------------------------------------

def emulate(exe: Path, scenario: int, stop_at: tuple[int, int] | None = None,
            base: int | None = None, pointer_auth: bool = True) -> tuple[Crash, dict]:
    emu = Arm64Emulator(pointer_auth=pointer_auth)  # pac-ret code saves signed return addresses
    loaded = load_pe(emu, exe, base)
    kwargs = {"stack_size": STACK_SIZES[scenario]} if scenario in STACK_SIZES else {}
    crash = emu.run(loaded.entry, args=(scenario,), stop_at=stop_at, **kwargs)
    return crash, module_record(loaded)


def library_walk(crash: Crash, image: Arm64PeUnwindImage, module: dict):
    regs = {k: v for k, v in crash.regs.items()}
    regs.update({f"d{i}": crash.fpregs[f"d{i}"] for i in range(8, 16)})
    start, data = crash.stack
    mods = [WalkModule(module["base"], module["size"], module["name"], 0)]
    return walk_stack(CpuContext("arm64", regs), StackMemory([crash.stack]), mods, lambda m: image,
                      stack_end=start + len(data))


def check_walk(crash: Crash, image, module, where: str) -> None:
    result = library_walk(crash, image, module)
    pcs = [f.pc for f in result.frames]
    assert pcs == crash.oracle_pcs(), f"{where}: {[hex(p) for p in pcs]} != {[hex(p) for p in crash.oracle_pcs()]}"
    # Unwind data for every caller; a PC outside every module (a bad jump) is left through LR.
    in_module = [module["base"] <= pc < module["base"] + module["size"] for pc in pcs]
    assert [f.trust for f in result.frames[1:]] == ["cfi" if ok else "frame-pointer" for ok in in_module[:-1]], where
    # Each caller frame's callee-saved registers, as far as the walk knows them, are the ones it had
    # when it made its call.
    for frame, call in zip(result.frames[1:], reversed(crash.shadow)):
        for name, value in call.saved.items():
            if name in frame.context.regs:
                assert frame.context.regs[name] == value, f"{where}: {name} of the frame at {frame.pc:#x}"


@pytest.fixture(scope="session")
def published(arm64_pe, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("arm64pe-store")
    staged = root / "staged"
    staged.mkdir()
    shutil.copyfile(arm64_pe.exe, staged / "crash.exe")
    shutil.copyfile(arm64_pe.pdb, staged / "crash.pdb")
    store = root / "store"
    result = CliRunner().invoke(app, ["publish", str(staged), "--store", str(store)], env={"SYMTOOL_STORE": ""})
    assert result.exit_code == 0, result.output
    return store


def pdb_publics(pdb: Path, exe: Path) -> list[tuple[int, str]]:
    """(address, name) of the PDB's public function symbols, as llvm-pdbutil lists them, sorted."""
    pe = pefile.PE(str(exe), fast_load=True)
    sections = [s.VirtualAddress for s in pe.sections]
    text = subprocess.run([need_tool("llvm-pdbutil-19"), "dump", "--publics", str(pdb)], capture_output=True,
                          text=True, check=True).stdout
    found = re.findall(r"S_PUB32 \[size = \d+\] `([^`]+)`\s+flags = function, addr = (\d+):(\d+)", text)
    return sorted((pe.OPTIONAL_HEADER.ImageBase + sections[int(sec) - 1] + int(off), name) for name, sec, off in found)


def symbolizer_frames(exe: Path, pdb: Path, addresses: list[int]) -> list[list[tuple]]:
    """llvm-symbolizer's (function, file, line) for each address, inlined functions first; for code
    without debug information (the assembly functions), the PDB's public symbol at or below it."""
    proc = subprocess.run([need_tool("llvm-symbolizer-19"), f"--obj={exe}", "--inlining", "--functions=short",
                           *[hex(a) for a in addresses]], capture_output=True, text=True, check=True)
    blocks = proc.stdout.rstrip("\n").split("\n\n")  # per address: (function, file:line:column) line pairs
    out = []
    publics = None
    for address, block in zip(addresses, blocks):
        lines = block.split("\n")
        frames = []
        for name, where in zip(lines[0::2], lines[1::2]):
            file, line, _column = where.rsplit(":", 2)
            frames.append((name, None if file == "??" else file, int(line) or None))
        if [f[0] for f in frames] in ([""], ["??"]):
            publics = publics or pdb_publics(pdb, exe)
            frames = [(max((p for p in publics if p[0] <= address), default=(0, "??"))[1], None, None)]
        out.append(frames)
    return out


def assert_stack_matches(crash: Crash, module: dict, exe: Path, pdb: Path, store: Path, dump: Path) -> list[dict]:
    """``symtool stack`` on ``crash``'s dump, with ``store``: the emulator's frames in order, each
    found by unwind data (a PC outside every module: through LR), named with file and line as
    llvm-symbolizer names the same addresses (return addresses: the call), inline frames included."""
    dump.write_bytes(crash_minidump(crash, [module]))
    result = CliRunner().invoke(app, ["stack", "--json", "--store", str(store), str(dump)],
                                env={"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": ""})
    assert result.exit_code == 0, result.output
    (thread,) = json.loads(result.output)["threads"]
    frames = [f for f in thread["frames"] if not f.get("inline")]
    oracle = crash.oracle_pcs()
    assert [int(f["address"], 16) for f in frames] == oracle
    in_module = [module["base"] <= pc < module["base"] + module["size"] for pc in oracle]
    assert [f["trust"] for f in frames] == ["context"] + ["cfi" if ok else "frame-pointer" for ok in in_module[:-1]]
    # llvm-symbolizer takes addresses at the image's preferred base.
    rebase = pefile.PE(str(exe), fast_load=True).OPTIONAL_HEADER.ImageBase - module["base"]
    lookups = [(pc if k == 0 else pc - 4) + rebase for k, pc in enumerate(oracle)]
    known = [k for k, ok in enumerate(in_module) if ok]
    expected = symbolizer_frames(exe, pdb, [lookups[k] for k in known])
    got: dict[int, list[tuple]] = {}  # frame number -> its inlined functions (innermost first), then its own
    pending: list[tuple] = []
    for row in thread["frames"]:  # an inline row comes before the row of the frame it is inlined into
        pending.append((row["function"], row["file"], row["line"]))
        if not row.get("inline"):
            got[len(got)] = pending
            pending = []
    for k, names in zip(known, expected):
        assert got[k] == names, f"frame {k}"
    return thread["frames"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS), ids=[SCENARIOS[s] for s in sorted(SCENARIOS)])
def test_symtool_stack_lists_the_emulators_frames(scenario, arm64_pe, image, published, tmp_path):  # noqa: F811
    crash, module = emulate(arm64_pe.exe, scenario)
    assert crash.reason in ("write-unmapped", "read-unmapped", "fetch-unmapped"), crash.reason
    if scenario in PAC_SIGNED:  # the stack really holds signed return addresses for the walk to strip
        assert signed_return_addresses(crash), "no pointer-authenticated return address on the stack"
    assert_stack_matches(crash, module, arm64_pe.exe, arm64_pe.pdb, published, tmp_path / "crash.dmp")
    check_walk(crash, image, module, SCENARIOS[scenario])


def test_an_image_relocated_by_aslr_is_walked_by_rva(arm64_pe, image, published, tmp_path):  # noqa: F811
    """Windows on ARM images are always loaded where ASLR puts them: the same crash at another base
    (calls through the relocated pointer table, pac-ret frames)."""
    for scenario in (4, 9):
        crash, module = emulate(arm64_pe.exe, scenario, base=0x6_2345_0000)
        assert crash.reason == "write-unmapped" and module["base"] == 0x6_2345_0000
        assert_stack_matches(crash, module, arm64_pe.exe, arm64_pe.pdb, published, tmp_path / f"{scenario}.dmp")


# -- Rust: the samples' no_core crashes built for aarch64-pc-windows-msvc ------------------------

RUST_TRIPLE = "aarch64-pc-windows-msvc"
RUST_PROGRAMS = {"crash-deep": "write-unmapped", "crash-recurse": "write-unmapped", "crash-ill": "brk",
                 "crash-me": "write-unmapped"}


@pytest.fixture(scope="session")
def rust_arm64(tmp_path_factory):
    """The samples built by cargo for Windows on ARM (rust-lld, PDBs), published to a store."""
    from native_builds import _workspace, cargo_build

    need_tool("cargo")
    ws = _workspace(tmp_path_factory, "rust-arm64pe")
    build = cargo_build(ws, ws / "target", RUST_TRIPLE, "release")
    store = ws.parent / "store"
    result = CliRunner().invoke(app, ["publish", str(build.out), "--store", str(store)], env={"SYMTOOL_STORE": ""})
    assert result.exit_code == 0, result.output
    return build, store


@pytest.mark.parametrize("program", sorted(RUST_PROGRAMS))
def test_rust_crashes_on_windows_arm64(program, rust_arm64, tmp_path):
    build, store = rust_arm64
    exe = build.out / f"{program}.exe"
    pdb = build.out / f"{program.replace('-', '_')}.pdb"
    emu = Arm64Emulator(pointer_auth=True)
    loaded = load_pe(emu, exe)
    crash = emu.run(loaded.entry)
    assert crash.reason == RUST_PROGRAMS[program]
    rows = assert_stack_matches(crash, module_record(loaded), exe, pdb, store, tmp_path / f"{program}.dmp")
    assert rows[-1]["function"].endswith("::mainCRTStartup") and all(r["line"] for r in rows)
    check_walk(crash, read_pe_unwind_any(exe), module_record(loaded), program)


def _prologue_and_epilogue_addresses(entry: dict, image: Arm64PeUnwindImage, k: int) -> list[int]:
    """Every instruction of the function's prologue and epilogues, from llvm-readobj's decoding."""
    begin, f = entry["begin"], entry["fields"]
    length = int(f["FunctionLength"])
    if entry["kind"] == "packed":
        lines = [x for x in entry["lines"] if x != "end"]
        epilog = [x for x in lines if x != "mov x29, sp" and not re.match(r"stp x[0-7], x[0-7], \[sp, #\d+\]$", x)]
        prolog_n, epilogs = len(lines), [(length - 4 * (len(epilog) + 1), len(epilog) + 1)]
    else:
        codes = [text for _raw, text in entry["codes"]]
        prolog_n = next(i for i, t in enumerate(codes) if t in ("end", "end_c"))
        sequence = image.unwind_info_for(k)
        if f["EpiloguePacked"] == "Yes":
            n = len(sequence.epilog_sequence(int(f["EpilogueOffset"])))
            epilogs = [(length - 4 * n, n)]
        else:
            epilogs = [(4 * start, len(sequence.epilog_sequence(index))) for start, index in entry["scopes"]]
    points = [begin + 4 * i for i in range(prolog_n)]
    for start, n in epilogs:
        points += [begin + start + 4 * i for i in range(n)]
    return points


# function -> the quiet scenario that runs it (prologue and epilogue)
RUNS = {"recurse": 0, "big_frame": 1, "many_registers": 2, "float_registers": 3, "has_inlined_calls": 4,
        "pointer_target": 4, "call_through_pointer": 4, "variadic": 7, "dynamic_frame": 8, "chained_entry": 9,
        "chained_leaf_caller": 9, "every_int_code": 10, "every_fp_code": 11, "chain_parent": 12,
        "chain_fragment": 12}


def test_a_thread_stopped_in_any_prologue_or_epilogue_instruction_is_walked(arm64_pe, image, readobj):  # noqa: F811
    names = [[f[0] for f in frames] for frames in symbolizer_frames(arm64_pe.exe, arm64_pe.pdb,
                                                                     [e["begin"] for e in readobj])]
    checked = 0
    for k, (entry, name) in enumerate(zip(readobj, names)):
        function = name[-1]
        if function not in RUNS:
            continue
        for address in _prologue_and_epilogue_addresses(entry, image, k):
            # Without pointer authentication (QEMU computing QARMA doubles the time; the crash tests cover PAC).
            crash, module = emulate(arm64_pe.exe, QUIET + RUNS[function], stop_at=(address, 0), pointer_auth=False)
            assert crash.reason == "stopped" and crash.regs["pc"] == address, (function, hex(address), crash.reason)
            check_walk(crash, image, module, f"{function} stopped at {address:#x}")
            checked += 1
    assert checked >= 100


REFUSAL = {0xFFFFFFFF: "reserved flag 3", 0x7FFFFFFC: "outside the image's sections",
           0xFFFFFFFD: "integer registers"}


@pytest.mark.parametrize("word", sorted(REFUSAL))  # reserved flag; .xdata off the image; packed RegI 15
def test_hostile_unwind_data_in_the_store_gives_frames_or_notes_never_a_traceback(word, arm64_pe, tmp_path):  # noqa: F811
    """The store's image has every .pdata entry's unwind word overwritten: `symtool stack` still
    walks (frame records, scanning) and says why the unwind data was not used."""
    raw = bytearray(arm64_pe.exe.read_bytes())
    pe = pefile.PE(data=bytes(raw), fast_load=True)
    pdata = next(s for s in pe.sections if s.Name.rstrip(b"\0") == b".pdata")
    for at in range(pdata.PointerToRawData + 4, pdata.PointerToRawData + pdata.Misc_VirtualSize, 8):
        struct.pack_into("<I", raw, at, word)
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "crash.exe").write_bytes(bytes(raw))
    shutil.copyfile(arm64_pe.pdb, staged / "crash.pdb")
    store = tmp_path / "store"
    assert CliRunner().invoke(app, ["publish", str(staged), "--store", str(store)],
                              env={"SYMTOOL_STORE": ""}).exit_code == 0
    crash, module = emulate(arm64_pe.exe, 4)
    dump = tmp_path / "crash.dmp"
    dump.write_bytes(crash_minidump(crash, [module]))
    result = CliRunner().invoke(app, ["stack", "--json", "--store", str(store), str(dump)],
                                env={"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": ""})
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    (thread,) = json.loads(result.output)["threads"]
    frames = [f for f in thread["frames"] if not f.get("inline")]
    assert frames[0]["trust"] == "context" and int(frames[0]["address"], 16) == crash.regs["pc"]
    # Frame 0 is a leaf without .pdata (through LR); every caller's unwind data is refused with a note,
    # and the frame records and scanning still find the emulator's frames.
    assert {f["trust"] for f in frames[2:]} <= {"frame-pointer", "scan"}, frames
    assert len(thread["notes"]) == len(frames) - 1 and all(REFUSAL[word] in n for n in thread["notes"])
    found = iter(int(f["address"], 16) for f in frames)
    assert all(pc in found for pc in crash.oracle_pcs()), (frames, crash.oracle_pcs())
