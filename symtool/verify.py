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
"""

from __future__ import annotations

import ntpath
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

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
STATUSES = (MATCH, MISMATCH, PDB_MISSING, NO_CODEVIEW, UNREADABLE)

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

    @property
    def ok(self) -> bool:
        return self.status == MATCH

    def to_json(self) -> dict:
        return asdict(self)


# -- finding binaries -------------------------------------------------------

def _is_binary_name(name: str) -> bool:
    return name.lower().endswith(BINARY_SUFFIXES)


def _walk_binaries(root: Path) -> Iterator[Path]:
    """Binaries under ``root``, shallowest first (so top-level files win over
    their deps/ hard links), without following directory symlinks."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        skip = set(_ALWAYS_SKIP)
        if is_profile_dir(here):
            skip |= _PROFILE_SKIP
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        for name in sorted(filenames):
            if _is_binary_name(name):
                yield here / name


def find_binaries(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named directly plus the .exe/.dll/.sys found under directories.

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


def _given_pdb(cv_name: str, given: Sequence[Path], pair_any: bool) -> Path | None:
    """The PDB named on the command line for a binary whose CodeView record names ``cv_name``."""
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
    from symtool.formats.pdb import read_pdb
    from symtool.formats.pe import read_pe

    path = os.fspath(binary)
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
    found = _given_pdb(cv.pdb_name, given, pair_any)
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


def _problem(err: BaseException) -> str:
    if isinstance(err, SymtoolError):
        return err.message
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return str(err)


def _is_pdb_name(path: Path) -> bool:
    return path.name.lower().endswith(".pdb")


def _twin_identity(v: Verdict) -> tuple[str, str | None] | None:
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
    pdbs = [p for p in paths if _is_pdb_name(p) and p.is_file()]
    others = [p for p in paths if p not in pdbs]
    binaries = find_binaries(others)
    if not binaries:
        where = ", ".join(os.fspath(p) for p in paths) or "(nothing)"
        raise UsageError(f"no .exe/.dll/.sys found in {where}")
    pair_any = len(pdbs) == 1 and len(binaries) == 1
    verdicts = [verify_binary(b, pdbs, pair_any) for b in binaries]
    verdicts = drop_deps_twins(verdicts, lambda v: Path(v.binary), _twin_identity)
    used = {v.pdb for v in verdicts}
    if any(v.status == UNREADABLE for v in verdicts):
        return verdicts  # the unreadable input is the error to report
    for pdb in pdbs:
        if str(pdb) not in used:
            raise UsageError("no binary given records this PDB's name in its CodeView record", pdb)
    return verdicts


def verify_workspace(selection: "OutputSelection") -> list[Verdict]:
    """Verdicts for every binary of the selected profile, triples and packages.

    UsageError naming the dirs searched when there is no such build output.
    """
    dirs = selection.dirs()
    binaries = [b for b in find_binaries(dirs) if selection.wants(b)] if dirs else []
    if not binaries:
        raise selection.no_output()
    verdicts = [verify_binary(b) for b in binaries]
    return drop_deps_twins(verdicts, lambda v: Path(v.binary), _twin_identity)


__all__ = [
    "Verdict", "STATUSES", "MATCH", "MISMATCH", "PDB_MISSING", "NO_CODEVIEW", "UNREADABLE",
    "find_binaries", "locate_pdb", "compare",
    "verify_binary", "verify_paths", "verify_workspace",
]
