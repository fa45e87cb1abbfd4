"""Issue 26, item 14: a publish whose files are all refused records no transaction.

Every refusal path of symtool/store/publish.py, each on real files (Microsoft's PE/PDB
fixtures, an ELF linked here by clang without a build id): the store that already holds
one transaction is left byte for byte as it was (no history.txt or server.txt line, no
transaction id consumed: lastid.txt unchanged, no new 000Admin file, no new entry).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import FIXTURES_DIR, need_tool

PE_PDB = FIXTURES_DIR / "pe-pdb"


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and directory (None) under ``root``."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture
def store(tmp_path, env):
    """A store holding one transaction (crash.pdb), as `store list` shows it."""
    store = tmp_path / "store"
    proc = symtool_in_process("publish", PE_PDB / "crash.pdb", "--store", store, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (store / "000Admin" / "lastid.txt").read_text().strip() == "0000000001"
    return store


def _truncated(tmp_path: Path) -> list[Path]:
    cut = tmp_path / "cut.pdb"
    cut.write_bytes((PE_PDB / "crash.pdb").read_bytes()[:4096])
    return [cut]


def _junk(tmp_path: Path) -> list[Path]:
    junk = tmp_path / "junk.exe"
    junk.write_bytes(b"MZ" + os.urandom(500))
    return [junk]


def _fifo(tmp_path: Path) -> list[Path]:
    fifo = tmp_path / "pipe.pdb"
    os.mkfifo(fifo)
    return [fifo]


def _unsafe_name(tmp_path: Path) -> list[Path]:
    reserved = tmp_path / "CON.pdb"  # a Windows device name: no store may hold it
    reserved.write_bytes((PE_PDB / "dump_syms_regtest64.pdb").read_bytes())
    return [reserved]


def _mismatched_pair(tmp_path: Path) -> list[Path]:
    # The only binary and the only PDB named: compared as `verify` pairs them; they are not a pair.
    return [PE_PDB / "crash.exe", PE_PDB / "dump_syms_regtest64.pdb"]


def _elf_without_build_id(tmp_path: Path) -> list[Path]:
    src = tmp_path / "nobid.c"
    src.write_text("int main(void) { return 0; }\n")
    out = tmp_path / "nobid"
    subprocess.run([need_tool("clang"), "-g", "-fuse-ld=lld", "-Wl,--build-id=none", str(src), "-o", str(out)],
                   check=True, capture_output=True, timeout=120)
    return [out]


def _other_bytes_under_the_key(tmp_path: Path) -> list[Path]:
    # crash.pdb's identity (GUID, age) with other bytes: its last byte changed.
    other = tmp_path / "other" / "crash.pdb"
    other.parent.mkdir()
    data = bytearray((PE_PDB / "crash.pdb").read_bytes())
    data[-1] ^= 0xFF
    other.write_bytes(bytes(data))
    return [other]


CASES = {  # refusal path -> (inputs, statuses, exit code)
    "missing file": (lambda tmp: [tmp / "nowhere.pdb"], {"unreadable"}, 2),
    "truncated PDB": (_truncated, {"unreadable"}, 2),
    "not a PE or PDB": (_junk, {"unreadable"}, 2),
    "not a regular file": (_fifo, {"unreadable"}, 2),
    "unsafe file name": (_unsafe_name, {"refused"}, 1),
    "mismatched pair": (_mismatched_pair, {"refused"}, 1),
    "ELF without build id": (_elf_without_build_id, {"refused"}, 1),
    "other bytes under the key": (_other_bytes_under_the_key, {"refused"}, 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_publish_with_every_file_refused_records_no_transaction(store, tmp_path, env, case):
    make, statuses, code = CASES[case]
    inputs = make(tmp_path)
    before = snapshot(store)
    proc = symtool_in_process("publish", *inputs, "--store", store, "--json", env=env)
    assert proc.returncode == code, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert {f["status"] for f in report["files"]} == statuses and len(report["files"]) == len(inputs), report
    assert report["transaction"] is None, report
    assert snapshot(store) == before  # history.txt, server.txt, lastid.txt and every entry as they were
    # The next publish takes the next id: none was consumed by the refused one.
    proc = symtool_in_process("publish", PE_PDB / "dump_syms_regtest64.pdb", "--store", store, "--json", env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["transaction"] == "0000000002", proc.stdout
