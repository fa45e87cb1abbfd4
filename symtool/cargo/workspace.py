"""Cargo workspace facts, worked out in one place the way cargo works them out.

* the workspace root manifest and its members (``members`` globs,
  ``exclude``, ``default-members``);
* the config files in cargo's precedence: in each directory from the one the
  build runs in up to ``/``, ``.cargo/config`` beats ``.cargo/config.toml``
  (cargo reads the legacy name and warns), nearer directories beat parents,
  then ``$CARGO_HOME``; ``CARGO_*`` environment variables beat files and
  ``--config`` values beat both;
* the target dir and where it came from;
* the target triples cargo builds for (``build.target``, ``CARGO_BUILD_TARGET``);
* each profile's output directories.

Used by ``symtool env`` in every new shell, so stdlib only and no cargo
subprocess.  Errors are :class:`symtool.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up of `id`, `symbolize`)
if TYPE_CHECKING:  # names of annotations only
    from typing import Any, Mapping, Sequence

from symtool.errors import ConfigError


def _toml():
    """tomllib, imported when TOML is first parsed: a run outside a workspace reads none (and the
    parser imports typing, a few ms of `symtool symbolize`'s start-up)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib


# Profiles whose output directory is not named after the profile.
PROFILE_DIR_NAMES = {"dev": "debug", "test": "debug", "release": "release", "bench": "release"}
BUILTIN_PROFILES = ("dev", "release", "test", "bench")


def toml_loads(text: str) -> dict[str, Any]:
    """``tomllib.loads``, with what hostile input makes it raise besides TOMLDecodeError (nesting deeper
    than the interpreter's stack: RecursionError; an integer over Python's digit limit: ValueError)
    raised as the TOMLDecodeError every caller already turns into one error line."""
    try:
        return _toml().loads(text)
    except _toml().TOMLDecodeError:
        raise
    except RecursionError:
        raise _toml().TOMLDecodeError("arrays or tables nested too deeply") from None
    except ValueError as err:
        raise _toml().TOMLDecodeError(str(err).split(";")[0]) from None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file (tolerating a UTF-8 BOM); ConfigError naming the file on failure."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", path) from None
    except OSError as err:
        raise ConfigError(err.strerror or str(err), path) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return toml_loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 ({err.reason} at byte {err.start})", path) from None
    except _toml().TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML: {err}", path) from None


def profile_dir_name(profile: str) -> str:
    """The directory cargo writes a profile's outputs to: dev/test -> debug, bench -> release."""
    return PROFILE_DIR_NAMES.get(profile, profile)


# --------------------------------------------------------------------------- root and members

def nearest_manifest(start: Path) -> Path | None:
    """``start`` itself when it is a file, else the first Cargo.toml in it or a parent."""
    if start.is_file():
        return start
    for directory in (start, *start.parents):
        manifest = directory / "Cargo.toml"
        if manifest.is_file():
            return manifest
    return None


def _table(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = data.get(name)
    return value if isinstance(value, dict) else None


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _excludes(root_dir: Path, workspace: dict[str, Any], manifest: Path) -> bool:
    """cargo's ``is_excluded``: under an ``exclude`` entry and under no literal ``members`` entry."""
    def under(entry: str) -> bool:
        prefix = os.path.normpath(root_dir / entry)
        return os.path.normpath(manifest) == prefix or os.path.normpath(manifest).startswith(prefix + os.sep)

    if any(under(m) for m in _strings(workspace.get("members"))):
        return False
    return any(under(e) for e in _strings(workspace.get("exclude")))


def find_root_manifest(start: Path | None = None) -> Path | None:
    """The workspace root manifest for ``start`` (a directory or a manifest), found as cargo does.

    The nearest Cargo.toml is the package.  It is the root when it has a
    ``[workspace]`` table; ``package.workspace`` names the root explicitly;
    otherwise the first manifest above it with a ``[workspace]`` that does not
    exclude it.  A package with no workspace above is its own root.  None when
    there is no Cargo.toml at all.
    """
    start = Path(start or Path.cwd()).absolute()
    nearest = nearest_manifest(start)
    if nearest is None:
        return None
    data = read_toml(nearest)
    if "workspace" in data:
        return nearest
    package = _table(data, "package") or {}
    if isinstance(package.get("workspace"), str):
        return Path(os.path.normpath(nearest.parent / package["workspace"] / "Cargo.toml"))
    for directory in nearest.parent.parents:
        candidate = directory / "Cargo.toml"
        if not candidate.is_file():
            continue
        above = read_toml(candidate)
        workspace = _table(above, "workspace")
        if workspace is not None:
            if not _excludes(directory, workspace, nearest):
                return candidate
            continue
        pointer = (_table(above, "package") or {}).get("workspace")
        if isinstance(pointer, str):
            return Path(os.path.normpath(directory / pointer / "Cargo.toml"))
    return nearest


def _expand(root_dir: Path, patterns: list[str]) -> list[Path]:
    """Member directories named by ``patterns`` (globs as the glob crate matches them:
    ``*`` also matches names starting with a dot), in pattern order, each once."""
    import glob  # only workspaces with members pay for it (symtool env runs in every shell)

    out: list[Path] = []
    extra = {"include_hidden": True} if sys.version_info >= (3, 11) else {}
    for pattern in patterns:
        joined = str(root_dir / pattern)
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(joined, **extra)) or [joined]  # cargo keeps a glob matching nothing
        else:
            matches = [joined]
        for match in matches:
            path = Path(os.path.normpath(match))
            if path not in out:
                out.append(path)
    return out


def workspace_members(manifest: Path, data: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """(member dirs, default member dirs) of the root ``manifest`` whose parsed text is ``data``.

    Members are the ``members`` globs minus what ``exclude`` excludes, plus the
    root package itself (first); directories without a Cargo.toml are left out
    (cargo refuses them; that is cargo's error to report).  Default members are
    ``default-members``, else the root package, else every member.  Path
    dependencies that cargo also makes members are not followed.
    """
    root_dir = manifest.parent
    root_dir = Path(os.path.normpath(root_dir))
    workspace = _table(data, "workspace")
    has_package = _table(data, "package") is not None
    members: list[Path] = [root_dir] if has_package else []
    if workspace is None:
        return members, list(members)
    for path in _expand(root_dir, _strings(workspace.get("members"))):
        if path in members or not (path / "Cargo.toml").is_file():
            continue
        if _excludes(root_dir, workspace, path / "Cargo.toml"):
            continue
        members.append(path)
    if "default-members" in workspace:
        defaults = [p for p in _expand(root_dir, _strings(workspace.get("default-members")))
                    if (p / "Cargo.toml").is_file()]
    elif has_package:
        defaults = [root_dir]
    else:
        defaults = list(members)
    return members, defaults


# --------------------------------------------------------------------------- config files

def cargo_home(env: Mapping[str, str]) -> tuple[Path, str]:
    """($CARGO_HOME or ~/.cargo, where it came from)."""
    if env.get("CARGO_HOME"):
        return Path(env["CARGO_HOME"]), "env:CARGO_HOME"
    return Path(os.path.expanduser("~")) / ".cargo", "default"


def _config_in(directory: Path) -> Path | None:
    # cargo reads the legacy `config` when both exist (and warns that it ignores config.toml).
    for name in ("config", "config.toml"):
        candidate = directory / name
        if candidate.exists():
            return candidate
    return None


def config_paths(start: Path, env: Mapping[str, str]) -> list[Path]:
    """Cargo config files for a build run in ``start``, highest priority first.

    One file per ``.cargo`` directory in ``start`` and each parent, then
    ``$CARGO_HOME``'s unless the walk already passed through it.
    """
    found: list[Path] = []
    seen: set[Path] = set()

    def visit(directory: Path) -> None:
        try:
            key = directory.resolve()
        except OSError:
            key = directory
        if key in seen:
            return
        seen.add(key)
        path = _config_in(directory)
        if path is not None:
            found.append(path)

    start = Path(start).absolute()
    for directory in (start, *start.parents):
        visit(directory / ".cargo")
    visit(cargo_home(env)[0])
    return found


@dataclass(frozen=True)
class ConfigLayer:
    """One source of cargo config values: a file or one ``--config`` argument."""

    data: dict[str, Any]
    base: Path  # relative paths written in this layer resolve against it
    path: Path | None = None  # the file, None for ``--config KEY=VALUE``
    cli: str | None = None  # the ``--config`` argument this layer came from

    def where(self, key: str) -> str:
        """How findings name a key of this layer: ``path:key`` or ``--config ARG``."""
        return f"{self.path}:{key}" if self.cli is None else f"--config {self.cli}"


def _cli_layer(arg: str, cwd: Path) -> ConfigLayer:
    """A ``--config`` argument: a path to an existing file, else one TOML ``KEY = VALUE``."""
    as_path = cwd / arg
    if arg and as_path.exists():
        # Relative paths in a --config file resolve as in any config file: against the
        # parent of the directory holding it.
        return ConfigLayer(read_toml(as_path), as_path.parent.parent, as_path, arg)
    try:
        data = toml_loads(arg)
    except _toml().TOMLDecodeError as err:
        raise ConfigError(f"--config {arg!r} is neither an existing file nor a TOML KEY=VALUE: {err}") from None
    return ConfigLayer(data, cwd, None, arg)


def load_config_layers(start: Path, env: Mapping[str, str], cli_configs: Sequence[str] = ()) -> list[ConfigLayer]:
    """Every config layer, highest priority first: ``--config`` (the last one first), then files."""
    start = Path(start).absolute()
    cli = [_cli_layer(arg, start) for arg in reversed(list(cli_configs))]
    files = [ConfigLayer(read_toml(p), p.parent.parent, p) for p in config_paths(start, env)]
    return cli + files


def dig(data: Any, keypath: tuple[str, ...]) -> tuple[bool, Any]:
    """(True, value) at ``keypath`` in nested tables, (False, None) where a table or key is missing."""
    for part in keypath:
        if not isinstance(data, dict) or part not in data:
            return False, None
        data = data[part]
    return True, data


def merged_value(layers: list[ConfigLayer], keypath: tuple[str, ...]) -> tuple[Any, list[ConfigLayer]]:
    """A key's value after cargo merges the layers, and the layers it came from.

    Scalars: the highest-priority layer wins.  Lists: concatenated, files
    nearest first, then ``--config`` in command-line order.  A list in one
    layer and a scalar in another is an error, as in cargo.
    """
    present = [(layer, value) for layer in layers for ok, value in [dig(layer.data, keypath)] if ok]
    if not present:
        return None, []
    key = ".".join(keypath)
    is_list = [isinstance(v, list) for _, v in present]
    if any(is_list) and not all(is_list):
        culprit = present[is_list.index(not is_list[0])][0]
        raise ConfigError(f"{key}: a list in one config file and a single value in another", culprit.path)
    if not is_list[0]:
        return present[0][1], [present[0][0]]
    files = [(layer, value) for layer, value in present if layer.cli is None]
    clis = [(layer, value) for layer, value in present if layer.cli is not None][::-1]
    merged: list[Any] = []
    for _, value in files + clis:
        merged += value
    return merged, [layer for layer, _ in files + clis]


# --------------------------------------------------------------------------- the facts

@dataclass
class CargoWorkspace:
    """What cargo would use for a build run in ``start``."""

    start: Path
    manifest: Path | None  # workspace root manifest; None outside any package
    manifest_data: dict[str, Any]
    members: list[Path]  # member dirs (the root package first, when there is one)
    default_members: list[Path]
    configs: list[ConfigLayer]  # highest priority first
    target_dir: Path | None  # None only outside a workspace with nothing configured
    target_dir_source: str  # "env:CARGO_TARGET_DIR", "<file>:build.target-dir", "--config ...", "default"
    triples: list[str]  # build.target; empty: the host, outputs directly under the target dir
    triples_source: str  # "env:CARGO_BUILD_TARGET", "<file>:build.target", "--config ...", "" (host)
    triples_layers: list[ConfigLayer] = field(default_factory=list)
    target_specs: list[str] = field(default_factory=list)  # build.target as written (triples or *.json paths)

    @property
    def root(self) -> Path | None:
        return self.manifest.parent if self.manifest is not None else None

    @property
    def config_files(self) -> list[Path]:
        return [layer.path for layer in self.configs if layer.cli is None and layer.path is not None]

    def profiles(self) -> list[str]:
        """Built-in profiles, then those defined in Cargo.toml and config files, in order seen."""
        names = list(BUILTIN_PROFILES)
        for data in [self.manifest_data, *(layer.data for layer in self.configs)]:
            table = _table(data, "profile")
            names += [n for n in (table or {}) if isinstance(n, str) and n not in names]
        return names

    def profile_dir(self, profile: str, triple: str | None = None) -> Path | None:
        """Where cargo writes ``profile``'s final artifacts for ``triple`` (None: a host build
        without ``--target``): ``<target>[/<triple>]/<dir>``, dev and test in ``debug``."""
        if self.target_dir is None:
            return None
        base = self.target_dir / _triple_name(triple) if triple else self.target_dir
        return base / profile_dir_name(profile)

    def profile_dirs(self, profile: str) -> list[Path]:
        """:meth:`profile_dir` for each triple cargo builds (the host dir when none is configured)."""
        if self.target_dir is None:
            return []
        return [d for d in (self.profile_dir(profile, t) for t in (self.triples or [None])) if d is not None]

    def deps_dirs(self, profile: str) -> list[Path]:
        return [d / "deps" for d in self.profile_dirs(profile)]


def _resolve(value: str, base: Path) -> Path:
    return Path(os.path.abspath(base / value))


def _target_dir(start: Path, root: Path | None, env: Mapping[str, str],
                layers: list[ConfigLayer]) -> tuple[Path | None, str]:
    """cargo's order: CARGO_TARGET_DIR, then build.target-dir from --config, CARGO_BUILD_TARGET_DIR,
    config files, then ``target`` beside the root manifest.  Environment values are relative to the
    directory cargo runs in, file values to the parent of their ``.cargo`` directory."""
    if "CARGO_TARGET_DIR" in env:
        if not env["CARGO_TARGET_DIR"]:
            raise ConfigError("CARGO_TARGET_DIR is set to an empty string")
        return _resolve(env["CARGO_TARGET_DIR"], start), "env:CARGO_TARGET_DIR"
    value, origin = merged_value(layers, ("build", "target-dir"))
    layer = origin[0] if origin else None
    if layer is not None and layer.cli is None and env.get("CARGO_BUILD_TARGET_DIR") is not None:
        layer = None  # the environment beats files, not --config
    if layer is None and "CARGO_BUILD_TARGET_DIR" in env:
        if not env["CARGO_BUILD_TARGET_DIR"]:
            raise ConfigError("CARGO_BUILD_TARGET_DIR is set to an empty string")
        return _resolve(env["CARGO_BUILD_TARGET_DIR"], start), "env:CARGO_BUILD_TARGET_DIR"
    if layer is not None:
        if not isinstance(value, str) or not value:
            raise ConfigError("build.target-dir must be a non-empty string", layer.path)
        return _resolve(value, layer.base), layer.where("build.target-dir")
    if root is None:
        return None, "default"
    return root / "target", "default"


def _triple_name(target: str) -> str:
    # A target given as a path to a JSON spec builds into a directory named by the file's stem.
    return Path(target).stem if target.endswith(".json") else target


def _triples(env: Mapping[str, str], layers: list[ConfigLayer]) -> tuple[list[str], str, list[ConfigLayer], list[str]]:
    value, origin = merged_value(layers, ("build", "target"))
    from_cli = any(layer.cli is not None for layer in origin)
    if env.get("CARGO_BUILD_TARGET") and not from_cli:
        raw = env["CARGO_BUILD_TARGET"].strip()
        if raw.startswith("[") and raw.endswith("]"):
            try:
                value = toml_loads(f"v = {raw}")["v"]
            except _toml().TOMLDecodeError as err:
                raise ConfigError(f"CARGO_BUILD_TARGET is not a TOML list: {err}") from None
        else:
            value = raw
        origin, source = [], "env:CARGO_BUILD_TARGET"
    elif origin:
        source = origin[0].where("build.target")
    else:
        return [], "", [], []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(t, str) and t for t in items):
        raise ConfigError("build.target must be a string or a list of strings",
                          origin[0].path if origin else None)
    return list(dict.fromkeys(_triple_name(t) for t in items)), source, origin, list(dict.fromkeys(items))


def find_workspace(start: Path | None = None, env: Mapping[str, str] | None = None,
                   cli_configs: Sequence[str] = ()) -> CargoWorkspace:
    """The workspace facts for a cargo build run in ``start`` (default: the current directory)."""
    env = os.environ if env is None else env
    start = Path(start or Path.cwd()).absolute()
    directory = start.parent if start.is_file() else start
    manifest = find_root_manifest(start)
    data = read_toml(manifest) if manifest is not None else {}
    members, defaults = workspace_members(manifest, data) if manifest is not None else ([], [])
    layers = load_config_layers(directory, env, cli_configs)
    target_dir, target_source = _target_dir(directory, manifest.parent if manifest else None, env, layers)
    triples, triples_source, triples_layers, specs = _triples(env, layers)
    return CargoWorkspace(directory, manifest, data, members, defaults, layers,
                          target_dir, target_source, triples, triples_source, triples_layers, specs)


__all__ = [
    "BUILTIN_PROFILES", "PROFILE_DIR_NAMES", "CargoWorkspace", "ConfigLayer", "cargo_home", "config_paths", "dig",
    "find_root_manifest", "find_workspace", "load_config_layers", "merged_value", "nearest_manifest",
    "profile_dir_name",
    "read_toml", "workspace_members",
]
