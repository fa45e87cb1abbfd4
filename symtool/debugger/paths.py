"""Debugger paths as a pure function of (platform, inputs).

``compute(inputs)`` turns what :mod:`symtool.debugger.probe` found on disk
(build output dirs, stores, cache, toolchain, cargo sources) into the three
path lists debuggers read:

* symbol path (``_NT_SYMBOL_PATH``): build output dirs first, as plain
  directories, so fresh PDBs are read in place instead of being copied into a
  cache on every build; then ``srv*<cache>*<store>`` per configured store; then
  ``srv*<cache>*`` Microsoft's public server.
* source path (``_NT_SOURCE_PATH``): ``srv*`` (source server / Source Link),
  the workspace root and members, cargo's registry and git sources, and the
  toolchain's ``lib/rustlib/src/rust`` exactly once (the debugger strips leading
  components of ``/rustc/<hash>/library/...`` until one resolves, so one root
  serves all of std; listing every subdirectory overflows the 4096-character
  command limit).
* image path (``_NT_EXECUTABLE_IMAGE_PATH``): minidumps hold no code, so the
  debugger needs the binaries: the same build dirs and stores.

Nothing here touches the file system or the process environment, so Windows
output (backslashes, %LOCALAPPDATA% cache) is tested on any host.
"""

from __future__ import annotations

import ntpath
import posixpath
from typing import Any

from symtool.errors import ConfigError
from symtool.store.layout import is_url

MICROSOFT_SERVER = "https://msdl.microsoft.com/download/symbols"
# symsrv walks at most this many stores in one srv* chain.
MAX_CHAIN_STORES = 10
# Characters that the _NT_* syntax gives meaning and offers no escape for.
FORBIDDEN = {";": "';'", "*": "'*'", "\n": "a newline", "\r": "a carriage return"}

SYMBOL, SOURCE, IMAGE = "symbol_path", "source_path", "image_path"
# The variable each path list is set in (and read from: what is already set is kept after ours).
ENV_NAMES = {SYMBOL: "_NT_SYMBOL_PATH", SOURCE: "_NT_SOURCE_PATH", IMAGE: "_NT_EXECUTABLE_IMAGE_PATH"}


def is_windows(platform: str) -> bool:
    return platform.startswith("win") or platform == "cygwin"


def pathmod(platform: str):
    """ntpath for Windows, posixpath elsewhere (both work on any host)."""
    return ntpath if is_windows(platform) else posixpath


class _Record:
    """Plain value class: `symtool env` runs per shell and @dataclass costs ~2 ms per class at import."""

    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, k) for k in self.__slots__))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


class Element(_Record):
    """One entry of a path list and where it came from."""

    __slots__ = ("value", "source", "kind")

    def __init__(self, value: str, source: str, kind: str):
        self.value = value
        self.source = source  # e.g. "profile release (x86_64-pc-windows-msvc), target dir: default"
        self.kind = kind  # build-dir | store | microsoft | source-server | workspace | member | registry | git | rust-src
        # | inherited (an element the variable already held: the user's own server or directory)

    def as_dict(self) -> dict[str, str]:
        return {"value": self.value, "source": self.source, "kind": self.kind}


class BuildDir(_Record):
    """A profile output dir that exists, e.g. target/x86_64-pc-windows-msvc/release."""

    __slots__ = ("path", "profile", "triple", "has_deps")

    def __init__(self, path: str, profile: str, triple: str | None = None, has_deps: bool = True):
        self.path = path
        self.profile = profile
        self.triple = triple
        self.has_deps = has_deps


class Inputs:
    """Everything the path lists depend on; filled by symtool.debugger.probe.gather or by hand."""

    def __init__(self, platform: str, **values: Any):
        self.platform = platform
        self.workspace_root: str | None = None
        self.manifest: str | None = None  # workspace root manifest, named as the source of members
        self.members: list[str] = []  # member dirs, absolute, in manifest order
        self.target_dir: str | None = None
        self.target_dir_source = "default"
        self.build_dirs: list[BuildDir] = []
        self.stores: list[str] = []
        self.stores_source = "default"
        self.cache = ""
        self.cache_source = "default"
        self.cargo_home: str | None = None
        self.cargo_home_source = "default"
        self.registry_src: list[str] = []  # existing $CARGO_HOME/registry/src/* dirs
        self.git_checkouts: str | None = None  # existing $CARGO_HOME/git/checkouts
        self.sysroot: str | None = None
        self.commit: str | None = None  # rustc -vV commit-hash
        self.rust_src_installed = False
        self.natvis: list[str] = []
        self.pdb_commits: dict[str, str] = {}  # PDB path -> /rustc/<hash> seen in it
        self.debuginfod_urls = ""  # the DEBUGINFOD_URLS already set, kept after ours
        self.inherited: dict[str, str] = {}  # SYMBOL/SOURCE/IMAGE -> the value its variable already holds
        self.warnings: list[str] = []  # from probing (rustc missing...)
        for key, value in values.items():
            if not hasattr(self, key):
                raise TypeError(f"Inputs has no field {key!r}")
            setattr(self, key, value)


class DebuggerPaths:
    def __init__(self, symbol: list[Element], source: list[Element], image: list[Element],
                 warnings: list[str], inputs: Inputs):
        self.symbol, self.source, self.image = symbol, source, image
        self.warnings, self.inputs = warnings, inputs

    def value(self, which: str) -> str:
        return ";".join(e.value for e in self.elements(which))

    def elements(self, which: str) -> list[Element]:
        return {SYMBOL: self.symbol, SOURCE: self.source, IMAGE: self.image}[which]

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for which in (SYMBOL, SOURCE, IMAGE):
            out[which] = {"value": self.value(which), "elements": [e.as_dict() for e in self.elements(which)]}
        i = self.inputs
        out["warnings"] = list(self.warnings)
        out["platform"] = i.platform
        out["workspace_root"] = i.workspace_root
        out["target_dir"] = {"value": i.target_dir, "source": i.target_dir_source}
        out["cache"] = {"value": i.cache, "source": i.cache_source}
        out["stores"] = {"value": list(i.stores), "source": i.stores_source}
        out["toolchain"] = {"sysroot": i.sysroot, "commit": i.commit, "rust_src": i.rust_src_installed,
                            "natvis": list(i.natvis)}
        return out


def check_path(path: str, what: str) -> str:
    """Refuse what the _NT_* syntax cannot carry: ';' separates, '*' chains, no escaping exists."""
    for char, name in FORBIDDEN.items():
        if char in path:
            raise ConfigError(
                f"{what} contains {name}, which debugger path lists cannot hold (there is no escaping); "
                f"use a path without it", path)
    if not path:
        raise ConfigError(f"{what} is empty")
    return path


def srv_chain(stores: list[str]) -> str:
    """``srv*a*b*...``: checked against symsrv's rules for one chain.

    The first store is the downstream cache; at most one HTTP store, and it
    must come last (symsrv cannot cache into a server); at most 10 stores.
    """
    if len(stores) > MAX_CHAIN_STORES:
        raise ConfigError(f"a srv* chain holds at most {MAX_CHAIN_STORES} stores, got {len(stores)}")
    urls = [i for i, s in enumerate(stores) if is_url(s)]
    if len(urls) > 1:
        raise ConfigError(f"a srv* chain holds at most one HTTP store, got {len(urls)}: "
                          + " ".join(stores[i] for i in urls))
    if urls and urls[0] != len(stores) - 1:
        raise ConfigError("the HTTP store must come last in a srv* chain", stores[urls[0]])
    for i, s in enumerate(stores):
        check_path(s, "symbol cache" if i == 0 else "store")
    return "srv*" + "*".join(stores)


def _build_dir_elements(inputs: Inputs) -> list[Element]:
    pm = pathmod(inputs.platform)
    out: list[Element] = []
    for b in inputs.build_dirs:
        src = f"profile {b.profile}" + (f" ({b.triple})" if b.triple else "") + \
              f", target dir: {inputs.target_dir_source}"
        out.append(Element(check_path(b.path, "build output dir"), src, "build-dir"))
        if b.has_deps:
            deps = pm.join(b.path, "deps")
            out.append(Element(check_path(deps, "build output dir"), src, "build-dir"))
    return out


def _store_elements(inputs: Inputs) -> list[Element]:
    if is_url(inputs.cache):
        raise ConfigError("the symbol cache must be a local directory or share, not a URL", inputs.cache)
    check_path(inputs.cache, "symbol cache")
    out = []
    for store in inputs.stores:
        if store.lower().startswith("srv*") or store.lower().startswith("symsrv*"):
            raise ConfigError("give the store itself, not a srv* chain (symtool adds srv*<cache>*)", store)
        out.append(Element(srv_chain([inputs.cache, store]), inputs.stores_source, "store"))
    out.append(Element(srv_chain([inputs.cache, MICROSOFT_SERVER]), "default", "microsoft"))
    return out


def rust_src_dir(platform: str, sysroot: str) -> str:
    return pathmod(platform).join(sysroot, "lib", "rustlib", "src", "rust")


def _kept(inputs: Inputs, which: str, ours: list[Element]) -> list[Element]:
    """The elements the variable already held (``srv*C:\\c*https://their.server``, a folder),
    after ours and each once: ``eval "$(symtool env)"`` in a start-up file must not drop the
    user's own servers, which fetch, stack and dumps read too.  Running it again adds nothing."""
    def key(value: str) -> str:
        return value.lower() if is_windows(inputs.platform) else value

    seen = {key(e.value) for e in ours}
    out: list[Element] = []
    for raw in inputs.inherited.get(which, "").split(";"):
        value = raw.strip()
        if value and key(value) not in seen:
            seen.add(key(value))
            out.append(Element(value, f"env:{ENV_NAMES[which]}", "inherited"))
    return out


def symbol_path(inputs: Inputs) -> list[Element]:
    ours = _build_dir_elements(inputs) + _store_elements(inputs)
    return ours + _kept(inputs, SYMBOL, ours)


def image_path(inputs: Inputs) -> list[Element]:
    ours = _build_dir_elements(inputs) + _store_elements(inputs)
    return ours + _kept(inputs, IMAGE, ours)


def source_path(inputs: Inputs) -> list[Element]:
    out = [Element("srv*", "default", "source-server")]
    seen: set[str] = set()

    def add(path: str, source: str, kind: str, what: str) -> None:
        key = path.lower() if is_windows(inputs.platform) else path
        if key in seen:
            return
        seen.add(key)
        out.append(Element(check_path(path, what), source, kind))

    if inputs.workspace_root:
        add(inputs.workspace_root, inputs.manifest or "workspace", "workspace", "workspace root")
    for member in inputs.members:
        add(member, f"{inputs.manifest or 'workspace'} [workspace] members", "member", "workspace member")
    home_src = f"cargo home from {inputs.cargo_home_source}"
    for reg in inputs.registry_src:
        add(reg, home_src, "registry", "cargo registry source dir")
    if inputs.git_checkouts:
        add(inputs.git_checkouts, home_src, "git", "cargo git checkouts dir")
    if inputs.sysroot and inputs.rust_src_installed:
        add(rust_src_dir(inputs.platform, inputs.sysroot), "rustc --print sysroot", "rust-src",
            "toolchain rust-src dir")
    return out + _kept(inputs, SOURCE, out)


def compute_warnings(inputs: Inputs) -> list[str]:
    warnings = list(inputs.warnings)
    if inputs.sysroot and not inputs.rust_src_installed:
        warnings.append(
            f"rust-src is not installed in {inputs.sysroot}: the debugger will not find std's sources "
            f"(run: rustup component add rust-src)")
    if inputs.commit:
        by_commit: dict[str, list[str]] = {}
        for pdb, seen in sorted(inputs.pdb_commits.items()):
            if seen.lower() != inputs.commit.lower():
                by_commit.setdefault(seen.lower(), []).append(pdb)
        for seen, pdbs in sorted(by_commit.items()):
            more = f" (and {len(pdbs) - 1} more PDBs)" if len(pdbs) > 1 else ""
            warnings.append(
                f"{pdbs[0]}{more} was built by rustc commit {seen}, the toolchain here is {inputs.commit}: "
                f"std source lines will not match (use that toolchain's rust-src, or rebuild)")
    return warnings


def compute(inputs: Inputs) -> DebuggerPaths:
    return DebuggerPaths(symbol_path(inputs), source_path(inputs), image_path(inputs),
                         compute_warnings(inputs), inputs)


def url_stores(inputs: Inputs) -> list[str]:
    return [s for s in inputs.stores if is_url(s)]


def debuginfod_root(store_url: str) -> str:
    """Where a store's debuginfod view is served: ``<store>/debuginfod`` (see symtool.store.native)."""
    from urllib.parse import urlsplit, urlunsplit

    from symtool.store.layout import DEBUGINFOD_ROOT

    parts = urlsplit(store_url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{DEBUGINFOD_ROOT}"))


def debuginfod_urls(inputs: Inputs) -> str:
    """Our URL stores' debuginfod roots first, then what DEBUGINFOD_URLS already held (deduplicated)."""
    urls: list[str] = []
    for u in [debuginfod_root(s) for s in url_stores(inputs)] + inputs.debuginfod_urls.split():
        if u not in urls:
            urls.append(u)
    return " ".join(urls)
