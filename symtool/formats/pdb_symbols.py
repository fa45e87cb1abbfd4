"""Symbolize an RVA with a PDB: function, file:line and inline frames.

Reads, lazily and only once per PDB (a :class:`PdbSymbolizer` caches what it
parsed, so triaging many dumps that share a PDB parses it once):

* the DBI stream: module infos (each module's symbol stream and the sizes of
  its symbol / C13 line-info parts), section contributions (which module
  owns a section:offset) and the optional debug header, whose entry 5 is the
  stream of section headers that maps an RVA to section:offset;
* the symbol record stream's ``S_PUB32`` records (public symbols), used when
  no module procedure covers the address;
* a module's symbol stream: ``S_GPROC32``/``S_LPROC32`` (and their ``_ID``
  variants) and the ``S_INLINESITE`` records nested in them, whose binary
  annotations give the code ranges and lines of inlined calls;
* the module's C13 subsections: ``DEBUG_S_LINES`` (line tables),
  ``DEBUG_S_FILECHKSMS`` (file records pointing into the ``/names`` string
  table) and ``DEBUG_S_INLINEELINES`` (each inlinee's file and first line);
* the IPI stream's ``LF_FUNC_ID`` / ``LF_MFUNC_ID`` / ``LF_STRING_ID`` records
  to name inlinees (and the TPI stream for the class of a member function).

Layout facts come from LLVM's "The PDB File Format" documentation and
Microsoft's cvinfo.h.  Everything is bounded by the stream it is read from;
malformed data raises :class:`~symtool.errors.FormatError`.

Not handled: OMAP address translation (system PDBs rewritten by BBT), C11
(pre-VC7) line tables, and fixed-up x64 ``S_SEPCODE`` blocks beyond their
own lines.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError
from symtool.formats.binio import cstring
from symtool.text import article
from symtool.demangle import demangle
from symtool.formats.symbols import Frame, Symbolized, malformed_is_format_error
from symtool.formats.pdb import (
    C13_FILE_CHECKSUM, C13_SUBSECTION, NAMES_HEADER, STREAM_DBI, TPI_STREAM_HEADER, ModuleInfo, Msf, iter_modules,
    open_msf, read_dbi_header, read_pdb,
)

STREAM_TPI = 2
STREAM_IPI = 4
NIL16 = 0xFFFF

SC_V60 = 0xEFFE0000 + 19970605
SC_V2 = 0xEFFE0000 + 20140516
# The section contribution substream opens with its version (SC_V60 or SC_V2).
SECTION_CONTRIB_VERSION = struct.Struct("<I")
# SectionContribEntry (LLVM's "DBI Stream"): Section, Padding1, Offset, Size, Characteristics,
# ModuleIndex, Padding2, DataCrc, RelocCrc; SectionContribEntry2 (SC_V2) adds ISectCoff.
SECTION_CONTRIB = struct.Struct("<HHiiIHHII")
SECTION_CONTRIB_V2 = struct.Struct("<HHiiIHHIII")
# IMAGE_SECTION_HEADER (winnt.h) up to PointerToRawData: Name, VirtualSize, VirtualAddress,
# SizeOfRawData, then the rest of the 40-byte header.
IMAGE_SECTION_HEADER = struct.Struct("<8sIII20s")
# The optional debug header substream is an array of u16 stream numbers.
DEBUG_HEADER_SLOT = struct.Struct("<H")
DBG_SECTION_HDR = 5  # optional debug header slot of the section header stream

# Symbol kinds (cvinfo.h SYM_ENUM_e).
S_END = 0x0006
S_THUNK32 = 0x1102
S_BLOCK32 = 0x1103
S_WITH32 = 0x1104
S_PUB32 = 0x110E
S_LPROC32 = 0x110F
S_GPROC32 = 0x1110
S_SEPCODE = 0x1132
S_LPROC32_ID = 0x1146
S_GPROC32_ID = 0x1147
S_COMPILE3 = 0x113C
S_INLINESITE = 0x114D
S_INLINESITE_END = 0x114E
S_PROC_ID_END = 0x114F
S_LPROC32_DPC = 0x1155
S_LPROC32_DPC_ID = 0x1156
S_INLINESITE2 = 0x115D
PROC_KINDS = {S_LPROC32, S_GPROC32, S_LPROC32_ID, S_GPROC32_ID, S_LPROC32_DPC, S_LPROC32_DPC_ID}
SCOPE_KINDS = {S_THUNK32, S_BLOCK32, S_WITH32, S_SEPCODE}
END_KINDS = {S_END, S_INLINESITE_END, S_PROC_ID_END}

# C13 debug subsections.
DEBUG_S_IGNORE = 0x80000000
DEBUG_S_LINES = 0xF2
DEBUG_S_FILECHKSMS = 0xF4
DEBUG_S_CROSSSCOPEEXPORTS = 0xF8
DEBUG_S_INLINEELINES = 0xF6
DEBUG_S_CROSSSCOPEIMPORTS = 0xF7
CROSS_MODULE_ID = 0x80000000

# Type / id record kinds.
LF_CLASS = 0x1504
LF_STRUCTURE = 0x1505
LF_UNION = 0x1506
LF_ENUM = 0x1507
LF_INTERFACE = 0x1519
LF_FUNC_ID = 0x1601
LF_MFUNC_ID = 0x1602
LF_STRING_ID = 0x1605
TYPE_INDEX_BEGIN = 0x1000

NAMES_SIGNATURE = 0xEFFEEFFE
HIDDEN_LINES = (0xFEEFEE, 0xF00F00)

MAX_SCOPE_DEPTH = 4096

# CodeView record prefix (cvinfo.h; symbol, type and id records): RecordLen (bytes after this
# field), RecordKind.
CV_RECORD_PREFIX = struct.Struct("<HH")
# S_PUB32: PubSymFlags, Offset, Segment (then the name).
PUBSYM32 = struct.Struct("<IIH")
# S_GPROC32 / S_LPROC32 and their _ID and _DPC variants (PROCSYM32): pParent, pEnd, pNext, len,
# DbgStart, DbgEnd, typind, off, seg (then flags and the name).
PROCSYM32 = struct.Struct("<8IH")
# S_INLINESITE (INLINESITESYM): pParent, pEnd, inlinee (then the binary annotations;
# S_INLINESITE2 puts a u32 invocation count before them).
INLINESITESYM = struct.Struct("<III")
# COMPILESYM3: flags, machine, front-end major/minor/build/QFE, back-end major/minor/build/QFE; then
# the version string (rustc: "clang LLVM (rustc version 1.63.0)").
COMPILESYM3 = struct.Struct("<IH8H")
COMPILE_RECORDS_SCANNED = 8  # S_COMPILE3 follows S_OBJNAME at the head of a module's symbols
# LF_FUNC_ID (lfFuncId) after the leaf kind: scopeId, type (then the name).
LF_FUNC_ID_RECORD = struct.Struct("<II")
# LF_MFUNC_ID (lfMFuncId) after the leaf kind: parentType, type (then the name).
LF_MFUNC_ID_RECORD = struct.Struct("<II")
# A numeric leaf starts with a u16: the value itself below LF_NUMERIC (0x8000), else its kind.
NUMERIC_LEAF = struct.Struct("<H")
# TypeIndexOffset (the TPI/IPI hash stream's index-offset buffer): TypeIndex, Offset.
TYPE_INDEX_OFFSET = struct.Struct("<II")
# DEBUG_S_LINES: CV_LineSection (LLVM LineFragmentHeader): RelocOffset, RelocSegment, Flags, CodeSize.
LINE_FRAGMENT_HEADER = struct.Struct("<IHHI")
# Each file block of it (CV_SourceFile, LLVM LineBlockFragmentHeader): NameIndex (offset of the file
# checksum record), NumLines, BlockSize.
LINE_BLOCK_HEADER = struct.Struct("<III")
# CV_Line_t (LLVM LineNumberEntry): Offset, Flags (LineStart:24, DeltaLineEnd:7, IsStatement:1).
LINE_NUMBER_ENTRY = struct.Struct("<II")
# DEBUG_S_INLINEELINES opens with its signature (0 CV_INLINEE_SOURCE_LINE_SIGNATURE, 1 ..._EX).
INLINEE_LINES_SIGNATURE = struct.Struct("<I")
# InlineeSourceLine: Inlinee, FileID (offset of the file checksum record), SourceLineNum.
INLINEE_SOURCE_LINE = struct.Struct("<III")
# InlineeSourceLineEx then adds countOfExtraFiles and that many u32 file ids.
INLINEE_EXTRA_FILES = struct.Struct("<I")
# DEBUG_S_CROSSSCOPEEXPORTS entry (CrossModuleExport): Local, Global.
CROSS_MODULE_EXPORT = struct.Struct("<II")
# DEBUG_S_CROSSSCOPEIMPORTS entry (CrossModuleImport): ModuleNameOffset, Count (then Count u32 local ids).
CROSS_MODULE_IMPORT = struct.Struct("<II")


@dataclass
class _InlineSite:
    inlinee: int
    annotations: bytes
    parent: int  # index of the enclosing inline site in the proc's list, -1 for the proc


@dataclass
class _Proc:
    segment: int
    start: int
    length: int
    name: str
    sites: list[_InlineSite]


@dataclass
class _LineBlock:
    segment: int
    start: int
    length: int
    offsets: list[int]  # absolute section offsets, ascending
    lines: list[int]
    files: list[int]  # offsets into the file checksum subsection


@dataclass
class _ModuleData:
    procs: list[_Proc]
    proc_starts: list[tuple[int, int]]  # (segment, start) sorted, parallel to procs
    blocks: list[_LineBlock]
    checksums: dict[int, int]  # checksum-record offset -> /names offset
    inlinee_lines: dict[int, tuple[int, int]]  # inlinee id -> (checksum offset, first line)
    imports: list[tuple[int, list[int]]] = field(default_factory=list)  # (module name offset, local ids)
    exports: dict[int, int] = field(default_factory=dict)  # local id -> global IPI id


def _u32(data: bytes, at: int, what: str, path: str) -> int:
    if at < 0 or at + 4 > len(data):
        raise FormatError(f"{what} runs past its stream", path)
    return INLINEE_EXTRA_FILES.unpack_from(data, at)[0]


def _records(data: bytes, start: int, end: int, path: str, what: str):
    """Yield (offset, kind, record body) of CodeView symbol records in data[start:end]."""
    pos = start
    end = min(end, len(data))
    while pos + 4 <= end:
        reclen, kind = CV_RECORD_PREFIX.unpack_from(data, pos)
        if reclen < 2 or pos + 2 + reclen > end:
            raise FormatError(f"{what}: symbol record at {pos:#x} has a bad length {reclen}", path)
        yield pos, kind, data[pos + 4:pos + 2 + reclen]
        pos += 2 + reclen


def _name(body: bytes, at: int) -> str:
    return cstring(body, at).decode("utf-8", "replace") if at <= len(body) else ""


def _compressed(data: bytes, pos: int) -> tuple[int, int]:
    """A CodeView compressed unsigned integer (binary annotations): value, next pos."""
    if pos >= len(data):
        raise ValueError("annotation runs past its record")
    b0 = data[pos]
    if b0 & 0x80 == 0:
        return b0, pos + 1
    if b0 & 0xC0 == 0x80:
        if pos + 2 > len(data):
            raise ValueError("annotation runs past its record")
        return ((b0 & 0x3F) << 8) | data[pos + 1], pos + 2
    if b0 & 0xE0 == 0xC0:
        if pos + 4 > len(data):
            raise ValueError("annotation runs past its record")
        return ((b0 & 0x1F) << 24) | (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3], pos + 4
    raise ValueError("invalid compressed annotation value")


def _signed(value: int) -> int:
    return -(value >> 1) if value & 1 else value >> 1


def inline_ranges(annotations: bytes, first_line: int, first_file: int) -> list[tuple[int, int, int, int]]:
    """Code ranges of an inline site: ``(start, end, line, file)`` with offsets
    relative to the start of the enclosing procedure.

    Binary annotation opcodes (cvinfo.h BinaryAnnotationOpcode): 1 CodeOffset,
    2 ChangeCodeOffsetBase, 3 ChangeCodeOffset, 4 ChangeCodeLength, 5 ChangeFile,
    6 ChangeLineOffset, 7 ChangeLineEndDelta, 8 ChangeRangeKind, 9 ChangeColumnStart,
    10 ChangeColumnEndDelta, 11 ChangeCodeOffsetAndLineOffset,
    12 ChangeCodeLengthAndCodeOffset, 13 ChangeColumnEnd.  A code-offset change
    opens a range at the new offset with the current line.  ChangeCodeLength
    closes the open range and moves the offset to its end (LLVM's encoder
    measures the next delta from there); ChangeCodeLengthAndCodeOffset opens
    a range of the given length and leaves the offset at its start (MSVC's
    nested sites line up with their parents' ranges only when read that way).
    """
    ranges: list[list[int]] = []  # [start, end or -1, line, file]
    offset = 0
    line = first_line
    file = first_file
    pos = 0

    def open_range(at: int) -> None:
        if ranges and ranges[-1][1] < 0:
            ranges[-1][1] = at
        ranges.append([at, -1, line, file])

    try:
        while pos < len(annotations):
            op, pos = _compressed(annotations, pos)
            if op == 0:
                break  # padding
            if op == 1:  # CodeOffset: absolute
                offset, pos = _compressed(annotations, pos)
                open_range(offset)
            elif op == 2:  # ChangeCodeOffsetBase (segment-relative base): nothing to track
                _v, pos = _compressed(annotations, pos)
            elif op == 3:
                delta, pos = _compressed(annotations, pos)
                offset += delta
                open_range(offset)
            elif op == 4:
                length, pos = _compressed(annotations, pos)
                if ranges and ranges[-1][1] < 0:
                    ranges[-1][1] = ranges[-1][0] + length
                    offset = ranges[-1][1]
                else:
                    offset += length
            elif op == 5:
                file, pos = _compressed(annotations, pos)
            elif op == 6:
                delta, pos = _compressed(annotations, pos)
                line += _signed(delta)
            elif op in (7, 8, 9, 10, 13):
                _v, pos = _compressed(annotations, pos)
            elif op == 11:
                operand, pos = _compressed(annotations, pos)
                line += _signed(operand >> 4)
                offset += operand & 0xF
                open_range(offset)
            elif op == 12:
                length, pos = _compressed(annotations, pos)
                delta, pos = _compressed(annotations, pos)
                offset += delta
                open_range(offset)
                ranges[-1][1] = offset + length  # the offset stays at the range start
            else:
                break  # unknown opcode: keep what was decoded
    except ValueError:
        pass  # truncated annotations: keep the ranges decoded so far
    return [(s, e, ln, f) for s, e, ln, f in ranges if e > s]


class _TypeStream:
    """Random access to the records of the TPI or IPI stream by type index.

    The hash stream's index-offset buffer (pairs of type index and record
    offset, one every few KB) lets a lookup scan only a short stretch.
    """

    def __init__(self, msf: Msf, stream: int, path: str):
        self.msf = msf
        self.stream = stream
        self.path = path
        self.size = msf.stream_size(stream)
        self.ok = self.size >= 56
        self.begin = self.end = TYPE_INDEX_BEGIN
        self.header_size = 56
        self._data: bytes | None = None
        self._hints: list[tuple[int, int]] = []
        self._cache: dict[int, tuple[int, bytes] | None] = {}
        if not self.ok:
            return
        head = msf.read_stream(stream, 0, 56)
        (_ver, header_size, begin, end, rec_bytes, hash_stream, _aux, _key, _buckets,
         _hv_off, _hv_len, io_off, io_len, _adj_off, _adj_len) = TPI_STREAM_HEADER.unpack(head[:56])
        if header_size < 56 or header_size + rec_bytes > self.size or end < begin or begin < TYPE_INDEX_BEGIN:
            self.ok = False
            return
        self.header_size, self.begin, self.end, self.rec_bytes = header_size, begin, end, rec_bytes
        if hash_stream != NIL16 and io_len and io_len % 8 == 0 and io_off + io_len <= msf.stream_size(hash_stream):
            raw = msf.read_stream(hash_stream, io_off, io_len)
            pairs = [TYPE_INDEX_OFFSET.unpack_from(raw, i) for i in range(0, len(raw), 8)]
            if all(begin <= ti < end and off < rec_bytes for ti, off in pairs):
                self._hints = sorted(pairs)

    def _records(self) -> bytes:
        if self._data is None:
            self._data = self.msf.read_stream(self.stream, self.header_size, self.rec_bytes)
        return self._data

    def get(self, ti: int) -> tuple[int, bytes] | None:
        """(kind, body) of the record with type index ``ti``, None if absent or broken."""
        if not self.ok or not (self.begin <= ti < self.end):
            return None
        if ti in self._cache:
            return self._cache[ti]
        data = self._records()
        cur_ti, pos = self.begin, 0
        if self._hints:
            i = bisect.bisect_right(self._hints, (ti, 1 << 32)) - 1
            if i >= 0:
                cur_ti, pos = self._hints[i]
        result = None
        while pos + 4 <= len(data) and cur_ti <= ti:
            reclen, kind = CV_RECORD_PREFIX.unpack_from(data, pos)
            if reclen < 2 or pos + 2 + reclen > len(data):
                break
            if cur_ti == ti:
                result = (kind, data[pos + 4:pos + 2 + reclen])
                break
            pos += 2 + reclen
            cur_ti += 1
        if len(self._cache) < 65536:
            self._cache[ti] = result
        return result


def _numeric_leaf_size(body: bytes, at: int) -> int:
    """Bytes taken by a CodeView numeric leaf at ``at``."""
    if at + 2 > len(body):
        return 2
    (value,) = NUMERIC_LEAF.unpack_from(body, at)
    if value < 0x8000:
        return 2
    return 2 + {0x8000: 1, 0x8001: 2, 0x8002: 2, 0x8003: 4, 0x8004: 4, 0x8009: 8, 0x800A: 8}.get(value, 0)


def _type_name(tpi: _TypeStream, ti: int) -> str | None:
    rec = tpi.get(ti)
    if rec is None:
        return None
    kind, body = rec
    if kind in (LF_CLASS, LF_STRUCTURE, LF_INTERFACE):
        at = 16
    elif kind == LF_UNION:
        at = 8
    elif kind == LF_ENUM:
        return _name(body, 12)
    else:
        return None
    return _name(body, at + _numeric_leaf_size(body, at))


_malformed = malformed_is_format_error("PDB")


class PdbSymbolizer:
    """Symbolize RVAs with one PDB; parsed tables are kept for later lookups."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self._file = None
        self._open()

    @_malformed
    def _open(self) -> None:
        info = read_pdb(self.path)
        if info.kind != "pdb":
            raise FormatError(f"cannot symbolize with {article(info.kind)} file", self.path)
        self.debug_id = info.debug_id
        self._names_stream = info.named_streams.get("/names")
        self._file, self.msf = open_msf(self.path)
        try:
            self._read_dbi()
        except BaseException:
            self.close()
            raise
        self._publics: dict[int, tuple[list[int], list[str]]] | None = None
        self._modules_data: dict[int, _ModuleData] = {}
        self._names: bytes | None = None
        self._ipi: _TypeStream | None = None
        self._tpi: _TypeStream | None = None

    def close(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass

    def __enter__(self) -> "PdbSymbolizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- DBI ----------------------------------------------------------------
    def _stream(self, i: int, what: str) -> bytes:
        if i == NIL16 or i >= self.msf.num_streams:
            raise FormatError(f"{what}: stream {i} does not exist", self.path)
        return self.msf.read_stream(i)

    def _read_dbi(self) -> None:
        path = self.path
        dbi = read_dbi_header(self.msf)
        if dbi is None:
            raise FormatError("PDB has no DBI stream (or an unsupported pre-VC 7 one)", path)
        self.sym_record_stream = dbi.sym_record_stream
        self.modules = list(iter_modules(self.msf, dbi))
        self._parse_section_contribs(self.msf.read_stream(STREAM_DBI, *dbi.substream("section_contributions")))
        opt = self.msf.read_stream(STREAM_DBI, *dbi.substream("optional_debug_header"))
        self.sections: list[tuple[int, int]] = []  # (virtual address, size), section n at n-1
        slot = DEBUG_HEADER_SLOT.size * DBG_SECTION_HDR
        if len(opt) >= slot + DEBUG_HEADER_SLOT.size:
            (hdr_stream,) = DEBUG_HEADER_SLOT.unpack_from(opt, slot)
            if hdr_stream != NIL16:
                raw = self._stream(hdr_stream, "section header stream")
                for header in IMAGE_SECTION_HEADER.iter_unpack(raw[:len(raw) - len(raw) % IMAGE_SECTION_HEADER.size]):
                    _name, vsize, vaddr, raw_size = header[:4]
                    self.sections.append((vaddr, max(vsize, raw_size)))
        if not self.sections:
            raise FormatError("PDB has no section headers (cannot map addresses)", path)

    def _parse_section_contribs(self, data: bytes) -> None:
        self._sc_keys: list[tuple[int, int]] = []
        self._sc_vals: list[tuple[int, int]] = []  # (end offset, module)
        if len(data) < 4:
            return
        (version,) = SECTION_CONTRIB_VERSION.unpack_from(data, 0)
        if version not in (SC_V60, SC_V2):
            return
        entry = SECTION_CONTRIB_V2 if version == SC_V2 else SECTION_CONTRIB
        body = data[4:]
        items = []
        for fields in entry.iter_unpack(body[:len(body) - len(body) % entry.size]):
            section, _pad, offset, size, _characteristics, module = fields[:6]
            if size > 0 and module < len(self.modules):
                items.append(((section, offset), (offset + size, module)))
        items.sort()
        self._sc_keys = [k for k, _v in items]
        self._sc_vals = [v for _k, v in items]

    def rva_to_section(self, rva: int) -> tuple[int, int] | None:
        for i, (vaddr, size) in enumerate(self.sections):
            if vaddr <= rva < vaddr + size:
                return i + 1, rva - vaddr
        return None

    def _section_rva(self, section: int, offset: int) -> int:
        if 1 <= section <= len(self.sections):
            return self.sections[section - 1][0] + offset
        return offset

    def _module_for(self, section: int, offset: int) -> int | None:
        i = bisect.bisect_right(self._sc_keys, (section, offset)) - 1
        if i >= 0 and self._sc_keys[i][0] == section and offset < self._sc_vals[i][0]:
            return self._sc_vals[i][1]
        return None

    # -- strings, ids -------------------------------------------------------
    def _string(self, offset: int) -> str | None:
        if self._names is None:
            self._names = b""
            if self._names_stream is not None and self._names_stream < self.msf.num_streams:
                raw = self.msf.read_stream(self._names_stream)
                if len(raw) >= 12:
                    sig, _ver, size = NAMES_HEADER.unpack_from(raw, 0)
                    if sig == NAMES_SIGNATURE and 12 + size <= len(raw):
                        self._names = raw[12:12 + size]
        if 0 <= offset < len(self._names):
            return cstring(self._names, offset).decode("utf-8", "replace")
        return None

    def _global_id(self, data: _ModuleData, item: int) -> int | None:
        """The IPI id of an inlinee; cross-module ids (high bit set) go through the
        module's CROSSSCOPEIMPORTS to the exporting module's CROSSSCOPEEXPORTS."""
        if not item & CROSS_MODULE_ID:
            return item
        which, index = (item >> 20) & 0x7FF, item & 0xFFFFF
        if which >= len(data.imports) or index >= len(data.imports[which][1]):
            return None
        name_off, ids = data.imports[which]
        wanted = self._string(name_off)
        if not wanted:
            return None
        wanted = wanted.lower()
        for mod in self.modules:
            if mod.name.lower() == wanted or mod.obj_name.lower() == wanted:
                return self._module(mod.index).exports.get(ids[index])
        return None

    def _inlinee_name(self, item: int) -> str:
        if self._ipi is None:
            self._ipi = _TypeStream(self.msf, STREAM_IPI, self.path)
        rec = self._ipi.get(item)
        if rec is None:
            return f"<inlinee {item:#x}>"
        kind, body = rec
        if kind == LF_FUNC_ID and len(body) >= 8:
            scope, _ftype = LF_FUNC_ID_RECORD.unpack_from(body, 0)
            name = _name(body, 8)
            if scope:
                srec = self._ipi.get(scope)
                if srec is not None and srec[0] == LF_STRING_ID:
                    prefix = _name(srec[1], 4)
                    if prefix:
                        return f"{prefix}::{name}"
            return name
        if kind == LF_MFUNC_ID and len(body) >= 8:
            cls, _ftype = LF_MFUNC_ID_RECORD.unpack_from(body, 0)
            name = _name(body, 8)
            if self._tpi is None:
                self._tpi = _TypeStream(self.msf, STREAM_TPI, self.path)
            cls_name = _type_name(self._tpi, cls)
            return f"{cls_name}::{name}" if cls_name else name
        return f"<inlinee {item:#x}>"

    # -- publics ------------------------------------------------------------
    def _load_publics(self) -> dict[int, tuple[list[int], list[str]]]:
        if self._publics is None:
            by_section: dict[int, list[tuple[int, str]]] = {}
            if self.sym_record_stream != NIL16 and self.sym_record_stream < self.msf.num_streams:
                data = self.msf.read_stream(self.sym_record_stream)
                for _pos, kind, body in _records(data, 0, len(data), self.path, "symbol record stream"):
                    if kind == S_PUB32 and len(body) >= 10:
                        _flags, offset, segment = PUBSYM32.unpack_from(body, 0)
                        by_section.setdefault(segment, []).append((offset, _name(body, 10)))
            self._publics = {}
            for seg, items in by_section.items():
                items.sort()
                self._publics[seg] = ([o for o, _n in items], [n for _o, n in items])
        return self._publics

    def public_at(self, section: int, offset: int) -> tuple[str, int] | None:
        """The public symbol at or before section:offset, and the distance to it."""
        table = self._load_publics().get(section)
        if not table:
            return None
        i = bisect.bisect_right(table[0], offset) - 1
        if i < 0:
            return None
        return table[1][i], offset - table[0][i]

    # -- modules ------------------------------------------------------------
    @_malformed
    def compiler_at(self, rva: int) -> str | None:
        """The version string of the compiler that built the code at ``rva`` (its module's
        S_COMPILE3 record), or None."""
        loc = self.rva_to_section(rva)
        index = self._module_for(*loc) if loc is not None else None
        if index is None:
            return None
        mod = self.modules[index]
        if mod.stream == NIL16 or mod.stream >= self.msf.num_streams or mod.sym_bytes < 4:
            return None
        raw = self.msf.read_stream(mod.stream, 0, min(mod.sym_bytes, 4096))
        try:
            for k, (_pos, kind, body) in enumerate(_records(raw, 4, len(raw), self.path, f"module {mod.name!r}")):
                if kind == S_COMPILE3 and len(body) >= COMPILESYM3.size:
                    return _name(body, COMPILESYM3.size)
                if k >= COMPILE_RECORDS_SCANNED:
                    break
        except FormatError:
            pass  # a record cut by the 4 KiB read, or malformed: no version known
        return None

    def _module(self, index: int) -> _ModuleData:
        data = self._modules_data.get(index)
        if data is None:
            data = self._parse_module(self.modules[index])
            if len(self._modules_data) > 4096:
                self._modules_data.clear()  # bound memory on PDBs with huge module counts
            self._modules_data[index] = data
        return data

    def _parse_module(self, mod: ModuleInfo) -> _ModuleData:
        path = self.path
        empty = _ModuleData([], [], [], {}, {})
        if mod.stream == NIL16 or mod.stream >= self.msf.num_streams:
            return empty
        size = self.msf.stream_size(mod.stream)
        if mod.sym_bytes + mod.c11_bytes + mod.c13_bytes > size:
            raise FormatError(f"module {mod.name!r}: symbol and line sizes exceed its stream", path)
        raw = self.msf.read_stream(mod.stream, 0, mod.sym_bytes + mod.c11_bytes + mod.c13_bytes)
        procs = self._parse_module_symbols(raw, mod)
        c13 = raw[mod.sym_bytes + mod.c11_bytes:]
        blocks, checksums, inlinee_lines, imports, exports = self._parse_c13(c13, mod)
        procs.sort(key=lambda p: (p.segment, p.start))
        return _ModuleData(procs, [(p.segment, p.start) for p in procs], blocks, checksums, inlinee_lines,
                           imports, exports)

    def _parse_module_symbols(self, raw: bytes, mod: ModuleInfo) -> list[_Proc]:
        procs: list[_Proc] = []
        # Open scopes: ("proc", proc) / ("site", index in proc.sites) / ("other", None)
        stack: list[tuple[str, int]] = []
        current: _Proc | None = None
        if mod.sym_bytes < 4:
            return procs
        for _pos, kind, body in _records(raw, 4, mod.sym_bytes, self.path, f"module {mod.name!r}"):
            if kind in PROC_KINDS and len(body) >= 35:
                _parent, _end, _next, length, _ds, _de, _type, offset, segment = PROCSYM32.unpack_from(
                    body, 0)
                current = _Proc(segment, offset, length, _name(body, 35), [])
                procs.append(current)
                stack = [("proc", -1)]
            elif kind in (S_INLINESITE, S_INLINESITE2) and current is not None and len(body) >= 12:
                _parent, _end, inlinee = INLINESITESYM.unpack_from(body, 0)
                ann = body[16:] if kind == S_INLINESITE2 else body[12:]
                parent = next((i for k, i in reversed(stack) if k in ("site", "proc")), -1)
                current.sites.append(_InlineSite(inlinee, ann, parent))
                stack.append(("site", len(current.sites) - 1))
            elif kind in SCOPE_KINDS:
                stack.append(("other", -1))
            elif kind in END_KINDS:
                if stack:
                    stack.pop()
                if not stack:
                    current = None
            if len(stack) > MAX_SCOPE_DEPTH:
                raise FormatError(f"module {mod.name!r}: symbol scopes nest too deep", self.path)
        return procs

    def _parse_c13(self, data: bytes, mod: ModuleInfo):
        blocks: list[_LineBlock] = []
        checksums: dict[int, int] = {}
        inlinee_lines: dict[int, tuple[int, int]] = {}
        imports: list[tuple[int, list[int]]] = []
        exports: dict[int, int] = {}
        pos = 0
        while pos + 8 <= len(data):
            kind, length = C13_SUBSECTION.unpack_from(data, pos)
            body = data[pos + 8:pos + 8 + length]
            if len(body) != length:
                raise FormatError(f"module {mod.name!r}: C13 subsection runs past its stream", self.path)
            pos = (pos + 8 + length + 3) & ~3
            if kind & DEBUG_S_IGNORE:
                continue
            if kind == DEBUG_S_LINES:
                blocks.extend(self._parse_lines(body, mod))
            elif kind == DEBUG_S_FILECHKSMS:
                at = 0
                while at + 6 <= len(body):
                    name_off, cb, _ctype = C13_FILE_CHECKSUM.unpack_from(body, at)
                    checksums[at] = name_off
                    at = (at + 6 + cb + 3) & ~3
            elif kind == DEBUG_S_INLINEELINES and len(body) >= 4:
                (sig,) = INLINEE_LINES_SIGNATURE.unpack_from(body, 0)
                at = 4
                while at + 12 <= len(body):
                    inlinee, file_off, line = INLINEE_SOURCE_LINE.unpack_from(body, at)
                    inlinee_lines[inlinee] = (file_off, line)
                    at += 12
                    if sig == 1:  # extra files follow
                        extra = _u32(body, at, "inlinee lines", self.path)
                        if extra > (len(body) - at) // 4:
                            raise FormatError("inlinee lines: extra file count runs past the subsection", self.path)
                        at += 4 + 4 * extra
            elif kind == DEBUG_S_CROSSSCOPEEXPORTS:
                for at in range(0, len(body) - 7, 8):
                    local, global_id = CROSS_MODULE_EXPORT.unpack_from(body, at)
                    exports[local] = global_id
            elif kind == DEBUG_S_CROSSSCOPEIMPORTS:
                at = 0
                while at + 8 <= len(body):
                    name_off, count = CROSS_MODULE_IMPORT.unpack_from(body, at)
                    if count > (len(body) - at - 8) // 4:
                        raise FormatError("cross-scope imports: count runs past the subsection", self.path)
                    imports.append((name_off, list(struct.unpack_from(f"<{count}I", body, at + 8))))
                    at += 8 + 4 * count
        return blocks, checksums, inlinee_lines, imports, exports

    def _parse_lines(self, body: bytes, mod: ModuleInfo) -> list[_LineBlock]:
        if len(body) < 12:
            raise FormatError(f"module {mod.name!r}: truncated line table", self.path)
        start, segment, flags, length = LINE_FRAGMENT_HEADER.unpack_from(body, 0)
        has_columns = flags & 1
        out = []
        at = 12
        while at + 12 <= len(body):
            file_off, n, block_size = LINE_BLOCK_HEADER.unpack_from(body, at)
            per = 8 + (4 if has_columns else 0)
            if block_size < 12 or at + block_size > len(body) or 12 + n * per > block_size:
                raise FormatError(f"module {mod.name!r}: line block does not fit its table", self.path)
            offsets, lines = [], []
            for k in range(n):
                off, bits = LINE_NUMBER_ENTRY.unpack_from(body, at + 12 + 8 * k)
                offsets.append(start + off)
                lines.append(bits & 0xFFFFFF)
            out.append(_LineBlock(segment, start, length, offsets, lines, [file_off] * n))
            at += block_size
        return out

    def _file_name(self, data: _ModuleData, checksum_offset: int) -> str | None:
        name_off = data.checksums.get(checksum_offset)
        return self._string(name_off) if name_off is not None else None

    def _line_at(self, data: _ModuleData, section: int, offset: int) -> tuple[str | None, int | None]:
        best = None
        for block in data.blocks:
            if block.segment != section or not (block.start <= offset < block.start + max(block.length, 1)):
                continue
            i = bisect.bisect_right(block.offsets, offset) - 1
            if i >= 0 and (best is None or block.offsets[i] > best[0]):
                best = (block.offsets[i], block.lines[i], block.files[i])
        if best is None:
            return None, None
        line = best[1]
        return self._file_name(data, best[2]), (None if line in HIDDEN_LINES else line)

    def _find_proc(self, section: int, offset: int) -> tuple[int, _Proc] | None:
        mod = self._module_for(section, offset)
        candidates = [mod] if mod is not None else range(len(self.modules))
        for m in candidates:
            data = self._module(m)
            i = bisect.bisect_right(data.proc_starts, (section, offset)) - 1
            # Procedures do not overlap, but a zero-length one may precede the right one.
            while i >= 0 and data.procs[i].segment == section:
                proc = data.procs[i]
                if proc.start <= offset < proc.start + proc.length:
                    return m, proc
                if proc.start + proc.length <= offset and proc.length > 0:
                    break
                i -= 1
        return None

    # -- public API ---------------------------------------------------------
    @_malformed
    def symbolize(self, rva: int) -> Symbolized | None:
        """Function, file:line and inline frames at ``rva``; None when the RVA is
        outside every section."""
        loc = self.rva_to_section(rva)
        if loc is None:
            return None
        section, offset = loc
        result = Symbolized(rva, section, offset)
        public = self.public_at(section, offset)
        if public is not None:
            result.symbol, result.symbol_offset = public
        found = self._find_proc(section, offset)
        if found is None:
            if public is not None:
                result.frames.append(Frame(demangle(public[0])))
            return result
        mod_index, proc = found
        data = self._module(mod_index)
        result.module = self.modules[mod_index].name
        result.symbol_offset = offset - proc.start
        file, line = self._line_at(data, section, offset)
        frames = [Frame(proc.name, file, line)]
        # Inline sites whose ranges contain the address, outermost first.
        rel = offset - proc.start
        hit: dict[int, tuple[int, int]] = {}  # site index -> (line, file)
        for i, site in enumerate(proc.sites):
            if site.parent != -1 and site.parent not in hit:
                continue  # its parent does not contain the address (sites follow their parents)
            first_file, first_line = data.inlinee_lines.get(site.inlinee, (0, 0))
            for start, end, ln, fo in inline_ranges(site.annotations, first_line, first_file):
                if start <= rel < end:
                    hit[i] = (ln, fo)
                    break
        chain: list[int] = []
        if hit:
            # The deepest containing site, then its parents.
            node = max(hit, key=lambda k: self._depth(proc, k))
            while node != -1:
                chain.append(node)
                node = proc.sites[node].parent
        for node in chain:  # innermost first
            ln, fo = hit.get(node, (None, None))
            inlinee = proc.sites[node].inlinee
            global_id = self._global_id(data, inlinee)
            name = self._inlinee_name(global_id) if global_id is not None else f"<inlinee {inlinee:#x}>"
            frames.insert(len(frames) - 1, Frame(name,
                                                 self._file_name(data, fo) if fo is not None else None,
                                                 ln))
        result.frames = frames
        return result

    @staticmethod
    def _depth(proc: _Proc, index: int) -> int:
        depth = 0
        while index != -1 and depth <= MAX_SCOPE_DEPTH:
            index = proc.sites[index].parent
            depth += 1
        return depth


__all__ = ["PdbSymbolizer", "Symbolized", "Frame", "inline_ranges"]
