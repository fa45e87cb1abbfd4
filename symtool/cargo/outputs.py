"""Which build outputs a command reads, chosen with cargo's own options.

``verify``, ``publish`` and ``env`` take ``--manifest-path``, ``-p/--package``,
``--profile`` and ``--target`` as ``cargo build`` does, so the command that
built something and the command that reads it look alike:
``cargo build --profile dist`` then ``symtool publish --profile dist``.

* the profile's output dir comes from :mod:`symtool.cargo.workspace`
  (``dev`` and ``test`` write to ``debug``, ``bench`` to ``release``);
* ``--target`` replaces the configured triples, as it does for cargo; an
  unknown triple is bad usage, like an unknown profile or package;
* ``-p`` keeps the files a package's targets produce, named as cargo names
  them (``crash-me`` builds ``crash-me.exe`` and ``crash_me.pdb``).

Also the rule for cargo's ``deps/`` copies: cargo hard-links each final
artifact from ``deps/``; a copied target dir or a CI artifact loses the link
and holds two files with one identity.  :func:`drop_deps_twins` keeps the
top-level one.

Stdlib only: ``symtool env`` imports this in every new shell.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Hashable, Iterable, Mapping, Sequence, TypeVar

from symtool.cargo.workspace import CargoWorkspace, find_workspace, profile_dir_name, read_toml
from symtool.errors import UsageError

DEFAULT_PROFILE = "release"
T = TypeVar("T")


def is_profile_dir(d: Path) -> bool:
    """A cargo output dir such as target/release or target/<triple>/dist."""
    return (d / ".fingerprint").is_dir() or (d / "deps").is_dir()


# --------------------------------------------------------------------------- deps/ twins

def _twin_parent(path: Path) -> Path | None:
    """The dir whose artifacts ``path`` may duplicate: ``X`` for a file in ``X/deps/``."""
    return path.parent.parent if path.parent.name == "deps" else None


def drop_deps_twins(entries: Iterable[T], path_of: Callable[[T], Path],
                    identity_of: Callable[[T], Hashable | None]) -> list[T]:
    """``entries`` without each file of ``X/deps/`` whose identity equals a file's directly in ``X``.

    Identity, not the name: cargo's ``deps/`` copy of ``crash-me.exe`` is
    ``crash_me.exe`` (or ``crash_me-<hash>.dll``).  Entries whose identity is
    None (unreadable) are always kept, so their errors are still reported.
    """
    entries = list(entries)
    top: set[tuple[Path, Hashable]] = set()
    for e in entries:
        ident = identity_of(e)
        if ident is not None and _twin_parent(path_of(e)) is None:
            top.add((path_of(e).parent, ident))
    out = []
    for e in entries:
        parent, ident = _twin_parent(path_of(e)), identity_of(e)
        if parent is not None and ident is not None and (parent, ident) in top:
            continue
        out.append(e)
    return out


# --------------------------------------------------------------------------- packages

def _stem_names(directory: Path) -> list[str]:
    """Target names cargo discovers in ``directory``: ``x.rs`` and ``x/main.rs`` are both ``x``."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return []
    names = []
    for e in entries:
        if e.is_file() and e.name.endswith(".rs"):
            names.append(e.name[:-3])
        elif e.is_dir() and os.path.isfile(os.path.join(e.path, "main.rs")):
            names.append(e.name)
    return names


def _declared(data: dict, table: str) -> list[str]:
    items = data.get(table)
    return [t["name"] for t in items if isinstance(t, dict) and isinstance(t.get("name"), str)] \
        if isinstance(items, list) else []


def package_artifacts(manifest: Path) -> tuple[str, set[str]]:
    """(package name, lower-case file names its targets produce) for a member's Cargo.toml.

    Targets as cargo discovers them: ``[[bin]]``, ``src/main.rs``,
    ``src/bin/*``, ``[[example]]``, ``examples/*``, and a ``[lib]`` whose
    crate-type makes a DLL.  A binary ``a-b`` is ``a-b.exe`` (``a-b`` off
    Windows) with ``a_b.pdb``; a DLL ``a-b`` is ``a_b.dll`` with ``a_b.pdb``.
    """
    data = read_toml(manifest)
    package = data.get("package") if isinstance(data.get("package"), dict) else {}
    name = package.get("name")
    if not isinstance(name, str):
        return "", set()
    src = manifest.parent
    bins = _declared(data, "bin")
    if package.get("autobins", True) is not False:
        if (src / "src" / "main.rs").is_file():
            bins.append(name)
        bins += _stem_names(src / "src" / "bin")
    examples = _declared(data, "example")
    if package.get("autoexamples", True) is not False:
        examples += _stem_names(src / "examples")
    files: set[str] = set()
    for exe in bins + examples:
        files |= {exe, f"{exe}.exe", f"{exe.replace('-', '_')}.pdb", f"{exe}.dwp"}
    lib = data.get("lib") if isinstance(data.get("lib"), dict) else {}
    if lib or (src / "src" / "lib.rs").is_file():
        lib_name = str(lib.get("name") or name).replace("-", "_")
        crate_types = lib.get("crate-type", lib.get("crate_type", ["lib"]))
        if isinstance(crate_types, list) and {"cdylib", "dylib"} & set(crate_types):
            files |= {f"{lib_name}.dll", f"{lib_name}.pdb", f"lib{lib_name}.so", f"lib{lib_name}.dylib"}
    return name, {f.lower() for f in files}


def member_packages(ws: CargoWorkspace) -> dict[str, set[str]]:
    """Each member package's name and its artifact file names, in member order."""
    out: dict[str, set[str]] = {}
    for member in ws.members:
        manifest = member / "Cargo.toml"
        if manifest.is_file():
            name, files = package_artifacts(manifest)
            if name:
                out[name] = files
    return out


# --------------------------------------------------------------------------- triples

def known_triples(env: Mapping[str, str]) -> set[str] | None:
    """``rustc --print target-list``; None when rustc cannot tell (then every triple is accepted)."""
    import subprocess

    rustc = env.get("RUSTC") or "rustc"
    try:
        proc = subprocess.run([rustc, "--print", "target-list"], env=dict(env), capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    names = set(proc.stdout.split()) if proc.returncode == 0 else set()
    return names or None


def _check_triples(targets: Sequence[str], ws: CargoWorkspace, env: Mapping[str, str]) -> list[str]:
    """Directory names of ``--target`` values; UsageError for a triple rustc does not know."""
    out: list[str] = []
    known: set[str] | None = None
    for target in targets:
        if target.endswith(".json"):  # a target spec file builds into a dir named by its stem
            out.append(Path(target).stem)
            continue
        built = ws.target_dir is not None and (ws.target_dir / target).is_dir()
        if not built:
            known = known_triples(env) if known is None else known
            if known is not None and target not in known:
                raise UsageError(f"unknown target triple {target!r} (see `rustc --print target-list`)")
        out.append(target)
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- the selection

@dataclass
class OutputSelection:
    """The build outputs picked by ``--manifest-path``, ``-p``, ``--profile`` and ``--target``."""

    workspace: CargoWorkspace
    profile: str
    triples: list[str]  # from --target; empty: build.target, else the host and other built triples
    packages: list[str] = field(default_factory=list)
    artifact_names: frozenset[str] | None = None  # the packages' file names (lower case); None: all

    @property
    def dir_name(self) -> str:
        return profile_dir_name(self.profile)

    def candidate_dirs(self) -> list[Path]:
        """Every dir this profile's output may be in (existing or not), as cargo lays them out.

        Without ``--target``: the triples of ``build.target`` when it is set (what
        ``cargo build`` builds; other triples' output is not the default, as for cargo),
        else the host dir, then ``<target>/<triple>/<profile>`` left by earlier
        ``--target`` builds.
        """
        target = self.workspace.target_dir
        if target is None:
            return []
        if self.triples:
            return [target / t / self.dir_name for t in self.triples]
        dirs = list(self.workspace.profile_dirs(self.profile))
        if self.workspace.triples:
            return dirs
        if target / self.dir_name not in dirs:
            dirs.append(target / self.dir_name)
        try:
            children = sorted(c for c in target.iterdir() if c.is_dir() and not c.name.startswith("."))
        except OSError:
            children = []
        for child in children:
            candidate = child / self.dir_name
            if candidate not in dirs and is_profile_dir(candidate) and not is_profile_dir(child):
                dirs.append(candidate)
        return dirs

    def dirs(self) -> list[Path]:
        """The candidate dirs that exist."""
        return [d for d in self.candidate_dirs() if d.is_dir()]

    def wants(self, path: Path) -> bool:
        """Whether ``path`` belongs to the selected packages (every file when no ``-p``).

        A dSYM's DWARF file is named ``<crate>-<hash>`` inside ``<binary>.dSYM/Contents/
        Resources/DWARF/``: it belongs to the binary the bundle is named after."""
        if self.artifact_names is None:
            return True
        parents = path.parents
        if len(parents) > 3 and parents[0].name == "DWARF" and parents[2].name == "Contents" \
                and parents[3].name.endswith(".dSYM"):
            return parents[3].name[:-len(".dSYM")].lower() in self.artifact_names
        return path.name.lower() in self.artifact_names

    def build_command(self) -> str:
        """The cargo command that makes this output."""
        words = ["cargo build", "--release" if self.profile == "release" else f"--profile {self.profile}"]
        words += [f"-p {p}" for p in self.packages] + [f"--target {t}" for t in self.triples]
        return " ".join(words)

    def no_output(self, alternative: str = ", or give PATHs") -> UsageError:
        """The error for an empty selection: what was searched and how to fill it."""
        searched = ", ".join(str(d) for d in self.candidate_dirs()) or "(no target dir)"
        what = f"profile {self.profile!r}" + (f", package {', '.join(self.packages)}" if self.packages else "")
        return UsageError(f"no build output for {what} in {searched}: run `{self.build_command()}` first"
                          + alternative)


def select_outputs(manifest_path: str | os.PathLike[str] | None = None, packages: Sequence[str] = (),
                   profile: str | None = None, targets: Sequence[str] = (),
                   env: Mapping[str, str] | None = None) -> OutputSelection:
    """Resolve cargo's selection options against the workspace around ``manifest_path`` (default: cwd).

    UsageError (exit 2) for a missing manifest, an unknown profile, package or triple.
    """
    env = os.environ if env is None else env
    start: Path | None = None
    if manifest_path is not None:
        start = Path(manifest_path)
        if not start.is_file():
            raise UsageError("manifest path does not exist or is not a file", start)
    ws = find_workspace(start, env)
    if ws.manifest is None or ws.target_dir is None:
        raise UsageError(f"no Cargo.toml in {ws.start} or any parent: give --manifest-path or PATHs")
    profile = profile or DEFAULT_PROFILE
    if profile not in ws.profiles():
        raise UsageError(f"profile {profile!r} is not defined in {ws.manifest} or the cargo config "
                         f"(defined: {', '.join(ws.profiles())})")
    triples = _check_triples(targets, ws, env)
    names: frozenset[str] | None = None
    if packages:
        members = member_packages(ws)
        unknown = [p for p in packages if p not in members]
        if unknown:
            raise UsageError(f"package {', '.join(map(repr, unknown))} is not a member of the workspace "
                             f"{ws.root} (members: {', '.join(members) or 'none'})")
        names = frozenset(f for p in packages for f in members[p])
    return OutputSelection(ws, profile, triples, list(dict.fromkeys(packages)), names)


__all__ = ["DEFAULT_PROFILE", "OutputSelection", "drop_deps_twins", "is_profile_dir", "known_triples",
           "member_packages", "package_artifacts", "select_outputs"]
