"""The symbol cache file: what a symbolizer answered for addresses of one debug file, kept so
later runs (and other processes) answer them from a memory map instead of the debug file.

One file per debug-file identity (a PDB's GUID+age, an ELF build id); layout, little-endian::

    header   HEADER: magic "SYMTSYMC", format version, identity (UTF-8, NUL padded),
             entry count, sizes of the record and string areas, CRC-32 of the index,
             CRC-32 of the header bytes before it
    index    ENTRY * count, sorted by start, not overlapping: [start, end) RVA range,
             offset and length of its record in the record area, CRC-32 of the record
    records  one per entry: RECORD, then its string references and frames (below)
    strings  each distinct string once: STRING (length, CRC-32), then its UTF-8 bytes

A record is what the symbolizer said about every RVA of its range (``None``: nothing):
``RECORD`` (flags, section, the section's start and the function's start as RVAs so that
``offset`` and ``symbol_offset`` follow the address, frame count, the strings ``symbol``,
``module``, ``short_name``), then per frame, innermost first, ``FRAME`` (flags, line,
column, function, file, the function's linkage (mangled) name, and the name llvm-symbolizer
prints for it when that differs from ``function``).  A string in a
record is a u32 offset into the string area, where names and paths shared by many addresses
are kept once (``NO_STRING``: none).

Opening checks the header and the index (size, version, identity, both CRCs): a few
pages whatever the file's size.  A record's CRC is checked when it is read, so a lookup
touches the index pages of its binary search, one record and its strings (each string's
CRC is checked the first time it is read).  Anything that does not
check out raises :class:`CacheFileError`; the caller rebuilds the file, never trusts it.
"""

from __future__ import annotations

import bisect
import mmap
import os
import struct
import sys
import zlib

from symtool.formats.symbols import Frame, Symbolized, llvm_function

MAGIC = b"SYMTSYMC"
VERSION = 6  # 5: frames keep their mangled name; 6: and what symbolize prints (LLVM's demangling of it)
IDENTITY_SIZE = 96
# magic, version, identity, entry count, record area size, string area size, index CRC, header CRC.
HEADER = struct.Struct(f"<8sI{IDENTITY_SIZE}sIQQII")
# start, end (exclusive), record offset (in the record area), record length, record CRC.
ENTRY = struct.Struct("<QQQII")
# flags, section, section start (RVA), function/symbol start (RVA), frame count, then the
# strings symbol, module and short name (offsets in the string area; NO_STRING: none).
RECORD = struct.Struct("<BIqqHIII")
RECORD_HEAD = struct.Struct("<B20xH")  # RECORD's flags and frame count alone (render_many needs no more)
# flags, line, column, function, file, mangled name, printed name (offsets in the string area;
# printed: NO_STRING when it is the function's): fixed size, so a record's frames are decoded by
# one iter_unpack.
FRAME = struct.Struct("<BIIIIII")
NO_STRING = 0xFFFFFFFF
ADDRESS_END = (1 << 64) - 1  # the largest end an ENTRY holds
# A string in the string area: length, CRC-32 of the length (u32) and the bytes; then the UTF-8
# bytes.  (The length is in the CRC so that zeroed bytes do not read as a valid empty string:
# the CRC-32 of nothing is 0.)
STRING = struct.Struct("<II")

# RECORD flags.
R_NONE = 1  # the symbolizer knew nothing of the address
R_SYMBOL_OFFSET = 4
# FRAME flags.
F_LINE = 2
F_COLUMN = 4

MAX_FRAMES = 4096  # inline depth of one address (DWARF's MAX_DEPTH)
MAX_STRING = 1 << 18  # bytes: a mangled name of MAX_MANGLED characters, non-ASCII ones too
MAX_MEMO = 1 << 16  # decoded frames one open file keeps (then it starts again: bounded memory)


MISS = object()  # CacheFile.lookup_many: no answer from the file for this address


class CacheFileError(Exception):
    """A cache file that is not a complete, current cache of the identity asked for."""


def _string_crc(data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(struct.pack("<I", len(data))))


class StringTable:
    """The string area being built: each distinct string once (names and paths repeat across
    addresses: the inline chains of one function share them)."""

    def __init__(self):
        self._offsets: dict[str, int] = {}
        self._parts: list[bytes] = []
        self.size = 0

    def ref(self, text: str) -> int:
        at = self._offsets.get(text)
        if at is None:
            data = text.encode("utf-8", "surrogatepass")[:MAX_STRING]
            at = self._offsets[text] = self.size
            self._parts.append(STRING.pack(len(data), _string_crc(data)) + data)
            self.size += STRING.size + len(data)
        return at

    def bytes(self) -> bytes:
        return b"".join(self._parts)


def encode_record(result: Symbolized | None, strings: StringTable) -> bytes:
    """The record of one answer (``result.rva`` is the address it was asked for)."""
    if result is None:
        return RECORD.pack(R_NONE, 0, 0, 0, 0, NO_STRING, NO_STRING, NO_STRING)
    flags = 0
    func_start = 0
    if result.symbol_offset is not None:
        flags |= R_SYMBOL_OFFSET
        func_start = result.rva - result.symbol_offset
    frames = result.frames[:MAX_FRAMES]
    out = [RECORD.pack(flags, result.section, result.rva - result.offset, func_start, len(frames),
                       *(NO_STRING if v is None else strings.ref(v)
                         for v in (result.symbol, result.module, result.short_name)))]
    for frame in frames:
        fflags = (F_LINE if frame.line is not None else 0) | (F_COLUMN if frame.column is not None else 0)
        # (Kept so that a warm symbolize demangles nothing: demangling was most of its time.)
        printed = llvm_function(frame)
        out.append(FRAME.pack(fflags, frame.line or 0, frame.column or 0, strings.ref(frame.function),
                              NO_STRING if frame.file is None else strings.ref(frame.file),
                              NO_STRING if frame.mangled is None else strings.ref(frame.mangled),
                              NO_STRING if printed == frame.function else strings.ref(printed)))
    return b"".join(out)


def decode_record(data, start: int, length: int, rva: int, strings, frames: dict | None = None) -> Symbolized | None:
    """The answer for ``rva`` from the record at ``start``, its strings from ``strings[offset]``
    (a mapping that reads and checks a string the first time it is asked for; CacheFileError
    when malformed).  ``frames`` (raw FRAME fields -> Frame) keeps each distinct frame decoded
    once: the answers share those Frame objects, which their users only read."""
    if length < RECORD.size:
        raise CacheFileError("record shorter than its header")
    flags, section, section_start, func_start, count, symbol, module, short_name = RECORD.unpack_from(data, start)
    if flags & R_NONE:
        return None
    if length != RECORD.size + count * FRAME.size:
        raise CacheFileError("record length does not match its frames")
    at = start + RECORD.size
    if frames is None:
        frames = {}
    memo = frames.get
    out = []
    for raw in FRAME.iter_unpack(data[at:at + count * FRAME.size]):
        frame = memo(raw)
        if frame is None:
            fflags, line, column, function, file, mangled, printed = raw
            name = strings[function]
            frame = Frame(name, None if file == NO_STRING else strings[file],
                          line if fflags & F_LINE else None, column if fflags & F_COLUMN else None,
                          None if mangled == NO_STRING else strings[mangled],
                          name if printed == NO_STRING else strings[printed])
            if len(frames) >= MAX_MEMO:
                frames.clear()
            frames[raw] = frame
        out.append(frame)
    return Symbolized(rva, section, rva - section_start, out,
                      None if symbol == NO_STRING else strings[symbol],
                      rva - func_start if flags & R_SYMBOL_OFFSET else None,
                      None if module == NO_STRING else strings[module],
                      None if short_name == NO_STRING else strings[short_name])


def _identity_field(identity: str) -> bytes:
    data = identity.encode("utf-8")
    if len(data) > IDENTITY_SIZE:
        raise ValueError(f"identity longer than {IDENTITY_SIZE} bytes")
    return data.ljust(IDENTITY_SIZE, b"\0")


def build(identity: str, entries: dict[tuple[int, int], Symbolized | None]) -> bytes:
    """A whole cache file: ``entries`` maps disjoint [start, end) RVA ranges to the answer for
    their addresses (``result.rva`` is ``start``)."""
    strings = StringTable()
    index = []
    records = []
    offset = 0
    for (start, end), result in sorted(entries.items()):
        record = encode_record(result, strings)
        index.append(ENTRY.pack(start, end, offset, len(record), zlib.crc32(record)))
        records.append(record)
        offset += len(record)
    index_bytes = b"".join(index)
    head = HEADER.pack(MAGIC, VERSION, _identity_field(identity), len(index), offset, strings.size,
                       zlib.crc32(index_bytes), 0)
    head = head[:-4] + struct.pack("<I", zlib.crc32(head[:-4]))
    return head + index_bytes + b"".join(records) + strings.bytes()


class CacheFile:
    """A cache file mapped read-only, header and index checked (CacheFileError otherwise)."""

    def __init__(self, path: str | os.PathLike[str], identity: str, max_size: int):
        self.path = os.fspath(path)
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < HEADER.size:
                raise CacheFileError("shorter than its header")
            if size > max_size:
                raise CacheFileError(f"larger than {max_size} bytes")
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._check(identity, size)
        except BaseException:
            self._map.close()
            raise

    def _check(self, identity: str, size: int) -> None:
        m = self._map
        magic, version, ident, count, records_size, strings_size, index_crc, header_crc = HEADER.unpack_from(m, 0)
        if magic != MAGIC:
            raise CacheFileError("not a symtool symbol cache file")
        if zlib.crc32(m[:HEADER.size - 4]) != header_crc:
            raise CacheFileError("header checksum mismatch")
        if version != VERSION:
            raise CacheFileError(f"format version {version}, not {VERSION}")
        if ident != _identity_field(identity):
            raise CacheFileError("cache of another debug file")
        self.records_at = HEADER.size + count * ENTRY.size
        self.strings_at = self.records_at + records_size
        if self.strings_at + strings_size != size:
            raise CacheFileError("size does not match its header (truncated?)")
        if zlib.crc32(m[HEADER.size:self.records_at]) != index_crc:
            raise CacheFileError("index checksum mismatch")
        self.count = count
        self.records_size = records_size
        self.strings_size = strings_size
        self._strings = _Strings(m, self.strings_at, strings_size)  # offset -> string, each read and checked once
        self._frames: dict = {}  # raw FRAME fields -> Frame, each decoded once (decode_record)
        self._rendered = None  # (renderer, frame memo, entry memo) of render_many
        # The index's start fields as a sequence for bisect, reading only the pages it probes:
        # every ENTRY is four u64 words, its start the first (a strided view of the map where
        # the host is little-endian, as the file is).
        if sys.byteorder == "little" and ENTRY.size % 8 == 0:
            self._view = memoryview(m)[HEADER.size:self.records_at]
            self._starts = self._view.cast("Q")[::ENTRY.size // 8]
        else:
            self._view = None
            self._starts = _Starts(m, count)

    def _entry(self, k: int) -> tuple[int, int, int, int, int]:
        return ENTRY.unpack_from(self._map, HEADER.size + k * ENTRY.size)

    def lookup(self, rva: int) -> tuple[bool, Symbolized | None]:
        """(True, answer) when an entry covers ``rva``, else (False, None).  CacheFileError
        when the entry's record does not check out."""
        answer = self.lookup_many((rva,), strict=True)[0]
        return (False, None) if answer is MISS else (True, answer)

    def lookup_many(self, rvas, strict: bool = False) -> list:
        """The answer for each RVA, or MISS where no entry covers it or (unless ``strict``: then
        CacheFileError says why) its record does not check out.  One loop for a batch: a warm
        run's time is this loop and the output, so the per-address work is kept to the binary
        search, the entry, the record's CRC and its decoding."""
        starts, m, entry_at, record = self._starts, self._map, ENTRY.unpack_from, self._record
        index_at, entry_size, bisect_right = HEADER.size, ENTRY.size, bisect.bisect_right
        out = []
        for rva in rvas:
            k = bisect_right(starts, rva) - 1
            if k < 0:
                out.append(MISS)
                continue
            start, end, offset, length, crc = entry_at(m, index_at + k * entry_size)
            if not start <= rva < end:
                out.append(MISS)
                continue
            try:
                out.append(record(offset, length, crc, rva))
            except (CacheFileError, struct.error, ValueError, IndexError):
                if strict:
                    raise
                out.append(MISS)
        return out

    def render_many(self, rvas, renderer) -> list:
        """What ``renderer`` words for each RVA's answer, as the tuple of its pieces (each
        frame's text, then ``renderer.end``), or MISS as :meth:`lookup_many` (the caller asks
        the reader, and words its answer with ``renderer.block``).

        ``renderer`` has ``frame(function, file, line, column)`` (the text of one frame, str or
        bytes: ``function`` is the name llvm-symbolizer prints), ``unknown`` (the text of an
        address nothing describes, or no frame) and ``end`` (what follows each address's
        frames).  A warm `symbolize` prints text, not answers: this skips what the text does
        not use (the answer objects, the offsets, the symbol, module and mangled names), words
        each distinct frame once (by its bytes) and each entry once (by its index: a
        record's CRC is checked, and its strings' the first time each is read, when the entry
        is first worded; a later address of its range reuses that text).  The pieces are
        shared, not joined: joined per address, a run of 10,000 addresses made ~7 MB more.
        Bounded: each memo starts again after MAX_MEMO."""
        memo = self._rendered
        if memo is None or memo[0] is not renderer:
            memo = self._rendered = (renderer, {}, {})
        _renderer, frames, entries = memo
        # One loop, its names local: at 10,000 addresses this loop is most of a warm run, and
        # a call or a global lookup per record shows.
        m, strings, starts, bisect_right, get = self._map, self._strings, self._starts, bisect.bisect_right, entries.get
        index_at, entry_size, entry_at = HEADER.size, ENTRY.size, ENTRY.unpack_from
        records_at, records_size, crc32 = self.records_at, self.records_size, zlib.crc32
        head_size, head_at, frame_size, frame_at = RECORD.size, RECORD_HEAD.unpack_from, FRAME.size, FRAME.unpack
        word, unknown, end_text = renderer.frame, (renderer.unknown,), renderer.end
        out = []
        append = out.append
        for rva in rvas:
            k = bisect_right(starts, rva) - 1
            known = get(k)
            if known is None:
                if k < 0:
                    append(MISS)
                    continue
                # Entry k worded: its record's CRC checked, each new string's too (CacheFileError,
                # as decode_record checks them: the caller asks the reader instead).
                try:
                    start, end, offset, length, crc = entry_at(m, index_at + k * entry_size)
                    if start >= end:
                        known = (start, end, None)  # answers nothing: start <= rva < end never holds
                    else:
                        if offset + length > records_size:
                            raise CacheFileError("record outside the record area")
                        at = records_at + offset
                        record = m[at:at + length]
                        if crc32(record) != crc:
                            raise CacheFileError("record checksum mismatch")
                        if length < head_size:
                            raise CacheFileError("record shorter than its header")
                        flags, count = head_at(record)
                        if flags & R_NONE:
                            known = (start, end, unknown)
                        elif length != head_size + count * frame_size:
                            raise CacheFileError("record length does not match its frames")
                        elif not count:
                            known = (start, end, unknown)
                        else:
                            parts = []
                            # Each frame's bytes are its memo key (slicing and hashing 29 bytes
                            # costs half of unpacking them): frames with the same fields, one text.
                            for at in range(head_size, length, frame_size):
                                raw = record[at:at + frame_size]
                                text = frames.get(raw)
                                if text is None:
                                    fflags, line, column, function, file, _mangled, printed = frame_at(raw)
                                    text = word(strings[function if printed == NO_STRING else printed],
                                                None if file == NO_STRING else strings[file],
                                                line if fflags & F_LINE else None,
                                                column if fflags & F_COLUMN else None)
                                    if len(frames) >= MAX_MEMO:
                                        frames.clear()
                                    frames[raw] = text
                                parts.append(text)
                            parts.append(end_text)
                            known = (start, end, tuple(parts))
                except (CacheFileError, struct.error, ValueError, IndexError):
                    append(MISS)
                    continue
                if len(entries) >= MAX_MEMO:
                    entries.clear()
                entries[k] = known
            start, end, text = known
            append(text if start <= rva < end else MISS)
        return out

    def _record(self, offset: int, length: int, crc: int, rva: int) -> Symbolized | None:
        if offset + length > self.records_size:
            raise CacheFileError("record outside the record area")
        at = self.records_at + offset
        if zlib.crc32(self._map[at:at + length]) != crc:
            raise CacheFileError("record checksum mismatch")
        return decode_record(self._map, at, length, rva, self._strings, self._frames)

    def entries(self) -> dict[tuple[int, int], Symbolized | None]:
        """Every entry whose record and strings check out (the file's content, for merging into
        a new one); each answer is the one for the entry's start."""
        out = {}
        for k in range(self.count):
            start, end, offset, length, crc = self._entry(k)
            if start >= end:
                continue
            try:
                out[(start, end)] = self._record(offset, length, crc, start)
            except (CacheFileError, struct.error):
                continue
        return out

    def close(self) -> None:
        if self._view is not None:
            self._starts.release()
            self._view.release()
            self._view = None
        self._map.close()


class _Strings(dict):
    """Strings by offset in the string area of ``data``, each read and its CRC checked on first
    use (a plain dict lookup after that: the memo holds only what was read, at most the area)."""

    def __init__(self, data, strings_at: int, strings_size: int):
        super().__init__()
        self._data, self._at, self._size = data, strings_at, strings_size

    def __missing__(self, offset: int) -> str:
        if offset + STRING.size > self._size:
            raise CacheFileError("string reference outside the string area")
        data = self._data
        at = self._at + offset
        n, crc = STRING.unpack_from(data, at)
        if n > MAX_STRING or offset + STRING.size + n > self._size:
            raise CacheFileError("string runs past the string area")
        text = data[at + STRING.size:at + STRING.size + n]
        # (_string_crc inline, the length's bytes as they are in the file: one call less a string.)
        if zlib.crc32(text, zlib.crc32(data[at:at + 4])) != crc:
            raise CacheFileError("string checksum mismatch")
        try:
            decoded = self[offset] = text.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise CacheFileError("string is not UTF-8") from None
        return decoded


class _Starts:
    """The index's start fields as a sequence, for bisect (big-endian hosts)."""

    def __init__(self, data, count: int):
        self.data, self.count = data, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int) -> int:
        return struct.unpack_from("<Q", self.data, HEADER.size + k * ENTRY.size)[0]


__all__ = ["CacheFile", "CacheFileError", "MISS", "MAGIC", "VERSION", "StringTable", "build", "encode_record",
           "decode_record"]
