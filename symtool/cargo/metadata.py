"""The workspace a check is about: root manifest, members, config files, target.

The root comes from ``cargo metadata --format-version 1 --no-deps`` when cargo
works.  When it does not (no cargo, members missing, a value cargo rejects)
we walk up with :func:`symtool.settings.find_workspace_root`, so a manifest
whose members are missing is still checked.  Stdlib only.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from symtool.cargo.tomltext import Entry, find_line, scan
from symtool.errors import ConfigError
from symtool.settings import find_workspace_root, read_toml

CARGO_TIMEOUT = 120


@dataclass
class TomlFile:
    """A parsed TOML file plus what is needed to cite its lines."""

    path: Path
    data: dict[str, Any]
    text: str
    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> "TomlFile":
        data = read_toml(path)  # ConfigError (exit 2) for missing / not UTF-8 / not TOML
        text = path.read_bytes().decode("utf-8").lstrip("\ufeff")
        return cls(path, data, text, scan(text))

    @classmethod
    def from_text(cls, path: Path, text: str, data: dict[str, Any]) -> "TomlFile":
        return cls(path, data, text, scan(text))

    def cite(self, keypath: tuple[str, ...]) -> str:
        line = find_line(self.entries, keypath)
        return f"{self.path}:{line}" if line else str(self.path)


@dataclass
class Workspace:
    root: TomlFile  # the workspace root manifest (the only one whose profiles count)
    members: list[TomlFile]  # other member manifests that exist
    start: Path  # directory the build would run in (config files are found from here)
    via: str  # "cargo metadata" or "walk"


def _nearest_manifest(start: Path) -> Path:
    if start.is_file():
        return start
    for directory in (start, *start.parents):
        manifest = directory / "Cargo.toml"
        if manifest.is_file():
            return manifest
    raise ConfigError("no Cargo.toml in this directory or any parent", start)


def _cargo_metadata(manifest: Path, env: Mapping[str, str]) -> dict[str, Any] | None:
    cargo = env.get("CARGO") or shutil.which("cargo", path=env.get("PATH"))
    if not cargo:
        return None
    try:
        proc = subprocess.run(
            [cargo, "metadata", "--format-version", "1", "--no-deps", "--offline",
             "--manifest-path", str(manifest)],
            cwd=manifest.parent, env=dict(env), capture_output=True, timeout=CARGO_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("workspace_root"), str) else None


def _glob_members(root: TomlFile) -> list[Path]:
    ws = root.data.get("workspace")
    if not isinstance(ws, dict):
        return []
    base = root.path.parent
    excluded = {(base / e).resolve() for e in ws.get("exclude", []) if isinstance(e, str)}
    found: list[Path] = []
    for pattern in ws.get("members", []):
        if not isinstance(pattern, str) or not pattern or Path(pattern).is_absolute():
            continue
        try:
            dirs = sorted(base.glob(pattern)) if any(c in pattern for c in "*?[") else [base / pattern]
        except (ValueError, OSError):
            continue
        for d in dirs:
            manifest = d / "Cargo.toml"
            if manifest.is_file() and d.resolve() not in excluded:
                found.append(manifest)
    return found


def load_workspace(path: Path, env: Mapping[str, str] | None = None) -> Workspace:
    """Find and read the workspace root manifest for ``path`` (a directory or a manifest)."""
    env = os.environ if env is None else env
    path = Path(path)
    if not path.exists():
        raise ConfigError("no such file or directory", path)
    path = path.resolve()
    start = path.parent if path.is_file() else path
    nearest = _nearest_manifest(path)

    meta = _cargo_metadata(nearest, env)
    member_paths: list[Path] = []
    if meta is not None:
        root_path = Path(meta["workspace_root"]) / "Cargo.toml"
        via = "cargo metadata"
        for pkg in meta.get("packages", []):
            mp = pkg.get("manifest_path") if isinstance(pkg, dict) else None
            if isinstance(mp, str):
                member_paths.append(Path(mp))
    else:
        via = "walk"
        data = read_toml(nearest)
        if nearest.name != "Cargo.toml" or "workspace" in data:
            root_path = nearest
        else:
            root_path = find_workspace_root(nearest.parent.parent) if nearest.parent.parent != nearest.parent else None
            if root_path is None or "workspace" not in read_toml(root_path):
                root_path = nearest
    root = TomlFile.load(root_path)
    if via == "walk":
        member_paths = _glob_members(root)
    members = []
    seen = {root_path.resolve()}
    for mp in member_paths:
        if mp.resolve() in seen or not mp.is_file():
            continue  # missing members are cargo's problem, not a reason to stop checking
        seen.add(mp.resolve())
        members.append(TomlFile.load(mp))
    return Workspace(root=root, members=members, start=start, via=via)


def config_files(start: Path, env: Mapping[str, str]) -> list[Path]:
    """Cargo config files that apply to a build run in ``start``, highest priority first.

    ``.cargo/config.toml`` (or the legacy ``.cargo/config``; cargo prefers the
    legacy name when both exist) in ``start`` and every parent, then
    ``$CARGO_HOME/config.toml`` unless the walk already saw that directory.
    """
    found: list[Path] = []
    seen: set[Path] = set()

    def pick(directory: Path) -> None:
        try:
            key = directory.resolve()
        except OSError:
            return
        if key in seen:
            return
        seen.add(key)
        for name in ("config", "config.toml"):
            candidate = directory / name
            if candidate.is_file():
                found.append(candidate)
                return

    for directory in (start, *start.parents):
        pick(directory / ".cargo")
    home = env.get("CARGO_HOME")
    cargo_home = Path(home) if home else Path.home() / ".cargo"
    pick(cargo_home)
    return found


def cargo_version(env: Mapping[str, str]) -> tuple[int, int] | None:
    cargo = env.get("CARGO") or shutil.which("cargo", path=env.get("PATH"))
    if not cargo:
        return None
    try:
        out = subprocess.run([cargo, "-V"], env=dict(env), capture_output=True, text=True,
                             timeout=CARGO_TIMEOUT, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"cargo (\d+)\.(\d+)", out or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def host_triple(env: Mapping[str, str]) -> str:
    rustc = env.get("RUSTC") or shutil.which("rustc", path=env.get("PATH"))
    if rustc:
        try:
            out = subprocess.run([rustc, "-vV"], env=dict(env), capture_output=True, text=True,
                                 timeout=CARGO_TIMEOUT, stdin=subprocess.DEVNULL).stdout
            m = re.search(r"^host: (\S+)", out or "", re.M)
            if m:
                return m.group(1)
        except (OSError, subprocess.SubprocessError):
            pass
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower() or "x86_64")
    if sys.platform.startswith("win"):
        return f"{arch}-pc-windows-msvc"
    if sys.platform == "darwin":
        return f"{arch}-apple-darwin"
    return f"{arch}-unknown-linux-gnu"
