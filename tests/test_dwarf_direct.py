"""DwarfSymbolizer's direct path (``_direct``: an address's function found by searching its
unit's bytes for the ELF symbol's start, only that function's DIEs walked) against the walk of
the whole unit it replaces, and against llvm-symbolizer, on programs built here:

* C from clang, DWARF 4 (``DW_FORM_addr`` low_pc: the direct path), with identical functions
  folded by lld (``--icf=all``: several symbols, and several DIEs, at one start);
* the same C in DWARF 5 (``DW_FORM_addrx``: every function falls back to the walk);
* a Rust std program (rustc's DWARF 4), its functions folded by lld too.

Every answer (frames, symbol, offsets and the extent the symbol cache stores) must be the
walk's, at every ``.text`` byte of the C programs and at every function start, the byte after
it and random addresses of the Rust one.  Which path was taken is checked through the
symbolizer's counters (``direct_found``, ``units_walked``), never by timing.  A function whose
DIE fails a check (its symbol's size changed in ``.symtab``) must be answered by the walk, and
mutated DWARF must symbolize or raise FormatError, as every reader."""

from __future__ import annotations

import hashlib
import os
import random
import re
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from build_cache import cached_build
from conftest import need_tool
from symtool.errors import FormatError
from symtool.formats.binio import BoundedReader
from symtool.formats.dwarf_symbols import DwarfSymbolizer
from symtool.formats.elf import ElfFile
from test_dwarf_symbols import compare, every_byte, function_starts, text_range

C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
static inline int square(int x) { return x * x; }
static inline int sum_squares(const int *v, int n) {
    int s = 0; for (int i = 0; i < n; i++) s += square(v[i]); return s;
}
/* Identical bodies: lld --icf=all folds them into one (two symbols, two DIEs, one start). */
__attribute__((noinline)) int twin_a(int x) { return (x * 2654435761u) ^ (x >> 7); }
__attribute__((noinline)) int twin_b(int x) { return (x * 2654435761u) ^ (x >> 7); }
__attribute__((noinline)) static int local_fn(int *v, int n) { return sum_squares(v, n) + twin_a(n); }
int main(int argc, char **argv) {
    int v[8];
    for (int i = 0; i < 8; i++) v[i] = argc + i;
    printf("%d %d %d\n", local_fn(v, 8), twin_b(argc), argc > 1 ? atoi(argv[1]) : 0);
    return 0;
}
"""

RUST_PROGRAM = r"""
use std::collections::HashMap;
#[inline(never)] pub fn twin_a(x: u64) -> u64 { x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 29) }
#[inline(never)] pub fn twin_b(x: u64) -> u64 { x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 29) }
struct Foo<T> { v: Vec<T> }
impl<T: Clone + std::fmt::Debug> Foo<T> {
    #[inline(always)]
    fn twice(&self) -> Vec<T> { let mut v = self.v.clone(); v.extend(self.v.iter().cloned()); v }
}
fn main() {
    let mut m = HashMap::new();
    for (i, a) in std::env::args().enumerate() { m.insert(a, i); }
    let f = Foo { v: vec![1u32, 2, 3] };
    println!("{:?} {:?} {} {}", f.twice(), m, twin_a(m.len() as u64), twin_b(3));
}
"""

LLD_ICF = ["-fuse-ld=lld", "-Wl,--icf=all"]


def _tool_versions(*tools: str) -> str:
    return "\n".join(subprocess.run([need_tool(t), "--version"], capture_output=True, text=True).stdout
                     for t in tools)


def _build(kind: str, source: str, argv: list[str], tools: tuple[str, ...]) -> Path:
    """The program built once per machine (cached by source, command and tool versions)."""
    key = hashlib.sha256("\0".join([source, *argv, _tool_versions(*tools)]).encode()).hexdigest()[:16]

    def produce(work: Path) -> None:
        src = work / ("prog.rs" if kind == "rust" else "prog.c")
        src.write_text(source)
        subprocess.run([a.replace("{src}", str(src)).replace("{out}", str(work / "prog")) for a in argv],
                       cwd=work, check=True, capture_output=True, timeout=600)
        (work / "done").write_text("")

    return cached_build("dwarf-direct", f"{kind}-{key}", produce, "done") / "prog"


@pytest.fixture(scope="session")
def c_dwarf4() -> Path:
    need_tool("clang"), need_tool("ld.lld")
    return _build("c4", C_PROGRAM, ["clang", "-O2", "-gdwarf-4", "-ffunction-sections", *LLD_ICF, "{src}", "-o",
                                    "{out}"], ("clang", "ld.lld"))


@pytest.fixture(scope="session")
def c_dwarf5() -> Path:
    need_tool("clang"), need_tool("ld.lld")
    return _build("c5", C_PROGRAM, ["clang", "-O2", "-gdwarf-5", "-ffunction-sections", *LLD_ICF, "{src}", "-o",
                                    "{out}"], ("clang", "ld.lld"))


@pytest.fixture(scope="session")
def rust_program() -> Path:
    need_tool("rustc"), need_tool("ld.lld")
    return _build("rust", RUST_PROGRAM, ["rustc", "-O", "-g", "-C", "split-debuginfo=off", "-C",
                                         "link-arg=-fuse-ld=lld", "-C", "link-arg=-Wl,--icf=all", "{src}", "-o",
                                         "{out}"], ("rustc", "ld.lld"))


def _answers(binary: Path, addrs: list[int], direct: bool) -> tuple[list, DwarfSymbolizer]:
    sym = DwarfSymbolizer(binary)
    sym.direct = direct
    try:
        return [sym.symbolize_extent(a - sym.load_bias) for a in addrs], sym
    finally:
        sym.close()


def _rust_addresses(binary: Path) -> list[int]:
    lo, hi = text_range(binary)
    rnd = random.Random(25)
    addrs = {a for s in function_starts(binary) if lo <= s < hi for a in (s, s + 1)}
    addrs.update(rnd.randrange(lo, hi) for _ in range(3000))
    return sorted(addrs)


def _symbols_by_address(binary: Path) -> dict[int, set[str]]:
    out = subprocess.run([need_tool("llvm-nm"), "--defined-only", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    found: dict[int, set[str]] = {}
    for m in re.finditer(r"^([0-9a-f]+) [tT] (\S+)$", out, re.M):
        found.setdefault(int(m.group(1), 16), set()).add(m.group(2))
    return found


def _twins(binary: Path, a: str, b: str) -> int:
    """The one address of two functions lld folded (both names there, as llvm-nm lists them)."""
    for addr, names in _symbols_by_address(binary).items():
        if any(n == a or a in n for n in names) and any(n == b or b in n for n in names):
            return addr
    pytest.fail(f"lld did not fold {a} and {b} in {binary}: the test needs them at one address")


@pytest.mark.parametrize("program", ["c_dwarf4", "c_dwarf5", "rust_program"])
def test_direct_answers_are_the_walks(program, request):
    """The direct path gives the walk's answers everywhere (extents included), and is taken
    where the DWARF allows it: DWARF 4 low_pcs are DW_FORM_addr; clang's DWARF 5 uses addrx,
    so every function there is walked."""
    binary = request.getfixturevalue(program)
    addrs = every_byte(binary) if program.startswith("c_") else _rust_addresses(binary)
    direct, sym = _answers(binary, addrs, True)
    walked, walk = _answers(binary, addrs, False)
    differ = [(hex(a), d, w) for a, d, w in zip(addrs, direct, walked) if d != w]
    assert not differ, f"{len(differ)} of {len(addrs)} differ from the walk: {differ[:3]}"
    assert walk.direct_found == 0 and walk.units_walked > 0
    if program == "c_dwarf5":
        assert sym.direct_found == 0  # addrx: not searched, walked
    elif program == "c_dwarf4":
        # One unit: found directly until a static function's name needs its scopes (C has no
        # linkage name), which walks the unit; the walked unit answers from then on.
        assert sym.direct_found > 0 and sym.units_walked == 1
    else:  # every function start asked: the units holding many are walked once (DIRECT_SHARE)
        assert sym.direct_found > 0 and sym.units_walked < walk.units_walked


def _folded(binary: Path) -> list[tuple[int, int]]:
    """[start, end) of the functions lld folded with another that llvm-nm lists at one address
    with different sizes' neighbours: the addresses from each folded start to the next symbol."""
    by_address = _symbols_by_address(binary)
    starts = sorted(by_address)
    return [(a, starts[k + 1] if k + 1 < len(starts) else a + 1) for k, a in enumerate(starts)
            if len(by_address[a]) > 1]


@pytest.mark.parametrize("program", ["c_dwarf4", "rust_program"])
def test_direct_path_agrees_with_llvm_symbolizer(program, request, tmp_path):
    """Every .text byte of the C program (its folded twins included), and the Rust program's
    addresses outside std's functions that lld folded across units: there the line comes from
    the unit .debug_aranges maps the address to, in symtool as before this path (the walk
    answers the same, test_direct_answers_are_the_walks), and llvm-symbolizer 14 and 19 take
    some rows from the other unit."""
    binary = request.getfixturevalue(program)
    addrs = every_byte(binary) if program == "c_dwarf4" else _rust_addresses(binary)
    if program == "rust_program":
        folded = _folded(binary)
        kept = [a for a in addrs if not any(lo <= a < hi for lo, hi in folded)]
        assert len(kept) > 0.9 * len(addrs)
        addrs = kept
    for tool in ("llvm-symbolizer", "llvm-symbolizer-19"):
        counts = compare(binary, None, addrs, tmp_path, tool=tool)
        assert counts["agree"] == counts["addresses"] and counts["inlined"] > 0


def test_the_direct_path_is_taken_without_walking_units(rust_program):
    """A function start asked first (a new symbolizer each) is answered without walking any
    unit: the function's DIE is found by its start and only its subtree is read.  (Asked
    together, the units holding many of them are walked once instead: DIRECT_SHARE.)"""
    lo, hi = text_range(rust_program)
    starts = sorted(s for s in function_starts(rust_program) if lo <= s < hi)
    with_dwarf = 0
    for start in random.Random(7).sample(starts, 60):
        (answer,), sym = _answers(rust_program, [start], True)
        assert sym.units_walked == 0, hex(start)
        if answer[0] is not None and answer[0].module is not None:  # in a unit: found directly
            assert sym.direct_found == 1, hex(start)
            with_dwarf += 1
    assert with_dwarf > 30


def test_folded_functions_are_found_directly_as_the_walk_picks_them(c_dwarf4):
    """Identical code folded by lld: two symbols and two concrete DIEs at one start in one
    unit.  The direct path checks every place of the start in the unit and picks the last DIE,
    as the walk's address map does; no unit is walked.  (rustc's own MergeFunctions folds the
    Rust twins before the linker: one symbol, one DIE.)"""
    binary = c_dwarf4
    addr = _twins(binary, "twin_a", "twin_b")
    (direct,), sym = _answers(binary, [addr, ], True)
    (walked,), _ = _answers(binary, [addr], False)
    assert direct == walked and direct[0].frames
    assert sym.direct_found == 1 and sym.units_walked == 0


def _shrink_symbol(binary: Path, out: Path, address: int) -> None:
    """A copy of ``binary`` whose .symtab entry for the FUNC symbol at ``address`` is one byte
    shorter: the function's DIE no longer spans its symbol."""
    data = bytearray(binary.read_bytes())
    with open(binary, "rb") as f:
        elf = ElfFile(BoundedReader(f, str(binary)), str(binary))
        elf.read_sections()
        symtab = elf.section(".symtab")
        offset, size = symtab.offset, symtab.size
    changed = 0
    for at in range(offset, offset + size, 24):  # Elf64_Sym: name, info, other, shndx, value, size
        _name, info, _other, _shndx, value, sym_size = struct.unpack_from("<IBBHQQ", data, at)
        if value == address and info & 0xF == 2 and sym_size > 1:  # STT_FUNC
            struct.pack_into("<Q", data, at + 16, sym_size - 1)
            changed += 1
    assert changed
    out.write_bytes(bytes(data))


def test_a_function_failing_a_check_is_walked(c_dwarf4, tmp_path):
    """The symbol says one byte less than the DIE: not proved, so the unit is walked, and the
    answers are the walk's at every byte."""
    local = next(a for a, names in _symbols_by_address(c_dwarf4).items() if "local_fn" in names)
    binary = tmp_path / "prog"
    _shrink_symbol(c_dwarf4, binary, local)
    (direct,), sym = _answers(binary, [local], True)
    assert sym.direct_found == 0 and sym.units_walked == 1
    addrs = every_byte(binary)
    direct, _ = _answers(binary, addrs, True)
    walked, _ = _answers(binary, addrs, False)
    assert direct == walked


# -- mutated DWARF: the direct path's checks never crash ---------------------------------------

FUZZ_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_line", ".symtab")
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]


@pytest.fixture(scope="module")
def fuzz_base(c_dwarf4) -> tuple[bytes, dict[str, tuple[int, int]], tuple[int, int], list[int]]:
    data = c_dwarf4.read_bytes()
    with open(c_dwarf4, "rb") as f:
        elf = ElfFile(BoundedReader(f, str(c_dwarf4)), str(c_dwarf4))
        elf.read_sections()
        sections = {s.name: (s.offset, s.size) for s in elf.sections if s.name in FUZZ_SECTIONS and s.size}
    lo, hi = text_range(c_dwarf4)
    starts = sorted(a for a in _symbols_by_address(c_dwarf4) if lo <= a < hi)
    return data, sections, (lo, hi), starts


@settings(max_examples=int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "500")) // 5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_dwarf_through_the_direct_path_symbolizes_or_raises_format_error(fuzz_base, data):
    base, sections, (lo, hi), starts = fuzz_base
    mutated = bytearray(base)
    for _ in range(data.draw(st.integers(1, 6))):
        off, size = sections[data.draw(st.sampled_from(sorted(sections)))]
        at = off + data.draw(st.integers(0, size - 1))
        if data.draw(st.booleans()):
            mutated[at] ^= data.draw(st.integers(1, 255))
        elif at + 4 <= off + size:
            struct.pack_into("<I", mutated, at, data.draw(st.sampled_from(INTERESTING)))
    with tempfile.TemporaryDirectory(prefix="symtool-direct-fuzz-") as work:
        path = Path(work) / "prog"
        path.write_bytes(bytes(mutated))
        started = time.monotonic()
        try:
            sym = DwarfSymbolizer(path)
        except FormatError as err:
            assert err.path == str(path)
            return
        try:
            for addr in [*starts, *(s + 1 for s in starts), lo, hi - 1]:
                try:
                    sym.symbolize(addr - sym.load_bias)
                except FormatError as err:
                    assert err.path == str(path)
        finally:
            sym.close()
        assert time.monotonic() - started < 5.0
