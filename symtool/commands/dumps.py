"""``symtool dumps PATH...``: triage minidumps -- symbols needed, found, and crash buckets."""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import typer

from symtool.commands.common import apply_symbol_cache_option, error, no_symbol_cache_option
from symtool.commands.workspace_opts import (manifest_path_option, package_option, profile_option, symbol_dirs,
                                             target_option)
from symtool.text import count

EXAMPLES = """Examples:

  symtool dumps crashes/ --store \\\\server\\symbols --store ./symstore

  symtool dumps nightly/*.dmp --build-dir target/x86_64-pc-windows-msvc/release --json

  symtool dumps nightly/ --json > today.json --html report.html --baseline yesterday.json

PATH is minidump files or directories (searched recursively for *.dmp and
*.mdmp).  Stores default to SYMTOOL_STORE, else the stores in Cargo.toml
(workspace.metadata.symtool), else the servers of _NT_SYMBOL_PATH -- as for
symtool fetch, and looked up in the same order, so both agree on what is
there.  A local --store is searched as a symbol store (name/INDEX/name) and
as a plain directory holding the files; --build-dir is searched as a plain
directory only, and the workspace's build output directories (every profile
and target, as `symtool env` lists them) are searched by default.  Files found
only on http(s) stores are fetched into the cache (verified by identity) to
walk and symbolize stacks, unless --offline.  When a dump's module list has no
CodeView record (Wine), the PDB is named by the image found in the stores.

--html FILE writes one self-contained page (no network: inline style and
script) with the summary, a chart of crashes per day, the bucket table
(sortable and filterable), each bucket's stack with source links and its
dumps, and the missing symbols; --html - writes it to stdout instead of the
text report.  --baseline is an earlier run's --json: buckets are marked new,
growing or gone (in the text and HTML reports).

Each row carries the crashing thread's symbolized stack ("stack" in --json);
buckets are made of the exception code and the first three meaningful frames
(the panic/abort runtime and OS exception raisers skipped: see docs/dumps.md).

Exit code: 0 every dump was read and every PDB of the team's own modules
found (OS modules, whose PDBs are on Microsoft's server, do not count), 1
something is missing, 2 a dump is unreadable (an error: line names it), a
server failed, or bad usage (a --store or --build-dir that does not exist
included).
"""


def _short(path: str | None) -> str:
    from symtool.ids import basename_any

    return basename_any(path) if path else "?"


def _dump_line(row: dict) -> str:
    from symtool.commands.common import terminal_safe

    if row["error"]:
        return terminal_safe(f"{row['path']}: unreadable: {row['error']}")
    parts = [f"{row['path']}:"]
    if row["exception_code"]:
        exc = f"{row['exception_code']} {row['exception_name']}"
        if row["exception_detail"]:
            exc += f" ({row['exception_detail']})"
        parts.append(exc)
    else:
        parts.append("no exception")
    if row["faulting_module"]:
        parts.append(f"at {row['faulting_module']}+{row['faulting_offset']}")
    elif row["exception_address"]:
        parts.append(f"at {row['exception_address']}")
    # The headline names the user's frame (past the panic/abort path) when there is one.
    named = row["user_frame"] or ({"function": row["function"], "file": row["file"], "line": row["line"]}
                                  if row["function"] else None)
    if named:
        where = f" ({_short(named['file'])}:{named['line']})" if named["file"] and named["line"] else ""
        parts.append(f"in {named['function']}{where}")
    if row["time"]:
        parts.append(f"[{row['time']}]")
    lines = [" ".join(parts)]
    if row["panic"]:
        p = row["panic"]
        where = f"{p['file']}:{p['line']}:{p['column']}" if p["file"] else "an unknown location"
        text = f"    panicked at {where}" + (f": {p['message']}" if p["message"] is not None else "")
        if p["thread"]:
            text += f" (thread '{p['thread']}')"
        lines.append(text)
    same = not row["user_frame"] or row["user_frame"]["function"] == row["function"]
    for frame in (row["frames"][1:] if same else []):
        where = f" ({_short(frame['file'])}:{frame['line']})" if frame["file"] and frame["line"] else ""
        lines.append(f"    inlined into {frame['function']}{where}")
    mods = [m for m in row["modules"] if (m["pdb_store_path"] or m["pdb_found"] is not None) and not m["os_module"]]
    if mods:
        found = sum(1 for m in mods if m["pdb_found"])
        unknown = sum(1 for m in mods if m["pdb_found"] is None)
        text = f"    PDBs: {found} of {len(mods)} found"
        n_os = sum(1 for m in row["modules"] if m["os_module"])
        if n_os:
            text += f" (and {n_os} OS module{'s' if n_os != 1 else ''}, not counted)"
        if unknown:
            text += f", {unknown} not checked"
        faulting = next((m for m in row["modules"] if m["name"] == row["faulting_module"]), None)
        if faulting is not None and faulting["pdb_store_path"]:
            state = "found" if faulting["pdb_found"] else "MISSING" if faulting["pdb_found"] is False else "not checked"
            text += f"; faulting module's PDB {faulting['pdb_store_path']}: {state}"
        lines.append(text)
    if row["stack_note"]:
        lines.append(f"    note: {row['stack_note']}")
    for note in row["notes"]:
        lines.append(f"    note: {note}")
    for comment in row["comments"]:
        lines.append(f"    comment: {comment}")
    # Module and function names and comment streams come from the dump and its PDBs: escape them.
    return "\n".join(terminal_safe(line) for line in lines)


def dumps(
    paths: List[str] = typer.Argument(..., metavar="PATH...", help="Minidump files or directories of them."),
    store: Optional[List[str]] = typer.Option(None, "--store", "-s", metavar="S",
                                              help="Symbol store (directory or http(s) URL); repeatable."),
    build_dir: Optional[List[str]] = typer.Option(None, "--build-dir", "-b", metavar="DIR",
                                                  help="Directory holding PDBs/images directly; repeatable."),
    offline: bool = typer.Option(False, "--offline", help="Do not download from http(s) stores."),
    json_out: bool = typer.Option(False, "--json", help="A JSON list, one object per dump."),
    html_out: Optional[str] = typer.Option(None, "--html", metavar="FILE",
                                           help="Also write a self-contained HTML report to FILE "
                                                "('-': stdout, instead of the text report)."),
    baseline_path: Optional[str] = typer.Option(None, "--baseline", metavar="JSON",
                                                help="An earlier run's --json: mark buckets new, growing "
                                                     "or gone."),
    no_symbol_cache: bool = no_symbol_cache_option(),
    manifest_path: Optional[str] = manifest_path_option(),
    package: Optional[List[str]] = package_option(),
    profile: Optional[str] = profile_option("every profile built"),
    target: Optional[List[str]] = target_option(),
) -> None:
    """Triage minidumps: exception, faulting module and function, whether every module's PDB
    and image are in the stores (with the exact keys), and buckets of identical crashes."""
    apply_symbol_cache_option(no_symbol_cache)
    from symtool.dumps.buckets import Buckets
    from symtool.dumps.files import collect_dumps
    from symtool.dumps.triage import row_missing, triage
    from symtool.dumps.triage import row_failed
    from symtool.errors import UsageError

    from symtool.dumps.locate import check_build_dirs, check_stores, make_fetch
    from symtool.settings import resolve_cache, resolve_stores

    if html_out == "-" and json_out:
        raise UsageError("--html - and --json both write to stdout: give --html a file name")
    if baseline_path is not None and json_out and html_out is None:
        raise UsageError("--baseline marks buckets in the text and HTML reports; --json rows have no buckets "
                         "(add --html FILE)")
    report = baseline = None
    if html_out is not None:
        from symtool.dumps.report import Report, check_report_path

        if html_out != "-":
            check_report_path(html_out)  # before the work, and before --json has printed anything
        report = Report()
        buckets = report.buckets
    else:
        buckets = Buckets()
    if baseline_path is not None:
        from symtool.dumps.report import load_baseline

        baseline = load_baseline(baseline_path)
    resolved = resolve_stores(store, use_nt_symbol_path=True)
    stores = resolved.stores
    check_stores(stores)
    check_build_dirs(list(build_dir or []))
    cache, _cache_source = resolve_cache(None, resolved)  # the same cache as fetch uses
    fetch, fetcher = make_fetch(stores, cache, offline)
    workspace_dirs = symbol_dirs(manifest_path, package, profile, target)
    build_dirs = list(build_dir or []) + [d for d in workspace_dirs if d not in (build_dir or [])]
    dump_paths = list(collect_dumps(paths))
    if not dump_paths:
        raise UsageError(f"no minidumps (*.dmp, *.mdmp) in {', '.join(paths)}")

    missing = failed = False
    progress = None
    task = None
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        # The bar lives on stderr; rows go to stdout untouched (pipes, --json).
        progress = Progress(transient=True, console=Console(stderr=True), redirect_stdout=False,
                            redirect_stderr=False)
        progress.start()
        task = progress.add_task("triaging dumps", total=len(dump_paths))
    out = sys.stdout
    first = True
    said: set[str] = set()
    try:
        if json_out:
            out.write("[")
        for row in triage(dump_paths, stores, build_dirs, fetch=fetch):
            if report is not None:
                report.add(row)
            else:
                buckets.add(row)
            missing = missing or row_missing(row)
            failed = failed or row_failed(row)
            for problem in ([f"{row.path}: unreadable: {row.error}"] if row.error else []) + \
                    [m.error for m in row.modules if m.pdb_found is None and m.error]:
                if problem not in said:  # a dead server fails every dump alike: each line once
                    said.add(problem)
                    error(problem)
            data = row.to_json()
            if json_out:
                text = json.dumps(data, indent=2, ensure_ascii=False)
                out.write(("\n" if first else ",\n") + "  " + text.replace("\n", "\n  "))
            elif html_out != "-":
                out.write(_dump_line(data) + "\n")
            first = False
            if progress is not None:
                progress.advance(task)
        if json_out:
            out.write("\n]\n")
    finally:
        if progress is not None:
            progress.stop()
        if fetcher is not None:
            fetcher.close()
    if not json_out and html_out != "-":
        _summary(buckets, stores, baseline)
    if report is not None:
        from symtool.dumps.report import render_html, write_report

        page = render_html(report, baseline, stores)
        if html_out == "-":
            out.write(page)
        else:
            write_report(html_out, page)
    out.flush()
    # The worst outcome wins: an unreadable dump or a failing server is bad input (2),
    # a missing PDB a finding (1).
    raise typer.Exit(2 if failed else 1 if missing else 0)


STACK_LINES = 12  # frames of each bucket's first stack shown in the text report


def _summary(buckets, stores: list[str], baseline=None) -> None:
    from symtool.commands.common import terminal_safe
    from symtool.dumps.report import bucket_status, gone_buckets

    w = sys.stdout.write
    ordered = buckets.ordered()
    w(f"\nBuckets ({len(ordered)}):\n")
    for b in ordered:
        _status, words = bucket_status(b, baseline)
        w(terminal_safe(f"  {b.count:6d}  {b.key}" + (f"  [{words}]" if words else "")) + "\n")
        w(f"          first {b.first or '?'}  last {b.last or '?'}  e.g. {b.example}\n")
        if b.panic:
            p = b.panic
            where = f"{p['file']}:{p['line']}:{p['column']}" if p["file"] else "an unknown location"
            w(terminal_safe(f"          panicked at {where}" + (f": {p['message']}" if p["message"] is not None
                                                                 else "")) + "\n")
        start = b.user_frame_index
        if start:  # the panic/abort path above the user's frame: counted, not listed
            w(f"          ({start} frame{'s' if start != 1 else ''} of the panic/abort path above)\n")
        for f in b.stack[start:start + STACK_LINES]:
            where = f" [{f.file} @ {f.line}]" if f.file and f.line else ""
            inline = "(inline) " if f.inline else ""
            w(f"          {f.index:02x} {inline}{f.call_site}{where}\n")
            if f.source_url:  # from the PDB's srcsrv / Source Link stream: where a debugger fetches the file
                w(f"             source: {f.source_url}\n")
        if len(b.stack) > start + STACK_LINES:
            w(f"          ... {len(b.stack) - start - STACK_LINES} more frames\n")
    gone = gone_buckets(buckets, baseline)
    if gone:
        w(f"\nGone since the baseline ({len(gone)}):\n")
        for g in gone:
            w(terminal_safe(f"  {g.count:6d}  {g.key}  (last {g.last or '?'})") + "\n")
    if buckets.missing:
        w(f"\nMissing PDBs ({count(len(buckets.missing), 'key')}, looked for in: {', '.join(stores) or 'no stores'}):\n")
        for key, n in sorted(buckets.missing.items(), key=lambda kv: (-kv[1], kv[0])):
            w(f"  {key}  (needed by {n} dump{'s' if n != 1 else ''})\n")
    news = "" if baseline is None else \
        f", {sum(1 for b in ordered if bucket_status(b, baseline)[0] == 'new')} new, {len(gone)} gone"
    w(f"\n{count(buckets.dumps, 'dump')}, {buckets.unreadable} unreadable, {count(len(ordered), 'bucket')}{news}, "
      f"{count(len(buckets.missing), 'PDB')} missing\n")


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    app.command(name="dumps", help=dumps.__doc__, epilog=EXAMPLES)(handle_errors(dumps))


__all__ = ["register", "dumps"]
