"""A Windows personality for the test suite: Linux's CPython made to look like Windows' (issue 21).

symtool's users run it on Windows, where CPython lacks or changes calls that
POSIX code takes for granted.  :func:`windows_personality` takes them away
from ``os`` the way Windows' CPython does, and switches
:mod:`symtool.platform` to its Windows implementation, so a command run
in-process under it exercises the Windows code paths here:

* ``os.pread`` is gone (Windows has it from 3.14 only);
* ``os.set_blocking`` works on pipes only and raises OSError for anything
  else (3.12 and later), or is gone (3.10, 3.11) -- ``semantics``;
* ``O_NOFOLLOW``, ``O_NONBLOCK`` are gone, and so are ``copy_file_range``,
  ``sendfile`` and ``posix_fadvise``;
* ``import fcntl`` fails;
* ``os.open`` of a directory raises PermissionError (EACCES), as on Windows.

What it cannot take away: modules that imported fcntl before the switch keep
it (none of symtool's may: tests/test_architecture.py), and the Windows-only
calls (``msvcrt``, ``kernel32``) are not there to run.
"""

from __future__ import annotations

import errno
import os
import stat
import sys

import pytest

SEMANTICS = ("3.12", "3.11")  # set_blocking: pipes only (3.12+), or absent (3.10, 3.11)

_GONE = ("pread", "O_NOFOLLOW", "O_NONBLOCK", "copy_file_range", "sendfile", "posix_fadvise")


def _pipes_only(set_blocking):
    def windows_set_blocking(fd: int, blocking: bool) -> None:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            # Windows' 3.12+: SetNamedPipeHandleState, which fails on anything but a pipe.
            raise OSError(errno.EINVAL, "Invalid argument (set_blocking works on pipes only)")
        set_blocking(fd, blocking)

    return windows_set_blocking


def _no_directories(real_open):
    def windows_open(path, flags, mode=0o777, *, dir_fd=None):
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return fd

    return windows_open


def windows_personality(monkeypatch: pytest.MonkeyPatch, semantics: str = "3.12") -> None:
    """Make this process look like Windows' CPython of ``semantics`` until ``monkeypatch`` is undone."""
    assert semantics in SEMANTICS, semantics
    for name in _GONE:
        monkeypatch.delattr(os, name, raising=False)
    if semantics == "3.11":
        monkeypatch.delattr(os, "set_blocking")
    else:
        monkeypatch.setattr(os, "set_blocking", _pipes_only(os.set_blocking))
    monkeypatch.setattr(os, "open", _no_directories(os.open))
    monkeypatch.setitem(sys.modules, "fcntl", None)  # None in sys.modules: `import fcntl` raises ImportError
    try:
        from symtool import platform
    except ImportError:  # code from before the platform layer: only the os changes apply
        return
    monkeypatch.setattr(platform, "_impl", platform._Windows)


@pytest.fixture(params=SEMANTICS, ids=lambda s: f"windows-py{s}")
def windows(request, monkeypatch):
    """Each test using it runs twice, under 3.12's and 3.11's semantics; the value is the version."""
    windows_personality(monkeypatch, request.param)
    return request.param
