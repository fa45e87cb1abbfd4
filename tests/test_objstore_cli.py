"""The commands on ``s3://`` and ``azblob://`` stores, as subprocesses against SeaweedFS and
Azurite: publish, store list/show/delete/prune/verify, fetch with credentials, stores from
the manifest, and `symtool env` writing a store's public URL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid

import pytest

from cli_runner import symtool_in_process
from objstore_servers import client_env
from symtool.store.identify import identify

BIGAGE = ("bigage.pdb", "C9A61DDDD7E44353A668E39AC614A7EAa")


@pytest.fixture(params=["s3", "azure"])
def server(request):
    return request.getfixturevalue("seaweedfs" if request.param == "s3" else "azurite")


def symtool(args, env, cwd):
    proc = symtool_in_process(*map(str, args), env=env, cwd=cwd, timeout=180)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def cli_env(server, tmp_path) -> dict:
    env = client_env(server)
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "home" / ".cache"), NO_COLOR="1")
    return env


def test_publish_admin_and_fetch(server, fixtures_dir, tmp_path):
    env = cli_env(server, tmp_path)
    loc = server.location(f"cli-{uuid.uuid4().hex[:10]}")
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    proc = symtool(["publish", inputs / "bigage.pdb", inputs / "dummyprog.pdb", "--store", loc, "--product", "p",
                    "--json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["transaction"] == "0000000001" and out["summary"]["added"] == 2
    proc = symtool(["publish", inputs / "dummylib.pdb", "--store", loc, "--key-case", "exact"], env, tmp_path)
    assert proc.returncode == 0 and "transaction 0000000002" in proc.stdout, proc.stderr
    again = json.loads(symtool(["publish", inputs / "bigage.pdb", "--store", loc, "--json"], env, tmp_path).stdout)
    assert again["summary"]["present"] == 1 and again["transaction"] == "0000000003"

    rows = json.loads(symtool(["store", "list", "--store", loc, "--json"], env, tmp_path).stdout)["transactions"]
    assert [r["id"] for r in rows] == ["0000000001", "0000000002", "0000000003"]
    shown = json.loads(symtool(["store", "show", "1", "--store", loc, "--json"], env, tmp_path).stdout)
    assert {f["name"] for f in shown["files"]} == {"bigage.pdb", "dummyprog.pdb"}
    assert {f["stored_as"] for f in shown["files"]} == {"plain"}
    proc = symtool(["store", "delete", "2", "--store", loc, "--json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["del_records"] == ["0000000004"]
    proc = symtool(["store", "prune", "--keep-last", "1", "--store", loc, "--json"], env, tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["deleted"] == ["0000000001"], proc.stderr
    rows = json.loads(symtool(["store", "list", "--all", "--store", loc, "--json"], env, tmp_path).stdout)
    assert [(r["id"], r["deleted_by"]) for r in rows["transactions"]] == [
        ("0000000001", "0000000005"), ("0000000002", "0000000004"), ("0000000003", None)]
    proc = symtool(["store", "verify", "--store", loc, "--json"], env, tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"], proc.stdout
    proc = symtool(["store", "verify", "--repair", "--store", loc, "--json"], dict(env, SYMTOOL_STORE_GRACE="0"),
                   tmp_path)
    assert proc.returncode == 0, proc.stdout
    removed = {f["path"].split("/")[0] for f in json.loads(proc.stdout)["findings"]}
    assert removed == {"dummylib.pdb", "dummyprog.pdb"}  # bigage.pdb is still referenced by 3

    # fetch reads the store with credentials, checks the identity
    cache = tmp_path / "cache"
    proc = symtool(["fetch", "--pdb", BIGAGE[0], "--id", BIGAGE[1], "--server", loc, "--cache", cache, "--json"],
                   env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    (res,) = json.loads(proc.stdout)["results"]
    assert res["status"] == "fetched" and res["url"].startswith(loc)
    assert (cache / BIGAGE[0] / BIGAGE[1] / BIGAGE[0]).read_bytes() == (inputs / "bigage.pdb").read_bytes()
    proc = symtool(["fetch", "--pdb", "dummylib.pdb", "--id", identify(inputs / "dummylib.pdb").index,
                    "--server", loc, "--cache", cache, "--json"], env, tmp_path)
    assert proc.returncode == 1 and json.loads(proc.stdout)["results"][0]["status"] == "not-found"


def test_manifest_stores_and_env_public_url(seaweedfs, fixtures_dir, tmp_path):
    env = cli_env(seaweedfs, tmp_path)
    prefix = f"ws-{uuid.uuid4().hex[:10]}"
    loc = seaweedfs.location(prefix)
    ws = tmp_path / "ws"
    ws.mkdir()
    public = seaweedfs.public_url(prefix)
    (ws / "Cargo.toml").write_text(f'[workspace]\nmembers = []\n[workspace.metadata.symtool]\nstores = ["{loc}"]\n'
                                   f'cache = "{tmp_path / "c"}"\n'
                                   f'[workspace.metadata.symtool.public-urls]\n"{loc}" = "{public}"\n')
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    proc = symtool(["publish", inputs / "bigage.pdb", "--json"], env, ws)
    assert proc.returncode == 0 and json.loads(proc.stdout)["store"] == loc, proc.stderr
    proc = symtool(["store", "verify"], env, ws)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = symtool(["env", "--json"], env, ws)
    assert proc.returncode == 0, proc.stderr
    assert f"srv*{tmp_path / 'c'}*{public}" in proc.stdout
    assert "s3://" not in json.dumps(json.loads(proc.stdout).get("symbol_path", ""))
    # a plain HTTP client reads the public URL like any symbol server
    proc = symtool(["fetch", "--pdb", BIGAGE[0], "--id", BIGAGE[1], "--server", public, "--cache",
                    tmp_path / "c2", "--json"], env, ws)
    assert proc.returncode == 0 and json.loads(proc.stdout)["results"][0]["status"] == "fetched", proc.stderr


def test_pointer_refused_on_object_storage(seaweedfs, fixtures_dir, tmp_path):
    env = cli_env(seaweedfs, tmp_path)
    proc = symtool(["publish", fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb", "--pointer", "--store",
                    seaweedfs.location("ptr")], env, tmp_path)
    assert proc.returncode == 2 and "object storage cannot use it" in proc.stderr


def test_credentials_never_printed(seaweedfs, fixtures_dir, tmp_path):
    env = dict(cli_env(seaweedfs, tmp_path), AWS_SECRET_ACCESS_KEY="wrong-secret-value")
    proc = symtool(["publish", fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb", "--store",
                    seaweedfs.location("creds")], env, tmp_path)
    assert proc.returncode == 2
    assert "wrong-secret-value" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_dumps_find_pdbs_on_object_storage(server, fixtures_dir, tmp_path):
    """`symtool dumps` looks modules' PDBs up on s3:// / azblob:// stores (with credentials)."""
    from builders.minidump import codeview_rsds
    from symtool.dumps.triage import triage
    from symtool.store.objstore import ObjectStore
    from test_dumps import _write

    prefix = f"dumps-{uuid.uuid4().hex[:10]}"
    inputs = fixtures_dir / "symstore-exe" / "inputs"
    ObjectStore(server.backend(prefix)).publish([identify(inputs / "dummyprog.pdb")])
    index = "F6301B4562FE4B4DB691192733ECE6B71"
    dump = _write(tmp_path / "obj.dmp", modules=[
        {"name": "C:\\x\\dummyprog.exe", "base": 0x400000, "size": 0x6000, "timestamp": 0x12345678,
         "codeview": codeview_rsds(uuid.UUID(index[:32]).bytes_le, 1, "dummyprog.pdb")},
        {"name": "C:\\x\\other.dll", "base": 0x500000, "size": 0x6000, "timestamp": 0x12345678,
         "codeview": codeview_rsds(uuid.uuid4().bytes_le, 1, "other.pdb")},
    ], exception={"code": 0xC0000005, "address": 0x401000, "parameters": [0, 0]})
    row = next(triage([dump], [server.location(prefix)])).to_json()
    assert row["modules"][0]["pdb_found"] is True
    assert row["modules"][0]["pdb_path"].startswith(server.location(prefix))
    assert row["modules"][1]["pdb_found"] is False
    env = cli_env(server, tmp_path)
    proc = symtool(["dumps", "--store", server.location(prefix), "--json", dump], env, tmp_path)
    assert proc.returncode in (0, 1), proc.stderr


def skip_published_sequence(run, loc: str, inputs) -> None:
    """``publish --skip-published``: a re-run adds nothing; another product, a changed file
    set, a deleted transaction or --force each publish again."""
    files = [inputs / "bigage.pdb", inputs / "dummyprog.pdb"]

    def publish(*extra):
        proc = run(["publish", *files, "--store", loc, "--product", "p", "--version", "1", "--json", *extra])
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    first = publish("--skip-published")
    assert (first["transaction"], first["already_published"]) == ("0000000001", False)
    again = publish("--skip-published")
    assert (again["transaction"], again["already_published"]) == ("0000000001", True)
    assert again["summary"]["present"] == 2 and again["summary"]["added"] == 0
    text = run(["publish", *files, "--store", loc, "--product", "p", "--version", "1", "--skip-published"])
    assert "already published as transaction 0000000001" in text.stdout, text.stdout
    # Without the option, a transaction per publish, as symstore.exe does.
    plain = publish()
    assert (plain["transaction"], plain["already_published"]) == ("0000000002", False)
    # The newest transaction of the product decides: a subset is not "the same files".
    files.pop()
    subset = publish("--skip-published")
    assert (subset["transaction"], subset["already_published"]) == ("0000000003", False)
    assert publish("--skip-published")["already_published"] is True
    other = run(["publish", *files, "--store", loc, "--product", "q", "--version", "1", "--skip-published",
                 "--json"])
    assert json.loads(other.stdout)["transaction"] == "0000000004"
    assert publish("--skip-published", "--force")["transaction"] == "0000000005"
    # Once its transaction is deleted, the files are published again.
    assert run(["store", "delete", "5", "--store", loc]).returncode == 0
    assert run(["store", "delete", "3", "--store", loc]).returncode == 0
    back = publish("--skip-published")
    assert back["already_published"] is False and back["transaction"] == "0000000008"
    verify = run(["store", "verify", "--store", loc])
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_skip_published_object_stores(server, fixtures_dir, tmp_path):
    env = cli_env(server, tmp_path)
    loc = server.location(f"skip-{uuid.uuid4().hex[:10]}")
    skip_published_sequence(lambda args: symtool(args, env, tmp_path), loc,
                            fixtures_dir / "symstore-exe" / "inputs")


def test_skip_published_local_store(fixtures_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMTOOL")}
    env.update(HOME=str(tmp_path / "home"), NO_COLOR="1")
    skip_published_sequence(lambda args: symtool(args, env, tmp_path), str(tmp_path / "store"),
                            fixtures_dir / "symstore-exe" / "inputs")


def test_stack_fetches_from_object_storage(server, fixtures_dir, tmp_path):
    """`symtool stack --store s3://…|azblob://…` downloads the image and PDB with credentials into
    the cache and gives the same symbolized frames as a local store of the same files."""
    from symtool.store.backends.local import LocalBackend
    from symtool.store.objstore import ObjectStore

    prefix = f"stack-{uuid.uuid4().hex[:10]}"
    pe = fixtures_dir / "pe-pdb"
    items = [identify(pe / "crash.exe"), identify(pe / "crash.pdb")]
    ObjectStore(server.backend(prefix)).publish(items)
    local = tmp_path / "local-store"
    ObjectStore(LocalBackend(local)).publish(items)
    dump = fixtures_dir / "dumps" / "symbolic-windows-mini.dmp"
    env = cli_env(server, tmp_path)
    remote = symtool(["stack", "--json", "--store", server.location(prefix), dump], env, tmp_path)
    assert remote.returncode == 0, remote.stderr
    near = symtool(["stack", "--json", "--store", local, dump], env, tmp_path)
    assert near.returncode == 0, near.stderr
    frames = json.loads(remote.stdout)["threads"][0]["frames"]
    assert [f["function"] for f in frames] == [f["function"] for f in json.loads(near.stdout)["threads"][0]["frames"]]
    own = [f for f in frames if f["module"] == "crash.exe" and f["function"]]
    assert len(own) >= 3, frames
    cached = list((tmp_path / "home" / ".cache").rglob("crash.pdb"))
    assert cached, "the PDB was downloaded into the cache"


def test_manifest_s3_endpoint(seaweedfs, fixtures_dir, tmp_path):
    """``s3-endpoint`` in ``[workspace.metadata.symtool]`` reaches an S3-compatible service
    when no endpoint variable is set; SYMTOOL_S3_ENDPOINT still wins over it."""
    env = cli_env(seaweedfs, tmp_path)
    del env["SYMTOOL_S3_ENDPOINT"]
    loc = seaweedfs.location(f"ep-{uuid.uuid4().hex[:10]}")
    ws = tmp_path / "ws"
    ws.mkdir()
    manifest = ws / "Cargo.toml"
    manifest.write_text(f'[workspace]\nmembers = []\n[workspace.metadata.symtool]\nstores = ["{loc}"]\n'
                        f's3-endpoint = "{seaweedfs.endpoint}"\n')
    bigage = fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb"
    proc = symtool(["publish", bigage, "--json"], env, ws)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["added"] == 1
    # A dead endpoint in the manifest: exit 2 and one error line; the variable overrides it.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    manifest.write_text(manifest.read_text().replace(seaweedfs.endpoint, dead))
    proc = symtool(["store", "verify"], env, ws)
    assert proc.returncode == 2 and proc.stderr.startswith("error: "), proc.stderr
    proc = symtool(["store", "verify"], dict(env, SYMTOOL_S3_ENDPOINT=seaweedfs.endpoint), ws)
    assert proc.returncode == 0, proc.stdout + proc.stderr


WITHOUT_SDKS = ("import sys; sys.modules.update(dict.fromkeys(['boto3', 'botocore', 'azure', 'azure.core', "
                "'azure.storage', 'azure.storage.blob'])); from symtool.main import main; main()")


@pytest.mark.parametrize("scheme, extra", [("s3", "s3"), ("azblob", "azure")])
@pytest.mark.parametrize("argv", [
    ["publish", "{fixture}", "--store", "{loc}"],
    ["store", "list", "--store", "{loc}", "--json"],
    ["store", "init", "--store", "{loc}"],
    ["fetch", "--pdb", "bigage.pdb", "--id", BIGAGE[1], "--server", "{loc}"],
    ["dumps", "{dump}", "--store", "{loc}"],
    ["stack", "{dump}", "--store", "{loc}", "--json"],
], ids=lambda a: " ".join(a[:2]))
def test_object_storage_without_its_extra_is_one_line(argv, scheme, extra, fixtures_dir, tmp_path):
    """Issue 26, item 8: s3:// or azblob:// without the SDK (a None entry in sys.modules makes the
    import fail exactly as for a package not installed) is one error: line saying what to install,
    exit 2, not a ModuleNotFoundError traceback."""
    values = {"loc": f"{scheme}://bucket/prefix", "fixture": str(fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb"),
              "dump": str(fixtures_dir / "dumps" / "symbolic-windows-mini.dmp")}
    args = [a.format(**values) for a in argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMTOOL_", "_NT_", "AWS_", "AZURE_"))}
    proc = subprocess.run([sys.executable, "-c", WITHOUT_SDKS, *args], env=dict(env, HOME=str(tmp_path)),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert f"pip install 'cargo-symtool[{extra}]'" in lines[0]
    if "--json" in args:
        assert json.loads(proc.stdout)["error"]["exit_code"] == 2


def test_a_publish_with_every_file_refused_records_no_transaction(server, fixtures_dir, tmp_path):
    """Issue 26, item 14, on object storage (tests/test_publish_refused.py: the local store): the only
    file holds other bytes under a stored key, so it is refused, and no object changes (no claim, no
    history.txt or server.txt line, no transaction id consumed)."""
    env = cli_env(server, tmp_path)
    prefix = f"refused-{uuid.uuid4().hex[:10]}"
    loc = server.location(prefix)
    bigage = fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb"
    assert symtool(["publish", bigage, "--store", loc], env, tmp_path).returncode == 0
    other = tmp_path / "other" / "bigage.pdb"  # the same identity (GUID, age), its last byte changed
    other.parent.mkdir()
    data = bytearray(bigage.read_bytes())
    data[-1] ^= 0xFF
    other.write_bytes(bytes(data))
    backend = server.backend(prefix)

    def objects() -> dict[str, bytes]:
        return {o.key: backend.get(o.key).data for o in backend.list("")}

    before = objects()
    proc = symtool(["publish", other, "--store", loc, "--json"], env, tmp_path)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and [f["status"] for f in report["files"]] == ["refused"], proc.stdout
    assert report["transaction"] is None and objects() == before
    proc = symtool(["publish", fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb", "--store", loc, "--json"],
                   env, tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["transaction"] == "0000000002", proc.stdout
