"""One lookup order for every store and every command (issue 10).

The same store trees are looked up on the local file system
(:func:`symtool.store.layout.lookup`) and served by the real nginx, which
matches paths case-sensitively (:meth:`HttpServer.locate` and
:meth:`HttpServer.fetch`).  Each tree holds distinct bytes per form, so the
tests see which candidate won, not only that something was found.

The CLI regression at the end: ``symtool fetch`` and ``symtool dumps`` give
the same found/missing answer for one store (they used to disagree on a
lower-case-only store behind a case-sensitive server).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from symtool.store import layout
from symtool.store.http import HttpClient, HttpOptions

NAME, INDEX = "crash.pdb", "3249D99D0C4049318610F4E4FB0B69361"
PLAIN_BYTES = b"plain form"
CAB_BYTES = b"MSCF pretend cab"
TARGET_BYTES = b"file.ptr's target"


def key_dir(root: Path, name: str = NAME, index: str = INDEX, two_tier: bool = False) -> Path:
    d = root / layout.key_dir(name, index, two_tier)
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_pointer(d: Path, text: str) -> None:
    (d / layout.FILE_PTR).write_text(text)


# --- store trees: each builder writes one into ``root`` and says what the lookup must answer ----------
# The answer: (form, what identifies the winner: the bytes for plain/compressed, the target for a
# pointer, the message for MESSAGE) or None for "not in this store".

def tree_all_forms(root: Path, target: Path):
    d = key_dir(root)
    (d / NAME).write_bytes(PLAIN_BYTES)
    (d / "crash.pd_").write_bytes(CAB_BYTES)
    write_pointer(d, f"PATH:{target}")
    return layout.PLAIN, PLAIN_BYTES


def tree_compressed_and_pointer(root: Path, target: Path):
    d = key_dir(root)
    (d / "crash.pd_").write_bytes(CAB_BYTES)
    write_pointer(d, f"PATH:{target}")
    return layout.COMPRESSED, CAB_BYTES


def tree_pointer_only(root: Path, target: Path):
    write_pointer(key_dir(root), f"PATH:{target}")
    return layout.POINTER, str(target)


def tree_message_pointer(root: Path, target: Path):
    write_pointer(key_dir(root), "MSG:withdrawn, ask the release team")
    return layout.MESSAGE, "withdrawn, ask the release team"


def tree_lower_case_only(root: Path, target: Path):
    # What copying a Windows store onto a case-sensitive server often leaves.
    (key_dir(root, NAME.lower(), INDEX.lower()) / NAME.lower()).write_bytes(PLAIN_BYTES)
    return layout.PLAIN, PLAIN_BYTES


def tree_lower_case_compressed_after_exact_pointer(root: Path, target: Path):
    # The exact-case key's forms all come before any lower-case retry.
    write_pointer(key_dir(root), f"PATH:{target}")
    (key_dir(root, NAME.lower(), INDEX.lower()) / "crash.pd_").write_bytes(CAB_BYTES)
    return layout.POINTER, str(target)


def tree_two_tier(root: Path, target: Path):
    (root / layout.INDEX2).write_text("")
    (key_dir(root, two_tier=True) / NAME).write_bytes(PLAIN_BYTES)
    return layout.PLAIN, PLAIN_BYTES


def tree_two_tier_ignores_flat(root: Path, target: Path):
    # index2.txt decides the layout: a file at the flat place of a two-tier store is not the key's.
    (root / layout.INDEX2).write_text("")
    (key_dir(root) / NAME).write_bytes(PLAIN_BYTES)
    return None


def tree_flat_ignores_two_tier(root: Path, target: Path):
    (key_dir(root, two_tier=True) / NAME).write_bytes(PLAIN_BYTES)
    return None


def tree_other_index(root: Path, target: Path):
    (key_dir(root, NAME, "3249D99D0C4049318610F4E4FB0B69362") / NAME).write_bytes(PLAIN_BYTES)
    return None


TREES = [tree_all_forms, tree_compressed_and_pointer, tree_pointer_only, tree_message_pointer,
         tree_lower_case_only, tree_lower_case_compressed_after_exact_pointer, tree_two_tier,
         tree_two_tier_ignores_flat, tree_flat_ignores_two_tier, tree_other_index]


def test_candidates_order():
    got = [(c.rel, c.form) for c in layout.candidates("Crash.PDB", INDEX, two_tier=False)]
    assert got == [
        (f"Crash.PDB/{INDEX}/Crash.PDB", "plain"),
        (f"Crash.PDB/{INDEX}/Crash.PD_", "compressed"),
        (f"Crash.PDB/{INDEX}/file.ptr", "pointer"),
        (f"crash.pdb/{INDEX.lower()}/crash.pdb", "plain"),
        (f"crash.pdb/{INDEX.lower()}/crash.pd_", "compressed"),
        (f"crash.pdb/{INDEX.lower()}/file.ptr", "pointer"),
    ]
    two = [c.rel for c in layout.candidates(NAME, INDEX, two_tier=True)]
    assert two[0] == f"cr/{NAME}/{INDEX}/{NAME}" and two[3] == f"cr/{NAME}/{INDEX.lower()}/{NAME}"
    # An already lower-case key has no retry: the same place twice would be asked twice.
    assert len(layout.candidates(NAME, INDEX.lower(), two_tier=False)) == 3


def local_answer(store: Path):
    found = layout.lookup(store, NAME, INDEX)
    if found is None:
        return None
    if found.form == layout.POINTER:
        return found.form, found.target
    if found.form == layout.MESSAGE:
        return found.form, found.messages[0]
    return found.form, found.path.read_bytes()


def http_answer(client: HttpClient, url: str):
    server = client.server(url)
    located = server.locate(NAME, INDEX)
    sink = io.BytesIO()
    fetched = server.fetch(NAME, INDEX, sink)
    # locate (HEAD, used by `symtool dumps`) and fetch (GET, used by `symtool fetch`) agree.
    assert (located is None) == (fetched is None)
    if fetched is None:
        return None
    assert located.form == fetched.form
    if fetched.form == layout.POINTER:
        assert located.pointer == fetched.pointer
        return fetched.form, fetched.pointer
    if fetched.form == layout.MESSAGE:
        assert located.messages == fetched.messages
        return fetched.form, fetched.messages[0]
    return fetched.form, sink.getvalue()


@pytest.mark.parametrize("tree", TREES, ids=lambda t: t.__name__[5:])
def test_lookup_order_local_and_nginx(tree, nginx, tmp_path):
    target = tmp_path / "elsewhere" / NAME
    target.parent.mkdir()
    target.write_bytes(TARGET_BYTES)
    local = tmp_path / "store"
    local.mkdir()
    want = tree(local, target)
    assert local_answer(local) == want

    served = f"lookup-{tree.__name__}-{uuid.uuid4().hex[:8]}"
    shutil.copytree(local, nginx.www / served)
    with HttpClient(HttpOptions(retries=0)) as client:
        assert http_answer(client, nginx.url(served)) == want


def test_local_lookup_matches_any_case(tmp_path):
    # Windows shares: the exact-case key is found in a mixed-case tree too (symsrv does the same).
    (key_dir(tmp_path, "CRASH.pdb", INDEX.lower()) / "Crash.PDB").write_bytes(PLAIN_BYTES)
    found = layout.lookup(tmp_path, NAME, INDEX)
    assert found is not None and found.form == layout.PLAIN and found.path.read_bytes() == PLAIN_BYTES


def test_file_ptr_parsing_and_size_limit(tmp_path):
    assert layout.parse_file_ptr("PATH:\\\\server\\share\\a.pdb\r\n") == ("\\\\server\\share\\a.pdb", None)
    assert layout.parse_file_ptr("MSG:gone") == (None, "gone")
    big = tmp_path / "file.ptr"
    big.write_bytes(b"PATH:" + b"a" * layout.MAX_FILE_PTR_SIZE)
    from symtool.errors import FormatError

    with pytest.raises(FormatError, match="implausibly large"):
        layout.read_file_ptr(big)


def test_is_url():
    assert layout.is_url("https://symbols.example.com/store")
    assert layout.is_url("  HTTP://x/")
    assert not layout.is_url("\\\\server\\symbols")
    assert not layout.is_url("/srv/symbols")
    assert not layout.is_url("srv*C:\\cache*https://x")


# --- the same answer from `symtool fetch` and `symtool dumps` ------------------------------------------

DUMP_KEY = (NAME, INDEX)


def _symtool(args, env, cwd) -> subprocess.CompletedProcess:
    return symtool_in_process(*map(str, args), env=env, cwd=cwd, timeout=120)


def _fetch_found(dump: Path, store: str, env, tmp_path) -> bool:
    cache = tmp_path / f"cache-{uuid.uuid4().hex[:8]}"
    proc = _symtool(["fetch", "--dump", dump, "--server", store, "--cache", cache, "--json"], env, tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    results = [r for r in json.loads(proc.stdout)["results"] if (r["name"], r["index"]) == DUMP_KEY]
    assert len(results) == 1, proc.stdout
    assert results[0]["status"] in ("fetched", "not-found"), results[0]
    return results[0]["status"] == "fetched"


def _dumps_found(dump: Path, store: str, env, tmp_path) -> bool:
    proc = _symtool(["dumps", dump, "--store", store, "--json"], env, tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    (row,) = json.loads(proc.stdout)
    modules = [m for m in row["modules"] if m["pdb_store_path"] == f"{NAME}/{INDEX}/{NAME}"]
    assert len(modules) == 1, row["modules"]
    assert modules[0]["pdb_found"] is not None, modules[0]  # None: the server could not be asked
    return modules[0]["pdb_found"]


@pytest.mark.parametrize("layout_kind", ["lower-case-only", "as-recorded", "absent"])
def test_fetch_and_dumps_agree(layout_kind, nginx, fixtures_dir, env, tmp_path):
    dump = fixtures_dir / "dumps" / "symbolic-windows-mini.dmp"
    pdb = fixtures_dir / "pe-pdb" / "crash.pdb"
    local = tmp_path / "store"
    (local / "000Admin").mkdir(parents=True)
    if layout_kind == "lower-case-only":
        shutil.copy(pdb, key_dir(local, NAME.lower(), INDEX.lower()) / NAME.lower())
    elif layout_kind == "as-recorded":
        shutil.copy(pdb, key_dir(local) / NAME)
    served = f"agree-{layout_kind}-{uuid.uuid4().hex[:8]}"
    shutil.copytree(local, nginx.www / served)
    expected = layout_kind != "absent"
    for store in (str(local), nginx.url(served)):
        assert _fetch_found(dump, store, env, tmp_path) is expected, store
        assert _dumps_found(dump, store, env, tmp_path) is expected, store
