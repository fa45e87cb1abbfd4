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
from typing import Any

from symtool.cargo.workspace import find_root_manifest as find_workspace_root  # noqa: F401  (one rule, cargo's)
from symtool.cargo.workspace import read_toml  # noqa: F401  (re-exported: settings callers read TOML through it)
from symtool.errors import ConfigError


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
        path = Path(cache)
        if not path.is_absolute() and manifest is not None:
            path = manifest.parent / path
        s.cache, s.cache_source = str(path), f"{manifest}"
    if env.get("SYMTOOL_CACHE"):
        s.cache, s.cache_source = env["SYMTOOL_CACHE"], "env:SYMTOOL_CACHE"
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
        from symtool.store.layout import is_url

        return [s for s in self.stores if not is_url(s)]


def absolute_store(store: str, base: Path) -> str:
    """A store as given, with a relative directory taken relative to ``base``
    (URLs, absolute paths, UNC shares and ``srv*`` elements unchanged)."""
    from symtool.store.layout import is_url

    if is_url(store) or os.path.isabs(store) or store.startswith("\\\\") or "*" in store:
        return store
    return os.path.normpath(str(base / store))


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
            sympath = parse_sympath(item)
            out.extend(sympath.sources)
            cache = cache or sympath.first_cache
        else:
            out.append(absolute_store(item, base))
    return out, cache


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
    reported as ``sympath_cache``.  Relative directories become absolute:
    from the manifest relative to its directory, others to the current one.  Settings are loaded only when needed, so a
    command given ``--store`` works outside any workspace.
    """
    env = os.environ if environ is None else environ
    if options:
        stores, cache = _expand_store_elements(list(options), Path.cwd())
        return ResolvedStores(stores, option_name, cache, settings)
    if settings is None:
        settings = load_settings(start, env)
    if settings.stores:
        from_manifest = settings.manifest is not None and settings.stores_source != "env:SYMTOOL_STORE"
        base = settings.manifest.parent if from_manifest else Path.cwd()
        stores, cache = _expand_store_elements(settings.stores, base)
        return ResolvedStores(stores, settings.stores_source, cache, settings)
    if use_nt_symbol_path and env.get("_NT_SYMBOL_PATH", "").strip():
        from symtool.store.sympath import parse_sympath

        sympath = parse_sympath(env["_NT_SYMBOL_PATH"])
        return ResolvedStores(sympath.sources, "env:_NT_SYMBOL_PATH", sympath.first_cache, settings)
    return ResolvedStores([], "none", None, settings)


def resolve_store(option: str | None, *, local_only: bool = False, environ: dict[str, str] | None = None,
                  start: Path | None = None) -> str:
    """The one store a writing or administering command works on: ``--store``,
    else the first configured store (the first directory with ``local_only``:
    administration needs a file system).  UsageError when there is none."""
    from symtool.errors import UsageError

    resolved = resolve_stores([option] if option else None, environ=environ, start=start)
    candidates = resolved.local if local_only else resolved.stores
    if not candidates:
        if option and local_only:
            raise UsageError("store administration needs a directory or share, not an HTTP URL")
        raise UsageError("no store given: use --store, [workspace.metadata.symtool] stores or SYMTOOL_STORE")
    return candidates[0]
