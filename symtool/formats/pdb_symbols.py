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
import sys
from array import array
from dataclasses import dataclass, field

from symtool.budgets import limit
from symtool.errors import FormatError
from symtool.formats.binio import cstring
from symtool.text import article
from symtool.formats.symbols import ADDRESS_END, Extent, Frame, Symbolized, malformed_is_format_error
from symtool.formats.pdb import (
    C13_FILE_CHECKSUM, C13_SUBSECTION, CV_RECORD_PREFIX, DEBUG_S_FILECHKSMS, DEBUG_S_INLINEELINES, DEBUG_S_LINES,
    END_KINDS, GSI_BITMAP_WORD, GSI_BITMAP_WORDS, GSI_BUCKET_UNIT, GSI_BUCKETS, GSI_HASH_HEADER, GSI_HASH_RECORD,
    GSI_HASH_SIGNATURE, GSI_HASH_VERSION, NAMES_HEADER, PROC_KINDS, PUBLICS_ADDR_ENTRY, PUBLICS_HEADER, S_COMPILE3,
    S_END, S_INLINESITE, S_INLINESITE2, S_LPROCREF, S_PROCREF, S_PUB32, SCOPE_KINDS, STREAM_DBI, STREAM_IPI,
    STREAM_TPI, TPI_STREAM_HEADER, ModuleInfo, Msf, iter_modules, open_msf, read_dbi_header, read_pdb,
)

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

# C13 debug subsections (DEBUG_S_LINES, DEBUG_S_FILECHKSMS and DEBUG_S_INLINEELINES: formats.pdb).
DEBUG_S_CROSSSCOPEEXPORTS = 0xF8
DEBUG_S_CROSSSCOPEIMPORTS = 0xF7
CROSS_MODULE_ID = 0x80000000
# Subsections a module index records where they lie (decoded on first use).
INDEXED_SUBSECTIONS = frozenset((DEBUG_S_FILECHKSMS, DEBUG_S_INLINEELINES, DEBUG_S_CROSSSCOPEEXPORTS,
                                 DEBUG_S_CROSSSCOPEIMPORTS))

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
# Caches of one symbolizer, bounded: they hold what lookups read, never a whole stream.
MAX_CACHED_STRINGS = 1 << 16
MAX_CACHED_PUBLIC_KEYS = 1 << 20  # address map probes: (segment, offset) each
MAX_CACHED_PROCS = 1 << 14  # parsed procedures (with their inline sites) per module
MAX_PUBLICS_AT_ONE_ADDRESS = 4096  # folded functions sharing an address, compared by name
MAX_CACHED_TYPE_CHUNKS = 1024  # stretches of TPI/IPI records between two index hints (a few KB each)
MAX_CACHED_INLINEES = 1 << 16  # inlinee names by IPI id
NAME_CHUNK = 256  # bytes of /names read at a time when looking for a name's end
RECORD_CHUNK = 4096  # the symbol record stream is read (and cached) this many bytes at a time
MAX_CACHED_RECORD_CHUNKS = 4096  # 4 MiB of it at most
MAX_BUCKET_RECORDS = 1 << 12  # globals sharing a name hash bucket (real PDBs: a few dozen); more: skim
MAX_NAME_GUESSES = 3  # names a public's procedure is looked up under in the globals
MAX_REFERENCE_HOPS = 16  # top-level records walked from a referenced procedure to the one covering
# The records that open or close a scope of a procedure's body (the others are stepped over).
STRUCTURAL_KINDS = frozenset(PROC_KINDS | SCOPE_KINDS | END_KINDS | {S_INLINESITE, S_INLINESITE2})
# Lookups answered through the globals in one module before its symbols are skimmed: a skim costs
# about as much as this many reference lookups, and then makes each later lookup there cheaper.
REFERENCE_LOOKUPS_BEFORE_SKIM = 24

# S_PUB32: PubSymFlags, Offset, Segment (then the name).
PUBSYM32 = struct.Struct("<IIH")
# S_PROCREF / S_LPROCREF (REFSYM2): SumName, ibSym (offset of the procedure record in its module's
# symbol stream), imod (module index plus one) (then the name).
REFSYM2 = struct.Struct("<IIH")
# The hash of a name in the GSI (LLVM's hashStringV1): its u32 words, then a u16 and a byte of the rest.
NAME_HASH_WORD = struct.Struct("<I")
NAME_HASH_HALF = struct.Struct("<H")
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
# The module skim reads a record's prefix with what follows in one go: a procedure record
# (CV_RECORD_PREFIX, then PROCSYM32), a DEBUG_S_LINES subsection (C13_SUBSECTION, then its header).
PROC_RECORD_HEAD = struct.Struct("<" + CV_RECORD_PREFIX.format.lstrip("<") + PROCSYM32.format.lstrip("<"))
C13_LINES_HEAD = struct.Struct("<" + C13_SUBSECTION.format.lstrip("<") + LINE_FRAGMENT_HEADER.format.lstrip("<"))
# The C13 skim reads C13_LINES_HEAD as u32 words: kind, length, RelocOffset, RelocSegment | Flags << 16,
# CodeSize.
U32_TYPECODE = next(t for t in "IL" if array(t).itemsize == 4)
LINES_START_WORD, LINES_SEGMENT_WORD, LINES_CODE_SIZE_WORD = 2, 3, 4
LINES_HEAD_WORDS = C13_LINES_HEAD.size // 4
# A record's prefix read as one little-endian u32: an S_END (RecordLen 2, RecordKind S_END) is PLAIN_S_END.
RECORD_WORD = struct.Struct("<I")
PLAIN_S_END = 2 | S_END << 16
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


class _InlineSite:
    """An S_INLINESITE of a procedure: the inlinee's id, its binary annotations, its parent.
    (Slotted classes, not dataclasses: one is made per site of every procedure looked up.)"""

    __slots__ = ("inlinee", "annotations", "parent", "ranges")

    def __init__(self, inlinee: int, annotations: bytes, parent: int):
        self.inlinee = inlinee
        self.annotations = annotations
        self.parent = parent  # index of the enclosing inline site in the proc's list, -1 for the proc
        self.ranges: list[tuple[int, int, int, int]] | None = None  # inline_ranges(), decoded on first use


class _Proc:
    """A procedure record (S_GPROC32...) and the inline sites nested in it, in stream order."""

    __slots__ = ("segment", "start", "length", "name", "sites")

    def __init__(self, segment: int, start: int, length: int, name: str, sites: list[_InlineSite]):
        self.segment, self.start, self.length, self.name, self.sites = segment, start, length, name, sites


@dataclass
class _LineBlock:
    """One file block of a DEBUG_S_LINES fragment: its rows' section offsets and lines."""

    segment: int
    start: int
    length: int
    offsets: list[int]  # absolute section offsets, ascending
    lines: list[int]
    files: list[int]  # offsets into the file checksum subsection


@dataclass
class _ModuleIndex:
    """What a skim of one module stream found: where each line fragment lies and (once its
    symbols are skimmed) each procedure's records, so that a lookup reads only the procedure
    and the fragments covering it.

    The C13 skim reads one 8-byte header per subsection; the symbol skim one record per
    top-level symbol (a procedure's pEnd leads past its body), and only when a lookup could
    not reach its procedure through the globals' S_PROCREF (or the module is looked up often).
    The file checksums, inlinee lines and cross-module ids are decoded on first use, and
    procedures' inline sites when asked for.
    """

    mod: ModuleInfo
    frag_keys: list[int]  # DEBUG_S_LINES fragments: segment << 32 | start, sorted
    frag_at: list[int]  # parallel: the word of c13_words where the fragment's subsection starts
    c13_words: memoryview | array  # the C13 data as u32 words (subsections are 4-byte aligned)
    longest_frag: int
    c13_start: int  # offset of the C13 data in the module stream
    subsections: dict[int, list[tuple[int, int]]]  # other DEBUG_S_* kind -> [(body offset, size)]
    proc_keys: list[tuple[int, int]] | None = None  # (segment, start) sorted; None until skimmed
    proc_spans: list[tuple[int, int, int]] | None = None  # parallel: (length, first record, its pEnd or -1)
    reference_lookups: int = 0  # procedures found through the globals before the symbol skim
    procs: dict[int, _Proc] = field(default_factory=dict)  # first record -> parsed procedure
    checksums: dict[int, int] | None = None  # checksum-record offset -> /names offset
    inlinee_lines: dict[int, tuple[int, int]] | None = None  # inlinee id -> (checksum offset, first line)
    imports: list[tuple[int, list[int]]] | None = None  # (module name offset, local ids)
    exports: dict[int, int] | None = None  # local id -> global IPI id

    def fragment(self, i: int) -> tuple[int, int, int]:
        """(covered length, body offset in the C13 data, body size) of fragment ``i``."""
        at = self.frag_at[i]
        words = self.c13_words
        return words[at + LINES_CODE_SIZE_WORD] or 1, 4 * at + C13_SUBSECTION.size, words[at + 1]


def _u32_words(data: bytes) -> memoryview | array:
    """``data`` (cut to whole words) as little-endian u32 words: a view of it on a little-endian
    machine (no copy: a module's C13 data can be megabytes), else a byte-swapped copy."""
    whole = memoryview(data)[:len(data) - len(data) % 4]
    if sys.byteorder == "little":
        return whole.cast(U32_TYPECODE)
    words = array(U32_TYPECODE, whole.tobytes())
    words.byteswap()
    return words


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
    # (Runs for every inline site of every procedure an address falls in: the opcodes and their
    # operands, nearly all one byte, are read inline; _compressed takes the longer forms.)
    ranges: list[list[int]] = []  # [start, end or -1, line, file]
    offset = 0
    line = first_line
    file = first_file
    data = annotations
    n = len(data)
    pos = 0
    try:
        while pos < n:
            op = data[pos]
            if op < 0x80:
                pos += 1
            else:
                op, pos = _compressed(data, pos)
            if op == 0 or op > 13:
                break  # padding, or an unknown opcode: keep what was decoded
            if pos >= n:
                break  # the operand runs past the record: keep the ranges decoded so far
            value = data[pos]
            if value < 0x80:
                pos += 1
            else:
                value, pos = _compressed(data, pos)
            if op == 11:  # ChangeCodeOffsetAndLineOffset: opens a range
                line += -(value >> 5) if value & 0x10 else value >> 5
                offset += value & 0xF
            elif op == 4:  # ChangeCodeLength: closes the open range
                if ranges and ranges[-1][1] < 0:
                    ranges[-1][1] = ranges[-1][0] + value
                    offset = ranges[-1][1]
                else:
                    offset += value
                continue
            elif op == 6:
                line += -(value >> 1) if value & 1 else value >> 1
                continue
            elif op == 5:
                file = value
                continue
            elif op == 3:
                offset += value
            elif op == 1:  # CodeOffset: absolute
                offset = value
            elif op == 12:  # ChangeCodeLengthAndCodeOffset: a range of that length at the new offset
                if pos >= n:
                    break
                delta = data[pos]
                if delta < 0x80:
                    pos += 1
                else:
                    delta, pos = _compressed(data, pos)
                offset += delta
                if ranges and ranges[-1][1] < 0:
                    ranges[-1][1] = offset
                ranges.append([offset, offset + value, line, file])  # the offset stays at its start
                continue
            else:  # 2 ChangeCodeOffsetBase, 7-10, 13: nothing to track
                continue
            # A code-offset change (1, 3, 11) opens a range at the new offset with the current line.
            if ranges and ranges[-1][1] < 0:
                ranges[-1][1] = offset
            ranges.append([offset, -1, line, file])
    except ValueError:
        pass  # a malformed compressed value: keep the ranges decoded so far
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
        # record offset of a hint -> (records up to the next hint, where each of them starts)
        self._chunks: dict[int, tuple[bytes, list[int]]] = {}
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

    @staticmethod
    def _index_stretch(data: bytes) -> tuple[bytes, list[int]]:
        """``data`` and the offset of each of its records, up to the first that does not fit."""
        starts: list[int] = []
        prefix, at, end = CV_RECORD_PREFIX.unpack_from, 0, len(data)
        while at + 4 <= end:
            reclen = prefix(data, at)[0]
            if reclen < 2 or at + 2 + reclen > end:
                break
            starts.append(at)
            at += 2 + reclen
        return data, starts

    def get(self, ti: int) -> tuple[int, bytes] | None:
        """(kind, body) of the record with type index ``ti``, None if absent or broken."""
        if not self.ok or not (self.begin <= ti < self.end):
            return None
        if ti in self._cache:
            return self._cache[ti]
        cur_ti, pos = self.begin, 0
        data = None
        result = None
        if self._hints:
            i = bisect.bisect_right(self._hints, (ti, 1 << 32)) - 1
            if i >= 0:
                cur_ti, pos = self._hints[i]
                stop = self._hints[i + 1][1] if i + 1 < len(self._hints) else self.rec_bytes
                if self._data is None and pos < stop:
                    # Only the stretch between two hints: its records end where the next hint's begins.
                    # Where each of its records starts is found once (the inlinees a module names are
                    # mostly neighbours there): a later record of the stretch is then one slice.
                    stretch = self._chunks.get(pos)
                    if stretch is None:
                        stretch = self._index_stretch(self.msf.read_stream(self.stream, self.header_size + pos,
                                                                           stop - pos))
                        if len(self._chunks) >= MAX_CACHED_TYPE_CHUNKS:
                            self._chunks.clear()
                        self._chunks[pos] = stretch
                    data, starts = stretch
                    k = ti - cur_ti
                    if k < len(starts):
                        at = starts[k]
                        reclen, kind = CV_RECORD_PREFIX.unpack_from(data, at)
                        result = (kind, data[at + 4:at + 2 + reclen])
                    if len(self._cache) < 65536:
                        self._cache[ti] = result
                    return result
        if data is None:
            data = self._records()
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


def hash_name_v1(name: bytes) -> int:
    """The GSI's hash of a symbol name (LLVM's hashStringV1, microsoft-pdb's HashPbCb): the xor
    of its little-endian u32 words, then of a u16 and a byte of what remains, folded."""
    whole = len(name) - len(name) % 4
    value = 0
    for (word,) in NAME_HASH_WORD.iter_unpack(name[:whole]):
        value ^= word
    rest = len(name) - whole
    if rest >= 2:
        value ^= NAME_HASH_HALF.unpack_from(name, whole)[0]
        whole += 2
    if rest % 2:
        value ^= name[whole]
    value |= 0x20202020  # case-insensitive, roughly
    value ^= value >> 11
    return (value ^ (value >> 16)) & 0xFFFFFFFF


class _StreamChunks:
    """A stream read RECORD_CHUNK bytes at a time and kept: the publics' address map (probed by
    binary search, whose first probes every lookup shares) and the symbol record stream (whose
    publics and globals those probes and name hash buckets read a few dozen bytes each)."""

    def __init__(self, msf: Msf, stream: int, path: str):
        self.msf, self.stream, self.path = msf, stream, path
        self.size = msf.stream_size(stream) if stream != NIL16 and stream < msf.num_streams else 0
        self._chunks: dict[int, bytes] = {}

    def chunk(self, k: int) -> bytes:
        """Bytes [k * RECORD_CHUNK, (k + 1) * RECORD_CHUNK) of the stream, clipped to it."""
        chunk = self._chunks.get(k)
        if chunk is None:
            chunk = self.msf.read_stream(self.stream, k * RECORD_CHUNK, RECORD_CHUNK)
            if len(self._chunks) >= MAX_CACHED_RECORD_CHUNKS:
                self._chunks.clear()
            self._chunks[k] = chunk
        return chunk

    def read(self, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length) of the stream, clipped to it."""
        end = min(offset + length, self.size)
        if offset < 0 or offset >= end:
            return b""
        first, last = offset // RECORD_CHUNK, (end - 1) // RECORD_CHUNK
        base = first * RECORD_CHUNK
        if first == last:
            return self.chunk(first)[offset - base:end - base]
        whole = b"".join(self.chunk(k) for k in range(first, last + 1))
        return whole[offset - base:end - base]

    def record(self, offset: int) -> tuple[int, bytes] | None:
        """(kind, body) of the record at ``offset``; None when it does not fit the stream."""
        head = self.read(offset, CV_RECORD_PREFIX.size)
        if len(head) < CV_RECORD_PREFIX.size:
            return None
        reclen, kind = CV_RECORD_PREFIX.unpack(head)
        if reclen < 2 or offset + 2 + reclen > self.size:
            return None
        return kind, self.read(offset + CV_RECORD_PREFIX.size, reclen - 2)


class _GlobalsHash:
    """The globals stream's name hash: the S_PROCREF / S_LPROCREF records of a name, each naming
    the module and the offset of the procedure record in its symbol stream.  Reads the header and
    the bucket part (a few KB) once, then per name one bucket's hash records and their symbols."""

    def __init__(self, msf: Msf, stream: int, records: _StreamChunks, path: str):
        self.msf, self.stream, self.records, self.path = msf, stream, records, path
        self.ok = False
        if stream == NIL16 or stream >= msf.num_streams or records.size == 0:
            return
        size = msf.stream_size(stream)
        head = msf.read_stream(stream, 0, GSI_HASH_HEADER.size)
        if len(head) < GSI_HASH_HEADER.size:
            return
        signature, version, hr_size, bucket_bytes = GSI_HASH_HEADER.unpack(head)
        bitmap_bytes = GSI_BITMAP_WORDS * GSI_BITMAP_WORD.size
        if (signature != GSI_HASH_SIGNATURE or version != GSI_HASH_VERSION or hr_size % GSI_HASH_RECORD.size
                or not bitmap_bytes <= bucket_bytes <= bitmap_bytes + GSI_BITMAP_WORD.size * (GSI_BUCKETS + 1)
                or GSI_HASH_HEADER.size + hr_size + bucket_bytes > size):
            return
        raw = msf.read_stream(stream, GSI_HASH_HEADER.size + hr_size, bucket_bytes)
        self.bitmap = [word for (word,) in GSI_BITMAP_WORD.iter_unpack(raw[:bitmap_bytes])]
        # Non-empty buckets before each bitmap word: a bucket's place among them is a count of bits.
        self.before, count = [], 0
        for word in self.bitmap:
            self.before.append(count)
            count += word.bit_count()
        if GSI_BITMAP_WORD.size * count != bucket_bytes - bitmap_bytes:
            return
        self.n_records = hr_size // GSI_HASH_RECORD.size
        self.starts = [v for (v,) in GSI_BITMAP_WORD.iter_unpack(raw[bitmap_bytes:])]
        self.ok = True

    def procedure_refs(self, name: bytes) -> list[tuple[int, int]] | None:
        """(module index, offset in its symbol stream) of each procedure reference named ``name``;
        None when the hash cannot answer (a bucket out of order or over MAX_BUCKET_RECORDS)."""
        if not self.ok:
            return None
        bucket = hash_name_v1(name) % GSI_BUCKETS
        word, bit = self.bitmap[bucket // 32], bucket % 32
        if not word >> bit & 1:
            return []
        k = self.before[bucket // 32] + (word & ((1 << bit) - 1)).bit_count()  # its place among the non-empty
        start = self.starts[k] // GSI_BUCKET_UNIT
        end = self.starts[k + 1] // GSI_BUCKET_UNIT if k + 1 < len(self.starts) else self.n_records
        if not start <= end <= self.n_records or end - start > MAX_BUCKET_RECORDS:
            return None
        raw = self.msf.read_stream(self.stream, GSI_HASH_HEADER.size + GSI_HASH_RECORD.size * start,
                                   GSI_HASH_RECORD.size * (end - start))
        out = []
        records, prefix = self.records, CV_RECORD_PREFIX.unpack_from
        cached, chunk_of = records._chunks.get, records.chunk
        name_at = CV_RECORD_PREFIX.size + REFSYM2.size
        name_end = name_at + len(name)
        # A bucket holds every global whose name hashes alike: the GSI's xor hash collides on names
        # that differ in a few characters (the benchmark's t<N>_func<M>: 55-100 records a lookup),
        # so the loop is kept lean: most records are other names, told apart within their chunk,
        # unparsed.
        for offset, _cref in GSI_HASH_RECORD.iter_unpack(raw[:len(raw) - len(raw) % GSI_HASH_RECORD.size]):
            at = offset - 1
            if at < 0:
                continue
            k, within = divmod(at, RECORD_CHUNK)
            chunk = cached(k) or chunk_of(k)
            if within + name_end <= len(chunk):
                if not chunk.startswith(name, within + name_at) or prefix(chunk, within)[1] not in (S_PROCREF, S_LPROCREF):
                    continue
            rec = records.record(at)
            if rec is None:
                continue
            kind, body = rec
            if kind in (S_PROCREF, S_LPROCREF) and len(body) > REFSYM2.size and cstring(body, REFSYM2.size) == name:
                _sum, sym_offset, module = REFSYM2.unpack_from(body, 0)
                if module > 0:
                    out.append((module - 1, sym_offset))
        return out


def _name_guesses(public: str) -> list[bytes]:
    """Names a procedure at a public symbol may carry in the globals: the public's own (C), its
    Rust demangling without the hash, a decorated C name undecorated (``_f``, ``_f@8``, ``@f@8``)
    and the scopes of a plain MSVC C++ name (``?f@ns@@...`` -> ``ns::f``).  Only a guess: the
    reference found must still hold a procedure covering the address."""
    out = [public]
    if public.startswith(("_ZN", "_R", "__ZN", "__R")):
        from symtool.demangle import demangle

        out.append(demangle(public))
    elif public.startswith("?") and not public.startswith("??") and "@@" in public:
        scopes = public[1:public.index("@@")].split("@")
        if all(scopes) and not any(c in "?$" for part in scopes for c in part):
            out.append("::".join(reversed(scopes)))
    elif public.startswith(("_", "@")):
        bare = public[1:]
        at = bare.rfind("@")
        if at > 0 and bare[at + 1:].isdigit():
            bare = bare[:at]
        out.append(bare)
    seen = []
    for name in out:
        raw = name.encode("utf-8", "replace")
        if raw and raw not in seen:
            seen.append(raw)
    return seen[:MAX_NAME_GUESSES]


_malformed = malformed_is_format_error("PDB")


class PdbSymbolizer:
    """Symbolize RVAs with one PDB; what was read is kept for later lookups.

    Work follows what is asked, not the PDB's size: the DBI stream's module infos, section
    contributions and section headers up front; per address, a binary search of the
    publics' address map, the public's S_PROCREF in the globals' name hash (which names the
    procedure's module and record), a skim of the C13 subsection headers of the one module
    that owns the address (cached), the records of the one procedure covering it, and the
    line fragments covering it.  Where the reference cannot prove its procedure is the one a
    skim of the module's symbols would find (no public, another name, another module, line
    fragments that do not single it out), or the module is looked up often, its symbols are
    skimmed as well: the answers are the same either way.
    """

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
        self._publics: dict[int, tuple[list[int], list[str]]] | None = None  # the whole-stream fallback
        self._addr_map: tuple[int, int] | None = None  # (offset in the publics stream, entries)
        self._addr_keys: dict[int, tuple[int, int]] = {}  # address map entry -> (segment, offset)
        self._modules_data: dict[int, _ModuleIndex] = {}
        self._names_size: int | None = None
        self._strings: dict[int, str | None] = {}
        self._ipi: _TypeStream | None = None
        self._tpi: _TypeStream | None = None
        self._inlinee_names: dict[int, str] = {}

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
        self.publics_stream = dbi.publics_stream
        self.globals_stream = dbi.globals_stream
        self._records = _StreamChunks(self.msf, dbi.sym_record_stream, path)
        self._publics_chunks = _StreamChunks(self.msf, dbi.publics_stream, path)
        self._globals: _GlobalsHash | None = None
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
        """The NUL-terminated string at ``offset`` of /names (read around it, not whole)."""
        if offset in self._strings:
            return self._strings[offset]
        stream = self._names_stream
        if self._names_size is None:
            self._names_size = 0
            if stream is not None and stream < self.msf.num_streams:
                head = self.msf.read_stream(stream, 0, NAMES_HEADER.size)
                if len(head) == NAMES_HEADER.size:
                    sig, _ver, size = NAMES_HEADER.unpack(head)
                    if sig == NAMES_SIGNATURE and NAMES_HEADER.size + size <= self.msf.stream_size(stream):
                        self._names_size = size
        result = None
        if 0 <= offset < self._names_size:
            out = b""
            at = offset
            while at < self._names_size:
                chunk = self.msf.read_stream(stream, NAMES_HEADER.size + at, min(NAME_CHUNK, self._names_size - at))
                cut = chunk.find(b"\0")
                if cut >= 0:
                    out += chunk[:cut]
                    break
                out += chunk
                at += len(chunk)
                if not chunk or len(out) > limit("PDB_NAME"):
                    break  # no name is this long: the rest of a hostile buffer is not read
            result = out.decode("utf-8", "replace")
        if len(self._strings) < MAX_CACHED_STRINGS:
            self._strings[offset] = result
        return result

    def _global_id(self, data: _ModuleIndex, item: int) -> int | None:
        """The IPI id of an inlinee; cross-module ids (high bit set) go through the
        module's CROSSSCOPEIMPORTS to the exporting module's CROSSSCOPEEXPORTS."""
        if not item & CROSS_MODULE_ID:
            return item
        imports = self._imports(data)
        which, index = (item >> 20) & 0x7FF, item & 0xFFFFF
        if which >= len(imports) or index >= len(imports[which][1]):
            return None
        name_off, ids = imports[which]
        wanted = self._string(name_off)
        if not wanted:
            return None
        wanted = wanted.lower()
        for mod in self.modules:
            if mod.name.lower() == wanted or mod.obj_name.lower() == wanted:
                return self._exports(self._module(mod.index)).get(ids[index])
        return None

    def _inlinee_name(self, item: int) -> str:
        name = self._inlinee_names.get(item)
        if name is None:
            name = self._read_inlinee_name(item)
            if len(self._inlinee_names) < MAX_CACHED_INLINEES:
                self._inlinee_names[item] = name
        return name

    def _read_inlinee_name(self, item: int) -> str:
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
        """Every S_PUB32 of the symbol record stream by section: the fallback for PDBs whose
        publics address map is missing or unusable."""
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

    def _address_map(self) -> tuple[int, int] | None:
        """(offset in the publics stream, entry count) of its address map; None when absent or
        inconsistent (then the publics are read whole)."""
        if self._addr_map is None:
            self._addr_map = (0, -1)
            ps, sr = self.publics_stream, self.sym_record_stream
            n = self.msf.num_streams
            if ps != NIL16 and ps < n and sr != NIL16 and sr < n:
                size = self.msf.stream_size(ps)
                head = self.msf.read_stream(ps, 0, PUBLICS_HEADER.size)
                if len(head) == PUBLICS_HEADER.size:
                    sym_hash, addr_bytes = PUBLICS_HEADER.unpack(head)[:2]
                    at = PUBLICS_HEADER.size + sym_hash
                    if addr_bytes % PUBLICS_ADDR_ENTRY.size == 0 and at + addr_bytes <= size:
                        self._addr_map = (at, addr_bytes // PUBLICS_ADDR_ENTRY.size)
        return None if self._addr_map[1] < 0 else self._addr_map

    def _public_record(self, index: int, with_name: bool) -> tuple[int, int, str]:
        """(segment, offset, name or "") of address map entry ``index``; raises _NoAddressMap
        when the entry is not an S_PUB32 inside the symbol record stream."""
        at, _n = self._addr_map
        raw = self._publics_chunks.read(at + PUBLICS_ADDR_ENTRY.size * index, PUBLICS_ADDR_ENTRY.size)
        if len(raw) < PUBLICS_ADDR_ENTRY.size:
            raise _NoAddressMap
        (rec,) = PUBLICS_ADDR_ENTRY.unpack(raw)
        head = self._records.read(rec, CV_RECORD_PREFIX.size + PUBSYM32.size)
        if len(head) < CV_RECORD_PREFIX.size + PUBSYM32.size:
            raise _NoAddressMap
        reclen, kind = CV_RECORD_PREFIX.unpack_from(head, 0)
        if kind != S_PUB32 or reclen < 2 + PUBSYM32.size:
            raise _NoAddressMap
        _flags, offset, segment = PUBSYM32.unpack_from(head, CV_RECORD_PREFIX.size)
        name = ""
        if with_name:
            body = self._records.read(rec + CV_RECORD_PREFIX.size, reclen - 2)
            name = _name(body, PUBSYM32.size)
        return segment, offset, name

    def _public_key(self, index: int) -> tuple[int, int]:
        key = self._addr_keys.get(index)
        if key is None:
            key = self._public_record(index, False)[:2]
            if len(self._addr_keys) < MAX_CACHED_PUBLIC_KEYS:
                self._addr_keys[index] = key
        return key

    def _public_by_address_map(self, section: int, offset: int, extent: Extent) -> tuple[str, int] | None:
        _at, n = self._addr_map
        lo, hi = 0, n  # the first entry after (section, offset)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._public_key(mid) <= (section, offset):
                lo = mid + 1
            else:
                hi = mid
        i = lo - 1
        if i + 1 < n:
            seg, at = self._public_key(i + 1)
            extent.clip(0, at if seg == section else ADDRESS_END)
        if i < 0:
            return None
        seg, at = self._public_key(i)
        if seg != section:
            return None
        extent.clip(at, ADDRESS_END)
        # Several publics at one address (folded functions): the greatest name, as a sort of
        # (offset, name) pairs would put last.
        best = self._public_record(i, True)[2]
        k = i - 1
        while k >= 0 and i - k <= MAX_PUBLICS_AT_ONE_ADDRESS and self._public_key(k) == (seg, at):
            best = max(best, self._public_record(k, True)[2])
            k -= 1
        return best, offset - at

    def public_at(self, section: int, offset: int, extent: Extent | None = None) -> tuple[str, int] | None:
        """The public symbol at or before section:offset, and the distance to it (``extent``
        narrowed to the section offsets where that symbol is the answer)."""
        if extent is None:
            extent = Extent()
        if self._publics is None and self._address_map() is not None:
            try:
                return self._public_by_address_map(section, offset, extent)
            except _NoAddressMap:
                self._addr_map = (0, -1)
        table = self._load_publics().get(section)
        if not table:
            return None
        i = bisect.bisect_right(table[0], offset) - 1
        if i + 1 < len(table[0]):
            extent.clip(0, table[0][i + 1])
        if i < 0:
            return None
        extent.clip(table[0][i], ADDRESS_END)
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

    def _module(self, index: int) -> _ModuleIndex:
        """Module ``index``'s line fragments and subsections (its C13 headers skimmed once)."""
        data = self._modules_data.get(index)
        if data is None:
            data = self._index_module(self.modules[index])
            if len(self._modules_data) > 4096:
                self._modules_data.clear()  # bound memory on PDBs with huge module counts
            self._modules_data[index] = data
        return data

    def _index_module(self, mod: ModuleInfo) -> _ModuleIndex:
        path = self.path
        c13_start = mod.sym_bytes + mod.c11_bytes
        if mod.stream == NIL16 or mod.stream >= self.msf.num_streams:
            return _ModuleIndex(mod, [], [], _u32_words(b""), 0, c13_start, {}, [], [])
        size = self.msf.stream_size(mod.stream)
        if mod.sym_bytes + mod.c11_bytes + mod.c13_bytes > size:
            raise FormatError(f"module {mod.name!r}: symbol and line sizes exceed its stream", path)
        return self._skim_c13(mod, c13_start)

    def _module_procs(self, index: int) -> _ModuleIndex:
        """Module ``index``'s index with its procedures (its symbols skimmed once)."""
        data = self._module(index)
        if data.proc_keys is None:
            mod = data.mod
            keys, spans = self._skim_symbols(mod) if mod.sym_bytes >= 4 else ([], [])
            data.proc_keys, data.proc_spans = _sorted_by_key(keys, spans)
        return data

    def _skim_symbols(self, mod: ModuleInfo) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]]]:
        """(segment, start) and (length, first record, pEnd or -1) of each procedure, reading the
        top-level records only: a procedure's pEnd names its S_END, past its body (a pEnd that
        does not lead forward is -1: the records are walked by scope when the procedure is read)."""
        what = f"module {mod.name!r}"
        data = self.msf.read_stream(mod.stream, 0, mod.sym_bytes)
        end = len(data)
        keys: list[tuple[int, int]] = []
        spans: list[tuple[int, int, int]] = []
        add_key, add_span = keys.append, spans.append
        pos = 4
        prefix = CV_RECORD_PREFIX.unpack_from
        proc_head = PROC_RECORD_HEAD.unpack_from
        word = RECORD_WORD.unpack_from
        proc_kinds = PROC_KINDS
        while pos + 4 <= end:
            reclen, kind = prefix(data, pos)
            nxt = pos + 2 + reclen
            if reclen < 2 or nxt > end:
                raise FormatError(f"{what}: symbol record at {pos:#x} has a bad length {reclen}", self.path)
            if kind in proc_kinds and reclen >= 2 + 35:
                _reclen, _kind, _parent, p_end, _next, length, _ds, _de, _type, offset, segment = proc_head(data, pos)
                if nxt <= p_end and p_end + 4 <= end:
                    add_key((segment, offset))
                    add_span((length, pos, p_end))
                    # Past the (4-byte) S_END when pEnd names one, else on from pEnd record by record.
                    pos = p_end + 4 if word(data, p_end)[0] == PLAIN_S_END else p_end
                    continue
                stop = self._scope_end(data, nxt, end, what)
                add_key((segment, offset))
                add_span((length, pos, -1))
                pos = stop
            else:
                pos = nxt
        return keys, spans

    def _proc_records_end(self, mod: ModuleInfo, first: int, p_end: int) -> int:
        """Where the records of the procedure at ``first`` end: past the S_END its pEnd names, or
        (a pEnd that names no end record) where a walk of its scopes ends."""
        what = f"module {mod.name!r}"
        if p_end >= 0:
            head = self.msf.read_stream(mod.stream, p_end, CV_RECORD_PREFIX.size)
            if len(head) == CV_RECORD_PREFIX.size:
                end_len, end_kind = CV_RECORD_PREFIX.unpack(head)
                if end_kind in END_KINDS and end_len >= 2 and p_end + 2 + end_len <= mod.sym_bytes:
                    return p_end + 2 + end_len
        data = self.msf.read_stream(mod.stream, 0, mod.sym_bytes)
        reclen, _kind = CV_RECORD_PREFIX.unpack_from(data, first)
        return self._scope_end(data, first + 2 + reclen, len(data), what)

    def _scope_end(self, data: bytes, pos: int, end: int, what: str) -> int:
        """Where the records of a procedure whose pEnd is unusable end: past the S_END that closes
        it, or at the next procedure (as a nested one would start over), or at the stream's end."""
        depth = 1
        for at, kind, _body in _records(data, pos, end, self.path, what):
            if kind in PROC_KINDS:
                return at
            if kind in (S_INLINESITE, S_INLINESITE2) or kind in SCOPE_KINDS:
                depth += 1
                if depth > MAX_SCOPE_DEPTH:
                    raise FormatError(f"{what}: symbol scopes nest too deep", self.path)
            elif kind in END_KINDS:
                depth -= 1
                if depth == 0:
                    return at + 2 + CV_RECORD_PREFIX.unpack_from(data, at)[0]
        return end

    def _skim_c13(self, mod: ModuleInfo, c13_start: int) -> _ModuleIndex:
        """The module's index of its DEBUG_S_LINES fragments (from each one's header: segment,
        start, covered length), the longest one's length, and where the other subsections lie,
        from the subsection headers (one loop over every subsection of the module: kept lean)."""
        what = f"module {mod.name!r}"
        data = self.msf.read_stream(mod.stream, c13_start, mod.c13_bytes) if mod.c13_bytes > 0 else b""
        words = _u32_words(data)
        subsections: dict[int, list[tuple[int, int]]] = {}
        size = len(data)
        n = len(words)
        lines: list[int] = []  # the words where DEBUG_S_LINES subsections start
        keys: list[int] = []  # parallel: segment << 32 | start
        add_lines, add_key = lines.append, keys.append
        # Locals: this loop runs once per subsection of every module a lookup touches.
        lines_kind, indexed, head, shortest = DEBUG_S_LINES, INDEXED_SUBSECTIONS, C13_SUBSECTION.size, LINE_FRAGMENT_HEADER.size
        start_word, segment_word, longest = LINES_START_WORD, LINES_SEGMENT_WORD, 0
        at = reach = 0
        last = n - LINES_HEAD_WORDS  # the last word a fragment's header may start at
        while at + 2 <= n:
            kind = words[at]
            length = words[at + 1]
            if kind == lines_kind:
                if length < shortest or at > last:
                    raise FormatError(f"{what}: truncated line table", self.path)
                add_lines(at)
                add_key((words[at + segment_word] & 0xFFFF) << 32 | words[at + start_word])
            elif kind in indexed:
                subsections.setdefault(kind, []).append((4 * at + head, length))
            reach = 4 * at + head + length
            at = (reach + 3) >> 2
        if reach > size:  # only the last subsection read can run past: the walk ends there
            raise FormatError(f"{what}: C13 subsection runs past its stream", self.path)
        if keys != sorted(keys):  # compilers emit them in address order; equal keys keep stream order
            order = sorted(range(len(keys)), key=keys.__getitem__)
            keys, lines = [keys[k] for k in order], [lines[k] for k in order]
        if lines:  # a fragment covers one byte at least
            longest = max(1, max(words[k + LINES_CODE_SIZE_WORD] for k in lines))
        return _ModuleIndex(mod, keys, lines, words, longest, c13_start, subsections)

    def _subsection_bodies(self, data: _ModuleIndex, mod: ModuleInfo, kind: int):
        for body, length in data.subsections.get(kind, ()):
            yield self.msf.read_stream(mod.stream, data.c13_start + body, length)

    def _checksums(self, data: _ModuleIndex, mod: ModuleInfo) -> dict[int, int]:
        if data.checksums is None:
            data.checksums = {}
            for body in self._subsection_bodies(data, mod, DEBUG_S_FILECHKSMS):
                at = 0
                while at + 6 <= len(body):
                    name_off, cb, _ctype = C13_FILE_CHECKSUM.unpack_from(body, at)
                    data.checksums[at] = name_off
                    at = (at + 6 + cb + 3) & ~3
        return data.checksums

    def _inlinee_lines(self, data: _ModuleIndex, mod: ModuleInfo) -> dict[int, tuple[int, int]]:
        if data.inlinee_lines is None:
            data.inlinee_lines = {}
            for body in self._subsection_bodies(data, mod, DEBUG_S_INLINEELINES):
                if len(body) < 4:
                    continue
                (sig,) = INLINEE_LINES_SIGNATURE.unpack_from(body, 0)
                at = 4
                if sig != 1:
                    usable = (len(body) - at) // INLINEE_SOURCE_LINE.size * INLINEE_SOURCE_LINE.size
                    for inlinee, file_off, line in INLINEE_SOURCE_LINE.iter_unpack(body[at:at + usable]):
                        data.inlinee_lines[inlinee] = (file_off, line)
                    continue
                while at + 12 <= len(body):
                    inlinee, file_off, line = INLINEE_SOURCE_LINE.unpack_from(body, at)
                    data.inlinee_lines[inlinee] = (file_off, line)
                    at += 12
                    extra = _u32(body, at, "inlinee lines", self.path)
                    if extra > (len(body) - at) // 4:
                        raise FormatError("inlinee lines: extra file count runs past the subsection", self.path)
                    at += 4 + 4 * extra
        return data.inlinee_lines

    def _imports(self, data: _ModuleIndex) -> list[tuple[int, list[int]]]:
        if data.imports is None:
            data.imports = []
            for body in self._subsection_bodies(data, data.mod, DEBUG_S_CROSSSCOPEIMPORTS):
                at = 0
                while at + 8 <= len(body):
                    name_off, count = CROSS_MODULE_IMPORT.unpack_from(body, at)
                    if count > (len(body) - at - 8) // 4:
                        raise FormatError("cross-scope imports: count runs past the subsection", self.path)
                    data.imports.append((name_off, list(struct.unpack_from(f"<{count}I", body, at + 8))))
                    at += 8 + 4 * count
        return data.imports

    def _exports(self, data: _ModuleIndex) -> dict[int, int]:
        if data.exports is None:
            data.exports = {}
            for body in self._subsection_bodies(data, data.mod, DEBUG_S_CROSSSCOPEEXPORTS):
                for at in range(0, len(body) - 7, 8):
                    local, global_id = CROSS_MODULE_EXPORT.unpack_from(body, at)
                    data.exports[local] = global_id
        return data.exports

    def _proc(self, data: _ModuleIndex, mod: ModuleInfo, k: int) -> _Proc:
        """The procedure ``k`` of the module's index, its records (and inline sites) read."""
        length, first, p_end = data.proc_spans[k]
        return self._proc_at(data, mod, first, p_end, (*data.proc_keys[k], length))

    def _proc_at(self, data: _ModuleIndex, mod: ModuleInfo, first: int, p_end: int,
                 key: tuple[int, int, int]) -> _Proc:
        """The procedure whose record is at ``first`` (``p_end`` as the skim keeps it), its records
        (and inline sites) read; ``key`` is its (segment, start, length)."""
        proc = data.procs.get(first)
        if proc is None:
            raw = None
            if first < p_end and p_end + CV_RECORD_PREFIX.size <= mod.sym_bytes:
                # The records and the end record pEnd names in one read: when that is a bare end
                # record (S_END, S_PROC_ID_END: no body), they are the procedure's.
                raw = self.msf.read_stream(mod.stream, first, p_end + CV_RECORD_PREFIX.size - first)
                end_len, end_kind = CV_RECORD_PREFIX.unpack_from(raw, p_end - first)
                if end_len != 2 or end_kind not in END_KINDS:
                    raw = None
            if raw is None:
                stop = self._proc_records_end(mod, first, p_end)
                raw = self.msf.read_stream(mod.stream, first, stop - first)
            procs = self._parse_module_symbols(raw, 0, len(raw), mod)
            proc = procs[0] if procs else _Proc(*key, "", [])
            if len(data.procs) >= MAX_CACHED_PROCS:
                data.procs.clear()
            data.procs[first] = proc
        return proc

    def _proc_by_reference(self, m: int, section: int, offset: int, public: str) -> _Proc | None:
        """The procedure of module ``m`` covering section:offset, reached through the globals'
        S_PROCREF / S_LPROCREF of the public before the address without skimming the module's
        symbols; None when that cannot be proved (then the module is skimmed).

        A reference proves its procedure when the record it names is a procedure of this module
        covering the address and the module's line fragments hold exactly one fragment in the
        procedure's range, starting at its start: a second procedure there (functions folded to
        one address by ICF, a nested or overlapping record) would bring a fragment of its own,
        so a skim could find no other procedure covering the address.  What this takes on trust:
        that a procedure without any line fragment does not overlap another, as compilers and
        linkers emit them (tests/test_pdb_references.py checks the two ways agree on MSVC,
        clang and rustc PDBs)."""
        if self._globals is None:
            self._globals = _GlobalsHash(self.msf, self.globals_stream, self._records, self.path)
        mod = self.modules[m]
        if mod.stream == NIL16 or mod.stream >= self.msf.num_streams or mod.sym_bytes < 4:
            return None
        data = self._module(m)  # its sizes checked against its stream; a fallback skims it too
        for name in _name_guesses(public):
            refs = self._globals.procedure_refs(name)
            if refs is None:
                return None
            for ref_module, first in refs:
                if ref_module != m or first < 4:
                    continue
                found = self._proc_from(mod, first, section, offset)
                if found is None:
                    continue
                first, p_end, start, length = found
                if not self._lines_single_out(data, section, start, length):
                    return None
                return self._proc_at(data, mod, first, p_end, (section, start, length))
        return None

    def _proc_from(self, mod: ModuleInfo, first: int, section: int,
                   offset: int) -> tuple[int, int, int, int] | None:
        """(record offset, pEnd as the skim keeps it, start, length) of the procedure covering
        section:offset among the top-level records from the procedure record at ``first`` on, hopping
        as the skim does (a procedure's pEnd past its body) at most MAX_REFERENCE_HOPS records: a
        function without a public (a static, or a Rust function the linker made local) follows the
        one whose public precedes it.  None when the record at ``first`` is no procedure, a pEnd is
        unusable, or no procedure within reach covers the address."""
        pos = first
        for _hop in range(MAX_REFERENCE_HOPS):
            if pos + CV_RECORD_PREFIX.size > mod.sym_bytes:
                return None
            head = self.msf.read_stream(mod.stream, pos, min(PROC_RECORD_HEAD.size, mod.sym_bytes - pos))
            if len(head) < CV_RECORD_PREFIX.size:
                return None
            reclen, kind = CV_RECORD_PREFIX.unpack_from(head, 0)
            nxt = pos + 2 + reclen
            if reclen < 2 or nxt > mod.sym_bytes:
                return None
            if kind not in PROC_KINDS or reclen < 2 + PROCSYM32.size:
                if pos == first:
                    return None  # the reference names no procedure
                pos = nxt  # another top-level record: the skim steps over it
                continue
            (_reclen, _kind, _parent, p_end, _next, length, _ds, _de, _type, start,
             segment) = PROC_RECORD_HEAD.unpack(head)
            if not (nxt <= p_end and p_end + 4 <= mod.sym_bytes):
                return None  # the skim walks such a procedure by scope: left to it
            if segment == section and start <= offset < start + length:
                return pos, p_end, start, length
            end_word = self.msf.read_stream(mod.stream, p_end, RECORD_WORD.size)
            pos = p_end + 4 if RECORD_WORD.unpack(end_word)[0] == PLAIN_S_END else p_end
        return None

    @staticmethod
    def _lines_single_out(data: _ModuleIndex, section: int, start: int, length: int) -> bool:
        """Is exactly one of the module's line fragments in [start, start + length), starting at
        ``start``?"""
        keys = data.frag_keys
        key = section << 32 | start
        i = bisect.bisect_left(keys, key)
        if i >= len(keys) or keys[i] != key:
            return False
        if i + 1 < len(keys) and keys[i + 1] < key + length:
            return False  # a second fragment starts there (or at the same place)
        j = i - 1
        while j >= 0 and keys[j] >> 32 == section and (keys[j] & 0xFFFFFFFF) + data.longest_frag > start:
            if (keys[j] & 0xFFFFFFFF) + data.fragment(j)[0] > start:
                return False  # an earlier fragment reaches into it
            j -= 1
        return True

    def _parse_module_symbols(self, raw: bytes, start: int, end: int, mod: ModuleInfo) -> list[_Proc]:
        procs: list[_Proc] = []
        # The enclosing inline site (index in current.sites) or procedure (-1) of each open scope,
        # innermost last: a scope that is neither repeats the one around it.
        enclosing: list[int] = []
        current: _Proc | None = None
        # The records walked here rather than by _records: a procedure's records are mostly locals
        # and def-ranges (46 of the 65 records of a benchmark procedure), skipped by their prefix
        # and one set lookup (this runs once per procedure looked up).
        prefix = CV_RECORD_PREFIX.unpack_from
        proc_kinds, site_kinds, scope_kinds, end_kinds = PROC_KINDS, (S_INLINESITE, S_INLINESITE2), SCOPE_KINDS, END_KINDS
        structural = STRUCTURAL_KINDS
        end = min(end, len(raw))
        pos = start
        while pos + 4 <= end:
            reclen, kind = prefix(raw, pos)
            nxt = pos + 2 + reclen
            if reclen < 2 or nxt > end:
                raise FormatError(f"module {mod.name!r}: symbol record at {pos:#x} has a bad length {reclen}", self.path)
            if kind not in structural:
                pos = nxt
                continue
            if kind in proc_kinds and reclen - 2 >= 35:
                body = raw[pos + 4:nxt]
                _parent, _end, _next, length, _ds, _de, _type, offset, segment = PROCSYM32.unpack_from(body, 0)
                current = _Proc(segment, offset, length, _name(body, 35), [])
                procs.append(current)
                enclosing = [-1]
            elif kind in site_kinds and current is not None and reclen - 2 >= 12:
                _parent, _end, inlinee = INLINESITESYM.unpack_from(raw, pos + 4)
                ann = raw[pos + 4 + (16 if kind == S_INLINESITE2 else 12):nxt]
                current.sites.append(_InlineSite(inlinee, ann, enclosing[-1] if enclosing else -1))
                enclosing.append(len(current.sites) - 1)
            elif kind in scope_kinds:
                enclosing.append(enclosing[-1] if enclosing else -1)
            elif kind in end_kinds:
                if enclosing:
                    enclosing.pop()
                if not enclosing:
                    current = None
            if len(enclosing) > MAX_SCOPE_DEPTH:
                raise FormatError(f"module {mod.name!r}: symbol scopes nest too deep", self.path)
            pos = nxt
        return procs

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
            for off, bits in LINE_NUMBER_ENTRY.iter_unpack(body[at + 12:at + 12 + 8 * n]):
                offsets.append(start + off)
                lines.append(bits & 0xFFFFFF)
            out.append(_LineBlock(segment, start, length, offsets, lines, [file_off] * n))
            at += block_size
        return out

    def _file_name(self, data: _ModuleIndex, mod: ModuleInfo, checksum_offset: int) -> str | None:
        name_off = self._checksums(data, mod).get(checksum_offset)
        return self._string(name_off) if name_off is not None else None

    def _line_at(self, data: _ModuleIndex, mod: ModuleInfo, section: int,
                 offset: int, extent: Extent) -> tuple[str | None, int | None]:
        """File and line at section:offset; ``extent`` narrowed to the offsets where the same
        fragments cover it and every block's row is the same."""
        # The fragments covering the offset, in stream order (the first of equal candidates wins).
        keys = data.frag_keys
        i = bisect.bisect_right(keys, section << 32 | offset) - 1
        if i + 1 < len(keys):  # a fragment starting further on
            seg, start = keys[i + 1] >> 32, keys[i + 1] & 0xFFFFFFFF
            extent.clip(0, start if seg == section else ADDRESS_END)
        covering = []
        while i >= 0:
            seg, start = keys[i] >> 32, keys[i] & 0xFFFFFFFF
            if seg != section:
                break
            if start + data.longest_frag <= offset:
                extent.clip(start + data.longest_frag, ADDRESS_END)  # no fragment from here on reaches
                break
            length, body, size = data.fragment(i)
            if offset < start + length:
                covering.append((body, size))
                extent.clip(start, start + length)
            else:
                extent.clip(start + length, ADDRESS_END)
            i -= 1
        best = None
        for body, size in sorted(covering):
            raw = self.msf.read_stream(mod.stream, data.c13_start + body, size)
            for block in self._parse_lines(raw, mod):
                k = bisect.bisect_right(block.offsets, offset) - 1
                extent.clip(block.offsets[k] if k >= 0 else 0,
                            block.offsets[k + 1] if k + 1 < len(block.offsets) else ADDRESS_END)
                if k >= 0 and (best is None or block.offsets[k] > best[0]):
                    best = (block.offsets[k], block.lines[k], block.files[k])
        if best is None:
            return None, None
        line = best[1]
        return self._file_name(data, mod, best[2]), (None if line in HIDDEN_LINES else line)

    def _module_cell(self, section: int, offset: int, extent: Extent) -> None:
        """Narrow ``extent`` to where _module_for gives its answer for section:offset."""
        i = bisect.bisect_right(self._sc_keys, (section, offset)) - 1
        if i + 1 < len(self._sc_keys) and self._sc_keys[i + 1][0] == section:
            extent.clip(0, self._sc_keys[i + 1][1])
        if i >= 0 and self._sc_keys[i][0] == section:
            start, end = self._sc_keys[i][1], self._sc_vals[i][0]
            if offset < end:
                extent.clip(start, end)
            else:
                extent.clip(end, ADDRESS_END)

    def _gap_cell(self, section: int, offset: int, extent: Extent) -> None:
        """Narrow ``extent`` to the gap between procedures holding section:offset (no procedure
        found there): within its module's contribution (or the gap between contributions),
        from the end of the procedure before to the start of the next in each module that
        _find_proc searched."""
        mod = self._module_for(section, offset)
        self._module_cell(section, offset, extent)
        for m in [mod] if mod is not None else range(len(self.modules)):
            data = self._module_procs(m)
            i = bisect.bisect_right(data.proc_keys, (section, offset)) - 1
            if i + 1 < len(data.proc_keys) and data.proc_keys[i + 1][0] == section:
                extent.clip(0, data.proc_keys[i + 1][1])
            if i >= 0 and data.proc_keys[i][0] == section:  # procedures do not overlap: it ends those before
                extent.clip(data.proc_keys[i][1] + data.proc_spans[i][0], ADDRESS_END)

    def _find_proc(self, section: int, offset: int, public: str | None = None) -> tuple[int, _Proc] | None:
        """The module and procedure covering section:offset: through the public's procedure
        reference when that proves its answer, else from the (skimmed) procedures of the module
        whose section contribution holds the address (of every module when none does)."""
        mod = self._module_for(section, offset)
        if mod is not None and public is not None:
            data = self._modules_data.get(mod)
            if data is None or (data.proc_keys is None and data.reference_lookups < REFERENCE_LOOKUPS_BEFORE_SKIM):
                proc = self._proc_by_reference(mod, section, offset, public)
                if proc is not None:
                    self._module(mod).reference_lookups += 1
                    return mod, proc
        candidates = [mod] if mod is not None else range(len(self.modules))
        for m in candidates:
            data = self._module_procs(m)
            i = bisect.bisect_right(data.proc_keys, (section, offset)) - 1
            # Procedures do not overlap, but a zero-length one may precede the right one.
            while i >= 0 and data.proc_keys[i][0] == section:
                start = data.proc_keys[i][1]
                length = data.proc_spans[i][0]
                if start <= offset < start + length:
                    return m, self._proc(data, self.modules[m], i)
                if start + length <= offset and length > 0:
                    break
                i -= 1
        return None

    # -- public API ---------------------------------------------------------
    def symbolize(self, rva: int) -> Symbolized | None:
        """Function, file:line and inline frames at ``rva``; None when the RVA is
        outside every section."""
        return self.symbolize_extent(rva)[0]

    @_malformed
    def symbolize_extent(self, rva: int) -> tuple[Symbolized | None, int, int]:
        """symbolize(rva), and the RVAs [start, end) around it where the answer is the same
        (``offset`` and ``symbol_offset`` following the address): the intersection of the
        section, the public symbol's span, the section contribution, the procedure, the line
        rows of every block covering the address and each inline site's annotation range (or
        the gap between them).  Where a fact has no cell worked out (no section, no procedure),
        the address alone."""
        loc = self.rva_to_section(rva)
        if loc is None:
            return None, rva, rva + 1
        extent = Extent()
        result = self._symbolize(rva, loc, extent)
        vaddr, size = self.sections[loc[0] - 1]
        extent.clip(0, size)
        for earlier_vaddr, earlier_size in self.sections[:loc[0] - 1]:  # rva_to_section takes the first
            if earlier_vaddr > rva:
                extent.clip(0, earlier_vaddr - vaddr)
            elif earlier_vaddr + earlier_size <= rva:
                extent.clip(earlier_vaddr + earlier_size - vaddr, ADDRESS_END)
        start, end = vaddr + extent.lo, vaddr + extent.hi
        if not start <= rva < end:  # a fact that could not be bounded around the address
            return result, rva, rva + 1
        return result, start, min(end, ADDRESS_END)

    def _symbolize(self, rva: int, loc: tuple[int, int], extent: Extent) -> Symbolized | None:
        section, offset = loc
        result = Symbolized(rva, section, offset)
        public = self.public_at(section, offset, extent)
        if public is not None:
            result.symbol, result.symbol_offset = public
        found = self._find_proc(section, offset, public[0] if public is not None else None)
        if found is None:
            self._gap_cell(section, offset, extent)
            if public is not None:
                from symtool.demangle import demangle  # imported when first needed: start-up

                result.frames.append(Frame(demangle(public[0]), mangled=public[0]))
            return result
        mod_index, proc = found
        data = self._module(mod_index)
        mod = self.modules[mod_index]
        result.module = mod.name
        result.symbol_offset = offset - proc.start
        extent.clip(proc.start, proc.start + proc.length)
        self._module_cell(section, offset, extent)
        file, line = self._line_at(data, mod, section, offset, extent)
        # The public symbol of the procedure's own start is its linkage name (what llvm-symbolizer
        # demangles and prints for the outer frame).
        linkage = public[0] if public is not None and offset - public[1] == proc.start else None
        frames = [Frame(proc.name, file, line, mangled=linkage)]
        # Inline sites whose ranges contain the address, outermost first.
        rel = offset - proc.start
        hit: dict[int, tuple[int, int]] = {}  # site index -> (line, file)
        inlinee_lines = self._inlinee_lines(data, mod) if proc.sites else {}
        for i, site in enumerate(proc.sites):
            if site.parent != -1 and site.parent not in hit:
                continue  # its parent does not contain the address (sites follow their parents)
            if site.ranges is None:
                first_file, first_line = inlinee_lines.get(site.inlinee, (0, 0))
                site.ranges = inline_ranges(site.annotations, first_line, first_file)
            for start, end, ln, fo in site.ranges:
                if start <= rel < end:
                    hit[i] = (ln, fo)
                    extent.clip(proc.start + start, proc.start + end)
                    break
                if end <= rel:  # the first range holding the address wins: earlier ones stay out
                    extent.clip(proc.start + end, ADDRESS_END)
                else:
                    extent.clip(0, proc.start + start)
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
                                                 self._file_name(data, mod, fo) if fo is not None else None,
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


def _sorted_by_key(keys: list, values: list) -> tuple[list, list]:
    """``keys`` sorted with ``values`` alongside, equal keys kept in stream order (compilers
    emit procedures and line fragments in address order: then nothing moves)."""
    if all(a <= b for a, b in zip(keys, keys[1:])):
        return keys, values
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [keys[i] for i in order], [values[i] for i in order]


class _NoAddressMap(Exception):
    """The publics' address map led somewhere other than an S_PUB32: read the publics whole."""


__all__ = ["PdbSymbolizer", "Symbolized", "Frame", "inline_ranges"]
