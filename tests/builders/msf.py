"""MSF container writers (tests): MSF 7.00 (every PDB since VC 7) and the old
MSF 2.00 ("program database 2.00").

Layouts from LLVM's "The MSF File Format" and Microsoft's microsoft-pdb
(msf.cpp), declared here independently of symtool.formats.pdb (see
tests/builders/__init__.py).
"""

from __future__ import annotations

import random
import struct

MSF7_MAGIC = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0"
MSF2_MAGIC = b"Microsoft C/C++ program database 2.00\r\n\x1aJG\0\0"
NIL_SIZE = 0xFFFFFFFF  # a stream that does not exist (as opposed to an empty one)

# MSF 7.00 SuperBlock after the magic: BlockSize, FreeBlockMapBlock, NumBlocks,
# NumDirectoryBytes, Unknown; BlockMapAddr[] follows at offset 52.
MSF7_SUPERBLOCK = struct.Struct("<32sIIIII")
# MSF 2.00 header: magic (44 bytes), u32 page size, u16 free page map page, u16 page count,
# stream table { u32 size, u32 reserved }; u16 page numbers of the stream table follow.
MSF2_HEADER = struct.Struct("<44sIHHII")
MSF2_TABLE_HEAD = struct.Struct("<HH")  # stream count, reserved
MSF2_STREAM_ENTRY = struct.Struct("<iI")  # size (-1: nil), reserved


def _u32s(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def build_msf7(streams: list[bytes | None], block_size: int = 4096, *, shuffle_seed: int | None = None) -> bytes:
    """An MSF 7.00 file holding ``streams`` (None: a nil stream), laid out as
    microsoft-pdb does: block 0 superblock, blocks 1-2 (and 1-2 of every
    interval) free block maps, the directory's block list in as many "map"
    blocks as it needs, listed from offset 52 of the superblock.
    ``shuffle_seed`` scatters blocks in random order so that readers must
    follow the block lists."""
    bs = block_size
    nblocks_of = [0 if s is None else -(-len(s) // bs) for s in streams]
    dir_bytes = 4 + 4 * len(streams) + 4 * sum(nblocks_of)
    n_dir = -(-dir_bytes // bs)
    n_map = -(-(4 * n_dir) // bs)
    if MSF7_SUPERBLOCK.size + 4 * n_map > bs:
        raise ValueError("directory too large for this block size")
    need = sum(nblocks_of) + n_dir + n_map
    free: list[int] = []
    b = 1
    while len(free) < need:
        if b % bs not in (1, 2):  # the two free block maps of each interval
            free.append(b)
        b += 1
    total = b + (2 if b % bs in (1, 2) else 0)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(free)
    it = iter(free)
    stream_blocks = [[next(it) for _ in range(n)] for n in nblocks_of]
    dir_blocks = [next(it) for _ in range(n_dir)]
    map_blocks = [next(it) for _ in range(n_map)]
    out = bytearray(total * bs)

    def put(blocks: list[int], data: bytes) -> None:
        for k, blk in enumerate(blocks):
            chunk = data[k * bs:(k + 1) * bs]
            out[blk * bs:blk * bs + len(chunk)] = chunk

    for s, blocks in zip(streams, stream_blocks):
        if s is not None:
            put(blocks, s)
    directory = _u32s([len(streams)]) + _u32s([NIL_SIZE if s is None else len(s) for s in streams])
    directory += b"".join(_u32s(bl) for bl in stream_blocks)
    put(dir_blocks, directory)
    put(map_blocks, _u32s(dir_blocks))
    head = MSF7_SUPERBLOCK.pack(MSF7_MAGIC, bs, 1, total, dir_bytes, 0) + _u32s(map_blocks)
    out[:len(head)] = head
    return bytes(out)


def build_msf2(streams: list[bytes | None], page_size: int = 1024) -> bytes:
    """An MSF 2.00 file: pages 0 (header) and 1 (free page map), then the
    streams' pages in order, then the stream table's pages."""
    ps = page_size
    pages_of = [0 if s is None else -(-len(s) // ps) for s in streams]
    table_bytes = MSF2_TABLE_HEAD.size + MSF2_STREAM_ENTRY.size * len(streams) + 2 * sum(pages_of)
    n_table = -(-table_bytes // ps)
    next_page = 2
    stream_pages = []
    for n in pages_of:
        stream_pages.append(list(range(next_page, next_page + n)))
        next_page += n
    table_pages = list(range(next_page, next_page + n_table))
    total = next_page + n_table
    out = bytearray(total * ps)

    def put(pages: list[int], data: bytes) -> None:
        for k, pg in enumerate(pages):
            chunk = data[k * ps:(k + 1) * ps]
            out[pg * ps:pg * ps + len(chunk)] = chunk

    for s, pages in zip(streams, stream_pages):
        if s is not None:
            put(pages, s)
    table = MSF2_TABLE_HEAD.pack(len(streams), 0)
    table += b"".join(MSF2_STREAM_ENTRY.pack(-1 if s is None else len(s), 0) for s in streams)
    table += b"".join(struct.pack(f"<{len(p)}H", *p) for p in stream_pages)
    put(table_pages, table)
    head = MSF2_HEADER.pack(MSF2_MAGIC, ps, 1, total, table_bytes, 0) + struct.pack(f"<{n_table}H", *table_pages)
    out[:len(head)] = head
    return bytes(out)
