"""Property tests for the DWARF symbolizer's readers: real split-DWARF binaries and their .dwp
(tests/fixtures/elf-macho/crash-me.dwarf4/5), with their DWARF sections mutated (byte flips,
overwrites with interesting integers and LEB128s, truncation), must symbolize every address or
raise FormatError: never another exception, a hang or a giant allocation.  The line-program
reader and the Rust v0 demangler get arbitrary input of their own."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES_DIR, need_tool
from symtool.demangle import V0_EXPANSION, demangle, demangle_llvm
from symtool.errors import FormatError
from symtool.formats.binio import BoundedReader
from symtool.formats.dwarf import SectionView
from symtool.formats.dwarf_line import read_line_table
from symtool.formats.dwarf_symbols import DwarfSymbolizer, _disjoint, _flatten
from symtool.formats.elf import ElfFile
from symtool.formats.symbols import Frame, Symbolized

SETTINGS = settings(max_examples=int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "500")) // 2, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
# One example (open, map, symbolize every .text byte) on a loaded machine; real ones take milliseconds.
MAX_SECONDS = 5.0

INTERESTING = [0, 1, 2, 4, 5, 8, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0,
               0xFFFFFFFF]
LEBS = [b"\x80" * 9 + b"\x01", b"\xff" * 12, b"\xff\xff\xff\xff\x0f", b"\x00", b"\x7f"]

FX = FIXTURES_DIR / "elf-macho"
PAIRS = [("crash-me.dwarf4", "crash-me.dwarf4.dwp"), ("crash-me.dwarf5", "crash-me.dwarf5.dwp")]
FILES = {name: (FX / name).read_bytes() for pair in PAIRS for name in pair}


def _sections(name: str) -> dict[str, tuple[int, int]]:
    path = str(FX / name)
    with open(path, "rb") as f:
        elf = ElfFile(BoundedReader(f, path), path)
        elf.read_sections()
        return {s.name: (s.offset, s.size) for s in elf.sections if s.name.startswith(".debug") and s.size}


SECTIONS = {name: _sections(name) for name in FILES}
TEXT = {}
for _binary, _ in PAIRS:
    with open(FX / _binary, "rb") as _f:
        _elf = ElfFile(BoundedReader(_f, str(FX / _binary)), str(FX / _binary))
        _elf.read_sections()
        _text = _elf.section(".text")
        TEXT[_binary] = (_text.addr, _text.addr + _text.size, _elf.load_bias())

WORK = Path(tempfile.mkdtemp(prefix="symtool-dwarf-fuzz-"))


@st.composite
def mutated_dwarf(draw, name: str):
    """``name``'s bytes with some of its DWARF sections' bytes changed."""
    data = bytearray(FILES[name])
    sections = SECTIONS[name]
    for _ in range(draw(st.integers(1, 8))):
        sec = draw(st.sampled_from(sorted(sections)))
        off, size = sections[sec]
        at = off + draw(st.integers(0, size - 1))
        kind = draw(st.integers(0, 2))
        if kind == 0:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == 1 and at + 4 <= off + size:
            value = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 0xFFFFFFFF)))
            struct.pack_into("<I", data, at, value)
        else:
            leb = draw(st.sampled_from(LEBS))
            end = min(at + len(leb), off + size)
            data[at:end] = leb[:end - at]
    if draw(st.integers(0, 9)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


@st.composite
def mutated_pair(draw):
    binary, dwp = draw(st.sampled_from(PAIRS))
    which = draw(st.sampled_from(["binary", "dwp", "both"]))
    bdata = draw(mutated_dwarf(binary)) if which != "dwp" else FILES[binary]
    ddata = draw(mutated_dwarf(dwp)) if which != "binary" else FILES[dwp]
    return binary, bdata, ddata


def _symbolize_all(binary: str, bdata: bytes, ddata: bytes, note=event) -> None:
    bpath, dpath = WORK / binary, WORK / (binary + ".dwp")
    bpath.write_bytes(bdata)
    dpath.write_bytes(ddata)
    lo, hi, bias = TEXT[binary]
    started = time.monotonic()
    try:
        sym = DwarfSymbolizer(bpath, dpath)
    except FormatError as err:
        assert err.path in (str(bpath), str(dpath))
        note("FormatError on open")
        return
    errors = frames = 0
    try:
        for addr in [0, lo - 1, *range(lo, hi), hi, 1 << 40]:
            try:
                result = sym.symbolize(addr - bias)
            except FormatError as err:
                assert err.path in (str(bpath), str(dpath))
                errors += 1
                continue
            if result is not None:
                frames += len(result.frames)
                assert isinstance(result, Symbolized)
                assert all(isinstance(f, Frame) and isinstance(f.function, str) for f in result.frames)
                assert len(result.frames) <= len(bdata) + len(ddata)
    finally:
        sym.close()
    note("opened; some lookups raise FormatError" if errors else "opened; every lookup answers")
    note("frames found" if frames else "no frames")
    assert time.monotonic() - started < MAX_SECONDS


@SETTINGS
@given(mutated_pair())
def test_mutated_dwarf_symbolizes_or_raises_format_error(case):
    _symbolize_all(*case)


def test_the_unmutated_fixtures_symbolize():
    for binary, dwp in PAIRS:
        _symbolize_all(binary, FILES[binary], FILES[dwp], note=lambda _: None)
        sym = DwarfSymbolizer(FX / binary, FX / dwp)
        lo, _hi, bias = TEXT[binary]
        assert sym.symbolize(lo - bias).frames  # the fuzz starts from files that do symbolize
        sym.close()


LINE = {name: FILES[name][off:off + size] for name in FILES for sec, (off, size) in SECTIONS[name].items()
        if sec == ".debug_line"}


@SETTINGS
@given(st.sampled_from(sorted(LINE)), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                                                max_size=12),
       st.binary(max_size=64), st.integers(0, 1 << 24))
def test_mutated_line_programs_run_or_raise_format_error(name, flips, tail, probe):
    data = bytearray(LINE[name])
    for at, value in flips:
        if data:
            data[at % len(data)] ^= value or 1
    data += tail
    try:
        table = read_line_table(SectionView.of_bytes(".debug_line", bytes(data), "x"), 0, "<", 8)
    except FormatError:
        return
    table.lookup(probe)
    for seq in table.sequences[:4]:
        row = table.lookup(seq.low)
        if row is not None:
            table.file_name(row[0], "/comp")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=200))
def test_v0_demangler_takes_any_input(tail):
    started = time.monotonic()
    out = demangle("_R" + tail)
    assert isinstance(out, str)
    whole = demangle_llvm("_R" + tail)
    assert isinstance(whole, str) and len(whole) <= 64 * V0_EXPANSION * max(len(tail), 16)
    assert time.monotonic() - started < 1.0


def _base62(value: int) -> str:
    if value == 0:
        return "_"
    value -= 1
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        out = digits[value % 62] + out
        value //= 62
        if not value:
            return out + "_"


def _backref_bomb(levels: int) -> str:
    """``a::f::<T>`` where each tuple type holds the previous one twice, by backreference:
    2**levels leaves from a name linear in ``levels``."""
    body = "INvCs1_1a1f"
    previous = len(body)
    body += "TuuE"
    for _ in range(levels):
        here = len(body)
        body += "T" + "B" + _base62(previous) + "B" + _base62(previous) + "E"
        previous = here
    return "_R" + body + "E"


def test_v0_backreference_bombs_stay_bounded():
    name = _backref_bomb(40)  # 2**40 leaves unbounded
    started = time.monotonic()
    out = demangle(name)
    assert isinstance(out, str) and len(out) <= 1024
    assert demangle_llvm(name) == name  # past its budget (proportional to the name): left mangled
    assert time.monotonic() - started < 1.0
    # a shallow one still demangles: a::f::<((), ())> with the tuple written once
    assert demangle("_RINvCs1_1a1fTuuETB" + _base62(len("INvCs1_1a1f")) + "B" + _base62(len("INvCs1_1a1f")) + "EE") \
        == "a::f::<((), ()), (((), ()), ((), ()))>"


def test_v0_backreferences_within_the_budget_demangle_as_llvm_does():
    """A few levels of the same bomb stay within the budget: the whole name, as LLVM's
    llvm-cxxfilt prints it (the oracle)."""
    names = [_backref_bomb(levels) for levels in (1, 3, 5)]
    theirs = subprocess.run([need_tool("llvm-cxxfilt-19")], input="\n".join(names) + "\n", capture_output=True,
                            text=True, check=True).stdout.splitlines()
    assert [demangle_llvm(n) for n in names] == theirs
    assert len(theirs[-1]) > 8 * len(names[-1])  # backreferences expanded: longer than its name


NON_ASCII_RUST = """
#![allow(non_snake_case)]
pub struct Größe<T>(pub T);
impl<T: Copy> Größe<T> { #[inline(never)] pub fn 計算(&self) -> T { self.0 } }
#[inline(never)] pub fn größe_ändern(x: u32) -> u32 { x + 1 }
#[inline(never)] pub fn ascii_then_ü(x: u32) -> u32 { x * 3 }
pub fn run() -> u32 { größe_ändern(1) + ascii_then_ü(2) + Größe(5u32).計算() }
"""


def test_v0_punycode_identifiers_demangle_as_llvm_does(tmp_path):
    """Non-ASCII identifiers (v0 writes them in Punycode): rustc's own symbols, then random
    Punycode payloads, each as llvm-cxxfilt-19 prints it."""
    (tmp_path / "lib.rs").write_text(NON_ASCII_RUST)
    subprocess.run([need_tool("rustc"), "--crate-type=lib", "--emit=obj", "-C", "symbol-mangling-version=v0", "-Z",
                    "unstable-options", "lib.rs", "-o", "lib.o"], cwd=tmp_path, check=True, capture_output=True,
                   env=dict(os.environ, RUSTC_BOOTSTRAP="1"))
    symbols = subprocess.run([need_tool("llvm-nm"), "--no-demangle", str(tmp_path / "lib.o")], capture_output=True,
                             text=True, check=True).stdout.split()
    names = sorted({n for n in symbols if n.startswith("_R") and "u" in n})
    rnd = random.Random(7)
    for _ in range(2000):
        payload = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(rnd.randrange(1, 14)))
        separator = "_" if payload[0] in "0123456789_" else ""
        names.append(f"_RN{rnd.choice('vC')}Cs1_1au{len(payload)}{separator}{payload}")
    theirs = subprocess.run([need_tool("llvm-cxxfilt-19")], input="\n".join(names) + "\n", capture_output=True,
                            text=True, check=True).stdout.split("\n")[:-1]  # not splitlines: names hold U+0085
    assert [demangle_llvm(n) for n in names] == theirs
    assert {"lib::größe_ändern", "<lib::Größe<u32>>::計算"} <= set(theirs)
    assert demangle_llvm("_RNvCs1_1au2000" + "a" * 2000) == "_RNvCs1_1au2000" + "a" * 2000  # too long: as it is


DWO_PROGRAM = r"""
static inline int sq(int x) { return x * x; }
__attribute__((always_inline)) static inline int twice(int x) { return sq(x) + sq(x + 1); }
int compute(int n) { int t = 0; for (int i = 0; i < n; i++) t += twice(i); return t; }
int main(int argc, char **argv) { return compute(argc); }
"""
_DWO: dict[int, tuple[Path, bytes, tuple[int, int, int]]] = {}


def _dwo_build(version: int) -> tuple[Path, bytes, tuple[int, int, int]]:
    """A clang -gsplit-dwarf build (its binary, the .dwo's bytes, .text), once per run."""
    import subprocess

    from conftest import need_tool

    if version not in _DWO:
        d = WORK / f"dwo{version}"
        d.mkdir(exist_ok=True)
        (d / "prog.c").write_text(DWO_PROGRAM)
        subprocess.run([need_tool("clang"), "-O2", "-g", f"-gdwarf-{version}", "-gsplit-dwarf", "prog.c", "-o",
                        "prog"], cwd=d, check=True)
        with open(d / "prog", "rb") as f:
            elf = ElfFile(BoundedReader(f, str(d / "prog")), str(d / "prog"))
            elf.read_sections()
            text = elf.section(".text")
            span = (text.addr, text.addr + text.size, elf.load_bias())
        _DWO[version] = (d / "prog", (d / "prog.dwo").read_bytes(), span)
    return _DWO[version]


@settings(max_examples=int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "500")) // 5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([4, 5]), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=16),
       st.one_of(st.none(), st.integers(0, 1 << 20)))
def test_mutated_dwo_symbolizes_or_raises_format_error(version, flips, cut):
    """An unpacked .dwo beside the binary, mutated: every address answers (the unit's skeleton
    lines when the .dwo is refused, with a note) or raises FormatError naming the .dwo."""
    binary, original, (lo, hi, bias) = _dwo_build(version)
    data = bytearray(original)
    for at, value in flips:
        data[at % len(data)] ^= value or 1
    if cut is not None:
        del data[cut % len(data):]
    dwo = binary.with_name("prog.dwo")
    dwo.write_bytes(bytes(data))
    started = time.monotonic()
    try:
        with DwarfSymbolizer(binary) as sym:
            for addr in range(lo, hi):
                try:
                    result = sym.symbolize(addr - bias)
                except FormatError as err:
                    assert err.path in (str(binary), str(dwo)), err.path
                    continue
                assert result is None or all(isinstance(f.function, str) for f in result.frames)
    finally:
        dwo.write_bytes(original)
    assert time.monotonic() - started < MAX_SECONDS


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 64), st.integers(-4, 24), st.integers(0, 6)), max_size=12))
def test_address_maps_pick_llvms_winner_at_every_address(spec):
    """The unit map (_disjoint: where units overlap, the lowest unit offset, as LLVM's
    DWARFDebugAranges) and the function/call maps (_flatten: the later DIE in the tree, as
    DWARFUnit::updateAddressDieMap) checked against that rule at every address, including the
    clusters of overlapping ranges they sweep and the lone ones they take as they are."""
    units = [(lo, lo + n, off * 16) for lo, n, off in spec]
    cells = _disjoint(units)
    for p in range(96):
        covering = [off for lo, hi, off in units if lo <= p < hi]
        assert [off for lo, hi, off in cells if lo <= p < hi] == ([min(covering)] if covering else [])
    for a, b in zip(cells, cells[1:]):  # sorted, disjoint, touching cells of one unit merged
        assert a[1] <= b[0] and not (a[1] == b[0] and a[2] == b[2])
    calls = [(lo, lo + n, order, 0x100 + order) for order, (lo, n, _off) in enumerate(spec)]
    starts, ends, owners = _flatten(calls)
    for p in range(96):
        covering = [(order, die) for lo, hi, order, die in calls if lo <= p < hi]
        got = [die for lo, hi, die in zip(starts, ends, owners) if lo <= p < hi]
        assert got == ([max(covering)[1]] if covering else [])
