"""Store and cache locations a host can use (issue 11 item 4, issue 14 item 6).

Off Windows, a drive-letter or UNC path names nothing: it is refused (exit 2,
"give the path where it is mounted") instead of becoming a folder called
``C:\\symbols`` in the current directory.  A ``scheme://`` symtool does not
serve is refused naming the scheme.  ``symtool env`` only writes locations
out for a Windows debugger, so it keeps accepting Windows paths.  Relative
stores and caches become absolute everywhere.
"""

from __future__ import annotations

import json

import pytest

from cli_runner import symtool_in_process
from symtool.errors import UsageError
from symtool.settings import absolute_store, check_location, load_settings, resolve_cache, resolve_stores
from symtool.store.layout import is_windows_path, url_scheme

MS = "https://msdl.microsoft.com/download/symbols"
CRASH_PDB_INDEX = "3249D99D0C4049318610F4E4FB0B69361"
WINDOWS_PATHS = ["C:\\symbols", "c:/symbols", "D:", "\\\\server\\Symbols", "\\\\?\\C:\\symbols"]


def symtool(args, env, cwd):
    proc = symtool_in_process(*map(str, args), env=env, cwd=cwd, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.mark.parametrize("path", WINDOWS_PATHS)
def test_windows_paths_are_recognised(path):
    assert is_windows_path(path) and url_scheme(path) is None


@pytest.mark.parametrize("path", ["/srv/symbols", "symbols", "./c:", "ab:cd", MS, "s3://bucket/x"])
def test_other_locations_are_not_windows_paths(path):
    assert not is_windows_path(path)


def test_schemes():
    assert [url_scheme(x) for x in (MS, "S3://b", "file:///srv/s", "git+ssh://h/x", "/srv/x", "C://x")] \
        == ["https", "s3", "file", "git+ssh", None, None]


@pytest.mark.parametrize("path", WINDOWS_PATHS)
def test_windows_path_refused_off_windows_accepted_on_windows(path):
    with pytest.raises(UsageError, match="mounted here"):
        check_location(path, "store", "--store", platform="linux")
    with pytest.raises(UsageError, match="mounted here"):
        check_location(path, "store", "--store", platform="darwin")
    assert check_location(path, "store", "--store", platform="win32") == path


@pytest.mark.parametrize("platform", ["linux", "win32"])
def test_unknown_scheme_refused_everywhere(platform):
    with pytest.raises(UsageError, match="does not serve gs:// locations"):
        check_location("gs://bucket/x", "store", "--store", platform=platform)
    assert check_location("HTTPS://s.example/x", "store", "--store", platform=platform)
    # Object storage is served (symtool.store.objstore).
    assert check_location("s3://bucket/x", "store", "--store", platform=platform)
    assert check_location("azblob://container/x", "store", "--store", platform=platform)


def test_resolve_stores_refuses_from_every_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=r"C:\\symbols \(from --store\).*mounted here"):
        resolve_stores(["C:\\symbols"], environ={}, start=tmp_path)
    with pytest.raises(UsageError, match=r"from env:SYMTOOL_STORE.*mounted here"):
        resolve_stores(None, environ={"SYMTOOL_STORE": "/ok;\\\\server\\Symbols"}, start=tmp_path)
    with pytest.raises(UsageError, match=r"from env:_NT_SYMBOL_PATH.*mounted here"):
        resolve_stores(None, environ={"_NT_SYMBOL_PATH": f"srv*/c*{MS};C:\\local"}, start=tmp_path,
                       use_nt_symbol_path=True)
    with pytest.raises(UsageError, match="does not serve gs://"):
        resolve_stores(["srv*/c*gs://bucket/x"], environ={}, start=tmp_path)
    (tmp_path / "Cargo.toml").write_text('[workspace]\n[workspace.metadata.symtool]\nstores = ["gs://b/x"]\n')
    with pytest.raises(UsageError, match=r"gs://b/x \(from .*Cargo.toml\).*does not serve gs://"):
        resolve_stores(None, environ={}, start=tmp_path)
    assert list(tmp_path.iterdir()) == [tmp_path / "Cargo.toml"]


def test_relative_stores_and_caches_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = resolve_stores([f"srv*./cache*{MS}", "syms"], environ={}, start=tmp_path)
    assert (r.stores, r.sympath_cache) == ([MS, str(tmp_path / "syms")], str(tmp_path / "cache"))
    r = resolve_stores(None, environ={"_NT_SYMBOL_PATH": f"cache*rel-cache;srv*{MS};local"}, start=tmp_path,
                       use_nt_symbol_path=True)
    assert (r.stores, r.sympath_cache) == ([MS, str(tmp_path / "local")], str(tmp_path / "rel-cache"))
    assert resolve_cache(None, r, environ={})[0] == str(tmp_path / "rel-cache")
    assert load_settings(tmp_path, {"SYMTOOL_CACHE": "./cache"}).cache == str(tmp_path / "cache")
    assert resolve_cache("c2", r, environ={}) == (str(tmp_path / "c2"), "--cache")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert load_settings(tmp_path, {"SYMTOOL_CACHE": "~/sym"}).cache == str(tmp_path / "h" / "sym")
    # Written out for Windows debuggers: kept as given.
    assert absolute_store("C:\\symcache", tmp_path) == "C:\\symcache"
    assert load_settings(tmp_path, {"SYMTOOL_CACHE": "C:\\symcache"}).cache == "C:\\symcache"


def test_resolve_cache_refuses_what_this_host_cannot_write(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = resolve_stores(None, environ={"_NT_SYMBOL_PATH": f"SRV*C:\\symcache*{MS}"}, start=tmp_path,
                       use_nt_symbol_path=True)
    assert r.stores == [MS]
    with pytest.raises(UsageError, match=r"cache C:\\symcache \(from env:_NT_SYMBOL_PATH\).*mounted here"):
        resolve_cache(None, r, environ={})
    assert resolve_cache(str(tmp_path / "c"), r, environ={})[0] == str(tmp_path / "c")  # --cache wins: no refusal
    with pytest.raises(UsageError, match="from env:SYMTOOL_CACHE.*mounted here"):
        resolve_cache(None, resolve_stores([MS], environ={}), environ={"SYMTOOL_CACHE": "\\\\srv\\cache"})
    with pytest.raises(UsageError, match="must be a directory, not a URL"):
        resolve_cache(MS, r, environ={})
    with pytest.raises(UsageError, match="does not serve gs://"):
        resolve_cache("gs://b/cache", r, environ={})
    with pytest.raises(UsageError, match="must be a directory, not a URL"):
        resolve_cache("s3://b/cache", r, environ={})
    assert list(tmp_path.iterdir()) == []


# --- end to end: exit 2, one line, nothing created in the current directory ---------------------------

@pytest.mark.parametrize("store", ["C:\\symbols", "\\\\server\\Symbols", "gs://bucket/x", "file:///srv/symbols"])
def test_publish_refuses_and_creates_nothing(store, fixtures_dir, env, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = symtool(["publish", fixtures_dir / "pe-pdb" / "crash.pdb", "--store", store], env, cwd)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: store ") and store in lines[0]
    scheme = url_scheme(store)
    assert (f"does not serve {scheme}://" if scheme else "give the path where it is mounted here") in lines[0]
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("sub", ["list", "init", "verify"])
def test_store_commands_refuse_windows_paths(sub, env, tmp_path):
    proc = symtool(["store", sub, "--store", "C:\\symbols"], env, tmp_path)
    assert proc.returncode == 2 and "mounted here" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_fetch_refuses_windows_cache_from_nt_symbol_path(env, tmp_path):
    e = dict(env, _NT_SYMBOL_PATH="SRV*C:\\symcache*http://127.0.0.1:9/store")
    proc = symtool(["fetch", "--pdb", "crash.pdb", "--id", CRASH_PDB_INDEX], e, tmp_path)
    assert proc.returncode == 2
    assert "cache C:\\symcache (from env:_NT_SYMBOL_PATH)" in proc.stderr and "mounted here" in proc.stderr
    proc = symtool(["fetch", "--pdb", "crash.pdb", "--id", CRASH_PDB_INDEX, "--server", "http://127.0.0.1:9/x",
                    "--cache", "gs://b/c", "--json"], env, tmp_path)
    assert proc.returncode == 2 and "does not serve gs://" in proc.stderr
    assert json.loads(proc.stdout)["error"]["exit_code"] == 2
    assert list(tmp_path.iterdir()) == []


def test_fetch_relative_cache_is_made_absolute(fixtures_dir, env, tmp_path):
    from store_helpers import tree

    store = tmp_path / "store"
    symtool(["publish", fixtures_dir / "pe-pdb" / "crash.pdb", "--store", store], env, tmp_path)
    e = dict(env, SYMTOOL_CACHE="./cache")
    proc = symtool(["fetch", "--pdb", "crash.pdb", "--id", CRASH_PDB_INDEX, "--server", "store", "--json"], e,
                   tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["cache"] == str(tmp_path / "cache") and out["sources"] == [str(store)]
    assert out["results"][0]["path"] == str(tmp_path / "cache" / "crash.pdb" / CRASH_PDB_INDEX / "crash.pdb")
    assert "crash.pdb/" + CRASH_PDB_INDEX + "/crash.pdb" in tree(tmp_path / "cache")


def test_env_still_writes_windows_paths_out_and_makes_relative_cache_absolute(env, tmp_path):
    e = dict(env, SYMTOOL_STORE="\\\\server\\Symbols;C:\\symbols", SYMTOOL_CACHE="./cache")
    proc = symtool(["env", "--json"], e, tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    stores = [x["value"] for x in data["symbol_path"]["elements"] if x["kind"] == "store"]
    cache = str(tmp_path / "cache")
    assert stores == [f"srv*{cache}*\\\\server\\Symbols", f"srv*{cache}*C:\\symbols"]
    e = dict(env, SYMTOOL_CACHE="E:\\symcache")
    data = json.loads(symtool(["env", "--json"], e, tmp_path).stdout)
    assert data["cache"]["value"] == "E:\\symcache"
    assert not any(p.name.startswith(("C:", "E:", "\\")) for p in tmp_path.iterdir())
