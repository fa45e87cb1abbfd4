"""The sample's Windows batch scripts, run by Wine's cmd.exe (an interpreter nobody here wrote).

windbg.cmd and procdump-capture.cmd are run for real; only the programs they
start are stand-ins: WinDbg and ProcDump by batch files that record what they
were given, and `symtool` by one of Wine's own console programs (it exits 0
and ignores its arguments), after the real `symtool env --write` has written
the files the script reads.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import SAMPLES, windows_path

NAMES = ("_NT_SYMBOL_PATH", "_NT_SOURCE_PATH", "_NT_EXECUTABLE_IMAGE_PATH")


def recorder(path: Path, record: Path) -> Path:
    """A batch file that writes its arguments, then the _NT_ variables, into ``record``."""
    path.write_text(f"@echo %*>{windows_path(record)}\r\n@set _NT_>>{windows_path(record)}\r\n@exit /b 0\r\n")
    return path


def read_record(record: Path) -> tuple[str, dict[str, str]]:
    lines = record.read_bytes().decode("cp1252").split("\r\n")
    variables = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    return lines[0].strip(), variables


def test_windbg_cmd_sets_the_paths_symtool_wrote_and_starts_windbg(wine_cmd, sample_build, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    system32 = wine_cmd.prefix / "drive_c" / "windows" / "system32"
    shutil.copy(system32 / "whoami.exe", bin_dir / "symtool.exe")
    record = tmp_path / "windbg-record.txt"
    fake_windbg = recorder(bin_dir / "fake windbg.cmd", record)
    # Wine sets %LOCALAPPDATA% itself, inside the prefix, for the Unix user.
    out_dir = wine_cmd.prefix / "drive_c" / "users" / getpass.getuser() / "AppData" / "Local" / "symtool" / "env"
    # What the script's `symtool env "%WS%" --write "%OUT%"` line writes, from the real symtool.
    proc = subprocess.run([sys.executable, "-m", "symtool", "env", "-q", str(sample_build.workspace),
                           "--write", str(out_dir)], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    dump = tmp_path / "crash dumps" / "crash-me.exe_C0000005_261130_101500.dmp"
    dump.parent.mkdir()
    dump.write_bytes(b"MDMP")

    proc = wine_cmd.run(SAMPLES / "windbg.cmd", windows_path(dump), windows_path(sample_build.workspace),
                        cwd=tmp_path, WINEPATH=windows_path(bin_dir), WINDBG=windows_path(fake_windbg))
    assert proc.returncode == 0, proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    args, variables = read_record(record)
    out = f"C:\\users\\{getpass.getuser()}\\AppData\\Local\\symtool\\env"
    assert args == f'-z "{windows_path(dump)}" -c "$$<{out}\\symtool.windbg"'
    for name, file in zip(NAMES, ("symbols.path", "sources.path", "images.path")):
        assert variables[name] == (out_dir / file).read_text(encoding="utf-8").strip(), name


def test_windbg_cmd_refuses_a_missing_dump(wine_cmd, tmp_path):
    proc = wine_cmd.run(SAMPLES / "windbg.cmd", windows_path(tmp_path / "nope.dmp"), cwd=tmp_path)
    assert proc.returncode == 2
    assert b"no such file" in proc.stdout + proc.stderr


def test_windbg_cmd_usage(wine_cmd, tmp_path):
    proc = wine_cmd.run(SAMPLES / "windbg.cmd", cwd=tmp_path)
    assert proc.returncode == 2
    assert b"usage: windbg.cmd DUMP [WORKSPACE]" in proc.stdout + proc.stderr


def test_procdump_capture_cmd_creates_the_dump_dir_and_passes_the_filters(wine_cmd, tmp_path):
    record = tmp_path / "procdump-record.txt"
    fake = recorder(tmp_path / "fake-procdump.cmd", record)
    dumps = tmp_path / "nightly dumps"
    proc = wine_cmd.run(SAMPLES / "procdump-capture.cmd", "crash-me.exe", windows_path(dumps),
                        cwd=tmp_path, PROCDUMP=windows_path(fake))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert dumps.is_dir()
    args, _ = read_record(record)
    assert args == ("-accepteula -e 1 -f C0000005 -fx 406D1388 -fx E06D7363 -mt -w \"crash-me.exe\" "
                    f"\"{windows_path(dumps)}\\PROCESSNAME_EXCEPTIONCODE_YYMMDD_HHMMSS.dmp\"")
