"""Real `cargo build -v` proves what `symtool check` says (7 small builds of the sample workspace).

For every scenario, the flags cargo passes to rustc for each crate must equal
the ``effective`` values check reports, and after ``--fix`` they must show
``-C debuginfo=line-tables-only``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import ROOT, SAMPLES, TRIPLE, cargo_env, need_tool, sample_layout

LINK_ARGS = ["-C", "linker-flavor=lld-link", "-C", "link-arg=/entry:mainCRTStartup",
             "-C", "link-arg=/subsystem:console", "-C", "link-arg=/nodefaultlib"]


@pytest.fixture
def sample(tmp_path) -> Path:
    need_tool("cargo")
    ws = tmp_path / "ws"
    shutil.copytree(SAMPLES, ws, ignore=shutil.ignore_patterns("target"))
    (tmp_path / "cargo-home").mkdir()
    return ws


def env_for(ws: Path, **extra: str) -> dict[str, str]:
    return cargo_env(CARGO_HOME=str(ws.parent / "cargo-home"), CARGO_TARGET_DIR=str(ws / "target"), **extra)


def check(ws: Path, env: dict[str, str], *args: str) -> tuple[int, dict]:
    proc = symtool_in_process("check", str(ws), "--json", *args, env={**env, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def build_flags(ws: Path, env: dict[str, str], profile: str = "release") -> dict[str, dict[str, str]]:
    """{crate: effective values} read from the rustc command lines of `cargo build -v`."""
    proc = subprocess.run(["cargo", "build", "-v", "--profile", profile], cwd=ws, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    crates: dict[str, dict[str, str]] = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"\s+Running `(.*)`$", line)
        if not m:
            continue
        argv = shlex.split(m.group(1))
        name = argv[argv.index("--crate-name") + 1]
        seen: dict[str, str] = {}
        for i, arg in enumerate(argv):
            opt = argv[i + 1] if arg == "-C" and i + 1 < len(argv) else (arg[2:] if arg.startswith("-C") else None)
            if arg == "-g":
                seen["debuginfo"] = "2"
            elif opt and "=" in opt:
                k, v = opt.split("=", 1)
                seen[k] = v
        debug = {"0": "none", "1": "limited", "2": "full"}.get(seen.get("debuginfo", "0"), seen.get("debuginfo"))
        crates[name] = {"debug": debug, "split-debuginfo": seen.get("split-debuginfo", "packed"),
                        "strip": seen.get("strip", "none")}
    assert set(crates) == set(sample_layout().crates), proc.stderr
    return crates


def effective(report: dict, name: str) -> dict[str, str]:
    return next(p["effective"] for p in report["profiles"] if p["name"] == name)


def findings(report: dict, name: str) -> dict[str, dict]:
    return {f["key"]: f for p in report["profiles"] if p["name"] == name for f in p["findings"]}


def test_default_release_then_fix(sample):
    """No debug settings: check predicts the implicit strip (no PDB); --fix gives line tables and a PDB."""
    manifest = sample / "Cargo.toml"
    text = manifest.read_text().replace('debug = "line-tables-only"\n', "").replace('strip = "none"\n', "")
    manifest.write_text(text)
    env = env_for(sample)
    code, report = check(sample, env)
    assert code == 1 and set(findings(report, "release")) == {"debug", "strip"}
    before = build_flags(sample, env)
    assert all(flags == effective(report, "release") for flags in before.values()), before
    pdb = sample / "target" / TRIPLE / "release" / "crash_me.pdb"
    assert pdb_lines_for(pdb, "main.rs") == 0  # debug = 0: a PDB, but no line info for our code

    code, report = check(sample, env, "--fix")
    assert code == 0 and report["ok"]
    fixed = manifest.read_text()
    assert fixed == text.replace('panic = "abort"\n\n[profile.dev]',
                                 'panic = "abort"\ndebug = "line-tables-only"\n\n[profile.dev]')
    tomllib.loads(fixed)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=sample, env=env,
                          capture_output=True, text=True, timeout=300)
    assert meta.returncode == 0, meta.stderr
    for profile in ("release", "dist"):
        after = build_flags(sample, env, profile)
        assert all(f == {"debug": "line-tables-only", "split-debuginfo": "packed", "strip": "none"}
                   for f in after.values()), after
        assert after["crash_me"] == effective(report, profile)
    assert pdb_lines_for(pdb, "main.rs") > 0


def pdb_lines_for(pdb: Path, source: str) -> int:
    tool = need_tool("llvm-pdbutil")
    out = subprocess.run([tool, "dump", "-l", str(pdb)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return sum(source in line for line in out.stdout.splitlines())


def test_inheritance_package_and_build_override_then_fix(sample):
    manifest = sample / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace(
        'lto = "thin"\n',
        'lto = "thin"\ndebug = 0\n\n[profile.dist.package.crash-me]\nstrip = "symbols"\n\n'
        '[profile.dist.build-override]\ndebug = "line-directives-only"\n'))
    env = env_for(sample)
    code, report = check(sample, env, "--profile", "dist")
    found = findings(report, "dist")
    assert code == 1 and set(found) == {"debug", "package.crash-me.strip", "build-override.debug"}
    line = manifest.read_text().splitlines().index("debug = 0") + 1
    assert found["debug"]["source"] == f"{manifest}:{line}"
    code, report = check(sample, env, "--profile", "dist", "--fix")
    assert code == 0, report
    flags = build_flags(sample, env, "dist")
    assert all(f["debug"] == "line-tables-only" and f["strip"] == "none" for f in flags.values()), flags
    assert tomllib.loads(manifest.read_text())["profile"]["dist"]["package"]["crash-me"]["strip"] == "none"


def test_env_and_config_win_and_are_named(sample):
    (sample / ".cargo" / "config.toml").open("a").write('\n[profile.release]\nstrip = "symbols"\n')
    env = env_for(sample, CARGO_PROFILE_RELEASE_DEBUG="0")
    original = (sample / "Cargo.toml").read_bytes()
    code, report = check(sample, env, "--fix")
    assert code == 1 and (sample / "Cargo.toml").read_bytes() == original
    found = findings(report, "release")
    assert found["debug"]["source"] == "env:CARGO_PROFILE_RELEASE_DEBUG"
    assert found["strip"]["source"].startswith(str(sample / ".cargo" / "config.toml") + ":")
    assert "config" in found["strip"]["fix"] and "CARGO_PROFILE_RELEASE_DEBUG" in found["debug"]["fix"]
    flags = build_flags(sample, env)
    assert all(f == effective(report, "release") for f in flags.values()), flags
    assert effective(report, "release") == {"debug": "none", "split-debuginfo": "packed", "strip": "symbols"}


def test_config_rustflags_target_beats_build(sample):
    config = sample / ".cargo" / "config.toml"
    config.write_text(config.read_text().replace(
        '"-C", "link-arg=/nodefaultlib",\n]', '"-C", "link-arg=/nodefaultlib",\n    "-C", "debuginfo=line-directives-only",\n]')
    )
    text = config.read_text().replace('[build]\ntarget = "x86_64-pc-windows-msvc"\n',
                                      '[build]\ntarget = "x86_64-pc-windows-msvc"\nrustflags = ["-g", "-Cstrip=symbols"]\n')
    config.write_text(text)
    env = env_for(sample)
    code, report = check(sample, env, "--fix")
    assert code == 1
    found = findings(report, "release")
    assert set(found) == {"debug"} and found["debug"]["source"].startswith(f"rustflags:{config}:")
    assert "target.x86_64-pc-windows-msvc.rustflags" in found["debug"]["fix"]
    flags = build_flags(sample, env)
    assert all(f == effective(report, "release") for f in flags.values()), flags
    assert effective(report, "release")["debug"] == "line-directives-only"


def test_encoded_rustflags_beat_rustflags(sample):
    encoded = "\x1f".join(LINK_ARGS + ["-Cstrip=symbols"])
    env = env_for(sample, CARGO_ENCODED_RUSTFLAGS=encoded, RUSTFLAGS="-C debuginfo=0")
    code, report = check(sample, env, "--fix")
    assert code == 1
    found = findings(report, "release")
    assert set(found) == {"strip"} and found["strip"]["source"] == "rustflags:CARGO_ENCODED_RUSTFLAGS"
    flags = build_flags(sample, env)
    assert all(f == effective(report, "release") for f in flags.values()), flags
    assert effective(report, "release") == {"debug": "line-tables-only", "split-debuginfo": "packed", "strip": "symbols"}
