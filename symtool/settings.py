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
