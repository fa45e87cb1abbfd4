"""publish's durability order, watched at the system calls (the kernel's inode numbers are the oracle).

Every stored file is fsynced, complete, before it takes its final name, and every refs.ptr before
the commit point (the server.txt line); every directory the publish changed (a new key's levels, the
store's top level, each directory a file was created or renamed in, 000Admin) is fsynced after its
last change and before the commit point.
Both ways a file is placed are covered: keys new to the store (their directories made level by
level) and a key whose name directory exists already (found case-insensitively).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

from store_helpers import pdb_variant
from symtool.store import admin as adm
from symtool.store.publish import PublishOptions, publish
from symtool.store.repair import verify_store


def _record_io(monkeypatch) -> list[tuple]:
    """Patch fsync, rename, mkdir, file creation and the commit point to log (event, ...) in call order."""
    events: list[tuple] = []
    guard = threading.Lock()
    real_fsync, real_replace, real_rename, real_mkdir, real_open = os.fsync, os.replace, os.rename, os.mkdir, os.open
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

    def open_(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if flags & os.O_CREAT:
            log("create", os.fspath(path))
        return fd

    def append_server(self, line):
        log("commit")
        return real_append_server(self, line)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", moved(real_replace))
    monkeypatch.setattr(os, "rename", moved(real_rename))
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
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
    earlier_refs = set(store.glob("*/*/refs.ptr"))
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
        elif ev[0] == "create":
            changed[str(Path(ev[1]).parent)] = pos
        elif ev[0] == "rename":
            dst = Path(ev[2])
            changed[str(dst.parent)] = pos
            if dst.is_relative_to(store) and dst.parent.name != adm.ADMIN_DIR:
                stored.append((pos, ev[1], dst))
    # Each of the 7 files: the complete bytes fsynced before the rename.
    assert sorted(dst.name.lower() for *_, dst in stored) == sorted(f.name.lower() for f in files)
    for pos, inode, dst in stored:
        size = os.stat(dst).st_size
        assert any(p < pos and s == size for p, s in fsynced.get(inode, [])), f"{dst} renamed before its fsync"
    # Each refs.ptr (new ones are made in place, under the lock): its complete bytes fsynced before the commit.
    refs = sorted(set(store.glob("*/*/refs.ptr")) - earlier_refs)
    assert len(refs) == 7
    for ref in refs:
        size = os.stat(ref).st_size
        assert any(p < commit and s == size for p, s in fsynced.get(_inode(ref), [])), f"{ref} not fsynced"
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


KILL_IN_NEW_REFS = r"""
import os, signal, sys
from pathlib import Path
from symtool import fsutil
from symtool.store.publish import PublishOptions, publish

def torn(path, data):  # a SIGKILL half-way through writing a new refs.ptr
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.write(fd, data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)

fsutil.write_new_file = torn
publish(sys.argv[1], [Path(p) for p in sys.argv[2:]], PublishOptions())
"""


def test_new_refs_ptr_torn_by_a_crash_is_rolled_back_by_repair(tmp_path, fixtures_dir):
    # A missing refs.ptr is made in place (not temp + rename): a crash while writing it leaves
    # half a line of a transaction that never committed, which repair drops with the rest of it.
    src = fixtures_dir / "symstore-exe" / "inputs" / "dummylib.pdb"
    store = tmp_path / "store"
    kept = pdb_variant(src, tmp_path / "kept.pdb", 0)
    assert publish(str(store), [kept], PublishOptions()).transaction == "0000000001"
    lost = pdb_variant(src, tmp_path / "lost.pdb", 1)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run([sys.executable, "-c", KILL_IN_NEW_REFS, str(store), str(lost)], env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    torn = list(store.glob("lost.pdb/*/refs.ptr"))
    assert len(torn) == 1 and 0 < torn[0].stat().st_size
    assert adm.parse_ref_line(torn[0].read_bytes().decode("latin-1")) is None  # half a line never parses
    repaired = verify_store(store, repair=True)
    assert not repaired.unresolved, repaired.to_json()
    assert not (store / "lost.pdb").exists()
    assert sorted(adm.Admin(store).live()) == ["0000000001"]
    assert (store / "kept.pdb").is_dir()
    again = verify_store(store)
    assert not again.findings, again.to_json()
