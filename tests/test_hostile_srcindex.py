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
    assert "mapped 1," in proc.stdout and "none 3;" in proc.stdout, proc.stdout
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert sum("srcsrv stream cannot record" in line for line in warned) == 3, proc.stderr
    assert "\r" not in proc.stderr


# -- 10. --in-place never writes through to a store's committed PDB ----------------------------------------

@pytest.fixture
def stored_pdb(tmp_path, env):
    """A real PDB published into a local store; (store, the store's copy of it)."""
    pdb = hp.build_real_pdb(tmp_path / "build")
    store = tmp_path / "store"
    proc = symtool("publish", pdb, "--store", store, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [stored] = [p for p in store.rglob("app.pdb") if p.is_file()]
    return store, stored


@pytest.mark.parametrize("how", ["symlink", "symlinked-dir", "hard-link", "store-path"])
def test_in_place_never_rewrites_a_store_file(tmp_path, env, stored_pdb, how):
    """`srcindex --in-place target/app.pdb`, a symlink to the store's PDB, rewrote the committed PDB (and
    `store verify` still passed). Now the link is replaced by an indexed copy; the store keeps its bytes."""
    import os

    store, stored = stored_pdb
    before = stored.read_bytes()
    listing = sorted(p.name for p in stored.parent.iterdir())
    out = tmp_path / "target"
    out.mkdir()
    if how == "symlink":
        name = out / "app.pdb"
        name.symlink_to(stored)
    elif how == "symlinked-dir":
        (out / "rel").symlink_to(stored.parent, target_is_directory=True)
        name = out / "rel" / "app.pdb"  # no symlink at the last component: it resolves into the store
    elif how == "hard-link":
        name = out / "app.pdb"
        os.link(stored, name)
    else:
        name = stored
    proc = symtool("srcindex", name, "--in-place", "--map", "/=https://e.invalid/", "--map", "C:\\=https://e.invalid/",
                   "--json", env=env, cwd=tmp_path)
    if how == "symlinked-dir":
        # Any write at that name lands in the store: refused, nothing written.
        assert proc.returncode == 2 and "symlinked directory" in proc.stderr, proc.stdout + proc.stderr
        assert stored.read_bytes() == before
        assert sorted(p.name for p in stored.parent.iterdir()) == listing
        return
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    [doc] = json.loads(proc.stdout)
    assert doc["written"] and doc["write_mode"] == "copy", doc
    assert doc["copy_reason"], doc
    assert srcsrv_of(name), "the name given was indexed"
    if how == "store-path":
        return  # named explicitly: the store's file itself was the one asked for (copied, renamed over)
    assert stored.read_bytes() == before, "the store's committed PDB changed"
    assert srcsrv_of(stored) == ""
    if how == "symlink":
        assert not name.is_symlink() and name.is_file()
    verify = symtool("store", "verify", "--store", store, env=env, cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # Text output says why it was not in place.
    if how == "symlink":
        name.unlink()
        name.symlink_to(stored)
        proc = symtool("srcindex", name, "--in-place", "--map", "/=https://e.invalid/", "--map",
                       "C:\\=https://e.invalid/", env=env, cwd=tmp_path)
        assert "symbolic link" in proc.stderr and "not in place" in proc.stderr, proc.stderr
        assert stored.read_bytes() == before
