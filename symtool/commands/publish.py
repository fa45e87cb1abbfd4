"""``symtool publish``: put PDBs and binaries into a symbol store (symstore.exe layout)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from symtool.commands.common import error, note, warning

EXAMPLES = """Examples:

  symtool publish --store /srv/symbols --product myapp --version 1.2.3

  symtool publish target/x86_64-pc-windows-msvc/release --store '\\\\server\\Symbols' --compress

  symtool publish crash-me.exe crash_me.pdb --store ./symbols --dry-run --json

Without PATH the current workspace's release output is published
(target/release and target/<triple>/release; CARGO_TARGET_DIR honoured).
Without --store the first local store of [workspace.metadata.symtool] stores
or SYMTOOL_STORE is used.  Exit code 1 when a file was refused (e.g. a
binary/PDB pair that does not match); 2 when a file given is unreadable
(missing, truncated, not a PE image or PDB): the readable ones are still
published; 2 too when a server cannot be reached or fails (5xx, credentials
refused, upload not confirmed).
"""


def _progress_factory():
    """A rich progress bar on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def make(total: int):
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        prog = Progress("publishing", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        console=Console(stderr=True), transient=True)
        prog.start()
        task = prog.add_task("publish", total=total)
        make.prog = prog

        def advance(n: int) -> None:
            prog.update(task, advance=n)

        return advance

    make.prog = None
    return make


def publish_cmd(
    paths: Optional[List[Path]] = typer.Argument(None, help="Files or directories (default: the workspace's release output)."),
    store: Optional[str] = typer.Option(None, "--store", "-s", help="Store directory, share or http(s) URL."),
    product: str = typer.Option("", "--product", "-t", help="Product name recorded in the transaction."),
    version: str = typer.Option("", "--version", help="Version recorded in the transaction."),
    comment: str = typer.Option("", "--comment", "-c", help="Comment recorded in the transaction."),
    compress: bool = typer.Option(False, "--compress", help="Store CAB-compressed files (foo.pd_), as symstore /compress."),
    pointer: bool = typer.Option(False, "--pointer", help="Store file.ptr pointing at the source instead of a copy (symstore /p)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be published; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable result (transaction id, per-file status)."),
) -> None:
    from symtool.commands.common import print_json
    from symtool.errors import UsageError
    from symtool.settings import resolve_store
    from symtool.store.publish import PublishOptions, publish, release_dirs

    if compress and pointer:
        raise UsageError("--compress and --pointer exclude each other")
    target = resolve_store(store)
    if not paths:
        paths = release_dirs()
    opts = PublishOptions(product, version, comment, compress, pointer, dry_run)
    factory = None if as_json else _progress_factory()
    try:
        report = publish(target, list(paths), opts, factory)
    finally:
        if factory is not None and factory.prog is not None:
            factory.prog.stop()
    for text in report.warnings:
        warning(text)
    if as_json:
        print_json(report.to_json())
    else:
        out = sys.stdout
        for f in report.files:
            if f.status in ("refused", "unreadable", "error"):
                error(f"{f.path}: {f.reason}")
            else:
                form = f" ({f.stored_as})" if f.stored_as and f.stored_as != "plain" else ""
                out.write(f"{f.status:9} {f.key}{form}\n")
        for text in report.notes:
            note(text)
        verb = "would add" if dry_run else "added"
        n_added = report.count("would-add") if dry_run else report.count("added") + report.count("uploaded")
        txn = f", transaction {report.transaction}" if report.transaction else ""
        # The same counts as --json's summary: a server failure is an error, not a refusal.
        out.write(f"{verb} {n_added}, already present {report.count('present')}, "
                  f"refused {report.count('refused')}"
                  + (f", unreadable {report.count('unreadable')}" if report.count("unreadable") else "")
                  + (f", errors {report.count('error')}" if report.count("error") else "")
                  + f"{txn}\n")
    if not report.files:
        raise UsageError("nothing to publish (no PE images or PDBs found)")
    raise typer.Exit(report.exit_code())


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    app.command(name="publish", help="Publish PDBs and binaries into a symbol store (symstore.exe layout).",
                epilog=EXAMPLES)(handle_errors(publish_cmd))
