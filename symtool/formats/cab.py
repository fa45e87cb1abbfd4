"""Single-file Microsoft Cabinet (CAB) files: what symstore writes as ``foo.pd_``.

Writing: one folder, one file, MSZIP compression, 32 KiB CFDATA blocks, each
``"CK"`` + a complete raw-deflate stream.  Every block is compressed with a
fresh dictionary (allowed by MSZIP: a block *may* refer to the previous one,
it need not), so the writer streams with constant memory.  Block checksums are
written (Microsoft's CFDATA csum), so readers that check them (cabextract,
expand.exe) do.

Reading (:func:`extract_single`): one folder, one file, compression "none" or
MSZIP (with the dictionary carried across blocks, as MSZIP requires of a
decoder).  LZX and Quantum raise :class:`UnsupportedCompression` (a
FormatError); callers may fall back to Debian's ``cabextract`` for those.
Every size and offset in the header is checked against the file and against
``max_size`` before anything is allocated or looped over.

Layout (Microsoft's "Cabinet Format" specification, little-endian):

    CFHEADER  36 bytes: "MSCF", reserved, cbCabinet, reserved, coffFiles,
              reserved, versionMinor=3, versionMajor=1, cFolders, cFiles,
              flags, setID, iCabinet [, reserve sizes + reserved area]
    CFFOLDER  coffCabStart u32, cCFData u16, typeCompress u16 [, reserved]
    CFFILE    cbFile u32, uoffFolderStart u32, iFolder u16, date u16,
              time u16, attribs u16, szName (NUL-terminated)
    CFDATA    csum u32, cbData u16, cbUncomp u16 [, reserved], data
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path
from typing import BinaryIO, Callable

from symtool.errors import FormatError, StoreError

SIGNATURE = b"MSCF"
BLOCK_SIZE = 32768  # uncompressed bytes per CFDATA block (MSZIP's maximum)
MAX_BLOCKS = 0xFFFF  # cCFData is a u16
# Largest file a single-folder CAB can hold: 65535 blocks of 32 KiB (0x7FFF8000,
# just under 2 GiB).  symstore stores bigger files uncompressed.
MAX_CAB_INPUT = MAX_BLOCKS * BLOCK_SIZE
# An MSZIP block never needs more than this many compressed bytes (deflate's
# worst case for 32 KiB plus the "CK" marker, with the slack decoders allow).
MAX_COMPRESSED_BLOCK = BLOCK_SIZE + 6144

COMP_NONE = 0
COMP_MSZIP = 1
COMP_QUANTUM = 2
COMP_LZX = 3
_COMP_NAMES = {COMP_NONE: "none", COMP_MSZIP: "MSZIP", COMP_QUANTUM: "Quantum", COMP_LZX: "LZX"}

FLAG_PREV_CABINET = 0x0001
FLAG_NEXT_CABINET = 0x0002
FLAG_RESERVE_PRESENT = 0x0004

ATTR_ARCHIVE = 0x20
ATTR_NAME_IS_UTF = 0x80

_HEADER = struct.Struct("<4sIIIIIBBHHHHH")  # 36 bytes
_FOLDER = struct.Struct("<IHH")  # 8 bytes
_FILE = struct.Struct("<IIHHHH")  # 16 bytes + name
_DATA = struct.Struct("<IHH")  # 8 bytes + data
# CFHEADER reserve sizes (present with cfhdrRESERVE_PRESENT): cbCFHeader, cbCFFolder, cbCFData.
_RESERVE_SIZES = struct.Struct("<HBB")
MAX_NAME = 256  # CAB names are at most 255 bytes + NUL


class UnsupportedCompression(FormatError):
    """A valid CAB whose compression (LZX, Quantum) this module does not decode."""


def checksum(data: bytes, seed: int = 0) -> int:
    """Microsoft's CFDATA checksum: XOR of little-endian 32-bit words, the
    1-3 trailing bytes folded in most-significant first.

    Folding a big integer by halves does the XOR of all words in a few big-int
    operations instead of one Python operation per word.
    """
    n_words = len(data) // 4
    acc = 0
    if n_words:
        acc = int.from_bytes(data[: n_words * 4], "little")
        bits = n_words * 32
        while bits > 32:
            half_words = (bits // 32 + 1) // 2
            shift = half_words * 32
            acc = (acc >> shift) ^ (acc & ((1 << shift) - 1))
            bits = shift
    tail = data[n_words * 4:]
    ul = 0
    for byte in tail:
        ul = (ul << 8) | byte
    return (acc ^ ul ^ seed) & 0xFFFFFFFF


def _block_checksum(payload: bytes, cb_data: int, cb_uncomp: int, reserve: bytes = b"") -> int:
    # csum covers the CFDATA fields after itself (cbData, cbUncomp), the reserve and the data.
    return checksum(_DATA.pack(0, cb_data, cb_uncomp)[4:] + reserve, checksum(payload))


def _dos_datetime(mtime: float) -> tuple[int, int]:
    t = time.localtime(mtime)
    year = min(max(t.tm_year, 1980), 2107)
    date = ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    tod = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    return date, tod


def _encode_name(member_name: str) -> tuple[bytes, int]:
    if not member_name or "\0" in member_name:
        raise FormatError(f"invalid CAB member name {member_name!r}")
    try:
        raw, attrs = member_name.encode("ascii"), ATTR_ARCHIVE
    except UnicodeEncodeError:
        raw, attrs = member_name.encode("utf-8"), ATTR_ARCHIVE | ATTR_NAME_IS_UTF
    if len(raw) >= MAX_NAME:
        raise FormatError(f"CAB member name too long ({len(raw)} bytes)")
    return raw, attrs


def _mszip_block(chunk: bytes) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    return b"CK" + comp.compress(chunk) + comp.flush(zlib.Z_FINISH)


def compress_to_cab(src: Path, dst: BinaryIO, member_name: str,
                    progress: Callable[[int], None] | None = None) -> None:
    """Write ``src`` into ``dst`` as a single-file MSZIP CAB holding ``member_name``.

    Streams: memory stays at a few blocks whatever the file size.  ``dst``
    should be seekable (a temp file from fsutil.atomic_writer): the header is
    written with placeholders and patched at the end.  A non-seekable ``dst``
    costs a second compression pass to learn the sizes first.
    ``progress(n)`` is called with the uncompressed bytes of each block.
    Files over :data:`MAX_CAB_INPUT` raise StoreError (store them plain);
    a file that changes size while being read raises StoreError.
    """
    src = Path(src)
    name_raw, attrs = _encode_name(member_name)
    st = os.stat(src)
    size = st.st_size
    if size > MAX_CAB_INPUT:
        raise StoreError(f"{size} bytes is too large for a CAB (limit {MAX_CAB_INPUT} bytes)", src)
    n_blocks = -(-size // BLOCK_SIZE)
    date, tod = _dos_datetime(st.st_mtime)
    coff_files = _HEADER.size + _FOLDER.size
    coff_data = coff_files + _FILE.size + len(name_raw) + 1

    def header(total: int) -> bytes:
        return (
            _HEADER.pack(SIGNATURE, 0, total, 0, coff_files, 0, 3, 1, 1, 1, 0, 0, 0)
            + _FOLDER.pack(coff_data, n_blocks, COMP_MSZIP)
            + _FILE.pack(size, 0, 0, date, tod, attrs) + name_raw + b"\0"
        )

    def blocks(report: bool):
        done = 0
        with open(src, "rb") as f:
            for _ in range(n_blocks):
                chunk = f.read(min(BLOCK_SIZE, size - done))
                if not chunk:
                    break
                done += len(chunk)
                payload = _mszip_block(chunk)
                cb = len(payload)
                yield _DATA.pack(_block_checksum(payload, cb, len(chunk)), cb, len(chunk)) + payload
                if report and progress is not None:
                    progress(len(chunk))
            if done != size or f.read(1):
                raise StoreError("file changed size while being compressed", src)

    seekable = False
    try:
        seekable = dst.seekable()
    except (AttributeError, OSError):
        pass
    if seekable:
        start = dst.tell()
        dst.write(header(0))
        total = coff_data
        for rec in blocks(True):
            dst.write(rec)
            total += len(rec)
        end = dst.tell()
        dst.seek(start)
        dst.write(header(total))
        dst.seek(end)
    else:
        total = coff_data + sum(len(rec) for rec in blocks(False))
        dst.write(header(total))
        for rec in blocks(True):
            dst.write(rec)
    if total > 0xFFFFFFFF:  # pragma: no cover - impossible below MAX_CAB_INPUT
        raise StoreError("CAB would exceed 4 GiB", src)


class _Reader:
    """Bounds-checked reads from a CAB of known size."""

    def __init__(self, f: BinaryIO, size: int):
        self.f = f
        self.size = size

    def read(self, offset: int, n: int, what: str) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise FormatError(f"truncated CAB: {what} at offset {offset} (+{n}) beyond end of file ({self.size} bytes)")
        self.f.seek(offset)
        data = self.f.read(n)
        if len(data) != n:
            raise FormatError(f"truncated CAB: short read of {what}")
        return data


def _stream_size(f: BinaryIO) -> int:
    try:
        here = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(here)
        return end
    except (AttributeError, OSError) as err:
        raise FormatError(f"CAB source must be seekable ({err})") from None


def read_single_header(src: BinaryIO) -> dict:
    """Parse and check the header, folder and file records; no decompression."""
    r = _Reader(src, _stream_size(src))
    (sig, _r1, cb_cabinet, _r2, coff_files, _r3, vminor, vmajor, c_folders, c_files,
     flags, _set_id, _i_cab) = _HEADER.unpack(r.read(0, _HEADER.size, "CFHEADER"))
    if sig != SIGNATURE:
        raise FormatError("not a CAB file (no MSCF signature)")
    if vmajor != 1:
        raise FormatError(f"unsupported CAB version {vmajor}.{vminor}")
    if cb_cabinet > r.size:
        raise FormatError(f"truncated CAB: header says {cb_cabinet} bytes, file has {r.size}")
    if cb_cabinet < _HEADER.size:
        raise FormatError(f"corrupt CAB: cabinet size {cb_cabinet} smaller than its header")
    r.size = cb_cabinet  # nothing beyond cbCabinet belongs to the cabinet
    if flags & (FLAG_PREV_CABINET | FLAG_NEXT_CABINET):
        raise FormatError("multi-cabinet sets are not supported (cabinet continues in another file)")
    if c_folders != 1 or c_files != 1:
        raise FormatError(f"not a single-file CAB ({c_files} files in {c_folders} folders)")
    pos = _HEADER.size
    folder_reserve = data_reserve = 0
    if flags & FLAG_RESERVE_PRESENT:
        cb_header_res, folder_reserve, data_reserve = _RESERVE_SIZES.unpack(r.read(pos, 4, "reserve sizes"))
        pos += 4 + cb_header_res
    folder_raw = r.read(pos, _FOLDER.size, "CFFOLDER")
    coff_cab_start, c_data, type_compress = _FOLDER.unpack(folder_raw)
    method = type_compress & 0x000F
    if method not in _COMP_NAMES:
        raise FormatError(f"corrupt CAB: unknown compression type {type_compress:#06x}")
    file_raw = r.read(coff_files, _FILE.size, "CFFILE")
    cb_file, uoff, i_folder, date, tod, attrs = _FILE.unpack(file_raw)
    name_len = min(MAX_NAME, r.size - coff_files - _FILE.size)
    name_area = r.read(coff_files + _FILE.size, name_len, "file name") if name_len > 0 else b""
    if b"\0" not in name_area:
        raise FormatError("corrupt CAB: file name not terminated")
    name_raw = name_area.split(b"\0", 1)[0]
    if not name_raw:
        raise FormatError("corrupt CAB: empty file name")
    try:
        name = name_raw.decode("utf-8" if attrs & ATTR_NAME_IS_UTF else "cp1252")
    except UnicodeDecodeError:
        raise FormatError("corrupt CAB: file name is not valid text") from None
    if i_folder != 0 or uoff != 0:
        raise FormatError(f"corrupt CAB: file record points at folder {i_folder:#x} offset {uoff}")
    if coff_cab_start > r.size or c_data * _DATA.size > r.size - coff_cab_start:
        raise FormatError(f"corrupt CAB: {c_data} data blocks at offset {coff_cab_start} do not fit in {r.size} bytes")
    if cb_file > c_data * BLOCK_SIZE:
        raise FormatError(f"corrupt CAB: file of {cb_file} bytes cannot fit in {c_data} blocks")
    return {
        "reader": r, "name": name, "size": cb_file, "method": method, "method_name": _COMP_NAMES[method],
        "blocks": c_data, "data_offset": coff_cab_start, "data_reserve": data_reserve,
    }


def extract_single(src: BinaryIO, dst: BinaryIO, *, max_size: int) -> str:
    """Decompress the one file of a single-file CAB into ``dst``; returns its name.

    FormatError for anything malformed, truncated or over ``max_size``;
    UnsupportedCompression (a FormatError) for LZX and Quantum.  The name is
    returned as stored: callers must validate it before using it as a path.
    """
    info = read_single_header(src)
    r: _Reader = info["reader"]
    if info["size"] > max_size:
        raise FormatError(f"CAB member {info['name']!r} is {info['size']} bytes, over the limit of {max_size}")
    method = info["method"]
    if method not in (COMP_NONE, COMP_MSZIP):
        raise UnsupportedCompression(
            f"CAB uses {info['method_name']} compression, which symtool does not decode (only MSZIP and none)")
    pos = info["data_offset"]
    reserve_len = info["data_reserve"]
    remaining = info["size"]
    history = b""
    for i in range(info["blocks"]):
        csum, cb_data, cb_uncomp = _DATA.unpack(r.read(pos, _DATA.size, f"CFDATA {i}"))
        reserve = r.read(pos + _DATA.size, reserve_len, f"CFDATA {i} reserve") if reserve_len else b""
        pos += _DATA.size + reserve_len
        if cb_uncomp > BLOCK_SIZE or cb_uncomp > remaining or cb_data > MAX_COMPRESSED_BLOCK:
            raise FormatError(f"corrupt CAB: data block {i} sizes ({cb_data} -> {cb_uncomp}) out of range")
        if cb_uncomp == 0 and remaining:
            raise FormatError(f"corrupt CAB: data block {i} is empty")
        payload = r.read(pos, cb_data, f"CFDATA {i} payload")
        pos += cb_data
        if csum and _block_checksum(payload, cb_data, cb_uncomp, reserve) != csum:
            raise FormatError(f"corrupt CAB: checksum mismatch in data block {i}")
        if method == COMP_NONE:
            if cb_data != cb_uncomp:
                raise FormatError(f"corrupt CAB: stored block {i} has {cb_data} bytes, says {cb_uncomp}")
            out = payload
        else:
            out = _inflate_block(payload, history, cb_uncomp, i)
            history = (history + out)[-BLOCK_SIZE:]
        dst.write(out)
        remaining -= len(out)
        if remaining == 0:
            break
    if remaining:
        raise FormatError(f"truncated CAB: {remaining} bytes of {info['name']!r} missing")
    return info["name"]


def _inflate_block(payload: bytes, history: bytes, expected: int, i: int) -> bytes:
    if payload[:2] != b"CK":
        raise FormatError(f"corrupt CAB: MSZIP block {i} lacks the CK signature")
    try:
        d = zlib.decompressobj(-15, zdict=history) if history else zlib.decompressobj(-15)
        # max_length caps what a hostile block can make us allocate.
        out = d.decompress(payload[2:], expected + 1)
    except zlib.error as err:
        raise FormatError(f"corrupt CAB: MSZIP block {i}: {err}") from None
    if len(out) != expected or not d.eof:
        raise FormatError(f"corrupt CAB: MSZIP block {i} inflates to {len(out)}{'+' if not d.eof else ''} bytes, header says {expected}")
    return out
