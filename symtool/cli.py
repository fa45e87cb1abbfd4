"""The ``symtool`` command line: thin typer commands over the library.

Each command lives in ``symtool/commands/<name>.py`` and exposes
``register(app)``; this module only assembles them.  Imports flow one way:
``symtool.main`` → ``symtool.cli`` → ``symtool.commands.*`` → library; command
modules share helpers through the leaf :mod:`symtool.commands.common`.
Command modules import heavy libraries (requests, rich, pefile) inside their
functions, and a run that names a command registers (imports) that command
alone (:func:`make_app`), so ``symtool id`` loads what identifying needs.

Exit codes (:func:`symtool.errors.exit_status`): 0 ok, 1 findings / not
found, 2 bad usage or unreadable input.  Library errors become one line on
stderr, never a traceback.
"""

from __future__ import annotations

import typer

from symtool.commands.common import COLOR_CHOICES, OUTPUT, escape_markup


# Help lists the commands in this order.
COMMANDS = ("check", "id", "verify", "publish", "srcindex", "store", "fetch", "env", "stack", "symbolize", "dumps")


def _register(app: typer.Typer, name: str) -> None:
    """Import command ``name``'s module and add it to ``app``: a run that names a command
    imports that module alone (start-up time is most of a short command's time)."""
    if name == "check":
        from symtool.commands import check as module
    elif name == "id":
        from symtool.commands import ident as module
    elif name == "verify":
        from symtool.commands import verify as module
    elif name == "publish":
        from symtool.commands import publish as module
    elif name == "srcindex":
        from symtool.commands import srcindex as module
    elif name == "store":
        from symtool.commands import store as module
    elif name == "fetch":
        from symtool.commands import fetch as module
    elif name == "env":
        from symtool.commands import env as module
    elif name == "stack":
        from symtool.commands import stack as module
    elif name == "symbolize":
        from symtool.commands import symbolize as module
    else:
        from symtool.commands import dumps as module
    module.register(app)


def _new_app() -> typer.Typer:
    return typer.Typer(
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


def make_app(command: str | None = None) -> typer.Typer:
    """The app with every command, or with ``command`` alone when it names one (what a run of
    that command needs; help, completion and unknown commands get them all)."""
    new = _new_app()
    new.callback()(_root)
    for name in COMMANDS:
        if command is None or command not in COMMANDS or name == command:
            _register(new, name)
    _literal_help(new)
    return new


def __getattr__(name: str):
    # ``from symtool.cli import app``: every command, built on first use.
    if name == "app":
        global app
        app = make_app()
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

