"""`symtool store` and `publish` for real teams (issue 11 items 7 and 12):
``store delete --dry-run``, the header row of ``store list``, each
subcommand's own examples, and a warning when ``publish`` turns a non-empty
folder that is not a store into one.  Real subprocess runs on real PDBs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import symtool_in_process

INPUTS = Path(__file__).resolve().parent / "fixtures" / "symstore-exe" / "inputs"


def symtool(*args, env, cwd=None):
    e = dict(env, COLUMNS="200")  # help text unwrapped
    proc = symtool_in_process(*map(str, args), env=e, cwd=cwd, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path below ``root``: file bytes, None for directories."""
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in root.rglob("*")}


@pytest.fixture
def two_transactions(env, tmp_path):
    """A store: 1 = bigage + dummyprog, 2 = dummyprog + dummylib (dummyprog shared)."""
    store = tmp_path / "store"
    for files, product in ((["bigage.pdb", "dummyprog.pdb"], "first"), (["dummyprog.pdb", "dummylib.pdb"], "second")):
        proc = symtool("publish", *[INPUTS / f for f in files], "--store", store, "--product", product, env=env)
        assert proc.returncode == 0, proc.stderr
    return store


def test_delete_dry_run_changes_nothing_and_says_what_would_go(two_transactions, env):
    store = two_transactions
    before = snapshot(store)
    proc = symtool("store", "delete", "1", "--dry-run", "--store", store, env=env)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(store) == before  # byte for byte, not one file or directory more or less
    assert proc.stdout.splitlines() == [
        "would delete transaction 0000000001",
        "  would remove bigage.pdb/C9A61DDDD7E44353A668E39AC614A7EAa/bigage.pdb",
        "  would keep dummyprog.pdb/F6301B4562FE4B4DB691192733ECE6B71/dummyprog.pdb (still referenced)",
    ]
    dry = json.loads(symtool("store", "delete", "1", "--dry-run", "--json", "--store", store, env=env).stdout)
    assert snapshot(store) == before
    real = json.loads(symtool("store", "delete", "1", "--json", "--store", store, env=env).stdout)
    assert (dry["dry_run"], real["dry_run"]) == (True, False)
    for key in ("deleted", "removed_files", "still_referenced", "problems"):
        assert dry[key] == real[key], key
    assert dry["del_records"] == [] and real["del_records"] == ["0000000003"]


def test_delete_dry_run_of_several_and_of_unknown_ids(two_transactions, env):
    store = two_transactions
    before = snapshot(store)
    out = json.loads(symtool("store", "delete", "1", "2", "--dry-run", "--json", "--store", store, env=env).stdout)
    assert out["deleted"] == ["0000000001", "0000000002"]
    # After both, nothing references dummyprog.pdb: it goes too.
    assert "dummyprog.pdb/F6301B4562FE4B4DB691192733ECE6B71/dummyprog.pdb" in out["removed_files"]
    assert len(out["removed_files"]) == 3
    proc = symtool("store", "delete", "1", "1", "--dry-run", "--store", store, env=env)
    assert proc.returncode == 1 and "already deleted" in proc.stderr
    proc = symtool("store", "delete", "9", "--dry-run", "--store", store, env=env)
    assert proc.returncode == 1 and "no live transaction 0000000009" in proc.stderr
    assert snapshot(store) == before


def test_list_has_a_header_row_aligned_with_the_rows(two_transactions, env):
    lines = symtool("store", "list", "--store", two_transactions, env=env).stdout.splitlines()
    assert lines[0].split() == ["ID", "DATE", "TIME", "REF", "PRODUCT", "VERSION", "COMMENT"]
    assert [line.split()[0] for line in lines[1:]] == ["0000000001", "0000000002"]
    assert lines[1].index("first") == lines[0].index("PRODUCT") and lines[1].index("file") == lines[0].index("REF")
    # --json is unchanged: no header there.
    rows = json.loads(symtool("store", "list", "--json", "--store", two_transactions, env=env).stdout)
    assert [r["id"] for r in rows["transactions"]] == ["0000000001", "0000000002"]


SUBCOMMANDS = ["list", "show", "delete", "prune", "verify", "init", "query"]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_each_subcommand_shows_its_own_examples(sub, env):
    text = symtool("store", sub, "--help", env=env).stdout
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith("symtool store ")]
    assert examples, text
    assert all(line.startswith(f"symtool store {sub} ") for line in examples), examples


def test_the_group_shows_one_example_of_each(env):
    text = symtool("store", "--help", env=env).stdout
    examples = {line.strip().split()[2] for line in text.splitlines() if line.strip().startswith("symtool store ")}
    assert examples == set(SUBCOMMANDS)


# --- publish into a folder that is not a store ------------------------------------------------------

def test_publish_warns_when_turning_a_non_empty_folder_into_a_store(env, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("not symbols\n")
    dry = symtool("publish", INPUTS / "bigage.pdb", "--store", folder, "--dry-run", env=env)
    assert dry.returncode == 0 and sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert f"warning: {folder} is not empty and not a symbol store: would turn it into one" in dry.stderr
    proc = symtool("publish", INPUTS / "bigage.pdb", "--store", folder, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "turning it into one" in warnings[0]
    assert json.loads(proc.stdout)["warnings"] == [warnings[0][len("warning: "):]]
    # Now it is a store: no more warnings.
    again = symtool("publish", INPUTS / "dummyprog.pdb", "--store", folder, env=env)
    assert again.returncode == 0 and "warning" not in again.stderr


@pytest.mark.parametrize("kind", ["missing", "empty", "symsrv-cache"])
def test_no_warning_for_new_empty_or_store_folders(kind, env, tmp_path):
    folder = tmp_path / "s"
    if kind != "missing":
        folder.mkdir()
    if kind == "symsrv-cache":  # a downstream cache symsrv made: pingme.txt and keys, no 000Admin
        (folder / "pingme.txt").write_text("")
        (folder / "a.pdb").mkdir()
    proc = symtool("publish", INPUTS / "bigage.pdb", "--store", folder, env=env)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr


def test_show_columns_are_aligned(two_transactions, env, tmp_path):
    """Issue 26, item 14: `store show` lines up its columns (keys differ in length), under a header,
    as `store list` does."""
    store = two_transactions
    proc = symtool("publish", INPUTS / "dummyprog.exe", INPUTS / "dummylib.dll", INPUTS / "bigage.pdb", "--store",
                   store, "--compress", env=env)
    assert proc.returncode == 0, proc.stderr
    proc = symtool("store", "show", "3", "--store", store, env=env)
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()[1:]
    assert header.split() == ["KEY", "STORED", "AS", "SOURCE"] and len(rows) == 3
    shown = json.loads(symtool("store", "show", "3", "--store", store, "--json", env=env).stdout)["files"]
    assert len({len(shown_key) for shown_key in (f["key"] for f in shown)}) > 1  # keys of different lengths
    for column in ("STORED AS", "SOURCE"):
        at = header.index(column)
        for row, f in zip(rows, shown):
            value = f["stored_as"] if column == "STORED AS" else f["source"]
            assert row[at:].startswith(value) and row[at - 2:at] == "  ", (column, row)
