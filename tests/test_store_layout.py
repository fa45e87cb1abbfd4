"""symtool publish reproduces what symstore.exe wrote, byte for byte (apart from
date, time and source paths); admin-file formats; pub/pri detection; hostile
admin lines (hypothesis)."""

from __future__ import annotations


import pytest
from hypothesis import given, settings, strategies as st

from store_helpers import assert_matches_symstore_exe
from symtool.errors import FormatError, UnsafeNameError
from symtool.store import admin as adm
from symtool.store.identify import identify
from symtool.store.publish import PublishOptions, collect, publish, publish_local

# The adds that made each fixture store (tests/fixtures/README.md), in order.
REPLAY = {
    "new_store": [(["bigage.pdb", "dummyprog.pdb"], "dummyprod", "")],
    "pe_store": [(["bigage.pdb", "dummyprog.pdb"], "dummyprod", ""), (["dummylib.pdb"], "dummylib", ""),
                 (["dummylib.dll", "dummyprog.exe"], "peprods", "1.0.1")],
    "republished": [(["bigage.pdb", "dummyprog.pdb"], "dummyprod", ""), (["dummyprog.pdb"], "dummyprod", "")],
}


@pytest.mark.parametrize("name", sorted(REPLAY))
def test_replay_matches_symstore_exe(name, fixtures_dir, tmp_path):
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    ours = tmp_path / name
    for files, product, version in REPLAY[name]:
        rep = publish(str(ours), [inputs / f for f in files], PublishOptions(product=product, version=version))
        assert rep.transaction is not None
    assert_matches_symstore_exe(ours, fixtures_dir / "symstore-exe" / "stores" / name)


def test_pub_pri_bin_kinds(fixtures_dir):
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    kinds = {p.name: identify(p).kind for p in inputs.iterdir()}
    # What symstore.exe wrote into the fixtures' refs.ptr files.
    assert kinds == {"bigage.pdb": "pub", "dummylib.pdb": "pub", "dummyprog.pdb": "pri",
                     "dummyprog.exe": "bin", "dummylib.dll": "bin"}


def test_history_line_endings(tmp_path):
    a = adm.Admin(tmp_path)
    a.ensure()
    a.append_history("0000000001,add,file,01/01/2020,00:00:00,\"p\",\"\",\"\",")
    assert (a.dir / "history.txt").read_bytes().endswith(b'"",')
    a.append_history("0000000002,del,0000000001")
    a.append_history("0000000003,del,0000000001")
    assert (a.dir / "history.txt").read_bytes().count(b"\r\n") == 3
    assert (a.dir / "history.txt").read_bytes().endswith(b"0000000001\r\n")
    # A file written by the PyPI package (LF, no final newline) gets a terminator first.
    (a.dir / "history.txt").write_bytes(b"0000000001,add,file,01/01/2020,00:00:00,\"p\",\"\",\"\",")
    a.append_history("0000000002,del,0000000001")
    assert adm.read_lines(a.dir / "history.txt")[1] == "0000000002,del,0000000001"


def test_refs_no_trailing_newline(tmp_path):
    adm.add_ref(tmp_path, adm.format_ref_line("0000000001", "file", "C:\\x.pdb", "pri", False))
    adm.add_ref(tmp_path, adm.format_ref_line("0000000002", "file", "C:\\x.pdb", "pri", True))
    data = (tmp_path / "refs.ptr").read_bytes()
    assert data == b'0000000001,file,"C:\\x.pdb",pri,,N,,\r\n0000000002,file,"C:\\x.pdb",pri,,Y,,'


@pytest.mark.parametrize("line", [
    '"..\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
    '"/etc/passwd\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
    '"C:\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
    '"nul.pdb\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
    '"a.pdb\\..","x"',
    '"a.pdb\\C9A61DDD/../..","x"',
    '"a\x00.pdb\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
])
def test_hostile_transaction_lines_refused(line):
    with pytest.raises((FormatError, UnsafeNameError)):
        adm.parse_entry(line)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_admin_parsers_never_crash(text):
    for fn in (adm.parse_admin_line, adm.parse_ref_line):
        fn(text)
    try:
        e = adm.parse_entry(text)
    except (FormatError, UnsafeNameError):
        return
    assert "/" not in e.name and "\\" not in e.name and e.name not in ("..", ".")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_txn_file_reader_never_crashes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("t") / "0000000001"
    p.write_bytes(data)
    entries, problems = adm.read_txn_file(p)
    assert all("/" not in e.name and "\\" not in e.name for e in entries)


def test_collect_refuses_non_debug_files(tmp_path, fixtures_dir):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    col = collect([junk, tmp_path / "missing.pdb", fixtures_dir / "pe-pdb" / "crash.pdb"])
    assert [i.name for i in col.items] == ["crash.pdb"]
    assert {r.name for r in col.refused} == {"notes.txt", "missing.pdb"}


def test_reserved_names_refused(tmp_path, fixtures_dir):
    pdb = tmp_path / "pingme.txt"
    pdb.write_bytes((fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb").read_bytes())
    rep = publish(str(tmp_path / "s"), [pdb], PublishOptions())
    assert [f.status for f in rep.files] == ["refused"]
    assert rep.transaction is None


def test_two_tier(tmp_path, fixtures_dir):
    from symtool.store.admin import init_store
    from symtool.store.layout import lookup
    from symtool.store.repair import verify_store

    store = tmp_path / "s"
    init_store(store, two_tier=True)
    rep = publish(str(store), [fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"], PublishOptions())
    assert (store / "du" / "dummyprog.pdb" / "F6301B4562FE4B4DB691192733ECE6B71" / "dummyprog.pdb").is_file()
    assert lookup(store, "dummyprog.pdb", "F6301B4562FE4B4DB691192733ECE6B71") is not None
    assert not verify_store(store).unresolved
    from symtool.store.manage import delete_transactions

    delete_transactions(store, [rep.transaction])
    assert not (store / "du").exists()
    assert not verify_store(store).unresolved


def test_dry_run_writes_nothing(tmp_path, fixtures_dir):
    store = tmp_path / "s"
    rep = publish(str(store), [fixtures_dir / "pe-pdb" / "crash.pdb"], PublishOptions(dry_run=True))
    assert [f.status for f in rep.files] == ["would-add"]
    assert not store.exists()


def test_same_key_other_bytes_refused_unless_force(tmp_path, fixtures_dir):
    store = tmp_path / "s"
    publish(str(store), [fixtures_dir / "pe-pdb" / "crash.pdb"], PublishOptions())
    other = tmp_path / "x" / "crash.pdb"
    other.parent.mkdir()
    other.write_bytes((fixtures_dir / "pe-pdb" / "crash_with_srcsrv.pdb").read_bytes())
    stored = store / "crash.pdb" / "3249D99D0C4049318610F4E4FB0B69361" / "crash.pdb"
    committed = stored.read_bytes()
    rep = publish(str(store), [other], PublishOptions())
    assert rep.files[0].status == "refused" and "--force" in rep.files[0].reason
    assert stored.read_bytes() == committed
    rep = publish(str(store), [other], PublishOptions(force=True))
    assert rep.files[0].status == "added"
    assert stored.read_bytes() == other.read_bytes()
    lines = adm.read_lines(stored.parent / "refs.ptr")
    assert [ln[:10] for ln in lines] == ["0000000001", "0000000002"]


def test_existing_name_dir_case_reused(tmp_path, fixtures_dir):
    store = tmp_path / "s"
    publish(str(store), [fixtures_dir / "pe-pdb" / "crash.pdb"], PublishOptions())
    upper = tmp_path / "u" / "CRASH.PDB"
    upper.parent.mkdir()
    upper.write_bytes((fixtures_dir / "pe-pdb" / "crash.pdb").read_bytes())
    rep = publish(str(store), [upper], PublishOptions())
    assert rep.files[0].status == "present"
    assert sorted(p.name for p in store.iterdir()) == ["000Admin", "crash.pdb", "pingme.txt"]


def test_publish_local_needs_valid_fields(tmp_path, fixtures_dir):
    item = identify(fixtures_dir / "pe-pdb" / "crash.pdb")
    with pytest.raises(FormatError):
        publish_local(tmp_path / "s", [item], PublishOptions(product='a"b'))
