"""Typed errors raised by library code.

Library modules raise these; only the CLI turns them into a single line on
stderr and an exit code (0 ok, 1 findings / not found, 2 bad usage or input).
"""

from __future__ import annotations

import os


class SymtoolError(Exception):
    """Base class. ``str(err)`` is the one line the user sees."""

    exit_code = 2

    def __init__(self, message: str, path: "str | os.PathLike[str] | None" = None):
        super().__init__(message)
        self.message = message
        self.path = os.fspath(path) if path is not None else None

    def __str__(self) -> str:
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


class UsageError(SymtoolError):
    """The command line asks for something impossible or contradictory."""


class FormatError(SymtoolError):
    """A file is not of the expected format, or is truncated / corrupt / hostile."""


class BudgetError(FormatError):
    """An input asks for more work than its size justifies (symtool/budgets.py): a hostile or corrupt file."""


class ConfigError(SymtoolError):
    """Cargo.toml, .cargo/config.toml or symtool settings are unreadable or invalid."""


class StoreError(SymtoolError):
    """A symbol store is unusable or inconsistent."""


class UnsafeNameError(StoreError):
    """A name from a file or a store would escape the store (.., absolute, device name...)."""


class NotRegularFileError(FormatError):
    """A path that must be a regular file is a symlink (where none is allowed), FIFO, device or directory.

    Never opened for reading in a way that can block: a FIFO or a device read
    by a store command would hang it, or feed it without end.
    """


class NetworkError(SymtoolError):
    """A server could not be reached or answered badly."""


class NotFoundError(SymtoolError):
    """What was asked for exists nowhere we looked (a finding, not bad input)."""

    exit_code = 1


# Exit statuses, one rule for every command (README "Exit codes and errors").
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def exit_status(err: BaseException) -> "tuple[int, str | None]":
    """The exit code and the one line to print for an exception that reached the CLI.

    The only place that maps errors to exit codes: the typer commands and the
    typer-free ``symtool env`` path both call it.  Returns ``None`` as the
    message when nothing should be printed (a closed pipe).  Exceptions not
    listed here are bugs and are re-raised by the caller.
    """
    if isinstance(err, SymtoolError):
        return err.exit_code, str(err)
    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(err, BrokenPipeError):
        # `symtool id ... | head`: the reader went away; stop quietly.
        return EXIT_OK, None
    if isinstance(err, OSError):
        where = err.filename if err.filename is not None else ""
        text = err.strerror or str(err)
        return EXIT_BAD_INPUT, f"{where}: {text}" if where else text
    raise TypeError(f"no exit status for {type(err).__name__}")


HANDLED = (SymtoolError, KeyboardInterrupt, OSError)
