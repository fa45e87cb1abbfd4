"""Issue 21's smaller Windows findings, each reproduced on Linux the way Windows shows it.

* srcindex: ``ntpath.normpath`` turned '/' back into '\\' and the workspace rule never applied;
* rustc's sysroot decoded in the ANSI code page (here: a non-UTF-8 locale) and cached wrong;
* proxies: ``http_proxy``/``https_proxy``/``no_proxy`` are honoured (a real forward proxy here);
* Ctrl+Break (SIGBREAK, stood in for by SIGUSR1 where Python has no SIGBREAK) ends like Ctrl+C;
* no raw ANSI colour on a Windows console without virtual terminal processing;
* extension-less ELF files (no x bits on Windows) are still found.
"""

from __future__ import annotations

import http.client
import io
import json
import ntpath
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hostile_helpers import CRASH_KEY, CRASH_PDB, Server, clean_env, dripping_download, reply, symtool
from symtool import platform
from windows_personality import windows  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parent.parent
ELF = ROOT / "tests" / "fixtures" / "elf-macho" / "crash-me.dwarf4"


# -- 4. srcindex's workspace rule with Windows paths ----------------------------------------------

def test_workspace_paths_map_with_windows_os_path(monkeypatch):
    from symtool.srcindex import git

    # os.path as Windows' CPython has it: ntpath.
    monkeypatch.setattr(git, "os", types.SimpleNamespace(**{**vars(os), "path": ntpath}), raising=False)
    root = "C:\\work\\ws"
    assert git.relative_to(root, "C:\\work\\ws\\crates\\app\\src\\main.rs") == "crates/app/src/main.rs"
    assert git.relative_to(root, "c:/work/ws/src/lib.rs") == "src/lib.rs"  # drive letters: case-insensitive
    assert git.relative_to(root, "C:\\work\\ws\\..\\other\\x.rs") is None
    assert git.relative_to(root, "C:\\work\\wsx\\x.rs") is None
    assert git.relative_to("\\\\server\\share\\ws", "\\\\server\\share\\ws\\src\\a.rs") == "src/a.rs"


# -- rustc's sysroot is UTF-8 ------------------------------------------------------------------------

def test_a_utf8_sysroot_is_read_as_utf8_whatever_the_locale(tmp_path):
    sysroot = tmp_path / "toolchains" / "Rust für Jürgen" / "stable"
    (sysroot / "bin").mkdir(parents=True)
    rustc = tmp_path / "rustc"
    rustc.write_text("#!/bin/sh\n"
                     f"if [ \"$1\" = --print ]; then printf '%s\\n' '{sysroot}'; exit 0; fi\n"
                     "printf 'rustc 1.80.0\\ncommit-hash: " + "a" * 40 + "\\n'\n", encoding="utf-8")
    rustc.chmod(0o755)
    probe = ("import json, os; from symtool.debugger.probe import EnvCache, probe_toolchain; "
             "c = EnvCache(None); e = probe_toolchain(None, dict(os.environ), c); "
             "print(json.dumps({'sysroot': e['sysroot'], 'cached': list(c.data['toolchains'].values())}))")
    # A locale whose encoding is not UTF-8 (Windows: the ANSI code page), as Python sees it.
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", RUSTC=str(rustc),
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    got = json.loads(proc.stdout)
    assert got["sysroot"] == str(sysroot)  # before: UnicodeDecodeError (a traceback), or cp1252 mojibake
    # (Not cached there: in this locale the file system's names are ASCII too, unlike Windows', where
    # they are always UTF-16: isdir() cannot see the directory.  Caching is checked below.)


def test_a_sysroot_that_is_a_directory_is_cached(tmp_path):
    from symtool.debugger.probe import EnvCache, probe_toolchain

    sysroot = tmp_path / "Rust für Jürgen"
    (sysroot / "bin").mkdir(parents=True)
    rustc = tmp_path / "rustc"
    rustc.write_text(f"#!/bin/sh\nprintf '%s\\n' '{sysroot}'\n", encoding="utf-8")
    rustc.chmod(0o755)
    cache = EnvCache(None)
    assert probe_toolchain(None, dict(os.environ, RUSTC=str(rustc)), cache)["sysroot"] == str(sysroot)
    assert [e["sysroot"] for e in cache.data["toolchains"].values()] == [str(sysroot)]


def test_a_sysroot_that_is_no_directory_is_not_cached(tmp_path):
    from symtool.debugger.probe import EnvCache, probe_toolchain

    rustc = tmp_path / "rustc"
    rustc.write_text("#!/bin/sh\nprintf '%s\\n' '/nowhere/\xe2\x80\x9cgarbled\xe2\x80\x9d'\n", encoding="utf-8")
    rustc.chmod(0o755)
    cache = EnvCache(None)
    probe_toolchain(None, dict(os.environ, RUSTC=str(rustc)), cache)
    assert cache.data["toolchains"] == {} and not cache.dirty


# -- proxies --------------------------------------------------------------------------------------

class ForwardProxy(Server):
    """A plain HTTP forward proxy (no CONNECT): it takes absolute-form requests and sends each on
    to ``origin`` (whatever host the URL names), recording the targets it was asked for."""

    def __init__(self, origin_port: int):
        self.targets: list[str] = []

        def forward(h):
            self.targets.append(h.path)
            conn = http.client.HTTPConnection("127.0.0.1", origin_port, timeout=10)
            path = "/" + h.path.split("://", 1)[-1].split("/", 1)[-1] if "://" in h.path else h.path
            conn.request(h.command, path, headers={"Host": "symbols.invalid"})
            resp = conn.getresponse()
            body = resp.read()
            reply(h, resp.status, body)

        super().__init__(forward)


def fetch_args(server: str, cache: Path) -> list:
    return ["fetch", "--pdb", CRASH_KEY[0], "--id", CRASH_KEY[1], "--server", server, "--cache", cache]


def test_fetch_goes_through_the_proxy_the_environment_names(tmp_path):
    data = CRASH_PDB.read_bytes()
    name, index = CRASH_KEY

    def origin(h):
        reply(h, 200, data) if h.path == f"/store/{name}/{index}/{name}" else reply(h, 404)

    with Server(origin) as srv, ForwardProxy(srv.port) as proxy:
        # symbols.invalid cannot resolve (RFC 2606): only the proxy can reach it.
        env = clean_env(tmp_path, http_proxy=proxy.url, HTTPS_PROXY=proxy.url)
        proc = symtool(*fetch_args("http://symbols.invalid/store", tmp_path / "c"), env=env)
        assert proc.returncode == 0, proc.stderr
        assert f"http://symbols.invalid/store/{name}/{index}/{name}" in proxy.targets
        fetched = [p for p in (tmp_path / "c").rglob(name) if p.is_file()]
        assert [p.read_bytes() for p in fetched] == [data]

        # no_proxy names the host: straight to it, which fails (it does not resolve), and the proxy
        # is never asked.
        asked = len(proxy.targets)
        env = clean_env(tmp_path, http_proxy=proxy.url, NO_PROXY="example.com,.invalid")
        proc = symtool(*fetch_args("http://symbols.invalid/store", tmp_path / "c2"), env=env)
        assert proc.returncode != 0
        assert len(proxy.targets) == asked


def test_proxy_settings_read_both_spellings():
    from symtool.store.http import HttpClient, proxy_settings

    assert proxy_settings({"HTTPS_PROXY": "proxy:3128", "no_proxy": "a.example, .b.example"}) == (
        {"https": "http://proxy:3128"}, ["a.example", "b.example"])
    assert proxy_settings({"http_proxy": "http://low:1", "HTTP_PROXY": "http://up:2"})[0] == {"http": "http://low:1"}
    client = HttpClient(environ={"ALL_PROXY": "http://p:1", "NO_PROXY": "example.com"})
    try:
        assert client.proxies_for("https://msdl.microsoft.com/x") == {"http": "http://p:1", "https": "http://p:1"}
        assert client.proxies_for("https://sym.example.com/x") == {}
        assert client.proxies_for("http://127.0.0.1:8080/x") == {}  # this machine: never through a proxy
    finally:
        client.close()


# -- Ctrl+Break -----------------------------------------------------------------------------------

def test_ctrl_break_ends_a_download_like_ctrl_c(tmp_path):
    """SIGBREAK is Windows-only; the child is given SIGUSR1 under that name, so main's handler is what
    runs (without one, the signal kills the process outright: temp file left, no exit 130)."""
    stop = threading.Event()
    boot = "import signal, sys; signal.SIGBREAK = signal.SIGUSR1; from symtool.main import main; sys.argv[0] = 'symtool'; main()"
    env = clean_env(tmp_path)
    with Server(dripping_download(CRASH_KEY[0], stop)) as srv:
        cache = tmp_path / "c"
        child = subprocess.Popen([sys.executable, "-c", boot, *map(str, fetch_args(srv.url, cache))], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(p.name.startswith(".symtool-tmp-") and p.stat().st_size
                                                      for p in cache.rglob("*")):
            time.sleep(0.05)
        child.send_signal(signal.SIGUSR1)
        out, err = child.communicate(timeout=30)
        stop.set()
    assert child.returncode == 130, err
    assert "error: interrupted" in err and "Traceback" not in err
    assert not any(p.is_file() for p in cache.rglob("*"))


# -- colour on Windows consoles -------------------------------------------------------------------

class Console(io.StringIO):
    def __init__(self, fd: int):
        super().__init__()
        self._fd = fd

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd


@pytest.mark.parametrize("vt, can_enable, coloured", [
    (False, False, False),  # an old console: escapes would print raw
    (False, True, True),  # Windows 10+: switched on
    (True, False, True),  # already on (Windows Terminal)
])
def test_labels_are_coloured_only_where_the_console_interprets_escapes(windows, monkeypatch, vt, can_enable,
                                                                       coloured):
    from symtool.commands import common

    modes = {}
    monkeypatch.setattr(platform._Windows, "get_console_mode", staticmethod(lambda fd: 0x3 | (4 if vt else 0)))
    monkeypatch.setattr(platform._Windows, "set_console_mode",
                        staticmethod(lambda fd, mode: modes.setdefault(fd, mode) is not None and can_enable))
    monkeypatch.setattr(common.OUTPUT, "color", "auto")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    console = Console(2)
    monkeypatch.setattr(sys, "stderr", console)
    common.message("warning", "careful")
    assert ("\x1b[" in console.getvalue()) == coloured
    assert console.getvalue().endswith("careful\n")
    if not vt:
        assert modes == {2: 0x3 | 4}  # it asked for virtual terminal processing


# -- extension-less ELF files ---------------------------------------------------------------------

def test_an_elf_file_without_x_bits_is_found_as_on_posix_with_them(windows, tmp_path):
    """On Windows st_mode's x bits come from the extension: a cross-built ELF has none."""
    from symtool.cli import app

    d = tmp_path / "out"
    d.mkdir()
    shutil.copyfile(ELF, d / "crash-me")
    (d / "crash-me").chmod(0o644)
    result = CliRunner().invoke(app, ["verify", str(d)], env={"SYMTOOL_STORE": "", "NO_COLOR": "1"})
    assert "crash-me" in result.stdout, result.output
    assert "binary found" not in result.output
