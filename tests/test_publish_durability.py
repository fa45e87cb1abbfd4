"""publish's durability order, watched at the system calls (the kernel's inode numbers are the oracle).

Every stored file and refs.ptr is fsynced, complete, before it takes its final name; every directory
the publish changed (a new key's levels, the store's top level, each directory a file was renamed
into, 000Admin) is fsynced after its last change and before the commit point (the server.txt line).
Both ways a file is placed are covered: keys new to the store (their directories made level by
level) and a key whose name directory exists already (found case-insensitively).
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from store_helpers import pdb_variant
from symtool.store import admin as adm
from symtool.store.publish import PublishOptions, publish
from symtool.store.repair import verify_store


def _record_io(monkeypatch) -> list[tuple]:
    """Patch fsync, rename, mkdir and the commit point to log (event, inode, ...) in call order."""
    events: list[tuple] = []
    guard = threading.Lock()
    real_fsync, real_replace, real_rename, real_mkdir = os.fsync, os.replace, os.rename, os.mkdir
    real_append_server = adm.Admin.append_server

    def log(*event) -> None:
        with guard:
            events.append(event)

    def fsync(fd):
        st = os.fstat(fd)
        real_fsync(fd)
        log("fsync", (st.st_dev, st.st_ino), st.st_size, stat.S_ISDIR(st.st_mode))

    def moved(real):
        def move(src, dst, **kwargs):
            st = os.lstat(src)
            real(src, dst, **kwargs)
            log("rename", (st.st_dev, st.st_ino), str(dst))
        return move

    def mkdir(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        log("mkdir", str(path))

    def append_server(self, line):
        log("commit")
        return real_append_server(self, line)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", moved(real_replace))
    monkeypatch.setattr(os, "rename", moved(real_rename))
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(adm.Admin, "append_server", append_server)
    return events


def _inode(path: str | Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_files_fsynced_before_their_names_and_directories_before_the_commit(tmp_path, fixtures_dir, monkeypatch):
    src = fixtures_dir / "symstore-exe" / "inputs" / "dummylib.pdb"
    store = tmp_path / "store"
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    # A key whose name directory exists (under another case): the general path places it.
    first = publish(str(store), [pdb_variant(src, earlier / "Shared.pdb", 0)], PublishOptions())
    assert first.transaction == "0000000001"
    inputs = tmp_path / "in"
    inputs.mkdir()
    files = [pdb_variant(src, inputs / f"new{i}.pdb", 10 + i) for i in range(6)]
    files.append(pdb_variant(src, inputs / "shared.pdb", 1))
    events = _record_io(monkeypatch)

    report = publish(str(store), files, PublishOptions(product="p"))

    assert report.transaction == "0000000002"
    assert sorted(f.status for f in report.files) == ["added"] * 7
    commit = events.index(("commit",))
    fsynced: dict[tuple[int, int], list[tuple[int, int]]] = {}  # inode -> [(event position, size)]
    for pos, ev in enumerate(events):
        if ev[0] == "fsync":
            fsynced.setdefault(ev[1], []).append((pos, ev[2]))
    changed: dict[str, int] = {}  # directory -> position of its last change before the commit
    stored = []
    for pos, ev in enumerate(events[:commit]):
        if ev[0] == "mkdir":
            changed[str(Path(ev[1]).parent)] = pos
            changed.setdefault(ev[1], pos)
        elif ev[0] == "rename":
            dst = Path(ev[2])
            changed[str(dst.parent)] = pos
            if dst.is_relative_to(store) and dst.parent.name != adm.ADMIN_DIR:
                stored.append((pos, ev[1], dst))
    # Each of the 7 files and its refs.ptr: the complete bytes fsynced before the rename.
    assert sorted(dst.name.lower() for *_, dst in stored) == sorted(["refs.ptr"] * 7 + [f.name.lower() for f in files])
    for pos, inode, dst in stored:
        size = os.stat(dst).st_size
        assert any(p < pos and s == size for p, s in fsynced.get(inode, [])), f"{dst} renamed before its fsync"
    # Each changed directory fsynced after its last change, before the commit point.
    assert str(store) in changed and str(store / adm.ADMIN_DIR) in changed
    assert str(store / "new0.pdb") in changed  # a new key's name level
    for d, last in changed.items():
        syncs = [p for p, _size in fsynced.get(_inode(d), [])]
        assert any(last < p < commit for p in syncs), f"{d} not fsynced between its last change and the commit"
    # And the store is whole: the existing name directory was reused, nothing is left over.
    assert sorted(p.name for p in store.iterdir() if p.name.lower() == "shared.pdb") == ["Shared.pdb"]
    check = verify_store(store)
    assert not check.findings, check.to_json()
