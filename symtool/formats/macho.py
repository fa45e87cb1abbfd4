"""Mach-O reader: the ``LC_UUID`` of each slice, thin and fat (universal) files, and one
slice opened for reading (:class:`MachoImage`: sections, segments by VM address, symbols).

A fat file starts with ``FAT_MAGIC`` (``CAFEBABE``, 32-bit offsets) or
``FAT_MAGIC_64`` (``CAFEBABF``), big-endian, then one ``fat_arch`` record per
slice.  Each slice is a thin Mach-O: a header, then ``ncmds`` load commands in
``sizeofcmds`` bytes.  Only the header and the load commands are read.

A dSYM's DWARF file is a Mach-O of file type ``MH_DSYM`` with the same UUIDs as
the binary it describes; inside ``X.dSYM/Contents/Resources/DWARF/`` its name is
not necessarily the binary's (cargo: ``<crate>-<hash>``), so
:func:`dsym_dwarf_files` finds the DWARF files by content.

``CAFEBABE`` is also the magic of Java class files; there the next word is the
class-file version (45 or more), never a plausible slice count.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

from symtool.errors import FormatError, NotRegularFileError
from symtool.formats.binio import BoundedReader, cstring
from symtool.ids import MachUuid

FAT_MAGIC = 0xCAFEBABE
FAT_MAGIC_64 = 0xCAFEBABF
MH_MAGIC, MH_CIGAM = 0xFEEDFACE, 0xCEFAEDFE
MH_MAGIC_64, MH_CIGAM_64 = 0xFEEDFACF, 0xCFFAEDFE

# The first word of a thin or fat file, read little-endian (thin magics come in both orders).
MAGIC_LE = struct.Struct("<I")
# fat_header: magic, nfat_arch (big-endian).
FAT_HEADER = struct.Struct(">II")
# fat_arch: cputype, cpusubtype, offset, size, align.
FAT_ARCH = struct.Struct(">iiIII")
# fat_arch_64: cputype, cpusubtype, offset, size, align, reserved.
FAT_ARCH_64 = struct.Struct(">iiQQII")
# mach_header: magic, cputype, cpusubtype, filetype, ncmds, sizeofcmds, flags (+ reserved in 64-bit).
MACH_HEADER = {"<": struct.Struct("<IiiIIII"), ">": struct.Struct(">IiiIIII")}
MACH_HEADER_64_EXTRA = 4
# load_command: cmd, cmdsize.
LOAD_COMMAND = {"<": struct.Struct("<II"), ">": struct.Struct(">II")}
# segment_command(_64) starts with cmd, cmdsize, segname[16].
SEGNAME = struct.Struct("16s")

# segment_command after cmd/cmdsize: segname[16], vmaddr, vmsize, fileoff, filesize, maxprot, initprot, nsects, flags.
SEGMENT_BODY = {("<", False): struct.Struct("<16sIIIIiiII"), (">", False): struct.Struct(">16sIIIIiiII"),
                ("<", True): struct.Struct("<16sQQQQiiII"), (">", True): struct.Struct(">16sQQQQiiII")}
# section(_64): sectname[16], segname[16], addr, size, offset, align, reloff, nreloc, flags, reserved1-2(-3).
SECTION = {("<", False): struct.Struct("<16s16sIIIIIIIII"), (">", False): struct.Struct(">16s16sIIIIIIIII"),
           ("<", True): struct.Struct("<16s16sQQIIIIIIII"), (">", True): struct.Struct(">16s16sQQIIIIIIII")}
# symtab_command after cmd/cmdsize: symoff, nsyms, stroff, strsize.
SYMTAB_BODY = {"<": struct.Struct("<IIII"), ">": struct.Struct(">IIII")}
# nlist(_64): n_strx, n_type, n_sect, n_desc, n_value.
NLIST = {("<", False): struct.Struct("<IBBhI"), (">", False): struct.Struct(">IBBhI"),
         ("<", True): struct.Struct("<IBBHQ"), (">", True): struct.Struct(">IBBHQ")}
N_STAB, N_TYPE, N_SECT = 0xE0, 0x0E, 0x0E
S_ATTR_PURE_INSTRUCTIONS, S_ATTR_SOME_INSTRUCTIONS = 0x80000000, 0x00000400
MAX_SECTIONS = 1 << 16

LC_SYMTAB = 0x2
LC_SEGMENT = 0x1
LC_SEGMENT_64 = 0x19
LC_UUID = 0x1B

MH_OBJECT, MH_EXECUTE, MH_DYLIB, MH_BUNDLE, MH_DSYM = 0x1, 0x2, 0x6, 0x8, 0xA
FILETYPES = {MH_OBJECT: "object", MH_EXECUTE: "executable", 0x3: "fvmlib", 0x4: "core", 0x5: "preload",
             MH_DYLIB: "dylib", 0x7: "dylinker", MH_BUNDLE: "bundle", 0x9: "dylib-stub", MH_DSYM: "dsym",
             0xB: "kext"}

CPU_ARCH_ABI64 = 0x01000000
CPU_ARCH_ABI64_32 = 0x02000000
CPU_TYPES = {7: "i386", 7 | CPU_ARCH_ABI64: "x86_64", 12: "arm", 12 | CPU_ARCH_ABI64: "arm64",
             12 | CPU_ARCH_ABI64_32: "arm64_32", 18: "ppc", 18 | CPU_ARCH_ABI64: "ppc64"}

MAX_FAT_ARCHS = 20  # libmagic's bound too: Java class files have 45+ here
MAX_COMMANDS = 1 << 16
MAX_SIZEOFCMDS = 64 << 20


def arch_name(cputype: int, cpusubtype: int) -> str:
    name = CPU_TYPES.get(cputype)
    if name is None:
        return f"cpu{cputype:#x}"
    sub = cpusubtype & 0x00FFFFFF
    if name == "arm64" and sub == 2:
        return "arm64e"
    if name == "x86_64" and sub == 8:
        return "x86_64h"
    return name


@dataclass
class MachSlice:
    """One architecture's image in a Mach-O file (the whole file when it is thin)."""

    arch: str
    cputype: int
    cpusubtype: int
    filetype: int
    offset: int  # of the slice within the file (0 for a thin file)
    size: int
    is_64: bool
    uuid: MachUuid | None = None
    has_dwarf: bool = False  # a __DWARF segment
    endian: str = "<"
    # (segment, section, file offset within the slice, size, flags, VM address), in load-command
    # order (n_sect of a symbol is the 1-based position here); a dSYM keeps __TEXT's headers with offset 0.
    sections: list[tuple[str, str, int, int, int, int]] = field(default_factory=list)
    # (name, vmaddr, vmsize, file offset within the slice, filesize, initprot), in load-command order.
    segments: list[tuple[str, int, int, int, int, int]] = field(default_factory=list)
    symtab: tuple[int, int] | None = None  # (symoff within the slice, nsyms) of LC_SYMTAB
    strtab: tuple[int, int] | None = None  # (stroff within the slice, strsize) of LC_SYMTAB

    @property
    def filetype_name(self) -> str:
        return FILETYPES.get(self.filetype, f"{self.filetype:#x}")

    @property
    def is_dsym(self) -> bool:
        return self.filetype == MH_DSYM

    @property
    def text_vmaddr(self) -> int:
        """Where the ``__TEXT`` segment (the Mach header) is meant to be loaded: a dump's module base
        is this address slid, so ``rva = vmaddr - text_vmaddr``."""
        return next((s[1] for s in self.segments if s[0] == "__TEXT"), 0)

    def section(self, segment: str, name: str) -> tuple[str, str, int, int, int, int] | None:
        return next((s for s in self.sections if s[0] == segment and s[1] == name), None)

    @property
    def index(self) -> str | None:
        return self.uuid.index() if self.uuid else None


@dataclass
class MachoInfo:
    """A Mach-O file, thin or universal: its slices."""

    path: str
    fat: bool = False
    fat64: bool = False
    slices: list[MachSlice] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "macho"

    @property
    def is_dsym(self) -> bool:
        return bool(self.slices) and all(s.is_dsym for s in self.slices)

    @property
    def has_dwarf(self) -> bool:
        return any(s.has_dwarf for s in self.slices)

    @property
    def index(self) -> str | None:
        """The first slice's UUID key (every slice has its own: see ``slices``)."""
        return self.slices[0].index if self.slices else None

    def uuids(self) -> dict[str, str | None]:
        """arch -> UUID key, the pairing rule for binaries and dSYMs."""
        return {s.arch: s.index for s in self.slices}


def _thin(r: BoundedReader, path: str, offset: int, size: int) -> MachSlice:
    if size < MACH_HEADER["<"].size:
        raise FormatError(f"Mach-O slice at {offset:#x} is too small for a header", path)
    (magic,) = r.unpack(MAGIC_LE, offset, "Mach-O magic")
    if magic in (MH_MAGIC, MH_MAGIC_64):
        e = "<"
    elif magic in (MH_CIGAM, MH_CIGAM_64):
        e = ">"
    else:
        raise FormatError(f"slice at {offset:#x} is not a Mach-O (magic {magic:08x})", path)
    is_64 = magic in (MH_MAGIC_64, MH_CIGAM_64)
    hdr = MACH_HEADER[e]
    _m, cputype, cpusubtype, filetype, ncmds, sizeofcmds, _flags = r.unpack(hdr, offset, "Mach-O header")
    cmds_at = offset + hdr.size + (MACH_HEADER_64_EXTRA if is_64 else 0)
    if ncmds > MAX_COMMANDS or sizeofcmds > MAX_SIZEOFCMDS or ncmds * LOAD_COMMAND[e].size > sizeofcmds:
        raise FormatError(f"{ncmds} load commands in {sizeofcmds} bytes is implausible", path)
    if cmds_at + sizeofcmds > offset + size:
        raise FormatError(f"load commands ({sizeofcmds} bytes) run past the slice at {offset:#x}", path)
    cmds = r.read(cmds_at, sizeofcmds, "load commands")
    sl = MachSlice(arch_name(cputype, cpusubtype), cputype, cpusubtype, filetype, offset, size, is_64, endian=e)
    lc = LOAD_COMMAND[e]
    pos = 0
    for k in range(ncmds):
        if pos + lc.size > len(cmds):
            raise FormatError(f"load command {k} runs past sizeofcmds", path)
        cmd, cmdsize = lc.unpack_from(cmds, pos)
        if cmdsize < lc.size or pos + cmdsize > len(cmds):
            raise FormatError(f"load command {k} has size {cmdsize}", path)
        body = cmds[pos + lc.size:pos + cmdsize]
        if cmd == LC_UUID:
            if len(body) < 16:
                raise FormatError("LC_UUID shorter than 16 bytes", path)
            if sl.uuid is None:
                sl.uuid = MachUuid(bytes(body[:16]))
        elif cmd in (LC_SEGMENT, LC_SEGMENT_64) and len(body) >= SEGNAME.size:
            (segname,) = SEGNAME.unpack_from(body, 0)
            if segname.rstrip(b"\0") == b"__DWARF":
                sl.has_dwarf = True
            _segment(sl, body, cmd == LC_SEGMENT_64, path)
        elif cmd == LC_SYMTAB and len(body) >= SYMTAB_BODY[e].size:
            symoff, nsyms, stroff, strsize = SYMTAB_BODY[e].unpack_from(body, 0)
            sl.symtab = (symoff, nsyms)
            sl.strtab = (stroff, strsize)
        pos += cmdsize
    return sl


def _segment(sl: MachSlice, body: bytes, is_64: bool, path: str) -> None:
    seg, sec = SEGMENT_BODY[(sl.endian, is_64)], SECTION[(sl.endian, is_64)]
    if len(body) < seg.size:
        return
    segname, vmaddr, vmsize, fileoff, filesize, _maxprot, initprot, nsects, _flags = seg.unpack_from(body, 0)
    if nsects > MAX_SECTIONS or seg.size + nsects * sec.size > len(body):
        raise FormatError(f"segment with {nsects} sections does not fit its load command", path)
    if len(sl.segments) + len(sl.sections) + nsects > MAX_SECTIONS:
        raise FormatError(f"more than {MAX_SECTIONS} segments and sections", path)
    sl.segments.append((segname.rstrip(b"\0").decode("ascii", "replace"), vmaddr, vmsize, fileoff, filesize,
                        initprot))
    for k in range(nsects):
        sectname, segname, addr, size, offset, _align, _reloff, _nreloc, flags = \
            sec.unpack_from(body, seg.size + k * sec.size)[:9]
        sl.sections.append((segname.rstrip(b"\0").decode("ascii", "replace"),
                            sectname.rstrip(b"\0").decode("ascii", "replace"), offset, size, flags, addr))


def has_function_symbol(r: BoundedReader, sl: MachSlice, max_symbols: int = 1 << 18) -> bool:
    """Does the slice's symbol table define a symbol in a code section (or hold an N_FUN stab)?
    Only the first ``max_symbols`` entries are read."""
    if sl.symtab is None:
        return False
    symoff, nsyms = sl.symtab
    rec = NLIST[(sl.endian, sl.is_64)]
    count = min(nsyms, max_symbols)
    if symoff == 0 or count == 0 or symoff + count * rec.size > sl.size:
        return False
    data = r.read(sl.offset + symoff, count * rec.size, "symbol table")
    for k in range(count):
        _strx, n_type, n_sect, _desc, _value = rec.unpack_from(data, k * rec.size)
        if n_type == 0x24:  # N_FUN: a function's stab
            return True
        if n_type & N_STAB or n_type & N_TYPE != N_SECT or not 0 < n_sect <= len(sl.sections):
            continue
        if sl.sections[n_sect - 1][4] & (S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS):
            return True
    return False


def _read(r: BoundedReader, path: str) -> MachoInfo:
    if r.size < 8:
        raise FormatError("too small for a Mach-O header", path)
    magic, nfat = FAT_HEADER.unpack(r.read(0, FAT_HEADER.size, "magic"))
    if magic not in (FAT_MAGIC, FAT_MAGIC_64):
        return MachoInfo(path, slices=[_thin(r, path, 0, r.size)])
    info = MachoInfo(path, fat=True, fat64=magic == FAT_MAGIC_64)
    if nfat == 0 or nfat > MAX_FAT_ARCHS:
        hint = " (a Java class file?)" if magic == FAT_MAGIC and nfat >= 45 else ""
        raise FormatError(f"universal file with {nfat} architectures is implausible{hint}", path)
    rec = FAT_ARCH_64 if info.fat64 else FAT_ARCH
    for k in range(nfat):
        fields = r.unpack(rec, FAT_HEADER.size + k * rec.size, f"fat_arch {k}")
        cputype, cpusubtype, offset, size = fields[:4]
        if offset + size > r.size or offset < FAT_HEADER.size + nfat * rec.size:
            raise FormatError(f"slice {k} ({offset:#x} +{size:#x}) lies outside the file", path)
        sl = _thin(r, path, offset, size)
        if (sl.cputype, sl.cpusubtype & 0x00FFFFFF) != (cputype, cpusubtype & 0x00FFFFFF):
            raise FormatError(f"slice {k}: fat header says {arch_name(cputype, cpusubtype)}, "
                              f"the slice is {sl.arch}", path)
        info.slices.append(sl)
    return info


def read_macho_reader(r: BoundedReader, path: str) -> MachoInfo:
    """Like :func:`read_macho` over an open reader (the caller goes on reading sections through it)."""
    return _read(r, path)


def read_macho(path: str | os.PathLike[str]) -> MachoInfo:
    """UUIDs, architectures and file types of a Mach-O file's slices."""
    p = os.fspath(path)
    with open(p, "rb") as f:
        r = BoundedReader(f, p)
        if r.size == 0:
            raise FormatError("empty file", p)
        return _read(r, p)


def read_macho_bytes(data: bytes, path: str = "<bytes>") -> MachoInfo:
    import io

    if not data:
        raise FormatError("empty file", path)
    return _read(BoundedReader(io.BytesIO(data), path, len(data)), path)


# -- one slice opened for reading: sections, memory by VM address, symbols ----------------------

MAX_SYMBOLS = 1 << 22
MAX_SYMBOL_NAME = 4096
# Assembler-local labels the linker may keep (ld64's "ltmp<n>", "l_..." and "L..."): no functions.
LOCAL_LABEL_PREFIXES = ("ltmp", "l_", "L")


class MachoImage:
    """One slice of a Mach-O file (a binary or a dSYM's DWARF file), open for lazy reads.

    Addresses are the file's own VM addresses; a dump's module base is where ``__TEXT`` was
    loaded, so an RVA is ``vmaddr - text_vmaddr``.  Section names ``.debug_X`` (as the DWARF
    readers ask for them) are ``__DWARF,__debug_X``, cut to Mach-O's 16 characters."""

    def __init__(self, path: str, f, reader: BoundedReader, sl: MachSlice):
        self.path = path
        self._f = f
        self.reader = reader
        self.slice = sl
        self.endian = sl.endian
        self.is_64 = sl.is_64
        self.text_vmaddr = sl.text_vmaddr
        self._symbols = None

    @property
    def uuid(self) -> str | None:
        return self.slice.index

    def close(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass

    def view(self, segment: str, name: str):
        """The section's bytes as a SectionView (None: no such section, or no bytes in this file)."""
        from symtool.formats.dwarf import SectionView

        sec = self.slice.section(segment, name)
        if sec is None or sec[2] == 0 or sec[3] == 0:
            return None
        _seg, _name, offset, size, _flags, _addr = sec
        if offset + size > self.slice.size:
            raise FormatError(f"section {segment},{name} ({offset:#x} +{size:#x}) runs past the slice", self.path)
        start = self.slice.offset + offset
        return SectionView(f"{segment},{name}", size, lambda off, n: self.reader.read(start + off, n, name),
                           self.path)

    def dwarf_view(self, elf_name: str):
        """``.debug_info`` -> ``__DWARF,__debug_info`` (``.debug_str_offsets`` -> ``__debug_str_offs``)."""
        return self.view("__DWARF", ("__" + elf_name.lstrip("."))[:16])

    def read_vm(self, address: int, size: int) -> bytes | None:
        """``size`` bytes at VM ``address`` from the segment whose file bytes hold them (None: none does)."""
        if size < 0:
            return None
        for _name, vmaddr, _vmsize, fileoff, filesize, _prot in self.slice.segments:
            if vmaddr <= address and address + size <= vmaddr + filesize:
                if fileoff + filesize > self.slice.size:
                    return None
                try:
                    return self.reader.read(self.slice.offset + fileoff + address - vmaddr, size, "segment")
                except FormatError:
                    return None
        return None

    def is_code(self, address: int) -> bool:
        """Is VM ``address`` inside a section of instructions?"""
        for _seg, _name, _off, size, flags, addr in self.slice.sections:
            if flags & (S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS) and addr <= address < addr + size:
                return True
        return False

    def symbols(self) -> list[tuple[int, int, str]]:
        """(address, size, name) of the symbols defined in sections, sorted; a size runs to the next
        symbol or the end of its section (nlist has none).  Names lose the one leading ``_`` the
        C ABI adds, as llvm-symbolizer shows them."""
        if self._symbols is not None:
            return self._symbols
        sl = self.slice
        out: list[tuple[int, int, str]] = []
        if sl.symtab is not None and sl.strtab is not None and sl.symtab[1]:
            symoff, nsyms = sl.symtab
            stroff, strsize = sl.strtab
            rec = NLIST[(sl.endian, sl.is_64)]
            if nsyms > MAX_SYMBOLS:
                raise FormatError(f"{nsyms} symbols (limit {MAX_SYMBOLS})", self.path)
            if symoff + nsyms * rec.size > sl.size or stroff + strsize > sl.size:
                raise FormatError("symbol or string table runs past the slice", self.path)
            data = self.reader.read(sl.offset + symoff, nsyms * rec.size, "symbol table")
            strings = self.reader.read(sl.offset + stroff, strsize, "string table")
            raw = []
            for k in range(nsyms):
                strx, n_type, n_sect, _desc, value = rec.unpack_from(data, k * rec.size)
                if n_type & N_STAB or n_type & N_TYPE != N_SECT or not 0 < n_sect <= len(sl.sections):
                    continue
                if strx >= strsize:
                    continue
                name = cstring(strings[strx:strx + MAX_SYMBOL_NAME]).decode("utf-8", "replace")
                if not name or name.startswith(LOCAL_LABEL_PREFIXES):
                    continue
                raw.append((value, n_sect, name[1:] if name.startswith("_") else name))
            raw.sort()
            for k, (value, n_sect, name) in enumerate(raw):
                sec = sl.sections[n_sect - 1]
                end = sec[5] + sec[3]
                if k + 1 < len(raw) and raw[k + 1][0] < end:
                    end = max(raw[k + 1][0], value)
                out.append((value, max(end - value, 0), name))
        self._symbols = out
        return out


def open_macho_image(path: str | os.PathLike[str], uuid: str | None = None,
                     cputype: int | None = None) -> MachoImage:
    """The slice of ``path`` whose UUID key is ``uuid`` (else whose CPU type is ``cputype``; else the
    only slice), open for reads (call ``close``).  FormatError when no slice fits."""
    p = os.fspath(path)
    if not stat.S_ISREG(os.stat(p).st_mode):
        raise NotRegularFileError("not a regular file", p)
    f = open(p, "rb")
    try:
        r = BoundedReader(f, p)
        if r.size == 0:
            raise FormatError("empty file", p)
        info = _read(r, p)
        if uuid is not None:
            chosen = [s for s in info.slices if s.index == uuid.lower().replace("-", "")]
        elif cputype is not None:
            chosen = [s for s in info.slices if s.cputype == cputype]
        else:
            chosen = info.slices if len(info.slices) == 1 else []
        if not chosen:
            have = ", ".join(f"{s.arch} {s.index}" for s in info.slices)
            raise FormatError(f"no slice with UUID {uuid} (has {have})" if uuid else
                              f"no slice for CPU type {cputype} (has {have})", p)
        return MachoImage(p, f, r, chosen[0])
    except BaseException:
        f.close()
        raise


# -- dSYM bundles -------------------------------------------------------------

def is_dsym_bundle(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "Contents" / "Resources" / "DWARF").is_dir()


def _is_macho(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return len(head) == 4 and MAGIC_LE.unpack(head)[0] in _MAGICS


# Every magic as MAGIC_LE reads it (the fat ones are big-endian on disk).
_MAGICS = {MH_MAGIC, MH_CIGAM, MH_MAGIC_64, MH_CIGAM_64, 0xBEBAFECA, 0xBFBAFECA}
# The same, as the first four bytes of a file.
MAGICS = frozenset(MAGIC_LE.pack(m) for m in _MAGICS)


# A dSYM holds one DWARF file per binary (a few at most): a bundle's listing is read this far only.
MAX_DSYM_ENTRIES = 64


def dsym_dwarf_files(bundle: str | os.PathLike[str]) -> list[Path]:
    """The Mach-O files in ``bundle/Contents/Resources/DWARF``, found by content, sorted by name
    (of the first MAX_DSYM_ENTRIES entries listed)."""
    import itertools

    d = Path(bundle) / "Contents" / "Resources" / "DWARF"
    out = []
    try:
        entries = sorted(itertools.islice(d.iterdir(), MAX_DSYM_ENTRIES))
    except OSError:
        return []
    for entry in entries:
        try:
            if entry.is_file() and _is_macho(entry):
                out.append(entry)
        except OSError:
            continue
    return out
