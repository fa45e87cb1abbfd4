"""Output is UTF-8 when redirected, whatever the code page (issue 21, item 6).

On Windows a redirected stdout is encoded in the ANSI code page, strictly:
``symtool id --json`` on a file named outside cp1252 died with
UnicodeEncodeError.  ``PYTHONIOENCODING=cp1252`` gives Linux's CPython the
same stdout, so the real command line is run here in a subprocess under it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PE_PDB = ROOT / "tests" / "fixtures" / "pe-pdb"
NAME = "сим"  # Cyrillic: no cp1252 encoding


def symtool(*args, cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    """``python -m symtool ARGS`` with stdout redirected to a pipe, encoded as Windows would encode it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMTOOL_", "_NT_", "PYTHONUTF8"))}
    env.update(PYTHONIOENCODING="cp1252", PYTHONPATH=str(ROOT), NO_COLOR="1", HOME=str(cwd),
               SYMTOOL_STORE="", **extra)
    proc = subprocess.run([sys.executable, "-m", "symtool", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, timeout=120)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode("utf-8", "replace")
    return proc


@pytest.fixture
def foreign(tmp_path) -> Path:
    """A directory named outside cp1252 holding the crash fixtures renamed likewise."""
    d = tmp_path / NAME
    d.mkdir()
    shutil.copyfile(PE_PDB / "crash.pdb", d / f"{NAME}.pdb")
    shutil.copyfile(PE_PDB / "crash.exe", d / f"{NAME}.exe")
    shutil.copyfile(PE_PDB / "crash.pdb", d / "crash.pdb")  # where verify looks: the CodeView name, beside the exe
    return d


def test_json_is_utf8_under_an_ansi_code_page(foreign):
    proc = symtool("id", "--json", foreign / f"{NAME}.pdb", cwd=foreign.parent)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.decode("utf-8"))  # strict: UTF-8 or fail
    assert str(foreign / f"{NAME}.pdb") in json.dumps(data, ensure_ascii=False)


def test_a_json_error_is_utf8_too(foreign):
    proc = symtool("id", "--json", foreign / f"не-{NAME}.pdb", cwd=foreign.parent)
    assert proc.returncode == 2
    error = json.loads(proc.stdout.decode("utf-8"))["error"]
    assert NAME in (error["path"] or error["message"])
    assert proc.stderr.startswith(b"error: ")


@pytest.mark.parametrize("args", [
    ("id", f"{NAME}/{NAME}.pdb", f"{NAME}/{NAME}.exe"),
    ("verify", f"{NAME}/{NAME}.exe"),
])
def test_text_is_utf8_when_redirected(foreign, args):
    proc = symtool(*args, cwd=foreign.parent)
    assert proc.returncode == 0, proc.stderr
    assert f"{NAME}/{NAME}.pdb" in proc.stdout.decode("utf-8") or f"{NAME}/{NAME}.exe" in proc.stdout.decode("utf-8")


def test_publish_and_fetch_print_foreign_paths(foreign):
    store, cache = foreign / "хранилище", foreign / "кэш"
    published = symtool("publish", foreign / f"{NAME}.pdb", "--store", store, cwd=foreign.parent)
    assert published.returncode == 0, published.stderr
    assert f"{NAME}.pdb/3249D99D0C4049318610F4E4FB0B69361" in published.stdout.decode("utf-8")
    fetched = symtool("fetch", "--pdb", f"{NAME}.pdb", "--id", "3249D99D0C4049318610F4E4FB0B69361",
                      "--server", store, "--cache", cache, cwd=foreign.parent)
    assert fetched.returncode == 0, fetched.stderr
    assert str(cache) in fetched.stdout.decode("utf-8")


@pytest.mark.skipif(sys.platform == "win32", reason="optional: POSIX file names are bytes")
def test_an_undecodable_file_name_is_valid_json(tmp_path):
    name = os.fsdecode(b"crash-\xff.pdb")  # a lone surrogate in Python's str
    shutil.copyfile(PE_PDB / "crash.pdb", tmp_path / name)
    proc = symtool("id", "--json", tmp_path / name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode("utf-8")
    assert "\\udcff" in text
    assert name in json.dumps(json.loads(text), ensure_ascii=False)
