"""ELF reader: what identifies a Linux binary, its separate debug file and its ``.dwp``.

Read lazily (section headers, then only the sections needed), every count,
size and offset checked against the file:

* the GNU build-id note (``NT_GNU_BUILD_ID`` in a ``SHT_NOTE`` section, or in
  a ``PT_NOTE`` segment when the section headers are gone);
* ``.gnu_debuglink``: the debug file's name and the CRC-32 of its content;
* whether the file has DWARF (``.debug_info``/``.debug_line`` with content),
  and whether it has code (``.text`` not ``SHT_NOBITS``: ``objcopy
  --only-keep-debug`` keeps the headers but not the bytes);
* the DWO IDs of the skeleton units in ``.debug_info`` (what a ``.dwp`` must hold);
* for a ``.dwp``: the signatures of ``.debug_cu_index`` (v2 and v5), each
  cross-checked with the DWO ID of the unit its row points at; for a ``.dwo``
  (no index) the split units' own IDs.

Compressed sections (``SHF_COMPRESSED``, zlib) are decompressed up to
:data:`MAX_DECOMPRESSED` each, and all together up to the inflate budget of
the file (``SYMTOOL_MAX_INFLATE_RATIO`` times its size, at least
``SYMTOOL_MAX_INFLATE_FLOOR``; symtool/budgets.py), counted from the sizes
the headers declare before anything is inflated; each section is inflated
once per reader.  zstd is reported, not read (no stdlib decoder).
"""

from __future__ import annotations

import operator
import os
import struct
import zlib
from dataclasses import dataclass, field

from symtool.budgets import Counter, limit
from symtool.errors import FormatError
from symtool.formats.binio import BoundedReader, cstring
from symtool.ids import BuildId

ELF_MAGIC = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2

SHT_NOBITS = 8
SHT_RELA = 4
# Elf64_Rela: r_offset, r_info (symbol << 32 | type), r_addend (little-endian files only): the
# dynamic loader's RELATIVE relocations fill in a position-independent file's pointers.
ELF64_RELA = struct.Struct("<QQq")
RELATIVE_TYPES = frozenset({8, 1027})  # R_X86_64_RELATIVE, R_AARCH64_RELATIVE
SHT_NOTE = 7
PT_LOAD = 1
PT_NOTE = 4
SHF_ALLOC = 0x2
STT_OBJECT, STT_FUNC, STT_FILE = 1, 2, 4
STB_LOCAL = 0
SHN_UNDEF = 0
SHF_COMPRESSED = 0x800
SHN_XINDEX = 0xFFFF
NT_GNU_BUILD_ID = 3
ELFCOMPRESS_ZLIB, ELFCOMPRESS_ZSTD = 1, 2
ET_REL = 1
_EMPTY_PACKAGE_SECTIONS = {".symtab", ".strtab", ".shstrtab"}
ET_NAMES = {0: "none", 1: "relocatable", 2: "executable", 3: "shared", 4: "core"}
MACHINES = {3: "x86", 0x3E: "x86_64", 0xB7: "aarch64", 0x28: "arm", 0xF3: "riscv", 0x08: "mips",
            0x14: "ppc", 0x15: "ppc64", 0x16: "s390x", 0x2B: "sparcv9", 0x102: "loongarch"}

# e_ident: magic, class, data (byte order), version, OS ABI, ABI version, padding.
E_IDENT = struct.Struct("4sBBBBB7s")


@dataclass(frozen=True)
class Layout:
    """The records of one ELF class and byte order."""

    endian: str
    # Elf_Ehdr after e_ident: type, machine, version, entry, phoff, shoff, flags,
    # ehsize, phentsize, phnum, shentsize, shnum, shstrndx.
    ehdr: struct.Struct
    # Elf_Shdr: name, type, flags, addr, offset, size, link, info, addralign, entsize.
    shdr: struct.Struct
    # Elf_Phdr, normalised by phdr_fields: type, offset, filesz.
    phdr: struct.Struct
    # Elf_Nhdr: namesz, descsz, type.
    nhdr: struct.Struct
    # Elf_Chdr: type, [reserved,] size, addralign.
    chdr: struct.Struct
    is_64: bool
    # Elf_Sym: 64-bit name, info, other, shndx, value, size; 32-bit name, value, size, info, other, shndx.
    sym: struct.Struct
    # .gnu_debuglink's CRC-32, after the NUL-padded name (the file's byte order).
    crc32: struct.Struct

    def phdr_fields(self, raw: tuple) -> tuple[int, int, int]:
        if self.is_64:  # type, flags, offset, vaddr, paddr, filesz, memsz, align
            return raw[0], raw[2], raw[5]
        return raw[0], raw[1], raw[4]  # type, offset, vaddr, paddr, filesz, memsz, flags, align

    def segment(self, raw: tuple) -> "Segment":
        if self.is_64:  # type, flags, offset, vaddr, paddr, filesz, memsz, align
            return Segment(raw[0], raw[2], raw[3], raw[5], raw[6], raw[7])
        return Segment(raw[0], raw[1], raw[2], raw[4], raw[5], raw[7])  # type, offset, vaddr, paddr, filesz, memsz, flags, align

    def symbol_fields(self, raw: tuple) -> tuple[int, int, int, int, int]:
        """(name offset, info, section index, value, size) of an Elf_Sym."""
        if self.is_64:  # name, info, other, shndx, value, size
            return raw[0], raw[1], raw[3], raw[4], raw[5]
        return raw[0], raw[3], raw[5], raw[1], raw[2]  # name, value, size, info, other, shndx

    def chdr_fields(self, raw: tuple) -> tuple[int, int]:
        return (raw[0], raw[2]) if self.is_64 else (raw[0], raw[1])


def _layout(cls: int, data: int) -> Layout:
    e = "<" if data == ELFDATA2LSB else ">"
    if cls == ELFCLASS64:
        return Layout(e, struct.Struct(e + "HHIQQQIHHHHHH"), struct.Struct(e + "IIQQQQIIQQ"),
                      struct.Struct(e + "IIQQQQQQ"), struct.Struct(e + "III"), struct.Struct(e + "IIQQ"), True,
                      struct.Struct(e + "IBBHQQ"), struct.Struct(e + "I"))
    return Layout(e, struct.Struct(e + "HHIIIIIHHHHHH"), struct.Struct(e + "IIIIIIIIII"),
                  struct.Struct(e + "IIIIIIII"), struct.Struct(e + "III"), struct.Struct(e + "III"), False,
                  struct.Struct(e + "IIIBBH"), struct.Struct(e + "I"))


LAYOUTS = {(c, d): _layout(c, d) for c in (ELFCLASS32, ELFCLASS64) for d in (ELFDATA2LSB, ELFDATA2MSB)}

MAX_SECTIONS = 1 << 20
MAX_SEGMENTS = 1 << 16
MAX_SHSTRTAB = 16 << 20
MAX_NOTES = 1 << 20  # bytes of one note section read
MAX_BUILD_ID = 64  # sha1 is 20 bytes, md5/uuid 16; more is not a build id
MAX_DEBUGLINK = 4096
MAX_SYMBOLS = 1 << 22
PAGE = 0x1000
MAX_DECOMPRESSED = 512 << 20
MIN_KEYABLE_BUILD_ID = 16  # shorter ids (e.g. --build-id=fast on old linkers: 8 bytes) collide


@dataclass
class Section:
    """One section header; ``index`` is its place in the section header table."""

    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    addr: int = 0  # sh_addr: where an allocated section is loaded


@dataclass(frozen=True)
class Segment:
    """A program header: type, file offset, virtual address, sizes, alignment."""

    type: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True)
class Symbol:
    """A function or object of ``.symtab`` (or ``.dynsym``)."""

    name: str
    value: int
    size: int
    file: str | None = None  # a local symbol's source file: the STT_FILE symbol before it


class SymbolTable:
    """Defined FUNC and OBJECT symbols sorted by (value, size): ``values`` to bisect, the
    name of entry ``k`` decoded on first use."""

    def __init__(self, rows: list[tuple[int, int, int, str | None]], names: bytes):
        self.values = [r[0] for r in rows]
        self._rows = rows  # (value, size, name offset, STT_FILE of a local symbol)
        self._strtab = names
        self._names: dict[int, str] = {}

    @classmethod
    def of_symbols(cls, symbols: list[Symbol]) -> "SymbolTable":
        """A table of symbols already read (in their order), names and all."""
        table = cls([(s.value, s.size, 0, s.file) for s in symbols], b"")
        table._names = {k: s.name for k, s in enumerate(symbols)}
        return table

    def size(self, k: int) -> int:
        return self._rows[k][1]

    def name(self, k: int) -> str:
        found = self._names.get(k)
        if found is None:
            found = self._names[k] = cstring(self._strtab, self._rows[k][2]).decode("utf-8", "replace")
        return found

    def symbol(self, k: int) -> Symbol:
        value, size, _name_off, file = self._rows[k]
        return Symbol(self.name(k), value, size, file)


@dataclass
class ElfInfo:
    """What identifies an ELF file.  ``kind`` is "elf" for binaries and debug files, "dwp"/"dwo" for split DWARF."""

    path: str
    is_64: bool
    endian: str
    machine: int
    elf_type: int
    build_id: BuildId | None = None
    debuglink: tuple[str, int] | None = None  # (file name, CRC-32)
    has_dwarf: bool = False
    has_code: bool = False
    split: str | None = None  # "dwp" or "dwo" when the file holds split DWARF
    dwo_ids: list[int] | None = None  # skeleton IDs (binary) or unit IDs (.dwp/.dwo); None: unknown
    dwo_error: str | None = None  # why dwo_ids could not be read (e.g. zstd-compressed)
    cu_index_version: int | None = None
    sections: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.split or "elf"

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"0x{self.machine:x}")

    @property
    def index(self) -> str | None:
        """The build-id in lower-case hex (the debuginfod and SSQP key), None without one."""
        return self.build_id.index() if self.build_id else None

    @property
    def is_debug_only(self) -> bool:
        """A separate debug file (``objcopy --only-keep-debug``): DWARF but no code."""
        return self.has_dwarf and not self.has_code

    @property
    def needs_dwp(self) -> bool:
        return bool(self.dwo_ids) and self.split is None


class ElfFile:
    """A lazy ELF reader over a bounded file: the header first, sections, notes, segments and
    the symbol table when asked (read_elf's identity, and the DWARF and CFI readers)."""

    def __init__(self, r: BoundedReader, path: str):
        self.r = r
        self.path = path
        ident = E_IDENT.unpack(r.read(0, E_IDENT.size, "ELF identification"))
        magic, cls, data, _version, _abi, _abiv, _pad = ident
        if magic != ELF_MAGIC:
            raise FormatError("not an ELF file (no \\x7fELF magic)", path)
        if cls not in (ELFCLASS32, ELFCLASS64) or data not in (ELFDATA2LSB, ELFDATA2MSB):
            raise FormatError(f"ELF class {cls} / byte order {data} unknown", path)
        self.lay = LAYOUTS[(cls, data)]
        (self.e_type, self.machine, _v, _entry, self.phoff, self.shoff, _flags, _ehsize, self.phentsize,
         self.phnum, self.shentsize, self.shnum, self.shstrndx) = r.unpack(self.lay.ehdr, E_IDENT.size, "ELF header")
        self.sections: list[Section] = []
        self._inflated: dict[int, dwarf.SectionView] = {}  # section index -> its decompressed view
        self._inflate: Counter | None = None  # made on the first compressed section

    def _inflate_budget(self) -> Counter:
        """Bytes all SHF_COMPRESSED sections of this file may decompress to, together: a zlib bomb
        keeps every section under MAX_DECOMPRESSED and is many sections (4.2 MB -> 4.75 GB)."""
        if self._inflate is None:
            cap = max(limit("INFLATE_FLOOR"), limit("INFLATE_RATIO") * self.r.size)
            self._inflate = Counter("INFLATE_RATIO", cap, path=self.path, unit="bytes",
                                    what="bytes decompressed from the ELF's compressed sections "
                                         "(SYMTOOL_MAX_INFLATE_FLOOR, or the ratio times the file's size)")
        return self._inflate

    # -- sections ------------------------------------------------------------
    def read_sections(self) -> None:
        lay, r = self.lay, self.r
        if self.shoff == 0:
            return
        if self.shentsize < lay.shdr.size:
            raise FormatError(f"section header size {self.shentsize} is smaller than {lay.shdr.size}", self.path)
        first = r.unpack(lay.shdr, self.shoff, "section header 0")
        shnum, shstrndx = self.shnum, self.shstrndx
        if shnum == 0:
            shnum = first[5]  # extended numbering: the count is in section 0's sh_size
        if shstrndx == SHN_XINDEX:
            shstrndx = first[6]
        if shnum > MAX_SECTIONS or self.shoff + shnum * self.shentsize > r.size:
            raise FormatError(f"{shnum} section headers at {self.shoff:#x} run past the end of the file", self.path)
        table = r.read(self.shoff, shnum * self.shentsize, "section headers")
        raw = [lay.shdr.unpack_from(table, k * self.shentsize) for k in range(shnum)]
        names = b""
        if 0 < shstrndx < shnum:
            st = raw[shstrndx]
            if st[3] != SHT_NOBITS:
                if st[5] > MAX_SHSTRTAB:
                    raise FormatError(f"section name table is implausibly large ({st[5]} bytes)", self.path)
                names = r.read(st[4], st[5], "section name table")
        for k, s in enumerate(raw):
            name_off, stype, flags, addr, offset, size = s[:6]
            if stype != SHT_NOBITS and offset + size > r.size:
                raise FormatError(f"section {k} ({offset:#x} +{size:#x}) runs past the end of the file", self.path)
            name = cstring(names, name_off).decode("utf-8", "replace") if name_off < len(names) else ""
            self.sections.append(Section(k, name, stype, flags, offset, size, addr))

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def view(self, sec: Section) -> dwarf.SectionView:
        """The content of a section, decompressed when SHF_COMPRESSED."""
        from symtool.formats import dwarf  # imported here: identity and symbol cache lookups read no DWARF

        if sec.type == SHT_NOBITS:
            return dwarf.SectionView.of_bytes(sec.name, b"", self.path)
        if not sec.flags & SHF_COMPRESSED:
            base = sec.offset
            return dwarf.SectionView(sec.name, sec.size, lambda off, n: self.r.read(base + off, n, sec.name),
                                     self.path)
        if sec.size < self.lay.chdr.size:
            raise FormatError(f"{sec.name}: compressed section smaller than its header", self.path)
        ctype, usize = self.lay.chdr_fields(self.r.unpack(self.lay.chdr, sec.offset, f"{sec.name} header"))
        if ctype == ELFCOMPRESS_ZSTD:
            raise FormatError(f"{sec.name}: zstd-compressed (not supported; zlib is)", self.path)
        if ctype != ELFCOMPRESS_ZLIB:
            raise FormatError(f"{sec.name}: unknown compression type {ctype}", self.path)
        if usize > MAX_DECOMPRESSED:
            raise FormatError(f"{sec.name}: decompresses to {usize} bytes (limit {MAX_DECOMPRESSED})", self.path)
        cached = self._inflated.get(sec.index)
        if cached is not None:
            return cached
        self._inflate_budget().spend(usize)  # before inflating: the output is at most usize (+1) bytes
        packed = self.r.read(sec.offset + self.lay.chdr.size, sec.size - self.lay.chdr.size, sec.name)
        d = zlib.decompressobj()
        try:
            data = d.decompress(packed, usize + 1)
        except zlib.error as err:
            raise FormatError(f"{sec.name}: bad zlib data ({err})", self.path) from None
        if len(data) != usize:
            raise FormatError(f"{sec.name}: decompresses to {len(data)} bytes, header says {usize}", self.path)
        view = dwarf.SectionView.of_bytes(sec.name, data, self.path)
        self._inflated[sec.index] = view
        return view

    # -- notes ---------------------------------------------------------------
    def _notes(self, offset: int, size: int, align: int = 4):
        if size > MAX_NOTES:
            size = MAX_NOTES
        data = self.r.read(offset, size, "notes")
        nh = self.lay.nhdr
        pos = 0
        while pos + nh.size <= len(data):
            namesz, descsz, ntype = nh.unpack_from(data, pos)
            pos += nh.size
            name_end = pos + namesz
            desc_start = name_end + (-namesz % align)
            desc_end = desc_start + descsz
            if desc_end > len(data):
                raise FormatError(f"note at {offset + pos - nh.size:#x} runs past its section", self.path)
            yield data[pos:name_end].rstrip(b"\0"), ntype, data[desc_start:desc_end]
            pos = desc_end + (-descsz % align)

    def build_id(self) -> BuildId | None:
        places = [(s.offset, s.size) for s in self.sections if s.type == SHT_NOTE]
        if not places:
            places = self._note_segments()
        for offset, size in places:
            for name, ntype, desc in self._notes(offset, size):
                if name == b"GNU" and ntype == NT_GNU_BUILD_ID:
                    if not desc or len(desc) > MAX_BUILD_ID:
                        raise FormatError(f"build-id note of {len(desc)} bytes", self.path)
                    return BuildId(bytes(desc))
        return None

    def _program_headers(self) -> list[tuple]:
        """The raw program header records (empty without any); the count is bounded first."""
        lay, r = self.lay, self.r
        if self.phoff == 0 or self.phnum == 0:
            return []
        if self.phentsize < lay.phdr.size or self.phnum > MAX_SEGMENTS:
            raise FormatError("program header table is malformed", self.path)
        table = r.read(self.phoff, self.phnum * self.phentsize, "program headers")
        return [lay.phdr.unpack_from(table, k * self.phentsize) for k in range(self.phnum)]

    def _note_segments(self) -> list[tuple[int, int]]:
        out = []
        for k, raw in enumerate(self._program_headers()):
            ptype, offset, filesz = self.lay.phdr_fields(raw)
            if ptype == PT_NOTE:
                if offset + filesz > self.r.size:
                    raise FormatError(f"note segment {k} runs past the end of the file", self.path)
                out.append((offset, filesz))
        return out

    def segments(self) -> list[Segment]:
        """The program headers (empty without any)."""
        return [self.lay.segment(raw) for raw in self._program_headers()]

    def load_bias(self) -> int:
        """The vaddr of the module base: p_vaddr of the PT_LOAD mapping file offset 0, rounded
        down to a page as the loader maps it (the same as its p_align: the ELF rules make p_vaddr
        congruent to p_offset = 0); without that segment, the lowest PT_LOAD's vaddr - offset; 0
        without any PT_LOAD."""
        loads = [s for s in self.segments() if s.type == PT_LOAD]
        if not loads:
            return 0
        first = next((s for s in loads if s.offset == 0), None) or min(loads, key=lambda s: s.vaddr)
        return max(first.vaddr - first.offset, 0) & ~(PAGE - 1)

    def symbols(self, max_symbols: int = MAX_SYMBOLS) -> list[Symbol]:
        """Defined FUNC and OBJECT symbols of ``.symtab`` (``.dynsym`` without one), sorted by value."""
        table = self.symbol_table(max_symbols)
        out = [table.symbol(k) for k in range(len(table.values))]
        out.sort(key=lambda s: (s.value, -s.size))
        return out

    def symbol_table(self, max_symbols: int = MAX_SYMBOLS) -> "SymbolTable":
        """The symbols of :meth:`symbols`, sorted by (value, size), table order among equals;
        names are decoded when asked (a lookup of a few addresses needs a few of thousands)."""
        sec = self.section(".symtab") or self.section(".dynsym")
        if sec is None or sec.type == SHT_NOBITS or not 0 < sec.size:
            return SymbolTable([], b"")
        entsize = self.lay.sym.size
        count = sec.size // entsize
        if count > max_symbols:
            raise FormatError(f"{sec.name}: {count} symbols (limit {max_symbols})", self.path)
        strtab_index = self._link(sec)
        if not 0 < strtab_index < len(self.sections):
            return SymbolTable([], b"")
        strtab = self.sections[strtab_index]
        if strtab.type == SHT_NOBITS or strtab.size > MAX_SHSTRTAB * 8:
            return SymbolTable([], b"")
        names = self.r.read(strtab.offset, strtab.size, "symbol names")
        data = self.r.read(sec.offset, count * entsize, sec.name)
        rows = []
        file = None
        n_names = len(names)
        entries = self.lay.sym.iter_unpack(data)
        if not self.lay.is_64:  # into Elf64_Sym's order (symbol_fields), which is read as it is
            entries = ((name_off, info, 0, shndx, value, size)
                       for name_off, value, size, info, _other, shndx in entries)
        # One pass of iter_unpack over the table (no slice or call per entry to find it); only
        # STT_FILE names are read here.
        for name_off, info, _other, shndx, value, size in entries:
            kind = info & 0xF
            if name_off >= n_names:
                continue
            if kind == STT_FILE:
                file = cstring(names, name_off).decode("utf-8", "replace") or None
                continue
            if (kind != STT_FUNC and kind != STT_OBJECT) or shndx == SHN_UNDEF:
                continue
            rows.append((value, size, name_off, file if info >> 4 == STB_LOCAL else None))
        rows.sort(key=operator.itemgetter(0, 1))
        return SymbolTable(rows, names)

    def has_function_symbol(self, max_bytes: int = 4 << 20) -> bool:
        """Does ``.symtab`` define a function (STT_FUNC, not undefined)?  Only the first
        ``max_bytes`` of the table are read: functions come early in any real one."""
        sec = self.section(".symtab")
        if sec is None or sec.type == SHT_NOBITS or sec.size == 0:
            return False  # .dynsym is left out: exports (or only imports) are not a symbol table
        entsize = self.lay.sym.size
        count = min(sec.size, max_bytes) // entsize
        data = self.r.read(sec.offset, count * entsize, sec.name)
        for k in range(count):
            _name, info, shndx, _value, _size = self.lay.symbol_fields(self.lay.sym.unpack_from(data, k * entsize))
            if info & 0xF == STT_FUNC and shndx != SHN_UNDEF:
                return True
        return False

    def _link(self, sec: Section) -> int:
        raw = self.r.unpack(self.lay.shdr, self.shoff + sec.index * self.shentsize, "section header")
        return raw[6]

    def debuglink(self) -> tuple[str, int] | None:
        sec = self.section(".gnu_debuglink")
        if sec is None or sec.type == SHT_NOBITS:
            return None
        if sec.size > MAX_DEBUGLINK or sec.size < 8:
            raise FormatError(f".gnu_debuglink of {sec.size} bytes", self.path)
        data = self.r.read(sec.offset, sec.size, ".gnu_debuglink")
        name = cstring(data)
        crc_at = (len(name) + 1 + 3) & ~3
        if crc_at + 4 > len(data):
            raise FormatError(".gnu_debuglink has no CRC after the name", self.path)
        (crc,) = self.lay.crc32.unpack_from(data, crc_at)
        return name.decode("utf-8", "surrogateescape"), crc


def _has_content(sec: Section | None) -> bool:
    return sec is not None and sec.type != SHT_NOBITS and sec.size > 0


def _read(r: BoundedReader, path: str, want_dwo_ids: bool) -> ElfInfo:
    from symtool.formats import dwarf

    elf = ElfFile(r, path)
    elf.read_sections()
    info = ElfInfo(path=path, is_64=elf.lay.is_64, endian=elf.lay.endian, machine=elf.machine, elf_type=elf.e_type)
    info.sections = [s.name for s in elf.sections if s.name]
    info.build_id = elf.build_id()
    info.debuglink = elf.debuglink()
    info.has_dwarf = _has_content(elf.section(".debug_info")) or _has_content(elf.section(".debug_line")) \
        or _has_content(elf.section(".zdebug_info"))
    info.has_code = _has_content(elf.section(".text"))
    cu_index = elf.section(".debug_cu_index")
    info_dwo = elf.section(".debug_info.dwo")
    if cu_index is not None:
        info.split = "dwp"
    elif info_dwo is not None:
        info.split = "dwo"
    elif info.elf_type == ET_REL and not info.has_code and not info.has_dwarf and info.build_id is None \
            and set(info.sections) <= _EMPTY_PACKAGE_SECTIONS:
        info.split = "dwp"  # llvm-dwp/thorin with no units (line-tables-only builds): an empty package
    if not want_dwo_ids:
        return info
    try:
        if info.split:
            abbrev = elf.section(".debug_abbrev.dwo")
            info_view = elf.view(info_dwo) if info_dwo is not None else None
            abbrev_view = elf.view(abbrev) if abbrev is not None else None
            if cu_index is not None:
                index = dwarf.read_cu_index(elf.view(cu_index), elf.lay.endian)
                info.cu_index_version = index.version
                if index.rows and info_view is None:
                    raise FormatError(".debug_cu_index lists units but there is no .debug_info.dwo", path)
                if info_view is not None:
                    dwarf.check_index_against_units(index, info_view, abbrev_view, elf.lay.endian)
                info.dwo_ids = [row.signature for row in index.rows]
            elif info_view is None:
                info.dwo_ids = []
            else:
                info.dwo_ids = dwarf.split_unit_ids(info_view, abbrev_view, elf.lay.endian)
        else:
            dinfo = elf.section(".debug_info")
            abbrev = elf.section(".debug_abbrev")
            if dinfo is None or dinfo.type == SHT_NOBITS:
                info.dwo_ids = []
            else:
                info.dwo_ids = dwarf.skeleton_ids(elf.view(dinfo), elf.view(abbrev) if abbrev else None,
                                                  elf.lay.endian)
    except FormatError as err:
        if "zstd" in err.message:
            info.dwo_error = err.message
        else:
            raise
    return info


def read_elf(path: str | os.PathLike[str], dwo_ids: bool = True) -> ElfInfo:
    """Read an ELF file's identity (and, unless ``dwo_ids`` is False, its split-DWARF IDs).

    FormatError for anything malformed, OSError when the file cannot be read.
    """
    p = os.fspath(path)
    with open(p, "rb") as f:
        r = BoundedReader(f, p)
        if r.size == 0:
            raise FormatError("empty file", p)
        return _read(r, p, dwo_ids)


def read_elf_bytes(data: bytes, path: str = "<bytes>", dwo_ids: bool = True) -> ElfInfo:
    """Like :func:`read_elf` for a file already in memory (tests, fuzzing)."""
    import io

    if not data:
        raise FormatError("empty file", path)
    return _read(BoundedReader(io.BytesIO(data), path, len(data)), path, dwo_ids)


def debuglink_crc(path: str | os.PathLike[str]) -> int:
    """CRC-32 of a whole file, as ``.gnu_debuglink`` records it (gdb checks it)."""
    crc = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return crc
            crc = zlib.crc32(chunk, crc)


def elf_identity(path: str | os.PathLike[str]) -> tuple[str | None, int]:
    """(build id index, load bias) of an ELF file from its headers and notes alone: what the
    symbol cache is keyed by, read without touching any DWARF.  FormatError when malformed."""
    import stat

    from symtool.errors import NotRegularFileError

    path = os.fspath(path)
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
        raise NotRegularFileError("not a regular file", path)
    with open(path, "rb") as f:
        try:
            elf = ElfFile(BoundedReader(f, path), path)
            elf.read_sections()
            bid = elf.build_id()
            return (bid.index() if bid is not None else None), elf.load_bias()
        except (struct.error, ValueError, IndexError, KeyError, OverflowError) as err:
            raise FormatError(f"malformed ELF ({type(err).__name__}: {err})", path) from None
