"""symtool settings, resolved in one place.

Sources, later ones winning:
1. ``[workspace.metadata.symtool]`` of the workspace root manifest (or
   ``[package.metadata.symtool]`` of a root package): ``stores`` (list of paths
   or URLs), ``cache`` (path), and the ``check`` policy keys.
2. Environment: ``SYMTOOL_STORE`` (one or more stores, separated by ``;``),
   ``SYMTOOL_CACHE``.
3. Command-line options (applied by the commands).

Kept light (stdlib only) because ``symtool env`` runs in every new shell.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up of `id`, `symbolize`)
if TYPE_CHECKING:  # names of annotations only
    from typing import Any

from symtool.cargo.workspace import find_root_manifest as find_workspace_root  # noqa: F401  (one rule, cargo's)
from symtool.cargo.workspace import read_toml  # noqa: F401  (re-exported: settings callers read TOML through it)
from symtool.errors import ConfigError


DEFAULT_MAX_FILE_SIZE = 4 << 30
"""Largest file symtool downloads, copies or expands unless ``SYMTOOL_MAX_FILE_SIZE`` says otherwise:
PDBs above a few GiB are rare, and a hostile server, file.ptr or CAB must not fill a disk."""


def max_file_size(environ: dict[str, str] | None = None) -> int:
    """``SYMTOOL_MAX_FILE_SIZE`` (bytes; a K, M or G suffix multiplies by 1024s), else the default.

    UsageError for anything but a positive whole number.
    """
    from symtool.errors import UsageError

    env = os.environ if environ is None else environ
    text = (env.get("SYMTOOL_MAX_FILE_SIZE") or "").strip()
    if not text:
        return DEFAULT_MAX_FILE_SIZE
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits or len(digits) > 15 or not all("0" <= c <= "9" for c in digits) or int(digits) == 0:
        raise UsageError(f"SYMTOOL_MAX_FILE_SIZE must be a positive number of bytes (e.g. 8G), not {text[:30]!r}")
    return int(digits) * scale


def metadata_table(manifest_data: dict[str, Any]) -> dict[str, Any]:
    """``[workspace.metadata.symtool]``, else ``[package.metadata.symtool]``, else {}."""
    for top in ("workspace", "package"):
        table = manifest_data.get(top, {})
        if isinstance(table, dict):
            meta = table.get("metadata", {})
            if isinstance(meta, dict) and isinstance(meta.get("symtool"), dict):
                return meta["symtool"]
    return {}


def default_cache_dir(platform: str | None = None, environ: dict[str, str] | None = None) -> str:
    """Per-user symbol cache: %LOCALAPPDATA%\\symtool\\cache on Windows, XDG elsewhere."""
    platform = platform or sys.platform
    env = os.environ if environ is None else environ
    if platform.startswith("win"):
        base = env.get("LOCALAPPDATA") or (env.get("USERPROFILE", "C:\\Users\\Default") + "\\AppData\\Local")
        return base.rstrip("\\") + "\\symtool\\cache"
    if platform == "darwin":
        return env.get("HOME", "~") + "/Library/Caches/symtool"
    base = env.get("XDG_CACHE_HOME") or (env.get("HOME", "~") + "/.cache")
    return base.rstrip("/") + "/symtool"


@dataclass
class Settings:
    """The settings of a run, and where each came from."""

    manifest: Path | None  # workspace root manifest, if any
    stores: list[str] = field(default_factory=list)
    stores_source: str = "default"
    cache: str = ""
    cache_source: str = "default"
    raw: dict[str, Any] = field(default_factory=dict)  # the whole metadata table (policy keys etc.)


def load_settings(start: Path | None = None, environ: dict[str, str] | None = None,
                  manifest: Path | None = None) -> Settings:
    env = os.environ if environ is None else environ
    if manifest is None:
        manifest = find_workspace_root(start)
    meta: dict[str, Any] = {}
    if manifest is not None:
        meta = metadata_table(read_toml(manifest))
    s = Settings(manifest=manifest, raw=meta)
    stores = meta.get("stores")
    if stores is not None:
        if isinstance(stores, str):
            stores = [stores]
        if not isinstance(stores, list) or not all(isinstance(x, str) for x in stores):
            raise ConfigError("[workspace.metadata.symtool] stores must be a list of strings", manifest)
        s.stores, s.stores_source = list(stores), f"{manifest}"
    if env.get("SYMTOOL_STORE"):
        s.stores = [x for x in env["SYMTOOL_STORE"].split(";") if x]
        s.stores_source = "env:SYMTOOL_STORE"
    cache = meta.get("cache")
    if cache is not None:
        if not isinstance(cache, str):
            raise ConfigError("[workspace.metadata.symtool] cache must be a string", manifest)
        base = manifest.parent if manifest is not None else Path.cwd()
        s.cache, s.cache_source = absolute_store(cache, base), f"{manifest}"
    if env.get("SYMTOOL_CACHE"):
        s.cache, s.cache_source = absolute_store(env["SYMTOOL_CACHE"], Path.cwd()), "env:SYMTOOL_CACHE"
    if not s.cache:
        s.cache = default_cache_dir(environ=env)
    return s


# --- store arguments ---------------------------------------------------------------------------

@dataclass
class ResolvedStores:
    """The stores a command works with, in lookup order, and where they came from."""

    stores: list[str]  # http(s) URLs and absolute directories
    source: str  # "--store"/"--server", the manifest path, "env:SYMTOOL_STORE", "env:_NT_SYMBOL_PATH" or "none"
    sympath_cache: str | None = None  # first downstream cache a srv*cache*server element named
    settings: Settings | None = None  # what was loaded to find them (its cache, for fetch)

    @property
    def local(self) -> list[str]:
        from symtool.store.layout import is_remote

        return [s for s in self.stores if not is_remote(s)]

    @property
    def administrable(self) -> list[str]:
        """Stores symtool can administer: directories and object storage (not HTTP servers)."""
        from symtool.store.layout import is_url

        return [s for s in self.stores if not is_url(s)]


def absolute_store(store: str, base: Path) -> str:
    """A store (or cache) directory as given, made absolute: ``~`` expanded, a
    relative directory taken relative to ``base``.

    URLs (any scheme), ``srv*`` elements, and drive-letter and UNC paths are
    left as written: ``symtool env`` writes those out for a Windows debugger on
    any host; :func:`check_location` decides whether this host can use them.
    """
    from symtool.store.layout import is_windows_path, url_scheme

    if url_scheme(store) or "*" in store or is_windows_path(store):
        return store
    store = os.path.expanduser(store)
    if os.path.isabs(store):
        return store
    return os.path.normpath(str(base / store))


def debugger_location(store: str, meta: dict[str, Any]) -> str | None:
    """Where a debugger reads ``store``: itself, or for object storage the public URL that
    ``[workspace.metadata.symtool] public-urls`` gives it (None when it has none)."""
    from symtool.store.layout import is_object_store

    if not is_object_store(store):
        return store
    urls = meta.get("public-urls")
    if not isinstance(urls, dict):
        return None
    url = urls.get(store) or urls.get(store.rstrip("/"))
    return url if isinstance(url, str) and url else None


def _on_windows(platform: str | None = None) -> bool:
    return (platform or sys.platform).startswith("win")


def check_location(location: str, what: str, source: str, *, platform: str | None = None) -> str:
    """``location`` if this host can use it as a store (or cache); UsageError (exit 2) otherwise.

    Refused: a ``scheme://`` other than http(s), s3 and azblob (``gs://bucket`` would
    otherwise become a local folder named ``s3:``), and, off Windows, a
    drive-letter or UNC path (it would become a folder named ``C:\\symbols``
    in the current directory).  ``source`` says where it was given.
    """
    from symtool.errors import UsageError
    from symtool.store.layout import SERVED_SCHEMES, is_windows_path, url_scheme

    scheme = url_scheme(location)
    if scheme is not None and scheme not in SERVED_SCHEMES:
        raise UsageError(f"{what} {location} (from {source}): symtool does not serve {scheme}:// locations; "
                         "give a directory, a share mounted here, an http(s):// symbol server, "
                         "s3://bucket/prefix or azblob://container/prefix")
    if scheme is None and is_windows_path(location) and not _on_windows(platform):
        raise UsageError(f"{what} {location} (from {source}) is a Windows drive-letter or UNC path, "
                         "which names nothing on this system: give the path where it is mounted here "
                         "(e.g. /mnt/symbols)")
    return location


def _expand_store_elements(items: list[str], base: Path) -> tuple[list[str], str | None]:
    """Store arguments -> stores.  A ``srv*cache*server`` element (``_NT_SYMBOL_PATH``
    syntax) gives its server, and its cache is remembered; a relative directory
    is taken relative to ``base``."""
    from symtool.store.sympath import parse_sympath

    out: list[str] = []
    cache: str | None = None
    for item in items:
        item = item.strip()
        if not item:
            continue
        if "*" in item:
            stores, first_cache = _sympath_stores(parse_sympath(item), base)
            out.extend(stores)
            cache = cache or first_cache
        else:
            out.append(absolute_store(item, base))
    return out, cache


def _sympath_stores(sympath, base: Path) -> tuple[list[str], str | None]:
    """A parsed symbol path's sources and first cache, relative directories made absolute."""
    cache = absolute_store(sympath.first_cache, base) if sympath.first_cache else None
    return [absolute_store(s, base) for s in sympath.sources], cache


def _checked(resolved: ResolvedStores) -> ResolvedStores:
    for store in resolved.stores:
        check_location(store, "store", resolved.source)
    return resolved


def resolve_stores(options: list[str] | None, *, option_name: str = "--store",
                   use_nt_symbol_path: bool = False, environ: dict[str, str] | None = None,
                   settings: Settings | None = None, start: Path | None = None) -> ResolvedStores:
    """The stores for a command, first source that names any winning:

    1. the command's own options (``--store``/``--server``, repeatable);
    2. ``SYMTOOL_STORE``, else ``[workspace.metadata.symtool] stores`` (relative
       directories there are relative to the manifest), as :func:`load_settings`
       reads them;
    3. with ``use_nt_symbol_path`` (commands that read symbols: fetch, dumps),
       the servers and directories of ``_NT_SYMBOL_PATH``, as debuggers use it.

    Any element may be a ``srv*cache*server`` element; its first cache is
    reported as ``sympath_cache``.  Relative directories (stores and caches)
    become absolute: from the manifest relative to its directory, others to
    the current one.  Every store is checked with :func:`check_location`
    (unknown schemes; Windows paths off Windows): UsageError.  Settings are
    loaded only when needed, so a command given ``--store`` works outside any
    workspace.
    """
    env = os.environ if environ is None else environ
    if options:
        stores, cache = _expand_store_elements(list(options), Path.cwd())
        return _checked(ResolvedStores(stores, option_name, cache, settings))
    if settings is None:
        settings = load_settings(start, env)
    if settings.stores:
        from_manifest = settings.manifest is not None and settings.stores_source != "env:SYMTOOL_STORE"
        base = settings.manifest.parent if from_manifest else Path.cwd()
        stores, cache = _expand_store_elements(settings.stores, base)
        return _checked(ResolvedStores(stores, settings.stores_source, cache, settings))
    if use_nt_symbol_path and env.get("_NT_SYMBOL_PATH", "").strip():
        from symtool.store.sympath import parse_sympath

        stores, cache = _sympath_stores(parse_sympath(env["_NT_SYMBOL_PATH"]), Path.cwd())
        return _checked(ResolvedStores(stores, "env:_NT_SYMBOL_PATH", cache, settings))
    return ResolvedStores([], "none", None, settings)


def resolve_cache(option: str | None, resolved: ResolvedStores, *, environ: dict[str, str] | None = None,
                  start: Path | None = None) -> tuple[str, str]:
    """The downstream cache of a command that downloads, and where it came from:
    ``--cache``, else ``[workspace.metadata.symtool] cache`` / ``SYMTOOL_CACHE``,
    else the first ``srv*cache*`` of the stores, else the per-user default.

    Always an absolute directory this host can write: a URL, an unknown scheme
    or (off Windows) a drive-letter or UNC path is a UsageError.
    """
    from symtool.errors import UsageError
    from symtool.store.layout import url_scheme

    if option:
        cache, source = absolute_store(option, Path.cwd()), "--cache"
    else:
        settings = resolved.settings or load_settings(start, os.environ if environ is None else environ)
        if settings.cache_source != "default":
            cache, source = settings.cache, settings.cache_source
        elif resolved.sympath_cache:
            cache, source = resolved.sympath_cache, resolved.source
        else:
            cache, source = absolute_store(settings.cache, Path.cwd()), "default"
    check_location(cache, "cache", source)
    if url_scheme(cache):
        raise UsageError(f"cache {cache} (from {source}) must be a directory, not a URL")
    return cache, source


def resolve_store(option: str | None, *, local_only: bool = False, environ: dict[str, str] | None = None,
                  start: Path | None = None) -> str:
    """The one store a writing or administering command works on: ``--store``,
    else the first configured store (the first directory with ``local_only``:
    administration needs a file system).  UsageError when there is none."""
    from symtool.errors import UsageError

    resolved = resolve_stores([option] if option else None, environ=environ, start=start)
    candidates = resolved.administrable if local_only else resolved.stores
    if not candidates:
        if option and local_only:
            raise UsageError("store administration needs a directory, a share or object storage "
                             "(s3://, azblob://), not an HTTP URL")
        raise UsageError("no store given: use --store, [workspace.metadata.symtool] stores or SYMTOOL_STORE")
    return candidates[0]
