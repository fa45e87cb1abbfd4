"""symtool.debugger.probe: what `symtool env` finds on disk (build dirs, PDB commits, cache).

Target dir, triples and members come from symtool.cargo.workspace: tests/test_workspace.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from symtool.debugger import probe
from symtool.debugger.paths import BuildDir


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_find_build_dirs_order_and_filters(tmp_path):
    t = tmp_path / "target"
    touch(t / "x86_64-pc-windows-msvc" / "release" / "a.exe")
    (t / "x86_64-pc-windows-msvc" / "release" / "deps").mkdir()
    touch(t / "aarch64-pc-windows-msvc" / "debug" / "a.pdb")
    touch(t / "debug" / "a.exe")
    (t / "release" / "build").mkdir(parents=True)  # host dir under --target: only subdirs, skipped
    touch(t / "release" / ".cargo-lock")
    touch(t / "release-lto" / "a.exe")  # a custom profile with a dash is not a triple
    touch(t / "profiling" / "a.exe")  # not a declared profile
    found = probe.find_build_dirs(str(t), ["x86_64-pc-windows-msvc"], ["release", "debug", "release-lto"])
    assert found == [
        BuildDir(str(t / "x86_64-pc-windows-msvc" / "release"), "release", "x86_64-pc-windows-msvc", True),
        BuildDir(str(t / "aarch64-pc-windows-msvc" / "debug"), "debug", "aarch64-pc-windows-msvc", False),
        BuildDir(str(t / "debug"), "debug", None, False),
        BuildDir(str(t / "release-lto"), "release-lto", None, False),
    ]
    assert probe.find_build_dirs(str(tmp_path / "missing"), [], ["release"]) == []


def test_scan_pdb_commit(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    p = touch(tmp_path / "a.pdb", b"\0" * 5000 + b"/rustc/" + commit.encode() + b"/library/std/src/lib.rs")
    assert probe.scan_pdb_commit(p) == commit
    p = touch(tmp_path / "b.pdb", b"/rustc/" + b"g" * 40 + b"/x" + b"\\rustc\\" + commit.encode()[:39] + b"\\")
    assert probe.scan_pdb_commit(p) is None


def test_scan_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(probe, "SCAN_CHUNK", 1024)
    monkeypatch.setattr(probe, "SCAN_MAX_BYTES", 4096)
    commit = "f" * 40
    p = touch(tmp_path / "late.pdb", b"\0" * 8192 + b"/rustc/" + commit.encode() + b"/")
    assert probe.scan_pdb_commit(p) is None  # beyond the bound: not read
    p = touch(tmp_path / "early.pdb", b"\0" * 1020 + b"/rustc/" + commit.encode() + b"/" + b"\0" * 8192)
    assert probe.scan_pdb_commit(p) == commit


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"version": 99}', b'{"version": 1, "toolchains": []}',
                                     b"\xff\xfe"])
def test_cache_file_garbage_is_ignored(tmp_path, content):
    path = touch(tmp_path / "env-cache.json", content)
    cache = probe.EnvCache(path)
    assert cache.data["toolchains"] == {} and cache.data["pdbs"] == {}
    cache.data["pdbs"]["x"] = [1, 2, None]
    cache.dirty = True
    cache.save()
    assert json.loads(path.read_text())["pdbs"] == {"x": [1, 2, None]}


def test_sample_wrappers_consume_what_write_produces():
    """samples/ wrappers read the files `--write` produces and run the script with $$<, never $><."""
    from symtool.debugger.windbg import PATH_FILES, SCRIPT_NAME

    samples = Path(__file__).resolve().parent.parent / "samples"
    for name in ("windbg.cmd", "windbg.ps1", "cdb.ps1"):
        text = (samples / name).read_text()
        for produced in (*PATH_FILES.values(), SCRIPT_NAME):
            assert produced in text, (name, produced)
        assert "$$<" in text and "--write" in text
        assert "$><" not in text.replace("never $><", "")
    for name in ("procdump-capture.ps1", "procdump-capture.cmd"):
        text = (samples / name).read_text()
        flags = " ".join(text.split())
        assert ("-e 1 -f C0000005 -fx 406D1388 -fx E06D7363 -mt" in flags
                or "'-e', '1', '-f', 'C0000005', '-fx', '406D1388', '-fx', 'E06D7363', '-mt'" in flags), name
        assert "PROCESSNAME_EXCEPTIONCODE_YYMMDD_HHMMSS.dmp" in text
    for name in ("github-actions.yml", "azure-pipelines.yml"):
        text = (samples / "ci" / name).read_text()
        for step in ("symtool check", "symtool verify", "symtool publish"):
            assert step in text, (name, step)


def test_gather_lists_standard_dirs_before_any_build(tmp_path):
    """No target dir yet: each profile's dir and deps for each build.target triple (or the
    host dir), then nothing else; after a build, dirs cargo wrote elsewhere are added."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Cargo.toml").write_text('[package]\nname = "p"\nversion = "0.1.0"\n\n[profile.dist]\ninherits = "release"\n')
    env = {"PATH": "/nonexistent", "HOME": str(tmp_path), "CARGO_HOME": str(tmp_path / "cargo-home")}
    dirs = [(b.path, b.profile, b.triple, b.has_deps)
            for b in probe.gather(ws, env, use_cache=False, toolchain=False).build_dirs]
    t = ws / "target"
    assert dirs == [(str(t / "release"), "release", None, True), (str(t / "debug"), "debug", None, True),
                    (str(t / "dist"), "dist", None, True)]
    (ws / ".cargo").mkdir()
    (ws / ".cargo" / "config.toml").write_text('[build]\ntarget = ["x86_64-pc-windows-msvc", "i686-pc-windows-msvc"]\n')
    touch(t / "aarch64-pc-windows-msvc" / "release" / "a.exe")  # an earlier `cargo build --target aarch64-...`
    dirs = [(b.path, b.triple) for b in probe.gather(ws, env, use_cache=False, toolchain=False).build_dirs]
    assert dirs == [(str(t / triple / profile), triple)
                    for triple in ("x86_64-pc-windows-msvc", "i686-pc-windows-msvc")
                    for profile in ("release", "debug", "dist")] + [
                   (str(t / "aarch64-pc-windows-msvc" / "release"), "aarch64-pc-windows-msvc")]
