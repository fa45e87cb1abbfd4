"""Load a real Mach-O executable into an emulator as dyld would place it: each segment at its
VM address plus a slide (``__PAGEZERO`` left unmapped).  The load commands are read here with
struct from <mach-o/loader.h>, nothing of symtool's.

Freestanding test programs have no dylibs, no rebases needed for position-independent code,
and no chained fixups, so mapping the bytes is the whole of loading.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

MH_MAGIC_64 = 0xFEEDFACF
LC_SEGMENT_64 = 0x19
LC_SYMTAB = 0x2
LC_UUID = 0x1B
# mach_header_64: magic, cputype, cpusubtype, filetype, ncmds, sizeofcmds, flags, reserved.
HEADER = struct.Struct("<IiiIIIII")
LOAD_COMMAND = struct.Struct("<II")
# segment_command_64 after cmd/cmdsize: segname, vmaddr, vmsize, fileoff, filesize, maxprot, initprot, nsects, flags.
SEGMENT = struct.Struct("<16sQQQQiiII")
# section_64: sectname, segname, addr, size, offset, align, reloff, nreloc, flags, reserved1-3.
SECTION = struct.Struct("<16s16sQQIIIIIIII")
SYMTAB = struct.Struct("<IIII")
NLIST = struct.Struct("<IBBHQ")
S_ATTR_PURE_INSTRUCTIONS = 0x80000000


@dataclass
class LoadedMachO:
    path: Path
    base: int  # where __TEXT (the Mach header) is mapped
    size: int  # from __TEXT to the end of the last mapped segment
    slide: int
    uuid: bytes
    symbols: dict[str, int]  # name (with the C underscore) -> slid address

    def symbol(self, name: str) -> int:
        return self.symbols[name]


def load_macho(emu, path: Path, slide: int = 0) -> LoadedMachO:
    data = Path(path).read_bytes()
    magic, _cpu, _sub, _ftype, ncmds, sizeofcmds, _flags, _r = HEADER.unpack_from(data, 0)
    assert magic == MH_MAGIC_64, f"{path}: not a thin 64-bit Mach-O"
    pos = HEADER.size
    segments, code, uuid, symtab = [], [], b"", None
    for _ in range(ncmds):
        cmd, cmdsize = LOAD_COMMAND.unpack_from(data, pos)
        if cmd == LC_SEGMENT_64:
            name, vmaddr, vmsize, fileoff, filesize, _max, _init, nsects, _f = SEGMENT.unpack_from(data, pos + 8)
            if vmsize and name.rstrip(b"\0") != b"__PAGEZERO":
                segments.append((name.rstrip(b"\0").decode(), vmaddr, vmsize, fileoff, filesize))
            for k in range(nsects):
                sect = SECTION.unpack_from(data, pos + 8 + SEGMENT.size + k * SECTION.size)
                if sect[8] & S_ATTR_PURE_INSTRUCTIONS:
                    code.append((sect[2] + slide, sect[2] + sect[3] + slide))
        elif cmd == LC_UUID:
            uuid = data[pos + 8:pos + 24]
        elif cmd == LC_SYMTAB:
            symtab = SYMTAB.unpack_from(data, pos + 8)
        pos += cmdsize
    for _name, vmaddr, vmsize, fileoff, filesize in segments:
        raw = data[fileoff:fileoff + filesize]
        emu.map(vmaddr + slide, raw + b"\0" * (vmsize - len(raw)), execute=True, in_dump=False)
    for start, end in code:
        emu.watch_code(start, end)
    symbols = {}
    if symtab:
        symoff, nsyms, stroff, _strsize = symtab
        for k in range(nsyms):
            strx, ntype, _sect, _desc, value = NLIST.unpack_from(data, symoff + k * NLIST.size)
            if ntype & 0x0E == 0x0E and not ntype & 0xE0:
                end = data.index(b"\0", stroff + strx)
                symbols[data[stroff + strx:end].decode()] = value + slide
    text = next(s for s in segments if s[0] == "__TEXT")
    last = max(s[1] + s[2] for s in segments)
    return LoadedMachO(Path(path), text[1] + slide, last - text[1], slide, uuid, symbols)


__all__ = ["LoadedMachO", "load_macho"]
