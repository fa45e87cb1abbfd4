"""What a file is, for a store: name, INDEX and refs.ptr kind (pri / pub / bin).

``pub`` vs ``pri``: symstore.exe writes ``pub`` for a PDB without private
symbols.  The fixtures settle what that means: bigage.pdb (the DBI header's
"private symbols stripped" flag, 0x2 of Flags, is set -- llvm-pdbutil's "Is
stripped: true" -- although two CRT modules kept symbol streams) and
dummylib.pdb (no modules at all, flag *not* set) are ``pub``; dummyprog.pdb
(flag clear, a module with its own symbol stream) is ``pri``.  Neither test
alone gets all three right, so the rule is: ``pub`` when the stripped flag is
set; otherwise ``pri`` when at least one module in the DBI module-info
substream has a non-empty symbol stream (ModuleSymStream != 0xFFFF) or the
TPI stream holds type records; otherwise ``pub``.  PDBs we cannot judge
(MSF 2.00, portable PDBs, pre-VC4.1 DBI) count as ``pri``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from symtool.errors import FormatError
from symtool.store.items import PublishItem

STREAM_TPI = 2
STREAM_DBI = 3
DBI_HEADER = 64
MODINFO_FIXED = 64
NO_STREAM = 0xFFFF
DBI_FLAG_STRIPPED = 0x2


def pdb_has_private_symbols(path: str | os.PathLike[str]) -> bool:
    from symtool.formats.pdb import open_msf

    f, msf = open_msf(path)
    with f:
        if msf.version != 7:
            return True
        dbi_size = msf.stream_size(STREAM_DBI)
        if dbi_size >= DBI_HEADER:
            head = msf.read_stream(STREAM_DBI, 0, DBI_HEADER)
            if struct.unpack_from("<i", head, 0)[0] == -1 and struct.unpack_from("<H", head, 56)[0] & DBI_FLAG_STRIPPED:
                return False
        tpi = msf.read_stream(STREAM_TPI, 0, 20)
        if len(tpi) >= 20:
            _ver, _hdr, begin, end, _bytes = struct.unpack("<5I", tpi)
            if end > begin:
                return True
        if dbi_size < DBI_HEADER:
            return False
        head = msf.read_stream(STREAM_DBI, 0, DBI_HEADER)
        (sig,) = struct.unpack_from("<i", head, 0)
        if sig != -1:
            return True  # pre-VC4.1 DBI: cannot tell, assume full
        (modinfo_size,) = struct.unpack_from("<i", head, 24)
        if modinfo_size <= 0:
            return False
        if DBI_HEADER + modinfo_size > dbi_size:
            raise FormatError(f"DBI module info ({modinfo_size} bytes) runs past the DBI stream", os.fspath(path))
        data = msf.read_stream(STREAM_DBI, DBI_HEADER, modinfo_size)
        pos = 0
        while pos + MODINFO_FIXED <= len(data):
            (stream,) = struct.unpack_from("<H", data, pos + 34)
            (sym_bytes,) = struct.unpack_from("<I", data, pos + 36)
            (c13_bytes,) = struct.unpack_from("<I", data, pos + 44)
            if stream != NO_STREAM and msf.stream_size(stream) > 0 and (sym_bytes > 4 or c13_bytes > 0):
                return True
            # Two NUL-terminated names follow, then padding to 4 bytes.
            end1 = data.find(b"\0", pos + MODINFO_FIXED)
            end2 = data.find(b"\0", end1 + 1) if end1 >= 0 else -1
            if end2 < 0:
                break
            pos = (end2 + 1 + 3) & ~3
        return False


def identify_full(path: Path):
    """(PublishItem, PeInfo | PdbInfo) for a PE image or PDB (by content); FormatError otherwise."""
    from symtool.formats.detect import read_identity
    from symtool.formats.pe import PeInfo

    info = read_identity(path)
    size = os.stat(path).st_size
    if isinstance(info, PeInfo):
        return PublishItem(path, path.name, info.index, "bin", size), info
    kind = "pri" if pdb_has_private_symbols(path) else "pub"
    return PublishItem(path, path.name, info.index, kind, size), info


def identify(path: Path) -> PublishItem:
    """PublishItem for a PE image or PDB (by content); FormatError for anything else."""
    return identify_full(path)[0]
