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
import sys
from array import array
from collections import namedtuple

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms of `symtool id`)
if TYPE_CHECKING:  # names of annotations only
    from typing import BinaryIO, Iterable, Iterator

from symtool.budgets import Counter, limit
from symtool.errors import FormatError
from symtool.fsutil import open_regular  # a FIFO or device among inputs never blocks a read
from symtool.formats.binio import BoundedReader
from symtool.ids import NB10, PDB70, PORTABLE, DebugId

MSF7_MAGIC = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0"
MSF2_MAGIC = b"Microsoft C/C++ program database 2.00\r\n\x1aJG\0\0"
PORTABLE_MAGIC = b"BSJB"
# ECMA-335 II.24.2.1 metadata root up to the version string: Signature, MajorVersion,
# MinorVersion, Reserved, Length (of the padded version string).
METADATA_ROOT = struct.Struct("<IHHII")
METADATA_ROOT_STREAMS = struct.Struct("<HH")  # after the version string: Flags, Streams
# ECMA-335 II.24.2.2 stream header: Offset, Size, then the NUL-terminated name padded to 4 bytes.
METADATA_STREAM_HEADER = struct.Struct("<II")
# Portable PDB #Pdb stream head: PDB id = GUID, then a u32 stamp.
PORTABLE_PDB_ID = struct.Struct("<16sI")

NIL_STREAM = 0xFFFFFFFF
STREAM_OLD_DIRECTORY = 0
STREAM_PDB_INFO = 1
STREAM_TPI = 2
STREAM_DBI = 3
STREAM_IPI = 4
# Named streams of source-indexed PDBs (symtool.srcindex writes and reads them): srcsrv's text
# (pdbstr's name) and Source Link's JSON.
STREAM_SRCSRV = "srcsrv"
STREAM_SOURCELINK = "sourcelink"

# MSF 7.00 SuperBlock after the 32-byte magic: BlockSize, FreeBlockMapBlock, NumBlocks,
# NumDirectoryBytes, Unknown; BlockMapAddr[] (u32 block numbers) follows at offset 52.
MSF7_SUPERBLOCK = struct.Struct("<IIIII")
MSF7_SUPERBLOCK_AT = len(MSF7_MAGIC)
MSF7_BLOCK_MAP_AT = MSF7_SUPERBLOCK_AT + MSF7_SUPERBLOCK.size
# MSF 2.00 header after the 44-byte magic: page size, free page map page, page count,
# stream table size, reserved; u16 page numbers of the stream table follow.
MSF2_HEADER = struct.Struct("<IHHII")
MSF2_HEADER_AT = len(MSF2_MAGIC)
MSF2_TABLE_PAGES_AT = MSF2_HEADER_AT + MSF2_HEADER.size
BLOCK_NUMBER7 = struct.Struct("<I")  # a block number in MSF 7.00
STREAM_SIZE = struct.Struct("<I")  # stream count (MSF 7.00) and stream sizes in the directory
PAGE_NUMBER2 = struct.Struct("<H")  # a page number in MSF 2.00
MSF2_TABLE_HEAD = struct.Struct("<HH")  # MSF 2.00 stream table: stream count, reserved

# PDB info stream versions: from VC70 on, the stream carries a GUID.
PDB_IMPV_VC70 = 20000404
# PDBStream (microsoft-pdb pdb1.h; LLVM's "The PDB Info Stream"): Version, Signature, Age -- the
# whole header before VC70.  PDBStream70 (VC70 on) adds the GUID.
PDB_INFO_HEAD = struct.Struct("<III")
PDB_INFO_HEADER = struct.Struct(PDB_INFO_HEAD.format + "16s")
# The named-stream map after the info header (a serialized HashTable<u32 name offset, u32 stream>,
# microsoft-pdb nmt.h/map.h): each u32 field -- names size, Size, Capacity, the word counts and
# the words of the present and deleted bit vectors.
NAMED_MAP_U32 = struct.Struct("<I")
NAMED_MAP_HEAD = struct.Struct("<II")  # HashTable after the names: Size, Capacity
NAME_PAIR = struct.Struct("<II")  # hash table bucket: name offset, stream number

# TpiStreamHeader (LLVM's "The TPI & IPI Hash Streams"; the IPI stream has the same header) up to
# TypeRecordBytes: Version, HeaderSize, TypeIndexBegin, TypeIndexEnd, TypeRecordBytes; the whole
# header goes on with HashStreamIndex, HashAuxStreamIndex, HashKeySize, NumHashBuckets,
# HashValueBufferOffset, HashValueBufferLength, IndexOffsetBufferOffset, IndexOffsetBufferLength,
# HashAdjBufferOffset, HashAdjBufferLength.
TPI_STREAM_HEADER_START = struct.Struct("<5I")
TPI_STREAM_HEADER = struct.Struct(TPI_STREAM_HEADER_START.format + "HH2I6I")

# DbiStreamHeader (LLVM's "The DBI Stream"; microsoft-pdb dbi.h NewDBIHdr): VersionSignature,
# VersionHeader, Age, GlobalStreamIndex, BuildNumber, PublicStreamIndex, PdbDllVersion,
# SymRecordStream, PdbDllRbld, ModInfoSize, SectionContributionSize, SectionMapSize,
# SourceInfoSize, TypeServerMapSize, MFCTypeServerIndex, OptionalDbgHeaderSize,
# ECSubstreamSize, Flags, Machine, Padding.
DBI_HEADER = struct.Struct("<iIIHHHHHHiiiiiIiiHHI")
# DbiStreamHeader.VersionSignature alone: what tells the VC 4.1+ header from the older one.
DBI_VERSION_SIGNATURE = struct.Struct("<i")
# VersionSignature of every DBI header since VC 4.1; the older header has no age.
DBI_NEW_HEADER_SIGNATURE = -1
DBI_FLAG_STRIPPED = 0x2  # Flags: private symbols were stripped (a public PDB)
# ModInfo (LLVM's "DBI Stream", module info substream) up to ModuleName: Unused1,
# SectionContr (a 28-byte SectionContribEntry), Flags, ModuleSymStream, SymByteSize,
# C11ByteSize, C13ByteSize, SourceFileCount, Padding, Unused2, SourceFileNameIndex,
# PdbFilePathNameIndex.  Two NUL-terminated names follow, then padding to 4 bytes.
DBI_MODULE_INFO = struct.Struct("<I28sHHIIIHHIII")
# DbiStreamHeader's GlobalStreamIndex, PublicStreamIndex, SymRecordStream (u16 each) and the
# offsets at which they lie in DBI_HEADER.
DBI_STREAM_FIELDS = {"globals": 12, "publics": 16, "symbol records": 20}
DBI_STREAM_INDEX = struct.Struct("<H")
# PublicsStreamHeader (LLVM's "The PDB Public Symbol Stream"; microsoft-pdb gsi.h PSGSIHDR): SymHash
# (bytes of the GSI hash that follows), AddrMap (bytes of the address map after it), NumThunks,
# SizeOfThunk, ISectThunkTable, Padding, OffThunkTable, NumSections.  The address map is a u32 array
# of offsets into the symbol record stream, one per S_PUB32, sorted by section then offset.
PUBLICS_HEADER = struct.Struct("<IIIIHHII")
PUBLICS_ADDR_ENTRY = struct.Struct("<I")
# GSIHashHeader (LLVM's "The PDB Global Symbol Stream"; microsoft-pdb gsi.h GSIHashHdr): VerSignature
# (0xFFFFFFFF), VerHdr (GSI_HASH_VERSION), HrSize (bytes of hash records), NumBuckets (bytes of the
# bucket part: a bitmap of the non-empty buckets, then a u32 per set bit).  The globals stream is
# this hash alone; the publics stream puts PUBLICS_HEADER before it.
GSI_HASH_HEADER = struct.Struct("<IIII")
GSI_HASH_SIGNATURE = 0xFFFFFFFF
GSI_HASH_VERSION = 0xEFFE0000 + 19990810
# A hash record (HRFile): Off (offset of the symbol record in the symbol record stream, plus one), CRef.
GSI_HASH_RECORD = struct.Struct("<II")
GSI_BUCKETS = 4096  # IPHR_HASH: a name's bucket is its hash (hash_name_v1) modulo this
GSI_BITMAP_WORDS = (GSI_BUCKETS + 32) // 32  # u32 words of the non-empty bucket bitmap
GSI_BITMAP_WORD = struct.Struct("<I")
# A non-empty bucket's u32 is where its records start, counted in 12-byte units (the size of the
# in-memory HROffsetCalc the writer computed it with), not in 8-byte HRFile records.
GSI_BUCKET_UNIT = 12
# The optional debug header substream: u16 stream numbers (FPO, exception, fixup, OMAP to/from
# source, section headers, token/RID map, xdata, pdata, new FPO, original section headers).
DBG_STREAM_INDEX = struct.Struct("<H")
# TpiStreamHeader's HashStreamIndex and HashAuxStreamIndex (u16), after its five u32s.
TPI_HASH_STREAMS = struct.Struct("<HH")
NIL_STREAM16 = 0xFFFF  # a 16-bit stream number that names no stream
MAX_MODULES = 1 << 20  # module infos in one DBI stream (real PDBs: up to some 100 000)
# Limits that keep hostile files from making us allocate or loop a lot.
MAX_INFO_STREAM = 1 << 20  # the named-stream map of real PDBs is a few hundred bytes
MAX_CACHED_BLOCK_LISTS = 256  # streams whose whole block list is kept (a symbolizer reads a dozen)
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
        self._size_cache: dict[int, int] = {}  # stream -> raw size, read on demand
        self._dir_pages: dict[int, bytes] = {}  # directory page index -> its bytes, read on demand
        # stream -> its block numbers, once a stream is read a second time (symbolizing reads
        # many small pieces of a few streams; identity reads each stream once)
        self._block_lists: dict[int, array] = {}
        self._reads: dict[int, int] = {}
        self._block_list_start: list[int] | None = None  # prefix sums of block counts
        # read_dbi_header's answer, once read: identity, refs.ptr kind and symbol features of one
        # opening (publish) each ask for it
        self.dbi_header: "DbiHeader | None | bool" = False

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
        bs, _fpm, nblocks, dir_bytes, _unk = r.unpack(MSF7_SUPERBLOCK, MSF7_SUPERBLOCK_AT, "MSF superblock")
        self._set_geometry(bs, nblocks, dir_bytes, "superblock", "blocks", "stream directory")
        n_dir_blocks = -(-dir_bytes // bs)
        n_map_blocks = -(-(n_dir_blocks * BLOCK_NUMBER7.size) // bs)
        if MSF7_BLOCK_MAP_AT + BLOCK_NUMBER7.size * n_map_blocks > bs:
            raise FormatError("stream directory block map does not fit the superblock", r.path)
        raw = r.read(MSF7_BLOCK_MAP_AT, BLOCK_NUMBER7.size * n_map_blocks, "directory block map")
        map_blocks = tuple(b for (b,) in BLOCK_NUMBER7.iter_unpack(raw))
        for b in map_blocks:
            self._check_block(b)
        self._dir_map_blocks = map_blocks
        self._n_dir_blocks = n_dir_blocks
        self._dir_block_cache: dict[int, int] = {}
        self._page_number = BLOCK_NUMBER7

    def _dir_block(self, i: int) -> int:
        """Block number of the i-th directory block (reads one u32 of the block map)."""
        block = self._dir_block_cache.get(i)
        if block is None:
            per = self.block_size // BLOCK_NUMBER7.size
            map_block = self._dir_map_blocks[i // per]
            at = map_block * self.block_size + BLOCK_NUMBER7.size * (i % per)
            (block,) = self.r.unpack(BLOCK_NUMBER7, at, "directory block map")
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
            block = self._dir_pages.get(idx)
            if block is None:
                # Whole directory pages, each read once: stream sizes and block lists are
                # looked up a few bytes at a time.
                block = self._dir_pages[idx] = self.r.read(self._dir_block(idx) * bs,
                                                           min(bs, self.dir_bytes - idx * bs), "stream directory")
            out += block[within:within + take]
            offset += take
            length -= take
        return bytes(out)

    # -- MSF 2.00 ---------------------------------------------------------
    def _init_msf2(self) -> None:
        r = self.r
        bs, _fpm, nblocks, dir_bytes, _reserved = r.unpack(MSF2_HEADER, MSF2_HEADER_AT, "MSF 2.00 header")
        self._set_geometry(bs, nblocks, dir_bytes, "header", "pages", "stream table")
        n_dir_blocks = -(-dir_bytes // bs)
        if MSF2_TABLE_PAGES_AT + PAGE_NUMBER2.size * n_dir_blocks > bs:
            raise FormatError("stream table page list does not fit the header page", r.path)
        raw = r.read(MSF2_TABLE_PAGES_AT, PAGE_NUMBER2.size * n_dir_blocks, "stream table pages")
        blocks = [b for (b,) in PAGE_NUMBER2.iter_unpack(raw)]
        for b in blocks:
            self._check_block(b)
        self._dir_block_cache = dict(enumerate(blocks))
        self._n_dir_blocks = n_dir_blocks
        self._page_number = PAGE_NUMBER2

    # -- common -----------------------------------------------------------
    def _block_numbers(self, raw: bytes) -> array:
        """The page numbers of a directory block list (little-endian u32, or u16 in MSF 2.00)."""
        numbers = array(next(t for t in "HIL" if array(t).itemsize == self._page_number.size))
        numbers.frombytes(raw[:len(raw) - len(raw) % self._page_number.size])
        if sys.byteorder != "little":
            numbers.byteswap()
        return numbers

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
                (n,) = STREAM_SIZE.unpack(self._dir_read(0, STREAM_SIZE.size))
            else:
                n, _reserved = MSF2_TABLE_HEAD.unpack(self._dir_read(0, MSF2_TABLE_HEAD.size))
            # Each stream needs at least its size entry: bounds a hostile count.
            if 4 + n * self._entry_size > self.dir_bytes:
                raise FormatError(f"stream count {n} does not fit the {self.dir_bytes}-byte directory", self.r.path)
            self._num_streams = n
        return self._num_streams

    def _raw_size(self, i: int) -> int:
        size = self._size_cache.get(i)
        if size is None:
            (size,) = STREAM_SIZE.unpack(self._dir_read(4 + i * self._entry_size, STREAM_SIZE.size))
            self._size_cache[i] = size
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
                offset += self._blocks_for(self.stream_size(j)) * self._page_number.size
            return offset
        if self._block_list_start is None:
            raw = self._dir_read(4, n * self._entry_size)
            step = self._entry_size // 4
            sizes = struct.unpack(f"<{n * step}I", raw)[::step]
            starts = []
            acc = offset
            for s in sizes:
                starts.append(acc)
                acc += (0 if s == NIL_STREAM else self._blocks_for(s)) * self._page_number.size
            if acc > self.dir_bytes:
                raise FormatError("stream directory is shorter than its streams' block lists", self.r.path)
            self._block_list_start = starts
        return self._block_list_start[i]

    def stream_blocks(self, i: int) -> list[int]:
        size = self.stream_size(i)
        count = self._blocks_for(size)
        if count * self.block_size > self.num_blocks * self.block_size:
            raise FormatError(f"stream {i} is larger than the file", self.r.path)
        raw = self._dir_read(self._block_list_offset(i), count * self._page_number.size)
        return [b for (b,) in self._page_number.iter_unpack(raw)]

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
        cached = self._block_lists.get(i)
        if cached is not None:
            blocks = cached[first:last + 1]
        elif self._reads.get(i, 0) >= 1 and len(self._block_lists) < MAX_CACHED_BLOCK_LISTS:
            # Read again: keep its whole block list (4 bytes per block of the stream) so that
            # many small reads cost no directory reads.
            raw = self._dir_read(self._block_list_offset(i), self._blocks_for(size) * self._page_number.size)
            cached = self._block_numbers(raw)
            if cached:
                self._check_block(max(cached))  # every block is checked: the greatest is
            self._block_lists[i] = cached
            blocks = cached[first:last + 1]
        else:
            self._reads[i] = self._reads.get(i, 0) + 1
            # Read only the part of the block list we need.
            list_off = self._block_list_offset(i) + first * self._page_number.size
            count = last - first + 1
            raw = self._dir_read(list_off, count * self._page_number.size)
            blocks = [b for (b,) in self._page_number.iter_unpack(raw)]
            for b in blocks:
                self._check_block(b)
        if len(blocks) == 1:
            return self.r.read(blocks[0] * bs + offset % bs, length, f"stream {i}")
        parts = []
        pos = offset
        end = offset + length
        # Consecutive blocks (the common layout) are read with one call.
        k = 0
        while k < len(blocks):
            run = 1
            while k + run < len(blocks) and blocks[k + run] == blocks[k] + run:
                run += 1
            within = pos % bs
            take = min(run * bs - within, end - pos)
            parts.append(self.r.read(blocks[k] * bs + within, take, f"stream {i}"))
            pos += take
            k += run
        return parts[0] if len(parts) == 1 else b"".join(parts)


# -- CodeView records (the symbol readers: formats.pdb_symbols, and symtool.usable) --------

# CodeView record prefix (cvinfo.h; symbol, type and id records): RecordLen (bytes after this
# field), RecordKind.
CV_RECORD_PREFIX = struct.Struct("<HH")

# Symbol kinds (cvinfo.h SYM_ENUM_e).
S_END = 0x0006
S_THUNK32 = 0x1102
S_BLOCK32 = 0x1103
S_WITH32 = 0x1104
S_PUB32 = 0x110E
S_PROCREF = 0x1125
S_LPROCREF = 0x1127
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


# -- DBI stream ------------------------------------------------------------

# Substreams after the DBI header, in the order they are stored.
DBI_SUBSTREAMS = ("module_info", "section_contributions", "section_map", "source_info", "type_server_map",
                  "ec", "optional_debug_header")


# The record types of this module are namedtuples and plain classes, not dataclasses: `symtool id`
# reads a PDB through them, and the dataclasses module (with what it imports) and the methods it
# compiles for each class were a third of what that command added to Python's start.


class DbiHeader(namedtuple("DbiHeader", "age sym_record_stream flags machine sizes publics_stream globals_stream",
                           defaults=(NIL_STREAM16, NIL_STREAM16))):
    """The fields of a (VC 4.1 and later) DBI header that symtool uses.

    ``sym_record_stream``: S_PUB32 and other global symbol records; ``sizes``: DBI_SUBSTREAMS
    name -> size in bytes, checked against the stream; ``publics_stream``: the publics (PSGSI)
    stream, whose address map sorts S_PUB32s; ``globals_stream``: the globals (GSI) stream, a name
    hash of S_PROCREF and other globals."""

    __slots__ = ()

    @property
    def stripped(self) -> bool:
        """Private symbols were stripped (``llvm-pdbutil``'s "Is stripped")."""
        return bool(self.flags & DBI_FLAG_STRIPPED)

    def substream(self, name: str) -> tuple[int, int]:
        """(offset in the DBI stream, size) of one of DBI_SUBSTREAMS."""
        offset = DBI_HEADER.size
        for each in DBI_SUBSTREAMS:
            if each == name:
                return offset, self.sizes[name]
            offset += self.sizes[each]
        raise KeyError(name)


def read_dbi_header(msf: Msf) -> DbiHeader | None:
    """The DBI header; None when the PDB has no DBI stream or an old (pre-VC 4.1)
    one, which has neither an age nor module infos in this layout.

    Raises FormatError for a truncated header or substream sizes that do not
    fit the stream.
    """
    if msf.dbi_header is False:
        msf.dbi_header = _read_dbi_header(msf)
    return msf.dbi_header


def _read_dbi_header(msf: Msf) -> DbiHeader | None:
    path = msf.r.path
    size = msf.stream_size(STREAM_DBI)
    if size == 0:
        return None
    head = msf.read_stream(STREAM_DBI, 0, DBI_HEADER.size)
    if len(head) >= 4 and DBI_VERSION_SIGNATURE.unpack_from(head)[0] != DBI_NEW_HEADER_SIGNATURE:
        return None
    if len(head) < DBI_HEADER.size:
        raise FormatError(f"truncated DBI header ({len(head)} bytes)", path)
    (_sig, _version, age, globals_stream, _build, publics, _dll_version, sym_records, _rebuild,
     mod_info, section_contributions, section_map, source_info, type_server_map, _mfc,
     optional_debug_header, ec, flags, machine, _pad) = DBI_HEADER.unpack(head)
    sizes = dict(zip(DBI_SUBSTREAMS, (mod_info, section_contributions, section_map, source_info, type_server_map,
                                      ec, optional_debug_header)))
    if any(n < 0 for n in sizes.values()) or DBI_HEADER.size + sum(sizes.values()) > size:
        raise FormatError("DBI substream sizes do not fit the DBI stream", path)
    return DbiHeader(age, sym_records, flags, machine, sizes, publics, globals_stream)


class ModuleInfo(namedtuple("ModuleInfo", "index stream sym_bytes c11_bytes c13_bytes name obj_name")):
    """One module (compiland) of the DBI module-info substream.

    ``stream``: its symbol and line stream, NIL_STREAM16 when it has none; ``sym_bytes``: size
    of the symbol records (after a 4-byte signature); ``c11_bytes``: of the old (C11) line
    information; ``c13_bytes``: of the C13 debug subsections."""

    __slots__ = ()

    @property
    def has_stream(self) -> bool:
        return self.stream != NIL_STREAM16


def iter_modules(msf: Msf, dbi: DbiHeader | None = None) -> Iterator[ModuleInfo]:
    """The module infos of the DBI stream, in order (nothing without a DBI header)."""
    path = msf.r.path
    if dbi is None:
        dbi = read_dbi_header(msf)
        if dbi is None:
            return
    offset, size = dbi.substream("module_info")
    data = msf.read_stream(STREAM_DBI, offset, size)
    pos = 0
    index = 0
    while pos + DBI_MODULE_INFO.size <= len(data):
        if index >= MAX_MODULES:
            raise FormatError("too many modules in the DBI stream", path)
        (_unused1, _contribution, _flags, stream, sym_bytes, c11_bytes, c13_bytes, _files, _pad, _unused2,
         _file_name_index, _pdb_path_index) = DBI_MODULE_INFO.unpack_from(data, pos)
        name_at = pos + DBI_MODULE_INFO.size
        name_end = data.find(b"\0", name_at)
        if name_end < 0:
            raise FormatError("DBI module name is not terminated", path)
        obj_end = data.find(b"\0", name_end + 1)
        if obj_end < 0:
            raise FormatError("DBI object file name is not terminated", path)
        yield ModuleInfo(index, stream, sym_bytes, c11_bytes, c13_bytes,
                         data[name_at:name_end].decode("utf-8", "replace"),
                         data[name_end + 1:obj_end].decode("utf-8", "replace"))
        index += 1
        pos = (obj_end + 1 + 3) & ~3  # records are 4-byte aligned



def structural_streams(msf: Msf) -> dict[int, str]:
    """Stream number -> what it is, for every stream the PDB's own structures name.

    The fixed streams 0-4, the TPI/IPI hash streams, the DBI header's globals,
    publics and symbol-record streams, the optional debug header's streams
    (section headers, FPO, OMAP...) and every module stream.  A named stream
    (``srcsrv``, ``sourcelink``) that points at one of these aliases it:
    replacing its bytes would replace the DBI, a module's symbols and lines.
    Reads the DBI module infos once (bounded by the DBI stream's size).
    """
    out = {STREAM_OLD_DIRECTORY: "the old MSF directory", STREAM_PDB_INFO: "the PDB info stream",
           STREAM_TPI: "the TPI stream", STREAM_DBI: "the DBI stream", STREAM_IPI: "the IPI stream"}
    for stream, what in ((STREAM_TPI, "TPI"), (STREAM_IPI, "IPI")):
        head = msf.read_stream(stream, TPI_STREAM_HEADER_START.size, TPI_HASH_STREAMS.size)
        if len(head) == TPI_HASH_STREAMS.size:
            for k, num in enumerate(TPI_HASH_STREAMS.unpack(head)):
                if num != NIL_STREAM16:
                    out.setdefault(num, f"the {what} hash{' aux' if k else ''} stream")
    dbi = read_dbi_header(msf)
    if dbi is None:
        return out
    head = msf.read_stream(STREAM_DBI, 0, DBI_HEADER.size)
    for what, at in DBI_STREAM_FIELDS.items():
        (num,) = DBI_STREAM_INDEX.unpack_from(head, at)
        if num != NIL_STREAM16:
            out.setdefault(num, f"the DBI {what} stream")
    offset, size = dbi.substream("optional_debug_header")
    dbg = msf.read_stream(STREAM_DBI, offset, size)
    for k, (num,) in enumerate(DBG_STREAM_INDEX.iter_unpack(dbg[:len(dbg) - len(dbg) % 2])):
        if num != NIL_STREAM16:
            out.setdefault(num, f"DBI debug stream {k}")
    for mod in iter_modules(msf, dbi):
        if mod.has_stream:
            out.setdefault(mod.stream, f"module {mod.index}'s symbol and line stream")
    return out

# -- source files and their checksums ---------------------------------------

# DBI file info substream head: NumModules, NumSourceFiles (u16, overflows: not used).
DBI_FILE_INFO_HEAD = struct.Struct("<HH")
C13_SUBSECTION = struct.Struct("<II")  # DEBUG_S_* kind, length
C13_FILE_CHECKSUM = struct.Struct("<IBB")  # FileChecksumEntryHeader: name offset in /names, size, kind
NAMES_HEADER = struct.Struct("<III")  # /names: signature 0xEFFEEFFE, version, buffer size
NAMES_SIGNATURE = 0xEFFEEFFE
DEBUG_S_IGNORE = 0x80000000
DEBUG_S_FILECHKSMS = 0xF4
# CV_SourceChksum_t
CHECKSUM_KINDS = {1: "md5", 2: "sha1", 3: "sha256"}
CHECKSUM_SIZES = {"md5": 16, "sha1": 20, "sha256": 32}


class SourceFile(namedtuple("SourceFile", "path algorithm digest conflict", defaults=(None, None, False))):
    """A source file as the PDB records it: ``path`` exactly as written (either separator, any
    case); ``algorithm`` md5, sha1 or sha256, None when the PDB has no checksum; ``digest`` in
    lower-case hex; ``conflict``: modules record different checksums for this path."""

    __slots__ = ()


def _names_buffer(msf: Msf, stream: int | None) -> bytes:
    if stream is None or stream >= msf.num_streams:
        return b""
    raw = msf.read_stream(stream)
    if len(raw) < NAMES_HEADER.size:
        raise FormatError("truncated /names stream", msf.r.path)
    sig, _version, size = NAMES_HEADER.unpack_from(raw)
    if sig != NAMES_SIGNATURE or NAMES_HEADER.size + size > len(raw):
        raise FormatError("/names stream is malformed", msf.r.path)
    return raw[NAMES_HEADER.size:NAMES_HEADER.size + size]


class _Names:
    """The file names of one names buffer (``/names``, the DBI file info), by offset.

    A hostile buffer without NULs, read at many distinct offsets, would make
    each name as long as the rest of the buffer: memory and time quadratic in
    its size.  Each offset is decoded once, a name ends within PDB_NAME bytes
    (else BudgetError), and all names of the PDB together stay within
    PDB_NAMES_TOTAL (``total``, shared by the buffers of one PDB).
    """

    def __init__(self, buf: bytes, what: str, path: str, total: Counter):
        self.buf, self.what, self.path, self.total = buf, what, path, total
        self.cap = limit("PDB_NAME")
        self.cache: dict[int, str] = {}

    def at(self, off: int) -> str:
        name = self.cache.get(off)
        if name is not None:
            return name
        end = self.buf.find(b"\0", off, off + self.cap + 1)
        if end < 0:
            end = len(self.buf)
            if end - off > self.cap:
                from symtool.budgets import exceeded

                raise exceeded("PDB_NAME", f"a file name in {self.what} (at {off}) is not terminated", self.path)
        self.total.spend(end - off)
        name = self.cache[off] = self.buf[off:end].decode("utf-8", "replace")
        return name


def _checksums_of_module(msf: Msf, mod: ModuleInfo, names: "_Names", out: dict[str, SourceFile],
                         streams_read: Counter, seen_streams: set[int]) -> None:
    path = msf.r.path
    if not mod.has_stream or mod.c13_bytes <= 0:
        return
    if mod.stream in seen_streams:
        # Modules have a stream each; one named again by another module holds the same
        # checksums. Read once: N modules sharing one stream cost N times its size otherwise.
        return
    seen_streams.add(mod.stream)
    start = mod.sym_bytes + mod.c11_bytes
    if mod.stream >= msf.num_streams or start + mod.c13_bytes > msf.stream_size(mod.stream):
        raise FormatError(f"module {mod.index}'s line information runs past its stream", path)
    streams_read.spend(mod.c13_bytes)
    data = msf.read_stream(mod.stream, start, mod.c13_bytes)
    pos = 0
    while pos + C13_SUBSECTION.size <= len(data):
        kind, length = C13_SUBSECTION.unpack_from(data, pos)
        body = pos + C13_SUBSECTION.size
        if body + length > len(data):
            raise FormatError(f"module {mod.index}: C13 subsection runs past its stream", path)
        if kind & ~DEBUG_S_IGNORE == DEBUG_S_FILECHKSMS and not kind & DEBUG_S_IGNORE:
            at, end = body, body + length
            while at + C13_FILE_CHECKSUM.size <= end:
                name_off, size, ckind = C13_FILE_CHECKSUM.unpack_from(data, at)
                at += C13_FILE_CHECKSUM.size
                if at + size > end:
                    raise FormatError(f"module {mod.index}: file checksum runs past its subsection", path)
                digest = data[at:at + size]
                at = (at + size + 3) & ~3
                if name_off >= len(names.buf):
                    raise FormatError(f"module {mod.index}: file name offset {name_off} is out of range", path)
                name = names.at(name_off)
                algorithm = CHECKSUM_KINDS.get(ckind)
                if algorithm is None or CHECKSUM_SIZES[algorithm] != size:
                    algorithm, hexdigest = None, None
                else:
                    hexdigest = digest.hex()
                seen = out.get(name)
                if seen is None:
                    out[name] = SourceFile(name, algorithm, hexdigest)
                elif (seen.algorithm, seen.digest) != (algorithm, hexdigest) and not seen.conflict:
                    out[name] = SourceFile(name, seen.algorithm, seen.digest, conflict=True)
        pos = (body + length + 3) & ~3


def iter_source_files(msf: Msf, named_streams: dict[str, int] | None = None) -> list[SourceFile]:
    """Every source file of the PDB: the C13 file checksums of each module (with
    their checksums), then the DBI file info's names not seen there.  Paths are
    kept exactly as written; order is the PDB's.
    """
    path = msf.r.path
    dbi = read_dbi_header(msf)
    if dbi is None:
        return []
    if named_streams is None:
        named_streams = read_pdb_file(msf.r.f, path).named_streams
    total_names = Counter("PDB_NAMES_TOTAL", what="file names of the PDB", path=path)
    names = _Names(_names_buffer(msf, named_streams.get("/names")), "/names", path, total_names)
    # Bytes of module streams read, proportional to the file: PDB_STREAMS_READ times its size.
    file_size = msf.num_blocks * msf.block_size
    streams_read = Counter("PDB_STREAMS_READ", limit("PDB_STREAMS_READ") * max(file_size, 1 << 20),
                           what="module streams read for the PDB's source files", path=path, unit="bytes")
    seen_streams: set[int] = set()
    found: dict[str, SourceFile] = {}
    for mod in iter_modules(msf, dbi):
        _checksums_of_module(msf, mod, names, found, streams_read, seen_streams)
    offset, size = dbi.substream("source_info")
    if size >= DBI_FILE_INFO_HEAD.size:
        data = msf.read_stream(STREAM_DBI, offset, size)
        n_mods, _n_files = DBI_FILE_INFO_HEAD.unpack_from(data)
        pos = DBI_FILE_INFO_HEAD.size + 2 * n_mods  # skip ModIndices
        if pos + 2 * n_mods > len(data):
            raise FormatError("DBI file info runs past its substream", path)
        counts = struct.unpack_from(f"<{n_mods}H", data, pos)
        pos += 2 * n_mods
        total = sum(counts)
        if pos + 4 * total > len(data):
            raise FormatError("DBI file info runs past its substream", path)
        offsets = struct.unpack_from(f"<{total}I", data, pos)
        buf = _Names(data[pos + 4 * total:], "the DBI file info", path, total_names)
        for off in dict.fromkeys(offsets):
            if off >= len(buf.buf):
                raise FormatError("DBI file name offset is out of range", path)
            name = buf.at(off)
            if name not in found:
                found[name] = SourceFile(name)
    return list(found.values())


class PdbInfo:
    """What identifies a PDB, plus what later work needs from stream 1."""

    __slots__ = ("path", "kind", "debug_id", "info_age", "age", "signature", "version", "block_size",
                 "num_streams", "named_streams", "bytes_read")

    def __init__(self, path: str, kind: str, debug_id: DebugId, info_age: int | None, age: int | None,
                 signature: int | None = None, version: int | None = None, block_size: int | None = None,
                 num_streams: int | None = None, named_streams: dict[str, int] | None = None,
                 bytes_read: int = 0) -> None:
        self.path = path
        self.kind = kind  # "pdb" (MSF 7.00), "pdb2" (MSF 2.00), "portable-pdb"
        self.debug_id = debug_id
        self.info_age = info_age  # PDB info stream age (pdbstr bumps it)
        self.age = age  # DBI age: what debuggers and symstore match; None without DBI
        self.signature = signature  # info stream signature (a timestamp)
        self.version = version  # info stream version
        self.block_size = block_size
        self.num_streams = num_streams
        self.named_streams = {} if named_streams is None else named_streams
        self.bytes_read = bytes_read

    def __repr__(self) -> str:
        return f"PdbInfo({self.path!r}, {self.kind!r}, {self.index})"

    @property
    def guid(self) -> str | None:
        return self.debug_id.guid_str

    @property
    def index(self) -> str:
        return self.debug_id.index()


# Bounds for the named-stream map: a name table or bucket count beyond these is hostile.
MAX_NAME_TABLE = 1 << 20
MAX_CAPACITY = 1 << 16  # bucket counts beyond the 16-bit hash make no sense


def bit_set(words: bytes) -> set[int]:
    out = set()
    for w, (value,) in enumerate(NAMED_MAP_U32.iter_unpack(words)):
        while value:
            low = value & -value
            out.add(32 * w + low.bit_length() - 1)
            value ^= low
    return out


class NamedStreamMap:
    """The named-stream map of a PDB info stream, as stored: the one reader of it
    (identity reading uses :meth:`items`; the writer edits a copy)."""

    def __init__(self, names: bytearray, capacity: int, buckets: dict[int, tuple[int, int]],
                 deleted: set[int] | None = None) -> None:
        self.names = names
        self.capacity = capacity
        self.buckets = buckets  # bucket -> (name offset, stream)
        self.deleted = set() if deleted is None else deleted

    def name_at(self, offset: int) -> bytes:
        return bytes(self.names[offset:self.names.index(b"\0", offset)])

    def items(self) -> dict[str, int]:
        return {self.name_at(k).decode("utf-8", "replace"): s for k, s in self.buckets.values()}


def parse_named_stream_map(data: bytes, start: int, path: str = "") -> tuple[NamedStreamMap, int]:
    """The named-stream map at ``start`` of the info stream, and the offset just past it.

    Layout: u32 names size, names, then a hash table: u32 count, u32 capacity,
    present bit vector (u32 words), deleted bit vector (u32 words), then a
    (u32 name offset, u32 stream) pair per present bit, in bucket order.
    """
    def u32(at: int) -> int:
        if at + 4 > len(data):
            raise FormatError("named-stream map runs past the PDB info stream", path)
        return NAMED_MAP_U32.unpack_from(data, at)[0]

    pos = start
    names_len = u32(pos)
    pos += 4
    if names_len > MAX_NAME_TABLE or pos + names_len > len(data):
        raise FormatError("named-stream map names run past the PDB info stream", path)
    names = bytearray(data[pos:pos + names_len])
    pos += names_len
    size, capacity = u32(pos), u32(pos + 4)
    pos += 8
    if capacity == 0 or capacity > MAX_CAPACITY or size > capacity:
        raise FormatError(f"named-stream map has size {size} and capacity {capacity}", path)
    present_words = u32(pos)
    pos += 4
    if present_words * 4 > len(data) - pos or present_words > -(-capacity // 32):
        raise FormatError("named-stream map present bits are inconsistent", path)
    present = bit_set(data[pos:pos + present_words * 4])
    pos += present_words * 4
    deleted_words = u32(pos)
    pos += 4
    if deleted_words * 4 > len(data) - pos or deleted_words > -(-capacity // 32):
        raise FormatError("named-stream map deleted bits are inconsistent", path)
    deleted = bit_set(data[pos:pos + deleted_words * 4])
    pos += deleted_words * 4
    if len(present) != size or any(b >= capacity for b in present | deleted) or present & deleted:
        raise FormatError("named-stream map bits disagree with its size or capacity", path)
    if size * NAME_PAIR.size > len(data) - pos:
        raise FormatError("named-stream map entries run past the PDB info stream", path)
    buckets = {}
    seen = set()
    for b in sorted(present):
        key, stream = NAME_PAIR.unpack_from(data, pos)
        pos += NAME_PAIR.size
        end = names.find(b"\0", key)
        if key >= len(names) or end < 0:
            raise FormatError("named-stream map name offset is out of range", path)
        if bytes(names[key:end]) in seen:
            raise FormatError("named-stream map holds a name twice", path)
        seen.add(bytes(names[key:end]))
        buckets[b] = (key, stream)
    return NamedStreamMap(names, capacity, buckets, deleted), pos


# -- what the debug info holds (symtool.usable) -------------------------------

# Optional debug header slots (u16 stream numbers): 0 FPO data, 9 new FPO (frame data): x86 unwind info.
OPTIONAL_DEBUG_SLOT = struct.Struct("<H")
DBG_FPO, DBG_NEW_FPO = 0, 9
DEBUG_S_LINES = 0xF2
DEBUG_S_INLINEELINES = 0xF6
MAX_C13_HEADERS = 1 << 16  # subsection headers read per PDB by c13_kinds (a few per module)


def has_frame_data(msf: Msf, dbi: DbiHeader) -> bool:
    """Does the PDB carry x86 FPO or frame data (the optional debug header's FPO/new FPO streams)?"""
    offset, size = dbi.substream("optional_debug_header")
    slots = msf.read_stream(STREAM_DBI, offset, size)
    for slot in (DBG_FPO, DBG_NEW_FPO):
        at = slot * OPTIONAL_DEBUG_SLOT.size
        if at + OPTIONAL_DEBUG_SLOT.size <= len(slots):
            (stream,) = OPTIONAL_DEBUG_SLOT.unpack_from(slots, at)
            if stream != NIL_STREAM16 and stream < msf.num_streams and msf.stream_size(stream) > 0:
                return True
    return False


def c13_kinds(msf: Msf, modules: Iterable[ModuleInfo], wanted: set[int],
              budget: int = MAX_C13_HEADERS) -> set[int]:
    """Which of the ``wanted`` DEBUG_S_* subsection kinds the modules' C13 data holds.

    Only the 8-byte subsection headers are read, each one's length leading to the
    next, and at most ``budget`` of them: a 1 GiB PDB costs a few reads per module,
    never its line data.  Stops as soon as every wanted kind was seen.
    """
    found: set[int] = set()
    for mod in modules:
        if not mod.has_stream or mod.c13_bytes <= 0 or mod.stream >= msf.num_streams:
            continue
        pos, end = mod.sym_bytes + mod.c11_bytes, mod.sym_bytes + mod.c11_bytes + mod.c13_bytes
        while pos + C13_SUBSECTION.size <= end and budget > 0:
            budget -= 1
            head = msf.read_stream(mod.stream, pos, C13_SUBSECTION.size)
            if len(head) < C13_SUBSECTION.size:
                break
            kind, length = C13_SUBSECTION.unpack(head)
            if kind & ~DEBUG_S_IGNORE in wanted:
                found.add(kind & ~DEBUG_S_IGNORE)
                if found == wanted:
                    return found
            pos += C13_SUBSECTION.size + ((length + 3) & ~3)
        if budget <= 0:
            break
    return found


def _read_msf_pdb(reader: BoundedReader) -> PdbInfo:
    return msf_pdb_info(Msf(reader))


def msf_pdb_info(msf: Msf) -> PdbInfo:
    """The identity of the MSF PDB opened as ``msf`` (its caller may go on reading other streams
    through the same ``msf``: publish judges a PDB's symbols from the directory pages read here)."""
    reader = msf.r
    path = reader.path
    if msf.num_streams <= STREAM_PDB_INFO or msf.stream_size(STREAM_PDB_INFO) < 12:
        raise FormatError("PDB has no PDB info stream", path)
    info_size = msf.stream_size(STREAM_PDB_INFO)
    head = msf.read_stream(STREAM_PDB_INFO, 0, 28)
    version, signature, info_age = PDB_INFO_HEAD.unpack_from(head)
    has_guid = msf.version == 7 and version >= PDB_IMPV_VC70 and len(head) >= 28
    header_len = 28 if has_guid else 12

    dbi_age: int | None = None
    dbi = read_dbi_header(msf)
    if dbi is not None:
        dbi_age = dbi.age
    elif msf.stream_size(STREAM_DBI) > 0:
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
            named = parse_named_stream_map(data, header_len, path)[0].items()
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
    _sig, _major, _minor, _reserved, ver_len = METADATA_ROOT.unpack_from(head, 0)
    if ver_len > 255 or 16 + ver_len + 4 > len(head):
        raise FormatError("portable PDB metadata root is malformed", path)
    pos = 16 + ver_len
    _flags, n_streams = METADATA_ROOT_STREAMS.unpack_from(head, pos)
    pos += 4
    for _ in range(n_streams):
        if pos + 8 > len(head):
            raise FormatError("portable PDB stream headers run past the metadata root", path)
        offset, size = METADATA_STREAM_HEADER.unpack_from(head, pos)
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
            did = DebugId(PORTABLE, guid_le=pdb_id[:16])
            return PdbInfo(path=path, kind="portable-pdb", debug_id=did, info_age=None, age=None,
                           signature=PORTABLE_PDB_ID.unpack(pdb_id)[1], bytes_read=reader.bytes_read)
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
    with open_regular(p) as f:
        return read_pdb_file(f, p)


def open_msf(path: str | os.PathLike[str]) -> tuple[BinaryIO, Msf]:
    """Open a PDB for stream access (the caller closes the file)."""
    p = os.fspath(path)
    f = open_regular(p)
    try:
        return f, Msf(BoundedReader(f, p))
    except BaseException:
        f.close()
        raise


__all__ = ["Msf", "PdbInfo", "read_pdb", "read_pdb_file", "open_msf", "NB10", "PDB70", "DbiHeader",
           "read_dbi_header", "ModuleInfo", "iter_modules", "SourceFile", "iter_source_files"]
