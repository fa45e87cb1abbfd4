"""Symbol stores on object storage against real servers: SeaweedFS (S3 API) and
Azurite (Azure Blob), plus the local-directory backend.

* the conformance replay gives objects byte-identical to symstore.exe's files
  (apart from dates, times and source paths);
* 8 processes x 20 publishes on one bucket lose nothing;
* SIGKILL at random points, then `store verify --repair`: consistent;
* anonymous HTTP clients (requests, `symtool fetch --server`) read the public bucket;
* the capability probe refuses a backend that ignores conditions.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from objstore_servers import client_env
from store_helpers import assert_matches_symstore_exe, pdb_variant
from symtool.errors import StoreError
from symtool.store import admin as adm
from symtool.store.backends.local import LocalBackend
from symtool.store.identify import identify
from symtool.store.objstore import ObjectStore, parse_history
from test_store_layout import REPLAY

WORKER = Path(__file__).resolve().parent / "objstore_worker.py"
RACERS, PUBLISHES = 8, 20
KILL_TRIALS = 20


@pytest.fixture(params=["s3", "azure"])
def server(request):
    return request.getfixturevalue("seaweedfs" if request.param == "s3" else "azurite")


def fresh_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def download(backend, dest: Path) -> Path:
    for o in backend.list(""):
        p = dest / o.key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(backend.get(o.key).data)
    return dest


def replay(store: ObjectStore, inputs: Path, name: str) -> None:
    for files, product, version in REPLAY[name]:
        txn, _ = store.publish([identify(inputs / f) for f in files], product=product, version=version)
        assert txn is not None


@pytest.mark.parametrize("name", sorted(REPLAY))
def test_replay_matches_symstore_exe(server, name, fixtures_dir, tmp_path):
    backend = server.backend(fresh_prefix())
    replay(ObjectStore(backend), fixtures_dir / "symstore-exe" / "inputs", name)
    ours = download(backend, tmp_path / "ours")
    assert_matches_symstore_exe(ours, fixtures_dir / "symstore-exe" / "stores" / name)
    assert (ours / "000Admin" / "lastid.txt").read_bytes().isdigit()  # 10 digits, no newline


@pytest.mark.parametrize("name", sorted(REPLAY))
def test_replay_local_backend(name, fixtures_dir, tmp_path):
    replay(ObjectStore(LocalBackend(tmp_path / "s")), fixtures_dir / "symstore-exe" / "inputs", name)
    assert_matches_symstore_exe(tmp_path / "s", fixtures_dir / "symstore-exe" / "stores" / name)


def test_key_case_lower(seaweedfs, fixtures_dir):
    backend = seaweedfs.backend(fresh_prefix())
    store = ObjectStore(backend, key_case="lower")
    store.publish([identify(fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb")])
    keys = {o.key for o in backend.list("")}
    assert "bigage.pdb/c9a61dddd7e44353a668e39ac614a7eaa/bigage.pdb" in keys
    assert not store.verify().unresolved


class IgnoresConditions(LocalBackend):
    """A backend that silently ignores If-None-Match / If-Match (old SeaweedFS, some gateways)."""

    def put(self, key, data, *, metadata=None, if_none_match=False, if_match=None):
        return super().put(key, data, metadata=metadata)


def test_probe_refuses_backend_ignoring_conditions(tmp_path, fixtures_dir):
    store = ObjectStore(IgnoresConditions(tmp_path / "s"))
    with pytest.raises(StoreError, match="ignores conditional writes"):
        store.publish([identify(fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb")])
    assert not any(p.is_file() for p in (tmp_path / "s").rglob("*"))  # nothing written but the probe, removed


def test_republish_is_present(server, fixtures_dir):
    store = ObjectStore(server.backend(fresh_prefix()))
    item = identify(fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb")
    _, first = store.publish([item])
    _, again = store.publish([item])
    assert [s for _, s, _ in first] == ["added"] and [s for _, s, _ in again] == ["present"]


def test_publish_downloads_history_once(server, fixtures_dir):
    """history.txt is read five times in a publish (claim, its check, roll-forward, the server.txt
    rewrite, the history rewrite); it is downloaded once, and the other reads are a HEAD that
    finds the same etag (issue 22 item 8: 2-3 s per read of a 300 MB history)."""
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    prefix = fresh_prefix()
    ObjectStore(server.backend(prefix)).publish([identify(inputs / "bigage.pdb")])
    backend = server.backend(prefix)
    reads: list[str] = []
    real = backend.open_read_info

    def counted(key):
        reads.append(key)
        return real(key)

    backend.open_read_info = counted
    store = ObjectStore(backend)
    txn, _ = store.publish([identify(inputs / "dummylib.pdb")])
    assert txn == "0000000002"
    assert reads.count("000Admin/history.txt") == 1, reads
    check_consistent(store, {"0000000001", "0000000002"})


def test_kept_history_copy_is_not_used_once_changed(server, fixtures_dir):
    """A store object that read history.txt before another publisher wrote it reads it again
    (the HEAD's etag differs): its next id follows the other's, nothing is lost."""
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    prefix = fresh_prefix()
    a, b = ObjectStore(server.backend(prefix)), ObjectStore(server.backend(prefix))
    assert a.publish([identify(inputs / "bigage.pdb")])[0] == "0000000001"
    assert b.publish([identify(inputs / "dummylib.pdb")])[0] == "0000000002"
    assert sorted(a.history().records) == ["0000000001", "0000000002"]
    assert a.publish([identify(inputs / "bigage.pdb")], product="again")[0] == "0000000003"
    check_consistent(a, {"0000000001", "0000000002", "0000000003"})


# --- consistency -----------------------------------------------------------------------------


def check_consistent(store: ObjectStore, expect_ids: set[str] | None = None) -> None:
    """Every record accounts for every transaction exactly once, and verify agrees."""
    backend = store.backend
    hist_blob = backend.get("000Admin/history.txt")
    hist = parse_history(hist_blob.data if hist_blob else b"")
    lines = adm.split_lines(hist_blob.data if hist_blob else b"")  # the text itself: History keeps records only
    ids = [adm.parse_admin_line(ln).id for ln in lines]
    assert ids == sorted(ids) and len(ids) == len(set(ids)), "history.txt: ids in order, each once"
    assert all(adm.parse_admin_line(ln) is not None for ln in lines)
    if expect_ids is not None:
        assert expect_ids <= set(ids)
    if ids:
        assert backend.get("000Admin/lastid.txt").data == ids[-1].encode()
    live = hist.live()
    server = [adm.parse_admin_line(ln).id for ln in store.server_lines()]
    assert server == live, "server.txt lists exactly the live transactions, once each"
    refs_ids: dict[str, list[str]] = {}
    for o in backend.list(""):
        if o.key.endswith("/refs.ptr"):
            lines = adm.split_lines(backend.get(o.key).data)
            got = [adm.parse_ref_line(ln).id for ln in lines]
            assert len(got) == len(set(got)), o.key
            refs_ids[o.key.rsplit("/", 1)[0]] = got
    for tid in live:
        for e in store.entries_of(tid):
            d = store.entry_dir(e.name, e.index)
            assert refs_ids.get(d, []).count(tid) == 1, (tid, d)
    report = store.verify()
    assert not report.unresolved, [f.to_json() for f in report.unresolved]


def variants(fixtures_dir: Path, dest: Path, count: int) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    src = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"
    out = []
    for n in range(count):
        d = dest / f"v{n}"
        d.mkdir()
        out.append(pdb_variant(src, d / "dummyprog.pdb", n))
    return out


@pytest.mark.slow
def test_racing_publishers_lose_nothing(server, fixtures_dir, tmp_path):
    prefix = fresh_prefix()
    files = variants(fixtures_dir, tmp_path / "v", RACERS * PUBLISHES)
    shared = fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb"
    env = client_env(server)
    procs = [subprocess.Popen([sys.executable, str(WORKER), server.location(prefix), str(shared),
                               *map(str, files[i * PUBLISHES:(i + 1) * PUBLISHES])],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(RACERS)]
    committed: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        committed.extend(w for w in out.split() if w != "ready")
    assert len(committed) == RACERS * PUBLISHES == len(set(committed))
    store = ObjectStore(server.backend(prefix))
    check_consistent(store, set(committed))
    hist = store.history()
    assert set(hist.live()) == set(committed)
    assert [int(i) for i in sorted(committed)] == list(range(1, RACERS * PUBLISHES + 1))
    shared_refs = adm.split_lines(store.backend.get(store.refs_key(*_key(shared))).data)
    assert sorted(adm.parse_ref_line(ln).id for ln in shared_refs) == sorted(committed)
    for f in files:
        name, index = _key(f)
        refs = adm.split_lines(store.backend.get(store.refs_key(name, index)).data)
        assert len(refs) == 1


def _key(path: Path) -> tuple[str, str]:
    item = identify(path)
    return item.name, item.index


@pytest.mark.slow
def test_sigkill_then_repair_is_consistent(server, fixtures_dir, tmp_path):
    prefix = fresh_prefix()
    files = variants(fixtures_dir, tmp_path / "v", KILL_TRIALS * 3)
    shared = fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb"
    env = client_env(server)
    rng = random.Random(14)
    store = ObjectStore(server.backend(prefix))
    committed: set[str] = set()
    for trial in range(KILL_TRIALS):
        p = subprocess.Popen([sys.executable, str(WORKER), server.location(prefix), str(shared),
                              *map(str, files[trial * 3:(trial + 1) * 3])],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.8))  # three publishes take about that long: kills land in every phase
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate(timeout=30)
        committed.update(out.split())
        if next(iter(store.backend.list("")), None) is None:
            continue  # killed before its first write
        report = store.verify(repair=True, environ={"SYMTOOL_STORE_GRACE": "0"})
        assert not report.unresolved, [f.to_json() for f in report.unresolved]
        if next(iter(store.backend.list("")), None) is None:
            assert not committed
            continue  # nothing was committed: repair removed the payloads of the killed publish
        check_consistent(store, committed)
        # Nothing left that no live transaction references.
        assert store.verify(environ={"SYMTOOL_STORE_GRACE": "0"}).findings == []


def test_anonymous_http_and_symtool_fetch(server, fixtures_dir, tmp_path, env):
    import requests

    prefix = fresh_prefix()
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    store = ObjectStore(server.backend(prefix))
    items = [identify(inputs / f) for f in ("bigage.pdb", "dummyprog.exe")]
    store.publish(items)
    base = server.public_url(prefix)
    for item in items:
        r = requests.get(f"{base}/{item.name}/{item.index}/{item.name}", timeout=10)
        assert r.status_code == 200 and r.content == item.path.read_bytes()
    r = requests.get(f"{base}/000Admin/lastid.txt", timeout=10)
    assert r.status_code == 200 and r.content == b"0000000001"
    proc = subprocess.run([sys.executable, "-m", "symtool", "fetch", "--pdb", "bigage.pdb", "--id", items[0].index,
                           "--server", base, "--cache", str(tmp_path / "cache"), "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (res,) = json.loads(proc.stdout)["results"]
    assert res["status"] == "fetched"
    assert Path(res["path"]).read_bytes() == (inputs / "bigage.pdb").read_bytes()


def test_delete_then_repair_removes_payloads(server, fixtures_dir):
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    store = ObjectStore(server.backend(fresh_prefix()))
    replay(store, inputs, "pe_store")
    rep = store.delete(["2"])
    assert rep.deleted == ["0000000002"] and rep.del_ids == ["0000000004"]
    keys = {o.key for o in store.backend.list("")}
    assert "000Admin/0000000002.deleted" in keys and "000Admin/0000000002" not in keys
    assert "000Admin/0000000004" not in keys
    check_consistent(store)
    assert adm.split_lines(store.backend.get("000Admin/history.txt").data)[-1] == "0000000004,del,0000000002"
    store.verify(repair=True, environ={"SYMTOOL_STORE_GRACE": "0"})
    keys = {o.key for o in store.backend.list("")}
    assert not any(k.startswith("dummylib.pdb/") for k in keys)
    check_consistent(store)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
def test_pdbparse_symchk_reads_the_public_bucket(seaweedfs, fixtures_dir, tmp_path, env, compress):
    """A client nobody here wrote (pdbparse's symchk.py) downloads from the public-read bucket."""
    from conftest import need_tool
    from test_third_party_client import _symchk

    script = _symchk()
    need_tool("cabextract")
    prefix = fresh_prefix()
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    # dummyprog.exe's CodeView record names the PDB by its original name.
    pdb = tmp_path / "ConsoleApplication1.pdb"
    pdb.write_bytes((inputs / "dummyprog.pdb").read_bytes())
    ObjectStore(seaweedfs.backend(prefix)).publish([identify(pdb)], compress=compress)
    work = tmp_path / "client"
    work.mkdir()
    proc = subprocess.run([sys.executable, str(script), "-u", seaweedfs.public_url(prefix),
                           str(inputs / "dummyprog.exe")], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    got = work / "ConsoleApplication1.pdb"
    assert got.is_file(), proc.stdout + proc.stderr
    assert got.read_bytes() == pdb.read_bytes()


def test_other_bytes_under_a_key_need_force(seaweedfs, fixtures_dir, tmp_path):
    src = fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb"
    other = tmp_path / "bigage.pdb"
    data = bytearray(src.read_bytes())
    data[-1] ^= 0xFF  # same identity (key), other bytes
    other.write_bytes(bytes(data))
    assert identify(other).index == identify(src).index
    store = ObjectStore(seaweedfs.backend(fresh_prefix()))
    store.publish([identify(src)])
    txn, res = store.publish([identify(other)])
    assert txn is None and [s for _, s, _ in res] == ["refused"]
    txn, res = store.publish([identify(other)], force=True)
    assert txn == "0000000002" and [s for _, s, _ in res] == ["added"]
    key = store.payload_key(*_key(src), "plain")
    assert store.backend.get(key).data == bytes(data)
    check_consistent(store)


def test_s3_multipart_upload_keeps_the_conditions(seaweedfs, fixtures_dir, tmp_path):
    """Files over PutObject's limit go up in parts; create-only and compare-and-swap still hold
    (conditions on CompleteMultipartUpload), and a refused upload leaves no parts behind.  The
    limit is lowered here so that 11 MiB files take the multipart path."""
    backend = seaweedfs.backend(fresh_prefix())
    backend.single_put_limit, backend.part_size = 8 << 20, 5 << 20
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(os.urandom(11 << 20))
    second.write_bytes(os.urandom(11 << 20))
    etag = backend.put("k/big.pdb", first, metadata={"symtoolsize": "1"}, if_none_match=True)
    assert etag and etag.strip('"').endswith("-3")  # three parts
    assert backend.put("k/big.pdb", second, if_none_match=True) is None
    blob = backend.get("k/big.pdb")
    assert blob.data == first.read_bytes() and blob.metadata.get("symtoolsize") == "1"
    assert backend.put("k/big.pdb", second, if_match='"not-the-etag"') is None
    assert backend.put("k/big.pdb", second, if_match=etag) is not None
    assert backend.get("k/big.pdb").data == second.read_bytes()
    pending = backend.client.list_multipart_uploads(Bucket=backend.bucket, Prefix=backend.prefix)
    assert not pending.get("Uploads"), pending
    # Through the store: a publish of a file over the limit, then verify.
    store = ObjectStore(backend)
    big = pdb_variant(fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb", tmp_path / "dummyprog.pdb", 7)
    with open(big, "ab") as f:
        f.write(os.urandom(9 << 20))  # past the lowered limit; the identity is in the first pages
    txn, results = store.publish([identify(big)])
    assert txn and [s for _, s, _ in results] == ["added"]
    key = store.payload_key(*results[0][0].key.split("/")[:2], "plain")
    assert backend.get(key).data == big.read_bytes()
    assert not store.verify().unresolved


def test_azure_block_upload_keeps_the_conditions(azurite, tmp_path):
    """Blobs over the SDK's single-put size (64 MiB) are uploaded as blocks; the create-only and
    compare-and-swap conditions still hold on the final commit, so racing publishers of large
    files cannot overwrite each other."""
    backend = azurite.backend(fresh_prefix())
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(os.urandom(70 << 20))
    second.write_bytes(os.urandom(70 << 20))
    etag = backend.put("k/big.pdb", first, if_none_match=True)
    assert etag
    assert backend.put("k/big.pdb", second, if_none_match=True) is None
    assert backend.put("k/big.pdb", second, if_match='"0x8D000000BAD0000"') is None
    assert backend.get("k/big.pdb").data == first.read_bytes()
    assert backend.put("k/big.pdb", second, if_match=etag) is not None
    assert backend.get("k/big.pdb").data == second.read_bytes()
