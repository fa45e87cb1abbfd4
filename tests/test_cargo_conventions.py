"""verify, publish and env read build output the way cargo wrote it (issue 11, items 5-8, 12).

Real cargo builds of samples/ (release and dist for x86_64-pc-windows-msvc, the
``sample_build`` fixture), a target dir copied without hard links, and the
console script run as a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import TRIPLE, need_tool, sample_layout
from symtool.cargo.outputs import package_artifacts
from symtool.debugger.shells import default_shell, render, shell_syntax
from symtool.errors import FormatError, UsageError
from symtool.formats.detect import read_identity
from symtool.text import article, count

BIN = Path(sys.executable).parent


def symtool(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """The console script's entry point (symtool.main), in-process (tests/cli_runner.py); bash runs the
    installed script itself in the completion test."""
    return symtool_in_process(*args, cwd=cwd, env=env, timeout=120)


@pytest.fixture
def build_env(sample_build, env):
    # The env fixture moves HOME: rustup must still find its toolchains (rustc --print target-list).
    rustup_home = os.environ.get("RUSTUP_HOME") or os.path.expanduser("~/.rustup")
    env = dict(env, CARGO_TARGET_DIR=str(sample_build.target_dir), RUSTUP_HOME=rustup_home)
    env.pop("CARGO_BUILD_TARGET", None)
    return env


def _binaries(proc) -> list[Path]:
    return [Path(r["binary"]) for r in json.loads(proc.stdout)]


# --------------------------------------------------------------------------- --profile, -p, --target

def test_dist_profile_is_what_verify_and_publish_read(sample_build, build_env, tmp_path):
    """After `cargo build --profile dist`, `symtool publish --profile dist` publishes the dist output."""
    ws = sample_build.workspace
    proc = symtool("verify", "--json", "--profile", "dist", cwd=ws, env=build_env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(_binaries(proc)) == sorted(sample_build.exe(b, "dist") for b in sample_layout().bins)
    store = tmp_path / "store"
    proc = symtool("publish", "--profile", "dist", "--store", store, "--json", cwd=ws, env=build_env)
    assert proc.returncode == 0, proc.stderr
    files = json.loads(proc.stdout)["files"]
    assert {Path(f["path"]).parent for f in files} == {sample_build.out("dist")}
    assert sorted(f["name"] for f in files) == sorted(sample_layout().exe_names() + sample_layout().pdb_names())
    dist_pdb = read_identity(sample_build.pdb("crash-me", "dist")).index
    assert any(f["key"] == f"crash_me.pdb/{dist_pdb}/crash_me.pdb" for f in files)


def test_package_and_target_and_manifest_path(sample_build, build_env, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    manifest = sample_build.workspace / "Cargo.toml"
    proc = symtool("verify", "--json", "--manifest-path", manifest, "-p", "crash-me", "--target", TRIPLE,
                   cwd=elsewhere, env=build_env)
    assert proc.returncode == 0, proc.stderr
    assert _binaries(proc) == [sample_build.exe("crash-me")]
    proc = symtool("publish", "--manifest-path", manifest, "--package", "hello", "--dry-run", "--json",
                   "--store", tmp_path / "s", cwd=elsewhere, env=build_env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(f["name"] for f in json.loads(proc.stdout)["files"]) == ["hello.exe", "hello.pdb"]


@pytest.mark.parametrize("args, words", [
    (["--target", "x86_64-pc-windoes-msvc"], ["unknown target triple", "x86_64-pc-windoes-msvc"]),
    (["--profile", "nightly"], ["profile 'nightly' is not defined", "dist"]),
    (["-p", "no-such-crate"], ["no-such-crate", "crash-me"]),
    (["--manifest-path", "nowhere/Cargo.toml"], ["nowhere"]),
])
@pytest.mark.parametrize("command", ["verify", "publish", "env", "dumps", "stack"])
def test_unknown_triple_profile_package_are_bad_usage(sample_build, build_env, tmp_path, command, args, words,
                                                      fixtures_dir):
    extra = {"publish": ["--store", str(tmp_path / "s")],
             "dumps": [str(fixtures_dir / "dumps" / "symbolic-windows-mini.dmp")],
             "stack": [str(fixtures_dir / "dumps" / "symbolic-windows-mini.dmp")]}.get(command, [])
    proc = symtool(command, *args, *extra, cwd=sample_build.workspace, env=build_env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert all(w in proc.stderr for w in words), proc.stderr


def test_no_build_output_is_exit_2_naming_the_dirs_and_cargo_build(sample_build, build_env, tmp_path):
    """One rule for verify and publish: nothing to act on is bad input (exit 2)."""
    expected_dir = sample_build.target_dir / "aarch64-pc-windows-msvc" / "release"
    for command in ("verify", "publish"):
        extra = ["--store", str(tmp_path / "s")] if command == "publish" else []
        proc = symtool(command, "--target", "aarch64-pc-windows-msvc", *extra, cwd=sample_build.workspace,
                       env=build_env)
        assert proc.returncode == 2, (command, proc.stderr)
        assert str(expected_dir) in proc.stderr, proc.stderr
        assert "cargo build --release --target aarch64-pc-windows-msvc" in proc.stderr
    # A package with no binary (minicore is an rlib): nothing to verify or publish either.
    proc = symtool("verify", "-p", "minicore", cwd=sample_build.workspace, env=build_env)
    assert proc.returncode == 2 and "cargo build --release -p minicore" in proc.stderr, proc.stderr
    assert not (tmp_path / "s").exists()


def test_default_triples_are_build_target_only(build_env, tmp_path):
    """Issue 26, item 3: samples/ sets build.target (Windows); after a `cargo build --release
    --target aarch64-apple-darwin` beside it, verify and publish without --target still read
    build.target's output only, as the README says; --target picks the other triple."""
    from conftest import SAMPLES, cargo_env
    from native_builds import MAC_ARM

    need_tool("dsymutil")  # rustc runs it for the macOS build's .dSYM
    ws = tmp_path / "ws"
    shutil.copytree(SAMPLES, ws, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    target = ws / "target"
    for extra in ([], ["--target", MAC_ARM]):
        proc = subprocess.run(["cargo", "build", "--release", *extra], cwd=ws, capture_output=True, text=True,
                              env=cargo_env(CARGO_TARGET_DIR=str(target)), timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert (target / MAC_ARM / "release" / "crash-me").is_file()  # the Mach-O output is there
    env = dict(build_env, CARGO_TARGET_DIR=str(target))
    proc = symtool("verify", "--json", cwd=ws, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(_binaries(proc)) == sorted(target / TRIPLE / "release" / f"{b}.exe" for b in sample_layout().bins)
    proc = symtool("publish", "--dry-run", "--json", "--store", tmp_path / "s", cwd=ws, env=env)
    assert proc.returncode == 0, proc.stderr
    assert {Path(f["path"]).parent for f in json.loads(proc.stdout)["files"]} == {target / TRIPLE / "release"}
    proc = symtool("verify", "--json", "--target", MAC_ARM, cwd=ws, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {r["format"] for r in json.loads(proc.stdout)} == {"macho"}


def test_env_profile_and_target_select_the_symbol_path(sample_build, build_env):
    env = dict(build_env, SHELL="/bin/bash")
    proc = symtool("env", "--json", "--profile", "dist", "--target", TRIPLE, "-p", "hello",
                   cwd=sample_build.workspace, env=env)
    assert proc.returncode == 0, proc.stderr
    value = json.loads(proc.stdout)["symbol_path"]["value"]
    assert str(sample_build.out("dist")) in value and str(sample_build.out("release")) not in value
    # Without --profile env keeps every profile built: the debugger may be pointed at any of them.
    value = json.loads(symtool("env", "--json", cwd=sample_build.workspace, env=env).stdout)["symbol_path"]["value"]
    assert str(sample_build.out("dist")) in value and str(sample_build.out("release")) in value


def test_package_artifacts_follow_cargo_naming(tmp_path):
    pkg = tmp_path / "p"
    (pkg / "src" / "bin" / "tool").mkdir(parents=True)
    (pkg / "src" / "main.rs").write_text("")
    (pkg / "src" / "lib.rs").write_text("")
    (pkg / "src" / "bin" / "extra-one.rs").write_text("")
    (pkg / "src" / "bin" / "tool" / "main.rs").write_text("")
    (pkg / "Cargo.toml").write_text('[package]\nname = "my-app"\n[lib]\ncrate-type = ["cdylib"]\n'
                                    '[[bin]]\nname = "named"\npath = "x.rs"\n')
    name, files = package_artifacts(pkg / "Cargo.toml")
    assert name == "my-app"
    assert {"my-app.exe", "my_app.pdb", "extra-one.exe", "extra_one.pdb", "tool.exe", "named.exe",
            "my_app.dll"} <= files
    assert "my_app.exe" not in files


# --------------------------------------------------------------------------- deps/ twins

def test_copied_target_dir_counts_each_binary_once(sample_build, build_env, tmp_path):
    """A target dir copied without hard links (a CI artifact): deps/ twins are skipped by identity."""
    copy = tmp_path / "artifact"
    shutil.copytree(sample_build.target_dir, copy)  # copies file data: no hard links survive
    release = copy / TRIPLE / "release"
    assert (release / "deps" / "crash_me.exe").stat().st_ino != (release / "crash-me.exe").stat().st_ino
    env = dict(build_env, CARGO_TARGET_DIR=str(copy))
    proc = symtool("verify", "--json", cwd=sample_build.workspace, env=env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(_binaries(proc)) == [release / name for name in sample_layout().exe_names()]
    proc = symtool("verify", release, cwd=tmp_path)
    n = len(sample_layout().bins)
    assert proc.stdout.splitlines()[-1] == f"{n} binaries: {n} match", proc.stdout
    proc = symtool("publish", "--dry-run", "--json", "--store", tmp_path / "s", cwd=sample_build.workspace, env=env)
    assert proc.returncode == 0, proc.stderr
    files = json.loads(proc.stdout)["files"]
    assert sorted(f["name"] for f in files) == sorted(sample_layout().exe_names() + sample_layout().pdb_names())
    assert all(Path(f["path"]).parent == release for f in files)


# --------------------------------------------------------------------------- verify: given pairs, naming

def test_verify_pairs_the_pdb_given_and_names_it_in_a_mismatch(sample_build, tmp_path):
    exe, dist_pdb = sample_build.exe("crash-me"), sample_build.pdb("crash-me", "dist")
    if read_identity(dist_pdb).index == read_identity(sample_build.pdb("crash-me")).index:
        pytest.skip("optional: release and dist PDBs share an identity in this toolchain")
    proc = symtool("verify", "--json", exe, dist_pdb)
    assert proc.returncode == 1, proc.stderr
    [v] = json.loads(proc.stdout)
    assert v["status"] == "mismatch" and v["pdb"] == str(dist_pdb) and str(dist_pdb) in v["reason"]
    text = symtool("verify", exe, dist_pdb).stdout
    assert str(dist_pdb) in text.splitlines()[0]
    # The matching PDB given under another name, from another directory, is still compared.
    renamed = tmp_path / "symbols.pdb"
    shutil.copy(sample_build.pdb("crash-me"), renamed)
    proc = symtool("verify", "--json", exe, renamed)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)[0]["pdb"] == str(renamed)
    # Two binaries, one PDB named by neither: bad usage.
    proc = symtool("verify", exe, sample_build.exe("hello"), renamed)
    assert proc.returncode == 2 and "symbols.pdb" in proc.stderr, proc.stderr


def test_paths_and_workspace_options_do_not_mix(sample_build, tmp_path):
    proc = symtool("verify", sample_build.out(), "--profile", "dist")
    assert proc.returncode == 2 and "--profile" in proc.stderr
    proc = symtool("publish", sample_build.out(), "-p", "hello", "--store", tmp_path / "s")
    assert proc.returncode == 2 and "--package" in proc.stderr


# --------------------------------------------------------------------------- output polish

@pytest.mark.parametrize("command, literal", [
    ("publish", "[workspace.metadata.symtool]"),
    ("env", "[workspace.metadata.symtool]"),
    ("fetch", "[workspace.metadata.symtool]"),
    ("verify", "[PATH...]"),
])
def test_help_keeps_bracketed_text(command, literal, env):
    proc = symtool(command, "--help", env=dict(env, COLUMNS="250", TERM="dumb"))
    assert proc.returncode == 0, proc.stderr
    assert literal in proc.stdout, proc.stdout
    assert "\\[" not in proc.stdout


def test_articles_and_plurals():
    assert article("elf") == "an elf" and article("pdb") == "a pdb" and article("unicode") == "a unicode"
    assert article("image") == "an image" and article("minidump") == "a minidump"
    assert count(1, "dump") == "1 dump" and count(2, "dump") == "2 dumps"
    assert count(1, "binary", "binaries") == "1 binary" and count(0, "binary", "binaries") == "0 binaries"
    dump = Path(os.environ.get("TMPDIR", "/tmp")) / f"symtool-article-{os.getpid()}.dmp"
    dump.write_bytes(b"MDMP" + bytes(60))
    try:
        with pytest.raises(FormatError, match="is a minidump file"):
            read_identity(dump)
    finally:
        dump.unlink()


# --------------------------------------------------------------------------- shells

def test_pwsh_is_powershell():
    assert shell_syntax("pwsh") == "powershell"
    assert render("pwsh", [("A", "x")]) == render("powershell", [("A", "x")])
    assert default_shell("linux", {"SHELL": "/usr/bin/pwsh"}) == "powershell"
    with pytest.raises(UsageError, match="pwsh"):
        shell_syntax("tcsh")


def test_env_shell_pwsh_on_the_fast_path_and_through_typer(sample_build, build_env):
    fast = symtool("env", "--shell", "pwsh", cwd=sample_build.workspace, env=build_env)
    assert fast.returncode == 0, fast.stderr
    assert fast.stdout.startswith("$env:_NT_SYMBOL_PATH = ")
    from typer.testing import CliRunner

    from symtool.cli import app

    res = CliRunner().invoke(app, ["env", "--shell", "pwsh", str(sample_build.workspace)], env=build_env)
    assert res.exit_code == 0 and res.stdout == fast.stdout


def test_completion_script_for_the_shell_named_completes_in_real_bash(env, tmp_path):
    bash = need_tool("bash")
    env = dict(env, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    proc = symtool("--show-completion", "bash", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "complete -o default -F _symtool_completion symtool" in proc.stdout
    script = tmp_path / "complete.sh"
    script.write_text(proc.stdout + "\n"
                      'COMP_WORDS=(symtool ve); COMP_CWORD=1; _symtool_completion symtool; echo "${COMPREPLY[*]}"\n'
                      'COMP_WORDS=(symtool ""); COMP_CWORD=1; _symtool_completion symtool; echo "${COMPREPLY[*]}"\n'
                      'COMP_WORDS=(symtool env --sh); COMP_CWORD=2; _symtool_completion symtool; '
                      'echo "${COMPREPLY[*]}"\n')
    out = subprocess.run([bash, str(script)], capture_output=True, text=True, env=env, timeout=60)
    first, everything, option = out.stdout.splitlines()
    assert first == "verify"
    # Every registered command, as the help lists them.
    import typer.main

    from symtool.cli import app

    assert set(everything.split()) == set(typer.main.get_command(app).commands)
    assert {"check", "id", "verify", "publish", "fetch", "env", "dumps", "store"} <= set(everything.split())
    assert option == "--shell"
    zsh = symtool("--show-completion", "zsh", env=env)
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef symtool")
    assert symtool("--show-completion", "tcsh", env=env).returncode == 2
