"""Links on Windows (issue 21, item 7): no symlink privilege without Developer Mode (WinError 1314),
no hard links on SMB shares (WinError 1 and 50, which CPython maps to EINVAL, not PermissionError).

Under the personality with ``links=False`` both fail as there.  The store then
falls back: a create-if-absent without link() renames after a check, the
local object backend serialises on its directory lock, and publish goes
without the debuginfod view -- and never fails after its commit point.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from symtool import platform
from symtool.cli import app
from windows_personality import windows_personality

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ELF = FIXTURES / "elf-macho" / "crash-me.dwarf4"
ENV = {"SYMTOOL_STORE": "", "NO_COLOR": "1"}


@pytest.fixture(params=["3.12", "3.11"], ids=lambda s: f"windows-py{s}-nolinks")
def no_links(request, monkeypatch):
    windows_personality(monkeypatch, request.param, links=False)
    return request.param


def test_link_errors_are_typed(no_links, tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"x")
    with pytest.raises(platform.LinksUnsupported) as hard:
        platform.link(src, tmp_path / "hard")
    assert hard.value.winerror == 50 and not isinstance(hard.value, PermissionError)
    with pytest.raises(platform.LinksUnsupported) as soft:
        platform.symlink("src", tmp_path / "soft")
    assert soft.value.winerror == 1314


def test_a_create_if_absent_write_falls_back_to_a_rename(no_links, tmp_path):
    from symtool.fsutil import atomic_writer

    dest = tmp_path / "entry"
    with atomic_writer(dest, "wb", replace=False) as f:
        f.write(b"first")
    with pytest.raises(FileExistsError):
        with atomic_writer(dest, "wb", replace=False) as f:
            f.write(b"second")
    assert dest.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]  # no temp file left


def test_the_local_object_backend_creates_if_absent_without_hard_links(no_links, tmp_path):
    from symtool.store.backends.local import LocalBackend

    backend = LocalBackend(tmp_path / "objects")
    assert backend.put("a/b", b"one", if_none_match=True) is not None
    assert backend.put("a/b", b"two", if_none_match=True) is None
    assert (tmp_path / "objects" / "a" / "b").read_bytes() == b"one"


def run(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_publish_without_symlinks_commits_and_says_the_view_is_missing(no_links, tmp_path):
    code, out, err = run("publish", ELF, "--store", tmp_path / "store")
    assert code == 0, (out, err)
    assert "debuginfod view not made" in err and "Developer Mode" in err
    assert "added 2" in out
    assert not any(p.is_symlink() or p.is_file() for p in (tmp_path / "store").rglob("debuginfod/**/*"))
    code, out, _ = run("store", "verify", "--store", tmp_path / "store")
    assert code == 0, out


def test_a_symlink_failure_leaves_no_committed_transaction(tmp_path, monkeypatch):
    """The debuginfod links come before the commit point: a failure there (here a full disk) fails
    the publish with nothing committed, rather than after a transaction exists."""
    def full(src, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(os, "symlink", full)
    store = tmp_path / "store"
    code, out, err = run("publish", ELF, "--store", store)
    assert code != 0
    server = store / "000Admin" / "server.txt"
    assert not server.exists() or server.read_bytes() == b""
    monkeypatch.undo()
    code, out, _ = run("store", "verify", "--repair", "--store", store)
    assert code in (0, 1), out
    code, out, _ = run("publish", ELF, "--store", store)
    assert code == 0, out
    assert (store / "debuginfod" / "buildid").is_dir()


def test_repair_removes_the_view_links_of_a_publish_that_never_committed(tmp_path):
    """Links now come before the commit point: a publish killed between the two leaves links whose
    entries verify --repair rolls back; the repair removes them too, and says so."""
    store = tmp_path / "store"
    assert run("publish", ELF, "--store", store)[0] == 0
    view = next((store / "debuginfod" / "buildid").iterdir())
    stray = store / "debuginfod" / "buildid" / ("0" * 40)
    stray.mkdir()
    (stray / "executable").symlink_to(os.path.relpath(store / "gone" / "elf-buildid-00" / "gone", stray))
    code, out, _ = run("store", "verify", "--repair", "--json", "--store", store)
    assert code == 0, out
    import json

    found = [f for f in json.loads(out)["findings"] if f["kind"] == "debuginfod-link"]
    assert [f["path"] for f in found] == [f"debuginfod/buildid/{'0' * 40}/executable"]
    assert found[0]["repaired"]
    assert not stray.exists() and (view / "executable").exists()


def test_without_the_symlink_privilege_the_view_holds_hard_links(tmp_path, monkeypatch):
    """Windows without Developer Mode on NTFS: no symlinks, hard links work.  The debuginfod view is
    made of hard links (the same bytes as the entries), and deleting the transaction drops them."""
    def no_privilege(src, dst, *args, **kwargs):
        err = OSError(errno.EPERM, "A required privilege is not held by the client", str(dst))
        err.winerror = 1314
        raise err

    windows_personality(monkeypatch, "3.12")
    monkeypatch.setattr(os, "symlink", no_privilege)
    store = tmp_path / "store"
    code, out, err = run("publish", ELF, "--store", store)
    assert code == 0 and "view not made" not in err, (out, err)
    view = next((store / "debuginfod" / "buildid").iterdir())
    for artifact in ("executable", "debuginfo"):
        assert not (view / artifact).is_symlink() and (view / artifact).stat().st_nlink == 2
    assert (view / "executable").read_bytes() == ELF.read_bytes()
    code, out, _ = run("store", "delete", "0000000001", "--store", store)
    assert code == 0, out
    assert not view.exists()
