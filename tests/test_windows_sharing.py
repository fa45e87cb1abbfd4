"""Open files on Windows: a file another handle holds cannot be replaced or unlinked (issue 21, item 3).

Under the Windows personality (tests/windows_personality.py) a replace,
rename or unlink of an open file fails with WinError 32, as Windows' does for
a handle without FILE_SHARE_DELETE.  The platform layer retries those for a
bounded time, so a short reader (a publisher polling the lock, ``fetch``
copying a file, an antivirus scan) delays a writer and never fails it, and
one that holds on for good ends the wait with the OS's error.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from symtool import platform
from windows_personality import windows  # noqa: F401 (fixture)
from windows_personality import windows_personality

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PE_PDB = FIXTURES / "pe-pdb"


def hold_open(path: Path, seconds: float) -> threading.Thread:
    """A reader that opens ``path`` now and closes it after ``seconds``."""
    f = open(path, "rb")

    def close_later():
        time.sleep(seconds)
        f.close()

    t = threading.Thread(target=close_later)
    t.start()
    return t


def test_the_personality_refuses_to_replace_or_unlink_an_open_file(windows, tmp_path, monkeypatch):
    monkeypatch.setattr(platform, "SHARING_RETRY_SECONDS", 0.0)
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"new")
    b.write_bytes(b"old")
    with open(b, "rb"):
        for call in (lambda: os.replace(a, b), lambda: os.unlink(b), lambda: platform.replace(a, b),
                     lambda: platform.unlink(b)):
            with pytest.raises(PermissionError) as refused:
                call()
            assert refused.value.winerror == 32
    with open(a, "rb"):  # the source of a rename too
        with pytest.raises(PermissionError):
            platform.replace(a, b)
    platform.replace(a, b)  # nobody holds either now
    assert b.read_bytes() == b"new"


def test_replace_and_unlink_wait_for_a_short_reader(windows, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"new")
    b.write_bytes(b"old")
    reader = hold_open(b, 0.3)
    platform.replace(a, b)  # without retries: WinError 32 at once
    reader.join()
    assert b.read_bytes() == b"new"
    reader = hold_open(b, 0.3)
    platform.unlink(b)
    reader.join()
    assert not b.exists()


def test_a_file_held_for_good_ends_the_wait_with_the_error(windows, tmp_path, monkeypatch):
    monkeypatch.setattr(platform, "SHARING_RETRY_SECONDS", 0.3)
    b = tmp_path / "b"
    b.write_bytes(b"old")
    with open(b, "rb"):
        started = time.monotonic()
        with pytest.raises(PermissionError):
            platform.unlink(b)
        assert time.monotonic() - started >= 0.3  # it did wait (no upper bound: the machine may be busy)
    assert b.exists()


def test_publish_waits_for_a_reader_of_the_store_admin_files(windows, tmp_path, monkeypatch):
    """A reader holding server.txt (the file publish replaces via lastid/refs writes) while publishing."""
    from symtool.cli import app
    from typer.testing import CliRunner

    store = tmp_path / "store"
    runner = CliRunner()
    first = runner.invoke(app, ["publish", str(PE_PDB / "crash.exe"), str(PE_PDB / "crash.pdb"), "--store", str(store)],
                          env={"SYMTOOL_STORE": "", "NO_COLOR": "1"})
    assert first.exit_code == 0, first.output
    held = [p for p in store.rglob("*") if p.is_file() and p.name in ("lastid.txt", "refs.ptr")]
    assert held
    readers = [hold_open(p, 0.3) for p in held]
    second = runner.invoke(app, ["publish", str(PE_PDB), "--store", str(store)], env={"SYMTOOL_STORE": "", "NO_COLOR": "1"})
    for r in readers:
        r.join()
    assert second.exit_code == 0, second.output
    assert "already present 2" in second.output


def test_a_pdb_rewritten_by_copy_is_closed_before_it_is_replaced(tmp_path, monkeypatch):
    """msf_write's copy mode read the PDB through a handle it still held at the rename: on Windows that
    rename can never succeed (the handle is its own), so it failed after the whole retry budget."""
    from symtool.formats.msf_write import write_named_streams

    pdb = tmp_path / "crash.pdb"
    shutil.copyfile(PE_PDB / "crash.pdb", pdb)
    windows_personality(monkeypatch)
    monkeypatch.setattr(platform, "SHARING_RETRY_SECONDS", 0.0)
    report = write_named_streams(pdb, {"srcsrv": b"SRCSRV: ini ------\r\n"}, in_place=False)
    assert report.mode == "copy"
    assert b"SRCSRV: ini" in pdb.read_bytes()


def test_the_native_personality_never_waits(tmp_path, monkeypatch):
    """POSIX replaces and unlinks open files: no retry path at all (the personality is off here)."""
    assert platform.personality() == "posix"
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"new")
    b.write_bytes(b"old")
    with open(b, "rb"):
        platform.replace(a, b)
        platform.unlink(b)
