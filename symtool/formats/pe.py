"""PE reader (PE32 and PE32+): what identifies an image and the PDB it asks for.

The DOS, file and optional headers, the data directories and the section table
are read here with :mod:`struct` (declared below), then only the debug
directory; the CodeView/REPRO/PDBCHECKSUM payloads are read with every offset
and size checked against the file.  CodeView records themselves are parsed by
:mod:`symtool.formats.codeview` (shared with the minidump reader).  (pefile,
which read the headers before, cost a third of a one-address ``symbolize``
run in its import alone; the unwind reader, symtool.formats.pe_unwind, still
uses it.)  Where an image is malformed the reading follows pefile's (and the
loader's) choices: a short optional header is zero-padded, at most 16 data
directories and 0x800 section headers are read, the table ends at an all-zero
or implausible header, PointerToRawData is rounded down to 0x200 and a section's
address to its alignment (tests/test_pe.py compares both with llvm-readobj and
pefile).

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
DOS_HEADER_SIZE = 64
PE_SIGNATURE = b"PE\0\0"
# IMAGE_FILE_HEADER (winnt.h): Machine, NumberOfSections, TimeDateStamp, PointerToSymbolTable,
# NumberOfSymbols, SizeOfOptionalHeader, Characteristics.
IMAGE_FILE_HEADER = struct.Struct("<HHIIIHH")
IMAGE_FILE_DLL = 0x2000
# IMAGE_OPTIONAL_HEADER32 up to NumberOfRvaAndSizes: Magic, linker versions (2 bytes), SizeOfCode,
# SizeOfInitializedData, SizeOfUninitializedData, AddressOfEntryPoint, BaseOfCode, BaseOfData,
# ImageBase, SectionAlignment, FileAlignment, six u16 versions, Win32VersionValue, SizeOfImage,
# SizeOfHeaders, CheckSum, Subsystem, DllCharacteristics, the four stack/heap sizes, LoaderFlags,
# NumberOfRvaAndSizes.  IMAGE_OPTIONAL_HEADER64 has no BaseOfData and 64-bit ImageBase and sizes.
IMAGE_OPTIONAL_HEADER32 = struct.Struct("<HBB9I6H4I2H6I")
IMAGE_OPTIONAL_HEADER64 = struct.Struct("<HBB5IQ2I6H4I2H4Q2I")
OPTIONAL_HEADER_MAGIC_PE32_PLUS = 0x20B
# Where ImageBase, SectionAlignment, FileAlignment, SizeOfImage and NumberOfRvaAndSizes are among
# each form's fields.
OPTIONAL_FIELDS32 = (9, 10, 11, 19, 29)
OPTIONAL_FIELDS64 = (8, 9, 10, 18, 28)
PAGE_SIZE = 0x1000  # below it, sections are aligned as the file is (SectionAlignment = FileAlignment)
# An optional header cut short by the end of the file is zero-padded when at least this much of
# it is there (69 bytes of a PE32 one, 73 of a PE32+ one: pefile's rule), else it is missing.
MIN_OPTIONAL_HEADER32 = 69
MIN_OPTIONAL_HEADER64 = 73
IMAGE_DATA_DIRECTORY = struct.Struct("<II")  # VirtualAddress, Size
MAX_DATA_DIRECTORIES = 16  # IMAGE_NUMBEROF_DIRECTORY_ENTRIES: a larger NumberOfRvaAndSizes is ignored
# IMAGE_SECTION_HEADER: Name, VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData,
# PointerToRelocations, PointerToLinenumbers, NumberOfRelocations, NumberOfLinenumbers, Characteristics.
IMAGE_SECTION_HEADER = struct.Struct("<8sIIIIIIHHI")
MAX_SECTIONS = 0x800  # section headers read at most (a hostile NumberOfSections says 65,535)
RAW_DATA_ALIGNMENT = 0x200  # the loader rounds PointerToRawData down to this
# pefile's test of a section header: raw data past the file (its end, its start), a size or an
# address over 256 MiB, raw data off the file alignment; three of these end the table.
MAX_SECTION_EXTENT = 0x10000000
IMPLAUSIBLE_SECTION = 3

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


class _Section:
    """One section header: what locating the debug directory and its payloads needs, and where
    the loader puts the section (``start``) and reads its data from (``raw_start``)."""

    __slots__ = ("name", "virtual_address", "virtual_size", "raw_size", "raw_pointer", "start", "raw_start")

    def __init__(self, name: bytes, virtual_size: int, virtual_address: int, raw_size: int, raw_pointer: int,
                 start: int, raw_start: int):
        self.name, self.virtual_size, self.virtual_address = name, virtual_size, virtual_address
        self.raw_size, self.raw_pointer, self.start, self.raw_start = raw_size, raw_pointer, start, raw_start


class _Headers:
    """The headers of an image: file header fields, the optional header's, the data
    directories and the section table."""

    def __init__(self, data, path: str):
        size = len(data)
        if size < DOS_HEADER_SIZE:
            raise FormatError("not a valid PE file: truncated DOS header", path)
        (lfanew,) = DOS_LFANEW.unpack_from(data, DOS_LFANEW_OFFSET)
        if lfanew > size:
            raise FormatError("not a valid PE file: e_lfanew points past the end of the file", path)
        if bytes(data[lfanew:lfanew + 4]) != PE_SIGNATURE:
            raise FormatError("not a valid PE file: no PE signature at e_lfanew", path)
        at = lfanew + len(PE_SIGNATURE)
        if at + IMAGE_FILE_HEADER.size > size:
            raise FormatError("not a valid PE file: truncated file header", path)
        (self.machine, n_sections, self.timestamp, _symbols, _n_symbols, optional_size,
         self.characteristics) = IMAGE_FILE_HEADER.unpack_from(data, at)
        opt = at + IMAGE_FILE_HEADER.size
        self.is_64 = size >= opt + 2 and data[opt] | data[opt + 1] << 8 == OPTIONAL_HEADER_MAGIC_PE32_PLUS
        form, least, (base_at, section_align_at, file_align_at, image_size_at, n_dirs_at) = (
            (IMAGE_OPTIONAL_HEADER64, MIN_OPTIONAL_HEADER64, OPTIONAL_FIELDS64) if self.is_64
            else (IMAGE_OPTIONAL_HEADER32, MIN_OPTIONAL_HEADER32, OPTIONAL_FIELDS32))
        raw = bytes(data[opt:opt + form.size])
        if len(raw) < least:
            raise FormatError("not a valid PE file: no optional header", path)
        fields = form.unpack(raw.ljust(form.size, b"\0"))
        self.image_base, self.size_of_image = fields[base_at], fields[image_size_at]
        section_alignment, file_alignment = fields[section_align_at], fields[file_align_at]
        # Data directories: after the optional header's fixed part (whatever SizeOfOptionalHeader
        # says), a last one cut by the end of the file zero-padded.
        self.directories: list[tuple[int, int]] = []
        at = opt + form.size
        for _k in range(min(fields[n_dirs_at] & 0x7FFFFFFF, MAX_DATA_DIRECTORIES)):
            entry = bytes(data[at:at + IMAGE_DATA_DIRECTORY.size])
            if not entry:
                break
            self.directories.append(IMAGE_DATA_DIRECTORY.unpack(entry.ljust(IMAGE_DATA_DIRECTORY.size, b"\0")))
            at += IMAGE_DATA_DIRECTORY.size
        # The section table: after SizeOfOptionalHeader bytes; an all-zero header or the end of the
        # file ends it, a header cut by the end of the file is an error.
        self.sections: list[_Section] = []
        at = opt + optional_size
        for _k in range(min(n_sections, MAX_SECTIONS)):
            header = bytes(data[at:at + IMAGE_SECTION_HEADER.size])
            if not header or not header.strip(b"\0"):
                break
            if len(header) < IMAGE_SECTION_HEADER.size:
                raise FormatError("not a valid PE file: the section table runs past the end of the file", path)
            name, vsize, vaddr, raw_size, raw_pointer = IMAGE_SECTION_HEADER.unpack(header)[:5]
            # The loader's rounding (pefile's): raw data starts at a 0x200 boundary (unless, with
            # sections aligned below a page, it sits at its own RVA), a section at a multiple of
            # the section alignment (the file's, below a page).
            raw_start = raw_pointer & ~(RAW_DATA_ALIGNMENT - 1)
            if section_alignment < PAGE_SIZE and raw_pointer == vaddr:
                raw_start = raw_pointer
            unit = file_alignment if section_alignment < PAGE_SIZE else section_alignment
            start = vaddr - vaddr % unit if unit else vaddr
            # A header with this many implausible values is not a section: the table ends there.
            implausible = ((raw_pointer + raw_size > size) + (raw_start > size) + (vsize > MAX_SECTION_EXTENT)
                           + (start > MAX_SECTION_EXTENT) + bool(file_alignment and raw_pointer % file_alignment))
            if implausible >= IMPLAUSIBLE_SECTION:
                break
            self.sections.append(_Section(name, vsize, vaddr, raw_size, raw_pointer, start, raw_start))
            at += IMAGE_SECTION_HEADER.size
        # In address order, each section reaching at most to the next one's start (overlapping
        # sections of a malformed image: pefile's reading).
        self.sections.sort(key=lambda sec: sec.virtual_address)
        self.size = size

    def offset_of_rva(self, rva: int) -> int | None:
        """The file offset of ``rva``: in the first section whose memory holds it (its raw size,
        when the file holds that much, or its virtual size, whichever is larger, up to the next
        section), else the RVA itself when inside the file (the headers), else None."""
        for k, sec in enumerate(self.sections):
            if self.size - sec.raw_start < sec.raw_size:
                span = sec.virtual_size  # a raw size the file cannot hold: the virtual one
            else:
                span = max(sec.raw_size, sec.virtual_size)
            if k + 1 < len(self.sections):
                following = self.sections[k + 1].virtual_address
                if following > sec.virtual_address and sec.start + span > following:
                    span = following - sec.start
            if sec.start <= rva < sec.start + span:
                return rva - sec.start + sec.raw_start
        return rva if rva < self.size else None

    def section_of(self, offset: int) -> _Section | None:
        """The section whose raw data holds file offset ``offset``, or None."""
        for sec in self.sections:
            if sec.raw_pointer <= offset < sec.raw_pointer + sec.raw_size:
                return sec
        return None


def _payload(pe: _Headers, data, entry: tuple, path: str) -> bytes:
    """The bytes a debug-directory entry points at, checked against the file and its section."""
    _chars, _stamp, _major, _minor, dtype, size, rva, offset = entry
    if offset == 0 and rva:
        offset = pe.offset_of_rva(rva)
        if offset is None:
            raise FormatError(f"debug directory entry (type {dtype}) points outside the file", path)
    if size == 0 or offset == 0:
        raise FormatError(f"debug directory entry (type {dtype}) is empty", path)
    if size > MAX_DEBUG_PAYLOAD:
        raise FormatError(f"debug directory entry (type {dtype}) is implausibly large ({size} bytes)", path)
    if offset + size > len(data):
        raise FormatError(f"debug directory entry (type {dtype}) runs past the end of the file", path)
    sec = pe.section_of(offset)
    if sec is not None and offset + size > sec.raw_pointer + sec.raw_size:
        name = sec.name.rstrip(b"\0").decode("latin-1")
        raise FormatError(f"debug directory entry (type {dtype}) runs off its section {name}", path)
    return bytes(data[offset:offset + size])


def _parse(data, path: str) -> PeInfo:
    pe = _Headers(data, path)
    info = PeInfo(
        path=path,
        machine=pe.machine,
        is_64=pe.is_64,
        timestamp=pe.timestamp,
        size_of_image=pe.size_of_image,
        is_dll=bool(pe.characteristics & IMAGE_FILE_DLL),
        image_base=pe.image_base,
    )
    dirs = pe.directories
    if len(dirs) > IMAGE_DIRECTORY_ENTRY_EXCEPTION and dirs[IMAGE_DIRECTORY_ENTRY_EXCEPTION][0]:
        info.exception_bytes = dirs[IMAGE_DIRECTORY_ENTRY_EXCEPTION][1]
    if len(dirs) <= IMAGE_DIRECTORY_ENTRY_DEBUG:
        return info
    rva, size = dirs[IMAGE_DIRECTORY_ENTRY_DEBUG]
    if rva == 0 or size == 0:
        return info
    count = size // IMAGE_DEBUG_DIRECTORY.size
    if count > MAX_DEBUG_ENTRIES:
        raise FormatError(f"debug directory is implausibly large ({size} bytes)", path)
    start = pe.offset_of_rva(rva)
    if start is None:
        raise FormatError("debug directory points outside the file", path)
    if start + count * IMAGE_DEBUG_DIRECTORY.size > len(data):
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

    Raises FormatError for anything malformed and OSError when the file cannot
    be opened.  The file is mapped, not read whole.
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
    return _parse(data, p)
