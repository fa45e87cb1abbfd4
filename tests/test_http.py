"""HTTP client and publish_http against the real nginx fixture (library level)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nginx_server import BASIC_PASSWORD, BASIC_USER, TOKEN, free_port
from symtool.errors import NetworkError, UsageError
from symtool.formats.pdb import read_pdb
from symtool.store.http import HttpClient, HttpOptions, publish_http, redact_url
from symtool.store.layout import parse_file_ptr
from symtool.store.items import PublishItem

BIGAGE = ("bigage.pdb", "C9A61DDDD7E44353A668E39AC614A7EAa")


def client(**env) -> HttpClient:
    return HttpClient(HttpOptions(retries=1, backoff=0.01, connect_timeout=2, read_timeout=2), environ=env)


def pe_store_items(fixtures_dir) -> list[PublishItem]:
    store = fixtures_dir / "symstore-exe" / "stores" / "pe_store"
    items = []
    for name_dir in sorted(p for p in store.iterdir() if p.is_dir() and p.name != "000Admin"):
        for idx_dir in sorted(name_dir.iterdir()):
            f = idx_dir / name_dir.name
            kind = "pri" if f.suffix == ".pdb" else "bin"
            items.append(PublishItem(f, f.name, idx_dir.name, kind, f.stat().st_size))
    return items


def test_redact_url():
    assert redact_url("https://u:p@host:8443/a/b?x=1") == "https://host:8443/a/b?x=1"
    assert redact_url("https://host/a") == "https://host/a"
    assert redact_url("http://token@[::1]:81/s") == "http://[::1]:81/s"


def test_parse_file_ptr():
    assert parse_file_ptr("PATH:\\\\server\\share\\a.pdb\r\n") == ("\\\\server\\share\\a.pdb", None)
    assert parse_file_ptr("MSG:gone") == (None, "gone")
    assert parse_file_ptr("/plain/path/a.pdb") == ("/plain/path/a.pdb", None)
    assert parse_file_ptr("msg:gone\npath:/x") == ("/x", "gone")
    assert parse_file_ptr("") == (None, None)


def test_options_from_env():
    o = HttpOptions.from_env({"SYMTOOL_HTTP_TIMEOUT": "3", "SYMTOOL_HTTP_RETRIES": "0"})
    assert (o.read_timeout, o.connect_timeout, o.retries) == (3.0, 3.0, 0)
    with pytest.raises(UsageError):
        HttpOptions.from_env({"SYMTOOL_HTTP_TIMEOUT": "soon"})


def test_two_tier_probe_is_done_once_per_server(nginx, fixtures_dir):
    with client() as c:
        server = c.server(nginx.url("twotier"))
        calls = []
        real = c.request

        def counting(method, url, **kw):
            calls.append(url)
            return real(method, url, **kw)

        c.request = counting
        sink = io.BytesIO()
        assert server.fetch(*BIGAGE, sink).form == "plain"
        sink2 = io.BytesIO()
        assert server.fetch("dummyprog.pdb", "F6301B4562FE4B4DB691192733ECE6B71", sink2) is not None
        assert sum(u.endswith("index2.txt") for u in calls) == 1
        assert sink.getvalue() == (fixtures_dir / "symstore-exe/stores/pe_store" / BIGAGE[0] / BIGAGE[1] / BIGAGE[0]).read_bytes()


def test_fetch_absent_returns_none_and_writes_nothing(nginx):
    with client() as c:
        sink = io.BytesIO()
        assert c.server(nginx.url("plain")).fetch("nothere.pdb", "0123456789ABCDEF0123456789ABCDEF1", sink) is None
        assert sink.getvalue() == b""


def test_size_limit_from_content_length(nginx):
    with client() as c:
        sink = io.BytesIO()
        with pytest.raises(NetworkError, match="over the size limit"):
            c.server(nginx.url("plain")).fetch(*BIGAGE, sink, limit=1000)
        assert sink.getvalue() == b""  # refused before reading the body


def test_retries_on_500_then_clear_error(nginx):
    with client() as c:
        with pytest.raises(NetworkError, match="HTTP 500.*after 1 retries"):
            c.server(nginx.url("error")).fetch(*BIGAGE, io.BytesIO())


def test_connection_refused_and_dns_messages():
    with client() as c:
        with pytest.raises(NetworkError, match="connection refused") as err:
            c.server(f"http://127.0.0.1:{free_port()}/x").two_tier()
        assert str(err.value).startswith("http://127.0.0.1:")
        with pytest.raises(NetworkError, match="cannot resolve host"):
            c.server("http://symbols.invalid/x").two_tier()


# --- publish_http -------------------------------------------------------------------------------------

def test_publish_basic_auth_then_present_then_fetch(nginx, fixtures_dir):
    items = pe_store_items(fixtures_dir)
    url = nginx.url("upload/basic")
    with client(SYMTOOL_HTTP_USER=BASIC_USER, SYMTOOL_HTTP_PASSWORD=BASIC_PASSWORD) as c:
        dry = publish_http(url, items, dry_run=True, client=c)
        assert {r["status"] for r in dry} == {"would-upload"}
        assert not (nginx.www / "upload" / "basic").exists()
        first = publish_http(url, items, client=c)
        assert [r["status"] for r in first] == ["uploaded"] * len(items)
        assert [r["key"] for r in first] == [i.key for i in items]
        second = publish_http(url, items, client=c)
        assert [r["status"] for r in second] == ["present"] * len(items)
    for item in items:
        on_server = nginx.www / "upload" / "basic" / item.name / item.index / item.name
        assert on_server.read_bytes() == Path(item.path).read_bytes()
    assert not (nginx.www / "upload" / "basic" / "000Admin").exists()


def test_publish_progress_reports_every_byte(nginx, fixtures_dir):
    items = pe_store_items(fixtures_dir)[:2]
    seen: dict[str, int] = {}

    class Bar:
        def start(self, label, total):
            seen[label] = 0
            return lambda n: seen.__setitem__(label, seen[label] + n)

        def stop(self):
            pass

    with client() as c:
        res = publish_http(nginx.url("upload-open/progress"), items, client=c, progress=Bar())
    assert {r["status"] for r in res} == {"uploaded"}
    assert seen == {i.name: i.size for i in items}


def test_publish_token(nginx, fixtures_dir):
    items = pe_store_items(fixtures_dir)[:1]
    with client(SYMTOOL_HTTP_TOKEN=TOKEN) as c:
        assert publish_http(nginx.url("upload-token/t"), items, client=c)[0]["status"] == "uploaded"
    with client(SYMTOOL_HTTP_TOKEN="not-the-token") as c:
        (res,) = publish_http(nginx.url("upload-token/t2"), items, client=c)
    assert res["status"] == "error" and "HTTP 401" in res["error"] and "credentials refused" in res["error"]
    assert "not-the-token" not in repr(res)


def test_publish_errors_never_show_secrets(nginx, fixtures_dir):
    items = pe_store_items(fixtures_dir)[:1]
    with client() as c:  # no credentials at all
        (res,) = publish_http(nginx.url("upload/x"), items, client=c)
    assert res["status"] == "error" and "HTTP 401" in res["error"] and "SYMTOOL_HTTP_TOKEN" in res["error"]

    with client(SYMTOOL_HTTP_USER=BASIC_USER, SYMTOOL_HTTP_PASSWORD="wrong-secret-xyz") as c:
        (res,) = publish_http(nginx.url("upload/x"), items, client=c)
    assert res["status"] == "error" and "wrong-secret-xyz" not in repr(res)

    url = nginx.url("upload/y").replace("http://", f"http://{BASIC_USER}:{BASIC_PASSWORD}@")
    with client() as c:
        (res,) = publish_http(url, items, client=c)
    assert res["status"] == "uploaded" and BASIC_PASSWORD not in repr(res)
    assert res["url"].startswith(nginx.base)

    with client() as c:
        dead = f"http://{BASIC_USER}:{BASIC_PASSWORD}@127.0.0.1:{free_port()}/store"
        (res,) = publish_http(dead, items, client=c)
    assert res["status"] == "error" and "connection refused" in res["error"] and BASIC_PASSWORD not in repr(res)


def test_publish_to_read_only_location_is_an_error(nginx, fixtures_dir):
    items = pe_store_items(fixtures_dir)[:1]
    with client() as c:
        (res,) = publish_http(nginx.url("plain-readonly-missing"), items, client=c)
    assert res["status"] == "error" and "HTTP 405" in res["error"]


def test_publish_rejects_non_url(fixtures_dir):
    with pytest.raises(UsageError):
        publish_http("/some/dir", pe_store_items(fixtures_dir))


def test_uploaded_pdb_keeps_identity(nginx, fixtures_dir):
    items = [i for i in pe_store_items(fixtures_dir) if i.name == "bigage.pdb"]
    with client() as c:
        publish_http(nginx.url("upload-open/ident"), items, client=c)
    got = nginx.www / "upload-open" / "ident" / BIGAGE[0] / BIGAGE[1] / BIGAGE[0]
    assert read_pdb(str(got)).index == BIGAGE[1]
