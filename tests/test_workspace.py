"""symtool.cargo.workspace: the cargo workspace facts every command shares.

The first half pins the rules on small trees.  The second half is the
regression test of issue 10: cargo is the oracle.  For each config layout
below, real ``cargo build --release -p crash-me`` runs once, the directories
it wrote ``crash-me.exe`` into are read from its ``--message-format=json``
artifacts, and then ``symtool publish`` (no PATH), ``verify``, ``env --json``
and ``check --json`` must all find exactly those directories.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import ROOT, SAMPLES, TRIPLE, cargo_env, need_tool
from symtool.cargo.workspace import (
    config_paths, find_root_manifest, find_workspace, load_config_layers, merged_value, profile_dir_name,
    workspace_members,
)
from symtool.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


PACKAGE = '[package]\nname = "{}"\nversion = "0.1.0"\n'


# --------------------------------------------------------------------------- rules

def test_config_precedence_legacy_name_parents_then_cargo_home(tmp_path):
    ws = tmp_path / "ws"
    legacy = write(ws / ".cargo" / "config", "[build]\ntarget-dir = 'legacy'\n")
    write(ws / ".cargo" / "config.toml", "[build]\ntarget-dir = 'toml'\n")
    sub = write(ws / "crates" / "a" / ".cargo" / "config.toml", "[build]\njobs = 1\n")
    home = write(tmp_path / "home" / "config.toml", "[build]\ntarget-dir = 'home'\n")
    env = {"CARGO_HOME": str(home.parent)}
    assert config_paths(ws / "crates" / "a", env)[:3] == [sub, legacy, home]
    # $CARGO_HOME already passed on the walk is read once, at its place in the walk.
    assert config_paths(home.parent, env).count(home) == 1
    facts = find_workspace(ws / "crates" / "a", env)
    assert facts.target_dir == ws / "legacy"
    assert facts.target_dir_source == f"{legacy}:build.target-dir"


def test_target_dir_sources_and_bases(tmp_path):
    ws = tmp_path / "ws"
    write(ws / "Cargo.toml", PACKAGE.format("ws"))
    cfg = write(ws / ".cargo" / "config.toml",
                '[build]\ntarget-dir = "out"\ntarget = ["x86_64-pc-windows-msvc", "specs/my-target.json"]\n')
    home = tmp_path / "cargo-home"
    home.mkdir()
    sub = ws / "src"
    sub.mkdir()
    env = {"CARGO_HOME": str(home)}
    facts = find_workspace(sub, env)
    # A file's relative value is relative to the parent of its .cargo dir, not to the cwd.
    assert (facts.target_dir, facts.target_dir_source) == (ws / "out", f"{cfg}:build.target-dir")
    assert facts.triples == ["x86_64-pc-windows-msvc", "my-target"]
    assert facts.profile_dirs("bench") == [ws / "out" / "x86_64-pc-windows-msvc" / "release",
                                           ws / "out" / "my-target" / "release"]
    # Environment values are relative to the cwd; CARGO_TARGET_DIR beats CARGO_BUILD_TARGET_DIR.
    facts = find_workspace(sub, {**env, "CARGO_BUILD_TARGET_DIR": "bt", "CARGO_BUILD_TARGET": "i686-pc-windows-msvc"})
    assert (facts.target_dir, facts.target_dir_source) == (sub / "bt", "env:CARGO_BUILD_TARGET_DIR")
    assert (facts.triples, facts.triples_source) == (["i686-pc-windows-msvc"], "env:CARGO_BUILD_TARGET")
    facts = find_workspace(sub, {**env, "CARGO_BUILD_TARGET_DIR": "bt", "CARGO_TARGET_DIR": "t"})
    assert (facts.target_dir, facts.target_dir_source) == (sub / "t", "env:CARGO_TARGET_DIR")
    # --config beats the environment's CARGO_BUILD_TARGET_DIR, and is relative to the cwd.
    facts = find_workspace(sub, {**env, "CARGO_BUILD_TARGET_DIR": "bt"}, ["build.target-dir='cli'"])
    assert (facts.target_dir, facts.target_dir_source) == (sub / "cli", "--config build.target-dir='cli'")
    # No config: target/ beside the root manifest; host builds have no triple dir.
    bare = tmp_path / "bare"
    write(bare / "Cargo.toml", PACKAGE.format("bare"))
    facts = find_workspace(bare, env)
    assert (facts.target_dir, facts.target_dir_source, facts.triples) == (bare / "target", "default", [])
    assert facts.profile_dirs("dev") == [bare / "target" / "debug"]
    assert facts.deps_dirs("release") == [bare / "target" / "release" / "deps"]
    # $CARGO_HOME's file counts outside any workspace too, relative to CARGO_HOME's parent.
    write(home / "config.toml", "[build]\ntarget-dir = 'shared-target'\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    facts = find_workspace(outside, env)
    assert facts.manifest is None and facts.target_dir == tmp_path / "shared-target"


def test_bad_config_is_a_config_error_naming_the_file(tmp_path):
    cfg = write(tmp_path / "ws" / ".cargo" / "config.toml", "[build\n")
    with pytest.raises(ConfigError) as err:
        find_workspace(tmp_path / "ws", {"CARGO_HOME": str(tmp_path / "home")})
    assert err.value.path == str(cfg)
    write(tmp_path / "ws" / ".cargo" / "config.toml", "[build]\ntarget-dir = 3\n")
    with pytest.raises(ConfigError, match="target-dir"):
        find_workspace(tmp_path / "ws", {"CARGO_HOME": str(tmp_path / "home")})
    with pytest.raises(ConfigError, match="empty"):
        find_workspace(tmp_path / "ws", {"CARGO_TARGET_DIR": ""})


def test_lists_merge_across_files_scalars_do_not(tmp_path):
    write(tmp_path / ".cargo" / "config.toml", "[build]\ntarget = ['a-b-c']\ntarget-dir = 'outer'\n")
    write(tmp_path / "in" / ".cargo" / "config.toml", "[build]\ntarget = ['d-e-f']\ntarget-dir = 'inner'\n")
    layers = load_config_layers(tmp_path / "in", {"CARGO_HOME": str(tmp_path / "none")})
    assert merged_value(layers, ("build", "target"))[0] == ["d-e-f", "a-b-c"]
    assert merged_value(layers, ("build", "target-dir"))[0] == "inner"
    write(tmp_path / ".cargo" / "config.toml", "[build]\ntarget = 'a-b-c'\n")
    layers = load_config_layers(tmp_path / "in", {"CARGO_HOME": str(tmp_path / "none")})
    with pytest.raises(ConfigError):
        merged_value(layers, ("build", "target"))


def test_root_members_exclude_default_members(tmp_path):
    for name in ("a", "b", "skip", "nomanifest", ".hidden"):
        (tmp_path / "crates" / name).mkdir(parents=True)
        if name != "nomanifest":
            write(tmp_path / "crates" / name / "Cargo.toml", PACKAGE.format(name.strip(".")))
    write(tmp_path / "tools" / "Cargo.toml", PACKAGE.format("tools"))
    write(tmp_path / "outside" / "Cargo.toml", PACKAGE.format("outside"))
    root = write(tmp_path / "Cargo.toml",
                 '[workspace]\nmembers = ["tools", "crates/*", "crates/a"]\nexclude = ["crates/skip", "outside"]\n'
                 'default-members = ["tools"]\n')
    data = {"workspace": {"members": ["tools", "crates/*", "crates/a"], "exclude": ["crates/skip", "outside"],
                          "default-members": ["tools"]}}
    members, defaults = workspace_members(root, data)
    # cargo's glob crate lets * match dot-names; Python's glob only does with include_hidden (3.11+).
    expected = [tmp_path / "tools", tmp_path / "crates" / "a", tmp_path / "crates" / "b"]
    assert [m for m in members if m.name != ".hidden"] == expected
    assert defaults == [tmp_path / "tools"]
    assert find_root_manifest(tmp_path / "crates" / "b" / "Cargo.toml") == root
    assert find_root_manifest(tmp_path / "crates" / "a") == root
    # An excluded package is its own root, as cargo treats it.
    assert find_root_manifest(tmp_path / "outside") == tmp_path / "outside" / "Cargo.toml"
    assert find_root_manifest(tmp_path / "crates" / "skip") == tmp_path / "crates" / "skip" / "Cargo.toml"
    # A root package is a member and the default member.
    write(tmp_path / "pkg" / "Cargo.toml", PACKAGE.format("pkg") + '[workspace]\nmembers = ["sub"]\n')
    write(tmp_path / "pkg" / "sub" / "Cargo.toml", PACKAGE.format("sub"))
    members, defaults = workspace_members(tmp_path / "pkg" / "Cargo.toml",
                                          {"package": {}, "workspace": {"members": ["sub"]}})
    assert members == [tmp_path / "pkg", tmp_path / "pkg" / "sub"] and defaults == [tmp_path / "pkg"]
    # package.workspace names the root explicitly.
    write(tmp_path / "far" / "Cargo.toml", PACKAGE.format("far") + 'workspace = "../pkg"\n')
    assert find_root_manifest(tmp_path / "far") == tmp_path / "pkg" / "Cargo.toml"


def test_profile_dir_names_and_profiles(tmp_path):
    assert [profile_dir_name(p) for p in ("dev", "test", "release", "bench", "dist")] == \
        ["debug", "debug", "release", "release", "dist"]
    write(tmp_path / "Cargo.toml", PACKAGE.format("p") + '[profile.dist]\ninherits = "release"\n')
    write(tmp_path / ".cargo" / "config.toml", '[profile.ci]\ninherits = "dev"\n')
    facts = find_workspace(tmp_path, {"CARGO_HOME": str(tmp_path / "none")})
    assert facts.profiles() == ["dev", "release", "test", "bench", "dist", "ci"]
    assert facts.profile_dirs("ci") == [tmp_path / "target" / "ci"]


def test_workspace_module_stays_stdlib_only():
    """`symtool env` runs in every shell: the module must not pull in third-party packages."""
    code = ("import sys, symtool.cargo.workspace, symtool.debugger.probe; "
            "print(sorted(m for m in ('typer', 'rich', 'tomlkit', 'requests', 'click', 'subprocess') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- cargo is the oracle

# samples/.cargo/config.toml links this target too (its [target] table).
AARCH64 = "aarch64-pc-windows-msvc"


@dataclass
class Built:
    workspace: Path
    cwd: Path  # where cargo ran, and where the symtool commands run
    env: dict[str, str]
    exe_dirs: list[Path]  # where cargo wrote crash-me.exe, from its JSON artifact messages

    @property
    def target_dirs(self) -> set[Path]:
        return {d.parent.parent for d in self.exe_dirs}  # <target>/<triple>/release


def _with_build(config: str, *, target_dir: str | None = None, targets: str | None = None) -> str:
    if targets is not None:
        config = config.replace(f'target = "{TRIPLE}"', f"target = {targets}")
    if target_dir is not None:
        config = config.replace("[build]\n", f'[build]\ntarget-dir = "{target_dir}"\n', 1)
    return config


def _layout(name: str, ws: Path) -> tuple[Path, dict[str, str]]:
    """Set up one config layout in the copy ``ws``; (cwd for cargo and symtool, extra env)."""
    cfg = ws / ".cargo" / "config.toml"
    sample = cfg.read_text()
    if name == "config-target-dir":
        cfg.write_text(_with_build(sample, target_dir="build-out"))
        return ws / "crates" / "hello", {}
    if name == "legacy-config-wins":
        # cargo reads .cargo/config and ignores config.toml (with a warning); config.toml's
        # target would make the build fail, so a passing build proves which one cargo read.
        (ws / ".cargo" / "config").write_text(_with_build(sample, target_dir="legacy-out"))
        cfg.write_text(_with_build(sample, target_dir="toml-out", targets='"nosuch-pc-windows-msvc"')
                       + '[profile.release]\ndebug = 0\n')  # `check` would report this if it read config.toml
        return ws, {}
    if name == "env-target-dir":
        cfg.write_text(_with_build(sample, target_dir="build-out"))
        return ws / "crates" / "crash-me", {"CARGO_TARGET_DIR": "env-out"}  # relative: to the cwd
    if name == "nearer-config":
        cfg.write_text(_with_build(sample, target_dir="build-out"))
        write(ws / "crates" / "crash-me" / ".cargo" / "config.toml", '[build]\ntarget-dir = "../sub-out"\n')
        return ws / "crates" / "crash-me", {}
    if name == "target-list":
        cfg.write_text(_with_build(sample, targets=f'["{TRIPLE}", "{AARCH64}"]'))
        return ws, {"CARGO_BUILD_TARGET_DIR": "bt-out"}
    raise ValueError(name)


LAYOUTS = ["config-target-dir", "legacy-config-wins", "env-target-dir", "nearer-config", "target-list"]


@pytest.fixture(scope="module", params=LAYOUTS)
def built(request, tmp_path_factory) -> Built:
    need_tool("cargo")
    base = tmp_path_factory.mktemp(request.param)
    ws = base / "ws"
    shutil.copytree(SAMPLES, ws, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    (base / "cargo-home").mkdir()
    (base / "cache").mkdir()
    cwd, extra = _layout(request.param, ws)
    env = {k: v for k, v in cargo_env(CARGO_HOME=str(base / "cargo-home"), **extra).items()
           if not k.startswith(("SYMTOOL_", "_NT_"))}
    for key in ("CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"):
        if key not in extra:
            env.pop(key, None)
    env.update(XDG_CACHE_HOME=str(base / "cache"), NO_COLOR="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(["cargo", "build", "--release", "-p", "crash-me", "--message-format=json"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exe_dirs = []
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            # cargo joins a relative target-dir as written ("../sub-out"): compare normalized paths.
            exe_dirs.append(Path(os.path.normpath(message["executable"])).parent)
    assert exe_dirs, proc.stdout
    if request.param == "legacy-config-wins":
        assert "config.toml" in proc.stderr  # cargo's warning that it ignores one of them
    return Built(ws, cwd, env, sorted(set(exe_dirs)))


def run_symtool(built: Built, *args: str) -> subprocess.CompletedProcess:
    return symtool_in_process(*args, cwd=built.cwd, env=built.env, timeout=300)


def test_publish_finds_what_cargo_wrote(built, tmp_path):
    proc = run_symtool(built, "publish", "--store", str(tmp_path / "store"), "--json")
    assert proc.returncode == 0, proc.stderr
    published = {Path(f["path"]) for f in json.loads(proc.stdout)["files"]}
    assert {p.parent for p in published} == set(built.exe_dirs)
    assert {d / "crash_me.pdb" for d in built.exe_dirs} <= published
    # Each triple's crash-me.exe, except where two images share one store key (rust-lld gives the
    # x64 and arm64 builds the same timestamp and size): the store keeps one per key.
    assert {p.name for p in published} == {"crash-me.exe", "crash_me.pdb"}


def test_verify_finds_what_cargo_wrote(built):
    proc = run_symtool(built, "verify", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = json.loads(proc.stdout)
    assert {Path(r["binary"]) for r in records} == {d / "crash-me.exe" for d in built.exe_dirs}
    assert all(r["status"] == "match" for r in records)


def test_env_finds_what_cargo_wrote(built):
    proc = run_symtool(built, "env", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {Path(out["target_dir"]["value"])} == built.target_dirs
    build_dirs = {Path(e["value"]) for e in out["symbol_path"]["elements"] if e["kind"] == "build-dir"}
    assert set(built.exe_dirs) <= build_dirs
    assert all(any(d.is_relative_to(t) for t in built.target_dirs) for d in build_dirs), build_dirs


def test_check_reads_the_config_cargo_read(built):
    proc = run_symtool(built, "check", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert Path(out["workspace_root"]) == built.workspace
    assert out["ok"] and not any(p["findings"] for p in out["profiles"])
    # The targets check judges for: every configured triple, each one cargo built for.
    assert TRIPLE in out["targets"]
    assert set(out["targets"]) == {d.parent.name for d in built.exe_dirs}
    assert {Path(p["output_dir"]) for p in out["profiles"] if p["name"] == "release"} == set(built.exe_dirs)
    proc = run_symtool(built, "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == f"workspace {built.workspace} (targets: {', '.join(out['targets'])})"
