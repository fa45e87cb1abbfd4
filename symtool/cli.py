"""The ``symtool`` command line: thin typer commands over the library.

Each command lives in ``symtool/commands/<name>.py`` and exposes
``register(app)``; this module only assembles them.  Imports flow one way:
``symtool.main`` → ``symtool.cli`` → ``symtool.commands.*`` → library; command
modules share helpers through the leaf :mod:`symtool.commands.common`.
Command modules import heavy libraries (requests, rich, pefile) inside their
functions, so ``--help`` stays quick.

Exit codes (:func:`symtool.errors.exit_status`): 0 ok, 1 findings / not
found, 2 bad usage or unreadable input.  Library errors become one line on
stderr, never a traceback.
"""

from __future__ import annotations

import typer

from symtool.commands import check, dumps, env, fetch, ident, publish, store, verify

# Help lists the commands in this order.
COMMANDS = (check, ident, verify, publish, store, fetch, env, dumps)

app = typer.Typer(
    name="symtool",
    help=(
        "Make every crash of a Rust program debuggable: check the build config, "
        "match PDBs to binaries, publish to symbol stores, set up debugger paths, "
        "triage minidumps.\n\n"
        "Exit codes: 0 ok, 1 findings, 2 bad usage or unreadable input."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from symtool import __version__

        typer.echo(f"symtool {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """symtool: make every crash of a Rust program debuggable."""


for _command in COMMANDS:
    _command.register(app)

