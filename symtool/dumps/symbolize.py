"""The faulting address, symbolized with the faulting module's PDB (parsed PDBs cached for the run)."""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from pathlib import Path

from symtool.errors import FormatError
from symtool.formats.minidump import Module


class SymbolizerCache:
    """Open PdbSymbolizers by path, least recently used closed first (bounded memory)."""

    def __init__(self, size: int = 8):
        self.size = size
        self._items: OrderedDict[str, object] = OrderedDict()
        self._failed: dict[str, str] = {}

    def get(self, path: Path):
        from symtool.symbolize import open_pdb_symbolizer

        key = os.fspath(path)
        if key in self._failed:
            raise FormatError(self._failed[key], key)
        sym = self._items.get(key)
        if sym is not None:
            self._items.move_to_end(key)
            return sym
        try:
            sym = open_pdb_symbolizer(key)  # through the symbol cache
        except (FormatError, OSError) as err:
            self._failed[key] = getattr(err, "message", None) or str(err)
            raise
        self._items[key] = sym
        while len(self._items) > self.size:
            _k, old = self._items.popitem(last=False)
            old.close()
        return sym

    def close(self) -> None:
        for sym in self._items.values():
            sym.close()
        self._items.clear()


def symbolize_fault(cache: SymbolizerCache, pdb: Path, module: Module, rva: int):
    """(Symbolized | None, note): ``rva`` of ``module`` symbolized with ``pdb``, or why not.

    A PDB whose identity is not the module's is never used: its answer would be wrong.
    """
    try:
        sym = cache.get(pdb)
        if module.debug_id is not None and not sym.debug_id.matches(module.debug_id):
            return None, f"{pdb}: PDB identity {sym.debug_id.index()} does not match {module.debug_id.index()}"
        res = sym.symbolize(rva)
    except FormatError as err:
        return None, f"cannot symbolize: {err}"
    except (OSError, ValueError, IndexError, KeyError, struct.error) as err:
        return None, f"cannot symbolize: {pdb}: {err}"
    if res is None or not res.frames:
        return None, f"no symbol at RVA {rva:#x} in {pdb.name}"
    return res, None


__all__ = ["SymbolizerCache", "symbolize_fault"]
