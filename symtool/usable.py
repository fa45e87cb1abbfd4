"""Is this debug file any use?  The one definition of the ``usable`` verdict.

``sentry-cli difutil check`` answers it with features; so do we, with names that
say what a debugger gets from each:

* ``functions``: names for code addresses.  PDB: ``S_PUB32`` publics or
  ``S_*PROC32`` records in a module's symbols; DWARF: a ``DW_TAG_subprogram``
  with code (``DW_AT_low_pc``/``DW_AT_ranges``), or an ELF ``.symtab`` /
  Mach-O symbol table defining a function.
* ``line_tables``: file and line for an address.  PDB: C13 ``DEBUG_S_LINES``
  (or old C11 lines); DWARF: a non-empty ``.debug_line``.
* ``inline_info``: inlined calls.  PDB: ``DEBUG_S_INLINEELINES`` or
  ``S_INLINESITE``; DWARF: ``DW_TAG_inlined_subroutine``.
* ``unwind_info``: how to walk past a frame.  PE: the exception directory
  (``.pdata``); PDB: x86 FPO / frame data; ELF: ``.eh_frame``/``.debug_frame``;
  Mach-O: ``__unwind_info``, ``__eh_frame`` or ``__debug_frame`` with data.
* ``types``: type records (PDB TPI; DWARF ``.debug_info``/``.debug_types``).

The verdict (:func:`verdict`) looks at symbols only, never at unwind info: a
stripped ELF keeps ``.eh_frame`` and is still "no symbols".

Every check is cheap and bounded: stream and section sizes, the abbreviation
tables instead of ``.debug_info``, C13 subsection headers instead of line data,
the first records of symbol streams (``SYMBOL_SCAN`` bytes in all).  What lies
past a bound counts as absent, so a feature may be missed in a huge file, never
invented.
"""

from __future__ import annotations

import os

USABLE = "usable"
NO_LINE_TABLES = "no line tables"
NO_FUNCTIONS = "no function names"
TYPES_ONLY = "types only"
NO_SYMBOLS = "no symbols"
UNKNOWN = "unknown"  # a format whose debug info symtool does not judge (portable and MSF 2.00 PDBs)
VERDICTS = (USABLE, NO_LINE_TABLES, NO_FUNCTIONS, TYPES_ONLY, NO_SYMBOLS, UNKNOWN)

SYMBOL_SCAN = 4 << 20  # bytes of PDB symbol records read to find publics and procedures
MODULE_SCAN = 64 << 10  # of them, at most this much from the head of one module's symbols


class Features:
    """What a debug file holds, in the words of this module's docstring.

    (A plain class: `symtool id` judges every file, and a dataclass would import dataclasses.)"""

    __slots__ = ("functions", "line_tables", "inline_info", "unwind_info", "types")

    def __init__(self, functions: bool = False, line_tables: bool = False, inline_info: bool = False,
                 unwind_info: bool = False, types: bool = False) -> None:
        self.functions = functions
        self.line_tables = line_tables
        self.inline_info = inline_info
        self.unwind_info = unwind_info
        self.types = types

    def __or__(self, other: "Features") -> "Features":
        return Features(*(getattr(self, k) or getattr(other, k) for k in self.__slots__))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Features) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"Features({', '.join(f'{k}={v!r}' for k, v in self.to_json().items())})"

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


def verdict(f: Features | None) -> str:
    """The ``usable`` string for a file's (or a binary and its debug file's) features."""
    if f is None:
        return UNKNOWN
    if f.functions and f.line_tables:
        return USABLE
    if f.functions:
        return NO_LINE_TABLES
    if f.line_tables:
        return NO_FUNCTIONS
    if f.types:
        return TYPES_ONLY
    return NO_SYMBOLS


# -- PDB ---------------------------------------------------------------------

def _scan_records(data: bytes, kinds: set[int]) -> set[int]:
    """Which of ``kinds`` occur among the CodeView records in ``data`` (a cut last record is ignored)."""
    from symtool.formats.pdb import CV_RECORD_PREFIX

    seen: set[int] = set()
    pos = 0
    while pos + CV_RECORD_PREFIX.size <= len(data):
        length, kind = CV_RECORD_PREFIX.unpack_from(data, pos)
        if length < 2:
            break  # padding or garbage: nothing further can be trusted
        if kind in kinds:
            seen.add(kind)
        pos += 2 + length
    return seen


def pdb_features(path: str | os.PathLike[str]) -> Features | None:
    """Features of an MSF 7.00 PDB; None for PDBs not judged (MSF 2.00, portable)."""
    from symtool.formats import pdb

    f, msf = pdb.open_msf(path)
    with f:
        return msf_features(msf)


def msf_features(msf) -> Features | None:
    """:func:`pdb_features` of a PDB already open as ``msf`` (a :class:`symtool.formats.pdb.Msf`:
    publish judges each PDB through the file and directory pages its identity was read from)."""
    from symtool.formats import pdb
    from symtool.formats.pdb import PROC_KINDS, S_INLINESITE, S_PUB32, STREAM_TPI

    if msf.version != 7:
        return None
    out = Features()
    tpi = msf.read_stream(STREAM_TPI, 0, pdb.TPI_STREAM_HEADER_START.size) if msf.num_streams > STREAM_TPI else b""
    if len(tpi) == pdb.TPI_STREAM_HEADER_START.size:
        _ver, _hdr, begin, end, _bytes = pdb.TPI_STREAM_HEADER_START.unpack(tpi)
        out.types = end > begin
    dbi = pdb.read_dbi_header(msf) if msf.num_streams > pdb.STREAM_DBI else None
    if dbi is None:
        return out  # no DBI stream: a type server (vc140.pdb) or an empty PDB
    out.unwind_info = pdb.has_frame_data(msf, dbi)
    budget = SYMBOL_SCAN
    if dbi.sym_record_stream < msf.num_streams:
        head = msf.read_stream(dbi.sym_record_stream, 0, min(budget, MODULE_SCAN * 16))
        budget -= len(head)
        out.functions = S_PUB32 in _scan_records(head, {S_PUB32})
    modules = list(pdb.iter_modules(msf, dbi))
    out.line_tables = any(m.c11_bytes > 0 for m in modules if m.has_stream)
    kinds = pdb.c13_kinds(msf, modules, {pdb.DEBUG_S_LINES, pdb.DEBUG_S_INLINEELINES})
    out.line_tables = out.line_tables or pdb.DEBUG_S_LINES in kinds
    out.inline_info = pdb.DEBUG_S_INLINEELINES in kinds
    for m in modules:
        if out.functions and out.inline_info or budget <= 0:
            break
        if not m.has_stream or m.sym_bytes <= 4 or m.stream >= msf.num_streams:
            continue
        # Symbols start after a 4-byte signature; procedures follow S_OBJNAME and S_COMPILE3.
        data = msf.read_stream(m.stream, 4, min(m.sym_bytes - 4, MODULE_SCAN, budget))
        budget -= len(data)
        seen = _scan_records(data, PROC_KINDS | {S_INLINESITE})
        out.functions = out.functions or bool(seen & PROC_KINDS)
        out.inline_info = out.inline_info or S_INLINESITE in seen
    return out


# -- PE, ELF, Mach-O ------------------------------------------------------------

def pe_features(info) -> Features:
    """A PE image's own features: its unwind info (its symbols are in its PDB)."""
    return Features(unwind_info=info.exception_bytes > 0)


def _data(sec) -> bool:
    from symtool.formats.elf import SHT_NOBITS

    return sec is not None and sec.type != SHT_NOBITS and sec.size > 0


def elf_features(path: str | os.PathLike[str]) -> Features:
    from symtool.formats import dwarf
    from symtool.formats.binio import BoundedReader
    from symtool.formats.elf import ElfFile

    p = os.fspath(path)
    with open(p, "rb") as fh:
        elf = ElfFile(BoundedReader(fh, p), p)
        elf.read_sections()
        sec = elf.section
        out = Features(
            line_tables=_data(sec(".debug_line")) or _data(sec(".zdebug_line")),
            unwind_info=_data(sec(".eh_frame")) or _data(sec(".debug_frame")),
            types=any(_data(sec(n)) for n in (".debug_info", ".debug_info.dwo", ".debug_types", ".zdebug_info")),
        )
        for name in (".debug_abbrev", ".debug_abbrev.dwo"):
            abbrev = sec(name)
            if _data(abbrev):
                functions, inlined = dwarf.abbrev_features(elf.view(abbrev), elf.lay.endian)
                out.functions = out.functions or functions
                out.inline_info = out.inline_info or inlined
        out.functions = out.functions or elf.has_function_symbol()
        return out


def macho_features(path: str | os.PathLike[str]) -> Features:
    """Features of a Mach-O file, all slices together (each slice is one build of the same code)."""
    from symtool.formats import dwarf
    from symtool.formats.binio import BoundedReader
    from symtool.formats.macho import has_function_symbol, read_macho_reader

    p = os.fspath(path)
    out = Features()
    with open(p, "rb") as fh:
        r = BoundedReader(fh, p)
        for sl in read_macho_reader(r, p).slices:
            # A section's offset is 0 when the file holds no data for it (a dSYM keeps __TEXT's headers).
            have = {(seg, name): (off, size) for seg, name, off, size, _flags, _addr in sl.sections
                    if off and size and off + size <= sl.size}
            f = Features(
                line_tables=("__DWARF", "__debug_line") in have,
                unwind_info=any(k in have for k in (("__TEXT", "__unwind_info"), ("__TEXT", "__eh_frame"),
                                                    ("__DWARF", "__debug_frame"))),
                types=("__DWARF", "__debug_info") in have,
                functions=has_function_symbol(r, sl),
            )
            if ("__DWARF", "__debug_abbrev") in have:
                off, size = have[("__DWARF", "__debug_abbrev")]
                base = sl.offset + off
                view = dwarf.SectionView("__debug_abbrev", size,
                                         lambda o, n, base=base: r.read(base + o, n, "__debug_abbrev"), p)
                functions, inlined = dwarf.abbrev_features(view, sl.endian)
                f.functions = f.functions or functions
                f.inline_info = inlined
            out = out | f
    return out


def file_features(path: str | os.PathLike[str], info=None) -> Features | None:
    """Features of any file ``symtool id`` reads (by content); None when not judged.

    Raises FormatError / OSError as the readers do.
    """
    if info is None:
        from symtool.formats.detect import read_identity

        info = read_identity(path)
    kind = info.kind
    if kind == "pe":
        return pe_features(info)
    if kind == "pdb":
        return pdb_features(path)
    if kind in ("elf", "dwp", "dwo"):
        return elf_features(path)
    if kind == "macho":
        return macho_features(path)
    return None


__all__ = ["Features", "VERDICTS", "USABLE", "NO_LINE_TABLES", "NO_FUNCTIONS", "TYPES_ONLY", "NO_SYMBOLS",
           "UNKNOWN", "verdict", "pdb_features", "msf_features", "pe_features", "elf_features", "macho_features",
           "file_features"]
