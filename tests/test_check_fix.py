"""symtool check --fix: only profile lines change, byte for byte everywhere else."""

from __future__ import annotations

import copy
import difflib
import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_runner import symtool_in_process
from conftest import ROOT, cargo_env
from symtool.cargo.manifest import apply_edits, plan_fix
from symtool.cargo.metadata import load_workspace
from symtool.cargo.tomltext import scan
from symtool.errors import ConfigError

LINUX = "x86_64-unknown-linux-gnu"
MSVC = "x86_64-pc-windows-msvc"
FIXTURES = sorted((Path(__file__).resolve().parent / "fixtures" / "cargo").glob("*.toml"))


def env_for(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "cargo-home"
    home.mkdir(exist_ok=True)
    return cargo_env(CARGO_HOME=str(home))


def cli(args, env, cwd=None):
    return symtool_in_process(*args, env={**env, "PYTHONPATH": str(ROOT)}, cwd=cwd, timeout=120)


def loads(data: bytes) -> dict:
    return tomllib.loads(data.decode("utf-8").lstrip("\ufeff"))


def table_of_lines(text: str) -> list[tuple[str, ...]]:
    """For each line of ``text``: the path of the table header above it (() before any header)."""
    headers = [e for e in scan(text) if e.kind in ("table", "array")]
    owner: list[tuple[str, ...]] = []
    current: tuple[str, ...] = ()
    starts = {h.line: h.path for h in headers}
    for number, _ in enumerate(text.splitlines(), start=1):
        current = starts.get(number, current)
        owner.append(current)
    return owner


def assert_only_profile_changed(old: bytes, new: bytes) -> None:
    a, b = loads(old), loads(new)
    assert {k: v for k, v in a.items() if k != "profile"} == {k: v for k, v in b.items() if k != "profile"}
    old_text = old.decode("utf-8").lstrip("\ufeff")
    new_text = new.decode("utf-8").lstrip("\ufeff")
    old_owner, new_owner = table_of_lines(old_text), table_of_lines(new_text)
    old_lines, new_lines = old_text.splitlines(keepends=True), new_text.splitlines(keepends=True)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and [l.rstrip("\r\n") for l in old_lines[i1:i2]] == \
                [l.rstrip("\r\n") for l in new_lines[j1:j1 + i2 - i1]]:
            # the old last line only gained the line ending it lacked
            i1, j1 = i2, j1 + (i2 - i1)
        for i in range(i1, i2):  # removed / replaced lines were profile lines
            assert old_owner[i][:1] == ("profile",) or old_lines[i].lstrip().startswith("profile."), old_lines[i]
        for j in range(j1, j2):  # added lines are profile lines or blank separators
            line = new_lines[j]
            assert (new_owner[j][:1] == ("profile",) or not line.strip()
                    or line.lstrip().startswith("profile.")), line


def fix_file(tmp_path: Path, content: bytes, target: str = LINUX) -> tuple[bytes, subprocess.CompletedProcess]:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    (ws / "Cargo.toml").write_bytes(content)
    proc = cli(["check", str(ws), "--fix", "--target", target], env_for(tmp_path))
    return (ws / "Cargo.toml").read_bytes(), proc


def variants(data: bytes):
    lf = data.replace(b"\r\n", b"\n")
    yield "lf", lf
    yield "crlf", lf.replace(b"\n", b"\r\n")
    yield "bom", b"\xef\xbb\xbf" + lf
    yield "bom-crlf", b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n")
    yield "no-eol", lf[:-1] if lf.endswith(b"\n") else lf


def dig(data: dict, keypath: tuple[str, ...]):
    for part in keypath:
        data = data[part]
    return data


def intended_profile(original: dict, applied) -> dict:
    """The [profile] table the fix means to write: the old one plus exactly the applied edits."""
    profile = copy.deepcopy(original.get("profile", {}))
    for keypath, value in applied:
        table = {"profile": profile}
        for part in keypath[:-1]:
            table = table.setdefault(part, {})
        table[keypath[-1]] = value
    return profile


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_fix_real_manifests(tmp_path, fixture, fixtures_dir):
    """Root and member manifests of large public workspaces (tests/fixtures/README.md), each as the
    manifest being fixed, in every line-ending / BOM / last-line variant."""
    results = {}
    for name, original in variants(fixture.read_bytes()):
        case = tmp_path / name
        case.mkdir()
        fixed, applied = lib_fix(case, original)
        results[name] = fixed
        before, after = loads(original), loads(fixed)  # both parse with tomllib
        if not applied:  # already what the policy asks for: not a byte changes
            assert fixed == original
            continue
        for keypath, value in applied:
            assert dig(after, keypath) == value
        assert after.get("profile") == intended_profile(before, applied)
        assert fixed.startswith(b"\xef\xbb\xbf") == name.startswith("bom")
        if "crlf" in name:
            assert b"\n" not in fixed.replace(b"\r\n", b""), "a bare LF slipped in"
        else:
            assert b"\r" not in fixed
        assert_only_profile_changed(original, fixed)
        # the same result as the plain LF fix, line endings, BOM and the missing last line ending aside
        plain = results["lf"]
        if name == "no-eol":
            assert fixed in (plain, plain[:-1])
        elif name != "lf":
            assert fixed.lstrip(b"\xef\xbb\xbf").replace(b"\r\n", b"\n") == plain
    # end to end once: the CLI writes what the library computed, and a second check finds nothing
    cli_case = tmp_path / "cli"
    cli_case.mkdir()
    fixed, proc = fix_file(cli_case, fixture.read_bytes().replace(b"\r\n", b"\n"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fixed == results["lf"]
    again = cli(["check", str(tmp_path / "bom-crlf" / "ws"), "--target", LINUX], env_for(tmp_path))
    assert again.returncode == 0, again.stdout


def lib_fix(case: Path, original: bytes) -> tuple[bytes, list]:
    from symtool.cargo.manifest import write_manifest

    ws = case / "ws"
    ws.mkdir()
    (ws / "Cargo.toml").write_bytes(original)
    env = {"PATH": "/nonexistent", "CARGO_HOME": str(case / "home")}  # no cargo: the manifest alone
    outcome = plan_fix(load_workspace(ws, env), env, None, LINUX, (1, 95))
    assert outcome.result.ok
    if outcome.changed:
        write_manifest(outcome.path, outcome.original, outcome.new)
    return (ws / "Cargo.toml").read_bytes(), outcome.applied


def test_fix_bevy_inserts_lines_tomlkit_cannot_reproduce(tmp_path, fixtures_dir):
    """bevy's root manifest interleaves [[example]] with [package.metadata.example.*]: tomlkit
    regroups them, so the lines are inserted as text and every other byte stays."""
    import tomlkit

    original = (fixtures_dir / "cargo" / "bevy.toml").read_bytes()
    assert tomlkit.parse(original.decode()).as_string() != original.decode()
    fixed, proc = fix_file(tmp_path, original, target=MSVC)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    added = [l for l in difflib.unified_diff(original.decode().splitlines(), fixed.decode().splitlines(),
                                              lineterm="", n=0) if l[:1] in "+-" and not l.startswith(("+++", "---"))]
    assert added == ["+[profile.release]", '+debug = "line-tables-only"', "+"]
    old_lines, new_lines = original.splitlines(keepends=True), fixed.splitlines(keepends=True)
    assert len(new_lines) == len(old_lines) + 3
    at = new_lines.index(b"[profile.release]\n")
    assert new_lines[:at] + new_lines[at + 3:] == old_lines


def test_fix_ripgrep_edits_in_place(tmp_path, fixtures_dir):
    original = (fixtures_dir / "cargo" / "ripgrep.toml").read_bytes()
    fixed, proc = fix_file(tmp_path, original, target=MSVC)
    assert proc.returncode == 0
    diff = [l for l in difflib.unified_diff(original.decode().splitlines(), fixed.decode().splitlines(), lineterm="", n=0)
            if l[:1] in "+-" and not l.startswith(("+++", "---"))]
    assert diff == ['-debug = "none"', '-strip = "symbols"', '+debug = "line-tables-only"', '+strip = "none"']


def test_missing_release_goes_after_profiles(tmp_path):
    text = ('[package]\nname = "p"\nversion = "0.1.0"\n\n[profile.dev]\nopt-level = 1\n\n'
            '# deps below\n[dependencies]\n\n[profile.bench]\nlto = true\n\n[features]\nx = []\n')
    fixed, proc = fix_file(tmp_path, text.encode(), target=MSVC)
    assert proc.returncode == 0, proc.stderr
    assert fixed.decode() == text.replace(
        "lto = true\n\n[features]",
        'lto = true\n\n[profile.release]\ndebug = "line-tables-only"\n\n[features]')


def test_missing_release_at_end_without_newline(tmp_path):
    fixed, proc = fix_file(tmp_path, b'[package]\r\nname = "p"\r\nversion = "0.1.0"', target=MSVC)
    assert proc.returncode == 0
    assert fixed == b'[package]\r\nname = "p"\r\nversion = "0.1.0"\r\n\r\n[profile.release]\r\ndebug = "line-tables-only"\r\n'


@pytest.mark.parametrize("before,after", [
    # dotted keys at the top level stay dotted
    ('profile.release.debug = 0  # why not\n[package]\nname = "p"\n',
     'profile.release.debug = "line-tables-only"  # why not\n[package]\nname = "p"\n'),
    ('profile.release.lto = true\n[package]\nname = "p"\n',
     'profile.release.lto = true\nprofile.release.debug = "line-tables-only"\n[package]\nname = "p"\n'),
    # neighbours' indentation
    ('[profile.release]\n    lto = true\n    opt-level = 3\n\n[package]\nname = "p"\n',
     '[profile.release]\n    lto = true\n    opt-level = 3\n    debug = "line-tables-only"\n\n[package]\nname = "p"\n'),
    # inline tables
    ('[profile]\nrelease = { lto = true, debug = false }\n',
     '[profile]\nrelease = { lto = true, debug = "line-tables-only" }\n'),
    # a new key goes after the last key, not after the comments of the next table
    ('[profile.release]\nlto = true\n\n# fast parser\n[profile.release.package.x]\nopt-level = 3\n',
     '[profile.release]\nlto = true\ndebug = "line-tables-only"\n\n# fast parser\n[profile.release.package.x]\nopt-level = 3\n'),
    # implicit [profile.release] (only a sub-table exists)
    ('[package]\nname = "p"\n\n[profile.release.package.x]\nopt-level = 3\n',
     None),
])
def test_layout_kept(tmp_path, before, after):
    fixed, proc = fix_file(tmp_path, before.encode(), target=MSVC)
    assert proc.returncode == 0, proc.stderr
    if after is not None:
        assert fixed.decode() == after
    assert_only_profile_changed(before.encode(), fixed)
    assert loads(fixed)["profile"]["release"]["debug"] == "line-tables-only"


def test_env_and_config_sources_are_not_pretended_fixed(tmp_path):
    ws = tmp_path / "ws"
    (ws / ".cargo").mkdir(parents=True)
    original = b'[package]\nname = "p"\nversion = "0.1.0"\n\n[profile.release]\ndebug = 1\n'
    (ws / "Cargo.toml").write_bytes(original)
    (ws / ".cargo" / "config.toml").write_text('[profile.release]\nstrip = "symbols"\n')
    env = env_for(tmp_path)
    env["CARGO_PROFILE_RELEASE_DEBUG"] = "false"
    proc = cli(["check", str(ws), "--fix", "--target", MSVC], env)
    assert proc.returncode == 1
    # debug comes from the environment, strip from the config file: Cargo.toml cannot fix either
    assert (ws / "Cargo.toml").read_bytes() == original
    assert "env:CARGO_PROFILE_RELEASE_DEBUG" in proc.stdout
    assert f"the cargo config file {ws / '.cargo' / 'config.toml'}:2 overrides Cargo.toml" in proc.stdout


def test_fix_reports_only_what_changed_and_names_the_variable(tmp_path):
    """Issue 26, item 7: split-debuginfo = "packed" already in the file, debug off through
    CARGO_PROFILE_RELEASE_DEBUG=0.  cargo then passes no -C split-debuginfo (checked with `cargo
    build -v`); --fix must not claim to have written it, nor offer to write it again: the
    finding names the variable as the cause."""
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "main.rs").write_text("fn main() {}\n")
    original = b'[package]\nname = "p"\nversion = "0.1.0"\nedition = "2021"\n\n[profile.release]\nsplit-debuginfo = "packed"\n'
    (ws / "Cargo.toml").write_bytes(original)
    env = dict(env_for(tmp_path), CARGO_PROFILE_RELEASE_DEBUG="0", CARGO_TARGET_DIR=str(tmp_path / "t"))
    build = subprocess.run(["cargo", "build", "--release", "-v", "--target", LINUX], cwd=ws, env=env,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    rustc = [line for line in build.stderr.splitlines() if "Running `" in line and "--crate-name p " in line]
    assert rustc and "split-debuginfo" not in rustc[0]  # the oracle: cargo drops the value written

    proc = cli(["check", str(ws), "--fix", "--target", LINUX], env)
    assert proc.returncode == 1, proc.stderr
    fixed = [line for line in proc.stdout.splitlines() if line.startswith("fixed: ")]
    assert not any("split-debuginfo" in line for line in fixed), proc.stdout
    after = (ws / "Cargo.toml").read_bytes()
    # Only what the fixed: lines name changed (strip = "none" ends cargo's implicit strip).
    assert [line.split(" in [")[0] for line in fixed] == ['fixed: strip = "none"']
    assert after == original + b'strip = "none"\n'
    proc = cli(["check", str(ws), "--fix", "--json", "--target", LINUX], env)
    assert proc.returncode == 1 and (ws / "Cargo.toml").read_bytes() == after and "fixed:" not in proc.stderr
    (report,) = json.loads(proc.stdout)["profiles"]
    split = next(f for f in report["findings"] if f["key"] == "split-debuginfo")
    assert "env:CARGO_PROFILE_RELEASE_DEBUG" in split["message"] and "env:CARGO_PROFILE_RELEASE_DEBUG" in split["source"]
    assert split["fix"].startswith("turn debug on: CARGO_PROFILE_RELEASE_DEBUG") and "set split-debuginfo" not in split["fix"]


def test_dry_run_prints_diff_and_writes_nothing(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    original = b'[package]\nname = "p"\n\n[profile.release]\ndebug = 0\n'
    (ws / "Cargo.toml").write_bytes(original)
    proc = cli(["check", str(ws), "--fix", "--dry-run", "--target", MSVC], env_for(tmp_path))
    assert proc.returncode == 1
    assert (ws / "Cargo.toml").read_bytes() == original
    assert "-debug = 0\n+debug = \"line-tables-only\"\n" in proc.stdout
    assert proc.stdout.startswith(f"--- {ws / 'Cargo.toml'}\n+++ {ws / 'Cargo.toml'}\n")  # the real file


def test_read_only_manifest_is_left_alone(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    manifest = ws / "Cargo.toml"
    manifest.write_bytes(b'[package]\nname = "p"\n')
    manifest.chmod(0o444)
    proc = cli(["check", str(ws), "--fix", "--target", MSVC], env_for(tmp_path))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and "read-only" in proc.stderr
    assert manifest.read_bytes() == b'[package]\nname = "p"\n'
    assert [p.name for p in ws.iterdir()] == ["Cargo.toml"]  # no temp file left behind


def test_fix_keeps_permissions(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    manifest = ws / "Cargo.toml"
    manifest.write_bytes(b'[package]\nname = "p"\n')
    manifest.chmod(0o640)
    assert cli(["check", str(ws), "--fix", "--target", MSVC], env_for(tmp_path)).returncode == 0
    assert manifest.stat().st_mode & 0o777 == 0o640


def test_apply_edits_refuses_unsafe_result(tmp_path):
    # profile is an inline table at the top level: a [profile.release] header would be invalid TOML
    src = b'profile = { dev = { lto = true } }\n[package]\nname = "p"\n'
    with pytest.raises(ConfigError):
        apply_edits(src, [(("profile", "release", "debug"), "line-tables-only")], Path("Cargo.toml"))


# ------------------------------------------------------------------ hypothesis
KEYS = ["debug", "strip", "split-debuginfo", "lto", "opt-level", "inherits", "codegen-units"]
VALUES = ["0", "1", "2", "true", "false", '"none"', '"full"', '"symbols"', '"off"', '"unpacked"', '"release"',
          '"line-directives-only"', "3", "'z'", "[1, 2]", "{ a = 1 }", '"bogus"']
PROFILES = ["release", "dist", "dev", "release-lto"]


@st.composite
def manifests(draw) -> bytes:
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    indent = draw(st.sampled_from(["", "  ", "\t"]))
    lines = ["# generated", "[package]", 'name = "p"', 'version = "0.1.0"']
    if draw(st.booleans()):
        lines.insert(0, f"profile.{draw(st.sampled_from(PROFILES))}.{draw(st.sampled_from(KEYS))} = {draw(st.sampled_from(VALUES))}")
    used: set[str] = set()
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["profile", "profile", "package-override", "other", "comment", "blank"]))
        if kind == "profile":
            name = draw(st.sampled_from(PROFILES))
            if name in used:
                continue
            used.add(name)
            lines.append(f"[profile.{name}]")
            keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=4))
            for key in keys:
                comment = draw(st.sampled_from(["", "  # note"]))
                lines.append(f"{indent}{key} = {draw(st.sampled_from(VALUES))}{comment}")
        elif kind == "package-override":
            name = draw(st.sampled_from(["release", "dist"]))
            if f"{name}.pkg" in used:
                continue
            used.add(f"{name}.pkg")
            lines.append(f'[profile.{name}.package."*"]')
            lines.append(f"debug = {draw(st.sampled_from(VALUES))}")
        elif kind == "other":
            section = draw(st.sampled_from(["dependencies", "features", "workspace.metadata.x"]))
            if section in used:
                continue
            used.add(section)
            lines += [f"[{section}]", f'a = "b{nl.strip()}"', 'c = """multi', '[not.a.header]', '"""']
        elif kind == "comment":
            lines.append(draw(st.sampled_from(["# [profile.release]", "#debug = 0", "   # indented"])))
        else:
            lines.append("")
    text = nl.join(lines) + draw(st.sampled_from(["", nl]))
    data = text.encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 9)) == 0:  # sometimes break it
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(st.sampled_from([b"[", b"=", b"\xff", b'"', b"\x00"])) + data[pos:]
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifests())
def test_fix_on_generated_manifests(tmp_path_factory, data):
    """Either a clean ConfigError with the file untouched, or a valid manifest whose non-profile data is unchanged."""
    tmp = tmp_path_factory.mktemp("gen")
    ws = tmp / "ws"
    ws.mkdir()
    manifest = ws / "Cargo.toml"
    manifest.write_bytes(data)
    env = {"PATH": "/nonexistent", "CARGO_HOME": str(tmp / "home")}  # no cargo: the walk-up path
    try:
        outcome = plan_fix(load_workspace(ws, env), env, None, MSVC, (1, 95))
    except ConfigError as err:
        assert str(err).startswith(str(manifest))
        assert "\n" not in str(err)
        assert manifest.read_bytes() == data
        return
    new = outcome.new
    assert new.startswith(b"\xef\xbb\xbf") == data.startswith(b"\xef\xbb\xbf")
    assert_only_profile_changed(data, new)
    if b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b""):
        assert b"\n" not in new.replace(b"\r\n", b"")
