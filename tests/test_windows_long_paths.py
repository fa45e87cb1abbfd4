"""Long, UNC and drive-relative paths on Windows (issue 21, "long paths").

Windows opens paths past MAX_PATH (260) only in the extended ``\\\\?\\`` form
(unless long paths are enabled machine-wide).  :func:`symtool.platform.windows_long_path`
decides by ntpath's rules, which run on any host: those are checked here
case by case against ntpath itself.  Stores and caches are opened through
:func:`symtool.platform.long_path`, which the personality test below
replaces to see that they are.  Wine's cmd.exe then runs `symtool env --shell
cmd` output and samples/windbg.cmd with a store on a ``\\\\?\\`` long path.
"""

from __future__ import annotations

import getpass
import ntpath
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SAMPLES, windows_path
from symtool import platform
from symtool.platform import MAX_PATH, windows_long_path
from windows_personality import windows  # noqa: F401 (fixture)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PE_PDB = FIXTURES / "pe-pdb"
LONG = "\\".join(["symbols-" + "x" * 40] * 6)  # 293 characters


def test_short_absolute_paths_are_only_normalised():
    assert windows_long_path("C:/Symbols/./cache/../store", "C:\\work") == "C:\\Symbols\\store"
    assert windows_long_path("\\\\server\\Symbols", "C:\\work") == "\\\\server\\Symbols"


def test_relative_and_rooted_paths_resolve_like_windows():
    assert windows_long_path("store", "D:\\work") == "D:\\work\\store"
    assert windows_long_path("..\\store", "D:\\work\\ws") == "D:\\work\\store"
    assert windows_long_path("\\Symbols", "D:\\work") == "D:\\Symbols"  # the current drive's root
    assert windows_long_path("\\Symbols", "\\\\server\\share\\work") == "\\\\server\\share\\Symbols"


def test_drive_relative_paths_use_that_drives_current_directory():
    assert windows_long_path("D:store", "D:\\work") == "D:\\work\\store"
    assert windows_long_path("E:store", "D:\\work", {"=E:": "E:\\builds"}) == "E:\\builds\\store"
    assert windows_long_path("E:store", "D:\\work", {}) == "E:\\store"  # never visited: its root


@pytest.mark.parametrize("path, cwd", [
    (f"C:\\{LONG}", "C:\\"),
    (LONG, "C:\\work"),
    (f"\\\\server\\Symbols\\{LONG}", "C:\\work"),
    (f"D:{LONG}", "C:\\work"),
    ("C:\\" + "s" * (MAX_PATH - platform.LONG_PATH_RESERVE - 3), "C:\\"),  # the first that needs it
])
def test_paths_near_max_path_take_the_extended_form(path, cwd):
    long = windows_long_path(path, cwd)
    assert long.startswith("\\\\?\\")
    plain = "\\\\" + long[len("\\\\?\\UNC\\"):] if long.startswith("\\\\?\\UNC\\") else long[len("\\\\?\\"):]
    # ntpath's own reading of the plain form: absolute, normalised, the same components.
    assert ntpath.isabs(plain) and ntpath.normpath(plain) == plain
    assert plain.lower().endswith(ntpath.normpath(path.replace("D:", "")).lower().lstrip("\\"))
    if path.startswith("\\\\"):
        assert long.startswith("\\\\?\\UNC\\server\\Symbols\\")
    assert windows_long_path(long, "C:\\elsewhere") == long  # already extended: left alone


def test_one_below_the_limit_stays_plain():
    path = "C:\\" + "s" * (MAX_PATH - platform.LONG_PATH_RESERVE - 4)
    assert windows_long_path(path, "C:\\") == path


def test_stores_and_caches_are_opened_through_the_platform_layer(windows, tmp_path, monkeypatch):
    """publish, fetch and store admin ask the platform layer for the name to open a root by."""
    asked = []

    def long_path(path):
        name = Path(path).name  # the command line made them absolute (relative to the current directory)
        asked.append(name)
        return str(tmp_path / {"LONG-STORE": "store", "LONG-CACHE": "cache"}[name]) if name.startswith("LONG-") else path

    monkeypatch.setattr(platform._Windows, "long_path", staticmethod(long_path))
    from symtool.cli import app

    env = {"SYMTOOL_STORE": "", "NO_COLOR": "1"}
    runner = CliRunner()
    result = runner.invoke(app, ["publish", str(PE_PDB / "crash.exe"), str(PE_PDB / "crash.pdb"), "--store", "LONG-STORE"], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "store" / "000Admin" / "server.txt").is_file()
    assert not Path("LONG-STORE").exists()
    result = runner.invoke(app, ["store", "list", "--store", "LONG-STORE"], env=env)
    assert result.exit_code == 0 and "0000000001" in result.output, result.output
    result = runner.invoke(app, ["fetch", "--exe", str(PE_PDB / "crash.exe"), "--binary", "--server", "LONG-STORE",
                                 "--cache", "LONG-CACHE"], env=env)
    assert result.exit_code == 0, result.output
    assert any(p.name == "crash.exe" for p in (tmp_path / "cache").rglob("*"))
    assert "LONG-STORE" in asked and "LONG-CACHE" in asked


# -- Wine's cmd.exe with a store on a \\?\ long path ------------------------------------------------

def long_store(tmp_path: Path) -> tuple[Path, str]:
    """A real directory whose Windows name (Wine's Z: drive) is over MAX_PATH, and that name in
    the extended form."""
    store = tmp_path.joinpath(*(["symbol store " + "y" * 40] * 6))
    store.mkdir(parents=True)
    (store / "pingme.txt").write_bytes(b"")
    name = "\\\\?\\" + windows_path(store)
    assert len(name) > MAX_PATH
    return store, name


def test_env_cmd_output_carries_a_long_store_path_through_cmd(wine_cmd, sample_build, tmp_path):
    from test_env_cli import evaluate_cmd

    _, name = long_store(tmp_path)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("SYMTOOL_", "_NT_"))}
    env.update(SYMTOOL_STORE=name, SYMTOOL_CACHE="C:\\symcache", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    proc = subprocess.run([sys.executable, "-m", "symtool", "env", "--shell", "cmd", str(sample_build.workspace)],
                          env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    got = evaluate_cmd(wine_cmd, proc.stdout.decode("utf-8"), tmp_path / "cmd")
    elements = got["_NT_SYMBOL_PATH"].split(";")
    assert f"srv*C:\\symcache*{name}" in elements
    assert f"srv*C:\\symcache*{name}" in got["_NT_EXECUTABLE_IMAGE_PATH"].split(";")


def test_windbg_cmd_reads_a_symbol_path_with_a_long_store(wine_cmd, sample_build, tmp_path):
    from test_windows_scripts import NAMES, read_record, recorder

    _, name = long_store(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(wine_cmd.prefix / "drive_c" / "windows" / "system32" / "whoami.exe", bin_dir / "symtool.exe")
    record = tmp_path / "windbg-record.txt"
    fake_windbg = recorder(bin_dir / "fake windbg.cmd", record)
    out_dir = wine_cmd.prefix / "drive_c" / "users" / getpass.getuser() / "AppData" / "Local" / "symtool" / "env"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("SYMTOOL_", "_NT_"))}
    env.update(SYMTOOL_STORE=name, SYMTOOL_CACHE="C:\\symcache", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    proc = subprocess.run([sys.executable, "-m", "symtool", "env", "-q", str(sample_build.workspace),
                           "--write", str(out_dir)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    dump = tmp_path / "crash.dmp"
    dump.write_bytes(b"MDMP")
    proc = wine_cmd.run(SAMPLES / "windbg.cmd", windows_path(dump), windows_path(sample_build.workspace),
                        cwd=tmp_path, WINEPATH=windows_path(bin_dir), WINDBG=windows_path(fake_windbg))
    assert proc.returncode == 0, proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    _, variables = read_record(record)
    for var, file in zip(NAMES, ("symbols.path", "sources.path", "images.path")):
        assert variables[var] == (out_dir / file).read_text(encoding="utf-8").strip(), var
    assert f"srv*C:\\symcache*{name}" in variables["_NT_SYMBOL_PATH"].split(";")


def test_procdump_capture_cmd_hands_on_a_long_dump_directory(wine_cmd, tmp_path):
    r"""An existing dump directory past MAX_PATH, named in the \\?\ form, reaches ProcDump whole."""
    from test_windows_scripts import read_record, recorder

    record = tmp_path / "procdump-record.txt"
    fake = recorder(tmp_path / "fake-procdump.cmd", record)
    dumps = tmp_path.joinpath(*(["nightly dumps " + "z" * 40] * 6))
    dumps.mkdir(parents=True)
    name = "\\\\?\\" + windows_path(dumps)
    proc = wine_cmd.run(SAMPLES / "procdump-capture.cmd", "crash-me.exe", name, cwd=tmp_path,
                        PROCDUMP=windows_path(fake))
    assert proc.returncode == 0, proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    args, _ = read_record(record)
    assert args.endswith(f"\"{name}\\PROCESSNAME_EXCEPTIONCODE_YYMMDD_HHMMSS.dmp\"")


def test_procdump_capture_cmd_stops_when_the_dump_directory_cannot_be_made(wine_cmd, tmp_path):
    r"""Wine's mkdir refuses \\?\ names ("Invalid name"), as a read-only share would refuse any: the
    script used to start ProcDump anyway, which then loses the dump when the crash comes."""
    from test_windows_scripts import recorder

    record = tmp_path / "procdump-record.txt"
    fake = recorder(tmp_path / "fake-procdump.cmd", record)
    dumps = tmp_path.joinpath(*(["new dumps " + "z" * 40] * 6))
    name = "\\\\?\\" + windows_path(dumps)
    proc = wine_cmd.run(SAMPLES / "procdump-capture.cmd", "crash-me.exe", name, cwd=tmp_path,
                        PROCDUMP=windows_path(fake))
    if dumps.is_dir():  # a cmd that makes \\?\ directories: then ProcDump must have been started
        assert proc.returncode == 0 and record.exists()
        return
    assert proc.returncode == 2
    assert b"cannot create the dump directory" in proc.stdout + proc.stderr
    assert not record.exists()
