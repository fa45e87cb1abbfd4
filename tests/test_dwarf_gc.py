"""The DWARF reader's policy towards Python's cyclic garbage collector
(DwarfSymbolizer._after_answer in symtool/formats/dwarf_symbols.py, docs/symbolize.md).

What an answer parses is frozen (``gc.freeze()``) so that the collector never scans it again;
that is only safe because a parsed unit holds no reference cycle: what the reader's cache lets
go must be freed by reference counting alone, and whatever else was frozen along with it must be
given back to the collector when the cache has let go of enough, and when the reader is closed.
These tests check those properties on a real clang build with many compile units, with a cache
budget small enough that units are evicted all the time (a long run in miniature).  No timing.
"""

from __future__ import annotations

import gc
import subprocess
import weakref
from pathlib import Path

import pytest

from conftest import need_tool
from symtool.formats.dwarf_symbols import DwarfSymbolizer

UNITS = 12


def _unit_source(i: int) -> str:
    # An always-inlined helper in each unit: the answers have inline chains (child maps, calls).
    return f"""
static inline __attribute__((always_inline)) int helper{i}(int x) {{
    int acc = x;
    for (int k = 0; k < x % 7; k++) acc = acc * 31 + k + {i};
    return acc;
}}
__attribute__((noinline)) int func{i}(int x) {{ return helper{i}(x) ^ helper{i}(x + {i}); }}
"""


@pytest.fixture(scope="module")
def many_units(tmp_path_factory) -> tuple[Path, list[int]]:
    """A C program of UNITS + 1 compile units (clang -O2 -g) and an address in each function."""
    work = tmp_path_factory.mktemp("gcunits")
    sources = []
    for i in range(UNITS):
        src = work / f"u{i}.c"
        src.write_text(_unit_source(i))
        sources.append(str(src))
    main = work / "main.c"
    main.write_text("".join(f"int func{i}(int);\n" for i in range(UNITS))
                    + "int main(int argc, char **argv) { int s = 0;\n"
                    + "".join(f"  s += func{i}(argc);\n" for i in range(UNITS)) + "  return s & 1; }\n")
    binary = work / "prog"
    subprocess.run([need_tool("clang"), "-O2", "-g", *sources, str(main), "-o", str(binary)], check=True)
    nm = subprocess.run([need_tool("llvm-nm"), "--defined-only", "-S", str(binary)], capture_output=True,
                        text=True, check=True).stdout
    spans = {f[3]: (int(f[0], 16), int(f[1], 16)) for f in map(str.split, nm.splitlines()) if len(f) == 4}
    addrs = []
    with DwarfSymbolizer(binary) as sym:
        for name in [f"func{i}" for i in range(UNITS)] + ["main"]:
            start, size = spans[name]
            inside = [a for a in range(start, start + size) if len(sym.symbolize(a - sym.load_bias).frames) > 1]
            addrs.append(inside[0] if inside else start)  # in an inlined call where there is one
    return binary, addrs


def _answers(sym: DwarfSymbolizer, addrs: list[int]) -> list:
    return [sym.symbolize(a - sym.load_bias) for a in addrs]


def _record_puts(monkeypatch) -> list:
    """(key, weak reference) of everything the readers put in their caches from now on (parsed
    units, line tables, units read for a reference into them)."""
    puts = []
    put = DwarfSymbolizer._cache_put

    def recording(self, key, value, cost):
        puts.append((key, weakref.ref(value)))
        put(self, key, value, cost)

    monkeypatch.setattr(DwarfSymbolizer, "_cache_put", recording)
    return puts


def test_evicted_units_are_freed_by_reference_counting_alone(many_units, monkeypatch):
    """With the collector off for the whole run, every unit and line table the cache lets go is
    gone at once: no reference cycle keeps a parsed unit alive (what makes freezing them safe)."""
    binary, addrs = many_units
    with DwarfSymbolizer(binary) as sym:
        expected = _answers(sym, addrs)  # a cache large enough to keep everything
    monkeypatch.setenv("SYMTOOL_MAX_DWARF_CACHE", "1")  # every new entry evicts all older ones
    puts = _record_puts(monkeypatch)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with DwarfSymbolizer(binary) as sym:
            answers = []
            for _round in range(3):  # units parsed, evicted, parsed again
                for a in addrs:
                    answers.append(sym.symbolize(a - sym.load_bias))
                    held = {id(value) for value in sym._cache.values()}
                    alive = [key for key, ref in puts if ref() is not None and id(ref()) not in held]
                    assert not alive, f"let go of but still alive: {alive}"
            assert len([key for key, _ref in puts if key[0] == "unit"]) >= 3 * UNITS  # parsed again and again
    finally:
        if was_enabled:
            gc.enable()
    assert answers == expected * 3  # evictions change no answer
    assert any(len(result.frames) > 1 for result in expected)  # inline chains were answered


class _Cycle:
    """Another part of the program's garbage: an object in a reference cycle."""

    def __init__(self):
        self.me = self


def test_what_answers_freeze_goes_back_to_the_collector(many_units, monkeypatch):
    """Other code's cyclic garbage frozen along with a parsed unit is collected once the cache has
    let go of EVICTED_PER_COLLECTION times its budget, and the reader's close unfreezes whatever
    is left."""
    binary, addrs = many_units
    assert gc.isenabled()
    monkeypatch.setenv("SYMTOOL_MAX_DWARF_CACHE", "1")
    with DwarfSymbolizer(binary) as sym:
        bystander = _Cycle()
        ref = weakref.ref(bystander)
        sym.symbolize(addrs[0] - sym.load_bias)  # parses a unit: everything alive is frozen
        assert gc.get_freeze_count() > 0
        del bystander  # now garbage, frozen: no pass of the collector would find it
        assert ref() is not None
        for a in addrs[1:]:  # each parses a unit and evicts the last: the collector runs
            sym.symbolize(a - sym.load_bias)
        assert ref() is None
    assert gc.get_freeze_count() == 0

    # Without evictions (the default budget), closing the reader gives the frozen back.
    monkeypatch.delenv("SYMTOOL_MAX_DWARF_CACHE")
    with DwarfSymbolizer(binary) as sym:
        bystander = _Cycle()
        ref = weakref.ref(bystander)
        _answers(sym, addrs)
        assert gc.get_freeze_count() > 0
        del bystander
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert ref() is None


def test_a_reader_that_froze_nothing_leaves_the_frozen_alone(many_units):
    """Objects another part of the program froze stay frozen when a reader that answered nothing
    is closed: the reader only gives back what its answers froze."""
    binary, _addrs = many_units
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with DwarfSymbolizer(binary):
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
