"""Where each source file of a PDB can be fetched from.

Rules, first match wins (docs/srcindex.md):

1. ``--map PREFIX=URL`` (and ``map`` in ``[workspace.metadata.symtool.srcindex]``):
   a prefix of the recorded path, compared case-insensitively with either
   separator, as Source Link does;
2. std and core: ``/rustc/<commit>/...`` -> the rust-lang/rust repository at
   that commit;
3. registry crates: ``.cargo_vcs_info.json`` (``git.sha1``, ``path_in_vcs``)
   and the manifest's ``package.repository``;
4. workspace files: the checkout's remote at the commit of ``HEAD``, when the
   file is tracked and unmodified and ``HEAD`` is on a remote branch;
5. everything else: the source archive (the file copied into a store under
   ``name/<SHA-256, 160 bits>/name``).

Files of the toolchain and the Windows SDK (Visual Studio's headers, Windows
Kits, the CRT's own build paths, the linker's temporary files) are not ours
and can be served from nowhere: after the ``--map`` rule, they are
``toolchain``, counted and listed but not a finding (every PDB linked with the
MSVC CRT names hundreds of them).

A file the PDB records with a checksum is checked wherever its content can be
seen (the local file, the committed blob); a file whose content differs is
never mapped to a URL that would serve other bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from symtool.errors import ConfigError, FormatError, UnsafeNameError
from symtool.formats.pdb import SourceFile
from symtool.srcindex.git import GitCheckout, raw_url, relative_to
from symtool.srcindex.roots import SourceRoots, read_to_check
from symtool.srcindex.streams import representable

RULES = ("map", "std", "crate", "workspace", "archive", "toolchain", "none")
RUST_REPO = "https://raw.githubusercontent.com/rust-lang/rust"
_STD = re.compile(r"^[/\\]rustc[/\\]([0-9a-fA-F]{40})[/\\](.+)$")
_REGISTRY = re.compile(r"^(.*[/\\]registry[/\\]src[/\\][^/\\]+)[/\\]([^/\\]+)[/\\](.+)$")
_URL_SAFE = "/-._~!$&'()+,;=@"
# Paths (lower case, "/" separators) of files that come with the toolchain or the Windows SDK, or
# were compiled into the CRT on Microsoft's build machines: (pattern, what it is).
_TOOLCHAIN = tuple((re.compile(pattern), what) for pattern, what in (
    (r"(^|/)microsoft visual studio[^/]*/", "Visual Studio"),
    (r"(^|/)vc/tools/msvc/", "MSVC"),
    (r"(^|/)windows kits/", "Windows SDK"),
    (r"(^|/)microsoft sdks/", "Windows SDK"),
    # The CRT's and the SDK's build trees: DevDiv's f:\dd\..., the Azure Pipelines agents that build
    # VS (d:\a01\_work\<n>\s\src\vctools\...), f:\binaries.<arch>ret\...\vctools, the UCRT's minkernel\crts.
    (r"^[a-z]:/dd/(vctools|externalapis|tools|public)/", "MSVC CRT build path"),
    (r"^[a-z]:/a01/_work/", "MSVC CRT build path"),
    (r"(^|/)vctools/", "MSVC CRT build path"),
    (r"(^|/)minkernel/crts/", "UCRT build path"),
    # link.exe's temporary object (the manifest resource), named lnk{GUID}.tmp in %TEMP%.
    (r"(^|/)lnk\{[0-9a-f-]{36}\}\.tmp$", "linker temporary file"),
))


@dataclass
class IndexConfig:
    maps: list[tuple[str, str]] = field(default_factory=list)
    forge: str | None = None  # github, gitlab, template; None: from the remote's host
    url_template: str | None = None
    archive_url: str | None = None  # how debuggers reach the source archive (URL, UNC or local path)
    cargo_home: Path | None = None
    checkout: GitCheckout | None = None
    # What the archive may copy from this machine (srcindex/roots.py); None: cargo's
    # registry and git checkouts under cargo_home only.
    sources: SourceRoots | None = None

    def source_roots(self) -> SourceRoots:
        if self.sources is None:
            self.sources = SourceRoots.standard(None, self.cargo_home, rust_src=False)
        return self.sources


@dataclass
class Resolution:
    file: SourceFile
    rule: str  # one of RULES
    target: str | None = None  # URL or path; None for rule "none"
    reasons: list[str] = field(default_factory=list)  # why a better rule did not apply / why none
    archive_data: bytes | None = None  # content to put into the archive (rule "archive")
    archive_key: str | None = None
    archive_source: str | None = None  # the resolved local file the archive copy comes from (its mode is kept)

    @property
    def path(self) -> str:
        return self.file.path


def parse_map(text: str) -> tuple[str, str]:
    prefix, sep, url = text.partition("=")
    if not sep or not prefix or not url:
        raise ConfigError(f"--map takes PATH_PREFIX=URL_PREFIX, not {text!r}")
    return prefix, url


def config_from_metadata(meta: dict[str, Any], manifest: Path | None = None) -> dict[str, Any]:
    """``[workspace.metadata.symtool.srcindex]``: map, forge, url-template, archive-url."""
    table = meta.get("srcindex", {})
    if not isinstance(table, dict):
        raise ConfigError("[workspace.metadata.symtool] srcindex must be a table", manifest)
    out: dict[str, Any] = {}
    maps = table.get("map", [])
    if isinstance(maps, dict):
        maps = [f"{k}={v}" for k, v in maps.items()]
    if not isinstance(maps, list) or not all(isinstance(m, str) for m in maps):
        raise ConfigError("srcindex.map must be a list of \"PREFIX=URL\" strings or a table", manifest)
    out["maps"] = [parse_map(m) for m in maps]
    for key in ("forge", "url-template", "archive-url"):
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"srcindex.{key} must be a string", manifest)
        out[key.replace("-", "_")] = value
    if out["forge"] not in (None, "github", "gitlab", "template"):
        raise ConfigError("srcindex.forge must be github, gitlab or template", manifest)
    return out


def digest_of(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def matches(sf: SourceFile, data: bytes | None) -> bool | None:
    """True/False when ``data`` can be checked against the PDB's checksum, None when not."""
    if data is None or sf.algorithm is None or sf.digest is None:
        return None
    return digest_of(data, sf.algorithm) == sf.digest


def _norm(p: str) -> str:
    return p.replace("\\", "/")


def _join_url(base: str, rest: str) -> str:
    rest = _norm(rest).lstrip("/")
    if base.endswith("/"):
        return base + quote(rest, safe=_URL_SAFE)
    return base + "/" + quote(rest, safe=_URL_SAFE) if rest else base


def _read_local(path: str) -> bytes | None:
    # Only to compare with a checksum; what may be archived is decided by SourceRoots.read.
    return read_to_check(path)


def _archive_target(base: str, key: str) -> str:
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", base):
        return base.rstrip("/") + "/" + quote(key, safe=_URL_SAFE)
    if base.startswith("\\\\") or re.match(r"^[A-Za-z]:\\", base):
        return base.rstrip("\\") + "\\" + key.replace("/", "\\")
    return os.path.join(base, *key.split("/"))


def archive_key(name: str, data: bytes) -> str:
    """The store key of a source file: ``name/<SHA-256>/name``, the digest's first
    160 bits in upper-case hex (store indexes are at most 48 characters)."""
    from symtool.store.layout import key_path

    return key_path(name, hashlib.sha256(data).hexdigest()[:40].upper())


def _crate(path: str, cfg: IndexConfig) -> tuple[str | None, list[str], bytes | None, str | None]:
    """(URL, reasons, local content, local path) for a file of a registry crate."""
    m = _REGISTRY.match(path)
    assert m
    index_dir, crate_dir, rest = m.groups()
    candidates = [Path(index_dir.replace("\\", os.sep)) / crate_dir]
    if cfg.cargo_home is not None:
        src = cfg.cargo_home / "registry" / "src"
        if src.is_dir():
            candidates += sorted(d / crate_dir for d in src.iterdir())
    root = next((c for c in candidates if c.is_dir()), None)
    if root is None:
        return None, [f"crate {crate_dir} is not in the local cargo registry"], None, None
    local_path = str(root / rest.replace("\\", "/"))
    data = _read_local(local_path)
    try:
        vcs = json.loads((root / ".cargo_vcs_info.json").read_text(encoding="utf-8"))
        sha1 = vcs["git"]["sha1"]
        dirty = bool(vcs["git"].get("dirty"))
        in_vcs = vcs.get("path_in_vcs", "")
    except (OSError, ValueError, KeyError, TypeError):
        return None, [f"crate {crate_dir} has no usable .cargo_vcs_info.json"], data, local_path
    if dirty:
        return None, [f"crate {crate_dir} was published from a modified checkout"], data, local_path
    from symtool.cargo.workspace import read_toml

    try:
        repo = read_toml(root / "Cargo.toml").get("package", {}).get("repository")
    except ConfigError:
        repo = None
    if not isinstance(repo, str):
        return None, [f"crate {crate_dir} names no repository"], data, local_path
    if not isinstance(in_vcs, str) or climbs(in_vcs):  # path_in_vcs is the crate publisher's text
        return None, [f"crate {crate_dir}: path_in_vcs is no plain relative path"], data, local_path
    rel = "/".join(p for p in (in_vcs.strip("/"), _norm(rest)) if p)
    url = raw_url(repo, sha1, rel)
    if url is None:
        return None, [f"crate {crate_dir}: no raw-file URL for repository {repo}"], data, local_path
    return url, [], data, local_path


def climbs(path: str) -> bool:
    """Whether ``path`` has a ``..`` component (either separator).

    A URL rule joins part of the recorded path onto a URL prefix; a ``..`` in
    that part climbs out of the prefix once a client or server normalizes the
    URL (``/rustc/<c>/../../../../attacker/repo/main/x.rs`` becomes a file of
    another repository), so no URL rule takes such a path.  Components of dots
    and trailing spaces count too: Windows drops trailing dots and spaces.
    """
    return any(len(c) >= 2 and not c.strip(". ") and c.count(".") >= 2 for c in re.split(r"[/\\]", path))


CLIMBS = "the path has a '..' component, which could climb out of a URL prefix"


def toolchain_file(path: str) -> str | None:
    """What toolchain or SDK part ``path`` belongs to ("Visual Studio", "Windows SDK"...), None if none."""
    low = _norm(path).lower()
    return next((what for pattern, what in _TOOLCHAIN if pattern.search(low)), None)


def resolve(sf: SourceFile, cfg: IndexConfig) -> Resolution:
    """Where ``sf`` can be fetched from; rule "none" (with reasons) when nowhere.

    A path or target srcsrv cannot hold (``*`` separates its fields and has no
    escape; CR, LF and NUL end its lines) would be left out of the stream, so
    it is unmapped here and reported like any other unmapped file, instead of
    counted as indexed.
    """
    if not representable(sf.path, ""):
        return Resolution(sf, "none", reasons=[UNREPRESENTABLE.format(what="the path")])
    r = _resolve(sf, cfg)
    if r.target is not None and not representable("", r.target):
        return Resolution(sf, "none", reasons=r.reasons + [UNREPRESENTABLE.format(what=f"its {r.rule} target")])
    return r


UNREPRESENTABLE = "{what} holds '*', CR, LF or NUL, which a srcsrv stream cannot record"


def _resolve(sf: SourceFile, cfg: IndexConfig) -> Resolution:
    path = sf.path
    reasons: list[str] = []
    dotdot = climbs(path)
    local = _read_local(path)
    local_path = path
    if sf.conflict:
        return Resolution(sf, "none", reasons=["modules of the PDB record different checksums for this file"])
    ok = matches(sf, local)
    if ok is False:
        reasons.append("the local file differs from the PDB's checksum")

    # 1. explicit prefix maps
    low = _norm(path).lower()
    for prefix, base in cfg.maps:
        p = _norm(prefix).lower()
        if low.startswith(p) and (p.endswith("/") or len(low) == len(p) or low[len(p)] == "/"):
            if dotdot:
                reasons.append(f"--map {prefix}: {CLIMBS}")
                break
            if ok is False:
                return Resolution(sf, "none", reasons=reasons)
            return Resolution(sf, "map", _join_url(base, path[len(prefix):]))
    # Visual Studio's headers, the Windows SDK, the CRT's build paths: not ours, served by nobody.
    part = toolchain_file(path)
    if part is not None:
        return Resolution(sf, "toolchain", reasons=[f"toolchain (not ours): {part}"])
    # 2. std, core, alloc...
    m = _STD.match(path)
    if m and dotdot:
        reasons.append(f"std: {CLIMBS}")
    elif m:
        commit, rest = m.groups()
        if ok is False:
            return Resolution(sf, "none", reasons=reasons)
        return Resolution(sf, "std", f"{RUST_REPO}/{commit.lower()}/{quote(_norm(rest), safe=_URL_SAFE)}")
    # 3. registry crates
    if _REGISTRY.match(path) and dotdot:
        reasons.append(f"registry crate: {CLIMBS}")
    elif _REGISTRY.match(path):
        url, why, data, crate_path = _crate(path, cfg)
        if local is None and data is not None:
            local, ok, local_path = data, matches(sf, data), crate_path
            if ok is False:
                reasons.append("the registry's copy differs from the PDB's checksum")
        if url is not None and ok is not False:
            return Resolution(sf, "crate", url)
        reasons += why
    # 4. workspace files at HEAD on the forge
    co = cfg.checkout
    rel = relative_to(co.root, path) if co is not None else None
    if co is not None and rel is not None:
        if dotdot:
            reasons.append(f"workspace: {CLIMBS}")
        elif rel in co.modified or rel not in co.tracked:
            reasons.append("modified or untracked in the git checkout")
        elif not co.on_remote_branch:
            reasons.append(f"HEAD ({co.head[:12]}) is on no remote branch")
        elif not co.remote_url:
            reasons.append("the git checkout has no remote")
        else:
            blob = co.blob(rel)
            committed = matches(sf, blob)
            url = raw_url(co.remote_url, co.head, rel, forge=cfg.forge, template=cfg.url_template)
            if committed is False:
                reasons.append("the committed file differs from the PDB's checksum")
            elif url is None:
                reasons.append(f"no raw-file URL for remote {co.remote_url} (set srcindex.forge or url-template)")
            elif ok is not False:
                return Resolution(sf, "workspace", url)
    # 5. the source archive
    if local is None:
        probe = cfg.source_roots().read(local_path) if os.path.lexists(local_path) else None
        if probe is not None and probe.refused is not None:
            reasons.append(f"not archived: {probe.refused}")  # exists here, but may not be read into a store
        else:
            reasons.append("no local copy to archive")
        return Resolution(sf, "none", reasons=reasons)
    if ok is False:
        return Resolution(sf, "none", reasons=reasons)
    # What goes into a store must come from an allowed root (srcindex/roots.py): read
    # again through the allow-list, and checked again against the PDB's checksum.
    archived = cfg.source_roots().read(local_path)
    if archived.refused is not None:
        reasons.append(f"not archived: {archived.refused}")
        return Resolution(sf, "none", reasons=reasons)
    if archived.data is None or matches(sf, archived.data) is False:
        reasons.append("not archived: the file changed while being read")
        return Resolution(sf, "none", reasons=reasons)
    local = archived.data
    name = re.split(r"[/\\]", path)[-1]
    try:
        key = archive_key(name, local)
    except (UnsafeNameError, FormatError, ValueError):
        reasons.append(f"file name {name!r} cannot be a store key")
        return Resolution(sf, "none", reasons=reasons)
    if not cfg.archive_url:
        reasons.append("no source archive given (--sources or srcindex.archive-url)")
        return Resolution(sf, "none", reasons=reasons, archive_data=local, archive_key=key)
    return Resolution(sf, "archive", _archive_target(cfg.archive_url, key), reasons, local, key, archived.real)
