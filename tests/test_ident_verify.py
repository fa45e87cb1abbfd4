"""`symtool id` and `symtool verify` on real builds and fixtures, and the
library behind verify (symtool/verify.py)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

from cli_runner import symtool_in_process
from conftest import TRIPLE, cargo_env, sample_layout
from symtool.formats.pdb import open_msf, read_pdb
from symtool.formats.pe import read_pe
from symtool.cargo.outputs import select_outputs
from symtool.verify import (
    MATCH, MISMATCH, NO_CODEVIEW, PDB_MISSING, UNREADABLE, find_binaries, locate_pdb, verify_binary, verify_paths,
)


def symtool(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    return symtool_in_process(*map(str, args), cwd=cwd, env=env, timeout=120)


def assert_one_line_error(proc, *names) -> None:
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == len(names), proc.stderr
    for line, name in zip(lines, names):
        assert line.startswith("error: ") and str(name) in line


# -- symtool id ----------------------------------------------------------------------

def test_id_json_store_paths_equal_symstore_exe(fixtures_dir):
    inputs = fixtures_dir / "symstore-exe/inputs"
    files = sorted(inputs.iterdir())
    proc = symtool("id", "--json", *files)
    assert proc.returncode == 0, proc.stderr
    recs = {Path(r["path"]).name: r for r in json.loads(proc.stdout)}
    assert set(recs) == {f.name for f in files}
    stored = set()
    for store in (fixtures_dir / "symstore-exe/stores").iterdir():
        for f in store.glob("*/*/*"):
            if f.name == f.parent.parent.name:
                stored.add(f.relative_to(store).as_posix())
    for name, rec in recs.items():
        assert rec["store_path"] in stored, name
        assert rec["kind"] == ("pe" if name.endswith((".exe", ".dll")) else "pdb")
    big = recs["bigage.pdb"]
    assert (big["guid"], big["age"], big["info_age"]) == ("C9A61DDD-D7E4-4353-A668-E39AC614A7EA", 10, 10)
    prog = recs["dummyprog.exe"]
    assert (prog["machine"], prog["timestamp"], prog["size_of_image"]) == ("x86", 0x5617D4FE, 0x8000)
    # The exe asks for its PDB by the name it was linked with; dummyprog.pdb is that PDB renamed.
    assert prog["pdb_name"] == "ConsoleApplication1.pdb"
    assert (prog["pdb_guid"], prog["pdb_age"]) == (recs["dummyprog.pdb"]["guid"], recs["dummyprog.pdb"]["age"])


def test_id_text_shows_both_ages_and_the_wanted_pdb(fixtures_dir):
    proc = symtool("id", fixtures_dir / "pe-pdb/crash_with_srcsrv.pdb", fixtures_dir / "pe-pdb/crash.exe")
    assert proc.returncode == 0, proc.stderr
    pdb_line, exe_line = proc.stdout.splitlines()
    assert "crash_with_srcsrv.pdb/3249D99D0C4049318610F4E4FB0B69361/crash_with_srcsrv.pdb" in pdb_line
    assert "age 1 info-age 4" in pdb_line and "3249D99D-0C40-4931-8610-F4E4FB0B6936" in pdb_line
    assert "crash.exe/5AB380779000/crash.exe" in exe_line
    assert "pdb: crash.pdb/3249D99D0C4049318610F4E4FB0B69361/crash.pdb" in exe_line
    assert "C:\\projects\\breakpad-tools\\windows\\Release\\crash.pdb" in exe_line


def test_id_sample_build(sample_build):
    exe, pdb = sample_build.exe("crash-me"), sample_build.pdb("crash-me")
    proc = symtool("id", "--json", exe, pdb)
    assert proc.returncode == 0, proc.stderr
    e, p = json.loads(proc.stdout)
    assert e["kind"] == "pe" and e["machine"] == "x64" and e["pdb_name"] == "crash_me.pdb"
    assert e["pdb_store_path"] == p["store_path"] == f"crash_me.pdb/{p['index']}/crash_me.pdb"
    assert (e["pdb_guid"], e["pdb_age"]) == (p["guid"], p["age"])


def test_id_reports_good_files_and_exits_2_for_bad(fixtures_dir, tmp_path):
    empty = tmp_path / "empty.pdb"
    empty.write_bytes(b"")
    text = tmp_path / "notes.exe"
    text.write_text("hello")
    proc = symtool("id", "--json", fixtures_dir / "pe-pdb/crash.pdb", empty, text, tmp_path / "missing.pdb")
    assert_one_line_error(proc, empty, text, tmp_path / "missing.pdb")
    (rec,) = json.loads(proc.stdout)
    assert rec["index"] == "3249D99D0C4049318610F4E4FB0B69361"


def test_id_hostile_files_one_line_exit_2(fixtures_dir, tmp_path):
    from test_pdb import hostile_pdbs
    from test_pe import MAY_STILL_READ, hostile_pes

    paths = []
    for name, data in hostile_pdbs(fixtures_dir).items():
        paths.append(tmp_path / f"{name}.pdb")
        paths[-1].write_bytes(data)
    for name, data in hostile_pes(fixtures_dir).items():
        if name not in MAY_STILL_READ:
            paths.append(tmp_path / f"{name}.exe")
            paths[-1].write_bytes(data)
    for p in paths:
        proc = symtool("id", p)
        assert_one_line_error(proc, p)
        assert proc.stdout == ""


# -- verify: library -------------------------------------------------------------------

def test_verify_fixture_pair_by_codeview_name(fixtures_dir, tmp_path):
    # The CodeView path (C:\projects\...) does not exist here: found beside the exe by name.
    shutil.copy(fixtures_dir / "pe-pdb/crash.exe", tmp_path)
    shutil.copy(fixtures_dir / "pe-pdb/crash.pdb", tmp_path)
    v = verify_binary(tmp_path / "crash.exe")
    assert v.status == MATCH and v.pdb == str(tmp_path / "crash.pdb")
    assert v.image_id == v.pdb_id == "3249D99D0C4049318610F4E4FB0B69361"


def test_srcsrv_info_age_bump_still_matches(fixtures_dir, tmp_path):
    shutil.copy(fixtures_dir / "pe-pdb/crash.exe", tmp_path)
    shutil.copy(fixtures_dir / "pe-pdb/crash_with_srcsrv.pdb", tmp_path / "crash.pdb")
    v = verify_binary(tmp_path / "crash.exe")
    assert v.status == MATCH and (v.pdb_age, v.pdb_info_age) == (1, 4)


def test_x64_pair_and_case_insensitive_name(fixtures_dir, tmp_path):
    shutil.copy(fixtures_dir / "pe-pdb/dump_syms_regtest64.exe", tmp_path)
    shutil.copy(fixtures_dir / "pe-pdb/dump_syms_regtest64.pdb", tmp_path / "DUMP_SYMS_REGTEST64.PDB")
    v = verify_binary(tmp_path / "dump_syms_regtest64.exe")
    assert v.status == MATCH and v.image_age == v.pdb_age == 3


def test_wrong_pdb_is_guid_mismatch_with_both_sides(fixtures_dir, tmp_path):
    shutil.copy(fixtures_dir / "pe-pdb/crash.exe", tmp_path)
    shutil.copy(fixtures_dir / "pe-pdb/dump_syms_regtest64.pdb", tmp_path / "crash.pdb")
    v = verify_binary(tmp_path / "crash.exe")
    assert v.status == MISMATCH and v.mismatch == "guid"
    assert "3249D99D-0C40-4931-8610-F4E4FB0B6936" in v.reason and "72E103A8-5CB2-4907-8B76-B2E7C06257B1" in v.reason


def test_symstore_inputs_pdb_missing_and_renamed(fixtures_dir, tmp_path):
    # dummyprog.exe asks for ConsoleApplication1.pdb; beside it there is only dummyprog.pdb.
    v = verify_binary(fixtures_dir / "symstore-exe/inputs/dummyprog.exe")
    assert v.status == PDB_MISSING and v.pdb_name == "ConsoleApplication1.pdb"
    assert v.searched == [str(fixtures_dir / "symstore-exe/inputs/ConsoleApplication1.pdb")]
    shutil.copy(fixtures_dir / "symstore-exe/inputs/dummyprog.exe", tmp_path)
    shutil.copy(fixtures_dir / "symstore-exe/inputs/dummyprog.pdb", tmp_path / "ConsoleApplication1.pdb")
    assert verify_binary(tmp_path / "dummyprog.exe").status == MATCH


def test_no_codeview_and_unreadable(fixtures_dir, tmp_path):
    from test_pe import patched, pe_layout

    real = (fixtures_dir / "symstore-exe/inputs/dummyprog.exe").read_bytes()
    (tmp_path / "nodebug.exe").write_bytes(patched(real, pe_layout(real)["datadir_debug"], "<II", 0, 0))
    (tmp_path / "garbage.dll").write_bytes(b"MZ" + b"\xff" * 100)
    assert verify_binary(tmp_path / "nodebug.exe").status == NO_CODEVIEW
    assert verify_binary(tmp_path / "garbage.dll").status == UNREADABLE
    proc = symtool("verify", tmp_path / "nodebug.exe")
    assert proc.returncode == 1 and "no-codeview" in proc.stdout
    proc = symtool("verify", tmp_path)
    assert_one_line_error(proc, tmp_path / "garbage.dll")


def test_dbi_age_patched_is_age_mismatch(sample_build, tmp_path):
    out = sample_build.out()
    shutil.copy(out / "crash-me.exe", tmp_path)
    pdb = tmp_path / "crash_me.pdb"
    shutil.copy(out / "crash_me.pdb", pdb)
    f, msf = open_msf(pdb)
    with f:
        age_at = msf.stream_blocks(3)[0] * msf.block_size + 8  # DBI header: sig, version, age
        old_age = struct.unpack("<I", msf.read_stream(3, 8, 4))[0]
    data = bytearray(pdb.read_bytes())
    assert struct.unpack_from("<I", data, age_at)[0] == old_age == 1
    struct.pack_into("<I", data, age_at, old_age + 1)
    pdb.write_bytes(bytes(data))
    assert read_pdb(pdb).age == 2 and read_pdb(pdb).info_age == 1
    v = verify_binary(tmp_path / "crash-me.exe")
    assert v.status == MISMATCH and v.mismatch == "age" and (v.image_age, v.pdb_age) == (1, 2)
    proc = symtool("verify", "--json", tmp_path / "crash-me.exe")
    assert proc.returncode == 1
    (rec,) = json.loads(proc.stdout)
    assert rec["status"] == "mismatch" and rec["mismatch"] == "age"


def test_pdb_rebuilt_beside_older_exe_is_guid_mismatch(sample_build, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(sample_build.workspace, ws, ignore=shutil.ignore_patterns("target"))
    target = tmp_path / "target"
    env = cargo_env(CARGO_TARGET_DIR=str(target))

    def build():
        subprocess.run(["cargo", "build", "--release", "--target", TRIPLE], cwd=ws, env=env, check=True,
                       capture_output=True, timeout=600)

    build()
    out = target / TRIPLE / "release"
    old_exe = tmp_path / "old-crash-me.exe"
    shutil.copy(out / "crash-me.exe", old_exe)
    main_rs = ws / "crates/crash-me/src/main.rs"
    main_rs.write_text(main_rs.read_text() + "\n#[no_mangle]\npub extern \"C\" fn symtool_added() -> i32 { 7 }\n")
    build()
    assert verify_binary(out / "crash-me.exe").status == MATCH
    shutil.copy(old_exe, out / "crash-me.exe")
    v = verify_binary(out / "crash-me.exe")
    assert v.status == MISMATCH and v.mismatch == "guid"
    assert v.image_guid != v.pdb_guid and v.image_guid in v.reason and v.pdb_guid in v.reason


# -- verify: discovery and the CLI --------------------------------------------------------

def test_verify_sample_build_all_match(sample_build):
    proc = symtool("verify", "--json", sample_build.out("release"), sample_build.out("dist"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recs = json.loads(proc.stdout)
    # deps/ holds hard links of the top-level files: each binary counted once, top-level path kept.
    assert sorted(Path(r["binary"]).name for r in recs) == sorted(sample_layout().exe_names() * 2)
    assert all(Path(r["binary"]).parent.name in ("release", "dist") for r in recs)
    for r in recs:
        assert set(r) >= {"binary", "pdb", "status", "image_id", "pdb_id", "reason", "mismatch"}
        assert r["status"] == "match" and r["image_id"] == r["pdb_id"]
    crash = next(r for r in recs if r["binary"].endswith("crash-me.exe"))
    assert Path(crash["pdb"]).name == "crash_me.pdb"


def test_verify_default_is_the_workspace_release_output(sample_build):
    env = dict(os.environ, CARGO_TARGET_DIR=str(sample_build.target_dir))
    sub = sample_build.workspace / "crates" / "hello"
    proc = symtool("verify", cwd=sub, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = len(sample_layout().bins)
    assert proc.stdout.strip().splitlines()[-1] == f"{n} binaries: {n} match"
    assert {Path(line.split()[1].rstrip(":")).parent for line in proc.stdout.splitlines()[:-1]} == {
        sample_build.out("release")}
    assert select_outputs(sub / "Cargo.toml", env=env).workspace.target_dir == sample_build.target_dir


def test_output_selection_dirs(tmp_path):
    ws = tmp_path / "ws"
    (ws / "crates" / "a").mkdir(parents=True)
    (ws / "Cargo.toml").write_text('[workspace]\nmembers = ["crates/a"]\n[profile.dist]\ninherits = "release"\n')
    (ws / "crates/a/Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\n')
    manifest = ws / "crates/a/Cargo.toml"
    assert select_outputs(manifest, env={}).workspace.target_dir == ws / "target"
    (ws / ".cargo").mkdir()
    (ws / ".cargo/config.toml").write_text('[build]\ntarget-dir = "build-out"\n')
    # Triple and plain profile dirs, with deps/ hard links counted once.
    target = ws / "build-out"
    for d in (target / "release" / "deps", target / TRIPLE / "dist" / "deps", target / "doc"):
        d.mkdir(parents=True)
    (target / "release" / ".fingerprint").mkdir()
    assert select_outputs(manifest, env={}).dirs() == [target / "release"]
    assert select_outputs(manifest, profile="dist", env={}).dirs() == [target / TRIPLE / "dist"]
    assert select_outputs(manifest, profile="dist", targets=[TRIPLE], env={}).dirs() == [target / TRIPLE / "dist"]
    assert select_outputs(manifest, profile="dev", env={}).candidate_dirs() == [target / "debug"]
    (target / "release" / "x.exe").write_bytes(b"MZ")
    os.link(target / "release" / "x.exe", target / "release" / "deps" / "x-0123.exe")
    (target / "release" / "incremental").mkdir()
    (target / "release" / "incremental" / "y.exe").write_bytes(b"MZ")
    found = find_binaries([target / "release", target / "release" / "deps"])
    assert found == [target / "release" / "x.exe"]


def test_verify_errors_and_empty(tmp_path):
    proc = symtool("verify", tmp_path / "nope")
    assert_one_line_error(proc, tmp_path / "nope")
    proc = symtool("verify", tmp_path)  # nothing to act on: bad input, as in publish
    assert proc.returncode == 2 and "no .exe/.dll/.sys" in proc.stderr


def test_locate_pdb_prefers_recorded_absolute_path(fixtures_dir, tmp_path):
    elsewhere = tmp_path / "pdbs"
    elsewhere.mkdir()
    shutil.copy(fixtures_dir / "pe-pdb/crash.pdb", elsewhere / "crash.pdb")
    (tmp_path / "bin").mkdir()
    shutil.copy(fixtures_dir / "pe-pdb/dump_syms_regtest64.pdb", tmp_path / "bin" / "crash.pdb")
    found, searched = locate_pdb(tmp_path / "bin" / "crash.exe", str(elsewhere / "crash.pdb"))
    assert found == elsewhere / "crash.pdb" and searched[0] == str(elsewhere / "crash.pdb")
    found, searched = locate_pdb(tmp_path / "bin" / "crash.exe", "C:\\build\\crash.pdb")
    assert found == tmp_path / "bin" / "crash.pdb" and len(searched) == (2 if os.name == "nt" else 1)
    assert read_pe(fixtures_dir / "pe-pdb/crash.exe").primary_codeview.pdb_name == "crash.pdb"


def test_verify_paths_dedupes_repeated_arguments(fixtures_dir, tmp_path):
    shutil.copy(fixtures_dir / "pe-pdb/crash.exe", tmp_path)
    shutil.copy(fixtures_dir / "pe-pdb/crash.pdb", tmp_path)
    verdicts = verify_paths([tmp_path / "crash.exe", tmp_path, tmp_path / "crash.exe"])
    assert [v.status for v in verdicts] == [MATCH]
