"""``symtool publish``: put PDBs and binaries into a symbol store (symstore.exe layout)."""

from __future__ import annotations

import sys
from pathlib import Path  # the typer command's annotations name it; the library uses pathlib anyway

from symtool.commands.common import FLAG, MULTIPLE, VALUE, error, note, parse_options, run_parsed, warning

# A publish of many small files is over in well under a second, and typer's import is a tenth
# of that: `symtool publish ARGS` is parsed by :func:`fast_main` (symtool.main calls it before
# typer is imported) when every argument is one of OPTIONS in a form it takes whole; anything
# else (--help, an unknown option, a missing value) goes to the typer command of
# :func:`register`, whose options are declared from the same table and which runs the same
# :func:`run_publish`.  (tests/test_publish_fast_path.py runs both parsers on each form.)
OPTIONS = (
    (("--manifest-path",), "manifest_path", VALUE),
    (("--package", "-p"), "package", MULTIPLE),
    (("--profile",), "profile", VALUE),
    (("--target",), "triples", MULTIPLE),
    (("--store", "-s"), "store", VALUE),
    (("--product", "-t"), "product", VALUE),
    (("--version",), "version", VALUE),
    (("--comment", "-c"), "comment", VALUE),
    (("--compress",), "compress", FLAG),
    (("--pointer",), "pointer", FLAG),
    (("--dry-run",), "dry_run", FLAG),
    (("--source-index",), "source_index", FLAG),
    (("--sources",), "sources", FLAG),
    (("--sources-root",), "sources_root", MULTIPLE),
    (("--force",), "force", FLAG),
    (("--key-case",), "key_case", VALUE),
    (("--skip-published",), "skip_published", FLAG),
    (("--json",), "as_json", FLAG),
)
_NAMES = {dest: names for names, dest, _kind in OPTIONS}

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


def parse_fast(argv: list[str]) -> dict | None:
    """The parameters of ``symtool publish ARGV`` as typer would pass them, or None when typer must
    see ARGV (:func:`symtool.commands.common.parse_options`)."""
    return parse_options(argv, OPTIONS, "paths")


def fast_main(argv: list[str]) -> int | None:
    """``symtool publish ARGV`` without the CLI framework; None when typer must take over."""
    return run_parsed(parse_fast(argv), run_publish, "as_json")


def run_publish(paths: list | None, manifest_path: str | None, package: list[str] | None, profile: str | None,
                triples: list[str] | None, store: str | None, product: str | None, version: str | None,
                comment: str | None, compress: bool, pointer: bool, dry_run: bool, source_index: bool,
                sources: bool, sources_root: list | None, force: bool, key_case: str | None,
                skip_published: bool, as_json: bool) -> int:
    """The command, for both parsers (paths and roots as strings or Paths; None for what was not
    given); its exit code."""
    from symtool.commands.common import print_json
    from symtool.commands.workspace_opts import given, select
    from symtool.errors import UsageError
    from symtool.settings import resolve_store
    from symtool.store.publish import PublishOptions, publish

    product, version, comment, key_case = product or "", version or "", comment or "", key_case or "exact"
    paths = [Path(p) for p in paths] if paths else None
    sources_root = [Path(p) for p in sources_root or ()]
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
    return report.exit_code()


def register(app) -> None:
    import typer

    from symtool.commands.common import handle_errors
    from symtool.commands.workspace_opts import manifest_path_option, package_option, profile_option, target_option

    def publish_cmd(
        paths: list[Path] | None = typer.Argument(
            None, help="Files or directories (default: the workspace's output for --profile, --target and -p)."),
        manifest_path: str | None = manifest_path_option(),
        package: list[str] | None = package_option(),
        profile: str | None = profile_option(),
        triples: list[str] | None = target_option(),
        store: str | None = typer.Option(None, *_NAMES["store"],
                                         help="Store directory, share, http(s) URL, s3://bucket/prefix or "
                                              "azblob://container/prefix."),
        product: str = typer.Option("", *_NAMES["product"], help="Product name recorded in the transaction."),
        version: str = typer.Option("", *_NAMES["version"], help="Version recorded in the transaction."),
        comment: str = typer.Option("", *_NAMES["comment"], help="Comment recorded in the transaction."),
        compress: bool = typer.Option(False, *_NAMES["compress"],
                                      help="Store CAB-compressed files (foo.pd_), as symstore /compress."),
        pointer: bool = typer.Option(False, *_NAMES["pointer"],
                                     help="Store file.ptr pointing at the source instead of a copy (symstore /p)."),
        dry_run: bool = typer.Option(False, *_NAMES["dry_run"], help="Show what would be published; write nothing."),
        source_index: bool = typer.Option(False, *_NAMES["source_index"],
                                          help="Source-index the PDBs first (as symtool srcindex)."),
        sources: bool = typer.Option(False, *_NAMES["sources"],
                                     help="Archive sources in the store: with --source-index the "
                                     "PDBs' unmapped files; for ELF binaries every local file their DWARF names, "
                                     "under debuginfod/buildid/<id>/source/ (debuginfod-find source)."),
        sources_root: list[Path] = typer.Option([], *_NAMES["sources_root"], metavar="DIR",
                                                help="Another directory --sources may copy files from (repeatable). "
                                                     "Without it only files under the workspace root, cargo's "
                                                     "registry and git checkouts and the toolchain's rust-src are "
                                                     "archived; /proc, /sys and /dev never."),
        force: bool = typer.Option(False, *_NAMES["force"],
                                   help="Replace a stored file of the same key whose bytes differ "
                                   "(refused otherwise: e.g. a PDB republished after source indexing)."),
        key_case: str = typer.Option("exact", *_NAMES["key_case"], metavar="exact|lower",
                                     help="Object storage: keys as symstore.exe writes them (exact) or lower-cased "
                                          "for case-sensitive front ends."),
        skip_published: bool = typer.Option(False, *_NAMES["skip_published"],
                                            help="Add no transaction when the newest one with this product, version "
                                                 "and comment already holds exactly these files, byte for byte "
                                                 "(re-run CI jobs). Without it, every publish is a transaction, "
                                                 "as with symstore.exe."),
        as_json: bool = typer.Option(False, *_NAMES["as_json"],
                                     help="Machine-readable result (transaction id, per-file status)."),
    ) -> None:
        raise typer.Exit(run_publish(paths, manifest_path, package, profile, triples, store, product, version,
                                     comment, compress, pointer, dry_run, source_index, sources, sources_root,
                                     force, key_case, skip_published, as_json))

    app.command(name="publish", help="Publish PDBs and binaries into a symbol store (symstore.exe layout).",
                epilog=EXAMPLES)(handle_errors(publish_cmd))
