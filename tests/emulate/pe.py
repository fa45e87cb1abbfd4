"""Load a real PE image into an :class:`~emulate.arm64.Arm64Emulator` as the Windows loader would
place it: headers and sections at the image base (pefile reads the headers: nothing of symtool's).

Freestanding test programs have no imports and need no relocations at their preferred base.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pefile

from emulate.arm64 import PAGE, Arm64Emulator

SCN_MEM_EXECUTE = 0x20000000
SCN_MEM_WRITE = 0x80000000


@dataclass
class LoadedPe:
    path: Path
    base: int
    size: int
    entry: int  # absolute address of AddressOfEntryPoint
    pe: pefile.PE

    def symbol_address(self, rva: int) -> int:
        return self.base + rva


def load_pe(emu: Arm64Emulator, path: Path) -> LoadedPe:
    data = Path(path).read_bytes()
    pe = pefile.PE(data=data)
    base = pe.OPTIONAL_HEADER.ImageBase
    size = (pe.OPTIONAL_HEADER.SizeOfImage + PAGE - 1) & ~(PAGE - 1)
    image = bytearray(size)
    headers = pe.OPTIONAL_HEADER.SizeOfHeaders
    image[:headers] = data[:headers]
    for s in pe.sections:
        raw = data[s.PointerToRawData:s.PointerToRawData + min(s.SizeOfRawData, s.Misc_VirtualSize or s.SizeOfRawData)]
        image[s.VirtualAddress:s.VirtualAddress + len(raw)] = raw
    # One mapping for the whole image (page permissions per section do not matter to the oracle),
    # executable so that a jump into any section is fetched like the hardware would.
    emu.map(base, bytes(image), execute=True)
    for s in pe.sections:
        if s.Characteristics & SCN_MEM_EXECUTE:
            emu.watch_code(base + s.VirtualAddress, base + s.VirtualAddress + s.Misc_VirtualSize)
    return LoadedPe(Path(path), base, size, base + pe.OPTIONAL_HEADER.AddressOfEntryPoint, pe)


__all__ = ["LoadedPe", "load_pe"]
