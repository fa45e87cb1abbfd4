"""The ``symtool`` command line: thin typer commands over the library.

Each command lives in ``symtool/commands/<name>.py`` and exposes
``register(app)``.  Command modules import heavy libraries (requests, rich,
pefile) inside their functions, so ``symtool env`` starts fast.

Exit codes: 0 ok, 1 findings / not found, 2 bad usage or unreadable input.
Library errors (:mod:`symtool.errors`) become one line on stderr, never a
traceback.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
from typing import Any, Callable

import typer

from symtool.errors import SymtoolError

COMMAND_MODULES = ("check", "ident", "verify", "publish", "store", "fetch", "env", "dumps")

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


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print one line on stderr and return an Exit to raise."""
    sys.stderr.write(f"symtool: {message}\n")
    return typer.Exit(code)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one stderr line and the right exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SymtoolError as err:
            raise fail(str(err), err.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except BrokenPipeError:
            # `symtool id ... | head`: stop quietly.
            try:
                sys.stdout = open(os.devnull, "w")
            except OSError:
                pass
            raise typer.Exit(0) from None
        except OSError as err:
            where = err.filename if err.filename is not None else ""
            msg = err.strerror or str(err)
            raise fail(f"{where}: {msg}" if where else msg, 2) from None

    return wrapper


def print_json(data: Any) -> None:
    """Stable, machine-readable output for ``--json``."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


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


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"symtool.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"symtool.commands.{name}":
                continue  # command not implemented in this build
            raise
        module.register(app)


_register_all()


def main() -> None:
    if sys.argv[1:2] == ["env"]:
        # `symtool env` runs in every new shell: handled without click when it can be
        # (symtool.commands.env.fast_main returns None for --help and bad options).
        from symtool.commands.env import fast_main

        code = fast_main(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    app(prog_name="symtool")
