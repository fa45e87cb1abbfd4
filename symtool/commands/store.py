"""``symtool store list|show|delete|prune|verify|init``: administer a local or share store,
or one on object storage (``s3://``, ``azblob://``: :mod:`symtool.store.objstore`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from symtool.commands.common import error

# Each subcommand's help shows its own examples; `symtool store --help` shows one of each.
EXAMPLES = {
    "list": """Examples:

  symtool store list --store ./symbols

  symtool store list --all --json --store ./symbols
""",
    "show": """Examples:

  symtool store show 42 --store ./symbols

  symtool store show 0000000042 --json --store ./symbols
""",
    "delete": """Examples:

  symtool store delete 42 --dry-run --store ./symbols

  symtool store delete 42 43 --store ./symbols
""",
    "prune": """Examples:

  symtool store prune --keep-last 30 --dry-run --store ./symbols

  symtool store prune --older-than 90 --store ./symbols
""",
    "verify": """Examples:

  symtool store verify --store ./symbols

  symtool store verify --repair --store s3://symbols-bucket/rust

  symtool store verify --repair --json --store ./symbols
""",
    "query": """Examples:

  symtool store query target/x86_64-pc-windows-msvc/release/crash_me.pdb --store ./symbols

  symtool store query crash_me.pdb/1445856A3A9EA3C64C4C44205044422E1/crash_me.pdb --json --store ./symbols

Exit codes: 0 every key is in the store; 1 a key is not; 2 bad input (not a
key nor a readable file, no such store, a store that is not a local directory).
""",
    "init": """Examples:

  symtool store init --store ./symbols

  symtool store init --two-tier --store /srv/symbols
""",
}

GROUP_EXAMPLES = """Examples:

  symtool store init --store ./symbols --two-tier

  symtool store list --store ./symbols --json

  symtool store show 0000000042 --store ./symbols

  symtool store delete 42 --dry-run --store ./symbols

  symtool store prune --keep-last 30 --store ./symbols

  symtool store verify --repair --store ./symbols

  symtool store query app.pdb --store ./symbols
"""

store_app = typer.Typer(help="Administer a symbol store (list, show, delete, prune, verify, init, query).",
                        epilog=GROUP_EXAMPLES, no_args_is_help=True, add_completion=False)

STORE_OPT = typer.Option(None, "--store", "-s",
                         help="Store directory, share, s3://bucket/prefix or azblob://container/prefix (default: from settings).")


def _store(store: Optional[str]):
    """The store to administer: a Path, or an ObjectStore for s3:// and azblob:// (same methods' names)."""
    from symtool.settings import resolve_store
    from symtool.store.layout import is_object_store

    location = resolve_store(store, local_only=True)
    if is_object_store(location):
        from symtool.store.objstore import open_store

        return open_store(location)
    from symtool import platform

    return Path(platform.long_path(location))  # on Windows past MAX_PATH: the extended form


def _objects(target) -> bool:
    return not isinstance(target, Path)


def list_cmd(store: Optional[str] = STORE_OPT,
             all_: bool = typer.Option(False, "--all", help="Include deleted transactions (from history.txt)."),
             as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    from symtool.commands.common import print_json
    from symtool.store.manage import list_transactions

    target = _store(store)
    rows = (target.list_transactions(all_) if _objects(target) else list_transactions(target, include_deleted=all_))
    if as_json:
        print_json({"transactions": rows})
        return
    if rows:
        sys.stdout.write(_list_row("ID", "DATE", "TIME", "REF", "PRODUCT", "VERSION", "COMMENT"))
    for r in rows:
        gone = f"  (deleted by {r['deleted_by']})" if r.get("deleted_by") else ""
        sys.stdout.write(_list_row(r["id"], r["date"], r["time"], r["ref"], r["product"], r["version"],
                                   f"{r['comment']}{gone}"))


def _list_row(txn_id, date, when, ref, product, version, comment) -> str:
    """One line of `store list`: the header and the rows share the column widths."""
    from symtool.commands.common import terminal_safe

    line = f"{txn_id!s:10}  {date!s:10} {when!s:8}  {ref!s:4}  {product!s:20} {version!s:12} {comment}"
    return terminal_safe(line.rstrip()) + "\n"  # product, version and comment come from the store's files


def show_cmd(txn_id: str = typer.Argument(..., help="Transaction id (e.g. 42 or 0000000042)."),
             store: Optional[str] = STORE_OPT,
             as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    from symtool.commands.common import print_json
    from symtool.store.manage import show_transaction

    target = _store(store)
    info = target.show_transaction(txn_id) if _objects(target) else show_transaction(target, txn_id)
    if as_json:
        print_json(info)
        return
    sys.stdout.write(f"transaction {info['id']} ({info['state']}) {info.get('date', '')} {info.get('time', '')} "
                     f"product {info.get('product', '')!r} version {info.get('version', '')!r} "
                     f"comment {info.get('comment', '')!r}\n")
    rows = [(f["key"], f["stored_as"] or "missing", f["source"]) for f in info["files"]]
    if rows:
        # Columns as in `store list`: keys differ in length, so each column is as wide as its widest cell.
        from symtool.commands.common import terminal_safe

        rows.insert(0, ("KEY", "STORED AS", "SOURCE"))
        key_w, form_w = (max(len(r[i]) for r in rows) for i in (0, 1))
        for key, form, source in rows:  # keys and sources come from the store's files: escaped
            sys.stdout.write(terminal_safe(f"  {key:{key_w}}  {form:{form_w}}  {source}".rstrip()) + "\n")
    for p in info["problems"]:
        error(p)


def _print_delete(report, as_json: bool) -> None:
    from symtool.commands.common import print_json

    if as_json:
        print_json(report.to_json())
        return
    would = "would " if report.dry_run else ""
    for tid, did in zip(report.deleted, report.del_ids or [""] * len(report.deleted)):
        sys.stdout.write(f"{'would delete' if would else 'deleted'} transaction {tid}"
                         + (f" (record {did})" if did else "") + "\n")
    for p in report.removed:
        sys.stdout.write(f"  {would}remove {p}\n" if would else f"  removed {p}\n")
    for k in report.kept:
        sys.stdout.write(f"  {would}keep {k} (still referenced)\n" if would else f"  kept {k} (still referenced)\n")
    for p in report.problems:
        error(p)


def delete_cmd(txn_ids: List[str] = typer.Argument(..., help="Transaction id(s) to delete."),
               store: Optional[str] = STORE_OPT,
               dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted and kept; change nothing."),
               as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    from symtool.store.manage import delete_transactions

    target = _store(store)
    _print_delete(target.delete(txn_ids, dry_run) if _objects(target)
                  else delete_transactions(target, txn_ids, dry_run=dry_run), as_json)


def prune_cmd(store: Optional[str] = STORE_OPT,
              keep_last: Optional[int] = typer.Option(None, "--keep-last", help="Keep the N newest live transactions."),
              older_than: Optional[float] = typer.Option(None, "--older-than", help="Delete transactions older than DAYS."),
              dry_run: bool = typer.Option(False, "--dry-run", help="List what would be deleted."),
              as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    from symtool.store.manage import prune

    target = _store(store)
    report = (target.prune(keep_last, older_than, dry_run) if _objects(target)
              else prune(target, keep_last, older_than, dry_run))
    if dry_run and not as_json:
        for tid in report.deleted:
            sys.stdout.write(f"would delete {tid}\n")
        return
    _print_delete(report, as_json)


def verify_cmd(store: Optional[str] = STORE_OPT,
               repair: bool = typer.Option(False, "--repair", help="Fix what can be fixed (see docs/store.md)."),
               as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    from symtool.commands.common import print_json
    from symtool.store.repair import verify_store

    target = _store(store)
    report = target.verify(repair=repair) if _objects(target) else verify_store(target, repair=repair)
    if as_json:
        print_json(report.to_json())
    else:
        from symtool.commands.common import terminal_safe

        for f in report.findings:
            tag = "repaired" if f.repaired else "problem"
            # Paths and quoted lines come from the store's files and names.
            sys.stdout.write(terminal_safe(f"{tag}: {f.path}: {f.message} [{f.kind}]") + "\n")
        sys.stdout.write(f"{report.live_transactions} live transactions, {report.checked_files} files checked, "
                         f"{len(report.unresolved)} problem(s)"
                         + (f", {report.in_progress} write(s) in progress" if report.in_progress else "") + "\n")
        if report.busy:
            from symtool.commands.common import note

            note("a publisher held the store lock throughout: findings may be its writes in progress")
    if report.unresolved:
        raise typer.Exit(1)


def query_cmd(what: str = typer.Argument(..., metavar="KEY|FILE",
                                         help="A store key (name/INDEX/name) or a file whose keys to look up."),
              store: Optional[str] = STORE_OPT,
              as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    from symtool.commands.common import print_json, terminal_safe
    from symtool.errors import UsageError
    from symtool.store.query import parse_key, query_key

    target = _store(store)
    if _objects(target):
        raise UsageError("store query reads local stores (directories, shares) only")
    if not target.is_dir():
        from symtool.errors import StoreError

        raise StoreError("store directory not found", target)
    if Path(what).is_file():
        from symtool.store.identify import identify_all

        items, info = identify_all(Path(what))
        keys = [(i.name, i.index) for i in items]
        if not keys:
            why = ("a .dwp is keyed by its binary's build-id: query the binary"
                   if info.kind in ("dwp", "dwo") else "the file has no store key (no build-id or UUID)")
            raise UsageError(why, what)
    else:
        keys = [parse_key(what)]
    seen: set[tuple[str, str]] = set()
    results = []
    for name, index in keys:
        if (name.lower(), index.upper()) not in seen:
            seen.add((name.lower(), index.upper()))
            results.append(query_key(target, name, index))
    if as_json:
        print_json({"store": str(target), "query": what, "keys": results})
    else:
        for r in results:
            form = f" ({r['stored_as']})" if r["found"] else ""
            sys.stdout.write(terminal_safe(f"{'found' if r['found'] else 'not found'}  {r['key']}{form}") + "\n")
            for t in r["transactions"]:
                # Product, version and comment come from the store's files.
                sys.stdout.write(terminal_safe(
                    f"  transaction {t['id']} {t['state']} {t['date'] or ''} {t['time'] or ''} "
                    f"product {t['product']!r} version {t['version']!r} comment {t['comment']!r}") + "\n")
            if r["found"] and not r["transactions"]:
                sys.stdout.write("  no transaction lists it (a store without 000Admin history, or copied in)\n")
    if not all(r["found"] for r in results):
        raise typer.Exit(1)


def init_cmd(store: Optional[str] = STORE_OPT,
             two_tier: bool = typer.Option(False, "--two-tier", help="Two-tier layout (index2.txt: <store>/<na>/<name>/...).")) -> None:
    from symtool.store.admin import init_store

    path = _store(store)
    if _objects(path) and two_tier:
        from symtool.errors import UsageError

        raise UsageError("--two-tier is for directories and shares; object storage stores are one-tier")
    created = path.init() if _objects(path) else init_store(path, two_tier=two_tier)
    sys.stdout.write(f"{'created' if created else 'already a store:'} {path}{' (two-tier)' if two_tier else ''}\n")


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    for name, func, help_ in (
        ("list", list_cmd, "List live transactions (--all: with deleted ones)."),
        ("show", show_cmd, "Show one transaction and its files."),
        ("delete", delete_cmd, "Delete transactions, as `symstore del /i ID`."),
        ("prune", prune_cmd, "Delete old transactions (--keep-last N or --older-than DAYS)."),
        ("verify", verify_cmd, "Check the store; --repair fixes interrupted publishes."),
        ("init", init_cmd, "Create an empty store (--two-tier for index2.txt layout)."),
        ("query", query_cmd, "Is this key or file in the store, and which transactions added it?"),
    ):
        store_app.command(name=name, help=help_, epilog=EXAMPLES[name])(handle_errors(func))
    app.add_typer(store_app, name="store", help="Administer a symbol store: list, show, delete, prune, verify, init, query.")
