"""Helpers of the hostile-store, hostile-server and hostile-input suites (tests/test_hostile_*.py).

``Server`` is a real HTTP server on 127.0.0.1 whose every answer the test
writes; ``symtool`` runs the CLI (exit code, stdout, stderr, never a traceback),
in-process or in a subprocess (rlimits, a server thread running).
"""

from __future__ import annotations

import http.server
import os
import resource
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CRASH_PDB = FIXTURES / "pe-pdb" / "crash.pdb"
CRASH_SRCSRV_PDB = FIXTURES / "pe-pdb" / "crash_with_srcsrv.pdb"  # same key as crash.pdb, other bytes
CRASH_KEY = ("crash.pdb", "3249D99D0C4049318610F4E4FB0B69361")


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SYMTOOL_", "_NT_", "CARGO_")) and k.lower() not in ("http_proxy", "https_proxy")}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "home" / ".cache"),
               SYMTOOL_HTTP_RETRIES="0", NO_COLOR="1", PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def symtool(*args, env: dict[str, str], cwd: Path | None = None, timeout: float = 60,
            limits: dict[int, int] | None = None, input_: str | None = None) -> subprocess.CompletedProcess:
    """``symtool ARGS``; asserts that no traceback was printed.

    In-process (tests/cli_runner.py: a hang past ``timeout`` ends the test process) when nothing else
    runs in this process; in a subprocess under ``limits`` (rlimits bound a process) or while a thread
    of the test runs (a ``Server`` here: what it prints would land in the command's captured stderr)."""
    if not limits and threading.active_count() == 1:
        from cli_runner import symtool_in_process

        proc = symtool_in_process(*args, env=env, cwd=cwd, timeout=timeout, input=input_)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def preexec() -> None:
        for which, value in (limits or {}).items():
            resource.setrlimit(which, (value, value))

    proc = subprocess.run([sys.executable, "-m", "symtool", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec if limits else None,
                          input=input_)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def peak_rss_mib(*args, env: dict[str, str], cwd: Path | None = None, timeout: float = 120) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``symtool ARGS`` and return its own peak RSS (MiB) with the result."""
    # VmHWM, not getrusage's ru_maxrss: Linux carries the forking parent's high-water
    # mark across exec into ru_maxrss, so a child of a big pytest process would
    # report pytest's size; VmHWM belongs to the new program's memory alone.
    code = ("import runpy, sys\n"
            f"sys.argv = ['symtool'] + {list(map(str, args))!r}\n"
            "def hwm():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            return int(line.split()[1])\n"
            "try:\n    runpy.run_module('symtool', run_name='__main__')\n"
            "finally:\n    sys.stderr.write(f'\\nPEAK_RSS_KIB={hwm()}\\n')\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    kib = int(proc.stderr.rsplit("PEAK_RSS_KIB=", 1)[1].split()[0])
    return kib / 1024, proc


Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class Server:
    """A threaded HTTP/1.1 server on 127.0.0.1; ``handle(request)`` answers each request.

    ``requests`` records (method, path, headers) of every request.
    """

    def __init__(self, handle: Handler):
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        owner = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _any(self):
                owner.requests.append((self.command, self.path, dict(self.headers)))
                handle(self)

            do_GET = do_HEAD = do_PUT = _any

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = S(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def reply(h: http.server.BaseHTTPRequestHandler, code: int, body: bytes = b"", *, reason: str | None = None,
          headers: dict[str, str] | None = None) -> None:
    h.send_response(code, reason)
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def read_body(h: http.server.BaseHTTPRequestHandler) -> bytes:
    n = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(n)


def publish_store(store: Path, *files: Path, env: dict[str, str], extra: tuple = ()) -> subprocess.CompletedProcess:
    return symtool("publish", *files, "--store", store, *extra, env=env)


def all_bytes(root: Path) -> bytes:
    """Every regular file below ``root`` (not following links), concatenated: to look for leaked data."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    out.append(fh.read())
    return b"".join(out)


def dripping_download(name: str, stop) -> Handler:
    """A handler that answers ``.../name`` with a 64 MiB body sent 64 KiB every 50 ms (until ``stop``
    is set) and 404 for anything else: a download still under way when a test signals the client."""

    def slow(h: http.server.BaseHTTPRequestHandler) -> None:
        if not h.path.endswith("/" + name):
            reply(h, 404)
            return
        h.send_response(200)
        h.send_header("Content-Length", str(64 << 20))
        h.end_headers()
        try:
            for _ in range(600):
                if stop.is_set():
                    break
                h.wfile.write(b"\0" * (64 << 10))
                time.sleep(0.05)
        except OSError:
            pass

    return slow
