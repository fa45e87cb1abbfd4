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


class ConfigError(SymtoolError):
    """Cargo.toml, .cargo/config.toml or symtool settings are unreadable or invalid."""


class StoreError(SymtoolError):
    """A symbol store is unusable or inconsistent."""


class UnsafeNameError(StoreError):
    """A name from a file or a store would escape the store (.., absolute, device name...)."""


class NetworkError(SymtoolError):
    """A server could not be reached or answered badly."""


class NotFoundError(SymtoolError):
    """What was asked for exists nowhere we looked (a finding, not bad input)."""

    exit_code = 1
