"""``symtool publish``: put PDBs and binaries into a symbol store (symstore.exe layout)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from symtool.commands.common import error, note, warning
from symtool.commands.workspace_opts import manifest_path_option, package_option, profile_option, target_option

EXAMPLES = """Examples:

  symtool publish --store /srv/symbols --product myapp --version 1.2.3

  cargo build --profile dist && symtool publish --profile dist -p crash-me

  symtool publish target/x86_64-pc-windows-msvc/release --store '\\\\server\\Symbols' --compress

  symtool publish crash-me.exe crash_me.pdb --store ./symbols --dry-run --json

  symtool publish --store s3://symbols/prod --product myapp --version "$CI_COMMIT" --skip-published

Without PATH the workspace's output for --profile (default release),
--target and -p is published, as cargo build wrote it (target/<profile> and
target/<triple>/<profile>; CARGO_TARGET_DIR honoured).  Without --store the
first local store of [workspace.metadata.symtool] stores or SYMTOOL_STORE is
used.  Exit code 1 when a file was refused (e.g. a binary/PDB pair that does
not match); 2 when there is nothing to publish (no build output) or a file
given is unreadable (missing, truncated, not a PE image or PDB): the readable
ones are still published; 2 too when a server cannot be reached or fails
(5xx, credentials refused, upload not confirmed).
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
    paths: Optional[List[Path]] = typer.Argument(
        None, help="Files or directories (default: the workspace's output for --profile, --target and -p)."),
    manifest_path: Optional[str] = manifest_path_option(),
    package: Optional[List[str]] = package_option(),
    profile: Optional[str] = profile_option(),
    triples: Optional[List[str]] = target_option(),
    store: Optional[str] = typer.Option(None, "--store", "-s",
                                        help="Store directory, share, http(s) URL, s3://bucket/prefix or azblob://container/prefix."),
    product: str = typer.Option("", "--product", "-t", help="Product name recorded in the transaction."),
    version: str = typer.Option("", "--version", help="Version recorded in the transaction."),
    comment: str = typer.Option("", "--comment", "-c", help="Comment recorded in the transaction."),
    compress: bool = typer.Option(False, "--compress", help="Store CAB-compressed files (foo.pd_), as symstore /compress."),
    pointer: bool = typer.Option(False, "--pointer", help="Store file.ptr pointing at the source instead of a copy (symstore /p)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be published; write nothing."),
    source_index: bool = typer.Option(False, "--source-index", help="Source-index the PDBs first (as symtool srcindex)."),
    sources: bool = typer.Option(False, "--sources", help="Archive sources in the store: with --source-index the "
                                 "PDBs' unmapped files; for ELF binaries every local file their DWARF names, "
                                 "under debuginfod/buildid/<id>/source/ (debuginfod-find source)."),
    sources_root: List[Path] = typer.Option([], "--sources-root", metavar="DIR",
                                            help="Another directory --sources may copy files from (repeatable). "
                                                 "Without it only files under the workspace root, cargo's "
                                                 "registry and git checkouts and the toolchain's rust-src are "
                                                 "archived; /proc, /sys and /dev never."),
    force: bool = typer.Option(False, "--force", help="Replace a stored file of the same key whose bytes differ "
                               "(refused otherwise: e.g. a PDB republished after source indexing)."),
    key_case: str = typer.Option("exact", "--key-case", metavar="exact|lower",
                                 help="Object storage: keys as symstore.exe writes them (exact) or lower-cased for case-sensitive front ends."),
    skip_published: bool = typer.Option(False, "--skip-published",
                                        help="Add no transaction when the newest one with this product, version "
                                             "and comment already holds exactly these files, byte for byte "
                                             "(re-run CI jobs). Without it, every publish is a transaction, "
                                             "as with symstore.exe."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable result (transaction id, per-file status)."),
) -> None:
    from symtool.commands.common import print_json
    from symtool.commands.workspace_opts import given, select
    from symtool.errors import UsageError
    from symtool.settings import resolve_store
    from symtool.store.publish import PublishOptions, publish

    if compress and pointer:
        raise UsageError("--compress and --pointer exclude each other")
    target = resolve_store(store)
    selection = None
    if paths:
        options = given(manifest_path, package, profile, triples)
        if options:
            raise UsageError(f"{', '.join(options)} select a workspace's output: give them or PATHs, not both")
    else:
        selection = select(manifest_path, package, profile, triples)
        paths = selection.dirs()
        if not paths:
            raise selection.no_output()
    if key_case not in ("exact", "lower"):
        raise UsageError("--key-case takes exact or lower")
    opts = PublishOptions(product, version, comment, compress, pointer, dry_run, source_index, sources, force,
                          key_case, skip_published, list(sources_root))
    factory = None if as_json else _progress_factory()
    try:
        report = publish(target, list(paths), opts, factory, selection.wants if selection else None)
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
        if report.already_published:
            txn = f", already published as transaction {report.transaction} (--skip-published: none added)"
        # The same counts as --json's summary: a server failure is an error, not a refusal.
        out.write(f"{verb} {n_added}, already present {report.count('present')}, "
                  f"refused {report.count('refused')}"
                  + (f", unreadable {report.count('unreadable')}" if report.count("unreadable") else "")
                  + (f", errors {report.count('error')}" if report.count("error") else "")
                  + f"{txn}\n")
    if not report.files:
        if selection is not None:
            raise selection.no_output()
        raise UsageError("nothing to publish (no PE images or PDBs found)")
    raise typer.Exit(report.exit_code())


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    app.command(name="publish", help="Publish PDBs and binaries into a symbol store (symstore.exe layout).",
                epilog=EXAMPLES)(handle_errors(publish_cmd))
