"""Symbolize an address of an ELF module, or of a Mach-O slice (a dSYM's DWARF file or a
binary with its own ``__DWARF``), with DWARF: function, file:line and inline frames.

What is read, lazily (nothing of a unit is parsed before an address falls in it):

* the binary's ``.debug_aranges`` (and, for units it does not cover, the unit DIE's
  ``DW_AT_low_pc``/``high_pc``/``ranges``): an address -> unit map;
* for the unit of an address: its line program (``DW_AT_stmt_list``, in the
  binary's ``.debug_line`` also for split units) and its DIE tree: the unit in the
  binary itself, or, for a **skeleton** (DWARF 5 ``DW_UT_skeleton``, DWARF 4
  ``DW_AT_GNU_dwo_id``), the split unit the ``.dwp``'s ``.debug_cu_index`` (v2
  and v5) names, with its contributions to ``.debug_abbrev.dwo``,
  ``.debug_str_offsets.dwo`` and ``.debug_rnglists.dwo``; addresses of split units
  come from the binary's ``.debug_addr`` (``DW_AT_addr_base``/``GNU_addr_base``),
  DWARF 4 ranges from its ``.debug_ranges`` (``DW_AT_GNU_ranges_base``);
* ``.symtab`` for the symbol covering an address DWARF says nothing about (Mach-O: the
  ``LC_SYMTAB`` symbols, each running to the next; RVAs are relative to ``__TEXT``).

What it answers follows ``llvm-symbolizer --inlines`` (LLVM's
``DWARFContext::getInliningInfoForAddress``): the deepest ``DW_TAG_subprogram`` /
``DW_TAG_inlined_subroutine`` whose ranges hold the address, then its parents up
to the subprogram; the innermost frame's file and line come from the line table,
each outer frame's from the ``DW_AT_call_file``/``call_line`` of the frame inside
it.  Names are the linkage names (through ``DW_AT_specification`` and
``DW_AT_abstract_origin``, across units for ``DW_FORM_ref_addr``), demangled by
:mod:`symtool.demangle`; the outer frame is named from the ELF symbol table when a
symbol covers the address, as llvm-symbolizer does (line-tables-only DWARF has no
linkage names).  Addresses no unit covers get the symbol table's name (and, for a
local symbol, its ``STT_FILE``).  Deliberate differences from llvm-symbolizer:

* Rust legacy names (``_ZN...17h<hash>E``) read as the PDB symbolizer shows them
  (``Foo<T>::bar``), not Itanium-demangled with ``$LT$`` escapes and the hash;
  ``.llvm.<digits>`` suffixes are dropped;
* a function without a linkage name that is not ``DW_AT_external`` is named with
  its enclosing namespaces and types (``krate::module::name``), where
  llvm-symbolizer prints the bare ``DW_AT_name``;
* in DWARF 4 ``.dwp`` files, inlined calls with ``DW_AT_ranges`` are found
  (llvm-symbolizer 14 fails to decode those ranges and leaves the calls out; 19 agrees).

Unpacked split DWARF (``.dwo`` files: ``split-debuginfo = "unpacked"``, ``clang
-gsplit-dwarf``) is read when no ``.dwp`` holds a skeleton's unit: the file its
``DW_AT_dwo_name`` names (under ``DW_AT_comp_dir`` when relative, else the same name
beside the binary), only from the binary's directory tree and the ``dwo_roots`` given
(an allow-list: a hostile skeleton names any path), and only the unit whose DWO id is
the skeleton's; a refused ``.dwo`` is a note in ``notes`` and the unit keeps its lines.

Not read: type units, GNU ``.zdebug_*`` and zstd-compressed sections, location data
(no variables are read at all).

Work is in proportion to the addresses asked (docs/symbolize.md): the function holding an
address inside an ELF symbol is found without walking its unit where that can be proved
(_direct: the symbol's start searched for in the unit's bytes where a function's low_pc lies,
every place checked), and only its subtree is walked; otherwise a unit is walked once, when
an address first falls in it, stepping over the DIEs it does not keep by per-abbreviation
compiled skips.  Of the DIEs kept (functions, inlined calls, scopes) only those an answer
needs are decoded.  Parsed units and line tables stay for the run,
bounded by an estimate of their memory (the DWARF_CACHE budget), least recently used
let go first.  Every size and offset is checked against the section it lies in;
malformed input raises :class:`~symtool.errors.FormatError` naming the file.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import os
import stat
import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from symtool.budgets import limit
from symtool.errors import FormatError, NotRegularFileError
from symtool.formats import dwarf
from symtool.formats.binio import BoundedReader
from symtool.formats.dwarf import Cursor, SectionView, Unit
from symtool.formats.dwarf_line import LineTable, Strings, read_line_table
from symtool.formats.elf import SHF_ALLOC, SHT_NOBITS, ElfFile, Symbol, SymbolTable
from symtool.formats.macho import MAGICS as MACHO_MAGICS, open_macho_image
from symtool.formats.symbols import (ADDRESS_END, MALFORMED, Extent, Frame, Symbolized,
                                    malformed_is_format_error)

# Tags (DWARF 5, 7.5.3).
DW_TAG_class_type = 0x02
DW_TAG_enumeration_type = 0x04
DW_TAG_lexical_block = 0x0B
DW_TAG_structure_type = 0x13
DW_TAG_union_type = 0x17
DW_TAG_inlined_subroutine = 0x1D
DW_TAG_subprogram = 0x2E
DW_TAG_namespace = 0x39
DW_TAG_compile_unit = 0x11
DW_TAG_partial_unit = 0x3C
DW_TAG_skeleton_unit = 0x4A
_SCOPES = {DW_TAG_namespace, DW_TAG_structure_type, DW_TAG_class_type, DW_TAG_union_type, DW_TAG_enumeration_type}
_UNITS = {DW_TAG_compile_unit, DW_TAG_partial_unit, DW_TAG_skeleton_unit}
# DIEs the symbolizer keeps: code, and the scopes that name it.
_KEPT_TAGS = {DW_TAG_subprogram, DW_TAG_inlined_subroutine} | _SCOPES | _UNITS

# Attributes (7.5.4).
DW_AT_name = 0x03
DW_AT_stmt_list = 0x10
DW_AT_low_pc = 0x11
DW_AT_high_pc = 0x12
DW_AT_comp_dir = 0x1B
DW_AT_abstract_origin = 0x31
DW_AT_external = 0x3F
DW_AT_specification = 0x47
DW_AT_entry_pc = 0x52
DW_AT_ranges = 0x55
DW_AT_call_column = 0x57
DW_AT_call_file = 0x58
DW_AT_call_line = 0x59
DW_AT_linkage_name = 0x6E
DW_AT_str_offsets_base = 0x72
DW_AT_addr_base = 0x73
DW_AT_rnglists_base = 0x74
DW_AT_dwo_name = 0x76
DW_AT_MIPS_linkage_name = 0x2007
DW_AT_GNU_dwo_name = 0x2130
DW_AT_GNU_dwo_id = 0x2131
DW_AT_GNU_ranges_base = 0x2132
DW_AT_GNU_addr_base = 0x2133
_KEPT = {DW_AT_name, DW_AT_low_pc, DW_AT_high_pc, DW_AT_abstract_origin, DW_AT_external, DW_AT_specification,
         DW_AT_entry_pc, DW_AT_ranges, DW_AT_call_file, DW_AT_call_line, DW_AT_call_column, DW_AT_linkage_name,
         DW_AT_MIPS_linkage_name}
_UNIT_KEPT = _KEPT | {DW_AT_stmt_list, DW_AT_comp_dir, DW_AT_str_offsets_base, DW_AT_addr_base,
                      DW_AT_rnglists_base, DW_AT_dwo_name, DW_AT_GNU_dwo_name, DW_AT_GNU_dwo_id,
                      DW_AT_GNU_ranges_base,
                      DW_AT_GNU_addr_base}

# Range list entries (DWARF 5, 7.25).
DW_RLE_end_of_list = 0
DW_RLE_base_addressx = 1
DW_RLE_startx_endx = 2
DW_RLE_startx_length = 3
DW_RLE_offset_pair = 4
DW_RLE_base_address = 5
DW_RLE_start_end = 6
DW_RLE_start_length = 7

# Unit-index columns (DW_SECT_*): v5 and the GNU v2 numbering differ after 4.
DW_SECT_INFO = 1
DW_SECT_ABBREV = 3
DW_SECT_STR_OFFSETS = 6
DW_SECT_V5_RNGLISTS = 8

# .debug_aranges set header after unit_length: version, debug_info offset (4 or 8 bytes),
# address size, segment selector size.
ARANGES_TUPLE = {(e, n): struct.Struct(e + 2 * {1: "B", 2: "H", 4: "I", 8: "Q"}[n]) for e in "<>" for n in (1, 2, 4, 8)}
# A .debug_ranges entry (DWARF 2-4): start and end, address-sized, as an aranges tuple.
ADDRESS_PAIR = ARANGES_TUPLE
RANGES_WINDOW = 512  # bytes of .debug_ranges read at a time
STRING_WINDOW = 512  # bytes of a string section read first for one string
ARANGES_HEADER = {(e, n): struct.Struct(e + ("HIBB" if n == 4 else "HQBB")) for e in "<>" for n in (4, 8)}
# A DWARF 5 .debug_str_offsets / .debug_rnglists contribution header after unit_length:
# version (u16) and padding (u16) / address size, segment size, offset entry count (u32).
STR_OFFSETS_HEADER_SIZE = {4: 8, 8: 16}
RNGLISTS_HEADER_SIZE = {4: 12, 8: 20}

# What a parsed unit and a line table are reckoned to cost in memory, per kept DIE / map entry /
# line row (CPython objects: a slotted DIE with its attribute dict, tuples in lists).  The
# cache of parsed units and line tables is bounded by the DWARF_CACHE budget in these terms.
DIE_COST = 600
KEPT_COST = 100
MAP_ENTRY_COST = 120
ROW_COST = 150
FRAME_COST = 300  # a Frame an answer shares, with its place in the DIE's memo
# Bytes of line program reckoned to make one row (real ones: 3-7 bytes a row; the estimate errs high).
PROGRAM_BYTES_PER_ROW = 2
# Range list entries in one list; parent walks.
MAX_RANGES = 1 << 20
# Range list entries read while mapping one unit (many DIEs may share one long list).
MAX_RANGE_ENTRIES = 1 << 22
MAX_DEPTH = 4096
MAX_CHAIN = 64
MAX_NAME = 4096
# _direct: places of a function's start that may be its DIE, and symbols at one start, at most
# (identical code folded gives a few).
MAX_ALIASES = 64
# What _direct spends in a unit, in bytes walked: a search of the unit's bytes (bytes.find, in C)
# costs about what walking 1/FIND_PER_WALK of them does (measured: 1 ms against 40-50 ms a MiB);
# once it has spent DIRECT_SHARE of the unit's size, the unit is walked whole instead (many of
# its functions are asked: renting stops where buying would have cost as much).
FIND_PER_WALK = 32
DIRECT_SHARE = 1.0
# Cache budgets let go of between two full collections (see DwarfSymbolizer._after_answer): one
# costs a scan of everything alive, about a budget's worth, so at four budgets it is a quarter of
# a scan per object parsed (measured: a 64 MiB budget that evicts all the time, 3,000 addresses,
# full collections at a quarter budget 7.3 s of 21 s, at one budget 2.1 of 15 s).
EVICTED_PER_COLLECTION = 4
MAX_STRINGS = 1 << 16  # strings read kept for the run (then it starts again: bounded memory)

_malformed = malformed_is_format_error("DWARF")


class _File:
    """One open ELF file, or one slice of a Mach-O file (a dSYM's DWARF file or a binary with its
    own ``__DWARF``), and its sections, each decompressed (when SHF_COMPRESSED) once."""

    def __init__(self, path: str, uuid: str | None = None):
        self.path = path
        self.elf = None
        self.macho = None
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            raise NotRegularFileError("not a regular file", path)
        self.f = open(path, "rb")
        try:
            r = BoundedReader(self.f, path)
            if r.size == 0:
                raise FormatError("empty file", path)
            if r.read(0, min(4, r.size), "magic") in MACHO_MAGICS:
                self.f.close()
                self.macho = open_macho_image(path, uuid=uuid)
                self.endian = self.macho.endian
            else:
                self.elf = ElfFile(r, path)
                self.elf.read_sections()
                self.endian = self.elf.lay.endian
        except BaseException:
            self.f.close()
            raise
        self._views: dict[str, SectionView | None] = {}

    def view(self, name: str) -> SectionView | None:
        if name not in self._views:
            if self.macho is not None:
                self._views[name] = self.macho.dwarf_view(name)
            else:
                sec = self.elf.section(name)
                self._views[name] = None if sec is None or sec.type == SHT_NOBITS else self.elf.view(sec)
        return self._views[name]

    def close(self) -> None:
        if self.macho is not None:
            self.macho.close()
        try:
            self.f.close()
        except OSError:
            pass


class _Die:
    __slots__ = ("offset", "tag", "parent", "attrs", "end", "ranges", "names", "call", "outer", "chain", "answers",
                 "outers", "frames")

    def __init__(self, offset: int, tag: int, parent: int, attrs: dict):
        self.offset = offset
        self.tag = tag
        self.parent = parent  # offset of the nearest kept ancestor, -1 for the unit DIE
        self.attrs = attrs
        self.end = 0  # where its attributes end, within the unit's bytes
        self.ranges: tuple[tuple[int, int], ...] | None = None  # non-empty address ranges, once read
        self.names: tuple[str | None, str | None] | None = None  # (readable, linkage) name, once found
        # Once found, for the answers of every address in it: (call_file, call_line, call_column);
        # an outer frame's (DW_AT_name, start); the offsets of its frames out to its function.
        self.call: tuple[int | None, int, int] | None = None
        self.outer: tuple[str | None, int | None] | None = None
        self.chain: tuple[int, ...] | None = None
        # An innermost call's frames, shared by the answers that have them (see _frames):
        # (row, symbol) -> all frames; symbol -> the outer frames.
        self.answers: dict | None = None
        self.outers: dict | None = None
        self.frames: dict | None = None  # a function's frames, each once: (its fields) -> Frame


@dataclass
class _Ctx:
    """Where a unit's forms point: sections and bases."""

    info: SectionView
    endian: str
    unit: Unit
    str: SectionView | None = None
    str_offsets: SectionView | None = None
    str_offsets_base: int = 0
    line_str: SectionView | None = None
    addr: SectionView | None = None
    addr_base: int = 0
    ranges: SectionView | None = None  # .debug_ranges (DWARF 2-4)
    ranges_base: int = 0  # GNU_ranges_base (DWARF 4 split units)
    rnglists: SectionView | None = None
    rnglists_base: int = 0
    rnglists_offset_base: int = 0  # what DW_FORM_sec_offset ranges are relative to
    base_address: int = 0


@dataclass
class _CuEntry:
    """A unit of the binary's .debug_info, as the address map knows it."""

    unit: Unit
    parsed: "_ParsedUnit | None" = None
    direct: bool = True  # False: _direct cannot read this unit (or gave up): it is walked


@dataclass
class _ParsedUnit:
    """What is read of one unit: its name and directories, its line table's place and its DIEs."""

    name: str | None
    comp_dir: str | None
    stmt_list: int | None
    ctx: _Ctx  # of the unit holding the DIE tree (the split unit for a skeleton)
    line_ctx: _Ctx  # of the unit holding the line table (the skeleton for a split unit)
    # DIEs decoded so far (the unit DIE and functions with code at once, others when asked).
    dies: dict[int, _Die] = field(default_factory=dict)
    # Every DIE the symbolizer keeps, in tree order: offset, nearest kept ancestor (-1: none),
    # abbreviation code.  Their attributes stay undecoded in ``data`` until asked for.
    kept_offsets: list[int] = field(default_factory=list)
    kept_parents: list[int] = field(default_factory=list)
    kept_codes: list[int] = field(default_factory=list)
    first_call: dict[int, int] = field(default_factory=dict)  # DIE offset -> kept index of its first inlined call
    next_call: dict[int, int] = field(default_factory=dict)  # kept index of an inlined call -> the next's
    data: bytes = b""  # the unit's bytes, from ctx.unit.offset
    compiled: dict = field(default_factory=dict)
    # The unit's concrete functions: [start, end) -> DW_TAG_subprogram DIE offset (disjoint).
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)
    light: bool = False  # not walked: DIEs decoded where references point (see _light)
    # In a unit not walked (light), the functions found by _direct: their subtrees' kept DIEs are
    # in the kept lists (appended per function, not in offset order), found through kept_index.
    kept_index: dict[int, int] = field(default_factory=dict)  # DIE offset -> kept index
    functions: dict[int, tuple[int, int, int] | None] = field(default_factory=dict)  # start -> (DIE, lo, hi)
    spent: int = 0  # what _direct spent in this unit, in bytes walked (FIND_PER_WALK)
    subtrees: list[tuple[int, int]] = field(default_factory=list)  # the functions' [start, end) in data, sorted
    child_maps: dict[int, tuple[list[int], list[int], list[int]]] = field(default_factory=dict)
    abbrevs: dict = field(default_factory=dict)
    cost: int = 0  # estimated bytes (DIE_COST, MAP_ENTRY_COST)
    key: int = -1  # the unit's offset in the binary's .debug_info (its cache key)


def _disjoint(ranges: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Disjoint, sorted (start, end, unit offset) from overlapping ones: where units overlap, the
    first in .debug_info wins (LLVM's DWARFDebugAranges keeps the lowest unit offset).  Ranges
    that overlap nothing are taken as they are; only clusters of overlapping ones are swept
    (a binary's are few: the functions the linker dropped, all at address 0)."""
    out: list[tuple[int, int, int]] = []
    by_start = sorted(r for r in ranges if r[0] < r[1])
    for k, j in _clusters(by_start):
        cells = [by_start[k]] if j == k + 1 else _sweep(by_start[k:j])
        for lo, hi, off in cells:
            if out and out[-1][2] == off and out[-1][1] == lo:
                out[-1] = (out[-1][0], hi, off)  # touching ranges of one unit: one cell
            else:
                out.append((lo, hi, off))
    return out


def _clusters(by_start: list[tuple]) -> Iterator[tuple[int, int]]:
    """[first, past the last) indices of each run of ranges (sorted by start) that overlap one
    another: a range overlapping no other is a run of one."""
    k, n = 0, len(by_start)
    while k < n:
        j = k + 1
        reach = by_start[k][1]
        while j < n and by_start[j][0] < reach:
            if by_start[j][1] > reach:
                reach = by_start[j][1]
            j += 1
        yield k, j
        k = j


def _sweep(by_start: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """_disjoint's cells of a cluster of overlapping ranges, sorted by start."""
    points = sorted({p for lo, hi, _ in by_start for p in (lo, hi)})
    heap: list[tuple[int, int]] = []  # (unit offset, end)
    out: list[tuple[int, int, int]] = []
    k = 0
    for i in range(len(points) - 1):
        p, q = points[i], points[i + 1]
        while k < len(by_start) and by_start[k][0] <= p:
            lo, hi, off = by_start[k]
            heapq.heappush(heap, (off, hi))
            k += 1
        while heap and heap[0][1] <= p:
            heapq.heappop(heap)
        if not heap:
            continue
        off = heap[0][0]
        if out and out[-1][2] == off and out[-1][1] == p:
            out[-1] = (out[-1][0], q, off)
        else:
            out.append((p, q, off))
    return out


def _codes_ending_at(data: bytes, end: int, first: int) -> Iterator[tuple[int, int]]:
    """(start, value) of each ULEB128 that could end just before ``end`` in ``data`` (at or
    after ``first``): the shortest, then longer ones while the bytes before are continuation
    bytes (an encoding need not be the shortest)."""
    if end - 1 < first or end > len(data) or data[end - 1] >= 0x80:
        return
    value = data[end - 1]
    yield end - 1, value
    j = end - 2
    while j >= first and data[j] >= 0x80 and end - j <= 10:
        value = (value << 7) | (data[j] & 0x7F)
        yield j, value
        j -= 1


def _flatten(subroutines: list[tuple[int, int, int, int]]) -> tuple[list[int], list[int], list[int]]:
    """Disjoint [start, end) -> DIE from (start, end, tree order, DIE) ranges: where ranges
    overlap, the later DIE in the tree (a nested function or inlined call) wins, as in LLVM's
    DWARFUnit::updateAddressDieMap.  Returns (starts, ends, owners).  As in _disjoint, a range
    that overlaps nothing (most) is its own cell; clusters of overlapping ones are swept.
    (_clusters written out: a child map is made for each inlined call an address falls in.)"""
    starts: list[int] = []
    ends: list[int] = []
    owners: list[int] = []
    by_start = sorted(r for r in subroutines if r[0] < r[1])
    k, n = 0, len(by_start)
    while k < n:
        lo, hi, _order, die = by_start[k]
        j = k + 1
        if j < n and by_start[j][0] < hi:  # a cluster of overlapping ranges
            reach = hi
            while j < n and by_start[j][0] < reach:
                if by_start[j][1] > reach:
                    reach = by_start[j][1]
                j += 1
            cells = _sweep_latest(by_start[k:j])
        else:
            cells = ((lo, hi, die),)
        for lo, hi, die in cells:
            if owners and owners[-1] == die and ends[-1] == lo:
                ends[-1] = hi
            else:
                starts.append(lo)
                ends.append(hi)
                owners.append(die)
        k = j
    return starts, ends, owners


def _sweep_latest(by_start: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int]]:
    """_flatten's cells (start, end, DIE) of a cluster of overlapping ranges, sorted by start."""
    points = sorted({p for lo, hi, _, _ in by_start for p in (lo, hi)})
    heap: list[tuple[int, int, int]] = []  # (-order, end, DIE)
    out: list[tuple[int, int, int]] = []
    k = 0
    for i in range(len(points) - 1):
        p, q = points[i], points[i + 1]
        while k < len(by_start) and by_start[k][0] <= p:
            lo, hi, order, die = by_start[k]
            heapq.heappush(heap, (-order, hi, die))
            k += 1
        while heap and heap[0][1] <= p:
            heapq.heappop(heap)
        if not heap:
            continue
        die = heap[0][2]
        if out and out[-1][2] == die and out[-1][1] == p:
            out[-1] = (out[-1][0], q, die)
        else:
            out.append((p, q, die))
    return out


# Forms decoded without the general reader: (value kind, byte count); 0 bytes: the value is
# the abbreviation's (implicit_const) or 1 (flag_present).  Unit-dependent sizes (addr,
# offsets) are left to dwarf.read_value.
_FAST_FORMS = {
    dwarf.DW_FORM_data1: (dwarf.V_CONST, 1), dwarf.DW_FORM_data2: (dwarf.V_CONST, 2),
    dwarf.DW_FORM_data4: (dwarf.V_CONST, 4), dwarf.DW_FORM_data8: (dwarf.V_CONST, 8),
    dwarf.DW_FORM_flag: (dwarf.V_CONST, 1), dwarf.DW_FORM_flag_present: (dwarf.V_CONST, 0),
    dwarf.DW_FORM_implicit_const: (dwarf.V_CONST, 0),
    dwarf.DW_FORM_ref1: (dwarf.V_REF, 1), dwarf.DW_FORM_ref2: (dwarf.V_REF, 2),
    dwarf.DW_FORM_ref4: (dwarf.V_REF, 4), dwarf.DW_FORM_ref8: (dwarf.V_REF, 8),
    dwarf.DW_FORM_strx1: (dwarf.V_STRX, 1), dwarf.DW_FORM_strx2: (dwarf.V_STRX, 2),
    dwarf.DW_FORM_strx3: (dwarf.V_STRX, 3), dwarf.DW_FORM_strx4: (dwarf.V_STRX, 4),
    dwarf.DW_FORM_addrx1: (dwarf.V_ADDRX, 1), dwarf.DW_FORM_addrx2: (dwarf.V_ADDRX, 2),
    dwarf.DW_FORM_addrx3: (dwarf.V_ADDRX, 3), dwarf.DW_FORM_addrx4: (dwarf.V_ADDRX, 4),
}

_FAST_FORMS_BY_SHAPE: dict[tuple[int, int], dict[int, tuple[str, int]]] = {}


def _fast_forms(unit: Unit) -> dict[int, tuple[str, int]]:
    """_FAST_FORMS plus the fixed-size forms whose size is the unit's (string and section
    offsets, addresses): decoded in place, without a Cursor -- a function's name and low_pc
    are such forms."""
    key = (unit.offset_size, unit.address_size)
    forms = _FAST_FORMS_BY_SHAPE.get(key)
    if forms is None:
        forms = dict(_FAST_FORMS)
        if unit.offset_size > 0:
            forms.update({dwarf.DW_FORM_strp: (dwarf.V_STRP, unit.offset_size),
                          dwarf.DW_FORM_line_strp: (dwarf.V_LINE_STRP, unit.offset_size),
                          dwarf.DW_FORM_sec_offset: (dwarf.V_SEC_OFFSET, unit.offset_size)})
        if unit.address_size > 0:
            forms[dwarf.DW_FORM_addr] = (dwarf.V_ADDR, unit.address_size)
        _FAST_FORMS_BY_SHAPE[key] = forms
    return forms


# DW_AT_high_pc forms _range_fields reads in place: an address, or a length from DW_AT_low_pc.
_HIGH_PC_FORMS = {dwarf.DW_FORM_addr, dwarf.DW_FORM_data1, dwarf.DW_FORM_data2, dwarf.DW_FORM_data4,
                  dwarf.DW_FORM_data8}

# Steps of a compiled skip: how to step over one attribute value without decoding it.
SKIP_BYTES, SKIP_LEB, SKIP_CSTRING, SKIP_BLOCK_LEB, SKIP_BLOCK1, SKIP_BLOCK2, SKIP_BLOCK4 = range(7)
_LEB_FORMS = {dwarf.DW_FORM_udata, dwarf.DW_FORM_sdata, dwarf.DW_FORM_ref_udata, dwarf.DW_FORM_strx,
              dwarf.DW_FORM_addrx, dwarf.DW_FORM_loclistx, dwarf.DW_FORM_rnglistx, dwarf.DW_FORM_GNU_addr_index,
              dwarf.DW_FORM_GNU_str_index}
_BLOCK_FORMS = {dwarf.DW_FORM_block: SKIP_BLOCK_LEB, dwarf.DW_FORM_exprloc: SKIP_BLOCK_LEB,
                dwarf.DW_FORM_block1: SKIP_BLOCK1, dwarf.DW_FORM_block2: SKIP_BLOCK2,
                dwarf.DW_FORM_block4: SKIP_BLOCK4}


def _skip_steps(ab: dwarf.Abbrev, unit: Unit) -> list[tuple[int, int]] | None:
    """How to step over a DIE of this abbreviation: [(SKIP_*, byte count)], or None when a form
    (DW_FORM_indirect, an unknown one) needs the general reader."""
    steps: list[tuple[int, int]] = []
    for at, form, const in ab.attrs:
        size = dwarf.form_size(form, unit)
        if size is not None:
            if steps and steps[-1][0] == SKIP_BYTES:
                steps[-1] = (SKIP_BYTES, steps[-1][1] + size)
            elif size:
                steps.append((SKIP_BYTES, size))
        elif form in _LEB_FORMS:
            steps.append((SKIP_LEB, 0))
        elif form == dwarf.DW_FORM_string:
            steps.append((SKIP_CSTRING, 0))
        elif form in _BLOCK_FORMS:
            steps.append((_BLOCK_FORMS[form], 0))
        else:
            return None
    return steps


def _plan(ab: dwarf.Abbrev, unit: Unit, keep: bool, is_unit_die: bool) -> list[tuple]:
    """How to read a DIE of this abbreviation: (0, n) skip n bytes, (1, at, form, const) read and
    keep, (2, at, form, const) read and drop (variable-size forms)."""
    wanted = (_UNIT_KEPT if is_unit_die else _KEPT) if keep else ()
    plan: list[tuple] = []
    for at, form, const in ab.attrs:
        if at in wanted:
            plan.append((1, at, form, const))
            continue
        size = dwarf.form_size(form, unit)
        if size is None:
            plan.append((2, at, form, const))
        elif size:
            if plan and plan[-1][0] == 0:
                plan[-1] = (0, plan[-1][1] + size)
            else:
                plan.append((0, size))
    return plan


class DwarfSymbolizer:
    """Symbolize module-relative addresses (RVAs) of one ELF binary, with its .dwp for split DWARF;
    or of one Mach-O slice (``uuid`` picks it in a universal file): a dSYM's DWARF file, or a
    binary with its own DWARF.  A Mach-O RVA is relative to ``__TEXT``'s VM address."""

    def __init__(self, binary_path: str | os.PathLike[str], dwp_path: str | os.PathLike[str] | None = None,
                 dwo_roots: list[str | os.PathLike[str]] | None = None, uuid: str | None = None):
        """``dwo_roots``: directories besides the binary's own that unpacked ``.dwo`` files may
        be read from (the build directories); a skeleton's DW_AT_dwo_name naming a file
        anywhere else is not followed."""
        self.path = os.fspath(binary_path)
        self.uuid = uuid
        self.dwp_path = os.fspath(dwp_path) if dwp_path is not None else None
        self._bin: _File | None = None
        self._dwp: _File | None = None
        self._dwos: dict[str, _File | None] = {}  # resolved .dwo path -> open file (None: unreadable)
        self.notes: list[str] = []  # .dwo files named but not used, and why
        roots = [os.path.dirname(os.path.abspath(self.path))] + [os.fspath(r) for r in dwo_roots or []]
        self._dwo_roots = [os.path.realpath(r) for r in roots]
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    @_malformed
    def _open(self) -> None:
        self._bin = _File(self.path, self.uuid)
        if self._bin.macho is not None:
            macho = self._bin.macho
            self.build_id: str | None = None
            self.uuid = macho.uuid
            self.load_bias: int = macho.text_vmaddr
            self._sections = sorted((sec[5], sec[5] + sec[3], k + 1) for k, sec in enumerate(macho.slice.sections)
                                    if sec[0] != "__DWARF" and sec[3])
        else:
            elf = self._bin.elf
            bid = elf.build_id()
            self.build_id = bid.index() if bid is not None else None
            self.load_bias = elf.load_bias()
            self._sections = sorted((s.addr, s.addr + s.size, s.index) for s in elf.sections
                                    if s.flags & SHF_ALLOC and s.size)
        self.endian = self._bin.endian
        self._index: dict[int, dwarf.IndexRow] = {}
        self._index_version = 0
        if self.dwp_path is not None:
            self._dwp = _File(self.dwp_path)
            cu_index = self._dwp.view(".debug_cu_index")
            if cu_index is not None and cu_index.size:
                try:
                    index = dwarf.read_cu_index(cu_index, self._dwp.endian)
                except FormatError as err:
                    raise FormatError(err.message, self.dwp_path) from None
                self._index_version = index.version
                self._index = {row.signature: row for row in index.rows}
        self._units: dict[int, _CuEntry] = {}
        self._aranges_entries: list[tuple[int, int, int]] = []
        self._uncovered: list[_CuEntry] = []  # units not in .debug_aranges, not mapped yet
        self._unit_offsets: list[int] = []
        self._map_starts: list[int] = []
        self._map: list[tuple[int, int, int]] = []  # (start, end, unit offset) sorted
        # Parsed units ("unit", offset) and line tables ("lines", offset, address size), least
        # recently used first, with their estimated sizes: bounded by memory, not by count (a
        # fixed count made random addresses re-parse the same units over and over).
        self._cache: OrderedDict[tuple, object] = OrderedDict()
        self._costs: dict[tuple, int] = {}
        self._cache_cost = 0
        self._cache_cap = limit("DWARF_CACHE")
        self._strings: dict[tuple[SectionView, int], str] = {}  # (a string section's view, offset) -> string
        self._froze = False  # whether an answer froze (close() then unfreezes)
        self._growth = 0  # times the cache grew (an answer that made it grow parsed something)
        self._evicted_cost = 0  # estimated bytes let go since the collector last looked
        self._abbrev_tables: dict[tuple[str, int], dict[int, dwarf.Abbrev]] = {}
        self._abbrev_heads: dict[tuple[str, int], dict[int, dwarf.Abbrev]] = {}  # tables read up to a code
        self._compiled_tables: dict[tuple, dict[int, tuple]] = {}
        self._shapes: dict[int, tuple[dict, dict]] = {}  # id(compiled table) -> _read_tree's fast paths
        self._plans: dict[int, dict[int, list]] = {}  # id(compiled table) -> {code: decoding plan}
        self._range_tables: dict[int, dict] = {}  # id(compiled table) -> _range_fields
        self._direct_plans: dict[tuple, dict[int, set[int]] | None] = {}  # abbreviation table -> _direct_plan
        # Whether functions are looked for without walking their units (_direct); the tests
        # compare both ways.  Addresses answered so, and units walked (the tests check which
        # path was taken).
        self.direct = True
        self.direct_found = 0
        self.units_walked = 0
        self._symbols = None
        self._build_unit_map()

    def close(self) -> None:
        for f in (self._bin, self._dwp, *getattr(self, "_dwos", {}).values()):
            if f is not None:
                f.close()
        # What answers froze goes back to the collector (see _after_answer): a long-lived caller
        # (dumps) keeps no cycle of its own frozen past the reader's life.
        if getattr(self, "_froze", False):
            gc.unfreeze()

    def __enter__(self) -> "DwarfSymbolizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- address -> unit ---------------------------------------------------------------
    def _build_unit_map(self) -> None:
        self._budget = MAX_RANGE_ENTRIES
        info = self._bin.view(".debug_info")
        if info is None:
            return
        for unit in dwarf.iter_units(info, self.endian):
            if unit.unit_type in (dwarf.DW_UT_compile, dwarf.DW_UT_partial, dwarf.DW_UT_skeleton):
                self._units[unit.offset] = _CuEntry(unit)
        self._unit_offsets = sorted(self._units)
        covered = self._read_aranges()
        self._aranges_entries = []
        for off, ranges in covered.items():
            if off in self._units:
                self._aranges_entries += [(lo, hi, off) for lo, hi in ranges if lo < hi]
        # Units .debug_aranges leaves out are mapped by their unit DIE's ranges, as LLVM does --
        # but only when an address is not in .debug_aranges' map: reading every such unit DIE
        # is most of what opening costs, and they are typically units without code.
        self._uncovered = [entry for off, entry in self._units.items() if off not in covered]
        self._map = _disjoint(self._aranges_entries)
        self._map_starts = [e[0] for e in self._map]

    def _map_uncovered(self) -> None:
        entries = list(self._aranges_entries)
        for entry in self._uncovered:
            self._budget = MAX_RANGE_ENTRIES
            entries += [(lo, hi, entry.unit.offset) for lo, hi in self._unit_ranges(entry) if lo < hi]
        self._uncovered = []
        self._map = _disjoint(entries)
        self._map_starts = [e[0] for e in self._map]

    def _read_aranges(self) -> dict[int, list[tuple[int, int]]]:
        view = self._bin.view(".debug_aranges")
        out: dict[int, list[tuple[int, int]]] = {}
        if view is None:
            return out
        off = 0
        for _ in range(dwarf.MAX_UNITS):
            if off + 4 > view.size:
                break
            c = Cursor(view, off, None, self.endian)
            length, offset_size = dwarf.read_initial_length(c, "aranges set")
            if length == 0:
                raise FormatError(f".debug_aranges: empty set at {off:#x}", self.path)
            end = dwarf.bound_to_length(c, length, "aranges set", off)
            version, cu_off, addr_size, seg_size = c.unpack(ARANGES_HEADER[(self.endian, offset_size)],
                                                            "aranges header")
            if version != 2 or addr_size not in (1, 2, 4, 8) or seg_size:
                off = end  # LLVM skips sets it cannot read
                continue
            tuple_size = 2 * addr_size
            first = off + ((c.pos - off + tuple_size - 1) // tuple_size) * tuple_size
            ranges = out.setdefault(cu_off, [])
            count = max(end - first, 0) // tuple_size
            # The set's (address, length) pairs in one read and one iter_unpack.
            pairs = view.read(first, count * tuple_size, "aranges tuples") if count else b""
            for lo, size in ARANGES_TUPLE[(self.endian, addr_size)].iter_unpack(pairs):
                if lo == 0 and size == 0:
                    break
                if len(ranges) < MAX_RANGES:
                    ranges.append((lo, lo + size))
            off = end
        return out

    def _unit_ranges(self, entry: _CuEntry) -> list[tuple[int, int]]:
        try:
            die, ctx = self._unit_die(entry.unit)
        except FormatError:
            return []  # an unreadable unit covers nothing; others still symbolize
        return self._die_ranges(die, ctx)

    def _unit_for(self, addr: int) -> _CuEntry | None:
        for _ in range(2):
            k = bisect.bisect_right(self._map_starts, addr) - 1
            if k >= 0:
                lo, hi, off = self._map[k]
                if lo <= addr < hi:
                    return self._units[off]
            if not self._uncovered:
                return None
            self._map_uncovered()
        return None

    # -- DIEs and attribute values -----------------------------------------------------
    def _binary_ctx(self, unit: Unit) -> _Ctx:
        b = self._bin
        return _Ctx(b.view(".debug_info"), self.endian, unit, str=b.view(".debug_str"),
                    str_offsets=b.view(".debug_str_offsets"), line_str=b.view(".debug_line_str"),
                    addr=b.view(".debug_addr"), ranges=b.view(".debug_ranges"), rnglists=b.view(".debug_rnglists"))

    def _unit_die(self, unit: Unit) -> tuple[_Die, _Ctx]:
        """The unit DIE of a binary's unit, and its context with the bases it declares."""
        ctx = self._binary_ctx(unit)
        c = Cursor(ctx.info, unit.die_offset, unit.end, self.endian)
        code = c.uleb("abbreviation code")
        abbrevs = self._abbrevs(self._bin.view(".debug_abbrev"), unit.abbrev_offset, self.path, code)
        if code == 0 or code not in abbrevs:
            raise FormatError(f".debug_info: unit at {unit.offset:#x} has no unit DIE", self.path)
        ab = abbrevs[code]
        attrs = {}
        for at, form, const in ab.attrs:
            value = dwarf.read_value(c, form, const, unit)
            if at in _UNIT_KEPT:
                attrs[at] = value
        die = _Die(unit.die_offset, ab.tag, -1, attrs)
        if DW_AT_str_offsets_base in attrs:
            ctx.str_offsets_base = attrs[DW_AT_str_offsets_base][1]
        elif unit.version >= 5 and ctx.str_offsets is not None:
            ctx.str_offsets_base = STR_OFFSETS_HEADER_SIZE[unit.offset_size]
        for at in (DW_AT_addr_base, DW_AT_GNU_addr_base):
            if at in attrs:
                ctx.addr_base = attrs[at][1]
        if DW_AT_rnglists_base in attrs:
            ctx.rnglists_base = attrs[DW_AT_rnglists_base][1]
        if DW_AT_GNU_ranges_base in attrs:
            ctx.ranges_base = attrs[DW_AT_GNU_ranges_base][1]
        low = attrs.get(DW_AT_low_pc)
        if low is not None:
            ctx.base_address = self._address(ctx, low) or 0
        return die, ctx

    def _abbrevs(self, view: SectionView | None, offset: int, path: str,
                 until: int | None = None) -> dict[int, dwarf.Abbrev]:
        """The abbreviation table at ``offset``, decoded once per run (units share tables); with
        ``until``, at least its declarations up to that code (a unit DIE's: mapping the units
        .debug_aranges leaves out reads hundreds of unit DIEs and nothing else of their tables)."""
        if view is None:
            raise FormatError("no abbreviation section", path)
        key = (path, offset)
        table = self._abbrev_tables.get(key)
        if table is None:
            if until is not None:
                head = self._abbrev_heads.get(key)
                if head is None or until not in head:
                    head = self._abbrev_heads[key] = dwarf.read_abbrev_table(view, offset, self.endian, until)
                return head
            table = self._abbrev_tables[key] = dwarf.read_abbrev_table(view, offset, self.endian)
        return table

    def _string(self, ctx: _Ctx, value: tuple[str, object]) -> str | None:
        kind, v = value
        if kind == dwarf.V_STR:
            return v[:MAX_NAME].decode("utf-8", "replace")
        if kind == dwarf.V_STRP:
            view = ctx.str
        elif kind == dwarf.V_LINE_STRP:
            view = ctx.line_str
        elif kind == dwarf.V_STRX:
            if ctx.str_offsets is None:
                raise FormatError("string index without a string offsets section", ctx.info.path)
            size = ctx.unit.offset_size
            v = Cursor(ctx.str_offsets, ctx.str_offsets_base + v * size, None, ctx.endian).uint(size, "string offset")
            view = ctx.str
        else:
            return None
        if view is None:
            raise FormatError("string attribute without a string section", ctx.info.path)
        key = (view, v)  # (a view is a key by identity)
        found = self._strings.get(key)
        if found is not None:  # the inlined calls of one function all name it by one string
            return found
        if 0 <= v < view.size:  # most names end within a small window: one read, no Cursor
            window = view.read(v, min(STRING_WINDOW, view.size - v), "string")
            nul = window.find(b"\0")
            if nul >= 0:
                found = window[:min(nul, MAX_NAME)].decode("utf-8", "replace")
        if found is None:
            found = Cursor(view, v, None, ctx.endian).cstring("string")[:MAX_NAME].decode("utf-8", "replace")
        if len(self._strings) >= MAX_STRINGS:
            self._strings.clear()
        self._strings[key] = found
        return found

    def _address(self, ctx: _Ctx, value: tuple[str, object]) -> int | None:
        kind, v = value
        if kind == dwarf.V_ADDR:
            return v
        if kind == dwarf.V_ADDRX:
            return self._addrx(ctx, v)
        return None

    def _addrx(self, ctx: _Ctx, index: int) -> int:
        if ctx.addr is None:
            raise FormatError("address index without .debug_addr", self.path)
        size = ctx.unit.address_size
        return Cursor(ctx.addr, ctx.addr_base + index * size, None, ctx.endian).uint(size, "address")

    def _die_ranges(self, die: _Die, ctx: _Ctx) -> list[tuple[int, int]]:
        attrs = die.attrs
        if DW_AT_ranges in attrs:
            kind, v = attrs[DW_AT_ranges]
            if kind == dwarf.V_RNGLISTX:
                return self._rnglistx(ctx, v)
            if kind in (dwarf.V_SEC_OFFSET, dwarf.V_CONST):
                if ctx.unit.version >= 5:
                    return self._rnglist(ctx, ctx.rnglists_offset_base + v)
                return self._ranges(ctx, ctx.ranges_base + v)
            return []
        low = attrs.get(DW_AT_low_pc)
        high = attrs.get(DW_AT_high_pc)
        if low is None or high is None:
            return []
        lo = self._address(ctx, low)
        if lo is None:
            return []
        if high[0] == dwarf.V_CONST:
            return [(lo, lo + high[1])]
        hi = self._address(ctx, high)
        return [] if hi is None else [(lo, hi)]

    def _ranges(self, ctx: _Ctx, offset: int) -> list[tuple[int, int]]:
        """A .debug_ranges list (DWARF 2-4)."""
        if ctx.ranges is None:
            raise FormatError("DW_AT_ranges without .debug_ranges", self.path)
        size = ctx.unit.address_size
        top = (1 << (8 * size)) - 1
        view = ctx.ranges
        pair = ADDRESS_PAIR[(ctx.endian, size)]
        step = pair.size
        # Entries unpacked from a window of the section read at a time (a list is a few entries;
        # a unit's inlined calls read thousands of lists).
        window, window_start = b"", offset
        pos = offset
        base = ctx.base_address
        out = []
        for _ in range(MAX_RANGES):
            self._spend(ctx)
            rel = pos - window_start
            if rel + step > len(window):
                if pos + step > view.size:
                    raise FormatError(f"{view.name}: range list entry at {pos:#x} runs past its end ({view.size:#x})",
                                      view.path)
                window, window_start, rel = view.read(pos, min(RANGES_WINDOW, view.size - pos), "range list"), pos, 0
            lo, hi = pair.unpack_from(window, rel)
            pos += step
            if lo == 0 and hi == 0:
                return out
            if lo == top:
                base = hi
                continue
            out.append((base + lo, base + hi))
        raise FormatError(f"{ctx.ranges.name}: range list at {offset:#x} does not end", self.path)

    def _spend(self, ctx: _Ctx) -> None:
        self._budget -= 1
        if self._budget < 0:
            raise FormatError(f"more than {MAX_RANGE_ENTRIES} range list entries in one unit", ctx.info.path)

    def _rnglistx(self, ctx: _Ctx, index: int) -> list[tuple[int, int]]:
        if ctx.rnglists is None:
            raise FormatError("range list index without .debug_rnglists", self.path)
        size = ctx.unit.offset_size
        rel = Cursor(ctx.rnglists, ctx.rnglists_base + index * size, None, ctx.endian).uint(size, "range offset")
        return self._rnglist(ctx, ctx.rnglists_base + rel)

    def _rnglist(self, ctx: _Ctx, offset: int) -> list[tuple[int, int]]:
        """A .debug_rnglists list (DWARF 5)."""
        if ctx.rnglists is None:
            raise FormatError("DW_AT_ranges without .debug_rnglists", self.path)
        size = ctx.unit.address_size
        c = Cursor(ctx.rnglists, offset, None, ctx.endian)
        base = ctx.base_address
        out = []
        for _ in range(MAX_RANGES):
            self._spend(ctx)
            kind = c.u8("range list entry")
            if kind == DW_RLE_end_of_list:
                return out
            if kind == DW_RLE_base_addressx:
                base = self._addrx(ctx, c.uleb("address index"))
            elif kind == DW_RLE_startx_endx:
                lo = self._addrx(ctx, c.uleb("address index"))
                out.append((lo, self._addrx(ctx, c.uleb("address index"))))
            elif kind == DW_RLE_startx_length:
                lo = self._addrx(ctx, c.uleb("address index"))
                out.append((lo, lo + c.uleb("length")))
            elif kind == DW_RLE_offset_pair:
                lo = c.uleb("offset")
                out.append((base + lo, base + c.uleb("offset")))
            elif kind == DW_RLE_base_address:
                base = c.uint(size, "address")
            elif kind == DW_RLE_start_end:
                lo = c.uint(size, "address")
                out.append((lo, c.uint(size, "address")))
            elif kind == DW_RLE_start_length:
                lo = c.uint(size, "address")
                out.append((lo, lo + c.uleb("length")))
            else:
                raise FormatError(f"{ctx.rnglists.name}: unknown range list entry {kind:#x}", self.path)
        raise FormatError(f"{ctx.rnglists.name}: range list at {offset:#x} does not end", self.path)

    # -- one unit, parsed --------------------------------------------------------------
    def _parse(self, entry: _CuEntry) -> _ParsedUnit:
        off = entry.unit.offset
        found = self._cache_get(("unit", off))
        if found is not None:
            return found
        unit = entry.unit
        self.units_walked += 1
        self._budget = MAX_RANGE_ENTRIES
        die, ctx = self._unit_die(unit)
        attrs = die.attrs
        dwo_id = unit.dwo_id if unit.unit_type == dwarf.DW_UT_skeleton else None
        if dwo_id is None and unit.version <= 4 and DW_AT_GNU_dwo_id in attrs:
            dwo_id = attrs[DW_AT_GNU_dwo_id][1]
        comp_dir = self._string(ctx, attrs[DW_AT_comp_dir]) if DW_AT_comp_dir in attrs else None
        name = self._string(ctx, attrs[DW_AT_name]) if DW_AT_name in attrs else None
        stmt = attrs.get(DW_AT_stmt_list)
        stmt_list = stmt[1] if stmt is not None and stmt[0] in (dwarf.V_SEC_OFFSET, dwarf.V_CONST) else None
        parsed = _ParsedUnit(name, comp_dir, stmt_list, ctx, ctx)
        if dwo_id is not None:
            found = self._split_ctx(dwo_id, ctx)
            if found is None:
                found = self._dwo_ctx(dwo_id, ctx, attrs, comp_dir)
            if found is not None:
                split, abbrevs, where = found
                parsed.ctx = split
                self._read_tree(parsed, split, abbrevs, where)
                root = self._die(parsed, split.unit.die_offset)
                if root is not None:
                    if parsed.name is None and DW_AT_name in root.attrs:
                        parsed.name = self._string(split, root.attrs[DW_AT_name])
                    if parsed.comp_dir is None and DW_AT_comp_dir in root.attrs:
                        parsed.comp_dir = self._string(split, root.attrs[DW_AT_comp_dir])
        else:
            ctx.rnglists_offset_base = 0
            self._read_tree(parsed, ctx, self._abbrevs(self._bin.view(".debug_abbrev"), unit.abbrev_offset,
                                                       self.path), self.path)
        parsed.key = off
        self._cache_put(("unit", off), parsed, parsed.cost)
        return parsed

    # -- one function, found without walking its unit ----------------------------------------
    def _unit_at(self, entry: _CuEntry, addr: int) -> tuple[_ParsedUnit, tuple[int, int, int] | None]:
        """The unit to answer ``addr`` from: the function at ``addr`` found in it directly
        (_direct: its DIE offset, start and end; a function found so before the unit was walked
        is still answered from there, its chains and names already made), or the walked unit."""
        off = entry.unit.offset
        parsed = self._cache_get(("unit", off))
        if self.direct:
            found = self._direct(entry, addr, parsed is None and entry.direct)
            if found is not None:
                self.direct_found += 1
                return found
        return parsed or self._parse(entry), None

    def _direct(self, entry: _CuEntry, addr: int, search: bool) -> tuple[_ParsedUnit, tuple[int, int, int]] | None:
        """The function holding ``addr`` without walking its unit: the ELF symbol holding the
        address gives the function's start and size; the unit's bytes are searched for that
        start (bytes.find) where a DW_TAG_subprogram's DW_AT_low_pc (DW_FORM_addr, at a fixed
        offset in every such abbreviation) would hold it, and each such place is checked to be
        the function's DIE (_function_at); then only that DIE's subtree is walked.  None when
        anything is not proved: the caller walks the unit, as before (no symbol, an address
        past the symbol's size, a unit this cannot read: split, DW_AT_ranges or DW_FORM_addrx
        in a function's abbreviation; a place that looks like the DIE and fails a check)."""
        table = self._symbols
        if table is None or self._bin.elf is None:
            return None
        k = bisect.bisect_right(table.values, addr) - 1
        if k < 0:
            return None
        start, size = table.values[k], table.size(k)
        if size == 0 or addr >= start + size:
            return None
        light = self._cache_get(("light", entry.unit.offset))
        if light is None:
            if not search:
                return None
            light = self._light(entry)
        if start in light.functions:
            found = light.functions[start]
            return (light, found) if found is not None else None
        if not search:  # the unit is walked (or _direct gave it up): no more searches
            return None
        where = self._direct_plan(light)
        # Many functions of one unit asked: the unit is walked once instead.
        if where is None or light.spent >= DIRECT_SHARE * len(light.data):
            entry.direct = False
            return None
        light.spent += len(light.data) // FIND_PER_WALK
        names = set()
        j = k
        while j >= 0 and table.values[j] == start and len(names) < MAX_ALIASES:
            names.add(table.name(j))
            j -= 1
        try:
            found = self._function_at(light, where, start, size, names)
        except (FormatError, *MALFORMED):  # not proved: the walk reads the unit (and says what is wrong)
            found = None
        light.functions[start] = found
        return (light, found) if found is not None else None

    def _direct_plan(self, light: _ParsedUnit) -> dict[int, set[int]] | None:
        """Where a function's DW_AT_low_pc lies in its DIE, per abbreviation of the unit's table:
        {offset after the abbreviation code: codes}; None when the unit cannot be read this way
        (not a plain compile unit; a function's low_pc not a DW_FORM_addr at a fixed offset; a
        function with DW_AT_ranges, which a search for its start would not find)."""
        unit = light.ctx.unit
        root = self._die(light, unit.die_offset)
        if unit.unit_type != dwarf.DW_UT_compile or root is None or root.tag != DW_TAG_compile_unit \
                or DW_AT_GNU_dwo_id in root.attrs or unit.address_size not in (4, 8):
            return None
        key = (id(light.abbrevs), unit.offset_size, unit.address_size, unit.version == 2)
        if key in self._direct_plans:
            return self._direct_plans[key]
        where: dict[int, set[int]] | None = {}
        for code, ab in light.abbrevs.items():
            if ab.tag != DW_TAG_subprogram:
                continue
            pos: int | None = 0
            for at, form, _const in ab.attrs:
                if at == DW_AT_ranges or (at == DW_AT_low_pc and (form != dwarf.DW_FORM_addr or pos is None)):
                    where = None
                    break
                if at == DW_AT_low_pc:
                    where.setdefault(pos, set()).add(code)
                size = dwarf.form_size(form, unit)
                pos = None if pos is None or size is None else pos + size
            if where is None:
                break
        self._direct_plans[key] = where
        return where

    def _function_at(self, light: _ParsedUnit, where: dict[int, set[int]], start: int, size: int,
                     names: set[str]) -> tuple[int, int, int] | None:
        """(DIE offset, start, end) of the function at ``start``, its subtree walked into the
        unit's kept lists; None when not proved.  Every place of the unit's DIE bytes holding
        the start where a function's low_pc could be (the bytes before it an abbreviation code
        whose low_pc lies at that distance) must be that function's DIE: its abbreviation a
        DW_TAG_subprogram's, its range exactly the symbol's [start, start + size), its linkage
        name (or, without one, its name) a symbol's at that start, and its subtree ending
        within the unit with no function with code inside (a nested one would own part of the
        range).  Several (identical code folded into one place): the last in the unit, as
        _flatten picks it.  No place at all: not found (the unit is walked)."""
        unit = light.ctx.unit
        base = unit.offset
        data = light.data
        first = unit.die_offset - base + 1  # past the unit DIE's code: not a function (checked)
        needle = start.to_bytes(unit.address_size, "little" if light.ctx.endian == "<" else "big")
        places: list[tuple[int, int]] = []  # (DIE start in data, abbreviation code)
        subtrees = light.subtrees
        p = data.find(needle, first)
        while p >= 0:
            for gap, codes in where.items():
                for q, code in _codes_ending_at(data, p - gap, first):
                    if code not in codes:
                        continue
                    # Inside a subtree walked before (the inlined calls of a function at this
                    # start, most hits) no function with code starts but at its root.
                    k = bisect.bisect_right(subtrees, (q, q)) - 1
                    if k >= 0 and subtrees[k][0] < q < subtrees[k][1]:
                        continue
                    places.append((q, code))
            if len(places) > MAX_ALIASES:
                return None
            p = data.find(needle, p + 1)
        if not places:
            return None
        found = None
        for q, code in places:
            owner = self._function_die(light, q, code, start, size, names)
            if owner is None:
                return None
            found = owner if found is None or owner > found else found
        return found, start, start + size

    def _function_die(self, light: _ParsedUnit, q: int, code: int, start: int, size: int,
                      names: set[str]) -> int | None:
        """The DIE offset if the bytes at ``q`` are the function's DIE (see _function_at), its
        subtree's kept DIEs added to the unit's lists; else None, the lists as they were."""
        ctx = light.ctx
        offset = ctx.unit.offset + q
        offsets, parents, codes = light.kept_offsets, light.kept_parents, light.kept_codes
        if offset in light.kept_index:
            return offset  # the same DIE, found by an alias before
        pos = q
        while light.data[pos] >= 0x80:
            pos += 1
        known = offset in light.dies
        die = self._decode(light, ctx, offset, pos + 1, code, -1, False)
        if die.tag != DW_TAG_subprogram or self._ranges_of(die, ctx) != ((start, start + size),) \
                or not self._named(light, die, names):
            if not known:
                del light.dies[offset]
            return None
        n = len(offsets)
        offsets.append(offset)
        parents.append(-1)
        codes.append(code)
        stack = [offset] if light.compiled[code][1] else []
        # The calls' chains apart until the subtree is proved: a walk from a wrong place could
        # run into a function found before and must not touch its chains.
        calls: tuple[dict[int, int], dict[int, int]] = ({}, {})
        try:
            end = self._walk(light, ctx, die.end, stack, None, self.path, calls)
        except (FormatError, *MALFORMED):
            end = -1
        if end < 0 or end > len(light.data) or stack:
            del offsets[n:], parents[n:], codes[n:]
            if not known:
                del light.dies[offset]
            return None
        light.first_call.update(calls[0])
        light.next_call.update(calls[1])
        k = bisect.bisect_right(light.subtrees, (q, q))
        light.subtrees.insert(k, (q, end))
        light.spent += end - q
        for k in range(n, len(offsets)):
            light.kept_index[offsets[k]] = k
            decoded = light.dies.get(offsets[k])
            if decoded is not None:  # decoded before as a reference's target: now with its parent
                decoded.parent = parents[k]
        self._cache_grow(("light", light.key), KEPT_COST * (len(offsets) - n))
        return offset

    def _named(self, light: _ParsedUnit, die: _Die, names: set[str]) -> bool:
        """Whether the function's linkage name (or, without one, its name) is one of the
        symbols' ``names`` (or a name LLVM suffixed: ``name.llvm.N``, ``name.cold``)."""
        found = self._find(light, die, (DW_AT_MIPS_linkage_name, DW_AT_linkage_name)) \
            or self._find(light, die, (DW_AT_name,))
        name = self._string(found[0].ctx, found[2]) if found is not None else None
        return bool(name) and any(n == name or n.startswith(name + ".") for n in names)

    def _split_ctx(self, dwo_id: int, skeleton: _Ctx) -> tuple[_Ctx, dict, str] | None:
        """(context, abbreviations, path) of the .dwp unit with this DWO ID, or None when there is none."""
        row = self._index.get(dwo_id)
        if row is None or self._dwp is None:
            return None
        d = self._dwp
        info = d.view(".debug_info.dwo")
        if info is None or DW_SECT_INFO not in row.offsets:
            raise FormatError(f"no .debug_info.dwo for unit {dwo_id:#018x}", self.dwp_path)
        off, size = row.offsets[DW_SECT_INFO]
        unit = dwarf.read_unit_header(info, off, d.endian)
        if unit.end > off + size:
            raise FormatError(f".debug_info.dwo: unit of {dwo_id:#018x} is longer than its contribution",
                              self.dwp_path)
        ctx = _Ctx(info, d.endian, unit, str=d.view(".debug_str.dwo"), str_offsets=d.view(".debug_str_offsets.dwo"),
                   line_str=skeleton.line_str, addr=skeleton.addr, addr_base=skeleton.addr_base,
                   ranges=skeleton.ranges, ranges_base=skeleton.ranges_base, base_address=skeleton.base_address)
        ctx.str_offsets_base = row.offsets.get(DW_SECT_STR_OFFSETS, (0, 0))[0]
        if unit.version >= 5:
            ctx.str_offsets_base += STR_OFFSETS_HEADER_SIZE[unit.offset_size]
            if self._index_version == 5 and DW_SECT_V5_RNGLISTS in row.offsets:
                ctx.rnglists = d.view(".debug_rnglists.dwo")
                start = row.offsets[DW_SECT_V5_RNGLISTS][0]
                ctx.rnglists_offset_base = start
                ctx.rnglists_base = start + RNGLISTS_HEADER_SIZE[unit.offset_size]
        return ctx, self._dwp_abbrevs(dwo_id, unit), self.dwp_path

    # -- unpacked split DWARF (.dwo files) -----------------------------------------------------
    def _dwo_candidates(self, name: str, comp_dir: str | None) -> list[str]:
        """Where the skeleton's DW_AT_dwo_name may be: as named (under DW_AT_comp_dir when
        relative), then beside the binary (a build tree copied elsewhere)."""
        out = []
        if os.path.isabs(name):
            out.append(name)
        elif comp_dir:
            out.append(os.path.join(comp_dir, name))
        out.append(os.path.join(os.path.dirname(os.path.abspath(self.path)), os.path.basename(name)))
        return out

    def _allowed(self, real: str) -> bool:
        """The allow-list: a .dwo is read only from the binary's directory tree or a given root,
        never from /proc, /sys or /dev (a hostile skeleton names any path it likes)."""
        if any(real == top or real.startswith(top + "/") for top in ("/proc", "/sys", "/dev")):
            return False
        return any(real == root or real.startswith(root.rstrip("/") + "/") for root in self._dwo_roots)

    def _open_dwo(self, path: str) -> _File | None:
        real = os.path.realpath(path)
        if real in self._dwos:
            return self._dwos[real]
        f = None
        if not self._allowed(real):
            self.notes.append(f"{path}: outside the binary's directory and the build directories: not read")
        elif os.path.isfile(real):
            try:
                f = _File(real)
            except (FormatError, OSError) as err:
                self.notes.append(f"{path}: {getattr(err, 'message', None) or err}: not read")
        self._dwos[real] = f
        return f

    def _dwo_ctx(self, dwo_id: int, skeleton: _Ctx, attrs: dict, comp_dir: str | None) \
            -> tuple[_Ctx, dict, str] | None:
        """(context, abbreviations, path) of the split unit with this DWO ID in the unpacked .dwo
        file the skeleton names, or None (no name, no such file, not allowed, another DWO ID)."""
        value = attrs.get(DW_AT_dwo_name) or attrs.get(DW_AT_GNU_dwo_name)
        name = self._string(skeleton, value) if value is not None else None
        if not name:
            return None
        for candidate in self._dwo_candidates(name, comp_dir):
            f = self._open_dwo(candidate)
            if f is None:
                continue
            try:
                found = self._dwo_unit(f, dwo_id, skeleton)
            except FormatError as err:
                self.notes.append(f"{f.path}: {err.message}: not read")
                continue
            if found is not None:
                return found
            self.notes.append(f"{f.path}: holds no unit with DWO ID {dwo_id:#018x}: not used")
        return None

    def _dwo_unit(self, f: _File, dwo_id: int, skeleton: _Ctx) -> tuple[_Ctx, dict, str] | None:
        info = f.view(".debug_info.dwo")
        abbrev = f.view(".debug_abbrev.dwo")
        if info is None or abbrev is None:
            return None
        for unit in dwarf.iter_units(info, f.endian):
            if dwarf.unit_dwo_id(info, abbrev, unit, f.endian) != dwo_id:
                continue
            ctx = _Ctx(info, f.endian, unit, str=f.view(".debug_str.dwo"), str_offsets=f.view(".debug_str_offsets.dwo"),
                       line_str=skeleton.line_str, addr=skeleton.addr, addr_base=skeleton.addr_base,
                       ranges=skeleton.ranges, ranges_base=skeleton.ranges_base, base_address=skeleton.base_address)
            if unit.version >= 5:
                ctx.str_offsets_base = STR_OFFSETS_HEADER_SIZE[unit.offset_size]
                ctx.rnglists = f.view(".debug_rnglists.dwo")
                ctx.rnglists_base = RNGLISTS_HEADER_SIZE[unit.offset_size]
            return ctx, self._abbrevs(abbrev, unit.abbrev_offset, f.path), f.path
        return None

    def _dwp_abbrevs(self, dwo_id: int, unit: Unit) -> dict[int, dwarf.Abbrev]:
        row = self._index[dwo_id]
        base = row.offsets.get(DW_SECT_ABBREV, (0, 0))[0]
        return self._abbrevs(self._dwp.view(".debug_abbrev.dwo"), base + unit.abbrev_offset, self.dwp_path)

    def _compiled(self, abbrevs: dict[int, dwarf.Abbrev], unit: Unit) -> dict[int, tuple]:
        """Per abbreviation code: (tag, has children, fixed size or -1, skip steps or None, kept,
        plan or None).  Every DIE is stepped over by its fixed size or skip steps; ``kept`` DIEs
        (code and the scopes naming it) are listed; those with a ``plan`` (functions with code:
        their ranges make the unit's address map) are decoded at once.  Compiled once per
        abbreviation table and unit shape."""
        key = (id(abbrevs), unit.offset_size, unit.address_size, unit.version == 2)
        compiled = self._compiled_tables.get(key)
        if compiled is None:
            compiled = {}
            for code, ab in abbrevs.items():
                size = ab.fixed_size(unit)
                steps = None if size is not None else _skip_steps(ab, unit)
                has_code = ab.tag == DW_TAG_subprogram and any(at in (DW_AT_low_pc, DW_AT_ranges)
                                                               for at, _f, _c in ab.attrs)
                plan = _plan(ab, unit, True, False) if has_code else None
                compiled[code] = (ab.tag, ab.has_children, -1 if size is None else size, steps,
                                  ab.tag in _KEPT_TAGS, plan)
            self._compiled_tables[key] = compiled
        return compiled

    def _read_tree(self, parsed: _ParsedUnit, ctx: _Ctx, abbrevs: dict[int, dwarf.Abbrev], path: str) -> None:
        """One pass over the unit's DIEs, stepping over each by its compiled skip.  Only the DIEs
        naming and nesting code are listed (no types, variables, parameters), each with its
        nearest listed ancestor, and each inlined call under its own; of those only the unit
        DIE and the functions with code are decoded now."""
        unit = ctx.unit
        base = unit.offset
        data = ctx.info.read(base, unit.end - base, "unit")
        compiled = self._compiled(abbrevs, unit)
        parsed.data, parsed.compiled = data, compiled
        parsed.abbrevs = abbrevs
        offsets, parents, codes = parsed.kept_offsets, parsed.kept_parents, parsed.kept_codes
        functions: list[tuple[int, int, int, int]] = []  # (start, end, tree order, DIE offset)
        pos, end = unit.die_offset - base, len(data)
        if pos >= end:
            raise FormatError(f"{ctx.info.name}: unit at {base:#x} has no unit DIE", path)
        code, pos = dwarf.leb128_at(data, pos)
        if code == 0 or code not in compiled:
            raise FormatError(f"{ctx.info.name}: unit at {base:#x} has no unit DIE", path)
        die = self._decode(parsed, ctx, unit.die_offset, pos, code, -1, True)
        pos = die.end
        offsets.append(unit.die_offset)
        parents.append(-1)
        codes.append(code)
        if compiled[code][0] == DW_TAG_subprogram:
            for lo, hi in self._ranges_of(die, ctx):
                functions.append((lo, hi, 0, unit.die_offset))
        # Per open level, the nearest kept ancestor's offset: the unit DIE's children first.
        stack: list[int] = [unit.die_offset] if compiled[code][1] else []
        pos = self._walk(parsed, ctx, pos, stack, functions, path)
        if pos > len(data):
            raise FormatError(f"{ctx.info.name}: a DIE of the unit at {base:#x} runs past its end", path)
        parsed.starts, parsed.ends, parsed.owners = _flatten(functions)
        parsed.cost = len(data) + KEPT_COST * len(offsets) + DIE_COST * len(parsed.dies) \
            + MAP_ENTRY_COST * len(parsed.starts)

    def _walk(self, parsed: _ParsedUnit, ctx: _Ctx, pos: int, stack: list[int],
              functions: list[tuple[int, int, int, int]] | None, path: str,
              calls: tuple[dict[int, int], dict[int, int]] | None = None) -> int:
        """Step over DIEs from ``pos`` (in the unit's bytes) until the levels open in ``stack``
        close, appending the kept ones to the unit's lists (the inlined calls' chains to
        ``calls``, else the unit's); returns where it stopped (past the end: a DIE ran past the
        unit).  The functions with code met are decoded and their ranges added to
        ``functions``; with ``functions`` None (one function's subtree, _direct), a function
        with code met ends the walk at once: -1."""
        unit = ctx.unit
        base = unit.offset
        data, compiled, abbrevs = parsed.data, parsed.compiled, parsed.abbrevs
        # Per abbreviation code, the two common shapes by far, each with a path of its own: DIEs
        # not kept, without children, of a fixed size (members, parameters, variables, base
        # types...): one dict lookup and an add; kept ones of a fixed size (most inlined calls,
        # namespaces, structures): (size, children, inlined call?).
        shapes = self._shapes.get(id(compiled))
        if shapes is None:
            shapes = self._shapes[id(compiled)] = (
                {code: e[2] for code, e in compiled.items() if not e[4] and not e[1] and e[2] >= 0},
                {code: (e[2], e[1], e[0] == DW_TAG_inlined_subroutine) for code, e in compiled.items()
                 if e[4] and e[5] is None and e[2] >= 0})
        leaf, kept_fixed = shapes
        offsets, parents, codes = parsed.kept_offsets, parsed.kept_parents, parsed.kept_codes
        # The inlined calls directly in each kept DIE, as a chain: DIE offset -> its first call's
        # kept index, and kept index -> the next call's (int-to-int dicts: no object per DIE).
        first_call, next_call = calls or (parsed.first_call, parsed.next_call)
        last_call: dict[int, int] = {}
        order = "little" if ctx.endian == "<" else "big"
        end = len(data)
        # Every DIE takes a byte at least: the loop is bounded by the unit's size.
        while stack and pos < end:
            start = pos
            code = data[pos]
            pos += 1
            if code >= 0x80:
                code &= 0x7F
                shift = 7
                while True:
                    b = data[pos]
                    pos += 1
                    code |= (b & 0x7F) << shift
                    shift += 7
                    if b < 0x80:
                        break
                    if shift > 63:
                        raise FormatError(f"{ctx.info.name}: abbreviation code at {base + start:#x} is too long",
                                          path)
            size = leaf.get(code)
            if size is not None:
                pos += size
                continue
            if code == 0:
                stack.pop()  # the unit DIE's children end when the stack empties: what follows is padding
                continue
            at_off = base + start
            parent = stack[-1]
            found = kept_fixed.get(code)
            if found is not None:  # kept, of a fixed size: no decoding
                size, children, is_inlined = found
                pos += size
                kept = True
            else:
                entry = compiled.get(code)
                if entry is None:
                    raise FormatError(f"{ctx.info.name}: DIE at {at_off:#x} uses abbreviation {code}, "
                                      f"not in its table", path)
                tag, children, size, steps, kept, plan = entry
                is_inlined = tag == DW_TAG_inlined_subroutine
                if plan is not None:
                    if functions is None:
                        return -1
                    die = self._decode(parsed, ctx, at_off, pos, code, parent, False)
                    pos = die.end
                    for lo, hi in self._ranges_of(die, ctx):
                        functions.append((lo, hi, len(functions), at_off))
                elif size >= 0:
                    pos += size
                elif steps is not None:
                    for kind, n in steps:
                        if kind == SKIP_BYTES:
                            pos += n
                        elif kind == SKIP_LEB:
                            while data[pos] >= 0x80:
                                pos += 1
                            pos += 1
                        elif kind == SKIP_CSTRING:
                            pos = data.index(b"\0", pos) + 1
                        elif kind == SKIP_BLOCK_LEB:
                            length, pos = dwarf.leb128_at(data, pos)
                            pos += length
                        elif kind == SKIP_BLOCK1:
                            pos += 1 + data[pos]
                        elif kind == SKIP_BLOCK2:
                            pos += 2 + int.from_bytes(data[pos:pos + 2], order)
                        else:
                            pos += 4 + int.from_bytes(data[pos:pos + 4], order)
                else:
                    c = Cursor(ctx.info, base + pos, unit.end, ctx.endian)
                    c.preload(data, base)
                    for _at, form, _const in abbrevs[code].attrs:
                        dwarf.read_form(c, form, unit)
                    pos = c.pos - base
                if pos > end:
                    break
            if kept:
                offsets.append(at_off)
                parents.append(parent)
                codes.append(code)
                if is_inlined:
                    k = len(offsets) - 1
                    prev = last_call.get(parent)
                    if prev is None:
                        first_call[parent] = k
                    else:
                        next_call[prev] = k
                    last_call[parent] = k
            if children:
                if len(stack) >= MAX_DEPTH:
                    raise FormatError(f"{ctx.info.name}: DIEs nest deeper than {MAX_DEPTH}", path)
                stack.append(at_off if kept else parent)
        return pos

    def _decode(self, parsed: _ParsedUnit, ctx: _Ctx, offset: int, pos: int, code: int, parent: int,
                is_unit_die: bool) -> _Die:
        """The DIE at ``offset`` (its attributes from ``pos`` in the unit's bytes), decoded and
        remembered."""
        unit = ctx.unit
        entry = parsed.compiled[code]
        plan = entry[5]
        if is_unit_die:
            plan = _plan(parsed.abbrevs[code], unit, True, True)
        elif plan is None:
            plans = self._plans.get(id(parsed.compiled))
            if plans is None:
                plans = self._plans[id(parsed.compiled)] = {}
            plan = plans.get(code)
            if plan is None:
                plan = plans[code] = _plan(parsed.abbrevs[code], unit, True, False)
        data = parsed.data
        order = "little" if ctx.endian == "<" else "big"
        forms = _fast_forms(unit)
        attrs: dict = {}
        c = None
        for step in plan:
            op = step[0]
            if op == 0:
                pos += step[1]
                continue
            fast = forms.get(step[2]) if op == 1 else None
            if fast is not None:
                kind, size = fast
                if size:
                    if pos + size > len(data):
                        raise FormatError(f"{ctx.info.name}: DIE at {offset:#x} runs past its unit", ctx.info.path)
                    value = int.from_bytes(data[pos:pos + size], order)
                    pos += size
                    if kind == dwarf.V_REF:
                        value += unit.offset
                else:
                    value = step[3] if step[2] == dwarf.DW_FORM_implicit_const else 1
                attrs[step[1]] = (kind, value)
                continue
            # Forms whose size depends on the unit or the data: the general reader.
            if c is None:
                c = Cursor(ctx.info, unit.offset + pos, unit.end, ctx.endian)
                c.preload(data, unit.offset)
            c.pos = unit.offset + pos
            value = dwarf.read_value(c, step[2], step[3], unit)
            pos = c.pos - unit.offset
            if op == 1:
                attrs[step[1]] = value
        if pos > len(data):
            raise FormatError(f"{ctx.info.name}: DIE at {offset:#x} runs past its unit", ctx.info.path)
        die = _Die(offset, entry[0], parent, attrs)
        die.end = pos
        parsed.dies[offset] = die
        return die

    def _die(self, parsed: _ParsedUnit, offset: int) -> _Die | None:
        """The kept DIE at ``offset`` of this unit, decoded on first use; None if there is none.
        In a unit that was not walked (``light``), any DIE at ``offset``, without its parent."""
        die = parsed.dies.get(offset)
        if die is not None:
            return die
        if parsed.light:
            k = parsed.kept_index.get(offset)
            if k is not None:  # in a function's subtree _direct walked: with its parent
                return self._decode_kept(parsed, k)
            unit = parsed.ctx.unit
            if not unit.die_offset <= offset < unit.end:
                return None
            code, pos = dwarf.leb128_at(parsed.data, offset - unit.offset)
            if code == 0 or code not in parsed.compiled:
                return None
            die = self._decode(parsed, parsed.ctx, offset, pos, code, -1, offset == unit.die_offset)
            self._cache_grow(("light", parsed.key), DIE_COST)
            return die
        k = bisect.bisect_left(parsed.kept_offsets, offset)
        if k == len(parsed.kept_offsets) or parsed.kept_offsets[k] != offset:
            return None
        return self._decode_kept(parsed, k)

    def _decode_kept(self, parsed: _ParsedUnit, k: int) -> _Die:
        """Kept DIE ``k`` of a unit's lists, decoded and remembered."""
        offset = parsed.kept_offsets[k]
        data, pos = parsed.data, offset - parsed.ctx.unit.offset
        while data[pos] >= 0x80:  # past the abbreviation code (the walk kept its value)
            pos += 1
        pos += 1
        die = self._decode(parsed, parsed.ctx, offset, pos, parsed.kept_codes[k], parsed.kept_parents[k], False)
        self._cache_grow(("light" if parsed.light else "unit", parsed.key), DIE_COST)
        return die

    def _kept_index(self, parsed: _ParsedUnit, offset: int) -> int:
        if parsed.light:
            return parsed.kept_index[offset]
        return bisect.bisect_left(parsed.kept_offsets, offset)

    def _ranges_of(self, die: _Die, ctx: _Ctx) -> tuple[tuple[int, int], ...]:
        """The DIE's non-empty address ranges, read once."""
        if die.ranges is None:
            self._budget = MAX_RANGE_ENTRIES
            # A tuple (of tuples of ints): the cyclic collector stops tracking it after one look.
            die.ranges = tuple([(lo, hi) for lo, hi in self._die_ranges(die, ctx) if lo < hi])
        return die.ranges

    def _innermost(self, parsed: _ParsedUnit, function: int, addr: int, extent: Extent) -> _Die | None:
        """The deepest inlined call of ``function`` holding ``addr`` (the function itself when
        none does): from the function down, at each level the last child whose ranges hold the
        address, as LLVM's address map of a unit resolves nested (and overlapping) calls.  Only
        the DIEs on the way and their siblings are decoded, each level's children once."""
        die = self._die(parsed, function)
        if die is None:
            return None
        k = self._kept_index(parsed, function)
        for _ in range(MAX_DEPTH):
            starts, ends, owners = self._child_map(parsed, k)
            i = bisect.bisect_right(starts, addr) - 1
            extent.clip_cell(starts, ends, i, addr)  # this level's call, or the gap between calls
            if i < 0 or addr >= ends[i]:
                return die
            k = owners[i]
            die = self._die(parsed, parsed.kept_offsets[k])
        return die

    def _child_map(self, parsed: _ParsedUnit, k: int) -> tuple[list[int], list[int], list[int]]:
        """[start, end) -> kept index of the inlined calls directly inside kept DIE ``k`` (the
        later one where they overlap), built the first time an address falls in ``k``."""
        found = parsed.child_maps.get(k)
        if found is not None:
            return found
        offsets, codes, data, ctx = parsed.kept_offsets, parsed.kept_codes, parsed.data, parsed.ctx
        base = ctx.unit.offset
        where = self._range_fields(parsed)
        order = "little" if ctx.endian == "<" else "big"
        ranges: list[tuple[int, int, int, int]] = []
        child = parsed.first_call.get(offsets[k])
        while child is not None:  # each kept index once, increasing: bounded by the unit's DIEs
            fields = where.get(codes[child])
            if fields is None:
                inner = self._die(parsed, offsets[child])
                ranges += [(lo, hi, child, child) for lo, hi in self._ranges_of(inner, ctx)]
            else:
                # Only the call's ranges, read where its abbreviation puts them: the calls not on
                # the address's chain (most) are not decoded.
                pos = offsets[child] - base
                while data[pos] >= 0x80:  # past the abbreviation code
                    pos += 1
                pos += 1
                low_at, high_at, high_size, high_const, ranges_at = fields
                if ranges_at >= 0:
                    self._budget = MAX_RANGE_ENTRIES
                    v = int.from_bytes(data[pos + ranges_at:pos + ranges_at + ctx.unit.offset_size], order)
                    found = self._rnglist(ctx, ctx.rnglists_offset_base + v) if ctx.unit.version >= 5 \
                        else self._ranges(ctx, ctx.ranges_base + v)
                    ranges += [(lo, hi, child, child) for lo, hi in found if lo < hi]
                elif low_at >= 0:
                    lo = int.from_bytes(data[pos + low_at:pos + low_at + ctx.unit.address_size], order)
                    hi = int.from_bytes(data[pos + high_at:pos + high_at + high_size], order)
                    if high_const:
                        hi += lo
                    if lo < hi:
                        ranges.append((lo, hi, child, child))
            child = parsed.next_call.get(child)
        found = parsed.child_maps[k] = _flatten(ranges)
        self._cache_grow(("light" if parsed.light else "unit", parsed.key), MAP_ENTRY_COST * (len(found[0]) + 1))
        return found

    def _range_fields(self, parsed: _ParsedUnit) -> dict[int, tuple[int, int, int, bool, int]]:
        """Per abbreviation code of the unit's table whose address attributes lie at fixed
        offsets in the DIE (every form before them of a fixed size) in the forms _die_ranges
        reads directly: (DW_AT_low_pc offset, DW_AT_high_pc offset, its size, whether it is a
        length, DW_AT_ranges offset), -1 for an absent one.  Codes left out are decoded."""
        found = self._range_tables.get(id(parsed.compiled))
        if found is not None:
            return found
        unit = parsed.ctx.unit
        found = {}
        for code, ab in parsed.abbrevs.items():
            if ab.tag != DW_TAG_inlined_subroutine:
                continue
            at_offset = {}
            pos = 0
            for at, form, _const in ab.attrs:
                at_offset[at] = (pos, form)
                size = dwarf.form_size(form, unit)
                if size is None:
                    break
                pos += size
            else:
                low, high, rng = (at_offset.get(at) for at in (DW_AT_low_pc, DW_AT_high_pc, DW_AT_ranges))
                if rng is not None:
                    if rng[1] == dwarf.DW_FORM_sec_offset:
                        found[code] = (-1, -1, 0, False, rng[0])
                elif low is None or high is None:
                    if not any(at in at_offset for at in (DW_AT_low_pc, DW_AT_high_pc)):
                        found[code] = (-1, -1, 0, False, -1)  # no ranges at all
                elif low[1] == dwarf.DW_FORM_addr and high[1] in _HIGH_PC_FORMS:
                    found[code] = (low[0], high[0], dwarf.form_size(high[1], unit), high[1] != dwarf.DW_FORM_addr, -1)
        self._range_tables[id(parsed.compiled)] = found
        return found

    # -- the run's cache of parsed units and line tables --------------------------------------
    def _cache_get(self, key: tuple):
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
        return found

    def _cache_put(self, key: tuple, value, cost: int) -> None:
        """Keep ``value`` for the run; least recently used entries go when the estimated total
        passes the DWARF_CACHE budget (the newest always stays: it is in use)."""
        self._cache[key] = value
        self._costs[key] = cost
        self._cache_cost += cost
        self._growth += 1
        self._evict()

    def _cache_grow(self, key: tuple, cost: int) -> None:
        if key in self._costs:
            self._costs[key] += cost
            self._cache_cost += cost
            self._growth += 1
            self._evict()

    def _evict(self) -> None:
        while self._cache_cost > self._cache_cap and len(self._cache) > 1:
            key, _value = self._cache.popitem(last=False)
            cost = self._costs.pop(key)
            self._cache_cost -= cost
            self._evicted_cost += cost

    # -- names ---------------------------------------------------------------------------
    def _die_at(self, parsed: _ParsedUnit, offset: int) -> tuple[_ParsedUnit, _Die] | None:
        """The DIE at a section offset: in the unit at hand, or (DW_FORM_ref_addr) in another unit
        of the binary's .debug_info, parsed for it."""
        die = self._die(parsed, offset)
        if die is not None:
            return parsed, die
        if parsed.ctx.info is not self._bin.view(".debug_info"):
            return None  # split units refer within themselves
        offs = self._unit_offsets
        k = bisect.bisect_right(offs, offset) - 1
        if k < 0:
            return None
        entry = self._units[offs[k]]
        if not entry.unit.die_offset <= offset < entry.unit.end:
            return None
        other = self._cache_get(("unit", entry.unit.offset)) or self._light(entry)
        die = self._die(other, offset)
        return (other, die) if die is not None else None

    def _light(self, entry: _CuEntry) -> _ParsedUnit:
        """Another unit of the binary, for the DIEs a reference into it names (an abstract origin,
        a specification): its bytes and abbreviations, not walked; a DIE is decoded where it is,
        without its parent (the whole unit is walked if a name needs its scopes)."""
        off = entry.unit.offset
        found = self._cache_get(("light", off))
        if found is not None:
            return found
        unit = entry.unit
        die, ctx = self._unit_die(unit)
        attrs = die.attrs
        stmt = attrs.get(DW_AT_stmt_list)
        parsed = _ParsedUnit(self._string(ctx, attrs[DW_AT_name]) if DW_AT_name in attrs else None,
                             self._string(ctx, attrs[DW_AT_comp_dir]) if DW_AT_comp_dir in attrs else None,
                             stmt[1] if stmt is not None and stmt[0] in (dwarf.V_SEC_OFFSET, dwarf.V_CONST) else None,
                             ctx, ctx)
        parsed.abbrevs = self._abbrevs(self._bin.view(".debug_abbrev"), unit.abbrev_offset, self.path)
        parsed.compiled = self._compiled(parsed.abbrevs, unit)
        parsed.data = ctx.info.read(off, unit.end - off, "unit")
        parsed.light, parsed.key = True, off
        self._cache_put(("light", off), parsed, len(parsed.data))
        return parsed

    def _find(self, parsed: _ParsedUnit, die: _Die, ats: tuple[int, ...]) -> tuple[_ParsedUnit, _Die, tuple] | None:
        """The first of ``ats`` on the DIE or along its specification / abstract-origin chain
        (breadth first, as LLVM's findRecursively)."""
        seen = set()
        work = [(parsed, die)]
        while work and len(seen) < MAX_CHAIN:
            p, d = work.pop(0)
            if d.offset in seen:
                continue
            seen.add(d.offset)
            for at in ats:
                if at in d.attrs:
                    return p, d, d.attrs[at]
            for link in (DW_AT_specification, DW_AT_abstract_origin):
                v = d.attrs.get(link)
                if v is not None and v[0] == dwarf.V_REF:
                    target = self._die_at(p, v[1])
                    if target is not None:
                        work.append(target)
        return None

    def _linkage_name(self, parsed: _ParsedUnit, die: _Die) -> str | None:
        found = self._find(parsed, die, (DW_AT_MIPS_linkage_name, DW_AT_linkage_name))
        return self._string(found[0].ctx, found[2]) if found else None

    def _function_name(self, parsed: _ParsedUnit, die: _Die) -> tuple[str | None, str | None]:
        """(readable name, linkage name) of a subprogram or inlined subroutine; the readable name
        None where it is the linkage name's demangling, which a Frame works out when it is read
        (``symbolize`` prints LLVM's demangling of the linkage name, not that one)."""
        if die.names is None:
            die.names = self._find_function_name(parsed, die)
        return die.names

    def _find_function_name(self, parsed: _ParsedUnit, die: _Die) -> tuple[str | None, str | None]:
        linkage = self._linkage_name(parsed, die)
        if linkage:
            return None, linkage
        found = self._find(parsed, die, (DW_AT_name,))
        if found is None:
            return "??", None
        where, owner, value = found
        name = self._string(where.ctx, value) or "??"
        if self._find(parsed, die, (DW_AT_external,)) is not None:
            return name, name  # extern "C" / #[no_mangle]: the name is the symbol
        parts = [name]
        if where.light:  # the scopes are needed: walk that unit after all
            where = self._parse(self._units[where.key])
            owner = self._die(where, owner.offset) or owner
        parent = self._die(where, owner.parent)
        for _ in range(MAX_CHAIN):
            if parent is None or parent.tag in _UNITS:
                break
            if parent.tag in _SCOPES and DW_AT_name in parent.attrs:
                parts.append(self._string(where.ctx, parent.attrs[DW_AT_name]) or "?")
            parent = self._die(where, parent.parent)
        return "::".join(reversed(parts)), None

    def _start(self, parsed: _ParsedUnit, die: _Die) -> int | None:
        self._budget = MAX_RANGE_ENTRIES
        for at in (DW_AT_low_pc, DW_AT_entry_pc):
            if at in die.attrs:
                value = self._address(parsed.ctx, die.attrs[at])
                if value is not None:
                    return value
        ranges = self._die_ranges(die, parsed.ctx)
        return min(lo for lo, _ in ranges) if ranges else None

    # -- lines ---------------------------------------------------------------------------
    @_malformed
    def source_files(self) -> list[str]:
        """Every path the binary's line tables name, joined as llvm-symbolizer prints them
        (the unit's comp_dir, include dir, file name), sorted, each once.  Reads only the unit
        DIEs and the line-table headers' file lists, not the DIE trees."""
        out: set[str] = set()
        view = self._bin.view(".debug_line")
        if view is None:
            return []
        strings = Strings(self._bin.view(".debug_str"), self._bin.view(".debug_line_str"))
        seen: set[int] = set()
        for off in self._unit_offsets:
            unit = self._units[off].unit
            try:
                die, ctx = self._unit_die(unit)
            except FormatError:
                continue  # an unreadable unit names no files; the others still do
            attrs = die.attrs
            stmt = attrs.get(DW_AT_stmt_list)
            if stmt is None or stmt[0] not in (dwarf.V_SEC_OFFSET, dwarf.V_CONST) or stmt[1] in seen:
                continue
            seen.add(stmt[1])
            comp_dir = self._string(ctx, attrs[DW_AT_comp_dir]) if DW_AT_comp_dir in attrs else None
            table = read_line_table(view, stmt[1], self.endian, unit.address_size, strings)
            first = 0 if table.version >= 5 else 1
            for index in range(first, first + len(table.files)):
                name = table.file_name(index, comp_dir)
                if name:
                    out.add(name)
        return sorted(out)

    def _line_table(self, parsed: _ParsedUnit) -> LineTable | None:
        if parsed.stmt_list is None:
            return None
        view = self._bin.view(".debug_line")
        if view is None:
            return None
        key = ("lines", parsed.stmt_list, parsed.line_ctx.unit.address_size)
        table = self._cache_get(key)
        if table is None:
            strings = Strings(self._bin.view(".debug_str"), self._bin.view(".debug_line_str"))
            table = read_line_table(view, parsed.stmt_list, self.endian, parsed.line_ctx.unit.address_size, strings)
            self._cache_put(key, table, ROW_COST * table.program_size // PROGRAM_BYTES_PER_ROW)
        return table

    # -- symbols -------------------------------------------------------------------------
    def _symbol_at(self, addr: int) -> tuple[str, int, str | None] | None:
        """The FUNC/OBJECT symbol at ``addr`` as llvm-symbolizer picks it: the last one starting
        at or before it (the largest at one address), if its size reaches it or is 0."""
        if self._symbols is None:
            if self._bin.macho is not None:
                self._symbols = SymbolTable.of_symbols([Symbol(name, value, size)
                                                        for value, size, name in self._bin.macho.symbols()])
            else:
                self._symbols = self._bin.elf.symbol_table()
        table = self._symbols
        k = bisect.bisect_right(table.values, addr) - 1
        if k < 0:
            return None
        value, size = table.values[k], table.size(k)
        if size and value + size <= addr:
            return None
        s = table.symbol(k)
        return s.name, s.value, s.file

    def _symbol_cell(self, addr: int, extent: Extent) -> None:
        """Narrow ``extent`` to where _symbol_at gives its answer for ``addr`` (after a call)."""
        table = self._symbols
        values = table.values
        k = bisect.bisect_right(values, addr) - 1
        above = values[k + 1] if k + 1 < len(values) else ADDRESS_END
        if k < 0:
            extent.clip(0, above)
            return
        value, size = values[k], table.size(k)
        end = value + size if size else ADDRESS_END
        if end <= addr:
            extent.clip(end, above)
        else:
            extent.clip(value, min(end, above))

    def _unit_cell(self, addr: int, extent: Extent) -> None:
        """Narrow ``extent`` to the cell of ``addr`` in the address -> unit map (after _unit_for)."""
        k = bisect.bisect_right(self._map_starts, addr) - 1
        m = self._map
        if k >= 0 and addr < m[k][1]:
            extent.clip(m[k][0], m[k][1])
        else:
            extent.clip(m[k][1] if k >= 0 else 0, m[k + 1][0] if k + 1 < len(m) else ADDRESS_END)

    def _section_of(self, addr: int, extent: Extent) -> tuple[int, int]:
        k = bisect.bisect_right(self._sections, (addr, float("inf"), 0)) - 1
        above = self._sections[k + 1][0] if k + 1 < len(self._sections) else ADDRESS_END
        if k >= 0:
            lo, hi, index = self._sections[k]
            if lo <= addr < hi:
                extent.clip(lo, min(hi, above))
                return index, addr - lo
            extent.clip(max(lo, hi), above)
        else:
            extent.clip(0, above)
        return 0, addr

    # -- public API ----------------------------------------------------------------------
    def symbolize(self, rva: int) -> Symbolized | None:
        """Function, file:line and inline frames at module offset ``rva`` (ELF vaddr - load_bias);
        None when neither DWARF nor the symbol table knows the address."""
        return self.symbolize_extent(rva)[0]

    @_malformed
    def symbolize_extent(self, rva: int) -> tuple[Symbolized | None, int, int]:
        """symbolize(rva), and the RVAs [start, end) around it where the answer is the same
        (``offset`` and ``symbol_offset`` following the address): the intersection of the
        cells of the section, the symbol, the unit, the subprogram, each inlined call on the
        chain (or the gap between calls) and the line-table row."""
        extent = Extent()
        # The collector policy (docs/symbolize.md, _after_answer): paused while an address is
        # answered, and what the answer added to the cache frozen after it, never scanned again.
        paused = gc.isenabled()
        if paused:
            gc.disable()
        growth = self._growth
        try:
            result = self._symbolize(rva, extent)
        finally:
            if paused:
                self._after_answer(growth)
                gc.enable()
        start, end = extent.lo - self.load_bias, extent.hi - self.load_bias
        if rva >= 0:
            start = max(start, 0)
        return result, start, min(end, ADDRESS_END)

    def _after_answer(self, growth: int) -> None:
        """The collector's side of an answer (called with it paused).  Parsing a unit makes
        hundreds of thousands of objects, none in a cycle (tests/test_dwarf_gc.py: an evicted
        unit is freed by reference counting alone), and every pass of the collector over them
        was wasted: a quarter of a cold run's time.  So after an answer that made the cache
        grow (a unit walked, a line table read, DIEs decoded, child maps or frames made),
        everything alive is moved to the permanent generation (``gc.freeze()``, a constant-time
        list splice), where no pass looks; what the reader lets go is still freed by reference
        counting, frozen or not.  Other code's objects frozen along with it would have their
        cycles left uncollected, so after the cache has let go of EVICTED_PER_COLLECTION times
        its budget they are unfrozen, collected once and the survivors frozen again (and closing
        the reader unfreezes): a run that evicts nothing freezes only while it still finds new
        things to parse (at most once per answer), and one that does pays one full collection
        per four budgets let go."""
        if self._evicted_cost > EVICTED_PER_COLLECTION * self._cache_cap:
            self._evicted_cost = 0
            gc.unfreeze()
            gc.collect()
        elif self._growth == growth:
            return
        gc.freeze()
        self._froze = True

    def _symbolize(self, rva: int, extent: Extent) -> Symbolized | None:
        addr = rva + self.load_bias
        section, offset = self._section_of(addr, extent)
        result = Symbolized(rva, section, offset)
        sym = self._symbol_at(addr)
        self._symbol_cell(addr, extent)
        if sym is not None:
            result.symbol, result.symbol_offset = sym[0], addr - sym[1]
        entry = self._unit_for(addr)
        self._unit_cell(addr, extent)
        if entry is None:
            if sym is None:
                return None
            result.frames.append(Frame(None, sym[2], mangled=sym[0]))  # file: the STT_FILE's name
            return result
        parsed, function = self._unit_at(entry, addr)
        result.module = parsed.name
        table = self._line_table(parsed)
        chain = self._chain(parsed, addr, extent, function)
        if table is not None:
            extent.clip(*table.extent(addr))
        if not chain:
            row = table.lookup(addr) if table is not None else None
            if row is None and sym is None:
                return None
            name = None if sym is not None else "??"  # (None: demangled from sym[0] when read)
            file = table.file_name(row[0], parsed.comp_dir) if row is not None else None
            if file is None and sym is not None:
                file = sym[2]
            result.frames.append(Frame(name, file, row[1] if row is not None else None,
                                       row[2] if row is not None else None, sym[0] if sym is not None else None))
            return result
        row = table.lookup(addr) if table is not None else None
        result.frames = list(self._frames(parsed, chain, table, row, sym[0] if sym is not None else None))
        function = chain[-1]
        linkage = self._function_name(parsed, function)[1]
        if function.outer is None:  # the function's own name and start, once per function
            own = self._find(parsed, function, (DW_AT_name,))
            function.outer = (self._string(own[0].ctx, own[2]) if own is not None else None,
                              self._start(parsed, function))
        short_name, start = function.outer
        if short_name is not None:
            result.short_name = short_name
        if linkage is not None:
            result.symbol = linkage
        if start is not None:
            result.symbol_offset = addr - start
        return result

    def _frames(self, parsed: _ParsedUnit, chain: tuple[_Die, ...], table: LineTable | None,
                row: tuple[int, int, int] | None, symbol: str | None) -> tuple[Frame, ...]:
        """The frames of an address whose inline chain is ``chain``, line-table row ``row`` and
        symbol-table name ``symbol``: made once per (innermost call, row, symbol), the outer ones
        once per (innermost call, symbol), and shared by the answers of every address that has
        them (45,000 frames of 10,000 random addresses of the benchmark program are 14,000
        distinct; ``symbolize`` words a Frame object once, so equal frames of one function are one
        object).  Kept with the DIEs, so let go with their unit."""
        innermost = chain[0]
        if innermost.answers is None:
            innermost.answers, innermost.outers = {}, {}
        frames = innermost.answers.get((row, symbol))
        if frames is not None:
            return frames
        function = chain[-1]
        if function.frames is None:
            function.frames = {}
        interned = function.frames  # equal frames of the function's chains are one object

        def frame(name: str | None, file: str | None, line: int | None, column: int | None,
                  linkage: str | None) -> Frame:
            key = (name, file, line, column, linkage)
            found = interned.get(key)
            if found is None:
                found = interned[key] = Frame(name, file, line, column, linkage)
            return found

        name, linkage = self._function_name(parsed, innermost)
        if len(chain) == 1 and symbol is not None:
            name, linkage = None, symbol  # llvm-symbolizer names the outer frame from the symbol table
        file = table.file_name(row[0], parsed.comp_dir) if row is not None else None
        first = frame(name, file, row[1] if row is not None else None, row[2] if row is not None else None, linkage)
        outer = innermost.outers.get(symbol)
        if outer is None:
            made = []
            for i in range(1, len(chain)):
                call_file, call_line, call_column = self._call(chain[i - 1])
                name, linkage = self._function_name(parsed, chain[i])
                if i == len(chain) - 1 and symbol is not None:
                    name, linkage = None, symbol  # (demangled from the symbol when read)
                file = table.file_name(call_file, parsed.comp_dir) if table is not None and call_file is not None \
                    else None
                made.append(frame(name, file, call_line, call_column, linkage))
            outer = innermost.outers[symbol] = tuple(made)
        frames = innermost.answers[(row, symbol)] = (first, *outer)
        self._cache_grow(("unit", parsed.key), FRAME_COST * len(frames))
        return frames

    @staticmethod
    def _call(die: _Die) -> tuple[int | None, int, int]:
        """(DW_AT_call_file, call_line, call_column) of an inlined call, read once."""
        if die.call is None:
            cf, cl, cc = (die.attrs.get(at) for at in (DW_AT_call_file, DW_AT_call_line, DW_AT_call_column))
            die.call = (cf[1] if cf is not None and cf[0] == dwarf.V_CONST else None,
                        cl[1] if cl is not None and cl[0] == dwarf.V_CONST else 0,
                        cc[1] if cc is not None and cc[0] == dwarf.V_CONST else 0)
        return die.call

    def _chain(self, parsed: _ParsedUnit, addr: int, extent: Extent,
               function: tuple[int, int, int] | None = None) -> tuple[_Die, ...]:
        """The inlined subroutines holding ``addr``, innermost first, then their subprogram:
        the function of the unit's map, or ``function`` (DIE offset, start, end) when _direct
        found it."""
        if function is not None:
            owner, lo, hi = function
            extent.clip(lo, hi)
        else:
            k = bisect.bisect_right(parsed.starts, addr) - 1
            extent.clip_cell(parsed.starts, parsed.ends, k, addr)
            if k < 0 or addr >= parsed.ends[k]:
                return []
            owner = parsed.owners[k]
        innermost = self._innermost(parsed, owner, addr, extent)
        if innermost is None:
            return ()
        if innermost.chain is None:  # the same for every address whose innermost frame it is
            chain = []
            die = innermost
            for _ in range(MAX_DEPTH):
                if die is None:
                    break
                if die.tag == DW_TAG_subprogram:
                    chain.append(die)
                    break
                if die.tag == DW_TAG_inlined_subroutine:
                    chain.append(die)
                die = self._die(parsed, die.parent)
            innermost.chain = tuple(die.offset for die in chain)  # offsets: no reference cycle
        dies = parsed.dies
        return tuple(dies[offset] for offset in innermost.chain)


__all__ = ["DwarfSymbolizer", "Frame", "Symbolized"]
