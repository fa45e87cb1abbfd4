"""Load a real PE image into an :class:`~emulate.arm64.Arm64Emulator` as the Windows loader would
place it: headers and sections at the image base, or relocated to another (pefile reads the
headers and applies the base relocations: nothing of symtool's).  Freestanding test programs
have no imports.
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


def load_pe(emu: Arm64Emulator, path: Path, base: int | None = None) -> LoadedPe:
    """Map the image at ``base`` (None: its preferred ImageBase; another base: relocated by its base
    relocations, as ASLR places it)."""
    data = Path(path).read_bytes()
    pe = pefile.PE(data=data)
    base = pe.OPTIONAL_HEADER.ImageBase if base is None else base
    size = (pe.OPTIONAL_HEADER.SizeOfImage + PAGE - 1) & ~(PAGE - 1)
    image = pe.get_memory_mapped_image(ImageBase=base)
    # One mapping for the whole image (page permissions per section do not matter to the oracle),
    # executable so that a jump into any section is fetched like the hardware would.
    emu.map(base, bytes(image).ljust(size, b"\0")[:size], execute=True)
    for s in pe.sections:
        if s.Characteristics & SCN_MEM_EXECUTE:
            emu.watch_code(base + s.VirtualAddress, base + s.VirtualAddress + s.Misc_VirtualSize)
    return LoadedPe(Path(path), base, size, base + pe.OPTIONAL_HEADER.AddressOfEntryPoint, pe)


def module_record(loaded: LoadedPe, name: str | None = None) -> dict:
    """The dump's MINIDUMP_MODULE for the image (tests/builders/minidump.py's dict): its CodeView
    RSDS record and timestamp, read by pefile, are what a symbol store finds it by."""
    pe = loaded.pe
    codeview = b""
    for entry in getattr(pe, "DIRECTORY_ENTRY_DEBUG", []):
        if entry.struct.Type == 2:  # IMAGE_DEBUG_TYPE_CODEVIEW: the RSDS record as the image holds it
            at, size = entry.struct.PointerToRawData, entry.struct.SizeOfData
            codeview = pe.__data__[at:at + size]
    return {"name": name or f"C:\\app\\{loaded.path.name}", "base": loaded.base, "size": loaded.size,
            "timestamp": pe.FILE_HEADER.TimeDateStamp, "codeview": codeview}
