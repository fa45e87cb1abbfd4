"""``symtool fetch``: download PDBs (and binaries) from symbol servers into a cache.

Heavy imports (requests, rich, pefile) happen inside functions: cli.py imports
every command module at startup.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

HELP = "Download a PDB (and with --binary the image) from symbol servers into a local cache laid out as a store."

EPILOG = """\
Examples:

  symtool fetch --exe target/release/app.exe --server https://symbols.example.com/store

  symtool fetch --pdb app.pdb --id 3249D99D0C4049318610F4E4FB0B69361 --cache ~/.cache/symtool

  symtool fetch --exe app.exe --binary --json       # servers from SYMTOOL_STORE / _NT_SYMBOL_PATH

  _NT_SYMBOL_PATH='srv*C:\\symcache*https://symbols.example.com' symtool fetch --pdb a.pdb --id ...

Servers: --server (repeatable; a URL, a store directory, or a srv*cache*url element), else
\\[workspace.metadata.symtool] stores / SYMTOOL_STORE, else _NT_SYMBOL_PATH.
Cache: --cache, else \\[workspace.metadata.symtool] cache / SYMTOOL_CACHE, else the first srv* cache of
_NT_SYMBOL_PATH, else the per-user default.  Every file is checked against the key before it enters the cache.
Credentials: SYMTOOL_HTTP_TOKEN (bearer) or SYMTOOL_HTTP_USER / SYMTOOL_HTTP_PASSWORD.
Exit codes: 0 all fetched (or already cached), 1 not found anywhere, 2 errors.
"""


def resolve_sources(servers: List[str], environ: dict, settings_loader) -> tuple[list[str], str, Optional[str]]:
    """(sources, where they came from, cache named by a srv* element)."""
    from symtool.store.sympath import parse_sympath

    def expand(items: list[str]) -> tuple[list[str], Optional[str]]:
        out: list[str] = []
        cache = None
        for item in items:
            if "*" in item:
                sp = parse_sympath(item)
                out.extend(sp.sources)
                cache = cache or sp.first_cache
            elif item.strip():
                out.append(item.strip())
        return out, cache

    if servers:
        sources, cache = expand(servers)
        return sources, "--server", cache
    settings = settings_loader()
    if settings.stores:
        sources, cache = expand(settings.stores)
        return sources, settings.stores_source, cache
    nt = environ.get("_NT_SYMBOL_PATH", "")
    if nt.strip():
        sp = parse_sympath(nt)
        return sp.sources, "env:_NT_SYMBOL_PATH", sp.first_cache
    return [], "none", None


class _RichProgress:
    """A rich progress bar on stderr for large transfers (terminal only)."""

    THRESHOLD = 8 << 20

    def __init__(self):
        self._progress = None
        self._task = None

    def start(self, label: str, total):
        if total is not None and total < self.THRESHOLD:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        self._progress = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), console=Console(stderr=True), transient=True)
        self._progress.start()
        self._task = self._progress.add_task(label, total=total)
        progress, task = self._progress, self._task
        return lambda n: progress.advance(task, n)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def run_fetch(pdb: Optional[str], index: Optional[str], exe: Optional[Path], binary: bool, servers: List[str],
              cache: Optional[Path], as_json: bool, timeout: Optional[float] = None,
              environ: Optional[dict] = None) -> int:
    from symtool.errors import FormatError, UsageError
    from symtool.ids import check_file_name, parse_index

    env = os.environ if environ is None else environ
    keys: list[tuple[str, str]] = []
    if exe is not None:
        if pdb or index:
            raise UsageError("use either --exe FILE or --pdb NAME --id INDEX, not both")
        from symtool.formats.pe import read_pe

        info = read_pe(str(exe))
        cv = info.primary_codeview
        if cv is None:
            raise FormatError("has no CodeView record naming a PDB (built without debug info?)", exe)
        keys.append((check_file_name(cv.pdb_name), cv.debug_id.index()))
        if binary:
            keys.append((check_file_name(exe.name), info.index))
    else:
        if not pdb or not index:
            raise UsageError("give --pdb NAME --id INDEX, or --exe FILE")
        if binary:
            raise UsageError("--binary needs --exe FILE (the image's name and TimeDateStamp+SizeOfImage come from it)")
        keys.append((check_file_name(pdb), parse_index(index)))

    settings_cache: list = []

    def settings():
        if not settings_cache:
            from symtool.settings import load_settings

            settings_cache.append(load_settings(environ=env))
        return settings_cache[0]

    sources, origin, sympath_cache = resolve_sources(list(servers), env, settings)
    if not sources:
        raise UsageError("no symbol servers: use --server URL, set SYMTOOL_STORE, "
                         "[workspace.metadata.symtool] stores, or _NT_SYMBOL_PATH")
    if cache is None:
        s = settings()
        if s.cache_source != "default":
            cache = Path(s.cache)
        elif sympath_cache:
            cache = Path(sympath_cache)
        else:
            cache = Path(s.cache)
    cache = cache.expanduser()

    from symtool.cli import print_json
    from symtool.store.fetch import CACHED, ERROR, FETCHED, NOT_FOUND, fetch_keys
    from symtool.store.http import HttpClient, HttpOptions, redact_url

    options = HttpOptions.from_env(env, read_timeout=timeout,
                                   connect_timeout=min(timeout, 10.0) if timeout else None)
    progress = _RichProgress() if (sys.stderr.isatty() and not as_json) else None

    def report(r) -> None:
        # Successes go to stdout (not with --json); problems always to stderr.
        if r.status == FETCHED and not as_json:
            print(f"fetched {r.key} from {r.url} -> {r.path}")
        elif r.status == CACHED and not as_json:
            print(f"cached  {r.key} -> {r.path}")
        for m in r.messages:
            sys.stderr.write(f"symtool: {r.key}: server message: {m}\n")
        if r.status == NOT_FOUND:
            sys.stderr.write(f"symtool: {r.key}: not found on {len(sources)} server(s)\n")
        elif r.status == ERROR:
            for line in r.errors:
                sys.stderr.write(f"symtool: {line}\n")

    with HttpClient(options, environ=env) as client:
        results = fetch_keys(keys, sources, cache, client=client, progress=progress, on_result=report)
    if as_json:
        print_json({
            "cache": str(cache),
            "sources": [redact_url(s) for s in sources],
            "sources_from": origin,
            "results": [r.to_json() for r in results],
        })
    if any(r.status == ERROR for r in results):
        return 2
    if any(r.status == NOT_FOUND for r in results):
        return 1
    return 0


def register(app) -> None:
    import typer

    from symtool.cli import handle_errors

    @handle_errors
    def fetch(
        pdb: Optional[str] = typer.Option(None, "--pdb", metavar="NAME", help="PDB (or image) file name to fetch."),
        index: Optional[str] = typer.Option(None, "--id", metavar="INDEX",
                                            help="Store INDEX: GUID+age for a PDB, TimeDateStamp+SizeOfImage for an image."),
        exe: Optional[Path] = typer.Option(None, "--exe", metavar="FILE",
                                           help="Take the key from this binary's CodeView record."),
        binary: bool = typer.Option(False, "--binary", help="With --exe: also fetch the image itself."),
        server: List[str] = typer.Option([], "--server", metavar="URL|DIR",
                                         help="Symbol server URL or store directory (repeatable, tried in order)."),
        cache: Optional[Path] = typer.Option(None, "--cache", metavar="DIR", help="Downstream cache directory."),
        timeout: Optional[float] = typer.Option(None, "--timeout", metavar="SECONDS",
                                                help="Give up on a server that sends nothing for this long (default 60)."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable result."),
    ) -> None:
        code = run_fetch(pdb, index, exe, binary, server, cache, as_json, timeout)
        raise typer.Exit(code)

    app.command(name="fetch", help=HELP, epilog=EPILOG)(fetch)
