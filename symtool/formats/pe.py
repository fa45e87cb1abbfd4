"""PE reader (PE32 and PE32+): what identifies an image and the PDB it asks for.

``pefile`` parses the headers with ``fast_load`` and then only the debug
directory; the CodeView/REPRO/PDBCHECKSUM payloads are read here, with every
offset and size checked against the file.  CodeView records themselves are
parsed by :mod:`symtool.formats.codeview` (shared with the minidump reader).

Debug directory types used (winnt.h): 2 CODEVIEW, 16 REPRO, 19 PDBCHECKSUM.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError
from symtool.fsutil import open_regular  # a FIFO or device among inputs never blocks a read
from symtool.formats.binio import cstring
from symtool.formats.codeview import KIND_ELF, MAX_CODEVIEW, CodeView, parse_codeview
from symtool.ids import CodeId

# IMAGE_DOS_HEADER.e_lfanew sits at 0x3C; the PE signature is there.
DOS_LFANEW = struct.Struct("<I")
DOS_LFANEW_OFFSET = 0x3C
PE_SIGNATURE = b"PE\0\0"

IMAGE_DEBUG_TYPE_CODEVIEW = 2
IMAGE_DEBUG_TYPE_REPRO = 16
IMAGE_DEBUG_TYPE_PDBCHECKSUM = 19
IMAGE_DIRECTORY_ENTRY_DEBUG = 6
IMAGE_DIRECTORY_ENTRY_EXCEPTION = 3
# IMAGE_DEBUG_DIRECTORY (winnt.h): Characteristics, TimeDateStamp, MajorVersion, MinorVersion,
# Type, SizeOfData, AddressOfRawData, PointerToRawData.
IMAGE_DEBUG_DIRECTORY = struct.Struct("<IIHHIIII")
# Debug payloads other than CodeView (REPRO, PDBCHECKSUM) are as small: the same bound.
MAX_DEBUG_PAYLOAD = MAX_CODEVIEW
# Real images carry a handful of entries (CodeView, VC feature, POGO, ILTCG,
# REPRO, PDB checksum...); more than this is a hostile or corrupt directory.
MAX_DEBUG_ENTRIES = 1024

MACHINES = {
    0x014C: "x86",
    0x8664: "x64",
    0xAA64: "arm64",
    0x01C4: "arm",
    0x0200: "ia64",
    0xA641: "arm64ec",
    0x0000: "unknown",
}


@dataclass
class PeInfo:
    """What identifies a PE image and the PDB it asks for."""

    path: str
    machine: int
    is_64: bool
    timestamp: int
    size_of_image: int
    is_dll: bool
    codeview: list[CodeView] = field(default_factory=list)
    repro: bool = False  # /Brepro: TimeDateStamp is then a hash, not a time
    pdb_checksum: tuple[str, str] | None = None  # (algorithm, hex digest)
    debug_types: list[int] = field(default_factory=list)
    exception_bytes: int = 0  # size of the exception directory (.pdata: x64/ARM64 unwind info), 0 without
    image_base: int = 0  # the optional header's preferred load address

    @property
    def kind(self) -> str:
        return "pe"

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"0x{self.machine:04x}")

    @property
    def code_id(self) -> CodeId:
        return CodeId(self.timestamp, self.size_of_image)

    @property
    def index(self) -> str:
        return self.code_id.index()

    @property
    def primary_codeview(self) -> CodeView | None:
        """The entry debuggers use: the last RSDS one if any (there is normally exactly one)."""
        rsds = [cv for cv in self.codeview if cv.debug_id.kind == "pdb70"]
        if rsds:
            return rsds[-1]
        return self.codeview[-1] if self.codeview else None


def _codeview(payload: bytes, path: str) -> CodeView | None:
    try:
        return parse_codeview(payload)
    except FormatError as err:
        raise FormatError(err.message, path) from None


def _section_of(pe, offset: int):
    """The section whose raw data holds file offset ``offset``, or None."""
    for sec in pe.sections:
        start = sec.PointerToRawData
        if start <= offset < start + sec.SizeOfRawData:
            return sec
    return None


def _payload(pe, data, entry: tuple, path: str) -> bytes:
    """The bytes a debug-directory entry points at, checked against the file and its section."""
    _chars, _stamp, _major, _minor, dtype, size, rva, offset = entry
    if offset == 0 and rva:
        try:
            offset = pe.get_offset_from_rva(rva)
        except Exception:
            raise FormatError(f"debug directory entry (type {dtype}) points outside the file", path) from None
    if size == 0 or offset == 0:
        raise FormatError(f"debug directory entry (type {dtype}) is empty", path)
    if size > MAX_DEBUG_PAYLOAD:
        raise FormatError(f"debug directory entry (type {dtype}) is implausibly large ({size} bytes)", path)
    if offset + size > len(data):
        raise FormatError(f"debug directory entry (type {dtype}) runs past the end of the file", path)
    sec = _section_of(pe, offset)
    if sec is not None and offset + size > sec.PointerToRawData + sec.SizeOfRawData:
        name = sec.Name.rstrip(b"\0").decode("latin-1")
        raise FormatError(f"debug directory entry (type {dtype}) runs off its section {name}", path)
    return bytes(data[offset:offset + size])


def _parse(pe, data, path: str) -> PeInfo:
    import pefile

    fh = pe.FILE_HEADER
    opt = pe.OPTIONAL_HEADER
    info = PeInfo(
        path=path,
        machine=fh.Machine,
        is_64=opt.Magic == pefile.OPTIONAL_HEADER_MAGIC_PE_PLUS,
        timestamp=fh.TimeDateStamp,
        size_of_image=opt.SizeOfImage,
        is_dll=bool(fh.Characteristics & 0x2000),
        image_base=opt.ImageBase,
    )
    dirs = getattr(opt, "DATA_DIRECTORY", None) or []
    if len(dirs) > IMAGE_DIRECTORY_ENTRY_EXCEPTION and dirs[IMAGE_DIRECTORY_ENTRY_EXCEPTION].VirtualAddress:
        info.exception_bytes = dirs[IMAGE_DIRECTORY_ENTRY_EXCEPTION].Size
    if len(dirs) <= IMAGE_DIRECTORY_ENTRY_DEBUG:
        return info
    rva, size = dirs[IMAGE_DIRECTORY_ENTRY_DEBUG].VirtualAddress, dirs[IMAGE_DIRECTORY_ENTRY_DEBUG].Size
    if rva == 0 or size == 0:
        return info
    count = size // IMAGE_DEBUG_DIRECTORY.size
    if count > MAX_DEBUG_ENTRIES:
        raise FormatError(f"debug directory is implausibly large ({size} bytes)", path)
    try:
        start = pe.get_offset_from_rva(rva)
    except Exception:
        raise FormatError("debug directory points outside the file", path) from None
    if start is None or start < 0 or start + count * IMAGE_DEBUG_DIRECTORY.size > len(data):
        raise FormatError("debug directory runs past the end of the file", path)
    for k in range(count):
        entry = IMAGE_DEBUG_DIRECTORY.unpack_from(data, start + k * IMAGE_DEBUG_DIRECTORY.size)
        dtype = entry[4]
        info.debug_types.append(dtype)
        if dtype == IMAGE_DEBUG_TYPE_REPRO:
            info.repro = True
        elif dtype == IMAGE_DEBUG_TYPE_CODEVIEW:
            cv = _codeview(_payload(pe, data, entry, path), path)
            # Other CodeView formats (NB09/NB11 embedded symbols, Breakpad's ELF build id) name no PDB.
            if cv is not None and cv.kind != KIND_ELF:
                info.codeview.append(cv)
        elif dtype == IMAGE_DEBUG_TYPE_PDBCHECKSUM:
            payload = _payload(pe, data, entry, path)
            algo = cstring(payload).decode("ascii", "replace")
            info.pdb_checksum = (algo, payload[len(algo) + 1:].hex())
    return info


def read_pe(path: str | os.PathLike[str]) -> PeInfo:
    """Read a PE image's identity and debug directory.

    Raises FormatError for anything malformed (pefile's own exceptions
    included: it is third-party code fed hostile data) and OSError when the
    file cannot be opened.  The file is mapped, not read whole.
    """
    p = os.fspath(path)
    with open_regular(p) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise FormatError("empty file", p)
        if f.read(2) != b"MZ":
            raise FormatError("not a PE file (no MZ header)", p)
        try:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            # Not mappable (a pipe, some network file systems): PE images are small.
            f.seek(0)
            data = f.read()
        try:
            return _read_pe_data(data, p)
        finally:
            if isinstance(data, mmap.mmap):
                try:
                    data.close()
                except BufferError:
                    pass  # a view is still alive; the mapping closes when it is collected


def read_pe_bytes(data: bytes, path: str = "<bytes>") -> PeInfo:
    """Like :func:`read_pe` for an image already in memory (tests, archives)."""
    if not data:
        raise FormatError("empty file", path)
    if data[:2] != b"MZ":
        raise FormatError("not a PE file (no MZ header)", path)
    return _read_pe_data(data, path)


def _read_pe_data(data, p: str) -> PeInfo:
    import pefile

    # No pe.close(): with data= it only runs gc.collect() (10-200 ms); the
    # caller owns and closes the mapping.
    try:
        pe = pefile.PE(data=data, fast_load=True)
        return _parse(pe, data, p)
    except FormatError:
        raise
    except pefile.PEFormatError as err:
        raise FormatError(f"not a valid PE file: {err.value}", p) from None
    except RecursionError:
        raise FormatError("not a valid PE file (structure nests too deeply)", p) from None
    except Exception as err:  # pefile on hostile input: any exception is a format problem
        raise FormatError(f"not a valid PE file: {type(err).__name__}: {err}", p) from None
