"""``store query KEY|FILE`` (issue 26, item 16) against stores written by Microsoft's symstore.exe.

The expected transactions are read from the fixture's own 000Admin files (its
server.txt and the transaction files symstore.exe wrote), never typed in here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cli_runner import symtool_in_process

FIX = Path(__file__).parent / "fixtures" / "symstore-exe"
INPUTS = FIX / "inputs"


def symtool(*args: str) -> subprocess.CompletedProcess:
    return symtool_in_process(*args, timeout=120)


@pytest.fixture
def stores(tmp_path) -> Path:
    shutil.copytree(FIX / "stores", tmp_path / "stores")  # never touch the fixtures themselves
    return tmp_path / "stores"


def _symstore_txns(store: Path, key_line_prefix: str) -> list[str]:
    """Ids of the transaction files symstore.exe wrote that list the key (the oracle)."""
    return sorted(p.name for p in (store / "000Admin").iterdir()
                  if p.name.isdigit() and any(line.lower().startswith(key_line_prefix.lower())
                                              for line in p.read_text("latin-1").splitlines()))


def test_file_added_twice_has_two_transactions(stores):
    store = stores / "republished"
    proc = symtool("store", "query", str(INPUTS / "dummyprog.pdb"), "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    (key,) = out["keys"]
    assert key["found"] and key["stored_as"] == "plain"
    expected = _symstore_txns(store, '"dummyprog.pdb\\')
    assert len(expected) == 2
    assert [t["id"] for t in key["transactions"]] == expected
    server = (store / "000Admin" / "server.txt").read_text("latin-1")
    for t in key["transactions"]:
        assert t["state"] == "live" and t["product"] == "dummyprod"
        assert f'{t["id"]},add,file,{t["date"]},{t["time"]},"{t["product"]}"' in server
    text = symtool("store", "query", str(INPUTS / "dummyprog.pdb"), "--store", str(store)).stdout
    assert text.splitlines()[0].startswith("found  dummyprog.pdb/F6301B4562FE4B4DB691192733ECE6B71/")
    assert sum(line.startswith("  transaction ") for line in text.splitlines()) == 2


def test_key_any_case_and_pe_image(stores):
    # symstore.exe wrote bigage's index with a lower-case age digit ("...EAa"): symsrv matches any case.
    store = stores / "pe_store"
    key = "BIGAGE.PDB/C9A61DDDD7E44353A668E39AC614A7EAA/BIGAGE.PDB"
    out = json.loads(symtool("store", "query", key, "--store", str(store), "--json").stdout)
    assert out["keys"][0]["found"]
    assert [t["id"] for t in out["keys"][0]["transactions"]] == _symstore_txns(store, '"bigage.pdb\\')
    proc = symtool("store", "query", str(INPUTS / "dummylib.dll"), "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    (t,) = json.loads(proc.stdout)["keys"][0]["transactions"]
    assert (t["product"], t["version"]) == ("peprods", "1.0.1")


def test_not_in_store_is_exit_1(stores):
    proc = symtool("store", "query", str(INPUTS / "dummylib.pdb"), "--store", str(stores / "new_store"), "--json")
    assert proc.returncode == 1
    key = json.loads(proc.stdout)["keys"][0]
    assert not key["found"] and key["transactions"] == []


def test_deleted_transaction_is_reported_as_deleted(stores):
    store = stores / "republished"
    assert symtool("store", "delete", "2", "--store", str(store)).returncode == 0
    out = json.loads(symtool("store", "query", str(INPUTS / "dummyprog.pdb"), "--store", str(store),
                             "--json").stdout)
    states = {t["id"]: t["state"] for t in out["keys"][0]["transactions"]}
    assert states == {"0000000001": "live", "0000000002": "deleted"}
    assert out["keys"][0]["found"]  # transaction 1 still holds it


@pytest.mark.parametrize("args", [
    ["not a key"],
    ["a/b/c/d"],
    ["../x/../x"],
])
def test_bad_input_is_exit_2(stores, args):
    proc = symtool("store", "query", *args, "--store", str(stores / "new_store"))
    assert proc.returncode == 2
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr


def test_remote_store_is_refused(tmp_path):
    proc = symtool("store", "query", "a.pdb/0123/a.pdb", "--store", "https://symbols.example.com/store")
    assert proc.returncode == 2 and proc.stderr.startswith("error:")
