"""Real commands under the Windows personality (tests/windows_personality.py) give what they give natively.

Issue 21: on Windows every read of a PE, PDB or minidump failed on 3.12+
(``os.set_blocking`` works on pipes only there) and every publish or fetch
from a directory on 3.10-3.13 (no ``os.pread``).  Each command here is run
in-process, once natively and once as Windows' CPython of 3.12 and of 3.11
would run it; exit code, output and the store written must be the same.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from symtool.cli import app
from windows_personality import windows  # noqa: F401 (fixture)
from windows_personality import windows_personality

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PE_PDB = FIXTURES / "pe-pdb"
DUMP = FIXTURES / "dumps" / "symbolic-windows-mini.dmp"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"SYMTOOL_STORE": "", "NO_COLOR": "1"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is the failure this file is about: show it whole
    return result.exit_code, result.stdout, result.stderr


def store_tree(store: Path) -> dict[str, bytes | None]:
    """Each file of a store, by relative path: its bytes, except 000Admin's (they hold dates and times)."""
    out: dict[str, bytes | None] = {}
    for path in sorted(store.rglob("*")):
        rel = path.relative_to(store).as_posix()
        if path.is_file():
            out[rel] = None if rel.startswith("000Admin/") else path.read_bytes()
    return out


def native_and_windows(monkeypatch, semantics: str, *args: str) -> tuple[tuple, tuple]:
    native = run(*args)
    with monkeypatch.context() as m:
        windows_personality(m, semantics)
        as_windows = run(*args)
    return native, as_windows


@pytest.mark.parametrize("semantics", ["3.12", "3.11"])
@pytest.mark.parametrize("command", [
    ("id", "--json", PE_PDB / "crash.exe", PE_PDB / "crash.pdb", PE_PDB / "dump_syms_regtest64.exe",
     PE_PDB / "dump_syms_regtest64.pdb"),
    ("verify", PE_PDB / "crash.exe", PE_PDB / "dump_syms_regtest64.exe"),
    ("stack", DUMP, "--build-dir", PE_PDB),
], ids=["id", "verify", "stack"])
def test_reading_commands_agree_with_the_native_run(monkeypatch, semantics, command):
    native, as_windows = native_and_windows(monkeypatch, semantics, *command)
    assert native[0] == 0, native
    assert as_windows == native


@pytest.mark.parametrize("semantics", ["3.12", "3.11"])
def test_publish_writes_the_same_store_as_the_native_run(monkeypatch, tmp_path, semantics):
    native = run("publish", PE_PDB, "--store", tmp_path / "native")
    with monkeypatch.context() as m:
        windows_personality(m, semantics)
        as_windows = run("publish", PE_PDB, "--store", tmp_path / "windows")
    assert native[0] == 0, native
    assert as_windows[0] == native[0], as_windows
    assert as_windows[1].replace(str(tmp_path / "windows"), "STORE") == native[1].replace(str(tmp_path / "native"),
                                                                                          "STORE")
    assert store_tree(tmp_path / "windows") == store_tree(tmp_path / "native")
    assert len(store_tree(tmp_path / "native")) > 5

    # Publishing again takes the store lock again: the first run's lock must have been released
    # (issue 21: an unreadable lock file was never removed, and the next publisher waited 600 s).
    assert not (tmp_path / "windows" / "000Admin" / "symtool.lock").exists()
    with monkeypatch.context() as m:
        windows_personality(m, semantics)
        again = run("publish", PE_PDB, "--store", tmp_path / "windows")
    assert again[0] == 0, again
    assert "already present 5" in again[1]


@pytest.mark.parametrize("semantics", ["3.12", "3.11"])
def test_fetch_from_a_store_directory_agrees_with_the_native_run(monkeypatch, tmp_path, semantics):
    assert run("publish", PE_PDB, "--store", tmp_path / "store")[0] == 0
    args = ["fetch", "--exe", PE_PDB / "crash.exe", "--binary", "--server", tmp_path / "store"]
    native = run(*args, "--cache", tmp_path / "native")
    with monkeypatch.context() as m:
        windows_personality(m, semantics)
        as_windows = run(*args, "--cache", tmp_path / "windows")
    assert native[0] == 0, native
    assert as_windows[0] == 0, as_windows
    assert store_tree(tmp_path / "windows") == store_tree(tmp_path / "native") != {}


def test_the_personality_takes_away_what_windows_lacks(windows, tmp_path):
    from symtool import platform

    assert platform.personality() == "windows"
    assert not hasattr(os, "pread") and not hasattr(os, "O_NOFOLLOW") and not hasattr(os, "O_NONBLOCK")
    with pytest.raises(ImportError):
        import fcntl  # noqa: F401
    with pytest.raises(PermissionError):
        os.open(tmp_path, os.O_RDONLY)
    f = tmp_path / "f"
    f.write_bytes(b"0123456789")
    fd = os.open(f, os.O_RDONLY)
    try:
        if windows == "3.11":
            assert not hasattr(os, "set_blocking")
        else:
            with pytest.raises(OSError):
                os.set_blocking(fd, True)
        # pread's emulation leaves the position alone, as pread does.
        os.lseek(fd, 3, os.SEEK_SET)
        assert platform.pread(fd, 4, 5) == b"5678"
        assert os.lseek(fd, 0, os.SEEK_CUR) == 3
    finally:
        os.close(fd)


def test_the_windows_implementation_refuses_links_fifos_and_directories(windows, tmp_path):
    from symtool import platform

    target = tmp_path / "target"
    target.write_bytes(b"data")
    link = tmp_path / "link"
    link.symlink_to(target)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    with pytest.raises(platform.NotRegular) as refused:
        platform.open_regular_fd(link, follow=False)
    assert stat.S_ISLNK(refused.value.mode)
    fd = platform.open_regular_fd(link, follow=True)
    os.close(fd)
    for not_a_file in (fifo, tmp_path):  # refused by its stat, before an open that could block on the FIFO
        with pytest.raises(platform.NotRegular):
            platform.open_regular_fd(not_a_file)
    with pytest.raises(platform.NotRegular):
        platform.open_no_follow(link, os.O_WRONLY | os.O_APPEND)
    assert target.read_bytes() == b"data"
    fd = platform.open_no_follow(tmp_path / "new", os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    platform.fsync_dir(tmp_path)  # no directory descriptors on Windows: nothing to do, and no error


def test_the_suite_switch_picks_modules_and_semantics(monkeypatch):
    """SYMTOOL_TEST_PERSONALITY (tests/conftest.py): listed modules only; =win spreads both semantics."""
    from conftest import PERSONALITY_ENV, personality_semantics

    monkeypatch.setenv(PERSONALITY_ENV, "win311")
    assert personality_semantics("tests/test_publish.py::test_x") == "3.11"
    assert personality_semantics("tests/test_architecture.py::test_x") is None
    monkeypatch.setenv(PERSONALITY_ENV, "win")
    picked = {personality_semantics(f"tests/test_publish.py::test_{i}") for i in range(20)}
    assert picked == {"3.11", "3.12"}
    monkeypatch.delenv(PERSONALITY_ENV)
    assert personality_semantics("tests/test_publish.py::test_x") is None


def test_python_children_of_a_personality_test_get_it_too(monkeypatch):
    import subprocess
    import sys

    from conftest import _children_too

    probe = ("import os; from symtool import platform; "
             "print(hasattr(os, 'pread'), hasattr(os, 'set_blocking'), platform.personality())")
    _children_too("3.11", monkeypatch)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert out.stdout.split() == ["False", "False", "windows"], out.stderr
