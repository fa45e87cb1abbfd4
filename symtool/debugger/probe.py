"""Gather the inputs of :func:`symtool.debugger.paths.compute` from this machine.

Runs in every new shell, so it stays cheap: stdlib only, no ``cargo
metadata`` (the workspace, its config files and target dir come from
:mod:`symtool.cargo.workspace`), and what ``rustc -vV`` / ``rustc --print sysroot`` said, and the
``/rustc/<hash>`` found in each built PDB, are cached in
``<default cache dir>/env-cache.json`` keyed by modification times.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from symtool.cargo.workspace import CargoWorkspace, cargo_home, find_workspace, profile_dir_name
from symtool.debugger.paths import ENV_NAMES, BuildDir, Inputs
from symtool.settings import absolute_store, debugger_location, default_cache_dir, load_settings
from symtool.store.layout import strip_userinfo

CACHE_FILE = "env-cache.json"
CACHE_VERSION = 1

# Bounds for finding /rustc/<hash> in a PDB: chunks read, bytes per PDB, PDBs per run.
SCAN_CHUNK = 1 << 20
SCAN_MAX_BYTES = 64 << 20
SCAN_MAX_PDBS = 32
_RUSTC_PATH = re.compile(rb"[/\\]rustc[/\\]([0-9a-f]{40})[/\\]")


# --------------------------------------------------------------------------- cache

class EnvCache:
    """A small JSON file; unreadable or foreign content is treated as empty."""

    def __init__(self, path: Path | None):
        self.path = path
        self.data: dict[str, Any] = {"version": CACHE_VERSION, "toolchains": {}, "pdbs": {}}
        self.dirty = False
        if path is None:
            return
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if (isinstance(loaded, dict) and loaded.get("version") == CACHE_VERSION
                and isinstance(loaded.get("toolchains"), dict) and isinstance(loaded.get("pdbs"), dict)):
            self.data = loaded

    def section(self, name: str) -> dict[str, Any]:
        """A named dict of cached facts (created empty), e.g. ``target_lists`` for symtool check."""
        table = self.data.get(name)
        if not isinstance(table, dict):
            table = self.data[name] = {}
        return table

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        pdbs = self.data["pdbs"]
        if len(pdbs) > 1000:  # keep the newest entries only
            self.data["pdbs"] = dict(list(pdbs.items())[-1000:])
        try:
            from symtool.fsutil import atomic_write_text

            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(self.data, indent=1))
        except OSError:
            pass  # a read-only cache dir costs speed, not correctness


def _mtime(path: str | Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


# --------------------------------------------------------------------------- toolchain

def _run_all(argvs: list[list[str]], cwd: str | None, environ: dict[str, str]) -> list[str | None]:
    """Run the commands concurrently (each rustup proxy start costs tens of ms); stdout or None each."""
    import subprocess

    procs = []
    for argv in argvs:
        try:
            # Bytes, decoded below as UTF-8: rustc writes its paths in UTF-8 on every OS, and text=True
            # would decode them in the ANSI code page on Windows (cp1252: a wrong sysroot, then cached).
            procs.append(subprocess.Popen(argv, cwd=cwd, env=environ, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL))
        except (OSError, ValueError):
            procs.append(None)
    out: list[str | None] = []
    for proc in procs:
        if proc is None:
            out.append(None)
            continue
        try:
            stdout, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            out.append(None)
            continue
        try:
            text = stdout.decode("utf-8").replace("\r\n", "\n")
        except UnicodeDecodeError:
            text = None  # not what rustc writes: no answer rather than a wrong one
        out.append(text if proc.returncode == 0 else None)
    return out


def _which(program: str, environ: dict[str, str]) -> str | None:
    """shutil.which without importing shutil (it pulls in compression modules)."""
    if os.path.dirname(program):
        return program if os.path.isfile(program) else None
    exts = [""]
    if sys.platform == "win32":
        exts += environ.get("PATHEXT", ".EXE;.BAT;.CMD").lower().split(";")
    for directory in environ.get("PATH", "").split(os.pathsep):
        for ext in exts:
            candidate = os.path.join(directory or ".", program + ext)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


def toolchain_key(root: str | None, environ: dict[str, str], rustc: str) -> str:
    """What decides which toolchain `rustc` is: env, rust-toolchain files, rustup's default."""
    files = []
    directory = Path(root) if root else Path.cwd()
    for d in (directory, *directory.parents):
        for name in ("rust-toolchain", "rust-toolchain.toml"):
            m = _mtime(d / name)
            if m is not None:
                files.append([str(d / name), m])
    rustup_home = environ.get("RUSTUP_HOME") or os.path.join(os.path.expanduser("~"), ".rustup")
    exe = _which(rustc, environ)
    key = [root, rustc, exe, _mtime(exe) if exe else None, environ.get("RUSTUP_TOOLCHAIN"),
           _mtime(os.path.join(rustup_home, "settings.toml")), files]
    return json.dumps(key)


def probe_toolchain(root: str | None, environ: dict[str, str], cache: EnvCache) -> dict[str, Any]:
    """{"sysroot", "commit", "rustc_mtime"} from the cache or from rustc itself."""
    rustc = environ.get("RUSTC") or "rustc"
    key = toolchain_key(root, environ, rustc)
    entry = cache.data["toolchains"].get(key)
    if isinstance(entry, dict) and entry.get("sysroot"):
        exe = os.path.join(entry["sysroot"], "bin", "rustc.exe" if sys.platform == "win32" else "rustc")
        if _mtime(exe) == entry.get("rustc_mtime"):
            return entry
    version, sysroot = _run_all([[rustc, "-vV"], [rustc, "--print", "sysroot"]], root, environ)
    commit = None
    if version:
        for line in version.splitlines():
            if line.startswith("commit-hash:"):
                value = line.split(":", 1)[1].strip()
                commit = value if re.fullmatch(r"[0-9a-f]{40}", value) else None
    entry = {"sysroot": sysroot.strip() if sysroot else None, "commit": commit}
    if entry["sysroot"] and os.path.isdir(entry["sysroot"]):  # cached only when it names a real directory
        exe = os.path.join(entry["sysroot"], "bin", "rustc.exe" if sys.platform == "win32" else "rustc")
        entry["rustc_mtime"] = _mtime(exe)
        cache.data["toolchains"][key] = entry
        cache.dirty = True
    return entry


def scan_pdb_commit(path: str | Path) -> str | None:
    """The first /rustc/<40 hex>/ in a PDB's bytes, reading bounded chunks (no PDB parsing)."""
    overlap = 64
    tail = b""
    read = 0
    with open(path, "rb") as f:
        while read < SCAN_MAX_BYTES:
            chunk = f.read(SCAN_CHUNK)
            if not chunk:
                return None
            read += len(chunk)
            buf = tail + chunk
            m = _RUSTC_PATH.search(buf)
            if m:
                return m.group(1).decode("ascii")
            tail = buf[-overlap:]
    return None


def pdb_commits(build_dirs: list[BuildDir], cache: EnvCache) -> dict[str, str]:
    found: dict[str, str] = {}
    scanned = 0
    for b in build_dirs:
        try:
            entries = sorted(e.path for e in os.scandir(b.path) if e.name.lower().endswith(".pdb"))
        except OSError:
            continue
        for pdb in entries:
            if scanned >= SCAN_MAX_PDBS:
                return found
            scanned += 1
            try:
                st = os.stat(pdb)
            except OSError:
                continue
            cached = cache.data["pdbs"].get(pdb)
            if isinstance(cached, list) and len(cached) == 3 and cached[:2] == [st.st_size, st.st_mtime_ns]:
                commit = cached[2]
            else:
                try:
                    commit = scan_pdb_commit(pdb)
                except OSError:
                    continue
                cache.data["pdbs"][pdb] = [st.st_size, st.st_mtime_ns, commit]
                cache.dirty = True
            if commit:
                found[pdb] = commit
    return found


# --------------------------------------------------------------------------- workspace

def _has_outputs(directory: str) -> bool:
    """A profile dir holding at least one visible file (cargo's host dirs under --target hold only subdirs)."""
    try:
        with os.scandir(directory) as it:
            for e in it:
                if not e.name.startswith(".") and e.is_file():
                    return True
    except OSError:
        pass
    return False


def standard_build_dirs(facts: CargoWorkspace) -> list[BuildDir]:
    """Where cargo will write each profile of the workspace for each target it builds (build.target,
    else the host), with ``deps``, whether built yet or not: a shell that evaluated ``symtool env``
    before the first build must find the PDBs after it."""
    out: list[BuildDir] = []
    seen: set[str] = set()
    for triple in facts.triples or [None]:
        for profile in ("release", *facts.profiles()):
            directory = facts.profile_dir(profile, triple)
            if directory is None or str(directory) in seen:
                continue  # dev and test share debug/, release and bench release/
            seen.add(str(directory))
            out.append(BuildDir(str(directory), profile_dir_name(profile), triple, True))
    return out


def find_build_dirs(target_dir: str, triples: list[str], profiles: list[str]) -> list[BuildDir]:
    """Existing profile output dirs: configured triples, other triple dirs found, then the host dir."""
    found_triples: list[str] = []
    try:
        with os.scandir(target_dir) as it:
            names = sorted(e.name for e in it if e.is_dir() and "-" in e.name)
    except OSError:
        return []
    for name in names:
        if name in profiles or name in triples:
            continue
        if any(os.path.isdir(os.path.join(target_dir, name, p)) for p in profiles):
            found_triples.append(name)
    bases: list[tuple[str, str | None]] = [(os.path.join(target_dir, t), t) for t in triples + found_triples]
    bases.append((target_dir, None))
    out = []
    for base, triple in bases:
        for profile in profiles:
            d = os.path.join(base, profile)
            if _has_outputs(d):
                out.append(BuildDir(d, profile, triple, os.path.isdir(os.path.join(d, "deps"))))
    return out


def gather(start: Path | None = None, environ: dict[str, str] | None = None, *,
           use_cache: bool = True, toolchain: bool = True, scan_pdbs: bool = True) -> Inputs:
    env = dict(os.environ if environ is None else environ)
    platform = sys.platform
    facts = find_workspace(start, env)
    manifest = facts.manifest
    settings = load_settings(start, env, manifest=manifest)
    cache = EnvCache(Path(default_cache_dir(platform, env)) / CACHE_FILE if use_cache else None)
    inputs = Inputs(platform=platform)
    inputs.cache, inputs.cache_source = settings.cache, settings.cache_source
    base = manifest.parent if (manifest is not None and settings.stores_source != "env:SYMTOOL_STORE") else Path.cwd()
    # Object storage reaches a debugger only through its configured public URL.
    inputs.stores = [d for s in settings.stores
                     if (d := debugger_location(absolute_store(s, base), settings.raw)) is not None]
    bare = [strip_userinfo(s) for s in inputs.stores]
    if bare != inputs.stores:
        # Written into shells, files and JSON, a password would end up in history and logs.
        inputs.warnings.append(f"a store URL from {settings.stores_source} holds a user name or password: left out "
                               "of every path; credentials belong in SYMTOOL_HTTP_USER/SYMTOOL_HTTP_PASSWORD "
                               "or SYMTOOL_HTTP_TOKEN")
        inputs.stores = bare
    inputs.stores_source = settings.stores_source
    home, inputs.cargo_home_source = cargo_home(env)
    inputs.cargo_home = str(home)
    inputs.debuginfod_urls = env.get("DEBUGINFOD_URLS", "")
    inputs.inherited = {which: env[name] for which, name in ENV_NAMES.items() if env.get(name)}
    root: Path | None = None
    if manifest is not None:
        root = manifest.parent
        inputs.workspace_root, inputs.manifest = str(root), str(manifest)
        inputs.members = [str(m) for m in facts.members if m != root]
        inputs.target_dir, inputs.target_dir_source = str(facts.target_dir), facts.target_dir_source
        dir_names = list(dict.fromkeys(profile_dir_name(p) for p in ("release", *facts.profiles())))
        standard = standard_build_dirs(facts)
        listed = {b.path for b in standard}
        # then what earlier builds left elsewhere: other triples, host builds beside --target ones
        inputs.build_dirs = standard + [b for b in find_build_dirs(inputs.target_dir, facts.triples, dir_names)
                                        if b.path not in listed]
    reg = os.path.join(home, "registry", "src")
    try:
        with os.scandir(reg) as it:
            inputs.registry_src = sorted(e.path for e in it if e.is_dir())
    except OSError:
        pass
    git = os.path.join(home, "git", "checkouts")
    if os.path.isdir(git):
        inputs.git_checkouts = git
    if toolchain:
        tc = probe_toolchain(str(root) if root else None, env, cache)
        inputs.sysroot, inputs.commit = tc.get("sysroot"), tc.get("commit")
        if inputs.sysroot:
            rustlib = os.path.join(inputs.sysroot, "lib", "rustlib")
            inputs.rust_src_installed = os.path.isdir(os.path.join(rustlib, "src", "rust"))
            try:
                with os.scandir(os.path.join(rustlib, "etc")) as it:
                    inputs.natvis = sorted(e.path for e in it if e.name.endswith(".natvis"))
            except OSError:
                pass
        else:
            inputs.warnings.append(
                f"{env.get('RUSTC') or 'rustc'} did not run: the source path lacks the Rust standard library")
    if scan_pdbs and inputs.build_dirs:
        inputs.pdb_commits = pdb_commits(inputs.build_dirs, cache)
    cache.save()
    return inputs
