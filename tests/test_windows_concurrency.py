"""The store's concurrency and crash safety as Windows' CPython would run it (issue 21, "Must show").

Under the personality every process here refuses to replace or unlink a file that any of them has
open (tests/windows_personality.py, ``$SYMTOOL_TEST_OPEN_FILES``): readers holding store files,
publishers polling the lock file.  Eight publishers still each get their transactions, with
consecutive ids and a store that verifies clean; publishers killed (SIGKILL) at random points
leave a store that ``store verify --repair`` makes whole, without dropping a committed transaction.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from store_helpers import assert_keeps_committed, pdb_variant, publish_then_sigkill
from symtool.store import admin as adm
from symtool.store.lock import LOCK_NAME

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
SITE = TESTS / "personality_site"
PUBLISHERS, EACH = 8, 5


def _publisher(store: str, registry: str, semantics: str, shared: str, own: list[str], out) -> None:
    import windows_personality

    os.environ[windows_personality.OPEN_FILES_ENV] = registry
    windows_personality.activate(semantics)
    windows_personality.register_open_files(registry)
    from symtool.store.publish import PublishOptions, publish

    ids = []
    for p in own:
        ids.append(publish(store, [Path(shared), Path(p)], PublishOptions(product="w")).transaction)
    out.put(ids)


def _reader(store: str, registry: str, semantics: str, stop) -> None:
    """Opens store files (admin records, refs.ptr, stored PDBs) and holds each a moment, as a symbol
    server, a debugger or an antivirus scanner does."""
    import windows_personality

    os.environ[windows_personality.OPEN_FILES_ENV] = registry
    windows_personality.activate(semantics)
    windows_personality.register_open_files(registry)
    rng = random.Random(os.getpid())
    while not stop.is_set():
        files = [p for p in Path(store).rglob("*") if p.is_file() and not p.name.startswith(".symtool-tmp-")]
        if not files:
            time.sleep(0.01)
            continue
        for path in rng.sample(files, min(len(files), 5)):
            try:
                with open(path, "rb"):
                    time.sleep(rng.uniform(0.005, 0.03))
            except OSError:
                pass


def test_eight_publishers_while_readers_hold_files_open(tmp_path, fixtures_dir):
    src = fixtures_dir / "symstore-exe" / "inputs" / "dummylib.pdb"
    shared = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"
    files = tmp_path / "files"
    files.mkdir()
    own = [[str(pdb_variant(src, files / f"v{w}_{i}.pdb", w * EACH + i)) for i in range(EACH)]
           for w in range(PUBLISHERS)]
    store, registry = tmp_path / "store", str(tmp_path / "open-files")
    ctx = mp.get_context("fork")
    stop, q = ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(str(store), registry, s, stop)) for s in ("3.11", "3.12")]
    publishers = [ctx.Process(target=_publisher, args=(str(store), registry, ("3.11", "3.12")[w % 2], str(shared),
                                                       own[w], q)) for w in range(PUBLISHERS)]
    for p in readers + publishers:
        p.start()
    try:
        ids = []
        for _ in publishers:
            ids.extend(q.get(timeout=300))
    finally:
        stop.set()
        for p in publishers + readers:
            p.join(60)
    assert [p.exitcode for p in publishers + readers] == [0] * (PUBLISHERS + 2)
    total = PUBLISHERS * EACH
    assert sorted(ids) == [adm.format_id(i) for i in range(1, total + 1)]
    admin = adm.Admin(store)
    assert admin.read_lastid() == total and sorted(admin.live()) == sorted(ids)
    refs = adm.read_lines(store / "dummyprog.pdb" / "F6301B4562FE4B4DB691192733ECE6B71" / "refs.ptr")
    assert sorted(r[:10] for r in refs) == sorted(ids)
    assert not (store / "000Admin" / LOCK_NAME).exists()
    verify = subprocess.run([sys.executable, "-m", "symtool", "store", "verify", "--store", str(store)],
                            env=personality_env("3.12", registry), capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def personality_env(semantics: str, registry: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMTOOL_")}
    env.update(WINDOWS_PERSONALITY=semantics, SYMTOOL_TEST_OPEN_FILES=registry,
               PYTHONPATH=os.pathsep.join([str(SITE), str(ROOT)]))
    return env


def test_sigkill_at_random_points_then_verify_repair(tmp_path, fixtures_dir):
    src = fixtures_dir / "pe-pdb" / "crash.pdb"
    files = tmp_path / "files"
    files.mkdir()
    variants = [pdb_variant(src, files / f"k{i}.pdb", i) for i in range(10)]
    store, registry = tmp_path / "store", str(tmp_path / "open-files")
    rng = random.Random(2126)
    committed: set[str] = set()
    for round_ in range(6):
        env = personality_env(("3.11", "3.12")[round_ % 2], registry)
        committed |= publish_then_sigkill(store, rng.sample(variants, 3), env, rng, "--product", "k")
    env = personality_env("3.12", registry)
    again = subprocess.run([sys.executable, "-m", "symtool", "publish", str(variants[0]), "--store", str(store)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr  # a dead publisher's lock is broken, its leftovers ignored
    repair = subprocess.run([sys.executable, "-m", "symtool", "store", "verify", "--repair", "--store", str(store)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert repair.returncode in (0, 1), repair.stdout + repair.stderr
    assert "Traceback" not in repair.stderr
    check = subprocess.run([sys.executable, "-m", "symtool", "store", "verify", "--store", str(store)],
                           env=personality_env("3.11", registry), capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert_keeps_committed(store, committed)
    assert not any(p.name.startswith(".symtool-tmp-") for p in store.rglob("*"))
