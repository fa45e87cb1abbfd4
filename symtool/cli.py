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

from symtool.commands import check, dumps, env, fetch, ident, publish, srcindex, stack, store, symbolize, verify
from symtool.commands.common import COLOR_CHOICES, OUTPUT, escape_markup

# Help lists the commands in this order.
COMMANDS = (check, ident, verify, publish, srcindex, store, fetch, env, stack, symbolize, dumps)

app = typer.Typer(
    name="symtool",
    help=(
        "Make every crash of a Rust program debuggable: check the build config, "
        "match PDBs to binaries, publish to symbol stores, set up debugger paths, "
        "triage minidumps.\n\n"
        "Exit codes: 0 ok, 1 findings, 2 bad usage or unreadable input."
    ),
    no_args_is_help=True,
    # --install-completion and --show-completion SHELL (bash, zsh, fish, powershell).
    add_completion=True,
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
        False, "--version", "-V", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No warnings or notes, only errors (anywhere on the line)."),
    # A count, not a value: no metavar or default in the help (`-v`, `-vv`).
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, metavar="", show_default=False,
                                help="More detail; -vv for even more."),
    color: str = typer.Option("auto", "--color", metavar="auto|always|never",
                              help="Colour the error:/warning: labels (auto: on a terminal, unless NO_COLOR is set)."),
) -> None:
    """symtool: make every crash of a Rust program debuggable."""
    # The console script takes these options out of the line wherever they stand
    # (symtool.main); this callback sees them only when the app is called directly.
    if color not in COLOR_CHOICES:
        raise typer.BadParameter(f"one of {', '.join(COLOR_CHOICES)}", param_hint="--color")
    OUTPUT.color = color if color != "auto" else OUTPUT.color
    OUTPUT.verbosity = -1 if quiet else max(OUTPUT.verbosity, verbose)


def _literal_help(typer_app: typer.Typer) -> None:
    """Escape rich markup in every help text, epilog and option help of ``typer_app``.

    typer renders help through rich; escaped here, once, ``[workspace.metadata.symtool]``
    and the like print as written whoever wrote the command.
    """
    import inspect

    infos = [typer_app.info, *typer_app.registered_commands]
    callbacks = [typer_app.registered_callback.callback if typer_app.registered_callback else None]
    callbacks += [info.callback for info in typer_app.registered_commands]
    for info, callback in zip(infos, callbacks):
        for attr in ("help", "epilog"):
            text = getattr(info, attr, None)
            if isinstance(text, str):
                setattr(info, attr, escape_markup(text))
        if callback is None:
            continue
        if not isinstance(getattr(info, "help", None), str) and callback.__doc__:
            info.help = escape_markup(inspect.cleandoc(callback.__doc__))
        for param in inspect.signature(callback).parameters.values():
            if isinstance(getattr(param.default, "help", None), str):
                param.default.help = escape_markup(param.default.help)


for _command in COMMANDS:
    _command.register(app)
_literal_help(app)

