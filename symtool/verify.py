"""Prove that binaries and their PDBs belong together, as a debugger decides it.

For each EXE/DLL/SYS, the PDB is located the way a debugger looks for it
without a symbol path: the path recorded in the CodeView record (when it is
an absolute path on this system), then beside the binary by the CodeView
file name.  rustc records only the file name (it links with
``/PDBALTPATH:%_PDB%``), and cargo names ``crash-me.exe``'s PDB
``crash_me.pdb``; the CodeView name is what counts, never the binary's stem.

The match rule is Microsoft's: same GUID (NB10: signature) and the PDB's DBI
age equal to the image's age.  The info-stream age is reported, never matched
(pdbstr bumps it when it adds a srcsrv stream).  A portable PDB matches by
GUID alone.

Statuses: ``match``, ``mismatch`` (``mismatch`` says ``guid`` or ``age``),
``pdb-missing``, ``no-codeview``, ``unreadable`` (the binary or the PDB found
for it is malformed: that is bad input, exit 2 in the CLI).

ELF binaries are paired with their ``.dwp`` (``<binary>.dwp`` beside it, where
gdb looks): the DWO IDs of the binary's skeleton units and the units of the
package must be the same set (``mismatch`` lists ``missing_ids`` and
``extra_ids``).  ``dwp-not-needed``: no skeleton units (line-tables-only
builds keep everything in the binary); ``dwp-missing``; ``no-build-id``: the
pairing holds but the binary cannot be keyed in a store or by debuginfod.

Mach-O binaries are paired with ``<binary>.dSYM`` (cargo's is a symlink into
``deps/``); the DWARF files inside are found by content, whatever their name
(cargo: ``<crate>-<hash>``), and the UUID of each architecture must be the
binary's.  ``dsym-missing``; ``no-uuid`` (linked with ``-no_uuid``).

Binaries are found by extension (.exe/.dll/.sys) and, for ELF and Mach-O
files (which have none), by content among the executable files.
"""

from __future__ import annotations

import ntpath
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from symtool import platform
from symtool.cargo.outputs import drop_deps_twins, is_profile_dir
from symtool.errors import SymtoolError, UsageError
from symtool.ids import NB10, PDB70, DebugId, basename_any

if TYPE_CHECKING:
    from symtool.cargo.outputs import OutputSelection

MATCH = "match"
MISMATCH = "mismatch"
PDB_MISSING = "pdb-missing"
NO_CODEVIEW = "no-codeview"
UNREADABLE = "unreadable"
DWP_NOT_NEEDED = "dwp-not-needed"
DWP_MISSING = "dwp-missing"
NO_BUILD_ID = "no-build-id"
DSYM_MISSING = "dsym-missing"
NO_UUID = "no-uuid"
STATUSES = (MATCH, MISMATCH, PDB_MISSING, NO_CODEVIEW, UNREADABLE,
            DWP_NOT_NEEDED, DWP_MISSING, NO_BUILD_ID, DSYM_MISSING, NO_UUID)
# Statuses that mean "a debugger gets everything": the CLI exits 0 when all verdicts have one.
GOOD = (MATCH, DWP_NOT_NEEDED)

BINARY_SUFFIXES = (".exe", ".dll", ".sys")
# Never binaries we ship: cargo's bookkeeping and incremental caches.
_ALWAYS_SKIP = {".fingerprint", "incremental"}
# Build-script executables of a cargo profile dir (host binaries, not products).
_PROFILE_SKIP = {"build"}


@dataclass
class Verdict:
    """How one binary and its PDB relate.  ``to_json`` gives the stable keys."""

    binary: str
    status: str
    reason: str
    pdb: str | None = None  # the PDB file examined (found), else None
    pdb_name: str | None = None  # file name from the CodeView record
    pdb_path: str | None = None  # path recorded in the CodeView record
    image_id: str | None = None  # store index the binary asks for (GUID+age)
    pdb_id: str | None = None  # store index of the PDB found
    mismatch: str | None = None  # "guid" or "age" when status is mismatch
    image_guid: str | None = None
    image_age: int | None = None
    pdb_guid: str | None = None
    pdb_age: int | None = None  # DBI age
    pdb_info_age: int | None = None
    searched: list[str] = field(default_factory=list)
    # ELF and Mach-O (None for PE images):
    format: str = "pe"  # "pe", "elf" or "macho"
    debug_file: str | None = None  # the .dwp or .dSYM examined
    build_id: str | None = None  # ELF
    missing_ids: list[str] | None = None  # DWO IDs / arch:UUIDs the binary needs and the debug file lacks
    extra_ids: list[str] | None = None  # what the debug file has and the binary does not need
    uuids: dict[str, str | None] | None = None  # Mach-O: arch -> UUID of the binary
    debug_uuids: dict[str, str | None] | None = None  # Mach-O: arch -> UUID in the dSYM
    # What a debugger gets from the binary and its debug file together (symtool.usable);
    # None when the binary is unreadable.
    usable: str | None = None
    features: dict[str, bool] | None = None

    @property
    def ok(self) -> bool:
        return self.status in GOOD

    def to_json(self) -> dict:
        return asdict(self)


# -- finding binaries -------------------------------------------------------

def _is_binary_name(name: str) -> bool:
    return name.lower().endswith(BINARY_SUFFIXES)


# Never ELF/Mach-O binaries: cargo's other outputs (sniffing them would only cost time).
_NOT_BINARY_SUFFIXES = (".d", ".rlib", ".rmeta", ".dwp", ".dwo", ".pdb", ".o", ".a", ".json", ".txt", ".lock")


def _is_native_binary(path: Path) -> bool:
    """An ELF or Mach-O executable or shared library, by content (they have no extension)."""
    from symtool.formats.detect import ELF, MACHO, sniff

    name = path.name.lower()
    if name.endswith(_NOT_BINARY_SUFFIXES):
        return False
    try:
        st = path.stat()
        if not (platform.may_be_program(st) or ".so" in name or name.endswith(".dylib")):
            return False
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    kind = sniff(head)
    if kind == ELF:
        # e_type (little- or big-endian at offset 16): 2 executable, 3 shared object.
        if len(head) < 18:
            return False
        e_type = int.from_bytes(head[16:18], "little" if head[5] == 1 else "big")
        return e_type in (2, 3)
    if kind == MACHO:
        return True  # MH_DSYM files live inside .dSYM dirs, which the walk skips
    return False


def _walk_binaries(root: Path) -> Iterator[Path]:
    """Binaries under ``root``, shallowest first (so top-level files win over
    their deps/ hard links), without following directory symlinks."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        skip = set(_ALWAYS_SKIP)
        if is_profile_dir(here):
            skip |= _PROFILE_SKIP
        dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.endswith(".dSYM"))
        for name in sorted(filenames):
            if _is_binary_name(name) or _is_native_binary(here / name):
                yield here / name


def find_binaries(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named directly plus the binaries found under directories (.exe/.dll/.sys, ELF, Mach-O).

    A file reachable twice (cargo hard-links ``deps/x.exe`` to ``x.exe``, or a
    PATH given twice) counts once: files are deduplicated by (st_dev, st_ino)
    and the first path seen, the shallowest, is kept.  A PATH that does not
    exist is a UsageError.
    """
    seen: set[tuple[int, int]] = set()
    out: list[Path] = []

    def add(p: Path) -> None:
        try:
            st = p.stat()
        except OSError:
            return  # vanished or dangling link: nothing to verify
        key = (st.st_dev, st.st_ino)
        if st.st_ino and key in seen:
            return
        seen.add(key)
        out.append(p)

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for b in _walk_binaries(p):
                if b.is_file():
                    add(b)
        elif p.is_file():
            add(p)
        elif p.exists():
            raise UsageError("not a file or directory", p)
        else:
            raise UsageError("no such file or directory", p)
    return out


# -- locating and matching PDBs ---------------------------------------------

def _beside(directory: Path, name: str) -> Path | None:
    """``directory/name``, or a file whose name differs only in case (Windows
    file systems are case-insensitive; the PDB may come from one)."""
    exact = directory / name
    if exact.is_file():
        return exact
    try:
        for entry in os.scandir(directory):
            if entry.name.lower() == name.lower() and entry.is_file():
                return Path(entry.path)
    except OSError:
        pass
    return None


def locate_pdb(binary: str | os.PathLike[str], pdb_path: str) -> tuple[Path | None, list[str]]:
    """Where a debugger finds the PDB recorded as ``pdb_path`` for ``binary``.

    Returns (found path or None, the paths looked at, in order).
    """
    bin_dir = Path(binary).parent
    searched: list[str] = []
    name = basename_any(pdb_path)
    candidates: list[Path] = []
    if pdb_path and name != pdb_path:  # the record has directories, not just a name
        posix_abs = pdb_path.startswith("/")
        if (os.name == "nt" and ntpath.isabs(pdb_path)) or (os.name != "nt" and posix_abs):
            candidates.append(Path(pdb_path))
        elif not ntpath.isabs(pdb_path) and not posix_abs:
            # Relative to the binary's directory; Windows absolute paths
            # (C:\..., \\server\...) cannot exist on this system and are skipped.
            candidates.append(bin_dir / pdb_path.replace("\\", "/"))
    for cand in candidates:
        searched.append(str(cand))
        if cand.is_file():
            return cand, searched
    if name:
        searched.append(str(bin_dir / name))
        found = _beside(bin_dir, name)
        if found is not None:
            return found, searched
    return None, searched


def compare(want: DebugId, have_id: DebugId, have_kind: str) -> tuple[str, str | None, str]:
    """(status, mismatch kind, reason) for the image's DebugId against a PDB's."""
    if have_kind == "portable-pdb":
        if want.guid is not None and want.guid == have_id.guid:
            return MATCH, None, "same GUID (portable PDB)"
        return MISMATCH, "guid", f"GUID differs: image wants {want.guid_str}, portable PDB is {have_id.guid_str}"
    if want.kind != have_id.kind:
        what = {PDB70: "a GUID (RSDS)", NB10: "an NB10 signature"}
        return (MISMATCH, "guid",
                f"image asks for {what.get(want.kind, want.kind)}, the PDB has {what.get(have_id.kind, have_id.kind)}")
    if want.kind == NB10:
        if want.signature != have_id.signature:
            return (MISMATCH, "guid",
                    f"signature differs: image wants {want.signature:08X}, PDB is {have_id.signature:08X}")
    elif want.guid != have_id.guid:
        return MISMATCH, "guid", f"GUID differs: image wants {want.guid_str}, PDB is {have_id.guid_str}"
    if have_id.age is None:
        return MISMATCH, "age", f"age: image wants {want.age}, the PDB has no DBI stream (no age)"
    if have_id.age != want.age:
        return MISMATCH, "age", f"age differs: image wants {want.age}, PDB's DBI age is {have_id.age}"
    return MATCH, None, "same GUID and age"


def given_pdb(cv_name: str, given: Sequence[Path], pair_any: bool) -> Path | None:
    """The PDB named on the command line for a binary whose CodeView record names ``cv_name``:
    the one with that file name (any case), else with ``pair_any`` the only one given.

    The one pairing rule for files named together (``verify`` and ``publish``)."""
    for pdb in given:
        if pdb.name.lower() == basename_any(cv_name).lower():
            return pdb
    return given[0] if pair_any and given else None


def verify_binary(binary: str | os.PathLike[str], given: Sequence[Path] = (), pair_any: bool = False) -> Verdict:
    """Verdict for one binary (never raises for malformed files: ``unreadable``).

    ``given`` are PDBs named on the command line: the one with the CodeView
    file name is compared instead of the one a debugger would find; with
    ``pair_any`` the only one given is compared whatever its name.
    """
    from symtool.formats.detect import ELF, MACHO, detect
    from symtool.formats.pdb import read_pdb
    from symtool.formats.pe import read_pe

    path = os.fspath(binary)
    try:
        kind = detect(path)
    except OSError as err:
        return Verdict(binary=path, status=UNREADABLE, reason=_problem(err))
    if kind == ELF:
        return verify_elf(path, [g for g in given if _debug_kind(g) == "dwp"], pair_any)
    if kind == MACHO:
        return verify_macho(path, [g for g in given if _debug_kind(g) == "dsym"], pair_any)
    given = [g for g in given if _is_pdb_name(g)]
    try:
        pe = read_pe(path)
    except (SymtoolError, OSError) as err:
        return Verdict(binary=path, status=UNREADABLE, reason=_problem(err))
    cv = pe.primary_codeview
    if cv is None:
        return Verdict(binary=path, status=NO_CODEVIEW,
                       reason="no CodeView debug-directory entry (linked without /DEBUG?)")
    want = cv.debug_id
    v = Verdict(binary=path, status=PDB_MISSING, reason="", pdb_name=cv.pdb_name, pdb_path=cv.pdb_path,
                image_id=want.index(), image_guid=want.guid_str, image_age=want.age)
    found = given_pdb(cv.pdb_name, given, pair_any)
    if found is not None:
        v.searched = [str(found)]
    else:
        found, v.searched = locate_pdb(path, cv.pdb_path)
    if found is None:
        v.reason = f"{cv.pdb_name or '(no name)'} not found (looked at: {', '.join(v.searched) or 'nothing'})"
        return v
    v.pdb = str(found)
    try:
        info = read_pdb(found)
    except (SymtoolError, OSError) as err:
        v.status, v.reason = UNREADABLE, f"PDB {found}: {_problem(err)}"
        return v
    v.pdb_id, v.pdb_guid, v.pdb_age, v.pdb_info_age = info.index, info.guid, info.age, info.info_age
    if info.debug_id.kind == NB10:
        v.pdb_guid = None
    v.status, v.mismatch, v.reason = compare(want, info.debug_id, info.kind)
    if v.status == MISMATCH:
        v.reason = f"{found}: {v.reason}"  # which PDB was compared: the one beside it, or the one given
    return v


# -- ELF + .dwp, Mach-O + .dSYM ----------------------------------------------

def _debug_kind(path: Path) -> str | None:
    """"pdb", "dwp" (an ELF .dwp/.dwo), "dsym" (a .dSYM bundle or an MH_DSYM file) or None, by content."""
    from symtool.formats.detect import ELF, MACHO, detect
    from symtool.formats.macho import is_dsym_bundle

    if is_dsym_bundle(path):
        return "dsym"
    if _is_pdb_name(path):
        return "pdb"
    try:
        kind = detect(path)
        if kind == ELF:
            from symtool.formats.elf import read_elf

            return "dwp" if read_elf(path, dwo_ids=False).split else None
        if kind == MACHO:
            from symtool.formats.macho import read_macho

            return "dsym" if read_macho(path).is_dsym else None
    except (SymtoolError, OSError):
        return None
    return None


def _given_for(binary: Path, given: Sequence[Path], suffix: str, pair_any: bool) -> Path | None:
    """The debug file named on the command line for ``binary``: ``<binary name><suffix>``, or the only one."""
    for g in given:
        if g.name == binary.name + suffix:
            return g
    return given[0] if pair_any and given else None


def _hex_ids(ids) -> list[str]:
    return [f"{x:016x}" for x in ids]


def verify_elf(binary: str | os.PathLike[str], given: Sequence[Path] = (), pair_any: bool = False) -> Verdict:
    """Verdict for an ELF binary and its .dwp (same set of DWO IDs)."""
    from symtool.formats.elf import read_elf

    path = os.fspath(binary)
    v = Verdict(binary=path, status=UNREADABLE, reason="", format="elf")
    try:
        info = read_elf(path)
    except (SymtoolError, OSError) as err:
        v.reason = _problem(err)
        return v
    v.build_id = info.index
    if info.dwo_error:
        v.reason = f"cannot read the skeleton units: {info.dwo_error}"
        return v
    want = set(info.dwo_ids or ())
    no_build_id = "" if info.index else "; and the binary has no build-id (link with -Wl,--build-id)"
    if not want:
        v.status = DWP_NOT_NEEDED if info.index else NO_BUILD_ID
        why = "no skeleton units: the DWARF is in the binary" if info.has_dwarf else \
            "no DWARF in the binary (stripped?), so no skeleton units"
        v.reason = f"{why}{no_build_id}"
        return v
    found = _given_for(Path(path), given, ".dwp", pair_any)
    if found is not None:
        v.searched = [str(found)]
    else:
        cand = Path(path).with_name(Path(path).name + ".dwp")
        v.searched = [str(cand)]
        found = cand if cand.is_file() else None
    if found is None:
        v.status = DWP_MISSING
        v.missing_ids = _hex_ids(sorted(want))
        v.reason = (f"{len(want)} skeleton unit(s) need a .dwp; not found "
                    f"(looked at: {', '.join(v.searched)}){no_build_id}")
        return v
    v.debug_file = str(found)
    try:
        dwp = read_elf(found)
    except (SymtoolError, OSError) as err:
        v.reason = f".dwp {found}: {_problem(err)}"
        return v
    if not dwp.split:
        v.reason = f"{found} is not a .dwp (no .debug_cu_index or .debug_info.dwo)"
        return v
    if dwp.dwo_error:
        v.reason = f".dwp {found}: {dwp.dwo_error}"
        return v
    have = set(dwp.dwo_ids or ())
    v.missing_ids = _hex_ids(sorted(want - have))
    v.extra_ids = _hex_ids(sorted(have - want))
    if want != have:
        v.status, v.mismatch = MISMATCH, "dwo-id"
        parts = []
        if v.missing_ids:
            parts.append(f"missing {len(v.missing_ids)} of the binary's {len(want)} DWO ID(s): "
                         f"{' '.join(v.missing_ids)}")
        if v.extra_ids:
            parts.append(f"{len(v.extra_ids)} unit(s) the binary does not have: {' '.join(v.extra_ids)}")
        v.reason = f"{found}: {'; '.join(parts)} (a .dwp from another build?)"
        return v
    if not info.index:
        v.status = NO_BUILD_ID
        v.reason = f"{found} matches ({len(want)} DWO IDs), but the binary has no build-id (link with -Wl,--build-id)"
        return v
    v.status, v.reason = MATCH, f"same {len(want)} DWO ID(s)"
    return v


def _dsym_slices(found: Path) -> tuple[dict[str, str | None], list[str]]:
    """arch -> UUID key of every MH_DSYM slice in a .dSYM bundle (or one DWARF file), and the files read."""
    from symtool.formats.macho import dsym_dwarf_files, is_dsym_bundle, read_macho

    files = dsym_dwarf_files(found) if is_dsym_bundle(found) else [found]
    out: dict[str, str | None] = {}
    for f in files:
        info = read_macho(f)
        for sl in info.slices:
            if sl.is_dsym:
                out.setdefault(sl.arch, sl.index)
    return out, [str(f) for f in files]


def verify_macho(binary: str | os.PathLike[str], given: Sequence[Path] = (), pair_any: bool = False) -> Verdict:
    """Verdict for a Mach-O binary and its .dSYM (the same UUID for every architecture)."""
    from symtool.formats.macho import read_macho

    path = os.fspath(binary)
    v = Verdict(binary=path, status=UNREADABLE, reason="", format="macho")
    try:
        info = read_macho(path)
    except (SymtoolError, OSError) as err:
        v.reason = _problem(err)
        return v
    v.uuids = info.uuids()
    if any(u is None for u in v.uuids.values()):
        v.status = NO_UUID
        v.reason = "no LC_UUID (linked with -no_uuid?): no debugger can pair it with a dSYM"
        return v
    found = _given_for(Path(path), given, ".dSYM", pair_any)
    if found is not None:
        v.searched = [str(found)]
    else:
        cand = Path(path).with_name(Path(path).name + ".dSYM")
        v.searched = [str(cand)]
        found = cand if cand.is_dir() else None
    if found is None:
        v.status = DSYM_MISSING
        v.missing_ids = [f"{a}:{u}" for a, u in v.uuids.items()]
        v.reason = f"no .dSYM (looked at: {', '.join(v.searched)})"
        return v
    v.debug_file = str(found)
    try:
        v.debug_uuids, files = _dsym_slices(found)
    except (SymtoolError, OSError) as err:
        v.reason = f"dSYM {found}: {_problem(err)}"
        return v
    if not files:
        v.status = DSYM_MISSING
        v.reason = f"{found} has no DWARF file in Contents/Resources/DWARF"
        return v
    v.missing_ids = [f"{a}:{u}" for a, u in v.uuids.items() if v.debug_uuids.get(a) != u]
    v.extra_ids = [f"{a}:{u}" for a, u in v.debug_uuids.items() if v.uuids.get(a) != u]
    if v.missing_ids:
        v.status, v.mismatch = MISMATCH, "uuid"
        detail = ", ".join(f"{a}: binary {u}, dSYM {v.debug_uuids.get(a) or 'none'}" for a, u in v.uuids.items()
                           if v.debug_uuids.get(a) != u)
        v.reason = f"{found}: UUID differs ({detail}) (a dSYM from another build?)"
        return v
    v.status, v.reason = MATCH, f"same UUID for {', '.join(f'{a} {u}' for a, u in v.uuids.items())}"
    return v


def add_usable(v: Verdict) -> Verdict:
    """Fill ``usable``/``features``: the binary's features with its debug file's (PDB, .dwp, dSYM).

    A debug file that does not match still counts: the verdict says what is
    in the files, the status whether a debugger will load them.
    """
    from symtool.formats.macho import dsym_dwarf_files, is_dsym_bundle
    from symtool.usable import UNKNOWN, Features, file_features, verdict

    if v.status == UNREADABLE:
        return v
    files = [v.binary]
    extra = v.pdb or v.debug_file
    if extra:
        files += [str(p) for p in dsym_dwarf_files(extra)] if is_dsym_bundle(extra) else [extra]
    total = Features()
    try:
        for f in files:
            got = file_features(f)
            if got is None:
                v.usable = UNKNOWN
                return v
            total = total | got
    except (SymtoolError, OSError):
        v.usable = UNKNOWN
        return v
    v.usable, v.features = verdict(total), total.to_json()
    return v


def _problem(err: BaseException) -> str:
    if isinstance(err, SymtoolError):
        return err.message
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return str(err)


def _is_pdb_name(path: Path) -> bool:
    return path.name.lower().endswith(".pdb")


def _twin_identity(v: Verdict) -> tuple | None:
    if v.format == "elf":
        return ("elf", v.build_id) if v.build_id else None
    if v.format == "macho":
        return ("macho", tuple(sorted((v.uuids or {}).items()))) if v.uuids else None
    return (v.image_id, v.image_guid) if v.image_id else None


def verify_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Verdict]:
    """Verdicts for every binary named or found under ``paths``.

    PDB files named in ``paths`` are paired with the binaries named there
    (``verify app.exe app.pdb``): by CodeView file name, or the only PDB with
    the only binary.  A binary whose ``deps/`` copy lost its hard link counts
    once.  UsageError when there is no binary at all (nothing to verify) or a
    PDB given belongs to no binary given.
    """
    paths = [Path(p) for p in paths]
    debug = {p: _debug_kind(p) for p in paths if p.is_file() or p.is_dir()}
    pdbs = [p for p in paths if debug.get(p) == "pdb" and p.is_file()]
    others_given = [p for p in paths if debug.get(p) in ("dwp", "dsym")]
    others = [p for p in paths if p not in pdbs and p not in others_given]
    binaries = find_binaries(others)
    if not binaries and not others and (pdbs or others_given):
        # Only debug files were named: there is no folder to search, and nothing to compare them with.
        first = (pdbs + others_given)[0]
        what = {"pdb": "a PDB", "dwp": "a .dwp", "dsym": "a .dSYM"}[debug[first]]
        raise UsageError(f"{what}, and no binary to compare it with: name the binary too "
                         f"(symtool verify BINARY {first.name}); symtool id {first.name} shows its identity", first)
    if not binaries:
        where = ", ".join(os.fspath(p) for p in others) or "(nothing)"
        raise UsageError(f"no .exe/.dll/.sys, ELF or Mach-O binary found in {where}")
    pair_any = len(pdbs) + len(others_given) == 1 and len(binaries) == 1
    verdicts = [add_usable(verify_binary(b, pdbs + others_given, pair_any)) for b in binaries]
    verdicts = drop_deps_twins(verdicts, lambda v: Path(v.binary), _twin_identity)
    used = {v.pdb for v in verdicts} | {v.debug_file for v in verdicts}
    if any(v.status == UNREADABLE for v in verdicts):
        return verdicts  # the unreadable input is the error to report
    for pdb in pdbs:
        if str(pdb) not in used:
            raise UsageError("no binary given records this PDB's name in its CodeView record", pdb)
    for other in others_given:
        if str(other) not in used:
            raise UsageError(f"no binary given pairs with this {'.dSYM' if debug[other] == 'dsym' else '.dwp'} "
                             "(named <binary>.dwp / <binary>.dSYM, or the only one with the only binary)", other)
    return verdicts


def verify_workspace(selection: "OutputSelection") -> list[Verdict]:
    """Verdicts for every binary of the selected profile, triples and packages.

    UsageError naming the dirs searched when there is no such build output.
    """
    dirs = selection.dirs()
    binaries = [b for b in find_binaries(dirs) if selection.wants(b)] if dirs else []
    if not binaries:
        raise selection.no_output()
    verdicts = [add_usable(verify_binary(b)) for b in binaries]
    return drop_deps_twins(verdicts, lambda v: Path(v.binary), _twin_identity)


__all__ = [
    "Verdict", "STATUSES", "GOOD", "MATCH", "MISMATCH", "PDB_MISSING", "NO_CODEVIEW", "UNREADABLE",
    "DWP_NOT_NEEDED", "DWP_MISSING", "NO_BUILD_ID", "DSYM_MISSING", "NO_UUID",
    "find_binaries", "given_pdb", "locate_pdb", "compare", "add_usable",
    "verify_binary", "verify_elf", "verify_macho", "verify_paths", "verify_workspace",
]
