"""_NT_SYMBOL_PATH parsing."""

from __future__ import annotations

from hypothesis import given, strategies as st

from symtool.store.sympath import parse_sympath

MS = "https://msdl.microsoft.com/download/symbols"


def test_srv_with_cache():
    sp = parse_sympath(f"srv*C:\\symcache*{MS}")
    assert [(e.kind, e.location, e.caches) for e in sp.entries] == [("server", MS, ["C:\\symcache"])]
    assert sp.first_cache == "C:\\symcache"


def test_upper_case_keyword_and_default_cache():
    sp = parse_sympath(f"SRV*{MS};srv**https://other.example/s")
    assert sp.sources == [MS, "https://other.example/s"]
    assert [e.caches for e in sp.entries] == [[""], [""]]
    assert sp.first_cache is None  # only the default cache named


def test_symsrv_dll_form_and_multiple_caches():
    sp = parse_sympath(f"symsrv*symsrv.dll*D:\\c1*\\\\server\\c2*{MS}")
    (e,) = sp.entries
    assert e.location == MS and e.caches == ["D:\\c1", "\\\\server\\c2"]


def test_cache_element_applies_to_following_entries():
    sp = parse_sympath(f"C:\\local;cache*E:\\cache;\\\\build\\symbols;srv*{MS}")
    assert [(e.kind, e.location, e.caches) for e in sp.entries] == [
        ("dir", "C:\\local", []),
        ("dir", "\\\\build\\symbols", ["E:\\cache"]),
        ("server", MS, ["E:\\cache"]),
    ]
    assert sp.sources == ["C:\\local", "\\\\build\\symbols", MS]


def test_whitespace_quotes_and_empty_elements():
    sp = parse_sympath(f' ;; "srv*/tmp/c*{MS}" ; /srv/store ;')
    assert sp.sources == [MS, "/srv/store"]
    assert sp.first_cache == "/tmp/c"


def test_srv_without_server_is_skipped():
    assert parse_sympath("srv*;symsrv*symsrv.dll").entries == []


@given(st.text(alphabet=st.sampled_from(list("srvSRVcahe*;:\\/. \"abcDLL")), max_size=80))
def test_never_crashes(text):
    sp = parse_sympath(text)
    for e in sp.entries:
        assert e.location and ";" not in e.location


# --- store arguments, resolved once for every command (symtool.settings) -----------------------------

def test_resolve_stores_order_of_sources(tmp_path, monkeypatch):
    import pytest

    from symtool.errors import UsageError
    from symtool.settings import resolve_store, resolve_stores

    (tmp_path / "Cargo.toml").write_text('[workspace]\n[workspace.metadata.symtool]\nstores = ["syms", "https://s.example/x"]\n')
    monkeypatch.chdir(tmp_path)
    nt = {"_NT_SYMBOL_PATH": f"srv*/c*{MS}"}

    r = resolve_stores(None, environ=nt, start=tmp_path)  # the manifest's stores, relative to the manifest
    assert (r.stores, r.source) == ([str(tmp_path / "syms"), "https://s.example/x"], str(tmp_path / "Cargo.toml"))
    r = resolve_stores(None, environ={**nt, "SYMTOOL_STORE": "/a;/b"}, start=tmp_path)
    assert (r.stores, r.source) == (["/a", "/b"], "env:SYMTOOL_STORE")
    r = resolve_stores([f"srv*/cache*{MS}", "rel"], option_name="--server", environ=nt, start=tmp_path)
    assert (r.stores, r.source, r.sympath_cache) == ([MS, str(tmp_path / "rel")], "--server", "/cache")

    (tmp_path / "Cargo.toml").write_text("[workspace]\n")
    assert resolve_stores(None, environ=nt, start=tmp_path).stores == []  # _NT_SYMBOL_PATH only when asked
    r = resolve_stores(None, environ=nt, start=tmp_path, use_nt_symbol_path=True)
    assert (r.stores, r.source, r.sympath_cache) == ([MS], "env:_NT_SYMBOL_PATH", "/c")

    env = {"SYMTOOL_STORE": f"{MS};/local"}
    assert resolve_store(None, environ=env, start=tmp_path) == MS
    assert resolve_store(None, local_only=True, environ=env, start=tmp_path) == "/local"
    with pytest.raises(UsageError, match="needs a directory, a share or object storage .*not an HTTP URL"):
        resolve_store(MS, local_only=True, environ={}, start=tmp_path)
    with pytest.raises(UsageError, match="no store given"):
        resolve_store(None, environ={}, start=tmp_path)
