"""symtool check: effective profile values and where they come from (no builds here).

Real cargo is the oracle where it is cheap (`cargo metadata` for cargo's own
error wording); the real-build proofs are in test_check_cargo.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import ROOT, SAMPLES, cargo_env, need_tool
from symtool.cargo.metadata import load_workspace
from symtool.cargo.profiles import Target, cfg_matches, check_workspace, normalize

LINUX = "x86_64-unknown-linux-gnu"
MSVC = "x86_64-pc-windows-msvc"


def make_ws(tmp_path: Path, manifest: str, config: str | None = None, name: str = "ws") -> Path:
    ws = tmp_path / name
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "main.rs").write_text("fn main() {}\n")
    (ws / "Cargo.toml").write_text(manifest)
    if config is not None:
        (ws / ".cargo").mkdir()
        (ws / ".cargo" / "config.toml").write_text(config)
    return ws


PKG = '[package]\nname = "p"\nversion = "0.1.0"\nedition = "2021"\n'


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "cargo-home"
    home.mkdir(exist_ok=True)
    return cargo_env(CARGO_HOME=str(home), **extra)


def run(ws: Path, env: dict[str, str], profiles=None, target: str | None = LINUX, version=(1, 95)):
    return check_workspace(load_workspace(ws, env), env, profiles, target, version)


def by_key(report):
    return {f.key: f for f in report.findings}


def cli(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return symtool_in_process(*args, env={**env, "PYTHONPATH": str(ROOT)}, cwd=cwd, timeout=120)


# ------------------------------------------------------------------ spellings
@pytest.mark.parametrize("raw,want", [
    (0, "none"), (1, "limited"), (2, "full"), (True, "full"), (False, "none"), ("none", "none"),
    ("line-directives-only", "line-directives-only"), ("line-tables-only", "line-tables-only"),
    ("limited", "limited"), ("full", "full"),
])
def test_debug_spellings(raw, want):
    assert normalize("debug", raw) == (want, None)


@pytest.mark.parametrize("raw,want", [
    (True, "symbols"), (False, "none"), ("none", "none"), ("debuginfo", "debuginfo"), ("symbols", "symbols"),
])
def test_strip_spellings(raw, want):
    assert normalize("strip", raw) == (want, None)


@pytest.mark.parametrize("key,literal", [
    ("debug", '"bogus"'), ("debug", "3"), ("debug", "1.5"), ("debug", "-1"),
    ("strip", "1"), ("split-debuginfo", "true"),
])
def test_rejected_values_quote_cargo(tmp_path, key, literal):
    """The finding carries the exact sentence cargo prints for the value."""
    need_tool("cargo")
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, PKG + f"[profile.release]\n{key} = {literal}\n")
    proc = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ws, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    cargo_line = proc.stderr.splitlines()[0].removeprefix("error: ")
    report = run(ws, env).profiles[0]
    finding = by_key(report)[key]
    assert cargo_line in finding.message
    assert finding.source == f"{ws / 'Cargo.toml'}:6"


def test_rustc_rejects_bad_strip(tmp_path):
    need_tool("rustc")
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, PKG + '[profile.release]\ndebug = 1\nstrip = "bogus"\n')
    rustc = subprocess.run(["rustc", "-C", "strip=bogus", "-"], input="", capture_output=True, text=True, env=env)
    wording = rustc.stderr.splitlines()[0].removeprefix("error: ")
    finding = by_key(run(ws, env).profiles[0])["strip"]
    assert wording in finding.message


# ------------------------------------------------------------------ layers
def test_default_release_on_msvc_and_linux(tmp_path):
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, PKG)
    msvc = run(ws, env, target=MSVC).profiles[0]
    assert msvc.effective == {"debug": "none", "split-debuginfo": "packed", "strip": "debuginfo"}
    assert set(by_key(msvc)) == {"debug", "strip"}
    assert "still writes a PDB" in by_key(msvc)["debug"].message
    assert "ignores strip for MSVC" in by_key(msvc)["strip"].message
    assert by_key(msvc)["strip"].source.startswith("implicit")
    linux = run(ws, env, target=LINUX).profiles[0]
    assert linux.effective == {"debug": "none", "split-debuginfo": "off", "strip": "debuginfo"}
    assert set(by_key(linux)) == {"debug", "strip", "split-debuginfo"}


def test_implicit_strip_needs_cargo_1_77(tmp_path):
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, PKG)
    assert run(ws, env, version=(1, 76)).profiles[0].effective["strip"] == "none"
    assert run(ws, env, version=(1, 77)).profiles[0].effective["strip"] == "debuginfo"


def test_msvc_drops_unsupported_split(tmp_path):
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, PKG + '[profile.release]\ndebug = "line-tables-only"\nsplit-debuginfo = "off"\nstrip = "none"\n')
    report = run(ws, env, target=MSVC).profiles[0]
    assert report.effective["split-debuginfo"] == "packed" and report.findings == []
    linux = run(ws, env, target=LINUX).profiles[0]
    assert by_key(linux)["split-debuginfo"].source == f"{ws / 'Cargo.toml'}:7"


def test_line_directives_only_is_not_enough(tmp_path):
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, PKG + '[profile.release]\ndebug = "line-directives-only"\nsplit-debuginfo = "packed"\n')
    report = run(ws, env).profiles[0]
    assert set(by_key(report)) == {"debug"}  # no implicit strip: debug is not off
    assert "no line tables" in by_key(report)["debug"].message


def test_precedence_env_over_config_over_manifest(tmp_path):
    manifest = PKG + '[profile.release]\ndebug = "full"\nstrip = "none"\nsplit-debuginfo = "packed"\n'
    ws = make_ws(tmp_path, manifest, config='[profile.release]\ndebug = "limited"\nstrip = "symbols"\n')
    env = env_for(tmp_path)
    report = run(ws, env).profiles[0]
    assert report.effective["debug"] == "limited"
    strip = by_key(report)["strip"]
    assert strip.source == f"{ws / '.cargo' / 'config.toml'}:3"
    assert "config" in strip.fix and str(ws / ".cargo" / "config.toml") in strip.fix
    env["CARGO_PROFILE_RELEASE_DEBUG"] = "0"
    env["CARGO_PROFILE_RELEASE_STRIP"] = "false"
    report = run(ws, env).profiles[0]
    assert report.effective == {"debug": "none", "split-debuginfo": "off", "strip": "none"}
    debug = by_key(report)["debug"]
    assert debug.source == "env:CARGO_PROFILE_RELEASE_DEBUG" and "CARGO_PROFILE_RELEASE_DEBUG" in debug.fix


def test_config_walk_nearest_first_legacy_name_and_cargo_home(tmp_path):
    outer = tmp_path / "outer"
    ws = make_ws(outer, PKG + '[profile.release]\ndebug = "full"\nsplit-debuginfo = "packed"\n')
    (outer / ".cargo").mkdir()
    (outer / ".cargo" / "config.toml").write_text('[profile.release]\nstrip = "symbols"\ndebug = 0\n')
    (ws / ".cargo").mkdir()
    (ws / ".cargo" / "config").write_text('[profile.release]\ndebug = "limited"\n')  # legacy name wins over config.toml
    (ws / ".cargo" / "config.toml").write_text('[profile.release]\ndebug = "line-directives-only"\n')
    env = env_for(tmp_path)
    (tmp_path / "cargo-home" / "config.toml").write_text('[profile.release]\nstrip = "debuginfo"\nsplit-debuginfo = "off"\n')
    report = run(ws, env).profiles[0]
    # config files (even $CARGO_HOME's, the lowest) beat Cargo.toml
    assert report.effective == {"debug": "limited", "split-debuginfo": "off", "strip": "symbols"}
    assert by_key(report)["strip"].source == f"{outer / '.cargo' / 'config.toml'}:2"
    assert by_key(report)["split-debuginfo"].source == f"{tmp_path / 'cargo-home' / 'config.toml'}:3"
    # run from a subdirectory of the workspace: the walk starts there
    (ws / "src" / ".cargo").mkdir()
    (ws / "src" / ".cargo" / "config.toml").write_text('[profile.release]\nstrip = "none"\n')
    assert run(ws / "src", env).profiles[0].effective["strip"] == "none"


def test_inheritance_and_default_profile_set(tmp_path):
    manifest = PKG + (
        '[profile.release]\ndebug = "line-tables-only"\nsplit-debuginfo = "packed"\n\n'
        '[profile.dist]\ninherits = "release"\nlto = "thin"\n\n'
        '[profile.small]\ninherits = "dist"\ndebug = 0\nstrip = true\n\n'
        '[profile.fast]\ninherits = "dev"\n'
    )
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, manifest)
    result = run(ws, env)
    assert [p.name for p in result.profiles] == ["release", "dist", "small"]
    release, dist, small = result.profiles
    assert release.findings == [] and dist.findings == []
    assert by_key(small)["debug"].source == f"{ws / 'Cargo.toml'}:15"
    assert small.effective["strip"] == "symbols"
    env["CARGO_PROFILE_RELEASE_DEBUG"] = "none"  # the parent's env value reaches the child
    assert run(ws, env, ["dist"]).profiles[0].effective["debug"] == "none"


@pytest.mark.parametrize("extra,wording", [
    ('[profile.dist]\ndebug = 1\n', "profile `dist` is missing an `inherits` directive"),
    ('[profile.dist]\ninherits = "nope"\n', "profile `dist` inherits from `nope`, but that profile is not defined"),
    ('[profile.release]\ninherits = "dev"\n', "`inherits` must not be specified in root profile `release`"),
])
def test_inheritance_errors_use_cargo_words(tmp_path, extra, wording):
    need_tool("cargo")
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, PKG + extra)
    built = subprocess.run(["cargo", "build", "--release"], cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    assert wording in built.stderr  # cargo itself says so
    names = ["dist"] if "dist" in extra else ["release"]
    messages = [f.message for f in run(ws, env, names).profiles[0].findings]
    assert any(wording in m for m in messages)


def test_package_and_build_override(tmp_path):
    manifest = PKG + (
        '[profile.release]\ndebug = "line-tables-only"\nsplit-debuginfo = "packed"\n'
        '[profile.release.package."*"]\ndebug = 0\n'
        '[profile.release.package.p]\nstrip = "symbols"\n'
        '[profile.release.build-override]\ndebug = "line-directives-only"\n'
    )
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, manifest)
    found = by_key(run(ws, env).profiles[0])
    assert set(found) == {"package.*.debug", "package.p.strip", "build-override.debug"}
    assert found["package.*.debug"].source == f"{ws / 'Cargo.toml'}:9"
    assert "every dependency" in found["package.*.debug"].message
    assert found["build-override.debug"].edit == (("profile", "release", "build-override", "debug"), "line-tables-only")


def test_member_profiles_are_reported_and_missing_members_tolerated(tmp_path):
    ws = tmp_path / "ws"
    (ws / "a" / "src").mkdir(parents=True)
    (ws / "Cargo.toml").write_text('[workspace]\nmembers = ["a", "missing"]\n\n[profile.release]\ndebug = 1\nsplit-debuginfo = "packed"\n')
    (ws / "a" / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\n\n[profile.release]\ndebug = 2\n')
    (ws / "a" / "src" / "lib.rs").write_text("")
    env = env_for(tmp_path)
    wsinfo = load_workspace(ws / "a", env)
    assert wsinfo.via == "walk" and wsinfo.root.path == ws / "Cargo.toml"  # cargo fails: a member is missing
    report = check_workspace(wsinfo, env, None, LINUX, (1, 95)).profiles[0]
    member = by_key(report)["profile.release"]
    assert member.source == f"{ws / 'a' / 'Cargo.toml'}:5"
    assert "profiles for the non root package will be ignored" in member.message
    assert report.effective["debug"] == "limited"


def test_policy_from_metadata(tmp_path):
    manifest = PKG + '[package.metadata.symtool.check]\ndebug = "full"\nsplit-debuginfo = "any"\nstrip = "debuginfo"\n' \
        '[profile.release]\ndebug = 1\nstrip = "debuginfo"\n'
    env = env_for(tmp_path)
    report = run(make_ws(tmp_path, manifest), env).profiles[0]
    assert set(by_key(report)) == {"debug"}
    assert by_key(report)["debug"].edit == (("profile", "release", "debug"), "full")


# ------------------------------------------------------------------ rustflags
@pytest.mark.parametrize("flags,want", [
    ("-C debuginfo=0", "none"), ("-Cdebuginfo=1", "limited"), ("--codegen debuginfo=2", "full"),
    ("--codegen=debuginfo=line-tables-only", "line-tables-only"), ("-g", "full"),
    ("-g -C debuginfo=line-directives-only", "line-directives-only"),  # the last one wins
])
def test_rustflags_spellings(tmp_path, flags, want):
    env = env_for(tmp_path, RUSTFLAGS=flags)
    ws = make_ws(tmp_path, PKG + '[profile.release]\ndebug = "limited"\nsplit-debuginfo = "packed"\n')
    report = run(ws, env).profiles[0]
    assert report.effective["debug"] == want
    if want in ("none", "line-directives-only"):
        finding = by_key(report)["debug"]
        assert finding.source == "rustflags:RUSTFLAGS" and "RUSTFLAGS" in finding.fix


def test_rustflags_precedence(tmp_path):
    config = (
        f'[build]\nrustflags = ["-C", "strip=symbols"]\n'
        f'[target.{LINUX}]\nrustflags = "-C debuginfo=0"\n'
        "[target.'cfg(unix)']\nrustflags = [\"-Csplit-debuginfo=unpacked\"]\n"
        "[target.'cfg(windows)']\nrustflags = [\"-Cstrip=debuginfo\"]\n"
    )
    ws = make_ws(tmp_path, PKG + '[profile.release]\ndebug = "full"\nsplit-debuginfo = "packed"\n', config=config)
    env = env_for(tmp_path)
    report = run(ws, env).profiles[0]
    # target.<triple> + matching cfg() win over build.rustflags (so strip stays "none")
    assert report.effective == {"debug": "none", "split-debuginfo": "unpacked", "strip": "none"}
    assert by_key(report)["debug"].source == f"rustflags:{ws / '.cargo' / 'config.toml'}:4"
    env["RUSTFLAGS"] = "-C strip=debuginfo"
    assert run(ws, env).profiles[0].effective == {"debug": "full", "split-debuginfo": "packed", "strip": "debuginfo"}
    env["CARGO_ENCODED_RUSTFLAGS"] = ""  # set but empty: still wins, with no flags
    assert run(ws, env).profiles[0].effective == {"debug": "full", "split-debuginfo": "packed", "strip": "none"}
    env["CARGO_ENCODED_RUSTFLAGS"] = "-C\x1fdebuginfo=line-tables-only"
    report = run(ws, env).profiles[0]
    assert report.effective["debug"] == "line-tables-only" and report.findings == []


def test_rustflags_bad_value_quotes_rustc(tmp_path):
    env = env_for(tmp_path, RUSTFLAGS="-Cdebuginfo=bogus")
    ws = make_ws(tmp_path, PKG + '[profile.release]\ndebug = 1\nsplit-debuginfo = "packed"\n')
    finding = by_key(run(ws, env).profiles[0])["debug"]
    assert "incorrect value `bogus` for codegen option `debuginfo`" in finding.message


def test_cfg_expressions():
    msvc, linux = Target(MSVC), Target(LINUX)
    assert cfg_matches('cfg(all(windows, target_env = "msvc"))', msvc)
    assert not cfg_matches('cfg(all(windows, target_env = "msvc"))', linux)
    assert cfg_matches("cfg(not(windows))", linux)
    assert cfg_matches('cfg(any(target_os = "macos", target_os = "linux"))', linux)
    assert cfg_matches('cfg(target_pointer_width = "64")', msvc)
    assert not cfg_matches("cfg(all(", linux)


# ------------------------------------------------------------------ CLI
def test_sample_workspace_passes():
    env = cargo_env()
    proc = cli(["check", str(SAMPLES), "--json"], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == ["ok", "workspace_root", "targets", "profiles"]
    assert data["ok"] is True and data["workspace_root"] == str(SAMPLES)
    assert data["targets"] == [MSVC]  # build.target of samples/.cargo/config.toml, not the host
    assert [(p["name"], p["target"]) for p in data["profiles"]] == [
        ("release", MSVC), ("dist", MSVC), ("full-debug", MSVC)]
    for p in data["profiles"]:
        assert list(p) == ["name", "target", "output_dir", "effective", "findings"]
        debug = "full" if p["name"] == "full-debug" else "line-tables-only"
        assert p["effective"] == {"debug": debug, "split-debuginfo": "packed", "strip": "none"}
        assert p["output_dir"].endswith(f"/target/{MSVC}/{p['name']}")


def test_json_findings_shape(tmp_path):
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, PKG + '\n[profile.release]\nlto = true\ndebug = 0\n')
    proc = cli(["check", str(ws), "--json", "--target", MSVC], env)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    finding = data["profiles"][0]["findings"][0]
    assert list(finding) == ["key", "value", "target", "source", "file", "line", "message", "fix"]
    assert finding["key"] == "debug" and finding["value"] == "none" and finding["target"] == MSVC
    assert finding["file"] == str(ws / "Cargo.toml") and finding["line"] == 8
    assert finding["source"] == f"{ws / 'Cargo.toml'}:8"
    defaulted = json.loads(cli(["check", str(make_ws(tmp_path, PKG, name="bare")), "--json", "--target", MSVC],
                               env).stdout)["profiles"][0]["findings"][0]
    assert defaulted["file"] is None and defaulted["line"] is None  # a default is written nowhere


@pytest.mark.parametrize("case", ["not-toml", "missing", "broken-config", "not-utf8", "bad-policy", "no-profile"])
def test_unreadable_input_exit_2_one_line(tmp_path, case):
    env = env_for(tmp_path)
    ws = make_ws(tmp_path, PKG)
    args = ["check", str(ws)]
    if case == "not-toml":
        (ws / "Cargo.toml").write_text("[package\nname = 1\n")
        culprit = ws / "Cargo.toml"
    elif case == "missing":
        args = ["check", str(ws / "nope")]
        culprit = ws / "nope"
    elif case == "broken-config":
        (ws / ".cargo").mkdir()
        (ws / ".cargo" / "config.toml").write_text("[profile.release\n")
        culprit = ws / ".cargo" / "config.toml"
    elif case == "not-utf8":
        (ws / "Cargo.toml").write_bytes(PKG.encode() + b"# \xff\xfe\n")
        culprit = ws / "Cargo.toml"
    elif case == "bad-policy":
        (ws / "Cargo.toml").write_text(PKG + '[package.metadata.symtool]\ndebug = "lots"\n')
        culprit = ws / "Cargo.toml"
    else:
        args += ["--profile", "nope"]
        culprit = None
    for extra in ([], ["--fix"]):
        before = (ws / "Cargo.toml").read_bytes()
        proc = cli(args + extra, env)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        if culprit is not None:
            assert str(culprit) in lines[0]
        assert "Traceback" not in proc.stderr
        assert (ws / "Cargo.toml").read_bytes() == before


def test_check_imports_no_tomlkit():
    """`symtool env` must start fast: importing the CLI (and check) must not import tomlkit."""
    code = "import sys, symtool.cli, symtool.cargo.profiles; print('tomlkit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "False"
