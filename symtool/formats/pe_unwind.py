"""x64 unwind data of a PE image: the exception directory (``.pdata``
RUNTIME_FUNCTION entries) and the UNWIND_INFO records they point at, plus
bounded reads of the image's bytes by RVA (code bytes for epilogue checks,
CodeView for images whose dump record has none).

Layouts from winnt.h and Microsoft's "x64 exception handling" documentation,
declared once below.  Nothing is trusted before it is checked: section
extents against the file, the entry count against the directory size and
the file, unwind code counts against the bytes that hold them, and chained
unwind info is followed at most ``MAX_CHAIN`` times.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError
from symtool.formats.pe import DOS_LFANEW, DOS_LFANEW_OFFSET, PE_SIGNATURE

# IMAGE_FILE_HEADER: Machine, NumberOfSections, TimeDateStamp, PointerToSymbolTable, NumberOfSymbols,
# SizeOfOptionalHeader, Characteristics.
IMAGE_FILE_HEADER = struct.Struct("<HHIIIHH")
# IMAGE_OPTIONAL_HEADER64 fields up to NumberOfRvaAndSizes: Magic .. (ImageBase is a ULONGLONG).
OPTIONAL_HEADER64 = struct.Struct("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII")
# IMAGE_OPTIONAL_HEADER32 the same with BaseOfData and 32-bit ImageBase and stack/heap sizes.
OPTIONAL_HEADER32 = struct.Struct("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII")
# IMAGE_DATA_DIRECTORY: VirtualAddress, Size.
IMAGE_DATA_DIRECTORY = struct.Struct("<II")
# IMAGE_SECTION_HEADER: Name, VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData,
# PointerToRelocations, PointerToLinenumbers, NumberOfRelocations, NumberOfLinenumbers, Characteristics.
IMAGE_SECTION_HEADER = struct.Struct("<8sIIIIIIHHI")
# RUNTIME_FUNCTION (IMAGE_RUNTIME_FUNCTION_ENTRY for x64): BeginAddress, EndAddress, UnwindInfoAddress.
RUNTIME_FUNCTION = struct.Struct("<III")
# UNWIND_INFO head: Version:3|Flags:5, SizeOfProlog, CountOfCodes, FrameRegister:4|FrameOffset:4.
UNWIND_INFO = struct.Struct("<BBBB")
# UNWIND_CODE: CodeOffset, UnwindOp:4|OpInfo:4 (one 16-bit slot; some ops take one or two more slots).
UNWIND_CODE = struct.Struct("<BB")
UNWIND_SLOT = struct.Struct("<H")
UNWIND_SLOT32 = struct.Struct("<I")

IMAGE_FILE_MACHINE_ARM64 = 0xAA64
PE32_MAGIC = 0x10B
PE32PLUS_MAGIC = 0x20B
DIRECTORY_EXCEPTION = 3
DIRECTORY_BASERELOC = 5
DIRECTORY_DEBUG = 6
# IMAGE_BASE_RELOCATION block head: VirtualAddress (of the 4 KiB page), SizeOfBlock; then 16-bit
# entries, Type:4|Offset:12.
BASE_RELOCATION_BLOCK = struct.Struct("<II")
RELOCATION_ENTRY = struct.Struct("<H")
IMAGE_REL_BASED_HIGHLOW = 3
IMAGE_REL_BASED_DIR64 = 10
MAX_RELOCATIONS = 1 << 22
SCN_MEM_EXECUTE = 0x20000000

UNW_FLAG_EHANDLER = 0x1
UNW_FLAG_UHANDLER = 0x2
UNW_FLAG_CHAININFO = 0x4

# Unwind operations (UNWIND_OP_CODES).
UWOP_PUSH_NONVOL = 0
UWOP_ALLOC_LARGE = 1
UWOP_ALLOC_SMALL = 2
UWOP_SET_FPREG = 3
UWOP_SAVE_NONVOL = 4
UWOP_SAVE_NONVOL_FAR = 5
UWOP_EPILOG = 6  # version 2: epilogue descriptions, no effect on unwinding from a body
UWOP_SAVE_XMM128 = 8
UWOP_SAVE_XMM128_FAR = 9
UWOP_PUSH_MACHFRAME = 10
OP_NAMES = {0: "PUSH_NONVOL", 1: "ALLOC_LARGE", 2: "ALLOC_SMALL", 3: "SET_FPREG", 4: "SAVE_NONVOL",
            5: "SAVE_NONVOL_FAR", 6: "EPILOG", 7: "SPARE", 8: "SAVE_XMM128", 9: "SAVE_XMM128_FAR",
            10: "PUSH_MACHFRAME"}

MAX_SECTIONS = 96  # the PE/COFF limit
MAX_FUNCTIONS = 1 << 22
MAX_CHAIN = 32  # chained unwind infos followed for one function


@dataclass
class Section:
    name: str
    rva: int
    virtual_size: int
    raw_offset: int
    raw_size: int
    characteristics: int

    @property
    def executable(self) -> bool:
        return bool(self.characteristics & SCN_MEM_EXECUTE)


@dataclass
class UnwindCode:
    offset: int  # prolog offset of the instruction *after* the one this code describes
    op: int
    info: int
    operand: int | None = None  # the scaled operand of ALLOC_LARGE / SAVE_* (bytes), or None

    @property
    def name(self) -> str:
        return OP_NAMES.get(self.op, f"op {self.op}")


@dataclass
class UnwindInfo:
    rva: int
    version: int
    flags: int
    prolog_size: int
    frame_register: int
    frame_offset: int  # scaled: bytes (FrameOffset * 16)
    codes: list[UnwindCode] = field(default_factory=list)
    chained: tuple[int, int, int] | None = None  # the chained RUNTIME_FUNCTION (begin, end, unwind info)


@dataclass
class PeUnwindImage:
    """One PE image's headers, sections and exception directory (read once, bisected per lookup)."""

    path: str
    machine: int
    timestamp: int
    size_of_image: int
    image_base: int
    is_64: bool
    sections: list[Section]
    functions: list[tuple[int, int, int]]  # sorted RUNTIME_FUNCTION entries
    debug_directory: tuple[int, int] = (0, 0)
    _data: bytes = b""
    base_relocations: tuple[int, int] = (0, 0)  # the directory's (rva, size)
    exception_directory: tuple[int, int] = (0, 0)  # (rva, size); its entries' layout depends on the machine
    _relocations: list[tuple[int, int]] | None = None  # sorted (rva, width) of the words the loader rebases
    _begins: list[int] = field(default_factory=list)
    _infos: dict[int, UnwindInfo] = field(default_factory=dict)

    # -- reading by RVA --------------------------------------------------------------------
    def section_of(self, rva: int) -> Section | None:
        for s in self.sections:
            if s.rva <= rva < s.rva + max(s.virtual_size, s.raw_size):
                return s
        return None

    def read_rva(self, rva: int, size: int) -> bytes | None:
        """``size`` bytes at ``rva`` as loaded (zero-filled past a section's raw data); None outside."""
        s = self.section_of(rva)
        if s is None or size < 0 or rva + size > s.rva + max(s.virtual_size, s.raw_size):
            return None
        rel = rva - s.rva
        raw = self._data[s.raw_offset + rel: s.raw_offset + min(rel + size, s.raw_size)] if rel < s.raw_size else b""
        return raw + b"\0" * (size - len(raw))

    def read_loaded(self, rva: int, size: int, base: int) -> bytes | None:
        """``size`` bytes at ``rva`` as the loader left them with the image at ``base``: the
        words that base relocations name are moved by ``base - image_base`` (ASLR)."""
        data = self.read_rva(rva, size)
        delta = base - self.image_base
        if data is None or delta == 0:
            return data
        relocations = self._base_relocations()
        out = bytearray(data)
        i = bisect.bisect_left(relocations, (rva, 0))
        while i < len(relocations) and relocations[i][0] < rva + size:
            at, width = relocations[i]
            i += 1
            if at + width > rva + size:
                break
            k = at - rva
            fmt = "<Q" if width == 8 else "<I"
            (value,) = struct.unpack_from(fmt, out, k)
            struct.pack_into(fmt, out, k, (value + delta) & ((1 << 8 * width) - 1))
        return bytes(out)

    def _base_relocations(self) -> list[tuple[int, int]]:
        if self._relocations is None:
            found: list[tuple[int, int]] = []
            rva, size = self.base_relocations
            raw = self.read_rva(rva, size) if size and size <= 2 * MAX_RELOCATIONS else None
            pos = 0
            while raw is not None and pos + BASE_RELOCATION_BLOCK.size <= len(raw):
                page, block = BASE_RELOCATION_BLOCK.unpack_from(raw, pos)
                if block < BASE_RELOCATION_BLOCK.size or pos + block > len(raw):
                    break  # malformed: what came before stands
                for (entry,) in RELOCATION_ENTRY.iter_unpack(raw[pos + 8:pos + block - (block - 8) % 2]):
                    kind, offset = entry >> 12, entry & 0xFFF
                    if kind == IMAGE_REL_BASED_DIR64:
                        found.append((page + offset, 8))
                    elif kind == IMAGE_REL_BASED_HIGHLOW:
                        found.append((page + offset, 4))
                pos += block
            found.sort()
            self._relocations = found
        return self._relocations

    def is_code(self, rva: int) -> bool:
        s = self.section_of(rva)
        return s is not None and s.executable

    # -- unwind data -----------------------------------------------------------------------
    def function_at(self, rva: int) -> tuple[int, int, int] | None:
        """The RUNTIME_FUNCTION containing ``rva`` (None: a leaf function, or not code)."""
        i = bisect.bisect_right(self._begins, rva) - 1
        if i >= 0:
            begin, end, info = self.functions[i]
            if begin <= rva < end:
                return self.functions[i]
        return None

    def unwind_info(self, rva: int) -> UnwindInfo:
        info = self._infos.get(rva)
        if info is None:
            info = self._infos[rva] = self._parse_unwind_info(rva)
        return info

    def _parse_unwind_info(self, rva: int) -> UnwindInfo:
        head = self.read_rva(rva, UNWIND_INFO.size)
        if head is None:
            raise FormatError(f"UNWIND_INFO at RVA {rva:#x} is outside the image's sections", self.path)
        ver_flags, prolog, count, frame = UNWIND_INFO.unpack(head)
        version, flags = ver_flags & 7, ver_flags >> 3
        if version not in (1, 2):
            raise FormatError(f"UNWIND_INFO at RVA {rva:#x}: unknown version {version}", self.path)
        raw = self.read_rva(rva + UNWIND_INFO.size, 2 * count)
        if raw is None:
            raise FormatError(f"UNWIND_INFO at RVA {rva:#x}: {count} unwind codes run off the section", self.path)
        info = UnwindInfo(rva, version, flags, prolog, frame & 0xF, (frame >> 4) * 16)
        i = 0
        while i < count:
            offset, opinfo = UNWIND_CODE.unpack_from(raw, 2 * i)
            op, opi = opinfo & 0xF, opinfo >> 4
            operand = None
            slots = 1
            if op == UWOP_ALLOC_LARGE:
                if opi == 0:
                    slots = 2
                elif opi == 1:
                    slots = 3
                else:
                    raise FormatError(f"UNWIND_INFO at RVA {rva:#x}: ALLOC_LARGE with OpInfo {opi}", self.path)
            elif op in (UWOP_SAVE_NONVOL, UWOP_SAVE_XMM128):
                slots = 2
            elif op in (UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128_FAR):
                slots = 3
            elif op == UWOP_EPILOG:
                slots = 2 if version == 2 else 1
            elif op not in (UWOP_PUSH_NONVOL, UWOP_ALLOC_SMALL, UWOP_SET_FPREG, UWOP_PUSH_MACHFRAME):
                raise FormatError(f"UNWIND_INFO at RVA {rva:#x}: unknown unwind op {op}", self.path)
            if i + slots > count:
                raise FormatError(f"UNWIND_INFO at RVA {rva:#x}: {OP_NAMES.get(op)} runs past its "
                                  f"{count} unwind codes", self.path)
            if op == UWOP_ALLOC_LARGE:
                operand = (UNWIND_SLOT.unpack_from(raw, 2 * i + 2)[0] * 8 if opi == 0
                           else UNWIND_SLOT32.unpack_from(raw, 2 * i + 2)[0])
            elif op == UWOP_SAVE_NONVOL:
                operand = UNWIND_SLOT.unpack_from(raw, 2 * i + 2)[0] * 8
            elif op == UWOP_SAVE_XMM128:
                operand = UNWIND_SLOT.unpack_from(raw, 2 * i + 2)[0] * 16
            elif op in (UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128_FAR):
                operand = UNWIND_SLOT32.unpack_from(raw, 2 * i + 2)[0]
            elif op == UWOP_ALLOC_SMALL:
                operand = opi * 8 + 8
            info.codes.append(UnwindCode(offset, op, opi, operand))
            i += slots
        if flags & UNW_FLAG_CHAININFO:
            at = rva + UNWIND_INFO.size + 2 * (count + (count & 1))
            raw = self.read_rva(at, RUNTIME_FUNCTION.size)
            if raw is None:
                raise FormatError(f"UNWIND_INFO at RVA {rva:#x}: chained entry outside the image", self.path)
            info.chained = RUNTIME_FUNCTION.unpack(raw)
        return info


def _u(record: struct.Struct, data: bytes, offset: int, what: str, path: str) -> tuple:
    if offset < 0 or offset + record.size > len(data):
        raise FormatError(f"{what} runs past the end of the file", path)
    return record.unpack_from(data, offset)


def parse_pe_unwind(data: bytes, path: str = "<bytes>") -> PeUnwindImage:
    """Headers, sections and sorted RUNTIME_FUNCTION entries of the PE image ``data``."""
    if data[:2] != b"MZ":
        raise FormatError("not a PE file (no MZ header)", path)
    (lfanew,) = _u(DOS_LFANEW, data, DOS_LFANEW_OFFSET, "DOS header", path)
    if data[lfanew:lfanew + 4] != PE_SIGNATURE:
        raise FormatError("not a PE file (no PE signature)", path)
    fh = lfanew + 4
    machine, n_sections, timestamp, _sym, _nsym, opt_size, _chars = _u(IMAGE_FILE_HEADER, data, fh, "file header",
                                                                        path)
    opt = fh + IMAGE_FILE_HEADER.size
    (magic,) = _u(UNWIND_SLOT, data, opt, "optional header", path)
    if magic == PE32PLUS_MAGIC:
        f = _u(OPTIONAL_HEADER64, data, opt, "optional header", path)
        image_base, size_of_image, n_dirs = f[8], f[18], f[-1]
        dirs_at = opt + OPTIONAL_HEADER64.size
    elif magic == PE32_MAGIC:
        f = _u(OPTIONAL_HEADER32, data, opt, "optional header", path)
        image_base, size_of_image, n_dirs = f[9], f[19], f[-1]
        dirs_at = opt + OPTIONAL_HEADER32.size
    else:
        raise FormatError(f"unknown optional header magic {magic:#x}", path)
    n_dirs = min(n_dirs, 16, max(0, (opt + opt_size - dirs_at) // IMAGE_DATA_DIRECTORY.size))
    dirs = [_u(IMAGE_DATA_DIRECTORY, data, dirs_at + 8 * k, "data directory", path) for k in range(n_dirs)]
    if n_sections > MAX_SECTIONS:
        raise FormatError(f"implausible section count {n_sections}", path)
    sections = []
    at = opt + opt_size
    for k in range(n_sections):
        name, vsize, vaddr, rsize, rptr, *_rest, chars = _u(IMAGE_SECTION_HEADER, data,
                                                             at + k * IMAGE_SECTION_HEADER.size, "section header", path)
        rsize = max(0, min(rsize, len(data) - rptr)) if rptr < len(data) else 0
        sections.append(Section(name.rstrip(b"\0").decode("latin-1"), vaddr, vsize, rptr, rsize, chars))
    image = PeUnwindImage(path, machine, timestamp, size_of_image, image_base, magic == PE32PLUS_MAGIC, sections, [],
                          dirs[DIRECTORY_DEBUG] if len(dirs) > DIRECTORY_DEBUG else (0, 0), data,
                          dirs[DIRECTORY_BASERELOC] if len(dirs) > DIRECTORY_BASERELOC else (0, 0))
    if len(dirs) > DIRECTORY_EXCEPTION:
        image.exception_directory = dirs[DIRECTORY_EXCEPTION]
    # x64 RUNTIME_FUNCTION entries (ARM64's 8-byte entries are read by formats/pe_unwind_arm64.py).
    if len(dirs) > DIRECTORY_EXCEPTION and magic == PE32PLUS_MAGIC and machine != IMAGE_FILE_MACHINE_ARM64:
        ex_rva, ex_size = dirs[DIRECTORY_EXCEPTION]
        count = ex_size // RUNTIME_FUNCTION.size
        if count > MAX_FUNCTIONS:
            raise FormatError(f"exception directory of {ex_size} bytes is implausible", path)
        raw = image.read_rva(ex_rva, count * RUNTIME_FUNCTION.size) if count else b""
        if raw is None:
            raise FormatError("exception directory runs outside the image's sections", path)
        funcs = [f for f in RUNTIME_FUNCTION.iter_unpack(raw) if f[0] < f[1]]
        funcs.sort()
        image.functions = funcs
        image._begins = [f[0] for f in funcs]
    return image


def read_image_file(path: str | os.PathLike[str], max_size: int = 1 << 30) -> tuple[bytes, str]:
    """(the bytes, the path as a string) of an image file no larger than ``max_size``."""
    p = os.fspath(path)
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_size:
            raise FormatError(f"image of {size} bytes is too large", p)
        return f.read(), p


def read_pe_unwind(path: str | os.PathLike[str], max_size: int = 1 << 30) -> PeUnwindImage:
    data, p = read_image_file(path, max_size)
    return parse_pe_unwind(data, p)


__all__ = ["PeUnwindImage", "UnwindInfo", "UnwindCode", "Section", "parse_pe_unwind", "read_pe_unwind", "OP_NAMES",
           "read_image_file"]
