"""The symbol cache file: what a symbolizer answered for addresses of one debug file, kept so
later runs (and other processes) answer them from a memory map instead of the debug file.

One file per debug-file identity (a PDB's GUID+age, an ELF build id); layout, little-endian::

    header   HEADER: magic "SYMTSYMC", format version, identity (UTF-8, NUL padded),
             entry count, size of the record area, CRC-32 of the index, CRC-32 of the
             header bytes before it
    index    ENTRY * count, sorted by start, not overlapping: [start, end) RVA range,
             offset and length of its record in the record area, CRC-32 of the record
    records  one per entry: RECORD, then its strings and frames (below)

A record is what the symbolizer said about every RVA of its range (``None``: nothing):
``RECORD`` (flags, section, the section's start and the function's start as RVAs so that
``offset`` and ``symbol_offset`` follow the address, frame count), then the optional
strings ``symbol``, ``module``, ``short_name`` flagged present, then per frame ``FRAME``
(flags, line, column) and its function and (if flagged) file.  A string is u32 length +
UTF-8.

Opening checks the header and the index (size, version, identity, both CRCs): a few
pages whatever the file's size.  A record's CRC is checked when it is read, so a lookup
touches the index pages of its binary search and one record.  Anything that does not
check out raises :class:`CacheFileError`; the caller rebuilds the file, never trusts it.
"""

from __future__ import annotations

import bisect
import mmap
import os
import struct
import zlib

from symtool.formats.symbols import Frame, Symbolized

MAGIC = b"SYMTSYMC"
VERSION = 1
IDENTITY_SIZE = 96
# magic, version, identity, entry count, record area size, index CRC, header CRC.
HEADER = struct.Struct(f"<8sI{IDENTITY_SIZE}sIQII")
# start, end (exclusive), record offset (in the record area), record length, record CRC.
ENTRY = struct.Struct("<QQQII")
# flags, section, section start (RVA), function/symbol start (RVA), frame count.
RECORD = struct.Struct("<BIqqH")
# flags, line, column.
FRAME = struct.Struct("<BII")
LENGTH = struct.Struct("<I")

# RECORD flags.
R_NONE = 1  # the symbolizer knew nothing of the address
R_SYMBOL = 2
R_SYMBOL_OFFSET = 4
R_MODULE = 8
R_SHORT_NAME = 16
# FRAME flags.
F_FILE = 1
F_LINE = 2
F_COLUMN = 4

MAX_FRAMES = 4096  # inline depth of one address (DWARF's MAX_DEPTH)
MAX_STRING = 1 << 16


class CacheFileError(Exception):
    """A cache file that is not a complete, current cache of the identity asked for."""


def _string(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")[:MAX_STRING]
    return LENGTH.pack(len(data)) + data


def encode_record(result: Symbolized | None) -> bytes:
    """The record of one answer (``result.rva`` is the address it was asked for)."""
    if result is None:
        return RECORD.pack(R_NONE, 0, 0, 0, 0)
    flags = 0
    strings = b""
    for flag, value in ((R_SYMBOL, result.symbol), (R_MODULE, result.module), (R_SHORT_NAME, result.short_name)):
        if value is not None:
            flags |= flag
            strings += _string(value)
    func_start = 0
    if result.symbol_offset is not None:
        flags |= R_SYMBOL_OFFSET
        func_start = result.rva - result.symbol_offset
    frames = result.frames[:MAX_FRAMES]
    out = [RECORD.pack(flags, result.section, result.rva - result.offset, func_start, len(frames)), strings]
    for frame in frames:
        fflags = (F_FILE if frame.file is not None else 0) | (F_LINE if frame.line is not None else 0) \
            | (F_COLUMN if frame.column is not None else 0)
        out.append(FRAME.pack(fflags, frame.line or 0, frame.column or 0))
        out.append(_string(frame.function))
        if frame.file is not None:
            out.append(_string(frame.file))
    return b"".join(out)


class _Reader:
    def __init__(self, data, pos: int, end: int):
        self.data, self.pos, self.end = data, pos, end

    def unpack(self, st: struct.Struct) -> tuple:
        if self.pos + st.size > self.end:
            raise CacheFileError("record runs past its end")
        out = st.unpack_from(self.data, self.pos)
        self.pos += st.size
        return out

    def string(self) -> str:
        (n,) = self.unpack(LENGTH)
        if n > MAX_STRING or self.pos + n > self.end:
            raise CacheFileError("string runs past its record")
        out = bytes(self.data[self.pos:self.pos + n]).decode("utf-8", "surrogatepass")
        self.pos += n
        return out


def decode_record(data, start: int, length: int, rva: int) -> Symbolized | None:
    """The answer for ``rva`` from the record at ``start`` (CacheFileError when malformed)."""
    r = _Reader(data, start, start + length)
    try:
        flags, section, section_start, func_start, count = r.unpack(RECORD)
        if flags & R_NONE:
            return None
        if count > MAX_FRAMES:
            raise CacheFileError("too many frames")
        result = Symbolized(rva, section, rva - section_start)
        if flags & R_SYMBOL:
            result.symbol = r.string()
        if flags & R_MODULE:
            result.module = r.string()
        if flags & R_SHORT_NAME:
            result.short_name = r.string()
        if flags & R_SYMBOL_OFFSET:
            result.symbol_offset = rva - func_start
        for _ in range(count):
            fflags, line, column = r.unpack(FRAME)
            function = r.string()
            file = r.string() if fflags & F_FILE else None
            result.frames.append(Frame(function, file, line if fflags & F_LINE else None,
                                       column if fflags & F_COLUMN else None))
    except UnicodeDecodeError:
        raise CacheFileError("string is not UTF-8") from None
    if r.pos != r.end:
        raise CacheFileError("record longer than its contents")
    return result


def _identity_field(identity: str) -> bytes:
    data = identity.encode("utf-8")
    if len(data) > IDENTITY_SIZE:
        raise ValueError(f"identity longer than {IDENTITY_SIZE} bytes")
    return data.ljust(IDENTITY_SIZE, b"\0")


def build(identity: str, entries: dict[tuple[int, int], bytes]) -> bytes:
    """A whole cache file: ``entries`` maps disjoint [start, end) RVA ranges to records."""
    index = []
    records = []
    offset = 0
    for (start, end), record in sorted(entries.items()):
        index.append(ENTRY.pack(start, end, offset, len(record), zlib.crc32(record)))
        records.append(record)
        offset += len(record)
    index_bytes = b"".join(index)
    head = HEADER.pack(MAGIC, VERSION, _identity_field(identity), len(index), offset, zlib.crc32(index_bytes), 0)
    head = head[:-4] + struct.pack("<I", zlib.crc32(head[:-4]))
    return head + index_bytes + b"".join(records)


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
        magic, version, ident, count, records_size, index_crc, header_crc = HEADER.unpack_from(m, 0)
        if magic != MAGIC:
            raise CacheFileError("not a symtool symbol cache file")
        if zlib.crc32(m[:HEADER.size - 4]) != header_crc:
            raise CacheFileError("header checksum mismatch")
        if version != VERSION:
            raise CacheFileError(f"format version {version}, not {VERSION}")
        if ident != _identity_field(identity):
            raise CacheFileError("cache of another debug file")
        self.records_at = HEADER.size + count * ENTRY.size
        if self.records_at + records_size != size:
            raise CacheFileError("size does not match its header (truncated?)")
        if zlib.crc32(m[HEADER.size:self.records_at]) != index_crc:
            raise CacheFileError("index checksum mismatch")
        self.count = count
        self.records_size = records_size

    def _entry(self, k: int) -> tuple[int, int, int, int, int]:
        return ENTRY.unpack_from(self._map, HEADER.size + k * ENTRY.size)

    def _starts(self):
        cache = self

        class _Starts:  # a sequence view of the index's start fields, for bisect
            def __len__(self):
                return cache.count

            def __getitem__(self, k):
                return struct.unpack_from("<Q", cache._map, HEADER.size + k * ENTRY.size)[0]
        return _Starts()

    def lookup(self, rva: int) -> tuple[bool, Symbolized | None]:
        """(True, answer) when an entry covers ``rva``, else (False, None).  CacheFileError
        when the entry's record does not check out."""
        k = bisect.bisect_right(self._starts(), rva) - 1
        if k < 0:
            return False, None
        start, end, offset, length, crc = self._entry(k)
        if not start <= rva < end:
            return False, None
        return True, self._record(offset, length, crc, rva)

    def _record(self, offset: int, length: int, crc: int, rva: int) -> Symbolized | None:
        if offset + length > self.records_size:
            raise CacheFileError("record outside the record area")
        at = self.records_at + offset
        if zlib.crc32(self._map[at:at + length]) != crc:
            raise CacheFileError("record checksum mismatch")
        return decode_record(self._map, at, length, rva)

    def entries(self) -> dict[tuple[int, int], bytes]:
        """Every entry whose record checks out (the file's content, for merging into a new one)."""
        out = {}
        for k in range(self.count):
            start, end, offset, length, crc = self._entry(k)
            if start >= end or offset + length > self.records_size:
                continue
            at = self.records_at + offset
            record = self._map[at:at + length]
            if zlib.crc32(record) == crc:
                out[(start, end)] = record
        return out

    def close(self) -> None:
        self._map.close()


__all__ = ["CacheFile", "CacheFileError", "MAGIC", "VERSION", "build", "encode_record", "decode_record"]
