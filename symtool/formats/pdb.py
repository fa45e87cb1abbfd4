"""PDB reader: the MSF container (7.00 and the old 2.00) and the streams that
identify a PDB.

Identity needs only the superblock, the directory pages that hold the
entries of streams 1 (PDB info) and 3 (DBI) and the first block of each: a
few KB whether the PDB is 100 KB or 4 GB.  The directory is read lazily,
page by page, and every block number and size is checked against the file
size before it is used.

Layout facts (LLVM's "The PDB File Format" docs, Microsoft's microsoft-pdb):

MSF 7.00 superblock (block 0)::

    0   magic "Microsoft C/C++ MSF 7.00\\r\\n\\x1aDS\\0\\0\\0"  (32 bytes)
    32  u32 block size            36 u32 free block map block
    40  u32 number of blocks      44 u32 directory size in bytes
    48  u32 unknown               52 u32[] blocks holding the directory's block list

The directory: u32 stream count, u32 sizes[count] (0xFFFFFFFF = nil stream),
then the block numbers of each stream in order.  When the directory's block
list needs more than one block (big or small-page PDBs), the array at 52
lists several blocks.

MSF 2.00 ("Microsoft C/C++ program database 2.00\\r\\n\\x1aJG\\0\\0", 44 bytes):
u32 page size, u16 free page map, u16 page count, u32 stream-table size,
u32 reserved, u16 pages of the stream table.  The stream table: u16 count,
u16 reserved, count x (u32 size, u32 reserved), then u16 page numbers.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from symtool.errors import FormatError
from symtool.formats.binio import BoundedReader, cstring
from symtool.ids import NB10, PDB70, PORTABLE, DebugId

MSF7_MAGIC = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0"
MSF2_MAGIC = b"Microsoft C/C++ program database 2.00\r\n\x1aJG\0\0"
PORTABLE_MAGIC = b"BSJB"

NIL_STREAM = 0xFFFFFFFF
STREAM_PDB_INFO = 1
STREAM_DBI = 3

# PDB info stream versions: from VC70 on, the stream carries a GUID.
PDB_IMPV_VC70 = 20000404
# Limits that keep hostile files from making us allocate or loop a lot.
MAX_INFO_STREAM = 1 << 20  # the named-stream map of real PDBs is a few hundred bytes
VALID_BLOCK_SIZES = (512, 1024, 2048, 4096, 8192, 16384, 32768)


class Msf:
    """Lazy access to the streams of an MSF 7.00 or 2.00 container."""

    def __init__(self, reader: BoundedReader):
        self.r = reader
        head = reader.read(0, min(reader.size, 64), "MSF header") if reader.size else b""
        if head.startswith(MSF7_MAGIC):
            self.version = 7
            self._init_msf7()
        elif head.startswith(MSF2_MAGIC):
            self.version = 2
            self._init_msf2()
        else:
            raise FormatError("not an MSF (PDB) file", reader.path)
        self._sizes: list[int] | None = None  # all stream sizes, read on demand
        self._block_list_start: list[int] | None = None  # prefix sums of block counts

    def _set_geometry(self, bs: int, nblocks: int, dir_bytes: int, header: str, unit: str, directory: str) -> None:
        """Check block size, block count and directory size against the file before any use."""
        r = self.r
        if bs not in VALID_BLOCK_SIZES:
            raise FormatError(f"invalid MSF block size {bs}", r.path)
        if nblocks * bs > r.size:
            raise FormatError(
                f"truncated PDB: {header} says {nblocks} {unit} of {bs} bytes, file has {r.size} bytes", r.path
            )
        if dir_bytes < 4 or dir_bytes > nblocks * bs:
            raise FormatError(f"invalid {directory} size {dir_bytes}", r.path)
        self.block_size = bs
        self.num_blocks = nblocks
        self.dir_bytes = dir_bytes

    # -- MSF 7.00 ---------------------------------------------------------
    def _init_msf7(self) -> None:
        r = self.r
        bs, _fpm, nblocks, dir_bytes, _unk = r.unpack("<5I", 32, "MSF superblock")
        self._set_geometry(bs, nblocks, dir_bytes, "superblock", "blocks", "stream directory")
        n_dir_blocks = -(-dir_bytes // bs)
        n_map_blocks = -(-(n_dir_blocks * 4) // bs)
        if 52 + 4 * n_map_blocks > bs:
            raise FormatError("stream directory block map does not fit the superblock", r.path)
        map_blocks = r.unpack(f"<{n_map_blocks}I", 52, "directory block map")
        for b in map_blocks:
            self._check_block(b)
        self._dir_map_blocks = map_blocks
        self._n_dir_blocks = n_dir_blocks
        self._dir_block_cache: dict[int, int] = {}
        self._pn_size = 4

    def _dir_block(self, i: int) -> int:
        """Block number of the i-th directory block (reads one u32 of the block map)."""
        block = self._dir_block_cache.get(i)
        if block is None:
            per = self.block_size // 4
            map_block = self._dir_map_blocks[i // per]
            (block,) = self.r.unpack("<I", map_block * self.block_size + 4 * (i % per), "directory block map")
            self._check_block(block)
            self._dir_block_cache[i] = block
        return block

    def _dir_read(self, offset: int, length: int) -> bytes:
        """Bytes of the stream directory (MSF 7) or stream table (MSF 2)."""
        if offset < 0 or offset + length > self.dir_bytes:
            raise FormatError(
                f"stream directory entry at {offset} (+{length}) is past the directory's {self.dir_bytes} bytes",
                self.r.path,
            )
        out = bytearray()
        bs = self.block_size
        while length > 0:
            idx, within = divmod(offset, bs)
            take = min(length, bs - within)
            out += self.r.read(self._dir_block(idx) * bs + within, take, "stream directory")
            offset += take
            length -= take
        return bytes(out)

    # -- MSF 2.00 ---------------------------------------------------------
    def _init_msf2(self) -> None:
        r = self.r
        bs, _fpm, nblocks = r.unpack("<IHH", 44, "MSF 2.00 header")
        dir_bytes, _reserved = r.unpack("<II", 52, "MSF 2.00 stream table")
        self._set_geometry(bs, nblocks, dir_bytes, "header", "pages", "stream table")
        n_dir_blocks = -(-dir_bytes // bs)
        if 60 + 2 * n_dir_blocks > bs:
            raise FormatError("stream table page list does not fit the header page", r.path)
        blocks = r.unpack(f"<{n_dir_blocks}H", 60, "stream table pages")
        for b in blocks:
            self._check_block(b)
        self._dir_block_cache = dict(enumerate(blocks))
        self._n_dir_blocks = n_dir_blocks
        self._pn_size = 2

    # -- common -----------------------------------------------------------
    def _check_block(self, block: int) -> None:
        if block >= self.num_blocks or (block + 1) * self.block_size > self.r.size:
            raise FormatError(f"block number {block} is past the end of the file", self.r.path)

    @property
    def _entry_size(self) -> int:
        return 4 if self.version == 7 else 8

    @property
    def _sizes_offset(self) -> int:
        return 4

    @property
    def num_streams(self) -> int:
        if not hasattr(self, "_num_streams"):
            if self.version == 7:
                (n,) = struct.unpack("<I", self._dir_read(0, 4))
            else:
                n, _ = struct.unpack("<HH", self._dir_read(0, 4))
            # Each stream needs at least its size entry: bounds a hostile count.
            if 4 + n * self._entry_size > self.dir_bytes:
                raise FormatError(f"stream count {n} does not fit the {self.dir_bytes}-byte directory", self.r.path)
            self._num_streams = n
        return self._num_streams

    def _raw_size(self, i: int) -> int:
        (size,) = struct.unpack("<I", self._dir_read(4 + i * self._entry_size, 4))
        return size

    def stream_size(self, i: int) -> int:
        """Size of stream ``i`` in bytes; 0 for nil or absent streams."""
        if i < 0 or i >= self.num_streams:
            return 0
        size = self._raw_size(i)
        return 0 if size == NIL_STREAM else size

    def _blocks_for(self, size: int) -> int:
        return -(-size // self.block_size)

    def _block_list_offset(self, i: int) -> int:
        """Offset in the directory where stream i's block numbers start."""
        n = self.num_streams
        offset = 4 + n * self._entry_size
        if i <= 8:
            # Identity streams: read just the few sizes before i.
            for j in range(i):
                offset += self._blocks_for(self.stream_size(j)) * self._pn_size
            return offset
        if self._block_list_start is None:
            raw = self._dir_read(4, n * self._entry_size)
            step = self._entry_size // 4
            sizes = struct.unpack(f"<{n * step}I", raw)[::step]
            starts = []
            acc = offset
            for s in sizes:
                starts.append(acc)
                acc += (0 if s == NIL_STREAM else self._blocks_for(s)) * self._pn_size
            if acc > self.dir_bytes:
                raise FormatError("stream directory is shorter than its streams' block lists", self.r.path)
            self._block_list_start = starts
        return self._block_list_start[i]

    def stream_blocks(self, i: int) -> list[int]:
        size = self.stream_size(i)
        count = self._blocks_for(size)
        if count * self.block_size > self.num_blocks * self.block_size:
            raise FormatError(f"stream {i} is larger than the file", self.r.path)
        raw = self._dir_read(self._block_list_offset(i), count * self._pn_size)
        blocks = list(struct.unpack(f"<{count}{'I' if self._pn_size == 4 else 'H'}", raw))
        return blocks

    def read_stream(self, i: int, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``[offset, offset+length)`` of stream ``i`` (clipped to the stream)."""
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("negative stream offset or length")
        size = self.stream_size(i)
        if size > self.num_blocks * self.block_size:
            # Checked before reading: a hostile size with a repeated block
            # number would otherwise make us build a buffer larger than the file.
            raise FormatError(f"stream {i} ({size} bytes) is larger than the file", self.r.path)
        if length is None:
            length = size - offset
        length = max(0, min(length, size - offset))
        if length == 0:
            return b""
        bs = self.block_size
        first, last = offset // bs, (offset + length - 1) // bs
        n = self.num_streams
        if i >= n:
            return b""
        # Read only the part of the block list we need.
        list_off = self._block_list_offset(i) + first * self._pn_size
        count = last - first + 1
        raw = self._dir_read(list_off, count * self._pn_size)
        blocks = struct.unpack(f"<{count}{'I' if self._pn_size == 4 else 'H'}", raw)
        out = bytearray()
        pos = offset
        end = offset + length
        for b in blocks:
            self._check_block(b)
            within = pos % bs
            take = min(bs - within, end - pos)
            out += self.r.read(b * bs + within, take, f"stream {i}")
            pos += take
        return bytes(out)


@dataclass
class PdbInfo:
    """What identifies a PDB, plus what later work needs from stream 1."""

    path: str
    kind: str  # "pdb" (MSF 7.00), "pdb2" (MSF 2.00), "portable-pdb"
    debug_id: DebugId
    info_age: int | None  # PDB info stream age (pdbstr bumps it)
    age: int | None  # DBI age: what debuggers and symstore match; None without DBI
    signature: int | None = None  # info stream signature (a timestamp)
    version: int | None = None  # info stream version
    block_size: int | None = None
    num_streams: int | None = None
    named_streams: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0

    @property
    def guid(self) -> str | None:
        return self.debug_id.guid_str

    @property
    def index(self) -> str:
        return self.debug_id.index()


def _parse_named_streams(data: bytes, start: int, path: str) -> dict[str, int]:
    """The named-stream map after the info header: names -> stream numbers.

    Layout: u32 names size, names, then a hash table: u32 count, u32 capacity,
    present bit vector (u32 words), deleted bit vector (u32 words), then a
    (u32 name offset, u32 stream) pair per present bit.
    """
    def u32(at: int) -> int:
        if at + 4 > len(data):
            raise FormatError("named-stream map runs past the PDB info stream", path)
        return struct.unpack_from("<I", data, at)[0]

    pos = start
    names_len = u32(pos)
    pos += 4
    if pos + names_len > len(data):
        raise FormatError("named-stream map names run past the PDB info stream", path)
    names = data[pos:pos + names_len]
    pos += names_len
    count = u32(pos)
    capacity = u32(pos + 4)
    pos += 8
    present_words = u32(pos)
    pos += 4
    if present_words * 4 > len(data) - pos or capacity > present_words * 32 or count > capacity:
        raise FormatError("named-stream map hash table is inconsistent", path)
    present = data[pos:pos + present_words * 4]
    pos += present_words * 4
    deleted_words = u32(pos)
    pos += 4
    if deleted_words * 4 > len(data) - pos:
        raise FormatError("named-stream map hash table is inconsistent", path)
    pos += deleted_words * 4
    result: dict[str, int] = {}
    found = 0
    if count * 8 > len(data) - pos:
        raise FormatError("named-stream map entries run past the PDB info stream", path)
    # Present bits in bucket order (bit k of word w is bucket 32*w + k); zero
    # words are skipped, and each set bit consumes 8 bytes already bounded above.
    for w in range(present_words):
        word = struct.unpack_from("<I", present, 4 * w)[0]
        while word:
            if found == count:
                raise FormatError(f"named-stream map says {count} entries, has more", path)
            word &= word - 1
            key, stream = u32(pos), u32(pos + 4)
            pos += 8
            found += 1
            if key >= len(names):
                raise FormatError("named-stream map name offset is out of range", path)
            name = cstring(names, key).decode("utf-8", "replace")
            result[name] = stream
    if found != count:
        raise FormatError(f"named-stream map says {count} entries, has {found}", path)
    return result


def _read_msf_pdb(reader: BoundedReader) -> PdbInfo:
    msf = Msf(reader)
    path = reader.path
    if msf.num_streams <= STREAM_PDB_INFO or msf.stream_size(STREAM_PDB_INFO) < 12:
        raise FormatError("PDB has no PDB info stream", path)
    info_size = msf.stream_size(STREAM_PDB_INFO)
    head = msf.read_stream(STREAM_PDB_INFO, 0, 28)
    version, signature, info_age = struct.unpack_from("<III", head)
    has_guid = msf.version == 7 and version >= PDB_IMPV_VC70 and len(head) >= 28
    header_len = 28 if has_guid else 12

    dbi_age: int | None = None
    if msf.num_streams > STREAM_DBI and msf.stream_size(STREAM_DBI) >= 12:
        sig, _dbi_version, age = struct.unpack("<iII", msf.read_stream(STREAM_DBI, 0, 12))
        if sig == -1:
            dbi_age = age
        else:
            # Old (pre-VC 4.1) DBI header carries no age: the info age is all there is.
            dbi_age = info_age

    if has_guid:
        debug_id = DebugId.from_guid_bytes(head[12:28], dbi_age)
        kind = "pdb"
    else:
        debug_id = DebugId.nb10(signature, dbi_age if dbi_age is not None else info_age)
        kind = "pdb2" if msf.version == 2 else "pdb"

    named: dict[str, int] = {}
    if info_size > header_len + 4:
        data = msf.read_stream(STREAM_PDB_INFO, 0, min(info_size, MAX_INFO_STREAM))
        try:
            named = _parse_named_streams(data, header_len, path)
        except FormatError:
            if kind == "pdb":
                raise
            named = {}  # old PDBs lay stream 1 out differently; identity still stands
    return PdbInfo(
        path=path, kind=kind, debug_id=debug_id, info_age=info_age, age=debug_id.age,
        signature=signature, version=version, block_size=msf.block_size, num_streams=msf.num_streams,
        named_streams=named, bytes_read=reader.bytes_read,
    )


def _read_portable_pdb(reader: BoundedReader) -> PdbInfo:
    """ECMA-335 metadata root; the PDB id (GUID + stamp) opens the ``#Pdb`` stream."""
    path = reader.path
    head = reader.read(0, min(reader.size, 4096), "metadata root")
    if len(head) < 16:
        raise FormatError("truncated portable PDB", path)
    (ver_len,) = struct.unpack_from("<I", head, 12)
    if ver_len > 255 or 16 + ver_len + 4 > len(head):
        raise FormatError("portable PDB metadata root is malformed", path)
    pos = 16 + ver_len
    _flags, n_streams = struct.unpack_from("<HH", head, pos)
    pos += 4
    for _ in range(n_streams):
        if pos + 8 > len(head):
            raise FormatError("portable PDB stream headers run past the metadata root", path)
        offset, size = struct.unpack_from("<II", head, pos)
        pos += 8
        end = head.find(b"\0", pos, pos + 32)
        if end < 0:
            raise FormatError("portable PDB stream name is not terminated", path)
        name = head[pos:end]
        pos = (end + 4) & ~3
        if name == b"#Pdb":
            if size < 20:
                raise FormatError("portable PDB #Pdb stream is too small", path)
            pdb_id = reader.read(offset, 20, "#Pdb stream")
            did = DebugId(PORTABLE, guid=DebugId.from_guid_bytes(pdb_id[:16], None).guid)
            return PdbInfo(path=path, kind="portable-pdb", debug_id=did, info_age=None, age=None,
                           signature=struct.unpack_from("<I", pdb_id, 16)[0], bytes_read=reader.bytes_read)
    raise FormatError("portable PDB has no #Pdb stream", path)


def read_pdb_file(f: BinaryIO, path: str = "<stream>", size: int | None = None) -> PdbInfo:
    reader = BoundedReader(f, path, size)
    magic = reader.read(0, min(reader.size, 44), "header") if reader.size else b""
    if magic.startswith(PORTABLE_MAGIC):
        return _read_portable_pdb(reader)
    if magic.startswith(MSF7_MAGIC) or magic.startswith(MSF2_MAGIC):
        return _read_msf_pdb(reader)
    if not magic:
        raise FormatError("empty file", path)
    raise FormatError("not a PDB (no MSF or portable PDB signature)", path)


def read_pdb(path: str | os.PathLike[str]) -> PdbInfo:
    """Identity of the PDB at ``path``: raises FormatError / OSError."""
    p = os.fspath(path)
    with open(p, "rb") as f:
        return read_pdb_file(f, p)


def open_msf(path: str | os.PathLike[str]) -> tuple[BinaryIO, Msf]:
    """Open a PDB for stream access (the caller closes the file)."""
    p = os.fspath(path)
    f = open(p, "rb")
    try:
        return f, Msf(BoundedReader(f, p))
    except BaseException:
        f.close()
        raise


__all__ = ["Msf", "PdbInfo", "read_pdb", "read_pdb_file", "open_msf", "NB10", "PDB70"]
