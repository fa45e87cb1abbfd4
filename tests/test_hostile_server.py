"""Hostile symbol servers and leaked credentials: a standing guard (issue 12, docs/security.md).

Real HTTP servers on 127.0.0.1, written for each test, answer what an
attacker's server (or a catch-all web server) would: file.ptr files naming
other hosts, endless bodies, 200 for everything, reason phrases with escape
sequences.  The promise: credentials go only to the origin they were given
for and are never printed or written; downloads are bounded; nothing is
taken as present that is not; nothing a server says can forge a line on
the terminal; a killed fetch leaves no temp file.
(The wall-clock --timeout against drip-feeding servers: tests/test_http_deadline.py.)
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hostile_helpers import CRASH_KEY, CRASH_PDB, Server, clean_env, dripping_download, read_body, reply, symtool

NAME, INDEX = CRASH_KEY
SECRET = "s3cr3t-T0KEN-value"


@pytest.fixture
def env(tmp_path):
    return clean_env(tmp_path)


def fetch_args(server: str, cache: Path) -> list:
    return ["fetch", "--pdb", NAME, "--id", INDEX, "--server", server, "--cache", cache]


# -- 1. credentials ---------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\r"])
def test_token_with_a_trailing_line_break_is_trimmed_and_never_printed(tmp_path, env, suffix):
    with Server(lambda h: reply(h, 404)) as srv:
        proc = symtool(*fetch_args(srv.url, tmp_path / "c"), env=dict(env, SYMTOOL_HTTP_TOKEN=SECRET + suffix))
        assert proc.returncode == 1, proc.stderr  # not found: the request went out with a valid header
        assert SECRET not in proc.stdout + proc.stderr
        sent = {r[2].get("Authorization") for r in srv.requests}
        assert sent == {f"Bearer {SECRET}"}


def test_token_with_a_line_break_inside_is_refused_without_echo(tmp_path, env):
    with Server(lambda h: reply(h, 404)) as srv:
        proc = symtool(*fetch_args(srv.url, tmp_path / "c"), env=dict(env, SYMTOOL_HTTP_TOKEN=SECRET + "\nX: y"))
        assert proc.returncode == 2 and "SYMTOOL_HTTP_TOKEN" in proc.stderr
        assert SECRET not in proc.stdout + proc.stderr
        assert srv.requests == []


def test_token_is_not_sent_to_the_host_a_file_ptr_names(tmp_path, env):
    with Server(lambda h: reply(h, 200, CRASH_PDB.read_bytes())) as other:
        ptr = f"PATH:{other.url}/{NAME}".encode()

        def origin(h):
            if h.path.endswith("/file.ptr"):
                reply(h, 200, ptr)
            else:
                reply(h, 404)

        with Server(origin) as srv:
            proc = symtool(*fetch_args(srv.url, tmp_path / "c"), env=dict(env, SYMTOOL_HTTP_TOKEN=SECRET))
            assert proc.returncode == 0, proc.stderr
            assert all(r[2].get("Authorization") == f"Bearer {SECRET}" for r in srv.requests)
        assert other.requests and all("Authorization" not in r[2] for r in other.requests)


def _put_server():
    files: dict[str, bytes] = {}

    def handle(h):
        if h.command == "PUT":
            files[h.path] = read_body(h)
            reply(h, 201)
        elif h.path in files:
            reply(h, 200, files[h.path])
        else:
            reply(h, 404)

    return handle, files


def test_password_in_a_store_url_is_never_printed_by_publish(tmp_path, env):
    handle, files = _put_server()
    with Server(handle) as srv:
        url = srv.url.replace("http://", f"http://alice:{SECRET}@") + "/sym"
        for extra in (["--json"], []):
            proc = symtool("publish", CRASH_PDB, "--store", url, *extra, env=env)
            assert proc.returncode == 0, proc.stderr
            assert SECRET not in proc.stdout + proc.stderr
        # and not in errors either: a server that refuses
        bad = url.replace(f":{srv.port}", ":1")
        proc = symtool("publish", CRASH_PDB, "--store", bad, "--json", env=env)
        assert proc.returncode == 2 and SECRET not in proc.stdout + proc.stderr


def test_password_in_a_store_url_is_never_printed_or_written_by_env(tmp_path, env):
    url = f"http://alice:{SECRET}@symbols.example.com/sym"
    e = dict(env, SYMTOOL_STORE=url)
    work = tmp_path / "w"
    work.mkdir()
    for args in (["env", "--shell", "bash"], ["env", "--json"], ["env", "--write", tmp_path / "out"]):
        proc = symtool(*args, env=e, cwd=work)
        assert proc.returncode == 0, proc.stderr
        assert SECRET not in proc.stdout + proc.stderr and "alice" not in proc.stdout
        assert "SYMTOOL_HTTP_USER" in proc.stderr or args[1] == "--json"
    assert "http://symbols.example.com/sym" in (tmp_path / "out" / "symbols.path").read_text()
    for p in (tmp_path / "out").iterdir():
        assert SECRET not in p.read_text(errors="replace")


# -- 3. endless bodies, killed fetches -----------------------------------------------------------------

def _endless(stop: threading.Event, sent: list):
    def handle(h):
        if not h.path.endswith("/" + NAME):
            reply(h, 404)
            return
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        block = b"\0" * (64 << 10)
        try:
            for _ in range(4096):  # bounded: 256 MiB at most
                if stop.is_set():
                    break
                h.wfile.write(block)
                sent[0] += len(block)
        except OSError:
            pass

    return handle


def test_endless_body_is_capped_by_the_configured_maximum(tmp_path, env):
    from symtool.settings import DEFAULT_MAX_FILE_SIZE

    assert DEFAULT_MAX_FILE_SIZE <= 8 << 30
    stop, sent = threading.Event(), [0]
    with Server(_endless(stop, sent)) as srv:
        cache = tmp_path / "c"
        proc = symtool(*fetch_args(srv.url, cache), env=dict(env, SYMTOOL_MAX_FILE_SIZE="2M"), timeout=60)
        stop.set()
        assert proc.returncode == 2 and "size limit" in proc.stderr
        assert not any(p.is_file() for p in cache.rglob("*"))
    assert sent[0] < 64 << 20


def test_sigterm_during_a_download_leaves_no_temp_file(tmp_path, env):
    stop = threading.Event()
    with Server(dripping_download(NAME, stop)) as srv:
        cache = tmp_path / "c"
        child = subprocess.Popen([sys.executable, "-m", "symtool", *map(str, fetch_args(srv.url, cache))], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(p.name.startswith(".symtool-tmp-") and p.stat().st_size
                                                      for p in cache.rglob("*")):
            time.sleep(0.05)
        assert any(p.name.startswith(".symtool-tmp-") for p in cache.rglob("*"))
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
        stop.set()
    assert child.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_bad_retry_count_is_one_error_line(tmp_path, env):
    for value in ("nan", "inf", "1e300", "-1"):
        proc = symtool(*fetch_args("http://127.0.0.1:1", tmp_path / "c"), env=dict(env, SYMTOOL_HTTP_RETRIES=value))
        assert proc.returncode == 2 and "SYMTOOL_HTTP_RETRIES" in proc.stderr


# -- 9. HTTP publish trusts no bare 200 ------------------------------------------------------------------

def test_catch_all_200_is_not_present_the_file_is_uploaded(tmp_path, env):
    files: dict[str, bytes] = {}
    page = b"<html><body>Welcome</body></html>"

    def catch_all(h):
        if h.command == "PUT":
            files[h.path] = read_body(h)
            reply(h, 201)
        else:
            reply(h, 200, files.get(h.path, page), headers={"Content-Type": "text/html"})

    with Server(catch_all) as srv:
        proc = symtool("publish", CRASH_PDB, "--store", srv.url, "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        assert [f["status"] for f in json.loads(proc.stdout)["files"]] == ["uploaded"]
        # (index2.txt answered 200 too, so the server counts as two-tier: cr/crash.pdb/...)
        assert [v for k, v in files.items() if k.endswith(f"/{NAME}/{INDEX}/{NAME}")] == [CRASH_PDB.read_bytes()]
        again = symtool("publish", CRASH_PDB, "--store", srv.url, "--json", env=env)
        assert [f["status"] for f in json.loads(again.stdout)["files"]] == ["present"]


def test_same_size_other_bytes_is_not_present(tmp_path, env):
    files = {f"/{NAME}/{INDEX}/{NAME}": b"\xff" * CRASH_PDB.stat().st_size}

    def handle(h):
        if h.command == "PUT":
            files[h.path] = read_body(h)
            reply(h, 201)
        elif h.path in files:
            reply(h, 200, files[h.path])
        else:
            reply(h, 404)

    with Server(handle) as srv:
        proc = symtool("publish", CRASH_PDB, "--store", srv.url, "--json", env=env)
        assert [f["status"] for f in json.loads(proc.stdout)["files"]] == ["uploaded"], proc.stdout


# -- 11. what a server says cannot forge terminal lines -------------------------------------------------

def test_reason_phrase_and_msg_lines_are_escaped_and_said_once(tmp_path, env):
    def handle(h):
        if h.path.lower().endswith("/file.ptr"):
            reply(h, 200, b"MSG:call \x1b[31mIT\r\nerror: forged line")
        elif h.path.endswith("/index2.txt"):
            reply(h, 404)
        else:
            reply(h, 404, reason="Gone\x1b]0;pwned\x07")

    with Server(handle) as srv:
        proc = symtool(*fetch_args(srv.url, tmp_path / "c"), env=env)
        assert "\x1b" not in proc.stdout + proc.stderr and "\r" not in proc.stderr
        assert not any(line.startswith("error: forged") for line in proc.stderr.splitlines())
        assert proc.stderr.count("server message") == 1, proc.stderr

    def failing(h):
        reply(h, 503, reason="Busy\x1b[2J\r\nerror: forged")

    with Server(failing) as srv:
        proc = symtool(*fetch_args(srv.url, tmp_path / "c"), env=env)
        assert proc.returncode == 2 and "\x1b" not in proc.stderr
        assert not any(line.startswith("error: forged") for line in proc.stderr.splitlines())
