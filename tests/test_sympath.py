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
