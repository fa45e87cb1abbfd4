"""Helpers shared by the command modules.

A leaf: it imports no command module and not :mod:`symtool.cli`, so the data
flows one way (``symtool.main`` → ``symtool.cli`` → ``symtool.commands.*`` →
library).  Exit codes come from :func:`symtool.errors.exit_status`.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable

from symtool.errors import HANDLED, exit_status


def report_error(err: BaseException) -> int:
    """Print the one stderr line for ``err`` and return its exit code."""
    code, message = exit_status(err)
    if message is None:
        try:  # a closed pipe: make later writes (and the interpreter's flush) silent
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
    else:
        sys.stderr.write(f"symtool: {message}\n")
    return code


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one stderr line and the right exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HANDLED as err:
            import typer

            raise typer.Exit(report_error(err)) from None

    return wrapper


def print_json(data: Any) -> None:
    """Stable, machine-readable output for ``--json``."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
