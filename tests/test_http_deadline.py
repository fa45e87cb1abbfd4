"""``fetch --timeout``: a wall-clock limit on each file, retries included (issue 11 item 9, issue 12 item 4).

A misbehaving server written for the test, on 127.0.0.1, under
``/<mode>/...``:

    silent    accepts the connection, never says anything
    drip      index2.txt: 404; every file: 200 with a Content-Length, then one byte every DRIP s
    nolength  the same without Content-Length (the end of the body is the end of the connection)
    headers   a status line, then one header line every DRIP s
    busy      503 with Retry-After: 1, every time

Socket timeouts never trip on drip and headers (each read gets a byte in
time); urllib3's retries alone took 11 s for ``--timeout 2`` on a silent
server.  Each misbehaviour stops by itself after 30 s so that a client
without the limit fails the test instead of hanging it.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
import time

import pytest

from symtool.errors import NetworkError, UsageError
from symtool.store.http import HttpClient, HttpOptions

BIGAGE = ("bigage.pdb", "C9A61DDDD7E44353A668E39AC614A7EAa")
GIVE_UP = 30.0  # the server's own bound on each misbehaviour
TIMEOUT = 1.0  # each bounded fetch waits this long for real: the suite pays it a dozen times
DRIP = TIMEOUT / 4  # a byte (or header) this often: no socket read ever times out, only the file's limit


def within_limit(elapsed: float, timeout: float = TIMEOUT) -> bool:
    return elapsed < 2 * timeout + 1


class BadServer:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.requests: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}"

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _slowly(self, conn: socket.socket, pieces) -> None:
        end = time.monotonic() + GIVE_UP
        for piece in pieces:
            if self.stop.is_set() or time.monotonic() > end:
                return
            conn.sendall(piece)
            self.stop.wait(DRIP)

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(GIVE_UP)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ", 2)[1].decode()
            self.requests.append(path)
            mode = path.split("/")[1]
            if mode == "silent":
                self.stop.wait(GIVE_UP)
            elif mode in ("drip", "nolength") and path.endswith("/index2.txt"):
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            elif mode == "drip":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                self._slowly(conn, (b"x" for _ in range(100000)))
            elif mode == "nolength":
                conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                self._slowly(conn, (b"x" for _ in range(100000)))
            elif mode == "headers":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                self._slowly(conn, (f"X-Slow-{i}: {'y' * 10}\r\n".encode() for i in range(100000)))
            elif mode == "busy":
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture(scope="module")
def bad_server():
    server = BadServer()
    yield server
    server.close()


def client(**overrides) -> HttpClient:
    opts = dict(retries=3, backoff=0.5, file_timeout=TIMEOUT, read_timeout=TIMEOUT, connect_timeout=TIMEOUT)
    opts.update(overrides)
    return HttpClient(HttpOptions(**opts), environ={})


@pytest.mark.parametrize("mode", ["silent", "drip", "nolength", "headers", "busy"])
def test_library_fetch_is_bounded_per_file(bad_server, mode):
    sink = io.BytesIO()
    with client() as c:
        started = time.monotonic()
        with pytest.raises(NetworkError) as err:
            c.server(bad_server.url(mode)).fetch(*BIGAGE, sink)
        elapsed = time.monotonic() - started
    assert within_limit(elapsed), f"{mode}: {elapsed:.1f} s"
    if mode == "busy":
        assert "HTTP 503" in str(err.value)  # retried while there was time, then the real answer
    else:
        assert f"no complete answer within {TIMEOUT:g} s" in str(err.value)
    assert str(bad_server.port) in str(err.value)


def test_each_file_gets_its_own_limit(bad_server):
    with client() as c:
        server = c.server(bad_server.url("drip"))
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(NetworkError, match=f"no complete answer within {TIMEOUT:g} s"):
                server.fetch(*BIGAGE, io.BytesIO())
            assert within_limit(time.monotonic() - started)


def test_locate_is_bounded_too(bad_server):
    with client() as c:
        started = time.monotonic()
        with pytest.raises(NetworkError, match="no complete answer"):
            c.server(bad_server.url("headers")).locate(*BIGAGE)
        assert within_limit(time.monotonic() - started)


def test_retries_without_a_limit_still_happen(bad_server):
    with client(file_timeout=None, retries=1, backoff=0.01) as c:
        before = len(bad_server.requests)
        with pytest.raises(NetworkError, match=r"HTTP 503 .*after 1 retries"):
            c.server(bad_server.url("busy")).fetch(*BIGAGE, io.BytesIO())
        assert len(bad_server.requests) - before == 2  # Retry-After: 1 waited for once


def test_stalls_are_not_retried(bad_server):
    with client(file_timeout=None, retries=3, read_timeout=1.0) as c:
        started = time.monotonic()
        with pytest.raises(NetworkError, match="server stalled: no data for 1 s"):
            c.server(bad_server.url("silent")).fetch(*BIGAGE, io.BytesIO())
        assert time.monotonic() - started < 3  # once, not 1 + 3 times


def test_timeout_must_be_positive():
    with pytest.raises(UsageError, match="positive"):
        HttpClient(HttpOptions(file_timeout=0), environ={})


@pytest.mark.parametrize("mode", ["silent", "drip", "headers", "busy"])
def test_cli_fetch_timeout_bounds_each_file(bad_server, mode, env, tmp_path):
    e = dict(env, SYMTOOL_HTTP_RETRIES="3")
    argv = [sys.executable, "-m", "symtool", "fetch", "--pdb", BIGAGE[0], "--id", BIGAGE[1],
            "--server", bad_server.url(mode), "--cache", str(tmp_path / "cache"), "--timeout", f"{TIMEOUT:g}"]
    started = time.monotonic()
    proc = subprocess.run(argv, env=e, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert within_limit(elapsed, TIMEOUT + 0.5), f"{mode}: {elapsed:.1f} s"  # + interpreter start-up
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not (tmp_path / "cache").exists() or not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_cli_rejects_a_non_positive_timeout(env, tmp_path):
    argv = [sys.executable, "-m", "symtool", "fetch", "--pdb", BIGAGE[0], "--id", BIGAGE[1],
            "--server", "http://127.0.0.1:9/x", "--timeout", "0"]
    proc = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--timeout must be a positive number" in proc.stderr
