"""``symtool fetch``: download PDBs (and binaries) from symbol servers into a cache.

Heavy imports (requests, rich, pefile) happen inside functions: cli.py imports
every command module at startup.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

from symtool.commands.common import error, note, terminal_safe

HELP = ("Download a PDB (and with --binary the image) from symbol servers into a local cache laid out as a store; "
        "--dump FILE does it for every module of a minidump.")

EPILOG = """\
Examples:

  symtool fetch --exe target/release/app.exe --server https://symbols.example.com/store

  symtool fetch --pdb app.pdb --id 3249D99D0C4049318610F4E4FB0B69361 --cache ~/.cache/symtool

  symtool fetch --exe app.exe --binary --json       # servers from SYMTOOL_STORE / _NT_SYMBOL_PATH

  symtool fetch --dump app_C0000005_250101_120000.dmp --server https://symbols.example.com/store

  symtool fetch --exe ./crash-me --server https://symbols.example.com/store   # ELF: debuginfo + .dwp for gdb

  symtool fetch --exe ./crash-me --server ./store     # Mach-O: rebuilds crash-me.dSYM beside it for lldb

  _NT_SYMBOL_PATH='srv*C:\\symcache*https://symbols.example.com' symtool fetch --pdb a.pdb --id ...

Servers: --server (repeatable; a URL, a store directory, or a srv*cache*url element), else
\\[workspace.metadata.symtool] stores / SYMTOOL_STORE, else _NT_SYMBOL_PATH.
Cache: --cache, else \\[workspace.metadata.symtool] cache / SYMTOOL_CACHE, else the first srv* cache of
_NT_SYMBOL_PATH, else the per-user default.  Every file is checked against the key before it enters the cache.
--dump: a module recorded without a CodeView record (Wine, older writers) gets its image first
(TimeDateStamp+SizeOfImage key), then the PDB that image names.  Linux dumps: each ELF module's
binary, .dwp and debug file by build id; macOS dumps: each Mach-O module's binary and dSYM DWARF
file by LC_UUID (the SSQP keys `symtool publish` writes).
Credentials: SYMTOOL_HTTP_TOKEN (bearer) or SYMTOOL_HTTP_USER / SYMTOOL_HTTP_PASSWORD.
Exit codes: 0 all fetched (or already cached), 1 not found anywhere, 2 errors.
"""


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


def _sources_and_cache(servers: List[str], cache: Optional[str], env) -> tuple[list[str], str, Path]:
    """Servers (UsageError when there are none), where they came from, and the cache directory."""
    from symtool.errors import UsageError
    from symtool.settings import resolve_cache, resolve_stores

    resolved = resolve_stores(list(servers), option_name="--server", use_nt_symbol_path=True, environ=env)
    if not resolved.stores:
        raise UsageError("no symbol servers: use --server URL, set SYMTOOL_STORE, "
                         "[workspace.metadata.symtool] stores, or _NT_SYMBOL_PATH")
    cache_dir, _source = resolve_cache(os.fspath(cache) if cache is not None else None, resolved, environ=env)
    return resolved.stores, resolved.source, Path(cache_dir)


def _http_options(env, timeout: Optional[float]):
    """``--timeout``: the wall-clock limit for each file at each server, retries included."""
    from symtool.errors import UsageError
    from symtool.store.http import HttpOptions

    if timeout is not None and not timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, not {timeout:g}")
    return HttpOptions.from_env(env, file_timeout=timeout, read_timeout=timeout,
                                connect_timeout=min(timeout, 10.0) if timeout else None)


def run_fetch(pdb: Optional[str], index: Optional[str], exe: Optional[Path], binary: bool, servers: List[str],
              cache: Optional[str], as_json: bool, timeout: Optional[float] = None,
              environ: Optional[dict] = None, dsym_dir: Optional[Path] = None) -> int:
    from symtool.errors import FormatError, UsageError
    from symtool.ids import check_file_name, parse_index

    env = os.environ if environ is None else environ
    keys: list[tuple[str, str]] = []
    if exe is not None:
        if pdb or index:
            raise UsageError("use either --exe FILE or --pdb NAME --id INDEX, not both")
        from symtool.formats.detect import ELF, MACHO, detect
        from symtool.formats.pe import read_pe

        if detect(str(exe)) in (ELF, MACHO):
            return run_fetch_native(exe, binary, servers, cache, as_json, timeout, env, dsym_dir)

        info = read_pe(str(exe))
        cv = info.primary_codeview
        if cv is None:
            raise FormatError("has no CodeView record naming a PDB (built without debug info?)", exe)
        keys.append((check_file_name(cv.pdb_name), cv.debug_id.index()))
        if binary:
            keys.append((check_file_name(exe.name), info.index))
    else:
        if not pdb or not index:
            raise UsageError("give --pdb NAME --id INDEX, --exe FILE or --dump FILE")
        if binary:
            raise UsageError("--binary needs --exe FILE or --dump FILE (the image's name and TimeDateStamp+SizeOfImage come from it)")
        keys.append((check_file_name(pdb), parse_index(index)))

    sources, origin, cache = _sources_and_cache(servers, cache, env)

    from symtool.commands.common import print_json
    from symtool.store.fetch import CACHED, ERROR, FETCHED, NOT_FOUND, fetch_keys
    from symtool.store.http import HttpClient, redact_url

    options = _http_options(env, timeout)
    progress = _RichProgress() if (sys.stderr.isatty() and not as_json) else None

    def report(r) -> None:
        # Successes go to stdout (not with --json); problems always to stderr.
        if r.status == FETCHED and not as_json:
            print(terminal_safe(f"fetched {r.key} from {r.url} -> {r.path}"))  # the URL may come from a file.ptr
        elif r.status == CACHED and not as_json:
            print(f"cached  {r.key} -> {r.path}")
        for m in r.messages:
            note(f"{r.key}: server message: {m}")
        if r.status == NOT_FOUND:
            error(f"{r.key}: not found on {len(sources)} server(s)")
        elif r.status == ERROR:
            for line in r.errors:
                error(line)

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


def run_fetch_native(exe: Path, binary: bool, servers: List[str], cache: Optional[str], as_json: bool,
                     timeout: Optional[float], env, dsym_dir: Optional[Path]) -> int:
    """``fetch --exe`` for an ELF or Mach-O binary: the debug files by build-id / UUID (SSQP keys),
    then placed where the debuggers look (gdb: the debuginfod client cache; lldb: a rebuilt .dSYM)."""
    from symtool.commands.common import print_json
    from symtool.errors import SymtoolError
    from symtool.formats.detect import read_identity
    from symtool.store.fetch import CACHED, ERROR, FETCHED, NOT_FOUND, fetch_keys
    from symtool.store.http import HttpClient, redact_url
    from symtool.store.native import native_fetch_keys, place_for_gdb, rebuild_dsym

    info = read_identity(str(exe))
    planned = native_fetch_keys(exe, info, binary)
    sources, origin, cache_dir = _sources_and_cache(servers, cache, env)
    with HttpClient(_http_options(env, timeout), environ=env) as client:
        results = fetch_keys([(n, i) for n, i, _r in planned], sources, cache_dir, client=client)
    got = {role: Path(r.path) for (_n, _i, role), r in zip(planned, results) if r.status in (FETCHED, CACHED)}
    roles = {r.key: role for (_n, _i, role), r in zip(planned, results)}
    problems: list[str] = []
    placed: dict[str, str] = {}
    missing = [r for r in results if r.status == NOT_FOUND]
    if info.kind == "elf":
        skeletons = None
        if "debuginfo" in got:
            from symtool.formats.elf import read_elf

            skeletons = read_elf(got["debuginfo"]).dwo_ids
        if skeletons == [] or skeletons is None and "dwp" not in got:
            # No skeleton units: no .dwp is needed, so its absence is no failure.
            missing = [r for r in missing if roles[r.key] != "dwp"]
        try:
            placed = place_for_gdb(exe, info.index, got, env) if got else {}
        except SymtoolError as err:
            problems.append(str(err))
    else:
        dwarf = {role.split(":", 1)[1]: p for role, p in got.items() if role.startswith("dwarf:")}
        if dwarf and len(dwarf) == len(info.slices):
            bundle = (Path(dsym_dir) if dsym_dir else exe.parent) / f"{exe.name}.dSYM"
            from symtool.verify import MATCH, verify_macho

            if bundle.exists() and dsym_dir is None and verify_macho(exe, [bundle], True).status != MATCH:
                problems.append(f"{bundle}: exists and does not match {exe.name}; not replaced "
                                "(remove it, or use --dsym-dir DIR)")
            else:
                placed["dsym"] = str(rebuild_dsym(bundle, exe.name, dwarf))
    for r in results:
        if r.status == ERROR:
            problems.extend(r.errors)
    if as_json:
        print_json({"cache": str(cache_dir), "sources": [redact_url(s) for s in sources], "sources_from": origin,
                    "results": [dict(r.to_json(), role=roles[r.key]) for r in results], "placed": placed})
    else:
        for r in results:
            if r.status in (FETCHED, CACHED):
                print(f"{r.status:<7} {r.key} -> {r.path}")
        for role, path in placed.items():
            print(f"placed  {role} -> {path}")
    for r in missing:
        error(f"{r.key}: not found on {len(sources)} server(s)")
    for line in problems:
        error(line)
    if problems:
        return 2
    return 1 if missing else 0


class _DumpProgress:
    """One rich bar across the modules of a dump, plus a bar per large transfer (terminal only).

    Also the ProgressFactory the downloads report to: rich allows only one live
    display at a time, so transfers become tasks of the same display.
    """

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), console=Console(stderr=True), transient=True)
        self._modules = self._progress.add_task("modules", total=total)
        self._transfer = None
        self._progress.start()

    def module_done(self, plan) -> None:
        from rich.markup import escape

        self._progress.update(self._modules, advance=1, description=escape(_shown(plan.module)))

    def start(self, label: str, total):
        if total is not None and total < _RichProgress.THRESHOLD:
            return None
        from rich.markup import escape

        self._transfer = self._progress.add_task(f"  {escape(label)}", total=total)
        progress, task = self._progress, self._transfer
        return lambda n: progress.advance(task, n)

    def stop(self) -> None:
        if self._transfer is not None:
            self._progress.remove_task(self._transfer)
            self._transfer = None

    def close(self) -> None:
        self._progress.stop()


def _shown(name: str) -> str:
    """A name from a dump as it may be printed: hostile ones (control characters, escapes) quoted."""
    return name if name and name.isprintable() else repr(name)


def _module_line(plan) -> str:
    """The text-mode line for one module."""
    from symtool.store.fetch import CACHED, FETCHED

    parts = []
    for kind, r in plan.results:
        if not plan.has_key(r):  # a hostile name or a broken CodeView record: there is no key to show
            parts.append(f"{kind} error ({r.errors[0] if r.errors else 'unusable'})")
        elif r.status in (FETCHED, CACHED):
            parts.append(f"{kind} {r.status} {r.key} -> {r.path}")
        else:
            parts.append(f"{kind} {r.status} {r.key}")
    if not parts:
        parts.append("nothing to fetch (" + "; ".join(plan.notes or ["no keys"]) + ")")
    return f"{_shown(plan.module)}: " + "; ".join(parts)


def run_fetch_dump(dump_path: Path, binary: bool, servers: List[str], cache: Optional[str], as_json: bool,
                   timeout: Optional[float] = None, environ: Optional[dict] = None) -> int:
    """``fetch --dump``: the PDB (and with ``binary`` the image) of every module of a minidump."""
    from symtool.commands.common import print_json
    from symtool.formats.minidump import read_minidump

    env = os.environ if environ is None else environ
    dump = read_minidump(dump_path)  # FormatError / OSError: one line, exit 2
    platform = dump.platform
    base_json = {"dump": str(dump_path), "platform": platform}

    if platform not in ("windows", "unknown", "linux", "android", "macos", "ios"):
        os_name = dump.system.os.split(" ")[0] if dump.system is not None else platform
        note = f"{os_name} minidump: symtool knows no keys for its modules; nothing to fetch"
        if as_json:
            print_json({**base_json, "cache": None, "sources": [], "sources_from": None, "note": note,
                        "modules": [], "results": []})
        else:
            print(f"{dump_path}: {note}")
        return 0

    from symtool.store.fetch import ERROR, NOT_FOUND, Fetcher, fetch_dump, pending_keys, plan_dump

    plans = plan_dump(dump, binary)
    todo = pending_keys(plans)
    problems = sum(1 for p in plans for _k, r in p.results if r.status == ERROR)
    if not todo and not problems:
        note = "no module names a PDB" + (" or has an image key" if binary else "") + ": nothing to fetch"
        if as_json:
            print_json({**base_json, "cache": None, "sources": [], "sources_from": None, "note": note,
                        "modules": [p.to_json() for p in plans], "results": []})
        else:
            print(f"{dump_path}: {note}")
        return 0

    sources, origin, cache = _sources_and_cache(servers, cache, env)
    from symtool.store.http import HttpClient, redact_url

    options = _http_options(env, timeout)
    progress = _DumpProgress(len(plans)) if (sys.stderr.isatty() and not as_json) else None
    said: set[str] = set()

    def say(line: str) -> None:
        # A dead server fails every module the same way: each distinct line once.
        if line not in said:
            said.add(line)
            error(line)

    def report(plan) -> None:
        if progress is not None:
            progress.module_done(plan)
        if not as_json:
            print(terminal_safe(_module_line(plan)), flush=True)
        for _kind, r in plan.results:
            for m in r.messages:
                say(f"{r.key}: server message: {m}")
            if r.status == ERROR:
                for line in r.errors:
                    # Problems of the dump's own records name the dump; server problems name the URL.
                    say(line if plan.has_key(r) else f"{dump_path}: {line}")

    try:
        with HttpClient(options, environ=env) as client, \
                Fetcher(sources, cache, client=client, progress=progress) as fetcher:
            fetch_dump(plans, fetcher, on_module=report)
    finally:
        if progress is not None:
            progress.close()

    results = [(p, k, r) for p in plans for k, r in p.results]
    missing = sum(1 for p, k, r in results if p.missing(r, k))
    failed = sum(1 for _p, _k, r in results if r.status == ERROR)
    if as_json:
        print_json({
            **base_json,
            "cache": str(cache),
            "sources": [redact_url(s) for s in sources],
            "sources_from": origin,
            "modules": [p.to_json() for p in plans],
            "results": [p.result_json(k, r) for p, k, r in results],
        })
    else:
        counts = {}
        for _p, _k, r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("fetched", "cached", "not-found", "error"))
        print(f"{len(plans)} modules, {len(results)} files: {summary}; cache {cache}")
    if missing:
        say(f"{dump_path}: {missing} file(s) not found on {len(sources)} server(s)")
    if failed:
        return 2
    if missing:
        return 1
    return 0


def register(app) -> None:
    import typer

    from symtool.commands.common import handle_errors

    @handle_errors
    def fetch(
        pdb: Optional[str] = typer.Option(None, "--pdb", metavar="NAME", help="PDB (or image) file name to fetch."),
        index: Optional[str] = typer.Option(None, "--id", metavar="INDEX",
                                            help="Store INDEX: GUID+age for a PDB, TimeDateStamp+SizeOfImage for an image."),
        exe: Optional[Path] = typer.Option(None, "--exe", metavar="FILE",
                                           help="Take the key from this binary's CodeView record (PE), "
                                                "build-id (ELF) or LC_UUIDs (Mach-O)."),
        dump: Optional[Path] = typer.Option(None, "--dump", metavar="FILE",
                                            help="Fetch for every module of this minidump."),
        binary: bool = typer.Option(False, "--binary", help="With --exe or --dump: also fetch the image itself."),
        server: List[str] = typer.Option([], "--server", metavar="URL|DIR",
                                         help="Symbol server URL or store directory (repeatable, tried in order)."),
        # str, not Path: Path would fold "s3://x" into "s3:/x" before it can be refused.
        cache: Optional[str] = typer.Option(None, "--cache", metavar="DIR", help="Downstream cache directory."),
        timeout: Optional[float] = typer.Option(None, "--timeout", metavar="SECONDS",
                                                help="Time limit for each file at each server: lookups, retries and transfer "
                                                     "(default: none; a server silent for 60 s is given up)."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable result."),
        dsym_dir: Optional[Path] = typer.Option(None, "--dsym-dir", metavar="DIR",
                                                help="Mach-O --exe: write the rebuilt <name>.dSYM here "
                                                     "(default: beside the binary, where lldb looks)."),
    ) -> None:
        if dump is not None:
            if pdb or index or exe is not None:
                from symtool.errors import UsageError

                raise UsageError("use --dump FILE alone, not with --pdb/--id/--exe")
            code = run_fetch_dump(dump, binary, server, cache, as_json, timeout)
        else:
            code = run_fetch(pdb, index, exe, binary, server, cache, as_json, timeout, dsym_dir=dsym_dir)
        raise typer.Exit(code)

    app.command(name="fetch", help=HELP, epilog=EPILOG)(fetch)
