"""The ``symtool`` console script.

``symtool env`` runs in every new shell, so it is handled here before typer is
imported (typer's import alone costs more than the rest of the command);
``--help`` and anything the fast parser does not take go through typer like
every other command.
"""

from __future__ import annotations

import sys


def main(prog_name: str = "symtool") -> None:
    from symtool.commands.common import bad_usage, take_global_options

    try:
        sys.argv[1:] = take_global_options(sys.argv[1:])
    except ValueError as err:
        sys.exit(bad_usage(str(err)))
    if sys.argv[1:2] == ["env"]:
        from symtool.commands.env import fast_main

        code = fast_main(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    from symtool.cli import app

    app(prog_name=prog_name)


def cargo_main() -> None:
    """``cargo symtool ARGS``: cargo runs ``cargo-symtool symtool ARGS``; drop that word."""
    if sys.argv[1:2] == ["symtool"]:
        del sys.argv[1]
    main("cargo symtool")


if __name__ == "__main__":
    main()
