"""Effective ``debug`` / ``split-debuginfo`` / ``strip`` of a cargo profile, the way cargo decides.

Per profile, per key, the first of (cargo's own precedence):

1. ``CARGO_PROFILE_<NAME>_<KEY>`` environment variables,
2. ``[profile.<name>]`` in cargo config files, nearest directory first, then
   ``$CARGO_HOME/config.toml``,
3. ``[profile.<name>]`` in the workspace root Cargo.toml,

then the same for the profile it ``inherits`` from, up to the built-in
``release`` / ``dev`` defaults.  cargo >= 1.77 then strips debuginfo when
debug is off and strip is unset; ``split-debuginfo`` is passed only when debug
is on and the target supports the mode (MSVC: only "packed").  Finally
rustflags come after the profile flags on rustc's command line and win: the
first found of ``CARGO_ENCODED_RUSTFLAGS``, ``RUSTFLAGS``,
``target.<triple>.rustflags`` (+ matching ``target.'cfg(..)'``),
``build.rustflags``.

Stdlib only: ``symtool check`` without ``--fix`` never needs tomlkit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from symtool.cargo.metadata import TomlFile, Workspace, check_triples
from symtool.cargo.workspace import dig
from symtool.errors import ConfigError, UsageError
from symtool.settings import metadata_table

KEYS = ("debug", "split-debuginfo", "strip")
DEBUG_LEVELS = ("none", "line-directives-only", "line-tables-only", "limited", "full")
STRIP_LEVELS = ("none", "debuginfo", "symbols")
SPLIT_MODES = ("off", "packed", "unpacked")
BUILTIN_PARENT = {"dev": None, "release": None, "test": "dev", "bench": "release"}
DEFAULT_POLICY = {"debug": "line-tables-only", "split-debuginfo": "packed", "strip": "none"}

CARGO_DEBUG_EXPECTED = ('expected a boolean, 0, 1, 2, "none", "limited", "full", '
                        '"line-tables-only", or "line-directives-only"')
RUSTC_EXPECTED = {
    "debuginfo": "either an integer (0, 1, 2), `none`, `line-directives-only`, `line-tables-only`, "
                 "`limited`, or `full` was expected",
    "strip": "either `none`, `debuginfo`, or `symbols` was expected",
    "split-debuginfo": "one of supported split-debuginfo modes (`off`, `packed`, or `unpacked`) was expected",
}
MEMBER_PROFILE_WARNING = "profiles for the non root package will be ignored, specify profiles at the workspace root"


# ---------------------------------------------------------------- spellings
def _serde_what(raw: Any) -> tuple[str, str]:
    """("invalid type"/"invalid value" noun phrase) in serde's words, as cargo prints them."""
    if isinstance(raw, bool):
        return "type", f"boolean `{str(raw).lower()}`"
    if isinstance(raw, int):
        return "value", f"integer `{raw}`"
    if isinstance(raw, float):
        return "type", f"floating point `{raw}`"
    if isinstance(raw, str):
        return "value", f'string "{raw}"'
    if isinstance(raw, dict):
        return "type", "map"
    if isinstance(raw, list):
        return "type", "sequence"
    return "type", f"{type(raw).__name__}"


def normalize(key: str, raw: Any) -> tuple[str | None, str | None]:
    """(normalized value, None) or (None, the error cargo/rustc would print)."""
    if key == "debug":
        if isinstance(raw, bool):  # before int: True == 1 in Python, but cargo maps true to "full"
            return ("full" if raw else "none"), None
        if isinstance(raw, int) and raw in (0, 1, 2):
            return ("none", "limited", "full")[raw], None
        if isinstance(raw, str) and raw in DEBUG_LEVELS:
            return raw, None
        kind, what = _serde_what(raw)
        if isinstance(raw, int) or isinstance(raw, str):
            kind = "value"
        return None, f"invalid {kind}: {what}, {CARGO_DEBUG_EXPECTED}"
    if key == "strip":
        if isinstance(raw, bool):
            return ("symbols" if raw else "none"), None
        if isinstance(raw, str):
            if raw in STRIP_LEVELS:
                return raw, None
            return None, f"incorrect value `{raw}` for codegen option `strip` - {RUSTC_EXPECTED['strip']}"
        return None, f"invalid type: {_serde_what(raw)[1]}, expected a boolean or string"
    if key == "split-debuginfo":
        if isinstance(raw, str):
            if raw in SPLIT_MODES:
                return raw, None
            return None, (f"`{raw}` is not a split-debuginfo mode ({', '.join(SPLIT_MODES)}): "
                          "cargo silently drops it")
        return None, f"invalid type: {_serde_what(raw)[1]}, expected a string"
    raise ValueError(key)


def _rustc_value(option: str, raw: str) -> tuple[str | None, str | None]:
    if option == "debuginfo":
        named = {"0": "none", "1": "limited", "2": "full"}
        value = named.get(raw, raw)
        ok = value in DEBUG_LEVELS
    elif option == "strip":
        value, ok = raw, raw in STRIP_LEVELS
    else:
        value, ok = raw, raw in SPLIT_MODES
    if ok:
        return value, None
    return None, f"incorrect value `{raw}` for codegen option `{option}` - {RUSTC_EXPECTED[option]}"


def env_value(text: str) -> Any:
    """cargo reads ``CARGO_PROFILE_*`` values as booleans / integers when they look like one."""
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    return text


def env_name(*parts: str) -> str:
    return "_".join(p.upper().replace("-", "_").replace(".", "_") for p in parts)


# ---------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    triple: str

    @property
    def parts(self) -> list[str]:
        return self.triple.split("-")

    @property
    def is_msvc(self) -> bool:
        return self.triple.endswith("-msvc")

    @property
    def is_apple(self) -> bool:
        return "-apple-" in self.triple

    @property
    def os(self) -> str:
        p = self.parts
        if self.is_apple:
            return {"darwin": "macos"}.get(p[2] if len(p) > 2 else "", p[2] if len(p) > 2 else "macos")
        if "windows" in p:
            return "windows"
        for os_name in ("linux", "android", "freebsd", "netbsd", "openbsd", "dragonfly", "solaris",
                        "illumos", "fuchsia", "wasi", "hermit", "redox", "haiku", "uefi", "none", "emscripten"):
            if os_name in p or any(x.startswith(os_name) for x in p[1:]):
                return os_name
        return "none"

    @property
    def env(self) -> str:
        last = self.parts[-1]
        for env in ("msvc", "gnu", "musl", "sgx", "uclibc", "newlib", "ohos", "sim", "macabi"):
            if last.startswith(env):
                return env
        return ""

    @property
    def family(self) -> str:
        if self.os == "windows" or self.os == "uefi":
            return "windows"
        if self.os in ("none", "uefi") or self.triple.startswith("wasm"):
            return "wasm" if self.triple.startswith("wasm") else ""
        return "unix"

    def split_modes(self) -> tuple[tuple[str, ...], str]:
        """(modes rustc accepts on stable for this target, the default)."""
        if self.is_msvc:
            return ("packed",), "packed"
        if self.os == "windows":
            return ("off",), "off"
        if self.is_apple:
            return SPLIT_MODES, "unpacked"
        return SPLIT_MODES, "off"

    def cfg(self) -> dict[str, set[str]]:
        arch = self.parts[0]
        width = "64" if any(arch.startswith(a) for a in ("x86_64", "aarch64", "powerpc64", "riscv64",
                                                             "s390x", "sparc64", "mips64", "loongarch64",
                                                             "wasm64")) else "32"
        facts = {
            "target_arch": {"x86" if re.fullmatch(r"i[3-6]86", arch) else arch},
            "target_os": {self.os},
            "target_env": {self.env},
            "target_vendor": {self.parts[1] if len(self.parts) > 2 else "unknown"},
            "target_family": {self.family} if self.family else set(),
            "target_pointer_width": {width},
        }
        if self.family:
            facts[self.family] = {""}
        return facts


MAX_CFG_DEPTH = 64  # far beyond any real cfg(); a hostile one 5,000 deep would exhaust the stack


def cfg_matches(expr: str, target: Target) -> bool:
    """Evaluate a ``cfg(...)`` target key for ``target`` (unknown predicates are false)."""
    tokens = re.findall(r'[A-Za-z_][A-Za-z0-9_]*|"[^"]*"|[(),=]', expr)
    pos = 0
    facts = target.cfg()

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("cfg ends early")
        tok = tokens[pos]
        pos += 1
        return tok

    def pred(depth: int = 0) -> bool:
        nonlocal pos
        if depth > MAX_CFG_DEPTH:
            raise ConfigError(f"target key {expr[:40]}... nests all/any/not more than {MAX_CFG_DEPTH} deep")
        name = take()
        if name in ("all", "any", "not") and pos < len(tokens) and tokens[pos] == "(":
            take()
            results = []
            while tokens[pos] != ")":
                results.append(pred(depth + 1))
                if tokens[pos] == ",":
                    take()
            take()
            if name == "all":
                return all(results)
            if name == "any":
                return any(results)
            return len(results) == 1 and not results[0]
        if pos < len(tokens) and tokens[pos] == "=":
            take()
            value = take().strip('"')
            return value in facts.get(name, set())
        return "" in facts.get(name, set())

    try:
        if take() != "cfg" or take() != "(":
            return False
        result = pred()
        return take() == ")" and pos == len(tokens) and result
    except (ValueError, IndexError):
        return False


# ---------------------------------------------------------------- settings
@dataclass
class Source:
    """Where a value was written."""

    kind: str  # "manifest" | "config" | "env" | "default" | "implicit" | "rustflags"
    text: str  # what findings print: "path:line", "env:NAME", "rustflags:...", "default (...)"
    file: Path | None = None
    keypath: tuple[str, ...] = ()  # keypath inside ``file`` (manifest/config)
    profile: str | None = None  # profile table holding it (manifest/config/env)
    line: int | None = None  # line in ``file`` (1-based), when known


@dataclass
class Value:
    key: str  # "debug", "strip", "split-debuginfo", "package.<spec>.debug", "build-override.debug"
    raw: Any  # as written (None for defaults)
    value: str | None  # normalized, None when invalid
    source: Source
    error: str | None = None  # cargo's / rustc's words when the value is rejected
    sub: tuple[str, ...] = ()  # keypath inside [profile.<name>], e.g. ("package", "foo@1.0", "debug")
    flag: "RustFlag | None" = None  # when it comes from rustflags

    @property
    def shown(self) -> str:
        if self.value is not None:
            return self.value
        return self.raw if isinstance(self.raw, str) else repr(self.raw)


@dataclass
class Finding:
    key: str
    value: Any
    source: str
    message: str
    fix: str
    edit: tuple[tuple[str, ...], str] | None = None  # (keypath in the root Cargo.toml, new value)
    file: Path | None = None  # the file the value is written in (None: environment, defaults)
    line: int | None = None
    raw: Any = None  # the value as written (None: not written anywhere, a default)
    target: str = ""  # the triple the profile was judged for

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": _jsonable(self.value), "target": self.target, "source": self.source,
                "file": str(self.file) if self.file is not None else None, "line": self.line,
                "message": self.message, "fix": self.fix}

    def shown(self) -> str:
        """The finding's value as it would be written in TOML: ``debug = 2``, ``strip = "symbols"``."""
        if self.key.startswith("package."):  # package.<spec>.<key>: a spec may hold dots (foo@1.0.2)
            spec, key = self.key[len("package."):].rsplit(".", 1)
            parts: tuple[str, ...] = ("package", spec, key)
        elif self.key.startswith(("build-override.", "profile.")):  # profile names hold no dots
            parts = tuple(self.key.split(".", 1))
        else:
            parts = (self.key,)
        written = ".".join(toml_key(p) for p in parts)
        return f"{written} = {toml_literal(self.value if self.raw is None else self.raw)}"


def at(source: Source, raw: Any = None) -> dict[str, Any]:
    """The ``file``, ``line`` and ``raw`` fields of a finding about a value from ``source``."""
    return {"file": source.file, "line": source.line, "raw": raw}


def toml_literal(value: Any) -> str:
    """``value`` spelled as in a TOML file: ``2``, ``true``, ``"symbols"``, ``{ debug = 0 }``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not isinstance(value, float) or value == value else "nan"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        inner = ", ".join(f"{toml_key(str(k))} = {toml_literal(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if value is None:
        return '""'
    return str(value)  # TOML dates and times print as TOML


@dataclass
class ProfileReport:
    name: str
    effective: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    target: str = ""
    output_dir: Path | None = None  # where cargo writes this profile's artifacts for ``target``

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target,
                "output_dir": str(self.output_dir) if self.output_dir is not None else None,
                "effective": dict(self.effective), "findings": [f.as_json() for f in self.findings]}


@dataclass
class Policy:
    debug: str = DEFAULT_POLICY["debug"]
    split: str = DEFAULT_POLICY["split-debuginfo"]  # or "any"
    strip: str = DEFAULT_POLICY["strip"]
    source: str = "default"


def load_policy(root: TomlFile) -> Policy:
    meta = metadata_table(root.data)
    table = meta.get("check") if isinstance(meta.get("check"), dict) else meta
    policy = Policy(source=str(root.path) if any(k in table for k in KEYS) else "default")
    for key in KEYS:
        if key not in table:
            continue
        raw = table[key]
        if key == "split-debuginfo" and raw == "any":
            policy.split = "any"
            continue
        value, error = normalize(key, raw)
        if value is None:
            raise ConfigError(f"[workspace.metadata.symtool] {key}: {error}", root.path)
        if key == "debug":
            policy.debug = value
        elif key == "strip":
            policy.strip = value
        else:
            policy.split = value
    return policy


# ---------------------------------------------------------------- the resolver
@dataclass
class Token:
    """One word of a rustflags list and where it was written."""

    text: str
    source: str  # "RUSTFLAGS", "/path/.cargo/config.toml:7", "env:CARGO_BUILD_RUSTFLAGS"
    where: str  # human description of the list ("RUSTFLAGS", "build.rustflags in ...")
    file: Path | None = None
    line: int | None = None


@dataclass
class RustFlag:
    option: str  # "debuginfo" | "strip" | "split-debuginfo"
    raw: str
    spelled: str  # as written, for the fix text
    source: str  # "RUSTFLAGS", "/path/.cargo/config.toml:7", "env:CARGO_BUILD_RUSTFLAGS"
    where: str  # human description of the list ("RUSTFLAGS", "build.rustflags in ...")
    file: Path | None = None
    line: int | None = None


@dataclass(frozen=True)
class BuildTarget:
    """A target a build is for, and why."""

    triple: str
    source: str  # "--target", "<config file>:<line>", "env:CARGO_BUILD_TARGET", "host"
    in_subdir: bool = True  # cargo writes target/<triple>/...; False for a host build without --target


def build_targets(workspace: Workspace, env: Mapping[str, str], explicit: Sequence[str] | str | None = None,
                  host: str | None = None) -> list[BuildTarget]:
    """What cargo builds for: each ``--target``, else ``build.target`` (every triple), else the host."""
    if isinstance(explicit, str):
        explicit = [explicit]
    if explicit:
        return [BuildTarget(t, "--target") for t in dict.fromkeys(explicit)]
    facts = workspace.facts
    if facts.triples:
        layer = facts.triples_layers[0] if facts.triples_layers else None
        source = facts.triples_source
        if layer is not None and layer.path is not None and layer.cli is None:
            source = TomlFile.load(layer.path).cite(("build", "target"))
        return [BuildTarget(t, source) for t in facts.triples]
    if host is None:
        from symtool.cargo.metadata import host_triple

        host = host_triple(env)
    return [BuildTarget(host, "host", in_subdir=False)]


class Resolver:
    """Answers "what does cargo use" for one workspace, environment and target."""

    def __init__(self, workspace: Workspace, env: Mapping[str, str], target: BuildTarget,
                 cargo_version: tuple[int, int] | None = None, packages: Sequence[str] | None = None):
        self.workspace = workspace
        self.root = workspace.root
        self.env = env
        # Config files in cargo's precedence, as symtool.cargo.workspace found them (highest first).
        self.configs = [TomlFile.load(p) for p in workspace.facts.config_files]
        self.cargo_version = cargo_version
        self.build_target = target
        self.target, self.target_source = Target(target.triple), target.source
        self.packages = list(packages) if packages else None  # -p: only their overrides count
        self.policy = load_policy(self.root)

    # -- layers ---------------------------------------------------------

    def lookup(self, profile: str, sub: tuple[str, ...]) -> Value | None:
        """The value of ``[profile.<profile>].<sub>`` from env, config files or the root manifest."""
        if sub[0] != "package":  # cargo has no environment spelling for package overrides
            name = "CARGO_PROFILE_" + env_name(profile, *sub)
            if name in self.env:
                raw = env_value(self.env[name])
                return self._value(sub, raw, Source("env", f"env:{name}", profile=profile))
        keypath = ("profile", profile, *sub)
        for layer, kind in [(c, "config") for c in self.configs] + [(self.root, "manifest")]:
            found, raw = dig(layer.data, keypath)
            if found:
                return self._value(sub, raw, Source(kind, layer.cite(keypath), layer.path, keypath, profile,
                                                    layer.line(keypath)))
        return None

    def _value(self, sub: tuple[str, ...], raw: Any, source: Source) -> Value:
        key = ".".join(sub)
        if sub[-1] in KEYS:
            value, error = normalize(sub[-1], raw)
            return Value(key, raw, value, source, error, sub)
        return Value(key, raw, raw if isinstance(raw, str) else None, source, None, sub)

    def defined_profiles(self) -> list[str]:
        names: list[str] = []
        for layer in [self.root, *self.configs]:
            table = layer.data.get("profile")
            if isinstance(table, dict):
                names += [n for n in table if n not in names]
        return names

    def chain(self, name: str) -> tuple[list[str], list[Finding]]:
        """[name, parent, ..., built-in root] and findings for inheritance cargo rejects."""
        chain = [name]
        problems: list[Finding] = []
        current = name
        while True:
            inherits = self.lookup(current, ("inherits",))
            if current in ("dev", "release"):
                if inherits is not None:
                    problems.append(Finding("inherits", inherits.raw, inherits.source.text,
                                            f"cargo rejects this: `inherits` must not be specified in root profile `{current}`",
                                            f"remove `inherits` from [profile.{current}]",
                                            **at(inherits.source, inherits.raw)))
                return chain, problems
            if inherits is None:
                parent = BUILTIN_PARENT.get(current)
                if parent is None:
                    problems.append(Finding("inherits", None, f"[profile.{current}]",
                                            f"cargo rejects this: profile `{current}` is missing an `inherits` directive "
                                            "(`inherits` is required for all profiles except `dev` or `release`)",
                                            f'add inherits = "release" to [profile.{current}]'))
                    chain.append("release")
                    return chain, problems
            else:
                parent = inherits.raw
                if not isinstance(parent, str) or (parent not in BUILTIN_PARENT and parent not in self.defined_profiles()):
                    problems.append(Finding("inherits", parent, inherits.source.text,
                                            f"cargo rejects this: profile `{current}` inherits from `{parent}`, "
                                            "but that profile is not defined",
                                            f"define [profile.{parent}] or inherit from an existing profile",
                                            **at(inherits.source, inherits.raw)))
                    chain.append("release")
                    return chain, problems
            if parent in chain:
                problems.append(Finding("inherits", parent, inherits.source.text if inherits else f"[profile.{current}]",
                                        f"cargo rejects this: profile inheritance loop detected with profile "
                                        f"`{current}` inheriting `{parent}`",
                                        f"break the loop in [profile.{current}]",
                                        **(at(inherits.source, inherits.raw) if inherits else {})))
                if "release" not in chain:
                    chain.append("release")
                return chain, problems
            chain.append(parent)
            current = parent

    def inherits_release(self, name: str) -> bool:
        chain, _ = self.chain(name)
        return "release" in chain

    # -- rustflags --------------------------------------------------------
    def rustflags(self) -> tuple[list[RustFlag], str]:
        """The debug-relevant flags of the rustflags source cargo uses, and that source's name."""
        tokens, where = self.rustflag_tokens()
        return self._debug_flags(tokens), where

    def rustflag_tokens(self) -> tuple[list[Token], str]:
        """Every word of the rustflags source cargo uses for this target, and that source's name."""
        tokens: list[Token] = []
        if "CARGO_ENCODED_RUSTFLAGS" in self.env:
            raw = self.env["CARGO_ENCODED_RUSTFLAGS"]
            tokens = [Token(t, "CARGO_ENCODED_RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS")
                      for t in raw.split("\x1f")] if raw else []
            where = "CARGO_ENCODED_RUSTFLAGS"
        elif "RUSTFLAGS" in self.env:
            tokens = [Token(t, "RUSTFLAGS", "RUSTFLAGS") for t in self.env["RUSTFLAGS"].split()]
            where = "RUSTFLAGS"
        else:
            target_keys = [("target", self.target.triple, "rustflags")]
            for layer in self.configs:
                table = layer.data.get("target")
                if isinstance(table, dict):
                    for key in sorted(table):
                        if key.startswith("cfg(") and cfg_matches(key, self.target) and \
                                ("target", key, "rustflags") not in target_keys:
                            target_keys.append(("target", key, "rustflags"))
            env_target = "CARGO_TARGET_" + env_name(self.target.triple) + "_RUSTFLAGS"
            tokens, found = self._config_list(target_keys, env_target)
            where = "target.<triple>.rustflags"
            if not found:
                tokens, found = self._config_list([("build", "rustflags")], "CARGO_BUILD_RUSTFLAGS")
                where = "build.rustflags"
            if not found:
                where = ""
        return tokens, where

    @staticmethod
    def _debug_flags(tokens: list[Token]) -> list[RustFlag]:
        flags: list[RustFlag] = []
        i = 0
        while i < len(tokens):
            tok, src, desc = tokens[i].text, tokens[i].source, tokens[i].where
            place = {"file": tokens[i].file, "line": tokens[i].line}
            option_value = None
            spelled = tok
            if tok in ("-C", "--codegen") and i + 1 < len(tokens):
                option_value = tokens[i + 1].text
                spelled = f"{tok} {option_value}"
                i += 1
            elif tok.startswith("--codegen="):
                option_value = tok[len("--codegen="):]
            elif tok.startswith("-C"):
                option_value = tok[2:]
            elif tok == "-g":
                flags.append(RustFlag("debuginfo", "2", tok, src, desc, **place))
            i += 1
            if option_value and "=" in option_value:
                option, raw = option_value.split("=", 1)
                option = option.replace("_", "-")
                if option in ("debuginfo", "strip", "split-debuginfo"):
                    flags.append(RustFlag(option, raw, spelled, src, desc, **place))
        return flags

    def _config_list(self, keypaths: list[tuple[str, ...]], env_key: str) -> tuple[list[Token], bool]:
        """Join a string-or-list config key across config files (lowest priority first) and its env var."""
        tokens: list[Token] = []
        found = False
        for keypath in keypaths:
            for layer in reversed(self.configs):
                present, value = dig(layer.data, keypath)
                if not present:
                    continue
                found = True
                cite = layer.cite(keypath)
                desc = f"{'.'.join(keypath)} in {layer.path}"
                if isinstance(value, str):
                    items = value.split()
                elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                    items = value
                else:
                    raise ConfigError(f"{'.'.join(keypath)} must be a string or a list of strings", layer.path)
                line = layer.line(keypath)
                tokens += [Token(t, cite, desc, layer.path, line) for t in items]
            if keypath == keypaths[0] and env_key in self.env:
                found = True
                tokens += [Token(t, f"env:{env_key}", env_key) for t in self.env[env_key].split()]
        return tokens, found

    # -- one profile ------------------------------------------------------
    def first(self, chain: list[str], sub: tuple[str, ...]) -> Value | None:
        for profile in chain:
            value = self.lookup(profile, sub)
            if value is not None:
                return value
        return None

    def resolve(self, name: str) -> ProfileReport:
        if name not in BUILTIN_PARENT and name not in self.defined_profiles():
            raise UsageError(f"profile `{name}` is not defined")
        chain, findings = self.chain(name)
        base = chain[-1] if chain[-1] in ("dev", "release") else "release"
        defaults = {"debug": "full" if base == "dev" else "none"}
        msvc = self.target.is_msvc

        vals: dict[str, Value] = {}
        for key in KEYS:
            found = self.first(chain, (key,))
            if found is None:
                found = Value(key, None, defaults.get(key), Source("default", f"default of [profile.{base}]", profile=base),
                              sub=(key,))
            vals[key] = found
        debug, strip, split = vals["debug"], vals["strip"], vals["split-debuginfo"]

        profile_debug_on = (debug.value or "none") != "none"
        eff_debug = debug
        eff_strip = strip
        if strip.source.kind == "default":
            implicit = (not profile_debug_on) and (self.cargo_version is None or self.cargo_version >= (1, 77))
            eff_strip = Value("strip", None, "debuginfo" if implicit else "none", sub=("strip",), source=
                              Source("implicit" if implicit else "default",
                                     ("implicit: cargo >= 1.77 strips debuginfo when debug is off and strip is unset"
                                      if implicit else f"default of [profile.{base}]"), profile=base))
        supported, target_default = self.target.split_modes()
        passed = profile_debug_on and split.value in supported
        if passed:
            eff_split = split
        else:
            eff_split = Value("split-debuginfo", None, target_default,
                              Source("default", f"default for {self.target.triple}", profile=base),
                              sub=("split-debuginfo",))
            if split.source.kind != "default" and split.value is not None and not profile_debug_on:
                eff_split.source.text += (f" (debug is off in {debug.source.text}: cargo does not pass "
                                          f"split-debuginfo = \"{split.value}\" from {split.source.text})")
            elif split.source.kind != "default" and split.value is not None:
                eff_split.source.text += f" (cargo drops split-debuginfo = \"{split.value}\": not supported there)"

        # rustflags come last on rustc's command line and win
        flags, _ = self.rustflags()
        by_option = {"debuginfo": "debug", "strip": "strip", "split-debuginfo": "split-debuginfo"}
        rust_values: dict[str, Value] = {}
        for flag in flags:
            value, error = _rustc_value(flag.option, flag.raw)
            rust_values[by_option[flag.option]] = Value(
                by_option[flag.option], flag.spelled, value,
                Source("rustflags", f"rustflags:{flag.source}", flag.file, line=flag.line), error,
                (by_option[flag.option],), flag)
        eff = {"debug": rust_values.get("debug", eff_debug),
               "strip": rust_values.get("strip", eff_strip),
               "split-debuginfo": rust_values.get("split-debuginfo", eff_split)}
        if "split-debuginfo" in rust_values and msvc:
            flag_value = rust_values["split-debuginfo"]
            if flag_value.value and flag_value.value != "packed":
                flag_value.error = f"`-Csplit-debuginfo={flag_value.value}` is unstable on this platform"

        facts = self.workspace.facts
        report = ProfileReport(name, {k: eff[k].shown for k in KEYS},
                               sources={k: eff[k].source.text for k in KEYS}, target=self.target.triple,
                               output_dir=facts.profile_dir(name, self.target.triple
                                                            if self.build_target.in_subdir else None))
        report.findings += findings
        for key in KEYS:
            # a value cargo rejects is a finding even when something else wins
            written = vals[key]
            if written.error and written is not eff[key]:
                report.findings.append(self._invalid(written, name, chain, base))
                if eff[key].source.kind in ("default", "implicit"):
                    continue  # the fallback is a consequence of the rejected value: one finding
            judged = self._judge(key, eff[key], name, chain, base)
            if key == "split-debuginfo" and judged and eff_split is not split and split.source.kind != "default" \
                    and split.value is not None and not profile_debug_on:
                # The value written is dropped because debug is off: writing it again changes nothing;
                # turning debug on is the fix, wherever debug is set (an environment variable included).
                debug_fix = self._fix_text("debug", debug, self.policy.debug,
                                           self._edit_for(debug.sub, debug, chain, base, self.policy.debug))
                for f in judged:
                    f.message = (f'split-debuginfo = "{split.value}" is written ({split.source.text}), but cargo '
                                 f"passes it only when debug is on, and debug is off ({debug.source.text})")
                    f.fix = f"turn debug on: {debug_fix}"
                    f.edit = None
            report.findings += judged
        report.findings += self._overrides(name, chain, base)
        report.findings += self._member_profiles(chain)
        for extra in self._linux_debug_files(eff, report.output_dir):
            same = [f for f in report.findings if f.key == extra.key == "strip"]
            if same:  # the policy already objects to this strip: one finding, both reasons
                same[0].message += f"; and with split-debuginfo = \"packed\" {extra.message.split(': ', 1)[1]}"
            else:
                report.findings.append(extra)
        for finding in report.findings:
            finding.target = self.target.triple
        return report

    # -- judging ----------------------------------------------------------
    def _linux_debug_files(self, eff: dict[str, Value], output_dir: Path | None) -> list[Finding]:
        """Build-ids (none, too short) and a .dwp made useless by strip (symtool.cargo.buildid)."""
        from symtool.cargo import buildid

        if not buildid.is_linux_like(self.target):
            return []
        findings: list[Finding] = []
        setting = buildid.build_id_setting(self.rustflag_tokens()[0])
        if setting is not None:
            style, tok = setting
            problem = buildid.flag_problem(style)
            if problem:
                findings.append(Finding("build-id", style, tok.source, problem, buildid.FIX,
                                        file=tok.file, line=tok.line, raw=f"--build-id={style}"))
        for path, problem in buildid.built_problems(output_dir):
            findings.append(Finding("build-id", None, str(path), f"{path.name} {problem}: debuginfod, symbol stores "
                                    "and gdb cannot find its debug files", buildid.FIX))
        strip, split, debug = eff["strip"], eff["split-debuginfo"], eff["debug"]
        if strip.value in ("debuginfo", "symbols") and split.value == "packed" and (debug.value or "none") != "none":
            findings.append(Finding(
                "strip", strip.shown, strip.source.text,
                f'strip = "{strip.shown}" with split-debuginfo = "packed": the linker drops the skeleton units, '
                "so the .dwp cargo writes is referred to by nothing (gdb and llvm-symbolizer cannot use it)",
                'set strip = "none": publish the unstripped binary with its .dwp (symtool publish) and ship a copy '
                'made with objcopy --strip-debug', **at(strip.source, strip.raw)))
        return findings

    def _edit_for(self, key_path: tuple[str, ...], value: Value, chain: list[str], base: str, new: str):
        """Where --fix writes: the manifest line that set it, else the built-in base profile."""
        if value.source.kind == "manifest":
            return (value.source.keypath, new)
        if value.source.kind in ("default", "implicit"):
            return (("profile", base, *key_path), new)
        return None

    def _fix_text(self, key: str, value: Value, new: str, edit) -> str:
        src = value.source
        if src.kind == "env":
            return (f"{src.text[4:]} overrides Cargo.toml and config files: unset it or set it to {new} "
                    "(--fix cannot change the environment)")
        if src.kind == "config":
            return (f"the cargo config file {src.text} overrides Cargo.toml: set {key} = \"{new}\" "
                    f"in [profile.{src.profile}] there (--fix does not edit config files)")
        if src.kind == "rustflags":
            flag = value.flag
            spelled = flag.spelled if flag else str(value.raw)
            where = flag.where if flag else src.text
            return (f"remove `{spelled}` from {where} ({src.text}): rustflags come after the profile "
                    f"flags and win (--fix cannot change rustflags)")
        keypath = edit[0] if edit else ("profile", "release", key)
        table = ".".join(toml_key(p) for p in keypath[:-1])
        return f'set {keypath[-1]} = "{new}" in [{table}] of {self.root.path} (symtool check --fix does this)'

    def _invalid(self, value: Value, profile: str, chain: list[str], base: str) -> Finding:
        key = value.key.rsplit(".", 1)[-1]
        new = {"debug": self.policy.debug, "strip": self.policy.strip}.get(key)
        if new is None:
            new = self.policy.split if self.policy.split != "any" else self.target.split_modes()[1]
        edit = self._edit_for(value.sub, value, chain, base, new)
        who = "rustc" if value.source.kind == "rustflags" or value.error.startswith("incorrect value") else "cargo"
        if "silently drops" in value.error:
            message = value.error
        else:
            message = f"{who} rejects this value: {value.error}"
        return Finding(value.key, value.raw, value.source.text, message,
                       self._fix_text(value.key, value, new, edit), edit, **at(value.source, value.raw))

    def _judge(self, key: str, value: Value, profile: str, chain: list[str], base: str,
               scope: str = "") -> list[Finding]:
        if value.error:
            return [self._invalid(value, profile, chain, base)]
        msvc = self.target.is_msvc
        pol = self.policy
        message = None
        new = None
        if key == "debug" and DEBUG_LEVELS.index(value.value) < DEBUG_LEVELS.index(pol.debug):
            new = pol.debug
            if value.value == "none":
                message = ("on MSVC debug = 0 still writes a PDB, but with no line info for your code: "
                           "crash dumps and backtraces get no file:line"
                           if msvc else "no debug info for your code: backtraces and debuggers get no file:line")
            elif value.value == "line-directives-only":
                message = ('"line-directives-only" emits no line tables (it is for profilers and GPU '
                           "targets): backtraces and debuggers get no file:line")
            else:
                message = f'"{value.value}" is below the policy minimum "{pol.debug}": less debug info than required'
        elif key == "strip" and STRIP_LEVELS.index(value.value) > STRIP_LEVELS.index(pol.strip):
            new = pol.strip
            if msvc:
                message = (f'strip = "{value.value}" strips debug info on Linux and macOS builds of this profile; '
                           "current rustc ignores strip for MSVC targets (the PDB is still written), "
                           "older rustc linked with /DEBUG:NONE and wrote no PDB at all")
            elif value.value == "debuginfo":
                message = "debug info is removed from the binary at link time: nothing left to split or archive"
            else:
                message = "debug info and the symbol table are removed: backtraces show only addresses"
            if value.source.kind == "implicit":
                message = ("cargo >= 1.77 sets strip = \"debuginfo\" when debug is off and strip is unset; "
                           + message)
        elif key == "split-debuginfo" and pol.split != "any" and value.value != pol.split:
            new = pol.split
            supported, _ = self.target.split_modes()
            if msvc:
                message = ('MSVC supports only "packed" (one PDB per binary): '
                           f'"{value.value}" is rejected by rustc on stable')
            elif pol.split not in supported:
                return []  # the target cannot do what the policy asks: cargo would drop it anyway
            elif value.value == "off":
                message = ("debug info stays inside the binary: no separate debug file to archive, "
                           "and it is lost when the binary is stripped for shipping")
            elif value.value == "unpacked":
                message = ("debug info is left in per-object files next to the build, easy to lose; "
                           '"packed" collects it into one file per binary')
            else:
                message = f'policy wants split-debuginfo = "{pol.split}"'
        if message is None:
            return []
        label = f"{scope}{key}" if scope else value.key
        if scope and value.source.kind in ("default", "implicit"):
            return []
        edit = self._edit_for(value.sub, value, chain, base, new)
        if value.source.kind == "implicit":
            edit = (("profile", base, "strip"), new)
            fix = (f'set debug = "{pol.debug}" (above), or strip = "{new}", in [profile.{base}] of '
                   f"{self.root.path} (symtool check --fix does this)")
        else:
            fix = self._fix_text(key, value, new, edit)
        shown = value.shown
        return [Finding(label, shown if value.value is not None else value.raw, value.source.text,
                        message, fix, edit, **at(value.source, value.raw))]

    def _overrides(self, profile: str, chain: list[str], base: str) -> list[Finding]:
        """``[profile.X.package.<spec>]`` and ``[profile.X.build-override]`` that lower debug info."""
        findings: list[Finding] = []
        specs: list[str] = []
        for p in chain:
            for layer in [self.root, *self.configs]:
                found, table = dig(layer.data, ("profile", p, "package"))
                if found and isinstance(table, dict):
                    specs += [s for s in table if s not in specs]
        if self.packages is not None:  # [profile.X.package.<other>] does not touch the packages asked about
            specs = [s for s in specs if s == "*" or s.split("@", 1)[0] in self.packages]
        scopes = [(f"package.{spec}.", ("package", spec)) for spec in specs] + [("build-override.", ("build-override",))]
        for label, sub in scopes:
            for key in KEYS:
                value = self.first(chain, (*sub, key))
                if value is None:
                    continue
                judged = self._judge(key, value, profile, chain, base, scope=label)
                for f in judged:
                    who = ("build scripts, proc-macros and their dependencies" if sub[0] == "build-override"
                           else ("every dependency (not workspace members)" if sub[1] == "*"
                                 else f"package `{sub[1]}`"))
                    f.message = f"this override applies to {who}: {f.message}"
                findings += judged
        return findings

    def _member_profiles(self, chain: list[str]) -> list[Finding]:
        findings = []
        for member in self.workspace.members:
            table = member.data.get("profile")
            if not isinstance(table, dict):
                continue
            for p in chain:
                if p in table:
                    findings.append(Finding(
                        f"profile.{p}", table[p], member.cite(("profile", p)),
                        f'cargo ignores this table: "{MEMBER_PROFILE_WARNING}"',
                        f"move [profile.{p}] from {member.path} into {self.root.path} (--fix does not move it)",
                        file=member.path, line=member.line(("profile", p)), raw=table[p]))
        return findings

    def default_profiles(self) -> list[str]:
        names = ["release"]
        for name in self.defined_profiles():
            if name not in BUILTIN_PARENT and name not in names and self.inherits_release(name):
                names.append(name)
        return names


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # TOML dates and times


def toml_key(part: str) -> str:
    """One key as TOML writes it: bare when it can be, else a quoted string."""
    if part and all(c.isascii() and c.isalnum() or c in "-_" for c in part):
        return part
    return toml_literal(part)


@dataclass
class CheckResult:
    workspace_root: Path
    targets: list[str]
    profiles: list[ProfileReport]  # per target, per profile

    @property
    def ok(self) -> bool:
        return not any(p.findings for p in self.profiles)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "workspace_root": str(self.workspace_root), "targets": list(self.targets),
                "profiles": [p.as_json() for p in self.profiles]}


def package_names(workspace: Workspace) -> list[str]:
    """``[package].name`` of the root and every member manifest."""
    names = []
    for manifest in [workspace.root, *workspace.members]:
        package = manifest.data.get("package")
        if isinstance(package, dict) and isinstance(package.get("name"), str):
            names.append(package["name"])
    return names


def check_workspace(workspace: Workspace, env: Mapping[str, str], profiles: list[str] | None = None,
                    targets: Sequence[str] | str | None = None, cargo_version: tuple[int, int] | None = None,
                    host: str | None = None, packages: Sequence[str] | None = None) -> CheckResult:
    """Judge ``profiles`` (default: release and the profiles inheriting from it) for each target
    the workspace builds (``targets``: ``--target`` values overriding build.target)."""
    if packages:
        known = package_names(workspace)
        for spec in packages:
            if spec.split("@", 1)[0] not in known:
                raise UsageError(f"package ID specification `{spec}` did not match any packages in the workspace "
                                 f"({', '.join(known) or 'none'})", workspace.root.path)
        packages = [spec.split("@", 1)[0] for spec in packages]
    if isinstance(targets, str):
        targets = [targets]
    check_triples(list(targets) if targets else workspace.facts.target_specs, env, workspace.start)
    reports: list[ProfileReport] = []
    chosen = build_targets(workspace, env, targets, host)
    for target in chosen:
        resolver = Resolver(workspace, env, target, cargo_version, packages)
        names = list(dict.fromkeys(profiles)) if profiles else resolver.default_profiles()
        reports += [resolver.resolve(n) for n in names]
    return CheckResult(workspace.root.path.parent, [t.triple for t in chosen], reports)
