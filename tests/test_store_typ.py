"""A PDB with no DBI stream -- a type-only PDB such as cl /Zi's ``vc140.pdb`` --
is recorded as ``typ`` in refs.ptr, as symstore.exe does, not as ``pri``
(issue 11 item 11).

No compiler here writes a type-server PDB (clang-cl and lld-link always write a
DBI stream), so the test makes one: dummyprog.pdb's streams as llvm-pdbutil
exports them, re-laid by the MSF builder with the DBI stream (3) empty, absent
(only streams 0-2) or nil.  llvm-pdbutil confirms the first two are PDBs with
types and without DBI (it crashes on a nil DBI stream, version 14 at least).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from builders.msf import build_msf7
from cli_runner import symtool_in_process
from conftest import need_tool
from symtool.formats.pdb import read_pdb
from symtool.store import admin as adm
from symtool.store.identify import identify

STREAM_DBI = 3


def pdbutil(*args: str) -> str:
    return subprocess.run([need_tool("llvm-pdbutil"), *map(str, args)], capture_output=True, text=True,
                          check=True).stdout


def exported_streams(path, tmp_path) -> list[bytes]:
    out = []
    for index in re.findall(r"Stream\s+(\d+) \(", pdbutil("dump", "--streams", path)):
        dest = tmp_path / f"stream{index}.bin"
        pdbutil("export", f"--stream={index}", f"--out={dest}", path)
        out.append(dest.read_bytes())
    return out


@pytest.fixture(params=["empty", "absent", "nil"])
def types_only_pdb(request, fixtures_dir, tmp_path):
    streams: list[bytes | None] = exported_streams(fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb",
                                                   tmp_path)
    if request.param == "absent":
        streams = streams[:STREAM_DBI]
    else:
        streams[STREAM_DBI] = None if request.param == "nil" else b""
    out = tmp_path / "in" / "vc140.pdb"
    out.parent.mkdir()
    out.write_bytes(build_msf7(streams))
    if request.param != "nil":
        summary = pdbutil("dump", "--summary", out)
        assert "Has Debug Info: false" in summary and "Has Types: true" in summary, summary
    return out


def test_type_only_pdb_is_typ(types_only_pdb, fixtures_dir):
    assert identify(types_only_pdb).kind == "typ"
    # The full PDB it was made from stays pri (symstore.exe's refs.ptr in the fixtures).
    assert identify(fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb").kind == "pri"


def test_publish_records_typ_in_refs_ptr(types_only_pdb, env, tmp_path):
    store = tmp_path / "store"
    proc = symtool_in_process("publish", types_only_pdb, "--store", store, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    index = read_pdb(types_only_pdb).index
    refs = store / "vc140.pdb" / index / "refs.ptr"
    assert refs.read_bytes() == f'0000000001,file,"{types_only_pdb}",typ,,N,,'.encode()
    # `store verify --repair` rebuilds a lost refs.ptr line with the same kind.
    refs.unlink()
    proc = symtool_in_process("store", "verify", "--repair", "--store", store, env=env, timeout=120)
    assert [line.split(",")[3] for line in adm.read_lines(refs)] == ["typ"], proc.stdout + proc.stderr
