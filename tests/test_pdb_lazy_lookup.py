"""PdbSymbolizer reads what an address needs (issue 25): its shortcuts must not change answers.

The symbolizer finds publics by a binary search of the publics stream's address map and skims
module streams by each procedure's pEnd.  When a PDB's address map or pEnd pointers are wrong,
it must fall back (whole publics, a walk of the records by scope) and still give the answers
it gives for the intact file -- the intact file's answers being the ones tests/test_symbolize.py
checks against llvm-symbolizer.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

from symtool.formats.pdb import PUBLICS_ADDR_ENTRY, PUBLICS_HEADER, iter_modules, open_msf, read_dbi_header
from symtool.formats.pdb_symbols import CV_RECORD_PREFIX, PROC_KINDS, PROCSYM32, PdbSymbolizer

P_END_AT = 4 + 4  # PROCSYM32's pEnd, after the record prefix and pParent


def _answers(pdb: Path, rvas: list[int]) -> list:
    with PdbSymbolizer(pdb) as sym:
        out = []
        for rva in rvas:
            res = sym.symbolize(rva)
            out.append(None if res is None else
                       (res.symbol, res.symbol_offset, [(f.function, f.file, f.line) for f in res.frames]))
        return out


def _text_rvas(pdb: Path, step: int) -> list[int]:
    with PdbSymbolizer(pdb) as sym:
        vaddr, size = sym.sections[0]
    return list(range(vaddr, vaddr + size, step))


def _patch(path: Path, stream: int, at: int, data: bytes) -> None:
    """Overwrite bytes ``at`` of ``stream`` in the file (the MSF block list says where they are)."""
    f, msf = open_msf(path)
    with f:
        bs = msf.block_size
        blocks = msf.stream_blocks(stream)
    with open(path, "r+b") as out:
        for k, byte in enumerate(data):
            pos = at + k
            out.seek(blocks[pos // bs] * bs + pos % bs)
            out.write(bytes([byte]))


def test_a_broken_address_map_falls_back_to_the_whole_publics(fixtures_dir, tmp_path):
    original = fixtures_dir / "pe-pdb" / "crash.pdb"
    broken = tmp_path / "crash.pdb"
    shutil.copy(original, broken)
    f, msf = open_msf(broken)
    with f:
        publics = read_dbi_header(msf).publics_stream
        sym_hash, addr_bytes = PUBLICS_HEADER.unpack(msf.read_stream(publics, 0, PUBLICS_HEADER.size))[:2]
    assert addr_bytes >= 4 * PUBLICS_ADDR_ENTRY.size
    # Entries in the middle of the map point past the symbol record stream.
    middle = PUBLICS_HEADER.size + sym_hash + (addr_bytes // 8) * 4
    _patch(broken, publics, middle, PUBLICS_ADDR_ENTRY.pack(0x7FFFFFF0) * 2)
    rvas = _text_rvas(original, 11)
    assert _answers(broken, rvas) == _answers(original, rvas)
    with PdbSymbolizer(broken) as sym:
        vaddr, _size = sym.sections[0]
        sym.symbolize(vaddr + 0x100)
        assert sym._publics is not None  # the fallback was taken


def test_the_address_map_and_the_whole_publics_agree(fixtures_dir):
    pdb = fixtures_dir / "pe-pdb" / "dump_syms_regtest64.pdb"
    with PdbSymbolizer(pdb) as by_map, PdbSymbolizer(pdb) as whole:
        whole._addr_map = (0, -1)  # as if the PDB had none
        for section, (_vaddr, size) in enumerate(by_map.sections[:2], 1):
            for offset in range(0, size, 5):
                assert by_map.public_at(section, offset) == whole.public_at(section, offset), (section, offset)
        assert by_map._publics is None and whole._publics is not None


def test_broken_proc_end_pointers_are_walked_by_scope(fixtures_dir, tmp_path):
    original = fixtures_dir / "pe-pdb" / "crash.pdb"
    broken = tmp_path / "crash.pdb"
    shutil.copy(original, broken)
    patched = 0
    f, msf = open_msf(broken)
    with f:
        targets = []
        for mod in iter_modules(msf):
            if not mod.has_stream or mod.sym_bytes < 8:
                continue
            data = msf.read_stream(mod.stream, 0, mod.sym_bytes)
            pos = 4
            while pos + 4 <= len(data):
                reclen, kind = CV_RECORD_PREFIX.unpack_from(data, pos)
                if kind in PROC_KINDS and reclen - 2 >= PROCSYM32.size:
                    # Every other procedure: its pEnd leads backwards; the next one's past the stream.
                    bad = 0 if patched % 2 == 0 else 0x7FFFFFF0
                    targets.append((mod.stream, pos + P_END_AT, struct.pack("<I", bad)))
                    patched += 1
                pos += 2 + reclen
    for stream, at, data in targets:
        _patch(broken, stream, at, data)
    assert patched >= 4
    rvas = _text_rvas(original, 5)
    assert _answers(broken, rvas) == _answers(original, rvas)
