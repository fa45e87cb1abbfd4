"""The workspace a check is about: root manifest, members, config files, target.

The root comes from ``cargo metadata --format-version 1 --no-deps`` when cargo
works.  When it does not (no cargo, members missing, a value cargo rejects)
the root and members are the ones :mod:`symtool.cargo.workspace` works out
without cargo, so a manifest whose members are missing is still checked.
Config files and the target always come from :mod:`symtool.cargo.workspace`.
Stdlib only.
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
from symtool.cargo.workspace import CargoWorkspace, find_workspace, nearest_manifest, read_toml
from symtool.errors import ConfigError, UsageError

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

    def line(self, keypath: tuple[str, ...]) -> int | None:
        return find_line(self.entries, keypath)

    def cite(self, keypath: tuple[str, ...]) -> str:
        line = self.line(keypath)
        return f"{self.path}:{line}" if line else str(self.path)


@dataclass
class Workspace:
    root: TomlFile  # the workspace root manifest (the only one whose profiles count)
    members: list[TomlFile]  # other member manifests that exist
    start: Path  # directory the build would run in (config files are found from here)
    via: str  # "cargo metadata" or "walk"
    facts: CargoWorkspace  # config files, target dir, triples as cargo resolves them from ``start``


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


def load_workspace(path: Path, env: Mapping[str, str] | None = None) -> Workspace:
    """Find and read the workspace root manifest for ``path`` (a directory or a manifest)."""
    env = os.environ if env is None else env
    path = Path(path)
    if not path.exists():
        raise ConfigError("no such file or directory", path)
    path = path.resolve()
    start = path.parent if path.is_file() else path
    nearest = nearest_manifest(path)
    if nearest is None:
        raise ConfigError("no Cargo.toml in this directory or any parent", start)
    facts = find_workspace(start, env)

    meta = _cargo_metadata(nearest, env)
    if meta is not None:
        root_path = Path(meta["workspace_root"]) / "Cargo.toml"
        via = "cargo metadata"
        member_paths = [Path(pkg["manifest_path"]) for pkg in meta.get("packages", [])
                        if isinstance(pkg, dict) and isinstance(pkg.get("manifest_path"), str)]
    else:
        # cargo refused (or is missing): check what cargo would read, as far as it can be read.
        via = "walk"
        root_path = nearest if nearest.name != "Cargo.toml" else (facts.manifest or nearest)
        member_paths = [d / "Cargo.toml" for d in facts.members]
    root = TomlFile.load(root_path)
    members = []
    seen = {root_path.resolve()}
    for mp in member_paths:
        if mp.resolve() in seen or not mp.is_file():
            continue  # missing members are cargo's problem, not a reason to stop checking
        seen.add(mp.resolve())
        members.append(TomlFile.load(mp))
    return Workspace(root=root, members=members, start=start, via=via, facts=facts)


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


# A triple as rustc spells them: 2 to 5 lowercase words, e.g. x86_64-pc-windows-msvc, wasm32-unknown-unknown,
# aarch64-apple-ios-sim, armv7-unknown-linux-gnueabihf.
_TRIPLE_SHAPE = re.compile(r"[a-z0-9_.]+(-[a-z0-9_.]+){1,4}")


def known_triples(env: Mapping[str, str], start: Path | None = None) -> list[str] | None:
    """``rustc --print target-list`` for the toolchain used in ``start``, cached per toolchain;
    None when rustc does not run."""
    from symtool.debugger.probe import CACHE_FILE, EnvCache, toolchain_key
    from symtool.settings import default_cache_dir

    rustc = env.get("RUSTC") or "rustc"
    cache = EnvCache(Path(default_cache_dir(sys.platform, dict(env))) / CACHE_FILE)
    lists = cache.section("target_lists")
    key = toolchain_key(str(start) if start else None, dict(env), rustc)
    if isinstance(lists.get(key), list):
        return lists[key]
    exe = shutil.which(rustc, path=env.get("PATH")) if not os.path.dirname(rustc) else rustc
    if not exe:
        return None
    try:
        proc = subprocess.run([exe, "--print", "target-list"], cwd=start, env=dict(env), capture_output=True,
                              text=True, timeout=CARGO_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    triples = proc.stdout.split() if proc.returncode == 0 else []
    if not triples:
        return None
    lists[key] = triples
    cache.dirty = True
    cache.save()
    return triples


def check_triples(triples: list[str], env: Mapping[str, str], start: Path | None = None) -> None:
    """UsageError (exit 2) for a triple rustc does not know, as cargo would stop on it.

    Paths to target spec files (``*.json``) are custom targets and pass.  Without
    rustc, a triple only has to look like one.
    """
    named = [t for t in triples if not t.endswith(".json")]
    if not named:
        return
    known = known_triples(env, start)
    for triple in named:
        if known is not None and triple not in known:
            raise UsageError(f"unknown target triple `{triple}` (not in `rustc --print target-list`)")
        if known is None and not _TRIPLE_SHAPE.fullmatch(triple):
            raise UsageError(f"`{triple}` is not a target triple (like x86_64-pc-windows-msvc)")
