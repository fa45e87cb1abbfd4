"""symtool publish end to end: the real sample build, the CLI, --compress (checked
with cabextract and gcab), --pointer, and interop with the PyPI symstore package."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_runner import symtool_in_process
from conftest import need_tool
from symtool.cli import app
from symtool.formats.detect import read_identity
from symtool.store import admin as adm
from symtool.store.layout import lookup
from symtool.store.manage import delete_transactions
from symtool.store.publish import PublishOptions, collect, publish
from symtool.store.repair import verify_store

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _cli(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def test_sample_build_target_dir(sample_build, tmp_path):
    col = collect([sample_build.target_dir])
    names = sorted({i.name for i in col.items})
    # Binaries and PDBs only; deps/ hard links of the top-level files count once.
    assert all(n.endswith((".exe", ".pdb", ".dll")) for n in names), names
    assert not any("-" in n and n.split("-")[-1].split(".")[0].isalnum() and len(n.split("-")[-1]) > 16
                   for n in names), names
    assert {"crash-me.exe", "crash_me.pdb", "hello.exe", "hello.pdb"} <= set(names)
    store = tmp_path / "store"
    rep = publish(str(store), [sample_build.out("release")], PublishOptions(product="samples", version="0.1"))
    assert rep.transaction == "0000000001"
    assert not [f for f in rep.files if f.status == "refused"]
    for name in ("crash-me", "hello"):
        for path in (sample_build.exe(name), sample_build.pdb(name)):
            info = read_identity(path)  # symtool.formats readers give the key
            found = lookup(store, path.name, info.index)
            assert found is not None and found.path.read_bytes() == path.read_bytes()
    kinds = {f.name: f.kind for f in rep.files}
    assert kinds["crash-me.exe"] == "bin" and kinds["crash_me.pdb"] == "pri"
    assert not verify_store(store).findings
    again = publish(str(store), [sample_build.out("release")], PublishOptions())
    assert {f.status for f in again.files} == {"present"}
    assert again.transaction == "0000000002"


def test_publish_without_path_uses_release_output(sample_build, tmp_path, monkeypatch):
    store = tmp_path / "st"
    monkeypatch.chdir(sample_build.workspace)
    env = {"CARGO_TARGET_DIR": str(sample_build.target_dir), "SYMTOOL_STORE": str(store)}
    res = _cli("publish", "--json", "--product", "ci", env=env)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["transaction"] == "0000000001"
    paths = {Path(f["path"]).parent for f in out["files"]}
    assert paths == {sample_build.out("release")}
    assert set(out["files"][0]) == {"path", "key", "name", "index", "kind", "status", "stored_as", "size", "reason"}


def test_explicit_pair_from_two_folders_is_checked_as_verify_pairs_it(sample_build, tmp_path):
    """Issue 26, item 1: `publish R/crash-me.exe D/crash_me.pdb` pairs the two files named, as
    `verify` does with the same arguments, wherever each lies: a PDB of another build is refused
    with its binary (exit 1, nothing stored); the PDB of the same build, copied elsewhere, is added."""
    exe = sample_build.exe("crash-me", "release")
    other = sample_build.pdb("crash-me", "dist")
    if read_identity(other).index == read_identity(sample_build.pdb("crash-me")).index:
        pytest.skip("optional: release and dist PDBs share an identity in this toolchain")
    verified = _cli("verify", "--json", str(exe), str(other))
    assert verified.exit_code == 1 and json.loads(verified.stdout)[0]["status"] == "mismatch"  # the oracle
    store = tmp_path / "s"
    res = _cli("publish", str(exe), str(other), "--store", str(store), "--json")
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert {f["name"]: f["status"] for f in out["files"]} == {"crash-me.exe": "refused", "crash_me.pdb": "refused"}
    assert all("mismatched pair" in f["reason"] for f in out["files"])
    assert out["transaction"] is None and not store.exists()

    elsewhere = tmp_path / "D"
    elsewhere.mkdir()
    shutil.copy(sample_build.pdb("crash-me", "release"), elsewhere / "crash_me.pdb")
    assert _cli("verify", str(exe), str(elsewhere / "crash_me.pdb")).exit_code == 0
    res = _cli("publish", str(exe), str(elsewhere / "crash_me.pdb"), "--store", str(store), "--json")
    assert res.exit_code == 0, res.output
    assert [f["status"] for f in json.loads(res.stdout)["files"]] == ["added", "added"]


def test_mismatched_pair_refused(sample_build, tmp_path):
    d = tmp_path / "mix"
    d.mkdir()
    shutil.copy(sample_build.exe("crash-me", "release"), d / "crash-me.exe")
    shutil.copy(sample_build.pdb("crash-me", "dist"), d / "crash_me.pdb")
    if read_identity(d / "crash_me.pdb").index == read_identity(sample_build.pdb("crash-me")).index:
        pytest.skip("optional: release and dist PDBs share an identity in this toolchain")
    res = _cli("publish", str(d / "crash-me.exe"), str(d / "crash_me.pdb"), "--store", str(tmp_path / "s"), "--json")
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert [f["status"] for f in out["files"]] == ["refused", "refused"]
    assert "mismatched pair" in out["files"][0]["reason"]
    assert out["transaction"] is None


def test_cli_summary_and_store_commands(fixtures_dir, tmp_path):
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    store = str(tmp_path / "s")
    res = _cli("publish", str(inputs / "bigage.pdb"), str(inputs / "dummyprog.pdb"), "--store", store,
               "--product", "p", "--version", "1", "--comment", "c")
    assert res.exit_code == 0
    assert "added 2, already present 0, refused 0, transaction 0000000001" in res.stdout
    res = _cli("store", "list", "--store", store, "--json")
    rows = json.loads(res.stdout)["transactions"]
    assert [(r["id"], r["product"], r["version"], r["comment"]) for r in rows] == [("0000000001", "p", "1", "c")]
    res = _cli("store", "show", "1", "--store", store, "--json")
    assert [f["stored_as"] for f in json.loads(res.stdout)["files"]] == ["plain", "plain"]
    assert _cli("store", "verify", "--store", store).exit_code == 0
    res = _cli("store", "delete", "1", "--store", store, "--json")
    assert json.loads(res.stdout)["deleted"] == ["0000000001"]
    assert _cli("store", "show", "7", "--store", store).exit_code == 1
    assert _cli("store", "delete", "abc", "--store", store).exit_code == 2
    assert _cli("store", "list", "--store", str(tmp_path / "nope")).exit_code == 2
    assert _cli("store", "prune", "--store", store).exit_code == 2


def test_compress_checked_with_cabextract_and_gcab(fixtures_dir, tmp_path):
    cabextract = need_tool("cabextract")
    gcab = need_tool("gcab")
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    store = tmp_path / "s"
    rep = publish(str(store), [inputs / "dummyprog.pdb", inputs / "dummyprog.exe"], PublishOptions(compress=True))
    assert [f.stored_as for f in rep.files] == ["compressed", "compressed"]
    pd_ = store / "dummyprog.pdb" / "F6301B4562FE4B4DB691192733ECE6B71" / "dummyprog.pd_"
    ex_ = store / "dummyprog.exe" / "5617D4FE8000" / "dummyprog.ex_"
    assert pd_.is_file() and ex_.is_file()
    assert adm.read_lines(pd_.parent / "refs.ptr")[0].endswith(",pri,,Y,,")
    for cab, orig in ((pd_, inputs / "dummyprog.pdb"), (ex_, inputs / "dummyprog.exe")):
        out1 = tmp_path / ("x1" + cab.name)
        subprocess.run([cabextract, "-q", "-d", str(out1), str(cab)], check=True)
        assert (out1 / orig.name).read_bytes() == orig.read_bytes()
        out2 = tmp_path / ("x2" + cab.name)
        out2.mkdir()
        subprocess.run([gcab, "-x", "-C", str(out2), str(cab)], check=True)
        assert (out2 / orig.name).read_bytes() == orig.read_bytes()
    assert lookup(store, "dummyprog.pdb", "F6301B4562FE4B4DB691192733ECE6B71").form == "compressed"
    # Republishing compressed: the CAB's recorded size and name say it is the same file.
    again = publish(str(store), [inputs / "dummyprog.pdb"], PublishOptions(compress=True))
    assert again.files[0].status == "present"
    assert not verify_store(store).findings


def test_compress_over_cab_limit_stored_plain(fixtures_dir, tmp_path, monkeypatch):
    from symtool.formats import cab

    monkeypatch.setattr(cab, "MAX_CAB_INPUT", 1000)
    rep = publish(str(tmp_path / "s"), [fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"],
                  PublishOptions(compress=True))
    assert rep.files[0].stored_as == "plain"
    assert any("CAB limit" in n for n in rep.notes)


def test_pointer(fixtures_dir, tmp_path):
    src = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"
    store = tmp_path / "s"
    rep = publish(str(store), [src], PublishOptions(pointer=True))
    ptr = store / "dummyprog.pdb" / "F6301B4562FE4B4DB691192733ECE6B71" / "file.ptr"
    assert ptr.read_text() == f"PATH:{src.resolve()}"
    assert not (ptr.parent / "dummyprog.pdb").exists()
    assert adm.read_lines(ptr.parent / "refs.ptr") == [f'{rep.transaction},ptr,"{src.resolve()}",pri,,N,,']
    assert ",add,ptr," in adm.Admin(store).server_lines()[0]
    assert lookup(store, "dummyprog.pdb", "F6301B4562FE4B4DB691192733ECE6B71").form == "pointer"
    assert not verify_store(store).findings


def test_pypi_symstore_interop(fixtures_dir, tmp_path):
    symstore = pytest.importorskip("symstore", reason="needs the PyPI symstore package (test extras)")
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    store = tmp_path / "s"
    t1 = publish(str(store), [inputs / "bigage.pdb", inputs / "dummyprog.pdb"], PublishOptions(product="ours")).transaction
    # The PyPI package adds to the store symtool made...
    theirs = symstore.Store(str(store))
    txn = theirs.new_transaction("theirs", "2", "")
    txn.add_entry(txn.new_entry(str(inputs / "dummylib.pdb")))
    txn.add_entry(txn.new_entry(str(inputs / "dummyprog.pdb")))
    theirs.commit(txn)
    assert txn.id == "0000000002"
    assert (store / "dummylib.pdb" / "86808261E6FD4CC29DC8D3CEC6FC84AF1" / "dummylib.pdb").is_file()
    # ...and symtool keeps working with it: it reads their lines, adds and deletes.
    t3 = publish(str(store), [inputs / "dummyprog.exe"], PublishOptions(product="ours")).transaction
    assert t3 == "0000000003"
    assert sorted(adm.Admin(store).live()) == [t1, "0000000002", t3]
    delete_transactions(store, [t1])
    # dummyprog.pdb is still listed by their transaction (which wrote no refs.ptr line): kept.
    assert (store / "dummyprog.pdb" / "F6301B4562FE4B4DB691192733ECE6B71" / "dummyprog.pdb").is_file()
    assert not (store / "bigage.pdb").exists()
    # The PyPI package wrote no refs.ptr lines: verify says so, --repair adds them.
    assert {f.kind for f in verify_store(store).findings} == {"refs-missing"}
    verify_store(store, repair=True)
    assert not verify_store(store).findings
    # The PyPI package can delete from it too.
    symstore.Store(str(store)).delete_transaction("0000000002")
    assert "0000000002" not in adm.Admin(store).live()


def test_pypi_symstore_adds_to_store_symtool_made_cli(fixtures_dir, tmp_path):
    pytest.importorskip("symstore", reason="needs the PyPI symstore package (test extras)")
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    store = tmp_path / "s"
    publish(str(store), [inputs / "bigage.pdb"], PublishOptions())
    proc = subprocess.run([sys.executable, "-c", "from symstore.command_line import main; main()",
                           str(store), str(inputs / "dummyprog.exe")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (store / "dummyprog.exe" / "5617D4FE8000" / "dummyprog.exe").is_file()
    assert publish(str(store), [inputs / "dummylib.dll"], PublishOptions()).transaction == "0000000003"


def test_publish_to_http_store_puts_files_on_the_server(nginx, fixtures_dir):
    """publish() with a URL uploads with PUT (nginx WebDAV) and keeps no 000Admin there."""
    import uuid

    pdb = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"
    where = f"upload-open/dispatch-{uuid.uuid4().hex[:8]}"
    key = "dummyprog.pdb/F6301B4562FE4B4DB691192733ECE6B71/dummyprog.pdb"
    rep = publish(nginx.url(where), [pdb], PublishOptions())
    assert [(f.key, f.status) for f in rep.files] == [(key, "uploaded")]
    assert (nginx.www / where / key).read_bytes() == pdb.read_bytes()
    assert not (nginx.www / where / "000Admin").exists()
    again = publish(nginx.url(where), [pdb], PublishOptions())
    assert [f.status for f in again.files] == ["present"]


def test_unreadable_input_is_exit_2_and_leaves_no_store(tmp_path):
    """A random or missing file is bad input (exit 2, one line each), not a
    refused pair; with nothing readable the store is not even created."""
    junk = tmp_path / "junk.pdb"
    junk.write_bytes(b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0" + b"\xff" * 40)
    store = tmp_path / "store"
    proc = symtool_in_process("publish", junk, tmp_path / "missing.pdb", "--store", store)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and "Traceback" not in proc.stderr
    assert "junk.pdb" in errors[0] or "junk.pdb" in errors[1]
    assert not store.exists()


def test_unreadable_file_beside_good_ones_still_publishes_the_good(sample_build, tmp_path):
    import json

    junk = tmp_path / "junk.exe"
    junk.write_bytes(b"MZ" + b"\0" * 100)
    store = tmp_path / "store"
    proc = symtool_in_process("publish", sample_build.exe("hello"), sample_build.pdb("hello"), junk, "--store", store,
                              "--json")
    assert proc.returncode == 2, proc.stderr
    statuses = sorted(f["status"] for f in json.loads(proc.stdout)["files"])
    assert statuses == ["added", "added", "unreadable"]


def test_the_recorded_source_paths_are_what_path_resolve_gives(tmp_path, monkeypatch):
    """platform.real_paths (each directory resolved once on POSIX) against Path.resolve, for files
    through a linked directory, a linked file, a dangling link, '..', and names relative to the
    working directory -- the source paths transaction files and refs.ptr record."""
    import os

    from symtool import platform

    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    for name in ("a.pdb", "b.pdb", "sub/c.pdb"):
        (real / name).write_bytes(b"x")
    (tmp_path / "linked").symlink_to(real, target_is_directory=True)
    (real / "file-link.pdb").symlink_to(real / "sub" / "c.pdb")
    (real / "dangling.pdb").symlink_to(tmp_path / "nowhere" / "x.pdb")
    monkeypatch.chdir(real / "sub")
    paths = [tmp_path / "linked" / "a.pdb", tmp_path / "linked" / "b.pdb", real / "file-link.pdb",
             real / "dangling.pdb", tmp_path / "linked" / "sub" / ".." / "a.pdb", Path("c.pdb"),
             Path("../b.pdb"), Path("missing.pdb"), real / "sub" / "c.pdb"]
    got = platform.real_paths(paths)
    assert got == [str(p.resolve()) for p in paths]
    assert got[0] == str(real / "a.pdb") and got[2] == got[5] == got[-1] == str(real / "sub" / "c.pdb")
    assert all(os.path.isabs(p) for p in got)
