"""Fetch one key from an ordered list of sources into a downstream cache.

Sources are HTTP(S) symbol servers or local/UNC store directories.  The cache
is laid out as a store (``name/INDEX/name``; two-tier if it has index2.txt),
so ``srv*<cache>*...`` and symtool itself find files there later.

Safety: every file is downloaded (or copied) to a temp file inside the cache
entry directory, expanded if it is a CAB, and its identity is read back from
disk (read_pdb / read_pe) and compared with the INDEX that was asked for.
Only then is it renamed to its final name.  A wrong file is an error and
never a cache entry; temp files are removed on every failure path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from symtool import platform
from symtool.errors import FormatError, StoreError, SymtoolError
from symtool.fsutil import TMP_PREFIX, atomic_temp, copy_file_data, open_regular
from symtool.ids import check_file_name, parse_index
from symtool.store import layout
from symtool.store.http import HttpClient, ProgressFactory, redact_url
from symtool.store.layout import is_object_store, is_url
from symtool.store.lock import owner_tag

# Statuses of a FetchResult
FETCHED = "fetched"
CACHED = "cached"
NOT_FOUND = "not-found"
ERROR = "error"


@dataclass
class FetchResult:
    name: str
    index: str
    status: str  # fetched | cached | not-found | error
    path: str | None = None  # the file in the cache
    source: str | None = None  # server or store it came from (redacted)
    url: str | None = None  # exact location (redacted)
    form: str | None = None  # plain | compressed | pointer
    size: int | None = None
    errors: list[str] = field(default_factory=list)  # one line per source that failed
    messages: list[str] = field(default_factory=list)  # MSG: lines from file.ptr

    @property
    def key(self) -> str:
        return f"{self.name}/{self.index}/{self.name}"

    def to_json(self) -> dict:
        return {
            "key": self.key, "name": self.name, "index": self.index, "status": self.status,
            "path": self.path, "source": self.source, "url": self.url, "form": self.form,
            "size": self.size, "errors": self.errors, "messages": self.messages,
        }


def verify_identity(path: Path, index: str, what: str) -> None:
    """The file at ``path`` must be a PE or PDB whose store INDEX is ``index``."""
    from symtool.formats.detect import read_identity

    try:
        info = read_identity(path)
    except FormatError as err:
        raise StoreError(f"not a valid PE image or PDB ({err.message})", what) from None
    from symtool.store.native import identity_matches

    if not identity_matches(info, path.name, index):
        raise StoreError(f"wrong file for this key: its identity is {info.index}, asked for {index}", what)


def _expand_cab(cab_path: Path, out_path: Path, max_size: int) -> str:
    """Expand a single-file CAB; LZX/Quantum via Debian's cabextract when installed."""
    from symtool.formats.cab import UnsupportedCompression, extract_single

    try:
        with open(cab_path, "rb") as src, open(out_path, "wb") as dst:
            return extract_single(src, dst, max_size=max_size)
    except UnsupportedCompression as err:
        tool = shutil.which("cabextract")
        if tool is None:
            raise FormatError(f"{err.message}; install cabextract to expand it") from None
        return _cabextract(tool, cab_path, out_path, max_size)


def _cabextract(tool: str, cab_path: Path, out_path: Path, max_size: int) -> str:
    """cabextract -p writes the member to stdout: no file names from the CAB touch the disk."""
    from symtool.formats.cab import read_single_header

    with open(cab_path, "rb") as f:
        info = read_single_header(f)  # sizes and the single-file shape checked by us first
    if info["size"] > max_size:
        raise FormatError(f"CAB member is {info['size']} bytes, over the limit of {max_size}")
    # Read through a pipe and stop at the size the header declares: a hostile CAB never puts more on disk.
    expected = info["size"]
    written = 0
    with open(out_path, "wb") as out, subprocess.Popen([tool, "-q", "-p", str(cab_path)], stdout=subprocess.PIPE,
                                                      stderr=subprocess.PIPE) as proc:
        while True:
            chunk = proc.stdout.read(1 << 20)
            if not chunk:
                break
            written += len(chunk)
            if written > expected:
                proc.kill()
                raise FormatError(f"CAB expands beyond the {expected} bytes its header declares")
            out.write(chunk)
        detail = proc.stderr.read(4096).decode("utf-8", "replace").strip().splitlines()
        code = proc.wait()
    if code != 0 or written != expected:
        raise FormatError(f"cabextract could not expand it{': ' + detail[-1] if detail else ''}")
    return info["name"]


class _Sink:
    """A temp file the HTTP layer writes into; truncated between attempts."""

    def __init__(self, path: Path):
        self.path = path
        from symtool.fsutil import not_regular_error

        # Opened without following a symlink: the temp name is ours (created with O_EXCL), never a link.
        try:
            fd = platform.open_no_follow(path, os.O_WRONLY | os.O_TRUNC)
        except platform.NotRegular as err:
            raise not_regular_error(err, "the download's temp file") from None
        self.f = os.fdopen(fd, "wb")

    def write(self, b: bytes) -> int:
        return self.f.write(b)

    def reset(self) -> None:
        self.f.seek(0)
        self.f.truncate()

    def close(self) -> None:
        self.f.close()


class Fetcher:
    """Fetch keys from ``sources`` (URLs or store dirs) into ``cache``."""

    def __init__(self, sources: list[str], cache: Path, *, client: HttpClient | None = None,
                 progress: ProgressFactory | None = None, max_size: int | None = None):
        self.sources = list(sources)
        self.cache = Path(platform.long_path(cache))
        self._client = client
        self._own_client = client is None
        self.progress = progress
        if max_size is None:
            from symtool.settings import max_file_size

            max_size = client.options.max_size if client else max_file_size()
        self.max_size = max_size
        self._down: dict[str, str | None] | None = None  # see remember_server_failures

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient()
        return self._client

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def fetch(self, name: str, index: str) -> FetchResult:
        check_file_name(name)
        parse_index(index)
        result = FetchResult(name, index, NOT_FOUND)
        cached = self._in_cache(name, index)
        if cached is not None:
            result.status, result.path, result.source = CACHED, str(cached), str(self.cache)
            result.size = cached.stat().st_size
            return result
        if not self.sources:
            result.errors.append("no symbol servers configured (use --server, SYMTOOL_STORE or _NT_SYMBOL_PATH)")
            result.status = ERROR
            return result
        for source in self.sources:
            down = self._server_down(source)
            if down is not None:
                result.errors.append(down)
                continue
            try:
                if self._try_source(source, name, index, result):
                    return result
            except SymtoolError as err:
                where = redact_url(source) if is_url(source) else source
                line = str(err) if err.path else f"{where}: {err}"
                result.errors.append(line)
        result.status = ERROR if result.errors else NOT_FOUND
        return result

    # ---------------------------------------------------------------------------------------------

    def remember_server_failures(self) -> None:
        """Probe each HTTP server once (``index2.txt``) and skip it for later keys if that failed.

        For many keys in one run (``--dump``): a server that refuses connections,
        stalls or answers 401/500 to its root probe would otherwise be retried,
        with backoff, once per key.  Every key still gets the server's error line.
        """
        if self._down is None:
            self._down = {}

    def _server_down(self, source: str) -> str | None:
        down = self._down
        if down is None or not is_url(source):
            return None
        if source not in down:
            try:
                self.client.server(source).two_tier()
                down[source] = None
            except SymtoolError as err:
                down[source] = str(err) if err.path else f"{redact_url(source)}: {err}"
        return down[source]

    def _in_cache(self, name: str, index: str) -> Path | None:
        if not self.cache.is_dir():
            return None
        found = layout.lookup(self.cache, name, index)
        if found is not None and found.form == layout.PLAIN:
            return found.path
        return None

    def _entry(self, name: str, index: str) -> tuple[Path, list[Path]]:
        """Create the cache entry directory; returns it and the directories we created."""
        if self.cache.exists() and not self.cache.is_dir():
            raise StoreError("cache is not a directory", self.cache)
        entry = layout.entry_dir(self.cache, name, index)
        created: list[Path] = []
        d = entry
        while not d.exists():
            created.append(d)
            d = d.parent
        entry.mkdir(parents=True, exist_ok=True)
        self._remove_dead_temps(entry)
        return entry, created

    @staticmethod
    def _remove_dead_temps(entry: Path) -> None:
        """Temp files of fetches that were killed (SIGKILL cannot be caught): the writer is gone, or on
        another host its file is older than the grace period (SYMTOOL_LOCK_STALE)."""
        from symtool.store.lock import temp_owner_dead

        with os.scandir(entry) as it:
            for e in it:
                if not e.name.startswith(TMP_PREFIX):
                    continue
                try:
                    if e.is_file(follow_symlinks=False) and temp_owner_dead(e.name, e.stat(follow_symlinks=False).st_mtime):
                        platform.unlink(e.path)
                except OSError:
                    pass

    @staticmethod
    def _cleanup_dirs(created: list[Path]) -> None:
        for d in created:  # deepest first
            try:
                d.rmdir()
            except OSError:
                break

    def _try_source(self, source: str, name: str, index: str, result: FetchResult) -> bool:
        entry, created = self._entry(name, index)
        final = entry / name
        ok = False
        prefix = f"{TMP_PREFIX}{owner_tag()}-"
        fd, raw_name = tempfile.mkstemp(prefix=prefix, suffix=".dl", dir=entry)  # O_EXCL: no planted link
        os.close(fd)
        raw = Path(raw_name)
        try:
            with atomic_temp(final, prefix=prefix) as tmp:
                if is_url(source):
                    ok = self._from_http(source, name, index, raw, tmp, result)
                elif is_object_store(source):
                    ok = self._from_objects(source, name, index, raw, tmp, result)
                else:
                    ok = self._from_dir(Path(platform.long_path(source)), name, index, raw, tmp, result)
                if not ok:
                    raise _Absent()
                verify_identity(tmp, index, f"{result.url or source}")
            result.status = FETCHED
            result.path = str(final)
            result.size = final.stat().st_size
            return True
        except _Absent:
            return False
        finally:
            platform.unlink(raw, missing_ok=True)
            if not ok or result.status != FETCHED:
                self._cleanup_dirs(created)

    def _materialize(self, raw: Path, tmp: Path, name: str, what: str) -> None:
        """``raw`` holds what was transferred; put the real file into ``tmp``."""
        with open(raw, "rb") as f:
            head = f.read(4)
        if head == b"MSCF":
            member = _expand_cab(raw, tmp, self.max_size)
            if member.lower() != name.lower():
                raise StoreError(f"{what}: CAB holds {member!r}, expected {name!r}")
        else:
            platform.replace(raw, tmp)

    def _from_http(self, source: str, name: str, index: str, raw: Path, tmp: Path, result: FetchResult) -> bool:
        server = self.client.server(source)
        sink = _Sink(raw)
        try:
            hit = server.fetch(name, index, sink, progress=self.progress, limit=self.max_size)
        finally:
            sink.close()
        if hit is None:
            return False
        result.messages.extend(hit.messages)
        if hit.form == layout.MESSAGE:
            return False
        result.source, result.url, result.form = server.display, hit.url, hit.form
        if hit.pointer is not None:
            self._copy_pointer_target(hit.pointer, raw, hit.url)
        self._materialize(raw, tmp, name, hit.url)
        return True

    def _from_objects(self, source: str, name: str, index: str, raw: Path, tmp: Path, result: FetchResult) -> bool:
        """An ``s3://`` / ``azblob://`` store, read with the SDK's credentials."""
        from symtool.store.objstore import open_store

        store = open_store(source)
        found = store.locate(name, index)
        if found is None:
            return False
        cand, info = found
        where = store.backend.url(cand.rel)
        if cand.form == layout.POINTER:
            store.download(cand.rel, raw, layout.MAX_FILE_PTR_SIZE)
            target, message = layout.read_file_ptr(raw)
            result.messages.extend([message] if message else [])
            if target is None:
                return False
        result.source, result.url, result.form = store.display, where, cand.form
        if cand.form == layout.POINTER:
            self._copy_pointer_target(target, raw, where)
        else:
            advance = self.progress.start(name, info.size) if self.progress is not None else None
            try:
                store.download(cand.rel, raw, self.max_size, advance)
            finally:
                if self.progress is not None:
                    self.progress.stop()
        self._materialize(raw, tmp, name, where)
        return True

    def _from_dir(self, store: Path, name: str, index: str, raw: Path, tmp: Path, result: FetchResult) -> bool:
        if not store.is_dir():
            raise StoreError("store directory not found", store)
        found = layout.lookup(store, name, index)
        if found is None:
            return False
        result.messages.extend(found.messages)
        if found.form == layout.MESSAGE:
            return False
        result.source, result.url, result.form = str(store), str(found.path), found.form
        if found.form == layout.POINTER:
            self._copy_pointer_target(found.target, raw, str(found.path))
        else:
            self._copy_limited(found.path, raw, str(found.path))
        self._materialize(raw, tmp, name, str(found.path))
        return True

    def _copy_pointer_target(self, target: str, raw: Path, where: str) -> None:
        path = Path(target)
        if not path.exists():
            raise StoreError(f"file.ptr points to {target}, which is not reachable from here", where)
        self._copy_limited(path, raw, target)

    def _copy_limited(self, src: Path, raw: Path, what: str) -> None:
        """Copy a regular file of at most max_size bytes, no more than its size says (never a FIFO,
        a device or ``/proc/self/pagemap``, whose size is 0 and whose data never ends)."""
        from symtool.errors import NotRegularFileError

        try:
            fin = open_regular(src, what="file")
        except NotRegularFileError as err:
            raise StoreError(err.message, what) from None
        with fin:
            size = os.fstat(fin.fileno()).st_size
            if size > self.max_size:
                raise StoreError(f"{size} bytes is over the size limit of {self.max_size} (SYMTOOL_MAX_FILE_SIZE)",
                                 what)
            advance = self.progress.start(src.name, size) if self.progress is not None else None
            try:
                with open(raw, "r+b") as fout:
                    copy_file_data(fin, fout, progress=advance, size=size, what=what)
            finally:
                if self.progress is not None:
                    self.progress.stop()


class _Absent(Exception):
    """Internal: the source does not have the key (unwinds atomic_temp without committing)."""


def fetch_keys(keys: list[tuple[str, str]], sources: list[str], cache: Path, *,
               client: HttpClient | None = None, progress: ProgressFactory | None = None,
               max_size: int | None = None, on_result: Callable[[FetchResult], None] | None = None
               ) -> list[FetchResult]:
    """Fetch several keys; one result per key, in order."""
    results = []
    with Fetcher(sources, cache, client=client, progress=progress, max_size=max_size) as fetcher:
        if len(keys) > 1:
            fetcher.remember_server_failures()
        for name, index in keys:
            r = fetcher.fetch(name, index)
            results.append(r)
            if on_result is not None:
                on_result(r)
    return results


# --- every module of a minidump ----------------------------------------------------------------------

SKIPPED = "skipped"  # a module with nothing to fetch (no PDB named, not a PE module)


@dataclass
class ModuleFetch:
    """What ``fetch --dump`` did for one module of a minidump."""

    module: str  # the module's file name as recorded (may be unsafe: only ever shown, never a path)
    path: str  # the module path recorded in the dump
    base: int
    # ("pdb"|"image", result); ELF modules: "image", "dwp", "debuginfo"; Mach-O modules: "image", "dsym".
    results: list[tuple[str, FetchResult]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a key was not looked for
    # Kinds a module may lack without anything missing: an ELF binary's DWARF is in its .dwp, or
    # in a separate debug file, or in the binary itself.
    optional: tuple[str, ...] = ()
    # Where the PDB's name and GUID come from: "dump" (its module list), "image" (the debug directory
    # of the image, fetched first: Wine's and older writers' dumps have no CodeView records), None.
    codeview_source: str | None = None

    def missing(self, r: FetchResult, kind: str) -> bool:
        """Is ``r`` (of this ``kind``) a file the module needs and the servers do not have?"""
        return r.status == NOT_FOUND and kind not in self.optional

    @property
    def status(self) -> str:
        statuses = {r.status for kind, r in self.results if r.status != NOT_FOUND or kind not in self.optional}
        for status in (ERROR, NOT_FOUND, FETCHED, CACHED):
            if status in statuses:
                return status
        return SKIPPED

    @staticmethod
    def has_key(r: FetchResult) -> bool:
        """False for a result refused before any lookup (hostile name, broken CodeView record)."""
        return bool(r.index) and _safe_name(r.name)

    def result_json(self, kind: str, r: FetchResult) -> dict:
        out = {"module": self.module, "kind": kind, **r.to_json()}
        if not self.has_key(r):
            out["key"] = None
        return out

    def to_json(self) -> dict:
        return {
            "module": self.module, "path": self.path, "base": f"{self.base:#x}", "status": self.status,
            "results": [self.result_json(kind, r) for kind, r in self.results], "notes": self.notes,
            "codeview_source": self.codeview_source,
        }


def _safe_name(name: str) -> bool:
    try:
        check_file_name(name)
        return True
    except SymtoolError:
        return False


def _unsafe(name: str, index: str, err: SymtoolError, what: str) -> FetchResult:
    return FetchResult(name, index, ERROR, errors=[f"{what}: {err.message}"])


def plan_dump(dump, binary: bool = False) -> list[ModuleFetch]:
    """One ModuleFetch per module of ``dump`` (a symtool.formats.minidump.Minidump), results empty.

    Keys whose names fail ``check_file_name`` get an ERROR result right away and
    are never looked up; the names come from the dump, i.e. from anyone.
    """
    from symtool.ids import basename_any

    from symtool.store.layout import SSQP_DEBUG_NAME, SSQP_DWARF_NAME, elf_index, mach_index

    plans: list[ModuleFetch] = []
    for m in dump.modules:
        plan = ModuleFetch(basename_any(m.name), m.name, m.base)
        plans.append(plan)
        if m.build_id is not None or m.mach_uuid is not None:
            # Breakpad/crashpad modules of Linux and macOS: the binary (unwind tables, code) and its
            # DWARF (.dwp or debug file; the dSYM's DWARF file) under their SSQP keys.
            if m.build_id is not None:
                build_id = m.build_id.hex()
                keys = [("image", plan.module, elf_index(build_id)), ("dwp", f"{plan.module}.dwp", elf_index(build_id)),
                        ("debuginfo", SSQP_DEBUG_NAME, elf_index(build_id, sym=True))]
                plan.optional = ("dwp", "debuginfo")
            else:
                uuid = m.mach_uuid.index()
                keys = [("image", plan.module, mach_index(uuid)), ("dsym", SSQP_DWARF_NAME, mach_index(uuid, sym=True))]
            for kind, name, index in keys:
                try:
                    check_file_name(name)
                    plan.results.append((kind, FetchResult(name, index, NOT_FOUND)))
                except SymtoolError as err:
                    plan.results.append((kind, _unsafe(name, index, err, f"module {plan.module!r}: file name")))
            continue
        if m.codeview_kind == "ELF":
            plan.notes.append("ELF module without a build id: no key to fetch it by")
            continue
        if m.error is not None:
            plan.results.append(("pdb", FetchResult(basename_any(m.pdb_path or ""), "", ERROR,
                                                    errors=[f"module {plan.module!r}: {m.error}"])))
        elif m.codeview_kind in ("RSDS", "NB10") and m.debug_id is not None:
            pdb_name = basename_any(m.pdb_path or "")
            index = m.debug_id.index()
            plan.codeview_source = "dump"
            try:
                check_file_name(pdb_name)
                plan.results.append(("pdb", FetchResult(pdb_name, index, NOT_FOUND)))
            except SymtoolError as err:
                plan.results.append(("pdb", _unsafe(pdb_name, index, err, f"module {plan.module!r}: PDB name")))
        elif m.code_id is not None:
            # No CodeView record in the dump: the image names its PDB, as WinDBG (and stack, dumps) find it.
            plan.codeview_source = "image"
        else:
            plan.notes.append("no CodeView record naming a PDB")
        if binary or plan.codeview_source == "image":
            code_id = m.code_id
            if code_id is None:
                plan.notes.append("no TimeDateStamp: the image has no store key")
                continue
            try:
                check_file_name(plan.module)
                plan.results.append(("image", FetchResult(plan.module, code_id, NOT_FOUND)))
            except SymtoolError as err:
                plan.results.append(("image", _unsafe(plan.module, code_id, err, f"module {plan.module!r}: image name")))
    return plans


def pending_keys(plans: list[ModuleFetch]) -> list[tuple[str, str]]:
    """The distinct keys still to look up, in module order."""
    seen: dict[tuple[str, str], None] = {}
    for plan in plans:
        for _kind, r in plan.results:
            if r.status == NOT_FOUND and not r.errors:
                seen.setdefault((r.name.lower(), r.index.upper()), None)
    return list(seen)


def _pdb_of_image(plan: ModuleFetch) -> FetchResult | None:
    """The PDB key the fetched image of ``plan`` names in its CodeView record (None when the image
    was not fetched; a note when it names none)."""
    from symtool.formats.pe import read_pe
    from symtool.ids import basename_any

    image = next((r for kind, r in plan.results if kind == "image"), None)
    if image is None or image.status not in (FETCHED, CACHED) or not image.path:
        plan.notes.append("no CodeView record in the dump, and the image was not found to read it from")
        return None
    try:
        cv = read_pe(image.path).primary_codeview
    except (SymtoolError, OSError) as err:
        return FetchResult("", "", ERROR, errors=[f"{image.path}: {getattr(err, 'message', None) or err}"])
    if cv is None or not cv.pdb_name:
        plan.notes.append("neither the dump nor the image has a CodeView record naming a PDB")
        return None
    pdb_name, index = basename_any(cv.pdb_name), cv.debug_id.index()
    try:
        check_file_name(pdb_name)
    except SymtoolError as err:
        return _unsafe(pdb_name, index, err, f"image {image.path}: PDB name")
    return FetchResult(pdb_name, index, NOT_FOUND)


def fetch_dump(plans: list[ModuleFetch], fetcher: Fetcher,
               on_module: Callable[[ModuleFetch], None] | None = None) -> list[ModuleFetch]:
    """Fill in every planned key with the fetcher; each distinct key is fetched once.

    A module whose dump record has no CodeView record gets its image first, then the PDB
    that image names."""
    fetcher.remember_server_failures()
    done: dict[tuple[str, str], FetchResult] = {}

    def fetch_all(plan: ModuleFetch) -> None:
        for i, (kind, planned) in enumerate(plan.results):
            if planned.status == ERROR:
                continue  # an unsafe name: reported, never looked up
            ident = (planned.name.lower(), planned.index.upper())
            if ident not in done:
                done[ident] = fetcher.fetch(planned.name, planned.index)
            plan.results[i] = (kind, done[ident])

    for plan in plans:
        fetch_all(plan)
        if plan.codeview_source == "image":
            pdb = _pdb_of_image(plan)
            if pdb is not None:
                plan.results.insert(0, ("pdb", pdb))
                fetch_all(plan)
        if on_module is not None:
            on_module(plan)
    return plans


__all__ = ["Fetcher", "FetchResult", "fetch_keys", "verify_identity", "FETCHED", "CACHED", "NOT_FOUND", "ERROR",
           "SKIPPED", "ModuleFetch", "plan_dump", "fetch_dump", "pending_keys"]
