"""The ``usable`` verdict and ``features`` of id/verify (issue 26, item 15).

Oracles: llvm-pdbutil (PDB records), llvm-readelf and llvm-dwarfdump (ELF,
Mach-O), sentry-cli ``difutil check`` where installed.  Real files only: the
fixtures, the samples' PE+PDB built by cargo, an ELF built by gcc here and the
same after ``llvm-objcopy --strip-all``, a PDB written by LLVM's PDB writer
(``llvm-pdbutil yaml2pdb``) from crash.pdb's type stream alone.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import need_tool
from symtool.usable import file_features, verdict

FIX = Path(__file__).parent / "fixtures"
PDBS = [FIX / "pe-pdb/crash.pdb", FIX / "pe-pdb/dump_syms_regtest64.pdb",
        *sorted((FIX / "symstore-exe/inputs").glob("*.pdb"))]
ALL = [*PDBS, FIX / "pe-pdb/crash.exe", FIX / "pe-pdb/dump_syms_regtest64.exe",
       FIX / "elf-macho/crash-me.arm64", FIX / "elf-macho/crash-me.arm64.dwarf",
       FIX / "elf-macho/crash-me.dwarf4", FIX / "elf-macho/crash-me.dwarf5"]


def symtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return symtool_in_process(*args, timeout=300, cwd=cwd)


def pdbutil(*args: str) -> str:
    return subprocess.run([need_tool("llvm-pdbutil"), "dump", *args], capture_output=True, text=True,
                          check=True, timeout=120).stdout


@pytest.mark.parametrize("pdb", PDBS, ids=lambda p: p.name)
def test_pdb_features_agree_with_llvm_pdbutil(pdb):
    f = file_features(pdb)
    symbols = pdbutil("--symbols", str(pdb))
    publics = pdbutil("--publics", str(pdb))
    lines = pdbutil("--l", str(pdb))
    assert f.functions == bool(re.search(r"S_[GL]PROC32|S_PUB32", symbols + publics))
    assert f.line_tables == bool(re.search(r"line/(column/)?addr entries = [1-9]", lines))
    assert f.inline_info == ("S_INLINESITE" in symbols)
    n_types = int(re.search(r"Showing ([\d,]+) records", pdbutil("--types", str(pdb)))[1].replace(",", ""))
    assert f.types == (n_types > 0)


def test_fixture_verdicts():
    # What each real file is (the oracle test above says why): a full PDB, a public
    # (stripped) PDB, a PDB with no modules and no publics, an image (symbols in its PDB).
    assert verdict(file_features(FIX / "pe-pdb/crash.pdb")) == "usable"
    assert verdict(file_features(FIX / "symstore-exe/inputs/bigage.pdb")) == "no line tables"
    assert verdict(file_features(FIX / "symstore-exe/inputs/dummylib.pdb")) == "no symbols"
    exe = file_features(FIX / "pe-pdb/dump_syms_regtest64.exe")
    assert verdict(exe) == "no symbols" and exe.unwind_info  # x64: .pdata
    assert not file_features(FIX / "pe-pdb/crash.exe").unwind_info  # x86: no .pdata (FPO is in the PDB)
    assert file_features(FIX / "pe-pdb/crash.pdb").unwind_info


@pytest.fixture(scope="module")
def types_only_pdb(tmp_path_factory) -> Path:
    """crash.pdb's PDB and TPI streams only, written back by LLVM's PDB writer: what a
    type server (cl /Zi's vc140.pdb) holds -- types, no modules, no publics."""
    tool = need_tool("llvm-pdbutil")
    d = tmp_path_factory.mktemp("typ")
    yaml = subprocess.run([tool, "pdb2yaml", "-pdb-stream", "-tpi-stream", str(FIX / "pe-pdb/crash.pdb")],
                          capture_output=True, check=True, timeout=120).stdout
    (d / "t.yaml").write_bytes(yaml)
    subprocess.run([tool, "yaml2pdb", f"-pdb={d / 'vc140.pdb'}", str(d / "t.yaml")], check=True, timeout=120)
    return d / "vc140.pdb"


def test_types_only_pdb(types_only_pdb):
    assert "Showing 0 records" not in pdbutil("--types", str(types_only_pdb))  # the oracle: types are there
    proc = symtool("id", "--json", str(types_only_pdb))
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)[0]
    assert list(rec)[-2:] == ["usable", "features"]  # new keys at the end only
    assert rec["usable"] == "types only"
    assert rec["features"] == {"functions": False, "line_tables": False, "inline_info": False,
                               "unwind_info": False, "types": True}
    text = symtool("id", str(types_only_pdb)).stdout
    assert text.rstrip().endswith("usable: types only (types)")


C_SOURCE = """
static inline __attribute__((always_inline)) int twice(int x) { return 2 * x; }
int work(int x) { return twice(x) + 1; }
int main(int argc, char **argv) { (void)argv; return work(argc); }
"""


@pytest.fixture(scope="module")
def gcc_elf(tmp_path_factory) -> tuple[Path, Path]:
    """(gcc -g -O2 build, the same after llvm-objcopy --strip-all)."""
    gcc = need_tool("gcc")
    d = tmp_path_factory.mktemp("elf")
    (d / "t.c").write_text(C_SOURCE)
    subprocess.run([gcc, "-g", "-O2", "-o", str(d / "t"), str(d / "t.c")], check=True, timeout=120)
    subprocess.run([need_tool("llvm-objcopy"), "--strip-all", str(d / "t"), str(d / "t.stripped")],
                   check=True, timeout=120)
    return d / "t", d / "t.stripped"


def _readelf_sections(path: Path) -> set[str]:
    out = subprocess.run([need_tool("llvm-readelf"), "-S", "-W", str(path)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return set(re.findall(r"\]\s+(\.\S+)", out))


def test_elf_built_by_gcc_and_stripped(gcc_elf):
    full, stripped = gcc_elf
    dwarf = subprocess.run([need_tool("llvm-dwarfdump"), "--debug-info", str(full)], capture_output=True,
                           text=True, check=True, timeout=60).stdout
    assert "DW_TAG_inlined_subroutine" in dwarf  # the oracle: gcc did inline twice()
    f = file_features(full)
    assert (f.functions, f.line_tables, f.inline_info, f.unwind_info) == (True, True, True, True)
    assert verdict(f) == "usable"

    sections = _readelf_sections(stripped)
    assert ".symtab" not in sections and ".debug_info" not in sections and ".eh_frame" in sections
    s = file_features(stripped)
    assert verdict(s) == "no symbols"
    assert (s.functions, s.line_tables, s.inline_info, s.unwind_info) == (False, False, False, True)
    proc = symtool("id", "--json", str(stripped))
    assert proc.returncode == 0 and json.loads(proc.stdout)[0]["usable"] == "no symbols"


def test_dsym_dwarf_file():
    dsym = FIX / "elf-macho/crash-me.arm64.dwarf"
    f = file_features(dsym)
    dump = subprocess.run([need_tool("llvm-dwarfdump"), "--debug-info", "--debug-line", str(dsym)],
                          capture_output=True, text=True, check=True, timeout=60).stdout
    assert f.functions == ("DW_TAG_subprogram" in dump and "DW_AT_low_pc" in dump)
    assert f.line_tables == ("debug_line[" in dump)
    assert f.inline_info == ("DW_TAG_inlined_subroutine" in dump)
    assert verdict(f) == "usable"
    # The binary alone keeps its symbol table, no DWARF: names, no lines.
    assert verdict(file_features(FIX / "elf-macho/crash-me.arm64")) == "no line tables"


def test_verify_sample_pe_pdb(sample_build):
    exe, pdb = sample_build.exe("crash-me"), sample_build.pdb("crash-me")
    proc = symtool("verify", "--json", str(exe), str(pdb))
    assert proc.returncode == 0, proc.stderr
    v = json.loads(proc.stdout)[0]
    assert list(v)[-2:] == ["usable", "features"]
    symbols = pdbutil("--symbols", str(pdb))
    lines = pdbutil("--l", str(pdb))
    assert v["features"]["functions"] == bool(re.search(r"S_[GL]PROC32", symbols))
    assert v["features"]["line_tables"] == bool(re.search(r"line/(column/)?addr entries = [1-9]", lines))
    assert v["usable"] == "usable"
    text = symtool("verify", str(exe), str(pdb)).stdout
    assert "[usable: usable]" in text.splitlines()[0]


def test_verify_without_pdb_says_no_symbols(sample_build, tmp_path):
    exe = tmp_path / "crash-me.exe"
    shutil.copy(sample_build.exe("crash-me"), exe)
    proc = symtool("verify", "--json", str(exe))
    assert proc.returncode == 1
    v = json.loads(proc.stdout)[0]
    assert v["status"] == "pdb-missing" and v["usable"] == "no symbols" and v["features"]["unwind_info"]


def _sentry(path: Path) -> dict:
    exe = shutil.which("sentry-cli")
    if exe is None:
        pytest.skip("sentry-cli not installed (pip install sentry-cli)")
    proc = subprocess.run([exe, "difutil", "check", "--json", str(path)], capture_output=True, text=True,
                          timeout=60)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_against_sentry_cli(path):
    """sentry-cli's "unwind" is ours; its "symtab"/"debug" are coarser (it calls any PDB with a
    DBI stream "debug"), so a file we call usable must be usable to sentry, not the reverse."""
    got = _sentry(path)
    feats = {s.strip() for s in got["features"].split(",")}
    f = file_features(path)
    assert f.unwind_info == ("unwind" in feats)
    if verdict(f) == "usable":
        assert got["is_usable"] and {"symtab", "debug"} <= feats
    if f.functions:
        assert "symtab" in feats


def test_publish_warns_for_a_pdb_without_symbols(types_only_pdb, tmp_path):
    store = tmp_path / "store"
    proc = symtool("publish", str(types_only_pdb), "--store", str(store))
    assert proc.returncode == 0, proc.stderr  # stored all the same: a warning, not a finding
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "types only" in warnings[0] and "vc140.pdb" in warnings[0]
    # A full PDB draws no such warning.
    proc = symtool("publish", str(FIX / "pe-pdb/crash.pdb"), "--store", str(store), "--json")
    assert proc.returncode == 0 and not any("no symbols" in w for w in json.loads(proc.stdout)["warnings"])


def test_publish_warns_for_stripped_elf_alone_not_with_its_debug_file(gcc_elf, tmp_path):
    full, stripped = gcc_elf
    proc = symtool("publish", str(stripped), "--store", str(tmp_path / "a"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert any("stored without symbols" in w for w in json.loads(proc.stdout)["warnings"])
    proc = symtool("publish", str(full), "--store", str(tmp_path / "b"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert not any("without symbols" in w for w in json.loads(proc.stdout)["warnings"])
