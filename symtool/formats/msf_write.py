"""MSF 7.00 writer: add or replace named streams (``srcsrv``, ``sourcelink``)
in an existing PDB, copy-on-write, the way Microsoft's MSF commits.

What changes and what does not:

* The new stream payloads, the PDB info stream (stream 1, whose named-stream
  map gains the names), the stream directory and its block map get **new
  pages**.  Every other stream keeps its size, its pages and its bytes: the
  GUID, the signature, the DBI stream (and its age) are byte-identical.
* The old directory becomes stream 0 ("old MSF directory"), as msf.cpp does
  on commit; the previous stream 0's pages become free.
* The free page map is written to the **inactive** FPM slot (blocks ``i*bs+1``
  or ``i*bs+2``) and the superblock switches to it.  Block 0 and FPM pages are
  never allocated; new pages are taken from pages that were free before (per
  the old FPM *and* referenced by nothing) or appended at the end.
* By default the work happens in a temp file next to the PDB: a copy of the
  original (in-kernel, reflinked where the file system can), patched, the
  superblock last, re-read and checked, fsynced, then renamed over the
  original.  A crash at any point leaves the original PDB as it was.  Cost:
  the new streams' bytes plus one copy of the file.
* ``in_place=True`` (``symtool srcindex --in-place``) skips the copy and
  commits inside the file as msf.cpp does: the new pages and FPM, fsync, then
  the superblock.  Until that last write the file's superblock still reaches
  only the old, untouched pages; the cost is the new pages alone.

The named-stream map is a serialized ``HashTable<u32 name offset, u32 stream>``
(LLVM's "The PDB Info Stream", microsoft-pdb ``nmt.h``/``map.h``)::

    u32 names_size; char names[names_size]        NUL-terminated names
    u32 size; u32 capacity
    u32 present_words; u32 present[present_words]  bit i: bucket i holds an entry
    u32 deleted_words; u32 deleted[deleted_words]  bit i: bucket i held one once
    (u32 name offset, u32 stream) per present bucket, in bucket order
    u32 feature codes[] (VC140, NoTypeMerge, MinimalDebugInfo...) to the end

A name lives in bucket ``(pdb_hash_v1(name) & 0xFFFF) % capacity`` or, by
linear probing, the next bucket that is neither present nor deleted.  After an
insertion the table grows, once ``size >= capacity*2//3 + 1``, to capacity
``2 * (capacity*2//3 + 1)``, every entry rehashed and the deleted bits cleared.

The info stream's age is **not** bumped (pdbstr bumps it): the store key and
``verify`` use the DBI age, which pdbstr leaves alone too, and keeping the
info age means every reader that shows or matches the info-stream age
(llvm-pdbutil's summary, LLVM's native PDB session, lld's type-server check)
sees the PDB it saw before indexing.  Nothing depends on the bump.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from typing import BinaryIO, Mapping

from symtool.errors import FormatError, UsageError
from symtool.formats.binio import BoundedReader
from symtool.formats.pdb import (
    BLOCK_NUMBER7, MAX_NAME_TABLE, MSF7_BLOCK_MAP_AT, MSF7_MAGIC, MSF7_SUPERBLOCK, MSF7_SUPERBLOCK_AT, NAME_PAIR,
    NAMED_MAP_HEAD, NAMED_MAP_U32, NIL_STREAM, PDB_IMPV_VC70, PDB_INFO_HEADER, STREAM_PDB_INFO, STREAM_SIZE,
    VALID_BLOCK_SIZES, NamedStreamMap, parse_named_stream_map,
)

# LHashPbCb hashes the name as little-endian u32 words, then the 1-3 trailing bytes.
HASH_WORD = struct.Struct("<I")
STREAM_OLD_DIRECTORY = 0
MAX_DIRECTORY = 256 << 20  # a directory this large means a hostile size field
MAX_STREAMS = 1 << 20  # stream numbers in the named map are u32, DBI module streams u16


def pdb_hash_v1(data: bytes) -> int:
    """Microsoft's PDB string hash (``LHashPbCb``, LLVM ``hashStringV1``), 32 bits."""
    n = len(data)
    words = n // 4
    result = 0
    if words:
        for (value,) in HASH_WORD.iter_unpack(data[:words * 4]):
            result ^= value
    pos = words * 4
    rest = n - pos
    if rest >= 2:
        result ^= data[pos] | (data[pos + 1] << 8)
        pos += 2
        rest -= 2
    if rest == 1:
        result ^= data[pos]
    result |= 0x20202020
    result ^= result >> 11
    result ^= result >> 16
    return result & 0xFFFFFFFF


def name_hash(name: bytes) -> int:
    """The bucket hash of the named-stream map: the PDB hash truncated to 16 bits."""
    return pdb_hash_v1(name) & 0xFFFF


def _words(bits: set[int]) -> bytes:
    """A sparse bit vector as written by LLVM and msf: words up to the last set bit."""
    if not bits:
        return NAMED_MAP_U32.pack(0)
    n = max(bits) // 32 + 1
    vals = [0] * n
    for b in bits:
        vals[b // 32] |= 1 << (b % 32)
    return NAMED_MAP_U32.pack(n) + struct.pack(f"<{n}I", *vals)


class NamedStreamTable(NamedStreamMap):
    """The named-stream map of a PDB info stream, editable with Microsoft's rules."""

    @classmethod
    def parse(cls, data: bytes, start: int, path: str = "") -> tuple["NamedStreamTable", int]:
        """The table at ``start`` of the info stream and the offset just past it."""
        stored, end = parse_named_stream_map(data, start, path)
        return cls(stored.names, stored.capacity, stored.buckets, stored.deleted), end

    def _find(self, name: bytes) -> tuple[int, bool]:
        """(bucket, found): the bucket holding ``name``, or the one an insertion would use."""
        start = name_hash(name) % self.capacity
        i = start
        first_unused = None
        while True:
            entry = self.buckets.get(i)
            if entry is not None:
                if self.name_at(entry[0]) == name:
                    return i, True
            else:
                if first_unused is None:
                    first_unused = i
                if i not in self.deleted:
                    break
            i = (i + 1) % self.capacity
            if i == start:
                break
        if first_unused is None:
            raise FormatError("named-stream map is full")
        return first_unused, False

    def get(self, name: str) -> int | None:
        bucket, found = self._find(name.encode("utf-8"))
        return self.buckets[bucket][1] if found else None

    def set(self, name: str, stream: int) -> None:
        raw = name.encode("utf-8")
        if b"\0" in raw or not raw:
            raise UsageError(f"invalid stream name {name!r}")
        bucket, found = self._find(raw)
        if found:
            self.buckets[bucket] = (self.buckets[bucket][0], stream)
            return
        offset = len(self.names)
        self.names += raw + b"\0"
        self.buckets[bucket] = (offset, stream)
        self.deleted.discard(bucket)
        self._grow()

    def _grow(self) -> None:
        max_load = self.capacity * 2 // 3 + 1
        if len(self.buckets) < max_load:
            return
        old = list(self.buckets.values())
        self.capacity = max_load * 2
        self.buckets = {}
        self.deleted = set()
        for key, stream in old:
            bucket, _found = self._find(self.name_at(key))
            self.buckets[bucket] = (key, stream)

    def serialize(self) -> bytes:
        out = bytearray(NAMED_MAP_U32.pack(len(self.names)) + self.names)
        out += NAMED_MAP_HEAD.pack(len(self.buckets), self.capacity)
        out += _words(set(self.buckets)) + _words(self.deleted)
        for b in sorted(self.buckets):
            out += NAME_PAIR.pack(*self.buckets[b])
        return bytes(out)


@dataclass
class MsfLayout:
    """The whole directory of an MSF 7.00 file, checked for writing."""

    path: str
    block_size: int
    fpm_block: int  # the active free page map slot, 1 or 2
    num_blocks: int
    unknown: int
    dir_bytes: int
    map_blocks: list[int]
    dir_blocks: list[int]
    sizes: list[int]  # NIL_STREAM kept as is
    blocks: list[list[int]]
    free: set[int]  # pages the active FPM marks free and nothing references
    bytes_read: int = 0

    def stream_size(self, i: int) -> int:
        s = self.sizes[i]
        return 0 if s == NIL_STREAM else s

    def is_reserved(self, b: int) -> bool:
        return b == 0 or b % self.block_size in (1, 2)


def _blocks_for(size: int, bs: int) -> int:
    return 0 if size == NIL_STREAM else -(-size // bs)


def read_layout(reader: BoundedReader) -> MsfLayout:
    """Read and check everything the writer relies on; FormatError for anything off.

    Checks: MSF 7.00 magic, block size, block count against the file, the
    directory size, every block number in range, never block 0 or an FPM
    page, and no page used by two streams (or a stream and the directory).
    """
    path = reader.path
    head = reader.read(0, min(reader.size, MSF7_BLOCK_MAP_AT), "MSF superblock")
    if not head.startswith(MSF7_MAGIC):
        if head.startswith(b"Microsoft C/C++ program database 2.00"):
            raise FormatError("MSF 2.00 PDBs (pre-VC 7) cannot be source-indexed", path)
        raise FormatError("not an MSF 7.00 PDB", path)
    if len(head) < MSF7_BLOCK_MAP_AT:
        raise FormatError("truncated MSF superblock", path)
    bs, fpm, nblocks, dir_bytes, unknown = MSF7_SUPERBLOCK.unpack_from(head, MSF7_SUPERBLOCK_AT)
    if bs not in VALID_BLOCK_SIZES:
        raise FormatError(f"invalid MSF block size {bs}", path)
    if fpm not in (1, 2):
        raise FormatError(f"invalid free page map block {fpm}", path)
    if nblocks < 3 or nblocks * bs > reader.size:
        raise FormatError(f"superblock says {nblocks} blocks of {bs} bytes, file has {reader.size} bytes", path)
    if dir_bytes < 4 or dir_bytes > min(nblocks * bs, MAX_DIRECTORY):
        raise FormatError(f"invalid stream directory size {dir_bytes}", path)
    n_dir = -(-dir_bytes // bs)
    n_map = -(-(n_dir * 4) // bs)
    if MSF7_BLOCK_MAP_AT + 4 * n_map > bs:
        raise FormatError("stream directory block map does not fit the superblock", path)
    used: dict[int, str] = {}

    def claim(b: int, what: str) -> None:
        if b >= nblocks:
            raise FormatError(f"{what} uses block {b}, past the {nblocks} blocks of the file", path)
        if b == 0 or b % bs in (1, 2):
            raise FormatError(f"{what} uses reserved block {b} (superblock or free page map)", path)
        if b in used:
            raise FormatError(f"{what} and {used[b]} both use block {b}", path)
        used[b] = what

    raw = reader.read(MSF7_BLOCK_MAP_AT, 4 * n_map, "directory block map")
    map_blocks = [b for (b,) in BLOCK_NUMBER7.iter_unpack(raw)]
    for b in map_blocks:
        claim(b, "the directory block map")
    listing = b"".join(reader.read(b * bs, bs, "directory block map") for b in map_blocks)
    dir_blocks = [b for (b,) in BLOCK_NUMBER7.iter_unpack(listing[:4 * n_dir])]
    for b in dir_blocks:
        claim(b, "the stream directory")
    directory = b"".join(reader.read(b * bs, bs, "stream directory") for b in dir_blocks)[:dir_bytes]
    (count,) = STREAM_SIZE.unpack_from(directory, 0)
    if count > MAX_STREAMS or 4 + 4 * count > dir_bytes:
        raise FormatError(f"stream count {count} does not fit the {dir_bytes}-byte directory", path)
    sizes = list(struct.unpack_from(f"<{count}I", directory, 4))
    pos = 4 + 4 * count
    blocks: list[list[int]] = []
    for i, size in enumerate(sizes):
        n = _blocks_for(size, bs)
        if n > nblocks or pos + 4 * n > dir_bytes:
            raise FormatError(f"stream {i} ({size} bytes) does not fit the directory or the file", path)
        bl = list(struct.unpack_from(f"<{n}I", directory, pos))
        pos += 4 * n
        for b in bl:
            claim(b, f"stream {i}")
        blocks.append(bl)
    if count <= STREAM_PDB_INFO or sizes[STREAM_PDB_INFO] in (0, NIL_STREAM):
        raise FormatError("PDB has no PDB info stream", path)
    # The active FPM: bit b set = page b free.  Pages it calls free that a
    # stream uses make the file suspect: refuse rather than guess.
    fpm_bytes = -(-nblocks // 8)
    fpm_raw = bytearray()
    interval = 0
    while len(fpm_raw) < fpm_bytes:
        blk = interval * bs + fpm
        if blk >= nblocks:
            break
        fpm_raw += reader.read(blk * bs, min(bs, fpm_bytes - len(fpm_raw)), "free page map")
        interval += 1
    free = set()
    for b in range(1, nblocks):
        if b // 8 < len(fpm_raw) and fpm_raw[b // 8] >> (b % 8) & 1:
            if b in used:
                if used[b] == f"stream {STREAM_OLD_DIRECTORY}":
                    continue  # msf.cpp frees the old directory's pages yet lists them in stream 0:
                    # not reused here (copy-on-write), and marked used in the FPM we write
                raise FormatError(f"free page map marks block {b} free, but {used[b]} uses it", path)
            if b % bs not in (1, 2):
                free.add(b)
    return MsfLayout(path, bs, fpm, nblocks, unknown, dir_bytes, map_blocks, dir_blocks, sizes, blocks, free,
                     reader.bytes_read)


@dataclass
class WriteReport:
    path: str
    streams: dict[str, int]  # name -> stream number written
    replaced: list[str]
    old_size: int
    new_size: int
    bytes_read: int  # parsing the original (the copy is counted separately)
    bytes_copied: int
    bytes_written: int
    mode: str = "copy"  # "copy" (temp copy renamed over the PDB) or "in-place" (MSF commit in the file)
    copy_reason: str | None = None  # why in_place=True still made a copy


def _read_info(reader: BoundedReader, layout: MsfLayout) -> tuple[bytes, NamedStreamTable, bytes]:
    """(header, table, tail) of the PDB info stream."""
    size = layout.stream_size(STREAM_PDB_INFO)
    if size > MAX_NAME_TABLE * 2:
        raise FormatError(f"PDB info stream of {size} bytes is implausibly large", layout.path)
    bs = layout.block_size
    data = b"".join(reader.read(b * bs, bs, "PDB info stream") for b in layout.blocks[STREAM_PDB_INFO])[:size]
    if len(data) < PDB_INFO_HEADER.size:
        raise FormatError("truncated PDB info stream", layout.path)
    version = PDB_INFO_HEADER.unpack_from(data, 0)[0]
    if version < PDB_IMPV_VC70:
        raise FormatError(f"PDB info stream version {version} predates named-stream maps", layout.path)
    table, end = NamedStreamTable.parse(data, PDB_INFO_HEADER.size, layout.path)
    tail = data[end:]
    if len(tail) % 4:
        raise FormatError("PDB info stream feature codes are not whole u32s", layout.path)
    return data[:PDB_INFO_HEADER.size], table, tail


def _serialize_directory(sizes: list[int], blocks: list[list[int]]) -> bytes:
    out = bytearray(STREAM_SIZE.pack(len(sizes)))
    out += struct.pack(f"<{len(sizes)}I", *sizes)
    for bl in blocks:
        if bl:
            out += struct.pack(f"<{len(bl)}I", *bl)
    return bytes(out)


class _Allocator:
    """Pages free before this commit first (lowest first), then new pages at the end."""

    def __init__(self, layout: MsfLayout):
        self.bs = layout.block_size
        self.free = sorted(layout.free, reverse=True)
        self.next = layout.num_blocks

    def take(self, n: int) -> list[int]:
        out = []
        for _ in range(n):
            if self.free:
                out.append(self.free.pop())
                continue
            while self.next % self.bs in (1, 2) or self.next == 0:
                self.next += 1
            out.append(self.next)
            self.next += 1
        return out

    @property
    def total(self) -> int:
        """Block count of the result: FPM pages of a started interval included."""
        t = self.next
        if t % self.bs in (1, 2):
            t = t - t % self.bs + 3
        return t


def _pwrite_pages(fd: int, blocks: list[int], data: bytes, bs: int) -> int:
    for k, b in enumerate(blocks):
        chunk = data[k * bs:(k + 1) * bs]
        os.pwrite(fd, chunk.ljust(bs, b"\0"), b * bs)
    return len(blocks) * bs


def write_named_streams(path: str | os.PathLike[str], streams: Mapping[str, bytes], *,
                        copy_progress=None, in_place: bool = False) -> WriteReport:
    """Add or replace the named ``streams`` of the PDB at ``path``, atomically.

    By default the commit happens in a temp copy that is fsynced and renamed
    over ``path``.  ``in_place=True`` commits inside the file itself, the way
    msf.cpp (and so pdbstr.exe) does: every new page goes where the old
    superblock references nothing, those pages and the inactive free page map
    are fsynced, then the superblock (one sector) is rewritten and fsynced.
    A crash before that write leaves the old superblock, directory and every
    old stream as they were; after it, the new PDB is complete.  It costs only
    the new pages.  A file with more than one hard link, or named through a
    symlink, is still copied (``WriteReport.mode`` and ``copy_reason`` say
    which happened and why): in place would change every name of it, e.g. a
    symbol store's copy.

    Raises FormatError (the file is left untouched) when the PDB is not an
    MSF 7.00 file this writer can vouch for.
    """
    from symtool.fsutil import atomic_temp, copy_file_data

    p = os.fspath(path)
    if not streams:
        raise UsageError("no streams to write")
    with open(p, "r+b" if in_place else "rb") as f:
        reader = BoundedReader(f, p)
        old_size = reader.size
        layout = read_layout(reader)
        commit = _plan_commit(reader, layout, streams)
        bytes_read = reader.bytes_read
        why_copy = _why_not_in_place(p, f) if in_place else None
        if in_place and why_copy is None:
            wrote = _commit_in_place(f, layout, commit, streams)
            return WriteReport(p, commit.written, commit.replaced, old_size, commit.total * layout.block_size,
                               bytes_read, 0, wrote, "in-place")
        with atomic_temp(p) as tmp:
            with open(tmp, "r+b") as out:
                f.seek(0)
                with _suppress_fadvise(f):
                    copied = copy_file_data(f, out, progress=copy_progress)
                fd = out.fileno()
                os.ftruncate(fd, commit.total * layout.block_size)
                wrote = _write_pages(fd, layout, commit)
                os.fsync(fd)  # everything before the superblock is on disk first
                wrote += _write_superblock(fd, commit.superblock)
                _check_written(out, p, streams)
            # Closed before the rename over it: Windows refuses to replace a file this process holds.
            f.close()
    return WriteReport(p, commit.written, commit.replaced, old_size, commit.total * layout.block_size,
                       bytes_read, copied, wrote, "copy", why_copy)


def _why_not_in_place(path: str, f: BinaryIO) -> str | None:
    """Why the file opened as ``f`` must not be changed in place; None when it may.

    In place changes the inode, so every other name of it too: a symlink's
    target (a store's committed PDB reached through a link in target/) or
    another hard link.  Checked on the open descriptor against ``path``
    itself (lstat), so a symlink swapped in after the caller looked is seen.
    The copy is renamed over ``path``: the link is replaced, its target kept.
    """
    st = os.fstat(f.fileno())
    try:
        lst = os.lstat(path)
    except OSError:
        return "was renamed while being indexed"
    if not stat.S_ISREG(lst.st_mode) or (lst.st_dev, lst.st_ino) != (st.st_dev, st.st_ino):
        return "is a symbolic link"
    if st.st_nlink != 1:
        return "has other hard links"
    return None


@dataclass
class _Commit:
    """Everything one commit writes: pages by block number, then the superblock."""

    written: dict[str, int]  # name -> stream number
    replaced: list[str]
    pages: list[tuple[list[int], bytes]]  # (blocks, data): payloads, info stream, directory, block map
    fpm: list[tuple[int, bytes]]  # (block, page) of the new free page map, in the inactive slot
    superblock: bytes  # from MSF7_SUPERBLOCK_AT: the header fields and the block map's block list
    total: int  # block count of the result


def _plan_commit(reader: BoundedReader, layout: MsfLayout, streams: Mapping[str, bytes]) -> _Commit:
    p = layout.path
    header, table, tail = _read_info(reader, layout)
    bs = layout.block_size
    sizes = list(layout.sizes)
    blocks = [list(bl) for bl in layout.blocks]
    alloc = _Allocator(layout)
    written: dict[str, int] = {}
    replaced = []
    pages: list[tuple[list[int], bytes]] = []
    taken = _streams_in_use(reader, table, streams, p)
    for name, data in streams.items():
        num = table.get(name)
        if num is not None and num in taken:
            # Replacing it would replace that structure's bytes (the DBI and its age, a module's
            # lines): a hostile or corrupt map, refused before anything is written.
            raise FormatError(f"named stream {name!r} points at stream {num}, which is {taken[num]}", p)
        if num is None or num >= len(sizes):
            if num is not None:
                raise FormatError(f"named stream {name!r} points at stream {num}", p)
            num = len(sizes)
            sizes.append(0)
            blocks.append([])
            table.set(name, num)
        else:
            replaced.append(name)
        bl = alloc.take(_blocks_for(len(data), bs))
        sizes[num] = len(data)
        blocks[num] = bl
        pages.append((bl, data))
        written[name] = num
    if len(sizes) > MAX_STREAMS:
        raise FormatError("too many streams", p)
    info = header + table.serialize() + tail
    info_blocks = alloc.take(_blocks_for(len(info), bs))
    sizes[STREAM_PDB_INFO] = len(info)
    blocks[STREAM_PDB_INFO] = info_blocks
    pages.append((info_blocks, info))
    # The old directory becomes stream 0, on its own (unchanged) pages.
    sizes[STREAM_OLD_DIRECTORY] = layout.dir_bytes
    blocks[STREAM_OLD_DIRECTORY] = list(layout.dir_blocks)
    directory = _serialize_directory(sizes, blocks)
    dir_blocks = alloc.take(_blocks_for(len(directory), bs))
    pages.append((dir_blocks, directory))
    listing = struct.pack(f"<{len(dir_blocks)}I", *dir_blocks)
    n_map = _blocks_for(len(listing), bs)
    if MSF7_BLOCK_MAP_AT + 4 * n_map > bs:
        raise FormatError("the new stream directory would not fit the superblock's block map", p)
    map_blocks = alloc.take(n_map)
    pages.append((map_blocks, listing))
    total = alloc.total

    # The new free page map: free = neither referenced nor reserved.
    used = set(map_blocks) | set(dir_blocks)
    for bl in blocks:
        used.update(bl)
    n_intervals = -(-total // bs)
    fpm = bytearray(b"\xff" * (n_intervals * bs))
    for b in used:
        fpm[b // 8] &= ~(1 << (b % 8)) & 0xFF
    for i in range(n_intervals):
        for b in (i * bs, i * bs + 1, i * bs + 2):
            if b == 0 or (b % bs in (1, 2)):
                fpm[b // 8] &= ~(1 << (b % 8)) & 0xFF
    for b in range(total, n_intervals * bs):
        fpm[b // 8] |= 1 << (b % 8)  # past the end: free, as LLVM writes it
    new_fpm = 3 - layout.fpm_block
    fpm_pages = [(i * bs + new_fpm, bytes(fpm[i * bs:(i + 1) * bs])) for i in range(n_intervals)
                 if i * bs + new_fpm < total]
    superblock = MSF7_SUPERBLOCK.pack(bs, new_fpm, total, len(directory), layout.unknown)
    superblock += struct.pack(f"<{n_map}I", *map_blocks)
    return _Commit(written, replaced, pages, fpm_pages, superblock, total)


def _streams_in_use(reader: BoundedReader, table: NamedStreamTable, streams: Mapping[str, bytes],
                    path: str) -> dict[int, str]:
    """Streams a named stream being written must not point at: the PDB's own structures
    (formats/pdb.py ``structural_streams``), the streams of the map's other names, and a
    stream two of the names being written share."""
    from symtool.formats.pdb import Msf, structural_streams

    taken = structural_streams(Msf(reader))
    for name, num in table.items().items():
        if name not in streams:
            taken.setdefault(num, f"the named stream {name!r}")
    seen: dict[int, str] = {}
    for name in streams:
        num = table.get(name)
        if num is None:
            continue
        if num in seen:
            raise FormatError(f"named streams {seen[num]!r} and {name!r} both point at stream {num}", path)
        seen[num] = name
    return taken


def _write_pages(fd: int, layout: MsfLayout, commit: _Commit) -> int:
    """Every page of the commit but the superblock; bytes written."""
    bs = layout.block_size
    wrote = 0
    for bl, data in commit.pages:
        wrote += _pwrite_pages(fd, bl, data, bs)
    for blk, page in commit.fpm:
        os.pwrite(fd, page, blk * bs)
        wrote += bs
    return wrote


def _write_superblock(fd: int, superblock: bytes) -> int:
    os.pwrite(fd, superblock, MSF7_SUPERBLOCK_AT)
    return len(superblock)


def _old_superblock(layout: MsfLayout) -> bytes:
    return MSF7_SUPERBLOCK.pack(layout.block_size, layout.fpm_block, layout.num_blocks, layout.dir_bytes,
                                layout.unknown) + struct.pack(f"<{len(layout.map_blocks)}I", *layout.map_blocks)


def _commit_in_place(f: BinaryIO, layout: MsfLayout, commit: _Commit, streams: Mapping[str, bytes]) -> int:
    """The commit inside the file: new pages and the inactive FPM, fsync, superblock, fsync.

    Nothing the old superblock reaches is written before the superblock
    itself: new pages are ones the old FPM marks free and nothing references,
    or past the old end, and the new FPM goes to the slot the old superblock
    does not use.  The superblock fields and the block map list (20 + 4n
    bytes at offset 32, n = 1 below 1 GiB of directory with 4 KiB pages) lie
    in the first 512-byte sector, which disks write whole.
    """
    fd = f.fileno()
    bs = layout.block_size
    size = os.fstat(fd).st_size
    if size < commit.total * bs:
        os.ftruncate(fd, commit.total * bs)
    wrote = _write_pages(fd, layout, commit)
    os.fsync(fd)
    wrote += _write_superblock(fd, commit.superblock)
    os.fsync(fd)
    try:
        _check_written(f, layout.path, streams)
    except FormatError:
        # Roll back to the old superblock: everything it references is untouched.
        _write_superblock(fd, _old_superblock(layout))
        os.fsync(fd)
        raise
    if size > commit.total * bs:
        os.ftruncate(fd, commit.total * bs)  # pages an interrupted earlier run appended
        os.fsync(fd)
    return wrote


class _suppress_fadvise:
    """Tell the kernel the copy reads the original once, front to back."""

    def __init__(self, f: BinaryIO):
        self.f = f

    def __enter__(self):
        try:
            os.posix_fadvise(self.f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except (AttributeError, OSError):
            pass

    def __exit__(self, *exc):
        return False


def _check_written(out: BinaryIO, original: str, streams: Mapping[str, bytes]) -> None:
    """Read the result back with the plain reader: the named streams must hold what we wrote."""
    from symtool.formats.pdb import Msf, _read_msf_pdb

    out.flush()
    # A file object of its own: the writer's buffer may still hold the old superblock.
    with os.fdopen(os.dup(out.fileno()), "rb") as fresh:
        info = _read_msf_pdb(BoundedReader(fresh, original))
        msf = Msf(BoundedReader(fresh, original))
        for name, data in streams.items():
            num = info.named_streams.get(name)
            if num is None or msf.read_stream(num) != data:
                raise FormatError(f"internal error: stream {name!r} did not read back; {original} left unchanged")


def read_named_stream(path: str | os.PathLike[str], name: str) -> bytes | None:
    """The bytes of the named stream ``name``; None when the PDB has no such stream."""
    from symtool.formats.pdb import open_msf, read_pdb

    info = read_pdb(path)
    num = info.named_streams.get(name)
    if num is None:
        return None
    f, msf = open_msf(path)
    with f:
        return msf.read_stream(num)


__all__ = ["write_named_streams", "read_named_stream", "NamedStreamTable", "pdb_hash_v1", "name_hash",
           "read_layout", "MsfLayout", "WriteReport"]
