"""`symtool fetch --dump`: the PDB (and image) of every module of a minidump, from a real nginx.

The store is published with symtool's own HTTP PUT client into the nginx
fixture's open WebDAV location, then read back by `python -m symtool fetch`
subprocesses, so the tests see exit codes, stdout/stderr and the cache exactly
as a user does.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from builders.minidump import build_minidump, codeview_rsds
from fetch_helpers import all_files, run
from nginx_server import free_port
from symtool.formats.minidump import read_minidump
from symtool.formats.pdb import read_pdb
from symtool.formats.pe import read_pe

CRASH_PDB = ("crash.pdb", "3249D99D0C4049318610F4E4FB0B69361")
CRASH_EXE = ("crash.exe", "5AB380779000")


@pytest.fixture(scope="module")
def crash_store(nginx, fixtures_dir):
    """crash.pdb and crash.exe published over HTTP PUT; returns the store URL."""
    from symtool.store.http import HttpClient, HttpOptions, publish_http
    from symtool.store.items import PublishItem

    pdb = fixtures_dir / "pe-pdb" / "crash.pdb"
    exe = fixtures_dir / "pe-pdb" / "crash.exe"
    assert read_pdb(str(pdb)).index == CRASH_PDB[1] and read_pe(str(exe)).index == CRASH_EXE[1]
    items = [PublishItem(pdb, "crash.pdb", CRASH_PDB[1], "pri", pdb.stat().st_size),
             PublishItem(exe, "crash.exe", CRASH_EXE[1], "bin", exe.stat().st_size)]
    url = nginx.url(f"upload-open/dumpstore-{os.getpid()}")
    with HttpClient(HttpOptions(retries=1), environ={}) as client:
        results = publish_http(url, items, client=client)
    assert {r["status"] for r in results} <= {"uploaded", "present"}, results
    return url


@pytest.fixture
def mini(fixtures_dir) -> Path:
    return fixtures_dir / "dumps" / "symbolic-windows-mini.dmp"


def module_results(out: dict) -> dict[str, dict]:
    return {m["module"]: m for m in out["modules"]}


def test_dump_fetches_crash_pdb_and_reports_system_dlls(crash_store, fixtures_dir, mini, env, tmp_path):
    cache = tmp_path / "cache"
    proc = run(["--dump", mini, "--server", crash_store, "--cache", cache, "--json"], env, tmp_path)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    dump = read_minidump(mini)
    mods = module_results(out)
    assert len(out["modules"]) == len(dump.modules) == 17
    crash = mods["crash.exe"]
    assert crash["status"] == "fetched"
    (res,) = crash["results"]
    assert res["kind"] == "pdb" and res["module"] == "crash.exe"
    assert (res["name"], res["index"], res["status"]) == (*CRASH_PDB, "fetched")
    final = cache / CRASH_PDB[0] / CRASH_PDB[1] / CRASH_PDB[0]
    assert res["path"] == str(final) and res["url"].startswith(crash_store)
    assert final.read_bytes() == (fixtures_dir / "pe-pdb" / "crash.pdb").read_bytes()
    assert read_pdb(str(final)).index == CRASH_PDB[1]
    # Every other module names a Windows system PDB that is not in this store: its key, not found.
    for m in dump.modules[1:]:
        entry = mods[m.file_name]
        (r,) = entry["results"]
        assert entry["status"] == "not-found"
        assert (r["name"], r["index"], r["status"]) == (m.pdb_name, m.debug_id.index(), "not-found")
    # The flat list has the same results, with the module name.
    assert [(r["module"], r["status"]) for r in out["results"]] == \
        [(m["module"], m["results"][0]["status"]) for m in out["modules"]]
    assert all_files(cache) == [final]
    assert "16 file(s) not found on 1 server(s)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

    # Second run: nothing downloaded again (the file is untouched and reported as cached).
    mtime = final.stat().st_mtime_ns
    proc = run(["--dump", mini, "--server", crash_store, "--cache", cache, "--json"], env, tmp_path)
    assert proc.returncode == 1
    (res,) = module_results(json.loads(proc.stdout))["crash.exe"]["results"]
    assert res["status"] == "cached" and res["url"] is None
    assert final.stat().st_mtime_ns == mtime
    assert all_files(cache) == [final]


def test_dump_binary_fetches_image_too_text_output(crash_store, fixtures_dir, mini, env, tmp_path):
    cache = tmp_path / "cache"
    proc = run(["--dump", mini, "--binary", "--server", crash_store, "--cache", cache], env, tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 17 + 1  # one line per module, then the summary
    assert lines[0].startswith("crash.exe: pdb fetched crash.pdb/") and "; image fetched crash.exe/" in lines[0]
    assert lines[1].startswith("ntdll.dll: pdb not-found wntdll.pdb/") and "image not-found ntdll.dll/" in lines[1]
    assert lines[-1].startswith("17 modules, 34 files: 2 fetched, 0 cached, 32 not-found, 0 error")
    exe = cache / CRASH_EXE[0] / CRASH_EXE[1] / CRASH_EXE[0]
    assert exe.read_bytes() == (fixtures_dir / "pe-pdb" / "crash.exe").read_bytes()
    assert read_pe(str(exe)).index == CRASH_EXE[1]
    assert len(all_files(cache)) == 2


def test_dump_everything_found_is_exit_0(nginx, fixtures_dir, env, tmp_path):
    """A dump whose only module is crash.exe: all fetched -> 0, then all cached -> 0."""
    src = fixtures_dir / "pe-pdb" / "crash.pdb"
    dump = read_minidump(fixtures_dir / "dumps" / "symbolic-windows-mini.dmp").modules[0]
    path = tmp_path / "one.dmp"
    path.write_bytes(build_minidump(modules=[{
        "name": dump.name, "base": dump.base, "size": dump.size, "timestamp": dump.timestamp,
        "codeview": codeview_rsds(dump.debug_id.guid.bytes_le, dump.debug_id.age, dump.pdb_path)}]))
    # A store laid out directly in nginx's document root (as symstore writes it).
    store = nginx.www / f"dump-one-{tmp_path.name}"
    (store / CRASH_PDB[0] / CRASH_PDB[1]).mkdir(parents=True)
    (store / CRASH_PDB[0] / CRASH_PDB[1] / CRASH_PDB[0]).write_bytes(src.read_bytes())
    cache = tmp_path / "cache"
    for status in ("fetched", "cached"):
        proc = run(["--dump", path, "--server", nginx.url(store.name), "--cache", cache, "--json"], env, tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert [r["status"] for r in json.loads(proc.stdout)["results"]] == [status]
        assert proc.stderr == ""


def test_wrong_file_from_server_is_an_error_and_not_cached(nginx, fixtures_dir, mini, env, tmp_path):
    store = nginx.www / f"dump-wrong-{tmp_path.name}"
    (store / CRASH_PDB[0] / CRASH_PDB[1]).mkdir(parents=True)
    (store / CRASH_PDB[0] / CRASH_PDB[1] / CRASH_PDB[0]).write_bytes(
        (fixtures_dir / "pe-pdb" / "dump_syms_regtest64.pdb").read_bytes())
    cache = tmp_path / "cache"
    proc = run(["--dump", mini, "--server", nginx.url(store.name), "--cache", cache, "--json"], env, tmp_path)
    assert proc.returncode == 2
    crash = module_results(json.loads(proc.stdout))["crash.exe"]
    assert crash["status"] == "error" and "wrong file for this key" in crash["results"][0]["errors"][0]
    assert "wrong file for this key" in proc.stderr
    assert all_files(cache) == []


def test_dead_server_is_reported_once(mini, env, tmp_path):
    cache = tmp_path / "cache"
    dead = f"http://127.0.0.1:{free_port()}/store"
    proc = run(["--dump", mini, "--server", dead, "--cache", cache, "--json"], env, tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "connection refused" in lines[0], proc.stderr
    out = json.loads(proc.stdout)
    assert {r["status"] for r in out["results"]} == {"error"}
    assert all("connection refused" in r["errors"][0] for r in out["results"])
    assert all_files(cache) == []


def test_dead_server_then_good_server(crash_store, mini, env, tmp_path):
    cache = tmp_path / "cache"
    dead = f"http://127.0.0.1:{free_port()}/store"
    proc = run(["--dump", mini, "--server", dead, "--server", crash_store, "--cache", cache, "--json"],
               env, tmp_path)
    # Each key failed on the dead server: errors (exit 2), but crash.pdb still came from the second one.
    assert proc.returncode == 2
    crash = module_results(json.loads(proc.stdout))["crash.exe"]["results"][0]
    assert crash["status"] == "fetched" and len(crash["errors"]) == 1
    assert (cache / CRASH_PDB[0] / CRASH_PDB[1] / CRASH_PDB[0]).is_file()


def _hostile_dump(path: Path, fixtures_dir) -> Path:
    real = read_minidump(fixtures_dir / "dumps" / "symbolic-windows-mini.dmp").modules[0]
    guid, age = real.debug_id.guid.bytes_le, real.debug_id.age
    mods = [
        {"name": real.name, "base": 0x400000, "size": real.size, "timestamp": real.timestamp,
         "codeview": codeview_rsds(guid, age, real.pdb_path)},
        {"name": r"C:\w\con.dll", "base": 0x500000, "size": 0x1000, "timestamp": 0x11111111,
         "codeview": codeview_rsds(guid, age, r"C:\w\CON.pdb")},
        {"name": r"C:\w\ok.dll", "base": 0x600000, "size": 0x1000, "timestamp": 0x22222222,
         "codeview": codeview_rsds(guid, age, "x.pdb\x01")},
        {"name": "..", "base": 0x700000, "size": 0x1000, "timestamp": 0x33333333,
         "codeview": codeview_rsds(guid, age, r"..\..\..\a:b.pdb ")},
        {"name": r"C:\w\nocv.dll", "base": 0x800000, "size": 0x1000, "timestamp": 0x44444444},
        {"name": r"C:\w\badcv.dll", "base": 0x900000, "size": 0x1000, "timestamp": 0x55555555,
         "codeview": b"RSDS\x01\x02"},
        {"name": r"C:\w\nb10.dll", "base": 0xA00000, "size": 0x1000, "timestamp": 0x66666666,
         "codeview": b"NB10" + struct.pack("<III", 0, 0x3A2B1C0D, 2) + b"legacy.pdb\0"},
    ]
    path.write_bytes(build_minidump(modules=mods))
    return path


def test_hostile_names_are_errors_never_paths(crash_store, fixtures_dir, env, tmp_path):
    dump = _hostile_dump(tmp_path / "hostile.dmp", fixtures_dir)
    cache = tmp_path / "cache"
    proc = run(["--dump", dump, "--binary", "--server", crash_store, "--cache", cache, "--json"], env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    out = json.loads(proc.stdout)
    mods = {m["base"]: m for m in out["modules"]}
    assert mods["0x400000"]["results"][0]["status"] == "fetched"
    con = {r["kind"]: r for r in mods["0x500000"]["results"]}
    assert con["pdb"]["status"] == "error" and con["pdb"]["key"] is None and "reserved" in con["pdb"]["errors"][0]
    assert con["image"]["status"] == "error" and con["image"]["key"] is None
    ctl = {r["kind"]: r for r in mods["0x600000"]["results"]}
    assert ctl["pdb"]["status"] == "error" and "control character" in ctl["pdb"]["errors"][0]
    assert ctl["image"]["status"] == "not-found"  # ok.dll itself is a fine name
    dots = {r["kind"]: r for r in mods["0x700000"]["results"]}
    assert dots["pdb"]["status"] == "error" and dots["image"]["status"] == "error"
    nocv = mods["0x800000"]
    assert [r["kind"] for r in nocv["results"]] == ["image"] and "no CodeView record" in nocv["notes"][0]
    bad = {r["kind"]: r for r in mods["0x900000"]["results"]}
    assert bad["pdb"]["status"] == "error" and "truncated RSDS" in bad["pdb"]["errors"][0]
    nb10 = {r["kind"]: r for r in mods["0xa00000"]["results"]}
    assert nb10["pdb"]["name"] == "legacy.pdb" and nb10["pdb"]["index"] == "3A2B1C0D2"
    assert nb10["pdb"]["status"] == "not-found"
    # Nothing was written but crash.exe's pair (no files from hostile names, anywhere near the cache).
    assert all_files(cache) == [cache / CRASH_EXE[0] / CRASH_EXE[1] / CRASH_EXE[0],
                                cache / CRASH_PDB[0] / CRASH_PDB[1] / CRASH_PDB[0]]
    assert {p.name for p in tmp_path.iterdir()} <= {"cache", "home", "hostile.dmp"}
    # Each problem is one stderr line.
    assert "reserved device name" in proc.stderr and "truncated RSDS" in proc.stderr
    # Text mode: a line per module, still exit 2.
    proc = run(["--dump", dump, "--binary", "--server", crash_store, "--cache", cache], env, tmp_path)
    assert proc.returncode == 2
    assert len(proc.stdout.strip().splitlines()) == 7 + 1


def test_bad_dump_files_are_one_line_exit_2(mini, env, tmp_path):
    data = mini.read_bytes()
    cases = {
        "truncated.dmp": data[:1000],
        "random.dmp": bytes((i * 7919 + 13) % 251 for i in range(4096)),
        "empty.dmp": b"",
        "mdmp-garbage.dmp": b"MDMP\x93\xa7\0\0" + b"\xff" * 200,
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        cache = tmp_path / f"cache-{name}"
        proc = run(["--dump", path, "--server", "http://127.0.0.1:1/x", "--cache", cache], env, tmp_path)
        assert proc.returncode == 2, (name, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], (name, proc.stderr)
        assert proc.stdout == "" and not cache.exists()
    proc = run(["--dump", tmp_path / "missing.dmp", "--server", "http://127.0.0.1:1/x"], env, tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "missing.dmp" in proc.stderr


def test_linux_dump_fetches_by_build_id(fixtures_dir, env, tmp_path):
    """A Linux dump's modules are asked for by build id: binary, .dwp and debug file under their
    SSQP keys; only the binary counts as missing (the DWARF may be in any of the three)."""
    dump = fixtures_dir / "dumps" / "rm-linux-mini.dmp"
    modules = [m for m in read_minidump(dump).modules if m.build_id is not None]
    assert modules
    server = tmp_path / "empty-store"
    server.mkdir()
    proc = run(["--dump", dump, "--server", server, "--cache", tmp_path / "cache", "--json"], env, tmp_path)
    out = json.loads(proc.stdout)
    assert out["platform"] == "linux"
    keys = {(r["kind"], r["key"]) for r in out["results"]}
    for m in modules:
        name, build_id = Path(m.name).name, m.build_id.hex()
        assert ("image", f"{name}/elf-buildid-{build_id}/{name}") in keys
        assert ("dwp", f"{name}.dwp/elf-buildid-{build_id}/{name}.dwp") in keys
        assert ("debuginfo", f"_.debug/elf-buildid-sym-{build_id}/_.debug") in keys
    assert {r["status"] for r in out["results"]} == {"not-found"}
    assert proc.returncode == 1, proc.stderr
    assert f"{len(modules)} file(s) not found" in proc.stderr  # the binaries, not their optional DWARF


def test_usage_errors(mini, env, tmp_path):
    for args in (["--dump", mini, "--pdb", "a.pdb", "--id", CRASH_PDB[1]], ["--dump", mini, "--exe", mini],
                 ["--dump", mini]):  # last: no servers configured anywhere
        proc = run([*args, "--cache", tmp_path / "c"], env, tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


# --- library level ------------------------------------------------------------------------------------

def test_plan_and_fetch_dump_fetch_each_key_once(fixtures_dir, tmp_path):
    from symtool.store.fetch import CACHED, FETCHED, NOT_FOUND, Fetcher, fetch_dump, pending_keys, plan_dump

    real = read_minidump(fixtures_dir / "dumps" / "symbolic-windows-mini.dmp").modules[0]
    cv = codeview_rsds(real.debug_id.guid.bytes_le, real.debug_id.age, real.pdb_path)
    path = tmp_path / "twice.dmp"
    # The same module loaded twice (two mappings): one key, fetched once.
    path.write_bytes(build_minidump(modules=[
        {"name": real.name, "base": 0x400000, "size": real.size, "timestamp": real.timestamp, "codeview": cv},
        {"name": real.name.upper(), "base": 0x800000, "size": real.size, "timestamp": real.timestamp, "codeview": cv},
    ]))
    store = tmp_path / "store"
    (store / CRASH_PDB[0] / CRASH_PDB[1]).mkdir(parents=True)
    (store / CRASH_PDB[0] / CRASH_PDB[1] / CRASH_PDB[0]).write_bytes((fixtures_dir / "pe-pdb" / "crash.pdb").read_bytes())
    plans = plan_dump(read_minidump(path), binary=True)
    assert pending_keys(plans) == [("crash.pdb", CRASH_PDB[1]), ("crash.exe", CRASH_EXE[1])]
    calls = []

    class Counting(Fetcher):
        def fetch(self, name, index):
            calls.append((name, index))
            return super().fetch(name, index)

    seen = []
    with Counting([str(store)], tmp_path / "cache") as fetcher:
        fetch_dump(plans, fetcher, on_module=lambda p: seen.append(p.module))
    assert len(calls) == 2 and seen == ["crash.exe", "CRASH.EXE"]
    assert [(k, r.status) for k, r in plans[0].results] == [("pdb", FETCHED), ("image", NOT_FOUND)]
    assert plans[1].results[0][1] is plans[0].results[0][1]
    with Fetcher([str(store)], tmp_path / "cache") as fetcher:
        assert fetcher.fetch(*CRASH_PDB).status == CACHED


def test_dump_progress_bar_runs():
    from symtool.commands.fetch import _DumpProgress
    from symtool.store.fetch import ModuleFetch

    bar = _DumpProgress(2)
    progress = bar._progress
    (modules,) = progress.tasks
    assert bar.start("small.pdb", 1000) is None and len(progress.tasks) == 1  # no bar for small files
    advance = bar.start("big.pdb", 64 << 20)
    transfer = progress.tasks[1]
    advance(1 << 20)
    advance(2 << 20)
    assert (transfer.description, transfer.total, transfer.completed) == ("  big.pdb", 64 << 20, 3 << 20)
    bar.stop()
    bar.stop()  # a second stop is harmless
    assert progress.tasks == [modules]  # the transfer's bar is removed, the modules' bar stays
    bar.module_done(ModuleFetch("a.dll", r"C:\a.dll", 0))
    assert (modules.description, modules.total, modules.completed) == ("a.dll", 2, 1)
    bar.close()
    assert not progress.live.is_started


def test_failed_server_probe_is_remembered_for_later_keys(tmp_path):
    from symtool.store.fetch import ERROR, Fetcher
    from symtool.store.http import HttpClient, HttpOptions

    dead = f"http://127.0.0.1:{free_port()}/store"
    keys = [CRASH_PDB, ("other.pdb", "0123456789ABCDEF0123456789ABCDEF1"), CRASH_EXE]
    for remember, expected_requests in ((True, 1), (False, len(keys))):
        with HttpClient(HttpOptions(retries=0), environ={}) as client:
            calls = []
            real = client.request
            client.request = lambda *a, **kw: (calls.append(a[1]), real(*a, **kw))[1]
            with Fetcher([dead], tmp_path / "cache", client=client) as fetcher:
                if remember:
                    fetcher.remember_server_failures()
                results = [fetcher.fetch(*k) for k in keys]
        assert [r.status for r in results] == [ERROR] * len(keys)
        assert all("connection refused" in r.errors[0] for r in results)
        assert len(calls) == expected_requests and all(c.endswith("/index2.txt") for c in calls)


def test_hostile_module_names_are_quoted_in_text_output(crash_store, fixtures_dir, env, tmp_path):
    real = read_minidump(fixtures_dir / "dumps" / "symbolic-windows-mini.dmp").modules[0]
    cv = codeview_rsds(real.debug_id.guid.bytes_le, real.debug_id.age, "\x1b[2Jevil.pdb")
    path = tmp_path / "esc.dmp"
    path.write_bytes(build_minidump(modules=[
        {"name": "C:\\w\\\x1b]0;pwned\x07[bold]x.dll", "base": 0x400000, "size": 0x1000, "timestamp": 1,
         "codeview": cv}]))
    proc = run(["--dump", path, "--binary", "--server", crash_store, "--cache", tmp_path / "c"], env, tmp_path)
    assert proc.returncode == 2
    assert "\x1b" not in proc.stdout + proc.stderr and "\x07" not in proc.stdout + proc.stderr
    assert proc.stdout.startswith("'\\x1b]0;pwned\\x07[bold]x.dll': pdb error")
    assert not (tmp_path / "c").exists() or all_files(tmp_path / "c") == []
