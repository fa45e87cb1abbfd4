"""`symtool fetch` against a real nginx on loopback: every store form, every failure mode.

Each CLI run is a real subprocess (`python -m symtool fetch`), so the tests see
exactly what a user sees: exit code, one stderr line, no traceback, and the
cache directory afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nginx_server import BASIC_PASSWORD, BASIC_USER, free_port
from fetch_helpers import all_files, run
from symtool.formats.pdb import read_pdb
from symtool.formats.pe import read_pe
from symtool.store.http import HTTP_STORE_NOTE

BIGAGE = ("bigage.pdb", "C9A61DDDD7E44353A668E39AC614A7EAa")
DUMMYPROG_EXE = ("dummyprog.exe", "5617D4FE8000")


def original(fixtures_dir, name, index) -> bytes:
    return (fixtures_dir / "symstore-exe" / "stores" / "pe_store" / name / index / name).read_bytes()


def key_args(key):
    return ["--pdb", key[0], "--id", key[1]]


@pytest.mark.parametrize("location,form", [
    ("plain", "plain"), ("compressed", "compressed"), ("twotier", "plain"), ("redirect", "plain"),
    ("lower", "plain"),
])
def test_fetch_forms(nginx, fixtures_dir, env, tmp_path, location, form):
    cache = tmp_path / "cache"
    proc = run([*key_args(BIGAGE), "--server", nginx.url(location), "--cache", cache, "--json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    (res,) = out["results"]
    assert res["status"] == "fetched" and res["form"] == form
    final = cache / BIGAGE[0] / BIGAGE[1] / BIGAGE[0]
    assert res["path"] == str(final)
    assert final.read_bytes() == original(fixtures_dir, *BIGAGE)
    assert read_pdb(str(final)).index == BIGAGE[1]
    assert all_files(cache) == [final]  # no temp files, no CAB left behind
    if location == "redirect":
        assert "/plain/" in res["url"]
    if location == "lower":
        assert BIGAGE[1].lower() in res["url"]


def test_fetch_binary_with_exe_key(nginx, fixtures_dir, env, tmp_path):
    exe = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.exe"
    cache = tmp_path / "cache"
    proc = run(["--exe", exe, "--binary", "--server", nginx.url("compressed"), "--cache", cache, "--json"],
               env, tmp_path)
    results = {r["name"]: r for r in json.loads(proc.stdout)["results"]}
    # dummyprog.exe's CodeView names ConsoleApplication1.pdb, which was never stored: not found -> exit 1.
    assert results["ConsoleApplication1.pdb"]["status"] == "not-found"
    assert results["dummyprog.exe"]["status"] == "fetched"
    assert proc.returncode == 1
    got = cache / "dummyprog.exe" / DUMMYPROG_EXE[1] / "dummyprog.exe"
    assert got.read_bytes() == exe.read_bytes()
    assert read_pe(str(got)).index == DUMMYPROG_EXE[1]


def test_file_ptr_local_path_and_url(nginx, fixtures_dir, env, tmp_path):
    for which in ("local", "url"):
        name, index = nginx.ptr_targets[which][:2]
        cache = tmp_path / f"cache-{which}"
        proc = run(["--pdb", name, "--id", index, "--server", nginx.url("ptr"), "--cache", cache, "--json"],
                   env, tmp_path)
        assert proc.returncode == 0, proc.stderr
        (res,) = json.loads(proc.stdout)["results"]
        assert res["form"] == "pointer"
        assert (cache / name / index / name).read_bytes() == original(fixtures_dir, name, index)


def test_file_ptr_message_is_reported(nginx, env, tmp_path):
    name, index = nginx.ptr_targets["msg"]
    cache = tmp_path / "cache"
    proc = run(["--pdb", name, "--id", index, "--server", nginx.url("ptr"), "--cache", cache], env, tmp_path)
    assert proc.returncode == 1
    assert "this file was removed by the release team" in proc.stderr
    assert all_files(cache) == []


@pytest.mark.parametrize("location", ["wrong", "wrong-compressed"])
def test_wrong_file_is_refused_and_not_cached(nginx, env, tmp_path, location):
    cache = tmp_path / "cache"
    proc = run([*key_args(BIGAGE), "--server", nginx.url(location), "--cache", cache], env, tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "wrong file for this key" in lines[0] and BIGAGE[1] in lines[0]
    assert all_files(cache) == []
    assert not cache.exists() or not any(cache.rglob("*"))  # not even empty directories


def test_wrong_server_then_right_server(nginx, fixtures_dir, env, tmp_path):
    cache = tmp_path / "cache"
    proc = run([*key_args(BIGAGE), "--server", nginx.url("wrong"), "--server", nginx.url("plain"),
                "--cache", cache, "--json"], env, tmp_path)
    assert proc.returncode == 0
    (res,) = json.loads(proc.stdout)["results"]
    assert res["source"] == nginx.url("plain") and len(res["errors"]) == 1
    assert (cache / BIGAGE[0] / BIGAGE[1] / BIGAGE[0]).read_bytes() == original(fixtures_dir, *BIGAGE)


def test_cached_file_is_not_downloaded_again(nginx, env, tmp_path):
    cache = tmp_path / "cache"
    assert run([*key_args(BIGAGE), "--server", nginx.url("plain"), "--cache", cache], env, tmp_path).returncode == 0
    final = cache / BIGAGE[0] / BIGAGE[1] / BIGAGE[0]
    mtime = final.stat().st_mtime_ns
    # Second run against a port nobody listens on: only the cache can satisfy it.
    dead = f"http://127.0.0.1:{free_port()}/store"
    proc = run([*key_args(BIGAGE), "--server", dead, "--cache", cache], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("cached")
    assert final.stat().st_mtime_ns == mtime


def _failure_cases(nginx):
    return {
        "connection-refused": ([f"http://127.0.0.1:{free_port()}/store"], 2, "connection refused"),
        "dns": (["http://symbols.invalid/store"], 2, "cannot resolve host"),
        "401": ([nginx.url("protected")], 2, "HTTP 401"),
        "403": ([nginx.url("forbidden")], 2, "HTTP 403"),
        "404-everywhere": ([nginx.url("plain"), nginx.url("twotier"), nginx.url("compressed")], 1, "not found on 3"),
        "500": ([nginx.url("error")], 2, "HTTP 500"),
        "stall": ([nginx.url("stall")], 2, "stalled"),
        "truncated": ([nginx.url("truncated")], 2, "truncated body"),
        "larger": ([nginx.url("larger")], 2, "larger than announced"),
        "redirect-loop": ([nginx.url("loop")], 2, "too many redirects"),
    }


@pytest.mark.parametrize("case", ["connection-refused", "dns", "401", "403", "404-everywhere", "500", "stall",
                                  "truncated", "larger", "redirect-loop"])
def test_failures_are_one_line_and_leave_nothing(nginx, env, tmp_path, case):
    servers, code, text = _failure_cases(nginx)[case]
    key = ("dummylib.pdb", "0123456789ABCDEF0123456789ABCDEF1") if case == "404-everywhere" else BIGAGE
    cache = tmp_path / "cache"
    args = [*key_args(key), "--cache", cache, "--timeout", "2"]
    for s in servers:
        args += ["--server", s]
    proc = run(args, env, tmp_path)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and text in lines[0]
    assert proc.stdout == ""
    assert all_files(cache) == []


def test_credentials_from_env_and_never_printed(nginx, fixtures_dir, env, tmp_path):
    cache = tmp_path / "cache"
    good = dict(env, SYMTOOL_HTTP_USER=BASIC_USER, SYMTOOL_HTTP_PASSWORD=BASIC_PASSWORD)
    proc = run([*key_args(BIGAGE), "--server", nginx.url("protected"), "--cache", cache], good, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (cache / BIGAGE[0] / BIGAGE[1] / BIGAGE[0]).read_bytes() == original(fixtures_dir, *BIGAGE)

    bad = dict(env, SYMTOOL_HTTP_USER=BASIC_USER, SYMTOOL_HTTP_PASSWORD="hunter2-wrong")
    proc = run([*key_args(BIGAGE), "--server", nginx.url("protected"), "--cache", tmp_path / "c2", "--json"],
               bad, tmp_path)
    assert proc.returncode == 2
    assert "credentials refused" in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout

    # user:password in the URL works and is never shown.
    url = nginx.url("protected").replace("http://", f"http://{BASIC_USER}:{BASIC_PASSWORD}@")
    proc = run([*key_args(BIGAGE), "--server", url, "--cache", tmp_path / "c3", "--json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert BASIC_PASSWORD not in proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["sources"] == [nginx.url("protected")]


def test_servers_and_cache_from_nt_symbol_path(nginx, fixtures_dir, env, tmp_path):
    cache = tmp_path / "srvcache"
    e = dict(env, _NT_SYMBOL_PATH=f"cache*{tmp_path / 'unused'};srv*{cache}*{nginx.url('compressed')}")
    proc = run([*key_args(BIGAGE), "--json"], e, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["sources_from"] == "env:_NT_SYMBOL_PATH" and out["cache"] == str(cache)
    assert (cache / BIGAGE[0] / BIGAGE[1] / BIGAGE[0]).read_bytes() == original(fixtures_dir, *BIGAGE)


def test_symtool_store_env_and_local_store_dir(fixtures_dir, env, tmp_path):
    # SYMTOOL_STORE wins over _NT_SYMBOL_PATH; a directory is read as a store (no HTTP at all).
    store = fixtures_dir / "symstore-exe" / "stores" / "pe_store"
    cache = tmp_path / "cache"
    e = dict(env, SYMTOOL_STORE=str(store), SYMTOOL_CACHE=str(cache),
             _NT_SYMBOL_PATH=f"srv*{tmp_path}*http://127.0.0.1:{free_port()}/x")
    proc = run([*key_args(BIGAGE), "--json"], e, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["sources_from"] == "env:SYMTOOL_STORE" and out["cache"] == str(cache)
    assert (cache / BIGAGE[0] / BIGAGE[1] / BIGAGE[0]).read_bytes() == original(fixtures_dir, *BIGAGE)


def test_usage_errors(env, tmp_path, fixtures_dir):
    exe = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.exe"
    for args in (["--pdb", "a.pdb"], ["--pdb", "a.pdb", "--id", "zz"], ["--pdb", "../a.pdb", "--id", BIGAGE[1]],
                 ["--exe", exe, "--pdb", "a.pdb"], ["--pdb", "a.pdb", "--id", BIGAGE[1], "--binary"],
                 ["--pdb", "a.pdb", "--id", BIGAGE[1]]):  # last: no servers configured anywhere
        proc = run([*args, "--cache", tmp_path / "c"], env, tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1
    assert all_files(tmp_path / "c") == []


def test_exe_that_is_not_a_pe(env, tmp_path, fixtures_dir):
    proc = run(["--exe", fixtures_dir / "pe-pdb" / "crash.pdb", "--server", "http://127.0.0.1:1/x",
                "--cache", tmp_path / "c"], env, tmp_path)
    assert proc.returncode == 2 and "crash.pdb" in proc.stderr


# --- publish to nginx over HTTP, then fetch everything back ------------------------------------------

def _sample_items(sample_build):
    from symtool.store.items import PublishItem

    items = []
    for profile in ("release", "dist"):
        out = sample_build.out(profile)
        for path in sorted(out.iterdir()):
            if path.suffix.lower() in (".exe", ".dll"):
                items.append(PublishItem(path, path.name, read_pe(str(path)).index, "bin", path.stat().st_size))
            elif path.suffix.lower() == ".pdb":
                items.append(PublishItem(path, path.name, read_pdb(str(path)).index, "pri", path.stat().st_size))
    # Reproducible profiles can produce the same key twice (identical files): publish each key once.
    unique = {}
    for item in items:
        unique.setdefault(item.key, item)
    return list(unique.values())


@pytest.mark.slow
def test_publish_http_then_fetch_round_trip(nginx, sample_build, env, tmp_path):
    from symtool.store.http import HttpClient, HttpOptions, publish_http

    items = _sample_items(sample_build)
    assert len({i.key for i in items}) >= 4 and any(i.kind == "bin" for i in items)
    url = nginx.url("upload-token/roundtrip")
    token_env = dict(env, SYMTOOL_HTTP_TOKEN="s3cret-token")
    with HttpClient(HttpOptions(retries=1), environ=token_env) as client:
        results = publish_http(url, items, client=client)
        assert {r["status"] for r in results} == {"uploaded"}, results
        again = publish_http(url, items, client=client)
        assert {r["status"] for r in again} == {"present"}
    cache = tmp_path / "cache"
    for item in items:
        proc = run(["--pdb", item.name, "--id", item.index, "--server", url, "--cache", cache], token_env, tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert (cache / item.name / item.index / item.name).read_bytes() == item.path.read_bytes()
    # --exe with --binary finds both halves of a pair.
    exe = sample_build.exe("crash-me")
    cache2 = tmp_path / "cache2"
    proc = run(["--exe", exe, "--binary", "--server", url, "--cache", cache2, "--json"], token_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert {r["status"] for r in json.loads(proc.stdout)["results"]} == {"fetched"}
    assert (cache2 / exe.name / read_pe(str(exe)).index / exe.name).read_bytes() == exe.read_bytes()


@pytest.mark.slow
def test_publish_cli_then_fetch_round_trip(nginx, sample_build, env, tmp_path):
    items = _sample_items(sample_build)
    url = nginx.url("upload/cli")
    e = dict(env, SYMTOOL_HTTP_USER=BASIC_USER, SYMTOOL_HTTP_PASSWORD=BASIC_PASSWORD)
    paths = [str(sample_build.out(p)) for p in ("release", "dist")]
    proc = subprocess.run([sys.executable, "-m", "symtool", "publish", *paths, "--store", url], env=e,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert BASIC_PASSWORD not in proc.stdout + proc.stderr
    assert not (nginx.www / "upload" / "cli" / "000Admin").exists()
    cache = tmp_path / "cache"
    for item in items:
        r = run(["--pdb", item.name, "--id", item.index, "--server", url, "--cache", cache], e, tmp_path)
        assert r.returncode == 0, r.stderr
        assert (cache / item.name / item.index / item.name).read_bytes() == item.path.read_bytes()


def test_publish_cli_says_no_000admin_over_http(nginx, fixtures_dir, env, tmp_path):
    pdb = fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb"
    proc = subprocess.run([sys.executable, "-m", "symtool", "publish", str(pdb), "--store",
                           nginx.url("upload-open/note"), "--dry-run"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The user is told there is no transaction history, once, as a note on stderr.
    assert proc.stderr.count(f"note: {HTTP_STORE_NOTE}") == 1, proc.stderr
    assert proc.stdout.splitlines()[-1] == "would add 1, already present 0, refused 0"


def test_lzx_cab_falls_back_to_cabextract(nginx, fixtures_dir, env, tmp_path):
    from conftest import need_tool

    need_tool("cabextract")
    exe = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.exe"
    cache = tmp_path / "cache"
    proc = run(["--pdb", DUMMYPROG_EXE[0], "--id", DUMMYPROG_EXE[1], "--server", nginx.url("lzx"),
                "--cache", cache, "--json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["form"] == "compressed"
    got = cache / DUMMYPROG_EXE[0] / DUMMYPROG_EXE[1] / DUMMYPROG_EXE[0]
    assert got.read_bytes() == exe.read_bytes()
    assert all_files(cache) == [got]


def test_lzx_cab_without_cabextract_is_a_clear_error(nginx, env, tmp_path):
    cache = tmp_path / "cache"
    no_tools = dict(env, PATH=str(tmp_path / "empty-bin"))
    proc = run(["--pdb", DUMMYPROG_EXE[0], "--id", DUMMYPROG_EXE[1], "--server", nginx.url("lzx"),
                "--cache", cache], no_tools, tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "LZX" in proc.stderr and "install cabextract" in proc.stderr
    assert all_files(cache) == []


# --- library level ------------------------------------------------------------------------------------

def test_library_progress_and_cache_layout(nginx, fixtures_dir, tmp_path):
    from symtool.store.fetch import FETCHED, Fetcher
    from symtool.store.http import HttpClient, HttpOptions

    counted: dict[str, int] = {}

    class Bar:
        def start(self, label, total):
            counted[label] = 0
            return lambda n: counted.__setitem__(label, counted[label] + n)

        def stop(self):
            pass

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "index2.txt").write_text("")  # a two-tier cache stays two-tier
    with HttpClient(HttpOptions(retries=1), environ={}) as client:
        with Fetcher([nginx.url("plain")], cache, client=client, progress=Bar()) as f:
            r = f.fetch(*BIGAGE)
    assert r.status == FETCHED
    assert Path(r.path) == cache / "bi" / BIGAGE[0] / BIGAGE[1] / BIGAGE[0]
    assert counted == {BIGAGE[0]: len(original(fixtures_dir, *BIGAGE))}


def test_rich_progress_only_for_large_transfers():
    from symtool.commands.fetch import _RichProgress

    bar = _RichProgress()
    assert bar.start("small.pdb", 1000) is None and bar._progress is None  # no bar for small files
    advance = bar.start("big.pdb", 64 << 20)
    progress = bar._progress
    (task,) = progress.tasks
    advance(1 << 20)
    advance(3 << 20)
    assert (task.description, task.total, task.completed) == ("big.pdb", 64 << 20, 4 << 20)
    bar.stop()
    assert bar._progress is None and not progress.live.is_started  # the live display is gone


# --- exit codes: one rule, text and JSON agreeing (README "Exit codes and errors") ---------------------

@pytest.mark.parametrize("location, why", [("error/x", "HTTP 500"), ("upload/x", "HTTP 401"),
                                           ("stall/x", "stalled")])
def test_publish_server_failure_is_an_error_in_text_and_json(nginx, fixtures_dir, env, tmp_path, location, why):
    pdb = fixtures_dir / "symstore-exe" / "inputs" / "bigage.pdb"
    base = [sys.executable, "-m", "symtool", "publish", str(pdb), "--store", nginx.url(location)]
    e = dict(env, SYMTOOL_HTTP_TIMEOUT="2")
    text = subprocess.run(base, env=e, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    as_json = subprocess.run([*base, "--json"], env=e, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert text.returncode == as_json.returncode == 2, text.stderr
    assert text.stdout.splitlines()[-1] == "added 0, already present 0, refused 0, errors 1"
    assert [line for line in text.stderr.splitlines() if line.startswith("error: ")] \
        and why in text.stderr
    summary = json.loads(as_json.stdout)["summary"]
    assert (summary["error"], summary["refused"]) == (1, 0)
    assert json.loads(as_json.stdout)["files"][0]["status"] == "error"


def test_fetch_exit_codes_text_and_json_agree(nginx, env, tmp_path):
    cases = {2: [nginx.url("error")], 1: [nginx.url("plain")]}
    key = ("dummylib.pdb", "0123456789ABCDEF0123456789ABCDEF1")
    for code, servers in cases.items():
        args = [*key_args(key), "--cache", tmp_path / "cache", *[a for s in servers for a in ("--server", s)]]
        text, as_json = run(args, env, tmp_path), run([*args, "--json"], env, tmp_path)
        assert text.returncode == as_json.returncode == code, text.stderr
        status = json.loads(as_json.stdout)["results"][0]["status"]
        assert status == {2: "error", 1: "not-found"}[code]
        assert ("HTTP 500" in text.stderr) == (code == 2)
