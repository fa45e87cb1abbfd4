"""What a file is, for a store: name, INDEX and refs.ptr kind (pri / pub / typ / bin).

``typ``: a PDB with no DBI stream (or an empty one) holds only types -- a
type-server PDB such as the ``vc140.pdb`` that cl /Zi writes beside object
files.  symstore.exe records those as ``typ``, and so do we.

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
from pathlib import Path

from symtool.store.items import PublishItem

STREAM_TPI = 2
PRIVATE, PUBLIC, TYPES_ONLY = "pri", "pub", "typ"


def pdb_kind(path: str | os.PathLike[str]) -> str:
    """The refs.ptr kind of a PDB: ``typ`` without a DBI stream, else ``pub`` or ``pri``."""
    from symtool.formats.pdb import open_msf

    f, msf = open_msf(path)
    with f:
        return msf_pdb_kind(msf)


def msf_pdb_kind(msf) -> str:
    """:func:`pdb_kind` of a PDB already open as ``msf``."""
    from symtool.formats.pdb import STREAM_DBI

    if msf.version == 7 and msf.stream_size(STREAM_DBI) == 0:  # nil, empty or absent
        return TYPES_ONLY
    return PRIVATE if _has_private_symbols(msf) else PUBLIC


def pdb_has_private_symbols(path: str | os.PathLike[str]) -> bool:
    from symtool.formats.pdb import open_msf

    f, msf = open_msf(path)
    with f:
        return _has_private_symbols(msf)


def _has_private_symbols(msf) -> bool:
    """Does the PDB open as ``msf`` hold private symbols (types, or module symbols or lines)?"""
    from symtool.formats.pdb import STREAM_DBI, TPI_STREAM_HEADER_START, iter_modules, read_dbi_header

    if msf.version != 7:
        return True
    dbi = read_dbi_header(msf)
    if dbi is not None and dbi.stripped:
        return False
    tpi = msf.read_stream(STREAM_TPI, 0, 20)
    if len(tpi) >= 20:
        _ver, _hdr, begin, end, _bytes = TPI_STREAM_HEADER_START.unpack(tpi)
        if end > begin:
            return True
    if dbi is None:
        # No DBI stream: nothing private.  A pre-VC4.1 one: cannot tell, assume full.
        return msf.stream_size(STREAM_DBI) > 0
    return any(m.has_stream and msf.stream_size(m.stream) > 0 and (m.sym_bytes > 4 or m.c13_bytes > 0)
               for m in iter_modules(msf, dbi))


def identify_full(path: Path, info=None):
    """(PublishItem, PeInfo | PdbInfo) for a PE image or PDB (by content); FormatError otherwise.
    ``info``: the file's identity when the caller has read it already."""
    from symtool.formats.detect import read_identity
    from symtool.errors import FormatError
    from symtool.formats.pe import PeInfo

    if info is None:
        info = read_identity(path)
    if info.kind in ("elf", "dwp", "dwo", "macho"):
        raise FormatError(f"an {info.kind} file has several keys: use identify_all", path)
    size = os.stat(path).st_size
    if isinstance(info, PeInfo):
        return PublishItem(path, path.name, info.index, "bin", size), info
    kind = pdb_kind(path)
    return PublishItem(path, path.name, info.index, kind, size), info


def identify_all(path: Path):
    """([PublishItem...], info) for any publishable file (by content).

    A PE image or PDB has one entry; an ELF or Mach-O file one per key (see
    symtool.store.native); a .dwp or .dwo none yet: it is keyed by its binary's
    build-id once the binaries are known (``native.dwp_item``).
    """
    from symtool.formats.detect import read_identity
    from symtool.store.native import is_native, items_for

    info = read_identity(path)
    if not is_native(info):
        item, info = identify_full(path, info)
        return [item], info
    if info.kind in ("dwp", "dwo"):
        return [], info
    return items_for(path, info, os.stat(path).st_size), info


# identify_opened's third value for a file it did not judge: the caller judges it itself (usable.file_features).
NOT_JUDGED = object()


def identify_opened(path: Path, f, head: bytes):
    """:func:`identify_all` of the file open as ``f`` (a regular file, at offset 0 or anywhere: its
    reads are positional), whose first bytes are ``head``; and a third value, the symbol features
    (:func:`symtool.usable.msf_features`) of an MSF PDB, or None when they could not be read, or
    :data:`NOT_JUDGED` for other files.

    An MSF PDB -- the common case of a publish of many files -- is read through ``f`` alone: its
    identity, refs.ptr kind and features come from one opening and one read of each directory page,
    where identify_all and file_features would open it three times and read its directory three
    times.  Other files go through identify_all (which opens them again)."""
    from symtool.errors import FormatError
    from symtool.formats.detect import PDB, PDB2, sniff
    from symtool.formats.pdb import Msf, msf_pdb_info
    from symtool.formats.binio import BoundedReader

    if sniff(head) not in (PDB, PDB2):
        return (*identify_all(path), NOT_JUDGED)
    p = os.fspath(path)
    reader = BoundedReader(f, p)
    msf = Msf(reader)
    info = msf_pdb_info(msf)
    item = PublishItem(path, path.name, info.index, msf_pdb_kind(msf), reader.size)
    features = None
    if info.kind == "pdb":  # file_features judges MSF 2.00 ("pdb2") files not at all
        from symtool.usable import msf_features

        try:
            features = msf_features(msf)
        except (FormatError, OSError):
            features = None  # unreadable symbols are not the identity's business (publish's without_symbols)
    return [item], info, features


def identify(path: Path) -> PublishItem:
    """PublishItem for a PE image or PDB (by content); FormatError for anything else."""
    return identify_full(path)[0]
