"""The addresses ``symtool symbolize`` is given, for one object file.

An object file (:func:`open_target`) is an ELF binary or debug file (DWARF; split units from
the ``.dwp`` beside it or given, or from the unpacked ``.dwo`` files of its build), a Mach-O
binary (one slice: its dSYM beside it, in the build directories or stores by UUID, or its own
``__DWARF``) or a dSYM's DWARF file, or a PE
image, whose PDB is found by its CodeView record through the stores and build directories
exactly as ``stack`` finds it (:class:`symtool.dumps.locate.DebugFiles`, passed in: what
``stack``'s StackResolver builds on); or, by
store key, a PDB or ELF debug file in a store.

Outside :mod:`symtool.dumps` on purpose: an ELF file needs none of the dump machinery, and
importing that package costs a symbolize run of one address a quarter of its time.
"""

from __future__ import annotations

import os
from pathlib import Path

from symtool.errors import FormatError, UsageError


def open_pdb_symbolizer(path: str | os.PathLike[str]):
    """The symbolizer of a PDB, answering through the symbol cache (symtool.store.symcache),
    keyed by the PDB's GUID and age: ``stack``, ``dumps`` and ``symbolize`` open PDBs here."""
    from symtool.formats.pdb_symbols import PdbSymbolizer
    from symtool.store.symcache import cached, enabled

    path = os.fspath(path)
    if not enabled():
        return PdbSymbolizer(path)
    from symtool.formats.pdb import read_pdb
    from symtool.formats.symbols import MALFORMED

    try:
        info = read_pdb(path)
    except (FormatError, OSError, *MALFORMED):
        info = None
    if info is None or info.kind != "pdb" or info.debug_id is None:
        return PdbSymbolizer(path)  # says why it cannot symbolize with this file
    return cached(lambda: PdbSymbolizer(path), "pdb", info.debug_id.index(),
                  {"path": path, "debug_id": info.debug_id})


def open_dwarf_symbolizer(binary: str | os.PathLike[str], dwp: str | os.PathLike[str] | None = None,
                          dwo_roots: list[str] = ()):
    """The DWARF symbolizer of an ELF file (with its .dwp, unpacked .dwo files from
    ``dwo_roots``), answering through the symbol cache keyed by the build id (and whether a
    .dwp answers too): every command opens ELF files here."""
    from symtool.store.symcache import cached, enabled

    def open_reader():
        from symtool.formats.dwarf_symbols import DwarfSymbolizer

        return DwarfSymbolizer(binary, dwp, dwo_roots=list(dwo_roots))

    if not enabled():
        return open_reader()
    from symtool.formats.elf import elf_identity

    try:
        build_id, load_bias = elf_identity(binary)
    except (FormatError, OSError):
        return open_reader()  # says what is wrong with the file, as without the cache
    identity = build_id + ("-dwp" if dwp is not None else "") if build_id else None
    return cached(open_reader, "elf", identity,
                  {"path": os.fspath(binary), "dwp_path": os.fspath(dwp) if dwp is not None else None,
                   "build_id": build_id, "load_bias": load_bias})


def open_macho_symbolizer(path: str | os.PathLike[str], uuid: str):
    """The DWARF symbolizer of the Mach-O slice (a dSYM's DWARF file, or a binary with
    ``__DWARF``) whose LC_UUID is ``uuid``, answering through the symbol cache keyed by it."""
    from symtool.store.symcache import cached, enabled

    def open_reader():
        from symtool.formats.dwarf_symbols import DwarfSymbolizer

        return DwarfSymbolizer(path, uuid=uuid)

    if not enabled():
        return open_reader()
    from symtool.formats.macho import read_macho

    try:
        has_slice = any(s.index == uuid for s in read_macho(path).slices)
    except (FormatError, OSError):
        has_slice = False
    if not has_slice:
        return open_reader()  # says what is wrong with the file, as without the cache
    return cached(open_reader, "macho", uuid, {"path": os.fspath(path), "uuid": uuid})


class Target:
    """One object file ready to symbolize: addresses are ``image_base`` + RVA unless relative.

    (A plain class, not a dataclass: creating a dataclass costs `symbolize`'s start-up.)"""

    def __init__(self, kind: str, path: str, debug_path: str, image_base: int, symbolizer,
                 notes: list[str] | None = None):
        self.kind = kind  # "elf", "macho" or "pe" (the object given), "pdb" (a PDB named by store key)
        self.path = path
        # The file the answers come from (the binary itself, a .dwp beside it, a PDB).
        self.debug_path = debug_path
        self.image_base = image_base
        self.symbolizer = symbolizer  # .symbolize(rva) -> Symbolized | None, .close()
        self.notes = [] if notes is None else notes

    def __repr__(self) -> str:
        return f"Target({self.kind!r}, {self.path!r}, debug_path={self.debug_path!r}, image_base={self.image_base:#x})"

    def symbolize(self, address: int, relative: bool = False):
        """What the debug information says about ``address`` (an RVA when ``relative``); None
        for an address below the image base or that nothing describes."""
        rva = address if relative else address - self.image_base
        if rva < 0:
            return None
        return self.symbolizer.symbolize(rva)

    def symbolize_many(self, addresses, relative: bool = False) -> list:
        """:meth:`symbolize` of each address, a batch at a time where the symbolizer answers
        batches (a symbol cache file: one pass for all of them)."""
        many = getattr(self.symbolizer, "symbolize_many", None)
        if many is None:
            return [self.symbolize(address, relative) for address in addresses]
        base = 0 if relative else self.image_base
        rvas = [address - base for address in addresses]
        asked = [rva for rva in rvas if rva >= 0]
        answers = iter(many(asked))
        return [next(answers) if rva >= 0 else None for rva in rvas]

    def render_many(self, addresses, renderer, relative: bool = False) -> list:
        """The text ``renderer`` words for :meth:`symbolize` of each address, as a tuple of
        pieces to be joined (CachedSymbolizer.render_many: a symbol cache file words what it
        answers without making answer objects)."""
        many = getattr(self.symbolizer, "render_many", None)
        if many is None:
            return [(renderer.block(result),) for result in self.symbolize_many(addresses, relative)]
        base = 0 if relative else self.image_base
        rvas = [address - base for address in addresses]
        if min(rvas, default=0) >= 0:
            return many(rvas, renderer)
        pieces = iter(many([rva for rva in rvas if rva >= 0], renderer))
        unknown = (renderer.block(None),)
        return [next(pieces) if rva >= 0 else unknown for rva in rvas]

    def close(self) -> None:
        self.symbolizer.close()


def open_target(obj: Path | None, *, module_key: str | None = None, dwp: Path | None = None,
                resolver=None, dwo_roots: list[str] = (), arch: str | None = None) -> Target:
    """The object file ``obj`` (or the debug file of store key ``module_key``, ``NAME/INDEX``)
    opened for symbolizing.  ``resolver`` (a DebugFiles over the stores and build
    directories) finds a PE image's PDB and a store key's file.

    ``arch`` picks a Mach-O slice (needed for a universal file of several).

    UsageError for what cannot be symbolized (no PDB or dSYM found, a universal file without
    ``arch``), FormatError for a file that is not what it claims."""
    from symtool.formats.detect import ELF, MACHO, PDB, PE, detect

    if module_key is not None:
        return _open_key(module_key, resolver, dwo_roots)
    assert obj is not None
    if not obj.exists():
        raise UsageError("no such file", obj)
    if obj.is_dir():
        raise UsageError("is a directory, not an object file", obj)
    kind = detect(obj)
    if kind == ELF:
        if dwp is None and Path(f"{obj}.dwp").is_file():
            dwp = Path(f"{obj}.dwp")
        return _open_elf(obj, dwp, dwo_roots)
    if dwp is not None:
        raise UsageError("--dwp goes with an ELF binary", obj)
    if kind == PE:
        return _open_pe(obj, resolver)
    if kind == PDB:
        return _open_pdb(obj, 0, "pdb")
    if kind == MACHO:
        return _open_macho(obj, resolver, arch)
    raise FormatError("not an ELF, Mach-O, PE or PDB file", obj)


def _open_macho(path: Path, resolver, arch: str | None) -> Target:
    """One slice of a Mach-O file, symbolized from the DWARF of the same UUID: the file's own
    (a dSYM's DWARF file, a binary with ``__DWARF``), else ``<file>.dSYM`` beside it, else the
    dSYM the stores and build directories hold for that UUID (as ``stack`` finds it)."""
    from symtool.formats.macho import dsym_dwarf_files, read_macho

    slices = read_macho(path).slices
    chosen = [s for s in slices if arch is None or s.arch == arch]
    archs = ", ".join(s.arch for s in slices)
    if not chosen:
        raise UsageError(f"no {arch} slice (it has {archs or 'none'})", path)
    if len(chosen) > 1:
        raise UsageError(f"a universal file: pick one of its slices with --arch ({archs})", path)
    sl = chosen[0]
    uuid = sl.index
    if uuid is None:
        raise UsageError("the Mach-O file has no LC_UUID: no dSYM can be matched to it", path)
    debug = path if sl.has_dwarf else None
    if debug is None:
        for dwarf in dsym_dwarf_files(Path(f"{path}.dSYM")):
            if any(s.index == uuid for s in read_macho(dwarf).slices):
                debug = dwarf
                break
    if debug is None and resolver is not None:
        debug = resolver.dsym_path(path.name, uuid)
    if debug is None:
        raise UsageError(f"no dSYM with UUID {uuid} beside it or in the stores or build directories "
                         "(--store, --build-dir)", path)
    sym = open_macho_symbolizer(debug, uuid)
    if sym.uuid != uuid:
        sym.close()
        raise UsageError(f"{debug}: no slice with UUID {uuid}", path)
    return Target("macho", os.fspath(path), os.fspath(debug), sl.text_vmaddr, sym, list(getattr(sym, "notes", [])))


def _open_elf(path: Path, dwp: Path | None, dwo_roots) -> Target:
    sym = open_dwarf_symbolizer(path, dwp, dwo_roots)
    return Target("elf", os.fspath(path), os.fspath(dwp or path), sym.load_bias, sym, sym.notes)


def _open_pdb(path: Path, image_base: int, kind: str, obj: Path | None = None, debug_id=None) -> Target:
    sym = open_pdb_symbolizer(path)
    if debug_id is not None and not sym.debug_id.matches(debug_id):
        sym.close()
        raise UsageError(f"{path}: PDB identity {sym.debug_id.index()} is not the image's {debug_id.index()}", obj)
    return Target(kind, os.fspath(obj or path), os.fspath(path), image_base, sym)


def _open_pe(path: Path, resolver) -> Target:
    from symtool.formats.pe import read_pe

    # Its headers and debug directory only: symbolizing needs no unwind data (reading a large
    # image's .pdata was most of a 1-address run, and grew with the program).
    image = read_pe(path)
    cv = image.primary_codeview
    if cv is None or not cv.pdb_name or cv.debug_id is None:
        raise UsageError("the image has no CodeView record: no PDB to symbolize with", path)
    pdb = resolver.pdb_path(cv.pdb_name, cv.debug_id) if resolver is not None else None
    if pdb is None:
        raise UsageError(f"{cv.pdb_name} ({cv.debug_id.index()}) not found in the stores or build directories "
                         "(--store, --build-dir)", path)
    return _open_pdb(pdb, image.image_base, "pe", path, cv.debug_id)


def _open_key(key: str, resolver, dwo_roots) -> Target:
    """A debug file named by store key: ``NAME/INDEX`` (or ``NAME/INDEX/NAME``, a store path)."""
    from symtool.formats.detect import ELF, PDB, detect

    parts = key.strip("/").split("/")
    if len(parts) not in (2, 3) or not all(parts) or (len(parts) == 3 and parts[2] != parts[0]):
        raise UsageError(f"--module {key!r}: a store key is NAME/INDEX (e.g. app.pdb/<GUID><AGE>)")
    name, index = parts[0], parts[1]
    if resolver is None:
        raise UsageError("--module needs a store (--store) or build directory")
    path = resolver.key_path(name, index)
    if path is None:
        raise UsageError(f"--module {key}: not found in the stores or build directories")
    kind = detect(path)
    if kind == PDB:
        return _open_pdb(path, 0, "pdb")
    if kind == ELF:
        return _open_elf(path, None, dwo_roots)
    raise FormatError("the store's file is neither a PDB nor an ELF file", path)


__all__ = ["open_dwarf_symbolizer", "open_macho_symbolizer", "open_pdb_symbolizer", "Target", "open_target"]
