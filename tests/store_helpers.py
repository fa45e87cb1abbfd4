"""Helpers for the store/publish tests: PDB variants with new GUIDs, tree comparison."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from symtool.formats.pdb import read_pdb

SRC_IN_TXN = re.compile(rb'^("[^"]*"),"[^"]*"', re.M)
SRC_IN_REFS = re.compile(rb'^(\d{10},(?:file|ptr)),"[^"]*"', re.M)
WHEN = re.compile(rb"\d\d/\d\d/\d\d\d\d,\d\d:\d\d:\d\d")


def pdb_variant(src: Path, dst: Path, n: int) -> Path:
    """A copy of ``src`` whose GUID is replaced (a valid PDB with a new identity)."""
    data = bytearray(src.read_bytes())
    old = read_pdb(src).debug_id.guid.bytes_le
    new = uuid.UUID(int=(uuid.UUID(bytes_le=old).int ^ (n + 1) << 16)).bytes_le
    count = data.count(old)
    assert count >= 1
    dst.write_bytes(bytes(data).replace(old, new))
    assert read_pdb(dst).debug_id.guid.bytes_le == new
    return dst


def normalized(path: Path) -> bytes:
    """Admin/refs bytes with date, time and source paths blanked (CRLFs kept)."""
    data = path.read_bytes()
    data = WHEN.sub(b"DATE,TIME", data)
    data = SRC_IN_TXN.sub(rb'\1,"SRC"', data)
    data = SRC_IN_REFS.sub(rb'\1,"SRC"', data)
    return data


def tree(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def is_record(rel: str) -> bool:
    return rel.startswith("000Admin/") or rel.endswith("/refs.ptr") or rel == "pingme.txt"


def assert_matches_symstore_exe(ours: Path, theirs: Path) -> None:
    """Our store's tree equals symstore.exe's: same files, records equal apart from dates,
    times and source paths (:func:`normalized`), every other file byte for byte."""
    a, b = tree(theirs), tree(ours)
    assert sorted(a) == sorted(b)
    for rel in a:
        if is_record(rel):
            assert normalized(a[rel]) == normalized(b[rel]), rel
        else:
            assert a[rel].read_bytes() == b[rel].read_bytes(), rel


def assert_keeps_committed(store: Path, committed: set[str]) -> None:
    """After a repair: every transaction committed before is still live, and each live one's files are there."""
    from symtool.store import admin as adm

    live = set(adm.Admin(store).live())
    assert committed <= live  # repair never drops a committed transaction
    for tid in live:
        entries, problems = adm.read_txn_file(store / "000Admin" / tid)
        assert not problems
        for e in entries:
            assert (store / e.name / e.index / e.name).is_file()


def publish_then_sigkill(store: Path, files, env: dict, rng, *extra: str) -> set[str]:
    """``symtool publish FILES --store STORE`` in a child, SIGKILLed 0.2-1.2 s in (copying, or in the
    locked section, or done); the transactions live afterwards."""
    import signal
    import subprocess
    import sys
    import time

    from symtool.store import admin as adm

    cmd = [sys.executable, "-m", "symtool", "publish", *map(str, files), "--store", str(store), *extra]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.2, 1.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return set(adm.Admin(store).live()) if (store / "000Admin").is_dir() else set()
