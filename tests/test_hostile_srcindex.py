"""Hostile source paths for `srcindex` (issue 22 items 10, 12, 13; docs/security.md): real PDBs from
clang -gcodeview + lld-link whose line tables name the paths with ``#line``."""

from __future__ import annotations

import json

import pytest

import hostile_pdbs as hp
from hostile_helpers import clean_env, symtool

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def env(tmp_path):
    return clean_env(tmp_path)


def srcsrv_of(pdb) -> str:
    from symtool.formats.msf_write import read_named_stream

    raw = read_named_stream(pdb, "srcsrv")
    return raw.decode("utf-8") if raw is not None else ""


def files_by_path(proc) -> dict:
    [doc] = json.loads(proc.stdout)
    return {f["path"]: f for f in doc["files"]}


# -- 12. `..` never climbs out of a URL prefix -------------------------------------------------------------

def test_dotdot_paths_get_no_url(tmp_path, env):
    """`/rustc/<c>/../../../../attacker/repo/main/…` became a raw.githubusercontent.com URL of another
    repository, as did a --map prefix followed by `../..`. Now neither is indexed: a warning, exit 1."""
    climbing_std = f"/rustc/{COMMIT}/../../../../attacker/repo/main/evil.rs"
    climbing_map = "/a/proj/../../attacker/repo/main/evil.c"
    honest_std = f"/rustc/{COMMIT}/library/core/src/panicking.rs"
    honest_map = "/a/proj/src/ok.c"
    pdb = hp.build_pdb_naming(tmp_path / "b", [climbing_std, climbing_map, honest_std, honest_map])
    args = ("srcindex", pdb, "--map", "/a/proj/=https://raw.githubusercontent.com/me/proj/C/")
    proc = symtool(*args, "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    files = files_by_path(proc)
    for bad in (climbing_std, climbing_map):
        assert files[bad]["rule"] == "none" and files[bad]["target"] is None, files[bad]
        assert any("'..'" in r for r in files[bad]["reasons"]), files[bad]
    assert files[honest_std]["rule"] == "std"
    assert files[honest_map]["target"] == "https://raw.githubusercontent.com/me/proj/C/src/ok.c"
    text = srcsrv_of(pdb)
    assert "attacker" not in text and "/../" not in text and "ok.c" in text
    # Text output: one warning per climbing path.
    pdb2 = hp.build_pdb_naming(tmp_path / "c", [climbing_std, climbing_map, honest_map])
    proc = symtool(*args[:1], pdb2, *args[2:], env=env, cwd=tmp_path)
    assert proc.returncode == 1
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning: ") and "'..'" in line]
    assert len(warned) == 2, proc.stderr


@pytest.mark.parametrize("path", ["D:\\a\\proj\\..\\..\\attacker\\repo\\main.c", "D:\\a\\proj\\src\\...\\..\\x.c",
                                  "d:/A/proj/src/.. /../x.c"])
def test_dotdot_windows_paths_match_no_map(path):
    """The Windows spellings (either separator, any case; Windows drops trailing dots and spaces)."""
    from symtool.formats.pdb import SourceFile
    from symtool.srcindex.rules import IndexConfig, resolve

    cfg = IndexConfig(maps=[("D:\\a\\proj\\", "https://raw.githubusercontent.com/me/proj/C/")])
    r = resolve(SourceFile(path, None, None), cfg)
    assert r.rule == "none" and r.target is None and any("'..'" in x for x in r.reasons), r
    ok = resolve(SourceFile("D:\\a\\proj\\src\\ok.c", None, None), cfg)
    assert ok.target == "https://raw.githubusercontent.com/me/proj/C/src/ok.c"


# -- 13. paths srcsrv cannot hold are reported, not dropped --------------------------------------------------

def test_paths_srcsrv_cannot_hold_are_reported(tmp_path, env):
    """`*` (srcsrv's field separator), CR and LF in a path: left out of the stream, yet exit 0 and counted
    as mapped. Now they are unmapped files: a warning each, exit 1, counts that say so."""
    names = ["src\\a*b.c", "src\\cr\rx.c", "src\\lf\nx.c", "src\\ok.c"]
    pdb = hp.build_pdb_naming(tmp_path / "b", names, compilation_dir="D:\\a\\proj")
    args = ("srcindex", pdb, "--map", "D:\\a\\proj\\=https://raw.githubusercontent.com/me/proj/C/")
    proc = symtool(*args, "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    files = files_by_path(proc)
    [doc] = json.loads(proc.stdout)
    assert len(files) == 4, files
    bad = [f for p, f in files.items() if not p.endswith("ok.c")]
    assert len(bad) == 3 and all(f["rule"] == "none" and f["target"] is None for f in bad), bad
    assert all(any("srcsrv stream cannot record" in r for r in f["reasons"]) for f in bad), bad
    assert doc["counts"]["map"] == 1 and doc["counts"]["none"] == 3, doc["counts"]
    text = srcsrv_of(pdb)
    assert text.count("raw.githubusercontent.com") == 1 and "ok.c" in text
    # Text output: the summary counts them as none, a warning each (control characters escaped).
    pdb2 = hp.build_pdb_naming(tmp_path / "c", names, compilation_dir="D:\\a\\proj")
    proc = symtool(args[0], pdb2, *args[2:], env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "mapped 1," in proc.stdout and "none 3)" in proc.stdout, proc.stdout
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert sum("srcsrv stream cannot record" in line for line in warned) == 3, proc.stderr
    assert "\r" not in proc.stderr
