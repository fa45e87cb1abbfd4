"""Concurrency, crashes and hostile stores: several publishers, SIGKILL at random
points, verify --repair, delete that never leaves the store."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store_helpers import assert_keeps_committed, pdb_variant, publish_then_sigkill
from symtool.store import admin as adm
from symtool.store.lock import LOCK_NAME, StoreLock
from symtool.store.manage import delete_transactions
from symtool.store.publish import PublishOptions, publish
from symtool.store.repair import verify_store

ROOT = Path(__file__).resolve().parent.parent


def _worker(store: str, shared_pdb: str, own: list[str], out) -> None:
    ids = []
    for p in own:
        rep = publish(store, [Path(shared_pdb), Path(p)], PublishOptions(product="w"))
        ids.append(rep.transaction)
    out.put(ids)


def test_eight_publishers_fifty_each(tmp_path, fixtures_dir):
    src = fixtures_dir / "symstore-exe" / "inputs" / "dummylib.pdb"
    common = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"
    files = tmp_path / "files"
    files.mkdir()
    per_worker = []
    for w in range(8):
        per_worker.append([str(pdb_variant(src, files / f"v{w}_{i}.pdb", w * 50 + i)) for i in range(50)])
    store = tmp_path / "store"
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(store), str(common), per_worker[w], q)) for w in range(8)]
    for p in procs:
        p.start()
    ids = []
    for _ in procs:
        ids.extend(q.get(timeout=300))
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(ids) == 400 and len(set(ids)) == 400
    assert sorted(ids) == [adm.format_id(i) for i in range(1, 401)]
    a = adm.Admin(store)
    assert a.read_lastid() == 400
    assert sorted(a.live()) == sorted(ids)
    assert len(a.history_lines()) == 400
    refs = adm.read_lines(store / "dummyprog.pdb" / "F6301B4562FE4B4DB691192733ECE6B71" / "refs.ptr")
    assert sorted(r[:10] for r in refs) == sorted(ids)
    assert all(adm.parse_ref_line(r) is not None for r in refs)
    report = verify_store(store)
    assert not report.findings, report.to_json()
    assert not (store / "000Admin" / LOCK_NAME).exists()


def test_sigkill_during_publish_then_repair(tmp_path, fixtures_dir):
    src = fixtures_dir / "pe-pdb" / "crash.pdb"
    files = tmp_path / "files"
    files.mkdir()
    # Enough bytes that kills land in the copy phase as well as in the locked section.
    big = files / "big.pdb"
    data = bytearray(src.read_bytes())
    big.write_bytes(data)
    variants = [pdb_variant(src, files / f"k{i}.pdb", i) for i in range(12)]
    store = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = random.Random(1234)
    committed_before: set[str] = set()
    for round_ in range(14):
        committed_before |= publish_then_sigkill(store, rng.sample(variants, 4), env, rng, "--product", "k")
    # A normal publish still works on the battered store (stale lock of a dead pid is broken).
    rep = publish(str(store), [variants[0]], PublishOptions())
    assert rep.transaction is not None
    first = verify_store(store, repair=True)
    assert not first.unresolved, first.to_json()
    second = verify_store(store)
    assert not second.findings, second.to_json()
    assert_keeps_committed(store, committed_before)


def test_repair_rolls_back_uncommitted_and_removes_temp(tmp_path, fixtures_dir):
    store = tmp_path / "s"
    pdb = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"
    publish(str(store), [pdb], PublishOptions())
    # Simulate a publisher killed after its transaction file and refs line, before server.txt.
    idx = store / "dummyprog.pdb" / "F6301B4562FE4B4DB691192733ECE6B71"
    # Transaction 1's line, in the format symstore.exe writes (id, file, "source", kind, , compressed, ,).
    committed_refs = f'0000000001,file,"{pdb}",pri,,N,,'.encode()
    assert (idx / "refs.ptr").read_bytes() == committed_refs
    (store / "000Admin" / "0000000002").write_bytes(
        adm.txn_file_bytes([adm.TxnEntry("dummyprog.pdb", "F6301B4562FE4B4DB691192733ECE6B71", "/x")]))
    adm.add_ref(idx, adm.format_ref_line("0000000002", "file", "/x", "pri", False))
    # ...and one killed while copying a new file (dead pid in the temp name).
    (idx.parent.parent / "other.pdb" / "ABCDEF0123456789ABCDEF01234567891").mkdir(parents=True)
    tmp = idx.parent.parent / "other.pdb" / "ABCDEF0123456789ABCDEF01234567891" / ".symtool-tmp-nohost-1-abc"
    tmp.write_bytes(b"partial")
    os.utime(tmp, (time.time() - 10_000, time.time() - 10_000))
    kinds = {f.kind for f in verify_store(store).findings}
    assert {"uncommitted", "refs-dead", "temp-file"} <= kinds
    verify_store(store, repair=True)
    assert not verify_store(store).findings
    assert (idx / "refs.ptr").read_bytes() == committed_refs
    assert not (store / "other.pdb").exists()
    # The next publish takes id 2 again (it was never handed out).
    assert publish(str(store), [pdb], PublishOptions()).transaction == "0000000002"


def test_repair_completes_committed_transaction(tmp_path, fixtures_dir):
    store = tmp_path / "s"
    pdb = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"
    publish(str(store), [pdb], PublishOptions())
    publish(str(store), [pdb], PublishOptions())
    # Killed after server.txt, before history.txt and lastid.txt.
    hist = store / "000Admin" / "history.txt"
    hist.write_bytes(b"\r\n".join(hist.read_bytes().split(b"\r\n")[:1]))
    (store / "000Admin" / "lastid.txt").write_bytes(b"0000000001")
    kinds = {f.kind for f in verify_store(store).findings}
    assert kinds == {"history-missing", "lastid"}
    verify_store(store, repair=True)
    assert not verify_store(store).findings
    assert adm.Admin(store).read_lastid() == 2


def test_stale_lock_of_dead_process_is_broken(tmp_path):
    store = tmp_path / "s"
    (store / "000Admin").mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    from symtool.store.lock import host_name

    (store / "000Admin" / LOCK_NAME).write_text(f"{proc.pid} {host_name()} {time.time()} deadbeef\n")
    with StoreLock(store, timeout=5) as lock:
        assert lock.broke_stale
    assert not (store / "000Admin" / LOCK_NAME).exists()


def test_live_lock_blocks_until_timeout(tmp_path):
    store = tmp_path / "s"
    (store / "000Admin").mkdir(parents=True)
    with StoreLock(store):
        from symtool.errors import StoreError

        with pytest.raises(StoreError, match="locked"):
            StoreLock(store, timeout=0.3).acquire()


def test_lock_of_other_host_stale_by_age(tmp_path, monkeypatch):
    store = tmp_path / "s"
    (store / "000Admin").mkdir(parents=True)
    lock = store / "000Admin" / LOCK_NAME
    lock.write_text(f"4242 some-other-host {time.time()} cafe\n")
    from symtool.errors import StoreError

    with pytest.raises(StoreError, match=r"store is locked by another publisher \(.*some-other-host.*\); gave up"):
        StoreLock(store, timeout=0.3).acquire()  # fresh: the other host may be alive
    os.utime(lock, (time.time() - 1000, time.time() - 1000))
    with StoreLock(store, timeout=5) as lk:
        assert lk.broke_stale


def test_hostile_transaction_file_cannot_delete_outside(tmp_path, fixtures_dir):
    store = tmp_path / "store"
    outside = tmp_path / "victim"
    outside.mkdir()
    (outside / "C9A61DDDD7E44353A668E39AC614A7EAa").write_bytes(b"keep me")
    victim_idx = outside / "precious.pdb" / "C9A61DDDD7E44353A668E39AC614A7EAa"
    victim_idx.mkdir(parents=True)
    (victim_idx / "precious.pdb").write_bytes(b"keep me too")
    rep = publish(str(store), [fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"], PublishOptions())
    # Someone edits the transaction file to point at things outside the store...
    hostile = [
        '"..\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
        '"../victim/precious.pdb\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
        f'"{outside}/precious.pdb\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
        '"C:\\Windows\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
        '"\\\\server\\share\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
        '"precious.pdb\\..\\..\\victim","x"',
        '"CON\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
        '"linked.pdb\\C9A61DDDD7E44353A668E39AC614A7EAa","x"',
    ]
    txn = store / "000Admin" / rep.transaction
    txn.write_bytes(txn.read_bytes() + ("\r\n".join(hostile) + "\r\n").encode())
    # ...and plants a symlink in the store leading out of it.
    (store / "linked.pdb").symlink_to(outside / "precious.pdb")
    report = delete_transactions(store, [rep.transaction])
    assert (outside / "precious.pdb" / "C9A61DDDD7E44353A668E39AC614A7EAa" / "precious.pdb").read_bytes() == b"keep me too"
    assert (outside / "C9A61DDDD7E44353A668E39AC614A7EAa").read_bytes() == b"keep me"
    assert report.problems  # the hostile lines were reported, not followed
    assert not (store / "dummyprog.pdb").exists()


def test_delete_keeps_files_other_transactions_reference(tmp_path, fixtures_dir):
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    store = tmp_path / "s"
    t1 = publish(str(store), [inputs / "bigage.pdb", inputs / "dummyprog.pdb"], PublishOptions(product="a")).transaction
    t2 = publish(str(store), [inputs / "dummyprog.pdb"], PublishOptions(product="b")).transaction
    report = delete_transactions(store, [t1])
    assert not (store / "bigage.pdb").exists()
    idx = store / "dummyprog.pdb" / "F6301B4562FE4B4DB691192733ECE6B71"
    assert (idx / "dummyprog.pdb").is_file()
    assert [ln[:10] for ln in adm.read_lines(idx / "refs.ptr")] == [t2]
    a = adm.Admin(store)
    assert (a.dir / f"{t1}.deleted").is_file() and not (a.dir / t1).exists()
    assert list(a.live()) == [t2]
    assert a.history_lines()[-1] == f"0000000003,del,{t1}"
    assert a.read_lastid() == 3
    assert report.removed == ["bigage.pdb/C9A61DDDD7E44353A668E39AC614A7EAa/bigage.pdb"]
    assert report.kept == ["dummyprog.pdb/F6301B4562FE4B4DB691192733ECE6B71/dummyprog.pdb"]
    assert not verify_store(store).findings
    delete_transactions(store, [t2])
    assert not (store / "dummyprog.pdb").exists()
    assert not verify_store(store).findings
    from symtool.errors import NotFoundError

    with pytest.raises(NotFoundError):
        delete_transactions(store, [t2])


def test_prune_keep_last(tmp_path, fixtures_dir):
    from symtool.store.manage import prune

    store = tmp_path / "s"
    pdb = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"
    for _ in range(5):
        publish(str(store), [pdb], PublishOptions())
    rep = prune(store, keep_last=2)
    assert rep.deleted == ["0000000001", "0000000002", "0000000003"]
    assert sorted(adm.Admin(store).live()) == ["0000000004", "0000000005"]
    assert (store / "dummyprog.pdb" / "F6301B4562FE4B4DB691192733ECE6B71" / "dummyprog.pdb").is_file()
    assert not verify_store(store).findings
    assert prune(store, older_than_days=0).deleted == ["0000000004", "0000000005"]
    assert not (store / "dummyprog.pdb").exists()


def test_repair_reports_dead_refs_lines_as_repaired(tmp_path, fixtures_dir):
    """A refs.ptr line naming a transaction that is not live (a killed publish, a hand edit) is
    dropped by --repair, and the report says so: a repaired store is not left 'unresolved'."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(fixtures_dir / "symstore-exe" / "stores" / "pe_store", store)
    refs = store / "bigage.pdb" / "C9A61DDDD7E44353A668E39AC614A7EAa" / "refs.ptr"
    original = refs.read_bytes()
    kept_lines = adm.read_lines(refs)
    dead_line = adm.format_ref_line("0000000099", "file", "C:\\gone\\bigage.pdb", "pri", False)
    refs.write_bytes(original + b"\r\n" + dead_line.encode() + b"\r\n")
    report = verify_store(store, repair=True)
    dead = [f for f in report.findings if f.kind == "refs-dead"]
    assert len(dead) == 1 and dead[0].repaired and "0000000099" in dead[0].message
    assert report.unresolved == []
    assert adm.read_lines(refs) == kept_lines
    assert verify_store(store).findings == []


def test_init_store_loses_the_mkdir_race_quietly(tmp_path, monkeypatch):
    """Two publishers creating one new store: the one whose mkdir comes second (the directory
    appeared between its check and its mkdir) finds the store made and goes on."""
    import pathlib

    from symtool.store.admin import ADMIN_DIR, init_store

    store = tmp_path / "new" / "store"
    (store / ADMIN_DIR).mkdir(parents=True)  # made by the other publisher after our existence checks
    real_exists, real_is_dir = pathlib.Path.exists, pathlib.Path.is_dir
    monkeypatch.setattr(pathlib.Path, "exists", lambda p, *a, **k: False if p == store else real_exists(p, *a, **k))
    monkeypatch.setattr(pathlib.Path, "is_dir",
                        lambda p, *a, **k: False if p == store / ADMIN_DIR else real_is_dir(p, *a, **k))
    init_store(store)
    assert os.path.isdir(store / ADMIN_DIR)
