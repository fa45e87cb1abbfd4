"""Detect a file's format by its content, never by its extension
(stores hold .sys, .scr and renamed files)."""

from __future__ import annotations

import os

from symtool.errors import FormatError
from symtool.fsutil import open_regular  # a FIFO or device among inputs never blocks a read

PE = "pe"
PDB = "pdb"
PDB2 = "pdb2"
PORTABLE_PDB = "portable-pdb"
MINIDUMP = "minidump"
CAB = "cab"
ELF = "elf"
MACHO = "macho"

_MACHO_MAGICS = {b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"}


def sniff(head: bytes) -> str | None:
    """Kind of file from its first bytes (at least 64 wanted), or None."""
    # The magics below share no prefix with the PDB ones, so their order does not matter; the
    # PDB reader (whose module declares its magics) is imported only when none of them matched:
    # `symbolize` of an ELF file and `id` of a PE image never load it.
    if head.startswith(b"MDMP"):
        return MINIDUMP
    if head.startswith(b"MSCF"):
        return CAB
    if head.startswith(b"\x7fELF"):
        return ELF
    if head[:4] in _MACHO_MAGICS:
        return MACHO
    if head.startswith(b"MZ"):
        return PE
    from symtool.formats.pdb import MSF2_MAGIC, MSF7_MAGIC, PORTABLE_MAGIC

    if head.startswith(MSF7_MAGIC):
        return PDB
    if head.startswith(MSF2_MAGIC):
        return PDB2
    if head.startswith(PORTABLE_MAGIC):
        return PORTABLE_PDB
    return None


def detect(path: str | os.PathLike[str]) -> str | None:
    """Kind of the file at ``path``; for MZ files, checks the PE signature too."""
    p = os.fspath(path)
    with open_regular(p) as f:
        head = f.read(64)
        kind = sniff(head)
        if kind == PE:
            if len(head) < 64:
                return None
            from symtool.formats.pe import DOS_LFANEW, DOS_LFANEW_OFFSET, PE_SIGNATURE

            (e_lfanew,) = DOS_LFANEW.unpack_from(head, DOS_LFANEW_OFFSET)
            f.seek(e_lfanew)
            if f.read(4) != PE_SIGNATURE:
                return None
    return kind


IDENTIFIABLE = "a PE image, PDB, ELF file (binary, debug file, .dwp) or Mach-O file (binary, dSYM DWARF)"


def read_identity(path: str | os.PathLike[str]):
    """PeInfo, PdbInfo, ElfInfo or MachoInfo by content; FormatError for anything else.

    Each has ``path``, ``kind`` and ``index`` (the store key's identity part).
    """
    p = os.fspath(path)
    kind = detect(p)
    if kind == PE:
        from symtool.formats.pe import read_pe

        return read_pe(p)
    if kind in (PDB, PDB2, PORTABLE_PDB):
        from symtool.formats.pdb import read_pdb

        return read_pdb(p)
    if kind == ELF:
        from symtool.formats.elf import read_elf

        return read_elf(p)
    if kind == MACHO:
        from symtool.formats.macho import read_macho

        return read_macho(p)
    if kind is None:
        if os.path.getsize(p) == 0:
            raise FormatError("empty file", p)
        with open_regular(p) as f:
            if f.read(2) == b"MZ":
                raise FormatError("MZ file without a PE header (a DOS program, or truncated)", p)
        raise FormatError(f"not {IDENTIFIABLE} (unrecognised content)", p)
    from symtool.text import article

    raise FormatError(f"is {article(kind)} file, not {IDENTIFIABLE}", p)
