"""Publishing PDBs and binaries into a local (or share) symbol store.

Two phases, so several publishers (CI agents) can share one store:

1. **Outside the lock**: every file is copied (or CAB-compressed, or a
   file.ptr written) to a temp name in its final directory, fsynced and
   renamed.  A file therefore appears under its final name only complete.
   A file already stored with the same key and the same bytes is not copied.
2. **Inside the lock** (``000Admin/symtool.lock``, short): re-check that
   every file is still there (a concurrent ``store delete`` may have removed
   it; then it is copied again under the lock), take the next id, write the
   transaction file (temp + rename), add the refs.ptr lines (temp + rename),
   append the server.txt line -- the commit point -- then the history.txt
   line, then lastid.txt.

A SIGKILL at any moment leaves either temp files (removed by ``store verify
--repair``), complete files no transaction references (removed: the publish
never committed), an uncommitted transaction file with its refs.ptr lines
(rolled back), or a committed transaction missing its history line or
lastid.txt update (completed).  See :mod:`symtool.store.repair`.

"Same bytes" is decided cheaply (republishing a multi-GB build must not read
it all again): same store key (identity), same size, and the same first and
last MiB.  A file with the same key but other bytes (e.g. a PDB before and
after source indexing) is refused unless ``force`` is given: phase 1 renames
outside the lock, so replacing committed bytes there would let a publish
that never commits (SIGKILL) change what a committed transaction serves,
and repair could not tell.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from symtool import platform
from symtool.cargo.outputs import drop_deps_twins, is_profile_dir
from symtool.errors import FormatError, StoreError, UnsafeNameError
from symtool.fsutil import (COPY_CHUNK, TMP_PREFIX, atomic_fd, atomic_writer, copy_fd_data, current_umask, fsync_dir,
                            kind_of, open_regular, write_all)
from symtool.ids import check_file_name
from symtool.store import admin as adm
from symtool.store.items import SAME_CHECK, PublishItem
from symtool.store.layout import (COMPRESSED, PLAIN, POINTER, entry_dir, find_ci, form_file_name, is_two_tier,
                                  is_object_store, is_url, looks_like_store, new_entry_dir, redact_url, top_level_names)
from symtool.store.lock import StoreLock, owner_tag

Progress = Callable[[int], None]
PDB_KINDS = ("pri", "pub", "typ")  # refs.ptr kinds of PDBs (PublishItem.kind)
# Threads placing files (copy, fsync, rename) and writing refs.ptr: each waits for the disk most of
# the time, and the kernel joins the writes of several.  bench/bench_publish_small.py: 6 (what PyPI
# symstore's pool has on 2 cores) was faster than 4 and no slower than 8.
PLACERS = 6


@dataclass
class PublishOptions:
    """What the command line asked of a publish."""

    product: str = ""
    version: str = ""
    comment: str = ""
    compress: bool = False
    pointer: bool = False
    dry_run: bool = False
    source_index: bool = False  # write srcsrv/sourcelink into the PDBs first (symtool.srcindex)
    sources: bool = False  # and copy the source archive into the store
    force: bool = False  # replace a stored file of the same key whose bytes differ
    key_case: str = "exact"  # object storage: "lower" for case-sensitive front ends
    skip_published: bool = False  # no new transaction when the newest one of this product/version/comment
    # already holds exactly these files with the same bytes (a re-run CI job)
    sources_roots: list[Path] = field(default_factory=list)  # --sources-root: more dirs --sources may copy from


@dataclass
class FileResult:
    """What became of one file: its key, status and form in the store."""

    path: str
    status: str  # added | present | refused | unreadable | would-add | uploaded | error
    name: str = ""
    index: str = ""
    kind: str = ""
    stored_as: str = ""  # plain | compressed | pointer
    reason: str = ""
    size: int = 0

    @property
    def key(self) -> str:
        return f"{self.name}/{self.index}/{self.name}" if self.name and self.index else ""

    def to_json(self) -> dict:
        return {"path": self.path, "key": self.key, "name": self.name, "index": self.index, "kind": self.kind,
                "status": self.status, "stored_as": self.stored_as, "size": self.size, "reason": self.reason}


@dataclass
class PublishReport:
    """A publish's outcome: its transaction, every file's result, notes and warnings."""

    store: str
    transaction: str | None = None
    dry_run: bool = False
    files: list[FileResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored: int = 0
    already_published: bool = False  # --skip-published found ``transaction`` holding exactly these files
    store_refusals: int = 0  # writes into the store refused after the commit (a symlinked debuginfod/ level)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def exit_code(self) -> int:
        """README "Exit codes and errors": 2 for unreadable input or a server that failed
        (unreachable, 5xx, credentials refused), else 1 for refused files, else 0."""
        from symtool.errors import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK

        if self.count("unreadable") or self.count("error"):
            return EXIT_BAD_INPUT
        return EXIT_FINDINGS if self.count("refused") or self.store_refusals else EXIT_OK

    def to_json(self) -> dict:
        return {
            "store": self.store,
            "transaction": self.transaction,
            "already_published": self.already_published,
            "dry_run": self.dry_run,
            "summary": {s.replace("-", "_"): self.count(s)
                        for s in ("added", "present", "refused", "unreadable", "would-add", "uploaded", "error")},
            "files": [f.to_json() for f in self.files],
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


# -- collecting ----------------------------------------------------------------


# What a file found in a directory must be, by its first bytes (formats.detect.sniff), to be published.
PUBLISHABLE_KINDS = ("pe", "pdb", "pdb2", "portable-pdb", "elf", "macho")


def is_cargo_target_dir(d: Path) -> bool:
    return (d / "CACHEDIR.TAG").is_file() or (d / ".rustc_info.json").is_file()


def _profile_dirs(target: Path) -> list[Path]:
    out = []
    for child in sorted(target.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            if is_profile_dir(child):
                out.append(child)
            else:
                out.extend(g for g in sorted(child.iterdir()) if g.is_dir() and is_profile_dir(g))
    return out


def _files_of_profile(profile: Path) -> list[Path]:
    """Top-level files first, then examples/ and deps/ (their hard links of
    top-level files are dropped later by inode).  Never .fingerprint, build,
    incremental."""
    from symtool.formats.macho import dsym_dwarf_files

    out: list[Path] = []
    for sub in (profile, profile / "examples", profile / "deps"):
        if sub.is_dir():
            for p in sorted(sub.iterdir()):
                if p.is_file():
                    out.append(p)
                elif p.name.endswith(".dSYM") and p.is_dir():
                    out.extend(dsym_dwarf_files(p))  # cargo's X.dSYM links to deps/: deduplicated by inode
    return out


def _files_of_dir(d: Path) -> list[Path]:
    if is_cargo_target_dir(d):
        return [f for prof in _profile_dirs(d) for f in _files_of_profile(prof)]
    if is_profile_dir(d):
        return _files_of_profile(d)
    out = []
    for root, dirs, files in os.walk(d):
        dirs.sort()
        root_p = Path(root)
        if is_cargo_target_dir(root_p) or is_profile_dir(root_p):
            out.extend(_files_of_dir(root_p))
            dirs[:] = []
            continue
        out.extend(root_p / f for f in sorted(files))
    return out


@dataclass
class Collected:
    """The files a publish found, their identities and what was refused or ignored on the way."""

    items: list[PublishItem] = field(default_factory=list)
    infos: dict[Path, object] = field(default_factory=dict)
    refused: list[FileResult] = field(default_factory=list)
    ignored: int = 0
    explicit: set[Path] = field(default_factory=set)  # files named on the command line (not found in a dir)
    bundles: dict[Path, list[Path]] = field(default_factory=dict)  # .dSYM bundles named -> their DWARF files
    # PDB path -> its symbol features (usable.msf_features; None: unreadable), read with its identity
    features: dict[Path, object] = field(default_factory=dict)


def collect(paths: list[Path], wants: Callable[[Path], bool] | None = None) -> Collected:
    """Files to publish: named files must be PE images or PDBs; directories
    contribute the PE images and PDBs found in them (by content) that ``wants``
    (default: all).  A top-level artifact's ``deps/`` twin (same identity: a
    copied target dir lost cargo's hard link) is left out."""
    from symtool.formats.macho import dsym_dwarf_files, is_dsym_bundle
    from symtool.errors import NotRegularFileError
    from symtool.formats.detect import sniff
    from symtool.store.identify import NOT_JUDGED, identify_all, identify_opened
    from symtool.store.native import Unkeyable, dwp_item

    out = Collected()
    dwps: list[tuple[Path, object]] = []
    natives: list[tuple[Path, object]] = []
    seen_inodes: set[tuple[int, int]] = set()
    seen_keys: set[tuple[str, str]] = set()
    candidates: list[tuple[Path, bool]] = []
    for p in paths:
        if is_dsym_bundle(p):
            out.bundles[p] = dsym_dwarf_files(p)
            candidates.extend((f, True) for f in out.bundles[p])
        elif p.is_dir():
            candidates.extend((f, False) for f in _files_of_dir(p) if wants is None or wants(f))
        elif p.exists():
            candidates.append((p, True))
        else:
            out.refused.append(FileResult(str(p), "unreadable", name=p.name, reason="no such file or directory"))
    for f, explicit in candidates:
        try:
            st = f.stat()
        except OSError as err:
            out.refused.append(FileResult(str(f), "unreadable", name=f.name, reason=err.strerror or str(err)))
            continue
        if not stat.S_ISREG(st.st_mode):
            # Never opened: reading a FIFO blocks until someone writes, a device never ends.
            if explicit:
                out.refused.append(FileResult(str(f), "unreadable", name=f.name,
                                              reason=f"{kind_of(st.st_mode)}, not a regular file"))
            else:
                out.ignored += 1
            continue
        ino = (st.st_dev, st.st_ino)
        if ino in seen_inodes and st.st_ino:
            continue  # a hard link (cargo's deps/ copy) of a file we already have
        # One opening per file: its content is sniffed, and a PDB identified and judged, through it.
        fh = None
        try:
            fh = open_regular(f)
            head = fh.read(64)
        except (OSError, NotRegularFileError):
            if fh is not None:
                fh.close()
                fh = None
            if not explicit:
                out.ignored += 1  # unreadable: not a PE image or PDB as far as a directory's files go
                continue
            head = b""  # identify_all reports why
        try:
            if not explicit and sniff(head) not in PUBLISHABLE_KINDS:
                out.ignored += 1
                continue
            check_file_name(f.name)
            if fh is None:
                items, info = identify_all(f)
            else:
                items, info, features = identify_opened(f, fh, head)
                if features is not NOT_JUDGED:
                    out.features[f] = features
        except (UnsafeNameError, Unkeyable) as err:
            out.refused.append(FileResult(str(f), "refused", name=f.name, reason=err.message))
            continue
        except FormatError as err:
            # Unreadable input (exit 2), unlike a refused mismatch (a finding, exit 1).
            out.refused.append(FileResult(str(f), "unreadable", name=f.name, reason=err.message))
            continue
        except OSError as err:
            out.refused.append(FileResult(str(f), "unreadable", name=f.name, reason=err.strerror or str(err)))
            continue
        finally:
            if fh is not None:
                fh.close()
        seen_inodes.add(ino)
        if info.kind in ("dwp", "dwo"):
            if info.kind == "dwp" and (explicit or info.dwo_ids):
                dwps.append((f, info))
            else:
                out.ignored += 1  # a .dwo, or cargo's empty .dwp of a line-tables-only build
            continue
        if info.kind == "elf":
            natives.append((f, info))
        if explicit:
            out.explicit.add(f)
        for item in items:
            key = (item.name.lower(), item.index.upper())
            if key in seen_keys:
                continue
            seen_keys.add(key)
            out.items.append(item)
            out.infos[item.path] = info
    for f, info in dwps:
        try:
            item = dwp_item(f, info, natives)
        except FormatError as err:
            out.refused.append(FileResult(str(f), "refused", name=f.name, reason=err.message))
            continue
        key = (item.name.lower(), item.index.upper())
        if key not in seen_keys:
            seen_keys.add(key)
            out.items.append(item)
            out.infos[item.path] = info
    out.items = drop_deps_twins(out.items, lambda i: i.path, lambda i: (i.kind, i.index.upper(), i.size))
    return out


def check_pairs(col: Collected) -> None:
    """Refuse binary/PDB pairs that do not match: a PE and the PDB its CodeView
    record names must share the debug id.  The pair is the PDB of that name in the
    PE's directory; for files named on the command line, it is the PDB named there
    the way ``verify`` pairs them (by CodeView file name, or the only PDB with the
    only binary), wherever each lies (``publish R/app.exe D/app.pdb``)."""
    bad: dict[Path, str] = {}
    if any(item.kind == "bin" for item in col.items):  # else no PE image to pair (nor their modules to load)
        bad.update(_pe_mismatches(col))
    bad.update(_macho_mismatches(col))
    if bad:
        keep = []
        for item in col.items:
            if item.path in bad:
                col.refused.append(FileResult(str(item.path), "refused", item.name, item.index, item.kind,
                                              reason=bad[item.path], size=item.size))
            else:
                keep.append(item)
        col.items = keep


def _pe_mismatches(col: Collected) -> dict[Path, str]:
    """PE images and the PDBs they name that do not match (check_pairs): path -> reason."""
    from symtool.formats.pe import PeInfo
    from symtool.verify import given_pdb

    by_dir: dict[tuple[Path, str], PublishItem] = {}
    for item in col.items:
        if item.kind != "bin":
            by_dir[(item.path.parent, item.name.lower())] = item
    given_pdbs = {i.path: i for i in col.items if i.path in col.explicit and i.kind in PDB_KINDS}
    given_pes = [i for i in col.items if i.path in col.explicit and isinstance(col.infos.get(i.path), PeInfo)]
    pair_any = len(given_pdbs) == 1 and len(given_pes) == 1
    bad: dict[Path, str] = {}
    for item in col.items:
        info = col.infos.get(item.path)
        if not isinstance(info, PeInfo) or info.primary_codeview is None:
            continue
        cv = info.primary_codeview
        pdb = by_dir.get((item.path.parent, cv.pdb_name.lower()))
        if item.path in col.explicit and given_pdbs:
            named = given_pdb(cv.pdb_name, list(given_pdbs), pair_any)
            pdb = given_pdbs[named] if named is not None else pdb
        if pdb is None:
            continue
        if pdb.index.upper() != cv.debug_id.index().upper():
            why = f"{item.name} wants {cv.pdb_name} {cv.debug_id.index()}, {pdb.path} is {pdb.index}"
            bad[item.path] = f"mismatched pair: {why}"
            bad[pdb.path] = f"mismatched pair: {why}"
    return bad


def _macho_mismatches(col: Collected) -> dict[Path, str]:
    """Mach-O binaries and .dSYM bundles named together that ``verify`` calls a mismatch (another
    build's UUIDs): path -> reason, for the binary and the bundle's DWARF files."""
    if not col.bundles:
        return {}
    from symtool.formats.macho import MachoInfo
    from symtool.verify import MISMATCH, verify_macho

    binaries = sorted({i.path for i in col.items if i.path in col.explicit and isinstance(col.infos.get(i.path), MachoInfo)
                       and not col.infos[i.path].is_dsym})
    pair_any = len(binaries) == 1 and len(col.bundles) == 1
    bad: dict[Path, str] = {}
    for binary in binaries:
        verdict = verify_macho(binary, list(col.bundles), pair_any)
        if verdict.status == MISMATCH and verdict.debug_file is not None:
            why = f"mismatched pair: {verdict.reason}"
            bad[binary] = why
            bad.update((f, why) for f in col.bundles.get(Path(verdict.debug_file), []))
    return bad


# -- placing files ------------------------------------------------------------------


def _same_plain(dst: Path, src: Path, size: int) -> bool:
    from symtool.errors import NotRegularFileError

    try:
        with open_regular(dst, follow=False) as a, open(src, "rb") as b:
            if os.fstat(a.fileno()).st_size != size:
                return False
            if a.read(SAME_CHECK) != b.read(SAME_CHECK):
                return False
            if size > SAME_CHECK:
                tail = max(SAME_CHECK, size - SAME_CHECK)
                a.seek(tail)
                b.seek(tail)
                return a.read(SAME_CHECK) == b.read(SAME_CHECK)
        return True
    except (OSError, NotRegularFileError):
        return False


def _same_cab(dst: Path, name: str, size: int) -> bool:
    from symtool.formats.cab import read_single_header

    from symtool.errors import NotRegularFileError

    try:
        with open_regular(dst, follow=False) as f:
            head = read_single_header(f)
        return head["size"] == size and head["name"].lower() == name.lower()
    except (OSError, FormatError, NotRegularFileError):
        return False


def pointer_content(src: Path) -> bytes:
    return ("PATH:" + str(src.resolve())).encode("utf-8")


def _copy_into(src: Path, dst: Path, prefix: str, progress: Progress | None, sync_dir: bool = True,
               umask: int | None = None, new: bool = False) -> None:
    """Stream ``src`` to a temp file beside ``dst``, fsync, rename (in-kernel copy where possible).

    Descriptors, not file objects: a publish of many small files spends its time in the system
    calls that make, fill and fsync them, and a file object adds three more a file.  ``new``:
    ``dst`` is in a directory the caller just made, so it gets cp's mode for a new file (the
    source's less the umask) from the source's fstat, without stats of both names."""
    fin = os.open(src, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fin)
        size = st.st_size
        mode = None
        if new:
            mode = stat.S_IMODE(st.st_mode) & 0o777 & ~(current_umask() if umask is None else umask)
        with atomic_fd(dst, prefix=prefix, mode_like=src, sync_dir=sync_dir, umask=umask, mode=mode) as out:
            if size > COPY_CHUNK:
                with contextlib.suppress(AttributeError, OSError):
                    os.posix_fadvise(fin, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            done = copy_fd_data(fin, out, chunk=COPY_CHUNK, progress=progress, size=size, what=str(src))
            if done != size:
                raise StoreError(f"file changed size while being copied ({done} of {size} bytes)", src)
    finally:
        os.close(fin)


class _Placer:
    def __init__(self, store: Path, opts: PublishOptions, progress: Progress | None, notes: list[str]):
        self.store = store
        self.opts = opts
        self.progress = progress
        self.notes = notes
        self.two_tier = is_two_tier(store)
        self.prefix = f"{TMP_PREFIX}{owner_tag()}-"
        # Directories whose entries changed (renames, new subdirectories): fsynced once each,
        # together, before the commit (sync_dirs) instead of once per file.
        self.unsynced: set[Path] = set()
        self._unsynced_lock = threading.Lock()
        # The store's top level, listed once: a new key's name is then not looked up case-
        # insensitively by listing the top level again for every file.
        self.top_names = top_level_names(store)
        self.umask = current_umask()  # read once: new files get cp's mode (fsutil.cp_mode)

    def entry_dir(self, item: PublishItem) -> Path:
        idx = entry_dir(self.store, item.name, item.index, self.two_tier, self.top_names)
        with self._unsynced_lock:
            top = idx.relative_to(self.store).parts[0]
            self.top_names.setdefault(top.lower(), top)
        return idx

    def changed(self, *dirs: Path) -> None:
        with self._unsynced_lock:
            self.unsynced.update(dirs)

    def take_key_dirs(self, idx_dirs: list[Path]) -> list[Path]:
        """Take ``idx_dirs`` (each fsynced by its caller after its refs.ptr) and the key levels above
        them (between them and the store: nothing changes those once every file is in place) out of
        the directories :meth:`sync_dirs` fsyncs; returns the levels that were to be fsynced."""
        levels = set()
        for idx in idx_dirs:
            d = idx.parent
            while d != self.store and d.parent != d and d not in levels:
                levels.add(d)
                d = d.parent
        with self._unsynced_lock:
            taken = self.unsynced & levels
            self.unsynced -= taken
            self.unsynced.difference_update(idx_dirs)
        return sorted(taken)

    def sync_dirs(self, pool) -> None:
        """fsync every directory changed so far (several at once: the filesystem joins them)."""
        with self._unsynced_lock:
            dirs, self.unsynced = sorted(self.unsynced, key=lambda d: -len(d.parts)), set()
        list(pool.map(fsync_dir, dirs))

    def want_form(self, item: PublishItem) -> str:
        from symtool.ids import is_ssqp_index

        if is_ssqp_index(item.index):
            # debuginfod and SSQP clients fetch the plain file; they know neither CABs nor file.ptr.
            if self.opts.pointer or self.opts.compress:
                note = f"{item.path}: ELF/Mach-O files are stored plain (debuginfod and SSQP clients need them so)"
                if note not in self.notes:
                    self.notes.append(note)
            return "plain"
        if self.opts.pointer:
            return "pointer"
        if self.opts.compress:
            from symtool.formats.cab import MAX_CAB_INPUT  # only then: the CAB module costs start-up time

            if item.size > MAX_CAB_INPUT:
                self.notes.append(f"{item.path}: {item.size} bytes is over the 2 GiB CAB limit: stored uncompressed")
                return "plain"
            return "compressed"
        return "plain"

    @staticmethod
    def target_name(item: PublishItem, form: str) -> str:
        return form_file_name(item.name, form)

    def existing(self, item: PublishItem, idx: Path) -> str | None:
        """Form in which the same bytes are already stored, if any."""
        plain = find_ci(idx, form_file_name(item.name, PLAIN))
        if plain is not None and plain.is_file() and _same_plain(plain, item.path, item.size):
            return PLAIN
        comp = find_ci(idx, form_file_name(item.name, COMPRESSED))
        if comp is not None and comp.is_file() and _same_cab(comp, item.name, item.size):
            return COMPRESSED
        if self.opts.pointer:
            ptr = find_ci(idx, form_file_name(item.name, POINTER))
            if ptr is not None and ptr.is_file():
                with contextlib.suppress(OSError):
                    if ptr.read_bytes() == pointer_content(item.path):
                        return POINTER
        return None

    def conflict(self, item: PublishItem, idx: Path) -> str | None:
        """The name of a stored file of this key holding other bytes than ``item`` (plain or CAB), or None."""
        for form in (PLAIN, COMPRESSED):
            p = find_ci(idx, form_file_name(item.name, form))
            if p is None or not os.path.lexists(p):
                continue
            same = _same_plain(p, item.path, item.size) if form == PLAIN else _same_cab(p, item.name, item.size)
            if not same:
                return p.name
        return None

    def place_new(self, item: PublishItem, form: str) -> Path | None:
        """Place ``item`` under a key whose directories do not exist yet (the store's top level,
        listed once, lacks its first level): each level made by a single-level mkdir, the file
        written into the new directory -- no case-insensitive lookups, no other forms to drop.
        None when the key is not new or a concurrent writer made one of its levels meanwhile
        (FileExistsError): :meth:`place` then finds what is there."""
        idx = new_entry_dir(self.store, item.name, item.index, self.two_tier, self.top_names)
        if idx is None:
            return None
        levels = [idx]
        while levels[-1].parent != self.store:
            levels.append(levels[-1].parent)
        made: list[Path] = []
        try:
            for d in reversed(levels):
                try:
                    os.mkdir(d)
                except FileExistsError:
                    break
                made.append(d)
            with self._unsynced_lock:
                self.top_names.setdefault(levels[-1].name.lower(), levels[-1].name)
                # The new levels and the directories holding them: fsynced before the commit.
                self.unsynced.update(made)
                self.unsynced.update(d.parent for d in made)
            if len(made) < len(levels):
                return None  # a concurrent writer made a level meanwhile: the ones made here hold its key too
            self._write(item, form, idx / self.target_name(item, form), new=True)
            return idx
        except BaseException:
            # ENOSPC, EFBIG, interrupted...: no empty key directories left behind (rmdir: only if empty).
            for d in reversed(made):
                try:
                    os.rmdir(d)
                except OSError:
                    break
            raise

    def _write(self, item: PublishItem, form: str, dst: Path, new: bool = False) -> None:
        """``item`` into ``dst`` in ``form``: a complete, fsynced file under its final name (the
        directory's fsync is :meth:`sync_dirs`')."""
        if form == "plain":
            _copy_into(item.path, dst, self.prefix, self.progress, sync_dir=False, umask=self.umask, new=new)
        elif form == "compressed":
            from symtool.formats.cab import compress_to_cab

            with atomic_writer(dst, "wb", prefix=self.prefix, mode_like=item.path, sync_dir=False) as out:
                compress_to_cab(item.path, out, item.name, progress=self.progress)
        else:
            with atomic_fd(dst, prefix=self.prefix, sync_dir=False, umask=self.umask) as out:
                write_all(out, pointer_content(item.path))
            if self.progress is not None:
                self.progress(item.size)

    def place(self, item: PublishItem, form: str, idx: Path | None = None) -> Path:
        """Write ``item`` into the store in ``form`` (into ``idx`` when the caller found it);
        returns its index dir."""
        for attempt in range(5):
            if idx is None or attempt:
                idx = self.entry_dir(item)
            created = _missing_dirs(self.store, idx)
            try:
                idx.mkdir(parents=True, exist_ok=True)
                self.changed(idx, *(d.parent for d in created))
                name = self.target_name(item, form)
                self._write(item, form, find_ci(idx, name) or idx / name)
                self._drop_stale_forms(item, idx, form)
                return idx
            except FileNotFoundError:
                # A concurrent `store delete` removed the directory between mkdir and write.
                if attempt == 4:
                    raise
                time.sleep(0.01)
            except BaseException:
                # ENOSPC, EFBIG, interrupted...: no empty key directories left behind (rmdir: only if empty).
                for d in created:
                    try:
                        os.rmdir(d)
                    except OSError:
                        break
                raise
        raise AssertionError("unreachable")

    def _drop_stale_forms(self, item: PublishItem, idx: Path, form: str) -> None:
        """Other forms of the same key holding *different* bytes would shadow the new file."""
        for other in ("plain", "compressed"):
            if other == form:
                continue
            p = find_ci(idx, self.target_name(item, other))
            if p is not None and p.is_file():
                same = _same_plain(p, item.path, item.size) if other == "plain" else _same_cab(p, item.name, item.size)
                if not same:
                    with contextlib.suppress(FileNotFoundError):
                        platform.unlink(p)

    def stored_file(self, item: PublishItem, idx: Path, form: str) -> Path | None:
        p = find_ci(idx, self.target_name(item, form))
        return p if p is not None and p.is_file() else None


def _missing_dirs(store: Path, idx: Path) -> list[Path]:
    """The directories from ``idx`` up to the store that do not exist yet, deepest first."""
    out = []
    d = idx
    while d != store and d != d.parent and not os.path.lexists(d):
        out.append(d)
        d = d.parent
    return out


# -- publishing -------------------------------------------------------------------


def _warn_if_not_a_store(store: Path, report: PublishReport) -> None:
    """A folder with other things in it and no store files is most likely the wrong --store."""
    try:
        if not store.is_dir() or looks_like_store(store):
            return
        with os.scandir(store) as entries:
            if next(entries, None) is None:
                return
    except OSError:
        return
    verb = "would turn" if report.dry_run else "turning"
    report.warnings.append(f"{store} is not empty and not a symbol store: {verb} it into one "
                           "(000Admin, pingme.txt and key directories beside what is there)")


def publish_local(store: Path, items: list[PublishItem], opts: PublishOptions,
                  progress: Progress | None = None, report: PublishReport | None = None) -> PublishReport:
    """Publish ``items`` (already identified and pair-checked) into a local store."""
    report = report or PublishReport(str(store), dry_run=opts.dry_run)
    product = adm.clean_field(opts.product, "product")
    version = adm.clean_field(opts.version, "version")
    comment = adm.clean_field(opts.comment, "comment")
    if store.exists() and not store.is_dir():
        raise StoreError("exists and is not a directory", store)
    _warn_if_not_a_store(store, report)
    if opts.dry_run:
        placer = _Placer(store, opts, None, report.notes)
        for item in items:
            status = "would-add"
            form = placer.want_form(item)
            try:
                if store.is_dir():
                    idx = entry_dir(store, item.name, item.index, placer.two_tier)
                    found = placer.existing(item, idx) if idx.is_dir() else None
                    if found:
                        status, form = "present", found
                    elif idx.is_dir() and not opts.force and placer.conflict(item, idx) is not None:
                        raise UnsafeNameError("the store holds other bytes under this key: use --force to replace them")
            except UnsafeNameError as err:
                report.files.append(FileResult(str(item.path), "refused", item.name, item.index, item.kind,
                                               reason=err.message, size=item.size))
                continue
            report.files.append(FileResult(str(item.path), status, item.name, item.index, item.kind, form,
                                           size=item.size))
        return report

    adm.init_store(store)
    placer = _Placer(store, opts, progress, report.notes)
    def place_one(item: PublishItem):
        try:
            form = placer.want_form(item)
            idx = placer.place_new(item, form)
            if idx is not None:
                res = FileResult(str(item.path), "added", item.name, item.index, item.kind, form, size=item.size)
                return (item, idx, form, res), res
            idx = placer.entry_dir(item)
            exists = idx.is_dir()
            found = placer.existing(item, idx) if exists else None
            other = placer.conflict(item, idx) if exists and not found and not opts.force else None
            if found:
                res = FileResult(str(item.path), "present", item.name, item.index, item.kind, found, size=item.size)
                form = found
                if progress is not None:
                    progress(item.size)
            elif other is not None:
                return None, FileResult(str(item.path), "refused", item.name, item.index, item.kind,
                                        reason=f"the store holds other bytes under this key ({other}): "
                                               "use --force to replace them", size=item.size)
            else:
                idx = placer.place(item, form, idx)
                res = FileResult(str(item.path), "added", item.name, item.index, item.kind, form, size=item.size)
        except UnsafeNameError as err:
            return None, FileResult(str(item.path), "refused", item.name, item.index, item.kind,
                                    reason=err.message, size=item.size)
        except (FormatError, StoreError) as err:  # the input changed or is not what its size said
            return None, FileResult(str(item.path), "unreadable", item.name, item.index, item.kind,
                                    reason=err.message, size=item.size)
        return (item, idx, form, res), res

    # A few files at a time: one file's fsync (waiting for the disk) overlaps the next one's copy.
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=min(PLACERS, max(1, len(items))))
    with contextlib.ExitStack() as stack:
        stack.callback(pool.shutdown, cancel_futures=True)  # SIGTERM, ENOSPC: start no more
        return _place_and_commit(store, items, opts, placer, place_one, pool, report, progress,
                                 product, version, comment)


def _place_and_commit(store: Path, items: list[PublishItem], opts: PublishOptions, placer: "_Placer", place_one,
                      pool, report: PublishReport, progress: Progress | None, product: str, version: str,
                      comment: str) -> PublishReport:
    """Phase 1 (every file into place, outside the lock) and phase 2 (the transaction, under it)."""
    outcomes = list(pool.map(place_one, items))
    placed: list[tuple[PublishItem, Path, str, FileResult]] = []
    for entry, res in outcomes:
        report.files.append(res)
        if entry is not None:
            placed.append(entry)
    if not placed:
        return report
    if opts.skip_published and not opts.force and len(placed) == len(items) \
            and all(res.status == "present" for *_, res in placed):
        txn_id = _published_as(store, placer.prefix, items, product, version, comment)
        if txn_id is not None:
            report.transaction, report.already_published = txn_id, True
            return report

    with StoreLock(store):
        # Files may have vanished since (a concurrent delete/prune/repair): put them back.
        for i, (item, idx, form, res) in enumerate(placed):
            if placer.stored_file(item, idx, form) is None:
                idx = placer.place(item, form)
                placed[i] = (item, idx, form, res)
                res.status = "added"
        admin = adm.Admin(store, placer.prefix)
        admin.ensure()
        txn_id = admin.next_id()
        sources = platform.real_paths([item.path for item, *_ in placed])
        entries = [adm.TxnEntry(item.name, item.index, adm.to_record(source)) for (item, *_), source in zip(placed, sources)]
        with atomic_writer(admin.txn_path(txn_id), "wb", prefix=placer.prefix) as f:
            f.write(adm.txn_file_bytes(entries))

        def add_ref(job) -> None:
            if isinstance(job, Path):  # a key level above an index directory: changed for the last time
                fsync_dir(job)
                return
            (item, idx, form, _res), entry = job
            ref = "ptr" if form == "pointer" else "file"
            line = adm.format_ref_line(txn_id, ref, entry.source, item.kind, form == "compressed")
            adm.append_ref(idx, line, placer.prefix, placer.umask)
            fsync_dir(idx)  # after its last change before the commit: the file's rename, then this refs.ptr

        # Each refs.ptr is written and fsynced, then its index directory; the key levels above them
        # (new name directories) are fsynced in the same batch, several at once: the files' renames,
        # the refs.ptr files and new key directories are all durable before the commit point below,
        # each directory fsynced once.  What else changed (the store's top level, 000Admin, the
        # debuginfod view's levels) is fsynced just before the commit (sync_dirs).
        key_levels = placer.take_key_dirs([idx for _item, idx, *_ in placed])
        list(pool.map(add_ref, [*key_levels, *zip(placed, entries)]))
        placer.changed(admin.txn_path(txn_id).parent)
        # The debuginfod view before the commit point: whatever fails here (no symlink privilege on
        # Windows, a full disk) fails before the transaction exists.  Links to an entry of a publish
        # that never commits dangle once verify --repair rolls it back, which removes them.
        from symtool.store.native import link_debuginfod

        view_refused: list[str] = []
        try:
            link_debuginfod(store, [item for item, *_ in placed], placer.two_tier, view_refused)
        except platform.LinksUnsupported as err:
            report.warnings.append(f"debuginfod view not made: symbolic links cannot be created here "
                                   f"({err.strerror}; on Windows: enable Developer Mode)")
        report.warnings.extend(view_refused)
        report.store_refusals += len(view_refused)
        placer.sync_dirs(pool)
        txn_ref = "ptr" if opts.pointer else "file"
        line = adm.format_add_line(txn_id, txn_ref, time.time(), product, version, comment)
        admin.append_server(line)  # the commit point
        admin.append_history(line)
        admin.write_lastid(int(txn_id))
        admin.touch_pingme()
        if opts.sources:
            from symtool.store.native import archive_debuginfod_sources

            written, notes, refused = archive_debuginfod_sources(store, [item for item, *_ in placed], placer.prefix,
                                                                 opts.sources_roots)
            report.notes.extend(notes)
            report.warnings.extend(refused)
            report.store_refusals += sum(1 for r in refused if "symbolic link" in r or "not a directory" in r)
            if written:
                report.notes.append(f"archived {written} source file(s) for debuginfod (debuginfod/buildid/<id>/source/)")
    report.transaction = txn_id
    return report


def _published_as(store: Path, prefix: str, items: list[PublishItem], product: str, version: str,
                  comment: str) -> str | None:
    """The newest live transaction of this product, version and comment if it lists exactly
    the keys of ``items`` (whose bytes the caller found stored), else None."""
    admin = adm.Admin(store, prefix)
    want = {(i.name.lower(), i.index.upper()) for i in items}
    for txn_id, rec in sorted(admin.live().items(), reverse=True):
        if (rec.product, rec.version, rec.comment) != (product, version, comment):
            continue
        entries, problems = adm.read_txn_file(admin.txn_path(txn_id))
        keys = [e.key for e in entries]
        return txn_id if not problems and len(keys) == len(want) and set(keys) == want else None
    return None


def _publish_objects(store: str, items: list[PublishItem], opts: PublishOptions, report: PublishReport,
                     progress: Progress | None) -> PublishReport:
    """Publish into ``s3://`` / ``azblob://`` storage (symtool.store.objstore: no lock, conditional writes)."""
    from symtool.errors import UsageError
    from symtool.store.objstore import open_store

    if opts.pointer:
        raise UsageError("--pointer (file.ptr) records a path on this machine; object storage cannot use it")
    objects = open_store(store, opts.key_case)
    fields = dict(product=adm.clean_field(opts.product, "product"), version=adm.clean_field(opts.version, "version"),
                  comment=adm.clean_field(opts.comment, "comment"), compress=opts.compress)
    found = objects.find_published(items, **fields) if opts.skip_published and not opts.force else None
    if found is not None:
        txn, results = found
        report.already_published = True
    else:
        txn, results = objects.publish(items, **fields, dry_run=opts.dry_run, force=opts.force)
    for item, status, form in results:
        reason = "the store holds other bytes under this key: use --force to replace them" if status == "refused" else ""
        report.files.append(FileResult(str(item.path), status, item.name, item.index, item.kind,
                                       "" if status == "refused" else form, reason, item.size))
        if progress is not None:
            progress(item.size)
    report.transaction = txn
    return report


def without_symbols(items: list[PublishItem], infos: dict | None = None, features: dict | None = None) -> list[str]:
    """Warnings for debug files stored without symbols (symtool.usable's verdict).

    PDBs are judged one by one.  ELF and Mach-O files are judged by identity: a
    stripped binary published with its debug file is fine, so the warning comes
    only when no file of that build-id / UUID has function names.  PE images are
    never judged: their symbols are in the PDB.  The warning never changes the
    exit code: a store of such files still serves unwinding and identities.
    ``infos``: the identities collect() read (path -> info), so no file is read for it again;
    ``features``: the features collect() read with them (path -> Features or None), likewise.
    """
    from symtool.usable import NO_SYMBOLS, TYPES_ONLY, file_features, verdict

    out: list[str] = []
    native: dict[str, list[PublishItem]] = {}
    judged: dict[Path, object] = dict(features or {})

    def features(path: Path):
        if path not in judged:
            try:
                judged[path] = file_features(path, (infos or {}).get(path))
            except (FormatError, OSError):
                judged[path] = None  # unreadable debug info is not this warning's business
        return judged[path]

    for item in items:
        if item.index.lower().startswith(("elf-buildid-", "mach-uuid-")):
            # elf-buildid[-sym]-<id>, mach-uuid[-sym]-<uuid>: the binary's and its debug file's keys
            native.setdefault(item.index.rsplit("-", 1)[-1].lower(), []).append(item)
        elif item.kind in ("pri", "pub", "typ"):
            v = verdict(features(item.path)) if features(item.path) is not None else None
            if v in (NO_SYMBOLS, TYPES_ONLY):
                out.append(f"{item.path}: stored, but it holds no symbols ({v}): stacks through it stay "
                           f"module+offset")
    for group in native.values():
        feats = [features(i.path) for i in group]
        if all(f is not None and not f.functions for f in feats):
            names = ", ".join(sorted({str(i.path) for i in group}))
            out.append(f"{names}: stored without symbols (no function names in any file of this build): "
                       f"publish its debug file too")
    return out


def publish(store: str, paths: list[Path], opts: PublishOptions, progress_factory=None,
            wants: Callable[[Path], bool] | None = None) -> PublishReport:
    """Collect, pair-check and publish ``paths`` into ``store`` (a path or an http(s) URL).

    ``progress_factory(total_bytes)`` may return a callable taking byte counts;
    ``wants`` picks the files of directories to publish (see :func:`collect`).
    """
    index_notes: list[str] = []
    index_warnings: list[str] = []
    if opts.source_index or opts.sources:
        from symtool.srcindex.index import index_for_publish

        # Before collecting: the store only ever sees the indexed PDB under its key.
        index_notes, index_warnings = index_for_publish(paths, store, archive=opts.sources, dry_run=opts.dry_run,
                                                        source_roots=opts.sources_roots)
    col = collect(paths, wants)
    check_pairs(col)
    report = PublishReport(redact_url(store), dry_run=opts.dry_run, ignored=col.ignored)
    report.notes.extend(index_notes)
    report.warnings.extend(index_warnings)
    report.files.extend(col.refused)
    if not col.items:
        return report  # nothing readable to publish: leave the store untouched
    report.warnings.extend(without_symbols(col.items, col.infos, col.features))
    total = sum(i.size for i in col.items)
    progress = progress_factory(total) if (progress_factory and col.items) else None
    if is_object_store(store):
        return _publish_objects(store, col.items, opts, report, progress)
    if is_url(store):
        from symtool.store.http import HTTP_STORE_NOTE, publish_http

        report.notes.append(HTTP_STORE_NOTE)
        # publish_http takes its own progress protocol; the CLI's byte counter is not it.
        results = publish_http(store, col.items, dry_run=opts.dry_run, progress=None)
        by_key = {i.key.lower(): i for i in col.items}
        for r in results:
            item = by_key.get(str(r.get("key", "")).lower())
            report.files.append(FileResult(
                str(item.path) if item else str(r.get("path", "")),
                {"would-upload": "would-add"}.get(str(r.get("status")), str(r.get("status", "error"))),
                item.name if item else "", item.index if item else "", item.kind if item else "",
                "plain", str(r.get("reason", r.get("error", "")) or ""), item.size if item else 0))
        return report
    return publish_local(Path(platform.long_path(store)), col.items, opts, progress, report)
