"""Triage many minidumps: what each needs to be symbolized, whether the stores
have it, and which crashes are the same.

One row per dump (a plain dict, the ``--json`` shape):

* the exception (code as ProcDump writes it, e.g. ``C0000005``, a name, and
  details such as read/write/execute for access violations or the fail-fast
  subcode), the faulting module and offset, and -- when the faulting
  module's PDB is found in a local store or build directory -- the function,
  file:line and inline frames at the exception address;
* every module with the store keys looked for (``name/INDEX/name`` for the
  PDB named by its CodeView record, ``name/TimeDateStamp+SizeOfImage/name``
  for the image), like ``symchk /id`` does, and whether they were found;
* a ``bucket``: exception code + faulting module + function (or offset when
  not symbolized).  :class:`Buckets` counts them with first/last time and an
  example file.

Unreadable dumps become rows with ``error``; the run goes on.  Rows are
produced one at a time (:func:`triage`) so memory stays flat over thousands
of dumps; store lookups and parsed PDBs are cached for the run.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from symtool.errors import FormatError, NetworkError, SymtoolError, UsageError
from symtool.formats.minidump import Minidump, Module, read_minidump
from symtool.ids import check_file_name, store_relpath

# --- exception names ---------------------------------------------------------------------------

EXCEPTION_NAMES = {
    0x80000001: "guard page violation",
    0x80000002: "datatype misalignment",
    0x80000003: "breakpoint",
    0x80000004: "single step",
    0x4000001F: "breakpoint (WOW64)",
    0x40010005: "control-C",
    0x406D1388: "thread name (not a crash)",
    0xC0000005: "access violation",
    0xC0000006: "in-page I/O error",
    0xC0000008: "invalid handle",
    0xC000000D: "invalid parameter (CRT invalid parameter handler)",
    0xC0000017: "out of memory",
    0xC000001D: "illegal instruction",
    0xC0000025: "noncontinuable exception",
    0xC0000026: "invalid exception disposition",
    0xC000008C: "array bounds exceeded",
    0xC000008D: "floating-point denormal operand",
    0xC000008E: "floating-point divide by zero",
    0xC000008F: "floating-point inexact result",
    0xC0000090: "floating-point invalid operation",
    0xC0000091: "floating-point overflow",
    0xC0000092: "floating-point stack check",
    0xC0000093: "floating-point underflow",
    0xC0000094: "integer divide by zero",
    0xC0000095: "integer overflow",
    0xC0000096: "privileged instruction",
    0xC00000FD: "stack overflow",
    0xC0000135: "DLL not found",
    0xC0000139: "entry point not found",
    0xC0000142: "DLL initialization failed",
    0xC0000194: "possible deadlock",
    0xC0000374: "heap corruption",
    0xC0000409: "fail-fast (STATUS_STACK_BUFFER_OVERRUN)",
    0xC0000420: "assertion failure",
    0xC0000602: "fail-fast exception",
    0xC06D007E: "delay-load module not found",
    0xC06D007F: "delay-load procedure not found",
    0xE0434352: ".NET (CLR) exception",
    0xE06D7363: "C++ exception (MSVC throw; also a Rust panic unwinding with panic=unwind)",
}

# winnt.h FAST_FAIL_* codes: parameter 0 of a C0000409 raised by __fastfail.
FAST_FAIL = {
    0: "FAST_FAIL_LEGACY_GS_VIOLATION", 1: "FAST_FAIL_VTGUARD_CHECK_FAILURE",
    2: "FAST_FAIL_STACK_COOKIE_CHECK_FAILURE", 3: "FAST_FAIL_CORRUPT_LIST_ENTRY",
    4: "FAST_FAIL_INCORRECT_STACK", 5: "FAST_FAIL_INVALID_ARG", 6: "FAST_FAIL_GS_COOKIE_INIT",
    7: "FAST_FAIL_FATAL_APP_EXIT", 8: "FAST_FAIL_RANGE_CHECK_FAILURE",
    9: "FAST_FAIL_UNSAFE_REGISTRY_ACCESS", 10: "FAST_FAIL_GUARD_ICALL_CHECK_FAILURE",
    11: "FAST_FAIL_GUARD_WRITE_CHECK_FAILURE", 12: "FAST_FAIL_INVALID_FIBER_SWITCH",
    13: "FAST_FAIL_INVALID_SET_OF_CONTEXT", 14: "FAST_FAIL_INVALID_REFERENCE_COUNT",
    18: "FAST_FAIL_INVALID_JUMP_BUFFER", 19: "FAST_FAIL_MRDATA_MODIFIED",
    20: "FAST_FAIL_CERTIFICATION_FAILURE", 21: "FAST_FAIL_INVALID_EXCEPTION_CHAIN",
    22: "FAST_FAIL_CRYPTO_LIBRARY", 23: "FAST_FAIL_INVALID_CALL_IN_DLL_CALLOUT",
    24: "FAST_FAIL_INVALID_IMAGE_BASE", 25: "FAST_FAIL_DLOAD_PROTECTION_FAILURE",
    26: "FAST_FAIL_UNSAFE_EXTENSION_CALL", 27: "FAST_FAIL_DEPRECATED_SERVICE_INVOKED",
    28: "FAST_FAIL_INVALID_BUFFER_ACCESS", 29: "FAST_FAIL_INVALID_BALANCED_TREE",
    30: "FAST_FAIL_INVALID_NEXT_THREAD", 31: "FAST_FAIL_GUARD_ICALL_CHECK_SUPPRESSED",
    32: "FAST_FAIL_APCS_DISABLED", 33: "FAST_FAIL_INVALID_IDLE_STATE",
    34: "FAST_FAIL_MRDATA_PROTECTION_FAILURE", 35: "FAST_FAIL_UNEXPECTED_HEAP_EXCEPTION",
    36: "FAST_FAIL_INVALID_LOCK_STATE", 37: "FAST_FAIL_GUARD_JUMPTABLE",
    38: "FAST_FAIL_INVALID_LONGJUMP_TARGET", 39: "FAST_FAIL_INVALID_DISPATCH_CONTEXT",
    40: "FAST_FAIL_INVALID_THREAD", 41: "FAST_FAIL_INVALID_SYSCALL_NUMBER",
    42: "FAST_FAIL_INVALID_FILE_OPERATION", 43: "FAST_FAIL_LPAC_ACCESS_DENIED",
    44: "FAST_FAIL_GUARD_SS_FAILURE", 45: "FAST_FAIL_LOADER_CONTINUITY_FAILURE",
    46: "FAST_FAIL_GUARD_EXPORT_SUPPRESSION_FAILURE", 47: "FAST_FAIL_INVALID_CONTROL_STACK",
    48: "FAST_FAIL_SET_CONTEXT_DENIED", 49: "FAST_FAIL_INVALID_IAT",
    50: "FAST_FAIL_HEAP_METADATA_CORRUPTION", 0xFFFFFFFF: "FAST_FAIL_INVALID_FAST_FAIL_CODE",
}
FAST_FAIL_NOTES = {
    7: "abort(): what Rust's std::process::abort and panic = \"abort\" raise",
    2: "/GS stack cookie overwritten",
}

ACCESS_KINDS = {0: "read", 1: "write", 8: "execute (DEP)"}

# Breakpad/crashpad put the signal number into ExceptionCode for POSIX dumps.
SIGNALS = {
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
    8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
    14: "SIGALRM", 15: "SIGTERM", 31: "SIGSYS", 0xFFFFFFFF: "dump requested (no crash)",
}


def describe_exception(code: int, params: list[int], platform: str = "windows") -> tuple[str, str | None]:
    """(name, detail) of an exception code and its parameters."""
    if platform not in ("windows", "unknown"):
        return SIGNALS.get(code, f"signal {code}"), None
    name = EXCEPTION_NAMES.get(code)
    if name is None:
        severity = code >> 30
        name = {3: "error", 2: "warning", 1: "informational", 0: "success"}[severity] + " status"
        if code & 0x20000000:
            name = "application-defined exception"
    detail = None
    if code in (0xC0000005, 0xC0000006) and len(params) >= 2:
        kind = ACCESS_KINDS.get(params[0], f"access kind {params[0]}")
        prep = {0: "from", 1: "to"}.get(params[0], "at")
        detail = f"{kind} {prep} {params[1]:#010x}"
    elif code == 0xC0000409 and params:
        sub = params[0]
        detail = f"{FAST_FAIL.get(sub, 'unknown subcode')} ({sub})"
        if sub in FAST_FAIL_NOTES:
            detail += f": {FAST_FAIL_NOTES[sub]}"
    return name, detail


# --- file names and times ----------------------------------------------------------------------

# ProcDump: PROCESSNAME_EXCEPTIONCODE_YYMMDD_HHMMSS.dmp (the code part is absent for -ma dumps).
_PROCDUMP_RE = re.compile(
    r"^(?P<process>.+?)(?:_(?P<code>[0-9A-Fa-f]{8}))?_(?P<date>\d{6})_(?P<time>\d{6})(?:_\d+)?\.dmp$", re.I)


def parse_procdump_name(name: str) -> tuple[str, str | None, _dt.datetime] | None:
    """(process, exception code or None, local time) from a ProcDump file name."""
    m = _PROCDUMP_RE.match(name)
    if not m:
        return None
    try:
        when = _dt.datetime.strptime(m["date"] + m["time"], "%y%m%d%H%M%S")
    except ValueError:
        return None
    code = m["code"].upper() if m["code"] else None
    return m["process"], code, when


def dump_time(path: Path, header_timestamp: int | None) -> tuple[str | None, str | None]:
    """(ISO time, source): the header's TimeDateStamp (UTC), else the ProcDump name (local time)."""
    if header_timestamp:
        when = _dt.datetime.fromtimestamp(header_timestamp, _dt.timezone.utc).replace(tzinfo=None)
        return when.isoformat(), "header"
    parsed = parse_procdump_name(path.name)
    if parsed is not None:
        return parsed[2].isoformat(), "file name"
    return None, None


DUMP_SUFFIXES = (".dmp", ".mdmp")


def collect_dumps(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Dump files named on the command line, and ``*.dmp``/``*.mdmp`` under directories
    (recursively, sorted).  A path that does not exist is a UsageError."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = []
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in files:
                    if f.lower().endswith(DUMP_SUFFIXES):
                        found.append(Path(root) / f)
            yield from sorted(found)
        elif p.exists():
            yield p
        else:
            raise UsageError("no such file or directory", p)


# --- where symbols are -------------------------------------------------------------------------

@dataclass
class Hit:
    found: bool | None  # None: not checked (e.g. the server could not be asked)
    where: str | None = None  # store path / URL / file where it was found
    form: str | None = None  # plain, compressed, pointer, file
    local_file: Path | None = None  # a readable local copy (for symbolizing)
    note: str | None = None


class SymbolLocator:
    """Looks keys up in local stores, build directories and HTTP stores, caching answers.

    * a local directory is searched as a symbol store (``name/INDEX/name``,
      compressed, ``file.ptr``; two-tier aware) and also as a build directory:
      a file of that name directly inside it whose identity matches;
    * an ``http(s)://`` store is asked with HEAD requests for the plain,
      compressed and file.ptr forms of the key (GET-less: nothing downloads).
    """

    def __init__(self, stores: list[str], build_dirs: list[str] | None = None, http_client=None):
        from symtool.store.layout import is_url

        self.local: list[Path] = []
        self.http: list[str] = []
        for s in stores:
            if is_url(s):
                self.http.append(s.rstrip("/"))
            else:
                self.local.append(Path(s))
        self.build_dirs = [Path(d) for d in (build_dirs or [])]
        self._client = http_client
        self._own_client = False
        self._cache: dict[tuple[str, str, str], Hit] = {}
        self._listing: dict[Path, dict[str, Path]] = {}
        self._identity: dict[Path, str | None] = {}

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()

    def lookup(self, name: str, index: str, kind: str) -> Hit:
        key = (name.lower(), index.upper(), kind)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._lookup(name, index, kind)
            self._cache[key] = hit
        return hit

    def _lookup(self, name: str, index: str, kind: str) -> Hit:
        from symtool.store.layout import MESSAGE, PLAIN, POINTER, lookup

        for store in self.local:
            try:
                found = lookup(store, name, index)
            except (OSError, FormatError):
                found = None
            if found is not None and found.form != MESSAGE:
                local = None
                if found.form == PLAIN:
                    local = found.path
                elif found.form == POINTER and Path(found.target).is_file():
                    local = Path(found.target)
                return Hit(True, str(found.path), found.form, local)
        for d in [*self.local, *self.build_dirs]:
            f = self._flat(d, name, index, kind)
            if f is not None:
                return Hit(True, str(f), "file", f)
        notes = []
        for url in self.http:
            try:
                hit = self._http_lookup(url, name, index)
            except NetworkError as err:
                notes.append(str(err))
                continue
            if hit is not None:
                return hit
        if notes:
            return Hit(None, note="; ".join(notes))
        return Hit(False)

    def _flat(self, directory: Path, name: str, index: str, kind: str) -> Path | None:
        listing = self._listing.get(directory)
        if listing is None:
            listing = {}
            try:
                with os.scandir(directory) as it:
                    for entry in it:
                        listing.setdefault(entry.name.lower(), Path(entry.path))
            except OSError:
                pass
            self._listing[directory] = listing
        candidate = listing.get(name.lower())
        if candidate is None or not candidate.is_file():
            return None
        if candidate not in self._identity:
            self._identity[candidate] = _file_index(candidate, kind)
        got = self._identity[candidate]
        return candidate if got is not None and got.upper() == index.upper() else None

    def _http_lookup(self, url: str, name: str, index: str) -> Hit | None:
        from symtool.store.http import HttpClient
        from symtool.store.layout import MESSAGE

        if self._client is None:
            self._client = HttpClient()
            self._own_client = True
        hit = self._client.server(url).locate(name, index)
        if hit is None or hit.form == MESSAGE:
            return None
        return Hit(True, hit.url, hit.form)


def _file_index(path: Path, kind: str) -> str | None:
    """Store INDEX of a local PDB or image (None if unreadable or of another kind)."""
    try:
        if kind == "pdb":
            from symtool.formats.pdb import read_pdb

            return read_pdb(path).index
        from symtool.formats.pe import read_pe

        return read_pe(path).index
    except (SymtoolError, OSError, ValueError, struct.error):
        return None


# --- symbolizing ---------------------------------------------------------------------------------

class SymbolizerCache:
    """Open PdbSymbolizers by path, least recently used closed first (bounded memory)."""

    def __init__(self, size: int = 8):
        self.size = size
        self._items: OrderedDict[str, object] = OrderedDict()
        self._failed: dict[str, str] = {}

    def get(self, path: Path):
        from symtool.formats.pdb_symbols import PdbSymbolizer

        key = os.fspath(path)
        if key in self._failed:
            raise FormatError(self._failed[key], key)
        sym = self._items.get(key)
        if sym is not None:
            self._items.move_to_end(key)
            return sym
        try:
            sym = PdbSymbolizer(key)
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


def _symbolize(cache: SymbolizerCache, pdb: Path, module: Module, rva: int) -> tuple[dict | None, str | None]:
    """(symbolization as a dict, note)."""
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
    return {
        "function": res.function,
        "file": res.file,
        "line": res.line,
        "frames": [{"function": f.function, "file": f.file, "line": f.line} for f in res.frames],
        "symbol": res.symbol,
        "symbol_offset": res.symbol_offset,
    }, None


# --- rows ----------------------------------------------------------------------------------------

ROW_KEYS = (
    "path", "error", "time", "time_source", "platform", "os", "cpu", "process_id", "exception_code", "exception_name",
    "exception_detail", "exception_address", "exception_parameters", "thread_id", "faulting_module",
    "faulting_offset", "function", "file", "line", "frames", "symbol", "symbol_offset", "bucket", "comments", "notes", "modules",
)


def _empty_row(path: Path) -> dict:
    row = {k: None for k in ROW_KEYS}
    row["path"] = str(path)
    row["frames"] = []
    row["comments"] = []
    row["notes"] = []
    row["modules"] = []
    return row


def _module_row(module: Module, locator: SymbolLocator, platform: str) -> dict:
    pdb_name = module.pdb_name
    entry = {
        "name": module.file_name,
        "path": module.name,
        "base": f"{module.base:#x}",
        "size": module.size,
        "timestamp": module.timestamp,
        "code_id": module.code_id,
        "debug_id": module.debug_id.index() if module.debug_id is not None else None,
        "codeview": module.codeview_kind,
        "pdb_name": pdb_name,
        "pdb_store_path": None,
        "pdb_found": None,
        "pdb_path": None,
        "image_store_path": None,
        "image_found": None,
        "image_path": None,
        "error": module.error,
    }
    if module.codeview_kind == "ELF" or platform not in ("windows", "unknown"):
        return entry  # ELF/Mach-O modules: no PDB, no PE store key
    if pdb_name and module.debug_id is not None:
        index = module.debug_id.index()
        try:
            check_file_name(pdb_name)
            entry["pdb_store_path"] = store_relpath(pdb_name, index)
            hit = locator.lookup(pdb_name, index, "pdb")
            entry["pdb_found"] = hit.found
            entry["pdb_path"] = hit.where
            if hit.note:
                entry["error"] = hit.note
        except SymtoolError as err:
            entry["pdb_found"] = False
            entry["error"] = err.message
    elif module.error is None:
        entry["error"] = "no CodeView record (the module names no PDB)"
        entry["pdb_found"] = False
    code_id = module.code_id
    if entry["name"] and code_id:
        try:
            entry["image_store_path"] = store_relpath(entry["name"], code_id)
            hit = locator.lookup(entry["name"], code_id, "pe")
            entry["image_found"] = hit.found
            entry["image_path"] = hit.where
        except SymtoolError as err:
            entry["image_found"] = False
            entry["error"] = entry["error"] or err.message
    return entry


def triage_one(path: Path, locator: SymbolLocator, symbolizers: SymbolizerCache) -> dict:
    """The row for one dump; a dump that cannot be read gives a row with ``error``."""
    row = _empty_row(path)
    try:
        dump = read_minidump(path)
    except FormatError as err:
        row["error"] = err.message
        row["time"], row["time_source"] = dump_time(path, None)
        return row
    except OSError as err:
        row["error"] = err.strerror or str(err)
        return row
    _fill_row(row, dump, path, locator, symbolizers)
    return row


def _fill_row(row: dict, dump: Minidump, path: Path, locator: SymbolLocator, symbolizers: SymbolizerCache) -> None:
    platform = dump.platform
    row["time"], row["time_source"] = dump_time(path, dump.timestamp)
    row["platform"] = platform
    if dump.system is not None:
        row["os"] = dump.system.os
        row["cpu"] = dump.system.cpu
    if platform not in ("windows", "unknown"):
        row["notes"].append(
            f"{dump.system.os.split(' ')[0] if dump.system else platform} minidump (Breakpad/crashpad): "
            "modules are identified by build id; PDB store lookups do not apply")
    row["comments"] = dump.comments
    row["process_id"] = dump.process_id
    row["modules"] = [_module_row(m, locator, platform) for m in dump.modules]
    exc = dump.exception
    if exc is None:
        row["notes"].append("no exception stream (a dump taken without a crash)")
        row["bucket"] = "no exception"
        return
    name, detail = describe_exception(exc.code, exc.parameters, platform)
    row["exception_code"] = exc.code_hex
    row["exception_name"] = name
    row["exception_detail"] = detail
    row["exception_address"] = f"{exc.address:#x}"
    row["exception_parameters"] = [f"{p:#x}" for p in exc.parameters]
    row["thread_id"] = exc.thread_id
    module = dump.module_at(exc.address)
    if module is None:
        row["bucket"] = f"{exc.code_hex} {exc.address:#x}"
        row["notes"].append("the exception address is in no loaded module")
        return
    rva = exc.address - module.base
    row["faulting_module"] = module.file_name
    row["faulting_offset"] = f"{rva:#x}"
    mrow = next((m for m in row["modules"] if m["base"] == f"{module.base:#x}"), None)
    pdb_hit = None
    if mrow is not None and mrow["pdb_found"] and module.pdb_name and module.debug_id is not None:
        pdb_hit = locator.lookup(module.pdb_name, module.debug_id.index(), "pdb")
    if pdb_hit is not None and pdb_hit.local_file is not None:
        sym, note = _symbolize(symbolizers, pdb_hit.local_file, module, rva)
        if sym is not None:
            row.update(sym)
        if note:
            row["notes"].append(note)
    elif pdb_hit is not None and pdb_hit.found:
        row["notes"].append(f"PDB found ({pdb_hit.form}: {pdb_hit.where}) but not as a local plain file: "
                            "not symbolized (run `symtool fetch --dump <file>` first)")
    if row["function"]:
        row["bucket"] = f"{exc.code_hex} {module.file_name}!{row['function']}"
    else:
        row["bucket"] = f"{exc.code_hex} {module.file_name}+{rva:#x}"


def triage(paths: Iterable[Path], stores: list[str], build_dirs: list[str] | None = None,
           http_client=None) -> Iterator[dict]:
    """Rows for the dumps in ``paths``, one at a time."""
    locator = SymbolLocator(stores, build_dirs, http_client)
    symbolizers = SymbolizerCache()
    try:
        for path in paths:
            yield triage_one(Path(path), locator, symbolizers)
    finally:
        symbolizers.close()
        locator.close()


def row_missing(row: dict) -> bool:
    """Something is missing or unreadable: the dump, or a PDB a module names."""
    if row.get("error"):
        return True
    return any(m["pdb_found"] is not True for m in row["modules"]
               if m.get("codeview") not in ("ELF",) and row.get("platform") in ("windows", "unknown", None))


# --- buckets ------------------------------------------------------------------------------------

@dataclass
class Bucket:
    key: str
    count: int = 0
    first: str | None = None
    last: str | None = None
    example: str | None = None
    exception_code: str | None = None
    exception_name: str | None = None
    faulting_module: str | None = None
    faulting_offset: str | None = None
    function: str | None = None

    def to_json(self) -> dict:
        return {"bucket": self.key, "count": self.count, "first": self.first, "last": self.last,
                "example": self.example, "exception_code": self.exception_code,
                "exception_name": self.exception_name, "faulting_module": self.faulting_module,
                "faulting_offset": self.faulting_offset, "function": self.function}


@dataclass
class Buckets:
    """Crash buckets accumulated row by row (memory grows with buckets, not dumps)."""

    buckets: dict[str, Bucket] = field(default_factory=dict)
    unreadable: int = 0
    dumps: int = 0
    missing: dict[str, int] = field(default_factory=dict)  # pdb store path -> dumps needing it

    def add(self, row: dict) -> None:
        self.dumps += 1
        if row.get("error"):
            self.unreadable += 1
            return
        for m in row["modules"]:
            if m["pdb_found"] is False and m["pdb_store_path"]:
                self.missing[m["pdb_store_path"]] = self.missing.get(m["pdb_store_path"], 0) + 1
        key = row.get("bucket") or "unknown"
        b = self.buckets.get(key)
        if b is None:
            b = self.buckets[key] = Bucket(key, example=row["path"], exception_code=row["exception_code"],
                                           exception_name=row["exception_name"],
                                           faulting_module=row["faulting_module"],
                                           faulting_offset=row["faulting_offset"], function=row["function"])
        b.count += 1
        t = row.get("time")
        if t:
            if b.first is None or t < b.first:
                b.first = t
            if b.last is None or t > b.last:
                b.last = t

    def ordered(self) -> list[Bucket]:
        return sorted(self.buckets.values(), key=lambda b: (-b.count, b.first or "", b.key))


__all__ = ["triage", "triage_one", "collect_dumps", "describe_exception", "parse_procdump_name",
           "Buckets", "Bucket", "SymbolLocator", "row_missing", "ROW_KEYS"]
