"""The symbol cache: answers of the DWARF and PDB symbolizers kept on disk per debug-file
identity, so later runs and other processes read them from a memory map (docs/symcache.md).

Where: ``<local cache>/000SymCache/<kind>-<identity>.symc`` (the local cache is the
``cache`` setting / ``SYMTOOL_CACHE``; names from :mod:`symtool.store.layout`); the file
format is :mod:`symtool.formats.symcache`.

Filled in proportion to what is asked: a :class:`CachedSymbolizer` answers an address from
the file when an entry covers it, else asks the debug-file reader (which parses only what
that address needs) and remembers the answer; on close the new answers are merged with the
file as it is then (another process may have added to it) and written whole to a temp file
renamed over it: concurrent writers never leave a torn file, the last rename wins.  A file
that does not check out (truncated, foreign, other version, corrupt record) is set aside and
rebuilt from what this run asks; it is never trusted.

Bounded by ``SYMTOOL_CACHE_MAX`` bytes (default 1 GiB): after a write, the least recently
used identities (file modification time, touched when a file is used) are deleted until
the directory fits.  ``SYMTOOL_SYMBOL_CACHE=off`` (or a command's ``--no-symbol-cache``)
turns the cache off: every answer comes from the reader.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import struct
from pathlib import Path

from symtool import platform
from symtool.budgets import limit
from symtool.errors import ConfigError, SymtoolError
from symtool.formats import symcache as fmt
from symtool.fsutil import atomic_write_bytes
from symtool.store.layout import SYMCACHE_DIR, SYMCACHE_SUFFIX, symcache_file_name

ENV_SWITCH = "SYMTOOL_SYMBOL_CACHE"
ENV_MAX = "SYMTOOL_CACHE_MAX"
DEFAULT_MAX = 1 << 30
# New answers one run keeps for the cache (memory); later ones are answered, not kept.
MAX_PENDING = 1 << 20

_disabled_by_option = False


def disable() -> None:
    """A command's ``--no-symbol-cache``: no cache is read or written for the rest of the run."""
    global _disabled_by_option
    _disabled_by_option = True


def enabled(environ=None) -> bool:
    env = os.environ if environ is None else environ
    return not _disabled_by_option and env.get(ENV_SWITCH, "").strip().lower() not in ("off", "0", "no", "false")


def max_bytes(environ=None) -> int:
    """``SYMTOOL_CACHE_MAX``: a whole number of bytes (K/M/G suffixes), default 1 GiB."""
    env = os.environ if environ is None else environ
    text = (env.get(ENV_MAX) or "").strip()
    if not text:
        return DEFAULT_MAX
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit() or not digits.isascii() or len(digits) > 15:
        raise ConfigError(f"{ENV_MAX} must be a whole number of bytes (e.g. 512M), not {text[:30]!r}")
    return int(digits) * scale


_dir_of_process: Path | None = None


def cache_dir(environ=None) -> Path:
    """The symbol cache directory inside the local cache (the settings are read once per
    process: ``stack`` opens a symbolizer per module)."""
    global _dir_of_process
    from symtool.settings import load_settings

    if environ is not None:
        return Path(load_settings(environ=environ).cache) / SYMCACHE_DIR
    if _dir_of_process is None:
        _dir_of_process = Path(load_settings().cache) / SYMCACHE_DIR
    return _dir_of_process


class CacheEntry:
    """One cache file; ``used`` is its modification time: when it was last written or used.
    (Not a dataclass: this module is imported by every warm `symbolize` run.)"""

    __slots__ = ("path", "size", "used")

    def __init__(self, path: Path, size: int, used: float):
        self.path, self.size, self.used = path, size, used

    def __repr__(self) -> str:
        return f"CacheEntry({self.path!r}, size={self.size}, used={self.used})"

    def __eq__(self, other) -> bool:
        return isinstance(other, CacheEntry) and (self.path, self.size, self.used) == (other.path, other.size, other.used)

    __hash__ = None


def entries(directory: Path) -> list[CacheEntry]:
    """The cache files of ``directory``, least recently used first."""
    out = []
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for name in names:
        if not name.endswith(SYMCACHE_SUFFIX):
            continue
        path = directory / name
        with contextlib.suppress(OSError):
            st = path.lstat()
            out.append(CacheEntry(path, st.st_size, st.st_mtime))
    out.sort(key=lambda e: (e.used, e.path.name))
    return out


# A writer's temp file older than this was left by a process that died before its rename.
STALE_TEMP_SECONDS = 3600


def _remove_stale_temps(directory: Path) -> None:
    import time

    from symtool.fsutil import TMP_PREFIX

    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if name.startswith(TMP_PREFIX):
                with contextlib.suppress(OSError):
                    path = directory / name
                    if time.time() - path.lstat().st_mtime > STALE_TEMP_SECONDS:
                        platform.unlink(path, missing_ok=True)


def trim(directory: Path, bound: int, keep: Path | None = None) -> list[CacheEntry]:
    """Delete the least recently used cache files until the rest fit in ``bound`` bytes
    (``keep``, the file just written, goes last), and temp files of writers that died.  The
    cache files deleted."""
    _remove_stale_temps(directory)
    files = entries(directory)
    files.sort(key=lambda e: e.path == keep)  # stable: LRU order otherwise
    total = sum(e.size for e in files)
    removed = []
    for e in files:
        if total <= bound:
            break
        with contextlib.suppress(FileNotFoundError):
            platform.unlink(e.path)
            removed.append(e)
        total -= e.size
    return removed


def remove_all(directory: Path) -> list[CacheEntry]:
    files = entries(directory)
    for e in files:
        with contextlib.suppress(FileNotFoundError):
            platform.unlink(e.path)
    return files


def merge_ranges(old: dict[tuple[int, int], object], new: dict[tuple[int, int], object]) \
        -> dict[tuple[int, int], object]:
    """``old`` and ``new`` entries as disjoint ranges (what the file format holds).  The readers'
    ranges are cells of one partition of the address space, so they coincide or are disjoint;
    where they do not (a reader that could only vouch for a single address, a file from an
    older reader), an old entry overlapping a new one is dropped and overlapping new ones are
    cut where the previous one ends: every address keeps an answer the reader gave for it."""
    out: dict[tuple[int, int], object] = {}
    fresh = sorted(new)
    starts = [s for s, _ in fresh]
    reaches = []  # the furthest end of the new ranges up to each one
    for _, end in fresh:
        reaches.append(max(end, reaches[-1]) if reaches else end)
    for (start, end), result in old.items():
        k = bisect.bisect_left(starts, end) - 1  # the last new range starting before ``end``
        if k < 0 or reaches[k] <= start:
            out[(start, end)] = result
    reach = -1
    for start, end in fresh:
        if end <= reach:
            continue
        out[(max(start, reach), end)] = new[(start, end)]
        reach = end
    return out


class CachedSymbolizer:
    """A symbolizer (``.symbolize(rva)``, ``.close()``) whose answers go through the cache file
    of its identity.  The debug-file reader is opened on the first address the file does not
    answer (a warm run never parses the debug file); until then the attributes in ``known``
    (read cheaply from the file's headers) stand in for the reader's, and every other attribute
    opens it."""

    def __init__(self, open_reader, path: Path, identity: str, bound: int, known: dict | None = None):
        self._open_reader = open_reader
        self._inner = None
        self._open_error: Exception | None = None
        self._known = dict(known or {})
        self.cache_path = path
        self._identity = identity
        self._bound = bound
        # [start, end) RVA range -> the reader's answer for its addresses (Symbolized or None).
        self._pending: dict[tuple[int, int], object] = {}
        self._file: fmt.CacheFile | None = None
        self.rebuilt: str | None = None  # why an existing file was not trusted (it is rebuilt)
        self.damaged: str | None = None  # why a record of a trusted file was not
        self.hits = 0
        try:
            self._file = fmt.CacheFile(path, identity, limit("SYMCACHE_FILE"))
            with contextlib.suppress(OSError):
                os.utime(path)  # used now: the last to be evicted
        except FileNotFoundError:
            pass
        except (fmt.CacheFileError, OSError, ValueError) as err:
            self.rebuilt = str(err)

    @property
    def reader(self):
        """The debug-file reader, opened now if it was not (a file that failed to open fails
        again at once: it is not parsed again for every address)."""
        if self._inner is None:
            if self._open_error is not None:
                raise self._open_error
            try:
                self._inner = self._open_reader()
            except Exception as err:
                self._open_error = err
                raise
        return self._inner

    @property
    def notes(self) -> list[str]:
        return self._inner.notes if self._inner is not None and hasattr(self._inner, "notes") else []

    def __enter__(self) -> "CachedSymbolizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._inner is None and name in self._known:
            return self._known[name]
        return getattr(self.reader, name)

    def symbolize(self, rva: int):
        if self._file is not None:
            try:
                found, result = self._file.lookup(rva)
            except (fmt.CacheFileError, struct.error, ValueError, IndexError) as err:
                # One damaged record: answered by the reader, and replaced when the file is
                # written (entries whose records do not check out are not carried over).
                self.damaged = str(err)
            else:
                if found:
                    self.hits += 1
                    return result
        reader = self.reader
        if hasattr(reader, "symbolize_extent"):
            result, start, end = reader.symbolize_extent(rva)
        else:
            result, start, end = reader.symbolize(rva), rva, rva + 1
        if len(self._pending) < MAX_PENDING and 0 <= start <= rva < end <= fmt.ADDRESS_END:
            try:
                fmt.encode_record(result, fmt.StringTable())
            except (struct.error, ValueError, OverflowError):
                pass  # a value the format cannot hold: answered, not cached
            else:
                self._pending[(start, end)] = result
        return result

    def symbolize_many(self, rvas) -> list:
        """:meth:`symbolize` of each RVA: those the file answers in one pass over it
        (CacheFile.lookup_many), the others one by one as :meth:`symbolize` does them."""
        if self._file is None:
            return [self.symbolize(rva) for rva in rvas]
        try:
            found = self._file.lookup_many(rvas)
        except (fmt.CacheFileError, struct.error, ValueError, IndexError):
            return [self.symbolize(rva) for rva in rvas]
        miss = fmt.MISS
        out = [self.symbolize(rva) if answer is miss else answer for rva, answer in zip(rvas, found)]
        self.hits += len(found) - sum(answer is miss for answer in found)
        return out

    def render_many(self, rvas, renderer) -> list:
        """The text ``renderer`` words for :meth:`symbolize` of each RVA, as a tuple of pieces:
        those the file answers worded by the file (CacheFile.render_many: what a warm
        `symbolize` prints, without making answer objects), the others' answers, as
        :meth:`symbolize` gives them, by ``renderer.block``."""
        block = renderer.block
        if self._file is None:
            return [(block(self.symbolize(rva)),) for rva in rvas]
        try:
            found = self._file.render_many(rvas, renderer)
        except (fmt.CacheFileError, struct.error, ValueError, IndexError):
            return [(block(self.symbolize(rva)),) for rva in rvas]
        miss = fmt.MISS
        out = [(block(self.symbolize(rva)),) if pieces is miss else pieces for rva, pieces in zip(rvas, found)]
        self.hits += len(found) - found.count(miss)
        return out

    def flush(self) -> None:
        """Write the answers found since the last flush, merged with the file as it is now."""
        if not self._pending or self.notes:
            # Nothing new, or a run missing split units (.dwo refused or absent): its answers
            # lack inline frames another run would find; they are not kept.
            self._pending.clear()
            return
        merged: dict[tuple[int, int], object] = {}
        if self.rebuilt is None:
            with contextlib.suppress(fmt.CacheFileError, OSError, ValueError, struct.error):
                current = fmt.CacheFile(self.cache_path, self._identity, limit("SYMCACHE_FILE"))
                try:
                    merged = current.entries()
                finally:
                    current.close()
        merged = merge_ranges(merged, self._pending)
        self._pending.clear()
        data = fmt.build(self._identity, merged)
        if self._file is not None:  # unmapped before the rename (Windows cannot replace a mapped file)
            self._file.close()
            self._file = None
        if len(data) > min(self._bound, limit("SYMCACHE_FILE")):
            return  # one identity larger than the whole bound: not cached
        with contextlib.suppress(OSError):
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.cache_path, data)
            self.rebuilt = None
            trim(self.cache_path.parent, self._bound, keep=self.cache_path)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._inner is not None:
                self._inner.close()


def cached(open_reader, kind: str, identity: str | None, known: dict | None = None, environ=None):
    """A symbolizer answering through the cache file of debug file ``kind``/``identity``
    (``open_reader()`` opens the reader when an address is not in the file), or the reader
    itself, opened now, when the cache is off, the file has no identity (an ELF without a build
    id) or the cache directory setting is unusable."""
    if not enabled(environ) or not identity:
        return open_reader()
    try:
        name = symcache_file_name(kind, identity)
        directory = cache_dir(environ)
        bound = max_bytes(environ)
    except ConfigError:
        raise  # SYMTOOL_CACHE_MAX or the cache setting is wrong: the user should know
    except (SymtoolError, ValueError, OSError):
        return open_reader()  # no usable cache directory: answers come from the reader
    return CachedSymbolizer(open_reader, directory / name, f"{kind}:{identity}", bound, known)


__all__ = ["CachedSymbolizer", "CacheEntry", "cached", "cache_dir", "disable", "enabled", "entries",
           "max_bytes", "remove_all", "trim"]
