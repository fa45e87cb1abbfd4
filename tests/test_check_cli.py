"""`symtool check` follows cargo's command-line conventions (issue 11, items 5 and 7):
--manifest-path, -p/--package, --profile, repeatable --target (validated), the targets
the workspace builds, findings with target/file/line, TOML in text output, --diff."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import ROOT, cargo_env, need_tool

LINUX = "x86_64-unknown-linux-gnu"
MSVC = "x86_64-pc-windows-msvc"
PKG = '[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n'


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "cargo-home"
    home.mkdir(exist_ok=True)
    return cargo_env(CARGO_HOME=str(home), XDG_CACHE_HOME=str(tmp_path / "xdg-cache"), **extra)


def cli(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return symtool_in_process(*map(str, args), env={**env, "PYTHONPATH": str(ROOT)}, cwd=cwd, timeout=120)


def package(ws: Path, rel: str, name: str) -> None:
    (ws / rel / "src").mkdir(parents=True)
    (ws / rel / "src" / "lib.rs").write_text("")
    (ws / rel / "Cargo.toml").write_text(PKG.format(name=name))


def two_member_ws(tmp_path: Path, profile: str) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Cargo.toml").write_text('[workspace]\nmembers = ["app", "other"]\nresolver = "2"\n\n' + profile)
    package(ws, "app", "app")
    package(ws, "other", "other")
    return ws


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0]


def keys(report: dict, target: str | None = None) -> set[str]:
    return {f["key"] for p in report["profiles"] for f in p["findings"] if target in (None, p["target"])}


# ------------------------------------------------------------------ -p/--package, --manifest-path
def test_p_is_package_not_profile(tmp_path):
    need_tool("cargo")
    ws = two_member_ws(tmp_path, '[profile.release]\ndebug = "line-tables-only"\n\n'
                                 '[profile.release.package.other]\ndebug = 0\n')
    env = env_for(tmp_path)
    everything = json.loads(cli(["check", ws, "--json", "--target", LINUX], env).stdout)
    assert keys(everything) == {"package.other.debug", "split-debuginfo"}
    proc = cli(["check", ws, "--json", "--target", LINUX, "-p", "app"], env)
    assert keys(json.loads(proc.stdout)) == {"split-debuginfo"}  # other's override does not touch app
    proc = cli(["check", ws, "--json", "--target", LINUX, "--package", "other@0.1.0"], env)
    assert keys(json.loads(proc.stdout)) == {"package.other.debug", "split-debuginfo"}
    # `-p release` used to mean --profile release: now it names a package, and there is none
    one_line_error(cli(["check", ws, "--target", LINUX, "-p", "release"], env), "`release`", "did not match")


def test_manifest_path(tmp_path):
    need_tool("cargo")
    ws = two_member_ws(tmp_path, '[profile.release]\ndebug = "line-tables-only"\nsplit-debuginfo = "packed"\n')
    env = env_for(tmp_path)
    proc = cli(["check", "--manifest-path", ws / "Cargo.toml", "--target", LINUX, "--json"], env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["workspace_root"] == str(ws)
    # from a member's manifest: the workspace root is judged, as cargo does
    proc = cli(["check", "--manifest-path", ws / "app" / "Cargo.toml", "--target", LINUX, "--json"], env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["workspace_root"] == str(ws)
    one_line_error(cli(["check", ws, "--manifest-path", ws / "Cargo.toml"], env), "not both")
    one_line_error(cli(["check", "--manifest-path", ws], env), "Cargo.toml")


# ------------------------------------------------------------------ targets
def test_build_target_list_is_judged_not_the_host(tmp_path):
    """split-debuginfo = "off": fine on MSVC (cargo does not pass it there: "packed" is used),
    a finding for Linux. Both come from build.target; the host is not looked at."""
    need_tool("cargo")
    ws = two_member_ws(tmp_path, '[profile.release]\ndebug = "line-tables-only"\nsplit-debuginfo = "off"\n')
    (ws / ".cargo").mkdir()
    (ws / ".cargo" / "config.toml").write_text(f'[build]\ntarget = ["{MSVC}", "{LINUX}"]\n')
    env = env_for(tmp_path)
    proc = cli(["check", ws, "--json"], env)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["targets"] == [MSVC, LINUX]
    assert [(p["name"], p["target"]) for p in report["profiles"]] == [("release", MSVC), ("release", LINUX)]
    assert keys(report, MSVC) == set() and keys(report, LINUX) == {"split-debuginfo"}
    finding = next(f for p in report["profiles"] for f in p["findings"])
    assert finding["target"] == LINUX and finding["file"] == str(ws / "Cargo.toml") and finding["line"] == 7
    text = cli(["check", ws], env).stdout
    assert f"[profile.release] for {MSVC}: " in text and f"[profile.release] for {LINUX}: " in text
    assert f"output: {ws / 'target' / LINUX / 'release'}" in text
    # --target overrides build.target; repeatable
    proc = cli(["check", ws, "--json", "--target", MSVC], env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["targets"] == [MSVC]
    both = json.loads(cli(["check", ws, "--json", "--target", LINUX, "--target", MSVC], env).stdout)
    assert both["targets"] == [LINUX, MSVC]


def test_dev_profile_output_dir_is_debug(tmp_path):
    need_tool("cargo")
    ws = two_member_ws(tmp_path, "")
    env = env_for(tmp_path)
    report = json.loads(cli(["check", ws, "--json", "--profile", "dev", "--target", MSVC], env).stdout)
    assert [(p["name"], p["output_dir"]) for p in report["profiles"]] == [("dev", str(ws / "target" / MSVC / "debug"))]
    assert report["ok"]  # dev: debug = "full" by default


def test_unknown_triple_is_exit_2(tmp_path):
    need_tool("rustc")
    ws = two_member_ws(tmp_path, "")
    env = env_for(tmp_path)
    one_line_error(cli(["check", ws, "--target", "x86_64-pc-windows-msvcc"], env), "x86_64-pc-windows-msvcc")
    one_line_error(cli(["check", ws, "--fix", "--target", "x86_64-unknown-linux-gnu", "--target", "nonsense-triple"],
                       env), "nonsense-triple")
    assert (ws / "Cargo.toml").read_text().count("profile") == 0  # nothing written
    (ws / ".cargo").mkdir()
    (ws / ".cargo" / "config.toml").write_text('[build]\ntarget = "x86_64-pc-windowz-msvc"\n')
    one_line_error(cli(["check", ws], env), "x86_64-pc-windowz-msvc")


def fake_rustc(tmp_path: Path) -> tuple[Path, Path]:
    """A rustc that knows two triples and logs each --print target-list call."""
    log = tmp_path / "rustc.log"
    rustc = tmp_path / "bin" / "rustc"
    rustc.parent.mkdir()
    rustc.write_text(f'#!/bin/sh\nif [ "$1 $2" = "--print target-list" ]; then\n  echo list >> "{log}"\n'
                     f'  printf "{MSVC}\\n{LINUX}\\n"\n  exit 0\nfi\nexit 1\n')
    rustc.chmod(rustc.stat().st_mode | stat.S_IXUSR)
    return rustc, log


def test_target_list_is_cached_per_toolchain(tmp_path):
    ws = two_member_ws(tmp_path, "")
    rustc, log = fake_rustc(tmp_path)
    env = env_for(tmp_path, RUSTC=str(rustc), PATH="/nonexistent")  # no cargo: the manifest walk
    for _ in range(2):
        assert cli(["check", ws, "--target", MSVC, "--json"], env).returncode == 1
    one_line_error(cli(["check", ws, "--target", "aarch64-unknown-linux-gnu"], env), "aarch64-unknown-linux-gnu")
    assert log.read_text() == "list\n"  # rustc was asked once; later runs read the cache
    os.utime(rustc, ns=(1, 1))  # another rustc: asked again
    assert cli(["check", ws, "--target", LINUX], env).returncode == 1
    assert log.read_text() == "list\nlist\n"


def test_without_rustc_a_triple_must_look_like_one(tmp_path):
    ws = two_member_ws(tmp_path, "")
    env = env_for(tmp_path, RUSTC=str(tmp_path / "no-rustc"), PATH="/nonexistent")
    assert cli(["check", ws, "--target", "riscv64gc-unknown-linux-gnu"], env).returncode == 1
    one_line_error(cli(["check", ws, "--target", "windows"], env), "`windows`")
    one_line_error(cli(["check", ws, "--target", "X86_64 PC"], env), "X86_64 PC")


# ------------------------------------------------------------------ text and diff output
def test_text_findings_are_toml(tmp_path):
    ws = two_member_ws(tmp_path, '[profile.release]\ndebug = 0\nstrip = true\n')
    (ws / "app" / "Cargo.toml").write_text(PKG.format(name="app") + '\n[profile.release]\ndebug = 0\nlto = true\n')
    env = env_for(tmp_path, PATH="/nonexistent")
    proc = cli(["check", ws, "--target", LINUX], env)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert f'  debug = 0  ({ws / "Cargo.toml"}:6)' in lines
    assert f'  strip = true  ({ws / "Cargo.toml"}:7)' in lines
    assert f'  profile.release = {{ debug = 0, lto = true }}  ({ws / "app" / "Cargo.toml"}:6)' in lines
    assert any(l.startswith("[profile.release] for x86_64-unknown-linux-gnu: "
                            'debug = "none", split-debuginfo = "off", strip = "symbols": ') for l in lines), lines
    assert "{'" not in proc.stdout and "True" not in proc.stdout


@pytest.mark.parametrize("flag", ["--diff", "--dry-run"])
def test_diff_names_the_real_file(tmp_path, flag):
    ws = two_member_ws(tmp_path, '[profile.release]\ndebug = 0\n')
    env = env_for(tmp_path, PATH="/nonexistent")
    before = (ws / "Cargo.toml").read_bytes()
    proc = cli(["check", "ws", flag, "--target", LINUX], env, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.startswith("--- ws/Cargo.toml\n+++ ws/Cargo.toml\n@@ "), proc.stdout
    assert '-debug = 0\n+debug = "line-tables-only"\n' in proc.stdout
    assert (ws / "Cargo.toml").read_bytes() == before
    elsewhere = cli(["check", ws, flag, "--target", LINUX], env, cwd=ws / "app")
    assert elsewhere.stdout.startswith(f"--- {ws / 'Cargo.toml'}\n+++ {ws / 'Cargo.toml'}\n")
    # the diff applies with patch(1) as printed
    if need_tool("patch"):
        subprocess.run(["patch", "-p0", "-s"], input=proc.stdout, text=True, cwd=tmp_path, check=True)
        assert cli(["check", ws, "--target", LINUX], env).returncode == 0
