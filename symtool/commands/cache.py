"""``symtool cache clean``: trim the symbol cache (symtool.store.symcache) to its bound, or empty it."""

from __future__ import annotations

import typer

EXAMPLES = """Examples:

  symtool cache clean                       (least recently used debug files first, down to SYMTOOL_CACHE_MAX)

  SYMTOOL_CACHE_MAX=256M symtool cache clean --json

  symtool cache clean --all                 (every debug file's cache; they are rebuilt when next used)

The symbol cache lives in the local cache directory (the `cache` setting or
SYMTOOL_CACHE), under 000SymCache/.  SYMTOOL_SYMBOL_CACHE=off turns it off.
"""

cache_app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


def clean_cmd(
    all_: bool = typer.Option(False, "--all", help="Remove every symbol cache file, not only what is over the bound."),
    as_json: bool = typer.Option(False, "--json", help="What was removed and what is left, as JSON (stable keys)."),
) -> None:
    """Trim the symbol cache to SYMTOOL_CACHE_MAX bytes (least recently used first), or empty it (--all)."""
    from symtool.commands.common import note, print_json, verbose
    from symtool.store import symcache

    directory = symcache.cache_dir()
    bound = symcache.max_bytes()
    removed = symcache.remove_all(directory) if all_ else symcache.trim(directory, bound)
    left = symcache.entries(directory)
    freed = sum(e.size for e in removed)
    kept = sum(e.size for e in left)
    if as_json:
        print_json({"directory": str(directory), "max_bytes": bound, "removed": len(removed),
                    "removed_bytes": freed, "files": len(left), "bytes": kept,
                    "removed_files": [e.path.name for e in removed]})
        return
    for e in removed:
        verbose(f"removed {e.path.name} ({e.size} bytes)")
    note(f"{directory}: removed {len(removed)} file(s), {freed} bytes; "
         f"{len(left)} file(s), {kept} bytes left (bound {bound} bytes)")


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    cache_app.command(name="clean", help=clean_cmd.__doc__, epilog=EXAMPLES)(handle_errors(clean_cmd))
    app.add_typer(cache_app, name="cache", help="The symbol cache: `cache clean` trims it to SYMTOOL_CACHE_MAX.")


__all__ = ["register"]
